/*
 * samples/chat/chat_proto.c - line framing and command parsing of the
 * chat (see chat_proto.h). No sockets, no actors, no allocation.
 */
#include "chat_proto.h"

#include <string.h>

/* ---- framing ----------------------------------------------------------- */

static void
emit_line(struct chat_frame *f, chat_line_fn fn, void *user)
{
    size_t len = f->len;

    if (len > 0 && f->buf[len - 1] == '\r')
        len--;
    fn(user, f->buf, len);
    f->len = 0;
}

/* Appends data[0..len) (no newline in it) to the current line. */
static void
append(struct chat_frame *f, const char *data, size_t len, chat_line_fn fn,
       void *user)
{
    if (f->skipping)
        return;
    if (len > CHAT_LINE_MAX - f->len) {
        f->len = 0;
        f->skipping = true;
        fn(user, NULL, 0); /* too long: told once, skipped to its end */
        return;
    }
    memcpy(f->buf + f->len, data, len);
    f->len += (uint32_t)len;
}

void
chat_frame_feed(struct chat_frame *f, const char *data, size_t len,
                chat_line_fn fn, void *user)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t part = nl != NULL ? (size_t)(nl - data) : len;

        append(f, data, part, fn, user);
        if (nl == NULL)
            return;
        if (f->skipping)
            f->skipping = false;
        else
            emit_line(f, fn, user);
        data += part + 1;
        len -= part + 1;
    }
}

/* ---- parsing ----------------------------------------------------------- */

bool
chat_valid_name(const char *name, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

size_t
chat_clean_text(const char *text, size_t len, char *out, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)text[i];

        out[n++] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char)c;
    }
    out[n] = '\0';
    return n;
}

/* Splits off the next word: *w = its start and length; returns what
 * follows it, spaces skipped. */
static const char *
next_word(const char *p, const char *end, const char **w, size_t *wlen)
{
    while (p < end && *p == ' ')
        p++;
    *w = p;
    while (p < end && *p != ' ')
        p++;
    *wlen = (size_t)(p - *w);
    while (p < end && *p == ' ')
        p++;
    return p;
}

static const struct {
    const char *word;
    enum chat_cmd_kind kind;
    int args; /* 0 none, 1 a name, 2 a name and text */
    size_t max;
} commands[] = {
    {"nick", CHAT_CMD_NICK, 1, CHAT_NICK_MAX},
    {"join", CHAT_CMD_JOIN, 1, CHAT_ROOM_MAX},
    {"leave", CHAT_CMD_LEAVE, 0, 0},
    {"who", CHAT_CMD_WHO, 0, 0},
    {"rooms", CHAT_CMD_ROOMS, 0, 0},
    {"msg", CHAT_CMD_MSG, 2, CHAT_NICK_MAX},
    {"help", CHAT_CMD_HELP, 0, 0},
    {"quit", CHAT_CMD_QUIT, 0, 0},
    {"crash", CHAT_CMD_CRASH, 0, 0},
    {"crashroom", CHAT_CMD_CRASHROOM, 0, 0},
};

static void
bad(struct chat_cmd *out, const char *why)
{
    out->kind = CHAT_CMD_BAD;
    out->error = why;
}

/* Fills out for "/word rest" with the command table entry i. */
static void
parse_args(struct chat_cmd *out, size_t i, const char *p, const char *end)
{
    out->kind = commands[i].kind;
    if (commands[i].args == 0)
        return;
    p = next_word(p, end, &out->arg, &out->arg_len);
    if (!chat_valid_name(out->arg, out->arg_len, commands[i].max)) {
        bad(out, "a name is 1-24 letters, digits, '_' or '-'");
        return;
    }
    out->text = p;
    out->text_len = (size_t)(end - p);
    if (commands[i].args == 2 && out->text_len == 0)
        bad(out, "usage: /msg NICK TEXT");
}

static void
parse_command(const char *line, size_t len, struct chat_cmd *out)
{
    const char *end = line + len;
    const char *word;
    size_t wlen;
    const char *rest = next_word(line + 1, end, &word, &wlen);

    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strlen(commands[i].word) == wlen &&
            memcmp(commands[i].word, word, wlen) == 0) {
            parse_args(out, i, rest, end);
            return;
        }
    }
    bad(out, "unknown command (try /help)");
}

void
chat_parse(const char *line, size_t len, struct chat_cmd *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return; /* CHAT_CMD_EMPTY */
    if (line[0] == '/' && !(len > 1 && line[1] == '/')) {
        parse_command(line, len, out);
        return;
    }
    if (line[0] == '/') { /* "//text" says "/text" */
        line++;
        len--;
    }
    out->kind = CHAT_CMD_SAY;
    out->text = line;
    out->text_len = len;
}
