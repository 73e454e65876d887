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
 * and empties the key when it dies; a node that leaves empties its keys,
 * and so do the nodes that see it leave (BYE). A node that only went
 * silent keeps its keys (it may be cut off, not dead; see
 * tp__names_node_down). Readers do not depend on any cleanup: an owner
 * whose node is not up counts as no owner, both for tp_whereis_global()
 * and for a new registration (which overwrites it, by compare-and-set).
 *
 * Conflicts: because a down node's names count as free, a name held by an
 * actor on a node that was cut off can be registered again on the other
 * side. Each node keeps its own claims (name, local owner, the revision
 * its write got) in a local table; the names thread compares them with
 * the bucket when the watcher reports a newer revision of one of those
 * keys, and re-reads every claim when a peer comes up after a node went
 * down. The bucket's owner wins (docs/CLUSTER.md): a claim that finds
 * another live owner there is removed, its actor gets
 * TP_MSG_NAME_CONFLICT, the conflict is logged and counted; a claim that
 * finds the key released (or held by a node that is down) is written back.
 * A key naming a live actor of ours that we neither hold nor are
 * registering (a timed-out registration that reached the server late) is
 * emptied.
 *
 * KV calls block on a round trip: they run on the caller's thread
 * (register, unregister, whereis) or on the names thread (releases,
 * checks), never on a delivery thread.
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

/* A job for the names thread. */
struct job {
    struct job *next;
    bool verify;   /* re-read this node's claims (if suspect), or: */
    uint32_t node; /* release the names of this node (why), or 0: */
    int why;       /* enum release_why */
    tp_pid pid;    /* release name if still owned by pid */
    char name[TP_NAME_MAX + 1];
};

/* One claim of this node: name held by a local actor. */
#define LOCAL_BUCKETS 256u
#define RECENT_MAX    16u

