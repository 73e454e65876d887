/*
 * net/ws.c - a WebSocket connection on its loop: the HTTP/1.1 upgrade
 * (parsed with http_parser, like the console's HTTP side), then frames to
 * messages through the decoder in ws_frame.c, pings answered, the close
 * handshake, and the actors' send and close calls.
 *
 * Layering: the connection delivers its plaintext (after TLS, for wss) to
 * tp__ws_data() instead of making DATA messages; complete messages go to
 * the owner through the connection's delivery path, so the mailbox marks
 * pause reading as for TCP. Frames the runtime writes itself (the 101
 * answer, pongs, Close) go through the connection's write path (TLS
 * included), as whole requests, so they never split an actor's frame.
 *
 * Memory: while the upgrade runs the connection holds its request's state
 * (struct http, about 1 KB); after it, only struct tp__ws (the decoder,
 * whose buffer exists only while a message is incomplete).
 */
#include "net_int.h"
#include "ws_int.h"

#include <errno.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <troupe/ws.h>

#define HEAD_MAX 8192u /* request line and headers */
#define PONG_QUEUED                                                            \
    65536u /* skip pongs while this much waits to be written                   \
            */
#define MSG_MAX (256u * 1024u * 1024u)

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct tp__ws_cfg {
    tp_ws_opts o;
    char protocols[256];
};

enum hdr_id { H_NONE = 0, H_UPGRADE, H_CONNECTION, H_KEY, H_VERSION, H_PROTO };

struct http {
    http_parser p;
    size_t bytes;
    uint8_t cur; /* header whose value is being read */
    bool in_value, done;
    char name[24];
    size_t name_len;
    char url[256], upgrade[32], connection[64], key[32], version[8];
    char proto[256];
    size_t url_len, len[6];
    /* Client: the Host header and the key we sent (its accept value is
     * what the answer's Sec-WebSocket-Accept must be). */
    char host[256];
    char mykey[25];
};

struct tp__ws {
    const struct tp__ws_cfg *cfg;
    struct http *http; /* the upgrade in progress, then NULL */
    struct tp__ws_dec dec;
    struct tp__wreq *held; /* actors' writes made before the upgrade */
    uint32_t start;        /* tick when the upgrade deadline started */
    bool upgraded, close_sent, close_rcvd;
    bool client, req_sent; /* an outbound connection (owns its cfg) */
    bool lingering;        /* both Closes done or ours for an error: the
                              close waits for the peer to go quiet */
    uint8_t linger_reason; /* then the close's tp_net_close reason */
    int linger_err;        /* ... and error */
    uint32_t linger_tick;  /* when the lingering began (loop ticks, ms) */
};

/* The state of a connection known to be a WebSocket one. */
static struct tp__ws *
ws_of(struct tp__conn *c)
{
    struct tp__ws *w = tp__conn_ws(c);

    TP_ASSERT(w != NULL);
    return w;
}

/* ---------------------------------------------------------------------- */
/* Options and listeners                                                  */

void
tp_ws_opts_init(tp_ws_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->max_message = 1024u * 1024u;
    o->upgrade_timeout_ms = 10000;
    o->close_timeout_ms = 2000;
}

int
tp__ws_listener_init(struct tp_listener *l, const tp_ws_opts *o)
{
    struct tp__ws_cfg *cfg;

    if (o->max_message == 0 || o->max_message > MSG_MAX ||
        o->upgrade_timeout_ms == 0 || l->o.conn.read_mode != TP_READ_ACTIVE ||
        (o->protocols != NULL &&
         strlen(o->protocols) >= sizeof(cfg->protocols)))
        return -EINVAL;
    if ((cfg = tp__calloc(1, sizeof(*cfg))) == NULL)
        return -ENOMEM;
    cfg->o = *o;
    if (o->protocols != NULL) {
        snprintf(cfg->protocols, sizeof(cfg->protocols), "%s", o->protocols);
        cfg->o.protocols = cfg->protocols;
    }
    l->ws = cfg;
    l->o.ws = NULL; /* the caller's pointer: only l->ws is ours */
    return 0;
}

void
tp__ws_listener_fini(struct tp_listener *l)
{
    tp__free(l->ws);
    l->ws = NULL;
}

