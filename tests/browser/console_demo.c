/*
 * tests/browser/console_demo.c - the server the dashboard test drives: a
 * runtime with a known supervision tree
 *
 *   root
 *   └─ app (one_for_one)
 *      ├─ worker_a   (permanent; gets a message every 5 ms)
 *      ├─ worker_b   (permanent; the ticker that sends them)
 *      └─ pool       (dynamic supervisor, 3 children)
 *
 * and the console's HTTP port on 127.0.0.1 (any free port). Prints
 * "PORT <port> TOKEN <token>" when ready; runs until SIGTERM/SIGINT or
 * 120 s. Public API only.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>
#include <troupe/console.h>

#define TICK 1

static tp_runtime *rt;

static void
on_signal(int sig)
{
    (void)sig;
    tp_runtime_request_stop(rt);
}

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "demo_worker",
                                    .handle = worker_handle};

static int
ticker_init(tp_ctx *ctx, void *state, void *arg)
{
    /* Traffic for the rate chart: worker_a gets a message every 5 ms. */
    return tp_send_interval(ctx, 5, tp_self(ctx), TICK, NULL, 0, NULL);
}

static void
ticker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tp_send_named(ctx, "worker_a", TICK, "tick", 4);
}

static const tp_behaviour ticker = {
    .name = "demo_ticker", .init = ticker_init, .handle = ticker_handle};

static int
start_tree(void)
{
    static tp_child_spec kids[3];
    static tp_sup_spec app, pool;
    tp_pid app_pid, pool_pid = TP_PID_NONE;
    size_t total = 0;
    tp_child_info ci[8];
    int err;

    tp_sup_spec_init(&pool, TP_DYNAMIC);
    tp_child_spec_init(&pool.child_template, "conn", &worker, NULL);
    pool.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&kids[0], "worker_a", &worker, NULL);
    kids[0].opts.name = "worker_a";
    tp_child_spec_init(&kids[1], "worker_b", &ticker, NULL);
    tp_child_spec_init(&kids[2], "pool", &tp_supervisor_behaviour, &pool);
    kids[2].type = TP_SUPERVISOR;
    tp_sup_spec_init(&app, TP_ONE_FOR_ONE);
    app.intensity = 100;
    app.children = kids;
    app.nchildren = 3;
    if ((err = tp_runtime_supervisor_start(rt, "app", &app, &app_pid)) != 0)
        return err;
    if ((err = tp_supervisor_which_children(rt, app_pid, ci, 8, &total, 0)) !=
        0)
        return err;
    for (size_t i = 0; i < total && i < 8; i++)
        if (strcmp(ci[i].id, "pool") == 0)
            pool_pid = ci[i].pid;
    for (int i = 0; i < 3 && pool_pid != TP_PID_NONE; i++)
        if ((err = tp_supervisor_start_child(rt, pool_pid, NULL, NULL, NULL,
                                             0)) != 0)
            return err;
    return 0;
}

int
main(void)
{
    const char *token = "demo-token-4711";
    tp_runtime_options ro;
    tp_console_opts co;
    tp_console *con;
    int err;

    tp_runtime_options_init(&ro);
    ro.schedulers = 2;
    ro.pin = false;
    if (tp_runtime_create(&rt, &ro) != 0 || tp_runtime_start(rt) != 0)
        return 1;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if ((err = start_tree()) != 0) {
        fprintf(stderr, "demo: tree: %s\n", tp_strerror(err));
        return 1;
    }
    tp_console_opts_init(&co);
    co.http_port = 0;
    co.token = token;
    if ((err = tp_console_start(rt, &co, &con)) != 0) {
        fprintf(stderr, "demo: console: %s\n", tp_strerror(err));
        return 1;
    }
    printf("PORT %d TOKEN %s\n", tp_console_http_port(con), token);
    fflush(stdout);
    tp_runtime_wait_stop_request(rt, 120000);
    tp_console_stop(con);
    tp_runtime_stop(rt);
    tp_runtime_destroy(rt);
    return 0;
}
