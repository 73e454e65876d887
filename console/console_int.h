/*
 * console/console_int.h - the admin console's internals.
 *
 * Pieces, from the bottom:
 *  - cbuf: a growable byte buffer with a hard bound (every output path);
 *  - em: an emitter that writes one description of a reply as aligned text
 *    (key/value lines, tables) or as JSON, so each command is written once;
 *  - linebuf: assembles input lines with a maximum length;
 *  - exec: runs one command line inside a host actor (a line session or an
 *    HTTP connection), synchronously or through async steps (requests,
 *    chunked scans), and hands the rendered reply back to its host;
 *  - session / http: the host actors, fed bytes through a transport seam
 *    and producing bytes through it.
 */
#ifndef TP_CONSOLE_INT_H
#define TP_CONSOLE_INT_H

#include "common/common.h"
#include "sha256.h"
#include "supervisor/walk.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <troupe/console.h>
#include <troupe/net.h>
#include <troupe/request.h>
#include <troupe/runtime.h>
#include <troupe/supervisor.h>
#include <troupe/timer.h>

#define TP__XSTR(x) #x
#define TP__STR(x)  TP__XSTR(x)
#define TP__VERSION_STR                                                        \
    TP__STR(TP_VERSION_MAJOR)                                                  \
    "." TP__STR(TP_VERSION_MINOR) "." TP__STR(TP_VERSION_PATCH)

/* Message types of the console's own actors (library range). */
#define TP__CON_IN      0xfffe0401u /* test transport: bytes for a session */
#define TP__CON_OUT     0xfffe0402u /* test transport: bytes from a session */
#define TP__CON_CLOSE   0xfffe0403u /* test transport: either side closes */
#define TP__CON_STEP    0xfffe0404u /* exec: continue a chunked scan */
#define TP__CON_TIMEOUT 0xfffe0405u /* exec: an async command took too long */
#define TP__CON_TICK    0xfffe0406u /* session: idle check / trace second */
#define TP__CON_TRACE   0xfffe0407u /* tracer -> session: formatted line */
#define TP__CON_SAMPLE  0xfffe0408u /* sampler: take a sample */
#define TP__CON_HISTORY 0xfffe0409u /* request to the sampler: history */
#define TP__CON_EVICT   0xfffe040au /* http: a newcomer took your slot */
#define TP__CON_AUTHEND 0xfffe040bu /* session: the auth deadline passed */

/* ---------------------------------------------------------------------- */
/* Bounded buffer                                                          */

struct tp__cbuf {
    char *p;
    size_t len, cap;
    size_t max;    /* hard bound on len */
    bool overflow; /* something did not fit (the rest is dropped) */
};

void tp__cbuf_init(struct tp__cbuf *b, size_t max);
void tp__cbuf_free(struct tp__cbuf *b);
void tp__cbuf_reset(struct tp__cbuf *b);
/* Appends; on overflow or ENOMEM appends nothing and sets overflow.
 * Returns 0 or -ENOBUFS / -ENOMEM. */
int tp__cbuf_put(struct tp__cbuf *b, const void *data, size_t len);
int tp__cbuf_puts(struct tp__cbuf *b, const char *s);
int tp__cbuf_printf(struct tp__cbuf *b, const char *fmt, ...) TP_PRINTF(2, 3);
int tp__cbuf_pad(struct tp__cbuf *b, char c, size_t n);
/* Drops the first n bytes. */
void tp__cbuf_consume(struct tp__cbuf *b, size_t n);
/* Appends s as a JSON string (quoted, escaped, invalid UTF-8 replaced). */
int tp__cbuf_json_str(struct tp__cbuf *b, const char *s, size_t len);
/* Appends s with control bytes and non-ASCII shown as \xNN (one line). */
int tp__cbuf_text_str(struct tp__cbuf *b, const char *s, size_t len);

/* ---------------------------------------------------------------------- */
/* Emitter: one reply, as text or JSON                                     */

