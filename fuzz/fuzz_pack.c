/*
 * fuzz/fuzz_pack.c - libFuzzer target for the msgpack reader and printer.
 *
 * Every input goes through the validation scan, the decoder (one decoder
 * reused across inputs, as a scheduler's is), and the printer into a small
 * and a large buffer. Checks, besides "no crash, no sanitizer report":
 *  - the scan and the decoder agree;
 *  - what we accept, msgpack-c's own unpacker accepts too and decodes to
 *    the same value (differential check, tests/msgpack_ref.h); we never run
 * msgpack-c on input we reject (it would reserve what hostile headers
 * announce);
 *  - re-packing an accepted object gives a payload we accept, equal again;
 *  - the arena held after a read stays in proportion to that payload;
 *  - the printer NUL-terminates within the buffer and reports success
 *    exactly for accepted input that fits.
 */
#include "tests/msgpack_ref.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tp_unpacker *reader;

static void
check_reference(const uint8_t *data, size_t size, const tp_value *o)
{
    msgpack_zone z;
    msgpack_object ref;
    size_t off = 0;

    if (!msgpack_zone_init(&z, 4096))
        abort();
    if (msgpack_unpack((const char *)data, size, &off, &z, &ref) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != size || !tpt_value_matches_msgpack(o, &ref))
        abort();
    msgpack_zone_destroy(&z);
}

static void
check_repack(const tp_value *o)
{
    static tp_unpacker *again;
    tp_value o2;
    tp_pack p;

    if (again == NULL && tp_unpacker_new(&again, NULL) != 0)
        abort();
    tp_pack_init(&p);
    if (tp_pack_object(&p, o) != 0 || tp_pack_status(&p) != 0 ||
        tp_unpacker_read(again, tp_pack_data(&p), tp_pack_len(&p), &o2) != 0 ||
        !tpt_value_same(o, &o2))
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
    tp_value o;
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
