/*
 * console/promcheck.c - strict Prometheus text format (0.0.4) parser, see
 * promcheck.h. Plain C, no runtime: a test helper and a reference for what
 * the console writes. Rules checked:
 *  - every line ends with '\n'; comments are "# HELP name text", "# TYPE
 *    name type" or free "# ..." text; blank lines are allowed;
 *  - names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 *    and do not start with "__"; label values use only \\ \" \n escapes and
 *    are valid UTF-8; a label appears once per sample;
 *  - values are Go floats (decimal, NaN, +Inf, -Inf); timestamps integers;
 *  - one HELP and one TYPE per family, TYPE before the family's samples,
 *    the family's samples contiguous, no series twice;
 *  - lint: HELP for every family, counters named *_total, histogram
 *    buckets with le, cumulative, ending in le="+Inf" equal to _count,
 *    _sum and _count present.
 */
#include "promcheck.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FAM    4096
#define MAX_SERIES 65536
#define MAX_LABELS 32
#define NAME_MAX_  256
#define LINE_MAX_  65536

struct fam {
    char name[NAME_MAX_];
    char type[16];
    bool help, typed, done, has_samples;
    /* histogram bookkeeping (one label set at a time, no other labels
     * than le supported for the cumulative check) */
    double last_bucket, inf_bucket, count;
    bool saw_inf, saw_sum, saw_count, saw_bucket;
};

struct st {
    struct fam fam[MAX_FAM];
    int nfam, cur;
    char **series;
    int nseries;
    char *err;
    size_t errcap;
    int line;
};

