/*
 * samples/http/http_conn.c - requests to responses for one connection
 * (see http_conn.h). http_parser calls back for each piece of a request;
 * we keep the target, count header and body bytes against their limits,
 * and answer when a request is complete. Keep-alive and pipelining come
 * for free: responses are written in request order as they complete.
 */
#include "http_conn.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char hello_body[] = "Hello from Troupe!\n";
static const char json_body[] = "{\"message\":\"Hello, World!\"}";

/* ---- responses ---------------------------------------------------------- */

struct response {
    int status;
    const char *type; /* Content-Type, NULL when there is no body */
    const char *body;
    size_t body_len;
    const char *extra; /* more header lines ("Allow: ...\r\n"), or "" */
};

static const char *
status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/* "Connection:" header to add: close, keep-alive (HTTP/1.0 asked for
 * it), or nothing (HTTP/1.1's default). */
static const char *
connection_header(const struct http_conn *c, bool keep)
{
    if (!keep)
        return "Connection: close\r\n";
    if (c->parser.http_major == 1 && c->parser.http_minor == 0)
        return "Connection: keep-alive\r\n";
    return "";
}

/* Writes the response; a HEAD request gets the headers only. */
static void
send_response(struct http_conn *c, const struct response *r, bool keep,
              bool head)
{
    char buf[HTTP_RESPONSE_MAX];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nServer: troupe\r\nDate: %s\r\n"
                     "Content-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                     r->status, status_text(r->status), c->env->date,
                     r->type ? r->type : "text/plain", r->body_len, r->extra,
                     connection_header(c, keep));

    if (n < 0 || (size_t)n + r->body_len > sizeof(buf))
        return; /* cannot happen: our bodies are small */
    if (!head && r->body_len > 0) {
        memcpy(buf + n, r->body, r->body_len);
        n += (int)r->body_len;
    }
    c->env->out(c->env->user, buf, (size_t)n);
}

static void
send_error(struct http_conn *c, int status)
{
    char body[64];
    struct response r = {status, "text/plain", body, 0, ""};

    r.body_len = (size_t)snprintf(body, sizeof(body), "%d %s\n", status,
                                  status_text(status));
    send_response(c, &r, false, false);
}

/* ---- routes ------------------------------------------------------------- */

static bool
path_is(const struct http_conn *c, size_t path_len, const char *want)
{
    return strlen(want) == path_len && memcmp(c->url, want, path_len) == 0;
}

/* Picks the response for the request in c; body storage is `stats`. */
static void
route(struct http_conn *c, struct response *r, char *stats, size_t cap)
{
    const char *q = memchr(c->url, '?', c->url_len);
    size_t path_len = q != NULL ? (size_t)(q - c->url) : c->url_len;
    unsigned m = c->parser.method;

    *r = (struct response){200, "text/plain", hello_body,
                           sizeof(hello_body) - 1, ""};
    if (path_is(c, path_len, "/json")) {
        r->type = "application/json";
        r->body = json_body;
        r->body_len = sizeof(json_body) - 1;
    } else if (path_is(c, path_len, "/stats") && c->env->stats != NULL) {
        r->type = "application/json";
        r->body = stats;
        r->body_len = c->env->stats(c->env->stats_arg, stats, cap);
    } else if (path_is(c, path_len, "/chat") && c->env->chat_page != NULL) {
        r->type = "text/html; charset=utf-8";
        r->body = c->env->chat_page;
        r->body_len = c->env->chat_page_len;
    } else if (!path_is(c, path_len, "/")) {
        *r = (struct response){404, "text/plain", "not found\n", 10, ""};
    }
    if (m != HTTP_GET && m != HTTP_HEAD)
        *r = (struct response){405, "text/plain", "use GET or HEAD\n", 16,
                               "Allow: GET, HEAD\r\n"};
}

/* ---- parser callbacks --------------------------------------------------- */

static struct http_conn *
conn_of(http_parser *p)
{
    return p->data;
}

static int
on_message_begin(http_parser *p)
{
    struct http_conn *c = conn_of(p);

    c->url_len = 0;
    c->header_bytes = 0;
    c->body_bytes = 0;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);

    if (len > sizeof(c->url) - c->url_len) {
        c->error = 414;
        return -1; /* stops the parser */
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += (uint32_t)len;
    return 0;
}

static int
on_header_bytes(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);

    (void)at;
    if (len > HTTP_HEADERS_MAX - c->header_bytes) {
        c->error = 431;
        return -1;
    }
    c->header_bytes += (uint32_t)len;
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = conn_of(p);

    (void)at;
    c->body_bytes += len; /* we serve no uploads: count, then forget */
    if (c->body_bytes > HTTP_BODY_MAX) {
        c->error = 413;
        return -1;
    }
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http_conn *c = conn_of(p);
    char stats[1024];
    struct response r;
    bool keep = http_should_keep_alive(p) != 0;

    route(c, &r, stats, sizeof(stats));
    send_response(c, &r, keep, p->method == HTTP_HEAD);
    if (!keep) {
        c->done = true;
        http_parser_pause(p, 1); /* ignore whatever follows */
    }
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_bytes,
    .on_header_value = on_header_bytes,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the connection ----------------------------------------------------- */

void
http_conn_init(struct http_conn *c)
{
    memset(c, 0, sizeof(*c));
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
}

bool
http_conn_feed(struct http_conn *c, const char *data, size_t len,
               const struct http_env *env)
{
    enum http_errno err;

    if (c->done || len == 0)
        return !c->done;
    c->env = env;
    http_parser_execute(&c->parser, &settings, data, len);
    err = HTTP_PARSER_ERRNO(&c->parser);
    if (!c->done && err != HPE_OK) { /* malformed, or over a limit */
        send_error(c, c->error != 0 ? c->error : 400);
        c->done = true;
    }
    if (c->parser.upgrade) /* we speak no other protocol */
        c->done = true;
    c->env = NULL;
    return !c->done;
}

void
http_date(char *buf, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}
