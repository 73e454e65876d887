/*
 * samples/http/http.c - the HTTP service: a connection actor that feeds
 * what it reads to its http_conn (http_conn.c) and writes the responses.
 */
#include "http.h"

#include "http_conn.h"

#include <stdio.h>

/* samples/chat/chat.html, embedded at build time (samples/CMakeLists.txt):
 * the browser chat, served at /chat. */
extern const char sample_chat_html[];
extern const size_t sample_chat_html_len;

#define KEEPALIVE_MS 30000 /* an idle keep-alive connection is closed */

struct http_actor {
    tp_ctx *ctx; /* during a callback only */
    tp_conn conn;
    struct http_conn http;
};

static void
write_out(void *user, const char *data, size_t len)
{
    struct http_actor *a = user;

    tp_tcp_send(a->ctx, a->conn, data, len);
}

/* GET /stats: a few of the runtime's numbers, as JSON. */
static size_t
stats_json(void *arg, char *buf, size_t cap)
{
    tp_runtime *rt = arg;
    tp_runtime_stats rs;
    tp_net_stats ns;
    int n;

    tp_runtime_get_stats(rt, &rs);
    tp_net_get_stats(rt, &ns);
    n = snprintf(buf, cap,
                 "{\"actors\":%llu,\"messages\":%llu,\"connections\":%llu,"
                 "\"accepted\":%llu,\"schedulers\":%u}",
                 (unsigned long long)rs.actors, (unsigned long long)rs.messages,
                 (unsigned long long)ns.conns, (unsigned long long)ns.accepted,
                 tp_runtime_schedulers(rt));
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void
on_data(tp_ctx *ctx, struct http_actor *a, const tp_msg *msg)
{
    char date[40];
    struct http_env env = {
        date, stats_json,       tp_ctx_runtime(ctx), write_out,
        a,    sample_chat_html, sample_chat_html_len};

    http_date(date, sizeof(date));
    a->ctx = ctx;
    a->conn = tp_msg_conn(msg);
    if (!http_conn_feed(&a->http, msg->data, msg->len, &env))
        tp_tcp_close(ctx, a->conn); /* after the responses are sent */
}

static void
http_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    if (msg->type == TP_MSG_TCP_DATA)
        on_data(ctx, state, msg);
}

static int
http_init(tp_ctx *ctx, void *state, void *arg)
{
    struct http_actor *a = state;

    (void)ctx;
    (void)arg;
    http_conn_init(&a->http);
    return 0;
}

static const tp_behaviour http_behaviour = {
    .name = "http.conn",
    .state_size = sizeof(struct http_actor),
    .init = http_init,
    .handle = http_handle,
};

int
http_start(tp_runtime *rt, const struct sample_opts *o, int port,
           tp_listener **out)
{
    tp_conn_opts co;
    int err;

    if ((err = sample_conn_supervisor(rt, "http", "http.conns",
                                      &http_behaviour)) != 0)
        return sample_fail(o, "http supervisor", err);
    tp_conn_opts_init(&co);
    co.idle_timeout_ms = KEEPALIVE_MS;
    return sample_listen(rt, o, "http", port, &http_behaviour, NULL,
                         "http.conns", &co, out);
}
