/*
 * console/cmd_metrics.c - `metrics` and GET /metrics: runtime, scheduler,
 * mailbox, supervisor, network, dead-letter and console metrics in the
 * Prometheus text format.
 *
 * Counters come from the runtime at once; mailbox figures need every
 * actor, so they come from a chunked scan (as ps); supervisor figures come
 * from TP_SUP_INFO requests to the supervisors the scan found (at most
 * SUP_MAX), answered in parallel before the page is written.
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/supervisor.h>

#define SUP_MAX        256u
#define SUP_TIMEOUT_MS 2000u

struct sup_row {
    tp_pid pid;
    char name[TP_NAME_MAX + 1];
    uint64_t ref;
    bool ok;
    tp_sup_info info;
};

struct metrics_op {
    struct tp__scan scan;
    uint64_t actors, queued, max_mailbox, memory, drops, bounded;
    uint64_t mb_buckets[6]; /* mailbox length histogram: 0,1,10,100,1k,+ */
    struct sup_row sups[SUP_MAX];
    uint32_t nsups, outstanding;
    uint64_t sups_seen;
};

static const double mb_bounds[5] = {0, 1, 10, 100, 1000};

static bool
m_visit(void *user, const tp_actor_info *a)
{
    struct metrics_op *o = user;
    int b = 0;

    o->actors++;
    o->queued += a->mailbox;
    o->memory += a->memory;
    o->drops += a->drops;
    o->bounded += a->max_msgs != 0;
    if (a->mailbox > o->max_mailbox)
        o->max_mailbox = a->mailbox;
    while (b < 5 && (double)a->mailbox > mb_bounds[b])
        b++;
    o->mb_buckets[b]++;
    if (tp__is_supervisor(a->behaviour)) {
        o->sups_seen++;
        if (o->nsups < SUP_MAX) {
            o->sups[o->nsups].pid = a->pid;
            snprintf(o->sups[o->nsups].name, sizeof(o->sups[0].name), "%s",
                     a->name);
            o->nsups++;
        }
    }
    return true;
}

static void
runtime_metrics(struct tp__cbuf *b, tp_runtime *rt)
{
    tp_runtime_stats st;
    struct tp__net_counts nc;

    tp_runtime_get_stats(rt, &st);
    tp__console_net_counts(rt, &nc);
    tp__prom_one(b, "troupe_uptime_seconds", "gauge",
                 "Time since the runtime started.", (double)st.uptime_ns / 1e9);
    tp__prom_one(b, "troupe_schedulers", "gauge", "Scheduler threads.",
                 tp_runtime_schedulers(rt));
    tp__prom_one(b, "troupe_actors", "gauge", "Live actors.",
                 (double)st.actors);
    tp__prom_one(b, "troupe_actors_spawned_total", "counter",
                 "Actors ever spawned.", (double)st.spawned);
    tp__prom_one(b, "troupe_actors_exited_total", "counter",
                 "Actors that ended.", (double)st.exited);
    tp__prom_one(b, "troupe_actors_crashed_total", "counter",
                 "Actors that ended by a crash, fault or kill.",
                 (double)st.crashed);
    tp__prom_one(b, "troupe_messages_total", "counter", "Messages handled.",
                 (double)st.messages);
    tp__prom_one(b, "troupe_dead_letters_total", "counter",
                 "Messages dropped: dead receiver or mailbox bound.",
                 (double)st.dead_letters);
    tp__prom_one(b, "troupe_mailbox_drops_total", "counter",
                 "Messages dropped by mailbox bounds.",
                 (double)st.mailbox_drops);
    tp__prom_one(b, "troupe_long_handlers_total", "counter",
                 "Callbacks that ran longer than long_handler_ms.",
                 (double)st.long_handlers);
    tp__prom_one(b, "troupe_timers", "gauge", "Armed timers.",
                 (double)tp_runtime_timers(rt));
    tp__prom_one(b, "troupe_actor_memory_bytes", "gauge",
                 "Bytes of actor memory.", (double)st.actor_bytes);
    tp__prom_one(b, "process_resident_memory_bytes", "gauge",
                 "Resident memory size in bytes.", (double)st.rss_bytes);
    tp__prom_one(b, "troupe_connections", "gauge", "Open network connections.",
                 (double)nc.connections);
    tp__prom_one(b, "troupe_listeners", "gauge", "Listening sockets.",
                 (double)nc.listeners);
    tp__prom_one(b, "troupe_connections_accepted_total", "counter",
                 "Connections accepted.", (double)nc.accepted);
    tp__prom_one(b, "troupe_connections_rejected_total", "counter",
                 "Connections refused by limits.", (double)nc.rejected);
}