int
tp__ws_server_new(struct tp_listener *l, struct tp__conn *c)
{
    struct tp__ws *w = tp__calloc(1, sizeof(*w));

    if (w == NULL || (w->http = tp__calloc(1, sizeof(*w->http))) == NULL) {
        tp__free(w);
        return -ENOMEM;
    }
    w->cfg = l->ws;
    http_parser_init(&w->http->p, HTTP_REQUEST);
    tp__ws_dec_init(&w->dec, l->ws->o.max_message, false);
    tp__conn_set_ws(c, w);
    return 0;
}

size_t
tp__ws_state_size(void)
{
    return sizeof(struct tp__ws);
}

static void discard_held(struct tp__ws *w);

void
tp__ws_free(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);

    tp__conn_set_ws(c, NULL);
    discard_held(w);
    tp__ws_discard(w);
}

void
tp__ws_discard(struct tp__ws *w)
{
    if (w == NULL)
        return;
    tp__ws_dec_fini(&w->dec);
    tp__free(w->http);
    if (w->client)
        tp__free((void *)w->cfg);
    tp__free(w);
}

static void
discard_held(struct tp__ws *w)
{
    struct tp__wreq *wr;

    while ((wr = w->held) != NULL) {
        w->held = (struct tp__wreq *)atomic_load_explicit(&wr->cmd.node.next,
                                                          memory_order_relaxed);
        tp__wreq_free(wr);
    }
}

/* ---------------------------------------------------------------------- */
/* Writing (loop)                                                         */

static bool
open_now(struct tp__conn *c)
{
    return atomic_load_explicit(&c->state, memory_order_relaxed) == TP__C_OPEN;
}

/* Writes head + body as one request (not counted in the write queue:
 * control frames and the upgrade answer are small and few). */
static void
write_raw(struct tp__conn *c, const void *head, size_t hn, const void *body,
          size_t bn)
{
    uint8_t klass;
    struct tp__wreq *w = tp__net_cmd_alloc(sizeof(*w) + hn + bn, &klass);

    if (w == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    memset(w, 0, sizeof(*w));
    w->klass = klass;
    w->internal = 1;
    w->h = tp__conn_handle(c);
    memcpy(w->data, head, hn);
    if (bn > 0)
        memcpy(w->data + hn, body, bn);
    w->base = w->data;
    w->len = (uint32_t)(hn + bn);
    tp__conn_write(c, w);
}

static void
write_frame(struct tp__conn *c, int op, const void *p, size_t n)
{
    uint8_t h[TP__WS_HDR_MAX], mask[4], body[125];
    size_t hn;

    if (!ws_of(c)->client) {
        hn = tp__ws_header(h, op, true, n, NULL);
        write_raw(c, h, hn, p, n);
        return;
    }
    /* A client masks every frame (control frames: at most 125 bytes). */
    RAND_bytes(mask, sizeof(mask));
    for (size_t i = 0; i < n && i < sizeof(body); i++)
        body[i] = ((const uint8_t *)p)[i] ^ mask[i & 3];
    hn = tp__ws_header(h, op, true, n, mask);
    write_raw(c, h, hn, body, n);
}

static void
send_close(struct tp__conn *c, unsigned code)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};

    if (ws_of(c)->close_sent)
        return;
    ws_of(c)->close_sent = true;
    write_frame(c, TP__WS_CLOSE, b, code != 0 ? 2 : 0);
}

static int
errno_of(int code)
{
    switch (code) {
    case 1007:
        return -EILSEQ;
    case 1009:
        return -EMSGSIZE;
    case 1011:
        return -ENOMEM;
    default:
        return -EPROTO;
    }
}

/* After our Close (for an error, or answering the peer's), the connection
 * closes once the peer has been quiet this long (or hung up), at most
 * close_timeout_ms after the Close. */
#define LINGER_QUIET_MS 100

/* (Re-)arms the lingering: LINGER_QUIET_MS from now, never past
 * close_timeout_ms after it began. */
static void
linger_arm(struct tp__conn *c, struct tp__ws *w)
{
    uint32_t spent = tp__net_tick(tp__conn_loop(c)) - w->linger_tick;
    uint32_t lim = w->cfg->o.close_timeout_ms;
    uint32_t left = spent < lim ? lim - spent : 1;

    tp__conn_timer_arm(c, left < LINGER_QUIET_MS ? left : LINGER_QUIET_MS);
}

