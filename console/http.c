/*
 * console/http.c - the console's HTTP side, embedded in a host actor (a
 * connection on the HTTP port): GET /metrics, GET|POST /api/<command>...,
 * GET / (the dashboard), GET /health (for load balancers: console/health.c;
 * no token, ever: it says only whether the node is draining).
 *
 * Requests are parsed with http_parser (Debian's libhttp-parser), one at a
 * time: the parser is paused at the end of each request until its answer
 * is written, and bytes that arrive meanwhile wait in a bounded buffer
 * (pipelining works, flooding does not). Everything is bounded: URL,
 * header bytes, body, pending input, and time: a request must be complete
 * within http_request_timeout_ms of the connection being ready for it (a
 * whole-request deadline: trickling bytes does not extend it). Slots come
 * from the console's pool (console/guard.c): per-address limits, a
 * reserve that serves /metrics alone, and eviction of the connection that
 * has waited longest for a request. Actions (kill, restart, stop, drain,
 * loglevel LEVEL) need POST and "Authorization: Bearer TOKEN"; reads need
 * the token only with opts.http_auth_reads. A wrong token counts against
 * the client's address; past the limit the answer is 429 without looking
 * at the token, and a connection closes after its third wrong one.
 */
#include "console_int.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#define URL_MAX      2048u
#define HEADERS_MAX  (16u * 1024u)
#define BODY_MAX     4096u
#define HPENDING_MAX (32u * 1024u)
#define RESERVE_MS   2000u /* a reserved slot's request deadline */
#define AUTH_MAX     256u
#define AUTH_TRIES   3

struct tp__http {
    struct tp_console *con;
    const struct tp__transport *tr;
    void *t;
    http_parser p;
    struct tp__exec x;
    char url[URL_MAX + 1];
    size_t url_len, hdr_bytes, body_len;
    char auth[AUTH_MAX + 1];
    size_t auth_len;
    char hosthdr[AUTH_MAX + 1]; /* the Host header */
    size_t host_len;
    int field; /* 0 other, 1 Authorization, 2 Host */
    bool in_value;
    int error;  /* HTTP status of a request refused while parsing */
    bool ready; /* a complete request waits to be answered */
    bool busy, closing, open, keep_alive, head;
    struct tp__cbuf pending;
    uint64_t ready_ns; /* ready for a request since (its deadline runs) */
    size_t partial;    /* bytes of that request received so far */
    int auth_fails;    /* wrong tokens on this connection */
    struct tp__hticket ticket;
    struct tp__addr_key key;
};

size_t
tp__http_size(void)
{
    return sizeof(struct tp__http);
}

/* ---- responses ------------------------------------------------------------*/

static const char *
reason_of(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Internal Server Error";
    }
}

/* The extra header lines a status carries. */
static const char *
extra_headers(int code)
{
    switch (code) {
    case 401:
        return "WWW-Authenticate: Bearer\r\n";
    case 429:
    case 503:
        return "Retry-After: 1\r\n";
    default:
        return "";
    }
}

/* The connection is ready for its next request: its deadline starts. */
static void
ready(struct tp__http *h)
{
    h->ready_ns = tp_now_ns();
    h->partial = 0;
    tp__hpool_waiting(h->con, &h->ticket, true);
}

static void
respond(tp_ctx *ctx, struct tp__http *h, int code, const char *type,
        const void *body, size_t len)
{
    char hdr[512];
    int n;

    if (h->closing)
        return;
    n = snprintf(hdr, sizeof(hdr),
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                 "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                 "X-Content-Type-Options: nosniff\r\n%s"
                 "Connection: %s\r\n\r\n",
                 code, reason_of(code), type, len, extra_headers(code),
                 h->keep_alive ? "keep-alive" : "close");
    h->tr->write(ctx, h->t, hdr, (size_t)n);
    if (!h->head && len != 0)
        h->tr->write(ctx, h->t, body, len);
    if (!h->keep_alive) {
        h->closing = true;
        h->tr->close(ctx, h->t);
        return;
    }
    ready(h);
}

