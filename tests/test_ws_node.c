/*
 * tests/test_ws_node.c - Node's `ws` package (8.23.1, pinned in
 * tests/node/package-lock.json, installed by `npm ci --prefix tests/node`
 * from scripts/setup-deps.sh --test) against the runtime's WebSocket
 * mode, over ws:// and over wss:// (TLS with a throwaway CA from
 * scripts/gen-test-ca.sh; the client side verifies it).
 *
 * 1. ws as the client of a Troupe echo listener: tests/node/ws_client.mjs
 *    checks what it receives: text, binary and empty echoes, fragmented
 *    text (split inside a UTF-8 character) and fragmented binary with a
 *    ping between the fragments, 200 KB and 1 MiB (max_message) messages,
 *    pongs, and the close codes 1000, 4000 (its own), 4001 (the server's),
 *    1007 (invalid UTF-8) and 1009 (over max_message, on a second
 *    listener with max_message 1000: see too_big in ws_client.mjs for
 *    why not over the default 1 MiB). This side checks
 *    what the server's connection actors saw of each connection.
 * 2. ws as the server of Troupe's client (tests/node/ws_server.mjs):
 *    subprotocol, text, binary and 100 KB echoes, a fragmented message
 *    from the server, the server's ping answered, close 1000 as the
 *    server saw it.
 *
 * Skips, saying why (CTest: "Skipped"), when node or the package is
 * missing.
 */
#include "test_net_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <troupe/tls.h>
#include <troupe/ws.h>
#include <unistd.h>

#define NODE_DIR  TP_SRC_DIR "/tests/node"
#define EV_REPORT EV_OTHER

static char dir[64];

/* What one connection actor saw, sent to the probe at TP_MSG_TCP_CLOSED. */
struct report {
    char path[64];
    char protocol[16];
    int32_t closing_code; /* -1: no TP_MSG_WS_CLOSING */
    char reason[32];
    int32_t closed_reason;
    int32_t error;
    uint32_t messages; /* text + binary messages received */
};

struct node_conn {
    tp_pid probe;
    struct report r;
};

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct node_conn *s = state;
    const tp_tcp_closed *cl;

    if (m->type == TP_MSG_WS_UPGRADED) {
        const tp_ws_upgraded *u = m->data;

        snprintf(s->r.path, sizeof(s->r.path), "%.63s", u->path);
        snprintf(s->r.protocol, sizeof(s->r.protocol), "%.15s", u->protocol);
    } else if (m->type == TP_MSG_WS_TEXT) {
        s->r.messages++;
        if (m->len > 6 && memcmp(m->data, "close ", 6) == 0) {
            char code[8] = "";

            memcpy(code, (const char *)m->data + 6,
                   m->len - 6 < sizeof(code) - 1 ? m->len - 6
                                                 : sizeof(code) - 1);
            tp_ws_close(ctx, tp_msg_conn(m), (uint16_t)atoi(code));
        } else {
            tp_ws_send_text(ctx, tp_msg_conn(m), m->data, m->len);
        }
    } else if (m->type == TP_MSG_WS_BINARY) {
        s->r.messages++;
        tp_ws_send_binary(ctx, tp_msg_conn(m), m->data, m->len);
    } else if (m->type == TP_MSG_WS_CLOSING) {
        const tp_ws_closing *c = m->data;

        s->r.closing_code = c->code;
        snprintf(s->r.reason, sizeof(s->r.reason), "%.31s", c->reason);
    } else if (m->type == TP_MSG_TCP_CLOSED) {
        cl = m->data;
        s->r.closed_reason = (int32_t)cl->reason;
        s->r.error = cl->error;
        tp_send(ctx, s->probe, EV_REPORT, &s->r, sizeof(s->r));
    }
}

static int
echo_init(tp_ctx *ctx, void *state, void *arg)
{
    struct node_conn *s = state;

    (void)ctx;
    s->probe = *(tp_pid *)arg;
    s->r.closing_code = -1;
    return 0;
}

static const tp_behaviour echo_behaviour = {.name = "ws_node_echo",
                                            .state_size =
                                                sizeof(struct node_conn),
                                            .init = echo_init,
                                            .handle = echo_handle};

