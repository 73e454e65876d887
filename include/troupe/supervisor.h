/*
 * troupe/supervisor.h - OTP-style supervisors.
 *
 * A supervisor is an actor (behaviour tp_supervisor_behaviour) that starts
 * children from child specs, links to them, traps their exits and restarts
 * them according to its strategy and each child's restart type. More than
 * `intensity` restarts within `period_ms` make it shut its children down
 * (reverse start order, honouring each child's shutdown timeout) and exit
 * with reason shutdown, which escalates to its own supervisor. Restarts can
 * optionally be delayed by an exponential backoff with jitter.
 *
 * The runtime has a root supervisor (one_for_one, created on first use);
 * tp_runtime_stop() shuts it down first, so the whole tree stops cleanly.
 *
 * A supervisor ends (after shutting its children down, with the same
 * reason) when its parent - the actor that spawned it - ends, or on an exit
 * signal from outside the runtime (tp_runtime_exit_pid(), the runtime's
 * stop); exits of other linked actors are ignored, as in OTP. Children must
 * not unlink from their supervisor. docs/SUPERVISION.md has the details.
 */
#ifndef TROUPE_SUPERVISOR_H
#define TROUPE_SUPERVISOR_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tp_restart {
    TP_PERMANENT = 0, /**< always restarted */
    /** Restarted after an abnormal exit only: any reason but normal and
     *  shutdown (crash, killed, noproc, user codes). */
    TP_TRANSIENT,
    TP_TEMPORARY /**< never restarted, and forgotten once it ends */
} tp_restart;

typedef enum tp_child_type { TP_WORKER = 0, TP_SUPERVISOR } tp_child_type;

/** Shutdown: kill at once (brutal_kill). */
#define TP_SHUTDOWN_BRUTAL   0u
/** Shutdown: wait forever (the default for supervisor children). */
#define TP_SHUTDOWN_INFINITY UINT32_MAX

/** How to start and treat one child. Fill with tp_child_spec_init(). */
typedef struct tp_child_spec {
    const char *id; /**< unique within the supervisor, 1..63 bytes
                         (copied); required for static children, ignored
                         for dynamic ones */
    const tp_behaviour *behaviour; /**< the child's code */
    /** Passed to init at every (re)start; not copied: must stay valid as
     *  long as the child spec is in its supervisor -- except for a child
     *  supervisor (behaviour tp_supervisor_behaviour), whose tp_sup_spec
     *  arg is copied deeply. */
    void *arg;
    /** When the child is restarted after it ends (default TP_PERMANENT). */
    tp_restart restart;
    /** ms to wait after the shutdown signal before killing, or
     *  TP_SHUTDOWN_BRUTAL / TP_SHUTDOWN_INFINITY. Default 5000 (workers),
     *  TP_SHUTDOWN_INFINITY (supervisors). */
    uint32_t shutdown_ms;
    /** TP_WORKER or TP_SUPERVISOR (tp_child_spec_init() picks
     *  TP_SUPERVISOR for &tp_supervisor_behaviour). Informational: it is
     *  reported in tp_child_info, where tools such as the console descend
     *  into TP_SUPERVISOR children. */
    tp_child_type type;
    /** Spawn options of the child (name, mailbox bound, scheduler); the
     *  child is always linked to its supervisor. A registered name is
     *  released at the child's death before the supervisor hears of it,
     *  so the restarted child can register it again. */
    tp_spawn_opts opts;
} tp_child_spec;

/** Defaults: permanent worker, shutdown 5000 ms; for b ==
 *  &tp_supervisor_behaviour: permanent supervisor, TP_SHUTDOWN_INFINITY. */
TP_API void tp_child_spec_init(tp_child_spec *c, const char *id,
                               const tp_behaviour *b, void *arg);

typedef enum tp_strategy {
    TP_ONE_FOR_ONE = 0, /**< restart the child that died */
    TP_ONE_FOR_ALL,     /**< restart all children */
    TP_REST_FOR_ONE,    /**< restart it and the children started after it */
    TP_DYNAMIC          /**< many identical children started at run time
                             (simple_one_for_one); O(1) add and remove */
} tp_strategy;

/** A supervisor's configuration. Fill with tp_sup_spec_init(). */
typedef struct tp_sup_spec {
    tp_strategy strategy; /**< which children a death restarts */
    /** Restart intensity (default 3): more restart attempts than this
     *  (failed starts and their retries count) within period_ms make the
     *  supervisor shut its children down and exit with reason shutdown;
     *  0 allows no restart at all. */
    uint32_t intensity;
    /** The intensity window, ms (default 5000): a restart at time t is in
     *  it while now - t < period_ms. */
    uint32_t period_ms;
    /** Restart backoff: 0 (default) restarts at once, as OTP. Otherwise the
     *  n-th consecutive restart of a child waits
     *  min(backoff_max_ms, backoff_min_ms * 2^(n-1)) +- 25% jitter (the
     *  child is listed as restarting meanwhile); a child that stayed up for
     *  a whole period_ms starts a new streak. Intensity counts a restart
     *  when it is decided, not when it happens. */
    uint32_t backoff_min_ms;
    /** Cap of the restart backoff delay before jitter, ms; a value below
     *  backoff_min_ms counts as backoff_min_ms. Unused while
     *  backoff_min_ms is 0. */
    uint32_t backoff_max_ms;
    /** Static children, started in this order (copied at start, with
     *  their ids, names and, for child supervisors, their specs). */
    const tp_child_spec *children;
    /** Number of entries in children (must be 0 for TP_DYNAMIC). */
    size_t nchildren;
    /** TP_DYNAMIC: the template of every child (its id is ignored). */
    tp_child_spec child_template;
    /** TP_DYNAMIC: refuse children beyond this (0 = no limit). */
    uint32_t max_children;
} tp_sup_spec;

