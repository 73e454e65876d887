/*
 * bench/benchutil.h - helpers shared by the benchmarks: the RESULT line
 * format, clocks and process memory.
 *
 * Output format (one line per figure, parsed by bench/run_all.sh):
 *   RESULT <name> <value> <unit>
 */
#ifndef TP_BENCHUTIL_H
#define TP_BENCHUTIL_H

#include <stdint.h>
#include <troupe.h>

/* Prints "RESULT <name> <value> <unit>" and flushes. */
void tpb_result(const char *name, double value, const char *unit);
/* Monotonic nanoseconds. */
uint64_t tpb_now_ns(void);
/* Resident set size in bytes. */
uint64_t tpb_rss(void);
/* Integer option "--name=value" or env TPB_NAME, else def. */
long tpb_opt(int argc, char **argv, const char *name, long def);

#endif
