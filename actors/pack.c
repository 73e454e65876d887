/*
 * actors/pack.c - building MessagePack payloads (tp_pack) and sending
 * them.
 *
 * msgpack-c's packer does the encoding; it writes through our callback
 * into the builder's buffer, which starts inline (TP_PACK_INLINE bytes,
 * so a small payload built on the stack allocates nothing) and grows
 * through the replaceable allocator. The builder also keeps count of the
 * values each open container still expects, so an incomplete payload is
 * refused before it is sent rather than rejected by its receiver.
 */
#include "actor_int.h"
#include "pack_int.h"

#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* Buffer                                                                  */

static int
grow(tp_pack *p, size_t need)
{
    size_t cap = p->cap * 2;
    char *nb;

    if (cap < need)
        cap = need;
    if (cap > p->max)
        cap = p->max;
    nb = p->buf == p->inline_buf ? tp__malloc(cap) : tp__realloc(p->buf, cap);
    if (nb == NULL)
        return -ENOMEM;
    if (p->buf == p->inline_buf)
        memcpy(nb, p->buf, p->len);
    p->buf = nb;
    p->cap = cap;
    return 0;
}

/* msgpack_packer's write callback. */
static int
pack_write(void *data, const char *buf, size_t len)
{
    tp_pack *p = data;
    size_t need = p->len + len;

    if (p->err != 0)
        return -1;
    if (len == 0)
        return 0; /* an empty body: buf may be NULL */
    if (need > p->max || need < len) {
        p->err = -EMSGSIZE;
        return -1;
    }
    if (need > p->cap && (p->err = grow(p, need)) != 0)
        return -1;
    memcpy(p->buf + p->len, buf, len);
    p->len = need;
    return 0;
}

void
tp_pack_init(tp_pack *p)
{
    p->buf = p->inline_buf;
    p->cap = sizeof(p->inline_buf);
    p->max = TP_PACK_MAX_SIZE;
    tp_pack_reset(p);
    msgpack_packer_init(&p->pk, p, pack_write);
}

int
tp_pack_set_max(tp_pack *p, size_t max)
{
    if (max == 0 || max > (size_t)INT32_MAX || max < p->len)
        return -EINVAL;
    p->max = max;
    return 0;
}

void
tp_pack_reset(tp_pack *p)
{
    p->len = 0;
    p->err = 0;
    p->depth = 0;
    p->done = 0;
    p->left[0] = 1; /* the top-level value */
}

void
tp_pack_fini(tp_pack *p)
{
    if (p->buf != p->inline_buf)
        tp__free(p->buf);
    p->buf = p->inline_buf;
    p->cap = sizeof(p->inline_buf);
    p->len = 0;
}

/* ---------------------------------------------------------------------- */
/* Structure: values each open container still expects                    */

/* Before a value: is one due? */
static int
value_begin(tp_pack *p)
{
    if (p->err != 0)
        return p->err;
    if (p->done) {
        p->err = -EINVAL; /* a payload holds one top-level value */
        return p->err;
    }
    return 0;
}

/* Closes the levels whose values are all there. */
static void
levels_close(tp_pack *p)
{
    while (p->depth > 0 && p->left[p->depth] == 0)
        p->depth--;
    if (p->depth == 0 && p->left[0] == 0)
        p->done = 1;
}

/* Accounts for a scalar just written (rc: the packer's result). */
static int
wrote(tp_pack *p, int rc)
{
    if (rc != 0 && p->err == 0)
        p->err = -ENOMEM; /* the packer failed without telling us why */
    if (p->err != 0)
        return p->err;
    p->left[p->depth]--;
    levels_close(p);
    return 0;
}

/* Accounts for a container header just written: it is a value of the
 * enclosing level, which stays open until the container's own `items`
 * values are there (so depth is the true nesting). */
static int
container(tp_pack *p, uint64_t items, int rc)
{
    if (rc != 0 && p->err == 0)
        p->err = -ENOMEM;
    if (p->err != 0)
        return p->err;
    p->left[p->depth]--;
    if (items == 0)
        levels_close(p);
    else
        p->left[++p->depth] = (uint32_t)items;
    return 0;
}

