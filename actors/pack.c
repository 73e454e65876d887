/*
 * actors/pack.c - building MessagePack payloads (tp_pack) and sending
 * them.
 *
 * The encoder is Troupe's own (no third-party type in troupe/pack.h, so
 * tp_pack's layout is Troupe's ABI alone): every value takes the smallest
 * MessagePack form, as msgpack-c's packer writes it. Bytes go into the
 * builder's buffer, which starts inline (TP_PACK_INLINE bytes, so a small
 * payload built on the stack allocates nothing) and grows through the
 * replaceable allocator. The builder also keeps count of the values each
 * open container still expects, so an incomplete payload is refused before
 * it is sent rather than rejected by its receiver.
 */
#include "actor_int.h"
#include "pack_int.h"

#include <errno.h>
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

/* A type byte followed by the n low bytes of v, big-endian. */
static int
put_be(tp_pack *p, uint8_t type, uint64_t v, unsigned n)
{
    uint8_t b[9];

    b[0] = type;
    for (unsigned i = 0; i < n; i++)
        b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return put(p, b, 1 + n);
}

/* ---------------------------------------------------------------------- */
/* Encodings (the smallest form of each value)                            */

static int
enc_uint(tp_pack *p, uint64_t v)
{
    if (v <= 0x7f)
        return put_be(p, (uint8_t)v, 0, 0); /* positive fixint */
    if (v <= 0xff)
        return put_be(p, 0xcc, v, 1);
    if (v <= 0xffff)
        return put_be(p, 0xcd, v, 2);
    if (v <= 0xffffffffu)
        return put_be(p, 0xce, v, 4);
    return put_be(p, 0xcf, v, 8);
}

/* A value >= 0 takes an unsigned form (as msgpack-c writes it). */
static int
enc_int(tp_pack *p, int64_t v)
{
    if (v >= 0)
        return enc_uint(p, (uint64_t)v);
    if (v >= -32)
        return put_be(p, (uint8_t)(int8_t)v, 0, 0); /* negative fixint */
    if (v >= INT8_MIN)
        return put_be(p, 0xd0, (uint64_t)v, 1);
    if (v >= INT16_MIN)
        return put_be(p, 0xd1, (uint64_t)v, 2);
    if (v >= INT32_MIN)
        return put_be(p, 0xd2, (uint64_t)v, 4);
    return put_be(p, 0xd3, (uint64_t)v, 8);
}

static int
enc_float(tp_pack *p, float v)
{
    uint32_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return put_be(p, 0xca, bits, 4);
}

static int
enc_double(tp_pack *p, double v)
{
    uint64_t bits;

    memcpy(&bits, &v, sizeof(bits));
    return put_be(p, 0xcb, bits, 8);
}

/* The header of a length-prefixed form: fix (OR-ed with n) while n <
 * fixn, else the first of t8/t16/t32 wide enough (t8 0: no 8-bit form). */
static int
enc_len(tp_pack *p, uint32_t n, uint8_t fix, uint32_t fixn, uint8_t t8,
        uint8_t t16, uint8_t t32)
{
    if (n < fixn)
        return put_be(p, (uint8_t)(fix | n), 0, 0);
    if (t8 != 0 && n <= 0xff)
        return put_be(p, t8, n, 1);
    if (n <= 0xffff)
        return put_be(p, t16, n, 2);
    return put_be(p, t32, n, 4);
}

static int
enc_str(tp_pack *p, const void *s, uint32_t n)
{
    int err = enc_len(p, n, 0xa0, 32, 0xd9, 0xda, 0xdb);

    return err != 0 ? err : put(p, s, n);
}

static int
enc_bin(tp_pack *p, const void *b, uint32_t n)
{
    int err = enc_len(p, n, 0, 0, 0xc4, 0xc5, 0xc6);

    return err != 0 ? err : put(p, b, n);
}

/* fixext 1/2/4/8/16 (0xd4..0xd8) for those sizes, else ext 8/16/32; the
 * application type byte follows the size. */
static int
enc_ext_head(tp_pack *p, uint8_t t, uint32_t n)
{
    switch (n) {
    case 1:
        return put_be(p, 0xd4, t, 1);
    case 2:
        return put_be(p, 0xd5, t, 1);
    case 4:
        return put_be(p, 0xd6, t, 1);
    case 8:
        return put_be(p, 0xd7, t, 1);
    case 16:
        return put_be(p, 0xd8, t, 1);
    default:
        break;
    }
    if (n <= 0xff)
        return put_be(p, 0xc7, (uint64_t)n << 8 | t, 2);
    if (n <= 0xffff)
        return put_be(p, 0xc8, (uint64_t)n << 8 | t, 3);
    return put_be(p, 0xc9, (uint64_t)n << 8 | t, 5);
}

static int
enc_ext(tp_pack *p, int8_t type, const void *b, uint32_t n)
{
    int err = enc_ext_head(p, (uint8_t)type, n);

    return err != 0 ? err : put(p, b, n);
}

static int
enc_array(tp_pack *p, uint32_t n)
{
    return enc_len(p, n, 0x90, 16, 0, 0xdc, 0xdd);
}

static int
enc_map(tp_pack *p, uint32_t n)
{
    return enc_len(p, n, 0x80, 16, 0, 0xde, 0xdf);
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
    return value_begin(p) ? p->err : wrote(p, put_be(p, 0xc0, 0, 0));
}

int
tp_pack_bool(tp_pack *p, bool v)
{
    if (value_begin(p) != 0)
        return p->err;
    return wrote(p, put_be(p, v ? 0xc3 : 0xc2, 0, 0));
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
        return put_be(p, 0xc0, 0, 0);
    case TP_VALUE_BOOL:
        return put_be(p, o->via.boolean ? 0xc3 : 0xc2, 0, 0);
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
