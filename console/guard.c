/*
 * console/guard.c - what keeps strangers from wearing the console down:
 *
 *  - the failed-authentication limiter: one bucket per client address
 *    (IPv4 address, or IPv6 /64) plus one for everybody, each a GCRA
 *    ("theoretical arrival time"): a burst of auth_fail_burst failures,
 *    then one more per auth_fail_interval_ms. While an address's (or the
 *    global) bucket is empty, attempts are refused without looking at the
 *    token, so guessing gains nothing from trying faster;
 *  - the HTTP connection pool: max_http slots plus TP_CONSOLE_HTTP_RESERVE kept
 *    for /metrics, at most max_http_per_addr per address, and when full a
 *    newcomer takes the slot of the connection that has waited longest
 *    (at least TP_CONSOLE_HTTP_EVICT_MS) for a request that never came: a slow
 *    client cannot keep a slot from a quick one.
 *
 * Both are shared by every host actor of a console, under one mutex
 * each, taken only at connection start, per request and per failed
 * authentication (never per byte).
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>

/* ---- address keys ---------------------------------------------------------*/

void
tp__addr_key_of(const tp_net_addr *a, struct tp__addr_key *k)
{
    memset(k, 0, sizeof(*k));
    if (a == NULL)
        return;
    if (a->family == TP_NET_INET) {
        k->family = TP_NET_INET;
        memcpy(k->b, a->addr, 4);
    } else if (a->family == TP_NET_INET6) {
        k->family = TP_NET_INET6;
        memcpy(k->b, a->addr, 8); /* one /64 is one address */
    }
}

static bool
key_eq(const struct tp__addr_key *a, const struct tp__addr_key *b)
{
    return a->family == b->family && memcmp(a->b, b->b, sizeof(a->b)) == 0;
}

/* ---- the failed-authentication limiter ------------------------------------*/

int
tp__guard_init(struct tp_console *c)
{
    struct tp__guard *g = &c->guard;

    pthread_mutex_init(&g->auth_lock, NULL);
    pthread_mutex_init(&g->pool_lock, NULL);
    g->nslots = c->opts.max_http + TP_CONSOLE_HTTP_RESERVE;
    g->slot = tp__calloc(g->nslots, sizeof(*g->slot));
    return g->slot != NULL ? 0 : -ENOMEM;
}

void
tp__guard_free(struct tp_console *c)
{
    pthread_mutex_destroy(&c->guard.auth_lock);
    pthread_mutex_destroy(&c->guard.pool_lock);
    tp__free(c->guard.slot);
}

/* GCRA: may an event happen now under (burst, t)? */
static bool
gcra_ok(uint64_t tat, uint64_t now, uint64_t burst, uint64_t t)
{
    return tat <= now || tat - now <= (burst - 1) * t;
}

static uint64_t
gcra_take(uint64_t tat, uint64_t now, uint64_t t)
{
    return (tat > now ? tat : now) + t;
}

/* The bucket of k (auth_lock held): found, else the most recovered one
 * is given to k. */
static struct tp__auth_bucket *
bucket_of(struct tp__guard *g, const struct tp__addr_key *k)
{
    struct tp__auth_bucket *best = &g->bucket[0];

    for (unsigned i = 0; i < TP__AUTH_ADDRS; i++) {
        if (key_eq(&g->bucket[i].k, k) && g->bucket[i].tat != 0)
            return &g->bucket[i];
        if (g->bucket[i].tat < best->tat)
            best = &g->bucket[i];
    }
    best->k = *k;
    best->tat = 0;
    return best;
}

/* The global bucket's burst and interval (TP_CONSOLE_AUTH_GLOBAL_X times the
 * per-address ones: guessing from many addresses stays bounded too). */
static void
limits(const struct tp_console *c, uint64_t *burst, uint64_t *t, bool global)
{
    *burst = c->opts.auth_fail_burst;
    *t = (uint64_t)c->opts.auth_fail_interval_ms * 1000000u;
    if (global) {
        *burst *= TP_CONSOLE_AUTH_GLOBAL_X;
        *t /= TP_CONSOLE_AUTH_GLOBAL_X;
    }
}

