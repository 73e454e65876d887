/*
 * tests/test_net_unit.c - the pure parts of net/: address parsing and
 * formatting, option defaults and validation, names, and the memory
 * budget of an idle connection as laid out in memory.
 */
#include "net/net_int.h"
#include "testutil.h"

#include <errno.h>
#include <string.h>

static void
test_net_addr_parse_and_format(void **state)
{
    tp_net_addr a;
    char buf[TP_NET_ADDR_TEXT];

    (void)state;
    assert_int_equal(tp_net_addr_parse("127.0.0.1", 80, &a), 0);
    assert_int_equal(a.family, TP_NET_INET);
    assert_int_equal(tp_net_addr_format(&a, buf, sizeof(buf)), 12);
    assert_string_equal(buf, "127.0.0.1:80");
    assert_int_equal(tp_net_addr_parse("::1", 443, &a), 0);
    assert_int_equal(a.family, TP_NET_INET6);
    tp_net_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[::1]:443");
    assert_int_equal(tp_net_addr_parse("[fe80::1]", 1, &a), 0);
    assert_int_equal(a.family, TP_NET_INET6);
    assert_int_equal(tp_net_addr_parse(NULL, 8080, &a), 0);
    tp_net_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "0.0.0.0:8080");
    /* Names are never looked up; garbage is refused. */
    assert_int_equal(tp_net_addr_parse("localhost", 1, &a), -EINVAL);
    assert_int_equal(tp_net_addr_parse("1.2.3.4.5", 1, &a), -EINVAL);
    assert_int_equal(tp_net_addr_parse("[::1", 1, &a), -EINVAL);
    assert_int_equal(a.family, 0);
    assert_int_equal(tp_net_addr_parse("1.2.3.4", 1, NULL), -EINVAL);
    /* Truncation and odd families. */
    assert_int_equal(tp_net_addr_parse("10.0.0.1", 65535, &a), 0);
    assert_int_equal(tp_net_addr_format(&a, buf, 5), 4);
    assert_string_equal(buf, "10.0");
    memset(&a, 0, sizeof(a));
    tp_net_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "-");
    a.family = TP_NET_UNIX;
    tp_net_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "unix");
    assert_int_equal(tp_net_addr_format(&a, buf, 0), -EINVAL);
}

static void
test_net_sockaddr_round_trip(void **state)
{
    struct sockaddr_storage ss;
    tp_net_addr a, b;
    unsigned len;

    (void)state;
    assert_int_equal(tp_net_addr_parse("192.168.1.2", 5000, &a), 0);
    assert_int_equal(tp__addr_to_sockaddr(&a, &ss, &len), 0);
    tp__addr_from_sockaddr(&ss, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(tp_net_addr_parse("2001:db8::7", 1, &a), 0);
    assert_int_equal(tp__addr_to_sockaddr(&a, &ss, &len), 0);
    tp__addr_from_sockaddr(&ss, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    a.family = TP_NET_UNIX;
    assert_int_equal(tp__addr_to_sockaddr(&a, &ss, &len), -EINVAL);
}

static void
test_net_opts_defaults_and_checks(void **state)
{
    tp_conn_opts c;
    tp_listen_opts l;
    tp_connect_opts k;

    (void)state;
    tp_conn_opts_init(&c);
    assert_int_equal(tp__conn_opts_check(&c), 0);
    assert_int_equal(c.read_mode, TP_READ_ACTIVE);
    assert_int_equal(c.read_chunk, 65536);
    assert_true(c.read_low < c.read_high);
    assert_true(c.write_low < c.write_high && c.write_high < c.write_limit);
    assert_true(c.nodelay && c.read_pause_on_write_high && !c.half_open);
    tp_listen_opts_init(&l);
    assert_int_equal(l.backlog, 1024);
    assert_int_equal(l.scheduler, -1);
    assert_true(l.exit_on_close);
    assert_int_equal(l.emfile_backoff_ms, 100);
    tp_connect_opts_init(&k);
    assert_int_equal(k.timeout_ms, 5000);
    /* Inconsistent limits are refused. */
    c.read_chunk = 0;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.read_chunk = 65537;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.read_low = c.read_high + 1;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.mailbox_high = 0;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.write_high = c.write_limit + 1;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.write_limit = 2u << 30; /* over the 1 GiB the counters hold */
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    c.read_mode = (tp_read_mode)7;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    tp_conn_opts_init(&c);
    assert_int_equal(c.send_buffer, 0); /* the kernel's default */
    c.send_buffer = (64u << 20) + 1;
    assert_int_equal(tp__conn_opts_check(&c), -EINVAL);
    c.send_buffer = 64u << 10;
    assert_int_equal(tp__conn_opts_check(&c), 0);
}

static void
test_net_names(void **state)
{
    (void)state;
    assert_string_equal(tp_net_close_name(TP_NET_CLOSE_PEER), "peer");
    assert_string_equal(tp_net_close_name(TP_NET_CLOSE_RESET), "reset");
    assert_string_equal(tp_net_close_name(TP_NET_CLOSE_TIMEOUT), "timeout");
    assert_string_equal(tp_net_close_name(TP_NET_CLOSE_WRITE_LIMIT),
                        "write_limit");
    assert_string_equal(tp_net_close_name(TP_NET_CLOSE_DRAIN), "drain");
    assert_string_equal(tp_net_close_name((tp_net_close)99), "?");
    assert_string_equal(tp_read_mode_name(TP_READ_ONCE), "once");
    assert_true(tp_msg_is_net(TP_MSG_TCP_DATA));
    assert_false(tp_msg_is_net(TP_MSG_EXIT));
    /* Net messages are runtime types: tp_send() cannot forge them. */
    assert_true(tp_msg_is_system(TP_MSG_TCP_OPENED));
    assert_true(tp_msg_is_system(TP_MSG_TCP_DRAIN));
}

/* What an idle connection costs by construction: the connection block
 * (libuv handle + bookkeeping), the smallest actor block and the wrapper's
 * entry. The scale test measures the real resident cost. */
static void
test_net_idle_connection_layout(void **state)
{
    (void)state;
    print_message("connection %zu + actor %u + wrapper entry %zu bytes\n",
                  sizeof(struct tp__conn), TP__ACTOR_HDR,
                  sizeof(struct tp__wslot));
    assert_true(sizeof(struct tp__conn) <= 368);
    assert_int_equal(offsetof(struct tp__conn, h), 0);
    assert_true(sizeof(struct tp__conn) + TP__ACTOR_HDR +
                    sizeof(struct tp__wslot) <=
                520);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_addr_parse_and_format),
        cmocka_unit_test(test_net_sockaddr_round_trip),
        cmocka_unit_test(test_net_opts_defaults_and_checks),
        cmocka_unit_test(test_net_names),
        cmocka_unit_test(test_net_idle_connection_layout),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
