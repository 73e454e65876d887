/*
 * tests/test_stress_wake.c - sleep/wake storms: schedulers fall asleep and
 * are woken over and over, from outside threads and from each other, and no
 * wake-up is ever lost (every phase finishes well within its timeout).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define ACTORS 64
#define ROUNDS 2000

static atomic_ullong received;

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    atomic_fetch_add(&received, 1);
    if (m->len == sizeof(tp_pid)) {
        tp_pid next = *(const tp_pid *)m->data;
        tp_send(ctx, next, 1, NULL, 0); /* cross-scheduler wake */
    }
}

static const tp_behaviour echo_b = {.name = "wake", .handle = echo_handle};

struct pusher {
    tp_runtime *rt;
    tp_pid *pids;
    unsigned id;
};

static void *
pusher_main(void *arg)
{
    struct pusher *p = arg;
    unsigned rounds = (unsigned)(ROUNDS * tpt_scale());

    for (unsigned r = 0; r < rounds; r++) {
        tp_pid to = p->pids[(r * 7 + p->id) % ACTORS];
        tp_pid next = p->pids[(r * 13 + p->id + 1) % ACTORS];
        TPT_CHECK_INT_EQ(tp_runtime_send(p->rt, to, 1, &next, sizeof(next)), 0);
        if (r % 64 == 0)
            tpt_sleep_ms(1); /* let the schedulers fall asleep */
    }
    return NULL;
}

static void
test_stress_wake_storm_no_lost_wakeups(void **state)
{
    tp_runtime *rt = tpt_runtime(0);
    tp_pid pids[ACTORS];
    pthread_t th[4];
    struct pusher ps[4];
    unsigned rounds = (unsigned)(ROUNDS * tpt_scale());

    atomic_store(&received, 0);
    for (int i = 0; i < ACTORS; i++) {
        tp_spawn_opts o;
        tp_spawn_opts_init(&o);
        o.scheduler = i; /* pinned: wakes always cross schedulers */
        assert_int_equal(tp_runtime_spawn(rt, &echo_b, NULL, &o, &pids[i]), 0);
    }
    for (unsigned cycle = 0; cycle < 5; cycle++) {
        atomic_store(&received, 0);
        for (unsigned i = 0; i < 4; i++) {
            ps[i] = (struct pusher){rt, pids, i};
            pthread_create(&th[i], NULL, pusher_main, &ps[i]);
        }
        for (unsigned i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        tpt_idle(rt); /* would time out after a lost wake-up */
        assert_int_equal(atomic_load(&received), 2ull * 4 * rounds);
    }
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_wake_storm_no_lost_wakeups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
