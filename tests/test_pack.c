/*
 * tests/test_pack.c - msgpack payloads: building and reading every type,
 * round trips against msgpack-c's own unpacker, the reader's limits on
 * hostile input (no allocation out of proportion, checked with a counting
 * allocator), the decoder arena's reuse, the printer, and packed messages
 * between actors.
 */
#include "msgpack_ref.h"
#include "testutil.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* A counting allocator (installed only while no runtime exists)          */

static atomic_ulong n_allocs;    /* malloc + calloc + realloc calls */
static atomic_ulong bytes_asked; /* bytes those calls asked for */

static void *
count_malloc(size_t n)
{
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&bytes_asked, n);
    return malloc(n);
}

static void *
count_realloc(void *p, size_t n)
{
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&bytes_asked, n);
    return realloc(p, n);
}

static void *
count_calloc(size_t c, size_t n)
{
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&bytes_asked, c * n);
    return calloc(c, n);
}

static int
counting_on(void **state)
{
    (void)state;
    return tp_replace_allocator(count_malloc, count_realloc, count_calloc,
                                free);
}

static int
counting_off(void **state)
{
    (void)state;
    return tp_replace_allocator(malloc, realloc, calloc, free);
}

static void
count_reset(void)
{
    atomic_store(&n_allocs, 0);
    atomic_store(&bytes_asked, 0);
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static tp_unpacker *
unpacker(void)
{
    tp_unpacker *u = NULL;

    assert_int_equal(tp_unpacker_new(&u, NULL), 0);
    return u;
}

static int
check(const void *data, size_t len)
{
    return tp_pack_check(data, len, NULL);
}

/* Decodes with msgpack-c's own unpacker, for comparison. */
static void
reference_equal(const void *data, size_t len, const tp_value *ours)
{
    msgpack_zone z;
    msgpack_object ref;
    size_t off = 0;

    assert_true(msgpack_zone_init(&z, 2048));
    assert_int_equal(msgpack_unpack(data, len, &off, &z, &ref),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    assert_true(tpt_value_matches_msgpack(ours, &ref));
    msgpack_zone_destroy(&z);
}

static void
pack_every_type(tp_pack *p)
{
    static const unsigned char bin[3] = {0, 0xff, 7};

    assert_int_equal(tp_pack_map(p, 11), 0);
    tp_pack_cstr(p, "nil");
    tp_pack_nil(p);
    tp_pack_cstr(p, "t");
    tp_pack_bool(p, true);
    tp_pack_cstr(p, "f");
    tp_pack_bool(p, false);
    tp_pack_cstr(p, "neg");
    tp_pack_int(p, -123456789012LL);
    tp_pack_cstr(p, "pos");
    tp_pack_int(p, 42);
    tp_pack_cstr(p, "umax");
    tp_pack_uint(p, UINT64_MAX);
    tp_pack_cstr(p, "f32");
    tp_pack_float(p, 1.5f);
    tp_pack_cstr(p, "f64");
    tp_pack_double(p, -0.25);
    tp_pack_cstr(p, "bin");
    tp_pack_bin(p, bin, sizeof(bin));
    tp_pack_cstr(p, "ext");
    tp_pack_ext(p, 5, "ab", 2);
    tp_pack_str(p, "arr\0x", 5); /* a key with a NUL in it */
    tp_pack_array(p, 3);
    tp_pack_str(p, "", 0);
    tp_pack_array(p, 0);
    assert_int_equal(tp_pack_map(p, 0), 0);
}

static const tp_value *
map_get(const tp_value *m, const char *key, size_t klen)
{
    assert_int_equal(m->type, TP_VALUE_MAP);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const tp_value *k = &m->via.map.ptr[i].key;
        if (k->type == TP_VALUE_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &m->via.map.ptr[i].val;
    }
    fail_msg("key %s missing", key);
    return NULL;
}

#define GET(m, k) map_get((m), (k), sizeof(k) - 1)

static void
assert_every_type(const tp_value *o)
{
    const tp_value *a;

    assert_int_equal(o->via.map.size, 11);
    assert_int_equal(GET(o, "nil")->type, TP_VALUE_NIL);
    assert_true(GET(o, "t")->via.boolean);
    assert_false(GET(o, "f")->via.boolean);
    assert_int_equal(GET(o, "neg")->type, TP_VALUE_INT);
    assert_true(GET(o, "neg")->via.i64 == -123456789012LL);
    assert_int_equal(GET(o, "pos")->type, TP_VALUE_UINT);
    assert_int_equal(GET(o, "pos")->via.u64, 42);
    assert_true(GET(o, "umax")->via.u64 == UINT64_MAX);
    assert_int_equal(GET(o, "f32")->type, TP_VALUE_FLOAT32);
    assert_true(GET(o, "f32")->via.f64 == 1.5);
    assert_int_equal(GET(o, "f64")->type, TP_VALUE_FLOAT64);
    assert_true(GET(o, "f64")->via.f64 == -0.25);
    assert_int_equal(GET(o, "bin")->via.bin.size, 3);
    assert_memory_equal(GET(o, "bin")->via.bin.ptr, "\0\xff\x07", 3);
    assert_int_equal(GET(o, "ext")->via.ext.type, 5);
    assert_memory_equal(GET(o, "ext")->via.ext.ptr, "ab", 2);
    a = GET(o, "arr\0x");
    assert_int_equal(a->type, TP_VALUE_ARRAY);
    assert_int_equal(a->via.array.size, 3);
    assert_int_equal(a->via.array.ptr[0].type, TP_VALUE_STR);
    assert_int_equal(a->via.array.ptr[0].via.str.size, 0);
    assert_int_equal(a->via.array.ptr[1].via.array.size, 0);
    assert_int_equal(a->via.array.ptr[2].type, TP_VALUE_MAP);
}

/* ---------------------------------------------------------------------- */
/* Building and reading                                                    */

static void
test_pack_build_and_read_every_type(void **state)
{
    tp_unpacker *u = unpacker();
    tp_value o;
    tp_pack p;

    tp_pack_init(&p);
    pack_every_type(&p);
    assert_int_equal(tp_pack_status(&p), 0);
    assert_int_equal(tp_unpacker_read(u, tp_pack_data(&p), tp_pack_len(&p), &o),
                     0);
    assert_every_type(&o);
    reference_equal(tp_pack_data(&p), tp_pack_len(&p), &o);
    tp_pack_fini(&p);
    tp_unpacker_free(u);
}

static void
test_pack_integers_use_smallest_encoding(void **state)
{
    static const struct {
        int64_t v;
        size_t len;
        uint8_t first;
    } cases[] = {
        {0, 1, 0x00},    {127, 1, 0x7f},    {128, 2, 0xcc},
        {256, 3, 0xcd},  {65536, 5, 0xce},  {1LL << 32, 9, 0xcf},
        {-1, 1, 0xff},   {-32, 1, 0xe0},    {-33, 2, 0xd0},
        {-129, 3, 0xd1}, {-32769, 5, 0xd2}, {INT64_MIN, 9, 0xd3},
    };
    tp_unpacker *u = unpacker();
    tp_value o;
    tp_pack p;

    tp_pack_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_pack_reset(&p);
        assert_int_equal(tp_pack_int(&p, cases[i].v), 0);
        assert_int_equal(tp_pack_len(&p), cases[i].len);
        assert_int_equal(((const uint8_t *)tp_pack_data(&p))[0],
                         cases[i].first);
        assert_int_equal(
            tp_unpacker_read(u, tp_pack_data(&p), tp_pack_len(&p), &o), 0);
        assert_true(o.via.i64 == cases[i].v);
        assert_int_equal(o.type, cases[i].v < 0 ? TP_VALUE_INT : TP_VALUE_UINT);
        reference_equal(tp_pack_data(&p), tp_pack_len(&p), &o);
    }
    tp_pack_fini(&p);
    tp_unpacker_free(u);
}

/* Hand-written encodings the builder never produces (signed forms of
 * positive values, wide forms of small ones) read as msgpack-c reads them. */
static void
test_pack_read_every_wire_form(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } forms[] = {
        {"\xd0\x05", 2},
        {"\xd1\x00\x05", 3},
        {"\xd2\xff\xff\xff\xfb", 5},
        {"\xd3\x00\x00\x00\x00\x00\x00\x00\x05", 9},
        {"\xcc\x05", 2},
        {"\xcd\x00\x05", 3},
        {"\xce\x00\x00\x00\x05", 5},
        {"\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9},
        {"\xca\x3f\xc0\x00\x00", 5},
        {"\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9},
        {"\xd9\x02hi", 4},
        {"\xda\x00\x02hi", 5},
        {"\xdb\x00\x00\x00\x02hi", 7},
        {"\xc4\x01\x09", 3},
        {"\xc5\x00\x01\x09", 4},
        {"\xc6\x00\x00\x00\x01\x09", 6},
        {"\xd4\x01\x09", 3},
        {"\xd5\x01\x09\x09", 4},
        {"\xd6\x01\x09\x09\x09\x09", 6},
        {"\xd7\xff\x01\x02\x03\x04\x05\x06\x07\x08", 10},
        {"\xd8\x01"
         "0123456789abcdef",
         18},
        {"\xc7\x01\x02\x09", 4},
        {"\xc8\x00\x01\x02\x09", 5},
        {"\xc9\x00\x00\x00\x01\x02\x09", 7},
        {"\xdc\x00\x02\xc0\xc3", 5},
        {"\xdd\x00\x00\x00\x01\xc2", 6},
        {"\xde\x00\x01\x01\x02", 5},
        {"\xdf\x00\x00\x00\x01\xa1k\x90", 8},
        {"\x93\x01\x92\x02\x03\x80", 6},
    };
    tp_unpacker *u = unpacker();
    tp_value o;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_int_equal(tp_unpacker_read(u, forms[i].bytes, forms[i].len, &o),
                         0);
        reference_equal(forms[i].bytes, forms[i].len, &o);
    }
    tp_unpacker_free(u);
}

/* A seeded generator of random values, built with tp_pack, read back by
 * both decoders. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
pack_random(tp_pack *p, unsigned depth)
{
    char s[40];
    unsigned n, kind = (unsigned)(rnd() % (depth < 6 ? 11 : 9));

    memset(s, 'a' + (int)(rnd() % 26), sizeof(s));
    switch (kind) {
    case 0:
        tp_pack_nil(p);
        break;
    case 1:
        tp_pack_bool(p, rnd() & 1);
        break;
    case 2:
        tp_pack_int(p, (int64_t)rnd() >> (rnd() % 64));
        break;
    case 3:
        tp_pack_uint(p, rnd() >> (rnd() % 64));
        break;
    case 4:
        tp_pack_float(p, (float)(int32_t)rnd() / 7.0f);
        break;
    case 5:
        tp_pack_double(p, (double)(int64_t)rnd() / 3.0);
        break;
    case 6:
        tp_pack_str(p, s, rnd() % sizeof(s));
        break;
    case 7:
        tp_pack_bin(p, s, rnd() % sizeof(s));
        break;
    case 8:
        tp_pack_ext(p, (int8_t)(rnd() % 128), s, rnd() % 20);
        break;
    case 9:
        n = (unsigned)(rnd() % 5);
        tp_pack_array(p, n);
        for (unsigned i = 0; i < n; i++)
            pack_random(p, depth + 1);
        break;
    default:
        n = (unsigned)(rnd() % 4);
        tp_pack_map(p, n);
        for (unsigned i = 0; i < 2 * n; i++)
            pack_random(p, depth + 1);
        break;
    }
}

static void
test_pack_random_round_trips_match_msgpack_c(void **state)
{
    tp_unpacker *u = unpacker();
    tp_value o;
    tp_pack p, again;

    tp_pack_init(&p);
    tp_pack_init(&again);
    for (int i = 0; i < 2000; i++) {
        tp_pack_reset(&p);
        pack_random(&p, 0);
        assert_int_equal(tp_pack_status(&p), 0);
        assert_int_equal(
            tp_unpacker_read(u, tp_pack_data(&p), tp_pack_len(&p), &o), 0);
        reference_equal(tp_pack_data(&p), tp_pack_len(&p), &o);
        /* Re-packing the decoded value gives the same bytes. */
        tp_pack_reset(&again);
        assert_int_equal(tp_pack_object(&again, &o), 0);
        assert_int_equal(tp_pack_len(&again), tp_pack_len(&p));
        assert_memory_equal(tp_pack_data(&again), tp_pack_data(&p),
                            tp_pack_len(&p));
    }
    tp_pack_fini(&p);
    tp_pack_fini(&again);
    tp_unpacker_free(u);
}

