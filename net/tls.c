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
 * object and its session (about 14 KB, see bench/TLS.md).
 *
 * A server connection that negotiated TLS 1.3 with an AES-GCM or
 * ChaCha20-Poly1305 suite does not keep even that: once the handshake and
 * its session tickets are done, the SSL object is freed and the record
 * layer runs here ("lite" below, RFC 8446 section 5) from the application
 * traffic secrets, which OpenSSL hands over through its key-log callback
 * (nothing is logged). What stays is the secrets, keys, IVs and sequence
 * numbers (288 bytes, next to the 120 of the TLS state); the AEAD contexts are
 * made for each burst of records and freed after it. Handled: application data,
 * close_notify (and user_canceled, ignored), the peer's fatal alerts, KeyUpdate
 * both ways (answered when requested), and every malformed record closes with
 * the alert OpenSSL would send (bad_record_mac, record_overflow,
 * decode_error, unexpected_message, illegal_parameter). Not handled, so
 * such a connection keeps its SSL object: TLS 1.2, the CCM suites, client
 * connections (they must read the server's NewSessionTickets), and a
 * handshake that left bytes inside OpenSSL. Post-handshake messages split
 * over several records are refused (unexpected_message): a client only
 * sends KeyUpdate (5 bytes) after the handshake. TP_TLS_KEEP_SSL=1 in the
 * environment (read once) keeps the SSL object on every connection.
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
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_BUF     65536u /* read_chunk is at most 64 KiB */
#define OUT_MIN       2048u  /* first size of a ciphertext request */
#define REC_OVERHEAD  64u    /* upper bound of a record's framing + tag */
#define REC_PLAIN_MAX 16384u
#define HS_DEFAULT_MS 10000u
#define TICKETS       1u /* TLS 1.3 session tickets per handshake */
#define TAG_LEN       16u
#define REC_CT_MAX    (REC_PLAIN_MAX + 256u) /* RFC 8446 5.2 */

/* TLS alerts the record layer sends (RFC 8446 6). */
#define AL_CLOSE_NOTIFY  0
#define AL_UNEXPECTED    10
#define AL_BAD_MAC       20
#define AL_OVERFLOW      22
#define AL_ILLEGAL_PARAM 47
#define AL_DECODE_ERROR  50
#define AL_INTERNAL      80 /* ours: out of memory */
#define AL_USER_CANCELED 90
#define CT_ALERT         21
#define CT_HANDSHAKE     22
#define CT_APPDATA       23
#define HS_KEY_UPDATE    24

enum phase { PH_HANDSHAKE = 0, PH_OPEN, PH_DEAD };

struct tp_tls_ctx {
    SSL_CTX *ssl;
    _Atomic int refs;
    bool server, verify;
    uint32_t hs_ms;
    /* TLS 1.3 tickets sent after the handshake (OpenSSL's own count is
     * set to 0 so that none is written before the record layer's switch
     * to lite; see send_tickets()). */
    unsigned tickets;
    unsigned alpn_len;
    unsigned char alpn[256]; /* wire format: length-prefixed names */
};

/* One direction of TLS 1.3 record protection. */
struct dir13 {
    uint64_t seq;
    uint8_t secret[48], key[32], iv[12];
    bool set; /* secret known */
};

/* A server connection's TLS 1.3 record layer once its SSL is freed. */
struct lite {
    const EVP_CIPHER *aead;
    const EVP_MD *md;
    uint8_t key_len, secret_len;
    bool on; /* the SSL object is gone: this runs the records */
    bool peer_closed, resumed, peer_cert;
    struct dir13 r, w;
    char *plain; /* decrypted, not delivered yet (reading paused) */
    uint32_t plain_len, plain_off;
    const char *cipher; /* OpenSSL's static name */
    char alpn[32];
};

struct tp__tls {
    struct tp__layer_head head; /* first: a wss connection's WebSocket */
    SSL *ssl;                   /* NULL once lite->on */
    struct lite *lite; /* server, TLS 1.3: secrets from the handshake on */
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
static bool keep_ssl;              /* TP_TLS_KEEP_SSL=1: never switch to lite */
static EVP_CIPHER *aead_cipher[3]; /* AES-128-GCM, AES-256-GCM, ChaCha */
static EVP_MD *hkdf_md[2];         /* SHA-256, SHA-384: fetched once */

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

static void keylog(const SSL *ssl, const char *line);
static void init_once(void);

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
    pthread_once(&once, init_once);
    /* One TLS 1.3 ticket per handshake (OpenSSL's default is 2, Go's
     * and RFC 8446 C.4's single-use advice 1): each one costs the server
     * the session's encoding, a decoded copy and encryption (bench/TLS.md); a
     * client that resumes gets a new ticket with each resumption. */
    if (o->server)
        SSL_CTX_set_num_tickets(s, TICKETS);
    if (o->server && !keep_ssl) {
        t->tickets = (unsigned)SSL_CTX_get_num_tickets(s);
        SSL_CTX_set_num_tickets(s, 0);
        SSL_CTX_set_keylog_callback(s, keylog);
    }
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
    {
        const char *keep = getenv("TP_TLS_KEEP_SSL");

        keep_ssl = keep != NULL && strcmp(keep, "0") != 0;
    }
    aead_cipher[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    aead_cipher[1] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    aead_cipher[2] = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    hkdf_md[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
    hkdf_md[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
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
    SSL_set_app_data(t->ssl, t);   /* for keylog() */
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
    if (t->lite != NULL) {
        tp__free(t->lite->plain);
        OPENSSL_cleanse(t->lite, sizeof(*t->lite));
        tp__free(t->lite);
    }
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
    SSL *ssl = tls_of(c)->ssl;
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
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

/* ---------------------------------------------------------------------- */
/* TLS 1.3 records without the SSL object ("lite")                        */

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* OpenSSL's key-log line "LABEL <client random> <secret>" (hex): keeps
 * the application traffic secrets of a server connection. Runs inside
 * SSL_do_handshake(), on the connection's loop. */
static void
keylog(const SSL *ssl, const char *line)
{
    struct tp__tls *t = SSL_get_app_data(ssl);
    struct dir13 *d;
    const char *p;
    size_t n = 0;

    if (t == NULL || t->client)
        return;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) != 0 &&
        strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) != 0)
        return;
    p = line + 24;
    if (t->lite == NULL && (t->lite = tp__calloc(1, sizeof(*t->lite))) == NULL)
        return; /* no switch: the SSL object stays */
    d = line[0] == 'C' ? &t->lite->r : &t->lite->w;
    if ((p = strchr(p, ' ')) == NULL)
        return;
    for (p++; p[0] != '\0' && p[1] != '\0' && n < sizeof(d->secret); p += 2) {
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0)
            return;
        d->secret[n++] = (uint8_t)(hi << 4 | lo);
    }
    if (*p == '\0' && (n == 32 || n == 48)) {
        d->set = true;
        t->lite->secret_len = (uint8_t)n;
    }
}

/* HMAC (RFC 2104) of msg under a key no longer than md's block (a
 * traffic secret: 32 or 48 bytes against 64 or 128) with a digest fetched
 * once: OpenSSL 3.0's one-shot HMAC() fetches its MAC and digest by name on
 * every call, half of this function's cost (bench/TLS.md). */
static int
hmac_small(const EVP_MD *md, const uint8_t *key, size_t klen,
           const uint8_t *msg, size_t n, uint8_t *out, unsigned *olen)
{
    uint8_t pad[128], inner[EVP_MAX_MD_SIZE];
    size_t bs = (size_t)EVP_MD_get_block_size(md);
    unsigned ilen = 0;
    EVP_MD_CTX *x = EVP_MD_CTX_new();
    int ok = x != NULL && bs <= sizeof(pad) && klen <= bs;

    if (ok) {
        memset(pad, 0x36, bs);
        for (size_t i = 0; i < klen; i++)
            pad[i] ^= key[i];
        ok = EVP_DigestInit_ex2(x, md, NULL) == 1 &&
             EVP_DigestUpdate(x, pad, bs) == 1 &&
             EVP_DigestUpdate(x, msg, n) == 1 &&
             EVP_DigestFinal_ex(x, inner, &ilen) == 1;
    }
    if (ok) {
        for (size_t i = 0; i < bs; i++) /* 0x36 ^ 0x5c: ipad to opad */
            pad[i] ^= 0x36 ^ 0x5c;
        ok = EVP_DigestInit_ex2(x, md, NULL) == 1 &&
             EVP_DigestUpdate(x, pad, bs) == 1 &&
             EVP_DigestUpdate(x, inner, ilen) == 1 &&
             EVP_DigestFinal_ex(x, out, olen) == 1;
    }
    OPENSSL_cleanse(pad, sizeof(pad));
    OPENSSL_cleanse(inner, sizeof(inner));
    EVP_MD_CTX_free(x);
    return ok ? 0 : -1;
}

/* HKDF-Expand-Label(secret, label, "", len) for len <= the hash size:
 * one HMAC block (RFC 8446 7.1, RFC 5869 2.3). */
static int
expand_label(const struct lite *L, const uint8_t *secret, const char *label,
             uint8_t *out, size_t len)
{
    uint8_t info[2 + 1 + 6 + 16 + 1 + 1], md[EVP_MAX_MD_SIZE];
    size_t k = strlen(label), n = 0;
    unsigned mdlen = 0;

    info[n++] = 0;
    info[n++] = (uint8_t)len;
    info[n++] = (uint8_t)(6 + k);
    memcpy(info + n, "tls13 ", 6);
    memcpy(info + n + 6, label, k);
    n += 6 + k;
    info[n++] = 0;    /* empty context */
    info[n++] = 0x01; /* T(1) */
    if (hmac_small(L->md, secret, L->secret_len, info, n, md, &mdlen) != 0 ||
        mdlen < len)
        return -1;
    memcpy(out, md, len);
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

static int
dir_keys(const struct lite *L, struct dir13 *d)
{
    d->seq = 0;
    return expand_label(L, d->secret, "key", d->key, L->key_len) != 0 ||
                   expand_label(L, d->secret, "iv", d->iv, sizeof(d->iv)) != 0
               ? -1
               : 0;
}

/* The next generation of a direction's secret and keys (KeyUpdate). */
static int
dir_update(const struct lite *L, struct dir13 *d)
{
    uint8_t next[48];

    if (expand_label(L, d->secret, "traffic upd", next, L->secret_len) != 0)
        return -1;
    memcpy(d->secret, next, L->secret_len);
    OPENSSL_cleanse(next, sizeof(next));
    return dir_keys(L, d);
}

static EVP_CIPHER_CTX *
aead_ctx(const struct lite *L, const struct dir13 *d, int enc)
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();

    if (x != NULL &&
        EVP_CipherInit_ex(x, L->aead, NULL, d->key, NULL, enc) != 1) {
        EVP_CIPHER_CTX_free(x);
        x = NULL;
    }
    return x;
}

static void
nonce_of(const struct dir13 *d, uint8_t n[12])
{
    memcpy(n, d->iv, 12);
    for (int i = 0; i < 8; i++)
        n[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
}

/* Writes one record (type, p[0..n)) protected with the write key at dst:
 * 5 + n + 1 + TAG_LEN bytes. */
static int
seal(struct lite *L, EVP_CIPHER_CTX *x, uint8_t type, const char *p, size_t n,
     uint8_t *dst)
{
    uint8_t nonce[12];
    size_t clen = n + 1 + TAG_LEN;
    int o1 = 0, o2 = 0, o3 = 0;

    dst[0] = CT_APPDATA;
    dst[1] = 3;
    dst[2] = 3;
    dst[3] = (uint8_t)(clen >> 8);
    dst[4] = (uint8_t)clen;
    nonce_of(&L->w, nonce);
    if (EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(x, NULL, &o1, dst, 5) != 1 ||
        EVP_EncryptUpdate(x, dst + 5, &o1, (const uint8_t *)p, (int)n) != 1 ||
        EVP_EncryptUpdate(x, dst + 5 + o1, &o2, &type, 1) != 1 ||
        EVP_EncryptFinal_ex(x, dst + 5 + o1 + o2, &o3) != 1 ||
        (size_t)o1 + (size_t)o2 + (size_t)o3 != n + 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN,
                            dst + 5 + n + 1) != 1)
        return -1;
    L->w.seq++;
    return 0;
}

/* Appends one record of `type` to the output (not flushed). */
static int
lite_send(struct tp__tls *t, uint8_t type, const char *p, size_t n)
{
    EVP_CIPHER_CTX *x;
    int r = -1;

    if (out_reserve(t, 5 + n + 1 + TAG_LEN) != 0 ||
        (x = aead_ctx(t->lite, &t->lite->w, 1)) == NULL)
        return -1;
    if (seal(t->lite, x, type, p, n, (uint8_t *)t->out->data + t->out->len) ==
        0) {
        t->out->len += (uint32_t)(5 + n + 1 + TAG_LEN);
        r = 0;
    }
    EVP_CIPHER_CTX_free(x);
    return r;
}

/* A fatal alert of ours (or none: 0xff) and the close. */
static void
lite_fail(struct tp__conn *c, int alert)
{
    struct tp__tls *t = tls_of(c);
    char a[2] = {2, (char)alert};

    if (alert != 0xff)
        tp_log(TP_LOG_INFO, "tls: conn %#llx: sending alert %d",
               (unsigned long long)tp__conn_handle(c), alert);
    if (alert != 0xff && !t->shut_sent)
        lite_send(t, CT_ALERT, a, 2);
    t->shut_sent = true;
    fail(c, alert == AL_INTERNAL ? -ENOMEM : -EBADMSG);
}

/* Adds in[0..n) to the kept ciphertext. */
static int
keep_add(struct tp__tls *t, const char *in, size_t n)
{
    char *k;

    if (n == 0)
        return 0;
    if ((k = tp__malloc(t->keep_len + n)) == NULL)
        return -ENOMEM;
    if (t->keep_len > 0)
        memcpy(k, t->keep + t->keep_off, t->keep_len);
    memcpy(k + t->keep_len, in, n);
    tp__free(t->keep);
    t->keep = k;
    t->keep_off = 0;
    t->keep_len += n;
    return 0;
}

static void
keep_drop(struct tp__tls *t, size_t n)
{
    t->keep_off += n;
    if ((t->keep_len -= n) == 0) {
        tp__free(t->keep);
        t->keep = NULL;
        t->keep_off = 0;
    }
}

/* Moves bytes of the read in progress to the kept ones until they are
 * `want` (or the read is used up). */
static int
keep_take(struct tp__tls *t, size_t want)
{
    size_t take = want - t->keep_len;

    if (take > t->in_len)
        take = t->in_len;
    if (take == 0)
        return 0;
    if (keep_add(t, t->in, take) != 0)
        return -1;
    t->in += take;
    t->in_len -= take;
    return 0;
}

/* The record header's checks: its total length, or -alert. */
static int
rec_len(const uint8_t *h)
{
    size_t n = (size_t)h[3] << 8 | h[4];

    if (h[0] != CT_APPDATA)
        return -AL_UNEXPECTED;
    if (h[1] != 3 || h[2] != 3)
        return -AL_DECODE_ERROR;
    if (n > REC_CT_MAX)
        return -AL_OVERFLOW;
    return (int)(5 + n);
}

/* The next whole record: from the kept bytes (topped up from the read in
 * progress) or straight from it. 1: *rec (len) is one, to be consumed with
 * rec_done(); 0: none complete yet (the rest is kept); -alert. */
static int
rec_next(struct tp__tls *t, const uint8_t **rec, int *len, bool *kept)
{
    int n;

    if (t->keep_len == 0 && t->in_len >= 5) {
        if ((n = rec_len((const uint8_t *)t->in)) < 0)
            return n;
        if (t->in_len >= (size_t)n) {
            *rec = (const uint8_t *)t->in;
            *len = n;
            *kept = false;
            return 1;
        }
    }
    if (t->keep_len < 5 && keep_take(t, 5) != 0)
        return -AL_INTERNAL;
    if (t->keep_len < 5)
        return 0;
    if ((n = rec_len((const uint8_t *)t->keep + t->keep_off)) < 0)
        return n;
    if (t->keep_len < (size_t)n && keep_take(t, (size_t)n) != 0)
        return -AL_INTERNAL;
    if (t->keep_len < (size_t)n)
        return 0;
    *rec = (const uint8_t *)t->keep + t->keep_off;
    *len = n;
    *kept = true;
    return 1;
}

static void
rec_done(struct tp__tls *t, int len, bool kept)
{
    if (kept) {
        keep_drop(t, (size_t)len);
    } else {
        t->in += len;
        t->in_len -= (size_t)len;
    }
}

/* Decrypts rec into out: the content's length (type in *type), or
 * -alert. */
static int
lite_open(struct lite *L, EVP_CIPHER_CTX *x, const uint8_t *rec, int len,
          uint8_t *out, uint8_t *type)
{
    uint8_t nonce[12];
    int clen = len - 5 - (int)TAG_LEN, o1 = 0, o2 = 0;

    if (clen < 1)
        return -AL_BAD_MAC;
    if (L->r.seq == UINT64_MAX)
        return -AL_UNEXPECTED; /* never: 2^64 records */
    nonce_of(&L->r, nonce);
    if (EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
        EVP_DecryptUpdate(x, NULL, &o1, rec, 5) != 1 ||
        EVP_DecryptUpdate(x, out, &o1, rec + 5, clen) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN,
                            (void *)(rec + 5 + clen)) != 1 ||
        EVP_DecryptFinal_ex(x, out + o1, &o2) != 1 || o1 + o2 != clen)
        return -AL_BAD_MAC;
    L->r.seq++;
    while (clen > 0 && out[clen - 1] == 0) /* padding */
        clen--;
    if (clen == 0)
        return -AL_UNEXPECTED; /* no content type */
    *type = out[--clen];
    if (clen > (int)REC_PLAIN_MAX)
        return -AL_OVERFLOW;
    return clen;
}

