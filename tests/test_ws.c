/*
 * tests/test_ws.c - WebSocket conformance with the test's own raw-socket
 * frames, organised like the Autobahn test suite's categories: 1 framing,
 * 2 pings/pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8,
 * 7 close handling, 9 limits, plus the upgrade and masking rules. Each
 * case asserts what RFC 6455 asks of a server. The decoder's own unit
 * cases (split anywhere, encoder round trip) come first.
 */
#include "net/ws_int.h"
#include "test_net_util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe/ws.h>
#include <unistd.h>

enum { EV_WS_UP = 0x7c000001, EV_WS_MSG, EV_WS_CLOSING, EV_WS_CLOSED };

struct wcfg {
    tp_pid probe;
    bool greet; /* send a message at TP_MSG_TCP_OPENED, before the upgrade */
};

static void
ws_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct wcfg *cfg = *(struct wcfg **)state;
    tp_conn c = tp_msg_conn(m);

    switch (m->type) {
    case TP_MSG_TCP_OPENED:
        if (cfg->greet)
            tp_ws_send_text(ctx, c, "early", 5);
        break;
    case TP_MSG_WS_UPGRADED:
        tp_send(ctx, cfg->probe, EV_WS_UP, m->data, m->len);
        break;
    case TP_MSG_WS_TEXT:
        if (m->len == 5 && memcmp(m->data, "close", 5) == 0) {
            tp_ws_close(ctx, c, 4000);
            break;
        }
        tp_ws_send_text(ctx, c, m->data, m->len);
        tp_send(ctx, cfg->probe, EV_WS_MSG, m->data,
                m->len < 256 ? m->len : 256);
        break;
    case TP_MSG_WS_BINARY:
        tp_ws_send_binary(ctx, c, m->data, m->len);
        tp_send(ctx, cfg->probe, EV_WS_MSG, m->data,
                m->len < 256 ? m->len : 256);
        break;
    case TP_MSG_WS_CLOSING:
        tp_send(ctx, cfg->probe, EV_WS_CLOSING, m->data, m->len);
        break;
    case TP_MSG_TCP_CLOSED:
        tp_send(ctx, cfg->probe, EV_WS_CLOSED, m->data, m->len);
        break;
    default:
        break;
    }
}

static int
ws_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(struct wcfg **)state = arg;
    return 0;
}

static const tp_behaviour ws_behaviour = {.name = "ws_echo",
                                          .state_size = sizeof(void *),
                                          .init = ws_init,
                                          .handle = ws_handle};

struct fixture {
    tp_runtime *rt;
    tpt_probe *p;
    struct wcfg cfg;
    tp_listener *l;
    uint16_t port;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    tp_listen_opts o;
    tp_ws_opts wo;

    f->rt = tpt_runtime(2);
    f->p = tpt_probe_new(f->rt, false);
    f->cfg.probe = tpt_probe_pid(f->p);
    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &ws_behaviour;
    o.arg = &f->cfg;
    tp_ws_opts_init(&wo);
    wo.max_message = 65536;
    wo.upgrade_timeout_ms = 400;
    wo.protocols = "chat,superchat";
    o.ws = &wo;
    assert_int_equal(tp_tcp_listen(f->rt, &o, &f->l), 0);
    f->port = tp_listener_port(f->l);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    tp_listener_close(f->l);
    tpt_probe_free(f->p);
    tpt_finish(f->rt);
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* A raw client                                                           */

static void
accept_of(const char *key, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                     key);

