/*
 * console/cmd_ps.c - `ps`: the top actors by mailbox length, messages
 * handled, memory or drops, and the chunked actor scan it (and /metrics)
 * is built on.
 *
 * The scan visits TP__SCAN_CHUNK pid-table slots per turn of the host
 * actor, then sends itself a step message and yields, so even a million
 * actors never make one long handler and other actors (and other commands)
 * run in between. ps keeps the top N in a bounded min-heap; the rows it
 * shows then say which are direct-style actors and their stack bytes.
 */
#include "actors/actor_int.h"
#include "console_int.h"

#include <errno.h>
#include <string.h>

enum ps_key { K_MAILBOX = 0, K_HANDLED, K_MEMORY, K_DROPS };

static const char *const key_names[] = {"mailbox", "handled", "memory",
                                        "drops"};

struct ps_op {
    struct tp__scan scan;
    enum ps_key key;
    uint32_t limit, n;
    uint64_t total, queued;
    tp_actor_info *heap; /* min-heap of the best `limit` */
};

/* ---- the generic scan ------------------------------------------------- */

static bool
scan_msg(tp_ctx *ctx, struct tp__exec *x, const tp_msg *m)
{
    struct tp__scan *sc = (struct tp__scan *)x->op;

    if (m->type != TP__CON_STEP)
        return false;
    if (tp_actor_foreach_step(tp_ctx_runtime(ctx), &sc->cursor, TP__SCAN_CHUNK,
                              sc->visit, sc)) {
        sc->chunks++;
        tp__exec_step(ctx, x);
        return true;
    }
    sc->done(ctx, x);
    return true;
}

int
tp__scan_begin(tp_ctx *ctx, struct tp__exec *x, struct tp__scan *sc)
{
    int rc;

    sc->op.msg = scan_msg;
    sc->cursor = 0;
    sc->x = x;
    rc = tp__exec_begin(ctx, x, &sc->op, TP__SCAN_TIMEOUT_MS);
    if (rc < 0)
        return rc;
    if (tp__exec_step(ctx, x) != 0)
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    return 1;
}

/* ---- ps ----------------------------------------------------------------*/

static uint64_t
key_of(const tp_actor_info *a, enum ps_key k)
{
    switch (k) {
    case K_HANDLED:
        return a->handled;
    case K_MEMORY:
        return a->memory;
    case K_DROPS:
        return a->drops;
    default:
        return a->mailbox;
    }
}

/* a ranks below b (ties: the older pid ranks higher, so output is
 * stable). */
static bool
less(const tp_actor_info *a, const tp_actor_info *b, enum ps_key k)
{
    uint64_t ka = key_of(a, k), kb = key_of(b, k);

    return ka != kb ? ka < kb : tp_pid_index(a->pid) > tp_pid_index(b->pid);
}

static void
sift_down(struct ps_op *p, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        tp_actor_info t;
        if (l < p->n && less(&p->heap[l], &p->heap[m], p->key))
            m = l;
        if (r < p->n && less(&p->heap[r], &p->heap[m], p->key))
            m = r;
        if (m == i)
            return;
        t = p->heap[i], p->heap[i] = p->heap[m], p->heap[m] = t;
        i = m;
    }
}

static void
sift_up(struct ps_op *p, uint32_t i)
{
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        tp_actor_info t;
        if (!less(&p->heap[i], &p->heap[up], p->key))
            return;
        t = p->heap[i], p->heap[i] = p->heap[up], p->heap[up] = t;
        i = up;
    }
}

static bool
ps_visit(void *user, const tp_actor_info *a)
{
    struct ps_op *p = user;

    p->total++;
    p->queued += a->mailbox;
    if (p->n < p->limit) {
        p->heap[p->n++] = *a;
        sift_up(p, p->n - 1);
    } else if (p->limit != 0 && less(&p->heap[0], a, p->key)) {
        p->heap[0] = *a;
        sift_down(p, 0);
    }
    return true;
}

/* Heap sort in place: popping the minimum to the back leaves the array
 * best first. */
static void
sort_best_first(struct ps_op *p)
{
    uint32_t n = p->n;

    while (p->n > 1) {
        tp_actor_info t = p->heap[0];
        p->heap[0] = p->heap[p->n - 1];
        p->heap[p->n - 1] = t;
        p->n--;
        sift_down(p, 0);
    }
    p->n = n;
}

