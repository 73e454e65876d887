/*
 * docs/examples/guide_request.c - docs/GUIDE.md, step 2: request/reply.
 * A "kv" actor (registered under a name) answers GET and PUT requests;
 * a client actor asks it without ever blocking, and main() asks it with
 * a synchronous call.
 */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

enum { PUT = 1, GET, RUN };

#define SLOTS 16

struct kv {
    char keys[SLOTS][16];
    int values[SLOTS];
    int n;
};

struct put {
    char key[16];
    int value;
};

static int *
lookup(struct kv *kv, const char *key)
{
    for (int i = 0; i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0)
            return &kv->values[i];
    return NULL;
}

static void
kv_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct kv *kv = state;

    if (msg->type == PUT && msg->len == sizeof(struct put)) {
        const struct put *p = msg->data;
        int *v = lookup(kv, p->key);

        if (v == NULL && kv->n < SLOTS) {
            snprintf(kv->keys[kv->n], sizeof(kv->keys[0]), "%s", p->key);
            v = &kv->values[kv->n++];
        }
        if (v != NULL)
            *v = p->value;
        tp_reply(ctx, msg, v != NULL ? "ok" : "full", v != NULL ? 2 : 4);
    } else if (msg->type == GET && msg->len > 0 && msg->len < 16) {
        char key[16];
        int *v;

        memcpy(key, msg->data, msg->len);
        key[msg->len] = '\0';
        v = lookup(kv, key);
        /* A reply is a copy of these bytes; no value: an empty reply. */
        tp_reply(ctx, msg, v, v != NULL ? sizeof(*v) : 0);
    }
}

static const tp_behaviour kv_behaviour = {
    .name = "kv", .state_size = sizeof(struct kv), .handle = kv_handle};

/* The client: asks, and handles the answer when it comes. */
struct client {
    uint64_t get_ref; /* the pending request */
};

static void
client_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct client *c = state;
    tp_pid kv = tp_whereis(tp_ctx_runtime(ctx), "kv");

    switch (msg->type) {
    case RUN: /* ask for "apples", wait at most 1000 ms */
        tp_request(ctx, kv, GET, "apples", 6, 1000, &c->get_ref);
        break;
    case TP_MSG_REPLY:
        if (msg->ref == c->get_ref && msg->len == sizeof(int))
            printf("client: apples = %d\n", *(const int *)msg->data);
        break;
    case TP_MSG_TIMEOUT: /* kv did not answer in time */
    case TP_MSG_NOPROC:  /* kv does not exist (or died) */
        printf("client: no answer\n");
        break;
    }
}

static const tp_behaviour client_behaviour = {.name = "client",
                                              .state_size =
                                                  sizeof(struct client),
                                              .handle = client_handle};

int
main(void)
{
    tp_runtime *rt;
    tp_spawn_opts so;
    tp_pid kv, client;
    struct put p = {"apples", 42};
    char answer[8];
    size_t len;
    int err;

    tp_runtime_create(&rt, NULL);
    tp_runtime_start(rt);
    tp_spawn_opts_init(&so);
    so.name = "kv"; /* registered: tp_whereis(rt, "kv") finds it */
    tp_runtime_spawn(rt, &kv_behaviour, NULL, &so, &kv);

    /* From outside the runtime: a blocking call (never from an actor). */
    err = tp_runtime_call(rt, kv, PUT, &p, sizeof(p), answer, sizeof(answer),
                          &len, 1000);
    printf("main: put apples: %s (%.*s)\n", tp_strerror(err), (int)len, answer);

    /* From an actor: an asynchronous request, answered by a message. */
    tp_runtime_spawn(rt, &client_behaviour, NULL, NULL, &client);
    tp_runtime_send(rt, client, RUN, NULL, 0);
    tp_runtime_wait_idle(rt, 5000);

    /* A call to an actor that is gone fails at once with -ESRCH. */
    tp_runtime_exit_pid(rt, kv, &(tp_exit_reason){.kind = TP_EXIT_KILL});
    tp_runtime_wait_idle(rt, 5000);
    err = tp_runtime_call(rt, kv, GET, "apples", 6, answer, sizeof(answer),
                          &len, 1000);
    printf("main: get after kill: %s\n", tp_strerror(err));
    tp_runtime_destroy(rt);
    return 0;
}
