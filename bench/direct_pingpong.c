/*
 * bench/direct_pingpong.c - round trip between two direct-style actors
 * against two callback actors, in the same run, and the cost of a fiber
 * context switch.
 *
 *   direct_pingpong [--trips=200000] [--schedulers=1] [--switches=10000000]
 *                   [--only=1|2|3: callback, direct fixed or copied only]
 *                   [--rounds=1: interleaved rounds of `trips` each; the
 *                    figures are the medians over the rounds]
 *
 * Each pair is pinned to scheduler 0 (same-thread latency: send, wake,
 * run-next, handle). One message is in flight at a time. The direct
 * pingers are straight-line loops (send, tp_receive); every round trip
 * parks and resumes each fiber once. Pairs: callback, direct with fixed
 * stacks, direct with copied stacks (both on one shared stack: every
 * switch copies the image of the other one out and this one's in).
 *
 * RESULT direct_pingpong.callback_ns_rt
 * RESULT direct_pingpong.direct_fixed_ns_rt
 * RESULT direct_pingpong.direct_copied_ns_rt
 * RESULT direct_pingpong.ratio_fixed_vs_callback (median of the rounds'
 *        ratios, each from runs a few ms apart)
 * RESULT direct_pingpong.park_wake_ns  ((direct fixed - callback) / 2:
 *        what one park + resume of a fiber adds to a message delivery)
 * RESULT direct_pingpong.switch_ns     (one raw tp__fctx_switch)
 */
#include "benchutil.h"
#include "direct/direct_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>

enum { M_GO = 1, M_PING, M_PONG };

static uint64_t trips;
static uint64_t t0, t1, errors;

/* ---- callback pair ---- */

struct cb_pinger {
    tp_pid ponger;
    uint64_t n;
};

static void
cb_ponger_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    tp_send(ctx, m->from, M_PONG, m->data, m->len);
}

static const tp_behaviour cb_ponger = {.name = "cb_ponger",
                                       .handle = cb_ponger_handle};

static void
cb_pinger_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct cb_pinger *p = state;

    if (m->type == M_GO) {
        memcpy(&p->ponger, m->data, sizeof(p->ponger));
        t0 = tp_now_ns();
    } else if (m->len != sizeof(uint64_t) ||
               *(const uint64_t *)m->data != p->n) {
        errors++;
    } else if (++p->n == trips) {
        t1 = tp_now_ns();
        return;
    }
    tp_send(ctx, p->ponger, M_PING, &p->n, sizeof(p->n));
}

static const tp_behaviour cb_pinger = {.name = "cb_pinger",
                                       .state_size = sizeof(struct cb_pinger),
                                       .handle = cb_pinger_handle};

/* ---- direct pair ---- */

static void
d_ponger_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;

    (void)state, (void)arg;
    while (tp_receive(ctx, &m, -1) == 0)
        tp_send(ctx, m->from, M_PONG, m->data, m->len);
}

static void
d_pinger_main(tp_ctx *ctx, void *state, void *arg)
{
    tp_pid ponger = (tp_pid)(uintptr_t)arg;
    const tp_msg *m;

    (void)state;
    t0 = tp_now_ns();
    for (uint64_t n = 0; n < trips; n++) {
        tp_send(ctx, ponger, M_PING, &n, sizeof(n));
        if (tp_receive(ctx, &m, -1) != 0 || m->len != sizeof(n) ||
            *(const uint64_t *)m->data != n)
            errors++;
    }
    t1 = tp_now_ns();
}

static const tp_direct d_ponger = {TP_DIRECT_BEHAVIOUR("d_ponger", 0),
                                   .main = d_ponger_main};
static const tp_direct d_pinger = {TP_DIRECT_BEHAVIOUR("d_pinger", 0),
                                   .main = d_pinger_main};

