/*
 * troupe/tls.h - TLS as a connection mode (OpenSSL 3).
 *
 * A TLS context (tp_tls_ctx: one OpenSSL SSL_CTX) is made once from
 * certificate files and options, then given to any number of listeners
 * (tp_listen_opts.tls) or outbound connects (tp_connect_opts.tls). Each
 * connection runs its handshake and records on its own loop through
 * memory BIOs: no extra thread, no blocking call. The connection actor is
 * unchanged: it receives TP_MSG_TCP_DATA with the plaintext and sends with
 * tp_tcp_send(); flow control, write limits, idle timeouts and the drain
 * count plaintext bytes and work as on plain TCP.
 *
 * Handshake and record failures close the connection with reason
 * TP_NET_CLOSE_ERROR and one of these errors in tp_tcp_closed.error (and in
 * tp_tcp_connected.error for an outbound connection, whose CONNECTED
 * message is sent only once its handshake is done):
 *   -ETIMEDOUT     no finished handshake within handshake_timeout_ms
 *   -EKEYREJECTED  the peer's certificate failed verification (bad chain,
 *                  wrong name, expired, missing when required)
 *   -EPROTO        any other handshake failure (no shared version, cipher
 *                  or ALPN protocol; an alert from the peer; not TLS)
 *   -EBADMSG       a record failed after the handshake (bad MAC, garbage)
 * The OpenSSL reason text is logged (TP_LOG_INFO) with the connection.
 */
#ifndef TROUPE_TLS_H
#define TROUPE_TLS_H

#include <troupe/net.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A TLS configuration: one shared OpenSSL SSL_CTX (opaque). */
typedef struct tp_tls_ctx tp_tls_ctx;

#define TP_TLS_1_2 0x0303 /**< TLS 1.2 (the lowest accepted) */
#define TP_TLS_1_3 0x0304 /**< TLS 1.3 */

/** Options of tp_tls_ctx_new(); fill with tp_tls_opts_init(). Files are
 *  PEM; strings are read during the call only. */
typedef struct tp_tls_opts {
    /** true: a server context (listeners), false: a client (connects). */
    bool server;
    /** Certificate chain (leaf first). Required for a server; a client
     *  sends it when the server asks for one. */
    const char *cert_file;
    /** Private key of cert_file's leaf (required with cert_file). */
    const char *key_file;
    /** CA certificates the peer's chain must lead to. A client without
     *  one uses the system's default store. */
    const char *ca_file;
    /** Server: ask every client for a certificate and close those that
     *  send none or a bad one (requires ca_file). Client: verify the
     *  server's chain and name (default true; false = accept anything,
     *  for tests only). Default: false for a server, true for a client. */
    bool verify_peer;
    /** ALPN protocols, comma-separated ("h2,http/1.1"); NULL = none. A
     *  server picks the first of its own the client offers and refuses a
     *  client that offers ALPN but none of them. */
    const char *alpn;
    /** Lowest version: TP_TLS_1_2 (default) or TP_TLS_1_3. */
    int min_version;
    /** TLS 1.2 cipher list (OpenSSL syntax); NULL = ECDHE with AES-GCM or
     *  ChaCha20-Poly1305 only (forward secret AEADs). */
    const char *ciphers;
    /** Key exchange groups; NULL = "X25519:P-256:P-384". */
    const char *groups;
    /** A handshake not finished this long after the TCP connection opened
     *  closes it with -ETIMEDOUT (default 10000 ms; never 0). */
    uint32_t handshake_timeout_ms;
    /** Free OpenSSL's record buffers (about 34 KB) whenever a connection
     *  has no record in flight (SSL_MODE_RELEASE_BUFFERS; default true).
     *  Costs a malloc/free pair per burst of records. */
    bool release_buffers;
} tp_tls_opts;

/** Fills o with the defaults above (a client context). */
TP_API void tp_tls_opts_init(tp_tls_opts *o);

/**
 * Builds a context: loads and checks the certificate and key (they must
 * match), the CA file, and applies the options. On success *out owns one
 * reference (tp_tls_ctx_free()). Listeners and connections that use it
 * take their own, so the caller may free it right after tp_tcp_listen() or
 * tp_tcp_connect(). Errors: -EINVAL (bad option, unreadable or mismatched
 * file: the OpenSSL text is logged), -ENOMEM. Thread-safe; it reads files,
 * so call it at start-up, not from a busy actor.
 */
TP_API int tp_tls_ctx_new(const tp_tls_opts *o, tp_tls_ctx **out);

/** Drops the caller's reference (NULL is fine). Thread-safe. */
TP_API void tp_tls_ctx_free(tp_tls_ctx *ctx);

/** What a TLS connection negotiated (see tp_tls_conn_get_info()). */
typedef struct tp_tls_info {
    bool handshake_done; /**< false while the handshake runs */
    char version[16];    /**< "TLSv1.3", "" before the handshake */
    char cipher[64];     /**< "TLS_AES_128_GCM_SHA256" */
    char alpn[32];       /**< selected ALPN protocol, "" if none */
    bool resumed;        /**< the session was resumed */
    bool peer_cert;      /**< the peer sent a certificate (verified) */
} tp_tls_info;

/**
 * Fills *out for a TLS connection. Returns 0, -ENOTCONN (stale handle,
 * closed) or -EINVAL (not a TLS connection). A racy snapshot; call it from
 * the connection's owner (its loop may be writing the fields; they are
 * written once, when the handshake finishes). Thread: any actor.
 */
TP_API int tp_tls_conn_get_info(tp_runtime *rt, tp_conn conn, tp_tls_info *out);

/**
 * Replaces the context of listener l (a TLS listener): handshakes that
 * start afterwards use ctx (say, a renewed certificate); connections
 * already open keep theirs. The listener takes its own reference. Returns
 * 0 or -EINVAL (l is not a TLS listener, ctx NULL or a client context).
 * Thread-safe.
 */
TP_API int tp_tls_listener_reload(tp_listener *l, tp_tls_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_TLS_H */
