/*
 * tests/test_sample_util.h - driving a sample program from a test: start
 * it (fork/exec) with --port 0, wait for its READY lines, talk to it over
 * 127.0.0.1, stop it with a signal and check its exit status. Every wait
 * is bounded; a child still running when the test process exits (a failed
 * assertion included) is killed.
 */
#ifndef TEST_SAMPLE_UTIL_H
#define TEST_SAMPLE_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
/* cmocka 1.1.5 needs the headers above first. */
#include <cmocka.h>

#define SP_MAX_READY 8
#define SP_OUT_MAX   (64 * 1024)

/** A running sample. */
struct sp_proc {
    pid_t pid;
    int out_fd;           /* its stdout (a pipe) */
    char out[SP_OUT_MAX]; /* everything it printed so far */
    size_t out_len;
    int nready;
    char ready_svc[SP_MAX_READY][32];   /* "echo", "console", ... */
    char ready_addr[SP_MAX_READY][128]; /* "127.0.0.1:41234", ... */
};

/** Slow-down factor from $TP_TEST_SLOW (default 1) for deadlines. */
int sp_slow(void);

/**
 * Starts bin with args (NULL-terminated, argv[0] excluded) and waits up to
 * timeout_ms for a READY line for each of the `want` services
 * (NULL-terminated). Returns 0, or -1 (the child is killed).
 */
int sp_start(struct sp_proc *p, const char *bin, const char *const *args,
             const char *const *want, int timeout_ms);

/** The address of service svc ("127.0.0.1:PORT" / a path / a URL), or
 *  NULL. */
const char *sp_addr(const struct sp_proc *p, const char *svc);

/** The TCP port of service svc, or -1. */
int sp_port(const struct sp_proc *p, const char *svc);

/** Reads the child's stdout until it contains `text` (from offset `from`)
 *  or timeout_ms passes. Returns a pointer to the match or NULL. */
const char *sp_wait_output(struct sp_proc *p, size_t from, const char *text,
                           int timeout_ms);

/** Sends sig and waits up to timeout_ms for the exit. Returns the wait
 *  status, or -1 on timeout (then the child is SIGKILLed). */
int sp_stop(struct sp_proc *p, int sig, int timeout_ms);

/** Adds (add) or removes a process of the test's own to the ones killed
 *  when the test process exits. */
void sp_track(pid_t pid, bool add);

/** Kills the child if it still runs (teardown after a failure). */
void sp_kill(struct sp_proc *p);

/* ---- TCP clients ------------------------------------------------------- */

/** Connects to 127.0.0.1:port (blocking socket, 5 s timeouts). Returns a
 *  descriptor or -1. */
int sp_connect(int port);

/** Writes all of data. Returns 0 or -1. */
int sp_send(int fd, const void *data, size_t len);

/** Writes a C string. */
int sp_sends(int fd, const char *s);

/**
 * A client's input buffer: sp_expect() reads until `text` shows up in the
 * bytes received since the last match, then consumes up to the end of the
 * match.
 */
struct sp_conn {
    int fd;
    char buf[256 * 1024];
    size_t len;
};

/**
 * A new client connection to 127.0.0.1:port that has read `greeting`
 * (within 5 s, scaled; NULL: nothing awaited). Fails the test otherwise.
 * Free with sp_hang_up().
 */
struct sp_conn *sp_dial(int port, const char *greeting);

/** Closes and frees a connection from sp_dial(). */
void sp_hang_up(struct sp_conn *c);

/** Reads into c until text appears (within timeout_ms). Returns true and
 *  drops the bytes up to the end of the match, or false. */
bool sp_expect(struct sp_conn *c, const char *text, int timeout_ms);

/** Reads exactly n bytes into out (within timeout_ms). Returns 0 or -1. */
int sp_read_n(int fd, void *out, size_t n, int timeout_ms);

/** True when the peer closes fd (EOF or reset) within timeout_ms, after
 *  reading and discarding whatever came first. */
bool sp_wait_closed(int fd, int timeout_ms);

/** Milliseconds on a monotonic clock. */
long long sp_now_ms(void);

/* ---- processes --------------------------------------------------------- */

/** Runs argv (argv[0] a path) with stdout captured into out (NUL
 *  terminated, truncated to cap). Returns the wait status, or -1 when it
 *  did not finish within timeout_ms (then it is killed). */
int sp_run(char *const argv[], char *out, size_t cap, int timeout_ms);

/** A nats-server started by a test (sp_nats_start()). */
struct sp_nats {
    pid_t pid;
    char url[64];   /* nats://127.0.0.1:<port> */
    char store[64]; /* its JetStream directory, "" without -js */
};

/**
 * Starts nats-server on a free loopback port (with JetStream in a fresh
 * temporary directory when jetstream), waits until it accepts. Returns
 * false when no nats-server is installed (the caller skips, saying so);
 * fails the test when it does not start.
 */
bool sp_nats_start(struct sp_nats *n, bool jetstream);

/** Kills it and removes its store (no-op when not started). */
void sp_nats_stop(struct sp_nats *n);

#endif /* TEST_SAMPLE_UTIL_H */
