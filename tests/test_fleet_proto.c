/*
 * tests/test_fleet_proto.c - the fleet node's line protocol alone
 * (samples/fleet/fleet_proto.c): framing whole and in pieces, "\r\n",
 * the line limit (exactly at it, one over, over in pieces), a stopping
 * callback, no buffer held between whole lines; parsing of every verb,
 * names and numbers at their limits, and bad input.
 */
#include "samples/fleet/fleet_proto.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* cmocka 1.1.5 needs the headers above first. */
#include <cmocka.h>

struct seen {
    char lines[8][FLEET_LINE_MAX + 1];
    int n;
    int stop_after; /* 0: never */
};

static bool
collect(void *user, const char *line, size_t len)
{
    struct seen *s = user;

    if (s->n < 8) {
        memcpy(s->lines[s->n], line, len);
        s->lines[s->n][len] = '\0';
    }
    s->n++;
    return s->stop_after == 0 || s->n < s->stop_after;
}

static int
feed(struct fleet_frame *f, struct seen *s, const char *text)
{
    return fleet_frame_feed(f, text, strlen(text), collect, s);
}

static void
test_frame_whole_and_split(void **state)
{
    struct fleet_frame f = {0};
    struct seen s = {0};

    (void)state;
    assert_int_equal(feed(&f, &s, "PING\nHELLO a\r\n"), 0);
    assert_null(f.partial); /* nothing held between whole lines */
    assert_int_equal(s.n, 2);
    assert_string_equal(s.lines[0], "PING");
    assert_string_equal(s.lines[1], "HELLO a");
    assert_int_equal(feed(&f, &s, "SE"), 0);
    assert_non_null(f.partial);
    assert_int_equal(feed(&f, &s, "ND x 1\r"), 0);
    assert_int_equal(feed(&f, &s, "\nPI"), 0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.lines[2], "SEND x 1");
    assert_int_equal(feed(&f, &s, "NG\n"), 0);
    assert_string_equal(s.lines[3], "PING");
    assert_null(f.partial);
    assert_int_equal(feed(&f, &s, "\n"), 0); /* an empty line */
    assert_int_equal(s.n, 5);
    assert_string_equal(s.lines[4], "");
    fleet_frame_free(&f);
}

static void
test_frame_limit(void **state)
{
    char line[FLEET_LINE_MAX + 3];
    struct fleet_frame f = {0};
    struct seen s = {0};

    (void)state;
    memset(line, 'x', FLEET_LINE_MAX);
    strcpy(line + FLEET_LINE_MAX, "\n");
    assert_int_equal(feed(&f, &s, line), 0); /* exactly at the limit */
    assert_int_equal(s.n, 1);
    strcpy(line + FLEET_LINE_MAX, "\r\n");
    assert_int_equal(feed(&f, &s, line), 0); /* the \r does not count */
    memset(line, 'x', FLEET_LINE_MAX + 1);
    strcpy(line + FLEET_LINE_MAX + 1, "\n");
    assert_int_equal(feed(&f, &s, line), -E2BIG);
    assert_int_equal(s.n, 2);
    /* Over the limit in pieces, with no newline yet. */
    line[FLEET_LINE_MAX + 1] = '\0';
    assert_int_equal(feed(&f, &s, "abc"), 0);
    assert_int_equal(feed(&f, &s, line), -E2BIG);
    fleet_frame_free(&f);
    assert_null(f.partial);
}

static void
test_frame_stop(void **state)
{
    struct fleet_frame f = {0};
    struct seen s = {.stop_after = 1};

    (void)state;
    assert_int_equal(feed(&f, &s, "QUIT\nPING\n"), -ECANCELED);
    assert_int_equal(s.n, 1);
    fleet_frame_free(&f);
}

static void
parse(const char *line, struct fleet_cmd *c)
{
    fleet_parse(line, strlen(line), c);
}

static void
test_parse_verbs(void **state)
{
    struct fleet_cmd c;

    (void)state;
    parse("HELLO alice.1_x-Y", &c);
    assert_int_equal(c.verb, FLEET_HELLO);
    assert_string_equal(c.name, "alice.1_x-Y");
    parse("  SEND  bob 42 9999999999999999999 ", &c);
    assert_int_equal(c.verb, FLEET_SEND);
    assert_string_equal(c.name, "bob");
    assert_int_equal(c.id, 42);
    assert_true(c.t_ns == 9999999999999999999ull);
    parse("SEND bob 42", &c);
    assert_int_equal(c.verb, FLEET_SEND);
    assert_int_equal(c.t_ns, 0);
    parse("PING", &c);
    assert_int_equal(c.verb, FLEET_PING);
    parse("QUIT", &c);
    assert_int_equal(c.verb, FLEET_QUIT);
    parse("   ", &c);
    assert_int_equal(c.verb, FLEET_EMPTY);
}

static void
test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "HELLO",
        "HELLO a b",
        "HELLO a/b",
        ("HELLO "
         "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij1234"),
        "SEND",
        "SEND a",
        "SEND a x",
        "SEND a 1 y",
        "SEND a 1 2 3",
        "SEND a 12345678901234567890",
        "SEND a -1",
        "PING x",
        "ping",
        "\x01\xff",
        "HELLO\tx",
    };
    struct fleet_cmd c;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(bad[i], &c);
        if (c.verb != FLEET_BAD)
            fail_msg("'%s' parsed as verb %d", bad[i], (int)c.verb);
        assert_non_null(c.error);
    }
    /* 63 bytes is a name, 64 is not (above). */
    parse("HELLO abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
          "123",
          &c);
    assert_int_equal(c.verb, FLEET_HELLO);
    assert_int_equal(strlen(c.name), FLEET_NAME_MAX);
    assert_false(fleet_name_ok("", 0));
    assert_true(fleet_name_ok("a", 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_whole_and_split),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_frame_stop),
        cmocka_unit_test(test_parse_verbs),
        cmocka_unit_test(test_parse_bad),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
