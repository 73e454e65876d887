/*
 * tests/test_direct_many.c - many parked direct-style actors: 10,000
 * copied-stack actors parked in receive at once (each checks, when it is
 * woken, that the locals it left on its stack came back intact), the same
 * with fixed stacks, and ping-pong pairs spread over the schedulers.
 */
#include "testutil.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define N_PARKED 10000

static atomic_int ok, bad, parked;

struct many_arg {
    int index;
};

static void
parked_main(tp_ctx *ctx, void *state, void *arg)
{
    volatile uint32_t local[16];
    uintptr_t index = (uintptr_t)arg;
    const tp_msg *m;
    bool fine = true;

    (void)state;
    for (unsigned i = 0; i < 16; i++)
        local[i] = (uint32_t)(index * 2654435761u + i);
    atomic_fetch_add(&parked, 1);
    if (tp_receive(ctx, &m, -1) != 0) {
        atomic_fetch_add(&bad, 1);
        return;
    }
    for (unsigned i = 0; i < 16; i++)
        fine = fine && local[i] == (uint32_t)(index * 2654435761u + i);
    fine = fine && m->len == sizeof(uintptr_t) &&
           *(const uintptr_t *)m->data == index;
    atomic_fetch_add(fine ? &ok : &bad, 1);
    /* Park once more so that the images get swapped again. */
    if (tp_receive(ctx, &m, -1) == 0)
        atomic_fetch_add(&ok, 1);
}

static const tp_direct parked_actor = {
    TP_DIRECT_BEHAVIOUR("parked", 0),
    .main = parked_main,
};

static void
wait_count(atomic_int *c, int want)
{
    for (int i = 0; i < 6000 * (int)tpt_slow() && atomic_load(c) < want; i++)
        tpt_sleep_ms(5);
    assert_int_equal(atomic_load(c), want);
}

static void
many(tp_stack_mode mode, int n)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_direct_opts o = {mode, 32 * 1024};
    tp_pid *pids = test_malloc(sizeof(tp_pid) * (size_t)n);

    atomic_store(&ok, 0);
    atomic_store(&bad, 0);
    atomic_store(&parked, 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(tp_runtime_spawn_direct(rt, &parked_actor,
                                                 (void *)(uintptr_t)i, NULL, &o,
                                                 &pids[i]),
                         0);
    wait_count(&parked, n);
    tpt_idle(rt);
    /* Wake them in reverse order: every resume swaps an image. */
    for (int i = n - 1; i >= 0; i--) {
        uintptr_t v = (uintptr_t)i;
        assert_int_equal(tp_runtime_send(rt, pids[i], 1, &v, sizeof(v)), 0);
    }
    wait_count(&ok, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(tp_runtime_send(rt, pids[i], 2, NULL, 0), 0);
    wait_count(&ok, 2 * n);
    assert_int_equal(atomic_load(&bad), 0);
    test_free(pids);
    tpt_finish(rt);
}

static void
test_many_copied(void **s)
{
    (void)s;
    many(TP_STACK_COPIED, N_PARKED);
}

static void
test_many_fixed(void **s)
{
    (void)s;
    many(TP_STACK_FIXED, N_PARKED / 4);
}

/* Ping-pong pairs of direct actors, one copied and one fixed in each
 * pair, across and within schedulers. */
enum { ROUNDS = 2000, PAIRS = 16 };

static atomic_int pairs_done;

static void
pinger_main(tp_ctx *ctx, void *state, void *arg)
{
    tp_pid peer = (tp_pid)(uintptr_t)arg;
    const tp_msg *m;
    int64_t v = 0;

    (void)state;
    for (int i = 0; i < ROUNDS; i++) {
        tp_send(ctx, peer, 1, &v, sizeof(v));
        if (tp_receive(ctx, &m, 10000) != 0)
            return;
        memcpy(&v, m->data, sizeof(v));
    }
    if (v == 2 * ROUNDS)
        atomic_fetch_add(&pairs_done, 1);
}

static void
ponger_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    int64_t v;

    (void)state, (void)arg;
    while (tp_receive(ctx, &m, -1) == 0) {
        memcpy(&v, m->data, sizeof(v));
        v += 2;
        tp_send(ctx, m->from, 1, &v, sizeof(v));
    }
}

static const tp_direct pinger = {TP_DIRECT_BEHAVIOUR("pinger", 0),
                                 .main = pinger_main};
static const tp_direct ponger = {TP_DIRECT_BEHAVIOUR("ponger", 0),
                                 .main = ponger_main};

static void
test_pingpong_pairs(void **s)
{
    tp_runtime *rt = tpt_runtime(2);

    (void)s;
    atomic_store(&pairs_done, 0);
    for (int i = 0; i < PAIRS; i++) {
        tp_direct_opts a = {i % 2 ? TP_STACK_COPIED : TP_STACK_FIXED, 0};
        tp_direct_opts b = {i % 3 ? TP_STACK_COPIED : TP_STACK_FIXED, 0};
        tp_spawn_opts so;
        tp_pid pong;

        tp_spawn_opts_init(&so);
        so.scheduler = i % 2;
        assert_int_equal(
            tp_runtime_spawn_direct(rt, &ponger, NULL, &so, &a, &pong), 0);
        so.scheduler = (i / 2) % 2;
        assert_int_equal(tp_runtime_spawn_direct(rt, &pinger,
                                                 (void *)(uintptr_t)pong, &so,
                                                 &b, NULL),
                         0);
    }
    wait_count(&pairs_done, PAIRS);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_copied),
        cmocka_unit_test(test_many_fixed),
        cmocka_unit_test(test_pingpong_pairs),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
