/*
 * console/console.c - starting and stopping the console: options, the
 * token, the loopback rule, the sampler, then the listeners
 * (console/listen.c).
 */
#include "console_int.h"
#include "runtime/runtime_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
tp_console_opts_init(tp_console_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->host = "127.0.0.1";
    o->tcp_port = -1;
    o->http_port = -1;
    o->unix_mode = 0600;
    o->unix_gid = -1;
    o->max_sessions = 16;
    o->max_preauth = 8;
    o->auth_timeout_ms = 5000;
    o->auth_fail_burst = 10;
    o->auth_fail_interval_ms = 1000;
    o->max_http = 32;
    o->max_http_per_addr = 8;
    o->http_request_timeout_ms = 10000;
    o->max_line = 4096;
    o->max_output = 1u << 20;
    o->idle_timeout_ms = 300000;
    o->trace_rate = 200;
    o->ps_default = 20;
    o->ps_max = 1000;
}

/* 127.0.0.0/8, ::1, and "localhost". */
bool
tp__console_is_loopback(const char *host)
{
    unsigned char a[16];

    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, host, a) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(a, one, 16) == 0;
    }
    return false;
}

static int
check_access_opts(const tp_console_opts *o)
{
    if ((o->unix_mode & ~0666u) != 0 || (o->unix_mode & 0600u) != 0600u ||
        o->unix_nuids > TP_CONSOLE_UIDS_MAX ||
        (o->unix_nuids != 0 && o->unix_uids == NULL) || o->unix_gid < -1 ||
        o->unix_gid > (int64_t)UINT32_MAX || o->max_preauth == 0 ||
        o->auth_timeout_ms == 0 || o->auth_fail_burst == 0 ||
        o->auth_fail_interval_ms == 0 || o->max_http_per_addr == 0 ||
        o->http_request_timeout_ms == 0)
        return -EINVAL;
    return 0;
}

static int
check_opts(const tp_console_opts *o)
{
    if (o->max_sessions == 0 || o->max_http == 0 || o->max_http > 65536 ||
        o->max_line < 64 || o->max_line > (1u << 20) || o->max_output < 4096 ||
        o->trace_rate == 0 || o->ps_default == 0 || o->ps_max < o->ps_default ||
        o->tcp_port > 65535 || o->http_port > 65535 || o->host == NULL)
        return -EINVAL;
    return check_access_opts(o);
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? tp__strdup(s) : NULL;
}

/* The token: the option, else the environment; empty means none. */
static int
take_token(struct tp_console *c, const tp_console_opts *o)
{
    const char *t = o->token != NULL ? o->token : getenv(TP_CONSOLE_TOKEN_ENV);

    if (t == NULL || t[0] == '\0')
        return 0;
    if (strlen(t) > 200 || !tp__line_valid(t, strlen(t)) ||
        strchr(t, ' ') != NULL)
        return -EINVAL;
    c->token = tp__strdup(t);
    return c->token != NULL ? 0 : -ENOMEM;
}

/* ---- lifetime ------------------------------------------------------------*/

static void
free_lives(struct tp_runtime *rt, void *ext)
{
    struct tp__con_life *l = ext, *next;

    for (; l != NULL; l = next) {
        next = l->next;
        tp__free(l);
    }
}

/* One console per runtime; its life record joins the runtime's list. */
static int
new_life(struct tp_console *c)
{
    struct tp_runtime *rt = c->rt;
    struct tp__con_life *head = rt->ext[TP__EXT_CONSOLE], *l;

    if (head != NULL && atomic_load(&head->con) != NULL)
        return -EALREADY;
    if ((l = tp__calloc(1, sizeof(*l))) == NULL)
        return -ENOMEM;
    atomic_init(&l->con, c);
    atomic_init(&l->hosts, 0);
    for (int k = 0; k < 3; k++)
        l->arg[k].life = l, l->arg[k].kind = k;
    l->next = head;
    rt->ext[TP__EXT_CONSOLE] = l;
    rt->ext_free[TP__EXT_CONSOLE] = free_lives;
    c->life = l;
    return 0;
}

struct tp_console *
tp__console_host_enter(struct tp__con_life *l)
{
    /* seq_cst pairs with end_life(): either the host sees con == NULL, or
     * end_life sees the host counted and waits for it. */
    atomic_fetch_add(&l->hosts, 1);
    return atomic_load(&l->con);
}

void
tp__console_host_leave(struct tp__con_life *l)
{
    atomic_fetch_sub(&l->hosts, 1);
}

static bool
is_host(const char *b)
{
    return strcmp(b, "console_conn") == 0 || strcmp(b, "console_local") == 0 ||
           strcmp(b, "console_sampler") == 0;
}

static bool
kill_host(void *user, const tp_actor_info *a)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};

    if (is_host(a->behaviour))
        tp_runtime_exit_pid(user, a->pid, &kill);
    return true;
}

/* Detaches the console from its hosts: no new host will use it, the live
 * ones are killed, and we wait until they are gone (a runtime already
 * stopped has none). */
