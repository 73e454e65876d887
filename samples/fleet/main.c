/*
 * samples/fleet/main.c - troupe-fleet-node: one node of a fleet.
 *
 *   troupe-fleet-node [--node NAME] [--port 7100] [--max-conns 19000]
 *                     [--drain-delay MS] [--drain-deadline MS]
 *                     [--stat-ms MS] [--console PATH] [--http-port N]
 *                     [--schedulers N] [--address IP]
 *
 * Every connection is an actor under the node's dynamic supervisor
 * ("fleet.conns"), speaking fleet_proto.h. Several node processes may
 * listen on the same port: every listening socket is SO_REUSEPORT, so the
 * kernel spreads the connections over the nodes (and, in each, over its
 * schedulers). The console's HTTP port answers GET /health for a load
 * balancer; a drain (`troupectl drain`, SIGTERM) turns it to 503 first and
 * closes the listeners --drain-delay ms later, so the balancer stops
 * sending before the node stops accepting.
 *
 * Lines for scripts (stdout): "READY fleet ADDR", "READY console PATH",
 * "READY dashboard URL", "READY health URL", "FLEET node=NAME pid=PID
 * fd_limit=N", then a first STAT line (the baseline) and another whenever
 * something changed, every --stat-ms at most:
 *   STAT node=NAME conns=N accepted=N refused=N named=N sends=N
 *        delivered=N noname=N rss=BYTES rss0=BYTES draining=0|1
 * (rss0: the resident set before the first connection).
 */
#include "fleet.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <troupe/console.h>
#include <unistd.h>

#define FLEET_DEFAULT_PORT 7100
#define FLEET_ARGS_MAX     64

/* The fleet's own options (the common ones are the samples'). */
struct fleet_opts {
    const char *node;           /* --node NAME (default n<pid>) */
    long max_conns;             /* --max-conns N */
    long drain_delay_ms;        /* --drain-delay MS */
    long drain_deadline_ms;     /* --drain-deadline MS */
    long stat_ms;               /* --stat-ms MS */
    const char *cluster;        /* --cluster URL: not in this build */
    bool proxy;                 /* --proxy-protocol: behind send-proxy(-v2) */
    bool unsupervised;          /* --unsupervised: measurement switch */
    bool no_register;           /* --no-register: measurement switch */
    char *rest[FLEET_ARGS_MAX]; /* what sample_init() parses */
    int nrest;
};

/* ---- command line ------------------------------------------------------ */

static void
usage(FILE *f)
{
    fprintf(
        f,
        "troupe-fleet-node: one node of a fleet of idle, supervised\n"
        "connections (see samples/fleet/README.md). Its options:\n"
        "  --node NAME          node name (1..31 of A-Z a-z 0-9 . _ -;\n"
        "                       default n<pid>)\n"
        "  --max-conns N        connections held at most (default\n"
        "                       19000; more are refused)\n"
        "  --drain-delay MS     drain: /health is 503 this long before\n"
        "                       the listeners close (default 2000)\n"
        "  --drain-deadline MS  drain: connections still open this long\n"
        "                       after that are closed (default 5000)\n"
        "  --stat-ms MS         STAT lines at most this often (1000)\n"
        "  --cluster URLS       join a cluster over NATS (node name =\n"
        "                       --node): SENDs reach names on any node\n"
        "  --proxy-protocol     every connection starts with a PROXY v1/v2\n"
        "                       header (HAProxy send-proxy-v2)\n"
        "measurement switches (what each part costs, bench/FLEET.md):\n"
        "  --unsupervised       connections under no supervisor\n"
        "  --no-register        HELLO answers OK without taking the\n"
        "                       name (SEND then finds no one)\n"
        "and the common ones (default port %d):\n",
        FLEET_DEFAULT_PORT);
}

static long
num(const char *v, long lo, long hi)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
        return -1;
    return n;
}