/* Post-handshake messages from a client: KeyUpdate only, whole in its
 * record and last in it. 0, 1 (read key changed), or -alert. */
static int
lite_handshake(struct tp__conn *c, const uint8_t *p, int n)
{
    struct tp__tls *t = tls_of(c);
    struct lite *L = t->lite;
    static const char ku[5] = {HS_KEY_UPDATE, 0, 0, 1, 0};

    if (n < 4 || p[0] != HS_KEY_UPDATE)
        return -AL_UNEXPECTED;
    if (((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]) != 1 || n < 5)
        return n < 5 ? -AL_UNEXPECTED : -AL_DECODE_ERROR;
    if (n > 5)
        return -AL_UNEXPECTED; /* a key change not at a record boundary */
    if (p[4] > 1)
        return -AL_ILLEGAL_PARAM;
    if (dir_update(L, &L->r) != 0)
        return -AL_INTERNAL;
    if (p[4] == 1 && !t->shut_sent) { /* update_requested: answer */
        if (lite_send(t, CT_HANDSHAKE, ku, sizeof(ku)) != 0 ||
            dir_update(L, &L->w) != 0)
            return -AL_INTERNAL;
    }
    return 1;
}

/* Delivers p[0..n) as DATA while the connection wants it; keeps the
 * rest. */
