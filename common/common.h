/*
 * common/common.h - internal helpers shared by every layer: the allocator
 * hooks, logging, branch hints and sanitizer annotations. Nothing here knows
 * about actors or threads.
 */
#ifndef TP_COMMON_H
#define TP_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <troupe/base.h>

#define TP__LIKELY(x)   __builtin_expect(!!(x), 1)
#define TP__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TP__UNUSED(x)   ((void)(x))
#define TP__CACHELINE   64
#define TP__ALIGNED(n)  __attribute__((aligned(n)))

/*
 * TP_ASSERT(cond): an internal invariant (owning thread, state machine,
 * single writer). Checked when the build defines TP_ASSERTS (Debug builds
 * and the CI's sanitizer builds, see CMakeLists.txt), compiled out
 * otherwise: cond must have no side effects. A failed assertion is a bug
 * in Troupe, never the user's input: it reports and aborts the process even
 * inside an actor callback (the fault trap does not turn it into a crash of
 * that actor).
 */
#ifdef TP_ASSERTS
#define TP_ASSERT(cond)                                                        \
    (TP__LIKELY(cond) ? (void)0                                                \
                      : tp__assert_fail(#cond, __FILE__, __LINE__, __func__))
#define TP_ASSERTS_ON 1
#else
#define TP_ASSERT(cond) ((void)0)
#define TP_ASSERTS_ON   0
#endif
/* Called by tp__assert_fail before it aborts (set by the fault trap). */
extern void (*_Atomic tp__assert_prepare)(void);
__attribute__((noreturn)) void
tp__assert_fail(const char *cond, const char *file, int line, const char *func);

#define tp__container_of(ptr, type, member)                                    \
    ((type *)((char *)(ptr)-offsetof(type, member)))

/* Allocation: every Troupe allocation goes through these (replaceable). */
void *tp__malloc(size_t size);
void *tp__calloc(size_t count, size_t size);
void *tp__realloc(void *ptr, size_t size);
void tp__free(void *ptr);
char *tp__strdup(const char *s);
/* Increments/decrements the count of live runtimes (allocator lock-out). */
void tp__alloc_runtime_ref(int delta);

/* Logging helpers. */
void tp__vlog(tp_log_level level, const char *fmt, va_list ap);
#define tp__log_enabled(lvl) ((int)(lvl) <= (int)tp_log_get_level())

/* ThreadSanitizer annotations for happens-before edges created through
 * primitives TSan cannot see (ck's volatile accesses). */
#if defined(__SANITIZE_THREAD__)
#define TP__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TP__TSAN 1
#endif
#endif
#ifdef TP__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tp__tsan_acquire(p) __tsan_acquire((void *)(p))
#define tp__tsan_release(p) __tsan_release((void *)(p))
#else
#define tp__tsan_acquire(p) ((void)0)
#define tp__tsan_release(p) ((void)0)
#endif

/* Small numeric helpers. */
static inline size_t
tp__align_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}

static inline uint64_t
tp__hash64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* xorshift64* step: per-thread pseudo random numbers (never 0 state). */
static inline uint64_t
tp__rand_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Resident set size of the process in bytes (0 if unknown). */
uint64_t tp__rss_bytes(void);

#endif /* TP_COMMON_H */
