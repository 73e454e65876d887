/*
 * fuzz/fuzz_tls.c - libFuzzer target for the server side of the TLS read
 * path (net/tls.c): the BIO, the handshake, the record reads, the
 * ciphertext kept while reading is paused, the alerts and closes.
 *
 * net/tls.c is compiled into this target with the connection layer around
 * it replaced by a recording stand-in (below), so every input runs against
 * a fresh server state with no loop, socket or runtime. The input:
 *   byte 0   split seed: 0 feeds the stream whole, else it is cut into
 *            pieces of pseudo-random sizes (1..64 bytes) from this seed
 *   byte 1   flags: FL_PAUSE (reading pauses after every DATA and resumes
 *            after the next piece: the kept-ciphertext path), FL_ALPN
 *            (the second context: ALPN "h2,http/1.1", record buffers
 *            kept), FL_ECHO (every DATA is written back: the write path)
 *   rest     the bytes arriving from the client.
 *
 * Recorded handshakes: OpenSSL's randomness is replaced by a deterministic
 * generator, reset for each input, so the server's key shares, randoms and
 * signatures are the same in every run. The server key and its self-signed
 * certificate are made in-process from that generator at start-up (never
 * stored). A real OpenSSL client run against this server state, in
 * memory, therefore records client bytes that a later run of this target
 * accepts: handshakes and application records go deep instead of stopping
 * at the first Finished. Regenerate the seeds (fuzz/corpus/tls/) with
 *   TP_FUZZ_TLS_RECORD=fuzz/corpus/tls build/fuzz/fuzz/fuzz_tls
 * which records each scenario, replays it through the normal path and
 * fails unless the replay completes the handshake and delivers the same
 * plaintext (TP_FUZZ_TLS_VERBOSE=1 shows what each input ran into).
 * (A different OpenSSL version may draw randomness differently;
 * old seeds then stop after the ClientHello until regenerated.)
 *
 * Checks, besides "no crash, no leak, no sanitizer report":
 *  - plaintext reaches the owner only after the handshake and never after
 *    a close or the peer's close_notify;
 *  - every close is an error close with one of the errors net/tls.c
 *    documents, and leaves the state dead (nothing more is delivered);
 *  - a split stream (and paused reading) gives the same plaintext and the
 *    same ending as the whole stream: where TCP cuts must not matter.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* RAND_set_rand_method() */
#include "net/tls.c"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FL_PAUSE 0x01u
#define FL_ALPN  0x02u
#define FL_ECHO  0x04u

static void
fail_if(int cond)
{
    if (cond)
        abort();
}

/* ---------------------------------------------------------------------- */
/* Deterministic randomness: one stream for the server (reset per input)
 * and one for the recording client, so the client's draws never shift the
 * server's. */

enum { RNG_SERVER = 0, RNG_CLIENT };
static uint64_t rng_s[2];
static int rng_who;

static void
rng_reset(void)
{
    rng_s[RNG_SERVER] = 0x74726f757065ull;
    rng_s[RNG_CLIENT] = 0x636c69656e74ull;
    rng_who = RNG_SERVER;
}

static uint64_t
splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int
rng_bytes(unsigned char *b, int n)
{
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)splitmix(&rng_s[rng_who]);
    return 1;
}

static int
rng_seed(const void *p, int n)
{
    (void)p;
    (void)n;
    return 1;
}

static int
rng_add(const void *p, int n, double e)
{
    (void)p;
    (void)n;
    (void)e;
    return 1;
}

static int
rng_status(void)
{
    return 1;
}

static const RAND_METHOD rng_method = {
    rng_seed, rng_bytes, NULL, rng_add, rng_bytes, rng_status,
};

/* ---------------------------------------------------------------------- */
/* The connection layer, replaced: what net/tls.c calls on a connection. */

struct mock {
    struct tp__net_loop *loop; /* never dereferenced */
    uint32_t tick;
    bool paused, pause_mode, eof, closed;
    int close_err;
    uint64_t hash; /* of the plaintext delivered, in order */
    size_t delivered;
    size_t since_echo; /* bytes delivered since the last echo */
    char *echo;        /* copy of those bytes */
    /* recording: what the server wrote (ciphertext for the client) */
    char *sent;
    size_t sent_len;
    bool record;
};

static struct mock m;
static struct tp__conn mc;
static tp_conn_opts mcfg;

void *
tp__malloc(size_t n)
{
    return malloc(n);
}

void *
tp__calloc(size_t k, size_t n)
{
    return calloc(k, n);
}

void
tp__free(void *p)
{
    free(p);
}

