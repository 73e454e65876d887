/*
 * net/net.c - the runtime's network state: connection blocks and handles,
 * commands to loops, statistics, introspection and the drain.
 */
#include "net_int.h"
#include "runtime/pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const close_names[TP_NET_CLOSE_REASONS] = {
    "none",  "peer",        "reset",      "timeout", "error",
    "local", "write_limit", "owner_exit", "drain"};

const char *
tp_net_close_name(tp_net_close r)
{
    return (unsigned)r < TP_NET_CLOSE_REASONS ? close_names[r] : "?";
}

const char *
tp_read_mode_name(tp_read_mode m)
{
    switch (m) {
    case TP_READ_ACTIVE:
        return "active";
    case TP_READ_ONCE:
        return "once";
    case TP_READ_PASSIVE:
        return "passive";
    }
    return "?";
}

/* ---------------------------------------------------------------------- */
/* Creation and destruction                                                */

static void drain_hook(struct tp_runtime *rt, void *arg, uint64_t deadline);

static void
net_free(struct tp_runtime *rt, void *p)
{
    struct tp__net *net = p;
    uint32_t n = atomic_load(&net->nchunks);

    (void)rt;
    /* The loops are closed: libuv cancelled every pending request (their
     * callbacks freed them); what is left is plain memory. */
    tp__listeners_free(net);
    for (uint32_t i = 0; i < n; i++)
        tp__free(atomic_load(&net->chunks[i]));
    while (net->cfgs != NULL) {
        struct tp__cfg *next = net->cfgs->next;
        tp__free(net->cfgs);
        net->cfgs = next;
    }
    for (unsigned i = 0; i < net->rt->nsched; i++) {
        tp__free(net->loops[i].rbuf);
        pthread_mutex_destroy(&net->loops[i].lock);
    }
    for (uint32_t i = 0; i < TP__WSLOT_DIR; i++)
        tp__free(atomic_load(&net->wslots[i]));
    tp__free(net->wslots);
    tp__free(net->loops);
    tp__free(net->chunks);
    tp__net_proxied_fini(net);
    pthread_mutex_destroy(&net->lock);
    tp__free(net);
}

static struct tp__net *
net_new(struct tp_runtime *rt)
{
    struct tp__net *net = tp__calloc(1, sizeof(*net));

    if (net == NULL)
        return NULL;
    net->loops = tp__calloc(rt->nsched, sizeof(*net->loops));
    net->chunks = tp__calloc(TP__NMAX_CHUNKS, sizeof(*net->chunks));
    net->wslots = tp__calloc(TP__WSLOT_DIR, sizeof(*net->wslots));
    if (net->loops == NULL || net->chunks == NULL || net->wslots == NULL) {
        tp__free(net->loops);
        tp__free(net->chunks);
        tp__free(net->wslots);
        tp__free(net);
        return NULL;
    }
    net->rt = rt;
    pthread_mutex_init(&net->lock, NULL);
    for (unsigned i = 0; i < rt->nsched; i++) {
        net->loops[i].net = net;
        net->loops[i].s = rt->sched[i];
        pthread_mutex_init(&net->loops[i].lock, NULL);
    }
    net->drain_hook.phase = TP__STOP_DRAIN;
    net->drain_hook.fn = drain_hook;
    net->drain_hook.arg = net;
    return net;
}

/* Runs first on each loop. A write to a socket the peer reset raises
 * SIGPIPE in the writing thread: blocking it on the scheduler threads
 * (where every socket write happens) turns it into EPIPE without touching
 * the process's own disposition of the signal. */
static void
loop_start(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct tp__net_loop *nl = &tp__net_of(s->rt)->loops[s->index];
    sigset_t set;

    uv_update_time(&s->loop);
    nl->tick_base = uv_now(&s->loop) - tp__sched_tick(s);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tp__free(cmd);
}

