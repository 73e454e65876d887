/*
 * supervisor/sup_int.h - the supervisor's internals: pure policy pieces
 * (restart-intensity window, strategy ranges, backoff, owned copies of
 * specs) testable without threads, and the supervisor actor's state shared
 * by supervisor.c, dynamic.c and api.c.
 *
 * A supervisor is an ordinary actor. Its state is touched only by itself,
 * so nothing here is shared between threads.
 */
#ifndef TP_SUPERVISOR_SUP_INT_H
#define TP_SUPERVISOR_SUP_INT_H

#include "common/common.h"
#include "common/u64map.h"

#include <troupe/request.h>
#include <troupe/supervisor.h>
#include <troupe/timer.h>

/* ---------------------------------------------------------------------- */
/* Restart intensity (intensity.c)                                        */

/*
 * The timestamps of the restarts inside the current window, oldest first,
 * in a ring that grows on demand (so memory follows the real restart rate,
 * never the configured maximum). A restart at time t is inside the window
 * at time now when now - t < period.
 */
struct tp__intensity {
    uint64_t *ts;
    uint32_t cap, head, n;
    uint32_t max;       /* restarts allowed inside the window */
    uint64_t period_ns; /* window length */
};

void tp__intensity_init(struct tp__intensity *w, uint32_t max,
                        uint32_t period_ms);
void tp__intensity_fini(struct tp__intensity *w);
/* Records a restart at now_ns (monotonic, never decreasing). Returns true
 * while at most `max` restarts lie inside the window, false when this one
 * is one too many (also when memory for the window runs out: failing safe
 * means escalating). */
bool tp__intensity_add(struct tp__intensity *w, uint64_t now_ns);
/* Restarts inside the window at now_ns. */
uint32_t tp__intensity_count(struct tp__intensity *w, uint64_t now_ns);

/* ---------------------------------------------------------------------- */
/* Strategy decisions (strategy.c)                                        */

/* Whether a child with this restart type is restarted after exiting with
 * reason r (permanent: always; transient: abnormal exits only, killed
 * included; temporary: never). */
bool tp__restart_wanted(tp_restart type, const tp_exit_reason *r);

/* The children [*first, *end) (start-order positions among n) that the
 * failure of child `failed` restarts: itself (one_for_one, dynamic), all
 * (one_for_all), itself and those started after it (rest_for_one). The
 * running ones among them are stopped in reverse order first. */
void tp__strategy_range(tp_strategy s, uint32_t failed, uint32_t n,
                        uint32_t *first, uint32_t *end);

/* ---------------------------------------------------------------------- */
/* Backoff with jitter (backoff.c)                                        */

/* Delay before the n-th consecutive restart (n >= 1):
 * min(max_ms, min_ms * 2^(n-1)) +- 25 % jitter drawn from *rng. 0 when
 * min_ms is 0 (backoff off). max_ms < min_ms counts as min_ms. */
uint32_t tp__backoff_delay(uint32_t min_ms, uint32_t max_ms, uint32_t n,
                           uint64_t *rng);

/* ---------------------------------------------------------------------- */
/* Owned copies of specs (spec.c)                                          */

/*
 * A child spec copied into one allocation together with everything it
 * points to that the supervisor must keep: its id, its name and, for a
 * child whose behaviour is tp_supervisor_behaviour, the tp_sup_spec it gets
 * as arg (with that spec's children and template, recursively). The
 * behaviour and the args of worker children are the caller's and are not
 * copied. Free with tp__free(). The same image can be flattened into a
 * message and rebuilt at another address (tp__spec_rebase()), which is how
 * the synchronous API sends a spec by value.
 */
#define TP__SPEC_DEPTH_MAX 16

/* Checks a child spec (static: id required). Returns 0 or -EINVAL. */
int tp__child_spec_check(const tp_child_spec *c, bool need_id);
/* Checks a supervisor spec (recursively). Returns 0 or -EINVAL. */
int tp__sup_spec_check(const tp_sup_spec *s);
/* Bytes of the owned image of c. */
size_t tp__child_spec_size(const tp_child_spec *c);
/* Copies c into one new allocation (*out). Returns 0, -EINVAL, -ENOMEM. */
int tp__child_spec_dup(const tp_child_spec *c, tp_child_spec **out);
/* The same for a supervisor spec. */
int tp__sup_spec_dup(const tp_sup_spec *s, tp_sup_spec **out);
/* Fixes an image of a child spec of `size` bytes that was built at
 * old_base and memcpy'd to c (its internal pointers are moved by the
 * difference). Returns 0 or -EINVAL when a pointer falls outside the
 * image (the bytes came from elsewhere). */
