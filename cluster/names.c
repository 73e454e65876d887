/*
 * cluster/names.c - cluster-wide names on a NATS JetStream key-value
 * bucket ("tp_<cluster>", one revision of history, file storage).
 *
 * A name is a key; its value is the owner's cluster pid (8 bytes, little
 * endian), or empty once released. Every change is a compare-and-set on
 * the key's revision (kvStore_Create for a new key, kvStore_Update with
 * the revision read for anything else), so two nodes racing for a name
 * cannot both win: JetStream orders the writes and one of them fails.
 *
 * Release: the owner's node monitors the owner with a small keeper actor
 * and empties the key when it dies; when a node goes down every node that
 * uses the bucket empties the keys owned there (again by compare-and-set,
 * so a name taken again meanwhile is left alone). Readers do not depend on
 * that cleanup: an owner whose node is not up counts as no owner, both for
 * tp_whereis_global() and for a new registration. KV calls block on a
 * round trip: they run on the caller's thread (register, unregister,
 * whereis) or on the names thread (releases), never on a delivery thread.
 */
#include "cluster_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAMES_WATCH  0xfffe0b01u /* keeper: monitor pid for name */
#define NAMES_FORGET 0xfffe0b02u /* keeper: stop watching name */

struct name_msg {
    tp_pid pid;
    char name[TP_NAME_MAX + 1];
};

/* A release job for the names thread. */
struct job {
    struct job *next;
    uint32_t node; /* release every name of this node, or 0: */
    tp_pid pid;    /* release name if still owned by pid */
    char name[TP_NAME_MAX + 1];
};

/* The node's copy of the bucket, kept by a watcher (names thread). */
#define CACHE_BUCKETS 4096u

struct gname {
    struct gname *next;
    tp_pid owner;
    char name[TP_NAME_MAX + 1];
};

struct tp__names {
    jsCtx *js;
    kvStore *kv;
    kvWatcher *watch;
    pthread_rwlock_t cache_lock;
    struct gname *cache[CACHE_BUCKETS];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct job *head, *tail;
    bool stop, thread_started;
};

/* ---------------------------------------------------------------------- */
/* Values                                                                 */

static void
put_pid(unsigned char *p, tp_pid pid)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(pid >> (8 * i));
}

