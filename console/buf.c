/*
 * console/buf.c - the bounded output buffer every console reply is built
 * in, with the two string encodings the console writes: JSON strings and
 * one-line text (control bytes escaped, so a name can never forge a line).
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void
tp__cbuf_init(struct tp__cbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void
tp__cbuf_free(struct tp__cbuf *b)
{
    tp__free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->overflow = false;
}

void
tp__cbuf_reset(struct tp__cbuf *b)
{
    b->len = 0;
    b->overflow = false;
}

static int
reserve(struct tp__cbuf *b, size_t extra)
{
    size_t need = b->len + extra, cap;
    char *p;

    if (need > b->max) {
        b->overflow = true;
        return -ENOBUFS;
    }
    if (need <= b->cap)
        return 0;
    cap = b->cap != 0 ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max)
        cap = b->max;
    p = tp__realloc(b->p, cap);
    if (p == NULL) {
        b->overflow = true;
        return -ENOMEM;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

int
tp__cbuf_put(struct tp__cbuf *b, const void *data, size_t len)
{
    int err;

    if (len == 0)
        return 0;
    if ((err = reserve(b, len)) != 0)
        return err;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

int
tp__cbuf_puts(struct tp__cbuf *b, const char *s)
{
    return tp__cbuf_put(b, s, strlen(s));
}

int
tp__cbuf_printf(struct tp__cbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n, err;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof(small))
        return tp__cbuf_put(b, small, (size_t)n);
    /* Long output: format straight into the buffer. */
    if ((err = reserve(b, (size_t)n + 1)) != 0)
        return err;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int
tp__cbuf_pad(struct tp__cbuf *b, char c, size_t n)
{
    int err;

    if (n == 0)
        return 0;
    if ((err = reserve(b, n)) != 0)
        return err;
    memset(b->p + b->len, c, n);
    b->len += n;
    return 0;
}

void
tp__cbuf_consume(struct tp__cbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    size_t k;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0)
        k = 2, cp = s[0] & 0x1f;
    else if ((s[0] & 0xf0) == 0xe0)
        k = 3, cp = s[0] & 0x0f;
    else if ((s[0] & 0xf8) == 0xf0)
        k = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
    if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
        (k == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

static int
json_char(struct tp__cbuf *b, unsigned char c)
{
    switch (c) {
    case '"':
        return tp__cbuf_put(b, "\\\"", 2);
    case '\\':
        return tp__cbuf_put(b, "\\\\", 2);
    case '\n':
        return tp__cbuf_put(b, "\\n", 2);
    case '\r':
        return tp__cbuf_put(b, "\\r", 2);
    case '\t':
        return tp__cbuf_put(b, "\\t", 2);
    default:
        if (c < 0x20 || c == 0x7f)
            return tp__cbuf_printf(b, "\\u%04x", c);
        return tp__cbuf_put(b, &c, 1);
    }
}

int
tp__cbuf_json_str(struct tp__cbuf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    tp__cbuf_put(b, "\"", 1);
    while (i < len) {
        size_t k = utf8_len(u + i, len - i);
        if (k == 1)
            json_char(b, u[i]);
        else if (k == 0)
            tp__cbuf_put(b, "\\ufffd", 6); /* invalid byte */
        else
            tp__cbuf_put(b, u + i, k);
        i += k != 0 ? k : 1;
    }
    return tp__cbuf_put(b, "\"", 1);
}

int
tp__cbuf_text_str(struct tp__cbuf *b, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        size_t k = utf8_len(u + i, len - i);
        if (k == 1 && u[i] >= 0x20 && u[i] != 0x7f)
            tp__cbuf_put(b, u + i, 1);
        else if (k <= 1)
            tp__cbuf_printf(b, "\\x%02x", u[i]);
        else
            tp__cbuf_put(b, u + i, k);
        i += k > 1 ? k : 1;
    }
    return b->overflow ? -ENOBUFS : 0;
}
