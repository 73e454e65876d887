/*
 * tests/test_console_client.c - see test_console_client.h.
 */
#include "test_console_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX (8u << 20)

struct tcc {
    tp_console *con;
    tp_runtime *rt;
    tp_pid sink, session;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *buf;
    size_t len;
    bool closed;
};

/* ---- the sink actor ------------------------------------------------------*/

static void
sink_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tcc *t = *(tcc **)state;

    pthread_mutex_lock(&t->lock);
    if (m->type == TP__CON_OUT && t->len + m->len <= BUF_MAX) {
        memcpy(t->buf + t->len, m->data, m->len);
        t->len += m->len;
    } else if (m->type == TP__CON_CLOSE) {
        t->closed = true;
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static int
sink_init(tp_ctx *ctx, void *state, void *arg)
{
    *(tcc **)state = arg;
    return 0;
}

static const tp_behaviour sink_behaviour = {.name = "test_sink",
                                            .state_size = sizeof(tcc *),
                                            .init = sink_init,
                                            .handle = sink_handle};

static void
deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

tcc *
tcc_try_open(tp_console *c, bool http, char *why, size_t cap)
{
    tcc *t = calloc(1, sizeof(*t));
    int err;

    assert_non_null(t);
    t->con = c;
    t->rt = c->rt;
    t->buf = malloc(BUF_MAX + 1);
    pthread_mutex_init(&t->lock, NULL);
    pthread_cond_init(&t->cond, NULL);
    assert_int_equal(
        tp_runtime_spawn(t->rt, &sink_behaviour, t, NULL, &t->sink), 0);
    err = http ? tp__console_local_http(c, t->sink, &t->session)
               : tp__console_local_session(c, t->sink, &t->session);
    if (err != 0) {
        tpt_sleep_ms(50);
        if (why != NULL)
            tcc_take(t, why, cap);
        tcc_close(t);
        return NULL;
    }
    return t;
}

tcc *
tcc_open(tp_console *c, bool http)
{
    tcc *t = tcc_try_open(c, http, NULL, 0);
    char banner[256];

    assert_non_null(t);
    if (!http) {
        assert_int_equal(tcc_wait_for(t, "\n", 5000), 0);
        tcc_take(t, banner, sizeof(banner));
        assert_non_null(strstr(banner, "troupe console"));
    }
    return t;
}

tp_pid
tcc_pid(const tcc *t)
{
    return t->session;
}

void
tcc_send(tcc *t, const void *data, size_t len)
{
    assert_int_equal(tp_runtime_send(t->rt, t->session, TP__CON_IN, data, len),
                     0);
}

/* Length of the first complete reply in buf[0..len), or 0. */
static size_t
reply_len(const char *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t n;
        if (nl == NULL)
            return 0;
        n = (size_t)(nl - (buf + i));
        if ((n == 2 && memcmp(buf + i, "ok", 2) == 0) ||
            (n >= 6 && memcmp(buf + i, "error:", 6) == 0) ||
            (i == 0 && n > 0 && buf[0] == '{' &&
             (memmem(buf, n, "{\"ok\":", 6) == buf)))
            return i + n + 1;
        i += n + 1;
    }
    return 0;
}

static void
take_locked(tcc *t, size_t n, char *out, size_t cap)
{
    size_t k = n < cap - 1 ? n : cap - 1;

    memcpy(out, t->buf, k);
    out[k] = '\0';
    memmove(t->buf, t->buf + n, t->len - n);
    t->len -= n;
}

int
tcc_reply(tcc *t, char *out, size_t cap, int timeout_ms)
{
    struct timespec ts;
    size_t n;
    int rc = 0;

    deadline(&ts, timeout_ms * (int)tpt_slow());
    pthread_mutex_lock(&t->lock);
    while ((n = reply_len(t->buf, t->len)) == 0 && rc == 0)
        rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    if (n != 0)
        take_locked(t, n, out, cap);
    pthread_mutex_unlock(&t->lock);
    if (n == 0)
        return -ETIMEDOUT;
    return n < cap ? (int)n : -ENOBUFS;
}

int
tcc_cmd(tcc *t, const char *line, char *out, size_t cap, int timeout_ms)
{
    tcc_send(t, line, strlen(line));
    tcc_send(t, "\n", 1);
    return tcc_reply(t, out, cap, timeout_ms);
}

int
tcc_wait_for(tcc *t, const char *needle, int timeout_ms)
{
    struct timespec ts;
    int rc = 0;
    bool found;

    deadline(&ts, timeout_ms * (int)tpt_slow());
    pthread_mutex_lock(&t->lock);
    while (!(found = memmem(t->buf, t->len, needle, strlen(needle)) != NULL) &&
           rc == 0)
        rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    pthread_mutex_unlock(&t->lock);
    return found ? 0 : -ETIMEDOUT;
}