bool
tp__auth_allowed(struct tp_console *c, const struct tp__addr_key *k)
{
    struct tp__guard *g = &c->guard;
    uint64_t now = tp_now_ns(), burst, t, gburst, gt;
    bool ok;

    limits(c, &burst, &t, false);
    limits(c, &gburst, &gt, true);
    pthread_mutex_lock(&g->auth_lock);
    ok = gcra_ok(g->global_tat, now, gburst, gt) &&
         (k->family == 0 || gcra_ok(bucket_of(g, k)->tat, now, burst, t));
    pthread_mutex_unlock(&g->auth_lock);
    if (!ok)
        atomic_fetch_add_explicit(&c->auth_throttled, 1, memory_order_relaxed);
    return ok;
}

void
tp__auth_failed(struct tp_console *c, const struct tp__addr_key *k)
{
    struct tp__guard *g = &c->guard;
    uint64_t now = tp_now_ns(), burst, t, gburst, gt;

    limits(c, &burst, &t, false);
    limits(c, &gburst, &gt, true);
    atomic_fetch_add_explicit(&c->auth_failures, 1, memory_order_relaxed);
    pthread_mutex_lock(&g->auth_lock);
    g->global_tat = gcra_take(g->global_tat, now, gt);
    if (k->family != 0) {
        struct tp__auth_bucket *b = bucket_of(g, k);
        b->tat = gcra_take(b->tat, now, t);
    }
    pthread_mutex_unlock(&g->auth_lock);
}

/* ---- the HTTP pool -----------------------------------------------------*/

/* The normal slot a completed request may take over (pool_lock held):
 * the one waiting longest for a request, for at least
 * TP_CONSOLE_HTTP_EVICT_MS; of address k only when `same`. -1 if none. */
static int
victim(struct tp__guard *g, unsigned max_http, const struct tp__addr_key *k,
       bool same, uint64_t now)
{
    uint64_t min = TP_CONSOLE_HTTP_EVICT_MS * 1000000ull;
    int best = -1;

    for (unsigned i = 0; i < max_http; i++) {
        struct tp__hslot *s = &g->slot[i];
        if (!s->used || s->since == 0 || s->k.family == 0 ||
            now - s->since < min || (same && !key_eq(&s->k, k)))
            continue;
        if (best < 0 || s->since < g->slot[best].since)
            best = (int)i;
    }
    return best;
}

/* A waiting-room slot (pool_lock held): a free one, else the one whose
 * occupant came first and has not sent a whole request (it is
 * displaced). -1 if every occupant is being answered. */
static int
room_slot(struct tp__guard *g, unsigned max_http)
{
    int best = -1;

    for (unsigned i = max_http; i < g->nslots; i++) {
        if (!g->slot[i].used)
            return (int)i;
        if (g->slot[i].since != 0 &&
            (best < 0 || g->slot[i].since < g->slot[best].since))
            best = (int)i;
    }
    return best;
}

static int
free_normal(struct tp__guard *g, unsigned max_http)
{
    for (unsigned i = 0; i < max_http; i++)
        if (!g->slot[i].used)
            return (int)i;
    return -1;
}

/* Counts the normal slots in use, and those of address k (any kind),
 * leaving out slot `skip`. */
static void
count(struct tp__guard *g, const struct tp__addr_key *k, unsigned max_http,
      int skip, unsigned *normal, unsigned *same)
{
    *normal = *same = 0;
    for (unsigned i = 0; i < g->nslots; i++) {
        if (!g->slot[i].used || (int)i == skip)
            continue;
        *normal += i < max_http;
        *same += k->family != 0 && key_eq(&g->slot[i].k, k);
    }
}

/* Is there room for k in the normal pool (pool_lock held)? */
static bool
normal_room(struct tp_console *c, const struct tp__addr_key *k, int skip,
            bool *per_addr_full)
{
    unsigned normal, same;

    count(&c->guard, k, c->opts.max_http, skip, &normal, &same);
    *per_addr_full = k->family != 0 && same >= c->opts.max_http_per_addr;
    return normal < c->opts.max_http && !*per_addr_full;
}