/* Troupe's encoder writes the same bytes as msgpack-c's packer at every
 * size boundary of every form; tp_pack_object() encodes a tree the caller
 * built, and refuses a bad one. */
static void
expect_bytes(tp_pack *p, msgpack_sbuffer *sb)
{
    assert_int_equal(tp_pack_status(p), 0);
    assert_int_equal(tp_pack_len(p), sb->size);
    assert_memory_equal(tp_pack_data(p), sb->data, sb->size);
    tp_pack_reset(p);
    msgpack_sbuffer_clear(sb);
}

static void
test_pack_encodings_match_msgpack_c_packer(void **state)
{
    static const uint32_t sizes[] = {0,   1,     2,     3,     4,     8,
                                     15,  16,    17,    31,    32,    255,
                                     256, 65535, 65536, 70000, 100000};
    static const int64_t ints[] = {
        0,         1,         127,           128,       255,
        256,       65535,     65536,         INT32_MAX, UINT32_MAX,
        INT64_MAX, -1,        -32,           -33,       -128,
        -129,      INT16_MIN, INT16_MIN - 1, INT32_MIN, (int64_t)INT32_MIN - 1,
        INT64_MIN};
    char *body = calloc(1, 100000);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    tp_pack p;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    tp_pack_init(&p);
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        tp_pack_int(&p, ints[i]);
        msgpack_pack_int64(&pk, ints[i]);
        expect_bytes(&p, &sb);
        tp_pack_uint(&p, (uint64_t)ints[i]);
        msgpack_pack_uint64(&pk, (uint64_t)ints[i]);
        expect_bytes(&p, &sb);
    }
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint32_t n = sizes[i];
        tp_pack_str(&p, body, n);
        msgpack_pack_str_with_body(&pk, body, n);
        expect_bytes(&p, &sb);
        tp_pack_bin(&p, body, n);
        msgpack_pack_bin_with_body(&pk, body, n);
        expect_bytes(&p, &sb);
        tp_pack_ext(&p, 7, body, n);
        msgpack_pack_ext_with_body(&pk, body, n, 7);
        expect_bytes(&p, &sb);
        tp_pack_array(&p, n);
        msgpack_pack_array(&pk, n);
        for (uint32_t k = 0; k < n; k++) {
            tp_pack_nil(&p);
            msgpack_pack_nil(&pk);
        }
        expect_bytes(&p, &sb);
        tp_pack_map(&p, n);
        msgpack_pack_map(&pk, n);
        for (uint32_t k = 0; k < 2 * n; k++) {
            tp_pack_bool(&p, k & 1);
            (k & 1) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
        }
        expect_bytes(&p, &sb);
    }
    tp_pack_float(&p, 1.5f);
    msgpack_pack_float(&pk, 1.5f);
    expect_bytes(&p, &sb);
    tp_pack_double(&p, -0.1);
    msgpack_pack_double(&pk, -0.1);
    expect_bytes(&p, &sb);
    {
        /* A tree built by hand: [-7, "hi", {nil: 2.5}] */
        tp_value kv_val[2] = {{.type = TP_VALUE_NIL},
                              {.type = TP_VALUE_FLOAT64, .via.f64 = 2.5}};
        tp_value_kv kv = {kv_val[0], kv_val[1]};
        tp_value items[3] = {
            {.type = TP_VALUE_INT, .via.i64 = -7},
            {.type = TP_VALUE_STR, .via.str = {2, "hi"}},
            {.type = TP_VALUE_MAP, .via.map = {1, &kv}},
        };
        tp_value top = {.type = TP_VALUE_ARRAY, .via.array = {3, items}};
        tp_value bad = {.type = (tp_value_type)99};
        tp_value null_body = {.type = TP_VALUE_BIN, .via.bin = {3, NULL}};

        assert_int_equal(tp_pack_object(&p, &top), 0);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int64(&pk, -7);
        msgpack_pack_str_with_body(&pk, "hi", 2);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_nil(&pk);
        msgpack_pack_double(&pk, 2.5);
        expect_bytes(&p, &sb);
        assert_int_equal(tp_pack_object(&p, &bad), -EINVAL);
        tp_pack_reset(&p);
        assert_int_equal(tp_pack_object(&p, &null_body), -EINVAL);
    }
    tp_pack_fini(&p);
    msgpack_sbuffer_destroy(&sb);
    free(body);
}

