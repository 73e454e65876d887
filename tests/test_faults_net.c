/*
 * tests/test_faults_net.c - out-of-memory injection over the network
 * layer: listen, accept, read, write, outbound connect, close.
 *
 * Scenario (1 scheduler, loopback): listen on 127.0.0.1:0 with an echo
 * behaviour; a client (a blocking socket of the test thread) sends a line
 * and reads its echo; an actor connects out to the listener, sends, gets
 * its echo and closes; the listener closes; the runtime stops. Run for
 * N = 1, 2, ... with the Nth allocation failing (and, persistent, every
 * later one) until a run completes without reaching N.
 *
 * For each N:
 *  - a failing call returns a negative errno, only after an injected
 *    failure;
 *  - a client whose connection the server could not serve sees it closed
 *    (end of stream or reset), never a connection left hanging open with
 *    its bytes silently dropped (one-shot mode: the echo must come or the
 *    connection must close within the time limit);
 *  - the echo actor that cannot send crashes alone (tp_fail): its
 *    connection closes with it;
 *  - once allocation works again the same runtime listens, accepts,
 *    echoes and connects out, stops cleanly, and afterwards every block
 *    and every file descriptor the run opened is gone.
 */
#include "faultalloc.h"
#include "soak/soakutil.h"
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe/net.h>
#include <unistd.h>

enum { T_DO = 1, T_GOT };

/* ---------------------------------------------------------------------- */
/* The server's connection actor: echoes; a send it cannot make crashes it */

static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    int rc;

    (void)state;
    if (m->type != TP_MSG_TCP_DATA)
        return;
    rc = tp_tcp_send(ctx, tp_msg_conn(m), m->data, m->len);
    if (rc < 0)
        tp_fail(ctx, "echo: %s", tp_strerror(rc));
}

static const tp_behaviour echo = {.name = "fnet-echo", .handle = echo_handle};

/* ---------------------------------------------------------------------- */
/* The outbound side: an actor that connects, sends, expects its echo      */

struct out_state {
    int stage; /* 0 connecting, 1 waiting echo, 2 done */
    tp_conn conn;
    int err;
    char got[64];
    size_t n;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct {
    int connected; /* 1 ok, <0 error */
    size_t echoed; /* bytes echoed back */
    int closed;    /* CLOSED seen */
    int crashed;   /* the outbound actor ended abnormally */
    unsigned dones;
    int do_rc;
} ob;

static void
ob_set(int *field, int v)
{
    pthread_mutex_lock(&lock);
    *field = v;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
}

#define OUT_LINE "outbound-hello\n"

static void
out_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct out_state *s = state;
    int rc;

    switch (m->type) {
    case TP_MSG_TCP_CONNECTED: {
        const tp_tcp_connected *c = m->data;
        if (c->error != 0) {
            ob_set(&ob.connected, c->error);
            return;
        }
        ob_set(&ob.connected, 1);
        rc = tp_tcp_send(ctx, s->conn, OUT_LINE, strlen(OUT_LINE));
        if (rc < 0)
            tp_fail(ctx, "outbound send: %s", tp_strerror(rc));
        break;
    }
    case TP_MSG_TCP_DATA:
        pthread_mutex_lock(&lock);
        ob.echoed += m->len;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
        if (ob.echoed >= strlen(OUT_LINE) && tp_tcp_close(ctx, s->conn) < 0)
            tp_fail(ctx, "outbound close");
        break;
    case TP_MSG_TCP_CLOSED:
        ob_set(&ob.closed, 1);
        break;
    default:
        break;
    }
}

static void
out_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    (void)ctx;
    (void)state;
    if (!tp_exit_is_normal(why))
        ob_set(&ob.crashed, 1);
}

struct connect_arg {
    uint16_t port;
    tp_pid pid;
};

static int
out_init(tp_ctx *ctx, void *state, void *arg)
{
    struct out_state *s = state;
    struct connect_arg *a = arg;
    tp_connect_opts o;

    tp_connect_opts_init(&o);
    o.address = "127.0.0.1";
    o.port = a->port;
    o.timeout_ms = 5000;
    return tp_tcp_connect(ctx, &o, &s->conn);
}

static const tp_behaviour outbound = {.name = "fnet-out",
                                      .state_size = sizeof(struct out_state),
                                      .init = out_init,
                                      .handle = out_handle,
                                      .terminate = out_terminate};

