/*
 * supervisor/api.c - managing children at run time: the request protocol
 * (TP_SUP_* with tp_request/tp_reply) as the supervisor handles it, and the
 * synchronous API built on tp_runtime_call() for threads outside the
 * runtime (main, tests, the console's tools).
 *
 * Requests that change children are stashed while a static supervisor runs
 * a group operation (restart of several children, in order) and answered
 * -ESHUTDOWN once it shuts down. Stopping a child answers only when the
 * child is really gone, so terminate_child means what OTP's does.
 */
#include "sup_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CHILDREN_PER_REPLY 4096u
#define DEFAULT_TIMEOUT_MS 5000u

/* ---------------------------------------------------------------------- */
/* Answers                                                                */

static void
answer(tp_ctx *ctx, const tp_msg *m, int err, tp_pid pid)
{
    tp_sup_result r = {err, 0, pid};

    if (tp_msg_is_request(m))
        tp_reply(ctx, m, &r, sizeof(r));
}

void
tp__sup_answer(tp_ctx *ctx, struct tp__sup_child *c, int err, tp_pid pid)
{
    tp_sup_result r = {err, 0, pid};

    if (c->reply_ref == 0)
        return;
    tp_reply_to(ctx, c->reply_to, c->reply_ref, &r, sizeof(r));
    c->reply_to = TP_PID_NONE;
    c->reply_ref = 0;
}

/* ---------------------------------------------------------------------- */
/* Queries                                                                */

static void
fill_sup_info(const struct tp__sup *s, tp_sup_info *out)
{
    memset(out, 0, sizeof(*out));
    out->strategy = s->spec->strategy;
    out->intensity = s->spec->intensity;
    out->period_ms = s->spec->period_ms;
    out->children = tp__sup_is_dynamic(s) ? tp__dyn_count(s) : s->nkids;
    out->active = s->active;
    out->restarts = s->restarts;
    out->max_restarts_hit = s->max_hit ? 1 : 0;
}

static void
req_info(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    tp_sup_info info;

    fill_sup_info(s, &info);
    if (tp_msg_is_request(m))
        tp_reply(ctx, m, &info, sizeof(info));
}

/* The attached children without a record, after the others. */
struct list_walk {
    tp_runtime *rt;
    const struct tp__sup *s;
    tp_sup_children *out;
    uint32_t skip, n, cap;
};

static void
list_attached(tp_pid pid, void *arg)
{
    struct list_walk *w = arg;
    tp_child_info *ci;
    tp_actor_info ai;

    if (w->skip > 0) {
        w->skip--;
        return;
    }
    if (w->n == w->cap)
        return;
    ci = &w->out->child[w->n++];
    memset(ci, 0, sizeof(*ci));
    ci->pid = pid;
    ci->restart = TP_TEMPORARY;
    ci->type = w->s->spec->child_template.type;
    ci->behaviour = tp_actor_peek(w->rt, pid, &ai) == 0 ? ai.behaviour : "?";
    ci->running = true;
}

/* Children from position `skip` on, in start order (static), or for a
 * dynamic supervisor: those with a record in the order they joined, then
 * the attached ones (in no particular order). */
static uint32_t
list_children(tp_ctx *ctx, struct tp__sup *s, uint32_t skip,
              tp_sup_children *out, uint32_t cap)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    struct list_walk w;
    uint32_t n = 0;

    if (!tp__sup_is_dynamic(s)) {
        for (uint32_t i = skip; i < s->nkids && n < cap; i++)
            tp__sup_fill_info(s, s->kids[i], rt, &out->child[n++]);
        return n;
    }
    for (struct tp__sup_child *c = s->dyn.next; c != &s->dyn && n < cap;
         c = c->next) {
        if (skip > 0)
            skip--;
        else
            tp__sup_fill_info(s, c, rt, &out->child[n++]);
    }
    w = (struct list_walk){rt, s, out, skip, n, cap};
    if (n < cap && s->nlite > 0)
        tp__dyn_each_attached(ctx, list_attached, &w);
    return w.n;
}

