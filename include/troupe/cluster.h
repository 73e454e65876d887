/*
 * troupe/cluster.h - Troupe nodes in a cluster over NATS.
 *
 * A runtime joins a cluster with tp_cluster_start(): it connects to NATS,
 * finds the other nodes of the same cluster name through NATS (no static
 * peer list) and from then on a remote pid (tp_pid_is_remote()) is used
 * like a local one: tp_send(), tp_send_blob(), tp_send_packed(),
 * tp_request() / tp_gs_call(), tp_runtime_call(), tp_link(), tp_monitor(),
 * tp_exit_pid() work the same. Guarantees (docs/CLUSTER.md): per sender and
 * receiver, messages arrive in the order sent; delivery is at most once
 * (never duplicated, never reordered, possibly lost when a node or NATS
 * goes away); a node that stops answering heartbeats for down_after_ms is
 * down: links to its actors deliver an exit with reason noconnection, and
 * monitors a DOWN noconnection.
 *
 * Errors of sends to a remote pid, in addition to the local ones:
 * -ENOTCONN (its node is not up, or NATS is disconnected: the message is
 * counted as dropped), -EAGAIN (the node's outbound queue is full: counted
 * as dropped), -EMSGSIZE (the frame would exceed NATS' max_payload).
 * A request (tp_request) to an actor on a node that is not up fails with
 * -ENOTCONN; a request to a dead remote actor is answered TP_MSG_NOPROC.
 */
#ifndef TROUPE_CLUSTER_H
#define TROUPE_CLUSTER_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A node came up: payload tp_node_event (see tp_monitor_node()). */
#define TP_MSG_NODE_UP       0xffff0020u
/** A node went down (or left): payload tp_node_event. */
#define TP_MSG_NODE_DOWN     0xffff0021u
/** This actor lost a cluster-wide name to a conflict after a partition:
 *  payload tp_name_conflict (see tp_register_global()). */
#define TP_MSG_NAME_CONFLICT 0xffff0022u

#define TP_NODE_NAME_MAX 63 /**< longest node name */

/** Payload of TP_MSG_NODE_UP / TP_MSG_NODE_DOWN. */
typedef struct tp_node_event {
    uint32_t node;                   /**< the node's id (pid node field) */
    uint32_t reason;                 /**< 0 up, 1 heartbeats missed, 2 left */
    char name[TP_NODE_NAME_MAX + 1]; /**< its name */
} tp_node_event;

/** Options for tp_cluster_start(); fill with tp_cluster_options_init(). */
typedef struct tp_cluster_options {
    /** This node's name, unique in the cluster: 1..63 of [A-Za-z0-9_@-].
     *  Required. */
    const char *node_name;
    /** Cluster name (NATS subject prefix, same charset). Default
     *  "troupe". Nodes of different clusters on one NATS never meet. */
    const char *cluster;
    /** NATS server URLs, comma-separated (nats://host:port; credentials
     *  as nats://user:pass\@host:port). Default nats://127.0.0.1:4222. */
    const char *urls;
    /** Node id (1..TP_PID_NODE_MAX) that remote pids of this node carry;
     *  0 (default) = derived from the name's hash, moved to the next free
     *  id when a live node has it. An explicit id that is taken is
     *  refused (-EADDRINUSE). */
    uint32_t node_id;
    /** Heartbeat period, ms. Default 500. */
    unsigned heartbeat_ms;
    /** A node silent for this long is down, ms. Default 2000. */
    unsigned down_after_ms;
    /** Discovery window at start (answers to the join probe), ms.
     *  Default 2 * heartbeat_ms, at least 300. */
    unsigned join_ms;
    /** Frames queued per peer node before sends fail with -EAGAIN.
     *  Default 65536. */
    uint32_t max_queue;
    /** First reconnect delay after NATS is lost, ms (doubles up to
     *  reconnect_max_ms, plus jitter; reconnects never give up).
     *  Default 100. */
    unsigned reconnect_ms;
    /** Largest reconnect delay, ms. Default 2000. */
    unsigned reconnect_max_ms;
    /** NATS authentication: user and password, or a token (NULL = none,
     *  or given in the URL). Used while tp_cluster_start() runs (libnats
     *  keeps its own copy for reconnects). */
    const char *user;
    const char *password; /**< with user (see user) */
    const char *token;    /**< instead of user and password (see user) */
    /** TLS to NATS: a CA file (PEM) to verify the server with turns TLS
     *  on; a client certificate chain and key (PEM) for servers that
     *  verify clients. NULL = plain TCP. */
    const char *tls_ca_file;
    const char *tls_cert_file; /**< client chain (see tls_ca_file) */
    const char *tls_key_file;  /**< its key (see tls_ca_file) */
    /** Direct links (docs/CLUSTER.md "Direct links"): data frames to a
     *  peer go over a TCP connection of their own instead of through the
     *  NATS server, which stays the control plane and the fallback.
     *  Default true; the environment variable TROUPE_CLUSTER_LINKS=0
     *  turns them off whatever this says. Links are plain TCP (a token
     *  published over NATS admits a peer; nothing is encrypted): with
     *  tls_ca_file set (NATS over TLS) they stay off unless
     *  TROUPE_CLUSTER_LINKS=1. */
    bool links;
    /** IPv4 address other nodes reach this node's link listener at.
     *  NULL (default) = the address the NATS server sees this client at
     *  (else the local address of the NATS connection). */
    const char *link_address;
    /** How long frames to a peer that just came up are held while its
     *  link connects; past it they go through NATS for that peer's whole
     *  up session, ms. Default 1000. */
    unsigned link_connect_ms;
} tp_cluster_options;

