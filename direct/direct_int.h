/*
 * direct/direct_int.h - fibers for direct-style actors: contexts, stacks
 * and the sanitizer annotations of a switch.
 *
 * A context is a saved stack pointer (the assembly switch of
 * direct/ctx_<arch>.S pushes the callee-saved registers on the stack it
 * leaves) or, in the portable fallback (TP_DIRECT_UCONTEXT), a ucontext_t
 * on the heap. The fallback is chosen at build time
 * (cmake/sources-direct.cmake) for other architectures or with
 * -DTP_DIRECT_UCONTEXT=ON.
 */
#ifndef TP_DIRECT_DIRECT_INT_H
#define TP_DIRECT_DIRECT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TP__DIRECT_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define TP__DIRECT_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(TP__DIRECT_ASAN)
#define TP__DIRECT_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(TP__DIRECT_TSAN)
#define TP__DIRECT_TSAN 1
#endif
#if defined(TP__DIRECT_ASAN) || defined(TP__DIRECT_TSAN)
#define TP__DIRECT_SAN 1
#endif

/* A saved execution context. */
struct tp__fctx {
    void *sp; /* assembly: the stack pointer; ucontext: a ucontext_t * */
};

/* Makes ctx start entry(arg) on the stack [lo, lo + size) at its first
 * swap-in. Returns 0 or -ENOMEM (ucontext fallback only). */
int tp__fctx_make(struct tp__fctx *ctx, char *lo, size_t size,
                  void (*entry)(void *), void *arg);
/* Readies a context that will only be switched from (the scheduler's);
 * 0 or -ENOMEM (ucontext fallback only). */
int tp__fctx_init(struct tp__fctx *ctx);
/* Frees what tp__fctx_make allocated (ucontext fallback). */
void tp__fctx_free(struct tp__fctx *ctx);
/* Lowest stack address the context's saved state occupies (copied
 * stacks save [this, top)). */
char *tp__fctx_low(const struct tp__fctx *ctx);
/* Name of the switch in use ("x86_64 asm", "aarch64 asm", "ucontext"). */
const char *tp__fctx_kind(void);

/* A stack mapping: [base, base + guard) is the guard page, the usable
 * stack is [lo, lo + size). */
struct tp__stack {
    char *base;
    char *lo;
    size_t size;
    size_t guard;
    unsigned vg; /* its valgrind stack id (builds with valgrind's header) */
};

/* mmaps size usable bytes (rounded up to pages) plus a guard page below.
 * Returns 0 or -ENOMEM. */
int tp__stack_map(struct tp__stack *s, size_t size);
void tp__stack_unmap(struct tp__stack *s);
/* True when addr is in (or within 64 KiB below) the guard page of s:
 * a stack overflow. */
bool tp__stack_overflowed(const struct tp__stack *s, const void *addr);
size_t tp__page_size(void);

/* Saves the running context in *from and runs *to. Inline, like the
 * annotations below: TSan requires the fiber switch to follow its
 * __tsan_switch_to_fiber() with no instrumented call or return between. */
#if defined(TP_DIRECT_UCONTEXT)
#include <ucontext.h>
static inline __attribute__((always_inline)) void
tp__fctx_switch(struct tp__fctx *from, struct tp__fctx *to)
{
    swapcontext((ucontext_t *)from->sp, (ucontext_t *)to->sp);
}
#elif defined(__x86_64__)
/* x86-64: an asm statement inlined where it is used, so that no call
 * pushes a return address on the CPU's return stack at the switch: each
 * side's returns after it then pair with its own calls (an out-of-line
 * switch left the other side's return address on top, and two to four
 * returns per switch were mispredicted). It pushes rbp and the address to
 * resume at (the two-word frame of direct/ctx_x86_64.S) below the stack
 * pointer, so the file that uses it must be built without a red zone
 * (cmake/sources-direct.cmake: -mno-red-zone and TP__NO_RED_ZONE). Every
 * other register is clobbered: the compiler keeps what is live across it
 * in the frame. The floating-point control words are the caller's
 * business (direct/direct.c, park()). */
#if defined(TP__NO_RED_ZONE) /* else no switch: a use fails to compile */
static inline __attribute__((always_inline)) void
tp__fctx_switch(struct tp__fctx *from, struct tp__fctx *to)
{
    void **save = &from->sp;
    void *load = to->sp;

    __asm__ volatile("pushq %%rbp\n\t"
                     "leaq 1f(%%rip), %%rax\n\t"
                     "pushq %%rax\n\t"
                     "movq %%rsp, (%0)\n\t"
                     "movq %1, %%rsp\n\t"
                     "popq %%rax\n\t"
                     "popq %%rbp\n\t"
                     "jmp *%%rax\n"
                     "1:"
                     : "+D"(save), "+S"(load)
                     :
                     : "rax", "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11",
                       "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2",
                       "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
                       "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
                       "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
                       "st(6)", "st(7)", "memory", "cc");
}
#endif
#else
/* aarch64 (direct/ctx_aarch64.S): out of line, saving the callee-saved
 * registers and FPCR. */
