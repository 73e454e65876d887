/*
 * console/promcheck.h - a strict parser for the Prometheus text exposition
 * format 0.0.4, used by the tests to check /metrics (and usable by any
 * tool). Stricter than scrapers: it also applies promtool's lint rules
 * that Troupe's output promises (counters end in _total, HELP for every
 * family, no duplicate series, histogram consistency).
 */
#ifndef TP_PROMCHECK_H
#define TP_PROMCHECK_H

#include <stdbool.h>
#include <stddef.h>

struct tp_promcheck_sample {
    const char *name;   /* metric name of the sample */
    const char *family; /* family it belongs to */
    const char *type;   /* the family's type */
    const char *labels; /* canonical: k="v",k2="v2" sorted, "" if none */
    double value;
    bool has_ts;
    long long ts;
};

/*
 * Parses text[0..len). For each sample calls fn (may be NULL). Returns the
 * number of samples, or -1 with a message ("line N: ...") in err.
 */
int tp_promcheck(const char *text, size_t len,
                 void (*fn)(void *user, const struct tp_promcheck_sample *s),
                 void *user, char *err, size_t errcap);

#endif
