/*
 * samples/chat/chat_room.c - a chat room: an actor that knows its members
 * and copies every line to them.
 *
 * - A room is the only child of its own supervisor ("roomsup:<name>",
 *   itself a temporary child of the dynamic supervisor "chat.rooms"); its
 *   init argument is its entry in the service's room table (its name),
 *   and it registers itself as "room:<name>" so members find it with
 *   tp_whereis(); in a cluster also as "chat-room=<name>" cluster-wide,
 *   so members on other nodes find it (tp_whereis_global_cached()).
 * - Its mailbox is bounded (CHAT_ROOM_MAILBOX, reject): a member whose
 *   send is refused tells its client to slow down, so one fast client
 *   cannot grow the server's memory.
 * - It monitors every member: a member that dies (its client went away,
 *   or its actor crashed, or its node went down: noconnection) is
 *   removed and the others are told why.
 * - A broadcast is one refcounted blob sent to every member: the bytes
 *   are never copied per member, down to the socket write.
 * - When the room crashes (/crashroom) its supervisor starts it again,
 *   empty, after a backoff; its members, who monitor it, come back by
 *   themselves. Crashed too often, only the room's supervisor gives up.
 */
#include "chat_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct room_member {
    tp_pid pid;
    uint64_t mon; /* our monitor on it */
    char nick[CHAT_NICK_MAX + 1];
};

struct room {
    const struct chat *chat;
    char name[CHAT_ROOM_MAX + 1];
    struct room_member *m; /* members, in join order */
    size_t n, cap;
};

/* ---- members ------------------------------------------------------------ */

static struct room_member *
find_member(struct room *r, tp_pid pid)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].pid == pid)
            return &r->m[i];
    return NULL;
}

static void
remove_member(struct room *r, struct room_member *rm)
{
    size_t i = (size_t)(rm - r->m);

    memmove(&r->m[i], &r->m[i + 1], (r->n - i - 1) * sizeof(*rm));
    r->n--;
}

static struct room_member *
add_member(struct room *r)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        struct room_member *m = realloc(r->m, cap * sizeof(*m));

        if (m == NULL)
            return NULL;
        r->m = m;
        r->cap = cap;
    }
    return &r->m[r->n++];
}

/* ---- sending ------------------------------------------------------------ */

/* Sends one formatted line to every member but `except`, as one blob. */
static void
broadcast(tp_ctx *ctx, struct room *r, tp_pid except, const char *fmt, ...)
{
    char line[CHAT_LINE_MAX + 128];
    tp_blob *blob;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (blob = tp_blob_new(line, strlen(line))) == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].pid != except)
            tp_send_blob(ctx, r->m[i].pid, CHAT_MSG_LINE, blob);
    tp_blob_unref(blob); /* each message holds its own reference */
}

