/*
 * tests/test_registry.c - names: register, lookup, send by name, release
 * at death, and lookups racing with deaths.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static void
quit_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == 2)
        tp_exit(ctx);
}

static const tp_behaviour quitter = {.name = "quitter", .handle = quit_handle};

static void
test_registry_register_whereis_unregister(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid a, b;

    assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &a), 0);
    assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &b), 0);
    assert_int_equal(tp_register(rt, "alpha", a), 0);
    assert_int_equal(tp_whereis(rt, "alpha"), a);
    assert_int_equal(tp_register(rt, "alpha", b), -EEXIST);
    assert_int_equal(tp_register(rt, "", b), -EINVAL);
    assert_int_equal(tp_register(rt,
                                 "0123456789012345678901234567890123456789"
                                 "012345678901234567890123456789",
                                 b),
                     -EINVAL);
    assert_int_equal(tp_unregister(rt, "alpha", b), -ENOENT);
    assert_int_equal(tp_unregister(rt, "alpha", a), 0);
    assert_int_equal(tp_whereis(rt, "alpha"), TP_PID_NONE);
    assert_int_equal(tp_register(rt, "alpha", b), 0);
    assert_int_equal(tp_whereis(rt, "alpha"), b);
    assert_int_equal(tp_whereis(rt, "nobody"), TP_PID_NONE);
    tpt_finish(rt);
}

static void
test_registry_name_released_when_actor_dies(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid a, b;

    assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &a), 0);
    assert_int_equal(tp_register(rt, "svc", a), 0);
    assert_int_equal(tp_register(rt, "svc-alias", a), 0);
    assert_int_equal(tp_runtime_send(rt, a, 2, NULL, 0), 0);
    tpt_idle(rt);
    assert_int_equal(tp_whereis(rt, "svc"), TP_PID_NONE);
    assert_int_equal(tp_whereis(rt, "svc-alias"), TP_PID_NONE);
    assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &b), 0);
    assert_int_equal(tp_register(rt, "svc", b), 0);
    tpt_finish(rt);
}

static void
test_registry_register_dead_pid_fails(void **state)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_pid a;

    assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &a), 0);
    tp_runtime_send(rt, a, 2, NULL, 0);
    tpt_idle(rt);
    assert_int_equal(tp_register(rt, "late", a), -ESRCH);
    tpt_finish(rt);
}

/* Many names force table rebuilds while readers keep looking up. */
static void
test_registry_many_names(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    enum { N = 5000 };
    static tp_pid pids[N];
    char name[32];

    for (int i = 0; i < N; i++) {
        assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &pids[i]),
                         0);
        snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(tp_register(rt, name, pids[i]), 0);
    }
    for (int i = 0; i < N; i += 2)
        tp_runtime_send(rt, pids[i], 2, NULL, 0);
    tpt_idle(rt);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        assert_int_equal(tp_whereis(rt, name), i % 2 ? pids[i] : TP_PID_NONE);
    }
    tpt_finish(rt);
}

/* Lookups from actors on every scheduler (the lock-free path) while named
 * actors die and new ones take their names: a lookup returns either
 * nothing or a live-at-the-time pid, and never crashes (ASan/TSan). */
static atomic_int lookups, hits;

struct looker {
    int rounds;
};

static void
looker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    char name[16];

    for (int i = 0; i < 200; i++) {
        tp_pid p;
        snprintf(name, sizeof(name), "race%d", i % 16);
        p = tp_whereis(tp_ctx_runtime(ctx), name);
        atomic_fetch_add(&lookups, 1);
        if (p != TP_PID_NONE)
            atomic_fetch_add(&hits, 1);
    }
    if (++((struct looker *)state)->rounds < 200)
        tp_send(ctx, tp_self(ctx), 1, NULL, 0);
}

static const tp_behaviour looker = {.name = "looker",
                                    .state_size = sizeof(struct looker),
                                    .handle = looker_handle};

static void
test_registry_lookup_races_with_death(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_pid l[4];
    char name[16];

    atomic_store(&lookups, 0);
    atomic_store(&hits, 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tp_runtime_spawn(rt, &looker, NULL, NULL, &l[i]), 0);
        tp_runtime_send(rt, l[i], 1, NULL, 0);
    }
    for (int round = 0; round < 300; round++) {
        tp_pid a;
        snprintf(name, sizeof(name), "race%d", round % 16);
        assert_int_equal(tp_runtime_spawn(rt, &quitter, NULL, NULL, &a), 0);
        if (tp_register(rt, name, a) != 0) {
            /* The old holder is still alive: retire it first. */
            tp_runtime_send(rt, tp_whereis(rt, name), 2, NULL, 0);
        }
        tp_runtime_send(rt, a, 2, NULL, 0);
    }
    tpt_idle(rt);
    assert_int_equal(atomic_load(&lookups), 4 * 200 * 200);
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof(name), "race%d", i);
        assert_int_equal(tp_whereis(rt, name), TP_PID_NONE);
    }
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_register_whereis_unregister),
        cmocka_unit_test(test_registry_name_released_when_actor_dies),
        cmocka_unit_test(test_registry_register_dead_pid_fails),
        cmocka_unit_test(test_registry_many_names),
        cmocka_unit_test(test_registry_lookup_races_with_death),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
