/*
 * net/tls.c - TLS on a connection's own loop (OpenSSL 3).
 *
 * Each TLS connection has one SSL object over one custom BIO that never
 * blocks and owns no buffer of its own:
 *  - reading: read_cb hands the ciphertext it just read (in the loop's
 *    shared read buffer) to the BIO as borrowed input; SSL_read() decrypts
 *    into a per-thread plaintext buffer and each piece becomes a DATA
 *    message through the connection's normal path (flow control, modes,
 *    credit). Ciphertext not consumed when the connection stops wanting
 *    data (flow control, once/passive mode) is copied to a per-connection
 *    buffer and served first when reading resumes.
 *  - writing: the BIO appends records to a write request that is handed,
 *    whole, to the connection's raw write path. A plaintext write is
 *    encrypted on the loop; its request carries the plaintext's count in
 *    the write queue, so write marks and limits count plaintext bytes
 *    exactly as on plain TCP. Writes made during the handshake wait in a
 *    list (still counted) and go out, in order, once it finishes.
 * With SSL_MODE_RELEASE_BUFFERS OpenSSL drops its 17 KB record buffers
 * whenever nothing is in flight, so an idle connection holds only the SSL
 * object and its session (see bench/TLS.md for the measured size).
 *
 * The handshake has its own deadline on the connection's wheel timer (the
 * idle timeout takes the timer over when it ends). Failures close with
 * TP_NET_CLOSE_ERROR and an errno (troupe/tls.h), and the OpenSSL text is
 * logged. All of this runs on the connection's loop thread, except context
 * creation and listener bookkeeping (any thread) and the creation of an
 * outbound connection's state (the connecting actor, before its loop sees
 * it).
 */
#include "tls_int.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define PLAIN_BUF     65536u /* read_chunk is at most 64 KiB */
#define OUT_MIN       2048u  /* first size of a ciphertext request */
#define REC_OVERHEAD  64u    /* upper bound of a record's framing + tag */
#define REC_PLAIN_MAX 16384u
#define HS_DEFAULT_MS 10000u

enum phase { PH_HANDSHAKE = 0, PH_OPEN, PH_DEAD };

struct tp_tls_ctx {
    SSL_CTX *ssl;
    _Atomic int refs;
    bool server, verify;
    uint32_t hs_ms;
    unsigned alpn_len;
    unsigned char alpn[256]; /* wire format: length-prefixed names */
};

struct tp__tls {
    struct tp__layer_head head; /* first: a wss connection's WebSocket */
    SSL *ssl;
    struct tp_tls_ctx *ctx;
    const char *in; /* borrowed ciphertext of the read in progress */
    size_t in_len;
    char *keep; /* owned ciphertext not consumed yet */
    size_t keep_len, keep_off;
    struct tp__wreq *out; /* records being written */
    uint32_t out_cap, out_hint;
    struct tp__wreq *pend, *pend_tail; /* plaintext held by the handshake */
    uint32_t hs_start;
    _Atomic uint8_t phase; /* the info call reads it from other threads */
    bool client, reported, pumping, shut_sent;
};

/* Guards listener context swaps and connection state frees against
 * tp_tls_conn_get_info() and accepts (both rare next to I/O). */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static BIO_METHOD *bio_method;
static pthread_key_t plain_key;

/* The state of a connection known to be a TLS one (the hooks only call
 * in when tp__conn_tls() says so). */
static struct tp__tls *
tls_of(struct tp__conn *c)
{
    return (struct tp__tls *)c->layer;
}

/* ---------------------------------------------------------------------- */
/* Contexts                                                               */

void
tp_tls_opts_init(tp_tls_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->verify_peer = true;
    o->min_version = TP_TLS_1_2;
    o->handshake_timeout_ms = HS_DEFAULT_MS;
    o->release_buffers = true;
}

static void
log_ssl_errors(const char *what)
{
    char buf[256];
    unsigned long e;

    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        tp_log(TP_LOG_WARN, "tls: %s: %s", what, buf);
    }
}

