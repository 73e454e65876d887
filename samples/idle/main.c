/*
 * samples/idle/main.c - troupe-idle: holds as many idle connections as
 * the machine allows and prints what each costs in user space.
 *
 *   troupe-idle [--port 7002] [--schedulers N] [--console PATH]
 *               [--http-port N]
 *
 * Every connection is an actor (an echo, so a client can check it is
 * served). A reporter actor samples the process's resident memory twice a
 * second; once the number of connections has been steady for a second it
 * prints one line a script can read and one for people:
 *
 *   IDLE conns=15000 bytes_per_conn=546 rss_growth=8190000
 * kernel_bytes_per_conn=3700 idle: 15000 connections: 546 B of user space each;
 * 1,000,000 would take 0.55 GB (+ the kernel's socket memory)
 *
 * Load it with the C client of the benchmarks (another process, so both
 * ends fit in the descriptor limit):
 *
 *   build/release/bench/loadgen --port=7002 --idle=15000 --pid=$(pidof
 * troupe-idle)
 */
#include "../common/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define SAMPLE_MS 500
#define STEADY    2 /* samples without change before a report */

enum { IDLE_TICK = 1 };

struct reporter {
    uint64_t rss0, slab0; /* at start: bytes */
    uint64_t last_conns;  /* at the previous sample */
    unsigned steady;      /* samples since the count changed */
    uint64_t reported;    /* count at the last report */
};

/* The kernel's slab memory (socket structures live there), system-wide. */
static uint64_t
slab_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    unsigned long long kb = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "Slab:", 5) == 0) {
            kb = strtoull(line + 5, NULL, 10); /* "Slab:   1234 kB" */
            break;
        }
    fclose(f);
    return kb * 1024;
}

static void
report(struct reporter *r, uint64_t conns, uint64_t rss)
{
    uint64_t grew = rss > r->rss0 ? rss - r->rss0 : 0;
    uint64_t slab = slab_bytes();
    uint64_t per = grew / conns;
    uint64_t kper = slab > r->slab0 ? (slab - r->slab0) / conns : 0;

    printf("IDLE conns=%llu bytes_per_conn=%llu rss_growth=%llu "
           "kernel_bytes_per_conn=%llu\n",
           (unsigned long long)conns, (unsigned long long)per,
           (unsigned long long)grew, (unsigned long long)kper);
    printf("idle: %llu connections: %llu B of user space each; "
           "1,000,000 would take %.2f GB of user space, plus the kernel's "
           "socket memory (here %llu B per connection, system-wide: both "
           "ends when the client runs on this machine)\n",
           (unsigned long long)conns, (unsigned long long)per,
           (double)per * 1e6 / 1e9, (unsigned long long)kper);
    fflush(stdout);
    r->reported = conns;
}

static void
reporter_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct reporter *r = state;
    tp_runtime_stats rs;
    tp_net_stats ns;

    if (msg->type != IDLE_TICK)
        return;
    tp_net_get_stats(tp_ctx_runtime(ctx), &ns);
    tp_runtime_get_stats(tp_ctx_runtime(ctx), &rs);
    if (r->rss0 == 0) { /* the first tick: the baseline */
        r->rss0 = rs.rss_bytes;
        r->slab0 = slab_bytes();
        return;
    }
    r->steady = ns.conns == r->last_conns ? r->steady + 1 : 0;
    r->last_conns = ns.conns;
    if (r->steady == STEADY && ns.conns > 0 && ns.conns != r->reported)
        report(r, ns.conns, rs.rss_bytes);
}

static int
reporter_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)state;
    (void)arg;
    /* The baseline is taken at the first tick, not here: this init runs
     * inside tp_runtime_spawn() on main's thread, which holds the
     * runtime's lock for outside actors that tp_runtime_get_stats() takes
     * too (a deadlock). */
    return tp_send_interval(ctx, SAMPLE_MS, tp_self(ctx), IDLE_TICK, NULL, 0,
                            NULL);
}

static const tp_behaviour reporter_behaviour = {
    .name = "idle.reporter",
    .state_size = sizeof(struct reporter),
    .init = reporter_init,
    .handle = reporter_handle,
};

/* The connection actor: no state, echoes (an idle one does nothing). */
static void
conn_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour conn_behaviour = {
    .name = "idle.conn",
    .handle = conn_handle,
};

static void
print_limit(void)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    printf("idle: descriptor limit %llu: at most that many connections in "
           "this process\n",
           (unsigned long long)rl.rlim_cur);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct sample_opts o;
    tp_listener *l;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, "idle", 7002, &rt)) != 0)
        return r > 0 ? 0 : 2;
    /* No supervisor here: the figure is the connection alone (joining a
     * dynamic supervisor adds its bookkeeping; see README.md). */
    if (tp_runtime_spawn(rt, &reporter_behaviour, NULL, NULL, NULL) != 0 ||
        sample_listen(rt, &o, "idle", o.port, &conn_behaviour, NULL, NULL, NULL,
                      &l) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        return 1;
    }
    print_limit();
    return sample_run(rt, &o);
}