static void
req_which(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    uint32_t total = tp__sup_is_dynamic(s) ? tp__dyn_count(s) : s->nkids;
    uint32_t skip = 0, cap;
    tp_sup_children *out;

    if (!tp_msg_is_request(m))
        return;
    if (m->len == sizeof(skip)) /* optional: where the page starts */
        memcpy(&skip, m->data, sizeof(skip));
    cap = skip < total ? total - skip : 0;
    cap = cap < CHILDREN_PER_REPLY ? cap : CHILDREN_PER_REPLY;
    out = tp__malloc(sizeof(*out) + (size_t)cap * sizeof(out->child[0]));
    if (out == NULL) {
        tp_sup_children none = {0, total};
        tp_reply(ctx, m, &none, sizeof(none)); /* count 0: caller stops */
        return;
    }
    out->total = total;
    out->count = list_children(ctx, s, skip, out, cap);
    tp_reply(ctx, m, out,
             sizeof(*out) + (size_t)out->count * sizeof(out->child[0]));
    tp__free(out);
}

/* ---------------------------------------------------------------------- */
/* Changes                                                                */

static struct tp__sup_child *
find_child(tp_ctx *ctx, struct tp__sup *s, const char *name)
{
    uint64_t *v;
    tp_pid pid;

    if (!tp__sup_is_dynamic(s))
        return tp__sup_static_find(s, name);
    if (tp_pid_parse(name, &pid) != 0 || pid == TP_PID_NONE)
        return NULL;
    v = tp__u64map_get(&s->bypid, pid);
    if (v != NULL)
        return (struct tp__sup_child *)(uintptr_t)*v;
    return tp__dyn_promote(ctx, s, pid); /* an attached child, or NULL */
}

/* Starts a child from an owned image (NULL: the dynamic template). */
static void
start_child(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m,
            tp_child_spec *spec, void *dyn_arg)
{
    struct tp__sup_child *c;
    tp_pid pid = TP_PID_NONE;
    int err;

    if (tp__sup_is_dynamic(s)) {
        err = tp__dyn_start(ctx, s, spec, dyn_arg, &pid);
    } else if (spec == NULL || tp__child_spec_check(spec, true) != 0) {
        err = -EINVAL;
        tp__free(spec);
    } else if (tp__sup_static_find(s, spec->id) != NULL) {
        err = -EEXIST;
        tp__free(spec);
    } else if ((err = tp__sup_static_add(s, spec, &c)) != 0) {
        tp__free(spec);
    } else {
        c->flags |= TP__CF_OWNSPEC;
        /* OTP keeps no spec of a child that failed to start. */
        if ((err = tp__sup_spawn(ctx, s, c)) == 0)
            pid = c->pid;
        else
            tp__sup_static_delete(s, c);
    }
    answer(ctx, m, err, err == 0 ? pid : TP_PID_NONE);
}

static void
req_start(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    const tp_sup_req *req = m->data;
    tp_child_spec *spec = NULL;
    int err;

    if (m->len < sizeof(*req)) {
        answer(ctx, m, -EINVAL, TP_PID_NONE);
        return;
    }
    if (req->spec != NULL && (err = tp__child_spec_dup(req->spec, &spec))) {
        answer(ctx, m, err, TP_PID_NONE);
        return;
    }
    start_child(ctx, s, m, spec, req->dyn_arg);
}

static void
req_start_inline(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    struct tp__sup_start_inline h;
    tp_child_spec *spec = NULL;

    if (m->len < sizeof(h)) {
        answer(ctx, m, -EINVAL, TP_PID_NONE);
        return;
    }
    memcpy(&h, m->data, sizeof(h));
    if (h.size > m->len - sizeof(h)) {
        answer(ctx, m, -EINVAL, TP_PID_NONE);
        return;
    }
    if (h.size != 0) {
        if ((spec = tp__malloc(h.size)) == NULL) {
            answer(ctx, m, -ENOMEM, TP_PID_NONE);
            return;
        }
        memcpy(spec, (const char *)m->data + sizeof(h), h.size);
        if (tp__child_spec_rebase(spec, h.size, (uintptr_t)h.base) != 0 ||
            tp__child_spec_check(spec, false) != 0) {
            tp__free(spec);
            answer(ctx, m, -EINVAL, TP_PID_NONE);
            return;
        }
    }
    start_child(ctx, s, m, spec, h.dyn_arg);
}

/* What terminate and restart share: a running child is stopped for `why`
 * (the request is answered when its EXIT arrives), a stopping one is busy,
 * a waiting one loses its timer. Returns true when the request is settled
 * for now; false when the child is STOPPED and the caller goes on. */
static bool
stop_for_request(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m,
                 struct tp__sup_child *c, enum tp__stop_why why)
{
    switch (c->state) {
    case TP__CHILD_RUNNING:
        c->reply_to = m->from;
        c->reply_ref = m->ref;
        tp__sup_stop_child(ctx, s, c, why);
        return true;
    case TP__CHILD_STOPPING:
        answer(ctx, m, -EBUSY, TP_PID_NONE);
        return true;
    case TP__CHILD_WAITING:
        tp__sup_cancel_timer(ctx, s, c);
        break;
    default:
        break;
    }
    c->state = TP__CHILD_STOPPED;
    return false;
}

