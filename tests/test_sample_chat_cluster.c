/*
 * tests/test_sample_chat_cluster.c - a chat across three nodes: three
 * troupe-chat processes clustered over a nats-server (JetStream, for the
 * rooms' cluster-wide names) that the test starts on a free loopback
 * port. A room opened on one node is joined from the two others; a line
 * said on one node reaches the members on the others; /who lists members
 * of all three; two nodes opening one new room at the same moment end up
 * in the same room; the node that holds a room is SIGKILLed: the members
 * on the two others are told, the room is opened again on a survivor,
 * they are back in it and talk on; with the NATS server gone the nodes
 * still stop cleanly (SIGTERM: exit 0 within the drain deadline). And a
 * split (a node stopped past the down deadline, then resumed) ends with
 * one room: the one that lost the cluster-wide name moves its members to
 * the other.
 */
#define _GNU_SOURCE /* memmem */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T     5000 /* ms to wait for any one line */
#define NODES 3

static struct sp_nats nats;
static struct sp_proc node[NODES];
/* The member actor's style: the same tests run against both
 * (test_sample_chat* [--style callback|direct]: two CTest entries). */
static const char *style = "callback";

static int
start_node(int i)
{
    char name[16];
    const char *args[] = {
        "--style", style,         "--port", "0",         "--schedulers",
        "2",       "--http-port", "0",      "--cluster", nats.url,
        "--node",  name,          NULL};
    static const char *const want[] = {"node", "chat", "dashboard", NULL};

    snprintf(name, sizeof(name), "n%d", i + 1);
    return sp_start(&node[i], TROUPE_CHAT, args, want, 15000);
}

