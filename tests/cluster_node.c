/*
 * tests/cluster_node.c - one Troupe cluster node driven over stdin/stdout,
 * for tests that run nodes as separate processes (test_cluster_partition:
 * one node per network namespace).
 *
 *   cluster_node NAME NATS_URLS
 *
 * Joins the cluster (retrying for 15 s while NATS is not there yet), runs
 * three actors and prints one line per event:
 *   READY <name> <pid>      joined; <pid> is a local actor ("target") in
 *                           its cluster-wide form, for the other nodes
 *   NODEUP <name>           tp_monitor_node() events of the watcher
 *   NODEDOWN <name> <reason>
 *   DOWN <pid> <reason>     a monitor the watcher holds fired
 *   MONITORING <pid> <rc>   answer to MONITOR
 *   SENT <rc>               answer to SEND (0 or a negative errno)
 *   TICK <n>                a local timer, once a second: local work goes on
 *   REGISTERED <name> <rc>  answer to REGISTER (tp_register_global of target)
 *   WHEREIS <name> <pid> <cached>  answer to WHEREIS (tp_whereis_global and
 *                           tp_whereis_global_cached; "none" for no owner)
 *   NAMES conflicts=<n> held=<n>  answer to NAMES (tp_cluster_stats)
 *   CONFLICT <name> <winner> <loser>  target got TP_MSG_NAME_CONFLICT
 * Commands, one per line on stdin: MONITOR <pid>, SEND <pid>,
 * REGISTER <name>, WHEREIS <name>, NAMES, QUIT (or EOF). REGISTER, WHEREIS
 * and NAMES block on NATS: the main thread runs them, not an actor.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>
#include <unistd.h>

enum { M_CMD = 1, M_TICK, M_PING };

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void
out(const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&out_lock);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
}

/* ---- the watcher: node events, monitors, commands ----------------------- */

static void
on_cmd(tp_ctx *ctx, const char *line, size_t len)
{
    char buf[128], pidtext[64];
    tp_pid pid;

    snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
    if (sscanf(buf, "MONITOR %63s", pidtext) == 1) {
        int rc = tp_pid_parse(pidtext, &pid);

        if (rc == 0)
            rc = tp_monitor(ctx, pid, NULL);
        out("MONITORING %s %d\n", pidtext, rc);
    } else if (sscanf(buf, "SEND %63s", pidtext) == 1) {
        int rc = tp_pid_parse(pidtext, &pid);

        if (rc == 0)
            rc = tp_send(ctx, pid, M_PING, "ping", 4);
        out("SENT %d\n", rc);
    }
}

static void
watcher_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    const tp_node_event *ev = m->data;
    tp_exit_reason why;
    char text[64];
    tp_pid pid;

    (void)state;
    switch (m->type) {
    case TP_MSG_NODE_UP:
        if (m->len == sizeof(*ev))
            out("NODEUP %s\n", ev->name);
        break;
    case TP_MSG_NODE_DOWN:
        if (m->len == sizeof(*ev))
            out("NODEDOWN %s %u\n", ev->name, ev->reason);
        break;
    case TP_MSG_DOWN:
        if (tp_msg_down(m, &pid, NULL, &why) == 0)
            out("DOWN %s %s\n", tp_pid_format(pid, text, sizeof(text)),
                why.text != NULL ? why.text : tp_exit_kind_name(why.kind));
        break;
    case M_CMD:
        on_cmd(ctx, m->data, m->len);
        break;
    }
}

static int
watcher_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)state;
    (void)arg;
    return tp_monitor_node(ctx, true);
}

static const tp_behaviour watcher = {
    .name = "watcher", .init = watcher_init, .handle = watcher_handle};

/* ---- the ticker and the target ------------------------------------------ */

static void
ticker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    unsigned *n = state;

    if (m->type != M_TICK)
        return;
    if (++*n % 10 == 0)
        out("TICK %u\n", *n / 10);
    tp_send_after(ctx, 100, tp_self(ctx), M_TICK, NULL, 0, NULL);
}

static const tp_behaviour ticker = {
    .name = "ticker", .state_size = sizeof(unsigned), .handle = ticker_handle};

