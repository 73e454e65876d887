/*
 * samples/chat/chat.h - a line-based chat server for nc/telnet: nicknames
 * in the registry, rooms as supervised actors, broadcasts as refcounted
 * blobs, and monitors that tell a room when a member dies and a member
 * when its room dies. See samples/chat/README.md.
 */
#ifndef SAMPLE_CHAT_H
#define SAMPLE_CHAT_H

#include "../common/sample.h"

struct chat;

/**
 * Starts the chat service: supervisor "chat" (rooms and connections) under
 * the root supervisor, a listener on `port` and a WebSocket listener on
 * port + 1000 (browsers). Prints "READY chat <address>" and "READY
 * chat-ws <address>". On success *out is the service's shared data; free it
 * with chat_free() after the runtime is destroyed. Returns 0 or a negative
 * errno.
 */
int chat_start(tp_runtime *rt, const struct sample_opts *o, int port,
               struct chat **out, tp_listener **l);

/** chat_start() with the member actors written in direct style
 *  (chat_member_direct.c) when direct is true: troupe-chat --style direct.
 *  Same protocol, bounds and tree. */
int chat_start_style(tp_runtime *rt, const struct sample_opts *o, int port,
                     bool direct, struct chat **out, tp_listener **l);

/** The port of the chat's WebSocket listener ("READY chat-ws <address>":
 *  TCP port + 1000, or any free port when port is 0), or -1. */
int chat_ws_port(const struct chat *c);

/** Frees what chat_start() allocated; call after tp_runtime_destroy(). */
void chat_free(struct chat *c);

#endif /* SAMPLE_CHAT_H */