/** Fills opts with the defaults. */
TP_API void tp_cluster_options_init(tp_cluster_options *opts);

/**
 * Joins rt to a cluster: connects to NATS (waits up to a few seconds for
 * it), probes for nodes of the same cluster for join_ms, then announces
 * itself. Blocks the calling thread for about join_ms; call it from a
 * thread that is not a scheduler, after tp_runtime_start(). One cluster per
 * runtime. Strings in opts are copied. Returns 0, -EINVAL (bad option, not
 * started, called on a scheduler), -EALREADY (already in a cluster),
 * -EADDRINUSE (the name, or the explicit node id, is taken by a live node:
 * logged), -ECONNREFUSED (no NATS server answered, or it refused the
 * credentials or the TLS handshake: logged), -ENOMEM.
 * Thread-safe.
 */
TP_API int tp_cluster_start(tp_runtime *rt, const tp_cluster_options *opts);

/**
 * Leaves the cluster: tells the other nodes (they see this node down,
 * reason "left"), delivers noconnection to local links and monitors of
 * remote actors, closes the NATS connection. Also run by tp_runtime_stop().
 * Idempotent: returns 0, or -ENOTCONN when rt is in no cluster. Call from
 * a thread that is not a scheduler. Thread-safe.
 */
TP_API int tp_cluster_stop(tp_runtime *rt);

/** This node's id in its cluster, or 0 when not in one. Thread-safe. */
TP_API uint32_t tp_cluster_node_id(tp_runtime *rt);

/**
 * The id of the live node called name (this node included), or 0.
 * Thread-safe.
 */
TP_API uint32_t tp_cluster_node_lookup(tp_runtime *rt, const char *name);

/**
 * Copies the name of node id into buf. Returns 0, -ENOENT (unknown id) or
 * -ENOTCONN (not in a cluster). Thread-safe.
 */
TP_API int tp_cluster_node_name(tp_runtime *rt, uint32_t node, char *buf,
                                size_t size);

/**
 * The cluster-wide form of pid (a local pid gets this node's id, so it can
 * travel inside a payload to another node); remote pids are returned
 * unchanged. tp_pid_is_remote() of the result is true when rt is in a
 * cluster. Every Troupe call accepts either form. Thread-safe.
 */
TP_API tp_pid tp_cluster_pid(tp_runtime *rt, tp_pid pid);

/**
 * Subscribes (on = true) or unsubscribes the running actor to node events:
 * TP_MSG_NODE_UP / TP_MSG_NODE_DOWN (payload tp_node_event) for every
 * other node of the cluster. Ends by itself when the actor dies. Returns
 * 0, -EINVAL (no running actor), -ENOTCONN (not in a cluster), -ENOMEM.
 * Thread: an actor callback.
 */
TP_API int tp_monitor_node(tp_ctx *ctx, bool on);

/* ---------------------------------------------------------------------- */
/* Cluster-wide names (JetStream key-value: nats-server -js)               */

