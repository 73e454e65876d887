/*
 * fuzz/fuzz_sample_http.c - libFuzzer target for the HTTP sample's request
 * path (samples/http/http_conn.c over libhttp-parser), with no sockets and
 * no actors. The input's first byte picks how the rest is cut into reads
 * (one by one, fixed sizes, or all at once), as a client's segments would
 * arrive. Checked on every input:
 *  - every response is whole and well formed: a status line we send, a
 *    Content-Length equal to the body that follows (HEAD: none), at most
 *    HTTP_RESPONSE_MAX bytes;
 *  - once http_conn_feed() says the connection must close, it stays closed
 *    and writes nothing more;
 *  - no request makes it answer more than once per request line.
 */
#define _GNU_SOURCE /* memmem */
#include "samples/http/http_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    unsigned responses;
    bool closed;
};

static void
check_response(const char *r, size_t len)
{
    const char *end = memmem(r, len, "\r\n\r\n", 4);
    const char *cl = memmem(r, len, "\r\nContent-Length: ", 18);
    int status;
    size_t body, head;

    if (len > HTTP_RESPONSE_MAX || end == NULL || cl == NULL || cl > end ||
        sscanf(r, "HTTP/1.1 %3d ", &status) != 1 || status < 200 ||
        status > 599)
        abort();
    head = (size_t)(end - r) + 4;
    body = strtoul(cl + 18, NULL, 10);
    if (len != head && len != head + body) /* HEAD: headers only */
        abort();
}

static void
out(void *user, const char *d, size_t len)
{
    struct sink *s = user;

    if (s->closed)
        abort(); /* nothing may follow the close */
    s->responses++;
    check_response(d, len);
}

/* A deterministic stand-in for the runtime's numbers. */
static size_t
stats(void *arg, char *buf, size_t cap)
{
    (void)arg;
    return (size_t)snprintf(buf, cap, "{\"actors\":1}") < cap ? 12 : 0;
}

static size_t
piece_len(uint8_t mode, size_t left)
{
    size_t n = mode == 0 ? left : (size_t)mode % 64 + 1;

    return n < left ? n : left;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct http_conn c;
    struct sink s = {0, false};
    static const char page[] = "<!doctype html><p>chat</p>";
    struct http_env env = {"Thu, 01 Jan 2026 00:00:00 GMT",
                           stats,
                           NULL,
                           out,
                           &s,
                           page,
                           sizeof(page) - 1};
    const char *p = (const char *)data + 1;
    size_t left, requests = 0;

    if (size == 0)
        return 0;
    left = size - 1;
    for (size_t i = 0; i + 1 < left; i++) /* upper bound on requests */
        requests += p[i] == '\n';
    http_conn_init(&c);
    while (left > 0) {
        size_t n = piece_len(data[0], left);
        bool open = http_conn_feed(&c, p, n, &env);

        if (!open)
            s.closed = true;
        p += n;
        left -= n;
    }
    if (s.responses > requests + 1)
        abort();
    return 0;
}
