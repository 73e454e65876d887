/*
 * docs/examples/guide_supervisor.c - docs/GUIDE.md, step 3: a supervised
 * worker. The worker keeps a running total; asked to divide by zero it
 * crashes (a real SIGFPE, trapped by the runtime), and its supervisor
 * starts a fresh one under the same registered name.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <troupe.h>

enum { ADD = 1, DIVIDE, SHOW };

static atomic_int starts; /* how many times init ran */

struct worker {
    int total;
};

static int
worker_init(tp_ctx *ctx, void *state, void *arg)
{
    (void)ctx;
    (void)state;
    (void)arg;
    printf("worker: start #%d\n", atomic_fetch_add(&starts, 1) + 1);
    return 0;
}

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct worker *w = state;
    volatile int by;

    switch (msg->type) {
    case ADD:
        w->total += *(const int *)msg->data;
        break;
    case DIVIDE: /* a bug waiting for its input: by may be 0 */
        by = *(const int *)msg->data;
        w->total /= by;
        break;
    case SHOW:
        tp_reply(ctx, msg, &w->total, sizeof(w->total));
        break;
    }
}

static const tp_behaviour worker = {.name = "worker",
                                    .state_size = sizeof(struct worker),
                                    .init = worker_init,
                                    .handle = worker_handle};

static int
show(tp_runtime *rt)
{
    int total = -1;

    /* The name finds whichever incarnation is running now. */
    tp_runtime_call(rt, tp_whereis(rt, "worker"), SHOW, NULL, 0, &total,
                    sizeof(total), NULL, 1000);
    return total;
}

int
main(void)
{
    tp_runtime *rt;
    tp_sup_spec spec;
    tp_child_spec child;
    tp_pid sup, before;
    tp_sup_info info;
    int ten = 10, zero = 0;
    char a[32], b[32];

    tp_runtime_create(&rt, NULL); /* faults are trapped by default */
    tp_runtime_start(rt);

    tp_child_spec_init(&child, "worker", &worker, NULL); /* permanent */
    child.opts.name = "worker";
    tp_sup_spec_init(&spec, TP_ONE_FOR_ONE); /* at most 3 restarts in 5 s */
    spec.children = &child;
    spec.nchildren = 1;
    tp_runtime_supervisor_start(rt, "workers", &spec, &sup);

    tp_runtime_send(rt, tp_whereis(rt, "worker"), ADD, &ten, sizeof(ten));
    printf("main: total %d\n", show(rt));

    before = tp_whereis(rt, "worker");
    tp_runtime_send(rt, before, DIVIDE, &zero, sizeof(zero)); /* crash */
    while (tp_whereis(rt, "worker") == before ||
           tp_whereis(rt, "worker") == TP_PID_NONE)
        tp_runtime_wait_idle(rt, 10); /* the restart takes microseconds */
    printf("main: worker %s crashed, now %s; total %d\n",
           tp_pid_format(before, a, sizeof(a)),
           tp_pid_format(tp_whereis(rt, "worker"), b, sizeof(b)), show(rt));
    tp_supervisor_info(rt, sup, &info, 1000);
    printf("main: supervisor restarts: %llu\n",
           (unsigned long long)info.restarts);
    tp_runtime_destroy(rt); /* stops the tree: supervisor, then worker */
    return 0;
}
