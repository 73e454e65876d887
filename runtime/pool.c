/*
 * runtime/pool.c - magazine allocator for messages.
 *
 * Each thread keeps a LIFO free list per size class. A list that grows past
 * 2 * BATCH gives BATCH blocks to the class's depot; an empty list takes a
 * batch from the depot before asking the system allocator. So a producer
 * thread that allocates and a consumer thread that frees (fan-in) exchange
 * whole batches under one short lock instead of paying a malloc per message.
 * A depot keeps at most DEPOT_BYTES per class: the batches a burst frees
 * beyond that go back to the system allocator, so memory a flood took
 * comes back after it instead of staying cached for ever; once several
 * MiB went back, the watchdog thread asks glibc to give its free pages
 * to the kernel (tp__pool_maybe_trim()).
 * Under AddressSanitizer the pool is bypassed so use-after-free stays
 * visible.
 */
#include "pool.h"

#include "common/common.h"
#include "mailbox/msg.h"
#include "runtime_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TP__POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TP__POOL_OFF 1
#endif
#endif

#define NCLASS      13
#define BATCH       64
#define DEPOT_BYTES (1u << 20)    /* cached per class, at most (about) */
#define TRIM_BYTES  (4u << 20)    /* given back before a malloc_trim() */
#define TRIM_GAP_NS 1000000000ull /* at most one trim a second */

static const uint32_t class_size[NCLASS] = {
    64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096};

struct block {
    struct block *next;
    struct block *next_batch; /* valid on a batch's first block */
};

struct cache {
    struct block *head[NCLASS];
    uint32_t n[NCLASS];
};

struct depot {
    pthread_mutex_t lock;
    struct block *batches;
    uint32_t n; /* batches held */
};

static struct depot depots[NCLASS];
/* Bytes the depots gave back to the system allocator since the last trim
 * (a statistic: relaxed), and when that trim ran. */
static _Atomic uint64_t returned_bytes;
static _Atomic uint64_t last_trim_ns;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;
static _Thread_local struct cache *tls_cache;

static void depot_put(int k, struct block *batch);

static void
cache_destroy(void *arg)
{
    struct cache *c = arg;

    for (int k = 0; k < NCLASS; k++) {
        if (c->head[k] != NULL)
            depot_put(k, c->head[k]);
    }
    tp__free(c);
    tls_cache = NULL;
}

static void
pool_init_once(void)
{
    for (int k = 0; k < NCLASS; k++)
        pthread_mutex_init(&depots[k].lock, NULL);
    pthread_key_create(&cache_key, cache_destroy);
}

static struct cache *
cache_get(void)
{
    struct cache *c = tls_cache;

    if (TP__LIKELY(c != NULL))
        return c;
    pthread_once(&pool_once, pool_init_once);
    c = tp__calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    tls_cache = c;
    pthread_setspecific(cache_key, c);
    return c;
}

/* Classes are 64 and then 1.5x / 2x steps: 96, 128, 192, 256, 384, ...
 * For 64 < size <= 4096 with b = bits of (size - 1): the class is the
 * half-step 3 << (b - 2) or the power 1 << b. */
static int
class_of(size_t size)
{
    unsigned b;

    if (size <= 64)
        return 0;
    if (size > class_size[NCLASS - 1])
        return -1;
    b = 64u - (unsigned)__builtin_clzll((unsigned long long)size - 1);
    return (int)(2 * (b - 7) + 1 + (size > (3u << (b - 2))));
}

static void
chain_free(struct block *b)
{
    while (b != NULL) {
        struct block *next = b->next;

        tp__free(b);
        b = next;
    }
}

/* Batches a depot of class k keeps: DEPOT_BYTES' worth, at least 4. */
static uint32_t
depot_cap(int k)
{
    uint32_t n = DEPOT_BYTES / (BATCH * class_size[k]);

    return n < 4 ? 4 : n;
}

static void
depot_put(int k, struct block *batch)
{
    bool keep;

    pthread_mutex_lock(&depots[k].lock);
    keep = depots[k].n < depot_cap(k);
    if (keep) {
        batch->next_batch = depots[k].batches;
        depots[k].batches = batch;
        depots[k].n++;
    }
    pthread_mutex_unlock(&depots[k].lock);
    if (!keep) {
        chain_free(batch); /* outside the lock: free() may take a while */
        atomic_fetch_add_explicit(&returned_bytes,
                                  (uint64_t)BATCH * class_size[k],
                                  memory_order_relaxed);
    }
}

