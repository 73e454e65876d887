/*
 * direct/ctx_x86_64.S - fiber context switch for x86-64 (System V ABI).
 *
 * void tp__fctx_swap(void **save_sp, void *load_sp)
 *   Pushes the callee-saved registers on the current stack, stores the
 *   stack pointer in *save_sp, loads load_sp and pops the other context's
 *   registers; returns into the other context. The x87 control word and
 *   MXCSR are saved too (a fiber may change rounding modes); they are loaded
 *   only when they differ from the current ones (ldmxcsr and fldcw cost
 *   more than the compare, and the words are almost always equal).
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
    movl    (%rsp), %eax       /* ours: equal words are not reloaded */
    movzwl  4(%rsp), %ecx
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    cmpl    (%rsp), %eax
    jne     2f
1:  cmpw    4(%rsp), %cx
    jne     3f
4:  addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    /* Not ret: the return stack buffer holds the call site of the context
     * we left, so a ret would always be mispredicted; an indirect jump is
     * predicted from the branch history (the two sides alternate). */
    popq    %r8
    jmp     *%r8
2:  ldmxcsr (%rsp)             /* the other context's rounding modes */
    jmp     1b
3:  fldcw   4(%rsp)
    jmp     4b
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
