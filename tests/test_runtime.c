/*
 * tests/test_runtime.c - runtime lifecycle, options, quiescence, idle CPU,
 * statistics and stop requests.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <unistd.h>

static void
test_runtime_create_rejects_bad_options(void **state)
{
    tp_runtime_options o;
    tp_runtime *rt = NULL;

    tp_runtime_options_init(&o);
    o.schedulers = 1000;
    assert_int_equal(tp_runtime_create(&rt, &o), -EINVAL);
    assert_null(rt);
    assert_int_equal(tp_runtime_create(NULL, NULL), -EINVAL);
}

static void
test_runtime_default_schedulers_is_online_cpus(void **state)
{
    tp_runtime *rt;

    assert_int_equal(tp_runtime_create(&rt, NULL), 0);
    assert_int_equal(tp_runtime_schedulers(rt),
                     (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    tp_runtime_destroy(rt); /* never started: must still clean up */
}

static void
test_runtime_start_twice_fails(void **state)
{
    tp_runtime *rt = tpt_runtime(2);

    assert_int_equal(tp_runtime_start(rt), -EALREADY);
    tpt_finish(rt);
}

static void
test_runtime_repeated_create_destroy(void **state)
{
    for (int i = 0; i < 20; i++) {
        tp_runtime *rt = tpt_runtime(1 + (unsigned)i % 4);
        tpt_idle(rt);
        tpt_finish(rt);
    }
}

static double
cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* An idle runtime sleeps in its loops: no busy spinning. */
static void
test_runtime_idle_uses_no_cpu(void **state)
{
    tp_runtime *rt = tpt_runtime(4);
    double before, used;
    tp_sched_stats st[4];

    tpt_idle(rt);
    before = cpu_seconds();
    tpt_sleep_ms(500);
    used = cpu_seconds() - before;
    /* 4 schedulers + watchdog over 0.5 s: well under 2% of one core. */
    assert_true(used < 0.010 * tpt_slow());
    assert_int_equal(tp_runtime_get_sched_stats(rt, st, 4), 4);
    for (int i = 0; i < 4; i++)
        assert_true(st[i].sleeping);
    tpt_finish(rt);
}

static void test_runtime_wait_idle_times_out_while_busy(void **state);

static void
spin_handle(tp_ctx *ctx, void *st, const tp_msg *m)
{
    uint64_t until = tp_now_ns() + 300000000ull;
    while (tp_now_ns() < until)
        ;
}

static const tp_behaviour spinner = {.name = "spinner", .handle = spin_handle};

static void
test_runtime_wait_idle_times_out_while_busy(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn(rt, &spinner, NULL, NULL, &pid), 0);
    assert_int_equal(tp_runtime_send(rt, pid, 1, NULL, 0), 0);
    assert_int_equal(tp_runtime_wait_idle(rt, 50), -ETIMEDOUT);
    tpt_idle(rt);
    tpt_finish(rt);
}

static void
test_runtime_long_handler_is_reported(void **state)
{
    tp_runtime_options o;
    tp_runtime *rt;
    tp_runtime_stats st;
    tp_pid pid;

    tp_runtime_options_init(&o);
    o.schedulers = 1;
    o.pin = false;
    o.long_handler_ms = 100;
    rt = tpt_runtime_opts(&o);
    assert_int_equal(tp_runtime_spawn(rt, &spinner, NULL, NULL, &pid), 0);
    assert_int_equal(tp_runtime_send(rt, pid, 1, NULL, 0), 0);
    tpt_idle(rt);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.long_handlers, 1);
    tpt_finish(rt);
}

static void *
requester(void *arg)
{
    tpt_sleep_ms(50);
    tp_runtime_request_stop(arg);
    return NULL;
}

static void
test_runtime_request_stop_wakes_waiter(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    pthread_t th;

    assert_int_equal(tp_runtime_wait_stop_request(rt, 10), -ETIMEDOUT);
    pthread_create(&th, NULL, requester, rt);
    assert_int_equal(tp_runtime_wait_stop_request(rt, 5000 * tpt_slow()), 0);
    pthread_join(th, NULL);
    tpt_finish(rt);
}

