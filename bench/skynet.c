/*
 * bench/skynet.c - the "skynet" benchmark: a 10-ary tree of actors.
 *
 *   skynet [--leaves=1000000] [--schedulers=N]
 *
 * Each node is spawned by its parent with (num, size). A node with size 1
 * (a leaf) sends num to its parent and exits; any other node spawns ten
 * children (num + i * size/10, size/10), adds up the ten answers, sends the
 * sum to its parent and exits. With 10^6 leaves that is 1,111,111 actors,
 * all short-lived, spawned from inside actors on every scheduler. A node
 * starts working on its first turn, not in init, like an Erlang process
 * that runs once scheduled. Check: the sum is leaves * (leaves - 1) / 2
 * (499999500000 for 10^6).
 *
 * RESULT skynet.ms
 */
#include "benchutil.h"
#include "core_common.h"

#include <stdio.h>
#include <stdlib.h>

#define FANOUT 10

enum { M_START = 1, M_SUM };

struct node_arg {
    tp_pid parent;
    uint64_t num, size;
};

struct node {
    tp_pid parent;
    uint64_t num, size, sum;
    uint32_t answers;
};

struct root {
    uint64_t t0;
};

static struct tpc_result result;

static int
node_init(tp_ctx *ctx, void *state, void *arg)
{
    struct node *n = state;
    const struct node_arg *a = arg;

    n->parent = a->parent;
    n->num = a->num;
    n->size = a->size;
    /* The work starts at the node's first turn (it may run elsewhere). */
    return tp_send(ctx, tp_self(ctx), M_START, NULL, 0);
}

static void node_handle(tp_ctx *ctx, void *state, const tp_msg *m);

static const tp_behaviour node_b = {.name = "skynet",
                                    .state_size = sizeof(struct node),
                                    .init = node_init,
                                    .handle = node_handle};

static void
node_start(tp_ctx *ctx, struct node *n)
{
    struct node_arg a = {tp_self(ctx), 0, n->size / FANOUT};

    if (n->size <= 1) {
        tp_send(ctx, n->parent, M_SUM, &n->num, sizeof(n->num));
        tp_exit(ctx);
        return;
    }
    for (uint64_t i = 0; i < FANOUT; i++) {
        a.num = n->num + i * a.size;
        if (tp_spawn(ctx, &node_b, &a, NULL, NULL) != 0)
            tp_fail(ctx, "spawn failed");
    }
}

static void
node_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct node *n = state;

    if (m->type == M_START) {
        node_start(ctx, n);
        return;
    }
    n->sum += *(const uint64_t *)m->data;
    if (++n->answers == FANOUT) {
        tp_send(ctx, n->parent, M_SUM, &n->sum, sizeof(n->sum));
        tp_exit(ctx);
    }
}

/* The root is the coordinator: it spawns the top node and gets its sum. */
static void
root_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct root *r = state;

    if (m->type == M_START) {
        struct node_arg a = {tp_self(ctx), 0, *(const uint64_t *)m->data};
        r->t0 = tp_now_ns();
        if (tp_spawn(ctx, &node_b, &a, NULL, NULL) != 0)
            tp_fail(ctx, "spawn failed");
    } else if (m->type == M_SUM) {
        tpc_publish(&result, r->t0, tp_now_ns(), *(const uint64_t *)m->data);
        tp_exit(ctx);
    }
}

static const tp_behaviour root_b = {.name = "skynet_root",
                                    .state_size = sizeof(struct root),
                                    .handle = root_handle};

static bool
power_of_fanout(uint64_t n)
{
    while (n > 1 && n % FANOUT == 0)
        n /= FANOUT;
    return n == 1;
}

int
main(int argc, char **argv)
{
    uint64_t leaves = (uint64_t)tpb_opt(argc, argv, "leaves", 1000000);
    tp_runtime *rt = tpc_runtime(argc, argv);
    tp_pid root;
    bool ok;

    if (!power_of_fanout(leaves)) {
        fprintf(stderr, "--leaves must be a power of %d\n", FANOUT);
        return tpc_finish(rt, false);
    }
    if (tp_runtime_spawn(rt, &root_b, NULL, NULL, &root) ||
        tp_runtime_send(rt, root, M_START, &leaves, sizeof(leaves)))
        return tpc_finish(rt, false);
    ok = tpc_wait(rt, &result, 300);
    if (ok) {
        tpb_result("skynet.ms", (double)(result.t1_ns - result.t0_ns) / 1e6,
                   "ms");
        ok = tpc_check("skynet.sum", result.value, leaves * (leaves - 1) / 2);
    }
    tpc_sched_stats(rt, argc, argv);
    return tpc_finish(rt, ok);
}
