/*
 * tests/faultalloc.c - see faultalloc.h.
 *
 * Every counter is an atomic touched with relaxed ordering: allocations
 * happen on many threads, but the test only reads the counters once the
 * runtime is quiescent or gone (thread joins and the runtime's own
 * hand-offs order them), so no counter publishes other data.
 */
#define _GNU_SOURCE
#include "faultalloc.h"

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe.h>
#include <uv.h>

#define SITE_MAX 24

static _Atomic uint64_t count; /* allocations since arm */
static _Atomic uint64_t nth;   /* 0 = disarmed */
static _Atomic bool persistent;
static _Atomic uint64_t failed; /* injected since arm */
static _Atomic uint64_t failed_total;
static _Atomic int64_t live;
static _Atomic int installed;
static _Atomic uint64_t spared; /* libuv allocations never failed */
static void *uv_base;           /* load address of libuv, NULL if static */

/* The first failure's call path, written by the thread that injected it
 * (claimed through site_claimed) and read by the test after the runtime
 * has been stopped (thread join orders it). */
static atomic_flag site_claimed = ATOMIC_FLAG_INIT;
static void *site[SITE_MAX];
static int site_n;
static bool site_remote;
static pthread_t armer;

static void
record_site(void *ret0)
{
    void *bt[SITE_MAX + 8];
    int n = backtrace(bt, SITE_MAX + 8), from = 0;

    /* Keep the callers of the allocation: from the frame that called
     * into the allocator (ret0) outwards. */
    for (int i = 0; i < n; i++) {
        if (bt[i] == ret0) {
            from = i;
            break;
        }
    }
    site_n = n - from > SITE_MAX ? SITE_MAX : n - from;
    memcpy(site, bt + from, (size_t)site_n * sizeof(void *));
    site_remote = !pthread_equal(pthread_self(), armer);
}

/* libuv 1.44 calls abort() when uv__io_start() cannot grow its watcher
 * array (src/unix/core.c, maybe_resize), so a failure there would test
 * libuv, not Troupe. Allocations made directly by libuv are neither failed
 * nor counted in N; they are counted apart (tpf_spared()). */
static bool
from_libuv(void *ret0)
{
    Dl_info info;

    return uv_base != NULL && dladdr(ret0, &info) != 0 &&
           info.dli_fbase == uv_base;
}

/* Decides whether this allocation fails (and records the first one). */
static bool
should_fail(void *ret0)
{
    uint64_t n, k;

    if (from_libuv(ret0)) {
        atomic_fetch_add_explicit(&spared, 1, memory_order_relaxed);
        return false;
    }
    n = atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) + 1;
    /* Acquire: pairs with tpf_arm()'s store of nth, so its plain writes
     * (site_n, site_remote, armer) happen before record_site()'s. */
    k = atomic_load_explicit(&nth, memory_order_acquire);

    if (k == 0 || n < k ||
        (n > k && !atomic_load_explicit(&persistent, memory_order_relaxed)))
        return false;
    atomic_fetch_add_explicit(&failed, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&failed_total, 1, memory_order_relaxed);
    if (!atomic_flag_test_and_set(&site_claimed))
        record_site(ret0);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Optional tracking of live blocks (TP_FAULT_TRACK=1): where each one was
 * allocated, to name a leak. Off by default (it serialises allocation). */

#define TRACK_CAP (1u << 20)
#define TRACK_BT  10

/* Blocks are keyed by address as an integer: a freed block's address is
 * only ever compared, never followed. */
struct tracked {
    uintptr_t p;
    uint64_t seq;
    int n;
    void *bt[TRACK_BT];
};

static struct tracked *track;
static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t track_seq;
#define TOMB ((uintptr_t)1)

static size_t
track_slot(uintptr_t p)
{
    return (size_t)((p >> 4) * 0x9E3779B97F4A7C15ULL) & (TRACK_CAP - 1);
}

