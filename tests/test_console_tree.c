/*
 * tests/test_console_tree.c - the supervision commands against a known
 * tree, through the in-process transport:
 *
 *   root
 *   └─ app (one_for_one)
 *      ├─ db     (permanent worker, registered "db")
 *      ├─ cache  (transient worker)
 *      └─ pool   (dynamic supervisor, 2 temporary children)
 *
 * tree (text and JSON), info on a supervised child, kill -> restart seen
 * in tree, restart and stop of a child, the errors (not a supervisor, no
 * such child) that leave the session usable, and /metrics' supervisor
 * families.
 */
#include "console/promcheck.h"
#include "test_console_client.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct fixture {
    tp_runtime *rt;
    tp_console *con;
    tcc *t;
    tp_pid app, pool;
};

static char out[1 << 20];

static void
worker_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour worker = {.name = "worker", .handle = worker_handle};

static int
setup(void **st)
{
    static struct fixture f;
    static tp_child_spec kids[3];
    static tp_sup_spec app, pool;
    tp_child_info ci[4];
    size_t total = 0;
    tp_console_opts o;

    memset(&f, 0, sizeof(f));
    f.rt = tpt_runtime(2);
    tp_sup_spec_init(&pool, TP_DYNAMIC);
    tp_child_spec_init(&pool.child_template, "conn", &worker, NULL);
    pool.child_template.restart = TP_TEMPORARY;
    tp_child_spec_init(&kids[0], "db", &worker, NULL);
    kids[0].opts.name = "db";
    tp_child_spec_init(&kids[1], "cache", &worker, NULL);
    kids[1].restart = TP_TRANSIENT;
    tp_child_spec_init(&kids[2], "pool", &tp_supervisor_behaviour, &pool);
    kids[2].type = TP_SUPERVISOR;
    tp_sup_spec_init(&app, TP_ONE_FOR_ONE);
    app.intensity = 50;
    app.children = kids;
    app.nchildren = 3;
    assert_int_equal(tp_runtime_supervisor_start(f.rt, "app", &app, &f.app), 0);
    assert_int_equal(
        tp_supervisor_which_children(f.rt, f.app, ci, 4, &total, 0), 0);
    assert_int_equal(total, 3);
    f.pool = ci[2].pid;
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            tp_supervisor_start_child(f.rt, f.pool, NULL, NULL, NULL, 0), 0);
    tp_console_opts_init(&o);
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

static void
cmd_ok(tcc *t, const char *line)
{
    int n = tcc_cmd(t, line, out, sizeof(out), 10000);

    if (n <= 0 || strstr(out, "error:") == out)
        fail_msg("'%s' failed: %d %s", line, n, n > 0 ? out : "");
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

/* The line of the tree that names `id`. */
static const char *
tree_line(const char *text, const char *id, char *line, size_t cap)
{
    char key[80];
    const char *p, *end;

    snprintf(key, sizeof(key), "─ %s  ", id);
    if ((p = strstr(text, key)) == NULL)
        return NULL;
    end = strchr(p, '\n');
    snprintf(line, cap, "%.*s", (int)(end - p), p);
    return line;
}

static void
test_console_tree_shows_the_tree(void **st)
{
    struct fixture *f = *st;
    char l[256];

    cmd_ok(f->t, "tree");
    assert_true(strncmp(out, "root  ", 6) == 0);
    assert_non_null(tree_line(out, "app", l, sizeof(l)));
    assert_non_null(strstr(l, "supervisor"));
    assert_non_null(tree_line(out, "db", l, sizeof(l)));
    assert_non_null(strstr(l, "permanent restarts=0"));
    assert_non_null(tree_line(out, "cache", l, sizeof(l)));
    assert_non_null(strstr(l, "transient"));
    assert_non_null(tree_line(out, "pool", l, sizeof(l)));
    /* The pool's two dynamic children, listed by pid. */
    assert_non_null(strstr(out, "worker  temporary"));
    tcc_cmd(f->t, "json tree", out, sizeof(out), 5000);
    assert_non_null(strstr(out, "\"id\":\"root\""));
    assert_non_null(strstr(out, "\"id\":\"db\""));
    assert_non_null(strstr(out, "\"total\":2"));
}

static void
test_console_tree_kill_then_restart_seen(void **st)
{
    struct fixture *f = *st;
    tp_pid db0 = tp_whereis(f->rt, "db"), db1 = TP_PID_NONE;
    char l[256], pid[32];

    cmd_ok(f->t, "kill db");
    for (int i = 0; i < 400; i++) {
        db1 = tp_whereis(f->rt, "db");
        if (db1 != TP_PID_NONE && db1 != db0)
            break;
        tpt_sleep_ms(5);
    }
    assert_true(db1 != TP_PID_NONE && db1 != db0);
    cmd_ok(f->t, "tree");
    assert_non_null(tree_line(out, "db", l, sizeof(l)));
    tp_pid_format(db1, pid, sizeof(pid));
    assert_non_null(strstr(l, pid));
    assert_non_null(strstr(l, "restarts=1"));
    cmd_ok(f->t, "info db");
    assert_non_null(strstr(out, "child_id          db"));
    assert_non_null(strstr(out, "restarts          1"));
}

static void
test_console_tree_restart_and_stop(void **st)
{
    struct fixture *f = *st;
    char line[96], sup[32], l[256];

    tp_pid_format(f->app, sup, sizeof(sup));
    snprintf(line, sizeof(line), "stop %s cache", sup);
    cmd_ok(f->t, line);
    cmd_ok(f->t, "tree");
    assert_non_null(tree_line(out, "cache", l, sizeof(l)));
    assert_non_null(strstr(l, "(stopped)"));
    snprintf(line, sizeof(line), "restart %s cache", sup);
    cmd_ok(f->t, line);
    cmd_ok(f->t, "tree");
    assert_non_null(tree_line(out, "cache", l, sizeof(l)));
    assert_null(strstr(l, "(stopped)"));
    snprintf(line, sizeof(line), "restart %s nosuch", sup);
    cmd_err(f->t, line, "no child 'nosuch'");
    cmd_err(f->t, "restart db x", "is not a supervisor");
    cmd_err(f->t, "restart <99999.1> x", "no such actor");
    cmd_ok(f->t, "restart root app");
    cmd_ok(f->t, "stats");
}

static void
test_console_tree_metrics_supervisors(void **st)
{
    struct fixture *f = *st;
    char err[256];
    int n;

    n = tcc_cmd(f->t, "metrics", out, sizeof(out), 10000);
    assert_true(n > 3);
    out[n - 3] = '\0';
    if (tp_promcheck(out, strlen(out), NULL, NULL, err, sizeof(err)) < 0)
        fail_msg("%s", err);
    assert_non_null(strstr(out, "troupe_supervisors 3\n"));
    assert_non_null(strstr(out, "troupe_supervisor_children{supervisor="));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_console_tree_shows_the_tree, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_console_tree_kill_then_restart_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_tree_restart_and_stop,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_console_tree_metrics_supervisors,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