void
tp_log(tp_log_level level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}

const char *
tp_strerror(int err)
{
    return strerror(-err);
}

void *
tp__net_cmd_alloc(size_t size, uint8_t *klass)
{
    *klass = 0;
    return malloc(size);
}

void
tp__net_cmd_free(void *p, uint8_t klass)
{
    (void)klass;
    free(p);
}

void
tp__wreq_free(struct tp__wreq *w)
{
    free(w);
}

struct tp__net_loop *
tp__conn_loop(struct tp__conn *c)
{
    (void)c;
    return m.loop;
}

uint32_t
tp__net_tick(struct tp__net_loop *nl)
{
    (void)nl;
    return m.tick;
}

void
tp__conn_timer_arm(struct tp__conn *c, uint32_t ms)
{
    (void)c;
    fail_if(ms == 0);
}

void
tp__conn_idle_arm(struct tp__conn *c)
{
    (void)c;
}

void
tp__conn_read_update(struct tp__conn *c)
{
    (void)c;
}

bool
tp__conn_want_read(struct tp__conn *c)
{
    return conn_open(c) && !m.paused && !m.eof;
}

void
tp__conn_on_data(struct tp__conn *c, const char *p, size_t n)
{
    fail_if(!conn_open(c) || m.eof || m.closed);
    fail_if(phase_of(tls_of(c)) != PH_OPEN || n == 0);
    fail_if(n > tp__conn_cfg(c)->read_chunk);
    for (size_t i = 0; i < n; i++)
        m.hash = (m.hash ^ (uint8_t)p[i]) * 1099511628211ull;
    m.delivered += n;
    {
        char *e = realloc(m.echo, m.since_echo + n);
        fail_if(e == NULL);
        memcpy(e + m.since_echo, p, n);
        m.echo = e;
        m.since_echo += n;
    }
    if (m.pause_mode)
        m.paused = true;
}

void
tp__conn_on_eof(struct tp__conn *c)
{
    fail_if(!conn_open(c) || m.eof);
    m.eof = true;
}

void
tp__conn_close(struct tp__conn *c, tp_net_close reason, int err, bool graceful)
{
    (void)graceful;
    fail_if(!conn_open(c) || reason != TP_NET_CLOSE_ERROR);
    fail_if(err != -EPROTO && err != -EKEYREJECTED && err != -EBADMSG &&
            err != -ENOMEM && err != -ETIMEDOUT);
    atomic_store_explicit(&c->state, TP__C_CLOSING, memory_order_relaxed);
    m.closed = true;
    m.close_err = err;
}

void
tp__conn_write_raw(struct tp__conn *c, struct tp__wreq *w)
{
    (void)c;
    fail_if(w->len > 0 && w->base == NULL);
    if (m.record && w->len > 0) {
        char *s = realloc(m.sent, m.sent_len + w->len);
        fail_if(s == NULL);
        memcpy(s + m.sent_len, w->base, w->len);
        m.sent = s;
        m.sent_len += w->len;
    }
    free(w);
}

void
tp__connect_report(struct tp__conn *c, int err)
{
    (void)c;
    (void)err;
    abort(); /* server states never report a connect */
}

