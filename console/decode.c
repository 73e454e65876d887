/*
 * console/decode.c - shows a msgpack payload as one line of JSON-like text
 * for `trace`. A small walker of its own, bounded by construction: every
 * length is checked against the bytes left before it is used, nesting is
 * limited to MAX_DEPTH, and output goes to a bounded buffer. A payload
 * that is not exactly one msgpack value is reported as not msgpack, and
 * the caller shows it another way.
 */
#include "console_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define MAX_DEPTH 16

struct rd {
    const unsigned char *p;
    size_t n;
};

static int value(struct tp__cbuf *b, struct rd *r, int depth);

static int
take(struct rd *r, size_t k, const unsigned char **out)
{
    if (k > r->n)
        return -EINVAL;
    *out = r->p;
    r->p += k;
    r->n -= k;
    return 0;
}

static int
be(struct rd *r, size_t k, uint64_t *v)
{
    const unsigned char *p;

    if (take(r, k, &p) != 0)
        return -EINVAL;
    *v = 0;
    for (size_t i = 0; i < k; i++)
        *v = *v << 8 | p[i];
    return 0;
}

static int
str(struct tp__cbuf *b, struct rd *r, uint64_t len)
{
    const unsigned char *p;

    if (take(r, len, &p) != 0)
        return -EINVAL;
    return tp__cbuf_json_str(b, (const char *)p, len);
}

static int
opaque(struct tp__cbuf *b, struct rd *r, uint64_t len, const char *what)
{
    const unsigned char *p;

    if (take(r, len, &p) != 0)
        return -EINVAL;
    return tp__cbuf_printf(b, "<%s %" PRIu64 " bytes>", what, len);
}

/* A container of count entries (maps: pairs). Each entry needs at least
 * one byte, so a count above the bytes left is malformed. */
static int
container(struct tp__cbuf *b, struct rd *r, uint64_t count, bool map, int depth)
{
    if (depth >= MAX_DEPTH || count > r->n)
        return -EINVAL;
    tp__cbuf_put(b, map ? "{" : "[", 1);
    for (uint64_t i = 0; i < count; i++) {
        if (i != 0)
            tp__cbuf_put(b, ",", 1);
        if (value(b, r, depth + 1) != 0)
            return -EINVAL;
        if (map && (tp__cbuf_put(b, ":", 1), value(b, r, depth + 1) != 0))
            return -EINVAL;
    }
    return tp__cbuf_put(b, map ? "}" : "]", 1) == 0 ? 0 : -ENOBUFS;
}

static int
number(struct tp__cbuf *b, struct rd *r, unsigned char c)
{
    uint64_t v;
    size_t k = (size_t)1 << (c & 3);

    if (be(r, k, &v) != 0)
        return -EINVAL;
    if (c >= 0xcc && c <= 0xcf)
        return tp__cbuf_printf(b, "%" PRIu64, v);
    if (k == 1)
        return tp__cbuf_printf(b, "%d", (int8_t)v);
    if (k == 2)
        return tp__cbuf_printf(b, "%d", (int16_t)v);
    if (k == 4)
        return tp__cbuf_printf(b, "%" PRId32, (int32_t)v);
    return tp__cbuf_printf(b, "%" PRId64, (int64_t)v);
}

static int
floating(struct tp__cbuf *b, struct rd *r, bool dbl)
{
    uint64_t v;

    if (be(r, dbl ? 8 : 4, &v) != 0)
        return -EINVAL;
    if (dbl) {
        double d;
        memcpy(&d, &v, sizeof(d));
        return tp__cbuf_printf(b, "%.17g", d);
    } else {
        uint32_t u = (uint32_t)v;
        float f;
        memcpy(&f, &u, sizeof(f));
        return tp__cbuf_printf(b, "%.9g", (double)f);
    }
}

/* Lengths for str8/16/32, bin8/16/32, array16/32, map16/32, ext8/16/32. */
static int
sized(struct tp__cbuf *b, struct rd *r, unsigned char c, int depth)
{
    static const unsigned char lsz[] = {
        [0xc4 - 0xc4] = 1, [0xc5 - 0xc4] = 2, [0xc6 - 0xc4] = 4,
        [0xc7 - 0xc4] = 1, [0xc8 - 0xc4] = 2, [0xc9 - 0xc4] = 4,
        [0xd9 - 0xc4] = 1, [0xda - 0xc4] = 2, [0xdb - 0xc4] = 4,
        [0xdc - 0xc4] = 2, [0xdd - 0xc4] = 4, [0xde - 0xc4] = 2,
        [0xdf - 0xc4] = 4};
    const unsigned char *t;
    uint64_t len;

    if (be(r, lsz[c - 0xc4], &len) != 0)
        return -EINVAL;
    if (c >= 0xd9 && c <= 0xdb)
        return str(b, r, len);
    if (c <= 0xc6)
        return opaque(b, r, len, "bin");
    if (c <= 0xc9)
        return take(r, 1, &t) != 0 ? -EINVAL : opaque(b, r, len, "ext");
    return container(b, r, len, c >= 0xde, depth);
}

static int
value(struct tp__cbuf *b, struct rd *r, int depth)
{
    const unsigned char *p;
    unsigned char c;

    if (take(r, 1, &p) != 0)
        return -EINVAL;
    c = *p;
    if (c <= 0x7f)
        return tp__cbuf_printf(b, "%u", c);
    if (c >= 0xe0)
        return tp__cbuf_printf(b, "%d", (int8_t)c);
    if ((c & 0xe0) == 0xa0)
        return str(b, r, c & 0x1f);
    if ((c & 0xf0) == 0x90 || (c & 0xf0) == 0x80)
        return container(b, r, c & 0x0f, (c & 0xf0) == 0x80, depth);
    switch (c) {
    case 0xc0:
        return tp__cbuf_puts(b, "null");
    case 0xc2:
        return tp__cbuf_puts(b, "false");
    case 0xc3:
        return tp__cbuf_puts(b, "true");
    case 0xca:
    case 0xcb:
        return floating(b, r, c == 0xcb);
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext */
        return take(r, 1, &p) != 0
                   ? -EINVAL
                   : opaque(b, r, (uint64_t)1 << (c - 0xd4), "ext");
    default:
        break;
    }
    if (c >= 0xcc && c <= 0xd3)
        return number(b, r, c);
    if ((c >= 0xc4 && c <= 0xc9) || (c >= 0xd9 && c <= 0xdf))
        return sized(b, r, c, depth);
    return -EINVAL; /* 0xc1: never used */
}

int
tp__console_decode(struct tp__cbuf *b, const void *data, size_t len)
{
    struct rd r = {data, len};

    if (len == 0 || value(b, &r, 0) < 0 || r.n != 0 || b->overflow)
        return -EINVAL;
    return 0;
}
