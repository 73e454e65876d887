/*
 * console/cmd_trace.c - `trace PID`: a live stream of the messages PID
 * handles.
 *
 * A tracer actor, linked to the session, is made PID's tracer
 * (tp_trace). Its mailbox is bounded (TRACER_MAILBOX, drop newest), so a
 * flood of traced messages costs the traced actor one failed push each,
 * never memory. The tracer formats each event into one line (decoding
 * msgpack payloads) and passes at most trace_rate lines a second to the
 * session, counting the rest; the session writes a line only while the
 * client keeps up (its output bound), counting the rest too. The stream
 * ends when the client sends any line, when PID exits, or when the client
 * leaves (the session dies, the linked tracer dies with it, and the
 * runtime stops tracing to a dead tracer).
 */
#include "console_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <troupe/pack.h>

#define TRACER_MAILBOX 256u
#define SHOW_BYTES     256u

struct tracer_arg {
    tp_pid session;
    uint32_t rate;
    bool json;
};

struct tracer {
    struct tracer_arg a;
    uint32_t tokens;
    uint64_t dropped, seen, t0;
    struct tp__cbuf line;
};

/* ---- formatting --------------------------------------------------------*/

static const char *
type_name(uint32_t type, char *buf, size_t cap)
{
    switch (type) {
    case TP_MSG_EXIT:
        return "EXIT";
    case TP_MSG_DOWN:
        return "DOWN";
    case TP_MSG_REPLY:
        return "REPLY";
    case TP_MSG_TIMEOUT:
        return "TIMEOUT";
    case TP_MSG_NOPROC:
        return "NOPROC";
    default:
        snprintf(buf, cap,
                 type >= TP_MSG_LIBRARY_BASE ? "0x%08" PRIx32 : "%" PRIu32,
                 type);
        return buf;
    }
}

/* Writes the payload: msgpack decoded (tp_pack_print; a prefix cut at
 * TP_TRACE_MAX_DATA still prints, ending in "..."), else a string when it
 * is text, else hex. */
static void
payload(struct tp__cbuf *b, const unsigned char *p, size_t n, bool json)
{
    size_t show = n < SHOW_BYTES ? n : SHOW_BYTES;
    char txt[2048];
    int k = n != 0 ? tp_pack_print(p, n, txt, sizeof(txt)) : -EINVAL;

    if (k >= 0 || k == -ENOBUFS || k == -ENODATA) {
        if (json)
            tp__cbuf_json_str(b, txt, strlen(txt));
        else
            tp__cbuf_text_str(b, txt, strlen(txt));
        /* cppcheck-suppress knownConditionTrueFalse ; n > 0 from most callers
         */
    } else if (show != 0 && tp__line_valid((const char *)p, show) &&
               memchr(p, '\0', show) == NULL) {
        if (json) {
            tp__cbuf_json_str(b, (const char *)p, show);
        } else {
            tp__cbuf_put(b, "\"", 1);
            tp__cbuf_text_str(b, (const char *)p, show);
            tp__cbuf_put(b, "\"", 1);
        }
    } else {
        tp__cbuf_puts(b, json ? "\"hex:" : "hex:");
        /* cppcheck-suppress knownConditionTrueFalse ; as above */
        for (size_t i = 0; i < show; i++)
            tp__cbuf_printf(b, "%02x", p[i]);
        tp__cbuf_puts(b, json ? "\"" : "");
    }
}

