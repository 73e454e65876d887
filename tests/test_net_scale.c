/*
 * tests/test_net_scale.c - many concurrent idle connections from a separate
 * client process (test_net_client): every one gets its actor, and the
 * server's user-space memory per idle connection (resident set growth
 * divided by the connections) stays within the budget of 600 bytes.
 *
 * Connections: TP_NET_CONNS, else 2,000 x TP_TEST_SCALE (at most 15,000).
 * CTest runs 2,000 (label scale) and 15,000 (labels scale;long).
 */
#include "net/net_int.h"
#include "test_net_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TP_NET_CLIENT
#error "TP_NET_CLIENT must name the client program"
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define BUDGET 600.0

static void
idle_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
}

/* The smallest connection actor: no state, ignores its messages. */
static const tp_behaviour idle_behaviour = {
    .name = "idle",
    .handle = idle_handle,
};

static int
conns_wanted(void)
{
    const char *e = getenv("TP_NET_CONNS");
    double n = e != NULL ? atof(e) : 2000.0 * tpt_scale();

    if (n > 15000)
        n = 15000;
    return n < 10 ? 10 : (int)n;
}

struct client {
    pid_t pid;
    FILE *out; /* its stdout */
    int in;    /* its stdin */
};

static struct client
client_start(uint16_t port, int n)
{
    struct client c;
    int to[2], from[2];
    char ports[16], ns[16];

    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    snprintf(ports, sizeof(ports), "%u", port);
    snprintf(ns, sizeof(ns), "%d", n);
    c.pid = fork();
    assert_true(c.pid >= 0);
    if (c.pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[1]);
        close(from[0]);
        execl(TP_NET_CLIENT, TP_NET_CLIENT, ports, ns, (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    c.in = to[1];
    c.out = fdopen(from[0], "r");
    return c;
}

static void
wait_conns(tp_listener *l, uint64_t n, unsigned ms)
{
    tp_listener_info info;
    uint64_t end = tnet_ms() + (uint64_t)ms * tpt_slow();

    do {
        tp_listener_get_info(l, &info);
        if (info.conns == n && info.accepted >= n)
            return;
        tpt_sleep_ms(20);
    } while (tnet_ms() < end);
    print_message(
        "conns %llu accepted %llu refused %llu emfile %llu\n",
        (unsigned long long)info.conns, (unsigned long long)info.accepted,
        (unsigned long long)info.refused, (unsigned long long)info.emfile);
    fail_msg("expected %llu connections", (unsigned long long)n);
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void
client_stop(struct client *c)
{
    int status = 0;

    assert_int_equal(write(c->in, "quit\n", 5), 5);
    close(c->in);
    waitpid(c->pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fclose(c->out);
}

static void
client_ready(struct client *c, int n)
{
    char line[64];
    int ready = 0;

    assert_non_null(fgets(line, sizeof(line), c->out));
    assert_int_equal(sscanf(line, "ready %d", &ready), 1);
    assert_int_equal(ready, n);
}

static void
test_net_scale_idle_connections(void **state)
{
    int n = conns_wanted(), warm = n / 4 < 1000 ? n / 4 : 1000;
    tp_runtime *rt;
    tp_runtime_stats st0, st1;
    tp_listen_opts o;
    tp_listener *l;
    struct client c1, c2;
    uint64_t rss0, rss1, rss2;
    double marginal, overall, actor, accounted;

    (void)state;
    raise_fd_limit();
    rt = tpt_runtime(2);
    tp_listen_opts_init(&o);
    o.address = "127.0.0.1";
    o.behaviour = &idle_behaviour;
    assert_int_equal(tp_tcp_listen(rt, &o, &l), 0);
    tpt_idle(rt);
    rss0 = tnet_rss();
    /* A first batch pays the one-time costs (pools, the first blocks of
     * each table, libuv's first arrays); the rest is what each further
     * idle connection costs. Both figures are reported. */
    c1 = client_start(tp_listener_port(l), warm);
    client_ready(&c1, warm);
    wait_conns(l, (uint64_t)warm, 60000);
    tpt_idle(rt);
    rss1 = tnet_rss();
    tp_runtime_get_stats(rt, &st0);
    c2 = client_start(tp_listener_port(l), n - warm);
    client_ready(&c2, n - warm);
    wait_conns(l, (uint64_t)n, 60000);
    tpt_idle(rt);
    rss2 = tnet_rss();
    tp_runtime_get_stats(rt, &st1);
    assert_int_equal(st1.actors - st0.actors, (uint64_t)(n - warm));
    marginal = (double)(rss2 - rss1) / (n - warm);
    overall = (double)(rss2 - rss0) / n;
    actor = (double)(st1.actor_bytes - st0.actor_bytes) / (n - warm);
    accounted =
        (double)(sizeof(struct tp__conn) + sizeof(struct tp__wslot)) + actor;
    print_message("%d idle connections: %.0f bytes/conn of server RSS "
                  "(%.0f for each after the first %d); accounted: %.0f = "
                  "connection %zu + actor %.0f + wrapper entry %zu\n",
                  n, overall, marginal, warm, accounted,
                  sizeof(struct tp__conn), actor, sizeof(struct tp__wslot));
    printf("RESULT net_scale.bytes_per_conn %.0f B\n", overall);
    printf("RESULT net_scale.bytes_per_extra_conn %.0f B\n", marginal);
    assert_true(accounted <= BUDGET);
    if (!SANITIZED) /* sanitizers add shadow memory and redzones */
        assert_true(marginal <= BUDGET);
    /* The clients leave: every connection closes and its actor ends. */
    client_stop(&c1);
    client_stop(&c2);
    wait_conns(l, 0, 60000);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_scale_idle_connections),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