static void
target_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    const tp_name_conflict *c = m->data;
    char w[64], l[64];

    (void)ctx;
    (void)state;
    /* pings are counted by the runtime, nothing more */
    if (m->type == TP_MSG_NAME_CONFLICT && m->len == sizeof(*c))
        out("CONFLICT %s %s %s\n", c->name,
            tp_pid_format(c->winner, w, sizeof(w)),
            tp_pid_format(c->loser, l, sizeof(l)));
}

/* REGISTER / WHEREIS / NAMES on the main thread; false: not one of them. */
static bool
names_cmd(tp_runtime *rt, tp_pid target, const char *line)
{
    char name[TP_NAME_MAX + 1], p1[64], p2[64];
    tp_cluster_summary sum;
    tp_pid a, b;

    if (sscanf(line, "REGISTER %63s", name) == 1) {
        out("REGISTERED %s %d\n", name, tp_register_global(rt, name, target));
    } else if (sscanf(line, "WHEREIS %63s", name) == 1) {
        a = tp_whereis_global(rt, name);
        b = tp_whereis_global_cached(rt, name);
        out("WHEREIS %s %s %s\n", name,
            a != TP_PID_NONE ? tp_pid_format(a, p1, sizeof(p1)) : "none",
            b != TP_PID_NONE ? tp_pid_format(b, p2, sizeof(p2)) : "none");
    } else if (strncmp(line, "NAMES", 5) == 0) {
        if (tp_cluster_stats(rt, &sum, NULL, 0) < 0)
            memset(&sum, 0, sizeof(sum));
        out("NAMES conflicts=%llu held=%u\n",
            (unsigned long long)sum.name_conflicts, sum.global_names);
    } else {
        return false;
    }
    return true;
}

static const tp_behaviour target = {.name = "target", .handle = target_handle};

/* ---- main --------------------------------------------------------------- */

static int
join(tp_runtime *rt, const char *name, const char *urls)
{
    tp_cluster_options co;
    int err = -ECONNREFUSED;

    tp_cluster_options_init(&co);
    co.node_name = name;
    co.urls = urls;
    /* The defaults (heartbeat 500 ms, down after 2 s), stretched by the
     * tests' slow-down factor: under a sanitizer a heartbeat can be late
     * by more than the default allows, which is a real (spurious) down. */
    if (getenv("TP_TEST_SLOW") != NULL && atoi(getenv("TP_TEST_SLOW")) > 1) {
        co.heartbeat_ms *= (unsigned)atoi(getenv("TP_TEST_SLOW"));
        co.down_after_ms *= (unsigned)atoi(getenv("TP_TEST_SLOW"));
    }
    for (int i = 0; i < 30 && err == -ECONNREFUSED; i++) {
        if ((err = tp_cluster_start(rt, &co)) == -ECONNREFUSED)
            usleep(500 * 1000); /* NATS is still starting */
    }
    return err;
}

int
main(int argc, char **argv)
{
    tp_runtime *rt;
    tp_runtime_options ro;
    tp_pid w, t, tk;
    char line[256], text[64];
    int err;

    if (argc != 3) {
        fprintf(stderr, "usage: cluster_node NAME NATS_URLS\n");
        return 2;
    }
    tp_runtime_options_init(&ro);
    ro.schedulers = 2;
    if ((err = tp_runtime_create(&rt, &ro)) != 0 ||
        (err = tp_runtime_start(rt)) != 0 ||
        (err = join(rt, argv[1], argv[2])) != 0 ||
        (err = tp_runtime_spawn(rt, &watcher, NULL, NULL, &w)) != 0 ||
        (err = tp_runtime_spawn(rt, &ticker, NULL, NULL, &tk)) != 0 ||
        (err = tp_runtime_spawn(rt, &target, NULL, NULL, &t)) != 0) {
        fprintf(stderr, "cluster_node %s: %s\n", argv[1], tp_strerror(err));
        return 1;
    }
    tp_runtime_send(rt, tk, M_TICK, NULL, 0);
    out("READY %s %s\n", argv[1],
        tp_pid_format(tp_cluster_pid(rt, t), text, sizeof(text)));
    while (fgets(line, sizeof(line), stdin) != NULL &&
           strncmp(line, "QUIT", 4) != 0)
        if (!names_cmd(rt, t, line))
            tp_runtime_send(rt, w, M_CMD, line, strcspn(line, "\n"));
    tp_runtime_destroy(rt);
    return 0;
}
