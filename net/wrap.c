/*
 * net/wrap.c - the connection actor: a listener's behaviour wrapped so the
 * runtime sees what the actor does with its connection.
 *
 * The wrapper
 *  - tells the loop when the actor consumed DATA (flow control: see
 *    conn.c) and asks it to resume reading once the actor caught up;
 *  - exits the actor normally after it handled TP_MSG_TCP_CLOSED
 *    (exit_on_close) and closes the connection after TP_MSG_TCP_DRAIN;
 *  - closes the connection when the actor ends, however it ends: its
 *    terminate runs for every death after a successful init (tp_exit,
 *    tp_fail, faults, kills), and runs the user's terminate under its own
 *    recovery point so a crash there cannot skip the close;
 *  - keeps tp_become() working: a handler the user installs is recorded
 *    and called through the wrapper.
 *
 * What the wrapper keeps per actor (its connection, the user's tp_become()
 * handler) lives in a side table indexed by the actor's slot, not in the
 * actor's state: the actor's state is exactly the user's, so a connection
 * actor with no state of its own is a 128-byte block (actor sizes go by
 * cache lines: any extra byte of state would make it 192). The entry of a
 * slot belongs to the actor incarnation in it; an incarnation that is not
 * a connection actor never reads it, and a connection actor's init writes
 * it before anything reads it, so entries need no clearing.
 *
 * The connection is released with the actor like any owned resource,
 * without the cost of one (the actor extension holding the resource list
 * is 192 bytes).
 */
#include "net_int.h"

#include <errno.h>
#include <string.h>
#include <troupe/supervisor.h>

struct wrap_arg {
    struct tp__conn *c;
    struct tp_listener *l;
    const tp_tcp_opened *opened;
};

static void wrap_handle(tp_ctx *ctx, void *state, const tp_msg *msg);

static struct tp_listener *
listener_of(tp_ctx *ctx)
{
    const tp_behaviour *b =
        atomic_load_explicit(&ctx->self->beh, memory_order_relaxed);

    return tp__container_of(b, struct tp_listener, wrap);
}

/* The running actor's entry (it exists: init created it). */
static struct tp__wslot *
my_slot(tp_ctx *ctx)
{
    struct tp__net *net = listener_of(ctx)->net;
    uint32_t idx = tp_pid_index(tp__actor_pid(ctx->self));
    /* acquire: pairs with the release that published the chunk. */
    struct tp__wslot *chunk = atomic_load_explicit(
        &net->wslots[idx >> TP__WSLOT_BITS], memory_order_acquire);

    return &chunk[idx & (TP__WSLOT_CHUNK - 1)];
}

/* Creates the entry of slot idx's chunk if needed. */
static struct tp__wslot *
slot_make(struct tp__net *net, uint32_t idx)
{
    _Atomic(struct tp__wslot *) *p = &net->wslots[idx >> TP__WSLOT_BITS];
    struct tp__wslot *chunk = atomic_load_explicit(p, memory_order_acquire);

    if (chunk == NULL) {
        pthread_mutex_lock(&net->lock);
        chunk = atomic_load_explicit(p, memory_order_relaxed);
        /* calloc of 128 KiB: mapped lazily, a page per 256 slots used. */
        if (chunk == NULL &&
            (chunk = tp__calloc(TP__WSLOT_CHUNK, sizeof(*chunk))) != NULL)
            atomic_store_explicit(p, chunk, memory_order_release);
        pthread_mutex_unlock(&net->lock);
        if (chunk == NULL)
            return NULL;
    }
    return &chunk[idx & (TP__WSLOT_CHUNK - 1)];
}

bool
tp__is_wrapped(tp_ctx *ctx)
{
    return ctx != NULL && ctx->self != NULL &&
           atomic_load_explicit(&ctx->self->beh, memory_order_relaxed)
                   ->handle == wrap_handle;
}

/* Direct-style hook (direct/direct.c): the listener's own behaviour of the
 * running connection actor (a direct actor's adapter finds its tp_direct
 * through it), or NULL when ctx does not run a connection actor. */
