/*
 * console/session.c - a line-protocol session: the state a host actor (a
 * network connection actor, or the in-process transport below) embeds to
 * speak the console protocol.
 *
 * Bytes in -> lines (bounded by max_line) -> commands (one at a time) ->
 * replies out through the transport. Input that arrives while a command
 * runs waits in a bounded buffer; a line during a trace stops the trace.
 *
 * Slots: a TCP connection starts in the small pre-authentication pool
 * (max_preauth) with auth_timeout_ms to authenticate ("auth TOKEN", or
 * hello/login, console/login.c); only then does it take a session slot.
 * Failures count against its address (console/guard.c) and the third
 * closes it. Unix and in-process sessions take a slot at once; the
 * owner's Unix sessions may use TP_CONSOLE_OWNER_RESERVE more than
 * max_sessions, so no one else can lock the owner out.
 *
 * A tick every second closes sessions idle for idle_timeout_ms. Output
 * never grows without bound: a reply that would push the client's unread
 * output over max_output closes the session instead, and trace lines are
 * dropped (and counted) while the client lags.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PENDING_MAX (64u * 1024u) /* input queued while a command runs */
#define AUTH_TRIES  3
#define TICK_MS     1000u

struct tp__session {
    struct tp_console *con;
    enum tp__session_kind kind;
    const struct tp__transport *tr;
    void *t;
    struct tp__linebuf lb;
    struct tp__exec x;
    struct tp__cbuf pending; /* input held while busy */
    uint64_t last_active_ns;
    tp_timer tick, auth_timer;
    struct tp__peer peer;
    struct tp__addr_key key;
    struct tp__login login;
    int auth_fails;
    bool open, authed, closing;
    bool counted, preauth; /* holds a session slot / a pre-auth slot */
};

size_t
tp__session_size(void)
{
    return sizeof(struct tp__session);
}

static void
out(tp_ctx *ctx, struct tp__session *s, const char *data, size_t len)
{
    if (!s->closing)
        s->tr->write(ctx, s->t, data, len);
}

static void
out_str(tp_ctx *ctx, struct tp__session *s, const char *str)
{
    out(ctx, s, str, strlen(str));
}

static void
shut(tp_ctx *ctx, struct tp__session *s, const char *why)
{
    if (s->closing)
        return;
    if (why != NULL)
        out_str(ctx, s, why);
    s->closing = true;
    s->tr->close(ctx, s->t);
}

/* ---- command replies -----------------------------------------------------*/

static void
reply_done(tp_ctx *ctx, struct tp__exec *x, int status)
{
    struct tp__session *s = x->host;
    size_t queued = s->tr->pending(s->t);

    if (queued + x->out.len > s->con->opts.max_output) {
        tp_log(TP_LOG_INFO, "console: closing a session that does not read "
                            "its output");
        shut(ctx, s, NULL);
        return;
    }
    out(ctx, s, x->out.p, x->out.len);
    tp__cbuf_reset(&x->out);
}

static int
stream(tp_ctx *ctx, struct tp__exec *x, const void *data, size_t len)
{
    struct tp__session *s = x->host;

    /* Half the bound for streams, so a reply still fits after a trace. */
    if (s->closing || s->tr->pending(s->t) + len > s->con->opts.max_output / 2)
        return -ENOBUFS;
    out(ctx, s, data, len);
    s->last_active_ns = tp_now_ns();
    return 0;
}

/* ---- lines ---------------------------------------------------------------*/

static bool take_slot(tp_ctx *ctx, struct tp__session *s);

/* The client proved it knows the token: leave the pre-auth pool for a
 * session slot. */