/* NaNs (a signalling float32 NaN among them) decode as NaN of the same
 * width, print as NaN and re-pack as NaN. fuzz_pack's first finding was in
 * its own harness here: tp_value_equal() says NaN != NaN. */
static void
test_pack_nan_floats(void **state)
{
    static const char f32[] = "\xca\xff\x92\xff\xff";
    static const char f64[] = "\xcb\x7f\xf8\x00\x00\x00\x00\x00\x01";
    tp_unpacker *u = unpacker();
    tp_value o, o2;
    char text[16];
    tp_pack p;

    assert_int_equal(tp_unpacker_read(u, f32, 5, &o), 0);
    assert_int_equal(o.type, TP_VALUE_FLOAT32);
    assert_true(isnan(o.via.f64));
    assert_int_equal(tp_pack_print(f32, 5, text, sizeof(text)), 3);
    assert_string_equal(text, "NaN");
    tp_pack_init(&p);
    assert_int_equal(tp_pack_object(&p, &o), 0);
    assert_int_equal(tp_unpacker_read(u, tp_pack_data(&p), 5, &o2), 0);
    assert_int_equal(o2.type, TP_VALUE_FLOAT32);
    assert_true(isnan(o2.via.f64));
    assert_int_equal(tp_unpacker_read(u, f64, 9, &o), 0);
    assert_int_equal(o.type, TP_VALUE_FLOAT64);
    assert_true(isnan(o.via.f64));
    tp_pack_fini(&p);
    tp_unpacker_free(u);
}

