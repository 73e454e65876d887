/*
 * tests/testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROBE_DO  0x7ff00001u
#define PROBE_CAP 65536

struct tpt_probe {
    tp_runtime *rt;
    tp_pid pid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    tpt_rec *recs;
    size_t n;
    unsigned dones;
};

struct probe_state {
    tpt_probe *p;
};

struct probe_do {
    void (*fn)(tp_ctx *ctx, void *arg);
    void *arg;
};

/* ---------------------------------------------------------------------- */
/* Checks from any thread                                                 */

static atomic_uint check_failed;
static atomic_flag check_text_taken = ATOMIC_FLAG_INIT;
static char check_text[512];

/* The safety net: a check that failed after the test's last
 * tpt_check_failures() still fails the program. */
static void
check_at_exit(void)
{
    unsigned n = atomic_load(&check_failed);

    if (n == 0)
        return;
    fprintf(stderr, "%s (%u failed check%s never reported: exit 1)\n",
            check_text, n, n == 1 ? "" : "s");
    _exit(1);
}

static void
check_net_install(void)
{
    atexit(check_at_exit);
}

void
tpt_check_fail(const char *file, int line, const char *fmt, ...)
{
    static pthread_once_t net = PTHREAD_ONCE_INIT;
    va_list ap;
    int n;

    pthread_once(&net, check_net_install);
    /* The first failure's text is kept; later ones are counted. */
    if (!atomic_flag_test_and_set(&check_text_taken)) {
        n = snprintf(check_text, sizeof(check_text),
                     "%s:%d: check failed: ", file, line);
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < sizeof(check_text))
            vsnprintf(check_text + n, sizeof(check_text) - (size_t)n, fmt, ap);
        va_end(ap);
        fprintf(stderr, "%s\n", check_text);
    }
    /* seq_cst: the text written above is visible to whoever sees the
     * count (tpt_check_failures reads it after the count). */
    atomic_fetch_add(&check_failed, 1);
}

unsigned
tpt_check_count(void)
{
    return atomic_load(&check_failed);
}

void
tpt_check_failures(void)
{
    unsigned n = atomic_exchange(&check_failed, 0);

    if (n == 0)
        return;
    atomic_flag_clear(&check_text_taken);
    fail_msg("%s (%u failed check%s off the main thread)", check_text, n,
             n == 1 ? "" : "s");
}

unsigned
tpt_slow(void)
{
    const char *s = getenv("TP_TEST_SLOW");
    return s != NULL ? (unsigned)atoi(s) : 1;
}

double
tpt_scale(void)
{
    const char *s = getenv("TP_TEST_SCALE");
    return s != NULL ? atof(s) : 1.0;
}

void
tpt_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

tp_runtime *
tpt_runtime_opts(const tp_runtime_options *opts)
{
    tp_runtime *rt = NULL;

    tpt_check_failures(); /* a test's second runtime: what the first saw */
    assert_int_equal(tp_runtime_create(&rt, opts), 0);
    assert_int_equal(tp_runtime_start(rt), 0);
    return rt;
}

tp_runtime *
tpt_runtime(unsigned schedulers)
{
    tp_runtime_options o;

    tp_runtime_options_init(&o);
    o.schedulers = schedulers;
    o.pin = false;
    /* The graceful part of a stop gets as much more time as everything
     * else on a slow (sanitizer, valgrind, busy) machine. */
    o.stop_timeout_ms *= tpt_slow();
    return tpt_runtime_opts(&o);
}

void
tpt_finish(tp_runtime *rt)
{
    tpt_check_failures();
    assert_int_equal(tp_runtime_stop(rt), 0);
    tp_runtime_destroy(rt);
}

void
tpt_idle(tp_runtime *rt)
{
    assert_int_equal(tp_runtime_wait_idle(rt, 20000 * (int64_t)tpt_slow()), 0);
    tpt_check_failures();
}

static int
probe_init(tp_ctx *ctx, void *state, void *arg)
{
    struct probe_state *s = state;
    s->p = arg;
    return 0;
}

