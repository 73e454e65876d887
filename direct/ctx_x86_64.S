/*
 * direct/ctx_x86_64.S - the start of a fiber on x86-64 (System V ABI).
 *
 * The switch itself is inline (tp__fctx_switch() in direct/direct_int.h).
 * A saved context is a stack pointer; at it lie two words: the address to
 * resume at and the rbp to resume with. Everything else the context needs
 * was saved, by the compiler, in the frame of the code that switched away.
 *
 * A new context (direct/fiber.c) is that two-word frame with
 * tp__fctx_start as the address, followed by entry and arg: the
 * trampoline pops them and calls entry(arg) on a 16-byte aligned stack.
 * entry never returns.
 */
    .text
    .globl  tp__fctx_start
    .hidden tp__fctx_start
    .type   tp__fctx_start, @function
    .p2align 4
tp__fctx_start:
    .cfi_startproc
    .cfi_undefined rip
    popq    %rax               /* entry */
    popq    %rdi               /* arg; rsp is 16-byte aligned now */
    callq   *%rax
    ud2
    .cfi_endproc
    .size   tp__fctx_start, .-tp__fctx_start

    .section .note.GNU-stack,"",@progbits