/* ---------------------------------------------------------------------- */
/* Builder errors                                                          */

static void
test_pack_builder_refuses_incomplete_and_extra_values(void **state)
{
    tp_pack p;

    tp_pack_init(&p);
    assert_int_equal(tp_pack_status(&p), -EINVAL); /* empty */
    assert_int_equal(tp_pack_array(&p, 2), 0);
    assert_int_equal(tp_pack_int(&p, 1), 0);
    assert_int_equal(tp_pack_status(&p), -EINVAL); /* one element due */
    assert_int_equal(tp_pack_int(&p, 2), 0);
    assert_int_equal(tp_pack_status(&p), 0);
    assert_int_equal(tp_pack_nil(&p), -EINVAL);    /* a second value */
    assert_int_equal(tp_pack_int(&p, 3), -EINVAL); /* sticky */
    assert_int_equal(tp_pack_status(&p), -EINVAL);
    tp_pack_reset(&p);
    assert_int_equal(tp_pack_map(&p, 1), 0);
    assert_int_equal(tp_pack_cstr(&p, "k"), 0);
    assert_int_equal(tp_pack_status(&p), -EINVAL); /* value due */
    assert_int_equal(tp_pack_bin(&p, NULL, 3), -EINVAL);
    tp_pack_reset(&p);
    assert_int_equal(tp_pack_str(&p, NULL, 0), 0);
    assert_int_equal(tp_pack_status(&p), 0);
    tp_pack_fini(&p);
}

