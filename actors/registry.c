/*
 * actors/registry.c - names -> pids.
 *
 * An open-addressing table of pointers to immutable entries. Writers
 * (register, unregister, release at death) take a mutex; readers on
 * scheduler threads take no lock at all: they load the table and entry
 * pointers with acquire loads, and removed entries and replaced tables are
 * freed only after every scheduler has passed a quiescent state
 * (tp__rt_retire). Readers on other threads take the mutex.
 *
 * A name is released "atomically" with its actor's death: a lookup checks
 * that the pid is still alive, so once an actor is dead no lookup returns
 * it, even before its dying turn has removed the entry.
 */
#include "actor_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct entry {
    struct tp__retired retire; /* for the deferred free */
    uint64_t hash;
    tp_pid pid;
    struct entry *next_same; /* other names of the same pid (writers) */
    char name[];
};

struct table {
    struct tp__retired retire; /* for the deferred free */
    uint32_t mask;
    uint32_t used; /* live + tombstones */
    _Atomic(struct entry *) slot[];
};

struct tp__registry {
    pthread_mutex_t lock;
    _Atomic(struct table *) tab;
    uint32_t live;
    struct tp__u64map by_pid; /* pid -> first entry (writers) */
};

static struct entry tombstone;
#define TOMB (&tombstone)

static uint64_t
hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h | 1;
}

static struct table *
table_new(uint32_t cap)
{
    struct table *t = tp__calloc(1, sizeof(*t) + cap * sizeof(t->slot[0]));

    if (t != NULL)
        t->mask = cap - 1;
    return t;
}

int
tp__registry_new(struct tp__actors *A)
{
    struct tp__registry *r = tp__calloc(1, sizeof(*r));

    if (r == NULL)
        return -ENOMEM;
    r->tab = table_new(64);
    if (r->tab == NULL) {
        tp__free(r);
        return -ENOMEM;
    }
    pthread_mutex_init(&r->lock, NULL);
    tp__u64map_init(&r->by_pid);
    A->names = r;
    return 0;
}

void
tp__registry_free(struct tp__actors *A)
{
    struct tp__registry *r = A->names;
    struct table *t;

    if (r == NULL)
        return;
    t = atomic_load(&r->tab);
    for (uint32_t i = 0; i <= t->mask; i++) {
        struct entry *e =
            atomic_load_explicit(&t->slot[i], memory_order_relaxed);
        if (e != NULL && e != TOMB)
            tp__free(e);
    }
    tp__free(t);
    tp__u64map_fini(&r->by_pid);
    pthread_mutex_destroy(&r->lock);
    tp__free(r);
    A->names = NULL;
}

/* Finds the slot index of name, or -1. */
static long
find(struct table *t, const char *name, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & t->mask, n = 0; n <= t->mask;
         i = (i + 1) & t->mask, n++) {
        /* acquire: entry contents were written before publication. */
        struct entry *e =
            atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (e == NULL)
            return -1;
        if (e != TOMB && e->hash == h && strcmp(e->name, name) == 0)
            return (long)i;
    }
    return -1;
}

static bool
pid_alive(struct tp__actors *A, tp_pid pid)
{
    return tp__actor_lookup(A, pid) != NULL;
}

static tp_pid
do_whereis_locked(tp_runtime *rt, const char *name)
{
    struct tp__actors *A = tp__actors_of(rt);
    struct tp__registry *r = A->names;
    bool locked = tp__sched_self(rt) == NULL;
    uint64_t h;
    struct table *t;
    tp_pid pid = TP_PID_NONE;
    long i;

    if (name == NULL || *name == '\0')
        return TP_PID_NONE;
    h = hash_name(name);
    if (locked)
        pthread_mutex_lock(&r->lock);
    t = atomic_load_explicit(&r->tab, memory_order_acquire);
    i = find(t, name, h);
    if (i >= 0)
        pid = atomic_load_explicit(&t->slot[i], memory_order_acquire)->pid;
    if (locked)
        pthread_mutex_unlock(&r->lock);
    return pid != TP_PID_NONE && pid_alive(A, pid) ? pid : TP_PID_NONE;
}