static void
format_event(struct tp__cbuf *b, const tp_trace_event *ev,
             const unsigned char *data, size_t n, bool json, uint64_t t0)
{
    char from[32], tb[24];
    const char *t = type_name(ev->type, tb, sizeof(tb));

    tp_pid_format(ev->from, from, sizeof(from));
    if (json) {
        tp__cbuf_printf(b,
                        "{\"trace\":{\"at_ns\":%" PRIu64 ",\"from\":\"%s\","
                        "\"type\":\"%s\",\"ref\":%" PRIu64 ",\"len\":%" PRIu32
                        ",\"data\":",
                        ev->at_ns, from, t, ev->ref, ev->len);
        payload(b, data, n, true);
        tp__cbuf_puts(b, "}}\n");
        return;
    }
    /* Seconds since the trace started: readable, and enough to see
     * bursts and gaps. */
    tp__cbuf_printf(b, "+%10.6f  from %-12s type %-10s len %-6" PRIu32 " ",
                    ev->at_ns > t0 ? (double)(ev->at_ns - t0) / 1e9 : 0.0, from,
                    t, ev->len);
    payload(b, data, n, false);
    tp__cbuf_put(b, "\n", 1);
}

/* ---- the tracer actor ---------------------------------------------------*/

static void
flush_dropped(tp_ctx *ctx, struct tracer *t)
{
    char line[128];
    int n;

    if (t->dropped == 0)
        return;
    n = t->a.json ? snprintf(line, sizeof(line),
                             "{\"trace_dropped\":%" PRIu64 "}\n", t->dropped)
                  : snprintf(line, sizeof(line),
                             "... %" PRIu64 " events not shown (rate limit "
                             "%" PRIu32 "/s)\n",
                             t->dropped, t->a.rate);
    if (tp_send(ctx, t->a.session, TP__CON_TRACE, line, (size_t)n) == 0)
        t->dropped = 0;
}

static void
on_event(tp_ctx *ctx, struct tracer *t, const tp_msg *m)
{
    const tp_trace_event *ev = m->data;
    size_t n;

    if (m->len < sizeof(*ev))
        return;
    t->seen++;
    if (t->tokens == 0) {
        t->dropped++;
        return;
    }
    t->tokens--;
    n = m->len - sizeof(*ev);
    tp__cbuf_reset(&t->line);
    format_event(&t->line, ev, (const unsigned char *)(ev + 1), n, t->a.json,
                 t->t0);
    if (!t->line.overflow)
        tp_send(ctx, t->a.session, TP__CON_TRACE, t->line.p, t->line.len);
}

static int
tracer_init(tp_ctx *ctx, void *state, void *arg)
{
    struct tracer *t = state;

    t->a = *(const struct tracer_arg *)arg;
    t->tokens = t->a.rate;
    t->t0 = tp_now_ns();
    tp__cbuf_init(&t->line, 16384);
    return tp_send_interval(ctx, 1000, tp_self(ctx), TP__CON_TICK, NULL, 0,
                            NULL);
}

static void
tracer_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    struct tracer *t = state;

    if (m->type == TP_MSG_TRACE) {
        on_event(ctx, t, m);
    } else if (m->type == TP__CON_TICK) {
        flush_dropped(ctx, t);
        t->tokens = t->a.rate;
    }
}

static void
tracer_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *r)
{
    tp__cbuf_free(&((struct tracer *)state)->line);
}

static const tp_behaviour tracer_behaviour = {
    .name = "console_tracer",
    .state_size = sizeof(struct tracer),
    .init = tracer_init,
    .handle = tracer_handle,
    .terminate = tracer_terminate,
};

/* ---- the op in the session ---------------------------------------------*/

struct trace_op {
    struct tp__op op;
    tp_pid target, tracer;
    uint64_t mref;
    uint64_t lines, slow_dropped;
};

static void
trace_summary(struct tp__exec *x, struct trace_op *o, const char *why)
{
    struct tp__em e;

    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_pid(&e, "pid", o->target);
    tp__em_str(&e, "ended", why);
    tp__em_u64(&e, "lines", o->lines);
    tp__em_u64(&e, "dropped_slow", o->slow_dropped);
    tp__em_obj_end(&e);
}

