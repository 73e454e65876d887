/*
 * tests/test_sample_chat.c - troupe-chat driven over loopback by three
 * clients: nicknames (unique, released when their owner dies), a room
 * broadcast seen by the others, a client process killed (the others see
 * it leave), a member actor crash, a room crash (restarted, its members
 * told and back in), private messages, the line limit and the drain on
 * SIGINT.
 */
#define _GNU_SOURCE /* memmem */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T 5000 /* ms to wait for any one line */

static struct sp_proc proc;
/* The member actor's style: the same tests run against both
 * (test_sample_chat* [--style callback|direct]: two CTest entries). */
static const char *style = "callback";
static struct sp_conn *cl[2]; /* alice and bob */

static int
start(void **state)
{
    const char *const args[] = {"--style",      style, "--port", "0",
                                "--schedulers", "2",   NULL};
    static const char *const want[] = {"chat", "chat-ws", NULL};

    (void)state;
    for (int i = 0; i < 2; i++)
        if (cl[i] == NULL && (cl[i] = calloc(1, sizeof(*cl[i]))) == NULL)
            return -1;
    return sp_start(&proc, TROUPE_CHAT, args, want, 10000);
}

static int
stop(void **state)
{
    (void)state;
    sp_kill(&proc);
    for (int i = 0; i < 2; i++) {
        if (cl[i]->fd > 0)
            close(cl[i]->fd);
        memset(cl[i], 0, sizeof(*cl[i]));
    }
    return 0;
}

/* Connects c, waits for the welcome, takes `nick`, and joins `room`
 * (expecting to be the n-th there). */
static void
enter(struct sp_conn *c, const char *nick, const char *room, int n)
{
    char line[128];

    c->fd = sp_connect(sp_port(&proc, "chat"));
    assert_true(c->fd >= 0);
    assert_true(sp_expect(c, "* welcome to troupe chat", T));
    assert_true(sp_expect(c, "* you joined #lobby", T));
    snprintf(line, sizeof(line), "/nick %s\n", nick);
    assert_int_equal(sp_sends(c->fd, line), 0);
    snprintf(line, sizeof(line), "* you are now %s\n", nick);
    assert_true(sp_expect(c, line, T));
    snprintf(line, sizeof(line), "/join %s\n", room);
    assert_int_equal(sp_sends(c->fd, line), 0);
    snprintf(line, sizeof(line), "* you joined #%s (%d here)\n", room, n);
    assert_true(sp_expect(c, line, T));
}

/* carol's side, in her own process: no cmocka there (a failed assertion
 * would go on running the tests in the child); true when she is in. */
static bool
carol_enters(struct sp_conn *c)
{
    c->fd = sp_connect(sp_port(&proc, "chat"));
    return c->fd >= 0 && sp_expect(c, "* you joined #lobby", T) &&
           sp_sends(c->fd, "/nick carol\n/join room1\n") == 0 &&
           sp_expect(c, "* you are now carol\n", T) &&
           sp_expect(c, "* you joined #room1 (3 here)\n", T);
}

/* The third client, in a process of its own that the test kills: "carol"
 * in #room1. Returns its pid once she is in. */
static pid_t
carol(void)
{
    int ready[2];
    pid_t pid;
    char b;

    assert_int_equal(pipe(ready), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        static struct sp_conn c;

        close(ready[0]);
        if (!carol_enters(&c))
            _exit(1);
        (void)!write(ready[1], "r", 1);
        for (;;)
            pause(); /* until SIGKILL */
    }
    sp_track(pid, true);
    close(ready[1]);
    assert_int_equal(sp_read_n(ready[0], &b, 1, T), 0);
    close(ready[0]);
    return pid;
}

static void
both_see(const char *text)
{
    assert_true(sp_expect(cl[0], text, T));
    assert_true(sp_expect(cl[1], text, T));
}

