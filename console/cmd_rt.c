/*
 * console/cmd_rt.c - the commands answered at once from runtime counters:
 * stats, sched, loglevel, kill, and history (one request to the sampler).
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/supervisor.h>

int
tp__cmd_stats(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    struct tp__rates *r = &x->con->rates;
    struct tp__net_counts nc;
    tp_runtime_stats st;
    struct tp__em e;

    tp_runtime_get_stats(rt, &st);
    tp__console_net_counts(rt, &nc);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_dur(&e, "uptime", st.uptime_ns);
    tp__em_u64(&e, "schedulers", tp_runtime_schedulers(rt));
    tp__em_u64(&e, "actors", st.actors);
    tp__em_u64(&e, "spawned", st.spawned);
    tp__em_u64(&e, "exited", st.exited);
    tp__em_u64(&e, "crashed", st.crashed);
    tp__em_u64(&e, "messages", st.messages);
    tp__em_u64(&e, "messages_per_s",
               atomic_load_explicit(&r->msgs_per_s, memory_order_relaxed));
    tp__em_u64(&e, "dead_letters", st.dead_letters);
    tp__em_u64(&e, "dead_letters_per_s",
               atomic_load_explicit(&r->dead_per_s, memory_order_relaxed));
    tp__em_u64(&e, "mailbox_drops", st.mailbox_drops);
    tp__em_u64(&e, "long_handlers", st.long_handlers);
    tp__em_u64(&e, "timers", tp_runtime_timers(rt));
    tp__em_bytes(&e, "actor_memory", st.actor_bytes);
    tp__em_bytes(&e, "rss", st.rss_bytes);
    tp__em_u64(&e, "connections", nc.connections);
    tp__em_u64(&e, "listeners", nc.listeners);
    tp__em_u64(&e, "console_sessions", tp_console_sessions(x->con));
    tp__em_obj_end(&e);
    return 0;
}

static void
sched_row(struct tp__em *e, struct tp__rates *r, const tp_sched_stats *s)
{
    uint64_t busy = s->busy_ns, idle = s->idle_ns;
    uint32_t util = s->index < atomic_load(&r->nsched)
                        ? atomic_load_explicit(&r->sched_util[s->index],
                                               memory_order_relaxed)
                        : 0;

    tp__em_obj_begin(e, NULL);
    tp__em_u64(e, "id", s->index);
    tp__em_i64(e, "cpu", s->cpu);
    tp__em_f64(e, "util_pct", util / 1e4, 1);
    tp__em_f64(e, "util_total_pct",
               busy + idle != 0 ? 100.0 * busy / (double)(busy + idle) : 0, 1);
    tp__em_u64(e, "runq", s->runq_len);
    tp__em_u64(e, "msgs_per_s",
               s->index < atomic_load(&r->nsched)
                   ? atomic_load_explicit(&r->sched_rate[s->index],
                                          memory_order_relaxed)
                   : 0);
    tp__em_u64(e, "messages", s->messages);
    tp__em_u64(e, "turns", s->turns);
    tp__em_u64(e, "steals", s->steals);
    tp__em_u64(e, "sleeps", s->sleeps);
    tp__em_u64(e, "wakeups", s->wakeups);
    tp__em_u64(e, "long_handlers", s->long_handlers);
    tp__em_str(e, "state", s->sleeping ? "sleeping" : "running");
    tp__em_obj_end(e);
}

int
tp__cmd_sched(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    unsigned n = tp_runtime_schedulers(rt);
    tp_sched_stats *ss = tp__calloc(n, sizeof(*ss));
    struct tp__em e;

    if (ss == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    n = tp_runtime_get_sched_stats(rt, ss, n);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_arr_begin(&e, "schedulers");
    for (unsigned i = 0; i < n; i++)
        sched_row(&e, &x->con->rates, &ss[i]);
    tp__em_arr_end(&e);
    tp__em_obj_end(&e);
    tp__free(ss);
    return 0;
}

int
tp__cmd_loglevel(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_log_level old = tp_log_get_level(), lvl;
    struct tp__em e;

    if (argc == 2) {
        if (!(x->caps & TP__CAP_ADMIN))
            return tp__exec_fail(x, -EACCES,
                                 "setting the level needs the "
                                 "token");
        if (tp_log_level_parse(argv[1], &lvl) != 0)
            return tp__exec_fail(x, -EINVAL,
                                 "unknown level '%.32s' (error, warn, info, "
                                 "debug)",
                                 argv[1]);
        tp_log_set_level(lvl);
        tp_log(TP_LOG_WARN, "console: log level %s -> %s",
               tp_log_level_name(old), tp_log_level_name(lvl));
    }
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_str(&e, "level", tp_log_level_name(tp_log_get_level()));
    if (argc == 2)
        tp__em_str(&e, "previous", tp_log_level_name(old));
    tp__em_obj_end(&e);
    return 0;
}

/* kill PID [REASON...]: kill (default, untrappable), normal, shutdown, or
 * any text (a user reason). */