/* NULL when the client can run, else why not. */
static const char *
missing(void)
{
    if (system("command -v node >/dev/null 2>&1") != 0)
        return "node is not installed (scripts/setup-deps.sh --test)";
    if (access(NODE_DIR "/node_modules/ws/package.json", R_OK) != 0)
        return "tests/node/node_modules/ws is not installed (npm ci "
               "--prefix tests/node; scripts/setup-deps.sh --test runs it "
               "when the npm registry is reachable)";
    return NULL;
}

static const char expected_out[] =
    "ok main\nok custom\nok server_close\nok bad_utf8\nok too_big\n";

static void
run_client(const char *base, const char *small, const char *ca)
{
    char cmd[512], out[1024] = "";
    FILE *f;
    size_t n;
    int st;

    snprintf(cmd, sizeof(cmd), "timeout %u node %s/ws_client.mjs %s %s %s",
             120 * tpt_slow(), NODE_DIR, base, small, ca != NULL ? ca : "");
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    st = pclose(f);
    if (strcmp(out, expected_out) != 0)
        fprintf(stderr, "%s: the client said:\n%s", base, out);
    assert_string_equal(out, expected_out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The five connections' reports, in any order (each actor reports when
 * its connection closed), checked by path. */
static void
check_reports(tpt_probe *p)
{
    bool seen[5] = {false};

    for (int i = 0; i < 5; i++) {
        tpt_rec rec;
        struct report r;

        tnet_expect(p, EV_REPORT, 20000, &rec);
        assert_int_equal(rec.len, sizeof(r));
        memcpy(&r, rec.data, sizeof(r));
        assert_string_equal(r.protocol, "chat");
        if (strcmp(r.path, "/main") == 0) {
            assert_false(seen[0]);
            seen[0] = true;
            /* text, binary, empty, 2 fragmented, 200 KB, 1 MiB */
            assert_int_equal(r.messages, 7);
            assert_int_equal(r.closing_code, 1000);
            assert_string_equal(r.reason, "done");
            assert_int_equal(r.closed_reason, TP_NET_CLOSE_PEER);
            assert_int_equal(r.error, 0);
        } else if (strcmp(r.path, "/custom") == 0) {
            assert_false(seen[1]);
            seen[1] = true;
            assert_int_equal(r.closing_code, 4000);
            assert_string_equal(r.reason, "custom");
            assert_int_equal(r.closed_reason, TP_NET_CLOSE_PEER);
        } else if (strcmp(r.path, "/server_close") == 0) {
            assert_false(seen[2]);
            seen[2] = true;
            assert_int_equal(r.messages, 1);
            assert_int_equal(r.closing_code, 4001); /* the client's answer */
            assert_int_equal(r.closed_reason, TP_NET_CLOSE_LOCAL);
        } else if (strcmp(r.path, "/bad_utf8") == 0) {
            assert_false(seen[3]);
            seen[3] = true;
            assert_int_equal(r.messages, 0);
            assert_int_equal(r.closed_reason, TP_NET_CLOSE_ERROR);
            assert_int_equal(r.error, -EILSEQ);
        } else if (strcmp(r.path, "/too_big") == 0) {
            assert_false(seen[4]);
            seen[4] = true;
            assert_int_equal(r.messages, 0);
            assert_int_equal(r.closed_reason, TP_NET_CLOSE_ERROR);
            assert_int_equal(r.error, -EMSGSIZE);
        } else {
            fail_msg("a connection on unexpected path '%s'", r.path);
        }
    }
}

static tp_listener *
listen_ws(tp_runtime *rt, tp_pid *probe, tp_tls_ctx *tls, uint32_t max)
{
    tp_listen_opts o;
    tp_ws_opts wo;
    tp_listener *l = NULL;

    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &echo_behaviour;
    o.arg = probe;
    o.tls = tls;
    tp_ws_opts_init(&wo);
    wo.protocols = "chat";
    if (max != 0)
        wo.max_message = max;
    o.ws = &wo;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    return l;
}

static void
test_ws_node_client_ws_and_wss(void **state)
{
    tp_runtime *rt;
    tpt_probe *p;
    tp_pid probe;
    tp_listener *l, *ls, *sl, *sls;
    tp_tls_ctx *ctx = NULL;
    tp_tls_opts to;
    char base[128], small[128], cmd[256], cert[128], key[128], ca[128];
    const char *why = missing();

    (void)state;
    if (why != NULL) {
        fprintf(stderr, "SKIP: %s\n", why);
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/tp_wsnode_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    rt = tpt_runtime(2);
    p = tpt_probe_new(rt, false);
    probe = tpt_probe_pid(p);
    l = listen_ws(rt, &probe, NULL, 0);
    ls = listen_ws(rt, &probe, NULL, 1000);
    snprintf(base, sizeof(base), "ws://127.0.0.1:%u", tp_listener_port(l));
    snprintf(small, sizeof(small), "ws://127.0.0.1:%u", tp_listener_port(ls));
    run_client(base, small, NULL);
    check_reports(p);
    /* wss: the same, through TLS, the chain and "localhost" verified by
     * the client. */
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    tp_tls_opts_init(&to);
    to.server = true;
    to.verify_peer = false;
    to.cert_file = cert;
    to.key_file = key;
    assert_int_equal(tp_tls_ctx_new(&to, &ctx), 0);
    sl = listen_ws(rt, &probe, ctx, 0);
    sls = listen_ws(rt, &probe, ctx, 1000);
    tp_tls_ctx_free(ctx);
    snprintf(base, sizeof(base), "wss://localhost:%u", tp_listener_port(sl));
    snprintf(small, sizeof(small), "wss://localhost:%u", tp_listener_port(sls));
    run_client(base, small, ca);
    check_reports(p);
    tp_listener_close(l);
    tp_listener_close(ls);
    tp_listener_close(sl);
    tp_listener_close(sls);
    tpt_probe_free(p);
    tpt_finish(rt);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------------- */
/* Troupe's WebSocket client against Node's ws server (ws_server.mjs).    */

struct client_req {
    tp_conn conn;
    const char *data;
    size_t len;
    int result;
};

static void
send_text_fn(tp_ctx *ctx, void *arg)
{
    struct client_req *r = arg;

    r->result = tp_ws_send_text(ctx, r->conn, r->data, r->len);
}

static void
send_binary_fn(tp_ctx *ctx, void *arg)
{
    struct client_req *r = arg;

    r->result = tp_ws_send_binary(ctx, r->conn, r->data, r->len);
}

static void
close_fn(tp_ctx *ctx, void *arg)
{
    struct client_req *r = arg;

    r->result = tp_ws_close(ctx, r->conn, 1000);
}

/* Reads the server's lines up to "closed <code>"; checks it saw the
 * subprotocol, the pong of its ping and the code the client closed with.
 */
static void
check_server_saw(FILE *srv, const char *want_closed)
{
    char line[256];
    bool open = false, pong = false;

    while (fgets(line, sizeof(line), srv) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "open chat") == 0)
            open = true;
        else if (strcmp(line, "pong hb") == 0)
            pong = true;
        else if (strncmp(line, "closed ", 7) == 0) {
            assert_string_equal(line, want_closed);
            assert_true(open);
            assert_true(pong);
            return;
        } else
            fail_msg("the ws server said '%s'", line);
    }
    fail_msg("the ws server ended without a close");
}

/* Connects, upgrades, echoes text and binary, asks for a fragmented
 * message, closes with 1000; the server's view is checked after. */
static void
client_round(tpt_probe *client, struct tnet_conn_req *cr, FILE *srv)
{
    static const char bin[] = {0, 1, 2, (char)0x80, (char)0xff};
    struct client_req q;
    char *big = malloc(100000);
    tpt_rec r;

    assert_non_null(big);
    memset(big, 'z', 100000);
    tpt_probe_do(client, tnet_connect_fn, cr);
    assert_int_equal(cr->result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 10000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, 0);
    tnet_expect(client, TP_MSG_WS_UPGRADED, 10000, &r);
    assert_string_equal(((tp_ws_upgraded *)r.data)->protocol, "chat");
    q.conn = cr->conn;
    q.data = "from troupe \xce\xba";
    q.len = strlen(q.data);
    tpt_probe_do(client, send_text_fn, &q);
    assert_int_equal(q.result, 0);
    tnet_expect(client, TP_MSG_WS_TEXT, 10000, &r);
    assert_int_equal(r.len, q.len);
    assert_memory_equal(r.data, q.data, q.len);
    q.data = bin;
    q.len = sizeof(bin);
    tpt_probe_do(client, send_binary_fn, &q);
    assert_int_equal(q.result, 0);
    tnet_expect(client, TP_MSG_WS_BINARY, 10000, &r);
    assert_int_equal(r.len, sizeof(bin));
    assert_memory_equal(r.data, bin, sizeof(bin));
    /* 100 KB: a 64-bit length each way (the probe keeps the first
     * TPT_DATA_MAX bytes: the length is what is checked whole). */
    q.data = big;
    q.len = 100000;
    tpt_probe_do(client, send_binary_fn, &q);
    assert_int_equal(q.result, 0);
    tnet_expect(client, TP_MSG_WS_BINARY, 10000, &r);
    assert_int_equal(r.len, 100000);
    assert_memory_equal(r.data, big, TPT_DATA_MAX);
    q.data = "fragments please";
    q.len = strlen(q.data);
    tpt_probe_do(client, send_text_fn, &q);
    tnet_expect(client, TP_MSG_WS_TEXT, 10000, &r);
    assert_int_equal(r.len, 10);
    assert_memory_equal(r.data, "fragmented", 10);
    tpt_probe_do(client, close_fn, &q);
    assert_int_equal(q.result, 0);
    tnet_expect(client, TP_MSG_WS_CLOSING, 10000, &r);
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    tnet_expect(client, TP_MSG_TCP_CLOSED, 10000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_LOCAL);
    check_server_saw(srv, "closed 1000");
    free(big);
}

static void
test_ws_node_server_ws_and_wss_client(void **state)
{
    tp_runtime *rt;
    tpt_probe *client;
    struct tnet_conn_req cr;
    tp_tls_ctx *cctx = NULL;
    tp_tls_opts to;
    tp_ws_opts wo;
    char cmd[512], buf[128];
    FILE *srv;
    unsigned port = 0, tls_port = 0;
    int spid = 0;
    const char *why = missing();

    (void)state;
    if (why != NULL) {
        fprintf(stderr, "SKIP: %s\n", why);
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/tp_wsnode_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd),
             "exec timeout %u node %s/ws_server.mjs %s/server.pem "
             "%s/server.key",
             60 * tpt_slow(), NODE_DIR, dir, dir);
    srv = popen(cmd, "r");
    assert_non_null(srv);
    assert_non_null(fgets(buf, sizeof(buf), srv));
    assert_int_equal(sscanf(buf, "ports %u %u %d", &port, &tls_port, &spid), 3);
    assert_true(spid > 0);
    rt = tpt_runtime(2);
    client = tpt_probe_new(rt, false);
    tp_ws_opts_init(&wo);
    wo.protocols = "chat";
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = (uint16_t)port;
    cr.o.ws = &wo;
    client_round(client, &cr, srv);
    /* wss: our client verifying Node's certificate (chain and
     * "localhost"). */
    snprintf(buf, sizeof(buf), "%s/ca.pem", dir);
    tp_tls_opts_init(&to);
    to.ca_file = buf;
    assert_int_equal(tp_tls_ctx_new(&to, &cctx), 0);
    cr.o.port = (uint16_t)tls_port;
    cr.o.tls = cctx;
    cr.o.server_name = "localhost";
    client_round(client, &cr, srv);
    tp_tls_ctx_free(cctx);
    tpt_probe_free(client);
    tpt_finish(rt);
    kill((pid_t)spid, SIGTERM); /* the server we started */
    pclose(srv);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_node_client_ws_and_wss),
        cmocka_unit_test(test_ws_node_server_ws_and_wss_client),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
