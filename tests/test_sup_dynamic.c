/*
 * tests/test_sup_dynamic.c - a dynamic supervisor with 100,000 children:
 * adding and removing children (by their exit and by terminate_child) costs
 * the same per child at 10,000 and at 100,000 children, i.e. O(1) per
 * child operation. A driver actor keeps a window of requests in flight (the
 * asynchronous protocol), so the supervisor, not a thread round trip, is
 * what is measured.
 */
#include "test_sup_common.h"

#include <stdlib.h>
#include <unistd.h>

enum { GO_ADD = 0x400, GO_EXIT, GO_TERM, DONE };

#define WINDOW 256

struct driver {
    tp_pid sup, probe;
    tp_pid *pids; /* children, in the order they were added */
    uint32_t n, sent, done, phase;
    uint32_t first, last; /* range of pids this phase works on */
};

/* A child that ends normally on any message (transient: then removed). */
static void
idle_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tp_exit(ctx);
}

static const tp_behaviour idle = {.name = "idle", .handle = idle_handle};

static int
driver_init(tp_ctx *ctx, void *state, void *arg)
{
    *(struct driver *)state = *(struct driver *)arg;
    return 0;
}

static void
send_one(tp_ctx *ctx, struct driver *d)
{
    tp_sup_req req;
    uint32_t i = d->first + d->sent++;

    memset(&req, 0, sizeof(req));
    if (d->phase == GO_TERM)
        tp_pid_format(d->pids[i], req.child, sizeof(req.child));
    TPT_CHECK_INT_EQ(tp_request(ctx, d->sup,
                                d->phase == GO_ADD ? TP_SUP_START_CHILD
                                                   : TP_SUP_TERMINATE_CHILD,
                                &req, sizeof(req), 0, NULL),
                     0);
}

static void
fill_window(tp_ctx *ctx, struct driver *d)
{
    while (d->sent < d->last - d->first && d->sent - d->done < WINDOW)
        send_one(ctx, d);
}

static void
on_reply(tp_ctx *ctx, struct driver *d, const tp_msg *m)
{
    const tp_sup_result *r = m->data;

    TPT_CHECK_INT_EQ(m->len, sizeof(*r));
    if (m->len != sizeof(*r))
        return;
    TPT_CHECK_INT_EQ(r->err, 0);
    if (d->phase == GO_ADD)
        d->pids[d->first + d->done] = r->pid;
    if (++d->done == d->last - d->first)
        tp_send(ctx, d->probe, DONE, NULL, 0);
    else
        fill_window(ctx, d);
}

static void
driver_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct driver *d = state;
    const uint32_t *range = m->data;

    switch (m->type) {
    case GO_ADD:
    case GO_TERM:
        d->phase = m->type;
        d->first = range[0];
        d->last = range[1];
        d->sent = d->done = 0;
        fill_window(ctx, d);
        break;
    case GO_EXIT: /* tell them to end: the supervisor sees their EXITs */
        for (uint32_t i = range[0]; i < range[1]; i++)
            tp_send(ctx, d->pids[i], GO_EXIT, NULL, 0);
        break;
    case TP_MSG_REPLY:
        on_reply(ctx, d, m);
        break;
    default:
        break;
    }
}

static const tp_behaviour driver = {
    .name = "driver",
    .state_size = sizeof(struct driver),
    .init = driver_init,
    .handle = driver_handle,
};

struct run {
    tp_runtime *rt;
    tpt_probe *p;
    tp_pid sup, drv;
    tp_pid *pids;
};

static uint64_t
phase(struct run *r, uint32_t type, uint32_t first, uint32_t last)
{
    uint32_t range[2] = {first, last};
    uint64_t t0 = tp_now_ns();
    tpt_rec rec;

    assert_int_equal(tp_runtime_send(r->rt, r->drv, type, range, sizeof(range)),
                     0);
    assert_int_equal(tpt_probe_wait(r->p, DONE, 60000, &rec), 0);
    return tp_now_ns() - t0;
}

static void
wait_children(struct run *r, uint32_t want)
{
    tp_sup_info info;

    for (int i = 0; i < 600000 * (int)tpt_slow(); i++) {
        assert_int_equal(tp_supervisor_info(r->rt, r->sup, &info, 0), 0);
        if (info.children == want)
            return;
        usleep(100);
    }
    fail_msg("%u children, want %u", info.children, want);
}

/* Each figure: ns per child of add, remove-by-exit, terminate_child. */
struct cost {
    double add, exit, term;
};

