/*
 * docs/examples/guide_first_actor.c - docs/GUIDE.md, step 1: an actor
 * with state, an init, a handler and a clean end.
 */
#include <stdio.h>
#include <troupe.h>

enum { ADD = 1, PRINT, STOP }; /* our message types: small numbers */

struct counter {
    const char *label;
    long total;
};

static int
counter_init(tp_ctx *ctx, void *state, void *arg)
{
    struct counter *c = state; /* state_size bytes, zeroed */

    (void)ctx;
    c->label = arg; /* the spawn argument */
    return 0;       /* nonzero: the spawn fails with that error */
}

static void
counter_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct counter *c = state;

    switch (msg->type) {
    case ADD:
        c->total += *(const int *)msg->data; /* a copy of what was sent */
        break;
    case PRINT:
        printf("%s: total %ld\n", c->label, c->total);
        break;
    case STOP:
        tp_exit(ctx); /* ends after this handler returns */
        break;
    }
}

static void
counter_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    struct counter *c = state;

    (void)ctx;
    printf("%s: ends (%s)\n", c->label, tp_exit_kind_name(why->kind));
}

static const tp_behaviour counter = {
    .name = "counter",
    .state_size = sizeof(struct counter),
    .init = counter_init,
    .handle = counter_handle,
    .terminate = counter_terminate,
};

int
main(void)
{
    tp_runtime_options ro;
    tp_runtime *rt;
    tp_pid pid;
    int err;

    tp_runtime_options_init(&ro);
    ro.schedulers = 2;
    if ((err = tp_runtime_create(&rt, &ro)) != 0 ||
        (err = tp_runtime_start(rt)) != 0) {
        fprintf(stderr, "runtime: %s\n", tp_strerror(err));
        return 1;
    }
    if ((err = tp_runtime_spawn(rt, &counter, "apples", NULL, &pid)) != 0) {
        fprintf(stderr, "spawn: %s\n", tp_strerror(err));
        return 1;
    }
    for (int i = 1; i <= 100; i++) /* messages from one sender stay in order */
        tp_runtime_send(rt, pid, ADD, &i, sizeof(i));
    tp_runtime_send(rt, pid, PRINT, NULL, 0);
    tp_runtime_send(rt, pid, STOP, NULL, 0);
    tp_runtime_wait_idle(rt, 5000);
    tp_runtime_destroy(rt);
    return 0;
}
