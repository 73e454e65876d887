/*
 * net/tls_int.h - the TLS layer's hooks into the connection code.
 *
 * Everything taking a connection runs on its loop thread, except
 * tp__tls_client_new() / tp__tls_discard() (the connecting actor, before
 * the connection reaches its loop) and the listener calls (any thread).
 */
#ifndef TP_NET_TLS_INT_H
#define TP_NET_TLS_INT_H

#include "net_int.h"

#include <troupe/tls.h>

struct tp__tls;

/* Listener: takes a reference to ctx (-EINVAL if not a server context). */
int tp__tls_listener_init(struct tp_listener *l, struct tp_tls_ctx *ctx);
void tp__tls_listener_fini(struct tp_listener *l);

/* Attaches a server TLS state from l's current context to c (-ENOMEM). */
int tp__tls_server_new(struct tp_listener *l, struct tp__conn *c);
/* A client connection's state; name is verified (an IP address when
 * is_ip) unless the context does not verify. */
int tp__tls_client_new(struct tp_tls_ctx *ctx, const char *name, bool is_ip,
                       struct tp__tls **out);
/* Frees a state that never reached a connection (NULL is fine). */
void tp__tls_discard(struct tp__tls *t);

/* The connection is open: arm the handshake timer, send a client hello. */
void tp__tls_opened(struct tp__conn *c);
/* True while the handshake runs. */
bool tp__tls_handshaking(struct tp__conn *c);
/* Ciphertext read from the socket. */
void tp__tls_read(struct tp__conn *c, const char *p, size_t n);
/* Reading is wanted: delivers plaintext already decrypted. */
void tp__tls_want(struct tp__conn *c);
/* Delivers buffered plaintext while the connection wants it. */
void tp__tls_pump(struct tp__conn *c);
/* A plaintext write (its bytes counted in wq): encrypted, or held until
 * the handshake is done. */
void tp__tls_write(struct tp__conn *c, struct tp__wreq *w);
/* Sends close_notify (after a finished handshake). */
void tp__tls_close_notify(struct tp__conn *c);
/* The connection's timer fired while OPEN: true if it was the handshake's
 * (handled here). */
bool tp__tls_timer(struct tp__conn *c);
/* An outbound connection's CONNECTED was sent (or its failure). */
void tp__tls_reported(struct tp__conn *c);
/* The connection's handle closed: frees the state. */
void tp__tls_free(struct tp__conn *c);

#endif /* TP_NET_TLS_INT_H */
