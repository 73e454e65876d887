/*
 * common/alloc.c - the replaceable allocator (like uv_replace_allocator()).
 */
#include "common.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* The function table is written only while no runtime exists (checked
 * through live_runtimes), so plain reads are enough afterwards. */
static struct {
    tp_malloc_fn malloc;
    tp_realloc_fn realloc;
    tp_calloc_fn calloc;
    tp_free_fn free;
} alloc = {malloc, realloc, calloc, free};

static atomic_int live_runtimes;

int
tp_replace_allocator(tp_malloc_fn m, tp_realloc_fn r, tp_calloc_fn c,
                     tp_free_fn f)
{
    if (m == NULL || r == NULL || c == NULL || f == NULL)
        return -EINVAL;
    if (atomic_load(&live_runtimes) != 0)
        return -EBUSY;
    alloc.malloc = m;
    alloc.realloc = r;
    alloc.calloc = c;
    alloc.free = f;
    uv_replace_allocator(m, r, c, f);
    return 0;
}

void
tp__alloc_runtime_ref(int delta)
{
    atomic_fetch_add(&live_runtimes, delta);
}

void *
tp__malloc(size_t size)
{
    return alloc.malloc(size);
}

void *
tp__calloc(size_t count, size_t size)
{
    return alloc.calloc(count, size);
}

void *
tp__realloc(void *ptr, size_t size)
{
    return alloc.realloc(ptr, size);
}

void
tp__free(void *ptr)
{
    if (ptr != NULL)
        alloc.free(ptr);
}

char *
tp__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = tp__malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}
