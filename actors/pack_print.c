/*
 * actors/pack_print.c - MessagePack to compact JSON-like text, for logs and
 * the console's message trace.
 *
 * The printer walks the bytes directly (no decoding, no allocation) and
 * writes into the caller's buffer. It does not need a complete payload: a
 * prefix (a traced message is cut at TP_TRACE_MAX_DATA bytes) prints as
 * far as it goes. Work is bounded by the payload's length and the
 * buffer's size, never by the counts the payload announces: every element
 * printed consumes at least one input byte, and printing stops when the
 * buffer is full.
 */
#include "actor_int.h"
#include "pack_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ELLIPSIS "..."

struct out {
    char *buf;
    size_t size; /* of buf; text <= size - 1 */
    size_t pos;
    bool full;
};

struct in {
    const uint8_t *p, *end;
};

/* ---------------------------------------------------------------------- */
/* Output                                                                  */

/* Ends the text with "..." (over its last bytes if needed, backing off to
 * a UTF-8 character boundary) and stops all further output. */
static void
out_truncate(struct out *o)
{
    size_t room = sizeof(ELLIPSIS) - 1;

    if (o->full || o->size == 0)
        goto done;
    if (o->size - 1 < room)
        room = o->size - 1;
    if (o->pos > o->size - 1 - room) {
        /* Cut into the text: not inside a UTF-8 character. */
        o->pos = o->size - 1 - room;
        while (o->pos > 0 && ((uint8_t)o->buf[o->pos] & 0xc0) == 0x80)
            o->pos--;
    }
    memcpy(o->buf + o->pos, ELLIPSIS, room);
    o->pos += room;
done:
    o->full = true;
}

static bool
out_put(struct out *o, const char *s, size_t n)
{
    if (o->full)
        return false;
    if (o->size == 0 || n > o->size - 1 - o->pos) {
        out_truncate(o);
        return false;
    }
    memcpy(o->buf + o->pos, s, n);
    o->pos += n;
    return true;
}

static bool
out_str(struct out *o, const char *s)
{
    return out_put(o, s, strlen(s));
}

static bool TP_PRINTF(2, 3) out_fmt(struct out *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    return out_put(o, tmp, n < 0 ? 0 : (size_t)n);
}

/* ---------------------------------------------------------------------- */
/* Scalars                                                                 */

/* Shortest text that reads back as the same value, always marked as a
 * float (a fraction or an exponent). */
