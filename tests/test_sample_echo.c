/*
 * tests/test_sample_echo.c - troupe-echo driven over loopback: round
 * trips, a payload larger than any socket buffer, many clients at once,
 * and a clean stop on SIGTERM -- run against both styles of its
 * connection actor (--style callback, --style direct).
 */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NCLIENTS 100

static struct sp_proc proc;
static const char *style = "callback";

static int
start(void **state)
{
    const char *const args[] = {"--style",      style, "--port", "0",
                                "--schedulers", "2",   NULL};
    static const char *const want[] = {"echo", NULL};

    (void)state;
    return sp_start(&proc, TROUPE_ECHO, args, want, 10000);
}

static int
stop(void **state)
{
    (void)state;
    sp_kill(&proc);
    return 0;
}

static void
round_trips(void **state)
{
    int fd = sp_connect(sp_port(&proc, "echo"));
    char buf[64];

    (void)state;
    assert_true(fd >= 0);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof(buf), "line %d\n", i);
        char back[64];

        assert_int_equal(sp_send(fd, buf, (size_t)n), 0);
        assert_int_equal(sp_read_n(fd, back, (size_t)n, 5000), 0);
        assert_memory_equal(back, buf, (size_t)n);
    }
    close(fd);
}

/* 4 MiB written by one thread while this one reads: more than the socket
 * buffers on both sides, so the server's flow control is in the loop. */
static void
large_payload(void **state)
{
    size_t len = 4u << 20;
    unsigned char *out = malloc(len), *in = malloc(len);
    int fd = sp_connect(sp_port(&proc, "echo"));
    pid_t writer;
    int status;

    (void)state;
    assert_non_null(out);
    assert_non_null(in);
    assert_true(fd >= 0);
    for (size_t i = 0; i < len; i++)
        out[i] = (unsigned char)(i * 7 + (i >> 13));
    writer = fork();
    assert_true(writer >= 0);
    if (writer == 0)
        _exit(sp_send(fd, out, len) == 0 ? 0 : 1);
    assert_int_equal(sp_read_n(fd, in, len, 20000), 0);
    assert_memory_equal(in, out, len);
    assert_int_equal(waitpid(writer, &status, 0), writer);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fd);
    free(out);
    free(in);
}

/* NCLIENTS connections open at once, each with its own line. */
static void
many_clients(void **state)
{
    int port = sp_port(&proc, "echo");
    int fds[NCLIENTS];

    (void)state;
    for (int i = 0; i < NCLIENTS; i++) {
        fds[i] = sp_connect(port);
        assert_true(fds[i] >= 0);
    }
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < NCLIENTS; i++) {
            char buf[32];
            int n = snprintf(buf, sizeof(buf), "c%d r%d\n", i, round);

            assert_int_equal(sp_send(fds[i], buf, (size_t)n), 0);
        }
        for (int i = 0; i < NCLIENTS; i++) {
            char buf[32], back[32];
            int n = snprintf(buf, sizeof(buf), "c%d r%d\n", i, round);

            assert_int_equal(sp_read_n(fds[i], back, (size_t)n, 5000), 0);
            assert_memory_equal(back, buf, (size_t)n);
        }
    }
    for (int i = 0; i < NCLIENTS; i++)
        close(fds[i]);
}

/* SIGTERM with a client connected: drained, the client sees the close,
 * exit status 0. */
static void
clean_stop(void **state)
{
    int fd = sp_connect(sp_port(&proc, "echo"));
    char back[3];
    int status;

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(sp_sends(fd, "hi\n"), 0);
    assert_int_equal(sp_read_n(fd, back, 3, 5000), 0);
    status = sp_stop(&proc, SIGTERM, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(sp_wait_closed(fd, 5000));
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(round_trips, start, stop),
        cmocka_unit_test_setup_teardown(large_payload, start, stop),
        cmocka_unit_test_setup_teardown(many_clients, start, stop),
        cmocka_unit_test_setup_teardown(clean_stop, start, stop),
    };

    int failed;

    signal(SIGPIPE, SIG_IGN);
    failed = cmocka_run_group_tests_name("callback", tests, NULL, NULL);
    style = "direct";
    failed += cmocka_run_group_tests_name("direct", tests, NULL, NULL);
    return failed;
}
