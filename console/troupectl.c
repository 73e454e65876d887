/*
 * troupectl - command-line client of the Troupe admin console.
 *
 *   troupectl [-s SOCKET | -H HOST:PORT [--token-file FILE]
 *             [--allow-remote]] [--json] [-T SECONDS] COMMAND [ARGS...]
 *
 * Connects to a console (Unix socket or loopback TCP), logs in on TCP,
 * sends one command and prints its reply: the body on stdout, an error
 * line on stderr. `trace` streams until interrupted (Ctrl-C stops the
 * trace cleanly). Exit codes (see troupectl(1)):
 *   0 ok, 1 the command failed, 2 usage, 3 cannot connect,
 *   4 authentication failed, 5 protocol error, timeout or lost connection.
 *
 * What it trusts (docs/CONSOLE.md, "Trust"): the token comes from a file
 * or the environment, never the command line (visible to every user);
 * over TCP it never sends the token: the server must first prove it knows
 * it (HMAC over our nonce, its nonce and the address we dialled), then we
 * prove the same; a non-loopback address needs --allow-remote. -T bounds
 * the whole run (connect, login, reply), not each read. Everything the
 * server sends is printed with control characters escaped.
 *
 * A plain POSIX program: it does not link the runtime.
 */
#include "sha256.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

#define TOKEN_MAX 200

struct conn {
    int fd;
    char *buf;
    size_t len;
    long long deadline; /* ms (CLOCK_MONOTONIC); < 0: none */
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
    fprintf(
        f, "usage: troupectl [-s SOCKET | -H HOST:PORT [--token-file FILE]\n"
           "                 [--allow-remote]] [--json] [-T SECONDS]\n"
           "                 COMMAND [ARGS...]\n"
           "  -s SOCKET          console Unix socket "
           "($TROUPE_CONSOLE_SOCKET)\n"
           "  -H HOST:PORT       console TCP address (loopback)\n"
           "  --token-file FILE  token for TCP (else $TROUPE_CONSOLE_TOKEN or\n"
           "                     $TROUPE_TOKEN)\n"
           "  --allow-remote     let -H be an address that is not loopback\n"
           "  -j, --json         JSON output (one document per reply)\n"
           "  -T SECONDS         deadline for the whole command (default 10;\n"
           "                     trace: until it starts)\n"
           "commands: help, stats, sched, ps, info, tree, kill, restart,\n"
           "          stop, trace, conns, listeners, drain, loglevel, ...\n"
           "exit: 0 ok, 1 command failed, 2 usage, 3 connect, 4 auth,\n"
           "      5 protocol/timeout\n");
}

/* ---- connecting -------------------------------------------------------- */

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Milliseconds left before the deadline (>= 0), or -1 for none. */
static int
left_ms(long long deadline)
{
    long long l = deadline - now_ms();

    if (deadline < 0)
        return -1;
    return l > 0 ? (int)(l < 86400000 ? l : 86400000) : 0;
}

/* connect() bounded by the deadline. 0, or -1 with errno set. */
static int
connect_by(int fd, const struct sockaddr *sa, socklen_t len, long long dl)
{
    struct pollfd p = {fd, POLLOUT, 0};
    int err = 0, flags = fcntl(fd, F_GETFL);
    socklen_t el = sizeof(err);

    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (connect(fd, sa, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN)
            return -1;
        if (poll(&p, 1, left_ms(dl)) <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
            errno = err != 0 ? err : errno;
            return -1;
        }
    }
    fcntl(fd, F_SETFL, flags);
    return 0;
}