/* Waits until pred() or the time limit; true if pred() held. */
static bool
ob_wait(bool (*pred)(void), int ms)
{
    uint64_t deadline = tp_now_ns() + (uint64_t)ms * 1000000u * tpt_slow();
    bool ok;

    pthread_mutex_lock(&lock);
    while (!(ok = pred()) && tp_now_ns() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&cond, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

static bool
ob_finished(void)
{
    return ob.connected < 0 || ob.crashed ||
           (ob.echoed >= strlen(OUT_LINE) && ob.closed);
}

static bool
ob_gone(void)
{
    return ob.connected < 0 || ob.crashed || ob.closed;
}

/* ---------------------------------------------------------------------- */
/* Blocking loopback client                                               */

enum client_result { CL_ECHO, CL_CLOSED, CL_HANG, CL_NOCONN };

static const char *const client_name[] = {"echoed", "closed by server",
                                          "no answer", "could not connect"};

/* Connects, sends line, reads its echo. Waits at most ms for each step. */
static enum client_result
client_echo(uint16_t port, const char *line, int ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    size_t len = strlen(line), got = 0;
    char buf[256];
    enum client_result r = CL_HANG;
    uint64_t deadline = tp_now_ns() + (uint64_t)ms * 1000000u * tpt_slow();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return CL_NOCONN;
    }
    if (send(fd, line, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return CL_CLOSED;
    }
    while (got < len) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = (int64_t)(deadline - tp_now_ns()) / 1000000;
        ssize_t k;
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        k = recv(fd, buf + got, sizeof(buf) - got, 0);
        if (k <= 0) {
            r = CL_CLOSED;
            break;
        }
        got += (size_t)k;
    }
    if (got >= len) {
        assert_memory_equal(buf, line, len);
        r = CL_ECHO;
    }
    close(fd);
    return r;
}

/* ---------------------------------------------------------------------- */
/* Observer: runs functions inside an actor                               */

static void
do_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    (void)state;
    if (m->type == T_DO) {
        int (*fn)(tp_ctx *, void *);
        void *arg;
        memcpy(&fn, m->data, sizeof(fn));
        memcpy(&arg, (const char *)m->data + sizeof(fn), sizeof(arg));
        int rc = fn(ctx, arg);
        pthread_mutex_lock(&lock);
        ob.do_rc = rc;
        ob.dones++;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
}

static const tp_behaviour doer = {.name = "fnet-doer", .handle = do_handle};

static int
spawn_outbound(tp_ctx *ctx, void *arg)
{
    struct connect_arg *a = arg;

    return tp_spawn(ctx, &outbound, a, NULL, &a->pid);
}

static int
in_actor(tp_runtime *rt, tp_pid doer_pid, int (*fn)(tp_ctx *, void *),
         void *arg)
{
    char payload[sizeof(fn) + sizeof(arg)];
    unsigned want;
    int rc;

    memcpy(payload, &fn, sizeof(fn));
    memcpy(payload + sizeof(fn), &arg, sizeof(arg));
    pthread_mutex_lock(&lock);
    want = ob.dones + 1;
    pthread_mutex_unlock(&lock);
    rc = tp_runtime_send(rt, doer_pid, T_DO, payload, sizeof(payload));
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&lock);
    while (ob.dones < want)
        pthread_cond_wait(&cond, &lock);
    rc = ob.do_rc;
    pthread_mutex_unlock(&lock);
    return rc;
}

/* ---------------------------------------------------------------------- */
/* The scenario                                                           */

struct world {
    tp_runtime *rt;
    tp_listener *l;
    uint16_t port;
    tp_pid doer;
    unsigned client[4]; /* client results seen */
};

static void
ob_reset(void)
{
    pthread_mutex_lock(&lock);
    ob.connected = ob.closed = ob.crashed = 0;
    ob.echoed = 0;
    pthread_mutex_unlock(&lock);
}

static int
listen_echo(tp_runtime *rt, tp_listener **l)
{
    tp_listen_opts o;

    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &echo;
    return tp_tcp_listen(rt, &o, l);
}

/* One client; the result must be explained. Returns true to stop. */
static bool
step_client(struct world *w, const char *line)
{
    /* While every allocation fails nothing can answer: a short wait. */
    enum client_result r =
        client_echo(w->port, line, tpf_failing() ? 300 : 5000);

    w->client[r]++;
    if (r == CL_ECHO)
        return false;
    if (tpf_failed() == 0 || (r == CL_HANG && !tpf_failing())) {
        tpf_violation("client: %s%s", client_name[r],
                      tpf_failed() == 0 ? " with no failure injected" : "");
        tpf_print_fail_site();
    }
    return true;
}

static bool
step_outbound(struct world *w)
{
    struct connect_arg a = {w->port, TP_PID_NONE};

    ob_reset();
    if (tpf_call_failed("spawn outbound",
                        in_actor(w->rt, w->doer, spawn_outbound, &a)))
        return true;
    if (ob_wait(ob_finished, tpf_failing() ? 300 : 5000) && ob.connected > 0 &&
        !ob.crashed)
        return false;
    if (tpf_failed() == 0) {
        tpf_violation("outbound: connected %d echoed %zu closed %d crashed %d "
                      "with no failure injected",
                      ob.connected, ob.echoed, ob.closed, ob.crashed);
    } else if (!tpf_failing() && !ob_wait(ob_gone, 5000)) {
        /* One failure: the attempt must end one way or another. */
        tpf_violation("outbound: stuck (connected %d echoed %zu)", ob.connected,
                      ob.echoed);
        tpf_print_fail_site();
    }
    return true;
}

