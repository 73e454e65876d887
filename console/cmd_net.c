/*
 * console/cmd_net.c - `conns`, `listeners`, `drain` and the network
 * counters in `stats` and /metrics, from the net layer's introspection
 * (tp_net_conn_foreach, tp_net_listener_foreach, tp_net_get_stats).
 */
#include "console_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <troupe/net.h>
#include <troupe/tls.h>

/* net/listen.c: replaces the TLS context of the listener called name. */
int tp__net_listener_tls_reload(tp_runtime *rt, const char *name,
                                tp_tls_ctx *ctx);

#define CONNS_DEFAULT 50u
#define CONNS_MAX     1000u

void
tp__console_net_counts(tp_runtime *rt, struct tp__net_counts *out)
{
    tp_net_stats st;

    tp_net_get_stats(rt, &st);
    out->connections = st.conns;
    out->listeners = st.listeners;
    out->accepted = st.accepted;
    out->rejected = st.refused;
}

struct conns {
    tp_runtime *rt;
    struct tp__em *e;
    uint32_t limit, shown;
    uint64_t total;
};

static void
addr(struct tp__em *e, const char *key, const tp_net_addr *a)
{
    char s[TP_NET_ADDR_TEXT];

    if (tp_net_addr_format(a, s, sizeof(s)) < 0)
        snprintf(s, sizeof(s), "-");
    tp__em_str(e, key, s);
}

/* "TLSv1.3/TLS_AES_128_GCM_SHA256", "handshake", or "-" (plain TCP). */
static void
tls_col(tp_runtime *rt, struct tp__em *e, tp_conn conn)
{
    tp_tls_info ti;
    char s[96];

    if (tp_tls_conn_get_info(rt, conn, &ti) != 0)
        snprintf(s, sizeof(s), "-");
    else if (!ti.handshake_done)
        snprintf(s, sizeof(s), "handshake");
    else
        snprintf(s, sizeof(s), "%s/%s", ti.version, ti.cipher);
    tp__em_str(e, "tls", s);
}

static bool
conn_row(void *user, const tp_conn_info *ci)
{
    struct conns *c = user;
    struct tp__em *e = c->e;

    c->total++;
    if (c->shown == c->limit)
        return true; /* keep counting */
    c->shown++;
    tp__em_obj_begin(e, NULL);
    tp__em_pid(e, "pid", ci->pid);
    addr(e, "peer", &ci->peer);
    addr(e, "local", &ci->local);
    tp__em_str(e, "listener", ci->listener[0] != '\0' ? ci->listener : "-");
    tls_col(c->rt, e, ci->conn);
    tp__em_str(e, "state", ci->state);
    tp__em_u64(e, "bytes_in", ci->bytes_in);
    tp__em_u64(e, "bytes_out", ci->bytes_out);
    tp__em_u64(e, "queued", ci->write_queued);
    tp__em_u64(e, "age_ms", ci->age_ms);
    tp__em_u64(e, "idle_ms", ci->idle_ms);
    tp__em_i64(e, "sched", ci->scheduler);
    tp__em_obj_end(e);
    return true;
}

int
tp__cmd_conns(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct conns c = {.rt = tp_ctx_runtime(ctx), .limit = CONNS_DEFAULT};
    struct tp__em e;

    for (int i = 1; i < argc; i++) {
        const char *v = strcmp(argv[i], "-n") == 0 && i + 1 < argc ? argv[++i]
                        : strncmp(argv[i], "limit=", 6) == 0       ? argv[i] + 6
                                                                   : NULL;
        if (v == NULL || tp__parse_u32(v, 1, CONNS_MAX, &c.limit) != 0)
            return tp__exec_fail(x, -EINVAL, "usage: conns [-n 1..%u]",
                                 CONNS_MAX);
    }
    tp__em_init(&e, &x->out, x->json);
    c.e = &e;
    tp__em_obj_begin(&e, NULL);
    tp__em_arr_begin(&e, "connections");
    tp_net_conn_foreach(tp_ctx_runtime(ctx), conn_row, &c);
    tp__em_arr_end(&e);
    tp__em_u64(&e, "total", c.total);
    tp__em_u64(&e, "shown", c.shown);
    tp__em_obj_end(&e);
    return 0;
}

