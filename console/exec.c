/*
 * console/exec.c - runs one command inside a host actor.
 *
 * A command either answers at once (stats, kill, ...) or starts an async
 * op: requests to other actors (info, tree, restart) or a scan in bounded
 * chunks, one per turn (ps, metrics). While an op is in flight the host
 * offers it every message it gets; the op ends with tp__exec_finish(),
 * which renders the reply and calls the host's done callback. Every op has
 * a deadline, so a target that never answers cannot wedge a session.
 *
 * Reply framing (what troupectl relies on): in text mode the body, then a
 * final line "ok", or a single line "error: ..."; a body line that could be
 * mistaken for either gets a leading space. In JSON mode one line:
 * {"ok":true,"data":...} or {"ok":false,"error":"..."}.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

const struct tp__cmd_def tp__cmds[] = {
    {"help", "help [COMMAND]", "list commands, or describe one", 0, 1, 0,
     tp__cmd_help},
    {"stats", "stats",
     "uptime, actors, messages/s, dead letters, memory, connections", 0, 0, 0,
     tp__cmd_stats},
    {"sched", "sched",
     "per scheduler: utilisation, run queue, messages, steals, sleeps", 0, 0, 0,
     tp__cmd_sched},
    {"ps", "ps [-s mailbox|handled|memory|drops] [-n LIMIT]",
     "top actors, sorted (default by mailbox length)", 0, 4, 0, tp__cmd_ps},
    {"info", "info PID",
     "one actor: behaviour, state, mailbox, links, monitors, supervisor", 1, 1,
     0, tp__cmd_info},
    {"tree", "tree [@NODE]",
     "the supervision tree (of cluster node NODE: asked over the cluster)", 0,
     1, 0, tp__cmd_tree},
    {"kill", "kill PID [--force] [REASON...]",
     "send an exit signal (default kill; or normal, shutdown, any text); "
     "the root supervisor and the console's sampler need --force",
     1, -1, TP__CAP_ADMIN, tp__cmd_kill},
    {"restart", "restart SUP CHILD", "restart a supervisor's child", 2, 2,
     TP__CAP_ADMIN, tp__cmd_restart},
    {"stop", "stop SUP CHILD", "stop a supervisor's child (spec kept)", 2, 2,
     TP__CAP_ADMIN, tp__cmd_stop},
    {"trace", "trace PID",
     "stream the messages PID handles (any input line stops it)", 1, 1,
     TP__CAP_TRACE, tp__cmd_trace},
    {"conns", "conns [-n LIMIT]", "open network connections", 0, 2, 0,
     tp__cmd_conns},
    {"listeners", "listeners", "listening sockets", 0, 0, 0, tp__cmd_listeners},
    {"tls", "tls reload LISTENER CERT KEY",
     "new TLS handshakes on LISTENER use this certificate chain and key", 4, 4,
     TP__CAP_ADMIN, tp__cmd_tls},
    {"nodes", "nodes",
     "the cluster: this node, NATS, and every peer node (up/down, rtt, "
     "traffic, heartbeat misses)",
     0, 0, 0, tp__cmd_nodes},
    {"names", "names",
     "cluster-wide names this node's actors hold, and the last ones they "
     "lost to a conflict after a partition",
     0, 0, 0, tp__cmd_names},
    {"drain", "drain [TIMEOUT_MS [DELAY_MS]]",
     "health 503, then after DELAY_MS stop accepting and close connections "
     "gracefully",
     0, 2, TP__CAP_ADMIN, tp__cmd_drain},
    {"loglevel", "loglevel [error|warn|info|debug]",
     "show or set the log level", 0, 1, 0, tp__cmd_loglevel},
    {"metrics", "metrics", "everything in Prometheus text format", 0, 0, 0,
     tp__cmd_metrics},
    {"history", "history", "messages/s per scheduler, last 120 s", 0, 0, 0,
     tp__cmd_history},
    {NULL, NULL, NULL, 0, 0, 0, NULL}};

const struct tp__cmd_def *
tp__cmd_find(const char *name)
{
    for (const struct tp__cmd_def *d = tp__cmds; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0)
            return d;
    return NULL;
}

void
tp__exec_init(struct tp__exec *x, struct tp_console *con, void *host,
              unsigned caps, tp__exec_done_fn done)
{
    memset(x, 0, sizeof(*x));
    x->con = con;
    x->host = host;
    x->caps = caps;
    x->done = done;
    tp__cbuf_init(&x->out, con->opts.max_output);
}

static void
op_end(tp_ctx *ctx, struct tp__exec *x)
{
    struct tp__op *op = x->op;

    if (op == NULL)
        return;
    if (op->timer != TP_TIMER_NONE)
        tp_cancel_timer(ctx, op->timer);
    op->free(ctx, x); /* reads x->op, frees it */
    x->op = NULL;
}

