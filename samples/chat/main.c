/*
 * samples/chat/main.c - troupe-chat: a line-based chat server.
 *
 *   troupe-chat [--style callback|direct] [--port 7001] [--schedulers N]
 *               [--console PATH] [--http-port N]
 *
 * --style picks how the member actor (one per client) is written: a
 * handle callback (chat_member.c, the default) or direct-style
 * straight-line code (chat_member_direct.c). Same protocol either way.
 *
 * Try it: nc localhost 7001 in two terminals, type /help.
 */
#include "chat.h"

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    struct sample_opts o;
    struct chat *chat = NULL;
    bool direct = false;
    tp_listener *l;
    tp_runtime *rt;
    int n = 0, r;

    /* Takes --style out of argv; the rest goes to the common options. */
    for (int i = 0; i < argc; i++) {
        if (i > 0 && strcmp(argv[i], "--style") == 0 && i + 1 < argc) {
            if (strcmp(argv[i + 1], "direct") == 0) {
                direct = true;
            } else if (strcmp(argv[i + 1], "callback") != 0) {
                fprintf(stderr, "troupe-chat: --style callback|direct\n");
                return 2;
            }
            i++;
            continue;
        }
        argv[n++] = argv[i];
    }
    argv[n] = NULL;
    if ((r = sample_init(&o, n, argv, "chat", 7001, &rt)) != 0)
        return r > 0 ? 0 : 2;
    if (chat_start_style(rt, &o, o.port, direct, &chat, &l) != 0 ||
        sample_console_start(rt, &o) != 0) {
        tp_runtime_destroy(rt);
        chat_free(chat);
        return 1;
    }
    r = sample_run(rt, &o);
    chat_free(chat); /* after the runtime: rooms used its names */
    return r;
}
