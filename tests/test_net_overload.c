/*
 * tests/test_net_overload.c - overload: connections over max_conns are
 * refused quickly and counted; running out of file descriptors (a lowered
 * RLIMIT_NOFILE) makes the listener back off instead of spinning, and it
 * recovers by itself once descriptors are free again.
 *
 * The fd test's clients live in a child process (forked before the
 * runtime exists), so only the server feels the lowered limit.
 */
#include "test_net_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void
test_net_max_conns_refused(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    tp_listen_opts o;
    tp_listener *l;
    tp_listener_info info;
    int fds[5], extra, e;
    uint64_t t0;
    char c;

    (void)state;
    tnet_opts(&o, &cfg);
    o.max_conns = 5;
    l = tnet_listen(rt, &cfg, &o);
    for (int i = 0; i < 5; i++) {
        fds[i] = tnet_connect("127.0.0.1", tp_listener_port(l));
        tnet_write_all(fds[i], "a", 1);
        assert_int_equal(tnet_read_n(fds[i], &c, 1, 5000), 1);
    }
    /* The sixth is accepted and reset at once. */
    t0 = tnet_ms();
    extra = tnet_connect("127.0.0.1", tp_listener_port(l));
    e = tnet_wait_eof(extra, 5000); /* the end or a reset, not silence */
    print_message("refused after %llu ms\n",
                  (unsigned long long)(tnet_ms() - t0));
    assert_true(e == 0 || e == -ECONNRESET);
    close(extra);
    tp_listener_get_info(l, &info);
    assert_int_equal(info.refused, 1);
    assert_int_equal(info.conns, 5);
    /* A free slot is taken again. */
    close(fds[0]);
    for (int tries = 0; tries < 1000 * (int)tpt_slow(); tries++) {
        tp_listener_get_info(l, &info);
        if (info.conns == 4)
            break;
        tpt_sleep_ms(5);
    }
    assert_int_equal(info.conns, 4);
    fds[0] = tnet_connect("127.0.0.1", tp_listener_port(l));
    tnet_write_all(fds[0], "b", 1);
    assert_int_equal(tnet_read_n(fds[0], &c, 1, 5000), 1);
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    tpt_finish(rt);
}

/* ---------------------------------------------------------------------- */
/* The client process                                                     */

#define MAX_CLIENTS 64

struct client {
    int fd[MAX_CLIENTS];
    bool served[MAX_CLIENTS];
    bool closed[MAX_CLIENTS];
    int n;
};

static void
client_connect(struct client *cl, int n, uint16_t port)
{
    struct sockaddr_in in;

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n && cl->n < MAX_CLIENTS; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0 ||
            write(fd, "e", 1) != 1) {
            close(fd);
            continue;
        }
        cl->fd[cl->n++] = fd;
    }
}

/* Waits up to ms for echoes; with quiet > 0, returns as soon as some came
 * and then none for quiet ms (quiet 0: waits the whole ms, to see that
 * none comes). Returns how many were served in this round. */
static int
client_collect(struct client *cl, int ms, int quiet)
{
    uint64_t end = tnet_ms() + (uint64_t)ms, last = 0;
    int served = 0;

    while (tnet_ms() < end) {
        if (quiet > 0 && served > 0 && tnet_ms() - last >= (uint64_t)quiet)
            break;
        struct pollfd pf[MAX_CLIENTS];
        for (int i = 0; i < cl->n; i++) {
            pf[i].fd = cl->served[i] ? -1 : cl->fd[i];
            pf[i].events = POLLIN;
            pf[i].revents = 0;
        }
        if (poll(pf, (nfds_t)cl->n, 20) <= 0)
            continue;
        for (int i = 0; i < cl->n; i++) {
            char c;
            if (!(pf[i].revents & POLLIN) || read(cl->fd[i], &c, 1) != 1)
                continue;
            cl->served[i] = true;
            served++;
            last = tnet_ms();
        }
    }
    return served;
}

/* Closes the connections that were served. Returns how many. */
static int
client_release(struct client *cl)
{
    int n = 0;

    for (int i = 0; i < cl->n; i++) {
        if (cl->served[i] && !cl->closed[i]) {
            close(cl->fd[i]);
            cl->closed[i] = true;
            n++;
        }
    }
    return n;
}