static int
container_begin(tp_pack *p, uint64_t items)
{
    int err = value_begin(p);

    if (err != 0)
        return err;
    if (items > p->max - p->len) /* each element takes a byte at least */
        return p->err = -EMSGSIZE;
    if (p->depth >= TP_PACK_MAX_DEPTH)
        return p->err = -E2BIG;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Values                                                                  */

int
tp_pack_nil(tp_pack *p)
{
    return value_begin(p) ? p->err : wrote(p, msgpack_pack_nil(&p->pk));
}

int
tp_pack_bool(tp_pack *p, bool v)
{
    if (value_begin(p) != 0)
        return p->err;
    return wrote(p, v ? msgpack_pack_true(&p->pk) : msgpack_pack_false(&p->pk));
}

int
tp_pack_int(tp_pack *p, int64_t v)
{
    return value_begin(p) ? p->err : wrote(p, msgpack_pack_int64(&p->pk, v));
}

int
tp_pack_uint(tp_pack *p, uint64_t v)
{
    return value_begin(p) ? p->err : wrote(p, msgpack_pack_uint64(&p->pk, v));
}

int
tp_pack_float(tp_pack *p, float v)
{
    return value_begin(p) ? p->err : wrote(p, msgpack_pack_float(&p->pk, v));
}

int
tp_pack_double(tp_pack *p, double v)
{
    return value_begin(p) ? p->err : wrote(p, msgpack_pack_double(&p->pk, v));
}

/* Checks a body argument; the sticky error on failure. */
static int
body_begin(tp_pack *p, const void *data, size_t len)
{
    if (value_begin(p) != 0)
        return p->err;
    if (data == NULL && len != 0)
        return p->err = -EINVAL;
    if (len > p->max)
        return p->err = -EMSGSIZE; /* also keeps len below 2^32 */
    return 0;
}

int
tp_pack_str(tp_pack *p, const char *s, size_t len)
{
    if (body_begin(p, s, len) != 0)
        return p->err;
    return wrote(p, msgpack_pack_str_with_body(&p->pk, s, len));
}

int
tp_pack_cstr(tp_pack *p, const char *s)
{
    if (s == NULL) {
        if (value_begin(p) == 0)
            p->err = -EINVAL;
        return p->err;
    }
    return tp_pack_str(p, s, strlen(s));
}

int
tp_pack_bin(tp_pack *p, const void *data, size_t len)
{
    if (body_begin(p, data, len) != 0)
        return p->err;
    return wrote(p, msgpack_pack_bin_with_body(&p->pk, data, len));
}

int
tp_pack_ext(tp_pack *p, int8_t type, const void *data, size_t len)
{
    if (body_begin(p, data, len) != 0)
        return p->err;
    return wrote(p, msgpack_pack_ext_with_body(&p->pk, data, len, type));
}

int
tp_pack_array(tp_pack *p, uint32_t n)
{
    if (container_begin(p, n) != 0)
        return p->err;
    return container(p, n, msgpack_pack_array(&p->pk, n));
}

int
tp_pack_map(tp_pack *p, uint32_t n)
{
    if (container_begin(p, 2ull * n) != 0)
        return p->err;
    return container(p, 2ull * n, msgpack_pack_map(&p->pk, n));
}

int
tp_pack_object(tp_pack *p, const msgpack_object *o)
{
    if (value_begin(p) != 0)
        return p->err;
    if (o == NULL)
        return p->err = -EINVAL;
    return wrote(p, msgpack_pack_object(&p->pk, *o));
}

/* ---------------------------------------------------------------------- */
/* Results and sending                                                     */

int
tp_pack_status(const tp_pack *p)
{
    if (p->err != 0)
        return p->err;
    return p->done ? 0 : -EINVAL;
}

const void *
tp_pack_data(const tp_pack *p)
{
    return p->buf;
}

size_t
tp_pack_len(const tp_pack *p)
{
    return p->len;
}

int
tp_send_packed(tp_ctx *ctx, tp_pid to, uint32_t type, const tp_pack *p)
{
    int err = tp_pack_status(p);

    return err != 0 ? err : tp_send(ctx, to, type, p->buf, p->len);
}

int
tp_runtime_send_packed(tp_runtime *rt, tp_pid to, uint32_t type,
                       const tp_pack *p)
{
    int err = tp_pack_status(p);

    return err != 0 ? err : tp_runtime_send(rt, to, type, p->buf, p->len);
}

int
tp_request_packed(tp_ctx *ctx, tp_pid to, uint32_t type, const tp_pack *p,
                  uint32_t timeout_ms, uint64_t *ref)
{
    int err = tp_pack_status(p);

    if (err != 0)
        return err;
    return tp_request(ctx, to, type, p->buf, p->len, timeout_ms, ref);
}

int
tp_reply_packed(tp_ctx *ctx, const tp_msg *request, const tp_pack *p)
{
    int err = tp_pack_status(p);

    return err != 0 ? err : tp_reply(ctx, request, p->buf, p->len);
}

tp_blob *
tp_pack_blob(const tp_pack *p)
{
    return tp_pack_status(p) == 0 ? tp_blob_new(p->buf, p->len) : NULL;
}
