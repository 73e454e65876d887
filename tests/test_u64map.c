/*
 * tests/test_u64map.c - the open-addressing map against a reference model.
 */
#include "common/u64map.h"
#include "testutil.h"

#include <stdlib.h>

static void
test_u64map_put_get_remove_basic(void **state)
{
    struct tp__u64map m;
    uint64_t v;

    tp__u64map_init(&m);
    assert_null(tp__u64map_get(&m, 7));
    assert_int_equal(tp__u64map_put(&m, 7, 70), 1);
    assert_int_equal(tp__u64map_put(&m, 7, 71), 0);
    assert_int_equal(*tp__u64map_get(&m, 7), 71);
    assert_true(tp__u64map_remove(&m, 7, &v));
    assert_int_equal(v, 71);
    assert_false(tp__u64map_remove(&m, 7, NULL));
    assert_int_equal(m.count, 0);
    tp__u64map_fini(&m);
}

static void
test_u64map_random_ops_match_model(void **state)
{
    enum { KEYS = 4096, OPS = 400000 };
    static uint64_t model[KEYS]; /* 0 = absent, else value */
    struct tp__u64map m;
    uint64_t rnd = 88172645463325252ull;
    uint32_t count = 0;

    tp__u64map_init(&m);
    for (int i = 0; i < OPS; i++) {
        uint64_t r, k, *p;
        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        r = rnd;
        k = (r % KEYS) + 1;
        if ((r >> 32) % 3 == 0) {
            bool had = model[k - 1] != 0;
            assert_int_equal(tp__u64map_remove(&m, k, NULL), had);
            if (had)
                count--;
            model[k - 1] = 0;
        } else {
            int added = tp__u64map_put(&m, k, r | 1);
            assert_int_equal(added, model[k - 1] == 0 ? 1 : 0);
            if (added)
                count++;
            model[k - 1] = r | 1;
        }
        p = tp__u64map_get(&m, k);
        if (model[k - 1] != 0)
            assert_int_equal(*p, model[k - 1]);
        else
            assert_null(p);
    }
    assert_int_equal(m.count, count);
    for (uint64_t k = 1; k <= KEYS; k++) {
        uint64_t *p = tp__u64map_get(&m, k);
        if (model[k - 1] != 0)
            assert_int_equal(*p, model[k - 1]);
        else
            assert_null(p);
    }
    tp__u64map_fini(&m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_u64map_put_get_remove_basic),
        cmocka_unit_test(test_u64map_random_ops_match_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
