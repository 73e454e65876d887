/*
 * supervisor/backoff.c - exponential restart backoff with jitter (beyond
 * OTP, which restarts at once). The jitter (+-25 %) spreads the restarts of
 * children that failed together (a lost database, say) so they do not all
 * hit the resource again in the same millisecond.
 */
#include "sup_int.h"

uint32_t
tp__backoff_delay(uint32_t min_ms, uint32_t max_ms, uint32_t n, uint64_t *rng)
{
    uint64_t base, spread;

    if (min_ms == 0 || n == 0)
        return 0;
    if (max_ms < min_ms)
        max_ms = min_ms;
    /* min * 2^(n-1), capped before it can overflow. */
    base = n - 1 >= 32 ? max_ms : (uint64_t)min_ms << (n - 1);
    if (base > max_ms)
        base = max_ms;
    spread = base / 4;
    if (spread == 0)
        return (uint32_t)base;
    return (uint32_t)(base - spread + tp__rand_next(rng) % (2 * spread + 1));
}
