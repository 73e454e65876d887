/*
 * tests/test_sample_chat_attack.c - troupe-chat under the two attacks an
 * outside tester ran (issue 14, "Console and samples under attack"):
 *
 *  - flood: one client sends as fast as it can into a room of 200
 *    members, a few of which never read. The room's and each member's
 *    queues are bounded: the sender is told to slow down, the slow
 *    members are told how many lines they lost once they read again
 *    (their connections stay open), and the server's RSS stays bounded
 *    during the flood and comes back after it. (Before: the room's
 *    mailbox grew to 127,000 messages, RSS 3.7 MB -> 186 MB in 5 s.)
 *  - crash storm: 50 clients in 5 rooms send /crashroom over and over.
 *    Every room runs under a supervisor of its own that gives up alone:
 *    a bystander in another room, the attackers' connections and new
 *    clients are untouched. (Before: the rooms' supervisor, then the
 *    chat's, gave up and every user was dropped.)
 */
#define _GNU_SOURCE /* memmem */
#include "test_sample_util.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define T 5000 /* ms to wait for any one line */

static struct sp_proc proc;
/* The member actor's style: the same tests run against both
 * (test_sample_chat* [--style callback|direct]: two CTest entries). */
static const char *style = "callback";

static int
start(void **state)
{
    const char *const args[] = {"--style",      style, "--port", "0",
                                "--schedulers", "2",   NULL};
    static const char *const want[] = {"chat", NULL};

    (void)state;
    return sp_start(&proc, TROUPE_CHAT, args, want, 10000);
}

static int
stop(void **state)
{
    (void)state;
    sp_kill(&proc);
    return 0;
}

/* The server's resident set, KiB. */
static long
rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)proc.pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Connects a client and puts it in `room`; returns its descriptor. A
 * client with a small receive buffer (rcvbuf) holds little in its kernel,
 * so the server sees at once that it does not read. */
static int
member_buf(const char *room, int rcvbuf)
{
    static struct sp_conn c;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char line[96];

    c.len = 0;
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c.fd >= 0);
    if (rcvbuf > 0)
        setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sa.sin_port = htons((uint16_t)sp_port(&proc, "chat"));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_true(sp_expect(&c, "* you joined #lobby", T));
    snprintf(line, sizeof(line), "/join %s\n", room);
    assert_int_equal(sp_sends(c.fd, line), 0);
    snprintf(line, sizeof(line), "* you joined #%s", room);
    if (!sp_expect(&c, line, T))
        fail_msg("no \"%s\"; got \"%.*s\"", line, (int)c.len, c.buf);
    return c.fd;
}

static int
member(const char *room)
{
    return member_buf(room, 0);
}

/* Reads and discards whatever fd has (non-blocking). False once closed. */
static bool
discard(int fd)
{
    char buf[16384];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n > 0)
            continue;
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
}

/* Writes as much of a line stream as fd takes now; returns bytes sent. */
static size_t
pour(int fd)
{
    static char chunk[64 * 1024];
    static size_t line_len;
    ssize_t n;

    if (line_len == 0) { /* 100-byte lines */
        line_len = 100;
        for (size_t i = 0; i + line_len <= sizeof(chunk); i += line_len) {
            memset(chunk + i, 'f', line_len - 1);
            chunk[i + line_len - 1] = '\n';
        }
    }
    n = send(fd, chunk, sizeof(chunk) - sizeof(chunk) % line_len,
             MSG_DONTWAIT | MSG_NOSIGNAL);
    return n > 0 ? (size_t)n : 0;
}

#define MEMBERS 200
#define SLOW    5 /* members that never read during the flood */

static struct sp_conn sender, watch, slow[SLOW];

#define SEEN_BUSY 1 /* "#big is busy: slow down" */
#define SEEN_LOST 2 /* "N of your lines were dropped" */

/* Reads what the sender has (non-blocking) and looks for the notices;
 * keeps the last bytes so that a notice split across reads is found. */
