/*
 * actors/actor_int.h - the actor as the runtime stores it, the per-thread
 * context, and the interfaces other layers (services, supervisor, net,
 * console) use to attach to actors.
 *
 * Memory model of an actor slot: actor blocks are type-stable. A block is
 * bound to one pid-table slot for the runtime's whole life and only ever
 * holds actors (never returned to the allocator until tp_runtime_destroy).
 * So a sender that resolved a pid may race with the actor's death and even
 * with the slot's reuse, and still only touch header fields whose meaning
 * never changes. Every message carries its destination pid; a stale message
 * that lands in a reused slot is recognised by that pid and dropped (dead
 * letter). The system lane can be closed, so signals to a dead actor fail
 * cleanly at the sender.
 */
#ifndef TP_ACTORS_ACTOR_INT_H
#define TP_ACTORS_ACTOR_INT_H

#include "common/u64map.h"
#include "mailbox/msg.h"
#include "runtime/runtime_int.h"

#include <pthread.h>
#include <troupe/actor.h>
#include <troupe/request.h>

/* Pid of a dead incarnation: generation and index kept, never valid. */
#define TP__PID_DEAD (1ull << 63)
/* Generations stay below the node bits of a pid (troupe/base.h: the node
 * id lives in bits 53..62, so a local pid always has node 0). */
#define TP__GEN_MAX  TP_PID_GEN_MAX

/* Owner-only flags (oflags). */
#define TP__A_TRAP_EXIT 0x01u
#define TP__A_EXITING   0x02u
#define TP__A_SYSTEM    0x04u /* runtime-internal actor (console, ...) */
#define TP__A_RAWREPLY  0x08u /* sees replies without request matching */

/* Atomic flags (aflags). */
#define TP__AF_NAMED  0x01u
#define TP__AF_PINNED 0x02u /* always runs on its home scheduler */
/* Killed when no kill signal could be allocated: seen when the actor takes
 * its nudge (tp__kill_noalloc). */
#define TP__AF_KILLED 0x04u
#define TP__AF_DIRECT 0x08u /* a direct-style actor (direct/direct.c) */

#define TP__ACTOR_HDR 128u

struct tp__actor_ext;

/*
 * The header is two cache lines split by writer: line 0 is written by
 * senders (enq, the mailbox's producer end, signal nudges, drop counters)
 * and only read by the owner; line 1 is the owner's (consumer end, counters,
 * handler). A sender and the actor it floods then never false-share a line
 * the other writes on every message.
 */
struct tp__actor {
    /* -- line 0: senders -------------------------------------------- */
    _Atomic uint64_t pid; /* current pid, | TP__PID_DEAD when free */
    _Atomic(const tp_behaviour *) beh;
    _Atomic uint32_t enq; /* messages pushed (producers), modulo 2^32 */
    /* A direct actor's stack bytes (direct/direct.c: written by the owner
     * when they change, read by `ps` from any thread); 0 otherwise. */
    _Atomic uint32_t stack_held;
    struct tp__node nudge; /* wakes the actor for system signals */
    _Atomic uint32_t max_msgs;
    _Atomic uint32_t max_bytes;
    _Atomic uint32_t bytes; /* queued payload bytes (bytes-bounded only) */
    _Atomic uint32_t drops;
    _Atomic uint8_t nudge_pending;
    _Atomic uint8_t overflow;
    uint8_t oflags; /* owner only, rarely written */
    uint8_t sclass;
    _Atomic uint16_t home;
    _Atomic uint16_t aflags;
    struct tp__mpsc mq; /* ordinary lane: head ends line 0, tail and stub
                           start line 1 */
    /* -- line 1: the owner ------------------------------------------ */
    struct tp__node task; /* run-queue link; free-list link when free */
    tp__sysq sys;         /* system lane (pushed rarely) */
    tp_handle_fn handler; /* owner only (tp_become) */
    /* Owner only: 0, a struct tp__actor_ext (allocated when first needed),
     * or (pid << 1) | 1: the actor's one link and nothing else, kept here
     * so that a supervised connection actor needs no ext block (pids
     * have bit 63 clear). Read it through tp__ext_peek()/tp__ext_link1(). */
    uintptr_t extw;
    _Atomic uint32_t deq;    /* messages popped (consumer), modulo 2^32 */
    _Atomic uint32_t born_s; /* spawn time, s since the runtime started */
    _Atomic uint64_t handled;
    _Alignas(16) unsigned char state[];
};

