#include <stdio.h>
#include <troupe.h>

enum { GREET = 1 };

static void greeter(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    int *count = state;                       /* inline actor state */
    printf("hello %.*s (#%d)\n", (int)msg->len, (const char *)msg->data, ++*count);
    if (*count == 3)
        tp_runtime_request_stop(tp_ctx_runtime(ctx));
}

static const tp_behaviour greeter_b = {
    .name = "greeter", .state_size = sizeof(int), .handle = greeter};

int main(void)
{
    tp_runtime *rt;
    tp_pid pid;

    tp_runtime_create(&rt, NULL);             /* one scheduler per core */
    tp_runtime_start(rt);
    tp_runtime_spawn(rt, &greeter_b, NULL, NULL, &pid);
    for (int i = 0; i < 3; i++)
        tp_runtime_send(rt, pid, GREET, "world", 5);
    tp_runtime_wait_stop_request(rt, -1);
    tp_runtime_destroy(rt);                   /* stops cleanly, frees all */
}
