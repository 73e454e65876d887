/*
 * fuzz/fuzz_chat_proto.c - libFuzzer target for the chat sample's wire
 * format (samples/chat/chat_proto.c): line framing, command parsing and
 * text cleaning. The input's first byte picks how the rest is cut into
 * reads. Checked on every input:
 *  - framing in pieces gives exactly the lines (and too-long reports) that
 *    framing it whole gives;
 *  - no line is longer than CHAT_LINE_MAX or holds a '\n', and none ends
 *    with the '\r' of a "\r\n";
 *  - a parsed command's name and text lie inside its line, names are
 *    valid, and cleaned text holds no control character.
 */
#include "samples/chat/chat_proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the framing reported, as one byte string: each line followed by
 * '\n', a too-long report as "\n!". */
struct record {
    char *buf;
    size_t len, cap;
};

static void
put(struct record *r, const char *d, size_t n)
{
    if (n == 0)
        return; /* buf may still be NULL */
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2 + 64;
        r->buf = realloc(r->buf, r->cap);
        if (r->buf == NULL)
            abort();
    }
    memcpy(r->buf + r->len, d, n);
    r->len += n;
}

static bool
inside(const char *p, size_t n, const char *line, size_t len)
{
    return n == 0 || (p >= line && p + n <= line + len);
}

static void
check_command(const char *line, size_t len)
{
    struct chat_cmd c;
    char clean[CHAT_LINE_MAX + 1];
    size_t n;

    chat_parse(line, len, &c);
    if (!inside(c.arg, c.arg_len, line, len) ||
        !inside(c.text, c.text_len, line, len))
        abort();
    if ((c.kind == CHAT_CMD_NICK || c.kind == CHAT_CMD_MSG) &&
        !chat_valid_name(c.arg, c.arg_len, CHAT_NICK_MAX))
        abort();
    if (c.kind == CHAT_CMD_JOIN &&
        !chat_valid_name(c.arg, c.arg_len, CHAT_ROOM_MAX))
        abort();
    if (c.kind == CHAT_CMD_BAD && c.error == NULL)
        abort();
    n = chat_clean_text(c.text != NULL ? c.text : "", c.text_len, clean,
                        sizeof(clean));
    if (n != strlen(clean) || n > c.text_len)
        abort();
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)clean[i] < 0x20 && clean[i] != '\t') ||
            clean[i] == 0x7f)
            abort();
}

static void
on_line(void *user, const char *line, size_t len)
{
    struct record *r = user;

    if (line == NULL) {
        put(r, "\n!", 2);
        return;
    }
    if (len > CHAT_LINE_MAX || memchr(line, '\n', len) != NULL ||
        (len > 0 && line[len - 1] == '\r' && len == CHAT_LINE_MAX + 1))
        abort();
    check_command(line, len);
    put(r, line, len);
    put(r, "\n", 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct chat_frame whole, cut;
    struct record a = {0}, b = {0};
    const char *p;
    size_t left, step;

    if (size == 0)
        return 0;
    p = (const char *)data + 1;
    left = size - 1;
    step = data[0] % 32 + 1;
    memset(&whole, 0, sizeof(whole));
    memset(&cut, 0, sizeof(cut));
    chat_frame_feed(&whole, p, left, on_line, &a);
    for (size_t off = 0; off < left; off += step)
        chat_frame_feed(&cut, p + off, left - off < step ? left - off : step,
                        on_line, &b);
    if (a.len != b.len || (a.len > 0 && memcmp(a.buf, b.buf, a.len) != 0))
        abort(); /* the framing depends on how bytes arrive */
    free(a.buf);
    free(b.buf);
    return 0;
}
