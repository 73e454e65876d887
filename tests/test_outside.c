/*
 * tests/test_outside.c - threads outside the runtime: each has a context of
 * its own (no shared lock), contexts of exited threads are reused, calls
 * nested in an init run by tp_runtime_spawn() work, and many threads
 * sending at once lose, duplicate or reorder nothing.
 */
#include "actors/actor_int.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define MSG_SEQ 1

static unsigned
outside_contexts(tp_runtime *rt)
{
    unsigned n = 0;

    for (tp_ctx *c = atomic_load(&tp__actors_of(rt)->xlist); c != NULL;
         c = c->xnext)
        n++;
    return n;
}

/* ---------------------------------------------------------------------- */

struct nested_arg {
    tp_pid probe, child;
    int send_rc, spawn_rc, exit_rc;
};

static void
quiet_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
}

static const tp_behaviour quiet = {.name = "quiet", .handle = quiet_handle};

/* Used to deadlock: tp_runtime_spawn() held the lock that these take. */
static int
nested_init(tp_ctx *ctx, void *state, void *arg)
{
    struct nested_arg *a = arg;
    tp_runtime *rt = tp_ctx_runtime(ctx);
    tp_exit_reason r = {TP_EXIT_USER, 7, "nested"};

    a->send_rc = tp_runtime_send(rt, a->probe, MSG_SEQ, "hi", 2);
    a->spawn_rc = tp_runtime_spawn(rt, &quiet, NULL, NULL, &a->child);
    if (a->spawn_rc == 0)
        a->exit_rc = tp_runtime_exit_pid(rt, a->child, &r);
    return 0;
}

static const tp_behaviour nested = {
    .name = "nested", .init = nested_init, .handle = quiet_handle};

static void
test_outside_calls_nested_in_spawn_init(void **st)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct nested_arg a = {.probe = tpt_probe_pid(p)};
    tpt_rec rec;

    assert_int_equal(tp_runtime_spawn(rt, &nested, &a, NULL, NULL), 0);
    assert_int_equal(a.send_rc, 0);
    assert_int_equal(a.spawn_rc, 0);
    assert_int_equal(a.exit_rc, 0);
    assert_int_equal(tpt_probe_wait(p, MSG_SEQ, 5000, &rec), 0);
    assert_memory_equal(rec.data, "hi", 2);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */

struct churn {
    tp_runtime *rt;
    tp_pid to;
    int rc;
};

static void *
send_once(void *arg)
{
    struct churn *c = arg;

    c->rc = tp_runtime_send(c->rt, c->to, MSG_SEQ, "x", 1);
    return NULL;
}

static void
test_outside_contexts_of_exited_threads_are_reused(void **st)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct churn c = {rt, tpt_probe_pid(p), -1};
    unsigned before;

    /* The main thread has a context now (the probe was spawned from it). */
    before = outside_contexts(rt);
    for (int i = 0; i < 200; i++) {
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, send_once, &c), 0);
        pthread_join(th, NULL);
        assert_int_equal(c.rc, 0);
    }
    /* 200 threads one after another: one context, adopted 199 times. */
    assert_true(outside_contexts(rt) <= before + 1);
    tpt_idle(rt);
    assert_int_equal(tpt_probe_count(p, MSG_SEQ), 200);
    tpt_probe_free(p);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */

#define SENDERS 8
#define PER     20000

struct seq_item {
    uint32_t sender, seq;
};

struct checker {
    uint32_t next[SENDERS];
};

static atomic_ulong got, bad;

static void
check_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct checker *c = state;
    const struct seq_item *it = msg->data;

    if (msg->len != sizeof(*it) || it->sender >= SENDERS ||
        it->seq != c->next[it->sender]++)
        atomic_fetch_add(&bad, 1);
    atomic_fetch_add(&got, 1);
}

static const tp_behaviour checker = {.name = "checker",
                                     .state_size = sizeof(struct checker),
                                     .handle = check_handle};

struct sender_arg {
    tp_runtime *rt;
    tp_pid to;
    uint32_t id;
    int errors;
};

static void *
sender_main(void *arg)
{
    struct sender_arg *s = arg;

    for (uint32_t i = 0; i < PER; i++) {
        struct seq_item it = {s->id, i};
        if (tp_runtime_send(s->rt, s->to, MSG_SEQ, &it, sizeof(it)) != 0)
            s->errors++;
    }
    return NULL;
}

static void
test_outside_concurrent_senders_keep_order(void **st)
{
    tp_runtime *rt = tpt_runtime(2);
    struct sender_arg a[SENDERS];
    pthread_t th[SENDERS];
    tp_runtime_stats stats;
    tp_pid to;

    atomic_store(&got, 0);
    atomic_store(&bad, 0);
    assert_int_equal(tp_runtime_spawn(rt, &checker, NULL, NULL, &to), 0);
    for (uint32_t i = 0; i < SENDERS; i++) {
        a[i] = (struct sender_arg){rt, to, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, sender_main, &a[i]), 0);
    }
    for (uint32_t i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(a[i].errors, 0);
    }
    tpt_idle(rt);
    assert_int_equal(atomic_load(&got), SENDERS * PER);
    assert_int_equal(atomic_load(&bad), 0);
    /* Counters of every outside context are summed (how many contexts
     * there are depends on how the threads overlapped). */
    tp_runtime_get_stats(rt, &stats);
    assert_int_equal(stats.spawned, 1);
    assert_true(outside_contexts(rt) >= 1 &&
                outside_contexts(rt) <= SENDERS + 1);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outside_calls_nested_in_spawn_init),
        cmocka_unit_test(test_outside_contexts_of_exited_threads_are_reused),
        cmocka_unit_test(test_outside_concurrent_senders_keep_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
