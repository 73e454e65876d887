/*
 * troupe/pack.h - structured message payloads in MessagePack: a builder,
 * a bounded reader that decodes into tp_value trees without allocating per
 * message, and a printer for logs and the console's trace.
 *
 * A packed payload holds exactly one MessagePack value (use an array or a
 * map to carry several). The same bytes can cross to the console, a file or
 * another node.
 *
 * Reading is bounded. Before anything is decoded the whole payload is
 * scanned, without allocating, and rejected when:
 *  - it is longer than the limit's max_size (-EMSGSIZE);
 *  - it is malformed: a reserved byte (0xc1), a value cut short, a string,
 *    binary or ext longer than the bytes left, a container announcing more
 *    elements than there are bytes left (every element takes at least one
 *    byte), or bytes after the value (-EBADMSG);
 *  - containers nest deeper than max_depth (-E2BIG).
 * A payload that passes decodes into tp_value nodes taken from a reusable
 * arena: at most 24 bytes of arena per payload byte (one 24-byte tp_value
 * per element, every element at least one byte), and no allocation at all
 * once the arena is large enough. Strings, binaries and ext bodies are not
 * copied: they point into the payload.
 *
 * The API has no third-party type in it: Troupe's encoder and decoder are
 * its own, so the layout of tp_pack and tp_value is Troupe's ABI alone (a
 * program may still hand tp_pack_data()'s bytes to any MessagePack
 * library).
 *
 * Error codes used here (negative errno, as everywhere in Troupe):
 *   -EBADMSG   malformed payload (see above)
 *   -EMSGSIZE  payload (or a payload being built) larger than the limit
 *   -E2BIG     nesting deeper than the depth limit
 *   -ENOBUFS   printer output did not fit the caller's buffer (truncated)
 *   -ENODATA   printer: the payload ends inside a value (a prefix, e.g. a
 *              traced message cut at TP_TRACE_MAX_DATA bytes)
 *   -EINVAL    bad argument, or an incomplete payload handed to a send
 *   -ENOMEM    out of memory
 */
#ifndef TROUPE_PACK_H
#define TROUPE_PACK_H

#include <troupe/actor.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default largest payload the reader accepts and the builder produces. */
#define TP_PACK_MAX_SIZE  (1u << 20)
/** Default and largest container nesting (a top-level array is depth 1). */
#define TP_PACK_MAX_DEPTH 32u
/** Bytes of payload a tp_pack holds inline before it allocates. */
#define TP_PACK_INLINE    256u

/* ---------------------------------------------------------------------- */
/* Values                                                                  */

/** The type of a decoded value. */
typedef enum tp_value_type {
    TP_VALUE_NIL = 0, /**< no member */
    TP_VALUE_BOOL,    /**< via.boolean */
    TP_VALUE_UINT,    /**< via.u64: an integer >= 0, whatever its encoding */
    TP_VALUE_INT,     /**< via.i64: an integer < 0 */
    TP_VALUE_FLOAT32, /**< via.f64 (the float32, widened) */
    TP_VALUE_FLOAT64, /**< via.f64 */
    TP_VALUE_STR,     /**< via.str: bytes, not NUL-terminated */
    TP_VALUE_BIN,     /**< via.bin */
    TP_VALUE_EXT,     /**< via.ext: application type and body */
    TP_VALUE_ARRAY,   /**< via.array: size elements */
    TP_VALUE_MAP      /**< via.map: size key/value pairs, in wire order */
} tp_value_type;

typedef struct tp_value_kv tp_value_kv;

/**
 * One MessagePack value: what tp_unpack() decodes into and
 * tp_pack_object() encodes (24 bytes on 64-bit systems). Read the member
 * of via that type names. Decoded trees are read-only and live in their
 * decoder's arena (see tp_unpacker_read()).
 */
typedef struct tp_value {
    tp_value_type type; /**< which member of via holds the value */
    /** The value; str, bin, ext: bytes pointing into the payload. */
    union {
        bool boolean;
        uint64_t u64;
        int64_t i64;
        double f64;
        struct {
            uint32_t size;
            const char *ptr;
        } str, bin;
        struct {
            int8_t type; /**< 0..127 application types; < 0 reserved */
            uint32_t size;
            const char *ptr;
        } ext;
        struct {
            uint32_t size;
            const struct tp_value *ptr;
        } array;
        struct {
            uint32_t size;
            const tp_value_kv *ptr;
        } map;
    } via;
} tp_value;

/** A map entry. */
struct tp_value_kv {
    tp_value key; /**< the key (any type) */
    tp_value val; /**< its value */
};

/* ---------------------------------------------------------------------- */
/* Building                                                                */

