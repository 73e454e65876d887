/*
 * common/u64map.c - see u64map.h.
 */
#include "u64map.h"

#include "common.h"

#include <errno.h>

void
tp__u64map_fini(struct tp__u64map *m)
{
    tp__free(m->tab);
    tp__u64map_init(m);
}

static uint32_t
slot_of(const struct tp__u64map *m, uint64_t key)
{
    return (uint32_t)tp__hash64(key) & m->mask;
}

static int
grow(struct tp__u64map *m)
{
    /* Two slots first: most maps (an actor's links and monitors) hold
     * one entry, and a supervised connection actor's link table is then
     * 32 bytes, not 128. */
    uint32_t cap = m->tab == NULL ? 2 : (m->mask + 1) * 2;
    struct tp__u64map_entry *old = m->tab, *tab;
    uint32_t oldcap = m->tab == NULL ? 0 : m->mask + 1;

    tab = tp__calloc(cap, sizeof(*tab));
    if (tab == NULL)
        return -ENOMEM;
    m->tab = tab;
    m->mask = cap - 1;
    for (uint32_t i = 0; i < oldcap; i++) {
        if (old[i].key != 0) {
            uint32_t j = slot_of(m, old[i].key);
            while (tab[j].key != 0)
                j = (j + 1) & m->mask;
            tab[j] = old[i];
        }
    }
    tp__free(old);
    return 0;
}

int
tp__u64map_put(struct tp__u64map *m, uint64_t key, uint64_t val)
{
    uint32_t i;

    /* Keep the load factor under 3/4. */
    if (m->tab == NULL || (m->count + 1) * 4 > (m->mask + 1) * 3) {
        int err = grow(m);
        if (err != 0)
            return err;
    }
    for (i = slot_of(m, key); m->tab[i].key != 0; i = (i + 1) & m->mask) {
        if (m->tab[i].key == key) {
            m->tab[i].val = val;
            return 0;
        }
    }
    m->tab[i].key = key;
    m->tab[i].val = val;
    m->count++;
    return 1;
}

uint64_t *
tp__u64map_get(const struct tp__u64map *m, uint64_t key)
{
    if (m->tab == NULL)
        return NULL;
    for (uint32_t i = slot_of(m, key); m->tab[i].key != 0;
         i = (i + 1) & m->mask) {
        if (m->tab[i].key == key)
            return &m->tab[i].val;
    }
    return NULL;
}

bool
tp__u64map_remove(struct tp__u64map *m, uint64_t key, uint64_t *val)
{
    uint32_t i, j;

    if (m->tab == NULL)
        return false;
    for (i = slot_of(m, key); m->tab[i].key != key; i = (i + 1) & m->mask) {
        if (m->tab[i].key == 0)
            return false;
    }
    if (val != NULL)
        *val = m->tab[i].val;
    /* Backward-shift: move later entries of the probe run into the hole
     * when their home slot allows it, so lookups never need tombstones. */
    for (j = (i + 1) & m->mask; m->tab[j].key != 0; j = (j + 1) & m->mask) {
        uint32_t home = slot_of(m, m->tab[j].key);
        if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
            m->tab[i] = m->tab[j];
            i = j;
        }
    }
    m->tab[i].key = 0;
    m->tab[i].val = 0;
    m->count--;
    if (m->count == 0) {
        tp__free(m->tab);
        tp__u64map_init(m);
    }
    return true;
}