static void
loops_init(struct tp_runtime *rt)
{
    for (unsigned i = 0; i < rt->nsched; i++) {
        struct tp__cmd *cmd = tp__malloc(sizeof(*cmd));
        if (cmd == NULL) {
            tp_log(TP_LOG_WARN, "net: SIGPIPE not blocked (out of memory)");
            continue;
        }
        cmd->fn = loop_start;
        tp__sched_post(rt->sched[i], cmd);
    }
}

struct tp__net *
tp__net_get(struct tp_runtime *rt, int *err)
{
    struct tp__net *net = tp__net_of(rt);

    if (net != NULL)
        return net;
    if (atomic_load(&rt->started) <= (int)rt->nsched) {
        *err = -EINVAL; /* loops must run: commands would wait forever */
        return NULL;
    }
    pthread_mutex_lock(&init_lock);
    net = tp__net_of(rt);
    if (net == NULL && (net = net_new(rt)) != NULL) {
        rt->ext_free[TP__EXT_NET] = net_free;
        tp__rt_add_stop_hook(rt, &net->drain_hook);
        /* release: the initialised state before its pointer. */
        __atomic_store_n((struct tp__net **)&rt->ext[TP__EXT_NET], net,
                         __ATOMIC_RELEASE);
        loops_init(rt); /* their commands find the state published */
    }
    pthread_mutex_unlock(&init_lock);
    if (net == NULL)
        *err = -ENOMEM;
    return net;
}

/* ---------------------------------------------------------------------- */
/* Connection blocks                                                       */

struct tp__conn *
tp__conn_block(struct tp__net *net, tp_conn h)
{
    uint32_t idx = (uint32_t)h;
    struct tp__conn *chunk;

    if ((idx >> TP__NCHUNK_BITS) >=
        atomic_load_explicit(&net->nchunks, memory_order_acquire))
        return NULL;
    /* acquire: pairs with the release that published the chunk. */
    chunk = atomic_load_explicit(&net->chunks[idx >> TP__NCHUNK_BITS],
                                 memory_order_acquire);
    return chunk != NULL ? &chunk[idx & (TP__NCHUNK_CONNS - 1)] : NULL;
}

struct tp__conn *
tp__conn_resolve(struct tp__net *net, tp_conn h)
{
    struct tp__conn *c;

    if (net == NULL || h == TP_CONN_NONE ||
        (c = tp__conn_block(net, h)) == NULL)
        return NULL;
    /* acquire: pairs with the release store of a new incarnation's gen,
     * so its fields are this incarnation's (re-checked by the loop). */
    if (atomic_load_explicit(&c->gen, memory_order_acquire) != (h >> 32))
        return NULL;
    return c;
}

/* A new chunk: its blocks go to nl's free list. */
static int
chunk_new(struct tp__net_loop *nl)
{
    struct tp__net *net = nl->net;
    struct tp__conn *chunk = tp__calloc(TP__NCHUNK_CONNS, sizeof(*chunk));
    uint32_t ci;

    if (chunk == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&net->lock);
    ci = atomic_load_explicit(&net->nchunks, memory_order_relaxed);
    if (ci >= TP__NMAX_CHUNKS) {
        pthread_mutex_unlock(&net->lock);
        tp__free(chunk);
        return -ENOMEM;
    }
    for (uint32_t k = 0; k < TP__NCHUNK_CONNS; k++) {
        chunk[k].idx = ci << TP__NCHUNK_BITS | k;
        atomic_init(&chunk[k].gen, 1);
        atomic_init(&chunk[k].wq, 1ull << 32);
        atomic_init(&chunk[k].rxq, 1ull << 32);
        atomic_init(&chunk[k].fd, -1);
    }
    /* release: initialised blocks before the chunk and the count. */
    atomic_store_explicit(&net->chunks[ci], chunk, memory_order_release);
    atomic_store_explicit(&net->nchunks, ci + 1, memory_order_release);
    pthread_mutex_unlock(&net->lock);
    pthread_mutex_lock(&nl->lock);
    for (uint32_t k = TP__NCHUNK_CONNS; k-- > 0;) {
        chunk[k].timer.next = (struct tp__wtimer *)nl->free;
        nl->free = &chunk[k];
    }
    pthread_mutex_unlock(&nl->lock);
    return 0;
}