const tp_behaviour *
tp__wrapped_behaviour(tp_ctx *ctx)
{
    return tp__is_wrapped(ctx) ? listener_of(ctx)->o.behaviour : NULL;
}

tp_conn
tp_tcp_self(tp_ctx *ctx)
{
    if (!tp__is_wrapped(ctx))
        return TP_CONN_NONE;
    return my_slot(ctx)->conn;
}

/* ---------------------------------------------------------------------- */
/* Flow control: the consuming side                                        */

static uint64_t
own_mailbox(tp_ctx *ctx)
{
    return tp__mailbox_len(ctx->self);
}

/* Accounts for one handled message: DATA bytes of our connection leave
 * rxq. Always a read-modify-write of rxq: it orders this actor's mailbox
 * progress (deq, stored before the handler) against the loop's pause,
 * which is a read-modify-write of rxq followed by a read of the mailbox
 * length. So either the loop sees our progress, or we see its PAUSED. */
static void
consumed(tp_ctx *ctx, struct tp__wslot *hdr, const tp_msg *msg)
{
    struct tp_listener *l = listener_of(ctx);
    struct tp__conn *c = tp__conn_block(l->net, hdr->conn);
    uint32_t gen = (uint32_t)(hdr->conn >> 32);
    uint64_t n =
        msg->type == TP_MSG_TCP_DATA && msg->ref == hdr->conn ? msg->len : 0;
    uint64_t w, nw;

    if (c == NULL)
        return;
    w = atomic_load_explicit(&c->rxq, memory_order_relaxed);
    do {
        if ((w >> 32) != gen)
            return; /* closed and reused: not ours any more */
        nw = w - n;
        if ((nw & TP__RX_PAUSED) && !(nw & TP__RX_RESUME) &&
            (nw & TP__RX_BYTES) <= l->o.conn.read_low &&
            own_mailbox(ctx) <= l->o.conn.mailbox_low)
            nw |= TP__RX_RESUME; /* we post the resume: once */
    } while (!atomic_compare_exchange_weak(&c->rxq, &w, nw));
    if ((nw & TP__RX_RESUME) && !(w & TP__RX_RESUME))
        tp__net_post(l->net, hdr->conn, TP__OP_RESUME, 0);
}

/* Direct-style hook (direct/direct.c): a direct connection actor took a
 * message out of its own queue (messages handed to its adapter stay
 * counted in its mailbox until then): re-checks whether reading may
 * resume, as a handled message does. */
void
tp__wrap_progress(tp_ctx *ctx)
{
    static const tp_msg none = {0};
    struct tp__wslot *hdr;

    if (!tp__is_wrapped(ctx))
        return;
    hdr = my_slot(ctx);
    if (hdr->conn != TP_CONN_NONE)
        consumed(ctx, hdr, &none);
}

/* ---------------------------------------------------------------------- */
/* The behaviour                                                          */

/* The connection actor joins the listener's supervisor, found by name
 * (resolved now: the supervisor may have been restarted) or by pid. */
static int
join_supervisor(tp_ctx *ctx, const tp_listen_opts *o)
{
    tp_pid sup = o->supervisor;

    if (o->supervisor_name != NULL) {
        sup = tp_whereis(tp_ctx_runtime(ctx), o->supervisor_name);
        if (sup == TP_PID_NONE)
            return -ESRCH;
    }
    return sup == TP_PID_NONE ? 0 : tp_supervisor_attach(ctx, sup);
}

static int
wrap_init(tp_ctx *ctx, void *state, void *arg)
{
    struct wrap_arg *wa = arg;
    struct tp_listener *l = wa->l;
    struct tp__actor *a = ctx->self;
    struct tp__wslot *slot;
    int err;

    slot = slot_make(l->net, tp_pid_index(tp__actor_pid(a)));
    if (slot == NULL)
        return -ENOMEM;
    slot->conn = wa->opened->conn;
    slot->become = NULL;
    atomic_store_explicit(&wa->c->owner, tp_self(ctx), memory_order_relaxed);
    /* Queued before anything init does, so OPENED is always first. */
    tp__conn_tell(wa->c, TP_MSG_TCP_OPENED, wa->opened, sizeof(*wa->opened));
    if ((err = join_supervisor(ctx, &l->o)) != 0)
        return err;
    if (l->o.behaviour->init == NULL)
        return 0;
    err = l->o.behaviour->init(ctx, state, l->o.arg);
    if (a->handler != wrap_handle) { /* init called tp_become() */
        slot->become = a->handler;
        a->handler = wrap_handle;
    }
    return err;
}

