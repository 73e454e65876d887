/*
 * tests/test_console_cmds.c - every console command against a running
 * runtime, through the in-process transport: text and JSON replies, the
 * one-line errors that leave the session usable, ps sorting and limits,
 * info, kill, loglevel, history, trace (stream, rate limit, stop), input
 * while a command runs, and a scan over many actors that never stalls
 * another session.
 */
#include "test_console_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SLOW 1 /* handler sleeps the given ms */
#define T_PING 2 /* any message */
#define T_MP   3 /* a msgpack payload */

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    tcc *t;
};

static char out[1 << 20];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    if (m->type == T_SLOW)
        tpt_sleep_ms(*(const uint32_t *)m->data);
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static int
setup(void **st)
{
    static struct fixture f;
    tp_console_opts o;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(3);
    tp_console_opts_init(&o);
    o.trace_rate = 50;
    assert_int_equal(tp__console_create(f.rt, &o, &f.con), 0);
    f.t = tcc_open(f.con, false);
    *st = &f;
    return 0;
}

static int
teardown(void **st)
{
    struct fixture *f = *st;

    tcc_close(f->t);
    tp__console_destroy(f->con);
    tpt_finish(f->rt);
    return 0;
}

static tp_pid
spawn_worker(tp_runtime *rt, const char *name)
{
    tp_spawn_opts o;
    tp_pid pid;

    tp_spawn_opts_init(&o);
    o.name = name;
    assert_int_equal(tp_runtime_spawn(rt, &worker, NULL, &o, &pid), 0);
    return pid;
}

static void
cmd_ok(tcc *t, const char *line)
{
    int n = tcc_cmd(t, line, out, sizeof(out), 10000);

    if (n <= 0 || strstr(out, "error:") == out)
        fail_msg("'%s' failed: %d %s", line, n, n > 0 ? out : "");
    assert_string_equal(out + n - 3, "ok\n");
}

static void
cmd_err(tcc *t, const char *line, const char *want)
{
    int n = tcc_cmd(t, line, out, sizeof(out), 10000);

    assert_true(n > 0);
    if (strncmp(out, "error: ", 7) != 0 || strstr(out, want) == NULL ||
        tcc_lines(out) != 1)
        fail_msg("'%s': want one error line with '%s', got '%s'", line, want,
                 out);
}

static void
test_console_help_and_unknown(void **st)
{
    struct fixture *f = *st;

    cmd_ok(f->t, "help");
    for (const struct tp__cmd_def *d = tp__cmds; d->name != NULL; d++)
        assert_non_null(strstr(out, d->usage));
    cmd_ok(f->t, "help ps");
    assert_non_null(strstr(out, "-s mailbox"));
    cmd_err(f->t, "frobnicate", "unknown command 'frobnicate'");
    cmd_err(f->t, "help nope", "unknown command");
    cmd_err(f->t, "info", "usage: info PID");
    cmd_err(f->t, "kill \"unterminated", "invalid line");
    /* The session is still usable after errors. */
    cmd_ok(f->t, "stats");
}

static void
test_console_stats_text_and_json(void **st)
{
    struct fixture *f = *st;
    int n;

    cmd_ok(f->t, "stats");
    assert_non_null(strstr(out, "uptime "));
    assert_non_null(strstr(out, "actors "));
    assert_non_null(strstr(out, "messages_per_s "));
    assert_non_null(strstr(out, "dead_letters "));
    assert_non_null(strstr(out, "rss "));
    assert_non_null(strstr(out, "connections "));
    n = tcc_cmd(f->t, "json stats", out, sizeof(out), 5000);
    assert_true(n > 0);
    assert_int_equal(tcc_lines(out), 1);
    assert_non_null(strstr(out, "{\"ok\":true,\"data\":{\"uptime\":"));
    assert_non_null(strstr(out, "\"actors\":"));
    n = tcc_cmd(f->t, "stats --json", out, sizeof(out), 5000);
    assert_true(n > 0 && out[0] == '{');
    n = tcc_cmd(f->t, "json nope", out, sizeof(out), 5000);
    assert_string_equal(out, "{\"ok\":false,\"error\":\"unknown command "
                             "'nope' (try 'help')\"}\n");
}

static void
test_console_sched(void **st)
{
    struct fixture *f = *st;

    cmd_ok(f->t, "sched");
    assert_non_null(strstr(out, "ID  CPU  UTIL_PCT"));
    assert_non_null(strstr(out, "RUNQ"));
    assert_non_null(strstr(out, "STEALS"));
    assert_non_null(strstr(out, "SLEEPS"));
    assert_int_equal(tcc_lines(out), 1 + 3 + 1); /* header, 3, ok */
    tcc_cmd(f->t, "json sched", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"schedulers\":[{\"id\":0,"));
}