static tp_pid
get_pid(const unsigned char *p)
{
    tp_pid v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static bool
key_ok(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return false;
    for (const char *c = name; *c != '\0'; c++, n++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                  *c == '/' || *c == '=';
        if (!ok)
            return false;
    }
    return n >= 1 && n <= TP_NAME_MAX;
}

static uint32_t
name_bucket(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (const char *c = name; *c != '\0'; c++)
        h = (h ^ (unsigned char)*c) * 16777619u;
    return h % CACHE_BUCKETS;
}

/* Sets (owner != 0) or removes name in the cache. */
static void
cache_set(struct tp__names *N, const char *name, tp_pid owner)
{
    struct gname **pp, *g;

    if (strlen(name) > TP_NAME_MAX)
        return;
    pthread_rwlock_wrlock(&N->cache_lock);
    for (pp = &N->cache[name_bucket(name)]; (g = *pp) != NULL; pp = &g->next)
        if (strcmp(g->name, name) == 0)
            break;
    if (g != NULL && owner == TP_PID_NONE) {
        *pp = g->next;
        tp__free(g);
    } else if (g != NULL) {
        g->owner = owner;
    } else if (owner != TP_PID_NONE && (g = tp__malloc(sizeof(*g))) != NULL) {
        g->owner = owner;
        snprintf(g->name, sizeof(g->name), "%s", name);
        g->next = NULL;
        *pp = g;
    }
    pthread_rwlock_unlock(&N->cache_lock);
}

static tp_pid
cache_get(struct tp__names *N, const char *name)
{
    tp_pid owner = TP_PID_NONE;
    struct gname *g;

    pthread_rwlock_rdlock(&N->cache_lock);
    for (g = N->cache[name_bucket(name)]; g != NULL; g = g->next)
        if (strcmp(g->name, name) == 0) {
            owner = g->owner;
            break;
        }
    pthread_rwlock_unlock(&N->cache_lock);
    return owner;
}

static void
cache_free(struct tp__names *N)
{
    for (uint32_t i = 0; i < CACHE_BUCKETS; i++) {
        struct gname *g;
        while ((g = N->cache[i]) != NULL) {
            N->cache[i] = g->next;
            tp__free(g);
        }
    }
}

/* The owner in entry e (TP_PID_NONE when released). */
static tp_pid
entry_owner(kvEntry *e)
{
    if (e == NULL || kvEntry_Operation(e) != kvOp_Put ||
        kvEntry_ValueLen(e) != 8)
        return TP_PID_NONE;
    return get_pid(kvEntry_Value(e));
}

/* True when owner (cluster form) may still be alive: its node is up (or
 * is us and the actor lives). */
static bool
owner_alive(struct tp__cluster *cl, tp_pid owner)
{
    struct tp__cpeer *p;
    tp_actor_info info;

    if (owner == TP_PID_NONE)
        return false;
    if (tp_pid_node(owner) == cl->id)
        return tp_actor_peek(cl->rt, tp_pid_with_node(owner, 0), &info) == 0;
    p = atomic_load(&cl->peers[tp_pid_node(owner)]);
    return p != NULL && atomic_load(&p->state) == TP__PEER_UP;
}

/* Empties key if its owner is still `owner` (compare-and-set). */
static void
release_if(kvStore *kv, const char *key, tp_pid owner)
{
    kvEntry *e = NULL;
    uint64_t rev;

    if (kvStore_Get(&e, kv, key) != NATS_OK)
        return;
    if (entry_owner(e) == owner)
        kvStore_Update(&rev, kv, key, NULL, 0, kvEntry_Revision(e));
    kvEntry_Destroy(e);
}

static void
release_node(kvStore *kv, uint32_t node)
{
    kvKeysList keys = {0};
    kvWatchOptions wo;

    kvWatchOptions_Init(&wo);
    wo.Timeout = 2000;
    if (kvStore_Keys(&keys, kv, &wo) != NATS_OK)
        return;
    for (int i = 0; i < keys.Count; i++) {
        kvEntry *e = NULL;
        uint64_t rev;
        if (kvStore_Get(&e, kv, keys.Keys[i]) != NATS_OK)
            continue;
        tp_pid owner = entry_owner(e);
        if (owner != TP_PID_NONE && tp_pid_node(owner) == node)
            kvStore_Update(&rev, kv, keys.Keys[i], NULL, 0,
                           kvEntry_Revision(e));
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
}

/* ---------------------------------------------------------------------- */
/* The names thread                                                       */

/* Applies what the watcher has (waits up to 100 ms for it). */
static void
watch_step(struct tp__names *N)
{
    kvEntry *e = NULL;

    for (int i = 0; i < 4096; i++) {
        if (kvWatcher_Next(&e, N->watch, i == 0 ? 100 : 0) != NATS_OK)
            return;
        if (e == NULL)
            continue; /* the initial values are all in */
        cache_set(N, kvEntry_Key(e), entry_owner(e));
        kvEntry_Destroy(e);
        e = NULL;
    }
}

static void *
names_thread(void *arg)
{
    struct tp__names *N = arg;

    pthread_mutex_lock(&N->lock);
    while (!N->stop) {
        struct job *j = N->head;
        if (j == NULL) {
            pthread_mutex_unlock(&N->lock);
            watch_step(N);
            pthread_mutex_lock(&N->lock);
            continue;
        }
        N->head = j->next;
        if (N->head == NULL)
            N->tail = NULL;
        pthread_mutex_unlock(&N->lock);
        if (j->node != 0)
            release_node(N->kv, j->node);
        else
            release_if(N->kv, j->name, j->pid);
        tp__free(j);
        pthread_mutex_lock(&N->lock);
    }
    pthread_mutex_unlock(&N->lock);
    return NULL;
}

static void
post(struct tp__names *N, uint32_t node, tp_pid pid, const char *name)
{
    struct job *j = tp__calloc(1, sizeof(*j));

    if (j == NULL)
        return; /* readers ignore dead owners anyway */
    j->node = node;
    j->pid = pid;
    if (name != NULL)
        snprintf(j->name, sizeof(j->name), "%s", name);
    pthread_mutex_lock(&N->lock);
    if (N->tail != NULL)
        N->tail->next = j;
    else
        N->head = j;
    N->tail = j;
    pthread_mutex_unlock(&N->lock);
    pthread_cond_signal(&N->cond);
}

/* ---------------------------------------------------------------------- */
/* The keeper actor: monitors the owners of this node's names             */

struct keeper {
    struct tp__u64map refs; /* monitor ref -> (uintptr) struct name_msg * */
};

static void
keeper_forget(tp_ctx *ctx, struct keeper *k, const struct name_msg *nm)
{
    struct tp__u64map_entry *e;
    uint32_t i;

    for (i = 0; tp__u64map_next(&k->refs, &i, &e);) {
        struct name_msg *w = (struct name_msg *)(uintptr_t)e->val;
        if (w->pid == nm->pid && strcmp(w->name, nm->name) == 0) {
            uint64_t ref = e->key;
            tp_demonitor(ctx, ref, TP_DEMONITOR_FLUSH);
            tp__u64map_remove(&k->refs, ref, NULL);
            tp__free(w);
            return;
        }
    }
}

static void
keeper_down(tp_ctx *ctx, struct keeper *k, const tp_msg *m)
{
    struct tp__cluster *cl = tp__cluster_get(tp_ctx_runtime(ctx));
    uint64_t ref, v;
    tp_exit_reason r;
    tp_pid pid;

    if (tp_msg_down(m, &pid, &ref, &r) != 0 ||
        !tp__u64map_remove(&k->refs, ref, &v))
        return;
    if (cl != NULL) {
        struct name_msg *w = (struct name_msg *)(uintptr_t)v;
        if (cl->names != NULL)
            post(cl->names, 0, tp__cluster_global(cl, w->pid), w->name);
        tp__cluster_put(cl);
    }
    tp__free((void *)(uintptr_t)v);
}

static void
keeper_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct keeper *k = state;
    struct name_msg *w;
    uint64_t ref;

    if (m->type == TP_MSG_DOWN) {
        keeper_down(ctx, k, m);
        return;
    }
    if (m->len != sizeof(struct name_msg))
        return;
    if (m->type == NAMES_FORGET) {
        keeper_forget(ctx, k, m->data);
        return;
    }
    if (m->type != NAMES_WATCH || (w = tp__malloc(sizeof(*w))) == NULL)
        return;
    memcpy(w, m->data, sizeof(*w));
    if (tp_monitor(ctx, w->pid, &ref) != 0 ||
        tp__u64map_put(&k->refs, ref, (uintptr_t)w) < 0)
        tp__free(w);
}

static int
keeper_init(tp_ctx *ctx, void *state, void *arg)
{
    struct keeper *k = state;

    (void)arg;
    ctx->self->oflags |= TP__A_SYSTEM;
    tp__u64map_init(&k->refs);
    return 0;
}

static void
keeper_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    struct keeper *k = state;
    struct tp__u64map_entry *e;
    uint32_t i;

    (void)ctx;
    (void)r;
    for (i = 0; tp__u64map_next(&k->refs, &i, &e);)
        tp__free((void *)(uintptr_t)e->val);
    tp__u64map_fini(&k->refs);
}