static void
ps_row(struct tp__em *e, tp_runtime *rt, const tp_actor_info *a)
{
    uint64_t stack = 0;
    /* Read now, for the shown rows only (an actor gone since the scan
     * shows "-"): direct-style actors' stack bytes, "-" for callback
     * ones. */
    bool direct = tp__direct_peek(rt, a->pid, &stack) == 1;

    tp__em_obj_begin(e, NULL);
    tp__em_pid(e, "pid", a->pid);
    tp__em_str(e, "name", a->name[0] != '\0' ? a->name : "-");
    tp__em_str(e, "behaviour", a->behaviour);
    tp__em_u64(e, "mailbox", a->mailbox);
    tp__em_u64(e, "handled", a->handled);
    tp__em_bytes(e, "memory", a->memory);
    tp__em_u64(e, "drops", a->drops);
    tp__em_i64(e, "sched", a->scheduler);
    if (direct)
        tp__em_bytes(e, "stack", stack);
    else
        tp__em_none(e, "stack");
    tp__em_obj_end(e);
}

static void
ps_done(tp_ctx *ctx, struct tp__exec *x)
{
    struct ps_op *p = (struct ps_op *)x->op;
    struct tp__em e;

    sort_best_first(p);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_u64(&e, "actors", p->total);
    tp__em_u64(&e, "queued", p->queued);
    tp__em_str(&e, "sort", key_names[p->key]);
    tp__em_arr_begin(&e, "top");
    for (uint32_t i = 0; i < p->n; i++)
        ps_row(&e, tp_ctx_runtime(ctx), &p->heap[i]);
    tp__em_arr_end(&e);
    tp__em_obj_end(&e);
    tp__exec_finish(ctx, x, 0);
}

static void
ps_free(tp_ctx *ctx, struct tp__exec *x)
{
    struct ps_op *p = (struct ps_op *)x->op;

    tp__free(p->heap);
    tp__free(p);
}

static int
parse_key(const char *s, enum ps_key *k)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, key_names[i]) == 0) {
            *k = (enum ps_key)i;
            return 0;
        }
    }
    if (strcmp(s, "mem") == 0 || strcmp(s, "msgs") == 0) {
        *k = s[1] == 'e' ? K_MEMORY : K_HANDLED;
        return 0;
    }
    return -EINVAL;
}

/* Parses [-s KEY] [-n LIMIT] (also "sort=KEY" "limit=N" from HTTP). */
static int
ps_args(struct tp__exec *x, int argc, char **argv, enum ps_key *key,
        uint32_t *limit)
{
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *a = argv[i];
        bool is_sort = false;
        if (strcmp(a, "-s") == 0 || strcmp(a, "-n") == 0) {
            if (i + 1 == argc)
                return tp__exec_fail(x, -EINVAL, "usage: %s",
                                     tp__cmd_find("ps")->usage);
            is_sort = a[1] == 's';
            v = argv[++i];
        } else if (strncmp(a, "sort=", 5) == 0 ||
                   strncmp(a, "limit=", 6) == 0) {
            is_sort = a[0] == 's';
            v = strchr(a, '=') + 1;
        } else {
            return tp__exec_fail(x, -EINVAL, "usage: %s",
                                 tp__cmd_find("ps")->usage);
        }
        if (is_sort && parse_key(v, key) != 0)
            return tp__exec_fail(x, -EINVAL,
                                 "unknown sort key '%.32s' (mailbox, "
                                 "handled, memory, drops)",
                                 v);
        if (!is_sort && tp__parse_u32(v, 1, x->con->opts.ps_max, limit) != 0)
            return tp__exec_fail(x, -EINVAL, "limit must be 1..%u",
                                 x->con->opts.ps_max);
    }
    return 0;
}

int
tp__cmd_ps(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    enum ps_key key = K_MAILBOX;
    uint32_t limit = x->con->opts.ps_default;
    struct ps_op *p;
    int err;

    if ((err = ps_args(x, argc, argv, &key, &limit)) != 0)
        return err;
    p = tp__calloc(1, sizeof(*p));
    if (p == NULL || (p->heap = tp__calloc(limit, sizeof(*p->heap))) == NULL) {
        tp__free(p);
        return tp__exec_fail(x, -ENOMEM, "out of memory");
    }
    p->key = key;
    p->limit = limit;
    p->scan.op.free = ps_free;
    p->scan.visit = ps_visit;
    p->scan.done = ps_done;
    return tp__scan_begin(ctx, x, &p->scan);
}