static bool
scenario(struct world *w)
{
    if (tpf_call_failed("spawn doer",
                        tp_runtime_spawn(w->rt, &doer, NULL, NULL, &w->doer)) ||
        tpf_call_failed("tcp_listen", listen_echo(w->rt, &w->l)))
        return true;
    w->port = tp_listener_port(w->l);
    if (step_client(w, "hello-1\n") || step_client(w, "hello-2\n") ||
        step_outbound(w))
        return true;
    tpf_call_failed("listener_close", tp_listener_close(w->l));
    w->l = NULL;
    return false;
}

/* With allocation restored the runtime listens, echoes, connects out. */
static void
check_usable(struct world *w)
{
    struct connect_arg a = {0, TP_PID_NONE};
    tp_listener *l = NULL;

    if (w->doer == TP_PID_NONE ||
        tp_actor_peek(w->rt, w->doer, &(tp_actor_info){0}) != 0)
        assert_int_equal(tp_runtime_spawn(w->rt, &doer, NULL, NULL, &w->doer),
                         0);
    assert_int_equal(listen_echo(w->rt, &l), 0);
    a.port = tp_listener_port(l);
    assert_int_equal(client_echo(a.port, "after\n", 5000), CL_ECHO);
    if (w->l != NULL)
        assert_int_equal(client_echo(w->port, "old\n", 5000), CL_ECHO);
    ob_reset();
    assert_int_equal(in_actor(w->rt, w->doer, spawn_outbound, &a), 0);
    assert_true(ob_wait(ob_finished, 5000));
    assert_true(ob.connected > 0 && !ob.crashed);
    assert_int_equal(tp_listener_close(l), 0);
}

static tp_runtime_options
opts(void)
{
    return tpf_runtime_opts(1, 5000 * tpt_slow());
}

static unsigned client_totals[4];

static bool
run_once(void *unused, uint64_t nth, bool persistent)
{
    tp_runtime_options o = opts();
    struct world w = {0};
    int64_t live0 = tpf_live();
    long fds0 = soak_fd_count(getpid());
    uint64_t mark = tpf_track_mark();
    bool done = false, hit, started = false;
    int rc;

    (void)unused;
    tpf_arm(nth, persistent);
    if (!tpf_call_failed("runtime_create", tp_runtime_create(&w.rt, &o))) {
        started = !tpf_call_failed("runtime_start", tp_runtime_start(w.rt));
        if (started && !scenario(&w)) {
            done = true;
            tpf_call_failed("runtime_stop", tp_runtime_stop(w.rt));
        }
    }
    hit = tpf_failed() != 0;
    tpf_disarm();
    if (w.rt != NULL) {
        if (started && !done)
            check_usable(&w);
        if (!done && (rc = tp_runtime_stop(w.rt)) != 0)
            tpf_violation("stop after the run: %s", tp_strerror(rc));
        tp_runtime_destroy(w.rt);
    }
    for (int i = 0; i < 4; i++)
        client_totals[i] += w.client[i];
    tpf_check_live(live0, mark);
    tpf_check_fds(fds0, soak_fd_count(getpid()));
    return hit;
}

static void
sweep(bool persistent)
{
    const struct tpf_scenario sc = {run_once, NULL};
    struct tpf_sweep_stats st;

    memset(client_totals, 0, sizeof(client_totals));
    assert_true(tpf_sweep(&sc, persistent, 1, &st));
    printf("network fault sweep (%s): %llu allocations in the scenario "
           "(%llu more by libuv, spared), %llu runs, %llu failures injected; "
           "clients: %u echoed, %u closed by the server, %u unanswered "
           "while allocations failed\n",
           persistent ? "Nth and later fail" : "Nth fails",
           (unsigned long long)st.total, (unsigned long long)tpf_spared(),
           (unsigned long long)st.runs, (unsigned long long)st.failures,
           client_totals[0], client_totals[1], client_totals[2]);
    assert_int_equal(tpf_violations(), 0);
    assert_true(st.runs > 20);
}

static void
test_faults_net_nth_fails(void **unused)
{
    (void)unused;
    sweep(false);
}

static void
test_faults_net_nth_and_later_fail(void **unused)
{
    (void)unused;
    sweep(true);
}

static int
setup(void **unused)
{
    tp_runtime_options o = opts();

    (void)unused;
    return tpf_group_setup(tpf_quiet_sink, &o, &doer, 99);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faults_net_nth_fails),
        cmocka_unit_test(test_faults_net_nth_and_later_fail),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, NULL);
}