/* Reads and drops what the socket holds now (bounded): true if any. */
static bool
drop_pending(struct tp__conn *c)
{
    char buf[4096];
    uv_os_fd_t fd;
    bool any = false;

    if (uv_fileno((uv_handle_t *)&c->h, &fd) != 0)
        return false;
    for (int i = 0; i < 64 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0; i++)
        any = true;
    return any;
}

/* Our Close is out: the connection is closed with (reason, err) after a
 * lingering while in which whatever the peer still sends is read and
 * dropped -- closing a socket with unread bytes makes the kernel send a
 * reset, which can overtake the Close frame (the peer then sees 1006
 * instead of, say, 1009). */
static void
linger(struct tp__conn *c, tp_net_close reason, int err)
{
    struct tp__ws *w = ws_of(c);

    if (!open_now(c))
        return;
    w->lingering = true;
    w->linger_reason = (uint8_t)reason;
    w->linger_err = err;
    w->linger_tick = tp__net_tick(tp__conn_loop(c));
    linger_arm(c, w);
}

/* A protocol error: Close with its code, then (lingering) the
 * connection. */
static void
fail(struct tp__conn *c, int code)
{
    send_close(c, (unsigned)code);
    linger(c, TP_NET_CLOSE_ERROR, errno_of(code));
}

bool
tp__ws_lingering(struct tp__conn *c, int *reason, int *err)
{
    struct tp__ws *w = tp__conn_ws(c);

    if (w == NULL || !w->lingering)
        return false;
    *reason = w->linger_reason;
    *err = w->linger_err;
    return true;
}

/* ---------------------------------------------------------------------- */
/* The upgrade                                                            */

static struct http *
http_of(http_parser *p)
{
    return tp__container_of(p, struct http, p);
}

static void
append(char *dst, size_t size, size_t *len, const char *p, size_t n)
{
    if (n > size - 1 - *len)
        n = size - 1 - *len;
    memcpy(dst + *len, p, n);
    *len += n;
    dst[*len] = '\0';
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
    struct http *h = http_of(p);

    append(h->url, sizeof(h->url), &h->url_len, at, n);
    return 0;
}

static int
on_field(http_parser *p, const char *at, size_t n)
{
    struct http *h = http_of(p);

    if (h->in_value) {
        h->in_value = false;
        h->name_len = 0;
    }
    append(h->name, sizeof(h->name), &h->name_len, at, n);
    return 0;
}

static uint8_t
header_id(const char *name)
{
    static const char *const names[] = {NULL,
                                        "upgrade",
                                        "connection",
                                        "sec-websocket-key",
                                        "sec-websocket-version",
                                        "sec-websocket-protocol"};

    for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i]) == 0)
            return (uint8_t)i;
    }
    /* A client's answer: kept where a request's key goes. */
    return strcasecmp(name, "sec-websocket-accept") == 0 ? H_KEY : H_NONE;
}

static int
on_value(http_parser *p, const char *at, size_t n)
{
    struct http *h = http_of(p);
    char *dst[] = {NULL,   h->upgrade, h->connection,
                   h->key, h->version, h->proto};
    size_t sizes[] = {0,
                      sizeof(h->upgrade),
                      sizeof(h->connection),
                      sizeof(h->key),
                      sizeof(h->version),
                      sizeof(h->proto)};

    if (!h->in_value) {
        h->in_value = true;
        h->cur = header_id(h->name);
        /* A repeated header joins the list (Connection, Protocol). */
        if (h->cur != H_NONE && h->len[h->cur] > 0)
            append(dst[h->cur], sizes[h->cur], &h->len[h->cur], ",", 1);
    }
    if (h->cur != H_NONE)
        append(dst[h->cur], sizes[h->cur], &h->len[h->cur], at, n);
    return 0;
}

static int
on_headers(http_parser *p)
{
    http_of(p)->done = true;
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers,
};

/* Whether a comma-separated list holds token (case-insensitive). */
static bool
has_token(const char *list, const char *token, size_t tn)
{
    const char *p = list;

    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e != '\0' && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if ((size_t)(e - p) == tn && strncasecmp(p, token, tn) == 0)
            return true;
        p = e;
    }
    return false;
}

