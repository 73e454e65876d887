/*
 * runtime/pool.h - message memory: per-thread caches of size-classed blocks
 * over a shared depot of batches (a magazine allocator). The mailbox layer
 * reaches it through its allocator hook.
 */
#ifndef TP_RUNTIME_POOL_H
#define TP_RUNTIME_POOL_H

#include <stddef.h>
#include <stdint.h>

void *tp__pool_alloc(size_t size, uint8_t *klass, uint32_t *cap);
void tp__pool_free(void *p, uint8_t klass);
/* Returns the calling thread's cached blocks to the depot. */
void tp__pool_thread_flush(void);
/* Frees every cached block (call when no runtime is alive). */
void tp__pool_release_all(void);
/* Once the depots gave several MiB back to the system allocator (after a
 * burst), asks it to return its free pages to the kernel (glibc's
 * malloc_trim), at most once a second. Any thread; the watchdog calls it. */
void tp__pool_maybe_trim(uint64_t now_ns);
/* Installs the pool as the message allocator (idempotent). */
void tp__pool_install(void);

#endif
