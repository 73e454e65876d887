/*
 * tests/soak/soakutil.h - what the soak and overload tests measure about a
 * process: resident memory and open file descriptors from /proc, sampled
 * once a second into a CSV, and whether a series grows (least-squares
 * slope over the second half of the run, after warm-up).
 */
#ifndef TP_SOAKUTIL_H
#define TP_SOAKUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Resident set of pid in KiB (VmRSS), or -1. */
long soak_rss_kb(pid_t pid);
/* Open file descriptors of pid (entries of /proc/PID/fd), or -1. */
long soak_fd_count(pid_t pid);

/* Least-squares line through (x[i], y[i]), i in [from, n). Returns the
 * slope (y units per x unit); *intercept may be NULL. 0 when n - from < 2. */
double soak_slope(const double *x, const double *y, size_t from, size_t n,
                  double *intercept);

/* A growth verdict on a series sampled at x (seconds): the slope over the
 * second half, projected over an hour, relative to the series' median
 * there. */
struct soak_trend {
    double slope;       /* units per second, second half */
    double per_hour;    /* slope * 3600 */
    double median;      /* of the second half */
    double first, last; /* fitted values at the ends of the second half */
};

void soak_trend(const double *x, const double *y, size_t n,
                struct soak_trend *out);

/* Monotonic milliseconds. */
uint64_t soak_now_ms(void);

#endif