/**
 * A payload under construction. Lives wherever the caller puts it (the
 * stack is fine: small payloads need no allocation); fill with
 * tp_pack_init(), release with tp_pack_fini(). Fields are private, and a
 * tp_pack must not be copied (it points into itself). Its size is fixed
 * (464 bytes on 64-bit systems; reserved[] absorbs future private fields),
 * so a program built against one Troupe release keeps working with the
 * next.
 *
 * Every appender adds one value (tp_pack_array/map open a container whose
 * next n (map: 2n, key then value) values are its elements) and returns 0
 * or the first error met, which sticks: later calls do nothing and return
 * it again, so a sequence of appends can be checked once at the end.
 * Errors: -EMSGSIZE (the payload would exceed the limit, or a container
 * announces more elements than the limit has bytes), -E2BIG (deeper than
 * TP_PACK_MAX_DEPTH), -EINVAL (a value after the top-level value was
 * complete, NULL data with a length), -ENOMEM.
 * Not thread-safe: one tp_pack, one thread at a time.
 */
typedef struct tp_pack {
    char *buf;     /**< private: inline_buf or a heap buffer */
    size_t len;    /**< private: bytes written */
    size_t cap;    /**< private: bytes available in buf */
    size_t max;    /**< private: limit on len */
    int err;       /**< private: sticky first error (0 = none) */
    uint8_t depth; /**< private: containers open now (0 = top level) */
    uint8_t done;  /**< private: 1 once the top-level value is complete */
    /** Private: values still expected per level (left[0]: the top-level
     *  value). */
    uint32_t left[TP_PACK_MAX_DEPTH + 1];
    void *reserved[4]; /**< private: zero, for future use */
    /** Private: the first TP_PACK_INLINE bytes of storage, so a small
     *  payload needs no allocation. */
    char inline_buf[TP_PACK_INLINE];
} tp_pack;

/** Prepares an empty builder with limit TP_PACK_MAX_SIZE. Never fails. */
TP_API void tp_pack_init(tp_pack *p);

/**
 * Sets the size limit (at most INT32_MAX, the largest message). Returns 0,
 * or -EINVAL (0, too large, or below what is already written).
 */
TP_API int tp_pack_set_max(tp_pack *p, size_t max);

/** Empties the builder for another payload; keeps its buffer and limit. */
TP_API void tp_pack_reset(tp_pack *p);

/** Frees the builder's heap buffer, if any. p may be reused after init. */
TP_API void tp_pack_fini(tp_pack *p);

TP_API int tp_pack_nil(tp_pack *p);
TP_API int tp_pack_bool(tp_pack *p, bool v);
/** Integers use the smallest MessagePack encoding of the value. */
TP_API int tp_pack_int(tp_pack *p, int64_t v);
TP_API int tp_pack_uint(tp_pack *p, uint64_t v);
/** A float32 value. */
TP_API int tp_pack_float(tp_pack *p, float v);
/** A float64 value. */
TP_API int tp_pack_double(tp_pack *p, double v);
/** A UTF-8 string of len bytes (not checked; may contain NULs). */
TP_API int tp_pack_str(tp_pack *p, const char *s, size_t len);
/** A NUL-terminated string. */
TP_API int tp_pack_cstr(tp_pack *p, const char *s);
/** A binary of len bytes. */
TP_API int tp_pack_bin(tp_pack *p, const void *data, size_t len);
/** An extension value of application type `type` (0..127). */
TP_API int tp_pack_ext(tp_pack *p, int8_t type, const void *data, size_t len);
/** Opens an array of n elements (the next n values). */
TP_API int tp_pack_array(tp_pack *p, uint32_t n);
/** Opens a map of n pairs (the next 2n values: key, value, ...). */
TP_API int tp_pack_map(tp_pack *p, uint32_t n);
/**
 * Appends a whole value tree (e.g. one read with tp_unpack(), or one the
 * caller built), however deep: it counts as one value here; its own depth
 * is not checked. -EINVAL for an unknown type or a NULL body with a size.
 */
TP_API int tp_pack_object(tp_pack *p, const tp_value *o);

/**
 * 0 when the payload is complete (one whole top-level value); the sticky
 * error if one occurred; -EINVAL if it is empty or containers are still
 * waiting for elements.
 */
TP_API int tp_pack_status(const tp_pack *p);

/** The bytes written so far (valid until the next call on p). */
TP_API const void *tp_pack_data(const tp_pack *p);

/** Number of bytes written so far. */
TP_API size_t tp_pack_len(const tp_pack *p);

/**
 * Sends a copy of the complete payload as message `type`; p is unchanged
 * (reset it to build the next one). Errors: tp_pack_status()'s, then as
 * tp_send(). Thread: an actor callback.
 */
TP_API int tp_send_packed(tp_ctx *ctx, tp_pid to, uint32_t type,
                          const tp_pack *p);

/** tp_send_packed() from a thread that is not running an actor. */
TP_API int tp_runtime_send_packed(tp_runtime *rt, tp_pid to, uint32_t type,
                                  const tp_pack *p);