static int
fail(struct st *s, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(s->err, s->errcap, "line %d: ", s->line);

    va_start(ap, fmt);
    if (n > 0 && (size_t)n < s->errcap)
        vsnprintf(s->err + n, s->errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static bool
name_ok(const char *p, size_t n, bool label)
{
    if (n == 0 || n >= NAME_MAX_)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = isalpha((unsigned char)c) || c == '_' ||
                  (!label && c == ':') || (i > 0 && isdigit((unsigned char)c));
        if (!ok)
            return false;
    }
    return !(label && n >= 2 && p[0] == '_' && p[1] == '_');
}

static size_t
name_len(const char *p, const char *end)
{
    size_t n = 0;

    while (p + n < end &&
           (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == ':'))
        n++;
    return n;
}

static struct fam *
find(struct st *s, const char *name)
{
    for (int i = 0; i < s->nfam; i++)
        if (strcmp(s->fam[i].name, name) == 0)
            return &s->fam[i];
    return NULL;
}

static struct fam *
get(struct st *s, const char *name)
{
    struct fam *f = find(s, name);

    if (f != NULL || s->nfam == MAX_FAM)
        return f;
    f = &s->fam[s->nfam++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

static bool
parse_value(const char *p, size_t n, double *v)
{
    char buf[64], *end;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (strcmp(buf, "NaN") == 0 || strcmp(buf, "+Inf") == 0 ||
        strcmp(buf, "-Inf") == 0 || strcmp(buf, "Inf") == 0) {
        *v = buf[0] == 'N' ? NAN : buf[0] == '-' ? -INFINITY : INFINITY;
        return true;
    }
    for (size_t i = 0; i < n; i++)
        if (!(isdigit((unsigned char)buf[i]) || strchr("+-.eE", buf[i])))
            return false; /* no hex floats, no "nan"/"inf" spellings */
    errno = 0;
    *v = strtod(buf, &end);
    return *end == '\0' && errno == 0;
}

static bool
parse_ts(const char *p, size_t n, long long *ts)
{
    char buf[32], *end;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    errno = 0;
    *ts = strtoll(buf, &end, 10);
    return *end == '\0' && errno == 0 &&
           (isdigit((unsigned char)buf[0]) || buf[0] == '-');
}

static const char *
skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static int end_family(struct st *s, struct fam *f);

/* ---- comments ----------------------------------------------------------*/

static int
comment(struct st *s, const char *p, const char *end)
{
    const char *kw, *nm;
    size_t kn, nn;
    struct fam *f;
    char name[NAME_MAX_];

    p = skip_ws(p + 1, end);
    kw = p;
    while (p < end && *p != ' ' && *p != '\t')
        p++;
    kn = (size_t)(p - kw);
    if (!((kn == 4 && memcmp(kw, "HELP", 4) == 0) ||
          (kn == 4 && memcmp(kw, "TYPE", 4) == 0)))
        return 0; /* a free comment */
    p = skip_ws(p, end);
    nm = p;
    nn = name_len(p, end);
    if (!name_ok(nm, nn, false) ||
        (nm + nn < end && nm[nn] != ' ' && nm[nn] != '\t'))
        return fail(s, "bad metric name in %.4s", kw);
    memcpy(name, nm, nn);
    name[nn] = '\0';
    p = skip_ws(nm + nn, end);
    if ((f = get(s, name)) == NULL)
        return fail(s, "too many families");
    if (f->done)
        return fail(s, "%.4s for %s after its family ended", kw, name);
    /* A HELP or TYPE for another family ends the current one. */
    if (s->cur >= 0 && &s->fam[s->cur] != f) {
        if (end_family(s, &s->fam[s->cur]) != 0)
            return -1;
        s->cur = -1;
    }
    if (kw[0] == 'H') {
        if (f->help)
            return fail(s, "second HELP for %s", name);
        for (const char *q = p; q < end; q++)
            if (*q == '\\' && (q + 1 == end || (q[1] != '\\' && q[1] != 'n')))
                return fail(s, "bad escape in HELP for %s", name);
            else if (*q == '\\')
                q++;
        f->help = true;
        return 0;
    }
    if (f->typed)
        return fail(s, "second TYPE for %s", name);
    if (f->has_samples)
        return fail(s, "TYPE for %s after its samples", name);
    if (!((end - p == 7 && memcmp(p, "counter", 7) == 0) ||
          (end - p == 5 && memcmp(p, "gauge", 5) == 0) ||
          (end - p == 9 && memcmp(p, "histogram", 9) == 0) ||
          (end - p == 7 && memcmp(p, "summary", 7) == 0) ||
          (end - p == 7 && memcmp(p, "untyped", 7) == 0)))
        return fail(s, "unknown type for %s", name);
    snprintf(f->type, sizeof(f->type), "%.*s", (int)(end - p), p);
    f->typed = true;
    if (strcmp(f->type, "counter") == 0 &&
        (nn < 6 || strcmp(name + nn - 6, "_total") != 0))
        return fail(s, "counter %s should end in _total", name);
    return 0;
}

/* ---- labels --------------------------------------------------------------*/

struct label {
    char name[NAME_MAX_];
    char value[1024];
};

static int
label_cmp(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->name,
                  ((const struct label *)b)->name);
}

static bool
utf8_ok(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;

    while (*u) {
        int k = *u < 0x80             ? 1
                : (*u & 0xe0) == 0xc0 ? 2
                : (*u & 0xf0) == 0xe0 ? 3
                : (*u & 0xf8) == 0xf0 ? 4
                                      : 0;
        if (k == 0)
            return false;
        for (int i = 1; i < k; i++)
            if ((u[i] & 0xc0) != 0x80)
                return false;
        u += k;
    }
    return true;
}

static const char *
label_value(struct st *s, const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;

    if (p >= end || *p != '"')
        return fail(s, "label value must be quoted"), NULL;
    for (p++; p < end && *p != '"'; p++) {
        char c = *p;
        if (c == '\\') {
            if (++p == end || (*p != '\\' && *p != '"' && *p != 'n'))
                return fail(s, "bad escape in label value"), NULL;
            c = *p == 'n' ? '\n' : *p;
        }
        if (n + 1 >= cap)
            return fail(s, "label value too long"), NULL;
        out[n++] = c;
    }
    if (p == end)
        return fail(s, "unterminated label value"), NULL;
    out[n] = '\0';
    if (!utf8_ok(out))
        return fail(s, "label value is not UTF-8"), NULL;
    return p + 1;
}

static const char *
labels(struct st *s, const char *p, const char *end, struct label *l, int *nl)
{
    *nl = 0;
    p = skip_ws(p + 1, end);
    while (p < end && *p != '}') {
        size_t n = name_len(p, end);
        if (!name_ok(p, n, true))
            return fail(s, "bad label name"), NULL;
        if (*nl == MAX_LABELS)
            return fail(s, "too many labels"), NULL;
        snprintf(l[*nl].name, sizeof(l[0].name), "%.*s", (int)n, p);
        p = skip_ws(p + n, end);
        if (p == end || *p != '=')
            return fail(s, "expected '=' after label name"), NULL;
        p = skip_ws(p + 1, end);
        if ((p = label_value(s, p, end, l[*nl].value, sizeof(l[0].value))) ==
            NULL)
            return NULL;
        for (int i = 0; i < *nl; i++)
            if (strcmp(l[i].name, l[*nl].name) == 0)
                return fail(s, "label %s twice", l[i].name), NULL;
        (*nl)++;
        p = skip_ws(p, end);
        if (p < end && *p == ',')
            p = skip_ws(p + 1, end);
        else if (p < end && *p != '}')
            return fail(s, "expected ',' or '}'"), NULL;
    }
    if (p == end)
        return fail(s, "unterminated label set"), NULL;
    return p + 1;
}

/* ---- samples -------------------------------------------------------------*/

static bool
suffix(const char *name, const char *suf, char *base)
{
    size_t n = strlen(name), k = strlen(suf);

    if (n <= k || strcmp(name + n - k, suf) != 0)
        return false;
    memcpy(base, name, n - k);
    base[n - k] = '\0';
    return true;
}

/* The family a sample belongs to: histogram/summary parts map to their
 * base name when that family was declared. */
static struct fam *
family_of(struct st *s, const char *name)
{
    static const char *const sufs[] = {"_bucket", "_sum", "_count"};
    char base[NAME_MAX_];

    for (int i = 0; i < 3; i++) {
        struct fam *f;
        if (suffix(name, sufs[i], base) && (f = find(s, base)) != NULL &&
            (strcmp(f->type, "histogram") == 0 ||
             (i > 0 && strcmp(f->type, "summary") == 0)))
            return f;
    }
    return get(s, name);
}

static int
histogram(struct st *s, struct fam *f, const char *name, struct label *l,
          int nl, double v)
{
    const char *le = NULL;

    for (int i = 0; i < nl; i++)
        if (strcmp(l[i].name, "le") == 0)
            le = l[i].value;
    if (strstr(name, "_bucket") == name + strlen(name) - 7) {
        double b;
        if (le == NULL || !parse_value(le, strlen(le), &b))
            return fail(s, "bucket without a valid le");
        if (f->saw_bucket && v < f->last_bucket)
            return fail(s, "buckets of %s not cumulative", f->name);
        f->saw_bucket = true;
        f->last_bucket = v;
        if (isinf(b) && b > 0)
            f->saw_inf = true, f->inf_bucket = v;
    } else if (strstr(name, "_count") == name + strlen(name) - 6) {
        f->saw_count = true;
        f->count = v;
    } else if (strstr(name, "_sum") == name + strlen(name) - 4) {
        f->saw_sum = true;
    } else {
        return fail(s, "histogram %s has a plain sample", f->name);
    }
    return 0;
}

static int
end_family(struct st *s, struct fam *f)
{
    if (!f->help)
        return fail(s, "no HELP for %s", f->name);
    if (strcmp(f->type, "histogram") == 0 && f->has_samples &&
        (!f->saw_inf || !f->saw_sum || !f->saw_count ||
         f->inf_bucket != f->count))
        return fail(s, "histogram %s incomplete or inconsistent", f->name);
    f->done = true;
    return 0;
}

static int
series_add(struct st *s, const char *name, const char *canon)
{
    size_t n = strlen(name) + strlen(canon) + 2;
    char *k = malloc(n);

    if (k == NULL || s->nseries == MAX_SERIES)
        return free(k), fail(s, "too many series");
    snprintf(k, n, "%s{%s", name, canon);
    for (int i = 0; i < s->nseries; i++)
        if (strcmp(s->series[i], k) == 0)
            return free(k), fail(s, "series %s{%s} twice", name, canon);
    s->series[s->nseries++] = k;
    return 0;
}

static void
canonical(struct label *l, int nl, char *out, size_t cap)
{
    size_t n = 0;

    qsort(l, (size_t)nl, sizeof(*l), label_cmp);
    out[0] = '\0';
    for (int i = 0; i < nl && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s=\"%s\"", i ? "," : "",
                              l[i].name, l[i].value);
}

static int
sample(struct st *s, const char *p, const char *end,
       void (*fn)(void *, const struct tp_promcheck_sample *), void *user)
{
    static struct label l[MAX_LABELS];
    char name[NAME_MAX_], canon[8192];
    size_t n = name_len(p, end);
    struct tp_promcheck_sample smp = {0};
    struct fam *f;
    const char *v;
    int nl = 0;

    if (!name_ok(p, n, false))
        return fail(s, "bad metric name");
    snprintf(name, sizeof(name), "%.*s", (int)n, p);
    p += n;
    if (p < end && *p == '{' && (p = labels(s, p, end, l, &nl)) == NULL)
        return -1;
    if (p == end || (*p != ' ' && *p != '\t'))
        return fail(s, "expected a space before the value");
    p = skip_ws(p, end);
    for (v = p; p < end && *p != ' ' && *p != '\t'; p++)
        ;
    if (!parse_value(v, (size_t)(p - v), &smp.value))
        return fail(s, "bad value '%.*s'", (int)(p - v), v);
    p = skip_ws(p, end);
    if (p < end) {
        if (!parse_ts(p, (size_t)(end - p), &smp.ts))
            return fail(s, "bad timestamp");
        smp.has_ts = true;
    }
    if ((f = family_of(s, name)) == NULL)
        return fail(s, "too many families");
    if (f->done)
        return fail(s, "samples of %s are not contiguous", f->name);
    if (s->cur >= 0 && &s->fam[s->cur] != f &&
        end_family(s, &s->fam[s->cur]) != 0)
        return -1;
    s->cur = (int)(f - s->fam);
    f->has_samples = true;
    if (!f->typed)
        snprintf(f->type, sizeof(f->type), "untyped");
    if (strcmp(f->type, "histogram") == 0 &&
        histogram(s, f, name, l, nl, smp.value) != 0)
        return -1;
    canonical(l, nl, canon, sizeof(canon));
    if (series_add(s, name, canon) != 0)
        return -1;
    smp.name = name, smp.family = f->name, smp.type = f->type;
    smp.labels = canon;
    if (fn != NULL)
        fn(user, &smp);
    return 0;
}

int
tp_promcheck(const char *text, size_t len,
             void (*fn)(void *, const struct tp_promcheck_sample *), void *user,
             char *err, size_t errcap)
{
    struct st *s = calloc(1, sizeof(*s));
    const char *p = text, *end = text + len;
    int rc = 0, count = 0;

    if (s == NULL)
        return -1;
    s->series = calloc(MAX_SERIES, sizeof(char *));
    s->err = err, s->errcap = errcap, s->cur = -1;
    if (len == 0 || text[len - 1] != '\n')
        rc = fail(s, "the text must end with a newline");
    while (rc == 0 && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        s->line++;
        if (nl - p > LINE_MAX_ || memchr(p, '\0', (size_t)(nl - p)) != NULL)
            rc = fail(s, "line too long or NUL byte");
        else if (skip_ws(p, nl) == nl)
            rc = 0;
        else if (*skip_ws(p, nl) == '#')
            rc = comment(s, skip_ws(p, nl), nl);
        else
            rc = sample(s, p, nl, fn, user), count++;
        p = nl + 1;
    }
    for (int i = 0; rc == 0 && i < s->nfam; i++)
        if (!s->fam[i].done && s->fam[i].has_samples)
            rc = end_family(s, &s->fam[i]);
    for (int i = 0; i < s->nseries; i++)
        free(s->series[i]);
    free(s->series);
    free(s);
    return rc == 0 ? count : -1;
}
