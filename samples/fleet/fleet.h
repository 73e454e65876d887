/*
 * samples/fleet/fleet.h - troupe-fleet-node: one node of a fleet that holds
 * many idle, supervised connections, each reachable by a name (see
 * README.md and docs/FLEET.md).
 *
 * Pieces: the connection actor (fleet_conn.c) speaks the line protocol of
 * fleet_proto.h; names (fleet_names.c) are where a connection's name is
 * registered and a name is resolved (node-local today; the cluster's
 * directory plugs in there); main.c holds the command line, the listener,
 * the STAT reporter and the two-phase stop.
 */
#ifndef SAMPLE_FLEET_H
#define SAMPLE_FLEET_H

#include "../common/sample.h"
#include "fleet_proto.h"

#include <stdatomic.h>

#define FLEET_NODE_MAX 31 /* longest node name */

/* Message a connection actor gets for its client: struct fleet_deliver. */
#define FLEET_MSG_DELIVER  0x464c0001u /* "FL" 1 */
/* Any connection may SEND to any name: a connection's mailbox takes at
 * most this many queued deliveries, then the sender hears "ACK <id> busy"
 * (nothing queued without bound behind a client that stopped reading). */
#define FLEET_CONN_MAILBOX 64

struct fleet_deliver {
    uint64_t id;   /* the sender's message id */
    uint64_t t_ns; /* the sender's CLOCK_MONOTONIC when it sent it */
};

/* Clustered nodes (--cluster): every node runs a directory actor,
 * registered on it as "fleet.dir" (fleet_names.c). */
#define FLEET_DIR_NAME "fleet.dir"
#define FLEET_MSG_FIND 0x464c0002u /* dir -> peer dirs: struct fleet_find */
#define FLEET_MSG_PEER 0x464c0003u /* dir -> peer dir: "I am here" (pid) */
#define FLEET_MSG_LOOKUP                                                       \
    0x464c0004u /* conn -> its dir: a name not held here                       \
                 */

struct fleet_find {
    struct fleet_deliver d;
    char name[FLEET_NAME_MAX + 1];
};

/* One node: what every connection actor of it shares (read-only after
 * start, but for the relaxed counters). */
struct fleet_node {
    char name[FLEET_NODE_MAX + 1];
    tp_runtime *rt;
    bool register_names;        /* false: --no-register (measurements) */
    _Atomic uint64_t named;     /* HELLOs that took a name */
    _Atomic uint64_t sends;     /* SENDs handled */
    _Atomic uint64_t delivered; /* MSG lines written to clients */
    _Atomic uint64_t noname;    /* SENDs to a name nobody holds */
    bool cluster;               /* joined a cluster (--cluster) */
    tp_pid dir;                 /* its directory actor (cluster only) */
    _Atomic uint64_t forwarded; /* SENDs asked of the other nodes */
    _Atomic uint64_t peers_up;  /* other nodes seen up now */
    _Atomic uint64_t noconn;    /* monitors of other nodes' directories
                                   that fired noconnection */
};

/** The directory actor (clustered nodes; its init gets the node). */
extern const tp_behaviour fleet_dir_behaviour;

/** The connection actor (its init gets the struct fleet_node). */
extern const tp_behaviour fleet_conn_behaviour;

/**
 * Registers `name` for the calling connection actor. Returns 0, -EEXIST
 * (taken), -EINVAL, -ENOMEM.
 */
int fleet_name_register(tp_ctx *ctx, struct fleet_node *node, const char *name);

/**
 * Sends the actor holding `name` a FLEET_MSG_DELIVER. Returns 0, -ENOENT (no
 * one holds the name), -ESRCH (its holder just died), or another send
 * error. In a cluster a name not held on this node is looked for on the
 * others (its directory asks theirs): 1, "forwarded" (delivered at most
 * once, by the node that holds it).
 */
int fleet_name_send(tp_ctx *ctx, struct fleet_node *node, const char *name,
                    const struct fleet_deliver *d);

#endif /* SAMPLE_FLEET_H */