static int
connect_unix(const char *path, long long dl)
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
    if (fd < 0 || connect_by(fd, (struct sockaddr *)&sa, sizeof(sa), dl) != 0) {
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

static bool
is_loopback(const struct sockaddr *sa)
{
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    const unsigned char *a6;

    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >>
                24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(a6, mapped, 12) == 0)
        return a6[12] == 127;
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

/* Resolves HOST:PORT; every address must be loopback unless remote.
 * Returns the list, or NULL (message printed, *usage set for -2). */
static struct addrinfo *
resolve(const char *hp, bool remote, int *code)
{
    struct addrinfo hints, *res, *ai;
    char host[256];
    const char *port;
    int rc;

    *code = -2;
    if (split_hostport(hp, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "troupectl: bad address '%s' (HOST:PORT)\n", hp);
        return NULL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
        fprintf(stderr, "troupectl: %s: %s\n", hp, gai_strerror(rc));
        *code = -1;
        return NULL;
    }
    for (ai = res; ai != NULL && !remote; ai = ai->ai_next) {
        if (is_loopback(ai->ai_addr))
            continue;
        fprintf(stderr,
                "troupectl: %s is not a loopback address: the token is not "
                "sent there without --allow-remote\n",
                hp);
        freeaddrinfo(res);
        return NULL;
    }
    return res;
}

static int
connect_tcp(const char *hp, bool remote, long long dl)
{
    struct addrinfo *res, *ai;
    int fd = -1, code;

    if ((res = resolve(hp, remote, &code)) == NULL)
        return code;
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd >= 0 && connect_by(fd, ai->ai_addr, ai->ai_addrlen, dl) != 0) {
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

/* Reads one line (without \n) into *line. Returns its length, -1 on EOF or
 * error, -2 on timeout, -3 when interrupted with nothing pending. */
static long
read_line(struct conn *c, char **line)
{
    long long deadline = c->deadline;

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
        wait = deadline < 0 ? 200 : left_ms(deadline);
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

/* ---- printing what the server sent -------------------------------------*/

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 if
 * none (RFC 3629: no overlongs, surrogates or code points past U+10FFFF).*/
static size_t
utf8_len(const unsigned char *p, size_t n)
{
    size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : 2;
    unsigned char lo = 0x80, hi = 0xbf;

    if (p[0] < 0xc2 || p[0] > 0xf4 || n < k)
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return k;
}

/* Code points a terminal acts on rather than shows: C1 controls, and the
 * bidirectional overrides and isolates (text that reads differently from
 * what it is). */
static bool
utf8_hostile(const unsigned char *p, size_t k)
{
    if (k == 2)
        return p[0] == 0xc2 && p[1] < 0xa0;
    return k == 3 && p[0] == 0xe2 &&
           ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) ||
            (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9));
}

/* Writes a line the server sent, with every control byte (tab aside),
 * hostile code point and invalid UTF-8 byte shown as \xNN: a console
 * reply can never drive the terminal. */
static void
print_safe(FILE *f, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : utf8_len(p + i, n - i);
        if (k == 1 && (p[i] >= 0x20 || p[i] == '\t') && p[i] != 0x7f) {
            fputc(p[i], f);
        } else if (k > 1 && !utf8_hostile(p + i, k)) {
            fwrite(p + i, 1, k, f);
        } else {
            k = k == 0 ? 1 : k;
            for (size_t j = 0; j < k; j++)
                fprintf(f, "\\x%02x", p[i + j]);
        }
        i += k;
    }
    fputc('\n', f);
}

static void
say(const char *prefix, const char *line)
{
    fflush(stdout);
    fputs(prefix, stderr);
    print_safe(stderr, line, strlen(line));
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

/* Reads the next line into *line; EX_OK or the exit code (reported). */
static int
next_line(struct conn *c, char **line, long *n)
{
    *n = read_line(c, line);
    return *n < 0 ? lost(*n) : EX_OK;
}

/* The address we dialled, as the server writes its own in the proofs:
 * "127.0.0.1:7070", "[::1]:7070" (IPv4-mapped shown as IPv4). */
static int
dialled(int fd, char *out, size_t cap)
{
    static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin_port));
        return 0;
    }
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    if (memcmp(a->sin6_addr.s6_addr, mapped, 12) == 0) {
        inet_ntop(AF_INET, a->sin6_addr.s6_addr + 12, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(a->sin6_port));
    } else {
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return 0;
}

/* Checks "challenge SNONCE SPROOF": the server must know the token.
 * Copies SNONCE out. */
