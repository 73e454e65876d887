/*
 * tests/test_console_http.c - the HTTP side through the in-process
 * transport: /metrics (parsed strictly), /api/<command> JSON for the text
 * commands, the token rules for actions (POST + Bearer), the dashboard
 * page, keep-alive and pipelining, and bad requests (garbage, oversized
 * headers and URLs, unknown methods) answered with the right status while
 * the handler stays usable or closes cleanly.
 */
#include "console/promcheck.h"
#include "test_console_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    tcc *t;
};

static char body[1 << 20];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static int
setup(void **st)
{
    static struct fixture f;
    tp_console_opts o;

    f.rt = tpt_runtime(2);
    tp_console_opts_init(&o);
    o.token = "sesame";
    assert_int_equal(tp__console_create(f.rt, &o, &f.con), 0);
    f.t = tcc_open(f.con, true);
    *st = &f;
    return 0;
}

static int
teardown(void **st)
{
    struct fixture *f = *st;

    tcc_close(f->t);
    tp__console_destroy(f->con);
    tpt_finish(f->rt);
    return 0;
}

static int
get(tcc *t, const char *path)
{
    char req[512];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
             path);
    return tcc_http(t, req, body, sizeof(body), 10000);
}

static int
post(tcc *t, const char *path, const char *token)
{
    char req[512];

    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sContent-Length: "
             "0\r\n\r\n",
             path, token ? "Authorization: Bearer " : "", token ? token : "",
             token ? "\r\n" : "");
    return tcc_http(t, req, body, sizeof(body), 10000);
}

