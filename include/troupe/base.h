/*
 * troupe/base.h - basic types shared by the whole public API: pids, error
 * codes, the replaceable allocator and logging.
 *
 * Conventions used by every Troupe header:
 *  - Fallible calls return 0 (or a non-negative count) on success and a
 *    negative errno value on failure; tp_strerror() turns one into text.
 *  - Predicates return bool.
 *  - Each function states who owns memory after the call (also on failure)
 *    and from which threads it may be called.
 */
#ifndef TROUPE_BASE_H
#define TROUPE_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a symbol exported from the shared library. */
#if defined(__GNUC__)
#define TP_API __attribute__((visibility("default")))
#else
#define TP_API
#endif

/** printf-style format checking for variadic functions. */
#if defined(__GNUC__)
#define TP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TP_PRINTF(fmt, args)
#endif

#define TP_VERSION_MAJOR 0
#define TP_VERSION_MINOR 1
#define TP_VERSION_PATCH 0

/**
 * A process identifier: 64 bits. Slot index (bits 0..31), generation (bits
 * 32..52), node (bits 53..62; 0 = this node), bit 63 always 0 in a valid
 * pid. Pids are plain values; holding one never keeps an actor alive, and
 * using the pid of a dead actor is always safe (it is detected by the
 * generation and the call fails with -ESRCH or the message becomes a dead
 * letter). Every pid of an actor of this runtime has node 0; a pid with a
 * node id names an actor of another cluster node (troupe/cluster.h): node
 * ids are unique in a cluster, so a remote pid means the same actor on
 * every node of it.
 */
typedef uint64_t tp_pid;

/** The pid that names no actor ("from outside the runtime"). */
#define TP_PID_NONE ((tp_pid)0)

#define TP_PID_GEN_BITS   21u   /**< generation bits (wraps to 1) */
#define TP_PID_NODE_SHIFT 53u   /**< first bit of the node id */
#define TP_PID_NODE_MAX   1023u /**< largest node id (10 bits) */
#define TP_PID_GEN_MAX    ((1u << TP_PID_GEN_BITS) - 1u)

/** Slot part of a pid (for display). */
static inline uint32_t
tp_pid_index(tp_pid pid)
{
    return (uint32_t)(pid & 0xffffffffu);
}

/** Generation part of a pid (for display). */
static inline uint32_t
tp_pid_gen(tp_pid pid)
{
    return (uint32_t)(pid >> 32) & TP_PID_GEN_MAX;
}

/** Node part of a pid: 0 for this node's actors, else a cluster node id. */
static inline uint32_t
tp_pid_node(tp_pid pid)
{
    return (uint32_t)(pid >> TP_PID_NODE_SHIFT) & TP_PID_NODE_MAX;
}

/** True when pid names an actor of another cluster node. */
static inline bool
tp_pid_is_remote(tp_pid pid)
{
    return tp_pid_node(pid) != 0;
}

/** pid with its node id replaced by node (0..TP_PID_NODE_MAX). */
static inline tp_pid
tp_pid_with_node(tp_pid pid, uint32_t node)
{
    return (pid & ~((tp_pid)TP_PID_NODE_MAX << TP_PID_NODE_SHIFT)) |
           ((tp_pid)(node & TP_PID_NODE_MAX) << TP_PID_NODE_SHIFT);
}

/**
 * Formats a pid as "<index.gen>" (this node) or "<node.index.gen>" (a
 * remote pid) into buf (at least 32 bytes). Returns buf. Thread-safe.
 */
TP_API char *tp_pid_format(tp_pid pid, char *buf, size_t size);

/**
 * Parses "<index.gen>", "<node.index.gen>" (brackets optional) or the
 * decimal 64-bit value. Returns 0 or -EINVAL (also for a generation over
 * TP_PID_GEN_MAX or a node over TP_PID_NODE_MAX). Thread-safe.
 */
TP_API int tp_pid_parse(const char *text, tp_pid *out);

/**
 * Text for a negative errno value returned by a Troupe call (also accepts
 * positive values). Never returns NULL. Thread-safe.
 */
TP_API const char *tp_strerror(int err);

/* ---------------------------------------------------------------------- */
/* Replaceable allocator                                                  */

typedef void *(*tp_malloc_fn)(size_t size);
typedef void *(*tp_realloc_fn)(void *ptr, size_t size);
typedef void *(*tp_calloc_fn)(size_t count, size_t size);
typedef void (*tp_free_fn)(void *ptr);

/**
 * Replaces the allocator used for every allocation Troupe makes (actors,
 * messages, queues, sockets, console) and for libuv's own allocations.
 * Like uv_replace_allocator(): call it before any runtime exists and never
 * while one runs. All four functions are required.
 * Returns 0, -EINVAL (a NULL function) or -EBUSY (a runtime exists).
 * Not thread-safe.
 */
TP_API int tp_replace_allocator(tp_malloc_fn m, tp_realloc_fn r, tp_calloc_fn c,
                                tp_free_fn f);

/* ---------------------------------------------------------------------- */
/* Logging                                                                */

typedef enum tp_log_level {
    TP_LOG_ERROR = 0,
    TP_LOG_WARN = 1,
    TP_LOG_INFO = 2,
    TP_LOG_DEBUG = 3
} tp_log_level;

/**
 * Receives each log line (without trailing newline). Called from any
 * thread, possibly concurrently; must not call back into Troupe.
 */
typedef void (*tp_log_sink)(void *user, tp_log_level level, const char *line);

/** Sets the most verbose level that is emitted. Thread-safe. */
TP_API void tp_log_set_level(tp_log_level level);

/** Current level. Thread-safe. */
TP_API tp_log_level tp_log_get_level(void);

/** Name of a level ("error", "warn", "info", "debug"). */
TP_API const char *tp_log_level_name(tp_log_level level);

/** Parses a level name. Returns 0 or -EINVAL. */
TP_API int tp_log_level_parse(const char *name, tp_log_level *out);

/**
 * Replaces the sink (NULL restores the default: stderr). Set it before
 * runtimes start; the old sink may still be called by lines in flight.
 */
TP_API void tp_log_set_sink(tp_log_sink sink, void *user);

/** Emits a log line at the given level. Thread-safe. */
TP_API void tp_log(tp_log_level level, const char *fmt, ...) TP_PRINTF(2, 3);

/** Monotonic clock in nanoseconds. Thread-safe. */
TP_API uint64_t tp_now_ns(void);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_BASE_H */
