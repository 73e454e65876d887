/*
 * console/emit.c - writes one reply either as text for people or as JSON.
 *
 * Commands describe their reply once (objects, arrays, scalars). In JSON
 * mode that is the document. In text mode an object becomes aligned
 * "key   value" lines (nested objects indented), an array of objects
 * becomes a table whose columns are aligned once all rows are known, and
 * an array of scalars becomes one "key  a b c" line. Rows are collected in
 * a bounded buffer, like everything else the console builds.
 */
#include "console_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define KEY_WIDTH 18
#define MAX_ROWS  100000

struct tp__em_table {
    int ncols;
    char hdr[TP__EM_COLS][32];
    bool num[TP__EM_COLS];
    struct tp__cbuf cells; /* NUL-terminated cells */
    uint32_t *off;         /* nrows * ncols cell offsets, UINT32_MAX = "" */
    size_t nrows, cap;
    bool in_row;
    bool blank_before; /* a titled table after other output */
    int indent;
};

void
tp__em_init(struct tp__em *e, struct tp__cbuf *b, bool json)
{
    memset(e, 0, sizeof(*e));
    e->b = b;
    e->json = json;
}

static int
indent_of(const struct tp__em *e)
{
    return e->depth > 1 ? 2 * (e->depth - 1) : 0;
}

/* ---- JSON ------------------------------------------------------------ */

static void
json_key(struct tp__em *e, const char *key)
{
    if (e->depth > 0) {
        if (!e->first[e->depth])
            tp__cbuf_put(e->b, ",", 1);
        e->first[e->depth] = false;
    }
    if (key != NULL && e->depth > 0 && !e->is_arr[e->depth]) {
        tp__cbuf_json_str(e->b, key, strlen(key));
        tp__cbuf_put(e->b, ":", 1);
    }
}

static void
json_open(struct tp__em *e, const char *key, bool arr)
{
    json_key(e, key);
    tp__cbuf_put(e->b, arr ? "[" : "{", 1);
    if (e->depth + 1 < TP__EM_DEPTH) {
        e->depth++;
        e->first[e->depth] = true;
        e->is_arr[e->depth] = arr;
    }
}

static void
json_close(struct tp__em *e)
{
    tp__cbuf_put(e->b, e->is_arr[e->depth] ? "]" : "}", 1);
    if (e->depth > 0)
        e->depth--;
}

/* ---- text tables ------------------------------------------------------ */

static struct tp__em_table *
table_new(int indent)
{
    struct tp__em_table *t = tp__calloc(1, sizeof(*t));

    if (t != NULL) {
        tp__cbuf_init(&t->cells, 4u << 20);
        t->indent = indent;
    }
    return t;
}

static void
table_free(struct tp__em_table *t)
{
    if (t == NULL)
        return;
    tp__cbuf_free(&t->cells);
    tp__free(t->off);
    tp__free(t);
}

static int
table_row(struct tp__em_table *t)
{
    size_t need = (t->nrows + 1) * TP__EM_COLS;

    if (t->nrows >= MAX_ROWS)
        return -ENOBUFS;
    if (need > t->cap) {
        size_t cap = t->cap != 0 ? t->cap * 2 : 64 * TP__EM_COLS;
        uint32_t *off = tp__realloc(t->off, cap * sizeof(*off));
        if (off == NULL)
            return -ENOMEM;
        t->off = off;
        t->cap = cap;
    }
    memset(t->off + t->nrows * TP__EM_COLS, 0xff,
           TP__EM_COLS * sizeof(*t->off));
    t->nrows++;
    t->in_row = true;
    return 0;
}

static int
table_col(struct tp__em_table *t, const char *key, bool num)
{
    for (int i = 0; i < t->ncols; i++)
        if (strcmp(t->hdr[i], key) == 0)
            return i;
    if (t->ncols == TP__EM_COLS)
        return -1;
    snprintf(t->hdr[t->ncols], sizeof(t->hdr[0]), "%s", key);
    t->num[t->ncols] = num;
    return t->ncols++;
}

static void
table_cell(struct tp__em_table *t, const char *key, const char *text,
           size_t len, bool num)
{
    int col;
    size_t at = t->cells.len;

    if (!t->in_row || key == NULL || (col = table_col(t, key, num)) < 0)
        return;
    if (tp__cbuf_text_str(&t->cells, text, len) != 0 ||
        tp__cbuf_put(&t->cells, "", 1) != 0)
        return;
    t->off[(t->nrows - 1) * TP__EM_COLS + col] = (uint32_t)at;
}

static const char *
cell(const struct tp__em_table *t, size_t row, int col)
{
    uint32_t o = t->off[row * TP__EM_COLS + col];

    return o == UINT32_MAX ? "" : t->cells.p + o;
}

static void
upper(char *out, const char *s, size_t cap)
{
    size_t i = 0;

    for (; s[i] != '\0' && i + 1 < cap; i++)
        out[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 32) : s[i];
    out[i] = '\0';
}

