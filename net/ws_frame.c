/*
 * net/ws_frame.c - RFC 6455 frames: an incremental decoder that turns a
 * byte stream (split anywhere) into whole messages and control frames,
 * enforcing the protocol's rules, and the header encoder. Pure: no
 * sockets, no runtime state, so the conformance tests and the fuzz target
 * drive it directly.
 *
 * Why not libwslay: its event context (frame context included) is 8.8 KB
 * per connection, allocated for the connection's life, against a budget
 * of 200 B over TCP; and it hides whether a frame is half-read, so it
 * cannot be freed between messages. This decoder's state is the struct in
 * ws_int.h, inside the connection's WebSocket state; its buffer exists
 * only while a message is incomplete.
 *
 * Rules (section 5): client frames must be masked (server frames not);
 * RSV1-3 must be 0 (no extension is negotiated); opcodes other than
 * 0,1,2,8,9,A fail; control frames must have FIN and at most 125 bytes; a
 * continuation needs a message in progress and a new data frame needs
 * none; a 64-bit length must have its top bit clear. Errors: 1002. A text
 * message must be UTF-8, checked as its bytes arrive: 1007. A message over
 * max: 1009 (known from the header, before its payload arrives). A Close
 * frame's payload is empty or a valid code plus UTF-8 reason.
 */
#include "common/common.h"
#include "ws_int.h"

#include <stdlib.h>
#include <string.h>

#define BUF_MIN  256u
#define PREALLOC 65536u

/* ---------------------------------------------------------------------- */
/* UTF-8                                                                  */

/* state: bits 0-1 continuation bytes still expected, bits 8-15 the lowest
 * and 16-23 the highest value the next one may have (overlongs,
 * surrogates and code points over U+10FFFF are refused through them). */
static uint32_t
lead(uint8_t b, bool *ok)
{
    *ok = true;
    if (b >= 0xc2 && b <= 0xdf)
        return 1u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xe0)
        return 2u | 0xa0u << 8 | 0xbfu << 16;
    if (b == 0xed)
        return 2u | 0x80u << 8 | 0x9fu << 16;
    if (b >= 0xe1 && b <= 0xef)
        return 2u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xf0)
        return 3u | 0x90u << 8 | 0xbfu << 16;
    if (b >= 0xf1 && b <= 0xf3)
        return 3u | 0x80u << 8 | 0xbfu << 16;
    if (b == 0xf4)
        return 3u | 0x80u << 8 | 0x8fu << 16;
    *ok = false;
    return 0;
}

bool
tp__ws_utf8(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t s = *state;
    bool ok = true;

    for (size_t i = 0; i < n; i++) {
        uint8_t b = p[i];
        if ((s & 3u) == 0) {
            if (b < 0x80)
                continue;
            s = lead(b, &ok);
            if (!ok)
                return false;
            continue;
        }
        if (b < ((s >> 8) & 0xffu) || b > ((s >> 16) & 0xffu))
            return false;
        s = (s & 3u) - 1u;
        if (s != 0)
            s |= 0x80u << 8 | 0xbfu << 16;
    }
    *state = s;
    return true;
}

bool
tp__ws_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* ---------------------------------------------------------------------- */
/* Encoding                                                               */

