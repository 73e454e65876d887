/*
 * tests/test_cluster_partition.c - a real network partition between two
 * cluster nodes (issue 11): each node runs in a network namespace of its
 * own (ip netns), joined by a veth pair; nats-server runs in node A's
 * namespace. The test cuts the link (ip link set down in B's namespace)
 * and checks, with the default heartbeat (500 ms, down after 2 s):
 *  - A sees node B down within 3 s, and its monitor of an actor on B
 *    fires with reason noconnection;
 *  - a send from A to B's actor meanwhile fails at once (-ENOTCONN, counted
 *    as dropped), nothing queued;
 *  - B's local work never stops (its timer keeps ticking);
 *  - once the link is back, B reconnects to NATS by itself and A sees it
 *    up again;
 *  - cluster-wide names (JetStream bucket on that server): "svc", held by
 *    B's actor before the cut, is registered by A's actor during it (B's
 *    owner counts as gone while B is down); after the heal exactly one
 *    owner remains everywhere (A's, the bucket's), B's actor is told
 *    (TP_MSG_NAME_CONFLICT) and the conflict is counted once, on B.
 * Needs root and iproute2: skipped with a message where namespaces cannot
 * be created (or nats-server is missing). Everything it creates is removed
 * at the end, also after a failure.
 */
#include "testutil.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NATS_PORT 4222 /* inside A's own namespace: nothing else there */

static long long
now_ms(void)
{
    return (long long)(tp_now_ns() / 1000000u);
}

static char ns_a[32], ns_b[32], if_a[16], if_b[16], ip_a[32], ip_b[32];
static char js_dir[64]; /* the NATS server's JetStream store */
static bool made;

/* Runs a shell command (quietly); returns its exit status. */
static int
sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    int st;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
teardown_net(void)
{
    if (!made)
        return;
    sh("ip netns pids %s 2>/dev/null | xargs -r kill -9", ns_a);
    sh("ip netns pids %s 2>/dev/null | xargs -r kill -9", ns_b);
    sh("ip netns del %s 2>/dev/null", ns_a); /* takes the veth pair along */
    sh("ip netns del %s 2>/dev/null", ns_b);
    if (js_dir[0] != '\0')
        sh("rm -rf '%s'", js_dir);
    js_dir[0] = '\0';
    made = false;
}

/* Two namespaces and a veth pair between them; false if this machine
 * does not let us (no root, no iproute2, no netns support). */
static bool
setup_net(void)
{
    unsigned k = (unsigned)getpid() % 250u + 1u;

    snprintf(ns_a, sizeof(ns_a), "tpA%u", (unsigned)getpid());
    snprintf(ns_b, sizeof(ns_b), "tpB%u", (unsigned)getpid());
    snprintf(if_a, sizeof(if_a), "tpa%u", (unsigned)getpid() % 100000u);
    snprintf(if_b, sizeof(if_b), "tpb%u", (unsigned)getpid() % 100000u);
    snprintf(ip_a, sizeof(ip_a), "10.251.%u.1", k);
    snprintf(ip_b, sizeof(ip_b), "10.251.%u.2", k);
    if (geteuid() != 0 || sh("command -v ip >/dev/null 2>&1") != 0)
        return false;
    if (sh("ip netns add %s 2>/dev/null", ns_a) != 0)
        return false;
    made = true;
    atexit(teardown_net);
    return sh("ip netns add %s", ns_b) == 0 &&
           sh("ip link add %s type veth peer name %s", if_a, if_b) == 0 &&
           sh("ip link set %s netns %s", if_a, ns_a) == 0 &&
           sh("ip link set %s netns %s", if_b, ns_b) == 0 &&
           sh("ip -n %s addr add %s/24 dev %s", ns_a, ip_a, if_a) == 0 &&
           sh("ip -n %s addr add %s/24 dev %s", ns_b, ip_b, if_b) == 0 &&
           sh("ip -n %s link set lo up", ns_a) == 0 &&
           sh("ip -n %s link set lo up", ns_b) == 0 &&
           sh("ip -n %s link set %s up", ns_a, if_a) == 0 &&
           sh("ip -n %s link set %s up", ns_b, if_b) == 0;
}