/**
 * Registers a local actor under a cluster-wide name: one owner per name in
 * the cluster (a compare-and-set on a JetStream key-value bucket). The name
 * is released when the actor dies, when it is unregistered, when this node
 * leaves, and counts as free as soon as the owner's node is down (after a
 * partition pid may therefore lose the name to a conflict: it then gets
 * TP_MSG_NAME_CONFLICT, see tp_name_conflict; a name that was only
 * released while its node was cut off is taken back for pid). name:
 * 1..TP_NAME_MAX of [A-Za-z0-9_=/-]. Blocks for a few NATS round trips
 * (at most about 5 s): call it from a thread that is not a scheduler, or
 * accept that stall in an actor. Returns 0 (also if pid already owns it),
 * -EEXIST (owned by a live actor), -EINVAL (bad name, a remote pid),
 * -ESRCH (pid not alive), -ENOTCONN (not in a cluster, NATS away),
 * -ETIMEDOUT, -ENOTSUP (no JetStream on the NATS server: logged).
 * Thread-safe.
 */
TP_API int tp_register_global(tp_runtime *rt, const char *name, tp_pid pid);

/**
 * Releases name if pid owns it. Returns 0, -ENOENT (not owned by pid),
 * -EINVAL, -ENOTCONN, -ENOTSUP. Blocks like tp_register_global().
 */
TP_API int tp_unregister_global(tp_runtime *rt, const char *name, tp_pid pid);

/**
 * The owner of name in its cluster form (tp_cluster_pid()), or TP_PID_NONE
 * (no owner, its node is down, not in a cluster). One NATS round trip.
 * Thread-safe.
 */
TP_API tp_pid tp_whereis_global(tp_runtime *rt, const char *name);

/**
 * tp_whereis_global() without a round trip: answers from this node's copy
 * of the names, which a JetStream watcher keeps current (a change made on
 * another node is seen here within about a round trip). Never blocks
 * (a read lock): usable from actors. TP_PID_NONE also when the owner's
 * node is down or the server has no JetStream. Thread-safe.
 */
TP_API tp_pid tp_whereis_global_cached(tp_runtime *rt, const char *name);

/**
 * Payload of TP_MSG_NAME_CONFLICT, and one entry of
 * tp_cluster_name_conflicts().
 *
 * How a conflict arises: a name's owner counts as gone as soon as its node
 * is down, so while a node is cut off another node may register a name
 * that an actor on the cut-off node still holds. When the nodes meet again
 * two live actors believe they own the name. The rule, which every node
 * computes the same way because it reads the same bucket: **the owner
 * recorded in the key-value bucket keeps the name** (that is the later
 * registration, made by the part of the cluster that could reach NATS,
 * and the one its nodes have been sending to); every other claimant loses
 * it. The losing node removes the registration from its own tables (the
 * bucket never held it twice), sends the loser TP_MSG_NAME_CONFLICT, logs
 * a warning, and counts it (tp_cluster_summary.name_conflicts,
 * troupe_cluster_name_conflicts_total): each conflict is counted once in
 * the cluster, on the loser's node. The loser is not killed: it decides
 * (stop, register another name, or tp_register_global() again once the
 * winner is gone). A name that was only released meanwhile (nobody took
 * it) is taken back for its owner without a conflict.
 */
typedef struct tp_name_conflict {
    char name[TP_NAME_MAX + 1]; /**< the name */
    tp_pid winner;              /**< its owner now (cluster form) */
    tp_pid loser;               /**< the actor that lost it (cluster form) */
    uint64_t at_ns;             /**< when it was resolved (tp_now_ns()) */
} tp_name_conflict;

/** One cluster-wide name registered by this node (tp_cluster_names()). */
typedef struct tp_global_name {
    char name[TP_NAME_MAX + 1]; /**< the name */
    tp_pid pid;                 /**< its owner, a local actor (cluster form) */
} tp_global_name;

/**
 * The cluster-wide names this node's actors hold (as this node knows
 * them: registered here and not released or lost since): fills
 * out[0..n) and returns how many there are (may exceed n), or -ENOTCONN
 * (in no cluster). A racy snapshot, no NATS round trip. Thread-safe.
 */
TP_API int tp_cluster_names(tp_runtime *rt, tp_global_name *out, unsigned n);

/**
 * The last name conflicts this node resolved against one of its actors
 * (at most 16 are kept), newest first: fills out[0..n) and returns how
 * many are kept, or -ENOTCONN. The total is
 * tp_cluster_summary.name_conflicts. Thread-safe.
 */
TP_API int tp_cluster_name_conflicts(tp_runtime *rt, tp_name_conflict *out,
                                     unsigned n);

/* ---------------------------------------------------------------------- */
/* A node's own service actor                                             */