#define TP__EM_DEPTH 16
#define TP__EM_COLS  16

struct tp__em_table; /* text-mode rows being collected */

struct tp__em {
    struct tp__cbuf *b;
    bool json;
    int depth;
    bool first[TP__EM_DEPTH];
    bool is_arr[TP__EM_DEPTH];
    struct tp__em_table *table; /* text mode: array of objects */
    int table_depth;
    int list_depth; /* text mode: depth of a one-line list, or 0 */
};

void tp__em_init(struct tp__em *e, struct tp__cbuf *b, bool json);
void tp__em_obj_begin(struct tp__em *e, const char *key);
void tp__em_obj_end(struct tp__em *e);
/* An array of objects: a table in text mode (rows aligned at the end). */
void tp__em_arr_begin(struct tp__em *e, const char *key);
void tp__em_arr_end(struct tp__em *e);
void tp__em_u64(struct tp__em *e, const char *key, uint64_t v);
void tp__em_i64(struct tp__em *e, const char *key, int64_t v);
void tp__em_f64(struct tp__em *e, const char *key, double v, int prec);
void tp__em_str(struct tp__em *e, const char *key, const char *s);
void tp__em_bool(struct tp__em *e, const char *key, bool v);
void tp__em_pid(struct tp__em *e, const char *key, tp_pid pid);
void tp__em_none(struct tp__em *e, const char *key); /* null, text "-" */
void tp__em_bytes(struct tp__em *e, const char *key, uint64_t v); /* 1.2M */
void tp__em_dur(struct tp__em *e, const char *key, uint64_t ns);
/* Text mode only: a free line (e.g. a note under a table). */
void tp__em_note(struct tp__em *e, const char *fmt, ...) TP_PRINTF(2, 3);
/* Releases a half-built table after an error. */
void tp__em_discard(struct tp__em *e);

/* ---------------------------------------------------------------------- */
/* Input lines                                                             */

struct tp__linebuf {
    char *buf;
    size_t len, max;
    bool discarding; /* inside a line that was too long */
};

enum tp__line_ev { TP__LINE_OK = 0, TP__LINE_TOO_LONG };

int tp__linebuf_init(struct tp__linebuf *lb, size_t max);
void tp__linebuf_free(struct tp__linebuf *lb);
/*
 * Feeds bytes; for each complete line calls fn(user, ev, line, len) with
 * the line (NUL-terminated, without CR LF) or TP__LINE_TOO_LONG (once per
 * long line, when its end arrives or when it passes max). fn returns false
 * to stop consuming (the host is busy). Returns the bytes consumed.
 */
size_t tp__linebuf_feed(struct tp__linebuf *lb, const char *data, size_t len,
                        bool (*fn)(void *user, enum tp__line_ev ev, char *line,
                                   size_t n),
                        void *user);

#define TP__ARGV_MAX 16

/* Splits a line into words (spaces/tabs; "double quotes" group, with \"
 * and \\). Strips a leading "json" word and any "--json" word into
 * *json. Returns argc, or -EINVAL (bad characters, unterminated quote) or
 * -E2BIG (too many words). Modifies line. rest[i] is where word i starts
 * in the original line (for "the rest of the line" arguments). */
int tp__line_split(char *line, char **argv, int max, bool *json);
/* True if every byte is printable ASCII, tab or UTF-8 (no NUL, no control
 * bytes): what a person could type. */
bool tp__line_valid(const char *s, size_t n);

/* ---------------------------------------------------------------------- */
/* Auth                                                                    */

/* Constant time in the length of the secret: compares a and b (lengths may
 * differ; the time depends only on the secret's length). */
bool tp__token_equal(const char *secret, const char *given, size_t given_len);

/* ---------------------------------------------------------------------- */
/* Guards: failed-auth limits, the HTTP pool (console/guard.c)            */

/* A client address for the limits: IPv4, or an IPv6 /64; family 0 =
 * none (in-process hosts: never limited, never evicted). */