/* Never called: marks "the user did not call tp_become()". */
static void
become_probe(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    (void)ctx;
    (void)state;
    (void)msg;
}

static void
call_user(tp_ctx *ctx, void *state, struct tp__wslot *hdr, const tp_msg *msg)
{
    struct tp__actor *a = ctx->self;
    tp_handle_fn fn = hdr->become != NULL
                          ? hdr->become
                          : listener_of(ctx)->o.behaviour->handle;

    a->handler = become_probe;
    fn(ctx, state, msg);
    if (a->handler == wrap_handle) /* tp_become(ctx, NULL) */
        hdr->become = NULL;
    else if (a->handler != become_probe)
        hdr->become = a->handler;
    a->handler = wrap_handle;
}

static void
wrap_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct tp__wslot *hdr = my_slot(ctx);
    bool ours = tp_msg_is_net(msg->type) && msg->ref == hdr->conn &&
                hdr->conn != TP_CONN_NONE;

    /* Direct-style hook: read before the user's handler, which may be a
     * direct actor's adapter that keeps msg and frees it before returning. */
    uint32_t type = msg->type;

    if (hdr->conn != TP_CONN_NONE)
        consumed(ctx, hdr, msg);
    call_user(ctx, state, hdr, msg);
    if (!ours)
        return;
    if (type == TP_MSG_TCP_CLOSED) {
        hdr->conn = TP_CONN_NONE;
        if (listener_of(ctx)->o.exit_on_close)
            tp_exit(ctx);
    } else if (type == TP_MSG_TCP_DRAIN) {
        tp_tcp_close(ctx, hdr->conn);
    }
}

static void
user_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    const tp_behaviour *b = listener_of(ctx)->o.behaviour;
    struct tp__recover r;

    if (b->terminate == NULL)
        return;
    r.prev = tp__tls_recover;
    tp__tls_recover = &r;
    if (sigsetjmp(r.jb, 0) == 0) {
        b->terminate(ctx, state, reason);
    } else {
        /* cppcheck-suppress uninitvar ; set before the siglongjmp */
        if (r.signo != 0)
            tp__fault_report(&r, "terminate callback");
        tp_log(TP_LOG_WARN, "%s: terminate crashed (ignored)",
               b->name != NULL ? b->name : "connection");
    }
    tp__tls_recover = r.prev;
}

static void
wrap_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    struct tp__wslot *hdr = my_slot(ctx);

    user_terminate(ctx, state, reason);
    if (hdr->conn != TP_CONN_NONE)
        tp__net_post(listener_of(ctx)->net, hdr->conn, TP__OP_CLOSE,
                     TP_NET_CLOSE_OWNER_EXIT);
    hdr->conn = TP_CONN_NONE;
}

void
tp__wrap_behaviour(struct tp_listener *l)
{
    const tp_behaviour *b = l->o.behaviour;

    l->wrap.name = b->name != NULL ? b->name : "connection";
    l->wrap.state_size = b->state_size;
    l->wrap.init = wrap_init;
    l->wrap.handle = wrap_handle;
    l->wrap.terminate = wrap_terminate;
}

int
tp__wrap_spawn(struct tp__net_loop *nl, struct tp__conn *c,
               struct tp_listener *l, const tp_tcp_opened *opened)
{
    struct wrap_arg wa = {c, l, opened};
    tp_spawn_opts so;
    tp_pid pid;

    tp_spawn_opts_init(&so);
    if (l->o.scheduler >= 0)
        so.scheduler = l->o.scheduler;
    else if (l->o.pin)
        so.scheduler = (int)nl->s->index;
    return tp_spawn(nl->s->ext[TP__EXT_ACTORS], &l->wrap, &wa, &so, &pid);
}
