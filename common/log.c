/*
 * common/log.c - leveled logging to a replaceable sink (stderr by default).
 */
#include "common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_int log_level = TP_LOG_WARN;
static _Atomic(tp_log_sink) log_sink;
static _Atomic(void *) log_user;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
tp_log_set_level(tp_log_level level)
{
    if (level < TP_LOG_ERROR)
        level = TP_LOG_ERROR;
    if (level > TP_LOG_DEBUG)
        level = TP_LOG_DEBUG;
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

tp_log_level
tp_log_get_level(void)
{
    return atomic_load_explicit(&log_level, memory_order_relaxed);
}

const char *
tp_log_level_name(tp_log_level level)
{
    if (level < TP_LOG_ERROR || level > TP_LOG_DEBUG)
        return "?";
    return level_names[level];
}

int
tp_log_level_parse(const char *name, tp_log_level *out)
{
    for (int i = 0; i <= TP_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (tp_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void
tp_log_set_sink(tp_log_sink sink, void *user)
{
    /* user is published before sink so a reader that sees the new sink
     * sees its user pointer (release/acquire pair). */
    atomic_store_explicit(&log_user, user, memory_order_relaxed);
    atomic_store_explicit(&log_sink, sink, memory_order_release);
}

static void
default_sink(tp_log_level level, const char *line)
{
    struct timespec ts;
    struct tm tm;
    char stamp[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld troupe %-5s %s\n", stamp, ts.tv_nsec / 1000000,
            tp_log_level_name(level), line);
}

void
tp__vlog(tp_log_level level, const char *fmt, va_list ap)
{
    char line[1024];
    tp_log_sink sink;

    if (!tp__log_enabled(level))
        return;
    vsnprintf(line, sizeof(line), fmt, ap);
    sink = atomic_load_explicit(&log_sink, memory_order_acquire);
    if (sink != NULL)
        sink(atomic_load_explicit(&log_user, memory_order_relaxed), level,
             line);
    else
        default_sink(level, line);
}

void
tp_log(tp_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tp__vlog(level, fmt, ap);
    va_end(ap);
}

/* Set by the runtime's fault trap (runtime/fault.c) so that the abort of a
 * failed assertion is never recovered as the running actor's crash. */
void (*_Atomic tp__assert_prepare)(void);

void
tp__assert_fail(const char *cond, const char *file, int line, const char *func)
{
    void (*prepare)(void) = atomic_load(&tp__assert_prepare);

    if (prepare != NULL)
        prepare();
    fprintf(stderr, "troupe: assertion failed: %s (%s:%d, %s)\n", cond, file,
            line, func);
    fflush(stderr);
    abort();
}