static bool
print_float(struct out *o, double v, bool f32)
{
    char tmp[40];

    if (isnan(v))
        return out_str(o, "NaN");
    if (isinf(v))
        return out_str(o, v < 0 ? "-Infinity" : "Infinity");
    snprintf(tmp, sizeof(tmp), "%.*g", f32 ? 7 : 15, v);
    if (f32 ? (float)strtod(tmp, NULL) != (float)v : strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.*g", f32 ? 9 : 17, v);
    if (strpbrk(tmp, ".e") == NULL) {
        size_t n = strlen(tmp); /* at most 24 of the 40 bytes */
        snprintf(tmp + n, sizeof(tmp) - n, ".0");
    }
    return out_str(o, tmp);
}

static bool
print_scalar(struct out *o, const struct tp__mp_head *h)
{
    switch (h->kind) {
    case TP__MP_NIL:
        return out_str(o, "null");
    case TP__MP_BOOL:
        return out_str(o, h->u ? "true" : "false");
    case TP__MP_UINT:
        return out_fmt(o, "%llu", (unsigned long long)h->u);
    case TP__MP_INT:
        return out_fmt(o, "%lld", (long long)h->i);
    default:
        return print_float(o, h->f, h->kind == TP__MP_F32);
    }
}

/* ---------------------------------------------------------------------- */
/* Strings and binaries                                                    */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0. */
static size_t
utf8_len(const uint8_t *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0xc2 || s[0] > 0xf4)
        return 0;
    len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
    if (len > n)
        return 0;
    cp = s[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    /* Overlong forms, surrogates and beyond U+10FFFF are not UTF-8. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* One character of a string at s (n bytes left); returns bytes used. */
static size_t
print_char(struct out *o, const uint8_t *s, size_t n)
{
    static const char esc[] = "\"\\\b\f\n\r\t";
    static const char name[] = "\"\\bfnrt";
    const char *e;
    size_t len;

    if (s[0] >= 0x20 && s[0] < 0x7f) {
        e = strchr(esc, s[0]); /* s[0] >= 0x20: never the terminator */
        if (e != NULL && e < esc + 2)
            out_fmt(o, "\\%c", name[e - esc]);
        else
            out_put(o, (const char *)s, 1);
        return 1;
    }
    if (s[0] < 0x20 && s[0] != 0 && (e = strchr(esc, s[0])) != NULL) {
        out_fmt(o, "\\%c", name[e - esc]);
        return 1;
    }
    if (s[0] < 0x80) {
        out_fmt(o, "\\u%04x", s[0]);
        return 1;
    }
    if ((len = utf8_len(s, n)) != 0) {
        out_put(o, (const char *)s, len);
        return len;
    }
    out_fmt(o, "\\x%02x", s[0]);
    return 1;
}

/* A string; closed only when it is all there. */
static void
print_str(struct out *o, const uint8_t *s, size_t n, bool whole)
{
    out_put(o, "\"", 1);
    for (size_t i = 0; i < n && !o->full;)
        i += print_char(o, s + i, n - i);
    if (whole)
        out_put(o, "\"", 1);
}

static void
print_hex(struct out *o, const uint8_t *s, size_t n, bool whole)
{
    static const char digits[] = "0123456789abcdef";

    out_put(o, "h'", 2);
    for (size_t i = 0; i < n && !o->full; i++) {
        char two[2] = {digits[s[i] >> 4], digits[s[i] & 15]};
        out_put(o, two, 2);
    }
    if (whole)
        out_put(o, "'", 1);
}

/* A body of h->u bytes; those present are printed even if cut short. */
static int
print_body(struct out *o, struct in *in, const struct tp__mp_head *h)
{
    size_t have = (size_t)(in->end - in->p);
    size_t n = h->u < have ? (size_t)h->u : have;
    bool whole = n == h->u;

    if (h->kind == TP__MP_EXT)
        out_fmt(o, "ext(%d,", h->ext);
    if (h->kind == TP__MP_STR)
        print_str(o, in->p, n, whole);
    else
        print_hex(o, in->p, n, whole);
    if (h->kind == TP__MP_EXT && whole)
        out_put(o, ")", 1);
    in->p += n;
    return whole ? 0 : -ENODATA;
}

/* ---------------------------------------------------------------------- */
/* Values                                                                  */

static int print_value(struct out *o, struct in *in, unsigned depth);

/* Elements of an array (map: pairs), stopping at the end of the input. */
static int
print_items(struct out *o, struct in *in, const struct tp__mp_head *h,
            unsigned depth)
{
    bool map = h->kind == TP__MP_MAP;
    int err = 0;

    out_put(o, map ? "{" : "[", 1);
    for (uint64_t i = 0; i < h->u && err == 0 && !o->full; i++) {
        if (i != 0)
            out_put(o, ",", 1);
        err = print_value(o, in, depth + 1);
        if (map && err == 0) {
            out_put(o, ":", 1);
            err = print_value(o, in, depth + 1);
        }
    }
    if (err == 0)
        out_put(o, map ? "}" : "]", 1);
    return err;
}

/* Recursion is bounded by TP_PACK_MAX_DEPTH. */
static int
print_value(struct out *o, struct in *in, unsigned depth)
{
    struct tp__mp_head h;
    int n;

    if (in->p == in->end)
        return -ENODATA;
    if ((n = tp__mp_head(in->p, in->end, &h)) < 0)
        return n;
    in->p += n;
    if (tp__mp_has_body(&h))
        return print_body(o, in, &h);
    if (h.kind != TP__MP_ARRAY && h.kind != TP__MP_MAP) {
        print_scalar(o, &h);
        return 0;
    }
    if (depth >= TP_PACK_MAX_DEPTH)
        return -E2BIG;
    return print_items(o, in, &h, depth);
}

int
tp_pack_print(const void *data, size_t len, char *buf, size_t size)
{
    /* The result is an int: cap the text at INT_MAX bytes. */
    struct out o = {buf, size > INT_MAX ? (size_t)INT_MAX : size, 0, false};
    struct in in;
    int err;

    if ((buf == NULL && size != 0) || (data == NULL && len != 0))
        return -EINVAL;
    in.p = data != NULL ? data : (const void *)""; /* no NULL + 0 */
    in.end = in.p + len;
    err = print_value(&o, &in, 0);
    if (err == 0 && !o.full && in.p != in.end)
        err = -EBADMSG; /* bytes after the value */
    if (err != 0 || o.full)
        out_truncate(&o);
    if (size != 0)
        buf[o.pos] = '\0';
    if (err != 0)
        return err;
    return o.full ? -ENOBUFS : (int)o.pos;
}