struct tp__addr_key {
    uint16_t family;
    uint8_t b[8];
};

void tp__addr_key_of(const tp_net_addr *a, struct tp__addr_key *k);

#define TP__AUTH_ADDRS 256 /* per-address buckets (most recovered reused) */

struct tp__auth_bucket {
    struct tp__addr_key k;
    uint64_t tat; /* GCRA theoretical arrival time, ns; 0 = unused */
};

struct tp__hslot {
    tp_pid pid;
    struct tp__addr_key k;
    uint64_t since; /* waiting for a request since (ns); 0 = answering */
    uint32_t gen;
    bool used, reserve;
};

/* A host's claim on an HTTP slot: valid while the slot's gen matches. */
struct tp__hticket {
    int idx; /* -1 = none */
    uint32_t gen;
    bool reserve;
};

struct tp__guard {
    pthread_mutex_t auth_lock; /* bucket[], global_tat */
    struct tp__auth_bucket bucket[TP__AUTH_ADDRS];
    uint64_t global_tat;
    pthread_mutex_t pool_lock; /* slot[], gen */
    struct tp__hslot *slot;    /* max_http normal, then the reserve */
    unsigned nslots;
    uint32_t gen;
};

struct tp_console;
int tp__guard_init(struct tp_console *c);
void tp__guard_free(struct tp_console *c);
/* May k try to authenticate now? False (counted as throttled) while its
 * bucket or the global one is empty: refuse without checking the token.*/
bool tp__auth_allowed(struct tp_console *c, const struct tp__addr_key *k);
/* A failed authentication from k (counted in auth_failures). */
void tp__auth_failed(struct tp_console *c, const struct tp__addr_key *k);
/* Admits an HTTP connection: 0 with *t set (a normal slot, or one in the
 * waiting room: t->reserve), and *evicted = the pid whose slot it took, to
 * be told with TP__CON_EVICT, or TP_PID_NONE; -EUSERS when it must be
 * refused (in-process clients past max_http, or a full room answering). */
int tp__hpool_enter(struct tp_console *c, const struct tp__addr_key *k,
                    tp_pid self, struct tp__hticket *t, tp_pid *evicted);
/* A whole request arrived on a waiting-room ticket: moves it to a normal
 * slot (a free one, or one taken from a connection that waited long
 * enough: *evicted, to be told). False if none could be had. */
bool tp__hpool_upgrade(struct tp_console *c, struct tp__hticket *t, tp_pid self,
                       tp_pid *evicted);
/* Whether t still holds its slot (false once a newcomer took it). */
bool tp__hpool_owns(struct tp_console *c, const struct tp__hticket *t);
/* The connection waits for a request (true) or answers one (false). */
void tp__hpool_waiting(struct tp_console *c, const struct tp__hticket *t,
                       bool waiting);
void tp__hpool_leave(struct tp_console *c, struct tp__hticket *t);

/* Who is at the other end of a host's connection (console/listen.c). */
struct tp__peer {
    tp_net_addr addr;  /* family 0: in-process */
    tp_net_addr local; /* our end, as the client dialled it */
    bool owner;        /* Unix: this process's uid, or root */
};

/* ---------------------------------------------------------------------- */
/* The challenge-response login (console/login.c)                         */

struct tp__login {
    char cnonce[TP__NONCE_HEX + 1], snonce[TP__NONCE_HEX + 1];
    char addr[TP_NET_ADDR_TEXT]; /* the server's, as the client dialled */
    bool challenged;
};

/* An address as both ends write it in the proofs: tp_net_addr_format(),
 * IPv4-mapped IPv6 as IPv4. */
void tp__addr_canon(const tp_net_addr *a, char *out, size_t cap);
/* "hello CNONCE": writes "challenge SNONCE SPROOF\n" into out. -EINVAL (a
 * bad nonce), -EALREADY (one hello per connection), -EIO. */
