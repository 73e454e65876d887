/*
 * cluster/cluster.c - joining and leaving a cluster, the NATS connection,
 * the outbound queue and the cluster thread.
 *
 * Subjects (C = cluster name):
 *   C.tp.hb        heartbeats (HELLO), join probes (PROBE), leaves (BYE)
 *   C.tp.n.<name>  a node's inbox: messages, signals, pings
 *   C.tp.j.<inc>   a joining node's private inbox for probe answers
 * A joining node probes C.tp.hb and listens for answers for join_ms
 * before it takes its own inbox, so a node with a taken name never
 * receives its namesake's traffic.
 */
#include "cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

static void node_thread_stop(struct tp__cluster *cl);
void tp__node_hb_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                     void *closure);
void tp__node_join_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                       void *closure);
void tp__node_inbox_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                        void *closure);
void *tp__node_thread(void *arg);
int tp__node_publish_self(struct tp__cluster *cl, uint8_t kind,
                          const char *subject, uint8_t flags);
void tp__node_all_down(struct tp__cluster *cl, uint32_t why);
void tp__node_greet_peers(struct tp__cluster *cl);

/* ---------------------------------------------------------------------- */
/* The runtime's slot                                                     */

static struct tp__cluster_slot *
slot_of(struct tp_runtime *rt)
{
    return __atomic_load_n(
        (struct tp__cluster_slot **)&rt->ext[TP__EXT_CLUSTER],
        __ATOMIC_ACQUIRE);
}

static void
slot_free(struct tp_runtime *rt, void *p)
{
    struct tp__cluster_slot *s = p;

    (void)rt;
    pthread_rwlock_destroy(&s->lock);
    tp__free(s);
}

static void
stop_hook_fn(struct tp_runtime *rt, void *arg, uint64_t deadline_ns)
{
    (void)arg;
    (void)deadline_ns;
    tp_cluster_stop(rt);
}

static struct tp__cluster_slot *
slot_make(struct tp_runtime *rt)
{
    struct tp__cluster_slot *s;

    pthread_mutex_lock(&slot_lock);
    s = slot_of(rt);
    if (s == NULL && (s = tp__calloc(1, sizeof(*s))) != NULL) {
        pthread_rwlock_init(&s->lock, NULL);
        s->stop_hook.phase = TP__STOP_DRAIN;
        s->stop_hook.fn = stop_hook_fn;
        rt->ext_free[TP__EXT_CLUSTER] = slot_free;
        __atomic_store_n((struct tp__cluster_slot **)&rt->ext[TP__EXT_CLUSTER],
                         s, __ATOMIC_RELEASE);
        tp__rt_add_stop_hook(rt, &s->stop_hook);
    }
    pthread_mutex_unlock(&slot_lock);
    return s;
}

struct tp__cluster *
tp__cluster_get(struct tp_runtime *rt)
{
    struct tp__cluster_slot *s = slot_of(rt);

    if (s == NULL)
        return NULL;
    pthread_rwlock_rdlock(&s->lock);
    if (s->cl == NULL) {
        pthread_rwlock_unlock(&s->lock);
        return NULL;
    }
    return s->cl;
}

void
tp__cluster_put(struct tp__cluster *cl)
{
    pthread_rwlock_unlock(&slot_of(cl->rt)->lock);
}

/* ---------------------------------------------------------------------- */
/* Pids, peers, frames                                                    */

tp_pid
tp__cluster_local(const struct tp__cluster *cl, tp_pid pid)
{
    return tp_pid_node(pid) == cl->id ? tp_pid_with_node(pid, 0) : pid;
}

tp_pid
tp__cluster_global(const struct tp__cluster *cl, tp_pid pid)
{
    return pid != TP_PID_NONE && !tp_pid_is_remote(pid)
               ? tp_pid_with_node(pid, cl->id)
               : pid;
}

