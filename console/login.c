/*
 * console/login.c - the challenge-response login of a TCP line session
 * (docs/CONSOLE.md, "Trust"):
 *
 *   client: hello CNONCE               (32 hex digits, fresh)
 *   server: challenge SNONCE SPROOF    (SPROOF: the server knows the token)
 *   client: login CPROOF               (CPROOF: the client knows it too)
 *   server: ok | error: ...
 *
 * The proofs (console/sha256.h) bind the token to both nonces and to the
 * server's address as the client dialled it, so the token itself never
 * crosses the connection, a fake server learns nothing it can replay, and
 * a relay on another port cannot pass the real server's proof on (its own
 * address differs). troupectl checks SPROOF before it sends anything that
 * depends on the token.
 */
#include "console_int.h"
#include "sha256.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void
tp__addr_canon(const tp_net_addr *a, char *out, size_t cap)
{
    static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
    tp_net_addr v4;

    if (a->family == TP_NET_INET6 && memcmp(a->addr, mapped, 12) == 0) {
        memset(&v4, 0, sizeof(v4));
        v4.family = TP_NET_INET;
        v4.port = a->port;
        memcpy(v4.addr, a->addr + 12, 4);
        a = &v4;
    }
    if (tp_net_addr_format(a, out, cap) < 0 && cap > 0)
        out[0] = '\0';
}

static bool
is_nonce(const char *s)
{
    size_t n = strlen(s);

    if (n != TP__NONCE_HEX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

int
tp__login_hello(struct tp__login *l, const char *token,
                const tp_net_addr *local, const char *cnonce, char *out,
                size_t cap)
{
    unsigned char r[TP__NONCE_HEX / 2];
    char proof[65];

    if (l->challenged)
        return -EALREADY;
    if (!is_nonce(cnonce))
        return -EINVAL;
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return -EIO;
    tp__hex(r, sizeof(r), l->snonce);
    memcpy(l->cnonce, cnonce, TP__NONCE_HEX + 1);
    tp__addr_canon(local, l->addr, sizeof(l->addr));
    l->challenged = true;
    tp__login_proof(token, 1, l->cnonce, l->snonce, l->addr, proof);
    snprintf(out, cap, "challenge %s %s\n", l->snonce, proof);
    return 0;
}

bool
tp__login_check(const struct tp__login *l, const char *token, const char *proof)
{
    char want[65];

    if (!l->challenged || strlen(proof) != 64)
        return false;
    tp__login_proof(token, 0, l->cnonce, l->snonce, l->addr, want);
    return tp__mem_equal(want, proof, 64);
}
