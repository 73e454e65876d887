/*
 * tests/test_sample_http.c - troupe-http driven over loopback: keep-alive
 * (many requests on one connection), the routes and their bodies, 404 and
 * 405, a malformed request (400, then the connection closes), limits
 * (414), HTTP/1.0, pipelining, and a clean stop.
 */
#include "test_sample_util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define T 5000

static struct sp_proc proc;

struct resp {
    int status;
    char headers[2048];
    char body[4096];
    size_t body_len;
};

static int
start(void **state)
{
    static const char *const args[] = {"--port", "0", "--schedulers", "2",
                                       NULL};
    static const char *const want[] = {"http", NULL};

    (void)state;
    return sp_start(&proc, TROUPE_HTTP, args, want, 10000);
}

static int
stop(void **state)
{
    (void)state;
    sp_kill(&proc);
    return 0;
}

/* Reads one response: the head byte by byte up to the blank line, then
 * Content-Length bytes of body (none for HEAD). Returns 0 or -1. */
static int
read_resp(int fd, struct resp *r, bool head)
{
    size_t n = 0;
    const char *cl;

    memset(r, 0, sizeof(*r));
    while (n < sizeof(r->headers) - 1) {
        if (sp_read_n(fd, r->headers + n, 1, T) != 0)
            return -1;
        n++;
        if (n >= 4 && memcmp(r->headers + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    if (sscanf(r->headers, "HTTP/1.1 %d ", &r->status) != 1 ||
        (cl = strstr(r->headers, "Content-Length: ")) == NULL)
        return -1;
    r->body_len = strtoul(cl + 16, NULL, 10);
    if (head)
        return 0;
    if (r->body_len >= sizeof(r->body))
        return -1;
    return sp_read_n(fd, r->body, r->body_len, T);
}

static int
connect_http(void)
{
    int fd = sp_connect(sp_port(&proc, "http"));

    assert_true(fd >= 0);
    return fd;
}

static void
get(int fd, const char *path, struct resp *r)
{
    char req[256];

    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    assert_int_equal(sp_sends(fd, req), 0);
    assert_int_equal(read_resp(fd, r, false), 0);
}

static void
keep_alive_routes(void **state)
{
    static struct resp r;
    int fd = connect_http();

    (void)state;
    for (int i = 0; i < 20; i++) { /* all on one connection */
        get(fd, "/", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.body, "Hello from Troupe!\n");
        assert_null(strstr(r.headers, "Connection: close"));
    }
    get(fd, "/json", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    assert_string_equal(r.body, "{\"message\":\"Hello, World!\"}");
    get(fd, "/json?x=1", &r);
    assert_int_equal(r.status, 200);
    get(fd, "/stats", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"connections\":"));
    assert_non_null(strstr(r.body, "\"schedulers\":2"));
    get(fd, "/nope", &r);
    assert_int_equal(r.status, 404);
    get(fd, "/", &r); /* a 404 keeps the connection */
    assert_int_equal(r.status, 200);
    assert_int_equal(sp_sends(fd, "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 27); /* the length, not the body */
    assert_int_equal(sp_sends(fd, "POST / HTTP/1.1\r\nHost: t\r\n"
                                  "Content-Length: 3\r\n\r\nabc"),
                     0);
    assert_int_equal(read_resp(fd, &r, false), 0);
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, HEAD"));
    get(fd, "/", &r); /* still open */
    assert_int_equal(r.status, 200);
    close(fd);
}

static void
malformed(void **state)
{
    static struct resp r;
    int fd = connect_http();

    (void)state;
    get(fd, "/", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(sp_sends(fd, "GARBAGE\x01 / HTTP/9\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, false), 0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.headers, "Connection: close"));
    assert_true(sp_wait_closed(fd, T));
    close(fd);
}

static void
limits(void **state)
{
    static struct resp r;
    static char req[4096];
    int fd = connect_http();

    (void)state;
    memset(req, 'a', sizeof(req));
    memcpy(req, "GET /", 5);
    assert_int_equal(sp_send(fd, req, 2048), 0); /* URL > 1024 */
    assert_int_equal(read_resp(fd, &r, false), 0);
    assert_int_equal(r.status, 414);
    assert_true(sp_wait_closed(fd, T));
    close(fd);
}

static void
http10_close(void **state)
{
    static struct resp r;
    int fd = connect_http();

    (void)state;
    assert_int_equal(sp_sends(fd, "GET /json HTTP/1.0\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Connection: close"));
    assert_true(sp_wait_closed(fd, T));
    close(fd);
    fd = connect_http();
    assert_int_equal(
        sp_sends(fd, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), 0);
    assert_int_equal(read_resp(fd, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_true(sp_wait_closed(fd, T));
    close(fd);
}

/* Ten requests in one write, in both one and many segments: ten responses
 * in order. The last asks for the close. */
static void
pipelining(void **state)
{
    static struct resp r;
    static char reqs[4096];
    const char *paths[] = {"/", "/json", "/nope"};
    size_t len = 0;
    int fd = connect_http();

    (void)state;
    for (int i = 0; i < 10; i++)
        len += (size_t)snprintf(reqs + len, sizeof(reqs) - len,
                                "GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n",
                                paths[i % 3],
                                i == 9 ? "Connection: close\r\n" : "");
    assert_int_equal(sp_send(fd, reqs, len), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(read_resp(fd, &r, false), 0);
        assert_int_equal(r.status, i % 3 == 2 ? 404 : 200);
        if (i % 3 == 1)
            assert_string_equal(r.body, "{\"message\":\"Hello, World!\"}");
    }
    assert_true(sp_wait_closed(fd, T));
    close(fd);
    /* The same bytes one at a time: the parser keeps its state. */
    fd = connect_http();
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sp_send(fd, reqs + i, 1), 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(read_resp(fd, &r, false), 0);
        assert_int_equal(r.status, i % 3 == 2 ? 404 : 200);
    }
    assert_true(sp_wait_closed(fd, T));
    close(fd);
}

static void
clean_stop(void **state)
{
    static struct resp r;
    int fd = connect_http();
    int status;

    (void)state;
    get(fd, "/", &r);
    status = sp_stop(&proc, SIGTERM, 10000);
    assert_true(status != -1);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(sp_wait_closed(fd, T));
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(keep_alive_routes, start, stop),
        cmocka_unit_test_setup_teardown(malformed, start, stop),
        cmocka_unit_test_setup_teardown(limits, start, stop),
        cmocka_unit_test_setup_teardown(http10_close, start, stop),
        cmocka_unit_test_setup_teardown(pipelining, start, stop),
        cmocka_unit_test_setup_teardown(clean_stop, start, stop),
    };

    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