_Static_assert(offsetof(struct tp__actor, mq) == 56, "mq.head on line 0");
_Static_assert(offsetof(struct tp__actor, task) == 80, "owner's line");
_Static_assert(sizeof(struct tp__actor) == TP__ACTOR_HDR, "actor header");

/* Something an actor owns and that must be released when it dies
 * (sockets, timers, console sessions, ...). Owner thread only. */
struct tp__resource {
    struct tp__resource *next, *prev;
    void (*release)(struct tp__resource *r, tp_ctx *ctx,
                    const tp_exit_reason *reason);
};

struct tp__actor_ext {
    tp_pid parent;
    struct tp__u64map links;   /* pid -> 1 */
    struct tp__u64map mon_out; /* ref -> target | FIRED */
    struct tp__u64map mon_in;  /* ref -> watcher */
    struct tp__msg *stash_head, *stash_tail;
    uint32_t stash_n;
    struct tp__msg *front_head, *front_tail;
    struct tp__resource res;   /* list head (circular) */
    void *timers;              /* actors/timer.c: armed timers it owns */
    struct tp__u64map pending; /* request ref -> timeout timer handle */
    tp_pid tracer;             /* gets a copy of each message handled */
    /* After death, while linked EXITs / DOWNs wait to be allocated (see
     * struct tp__undelivered): who died and why (the text is not kept). */
    struct tp__actor_ext *undo_next;
    tp_pid undo_pid;
    int32_t undo_kind, undo_code;
};

/* Death notifications (linked EXITs, DOWNs) that could not be allocated
 * when their actor died. Its ext block is kept, holding the links and
 * monitors still to be told, and retried from the scheduler's timing wheel
 * (10 ms, doubling to 1 s) until every one is delivered: a supervisor is
 * never left believing a dead child runs. One list per scheduler context,
 * touched only by that scheduler's thread. */
struct tp__undelivered {
    struct tp__actor_ext *head;
    struct tp__wtimer timer;
    uint32_t backoff_ms;
};

#define TP__MON_FIRED (1ull << 63)

/* Actor size classes. */
#define TP__NCLASS 18

struct tp__slot_cache {
    struct tp__actor *head;
    uint32_t n;
};

struct tp__arena {
    char *cur, *end;
};

/* Per-thread statistics (one writer). */
struct tp__ctx_stats {
    tp__stat dead_letters;
    tp__stat mailbox_drops;
    tp__stat spawned;
    tp__stat exited;
    tp__stat crashed;
    _Atomic int64_t live;
    _Atomic int64_t actor_bytes;
};

struct tp__actors;

/* Per-thread data of the services (e.g. the msgpack decoder's arena),
 * made on first use by its owner and freed with the runtime through
 * `free`. Services embed this header first in their own struct. */
struct tp__ctx_svc {
    void (*free)(struct tp__ctx_svc *svc);
};

struct tp_ctx {
    struct tp_runtime *rt;
    struct tp__actors *A;
    struct tp__sched *sched; /* NULL for the external context */
    int index;               /* scheduler index, -1 external */
    struct tp__actor *self;
    struct tp__msg *cur;
    bool exiting;
    bool init_failed;
    tp_exit_reason exit_reason;
    char exit_text[256];
    uint64_t ref_next;
    struct tp__ctx_stats st;
    struct tp__slot_cache cache[TP__NCLASS];
    struct tp__arena arena[TP__NCLASS];
    struct tp__ctx_svc *svc;     /* owner thread only; NULL until used */
    struct tp__undelivered undo; /* scheduler contexts only */
    /* Outside-thread contexts (actors/xctx.c): list link, and whether its
     * thread is gone (the context may then be adopted). */
    tp_ctx *xnext;
    _Atomic bool xorphan;
    pthread_t xthread; /* the thread using it (assertions only) */
};