struct tp__cpeer *
tp__peer_get(struct tp__cluster *cl, uint32_t id)
{
    struct tp__cpeer *p;

    if (id == 0 || id > TP_PID_NODE_MAX)
        return NULL;
    p = atomic_load_explicit(&cl->peers[id], memory_order_acquire);
    if (p != NULL)
        return p;
    pthread_mutex_lock(&cl->lock);
    p = atomic_load_explicit(&cl->peers[id], memory_order_relaxed);
    if (p == NULL && (p = tp__calloc(1, sizeof(*p))) != NULL) {
        p->id = id;
        tp__link_peer_init(p);
        tp__u64map_init(&p->links);
        tp__u64map_init(&p->mons);
        tp__u64map_init(&p->mon_target);
        /* release: an initialised peer before its pointer. */
        atomic_store_explicit(&cl->peers[id], p, memory_order_release);
    }
    pthread_mutex_unlock(&cl->lock);
    return p;
}

struct tp__frame *
tp__frame_new(size_t payload)
{
    struct tp__frame *f = tp__malloc(sizeof(*f) + TP__WIRE_HDR + payload);

    if (f != NULL) {
        f->next = NULL;
        f->peer = NULL;
        f->subject = NULL;
        f->len = (uint32_t)(TP__WIRE_HDR + payload);
    }
    return f;
}

int
tp__cluster_queue(struct tp__cluster *cl, struct tp__cpeer *p,
                  struct tp__frame *f)
{
    bool wake;

    if (!atomic_load_explicit(&cl->connected, memory_order_relaxed) ||
        atomic_load_explicit(&p->state, memory_order_relaxed) != TP__PEER_UP) {
        tp__free(f);
        atomic_fetch_add_explicit(&p->drops_out, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&cl->drops, 1, memory_order_relaxed);
        return -ENOTCONN;
    }
    if (tp__link_direct(cl, p, f) == 0)
        return 0;
    if (atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed) >=
        cl->opts.max_queue) {
        atomic_fetch_sub_explicit(&p->queued, 1, memory_order_relaxed);
        tp__free(f);
        atomic_fetch_add_explicit(&p->drops_out, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&cl->drops, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    f->peer = p;
    pthread_mutex_lock(&cl->lock);
    wake = cl->qhead == NULL;
    if (cl->qtail != NULL)
        cl->qtail->next = f;
    else
        cl->qhead = f;
    cl->qtail = f;
    pthread_mutex_unlock(&cl->lock);
    if (wake)
        pthread_cond_signal(&cl->cond);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Options                                                                */

void
tp_cluster_options_init(tp_cluster_options *o)
{
    memset(o, 0, sizeof(*o));
    o->cluster = "troupe";
    o->urls = "nats://127.0.0.1:4222";
    o->heartbeat_ms = 500;
    o->down_after_ms = 2000;
    o->max_queue = 65536;
    o->reconnect_ms = 100;
    o->reconnect_max_ms = 2000;
    o->links = true;
    o->link_connect_ms = 1000;
}

static int
options_check(const tp_cluster_options *o)
{
    if (!tp__wire_name_ok(o->node_name) || !tp__wire_name_ok(o->cluster) ||
        o->urls == NULL || o->urls[0] == '\0' || o->node_id > TP_PID_NODE_MAX ||
        o->heartbeat_ms == 0 || o->down_after_ms < o->heartbeat_ms ||
        o->max_queue == 0)
        return -EINVAL;
    return 0;
}

static uint32_t
name_hash_id(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const char *c = name; *c != '\0'; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % TP_PID_NODE_MAX + 1;
}

static uint64_t
random64(void)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
        v = tp_now_ns() ^ ((uint64_t)getpid() << 32);
    return v | 1;
}

/* ---------------------------------------------------------------------- */
/* NATS connection                                                        */

static void
on_disconnected(natsConnection *nc, void *closure)
{
    struct tp__cluster *cl = closure;

    (void)nc;
    atomic_store(&cl->connected, false);
    if (atomic_load(&cl->closing))
        return; /* our own tp_cluster_stop() */
    atomic_fetch_add(&cl->disconnects, 1);
    tp_log(TP_LOG_WARN, "cluster %s: node %s lost its NATS connection",
           cl->cluster, cl->name);
}

/* The last callback libnats makes for a connection: after it, nothing of
 * it touches cl (its last access is this store). */
static void
on_closed(natsConnection *nc, void *closure)
{
    struct tp__cluster *cl = closure;

    (void)nc;
    atomic_store(&cl->closed, true);
}

static void
on_reconnected(natsConnection *nc, void *closure)
{
    struct tp__cluster *cl = closure;

    (void)nc;
    atomic_store(&cl->connected, true);
    atomic_fetch_add(&cl->reconnects, 1);
    tp_log(TP_LOG_INFO, "cluster %s: node %s reconnected to NATS", cl->cluster,
           cl->name);
    pthread_cond_signal(&cl->cond); /* heartbeat at once */
}

static void
on_error(natsConnection *nc, natsSubscription *sub, natsStatus err,
         void *closure)
{
    struct tp__cluster *cl = closure;

    (void)nc;
    (void)sub;
    if (err == NATS_SLOW_CONSUMER)
        atomic_fetch_add(&cl->slow_consumer, 1);
    else
        tp_log(TP_LOG_WARN, "cluster %s: NATS error: %s", cl->cluster,
               natsStatus_GetText(err));
}

/* Doubling backoff from reconnect_ms to reconnect_max_ms, +- 25 %. */
static int64_t
reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    struct tp__cluster *cl = closure;
    uint64_t d = cl->opts.reconnect_ms;

    (void)nc;
    for (int i = 1; i < attempts && d < cl->opts.reconnect_max_ms; i++)
        d *= 2;
    if (d > cl->opts.reconnect_max_ms)
        d = cl->opts.reconnect_max_ms;
    return (int64_t)(d * 3 / 4 + random64() % (d / 2 + 1));
}