static void
track_add(uintptr_t p)
{
    size_t i;

    if (track == NULL || p == 0)
        return;
    pthread_mutex_lock(&track_lock);
    for (i = track_slot(p); track[i].p != 0 && track[i].p != TOMB;
         i = (i + 1) & (TRACK_CAP - 1))
        ;
    track[i].p = p;
    track[i].seq = ++track_seq;
    track[i].n = backtrace(track[i].bt, TRACK_BT);
    pthread_mutex_unlock(&track_lock);
}

static void
track_del(uintptr_t p)
{
    if (track == NULL || p == 0)
        return;
    pthread_mutex_lock(&track_lock);
    for (size_t i = track_slot(p); track[i].p != 0;
         i = (i + 1) & (TRACK_CAP - 1)) {
        if (track[i].p == p) {
            track[i].p = TOMB;
            break;
        }
    }
    pthread_mutex_unlock(&track_lock);
}

uint64_t
tpf_track_mark(void)
{
    uint64_t m;

    pthread_mutex_lock(&track_lock);
    m = track_seq;
    pthread_mutex_unlock(&track_lock);
    return m;
}

void
tpf_track_dump(uint64_t mark)
{
    if (track == NULL) {
        printf("  (set TP_FAULT_TRACK=1 to see where leaked blocks come "
               "from)\n");
        return;
    }
    pthread_mutex_lock(&track_lock);
    for (size_t i = 0; i < TRACK_CAP; i++) {
        if (track[i].p == 0 || track[i].p == TOMB || track[i].seq <= mark)
            continue;
        printf("  live block %#lx (allocation #%llu) from:\n",
               (unsigned long)track[i].p, (unsigned long long)track[i].seq);
        tpf_print_site("   ", track[i].bt + 2,
                       track[i].n > 8 ? 6 : track[i].n - 2);
    }
    pthread_mutex_unlock(&track_lock);
}

static void *
fa_malloc(size_t size)
{
    void *p;

    if (should_fail(__builtin_return_address(0)))
        return NULL;
    p = malloc(size);
    if (p != NULL)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    track_add((uintptr_t)p);
    return p;
}

static void *
fa_calloc(size_t n, size_t size)
{
    void *p;

    if (should_fail(__builtin_return_address(0)))
        return NULL;
    p = calloc(n, size);
    if (p != NULL)
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    track_add((uintptr_t)p);
    return p;
}

static void
fa_free(void *ptr)
{
    if (ptr == NULL)
        return;
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    track_del((uintptr_t)ptr);
    free(ptr);
}

/* realloc as allocate-copy-free, so the old block's address is never
 * used after it may have been freed (and every move is a real move). */
static void *
fa_realloc(void *ptr, size_t size)
{
    size_t old;
    void *p;

    if (ptr != NULL && size == 0) {
        /* libuv's contract: realloc(p, 0) frees. */
        fa_free(ptr);
        return NULL;
    }
    if (should_fail(__builtin_return_address(0)))
        return NULL;
    p = malloc(size);
    if (p == NULL)
        return NULL;
    atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    track_add((uintptr_t)p);
    if (ptr != NULL) {
        old = malloc_usable_size(ptr);
        memcpy(p, ptr, old < size ? old : size);
        fa_free(ptr);
    }
    return p;
}

int
tpf_install(void)
{
    int r;

    Dl_info uv, self;

    if (atomic_load(&installed))
        return 0;
    if (getenv("TP_FAULT_TRACK") != NULL && track == NULL)
        track = calloc(TRACK_CAP, sizeof(*track));
    if (dladdr((void *)uv_version, &uv) != 0 &&
        dladdr((void *)tpf_install, &self) != 0 &&
        uv.dli_fbase != self.dli_fbase)
        uv_base = uv.dli_fbase; /* a shared libuv: spare its allocations */
    r = tp_replace_allocator(fa_malloc, fa_realloc, fa_calloc, fa_free);
    if (r == 0)
        atomic_store(&installed, 1);
    return r;
}