struct tp__depot_batch {
    struct tp__depot_batch *next;
    struct tp__actor *head;
    uint32_t n;
};

struct tp__region {
    struct tp__region *next;
};

struct tp__registry;

struct tp__actors {
    struct tp_runtime *rt;
    _Atomic bool stop_overran;         /* stop had to kill past its deadline */
    _Atomic(struct tp__actor **) *dir; /* chunk directory */
    _Atomic uint32_t next_slot;
    pthread_mutex_t lock; /* chunks, depot, regions */
    struct tp__depot_batch *depot[TP__NCLASS];
    struct tp__region *regions;
    tp_ctx **sctx; /* per scheduler */
    /* Outside threads: one context each, pushed on xlist (actors/xctx.c);
     * xctx, under the recursive xlock, only when one cannot be allocated
     * (and for the destroying thread). */
    _Atomic(tp_ctx *) xlist;
    tp_ctx *xctx;
    pthread_mutex_t xlock;
    uint64_t id; /* unique per runtime ever created in this process */
    struct tp__actors *xlive_next;
    _Atomic uint64_t xref; /* references made outside schedulers */
    struct tp__registry *names;
    struct tp__stop_hook kill_hook;
};

#define TP__CHUNK_BITS 16u
#define TP__CHUNK_SIZE (1u << TP__CHUNK_BITS)
#define TP__DIR_SIZE   (1u << (32 - TP__CHUNK_BITS))

/* ---- runtime-wide helpers (actors/lifecycle.c) ---- */
static inline struct tp__actors *
tp__actors_of(struct tp_runtime *rt)
{
    return (struct tp__actors *)rt->ext[TP__EXT_ACTORS];
}

/* Contexts (actors/lifecycle.c): s NULL for an outside thread's. */
tp_ctx *tp__ctx_new(struct tp__actors *A, struct tp__sched *s);
void tp__ctx_free(tp_ctx *ctx);

/* ---- outside threads (actors/xctx.c) ---- */
/* The calling thread's context in rt: its scheduler's on a scheduler
 * thread of rt, else the thread's own outside context (registered on first
 * use; no lock). Pair with tp__xctx_release. Thread-safe. */
tp_ctx *tp__xctx_acquire(struct tp_runtime *rt);
void tp__xctx_release(tp_ctx *ctx);
/* Runtime creation / destruction (registers A in the live list). */
void tp__xctx_runtime_born(struct tp__actors *A);
void tp__xctx_runtime_dies(struct tp__actors *A);
/* True when ctx may be used on the calling thread: a scheduler's on that
 * scheduler's thread, an outside thread's on its thread (TP_ASSERT only:
 * contexts are single-writer). */
bool tp__ctx_mine(const tp_ctx *ctx);
/* Calls fn on every outside context (readers may race registration). */
void tp__xctx_foreach(struct tp__actors *A, void (*fn)(tp_ctx *ctx, void *arg),
                      void *arg);
/* Frees the outside contexts (destroy; no other thread uses A). */
void tp__xctx_free_all(struct tp__actors *A);

/* ---- slots (actors/slots.c) ---- */
struct tp__actor *tp__slot_actor(struct tp__actors *A, uint32_t idx);
/* The live actor for pid, or NULL (a racy answer: it may die right after;
 * the memory stays an actor). */
struct tp__actor *tp__actor_lookup(struct tp__actors *A, tp_pid pid);
struct tp__actor *tp__slot_alloc(tp_ctx *ctx, unsigned klass);
void tp__slot_free(tp_ctx *ctx, struct tp__actor *a);
int tp__class_of(size_t size, size_t *block);
size_t tp__class_size(unsigned klass);
void tp__slots_free_all(struct tp__actors *A);

