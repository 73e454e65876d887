#include <stdio.h>
#include <troupe.h>

static void
greet(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    int *count = state; /* inline actor state, zeroed at spawn */
    printf("hello %.*s #%d on scheduler %d\n", (int)msg->len,
           (const char *)msg->data, ++*count, tp_ctx_scheduler(ctx));
}

static const tp_behaviour greeter = {
    .name = "greeter", .state_size = sizeof(int), .handle = greet};

int
main(void)
{
    tp_runtime *rt;
    tp_pid pid;

    tp_runtime_create(&rt, NULL); /* one scheduler per core */
    tp_runtime_start(rt);
    tp_runtime_spawn(rt, &greeter, NULL, NULL, &pid);
    for (int i = 0; i < 3; i++)
        tp_runtime_send(rt, pid, 1, "world", 5);
    tp_runtime_wait_idle(rt, -1); /* all delivered and handled */
    tp_runtime_destroy(rt);       /* stops cleanly, frees everything */
}