    SHA1((unsigned char *)buf, (size_t)n, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

/* Reads an HTTP response head into buf (NUL-terminated). */
static void
read_head(int fd, char *buf, size_t size)
{
    size_t n = 0;

    while (n + 1 < size && tnet_read_n(fd, buf + n, 1, 5000) == 1) {
        n++;
        buf[n] = '\0';
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
            return;
    }
    buf[n] = '\0';
}

static int
ws_open_with(uint16_t port, const char *req)
{
    int fd = tnet_connect("127.0.0.1", port);

    tnet_write_all(fd, req, strlen(req));
    return fd;
}

static const char KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

static int
ws_open(uint16_t port)
{
    char req[512], head[1024], acc[29], line[64];
    int fd;

    snprintf(req, sizeof(req),
             "GET /chat?x=1 HTTP/1.1\r\nHost: localhost\r\nUpgrade: "
             "websocket\r\nConnection: keep-alive, Upgrade\r\n"
             "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
             "Sec-WebSocket-Protocol: superchat, chat\r\n\r\n",
             KEY);
    fd = ws_open_with(port, req);
    read_head(fd, head, sizeof(head));
    assert_non_null(strstr(head, "HTTP/1.1 101 "));
    accept_of(KEY, acc);
    snprintf(line, sizeof(line), "Sec-WebSocket-Accept: %s\r\n", acc);
    assert_non_null(strstr(head, line));
    /* Our preference wins: chat before superchat. */
    assert_non_null(strstr(head, "Sec-WebSocket-Protocol: chat\r\n"));
    return fd;
}

/* Sends one frame: header bits as given, masked unless unmasked. */
static void
send_frame(int fd, uint8_t b0, const void *p, size_t n, bool unmasked)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *buf = malloc(n + TP__WS_HDR_MAX);
    size_t h = tp__ws_header(buf, b0 & 0x0f, (b0 & 0x80) != 0, n,
                             unmasked ? NULL : mask);

    buf[0] = b0;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = ((const uint8_t *)p)[i] ^ (unmasked ? 0 : mask[i & 3]);
    tnet_write_all(fd, buf, h + n);
    free(buf);
}

#define FIN 0x80

static void
send_msg(int fd, int op, const void *p, size_t n)
{
    send_frame(fd, (uint8_t)(FIN | op), p, n, false);
}

/* Reads one server frame; returns its first byte (-1 on EOF/timeout). */
static int
read_frame(int fd, char *buf, size_t size, size_t *len)
{
    uint8_t h[10];
    uint64_t n;

    if (tnet_read_n(fd, h, 2, 5000) != 2)
        return -1;
    assert_int_equal(h[1] & 0x80, 0); /* server frames are not masked */
    n = h[1] & 0x7f;
    if (n == 126) {
        assert_int_equal(tnet_read_n(fd, h + 2, 2, 5000), 2);
        n = (uint64_t)h[2] << 8 | h[3];
    } else if (n == 127) {
        assert_int_equal(tnet_read_n(fd, h + 2, 8, 5000), 8);
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | h[2 + i];
    }
    assert_true(n <= size);
    assert_int_equal(tnet_read_n(fd, buf, (size_t)n, 10000), (size_t)n);
    *len = (size_t)n;
    return h[0];
}

/* Expects a message echoed back: FIN, opcode op, the payload. */
static void
expect_msg(int fd, int op, const void *p, size_t n)
{
    char *buf = malloc(n + 1);
    size_t len = 0;

    assert_int_equal(read_frame(fd, buf, n + 1, &len), FIN | op);
    assert_int_equal(len, n);
    assert_memory_equal(buf, p, n);
    free(buf);
}

/* Expects a Close frame with code, then the end of the stream. */
static void
expect_close(int fd, unsigned code)
{
    char buf[256];
    size_t len = 0;
    int b0, eof;

    while ((b0 = read_frame(fd, buf, sizeof(buf), &len)) >= 0 &&
           (b0 & 0x0f) != TP__WS_CLOSE)
        ; /* pongs, echoes before the error */
    assert_int_equal(b0, FIN | TP__WS_CLOSE);
    assert_true(len >= 2);
    assert_int_equal((unsigned)(uint8_t)buf[0] << 8 | (uint8_t)buf[1], code);
    /* Then the end of the stream, never a reset: the server reads and
     * drops what we still send after its Close (a frame it refused by its
     * header has its payload still coming) before it closes. */
    eof = tnet_wait_eof(fd, 5000);
    assert_int_equal(eof, 0);
}

/* The actor's view of the end: CLOSED with reason and error. */
static void
expect_closed(struct fixture *f, int reason, int error)
{
    tpt_rec r;

    tnet_expect(f->p, EV_WS_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, reason);
    assert_int_equal(tnet_closed_of(&r)->error, error);
}

static void
expect_up(struct fixture *f)
{
    tpt_rec r;

    tnet_expect(f->p, EV_WS_UP, 5000, &r);
    assert_string_equal(((tp_ws_upgraded *)r.data)->path, "/chat?x=1");
    assert_string_equal(((tp_ws_upgraded *)r.data)->protocol, "chat");
}

static void
fail_case(struct fixture *f, int fd, unsigned code, int error)
{
    expect_close(fd, code);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_ERROR, error);
}

