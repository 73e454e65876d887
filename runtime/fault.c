/*
 * runtime/fault.c - the fault trap.
 *
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT raised while a thread runs an
 * actor's callback (tp__tls_in_user set, a recovery point armed) jump back
 * to that point: the actor crashes, the scheduler goes on. Raised anywhere
 * else (the runtime itself, libuv, a thread that is not running a callback)
 * they are never "recovered": a report goes to stderr and the signal is
 * re-raised with its default action (core dump), or passed to the handler
 * that was installed before ours (sanitizers, crash reporters).
 *
 * Handlers run on a per-thread alternate stack so that a stack overflow in
 * a callback is caught too. See docs/FAULTS.md for what this does and does
 * not guarantee.
 */
#include "runtime_int.h"

#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Thread_local struct tp__recover *tp__tls_recover;
_Thread_local int tp__tls_in_user;
static _Thread_local void *alt_stack;

static const int trapped[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NTRAPPED       (sizeof(trapped) / sizeof(trapped[0]))
#define ALT_STACK_SIZE (256 * 1024)

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static int install_refs;
static struct sigaction previous[NTRAPPED];

static int
slot_of(int signo)
{
    for (size_t i = 0; i < NTRAPPED; i++) {
        if (trapped[i] == signo)
            return (int)i;
    }
    return -1;
}

static void
write_str(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static void
write_hex(uintptr_t v)
{
    char buf[2 + 16 + 1];
    int i = 2 + 16;

    buf[i] = '\0';
    do {
        buf[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0 && i > 2);
    buf[--i] = 'x';
    buf[--i] = '0';
    write_str(&buf[i]);
}

/* Not recoverable: report, then let the previous handler or the default
 * action take the process down. */
static void
fatal(int signo, siginfo_t *si, void *uc)
{
    void *bt[32];
    int n, k = slot_of(signo);

    write_str("troupe: fatal signal ");
    write_str(strsignal(signo));
    write_str(" at address ");
    write_hex((uintptr_t)si->si_addr);
    write_str(" outside any actor callback (runtime fault, not recovered)\n");
    n = backtrace(bt, 32);
    backtrace_symbols_fd(bt, n, STDERR_FILENO);
    if (k >= 0 && (previous[k].sa_flags & SA_SIGINFO) &&
        previous[k].sa_sigaction != NULL) {
        previous[k].sa_sigaction(signo, si, uc);
        return;
    }
    if (k >= 0 && previous[k].sa_handler != SIG_DFL &&
        previous[k].sa_handler != SIG_IGN && previous[k].sa_handler != NULL &&
        !(previous[k].sa_flags & SA_SIGINFO)) {
        previous[k].sa_handler(signo);
        return;
    }
    signal(signo, SIG_DFL);
    raise(signo);
}

static void
on_fault(int signo, siginfo_t *si, void *uc)
{
    struct tp__recover *r = tp__tls_recover;

    if (r != NULL && tp__tls_in_user) {
        tp__tls_in_user = 0;
        r->signo = signo;
        r->addr = si->si_addr;
        r->nbt = backtrace(r->bt, (int)(sizeof(r->bt) / sizeof(r->bt[0])));
        /* SA_NODEFER left the signal unblocked: the jump needs no mask
         * restore, so sigsetjmp(env, 0) (no syscall) is enough. */
        siglongjmp(r->jb, signo);
    }
    fatal(signo, si, uc);
}

/* A failed TP_ASSERT leaves user context first: its abort is fatal. */
static void
assert_leave_user(void)
{
    tp__tls_in_user = 0;
}

int
tp__fault_install(void)
{
    struct sigaction sa;
    void *warm[2];

    atomic_store(&tp__assert_prepare, assert_leave_user);
    pthread_mutex_lock(&install_lock);
    if (install_refs++ > 0) {
        pthread_mutex_unlock(&install_lock);
        return 0;
    }
    backtrace(warm, 2); /* loads libgcc now, not inside a handler */
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NTRAPPED; i++)
        sigaction(trapped[i], &sa, &previous[i]);
    pthread_mutex_unlock(&install_lock);
    return 0;
}

void
tp__fault_uninstall(void)
{
    pthread_mutex_lock(&install_lock);
    if (install_refs > 0 && --install_refs == 0) {
        for (size_t i = 0; i < NTRAPPED; i++)
            sigaction(trapped[i], &previous[i], NULL);
    }
    pthread_mutex_unlock(&install_lock);
}

int
tp__fault_thread_init(void)
{
    stack_t ss;

    if (alt_stack != NULL)
        return 0;
    alt_stack = tp__malloc(ALT_STACK_SIZE);
    if (alt_stack == NULL)
        return -ENOMEM;
    ss.ss_sp = alt_stack;
    ss.ss_size = ALT_STACK_SIZE;
    ss.ss_flags = 0;
    if (sigaltstack(&ss, NULL) != 0) {
        tp__free(alt_stack);
        alt_stack = NULL;
        return -errno;
    }
    return 0;
}

void
tp__fault_thread_fini(void)
{
    stack_t ss;

    if (alt_stack == NULL)
        return;
    memset(&ss, 0, sizeof(ss));
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, NULL);
    tp__free(alt_stack);
    alt_stack = NULL;
}

void
tp__fault_unblock(int signo)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void
tp__fault_report(const struct tp__recover *r, const char *who)
{
    char **syms;

    tp_log(TP_LOG_ERROR, "%s crashed: signal %d (%s) at address %p", who,
           r->signo, strsignal(r->signo), r->addr);
    if (r->nbt <= 0 || !tp__log_enabled(TP_LOG_ERROR))
        return;
    syms = backtrace_symbols(r->bt, r->nbt);
    if (syms == NULL)
        return;
    for (int i = 0; i < r->nbt; i++)
        tp_log(TP_LOG_ERROR, "  #%d %s", i, syms[i]);
    free(syms); /* allocated by libc, not by tp__malloc */
}
