/*
 * tests/test_console_unit.c - the console's pure parts: bounded buffers,
 * the text/JSON emitter, line assembly and splitting, the token compare,
 * Prometheus escaping and number parsing.
 */
#include "console/console_int.h"
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void
test_console_cbuf_bound(void **st)
{
    struct tp__cbuf b;

    tp__cbuf_init(&b, 10);
    assert_int_equal(tp__cbuf_puts(&b, "12345"), 0);
    assert_int_equal(tp__cbuf_puts(&b, "123456"), -ENOBUFS);
    assert_true(b.overflow);
    assert_int_equal(b.len, 5);
    assert_int_equal(tp__cbuf_printf(&b, "%d", 12345), 0);
    assert_int_equal(b.len, 10);
    tp__cbuf_consume(&b, 3);
    assert_memory_equal(b.p, "4512345", 7);
    tp__cbuf_free(&b);
}

static void
test_console_cbuf_escapes(void **st)
{
    struct tp__cbuf b;

    tp__cbuf_init(&b, 1024);
    tp__cbuf_json_str(&b, "a\"b\\c\nd\x01\xff\xc3\xa9", 11);
    tp__cbuf_put(&b, "", 1);
    assert_string_equal(b.p, "\"a\\\"b\\\\c\\nd\\u0001\\ufffd\xc3\xa9\"");
    tp__cbuf_reset(&b);
    tp__cbuf_text_str(&b, "ok\nerror:\x1b[2J", 13);
    tp__cbuf_put(&b, "", 1);
    assert_string_equal(b.p, "ok\\x0aerror:\\x1b[2J");
    tp__cbuf_free(&b);
}

static void
emit_sample(struct tp__em *e)
{
    tp__em_obj_begin(e, NULL);
    tp__em_u64(e, "actors", 42);
    tp__em_str(e, "name", "x\"y");
    tp__em_arr_begin(e, "rows");
    for (int i = 0; i < 2; i++) {
        tp__em_obj_begin(e, NULL);
        tp__em_u64(e, "id", (uint64_t)i * 100);
        tp__em_str(e, "behaviour", i ? "b" : "long_name");
        tp__em_obj_end(e);
    }
    tp__em_arr_end(e);
    tp__em_arr_begin(e, "links");
    tp__em_pid(e, NULL, ((tp_pid)1 << 32) | 5);
    tp__em_pid(e, NULL, ((tp_pid)2 << 32) | 7);
    tp__em_arr_end(e);
    tp__em_obj_end(e);
}

static void
test_console_emit_json(void **st)
{
    struct tp__cbuf b;
    struct tp__em e;

    tp__cbuf_init(&b, 4096);
    tp__em_init(&e, &b, true);
    emit_sample(&e);
    tp__cbuf_put(&b, "", 1);
    assert_string_equal(b.p,
                        "{\"actors\":42,\"name\":\"x\\\"y\",\"rows\":[{\"id\":"
                        "0,\"behaviour\":\"long_name\"},{\"id\":100,"
                        "\"behaviour\":\"b\"}],\"links\":[\"<5.1>\","
                        "\"<7.2>\"]}");
    tp__cbuf_free(&b);
}

static void
test_console_emit_text_aligned(void **st)
{
    struct tp__cbuf b;
    struct tp__em e;

    tp__cbuf_init(&b, 4096);
    tp__em_init(&e, &b, false);
    emit_sample(&e);
    tp__cbuf_put(&b, "", 1);
    assert_string_equal(b.p, "actors            42\n"
                             "name              x\"y\n"
                             "\n"
                             " ID  BEHAVIOUR\n"
                             "  0  long_name\n"
                             "100  b\n"
                             "links             <5.1> <7.2>\n");
    tp__cbuf_free(&b);
}

struct lines {
    char got[8][64];
    int n, too_long;
    int stop_after;
};

static bool
on_line(void *u, enum tp__line_ev ev, char *line, size_t n)
{
    struct lines *l = u;

    if (ev == TP__LINE_TOO_LONG) {
        l->too_long++;
        return true;
    }
    snprintf(l->got[l->n++ % 8], 64, "%s", line);
    return l->stop_after == 0 || l->n < l->stop_after;
}

static void
test_console_linebuf_pieces_crlf_and_long(void **st)
{
    struct tp__linebuf lb;
    struct lines l = {0};
    char big[100];

    assert_int_equal(tp__linebuf_init(&lb, 16), 0);
    tp__linebuf_feed(&lb, "sta", 3, on_line, &l);
    tp__linebuf_feed(&lb, "ts\r\nps\n", 7, on_line, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.got[0], "stats");
    assert_string_equal(l.got[1], "ps");
    memset(big, 'x', sizeof(big));
    tp__linebuf_feed(&lb, big, sizeof(big), on_line, &l);
    tp__linebuf_feed(&lb, big, sizeof(big), on_line, &l);
    assert_int_equal(l.too_long, 1); /* once per long line */
    tp__linebuf_feed(&lb, "\nhelp\n", 6, on_line, &l);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[2], "help");
    tp__linebuf_free(&lb);
}