static void
test_pack_builder_depth_and_size_limits(void **state)
{
    char big[600];
    tp_pack p;

    tp_pack_init(&p);
    for (unsigned i = 0; i < TP_PACK_MAX_DEPTH; i++)
        assert_int_equal(tp_pack_array(&p, 1), 0);
    assert_int_equal(tp_pack_array(&p, 1), -E2BIG);
    tp_pack_reset(&p);
    /* Last elements still count as nesting. */
    for (unsigned i = 0; i < TP_PACK_MAX_DEPTH; i++) {
        assert_int_equal(tp_pack_array(&p, 2), 0);
        assert_int_equal(tp_pack_nil(&p), 0);
    }
    assert_int_equal(tp_pack_map(&p, 0), -E2BIG);
    tp_pack_reset(&p);
    assert_int_equal(tp_pack_set_max(&p, 100), 0);
    assert_int_equal(tp_pack_array(&p, 200), -EMSGSIZE);
    tp_pack_reset(&p);
    memset(big, 'x', sizeof(big));
    assert_int_equal(tp_pack_str(&p, big, 99), -EMSGSIZE);
    tp_pack_reset(&p);
    assert_int_equal(tp_pack_str(&p, big, 98), 0); /* 2 + 98 bytes */
    assert_int_equal(tp_pack_len(&p), 100);
    assert_int_equal(tp_pack_set_max(&p, 50), -EINVAL);
    assert_int_equal(tp_pack_set_max(&p, 1000), 0);
    /* Beyond the inline buffer: grows on the heap, then freed. */
    tp_pack_reset(&p);
    assert_int_equal(tp_pack_bin(&p, big, sizeof(big)), 0);
    assert_int_equal(tp_pack_len(&p), sizeof(big) + 3);
    assert_int_equal(check(tp_pack_data(&p), tp_pack_len(&p)), 0);
    tp_pack_fini(&p);
}

/* ---------------------------------------------------------------------- */
/* Hostile input                                                           */

static void
test_pack_hostile_headers_rejected_without_allocating(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"\xdd\x05\xf5\xe1\x00", 5},             /* array32 of 100 M */
        {"\xdd\xff\xff\xff\xff\xc0\xc0\xc0", 8}, /* 4 G, 3 present */
        {"\xdf\x05\xf5\xe1\x00\x01\x02", 7},     /* map32 of 100 M */
        {"\x92\x01", 2},                         /* 2 announced, 1 there */
        {"\x81\x01", 2},                         /* a key without value */
        {"\xdb\xff\xff\xff\xff", 5},             /* str32 of 4 GiB */
        {"\xc6\x7f\xff\xff\xff\x00", 6},         /* bin32 of 2 GiB */
        {"\xc9\x00\x01\x00\x00\x01\x00", 7},     /* ext32 past the end */
        {"\xc1", 1},                             /* reserved byte */
        {"\x91\xc1", 2},                         /* reserved, nested */
        {"\xcf\x00", 2},                         /* uint64 cut short */
        {"\xd8\x01\x00", 3},                     /* fixext16 cut short */
        {"\xc0\xc0", 2},                         /* bytes after value */
        {"", 0},                                 /* nothing */
    };
    tp_unpacker *u = unpacker();
    tp_value o;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        count_reset();
        assert_int_equal(check(bad[i].bytes, bad[i].len), -EBADMSG);
        assert_int_equal(tp_unpacker_read(u, bad[i].bytes, bad[i].len, &o),
                         -EBADMSG);
        assert_int_equal(atomic_load(&n_allocs), 0);
    }
    assert_int_equal(tp_unpacker_footprint(u), 0);
    tp_unpacker_free(u);
}

static void
test_pack_depth_limit(void **state)
{
    unsigned char deep[100 + 1];
    tp_unpack_limits lim;
    tp_unpacker *u = unpacker(), *u4 = NULL;
    tp_value o;

    memset(deep, 0x91, sizeof(deep)); /* [[[[...]]]] */
    deep[100] = 0xc0;
    /* 32 levels pass, 33 or 100 do not. */
    assert_int_equal(check(deep + 100 - 32, 33), 0);
    assert_int_equal(tp_unpacker_read(u, deep + 100 - 32, 33, &o), 0);
    reference_equal(deep + 100 - 32, 33, &o);
    assert_int_equal(check(deep + 100 - 33, 34), -E2BIG);
    assert_int_equal(tp_unpacker_read(u, deep, sizeof(deep), &o), -E2BIG);
    /* Empty containers count too. */
    deep[100] = 0x90;
    assert_int_equal(check(deep + 100 - 31, 32), 0);
    assert_int_equal(check(deep + 100 - 32, 33), -E2BIG);
    /* A lower limit of one's own. */
    tp_unpack_limits_init(&lim);
    lim.max_depth = 4;
    assert_int_equal(tp_unpacker_new(&u4, &lim), 0);
    assert_int_equal(tp_unpacker_read(u4, deep + 100 - 3, 4, &o), 0);
    assert_int_equal(tp_unpacker_read(u4, deep + 100 - 4, 5, &o), -E2BIG);
    lim.max_depth = TP_PACK_MAX_DEPTH + 1;
    assert_int_equal(tp_pack_check(deep, 1, &lim), -EINVAL);
    lim.max_depth = 0;
    assert_int_equal(tp_unpacker_new(&u4, &lim), -EINVAL);
    tp_unpacker_free(u4);
    tp_unpacker_free(u);
}

