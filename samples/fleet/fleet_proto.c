/*
 * samples/fleet/fleet_proto.c - line framing and parsing of the fleet
 * node's protocol. See fleet_proto.h.
 */
#include "fleet_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- framing ----------------------------------------------------------- */

/* Hands one complete line (without its "\n", and without a "\r" before it)
 * to fn. */
static int
deliver(const char *line, size_t len, fleet_line_fn fn, void *user)
{
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > FLEET_LINE_MAX)
        return -E2BIG;
    return fn(user, line, len) ? 0 : -ECANCELED;
}

/* Appends data[0..len) to the partial line. */
static int
keep(struct fleet_frame *f, const char *data, size_t len)
{
    /* One more byte than a line may hold: a "\r" may still come. */
    if (f->len + len > FLEET_LINE_MAX + 1)
        return -E2BIG;
    if (f->partial == NULL && (f->partial = malloc(FLEET_LINE_MAX + 1)) == NULL)
        return -ENOMEM;
    memcpy(f->partial + f->len, data, len);
    f->len = (uint16_t)(f->len + len);
    return 0;
}

/* Completes the partial line with data[0..n) (the bytes before a "\n"). */
static int
finish_partial(struct fleet_frame *f, const char *data, size_t n,
               fleet_line_fn fn, void *user)
{
    int err = keep(f, data, n);

    if (err == 0)
        err = deliver(f->partial, f->len, fn, user);
    fleet_frame_free(f);
    return err;
}

int
fleet_frame_feed(struct fleet_frame *f, const char *data, size_t len,
                 fleet_line_fn fn, void *user)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;
        int err;

        if (nl == NULL)
            return keep(f, data, len);
        err = f->len != 0 ? finish_partial(f, data, n, fn, user)
                          : deliver(data, n, fn, user);
        if (err != 0)
            return err;
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

void
fleet_frame_free(struct fleet_frame *f)
{
    free(f->partial);
    f->partial = NULL;
    f->len = 0;
}

/* ---- parsing ----------------------------------------------------------- */

bool
fleet_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > FLEET_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The next space-separated word of line[*pos..len): sets *w, *wl. */
static bool
word(const char *line, size_t len, size_t *pos, const char **w, size_t *wl)
{
    size_t i = *pos;

    while (i < len && line[i] == ' ')
        i++;
    *w = line + i;
    while (i < len && line[i] != ' ')
        i++;
    *wl = (size_t)(line + i - *w);
    *pos = i;
    return *wl != 0;
}

/* A decimal of at most 19 digits (fits in 63 bits). */
static bool
number(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n == 0 || n > 19)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool
is_verb(const char *w, size_t n, const char *verb)
{
    return n == strlen(verb) && memcmp(w, verb, n) == 0;
}

static void
bad(struct fleet_cmd *out, const char *why)
{
    out->verb = FLEET_BAD;
    out->error = why;
}

/* Reads the NAME argument into out->name. */
static bool
take_name(const char *line, size_t len, size_t *pos, struct fleet_cmd *out)
{
    const char *w;
    size_t n;

    if (!word(line, len, pos, &w, &n) || !fleet_name_ok(w, n)) {
        bad(out, "bad name (1..63 of A-Z a-z 0-9 . _ -)");
        return false;
    }
    memcpy(out->name, w, n);
    out->name[n] = '\0';
    return true;
}

static void
parse_send(const char *line, size_t len, size_t *pos, struct fleet_cmd *out)
{
    const char *w;
    size_t n;

    if (!take_name(line, len, pos, out))
        return;
    if (!word(line, len, pos, &w, &n) || !number(w, n, &out->id)) {
        bad(out, "usage: SEND NAME ID [T_NS]");
        return;
    }
    if (word(line, len, pos, &w, &n) && !number(w, n, &out->t_ns)) {
        bad(out, "usage: SEND NAME ID [T_NS]");
        return;
    }
    out->verb = FLEET_SEND;
}

/* True when nothing but spaces is left. */
static bool
at_end(const char *line, size_t len, size_t pos)
{
    const char *w;
    size_t n;

    return !word(line, len, &pos, &w, &n);
}

void
fleet_parse(const char *line, size_t len, struct fleet_cmd *out)
{
    const char *w;
    size_t n, pos = 0;

    memset(out, 0, sizeof(*out));
    if (!word(line, len, &pos, &w, &n))
        return; /* FLEET_EMPTY */
    if (is_verb(w, n, "HELLO")) {
        if (take_name(line, len, &pos, out))
            out->verb = FLEET_HELLO;
    } else if (is_verb(w, n, "SEND")) {
        parse_send(line, len, &pos, out);
    } else if (is_verb(w, n, "PING")) {
        out->verb = FLEET_PING;
    } else if (is_verb(w, n, "QUIT")) {
        out->verb = FLEET_QUIT;
    } else {
        bad(out, "unknown command (HELLO, SEND, PING, QUIT)");
        return;
    }
    if (out->verb != FLEET_BAD && !at_end(line, len, pos))
        bad(out, "too many arguments");
}
