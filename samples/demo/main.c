/*
 * samples/demo/main.c - troupe-demo, the README's first command: echo,
 * chat and HTTP servers in one runtime, each service a supervisor under
 * the root supervisor, with the admin console on.
 *
 *   troupe-demo [--port 7000] [--schedulers N] [--console PATH]
 *               [--http-port N]
 *
 * Without arguments: echo on 7000, chat on 7001, HTTP on 8080, console on
 * /tmp/troupe-demo.sock and its dashboard on http://127.0.0.1:8081/.
 * --port P moves the three services to P, P+1 and P+2; --port 0 picks free
 * ports (tests). Ctrl-C drains the connections and exits 0.
 */
#include "../chat/chat.h"
#include "../echo/echo.h"
#include "../http/http.h"

#include <stdio.h>
#include <string.h>

#define DEMO_PORT    7000
#define DEMO_HTTP    8080
#define DEMO_CONSOLE "/tmp/troupe-demo.sock"
#define DEMO_DASH    8081

/* The options the demo adds to the samples' defaults: its fixed ports
 * and the console, unless the command line chose others. */
static bool
has_arg(int argc, char **argv, const char *opt)
{
    size_t n = strlen(opt);

    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], opt, n) == 0 &&
            (argv[i][n] == '\0' || argv[i][n] == '='))
            return true;
    return false;
}

static void
demo_defaults(struct sample_opts *o, int argc, char **argv)
{
    if (!has_arg(argc, argv, "--console"))
        o->console = DEMO_CONSOLE;
    if (!has_arg(argc, argv, "--http-port"))
        o->http_port = DEMO_DASH;
}

static int
http_port(const struct sample_opts *o)
{
    if (o->port == 0)
        return 0;
    return o->port == DEMO_PORT ? DEMO_HTTP : o->port + 2;
}

static int
port_of(tp_listener *l)
{
    return tp_listener_port(l);
}

static void
print_howto(const struct sample_opts *o, tp_listener *echo, tp_listener *chat,
            int chat_ws, tp_listener *http)
{
    printf("\nTroupe demo is running. Try, in another terminal:\n"
           "  nc localhost %d                 echo: type a line, get it "
           "back\n"
           "  nc localhost %d                 chat: open two, type /help\n"
           "  curl localhost:%d/json          HTTP (also /, /stats)\n",
           port_of(echo), port_of(chat), port_of(http));
    printf("  browser chat: http://127.0.0.1:%d/chat?ws=%d (WebSocket)\n",
           port_of(http), chat_ws);
    if (o->console != NULL)
        printf("  build/release/console/troupectl -s %s tree\n"
               "  build/release/console/troupectl -s %s stats\n",
               o->console, o->console);
    if (o->cons != NULL)
        printf("  dashboard: http://127.0.0.1:%d/   metrics: "
               "http://127.0.0.1:%d/metrics\n",
               sample_console_http_port(o), sample_console_http_port(o));
    printf("Ctrl-C drains the connections and exits.\n\n");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct sample_opts o;
    struct chat *chat = NULL;
    tp_listener *echo, *chatl, *http;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, "demo", DEMO_PORT, &rt)) != 0)
        return r > 0 ? 0 : 2;
    demo_defaults(&o, argc, argv);
    if (echo_start(rt, &o, o.port, &echo) != 0 ||
        chat_start(rt, &o, o.port ? o.port + 1 : 0, &chat, &chatl) != 0 ||
        http_start(rt, &o, http_port(&o), &http) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        chat_free(chat);
        return 1;
    }
    print_howto(&o, echo, chatl, chat_ws_port(chat), http);
    r = sample_run(rt, &o);
    chat_free(chat);
    return r;
}