static void
respond_error(tp_ctx *ctx, struct tp__http *h, int code, const char *msg)
{
    struct tp__cbuf b;

    tp__cbuf_init(&b, 1024);
    tp__cbuf_puts(&b, "{\"ok\":false,\"error\":");
    tp__cbuf_json_str(&b, msg, strlen(msg));
    tp__cbuf_puts(&b, "}\n");
    respond(ctx, h, code, "application/json", b.p, b.len);
    tp__cbuf_free(&b);
}

static int
status_of(int err)
{
    switch (err) {
    case 0:
        return 200;
    case -ENOENT:
    case -ESRCH:
        return 404;
    case -EACCES:
        return 403;
    case -EPERM:
        return 409;
    case -ETIMEDOUT:
        return 504;
    case -ENOMEM:
    case -EIO:
        return 500;
    default:
        return 400;
    }
}

static void
http_done(tp_ctx *ctx, struct tp__exec *x, int status)
{
    struct tp__http *h = x->host;
    const char *type = x->json ? "application/json"
                               : "text/plain; version=0.0.4; charset=utf-8";

    respond(ctx, h, status_of(status), type, x->out.p, x->out.len);
    tp__cbuf_reset(&x->out);
    h->busy = false;
}

/* ---- parser callbacks -----------------------------------------------------*/

static struct tp__http *
of(http_parser *p)
{
    return p->data;
}

static int
on_begin(http_parser *p)
{
    struct tp__http *h = of(p);

    h->url_len = h->hdr_bytes = h->body_len = h->auth_len = h->host_len = 0;
    h->auth[0] = h->hosthdr[0] = '\0';
    h->field = 0;
    h->in_value = false;
    h->error = 0;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
    struct tp__http *h = of(p);

    if (h->url_len + n > URL_MAX) {
        h->error = 414;
        return -1;
    }
    memcpy(h->url + h->url_len, at, n);
    h->url_len += n;
    h->url[h->url_len] = '\0';
    return 0;
}

static int
count_header(struct tp__http *h, size_t n)
{
    h->hdr_bytes += n;
    if (h->hdr_bytes > HEADERS_MAX) {
        h->error = 431;
        return -1;
    }
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t n)
{
    struct tp__http *h = of(p);

    if (count_header(h, n) != 0)
        return -1;
    /* A name split across reads is not recognised: it is then simply not
     * that header, and the request is refused or treated as foreign. */
    h->field = n == 13 && strncasecmp(at, "authorization", n) == 0 ? 1
               : n == 4 && strncasecmp(at, "host", n) == 0         ? 2
                                                                   : 0;
    h->in_value = false;
    return 0;
}

static int
keep_value(struct tp__http *h, char *dst, size_t *len, const char *at, size_t n)
{
    if (*len + n > AUTH_MAX) {
        h->error = 431;
        return -1;
    }
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
    return 0;
}

static int
on_value(http_parser *p, const char *at, size_t n)
{
    struct tp__http *h = of(p);

    if (count_header(h, n) != 0)
        return -1;
    h->in_value = true;
    if (h->field == 1)
        return keep_value(h, h->auth, &h->auth_len, at, n);
    if (h->field == 2)
        return keep_value(h, h->hosthdr, &h->host_len, at, n);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    struct tp__http *h = of(p);

    h->body_len += n; /* the body is not used, only bounded */
    if (h->body_len > BODY_MAX) {
        h->error = 413;
        return -1;
    }
    return 0;
}