/* The first of our protocols the client offered, or "". */
static void
pick_protocol(const struct tp__ws_cfg *cfg, const char *offered, char *out,
              size_t size)
{
    const char *p = cfg->protocols;

    out[0] = '\0';
    while (*p != '\0') {
        const char *e = strchr(p, ',');
        size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
        if (n > 0 && n < size && has_token(offered, p, n)) {
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
        p += n + (e != NULL ? 1 : 0);
    }
}

static void
accept_key(const char *key, char out[29])
{
    unsigned char md[SHA_DIGEST_LENGTH];
    char buf[64 + sizeof(GUID)];
    int n = snprintf(buf, sizeof(buf), "%s%s", key, GUID);

    SHA1((const unsigned char *)buf, (size_t)n, md);
    EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH);
}

static void
refuse(struct tp__conn *c, bool version)
{
    static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: "
                              "close\r\nContent-Length: 0\r\n\r\n";
    static const char ver[] = "HTTP/1.1 426 Upgrade Required\r\n"
                              "Sec-WebSocket-Version: 13\r\nConnection: "
                              "close\r\nContent-Length: 0\r\n\r\n";

    if (version)
        write_raw(c, ver, sizeof(ver) - 1, NULL, 0);
    else
        write_raw(c, bad, sizeof(bad) - 1, NULL, 0);
    ws_of(c)->close_sent = true; /* no Close frame: this is still HTTP */
    tp__conn_close(c, TP_NET_CLOSE_ERROR, -EBADMSG, true);
}

static bool
valid_request(struct http *h)
{
    unsigned char raw[32];

    return h->p.method == HTTP_GET &&
           (h->p.http_major > 1 ||
            (h->p.http_major == 1 && h->p.http_minor >= 1)) &&
           has_token(h->upgrade, "websocket", 9) &&
           has_token(h->connection, "upgrade", 7) && h->len[H_KEY] == 24 &&
           EVP_DecodeBlock(raw, (const unsigned char *)h->key, 24) == 18;
}

bool
tp__ws_upgraded(struct tp__conn *c)
{
    return ws_of(c)->upgraded;
}

bool
tp__ws_close_sent(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);

    return w->upgraded && w->close_sent;
}

bool
tp__ws_hold(struct tp__conn *c, struct tp__wreq *w)
{
    struct tp__ws *s = ws_of(c);
    struct tp__wreq *last = s->held;

    if (s->upgraded)
        return false;
    atomic_store_explicit(&w->cmd.node.next, NULL, memory_order_relaxed);
    if (last == NULL) {
        s->held = w;
        return true;
    }
    while (atomic_load_explicit(&last->cmd.node.next, memory_order_relaxed))
        last = (struct tp__wreq *)atomic_load_explicit(&last->cmd.node.next,
                                                       memory_order_relaxed);
    atomic_store_explicit(&last->cmd.node.next, &w->cmd.node,
                          memory_order_relaxed);
    return true;
}

/* The writes actors made before the upgrade, in order, after the 101. */
static void
release_held(struct tp__conn *c)
{
    struct tp__ws *s = ws_of(c);
    struct tp__wreq *w;

    while ((w = s->held) != NULL && open_now(c)) {
        s->held = (struct tp__wreq *)atomic_load_explicit(&w->cmd.node.next,
                                                          memory_order_relaxed);
        tp__conn_write(c, w);
    }
}

static void
upgraded(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);
    struct http *h = w->http;
    char acc[29], head[512];
    tp_ws_upgraded up;
    int n;

    memset(&up, 0, sizeof(up));
    up.conn = tp__conn_handle(c);
    snprintf(up.path, sizeof(up.path), "%s", h->url);
    if (w->cfg->protocols[0] != '\0')
        pick_protocol(w->cfg, h->proto, up.protocol, sizeof(up.protocol));
    accept_key(h->key, acc);
    n = snprintf(
        head, sizeof(head),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n",
        acc, up.protocol[0] ? "Sec-WebSocket-Protocol: " : "", up.protocol,
        up.protocol[0] ? "\r\n" : "");
    tp__free(w->http);
    w->http = NULL;
    w->upgraded = true;
    write_raw(c, head, (size_t)n, NULL, 0);
    if (!open_now(c))
        return;
    tp__conn_tell(c, TP_MSG_WS_UPGRADED, &up, sizeof(up));
    tp__conn_idle_arm(c); /* the upgrade deadline is over */
    release_held(c);
}

