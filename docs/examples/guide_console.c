/*
 * docs/examples/guide_console.c - docs/GUIDE.md, step 6: a program with
 * the admin console on, for reading it with troupectl, the dashboard and
 * /metrics. A few actors keep busy: a "ticker" wakes every 10 ms, asks a
 * "pong" actor for an answer and hands 10 jobs to a "slow" actor, which
 * takes 5 ms a job: its mailbox grows to its bound (1000 messages), and
 * from then on new jobs are dropped and counted.
 *
 *   guide_console [SOCKET]    (default /tmp/troupe-guide.sock)
 *   troupectl -s /tmp/troupe-guide.sock stats    (in another terminal)
 *
 * Ctrl-C (or SIGTERM) stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <troupe.h>
#include <troupe/console.h>
#include <unistd.h>

enum { TICK = 1, PING, JOB };

static tp_runtime *the_rt;

static void
pong_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == PING)
        tp_reply(ctx, msg, "pong", 4);
}

static const tp_behaviour pong = {.name = "pong", .handle = pong_handle};

static void
ticker_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    tp_pid slow = tp_whereis(tp_ctx_runtime(ctx), "slow");

    (void)state;
    if (msg->type != TICK)
        return;
    tp_request(ctx, tp_whereis(tp_ctx_runtime(ctx), "pong"), PING, NULL, 0,
               1000, NULL);
    for (int i = 0; i < 10; i++)
        tp_send(ctx, slow, JOB, NULL, 0);
}

static int
ticker_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)state;
    (void)arg;
    return tp_send_interval(ctx, 10, tp_self(ctx), TICK, NULL, 0, NULL);
}

static const tp_behaviour ticker = {
    .name = "ticker", .init = ticker_init, .handle = ticker_handle};

/* Never block a scheduler like this in real code: here it makes a
 * backlog to look at. */
static void
slow_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)ctx;
    (void)state;
    if (msg->type == JOB)
        usleep(5000);
}

static const tp_behaviour slow = {.name = "slow", .handle = slow_handle};

static void
on_signal(int sig)
{
    (void)sig;
    tp_runtime_request_stop(the_rt); /* async-signal-safe */
}

/* Spawns b registered as name, on scheduler sched, with a mailbox bound
 * (0: none). */
static void
spawn_named(tp_runtime *rt, const tp_behaviour *b, const char *name, int sched,
            uint32_t bound)
{
    tp_spawn_opts so;

    tp_spawn_opts_init(&so);
    so.name = name;
    so.scheduler = sched;
    so.max_msgs = bound; /* 0: unbounded */
    so.overflow = TP_OVERFLOW_DROP_NEWEST;
    tp_runtime_spawn(rt, b, NULL, &so, NULL);
}

int
main(int argc, char **argv)
{
    tp_runtime_options ro;
    tp_console_opts co;
    tp_console *cons;
    int err;

    tp_runtime_options_init(&ro);
    ro.schedulers = 2;
    tp_runtime_create(&the_rt, &ro);
    tp_runtime_start(the_rt);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* The slow actor alone on scheduler 1: the others keep their pace. */
    spawn_named(the_rt, &pong, "pong", 0, 0);
    spawn_named(the_rt, &slow, "slow", 1, 1000);
    spawn_named(the_rt, &ticker, "ticker", 0, 0);

    tp_console_opts_init(&co);
    co.unix_path = argc > 1 ? argv[1] : "/tmp/troupe-guide.sock";
    co.http_port = 0; /* any free port */
    if ((err = tp_console_start(the_rt, &co, &cons)) != 0) {
        fprintf(stderr, "console: %s\n", tp_strerror(err));
        return 1;
    }
    printf("console on %s, dashboard on http://127.0.0.1:%d/\n", co.unix_path,
           tp_console_http_port(cons));
    fflush(stdout);

    tp_runtime_wait_stop_request(the_rt, -1);
    tp_console_stop(cons); /* before the runtime goes */
    tp_runtime_destroy(the_rt);
    printf("stopped\n");
    return 0;
}
