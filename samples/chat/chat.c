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
 *
 * With --cluster (a chat across nodes, docs/GUIDE.md) each room also holds
 * a cluster-wide name, "chat-room=<name>": a room lives on one node, the
 * node where it was first opened, and members on every node join it
 * there (chat_find_room()).
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

/* Room restarts: a room that crashes is back after 100 ms, then 200, 400
 * ... up to 2 s while it keeps crashing; more than 5 restarts in 10 s and
 * its own supervisor gives up (the room is gone until a member opens it
 * again). */
#define ROOM_INTENSITY      5
#define ROOM_PERIOD_MS      10000
#define ROOM_BACKOFF_MS     100
#define ROOM_BACKOFF_MAX_MS 2000

static void
room_entry_init(struct chat_room_entry *e, struct chat *c, const char *name)
{
    e->chat = c;
    snprintf(e->name, sizeof(e->name), "%s", name);
    chat_regname(e->supname, sizeof(e->supname), "roomsup", name);
    tp_child_spec_init(&e->room, "room", &chat_room_behaviour, e);
    e->room.opts.max_msgs = CHAT_ROOM_MAILBOX;
    e->room.opts.overflow = TP_OVERFLOW_REJECT; /* members tell the sender */
    tp_sup_spec_init(&e->sup, TP_ONE_FOR_ONE);
    e->sup.children = &e->room;
    e->sup.nchildren = 1;
    e->sup.intensity = ROOM_INTENSITY;
    e->sup.period_ms = ROOM_PERIOD_MS;
    e->sup.backoff_min_ms = ROOM_BACKOFF_MS;
    e->sup.backoff_max_ms = ROOM_BACKOFF_MAX_MS;
    tp_child_spec_init(&e->child, "room", &tp_supervisor_behaviour, &e->sup);
    e->child.restart = TP_TEMPORARY; /* a room that gave up stays down */
    e->child.opts.name = e->supname; /* one supervisor per room name */
}

void
chat_globalname(char *out, size_t cap, const char *room)
{
    snprintf(out, cap, "chat-room=%s", room);
}

const char chat_help_text[] =
    "* commands: /nick NAME, /join ROOM, /leave, /who, /rooms,\n"
    "*   /msg NICK TEXT, /quit, /help; anything else is said to the room.\n"
    "* demo: /crash crashes your connection's actor, /crashroom your\n"
    "*   room's actor (its supervisor restarts it).\n";

tp_pid
chat_find_room(tp_runtime *rt, const struct chat *c, const char *name)
{
    char reg[TP_NAME_MAX + 1];
    tp_pid pid;

    chat_regname(reg, sizeof(reg), "room", name);
    pid = tp_whereis(rt, reg);
    if (pid != TP_PID_NONE || !c->clustered)
        return pid;
    chat_globalname(reg, sizeof(reg), name);
    return tp_whereis_global_cached(rt, reg);
}