/* Feeds request bytes; returns how many belonged to the request. */
static size_t
http_feed(struct tp__conn *c, const char *p, size_t n)
{
    struct http *h = ws_of(c)->http;
    size_t used = http_parser_execute(&h->p, &settings, p, n);

    h->bytes += used;
    if (HTTP_PARSER_ERRNO(&h->p) != HPE_OK && !h->done) {
        refuse(c, false);
        return n;
    }
    if (!h->done) {
        if (h->bytes > HEAD_MAX)
            refuse(c, false);
        return n;
    }
    if (!valid_request(h) || h->bytes > HEAD_MAX) {
        refuse(c, false);
        return n;
    }
    if (strcmp(h->version, "13") != 0) {
        refuse(c, true);
        return n;
    }
    upgraded(c);
    return used;
}

/* ---------------------------------------------------------------------- */
/* The client's upgrade                                                   */

int
tp__ws_client_new(const tp_ws_opts *o, const char *host, struct tp__ws **out)
{
    struct tp__ws *w = tp__calloc(1, sizeof(*w));
    struct tp__ws_cfg *cfg = tp__calloc(1, sizeof(*cfg));
    struct http *h = tp__calloc(1, sizeof(*h));
    unsigned char raw[16];

    if (o->max_message == 0 || o->max_message > MSG_MAX ||
        o->upgrade_timeout_ms == 0 ||
        (o->protocols != NULL &&
         strlen(o->protocols) >= sizeof(cfg->protocols))) {
        tp__free(w);
        tp__free(cfg);
        tp__free(h);
        return -EINVAL;
    }
    if (w == NULL || cfg == NULL || h == NULL ||
        RAND_bytes(raw, sizeof(raw)) != 1) {
        tp__free(w);
        tp__free(cfg);
        tp__free(h);
        return -ENOMEM;
    }
    cfg->o = *o;
    if (o->protocols != NULL)
        snprintf(cfg->protocols, sizeof(cfg->protocols), "%s", o->protocols);
    cfg->o.protocols = cfg->protocols;
    cfg->o.path = cfg->o.host = NULL; /* copied into h below */
    snprintf(h->url, sizeof(h->url), "%s", o->path != NULL ? o->path : "/");
    snprintf(h->host, sizeof(h->host), "%s",
             o->host != NULL ? o->host
             : host != NULL  ? host
                             : "localhost");
    EVP_EncodeBlock((unsigned char *)h->mykey, raw, sizeof(raw));
    http_parser_init(&h->p, HTTP_RESPONSE);
    w->cfg = cfg;
    w->http = h;
    w->client = true;
    tp__ws_dec_init(&w->dec, o->max_message, true);
    *out = w;
    return 0;
}

static void
send_request(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);
    struct http *h = w->http;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                     h->url, h->host, h->mykey,
                     w->cfg->protocols[0] ? "Sec-WebSocket-Protocol: " : "",
                     w->cfg->protocols, w->cfg->protocols[0] ? "\r\n" : "");

    w->req_sent = true;
    write_raw(c, req, n > 0 && (size_t)n < sizeof(req) ? (size_t)n : 0, NULL,
              0);
}

static bool
valid_answer(struct tp__ws *w)
{
    struct http *h = w->http;
    char acc[29];

    accept_key(h->mykey, acc);
    return h->p.status_code == 101 && has_token(h->upgrade, "websocket", 9) &&
           has_token(h->connection, "upgrade", 7) && strcmp(h->key, acc) == 0 &&
           (h->proto[0] == '\0' ||
            has_token(w->cfg->protocols, h->proto, strlen(h->proto)));
}

static void
client_upgraded(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);
    tp_ws_upgraded up;

    memset(&up, 0, sizeof(up));
    up.conn = tp__conn_handle(c);
    snprintf(up.path, sizeof(up.path), "%s", w->http->url);
    memcpy(up.protocol, w->http->proto,
           strnlen(w->http->proto, sizeof(up.protocol) - 1));
    tp__free(w->http);
    w->http = NULL;
    w->upgraded = true;
    tp__conn_tell(c, TP_MSG_WS_UPGRADED, &up, sizeof(up));
    tp__conn_idle_arm(c);
    release_held(c);
}