static void
free_entry(struct tp__retired *r)
{
    tp__free(tp__container_of(r, struct entry, retire));
}

static void
unlink_by_pid(struct tp__registry *r, struct entry *e)
{
    uint64_t *head = tp__u64map_get(&r->by_pid, e->pid);
    struct entry **pp;

    if (head == NULL)
        return;
    if ((struct entry *)(uintptr_t)*head == e) {
        if (e->next_same != NULL)
            *head = (uint64_t)(uintptr_t)e->next_same;
        else
            tp__u64map_remove(&r->by_pid, e->pid, NULL);
        return;
    }
    for (pp = &((struct entry *)(uintptr_t)*head)->next_same; *pp != NULL;
         pp = &(*pp)->next_same) {
        if (*pp == e) {
            *pp = e->next_same;
            return;
        }
    }
}

/* Removes slot i (lock held). */
static void
remove_at(struct tp__actors *A, struct table *t, long i)
{
    struct tp__registry *r = A->names;
    struct entry *e = atomic_load_explicit(&t->slot[i], memory_order_relaxed);

    unlink_by_pid(r, e);
    atomic_store_explicit(&t->slot[i], TOMB, memory_order_release);
    r->live--;
    tp__rt_retire(A->rt, &e->retire, free_entry);
}

static void
free_table(struct tp__retired *r)
{
    tp__free(tp__container_of(r, struct table, retire));
}

/* Rebuilds into a table sized for the live entries (lock held). */
static int
rebuild(struct tp__actors *A, struct table *old)
{
    struct tp__registry *r = A->names;
    uint32_t cap = 64;
    struct table *t;

    while (cap < (r->live + 1) * 4)
        cap *= 2;
    if ((t = table_new(cap)) == NULL)
        return -ENOMEM;
    for (uint32_t i = 0; i <= old->mask; i++) {
        struct entry *e =
            atomic_load_explicit(&old->slot[i], memory_order_relaxed);
        uint32_t j;
        if (e == NULL || e == TOMB)
            continue;
        for (j = (uint32_t)e->hash & t->mask;
             atomic_load_explicit(&t->slot[j], memory_order_relaxed) != NULL;
             j = (j + 1) & t->mask)
            ;
        atomic_store_explicit(&t->slot[j], e, memory_order_relaxed);
        t->used++;
    }
    /* release: the filled table before readers can load it. */
    atomic_store_explicit(&r->tab, t, memory_order_release);
    tp__rt_retire(A->rt, &old->retire, free_table);
    return 0;
}

static int
insert(struct tp__actors *A, const char *name, uint64_t h, tp_pid pid)
{
    struct tp__registry *r = A->names;
    struct table *t = atomic_load_explicit(&r->tab, memory_order_relaxed);
    size_t len = strlen(name);
    struct entry *e;
    uint64_t *head;
    uint32_t i;

    if ((t->used + 1) * 2 > t->mask + 1) {
        int err = rebuild(A, t);
        if (err != 0)
            return err;
        t = atomic_load_explicit(&r->tab, memory_order_relaxed);
    }
    if ((e = tp__malloc(sizeof(*e) + len + 1)) == NULL)
        return -ENOMEM;
    e->hash = h;
    e->pid = pid;
    memcpy(e->name, name, len + 1);
    head = tp__u64map_get(&r->by_pid, pid);
    e->next_same = head != NULL ? (struct entry *)(uintptr_t)*head : NULL;
    if (tp__u64map_put(&r->by_pid, pid, (uint64_t)(uintptr_t)e) < 0) {
        tp__free(e);
        return -ENOMEM;
    }
    for (i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
        struct entry *x =
            atomic_load_explicit(&t->slot[i], memory_order_relaxed);
        if (x == NULL || x == TOMB) {
            if (x == NULL)
                t->used++;
            break;
        }
    }
    /* release: the entry's contents before its publication. */
    atomic_store_explicit(&t->slot[i], e, memory_order_release);
    r->live++;
    return 0;
}