/* The node's troupe_cluster_peers_up gauge (GET /metrics), or -1. */
static int
peers_up(const struct sp_proc *p)
{
    static char buf[256 * 1024];
    const char *key = "\ntroupe_cluster_peers_up ", *at;
    int fd = sp_connect(sp_port(p, "dashboard")), up = -1;
    size_t len = 0;
    ssize_t n;

    if (fd < 0)
        return -1;
    sp_sends(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    while (len < sizeof(buf) - 1 &&
           (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    if ((at = strstr(buf, key)) != NULL)
        up = atoi(at + strlen(key));
    return up;
}

static int
setup(void **state)
{
    (void)state;
    if (!sp_nats_start(&nats, true)) {
        print_message("chat cluster: skipped: nats-server missing\n");
        return 0; /* the test skips, saying why */
    }
    for (int i = 0; i < NODES; i++)
        if (start_node(i) != 0)
            return -1;
    /* Every node sees the two others before a client comes. */
    for (int i = 0; i < NODES; i++) {
        long long end = sp_now_ms() + 15000LL * sp_slow();

        while (peers_up(&node[i]) != NODES - 1 && sp_now_ms() < end)
            usleep(50 * 1000);
        if (peers_up(&node[i]) != NODES - 1)
            return -1;
    }
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        sp_kill(&node[i]);
    sp_nats_stop(&nats);
    return 0;
}

static struct sp_conn *
client(int i, const char *nick)
{
    struct sp_conn *c =
        sp_dial(sp_port(&node[i], "chat"), "* welcome to troupe chat");
    char line[64];

    snprintf(line, sizeof(line), "/nick %s\n", nick);
    assert_int_equal(sp_sends(c->fd, line), 0);
    snprintf(line, sizeof(line), "* you are now %s\n", nick);
    assert_true(sp_expect(c, line, T));
    return c;
}

static void
say(struct sp_conn *c, const char *text)
{
    assert_int_equal(sp_sends(c->fd, text), 0);
}

static void
expect(struct sp_conn *c, const char *text)
{
    if (!sp_expect(c, text, T))
        fail_msg("no '%s' (have '%.*s')", text, (int)c->len, c->buf);
}

/* Waits for "* you joined #room (N here)" and returns N (-1: none). The
 * bytes stay in the buffer: nothing after it is lost. */
static int
join_count(struct sp_conn *c, const char *room)
{
    char want[64];
    long long end = sp_now_ms() + (long long)T * sp_slow();
    int len = snprintf(want, sizeof(want), "* you joined #%s (", room);

    for (;;) {
        const char *at = memmem(c->buf, c->len, want, (size_t)len);

        if (at != NULL &&
            memmem(at, c->len - (size_t)(at - c->buf), ")\n", 2) != NULL)
            return atoi(at + len);
        if (sp_now_ms() > end)
            return -1;
        (void)sp_expect(c, "\x01\x02", 50); /* never matches: reads more */
    }
}

static void
test_three_nodes(void **state)
{
    struct sp_conn *alice, *bob, *carol, *dave, *erin;
    int n1, n2;

    (void)state;
    if (nats.pid == 0)
        skip();
    alice = client(0, "alice");
    bob = client(1, "bob");
    carol = client(2, "carol");

    /* alice opens #ops on n1; bob (n2) and carol (n3) join it there. */
    say(alice, "/join ops\n");
    expect(alice, "* you joined #ops (1 here)\n");
    say(bob, "/join ops\n");
    expect(bob, "* you joined #ops (2 here)\n");
    expect(alice, "* bob joined #ops\n");
    say(carol, "/join ops\n");
    expect(carol, "* you joined #ops (3 here)\n");
    expect(alice, "* carol joined #ops\n");
    expect(bob, "* carol joined #ops\n");

    /* A line said on one node reaches the two others. */
    say(bob, "hello from n2\n");
    expect(alice, "<bob> hello from n2\n");
    expect(carol, "<bob> hello from n2\n");
    say(carol, "/who\n");
    expect(carol, "* in #ops: alice bob carol\n");

    /* Two nodes open one new room at once: one room, both in it. */
    dave = client(1, "dave");
    erin = client(2, "erin");
    say(dave, "/join race\n");
    say(erin, "/join race\n");
    n1 = join_count(dave, "race");
    n2 = join_count(erin, "race");
    assert_true((n1 == 1 && n2 == 2) || (n1 == 2 && n2 == 1));
    say(dave, "same room?\n");
    expect(erin, "<dave> same room?\n");

    /* n1, which holds #ops, dies: bob and carol are told, the room opens
     * again on n2 or n3, and they are back in it. */
    kill(node[0].pid, SIGKILL);
    expect(bob, "* #ops was on a node that went down; opening it again\n");
    expect(carol, "* #ops was on a node that went down; opening it again\n");
    expect(bob, "* back in #ops\n");
    expect(carol, "* back in #ops\n");
    say(bob, "still here\n");
    expect(carol, "<bob> still here\n");
    say(carol, "/who\n");
    expect(carol, "* in #ops: ");
    expect(carol, "\n");

    /* NATS goes away; the nodes still stop at once and cleanly (exit 0,
     * not held up by requests to a server that is gone). */
    kill(nats.pid, SIGKILL);
    for (int i = 1; i < NODES; i++) {
        int st = sp_stop(&node[i], SIGTERM, 4000);

        assert_true(st != -1 && WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    sp_hang_up(alice);
    sp_hang_up(bob);
    sp_hang_up(carol);
    sp_hang_up(dave);
    sp_hang_up(erin);
}

/* A split: n1, which holds #ops, is stopped (SIGSTOP) past the down
 * deadline; bob on n2 sees the room's node down and #ops is opened again
 * on n2. n1 resumes: its room has lost the cluster-wide name to n2's (the
 * name's bucket records n2's), so it tells alice and ends; alice joins
 * n2's room and the two talk again. */
static void
test_split_heals_into_one_room(void **state)
{
    struct sp_conn *alice, *bob;

    (void)state;
    if (nats.pid == 0)
        skip();
    alice = client(0, "alice");
    bob = client(1, "bob");
    say(alice, "/join ops\n");
    expect(alice, "* you joined #ops (1 here)\n");
    say(bob, "/join ops\n");
    expect(bob, "* you joined #ops (2 here)\n");

    kill(node[0].pid, SIGSTOP);
    expect(bob, "* #ops was on a node that went down; opening it again\n");
    expect(bob, "* back in #ops\n");
    kill(node[0].pid, SIGCONT);
    if (!sp_expect(alice, "* #ops was opened on another node too", 20000))
        fail_msg("alice not told (have '%.*s')", (int)alice->len, alice->buf);
    expect(alice, "* back in #ops\n");
    say(bob, "one room again\n");
    expect(alice, "<bob> one room again\n");
    say(alice, "/who\n");
    expect(alice, "* in #ops: bob alice\n");
    sp_hang_up(alice);
    sp_hang_up(bob);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_heals_into_one_room, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--style") == 0)
        style = argv[2];
    return cmocka_run_group_tests_name(style, tests, NULL, NULL);
}
