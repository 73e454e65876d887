/*
 * tests/soak/soakutil.c - see soakutil.h.
 */
#define _GNU_SOURCE
#include "soakutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

long
soak_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

long
soak_fd_count(pid_t pid)
{
    char path[64];
    struct dirent *e;
    long n = 0;
    DIR *d;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    if ((d = opendir(path)) == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    /* A count of our own process includes the directory stream. */
    return pid == getpid() ? n - 1 : n;
}

double
soak_slope(const double *x, const double *y, size_t from, size_t n,
           double *intercept)
{
    double sx = 0, sy = 0, sxx = 0, sxy = 0, k, den;

    if (n < from + 2) {
        if (intercept != NULL)
            *intercept = n > from ? y[from] : 0;
        return 0;
    }
    k = (double)(n - from);
    for (size_t i = from; i < n; i++) {
        sx += x[i];
        sy += y[i];
        sxx += x[i] * x[i];
        sxy += x[i] * y[i];
    }
    den = k * sxx - sx * sx;
    if (den == 0) {
        if (intercept != NULL)
            *intercept = sy / k;
        return 0;
    }
    if (intercept != NULL)
        *intercept = (sy * sxx - sx * sxy) / den;
    return (k * sxy - sx * sy) / den;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

void
soak_trend(const double *x, const double *y, size_t n, struct soak_trend *out)
{
    size_t from = n / 2, m = n - from;
    double b = 0, *tmp;

    memset(out, 0, sizeof(*out));
    if (m == 0)
        return;
    out->slope = soak_slope(x, y, from, n, &b);
    out->per_hour = out->slope * 3600.0;
    out->first = b + out->slope * x[from];
    out->last = b + out->slope * x[n - 1];
    tmp = malloc(m * sizeof(*tmp));
    if (tmp == NULL)
        return;
    memcpy(tmp, y + from, m * sizeof(*tmp));
    qsort(tmp, m, sizeof(*tmp), cmp_double);
    out->median = m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
    free(tmp);
}

uint64_t
soak_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
