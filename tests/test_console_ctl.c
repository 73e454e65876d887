/*
 * tests/test_console_ctl.c - troupectl against servers that are not what
 * they claim (issue 14): an impostor on the TCP port must not get the
 * token, a relay to the real console must not get a session, a server
 * that drips lines must not outlast -T, escape sequences must not reach
 * the terminal, the token never comes from the command line, and a
 * non-loopback address needs --allow-remote. The fake servers run on
 * helper threads (TPT_CHECK only there). TP_TEST_TROUPECTL overrides the
 * binary (to run these against another build).
 */
#include "test_console_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN "ctl-test-token-5f0d9c1e8a7b6d4c3b2a1908"

static char out[1 << 16];

static const char *
troupectl(void)
{
    const char *e = getenv("TP_TEST_TROUPECTL");

    return e != NULL && e[0] != '\0' ? e : TROUPECTL;
}

/* ---- running troupectl ---------------------------------------------------*/

/* Runs troupectl with argv (NULL-terminated, without argv[0]) and, if
 * token is set, TROUPE_CONSOLE_TOKEN=token; output (stdout and stderr)
 * into out. Killed after ms * tpt_slow(). Returns the exit status (-1 if
 * killed); *ms_taken is how long it ran. */
static int
run_ctl(const char *token, const char *const *args, int ms, long *ms_taken)
{
    char *argv[32], env[256];
    char *envp[] = {env, "PATH=/usr/bin:/bin", NULL};
    int p[2], st, n = 0, argc = 0;
    uint64_t t0 = tp_now_ns(), dl = t0 + (uint64_t)ms * tpt_slow() * 1000000u;
    pid_t pid;

    snprintf(env, sizeof(env), "TROUPE_CONSOLE_TOKEN=%s",
             token != NULL ? token : "");
    argv[argc++] = (char *)troupectl();
    for (; args[argc - 1] != NULL && argc < 31; argc++)
        argv[argc] = (char *)args[argc - 1];
    argv[argc] = NULL;
    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    close(p[1]);
    out[0] = '\0';
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        uint64_t now = tp_now_ns();
        ssize_t r;
        if (now >= dl) {
            kill(pid, SIGKILL);
            break;
        }
        if (poll(&pf, 1, (int)((dl - now) / 1000000u) + 1) <= 0)
            continue;
        r = read(p[0], out + n, sizeof(out) - 1 - (size_t)n);
        if (r <= 0)
            break;
        n += (int)r;
        out[n] = '\0';
    }
    close(p[0]);
    waitpid(pid, &st, 0);
    *ms_taken = (long)((tp_now_ns() - t0) / 1000000u);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- fake servers (helper threads) ---------------------------------------*/

enum fake_mode { FAKE_IMPOSTOR, FAKE_DRIP, FAKE_ESCAPES, FAKE_RELAY };

struct fake {
    enum fake_mode mode;
    int lfd, port, relay_to;
    char path[108];
    char got[8192]; /* what the client sent */
    size_t got_len;
    _Atomic bool stop;
    pthread_t th;
};

