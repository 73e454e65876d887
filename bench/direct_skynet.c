/*
 * bench/direct_skynet.c - the "skynet" benchmark written with direct-style
 * actors (copied stacks), like the goroutine version: each node is
 * straight-line code.
 *
 *   direct_skynet [--leaves=1000000] [--schedulers=N] [--spread=10000]
 *
 * A node receives (num, size) from its parent (the spawner); a leaf
 * (size 1) sends num back and ends; any other node spawns ten children,
 * sends each its (num + i * size/10, size/10), receives their ten sums and
 * sends the total to its parent. Direct actors are not stolen, so the top
 * of the tree (nodes of size >= --spread, default 10000) puts child i on
 * scheduler i mod N; below, children stay on their parent's scheduler.
 * With 10^6 leaves that is 1,111,111 actors. Check: the sum is
 * leaves * (leaves - 1) / 2.
 *
 * RESULT direct_skynet.ms
 */
#include "benchutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>

#define FANOUT 10

enum { M_START = 1, M_SUM };

struct start {
    uint64_t num, size;
};

static unsigned nsched;
static uint64_t spread_min;
static volatile uint64_t total, t_end, errors;

static void node_main(tp_ctx *ctx, void *state, void *arg);

static const tp_direct node = {
    TP_DIRECT_BEHAVIOUR("skynet", 0),
    .main = node_main,
    .stack = TP_STACK_COPIED,
};

static void
node_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    struct start st;
    tp_pid parent;
    uint64_t sum = 0;

    (void)state, (void)arg;
    if (tp_receive(ctx, &m, -1) != 0 || m->len != sizeof(st)) {
        errors++;
        return;
    }
    memcpy(&st, m->data, sizeof(st));
    parent = m->from;
    if (st.size == 1) {
        sum = st.num;
    } else {
        uint64_t d = st.size / FANOUT;
        for (unsigned i = 0; i < FANOUT; i++) {
            struct start c = {st.num + i * d, d};
            tp_spawn_opts o;
            tp_pid child;

            tp_spawn_opts_init(&o);
            /* The top of the tree is spread over the schedulers; below,
             * children stay on their parent's (no cross-thread wake-ups). */
            if (st.size >= spread_min)
                o.scheduler = (int)(i % nsched);
            if (tp_spawn_direct(ctx, &node, NULL, &o, NULL, &child) != 0 ||
                tp_send(ctx, child, M_START, &c, sizeof(c)) != 0) {
                errors++;
                return;
            }
        }
        for (unsigned i = 0; i < FANOUT; i++) {
            if (tp_receive(ctx, &m, -1) != 0 || m->len != sizeof(sum)) {
                errors++;
                return;
            }
            uint64_t v;
            memcpy(&v, m->data, sizeof(v));
            sum += v;
        }
    }
    if (parent != TP_PID_NONE) {
        tp_send(ctx, parent, M_SUM, &sum, sizeof(sum));
    } else {
        total = sum;
        t_end = tp_now_ns();
    }
}

int
main(int argc, char **argv)
{
    uint64_t leaves = (uint64_t)tpb_opt(argc, argv, "leaves", 1000000);
    tp_runtime_options o;
    tp_runtime *rt;
    struct start st = {0, leaves};
    uint64_t t0;
    tp_pid root;

    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 0);
    if (tp_runtime_create(&rt, &o) != 0 || tp_runtime_start(rt) != 0)
        return 1;
    nsched = tp_runtime_schedulers(rt);
    spread_min = (uint64_t)tpb_opt(argc, argv, "spread", 10000);
    t0 = tp_now_ns();
    if (tp_runtime_spawn_direct(rt, &node, NULL, NULL, NULL, &root) != 0 ||
        tp_runtime_send(rt, root, M_START, &st, sizeof(st)) != 0)
        return 1;
    tp_runtime_wait_idle(rt, -1);
    printf("# %llu leaves, %u schedulers, sum %llu\n",
           (unsigned long long)leaves, nsched, (unsigned long long)total);
    tpb_result("direct_skynet.ms", (double)(t_end - t0) / 1e6, "ms");
    tp_runtime_destroy(rt);
    if (errors != 0 || total != leaves * (leaves - 1) / 2) {
        fprintf(stderr, "direct_skynet: wrong sum or %llu errors\n",
                (unsigned long long)errors);
        return 1;
    }
    return 0;
}