struct tp__conn *
tp__conn_alloc(struct tp__net_loop *nl)
{
    struct tp__conn *c;

    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&nl->lock);
        c = nl->free;
        if (c != NULL)
            nl->free = (struct tp__conn *)c->timer.next;
        pthread_mutex_unlock(&nl->lock);
        if (c != NULL)
            return c;
        if (chunk_new(nl) != 0)
            return NULL;
    }
    return NULL;
}

void
tp__conn_release(struct tp__net_loop *nl, struct tp__conn *c)
{
    uint32_t gen = atomic_load_explicit(&c->gen, memory_order_relaxed) + 1;

    tp__net_proxied_del(nl->net, tp__conn_handle(c)); /* PROXY hook */
    if (gen == 0)
        gen = 1;
    /* Fresh counters under the new generation: stale CASes now fail. */
    atomic_store_explicit(&c->wq, (uint64_t)gen << 32, memory_order_relaxed);
    atomic_store_explicit(&c->rxq, (uint64_t)gen << 32, memory_order_relaxed);
    atomic_store_explicit(&c->state, TP__C_FREE, memory_order_relaxed);
    atomic_store_explicit(&c->fd, -1, memory_order_relaxed);
    /* release: readers that see the new gen see the reset fields. */
    atomic_store_explicit(&c->gen, gen, memory_order_release);
    pthread_mutex_lock(&nl->lock);
    c->timer.next = (struct tp__wtimer *)nl->free;
    nl->free = c;
    pthread_mutex_unlock(&nl->lock);
}

static void
cfg_copy(tp_conn_opts *d, const tp_conn_opts *o)
{
    /* Field by field into a zeroed struct: padding compares equal. */
    memset(d, 0, sizeof(*d));
    d->read_mode = o->read_mode;
    d->idle_timeout_ms = o->idle_timeout_ms;
    d->read_chunk = o->read_chunk;
    d->read_high = o->read_high;
    d->read_low = o->read_low;
    d->mailbox_high = o->mailbox_high;
    d->mailbox_low = o->mailbox_low;
    d->write_high = o->write_high;
    d->write_low = o->write_low;
    d->write_limit = o->write_limit;
    d->read_pause_on_write_high = o->read_pause_on_write_high;
    d->linger_ms = o->linger_ms;
    d->half_open = o->half_open;
    d->nodelay = o->nodelay;
    d->send_buffer = o->send_buffer;
}

/* Field by field: a struct assignment need not copy padding, so the
 * stored copies cannot be compared with memcmp. */
static bool
cfg_equal(const tp_conn_opts *a, const tp_conn_opts *b)
{
    return a->read_mode == b->read_mode &&
           a->idle_timeout_ms == b->idle_timeout_ms &&
           a->read_chunk == b->read_chunk && a->read_high == b->read_high &&
           a->read_low == b->read_low && a->mailbox_high == b->mailbox_high &&
           a->mailbox_low == b->mailbox_low && a->write_high == b->write_high &&
           a->write_low == b->write_low && a->write_limit == b->write_limit &&
           a->read_pause_on_write_high == b->read_pause_on_write_high &&
           a->linger_ms == b->linger_ms && a->half_open == b->half_open &&
           a->nodelay == b->nodelay && a->send_buffer == b->send_buffer;
}

const tp_conn_opts *
tp__net_cfg_intern(struct tp__net *net, const tp_conn_opts *o)
{
    struct tp__cfg *c;
    tp_conn_opts key;

    cfg_copy(&key, o);
    pthread_mutex_lock(&net->lock);
    for (c = net->cfgs; c != NULL; c = c->next) {
        if (cfg_equal(&c->o, &key))
            break;
    }
    if (c == NULL && (c = tp__malloc(sizeof(*c))) != NULL) {
        c->o = key;
        c->next = net->cfgs;
        net->cfgs = c;
    }
    pthread_mutex_unlock(&net->lock);
    return c != NULL ? &c->o : NULL;
}

