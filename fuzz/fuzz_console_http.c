/*
 * fuzz/fuzz_console_http.c - libFuzzer target for the console's HTTP
 * side: each input is sent, split in two at a point taken from the input,
 * to a fresh HTTP handler (in-process transport, one runtime for the
 * run). It must answer or close without crashing, leaking or hanging
 * (the runtime must become idle). POST requests are dropped from the
 * input's effect by running without a token: every action is refused.
 */
#include "console/console_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tp_runtime *rt;
static tp_console *con;

static void
sink_handle(tp_ctx *ctx, void *state, const tp_msg *m)
{
}

static const tp_behaviour sink = {.name = "fuzz_sink", .handle = sink_handle};

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
    o.token = ""; /* no token: actions are always refused */
    if (tp__console_create(rt, &o, &con) != 0)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cut = size != 0 ? data[0] % (size + 1) : 0;
    tp_pid h, out;

    if (rt == NULL)
        setup();
    if (size > 65536)
        return 0;
    if (tp_runtime_spawn(rt, &sink, NULL, NULL, &out) != 0 ||
        tp__console_local_http(con, out, &h) != 0)
        abort();
    tp_runtime_send(rt, h, TP__CON_IN, data, cut);
    tp_runtime_send(rt, h, TP__CON_IN, data + cut, size - cut);
    if (tp_runtime_wait_idle(rt, 10000) != 0)
        abort();
    tp_runtime_send(rt, h, TP__CON_CLOSE, NULL, 0);
    tp_runtime_exit_pid(rt, out, &(tp_exit_reason){TP_EXIT_KILL, 0, NULL});
    tp_runtime_wait_idle(rt, 10000);
    return 0;
}