/* ---- processes in a namespace ------------------------------------------- */

struct proc {
    pid_t pid;
    int in, out;
    char buf[8192];
    size_t len;
    unsigned ticks; /* last TICK seen */
    /* Lines read past while waiting for another one (TICKs excepted): two
     * events of one cause (NODEDOWN and a monitor's DOWN) come in either
     * order, so a later expect looks here first. */
    char seen[8][256];
    unsigned nseen;
};

static void
proc_start(struct proc *p, const char *ns, char *const argv[])
{
    int in[2], out[2];
    char *args[16];
    int n = 0;

    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    args[n++] = "ip";
    args[n++] = "netns";
    args[n++] = "exec";
    args[n++] = (char *)ns;
    for (int i = 0; argv[i] != NULL && n < 15; i++)
        args[n++] = argv[i];
    args[n] = NULL;
    memset(p, 0, sizeof(*p));
    p->pid = fork();
    assert_true(p->pid >= 0);
    if (p->pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[1]);
        close(out[0]);
        execvp("ip", args);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->in = in[1];
    p->out = out[0];
}

static void
proc_stop(struct proc *p)
{
    if (p->pid <= 0)
        return;
    (void)!write(p->in, "QUIT\n", 5);
    close(p->in);
    for (int i = 0; i < 100 && waitpid(p->pid, NULL, WNOHANG) == 0; i++)
        usleep(50 * 1000);
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    close(p->out);
    p->pid = 0;
}

static void
proc_say(struct proc *p, const char *line)
{
    assert_int_equal(write(p->in, line, strlen(line)), (ssize_t)strlen(line));
}

/* Takes a line starting with `want` out of p->seen. */
static bool
proc_seen(struct proc *p, const char *want, char *got, size_t cap)
{
    for (unsigned i = 0; i < p->nseen; i++) {
        if (strncmp(p->seen[i], want, strlen(want)) != 0)
            continue;
        if (got != NULL)
            snprintf(got, cap, "%s", p->seen[i]);
        memmove(p->seen[i], p->seen[i + 1],
                (p->nseen - i - 1) * sizeof(p->seen[0]));
        p->nseen--;
        return true;
    }
    return false;
}

static void
proc_remember(struct proc *p, const char *line)
{
    if (p->nseen == sizeof(p->seen) / sizeof(p->seen[0])) {
        memmove(p->seen[0], p->seen[1], (p->nseen - 1) * sizeof(p->seen[0]));
        p->nseen--;
    }
    snprintf(p->seen[p->nseen++], sizeof(p->seen[0]), "%.*s",
             (int)sizeof(p->seen[0]) - 1, line);
}

/* Reads lines until one starts with `want` (copied to got), within ms; a
 * line read past earlier counts. TICK lines update p->ticks on the way. */
static bool
proc_expect(struct proc *p, const char *want, int ms, char *got, size_t cap)
{
    long long end = now_ms() + (long long)ms * tpt_slow();

    if (proc_seen(p, want, got, cap))
        return true;
    for (;;) {
        char *nl;

        while ((nl = memchr(p->buf, '\n', p->len)) != NULL) {
            size_t n = (size_t)(nl - p->buf);
            bool hit;
            unsigned t;

            *nl = '\0';
            if (sscanf(p->buf, "TICK %u", &t) == 1)
                p->ticks = t;
            hit = strncmp(p->buf, want, strlen(want)) == 0;
            if (!hit && strncmp(p->buf, "TICK ", 5) != 0)
                proc_remember(p, p->buf);
            if (hit && got != NULL)
                snprintf(got, cap, "%.*s", (int)(cap - 1), p->buf);
            memmove(p->buf, nl + 1, p->len - n - 1);
            p->len -= n + 1;
            if (hit)
                return true;
        }
        long long left = end - now_ms();
        struct pollfd pf = {p->out, POLLIN, 0};
        ssize_t r;

        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return false;
        r = read(p->out, p->buf + p->len, sizeof(p->buf) - 1 - p->len);
        if (r <= 0)
            return false;
        p->len += (size_t)r;
        if (p->len == sizeof(p->buf) - 1)
            p->len = 0; /* a line this long is not ours */
    }
}

