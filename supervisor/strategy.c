/*
 * supervisor/strategy.c - which children a failure affects, and whether a
 * child is restarted at all. Pure functions: the actor in supervisor.c
 * carries them out.
 */
#include "sup_int.h"

bool
tp__restart_wanted(tp_restart type, const tp_exit_reason *r)
{
    switch (type) {
    case TP_PERMANENT:
        return true;
    case TP_TRANSIENT:
        return !tp_exit_is_normal(r);
    default: /* TP_TEMPORARY */
        return false;
    }
}

void
tp__strategy_range(tp_strategy s, uint32_t failed, uint32_t n, uint32_t *first,
                   uint32_t *end)
{
    switch (s) {
    case TP_ONE_FOR_ALL:
        *first = 0;
        *end = n;
        break;
    case TP_REST_FOR_ONE:
        *first = failed;
        *end = n;
        break;
    default: /* one_for_one, dynamic */
        *first = failed;
        *end = failed + 1;
        break;
    }
}

const char *
tp_strategy_name(tp_strategy s)
{
    static const char *const names[] = {"one_for_one", "one_for_all",
                                        "rest_for_one", "dynamic"};

    if ((unsigned)s >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[s];
}

const char *
tp_restart_name(tp_restart r)
{
    static const char *const names[] = {"permanent", "transient", "temporary"};

    if ((unsigned)r >= sizeof(names) / sizeof(names[0]))
        return "?";
    return names[r];
}
