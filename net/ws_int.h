/*
 * net/ws_int.h - WebSocket: the frame decoder and encoder (pure, in
 * ws_frame.c: no sockets, no runtime; the fuzz target drives it) and the
 * connection hooks (ws.c, on the connection's loop thread).
 */
#ifndef TP_NET_WS_INT_H
#define TP_NET_WS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TP__WS_CONT = 0x0,
    TP__WS_TEXT = 0x1,
    TP__WS_BINARY = 0x2,
    TP__WS_CLOSE = 0x8,
    TP__WS_PING = 0x9,
    TP__WS_PONG = 0xa
};

#define TP__WS_HDR_MAX 14 /* 2 + 8 (length) + 4 (mask) */

/* One direction's decoder. An idle decoder (between messages) holds no
 * buffer: buf is allocated for a message and freed at the end of the
 * decode call that completed it. */
struct tp__ws_dec {
    uint64_t left;   /* payload bytes left in the current frame */
    uint32_t max;    /* largest data message */
    uint32_t utf8;   /* incremental UTF-8 check of a text message */
    char *buf;       /* data message so far, then a control payload */
    size_t len, cap; /* bytes in buf, its size */
    size_t mlen;     /* bytes of the data message (control after it) */
    uint8_t hdr[TP__WS_HDR_MAX];
    uint8_t hlen; /* header bytes collected */
    uint8_t mask[4];
    uint8_t moff;   /* mask offset of the next payload byte */
    uint8_t op;     /* the current frame's opcode */
    uint8_t fin;    /* its FIN bit */
    uint8_t msg_op; /* data message in progress (TEXT/BINARY), or 0 */
    bool in_frame;  /* header done, payload in progress */
    bool client;    /* decoding a server's frames: no mask expected */
    bool dead;      /* failed: later input is ignored */
};

/* A complete data message (op TEXT/BINARY) or control frame (CLOSE with
 * its code checked, PING, PONG). p is writable and valid during the call.
 * Returns 0 to go on, < 0 to stop quietly, > 0 to fail with that close
 * code. */
typedef int (*tp__ws_msg_fn)(void *user, int op, char *p, size_t n);

void tp__ws_dec_init(struct tp__ws_dec *d, uint32_t max, bool client);
void tp__ws_dec_fini(struct tp__ws_dec *d);
/* Feeds n bytes. Returns 0, the first error's close code (1002, 1007,
 * 1009; 1011 when out of memory) after which the decoder is dead, or the
 * callback's non-zero answer. */
int tp__ws_decode(struct tp__ws_dec *d, const uint8_t *p, size_t n,
                  tp__ws_msg_fn fn, void *user);
/* Writes a frame header into out (at least TP__WS_HDR_MAX bytes); mask
 * (4 bytes) for a client's frame, else NULL. Returns its length. */
size_t tp__ws_header(uint8_t *out, int op, bool fin, uint64_t len,
                     const uint8_t *mask);
/* Checks UTF-8 incrementally: *state starts at 0; false as soon as the
 * bytes cannot be UTF-8. The text is complete when *state is 0 again. */
bool tp__ws_utf8(uint32_t *state, const uint8_t *p, size_t n);
/* A status code a Close frame may carry. */
bool tp__ws_code_ok(unsigned code);

/* ---- ws.c: connection hooks ---- */
struct tp__conn;
struct tp__ws;
struct tp__ws_cfg;
struct tp_listener;
struct tp_ws_opts;

int tp__ws_listener_init(struct tp_listener *l, const struct tp_ws_opts *o);
void tp__ws_listener_fini(struct tp_listener *l);
int tp__ws_server_new(struct tp_listener *l, struct tp__conn *c);
/* A client's state (the connecting actor's thread): the request to send
 * once the stream is up. host is the Host header's default. */
int tp__ws_client_new(const struct tp_ws_opts *o, const char *host,
                      struct tp__ws **out);
void tp__ws_discard(struct tp__ws *w);
/* Plaintext from the connection (after TLS). */
void tp__ws_data(struct tp__conn *c, const char *p, size_t n);
/* After our Close (an error's, or the answer to the peer's) the
 * connection lingers until the peer is quiet or hangs up: true then, with
 * the reason and error its close will have. */
bool tp__ws_lingering(struct tp__conn *c, int *reason, int *err);
/* The connection's timer fired while OPEN: true if it was ours. */
bool tp__ws_timer(struct tp__conn *c);
/* Arms the upgrade deadline instead of the idle timer: true if it did. */
bool tp__ws_arm(struct tp__conn *c);
/* A graceful close starts: send a Close frame first if none was. */
void tp__ws_on_close(struct tp__conn *c, int reason);
/* tp_ws_close() on the loop. */
void tp__ws_close_cmd(struct tp__conn *c, unsigned code);
void tp__ws_free(struct tp__conn *c);
struct tp__wreq;
/* An actor's write before the upgrade finished: kept (true) to go out
 * after the 101 answer; false once upgraded (write it now). */
bool tp__ws_hold(struct tp__conn *c, struct tp__wreq *w);
/* Whether our Close frame went out (no data frame may follow it). */
bool tp__ws_close_sent(struct tp__conn *c);
/* Whether the 101 answer has been written. */
bool tp__ws_upgraded(struct tp__conn *c);
/* sizeof the per-connection state after the upgrade (bench, tests). */
size_t tp__ws_state_size(void);

#endif /* TP_NET_WS_INT_H */