static int
lite_deliver(struct tp__conn *c, const char *p, size_t n)
{
    struct lite *L = tls_of(c)->lite;
    size_t chunk = tp__conn_cfg(c)->read_chunk, k;

    while (n > 0 && conn_open(c) && tp__conn_want_read(c)) {
        k = n < chunk ? n : chunk;
        tp__conn_on_data(c, p, k);
        p += k;
        n -= k;
    }
    if (n == 0 || !conn_open(c))
        return 0;
    if ((L->plain = tp__malloc(n)) == NULL)
        return -1;
    memcpy(L->plain, p, n);
    L->plain_off = 0;
    L->plain_len = (uint32_t)n;
    return 0;
}

/* Plaintext decrypted earlier, first. */
static int
lite_deliver_kept(struct tp__conn *c)
{
    struct lite *L = tls_of(c)->lite;
    char *p = L->plain;
    size_t n = L->plain_len, off = L->plain_off;

    L->plain = NULL;
    L->plain_len = 0;
    L->plain_off = 0;
    if (lite_deliver(c, p + off, n) != 0) {
        tp__free(p);
        return -1;
    }
    tp__free(p);
    return 0;
}

static void
lite_pump(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);
    struct lite *L = t->lite;
    EVP_CIPHER_CTX *x = NULL;
    uint8_t *buf = (uint8_t *)plain_buf(), type = 0;
    const uint8_t *rec;
    int len, n, err = 0;
    bool kept;

    if (buf == NULL) {
        tp__conn_close(c, TP_NET_CLOSE_ERROR, -ENOMEM, false);
        return;
    }
    t->pumping = true;
    while (phase_of(t) == PH_OPEN && !L->peer_closed && conn_open(c) &&
           tp__conn_want_read(c)) {
        if (L->plain_len > 0) {
            if (lite_deliver_kept(c) != 0) {
                err = -AL_INTERNAL;
                break;
            }
            continue;
        }
        if ((n = rec_next(t, &rec, &len, &kept)) <= 0) {
            err = n;
            break;
        }
        if (x == NULL && (x = aead_ctx(L, &L->r, 0)) == NULL) {
            err = -AL_INTERNAL;
            break;
        }
        n = lite_open(L, x, rec, len, buf, &type);
        rec_done(t, len, kept);
        if (n < 0) {
            err = n;
            break;
        }
        if (type == CT_APPDATA) {
            if (n > 0 && lite_deliver(c, (const char *)buf, (size_t)n) != 0) {
                err = -AL_INTERNAL;
                break;
            }
        } else if (type == CT_ALERT) {
            if (n != 2) {
                err = -AL_DECODE_ERROR;
                break;
            }
            if (buf[1] == AL_USER_CANCELED)
                continue;
            if (buf[1] != AL_CLOSE_NOTIFY) {
                tp_log(TP_LOG_INFO, "tls: conn %#llx: the peer's alert %u",
                       (unsigned long long)tp__conn_handle(c), buf[1]);
                err = -0xff; /* the peer's fatal alert: no answer */
                break;
            }
            L->peer_closed = true; /* what follows is ignored */
            t->pumping = false;
            EVP_CIPHER_CTX_free(x);
            /* Not flushed here: what is pending (the tickets of a handshake
             * finished in this read) goes out with our close_notify, or at
             * the end of the read (tp__tls_read). */
            tp__conn_on_eof(c);
            return;
        } else if (type == CT_HANDSHAKE) {
            if ((n = lite_handshake(c, buf, n)) < 0) {
                err = n;
                break;
            }
            EVP_CIPHER_CTX_free(x); /* a new read key */
            x = NULL;
        } else {
            err = -AL_UNEXPECTED;
            break;
        }
    }
    t->pumping = false;
    EVP_CIPHER_CTX_free(x);
    if (L->peer_closed) /* after close_notify: drop what comes */
        t->in_len = 0;
    if (err < 0 && phase_of(t) == PH_OPEN && conn_open(c)) {
        lite_fail(c, -err);
        return;
    }
    flush(c, 0); /* KeyUpdate answers */
}