/* Credentials and TLS (the caller's strings: only used here). */
static natsStatus
auth_options(struct tp__cluster *cl, natsOptions *o)
{
    const tp_cluster_options *c = &cl->opts;
    natsStatus s = NATS_OK;

    if (c->user != NULL)
        s = natsOptions_SetUserInfo(o, c->user, c->password);
    if (s == NATS_OK && c->token != NULL)
        s = natsOptions_SetToken(o, c->token);
    if (s == NATS_OK && c->tls_ca_file != NULL) {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK)
            s = natsOptions_LoadCATrustedCertificates(o, c->tls_ca_file);
    }
    if (s == NATS_OK && c->tls_cert_file != NULL)
        s = natsOptions_LoadCertificatesChain(o, c->tls_cert_file,
                                              c->tls_key_file);
    if (s != NATS_OK)
        tp_log(TP_LOG_ERROR, "cluster %s: NATS credentials / TLS: %s",
               cl->cluster, natsStatus_GetText(s));
    return s;
}

static int
nats_connect(struct tp__cluster *cl)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);

    if (s == NATS_OK)
        s = natsOptions_SetURL(o, cl->urls);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, cl->name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1); /* never give up */
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, cl);
    if (s == NATS_OK) /* what is published while away is dropped by us */
        s = natsOptions_SetReconnectBufSize(o, 256 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, 2000);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, 2);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, cl);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_reconnected, cl);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, cl);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, cl);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPendingMsgs(o, 1 << 20);
    if (s == NATS_OK)
        s = auth_options(cl, o);
    /* Latency: libnats' flusher would wait ~1 ms per hop; the cluster
     * thread batches frames into one message per peer instead. */
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(&cl->nc, o);
    natsOptions_Destroy(o);
    /* The caller's strings are not ours to keep. */
    cl->opts.user = cl->opts.password = cl->opts.token = NULL;
    cl->opts.tls_ca_file = cl->opts.tls_cert_file = NULL;
    cl->opts.tls_key_file = NULL;
    if (s != NATS_OK) {
        tp_log(TP_LOG_ERROR, "cluster %s: node %s cannot connect to %s: %s",
               cl->cluster, cl->name, cl->urls, natsStatus_GetText(s));
        cl->nc = NULL;
        return s == NATS_NO_MEMORY ? -ENOMEM : -ECONNREFUSED;
    }
    cl->max_payload = (uint64_t)natsConnection_GetMaxPayload(cl->nc);
    if ((cl->batch = tp__malloc(cl->max_payload)) == NULL)
        return -ENOMEM;
    atomic_store(&cl->connected, true);
    return 0;
}