static void
three_clients(void **state)
{
    struct sp_conn *a = cl[0], *b = cl[1];
    pid_t c;
    int status;

    (void)state;
    enter(a, "alice", "room1", 1);
    enter(b, "bob", "room1", 2);
    assert_true(sp_expect(a, "* bob joined #room1\n", T));
    c = carol();
    both_see("* carol joined #room1\n");

    /* A broadcast reaches the others, not its sender. */
    assert_int_equal(sp_sends(a->fd, "hello room\n"), 0);
    assert_true(sp_expect(b, "<alice> hello room\n", T));
    assert_int_equal(sp_sends(b->fd, "hi alice\n"), 0);
    assert_true(sp_expect(a, "<bob> hi alice\n", T));
    assert_null(memmem(a->buf, a->len, "<alice>", 7));

    /* Nicknames are unique; /who lists the room. */
    assert_int_equal(sp_sends(b->fd, "/nick carol\n"), 0);
    assert_true(sp_expect(b, "* nickname carol is taken\n", T));
    assert_int_equal(sp_sends(a->fd, "/who\n"), 0);
    assert_true(sp_expect(a, "* in #room1: alice bob carol\n", T));

    /* Carol's process dies: the room's monitor tells the others, and her
     * nickname is free again. */
    kill(c, SIGKILL);
    assert_int_equal(waitpid(c, &status, 0), c);
    sp_track(c, false);
    both_see("* carol left #room1 (disconnected)\n");
    assert_int_equal(sp_sends(a->fd, "/who\n"), 0);
    assert_true(sp_expect(a, "* in #room1: alice bob\n", T));
    assert_int_equal(sp_sends(b->fd, "/nick carol\n"), 0);
    assert_true(sp_expect(b, "* you are now carol\n", T));
    assert_true(sp_expect(a, "* bob is now carol\n", T));
}

static void
private_and_limits(void **state)
{
    struct sp_conn *a = cl[0], *b = cl[1];
    char big[700];

    (void)state;
    enter(a, "alice", "r", 1);
    enter(b, "bob", "other", 1);
    assert_int_equal(sp_sends(a->fd, "/msg bob psst\n"), 0);
    assert_true(sp_expect(b, "*alice* psst\n", T));
    assert_int_equal(sp_sends(a->fd, "/msg nobody x\n"), 0);
    assert_true(sp_expect(a, "* no one is called nobody\n", T));
    assert_int_equal(sp_sends(a->fd, "/bogus\n"), 0);
    assert_true(sp_expect(a, "* unknown command", T));
    assert_int_equal(sp_sends(a->fd, "/nick bad!name\n"), 0);
    assert_true(sp_expect(a, "* a name is 1-24", T));
    /* A line over 512 bytes is refused once; the next line works. */
    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    assert_int_equal(sp_send(a->fd, big, sizeof(big)), 0);
    assert_true(sp_expect(a, "* line too long (max 512 bytes)\n", T));
    assert_int_equal(sp_sends(a->fd, "/rooms\n"), 0);
    assert_true(sp_expect(a, "* rooms:", T));
    /* Control characters do not reach the other clients. */
    assert_int_equal(sp_sends(a->fd, "/join other\n"), 0);
    assert_true(sp_expect(b, "* alice joined #other\n", T));
    assert_int_equal(sp_sends(a->fd, "evil \x1b[2J\n"), 0);
    assert_true(sp_expect(b, "<alice> evil ?[2J\n", T));
}

/* /crash: alice's actor fails; bob sees her leave with the reason and the
 * server keeps serving him. */
static void
member_crash(void **state)
{
    struct sp_conn *a = cl[0], *b = cl[1];

    (void)state;
    enter(a, "alice", "room1", 1);
    enter(b, "bob", "room1", 2);
    assert_int_equal(sp_sends(a->fd, "/crash\n"), 0);
    assert_true(sp_expect(b,
                          "* alice left #room1 (crashed: alice asked for "
                          "it)\n",
                          T));
    assert_true(sp_wait_closed(a->fd, T));
    assert_int_equal(sp_sends(b->fd, "/who\n"), 0);
    assert_true(sp_expect(b, "* in #room1: bob\n", T));
}