static double
run_direct(tp_runtime *rt, tp_stack_mode mode)
{
    tp_spawn_opts so;
    tp_direct_opts dopts = {mode, 0};
    tp_pid pong;

    tp_spawn_opts_init(&so);
    so.scheduler = 0;
    t0 = t1 = 0;
    if (tp_runtime_spawn_direct(rt, &d_ponger, NULL, &so, &dopts, &pong) != 0 ||
        tp_runtime_spawn_direct(rt, &d_pinger, (void *)(uintptr_t)pong, &so,
                                &dopts, NULL) != 0) {
        fprintf(stderr, "spawn failed\n");
        exit(1);
    }
    tp_runtime_wait_idle(rt, -1);
    tp_runtime_exit_pid(rt, pong, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_runtime_wait_idle(rt, -1);
    return (double)(t1 - t0) / (double)trips;
}

static double
run_callback(tp_runtime *rt)
{
    tp_spawn_opts so;
    tp_pid ping, pong;

    tp_spawn_opts_init(&so);
    so.scheduler = 0;
    t0 = t1 = 0;
    if (tp_runtime_spawn(rt, &cb_ponger, NULL, &so, &pong) != 0 ||
        tp_runtime_spawn(rt, &cb_pinger, NULL, &so, &ping) != 0) {
        fprintf(stderr, "spawn failed\n");
        exit(1);
    }
    tp_runtime_send(rt, ping, M_GO, &pong, sizeof(pong));
    tp_runtime_wait_idle(rt, -1);
    tp_runtime_exit_pid(rt, ping, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_runtime_exit_pid(rt, pong, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_runtime_wait_idle(rt, -1);
    return (double)(t1 - t0) / (double)trips;
}

/* ---- figures ---- */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The median of n values spaced 4 apart in v (sorts a copy). */
static double
median_of(const double *v, long n)
{
    double *c = malloc((size_t)n * sizeof(*c)), m;

    if (c == NULL)
        return v[0];
    for (long i = 0; i < n; i++)
        c[i] = v[4 * i];
    qsort(c, (size_t)n, sizeof(*c), cmp_double);
    m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

/* ---- raw switch ---- */

static struct tp__fctx main_ctx, fib_ctx;
static volatile uint64_t fib_count;

static void
bounce(void *arg)
{
    (void)arg;
    for (;;) {
        fib_count++;
        tp__fctx_switch(&fib_ctx, &main_ctx);
    }
}

static double
run_switch(uint64_t n)
{
    struct tp__stack s;
    uint64_t a, b;

    if (tp__fctx_init(&main_ctx) != 0 || tp__stack_map(&s, 64 * 1024) != 0 ||
        tp__fctx_make(&fib_ctx, s.lo, s.size, bounce, NULL) != 0)
        return -1;
    a = tpb_now_ns();
    for (uint64_t i = 0; i < n; i++)
        tp__fctx_switch(&main_ctx, &fib_ctx);
    b = tpb_now_ns();
    if (fib_count != n)
        errors++;
    tp__stack_unmap(&s);
    /* Each iteration is two switches (there and back). */
    return (double)(b - a) / (double)(2 * n);
}

int
main(int argc, char **argv)
{
    tp_runtime_options o;
    tp_runtime *rt;
    double cb, df, dc, sw, ratio;
    int only;
    long rounds;
    double *r;

    trips = (uint64_t)tpb_opt(argc, argv, "trips", 200000);
    rounds = tpb_opt(argc, argv, "rounds", 1);
    if (rounds < 1 || rounds > 1000 ||
        (r = calloc(4 * (size_t)rounds, sizeof(*r))) == NULL)
        return 2;
    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 1);
    o.pin = false;
    if (tp_runtime_create(&rt, &o) != 0 || tp_runtime_start(rt) != 0)
        return 1;
    /* --only=1|2|3 runs just callback, fixed or copied (for profilers). */
    only = (int)tpb_opt(argc, argv, "only", 0);
    if (only == 0) { /* warm-up of each kind, then the measured runs */
        run_callback(rt);
        run_direct(rt, TP_STACK_FIXED);
    }
    /* --rounds=R: R rounds of the three, interleaved, and the median of
     * each figure (and of each round's ratio): on a shared machine a
     * neighbour's burst then spoils a few rounds, not one kind. */
    for (long i = 0; i < rounds; i++) {
        double *x = r + 4 * i;
        x[0] = x[1] = x[2] = 1;
        if (only == 0 || only == 1)
            x[0] = run_callback(rt);
        if (only == 0 || only == 2)
            x[1] = run_direct(rt, TP_STACK_FIXED);
        if (only == 0 || only == 3)
            x[2] = run_direct(rt, TP_STACK_COPIED);
        x[3] = x[1] / x[0];
    }
    cb = median_of(r + 0, rounds);
    df = median_of(r + 1, rounds);
    dc = median_of(r + 2, rounds);
    ratio = median_of(r + 3, rounds);
    free(r);
    tp_runtime_destroy(rt);
    sw = run_switch((uint64_t)tpb_opt(argc, argv, "switches", 10000000));
    printf("# %s switch, %llu trips, %u scheduler(s), %ld round(s)\n",
           tp__fctx_kind(), (unsigned long long)trips, o.schedulers, rounds);
    tpb_result("direct_pingpong.callback_ns_rt", cb, "ns");
    tpb_result("direct_pingpong.direct_fixed_ns_rt", df, "ns");
    tpb_result("direct_pingpong.direct_copied_ns_rt", dc, "ns");
    tpb_result("direct_pingpong.ratio_fixed_vs_callback", ratio, "x");
    tpb_result("direct_pingpong.park_wake_ns", (df - cb) / 2, "ns");
    tpb_result("direct_pingpong.switch_ns", sw, "ns");
    if (errors != 0) {
        fprintf(stderr, "direct_pingpong: %llu errors\n",
                (unsigned long long)errors);
        return 1;
    }
    return 0;
}
