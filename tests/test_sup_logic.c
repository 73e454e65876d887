/*
 * tests/test_sup_logic.c - the supervisor's pure policy pieces, without
 * threads: the restart-intensity window, strategy ranges, restart
 * decisions, backoff with jitter, and owned copies of specs.
 */
#include "supervisor/sup_int.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ull

/* ---------------------------------------------------------------------- */
/* Intensity                                                              */

static void
test_intensity_allows_max_within_period(void **state)
{
    struct tp__intensity w;

    tp__intensity_init(&w, 3, 1000);
    assert_true(tp__intensity_add(&w, 10 * MS));
    assert_true(tp__intensity_add(&w, 11 * MS));
    assert_true(tp__intensity_add(&w, 12 * MS));
    assert_int_equal(tp__intensity_count(&w, 12 * MS), 3);
    /* The fourth inside the same second is one too many. */
    assert_false(tp__intensity_add(&w, 13 * MS));
    tp__intensity_fini(&w);
}

static void
test_intensity_window_slides(void **state)
{
    struct tp__intensity w;

    tp__intensity_init(&w, 3, 1000);
    assert_true(tp__intensity_add(&w, 0 * MS + 1));
    assert_true(tp__intensity_add(&w, 400 * MS));
    assert_true(tp__intensity_add(&w, 800 * MS));
    /* 1000 ms after the first, it has left the window. */
    assert_true(tp__intensity_add(&w, 1000 * MS + 1));
    assert_int_equal(tp__intensity_count(&w, 1000 * MS + 1), 3);
    /* 400, 800, 1000 are still inside at 1100. */
    assert_false(tp__intensity_add(&w, 1100 * MS));
    /* Much later everything has expired. */
    assert_int_equal(tp__intensity_count(&w, 5000 * MS), 0);
    assert_true(tp__intensity_add(&w, 5000 * MS));
    tp__intensity_fini(&w);
}

static void
test_intensity_zero_allows_no_restart(void **state)
{
    struct tp__intensity w;

    tp__intensity_init(&w, 0, 1000);
    assert_false(tp__intensity_add(&w, 1 * MS));
    tp__intensity_fini(&w);
}

static void
test_intensity_memory_follows_real_rate(void **state)
{
    struct tp__intensity w;
    uint64_t now = 0;

    /* A huge allowance costs nothing while restarts are rare ... */
    tp__intensity_init(&w, 1000000, 10);
    for (int i = 0; i < 1000; i++) {
        now += 20 * MS;
        assert_true(tp__intensity_add(&w, now));
    }
    assert_true(w.cap <= 8);
    /* ... and at 1 restart per µs with a 10 ms window it holds ~10,000. */
    for (int i = 0; i < 1000000; i++) {
        now += 1000;
        assert_true(tp__intensity_add(&w, now));
    }
    assert_int_equal(tp__intensity_count(&w, now), 10000);
    assert_true(w.cap <= 16384);
    tp__intensity_fini(&w);
}

/* ---------------------------------------------------------------------- */
/* Strategies and restart types                                           */

static void
test_strategy_ranges(void **state)
{
    uint32_t f, e;

    tp__strategy_range(TP_ONE_FOR_ONE, 2, 5, &f, &e);
    assert_int_equal(f, 2);
    assert_int_equal(e, 3);
    tp__strategy_range(TP_ONE_FOR_ALL, 2, 5, &f, &e);
    assert_int_equal(f, 0);
    assert_int_equal(e, 5);
    tp__strategy_range(TP_REST_FOR_ONE, 2, 5, &f, &e);
    assert_int_equal(f, 2);
    assert_int_equal(e, 5);
    tp__strategy_range(TP_REST_FOR_ONE, 4, 5, &f, &e);
    assert_int_equal(f, 4);
    assert_int_equal(e, 5);
    tp__strategy_range(TP_DYNAMIC, 0, 1, &f, &e);
    assert_int_equal(f, 0);
    assert_int_equal(e, 1);
}

static void
test_restart_wanted_per_type_and_reason(void **state)
{
    static const struct {
        tp_exit_kind kind;
        bool permanent, transient, temporary;
    } rows[] = {
        {TP_EXIT_NORMAL, true, false, false},
        {TP_EXIT_SHUTDOWN, true, false, false},
        {TP_EXIT_CRASH, true, true, false},
        {TP_EXIT_KILLED, true, true, false},
        {TP_EXIT_USER, true, true, false},
        {TP_EXIT_NOPROC, true, true, false},
    };

    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        tp_exit_reason r = {rows[i].kind, 0, NULL};
        assert_int_equal(tp__restart_wanted(TP_PERMANENT, &r),
                         rows[i].permanent);
        assert_int_equal(tp__restart_wanted(TP_TRANSIENT, &r),
                         rows[i].transient);
        assert_int_equal(tp__restart_wanted(TP_TEMPORARY, &r),
                         rows[i].temporary);
    }
}