static const tp_behaviour keeper_b = {.name = "troupe.cluster-names",
                                      .state_size = sizeof(struct keeper),
                                      .init = keeper_init,
                                      .handle = keeper_handle,
                                      .terminate = keeper_terminate};

/* ---------------------------------------------------------------------- */
/* Opening and closing                                                    */

int
tp__names_start(struct tp__cluster *cl)
{
    return tp_runtime_spawn(cl->rt, &keeper_b, NULL, NULL, &cl->keeper);
}

/* The bucket, opened on first use (cl->lock not held). */
static kvStore *
names_kv_open(struct tp__cluster *cl, bool quiet)
{
    struct tp__names *N;
    kvConfig kc;
    char bucket[80];
    natsStatus s;

    pthread_mutex_lock(&cl->names_lock);
    if ((N = cl->names) != NULL || cl->names_failed)
        goto out;
    N = tp__calloc(1, sizeof(*N));
    if (N == NULL)
        goto out;
    pthread_mutex_init(&N->lock, NULL);
    pthread_cond_init(&N->cond, NULL);
    snprintf(bucket, sizeof(bucket), "tp_%s", cl->cluster);
    for (char *c = bucket; *c != '\0'; c++)
        if (*c == '@')
            *c = '_';
    s = natsConnection_JetStream(&N->js, cl->nc, NULL);
    if (s == NATS_OK && js_KeyValue(&N->kv, N->js, bucket) != NATS_OK) {
        kvConfig_Init(&kc);
        kc.Bucket = bucket;
        kc.History = 1;
        s = js_CreateKeyValue(&N->kv, N->js, &kc);
    }
    pthread_rwlock_init(&N->cache_lock, NULL);
    if (s == NATS_OK)
        s = kvStore_WatchAll(&N->watch, N->kv, NULL);
    if (s == NATS_OK && pthread_create(&N->thread, NULL, names_thread, N) == 0)
        N->thread_started = true;
    else if (s == NATS_OK)
        s = NATS_ERR;
    if (s != NATS_OK) {
        tp_log(quiet ? TP_LOG_INFO : TP_LOG_ERROR,
               "cluster %s: no JetStream key-value bucket %s for global "
               "names (run nats-server with -js): %s",
               cl->cluster, bucket, natsStatus_GetText(s));
        if (N->watch != NULL)
            kvWatcher_Destroy(N->watch);
        if (N->kv != NULL)
            kvStore_Destroy(N->kv);
        if (N->js != NULL)
            jsCtx_Destroy(N->js);
        pthread_rwlock_destroy(&N->cache_lock);
        pthread_mutex_destroy(&N->lock);
        pthread_cond_destroy(&N->cond);
        tp__free(N);
        N = NULL;
        cl->names_failed = !quiet; /* a quiet try at start may be retried */
        goto out;
    }
    cl->names = N;
out:
    pthread_mutex_unlock(&cl->names_lock);
    return N != NULL ? N->kv : NULL;
}