static int
check_challenge(const char *line, const char *token, const char *cnonce,
                const char *addr, char snonce[TP__NONCE_HEX + 1])
{
    char proof[65], want[65];

    if (sscanf(line, "challenge %32[0-9a-f] %64[0-9a-f]", snonce, proof) != 2 ||
        strlen(snonce) != TP__NONCE_HEX || strlen(proof) != 64)
        return -1;
    tp__login_proof(token, 1, cnonce, snonce, addr, want);
    return tp__mem_equal(want, proof, 64) ? 0 : -1;
}

/* The login (console/login.c): hello, check the server's proof, send
 * ours. The token itself never leaves this process. */
static int
login(struct conn *c, const char *token)
{
    unsigned char r[TP__NONCE_HEX / 2];
    char cnonce[TP__NONCE_HEX + 1], snonce[TP__NONCE_HEX + 1] = "";
    char addr[80], msg[128], proof[65], *line;
    long n;
    int rc;

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r) ||
        dialled(c->fd, addr, sizeof(addr)) != 0)
        return EX_PROTO;
    tp__hex(r, sizeof(r), cnonce);
    snprintf(msg, sizeof(msg), "hello %s\n", cnonce);
    if (send_all(c->fd, msg, strlen(msg)) != 0)
        return lost(-1);
    if ((rc = next_line(c, &line, &n)) != EX_OK)
        return rc;
    if (check_challenge(line, token, cnonce, addr, snonce) != 0) {
        say("troupectl: the server could not prove it knows the token (not "
            "the console you meant, or another token); nothing sent. It "
            "said: ",
            line);
        return EX_AUTH;
    }
    consume(c, n);
    tp__login_proof(token, 0, cnonce, snonce, addr, proof);
    snprintf(msg, sizeof(msg), "login %s\n", proof);
    if (send_all(c->fd, msg, strlen(msg)) != 0)
        return lost(-1);
    if ((rc = next_line(c, &line, &n)) != EX_OK)
        return rc;
    if (strcmp(line, "ok") != 0) {
        say("troupectl: ", line);
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
            c->deadline = now_ms() + 5000;
            continue;
        }
        if (n < 0)
            return n == -3 ? EX_FAIL : lost(n);
        if (json && strncmp(line, "{\"ok\":", 6) == 0) {
            print_safe(stdout, line, (size_t)n);
            return strncmp(line, "{\"ok\":true", 10) == 0 ? EX_OK : EX_FAIL;
        }
        if (!json && strcmp(line, "ok") == 0)
            return EX_OK;
        if (!json && strncmp(line, "error:", 6) == 0) {
            say("", line);
            return EX_FAIL;
        }
        print_safe(stdout, line, (size_t)n);
        if (trace)
            fflush(stdout);
        consume(c, n);
    }
}

struct args {
    const char *sock, *hostport, *token_file;
    char token[TOKEN_MAX + 2];
    bool json, remote;
    int timeout_s;
    int argc;
    char **argv;
};

/* The token from --token-file (its first line), else the environment. A
 * file others may read gets a warning. 0, or -1 (reported). */