static void
test_console_http_metrics(void **st)
{
    struct fixture *f = *st;
    char err[256];

    assert_int_equal(get(f->t, "/metrics"), 200);
    if (tp_promcheck(body, strlen(body), NULL, NULL, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_non_null(strstr(body, "# TYPE troupe_actors gauge\n"));
    assert_non_null(strstr(body, "troupe_scheduler_run_queue_length{"));
}

static void
test_console_http_api_json(void **st)
{
    struct fixture *f = *st;
    tp_pid w;
    char path[128], pid[32];

    assert_int_equal(get(f->t, "/api/stats"), 200);
    assert_non_null(strstr(body, "{\"ok\":true,\"data\":{\"uptime\":"));
    assert_int_equal(get(f->t, "/api/sched"), 200);
    assert_non_null(strstr(body, "\"schedulers\":["));
    assert_int_equal(get(f->t, "/api/ps?sort=handled&limit=2"), 200);
    assert_non_null(strstr(body, "\"sort\":\"handled\""));
    assert_int_equal(get(f->t, "/api/ps?sort=bogus"), 400);
    assert_non_null(strstr(body, "{\"ok\":false,\"error\":\"unknown sort"));
    assert_int_equal(tp_runtime_spawn(f->rt, &worker, NULL, NULL, &w), 0);
    tp_pid_format(w, pid, sizeof(pid));
    snprintf(path, sizeof(path), "/api/info/%%3C%s", pid + 1); /* %3C = < */
    assert_int_equal(get(f->t, path), 200);
    assert_non_null(strstr(body, "\"behaviour\":\"worker\""));
    assert_int_equal(get(f->t, "/api/info/<77777.1>"), 404);
    assert_int_equal(get(f->t, "/api/nope"), 404);
    assert_int_equal(get(f->t, "/api/help"), 200);
    assert_int_equal(get(f->t, "/api/loglevel"), 200);
    assert_int_equal(get(f->t, "/api/trace/x"), 400); /* needs a session */
    assert_int_equal(get(f->t, "/nope"), 404);
    /* DNS rebinding: a foreign Host is refused. */
    assert_int_equal(tcc_http(f->t,
                              "GET /api/stats HTTP/1.1\r\nHost: evil.example"
                              ":7071\r\n\r\n",
                              body, sizeof(body), 5000),
                     403);
    assert_int_equal(tcc_http(f->t,
                              "GET /api/stats HTTP/1.1\r\nHost: localhost"
                              ":7071\r\n\r\n",
                              body, sizeof(body), 5000),
                     200);
    assert_int_equal(tcc_http(f->t,
                              "GET /api/stats HTTP/1.1\r\nHost: [::1]:7071"
                              "\r\n\r\n",
                              body, sizeof(body), 5000),
                     200);
}

static void
test_console_http_actions_need_post_and_token(void **st)
{
    struct fixture *f = *st;
    tp_actor_info a;
    tp_pid w;
    char path[128], pid[32];

    assert_int_equal(tp_runtime_spawn(f->rt, &worker, NULL, NULL, &w), 0);
    tp_pid_format(w, pid, sizeof(pid));
    snprintf(path, sizeof(path), "/api/kill/%s", pid);
    assert_int_equal(get(f->t, path), 405);
    assert_int_equal(post(f->t, path, NULL), 401);
    assert_int_equal(post(f->t, path, "wrong"), 401);
    assert_int_equal(post(f->t, path, "sesam"), 401);
    assert_int_equal(post(f->t, "/api/loglevel/debug", NULL), 401);
    assert_int_equal(tp_actor_peek(f->rt, w, &a), 0); /* still alive */
    assert_int_equal(post(f->t, path, "sesame"), 200);
    for (int i = 0; i < 200 && tp_actor_peek(f->rt, w, &a) == 0; i++)
        tpt_sleep_ms(5);
    assert_int_equal(tp_actor_peek(f->rt, w, &a), -ESRCH);
    assert_int_equal(post(f->t, path, "sesame"), 404);
}

static void
test_console_http_dashboard(void **st)
{
    struct fixture *f = *st;

    assert_int_equal(get(f->t, "/"), 200);
    assert_non_null(strstr(body, "<html"));
    assert_int_equal(strlen(body), tp__dashboard_len);
    /* Self-contained: no external scripts, styles or fonts. */
    assert_null(strstr(body, "src=\"http"));
    assert_null(strstr(body, "href=\"http"));
}

static void
test_console_http_pipelined_keepalive(void **st)
{
    struct fixture *f = *st;
    char both[256];

    snprintf(both, sizeof(both),
             "GET /api/stats HTTP/1.1\r\nHost: localhost\r\n\r\n"
             "GET /api/sched HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_int_equal(tcc_http(f->t, both, body, sizeof(body), 5000), 200);
    assert_non_null(strstr(body, "\"uptime\""));
    assert_int_equal(tcc_http(f->t, "", body, sizeof(body), 5000), 200);
    assert_non_null(strstr(body, "\"schedulers\""));
    assert_false(tcc_closed(f->t));
}

static void
test_console_http_bad_requests(void **st)
{
    struct fixture *f = *st;
    static char big[40000];
    tcc *t;

    /* Garbage: 400 and the connection closes. */
    assert_int_equal(
        tcc_http(f->t, "\x16\x03\x01garbage\r\n\r\n", body, sizeof(body), 5000),
        400);
    assert_int_equal(tcc_wait_closed(f->t, 5000), 0);
    /* Oversized header. */
    t = tcc_open(f->con, true);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'a', sizeof(big) - 19 - 5);
    memcpy(big + sizeof(big) - 5, "\r\n\r\n", 5);
    assert_int_equal(tcc_http(t, big, body, sizeof(body), 5000), 413);
    tcc_close(t);
    t = tcc_open(f->con, true);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 3000);
    memcpy(big + 3005, " HTTP/1.1\r\n\r\n", 14);
    assert_int_equal(tcc_http(t, big, body, sizeof(body), 5000), 414);
    tcc_close(t);
    t = tcc_open(f->con, true);
    assert_int_equal(
        tcc_http(t, "DELETE /api/stats HTTP/1.1\r\n\r\n", body, 1024, 5000),
        405);
    /* Still usable after a refused method (keep-alive). */
    assert_int_equal(get(t, "/api/stats"), 200);
    tcc_close(t);
    tcc_close(f->t); /* closed by the server after the garbage */
    f->t = tcc_open(f->con, true);
}

static void
test_console_http_connection_limit(void **st)
{
    struct fixture *f = *st;
    tcc *t[40];
    char why[256];
    int opened = 1, refused = 0; /* f->t is one */

    for (int i = 0; i < 40; i++) {
        t[i] = tcc_try_open(f->con, true, why, sizeof(why));
        if (t[i] != NULL) {
            opened++;
        } else {
            refused++;
            assert_non_null(strstr(why, "503"));
        }
    }
    assert_int_equal(opened, 32);
    assert_int_equal(refused, 9);
    assert_int_equal(get(f->t, "/api/stats"), 200);
    for (int i = 0; i < 40; i++)
        if (t[i] != NULL)
            tcc_close(t[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_http_metrics, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_http_api_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_console_http_actions_need_post_and_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_http_dashboard, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_http_pipelined_keepalive,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_http_bad_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_http_connection_limit,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