static void
auth_ok(tp_ctx *ctx, struct tp__session *s)
{
    struct tp_console *c = s->con;

    atomic_fetch_sub_explicit(&c->preauth, 1, memory_order_relaxed);
    s->preauth = false;
    tp_cancel_timer(ctx, s->auth_timer);
    s->auth_timer = TP_TIMER_NONE;
    if (!take_slot(ctx, s)) {
        shut(ctx, s, NULL);
        return;
    }
    s->authed = true;
    s->x.caps |= TP__CAP_ADMIN;
    out_str(ctx, s, "ok\n");
}

static void
auth_failed(tp_ctx *ctx, struct tp__session *s)
{
    tp__auth_failed(s->con, &s->key);
    if (++s->auth_fails >= AUTH_TRIES)
        shut(ctx, s, "error: authentication failed; closing\n");
    else
        out_str(ctx, s, "error: authentication failed\n");
}

/* Whether this client may try now (its address is not over the failure
 * limit); if not, it is told so and closed. */
static bool
may_try(tp_ctx *ctx, struct tp__session *s)
{
    if (tp__auth_allowed(s->con, &s->key))
        return true;
    shut(ctx, s,
         "error: too many failed authentications from your address; try "
         "later\n");
    return false;
}

/* auth TOKEN */
static void
auth_line(tp_ctx *ctx, struct tp__session *s, int argc, char **argv)
{
    const char *tok = s->con->token;

    if (!may_try(ctx, s))
        return;
    if (argc == 2 && tok != NULL &&
        tp__token_equal(tok, argv[1], strlen(argv[1])))
        auth_ok(ctx, s);
    else
        auth_failed(ctx, s);
}

/* hello CNONCE: the server proves it knows the token. */
static void
hello_line(tp_ctx *ctx, struct tp__session *s, int argc, char **argv)
{
    char reply[160];
    int err = argc == 2 && s->con->token != NULL
                  ? tp__login_hello(&s->login, s->con->token, &s->peer.local,
                                    argv[1], reply, sizeof(reply))
                  : -EINVAL;

    if (err == 0)
        out_str(ctx, s, reply);
    else
        out_str(ctx, s,
                err == -EALREADY
                    ? "error: one hello per connection\n"
                    : "error: usage: hello NONCE (32 hex digits)\n");
}

/* login CPROOF: the client proves it knows the token. */
static void
login_line(tp_ctx *ctx, struct tp__session *s, int argc, char **argv)
{
    if (!s->login.challenged) {
        out_str(ctx, s, "error: send 'hello NONCE' first\n");
        return;
    }
    if (!may_try(ctx, s))
        return;
    if (argc == 2 && tp__login_check(&s->login, s->con->token, argv[1]))
        auth_ok(ctx, s);
    else
        auth_failed(ctx, s);
}

/* Words before authentication: auth, hello, login. True if handled. */
static bool
auth_word(tp_ctx *ctx, struct tp__session *s, int argc, char **argv)
{
    if (strcmp(argv[0], "auth") == 0)
        auth_line(ctx, s, argc, argv);
    else if (strcmp(argv[0], "hello") == 0)
        hello_line(ctx, s, argc, argv);
    else if (strcmp(argv[0], "login") == 0)
        login_line(ctx, s, argc, argv);
    else
        return false;
    return true;
}

/* Session words handled here, not by commands: quit, and before
 * authentication auth/hello/login (the gate of TCP sessions). Returns
 * true if the line was dealt with. */
static bool
session_word(tp_ctx *ctx, struct tp__session *s, char *line)
{
    char copy[512], *argv[4];
    bool json;
    int argc = -1;

    if (strlen(line) < sizeof(copy)) {
        memcpy(copy, line, strlen(line) + 1);
        argc = tp__line_split(copy, argv, 4, &json);
    }
    if (argc > 0 &&
        (strcmp(argv[0], "quit") == 0 || strcmp(argv[0], "exit") == 0)) {
        shut(ctx, s, "bye\n");
        return true;
    }
    if (argc > 0 && s->authed && strcmp(argv[0], "auth") == 0) {
        out_str(ctx, s, "ok\n");
        return true;
    }
    if (s->authed)
        return false;
    if (argc <= 0 || !auth_word(ctx, s, argc, argv))
        out_str(ctx, s,
                "error: authentication required: send 'auth TOKEN' "
                "first\n");
    return true;
}

