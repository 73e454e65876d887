/*
 * console/line.c - input lines: assembly with a maximum length, splitting
 * into words, what counts as a valid line, and the token comparison.
 */
#include "console_int.h"

#include <errno.h>
#include <string.h>

int
tp__linebuf_init(struct tp__linebuf *lb, size_t max)
{
    memset(lb, 0, sizeof(*lb));
    lb->buf = tp__malloc(max + 1);
    if (lb->buf == NULL)
        return -ENOMEM;
    lb->max = max;
    return 0;
}

void
tp__linebuf_free(struct tp__linebuf *lb)
{
    tp__free(lb->buf);
    lb->buf = NULL;
}

/* Ends the line held in lb: hands it (or the too-long event) to fn. */
static bool
emit_line(struct tp__linebuf *lb,
          bool (*fn)(void *, enum tp__line_ev, char *, size_t), void *user)
{
    bool more;

    if (lb->discarding) {
        lb->discarding = false;
        lb->len = 0;
        return true; /* reported when it passed the limit */
    }
    if (lb->len > 0 && lb->buf[lb->len - 1] == '\r')
        lb->len--;
    lb->buf[lb->len] = '\0';
    more = fn(user, TP__LINE_OK, lb->buf, lb->len);
    lb->len = 0;
    return more;
}

size_t
tp__linebuf_feed(struct tp__linebuf *lb, const char *data, size_t len,
                 bool (*fn)(void *, enum tp__line_ev, char *, size_t),
                 void *user)
{
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(data + i, '\n', len - i);
        size_t chunk = (nl != NULL ? (size_t)(nl - data) : len) - i;

        if (!lb->discarding) {
            if (lb->len + chunk > lb->max) {
                /* Too long: report once, then drop until the newline. */
                lb->discarding = true;
                lb->len = 0;
                if (!fn(user, TP__LINE_TOO_LONG, NULL, 0))
                    return nl != NULL ? (size_t)(nl - data) + 1 : len;
            } else {
                memcpy(lb->buf + lb->len, data + i, chunk);
                lb->len += chunk;
            }
        }
        i += chunk;
        if (nl == NULL)
            break;
        i++; /* the newline */
        if (!emit_line(lb, fn, user))
            return i;
    }
    return i;
}

bool
tp__line_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Reads one word at *p into itself (unquoting); returns its end or NULL
 * on an unterminated quote. */
static char *
read_word(char *p, char **next)
{
    char *w = p, *o = p;
    bool quoted = false;

    for (; *p != '\0'; p++) {
        if (!quoted && is_space(*p))
            break;
        if (*p == '"') {
            quoted = !quoted;
            continue;
        }
        if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\'))
            p++;
        *o++ = *p;
    }
    if (quoted)
        return NULL;
    *next = *p != '\0' ? p + 1 : p;
    *o = '\0';
    return w;
}

int
tp__line_split(char *line, char **argv, int max, bool *json)
{
    int argc = 0;
    char *p = line;

    *json = false;
    if (!tp__line_valid(line, strlen(line)))
        return -EINVAL;
    for (;;) {
        char *w;
        while (is_space(*p))
            p++;
        if (*p == '\0')
            break;
        if ((w = read_word(p, &p)) == NULL)
            return -EINVAL;
        if (strcmp(w, "--json") == 0 ||
            (argc == 0 && strcmp(w, "json") == 0 && *p != '\0' && !*json)) {
            *json = true;
            continue;
        }
        if (argc == max)
            return -E2BIG;
        argv[argc++] = w;
    }
    return argc;
}

bool
tp__token_equal(const char *secret, const char *given, size_t given_len)
{
    size_t n = strlen(secret);
    unsigned diff = (unsigned)(n ^ given_len) != 0;
    volatile unsigned char acc = 0;

    /* Walk the secret's length whatever was given, so the time tells
     * nothing about how many leading bytes matched. */
    for (size_t i = 0; i < n; i++) {
        unsigned char g =
            given_len != 0 ? (unsigned char)given[i % given_len] : 0;
        acc |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return (acc | diff) == 0;
}

int
tp__parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;

    if (*s == '\0')
        return -EINVAL;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return -EINVAL;
    }
    if (v < min)
        return -EINVAL;
    *out = (uint32_t)v;
    return 0;
}
