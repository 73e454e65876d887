/*
 * direct/fiber.c - fiber contexts (assembly switch or the ucontext
 * fallback), guarded stacks, and the sanitizer annotations of a switch.
 */
#include "common/common.h"
#include "direct/direct_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Contexts                                                               */

#if defined(TP_DIRECT_UCONTEXT)
#include <ucontext.h>

/* makecontext passes int arguments: the pointers travel in two halves. */
static void
uc_trampoline(unsigned fhi, unsigned flo, unsigned ahi, unsigned alo)
{
    void (*entry)(void *) =
        (void (*)(void *))(((uintptr_t)fhi << 32) | (uintptr_t)flo);
    void *arg = (void *)(((uintptr_t)ahi << 32) | (uintptr_t)alo);

    entry(arg);
    abort(); /* entry never returns */
}

int
tp__fctx_make(struct tp__fctx *ctx, char *lo, size_t size,
              void (*entry)(void *), void *arg)
{
    ucontext_t *uc = ctx->sp;
    uintptr_t f = (uintptr_t)entry, a = (uintptr_t)arg;

    if (uc == NULL && (uc = tp__calloc(1, sizeof(*uc))) == NULL)
        return -ENOMEM;
    ctx->sp = uc;
    getcontext(uc);
    uc->uc_stack.ss_sp = lo;
    uc->uc_stack.ss_size = size;
    uc->uc_link = NULL;
    makecontext(uc, (void (*)(void))uc_trampoline, 4, (unsigned)(f >> 32),
                (unsigned)f, (unsigned)(a >> 32), (unsigned)a);
    return 0;
}

int
tp__fctx_init(struct tp__fctx *ctx)
{
    if (ctx->sp == NULL)
        ctx->sp = tp__calloc(1, sizeof(ucontext_t));
    return ctx->sp != NULL ? 0 : -ENOMEM;
}

void
tp__fctx_free(struct tp__fctx *ctx)
{
    tp__free(ctx->sp);
    ctx->sp = NULL;
}

char *
tp__fctx_low(const struct tp__fctx *ctx)
{
    const ucontext_t *uc = ctx->sp;
#if defined(__x86_64__)
    /* Below the saved rsp: swapcontext's return address and red zone. */
    return (char *)uc->uc_mcontext.gregs[REG_RSP] - 256;
#elif defined(__aarch64__)
    return (char *)uc->uc_mcontext.sp - 256;
#else
    (void)uc;
    return NULL; /* unknown: the caller saves the whole stack */
#endif
}

const char *
tp__fctx_kind(void)
{
    return "ucontext";
}

#else /* assembly */

void tp__fctx_start(void);

int
tp__fctx_make(struct tp__fctx *ctx, char *lo, size_t size,
              void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    uint64_t *f;

#if defined(__x86_64__)
    /* The two-word frame every switch pops (resume address, rbp), then
     * what tp__fctx_start pops: entry and arg. Once they are popped, rsp
     * is the 16-byte aligned top and the call pushes the return address
     * the ABI expects at a function's entry. */
    f = (uint64_t *)(top - 32);
    f[0] = (uint64_t)(uintptr_t)tp__fctx_start;
    f[1] = 0; /* rbp: the end of the frame chain */
    f[2] = (uint64_t)(uintptr_t)entry;
    f[3] = (uint64_t)(uintptr_t)arg;
#elif defined(__aarch64__)
    /* x19..x30 at 0..88, d8..d15 at 96..151, fpcr at 160. */
    f = (uint64_t *)(top - 176);
    memset(f, 0, 176);
    f[0] = (uint64_t)(uintptr_t)arg;             /* x19 */
    f[1] = (uint64_t)(uintptr_t)entry;           /* x20 */
    f[11] = (uint64_t)(uintptr_t)tp__fctx_start; /* x30 */
#else
#error                                                                         \
    "no assembly context switch for this architecture: use TP_DIRECT_UCONTEXT"
#endif
    ctx->sp = f;
    return 0;
}

int
tp__fctx_init(struct tp__fctx *ctx)
{
    (void)ctx;
    return 0;
}

void
tp__fctx_free(struct tp__fctx *ctx)
{
    ctx->sp = NULL;
}

char *
tp__fctx_low(const struct tp__fctx *ctx)
{
    return ctx->sp;
}

const char *
tp__fctx_kind(void)
{
#if defined(__x86_64__)
    return "x86_64 asm";
#else
    return "aarch64 asm";
#endif
}
#endif

/* ---------------------------------------------------------------------- */
/* Stacks                                                                 */

size_t
tp__page_size(void)
{
    static _Atomic size_t page;
    size_t v = atomic_load_explicit(&page, memory_order_relaxed);

    if (v == 0) {
        long p = sysconf(_SC_PAGESIZE);
        v = p > 0 ? (size_t)p : 4096;
        atomic_store_explicit(&page, v, memory_order_relaxed);
    }
    return v;
}

int
tp__stack_map(struct tp__stack *s, size_t size)
{
    size_t page = tp__page_size();
    void *p;

    size = (size + page - 1) & ~(page - 1);
    p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return -ENOMEM;
    if (mprotect(p, page, PROT_NONE) != 0) {
        munmap(p, size + page);
        return -ENOMEM;
    }
    s->base = p;
    s->guard = page;
    s->lo = (char *)p + page;
    s->size = size;
#if defined(TP__VG)
    s->vg = VALGRIND_STACK_REGISTER(s->lo, s->lo + size);
#else
    s->vg = 0;
#endif
    return 0;
}

void
tp__stack_unmap(struct tp__stack *s)
{
    if (s->base == NULL)
        return;
#if defined(TP__VG)
    VALGRIND_STACK_DEREGISTER(s->vg);
#endif
    munmap(s->base, s->guard + s->size);
    memset(s, 0, sizeof(*s));
}

bool
tp__stack_overflowed(const struct tp__stack *s, const void *addr)
{
    uintptr_t a = (uintptr_t)addr, b = (uintptr_t)s->base;

    if (s->base == NULL)
        return false;
    /* A frame larger than the guard may jump past it: accept 64 KiB more
     * below (a NULL dereference is nowhere near). */
    return a < b + s->guard && a + 65536u >= b;
}

/* ---------------------------------------------------------------------- */
/* Sanitizers                                                             */