static int
subscribe(struct tp__cluster *cl, natsSubscription **sub, const char *subj,
          natsMsgHandler cb)
{
    natsStatus s = natsConnection_Subscribe(sub, cl->nc, subj, cb, cl);

    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(*sub, 1 << 20, 256 << 20);
    return s == NATS_OK ? 0 : -ENOMEM;
}

static void
sub_close(natsSubscription **sub)
{
    if (*sub == NULL)
        return;
    /* Waits until its handler returned for the last message. */
    if (natsSubscription_Drain(*sub) == NATS_OK)
        natsSubscription_WaitForDrainCompletion(*sub, 2000);
    else
        natsSubscription_Unsubscribe(*sub);
    natsSubscription_Destroy(*sub);
    *sub = NULL;
}

/* ---------------------------------------------------------------------- */
/* Start                                                                  */

static void
cluster_free(struct tp__cluster *cl)
{
    struct tp__frame *f;

    for (uint32_t i = 0; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p != NULL) {
            tp__link_peer_fini(p);
            tp__remote_peer_free(p);
        }
    }
    while ((f = cl->qhead) != NULL) {
        cl->qhead = f->next;
        tp__free(f);
    }
    tp__u64map_fini(&cl->node_watchers);
    pthread_mutex_destroy(&cl->lock);
    pthread_mutex_destroy(&cl->names_lock);
    pthread_cond_destroy(&cl->cond);
    free(cl->urls);
    tp__free(cl->batch);
    tp__free(cl);
}