static void
test_pack_every_truncation_rejected(void **state)
{
    tp_unpacker *u = unpacker();
    tp_value o;
    tp_pack p;
    unsigned char *copy;

    tp_pack_init(&p);
    pack_every_type(&p);
    /* Each prefix in a buffer of its own size, so ASan sees any read past
     * the end. */
    for (size_t n = 0; n < tp_pack_len(&p); n++) {
        copy = malloc(n + 1);
        memcpy(copy, tp_pack_data(&p), n);
        assert_int_equal(check(copy, n), -EBADMSG);
        assert_int_equal(tp_unpacker_read(u, copy, n, &o), -EBADMSG);
        free(copy);
    }
    tp_pack_fini(&p);
    tp_unpacker_free(u);
}

static void
test_pack_size_limit(void **state)
{
    tp_unpack_limits lim;
    tp_unpacker *u = NULL;
    tp_value o;
    static char big[2 * 1024 * 1024];
    tp_pack p;

    tp_pack_init(&p);
    assert_int_equal(tp_pack_set_max(&p, sizeof(big) + 16), 0);
    assert_int_equal(tp_pack_bin(&p, big, TP_PACK_MAX_SIZE), 0);
    assert_int_equal(check(tp_pack_data(&p), tp_pack_len(&p)), -EMSGSIZE);
    tp_unpack_limits_init(&lim);
    lim.max_size = tp_pack_len(&p);
    assert_int_equal(tp_unpacker_new(&u, &lim), 0);
    assert_int_equal(tp_unpacker_read(u, tp_pack_data(&p), tp_pack_len(&p), &o),
                     0);
    assert_int_equal(o.via.bin.size, TP_PACK_MAX_SIZE);
    lim.max_size--;
    assert_int_equal(tp_pack_check(tp_pack_data(&p), tp_pack_len(&p), &lim),
                     -EMSGSIZE);
    tp_unpacker_free(u);
    tp_pack_fini(&p);
}

/* ---------------------------------------------------------------------- */
/* Arena: proportional, reused                                             */

static void
test_pack_decoding_memory_proportional_and_reused(void **state)
{
    size_t n = 100000, len;
    unsigned char *arr = malloc(5 + n);
    tp_unpacker *u = unpacker();
    tp_value o;
    tp_pack p;

    /* The worst case: an array of n one-byte elements. */
    arr[0] = 0xdd;
    arr[1] = (unsigned char)(n >> 24);
    arr[2] = (unsigned char)(n >> 16);
    arr[3] = (unsigned char)(n >> 8);
    arr[4] = (unsigned char)n;
    memset(arr + 5, 0xc0, n);
    count_reset();
    assert_int_equal(tp_unpacker_read(u, arr, 5 + n, &o), 0);
    assert_int_equal(o.via.array.size, n);
    assert_true(atomic_load(&bytes_asked) <= 24 * (5 + n));
    assert_true(tp_unpacker_footprint(u) <= 24 * (5 + n));
    /* A small payload after it: the arena shrinks back. */
    tp_pack_init(&p);
    pack_every_type(&p);
    len = tp_pack_len(&p);
    assert_int_equal(tp_unpacker_read(u, tp_pack_data(&p), len, &o), 0);
    assert_true(tp_unpacker_footprint(u) <= 64 * 1024);
    /* Steady traffic: no allocation at all. */
    count_reset();
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(tp_unpacker_read(u, tp_pack_data(&p), len, &o), 0);
        assert_every_type(&o);
    }
    assert_int_equal(atomic_load(&n_allocs), 0);
    /* A scalar after a big payload shrinks the arena too (found by
     * fuzz_pack: a one-byte payload kept a large arena). */
    assert_int_equal(tp_unpacker_read(u, arr, 5 + n, &o), 0);
    assert_true(tp_unpacker_footprint(u) > 64 * 1024);
    assert_int_equal(tp_unpacker_read(u, "\x5c", 1, &o), 0);
    assert_int_equal(o.via.u64, 0x5c);
    assert_true(tp_unpacker_footprint(u) <= 64 * 1024);
    /* So does a payload needing more than 64 KiB but much less than the
     * arena holds (found by fuzz_pack too): at most 4 x its need stays. */
    assert_int_equal(tp_unpacker_read(u, arr, 5 + n, &o), 0);
    arr[3] = (unsigned char)(4000 >> 8);
    arr[4] = (unsigned char)(4000 & 0xff);
    arr[1] = arr[2] = 0;
    assert_int_equal(tp_unpacker_read(u, arr, 5 + 4000, &o), 0);
    assert_int_equal(o.via.array.size, 4000);
    assert_true(tp_unpacker_footprint(u) <= 4 * 4000 * sizeof(o));
    tp_pack_fini(&p);
    tp_unpacker_free(u);
    free(arr);
}