static void
test_names(void **state)
{
    assert_string_equal(tp_strategy_name(TP_REST_FOR_ONE), "rest_for_one");
    assert_string_equal(tp_strategy_name(TP_DYNAMIC), "dynamic");
    assert_string_equal(tp_restart_name(TP_TRANSIENT), "transient");
    assert_string_equal(tp_restart_name((tp_restart)9), "?");
}

/* ---------------------------------------------------------------------- */
/* Backoff                                                                */

static void
test_backoff_off_by_default(void **state)
{
    uint64_t rng = 1;

    assert_int_equal(tp__backoff_delay(0, 1000, 1, &rng), 0);
    assert_int_equal(tp__backoff_delay(0, 0, 7, &rng), 0);
}

static void
test_backoff_doubles_within_jitter_and_caps(void **state)
{
    uint64_t rng = 12345;

    for (uint32_t n = 1; n <= 40; n++) {
        uint64_t base = n <= 10 ? 100ull << (n - 1) : 51200;
        if (base > 51200)
            base = 51200;
        for (int i = 0; i < 200; i++) {
            uint32_t d = tp__backoff_delay(100, 51200, n, &rng);
            assert_true(d >= base - base / 4);
            assert_true(d <= base + base / 4);
        }
    }
    /* max below min counts as min; a huge n cannot overflow. */
    for (int i = 0; i < 100; i++) {
        uint32_t d = tp__backoff_delay(1000, 10, UINT32_MAX, &rng);
        assert_true(d >= 750 && d <= 1250);
    }
}

static void
test_backoff_jitter_spreads(void **state)
{
    uint64_t rng = 99;
    uint32_t lo = UINT32_MAX, hi = 0;

    for (int i = 0; i < 1000; i++) {
        uint32_t d = tp__backoff_delay(1000, 1000, 1, &rng);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    /* 1000 draws over [750, 1250] cover most of it. */
    assert_true(lo < 800);
    assert_true(hi > 1200);
}

/* ---------------------------------------------------------------------- */
/* Specs                                                                   */

static void
dummy_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour dummy = {.name = "dummy", .handle = dummy_handle};

static void
test_spec_check_rejects_bad_specs(void **state)
{
    tp_child_spec c[2];
    tp_sup_spec s;
    char longid[80];

    tp_child_spec_init(&c[0], "a", &dummy, NULL);
    tp_child_spec_init(&c[1], "a", &dummy, NULL);
    tp_sup_spec_init(&s, TP_ONE_FOR_ONE);
    s.children = c;
    s.nchildren = 2;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL); /* duplicate id */
    c[1].id = "b";
    assert_int_equal(tp__sup_spec_check(&s), 0);
    c[1].id = NULL;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL); /* no id */
    memset(longid, 'x', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    c[1].id = longid;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL); /* id too long */
    c[1].id = "b";
    c[1].behaviour = NULL;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL);
    c[1].behaviour = &dummy;
    c[1].restart = (tp_restart)7;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL);
    c[1].restart = TP_TRANSIENT;
    s.period_ms = 0;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL);
    s.period_ms = 10;
    s.strategy = TP_DYNAMIC; /* dynamic: static children not allowed */
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL);
    s.nchildren = 0;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL); /* no template */
    tp_child_spec_init(&s.child_template, NULL, &dummy, NULL);
    assert_int_equal(tp__sup_spec_check(&s), 0);
}

static void
test_spec_check_rejects_cycles(void **state)
{
    tp_child_spec c;
    tp_sup_spec s;

    /* A supervisor spec that contains itself would recurse forever. */
    tp_sup_spec_init(&s, TP_ONE_FOR_ONE);
    tp_child_spec_init(&c, "self", &tp_supervisor_behaviour, &s);
    s.children = &c;
    s.nchildren = 1;
    assert_int_equal(tp__sup_spec_check(&s), -EINVAL);
}

/* A two-level spec on the heap, freed after it is copied. */
struct nested {
    tp_sup_spec outer, inner;
    tp_child_spec oc[2], ic[1];
    char ids[3][16];
};

