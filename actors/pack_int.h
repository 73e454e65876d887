/*
 * actors/pack_int.h - the MessagePack header parser shared by the scanner,
 * the decoder and the printer (actors/pack_*.c).
 *
 * One function reads the header of one value (type byte plus its length,
 * count or scalar); the three users differ only in what they do with the
 * body. Every read is bounds-checked against `end`.
 */
#ifndef TP_ACTORS_PACK_INT_H
#define TP_ACTORS_PACK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <troupe/pack.h>

enum tp__mp_kind {
    TP__MP_NIL = 0,
    TP__MP_BOOL,  /* u = 0 or 1 */
    TP__MP_UINT,  /* u = value */
    TP__MP_INT,   /* i = value (a signed encoding; may be >= 0) */
    TP__MP_F32,   /* f = value */
    TP__MP_F64,   /* f = value */
    TP__MP_STR,   /* u = body length */
    TP__MP_BIN,   /* u = body length */
    TP__MP_EXT,   /* u = body length, ext = type */
    TP__MP_ARRAY, /* u = elements */
    TP__MP_MAP    /* u = pairs */
};

struct tp__mp_head {
    uint8_t kind; /* enum tp__mp_kind */
    int8_t ext;
    uint64_t u;
    int64_t i;
    double f;
};

/* Reads the header at p (p < end). Returns its length (> 0), -ENODATA when
 * it is cut short, -EBADMSG for the reserved byte 0xc1. Does not check that
 * a body fits. */
int tp__mp_head(const uint8_t *p, const uint8_t *end, struct tp__mp_head *h);

/* True for kinds with a body of h->u bytes. */
static inline int
tp__mp_has_body(const struct tp__mp_head *h)
{
    return h->kind == TP__MP_STR || h->kind == TP__MP_BIN ||
           h->kind == TP__MP_EXT;
}

/* Validates a payload (see tp_pack_check); on success stores in *need the
 * bytes of tp_value storage its decoding takes. */
int tp__mp_scan(const uint8_t *p, size_t len, const tp_unpack_limits *lim,
                size_t *need);

#endif /* TP_ACTORS_PACK_INT_H */