static void
tell(tp_ctx *ctx, tp_pid to, const char *fmt, ...)
{
    char line[CHAT_LINE_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    tp_send(ctx, to, CHAT_MSG_LINE, line, strlen(line));
}

/* ---- messages ----------------------------------------------------------- */

static void
on_join(tp_ctx *ctx, struct room *r, const tp_msg *msg)
{
    const struct chat_join *j = msg->data;
    struct room_member *rm = find_member(r, msg->from);

    if (msg->len != sizeof(*j))
        return;
    if (rm == NULL && r->n >= CHAT_MAX_MEMBERS) {
        tell(ctx, msg->from, "* #%s is full\n", r->name);
        return;
    }
    if (rm == NULL && (rm = add_member(r)) != NULL) {
        rm->pid = msg->from;
        tp_monitor(ctx, msg->from, &rm->mon); /* its death reaches us */
    }
    if (rm == NULL)
        return;
    snprintf(rm->nick, sizeof(rm->nick), "%s", j->nick);
    if (j->rejoin) {
        tell(ctx, msg->from, "* back in #%s\n", r->name);
        return;
    }
    tell(ctx, msg->from, "* you joined #%s (%zu here)\n", r->name, r->n);
    broadcast(ctx, r, msg->from, "* %s joined #%s\n", rm->nick, r->name);
}

static void
on_leave(tp_ctx *ctx, struct room *r, const tp_msg *msg)
{
    struct room_member *rm = find_member(r, msg->from);

    if (rm == NULL)
        return;
    tp_demonitor(ctx, rm->mon, TP_DEMONITOR_FLUSH);
    broadcast(ctx, r, msg->from, "* %s left #%s (%.*s)\n", rm->nick, r->name,
              (int)msg->len, (const char *)msg->data);
    remove_member(r, rm);
}

/* A member died without saying goodbye: its client disconnected, or its
 * actor crashed. */
static void
on_down(tp_ctx *ctx, struct room *r, const tp_msg *msg)
{
    tp_exit_reason why;
    tp_pid pid;
    uint64_t ref;
    struct room_member *rm;

    if (tp_msg_down(msg, &pid, &ref, &why) != 0 ||
        (rm = find_member(r, pid)) == NULL || rm->mon != ref)
        return;
    if (tp_exit_is_normal(&why))
        broadcast(ctx, r, pid, "* %s left #%s (disconnected)\n", rm->nick,
                  r->name);
    else
        broadcast(ctx, r, pid, "* %s left #%s (crashed: %s)\n", rm->nick,
                  r->name, why.text ? why.text : tp_exit_kind_name(why.kind));
    remove_member(r, rm);
}

static void
on_nick(tp_ctx *ctx, struct room *r, const tp_msg *msg)
{
    struct room_member *rm = find_member(r, msg->from);
    char old[CHAT_NICK_MAX + 1];

    if (rm == NULL || msg->len == 0 || msg->len > CHAT_NICK_MAX)
        return;
    memcpy(old, rm->nick, sizeof(old));
    memcpy(rm->nick, msg->data, msg->len);
    rm->nick[msg->len] = '\0';
    broadcast(ctx, r, msg->from, "* %s is now %s\n", old, rm->nick);
}

/* /who: answers the request with the member list. */
static void
on_who(tp_ctx *ctx, struct room *r, const tp_msg *msg)
{
    char out[CHAT_LINE_MAX];
    size_t len = (size_t)snprintf(out, sizeof(out), "* in #%s:", r->name);

    for (size_t i = 0; i < r->n && len < sizeof(out) - 32; i++)
        len +=
            (size_t)snprintf(out + len, sizeof(out) - len, " %s", r->m[i].nick);
    if (len >= sizeof(out) - 32)
        len += (size_t)snprintf(out + len, sizeof(out) - len, " ...");
    out[len++] = '\n';
    tp_reply(ctx, msg, out, len);
}

/* In a cluster: a network split healed and this room lost its
 * cluster-wide name to the room of the same name opened on the other side
 * meanwhile (the one the name's bucket records keeps it). The members are
 * told, then the rooms' supervisor ends this room's own supervisor (a
 * shutdown, not a crash: nothing restarts it); the members, who monitor
 * the room, look for it again and find the other one. */
static void
on_name_conflict(tp_ctx *ctx, struct room *r)
{
    tp_runtime *rt = tp_ctx_runtime(ctx);
    char reg[TP_NAME_MAX + 1];
    tp_sup_req req;
    uint64_t ref;
    tp_pid sup;

    broadcast(ctx, r, TP_PID_NONE,
              "* #%s was opened on another node too, during a network "
              "split; moving you there\n",
              r->name);
    chat_regname(reg, sizeof(reg), "roomsup", r->name);
    sup = tp_whereis(rt, reg);
    memset(&req, 0, sizeof(req));
    tp_pid_format(sup, req.child, sizeof(req.child));
    if (sup == TP_PID_NONE ||
        tp_request(ctx, tp_whereis(rt, CHAT_ROOMS_SUP), TP_SUP_TERMINATE_CHILD,
                   &req, sizeof(req), 5000, &ref) != 0)
        tp_fail(ctx, "room #%s lost its cluster-wide name", r->name);
}

static void
room_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct room *r = state;

    switch (msg->type) {
    case CHAT_MSG_JOIN:
        on_join(ctx, r, msg);
        break;
    case CHAT_MSG_LEAVE:
        on_leave(ctx, r, msg);
        break;
    case CHAT_MSG_SAY:
        if (find_member(r, msg->from) != NULL)
            broadcast(ctx, r, msg->from, "%.*s", (int)msg->len,
                      (const char *)msg->data);
        break;
    case CHAT_MSG_NICK:
        on_nick(ctx, r, msg);
        break;
    case CHAT_MSG_WHO:
        on_who(ctx, r, msg);
        break;
    case TP_MSG_DOWN:
        on_down(ctx, r, msg);
        break;
    case TP_MSG_NAME_CONFLICT:
        on_name_conflict(ctx, r);
        break;
    case CHAT_MSG_CRASH:
        tp_fail(ctx, "room #%s was asked to crash", r->name);
    }
}

/* ---- life --------------------------------------------------------------- */

static int
room_init(tp_ctx *ctx, void *state, void *arg)
{
    struct room *r = state;
    const struct chat_room_entry *e = arg;
    char reg[TP_NAME_MAX + 1];
    int err;

    if (e == NULL)
        return -EINVAL;
    r->chat = e->chat;
    snprintf(r->name, sizeof(r->name), "%s", e->name);
    chat_regname(reg, sizeof(reg), "room", r->name);
    /* One supervisor per room name ("roomsup:<name>") starts it, so the
     * name is free: the previous incarnation's was released before its
     * supervisor heard of its death. */
    if ((err = tp_register(tp_ctx_runtime(ctx), reg, tp_self(ctx))) != 0 ||
        !r->chat->clustered)
        return err;
    /* In a cluster the room's name is also cluster-wide: one room of a
     * name in the cluster. A compare-and-set over NATS (a few round trips:
     * this init holds its scheduler that long, once per room). -EEXIST:
     * the room is open on another node; the member that asked for this
     * one is told so and joins that one instead. */
    chat_globalname(reg, sizeof(reg), r->name);
    return tp_register_global(tp_ctx_runtime(ctx), reg, tp_self(ctx));
}

static void
room_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *why)
{
    struct room *r = state;

    (void)ctx;
    (void)why;
    free(r->m); /* runs after a crash too: nothing leaks */
}

const tp_behaviour chat_room_behaviour = {
    .name = "chat.room",
    .state_size = sizeof(struct room),
    .init = room_init,
    .handle = room_handle,
    .terminate = room_terminate,
};
