/*
 * tests/test_mpsc.c - the intrusive MPSC queue, its empty mark and the
 * closable system-lane stack.
 */
#include "mailbox/mpsc.h"
#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct item {
    struct tp__node node;
    unsigned producer;
    unsigned seq;
};

static void
test_mpsc_pop_fifo_single_thread(void **state)
{
    struct tp__mpsc q;
    struct item it[5];

    tp__mpsc_init(&q, false);
    assert_null(tp__mpsc_pop(&q));
    for (unsigned i = 0; i < 5; i++) {
        it[i].seq = i;
        tp__mpsc_push(&q, &it[i].node);
    }
    for (unsigned i = 0; i < 5; i++) {
        struct item *x = (struct item *)tp__mpsc_pop(&q);
        assert_non_null(x);
        assert_int_equal(x->seq, i);
    }
    assert_null(tp__mpsc_pop(&q));
    assert_true(tp__mpsc_looks_empty(&q));
}

static void
test_mpsc_push_reports_marked_once(void **state)
{
    struct tp__mpsc q;
    struct item a, b, c;

    tp__mpsc_init(&q, true);
    assert_true(tp__mpsc_push(&q, &a.node));  /* was marked: schedule */
    assert_false(tp__mpsc_push(&q, &b.node)); /* already unmarked */
    assert_ptr_equal(tp__mpsc_pop(&q), &a.node);
    assert_ptr_equal(tp__mpsc_pop(&q), &b.node);
    assert_null(tp__mpsc_pop(&q));
    assert_true(tp__mpsc_mark_empty(&q));
    assert_true(tp__mpsc_push(&q, &c.node));
    assert_ptr_equal(tp__mpsc_pop(&q), &c.node);
}

/* The race DESIGN.md warns about: a producer paused between its exchange
 * and its link makes the queue look empty; marking empty must fail then,
 * and the message must appear once the link is stored. */
static void
test_mpsc_mark_empty_fails_while_producer_paused(void **state)
{
    struct tp__mpsc q;
    struct item a, b;
    uintptr_t prev;

    tp__mpsc_init(&q, false);
    tp__mpsc_push(&q, &a.node);
    assert_ptr_equal(tp__mpsc_pop(&q), &a.node);
    /* First half of a push by hand: exchange, no link yet. */
    atomic_store(&b.node.next, NULL);
    prev = atomic_exchange(&q.head, (uintptr_t)&b.node);
    assert_null(tp__mpsc_pop(&q));
    assert_false(tp__mpsc_mark_empty(&q));
    assert_false(tp__mpsc_looks_empty(&q));
    /* Second half: the link. */
    atomic_store(&((struct tp__node *)(prev & ~TP__MPSC_MARK))->next, &b.node);
    assert_ptr_equal(tp__mpsc_pop(&q), &b.node);
    assert_null(tp__mpsc_pop(&q));
    assert_true(tp__mpsc_mark_empty(&q));
}

static void
test_mpsc_mark_empty_fails_with_nodes_queued(void **state)
{
    struct tp__mpsc q;
    struct item a;

    tp__mpsc_init(&q, false);
    tp__mpsc_push(&q, &a.node);
    assert_false(tp__mpsc_mark_empty(&q));
    assert_ptr_equal(tp__mpsc_pop(&q), &a.node);
    assert_true(tp__mpsc_mark_empty(&q));
}

/* Multi-threaded: producers push with sequence numbers into a marked queue
 * and "schedule" the consumer only when push reports the mark. The consumer
 * counts schedules; it must never be scheduled while it runs (exactly-once),
 * must get every item, and per-producer order must hold. */
#define NPROD    4
#define PER_PROD 200000

struct mt {
    struct tp__mpsc q;
    atomic_int scheduled; /* pending "run" tokens */
    atomic_int running;
    atomic_int violations;
    struct item *items;
};

static void *
producer(void *arg)
{
    struct mt *t = ((void **)arg)[0];
    unsigned id = (unsigned)(uintptr_t)((void **)arg)[1];
    unsigned n = (unsigned)(PER_PROD * tpt_scale());

    for (unsigned i = 0; i < n; i++) {
        struct item *it = &t->items[id * PER_PROD + i];
        it->producer = id;
        it->seq = i;
        if (tp__mpsc_push(&t->q, &it->node)) {
            if (atomic_load(&t->running))
                atomic_fetch_add(&t->violations, 1);
            atomic_fetch_add(&t->scheduled, 1);
        }
    }
    return NULL;
}

static void
test_mpsc_multi_producer_exactly_once(void **state)
{
    struct mt t;
    pthread_t th[NPROD];
    void *args[NPROD][2];
    unsigned next[NPROD] = {0}, total = 0;
    unsigned n = (unsigned)(PER_PROD * tpt_scale());

    tp__mpsc_init(&t.q, true);
    atomic_init(&t.scheduled, 0);
    atomic_init(&t.running, 0);
    atomic_init(&t.violations, 0);
    t.items = calloc(NPROD * PER_PROD, sizeof(struct item));
    for (uintptr_t i = 0; i < NPROD; i++) {
        args[i][0] = &t;
        args[i][1] = (void *)i;
        pthread_create(&th[i], NULL, producer, args[i]);
    }
    while (total < NPROD * n) {
        struct item *it;
        if (atomic_load(&t.scheduled) == 0)
            continue; /* idle: wait for a schedule token */
        atomic_fetch_sub(&t.scheduled, 1);
        atomic_store(&t.running, 1);
        for (;;) {
            while ((it = (struct item *)tp__mpsc_pop(&t.q)) != NULL) {
                assert_int_equal(it->seq, next[it->producer]);
                next[it->producer]++;
                total++;
            }
            atomic_store(&t.running, 0);
            if (tp__mpsc_mark_empty(&t.q))
                break;
            atomic_store(&t.running, 1); /* a producer got in: go on */
        }
    }
    for (int i = 0; i < NPROD; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&t.violations), 0);
    assert_int_equal(atomic_load(&t.scheduled), 0);
    assert_null(tp__mpsc_pop(&t.q));
    free(t.items);
}

static void
test_sysq_push_fails_after_close(void **state)
{
    tp__sysq top;
    struct item a, b, c;
    struct tp__node *n;

    atomic_init(&top, NULL);
    assert_true(tp__sysq_push(&top, &a.node));
    assert_true(tp__sysq_push(&top, &b.node));
    n = tp__sysq_take(&top);
    assert_ptr_equal(n, &a.node); /* FIFO after reversal */
    assert_ptr_equal(atomic_load(&n->next), &b.node);
    assert_null(tp__sysq_take(&top));
    assert_true(tp__sysq_push(&top, &c.node));
    n = tp__sysq_close(&top);
    assert_ptr_equal(n, &c.node);
    assert_false(tp__sysq_push(&top, &a.node));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mpsc_pop_fifo_single_thread),
        cmocka_unit_test(test_mpsc_push_reports_marked_once),
        cmocka_unit_test(test_mpsc_mark_empty_fails_while_producer_paused),
        cmocka_unit_test(test_mpsc_mark_empty_fails_with_nodes_queued),
        cmocka_unit_test(test_mpsc_multi_producer_exactly_once),
        cmocka_unit_test(test_sysq_push_fails_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