void
tp__exec_free(tp_ctx *ctx, struct tp__exec *x)
{
    op_end(ctx, x);
    tp__cbuf_free(&x->out);
}

int
tp__exec_fail(struct tp__exec *x, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
    return err < 0 ? err : -EINVAL;
}

/* Text mode: protects the framing by indenting body lines that look like
 * a terminator. */
static void
frame_text(struct tp__exec *x)
{
    struct tp__cbuf o;
    size_t i = 0;

    tp__cbuf_init(&o, x->out.max + x->out.len / 4 + 64);
    while (i < x->out.len) {
        const char *l = x->out.p + i;
        const char *nl = memchr(l, '\n', x->out.len - i);
        size_t n = nl != NULL ? (size_t)(nl - l) : x->out.len - i;
        if ((n == 2 && memcmp(l, "ok", 2) == 0) ||
            (n >= 6 && memcmp(l, "error:", 6) == 0))
            tp__cbuf_put(&o, " ", 1);
        tp__cbuf_put(&o, l, n);
        tp__cbuf_put(&o, "\n", 1);
        i += n + 1;
    }
    tp__cbuf_put(&o, "ok\n", 3);
    tp__cbuf_free(&x->out);
    x->out = o;
}

static void
render_error(struct tp__exec *x, bool raw)
{
    tp__cbuf_reset(&x->out);
    if (x->err[0] == '\0')
        snprintf(x->err, sizeof(x->err), "internal error");
    if (x->json) {
        tp__cbuf_puts(&x->out, "{\"ok\":false,\"error\":");
        tp__cbuf_json_str(&x->out, x->err, strlen(x->err));
        tp__cbuf_puts(&x->out, "}\n");
    } else if (!raw) {
        tp__cbuf_puts(&x->out, "error: ");
        tp__cbuf_text_str(&x->out, x->err, strlen(x->err));
        tp__cbuf_put(&x->out, "\n", 1);
    } else {
        tp__cbuf_puts(&x->out, x->err);
        tp__cbuf_put(&x->out, "\n", 1);
    }
}

void
tp__exec_finish(tp_ctx *ctx, struct tp__exec *x, int status)
{
    bool raw = x->raw;

    op_end(ctx, x);
    if (status == 0 && x->out.overflow)
        status = tp__exec_fail(x, -ENOBUFS,
                               "reply larger than %zu bytes (use a limit)",
                               x->out.max);
    if (status != 0) {
        render_error(x, raw);
    } else if (x->json) {
        tp__cbuf_puts(&x->out, raw ? "}" : "}\n");
    } else if (!raw) {
        frame_text(x);
    }
    x->busy = false;
    x->done(ctx, x, status);
}

/* Checks a command's arguments and the host's capabilities. */
static int
check(struct tp__exec *x, const struct tp__cmd_def *d, int nargs)
{
    if (nargs < d->min_args || (d->max_args >= 0 && nargs > d->max_args))
        return tp__exec_fail(x, -EINVAL, "usage: %s", d->usage);
    if ((d->needs & TP__CAP_TRACE) && !(x->caps & TP__CAP_TRACE))
        return tp__exec_fail(x, -ENOTSUP, "'%s' needs a line session", d->name);
    if ((d->needs & TP__CAP_ADMIN) && !(x->caps & TP__CAP_ADMIN))
        return tp__exec_fail(x, -EACCES, "'%s' needs the token", d->name);
    return 0;
}

int
tp__exec_argv(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv, bool json)
{
    const struct tp__cmd_def *d;
    int rc;

    if (x->busy)
        return -EBUSY;
    x->busy = true;
    x->json = json;
    x->err[0] = '\0';
    tp__cbuf_reset(&x->out);
    tp__sampler_ensure(ctx, x->con);
    if (argc == 0)
        rc = tp__exec_fail(x, -EINVAL, "empty command (try 'help')");
    else if ((d = tp__cmd_find(argv[0])) == NULL)
        rc = tp__exec_fail(x, -ENOENT, "unknown command '%.64s' (try 'help')",
                           argv[0]);
    else if ((rc = check(x, d, argc - 1)) == 0) {
        if (json)
            tp__cbuf_puts(&x->out, "{\"ok\":true,\"data\":");
        rc = d->fn(ctx, x, argc, argv);
    }
    if (rc <= 0)
        tp__exec_finish(ctx, x, rc);
    return 0;
}