/* ---------------------------------------------------------------------- */
/* The decoder alone                                                      */

struct collect {
    int ops[16];
    size_t lens[16];
    int n;
};

static int
collect_fn(void *user, int op, char *p, size_t n)
{
    struct collect *c = user;

    (void)p;
    c->ops[c->n] = op;
    c->lens[c->n++] = n;
    return 0;
}

static void
test_ws_decoder_split_anywhere(void **state)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t stream[600], payload[300];
    size_t n = 0;
    struct tp__ws_dec d;
    struct collect c;

    (void)state;
    memset(payload, 'a', sizeof(payload));
    n += tp__ws_header(stream + n, TP__WS_TEXT, false, 3, mask);
    for (int i = 0; i < 3; i++)
        stream[n++] = payload[i] ^ mask[i & 3];
    n += tp__ws_header(stream + n, TP__WS_PING, true, 0, mask);
    n += tp__ws_header(stream + n, TP__WS_CONT, true, 200, mask);
    for (int i = 0; i < 200; i++)
        stream[n++] = payload[i] ^ mask[i & 3];
    /* Every split point, and byte by byte. */
    for (size_t cut = 0; cut <= n; cut++) {
        memset(&c, 0, sizeof(c));
        tp__ws_dec_init(&d, 1024, false);
        assert_int_equal(tp__ws_decode(&d, stream, cut, collect_fn, &c), 0);
        assert_int_equal(
            tp__ws_decode(&d, stream + cut, n - cut, collect_fn, &c), 0);
        assert_int_equal(c.n, 2);
        assert_int_equal(c.ops[0], TP__WS_PING);
        assert_int_equal(c.ops[1], TP__WS_TEXT);
        assert_int_equal(c.lens[1], 203);
        assert_null(d.buf); /* idle: no buffer */
        tp__ws_dec_fini(&d);
    }
    memset(&c, 0, sizeof(c));
    tp__ws_dec_init(&d, 1024, false);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(tp__ws_decode(&d, stream + i, 1, collect_fn, &c), 0);
    assert_int_equal(c.n, 2);
    tp__ws_dec_fini(&d);
}

static void
test_ws_utf8_checker(void **state)
{
    static const struct {
        const char *s;
        bool ok, complete;
    } cases[] = {
        {"plain", true, true},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true, true},
        {"\xf4\x8f\xbf\xbf", true, true},   /* U+10FFFF */
        {"\xf4\x90\x80\x80", false, false}, /* over U+10FFFF */
        {"\xc0\x80", false, false},         /* overlong */
        {"\xe0\x80\xaf", false, false},     /* overlong */
        {"\xed\xa0\x80", false, false},     /* surrogate */
        {"\xce", true, false},              /* incomplete */
        {"\xff", false, false},
    };
    uint32_t st;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        st = 0;
        assert_int_equal(
            tp__ws_utf8(&st, (const uint8_t *)cases[i].s, strlen(cases[i].s)),
            cases[i].ok);
        if (cases[i].ok)
            assert_int_equal(st == 0, cases[i].complete);
    }
    assert_true(tp__ws_code_ok(1000) && tp__ws_code_ok(4999));
    assert_false(tp__ws_code_ok(1005) || tp__ws_code_ok(999) ||
                 tp__ws_code_ok(5000) || tp__ws_code_ok(1016));
}

