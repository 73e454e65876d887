/*
 * bench/direct_conns.c - memory of idle SUPERVISED connections whose actor
 * is a direct-style actor parked in tp_tcp_recv_msg(), with the meter of
 * bench/idle_conns.c: this process runs the runtime and a listener whose
 * connection actors join a dynamic supervisor (tp_listen_opts.
 * supervisor_name, as the samples do), and forks the load generator in
 * idle mode (build/bench/loadgen --idle=N --pid=this), which reads this
 * process's VmRSS before and after it opened the connections.
 *
 *   direct_conns [--conns=15000] [--schedulers=0] [--direct=1] [--fixed=0]
 *                [--loadgen=PATH]
 *
 * --direct=0 runs the same echo as a callback actor (the same run's
 * baseline); --fixed=1 gives the direct actors fixed stacks instead of
 * copied ones.
 *
 * Prints RESULT direct_conns.<what> lines (loadgen's idle_conns.* figures
 * renamed, prefixed with the style: direct_conns.copied.bytes_per_conn,
 * direct_conns.callback.bytes_per_conn, ...).
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
#include <troupe/direct.h>
#include <unistd.h>

/* The direct echo (samples/echo/echo_direct.c): parked in the read. */
static void
echo_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    tp_conn conn;

    (void)state;
    (void)arg;
    tp_receive(ctx, &m, -1); /* TP_MSG_TCP_OPENED */
    conn = tp_msg_conn(m);
    while (tp_tcp_recv_msg(ctx, conn, &m, -1) > 0)
        tp_tcp_send(ctx, conn, m->data, m->len);
}

static const tp_direct echo_copied = {
    TP_DIRECT_BEHAVIOUR("echo.direct", 0),
    .main = echo_main,
    .stack = TP_STACK_COPIED,
};

static const tp_direct echo_fixed = {
    TP_DIRECT_BEHAVIOUR("echo.direct", 0),
    .main = echo_main,
    .stack = TP_STACK_FIXED,
    .stack_size = TP_DIRECT_STACK_MIN,
};

/* The callback echo (samples/echo/echo.c). */
static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_callback = {
    .name = "echo.callback",
    .handle = echo_handle,
};

static int
conn_supervisor(tp_runtime *rt, const tp_behaviour *b)
{
    tp_sup_spec spec;
    tp_child_spec c;

    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, "conn", b, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&c, "conns", &tp_supervisor_behaviour, &spec);
    c.opts.name = "direct.conns";
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

/* Runs loadgen --idle with its stdout on a pipe; its RESULT lines come out
 * renamed. */
static int
run_meter(const char *loadgen, uint16_t port, long conns, const char *style)
{
    char a[32], b[32], c[32], line[512];
    int fds[2], status = 0;
    pid_t pid;
    FILE *in;

    snprintf(a, sizeof(a), "--port=%u", port);
    snprintf(b, sizeof(b), "--idle=%ld", conns);
    snprintf(c, sizeof(c), "--pid=%d", (int)getpid());
    fflush(stdout);
    if (pipe(fds) != 0)
        return 1;
    pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(loadgen, loadgen, a, b, c, (char *)NULL);
        perror(loadgen);
        _exit(127);
    }
    close(fds[1]);
    in = fdopen(fds[0], "r");
    while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
        if (strncmp(line, "RESULT idle_conns.", 18) == 0)
            printf("RESULT direct_conns.%s.%s", style, line + 18);
        else
            fputs(line, stdout);
    }
    if (in != NULL)
        fclose(in);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int
main(int argc, char **argv)
{
    long conns = tpb_opt(argc, argv, "conns", 15000);
    bool direct = tpb_opt(argc, argv, "direct", 1) != 0;
    bool fixed = tpb_opt(argc, argv, "fixed", 0) != 0;
    const tp_behaviour *b =
        !direct ? &echo_callback
                : tp_direct_behaviour(fixed ? &echo_fixed : &echo_copied);
    const char *style = !direct ? "callback" : fixed ? "fixed" : "copied";
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
        (err = tp_runtime_start(rt)) != 0 ||
        (err = conn_supervisor(rt, b)) != 0)
        return fprintf(stderr, "direct_conns: %s\n", tp_strerror(err)), 1;
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = b;
    lo.supervisor_name = "direct.conns";
    if ((err = tp_tcp_listen(rt, &lo, &l)) != 0)
        return fprintf(stderr, "direct_conns: %s\n", tp_strerror(err)), 1;
    tp_runtime_wait_idle(rt, 5000);
    err = run_meter(loadgen_path(argc, argv, path, sizeof(path)),
                    tp_listener_port(l), conns, style);
    tp_runtime_destroy(rt);
    return err;
}