static void
req_terminate(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m,
              struct tp__sup_child *c)
{
    if (stop_for_request(ctx, s, m, c, TP__STOP_TERMINATE))
        return;
    if (tp__sup_is_dynamic(s))
        tp__dyn_free(s, c);
    else if (c->spec->restart == TP_TEMPORARY)
        tp__sup_static_delete(s, c);
    answer(ctx, m, 0, TP_PID_NONE);
}

static void
req_restart(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m,
            struct tp__sup_child *c)
{
    int err;

    if (stop_for_request(ctx, s, m, c, TP__STOP_RESTART))
        return; /* answered once it runs again */
    err = tp__sup_spawn(ctx, s, c);
    answer(ctx, m, err, c->pid);
    if (err != 0 && tp__sup_is_dynamic(s))
        tp__dyn_free(s, c);
}

static void
req_delete(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m,
           struct tp__sup_child *c)
{
    if (tp__sup_is_dynamic(s)) {
        answer(ctx, m, -EINVAL, TP_PID_NONE); /* terminate removes them */
        return;
    }
    if (c->state != TP__CHILD_STOPPED) {
        answer(ctx, m, -EBUSY, TP_PID_NONE);
        return;
    }
    tp__sup_static_delete(s, c);
    answer(ctx, m, 0, TP_PID_NONE);
}

static void
req_child(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    const tp_sup_req *req = m->data;
    struct tp__sup_child *c;

    if (m->len < sizeof(*req) ||
        strnlen(req->child, sizeof(req->child)) == sizeof(req->child)) {
        answer(ctx, m, -EINVAL, TP_PID_NONE);
        return;
    }
    if ((c = find_child(ctx, s, req->child)) == NULL) {
        answer(ctx, m, -ENOENT, TP_PID_NONE);
        return;
    }
    if (m->type == TP_SUP_TERMINATE_CHILD)
        req_terminate(ctx, s, m, c);
    else if (m->type == TP_SUP_RESTART_CHILD)
        req_restart(ctx, s, m, c);
    else
        req_delete(ctx, s, m, c);
}

void
tp__sup_request(tp_ctx *ctx, struct tp__sup *s, const tp_msg *m)
{
    if (m->type == TP_SUP_WHICH_CHILDREN) {
        req_which(ctx, s, m);
        return;
    }
    if (m->type == TP_SUP_INFO) {
        req_info(ctx, s, m);
        return;
    }
    if (s->exiting) {
        answer(ctx, m, -ESHUTDOWN, TP_PID_NONE);
        return;
    }
    if (s->op.kind != TP__OP_NONE) {
        if (tp_stash(ctx) != 0) /* the stash is full */
            answer(ctx, m, -EBUSY, TP_PID_NONE);
        return;
    }
    if (m->type == TP_SUP_START_CHILD)
        req_start(ctx, s, m);
    else if (m->type == TP__SUP_START_INLINE)
        req_start_inline(ctx, s, m);
    else
        req_child(ctx, s, m);
}

/* ---------------------------------------------------------------------- */
/* Synchronous API                                                        */

static int
call(tp_runtime *rt, tp_pid sup, uint32_t type, const void *data, size_t len,
     void *reply, size_t cap, size_t *got, uint32_t timeout_ms)
{
    if (rt == NULL || sup == TP_PID_NONE)
        return -EINVAL;
    return tp_runtime_call(rt, sup, type, data, len, reply, cap, got,
                           timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS);
}

static int
call_result(tp_runtime *rt, tp_pid sup, uint32_t type, const void *data,
            size_t len, tp_pid *out, uint32_t timeout_ms)
{
    tp_sup_result r;
    size_t got = 0;
    int err = call(rt, sup, type, data, len, &r, sizeof(r), &got, timeout_ms);

    if (err != 0)
        return err;
    if (got != sizeof(r))
        return -EINVAL; /* not a supervisor's answer */
    if (r.err == 0 && out != NULL)
        *out = r.pid;
    return r.err;
}