static void
table_line(struct tp__cbuf *b, const struct tp__em_table *t, size_t *w,
           const char **vals)
{
    tp__cbuf_pad(b, ' ', (size_t)t->indent);
    for (int c = 0; c < t->ncols; c++) {
        size_t n = strlen(vals[c]);
        bool last = c + 1 == t->ncols;
        if (t->num[c])
            tp__cbuf_pad(b, ' ', w[c] - n);
        tp__cbuf_puts(b, vals[c]);
        if (!t->num[c] && !last)
            tp__cbuf_pad(b, ' ', w[c] - n);
        if (!last)
            tp__cbuf_put(b, "  ", 2);
    }
    tp__cbuf_put(b, "\n", 1);
}

static void
table_render(struct tp__cbuf *b, struct tp__em_table *t)
{
    char hdr[TP__EM_COLS][32];
    const char *vals[TP__EM_COLS];
    size_t w[TP__EM_COLS];

    for (int c = 0; c < t->ncols; c++) {
        upper(hdr[c], t->hdr[c], sizeof(hdr[c]));
        w[c] = strlen(hdr[c]);
        for (size_t r = 0; r < t->nrows; r++) {
            size_t n = strlen(cell(t, r, c));
            w[c] = n > w[c] ? n : w[c];
        }
        vals[c] = hdr[c];
    }
    if (t->ncols == 0)
        return;
    if (t->blank_before)
        tp__cbuf_put(b, "\n", 1);
    table_line(b, t, w, vals);
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++)
            vals[c] = cell(t, r, c);
        table_line(b, t, w, vals);
    }
}

/* ---- text scalars ----------------------------------------------------- */

static void
text_kv(struct tp__em *e, const char *key, const char *text, size_t len)
{
    size_t klen = key != NULL ? strlen(key) : 0;

    tp__cbuf_pad(e->b, ' ', (size_t)indent_of(e));
    if (key != NULL) {
        tp__cbuf_puts(e->b, key);
        tp__cbuf_pad(e->b, ' ', klen < KEY_WIDTH ? KEY_WIDTH - klen : 1);
    }
    tp__cbuf_text_str(e->b, text, len);
    tp__cbuf_put(e->b, "\n", 1);
}

/* In text mode an array is a table (e->table) until its first element
 * turns out to be a scalar; then it is a list printed on one key line
 * (e->list_depth). */
static void
text_scalar(struct tp__em *e, const char *key, const char *text, size_t len,
            bool num)
{
    if (e->table != NULL) {
        if (e->depth == e->table_depth + 1)
            table_cell(e->table, key, text, len, num);
        return; /* deeper values do not show in a table */
    }
    if (e->depth > 0 && e->is_arr[e->depth]) {
        /* A list of scalars: "a b c" after the key line opened by
         * arr_begin. */
        if (!e->first[e->depth])
            tp__cbuf_put(e->b, " ", 1);
        e->first[e->depth] = false;
        tp__cbuf_text_str(e->b, text, len);
        return;
    }
    text_kv(e, key, text, len);
}

static void
scalar(struct tp__em *e, const char *key, const char *text, size_t len,
       bool num, bool quote)
{
    if (!e->json) {
        text_scalar(e, key, text, len, num);
        return;
    }
    json_key(e, key);
    if (quote)
        tp__cbuf_json_str(e->b, text, len);
    else
        tp__cbuf_put(e->b, text, len);
}

/* ---- public ----------------------------------------------------------- */

void
tp__em_obj_begin(struct tp__em *e, const char *key)
{
    if (e->json) {
        json_open(e, key, false);
        return;
    }
    if (e->table != NULL && e->depth == e->table_depth) {
        table_row(e->table);
    } else if (e->table == NULL && key != NULL && e->depth > 0 &&
               !e->is_arr[e->depth]) {
        tp__cbuf_pad(e->b, ' ', (size_t)indent_of(e));
        tp__cbuf_printf(e->b, "%s:\n", key);
    }
    if (e->depth + 1 < TP__EM_DEPTH) {
        e->depth++;
        e->is_arr[e->depth] = false;
        e->first[e->depth] = true;
    }
}

void
tp__em_obj_end(struct tp__em *e)
{
    if (e->json) {
        json_close(e);
        return;
    }
    if (e->depth > 0)
        e->depth--;
    if (e->table != NULL && e->depth == e->table_depth)
        e->table->in_row = false;
}

/* Text mode: an array opens a table at once (its key is kept in the last
 * header slot) and becomes a list if a scalar comes first. */
void
tp__em_arr_begin(struct tp__em *e, const char *key)
{
    if (e->json) {
        json_open(e, key, true);
        return;
    }
    if (e->table == NULL && e->depth + 1 < TP__EM_DEPTH) {
        e->table = table_new(indent_of(e));
        e->table_depth = e->depth + 1;
        if (e->table != NULL)
            e->table->blank_before = key != NULL && e->b->len != 0;
    }
    if (e->depth + 1 < TP__EM_DEPTH) {
        e->depth++;
        e->is_arr[e->depth] = true;
        e->first[e->depth] = true;
    }
    /* Remember the key for the list form. */
    if (e->table != NULL && e->table_depth == e->depth && key != NULL)
        snprintf(e->table->hdr[TP__EM_COLS - 1], sizeof(e->table->hdr[0]), "%s",
                 key);
}