static void
lite_encrypt(struct tp__conn *c, struct tp__wreq *w)
{
    struct tp__tls *t = tls_of(c);
    uint32_t queued = w->queued;
    size_t n = w->len, recs = (n + REC_PLAIN_MAX - 1) / REC_PLAIN_MAX, k;
    const char *p = w->base;
    EVP_CIPHER_CTX *x = NULL;
    int bad = 0;

    if (n == 0 || t->shut_sent) { /* nothing, or after our close_notify */
        w->len = 0; /* settled (its count leaves the queue), never sent */
        tp__conn_write_raw(c, w);
        return;
    }
    if (out_reserve(t, n + recs * (5 + 1 + TAG_LEN)) != 0 ||
        (x = aead_ctx(t->lite, &t->lite->w, 1)) == NULL)
        bad = 1;
    for (; !bad && n > 0; p += k, n -= k) {
        k = n < REC_PLAIN_MAX ? n : REC_PLAIN_MAX;
        if (seal(t->lite, x, CT_APPDATA, p, k,
                 (uint8_t *)t->out->data + t->out->len) != 0)
            bad = 1;
        else
            t->out->len += (uint32_t)(5 + k + 1 + TAG_LEN);
    }
    EVP_CIPHER_CTX_free(x);
    tp__wreq_free(w);
    if (bad) {
        fail(c, -ENOMEM);
        return;
    }
    flush(c, queued);
}