static void
say(int fd, const char *s)
{
    send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/* Reads what the client sends for up to ms; returns false on EOF. */
static bool
take(struct fake *f, int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t r;

    if (poll(&p, 1, ms) <= 0)
        return true;
    r = recv(fd, f->got + f->got_len, sizeof(f->got) - 1 - f->got_len, 0);
    if (r <= 0)
        return false;
    f->got_len += (size_t)r;
    f->got[f->got_len] = '\0';
    return true;
}

/* A TCP "console" that answers a hello with a made-up proof. */
static void
impostor(struct fake *f, int fd)
{
    bool challenged = false;

    say(fd, "troupe console 0.1.0: authenticate with 'auth TOKEN'\n");
    for (int i = 0; i < 100 && !atomic_load(&f->stop); i++) {
        if (!take(f, fd, 30))
            return;
        if (!challenged && strstr(f->got, "hello ") != NULL) {
            say(fd, "challenge 0123456789abcdef0123456789abcdef "
                    "00000000000000000000000000000000"
                    "00000000000000000000000000000000\n");
            challenged = true;
        }
    }
}

/* A Unix "console" that answers a command with a line every 300 ms. */
static void
drip(struct fake *f, int fd)
{
    say(fd, "troupe console 0.1.0: type 'help'\n");
    while (!atomic_load(&f->stop) && strchr(f->got, '\n') == NULL)
        if (!take(f, fd, 50))
            return;
    for (int i = 0; i < 100 && !atomic_load(&f->stop); i++) {
        if (send(fd, "still here\n", 11, MSG_NOSIGNAL) < 0)
            return;
        tpt_sleep_ms(300);
    }
}

/* A Unix "console" whose reply is full of terminal escapes. */
static void
escapes(struct fake *f, int fd)
{
    say(fd, "troupe console 0.1.0: type 'help'\n");
    while (!atomic_load(&f->stop) && strchr(f->got, '\n') == NULL)
        if (!take(f, fd, 50))
            return;
    if (strstr(f->got, "frob") != NULL)
        say(fd, "error: \x1b[31mred\x1b]0;err\a\n");
    else
        say(fd, "\x1b]0;owned\atitle\x1b[2Jclear \xc2\x9b"
                "6n csi "
                "\xe2\x80\xae"
                "evil \xff\xfe bytes caf\xc3\xa9\nok\n");
    take(f, fd, 500);
}

/* Relays one connection to the real console's port. */
static void
relay(struct fake *f, int fd)
{
    int up = tcn_dial_tcp(f->relay_to);
    char b[4096];

    TPT_CHECK(up >= 0);
    while (up >= 0 && !atomic_load(&f->stop)) {
        struct pollfd p[2] = {{fd, POLLIN, 0}, {up, POLLIN, 0}};
        if (poll(p, 2, 50) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            ssize_t r;
            if (!(p[i].revents & (POLLIN | POLLHUP)))
                continue;
            r = recv(p[i].fd, b, sizeof(b), 0);
            if (r <= 0 ||
                send(i == 0 ? up : fd, b, (size_t)r, MSG_NOSIGNAL) < 0)
                goto done;
        }
    }
done:
    if (up >= 0)
        close(up);
}

static void *
fake_run(void *arg)
{
    struct fake *f = arg;
    struct pollfd p = {f->lfd, POLLIN, 0};
    int fd;

    while (!atomic_load(&f->stop)) {
        if (poll(&p, 1, 50) <= 0)
            continue;
        if ((fd = accept(f->lfd, NULL, NULL)) < 0)
            continue;
        f->got_len = 0;
        f->got[0] = '\0';
        if (f->mode == FAKE_IMPOSTOR)
            impostor(f, fd);
        else if (f->mode == FAKE_DRIP)
            drip(f, fd);
        else if (f->mode == FAKE_ESCAPES)
            escapes(f, fd);
        else
            relay(f, fd);
        close(fd);
    }
    return NULL;
}

static void
fake_start(struct fake *f, enum fake_mode mode, bool unix_sock)
{
    f->mode = mode;
    if (unix_sock) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(f->path, sizeof(f->path), "/tmp/tpctl-%d-%d.sock",
                 (int)getpid(), (int)mode);
        unlink(f->path);
        memcpy(sa.sun_path, f->path, strlen(f->path) + 1);
        f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(sa);
        f->lfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
        f->port = ntohs(sa.sin_port);
    }
    assert_int_equal(listen(f->lfd, 16), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_run, f), 0);
}

static void
fake_stop(struct fake *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->th, NULL);
    close(f->lfd);
    if (f->path[0] != '\0')
        unlink(f->path);
    tpt_check_failures();
}

/* ---- the real console ---------------------------------------------------*/

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    char hp[64];
};

static int
setup(void **st)
{
    static struct fixture f;
    tp_console_opts o;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(2);
    tp_console_opts_init(&o);
    o.tcp_port = 0;
    o.token = TOKEN;
    assert_int_equal(tp_console_start(f.rt, &o, &f.con), 0);
    snprintf(f.hp, sizeof(f.hp), "127.0.0.1:%d", tp_console_tcp_port(f.con));
    *st = &f;
    return 0;
}

static int
teardown(void **st)
{
    struct fixture *f = *st;

    tp_console_stop(f->con);
    tpt_finish(f->rt);
    return 0;
}

/* ---- tests
 * -----------------------------------------------------------------*/

/* Whoever holds the port learns nothing of the token. */
static void
test_console_ctl_impostor_gets_no_token(void **st)
{
    struct fake f = {.stop = false};
    char hp[64];
    long ms;
    int rc;

    (void)st;
    fake_start(&f, FAKE_IMPOSTOR, false);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f.port);
    rc = run_ctl(TOKEN, (const char *[]){"-H", hp, "stats", NULL}, 10000, &ms);
    fake_stop(&f);
    print_message("impostor: exit %d; it was sent: %.200s\n", rc, f.got);
    assert_null(strstr(f.got, TOKEN));
    assert_int_equal(rc, 4);
    assert_non_null(strstr(out, "could not prove"));
}