static bool
on_line(void *user, enum tp__line_ev ev, char *line, size_t n)
{
    tp_ctx *ctx = ((void **)user)[0];
    struct tp__session *s = ((void **)user)[1];
    char msg[96];

    if (s->closing)
        return false;
    if (ev == TP__LINE_TOO_LONG) {
        snprintf(msg, sizeof(msg), "error: line too long (max %zu bytes)\n",
                 s->lb.max);
        out_str(ctx, s, msg);
        return true;
    }
    if (n == 0 && !s->x.busy)
        return true; /* an empty line: nothing to do */
    if (s->x.busy) {
        /* Lines reach a busy session only while a trace runs: any line
         * stops it. */
        tp__trace_stop(ctx, &s->x);
        return !s->x.busy;
    }
    if (session_word(ctx, s, line))
        return !s->closing;
    tp__exec_line(ctx, &s->x, line);
    return !s->x.busy && !s->closing;
}

/* Feeds what waits in s->pending while the session can take lines. */
static void
feed_pending(tp_ctx *ctx, struct tp__session *s)
{
    void *u[2] = {ctx, s};
    size_t used;

    while (s->pending.len != 0 && !s->x.busy && !s->closing) {
        used =
            tp__linebuf_feed(&s->lb, s->pending.p, s->pending.len, on_line, u);
        tp__cbuf_consume(&s->pending, used);
        if (used == 0)
            break;
    }
}

void
tp__session_input(tp_ctx *ctx, struct tp__session *s, const void *data,
                  size_t len)
{
    void *u[2] = {ctx, s};
    size_t used = 0;

    if (s->closing || !s->open)
        return;
    s->last_active_ns = tp_now_ns();
    if (s->pending.len == 0 && (!s->x.busy || tp__trace_active(&s->x)))
        used = tp__linebuf_feed(&s->lb, data, len, on_line, u);
    if (used < len &&
        tp__cbuf_put(&s->pending, (const char *)data + used, len - used) != 0)
        shut(ctx, s,
             "error: too much input while a command runs; "
             "closing\n");
}

/* ---- lifecycle ------------------------------------------------------------*/

static void
tick(tp_ctx *ctx, struct tp__session *s)
{
    uint64_t idle = s->con->opts.idle_timeout_ms, now = tp_now_ns();

    if (idle != 0 && now - s->last_active_ns > idle * 1000000u)
        shut(ctx, s, "error: idle timeout; closing\n");
}

bool
tp__session_handle(tp_ctx *ctx, struct tp__session *s, const tp_msg *m)
{
    bool was_busy = s->x.busy;

    if (!s->open)
        return false;
    if (m->type == TP__CON_TICK) {
        tick(ctx, s);
        return true;
    }
    if (m->type == TP__CON_AUTHEND) {
        /* A stranger gets auth_timeout_ms to say who it is, so it
         * cannot sit on a pre-auth slot. */
        if (!s->authed)
            shut(ctx, s, "error: authentication timeout; closing\n");
        return true;
    }
    if (!tp__exec_handle(ctx, &s->x, m))
        return false;
    if (was_busy && !s->x.busy)
        feed_pending(ctx, s);
    return true;
}

static const char *
banner(enum tp__session_kind kind)
{
    if (kind == TP__SESS_TCP)
        return "troupe console " TP__VERSION_STR
               ": authenticate with 'auth TOKEN'\n";
    return "troupe console " TP__VERSION_STR ": type 'help'\n";
}

/* Takes a session slot; false (and a line saying why) when all are
 * taken. The owner on the Unix socket (and in-process hosts) may go
 * TP_CONSOLE_OWNER_RESERVE over max_sessions. */
