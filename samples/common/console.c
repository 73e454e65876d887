/*
 * samples/common/console.c - the admin console of the samples: a Unix
 * socket for troupectl (--console PATH) and the HTTP port with metrics
 * and the dashboard (--http-port N), both through tp_console_start().
 */
#include "sample.h"

#include <errno.h>
#include <stdio.h>
#include <troupe/console.h>

int
sample_console_start(tp_runtime *rt, struct sample_opts *o)
{
    tp_console_opts co;
    char what[128];
    int err;

    o->cons = NULL;
    if (o->console == NULL && o->http_port < 0)
        return 0;
    tp_console_opts_init(&co);
    co.unix_path = o->console;
    co.http_port = o->http_port;
    err = tp_console_start(rt, &co, &o->cons);
    if (err != 0)
        return sample_fail(o, "admin console", err);
    if (o->console != NULL)
        sample_ready("console", o->console);
    if (o->http_port >= 0) {
        snprintf(what, sizeof what, "http://127.0.0.1:%d/",
                 tp_console_http_port(o->cons));
        sample_ready("dashboard", what);
    }
    return 0;
}

void
sample_console_stop(struct sample_opts *o)
{
    tp_console_stop(o->cons);
    o->cons = NULL;
}

int
sample_console_http_port(const struct sample_opts *o)
{
    return o->cons != NULL ? tp_console_http_port(o->cons) : -1;
}
