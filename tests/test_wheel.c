/*
 * tests/test_wheel.c - the timing wheel against a model: every timer fires
 * exactly at its due tick (never early, never late), across cascades, long
 * jumps and removals.
 */
#include "runtime/wheel.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

struct mt {
    struct tp__wtimer wt;
    uint64_t due;
    uint64_t fired_at;
    int fired;
};

static uint64_t cur_tick;

static void
on_fire(struct tp__wtimer *t, void *arg)
{
    struct mt *m = (struct mt *)t;

    (void)arg;
    m->fired++;
    m->fired_at = cur_tick;
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
advance(struct tp__wheel *w, uint64_t to)
{
    /* Step so that cur_tick is exact at each fire: advance tick by tick
     * through the wheel's own next() events. */
    while (w->now < to) {
        uint64_t next = tp__wheel_next(w);
        if (next > to) {
            tp__wheel_advance(w, to, NULL);
            break;
        }
        cur_tick = next;
        tp__wheel_advance(w, next, NULL);
    }
}

static void
test_wheel_fires_exactly_at_due_tick(void **state)
{
    enum { N = 20000 };
    struct tp__wheel *w = malloc(sizeof(*w));
    struct mt *ts = calloc(N, sizeof(*ts));
    uint64_t seed = 0x9e3779b97f4a7c15ull;

    tp__wheel_init(w, 1000);
    for (int i = 0; i < N; i++) {
        uint64_t r = rnd(&seed);
        /* A spread of ranges: every level, including beyond 2^24. */
        uint64_t delay = 1 + r % (i % 4 == 0   ? 300
                                  : i % 4 == 1 ? 70000
                                  : i % 4 == 2 ? 20000000
                                               : 50);
        ts[i].wt.fire = on_fire;
        ts[i].due = 1000 + delay;
        tp__wheel_add(w, &ts[i].wt, ts[i].due);
    }
    assert_int_equal(w->count, N);
    /* Remove a third of them before they fire. */
    for (int i = 0; i < N; i += 3)
        tp__wheel_del(w, &ts[i].wt);
    advance(w, 1000 + 20000001);
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0) {
            assert_int_equal(ts[i].fired, 0);
        } else {
            assert_int_equal(ts[i].fired, 1);
            assert_int_equal(ts[i].fired_at, ts[i].due);
        }
    }
    assert_int_equal(w->count, 0);
    assert_int_equal(tp__wheel_next(w), UINT64_MAX);
    free(ts);
    free(w);
}

static void
test_wheel_add_in_past_fires_next_tick(void **state)
{
    struct tp__wheel w;
    struct mt t = {.wt.fire = on_fire};

    tp__wheel_init(&w, 50);
    tp__wheel_add(&w, &t.wt, 10);
    assert_int_equal(tp__wheel_next(&w), 51);
    cur_tick = 51;
    assert_int_equal(tp__wheel_advance(&w, 51, NULL), 1);
    assert_int_equal(t.fired, 1);
}

static void
test_wheel_next_is_never_after_earliest_expiry(void **state)
{
    struct tp__wheel w;
    struct mt t[3] = {
        {.wt.fire = on_fire}, {.wt.fire = on_fire}, {.wt.fire = on_fire}};

    tp__wheel_init(&w, 0);
    tp__wheel_add(&w, &t[0].wt, 100000);
    assert_true(tp__wheel_next(&w) <= 100000);
    tp__wheel_add(&w, &t[1].wt, 300);
    assert_true(tp__wheel_next(&w) <= 300);
    tp__wheel_add(&w, &t[2].wt, 5);
    assert_int_equal(tp__wheel_next(&w), 5);
    tp__wheel_del(&w, &t[2].wt);
    assert_true(tp__wheel_next(&w) <= 300);
    assert_false(tp__wtimer_armed(&t[2].wt));
}

/* A fire callback that re-arms its own timer (periodic) must not loop
 * within one tick. */
static struct tp__wheel *rearm_w;

static void
rearm_fire(struct tp__wtimer *t, void *arg)
{
    struct mt *m = (struct mt *)t;

    m->fired++;
    tp__wheel_add(rearm_w, t, rearm_w->now); /* "now" = next tick */
}

static void
test_wheel_rearm_from_fire_waits_a_tick(void **state)
{
    struct tp__wheel w;
    struct mt t = {.wt.fire = rearm_fire};

    rearm_w = &w;
    tp__wheel_init(&w, 0);
    tp__wheel_add(&w, &t.wt, 1);
    tp__wheel_advance(&w, 10, NULL);
    assert_int_equal(t.fired, 10);
    tp__wheel_del(&w, &t.wt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wheel_fires_exactly_at_due_tick),
        cmocka_unit_test(test_wheel_add_in_past_fires_next_tick),
        cmocka_unit_test(test_wheel_next_is_never_after_earliest_expiry),
        cmocka_unit_test(test_wheel_rearm_from_fire_waits_a_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
