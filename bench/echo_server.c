/*
 * bench/echo_server.c - the Troupe echo server of the network benchmarks:
 * every connection is an actor that sends back what it reads. Public API
 * only; the pattern of a minimal Troupe TCP server.
 *
 *   echo_server [--port=0] [--schedulers=0] [--pin=1] [--pin_actors=0]
 *               [--stats=0]
 *
 * Prints "port <n>" once listening (port 0: an ephemeral port), then serves
 * until SIGINT or SIGTERM, and stops gracefully (connections drain).
 * --stats=1 prints each scheduler's counters to stderr at the end.
 */
#include "benchutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <troupe.h>
#include <unistd.h>

static tp_runtime *the_rt;

/* A connection actor: no state, one send per DATA message. The wrapper
 * closes the connection when the actor ends and ends the actor when the
 * connection closes. */
static void
echo_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)state;
    if (msg->type == TP_MSG_TCP_DATA)
        tp_tcp_send(ctx, tp_msg_conn(msg), msg->data, msg->len);
}

static const tp_behaviour echo_behaviour = {
    .name = "echo",
    .handle = echo_handle,
};

static void
on_signal(int sig)
{
    (void)sig;
    tp_runtime_request_stop(the_rt); /* async-signal-safe */
}

static void
print_stats(tp_runtime *rt)
{
    tp_sched_stats st[16];
    unsigned n = tp_runtime_get_sched_stats(rt, st, 16);

    for (unsigned i = 0; i < n && i < 16; i++)
        fprintf(stderr,
                "sched %u: turns %llu steals %llu sleeps %llu wakeups %llu "
                "busy %.1f%%\n",
                i, (unsigned long long)st[i].turns,
                (unsigned long long)st[i].steals,
                (unsigned long long)st[i].sleeps,
                (unsigned long long)st[i].wakeups,
                100.0 * (double)st[i].busy_ns /
                    (double)(st[i].busy_ns + st[i].idle_ns + 1));
}

static void
raise_fd_limit(void)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int
main(int argc, char **argv)
{
    tp_runtime_options ro;
    tp_listen_opts lo;
    tp_listener *l;
    int err;

    raise_fd_limit();
    tp_runtime_options_init(&ro);
    ro.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 0);
    ro.pin = tpb_opt(argc, argv, "pin", 1) != 0;
    if ((err = tp_runtime_create(&the_rt, &ro)) != 0 ||
        (err = tp_runtime_start(the_rt)) != 0) {
        fprintf(stderr, "echo_server: %s\n", tp_strerror(err));
        return 1;
    }
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.port = (uint16_t)tpb_opt(argc, argv, "port", 0);
    lo.behaviour = &echo_behaviour;
    lo.pin = tpb_opt(argc, argv, "pin_actors", 0) != 0;
    if ((err = tp_tcp_listen(the_rt, &lo, &l)) != 0) {
        fprintf(stderr, "echo_server: listen: %s\n", tp_strerror(err));
        tp_runtime_destroy(the_rt);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("port %u\n", tp_listener_port(l));
    fflush(stdout);
    tp_runtime_wait_stop_request(the_rt, -1);
    if (tpb_opt(argc, argv, "stats", 0))
        print_stats(the_rt);
    tp_runtime_destroy(the_rt); /* drains, then stops */
    return 0;
}
