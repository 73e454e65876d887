/*
 * direct/ctx_x86_64.S - fiber context switch for x86-64 (System V ABI).
 *
 * void tp__fctx_swap(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers on the current stack, stores the
 *   stack pointer in *save_sp, loads load_sp and pops the other context's
 *   registers; returns into the other context. The x87 control word and
 *   MXCSR are saved too (a fiber may change rounding modes).
 *
 * A new context (direct/fiber.c) is a frame laid out as this function
 * pops it, whose return address is tp__fctx_start: that trampoline calls
 * entry(arg) with entry in r13 and arg in r12. entry never returns.
 */
    .text
    .globl  tp__fctx_swap
    .hidden tp__fctx_swap
    .type   tp__fctx_swap, @function
    .p2align 4
tp__fctx_swap:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   tp__fctx_swap, .-tp__fctx_swap

    .globl  tp__fctx_start
    .hidden tp__fctx_start
    .type   tp__fctx_start, @function
    .p2align 4
tp__fctx_start:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   tp__fctx_start, .-tp__fctx_start

    .section .note.GNU-stack,"",@progbits