int tp__login_hello(struct tp__login *l, const char *token,
                    const tp_net_addr *local, const char *cnonce, char *out,
                    size_t cap);
/* "login CPROOF": whether the proof is right (constant time). */
bool tp__login_check(const struct tp__login *l, const char *token,
                     const char *proof);

/* ---------------------------------------------------------------------- */
/* The Unix socket file (console/unixsock.c)                               */

struct tp__unix_file {
    char path[108]; /* where clients connect */
    char dir[108];  /* the private directory while starting, or "" */
    char tmp[108];  /* the socket's path inside it (what is bound) */
    int dirfd;
    dev_t dev;
    ino_t ino;
    bool linked; /* path is our socket */
};

/* Checks what is at path (a live console or a file that is not a socket:
 * -EADDRINUSE; a dead server's socket is removed) and makes the private
 * 0700 directory; u->tmp is then the path to listen on. */
int tp__unix_prepare(struct tp__unix_file *u, const char *path);
/* After the listen on u->tmp: sets the mode there, links the socket to
 * u->path (never replacing anything), removes the private directory. */
int tp__unix_publish(struct tp__unix_file *u, uint32_t mode);
/* Removes the private directory (after a failure) and, when linked, the
 * file at u->path if it is still our socket. Idempotent. */
void tp__unix_remove(struct tp__unix_file *u);
/* SO_PEERCRED of a connection, read on the host actor's thread (console
 * hosts are pinned to their connection's loop). 0 or a negative errno. */
int tp__conn_peer_cred(tp_runtime *rt, tp_conn conn, uid_t *uid, gid_t *gid);

/* ---------------------------------------------------------------------- */
/* The console                                                             */

#define TP__HIST_LEN  120 /* samples kept (one per second) */
#define TP__SCHED_MAX 256

/* Latest rates, written by the sampler once a second, read by any
 * session (relaxed: each value stands alone). */
struct tp__rates {
    _Atomic uint64_t msgs_per_s;
    _Atomic uint64_t dead_per_s;
    _Atomic uint64_t spawn_per_s;
    _Atomic uint32_t nsched;
    _Atomic uint64_t *sched_rate; /* msgs/s per scheduler */
    _Atomic uint32_t *sched_util; /* busy parts per million, last second */
};

/* A drain announced on /health (console/health.c): since_ns is 0 while
 * serving, else when the drain started; the listeners close delay_ms
 * later. Relaxed atomics: each value stands alone. */
struct tp__drain {
    _Atomic uint64_t since_ns;
    _Atomic uint32_t delay_ms;
};

/* Starts the two-phase drain (ctx: the calling actor, or NULL from a
 * thread outside the runtime). Returns 0, -EALREADY, -EINVAL. */
int tp__console_drain(tp_ctx *ctx, struct tp_console *c, uint32_t delay_ms,
                      uint32_t deadline_ms);
/* The answer to GET /health: returns the HTTP status (200 serving, 503
 * draining) and writes a one-line body into body[0..cap). */
int tp__console_health(struct tp_console *c, char *body, size_t cap,
                       size_t *len);

/* What outlives a console until tp_runtime_destroy(): host actors hold a
 * pointer to it, so one that starts while (or after) the console stops
 * finds con == NULL instead of freed memory, and tp_console_stop() waits
 * for the count of live hosts to reach zero before freeing the console.*/
struct tp__con_life {
    struct tp__con_life *next;
    _Atomic(struct tp_console *) con;
    _Atomic int hosts;
    struct tp__host_arg {
        struct tp__con_life *life;
        int kind;
    } arg[3]; /* console/listen.c: one per listener */
};

/* A host actor starts (returns the console, or NULL if it is stopping:
 * the host must then do nothing) and ends (the last thing it does). */
struct tp_console *tp__console_host_enter(struct tp__con_life *l);
void tp__console_host_leave(struct tp__con_life *l);

