/*
 * console/sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), for
 * the console's challenge-response login. Plain C, no runtime: troupectl
 * compiles the same file. Checked against the FIPS and RFC 4231 vectors
 * (tests/test_console_unit.c).
 */
#ifndef TP_CONSOLE_SHA256_H
#define TP_CONSOLE_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TP__SHA256_LEN 32
#define TP__NONCE_HEX  32 /* login nonces: 16 random bytes in hex */

struct tp__sha256 {
    uint32_t h[8];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
};

void tp__sha256_init(struct tp__sha256 *s);
void tp__sha256_update(struct tp__sha256 *s, const void *data, size_t len);
void tp__sha256_final(struct tp__sha256 *s, unsigned char out[TP__SHA256_LEN]);

/* out = HMAC-SHA256(key, msg). */
void tp__hmac_sha256(const void *key, size_t klen, const void *msg, size_t mlen,
                     unsigned char out[TP__SHA256_LEN]);

/* Lower-case hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void tp__hex(const unsigned char *p, size_t n, char *out);

/* Equal in time independent of where they differ (same length n). */
int tp__mem_equal(const void *a, const void *b, size_t n);

/*
 * The console's login proofs (docs/CONSOLE.md, "Trust"): each side proves
 * it knows the token without sending it, bound to both nonces and to the
 * server's address as the client dialled it ("127.0.0.1:7070"), so a
 * relay on another port cannot pass a real server's proof on.
 *   server: HMAC(token, "troupe-console server\n" cnonce "\n" snonce "\n" addr)
 *   client: HMAC(token, "troupe-console client\n" cnonce "\n" snonce "\n" addr)
 * Writes the proof as 64 hex digits into out (65 bytes).
 */
void tp__login_proof(const char *token, int server, const char *cnonce,
                     const char *snonce, const char *addr, char out[65]);

#endif /* TP_CONSOLE_SHA256_H */
