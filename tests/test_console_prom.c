/*
 * tests/test_console_prom.c - the strict Prometheus text-format parser
 * (console/promcheck.c) accepts what the format allows and rejects what it
 * does not; then the console's real `metrics` output passes it, with the
 * families, types and values the runtime has.
 */
#include "console/promcheck.h"
#include "test_console_client.h"

#include <math.h>
#include <string.h>

static int
check(const char *text)
{
    char err[256];
    int n = tp_promcheck(text, strlen(text), NULL, NULL, err, sizeof(err));

    if (n < 0)
        print_message("promcheck: %s\n", err);
    return n;
}

static void
test_console_prom_accepts_valid(void **st)
{
    assert_int_equal(check("# HELP a_total Things.\n# TYPE a_total counter\n"
                           "a_total 3\n"),
                     1);
    assert_int_equal(
        check("# HELP g A \\\\ gauge\\n.\n# TYPE g gauge\n"
              "g{x=\"1\",y=\"a\\\"b\\\\c\\nd\"} -1.5e3 1700000000\n"
              "g{x=\"2\",} NaN\n"
              "g{x=\"3\"} +Inf\n"
              "\n# a free comment\n"),
        3);
    assert_int_equal(check("# HELP h H.\n# TYPE h histogram\n"
                           "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 3\n"
                           "h_sum 7\nh_count 3\n"),
                     4);
}

static void
test_console_prom_rejects_invalid(void **st)
{
    static const char *const bad[] = {
        "# HELP a A.\n# TYPE a gauge\na 1",              /* no final \n */
        "# HELP a A.\n# TYPE a gauge\na one\n",          /* value */
        "# HELP a A.\n# TYPE a gauge\na 0x10\n",         /* hex float */
        "# HELP a A.\n# TYPE a gauge\na{b=c} 1\n",       /* unquoted */
        "# HELP a A.\n# TYPE a gauge\na{b=\"\\t\"} 1\n", /* escape */
        "# HELP a A.\n# TYPE a gauge\na{__b=\"x\"} 1\n", /* reserved */
        "# HELP a A.\n# TYPE a gauge\na{b=\"1\",b=\"2\"} 1\n",
        "# HELP a A.\n# TYPE a gauge\na 1\na 2\n", /* series twice */
        "# HELP a A.\n# TYPE a gauge\n# TYPE a gauge\na 1\n",
        "# HELP a A.\na 1\n# TYPE a gauge\n", /* TYPE late */
        "# HELP a A.\n# TYPE a gauge\na{x=\"1\"} 1\n# HELP b B.\n"
        "# TYPE b gauge\nb 1\na{x=\"2\"} 1\n",  /* not contiguous */
        "# HELP a A.\n# TYPE a counter\na 1\n", /* no _total */
        "# TYPE a gauge\na 1\n",                /* no HELP */
        "# HELP a A.\n# TYPE a bogus\na 1\n",
        "# HELP 1a A.\n# TYPE 1a gauge\n1a 1\n",   /* name */
        "# HELP a A.\n# TYPE a gauge\na 1 12.5\n", /* timestamp */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n", /* not cumulative */
        "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
        "h_sum 1\nh_count 1\n",                           /* no +Inf */
        "# HELP a A.\n# TYPE a gauge\na{b=\"\xff\"} 1\n", /* not UTF-8 */
        "# HELP a A.\n# TYPE a gauge\na\x00 1\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256];
        size_t len = strlen(bad[i]);
        if (i == sizeof(bad) / sizeof(bad[0]) - 1)
            len = 32; /* the NUL case: include the bytes after it */
        assert_int_equal(
            tp_promcheck(bad[i], len, NULL, NULL, err, sizeof(err)), -1);
    }
}

struct found {
    double actors, sched0_msgs, buckets_inf, sups;
    int sched_series, seen;
};

static void
collect(void *user, const struct tp_promcheck_sample *s)
{
    struct found *f = user;

    f->seen++;
    if (strcmp(s->name, "troupe_actors") == 0)
        f->actors = s->value;
    if (strcmp(s->name, "troupe_scheduler_messages_total") == 0) {
        f->sched_series++;
        assert_string_equal(s->type, "counter");
    }
    if (strcmp(s->name, "troupe_mailbox_length_bucket") == 0 &&
        strstr(s->labels, "+Inf") != NULL)
        f->buckets_inf = s->value;
    if (strcmp(s->name, "troupe_supervisors") == 0)
        f->sups = s->value;
}

static void
test_console_prom_metrics_output_parses(void **st)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_console_opts o;
    tp_console *c;
    struct found f = {0};
    static char out[1 << 20];
    char err[256];
    tp_runtime_stats rs;
    tcc *t;
    int n;

    tp_console_opts_init(&o);
    assert_int_equal(tp__console_create(rt, &o, &c), 0);
    t = tcc_open(c, false);
    n = tcc_cmd(t, "metrics", out, sizeof(out), 10000);
    assert_true(n > 0);
    /* Strip the session's final "ok" line: the body is the exposition. */
    assert_string_equal(out + n - 3, "ok\n");
    out[n - 3] = '\0';
    n = tp_promcheck(out, strlen(out), collect, &f, err, sizeof(err));
    if (n < 0)
        fail_msg("metrics do not parse: %s", err);
    tp_runtime_get_stats(rt, &rs);
    assert_true(f.actors >= 3 && f.actors <= (double)rs.actors + 2);
    assert_int_equal(f.sched_series, 2);
    assert_true(f.buckets_inf >= 3); /* the +Inf bucket counts every actor */
    assert_true(f.seen > 40);
    tcc_close(t);
    tp__console_destroy(c);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_console_prom_accepts_valid),
        cmocka_unit_test(test_console_prom_rejects_invalid),
        cmocka_unit_test(test_console_prom_metrics_output_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
