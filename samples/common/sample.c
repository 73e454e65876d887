/*
 * samples/common/sample.c - command line, runtime start, READY lines and
 * the clean stop shared by every sample. See sample.h.
 */
#include "sample.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static tp_runtime *signal_rt; /* the runtime the signal handler stops */

/* ---- command line ------------------------------------------------------ */

static void
usage(const char *prog, FILE *f)
{
    fprintf(f,
            "usage: %s [--port N] [--address IP] [--schedulers N]\n"
            "          [--console PATH] [--http-port N]\n"
            "          [--tls-cert PEM --tls-key PEM]\n"
            "          [--cluster NATS-URLS [--node NAME]]\n"
            "  --port N         TCP port to listen on (0 = any free port)\n"
            "  --address IP     address to listen on (default 127.0.0.1)\n"
            "  --schedulers N   scheduler threads (default: one per CPU)\n"
            "  --console PATH   admin console on this Unix socket\n"
            "  --http-port N    console dashboard and /metrics on this\n"
            "                   loopback port (0 = any free port)\n"
            "  --tls-cert PEM   certificate chain (and --tls-key PEM its\n"
            "                   key) for the services that offer TLS (the\n"
            "                   chat's WebSocket listener: wss)\n"
            "  --cluster URLS   join the cluster of this service over these\n"
            "                   NATS servers (nats://127.0.0.1:4222; the\n"
            "                   chat's rooms need JetStream: nats-server -js)\n"
            "  --node NAME      this node's name in the cluster (default\n"
            "                   <service>-<pid>)\n"
            "Prints 'READY <service> <address>' per listener; SIGINT or\n"
            "SIGTERM drains the connections and exits 0.\n",
            prog);
}

/* Reads an integer option value in [lo, hi]; -1 when it is not one. */
static long
parse_num(const char *text, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        return -1;
    return v;
}

/* Splits argv[*i] into name and value ("--port=7" or "--port 7"). Returns
 * the value, or NULL when it is missing. */
static const char *
option_value(int argc, char **argv, int *i, const char **name, size_t *nlen)
{
    const char *arg = argv[*i] + 2;
    const char *eq = strchr(arg, '=');

    *name = arg;
    if (eq != NULL) {
        *nlen = (size_t)(eq - arg);
        return eq + 1;
    }
    *nlen = strlen(arg);
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static bool
is_opt(const char *name, size_t nlen, const char *want)
{
    return strlen(want) == nlen && strncmp(name, want, nlen) == 0;
}

/* Stores one option. Returns 0 or -1 (unknown or bad value). */
static int
set_option(struct sample_opts *o, const char *name, size_t nlen,
           const char *val)
{
    long v;

    if (is_opt(name, nlen, "address")) {
        o->address = val;
        return 0;
    }
    if (is_opt(name, nlen, "console")) {
        o->console = val;
        return 0;
    }
    if (is_opt(name, nlen, "tls-cert")) {
        o->tls_cert = val;
        return 0;
    }
    if (is_opt(name, nlen, "tls-key")) {
        o->tls_key = val;
        return 0;
    }
    if (is_opt(name, nlen, "cluster")) {
        o->cluster = val;
        return 0;
    }
    if (is_opt(name, nlen, "node")) {
        o->node = val;
        return 0;
    }
    if (is_opt(name, nlen, "port") && (v = parse_num(val, 0, 65535)) >= 0) {
        o->port = (int)v;
        return 0;
    }
    if (is_opt(name, nlen, "http-port") &&
        (v = parse_num(val, 0, 65535)) >= 0) {
        o->http_port = (int)v;
        return 0;
    }
    if (is_opt(name, nlen, "schedulers") && (v = parse_num(val, 0, 256)) >= 0) {
        o->schedulers = (unsigned)v;
        return 0;
    }
    return -1;
}

/* Returns 0, 1 for --help, -1 on a bad command line (usage printed). */
static int
parse_args(struct sample_opts *o, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *name, *val;
        size_t nlen;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(o->name, stdout);
            return 1;
        }
        if (strncmp(argv[i], "--", 2) != 0 ||
            (val = option_value(argc, argv, &i, &name, &nlen)) == NULL ||
            set_option(o, name, nlen, val) != 0) {
            fprintf(stderr, "%s: bad argument '%s'\n", o->name, argv[i]);
            usage(o->name, stderr);
            return -1;
        }
    }
    return 0;
}

/* ---- runtime and signals ----------------------------------------------- */

static void
on_stop_signal(int sig)
{
    (void)sig;
    tp_runtime_request_stop(signal_rt); /* async-signal-safe */
}

static void
install_signals(tp_runtime *rt)
{
    struct sigaction sa;

    signal_rt = rt;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a write to a closed socket is an error */
}