struct tp_console {
    tp_runtime *rt;
    struct tp__con_life *life;
    tp_console_opts opts; /* strings point into the copies below */
    char *token;          /* NULL = no token */
    char *unix_path, *host;
    uint32_t *unix_uids; /* copy of opts.unix_uids */
    uid_t euid;          /* the owner */
    _Atomic int tcp_port, http_port;
    _Atomic unsigned sessions, preauth, http_conns;
    _Atomic uint64_t sessions_total, auth_failures, auth_throttled, rejected;
    _Atomic uint64_t peers_refused, evicted;
    struct tp__rates rates;
    struct tp__guard guard;
    /* The sampler: restarted by tp__sampler_ensure() when it is gone. */
    _Atomic uint64_t sampler;
    void *net;              /* console/listen.c: listeners */
    struct tp__drain drain; /* console/health.c */
};

/* Creates the console without listeners (tests use the local transport),
 * and frees it. */
int tp__console_create(tp_runtime *rt, const tp_console_opts *opts,
                       tp_console **out);
void tp__console_destroy(tp_console *c);
bool tp__console_is_loopback(const char *host);
/* Opens / closes the listeners the options ask for (console/listen.c). */
int tp__console_listen(tp_console *c);
void tp__console_unlisten(tp_console *c);

/* ---------------------------------------------------------------------- */
/* Command execution                                                       */

struct tp__exec;

/* Called when a command's reply is complete: x->out holds it (text body,
 * or a JSON document), status is 0 or a negative errno (x->err then holds
 * a one-line message). */
typedef void (*tp__exec_done_fn)(tp_ctx *ctx, struct tp__exec *x, int status);

/* What a host offers commands that only some hosts support. */
enum tp__exec_caps {
    TP__CAP_TRACE = 1u, /* a line session: live streams */
    TP__CAP_ADMIN = 2u  /* may run actions (kill, restart, ...) */
};

struct tp__op; /* an async command in flight */

struct tp__exec {
    struct tp_console *con;
    tp__exec_done_fn done;
    void *host;
    unsigned caps;
    bool json;
    bool busy;
    bool raw;     /* HTTP: no text framing; errors as bare lines */
    uint64_t seq; /* current op's number (steps, timeouts) */
    struct tp__cbuf out;
    char err[256];
    struct tp__op *op;
    /* Hosts with TP__CAP_TRACE: writes a streamed line now; returns 0, or
     * -ENOBUFS when the client is not keeping up (the line is dropped). */
    int (*stream)(tp_ctx *ctx, struct tp__exec *x, const void *data,
                  size_t len);
};

struct tp__op {
    /* Handles a message; returns true if it was the op's. */
    bool (*msg)(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m);
    void (*free)(tp_ctx *ctx, struct tp__exec *x);
    tp_timer timer;
};

void tp__exec_init(struct tp__exec *x, struct tp_console *con, void *host,
                   unsigned caps, tp__exec_done_fn done);
void tp__exec_free(tp_ctx *ctx, struct tp__exec *x);
/* Runs a command line (modified). The reply arrives through done(), maybe
 * before this returns. Returns 0, or -EBUSY if a command is in flight. */
int tp__exec_line(tp_ctx *ctx, struct tp__exec *x, char *line);
/* Runs a command given as words (HTTP). */
int tp__exec_argv(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv,
                  bool json);
/* Offers a message to the command in flight; true if it consumed it. */
bool tp__exec_handle(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m);

/* Used by the command files. */
int tp__exec_fail(struct tp__exec *x, int err, const char *fmt, ...)
    TP_PRINTF(3, 4);
void tp__exec_finish(tp_ctx *ctx, struct tp__exec *x, int status);
/* Starts an async op (x->op = op); arms a timeout of ms (0 = none). */
int tp__exec_begin(tp_ctx *ctx, struct tp__exec *x, struct tp__op *op,
                   uint32_t ms);
/* Resolves "<1.2>", "1.2", a number or a registered name. */
int tp__exec_pid(tp_ctx *ctx, const char *text, tp_pid *out);
/* Same, failing the command with a clear message. */
int tp__exec_arg_pid(tp_ctx *ctx, struct tp__exec *x, const char *text,
                     tp_pid *out);
