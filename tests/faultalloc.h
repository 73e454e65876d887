/*
 * tests/faultalloc.h - a fault-injecting allocator for out-of-memory tests.
 *
 * tpf_install() puts a counting allocator in place with
 * tp_replace_allocator() (so it also serves libuv). It forwards to the C
 * library and counts every allocation and every live block. A test arms it
 * to fail the Nth allocation from now ("one shot") or the Nth and every later
 * one ("persistent"), runs a scenario, and checks what the runtime did with
 * the failure. Counting covers every thread (scheduler threads, libuv's
 * threads, the test thread); tests that need a reproducible order run one
 * scheduler and wait for each step to finish before the next.
 *
 * Allocations libuv makes itself are spared (see tpf_spared()): libuv 1.44
 * aborts when it cannot grow its watcher array, which is libuv's policy and
 * not something Troupe can recover from.
 *
 * The live-block count (allocations minus frees) is the leak check used by
 * every build type: after a runtime is destroyed it must be back where it
 * was before the runtime was created.
 */
#ifndef TP_TESTS_FAULTALLOC_H
#define TP_TESTS_FAULTALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Installs the allocator. Call before any runtime exists (returns the
 * tp_replace_allocator() result: 0 or -EBUSY). Idempotent. */
int tpf_install(void);

/* Fails the nth allocation counted from now (1 = the next one). With
 * persistent, every allocation after it fails too, until tpf_disarm(). */
void tpf_arm(uint64_t nth, bool persistent);
/* Stops failing (allocations succeed again); counters are kept. */
void tpf_disarm(void);
/* Armed (tpf_arm() since the last tpf_disarm()). */
bool tpf_armed(void);
/* Allocations fail now: armed persistent and the Nth one has come. */
bool tpf_failing(void);

/* Allocations attempted since the last tpf_arm() (or tpf_count_reset()). */
uint64_t tpf_count(void);
void tpf_count_reset(void);
/* Allocations failed on purpose since the last tpf_arm(). */
uint64_t tpf_failed(void);
/* Allocations failed on purpose since tpf_install(). */
uint64_t tpf_failed_total(void);
/* Allocations made by libuv itself: never failed, never counted in N
 * (libuv 1.44 aborts on some of its own allocation failures). */
uint64_t tpf_spared(void);
/* Blocks currently allocated through the allocator. */
int64_t tpf_live(void);

/* The call path of the first failure injected since tpf_arm(): up to max
 * return addresses of the callers of the allocation (innermost first),
 * with the allocator's own frames left out. Returns how many. */
int tpf_fail_site(void **frames, int max);
/* The thread of that failure was a thread that is not the one that armed
 * the allocator (a scheduler or libuv thread). */
bool tpf_fail_remote(void);

/* With TP_FAULT_TRACK=1 in the environment (at tpf_install()), every
 * live block remembers where it was allocated: tpf_track_mark() returns the
 * current allocation number and tpf_track_dump(mark) prints the blocks
 * allocated after it that are still live. */
uint64_t tpf_track_mark(void);
void tpf_track_dump(uint64_t mark);

/* A 64-bit key for a call path (for counting distinct failure points). */
uint64_t tpf_site_key(void *const *frames, int n);
/* Prints a call path (one frame a line, symbolised where possible). */
void tpf_print_site(const char *prefix, void *const *frames, int n);

#endif /* TP_TESTS_FAULTALLOC_H */
