/*
 * tests/test_sup_crash.c - crash isolation under a supervisor: a handler
 * that dereferences NULL, divides by zero or calls tp_fail crashes only its
 * actor; the server keeps serving everyone else meanwhile; the supervisor
 * restarts the crashed child.
 *
 * Label notsan: the NULL and division faults are real SIGSEGV/SIGFPE
 * recovered by siglongjmp, which ThreadSanitizer's own signal handling
 * does not survive (as tests/test_fault.c).
 */
#include "test_sup_common.h"

enum { M_NULL = 0x300, M_DIV0, M_FAIL };

/* Values the compiler cannot see, so the faults are not folded away. */
volatile int zero = 0;
int *volatile null_ptr = NULL;
volatile int quotient;

/* UBSan would report these before the hardware faults they test. */
__attribute__((no_sanitize("undefined"))) static void
faulty_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    switch (m->type) {
    case M_NULL:
        *null_ptr = 1;
        break;
    case M_DIV0:
        quotient = 10 / zero;
        break;
    case M_FAIL:
        tp_fail(ctx, "bad input %d", 7);
        break;
    default:
        tw_handle(ctx, state, m);
        break;
    }
}

static const tp_behaviour faulty = {
    .name = "faulty",
    .state_size = sizeof(struct tw_state),
    .init = tw_init,
    .handle = faulty_handle,
    .terminate = tw_terminate,
};

#define NW 3

static void
crash_and_recover(uint32_t type, const char *expect_in_text)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tw_arg args[NW + 1];
    tp_child_spec specs[NW + 1];
    char ids[NW + 1][16];
    tp_pid sup, pid[NW], bystander;
    tp_sup_spec spec;
    tp_sup_info info;
    struct tw_ev ev;

    tw_specs(p, args, specs, ids, NW + 1, TP_PERMANENT);
    for (int i = 0; i < NW; i++)
        specs[i].behaviour = &faulty;
    tp_sup_spec_init(&spec, TP_ONE_FOR_ONE);
    spec.children = specs;
    spec.nchildren = NW;
    assert_int_equal(
        tp_runtime_spawn(rt, &tp_supervisor_behaviour, &spec, NULL, &sup), 0);
    for (int i = 0; i < NW; i++)
        pid[i] = tw_expect(p, EV_START, i).pid;
    /* An actor outside the tree, served by the same schedulers. */
    assert_int_equal(
        tp_runtime_spawn(rt, &tw_behaviour, &args[NW], NULL, &bystander), 0);
    tw_expect(p, EV_START, NW);

    assert_int_equal(tp_runtime_send(rt, pid[1], type, NULL, 0), 0);
    ev = tw_expect(p, EV_STOP, 1);
    assert_int_equal(ev.kind, TP_EXIT_CRASH);
    assert_non_null(strstr(ev.text, expect_in_text));
    ev = tw_expect(p, EV_START, 1); /* restarted by its supervisor */
    assert_true(ev.pid != pid[1]);
    pid[1] = ev.pid;

    /* Everyone serves, the restarted child included. */
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < NW; i++) {
            assert_int_equal(tp_runtime_send(rt, pid[i], W_PING, NULL, 0), 0);
            assert_int_equal(tw_expect(p, EV_PONG, i).pid, pid[i]);
        }
        assert_int_equal(tp_runtime_send(rt, bystander, W_PING, NULL, 0), 0);
        tw_expect(p, EV_PONG, NW);
    }
    assert_int_equal(tp_supervisor_info(rt, sup, &info, 0), 0);
    assert_int_equal(info.restarts, 1);
    assert_int_equal(info.active, NW);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_null_dereference_is_isolated_and_restarted(void **state)
{
    crash_and_recover(M_NULL, "SIGSEGV");
}

static void
test_division_by_zero_is_isolated_and_restarted(void **state)
{
    crash_and_recover(M_DIV0, "SIGFPE");
}

static void
test_tp_fail_is_isolated_and_restarted(void **state)
{
    crash_and_recover(M_FAIL, "bad input 7");
}

static void
quiet_sink(void *user, tp_log_level level, const char *line)
{
}

/* Many faults in a row, of every kind, under one supervisor. */
static void
test_repeated_faults_keep_the_tree_healthy(void **state)
{
    static const uint32_t kinds[] = {M_NULL, M_DIV0, M_FAIL};
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    struct tw_arg arg;
    tp_child_spec c;
    char id[16];
    tp_sup_spec spec;
    tp_sup_info info;
    tp_pid sup, w;
    int n = 150;

    tw_specs(p, &arg, &c, &id, 1, TP_PERMANENT);
    c.behaviour = &faulty;
    tp_sup_spec_init(&spec, TP_ONE_FOR_ONE);
    spec.children = &c;
    spec.nchildren = 1;
    spec.intensity = 1000;
    tp_log_set_sink(quiet_sink, NULL); /* 150 fault reports */
    assert_int_equal(
        tp_runtime_spawn(rt, &tp_supervisor_behaviour, &spec, NULL, &sup), 0);
    w = tw_expect(p, EV_START, 0).pid;
    for (int i = 0; i < n; i++) {
        assert_int_equal(tp_runtime_send(rt, w, kinds[i % 3], NULL, 0), 0);
        tw_expect(p, EV_STOP, 0);
        w = tw_expect(p, EV_START, 0).pid;
    }
    assert_int_equal(tp_runtime_send(rt, w, W_PING, NULL, 0), 0);
    tw_expect(p, EV_PONG, 0);
    assert_int_equal(tp_supervisor_info(rt, sup, &info, 0), 0);
    assert_int_equal(info.restarts, (uint64_t)n);
    tpt_probe_free(p);
    tpt_finish(rt);
    tp_log_set_sink(NULL, NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_null_dereference_is_isolated_and_restarted),
        cmocka_unit_test(test_division_by_zero_is_isolated_and_restarted),
        cmocka_unit_test(test_tp_fail_is_isolated_and_restarted),
        cmocka_unit_test(test_repeated_faults_keep_the_tree_healthy),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
