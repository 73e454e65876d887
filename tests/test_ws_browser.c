/*
 * tests/test_ws_browser.c - a real browser as the WebSocket client:
 * Debian's headless Chromium, driven by playwright-core (the copy in
 * tests/browser/node_modules, as the console's browser test uses), opens
 * ws:// and wss:// connections to the runtime from a page and echoes
 * text, binary and a 100 KB message, then closes with 1000. For wss the
 * browser is told to accept the throwaway certificate
 * (--ignore-certificate-errors): the chain checks are test_tls's.
 * Skips when chromium, node or playwright-core is missing.
 */
#include "test_net_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <troupe/tls.h>
#include <troupe/ws.h>
#include <unistd.h>

#define CHROMIUM "/usr/bin/chromium"
#define PW       TP_SRC_DIR "/tests/browser/node_modules/playwright-core"

static char dir[64];

static const char script[] =
    "const { chromium } = require(process.argv[2]);\n"
    "(async () => {\n"
    "  const b = await chromium.launch({ executablePath: '" CHROMIUM "',\n"
    /* about:blank may not reach loopback otherwise (Local Network
     * Access checks); the certificate is a throwaway one. */
    "    args: ['--ignore-certificate-errors', '--no-sandbox',\n"
    "           '--disable-features=LocalNetworkAccessChecks'] });\n"
    "  const page = await b.newPage();\n"
    "  await page.goto('about:blank');\n"
    "  for (const url of process.argv.slice(3)) {\n"
    "    const r = await page.evaluate(async (url) => {\n"
    "      const ws = new WebSocket(url, ['chat']);\n"
    "      ws.binaryType = 'arraybuffer';\n"
    "      const got = [];\n"
    "      let wake;\n"
    "      ws.onmessage = (e) => { got.push(e.data); if (wake) wake(); };\n"
    "      const next = () => new Promise((res) => {\n"
    "        if (got.length) return res(got.shift());\n"
    "        wake = () => { wake = null; res(got.shift()); }; });\n"
    "      await new Promise((res, rej) => { ws.onopen = res;\n"
    "                                        ws.onerror = rej; });\n"
    "      if (ws.protocol !== 'chat') return 'protocol ' + ws.protocol;\n"
    "      ws.send('hello \\u03ba\\u1f79\\u03c3\\u03bc\\u03b5');\n"
    "      if (await next() !== 'hello \\u03ba\\u1f79\\u03c3\\u03bc\\u03b5')\n"
    "        return 'text';\n"
    "      ws.send(new Uint8Array([0, 1, 255]));\n"
    "      const bin = new Uint8Array(await next());\n"
    "      if (bin.length !== 3 || bin[2] !== 255) return 'binary';\n"
    "      const big = 'y'.repeat(100000);\n"
    "      ws.send(big);\n"
    "      if (await next() !== big) return 'big';\n"
    "      const closed = new Promise((res) => { ws.onclose = res; });\n"
    "      ws.close(1000, 'bye');\n"
    "      const ev = await closed;\n"
    "      return ev.code === 1000 && ev.wasClean ? 'ok' : 'close ' + "
    "ev.code;\n"
    "    }, url);\n"
    "    console.log(r);\n"
    "  }\n"
    "  await b.close();\n"
    "})().catch((e) => { console.log('error ' + e); process.exit(1); });\n";

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
}

static int
echo_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    *(struct tnet_cfg **)state = arg;
    return 0;
}

static const tp_behaviour echo_behaviour = {.name = "ws_browser_echo",
                                            .state_size = sizeof(void *),
                                            .init = echo_init,
                                            .handle = echo_handle};

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

static tp_tls_ctx *
make_tls(void)
{
    char cmd[256], cert[128], key[128];
    tp_tls_opts to;
    tp_tls_ctx *ctx = NULL;

    snprintf(cmd, sizeof(cmd), "sh %s/scripts/gen-test-ca.sh %s", TP_SRC_DIR,
             dir);
    assert_int_equal(system(cmd), 0);
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    tp_tls_opts_init(&to);
    to.server = true;
    to.verify_peer = false;
    to.cert_file = cert;
    to.key_file = key;
    assert_int_equal(tp_tls_ctx_new(&to, &ctx), 0);
    return ctx;
}

static void
test_ws_browser_chromium_ws_and_wss(void **state)
{
    tp_runtime *rt;
    tpt_probe *p;
    struct tnet_cfg cfg;
    tp_listener *l, *sl;
    tp_tls_ctx *ctx;
    char path[128], cmd[768], out[512] = "";
    size_t n;
    FILE *f;
    tpt_rec r;

    (void)state;
    if (access(CHROMIUM, X_OK) != 0 || access(PW, R_OK) != 0 ||
        system("command -v node >/dev/null 2>&1") != 0) {
        fprintf(stderr, "SKIP: chromium, node or playwright-core missing\n");
        skip();
    }
    snprintf(dir, sizeof(dir), "/tmp/tp_wsbr_XXXXXX");
    assert_non_null(mkdtemp(dir));
    rt = tpt_runtime(2);
    p = tpt_probe_new(rt, false);
    memset(&cfg, 0, sizeof(cfg));
    cfg.probe = tpt_probe_pid(p);
    ctx = make_tls();
    l = listen_ws(rt, &cfg, NULL);
    sl = listen_ws(rt, &cfg, ctx);
    tp_tls_ctx_free(ctx);
    snprintf(path, sizeof(path), "%s/page.cjs", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(script, f);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "timeout 90 node %s %s ws://127.0.0.1:%u/echo "
             "wss://localhost:%u/echo 2>&1",
             path, PW, tp_listener_port(l), tp_listener_port(sl));
    f = popen(cmd, "r");
    assert_non_null(f);
    n = fread(out, 1, sizeof(out) - 1, f);
    out[n] = '\0';
    if (pclose(f) != 0 || strcmp(out, "ok\nok\n") != 0)
        fail_msg("browser said: %s", out);
    for (int i = 0; i < 2; i++) {
        tnet_expect(p, EV_OTHER, 10000, &r); /* TP_MSG_WS_CLOSING */
        assert_int_equal(((tp_ws_closing *)r.data)->code, 1000);
        assert_string_equal(((tp_ws_closing *)r.data)->reason, "bye");
    }
    tp_listener_close(l);
    tp_listener_close(sl);
    tpt_probe_free(p);
    tpt_finish(rt);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ws_browser_chromium_ws_and_wss),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
