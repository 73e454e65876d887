/*
 * console/prom.c - writing the Prometheus text exposition format (0.0.4):
 * "# HELP name text", "# TYPE name type", then "name{label="v"} value"
 * lines. Help text escapes \ and newline; label values escape \, " and
 * newline; values are written so that integers stay exact.
 */
#include "console_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void
tp__prom_family(struct tp__cbuf *b, const char *name, const char *type,
                const char *help)
{
    tp__cbuf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\')
            tp__cbuf_puts(b, "\\\\");
        else if (*p == '\n')
            tp__cbuf_puts(b, "\\n");
        else
            tp__cbuf_put(b, p, 1);
    }
    tp__cbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

void
tp__prom_label_escape(char *out, size_t cap, const char *v)
{
    size_t n = 0;

    for (; *v != '\0' && n + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[n++] = '\\';
            out[n++] = *v;
        } else if (*v == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *v;
        }
    }
    out[n] = '\0';
}

void
tp__prom_sample(struct tp__cbuf *b, const char *name, const char *labels,
                double v)
{
    char num[64];

    if (isnan(v))
        snprintf(num, sizeof(num), "NaN");
    else if (isinf(v))
        snprintf(num, sizeof(num), v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        snprintf(num, sizeof(num), "%.0f", v);
    else
        snprintf(num, sizeof(num), "%.17g", v);
    if (labels != NULL && labels[0] != '\0')
        tp__cbuf_printf(b, "%s{%s} %s\n", name, labels, num);
    else
        tp__cbuf_printf(b, "%s %s\n", name, num);
}

void
tp__prom_one(struct tp__cbuf *b, const char *name, const char *type,
             const char *help, double v)
{
    tp__prom_family(b, name, type, help);
    tp__prom_sample(b, name, NULL, v);
}
