/*
 * console/session.c - a line-protocol session: the state a host actor (a
 * network connection actor, or the in-process transport below) embeds to
 * speak the console protocol.
 *
 * Bytes in -> lines (bounded by max_line) -> commands (one at a time) ->
 * replies out through the transport. Input that arrives while a command
 * runs waits in a bounded buffer; a line during a trace stops the trace.
 * TCP sessions must send "auth TOKEN" first (three failures close them).
 * A tick every second closes sessions idle for idle_timeout_ms. Output
 * never grows without bound: a reply that would push the client's unread
 * output over max_output closes the session instead, and trace lines are
 * dropped (and counted) while the client lags.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PENDING_MAX    (64u * 1024u) /* input queued while a command runs */
#define AUTH_TRIES     3
#define TICK_MS        1000u
#define AUTH_WINDOW_MS 10000u

struct tp__session {
    struct tp_console *con;
    enum tp__session_kind kind;
    const struct tp__transport *tr;
    void *t;
    struct tp__linebuf lb;
    struct tp__exec x;
    struct tp__cbuf pending; /* input held while busy */
    uint64_t last_active_ns, opened_ns;
    tp_timer tick;
    int auth_fails;
    bool open, authed, closing, counted;
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

static void
auth_line(tp_ctx *ctx, struct tp__session *s, int argc, char **argv)
{
    const char *tok = s->con->token;

    if (argc == 2 && tok != NULL &&
        tp__token_equal(tok, argv[1], strlen(argv[1]))) {
        s->authed = true;
        s->x.caps |= TP__CAP_ADMIN;
        out_str(ctx, s, "ok\n");
        return;
    }
    atomic_fetch_add_explicit(&s->con->auth_failures, 1, memory_order_relaxed);
    if (++s->auth_fails >= AUTH_TRIES)
        shut(ctx, s, "error: authentication failed; closing\n");
    else
        out_str(ctx, s, "error: authentication failed\n");
}

/* Session words handled here, not by commands: auth, quit. Returns true
 * if the line was one of them. */
/* Session words handled here, not by commands: auth, quit; and the auth
 * gate of TCP sessions. Returns true if the line was dealt with. */
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
    if (argc > 0 && strcmp(argv[0], "auth") == 0) {
        if (s->authed)
            out_str(ctx, s, "ok\n");
        else
            auth_line(ctx, s, argc, argv);
        return true;
    }
    if (!s->authed) {
        out_str(ctx, s,
                "error: authentication required: send 'auth TOKEN' "
                "first\n");
        return true;
    }
    return false;
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

    /* An unauthenticated TCP session gets AUTH_WINDOW_MS to say who it is,
     * so strangers cannot sit on the session slots. */
    if (!s->authed && now - s->opened_ns > AUTH_WINDOW_MS * 1000000ull)
        shut(ctx, s, "error: authentication timeout; closing\n");
    else if (idle != 0 && now - s->last_active_ns > idle * 1000000u)
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
 * taken. */
static bool
take_slot(tp_ctx *ctx, struct tp_console *c, const struct tp__transport *tr,
          void *t)
{
    static const char full[] = "error: too many console sessions\n";
    unsigned n =
        atomic_fetch_add_explicit(&c->sessions, 1, memory_order_relaxed);

    if (n < c->opts.max_sessions)
        return true;
    atomic_fetch_sub_explicit(&c->sessions, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->rejected, 1, memory_order_relaxed);
    tr->write(ctx, t, full, sizeof(full) - 1);
    return false;
}

int
tp__session_open(tp_ctx *ctx, struct tp__session *s, struct tp_console *c,
                 enum tp__session_kind kind, const struct tp__transport *tr,
                 void *t)
{
    memset(s, 0, sizeof(*s));
    s->con = c, s->kind = kind, s->tr = tr, s->t = t;
    if (!take_slot(ctx, c, tr, t))
        return -EUSERS;
    s->counted = true;
    if (tp__linebuf_init(&s->lb, c->opts.max_line) != 0 ||
        tp_send_interval(ctx, TICK_MS, tp_self(ctx), TP__CON_TICK, NULL, 0,
                         &s->tick) != 0) {
        tp__linebuf_free(&s->lb);
        atomic_fetch_sub_explicit(&c->sessions, 1, memory_order_relaxed);
        s->counted = false;
        return -ENOMEM;
    }
    tp__exec_init(&s->x, c, s,
                  TP__CAP_TRACE | (kind == TP__SESS_TCP ? 0 : TP__CAP_ADMIN),
                  reply_done);
    s->x.stream = stream;
    tp__cbuf_init(&s->pending, PENDING_MAX);
    s->authed = kind != TP__SESS_TCP;
    s->last_active_ns = s->opened_ns = tp_now_ns();
    s->open = true;
    atomic_fetch_add_explicit(&c->sessions_total, 1, memory_order_relaxed);
    out_str(ctx, s, banner(kind));
    return 0;
}

void
tp__session_close(tp_ctx *ctx, struct tp__session *s)
{
    if (s->counted)
        atomic_fetch_sub_explicit(&s->con->sessions, 1, memory_order_relaxed);
    s->counted = false;
    if (!s->open)
        return;
    s->open = false;
    s->closing = true;
    tp__exec_free(ctx, &s->x);
    tp__linebuf_free(&s->lb);
    tp__cbuf_free(&s->pending);
}