void
tp__pool_maybe_trim(uint64_t now_ns)
{
    uint64_t last = atomic_load_explicit(&last_trim_ns, memory_order_relaxed);

    if (atomic_load_explicit(&returned_bytes, memory_order_relaxed) <
            TRIM_BYTES ||
        now_ns - last < TRIM_GAP_NS)
        return;
    /* One thread trims (several runtimes' watchdogs may get here). */
    if (!atomic_compare_exchange_strong_explicit(&last_trim_ns, &last, now_ns,
                                                 memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    atomic_store_explicit(&returned_bytes, 0, memory_order_relaxed);
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

static struct block *
depot_take(int k)
{
    struct block *b;

    pthread_mutex_lock(&depots[k].lock);
    b = depots[k].batches;
    if (b != NULL) {
        depots[k].batches = b->next_batch;
        depots[k].n--;
    }
    pthread_mutex_unlock(&depots[k].lock);
    return b;
}

/* Counts a chain (batches taken from the depot are BATCH long, except
 * partial ones flushed at thread exit). */
static uint32_t
chain_len(struct block *b)
{
    uint32_t n = 0;

    for (; b != NULL; b = b->next)
        n++;
    return n;
}

static void *pool_alloc(size_t size, uint8_t *klass, uint32_t *cap);
static void pool_free(void *p, uint8_t klass);

/* Entry points: a fault in here is the runtime's, never an actor's. */
void *
tp__pool_alloc(size_t size, uint8_t *klass, uint32_t *cap)
{
    void *p;
    TP__RUNTIME_BEGIN();

    p = pool_alloc(size, klass, cap);
    TP__RUNTIME_END();
    return p;
}

void
tp__pool_free(void *p, uint8_t klass)
{
    TP__RUNTIME_BEGIN();
    pool_free(p, klass);
    TP__RUNTIME_END();
}

static void *
pool_alloc(size_t size, uint8_t *klass, uint32_t *cap)
{
    int k = class_of(size);
    struct cache *c;
    struct block *b;

#ifdef TP__POOL_OFF
    k = -1;
#endif
    if (k < 0 || (c = cache_get()) == NULL) {
        *klass = 0;
        *cap = (uint32_t)size;
        return tp__malloc(size);
    }
    *klass = (uint8_t)(k + 1);
    *cap = class_size[k];
    b = c->head[k];
    if (TP__UNLIKELY(b == NULL)) {
        b = depot_take(k);
        if (b == NULL)
            return tp__malloc(class_size[k]);
        c->n[k] = chain_len(b);
    }
    c->head[k] = b->next;
    c->n[k]--;
    return b;
}

static void
pool_free(void *p, uint8_t klass)
{
    struct cache *c;
    struct block *b = p, *cut;
    int k = (int)klass - 1;

    if (klass == 0 || (c = cache_get()) == NULL) {
        tp__free(p);
        return;
    }
    b->next = c->head[k];
    c->head[k] = b;
    if (TP__LIKELY(++c->n[k] < 2 * BATCH))
        return;
    /* Give the oldest BATCH blocks (beyond the first BATCH) to the depot. */
    cut = b;
    for (int i = 1; i < BATCH; i++)
        cut = cut->next;
    depot_put(k, cut->next);
    cut->next = NULL;
    c->n[k] = BATCH;
}

void
tp__pool_thread_flush(void)
{
    struct cache *c = tls_cache;

    if (c == NULL)
        return;
    for (int k = 0; k < NCLASS; k++) {
        if (c->head[k] != NULL)
            depot_put(k, c->head[k]);
        c->head[k] = NULL;
        c->n[k] = 0;
    }
}

void
tp__pool_release_all(void)
{
    pthread_once(&pool_once, pool_init_once);
    tp__pool_thread_flush();
    for (int k = 0; k < NCLASS; k++) {
        struct block *batch;
        while ((batch = depot_take(k)) != NULL)
            chain_free(batch);
    }
}

static const struct tp__msg_allocator pool_allocator = {tp__pool_alloc,
                                                        tp__pool_free};

static void
install_once(void)
{
    tp__msg_set_allocator(&pool_allocator);
}

void
tp__pool_install(void)
{
    /* Once per process: later runtimes must not write the hook while the
     * threads of an earlier one read it. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, install_once);
}