int tp__child_spec_rebase(tp_child_spec *c, size_t size, uintptr_t old_base);

/* ---------------------------------------------------------------------- */
/* The supervisor actor                                                   */

/* Internal message types (in the library range, never exported). */
#define TP__SUP_TIMER        0xfffe01f0u /* u64 timer id, from self */
#define TP__SUP_START_INLINE 0xfffe01f1u /* tp__sup_start_inline + image */

/* Payload of TP__SUP_START_INLINE: what tp_supervisor_start_child() sends,
 * the spec by value (so a caller that timed out leaves nothing behind). */
struct tp__sup_start_inline {
    uint64_t base; /* address the image was built at */
    uint64_t size; /* image bytes that follow, 0 = template */
    void *dyn_arg;
    /* followed by the image (8-byte aligned) */
};

enum tp__child_state {
    TP__CHILD_RUNNING = 0,
    TP__CHILD_STOPPING, /* shutdown sent, waiting for its EXIT */
    TP__CHILD_STOPPED,  /* not running; the spec stays (static) */
    TP__CHILD_WAITING   /* backoff or retry timer armed */
};

/* What to do once a stopping child's EXIT arrives. */
enum tp__stop_why {
    TP__STOP_GROUP = 0, /* part of a group restart or the shutdown */
    TP__STOP_TERMINATE, /* terminate_child: stays stopped (or removed) */
    TP__STOP_RESTART    /* restart_child of a running child */
};

#define TP__CF_PENDING  0x01u /* to be started by the group's start phase */
#define TP__CF_OWNSPEC  0x02u /* spec is an owned image (freed with it) */
#define TP__CF_ATTACHED 0x04u /* joined with TP_SUP_ATTACH */
#define TP__CF_DELETE   0x08u /* delete once the group operation ends */
#define TP__CF_KILLED   0x10u /* the shutdown timeout fired: kill sent */

struct tp__sup_child {
    struct tp__sup_child *prev, *next; /* dynamic: list of all children */
    tp_child_spec *spec;               /* owned image, or the template */
    void *arg;                         /* init arg of every (re)start */
    tp_pid pid;                        /* TP_PID_NONE when not running */
    uint64_t started_ns;
    uint64_t timer_id; /* kill or backoff timer, 0 = none */
    tp_timer timer;
    tp_pid reply_to; /* request answered when the stop completes */
    uint64_t reply_ref;
    uint32_t restarts; /* automatic restarts */
    uint32_t streak;   /* consecutive restarts (backoff) */
    uint32_t idx;      /* static: start-order position */
    uint8_t state;     /* enum tp__child_state */
    uint8_t why;       /* enum tp__stop_why while STOPPING */
    uint8_t flags;     /* TP__CF_* */
};

enum tp__op_kind { TP__OP_NONE = 0, TP__OP_RESTART, TP__OP_SHUTDOWN };
enum tp__op_phase { TP__PH_STOP = 0, TP__PH_DELAY, TP__PH_START };

/* A group operation of a static supervisor: stop [first, end) in reverse
 * order (cursor walks down), optionally wait, then start the pending ones
 * in order (restart), or exit (shutdown). Requests that change children
 * are stashed meanwhile. */
struct tp__sup_op {
    uint8_t kind;  /* enum tp__op_kind */
    uint8_t phase; /* enum tp__op_phase */
    uint32_t first, end;
    int64_t cursor;
    uint32_t delay_ms;
    uint64_t timer_id;
    tp_timer timer;
    bool retry; /* a start failed: go through a timer, never a hot loop */
};

struct tp__dyn_chunk;