static double
count_of(_Atomic uint64_t *v)
{
    return (double)atomic_load_explicit(v, memory_order_relaxed);
}

static void
console_metrics(struct tp__cbuf *b, struct tp_console *c)
{
    tp__prom_one(b, "troupe_console_sessions", "gauge",
                 "Open console sessions.", tp_console_sessions(c));
    tp__prom_one(b, "troupe_console_auth_failures_total", "counter",
                 "Console authentication failures.",
                 count_of(&c->auth_failures));
    tp__prom_one(
        b, "troupe_console_auth_throttled_total", "counter",
        "Console logins refused by the failure limit, token not checked.",
        count_of(&c->auth_throttled));
    tp__prom_one(b, "troupe_console_peers_refused_total", "counter",
                 "Unix socket peers refused for their uid.",
                 count_of(&c->peers_refused));
    tp__prom_one(b, "troupe_console_http_evicted_total", "counter",
                 "HTTP connections that lost their slot waiting for a request.",
                 count_of(&c->evicted));
}

/* One family per scheduler counter, one sample per scheduler. */
static void
sched_family(struct tp__cbuf *b, const tp_sched_stats *ss, unsigned n,
             const char *name, const char *type, const char *help, size_t off,
             bool u32, double scale)
{
    char lab[32];

    tp__prom_family(b, name, type, help);
    for (unsigned i = 0; i < n; i++) {
        const char *p = (const char *)&ss[i] + off;
        double v = u32 ? *(const uint32_t *)p : (double)*(const uint64_t *)p;
        snprintf(lab, sizeof(lab), "scheduler=\"%u\"", ss[i].index);
        tp__prom_sample(b, name, lab, v * scale);
    }
}

#define SF(name, type, help, field, u32, scale)                                \
    sched_family(b, ss, n, name, type, help, offsetof(tp_sched_stats, field),  \
                 u32, scale)

static void
sched_metrics(struct tp__cbuf *b, tp_runtime *rt)
{
    unsigned n = tp_runtime_schedulers(rt);
    tp_sched_stats *ss = tp__calloc(n, sizeof(*ss));

    if (ss == NULL)
        return;
    n = tp_runtime_get_sched_stats(rt, ss, n);
    SF("troupe_scheduler_messages_total", "counter",
       "Messages handled per scheduler.", messages, false, 1);
    SF("troupe_scheduler_turns_total", "counter", "Actor turns run.", turns,
       false, 1);
    SF("troupe_scheduler_steals_total", "counter", "Actors stolen.", steals,
       false, 1);
    SF("troupe_scheduler_sleeps_total", "counter",
       "Times the scheduler blocked in its loop.", sleeps, false, 1);
    SF("troupe_scheduler_wakeups_total", "counter", "Wake-ups sent to it.",
       wakeups, false, 1);
    SF("troupe_scheduler_busy_seconds_total", "counter",
       "Time spent outside the idle wait.", busy_ns, false, 1e-9);
    SF("troupe_scheduler_idle_seconds_total", "counter",
       "Time spent blocked in the loop.", idle_ns, false, 1e-9);
    SF("troupe_scheduler_long_handlers_total", "counter",
       "Callbacks over long_handler_ms.", long_handlers, false, 1);
    SF("troupe_scheduler_run_queue_length", "gauge", "Actors waiting to run.",
       runq_len, true, 1);
    tp__free(ss);
}

static void
mailbox_metrics(struct tp__cbuf *b, const struct metrics_op *o)
{
    static const char *const le[6] = {"0", "1", "10", "100", "1000", "+Inf"};
    uint64_t cum = 0;
    char lab[32];

    tp__prom_one(b, "troupe_mailbox_messages", "gauge",
                 "Messages queued in all mailboxes.", (double)o->queued);
    tp__prom_one(b, "troupe_mailbox_max_length", "gauge", "Longest mailbox.",
                 (double)o->max_mailbox);
    tp__prom_one(b, "troupe_mailbox_bounded_actors", "gauge",
                 "Actors with a bounded mailbox.", (double)o->bounded);
    tp__prom_family(b, "troupe_mailbox_length", "histogram",
                    "Mailbox lengths of live actors.");
    for (int i = 0; i < 6; i++) {
        cum += o->mb_buckets[i];
        snprintf(lab, sizeof(lab), "le=\"%s\"", le[i]);
        tp__prom_sample(b, "troupe_mailbox_length_bucket", lab, (double)cum);
    }
    tp__prom_sample(b, "troupe_mailbox_length_sum", NULL, (double)o->queued);
    tp__prom_sample(b, "troupe_mailbox_length_count", NULL, (double)o->actors);
}

