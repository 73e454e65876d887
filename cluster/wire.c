/*
 * cluster/wire.c - the frame format between nodes: a fixed 44-byte
 * little-endian header, then the payload. Pure functions (no threads, no
 * NATS) so the decoder can be tested and fuzzed alone. A decoder never
 * trusts a length: every field is checked against the bytes received.
 *
 *   0  u8  magic 0xa7      1 u8 version     2 u8 kind    3 u8 flags
 *   4  u16 sender node id  6 u16 0
 *   8  u32 sender incarnation (low bits)
 *  12  u64 from  20 u64 to  28 u64 ref  36 u32 type  40 u32 len
 */
#include "cluster_int.h"

#include <errno.h>
#include <string.h>

void
tp__wire_put_hdr(unsigned char *out, const struct tp__wire_hdr *h)
{
    out[0] = TP__WIRE_MAGIC;
    out[1] = TP__WIRE_VERSION;
    out[2] = h->kind;
    out[3] = h->flags;
    tp__put16(out + 4, h->node);
    tp__put16(out + 6, 0);
    tp__put32(out + 8, h->incarnation);
    tp__put64(out + 12, h->from);
    tp__put64(out + 20, h->to);
    tp__put64(out + 28, h->ref);
    tp__put32(out + 36, h->type);
    tp__put32(out + 40, h->len);
}

int
tp__wire_next(const void *buf, size_t n, struct tp__wire_hdr *h,
              const unsigned char **payload, size_t *used)
{
    const unsigned char *p = buf;

    if (p == NULL || n < TP__WIRE_HDR || p[0] != TP__WIRE_MAGIC ||
        p[1] != TP__WIRE_VERSION)
        return -EBADMSG;
    h->kind = p[2];
    h->flags = p[3];
    h->node = tp__get16(p + 4);
    h->incarnation = tp__get32(p + 8);
    h->from = tp__get64(p + 12);
    h->to = tp__get64(p + 20);
    h->ref = tp__get64(p + 28);
    h->type = tp__get32(p + 36);
    h->len = tp__get32(p + 40);
    if (h->kind == 0 || h->kind >= TP__W_KIND_MAX || h->node == 0 ||
        h->node > TP_PID_NODE_MAX || (uint64_t)h->len > n - TP__WIRE_HDR)
        return -EBADMSG;
    *payload = p + TP__WIRE_HDR;
    *used = TP__WIRE_HDR + (size_t)h->len;
    return 0;
}

int
tp__wire_get_hdr(const void *buf, size_t n, struct tp__wire_hdr *h,
                 const unsigned char **payload)
{
    size_t used;

    if (tp__wire_next(buf, n, h, payload, &used) != 0 || used != n)
        return -EBADMSG;
    return 0;
}

/* Reason: i32 kind, i32 code, u16 text length, text bytes. */
size_t
tp__wire_reason_size(const tp_exit_reason *r)
{
    size_t t = r->text != NULL ? strlen(r->text) : 0;

    return 10 + (t > 1024 ? 1024 : t);
}

void
tp__wire_put_reason(unsigned char *out, const tp_exit_reason *r)
{
    size_t t = tp__wire_reason_size(r) - 10;

    tp__put32(out, (uint32_t)r->kind);
    tp__put32(out + 4, (uint32_t)r->code);
    tp__put16(out + 8, (uint16_t)t);
    if (t != 0)
        memcpy(out + 10, r->text, t);
}

int
tp__wire_get_reason(const unsigned char *p, size_t n, tp_exit_reason *r,
                    size_t *text_len)
{
    uint32_t kind;
    size_t t;

    if (n < 10)
        return -EBADMSG;
    kind = tp__get32(p);
    t = tp__get16(p + 8);
    if (kind > TP_EXIT_NOCONNECTION || t != n - 10)
        return -EBADMSG;
    r->kind = (tp_exit_kind)kind;
    r->code = (int)tp__get32(p + 4);
    r->text = t != 0 ? (const char *)p + 10 : NULL;
    *text_len = t;
    return 0;
}

bool
tp__wire_name_ok(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return false;
    for (const char *c = name; *c != '\0'; c++, n++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                  *c == '@';
        if (!ok)
            return false;
    }
    return n >= 1 && n <= TP_NODE_NAME_MAX;
}

/* Node info: u64 incarnation, u32 id, u8 name length, name bytes; then,
 * from nodes with direct links, u32 IPv4, u16 port, u64 token (a node
 * info without them is a node without links). */
size_t
tp__wire_node_size(const struct tp__wire_node *w)
{
    return 13 + strlen(w->name) + (w->has_link ? 14 : 0);
}

void
tp__wire_put_node(unsigned char *out, const struct tp__wire_node *w)
{
    size_t n = strlen(w->name);

    tp__put64(out, w->incarnation);
    tp__put32(out + 8, w->id);
    out[12] = (unsigned char)n;
    memcpy(out + 13, w->name, n);
    if (w->has_link) {
        tp__put32(out + 13 + n, w->link_ip);
        tp__put16(out + 17 + n, w->link_port);
        tp__put64(out + 19 + n, w->link_token);
    }
}

int
tp__wire_get_node(const unsigned char *p, size_t n, struct tp__wire_node *w)
{
    size_t len;

    if (n < 13)
        return -EBADMSG;
    len = p[12];
    if ((len != n - 13 && len + 14 != n - 13) || len > TP_NODE_NAME_MAX ||
        memchr(p + 13, '\0', len) != NULL) /* the name is all of len */
        return -EBADMSG;
    w->incarnation = tp__get64(p);
    w->id = tp__get32(p + 8);
    memcpy(w->name, p + 13, len);
    w->name[len] = '\0';
    w->has_link = len + 14 == n - 13;
    w->link_ip = w->has_link ? tp__get32(p + 13 + len) : 0;
    w->link_port = w->has_link ? tp__get16(p + 17 + len) : 0;
    w->link_token = w->has_link ? tp__get64(p + 19 + len) : 0;
    if (w->id == 0 || w->id > TP_PID_NODE_MAX || !tp__wire_name_ok(w->name) ||
        (w->has_link && (w->link_port == 0 || w->link_ip == 0)))
        return -EBADMSG;
    return 0;
}