struct claim {
    struct claim *next;
    tp_pid pid;   /* local form */
    uint64_t rev; /* bucket revision of our write (0: unknown) */
    uint64_t ver; /* this entry's version (table-wide counter) */
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
    struct tp__cluster *cl;
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
    /* This node's claims and its last conflicts, under local_lock (never
     * held across a NATS round trip: the keeper takes it on a scheduler). */
    pthread_mutex_t local_lock;
    struct claim *local[LOCAL_BUCKETS];
    struct claim *pending; /* registrations in progress (name, pid) */
    uint32_t nlocal;
    uint64_t ver;
    tp_name_conflict recent[RECENT_MAX];
    uint32_t nrecent; /* conflicts ever recorded; recent[] is a ring */
    /* A node went down since the claims were last read back: the next
     * peer that comes up triggers a check. */
    _Atomic bool suspect;
    uint64_t retry_at; /* names thread: a check NATS did not answer */
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

/* ---------------------------------------------------------------------- */
/* This node's claims                                                     */

static struct claim **
claim_find(struct tp__names *N, const char *name)
{
    struct claim **pp, *c;

    for (pp = &N->local[name_bucket(name) % LOCAL_BUCKETS]; (c = *pp) != NULL;
         pp = &c->next)
        if (strcmp(c->name, name) == 0)
            break;
    return pp;
}

/* Records that pid (local) holds name since revision rev. Returns true if
 * the claim is new (false: pid had it already). */
static bool
claim_add(struct tp__names *N, const char *name, tp_pid pid, uint64_t rev)
{
    struct claim **pp, *c;
    bool fresh = false;

    pthread_mutex_lock(&N->local_lock);
    pp = claim_find(N, name);
    if ((c = *pp) != NULL && c->pid != pid) {
        c->pid = pid; /* the previous owner is dead (claim() checked) */
        c->rev = rev;
        c->ver = ++N->ver;
        fresh = true;
    } else if (c != NULL) {
        if (rev != 0)
            c->rev = rev;
    } else if ((c = tp__calloc(1, sizeof(*c))) != NULL) {
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->pid = pid;
        c->rev = rev;
        c->ver = ++N->ver;
        *pp = c;
        N->nlocal++;
        fresh = true;
    }
    pthread_mutex_unlock(&N->local_lock);
    return fresh;
}

/* Removes the claim of name if pid holds it and (ver != 0) it is still
 * version ver. Returns true if it was removed. */
static bool
claim_take(struct tp__names *N, const char *name, tp_pid pid, uint64_t ver)
{
    struct claim **pp, *c;
    bool hit;

    pthread_mutex_lock(&N->local_lock);
    pp = claim_find(N, name);
    c = *pp;
    hit = c != NULL && c->pid == pid && (ver == 0 || c->ver == ver);
    if (hit) {
        *pp = c->next;
        N->nlocal--;
        tp__free(c);
    }
    pthread_mutex_unlock(&N->local_lock);
    return hit;
}

/* The claim of name, copied (false: none). */
static bool
claim_get(struct tp__names *N, const char *name, struct claim *out)
{
    struct claim *c;

    pthread_mutex_lock(&N->local_lock);
    c = *claim_find(N, name);
    if (c != NULL)
        *out = *c;
    pthread_mutex_unlock(&N->local_lock);
    return c != NULL;
}

/* Registrations in progress: a write of ours the watcher reports before
 * the claim is recorded is not an orphan (see watch_check). */
static void
pending_set(struct tp__names *N, const char *name, tp_pid pid, bool on)
{
    struct claim **pp, *c;

    pthread_mutex_lock(&N->local_lock);
    for (pp = &N->pending; (c = *pp) != NULL; pp = &c->next)
        if (c->pid == pid && strcmp(c->name, name) == 0)
            break;
    if (on && (c = tp__calloc(1, sizeof(*c))) != NULL) {
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->pid = pid;
        c->next = N->pending;
        N->pending = c;
    } else if (!on && c != NULL) {
        *pp = c->next;
        tp__free(c);
    }
    pthread_mutex_unlock(&N->local_lock);
}

static bool
pending_has(struct tp__names *N, const char *name)
{
    bool hit = false;

    pthread_mutex_lock(&N->local_lock);
    for (struct claim *c = N->pending; c != NULL && !hit; c = c->next)
        hit = strcmp(c->name, name) == 0;
    pthread_mutex_unlock(&N->local_lock);
    return hit;
}

/* True if pid (local) holds name here. */
static bool
claim_holds(struct tp__names *N, const char *name, tp_pid pid)
{
    struct claim c;

    return claim_get(N, name, &c) && c.pid == pid;
}

static void
claims_free(struct tp__names *N)
{
    struct claim *c;

    for (uint32_t i = 0; i < LOCAL_BUCKETS; i++) {
        while ((c = N->local[i]) != NULL) {
            N->local[i] = c->next;
            tp__free(c);
        }
    }
    N->nlocal = 0;
    while ((c = N->pending) != NULL) {
        N->pending = c->next;
        tp__free(c);
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

enum release_why {
    REL_STOP,  /* this node leaves: all its keys */
    REL_LEFT,  /* node said BYE: its keys, unless it is up again */
    REL_STALE, /* this node just opened the bucket: keys of its id from a
                  previous life (none of its claims) */
};

/* Empties the keys owned on node. */
static void
release_node(struct tp__cluster *cl, struct tp__names *N, uint32_t node,
             enum release_why why)
{
    kvStore *kv = N->kv;
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
        bool drop = owner != TP_PID_NONE && tp_pid_node(owner) == node;
        if (drop && why == REL_LEFT)
            drop = !owner_alive(cl, owner);
        else if (drop && why == REL_STALE)
            drop = !claim_holds(N, keys.Keys[i], tp__cluster_local(cl, owner));
        if (drop)
            kvStore_Update(&rev, kv, keys.Keys[i], NULL, 0,
                           kvEntry_Revision(e));
        kvEntry_Destroy(e);
    }
    kvKeysList_Destroy(&keys);
}

/* Takes key for gpid if it is free or its owner is dead: 0 (*rev = the
 * revision written, or 0 when gpid had it already), -EEXIST (*holder =
 * the live owner), -ETIMEDOUT, -ENOTCONN. */
static int
claim(struct tp__cluster *cl, kvStore *kv, const char *name, tp_pid gpid,
      uint64_t *rev, tp_pid *holder)
{
    unsigned char v[8];
    kvEntry *e = NULL;
    tp_pid owner = TP_PID_NONE;
    natsStatus s;
    int err;

    put_pid(v, gpid);
    *rev = 0;
    for (int tries = 0; tries < 3; tries++) {
        if (kvStore_Create(rev, kv, name, v, 8) == NATS_OK)
            return 0;
        s = kvStore_Get(&e, kv, name);
        if (s == NATS_NOT_FOUND)
            continue; /* deleted meanwhile: create again */
        if (s != NATS_OK)
            return s == NATS_TIMEOUT ? -ETIMEDOUT : -ENOTCONN;
        owner = entry_owner(e);
        if (owner == gpid) {
            *rev = kvEntry_Revision(e);
            err = 0;
        } else if (owner_alive(cl, owner)) {
            err = -EEXIST;
        } else {
            s = kvStore_Update(rev, kv, name, v, 8, kvEntry_Revision(e));
            err = s == NATS_OK ? 0 : 1; /* 1: lost a race, read again */
        }
        kvEntry_Destroy(e);
        e = NULL;
        if (err <= 0) {
            if (holder != NULL)
                *holder = err == -EEXIST ? owner : TP_PID_NONE;
            return err;
        }
    }
    if (holder != NULL)
        *holder = owner;
    return -EEXIST;
}

static int keeper_send(struct tp__cluster *cl, uint32_t type, tp_pid pid,
                       const char *name);

/* ---------------------------------------------------------------------- */
/* Conflicts (the names thread)                                           */

/* Our claim c of name lost to winner (cluster form), a live owner the
 * bucket holds: the claim goes, its actor is told, the conflict is
 * logged and counted. Nothing if the claim changed meanwhile. */
static void
lose(struct tp__cluster *cl, struct tp__names *N, const struct claim *c,
     tp_pid winner)
{
    tp_name_conflict ev = {.winner = winner,
                           .loser = tp__cluster_global(cl, c->pid),
                           .at_ns = tp_now_ns()};
    char wtext[32], ltext[32], wnode[TP_NODE_NAME_MAX + 1] = "?";
    tp_actor_info info;
    struct tp__msg *m;
    tp_ctx *ctx;

    if (!claim_take(N, c->name, c->pid, c->ver))
        return;
    keeper_send(cl, NAMES_FORGET, c->pid, c->name);
    if (tp_actor_peek(cl->rt, c->pid, &info) != 0)
        return; /* died meanwhile: nothing lost, its release is queued */
    snprintf(ev.name, sizeof(ev.name), "%s", c->name);
    pthread_mutex_lock(&N->local_lock);
    N->recent[N->nrecent++ % RECENT_MAX] = ev;
    pthread_mutex_unlock(&N->local_lock);
    atomic_fetch_add(&cl->name_conflicts, 1);
    tp_cluster_node_name(cl->rt, tp_pid_node(winner), wnode, sizeof(wnode));
    tp_log(TP_LOG_WARN,
           "cluster %s: global name '%s': conflict after a partition: %s "
           "(node %s, the bucket's owner) keeps it, %s (this node, %s) "
           "loses it",
           cl->cluster, c->name, tp_pid_format(winner, wtext, sizeof(wtext)),
           wnode, tp_pid_format(ev.loser, ltext, sizeof(ltext)), cl->name);
    if ((m = tp__msg_copy(TP_MSG_NAME_CONFLICT, &ev, sizeof(ev))) == NULL)
        return;
    m->flags |= TP__MSG_FORCED;
    ctx = tp__xctx_acquire(cl->rt);
    tp__deliver(ctx, c->pid, m);
    tp__xctx_release(ctx);
}

/* The watcher saw revision rev of name, owned by owner. */
static void
watch_check(struct tp__cluster *cl, struct tp__names *N, const char *name,
            tp_pid owner, uint64_t rev)
{
    struct claim c;
    char text[32];

    if (owner == TP_PID_NONE || !owner_alive(cl, owner))
        return; /* released, or its node is down: for the node-up check */
    if (!claim_get(N, name, &c)) {
        /* A live actor of ours owns it, yet we hold no claim and register
         * nothing: a registration that timed out here (cut off from NATS)
         * reached the server later. Its caller was told it failed. */
        if (tp_pid_node(owner) == cl->id && !pending_has(N, name)) {
            release_if(N->kv, name, owner);
            tp_log(TP_LOG_WARN,
                   "cluster %s: global name '%s' of %s released: its "
                   "registration had timed out and reached NATS late",
                   cl->cluster, name, tp_pid_format(owner, text, sizeof(text)));
        }
        return;
    }
    /* Only a newer write than ours can displace us (the watcher may
     * still be delivering older revisions). */
    if (tp__cluster_global(cl, c.pid) == owner || rev <= c.rev)
        return;
    lose(cl, N, &c, owner);
}

/* Reads claim c back from the bucket: still ours, lost to a live owner,
 * or released meanwhile (then taken back). Returns -EAGAIN when NATS did
 * not answer (check again later). */
static int
verify_one(struct tp__cluster *cl, struct tp__names *N, struct claim *c)
{
    tp_pid gpid = tp__cluster_global(cl, c->pid), owner = TP_PID_NONE;
    kvEntry *e = NULL;
    uint64_t rev;
    natsStatus s;
    int err;

    s = kvStore_Get(&e, N->kv, c->name);
    if (s == NATS_OK) {
        owner = entry_owner(e);
        kvEntry_Destroy(e);
    } else if (s != NATS_NOT_FOUND) {
        return -EAGAIN;
    }
    if (owner == gpid)
        return 0;
    if (owner != TP_PID_NONE && owner_alive(cl, owner)) {
        lose(cl, N, c, owner);
        return 0;
    }
    /* Released while we were cut off (or held by a node that is down
     * now): take it back. */
    err = claim(cl, N->kv, c->name, gpid, &rev, &owner);
    if (err == -EEXIST) {
        lose(cl, N, c, owner);
    } else if (err == 0) {
        struct claim now;
        if (!claim_get(N, c->name, &now) || now.ver != c->ver) {
            release_if(N->kv, c->name, gpid); /* unregistered meanwhile */
        } else {
            claim_add(N, c->name, c->pid, rev);
            tp_log(TP_LOG_INFO,
                   "cluster %s: global name '%s' was released while this "
                   "node was cut off; taken back for its owner",
                   cl->cluster, c->name);
        }
    }
    return err == 0 || err == -EEXIST ? 0 : -EAGAIN;
}

/* Re-reads every claim of this node if a node went down (or NATS was
 * lost) since the last time. */
static void
verify_all(struct tp__cluster *cl, struct tp__names *N)
{
    struct claim *snap;
    uint32_t n = 0;
    bool again = false;

    if (!atomic_exchange(&N->suspect, false))
        return;
    pthread_mutex_lock(&N->local_lock);
    snap = N->nlocal != 0 ? tp__calloc(N->nlocal, sizeof(*snap)) : NULL;
    for (uint32_t i = 0; snap != NULL && i < LOCAL_BUCKETS; i++)
        for (struct claim *c = N->local[i]; c != NULL; c = c->next)
            snap[n++] = *c;
    pthread_mutex_unlock(&N->local_lock);
    for (uint32_t i = 0; i < n; i++)
        again |= verify_one(cl, N, &snap[i]) == -EAGAIN;
    tp__free(snap);
    if (again) { /* NATS did not answer: again in a second */
        atomic_store(&N->suspect, true);
        N->retry_at = tp_now_ns() + 1000000000u;
    }
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
        watch_check(N->cl, N, kvEntry_Key(e), entry_owner(e),
                    kvEntry_Revision(e));
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
            if (N->retry_at != 0 && tp_now_ns() >= N->retry_at) {
                N->retry_at = 0;
                verify_all(N->cl, N);
            }
            watch_step(N);
            pthread_mutex_lock(&N->lock);
            continue;
        }
        N->head = j->next;
        if (N->head == NULL)
            N->tail = NULL;
        pthread_mutex_unlock(&N->lock);
        if (j->verify)
            verify_all(N->cl, N);
        else if (j->node != 0)
            release_node(N->cl, N, j->node, j->why);
        else
            release_if(N->kv, j->name, j->pid);
        tp__free(j);
        pthread_mutex_lock(&N->lock);
    }
    pthread_mutex_unlock(&N->lock);
    return NULL;
}

