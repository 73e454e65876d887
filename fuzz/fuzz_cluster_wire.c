/*
 * fuzz/fuzz_cluster_wire.c - libFuzzer target for the cluster's frame
 * decoder (cluster/wire.c): a NATS message is a batch of frames, and
 * anyone who can publish on the cluster's subjects controls its bytes.
 *
 * The input is walked as a batch (tp__wire_next until it fails or ends);
 * each frame's payload is then decoded as an exit reason and as node info.
 * Checks, besides "no crash, no sanitizer report":
 *  - a frame never claims bytes past the input, and the walk always
 *    progresses (used >= the header);
 *  - a frame decoded is encoded back to the same header bytes;
 *  - a decoded reason's text lies inside the payload, a decoded node name
 *    is a valid name, NUL-terminated.
 */
#include "cluster/cluster_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail_if(int cond)
{
    if (cond)
        abort();
}

static void
payloads(const unsigned char *p, size_t n)
{
    struct tp__wire_node w;
    tp_exit_reason r;
    size_t tlen;

    if (tp__wire_get_reason(p, n, &r, &tlen) == 0) {
        fail_if(tlen > n);
        fail_if(tlen != 0 && ((const unsigned char *)r.text < p ||
                              (const unsigned char *)r.text + tlen > p + n));
    }
    memset(&w, 0, sizeof(w));
    if (tp__wire_get_node(p, n, &w) == 0) {
        fail_if(memchr(w.name, '\0', sizeof(w.name)) == NULL);
        fail_if(!tp__wire_name_ok(w.name));
        /* With or without link fields: encodes back to the same bytes. */
        unsigned char again[13 + TP_NODE_NAME_MAX + 14];
        fail_if(tp__wire_node_size(&w) != n);
        tp__wire_put_node(again, &w);
        fail_if(memcmp(again, p, n) != 0);
        fail_if(w.has_link && (w.link_port == 0 || w.link_ip == 0));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data, *payload;
    size_t left = size;

    for (int frames = 0; left > 0 && frames < 4096; frames++) {
        struct tp__wire_hdr h;
        unsigned char again[TP__WIRE_HDR];
        size_t used;

        if (tp__wire_next(p, left, &h, &payload, &used) != 0)
            break;
        fail_if(used < TP__WIRE_HDR || used > left);
        fail_if(payload != p + TP__WIRE_HDR || h.len != used - TP__WIRE_HDR);
        tp__wire_put_hdr(again, &h);
        /* Bytes 6..7 are reserved (written 0, not read). */
        fail_if(memcmp(again, p, 6) != 0 ||
                memcmp(again + 8, p + 8, TP__WIRE_HDR - 8) != 0);
        payloads(payload, h.len);
        p += used;
        left -= used;
    }
    return 0;
}
