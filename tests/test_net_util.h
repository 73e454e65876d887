/*
 * tests/test_net_util.h - helpers of the network tests: a configurable
 * connection behaviour that reports what it sees to a probe, and blocking
 * loopback client sockets with timeouts.
 */
#ifndef TP_TEST_NET_UTIL_H
#define TP_TEST_NET_UTIL_H

#include "testutil.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/types.h>

/* Reports a connection actor sends to its probe (from = its pid). */
enum {
    EV_OPENED = 0x7a000001, /* struct ev_opened */
    EV_DATA,                /* struct ev_data */
    EV_CLOSED,              /* tp_tcp_closed */
    EV_BLOCKED,             /* tp_tcp_write_state */
    EV_DRAINED,             /* tp_tcp_write_state */
    EV_PEER_SHUT,           /* tp_conn */
    EV_DRAIN,               /* tp_conn */
    EV_TERMINATE,           /* tp_exit_kind (int) */
    EV_CONNECTED,           /* tp_tcp_connected */
    EV_OTHER                /* the message type (uint32_t) */
};

/* Messages tests send to connection actors. */
enum {
    CMD_SEND = 0x7b000001, /* payload: bytes to send */
    CMD_CLOSE,             /* tp_tcp_close */
    CMD_SHUTDOWN,          /* tp_tcp_shutdown */
    CMD_ACTIVATE,          /* tp_tcp_activate */
    CMD_FLOOD,             /* uint32_t: send that many 64 KiB chunks */
    CMD_CRASH              /* tp_fail */
};

struct ev_opened {
    tp_tcp_opened o;
    int32_t self_ok; /* tp_tcp_self() and msg->ref agreed with o.conn */
};

struct ev_data {
    uint64_t total; /* bytes received so far */
    uint32_t len;
    uint8_t head[64];
};

struct tnet_cfg {
    tp_pid probe;                 /* reports go here (TP_PID_NONE: none) */
    bool echo;                    /* send DATA back */
    bool report_data;             /* EV_DATA for each DATA */
    unsigned delay_us;            /* sleep this long per DATA (a slow actor) */
    bool crash_on_data;           /* "crash" in the data makes the actor fail */
    _Atomic uint64_t received;    /* DATA bytes, all connections */
    _Atomic uint64_t max_mailbox; /* longest mailbox seen at DATA */
    _Atomic int live;             /* connection actors alive */
};

struct tnet_state {
    struct tnet_cfg *cfg;
    tp_conn conn;
    uint64_t total;
};

extern const tp_behaviour tnet_behaviour;

/* A listener on 127.0.0.1 (or addr) with port 0 and the tnet behaviour. */
tp_listener *tnet_listen(tp_runtime *rt, struct tnet_cfg *cfg,
                         tp_listen_opts *o);
void tnet_opts(tp_listen_opts *o, struct tnet_cfg *cfg);

/* Blocking client sockets (loopback). */
int tnet_connect(const char *addr, uint16_t port);
int tnet_connect_unix(const char *path);
/* Connects to 127.0.0.1:port with SO_RCVBUF set to rcvbuf first: a small
 * receive window, so the server's writes back up sooner (asserts). */
int tnet_connect_rcvbuf(uint16_t port, int rcvbuf);
/* Closes fd with a reset (SO_LINGER 0): the peer sees RST, not FIN. */
void tnet_reset(int fd);

/* Fills in 127.0.0.1:port. */
void tnet_loopback(struct sockaddr_in *in, uint16_t port);
/* The local port of a bound socket (asserts). */
uint16_t tnet_local_port(int fd);
/* A port of 127.0.0.1 nobody listens on (bound, then closed). */
uint16_t tnet_closed_port(void);
/* A plain listening socket on 127.0.0.1 (port 0, the given backlog);
 * *port gets the port it was given (asserts). */
int tnet_raw_listener(uint16_t *port, int backlog);

/* An outbound connect made from inside a probe: tpt_probe_do(probe,
 * tnet_connect_fn, &req) calls tp_tcp_connect(o) and keeps its result. */
struct tnet_conn_req {
    tp_connect_opts o;
    tp_conn conn;
    int result;
};
void tnet_connect_fn(tp_ctx *ctx, void *arg);

/* The payload of an EV_OTHER / EV_TERMINATE record (an int32_t). */
int tnet_int_of(const tpt_rec *r);
/* The payload of an EV_CLOSED or TP_MSG_TCP_CLOSED record. */
const tp_tcp_closed *tnet_closed_of(const tpt_rec *r);
/* Writes everything (asserts: main thread only). */
void tnet_write_all(int fd, const void *p, size_t n);
/* Writes everything; false on an error (any thread). */
bool tnet_send_all(int fd, const void *p, size_t n);
/* Reads exactly n bytes within timeout_ms; returns bytes read (< n on
 * EOF/error/timeout). */
size_t tnet_read_n(int fd, void *p, size_t n, int timeout_ms);
/* Waits for end of stream (0) or reset (-ECONNRESET) within timeout_ms;
 * returns 1 if data came instead, -ETIMEDOUT if nothing happened. */
int tnet_wait_eof(int fd, int timeout_ms);
/* Sends then receives n bytes at once (poll loop): an echo round trip of
 * any size without deadlock. Returns bytes echoed back. */
size_t tnet_echo_roundtrip(int fd, const uint8_t *out, uint8_t *in, size_t n,
                           int timeout_ms);
/* Waits for a record of `type` from the probe (asserts). */
void tnet_expect(tpt_probe *p, uint32_t type, int timeout_ms, tpt_rec *out);
/* Process resident set in bytes. */
uint64_t tnet_rss(void);
/* Open file descriptors of this process. */
int tnet_open_fds(void);
/* Milliseconds since an arbitrary point. */
uint64_t tnet_ms(void);

#endif
