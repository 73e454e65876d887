/*
 * tests/test_console_unit.c - the console's pure parts: bounded buffers,
 * the text/JSON emitter, line assembly and splitting, the token compare,
 * Prometheus escaping and number parsing, SHA-256/HMAC (FIPS 180-4 and
 * RFC 4231 vectors) and the login proofs.
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

static void
sha_hex(const char *msg, size_t n, char out[65])
{
    struct tp__sha256 s;
    unsigned char d[TP__SHA256_LEN];

    tp__sha256_init(&s);
    /* In two pieces: the block buffering is exercised too. */
    tp__sha256_update(&s, msg, n / 3);
    tp__sha256_update(&s, msg + n / 3, n - n / 3);
    tp__sha256_final(&s, d);
    tp__hex(d, sizeof(d), out);
}

static void
test_console_sha256_vectors(void **st)
{
    static const char two_blocks[] =
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    char h[65], million[1000];
    struct tp__sha256 s;
    unsigned char d[TP__SHA256_LEN];

    sha_hex("", 0, h);
    assert_string_equal(
        h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha_hex("abc", 3, h);
    assert_string_equal(
        h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha_hex(two_blocks, strlen(two_blocks), h);
    assert_string_equal(
        h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    memset(million, 'a', sizeof(million));
    tp__sha256_init(&s);
    for (int i = 0; i < 1000; i++)
        tp__sha256_update(&s, million, sizeof(million));
    tp__sha256_final(&s, d);
    tp__hex(d, sizeof(d), h);
    assert_string_equal(
        h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void
hmac_hex(const void *k, size_t kn, const char *m, char out[65])
{
    unsigned char d[TP__SHA256_LEN];

    tp__hmac_sha256(k, kn, m, strlen(m), d);
    tp__hex(d, sizeof(d), out);
}

static void
test_console_hmac_vectors(void **st)
{
    unsigned char k1[20], k6[131];
    char h[65];

    memset(k1, 0x0b, sizeof(k1));
    hmac_hex(k1, sizeof(k1), "Hi There", h);
    assert_string_equal(
        h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    hmac_hex("Jefe", 4, "what do ya want for nothing?", h);
    assert_string_equal(
        h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(k6, 0xaa, sizeof(k6));
    hmac_hex(k6, sizeof(k6),
             "Test Using Larger Than Block-Size Key - Hash Key First", h);
    assert_string_equal(
        h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* The server's proof checks out on the client's side only with the same
 * token, nonces and dialled address; the two directions differ. */
static void
test_console_login_proofs(void **st)
{
    static const char cn[] = "00112233445566778899aabbccddeeff";
    struct tp__login l = {0};
    tp_net_addr local = {.family = TP_NET_INET6, .port = 7070};
    char reply[160], sn[33], sp[65], want[65], cp[65];

    /* ::ffff:127.0.0.1 is written as 127.0.0.1, as the client sees it. */
    local.addr[10] = local.addr[11] = 0xff;
    local.addr[12] = 127, local.addr[15] = 1;
    assert_int_equal(
        tp__login_hello(&l, "tok", &local, "short", reply, sizeof(reply)),
        -EINVAL);
    assert_int_equal(
        tp__login_hello(&l, "tok", &local, cn, reply, sizeof(reply)), 0);
    assert_int_equal(
        tp__login_hello(&l, "tok", &local, cn, reply, sizeof(reply)),
        -EALREADY);
    assert_int_equal(sscanf(reply, "challenge %32s %64s", sn, sp), 2);
    tp__login_proof("tok", 1, cn, sn, "127.0.0.1:7070", want);
    assert_string_equal(sp, want);
    tp__login_proof("tok", 1, cn, sn, "127.0.0.1:7071", want);
    assert_string_not_equal(sp, want);
    tp__login_proof("tok", 0, cn, sn, "127.0.0.1:7070", cp);
    assert_string_not_equal(sp, cp);
    assert_true(tp__login_check(&l, "tok", cp));
    assert_false(tp__login_check(&l, "tok2", cp));
    assert_false(tp__login_check(&l, "tok", sp)); /* no reflection */
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
        cmocka_unit_test(test_console_sha256_vectors),
        cmocka_unit_test(test_console_hmac_vectors),
        cmocka_unit_test(test_console_login_proofs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
