/*
 * samples/http/http_conn.h - one HTTP/1.1 connection's request handling,
 * with no sockets and no actors: bytes in, responses out. Parsing is
 * done by the http_parser library (Debian's libhttp-parser-dev); this file
 * adds the limits, the routes and the responses. The connection actor
 * (http.c) feeds it what it reads; fuzz/fuzz_sample_http.c feeds it
 * anything.
 */
#ifndef SAMPLE_HTTP_CONN_H
#define SAMPLE_HTTP_CONN_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_URL_MAX      1024        /* longer target: 414 */
#define HTTP_HEADERS_MAX  (8 * 1024)  /* more header bytes: 431 */
#define HTTP_BODY_MAX     (64 * 1024) /* bigger body (ignored anyway): 413 */
#define HTTP_RESPONSE_MAX 8192        /* largest response we build */

/** Receives each response, whole (headers and body in one buffer). */
typedef void (*http_out_fn)(void *user, const char *data, size_t len);

/** What the routes need from outside: the Date header value and the
 *  body of /stats (JSON). Both are the caller's, so this file stays
 *  deterministic. */
struct http_env {
    const char *date;                                  /* RFC 7231 date */
    size_t (*stats)(void *arg, char *buf, size_t cap); /* may be NULL */
    void *stats_arg;
    http_out_fn out;
    void *user;
    const char *chat_page; /* GET /chat (the browser chat), may be NULL */
    size_t chat_page_len;
};

/** One connection's parsing state. Fields are private. */
struct http_conn {
    http_parser parser;
    const struct http_env *env; /* during http_conn_feed() */
    uint32_t url_len;
    uint32_t header_bytes;
    uint64_t body_bytes;
    int error; /* status found by a limit (414, 431, 413), or 0 */
    bool done; /* the connection must close: feed nothing more */
    char url[HTTP_URL_MAX];
};

/** Prepares c for a new connection. */
void http_conn_init(struct http_conn *c);

/**
 * Parses data[0..len) and writes a response through env->out for every
 * request completed. Returns true while the connection stays open; false
 * when it must be closed once the responses are sent (the client asked
 * for it, a bad or too large request got its 4xx answer): later calls
 * then do nothing.
 */
bool http_conn_feed(struct http_conn *c, const char *data, size_t len,
                    const struct http_env *env);

/** Formats now as an HTTP date into buf (at least 32 bytes). */
void http_date(char *buf, size_t cap);

#endif /* SAMPLE_HTTP_CONN_H */