/* Sends the op its next TP__CON_STEP (one chunk per turn). */
int tp__exec_step(tp_ctx *ctx, struct tp__exec *x);

/* A scan of all actors in chunks, one per turn (console/cmd_ps.c). */
#define TP__SCAN_CHUNK      8192u
#define TP__SCAN_TIMEOUT_MS 60000u

struct tp__scan {
    struct tp__op op; /* op.free must be set by the user */
    uint32_t cursor, chunks;
    struct tp__exec *x;
    bool (*visit)(void *scan, const tp_actor_info *a);
    void (*done)(tp_ctx *ctx, struct tp__exec *x); /* must finish x */
};

/* Starts the scan as x's op; returns 1 (started) or a negative errno. */
int tp__scan_begin(tp_ctx *ctx, struct tp__exec *x, struct tp__scan *sc);
/* Parses a decimal in [min, max]. Returns 0 or -EINVAL. */
int tp__parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

/* Ends a running trace (the client sent a line); false if none runs. */
bool tp__trace_stop(tp_ctx *ctx, struct tp__exec *x);
bool tp__trace_active(const struct tp__exec *x);

/* True if a behaviour name is the supervisor's (console/cmd_sup.c). */
bool tp__is_supervisor(const char *behaviour);

/* Commands (console/cmd_*.c): each returns 0 when it started (the reply
 * comes through done) or a negative errno with x->err set. */
typedef int (*tp__cmd_fn)(tp_ctx *ctx, struct tp__exec *x, int argc,
                          char **argv);

struct tp__cmd_def {
    const char *name;
    const char *usage;
    const char *help;
    int min_args, max_args; /* words after the name; max -1 = any */
    unsigned needs;         /* tp__exec_caps */
    tp__cmd_fn fn;
};

const struct tp__cmd_def *tp__cmd_find(const char *name);
extern const struct tp__cmd_def tp__cmds[];