static void
post(struct tp__names *N, uint32_t node, tp_pid pid, const char *name, int why)
{
    struct job *j = tp__calloc(1, sizeof(*j));

    if (j == NULL)
        return; /* readers ignore dead owners anyway */
    j->verify = node == 0 && name == NULL;
    j->node = node;
    j->why = why;
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
        /* names is set once and freed by stop after the keeper is gone;
         * names_lock is not taken here (held while the bucket opens). */
        if (cl->names != NULL) {
            claim_take(cl->names, w->name, w->pid, 0);
            post(cl->names, 0, tp__cluster_global(cl, w->pid), w->name, 0);
        }
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
    N->cl = cl;
    pthread_mutex_init(&N->lock, NULL);
    pthread_mutex_init(&N->local_lock, NULL);
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
        pthread_mutex_destroy(&N->local_lock);
        pthread_cond_destroy(&N->cond);
        tp__free(N);
        N = NULL;
        cl->names_failed = !quiet; /* a quiet try at start may be retried */
        goto out;
    }
    cl->names = N;
    /* Keys of this node id from a previous life (a node killed, restarted
     * with the same explicit id) would look live: empty them. */
    post(N, cl->id, TP_PID_NONE, NULL, REL_STALE);
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
tp__names_node_down(struct tp__cluster *cl, uint32_t node, bool left)
{
    pthread_mutex_lock(&cl->names_lock);
    if (cl->names != NULL) {
        atomic_store(&cl->names->suspect, true);
        /* A node that left takes its names along; one that went silent
         * keeps them in the bucket (they count as free meanwhile): it may
         * only be cut off, and a release made from this side of a
         * partition can reach the bucket late, after the heal. */
        if (left)
            post(cl->names, node, TP_PID_NONE, NULL, REL_LEFT);
    }
    pthread_mutex_unlock(&cl->names_lock);
}

