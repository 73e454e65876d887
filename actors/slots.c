/*
 * actors/slots.c - the pid table and actor memory.
 *
 * pid = generation << 32 | slot index. The table is a directory of chunks of
 * 65,536 slot pointers; a slot is bound to one actor block for the runtime's
 * life (type-stable memory), so resolving a pid is two loads and a
 * generation compare, and never touches freed memory.
 *
 * Blocks come from per-thread bump arenas per size class (no per-actor
 * malloc header, no locking on the spawn path) and are recycled through
 * per-thread free lists with a shared depot of batches, so spawn/exit churn
 * across schedulers stays local and memory of dead actors is reused.
 */
#include "actor_int.h"

#include <errno.h>
#include <string.h>

/* Multiples of 64 so every header starts on a cache line (see the layout
 * comment in actor_int.h). */
static const uint32_t class_sizes[TP__NCLASS] = {
    128,  192,  256,  320,  384,  448,  512,   640,   768,
    1024, 1536, 2048, 3072, 4096, 8192, 16384, 32768, 65536 + 128};

#define CACHE_MAX  128u
#define BATCH_SIZE 64u

int
tp__class_of(size_t size, size_t *block)
{
    for (unsigned k = 0; k < TP__NCLASS; k++) {
        if (size <= class_sizes[k]) {
            *block = class_sizes[k];
            return (int)k;
        }
    }
    return -1;
}

size_t
tp__class_size(unsigned klass)
{
    return class_sizes[klass];
}

struct tp__actor *
tp__slot_actor(struct tp__actors *A, uint32_t idx)
{
    struct tp__actor **chunk = atomic_load_explicit(
        &A->dir[idx >> TP__CHUNK_BITS], memory_order_acquire);

    if (chunk == NULL)
        return NULL;
    /* The slot pointer is written once (release) before the slot index is
     * handed out; consume-like acquire load. */
    return atomic_load_explicit(
        (_Atomic(struct tp__actor *) *)&chunk[idx & (TP__CHUNK_SIZE - 1)],
        memory_order_acquire);
}

struct tp__actor *
tp__actor_lookup(struct tp__actors *A, tp_pid pid)
{
    uint32_t idx = tp_pid_index(pid);
    struct tp__actor *a;

    if (pid == TP_PID_NONE || (pid & TP__PID_DEAD) ||
        idx >= atomic_load_explicit(&A->next_slot, memory_order_acquire))
        return NULL;
    a = tp__slot_actor(A, idx);
    if (a == NULL || tp__actor_pid(a) != pid)
        return NULL;
    return a;
}

static struct tp__actor **
chunk_get(struct tp__actors *A, uint32_t idx)
{
    uint32_t c = idx >> TP__CHUNK_BITS;
    struct tp__actor **chunk =
        atomic_load_explicit(&A->dir[c], memory_order_acquire);

    if (chunk != NULL)
        return chunk;
    pthread_mutex_lock(&A->lock);
    chunk = atomic_load_explicit(&A->dir[c], memory_order_relaxed);
    if (chunk == NULL) {
        chunk = tp__calloc(TP__CHUNK_SIZE, sizeof(*chunk));
        /* release: a zeroed chunk before anyone can read through it. */
        if (chunk != NULL)
            atomic_store_explicit(&A->dir[c], chunk, memory_order_release);
    }
    pthread_mutex_unlock(&A->lock);
    return chunk;
}

static void *
arena_alloc(tp_ctx *ctx, unsigned klass)
{
    struct tp__arena *ar = &ctx->arena[klass];
    size_t size = class_sizes[klass];
    void *p;

    if ((size_t)(ar->end - ar->cur) < size) {
        size_t rsize = size * 8 > 256 * 1024 ? size * 8 : 256 * 1024;
        struct tp__region *r = tp__malloc(rsize);

        if (r == NULL)
            return NULL;
        pthread_mutex_lock(&ctx->A->lock);
        r->next = ctx->A->regions;
        ctx->A->regions = r;
        pthread_mutex_unlock(&ctx->A->lock);
        /* Blocks start on a cache line. */
        ar->cur = (char *)tp__align_up((uintptr_t)(r + 1), TP__CACHELINE);
        ar->end = (char *)r + rsize;
    }
    p = ar->cur;
    ar->cur += size;
    return p;
}