static struct nested *
nested_new(void)
{
    struct nested *n = calloc(1, sizeof(*n));

    strcpy(n->ids[0], "worker");
    strcpy(n->ids[1], "sub");
    strcpy(n->ids[2], "leaf");
    tp_child_spec_init(&n->ic[0], n->ids[2], &dummy, (void *)0x1234);
    n->ic[0].opts.name = "leaf_name";
    tp_sup_spec_init(&n->inner, TP_REST_FOR_ONE);
    n->inner.children = n->ic;
    n->inner.nchildren = 1;
    tp_child_spec_init(&n->oc[0], n->ids[0], &dummy, NULL);
    tp_child_spec_init(&n->oc[1], n->ids[1], &tp_supervisor_behaviour,
                       &n->inner);
    tp_sup_spec_init(&n->outer, TP_ONE_FOR_ALL);
    n->outer.intensity = 7;
    n->outer.children = n->oc;
    n->outer.nchildren = 2;
    return n;
}

static void
check_nested_copy(const tp_sup_spec *s)
{
    const tp_sup_spec *in;

    assert_int_equal(s->strategy, TP_ONE_FOR_ALL);
    assert_int_equal(s->intensity, 7);
    assert_int_equal(s->nchildren, 2);
    assert_string_equal(s->children[0].id, "worker");
    assert_string_equal(s->children[1].id, "sub");
    assert_int_equal(s->children[1].type, TP_SUPERVISOR);
    assert_int_equal(s->children[1].shutdown_ms, TP_SHUTDOWN_INFINITY);
    in = s->children[1].arg;
    assert_int_equal(in->strategy, TP_REST_FOR_ONE);
    assert_int_equal(in->nchildren, 1);
    assert_string_equal(in->children[0].id, "leaf");
    assert_string_equal(in->children[0].opts.name, "leaf_name");
    /* Worker args are the caller's and are not copied. */
    assert_ptr_equal(in->children[0].arg, (void *)0x1234);
    assert_ptr_equal(in->children[0].behaviour, &dummy);
}

static void
test_spec_dup_is_deep(void **state)
{
    struct nested *n = nested_new();
    tp_sup_spec *copy;

    assert_int_equal(tp__sup_spec_dup(&n->outer, &copy), 0);
    memset(n, 0xa5, sizeof(*n)); /* the original is gone */
    free(n);
    check_nested_copy(copy);
    tp__free(copy);
}

static void
test_spec_image_survives_a_move(void **state)
{
    struct nested *n = nested_new();
    tp_child_spec c, *img, *moved;
    size_t size;

    tp_child_spec_init(&c, "top", &tp_supervisor_behaviour, &n->outer);
    assert_int_equal(tp__child_spec_dup(&c, &img), 0);
    size = tp__child_spec_size(&c);
    free(n);
    /* As a message would: bytes copied elsewhere, then rebased. */
    moved = malloc(size);
    memcpy(moved, img, size);
    assert_int_equal(tp__child_spec_rebase(moved, size, (uintptr_t)img), 0);
    memset(img, 0x5a, size);
    tp__free(img);
    assert_string_equal(moved->id, "top");
    check_nested_copy(moved->arg);
    free(moved);
}

static void
test_spec_rebase_rejects_foreign_pointers(void **state)
{
    tp_child_spec c, *img, *moved;
    size_t size;

    tp_child_spec_init(&c, "x", &dummy, NULL);
    assert_int_equal(tp__child_spec_dup(&c, &img), 0);
    size = tp__child_spec_size(&c);
    moved = malloc(size);
    memcpy(moved, img, size);
    /* Claiming another base puts the id outside the image. */
    assert_int_equal(tp__child_spec_rebase(moved, size, (uintptr_t)img + 4096),
                     -EINVAL);
    memcpy(moved, img, size);
    assert_int_equal(tp__child_spec_rebase(moved, sizeof(c) - 1, 4096),
                     -EINVAL); /* too short */
    memcpy(moved, img, size);
    moved->id = "outside";
    assert_int_equal(tp__child_spec_rebase(moved, size, (uintptr_t)img),
                     -EINVAL);
    free(moved);
    tp__free(img);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intensity_allows_max_within_period),
        cmocka_unit_test(test_intensity_window_slides),
        cmocka_unit_test(test_intensity_zero_allows_no_restart),
        cmocka_unit_test(test_intensity_memory_follows_real_rate),
        cmocka_unit_test(test_strategy_ranges),
        cmocka_unit_test(test_restart_wanted_per_type_and_reason),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_backoff_off_by_default),
        cmocka_unit_test(test_backoff_doubles_within_jitter_and_caps),
        cmocka_unit_test(test_backoff_jitter_spreads),
        cmocka_unit_test(test_spec_check_rejects_bad_specs),
        cmocka_unit_test(test_spec_check_rejects_cycles),
        cmocka_unit_test(test_spec_dup_is_deep),
        cmocka_unit_test(test_spec_image_survives_a_move),
        cmocka_unit_test(test_spec_rebase_rejects_foreign_pointers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