/* ---- core (actors/actor.c) ---- */
bool tp__actor_run(struct tp__sched *s, struct tp__node *task);
/* Pushes an ordinary message (takes ownership of m in every case). */
int tp__deliver(tp_ctx *ctx, tp_pid to, struct tp__msg *m);
/* Pushes m on the system lane of `to` (takes ownership of m in every
 * case). Returns 0 or -ESRCH (m freed). */
int tp__signal(struct tp__actors *A, tp_pid to, struct tp__msg *m);
/* Drops m as a dead letter. */
void tp__dead_letter(tp_ctx *ctx, struct tp__msg *m);
struct tp__actor_ext *tp__actor_ext(struct tp__actor *a);

_Static_assert(sizeof(uintptr_t) == sizeof(tp_pid), "extw holds a pid");

/* The actor's ext block, or NULL (none, or only an inline link). */
static inline struct tp__actor_ext *
tp__ext_peek(const struct tp__actor *a)
{
    return (a->extw & 1u) ? NULL : (struct tp__actor_ext *)a->extw;
}

/* The inline link (no ext block), or TP_PID_NONE. */
static inline tp_pid
tp__ext_link1(const struct tp__actor *a)
{
    return (a->extw & 1u) ? (tp_pid)(a->extw >> 1) : TP_PID_NONE;
}

/* Links (owner thread of a; actors/signal.c). add: 1 added, 0 already
 * linked, -ENOMEM. remove: true if it was linked. */
int tp__link_add(struct tp__actor *a, tp_pid other);
bool tp__link_remove(struct tp__actor *a, tp_pid other);
/* A link's tag: 1 for a plain link, or what tp__link_set_tag() put there
 * (any value > 1, for the actor's own bookkeeping: its supervisor code).
 * A trapped EXIT of a tagged link carries the tag in msg->ref. take:
 * remove, with the tag in *tag (may be NULL). set_tag: 0, -ENOENT (not
 * linked), -ENOMEM. tag: 0 when not linked. */
bool tp__link_take(struct tp__actor *a, tp_pid other, uint64_t *tag);
int tp__link_set_tag(struct tp__actor *a, tp_pid other, uint64_t tag);
uint64_t tp__link_tag(const struct tp__actor *a, tp_pid other);
bool tp__link_has(const struct tp__actor *a, tp_pid other);
uint32_t tp__link_count(const struct tp__actor *a);
void tp__actor_die(tp_ctx *ctx, struct tp__actor *a,
                   const tp_exit_reason *reason);
/* Drains messages left in a slot (stale or at death). */
void tp__actor_drain(tp_ctx *ctx, struct tp__actor *a);
void tp__actor_schedule(struct tp__actors *A, struct tp__actor *a);
uint64_t tp__ctx_make_ref(tp_ctx *ctx);

/* Messages queued in a's ordinary lane (a racy snapshot from other threads;
 * the counters wrap, the difference does not). */
static inline uint32_t
tp__mailbox_len(struct tp__actor *a)
{
    return atomic_load_explicit(&a->enq, memory_order_relaxed) -
           atomic_load_explicit(&a->deq, memory_order_relaxed);
}

static inline tp_pid
tp__actor_pid(struct tp__actor *a)
{
    return atomic_load_explicit(&a->pid, memory_order_acquire);
}

/* direct/direct.c: true when ctx runs a direct-style actor (its own
 * turn: the answer to tp_actor_query() reports its stack). */
bool tp__direct_is(const tp_ctx *ctx);
/* direct/direct.c, from any thread: 1 when pid is a live direct-style
 * actor (*stack_bytes: the bytes of stack it holds, as
 * tp_direct_stack_bytes()), 0 when a live callback actor, -ESRCH. */
int tp__direct_peek(struct tp_runtime *rt, tp_pid pid, uint64_t *stack_bytes);

/* Owned resources (owner thread of ctx->self). */
int tp__actor_own(tp_ctx *ctx, struct tp__resource *r);
void tp__actor_disown(tp_ctx *ctx, struct tp__resource *r);

