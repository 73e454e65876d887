/*
 * cluster/cluster_int.h - the cluster node as the runtime stores it, the
 * wire format, and the hooks the core calls for remote pids.
 *
 * Threads: libnats runs its own (socket reader, flusher, one delivery
 * thread per subscription). Inbound frames are handed to Troupe from the
 * delivery threads through the outside-thread path (actors/xctx.c), which
 * never blocks. Outbound frames are queued (bounded per peer) by whichever
 * thread sends and published by the cluster's own thread, which also sends
 * heartbeats and detects nodes that went silent: no scheduler ever waits
 * on a socket. With direct links (link.c) the link thread reads like a
 * delivery thread, and a sender may write a lone frame to a link itself
 * (non-blocking, the write lock only tried: tp__link_direct).
 */
#ifndef TP_CLUSTER_CLUSTER_INT_H
#define TP_CLUSTER_CLUSTER_INT_H

#include "actors/actor_int.h"
#include "cluster/hooks.h"

#include <nats/nats.h>
#include <pthread.h>
#include <troupe/cluster.h>

/* ---------------------------------------------------------------------- */
/* Wire format (cluster/wire.c): every frame is a fixed little-endian      */
/* header followed by len payload bytes.                                   */

#define TP__WIRE_MAGIC   0xa7u
#define TP__WIRE_VERSION 1u
#define TP__WIRE_HDR     44u

enum tp__wire_kind {
    TP__W_MSG = 1,   /* ordinary or reply message: type, ref, payload */
    TP__W_LINK,      /* from links to to */
    TP__W_UNLINK,    /* from unlinks to */
    TP__W_MONITOR,   /* from monitors to with ref */
    TP__W_DEMONITOR, /* from drops monitor ref on to */
    TP__W_EXIT,      /* exit signal from -> to; flag LINKED; payload reason */
    TP__W_DOWN,      /* monitor ref of to fired: from died; payload reason */
    TP__W_HELLO,     /* heartbeat / announce: payload node info */
    TP__W_PROBE,     /* join probe: payload node info; answered by HELLO */
    TP__W_BYE,       /* graceful leave: payload node info */
    TP__W_PING,      /* ref = sender's clock */
    TP__W_PONG,      /* ref echoed */
    TP__W_NAMED,     /* to a registered name: u8 len, name, then payload */
    TP__W_IDS,       /* probe answer: u16 count, u16 ids of known nodes */
    TP__W_KIND_MAX
};

#define TP__WF_LINKED 0x01u /* EXIT came through a link */
#define TP__WF_JOIN   0x02u /* HELLO from a node still joining */

struct tp__wire_hdr {
    uint8_t kind, flags;
    uint16_t node;        /* sender's node id */
    uint32_t incarnation; /* low bits of the sender's incarnation */
    uint64_t from, to, ref;
    uint32_t type, len;
};

/* Node info of HELLO / PROBE / BYE. */
struct tp__wire_node {
    uint64_t incarnation;
    uint32_t id;
    char name[TP_NODE_NAME_MAX + 1];
    /* Its direct link listener (has_link false: none, NATS only). */
    bool has_link;
    uint32_t link_ip; /* IPv4, host order */
    uint16_t link_port;
    uint64_t link_token;
};

/* Decodes the first frame of buf[0..n) (more may follow): 0 with *used =
 * its size, or -EBADMSG. */
int tp__wire_next(const void *buf, size_t n, struct tp__wire_hdr *h,
                  const unsigned char **payload, size_t *used);
