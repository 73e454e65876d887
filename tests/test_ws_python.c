/*
 * tests/test_ws_python.c - a real WebSocket client against the runtime:
 * Python's `websockets` package (Debian python3-websockets) echoes text,
 * binary, a fragmented and a 200 KB message, pings, and closes with 1000,
 * over ws:// and over wss:// (TLS with a throwaway CA from
 * scripts/gen-test-ca.sh). Skips when /usr/bin/python3 or the package is
 * missing.
 */
#include "test_net_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <troupe/tls.h>
#include <troupe/ws.h>
#include <unistd.h>

#define PY "/usr/bin/python3"

static char dir[64];

static const char script[] =
    "import asyncio, ssl, sys, websockets\n"
    "async def main(uri, ca):\n"
    "    ctx = ssl.create_default_context(cafile=ca) if ca else None\n"
    "    async with websockets.connect(uri, ssl=ctx, max_size=None,\n"
    "                                  subprotocols=['chat']) as ws:\n"
    "        assert ws.subprotocol == 'chat', ws.subprotocol\n"
    "        await ws.send('hello')\n"
    "        assert await ws.recv() == 'hello'\n"
    "        await ws.send(b'\\x00\\x01\\xff')\n"
    "        assert await ws.recv() == b'\\x00\\x01\\xff'\n"
    "        await ws.send(['frag', 'men', 'ted \\u03ba\\u1f79'])\n"
    "        assert await ws.recv() == 'fragmented \\u03ba\\u1f79'\n"
    "        big = 'x' * 200000\n"
    "        await ws.send(big)\n"
    "        assert await ws.recv() == big\n"
    "        pong = await ws.ping(b'are you there')\n"
    "        await asyncio.wait_for(pong, 5)\n"
    "        await ws.close(1000, 'done')\n"
    "        assert ws.close_code == 1000, ws.close_code\n"
    "    print('ok')\n"
    "asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "
    "None))\n";

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct tnet_cfg *cfg = *(struct tnet_cfg **)state;

    if (m->type == TP_MSG_WS_TEXT)
        tp_ws_send_text(ctx, tp_msg_conn(m), m->data, m->len);
    else if (m->type == TP_MSG_WS_BINARY)
        tp_ws_send_binary(ctx, tp_msg_conn(m), m->data, m->len);
    else if (m->type == TP_MSG_WS_CLOSING)
        tp_send(ctx, cfg->probe, EV_OTHER, m->data, m->len);
    else if (m->type == TP_MSG_TCP_CLOSED)
        tp_send(ctx, cfg->probe, EV_CLOSED, m->data, m->len);
}

static int
echo_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(struct tnet_cfg **)state = arg;
    return 0;
}

static const tp_behaviour echo_behaviour = {.name = "ws_py_echo",
                                            .state_size = sizeof(void *),
                                            .init = echo_init,
                                            .handle = echo_handle};

static bool
have_websockets(void)
{
    return access(PY, X_OK) == 0 &&
           system(PY " -c 'import websockets' >/dev/null 2>&1") == 0;
}

static int
run_client(const char *uri, const char *ca)
{
    char path[128], cmd[512], out[256] = "";
    FILE *f;
    size_t n;
    int st;

    snprintf(path, sizeof(path), "%s/client.py", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "timeout 60 " PY " %s %s %s", path, uri,
             ca != NULL ? ca : "");
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    st = pclose(f);
    if (strcmp(out, "ok\n") != 0)
        fprintf(stderr, "client said: %s\n", out);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && strcmp(out, "ok\n") == 0
               ? 0
               : -1;
}

static void
check_closed(tpt_probe *p)
{
    tpt_rec r;

    tnet_expect(p, EV_OTHER, 10000, &r); /* the CLOSING payload */
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    assert_string_equal(((tp_ws_closing *)r.data)->reason, "done");
    tnet_expect(p, EV_CLOSED, 10000, &r);
    assert_int_equal(tnet_closed_of(&r)->reason, TP_NET_CLOSE_PEER);
}

static tp_listener *
listen_ws(tp_runtime *rt, struct tnet_cfg *cfg, tp_tls_ctx *tls)
{
    tp_listen_opts o;
    tp_ws_opts wo;
    tp_listener *l = NULL;

    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &echo_behaviour;
    o.arg = cfg;
    o.tls = tls;
    tp_ws_opts_init(&wo);
    wo.protocols = "chat";
    o.ws = &wo;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    return l;
}