void
tp__names_node_up(struct tp__cluster *cl)
{
    pthread_mutex_lock(&cl->names_lock);
    if (cl->names != NULL && atomic_load(&cl->names->suspect))
        post(cl->names, 0, TP_PID_NONE, NULL, 0); /* verify */
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
        release_node(cl, N, cl->id, REL_STOP);
    while ((j = N->head) != NULL) {
        N->head = j->next;
        tp__free(j);
    }
    kvWatcher_Destroy(N->watch);
    kvStore_Destroy(N->kv);
    jsCtx_Destroy(N->js);
    cache_free(N);
    claims_free(N);
    pthread_rwlock_destroy(&N->cache_lock);
    pthread_mutex_destroy(&N->lock);
    pthread_mutex_destroy(&N->local_lock);
    pthread_cond_destroy(&N->cond);
    tp__free(N);
}

/* ---------------------------------------------------------------------- */
/* Public API                                                             */

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
    uint64_t rev;
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
    else {
        pending_set(cl->names, name, pid, true);
        err = claim(cl, kv, name, tp__cluster_global(cl, pid), &rev, NULL);
        if (err == 0 && claim_add(cl->names, name, pid, rev))
            err = keeper_send(cl, NAMES_WATCH, pid, name);
        pending_set(cl->names, name, pid, false);
    }
    tp__cluster_put(cl);
    return err;
}