void
tp__em_arr_end(struct tp__em *e)
{
    if (e->json) {
        json_close(e);
        return;
    }
    if (e->table != NULL && e->depth == e->table_depth) {
        if (e->table->nrows != 0)
            table_render(e->b, e->table);
        table_free(e->table);
        e->table = NULL;
    } else if (e->list_depth != 0 && e->depth == e->list_depth) {
        tp__cbuf_put(e->b, "\n", 1);
        e->list_depth = 0;
    }
    if (e->depth > 0)
        e->depth--;
}

/* A scalar as the first element of a text-mode array: the pending table
 * becomes a one-line list ("links   <1.0> <2.0>"). */
static void
list_first_scalar(struct tp__em *e)
{
    struct tp__em_table *t = e->table;
    char name[32];
    size_t n;

    if (e->json || t == NULL || e->depth != e->table_depth || t->nrows != 0)
        return;
    snprintf(name, sizeof(name), "%s", t->hdr[TP__EM_COLS - 1]);
    n = strlen(name);
    table_free(t);
    e->table = NULL;
    e->list_depth = e->depth;
    e->depth--;
    tp__cbuf_pad(e->b, ' ', (size_t)indent_of(e));
    tp__cbuf_puts(e->b, name);
    tp__cbuf_pad(e->b, ' ', n < KEY_WIDTH ? KEY_WIDTH - n : 1);
    e->depth++;
}

static void
value(struct tp__em *e, const char *key, const char *text, size_t len, bool num,
      bool quote)
{
    list_first_scalar(e);
    scalar(e, key, text, len, num, quote);
}

void
tp__em_u64(struct tp__em *e, const char *key, uint64_t v)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "%" PRIu64, v);

    value(e, key, s, (size_t)n, true, false);
}

void
tp__em_i64(struct tp__em *e, const char *key, int64_t v)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "%" PRId64, v);

    value(e, key, s, (size_t)n, true, false);
}

void
tp__em_f64(struct tp__em *e, const char *key, double v, int prec)
{
    char s[64];
    int n;

    if (v != v || v > 1e300 || v < -1e300)
        v = 0; /* JSON has no NaN or infinity */
    n = snprintf(s, sizeof(s), "%.*f", prec, v);
    value(e, key, s, (size_t)n, true, false);
}

void
tp__em_str(struct tp__em *e, const char *key, const char *s)
{
    if (s == NULL)
        s = "";
    value(e, key, s, strlen(s), false, true);
}

void
tp__em_bool(struct tp__em *e, const char *key, bool v)
{
    const char *s = e->json ? (v ? "true" : "false") : (v ? "yes" : "no");

    value(e, key, s, strlen(s), false, false);
}

void
tp__em_none(struct tp__em *e, const char *key)
{
    value(e, key, e->json ? "null" : "-", e->json ? 4 : 1, false, false);
}

void
tp__em_pid(struct tp__em *e, const char *key, tp_pid pid)
{
    char s[32];

    if (pid == TP_PID_NONE) {
        tp__em_none(e, key);
        return;
    }
    tp_pid_format(pid, s, sizeof(s));
    value(e, key, s, strlen(s), false, true);
}

void
tp__em_bytes(struct tp__em *e, const char *key, uint64_t v)
{
    static const char units[] = "KMGTP";
    char s[32];
    double d = (double)v;
    int u = -1;

    if (e->json) {
        tp__em_u64(e, key, v);
        return;
    }
    while (d >= 1024 && u < 4)
        d /= 1024, u++;
    if (u < 0)
        snprintf(s, sizeof(s), "%" PRIu64 "B", v);
    else
        snprintf(s, sizeof(s), "%.1f%ciB", d, units[u]);
    value(e, key, s, strlen(s), true, false);
}

void
tp__em_dur(struct tp__em *e, const char *key, uint64_t ns)
{
    char s[48];
    uint64_t sec = ns / 1000000000u;

    if (e->json) {
        tp__em_f64(e, key, (double)ns / 1e9, 3);
        return;
    }
    if (sec >= 86400)
        snprintf(s, sizeof(s), "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m",
                 sec / 86400, sec / 3600 % 24, sec / 60 % 60);
    else if (sec >= 60)
        snprintf(s, sizeof(s), "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s",
                 sec / 3600, sec / 60 % 60, sec % 60);
    else
        snprintf(s, sizeof(s), "%.3fs", (double)ns / 1e9);
    value(e, key, s, strlen(s), true, false);
}

void
tp__em_note(struct tp__em *e, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    if (e->json)
        return;
    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    tp__cbuf_pad(e->b, ' ', (size_t)indent_of(e));
    tp__cbuf_text_str(e->b, line, strlen(line));
    tp__cbuf_put(e->b, "\n", 1);
}

void
tp__em_discard(struct tp__em *e)
{
    table_free(e->table);
    e->table = NULL;
}
