/*
 * tests/test_sample_guide.c - runs the programs of docs/GUIDE.md
 * (docs/examples/guide_*.c) and checks that they still print what the
 * guide says they print; guide_console is read with troupectl, the way
 * the guide's last step does.
 */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char out[64 * 1024];

/* Runs docs/examples/guide_<name> to completion (exit 0, within 20 s). */
static void
run_guide(const char *name)
{
    char path[512];
    char *argv[] = {path, NULL};
    int status;

    snprintf(path, sizeof(path), "%s/guide_%s", GUIDE_DIR, name);
    status = sp_run(argv, out, sizeof(out), 20000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void
first_actor(void **state)
{
    (void)state;
    run_guide("first_actor");
    assert_string_equal(out, "apples: total 5050\napples: ends (normal)\n");
}

static void
request(void **state)
{
    (void)state;
    run_guide("request");
    assert_non_null(strstr(out, "main: put apples: success (ok)\n"));
    assert_non_null(strstr(out, "client: apples = 42\n"));
    assert_non_null(strstr(out, "main: get after kill: no such actor"));
}

static void
supervisor(void **state)
{
    (void)state;
    run_guide("supervisor");
    assert_non_null(strstr(out, "worker: start #1\nmain: total 10\n"
                                "worker: start #2\n"));
    assert_non_null(strstr(out, "crashed, now <"));
    assert_non_null(strstr(out, "; total 0\n"));
    assert_non_null(strstr(out, "main: supervisor restarts: 1\n"));
}

static void
conn(void **state)
{
    (void)state;
    run_guide("conn");
    assert_non_null(strstr(out, "listening on 127.0.0.1:"));
    assert_non_null(
        strstr(out, "client got:\nhi! say something\nHELLO\nACTORS\n"));
    assert_non_null(strstr(out, "server: connection closed after 2 lines\n"));
}

static void
direct(void **state)
{
    (void)state;
    run_guide("direct");
    assert_non_null(strstr(out, "callback echo: ping\n"));
    assert_non_null(strstr(out, "direct echo: ping\n"));
    assert_non_null(strstr(out, "after login: > hello\n"));
}

static void
flow(void **state)
{
    unsigned pauses;
    unsigned long long kib;
    const char *s;

    (void)state;
    run_guide("flow");
    assert_non_null(s = strstr(out, "server: sent 8 MiB, paused "));
    assert_int_equal(sscanf(s,
                            "server: sent 8 MiB, paused %u times, at most "
                            "%llu KiB queued",
                            &pauses, &kib),
                     2);
    assert_true(pauses >= 1);    /* the slow reader made it wait */
    assert_true(kib < 8 * 1024); /* and the queue never held it all */
    assert_non_null(strstr(out, "client: received 8 MiB\n"));
}

static void
ctl(const char *sock, const char *cmd, const char *arg)
{
    char *argv[] = {TROUPECTL,   "-s",        (char *)sock,
                    (char *)cmd, (char *)arg, NULL};
    int status = sp_run(argv, out, sizeof(out), 10000);

    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* `troupectl info slow` (left in out) shows a backlog at or near its
 * bound (over 100 of 1000) and drops by the bound. */
static bool
slow_backlog_at_bound(const char *sock)
{
    const char *d, *m;

    ctl(sock, "info", "slow");
    d = strstr(out, "\ndrops ");
    m = strstr(out, "\nmailbox ");
    assert_non_null(d);
    assert_non_null(m);
    return atoi(m + 8) > 100 && atoi(d + 7) > 0;
}

static void
console(void **state)
{
    static struct sp_proc p;
    const char *args[2] = {NULL, NULL};
    const char *const none[] = {NULL};
    char sock[64], bin[512];
    int status;

    (void)state;
    snprintf(sock, sizeof(sock), "/tmp/tp-guide-test-%d.sock", (int)getpid());
    snprintf(bin, sizeof(bin), "%s/guide_console", GUIDE_DIR);
    args[0] = sock;
    assert_int_equal(sp_start(&p, bin, args, none, 10000), 0);
    assert_non_null(sp_wait_output(&p, 0, "dashboard on http://", 10000));
    ctl(sock, "stats", NULL);
    assert_non_null(strstr(out, "actors"));
    assert_non_null(strstr(out, "mailbox_drops"));
    /* The slow actor's backlog reaches its bound (in a few seconds; as
     * long as the machine takes). */
    for (int i = 0; i < 100 * sp_slow() && !slow_backlog_at_bound(sock); i++)
        usleep(200 * 1000);
    assert_true(slow_backlog_at_bound(sock));
    assert_non_null(strstr(out, "behaviour         slow\n"));
    assert_non_null(strstr(out, "mailbox_bound     1000\n"));
    ctl(sock, "tree", NULL);
    status = sp_stop(&p, SIGTERM, 10000);
    unlink(sock);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_non_null(strstr(p.out, "stopped\n"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_actor), cmocka_unit_test(request),
        cmocka_unit_test(supervisor),  cmocka_unit_test(conn),
        cmocka_unit_test(flow),        cmocka_unit_test(direct),
        cmocka_unit_test(console),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