static bool
listener_row(void *user, const tp_listener_info *li)
{
    struct tp__em *e = user;

    tp__em_obj_begin(e, NULL);
    tp__em_str(e, "name", li->name);
    if (li->path[0] != '\0')
        tp__em_str(e, "address", li->path);
    else
        addr(e, "address", &li->addr);
    tp__em_str(e, "state", li->state);
    tp__em_u64(e, "loops", li->loops);
    tp__em_u64(e, "conns", li->conns);
    tp__em_u64(e, "max_conns", li->max_conns);
    tp__em_u64(e, "accepted", li->accepted);
    tp__em_u64(e, "refused", li->refused);
    tp__em_u64(e, "errors", li->errors + li->emfile);
    tp__em_obj_end(e);
    return true;
}

int
tp__cmd_listeners(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    struct tp__em e;

    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_arr_begin(&e, "listeners");
    tp_net_listener_foreach(tp_ctx_runtime(ctx), listener_row, &e);
    tp__em_arr_end(&e);
    tp__em_obj_end(&e);
    return 0;
}

int
tp__cmd_drain(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    uint32_t ms = 5000, delay = x->con->opts.drain_delay_ms;
    struct tp__em e;
    int err;

    if ((argc >= 2 && tp__parse_u32(argv[1], 1, 600000, &ms) != 0) ||
        (argc == 3 && tp__parse_u32(argv[2], 0, 600000, &delay) != 0))
        return tp__exec_fail(x, -EINVAL,
                             "usage: drain [TIMEOUT_MS 1..600000 [DELAY_MS "
                             "0..600000]]");
    if ((err = tp__console_drain(ctx, x->con, delay, ms)) != 0)
        return tp__exec_fail(x, err, "%s",
                             err == -EALREADY ? "a drain is already under way"
                                              : tp_strerror(err));
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_str(&e, "drain", delay != 0 ? "announced" : "started");
    tp__em_u64(&e, "delay_ms", delay);
    tp__em_u64(&e, "deadline_ms", ms);
    tp__em_obj_end(&e);
    return 0;
}

/* tls reload LISTENER CERT KEY: new handshakes on that listener use the
 * certificate chain and key read now (a renewed certificate); open
 * connections keep theirs. The files are the console user's to name: the
 * command needs the admin capability. */
int
tp__cmd_tls(tp_ctx *ctx, struct tp__exec *x, int argc, char **argv)
{
    tp_tls_opts o;
    tp_tls_ctx *t;
    struct tp__em e;
    int err;

    if (argc != 5 || strcmp(argv[1], "reload") != 0)
        return tp__exec_fail(x, -EINVAL, "usage: tls reload LISTENER CERT KEY");
    tp_tls_opts_init(&o);
    o.server = true;
    o.verify_peer = false;
    o.cert_file = argv[3];
    o.key_file = argv[4];
    if ((err = tp_tls_ctx_new(&o, &t)) != 0)
        return tp__exec_fail(x, err,
                             "tls: cannot load %.100s / %.100s (see the log)",
                             argv[3], argv[4]);
    err = tp__net_listener_tls_reload(tp_ctx_runtime(ctx), argv[2], t);
    tp_tls_ctx_free(t); /* the listener holds its own reference */
    if (err == -ENOENT)
        return tp__exec_fail(x, err, "no listener %.64s", argv[2]);
    if (err != 0)
        return tp__exec_fail(x, err, "%.64s is not a TLS listener", argv[2]);
    tp__em_init(&e, &x->out, x->json);
    tp__em_obj_begin(&e, NULL);
    tp__em_str(&e, "listener", argv[2]);
    tp__em_str(&e, "reloaded", argv[3]);
    tp__em_obj_end(&e);
    return 0;
}
