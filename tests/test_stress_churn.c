/*
 * tests/test_stress_churn.c - spawn/exit churn of 1,000,000 actors across
 * all schedulers, with links and monitors on some of them; the runtime ends
 * with nothing alive and nothing leaked (ASan/LSan, TSan).
 */
#include "testutil.h"

#include <stdatomic.h>

#define TOTAL    1000000u
#define SPAWNERS 8u
#define CHUNK    500u

enum { M_GO = 1, M_DIE };

static atomic_ullong died;

static void
child_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    atomic_fetch_add(&died, 1);
    tp_exit(ctx);
}

static const tp_behaviour child_b = {
    .name = "child", .state_size = 16, .handle = child_handle};

struct spawner {
    uint32_t left;
    uint32_t made;
};

static int
spawner_init(tp_ctx *ctx, void *state, void *arg)
{
    ((struct spawner *)state)->left = *(uint32_t *)arg;
    return 0;
}

static void
spawner_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct spawner *s = state;

    if (m->type == TP_MSG_DOWN)
        return;
    for (uint32_t i = 0; i < CHUNK && s->left > 0; i++, s->left--) {
        tp_pid c;
        tp_spawn_opts o;
        tp_spawn_opts_init(&o);
        o.link = (s->made % 7) == 0; /* some linked (normal exit: ignored) */
        TPT_CHECK_INT_EQ(tp_spawn(ctx, &child_b, NULL, &o, &c), 0);
        if (s->made % 5 == 0)
            TPT_CHECK_INT_EQ(tp_monitor(ctx, c, NULL), 0);
        s->made++;
        TPT_CHECK_INT_EQ(tp_send(ctx, c, M_DIE, NULL, 0), 0);
    }
    if (s->left > 0)
        tp_send(ctx, tp_self(ctx), M_GO, NULL, 0);
}

static const tp_behaviour spawner_b = {.name = "spawner",
                                       .state_size = sizeof(struct spawner),
                                       .init = spawner_init,
                                       .handle = spawner_handle};

static void
test_stress_churn_million_spawn_exit(void **state)
{
    tp_runtime *rt = tpt_runtime(0);
    uint32_t per = (uint32_t)(TOTAL * tpt_scale() / SPAWNERS);
    tp_runtime_stats st;
    tp_pid sp[SPAWNERS];

    atomic_store(&died, 0);
    for (uint32_t i = 0; i < SPAWNERS; i++) {
        tp_spawn_opts o;
        tp_spawn_opts_init(&o);
        o.scheduler = (int)i; /* spread spawners over all schedulers */
        assert_int_equal(tp_runtime_spawn(rt, &spawner_b, &per, &o, &sp[i]), 0);
        assert_int_equal(tp_runtime_send(rt, sp[i], M_GO, NULL, 0), 0);
    }
    tpt_idle(rt);
    assert_int_equal(atomic_load(&died), (uint64_t)per * SPAWNERS);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.actors, SPAWNERS);
    assert_int_equal(st.spawned, (uint64_t)per * SPAWNERS + SPAWNERS);
    assert_int_equal(st.crashed, 0);
    assert_int_equal(st.dead_letters, 0);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_churn_million_spawn_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
