/*
 * fuzz/fuzz_ws.c - libFuzzer target for the WebSocket frame decoder
 * (net/ws_frame.c), both directions (a server decoding masked client
 * frames, a client decoding unmasked server frames).
 *
 * The first input byte picks a split point; the rest is the stream. It is
 * decoded whole, split in two at that point, and byte by byte. Checks,
 * besides "no crash, no sanitizer report":
 *  - the three runs see the same messages (opcode, length, bytes hashed)
 *    and end with the same result: where TCP splits a stream must not
 *    matter;
 *  - every text message and close reason delivered is valid UTF-8, every
 *    close code delivered is one a Close frame may carry, every control
 *    payload is at most 125 bytes and every data message at most the
 *    limit;
 *  - after the decode calls, an idle decoder holds no buffer.
 */
#include "net/ws_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG 4096u

struct run {
    uint64_t hash;
    unsigned count;
};

static void
fail_if(int cond)
{
    if (cond)
        abort();
}

static int
on_msg(void *user, int op, char *p, size_t n)
{
    struct run *r = user;
    uint32_t st = 0;

    if (op == TP__WS_TEXT)
        fail_if(!tp__ws_utf8(&st, (const uint8_t *)p, n) || st != 0);
    if (op == TP__WS_CLOSE && n >= 2) {
        fail_if(!tp__ws_code_ok((unsigned)(uint8_t)p[0] << 8 | (uint8_t)p[1]));
        fail_if(!tp__ws_utf8(&st, (const uint8_t *)p + 2, n - 2) || st != 0);
    }
    fail_if(op >= 0x8 ? n > 125 : n > MAX_MSG);
    r->hash = (r->hash ^ (uint64_t)op) * 1099511628211ull;
    r->hash = (r->hash ^ n) * 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ (uint8_t)p[i]) * 1099511628211ull;
    r->count++;
    return 0;
}

/* Decodes p[0..n) in pieces of `step` bytes (0: whole, else the first
 * piece is `cut` bytes, then the rest in `step`-byte pieces). */
static int
run(const uint8_t *p, size_t n, bool client, size_t cut, size_t step,
    struct run *out)
{
    struct tp__ws_dec d;
    size_t off = 0;
    int r = 0;

    memset(out, 0, sizeof(*out));
    tp__ws_dec_init(&d, MAX_MSG, client);
    if (step == 0) {
        r = tp__ws_decode(&d, p, n, on_msg, out);
    } else {
        size_t first = cut < n ? cut : n;
        r = tp__ws_decode(&d, p, first, on_msg, out);
        for (off = first; off < n && r == 0; off += step) {
            size_t k = n - off < step ? n - off : step;
            r = tp__ws_decode(&d, p + off, k, on_msg, out);
        }
    }
    if (r == 0 && !d.in_frame && d.msg_op == 0 && d.len == 0)
        fail_if(d.buf != NULL);
    tp__ws_dec_fini(&d);
    return r;
}

static void
check(const uint8_t *p, size_t n, bool client, size_t cut)
{
    struct run a, b, c;
    int ra = run(p, n, client, 0, 0, &a);
    int rb = run(p, n, client, cut, n + 1, &b);
    int rc = run(p, n, client, 1, 1, &c);

    fail_if(ra != rb || ra != rc);
    fail_if(a.count != b.count || a.count != c.count);
    fail_if(a.hash != b.hash || a.hash != c.hash);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    check(data + 1, size - 1, false, data[0]);
    check(data + 1, size - 1, true, data[0]);
    return 0;
}