static struct tp__actor *
slot_new(tp_ctx *ctx, unsigned klass)
{
    struct tp__actors *A = ctx->A;
    struct tp__actor **chunk;
    struct tp__actor *a;
    uint32_t idx;

    a = arena_alloc(ctx, klass);
    if (a == NULL)
        return NULL;
    /* Indices are never given back: a slot keeps its block forever. A
     * reader may see the index before the slot pointer; it then finds NULL
     * and treats the pid as dead. */
    idx = atomic_fetch_add_explicit(&A->next_slot, 1, memory_order_relaxed);
    if (idx >= UINT32_MAX - 1)
        return NULL;
    chunk = chunk_get(A, idx);
    if (chunk == NULL)
        return NULL;
    memset(a, 0, TP__ACTOR_HDR);
    tp__mpsc_init(&a->mq, false);
    atomic_init(&a->sys, NULL);
    atomic_init(&a->pid, TP__PID_DEAD | idx);
    a->sclass = (uint8_t)klass;
    /* release: the initialised header before the slot pointer. */
    atomic_store_explicit(
        (_Atomic(struct tp__actor *) *)&chunk[idx & (TP__CHUNK_SIZE - 1)], a,
        memory_order_release);
    return a;
}

static bool
cache_refill(tp_ctx *ctx, unsigned klass)
{
    struct tp__actors *A = ctx->A;
    struct tp__depot_batch *b;

    pthread_mutex_lock(&A->lock);
    b = A->depot[klass];
    if (b != NULL)
        A->depot[klass] = b->next;
    pthread_mutex_unlock(&A->lock);
    if (b == NULL)
        return false;
    ctx->cache[klass].head = b->head;
    ctx->cache[klass].n = b->n;
    tp__free(b);
    return true;
}

struct tp__actor *
tp__slot_alloc(tp_ctx *ctx, unsigned klass)
{
    struct tp__slot_cache *c = &ctx->cache[klass];
    struct tp__actor *a;

    if (c->head == NULL && !cache_refill(ctx, klass)) {
        /* Slot creation is serialised by the lock only for the index. */
        return slot_new(ctx, klass);
    }
    a = c->head;
    c->head = (struct tp__actor *)atomic_load_explicit(&a->task.next,
                                                       memory_order_relaxed);
    c->n--;
    return a;
}

static void
cache_spill(tp_ctx *ctx, unsigned klass)
{
    struct tp__slot_cache *c = &ctx->cache[klass];
    struct tp__depot_batch *b = tp__malloc(sizeof(*b));
    struct tp__actor *a, *last = NULL;

    if (b == NULL)
        return; /* keep them locally */
    b->head = c->head;
    a = c->head;
    for (uint32_t i = 0; i < BATCH_SIZE; i++) {
        last = a;
        a = (struct tp__actor *)atomic_load_explicit(&a->task.next,
                                                     memory_order_relaxed);
    }
    atomic_store_explicit(&last->task.next, NULL, memory_order_relaxed);
    b->n = BATCH_SIZE;
    c->head = a;
    c->n -= BATCH_SIZE;
    pthread_mutex_lock(&ctx->A->lock);
    b->next = ctx->A->depot[klass];
    ctx->A->depot[klass] = b;
    pthread_mutex_unlock(&ctx->A->lock);
}

void
tp__slot_free(tp_ctx *ctx, struct tp__actor *a)
{
    struct tp__slot_cache *c = &ctx->cache[a->sclass];

    atomic_store_explicit(&a->task.next, (struct tp__node *)c->head,
                          memory_order_relaxed);
    c->head = a;
    if (++c->n > CACHE_MAX)
        cache_spill(ctx, a->sclass);
}

void
tp__slots_free_all(struct tp__actors *A)
{
    struct tp__region *r = A->regions;

    while (r != NULL) {
        struct tp__region *next = r->next;
        tp__free(r);
        r = next;
    }
    A->regions = NULL;
    for (unsigned k = 0; k < TP__NCLASS; k++) {
        struct tp__depot_batch *b = A->depot[k];
        while (b != NULL) {
            struct tp__depot_batch *next = b->next;
            tp__free(b);
            b = next;
        }
        A->depot[k] = NULL;
    }
    for (uint32_t c = 0; c < TP__DIR_SIZE; c++) {
        struct tp__actor **chunk =
            atomic_load_explicit(&A->dir[c], memory_order_relaxed);
        if (chunk == NULL)
            break;
        tp__free(chunk);
    }
    tp__free((void *)A->dir);
    A->dir = NULL;
}