static struct tp__cluster *
cluster_new(tp_runtime *rt, const tp_cluster_options *o)
{
    struct tp__cluster *cl = tp__calloc(1, sizeof(*cl));
    pthread_condattr_t ca;

    if (cl == NULL)
        return NULL;
    cl->rt = rt;
    cl->A = tp__actors_of(rt);
    cl->opts = *o;
    cl->opts.node_name = cl->name;
    cl->opts.cluster = cl->cluster;
    if (cl->opts.join_ms == 0)
        cl->opts.join_ms = 2 * o->heartbeat_ms;
    if (cl->opts.join_ms < 300)
        cl->opts.join_ms = 300;
    snprintf(cl->name, sizeof(cl->name), "%s", o->node_name);
    snprintf(cl->cluster, sizeof(cl->cluster), "%s", o->cluster);
    cl->urls = strdup(o->urls);
    cl->opts.urls = cl->urls;
    cl->opts.link_address = NULL; /* read by tp__link_start() from o */
    if (cl->opts.link_connect_ms == 0)
        cl->opts.link_connect_ms = 1000;
    cl->incarnation = random64();
    cl->id = o->node_id != 0 ? o->node_id : name_hash_id(o->node_name);
    snprintf(cl->hb_subject, sizeof(cl->hb_subject), "%s.tp.hb", cl->cluster);
    snprintf(cl->inbox, sizeof(cl->inbox), "%s.tp.n.%s", cl->cluster, cl->name);
    snprintf(cl->join_inbox, sizeof(cl->join_inbox), "%s.tp.j.%016llx",
             cl->cluster, (unsigned long long)cl->incarnation);
    tp__u64map_init(&cl->node_watchers);
    pthread_mutex_init(&cl->lock, NULL);
    pthread_mutex_init(&cl->names_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cl->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (cl->urls == NULL) {
        cluster_free(cl);
        return NULL;
    }
    return cl;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000u, (long)(ms % 1000u) * 1000000L};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* Picks the node id after the join window (lock held). */
static int
pick_id(struct tp__cluster *cl)
{
    uint32_t id = cl->id;

    if (cl->opts.node_id != 0) {
        if (cl->id_taken[id / 8] & (1u << (id % 8))) {
            tp_log(TP_LOG_ERROR,
                   "cluster %s: node id %u is taken by a live node; node "
                   "%s refused",
                   cl->cluster, id, cl->name);
            return -EADDRINUSE;
        }
        return 0;
    }
    /* First an id no node knows of, then any id no live node has. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t n = 0; n < TP_PID_NODE_MAX; n++) {
            uint8_t bit = (uint8_t)(1u << (id % 8));
            if (!(cl->id_taken[id / 8] & bit) &&
                (pass == 1 || !(cl->id_used[id / 8] & bit))) {
                cl->id = id;
                return 0;
            }
            id = id % TP_PID_NODE_MAX + 1;
        }
    }
    tp_log(TP_LOG_ERROR, "cluster %s: no free node id", cl->cluster);
    return -EADDRINUSE;
}

/* Probe, wait for answers, decide. */
static int
join(struct tp__cluster *cl)
{
    int err;

    if ((err = subscribe(cl, &cl->sub_hb, cl->hb_subject, tp__node_hb_msg)) ||
        (err = subscribe(cl, &cl->sub_join, cl->join_inbox, tp__node_join_msg)))
        return err;
    natsConnection_Flush(cl->nc);
    if ((err = tp__node_publish_self(cl, TP__W_PROBE, cl->hb_subject, 0)))
        return err;
    natsConnection_Flush(cl->nc);
    sleep_ms(cl->opts.join_ms);
    pthread_mutex_lock(&cl->lock);
    if (cl->name_taken) {
        tp_log(TP_LOG_ERROR,
               "cluster %s: node name %s is taken by a live node (%s); "
               "refusing to join",
               cl->cluster, cl->name, cl->taken_by);
        err = -EADDRINUSE;
    } else {
        err = pick_id(cl);
    }
    if (err == 0)
        cl->joined = true;
    pthread_mutex_unlock(&cl->lock);
    if (err != 0)
        return err;
    sub_close(&cl->sub_join);
    return subscribe(cl, &cl->sub_inbox, cl->inbox, tp__node_inbox_msg);
}

static void
cluster_teardown(struct tp__cluster *cl)
{
    node_thread_stop(cl);
    tp__service_stop(cl);
    tp__names_stop(cl);
    sub_close(&cl->sub_join);
    sub_close(&cl->sub_inbox);
    sub_close(&cl->sub_hb);
    tp__link_stop(cl); /* after the subscriptions: their hooks read cl->lk */
    if (cl->nc != NULL) {
        atomic_store(&cl->closing, true);
        natsConnection_Close(cl->nc);
        /* Callbacks run on libnats' own thread, after Close returns:
         * wait for the last one before cl can be freed. */
        for (int i = 0; i < 5000 && !atomic_load(&cl->closed); i++)
            sleep_ms(1);
        natsConnection_Destroy(cl->nc);
        cl->nc = NULL;
    }
}

int
tp_cluster_start(tp_runtime *rt, const tp_cluster_options *opts)
{
    struct tp__cluster_slot *s;
    struct tp__cluster *cl;
    int err;

    if (rt == NULL || opts == NULL || options_check(opts) != 0 ||
        tp__sched_self(rt) != NULL || !atomic_load(&rt->started))
        return -EINVAL;
    if ((s = slot_make(rt)) == NULL)
        return -ENOMEM;
    pthread_rwlock_rdlock(&s->lock);
    err = s->cl != NULL ? -EALREADY : 0;
    pthread_rwlock_unlock(&s->lock);
    if (err != 0)
        return err;
    if ((cl = cluster_new(rt, opts)) == NULL)
        return -ENOMEM;
    if ((err = nats_connect(cl)) == 0 &&
        (err = tp__link_start(cl, opts->link_address,
                              opts->tls_ca_file != NULL)) == 0 &&
        (err = join(cl)) == 0 && (err = tp__names_start(cl)) == 0 &&
        (err = tp__service_start(cl)) == 0) {
        if (pthread_create(&cl->thread, NULL, tp__node_thread, cl) != 0)
            err = -EAGAIN;
        else
            cl->thread_started = true;
    }
    if (err == 0) {
        pthread_rwlock_wrlock(&s->lock);
        if (s->cl != NULL)
            err = -EALREADY;
        else
            s->cl = cl;
        pthread_rwlock_unlock(&s->lock);
    }
    if (err != 0) {
        cluster_teardown(cl);
        cluster_free(cl);
        return err;
    }
    tp__link_wake(cl); /* joined: links to the peers found may connect */
    tp__names_open_quiet(cl);
    tp__node_greet_peers(cl);
    tp__node_publish_self(cl, TP__W_HELLO, cl->hb_subject, 0);
    natsConnection_Flush(cl->nc);
    tp_log(TP_LOG_INFO, "cluster %s: node %s joined as node id %u", cl->cluster,
           cl->name, cl->id);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Stop                                                                   */

static void
node_thread_stop(struct tp__cluster *cl)
{
    if (!cl->thread_started)
        return;
    pthread_mutex_lock(&cl->lock);
    cl->stopping = true;
    pthread_mutex_unlock(&cl->lock);
    pthread_cond_broadcast(&cl->cond);
    pthread_join(cl->thread, NULL);
    cl->thread_started = false;
}

int
tp_cluster_stop(tp_runtime *rt)
{
    struct tp__cluster_slot *s = rt != NULL ? slot_of(rt) : NULL;
    struct tp__cluster *cl;

    if (s == NULL)
        return -ENOTCONN;
    pthread_rwlock_wrlock(&s->lock);
    cl = s->cl;
    s->cl = NULL; /* no hook finds it any more */
    pthread_rwlock_unlock(&s->lock);
    if (cl == NULL)
        return -ENOTCONN;
    node_thread_stop(cl);
    tp__service_stop(cl);
    if (!atomic_load(&cl->connected)) {
        /* NATS is away: closed now, the names' watcher stop below fails at
         * once instead of waiting out a JetStream request timeout (5 s)
         * to delete its consumer, which the server drops by itself. */
        atomic_store(&cl->closing, true);
        natsConnection_Close(cl->nc);
    }
    tp__names_stop(cl);
    tp__link_bye(cl);
    if (atomic_load(&cl->connected)) {
        tp__node_publish_self(cl, TP__W_BYE, cl->hb_subject, 0);
        natsConnection_FlushTimeout(cl->nc, 1000);
    }
    sub_close(&cl->sub_inbox);
    sub_close(&cl->sub_hb);
    tp__link_stop(cl); /* no more inbound frames, like the subscriptions */
    tp__node_all_down(cl, 2);
    cluster_teardown(cl);
    cluster_free(cl);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Queries                                                                */

uint32_t
tp_cluster_node_id(tp_runtime *rt)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    uint32_t id = 0;

    if (cl != NULL) {
        id = cl->id;
        tp__cluster_put(cl);
    }
    return id;
}

tp_pid
tp_cluster_pid(tp_runtime *rt, tp_pid pid)
{
    struct tp__cluster *cl = tp__cluster_get(rt);

    if (cl != NULL) {
        pid = tp__cluster_global(cl, pid);
        tp__cluster_put(cl);
    }
    return pid;
}

uint32_t
tp_cluster_node_lookup(tp_runtime *rt, const char *name)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    uint32_t id = 0;

    if (cl == NULL || name == NULL)
        goto out;
    if (strcmp(name, cl->name) == 0) {
        id = cl->id;
        goto out;
    }
    pthread_mutex_lock(&cl->lock);
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX && id == 0; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p != NULL && atomic_load(&p->state) == TP__PEER_UP &&
            strcmp(p->name, name) == 0)
            id = i;
    }
    pthread_mutex_unlock(&cl->lock);
out:
    if (cl != NULL)
        tp__cluster_put(cl);
    return id;
}

