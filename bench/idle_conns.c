/*
 * bench/idle_conns.c - memory of idle TCP connections in Troupe: runs the
 * echo server's runtime in this process and the load generator in idle mode
 * as a separate process (the same meter as for the peers: it reads this
 * process's VmRSS before and after it opened the connections).
 *
 *   idle_conns [--conns=15000] [--schedulers=0] [--supervised=0]
 *              [--loadgen=PATH]
 *
 * --supervised=1: every connection actor joins a dynamic supervisor (as
 * the samples' connections do: tp_listen_opts.supervisor_name), so the
 * figure includes what supervision costs per connection.
 *
 * Prints loadgen's RESULT lines (idle_conns.bytes_per_conn, ...).
 */
#include "benchutil.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <troupe.h>
#include <unistd.h>

static void
idle_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA) /* the meter's liveness check */
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour idle_behaviour = {
    .name = "idle",
    .handle = idle_handle,
};

/* A dynamic supervisor of temporary connection actors, registered as
 * "idle.conns", under the root supervisor. */
static int
conn_supervisor(tp_runtime *rt)
{
    tp_sup_spec spec;
    tp_child_spec c;

    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, "conn", &idle_behaviour, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&c, "conns", &tp_supervisor_behaviour, &spec);
    c.opts.name = "idle.conns";
    return tp_supervisor_start_child(rt, tp_runtime_root_supervisor(rt), &c,
                                     NULL, NULL, 0);
}

static const char *
loadgen_path(int argc, char **argv, char *buf, size_t size)
{
    char self[PATH_MAX];

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--loadgen=", 10) == 0)
            return argv[i] + 10;
    }
    snprintf(self, sizeof(self), "%s", argv[0]);
    snprintf(buf, size, "%s/loadgen", dirname(self));
    return buf;
}

static int
run_meter(const char *loadgen, uint16_t port, long conns)
{
    char a[32], b[32], c[32];
    pid_t pid;
    int status = 0;

    snprintf(a, sizeof(a), "--port=%u", port);
    snprintf(b, sizeof(b), "--idle=%ld", conns);
    snprintf(c, sizeof(c), "--pid=%d", (int)getpid());
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        execl(loadgen, loadgen, a, b, c, (char *)NULL);
        perror(loadgen);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int
main(int argc, char **argv)
{
    long conns = tpb_opt(argc, argv, "conns", 15000);
    char path[PATH_MAX];
    tp_runtime_options ro;
    tp_listen_opts lo;
    tp_runtime *rt;
    tp_listener *l;
    struct rlimit rl;
    int err;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    tp_runtime_options_init(&ro);
    ro.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 0);
    if ((err = tp_runtime_create(&rt, &ro)) != 0 ||
        (err = tp_runtime_start(rt)) != 0)
        return fprintf(stderr, "idle_conns: %s\n", tp_strerror(err)), 1;
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &idle_behaviour;
    if (tpb_opt(argc, argv, "supervised", 0)) {
        if ((err = conn_supervisor(rt)) != 0)
            return fprintf(stderr, "idle_conns: %s\n", tp_strerror(err)), 1;
        lo.supervisor_name = "idle.conns";
    }
    if ((err = tp_tcp_listen(rt, &lo, &l)) != 0)
        return fprintf(stderr, "idle_conns: %s\n", tp_strerror(err)), 1;
    tp_runtime_wait_idle(rt, 5000);
    err = run_meter(loadgen_path(argc, argv, path, sizeof(path)),
                    tp_listener_port(l), conns);
    tp_runtime_destroy(rt);
    return err;
}