/* Encodes h (h->len payload bytes follow) into out[TP__WIRE_HDR]. */
/* Little-endian fields of the wire format (wire.c, link.c). */
static inline void
tp__put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void
tp__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void
tp__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint16_t
tp__get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
tp__get32(const unsigned char *p)
{
    uint32_t v = 0;

    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t
tp__get64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

void tp__wire_put_hdr(unsigned char *out, const struct tp__wire_hdr *h);
/* Decodes a frame of n bytes: 0, or -EBADMSG (bad magic, version, kind,
 * length). On success *payload points at h->len bytes inside buf. */
int tp__wire_get_hdr(const void *buf, size_t n, struct tp__wire_hdr *h,
                     const unsigned char **payload);
/* Exit reason payloads: size needed, encode, decode (text points into p,
 * not NUL-terminated: *text_len bytes). */
size_t tp__wire_reason_size(const tp_exit_reason *r);
void tp__wire_put_reason(unsigned char *out, const tp_exit_reason *r);
int tp__wire_get_reason(const unsigned char *p, size_t n, tp_exit_reason *r,
                        size_t *text_len);
/* Node info payloads (fixed 12 + 1 + name bytes, then 14 bytes of link
 * listener when has_link). */
size_t tp__wire_node_size(const struct tp__wire_node *w);
void tp__wire_put_node(unsigned char *out, const struct tp__wire_node *w);
int tp__wire_get_node(const unsigned char *p, size_t n,
                      struct tp__wire_node *w);
/* True when name is a valid node / cluster name. */
bool tp__wire_name_ok(const char *name);

/* ---------------------------------------------------------------------- */
/* The node                                                               */

enum tp__peer_state { TP__PEER_UNKNOWN = 0, TP__PEER_UP, TP__PEER_DOWN };

/* Path of a peer's outbound frames for one up session (cluster/link.c):
 * the values of TP_CLUSTER_LINK_*. */
enum tp__link_path {
    TP__LINK_NATS = 0, /* no link: through the NATS server */
    TP__LINK_TCP,      /* over the direct link */
    TP__LINK_PENDING,  /* held by the cluster thread while it connects */
};

struct tp__lconn;

struct tp__cpeer {
    uint32_t id;
    _Atomic int state; /* enum tp__peer_state */
    char name[TP_NODE_NAME_MAX + 1];
    char subject[160];    /* its inbox */
    uint64_t incarnation; /* under cl->lock */
    uint64_t last_seen_ns;
    uint32_t missed_run; /* heartbeat periods missed in a row */
    uint64_t down_ns;    /* when it last went down (under cl->lock) */
    _Atomic uint32_t queued;
    _Atomic uint64_t msgs_out, bytes_out, msgs_in, bytes_in, drops_out;
    _Atomic uint64_t rtt_ns, hb_misses, downs;
    /* Links and monitors between local actors and actors of this peer
     * (under cl->lock): what gets noconnection when it goes down.
     * links: key = local pid, value = struct tp__u64map * of remote pids.
     * mons: key = monitor ref, value = local watcher; mon_target: ref ->
     * remote target. */
    struct tp__u64map links, mons, mon_target;

    /* Direct link (cluster/link.c). */
    _Atomic int link;        /* enum tp__link_path of this up session */
    _Atomic uint32_t up_gen; /* up sessions so far */
    _Atomic int link_req;    /* TP__LREQ_* bits for the link thread */
    uint32_t link_ip;        /* its listener, from its HELLO (cl->lock) */
    uint16_t link_port;      /* (cl->lock) */
    uint64_t link_token;     /* (cl->lock) */
    pthread_mutex_t wlock;   /* out_fd, out, wbuf.. */
    int out_fd;              /* our connection to it, -1 = none */
    struct tp__lconn *out;   /* its link-thread record */
    unsigned char *wbuf;     /* bytes written late (EPOLLOUT) */
    size_t wlen, woff, wcap; /* wbuf[woff..wlen) pending */
    uint64_t wsince_ns;      /* last progress while pending */
    struct tp__frame *held, *held_tail; /* cluster thread: link pending */
    uint32_t held_gen;                  /* up_gen of the held frames */
    _Atomic uint64_t last_send_ns;      /* tp__link_direct's stream test */
    _Atomic uint64_t link_bytes_out, link_bytes_in, link_fallbacks;
    _Atomic uint64_t link_breaks;
};

/* One outbound frame, queued for the cluster thread. */
struct tp__frame {
    struct tp__frame *next;
    struct tp__cpeer *peer; /* NULL: subject below */
    const char *subject;    /* when peer is NULL (static storage) */
    uint32_t len;
    unsigned char data[];
};

struct tp__cluster {
    tp_runtime *rt;
    struct tp__actors *A;
    char name[TP_NODE_NAME_MAX + 1];
    char cluster[TP_NODE_NAME_MAX + 1];
    char *urls;
    _Atomic uint32_t id; /* final once joined (pick_id) */
    uint64_t incarnation;
    tp_cluster_options opts;
    char hb_subject[160], inbox[160], join_inbox[160];

    natsConnection *nc;
    natsSubscription *sub_hb, *sub_inbox, *sub_join;
    _Atomic bool connected;
    _Atomic bool closing; /* tp_cluster_stop() closes the connection */
    _Atomic bool closed;  /* libnats' closed callback ran */
    _Atomic int users;    /* hooks running with this pointer */
    uint64_t max_payload;

    pthread_t thread;
    bool thread_started;
    unsigned char *batch; /* the cluster thread's publish buffer */
    pthread_mutex_t lock; /* queue, peers' tables, node monitors, join */
    pthread_cond_t cond;
    struct tp__frame *qhead, *qtail;
    bool stopping;
    _Atomic bool joined; /* read by the delivery threads */

    /* Join: answers collected during the window. */
    bool name_taken;
    char taken_by[128];
    uint8_t id_taken[(TP_PID_NODE_MAX + 8) / 8];
    /* Ids other nodes know of (up, or down: a restarted node avoids its
     * old id, so pids of its previous incarnation stay dead). */
    uint8_t id_used[(TP_PID_NODE_MAX + 8) / 8];

    _Atomic(struct tp__cpeer *) peers[TP_PID_NODE_MAX + 1];
    struct tp__u64map node_watchers; /* local pid -> 1 (tp_monitor_node) */

    _Atomic uint64_t disconnects, reconnects, slow_consumer, bad_frames, drops;
    _Atomic uint64_t name_conflicts; /* global names our actors lost */
    _Atomic bool isolated;           /* test hook: tp__cluster_isolate() */

    /* Direct links (cluster/link.c); NULL when off. */
    struct tp__link *lk;
    _Atomic bool link_kick; /* the link thread wants held frames looked at */

    /* Global names (cluster/names.c): the bucket, opened on first use. */
    pthread_mutex_t names_lock; /* serialises opening and closing names */
    /* Set once under names_lock, cleared by stop after the hooks are gone;
     * read without the lock (atomic: delivery threads, the keeper). */
    struct tp__names *_Atomic names;
    bool names_failed;
    tp_pid keeper; /* monitors the owners of this node's names */
    /* cluster/tree.c: <node.0.0> (tp_cluster_service_pid); read by the
     * delivery threads (atomic: a test replaces it). */
    _Atomic tp_pid service;
};

/* What the runtime holds (rt->ext[TP__EXT_CLUSTER]), made on the first
 * tp_cluster_start() and freed with the runtime: the current node under a
 * read-write lock (hooks read it, start and stop write it). */
struct tp__cluster_slot {
    pthread_rwlock_t lock;
    struct tp__cluster *cl;
    struct tp__stop_hook stop_hook;
};

/* The cluster of rt, read-locked, or NULL (nothing locked). Pair with
 * tp__cluster_put(). */
struct tp__cluster *tp__cluster_get(struct tp_runtime *rt);
void tp__cluster_put(struct tp__cluster *cl);

/* Queues a frame for peer (takes ownership of f in every case): 0,
 * -ENOTCONN, -EAGAIN. */
int tp__cluster_queue(struct tp__cluster *cl, struct tp__cpeer *p,
                      struct tp__frame *f);
/* A frame with room for payload bytes after the header. */
struct tp__frame *tp__frame_new(size_t payload);
/* The peer called id, created (state unknown) when new; NULL on ENOMEM. */
struct tp__cpeer *tp__peer_get(struct tp__cluster *cl, uint32_t id);
/* Local form of a wire pid (this node's id becomes 0). */
tp_pid tp__cluster_local(const struct tp__cluster *cl, tp_pid pid);
/* Wire form of a pid (a local pid gets this node's id). */
tp_pid tp__cluster_global(const struct tp__cluster *cl, tp_pid pid);

/* remote.c: inbound frames (delivery threads) and node-down cleanup. */
void tp__remote_inbound(struct tp__cluster *cl, const struct tp__wire_hdr *h,
                        const unsigned char *payload);
/* Delivers noconnection for every link / monitor with peer p (lock not
 * held) and forgets them. */
void tp__remote_peer_down(struct tp__cluster *cl, struct tp__cpeer *p);
void tp__remote_peer_free(struct tp__cpeer *p);

/* tree.c: the node's service actor (answers TP_CLUSTER_TREE). */
int tp__service_start(struct tp__cluster *cl);
void tp__service_stop(struct tp__cluster *cl);

/* Test hook: while on, this node neither sends heartbeats nor reads any
 * cluster frame (its NATS connection stays up): the other nodes see it
 * down and it sees them down, as in a partition, but it can still reach
 * the JetStream bucket. Returns 0 or -ENOTCONN. */
int tp__cluster_isolate(tp_runtime *rt, bool on);

/* names.c: the keeper actor (start), the bucket and its thread (stop:
 * this node's names are released), releases for a node that went down. */
int tp__names_start(struct tp__cluster *cl);
void tp__names_stop(struct tp__cluster *cl);
/* A node went down: this node's own claims are read back at the next
 * node-up; a node that left (left = true) has its names released. */
void tp__names_node_down(struct tp__cluster *cl, uint32_t node, bool left);
/* A peer came up: checks this node's claims against the bucket if a node
 * went down since (conflicts after a partition, cluster/names.c). */
void tp__names_node_up(struct tp__cluster *cl);
/* How many global names this node's actors hold. */
uint32_t tp__names_count(struct tp__cluster *cl);
/* Opens the bucket at start if the server has JetStream (logged at info
 * if not; tp_register_global() then tries again and logs an error). */
void tp__names_open_quiet(struct tp__cluster *cl);

/* node.c: one inbound frame of a peer (a NATS delivery thread or the link
 * thread; n = its size); a peer going down (why: 1 silent, 2 left). */
void tp__node_frame(struct tp__cluster *cl, const struct tp__wire_hdr *h,
                    const unsigned char *pl, size_t n);
void tp__node_peer_down(struct tp__cluster *cl, struct tp__cpeer *p,
                        uint32_t why);
/* The peer p, down, proved alive under incarnation inc by its link's
 * preamble: up again, as by its HELLO (link thread). */
void tp__node_link_hello(struct tp__cluster *cl, struct tp__cpeer *p,
                         uint64_t inc);

/* ---------------------------------------------------------------------- */
/* Direct links (link.c)                                                  */

#define TP__LREQ_CONNECT 0x1 /* connect the out link of the new session */
#define TP__LREQ_CLOSE   0x2 /* close the out link (peer down) */

/* Opens the listener and starts the link thread (after the NATS
 * connection: the address comes from it). 0 also when links are off or
 * no listener could be opened (logged: NATS only). -ENOMEM. */
int tp__link_start(struct tp__cluster *cl, const char *address, bool nats_tls);
/* The link fields of tp_cluster_stats()' summary. */
void tp__link_summary(struct tp__cluster *cl, tp_cluster_summary *out);
/* Joins the link thread, closes every link. Idempotent. */
void tp__link_stop(struct tp__cluster *cl);
/* Fills the link fields of this node's HELLO. */
void tp__link_self(const struct tp__cluster *cl, struct tp__wire_node *w);
/* Peer p comes up with w (cl->lock held, before its state is UP): its
 * path for the session is decided here (pending when both have links). */
void tp__link_peer_prepare(struct tp__cluster *cl, struct tp__cpeer *p,
                           const struct tp__wire_node *w);
/* After p is up (no lock): the link thread connects. */
void tp__link_peer_up(struct tp__cluster *cl, struct tp__cpeer *p);
/* p went down: its out link is closed (by the link thread). */
void tp__link_peer_down(struct tp__cluster *cl, struct tp__cpeer *p);
/* tp_cluster_stop(): a BYE on every out link (the peers see this node
 * leave after its last frame); breaks from now on take no peer down. */
void tp__link_bye(struct tp__cluster *cl);
/* Wakes the link thread (a request, or joining finished). */
void tp__link_wake(struct tp__cluster *cl);
/* Cluster thread: writes len bytes (nframes whole frames, taken off
 * p->queued under the write lock once written or dropped) to p's link.
 * 0, -EAGAIN (write buffer over its bound: dropped), -EPIPE (no link:
 * dropped). */
int tp__link_write(struct tp__cluster *cl, struct tp__cpeer *p, const void *buf,
                   size_t len, uint32_t nframes);
/* A sender's thread (tp__cluster_queue): f written to p's link at once,
 * skipping the cluster thread, when its path is TCP, nothing of p is
 * queued or waiting to be written, and p's previous send was not within
 * a few microseconds (a stream is left to the cluster thread's batches).
 * 0 (f freed, counted), or -EAGAIN: queue it as usual. Never blocks
 * (the write lock is only tried, the socket is non-blocking). */
int tp__link_direct(struct tp__cluster *cl, struct tp__cpeer *p,
                    struct tp__frame *f);
/* Peer record init (tp__peer_get) and fini (cluster_free). */
void tp__link_peer_init(struct tp__cpeer *p);
void tp__link_peer_fini(struct tp__cpeer *p);
/* Tests: the port advertised instead of the listener's (0 = the real
 * one), and breaking p's out link as a network error would. */
extern _Atomic uint16_t tp__link_test_port;
extern _Atomic bool tp__link_test_hold; /* connects wait while true */
int tp__link_test_kill(struct tp__cluster *cl, uint32_t peer);

#endif /* TP_CLUSTER_CLUSTER_INT_H */