static int
do_register_locked(tp_runtime *rt, const char *name, tp_pid pid)
{
    struct tp__actors *A = tp__actors_of(rt);
    struct tp__registry *r = A->names;
    struct tp__actor *a;
    uint64_t h;
    long i;
    int err;

    if (name == NULL || *name == '\0' || strlen(name) > TP_NAME_MAX)
        return -EINVAL;
    h = hash_name(name);
    pthread_mutex_lock(&r->lock);
    i = find(atomic_load(&r->tab), name, h);
    if (i >= 0) {
        struct table *t = atomic_load(&r->tab);
        tp_pid owner = atomic_load(&t->slot[i])->pid;
        if (pid_alive(A, owner)) {
            pthread_mutex_unlock(&r->lock);
            return -EEXIST;
        }
        remove_at(A, t, i); /* its actor died before releasing it */
    }
    a = tp__actor_lookup(A, pid);
    if (a == NULL) {
        pthread_mutex_unlock(&r->lock);
        return -ESRCH;
    }
    err = insert(A, name, h, pid);
    if (err == 0)
        atomic_fetch_or(&a->aflags, TP__AF_NAMED);
    pthread_mutex_unlock(&r->lock);
    return err;
}

static int
do_unregister_locked(tp_runtime *rt, const char *name, tp_pid pid)
{
    struct tp__actors *A = tp__actors_of(rt);
    struct tp__registry *r = A->names;
    struct table *t;
    long i;
    int err = -ENOENT;

    if (name == NULL)
        return -EINVAL;
    pthread_mutex_lock(&r->lock);
    t = atomic_load(&r->tab);
    i = find(t, name, hash_name(name));
    if (i >= 0 && atomic_load(&t->slot[i])->pid == pid) {
        remove_at(A, t, i);
        err = 0;
    }
    pthread_mutex_unlock(&r->lock);
    return err;
}

void
tp__registry_release(struct tp__actors *A, tp_pid pid)
{
    struct tp__registry *r = A->names;
    uint64_t *head;

    pthread_mutex_lock(&r->lock);
    while ((head = tp__u64map_get(&r->by_pid, pid)) != NULL) {
        struct entry *e = (struct entry *)(uintptr_t)*head;
        struct table *t = atomic_load(&r->tab);
        long i = find(t, e->name, e->hash);
        if (i < 0) {
            tp__u64map_remove(&r->by_pid, pid, NULL); /* inconsistent */
            break;
        }
        remove_at(A, t, i);
    }
    pthread_mutex_unlock(&r->lock);
}

void
tp__registry_name_of(struct tp__actors *A, tp_pid pid, char *buf, size_t size)
{
    struct tp__registry *r = A->names;
    uint64_t *head;

    buf[0] = '\0';
    pthread_mutex_lock(&r->lock);
    head = tp__u64map_get(&r->by_pid, pid);
    if (head != NULL)
        snprintf(buf, size, "%s", ((struct entry *)(uintptr_t)*head)->name);
    pthread_mutex_unlock(&r->lock);
}

int
tp_register(tp_runtime *rt, const char *name, tp_pid pid)
{
    int r;
    TP__RUNTIME_BEGIN(); /* takes the registry lock */

    r = do_register_locked(rt, name, pid);
    TP__RUNTIME_END();
    return r;
}

int
tp_unregister(tp_runtime *rt, const char *name, tp_pid pid)
{
    int r;
    TP__RUNTIME_BEGIN(); /* takes the registry lock */

    r = do_unregister_locked(rt, name, pid);
    TP__RUNTIME_END();
    return r;
}

tp_pid
tp_whereis(tp_runtime *rt, const char *name)
{
    tp_pid r;
    TP__RUNTIME_BEGIN(); /* takes the registry lock */

    r = do_whereis_locked(rt, name);
    TP__RUNTIME_END();
    return r;
}