static void
probe_record(tpt_probe *p, const tp_msg *m)
{
    tpt_rec r;

    memset(&r, 0, sizeof(r));
    r.from = m->from;
    r.ref = m->ref;
    r.type = m->type;
    r.len = m->len;
    if (m->len != 0)
        memcpy(r.data, m->data, m->len < TPT_DATA_MAX ? m->len : TPT_DATA_MAX);
    if (m->type == TP_MSG_EXIT || m->type == TP_MSG_DOWN) {
        tp_exit_reason why;
        uint64_t ref = 0;
        int e = m->type == TP_MSG_EXIT ? tp_msg_exit(m, &r.pid, &why)
                                       : tp_msg_down(m, &r.pid, &ref, &why);
        if (e == 0) {
            r.kind = why.kind;
            r.code = why.code;
            if (why.text != NULL)
                snprintf(r.text, sizeof(r.text), "%s", why.text);
        }
    }
    pthread_mutex_lock(&p->lock);
    if (p->n < PROBE_CAP)
        p->recs[p->n++] = r;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void
probe_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct probe_state *s = state;

    if (m->type == PROBE_DO) {
        const struct probe_do *d = m->data;
        d->fn(ctx, d->arg);
        pthread_mutex_lock(&s->p->lock);
        s->p->dones++;
        pthread_cond_broadcast(&s->p->cond);
        pthread_mutex_unlock(&s->p->lock);
        return;
    }
    probe_record(s->p, m);
}

static const tp_behaviour probe_behaviour = {
    .name = "probe",
    .state_size = sizeof(struct probe_state),
    .init = probe_init,
    .handle = probe_handle,
};

tpt_probe *
tpt_probe_new(tp_runtime *rt, bool trap)
{
    return tpt_probe_new_pinned(rt, trap, -1);
}

tpt_probe *
tpt_probe_new_pinned(tp_runtime *rt, bool trap, int sched)
{
    tpt_probe *p = calloc(1, sizeof(*p));
    tp_spawn_opts o;

    assert_non_null(p);
    p->recs = calloc(PROBE_CAP, sizeof(*p->recs));
    assert_non_null(p->recs);
    p->rt = rt;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    tp_spawn_opts_init(&o);
    o.trap_exit = trap;
    o.scheduler = sched;
    assert_int_equal(tp_runtime_spawn(rt, &probe_behaviour, p, &o, &p->pid), 0);
    return p;
}

tp_pid
tpt_probe_pid(const tpt_probe *p)
{
    return p->pid;
}

static bool
take(tpt_probe *p, uint32_t type, tpt_rec *out)
{
    for (size_t i = 0; i < p->n; i++) {
        if (type == 0 || p->recs[i].type == type) {
            if (out != NULL)
                *out = p->recs[i];
            memmove(&p->recs[i], &p->recs[i + 1],
                    (p->n - i - 1) * sizeof(p->recs[0]));
            p->n--;
            return true;
        }
    }
    return false;
}

static void
deadline_ts(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int
tpt_probe_wait(tpt_probe *p, uint32_t type, int timeout_ms, tpt_rec *out)
{
    struct timespec ts;
    int r = 0;

    deadline_ts(&ts, timeout_ms * (int)tpt_slow());
    pthread_mutex_lock(&p->lock);
    while (!take(p, type, out)) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT) {
            r = take(p, type, out) ? 0 : -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    tpt_check_failures();
    return r;
}

size_t
tpt_probe_count(tpt_probe *p, uint32_t type)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->n; i++) {
        if (type == 0 || p->recs[i].type == type)
            n++;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

void
tpt_probe_do(tpt_probe *p, void (*fn)(tp_ctx *ctx, void *arg), void *arg)
{
    struct probe_do d = {fn, arg};
    struct timespec ts;
    unsigned want;

    pthread_mutex_lock(&p->lock);
    want = p->dones + 1;
    pthread_mutex_unlock(&p->lock);
    assert_int_equal(tp_runtime_send(p->rt, p->pid, PROBE_DO, &d, sizeof(d)),
                     0);
    deadline_ts(&ts, 10000 * (int)tpt_slow());
    pthread_mutex_lock(&p->lock);
    while (p->dones < want) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) == ETIMEDOUT)
            break;
    }
    assert_true(p->dones >= want);
    pthread_mutex_unlock(&p->lock);
    tpt_check_failures(); /* what fn checked */
}

void
tpt_probe_free(tpt_probe *p)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, "probe done"};

    tp_runtime_exit_pid(p->rt, p->pid, &kill);
    tp_runtime_wait_idle(p->rt, 10000 * (int64_t)tpt_slow());
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p->recs);
    free(p);
}