static int
on_complete(http_parser *p)
{
    struct tp__http *h = of(p);

    h->ready = true;
    h->keep_alive = http_should_keep_alive(p) != 0;
    tp__hpool_waiting(h->con, &h->ticket, false);
    http_parser_pause(p, 1); /* one request at a time */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

/* ---- routing --------------------------------------------------------------*/

static int
unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX and '+' in place; false on a bad escape or a NUL byte. */
static bool
url_decode(char *s)
{
    char *o = s;

    for (; *s != '\0'; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%') {
            int a = unhex(s[1]), b = a < 0 ? -1 : unhex(s[2]);
            if (b < 0 || (a == 0 && b == 0))
                return false;
            *o++ = (char)(a * 16 + b);
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return true;
}

enum auth_result { AUTH_OK = 0, AUTH_NONE, AUTH_WRONG, AUTH_THROTTLED };

/* Checks the Bearer token. A token given counts: a wrong one against the
 * client's address; while the address is over its limit the token is not
 * even looked at. */
static enum auth_result
check_auth(struct tp__http *h)
{
    static const char bearer[] = "Bearer ";
    const char *tok = h->con->token;
    size_t n = sizeof(bearer) - 1;

    if (tok == NULL || h->auth_len <= n || strncmp(h->auth, bearer, n) != 0)
        return AUTH_NONE;
    if (!tp__auth_allowed(h->con, &h->key))
        return AUTH_THROTTLED;
    if (tp__token_equal(tok, h->auth + n, h->auth_len - n))
        return AUTH_OK;
    tp__auth_failed(h->con, &h->key);
    return AUTH_WRONG;
}

/* Answers a request that needs the token and lacks the right one; true if
 * it did (false: authorized). */
static bool
refuse_unauthorized(tp_ctx *ctx, struct tp__http *h)
{
    enum auth_result r = check_auth(h);

    if (r == AUTH_OK)
        return false;
    if (r == AUTH_THROTTLED ||
        (r == AUTH_WRONG && ++h->auth_fails >= AUTH_TRIES))
        h->keep_alive = false;
    if (r == AUTH_THROTTLED)
        respond_error(ctx, h, 429,
                      "too many failed authentications from your address; "
                      "try later");
    else if (h->con->token == NULL)
        respond_error(ctx, h, 403, "no token configured");
    else
        respond_error(ctx, h, 401, "bad or missing token");
    return true;
}

/* Splits "/api/cmd/a/b?k=v&reason=x" into words. */
static int
api_words(char *path, char *query, char **argv, int max)
{
    int argc = 0;
    char *save = NULL, *w;

    for (w = strtok_r(path, "/", &save); w != NULL;
         w = strtok_r(NULL, "/", &save)) {
        if (argc == max || !url_decode(w))
            return -EINVAL;
        argv[argc++] = w;
    }
    for (w = query != NULL ? strtok_r(query, "&", &save) : NULL; w != NULL;
         w = strtok_r(NULL, "&", &save)) {
        if (argc == max || !url_decode(w))
            return -EINVAL;
        /* reason=TEXT is kill's free text; other pairs stay k=v. */
        argv[argc++] = strncmp(w, "reason=", 7) == 0 ? w + 7 : w;
    }
    return argc;
}

static void
route_api(tp_ctx *ctx, struct tp__http *h, char *path, char *query, bool post)
{
    const struct tp__cmd_def *d;
    char *argv[TP__ARGV_MAX];
    int argc = api_words(path, query, argv, TP__ARGV_MAX);

    if (argc <= 0) {
        respond_error(ctx, h, 400, argc == 0 ? "no command" : "bad url");
        return;
    }
    d = tp__cmd_find(argv[0]);
    if (d == NULL) {
        respond_error(ctx, h, 404, "unknown command");
        return;
    }
    bool action = (d->needs & TP__CAP_ADMIN) ||
                  (strcmp(d->name, "loglevel") == 0 && argc > 1);
    if (action && !post) {
        respond_error(ctx, h, 405, "actions need POST");
        return;
    }
    if ((action || h->con->opts.http_auth_reads) && refuse_unauthorized(ctx, h))
        return;
    h->x.caps = action ? TP__CAP_ADMIN : 0;
    h->busy = true;
    tp__exec_argv(ctx, &h->x, argc, argv, true);
}

/* DNS rebinding defence: a page from another site that made its name
 * resolve to 127.0.0.1 still sends its own name as Host. Accept no Host
 * (HTTP/1.0 tools), loopback names, and the configured host. */
static bool
host_ok(const struct tp__http *h)
{
    char name[AUTH_MAX + 1];
    const char *v = h->hosthdr, *end;

    if (h->host_len == 0)
        return true;
    if (v[0] == '[') {
        end = strchr(v, ']');
        if (end == NULL)
            return false;
        snprintf(name, sizeof(name), "%.*s", (int)(end - v - 1), v + 1);
    } else {
        end = strchr(v, ':');
        snprintf(name, sizeof(name), "%.*s",
                 (int)(end != NULL ? (size_t)(end - v) : strlen(v)), v);
    }
    return tp__console_is_loopback(name) ||
           strcmp(name, h->con->opts.host) == 0;
}

/* A request that arrived in the waiting room: it takes a normal slot if
 * one can be had; else /metrics and /health are answered there (and the
 * connection closed after: a load balancer must not read a crowded console
 * as a node that is down), anything else gets 503. False if answered
 * here. */
static bool
out_of_room(tp_ctx *ctx, struct tp__http *h, bool in_reserve)
{
    tp_pid evicted;

    if (!h->ticket.reserve)
        return true;
    if (tp__hpool_upgrade(h->con, &h->ticket, tp_self(ctx), &evicted)) {
        if (evicted != TP_PID_NONE)
            tp_send(ctx, evicted, TP__CON_EVICT, NULL, 0);
        return true;
    }
    h->keep_alive = false;
    if (in_reserve)
        return true;
    respond_error(ctx, h, 503,
                  "busy: only /metrics and /health are served now");
    return false;
}

static void
route(tp_ctx *ctx, struct tp__http *h)
{
    enum http_method m = (enum http_method)h->p.method;
    char *query = strchr(h->url, '?'), *path = h->url;

    h->head = m == HTTP_HEAD;
    if (query != NULL)
        *query++ = '\0';
    if (!host_ok(h)) {
        respond_error(ctx, h, 403, "foreign Host header");
    } else if (!out_of_room(ctx, h,
                            strcmp(path, "/metrics") == 0 ||
                                strcmp(path, "/health") == 0)) {
        return;
    } else if (m != HTTP_GET && m != HTTP_HEAD && m != HTTP_POST) {
        respond_error(ctx, h, 405, "method not allowed");
    } else if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
        respond(ctx, h, 200, "text/html; charset=utf-8", tp__dashboard_html,
                tp__dashboard_len);
    } else if (strcmp(path, "/health") == 0) {
        char body[96];
        size_t n;
        int code = tp__console_health(h->con, body, sizeof(body), &n);
        respond(ctx, h, code, "text/plain; charset=utf-8", body, n);
    } else if (strcmp(path, "/metrics") == 0) {
        char *argv[1] = {"metrics"};
        if (h->con->opts.http_auth_reads && refuse_unauthorized(ctx, h))
            return;
        h->busy = true;
        h->x.caps = 0;
        tp__exec_argv(ctx, &h->x, 1, argv, false);
    } else if (strncmp(path, "/api/", 5) == 0) {
        route_api(ctx, h, path + 5, query, m == HTTP_POST);
    } else {
        respond_error(ctx, h, 404, "not found");
    }
}

/* ---- input ----------------------------------------------------------------*/

/* Parses from `data`; returns bytes used. Answers a complete request. */
static size_t
parse(tp_ctx *ctx, struct tp__http *h, const char *data, size_t len)
{
    size_t used = http_parser_execute(&h->p, &settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&h->p);

    if (h->ready) {
        h->ready = false;
        route(ctx, h);
        return used;
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        h->keep_alive = false;
        respond_error(ctx, h, h->error != 0 ? h->error : 400,
                      h->error != 0 ? reason_of(h->error)
                                    : http_errno_description(e));
        return len;
    }
    return used;
}

/* Resumes a parser paused at the end of a request (the parser asserts
 * when asked to resume from an error state, so check first). */
static void
resume(struct tp__http *h)
{
    if (HTTP_PARSER_ERRNO(&h->p) == HPE_PAUSED)
        http_parser_pause(&h->p, 0);
}

/* Runs what waits while nothing is in flight. */
static void
pump(tp_ctx *ctx, struct tp__http *h)
{
    while (!h->busy && !h->closing && h->pending.len != 0) {
        size_t used;
        resume(h);
        used = parse(ctx, h, h->pending.p, h->pending.len);
        tp__cbuf_consume(&h->pending, used);
        if (used == 0 && !h->busy)
            break;
    }
    if (!h->busy && !h->closing)
        resume(h);
}

void
tp__http_input(tp_ctx *ctx, struct tp__http *h, const void *data, size_t len)
{
    if (!h->open || h->closing)
        return;
    h->partial += len;
    if (tp__cbuf_put(&h->pending, data, len) != 0) {
        h->keep_alive = false;
        respond_error(ctx, h, 413, "too much input");
        return;
    }
    pump(ctx, h);
}

/* Gives up on the request awaited: 408 if some of it came, else (an idle
 * keep-alive connection) a quiet close. */
static void
time_out(tp_ctx *ctx, struct tp__http *h)
{
    h->keep_alive = false;
    if (h->partial != 0)
        respond_error(ctx, h, 408, "request not complete in time");
    h->closing = true;
    h->tr->close(ctx, h->t);
}

static void
http_tick(tp_ctx *ctx, struct tp__http *h)
{
    uint64_t ms = h->con->opts.http_request_timeout_ms;

    if (h->ticket.reserve && ms > RESERVE_MS)
        ms = RESERVE_MS;
    if (!h->busy && !h->closing && tp_now_ns() - h->ready_ns > ms * 1000000u)
        time_out(ctx, h);
}

bool
tp__http_handle(tp_ctx *ctx, struct tp__http *h, const tp_msg *m)
{
    if (!h->open)
        return false;
    if (m->type == TP__CON_TICK) {
        http_tick(ctx, h);
        return true;
    }
    if (m->type == TP__CON_EVICT) {
        /* A newcomer took our slot (we waited longest for a request). */
        if (!h->closing && !tp__hpool_owns(h->con, &h->ticket)) {
            atomic_fetch_add_explicit(&h->con->evicted, 1,
                                      memory_order_relaxed);
            time_out(ctx, h);
        }
        return true;
    }
    if (!tp__exec_handle(ctx, &h->x, m))
        return false;
    if (!h->busy)
        pump(ctx, h);
    return true;
}

/* A slot from the pool; false (503 written) when refused. */
static bool
take_slot(tp_ctx *ctx, struct tp__http *h)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Length: 0\r\nRetry-After: 1\r\n"
                               "Connection: close\r\n\r\n";
    tp_pid evicted;

    if (tp__hpool_enter(h->con, &h->key, tp_self(ctx), &h->ticket, &evicted) !=
        0) {
        atomic_fetch_add_explicit(&h->con->rejected, 1, memory_order_relaxed);
        h->tr->write(ctx, h->t, busy, sizeof(busy) - 1);
        return false;
    }
    if (evicted != TP_PID_NONE)
        tp_send(ctx, evicted, TP__CON_EVICT, NULL, 0);
    return true;
}

int
tp__http_open(tp_ctx *ctx, struct tp__http *h, struct tp_console *c,
              const struct tp__transport *tr, void *t,
              const struct tp__peer *peer)
{
    memset(h, 0, sizeof(*h));
    h->con = c, h->tr = tr, h->t = t;
    h->ticket.idx = -1;
    tp__addr_key_of(peer != NULL ? &peer->addr : NULL, &h->key);
    if (!take_slot(ctx, h))
        return -EUSERS;
    if (tp_send_interval(ctx, 1000, tp_self(ctx), TP__CON_TICK, NULL, 0,
                         NULL) != 0) {
        tp__hpool_leave(c, &h->ticket);
        return -ENOMEM;
    }
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    tp__exec_init(&h->x, c, h, 0, http_done);
    h->x.raw = true;
    tp__cbuf_init(&h->pending, HPENDING_MAX);
    h->ready_ns = tp_now_ns();
    h->open = true;
    return 0;
}

void
tp__http_close(tp_ctx *ctx, struct tp__http *h)
{
    if (!h->open)
        return;
    h->open = false;
    h->closing = true;
    tp__hpool_leave(h->con, &h->ticket);
    tp__exec_free(ctx, &h->x);
    tp__cbuf_free(&h->pending);
}
