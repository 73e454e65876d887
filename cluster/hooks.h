/*
 * cluster/hooks.h - what the core calls for a remote pid (one test at the
 * top of its send and signal paths, see actors/actor.c). Each hook takes
 * the place of the local path; a message passed in is owned by the hook in
 * every case. Without a cluster (or without libnats) they fail with
 * -ENOTCONN (signals to a remote actor that cannot be reached are answered
 * locally: a link or monitor gets noconnection at once).
 */
#ifndef TP_CLUSTER_HOOKS_H
#define TP_CLUSTER_HOOKS_H

#include "actors/actor_int.h"

int tp__cluster_send(tp_ctx *ctx, tp_pid to, uint32_t type, const void *data,
                     size_t len);
int tp__cluster_send_blob(tp_ctx *ctx, tp_pid to, uint32_t type, tp_blob *b);
/* tp_send_named() of "name@node" when no local actor has that name. */
int tp__cluster_send_named(tp_ctx *ctx, const char *name, uint32_t type,
                           const void *data, size_t len);
int tp__cluster_deliver(tp_ctx *ctx, tp_pid to, struct tp__msg *m);
int tp__cluster_signal(struct tp__actors *A, tp_pid to, struct tp__msg *m);

#endif /* TP_CLUSTER_HOOKS_H */