int
tp_unregister_global(tp_runtime *rt, const char *name, tp_pid pid)
{
    struct tp__cluster *cl;
    kvEntry *e = NULL;
    struct claim c;
    kvStore *kv;
    uint64_t rev;
    natsStatus s;
    bool had;
    int err = -ENOENT;

    if (!key_ok(name))
        return -EINVAL;
    if ((cl = tp__cluster_get(rt)) == NULL)
        return -ENOTCONN;
    pid = tp__cluster_global(cl, tp__cluster_local(cl, pid));
    if ((kv = names_kv(cl)) == NULL) {
        err = -ENOTSUP;
        goto out;
    }
    /* The claim goes first: a check of the names thread meanwhile must
     * not take the name back; pending: nor count our key an orphan. */
    pending_set(cl->names, name, tp__cluster_local(cl, pid), true);
    had = claim_get(cl->names, name, &c) &&
          c.pid == tp__cluster_local(cl, pid) &&
          claim_take(cl->names, name, c.pid, c.ver);
    s = kvStore_Get(&e, kv, name);
    if (s == NATS_OK) {
        if (entry_owner(e) == pid &&
            (s = kvStore_Update(&rev, kv, name, NULL, 0,
                                kvEntry_Revision(e))) == NATS_OK)
            err = 0;
        kvEntry_Destroy(e);
    }
    if (s != NATS_OK && s != NATS_NOT_FOUND && had) {
        claim_add(cl->names, name, c.pid, c.rev); /* not released */
        err = s == NATS_TIMEOUT ? -ETIMEDOUT : -ENOTCONN;
    } else if (had) {
        keeper_send(cl, NAMES_FORGET, c.pid, name);
    }
    pending_set(cl->names, name, tp__cluster_local(cl, pid), false);
out:
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

int
tp_cluster_names(tp_runtime *rt, tp_global_name *out, unsigned n)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    struct tp__names *N;
    unsigned count = 0;

    if (cl == NULL)
        return -ENOTCONN;
    /* No names_lock: it is held while the bucket opens (round trips), and
     * N cannot be freed while we hold the cluster. */
    if ((N = cl->names) != NULL) {
        pthread_mutex_lock(&N->local_lock);
        for (uint32_t i = 0; i < LOCAL_BUCKETS; i++)
            for (struct claim *c = N->local[i]; c != NULL; c = c->next) {
                if (count < n) {
                    snprintf(out[count].name, sizeof(out[count].name), "%s",
                             c->name);
                    out[count].pid = tp__cluster_global(cl, c->pid);
                }
                count++;
            }
        pthread_mutex_unlock(&N->local_lock);
    }
    tp__cluster_put(cl);
    return (int)count;
}

int
tp_cluster_name_conflicts(tp_runtime *rt, tp_name_conflict *out, unsigned n)
{
    struct tp__cluster *cl = tp__cluster_get(rt);
    struct tp__names *N;
    unsigned kept = 0;

    if (cl == NULL)
        return -ENOTCONN;
    if ((N = cl->names) != NULL) { /* no names_lock: see above */
        unsigned show;

        pthread_mutex_lock(&N->local_lock);
        kept = N->nrecent < RECENT_MAX ? N->nrecent : RECENT_MAX;
        show = kept < n ? kept : n;
        for (unsigned i = 0; i < show; i++) /* newest first */
            out[i] = N->recent[(N->nrecent - 1 - i) % RECENT_MAX];
        pthread_mutex_unlock(&N->local_lock);
    }
    tp__cluster_put(cl);
    return (int)kept;
}

uint32_t
tp__names_count(struct tp__cluster *cl)
{
    struct tp__names *N = cl->names; /* no names_lock: see above */
    uint32_t n = 0;

    if (N != NULL) {
        pthread_mutex_lock(&N->local_lock);
        n = N->nlocal;
        pthread_mutex_unlock(&N->local_lock);
    }
    return n;
}