static int
read_token(struct args *a)
{
    const char *env = getenv("TROUPE_CONSOLE_TOKEN");
    struct stat st;
    FILE *f;

    if (a->token_file == NULL) {
        if (env == NULL || env[0] == '\0')
            env = getenv("TROUPE_TOKEN");
        snprintf(a->token, sizeof(a->token), "%s", env != NULL ? env : "");
        return 0;
    }
    if ((f = fopen(a->token_file, "re")) == NULL) {
        fprintf(stderr, "troupectl: %s: %s\n", a->token_file, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        fprintf(stderr,
                "troupectl: warning: %s can be read by others "
                "(chmod 600 it)\n",
                a->token_file);
    if (fgets(a->token, sizeof(a->token), f) == NULL)
        a->token[0] = '\0';
    fclose(f);
    a->token[strcspn(a->token, "\r\n")] = '\0';
    return 0;
}

static int
parse_timeout(const char *v, int *out)
{
    char *end;
    long t = strtol(v, &end, 10);

    if (*end != '\0' || t <= 0 || t > 86400)
        return -1;
    *out = (int)t;
    return 0;
}

/* One option at argv[*i]; 0, or -1 (usage). */
static int
parse_opt(int argc, char **argv, int *i, struct args *a)
{
    const char *o = argv[*i];
    bool has = *i + 1 < argc;

    if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
        usage(stdout);
        exit(EX_OK);
    } else if (strcmp(o, "--version") == 0) {
        printf("troupectl 0.1.0\n");
        exit(EX_OK);
    } else if (strcmp(o, "-j") == 0 || strcmp(o, "--json") == 0) {
        a->json = true;
    } else if (strcmp(o, "--allow-remote") == 0) {
        a->remote = true;
    } else if (strcmp(o, "-s") == 0 && has) {
        a->sock = argv[++*i];
    } else if (strcmp(o, "-H") == 0 && has) {
        a->hostport = argv[++*i];
    } else if (strcmp(o, "--token-file") == 0 && has) {
        a->token_file = argv[++*i];
    } else if (strcmp(o, "-t") == 0) {
        fprintf(stderr,
                "troupectl: -t was removed: a token on the command line is "
                "visible to every user (ps, /proc/PID/cmdline); use "
                "--token-file FILE or $TROUPE_CONSOLE_TOKEN\n");
        exit(EX_USAGE_);
    } else if (strcmp(o, "-T") == 0 && has) {
        return parse_timeout(argv[++*i], &a->timeout_s);
    } else {
        return -1;
    }
    return 0;
}

static int
parse_args(int argc, char **argv, struct args *a)
{
    int i;

    memset(a, 0, sizeof(*a));
    a->timeout_s = 10;
    for (i = 1; i < argc && argv[i][0] == '-'; i++)
        if (parse_opt(argc, argv, &i, a) != 0)
            return -1;
    a->argc = argc - i;
    a->argv = argv + i;
    if (a->sock == NULL && a->hostport == NULL)
        a->sock = getenv("TROUPE_CONSOLE_SOCKET");
    if (a->argc == 0 || (a->sock != NULL && a->hostport != NULL) ||
        (a->sock == NULL && a->hostport == NULL))
        return -1;
    return 0;
}

/* Reads the banner; TCP: logs in. */
static int
greet(struct args *a, struct conn *c)
{
    char *line;
    long n;
    int rc;

    if ((rc = next_line(c, &line, &n)) != EX_OK)
        return rc;
    if (strncmp(line, "error:", 6) == 0) {
        say("troupectl: ", line);
        return EX_CONNECT; /* e.g. too many sessions */
    }
    consume(c, n);
    if (a->hostport == NULL)
        return EX_OK;
    if (a->token[0] == '\0') {
        fprintf(stderr, "troupectl: TCP needs a token (--token-file or "
                        "$TROUPE_CONSOLE_TOKEN)\n");
        return EX_AUTH;
    }
    return login(c, a->token);
}

static int
run(struct args *a, struct conn *c)
{
    char cmd[8192] = "";
    bool trace = strcmp(a->argv[0], "trace") == 0;
    int rc;

    if ((rc = greet(a, c)) != EX_OK)
        return rc;
    if (a->json)
        append_word(cmd, sizeof(cmd), "json");
    for (int i = 0; i < a->argc; i++)
        append_word(cmd, sizeof(cmd), a->argv[i]);
    strncat(cmd, "\n", sizeof(cmd) - strlen(cmd) - 1);
    if (send_all(c->fd, cmd, strlen(cmd)) != 0)
        return lost(-1);
    if (trace)
        c->deadline = -1; /* a trace runs until Ctrl-C */
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
    if (a.hostport != NULL && read_token(&a) != 0)
        return EX_USAGE_;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    memset(&c, 0, sizeof(c));
    c.deadline = now_ms() + a.timeout_s * 1000LL;
    c.fd = a.sock != NULL ? connect_unix(a.sock, c.deadline)
                          : connect_tcp(a.hostport, a.remote, c.deadline);
    if (c.fd < 0)
        return c.fd == -2 ? EX_USAGE_ : EX_CONNECT;
    if ((c.buf = calloc(1, LINE_MAX_)) == NULL)
        return EX_PROTO;
    rc = run(&a, &c);
    close(c.fd);
    free(c.buf);
    return rc;
}