static int
scan_sender(void)
{
    int seen = 0;

    for (;;) {
        ssize_t n = recv(sender.fd, sender.buf + sender.len,
                         sizeof(sender.buf) - sender.len, MSG_DONTWAIT);

        if (n <= 0)
            return seen;
        sender.len += (size_t)n;
        if (memmem(sender.buf, sender.len, "is busy: slow down", 18) != NULL)
            seen |= SEEN_BUSY;
        if (memmem(sender.buf, sender.len, "of your lines were dropped (#big",
                   31) != NULL)
            seen |= SEEN_LOST;
        if (sender.len > 128) { /* keep a tail */
            memmove(sender.buf, sender.buf + sender.len - 128, 128);
            sender.len = 128;
        }
    }
}

static void
flood(void **state)
{
    static int fds[MEMBERS];
    long rss0, peak = 0, rss1;
    long long t_end, t_rss = 0;
    size_t sent = 0;
    int seen = 0; /* SEEN_BUSY | SEEN_LOST: what the sender was told */

    (void)state;
    for (int i = 0; i < MEMBERS; i++)
        fds[i] = member_buf("big", i >= 1 && i <= SLOW ? 4096 : 0);
    sender.fd = fds[0];
    sender.len = 0;
    for (int i = 0; i < SLOW; i++) {
        slow[i].fd = fds[1 + i];
        slow[i].len = 0;
    }
    for (int i = 0; i < MEMBERS; i++)
        discard(fds[i]);
    rss0 = rss_kb();
    assert_true(rss0 > 0);

    /* The flood: 4 s of lines as fast as the server takes them, the
     * readers reading, the slow members not. */
    t_end = sp_now_ms() + 4000;
    while (sp_now_ms() < t_end) {
        sent += pour(sender.fd);
        for (int i = 1 + SLOW; i < MEMBERS; i++)
            discard(fds[i]);
        seen |= scan_sender();
        if (sp_now_ms() >= t_rss) {
            long r = rss_kb();

            peak = r > peak ? r : peak;
            t_rss = sp_now_ms() + 100;
        }
        poll(NULL, 0, 1);
    }
    /* Let the server work off what it queued (it still reads what the
     * kernel buffered for the sender). */
    t_end = sp_now_ms() + 2000;
    while (sp_now_ms() < t_end) {
        long r = rss_kb();

        peak = r > peak ? r : peak;
        for (int i = 1 + SLOW; i < MEMBERS; i++)
            discard(fds[i]);
        seen |= scan_sender();
        poll(NULL, 0, 5);
    }
    print_message("flood: %zu bytes sent by one client into a room of %d; "
                  "server RSS %ld KiB before, peak %ld KiB during\n",
                  sent, MEMBERS, rss0, peak);
    /* The sender was told to slow down, and how much it lost: that comes
     * with its first line the room takes again (the room may still be
     * busy with the flood's tail: try a line a second). */
    assert_true(seen & SEEN_BUSY);
    t_end = sp_now_ms() + 20000LL * sp_slow();
    while (!(seen & SEEN_LOST) && sp_now_ms() < t_end) {
        assert_int_equal(sp_sends(sender.fd, "one more\n"), 0);
        for (int k = 0; k < 100 && !(seen & SEEN_LOST); k++) {
            seen |= scan_sender();
            poll(NULL, 0, 10);
        }
    }
    assert_true(seen & SEEN_LOST);
    /* However fast the room was, the slow members now get more than their
     * kernel buffers and write queues hold: 3,000 more lines, in batches
     * that a reading member sees arrive. */
    watch.fd = fds[1 + SLOW];
    watch.len = 0;
    t_end = sp_now_ms() + 60000LL * sp_slow();
    for (int b = 0, marks = 0; marks < 30; b++) {
        char line[96], mark[64];

        assert_true(sp_now_ms() < t_end);
        for (int i = 0; i < 100; i++) {
            snprintf(line, sizeof(line), "mark %d.%d %060d\n", b, i, 0);
            assert_int_equal(sp_sends(sender.fd, line), 0);
        }
        /* A batch the busy room refused (it may still be working off the
         * flood) is simply not seen: send another. */
        snprintf(mark, sizeof(mark), "mark %d.99 ", b);
        marks += sp_expect(&watch, mark, 1000);
        for (int i = 2 + SLOW; i < MEMBERS; i++)
            discard(fds[i]);
        discard(sender.fd);
    }
    /* The slow members are still connected: reading now, they learn how
     * many lines they lost. */
    for (int i = 0; i < SLOW; i++) {
        size_t k;

        if (sp_expect(&slow[i],
                      "lines were dropped: you are reading too slowly", 4 * T))
            continue;
        k = slow[i].len < 300 ? 0 : slow[i].len - 300;
        fail_msg("slow member %d: no notice; last bytes \"%.*s\"", i,
                 (int)(slow[i].len - k), slow[i].buf + k);
    }
    for (int i = 1 + SLOW; i < MEMBERS; i++)
        assert_true(discard(fds[i])); /* not closed */
    /* The memory comes back: within 16 MiB of where it was (the message
     * allocator keeps up to 1 MiB per size class cached), at most 10 s
     * after the flood. */
    t_end = sp_now_ms() + 10000LL * sp_slow();
    while ((rss1 = rss_kb()) - rss0 >= 16 * 1024 && sp_now_ms() < t_end)
        poll(NULL, 0, 100);
    print_message("flood: server RSS %ld KiB after (growth %ld KiB at the "
                  "peak, %ld KiB after)\n",
                  rss1, peak - rss0, rss1 - rss0);
    /* Bounded queues: a few MB at most, whatever the flood's rate. */
    assert_true(peak - rss0 < 48 * 1024);
    assert_true(rss1 - rss0 < 16 * 1024);
    for (int i = 0; i < MEMBERS; i++)
        close(fds[i]);
}

