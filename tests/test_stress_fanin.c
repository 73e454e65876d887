/*
 * tests/test_stress_fanin.c - 8 producers x 1,000,000 messages to one actor
 * with per-sender sequence numbers: nothing lost, nothing duplicated,
 * per-sender FIFO holds. TSan-clean.
 */
#include "testutil.h"

#include <stdatomic.h>
#include <stdlib.h>

#define PRODUCERS    8
#define PER_PRODUCER 1000000u
#define CHUNK        1000u

enum { M_GO = 1, M_SEQ, M_MORE };

struct seqmsg {
    uint32_t producer;
    uint32_t seq;
};

struct sink {
    uint32_t next[PRODUCERS];
    uint64_t total;
    uint32_t errors;
};

static atomic_ullong sink_total;
static atomic_uint sink_errors;

/* Every CHUNK messages from a producer, the sink grants it another chunk
 * (a window of two chunks), so queues stay small while 8 producers still
 * hammer one mailbox concurrently. */
static void
sink_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct sink *s = state;
    const struct seqmsg *q = m->data;

    if (m->type != M_SEQ || m->len != sizeof(*q) || q->producer >= PRODUCERS ||
        q->seq != s->next[q->producer]) {
        s->errors++;
        atomic_store(&sink_errors, s->errors);
    } else {
        s->next[q->producer]++;
        if (s->next[q->producer] % CHUNK == 0)
            tp_send(ctx, m->from, M_MORE, NULL, 0);
    }
    s->total++;
    atomic_store(&sink_total, s->total);
}

static const tp_behaviour sink_b = {
    .name = "sink", .state_size = sizeof(struct sink), .handle = sink_handle};

struct producer {
    tp_pid sink;
    uint32_t id;
    uint32_t sent;
    uint32_t limit;
};

struct producer_arg {
    tp_pid sink;
    uint32_t id;
    uint32_t limit;
};

static int
producer_init(tp_ctx *ctx, void *state, void *arg)
{
    struct producer *p = state;
    const struct producer_arg *a = arg;

    p->sink = a->sink;
    p->id = a->id;
    p->limit = a->limit;
    return 0;
}

static void
send_chunk(tp_ctx *ctx, struct producer *p)
{
    for (uint32_t i = 0; i < CHUNK && p->sent < p->limit; i++) {
        struct seqmsg q = {p->id, p->sent++};
        TPT_CHECK_INT_EQ(tp_send(ctx, p->sink, M_SEQ, &q, sizeof(q)), 0);
    }
}

/* M_GO sends two chunks; each credit (M_MORE) from the sink one more. */
static void
producer_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct producer *p = state;

    send_chunk(ctx, p);
    if (m->type == M_GO)
        send_chunk(ctx, p);
}

static const tp_behaviour producer_b = {.name = "producer",
                                        .state_size = sizeof(struct producer),
                                        .init = producer_init,
                                        .handle = producer_handle};

static void
test_stress_fanin_8_producers_fifo_no_loss(void **state)
{
    tp_runtime *rt = tpt_runtime(0);
    uint32_t per = (uint32_t)(PER_PRODUCER * tpt_scale());
    tp_pid sink, prod[PRODUCERS];
    tp_runtime_stats st;

    atomic_store(&sink_total, 0);
    atomic_store(&sink_errors, 0);
    assert_int_equal(tp_runtime_spawn(rt, &sink_b, NULL, NULL, &sink), 0);
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        struct producer_arg a = {sink, i, per};
        assert_int_equal(tp_runtime_spawn(rt, &producer_b, &a, NULL, &prod[i]),
                         0);
    }
    for (uint32_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(tp_runtime_send(rt, prod[i], M_GO, NULL, 0), 0);
    tpt_idle(rt);
    assert_int_equal(atomic_load(&sink_errors), 0);
    assert_int_equal(atomic_load(&sink_total), (uint64_t)per * PRODUCERS);
    tp_runtime_get_stats(rt, &st);
    assert_int_equal(st.dead_letters, 0);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_fanin_8_producers_fifo_no_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