static kvStore *
names_kv(struct tp__cluster *cl)
{
    return names_kv_open(cl, false);
}

void
tp__names_node_down(struct tp__cluster *cl, uint32_t node)
{
    pthread_mutex_lock(&cl->names_lock);
    if (cl->names != NULL)
        post(cl->names, node, TP_PID_NONE, NULL);
    pthread_mutex_unlock(&cl->names_lock);
}

void
tp__names_stop(struct tp__cluster *cl)
{
    struct tp__names *N;
    struct job *j;

    if (cl->keeper != TP_PID_NONE) {
        tp_runtime_exit_pid(cl->rt, cl->keeper,
                            &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
        cl->keeper = TP_PID_NONE;
    }
    /* Delivery threads may still post releases (tp__names_node_down): they
     * find no bucket from here on. */
    pthread_mutex_lock(&cl->names_lock);
    N = cl->names;
    cl->names = NULL;
    pthread_mutex_unlock(&cl->names_lock);
    if (N == NULL)
        return;
    pthread_mutex_lock(&N->lock);
    N->stop = true;
    pthread_mutex_unlock(&N->lock);
    pthread_cond_signal(&N->cond);
    kvWatcher_Stop(N->watch); /* wakes a waiting kvWatcher_Next */
    if (N->thread_started)
        pthread_join(N->thread, NULL);
    /* This node leaves: its names go with it. */
    if (atomic_load(&cl->connected))
        release_node(N->kv, cl->id);
    while ((j = N->head) != NULL) {
        N->head = j->next;
        tp__free(j);
    }
    kvWatcher_Destroy(N->watch);
    kvStore_Destroy(N->kv);
    jsCtx_Destroy(N->js);
    cache_free(N);
    pthread_rwlock_destroy(&N->cache_lock);
    pthread_mutex_destroy(&N->lock);
    pthread_cond_destroy(&N->cond);
    tp__free(N);
}

/* ---------------------------------------------------------------------- */
/* Public API                                                             */

/* Takes key for gpid if it is free or its owner is dead. */
static int
claim(struct tp__cluster *cl, kvStore *kv, const char *name, tp_pid gpid)
{
    unsigned char v[8];
    uint64_t rev;
    kvEntry *e = NULL;
    tp_pid owner;
    natsStatus s;
    int err;

    put_pid(v, gpid);
    for (int tries = 0; tries < 3; tries++) {
        if (kvStore_Create(&rev, kv, name, v, 8) == NATS_OK)
            return 0;
        s = kvStore_Get(&e, kv, name);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted meanwhile: create again */
        if (s != NATS_OK)
            return s == NATS_TIMEOUT ? -ETIMEDOUT : -ENOTCONN;
        owner = entry_owner(e);
        if (owner == gpid) {
            err = 0;
        } else if (owner_alive(cl, owner)) {
            err = -EEXIST;
        } else {
            s = kvStore_Update(&rev, kv, name, v, 8, kvEntry_Revision(e));
            err = s == NATS_OK ? 0 : 1; /* 1: lost a race, read again */
        }
        kvEntry_Destroy(e);
        e = NULL;
        if (err <= 0)
            return err;
    }
    return -EEXIST;
}

static int
keeper_send(struct tp__cluster *cl, uint32_t type, tp_pid pid, const char *name)
{
    struct name_msg nm = {.pid = pid};
    struct tp__msg *m;
    tp_ctx *ctx;

    snprintf(nm.name, sizeof(nm.name), "%s", name);
    if ((m = tp__msg_copy(type, &nm, sizeof(nm))) == NULL)
        return -ENOMEM;
    m->flags |= TP__MSG_FORCED; /* library types are not sendable */
    ctx = tp__xctx_acquire(cl->rt);
    tp__deliver(ctx, cl->keeper, m);
    tp__xctx_release(ctx);
    return 0;
}

int
tp_register_global(tp_runtime *rt, const char *name, tp_pid pid)
{
    struct tp__cluster *cl;
    tp_actor_info info;
    kvStore *kv;
    int err;

    if (!key_ok(name) || pid == TP_PID_NONE)
        return -EINVAL;
    if ((cl = tp__cluster_get(rt)) == NULL)
        return -ENOTCONN;
    pid = tp__cluster_local(cl, pid);
    if (tp_pid_is_remote(pid))
        err = -EINVAL; /* a node registers its own actors */
    else if (tp_actor_peek(rt, pid, &info) != 0)
        err = -ESRCH;
    else if ((kv = names_kv(cl)) == NULL)
        err = -ENOTSUP;
    else if ((err = claim(cl, kv, name, tp__cluster_global(cl, pid))) == 0)
        err = keeper_send(cl, NAMES_WATCH, pid, name);
    tp__cluster_put(cl);
    return err;
}

int
tp_unregister_global(tp_runtime *rt, const char *name, tp_pid pid)
{
    struct tp__cluster *cl;
    kvEntry *e = NULL;
    kvStore *kv;
    uint64_t rev;
    int err = -ENOENT;

    if (!key_ok(name))
        return -EINVAL;
    if ((cl = tp__cluster_get(rt)) == NULL)
        return -ENOTCONN;
    pid = tp__cluster_global(cl, tp__cluster_local(cl, pid));
    if ((kv = names_kv(cl)) == NULL) {
        err = -ENOTSUP;
    } else if (kvStore_Get(&e, kv, name) == NATS_OK) {
        if (entry_owner(e) == pid &&
            kvStore_Update(&rev, kv, name, NULL, 0, kvEntry_Revision(e)) ==
                NATS_OK)
            err = 0;
        kvEntry_Destroy(e);
    }
    if (err == 0)
        keeper_send(cl, NAMES_FORGET, tp__cluster_local(cl, pid), name);
    tp__cluster_put(cl);
    return err;
}

tp_pid
tp_whereis_global(tp_runtime *rt, const char *name)
{
    struct tp__cluster *cl;
    tp_pid owner = TP_PID_NONE;
    kvEntry *e = NULL;
    kvStore *kv;

    if (!key_ok(name) || (cl = tp__cluster_get(rt)) == NULL)
        return TP_PID_NONE;
    if ((kv = names_kv(cl)) != NULL && kvStore_Get(&e, kv, name) == NATS_OK) {
        owner = entry_owner(e);
        kvEntry_Destroy(e);
        if (!owner_alive(cl, owner))
            owner = TP_PID_NONE;
    }
    tp__cluster_put(cl);
    return owner;
}

tp_pid
tp_whereis_global_cached(tp_runtime *rt, const char *name)
{
    struct tp__cluster *cl;
    tp_pid owner = TP_PID_NONE;

    if (!key_ok(name) || (cl = tp__cluster_get(rt)) == NULL)
        return TP_PID_NONE;
    /* names is set once (under names_lock) and freed only by stop, which
     * cannot run while we hold the cluster. */
    pthread_mutex_lock(&cl->names_lock);
    if (cl->names != NULL)
        owner = cache_get(cl->names, name);
    pthread_mutex_unlock(&cl->names_lock);
    if (!owner_alive(cl, owner))
        owner = TP_PID_NONE;
    tp__cluster_put(cl);
    return owner;
}

void
tp__names_open_quiet(struct tp__cluster *cl)
{
    names_kv_open(cl, true);
}