static bool
take_slot(tp_ctx *ctx, struct tp__session *s)
{
    static const char full[] = "error: too many console sessions\n";
    struct tp_console *c = s->con;
    bool owner = s->kind == TP__SESS_LOCAL ||
                 (s->kind == TP__SESS_UNIX && s->peer.owner);
    unsigned max =
        c->opts.max_sessions + (owner ? TP_CONSOLE_OWNER_RESERVE : 0);
    unsigned n =
        atomic_fetch_add_explicit(&c->sessions, 1, memory_order_relaxed);

    if (n < max) {
        s->counted = true;
        return true;
    }
    atomic_fetch_sub_explicit(&c->sessions, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
    s->tr->write(ctx, s->t, full, sizeof(full) - 1);
    return false;
}

/* A TCP connection's place in the pre-auth pool, and its deadline. */
static int
take_preauth(tp_ctx *ctx, struct tp__session *s)
{
    static const char full[] =
        "error: too many unauthenticated connections; try later\n";
    struct tp_console *c = s->con;
    unsigned n =
        atomic_fetch_add_explicit(&c->preauth, 1, memory_order_relaxed);

    if (n >= c->opts.max_preauth) {
        atomic_fetch_sub_explicit(&c->preauth, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
        s->tr->write(ctx, s->t, full, sizeof(full) - 1);
        return -EUSERS;
    }
    s->preauth = true;
    return tp_send_after(ctx, c->opts.auth_timeout_ms, tp_self(ctx),
                         TP__CON_AUTHEND, NULL, 0, &s->auth_timer);
}

static void
give_back_slots(struct tp__session *s)
{
    if (s->counted)
        atomic_fetch_sub_explicit(&s->con->sessions, 1, memory_order_relaxed);
    if (s->preauth)
        atomic_fetch_sub_explicit(&s->con->preauth, 1, memory_order_relaxed);
    s->counted = s->preauth = false;
}

int
tp__session_open(tp_ctx *ctx, struct tp__session *s, struct tp_console *c,
                 enum tp__session_kind kind, const struct tp__transport *tr,
                 void *t, const struct tp__peer *peer)
{
    int err;

    memset(s, 0, sizeof(*s));
    s->con = c, s->kind = kind, s->tr = tr, s->t = t;
    s->auth_timer = TP_TIMER_NONE;
    if (peer != NULL)
        s->peer = *peer;
    tp__addr_key_of(&s->peer.addr, &s->key);
    err = kind == TP__SESS_TCP ? take_preauth(ctx, s)
          : take_slot(ctx, s)  ? 0
                               : -EUSERS;
    if (err == 0 && (tp__linebuf_init(&s->lb, c->opts.max_line) != 0 ||
                     tp_send_interval(ctx, TICK_MS, tp_self(ctx), TP__CON_TICK,
                                      NULL, 0, &s->tick) != 0))
        err = -ENOMEM;
    if (err != 0) {
        tp__linebuf_free(&s->lb);
        give_back_slots(s);
        return err;
    }
    tp__exec_init(&s->x, c, s,
                  TP__CAP_TRACE | (kind == TP__SESS_TCP ? 0 : TP__CAP_ADMIN),
                  reply_done);
    s->x.stream = stream;
    tp__cbuf_init(&s->pending, PENDING_MAX);
    s->authed = kind != TP__SESS_TCP;
    s->last_active_ns = tp_now_ns();
    s->open = true;
    atomic_fetch_add_explicit(&c->sessions_total, 1, memory_order_relaxed);
    out_str(ctx, s, banner(kind));
    return 0;
}

void
tp__session_close(tp_ctx *ctx, struct tp__session *s)
{
    give_back_slots(s);
    if (!s->open)
        return;
    s->open = false;
    s->closing = true;
    tp__exec_free(ctx, &s->x);
    tp__linebuf_free(&s->lb);
    tp__cbuf_free(&s->pending);
}
