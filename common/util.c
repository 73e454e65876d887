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
    if (tp_pid_is_remote(pid)) /* cluster pid: <node.index.gen> */
        snprintf(buf, size, "<%" PRIu32 ".%" PRIu32 ".%" PRIu32 ">",
                 tp_pid_node(pid), tp_pid_index(pid), tp_pid_gen(pid));
    else
        snprintf(buf, size, "<%" PRIu32 ".%" PRIu32 ">", tp_pid_index(pid),
                 tp_pid_gen(pid));
    return buf;
}

/* Reads up to 3 dot-separated decimal fields; returns how many or -1. */
static int
pid_fields(const char *text, unsigned long long f[3], bool bracket)
{
    int n = 0;
    char *end;

    for (;;) {
        if (*text < '0' || *text > '9')
            return -1;
        errno = 0;
        f[n++] = strtoull(text, &end, 10);
        if (errno != 0)
            return -1;
        text = end;
        if (*text != '.' || n == 3)
            break;
        text++;
    }
    if (bracket && *text == '>')
        text++;
    return *text == '\0' ? n : -1;
}

int
tp_pid_parse(const char *text, tp_pid *out)
{
    unsigned long long f[3], node = 0, idx, gen;
    bool bracket;
    int n;

    if (text == NULL || *text == '\0')
        return -EINVAL;
    bracket = *text == '<';
    n = pid_fields(text + bracket, f, bracket);
    if (n == 1 && !bracket) {
        *out = (tp_pid)f[0]; /* raw 64-bit value */
        return *out == TP_PID_NONE ? -EINVAL : 0;
    }
    if (n < 2)
        return -EINVAL;
    if (n == 3)
        node = f[0];
    idx = f[n - 2];
    gen = f[n - 1];
    if (idx > UINT32_MAX || gen == 0 || gen > TP_PID_GEN_MAX ||
        node > TP_PID_NODE_MAX || (n == 3 && node == 0))
        return -EINVAL;
    *out = tp_pid_with_node(((tp_pid)gen << 32) | (tp_pid)idx, (uint32_t)node);
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
