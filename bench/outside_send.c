/*
 * bench/outside_send.c - threads outside the runtime sending into it: the
 * throughput of tp_runtime_send() from T threads at once (the path used by
 * foreign event loops, libnats callbacks, worker pools).
 *
 *   outside_send [--threads=4] [--msgs=1000000] [--receivers=4]
 *                [--bound=4096] [--schedulers=N]
 *
 * Each of `threads` plain pthreads sends `msgs` 8-byte messages (thread id,
 * sequence) to receiver (id % receivers), round-robin, as fast as it can;
 * a receiver that falls behind answers -EAGAIN through a bounded REJECT
 * mailbox (max --bound, 0 = unbounded) and the thread yields and retries,
 * so the figure is steady-state
 * throughput, not backlog allocation. The clock runs from the threads'
 * common start to the receivers' last message. Checks: every message
 * arrives once and in order per thread.
 *
 * RESULT outside_send.msgs_per_s       (sent and handled, end to end)
 * RESULT outside_send.send_msgs_per_s  (the senders' own rate: until the
 *                                       last tp_runtime_send returned)
 * RESULT outside_send.retries          (sends refused by a full mailbox)
 */
#include "benchutil.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 64
#define M_SEQ       1

struct item {
    uint32_t thread, seq;
};

struct receiver {
    uint32_t next[MAX_THREADS];
    uint64_t got;
};

static atomic_ulong received, errors;
static atomic_uint go;

static void
recv_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct receiver *r = state;
    const struct item *it = msg->data;

    if (msg->len != sizeof(*it) || it->thread >= MAX_THREADS ||
        it->seq != r->next[it->thread]++)
        atomic_fetch_add(&errors, 1);
    atomic_fetch_add_explicit(&received, 1, memory_order_relaxed);
}

static const tp_behaviour receiver_b = {.name = "receiver",
                                        .state_size = sizeof(struct receiver),
                                        .handle = recv_handle};

struct thread_arg {
    tp_runtime *rt;
    const tp_pid *to;
    uint32_t id, msgs, nrecv;
    uint64_t retries;
};

static void *
sender_main(void *p)
{
    struct thread_arg *a = p;
    struct item it = {a->id, 0};

    while (!atomic_load(&go))
        ;
    for (; it.seq < a->msgs; it.seq++) {
        int r;
        while ((r = tp_runtime_send(a->rt, a->to[a->id % a->nrecv], M_SEQ, &it,
                                    sizeof(it))) == -EAGAIN) {
            a->retries++;
            sched_yield(); /* let the receiver's scheduler run */
        }
        if (r != 0)
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    uint32_t threads = (uint32_t)tpb_opt(argc, argv, "threads", 4);
    uint32_t msgs = (uint32_t)tpb_opt(argc, argv, "msgs", 1000000);
    uint32_t nrecv = (uint32_t)tpb_opt(argc, argv, "receivers", 4);
    uint32_t bound = (uint32_t)tpb_opt(argc, argv, "bound", 4096);
    tp_runtime_options o;
    tp_runtime *rt;
    tp_pid to[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    struct thread_arg args[MAX_THREADS];
    uint64_t t0, ns, send_ns, retries = 0, total;

    if (threads == 0 || threads > MAX_THREADS || nrecv == 0 ||
        nrecv > MAX_THREADS) {
        fprintf(stderr, "outside_send: bad --threads or --receivers\n");
        return 2;
    }
    tp_runtime_options_init(&o);
    o.schedulers = (unsigned)tpb_opt(argc, argv, "schedulers", 0);
    if (tp_runtime_create(&rt, &o) != 0 || tp_runtime_start(rt) != 0)
        return 1;
    for (uint32_t i = 0; i < nrecv; i++) {
        tp_spawn_opts so;

        tp_spawn_opts_init(&so);
        so.max_msgs = bound;
        so.overflow = TP_OVERFLOW_REJECT;
        if (tp_runtime_spawn(rt, &receiver_b, NULL, &so, &to[i]) != 0)
            return 1;
    }
    for (uint32_t i = 0; i < threads; i++) {
        args[i] = (struct thread_arg){rt, to, i, msgs, nrecv, 0};
        pthread_create(&th[i], NULL, sender_main, &args[i]);
    }
    total = (uint64_t)threads * msgs;
    t0 = tpb_now_ns();
    atomic_store(&go, 1);
    for (uint32_t i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        retries += args[i].retries;
    }
    send_ns = tpb_now_ns() - t0;
    while (atomic_load(&received) < total && atomic_load(&errors) == 0)
        ;
    ns = tpb_now_ns() - t0;
    tp_runtime_destroy(rt);
    if (atomic_load(&errors) != 0) {
        fprintf(stderr, "outside_send: %lu errors\n", atomic_load(&errors));
        return 1;
    }
    tpb_result("outside_send.msgs_per_s", (double)total * 1e9 / (double)ns,
               "msg/s");
    tpb_result("outside_send.send_msgs_per_s",
               (double)total * 1e9 / (double)send_ns, "msg/s");
    tpb_result("outside_send.retries", (double)retries, "count");
    return 0;
}