static void
check_listing(struct run *r, uint32_t n)
{
    tp_child_info *info = calloc(n, sizeof(*info));
    size_t total = 0;

    assert_int_equal(
        tp_supervisor_which_children(r->rt, r->sup, info, n, &total, 10000), 0);
    assert_int_equal(total, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(info[i].running);
        assert_int_equal(info[i].pid, r->pids[i]); /* in order of arrival */
    }
    free(info);
}

static struct cost
measure(uint32_t n)
{
    struct run r;
    tp_sup_spec spec;
    struct driver d;
    struct cost c;
    tp_sup_info info;
    tp_runtime_stats st;
    uint64_t t0, base;

    r.rt = tpt_runtime(2);
    r.p = tpt_probe_new(r.rt, false);
    r.pids = calloc(n, sizeof(*r.pids));
    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, NULL, &idle, NULL);
    spec.child_template.restart = TP_TRANSIENT;
    assert_int_equal(
        tp_runtime_spawn(r.rt, &tp_supervisor_behaviour, &spec, NULL, &r.sup),
        0);
    memset(&d, 0, sizeof(d));
    d.sup = r.sup;
    d.probe = tpt_probe_pid(r.p);
    d.pids = r.pids;
    assert_int_equal(tp_runtime_spawn(r.rt, &driver, &d, NULL, &r.drv), 0);
    /* (The first call also spawns the runtime's call proxy.) */
    assert_int_equal(tp_supervisor_info(r.rt, r.sup, &info, 0), 0);
    tp_runtime_get_stats(r.rt, &st);
    base = st.actors;

    c.add = (double)phase(&r, GO_ADD, 0, n) / n;
    tp_runtime_get_stats(r.rt, &st);
    assert_int_equal(st.actors, base + n);
    if (n <= 20000)
        check_listing(&r, n);
    t0 = tp_now_ns();
    tp_runtime_send(r.rt, r.drv, GO_EXIT, (uint32_t[]){0, n / 2},
                    2 * sizeof(uint32_t));
    wait_children(&r, n - n / 2);
    c.exit = (double)(tp_now_ns() - t0) / (n / 2);
    c.term = (double)phase(&r, GO_TERM, n / 2, n) / (n - n / 2);
    assert_int_equal(tp_supervisor_info(r.rt, r.sup, &info, 0), 0);
    assert_int_equal(info.children, 0);
    assert_int_equal(info.active, 0);
    assert_int_equal(info.restarts, 0);
    tpt_idle(r.rt);
    tp_runtime_get_stats(r.rt, &st);
    assert_int_equal(st.actors, base);
    free(r.pids);
    tpt_probe_free(r.p);
    tpt_finish(r.rt);
    return c;
}

/* Keeps in *b the lowest of each figure (noise only ever adds). */
static void
keep_best(struct cost *b, struct cost c)
{
    b->add = c.add < b->add ? c.add : b->add;
    b->exit = c.exit < b->exit ? c.exit : b->exit;
    b->term = c.term < b->term ? c.term : b->term;
}

/* A scan per operation would cost ~100 us per child at 100,000 against
 * ~10 us at 10,000: 10x and more. O(1) keeps the figures level, up to
 * what a 10x larger working set costs in cache and TLB misses (2-5x on a
 * loaded 2-core VM whose 32 MiB L3 holds ~100,000 children). */
static bool
level(const struct cost *small, const struct cost *big)
{
    return big->add < 6 * small->add && big->exit < 6 * small->exit &&
           big->term < 6 * small->term;
}

static void
test_dynamic_100k_children_cost_o1_each(void **state)
{
    struct cost small = measure(10000), big;
    int rounds = 1;

    /* Load on the machine can only inflate a figure. An inflated small
     * one could hide a scan, so it is the best of two at least; an
     * inflated big one would fail the test, so the pair is measured again
     * (the small one too: both under the same load), up to 5 rounds,
     * until the figures are level. A scan is never level. */
    keep_best(&small, measure(10000));
    big = measure(100000);
    while (!level(&small, &big) && rounds < 5) {
        keep_best(&small, measure(10000));
        keep_best(&big, measure(100000));
        rounds++;
    }
    print_message("ns per child      add    exit  terminate (rounds: %d)\n",
                  rounds);
    print_message("  10,000     %7.0f %7.0f %7.0f\n", small.add, small.exit,
                  small.term);
    print_message(" 100,000     %7.0f %7.0f %7.0f\n", big.add, big.exit,
                  big.term);
    assert_true(big.add < 6 * small.add);
    assert_true(big.exit < 6 * small.exit);
    assert_true(big.term < 6 * small.term);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dynamic_100k_children_cost_o1_each),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