/* ---------------------------------------------------------------------- */
/* 1 Framing                                                              */

static void
test_ws_1_framing_text_and_binary_sizes(void **state)
{
    struct fixture *f = *state;
    static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536};
    char *buf = malloc(65536);
    int fd = ws_open(f->port);

    expect_up(f);
    for (size_t i = 0; i < 65536; i++)
        buf[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        send_msg(fd, TP__WS_TEXT, buf, sizes[i]);
        expect_msg(fd, TP__WS_TEXT, buf, sizes[i]);
        send_msg(fd, TP__WS_BINARY, buf, sizes[i]);
        expect_msg(fd, TP__WS_BINARY, buf, sizes[i]);
    }
    free(buf);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_1_framing_byte_by_byte(void **state)
{
    struct fixture *f = *state;
    static const uint8_t frame[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                    0x7f, 0x9f, 0x4d, 0x51, 0x58}; /* "Hello" */
    int fd = ws_open(f->port);

    expect_up(f);
    for (size_t i = 0; i < sizeof(frame); i++) {
        tnet_write_all(fd, frame + i, 1);
        usleep(2000);
    }
    expect_msg(fd, TP__WS_TEXT, "Hello", 5);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_1_framing_unmasked_client_frame(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    send_frame(fd, FIN | TP__WS_TEXT, "hi", 2, true);
    fail_case(f, fd, 1002, -EPROTO);
}

/* ---------------------------------------------------------------------- */
/* 2 Pings and pongs                                                      */

static void
test_ws_2_ping_answered_with_same_payload(void **state)
{
    struct fixture *f = *state;
    char p[125];
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_PING, "", 0);
    expect_msg(fd, TP__WS_PONG, "", 0);
    memset(p, 0xfe, sizeof(p));
    send_msg(fd, TP__WS_PING, p, sizeof(p));
    expect_msg(fd, TP__WS_PONG, p, sizeof(p));
    /* An unsolicited pong is ignored. */
    send_msg(fd, TP__WS_PONG, "x", 1);
    for (int i = 0; i < 10; i++)
        send_msg(fd, TP__WS_PING, &i, sizeof(i));
    for (int i = 0; i < 10; i++)
        expect_msg(fd, TP__WS_PONG, &i, sizeof(i));
    send_msg(fd, TP__WS_TEXT, "still", 5);
    expect_msg(fd, TP__WS_TEXT, "still", 5);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_2_ping_over_125_bytes(void **state)
{
    struct fixture *f = *state;
    char p[126] = {0};
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_PING, p, sizeof(p));
    fail_case(f, fd, 1002, -EPROTO);
}

/* ---------------------------------------------------------------------- */
/* 3 Reserved bits                                                        */

static void
test_ws_3_reserved_bits(void **state)
{
    struct fixture *f = *state;
    static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x70};

    for (size_t i = 0; i < sizeof(rsv); i++) {
        int fd = ws_open(f->port);
        expect_up(f);
        /* A good message first: the actor gets it; its echo may or may
         * not beat the Close (Autobahn's "non-strict" either way). */
        send_msg(fd, TP__WS_TEXT, "ok", 2);
        send_frame(fd, (uint8_t)(FIN | rsv[i] | (i == 3 ? TP__WS_PING : 1)),
                   "x", 1, false);
        tnet_expect(f->p, EV_WS_MSG, 5000, NULL);
        fail_case(f, fd, 1002, -EPROTO);
    }
}

/* ---------------------------------------------------------------------- */
/* 4 Opcodes                                                              */