/** Defaults for a strategy: intensity 3 in 5000 ms, no backoff. */
TP_API void tp_sup_spec_init(tp_sup_spec *s, tp_strategy strategy);

/**
 * The supervisor behaviour; its init arg is a const tp_sup_spec * (copied).
 * Use it in a child spec of type TP_SUPERVISOR to nest supervisors.
 */
TP_API extern const tp_behaviour tp_supervisor_behaviour;

/**
 * Starts a supervisor linked to the calling actor. Its children start
 * synchronously, in order, before this returns; if one fails to start the
 * ones started are shut down and the error is returned. opts may be NULL.
 * Errors: -EINVAL (bad spec), -ENOMEM, -EEXIST (name), a child's init error.
 * Thread: an actor callback.
 */
TP_API int tp_supervisor_start(tp_ctx *ctx, const tp_sup_spec *spec,
                               const tp_spawn_opts *opts, tp_pid *out);

/**
 * The runtime's root supervisor (one_for_one, intensity 10 in 10 s),
 * started on first use (and again if it ended). TP_PID_NONE once the
 * runtime stops. Thread-safe.
 */
TP_API tp_pid tp_runtime_root_supervisor(tp_runtime *rt);

/**
 * Starts a supervisor as a permanent child `id` of the root supervisor.
 * spec is copied (deeply): the caller may free it on return. Errors as
 * tp_supervisor_start(), plus -EEXIST (id taken), -ESHUTDOWN. Thread: not
 * a scheduler (it waits for the root supervisor's answer).
 */
TP_API int tp_runtime_supervisor_start(tp_runtime *rt, const char *id,
                                       const tp_sup_spec *spec, tp_pid *out);

/* ---------------------------------------------------------------------- */
/* Children at run time                                                   */

/** What a supervisor reports about one child. */
typedef struct tp_child_info {
    char id[64]; /**< static id, or "" for dynamic children */
    tp_pid pid;  /**< TP_PID_NONE when not running */
    /** Its restart type (TP_TEMPORARY for an actor that joined with
     *  tp_supervisor_attach()). */
    tp_restart restart;
    tp_child_type type;    /**< worker or supervisor, from its child spec */
    const char *behaviour; /**< static string */
    uint32_t restarts;     /**< times the supervisor restarted it */
    /** Started and not yet gone (true too while it is being shut down). */
    bool running;
    bool restarting; /**< waiting to be restarted (backoff delay, or its
                          group restart in progress) */
} tp_child_info;

/** What a supervisor reports about itself. */
typedef struct tp_sup_info {
    tp_strategy strategy;      /**< its strategy, from its spec */
    uint32_t intensity;        /**< max restarts (from its spec) ... */
    uint32_t period_ms;        /**< ... within this window, ms */
    uint32_t children;         /**< specs (static) or children (dynamic) */
    uint32_t active;           /**< running children */
    uint64_t restarts;         /**< restarts done since it started
                                    (the sum of its children's) */
    uint64_t max_restarts_hit; /**< 1 if it is exiting due to intensity */
} tp_sup_info;

/*
 * Synchronous management from threads that are not schedulers (main,
 * tests, tools). `child` names a static child by id, or a dynamic child by
 * its pid in text form ("<12.3>"; a dynamic child waiting for a backoff
 * delay has no pid and cannot be named). timeout_ms 0 = 5000. Requests
 * that change children wait while the supervisor restarts a group of them
 * and get -ESHUTDOWN once it is shutting down. Errors: -ESRCH (no such
 * supervisor), -ENOENT (no such child), -EEXIST, -EBUSY (child running:
 * delete needs it stopped; or a stop of it is already in progress),
 * -ESHUTDOWN, -ETIMEDOUT, -EINVAL, -ENOMEM.
 */

/** Adds and starts a child; spec is sent by value (nothing of the caller's
 *  is used after the call returns, even on -ETIMEDOUT). A static child
 *  whose start fails is not kept. Dynamic supervisors: spec NULL = the
 *  template with arg dyn_arg; else this spec (its own arg) for this child
 *  only; -EAGAIN beyond max_children. */
TP_API int tp_supervisor_start_child(tp_runtime *rt, tp_pid sup,
                                     const tp_child_spec *spec, void *dyn_arg,
                                     tp_pid *out, uint32_t timeout_ms);
