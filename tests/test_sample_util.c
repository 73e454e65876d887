/*
 * tests/test_sample_util.c - see test_sample_util.h.
 */
#define _GNU_SOURCE
#include "test_sample_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The children to kill if the test process exits early. */
#define SP_MAX_CHILDREN 8
static pid_t children[SP_MAX_CHILDREN];

static void
kill_children(void)
{
    for (int i = 0; i < SP_MAX_CHILDREN; i++)
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
            children[i] = 0;
        }
}

void
sp_track(pid_t pid, bool add)
{
    static bool registered;

    if (!registered) {
        atexit(kill_children);
        registered = true;
    }
    for (int i = 0; i < SP_MAX_CHILDREN; i++)
        if (add ? children[i] == 0 : children[i] == pid) {
            children[i] = add ? pid : 0;
            return;
        }
}

long long
sp_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
sp_slow(void)
{
    const char *s = getenv("TP_TEST_SLOW");
    int v = s != NULL ? atoi(s) : 1;

    return v > 0 ? v : 1;
}

/* ---- the child's stdout ------------------------------------------------ */

/* Reads what is available (waiting up to ms). Returns bytes read, 0 on
 * timeout, -1 at EOF. */
static int
read_some(struct sp_proc *p, int ms)
{
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    ssize_t n;

    if (p->out_len + 1 >= sizeof(p->out))
        return -1;
    if (poll(&pfd, 1, ms) <= 0)
        return 0;
    n = read(p->out_fd, p->out + p->out_len, sizeof(p->out) - 1 - p->out_len);
    if (n <= 0)
        return -1;
    p->out_len += (size_t)n;
    p->out[p->out_len] = '\0';
    return (int)n;
}

const char *
sp_wait_output(struct sp_proc *p, size_t from, const char *text, int timeout_ms)
{
    long long end = sp_now_ms() + (long long)timeout_ms * sp_slow();

    for (;;) {
        const char *hit =
            from <= p->out_len ? strstr(p->out + from, text) : NULL;
        long long left = end - sp_now_ms();

        if (hit != NULL)
            return hit;
        if (left <= 0 || read_some(p, (int)(left > 100 ? 100 : left)) < 0)
            return NULL;
    }
}

/* Collects the READY lines printed so far. */
static void
scan_ready(struct sp_proc *p)
{
    const char *s = p->out;

    p->nready = 0;
    while ((s = strstr(s, "READY ")) != NULL && p->nready < SP_MAX_READY) {
        const char *eol = strchr(s, '\n');

        if (eol == NULL)
            break;
        if ((s == p->out || s[-1] == '\n') &&
            sscanf(s, "READY %31s %127s", p->ready_svc[p->nready],
                   p->ready_addr[p->nready]) == 2)
            p->nready++;
        s = eol;
    }
}

const char *
sp_addr(const struct sp_proc *p, const char *svc)
{
    for (int i = 0; i < p->nready; i++)
        if (strcmp(p->ready_svc[i], svc) == 0)
            return p->ready_addr[i];
    return NULL;
}

int
sp_port(const struct sp_proc *p, const char *svc)
{
    const char *a = sp_addr(p, svc);
    const char *colon = a != NULL ? strrchr(a, ':') : NULL;

    return colon != NULL ? atoi(colon + 1) : -1;
}

static bool
all_ready(const struct sp_proc *p, const char *const *want)
{
    for (; *want != NULL; want++)
        if (sp_addr(p, *want) == NULL)
            return false;
    return true;
}

/* ---- start and stop ---------------------------------------------------- */

static void
exec_child(int out[2], const char *bin, const char *const *args)
{
    const char *argv[32];
    int n = 0;

    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    argv[n++] = bin;
    while (args != NULL && *args != NULL && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    execv(bin, (char *const *)argv);
    perror(bin);
    _exit(127);
}

int
sp_start(struct sp_proc *p, const char *bin, const char *const *args,
         const char *const *want, int timeout_ms)
{
    long long end;
    int out[2];

    memset(p, 0, sizeof(*p));
    if (pipe2(out, O_CLOEXEC) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    if ((p->pid = fork()) < 0)
        return -1;
    if (p->pid == 0)
        exec_child(out, bin, args);
    sp_track(p->pid, true);
    close(out[1]);
    p->out_fd = out[0];
    end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    while (!all_ready(p, want)) {
        if (sp_now_ms() > end || read_some(p, 100) < 0) {
            fprintf(stderr, "sp_start: %s not ready; it printed:\n%s\n", bin,
                    p->out);
            sp_kill(p);
            return -1;
        }
        scan_ready(p);
    }
    return 0;
}

int
sp_stop(struct sp_proc *p, int sig, int timeout_ms)
{
    long long end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    int status;

    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    while (sp_now_ms() < end) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);

        if (r == p->pid) {
            sp_track(p->pid, false);
            p->pid = 0;
            close(p->out_fd);
            return status;
        }
        read_some(p, 20); /* keeps the pipe from filling up */
    }
    sp_kill(p);
    return -1;
}

void
sp_kill(struct sp_proc *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
        sp_track(p->pid, false);
        close(p->out_fd);
    }
    p->pid = 0;
}

/* ---- TCP clients ------------------------------------------------------- */