int
tp_cluster_node_name(tp_runtime *rt, uint32_t node, char *buf, size_t size)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    struct tp__cpeer *p;
    int err = -ENOENT;

    if (cl == NULL)
        return -ENOTCONN;
    if (node == cl->id) {
        snprintf(buf, size, "%s", cl->name);
        err = 0;
    } else if (node >= 1 && node <= TP_PID_NODE_MAX &&
               (p = atomic_load(&cl->peers[node])) != NULL) {
        pthread_mutex_lock(&cl->lock);
        if (p->name[0] != '\0') {
            snprintf(buf, size, "%s", p->name);
            err = 0;
        }
        pthread_mutex_unlock(&cl->lock);
    }
    tp__cluster_put(cl);
    return err;
}

static void
peer_stats(struct tp__cpeer *p, tp_cluster_peer_stats *o)
{
    memset(o, 0, sizeof(*o));
    o->node = p->id;
    snprintf(o->name, sizeof(o->name), "%s", p->name);
    o->up = atomic_load(&p->state) == TP__PEER_UP;
    o->queued = atomic_load(&p->queued);
    o->msgs_out = atomic_load(&p->msgs_out);
    o->bytes_out = atomic_load(&p->bytes_out);
    o->msgs_in = atomic_load(&p->msgs_in);
    o->bytes_in = atomic_load(&p->bytes_in);
    o->drops_out = atomic_load(&p->drops_out);
    o->rtt_ns = atomic_load(&p->rtt_ns);
    o->hb_misses = atomic_load(&p->hb_misses);
    o->downs = atomic_load(&p->downs);
    o->link = (uint32_t)atomic_load(&p->link);
    o->link_bytes_out = atomic_load(&p->link_bytes_out);
    o->link_bytes_in = atomic_load(&p->link_bytes_in);
    o->link_fallbacks = atomic_load(&p->link_fallbacks);
    o->link_breaks = atomic_load(&p->link_breaks);
}

