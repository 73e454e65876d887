/*
 * samples/chat/chat_int.h - what the chat's actors (chat_member.c,
 * chat_room.c) and its service (chat.c) share: message types and the
 * room-name table.
 */
#ifndef SAMPLE_CHAT_INT_H
#define SAMPLE_CHAT_INT_H

#include "chat.h"
#include "chat_proto.h"

#include <pthread.h>

#define CHAT_MAX_ROOMS      100  /* rooms the server will ever create */
#define CHAT_MAX_MEMBERS    1000 /* members one room accepts */
/* Mailbox bounds of the actors that many others send to (docs in
 * samples/chat/README.md, "Bounds"): a room takes at most this many
 * queued messages (then its members' sends fail with -EAGAIN and their
 * clients are told to slow down); a member at most this many (then lines
 * for it are dropped, counted by the runtime). */
#define CHAT_ROOM_MAILBOX   1024
#define CHAT_MEMBER_MAILBOX 256
#define CHAT_ROOMS_SUP      "chat.rooms" /* registered name of the rooms' sup */
#define CHAT_CONNS_SUP      "chat.conns" /* ... and of the connections' */

/* Message types of the chat (application types: small numbers). */
enum {
    CHAT_MSG_JOIN = 1, /* member -> room: struct chat_join */
    CHAT_MSG_LEAVE,    /* member -> room: why (text) */
    CHAT_MSG_SAY,      /* member -> room: a formatted line for the others */
    CHAT_MSG_NICK,     /* member -> room: the member's new nickname */
    CHAT_MSG_WHO,      /* member -> room, a request: reply = member list */
    CHAT_MSG_CRASH,    /* member -> room: fail (the /crashroom demo) */
    CHAT_MSG_LINE,     /* room/member -> member: bytes for its client */
    CHAT_MSG_REJOIN    /* member -> itself (timer): find its room again */
};

struct chat_join {
    bool rejoin; /* coming back after the room restarted */
    char nick[CHAT_NICK_MAX + 1];
};

/*
 * A room, as the service knows it for its whole life: its name and the
 * specs of its own small supervisor. Every room runs under a supervisor
 * of its own (registered "roomsup:<name>"), a temporary child of the
 * rooms' supervisor: a room that crashes is restarted by it with a
 * backoff, and a room crashed too often (/crashroom from many clients)
 * makes only its own supervisor give up -- the rooms' supervisor never
 * restarts it, so nothing escalates past the room. The specs are handed
 * to TP_SUP_START_CHILD requests and the name to every incarnation of
 * the room, so they live here, not in a member's state.
 */
struct chat_room_entry {
    struct chat *chat; /* the service (rooms read clustered) */
    char name[CHAT_ROOM_MAX + 1];
    char supname[TP_NAME_MAX + 1]; /* "roomsup:<name>" */
    tp_child_spec room;            /* the room actor, arg = this entry */
    tp_sup_spec sup;               /* one_for_one over the room alone */
    tp_child_spec child;           /* that supervisor, in chat.rooms */
};

/* The only state the chat's actors share; the lock is held for a few
 * string compares. */
struct chat {
    /* The member actors' behaviours, TCP and WebSocket clients: callback
     * style (chat_member.c) or direct style (chat_member_direct.c). */
    const tp_behaviour *member, *member_ws;
    tp_listener *ws; /* the WebSocket listener (the runtime frees it) */
    tp_tls_ctx *tls; /* its TLS context (wss), or NULL */
    bool clustered;  /* --cluster: rooms are cluster-wide names too */
    pthread_mutex_t lock;
    unsigned nrooms;
    struct chat_room_entry rooms[CHAT_MAX_ROOMS];
};

/** The entry of room `name` (added if new); NULL when the table is full. */
const struct chat_room_entry *chat_room_get(struct chat *c, const char *name);

/** Writes the known room names, space-separated, into out. */
void chat_room_list(struct chat *c, char *out, size_t cap);

/** "room:<name>" / "nick:<name>": the registry names. */
void chat_regname(char *out, size_t cap, const char *kind, const char *name);

/** "chat-room=<name>": the cluster-wide name of a room (--cluster). */
void chat_globalname(char *out, size_t cap, const char *room);

/**
 * The room `name` on this node, else (in a cluster) the room of that name
 * on another node: from this node's copy of the cluster's names, so no
 * round trip (a room opened elsewhere a moment ago may be missed: the
 * member then starts one here, and the room's own cluster registration
 * sorts it out, see room_init()). TP_PID_NONE when there is none.
 */
tp_pid chat_find_room(tp_runtime *rt, const struct chat *c, const char *name);

/** What /help prints (both member styles). */
extern const char chat_help_text[];

extern const tp_behaviour chat_room_behaviour;
extern const tp_behaviour chat_member_behaviour;
extern const tp_behaviour chat_member_ws_behaviour; /* WebSocket clients */

/** The member written in direct style (chat_member_direct.c), for TCP or
 *  (ws) WebSocket clients. */
const tp_behaviour *chat_member_direct(bool ws);

#endif /* SAMPLE_CHAT_INT_H */
