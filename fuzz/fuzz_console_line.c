/*
 * fuzz/fuzz_console_line.c - libFuzzer target for the console's line
 * protocol. Each input goes through:
 *  - the line assembler (fed in pieces of varying size) and the word
 *    splitter, checking the bounds they promise (no line longer than the
 *    maximum, every word inside the line);
 *  - a real session (in-process transport, one runtime for the whole run)
 *    that receives the bytes as a client would send them, must answer
 *    without crashing and must keep answering `stats` afterwards.
 */
#include "console/console_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE 256

static tp_runtime *rt;
static tp_console *con;

static void
sink_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour sink = {.name = "fuzz_sink", .handle = sink_handle};

static bool
on_line(void *user, enum tp__line_ev ev, char *line, size_t n)
{
    char *argv[TP__ARGV_MAX];
    bool json;
    int argc;

    if (ev == TP__LINE_TOO_LONG)
        return true;
    if (n > MAX_LINE || strlen(line) > n)
        abort();
    argc = tp__line_split(line, argv, TP__ARGV_MAX, &json);
    for (int i = 0; i < argc; i++)
        if (argv[i] < line || argv[i] > line + n)
            abort();
    return true;
}

static void
pure_parts(const uint8_t *data, size_t size)
{
    struct tp__linebuf lb;
    struct tp__cbuf b;
    size_t i = 0, step = size != 0 ? (data[0] % 7) + 1 : 1;

    if (tp__linebuf_init(&lb, MAX_LINE) != 0)
        abort();
    while (i < size) {
        size_t n = size - i < step ? size - i : step;
        tp__linebuf_feed(&lb, (const char *)data + i, n, on_line, NULL);
        i += n;
    }
    tp__linebuf_free(&lb);
    /* The text encodings every reply goes through stay in bounds. */
    tp__cbuf_init(&b, 4096);
    tp__cbuf_text_str(&b, (const char *)data, size);
    tp__cbuf_json_str(&b, (const char *)data, size);
    if (b.len > b.max)
        abort();
    tp__cbuf_free(&b);
}

static void
setup(void)
{
    tp_runtime_options ro;
    tp_console_opts o;

    tp_log_set_level(TP_LOG_ERROR);
    tp_runtime_options_init(&ro);
    ro.schedulers = 2;
    ro.pin = false;
    if (tp_runtime_create(&rt, &ro) != 0 || tp_runtime_start(rt) != 0)
        abort();
    tp_console_opts_init(&o);
    o.max_line = MAX_LINE;
    if (tp__console_create(rt, &o, &con) != 0)
        abort();
}

/* Commands that would change the runtime under the fuzzer are not sent
 * (kill could kill the sink, loglevel would spam); everything else is. */
static bool
harmless(const uint8_t *data, size_t size)
{
    return memmem(data, size, "kill", 4) == NULL &&
           memmem(data, size, "loglevel", 8) == NULL &&
           memmem(data, size, "trace", 5) == NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tp_pid s, out;

    pure_parts(data, size);
    if (rt == NULL)
        setup();
    if (!harmless(data, size) || size > 65536)
        return 0;
    if (tp_runtime_spawn(rt, &sink, NULL, NULL, &out) != 0 ||
        tp__console_local_session(con, out, &s) != 0)
        abort();
    tp_runtime_send(rt, s, TP__CON_IN, data, size);
    tp_runtime_send(rt, s, TP__CON_IN, "\nstats\n", 7);
    if (tp_runtime_wait_idle(rt, 10000) != 0)
        abort(); /* a session that never settles is a bug */
    tp_runtime_send(rt, s, TP__CON_CLOSE, NULL, 0);
    tp_runtime_exit_pid(rt, out, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_runtime_wait_idle(rt, 10000);
    return 0;
}