void
tpf_arm(uint64_t k, bool persist)
{
    atomic_store(&nth, 0);
    atomic_store(&count, 0);
    atomic_store(&failed, 0);
    atomic_flag_clear(&site_claimed);
    site_n = 0;
    site_remote = false;
    armer = pthread_self();
    atomic_store(&persistent, persist);
    atomic_store(&nth, k);
}

void
tpf_disarm(void)
{
    atomic_store(&nth, 0);
}

bool
tpf_armed(void)
{
    return atomic_load(&nth) != 0;
}

bool
tpf_failing(void)
{
    uint64_t k = atomic_load(&nth);

    return k != 0 && atomic_load(&persistent) && atomic_load(&count) >= k;
}

uint64_t
tpf_count(void)
{
    return atomic_load(&count);
}

void
tpf_count_reset(void)
{
    atomic_store(&count, 0);
}

uint64_t
tpf_failed(void)
{
    return atomic_load(&failed);
}

uint64_t
tpf_failed_total(void)
{
    return atomic_load(&failed_total);
}

uint64_t
tpf_spared(void)
{
    return atomic_load(&spared);
}

int64_t
tpf_live(void)
{
    return atomic_load(&live);
}

int
tpf_fail_site(void **frames, int max)
{
    int n = site_n < max ? site_n : max;

    memcpy(frames, site, (size_t)n * sizeof(void *));
    return n;
}

bool
tpf_fail_remote(void)
{
    return site_remote;
}

uint64_t
tpf_site_key(void *const *frames, int n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over the addresses */

    for (int i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)frames[i];
        for (size_t b = 0; b < sizeof(a); b++) {
            h ^= (a >> (8 * b)) & 0xff;
            h *= 1099511628211ULL;
        }
    }
    return h;
}

/* One frame as "function (file:line)" through addr2line, which knows the
 * static functions backtrace_symbols() cannot name. */
static void
print_frame(const char *prefix, void *addr)
{
    Dl_info info;
    char cmd[512], line[256];
    FILE *p;

    if (dladdr(addr, &info) == 0 || info.dli_fname == NULL) {
        printf("%s  %p\n", prefix, addr);
        return;
    }
    /* A return address points after the call: look one byte back. */
    snprintf(cmd, sizeof(cmd), "addr2line -f -s -i -e '%s' 0x%lx 2>/dev/null",
             info.dli_fname,
             (unsigned long)((uintptr_t)addr - (uintptr_t)info.dli_fbase - 1));
    p = popen(cmd, "r");
    if (p == NULL) {
        printf("%s  %p\n", prefix, addr);
        return;
    }
    printf("%s ", prefix);
    while (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        printf(" %s", line);
    }
    printf("\n");
    pclose(p);
}

void
tpf_print_site(const char *prefix, void *const *frames, int n)
{
    for (int i = 0; i < n; i++)
        print_frame(prefix, frames[i]);
}

/* ---------------------------------------------------------------------- */
/* The sweep                                                              */

/* Only the test thread touches these: no atomics. */
static uint64_t run_n;
/* Reported from any thread (an actor can report what it saw). */
static atomic_uint violations;

uint64_t
tpf_run_n(void)
{
    return run_n;
}

void
tpf_violation(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "VIOLATION (N=%llu): ", (unsigned long long)run_n);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    atomic_fetch_add_explicit(&violations, 1, memory_order_relaxed);
}

unsigned
tpf_violations(void)
{
    return atomic_load_explicit(&violations, memory_order_relaxed);
}

bool
tpf_verbose(void)
{
    return getenv("TP_FAULT_VERBOSE") != NULL;
}

void
tpf_print_fail_site(void)
{
    void *f[SITE_MAX];
    int n = tpf_fail_site(f, SITE_MAX);

    fprintf(stderr, "  first injected failure at:\n");
    tpf_print_site("   ", f, n < 8 ? n : 8);
}