static bool
trace_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct trace_op *o = (struct trace_op *)x->op;
    tp_exit_reason r;
    uint64_t ref;
    tp_pid pid;

    if (m->type == TP__CON_TRACE && m->from == o->tracer) {
        if (x->stream(ctx, x, m->data, m->len) == 0)
            o->lines++;
        else
            o->slow_dropped++;
        return true;
    }
    if (m->type == TP_MSG_DOWN && tp_msg_down(m, &pid, &ref, &r) == 0 &&
        ref == o->mref) {
        char why[96];
        o->mref = 0;
        snprintf(why, sizeof(why), "actor exited (%s)",
                 tp_exit_kind_name(r.kind));
        trace_summary(x, o, why);
        tp__exec_finish(ctx, x, 0);
        return true;
    }
    return false;
}

static void
trace_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct trace_op *o = (struct trace_op *)x->op;
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};

    tp_trace(tp_ctx_runtime(ctx), o->target, TP_PID_NONE);
    if (o->tracer != TP_PID_NONE) {
        tp_unlink(ctx, o->tracer);
        tp_exit_pid(ctx, o->tracer, &kill);
    }
    if (o->mref != 0)
        tp_demonitor(ctx, o->mref, TP_DEMONITOR_FLUSH);
    tp__free(o);
}

bool
tp__trace_active(const struct tp__exec *x)
{
    return x->op != NULL && x->op->msg == trace_msg;
}

bool
tp__trace_stop(tp_ctx *ctx, struct tp__exec *x)
{
    if (x->op == NULL || x->op->msg != trace_msg)
        return false;
    trace_summary(x, (struct trace_op *)x->op, "stopped by client");
    tp__exec_finish(ctx, x, 0);
    return true;
}

static int
start_tracer(tp_ctx *ctx, struct tp__exec *x, struct trace_op *o)
{
    struct tracer_arg a = {tp_self(ctx), x->con->opts.trace_rate, x->json};
    tp_spawn_opts so;
    int err;

    tp_spawn_opts_init(&so);
    so.link = true;
    so.max_msgs = TRACER_MAILBOX;
    so.overflow = TP_OVERFLOW_DROP_NEWEST;
    if ((err = tp_spawn(ctx, &tracer_behaviour, &a, &so, &o->tracer)) != 0)
        return tp__exec_fail(x, err, "cannot start tracer: %s",
                             tp_strerror(err));
    if (tp_monitor(ctx, o->target, &o->mref) != 0 ||
        tp_trace(tp_ctx_runtime(ctx), o->target, o->tracer) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor");
    return 0;
}

static void
trace_header(tp_ctx *ctx, struct tp__exec *x, const tp_actor_info *a)
{
    char pid[32], line[256];
    int n;

    tp_pid_format(a->pid, pid, sizeof(pid));
    n = x->json ? snprintf(line, sizeof(line),
                           "{\"tracing\":\"%s\",\"rate\":%" PRIu32 "}\n", pid,
                           x->con->opts.trace_rate)
                : snprintf(line, sizeof(line),
                           "tracing %s (%s), at most %" PRIu32
                           " lines/s; send any line to stop\n",
                           pid, a->behaviour, x->con->opts.trace_rate);
    x->stream(ctx, x, line, (size_t)n);
}

int
tp__cmd_trace(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct trace_op *o;
    tp_actor_info a;
    tp_pid pid;
    int err;

    if ((err = tp__exec_arg_pid(ctx, x, argv[1], &pid)) != 0)
        return err;
    if (tp_actor_peek(tp_ctx_runtime(ctx), pid, &a) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor %.64s", argv[1]);
    if (pid == tp_self(ctx) || strcmp(a.behaviour, "console_tracer") == 0)
        return tp__exec_fail(x, -EINVAL, "cannot trace the console itself");
    if ((o = tp__calloc(1, sizeof(*o))) == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    o->op.msg = trace_msg;
    o->op.free = trace_free;
    o->target = pid;
    if ((err = tp__exec_begin(ctx, x, &o->op, 0)) < 0) {
        tp__free(o);
        return err;
    }
    if ((err = start_tracer(ctx, x, o)) != 0)
        return err;
    trace_header(ctx, x, &a);
    return 1;
}
