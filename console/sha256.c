/*
 * console/sha256.c - SHA-256 and HMAC-SHA256; see sha256.h.
 */
#include "sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t
ror(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

/* The message schedule of one block. */
static void
schedule(const unsigned char *blk, uint32_t w[64])
{
    for (int i = 0; i < 16; i++)
        w[i] = be32(blk + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
}

static void
compress(uint32_t h[8], const unsigned char *blk)
{
    uint32_t w[64], v[8];

    schedule(blk, w);
    memcpy(v, h, sizeof(v));
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25);
        uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
        uint32_t t1 = v[7] + s1 + ch + K[i] + w[i];
        uint32_t s0 = ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22);
        uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        memmove(v + 1, v, 7 * sizeof(uint32_t));
        v[4] += t1;
        v[0] = t1 + s0 + maj;
    }
    for (int i = 0; i < 8; i++)
        h[i] += v[i];
}

void
tp__sha256_init(struct tp__sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};

    memcpy(s->h, iv, sizeof(iv));
    s->bytes = 0;
    s->used = 0;
}

void
tp__sha256_update(struct tp__sha256 *s, const void *data, size_t len)
{
    const unsigned char *p = data;

    s->bytes += len;
    while (len > 0) {
        size_t n = 64 - s->used < len ? 64 - s->used : len;
        memcpy(s->block + s->used, p, n);
        s->used += n;
        p += n;
        len -= n;
        if (s->used == 64) {
            compress(s->h, s->block);
            s->used = 0;
        }
    }
}

void
tp__sha256_final(struct tp__sha256 *s, unsigned char out[TP__SHA256_LEN])
{
    uint64_t bits = s->bytes * 8;
    unsigned char pad = 0x80, len[8];

    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(bits >> (56 - 8 * i));
    tp__sha256_update(s, &pad, 1);
    pad = 0;
    while (s->used != 56)
        tp__sha256_update(s, &pad, 1);
    tp__sha256_update(s, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (unsigned char)(s->h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
        out[4 * i + 3] = (unsigned char)s->h[i];
    }
}

void
tp__hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                unsigned char out[TP__SHA256_LEN])
{
    unsigned char k[64] = {0}, pad[64], inner[TP__SHA256_LEN];
    struct tp__sha256 s;

    if (klen > 64) {
        tp__sha256_init(&s);
        tp__sha256_update(&s, key, klen);
        tp__sha256_final(&s, k);
    } else {
        memcpy(k, key, klen);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    tp__sha256_init(&s);
    tp__sha256_update(&s, pad, 64);
    tp__sha256_update(&s, msg, mlen);
    tp__sha256_final(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    tp__sha256_init(&s);
    tp__sha256_update(&s, pad, 64);
    tp__sha256_update(&s, inner, sizeof(inner));
    tp__sha256_final(&s, out);
}

void
tp__hex(const unsigned char *p, size_t n, char *out)
{
    static const char dig[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = dig[p[i] >> 4];
        out[2 * i + 1] = dig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int
tp__mem_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;

    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}

void
tp__login_proof(const char *token, int server, const char *cnonce,
                const char *snonce, const char *addr, char out[65])
{
    /* Bounded inputs: nonces are 32 hex digits, addr a "host:port". */
    char msg[512];
    unsigned char mac[TP__SHA256_LEN];
    size_t n = 0;
    const char *parts[] = {server ? "troupe-console server"
                                  : "troupe-console "
                                    "client",
                           cnonce, snonce, addr};

    for (int i = 0; i < 4; i++) {
        size_t l = strnlen(parts[i], 120);
        memcpy(msg + n, parts[i], l);
        n += l;
        if (i < 3)
            msg[n++] = '\n';
    }
    tp__hmac_sha256(token, strlen(token), msg, n, mac);
    tp__hex(mac, sizeof(mac), out);
}