uint32_t
tp__net_tick(struct tp__net_loop *nl)
{
    return (uint32_t)(uv_now(&nl->s->loop) - nl->tick_base);
}

/* ---------------------------------------------------------------------- */
/* Commands                                                               */

void *
tp__net_cmd_alloc(size_t size, uint8_t *klass)
{
    uint32_t cap;

    return tp__pool_alloc(size, klass, &cap);
}

void
tp__net_cmd_free(void *p, uint8_t klass)
{
    tp__pool_free(p, klass);
}

static void
cmd_run(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct tp__ncmd *nc = (struct tp__ncmd *)cmd;
    struct tp__net *net = tp__net_of(s->rt);
    struct tp__conn *c = tp__conn_resolve(net, nc->h);

    /* A stale handle: the connection it named is gone. */
    if (c != NULL &&
        atomic_load_explicit(&c->sched, memory_order_relaxed) == s->index)
        tp__conn_exec(c, nc);
    else if (nc->op == TP__OP_CONNECT)
        tp__rt_pending_add(s->rt, -1);
    tp__net_cmd_free(nc, nc->klass);
}

struct tp__sched *
tp__conn_sched(struct tp__net *net, struct tp__conn *c)
{
    return net->rt
        ->sched[atomic_load_explicit(&c->sched, memory_order_relaxed)];
}

int
tp__net_post(struct tp__net *net, tp_conn h, enum tp__net_op op, uint32_t arg)
{
    struct tp__conn *c = tp__conn_resolve(net, h);
    struct tp__ncmd *nc;
    uint8_t klass;

    if (c == NULL ||
        atomic_load_explicit(&c->state, memory_order_relaxed) >= TP__C_CLOSED)
        return -ENOTCONN;
    nc = tp__net_cmd_alloc(sizeof(*nc), &klass);
    if (nc == NULL)
        return -ENOMEM;
    nc->h = h;
    nc->op = (uint8_t)op;
    nc->arg = arg;
    nc->klass = klass;
    tp__net_post_cmd(net, c, nc);
    return 0;
}

void
tp__net_post_cmd(struct tp__net *net, struct tp__conn *c, struct tp__ncmd *nc)
{
    nc->cmd.fn = cmd_run;
    tp__sched_post_fifo(tp__conn_sched(net, c), &nc->cmd);
}

/* ---------------------------------------------------------------------- */
/* Introspection                                                          */

static const char *
state_name(unsigned st)
{
    switch (st) {
    case TP__C_CONNECTING:
        return "connecting";
    case TP__C_OPEN:
        return "open";
    default:
        return "closing";
    }
}

static void
sock_addr(int fd, bool peer, tp_net_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r;

    memset(out, 0, sizeof(*out));
    if (fd < 0)
        return;
    r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
             : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (r == 0)
        tp__addr_from_sockaddr(&ss, out);
}