static void
test_ws_4_reserved_opcodes(void **state)
{
    struct fixture *f = *state;
    static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};

    for (size_t i = 0; i < sizeof(ops); i++) {
        int fd = ws_open(f->port);
        expect_up(f);
        send_frame(fd, (uint8_t)(FIN | ops[i]), "", 0, false);
        fail_case(f, fd, 1002, -EPROTO);
    }
}

/* ---------------------------------------------------------------------- */
/* 5 Fragmentation                                                        */

static void
test_ws_5_fragments_reassembled_with_ping_between(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    send_frame(fd, TP__WS_TEXT, "frag", 4, false);
    send_msg(fd, TP__WS_PING, "p", 1);
    send_frame(fd, TP__WS_CONT, "men", 3, false);
    send_frame(fd, TP__WS_CONT, "", 0, false);
    send_frame(fd, FIN | TP__WS_CONT, "ted", 3, false);
    expect_msg(fd, TP__WS_PONG, "p", 1); /* answered mid-message */
    expect_msg(fd, TP__WS_TEXT, "fragmented", 10);
    send_frame(fd, TP__WS_BINARY, "\x00\x01", 2, false);
    send_frame(fd, FIN | TP__WS_CONT, "\x02", 1, false);
    expect_msg(fd, TP__WS_BINARY, "\x00\x01\x02", 3);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_5_continuation_without_start(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    send_frame(fd, FIN | TP__WS_CONT, "x", 1, false);
    fail_case(f, fd, 1002, -EPROTO);
}

static void
test_ws_5_new_message_inside_fragmented_one(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    send_frame(fd, TP__WS_TEXT, "a", 1, false);
    send_frame(fd, FIN | TP__WS_TEXT, "b", 1, false);
    fail_case(f, fd, 1002, -EPROTO);
}

static void
test_ws_5_fragmented_control_frame(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    send_frame(fd, TP__WS_PING, "a", 1, false); /* no FIN */
    fail_case(f, fd, 1002, -EPROTO);
}

/* ---------------------------------------------------------------------- */
/* 6 UTF-8                                                                */

static void
test_ws_6_valid_utf8_split_inside_code_points(void **state)
{
    struct fixture *f = *state;
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_TEXT, kosme, sizeof(kosme) - 1);
    expect_msg(fd, TP__WS_TEXT, kosme, sizeof(kosme) - 1);
    /* Every byte its own fragment. */
    for (size_t i = 0; i + 1 < sizeof(kosme) - 1; i++)
        send_frame(fd, i == 0 ? TP__WS_TEXT : TP__WS_CONT, kosme + i, 1, false);
    send_frame(fd, FIN | TP__WS_CONT, kosme + sizeof(kosme) - 2, 1, false);
    expect_msg(fd, TP__WS_TEXT, kosme, sizeof(kosme) - 1);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_6_invalid_utf8(void **state)
{
    struct fixture *f = *state;
    static const char *const bad[] = {"\xc0\x80", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80", "ok\xce", "\xff"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int fd = ws_open(f->port);
        expect_up(f);
        send_msg(fd, TP__WS_TEXT, bad[i], strlen(bad[i]));
        fail_case(f, fd, 1007, -EILSEQ);
    }
}

static void
test_ws_6_fail_fast_before_message_ends(void **state)
{
    struct fixture *f = *state;
    int fd = ws_open(f->port);

    expect_up(f);
    /* The first fragment is already invalid: the server closes without
     * waiting for the rest. */
    send_frame(fd, TP__WS_TEXT, "ab\xc0\xaf", 4, false);
    fail_case(f, fd, 1007, -EILSEQ);
}

/* ---------------------------------------------------------------------- */
/* 7 Close handling                                                       */

static void
test_ws_7_client_close_echoed(void **state)
{
    struct fixture *f = *state;
    char p[] = "\x03\xe8"
               "bye";
    tpt_rec r;
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_CLOSE, p, 5);
    send_msg(fd, TP__WS_TEXT, "late", 4); /* after Close: ignored */
    expect_close(fd, 1000);
    close(fd);
    tnet_expect(f->p, EV_WS_CLOSING, 5000, &r);
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    assert_string_equal(((tp_ws_closing *)r.data)->reason, "bye");
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
    assert_int_equal(tpt_probe_count(f->p, EV_WS_MSG), 0);
    /* An empty Close: answered with 1000. */
    fd = ws_open(f->port);
    expect_up(f);
    send_msg(fd, TP__WS_CLOSE, "", 0);
    expect_close(fd, 1000);
    close(fd);
    tnet_expect(f->p, EV_WS_CLOSING, 5000, &r);
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1005);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