/* Feeds the server's answer; returns how many bytes belonged to it. */
static size_t
answer_feed(struct tp__conn *c, const char *p, size_t n)
{
    struct tp__ws *w = ws_of(c);
    struct http *h = w->http;
    size_t used = http_parser_execute(&h->p, &settings, p, n);

    h->bytes += used;
    if ((HTTP_PARSER_ERRNO(&h->p) != HPE_OK && !h->done) ||
        h->bytes > HEAD_MAX || (h->done && !valid_answer(w))) {
        w->close_sent = true; /* still HTTP: no Close frame */
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -EBADMSG, true);
        return n;
    }
    if (!h->done)
        return n;
    client_upgraded(c);
    return used;
}

/* ---------------------------------------------------------------------- */
/* Frames                                                                 */

static void
peer_closed(struct tp__conn *c, const char *p, size_t n)
{
    struct tp__ws *w = ws_of(c);
    tp_ws_closing m;
    bool ours = w->close_sent;

    memset(&m, 0, sizeof(m));
    m.conn = tp__conn_handle(c);
    m.code = n >= 2 ? (uint16_t)((uint8_t)p[0] << 8 | (uint8_t)p[1]) : 1005;
    if (n > 2) {
        m.len = (uint16_t)(n - 2 < sizeof(m.reason) - 1 ? n - 2
                                                        : sizeof(m.reason) - 1);
        memcpy(m.reason, p + 2, m.len);
    }
    w->close_rcvd = true;
    tp__conn_tell(c, TP_MSG_WS_CLOSING, &m, sizeof(m));
    send_close(c, m.code == 1005 ? 1000 : m.code); /* the echo (5.5.1) */
    linger(c, ours ? TP_NET_CLOSE_LOCAL : TP_NET_CLOSE_PEER, 0);
}

static int
on_msg(void *user, int op, char *p, size_t n)
{
    struct tp__conn *c = user;
    struct tp__ws *w = ws_of(c);

    switch (op) {
    case TP__WS_TEXT:
    case TP__WS_BINARY:
        if (w->close_sent)
            return 0; /* closing: data is dropped (5.5.1) */
        tp__conn_deliver(
            c, op == TP__WS_TEXT ? TP_MSG_WS_TEXT : TP_MSG_WS_BINARY, p, n);
        return open_now(c) ? 0 : -1;
    case TP__WS_PING:
        if (!w->close_sent && c->h.write_queue_size < PONG_QUEUED)
            write_frame(c, TP__WS_PONG, p, n);
        return open_now(c) ? 0 : -1;
    case TP__WS_CLOSE:
        peer_closed(c, p, n);
        return -1;
    default: /* pong: nothing to do */
        return 0;
    }
}

void
tp__ws_data(struct tp__conn *c, const char *p, size_t n)
{
    struct tp__ws *w = ws_of(c);
    size_t used;
    int r;

    if (!w->upgraded) {
        used = w->client ? answer_feed(c, p, n) : http_feed(c, p, n);
        /* The feed may have upgraded (or closed) the connection. */
        if (!tp__ws_upgraded(c) || !open_now(c))
            return;
        p += used;
        n -= used;
    }
    if (w->lingering) { /* after the Closes: dropped */
        linger_arm(c, w);
        return;
    }
    if (w->close_rcvd || n == 0)
        return; /* after their Close: dropped */
    r = tp__ws_decode(&w->dec, (const uint8_t *)p, n, on_msg, c);
    if (r > 0 && open_now(c))
        fail(c, r);
}

/* ---------------------------------------------------------------------- */
/* Timers and closing                                                     */

bool
tp__ws_arm(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);
    uint32_t spent, lim = w->cfg->o.upgrade_timeout_ms;

    if (w->lingering)
        return true; /* its timer stays */
    if (w->upgraded)
        return false;
    if (w->client && !w->req_sent) /* the stream is up: ask */
        send_request(c);
    if (w->start == 0)
        w->start = tp__net_tick(tp__conn_loop(c)) | 1u;
    spent = tp__net_tick(tp__conn_loop(c)) - w->start;
    tp__conn_timer_arm(c, spent < lim ? lim - spent : 1);
    return true;
}