static void
test_console_ps_sorted_and_limited(void **st)
{
    struct fixture *f = *st;
    tp_pid busy = spawn_worker(f->rt, "busy_one");
    uint32_t ms = 600;
    char pid[32], *row;

    /* Block the worker, then queue 40 messages behind it. */
    assert_int_equal(tp_runtime_send(f->rt, busy, T_SLOW, &ms, sizeof(ms)), 0);
    tpt_sleep_ms(50);
    for (int i = 0; i < 40; i++)
        tp_runtime_send(f->rt, busy, T_PING, NULL, 0);
    cmd_ok(f->t, "ps -n 3");
    /* header + 3 rows + summary lines + ok */
    row = strstr(out, "PID");
    assert_non_null(row);
    row = strchr(row, '\n') + 1;
    tp_pid_format(busy, pid, sizeof(pid));
    if (strncmp(row, pid, strlen(pid)) != 0)
        fail_msg("busy actor not first:\n%s", out);
    assert_non_null(strstr(row, "busy_one"));
    assert_non_null(strstr(out, "sort              mailbox"));
    cmd_ok(f->t, "ps -s handled -n 1");
    assert_non_null(strstr(out, "sort              handled"));
    tcc_cmd(f->t, "json ps -s memory -n 2", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"sort\":\"memory\""));
    assert_non_null(strstr(out, "\"top\":[{"));
    cmd_err(f->t, "ps -s nonsense", "unknown sort key");
    cmd_err(f->t, "ps -n 0", "limit must be 1..1000");
    cmd_err(f->t, "ps -n 5000", "limit must be");
    cmd_err(f->t, "ps -x", "usage: ps");
    tpt_sleep_ms(600);
}

/* A direct-style actor parked in tp_receive(): `info` says so, and how
 * much stack it holds. */
static void
parked_main(tp_ctx *ctx, void *state, void *arg)
{
    const tp_msg *m;
    char deep[512];

    (void)state;
    (void)arg;
    memset(deep, 1, sizeof(deep)); /* some stack to keep while parked */
    tp_receive(ctx, &m, -1);
    (void)deep[0];
}

static const tp_direct parked = {
    TP_DIRECT_BEHAVIOUR("parked", 0),
    .main = parked_main,
    .stack = TP_STACK_COPIED,
};

static void
test_console_info_direct(void **st)
{
    struct fixture *f = *st;
    tp_spawn_opts so;
    tp_pid p;
    char line[64], pid[32], *row, *end;

    tp_spawn_opts_init(&so);
    so.name = "parked_one";
    assert_int_equal(
        tp_runtime_spawn_direct(f->rt, &parked, NULL, &so, NULL, &p), 0);
    tpt_idle(f->rt);
    tp_pid_format(p, pid, sizeof(pid));
    snprintf(line, sizeof(line), "info %s", pid);
    cmd_ok(f->t, line);
    assert_non_null(strstr(out, "style             direct"));
    assert_non_null(strstr(out, "stack "));
    tcc_cmd(f->t, "json info parked_one", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"style\":\"direct\""));
    /* ps: a STACK column, bytes for it, "-" for callback actors. */
    cmd_ok(f->t, "ps -n 1000");
    assert_non_null(strstr(out, "STACK"));
    row = strstr(out, pid);
    assert_non_null(row);
    end = strchr(row, '\n');
    assert_non_null(end);
    *end = '\0';
    if (strstr(row, "parked_one") == NULL || strstr(row, "B") == NULL ||
        end[-1] == '-')
        fail_msg("direct row without its stack: %s", row);
    *end = '\n';
    assert_non_null(strstr(out, " -\n")); /* the callback actors */
    tcc_cmd(f->t, "json ps -n 1000", out, sizeof(out), 5000);
    snprintf(line, sizeof(line), "\"pid\":\"%s\"", pid);
    row = strstr(out, line);
    assert_non_null(row);
    end = strchr(row, '}');
    assert_non_null(end);
    *end = '\0';
    if (strstr(row, "\"stack\":") == NULL ||
        strstr(row, "\"stack\":null") != NULL)
        fail_msg("direct row without its stack: %s", row);
    *end = '}';
    assert_non_null(strstr(out, "\"stack\":null")); /* callback actors */
    tp_runtime_exit_pid(f->rt, p, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
}

