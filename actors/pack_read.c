/*
 * actors/pack_read.c - the bounded MessagePack reader: header parser,
 * non-allocating validation scan, and a decoder into tp_value nodes taken
 * from a reusable arena.
 *
 * Why not msgpack_unpack(): msgpack-c reserves what a container announces
 * before it has seen the elements (a 5-byte array32 header can ask for
 * gigabytes), reports nesting beyond 32 as out of memory, and allocates
 * its zone with plain malloc, behind Troupe's replaceable allocator. Here
 * the scan proves the payload well-formed and within limits first and
 * computes exactly how much tp_value storage it needs; the decoder then
 * takes that from an arena that is kept between payloads (one per
 * scheduler for tp_unpack()), so a steady stream of messages decodes
 * without allocating. The output is Troupe's own tp_value (troupe/pack.h
 * names no third-party type).
 */
#include "actor_int.h"
#include "pack_int.h"

#include <errno.h>
#include <string.h>

/* An arena above this size is shrunk when a smaller payload follows. */
#define ARENA_KEEP (64u * 1024u)
#define ARENA_MIN  1024u

/* ---------------------------------------------------------------------- */
/* Headers                                                                 */

static uint64_t
be_read(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static int64_t
be_read_signed(const uint8_t *p, unsigned n)
{
    uint64_t v = be_read(p, n);
    unsigned shift = 64 - 8 * n;

    /* Sign-extend through the top bits (n is 1, 2, 4 or 8: the form table
     * says so; the guard keeps every shift defined regardless). */
    if (n == 0 || n >= 8)
        return (int64_t)v;
    return (int64_t)(v << shift) >> shift;
}

static double
float_read(const uint8_t *p, unsigned n)
{
    uint64_t bits = be_read(p, n);
    uint32_t b32 = (uint32_t)bits;
    float f;
    double d;

    if (n == 4) {
        memcpy(&f, &b32, sizeof(f));
        return f;
    }
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* Type bytes 0xc0..0xdf: kind, bytes of the field after the type byte
 * (length, count or value), and the body length of fixext. */
struct ctype {
    uint8_t kind, n, fixed;
};

#define BAD 0xff
static const struct ctype ctab[32] = {
    {TP__MP_NIL, 0, 0},  {BAD, 0, 0},          {TP__MP_BOOL, 0, 0},
    {TP__MP_BOOL, 0, 1}, {TP__MP_BIN, 1, 0},   {TP__MP_BIN, 2, 0},
    {TP__MP_BIN, 4, 0},  {TP__MP_EXT, 1, 0},   {TP__MP_EXT, 2, 0},
    {TP__MP_EXT, 4, 0},  {TP__MP_F32, 4, 0},   {TP__MP_F64, 8, 0},
    {TP__MP_UINT, 1, 0}, {TP__MP_UINT, 2, 0},  {TP__MP_UINT, 4, 0},
    {TP__MP_UINT, 8, 0}, {TP__MP_INT, 1, 0},   {TP__MP_INT, 2, 0},
    {TP__MP_INT, 4, 0},  {TP__MP_INT, 8, 0},   {TP__MP_EXT, 0, 1},
    {TP__MP_EXT, 0, 2},  {TP__MP_EXT, 0, 4},   {TP__MP_EXT, 0, 8},
    {TP__MP_EXT, 0, 16}, {TP__MP_STR, 1, 0},   {TP__MP_STR, 2, 0},
    {TP__MP_STR, 4, 0},  {TP__MP_ARRAY, 2, 0}, {TP__MP_ARRAY, 4, 0},
    {TP__MP_MAP, 2, 0},  {TP__MP_MAP, 4, 0},
};

/* The one-byte forms: fixint, fixmap, fixarray, fixstr, negative fixint. */
static int
head_fix(uint8_t b, struct tp__mp_head *h)
{
    if (b <= 0x7f) {
        h->kind = TP__MP_UINT;
        h->u = b;
    } else if (b <= 0x8f) {
        h->kind = TP__MP_MAP;
        h->u = b & 0x0fu;
    } else if (b <= 0x9f) {
        h->kind = TP__MP_ARRAY;
        h->u = b & 0x0fu;
    } else if (b <= 0xbf) {
        h->kind = TP__MP_STR;
        h->u = b & 0x1fu;
    } else {
        h->kind = TP__MP_INT;
        h->i = (int64_t)b - 256; /* negative fixint 0xe0..0xff: -32..-1 */
    }
    return 1;
}

/* The forms with a field after the type byte (0xc0..0xdf). */
static int
head_ext(const uint8_t *p, const uint8_t *end, struct tp__mp_head *h)
{
    struct ctype c = ctab[p[0] - 0xc0];
    size_t hlen = 1u + c.n + (c.kind == TP__MP_EXT);

    if (c.kind == BAD)
        return -EBADMSG;
    if ((size_t)(end - p) < hlen)
        return -ENODATA;
    h->kind = c.kind;
    if (c.kind == TP__MP_BOOL || c.kind == TP__MP_NIL)
        h->u = c.fixed;
    else if (c.kind == TP__MP_INT)
        h->i = be_read_signed(p + 1, c.n);
    else if (c.kind == TP__MP_F32 || c.kind == TP__MP_F64)
        h->f = float_read(p + 1, c.n);
    else
        h->u = c.n != 0 ? be_read(p + 1, c.n) : c.fixed;
    if (c.kind == TP__MP_EXT)
        h->ext = (int8_t)p[1 + c.n];
    return (int)hlen;
}

int
tp__mp_head(const uint8_t *p, const uint8_t *end, struct tp__mp_head *h)
{
    if (p[0] < 0xc0 || p[0] >= 0xe0)
        return head_fix(p[0], h);
    return head_ext(p, end, h);
}

/* ---------------------------------------------------------------------- */
/* Validation scan                                                         */

void
tp_unpack_limits_init(tp_unpack_limits *lim)
{
    lim->max_size = TP_PACK_MAX_SIZE;
    lim->max_depth = TP_PACK_MAX_DEPTH;
}

static int
limits_ok(const tp_unpack_limits *lim)
{
    return lim->max_size != 0 && lim->max_depth >= 1 &&
           lim->max_depth <= TP_PACK_MAX_DEPTH;
}

struct scan {
    const uint8_t *p, *end;
    size_t need;
    unsigned depth, max_depth;
    uint64_t left[TP_PACK_MAX_DEPTH + 1]; /* values still due per level */
};

/* Accounts for a container header: its elements must fit in the bytes
 * left (each takes at least one), and it must not nest too deep. */
static int
scan_container(struct scan *s, const struct tp__mp_head *h)
{
    bool map = h->kind == TP__MP_MAP;
    uint64_t items = map ? 2 * h->u : h->u; /* u < 2^32: no overflow */

    if (items > (uint64_t)(s->end - s->p))
        return -EBADMSG;
    if (s->depth + 1 > s->max_depth)
        return -E2BIG;
    s->need += (size_t)h->u * (map ? sizeof(tp_value_kv) : sizeof(tp_value));
    if (items != 0)
        s->left[++s->depth] = items;
    return 0;
}

/* Scans one value's header (and skips its body). */
static int
scan_one(struct scan *s)
{
    struct tp__mp_head h;
    int n = tp__mp_head(s->p, s->end, &h);

    if (n < 0)
        return -EBADMSG; /* reserved byte or cut short: malformed */
    s->p += n;
    if (tp__mp_has_body(&h)) {
        if (h.u > (uint64_t)(s->end - s->p))
            return -EBADMSG;
        s->p += h.u;
        return 0;
    }
    if (h.kind == TP__MP_ARRAY || h.kind == TP__MP_MAP)
        return scan_container(s, &h);
    return 0;
}

int
tp__mp_scan(const uint8_t *p, size_t len, const tp_unpack_limits *lim,
            size_t *need)
{
    struct scan s = {.p = p, .end = p + len, .max_depth = lim->max_depth};
    int err;

    if (len > lim->max_size)
        return -EMSGSIZE;
    s.left[0] = 1; /* the top-level value */
    while (s.left[s.depth] != 0) {
        if (s.p == s.end)
            return -EBADMSG; /* values still due: cut short */
        s.left[s.depth]--;
        if ((err = scan_one(&s)) != 0)
            return err;
        while (s.depth > 0 && s.left[s.depth] == 0)
            s.depth--;
    }
    if (s.p != s.end)
        return -EBADMSG; /* bytes after the value */
    *need = s.need;
    return 0;
}

int
tp_pack_check(const void *data, size_t len, const tp_unpack_limits *lim)
{
    tp_unpack_limits def;
    size_t need;

    if (lim == NULL) {
        tp_unpack_limits_init(&def);
        lim = &def;
    }
    if (!limits_ok(lim) || (data == NULL && len != 0))
        return -EINVAL;
    return tp__mp_scan(data != NULL ? data : (const void *)"", len, lim, &need);
}

/* ---------------------------------------------------------------------- */
/* Decoding (of a payload the scan accepted)                               */

struct tp_unpacker {
    struct tp__ctx_svc svc; /* first: a ctx's decoder is freed through it */
    tp_unpack_limits lim;
    char *arena;
    size_t cap;  /* bytes of arena */
    size_t used; /* bytes handed out by the current read */
};

static void *
arena_take(tp_unpacker *u, size_t n)
{
    void *p = u->arena + u->used;

    u->used += n; /* the scan sized the arena: always fits */
    return p;
}

static const uint8_t *decode(tp_unpacker *u, const uint8_t *p,
                             const uint8_t *end, tp_value *o);

static const uint8_t *
decode_array(tp_unpacker *u, const uint8_t *p, const uint8_t *end, tp_value *o,
             uint32_t n)
{
    tp_value *a = n ? arena_take(u, n * sizeof(*a)) : NULL;

    o->type = TP_VALUE_ARRAY;
    o->via.array.size = n;
    o->via.array.ptr = a;
    for (uint32_t i = 0; i < n; i++)
        p = decode(u, p, end, &a[i]);
    return p;
}

static const uint8_t *
decode_map(tp_unpacker *u, const uint8_t *p, const uint8_t *end, tp_value *o,
           uint32_t n)
{
    tp_value_kv *kv = n ? arena_take(u, n * sizeof(*kv)) : NULL;

    o->type = TP_VALUE_MAP;
    o->via.map.size = n;
    o->via.map.ptr = kv;
    for (uint32_t i = 0; i < n; i++) {
        p = decode(u, p, end, &kv[i].key);
        p = decode(u, p, end, &kv[i].val);
    }
    return p;
}

/* A body (str, bin, ext): points into the payload. */
static const uint8_t *
decode_body(const struct tp__mp_head *h, const uint8_t *p, tp_value *o)
{
    uint32_t n = (uint32_t)h->u;

    if (h->kind == TP__MP_STR) {
        o->type = TP_VALUE_STR;
        o->via.str.size = n;
        o->via.str.ptr = (const char *)p;
    } else if (h->kind == TP__MP_BIN) {
        o->type = TP_VALUE_BIN;
        o->via.bin.size = n;
        o->via.bin.ptr = (const char *)p;
    } else {
        o->type = TP_VALUE_EXT;
        o->via.ext.type = h->ext;
        o->via.ext.size = n;
        o->via.ext.ptr = (const char *)p;
    }
    return p + n;
}

/* Scalars (a signed encoding of a value >= 0 is TP_VALUE_UINT, as
 * msgpack-c types it too). */
static void
decode_scalar(const struct tp__mp_head *h, tp_value *o)
{
    switch (h->kind) {
    case TP__MP_NIL:
        o->type = TP_VALUE_NIL;
        break;
    case TP__MP_BOOL:
        o->type = TP_VALUE_BOOL;
        o->via.boolean = h->u != 0;
        break;
    case TP__MP_UINT:
        o->type = TP_VALUE_UINT;
        o->via.u64 = h->u;
        break;
    case TP__MP_INT:
        o->type = h->i < 0 ? TP_VALUE_INT : TP_VALUE_UINT;
        o->via.i64 = h->i;
        break;
    default:
        o->type = h->kind == TP__MP_F32 ? TP_VALUE_FLOAT32 : TP_VALUE_FLOAT64;
        o->via.f64 = h->f;
        break;
    }
}

/* Recursion depth is bounded by the scan's max_depth (<= 32). */
static const uint8_t *
decode(tp_unpacker *u, const uint8_t *p, const uint8_t *end, tp_value *o)
{
    struct tp__mp_head h;

    memset(o, 0, sizeof(*o));
    p += tp__mp_head(p, end, &h); /* validated: > 0 */
    if (tp__mp_has_body(&h))
        return decode_body(&h, p, o);
    if (h.kind == TP__MP_ARRAY)
        return decode_array(u, p, end, o, (uint32_t)h.u);
    if (h.kind == TP__MP_MAP)
        return decode_map(u, p, end, o, (uint32_t)h.u);
    decode_scalar(&h, o);
    return p;
}

/* Makes the arena hold at least `need` bytes. Small arenas grow at least
 * twofold (up to ARENA_KEEP) so slowly growing payloads settle quickly; a
 * big one (over ARENA_KEEP) shrinks when a payload needs less than a
 * quarter of it. So after a read the arena is at most
 * max(ARENA_KEEP, 4 * need). Contents need not survive: free and malloc,
 * no realloc copy. */
static int
arena_fit(tp_unpacker *u, size_t need)
{
    size_t want = need;

    if (need <= u->cap && (u->cap <= ARENA_KEEP || u->cap / 4 <= need))
        return 0;
    if (need <= ARENA_KEEP) {
        size_t grown = u->cap * 2 < ARENA_MIN ? ARENA_MIN : u->cap * 2;
        want = grown > ARENA_KEEP ? ARENA_KEEP : grown;
        want = want < need ? need : want;
    }
    tp__free(u->arena);
    u->arena = tp__malloc(want);
    u->cap = u->arena != NULL ? want : 0;
    return u->arena != NULL ? 0 : -ENOMEM;
}

int
tp_unpacker_read(tp_unpacker *u, const void *data, size_t len, tp_value *out)
{
    size_t need;
    int err;

    if (u == NULL || out == NULL || (data == NULL && len != 0))
        return -EINVAL;
    if (data == NULL)
        data = ""; /* len is 0: no pointer arithmetic on NULL */
    if ((err = tp__mp_scan(data, len, &u->lim, &need)) != 0)
        return err;
    /* Also for need == 0: a big arena shrinks whatever comes next. */
    if ((err = arena_fit(u, need)) != 0)
        return err;
    u->used = 0;
    decode(u, data, (const uint8_t *)data + len, out);
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Decoders                                                                */

static void
unpacker_svc_free(struct tp__ctx_svc *svc)
{
    tp_unpacker_free((tp_unpacker *)svc);
}

int
tp_unpacker_new(tp_unpacker **out, const tp_unpack_limits *lim)
{
    tp_unpacker *u;

    if (out == NULL || (lim != NULL && !limits_ok(lim)))
        return -EINVAL;
    u = tp__calloc(1, sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    u->svc.free = unpacker_svc_free;
    if (lim != NULL)
        u->lim = *lim;
    else
        tp_unpack_limits_init(&u->lim);
    *out = u;
    return 0;
}

void
tp_unpacker_free(tp_unpacker *u)
{
    if (u == NULL)
        return;
    tp__free(u->arena);
    tp__free(u);
}

size_t
tp_unpacker_footprint(const tp_unpacker *u)
{
    return u != NULL ? u->cap : 0;
}

/* The decoder of the thread running ctx: the tp_ctx's service slot. */
static tp_unpacker *
ctx_unpacker(tp_ctx *ctx)
{
    tp_unpacker *u;

    if (ctx->svc != NULL)
        return (tp_unpacker *)ctx->svc;
    if (tp_unpacker_new(&u, NULL) != 0)
        return NULL;
    ctx->svc = &u->svc;
    return u;
}

int
tp_unpack_bytes(tp_ctx *ctx, const void *data, size_t len, tp_value *out)
{
    tp_unpacker *u;

    if (ctx == NULL)
        return -EINVAL;
    if ((u = ctx_unpacker(ctx)) == NULL)
        return -ENOMEM;
    return tp_unpacker_read(u, data, len, out);
}

int
tp_unpack(tp_ctx *ctx, const tp_msg *msg, tp_value *out)
{
    if (msg == NULL)
        return -EINVAL;
    return tp_unpack_bytes(ctx, msg->data, msg->len, out);
}
