/*
 * troupectl - command-line client of the Troupe admin console.
 *
 *   troupectl [-s SOCKET | -H HOST:PORT [-t TOKEN]] [--json] [-T SECONDS]
 *             COMMAND [ARGS...]
 *
 * Connects to a console (Unix socket or loopback TCP), authenticates on
 * TCP, sends one command and prints its reply: the body on stdout, an
 * error line on stderr. `trace` streams until interrupted (Ctrl-C stops
 * the trace cleanly). Exit codes (see troupectl(1)):
 *   0 ok, 1 the command failed, 2 usage, 3 cannot connect,
 *   4 authentication failed, 5 protocol error, timeout or lost connection.
 *
 * A plain POSIX program: it does not link the runtime.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
    EX_OK = 0,
    EX_FAIL = 1,
    EX_USAGE_ = 2,
    EX_CONNECT = 3,
    EX_AUTH = 4,
    EX_PROTO = 5
};

#define LINE_MAX_ (1u << 20)

struct conn {
    int fd;
    char *buf;
    size_t len;
    int timeout_ms; /* < 0: none */
};

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: troupectl [-s SOCKET | -H HOST:PORT [-t TOKEN]] [--json]\n"
            "                 [-T SECONDS] COMMAND [ARGS...]\n"
            "  -s SOCKET     console Unix socket ($TROUPE_CONSOLE_SOCKET)\n"
            "  -H HOST:PORT  console TCP address (loopback)\n"
            "  -t TOKEN      token for TCP ($TROUPE_CONSOLE_TOKEN)\n"
            "  -j, --json    JSON output (one document per reply)\n"
            "  -T SECONDS    reply timeout (default 10; trace: none)\n"
            "commands: help, stats, sched, ps, info, tree, kill, restart,\n"
            "          stop, trace, conns, listeners, drain, loglevel, ...\n"
            "exit: 0 ok, 1 command failed, 2 usage, 3 connect, 4 auth,\n"
            "      5 protocol/timeout\n");
}

/* ---- connecting -------------------------------------------------------- */

static int
connect_unix(const char *path)
{
    struct sockaddr_un sa;
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "troupectl: socket path too long\n");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "troupectl: cannot connect to %s: %s\n", path,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* HOST:PORT, [V6]:PORT. */
static int
split_hostport(const char *hp, char *host, size_t cap, const char **port)
{
    const char *colon;

    if (hp[0] == '[') {
        const char *end = strchr(hp, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - hp) > cap)
            return -1;
        snprintf(host, cap, "%.*s", (int)(end - hp - 1), hp + 1);
        *port = end + 2;
        return 0;
    }
    colon = strrchr(hp, ':');
    if (colon == NULL || (size_t)(colon - hp) >= cap)
        return -1;
    snprintf(host, cap, "%.*s", (int)(colon - hp), hp);
    *port = colon + 1;
    return 0;
}

