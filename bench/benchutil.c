/*
 * bench/benchutil.c - see benchutil.h.
 */
#include "benchutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void
tpb_result(const char *name, double value, const char *unit)
{
    printf("RESULT %s %.6g %s\n", name, value, unit);
    fflush(stdout);
}

uint64_t
tpb_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
tpb_rss(void)
{
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

long
tpb_opt(int argc, char **argv, const char *name, long def)
{
    size_t n = strlen(name);
    char env[64] = "TPB_";

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) == 0 &&
            strncmp(argv[i] + 2, name, n) == 0 && argv[i][2 + n] == '=')
            return strtol(argv[i] + 3 + n, NULL, 10);
    }
    for (size_t i = 0; i < n && i < sizeof(env) - 5; i++)
        env[4 + i] = (char)toupper((unsigned char)name[i]);
    env[4 + (n < sizeof(env) - 5 ? n : sizeof(env) - 5)] = '\0';
    if (getenv(env) != NULL)
        return strtol(getenv(env), NULL, 10);
    return def;
}