size_t
tcc_take(tcc *t, char *out, size_t cap)
{
    size_t n;

    pthread_mutex_lock(&t->lock);
    n = t->len;
    take_locked(t, n, out, cap);
    pthread_mutex_unlock(&t->lock);
    return n;
}

bool
tcc_closed(tcc *t)
{
    bool c;

    pthread_mutex_lock(&t->lock);
    c = t->closed;
    pthread_mutex_unlock(&t->lock);
    return c;
}

int
tcc_wait_closed(tcc *t, int timeout_ms)
{
    struct timespec ts;
    int rc = 0;

    deadline(&ts, timeout_ms * (int)tpt_slow());
    pthread_mutex_lock(&t->lock);
    while (!t->closed && rc == 0)
        rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    rc = t->closed ? 0 : -ETIMEDOUT;
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void
tcc_close(tcc *t)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};

    if (t->session != TP_PID_NONE && !tcc_closed(t)) {
        tp_runtime_send(t->rt, t->session, TP__CON_CLOSE, NULL, 0);
        tcc_wait_closed(t, 5000);
    }
    tp_runtime_exit_pid(t->rt, t->sink, &kill);
    /* The sink may still be running a handler that uses t: wait until it
     * is gone. */
    for (int i = 0; i < 1000; i++) {
        tp_actor_info info;
        if (tp_actor_peek(t->rt, t->sink, &info) != 0)
            break;
        tpt_sleep_ms(2);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t->buf);
    free(t);
}

/* ---- HTTP
 * ------------------------------------------------------------------*/

static size_t
http_len(const char *buf, size_t len, int *status, size_t *body_at,
         size_t *body_len)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    const char *cl;
    size_t hl;

    if (end == NULL)
        return 0;
    hl = (size_t)(end - buf) + 4;
    cl = memmem(buf, hl, "Content-Length: ", 16);
    *body_len = cl != NULL ? strtoul(cl + 16, NULL, 10) : 0;
    if (len < hl + *body_len)
        return 0;
    *status = atoi(buf + 9);
    *body_at = hl;
    return hl + *body_len;
}

int
tcc_http(tcc *t, const char *req, char *body, size_t cap, int timeout_ms)
{
    struct timespec ts;
    size_t n = 0, at = 0, blen = 0;
    int status = 0, rc = 0;

    tcc_send(t, req, strlen(req));
    deadline(&ts, timeout_ms * (int)tpt_slow());
    pthread_mutex_lock(&t->lock);
    while ((n = http_len(t->buf, t->len, &status, &at, &blen)) == 0 && rc == 0)
        rc = pthread_cond_timedwait(&t->cond, &t->lock, &ts);
    if (n != 0) {
        size_t k = blen < cap - 1 ? blen : cap - 1;
        memcpy(body, t->buf + at, k);
        body[k] = '\0';
        memmove(t->buf, t->buf + n, t->len - n);
        t->len -= n;
    }
    pthread_mutex_unlock(&t->lock);
    return n != 0 ? status : -ETIMEDOUT;
}

int
tcc_lines(const char *s)
{
    int n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* ---- real sockets -------------------------------------------------------*/

int
tcn_dial_unix(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int
tcn_dial_tcp_from(const char *src, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in me = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

    if (fd < 0)
        return -1;
    if (src != NULL && (inet_pton(AF_INET, src, &me.sin_addr) != 1 ||
                        bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0))
        goto fail;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto fail;
    return fd;
fail:
    e = errno;
    close(fd);
    errno = e;
    return -1;
}

int
tcn_dial_tcp(int port)
{
    return tcn_dial_tcp_from(NULL, port);
}

void
tcn_put(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server may have closed: the reads will tell */
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

int
tcn_read_until(int fd, const char *end, char *out, size_t cap, int ms)
{
    size_t n = 0;
    uint64_t dl = tp_now_ns() + (uint64_t)ms * tpt_slow() * 1000000u;

    out[0] = '\0';
    while (strstr(out, end) == NULL) {
        struct pollfd p = {fd, POLLIN, 0};
        uint64_t now = tp_now_ns();
        ssize_t r;
        if (now >= dl)
            return -2;
        if (poll(&p, 1, (int)((dl - now) / 1000000u) + 1) <= 0)
            continue;
        if (n + 1 >= cap)
            return (int)n;
        r = recv(fd, out + n, cap - 1 - n, 0);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        out[n] = '\0';
    }
    return (int)n;
}

bool
tcn_eof_within(int fd, int ms)
{
    char tmp[4096];

    return tcn_read_until(fd, "\x01\x02never", tmp, sizeof(tmp), ms) == -1;
}