int
tp_supervisor_start_child(tp_runtime *rt, tp_pid sup, const tp_child_spec *spec,
                          void *dyn_arg, tp_pid *out, uint32_t timeout_ms)
{
    struct tp__sup_start_inline h = {0, 0, dyn_arg};
    tp_child_spec *img = NULL;
    char *buf;
    int err;

    if (spec != NULL) {
        if ((err = tp__child_spec_dup(spec, &img)) != 0)
            return err;
        h.base = (uintptr_t)img;
        h.size = tp__child_spec_size(spec);
    }
    /* The spec travels by value: if the call times out, the request still
     * in the supervisor's mailbox points at nothing of the caller's. */
    buf = tp__malloc(sizeof(h) + h.size);
    if (buf == NULL) {
        tp__free(img);
        return -ENOMEM;
    }
    memcpy(buf, &h, sizeof(h));
    if (img != NULL)
        memcpy(buf + sizeof(h), img, h.size);
    err = call_result(rt, sup, TP__SUP_START_INLINE, buf, sizeof(h) + h.size,
                      out, timeout_ms);
    tp__free(buf);
    tp__free(img);
    return err;
}

static int
child_call(tp_runtime *rt, tp_pid sup, uint32_t type, const char *child,
           tp_pid *out, uint32_t timeout_ms)
{
    tp_sup_req req;

    memset(&req, 0, sizeof(req));
    if (child == NULL || strlen(child) >= sizeof(req.child))
        return -EINVAL;
    memcpy(req.child, child, strlen(child));
    return call_result(rt, sup, type, &req, sizeof(req), out, timeout_ms);
}

int
tp_supervisor_terminate_child(tp_runtime *rt, tp_pid sup, const char *child,
                              uint32_t timeout_ms)
{
    return child_call(rt, sup, TP_SUP_TERMINATE_CHILD, child, NULL, timeout_ms);
}

int
tp_supervisor_restart_child(tp_runtime *rt, tp_pid sup, const char *child,
                            uint32_t timeout_ms)
{
    return child_call(rt, sup, TP_SUP_RESTART_CHILD, child, NULL, timeout_ms);
}

int
tp_supervisor_delete_child(tp_runtime *rt, tp_pid sup, const char *child,
                           uint32_t timeout_ms)
{
    return child_call(rt, sup, TP_SUP_DELETE_CHILD, child, NULL, timeout_ms);
}

/* One page of which_children from position skip. Returns entries copied
 * into out (at most cap), or a negative errno. */
static int
which_page(tp_runtime *rt, tp_pid sup, uint32_t skip, tp_sup_children *page,
           size_t page_bytes, uint32_t *total, uint32_t timeout_ms)
{
    size_t got = 0;
    int err = call(rt, sup, TP_SUP_WHICH_CHILDREN, &skip, sizeof(skip), page,
                   page_bytes, &got, timeout_ms);

    if (err != 0)
        return err;
    if (got < sizeof(*page) || got > page_bytes ||
        got != sizeof(*page) + (size_t)page->count * sizeof(page->child[0]))
        return -EINVAL;
    *total = page->total;
    return (int)page->count;
}

int
tp_supervisor_which_children(tp_runtime *rt, tp_pid sup, tp_child_info *out,
                             size_t cap, size_t *total, uint32_t timeout_ms)
{
    size_t bytes =
        sizeof(tp_sup_children) + CHILDREN_PER_REPLY * sizeof(tp_child_info);
    tp_sup_children *page;
    size_t n = 0;
    uint32_t all = 0;
    int got;

    if (out == NULL && cap != 0)
        return -EINVAL;
    if ((page = tp__malloc(bytes)) == NULL)
        return -ENOMEM;
    /* Pages are separate snapshots: a child added or removed between two
     * of them can shift the listing (as any live listing would). */
    do {
        got = which_page(rt, sup, (uint32_t)n, page, bytes, &all, timeout_ms);
        for (int i = 0; i < got && n < cap; i++)
            out[n++] = page->child[i];
    } while (got > 0 && n < cap && n < all);
    tp__free(page);
    if (got < 0)
        return got;
    /* An empty page short of the end: the supervisor was out of memory
     * (out[n..] is not filled, so this is no listing). */
    if (got == 0 && n < cap && n < all)
        return -ENOMEM;
    if (total != NULL)
        *total = all;
    return 0;
}

int
tp_supervisor_info(tp_runtime *rt, tp_pid sup, tp_sup_info *out,
                   uint32_t timeout_ms)
{
    size_t got = 0;
    int err;

    if (out == NULL)
        return -EINVAL;
    err = call(rt, sup, TP_SUP_INFO, NULL, 0, out, sizeof(*out), &got,
               timeout_ms);
    if (err == 0 && got != sizeof(*out))
        return -EINVAL;
    return err;
}