static void
test_ws_python_client_ws_and_wss(void **state)
{
    tp_runtime *rt;
    tpt_probe *p;
    struct tnet_cfg cfg;
    tp_listener *l, *sl;
    tp_tls_ctx *ctx = NULL;
    tp_tls_opts to;
    char uri[128], cmd[256], cert[128], key[128], ca[128];

    (void)state;
    if (!have_websockets()) {
        fprintf(stderr, "SKIP: " PY " with websockets is not installed\n");
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/tp_wspy_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    rt = tpt_runtime(2);
    p = tpt_probe_new(rt, false);
    memset(&cfg, 0, sizeof(cfg));
    cfg.probe = tpt_probe_pid(p);
    l = listen_ws(rt, &cfg, NULL);
    snprintf(uri, sizeof(uri), "ws://127.0.0.1:%u/echo", tp_listener_port(l));
    assert_int_equal(run_client(uri, NULL), 0);
    check_closed(p);
    /* wss: the same, through TLS. */
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    tp_tls_opts_init(&to);
    to.server = true;
    to.verify_peer = false;
    to.cert_file = cert;
    to.key_file = key;
    assert_int_equal(tp_tls_ctx_new(&to, &ctx), 0);
    sl = listen_ws(rt, &cfg, ctx);
    tp_tls_ctx_free(ctx);
    snprintf(uri, sizeof(uri), "wss://localhost:%u/echo", tp_listener_port(sl));
    assert_int_equal(run_client(uri, ca), 0);
    check_closed(p);
    tp_listener_close(l);
    tp_listener_close(sl);
    tpt_probe_free(p);
    tpt_finish(rt);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The runtime's WebSocket client: against Python's websockets server
 * (ws://), then over wss:// against the runtime's own wss listener with
 * the certificate verified. */
static const char server_script[] =
    "import asyncio, os, sys, websockets\n"
    "async def echo(ws):\n"
    "    async for m in ws:\n"
    "        await ws.send(m)\n"
    "async def main():\n"
    "    async with websockets.serve(echo, '127.0.0.1', 0,\n"
    "                                subprotocols=['chat']) as srv:\n"
    "        print(srv.sockets[0].getsockname()[1], os.getpid(), flush=True)\n"
    "        await asyncio.sleep(60)\n"
    "asyncio.run(main())\n";

static void
send_fn(tp_ctx *ctx, void *arg)
{
    struct tnet_conn_req *cr = arg;

    cr->result = tp_ws_send_text(ctx, cr->conn, "from troupe", 11);
}

static void
close_fn(tp_ctx *ctx, void *arg)
{
    struct tnet_conn_req *cr = arg;

    cr->result = tp_ws_close(ctx, cr->conn, 1000);
}

/* Connects, upgrades, echoes one text message, closes with 1000. */
static void
client_round(tpt_probe *client, struct tnet_conn_req *cr)
{
    tpt_rec r;

    tpt_probe_do(client, tnet_connect_fn, cr);
    assert_int_equal(cr->result, 0);
    tnet_expect(client, TP_MSG_TCP_CONNECTED, 10000, &r);
    assert_int_equal(((tp_tcp_connected *)r.data)->error, 0);
    tnet_expect(client, TP_MSG_WS_UPGRADED, 10000, &r);
    assert_string_equal(((tp_ws_upgraded *)r.data)->protocol, "chat");
    tpt_probe_do(client, send_fn, cr);
    tnet_expect(client, TP_MSG_WS_TEXT, 10000, &r);
    assert_int_equal(r.len, 11);
    assert_memory_equal(r.data, "from troupe", 11);
    tpt_probe_do(client, close_fn, cr);
    tnet_expect(client, TP_MSG_WS_CLOSING, 10000, &r);
    assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
    tnet_expect(client, TP_MSG_TCP_CLOSED, 10000, &r);
    assert_true(tnet_closed_of(&r)->reason == TP_NET_CLOSE_LOCAL ||
                tnet_closed_of(&r)->reason == TP_NET_CLOSE_PEER);
}

static void
test_ws_python_server_and_wss_client(void **state)
{
    tp_runtime *rt;
    tpt_probe *client, *p;
    struct tnet_cfg cfg;
    struct tnet_conn_req cr;
    tp_tls_ctx *sctx = NULL, *cctx = NULL;
    tp_tls_opts to;
    tp_ws_opts wo;
    tp_listener *sl;
    char path[128], cmd[256], buf[128], cert[128], key[128], ca[128];
    FILE *srv, *f;
    unsigned port = 0;
    int spid = 0;

    (void)state;
    if (!have_websockets()) {
        fprintf(stderr, "SKIP: " PY " with websockets is not installed\n");
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/tp_wspy_XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/server.py", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(server_script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "timeout 60 " PY " %s", path);
    srv = popen(cmd, "r");
    assert_non_null(srv);
    assert_non_null(fgets(buf, sizeof(buf), srv));
    assert_int_equal(sscanf(buf, "%u %d", &port, &spid), 2);
    assert_true(port > 0 && spid > 0);
    rt = tpt_runtime(2);
    client = tpt_probe_new(rt, false);
    tp_ws_opts_init(&wo);
    wo.protocols = "chat";
    tp_connect_opts_init(&cr.o);
    cr.o.address = "127.0.0.1";
    cr.o.port = (uint16_t)port;
    cr.o.ws = &wo;
    client_round(client, &cr);
    /* wss: our client (verifying the chain and "localhost") and our
     * listener. */
    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    tp_tls_opts_init(&to);
    to.server = true;
    to.verify_peer = false;
    to.cert_file = cert;
    to.key_file = key;
    assert_int_equal(tp_tls_ctx_new(&to, &sctx), 0);
    tp_tls_opts_init(&to);
    to.ca_file = ca;
    assert_int_equal(tp_tls_ctx_new(&to, &cctx), 0);
    p = tpt_probe_new(rt, false);
    memset(&cfg, 0, sizeof(cfg));
    cfg.probe = tpt_probe_pid(p);
    sl = listen_ws(rt, &cfg, sctx);
    cr.o.port = tp_listener_port(sl);
    cr.o.tls = cctx;
    cr.o.server_name = "localhost";
    client_round(client, &cr);
    tp_tls_ctx_free(sctx);
    tp_tls_ctx_free(cctx);
    tp_listener_close(sl);
    tpt_probe_free(client);
    tpt_probe_free(p);
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
        cmocka_unit_test(test_ws_python_client_ws_and_wss),
        cmocka_unit_test(test_ws_python_server_and_wss_client),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
