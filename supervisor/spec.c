/*
 * supervisor/spec.c - checking specs and keeping owned copies of them.
 *
 * A supervisor must be able to restart a child long after the caller's
 * spec is gone, so it keeps a copy of each child spec in one allocation (an
 * "image"): the spec, its id and name, and for a child supervisor the
 * tp_sup_spec it starts from, recursively. Images are built by one walker
 * that either measures (no buffer) or copies, so size and layout cannot
 * disagree. An image moved to another address (sent in a message) is fixed
 * by rebasing every internal pointer, each checked to fall inside it.
 */
#include "sup_int.h"

#include <errno.h>
#include <string.h>

static bool
is_sup(const tp_child_spec *c)
{
    return c->behaviour == &tp_supervisor_behaviour;
}

/* ---------------------------------------------------------------------- */
/* Checks                                                                  */

static int sup_check(const tp_sup_spec *s, int depth);

static bool
name_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strnlen(s, max + 1) <= max;
}

static int
child_check(const tp_child_spec *c, bool need_id, int depth)
{
    if (c == NULL || c->behaviour == NULL || c->behaviour->handle == NULL)
        return -EINVAL;
    if ((unsigned)c->restart > TP_TEMPORARY ||
        (unsigned)c->type > TP_SUPERVISOR)
        return -EINVAL;
    if (need_id && !name_ok(c->id, sizeof(((tp_child_info *)0)->id) - 1))
        return -EINVAL;
    if (c->opts.name != NULL && !name_ok(c->opts.name, TP_NAME_MAX))
        return -EINVAL;
    if (is_sup(c))
        return c->arg != NULL ? sup_check(c->arg, depth + 1) : -EINVAL;
    return 0;
}

static int
ids_unique(const tp_sup_spec *s)
{
    for (size_t i = 0; i < s->nchildren; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->children[i].id, s->children[j].id) == 0)
                return -EINVAL;
        }
    }
    return 0;
}

static int
sup_check(const tp_sup_spec *s, int depth)
{
    int err;

    if (s == NULL || depth > TP__SPEC_DEPTH_MAX ||
        (unsigned)s->strategy > TP_DYNAMIC || s->period_ms == 0)
        return -EINVAL;
    if (s->strategy == TP_DYNAMIC) {
        if (s->nchildren != 0)
            return -EINVAL;
        return child_check(&s->child_template, false, depth);
    }
    if (s->nchildren != 0 && s->children == NULL)
        return -EINVAL;
    for (size_t i = 0; i < s->nchildren; i++) {
        if ((err = child_check(&s->children[i], true, depth)) != 0)
            return err;
    }
    return ids_unique(s);
}

int
tp__child_spec_check(const tp_child_spec *c, bool need_id)
{
    return child_check(c, need_id, 0);
}

int
tp__sup_spec_check(const tp_sup_spec *s)
{
    return sup_check(s, 0);
}

/* ---------------------------------------------------------------------- */
/* Images                                                                  */

struct img {
    char *base; /* NULL: measure only */
    size_t off;
};

static char *
take(struct img *g, size_t n)
{
    char *p = g->base != NULL ? g->base + g->off : NULL;

    g->off += tp__align_up(n, 8);
    return p;
}