static void
occupy(struct tp__guard *g, int i, unsigned max_http, tp_pid self,
       const struct tp__addr_key *k, struct tp__hticket *t)
{
    struct tp__hslot *s = &g->slot[i];

    s->used = true;
    s->reserve = (unsigned)i >= max_http;
    s->pid = self;
    s->k = *k;
    s->since = tp_now_ns();
    s->gen = ++g->gen;
    t->idx = i, t->gen = s->gen, t->reserve = s->reserve;
}

int
tp__hpool_enter(struct tp_console *c, const struct tp__addr_key *k, tp_pid self,
                struct tp__hticket *t, tp_pid *evicted)
{
    struct tp__guard *g = &c->guard;
    unsigned max = c->opts.max_http;
    bool full_addr;
    int i;

    *evicted = TP_PID_NONE;
    pthread_mutex_lock(&g->pool_lock);
    if (normal_room(c, k, -1, &full_addr))
        i = free_normal(g, max);
    else /* network clients only: the waiting room */
        i = k->family != 0 ? room_slot(g, max) : -1;
    if (i >= 0 && g->slot[i].used) {
        *evicted = g->slot[i].pid;
        atomic_fetch_sub_explicit(&c->http_conns, 1, memory_order_relaxed);
    }
    if (i >= 0)
        occupy(g, i, max, self, k, t);
    pthread_mutex_unlock(&g->pool_lock);
    if (i < 0)
        return -EUSERS;
    atomic_fetch_add_explicit(&c->http_conns, 1, memory_order_relaxed);
    return 0;
}

bool
tp__hpool_upgrade(struct tp_console *c, struct tp__hticket *t, tp_pid self,
                  tp_pid *evicted)
{
    struct tp__guard *g = &c->guard;
    unsigned max = c->opts.max_http;
    struct tp__hslot *mine;
    bool full_addr;
    int i = -1;

    *evicted = TP_PID_NONE;
    pthread_mutex_lock(&g->pool_lock);
    mine = t->idx >= 0 ? &g->slot[t->idx] : NULL;
    if (mine != NULL && mine->used && mine->gen == t->gen && t->reserve) {
        struct tp__addr_key k = mine->k;
        if (normal_room(c, &k, t->idx, &full_addr))
            i = free_normal(g, max);
        else
            i = victim(g, max, &k, full_addr, tp_now_ns());
        if (i >= 0 && g->slot[i].used) {
            *evicted = g->slot[i].pid;
            atomic_fetch_sub_explicit(&c->http_conns, 1, memory_order_relaxed);
        }
        if (i >= 0) {
            memset(mine, 0, sizeof(*mine));
            occupy(g, i, max, self, &k, t);
            g->slot[i].since = 0; /* its request is being answered */
        }
    }
    pthread_mutex_unlock(&g->pool_lock);
    return i >= 0;
}

/* Runs fn on t's slot if t still owns it; returns whether it did. */
static bool
with_slot(struct tp_console *c, const struct tp__hticket *t,
          void (*fn)(struct tp__hslot *, uint64_t), uint64_t arg)
{
    struct tp__guard *g = &c->guard;
    bool mine;

    if (t->idx < 0)
        return false;
    pthread_mutex_lock(&g->pool_lock);
    mine = g->slot[t->idx].used && g->slot[t->idx].gen == t->gen;
    if (mine && fn != NULL)
        fn(&g->slot[t->idx], arg);
    pthread_mutex_unlock(&g->pool_lock);
    return mine;
}

static void
set_since(struct tp__hslot *s, uint64_t since)
{
    s->since = since;
}

static void
clear(struct tp__hslot *s, uint64_t unused)
{
    (void)unused;
    memset(s, 0, sizeof(*s));
}

bool
tp__hpool_owns(struct tp_console *c, const struct tp__hticket *t)
{
    return with_slot(c, t, NULL, 0);
}

void
tp__hpool_waiting(struct tp_console *c, const struct tp__hticket *t,
                  bool waiting)
{
    with_slot(c, t, set_since, waiting ? tp_now_ns() : 0);
}

void
tp__hpool_leave(struct tp_console *c, struct tp__hticket *t)
{
    if (with_slot(c, t, clear, 0))
        atomic_fetch_sub_explicit(&c->http_conns, 1, memory_order_relaxed);
    t->idx = -1;
}
