/*
 * common/u64map.h - open-addressing hash map from non-zero 64-bit keys to
 * 64-bit values (linear probing, backward-shift deletion, no tombstones).
 * O(1) expected insert/find/remove: links and monitors of a supervisor with
 * 100,000 children cost no scan. Single-threaded.
 */
#ifndef TP_COMMON_U64MAP_H
#define TP_COMMON_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tp__u64map_entry {
    uint64_t key; /* 0 = free */
    uint64_t val;
};

struct tp__u64map {
    struct tp__u64map_entry *tab;
    uint32_t mask; /* capacity - 1, capacity a power of two (or 0) */
    uint32_t count;
};

static inline void
tp__u64map_init(struct tp__u64map *m)
{
    m->tab = NULL;
    m->mask = 0;
    m->count = 0;
}

void tp__u64map_fini(struct tp__u64map *m);
/* Inserts or replaces. Returns 1 if added, 0 if replaced, -ENOMEM. */
int tp__u64map_put(struct tp__u64map *m, uint64_t key, uint64_t val);
/* Pointer to the value, or NULL. Valid until the next put/remove. */
uint64_t *tp__u64map_get(const struct tp__u64map *m, uint64_t key);
/* Removes key; returns true if it was present (its value in *val). */
bool tp__u64map_remove(struct tp__u64map *m, uint64_t key, uint64_t *val);

/* Iteration: for (i = 0; tp__u64map_next(m, &i, &e);) ... Do not modify the
 * map while iterating. */
static inline bool
tp__u64map_next(const struct tp__u64map *m, uint32_t *i,
                struct tp__u64map_entry **e)
{
    if (m->tab == NULL)
        return false;
    while (*i <= m->mask) {
        struct tp__u64map_entry *x = &m->tab[(*i)++];
        if (x->key != 0) {
            *e = x;
            return true;
        }
    }
    return false;
}

#endif