static char *
put_str(struct img *g, const char *s)
{
    size_t n;
    char *p;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    p = take(g, n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static tp_sup_spec *put_sup(struct img *g, const tp_sup_spec *src);

/* Copies what src points to into the image; dst (NULL when measuring)
 * already holds a copy of src itself. */
static void
put_child_extras(struct img *g, tp_child_spec *dst, const tp_child_spec *src)
{
    char *id = put_str(g, src->id);
    char *name = put_str(g, src->opts.name);
    tp_sup_spec *sub = NULL;

    if (is_sup(src) && src->arg != NULL)
        sub = put_sup(g, src->arg);
    if (dst == NULL)
        return;
    dst->id = id;
    dst->opts.name = name;
    if (is_sup(src) && src->arg != NULL)
        dst->arg = sub;
}

static tp_sup_spec *
put_sup(struct img *g, const tp_sup_spec *src)
{
    tp_sup_spec *dst = (tp_sup_spec *)take(g, sizeof(*dst));
    tp_child_spec *arr = NULL;

    if (dst != NULL)
        *dst = *src;
    if (src->nchildren != 0)
        arr = (tp_child_spec *)take(g, src->nchildren * sizeof(*arr));
    for (size_t i = 0; i < src->nchildren; i++) {
        if (arr != NULL)
            arr[i] = src->children[i];
        put_child_extras(g, arr != NULL ? &arr[i] : NULL, &src->children[i]);
    }
    if (dst != NULL) {
        dst->children = arr;
        dst->child_template = src->child_template;
    }
    put_child_extras(g, dst != NULL ? &dst->child_template : NULL,
                     &src->child_template);
    return dst;
}

static void
put_child(struct img *g, const tp_child_spec *src)
{
    tp_child_spec *dst = (tp_child_spec *)take(g, sizeof(*dst));

    if (dst != NULL)
        *dst = *src;
    put_child_extras(g, dst, src);
}

size_t
tp__child_spec_size(const tp_child_spec *c)
{
    struct img g = {NULL, 0};

    put_child(&g, c);
    return g.off;
}

int
tp__child_spec_dup(const tp_child_spec *c, tp_child_spec **out)
{
    struct img g = {NULL, 0};

    if (child_check(c, false, 0) != 0)
        return -EINVAL;
    put_child(&g, c);
    g.base = tp__malloc(g.off);
    if (g.base == NULL)
        return -ENOMEM;
    g.off = 0;
    put_child(&g, c);
    *out = (tp_child_spec *)g.base;
    return 0;
}

int
tp__sup_spec_dup(const tp_sup_spec *s, tp_sup_spec **out)
{
    struct img g = {NULL, 0};

    if (sup_check(s, 0) != 0)
        return -EINVAL;
    put_sup(&g, s);
    g.base = tp__malloc(g.off);
    if (g.base == NULL)
        return -ENOMEM;
    g.off = 0;
    *out = put_sup(&g, s);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Rebasing a moved image                                                 */

struct rebase {
    uintptr_t old_base, new_base;
    size_t size;
};

/* Moves *p into the new image; false if it pointed outside the old one or
 * the n bytes there do not fit. */
static bool
move_ptr(const struct rebase *r, void **p, size_t n)
{
    uintptr_t v = (uintptr_t)*p;

    if (v < r->old_base || v - r->old_base > r->size ||
        n > r->size - (v - r->old_base))
        return false;
    *p = (void *)(r->new_base + (v - r->old_base));
    return true;
}

static bool
move_str(const struct rebase *r, const char **s)
{
    void *p = (void *)*s;
    size_t left;

    if (p == NULL)
        return true;
    if (!move_ptr(r, &p, 1))
        return false;
    left = r->size - ((uintptr_t)p - r->new_base);
    if (memchr(p, '\0', left) == NULL)
        return false;
    *s = p;
    return true;
}

static bool rebase_sup(const struct rebase *r, tp_sup_spec **sp, int depth);

static bool
rebase_child(const struct rebase *r, tp_child_spec *c, int depth)
{
    if (!move_str(r, &c->id) || !move_str(r, &c->opts.name))
        return false;
    if (is_sup(c) && c->arg != NULL) {
        tp_sup_spec *sub = c->arg;
        if (!rebase_sup(r, &sub, depth + 1))
            return false;
        c->arg = sub;
    }
    return true;
}

static bool
rebase_sup(const struct rebase *r, tp_sup_spec **sp, int depth)
{
    void *p = *sp, *arr;
    tp_sup_spec *s;

    if (depth > TP__SPEC_DEPTH_MAX || !move_ptr(r, &p, sizeof(*s)))
        return false;
    s = *sp = p;
    arr = (void *)s->children;
    if (s->nchildren > r->size / sizeof(tp_child_spec))
        return false;
    if (s->nchildren != 0 &&
        !move_ptr(r, &arr, s->nchildren * sizeof(tp_child_spec)))
        return false;
    s->children = s->nchildren != 0 ? arr : NULL;
    for (size_t i = 0; i < s->nchildren; i++) {
        if (!rebase_child(r, (tp_child_spec *)&s->children[i], depth))
            return false;
    }
    return rebase_child(r, &s->child_template, depth);
}

int
tp__child_spec_rebase(tp_child_spec *c, size_t size, uintptr_t old_base)
{
    struct rebase r = {old_base, (uintptr_t)c, size};

    if (size < sizeof(*c) || old_base == 0 || old_base + size < old_base)
        return -EINVAL;
    return rebase_child(&r, c, 0) ? 0 : -EINVAL;
}