static void
count_handle(tp_ctx *ctx, void *st, const tp_msg *m)
{
    (*(uint64_t *)st)++;
}

static const tp_behaviour counter = {
    .name = "counter", .state_size = sizeof(uint64_t), .handle = count_handle};

/* tp_runtime_get_stats() from an init that tp_runtime_spawn() runs on the
 * calling thread: it must answer, not deadlock on the outside-actors lock
 * that tp_runtime_spawn() holds. */
static int
stats_init(tp_ctx *ctx, void *state, void *arg)
{
    tp_runtime_stats st;

    (void)state;
    tp_runtime_get_stats(tp_ctx_runtime(ctx), &st);
    *(uint64_t *)arg = st.spawned + 1;
    return 0;
}

static const tp_behaviour stats_in_init = {
    .name = "stats_in_init", .init = stats_init, .handle = count_handle};

static void
test_runtime_stats_from_init_inside_spawn(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    uint64_t seen = 0;
    tp_pid pid;

    (void)state;
    assert_int_equal(tp_runtime_spawn(rt, &stats_in_init, &seen, NULL, &pid),
                     0);
    assert_true(seen >= 1);
    tpt_finish(rt);
}

static void
test_runtime_stats_count_messages_and_actors(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_runtime_stats st;
    tp_sched_stats ss[2];
    uint64_t handled = 0;
    tp_pid pid;

    assert_int_equal(tp_runtime_spawn(rt, &counter, NULL, NULL, &pid), 0);
    for (int i = 0; i < 1000; i++)
        tp_runtime_send(rt, pid, 1, NULL, 0);
    tpt_idle(rt);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.actors, 1);
    assert_int_equal(st.spawned, 1);
    assert_int_equal(st.messages, 1000);
    assert_true(st.actor_bytes >= 128);
    assert_true(st.rss_bytes > 0);
    tp_runtime_get_sched_stats(rt, ss, 2);
    for (int i = 0; i < 2; i++)
        handled += ss[i].turns;
    assert_true(handled >= 1000 / 64);
    tpt_finish(rt);
}

/* Stop kills actors that are still alive, including ones trapping exits
 * that ignore the shutdown request. */
static void
ignore_handle(tp_ctx *ctx, void *st, const tp_msg *m)
{
}

static int
trap_init(tp_ctx *ctx, void *st, void *arg)
{
    tp_trap_exit(ctx, true);
    return 0;
}

static const tp_behaviour stubborn = {
    .name = "stubborn", .init = trap_init, .handle = ignore_handle};

static void
test_runtime_stop_kills_remaining_actors(void **state)
{
    tp_runtime_options o;
    tp_runtime *rt;
    tp_runtime_stats st;
    tp_pid pid;

    tp_runtime_options_init(&o);
    o.schedulers = 2;
    o.pin = false;
    o.stop_timeout_ms = 500;
    rt = tpt_runtime_opts(&o);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(tp_runtime_spawn(rt, i % 2 ? &stubborn : &counter,
                                          NULL, NULL, &pid),
                         0);
    }
    assert_int_equal(tp_runtime_stop(rt), 0);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.actors, 0);
    assert_int_equal(st.exited, 100);
    assert_int_equal(tp_runtime_spawn(rt, &counter, NULL, NULL, &pid),
                     -ESHUTDOWN);
    tp_runtime_destroy(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_create_rejects_bad_options),
        cmocka_unit_test(test_runtime_default_schedulers_is_online_cpus),
        cmocka_unit_test(test_runtime_start_twice_fails),
        cmocka_unit_test(test_runtime_repeated_create_destroy),
        cmocka_unit_test(test_runtime_idle_uses_no_cpu),
        cmocka_unit_test(test_runtime_wait_idle_times_out_while_busy),
        cmocka_unit_test(test_runtime_long_handler_is_reported),
        cmocka_unit_test(test_runtime_request_stop_wakes_waiter),
        cmocka_unit_test(test_runtime_stats_count_messages_and_actors),
        cmocka_unit_test(test_runtime_stats_from_init_inside_spawn),
        cmocka_unit_test(test_runtime_stop_kills_remaining_actors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