static void
test_ws_7_bad_close_frames(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *p;
        size_t n;
        unsigned code;
    } cases[] = {
        {"\x03", 1, 1002},             /* one byte */
        {"\x03\xe7", 2, 1002},         /* 999 */
        {"\x03\xed", 2, 1002},         /* 1005 */
        {"\x03\xee", 2, 1002},         /* 1006 */
        {"\x13\x88", 2, 1002},         /* 5000 */
        {"\x03\xe8\xc0\x80", 4, 1007}, /* 1000, bad UTF-8 reason */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = ws_open(f->port);
        expect_up(f);
        send_msg(fd, TP__WS_CLOSE, cases[i].p, cases[i].n);
        fail_case(f, fd, cases[i].code,
                  cases[i].code == 1007 ? -EILSEQ : -EPROTO);
    }
}

static void
test_ws_7_server_close_handshake(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    size_t len = 0;
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_TEXT, "close", 5); /* the actor calls tp_ws_close */
    assert_int_equal(read_frame(fd, buf, sizeof(buf), &len),
                     FIN | TP__WS_CLOSE);
    assert_int_equal((uint8_t)buf[0] << 8 | (uint8_t)buf[1], 4000);
    send_msg(fd, TP__WS_CLOSE, buf, 2); /* our answer */
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    tnet_expect(f->p, EV_WS_CLOSING, 5000, NULL);
    expect_closed(f, TP_NET_CLOSE_LOCAL, 0);
}

/* ---------------------------------------------------------------------- */
/* 9 Limits                                                               */

static void
test_ws_9_message_over_limit(void **state)
{
    struct fixture *f = *state;
    char *big = calloc(1, 65537);
    int fd = ws_open(f->port);

    expect_up(f);
    send_msg(fd, TP__WS_BINARY, big, 65536); /* at the limit: fine */
    expect_msg(fd, TP__WS_BINARY, big, 65536);
    send_msg(fd, TP__WS_BINARY, big, 65537);
    fail_case(f, fd, 1009, -EMSGSIZE);
    /* The same in fragments: the sum counts. */
    fd = ws_open(f->port);
    expect_up(f);
    send_frame(fd, TP__WS_BINARY, big, 40000, false);
    send_frame(fd, FIN | TP__WS_CONT, big, 40000, false);
    fail_case(f, fd, 1009, -EMSGSIZE);
    free(big);
}

/* ---------------------------------------------------------------------- */
/* The upgrade                                                            */

static void
expect_http_refusal(struct fixture *f, const char *req, const char *status)
{
    char head[1024];
    int fd = ws_open_with(f->port, req);

    read_head(fd, head, sizeof(head));
    assert_non_null(strstr(head, status));
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_ERROR, -EBADMSG);
}