static void
test_console_info_and_errors(void **st)
{
    struct fixture *f = *st;
    tp_pid w = spawn_worker(f->rt, "info_target");
    char line[64], pid[32];

    tp_pid_format(w, pid, sizeof(pid));
    snprintf(line, sizeof(line), "info %s", pid);
    cmd_ok(f->t, line);
    assert_non_null(strstr(out, "behaviour         worker"));
    assert_non_null(strstr(out, "name              info_target"));
    assert_non_null(strstr(out, "mailbox           0"));
    assert_non_null(strstr(out, "links "));
    assert_non_null(strstr(out, "monitors "));
    assert_non_null(strstr(out, "state             waiting"));
    assert_non_null(strstr(out, "style             callback"));
    cmd_ok(f->t, "info info_target"); /* by name */
    tcc_cmd(f->t, "json info info_target", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"behaviour\":\"worker\""));
    cmd_err(f->t, "info <999999.1>", "no such actor");
    cmd_err(f->t, "info not_a_name", "no such actor or name 'not_a_name'");
    cmd_err(f->t, "info <1.", "no such actor or name");
    cmd_ok(f->t, "stats");
}

static void
test_console_kill(void **st)
{
    struct fixture *f = *st;
    tp_pid w = spawn_worker(f->rt, "victim");
    tp_actor_info a;
    char line[64], pid[32];

    tp_pid_format(w, pid, sizeof(pid));
    snprintf(line, sizeof(line), "kill %s going away", pid);
    cmd_ok(f->t, line);
    assert_non_null(strstr(out, "signal            going away"));
    for (int i = 0; i < 200 && tp_actor_peek(f->rt, w, &a) == 0; i++)
        tpt_sleep_ms(5);
    assert_int_equal(tp_actor_peek(f->rt, w, &a), -ESRCH);
    cmd_err(f->t, line, "no such actor");
    w = spawn_worker(f->rt, "victim2");
    cmd_ok(f->t, "kill victim2");
    assert_non_null(strstr(out, "signal            kill"));
    for (int i = 0; i < 200 && tp_actor_peek(f->rt, w, &a) == 0; i++)
        tpt_sleep_ms(5);
    assert_int_equal(tp_actor_peek(f->rt, w, &a), -ESRCH);
}

static void
test_console_loglevel(void **st)
{
    struct fixture *f = *st;
    tp_log_level old = tp_log_get_level();

    cmd_ok(f->t, "loglevel");
    assert_non_null(strstr(out, "level "));
    cmd_ok(f->t, "loglevel debug");
    assert_int_equal(tp_log_get_level(), TP_LOG_DEBUG);
    assert_non_null(strstr(out, "previous "));
    cmd_err(f->t, "loglevel loud", "unknown level 'loud'");
    tp_log_set_level(old);
}

static void
test_console_history(void **st)
{
    struct fixture *f = *st;

    tpt_sleep_ms(2300); /* the sampler takes one sample a second */
    cmd_ok(f->t, "history");
    assert_non_null(strstr(out, "period_ms         1000"));
    assert_non_null(strstr(out, "TOTAL"));
    tcc_cmd(f->t, "json history", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"samples\":[{\"t\":"));
    assert_non_null(strstr(out, "\"s2\":"));
}

static void
test_console_trace_stream_and_stop(void **st)
{
    struct fixture *f = *st;
    tp_pid w = spawn_worker(f->rt, "traced");
    /* msgpack {"op":"get"} */
    static const char mp[] = "\x81\xa2op\xa3get";
    char line[64], pid[32];
    int n;

    tp_pid_format(w, pid, sizeof(pid));
    snprintf(line, sizeof(line), "trace %s\n", pid);
    tcc_send(f->t, line, strlen(line));
    assert_int_equal(tcc_wait_for(f->t, "send any line to stop", 5000), 0);
    tp_runtime_send(f->rt, w, T_PING, "hello", 5);
    tp_runtime_send(f->rt, w, T_MP, mp, sizeof(mp) - 1);
    assert_int_equal(tcc_wait_for(f->t, "{\"op\":\"get\"}", 5000), 0);
    assert_int_equal(tcc_wait_for(f->t, "\"hello\"", 5000), 0);
    /* Flood: at most trace_rate (50) lines a second get through. */
    for (int i = 0; i < 2000; i++)
        tp_runtime_send(f->rt, w, T_PING, "x", 1);
    assert_int_equal(tcc_wait_for(f->t, "events not shown (rate limit", 5000),
                     0);
    tcc_send(f->t, "\n", 1); /* any line stops it */
    n = tcc_reply(f->t, out, sizeof(out), 5000);
    assert_true(n > 0);
    assert_non_null(strstr(out, "stopped by client"));
    assert_true(tcc_lines(out) < 200);
    tpt_sleep_ms(100);
    tcc_take(f->t, out, sizeof(out));
    tp_runtime_send(f->rt, w, T_PING, "after", 5);
    tpt_sleep_ms(200);
    tcc_take(f->t, out, sizeof(out));
    assert_null(strstr(out, "after")); /* no longer traced */
    cmd_ok(f->t, "stats");
}

