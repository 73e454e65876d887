/*
 * samples/chat/main.c - troupe-chat: a line-based chat server.
 *
 *   troupe-chat [--port 7001] [--schedulers N] [--console PATH]
 *               [--http-port N]
 *
 * Try it: nc localhost 7001 in two terminals, type /help.
 */
#include "chat.h"

int
main(int argc, char **argv)
{
    struct sample_opts o;
    struct chat *chat = NULL;
    tp_listener *l;
    tp_runtime *rt;
    int r;

    if ((r = sample_init(&o, argc, argv, "chat", 7001, &rt)) != 0)
        return r > 0 ? 0 : 2;
    if (chat_start(rt, &o, o.port, &chat, &l) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        chat_free(chat);
        return 1;
    }
    r = sample_run(rt, &o);
    chat_free(chat); /* after the runtime: rooms used its names */
    return r;
}