/* ---------------------------------------------------------------------- */
/* Printer                                                                 */

static void
assert_prints(const void *data, size_t len, int want, const char *text)
{
    char buf[512];
    int r;

    /* Stale bytes after the text must not matter (they once did: they
     * looked like UTF-8 continuation bytes to the truncation). */
    memset(buf, 0x80, sizeof(buf));
    r = tp_pack_print(data, len, buf, sizeof(buf));

    if (r != want || strcmp(buf, text) != 0)
        fail_msg("printed %d \"%s\", want %d \"%s\"", r, buf, want, text);
}

static void
test_pack_print_every_type(void **state)
{
    const char *want = "{\"nil\":null,\"t\":true,\"f\":false,"
                       "\"neg\":-123456789012,\"pos\":42,"
                       "\"umax\":18446744073709551615,\"f32\":1.5,"
                       "\"f64\":-0.25,\"bin\":h'00ff07',\"ext\":ext(5,h'6162'),"
                       "\"arr\\u0000x\":[\"\",[],{}]}";
    tp_pack p;

    tp_pack_init(&p);
    pack_every_type(&p);
    assert_prints(tp_pack_data(&p), tp_pack_len(&p), (int)strlen(want), want);
    tp_pack_fini(&p);
}

static void
test_pack_print_scalars_and_strings(void **state)
{
    const char *want;
    tp_pack p;

    tp_pack_init(&p);
    tp_pack_array(&p, 9);
    tp_pack_double(&p, 1.0);
    tp_pack_double(&p, 0.1);
    tp_pack_float(&p, 0.1f);
    tp_pack_double(&p, NAN);
    tp_pack_double(&p, -INFINITY);
    tp_pack_double(&p, 1e300);
    tp_pack_cstr(&p, "q\"b\\\n\t\x01\x7f");
    tp_pack_cstr(&p, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    tp_pack_cstr(&p, "\xff\xc3(\xed\xa0\x80\xc0\xaf");
    assert_int_equal(tp_pack_status(&p), 0);
    want = "[1.0,0.1,0.1,NaN,-Infinity,1e+300,"
           "\"q\\\"b\\\\\\n\\t\\u0001\\u007f\","
           "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\","
           "\"\\xff\\xc3(\\xed\\xa0\\x80\\xc0\\xaf\"]";
    assert_prints(tp_pack_data(&p), tp_pack_len(&p), (int)strlen(want), want);
    tp_pack_fini(&p);
}

static void
test_pack_print_truncates_within_buffer(void **state)
{
    char buf[200], full[512];
    int total, r;
    tp_pack p;

    tp_pack_init(&p);
    pack_every_type(&p);
    total =
        tp_pack_print(tp_pack_data(&p), tp_pack_len(&p), full, sizeof(full));
    assert_true(total > 0);
    for (size_t size = 0; size <= (size_t)total + 1; size++) {
        memset(buf, '#', sizeof(buf));
        r = tp_pack_print(tp_pack_data(&p), tp_pack_len(&p), buf, size);
        assert_true(size > sizeof(buf) - 10 || buf[size] == '#');
        if (size > (size_t)total) {
            assert_int_equal(r, total);
            assert_string_equal(buf, full);
            continue;
        }
        assert_int_equal(r, -ENOBUFS);
        if (size == 0)
            continue;
        assert_true(strlen(buf) <= size - 1);
        if (size >= 4) { /* a prefix of the text, then "..." */
            size_t k = strlen(buf) - 3;
            assert_string_equal(buf + k, "...");
            assert_memory_equal(buf, full, k);
        }
    }
    tp_pack_fini(&p);
}

/* Truncation never splits a UTF-8 character. */
static void
test_pack_print_truncation_keeps_utf8_whole(void **state)
{
    const char *e = "\xc3\xa9"; /* U+00E9, two bytes */
    char text[64], buf[64];
    size_t k, n;
    tp_pack p;

    for (k = 0; k < 20; k++)
        memcpy(text + 2 * k, e, 2);
    tp_pack_init(&p);
    tp_pack_str(&p, text, 40);
    for (size_t size = 5; size < 40; size++) {
        memset(buf, 0x80, sizeof(buf));
        assert_int_equal(
            tp_pack_print(tp_pack_data(&p), tp_pack_len(&p), buf, size),
            -ENOBUFS);
        n = strlen(buf);
        assert_true(n <= size - 1);
        assert_string_equal(buf + n - 3, "...");
        /* '"' then whole two-byte characters only. */
        assert_int_equal(buf[0], '"');
        assert_int_equal((n - 4) % 2, 0);
        assert_memory_equal(buf + 1, text, n - 4);
    }
    tp_pack_fini(&p);
}

static void
test_pack_print_prefix_and_bad_input(void **state)
{
    char buf[64];
    tp_pack p;

    /* A payload cut short (as a trace event cuts it): what is there. */
    tp_pack_init(&p);
    tp_pack_array(&p, 3);
    tp_pack_int(&p, 1);
    tp_pack_cstr(&p, "abcdef");
    tp_pack_int(&p, 3);
    assert_prints(tp_pack_data(&p), 6, -ENODATA, "[1,\"abc...");
    assert_prints(tp_pack_data(&p), 1, -ENODATA, "[...");
    assert_prints("", 0, -ENODATA, "...");
    /* Hostile counts print only what is present. */
    assert_prints("\xdd\x05\xf5\xe1\x00\x01\x02", 7, -ENODATA, "[1,2,...");
    assert_prints("\xdb\xff\xff\xff\xff"
                  "ab",
                  7, -ENODATA, "\"ab...");
    assert_prints("\x92\x01\xc1", 3, -EBADMSG, "[1,...");
    assert_prints("\x01\x02", 2, -EBADMSG, "1...");
    memset(buf, 0x91, sizeof(buf));
    assert_prints(buf, sizeof(buf), -E2BIG,
                  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...");
    assert_int_equal(tp_pack_print(NULL, 1, buf, sizeof(buf)), -EINVAL);
    tp_pack_fini(&p);
}

/* ---------------------------------------------------------------------- */
/* Between actors                                                          */

enum { M_DATA = 1, M_ADD };

/* Sums an array of integers sent to it; replies with {"sum": n}. */
static void
adder_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
    tp_value o;
    int64_t sum = 0;
    tp_pack p;

    if (m->type != M_ADD)
        return;
    if (tp_unpack(ctx, m, &o) != 0 || o.type != TP_VALUE_ARRAY) {
        tp_reply(ctx, m, NULL, 0);
        return;
    }
    for (uint32_t i = 0; i < o.via.array.size; i++)
        sum += o.via.array.ptr[i].via.i64;
    tp_pack_init(&p);
    tp_pack_map(&p, 1);
    tp_pack_cstr(&p, "sum");
    tp_pack_int(&p, sum);
    TPT_CHECK_INT_EQ(tp_reply_packed(ctx, m, &p), 0);
    tp_pack_fini(&p);
}

static const tp_behaviour adder = {.name = "adder", .handle = adder_handle};

static void
test_pack_request_reply_between_actors(void **state)
{
    tp_runtime *rt = tpt_runtime(2);
    tp_unpacker *u = unpacker();
    unsigned char reply[64];
    size_t len = 0;
    tp_value o;
    tp_pid a;
    tp_pack p;

    assert_int_equal(tp_runtime_spawn(rt, &adder, NULL, NULL, &a), 0);
    tp_pack_init(&p);
    for (int round = 0; round < 100; round++) {
        tp_pack_reset(&p);
        tp_pack_array(&p, 3);
        tp_pack_int(&p, round);
        tp_pack_int(&p, -5);
        tp_pack_uint(&p, 1000);
        assert_int_equal(tp_runtime_call(rt, a, M_ADD, tp_pack_data(&p),
                                         tp_pack_len(&p), reply, sizeof(reply),
                                         &len, 5000),
                         0);
        assert_int_equal(tp_unpacker_read(u, reply, len, &o), 0);
        assert_true(GET(&o, "sum")->via.i64 == round + 995);
    }
    /* Incomplete payloads are never sent. */
    tp_pack_reset(&p);
    tp_pack_array(&p, 2);
    assert_int_equal(tp_runtime_send_packed(rt, a, M_DATA, &p), -EINVAL);
    assert_null(tp_pack_blob(&p));
    tp_pack_fini(&p);
    tp_unpacker_free(u);
    tpt_finish(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_build_and_read_every_type),
        cmocka_unit_test(test_pack_integers_use_smallest_encoding),
        cmocka_unit_test(test_pack_read_every_wire_form),
        cmocka_unit_test(test_pack_random_round_trips_match_msgpack_c),
        cmocka_unit_test(test_pack_encodings_match_msgpack_c_packer),
        cmocka_unit_test(test_pack_nan_floats),
        cmocka_unit_test(test_pack_builder_refuses_incomplete_and_extra_values),
        cmocka_unit_test(test_pack_builder_depth_and_size_limits),
        cmocka_unit_test_setup_teardown(
            test_pack_hostile_headers_rejected_without_allocating, counting_on,
            counting_off),
        cmocka_unit_test(test_pack_depth_limit),
        cmocka_unit_test(test_pack_every_truncation_rejected),
        cmocka_unit_test(test_pack_size_limit),
        cmocka_unit_test_setup_teardown(
            test_pack_decoding_memory_proportional_and_reused, counting_on,
            counting_off),
        cmocka_unit_test(test_pack_print_every_type),
        cmocka_unit_test(test_pack_print_scalars_and_strings),
        cmocka_unit_test(test_pack_print_truncates_within_buffer),
        cmocka_unit_test(test_pack_print_truncation_keeps_utf8_whole),
        cmocka_unit_test(test_pack_print_prefix_and_bad_input),
        cmocka_unit_test(test_pack_request_reply_between_actors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