static void
client_main(int in, int out)
{
    struct client cl;
    char line[64];
    FILE *f = fdopen(in, "r");

    memset(&cl, 0, sizeof(cl));
    while (fgets(line, sizeof(line), f) != NULL) {
        int a = 0, b = 0, r = 0;
        char reply[32];
        if (sscanf(line, "c %d %d", &a, &b) == 2) {
            client_connect(&cl, a, (uint16_t)b);
            r = cl.n;
        } else if (sscanf(line, "e %d %d", &a, &b) >= 1) {
            r = client_collect(&cl, a, b);
        } else if (line[0] == 'x') {
            r = client_release(&cl);
        } else {
            break;
        }
        snprintf(reply, sizeof(reply), "%d\n", r);
        if (write(out, reply, strlen(reply)) < 0)
            break;
    }
    _exit(0);
}

struct child {
    pid_t pid;
    int to, from;
};

static struct child
child_start(void)
{
    int a[2], b[2];
    struct child ch;

    assert_int_equal(pipe(a), 0);
    assert_int_equal(pipe(b), 0);
    ch.pid = fork();
    assert_true(ch.pid >= 0);
    if (ch.pid == 0) {
        close(a[1]);
        close(b[0]);
        client_main(a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    ch.to = a[1];
    ch.from = b[0];
    return ch;
}

static int
child_ask(struct child *ch, const char *cmd)
{
    char buf[32];
    ssize_t n = 0, r;

    tnet_write_all(ch->to, cmd, strlen(cmd));
    while (n < (ssize_t)sizeof(buf) - 1 &&
           (r = read(ch->from, buf + n, 1)) == 1 && buf[n] != '\n')
        n++;
    buf[n] = '\0';
    return atoi(buf);
}

static uint64_t
cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* The descriptor limit that leaves exactly `room` free descriptor numbers
 * (new descriptors take the lowest free numbers under the limit). */
static rlim_t
limit_with_room(int room)
{
    int fd, free_n = 0;

    for (fd = 0; fd < 20000 && free_n < room; fd++) {
        if (fcntl(fd, F_GETFD) == -1)
            free_n++;
    }
    return (rlim_t)fd;
}

static void
test_net_fd_exhaustion_backs_off_and_recovers(void **state)
{
    struct child ch = child_start();
    tp_runtime *rt = tpt_runtime(2);
    struct tnet_cfg cfg = {.echo = true};
    struct rlimit old, low;
    tp_listener_info info;
    tp_listen_opts o;
    tp_listener *l;
    char cmd[64], collect[64];
    int served, total = 0, clients = 30;
    uint64_t c0, c1;

    (void)state;
    tnet_opts(&o, &cfg);
    o.emfile_backoff_ms = 100;
    l = tnet_listen(rt, &cfg, &o);
    tpt_sleep_ms(50);
    /* Room for about 8 more descriptors in the server. */
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = limit_with_room(8);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    snprintf(cmd, sizeof(cmd), "c %d %u\n", clients, tp_listener_port(l));
    assert_int_equal(child_ask(&ch, cmd), clients);
    /* Echoes until 300 ms (scaled) pass without one: then no accepted
     * connection is still on its way to being served. */
    snprintf(collect, sizeof(collect), "e %u %u\n", 10000 * tpt_slow(),
             300 * tpt_slow());
    served = child_ask(&ch, collect);
    print_message("served before exhaustion: %d\n", served);
    assert_true(served > 0 && served < clients);
    total += served;
    /* Out of descriptors: the listener backs off and does not spin. */
    c0 = cpu_us();
    tpt_sleep_ms(1000);
    c1 = cpu_us();
    tp_listener_get_info(l, &info);
    print_message("cpu while exhausted: %llu ms over 1 s; back-offs %llu\n",
                  (unsigned long long)(c1 - c0) / 1000,
                  (unsigned long long)info.emfile);
    assert_true(info.emfile >= 2);
    assert_true(c1 - c0 < 250000u * tpt_slow());
    /* Nothing more is served while the descriptors stay taken ... */
    assert_int_equal(child_ask(&ch, "e 200\n"), 0);
    /* ... and once served clients go away, the listener resumes by itself
     * and the waiting ones are served, round by round. */
    for (int round = 0; round < 20 && total < clients; round++) {
        child_ask(&ch, "x\n");
        total += child_ask(&ch, collect);
    }
    assert_int_equal(total, clients);
    tp_listener_get_info(l, &info);
    assert_int_equal(info.accepted, (uint64_t)clients);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(ch.to);
    waitpid(ch.pid, NULL, 0);
    close(ch.from);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_max_conns_refused),
        cmocka_unit_test(test_net_fd_exhaustion_backs_off_and_recovers),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