/* "h2,http/1.1" to the wire format. */
static int
alpn_wire(const char *list, unsigned char *out, unsigned *len)
{
    size_t n = 0;

    for (const char *p = list; *p != '\0';) {
        const char *e = strchr(p, ',');
        size_t k = e != NULL ? (size_t)(e - p) : strlen(p);
        if (k == 0 || k > 255 || n + 1 + k > 255)
            return -EINVAL;
        out[n++] = (unsigned char)k;
        for (size_t i = 0; i < k; i++) /* length-prefixed, no NUL */
            out[n++] = (unsigned char)p[i];
        p += k + (e != NULL ? 1 : 0);
    }
    *len = (unsigned)n;
    return n > 0 ? 0 : -EINVAL;
}

static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
            const unsigned char *in, unsigned int inlen, void *arg)
{
    struct tp_tls_ctx *t = arg;
    unsigned char *sel = NULL;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, t->alpn, t->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static int
ctx_files(struct tp_tls_ctx *t, const tp_tls_opts *o)
{
    SSL_CTX *s = t->ssl;

    if (o->cert_file != NULL &&
        (SSL_CTX_use_certificate_chain_file(s, o->cert_file) != 1 ||
         SSL_CTX_use_PrivateKey_file(s, o->key_file, SSL_FILETYPE_PEM) != 1 ||
         SSL_CTX_check_private_key(s) != 1))
        return -EINVAL;
    if (o->ca_file != NULL &&
        SSL_CTX_load_verify_locations(s, o->ca_file, NULL) != 1)
        return -EINVAL;
    if (o->ca_file == NULL && !o->server && o->verify_peer &&
        SSL_CTX_set_default_verify_paths(s) != 1)
        return -EINVAL;
    if (o->server && o->verify_peer) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
        if (names == NULL)
            return -EINVAL;
        SSL_CTX_set_client_CA_list(s, names);
    }
    return 0;
}

