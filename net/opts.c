/*
 * net/opts.c - option defaults and validation (pure functions).
 */
#include "net_int.h"

#include <errno.h>
#include <string.h>

#define KIB 1024u
#define MIB (1024u * 1024u)

void
tp_conn_opts_init(tp_conn_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->read_mode = TP_READ_ACTIVE;
    o->read_chunk = 64 * KIB;
    o->read_high = 256 * KIB;
    o->read_low = 64 * KIB;
    o->mailbox_high = 64;
    o->mailbox_low = 16;
    o->write_high = 256 * KIB;
    o->write_low = 64 * KIB;
    o->write_limit = 8 * MIB;
    o->read_pause_on_write_high = true;
    o->linger_ms = 2000;
    o->nodelay = true;
}

void
tp_listen_opts_init(tp_listen_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->backlog = 1024;
    o->emfile_backoff_ms = 100;
    o->exit_on_close = true;
    o->scheduler = -1;
    tp_conn_opts_init(&o->conn);
}

void
tp_connect_opts_init(tp_connect_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->timeout_ms = 5000;
    tp_conn_opts_init(&o->conn);
}

int
tp__conn_opts_check(const tp_conn_opts *o)
{
    if (o->read_mode != TP_READ_ACTIVE && o->read_mode != TP_READ_ONCE &&
        o->read_mode != TP_READ_PASSIVE)
        return -EINVAL;
    if (o->read_chunk == 0 || o->read_chunk > 64 * KIB)
        return -EINVAL;
    if (o->send_buffer > 64 * MIB)
        return -EINVAL;
    /* rxq holds 30 bits of bytes: high mark plus one chunk must fit. */
    if (o->read_high == 0 || o->read_low > o->read_high ||
        o->read_high > 512 * MIB)
        return -EINVAL;
    if (o->mailbox_high == 0 || o->mailbox_low > o->mailbox_high)
        return -EINVAL;
    if (o->write_low > o->write_high || o->write_high > o->write_limit ||
        o->write_limit == 0 || o->write_limit > 1024 * MIB)
        return -EINVAL;
    return 0;
}