struct tp__conn *
tp__conn_resolve(struct tp__net *net, tp_conn h)
{
    (void)net;
    (void)h;
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The server contexts: an in-process P-256 key and certificate. */

static struct tp_tls_ctx *ctxs[2];
static bool verbose; /* TP_FUZZ_TLS_VERBOSE: each input's outcome */

static X509 *
self_signed(EVP_PKEY *key)
{
    X509 *x = X509_new();
    X509_NAME *n;

    if (x == NULL)
        return NULL;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    /* fixed dates: the same certificate in every run */
    ASN1_TIME_set_string(X509_getm_notBefore(x), "20260101000000Z");
    ASN1_TIME_set_string(X509_getm_notAfter(x), "20360101000000Z");
    X509_set_pubkey(x, key);
    n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                               (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static struct tp_tls_ctx *
server_ctx(EVP_PKEY *key, X509 *cert, bool alpn)
{
    struct tp_tls_ctx *t = calloc(1, sizeof(*t));
    tp_tls_opts o;

    fail_if(t == NULL);
    tp_tls_opts_init(&o);
    o.server = true;
    o.verify_peer = false;
    o.alpn = alpn ? "h2,http/1.1" : NULL;
    o.release_buffers = !alpn;
    t->ssl = SSL_CTX_new(TLS_server_method());
    fail_if(t->ssl == NULL);
    atomic_init(&t->refs, 1);
    t->server = true;
    t->hs_ms = o.handshake_timeout_ms;
    fail_if(ctx_setup(t, &o) != 0);
    fail_if(SSL_CTX_use_certificate(t->ssl, cert) != 1 ||
            SSL_CTX_use_PrivateKey(t->ssl, key) != 1);
    /* recorded resumption tickets stay valid (their time is inside) */
    SSL_CTX_set_timeout(t->ssl, 10L * 365 * 86400);
    return t;
}

/* ---------------------------------------------------------------------- */
/* One connection. */

static void
conn_begin(unsigned flags)
{
    struct tp__tls *t;

    rng_reset();
    free(m.echo);
    free(m.sent);
    memset(&m, 0, sizeof(m));
    m.pause_mode = (flags & FL_PAUSE) != 0;
    memset(&mc, 0, sizeof(mc));
    mcfg.read_chunk = 512; /* records are split into several DATA */
    atomic_init(&mc.cfg, &mcfg);
    atomic_init(&mc.state, TP__C_OPEN);
    t = state_new(ctxs[(flags & FL_ALPN) ? 1 : 0], false);
    fail_if(t == NULL);
    tp__conn_set_tls(&mc, t);
    tp__tls_opened(&mc);
}

/* Writes back what was delivered since the last call (the echo actor). */
static void
echo_back(void)
{
    struct tp__wreq *w;

    if (m.since_echo == 0 || !conn_open(&mc))
        goto done;
    w = malloc(sizeof(*w) + m.since_echo);
    fail_if(w == NULL);
    memset(w, 0, sizeof(*w));
    memcpy(w->data, m.echo, m.since_echo);
    w->base = w->data;
    w->len = (uint32_t)m.since_echo;
    w->queued = w->len;
    tp__tls_write(&mc, w);
done:
    m.since_echo = 0;
}

/* Bytes from the network. */
static void
conn_feed(const uint8_t *p, size_t n, unsigned flags)
{
    if (!conn_open(&mc) || m.eof)
        return;
    tp__tls_read(&mc, (const char *)p, n);
    /* paused: resume until nothing more comes out (a mode change) */
    for (int i = 0; i < 4096 && conn_open(&mc) && m.paused; i++) {
        size_t before = m.delivered;
        m.paused = false;
        tp__tls_want(&mc);
        if (m.delivered == before)
            break;
    }
    if (flags & FL_ECHO)
        echo_back();
}

/* Ends the connection as the runtime would; returns how it ended. */
static int
conn_end(void)
{
    struct tp__tls *t = tls_of(&mc);
    int how = m.closed ? m.close_err : m.eof ? 1 : 0;

    if (conn_open(&mc) && phase_of(t) == PH_HANDSHAKE) {
        m.tick += t->ctx->hs_ms; /* the handshake timer fires */
        fail_if(!tp__tls_timer(&mc));
        fail_if(!m.closed || m.close_err != -ETIMEDOUT);
    } else if (conn_open(&mc) && phase_of(t) == PH_OPEN) {
        fail_if(tp__tls_timer(&mc)); /* the idle timer's, not ours */
        tp__tls_close_notify(&mc);
    }
    if (m.closed)
        fail_if(phase_of(t) != PH_DEAD && m.close_err != -ENOMEM);
    tp__conn_set_tls(&mc, NULL);
    state_free(t);
    free(m.echo);
    m.echo = NULL;
    m.since_echo = 0;
    return how;
}

struct outcome {
    uint64_t hash;
    size_t delivered;
    int how;
};

static void
run(const uint8_t *p, size_t n, unsigned flags, unsigned seed,
    struct outcome *o)
{
    uint64_t s = seed;

    conn_begin(flags);
    if (seed == 0) {
        conn_feed(p, n, flags);
    } else {
        for (size_t off = 0; off < n && conn_open(&mc) && !m.eof;) {
            size_t k = 1 + splitmix(&s) % 64;
            if (k > n - off)
                k = n - off;
            conn_feed(p + off, k, flags);
            off += k;
        }
    }
    o->hash = m.hash;
    o->delivered = m.delivered;
    o->how = conn_end();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole, cut;

    if (size < 2)
        return 0;
    run(data + 2, size - 2, data[1], 0, &whole);
    if (verbose)
        fprintf(stderr, "fuzz_tls: %zu plaintext bytes, %s (%d)\n",
                whole.delivered,
                whole.how == 1   ? "close_notify"
                : whole.how == 0 ? "open"
                                 : "error close",
                whole.how);
    if (data[0] != 0 || (data[1] & FL_PAUSE)) {
        run(data + 2, size - 2, data[1], data[0], &cut);
        if (verbose)
            fprintf(stderr, "fuzz_tls: split: %zu plaintext bytes, %d\n",
                    cut.delivered, cut.how);
        fail_if(whole.hash != cut.hash || whole.delivered != cut.delivered);
        fail_if(whole.how != cut.how);
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Recording the seeds: a real OpenSSL client against the server state. */

struct rec {
    SSL *cl;
    BIO *rbio, *wbio;
    uint8_t *buf; /* the seed: split, flags, client bytes */
    size_t len;
    size_t plain;  /* application bytes the client sent */
    size_t echoed; /* and read back (FL_ECHO) */
    unsigned flags;
};

/* Moves bytes both ways until neither side has anything to say. */
static void
shuttle(struct rec *r)
{
    for (int round = 0; round < 64; round++) {
        char tmp[16384];
        int n;
        bool moved = false;

        rng_who = RNG_CLIENT;
        if (!SSL_is_init_finished(r->cl))
            SSL_do_handshake(r->cl);
        else
            while ((n = SSL_read(r->cl, tmp, sizeof(tmp))) > 0)
                r->echoed += (size_t)n;
        while ((n = BIO_read(r->wbio, tmp, sizeof(tmp))) > 0) {
            uint8_t *b = realloc(r->buf, r->len + (size_t)n);
            fail_if(b == NULL);
            memcpy(b + r->len, tmp, (size_t)n);
            r->buf = b;
            r->len += (size_t)n;
            rng_who = RNG_SERVER;
            conn_feed((const uint8_t *)tmp, (size_t)n, r->flags);
            moved = true;
        }
        rng_who = RNG_SERVER;
        if (m.sent_len > 0) {
            BIO_write(r->rbio, m.sent, (int)m.sent_len);
            m.sent_len = 0;
            moved = true;
        }
        if (!moved)
            break;
    }
    rng_who = RNG_SERVER;
}

static void
rec_send(struct rec *r, const char *s)
{
    rng_who = RNG_CLIENT;
    fail_if(SSL_write(r->cl, s, (int)strlen(s)) <= 0);
    r->plain += strlen(s);
    shuttle(r);
}

static SSL_SESSION *resume_sess;

struct scenario {
    const char *name;
    unsigned flags;
    int max_version;     /* 0: any */
    const char *ciphers; /* TLS 1.2 list, or NULL */
    const char *suites;  /* TLS 1.3 suites, or NULL */
    const char *groups;  /* or NULL */
    const char *alpn;    /* wire format, or NULL */
    int key_updates;     /* 1: one requested, 2: + one not requested */
    bool resume, no_close;
};

static const struct scenario scenarios[] = {
    {"tls13-echo", FL_ECHO, 0, NULL, NULL, NULL, NULL, 0, false, false},
    {"tls13-keyupdate", FL_ECHO, 0, NULL, NULL, NULL, NULL, 2, false, false},
    {"tls13-pause", FL_ECHO | FL_PAUSE, 0, NULL, NULL, NULL, NULL, 1, false,
     false},
    {"tls13-chacha-p256-alpn", FL_ALPN | FL_ECHO, 0, NULL,
     "TLS_CHACHA20_POLY1305_SHA256", "P-256", "\x08http/1.1", 0, false, false},
    {"tls13-aes128-p384", 0, 0, NULL, "TLS_AES_128_GCM_SHA256", "P-384:X25519",
     NULL, 0, false, true},
    {"tls13-resumed", FL_ECHO, 0, NULL, NULL, NULL, NULL, 0, true, false},
    {"tls12-aesgcm", FL_ECHO, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256",
     NULL, NULL, NULL, 0, false, false},
    {"tls12-chacha-pause", FL_ECHO | FL_PAUSE, TLS1_2_VERSION,
     "ECDHE-ECDSA-CHACHA20-POLY1305", NULL, NULL, NULL, 0, false, false},
};

static SSL_CTX *
client_ctx(const struct scenario *sc)
{
    SSL_CTX *x = SSL_CTX_new(TLS_client_method());

    fail_if(x == NULL);
    SSL_CTX_set_verify(x, SSL_VERIFY_NONE, NULL);
    if (sc->max_version != 0)
        SSL_CTX_set_max_proto_version(x, sc->max_version);
    if (sc->ciphers != NULL)
        fail_if(SSL_CTX_set_cipher_list(x, sc->ciphers) != 1);
    if (sc->suites != NULL)
        fail_if(SSL_CTX_set_ciphersuites(x, sc->suites) != 1);
    if (sc->groups != NULL)
        fail_if(SSL_CTX_set1_groups_list(x, sc->groups) != 1);
    if (sc->alpn != NULL)
        fail_if(SSL_CTX_set_alpn_protos(x, (const unsigned char *)sc->alpn,
                                        (unsigned)strlen(sc->alpn)) != 0);
    return x;
}

/* One recorded connection; returns the seed (buf, len) in r. */
static void
record_one(const struct scenario *sc, SSL_CTX *cx, struct rec *r)
{
    memset(r, 0, sizeof(*r));
    r->flags = sc->flags;
    r->buf = malloc(2);
    fail_if(r->buf == NULL);
    r->buf[0] = 0;
    r->buf[1] = (uint8_t)sc->flags;
    r->len = 2;
    conn_begin(sc->flags);
    m.record = true;
    rng_who = RNG_CLIENT;
    r->cl = SSL_new(cx);
    r->rbio = BIO_new(BIO_s_mem());
    r->wbio = BIO_new(BIO_s_mem());
    fail_if(r->cl == NULL || r->rbio == NULL || r->wbio == NULL);
    SSL_set_bio(r->cl, r->rbio, r->wbio);
    SSL_set_connect_state(r->cl);
    SSL_set_tlsext_host_name(r->cl, "localhost");
    if (sc->resume && resume_sess != NULL)
        SSL_set_session(r->cl, resume_sess);
    shuttle(r);
    fail_if(!SSL_is_init_finished(r->cl) || phase_of(tls_of(&mc)) != PH_OPEN);
    rec_send(r, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    if (sc->key_updates >= 1) {
        rng_who = RNG_CLIENT;
        fail_if(SSL_key_update(r->cl, SSL_KEY_UPDATE_REQUESTED) != 1);
        rec_send(r, "after a key update");
    }
    if (sc->key_updates >= 2) {
        rng_who = RNG_CLIENT;
        fail_if(SSL_key_update(r->cl, SSL_KEY_UPDATE_NOT_REQUESTED) != 1);
        rec_send(r, "after a second one");
    }
    rec_send(r, "bye");
    if (!sc->no_close) {
        rng_who = RNG_CLIENT;
        SSL_shutdown(r->cl);
        shuttle(r);
        fail_if(!m.eof);
    }
    fail_if(m.delivered != r->plain);
    /* the client decrypted every echo: the server's records, its
     * KeyUpdate answer and its keys after it are right */
    fail_if((sc->flags & FL_ECHO) && r->echoed != r->plain);
    if (!sc->resume && resume_sess == NULL && sc->max_version == 0)
        resume_sess = SSL_get1_session(r->cl);
    else if (sc->resume)
        fail_if(SSL_session_reused(r->cl) != 1);
    m.record = false;
    conn_end();
    SSL_free(r->cl);
}

static void
record_all(const char *dir)
{
    size_t i;

    for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        const struct scenario *sc = &scenarios[i];
        SSL_CTX *cx = client_ctx(sc);
        struct rec r;
        struct outcome o;
        char path[512];
        FILE *f;

        record_one(sc, cx, &r);
        /* the replay, as the fuzzer runs it */
        run(r.buf + 2, r.len - 2, r.buf[1], 0, &o);
        if (o.delivered != r.plain) {
            fprintf(stderr, "fuzz_tls: %s: replay delivered %zu of %zu\n",
                    sc->name, o.delivered, r.plain);
            exit(1);
        }
        snprintf(path, sizeof(path), "%s/%s", dir, sc->name);
        if ((f = fopen(path, "wb")) == NULL ||
            fwrite(r.buf, 1, r.len, f) != r.len || fclose(f) != 0) {
            perror(path);
            exit(1);
        }
        printf("fuzz_tls: %s: %zu bytes, %zu plaintext, replay ok\n", path,
               r.len, r.plain);
        free(r.buf);
        SSL_CTX_free(cx);
    }
    SSL_SESSION_free(resume_sess);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("TP_FUZZ_TLS_RECORD");
    EVP_PKEY *key;
    X509 *cert;

    (void)argc;
    (void)argv;
    verbose = getenv("TP_FUZZ_TLS_VERBOSE") != NULL;
    fail_if(RAND_set_rand_method(&rng_method) != 1);
    rng_reset();
    key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    fail_if(key == NULL);
    cert = self_signed(key);
    fail_if(cert == NULL);
    ctxs[0] = server_ctx(key, cert, false);
    ctxs[1] = server_ctx(key, cert, true);
    EVP_PKEY_free(key);
    X509_free(cert);
    if (dir != NULL) {
        record_all(dir);
        exit(0);
    }
    return 0;
}