static void
test_console_linebuf_stops_when_busy(void **st)
{
    struct tp__linebuf lb;
    struct lines l = {.stop_after = 1};
    const char in[] = "a\nb\nc\n";
    size_t used;

    assert_int_equal(tp__linebuf_init(&lb, 16), 0);
    used = tp__linebuf_feed(&lb, in, 6, on_line, &l);
    assert_int_equal(used, 2);
    assert_int_equal(l.n, 1);
    tp__linebuf_free(&lb);
}

static void
test_console_line_split(void **st)
{
    char line[128], *argv[TP__ARGV_MAX];
    bool json;

    strcpy(line, "  kill  <1.0>  \"going away\\\" now\" ");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), 3);
    assert_false(json);
    assert_string_equal(argv[2], "going away\" now");
    strcpy(line, "json stats");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), 1);
    assert_true(json);
    assert_string_equal(argv[0], "stats");
    strcpy(line, "ps --json -n 3");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), 3);
    assert_true(json);
    strcpy(line, "bad \"quote");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), -EINVAL);
    strcpy(line, "a\x01");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), -EINVAL);
    strcpy(line, "a b c d e f g h i j k l m n o p q");
    assert_int_equal(tp__line_split(line, argv, TP__ARGV_MAX, &json), -E2BIG);
}

static void
test_console_token_equal(void **st)
{
    assert_true(tp__token_equal("s3cret", "s3cret", 6));
    assert_false(tp__token_equal("s3cret", "s3cre", 5));
    assert_false(tp__token_equal("s3cret", "s3cret!", 7));
    assert_false(tp__token_equal("s3cret", "S3cret", 6));
    assert_false(tp__token_equal("s3cret", "", 0));
    assert_false(tp__token_equal("s3cret", "s3crets3cret", 12));
}

static void
test_console_prom_escape_and_numbers(void **st)
{
    char out[64];
    uint32_t v;

    tp__prom_label_escape(out, sizeof(out), "a\"b\\c\nd");
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    assert_int_equal(tp__parse_u32("42", 1, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(tp__parse_u32("0", 1, 100, &v), -EINVAL);
    assert_int_equal(tp__parse_u32("101", 1, 100, &v), -EINVAL);
    assert_int_equal(tp__parse_u32("4x", 1, 100, &v), -EINVAL);
    assert_int_equal(tp__parse_u32("99999999999999999999", 1, 100, &v),
                     -EINVAL);
    assert_int_equal(tp__parse_u32("", 0, 100, &v), -EINVAL);
}

static void
test_console_loopback_rule(void **st)
{
    assert_true(tp__console_is_loopback("127.0.0.1"));
    assert_true(tp__console_is_loopback("127.1.2.3"));
    assert_true(tp__console_is_loopback("::1"));
    assert_true(tp__console_is_loopback("localhost"));
    assert_false(tp__console_is_loopback("0.0.0.0"));
    assert_false(tp__console_is_loopback("::"));
    assert_false(tp__console_is_loopback("10.0.0.1"));
    assert_false(tp__console_is_loopback("example.com"));
}

static void
test_console_start_rules(void **st)
{
    tp_runtime *rt = tpt_runtime(1);
    tp_console_opts o;
    tp_console *c = NULL;

    tp_console_opts_init(&o);
    assert_int_equal(tp_console_start(rt, &o, &c), -EINVAL); /* nothing */
    o.tcp_port = 0;
    o.token = "";
    assert_int_equal(tp_console_start(rt, &o, &c), -EINVAL); /* no token */
    o.token = "t0ken";
    o.host = "0.0.0.0";
    assert_int_equal(tp_console_start(rt, &o, &c), -EINVAL); /* remote */
    o.host = "127.0.0.1";
    o.max_line = 1;
    assert_int_equal(tp_console_start(rt, &o, &c), -EINVAL); /* bad opt */
    assert_null(c);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_cbuf_bound),
        cmocka_unit_test(test_console_cbuf_escapes),
        cmocka_unit_test(test_console_emit_json),
        cmocka_unit_test(test_console_emit_text_aligned),
        cmocka_unit_test(test_console_linebuf_pieces_crlf_and_long),
        cmocka_unit_test(test_console_linebuf_stops_when_busy),
        cmocka_unit_test(test_console_line_split),
        cmocka_unit_test(test_console_token_equal),
        cmocka_unit_test(test_console_prom_escape_and_numbers),
        cmocka_unit_test(test_console_loopback_rule),
        cmocka_unit_test(test_console_start_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
