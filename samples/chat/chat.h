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
 * the root supervisor, and a listener on `port`. Prints "READY chat
 * <address>". On success *out is the service's shared data; free it with
 * chat_free() after the runtime is destroyed. Returns 0 or a negative
 * errno.
 */
int chat_start(tp_runtime *rt, const struct sample_opts *o, int port,
               struct chat **out, tp_listener **l);

/** Frees what chat_start() allocated; call after tp_runtime_destroy(). */
void chat_free(struct chat *c);

#endif /* SAMPLE_CHAT_H */
