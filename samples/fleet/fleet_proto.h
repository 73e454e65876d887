/*
 * samples/fleet/fleet_proto.h - the fleet node's line protocol, with no
 * sockets and no actors: a byte stream into bounded lines, a line into a
 * command. Pure functions, tested and fuzzed alone (tests/test_fleet_proto.c,
 * fuzz/fuzz_fleet_proto.c).
 *
 * The protocol (ASCII lines ending in "\n"; "\r\n" is accepted):
 *
 *   node -> client                     client -> node
 *   NODE <node>     on connect         HELLO <name>        take a name
 *   OK <name>       name taken         SEND <name> <id> [<t_ns>]
 *   ERR <why>       a refusal                              message a name
 *   ACK <id> ok|noname|busy|dead           PING
 *   MSG <id> <t_ns> a message for you  QUIT
 *   PONG
 *   BYE drain       the node drains: reconnect elsewhere
 *
 * A name is 1..63 bytes of letters, digits and "._-"; <id> and <t_ns> are
 * unsigned decimals (t_ns: the sender's CLOCK_MONOTONIC, so a client on the
 * same machine can tell how long the message took).
 */
#ifndef SAMPLE_FLEET_PROTO_H
#define SAMPLE_FLEET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLEET_LINE_MAX 160 /* longest line a client may send, in bytes */
#define FLEET_NAME_MAX 63  /* longest name (the registry's limit) */

/**
 * Line assembly for one connection, costing nothing while idle: bytes of a
 * line split across reads are kept in a buffer allocated then (at most
 * FLEET_LINE_MAX bytes) and freed when the line completes; whole lines
 * are handed over from the read itself.
 */
struct fleet_frame {
    char *partial; /* NULL unless a line is incomplete */
    uint16_t len;  /* bytes in partial */
};

/** Called for each complete line (len <= FLEET_LINE_MAX, no "\r\n").
 *  Returns false to stop (the connection is closing). */
typedef bool (*fleet_line_fn)(void *user, const char *line, size_t len);

/**
 * Feeds bytes; calls fn for every line they complete. Returns 0, -E2BIG
 * when a line is longer than FLEET_LINE_MAX (the caller closes: the rest is
 * not read), -ENOMEM, or -ECANCELED when fn stopped.
 */
int fleet_frame_feed(struct fleet_frame *f, const char *data, size_t len,
                     fleet_line_fn fn, void *user);

/** Frees what the frame holds (it may be fed again afterwards). */
void fleet_frame_free(struct fleet_frame *f);

/** What a line asks for. */
enum fleet_verb {
    FLEET_EMPTY = 0, /* blank line: ignored */
    FLEET_HELLO,     /* HELLO NAME */
    FLEET_SEND,      /* SEND NAME ID [T_NS] */
    FLEET_PING,      /* PING */
    FLEET_QUIT,      /* QUIT */
    FLEET_BAD        /* anything else: see error */
};

/** A parsed line. name is NUL-terminated. */
struct fleet_cmd {
    enum fleet_verb verb;
    char name[FLEET_NAME_MAX + 1]; /* HELLO, SEND */
    uint64_t id;                   /* SEND */
    uint64_t t_ns;                 /* SEND, 0 when not given */
    const char *error;             /* BAD: why, for the client */
};

/** Parses one line (as fleet_frame_feed() hands it over). */
void fleet_parse(const char *line, size_t len, struct fleet_cmd *out);

/** True when s[0..len) is a valid name (see above). */
bool fleet_name_ok(const char *s, size_t len);

#endif /* SAMPLE_FLEET_PROTO_H */