int
tp__exec_line(tp_ctx *ctx, struct tp__exec *x, char *line)
{
    char *argv[TP__ARGV_MAX];
    bool json = false;
    int argc;

    if (x->busy)
        return -EBUSY;
    argc = tp__line_split(line, argv, TP__ARGV_MAX, &json);
    if (argc < 0) {
        x->busy = true;
        x->json = json;
        if (argc == -E2BIG)
            tp__exec_fail(x, argc, "too many words (at most %d)", TP__ARGV_MAX);
        else
            tp__exec_fail(x, argc,
                          "invalid line (control bytes or an "
                          "unterminated quote)");
        tp__exec_finish(ctx, x, argc);
        return 0;
    }
    return tp__exec_argv(ctx, x, argc, argv, json);
}

int
tp__exec_begin(tp_ctx *ctx, struct tp__exec *x, struct tp__op *op, uint32_t ms)
{
    uint64_t seq = ++x->seq;

    x->op = op;
    op->timer = TP_TIMER_NONE;
    if (ms != 0 && tp_send_after(ctx, ms, tp_self(ctx), TP__CON_TIMEOUT, &seq,
                                 sizeof(seq), &op->timer) != 0)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    return 1;
}

/* Messages of a finished op still in the mailbox are dropped here. */
static bool
stale(const tp_msg *m)
{
    switch (m->type) {
    case TP__CON_STEP:
    case TP__CON_TIMEOUT:
    case TP_MSG_ACTOR_INFO:
    case TP_MSG_DOWN:
    case TP_MSG_REPLY:
    case TP_MSG_TIMEOUT:
    case TP_MSG_NOPROC:
        return true;
    default:
        return false;
    }
}

bool
tp__exec_handle(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    uint64_t seq;

    if (x->op == NULL)
        return stale(m);
    if (m->type == TP__CON_TIMEOUT || m->type == TP__CON_STEP) {
        if (m->len != sizeof(seq))
            return true;
        memcpy(&seq, m->data, sizeof(seq));
        if (seq != x->seq)
            return true;
        if (m->type == TP__CON_TIMEOUT) {
            x->op->timer = TP_TIMER_NONE;
            tp__exec_finish(ctx, x, tp__exec_fail(x, -ETIMEDOUT, "timed out"));
            return true;
        }
    }
    return x->op->msg(ctx, x, m) || stale(m);
}

int
tp__exec_step(tp_ctx *ctx, struct tp__exec *x)
{
    uint64_t seq = x->seq;

    return tp_send(ctx, tp_self(ctx), TP__CON_STEP, &seq, sizeof(seq));
}

int
tp__exec_pid(tp_ctx *ctx, const char *text, tp_pid *out)
{
    tp_pid pid;

    if (tp_pid_parse(text, &pid) == 0 && pid != TP_PID_NONE) {
        *out = pid;
        return 0;
    }
    if (strlen(text) > TP_NAME_MAX)
        return -EINVAL;
    pid = tp_whereis(tp_ctx_runtime(ctx), text);
    if (pid == TP_PID_NONE)
        return -ESRCH;
    *out = pid;
    return 0;
}

/* Resolves a PID argument or fails the command with a clear message. */
int
tp__exec_arg_pid(tp_ctx *ctx, struct tp__exec *x, const char *text, tp_pid *out)
{
    int err = tp__exec_pid(ctx, text, out);

    if (err == -ESRCH)
        return tp__exec_fail(x, err, "no such actor or name '%.64s'", text);
    if (err != 0)
        return tp__exec_fail(x, err,
                             "bad pid '%.64s' (expected <index.gen> or a "
                             "registered name)",
                             text);
    return 0;
}

int
tp__cmd_help(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct tp__em e;
    const struct tp__cmd_def *d;

    (void)ctx;
    if (argc == 2 && tp__cmd_find(argv[1]) == NULL)
        return tp__exec_fail(x, -ENOENT, "unknown command '%.64s'", argv[1]);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_arr_begin(&e, "commands");
    for (d = tp__cmds; d->name != NULL; d++) {
        if (argc == 2 && strcmp(d->name, argv[1]) != 0)
            continue;
        tp__em_obj_begin(&e, NULL);
        tp__em_str(&e, "usage", d->usage);
        tp__em_str(&e, "description", d->help);
        tp__em_obj_end(&e);
    }
    tp__em_arr_end(&e);
    if (argc == 1)
        tp__em_note(&e, "prefix a command with 'json' (or add --json) for "
                        "JSON; 'quit' ends the session");
    tp__em_obj_end(&e);
    return 0;
}