static void
end_life(struct tp_console *c)
{
    struct tp__con_life *l = c->life;
    uint64_t deadline = tp_now_ns() + 10000000000ull;

    atomic_store(&l->con, NULL);
    while (atomic_load(&l->hosts) != 0 && tp_now_ns() < deadline) {
        tp_actor_foreach(c->rt, kill_host, c->rt);
        usleep(2000);
    }
    if (atomic_load(&l->hosts) != 0)
        tp_log(TP_LOG_ERROR, "console: sessions did not end in time");
}

/* ---- creation ---------------------------------------------------------*/

static void
free_console(struct tp_console *c)
{
    tp__guard_free(c);
    tp__free(c->unix_uids);
    tp__free(c->rates.sched_rate);
    tp__free(c->rates.sched_util);
    tp__free(c->token);
    tp__free(c->unix_path);
    tp__free(c->host);
    tp__free(c);
}

int
tp__console_create(tp_runtime *rt, const tp_console_opts *opts,
                   tp_console **out)
{
    struct tp_console *c;
    int err;

    if (rt == NULL || opts == NULL || check_opts(opts) != 0)
        return -EINVAL;
    if ((c = tp__calloc(1, sizeof(*c))) == NULL)
        return -ENOMEM;
    c->rt = rt;
    c->opts = *opts;
    c->unix_path = dup_or_null(opts->unix_path);
    c->host = dup_or_null(opts->host);
    c->opts.unix_path = c->unix_path;
    c->opts.host = c->host;
    c->opts.token = NULL;
    c->euid = geteuid();
    atomic_init(&c->tcp_port, -1);
    atomic_init(&c->http_port, -1);
    if (opts->unix_nuids != 0 &&
        (c->unix_uids = tp__calloc(opts->unix_nuids, sizeof(uint32_t))) != NULL)
        memcpy(c->unix_uids, opts->unix_uids,
               opts->unix_nuids * sizeof(uint32_t));
    c->opts.unix_uids = c->unix_uids;
    if ((err = tp__guard_init(c)) != 0 ||
        (opts->unix_nuids != 0 && c->unix_uids == NULL) ||
        (err = new_life(c)) != 0) {
        free_console(c);
        return err != 0 ? err : -ENOMEM;
    }
    if ((err = take_token(c, opts)) != 0 ||
        (opts->unix_path != NULL && c->unix_path == NULL) || c->host == NULL ||
        (err = tp__sampler_start(c)) != 0) {
        /* The life record outlives us: it must not point at freed memory
         * (and a later tp_console_start() would see -EALREADY). */
        end_life(c);
        free_console(c);
        return err != 0 ? err : -ENOMEM;
    }
    *out = c;
    return 0;
}

void
tp__console_destroy(tp_console *c)
{
    tp_exit_reason kill = {TP_EXIT_KILL, 0, NULL};
    tp_pid sampler = atomic_load(&c->sampler);

    if (sampler != TP_PID_NONE)
        tp_runtime_exit_pid(c->rt, sampler, &kill);
    end_life(c);
    free_console(c);
}

int
tp_console_start(tp_runtime *rt, const tp_console_opts *opts, tp_console **out)
{
    tp_console *c;
    int err;

    if (opts == NULL ||
        (opts->unix_path == NULL && opts->tcp_port < 0 && opts->http_port < 0))
        return -EINVAL;
    if (opts->host != NULL && !opts->allow_remote &&
        (opts->tcp_port >= 0 || opts->http_port >= 0) &&
        !tp__console_is_loopback(opts->host)) {
        tp_log(TP_LOG_ERROR,
               "console: %s is not a loopback address (set "
               "allow_remote to bind it)",
               opts->host);
        return -EINVAL;
    }
    if ((err = tp__console_create(rt, opts, &c)) != 0)
        return err;
    if (opts->tcp_port >= 0 && c->token == NULL) {
        tp_log(TP_LOG_ERROR, "console: the TCP console needs a token (option "
                             "or $" TP_CONSOLE_TOKEN_ENV ")");
        tp__console_destroy(c);
        return -EINVAL;
    }
    if ((err = tp__console_listen(c)) != 0) {
        tp__console_unlisten(c);
        tp__console_destroy(c);
        return err;
    }
    *out = c;
    return 0;
}

void
tp_console_stop(tp_console *c)
{
    if (c == NULL)
        return;
    tp__console_unlisten(c);
    tp__console_destroy(c);
}

int
tp_console_tcp_port(const tp_console *c)
{
    return atomic_load_explicit(&c->tcp_port, memory_order_relaxed);
}

int
tp_console_http_port(const tp_console *c)
{
    return atomic_load_explicit(&c->http_port, memory_order_relaxed);
}

unsigned
tp_console_sessions(const tp_console *c)
{
    return atomic_load_explicit(&c->sessions, memory_order_relaxed) +
           atomic_load_explicit(&c->preauth, memory_order_relaxed) +
           atomic_load_explicit(&c->http_conns, memory_order_relaxed);
}