struct tp__sup {
    tp_sup_spec *spec; /* owned image */
    tp_pid self, parent;
    struct tp__intensity win;
    uint64_t rng;
    uint64_t restarts;
    bool max_hit;
    bool exiting; /* shutting down: nothing new starts */
    uint32_t active;
    /* Static children in start order. */
    struct tp__sup_child **kids;
    uint32_t nkids, capkids;
    /* Dynamic children: a list and a free-listed record pool. */
    struct tp__sup_child dyn; /* list head */
    uint32_t ndyn;
    /* Attached children (TP_SUP_ATTACH) while they run normally have no
     * record: they are the links tagged TP__DYN_ATTACHED in the
     * supervisor's own link table (dynamic.c). How many, and the one
     * timer that kills those a shutdown did not end in time. */
    uint32_t nlite;
    uint64_t lite_timer_id;
    tp_timer lite_timer;
    struct tp__sup_child *free;
    struct tp__dyn_chunk *chunks;
    /* pid -> child, timer id -> child (O(1) for 100,000 children). */
    struct tp__u64map bypid;
    struct tp__u64map timers;
    uint64_t next_timer;
    struct tp__sup_op op;
    tp_exit_reason exit_reason;
    char exit_text[128];
};

/* supervisor.c */
bool tp__sup_is_dynamic(const struct tp__sup *s);
/* Starts c (spawn linked). Returns 0 or the spawn error. */
int tp__sup_spawn(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c);
/* Stops a running child for `why` (shutdown signal + timer, or kill). */
void tp__sup_stop_child(tp_ctx *ctx, struct tp__sup *s, struct tp__sup_child *c,
                        enum tp__stop_why why);
/* Cancels c's timer, if any. */
void tp__sup_cancel_timer(tp_ctx *ctx, struct tp__sup *s,
                          struct tp__sup_child *c);
void tp__sup_begin_shutdown(tp_ctx *ctx, struct tp__sup *s,
                            const tp_exit_reason *why);
/* Removes a static child's record (not running). */
void tp__sup_static_delete(struct tp__sup *s, struct tp__sup_child *c);
/* Static child by id, or NULL. */
struct tp__sup_child *tp__sup_static_find(struct tp__sup *s, const char *id);
/* Appends a static child record (spec: owned image). Returns 0, -ENOMEM. */
int tp__sup_static_add(struct tp__sup *s, tp_child_spec *spec,
                       struct tp__sup_child **out);
void tp__sup_fill_info(const struct tp__sup *s, const struct tp__sup_child *c,
                       tp_runtime *rt, tp_child_info *out);

/* supervisor.c: a one-shot TP__SUP_TIMER to self carrying a new id
 * (returned; 0 if no timer could be armed). */
uint64_t tp__sup_arm(tp_ctx *ctx, struct tp__sup *s, uint32_t ms, tp_timer *t);

/* dynamic.c */
/* The tag of an attached child's link (actors/actor_int.h,
 * tp__link_set_tag()); its trapped EXIT carries it in msg->ref. */
#define TP__DYN_ATTACHED 2u
/* Children of a dynamic supervisor: records and attached ones. */
uint32_t tp__dyn_count(const struct tp__sup *s);
/* An attached child (no record) by pid: promoted to a record, so that it
 * can be stopped like any child; NULL if there is none (or no memory). */
struct tp__sup_child *tp__dyn_promote(tp_ctx *ctx, struct tp__sup *s,
                                      tp_pid pid);
/* Calls fn for each attached child without a record. */
void tp__dyn_each_attached(tp_ctx *ctx, void (*fn)(tp_pid pid, void *arg),
                           void *arg);
/* The shutdown timer of the attached children fired: kill what is left. */
void tp__dyn_attached_timeout(tp_ctx *ctx, struct tp__sup *s);
struct tp__sup_child *tp__dyn_new(struct tp__sup *s);
void tp__dyn_free(struct tp__sup *s, struct tp__sup_child *c);
void tp__dyn_fini(struct tp__sup *s);
/* Starts a dynamic child (spec: owned image or NULL for the template).
 * Returns 0, -EAGAIN (max_children), -ENOMEM or the spawn error; on
 * failure an owned spec is freed. */
int tp__dyn_start(tp_ctx *ctx, struct tp__sup *s, tp_child_spec *spec,
                  void *arg, tp_pid *out);
/* Records the sender of TP_SUP_ATTACH as a temporary child. */
void tp__dyn_attach(tp_ctx *ctx, struct tp__sup *s, tp_pid pid);
/* Stops every dynamic child at once (shutdown). */
void tp__dyn_stop_all(tp_ctx *ctx, struct tp__sup *s);

/* api.c */
/* Handles a TP_SUP_* request (or TP__SUP_START_INLINE). */
void tp__sup_request(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m);
/* A stop for a request completed: answer it. */
void tp__sup_answer(tp_ctx *ctx, struct tp__sup_child *c, int err, tp_pid pid);

#endif /* TP_SUPERVISOR_SUP_INT_H */
