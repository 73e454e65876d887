/*
 * tests/test_console_client.h - drives console sessions in the tests:
 * through the in-process transport (a sink actor collects what a session
 * writes) and through real sockets (Unix and TCP, blocking with
 * deadlines).
 */
#ifndef TP_TEST_CONSOLE_CLIENT_H
#define TP_TEST_CONSOLE_CLIENT_H

#include "console/console_int.h"
#include "testutil.h"

typedef struct tcc tcc;

/* A client of a local session (http = false) or HTTP handler. Asserts. */
tcc *tcc_open(tp_console *c, bool http);
/* Same; returns NULL when the session refused to open (the refusal line
 * is then in *why). */
tcc *tcc_try_open(tp_console *c, bool http, char *why, size_t cap);
tp_pid tcc_pid(const tcc *t);
/* Sends raw bytes to the session. */
void tcc_send(tcc *t, const void *data, size_t len);
/* Waits until the output holds a complete reply and moves it to out
 * (NUL-terminated). A reply ends with a line "ok", a line starting with
 * "error:" or (json) one line starting with '{'. Returns its length or
 * -ETIMEDOUT / -ENOBUFS. */
int tcc_reply(tcc *t, char *out, size_t cap, int timeout_ms);
/* Sends line + "\n" and waits for the reply. */
int tcc_cmd(tcc *t, const char *line, char *out, size_t cap, int timeout_ms);
/* Waits until the output contains `needle` (kept); returns 0 or
 * -ETIMEDOUT. */
int tcc_wait_for(tcc *t, const char *needle, int timeout_ms);
/* Takes everything received so far. */
size_t tcc_take(tcc *t, char *out, size_t cap);
/* True once the session closed its side. */
bool tcc_closed(tcc *t);
int tcc_wait_closed(tcc *t, int timeout_ms);
/* Closes (if still open) and frees. */
void tcc_close(tcc *t);

/* An HTTP exchange over the local transport: sends req, waits for a full
 * response (headers + Content-Length body). Returns the status code, the
 * body in body (NUL-terminated). */
int tcc_http(tcc *t, const char *req, char *body, size_t cap, int timeout_ms);

/* Counts lines of text. */
int tcc_lines(const char *s);

/* ---- real sockets (blocking, with deadlines scaled by tpt_slow()) ---- */

/* Connects to a Unix socket / to 127.0.0.1:port; -1 on failure (errno). */
int tcn_dial_unix(const char *path);
int tcn_dial_tcp(int port);
/* Same from a given loopback source address (e.g. "127.0.0.2"). */
int tcn_dial_tcp_from(const char *src, int port);
/* Writes everything it can (stops quietly when the peer closed). */
void tcn_put(int fd, const void *p, size_t n);
/* Reads until `end` appears in what was read (out is NUL-terminated).
 * Returns the bytes read, -1 on EOF before it, -2 after ms * tpt_slow(). */
int tcn_read_until(int fd, const char *end, char *out, size_t cap, int ms);
/* True if the peer closes within ms * tpt_slow(). */
bool tcn_eof_within(int fd, int ms);

#endif