static int
ctx_setup(struct tp_tls_ctx *t, const tp_tls_opts *o)
{
    SSL_CTX *s = t->ssl;
    int mode = SSL_VERIFY_NONE;

    if (SSL_CTX_set_min_proto_version(s, o->min_version == TP_TLS_1_3
                                             ? TLS1_3_VERSION
                                             : TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(s, o->ciphers != NULL
                                       ? o->ciphers
                                       : "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_set1_groups_list(
            s, o->groups != NULL ? o->groups : "X25519:P-256:P-384") != 1)
        return -EINVAL;
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (o->release_buffers)
        SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
    if (o->server)
        SSL_CTX_set_session_id_context(s, (const unsigned char *)"troupe", 6);
    if (o->verify_peer)
        mode =
            SSL_VERIFY_PEER | (o->server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    SSL_CTX_set_verify(s, mode, NULL);
    if (o->alpn != NULL) {
        if (alpn_wire(o->alpn, t->alpn, &t->alpn_len) != 0)
            return -EINVAL;
        if (o->server)
            SSL_CTX_set_alpn_select_cb(s, alpn_select, t);
        else if (SSL_CTX_set_alpn_protos(s, t->alpn, t->alpn_len) != 0)
            return -EINVAL;
    }
    return ctx_files(t, o);
}

static int
opts_check(const tp_tls_opts *o)
{
    if (o == NULL || o->handshake_timeout_ms == 0 ||
        (o->min_version != TP_TLS_1_2 && o->min_version != TP_TLS_1_3))
        return -EINVAL;
    if ((o->cert_file == NULL) != (o->key_file == NULL))
        return -EINVAL;
    if (o->server &&
        (o->cert_file == NULL || (o->verify_peer && o->ca_file == NULL)))
        return -EINVAL;
    return 0;
}

int
tp_tls_ctx_new(const tp_tls_opts *o, tp_tls_ctx **out)
{
    struct tp_tls_ctx *t;
    int err = opts_check(o);

    if (err != 0 || out == NULL)
        return -EINVAL;
    if ((t = tp__calloc(1, sizeof(*t))) == NULL)
        return -ENOMEM;
    ERR_clear_error();
    t->ssl = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
    if (t->ssl == NULL) {
        tp__free(t);
        return -ENOMEM;
    }
    atomic_init(&t->refs, 1);
    t->server = o->server;
    t->verify = o->verify_peer;
    t->hs_ms = o->handshake_timeout_ms;
    if ((err = ctx_setup(t, o)) != 0) {
        log_ssl_errors("context");
        SSL_CTX_free(t->ssl);
        tp__free(t);
        return err;
    }
    *out = t;
    return 0;
}

static void
ctx_ref(struct tp_tls_ctx *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
tp_tls_ctx_free(tp_tls_ctx *t)
{
    /* acq_rel: the last owner sees every other owner's use. */
    if (t == NULL ||
        atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(t->ssl);
    tp__free(t);
}

/* ---------------------------------------------------------------------- */
/* Listeners                                                              */

int
tp__tls_listener_init(struct tp_listener *l, struct tp_tls_ctx *ctx)
{
    if (!ctx->server)
        return -EINVAL;
    ctx_ref(ctx);
    l->tls = ctx;
    l->o.tls = NULL; /* the caller's pointer: only l->tls is ours */
    return 0;
}

void
tp__tls_listener_fini(struct tp_listener *l)
{
    tp_tls_ctx_free(l->tls);
    l->tls = NULL;
}

int
tp_tls_listener_reload(tp_listener *l, tp_tls_ctx *ctx)
{
    struct tp_tls_ctx *old;

    if (l == NULL || ctx == NULL || !ctx->server)
        return -EINVAL;
    pthread_mutex_lock(&tls_lock);
    old = l->tls;
    if (old != NULL) {
        ctx_ref(ctx);
        l->tls = ctx;
    }
    pthread_mutex_unlock(&tls_lock);
    if (old == NULL)
        return -EINVAL;
    tp_tls_ctx_free(old);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* The BIO                                                                */

static int
out_reserve(struct tp__tls *t, size_t n)
{
    struct tp__wreq *w = t->out, *nw;
    size_t used = w != NULL ? w->len : 0, cap;
    uint8_t klass;

    if (w != NULL && used + n <= t->out_cap)
        return 0;
    cap = t->out_cap * 2 > used + n ? t->out_cap * 2 : used + n;
    if (cap < t->out_hint)
        cap = t->out_hint;
    if (cap < OUT_MIN)
        cap = OUT_MIN;
    if (cap > UINT32_MAX - sizeof(*nw))
        return -ENOMEM;
    if ((nw = tp__net_cmd_alloc(sizeof(*nw) + cap, &klass)) == NULL)
        return -ENOMEM;
    memset(nw, 0, sizeof(*nw));
    nw->klass = klass;
    if (w != NULL) {
        memcpy(nw->data, w->data, used);
        nw->len = (uint32_t)used;
        tp__net_cmd_free(w, w->klass);
    }
    t->out = nw;
    t->out_cap = (uint32_t)cap;
    return 0;
}

static int
bio_write(BIO *b, const char *p, int n)
{
    struct tp__tls *t = BIO_get_data(b);

    BIO_clear_retry_flags(b);
    if (n <= 0)
        return 0;
    if (out_reserve(t, (size_t)n) != 0)
        return -1;
    memcpy(t->out->data + t->out->len, p, (size_t)n);
    t->out->len += (uint32_t)n;
    return n;
}

static int
bio_read(BIO *b, char *p, int n)
{
    struct tp__tls *t = BIO_get_data(b);
    size_t k;

    BIO_clear_retry_flags(b);
    if (t->keep_len > 0) {
        k = t->keep_len < (size_t)n ? t->keep_len : (size_t)n;
        memcpy(p, t->keep + t->keep_off, k);
        t->keep_off += k;
        if ((t->keep_len -= k) == 0) {
            tp__free(t->keep);
            t->keep = NULL;
            t->keep_off = 0;
        }
        return (int)k;
    }
    if (t->in_len == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    k = t->in_len < (size_t)n ? t->in_len : (size_t)n;
    memcpy(p, t->in, k);
    t->in += k;
    t->in_len -= k;
    return (int)k;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct tp__tls *t = BIO_get_data(b);

    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return t != NULL ? (long)(t->keep_len + t->in_len) : 0;
    default:
        return 0;
    }
}

static int
bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void
plain_free(void *p)
{
    tp__free(p);
}

static void
init_once(void)
{
    bio_method =
        BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "troupe");
    if (bio_method != NULL) {
        BIO_meth_set_write(bio_method, bio_write);
        BIO_meth_set_read(bio_method, bio_read);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
        BIO_meth_set_create(bio_method, bio_create);
    }
    pthread_key_create(&plain_key, plain_free);
}

/* The calling loop thread's plaintext buffer (freed with the thread). */
static char *
plain_buf(void)
{
    char *p = pthread_getspecific(plain_key);

    if (p == NULL && (p = tp__malloc(PLAIN_BUF)) != NULL)
        pthread_setspecific(plain_key, p);
    return p;
}

/* ---------------------------------------------------------------------- */
/* Connection state                                                       */

static struct tp__tls *
state_new(struct tp_tls_ctx *ctx, bool client)
{
    struct tp__tls *t;
    BIO *bio;

    pthread_once(&once, init_once);
    if (bio_method == NULL || (t = tp__calloc(1, sizeof(*t))) == NULL)
        return NULL;
    t->ssl = SSL_new(ctx->ssl);
    bio = t->ssl != NULL ? BIO_new(bio_method) : NULL;
    if (bio == NULL) {
        SSL_free(t->ssl);
        tp__free(t);
        return NULL;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one BIO both ways: one reference */
    if (client)
        SSL_set_connect_state(t->ssl);
    else
        SSL_set_accept_state(t->ssl);
    t->client = client;
    t->ctx = ctx;
    ctx_ref(ctx);
    return t;
}

static void
state_free(struct tp__tls *t)
{
    struct tp__wreq *w;

    SSL_free(t->ssl);
    while ((w = t->pend) != NULL) {
        t->pend = (struct tp__wreq *)atomic_load_explicit(&w->cmd.node.next,
                                                          memory_order_relaxed);
        tp__wreq_free(w);
    }
    if (t->out != NULL)
        tp__net_cmd_free(t->out, t->out->klass);
    tp__free(t->keep);
    tp_tls_ctx_free(t->ctx);
    tp__free(t);
}

int
tp__tls_server_new(struct tp_listener *l, struct tp__conn *c)
{
    struct tp__tls *t;

    pthread_mutex_lock(&tls_lock);
    t = state_new(l->tls, false);
    if (t != NULL)
        tp__conn_set_tls(c, t);
    pthread_mutex_unlock(&tls_lock);
    return t != NULL ? 0 : -ENOMEM;
}

static int
set_peer_name(struct tp__tls *t, const char *name, bool is_ip)
{
    if (name == NULL)
        return 0;
    if (is_ip)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1
                   ? 0
                   : -EINVAL;
    if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return -EINVAL;
    return SSL_set1_host(t->ssl, name) == 1 ? 0 : -EINVAL;
}

int
tp__tls_client_new(struct tp_tls_ctx *ctx, const char *name, bool is_ip,
                   struct tp__tls **out)
{
    struct tp__tls *t;
    int err;

    if (ctx->server)
        return -EINVAL;
    if ((t = state_new(ctx, true)) == NULL)
        return -ENOMEM;
    if (ctx->verify && (err = set_peer_name(t, name, is_ip)) != 0) {
        state_free(t);
        return err;
    }
    if (!ctx->verify && name != NULL && !is_ip)
        SSL_set_tlsext_host_name(t->ssl, name);
    *out = t;
    return 0;
}

void
tp__tls_discard(struct tp__tls *t)
{
    if (t != NULL)
        state_free(t);
}

void
tp__tls_free(struct tp__conn *c)
{
    struct tp__tls *t;
    struct tp__sched *s = c->h.loop->data;

    pthread_mutex_lock(&tls_lock);
    t = tls_of(c);
    tp__conn_set_tls(c, NULL);
    pthread_mutex_unlock(&tls_lock);
    /* Closed during its handshake: nobody got CONNECTED; the runtime's
     * count of connects in progress still holds this one. */
    if (t->client && !t->reported)
        tp__rt_pending_add(s->rt, -1);
    state_free(t);
}

void
tp__tls_reported(struct tp__conn *c)
{
    tls_of(c)->reported = true;
}

/* ---------------------------------------------------------------------- */
/* Records                                                                */

static uint8_t
phase_of(struct tp__tls *t)
{
    return atomic_load_explicit(&t->phase, memory_order_relaxed);
}

static bool
conn_open(struct tp__conn *c)
{
    return atomic_load_explicit(&c->state, memory_order_relaxed) == TP__C_OPEN;
}

/* Hands the records written so far to the socket; `queued` plaintext
 * bytes of the write queue are settled when they are written. */
static void
flush(struct tp__conn *c, uint32_t queued)
{
    struct tp__wreq *w = tls_of(c)->out;

    if (w == NULL)
        return;
    tls_of(c)->out = NULL;
    tls_of(c)->out_cap = 0;
    w->h = tp__conn_handle(c);
    w->base = w->data;
    w->queued = queued;
    tp__conn_write_raw(c, w);
}

static int
handshake_error(struct tp__tls *t)
{
    long v = SSL_get_verify_result(t->ssl);
    int r = ERR_GET_REASON(ERR_peek_error());

    if (v != X509_V_OK || r == SSL_R_CERTIFICATE_VERIFY_FAILED ||
        r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
        return -EKEYREJECTED;
    return -EPROTO;
}

static void
log_failure(struct tp__conn *c, int err)
{
    long v = SSL_get_verify_result(tls_of(c)->ssl);
    char buf[256] = "";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    tp_log(TP_LOG_INFO, "tls: conn %#llx closed (%s): %s%s%s",
           (unsigned long long)tp__conn_handle(c), tp_strerror(err), buf,
           v != X509_V_OK ? "; verify: " : "",
           v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
    ERR_clear_error();
}

static void
fail(struct tp__conn *c, int err)
{
    struct tp__tls *t = tls_of(c);
    bool report = t->client && !t->reported;

    log_failure(c, err);
    atomic_store_explicit(&t->phase, PH_DEAD, memory_order_relaxed);
    flush(c, 0); /* the alert, if OpenSSL wrote one */
    if (report)
        tp__connect_report(c, err);
    else
        tp__conn_close(c, TP_NET_CLOSE_ERROR, err, true);
}

static void
encrypt(struct tp__conn *c, struct tp__wreq *w)
{
    struct tp__tls *t = tls_of(c);
    uint32_t queued = w->queued;
    int n;

    t->out_hint = w->len + (w->len / REC_PLAIN_MAX + 1) * REC_OVERHEAD;
    ERR_clear_error();
    n = SSL_write(t->ssl, w->base, (int)w->len);
    t->out_hint = 0;
    tp__wreq_free(w);
    if (n <= 0) {
        fail(c, -ENOMEM); /* a memory BIO fails only for memory */
        return;
    }
    flush(c, queued);
}

void
tp__tls_write(struct tp__conn *c, struct tp__wreq *w)
{
    struct tp__tls *t = tls_of(c);

    if (phase_of(t) == PH_OPEN) {
        encrypt(c, w);
        return;
    }
    if (phase_of(t) == PH_DEAD) {
        tp__conn_write_raw(c, w); /* not writable: settled and freed */
        return;
    }
    atomic_store_explicit(&w->cmd.node.next, NULL, memory_order_relaxed);
    if (t->pend_tail != NULL)
        atomic_store_explicit(&t->pend_tail->cmd.node.next, &w->cmd.node,
                              memory_order_relaxed);
    else
        t->pend = w;
    t->pend_tail = w;
}

/* Keeps the ciphertext of this read that was not consumed. */
static void
keep_rest(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    char *k;

    if (t->in_len == 0)
        return;
    if ((k = tp__malloc(t->keep_len + t->in_len)) == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    if (t->keep_len > 0)
        memcpy(k, t->keep + t->keep_off, t->keep_len);
    memcpy(k + t->keep_len, t->in, t->in_len);
    tp__free(t->keep);
    t->keep = k;
    t->keep_off = 0;
    t->keep_len += t->in_len;
    t->in_len = 0;
}

void
tp__tls_pump(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    uint32_t chunk = tp__conn_cfg(c)->read_chunk;
    char *buf;
    int n, e;

    if (phase_of(t) != PH_OPEN)
        return;
    if ((buf = plain_buf()) == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    t->pumping = true;
    while (phase_of(t) == PH_OPEN && tp__conn_want_read(c)) {
        ERR_clear_error();
        if ((n = SSL_read(t->ssl, buf, (int)chunk)) > 0) {
            tp__conn_on_data(c, buf, (size_t)n);
            continue;
        }
        e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        t->pumping = false;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify */
            flush(c, 0);
            tp__conn_on_eof(c);
        } else {
            fail(c, -EBADMSG);
        }
        return;
    }
    t->pumping = false;
    flush(c, 0); /* key updates, tickets, alerts */
}

static void
established(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    struct tp__wreq *w;

    /* release: the info call reads what the handshake set once it sees
     * PH_OPEN. */
    atomic_store_explicit(&t->phase, PH_OPEN, memory_order_release);
    tp__conn_idle_arm(c);
    if (t->client)
        tp__connect_report(c, 0);
    while ((w = t->pend) != NULL && conn_open(c)) {
        t->pend = (struct tp__wreq *)atomic_load_explicit(&w->cmd.node.next,
                                                          memory_order_relaxed);
        if (t->pend == NULL)
            t->pend_tail = NULL;
        encrypt(c, w);
    }
    if (conn_open(c))
        tp__conn_read_update(c); /* the mode decides from now on */
    if (conn_open(c))
        tp__tls_pump(c);
}

static void
handshake(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    int r, e;

    ERR_clear_error();
    r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        flush(c, 0);
        if (conn_open(c))
            established(c);
        return;
    }
    e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        flush(c, 0);
        return;
    }
    fail(c, handshake_error(t));
}

void
tp__tls_read(struct tp__conn *c, const char *p, size_t n)
{
    struct tp__tls *t = tls_of(c);

    t->in = p;
    t->in_len = n;
    if (phase_of(t) == PH_HANDSHAKE)
        handshake(c);
    else if (phase_of(t) == PH_OPEN)
        tp__tls_pump(c);
    if (conn_open(c) && phase_of(t) == PH_OPEN)
        keep_rest(c);
    t->in = NULL;
    t->in_len = 0;
}

void
tp__tls_want(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);

    /* Every caller is on the loop, between callbacks or inside a command:
     * delivering at once is what a readable socket would do next. Inside
     * the pump (an actor's DATA changed the mode) it carries on itself. */
    if (phase_of(t) != PH_OPEN || t->pumping ||
        (t->keep_len == 0 && !SSL_has_pending(t->ssl)))
        return;
    tp__tls_pump(c);
}

bool
tp__tls_handshaking(struct tp__conn *c)
{
    return phase_of(tls_of(c)) == PH_HANDSHAKE;
}

void
tp__tls_opened(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);

    t->hs_start = tp__net_tick(tp__conn_loop(c));
    tp__conn_timer_arm(c, t->ctx->hs_ms);
    if (t->client)
        handshake(c); /* the client hello */
}

bool
tp__tls_timer(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    uint32_t spent;

    if (phase_of(t) != PH_HANDSHAKE)
        return false;
    spent = tp__net_tick(tp__conn_loop(c)) - t->hs_start;
    if (spent < t->ctx->hs_ms) {
        tp__conn_timer_arm(c, t->ctx->hs_ms - spent);
        return true;
    }
    fail(c, -ETIMEDOUT);
    return true;
}

void
tp__tls_close_notify(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);

    if (phase_of(t) != PH_OPEN || t->shut_sent)
        return;
    t->shut_sent = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl);
    ERR_clear_error();
    flush(c, 0);
}

/* ---------------------------------------------------------------------- */
/* Introspection                                                          */

static void
fill_info(struct tp__tls *t, tp_tls_info *o)
{
    const unsigned char *alpn = NULL;
    unsigned alen = 0;

    o->handshake_done = true;
    snprintf(o->version, sizeof(o->version), "%s", SSL_get_version(t->ssl));
    snprintf(o->cipher, sizeof(o->cipher), "%s",
             SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl)));
    SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
    if (alen >= sizeof(o->alpn))
        alen = sizeof(o->alpn) - 1;
    if (alen > 0)
        memcpy(o->alpn, alpn, alen);
    o->alpn[alen] = '\0';
    o->resumed = SSL_session_reused(t->ssl) == 1;
    o->peer_cert = SSL_get0_peer_certificate(t->ssl) != NULL;
}

int
tp_tls_conn_get_info(tp_runtime *rt, tp_conn h, tp_tls_info *out)
{
    struct tp__conn *c;
    struct tp__tls *t;
    int err = 0;

    if (rt == NULL || out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    /* CLOSING is set before the owner is told CLOSED: once it knows, the
     * connection is gone for this call too. */
    if ((c = tp__conn_resolve(tp__net_of(rt), h)) == NULL ||
        atomic_load_explicit(&c->state, memory_order_acquire) >= TP__C_CLOSING)
        return -ENOTCONN;
    pthread_mutex_lock(&tls_lock);
    if ((t = tp__conn_tls(c)) == NULL)
        err = -EINVAL;
    /* acquire: pairs with the release of PH_OPEN in established(). */
    else if (atomic_load_explicit(&t->phase, memory_order_acquire) == PH_OPEN)
        fill_info(t, out);
    pthread_mutex_unlock(&tls_lock);
    return err;
}