/* /crashroom: the room's actor fails; its supervisor restarts it, its
 * members are told, come back, and broadcasts work again. */
static void
room_crash(void **state)
{
    struct sp_conn *a = cl[0], *b = cl[1];

    (void)state;
    enter(a, "alice", "room1", 1);
    enter(b, "bob", "room1", 2);
    assert_int_equal(sp_sends(a->fd, "/crashroom\n"), 0);
    both_see("* #room1 crashed (room #room1 was asked to crash); its "
             "supervisor restarts it\n");
    both_see("* back in #room1\n");
    assert_int_equal(sp_sends(b->fd, "/who\n"), 0);
    assert_true(sp_expect(b, "* in #room1:", T));
    assert_int_equal(sp_sends(a->fd, "after the crash\n"), 0);
    assert_true(sp_expect(b, "<alice> after the crash\n", T));
}

/* One masked WebSocket text frame (a client's frames are masked). */
static int
ws_send(int fd, const char *text)
{
    unsigned char f[2 + 4 + 125];
    size_t n = strlen(text);
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};

    assert_true(n <= 125);
    f[0] = 0x81; /* FIN, text */
    f[1] = (unsigned char)(0x80u | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (unsigned char)text[i] ^ mask[i % 4];
    return sp_send(fd, f, 6 + n);
}

/* A browser's member (the WebSocket listener) and a TCP one in the same
 * room: lines both ways, /who. Server frames are unmasked text, so the
 * lines show up as they are in the byte stream. */
static void
websocket_client(void **state)
{
    struct sp_conn *w = cl[0], *b = cl[1];

    (void)state;
    enter(b, "bob", "lobby", 1);
    w->fd = sp_connect(sp_port(&proc, "chat-ws"));
    assert_true(w->fd >= 0);
    assert_int_equal(sp_sends(w->fd, "GET / HTTP/1.1\r\n"
                                     "Host: 127.0.0.1\r\n"
                                     "Upgrade: websocket\r\n"
                                     "Connection: Upgrade\r\n"
                                     "Sec-WebSocket-Key: "
                                     "dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                     "Sec-WebSocket-Version: 13\r\n\r\n"),
                     0);
    assert_true(sp_expect(w, "101 Switching Protocols", T));
    assert_true(sp_expect(w, "* welcome to troupe chat", T));
    assert_true(sp_expect(w, "* you joined #lobby (2 here)\n", T));
    assert_int_equal(ws_send(w->fd, "/nick wendy"), 0);
    assert_true(sp_expect(w, "* you are now wendy\n", T));
    assert_true(sp_expect(b, " is now wendy\n", T)); /* was guestN */
    assert_int_equal(ws_send(w->fd, "hello from a browser"), 0);
    assert_true(sp_expect(b, "<wendy> hello from a browser\n", T));
    assert_int_equal(sp_sends(b->fd, "hi wendy\n"), 0);
    assert_true(sp_expect(w, "<bob> hi wendy\n", T));
    assert_int_equal(ws_send(w->fd, "/who"), 0);
    assert_true(sp_expect(w, "* in #lobby: bob wendy\n", T));
}

/* SIGINT: clients are told, connections close, exit status 0. */
static void
drain(void **state)
{
    struct sp_conn *a = cl[0];
    int status;

    (void)state;
    enter(a, "alice", "room1", 1);
    status = sp_stop(&proc, SIGINT, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(sp_expect(a, "* the server is shutting down, bye\n", T));
    assert_true(sp_wait_closed(a->fd, T));
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(three_clients, start, stop),
        cmocka_unit_test_setup_teardown(private_and_limits, start, stop),
        cmocka_unit_test_setup_teardown(member_crash, start, stop),
        cmocka_unit_test_setup_teardown(room_crash, start, stop),
        cmocka_unit_test_setup_teardown(websocket_client, start, stop),
        cmocka_unit_test_setup_teardown(drain, start, stop),
    };

    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--style") == 0)
        style = argv[2];
    return cmocka_run_group_tests_name(style, tests, NULL, NULL);
}