/* "--name=V" or "--name V": the value, or NULL if argv[*i] is not --name. */
static const char *
take(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (a == NULL || strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
        return NULL;
    if (a[2 + n] == '=')
        return a + 3 + n;
    if (a[2 + n] != '\0' || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

/* Takes one fleet option at argv[*i]. Returns 1 (taken), 0 (not ours), -1
 * (ours, with a bad value). */
static int
fleet_option(struct fleet_opts *f, int argc, char **argv, int *i)
{
    const char *v;

    if (strcmp(argv[*i], "--proxy-protocol") == 0)
        return f->proxy = true, 1;
    if (strcmp(argv[*i], "--unsupervised") == 0)
        return f->unsupervised = true, 1;
    if (strcmp(argv[*i], "--no-register") == 0)
        return f->no_register = true, 1;
    if ((v = take(argc, argv, i, "node")) != NULL)
        return f->node = v,
               fleet_name_ok(v, strlen(v)) && strlen(v) <= FLEET_NODE_MAX ? 1
                                                                          : -1;
    if ((v = take(argc, argv, i, "cluster")) != NULL)
        return f->cluster = v, 1;
    if ((v = take(argc, argv, i, "max-conns")) != NULL)
        return (f->max_conns = num(v, 1, 10000000)) > 0 ? 1 : -1;
    if ((v = take(argc, argv, i, "drain-delay")) != NULL)
        return (f->drain_delay_ms = num(v, 0, 600000)) >= 0 ? 1 : -1;
    if ((v = take(argc, argv, i, "drain-deadline")) != NULL)
        return (f->drain_deadline_ms = num(v, 1, 600000)) > 0 ? 1 : -1;
    if ((v = take(argc, argv, i, "stat-ms")) != NULL)
        return (f->stat_ms = num(v, 10, 3600000)) > 0 ? 1 : -1;
    return 0;
}

/* Splits argv into the fleet's options and the rest (argv[0] first).
 * Returns 0, or -1 after printing why. */
static int
parse_fleet(struct fleet_opts *f, int argc, char **argv)
{
    f->max_conns = 19000;
    f->drain_delay_ms = 2000;
    f->drain_deadline_ms = 5000;
    f->stat_ms = 1000;
    f->rest[f->nrest++] = argv[0];
    for (int i = 1; i < argc; i++) {
        int r;

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            usage(stdout);
        if ((r = fleet_option(f, argc, argv, &i)) < 0) {
            fprintf(stderr, "troupe-fleet-node: bad value for %s\n", argv[i]);
            return -1;
        }
        if (r == 0 && f->nrest < FLEET_ARGS_MAX - 1)
            f->rest[f->nrest++] = argv[i];
    }
    f->rest[f->nrest] = NULL;
    return 0;
}

/* ---- the reporter ------------------------------------------------------ */

enum { FLEET_TICK = 1 };

struct reporter_arg {
    struct fleet_node *node;
    tp_listener *l;
    tp_console *cons;
    uint32_t every_ms;
};

struct reporter {
    struct reporter_arg a;
    uint64_t rss0;
    char last[512];
};

static void
stat_line(struct reporter *r, char *buf, size_t cap, uint64_t rss)
{
    struct fleet_node *n = r->a.node;
    tp_listener_info li;

    tp_listener_get_info(r->a.l, &li);
    snprintf(buf, cap,
             "STAT node=%s conns=%llu accepted=%llu refused=%llu named=%llu "
             "sends=%llu delivered=%llu noname=%llu forwarded=%llu peers=%llu "
             "noconn=%llu",
             n->name, (unsigned long long)li.conns,
             (unsigned long long)li.accepted, (unsigned long long)li.refused,
             (unsigned long long)atomic_load(&n->named),
             (unsigned long long)atomic_load(&n->sends),
             (unsigned long long)atomic_load(&n->delivered),
             (unsigned long long)atomic_load(&n->noname),
             (unsigned long long)atomic_load(&n->forwarded),
             (unsigned long long)atomic_load(&n->peers_up),
             (unsigned long long)atomic_load(&n->noconn));
    (void)rss;
}

static void
reporter_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct reporter *r = state;
    tp_runtime_stats rs;
    char line[512];

    if (msg->type != FLEET_TICK)
        return;
    tp_runtime_get_stats(tp_ctx_runtime(ctx), &rs);
    if (r->rss0 == 0)
        r->rss0 = rs.rss_bytes; /* before the first connection */
    stat_line(r, line, sizeof(line), rs.rss_bytes);
    if (strcmp(line, r->last) == 0)
        return; /* nothing changed: no line */
    memcpy(r->last, line, sizeof(line));
    printf("%s rss=%llu rss0=%llu draining=%d\n", line,
           (unsigned long long)rs.rss_bytes, (unsigned long long)r->rss0,
           tp_console_draining(r->a.cons) ? 1 : 0);
    fflush(stdout);
}

static int
reporter_init(tp_ctx *ctx, void *state, void *arg)
{
    struct reporter *r = state;

    r->a = *(const struct reporter_arg *)arg;
    /* The first tick, at once, takes the baseline and prints the first
     * STAT line (not here: see samples/idle). */
    if (tp_send(ctx, tp_self(ctx), FLEET_TICK, NULL, 0) != 0)
        return -ENOMEM;
    return tp_send_interval(ctx, r->a.every_ms, tp_self(ctx), FLEET_TICK, NULL,
                            0, NULL);
}

static const tp_behaviour reporter_behaviour = {
    .name = "fleet.reporter",
    .state_size = sizeof(struct reporter),
    .init = reporter_init,
    .handle = reporter_handle,
};

/* ---- start ------------------------------------------------------------- */

static int
fleet_listen(tp_runtime *rt, const struct sample_opts *o,
             const struct fleet_opts *f, struct fleet_node *node,
             tp_listener **out)
{
    tp_listen_opts lo;
    tp_net_addr addr;
    char text[TP_NET_ADDR_TEXT];
    int err;

    tp_listen_opts_init(&lo);
    lo.address = o->address;
    lo.port = (uint16_t)o->port;
    lo.behaviour = &fleet_conn_behaviour;
    lo.arg = node;
    lo.supervisor_name = f->unsupervised ? NULL : "fleet.conns";
    lo.name = "fleet";
    lo.max_conns = (uint32_t)f->max_conns;
    lo.backlog = 4096;            /* bursts of reconnects after a node dies */
    lo.proxy_protocol = f->proxy; /* the client's address, from HAProxy */
    if ((err = tp_tcp_listen(rt, &lo, out)) != 0)
        return sample_fail(o, "listen", err);
    tp_listener_address(*out, &addr);
    tp_net_addr_format(&addr, text, sizeof(text));
    sample_ready("fleet", text);
    return 0;
}

/* The console with the node's drain delay (what `troupectl drain` uses). */
static int
fleet_console(tp_runtime *rt, struct sample_opts *o, const struct fleet_opts *f)
{
    tp_console_opts co;
    char url[128];
    int err;

    if (o->console == NULL && o->http_port < 0)
        return 0;
    tp_console_opts_init(&co);
    co.unix_path = o->console;
    co.http_port = o->http_port;
    co.drain_delay_ms = (uint32_t)f->drain_delay_ms;
    if ((err = tp_console_start(rt, &co, &o->cons)) != 0)
        return sample_fail(o, "admin console", err);
    if (o->console != NULL)
        sample_ready("console", o->console);
    if (o->http_port >= 0) {
        int port = tp_console_http_port(o->cons);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
        sample_ready("dashboard", url);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", port);
        sample_ready("health", url);
    }
    return 0;
}

/* --cluster: joins under the node's name and starts its directory. */
static int
fleet_join(tp_runtime *rt, struct sample_opts *o, const struct fleet_opts *f,
           struct fleet_node *node)
{
    tp_cluster_options co;
    tp_spawn_opts so;
    int err;

    tp_cluster_options_init(&co);
    co.node_name = node->name;
    co.cluster = "fleet";
    co.urls = f->cluster;
    if ((err = tp_cluster_start(rt, &co)) != 0)
        return sample_fail(o, "cluster", err);
    node->cluster = true;
    tp_spawn_opts_init(&so);
    so.name = FLEET_DIR_NAME;
    if ((err = tp_runtime_spawn(rt, &fleet_dir_behaviour, node, &so,
                                &node->dir)) != 0)
        return sample_fail(o, "directory", err);
    return 0;
}

static int
fleet_start(tp_runtime *rt, struct sample_opts *o, const struct fleet_opts *f,
            struct fleet_node *node)
{
    struct reporter_arg ra = {node, NULL, NULL, (uint32_t)f->stat_ms};
    struct rlimit rl;
    int err;

    if ((err = sample_conn_supervisor(rt, "fleet", "fleet.conns",
                                      &fleet_conn_behaviour)) != 0)
        return sample_fail(o, "connection supervisor", err);
    if (f->cluster != NULL && (err = fleet_join(rt, o, f, node)) != 0)
        return err;
    if (fleet_listen(rt, o, f, node, &ra.l) != 0 ||
        fleet_console(rt, o, f) != 0)
        return -1;
    ra.cons = o->cons;
    if ((err = tp_runtime_spawn(rt, &reporter_behaviour, &ra, NULL, NULL)) != 0)
        return sample_fail(o, "reporter", err);
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("FLEET node=%s pid=%d fd_limit=%llu max_conns=%ld\n", node->name,
           (int)getpid(), (unsigned long long)rl.rlim_cur, f->max_conns);
    fflush(stdout);
    return 0;
}

/* ---- stop -------------------------------------------------------------- */

static uint64_t
open_conns(tp_runtime *rt)
{
    tp_net_stats s;

    tp_net_get_stats(rt, &s);
    return s.conns + s.listeners;
}

/* SIGTERM/SIGINT: the same two-phase drain as `troupectl drain`, then the
 * samples' stop. */
static int
fleet_run(tp_runtime *rt, struct sample_opts *o, const struct fleet_opts *f)
{
    uint64_t until;

    tp_runtime_wait_stop_request(rt, -1);
    fprintf(stderr, "%s: stopping: health 503, draining in %ld ms\n", o->name,
            f->drain_delay_ms);
    if (o->cons != NULL &&
        tp_console_drain(o->cons, (uint32_t)f->drain_delay_ms,
                         (uint32_t)f->drain_deadline_ms) == 0) {
        until = tp_now_ns() +
                (uint64_t)(f->drain_delay_ms + f->drain_deadline_ms + 1000) *
                    1000000u;
        while (open_conns(rt) != 0 && tp_now_ns() < until)
            usleep(20000);
    }
    return sample_run(rt,
                      o); /* the stop request is a latch: it returns at once */
}

int
main(int argc, char **argv)
{
    static struct fleet_node node;
    struct fleet_opts f;
    struct sample_opts o;
    tp_runtime *rt;
    int r;

    memset(&f, 0, sizeof(f));
    if (parse_fleet(&f, argc, argv) != 0)
        return 2;
    r = sample_init(&o, f.nrest, f.rest, "fleet-node", FLEET_DEFAULT_PORT, &rt);
    if (r != 0)
        return r > 0 ? 0 : 2;
    if (f.node != NULL)
        snprintf(node.name, sizeof(node.name), "%s", f.node);
    else
        snprintf(node.name, sizeof(node.name), "n%d", (int)getpid());
    node.rt = rt;
    node.register_names = !f.no_register;
    if (fleet_start(rt, &o, &f, &node) != 0) {
        sample_console_stop(&o);
        tp_runtime_destroy(rt);
        return 1;
    }
    return fleet_run(rt, &o, &f);
}
