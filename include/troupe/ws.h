/*
 * troupe/ws.h - WebSocket (RFC 6455) as a connection mode: listeners
 * (server side) and tp_tcp_connect() (client side, tp_connect_opts.ws).
 *
 * A listener with tp_listen_opts.ws set (plain TCP, or TLS for wss) runs
 * the HTTP/1.1 upgrade itself, then turns frames into whole messages. The
 * connection actor gets, after TP_MSG_TCP_OPENED:
 *   TP_MSG_WS_UPGRADED  tp_ws_upgraded: the upgrade succeeded (path, the
 *                       subprotocol chosen); messages sent before it wait
 *                       for the upgrade's answer (dropped if it fails)
 *   TP_MSG_WS_TEXT      one complete text message (valid UTF-8), the bytes
 *                       as the payload (msg->data, msg->len)
 *   TP_MSG_WS_BINARY    one complete binary message
 *   TP_MSG_WS_CLOSING   tp_ws_closing: the peer sent a Close frame (the
 *                       runtime answers it and closes the connection)
 *   TP_MSG_TCP_CLOSED   as on TCP, last
 * instead of TP_MSG_TCP_DATA. All carry the connection in msg->ref, like
 * the other net messages (tp_msg_conn() works on them).
 *
 * The runtime answers pings with pongs, reassembles fragmented messages up
 * to max_message bytes, checks masking, reserved bits, opcodes, control
 * frame rules and UTF-8 (incrementally: a bad byte fails at once), and
 * closes a connection that breaks them with the Close code RFC 6455 asks
 * for: the Close frame goes out, then what the peer still sends is read
 * and dropped until it has been quiet for 100 ms (at most
 * close_timeout_ms), and only then the socket is closed, so the peer reads
 * the code instead of a reset (the same lingering follows the answer to a
 * Close the peer sent). No data frame follows a Close of ours (an actor's
 * sends after it are dropped). The TP_MSG_TCP_CLOSED that follows
 * has reason TP_NET_CLOSE_ERROR and error:
 *   -EPROTO    1002 protocol error (bad frame, unmasked, bad opcode...)
 *   -EILSEQ    1007 invalid UTF-8 in a text message or close reason
 *   -EMSGSIZE  1009 message over max_message
 *   -ETIMEDOUT no valid upgrade request within upgrade_timeout_ms
 *   -EBADMSG   the upgrade request was not a valid WebSocket upgrade (the
 *              client got 400, or 426 for a wrong version)
 * A close the peer starts ends with TP_NET_CLOSE_PEER; one the actor
 * starts (tp_ws_close()) with TP_NET_CLOSE_LOCAL once the peer answered
 * (or close_timeout_ms passed).
 *
 * An outbound connection with tp_connect_opts.ws is a client: after the
 * connect (and TLS) the runtime sends the upgrade request; its owner gets
 * TP_MSG_TCP_CONNECTED, then TP_MSG_WS_UPGRADED (or TP_MSG_TCP_CLOSED
 * with -EBADMSG if the answer is not a valid 101), then the same messages
 * as above. Its frames are masked, the server's must not be.
 *
 * Flow control counts messages: reading pauses while the actor's mailbox
 * is over mailbox_high (tp_conn_opts), as for TCP; read_high does not
 * apply (a message is at most max_message bytes). WebSocket listeners use
 * TP_READ_ACTIVE only.
 */
#ifndef TROUPE_WS_H
#define TROUPE_WS_H

#include <troupe/net.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TP_MSG_WS_UPGRADED 0xffff0109u
#define TP_MSG_WS_TEXT     0xffff010au
#define TP_MSG_WS_BINARY   0xffff010bu
#define TP_MSG_WS_CLOSING  0xffff010cu

/** Close status codes (RFC 6455 section 7.4.1). */
#define TP_WS_NORMAL       1000
#define TP_WS_GOING_AWAY   1001
#define TP_WS_PROTOCOL     1002
#define TP_WS_UNSUPPORTED  1003
#define TP_WS_INVALID_DATA 1007
#define TP_WS_POLICY       1008
#define TP_WS_TOO_BIG      1009
#define TP_WS_INTERNAL     1011

/** Options of a WebSocket listener; fill with tp_ws_opts_init(). Copied
 *  by tp_tcp_listen() (strings too). */
typedef struct tp_ws_opts {
    /** Largest message, fragments reassembled (default 1 MiB, at most
     *  256 MiB); a larger one closes with 1009. */
    uint32_t max_message;
    /** The upgrade request must be complete this long after the TCP (or
     *  TLS) connection opened (default 10000 ms). */
    uint32_t upgrade_timeout_ms;
    /** After tp_ws_close(), wait this long for the peer's Close frame
     *  before closing the connection anyway (default 2000 ms). */
    uint32_t close_timeout_ms;
    /** Subprotocols, comma-separated, in our order of preference; the
     *  first one the client also offers is chosen (NULL: none, the
     *  header is ignored). */
    const char *protocols;
    /** Client (tp_connect_opts.ws): the request target (default "/"). */
    const char *path;
    /** Client: the Host header (default: the connect's server_name, else
     *  its address). */
    const char *host;
} tp_ws_opts;

/** Fills o with the defaults above. */
TP_API void tp_ws_opts_init(tp_ws_opts *o);

/** Payload of TP_MSG_WS_UPGRADED. */
typedef struct tp_ws_upgraded {
    tp_conn conn;      /**< the connection */
    char path[256];    /**< request target ("/chat?room=1"), truncated */
    char protocol[64]; /**< subprotocol chosen, "" if none */
} tp_ws_upgraded;

/** Payload of TP_MSG_WS_CLOSING. */
typedef struct tp_ws_closing {
    tp_conn conn;     /**< the connection */
    uint16_t code;    /**< the peer's status code, 1005 if it sent none */
    uint16_t len;     /**< bytes of reason */
    char reason[124]; /**< UTF-8, NUL-terminated */
} tp_ws_closing;

/**
 * Sends data[0..len) as one text message (the caller promises UTF-8: it is
 * not checked) or binary message. Same queueing, write marks, limits and
 * errors as tp_tcp_send() (the frame header counts too); -EINVAL for NULL
 * data with len != 0. Sent before the upgrade finished (say, from
 * TP_MSG_TCP_OPENED), the message waits for the 101 answer. Do not send
 * after tp_ws_close(). Thread: any actor.
 */
TP_API int tp_ws_send_text(tp_ctx *ctx, tp_conn conn, const void *data,
                           size_t len);
TP_API int tp_ws_send_binary(tp_ctx *ctx, tp_conn conn, const void *data,
                             size_t len);

/**
 * Starts the close handshake: sends a Close frame with code (1000..4999,
 * not 1004-1006, 1015) and closes the connection when the peer answers,
 * or after close_timeout_ms. Returns 0, -EINVAL (bad code) or -ENOTCONN.
 * Thread: any actor.
 */
TP_API int tp_ws_close(tp_ctx *ctx, tp_conn conn, uint16_t code);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_WS_H */
