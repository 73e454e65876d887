/*
 * tests/msgpack_ref.h - comparing Troupe's decoded values (tp_value) with
 * each other and with msgpack-c's (msgpack_object), for test_pack and
 * fuzz_pack: msgpack-c is the reference decoder Troupe's own is checked
 * against. Floats compare bit for bit (msgpack_object_equal() says NaN
 * differs from itself: fuzz_pack's first finding was in its harness).
 */
#ifndef TP_TESTS_MSGPACK_REF_H
#define TP_TESTS_MSGPACK_REF_H

#include <msgpack.h>
#include <stdbool.h>
#include <string.h>
#include <troupe.h>

static inline bool
tpt_bytes_same(uint32_t na, const void *a, uint32_t nb, const void *b)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

/* Two tp_value trees are equal (types, values, bodies, order). */
static inline bool
tpt_value_same(const tp_value *a, const tp_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case TP_VALUE_NIL:
        return true;
    case TP_VALUE_BOOL:
        return a->via.boolean == b->via.boolean;
    case TP_VALUE_UINT:
    case TP_VALUE_INT:
        return a->via.u64 == b->via.u64;
    case TP_VALUE_FLOAT32:
    case TP_VALUE_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case TP_VALUE_STR:
    case TP_VALUE_BIN:
        return tpt_bytes_same(a->via.str.size, a->via.str.ptr, b->via.str.size,
                              b->via.str.ptr);
    case TP_VALUE_EXT:
        return a->via.ext.type == b->via.ext.type &&
               tpt_bytes_same(a->via.ext.size, a->via.ext.ptr, b->via.ext.size,
                              b->via.ext.ptr);
    case TP_VALUE_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!tpt_value_same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case TP_VALUE_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!tpt_value_same(&a->via.map.ptr[i].key,
                                &b->via.map.ptr[i].key) ||
                !tpt_value_same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return false;
        return true;
    }
    return false;
}

/* The msgpack-c type that corresponds to a tp_value type. */
static inline int
tpt_msgpack_type(tp_value_type t)
{
    static const int map[] = {
        [TP_VALUE_NIL] = MSGPACK_OBJECT_NIL,
        [TP_VALUE_BOOL] = MSGPACK_OBJECT_BOOLEAN,
        [TP_VALUE_UINT] = MSGPACK_OBJECT_POSITIVE_INTEGER,
        [TP_VALUE_INT] = MSGPACK_OBJECT_NEGATIVE_INTEGER,
        [TP_VALUE_FLOAT32] = MSGPACK_OBJECT_FLOAT32,
        [TP_VALUE_FLOAT64] = MSGPACK_OBJECT_FLOAT64,
        [TP_VALUE_STR] = MSGPACK_OBJECT_STR,
        [TP_VALUE_BIN] = MSGPACK_OBJECT_BIN,
        [TP_VALUE_EXT] = MSGPACK_OBJECT_EXT,
        [TP_VALUE_ARRAY] = MSGPACK_OBJECT_ARRAY,
        [TP_VALUE_MAP] = MSGPACK_OBJECT_MAP,
    };
    return (unsigned)t < sizeof(map) / sizeof(map[0]) ? map[t] : -1;
}

/* ours decodes the same value as msgpack-c's ref. */
static inline bool
tpt_value_matches_msgpack(const tp_value *ours, const msgpack_object *ref)
{
    if (tpt_msgpack_type(ours->type) != (int)ref->type)
        return false;
    switch (ours->type) {
    case TP_VALUE_NIL:
        return true;
    case TP_VALUE_BOOL:
        return ours->via.boolean == ref->via.boolean;
    case TP_VALUE_UINT:
    case TP_VALUE_INT:
        return ours->via.u64 == ref->via.u64;
    case TP_VALUE_FLOAT32:
    case TP_VALUE_FLOAT64:
        return memcmp(&ours->via.f64, &ref->via.f64, sizeof(double)) == 0;
    case TP_VALUE_STR:
        return tpt_bytes_same(ours->via.str.size, ours->via.str.ptr,
                              ref->via.str.size, ref->via.str.ptr);
    case TP_VALUE_BIN:
        return tpt_bytes_same(ours->via.bin.size, ours->via.bin.ptr,
                              ref->via.bin.size, ref->via.bin.ptr);
    case TP_VALUE_EXT:
        return ours->via.ext.type == ref->via.ext.type &&
               tpt_bytes_same(ours->via.ext.size, ours->via.ext.ptr,
                              ref->via.ext.size, ref->via.ext.ptr);
    case TP_VALUE_ARRAY:
        if (ours->via.array.size != ref->via.array.size)
            return false;
        for (uint32_t i = 0; i < ours->via.array.size; i++)
            if (!tpt_value_matches_msgpack(&ours->via.array.ptr[i],
                                           &ref->via.array.ptr[i]))
                return false;
        return true;
    case TP_VALUE_MAP:
        if (ours->via.map.size != ref->via.map.size)
            return false;
        for (uint32_t i = 0; i < ours->via.map.size; i++)
            if (!tpt_value_matches_msgpack(&ours->via.map.ptr[i].key,
                                           &ref->via.map.ptr[i].key) ||
                !tpt_value_matches_msgpack(&ours->via.map.ptr[i].val,
                                           &ref->via.map.ptr[i].val))
                return false;
        return true;
    }
    return false;
}

#endif /* TP_TESTS_MSGPACK_REF_H */
