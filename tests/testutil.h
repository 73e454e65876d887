/*
 * tests/testutil.h - helpers shared by the cmocka tests: runtimes with a
 * given number of schedulers, and "probes": actors that hand every message
 * they receive to the test thread, so a test can assert on what an actor
 * really received.
 */
#ifndef TP_TESTUTIL_H
#define TP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka 1.1.5 needs the four headers above first. */
#include <cmocka.h>
#include <troupe.h>

/*
 * Checks that are safe on any thread. cmocka's assert_* may only be called
 * on the test's main thread (they longjmp into its runner), so code running
 * inside actor callbacks, loop callbacks or helper threads uses TPT_CHECK*:
 * a failed check is recorded (the first one's text is kept) and the test
 * fails on its main thread at the next tpt_check_failures() -- which
 * tpt_probe_wait(), tpt_probe_do(), tpt_idle(), tpt_runtime*() and
 * tpt_finish() call -- naming the file and line of the check. A test that
 * ends without any of them calls tpt_check_failures() itself; if it does
 * not, a check still pending when the program exits makes it exit 1.
 * scripts/check-test-asserts.py flags cmocka asserts in callbacks.
 */
#define TPT_CHECK(cond)                                                        \
    ((cond) ? (void)0 : tpt_check_fail(__FILE__, __LINE__, "%s", #cond))
#define TPT_CHECK_INT_EQ(a, b)                                                 \
    do {                                                                       \
        long long tpt_a_ = (long long)(a), tpt_b_ = (long long)(b);            \
        if (tpt_a_ != tpt_b_)                                                  \
            tpt_check_fail(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a,  \
                           #b, tpt_a_, tpt_b_);                                \
    } while (0)
#define TPT_CHECK_MSG(cond, ...)                                               \
    ((cond) ? (void)0 : tpt_check_fail(__FILE__, __LINE__, __VA_ARGS__))
/* Records a failed check (any thread). */
void tpt_check_fail(const char *file, int line, const char *fmt, ...)
    TP_PRINTF(3, 4);
/* Main thread: fails the test (cmocka) if any check failed since the last
 * call; clears the record. */
void tpt_check_failures(void);
/* Number of failed checks so far (any thread; does not clear). */
unsigned tpt_check_count(void);

/* Creates and starts a runtime (pinning off: tests share small machines). */
tp_runtime *tpt_runtime(unsigned schedulers);
tp_runtime *tpt_runtime_opts(const tp_runtime_options *opts);
/* Stops and destroys; asserts a clean stop. */
void tpt_finish(tp_runtime *rt);
/* Waits until quiescent (asserts within 20 s). */
void tpt_idle(tp_runtime *rt);

/* Milliseconds scale factor for slow (sanitizer) builds. */
unsigned tpt_slow(void);
/* Scale for loop counts: 1 normally, TP_TEST_SCALE env overrides. */
double tpt_scale(void);
void tpt_sleep_ms(unsigned ms);

#define TPT_DATA_MAX 512

typedef struct tpt_rec {
    tp_pid from;
    uint64_t ref;
    uint32_t type;
    uint32_t len;
    unsigned char data[TPT_DATA_MAX];
    /* Decoded for TP_MSG_EXIT / TP_MSG_DOWN. */
    tp_pid pid;
    tp_exit_kind kind;
    int code;
    char text[256];
} tpt_rec;

typedef struct tpt_probe tpt_probe;

/* Spawns a probe actor (trap_exit on if trap). */
tpt_probe *tpt_probe_new(tp_runtime *rt, bool trap);
/* A probe pinned to scheduler sched. */
tpt_probe *tpt_probe_new_pinned(tp_runtime *rt, bool trap, int sched);
tp_pid tpt_probe_pid(const tpt_probe *p);
/* Waits for the next record of `type` (0 = any) and removes it.
 * Returns 0 or -ETIMEDOUT. */
int tpt_probe_wait(tpt_probe *p, uint32_t type, int timeout_ms, tpt_rec *out);
/* Records currently held of `type` (0 = all). */
size_t tpt_probe_count(tpt_probe *p, uint32_t type);
/* Frees the probe (the actor is killed). */
void tpt_probe_free(tpt_probe *p);

/* Asks the probe actor to run fn(ctx, arg) in its own context (so the test
 * can link/monitor/spawn "from an actor") and waits for it. fn runs on a
 * scheduler thread: it checks with TPT_CHECK*, and a failed check fails
 * the test when tpt_probe_do() returns. */
void tpt_probe_do(tpt_probe *p, void (*fn)(tp_ctx *ctx, void *arg), void *arg);

#endif
