/*
 * samples/chat/chat.c - the chat service: its supervision tree, its
 * listener and the room-name table.
 *
 *   root
 *    └─ chat          one_for_one
 *        ├─ rooms     dynamic, registered "chat.rooms": one chat.room per
 *        │            room, transient (a crashed room is restarted)
 *        └─ conns     dynamic, registered "chat.conns": one chat.member
 *                     per connection, temporary (joined by the listener)
 */
#include "chat_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
chat_regname(char *out, size_t cap, const char *kind, const char *name)
{
    snprintf(out, cap, "%s:%s", kind, name);
}

const char *
chat_room_name(struct chat *c, const char *name)
{
    const char *found = NULL;

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nrooms && found == NULL; i++)
        if (strcmp(c->rooms[i], name) == 0)
            found = c->rooms[i];
    if (found == NULL && c->nrooms < CHAT_MAX_ROOMS) {
        snprintf(c->rooms[c->nrooms], sizeof(c->rooms[0]), "%s", name);
        found = c->rooms[c->nrooms++];
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void
chat_room_list(struct chat *c, char *out, size_t cap)
{
    size_t len = 0;

    out[0] = '\0';
    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nrooms && len + CHAT_ROOM_MAX + 3 < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, " #%s", c->rooms[i]);
    pthread_mutex_unlock(&c->lock);
}

/* Fills the supervisor spec of the chat service. The nested specs are
 * copied by the supervisor when it starts. */
static void
chat_tree(tp_sup_spec *top, tp_child_spec kids[2], tp_sup_spec *rooms,
          tp_sup_spec *conns)
{
    tp_sup_spec_init(rooms, TP_DYNAMIC);
    tp_child_spec_init(&rooms->child_template, "room", &chat_room_behaviour,
                       NULL);
    rooms->child_template.restart = TP_TRANSIENT;
    rooms->max_children = CHAT_MAX_ROOMS;
    rooms->intensity = 10; /* restarts in period_ms before giving up */
    rooms->period_ms = 10000;

    tp_sup_spec_init(conns, TP_DYNAMIC);
    tp_child_spec_init(&conns->child_template, "member", &chat_member_behaviour,
                       NULL);
    conns->child_template.restart = TP_TEMPORARY;

    tp_child_spec_init(&kids[0], "rooms", &tp_supervisor_behaviour, rooms);
    kids[0].opts.name = CHAT_ROOMS_SUP;
    tp_child_spec_init(&kids[1], "conns", &tp_supervisor_behaviour, conns);
    kids[1].opts.name = CHAT_CONNS_SUP;
    tp_sup_spec_init(top, TP_ONE_FOR_ONE);
    top->children = kids;
    top->nchildren = 2;
}

static int
chat_listen(tp_runtime *rt, const struct sample_opts *o, int port,
            struct chat *c, tp_listener **l)
{
    tp_conn_opts co;

    tp_conn_opts_init(&co);
    /* A client that stops reading is cut off once 1 MiB of chat is
     * queued for it, instead of growing the server's memory. */
    co.write_limit = 1u << 20;
    return sample_listen(rt, o, "chat", port, &chat_member_behaviour, c,
                         CHAT_CONNS_SUP, &co, l);
}

int
chat_start(tp_runtime *rt, const struct sample_opts *o, int port,
           struct chat **out, tp_listener **l)
{
    tp_sup_spec top, rooms, conns;
    tp_child_spec kids[2];
    struct chat *c = calloc(1, sizeof(*c));
    int err;

    if (c == NULL)
        return sample_fail(o, "chat", -ENOMEM);
    pthread_mutex_init(&c->lock, NULL);
    chat_tree(&top, kids, &rooms, &conns);
    if ((err = tp_runtime_supervisor_start(rt, "chat", &top, NULL)) != 0 ||
        (err = chat_listen(rt, o, port, c, l)) != 0) {
        chat_free(c); /* nothing uses it yet: the listener failed */
        return err == -ENOMEM ? sample_fail(o, "chat", err) : err;
    }
    *out = c;
    return 0;
}

void
chat_free(struct chat *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}