void tp__fctx_swap(void **save_sp, void *load_sp);
static inline __attribute__((always_inline)) void
tp__fctx_switch(struct tp__fctx *from, struct tp__fctx *to)
{
    tp__fctx_swap(&from->sp, to->sp);
}
#endif

/* Sanitizer bookkeeping of one fiber (unused without sanitizers). */
struct tp__fsan {
    void *fake; /* ASan: its fake stack while it is switched out */
    void *tsan; /* TSan: the fiber */
};

/* ... and of the scheduler thread that runs fibers. */
struct tp__fsan_thr {
    void *fake;     /* ASan: the thread's fake stack while a fiber runs */
    const void *lo; /* ASan: the thread's own stack */
    size_t size;
    void *tsan; /* TSan: the thread's own fiber */
};

#if defined(TP__DIRECT_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(TP__DIRECT_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* valgrind's client requests (no-op instructions when it is not there),
 * in builds that have its header: stacks are registered with it
 * (direct/fiber.c), else memcheck takes a switch between two stacks less
 * than --max-stackframe apart for a frame pushed or popped and marks the
 * memory between them inaccessible. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TP__VG 1
#endif
#endif

#define TP__FSAN_INLINE static inline __attribute__((always_inline))

TP__FSAN_INLINE void
tp__fsan_create(struct tp__fsan *f)
{
    f->fake = NULL;
#if defined(TP__DIRECT_TSAN)
    f->tsan = __tsan_create_fiber(0);
#else
    f->tsan = NULL;
#endif
}

TP__FSAN_INLINE void
tp__fsan_destroy(struct tp__fsan *f)
{
#if defined(TP__DIRECT_TSAN)
    if (f->tsan != NULL)
        __tsan_destroy_fiber(f->tsan);
#endif
    f->tsan = NULL;
    f->fake = NULL;
}

/* Scheduler -> fiber (stack [lo, lo + size)): right before the switch. */
TP__FSAN_INLINE void
tp__fsan_to_fiber(struct tp__fsan_thr *t, struct tp__fsan *f, const char *lo,
                  size_t size)
{
    (void)t, (void)f, (void)lo, (void)size;
#if defined(TP__DIRECT_ASAN)
    __sanitizer_start_switch_fiber(&t->fake, lo, size);
#endif
#if defined(TP__DIRECT_TSAN)
    t->tsan = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(f->tsan, 0);
#endif
}

/* First thing in the fiber after it was switched in. */
TP__FSAN_INLINE void
tp__fsan_in_fiber(struct tp__fsan_thr *t, struct tp__fsan *f)
{
    (void)t, (void)f;
#if defined(TP__DIRECT_ASAN)
    __sanitizer_finish_switch_fiber(f->fake, &t->lo, &t->size);
#endif
}

/* Fiber -> scheduler: right before the switch (dying: the fiber never
 * comes back, its fake stack is dropped). */
TP__FSAN_INLINE void
tp__fsan_to_sched(struct tp__fsan_thr *t, struct tp__fsan *f, bool dying)
{
    (void)t, (void)f, (void)dying;
#if defined(TP__DIRECT_ASAN)
    __sanitizer_start_switch_fiber(dying ? NULL : &f->fake, t->lo, t->size);
#endif
#if defined(TP__DIRECT_TSAN)
    __tsan_switch_to_fiber(t->tsan, 0);
#endif
}

/* First thing back on the scheduler's stack after a switch. */
TP__FSAN_INLINE void
tp__fsan_in_sched(struct tp__fsan_thr *t)
{
    (void)t;
#if defined(TP__DIRECT_ASAN)
    __sanitizer_finish_switch_fiber(t->fake, NULL, NULL);
#endif
}

/* Back on the scheduler's stack after a crash jumped out of a fiber. */
TP__FSAN_INLINE void
tp__fsan_crashed(struct tp__fsan_thr *t)
{
    (void)t;
#if defined(TP__DIRECT_ASAN)
    __sanitizer_start_switch_fiber(NULL, t->lo, t->size);
    __sanitizer_finish_switch_fiber(t->fake, NULL, NULL);
#endif
#if defined(TP__DIRECT_TSAN)
    __tsan_switch_to_fiber(t->tsan, 0);
#endif
}

/* Makes [lo, lo + n) readable (ASan: a copied-stack image is read
 * whole, redzones included). */
TP__FSAN_INLINE void
tp__fsan_unpoison(const void *lo, size_t n)
{
    (void)lo, (void)n;
#if defined(TP__DIRECT_ASAN)
    __asan_unpoison_memory_region(lo, n);
#endif
}

/* Makes [lo, lo + n) of the shared stack writable before an image is put
 * back there: ASan, and valgrind's memcheck (below where the stack
 * pointer last was, it counts as inaccessible; the copy then brings the
 * image's own definedness). */
TP__FSAN_INLINE void
tp__fsan_writable(const void *lo, size_t n)
{
    tp__fsan_unpoison(lo, n);
#if defined(TP__VG)
    VALGRIND_MAKE_MEM_UNDEFINED(lo, n);
#endif
}

#endif /* TP_DIRECT_DIRECT_INT_H */