bool
tp__ws_timer(struct tp__conn *c)
{
    struct tp__ws *w = ws_of(c);
    uint32_t spent;

    if (!w->upgraded) {
        spent = tp__net_tick(tp__conn_loop(c)) - w->start;
        if (spent + 1 < w->cfg->o.upgrade_timeout_ms) {
            tp__conn_timer_arm(c, w->cfg->o.upgrade_timeout_ms - spent);
            return true;
        }
        w->close_sent = true; /* still HTTP: no Close frame */
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ETIMEDOUT, true);
        return true;
    }
    if (w->lingering) { /* the peer went quiet after the Closes */
        spent = tp__net_tick(tp__conn_loop(c)) - w->linger_tick;
        /* Timers run before the loop polls: bytes may be waiting. */
        if (drop_pending(c) && spent < w->cfg->o.close_timeout_ms) {
            linger_arm(c, w);
            return true;
        }
        tp__conn_close(c, (tp_net_close)w->linger_reason, w->linger_err, true);
        return true;
    }
    if (w->close_sent && !w->close_rcvd) {
        tp__conn_close(c, TP_NET_CLOSE_LOCAL, 0, true);
        return true;
    }
    return false;
}

void
tp__ws_on_close(struct tp__conn *c, int reason)
{
    struct tp__ws *w = ws_of(c);

    if (!w->upgraded || w->close_sent)
        return;
    send_close(c,
               reason == TP_NET_CLOSE_DRAIN || reason == TP_NET_CLOSE_OWNER_EXIT
                   ? TP_WS_GOING_AWAY
                   : TP_WS_NORMAL);
}

void
tp__ws_close_cmd(struct tp__conn *c, unsigned code)
{
    struct tp__ws *w = ws_of(c);

    if (w == NULL || !w->upgraded) {
        tp__conn_close(c, TP_NET_CLOSE_LOCAL, 0, true);
        return;
    }
    if (w->close_sent)
        return;
    send_close(c, code);
    if (open_now(c))
        tp__conn_timer_arm(c, w->cfg->o.close_timeout_ms);
}

/* ---------------------------------------------------------------------- */
/* What actors call                                                       */

/* An outbound connection (mode is readable from any thread). */
static bool
outbound(tp_ctx *ctx, tp_conn conn)
{
    struct tp__conn *c =
        ctx != NULL ? tp__conn_resolve(tp__net_of(ctx->rt), conn) : NULL;

    return c != NULL && (atomic_load_explicit(&c->mode, memory_order_relaxed) &
                         TP__MODE_OUTBOUND);
}

static int
send_msg(tp_ctx *ctx, tp_conn conn, int op, const void *data, size_t len)
{
    uint8_t stack[4096];
    uint8_t *buf;
    size_t hn;
    int r;

    if ((data == NULL && len != 0) || len > (1u << 30))
        return -EINVAL;
    buf = len + TP__WS_HDR_MAX > sizeof(stack)
              ? tp__malloc(len + TP__WS_HDR_MAX)
              : stack;
    if (buf == NULL)
        return -ENOMEM;
    if (outbound(ctx, conn)) { /* a client masks its frames */
        uint8_t mask[4];
        RAND_bytes(mask, sizeof(mask));
        hn = tp__ws_header(buf, op, true, len, mask);
        for (size_t i = 0; i < len; i++)
            buf[hn + i] = ((const uint8_t *)data)[i] ^ mask[i & 3];
    } else {
        hn = tp__ws_header(buf, op, true, len, NULL);
        if (len > 0)
            memcpy(buf + hn, data, len);
    }
    r = tp_tcp_send(ctx, conn, buf, hn + len);
    if (buf != stack)
        tp__free(buf);
    return r;
}

int
tp_ws_send_text(tp_ctx *ctx, tp_conn conn, const void *data, size_t len)
{
    return send_msg(ctx, conn, TP__WS_TEXT, data, len);
}

int
tp_ws_send_binary(tp_ctx *ctx, tp_conn conn, const void *data, size_t len)
{
    return send_msg(ctx, conn, TP__WS_BINARY, data, len);
}

int
tp_ws_close(tp_ctx *ctx, tp_conn conn, uint16_t code)
{
    if (ctx == NULL || code < 1000 || code > 4999 || code == 1004 ||
        code == 1005 || code == 1006 || code == 1015)
        return -EINVAL;
    return tp__net_post(tp__net_of(ctx->rt), conn, TP__OP_WS_CLOSE, code);
}
