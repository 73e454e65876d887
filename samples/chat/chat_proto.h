/*
 * samples/chat/chat_proto.h - the chat's wire format, with no sockets and
 * no actors: turning a byte stream into bounded lines, and a line into a
 * command. Pure functions, so they can be tested and fuzzed alone
 * (fuzz/fuzz_chat_proto.c).
 */
#ifndef SAMPLE_CHAT_PROTO_H
#define SAMPLE_CHAT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_LINE_MAX 512 /* longest line a client may send, in bytes */
#define CHAT_NICK_MAX 24  /* longest nickname */
#define CHAT_ROOM_MAX 24  /* longest room name */

/**
 * Line assembly for one connection. Lines end with "\n" ("\r\n" too: the
 * "\r" is dropped). A line longer than CHAT_LINE_MAX is reported once as
 * too long and its bytes are skipped up to its end, so a client can never
 * make the server buffer more than CHAT_LINE_MAX bytes.
 */
struct chat_frame {
    uint32_t len;  /* bytes of the current line in buf */
    bool skipping; /* inside a line that was too long */
    char buf[CHAT_LINE_MAX];
};

/** Called for each complete line (len <= CHAT_LINE_MAX, no "\r\n"), or
 *  with line NULL when a line was too long. */
typedef void (*chat_line_fn)(void *user, const char *line, size_t len);

/** Feeds bytes; calls fn for every line they complete. */
void chat_frame_feed(struct chat_frame *f, const char *data, size_t len,
                     chat_line_fn fn, void *user);

/** What a line asks for. */
enum chat_cmd_kind {
    CHAT_CMD_EMPTY = 0, /* blank line: ignored */
    CHAT_CMD_SAY,       /* text for the room */
    CHAT_CMD_NICK,      /* /nick NAME */
    CHAT_CMD_JOIN,      /* /join ROOM */
    CHAT_CMD_LEAVE,     /* /leave */
    CHAT_CMD_WHO,       /* /who */
    CHAT_CMD_ROOMS,     /* /rooms */
    CHAT_CMD_MSG,       /* /msg NICK TEXT */
    CHAT_CMD_HELP,      /* /help */
    CHAT_CMD_QUIT,      /* /quit */
    CHAT_CMD_CRASH,     /* /crash: this connection's actor fails (demo) */
    CHAT_CMD_CRASHROOM, /* /crashroom: the room's actor fails (demo) */
    CHAT_CMD_BAD        /* unknown command or bad argument: see error */
};

/** A parsed line: arg and text point into the line (not terminated). */
struct chat_cmd {
    enum chat_cmd_kind kind;
    const char *arg; /* NICK, JOIN, MSG: the name */
    size_t arg_len;
    const char *text; /* SAY, MSG: the text */
    size_t text_len;
    const char *error; /* BAD: why, for the client */
};

/** Parses one line (as chat_frame_feed() hands it over). */
void chat_parse(const char *line, size_t len, struct chat_cmd *out);

/** True when name[0..len) is a valid nickname or room name: 1..max bytes
 *  of letters, digits, '_' and '-'. */
bool chat_valid_name(const char *name, size_t len, size_t max);

/**
 * Copies text[0..len) into out (at most cap - 1 bytes, NUL-terminated),
 * replacing control characters by '?' so a client cannot send terminal
 * escapes to the others. Returns the bytes written.
 */
size_t chat_clean_text(const char *text, size_t len, char *out, size_t cap);

#endif /* SAMPLE_CHAT_PROTO_H */
