/*
 * direct/ctx_aarch64.S - fiber context switch for AArch64 (AAPCS64).
 *
 * void tp__fctx_swap(void **save_sp, void *load_sp)
 *   Saves x19-x30 and d8-d15 in a 160-byte frame on the current stack,
 *   stores sp in *save_sp, loads load_sp and restores the other context's
 *   frame; returns (x30) into the other context. FPCR is saved too.
 *
 * A new context (direct/fiber.c) is such a frame whose x30 is
 * tp__fctx_start, x19 the argument and x20 the entry function.
 */
    .text
    .globl  tp__fctx_swap
    .hidden tp__fctx_swap
    .type   tp__fctx_swap, %function
    .p2align 4
tp__fctx_swap:
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    ret
    .size   tp__fctx_swap, .-tp__fctx_swap

    .globl  tp__fctx_start
    .hidden tp__fctx_start
    .type   tp__fctx_start, %function
    .p2align 4
tp__fctx_start:
    mov     x29, #0
    mov     x0, x19
    blr     x20
    brk     #0
    .size   tp__fctx_start, .-tp__fctx_start

    .section .note.GNU-stack,"",%progbits