/* Reads what the console shows; false if c is not live as `gen`. */
static bool
conn_snapshot(struct tp__net *net, struct tp__conn *c, uint32_t gen,
              tp_conn_info *o)
{
    uint64_t now = tp__sched_tick(net->rt->sched[0]);
    uint64_t wq = atomic_load_explicit(&c->wq, memory_order_relaxed);
    uint64_t rxq = atomic_load_explicit(&c->rxq, memory_order_relaxed);
    uint32_t last = atomic_load_explicit(&c->last_ms, memory_order_relaxed);
    struct tp_listener *l = tp__conn_listener(c);
    unsigned st = atomic_load_explicit(&c->state, memory_order_relaxed);
    int fd = atomic_load_explicit(&c->fd, memory_order_relaxed);

    memset(o, 0, sizeof(*o));
    o->conn = (uint64_t)gen << 32 | c->idx;
    o->pid = atomic_load_explicit(&c->owner, memory_order_relaxed);
    o->scheduler = atomic_load_explicit(&c->sched, memory_order_relaxed);
    o->state = state_name(st);
    o->mode = tp_read_mode_name(tp__conn_mode(c));
    o->read_paused = (rxq & TP__RX_PAUSED) != 0;
    o->outbound = l == NULL;
    o->bytes_in = atomic_load_explicit(&c->bytes_in, memory_order_relaxed);
    o->bytes_out = atomic_load_explicit(&c->bytes_out, memory_order_relaxed);
    o->write_queued = (wq >> 32) == gen ? (wq & TP__WQ_BYTES) : 0;
    o->age_ms =
        now - atomic_load_explicit(&c->born_s, memory_order_relaxed) * 1000ull;
    o->idle_ms = (int32_t)((uint32_t)now - last) > 0 ? (uint32_t)now - last : 0;
    if (l != NULL)
        snprintf(o->listener, sizeof(o->listener), "%s", l->name);
    /* The fd is closed only after the state left OPEN/CONNECTING, and the
     * state and gen are re-checked afterwards: a reused fd is caught. */
    sock_addr(fd, true, &o->peer);
    sock_addr(fd, false, &o->local);
    /* PROXY hook: the client's addresses, as its header gave them. */
    tp__net_proxied_get(net, o->conn, &o->peer, &o->local);
    /* acquire: the fields above were read before this re-check. */
    return atomic_load_explicit(&c->gen, memory_order_acquire) == gen &&
           atomic_load_explicit(&c->state, memory_order_acquire) == st &&
           st != TP__C_FREE && st != TP__C_CLOSED;
}

void
tp_net_conn_foreach(tp_runtime *rt, bool (*fn)(void *, const tp_conn_info *),
                    void *user)
{
    struct tp__net *net = tp__net_of(rt);
    uint32_t n = net != NULL ? atomic_load(&net->nchunks) : 0;
    tp_conn_info info;

    for (uint32_t i = 0; i < n; i++) {
        struct tp__conn *chunk = atomic_load(&net->chunks[i]);
        for (uint32_t k = 0; chunk != NULL && k < TP__NCHUNK_CONNS; k++) {
            struct tp__conn *c = &chunk[k];
            uint32_t gen = atomic_load_explicit(&c->gen, memory_order_acquire);
            unsigned st = atomic_load_explicit(&c->state, memory_order_acquire);
            if (st == TP__C_FREE || st == TP__C_CLOSED)
                continue;
            if (!conn_snapshot(net, c, gen, &info))
                continue;
            if (!fn(user, &info))
                return;
        }
    }
}

void
tp_net_get_stats(tp_runtime *rt, tp_net_stats *o)
{
    struct tp__net *net = tp__net_of(rt);
    int64_t open;

    memset(o, 0, sizeof(*o));
    if (net == NULL)
        return;
    open = atomic_load(&net->open);
    o->conns = open > 0 ? (uint64_t)open : 0;
    o->accepted = atomic_load(&net->accepted);
    o->refused = atomic_load(&net->refused);
    o->connects = atomic_load(&net->connects);
    for (int i = 0; i < TP_NET_CLOSE_REASONS; i++)
        o->closed[i] = atomic_load(&net->closed[i]);
    pthread_mutex_lock(&net->lock);
    for (struct tp_listener *l = net->listeners; l != NULL; l = l->next)
        o->listeners += atomic_load(&l->closed) == 0;
    pthread_mutex_unlock(&net->lock);
}

/* ---------------------------------------------------------------------- */
/* Drain                                                                  */

struct drain_cmd {
    struct tp__cmd cmd;
    uint64_t deadline_ms; /* runtime tick */
};

/* Loop thread: fn(c) for each live connection of this loop. */
static void
each_conn(struct tp__net_loop *nl, void (*fn)(struct tp__conn *c))
{
    struct tp__net *net = nl->net;
    uint32_t n = atomic_load(&net->nchunks);

    for (uint32_t i = 0; i < n; i++) {
        struct tp__conn *chunk = atomic_load(&net->chunks[i]);
        for (uint32_t k = 0; chunk != NULL && k < TP__NCHUNK_CONNS; k++) {
            struct tp__conn *c = &chunk[k];
            unsigned st = atomic_load_explicit(&c->state, memory_order_relaxed);
            if (st == TP__C_FREE || st == TP__C_CLOSED ||
                atomic_load_explicit(&c->sched, memory_order_relaxed) !=
                    nl->s->index)
                continue;
            fn(c);
        }
    }
}