const struct chat_room_entry *
chat_room_get(struct chat *c, const char *name)
{
    const struct chat_room_entry *found = NULL;

    pthread_mutex_lock(&c->lock);
    for (unsigned i = 0; i < c->nrooms && found == NULL; i++)
        if (strcmp(c->rooms[i].name, name) == 0)
            found = &c->rooms[i];
    if (found == NULL && c->nrooms < CHAT_MAX_ROOMS) {
        room_entry_init(&c->rooms[c->nrooms], c, name);
        found = &c->rooms[c->nrooms++];
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
        len += (size_t)snprintf(out + len, cap - len, " #%s", c->rooms[i].name);
    pthread_mutex_unlock(&c->lock);
}

/* Fills the supervisor spec of the chat service. The nested specs are
 * copied by the supervisor when it starts. */
static void
chat_tree(tp_sup_spec *top, tp_child_spec kids[2], tp_sup_spec *rooms,
          tp_sup_spec *conns)
{
    /* Members start each room with its own spec (chat_room_get()): the
     * template is never used. Its children are temporary, so it never
     * restarts one and its intensity never trips. */
    tp_sup_spec_init(rooms, TP_DYNAMIC);
    tp_child_spec_init(&rooms->child_template, "room", &chat_room_behaviour,
                       NULL);
    rooms->child_template.restart = TP_TEMPORARY;
    rooms->max_children = CHAT_MAX_ROOMS;

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

static void
chat_conn_opts(tp_conn_opts *co)
{
    tp_conn_opts_init(co);
    /* A client that stops reading is cut off once 1 MiB of chat is
     * queued for it, instead of growing the server's memory. */
    co->write_limit = 1u << 20;
    /* ... and the kernel holds at most 64 KiB of it (not megabytes), so a
     * slow reader is seen at once: its member drops lines (counted, and
     * the client told) instead of queueing them. */
    co->send_buffer = 64u << 10;
    /* Chat lines are small: a member is "blocked" (and drops room lines)
     * past 32 KiB queued, until its client read it down to 8 KiB. */
    co->write_high = 32u << 10;
    co->write_low = 8u << 10;
}

/* The WebSocket listener (browsers: samples/http serves the page at
 * /chat): the same member actors, under the same supervisor. */
static int
chat_listen_ws(tp_runtime *rt, const struct sample_opts *o, int port,
               struct chat *c)
{
    tp_listen_opts lo;
    tp_ws_opts ws;
    tp_net_addr addr;
    char text[TP_NET_ADDR_TEXT];
    int err;

    tp_ws_opts_init(&ws);
    ws.max_message = CHAT_LINE_MAX + 2; /* one line (and its newline) */
    tp_listen_opts_init(&lo);
    lo.address = o->address;
    lo.port = (uint16_t)port;
    lo.behaviour = c->member_ws;
    lo.arg = c;
    lo.supervisor_name = CHAT_CONNS_SUP;
    lo.name = "chat-ws";
    lo.ws = &ws;
    chat_conn_opts(&lo.conn);
    if (o->tls_cert != NULL || o->tls_key != NULL) { /* wss */
        tp_tls_opts to;

        tp_tls_opts_init(&to);
        to.server = true;
        to.verify_peer = false; /* browsers bring no client certificate */
        to.cert_file = o->tls_cert;
        to.key_file = o->tls_key;
        if ((err = tp_tls_ctx_new(&to, &c->tls)) != 0)
            return sample_fail(o, "chat-ws: TLS certificate or key", err);
        lo.tls = c->tls;
    }
    if ((err = tp_tcp_listen(rt, &lo, &c->ws)) != 0) {
        char what[96];

        snprintf(what, sizeof(what), "chat-ws: listen on %s port %d",
                 o->address, port);
        return sample_fail(o, what, err);
    }
    tp_listener_address(c->ws, &addr);
    tp_net_addr_format(&addr, text, sizeof(text));
    sample_ready(c->tls != NULL ? "chat-wss" : "chat-ws", text);
    return 0;
}

static int
chat_listen(tp_runtime *rt, const struct sample_opts *o, int port,
            struct chat *c, tp_listener **l)
{
    tp_conn_opts co;
    int err;

    chat_conn_opts(&co);
    if ((err = sample_listen(rt, o, "chat", port, c->member, c, CHAT_CONNS_SUP,
                             &co, l)) != 0)
        return err;
    /* WebSocket on port + 1000 (7001 -> 8001); any free port with 0. */
    return chat_listen_ws(rt, o, port != 0 ? port + 1000 : 0, c);
}

int
chat_ws_port(const struct chat *c)
{
    return c != NULL && c->ws != NULL ? tp_listener_port(c->ws) : -1;
}

int
chat_start(tp_runtime *rt, const struct sample_opts *o, int port,
           struct chat **out, tp_listener **l)
{
    return chat_start_style(rt, o, port, false, out, l);
}

int
chat_start_style(tp_runtime *rt, const struct sample_opts *o, int port,
                 bool direct, struct chat **out, tp_listener **l)
{
    tp_sup_spec top, rooms, conns;
    tp_child_spec kids[2];
    struct chat *c = calloc(1, sizeof(*c));
    int err;

    if (c == NULL)
        return sample_fail(o, "chat", -ENOMEM);
    pthread_mutex_init(&c->lock, NULL);
    c->clustered = o->cluster != NULL;
    c->member = direct ? chat_member_direct(false) : &chat_member_behaviour;
    c->member_ws =
        direct ? chat_member_direct(true) : &chat_member_ws_behaviour;
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
    tp_tls_ctx_free(c->tls); /* after the runtime: no listener uses it */
    free(c);
}