/* Idle connections need descriptors: take all the system allows. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
sample_fail(const struct sample_opts *o, const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", o->name, what, tp_strerror(err));
    return err;
}

/* --cluster: joins the cluster named after the service ("chat"), under
 * --node or "<service>-<pid>"; prints "READY node <name>". */
static int
join_cluster(tp_runtime *rt, struct sample_opts *o, const char *service)
{
    static char node[64];
    tp_cluster_options co;
    int err;

    if (o->node != NULL)
        snprintf(node, sizeof(node), "%s", o->node);
    else
        snprintf(node, sizeof(node), "%s-%d", service, (int)getpid());
    tp_cluster_options_init(&co);
    co.node_name = node;
    co.cluster = service;
    co.urls = o->cluster;
    if ((err = tp_cluster_start(rt, &co)) != 0)
        return sample_fail(o, "cluster (--cluster, --node)", err);
    o->node = node;
    sample_ready("node", node);
    return 0;
}

int
sample_init(struct sample_opts *o, int argc, char **argv, const char *service,
            int default_port, tp_runtime **rt)
{
    static char prog[64];
    tp_runtime_options ro;
    int err;

    memset(o, 0, sizeof(*o));
    snprintf(prog, sizeof(prog), "troupe-%s", service);
    o->name = prog;
    o->address = "127.0.0.1";
    o->port = default_port;
    o->http_port = -1;
    if ((err = parse_args(o, argc, argv)) != 0)
        return err;
    raise_fd_limit();
    tp_runtime_options_init(&ro);
    ro.schedulers = o->schedulers;
    if ((err = tp_runtime_create(rt, &ro)) != 0) {
        sample_fail(o, "runtime", err);
        return -1;
    }
    if ((err = tp_runtime_start(*rt)) != 0) {
        sample_fail(o, "runtime start", err);
        tp_runtime_destroy(*rt);
        return -1;
    }
    if (o->cluster != NULL && join_cluster(*rt, o, service) != 0) {
        tp_runtime_destroy(*rt);
        return -1;
    }
    install_signals(*rt);
    return 0;
}

/* ---- services ---------------------------------------------------------- */

int
sample_conn_supervisor(tp_runtime *rt, const char *id, const char *name,
                       const tp_behaviour *conn)
{
    tp_pid root = tp_runtime_root_supervisor(rt);
    tp_sup_spec spec;
    tp_child_spec c;

    if (root == TP_PID_NONE)
        return -ESHUTDOWN;
    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, "conn", conn, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    /* Connections end on their own (a peer closes, a crash): such ends
     * are not restarts, so the default intensity never trips. */
    tp_child_spec_init(&c, id, &tp_supervisor_behaviour, &spec);
    c.opts.name = name; /* registered again at every restart */
    return tp_supervisor_start_child(rt, root, &c, NULL, NULL, 0);
}

void
sample_ready(const char *service, const char *what)
{
    printf("READY %s %s\n", service, what);
    fflush(stdout);
}

int
sample_listen(tp_runtime *rt, const struct sample_opts *o, const char *service,
              int port, const tp_behaviour *b, void *arg, const char *sup_name,
              const tp_conn_opts *conn, tp_listener **out)
{
    tp_listen_opts lo;
    tp_net_addr addr;
    char text[TP_NET_ADDR_TEXT];
    int err;

    tp_listen_opts_init(&lo);
    lo.address = o->address;
    lo.port = (uint16_t)port;
    lo.behaviour = b;
    lo.arg = arg;
    lo.supervisor_name = sup_name;
    lo.name = service;
    if (conn != NULL)
        lo.conn = *conn;
    if ((err = tp_tcp_listen(rt, &lo, out)) != 0) {
        char what[96];

        snprintf(what, sizeof(what), "%s: listen on %s port %d", service,
                 o->address, port);
        return sample_fail(o, what, err);
    }
    tp_listener_address(*out, &addr);
    tp_net_addr_format(&addr, text, sizeof(text));
    sample_ready(service, text);
    return 0;
}

int
sample_main(int argc, char **argv, const char *service, int default_port,
            sample_start_fn start)
{
    struct sample_opts o;
    tp_listener *l;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, service, default_port, &rt)) != 0)
        return r > 0 ? 0 : 2;
    if (start(rt, &o, o.port, &l) != 0 || sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        return 1;
    }
    return sample_run(rt, &o);
}

/* ---- the end ----------------------------------------------------------- */

int
sample_run(tp_runtime *rt, struct sample_opts *o)
{
    int err;

    tp_runtime_wait_stop_request(rt, -1);
    fprintf(stderr, "%s: stopping: draining connections\n", o->name);
    sample_console_stop(o);
    err = tp_runtime_stop(rt);
    tp_runtime_destroy(rt);
    if (err != 0) {
        sample_fail(o, "stop", err);
        return 1;
    }
    fprintf(stderr, "%s: stopped cleanly\n", o->name);
    return 0;
}