static void
drain_tell(struct tp__conn *c)
{
    tp_conn h = tp__conn_handle(c);

    if ((c->flags & TP__CF_DRAINING) ||
        atomic_load_explicit(&c->state, memory_order_relaxed) != TP__C_OPEN)
        return;
    c->flags |= TP__CF_DRAINING;
    tp__conn_read_update(c);
    tp__conn_tell(c, TP_MSG_TCP_DRAIN, &h, sizeof(h));
}

static void
drain_force(struct tp__conn *c)
{
    tp__conn_close(c, TP_NET_CLOSE_DRAIN, 0, false);
}

static void
drain_fire(struct tp__wtimer *t, void *arg)
{
    struct tp__net_loop *nl =
        tp__container_of(t, struct tp__net_loop, drain_timer);

    (void)arg;
    each_conn(nl, drain_force);
}

static void
drain_run(struct tp__cmd *cmd, struct tp__sched *s)
{
    struct drain_cmd *d = (struct drain_cmd *)cmd;
    struct tp__net_loop *nl = &tp__net_of(s->rt)->loops[s->index];
    uint64_t now = tp__sched_tick(s);

    each_conn(nl, drain_tell);
    if (tp__wtimer_armed(&nl->drain_timer) &&
        nl->drain_timer.expires <= d->deadline_ms) {
        tp__free(d);
        return; /* an earlier drain's deadline comes first */
    }
    tp__sched_timer_del(s, &nl->drain_timer);
    nl->drain_timer.fire = drain_fire;
    tp__sched_timer_add(s, &nl->drain_timer,
                        d->deadline_ms > now ? d->deadline_ms - now : 0);
    tp__free(d);
}

int
tp_net_drain_start(tp_runtime *rt, uint32_t deadline_ms)
{
    struct tp__net *net = tp__net_of(rt);
    uint64_t due;

    if (net == NULL || atomic_load(&rt->stopped))
        return 0;
    /* Each loop runs its listeners' stop command before this drain
     * command (FIFO), so no connection is accepted after the snapshot. */
    tp__listeners_close_all(net);
    due = tp__sched_tick(rt->sched[0]) + deadline_ms;
    for (unsigned i = 0; i < rt->nsched; i++) {
        struct drain_cmd *d = tp__malloc(sizeof(*d));
        if (d == NULL)
            return -ENOMEM;
        d->cmd.fn = drain_run;
        d->deadline_ms = due;
        tp__sched_post(rt->sched[i], &d->cmd);
    }
    return 0;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};
    nanosleep(&ts, NULL);
}

int
tp_net_drain(tp_runtime *rt, uint32_t deadline_ms)
{
    struct tp__net *net = tp__net_of(rt);
    /* Forced closes finish within a loop turn of the deadline. */
    uint64_t until = tp_now_ns() + ((uint64_t)deadline_ms + 500) * 1000000u;
    int err;

    if (net == NULL)
        return 0;
    if (tp__tls_sched != NULL)
        return -EINVAL;
    if ((err = tp_net_drain_start(rt, deadline_ms)) != 0)
        return err;
    while (atomic_load(&net->open) > 0) {
        if (tp_now_ns() >= until)
            return -ETIMEDOUT;
        sleep_ms(2);
    }
    return 0;
}

static void
drain_hook(struct tp_runtime *rt, void *arg, uint64_t deadline)
{
    uint64_t now = tp_now_ns();
    /* Half of what is left: supervisors and the kill phase need time too.*/
    uint64_t ms = deadline > now ? (deadline - now) / 2000000u : 0;

    (void)arg;
    if (tp_net_drain(rt, (uint32_t)ms) != 0)
        tp_log(TP_LOG_WARN, "net: connections left after the drain");
}