int
tp_cluster_stats(tp_runtime *rt, tp_cluster_summary *out,
                 tp_cluster_peer_stats *peers, unsigned n)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    unsigned count = 0, up = 0;

    if (cl == NULL)
        return -ENOTCONN;
    pthread_mutex_lock(&cl->lock);
    for (uint32_t i = 1; i <= TP_PID_NODE_MAX; i++) {
        struct tp__cpeer *p = atomic_load(&cl->peers[i]);
        if (p == NULL || p->name[0] == '\0')
            continue;
        if (count < n)
            peer_stats(p, &peers[count]);
        up += atomic_load(&p->state) == TP__PEER_UP;
        count++;
    }
    pthread_mutex_unlock(&cl->lock);
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
        out->node = cl->id;
        snprintf(out->name, sizeof(out->name), "%s", cl->name);
        out->connected = atomic_load(&cl->connected);
        out->peers_up = up;
        out->disconnects = atomic_load(&cl->disconnects);
        out->reconnects = atomic_load(&cl->reconnects);
        out->slow_consumer = atomic_load(&cl->slow_consumer);
        out->bad_frames = atomic_load(&cl->bad_frames);
        out->drops = atomic_load(&cl->drops);
        out->max_payload = cl->max_payload;
        tp__link_summary(cl, out);
        out->name_conflicts = atomic_load(&cl->name_conflicts);
        out->global_names = tp__names_count(cl);
    }
    tp__cluster_put(cl);
    return (int)count;
}

int
tp__cluster_isolate(tp_runtime *rt, bool on)
{
    struct tp__cluster *cl = tp__cluster_get(rt);

    if (cl == NULL)
        return -ENOTCONN;
    atomic_store(&cl->isolated, on);
    tp__cluster_put(cl);
    return 0;
}
