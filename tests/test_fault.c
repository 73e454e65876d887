/*
 * tests/test_fault.c - crash isolation: tp_fail, NULL dereference and
 * division by zero inside a handler crash only that actor; a fault outside
 * any handler is never recovered.
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { M_NULL = 1, M_DIV0, M_FAIL, M_OK, M_ABORT };

/* Values the compiler cannot see, so the faults are not folded away. */
volatile int zero = 0;
int *volatile null_ptr = NULL;

/* UBSan would report these before the hardware faults they test. */
__attribute__((no_sanitize("undefined"))) static void
faulty_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    switch (m->type) {
    case M_NULL:
        *null_ptr = 1;
        break;
    case M_DIV0:
        *(volatile int *)state = 10 / zero;
        break;
    case M_FAIL:
        tp_fail(ctx, "bad input %d", 7);
        break;
    case M_ABORT:
        abort();
        break;
    case M_OK:
        tp_send(ctx,
                m->from == TP_PID_NONE ? *(const tp_pid *)m->data : m->from,
                M_OK, NULL, 0);
        break;
    default:
        break;
    }
}

static const tp_behaviour faulty = {
    .name = "faulty", .state_size = sizeof(int), .handle = faulty_handle};

static void
do_monitor(tp_ctx *ctx, void *arg)
{
    TPT_CHECK_INT_EQ(tp_monitor(ctx, *(tp_pid *)arg, NULL), 0);
}

static void
crash_with(uint32_t type, const char *expect_in_text)
{
    tp_runtime *rt = tpt_runtime(2);
    tpt_probe *p = tpt_probe_new(rt, false);
    tp_pid bad, good, probe = tpt_probe_pid(p);
    tp_runtime_stats st;
    tpt_rec r;

    assert_int_equal(tp_runtime_spawn(rt, &faulty, NULL, NULL, &bad), 0);
    assert_int_equal(tp_runtime_spawn(rt, &faulty, NULL, NULL, &good), 0);
    tpt_probe_do(p, do_monitor, &bad);
    assert_int_equal(tp_runtime_send(rt, bad, type, NULL, 0), 0);
    assert_int_equal(tpt_probe_wait(p, TP_MSG_DOWN, 5000, &r), 0);
    assert_int_equal(r.pid, bad);
    assert_int_equal(r.kind, TP_EXIT_CRASH);
    assert_non_null(strstr(r.text, expect_in_text));
    /* The server goes on: another actor still answers, on every
     * scheduler. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(tp_runtime_send(rt, good, M_OK, &probe, sizeof(probe)),
                         0);
        assert_int_equal(tpt_probe_wait(p, M_OK, 5000, &r), 0);
    }
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.crashed, 1);
    tpt_probe_free(p);
    tpt_finish(rt);
}

static void
test_fault_null_dereference_crashes_only_actor(void **state)
{
    crash_with(M_NULL, "SIGSEGV");
}

static void
test_fault_division_by_zero_crashes_only_actor(void **state)
{
    crash_with(M_DIV0, "SIGFPE");
}

static void
test_fault_tp_fail_crashes_with_text(void **state)
{
    crash_with(M_FAIL, "bad input 7");
}

static void
test_fault_abort_crashes_only_actor(void **state)
{
    crash_with(M_ABORT, "SIGABRT");
}

/* Many crashes in a row on the same schedulers: the recovery path leaves
 * no state behind (signal masks, alternate stacks, recovery points). */
static void
test_fault_repeated_crashes_keep_runtime_healthy(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_runtime_stats st;

    for (int i = 0; i < 300; i++) {
        tp_pid pid;
        assert_int_equal(tp_runtime_spawn(rt, &faulty, NULL, NULL, &pid), 0);
        assert_int_equal(tp_runtime_send(rt, pid, M_NULL + (i % 3), NULL, 0),
                         0);
    }
    tpt_idle(rt);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.crashed, 300);
    assert_int_equal(st.actors, 0);
    tpt_finish(rt);
}

__attribute__((no_sanitize("undefined"))) static void
poke_null(void)
{
    *null_ptr = 1;
}

/* A fault outside any actor callback is not recovered: the process dies
 * by the signal (checked in a child process). */
static void
test_fault_outside_handler_is_fatal(void **state)
{
    pid_t child = fork();
    int status = 0;

    assert_true(child >= 0);
    if (child == 0) {
        tp_runtime *rt = NULL;
        /* Quiet the report in the test log. */
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler: the default */
        tp_runtime_create(&rt, NULL);
        tp_runtime_start(rt);
        poke_null(); /* on the main thread, not in a handler */
        _exit(0);
    }
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_null_dereference_crashes_only_actor),
        cmocka_unit_test(test_fault_division_by_zero_crashes_only_actor),
        cmocka_unit_test(test_fault_tp_fail_crashes_with_text),
        cmocka_unit_test(test_fault_abort_crashes_only_actor),
        cmocka_unit_test(test_fault_repeated_crashes_keep_runtime_healthy),
        cmocka_unit_test(test_fault_outside_handler_is_fatal),
    };
    tp_log_set_level(TP_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