/** tp_request() with the payload of p (see troupe/request.h). */
TP_API int tp_request_packed(tp_ctx *ctx, tp_pid to, uint32_t type,
                             const tp_pack *p, uint32_t timeout_ms,
                             uint64_t *ref);

/** tp_reply() with the payload of p. */
TP_API int tp_reply_packed(tp_ctx *ctx, const tp_msg *request,
                           const tp_pack *p);

/**
 * A new blob holding a copy of the complete payload (for tp_send_blob() to
 * many receivers without copying per receiver). The caller owns the
 * reference. Returns NULL if p is not complete or on ENOMEM.
 */
TP_API tp_blob *tp_pack_blob(const tp_pack *p);

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

/** Reader limits; fill with tp_unpack_limits_init(). */
typedef struct tp_unpack_limits {
    size_t max_size;    /**< largest payload, bytes (default 1 MiB) */
    unsigned max_depth; /**< deepest nesting, 1..TP_PACK_MAX_DEPTH (32) */
} tp_unpack_limits;

/** Defaults: TP_PACK_MAX_SIZE bytes, TP_PACK_MAX_DEPTH levels. */
TP_API void tp_unpack_limits_init(tp_unpack_limits *lim);

/**
 * Validates a payload without decoding or allocating: 0, -EBADMSG,
 * -EMSGSIZE or -E2BIG (see the top of this file), -EINVAL (bad limits).
 * lim may be NULL for the defaults. Thread-safe.
 */
TP_API int tp_pack_check(const void *data, size_t len,
                         const tp_unpack_limits *lim);

/**
 * A decoder with its own limits and arena, for threads that are not
 * running an actor (main, tools) or for an actor that needs two decoded
 * payloads at once. Opaque.
 */
typedef struct tp_unpacker tp_unpacker;

/**
 * Creates a decoder (lim NULL: defaults). Returns 0 and *out, -EINVAL (bad
 * limits) or -ENOMEM. Free it with tp_unpacker_free().
 */
TP_API int tp_unpacker_new(tp_unpacker **out, const tp_unpack_limits *lim);

/** Frees a decoder and its arena (NULL is ignored). */
TP_API void tp_unpacker_free(tp_unpacker *u);

/**
 * Validates data[0..len) and decodes it into *out. The decoded tree lives
 * in u's arena until the next read on u (or tp_unpacker_free); its strings,
 * binaries and ext bodies point into data, so data must outlive it too.
 * The arena grows to fit (a payload needs at most 24 bytes per byte) and
 * is kept for the next read, so steady traffic does not allocate; after a
 * read it holds at most max(64 KiB, 4 x what that payload needed): a
 * large arena shrinks when a much smaller payload follows.
 * Errors: tp_pack_check()'s, -ENOMEM (*out is then untouched).
 * Not thread-safe: one decoder, one thread at a time.
 */
TP_API int tp_unpacker_read(tp_unpacker *u, const void *data, size_t len,
                            tp_value *out);

/** Bytes of arena the decoder holds now (for tests and statistics). */
TP_API size_t tp_unpacker_footprint(const tp_unpacker *u);

/**
 * Decodes msg's payload with the running scheduler's own decoder (default
 * limits; made on first use, freed with the runtime). The result is valid
 * until the next tp_unpack()/tp_unpack_bytes() on the same scheduler, at
 * the latest until the callback returns (keep what you need: copy it, or
 * re-pack it with tp_pack_object()). Errors as tp_unpacker_read().
 * Thread: an actor callback (init included).
 */
TP_API int tp_unpack(tp_ctx *ctx, const tp_msg *msg, tp_value *out);

/** tp_unpack() for any bytes (which must outlive the result). */
TP_API int tp_unpack_bytes(tp_ctx *ctx, const void *data, size_t len,
                           tp_value *out);

/* ---------------------------------------------------------------------- */
/* Printing                                                                */

/**
 * Writes a compact JSON-like text of the payload into buf (NUL-terminated
 * when size > 0), without allocating. The notation is JSON's with CBOR's
 * diagnostic extensions where JSON has none: map keys of any type
 * ({1:"a"}), binaries as h'0a1b', ext values as ext(5,h'00'), floats
 * always with a fraction or exponent (1.0), NaN, Infinity, -Infinity,
 * and \xNN for string bytes that are not UTF-8.
 *
 * Returns the text's length when the whole payload was printed, else:
 *   -ENOBUFS   the text did not fit: buf holds its start, ending in "..."
 *   -ENODATA   the payload ends inside a value (a prefix, such as a trace
 *              event's TP_TRACE_MAX_DATA bytes): buf holds what was there,
 *              ending in "..."
 *   -EBADMSG   a reserved byte, or bytes after the value ("..." marks it)
 *   -E2BIG     nesting deeper than TP_PACK_MAX_DEPTH ("..." marks it)
 * Printing is bounded by len and size whatever the payload announces.
 * Thread-safe.
 */
TP_API int tp_pack_print(const void *data, size_t len, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif /* TROUPE_PACK_H */