static void
test_ws_upgrade_refusals_and_timeout(void **state)
{
    struct fixture *f = *state;
    int fd;

    expect_http_refusal(f, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400");
    expect_http_refusal(f,
                        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
                        "Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
                        "HTTP/1.1 400"); /* no key */
    expect_http_refusal(f,
                        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
                        "Upgrade\r\nSec-WebSocket-Key: "
                        "dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 8\r\n\r\n",
                        "HTTP/1.1 426");
    expect_http_refusal(f, "\x16\x03\x01 not http\r\n\r\n", "HTTP/1.1 400");
    /* Half a request, then nothing: the upgrade deadline (400 ms). */
    fd = ws_open_with(f->port, "GET / HTTP/1.1\r\nUpgr");
    assert_int_equal(tnet_wait_eof(fd, 5000), 0);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_ERROR, -ETIMEDOUT);
    assert_int_equal(tpt_probe_count(f->p, EV_WS_UP), 0);
}

/* A message the actor sends before the upgrade finished goes out after
 * the 101 answer, not before it. */
static void
test_ws_upgrade_send_before_upgraded_is_held(void **state)
{
    struct fixture *f = *state;
    int fd;

    f->cfg.greet = true;
    fd = ws_open(f->port); /* asserts the 101 comes first */
    expect_up(f);
    expect_msg(fd, TP__WS_TEXT, "early", 5);
    send_msg(fd, TP__WS_TEXT, "after", 5);
    expect_msg(fd, TP__WS_TEXT, "after", 5);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

/* A frame right behind the request, in the same write. */
static void
test_ws_upgrade_with_frame_in_same_packet(void **state)
{
    struct fixture *f = *state;
    char req[512], head[1024];
    size_t n;
    int fd;

    n = (size_t)snprintf(req, sizeof(req),
                         "GET /chat?x=1 HTTP/1.1\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                         "Sec-WebSocket-Protocol: chat\r\n"
                         "Sec-WebSocket-Version: 13\r\n\r\n"
                         "\x81\x82\x01\x02\x03\x04ik",
                         KEY);
    fd = tnet_connect("127.0.0.1", f->port);
    tnet_write_all(fd, req, n);
    read_head(fd, head, sizeof(head));
    assert_non_null(strstr(head, "101"));
    expect_up(f);
    expect_msg(fd, TP__WS_TEXT, "hi", 2);
    close(fd);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
}

/* ---------------------------------------------------------------------- */
/* The client side (tp_connect_opts.ws) against the server side            */

struct send_req {
    tp_conn conn;
    const void *p;
    size_t n;
    bool binary;
    int result;
};

static void
ws_send_fn(tp_ctx *ctx, void *arg)
{
    struct send_req *r = arg;

    r->result = r->binary ? tp_ws_send_binary(ctx, r->conn, r->p, r->n)
                          : tp_ws_send_text(ctx, r->conn, r->p, r->n);
}

static void
ws_close_fn(tp_ctx *ctx, void *arg)
{
    struct send_req *r = arg;

    r->result = tp_ws_close(ctx, r->conn, 1000);
}

static void
test_ws_client_connect_echo_close(void **state)
{
    struct fixture *f = *state;
    tpt_probe *client = tpt_probe_new(f->rt, false);
    struct tnet_conn_req cr;
    struct send_req sr;
    char *big = malloc(60000);
    tp_ws_opts wo;
    tpt_rec r;

    memset(big, 'z', 60000);
    tp_ws_opts_init(&wo);
    wo.path = "/chat?x=1";
    wo.protocols = "superchat,chat";
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = f->port;
    cr.o.ws = &wo;
    tpt_probe_do(client, tnet_connect_fn, &cr);
    assert_int_equal(cr.result, 0);
    /* Sent before the upgrade: held until the 101. */
    sr = (struct send_req){cr.conn, "early", 5, false, 0};
    tpt_probe_do(client, ws_send_fn, &sr);
    assert_int_equal(sr.result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, 0);
    tnet_expect(client, TP_MSG_WS_UPGRADED, 5000, &r);
    assert_string_equal(((tp_ws_upgraded *)r.data)->path, "/chat?x=1");
    assert_string_equal(((tp_ws_upgraded *)r.data)->protocol, "chat");
    expect_up(f);
    tnet_expect(client, TP_MSG_WS_TEXT, 5000, &r);
    assert_int_equal(r.len, 5);
    assert_memory_equal(r.data, "early", 5);
    sr = (struct send_req){cr.conn, "\x00\x01", 2, true, 0};
    tpt_probe_do(client, ws_send_fn, &sr);
    tnet_expect(client, TP_MSG_WS_BINARY, 5000, &r);
    assert_int_equal(r.len, 2);
    sr = (struct send_req){cr.conn, big, 60000, false, 0};
    tpt_probe_do(client, ws_send_fn, &sr);
    tnet_expect(client, TP_MSG_WS_TEXT, 5000, &r);
    assert_int_equal(r.len, 60000);
    tpt_probe_do(client, ws_close_fn, &sr);
    assert_int_equal(sr.result, 0);
    tnet_expect(client, TP_MSG_WS_CLOSING, 5000, &r); /* the echo */
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    tnet_expect(client, TP_MSG_TCP_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
    tnet_expect(f->p, EV_WS_CLOSING, 5000, &r);
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    expect_closed(f, TP_NET_CLOSE_PEER, 0);
    free(big);
    tpt_probe_free(client);
}

/* A server that is not a WebSocket server: the client closes, -EBADMSG. */
static void
test_ws_client_rejects_bad_answer(void **state)
{
    struct fixture *f = *state;
    tpt_probe *client = tpt_probe_new(f->rt, false);
    struct tnet_conn_req cr;
    tp_ws_opts wo;
    uint16_t port;
    int lfd = tnet_raw_listener(&port, 4), fd;
    char buf[512];
    static const char bad[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
        "websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n"
        "\r\n";
    tpt_rec r;

    tp_ws_opts_init(&wo);
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = port;
    cr.o.ws = &wo;
    tpt_probe_do(client, tnet_connect_fn, &cr);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    read_head(fd, buf, sizeof(buf));
    assert_non_null(strstr(buf, "Sec-WebSocket-Key: "));
    assert_non_null(strstr(buf, "GET / HTTP/1.1\r\n"));
    tnet_write_all(fd, bad, sizeof(bad) - 1); /* a wrong accept value */
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 5000, NULL);
    tnet_expect(client, TP_MSG_TCP_CLOSED, 5000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_ERROR);
    assert_int_equal(tnet_closed_of(&r)->error, -EBADMSG);
    assert_int_equal(tpt_probe_count(client, TP_MSG_WS_UPGRADED), 0);
    close(fd);
    close(lfd);
    tpt_probe_free(client);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_decoder_split_anywhere),
        cmocka_unit_test(test_ws_utf8_checker),
        T(test_ws_1_framing_text_and_binary_sizes),
        T(test_ws_1_framing_byte_by_byte),
        T(test_ws_1_framing_unmasked_client_frame),
        T(test_ws_2_ping_answered_with_same_payload),
        T(test_ws_2_ping_over_125_bytes),
        T(test_ws_3_reserved_bits),
        T(test_ws_4_reserved_opcodes),
        T(test_ws_5_fragments_reassembled_with_ping_between),
        T(test_ws_5_continuation_without_start),
        T(test_ws_5_new_message_inside_fragmented_one),
        T(test_ws_5_fragmented_control_frame),
        T(test_ws_6_valid_utf8_split_inside_code_points),
        T(test_ws_6_invalid_utf8),
        T(test_ws_6_fail_fast_before_message_ends),
        T(test_ws_7_client_close_echoed),
        T(test_ws_7_bad_close_frames),
        T(test_ws_7_server_close_handshake),
        T(test_ws_9_message_over_limit),
        T(test_ws_upgrade_refusals_and_timeout),
        T(test_ws_upgrade_with_frame_in_same_packet),
        T(test_ws_upgrade_send_before_upgraded_is_held),
        T(test_ws_client_connect_echo_close),
        T(test_ws_client_rejects_bad_answer),
    };
#undef T

    return cmocka_run_group_tests(tests, NULL, NULL);
}