static void
test_console_trace_ends_when_actor_exits(void **st)
{
    struct fixture *f = *st;
    tp_pid w = spawn_worker(f->rt, "traced2");
    tp_exit_reason r = {TP_EXIT_SHUTDOWN, 0, NULL};
    char line[64], pid[32];

    tp_pid_format(w, pid, sizeof(pid));
    snprintf(line, sizeof(line), "trace %s\n", pid);
    tcc_send(f->t, line, strlen(line));
    assert_int_equal(tcc_wait_for(f->t, "send any line to stop", 5000), 0);
    tp_runtime_exit_pid(f->rt, w, &r);
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "actor exited (shutdown)"));
    cmd_err(f->t, "trace <99999.3>", "no such actor");
    snprintf(line, sizeof(line), "trace %s", pid);
    cmd_err(f->t, line, "no such actor");
}

static void
test_console_pipelined_lines_answer_in_order(void **st)
{
    struct fixture *f = *st;
    const char in[] = "ps -n 1\nstats\nnope\nsched\n";

    tcc_send(f->t, in, sizeof(in) - 1);
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "sort "));
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "uptime "));
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "error: unknown command 'nope'"));
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "RUNQ"));
}

static void
test_console_garbage_and_long_lines(void **st)
{
    struct fixture *f = *st;
    static char big[1 << 20];
    char junk[256];

    for (int i = 0; i < 256; i++)
        junk[i] = (char)(i == '\n' ? 1 : i);
    tcc_send(f->t, junk, sizeof(junk));
    tcc_send(f->t, "\n", 1);
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_non_null(strstr(out, "error:"));
    memset(big, 'A', sizeof(big));
    tcc_send(f->t, big, sizeof(big));
    tcc_send(f->t, "\n", 1);
    assert_true(tcc_reply(f->t, out, sizeof(out), 5000) > 0);
    assert_string_equal(out, "error: line too long (max 4096 bytes)\n");
    cmd_ok(f->t, "stats");
}

/* A scan of 200,000 actors runs in chunks: another session answers
 * `stats` quickly while it runs, and ps counts them all. */
static void
test_console_ps_scan_is_incremental(void **st)
{
    struct fixture *f = *st;
    unsigned n = (unsigned)(200000 * tpt_scale());
    tcc *other = tcc_open(f->con, false);
    uint64_t t0, t_ps, worst = 0;
    char *actors;
    unsigned long counted;

    for (unsigned i = 0; i < n; i++)
        assert_int_equal(tp_runtime_spawn(f->rt, &worker, NULL, NULL, NULL), 0);
    t_ps = tp_now_ns();
    tcc_send(f->t, "ps -n 5\n", 8);
    for (int i = 0; i < 5; i++) {
        t0 = tp_now_ns();
        assert_true(tcc_cmd(other, "stats", out, sizeof(out), 2000) > 0);
        if (tp_now_ns() - t0 > worst)
            worst = tp_now_ns() - t0;
    }
    assert_true(tcc_reply(f->t, out, sizeof(out), 30000) > 0);
    t_ps = tp_now_ns() - t_ps;
    actors = strstr(out, "actors ");
    assert_non_null(actors);
    counted = strtoul(actors + 7, NULL, 10);
    assert_true(counted >= n);
    print_message("ps over %u actors: %.1f ms; stats meanwhile: worst "
                  "%.1f ms\n",
                  n, (double)t_ps / 1e6, (double)worst / 1e6);
    /* Behaviour, not speed: every `stats` above was answered (within its
     * own deadline) while the scan ran; the worst latency is printed. */
    tcc_close(other);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_help_and_unknown, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_stats_text_and_json, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_sched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_ps_sorted_and_limited,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_info_and_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_info_direct, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_console_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_loglevel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_trace_stream_and_stop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_console_trace_ends_when_actor_exits, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_console_pipelined_lines_answer_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_garbage_and_long_lines,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_ps_scan_is_incremental,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