/**
 * The pid that addresses node's service actor (a system actor every node
 * runs while in a cluster): "<node.0.0>", no real actor's pid (slot 0,
 * generation 0). Send it requests with tp_request() like to any actor;
 * TP_CLUSTER_TREE is the one it answers today. Thread-safe.
 */
static inline tp_pid
tp_cluster_service_pid(uint32_t node)
{
    return tp_pid_with_node(0, node);
}

/**
 * Request to a node's service actor (tp_cluster_service_pid()): its
 * supervision tree, walked there (the root supervisor, then each child
 * supervisor, 2 s per supervisor; at most 200 children listed per
 * supervisor, 4,000 nodes, 32 levels). No payload. The TP_MSG_REPLY is
 * MessagePack, a map:
 *   "node": the node's name,
 *   "nodes": an array of entries, the root first, then each supervisor's
 *   children as one contiguous block, each entry an array
 *   [id, pid (cluster form, uint), behaviour, type (0 worker, 1
 *   supervisor), restart (tp_restart), restarts, running, restarting,
 *   answered (false: that supervisor did not answer), first child index,
 *   children listed, children in all];
 * or a map with "error" (text) when the walk could not start. The
 * console's `tree @NODE` renders it (console/cmd_cluster.c).
 */
#define TP_CLUSTER_TREE 0xfffe0b20u

/** Counters of one peer node (see tp_cluster_stats()). */
typedef struct tp_cluster_peer_stats {
    uint32_t node;                   /**< id */
    char name[TP_NODE_NAME_MAX + 1]; /**< name */
    bool up;                         /**< currently up */
    uint32_t queued;                 /**< frames in its outbound queue */
    uint64_t msgs_out;               /**< frames published to it */
    uint64_t bytes_out;              /**< bytes published to it */
    uint64_t msgs_in;                /**< frames received from it */
    uint64_t bytes_in;               /**< bytes received from it */
    uint64_t drops_out;              /**< sends to it refused or dropped */
    uint64_t rtt_ns;                 /**< last heartbeat round trip */
    uint64_t hb_misses;              /**< heartbeat periods missed */
    uint64_t downs;                  /**< times seen going down */
    /** Path of its frames this up session: TP_CLUSTER_LINK_NATS,
     *  TP_CLUSTER_LINK_TCP, TP_CLUSTER_LINK_CONNECTING. */
    uint32_t link;
    uint64_t link_bytes_out; /**< bytes sent to it over direct links */
    uint64_t link_bytes_in;  /**< bytes received from it over them */
    uint64_t link_fallbacks; /**< up sessions its link failed to connect */
    uint64_t link_breaks;    /**< links that broke (the peer went down) */
} tp_cluster_peer_stats;

#define TP_CLUSTER_LINK_NATS       0u /**< frames through the NATS server */
#define TP_CLUSTER_LINK_TCP        1u /**< frames over a direct link */
#define TP_CLUSTER_LINK_CONNECTING 2u /**< held while the link connects */

/** Node-wide cluster counters. */
typedef struct tp_cluster_summary {
    uint32_t node;                   /**< this node's id */
    char name[TP_NODE_NAME_MAX + 1]; /**< this node's name */
    bool connected;                  /**< to NATS, now */
    uint32_t peers_up;               /**< peers up now */
    uint64_t disconnects;            /**< NATS connection losses */
    uint64_t reconnects;             /**< NATS reconnections */
    uint64_t slow_consumer;          /**< NATS slow-consumer events */
    uint64_t bad_frames;             /**< frames dropped as malformed */
    uint64_t drops;                  /**< sends dropped, all peers */
    uint64_t max_payload;            /**< NATS max_payload, bytes */
    uint32_t link_port;      /**< this node's link listener port, 0 = none */
    uint64_t link_refused;   /**< link connections refused (bad preamble) */
    uint64_t name_conflicts; /**< global names this node's actors lost */
    uint32_t global_names;   /**< global names this node's actors hold */
} tp_cluster_summary;

/**
 * Fills *out (may be NULL) and peers[0..n) with the known peer nodes;
 * returns how many peers are known (may exceed n), or -ENOTCONN when rt is
 * in no cluster. A racy snapshot. Thread-safe.
 */
TP_API int tp_cluster_stats(tp_runtime *rt, tp_cluster_summary *out,
                            tp_cluster_peer_stats *peers, unsigned n);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_CLUSTER_H */
