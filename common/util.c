/*
 * common/util.c - pids as text, error strings, clocks, process memory.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *
tp_pid_format(tp_pid pid, char *buf, size_t size)
{
    snprintf(buf, size, "<%" PRIu32 ".%" PRIu32 ">", tp_pid_index(pid),
             tp_pid_gen(pid));
    return buf;
}

int
tp_pid_parse(const char *text, tp_pid *out)
{
    unsigned long long idx, gen;
    char *end;

    if (text == NULL || *text == '\0')
        return -EINVAL;
    if (*text == '<')
        text++;
    errno = 0;
    idx = strtoull(text, &end, 10);
    if (end == text || errno != 0)
        return -EINVAL;
    if (*end == '\0' && text[-1] != '<') {
        *out = (tp_pid)idx; /* raw 64-bit value */
        return *out == TP_PID_NONE ? -EINVAL : 0;
    }
    if (*end != '.' || idx > UINT32_MAX)
        return -EINVAL;
    text = end + 1;
    gen = strtoull(text, &end, 10);
    if (end == text || errno != 0 || gen > UINT32_MAX || gen == 0)
        return -EINVAL;
    if (*end == '>')
        end++;
    if (*end != '\0')
        return -EINVAL;
    *out = ((tp_pid)gen << 32) | (tp_pid)idx;
    return 0;
}

const char *
tp_strerror(int err)
{
    if (err < 0)
        err = -err;
    switch (err) {
    case 0:
        return "success";
    case ESRCH:
        return "no such actor (dead or never existed)";
    case EAGAIN:
        return "mailbox full (message rejected)";
    case EEXIST:
        return "name already registered";
    case ESHUTDOWN:
        return "runtime is stopping";
    case ETIMEDOUT:
        return "timed out";
    case EBADMSG:
        return "malformed message";
    case EMSGSIZE:
        return "message too large";
    case ENOBUFS:
        return "buffer limit reached";
    default:
        return strerror(err);
    }
}

uint64_t
tp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
tp__rss_bytes(void)
{
    unsigned long long resident = 0;
    char line[128], *end;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    /* "size resident shared ..." in pages. */
    if (fgets(line, sizeof(line), f) != NULL) {
        strtoull(line, &end, 10);
        resident = strtoull(end, NULL, 10);
    }
    fclose(f);
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}
