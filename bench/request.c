/*
 * bench/request.c - request/reply round trips between two actors.
 *
 *   request [--trips=500000] [--schedulers=2] [--timeout=5000]
 *
 * A requester sends a request (8-byte counter) to a server and waits for
 * its reply before it sends the next: one request in flight, so each
 * figure is the latency of a full round trip (request, wake, handle,
 * reply, match against the pending request, cancel its timeout). Requests
 * carry a timeout (default 5000 ms, as gen_server:call's default), so each
 * round trip also arms and cancels a timer, as Erlang's does. The
 * requester reads the clock after a warm-up of trips/10 round trips and
 * at the last reply. Checks: each reply echoes the counter just sent, in
 * order, and no TIMEOUT/NOPROC arrives.
 *
 * RESULT request.ns_round_trip            raw tp_request/tp_reply, the two
 *                                         actors placed by the runtime
 * RESULT request.ns_round_trip_cross      the same, pinned to schedulers
 *                                         0 and 1 (every hop crosses)
 * RESULT request.ns_gs_call               tp_gs_call to a gen_server whose
 *                                         handle_call replies (compare with
 *                                         Erlang's gen_server:call)
 * RESULT request.ns_round_trip_notimeout  raw, without a timeout
 */
#include "benchutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_GO = 1, M_ECHO };
enum { MODE_RAW, MODE_CROSS, MODE_GS, MODE_NOTIMEOUT, MODES };

static const char *const names[MODES] = {
    "request.ns_round_trip", "request.ns_round_trip_cross",
    "request.ns_gs_call", "request.ns_round_trip_notimeout"};

struct setup {
    int mode;
    uint64_t trips;
    uint32_t timeout;
};

/* The requester hands its figures to main. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    uint64_t ns, timed, errors;
} result = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false, 0, 0, 0};

/* ---- servers ---- */

static void
raw_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (tp_msg_is_request(m))
        tp_reply(ctx, m, m->data, m->len);
}

static const tp_behaviour raw_server = {.name = "server", .handle = raw_handle};

static int
gs_call(tp_ctx *ctx, void *state, const tp_msg *m, tp_gs_from *from)
{
    tp_gs_reply(ctx, from, m->data, m->len);
    return TP_GS_REPLY;
}

static const tp_gen_server gs_server = {
    TP_GEN_SERVER_BEHAVIOUR("gs-server", 0),
    .handle_call = gs_call,
};

/* ---- the requester ---- */

struct requester {
    struct setup s;
    tp_pid server;
    uint64_t next, ref, warm, t0, errors;
};

static void
publish(const struct requester *r, uint64_t t1)
{
    pthread_mutex_lock(&result.lock);
    result.ns = t1 - r->t0;
    result.timed = r->s.trips - r->warm;
    result.errors = r->errors;
    result.done = true;
    pthread_cond_signal(&result.cond);
    pthread_mutex_unlock(&result.lock);
}

static void
ask(tp_ctx *ctx, struct requester *r)
{
    uint32_t t = r->s.mode == MODE_NOTIMEOUT ? 0 : r->s.timeout;
    int err = r->s.mode == MODE_GS
                  ? tp_gs_call(ctx, r->server, M_ECHO, &r->next, 8, t, &r->ref)
                  : tp_request(ctx, r->server, M_ECHO, &r->next, 8, t, &r->ref);

    if (err != 0)
        tp_fail(ctx, "request failed: %s", tp_strerror(err));
}

static void
answer(tp_ctx *ctx, struct requester *r, const tp_msg *m)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};

    if (m->type != TP_MSG_REPLY || m->ref != r->ref || m->len != 8 ||
        *(const uint64_t *)m->data != r->next)
        r->errors++;
    if (++r->next == r->warm)
        r->t0 = tp_now_ns();
    if (r->next < r->s.trips) {
        ask(ctx, r);
        return;
    }
    publish(r, tp_now_ns());
    tp_exit_pid(ctx, r->server, &kill);
    tp_exit(ctx);
}

static int
requester_init(tp_ctx *ctx, void *state, void *arg)
{
    struct requester *r = state;

    r->s = *(const struct setup *)arg;
    r->warm = r->s.trips / 10;
    return 0;
}

/* The server is spawned from the requester's handler (as Erlang's caller
 * would spawn it): unpinned, it starts on the requester's scheduler. */
static void
requester_go(tp_ctx *ctx, struct requester *r)
{
    tp_spawn_opts o;
    int err;

    tp_spawn_opts_init(&o);
    if (r->s.mode == MODE_CROSS)
        o.scheduler = 1;
    err = r->s.mode == MODE_GS
              ? tp_gen_server_spawn(ctx, &gs_server, NULL, &o, &r->server)
              : tp_spawn(ctx, &raw_server, NULL, &o, &r->server);
    if (err != 0)
        tp_fail(ctx, "cannot spawn the server: %s", tp_strerror(err));
    r->t0 = tp_now_ns();
    ask(ctx, r);
}

static void
requester_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct requester *r = state;

    if (m->type == M_GO)
        requester_go(ctx, r);
    else
        answer(ctx, r, m);
}

static const tp_behaviour requester = {.name = "requester",
                                       .state_size = sizeof(struct requester),
                                       .init = requester_init,
                                       .handle = requester_handle};

/* ---- main ---- */

static bool
wait_result(int seconds)
{
    struct timespec ts;
    bool done;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    pthread_mutex_lock(&result.lock);
    while (!result.done &&
           pthread_cond_timedwait(&result.cond, &result.lock, &ts) == 0)
        ;
    done = result.done;
    result.done = false;
    pthread_mutex_unlock(&result.lock);
    return done;
}

static bool
run(tp_runtime *rt, int mode, uint64_t trips, uint32_t timeout)
{
    struct setup s = {mode, trips, timeout};
    tp_spawn_opts o;
    tp_pid pid;

    tp_spawn_opts_init(&o);
    if (mode == MODE_CROSS)
        o.scheduler = 0;
    if (tp_runtime_spawn(rt, &requester, &s, &o, &pid) != 0 ||
        tp_runtime_send(rt, pid, M_GO, NULL, 0) != 0 || !wait_result(300)) {
        fprintf(stderr, "%s: did not finish\n", names[mode]);
        return false;
    }
    if (result.errors != 0) {
        fprintf(stderr, "%s: %llu wrong answers\n", names[mode],
                (unsigned long long)result.errors);
        return false;
    }
    tpb_result(names[mode], (double)result.ns / (double)result.timed, "ns");
    tp_runtime_wait_idle(rt, 10000);
    return true;
}

int
main(int argc, char **argv)
{
    uint64_t trips = (uint64_t)tpb_opt(argc, argv, "trips", 500000);
    uint32_t timeout = (uint32_t)tpb_opt(argc, argv, "timeout", 5000);
    tp_runtime_options opts;
    tp_runtime *rt;
    bool ok = true;

    tp_runtime_options_init(&opts);
    opts.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 2);
    opts.long_handler_ms = 0;
    if (trips < 10 || opts.schedulers < 2 ||
        tp_runtime_create(&rt, &opts) != 0 || tp_runtime_start(rt) != 0) {
        fprintf(stderr, "request: bad options or runtime start failed\n");
        return 1;
    }
    for (int mode = 0; mode < MODES && ok; mode++)
        ok = run(rt, mode, trips, timeout);
    tp_runtime_stop(rt);
    tp_runtime_destroy(rt);
    return ok ? 0 : 1;
}
