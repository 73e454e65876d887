/*
 * fuzz/fuzz_fleet_proto.c - libFuzzer target for the fleet node's line
 * protocol (samples/fleet/fleet_proto.c). The input's first byte picks how
 * the rest is cut into reads. Checked on every input:
 *  - framing in pieces gives exactly the lines, and the same end (done, or
 *    a line too long after the same lines), as framing it whole;
 *  - no line is longer than FLEET_LINE_MAX or holds a '\n', and none ends
 *    with the '\r' of a "\r\n";
 *  - a parsed HELLO or SEND has a valid, terminated name; a BAD line has
 *    an error text.
 */
#include "samples/fleet/fleet_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct record {
    char *buf;
    size_t len, cap;
};

static void
put(struct record *r, const char *d, size_t n)
{
    if (n == 0)
        return;
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        if ((r->buf = realloc(r->buf, r->cap)) == NULL)
            abort();
    }
    memcpy(r->buf + r->len, d, n);
    r->len += n;
}

static void
check_command(const char *line, size_t len)
{
    struct fleet_cmd c;
    size_t n;

    fleet_parse(line, len, &c);
    if (c.verb == FLEET_HELLO || c.verb == FLEET_SEND) {
        n = strnlen(c.name, sizeof(c.name));
        if (n == sizeof(c.name) || !fleet_name_ok(c.name, n))
            abort();
    }
    if (c.verb == FLEET_BAD && c.error == NULL)
        abort();
}

static bool
on_line(void *user, const char *line, size_t len)
{
    struct record *r = user;

    if (len > FLEET_LINE_MAX || memchr(line, '\n', len) != NULL)
        abort();
    check_command(line, len);
    put(r, line, len);
    put(r, "\n", 1);
    return true;
}

/* Feeds in steps; returns the first error (0: none). */
static int
feed(struct fleet_frame *f, const char *p, size_t left, size_t step,
     struct record *r)
{
    for (size_t off = 0; off < left; off += step) {
        size_t n = left - off < step ? left - off : step;
        int err = fleet_frame_feed(f, p + off, n, on_line, r);
        if (err != 0)
            return err;
    }
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fleet_frame whole = {0}, cut = {0};
    struct record a = {0}, b = {0};
    int ea, eb;

    if (size == 0)
        return 0;
    ea = feed(&whole, (const char *)data + 1, size - 1, size, &a);
    eb = feed(&cut, (const char *)data + 1, size - 1, data[0] % 32 + 1, &b);
    if (ea != eb || (ea != 0 && ea != -E2BIG) || a.len != b.len ||
        (a.len > 0 && memcmp(a.buf, b.buf, a.len) != 0))
        abort(); /* the framing depends on how bytes arrive */
    fleet_frame_free(&whole);
    fleet_frame_free(&cut);
    free(a.buf);
    free(b.buf);
    return 0;
}
