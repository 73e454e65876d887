/*
 * fuzz/fuzz_pack.c - libFuzzer target for the msgpack reader and printer.
 *
 * Every input goes through the validation scan, the decoder (one decoder
 * reused across inputs, as a scheduler's is), and the printer into a small
 * and a large buffer. Checks, besides "no crash, no sanitizer report":
 *  - the scan and the decoder agree;
 *  - what we accept, msgpack-c's own unpacker accepts too and decodes to
 *    an equal object (differential check); we never run msgpack-c on
 *    input we reject (it would reserve what hostile headers announce);
 *  - re-packing an accepted object gives a payload we accept, equal again;
 *  - the arena held after a read stays in proportion to that payload;
 *  - the printer NUL-terminates within the buffer and reports success
 *    exactly for accepted input that fits.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tp_unpacker *reader;

/* msgpack_object_equal() with floats compared bit for bit: it says NaN
 * differs from itself (the first "crash" this target found). */
static bool
same(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof(double)) == 0;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return false;
        return true;
    default:
        return msgpack_object_equal(*a, *b);
    }
}

static void
check_reference(const uint8_t *data, size_t size, const msgpack_object *o)
{
    msgpack_zone z;
    msgpack_object ref;
    size_t off = 0;

    if (!msgpack_zone_init(&z, 4096))
        abort();
    if (msgpack_unpack((const char *)data, size, &off, &z, &ref) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != size || !same(&ref, o))
        abort();
    msgpack_zone_destroy(&z);
}

static void
check_repack(const msgpack_object *o)
{
    static tp_unpacker *again;
    msgpack_object o2;
    tp_pack p;

    if (again == NULL && tp_unpacker_new(&again, NULL) != 0)
        abort();
    tp_pack_init(&p);
    if (tp_pack_object(&p, o) != 0 || tp_pack_status(&p) != 0 ||
        tp_unpacker_read(again, tp_pack_data(&p), tp_pack_len(&p), &o2) != 0 ||
        !same(o, &o2))
        abort();
    tp_pack_fini(&p);
}

static void
check_print(const uint8_t *data, size_t size, size_t cap, bool valid)
{
    char *buf = malloc(cap + 1);
    int r;

    buf[cap] = 'Z';
    r = tp_pack_print(data, size, buf, cap);
    if (buf[cap] != 'Z' || (cap != 0 && strlen(buf) > cap - 1))
        abort();
    if (r >= 0 && (!valid || (size_t)r != strlen(buf)))
        abort();
    if (valid && r < 0 && r != -ENOBUFS)
        abort();
    free(buf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int checked = tp_pack_check(data, size, NULL);
    msgpack_object o;
    int read;

    if (reader == NULL && tp_unpacker_new(&reader, NULL) != 0)
        abort();
    read = tp_unpacker_read(reader, data, size, &o);
    if (read != checked)
        abort();
    if (read == 0) {
        /* What a payload may leave held: max(64 KiB, 4 x its need), its
         * need being at most 24 bytes per payload byte. */
        size_t fp = tp_unpacker_footprint(reader);
        if (fp > 4 * 24 * size && fp > 64 * 1024)
            abort();
        check_reference(data, size, &o);
        check_repack(&o);
    }
    check_print(data, size, 24, read == 0);
    check_print(data, size, 4096, read == 0);
    return 0;
}