static void
parse_reason(int argc, char **argv, tp_exit_reason *r, char *text, size_t cap)
{
    size_t n = 0;

    memset(r, 0, sizeof(*r));
    r->kind = TP_EXIT_KILL;
    if (argc < 3 || strcmp(argv[2], "kill") == 0)
        return;
    if (argc == 3 && strcmp(argv[2], "normal") == 0) {
        r->kind = TP_EXIT_NORMAL;
        return;
    }
    if (argc == 3 && strcmp(argv[2], "shutdown") == 0) {
        r->kind = TP_EXIT_SHUTDOWN;
        return;
    }
    text[0] = '\0';
    for (int i = 2; i < argc && n + 1 < cap; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s%s", i > 2 ? " " : "",
                              argv[i]);
    r->kind = TP_EXIT_USER;
    r->text = text;
}

/* Drops a "--force" (or HTTP's "force=1") word; returns whether one was
 * there. */
static bool
take_force(int *argc, char **argv)
{
    bool force = false;
    int k = 2;

    for (int i = 2; i < *argc; i++) {
        if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "force=1") == 0)
            force = true;
        else
            argv[k++] = argv[i];
    }
    *argc = k;
    return force;
}

/* Actors the console will not kill without --force: the root supervisor
 * (the whole tree would go, and only an empty root comes back) and the
 * console's own sampler. */
static int
check_victim(tp_ctx *ctx, struct tp__exec *x, tp_pid pid, const char *text)
{
    if (pid == tp_runtime_root_supervisor(tp_ctx_runtime(ctx)))
        return tp__exec_fail(x, -EPERM,
                             "%.64s is the root supervisor: killing it stops "
                             "every service under it for good (nothing "
                             "restarts them); add --force to do it anyway",
                             text);
    if (pid == atomic_load(&x->con->sampler))
        return tp__exec_fail(x, -EPERM,
                             "%.64s is the console's sampler; add --force "
                             "(a new one starts at the next command)",
                             text);
    return 0;
}

int
tp__cmd_kill(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    char text[200];
    tp_exit_reason r;
    struct tp__em e;
    bool force = take_force(&argc, argv);
    tp_pid pid;
    int err;

    if ((err = tp__exec_arg_pid(ctx, x, argv[1], &pid)) != 0)
        return err;
    if (!force && (err = check_victim(ctx, x, pid, argv[1])) != 0)
        return err;
    parse_reason(argc, argv, &r, text, sizeof(text));
    if (tp_exit_pid(ctx, pid, &r) != 0)
        return tp__exec_fail(x, -ESRCH, "no such actor %.64s", argv[1]);
    if (force)
        tp_log(TP_LOG_WARN, "console: forced kill of %.64s", argv[1]);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_pid(&e, "pid", pid);
    tp__em_str(&e, "signal",
               r.kind == TP_EXIT_USER ? r.text : tp_exit_kind_name(r.kind));
    tp__em_obj_end(&e);
    return 0;
}

/* ---- history: one request to the sampler ----------------------------- */

struct hist_op {
    struct tp__op op;
    uint64_t ref;
};

static void
render_history(struct tp__exec *x, const struct tp__hist_reply *h)
{
    const double *v = (const double *)(h + 1);
    size_t row = 1 + h->nsched;
    struct tp__em e;

    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_u64(&e, "period_ms", h->period_ms);
    tp__em_u64(&e, "schedulers", h->nsched);
    tp__em_arr_begin(&e, "samples");
    for (uint32_t i = 0; i < h->n; i++) {
        char key[16];
        tp__em_obj_begin(&e, NULL);
        tp__em_i64(&e, "t", (int64_t)i - (int64_t)h->n + 1);
        tp__em_f64(&e, "total", v[i * row], 0);
        for (uint32_t s = 0; s < h->nsched && s < TP__EM_COLS - 3; s++) {
            snprintf(key, sizeof(key), "s%u", s);
            tp__em_f64(&e, key, v[i * row + 1 + s], 0);
        }
        tp__em_obj_end(&e);
    }
    tp__em_arr_end(&e);
    tp__em_obj_end(&e);
}

static bool
hist_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct hist_op *op = (struct hist_op *)x->op;
    const struct tp__hist_reply *h = m->data;

    if (m->ref != op->ref)
        return false;
    if (m->type != TP_MSG_REPLY || m->len < sizeof(*h) ||
        m->len < sizeof(*h) + (size_t)h->n * (1 + h->nsched) * sizeof(double))
        tp__exec_finish(ctx, x,
                        tp__exec_fail(x, -EIO, "sampler did not answer"));
    else {
        render_history(x, h);
        tp__exec_finish(ctx, x, 0);
    }
    return true;
}

static void
hist_free(tp_ctx *ctx, struct tp__exec *x)
{
    tp_request_forget(ctx, ((struct hist_op *)x->op)->ref);
    tp__free(x->op);
}

int
tp__cmd_history(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct hist_op *op = tp__calloc(1, sizeof(*op));
    int err;

    if (op == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    op->op.msg = hist_msg;
    op->op.free = hist_free;
    err = tp_request(ctx, atomic_load(&x->con->sampler), TP__CON_HISTORY, NULL,
                     0, 2000, &op->ref);
    if (err != 0) {
        tp__free(op);
        return tp__exec_fail(x, err, "sampler unavailable: %s",
                             tp_strerror(err));
    }
    return tp__exec_begin(ctx, x, &op->op, 0);
}