static int
connect_tcp(const char *hp)
{
    struct addrinfo hints, *res, *ai;
    char host[256];
    const char *port;
    int fd = -1, rc;

    if (split_hostport(hp, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "troupectl: bad address '%s' (HOST:PORT)\n", hp);
        return -2;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "troupectl: %s: %s\n", hp, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        fprintf(stderr, "troupectl: cannot connect to %s: %s\n", hp,
                strerror(errno));
    return fd;
}

/* ---- lines --------------------------------------------------------------*/

static int
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reads one line (without \n) into *line. Returns its length, -1 on EOF or
 * error, -2 on timeout, -3 when interrupted with nothing pending. */
static long
read_line(struct conn *c, char **line)
{
    long long deadline = c->timeout_ms >= 0 ? now_ms() + c->timeout_ms : -1;

    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        struct pollfd p = {c->fd, POLLIN, 0};
        ssize_t r;
        int wait;
        if (nl != NULL) {
            *nl = '\0';
            *line = c->buf;
            return (long)(nl - c->buf);
        }
        if (c->len == LINE_MAX_)
            return -1;
        if (interrupted)
            return -3;
        wait = deadline < 0 ? 200 : (int)(deadline - now_ms());
        if (deadline >= 0 && wait <= 0)
            return -2;
        if (poll(&p, 1, wait < 200 ? wait : 200) <= 0)
            continue;
        r = recv(c->fd, c->buf + c->len, LINE_MAX_ - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

/* Drops the line just returned by read_line. */
static void
consume(struct conn *c, long n)
{
    size_t k = (size_t)n + 1;

    memmove(c->buf, c->buf + k, c->len - k);
    c->len -= k;
}

/* ---- the protocol -------------------------------------------------------*/

static int
lost(long r)
{
    fprintf(stderr, "troupectl: %s\n",
            r == -2 ? "timed out waiting for the console"
                    : "connection closed by the console");
    return EX_PROTO;
}

static int
authenticate(struct conn *c, const char *token)
{
    char *line;
    long n;
    size_t len = strlen(token) + 7;
    char *msg = malloc(len);

    if (msg == NULL)
        return EX_PROTO;
    snprintf(msg, len, "auth %s\n", token);
    n = send_all(c->fd, msg, len - 1) == 0 ? read_line(c, &line) : -1;
    free(msg);
    if (n < 0)
        return lost(n);
    if (strcmp(line, "ok") != 0) {
        fprintf(stderr, "troupectl: %s\n", line);
        return EX_AUTH;
    }
    consume(c, n);
    return EX_OK;
}

/* Quotes a word when needed so the console splits it back the same way. */
static void
append_word(char *out, size_t cap, const char *w)
{
    size_t n = strlen(out);
    bool quote = *w == '\0' || strpbrk(w, " \t\"\\") != NULL;

    if (n != 0 && n + 1 < cap)
        out[n++] = ' ';
    if (quote && n + 1 < cap)
        out[n++] = '"';
    for (; *w != '\0' && n + 3 < cap; w++) {
        if (quote && (*w == '"' || *w == '\\'))
            out[n++] = '\\';
        out[n++] = *w;
    }
    if (quote && n + 1 < cap)
        out[n++] = '"';
    out[n] = '\0';
}

/* Prints a reply; returns the exit code. Text replies end with "ok" or an
 * "error: ..." line; JSON replies are one line. */
static int
print_reply(struct conn *c, bool json, bool trace)
{
    char *line;
    long n;
    bool stop_sent = false;

    for (;;) {
        n = read_line(c, &line);
        if (n == -3 && trace && !stop_sent) {
            /* Ctrl-C: any line stops the trace; then read its summary. */
            send_all(c->fd, "\n", 1);
            stop_sent = true;
            interrupted = 0;
            c->timeout_ms = 5000;
            continue;
        }
        if (n < 0)
            return n == -3 ? EX_FAIL : lost(n);
        if (json && strncmp(line, "{\"ok\":", 6) == 0) {
            printf("%s\n", line);
            return strncmp(line, "{\"ok\":true", 10) == 0 ? EX_OK : EX_FAIL;
        }
        if (!json && strcmp(line, "ok") == 0)
            return EX_OK;
        if (!json && strncmp(line, "error:", 6) == 0) {
            fflush(stdout);
            fprintf(stderr, "%s\n", line);
            return EX_FAIL;
        }
        printf("%s\n", line);
        if (trace)
            fflush(stdout);
        consume(c, n);
    }
}

struct args {
    const char *sock, *hostport, *token;
    bool json;
    int timeout_s;
    int argc;
    char **argv;
};

static int
parse_args(int argc, char **argv, struct args *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    a->timeout_s = 10;
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *o = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            exit(EX_OK);
        } else if (strcmp(o, "--version") == 0) {
            printf("troupectl 0.1.0\n");
            exit(EX_OK);
        } else if (strcmp(o, "-j") == 0 || strcmp(o, "--json") == 0) {
            a->json = true;
        } else if (strcmp(o, "-s") == 0 && has) {
            a->sock = argv[++i];
        } else if (strcmp(o, "-H") == 0 && has) {
            a->hostport = argv[++i];
        } else if (strcmp(o, "-t") == 0 && has) {
            a->token = argv[++i];
        } else if (strcmp(o, "-T") == 0 && has) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end != '\0' || t <= 0 || t > 86400)
                return -1;
            a->timeout_s = (int)t;
        } else {
            return -1;
        }
    }
    a->argc = argc - i;
    a->argv = argv + i;
    if (a->sock == NULL && a->hostport == NULL)
        a->sock = getenv("TROUPE_CONSOLE_SOCKET");
    if (a->token == NULL)
        a->token = getenv("TROUPE_CONSOLE_TOKEN");
    if (a->argc == 0 || (a->sock != NULL && a->hostport != NULL) ||
        (a->sock == NULL && a->hostport == NULL))
        return -1;
    return 0;
}

static int
run(struct args *a, struct conn *c)
{
    char cmd[8192] = "";
    char *line;
    bool trace = strcmp(a->argv[0], "trace") == 0;
    long n;
    int rc;

    /* The banner. */
    if ((n = read_line(c, &line)) < 0)
        return lost(n);
    if (strncmp(line, "error:", 6) == 0) {
        fprintf(stderr, "troupectl: %s\n", line);
        return EX_CONNECT; /* e.g. too many sessions */
    }
    consume(c, n);
    if (a->hostport != NULL) {
        if (a->token == NULL || a->token[0] == '\0') {
            fprintf(stderr, "troupectl: TCP needs a token (-t or "
                            "$TROUPE_CONSOLE_TOKEN)\n");
            return EX_AUTH;
        }
        if ((rc = authenticate(c, a->token)) != EX_OK)
            return rc;
    }
    if (a->json)
        append_word(cmd, sizeof(cmd), "json");
    for (int i = 0; i < a->argc; i++)
        append_word(cmd, sizeof(cmd), a->argv[i]);
    strncat(cmd, "\n", sizeof(cmd) - strlen(cmd) - 1);
    if (send_all(c->fd, cmd, strlen(cmd)) != 0)
        return lost(-1);
    if (trace)
        c->timeout_ms = -1;
    rc = print_reply(c, a->json, trace);
    send_all(c->fd, "quit\n", 5);
    return rc;
}

int
main(int argc, char **argv)
{
    struct sigaction sa;
    struct args a;
    struct conn c;
    int rc;

    if (parse_args(argc, argv, &a) != 0) {
        usage(stderr);
        return EX_USAGE_;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof(c));
    c.timeout_ms = a.timeout_s * 1000;
    c.fd = a.sock != NULL ? connect_unix(a.sock) : connect_tcp(a.hostport);
    if (c.fd < 0)
        return c.fd == -2 ? EX_USAGE_ : EX_CONNECT;
    if ((c.buf = malloc(LINE_MAX_)) == NULL)
        return EX_PROTO;
    rc = run(&a, &c);
    close(c.fd);
    free(c.buf);
    return rc;
}