/* TLS 1.3 server: the tickets OpenSSL would have sent at the end of the
 * handshake, sent now so that the records they take are counted (the
 * write sequence number the lite layer starts from). Returns the number of
 * records written, or -1. */
static int
send_tickets(struct tp__tls *t)
{
    uint32_t from = t->out != NULL ? t->out->len : 0, off;
    int recs = 0;

    if (t->client || t->ctx->tickets == 0 ||
        SSL_version(t->ssl) != TLS1_3_VERSION)
        return 0;
    for (unsigned i = 0; i < t->ctx->tickets; i++)
        if (SSL_new_session_ticket(t->ssl) != 1)
            return -1;
    ERR_clear_error();
    if (SSL_do_handshake(t->ssl) != 1)
        return -1;
    for (off = from; t->out != NULL && off + 5 <= t->out->len; recs++) {
        const uint8_t *h = (const uint8_t *)t->out->data + off;
        if (h[0] != CT_APPDATA)
            return -1;
        off += 5 + ((uint32_t)h[3] << 8 | h[4]);
    }
    return t->out == NULL || off == t->out->len ? recs : -1;
}

/* After the handshake (before PH_OPEN is published): frees the SSL object
 * of a TLS 1.3 server connection and runs its records here. */
static void
lite_switch(struct tp__tls *t, int wrecs)
{
    struct lite *L = t->lite;
    const SSL_CIPHER *cs = SSL_get_current_cipher(t->ssl);
    const unsigned char *alpn = NULL;
    unsigned alen = 0, id = cs != NULL ? SSL_CIPHER_get_id(cs) & 0xffff : 0;

    if (L == NULL)
        return;
    if (wrecs < 0 || t->client || SSL_version(t->ssl) != TLS1_3_VERSION ||
        !L->r.set || !L->w.set || SSL_has_pending(t->ssl) ||
        SSL_pending(t->ssl) > 0 ||
        (id != 0x1301 && id != 0x1302 && id != 0x1303))
        goto keep;
    L->aead = aead_cipher[id - 0x1301];
    L->md = hkdf_md[id == 0x1302 ? 1 : 0];
    L->key_len = id == 0x1301 ? 16 : 32;
    if (L->aead == NULL || L->md == NULL ||
        L->secret_len != (id == 0x1302 ? 48 : 32) || dir_keys(L, &L->r) != 0 ||
        dir_keys(L, &L->w) != 0)
        goto keep;
    L->w.seq = (uint64_t)wrecs;
    L->cipher = SSL_CIPHER_get_name(cs);
    SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
    if (alen >= sizeof(L->alpn))
        alen = sizeof(L->alpn) - 1;
    if (alen > 0)
        memcpy(L->alpn, alpn, alen);
    L->resumed = SSL_session_reused(t->ssl) == 1;
    L->peer_cert = SSL_get0_peer_certificate(t->ssl) != NULL;
    L->on = true;
    SSL_free(t->ssl);
    t->ssl = NULL;
    return;
keep:
    OPENSSL_cleanse(L, sizeof(*L));
    tp__free(L);
    t->lite = NULL;
}

