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

#define CHAT_MAX_ROOMS   100          /* rooms the server will ever create */
#define CHAT_MAX_MEMBERS 1000         /* members one room accepts */
#define CHAT_ROOMS_SUP   "chat.rooms" /* registered name of the rooms' sup */
#define CHAT_CONNS_SUP   "chat.conns" /* ... and of the connections' */

/* Message types of the chat (application types: small numbers). */
enum {
    CHAT_MSG_JOIN = 1, /* member -> room: struct chat_join */
    CHAT_MSG_LEAVE,    /* member -> room: why (text) */
    CHAT_MSG_SAY,      /* member -> room: a formatted line for the others */
    CHAT_MSG_NICK,     /* member -> room: the member's new nickname */
    CHAT_MSG_WHO,      /* member -> room, a request: reply = member list */
    CHAT_MSG_CRASH,    /* member -> room: fail (the /crashroom demo) */
    CHAT_MSG_LINE,     /* room/member -> member: bytes for its client */
    CHAT_MSG_REJOIN,   /* member -> itself (timer): find its room again */
    CHAT_MSG_TWIN      /* room -> itself: its name was taken, end */
};

struct chat_join {
    bool rejoin; /* coming back after the room restarted */
    char nick[CHAT_NICK_MAX + 1];
};

/*
 * Room names, kept for the life of the service. A room is a dynamic child
 * of the rooms' supervisor whose init argument is its name, and the
 * supervisor may restart it at any time: the name must outlive every
 * incarnation, so it lives here and not in a member's state. The only
 * state the chat's actors share; the lock is held for a few string
 * compares.
 */
struct chat {
    pthread_mutex_t lock;
    unsigned nrooms;
    char rooms[CHAT_MAX_ROOMS][CHAT_ROOM_MAX + 1];
};

/** The stored copy of room name (added if new); NULL when full. */
const char *chat_room_name(struct chat *c, const char *name);

/** Writes the known room names, space-separated, into out. */
void chat_room_list(struct chat *c, char *out, size_t cap);

/** "room:<name>" / "nick:<name>": the registry names. */
void chat_regname(char *out, size_t cap, const char *kind, const char *name);

extern const tp_behaviour chat_room_behaviour;
extern const tp_behaviour chat_member_behaviour;

#endif /* SAMPLE_CHAT_INT_H */