/* ---- the test ----------------------------------------------------------- */

static void
test_partition(void **state)
{
    char urls[64], line[256], bpid[64], apid[64], cmd[128], want[192];
    char *nats[] = {"nats-server", "-a",  ip_a,   "-p", "4222",
                    "-js",         "-sd", js_dir, NULL};
    char *node_b[] = {CLUSTER_NODE, "B", urls, NULL};
    char *node_a[] = {CLUSTER_NODE, "A", urls, NULL};
    struct proc n, a, b;
    unsigned ticks0;
    long long t0, t_down, t_dmon, t_up;

    (void)state;
    if (access("/usr/sbin/nats-server", X_OK) != 0 &&
        access("/usr/bin/nats-server", X_OK) != 0) {
        print_message("cluster_partition: skipped: nats-server missing\n");
        skip();
    }
    if (!setup_net()) {
        teardown_net();
        print_message("cluster_partition: skipped: cannot create network "
                      "namespaces here (needs root and iproute2)\n");
        skip();
    }
    snprintf(js_dir, sizeof(js_dir), "/tmp/tp-partition-js-XXXXXX");
    assert_non_null(mkdtemp(js_dir));
    snprintf(urls, sizeof(urls), "nats://%s:%d", ip_a, NATS_PORT);
    proc_start(&n, ns_a, nats);
    proc_start(&b, ns_b, node_b);
    assert_true(proc_expect(&b, "READY B ", 30000, line, sizeof(line)));
    assert_int_equal(sscanf(line, "READY B %63s", bpid), 1);
    proc_start(&a, ns_a, node_a);
    assert_true(proc_expect(&a, "READY A ", 30000, line, sizeof(line)));
    assert_int_equal(sscanf(line, "READY A %63s", apid), 1);
    /* Both see each other (A may have seen B during its join). */
    assert_true(proc_expect(&b, "NODEUP A", 10000, NULL, 0));
    snprintf(cmd, sizeof(cmd), "MONITOR %s\n", bpid);
    proc_say(&a, cmd);
    assert_true(proc_expect(&a, "MONITORING ", 5000, line, sizeof(line)));
    assert_non_null(strstr(line, " 0"));
    snprintf(cmd, sizeof(cmd), "SEND %s\n", bpid);
    proc_say(&a, cmd);
    assert_true(proc_expect(&a, "SENT 0", 5000, NULL, 0));
    assert_true(proc_expect(&b, "TICK ", 5000, NULL, 0));
    ticks0 = b.ticks;
    /* B's actor holds the cluster-wide name svc; A sees it. */
    proc_say(&b, "REGISTER svc\n");
    assert_true(proc_expect(&b, "REGISTERED svc 0", 15000, NULL, 0));
    proc_say(&a, "WHEREIS svc\n");
    assert_true(proc_expect(&a, "WHEREIS svc ", 15000, line, sizeof(line)));
    snprintf(want, sizeof(want), "WHEREIS svc %s ", bpid);
    assert_true(strncmp(line, want, strlen(want)) == 0);

    /* The cut. */
    t0 = now_ms();
    assert_int_equal(sh("ip -n %s link set %s down", ns_b, if_b), 0);
    assert_true(proc_expect(&a, "NODEDOWN B", 10000, line, sizeof(line)));
    t_down = now_ms() - t0;
    assert_true(proc_expect(&a, "DOWN ", 5000, line, sizeof(line)));
    t_dmon = now_ms() - t0;
    assert_non_null(strstr(line, bpid));
    assert_non_null(strstr(line, "noconnection"));
    print_message("partition: node B seen down by A after %lld ms, the "
                  "monitor of B's actor fired (noconnection) after %lld ms\n",
                  t_down, t_dmon);
    assert_true(t_down <= 3000LL * tpt_slow());
    /* Meanwhile a send fails at once instead of being queued. */
    proc_say(&a, cmd); /* SEND again */
    assert_true(proc_expect(&a, "SENT ", 5000, line, sizeof(line)));
    assert_int_equal(atoi(line + 5), -ENOTCONN);
    /* B's own work went on: its timer ticks through the partition. */
    assert_true(proc_expect(&b, "TICK ", 5000, NULL, 0));
    assert_true(proc_expect(&b, "TICK ", 5000, NULL, 0));
    assert_true(b.ticks >= ticks0 + 2);
    /* A's side registers svc too: B's owner counts as gone. B, cut off
     * from NATS, still believes it holds it. */
    proc_say(&a, "REGISTER svc\n");
    assert_true(proc_expect(&a, "REGISTERED svc 0", 15000, NULL, 0));
    assert_true(proc_expect(&b, "NODEDOWN A", 10000, NULL, 0));
    /* B cannot register while cut off: its request times out (and in
     * case it reaches the server after the heal, it is released then). */
    proc_say(&b, "REGISTER late\n");
    assert_true(proc_expect(&b, "REGISTERED late ", 30000, line, sizeof(line)));
    assert_int_not_equal(atoi(line + strlen("REGISTERED late ")), 0);
    print_message("partition: B's registration while cut off: %s\n", line);

    /* The link back: B reconnects to NATS by itself, A sees it up. */
    t0 = now_ms();
    assert_int_equal(sh("ip -n %s link set %s up", ns_b, if_b), 0);
    assert_true(proc_expect(&a, "NODEUP B", 30000, NULL, 0));
    t_up = now_ms() - t0;
    print_message("partition healed: A sees B up again after %lld ms\n", t_up);

    /* The name conflict: resolved for the bucket's owner (A's actor), the
     * loser told, one owner everywhere, counted once (on B). */
    assert_true(proc_expect(&b, "CONFLICT svc ", 20000, line, sizeof(line)));
    snprintf(want, sizeof(want), "CONFLICT svc %s %s", apid, bpid);
    assert_string_equal(line, want);
    print_message("name conflict resolved %lld ms after the heal: %s\n",
                  now_ms() - t0, line);
    snprintf(want, sizeof(want), "WHEREIS svc %s %s", apid, apid);
    for (int i = 0; i < 50; i++) { /* the cached copies follow */
        proc_say(&b, "WHEREIS svc\n");
        assert_true(proc_expect(&b, "WHEREIS svc ", 15000, line, sizeof(line)));
        if (strcmp(line, want) == 0)
            break;
        usleep(100 * 1000);
    }
    assert_string_equal(line, want);
    proc_say(&a, "WHEREIS svc\n");
    assert_true(proc_expect(&a, "WHEREIS svc ", 15000, line, sizeof(line)));
    assert_string_equal(line, want);
    proc_say(&b, "NAMES\n");
    assert_true(proc_expect(&b, "NAMES ", 5000, line, sizeof(line)));
    assert_string_equal(line, "NAMES conflicts=1 held=0");
    proc_say(&a, "NAMES\n");
    assert_true(proc_expect(&a, "NAMES ", 5000, line, sizeof(line)));
    assert_string_equal(line, "NAMES conflicts=0 held=1");
    /* The registration B was told had failed owns nothing in the end. */
    for (int i = 0; i < 50; i++) {
        proc_say(&a, "WHEREIS late\n");
        assert_true(
            proc_expect(&a, "WHEREIS late ", 15000, line, sizeof(line)));
        if (strcmp(line, "WHEREIS late none none") == 0)
            break;
        usleep(100 * 1000);
    }
    assert_string_equal(line, "WHEREIS late none none");

    proc_stop(&a);
    proc_stop(&b);
    proc_stop(&n);
    teardown_net();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