int tp__cmd_help(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_stats(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_sched(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_loglevel(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_kill(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_ps(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_info(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_tree(tp_ctx *, struct tp__exec *, int, char **);
/* A node of a supervision tree as `tree` renders it (cmd_sup.c): each
 * supervisor's children are one contiguous block nodes[first, first + n)
 * after it, total = how many it has; ref/asked belong to the local walk. */
/* Renders nodes[0] and its descendants into x->out (text or JSON). */
void tp__tree_render(struct tp__exec *x, const struct tp__tree_node *nodes);
/* `tree @NODE` (cmd_cluster.c): starts asking NODE's service actor and
 * returns as a command does; *handled = false when NODE is this node. */
int tp__cmd_tree_node(tp_ctx *ctx, struct tp__exec *x, const char *arg,
                      bool *handled);
int tp__cmd_restart(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_stop(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_trace(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_metrics(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_history(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_conns(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_listeners(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_nodes(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_names(tp_ctx *, struct tp__exec *, int, char **);
int tp__cmd_tls(tp_ctx *, struct tp__exec *, int, char **);
/* cmd_cluster.c: the cluster's families (none when in no cluster). */
void tp__cluster_metrics(struct tp__cbuf *b, tp_runtime *rt);
int tp__cmd_drain(tp_ctx *, struct tp__exec *, int, char **);

/* What the network layer reports (console/cmd_net.c). */
struct tp__net_counts {
    uint64_t connections, listeners, accepted, rejected;
};
void tp__console_net_counts(tp_runtime *rt, struct tp__net_counts *out);

/* ---------------------------------------------------------------------- */
/* Prometheus text format                                                  */

/* Writes "# HELP" and "# TYPE" for a family. */
void tp__prom_family(struct tp__cbuf *b, const char *name, const char *type,
                     const char *help);
/* Writes one sample: name{labels} value. labels may be NULL or "k=\"v\""
 * pairs already escaped. */
void tp__prom_sample(struct tp__cbuf *b, const char *name, const char *labels,
                     double v);
/* A family with one unlabelled sample. */
void tp__prom_one(struct tp__cbuf *b, const char *name, const char *type,
                  const char *help, double v);
/* Escapes a label value into out (always NUL-terminated). */
void tp__prom_label_escape(char *out, size_t cap, const char *v);

/* ---------------------------------------------------------------------- */
/* Hosts                                                                   */

/* How a session reaches its client (the transport seam). */
struct tp__transport {
    /* Queues bytes for the client; returns 0 or a negative errno. */
    int (*write)(tp_ctx *ctx, void *t, const void *data, size_t len);
    /* Bytes queued and not yet written to the client. */
    size_t (*pending)(void *t);
    /* Closes the connection (the session actor then ends). */
    void (*close)(tp_ctx *ctx, void *t);
};

enum tp__session_kind {
    TP__SESS_UNIX = 0, /* trusted by file permissions */
    TP__SESS_TCP,      /* must authenticate */
    TP__SESS_LOCAL     /* in-process (tests, embedding) */
};

/* The line-protocol session: embedded in the state of a host actor. */
struct tp__session;

size_t tp__session_size(void);
/* peer: the client (NULL in-process). Returns 0, or -EUSERS when no slot
 * is free for it (a line saying so has been written; the host should
 * close). */
int tp__session_open(tp_ctx *ctx, struct tp__session *s, struct tp_console *c,
                     enum tp__session_kind kind, const struct tp__transport *tr,
                     void *t, const struct tp__peer *peer);
/* Bytes from the client. */
void tp__session_input(tp_ctx *ctx, struct tp__session *s, const void *data,
                       size_t len);
/* Any other message: returns true if the session consumed it. */
bool tp__session_handle(tp_ctx *ctx, struct tp__session *s, const tp_msg *m);
void tp__session_close(tp_ctx *ctx, struct tp__session *s);

/* A session over messages (the in-process transport): bytes arrive as
 * TP__CON_IN messages; output goes to `sink` as TP__CON_OUT messages; a
 * TP__CON_CLOSE in either direction ends it. Used by the tests. */
int tp__console_local_session(tp_console *c, tp_pid sink, tp_pid *out);

/* The HTTP request handler, embedded in a host actor's state. */
struct tp__http;
size_t tp__http_size(void);
/* peer: the client (NULL in-process). -EUSERS: refused (503 written). */
int tp__http_open(tp_ctx *ctx, struct tp__http *h, struct tp_console *c,
                  const struct tp__transport *tr, void *t,
                  const struct tp__peer *peer);
void tp__http_input(tp_ctx *ctx, struct tp__http *h, const void *data,
                    size_t len);
bool tp__http_handle(tp_ctx *ctx, struct tp__http *h, const tp_msg *m);
void tp__http_close(tp_ctx *ctx, struct tp__http *h);
int tp__console_local_http(tp_console *c, tp_pid sink, tp_pid *out);

/* The embedded dashboard (generated from console/dashboard.html). */
extern const char tp__dashboard_html[];
extern const size_t tp__dashboard_len;

/* Sampler actor: rates and per-scheduler history. Its mailbox is bounded
 * (TP__SAMPLER_MAILBOX, reject: a history request past it fails at once).*/
#define TP__SAMPLER_MAILBOX 64u
int tp__sampler_start(struct tp_console *c);
/* Starts a new sampler if the console's has gone (killed by someone):
 * called before every command, so `history` and the rates come back. */
void tp__sampler_ensure(tp_ctx *ctx, struct tp_console *c);
/* The history reply payload. */
struct tp__hist_reply {
    uint32_t nsched, n; /* schedulers, samples (oldest first) */
    uint64_t period_ms;
    /* followed by n * (1 + nsched) doubles: total msgs/s, then per sched */
};

#endif /* TP_CONSOLE_INT_H */