/** Stops a child and returns once it is gone (its spec stays, as OTP
 *  terminate_child; temporary static children and dynamic children are
 *  removed). */
TP_API int tp_supervisor_terminate_child(tp_runtime *rt, tp_pid sup,
                                         const char *child,
                                         uint32_t timeout_ms);
/** Starts a stopped static child again (or stops and restarts a running
 *  one: the console's `restart`). */
TP_API int tp_supervisor_restart_child(tp_runtime *rt, tp_pid sup,
                                       const char *child, uint32_t timeout_ms);
/** Removes a stopped static child's spec (-EINVAL on a dynamic
 *  supervisor: terminate removes those). */
TP_API int tp_supervisor_delete_child(tp_runtime *rt, tp_pid sup,
                                      const char *child, uint32_t timeout_ms);
/** Lists children into out[0..cap) in start order (dynamic: in the order
 *  they joined); *total = how many there are. On success out holds
 *  min(cap, *total) entries. Large lists come in pages of 4096, each a
 *  separate snapshot. -ENOMEM also when the supervisor could not build a
 *  page (nothing is listed then). */
TP_API int tp_supervisor_which_children(tp_runtime *rt, tp_pid sup,
                                        tp_child_info *out, size_t cap,
                                        size_t *total, uint32_t timeout_ms);
TP_API int tp_supervisor_info(tp_runtime *rt, tp_pid sup, tp_sup_info *out,
                              uint32_t timeout_ms);

/*
 * The same operations from inside actors (asynchronous): send these types
 * with tp_request() to a supervisor; the answer is a TP_MSG_REPLY whose
 * payload is described below (types in the range reserved for Troupe's
 * own libraries, see TP_MSG_LIBRARY_BASE).
 */
#define TP_SUP_START_CHILD     0xfffe0101u /**< tp_sup_req -> tp_sup_result */
#define TP_SUP_TERMINATE_CHILD 0xfffe0102u /**< tp_sup_req -> tp_sup_result */
#define TP_SUP_RESTART_CHILD   0xfffe0103u /**< tp_sup_req -> tp_sup_result */
#define TP_SUP_DELETE_CHILD    0xfffe0104u /**< tp_sup_req -> tp_sup_result */
/** payload: none, or a uint32_t count of children to skip (paging) */
#define TP_SUP_WHICH_CHILDREN  0xfffe0105u /**< -> tp_sup_children */
#define TP_SUP_INFO            0xfffe0106u /**< none -> tp_sup_info */
#define TP_SUP_ATTACH          0xfffe0107u /**< plain: see tp_supervisor_attach */

/** Payload of TP_SUP_START_CHILD, TP_SUP_TERMINATE_CHILD,
 *  TP_SUP_RESTART_CHILD and TP_SUP_DELETE_CHILD. Zero it, then set child
 *  (NUL-terminated) for TERMINATE/RESTART/DELETE, or spec and dyn_arg for
 *  START_CHILD (as in tp_supervisor_start_child()). */
typedef struct tp_sup_req {
    char child[64]; /**< id, or pid text for dynamic children */
    /** START_CHILD: copied when the request is handled; must stay valid
     *  until the reply arrives. */
    const tp_child_spec *spec;
    void *dyn_arg; /**< START_CHILD on a dynamic supervisor */
} tp_sup_req;

/** Reply payload of the requests that carry a tp_sup_req. */
typedef struct tp_sup_result {
    int32_t err;  /**< 0 or negative errno */
    uint32_t pad; /**< padding, always 0 */
    tp_pid pid;   /**< START/RESTART: the child's pid */
} tp_sup_result;

/** Reply of TP_SUP_WHICH_CHILDREN (at most 4096 entries per reply). */
typedef struct tp_sup_children {
    uint32_t count; /**< entries that follow */
    uint32_t total; /**< children the supervisor has */
    /** count entries, in start order; dynamic supervisors: the children
     *  they started, in that order, then the attached ones
     *  (tp_supervisor_attach()) in no particular order. Pages of a
     *  dynamic supervisor whose children change between requests may
     *  repeat or miss one. */
    tp_child_info child[];
} tp_sup_children;

/**
 * Makes the running actor a temporary child of the dynamic supervisor
 * `sup` (how connection actors started by a listener join their
 * supervisor): links to it (if sup is dead, the caller gets an exit signal
 * with reason noproc) and tells it to count, list and shut down the caller
 * like the children it starts itself (as temporary children: never
 * restarted). An attached child costs its supervisor one entry in its
 * link table (no child record) until it is stopped by request. Beyond
 * max_children the supervisor unlinks and sends the
 * caller an exit signal (shutdown, "supervisor full"); a supervisor that is
 * not dynamic ignores the request (the link stays). Call from the actor's
 * init or handler. Returns 0, -EINVAL.
 */
TP_API int tp_supervisor_attach(tp_ctx *ctx, tp_pid sup);

/** Name of a strategy / restart type ("one_for_one", "permanent", ...). */
TP_API const char *tp_strategy_name(tp_strategy s);
TP_API const char *tp_restart_name(tp_restart r);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_SUPERVISOR_H */