/* A relay to the real console (another port) cannot use its proof. */
static void
test_console_ctl_relay_refused(void **st)
{
    struct fixture *fx = *st;
    struct fake f = {.stop = false, .relay_to = tp_console_tcp_port(fx->con)};
    char hp[64];
    long ms;
    int rc;

    fake_start(&f, FAKE_RELAY, false);
    snprintf(hp, sizeof(hp), "127.0.0.1:%d", f.port);
    rc = run_ctl(TOKEN, (const char *[]){"-H", hp, "stats", NULL}, 10000, &ms);
    fake_stop(&f);
    print_message("relay: exit %d: %s", rc, out);
    assert_int_equal(rc, 4);
    /* The real thing works. */
    rc = run_ctl(TOKEN, (const char *[]){"-H", fx->hp, "stats", NULL}, 10000,
                 &ms);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "uptime"));
}

/* -T bounds the whole command, whatever trickles in. */
static void
test_console_ctl_overall_deadline(void **st)
{
    struct fake f = {.stop = false};
    long ms;
    int rc;

    (void)st;
    fake_start(&f, FAKE_DRIP, true);
    rc = run_ctl(NULL, (const char *[]){"-s", f.path, "-T", "1", "stats", NULL},
                 20000, &ms);
    fake_stop(&f);
    print_message("drip: exit %d after %ld ms\n", rc, ms);
    assert_int_equal(rc, 5);
    assert_true(ms < 1000 + 2000 * (long)tpt_slow());
}

/* Nothing the server sends can drive the terminal. */
static void
test_console_ctl_output_escaped(void **st)
{
    struct fake f = {.stop = false};
    long ms;
    int rc;

    (void)st;
    fake_start(&f, FAKE_ESCAPES, true);
    rc = run_ctl(NULL, (const char *[]){"-s", f.path, "stats", NULL}, 10000,
                 &ms);
    print_message("escapes: exit %d: %s", rc, out);
    assert_int_equal(rc, 0);
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\a'));
    assert_null(strstr(out, "\xc2\x9b"));
    assert_null(strstr(out, "\xe2\x80\xae"));
    assert_null(strstr(out, "\xff"));
    assert_non_null(strstr(out, "\\x1b]0;owned"));
    assert_non_null(strstr(out, "caf\xc3\xa9")); /* UTF-8 text stays */
    rc =
        run_ctl(NULL, (const char *[]){"-s", f.path, "frob", NULL}, 10000, &ms);
    fake_stop(&f);
    assert_int_equal(rc, 1);
    assert_null(strchr(out, '\x1b'));
    assert_non_null(strstr(out, "error: \\x1b[31mred"));
}

/* The token comes from a file or the environment, never argv. */
static void
test_console_ctl_token_sources(void **st)
{
    struct fixture *fx = *st;
    char file[64];
    long ms;
    int rc, fd;

    rc = run_ctl(NULL,
                 (const char *[]){"-H", fx->hp, "-t", TOKEN, "stats", NULL},
                 10000, &ms);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--token-file"));
    snprintf(file, sizeof(file), "/tmp/tpctl-token-%d", (int)getpid());
    fd = open(file, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, TOKEN "\n", sizeof(TOKEN)), (int)sizeof(TOKEN));
    close(fd);
    rc = run_ctl(
        NULL,
        (const char *[]){"-H", fx->hp, "--token-file", file, "stats", NULL},
        10000, &ms);
    unlink(file);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "uptime"));
    /* A wrong token from the environment: refused by the server's proof
     * check on our side (the server cannot prove the wrong token). */
    rc = run_ctl("wrong", (const char *[]){"-H", fx->hp, "stats", NULL}, 10000,
                 &ms);
    assert_int_equal(rc, 4);
}

/* A token is never sent off the machine without --allow-remote. */
static void
test_console_ctl_remote_needs_flag(void **st)
{
    long ms;
    int rc;

    (void)st;
    rc = run_ctl(TOKEN, (const char *[]){"-H", "192.0.2.1:7070", "stats", NULL},
                 10000, &ms);
    print_message("remote: exit %d after %ld ms: %s", rc, ms, out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "--allow-remote"));
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_ctl_impostor_gets_no_token),
        cmocka_unit_test_setup_teardown(test_console_ctl_relay_refused, setup,
                                        teardown),
        cmocka_unit_test(test_console_ctl_overall_deadline),
        cmocka_unit_test(test_console_ctl_output_escaped),
        cmocka_unit_test_setup_teardown(test_console_ctl_token_sources, setup,
                                        teardown),
        cmocka_unit_test(test_console_ctl_remote_needs_flag),
    };

    signal(SIGPIPE, SIG_IGN);
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