size_t
tp__ws_header(uint8_t *out, int op, bool fin, uint64_t len, const uint8_t *mask)
{
    size_t n = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
    if (len < 126) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xffff) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask != NULL) {
        out[1] |= 0x80;
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* Decoding                                                               */

void
tp__ws_dec_init(struct tp__ws_dec *d, uint32_t max, bool client)
{
    memset(d, 0, sizeof(*d));
    d->max = max;
    d->client = client;
}

void
tp__ws_dec_fini(struct tp__ws_dec *d)
{
    tp__free(d->buf);
    d->buf = NULL;
    d->len = d->cap = d->mlen = 0;
}

static int
reserve(struct tp__ws_dec *d, size_t more)
{
    size_t want = d->len + more, cap;
    char *nb;

    if (want <= d->cap)
        return 0;
    cap = d->cap * 2 > want ? d->cap * 2 : want;
    if (cap < BUF_MIN)
        cap = BUF_MIN;
    if ((nb = tp__realloc(d->buf, cap)) == NULL)
        return 1011;
    d->buf = nb;
    d->cap = cap;
    return 0;
}

/* Header length once its first two bytes are known. */
static uint8_t
header_size(const struct tp__ws_dec *d)
{
    uint8_t n = 2, l7 = d->hdr[1] & 0x7f;

    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    if (d->hdr[1] & 0x80)
        n += 4;
    return n;
}

static uint64_t
header_len(const struct tp__ws_dec *d, uint8_t *pos)
{
    uint8_t l7 = d->hdr[1] & 0x7f;
    uint64_t len = l7;

    *pos = 2;
    if (l7 == 126) {
        len = (uint64_t)d->hdr[2] << 8 | d->hdr[3];
        *pos = 4;
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | d->hdr[2 + i];
        *pos = 10;
    }
    return len;
}

/* Checks a complete header and starts its frame. */
static int
frame_start(struct tp__ws_dec *d)
{
    uint8_t op = d->hdr[0] & 0x0f, pos;
    bool masked = (d->hdr[1] & 0x80) != 0;
    uint64_t len = header_len(d, &pos);

    if ((d->hdr[0] & 0x70) != 0 || masked == d->client || (len >> 63) != 0)
        return 1002;
    d->fin = d->hdr[0] >> 7;
    d->op = op;
    if (op >= 0x8) {
        if (op > TP__WS_PONG || !d->fin || len > 125)
            return 1002;
    } else {
        if (op > TP__WS_BINARY || (op == TP__WS_CONT) != (d->msg_op != 0))
            return 1002;
        if (len > d->max || d->mlen + len > d->max)
            return 1009;
        if (op != TP__WS_CONT) {
            d->msg_op = op;
            d->utf8 = 0;
        }
    }
    if (masked)
        memcpy(d->mask, d->hdr + pos, 4);
    else
        memset(d->mask, 0, 4);
    d->moff = 0;
    d->left = len;
    d->in_frame = true;
    d->hlen = 0;
    /* At least a byte (an empty frame's payload pointer is never NULL),
     * at most PREALLOC: a header alone must not make us allocate what it
     * announces; payload() grows the buffer as the bytes arrive. */
    return reserve(d, len == 0 ? 1 : len < PREALLOC ? (size_t)len : PREALLOC);
}

static int
close_check(const char *p, size_t n)
{
    uint32_t st = 0;

    if (n == 0)
        return 0;
    if (n == 1)
        return 1002;
    if (!tp__ws_code_ok((unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1]))
        return 1002;
    if (!tp__ws_utf8(&st, (const uint8_t *)p + 2, n - 2) || st != 0)
        return 1007;
    return 0;
}

static int
frame_end(struct tp__ws_dec *d, tp__ws_msg_fn fn, void *user)
{
    int r;

    d->in_frame = false;
    if (d->op >= 0x8) {
        size_t n = d->len - d->mlen;
        if (d->op == TP__WS_CLOSE && (r = close_check(d->buf + d->mlen, n)))
            return r;
        r = fn(user, d->op, d->buf + d->mlen, n);
        d->len = d->mlen;
        return r;
    }
    d->mlen = d->len;
    if (!d->fin)
        return 0;
    if (d->msg_op == TP__WS_TEXT && d->utf8 != 0)
        return 1007; /* ends inside a character */
    r = fn(user, d->msg_op, d->buf, d->mlen);
    d->msg_op = 0;
    d->len = d->mlen = 0;
    return r;
}

/* Payload bytes of the current frame: unmasked into buf. */
static int
payload(struct tp__ws_dec *d, const uint8_t *p, size_t k)
{
    char *dst;
    int r;

    if ((r = reserve(d, k)) != 0)
        return r;
    dst = d->buf + d->len;

    for (size_t i = 0; i < k; i++)
        dst[i] = (char)(p[i] ^ d->mask[(d->moff + i) & 3]);
    d->moff = (uint8_t)((d->moff + k) & 3);
    if (d->op == TP__WS_CONT || d->op == TP__WS_TEXT) {
        if (d->msg_op == TP__WS_TEXT &&
            !tp__ws_utf8(&d->utf8, (const uint8_t *)dst, k))
            return 1007;
    }
    d->len += k;
    d->left -= k;
    return 0;
}

static int
decode(struct tp__ws_dec *d, const uint8_t *p, size_t n, tp__ws_msg_fn fn,
       void *user)
{
    size_t i = 0, k;
    int r;

    while (i < n || (d->in_frame && d->left == 0)) {
        if (!d->in_frame) {
            d->hdr[d->hlen++] = p[i++];
            if (d->hlen < 2 || d->hlen < header_size(d))
                continue;
            if ((r = frame_start(d)) != 0)
                return r;
            continue;
        }
        k = n - i < d->left ? n - i : (size_t)d->left;
        if (k > 0 && (r = payload(d, p + i, k)) != 0)
            return r;
        i += k;
        if (d->left == 0 && (r = frame_end(d, fn, user)) != 0)
            return r;
    }
    return 0;
}

int
tp__ws_decode(struct tp__ws_dec *d, const uint8_t *p, size_t n,
              tp__ws_msg_fn fn, void *user)
{
    int r;

    if (d->dead)
        return 0;
    r = decode(d, p, n, fn, user);
    if (r > 0)
        d->dead = true;
    /* Idle between messages: no buffer. */
    if (d->buf != NULL && d->len == 0 && !d->in_frame && d->msg_op == 0) {
        tp__free(d->buf);
        d->buf = NULL;
        d->cap = 0;
    }
    return r;
}