static void
sup_label(char *out, size_t cap, const struct sup_row *s)
{
    char pid[32], name[2 * TP_NAME_MAX + 4];

    tp_pid_format(s->pid, pid, sizeof(pid));
    tp__prom_label_escape(name, sizeof(name), s->name);
    snprintf(out, cap, "supervisor=\"%s\",name=\"%s\"", pid, name);
}

static void
sup_metrics(struct tp__cbuf *b, const struct metrics_op *o)
{
    static const struct {
        const char *name, *type, *help;
    } f[3] = {
        {"troupe_supervisor_restarts_total", "counter",
         "Restarts done by the supervisor."},
        {"troupe_supervisor_children", "gauge", "Children of the supervisor."},
        {"troupe_supervisor_active_children", "gauge", "Running children."}};
    char lab[256];

    tp__prom_one(b, "troupe_supervisors", "gauge", "Live supervisors.",
                 (double)o->sups_seen);
    for (int k = 0; k < 3; k++) {
        tp__prom_family(b, f[k].name, f[k].type, f[k].help);
        for (uint32_t i = 0; i < o->nsups; i++) {
            const struct sup_row *s = &o->sups[i];
            if (!s->ok)
                continue;
            sup_label(lab, sizeof(lab), s);
            tp__prom_sample(b, f[k].name, lab,
                            k == 0   ? (double)s->info.restarts
                            : k == 1 ? s->info.children
                                     : s->info.active);
        }
    }
}

static void
render(tp_ctx *ctx, struct tp__exec *x, struct metrics_op *o)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);

    if (x->json) {
        /* JSON callers use stats/sched/ps/tree; metrics is text only. */
        tp__exec_finish(
            ctx, x,
            tp__exec_fail(x, -ENOTSUP, "metrics are text only (GET /metrics)"));
        return;
    }
    runtime_metrics(&x->out, rt);
    tp__cluster_metrics(&x->out, rt);
    console_metrics(&x->out, x->con);
    sched_metrics(&x->out, rt);
    mailbox_metrics(&x->out, o);
    sup_metrics(&x->out, o);
    tp__exec_finish(ctx, x, 0);
}

static bool
sup_reply(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct metrics_op *o = (struct metrics_op *)x->op;

    if (m->ref == 0 || (m->type != TP_MSG_REPLY && m->type != TP_MSG_TIMEOUT &&
                        m->type != TP_MSG_NOPROC))
        return false;
    for (uint32_t i = 0; i < o->nsups; i++) {
        struct sup_row *s = &o->sups[i];
        if (s->ref != m->ref)
            continue;
        s->ref = 0;
        if (m->type == TP_MSG_REPLY && m->len >= sizeof(s->info)) {
            memcpy(&s->info, m->data, sizeof(s->info));
            s->ok = true;
        }
        if (--o->outstanding == 0)
            render(ctx, x, o);
        return true;
    }
    return false;
}

static void
m_done(tp_ctx *ctx, struct tp__exec *x)
{
    struct metrics_op *o = (struct metrics_op *)x->op;

    o->scan.op.msg = sup_reply;
    for (uint32_t i = 0; i < o->nsups; i++)
        if (tp_request(ctx, o->sups[i].pid, TP_SUP_INFO, NULL, 0,
                       SUP_TIMEOUT_MS, &o->sups[i].ref) == 0)
            o->outstanding++;
    if (o->outstanding == 0)
        render(ctx, x, o);
}

static void
m_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct metrics_op *o = (struct metrics_op *)x->op;

    for (uint32_t i = 0; i < o->nsups; i++)
        if (o->sups[i].ref != 0)
            tp_request_forget(ctx, o->sups[i].ref);
    tp__free(o);
}

int
tp__cmd_metrics(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct metrics_op *o = tp__calloc(1, sizeof(*o));

    if (o == NULL)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    o->scan.op.free = m_free;
    o->scan.visit = m_visit;
    o->scan.done = m_done;
    return tp__scan_begin(ctx, x, &o->scan);
}