#define ATTACKERS 50
#define ROOMS     5
#define ROUNDS    30

static void
crash_storm(void **state)
{
    static int fds[ATTACKERS];
    static struct sp_conn bob, late;
    char room[32];

    (void)state;
    bob.fd = member("quiet");
    bob.len = 0;
    for (int i = 0; i < ATTACKERS; i++) {
        snprintf(room, sizeof(room), "storm%d", i % ROOMS);
        fds[i] = member(room);
    }
    /* Everyone crashes their room, over and over, faster than the room
     * supervisors' intensity allows. */
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < ATTACKERS; i++) {
            assert_int_equal(sp_sends(fds[i], "/crashroom\n"), 0);
            assert_true(discard(fds[i]));
        }
        poll(NULL, 0, 50);
    }
    /* The bystander in another room was never touched. */
    assert_true(discard(bob.fd));
    bob.len = 0;
    assert_int_equal(sp_sends(bob.fd, "/who\n"), 0);
    assert_true(sp_expect(&bob, "* in #quiet: guest", T));
    /* The attackers are still connected and served. */
    for (int i = 0; i < ATTACKERS; i++) {
        assert_true(discard(fds[i]));
        assert_int_equal(sp_sends(fds[i], "/rooms\n"), 0);
    }
    /* A newcomer gets in, and a storm room can be opened again. */
    late.fd = member("storm0");
    late.len = 0;
    assert_int_equal(sp_sends(late.fd, "/who\n"), 0);
    assert_true(sp_expect(&late, "* in #storm0:", 4 * T));
    for (int i = 0; i < ATTACKERS; i++)
        close(fds[i]);
    close(bob.fd);
    close(late.fd);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crash_storm, start, stop),
        cmocka_unit_test_setup_teardown(flood, start, stop),
    };

    if (argc == 3 && strcmp(argv[1], "--style") == 0)
        style = argv[2];
    return cmocka_run_group_tests_name(style, tests, NULL, NULL);
}