int
sp_connect(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    struct timeval tv = {5, 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        return -1;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int
sp_send(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int
sp_sends(int fd, const char *s)
{
    return sp_send(fd, s, strlen(s));
}

/* Waits up to ms for fd to be readable, then reads. Returns bytes, 0 on
 * EOF, -1 on error or timeout. */
static ssize_t
recv_within(int fd, void *buf, size_t cap, int ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};

    if (ms < 0 || poll(&pfd, 1, ms) <= 0)
        return -1;
    return read(fd, buf, cap); /* sockets and pipes */
}

bool
sp_expect(struct sp_conn *c, const char *text, int timeout_ms)
{
    long long end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    size_t tlen = strlen(text);

    for (;;) {
        const char *hit = memmem(c->buf, c->len, text, tlen);
        ssize_t n;

        if (hit != NULL) {
            size_t used = (size_t)(hit - c->buf) + tlen;

            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return true;
        }
        if (c->len == sizeof(c->buf)) { /* full: keep the newest half */
            size_t half = c->len / 2;

            memmove(c->buf, c->buf + half, c->len - half);
            c->len -= half;
        }
        n = recv_within(c->fd, c->buf + c->len, sizeof(c->buf) - c->len,
                        (int)(end - sp_now_ms()));
        if (n <= 0)
            return false;
        c->len += (size_t)n;
    }
}

struct sp_conn *
sp_dial(int port, const char *greeting)
{
    struct sp_conn *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    c->fd = sp_connect(port);
    assert_true(c->fd >= 0);
    if (greeting != NULL && !sp_expect(c, greeting, 5000))
        fail_msg("no greeting '%s' (have '%.*s')", greeting, (int)c->len,
                 c->buf);
    return c;
}

void
sp_hang_up(struct sp_conn *c)
{
    close(c->fd);
    free(c);
}

int
sp_read_n(int fd, void *out, size_t n, int timeout_ms)
{
    long long end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    char *p = out;

    while (n > 0) {
        ssize_t r = recv_within(fd, p, n, (int)(end - sp_now_ms()));

        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

bool
sp_wait_closed(int fd, int timeout_ms)
{
    long long end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    char buf[4096];

    for (;;) {
        ssize_t n = recv_within(fd, buf, sizeof(buf), (int)(end - sp_now_ms()));

        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

/* ---- processes --------------------------------------------------------- */

int
sp_run(char *const argv[], char *out, size_t cap, int timeout_ms)
{
    struct sp_proc p;
    const char *const *args = (const char *const *)argv + 1;
    const char *const none[] = {NULL};
    int status;
    long long end;

    if (sp_start(&p, argv[0], args, none, timeout_ms) != 0)
        return -1;
    end = sp_now_ms() + (long long)timeout_ms * sp_slow();
    while (read_some(&p, 50) >= 0 && sp_now_ms() < end)
        ;
    snprintf(out, cap, "%s", p.out);
    while (sp_now_ms() < end)
        if (waitpid(p.pid, &status, WNOHANG) == p.pid) {
            sp_track(p.pid, false);
            close(p.out_fd);
            return status;
        } else {
            usleep(10000);
        }
    sp_kill(&p);
    return -1;
}

/* ---- nats-server --------------------------------------------------------- */

bool
sp_nats_start(struct sp_nats *n, bool jetstream)
{
    static const char *const bins[] = {"/usr/sbin/nats-server",
                                       "/usr/bin/nats-server"};
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    const char *bin = NULL;
    char port[16];
    int fd;

    memset(n, 0, sizeof(*n));
    for (size_t i = 0; i < 2 && bin == NULL; i++)
        if (access(bins[i], X_OK) == 0)
            bin = bins[i];
    if (bin == NULL)
        return false;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    close(fd);
    snprintf(port, sizeof(port), "%d", ntohs(a.sin_port));
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%s", port);
    if (jetstream) {
        snprintf(n->store, sizeof(n->store), "/tmp/tp-nats-XXXXXX");
        assert_non_null(mkdtemp(n->store));
    }
    n->pid = fork();
    assert_true(n->pid >= 0);
    if (n->pid == 0) {
        int null = open("/dev/null", O_WRONLY);

        if (null >= 0) /* its log is not the test's output */
            dup2(null, 2);
        if (jetstream)
            execl(bin, "nats-server", "-a", "127.0.0.1", "-p", port, "-js",
                  "-sd", n->store, (char *)NULL);
        else
            execl(bin, "nats-server", "-a", "127.0.0.1", "-p", port,
                  (char *)NULL);
        _exit(127);
    }
    sp_track(n->pid, true);
    for (int i = 0; i < 500 * sp_slow(); i++) {
        int c = sp_connect(ntohs(a.sin_port));

        if (c >= 0) {
            close(c);
            return true;
        }
        usleep(10000);
    }
    fail_msg("nats-server did not start");
    return false;
}

void
sp_nats_stop(struct sp_nats *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        sp_track(n->pid, false);
    }
    if (n->store[0] != '\0') {
        pid_t rm = fork();

        if (rm == 0) {
            execlp("rm", "rm", "-rf", n->store, (char *)NULL);
            _exit(127);
        }
        if (rm > 0)
            waitpid(rm, NULL, 0);
    }
    memset(n, 0, sizeof(*n));
}