bool
tpf_call_failed(const char *what, int rc)
{
    if (rc == 0)
        return false;
    if (tpf_verbose()) {
        fprintf(stderr, "N=%llu: %s: %s\n", (unsigned long long)run_n, what,
                tp_strerror(rc));
        if (rc == -ETIMEDOUT) /* a reply that could not be allocated */
            tpf_print_fail_site();
    }
    if (rc > 0 || tpf_failed() == 0) {
        tpf_violation("%s returned %d (%s) with no failure injected", what, rc,
                      tp_strerror(rc));
        tpf_print_fail_site();
    }
    return true;
}

void
tpf_check_live(int64_t live0, uint64_t mark)
{
    if (tpf_live() == live0)
        return;
    tpf_violation("%lld blocks leaked", (long long)(tpf_live() - live0));
    tpf_print_fail_site();
    tpf_track_dump(mark);
}

void
tpf_check_fds(long fds0, long fds)
{
    if (fds == fds0)
        return;
    tpf_violation("%ld file descriptors leaked", fds - fds0);
    tpf_print_fail_site();
}

void
tpf_quiet_sink(void *user, tp_log_level level, const char *line)
{
    (void)user;
    if (tpf_verbose())
        fprintf(stderr, "N=%llu [%s] %s\n", (unsigned long long)run_n,
                tp_log_level_name(level), line);
}

tp_runtime_options
tpf_runtime_opts(unsigned nsched, unsigned stop_ms)
{
    tp_runtime_options o;

    tp_runtime_options_init(&o);
    o.schedulers = nsched;
    o.pin = false;
    o.long_handler_ms = 0;
    o.stop_timeout_ms = stop_ms;
    return o;
}

int
tpf_group_setup(tp_log_sink sink, const tp_runtime_options *o,
                const tp_behaviour *b, uint32_t type)
{
    tp_runtime *rt = NULL;
    tp_pid pid;
    int rc;

    tp_log_set_sink(sink, NULL);
    if ((rc = tpf_install()) != 0)
        return rc;
    rc = tp_runtime_create(&rt, o);
    if (rc == 0 && (tp_runtime_start(rt) != 0 ||
                    tp_runtime_spawn(rt, b, NULL, NULL, &pid) != 0 ||
                    tp_runtime_send(rt, pid, type, NULL, 0) != 0))
        rc = -1;
    if (rt != NULL)
        tp_runtime_destroy(rt);
    return rc == 0 ? 0 : -1;
}

static uint64_t
env_u64(const char *name, uint64_t def)
{
    const char *s = getenv(name);

    return s != NULL ? strtoull(s, NULL, 10) : def;
}

/* One run at nth, timed under TP_FAULT_VERBOSE. */
static bool
run_at(const struct tpf_scenario *sc, uint64_t at, bool persist)
{
    uint64_t t0 = tp_now_ns();
    bool hit;

    run_n = at;
    hit = sc->run(sc->arg, at, persist);
    if (at != 0 && tpf_verbose())
        fprintf(stderr, "N=%llu: run took %llu ms\n", (unsigned long long)at,
                (unsigned long long)((tp_now_ns() - t0) / 1000000));
    return hit;
}

bool
tpf_sweep(const struct tpf_scenario *sc, bool persist, unsigned stride,
          struct tpf_sweep_stats *st)
{
    uint64_t failures0 = tpf_failed_total(), n;

    memset(st, 0, sizeof(*st));
    atomic_store_explicit(&violations, 0, memory_order_relaxed);
    if (run_at(sc, 0, false))
        return false;
    st->total = tpf_count();
    st->stride = (unsigned)env_u64("TP_FAULT_STRIDE", stride);
    if (st->stride == 0)
        st->stride = 1;
    for (n = env_u64("TP_FAULT_N", 1);; n += st->stride) {
        st->runs++;
        if (!run_at(sc, n, persist))
            break; /* the scenario finished before the Nth allocation */
    }
    st->failures = tpf_failed_total() - failures0;
    return true;
}
