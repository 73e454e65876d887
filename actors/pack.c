/*
 * actors/pack.c - building MessagePack payloads (tp_pack) and sending
 * them.
 *
 * msgpack-c's packer does the encoding, set up on the stack for each call
 * and writing through our callback, so no msgpack-c type is part of
 * troupe/pack.h and tp_pack's layout is Troupe's ABI alone. Bytes go into the
 * builder's buffer, which starts inline (TP_PACK_INLINE bytes, so a small
 * payload built on the stack allocates nothing) and grows through the
 * replaceable allocator. The builder also keeps count of the values each
 * open container still expects, so an incomplete payload is refused before
 * it is sent rather than rejected by its receiver.
 */
#include "actor_int.h"
#include "pack_int.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

/* The size of tp_pack is part of the ABI: a change must be deliberate
 * (reserved[] is there to absorb new private fields). */
_Static_assert(sizeof(void *) != 8 || sizeof(tp_pack) == 464,
               "sizeof(tp_pack) changed: an ABI break");

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

/* Appends n bytes. Returns 0 or the (sticky) error. */
static int
put(tp_pack *p, const void *b, size_t n)
{
    size_t need = p->len + n;

    if (p->err != 0)
        return p->err;
    if (n == 0)
        return 0; /* an empty body: b may be NULL */
    if (b == NULL)
        return p->err = -EINVAL; /* a tp_value with a NULL body */
    if (need > p->max || need < n)
        return p->err = -EMSGSIZE;
    if (need > p->cap && (p->err = grow(p, need)) != 0)
        return p->err;
    memcpy(p->buf + p->len, b, n);
    p->len = need;
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Encodings: msgpack-c's packer, which writes the smallest form of each  */
/* value. It lives on the stack for one call (two pointers), so nothing  */
/* of msgpack-c is part of tp_pack and a copied builder stays valid.     */

static int
pack_write(void *data, const char *buf, size_t len)
{
    return put(data, buf, len) == 0 ? 0 : -1;
}

#define WITH_PACKER(p, call)                                                   \
    do {                                                                       \
        msgpack_packer pk_;                                                    \
        msgpack_packer_init(&pk_, (p), pack_write);                            \
        if ((call) != 0)                                                       \
            return (p)->err != 0 ? (p)->err : ((p)->err = -ENOMEM);            \
        return 0;                                                              \
    } while (0)

static int
enc_nil(tp_pack *p)
{
    WITH_PACKER(p, msgpack_pack_nil(&pk_));
}

static int
enc_bool(tp_pack *p, bool v)
{
    WITH_PACKER(p, v ? msgpack_pack_true(&pk_) : msgpack_pack_false(&pk_));
}

static int
enc_uint(tp_pack *p, uint64_t v)
{
    WITH_PACKER(p, msgpack_pack_uint64(&pk_, v));
}

static int
enc_int(tp_pack *p, int64_t v)
{
    WITH_PACKER(p, msgpack_pack_int64(&pk_, v));
}

static int
enc_float(tp_pack *p, float v)
{
    WITH_PACKER(p, msgpack_pack_float(&pk_, v));
}

static int
enc_double(tp_pack *p, double v)
{
    WITH_PACKER(p, msgpack_pack_double(&pk_, v));
}

static int
enc_str(tp_pack *p, const void *s, uint32_t n)
{
    WITH_PACKER(p,
                msgpack_pack_str(&pk_, n) || msgpack_pack_str_body(&pk_, s, n));
}

static int
enc_bin(tp_pack *p, const void *b, uint32_t n)
{
    WITH_PACKER(p,
                msgpack_pack_bin(&pk_, n) || msgpack_pack_bin_body(&pk_, b, n));
}

static int
enc_ext(tp_pack *p, int8_t type, const void *b, uint32_t n)
{
    WITH_PACKER(p, msgpack_pack_ext(&pk_, n, type) ||
                       msgpack_pack_ext_body(&pk_, b, n));
}

static int
enc_array(tp_pack *p, uint32_t n)
{
    WITH_PACKER(p, msgpack_pack_array(&pk_, n));
}

static int
enc_map(tp_pack *p, uint32_t n)
{
    WITH_PACKER(p, msgpack_pack_map(&pk_, n));
}

void
tp_pack_init(tp_pack *p)
{
    p->buf = p->inline_buf;
    p->cap = sizeof(p->inline_buf);
    p->max = TP_PACK_MAX_SIZE;
    memset(p->reserved, 0, sizeof(p->reserved));
    tp_pack_reset(p);
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

/* Accounts for a value just written (rc: the encoder's result). */
static int
wrote(tp_pack *p, int rc)
{
    if (rc != 0 && p->err == 0)
        p->err = rc;
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
        p->err = rc;
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
    return value_begin(p) ? p->err : wrote(p, enc_nil(p));
}

int
tp_pack_bool(tp_pack *p, bool v)
{
    if (value_begin(p) != 0)
        return p->err;
    return wrote(p, enc_bool(p, v));
}

int
tp_pack_int(tp_pack *p, int64_t v)
{
    return value_begin(p) ? p->err : wrote(p, enc_int(p, v));
}

int
tp_pack_uint(tp_pack *p, uint64_t v)
{
    return value_begin(p) ? p->err : wrote(p, enc_uint(p, v));
}

int
tp_pack_float(tp_pack *p, float v)
{
    return value_begin(p) ? p->err : wrote(p, enc_float(p, v));
}

int
tp_pack_double(tp_pack *p, double v)
{
    return value_begin(p) ? p->err : wrote(p, enc_double(p, v));
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
    return wrote(p, enc_str(p, s, (uint32_t)len));
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
    return wrote(p, enc_bin(p, data, (uint32_t)len));
}

int
tp_pack_ext(tp_pack *p, int8_t type, const void *data, size_t len)
{
    if (body_begin(p, data, len) != 0)
        return p->err;
    return wrote(p, enc_ext(p, type, data, (uint32_t)len));
}

int
tp_pack_array(tp_pack *p, uint32_t n)
{
    if (container_begin(p, n) != 0)
        return p->err;
    return container(p, n, enc_array(p, n));
}

int
tp_pack_map(tp_pack *p, uint32_t n)
{
    if (container_begin(p, 2ull * n) != 0)
        return p->err;
    return container(p, 2ull * n, enc_map(p, n));
}

static int enc_value(tp_pack *p, const tp_value *o);

static int
enc_children(tp_pack *p, const tp_value *o)
{
    int err = 0;

    if (o->type == TP_VALUE_ARRAY) {
        err = enc_array(p, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size && err == 0; i++)
            err = enc_value(p, &o->via.array.ptr[i]);
        return err;
    }
    err = enc_map(p, o->via.map.size);
    for (uint32_t i = 0; i < o->via.map.size && err == 0; i++)
        if ((err = enc_value(p, &o->via.map.ptr[i].key)) == 0)
            err = enc_value(p, &o->via.map.ptr[i].val);
    return err;
}

/* A whole tree (its depth is the caller's: a decoded one is <= 32). */
static int
enc_value(tp_pack *p, const tp_value *o)
{
    switch (o->type) {
    case TP_VALUE_NIL:
        return enc_nil(p);
    case TP_VALUE_BOOL:
        return enc_bool(p, o->via.boolean);
    case TP_VALUE_UINT:
        return enc_uint(p, o->via.u64);
    case TP_VALUE_INT:
        return enc_int(p, o->via.i64);
    case TP_VALUE_FLOAT32:
        return enc_float(p, (float)o->via.f64);
    case TP_VALUE_FLOAT64:
        return enc_double(p, o->via.f64);
    case TP_VALUE_STR:
        return enc_str(p, o->via.str.ptr, o->via.str.size);
    case TP_VALUE_BIN:
        return enc_bin(p, o->via.bin.ptr, o->via.bin.size);
    case TP_VALUE_EXT:
        return enc_ext(p, o->via.ext.type, o->via.ext.ptr, o->via.ext.size);
    case TP_VALUE_ARRAY:
    case TP_VALUE_MAP:
        return enc_children(p, o);
    default:
        return p->err = -EINVAL;
    }
}

int
tp_pack_object(tp_pack *p, const tp_value *o)
{
    if (value_begin(p) != 0)
        return p->err;
    if (o == NULL)
        return p->err = -EINVAL;
    return wrote(p, enc_value(p, o));
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