static bool
lite_on(const struct tp__tls *t)
{
    return t->lite != NULL && t->lite->on;
}

static void
encrypt(struct tp__conn *c, struct tp__wreq *w)
{
    struct tp__tls *t = tls_of(c);
    uint32_t queued = w->queued;
    int n;

    if (lite_on(t)) {
        lite_encrypt(c, w);
        return;
    }
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
    if (lite_on(t)) {
        lite_pump(c);
        return;
    }
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
    int wrecs = send_tickets(t);

    /* Before PH_OPEN: the info call uses the SSL object from then on. */
    lite_switch(t, wrecs);
    /* The tickets are not flushed yet: they go out in one write with what
     * this read produces next (held writes, an answer to data read with
     * the client's Finished, close_notify), at the latest at the end of
     * tp__tls_read(). One write less per handshake where the client's next
     * bytes came with its Finished. */
    if (!conn_open(c))
        return;
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
    flush(c, 0); /* what this read left pending (the tickets) */
}

void
tp__tls_want(struct tp__conn *c)
{
    struct tp__tls *t = tls_of(c);

    /* Every caller is on the loop, between callbacks or inside a command:
     * delivering at once is what a readable socket would do next. Inside
     * the pump (an actor's DATA changed the mode) it carries on itself. */
    if (phase_of(t) != PH_OPEN || t->pumping)
        return;
    if (lite_on(t) ? t->keep_len == 0 && t->lite->plain_len == 0
                   : t->keep_len == 0 && !SSL_has_pending(t->ssl))
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
    if (lite_on(t)) {
        static const char cn[2] = {1, AL_CLOSE_NOTIFY};
        lite_send(t, CT_ALERT, cn, sizeof(cn)); /* best effort, as below */
        t->shut_sent = true;
        flush(c, 0);
        return;
    }
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
    if (lite_on(t)) {
        snprintf(o->version, sizeof(o->version), "TLSv1.3");
        snprintf(o->cipher, sizeof(o->cipher), "%s", t->lite->cipher);
        snprintf(o->alpn, sizeof(o->alpn), "%s", t->lite->alpn);
        o->resumed = t->lite->resumed;
        o->peer_cert = t->lite->peer_cert;
        return;
    }
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