/* Runs fn(ctx, state, arg) inside actor `to` at its next turn (before its
 * ordinary messages). Returns 0 or -ESRCH. arg is owned by fn. */
typedef void (*tp__call_fn)(tp_ctx *ctx, void *state, void *arg);
int tp__actor_call(struct tp__actors *A, tp_pid to, tp__call_fn fn, void *arg);
void tp__actor_run_call(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m);

/* User-callback bracket (fault trap + watchdog). */
#define TP__USER_BEGIN(ctx, a)                                                 \
    do {                                                                       \
        tp__sched_user_begin(                                                  \
            (ctx)->sched,                                                      \
            atomic_load_explicit(&(a)->beh, memory_order_relaxed)->name,       \
            atomic_load_explicit(&(a)->pid, memory_order_relaxed));            \
        tp__tls_in_user = 1;                                                   \
    } while (0)
#define TP__USER_END(ctx)                                                      \
    do {                                                                       \
        tp__tls_in_user = 0;                                                   \
        tp__sched_user_end((ctx)->sched);                                      \
    } while (0)

/* ---- signals (actors/signal.c) ---- */
void tp__process_sys(tp_ctx *ctx, struct tp__actor *a);
/* Tells links and monitors; returns false when some notification could
 * not be allocated (the ext then holds those still to be told). */
bool tp__notify_death(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
                      const tp_exit_reason *reason);
/* Takes a dead actor's ext whose notifications are not all delivered and
 * retries them until they are (or drops them, logged, off a scheduler). */
void tp__undelivered_keep(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
                          const tp_exit_reason *reason);
/* Frees what is still waiting (runtime destroy, threads joined). */
void tp__undelivered_free(tp_ctx *ctx);
void tp__close_sys(tp_ctx *ctx, struct tp__actor *a, tp_pid self,
                   const tp_exit_reason *reason);
/* Accepts a DOWN from the ordinary lane (false: flushed, drop it). */
bool tp__down_accept(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m);
int tp__exit_signal(struct tp__actors *A, tp_pid from, tp_pid to,
                    const tp_exit_reason *reason, bool linked);
/* An untrappable kill that allocates nothing (a flag and the embedded
 * nudge): what tp__exit_signal() does with a kill it cannot allocate, so
 * kills (tp_exit_pid, supervisors, tp_runtime_stop) always get through.
 * Returns 0 or -ESRCH. */
int tp__kill_noalloc(struct tp__actors *A, tp_pid to);

/* ---- timers (actors/timer.c) ---- */
int tp__timers_new(struct tp_runtime *rt);
/* A one-shot timer sending a runtime message (type may be a system type)
 * carrying ref, owned by the calling actor. */
int tp__timer_arm_sys(tp_ctx *ctx, uint32_t delay_ms, tp_pid to, uint32_t type,
                      uint64_t ref, uint64_t *out);

/* ---- request/reply and tracing (actors/request.c, actors/trace.c) ---- */
/* Filters a reply/timeout/noproc popped from the ordinary lane: false when
 * it answers no pending request (late reply: dropped and freed). */
bool tp__reply_accept(tp_ctx *ctx, struct tp__actor *a, struct tp__msg *m);
void tp__trace_msg(tp_ctx *ctx, struct tp__actor *a, const struct tp__msg *m);
/* req will never be answered (its target died with it queued, or crashed
 * handling it): tell the requester at once with TP_MSG_NOPROC instead of
 * letting it wait for its timeout. No-op for plain messages. */
void tp__request_orphaned(tp_ctx *ctx, const struct tp__msg *req, tp_pid dead);
int tp__calls_new(struct tp_runtime *rt);

/* ---- registry (actors/registry.c) ---- */
int tp__registry_new(struct tp__actors *A);
void tp__registry_free(struct tp__actors *A);
void tp__registry_release(struct tp__actors *A, tp_pid pid);
/* First name of pid into buf (empty string when none). */
void tp__registry_name_of(struct tp__actors *A, tp_pid pid, char *buf,
                          size_t size);

#endif /* TP_ACTORS_ACTOR_INT_H */
