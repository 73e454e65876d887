/*
 * samples/chat/chat_member_direct.c - the chat client actor of
 * chat_member.c written in direct style (troupe-chat --style direct):
 * straight-line code with a blocking receive instead of a handle callback
 * the runtime calls per message.
 *
 * The protocol and the bounds are those of chat_member.c (read it first:
 * same replies, same nicknames, same rooms, mailbox bounded to
 * CHAT_MEMBER_MAILBOX with drop-newest, room lines dropped and counted
 * while the client reads too slowly, the sender told when the room is
 * busy); the lines are framed and parsed by chat_proto.c, as there. What
 * direct style changes is the shape:
 *
 *  - main waits for its connection, takes a nickname, joins #lobby, then
 *    loops on tp_receive(): the client's bytes, room lines, its room's
 *    DOWN, the drain notice, all in arrival order;
 *  - opening a room that does not run yet is one blocking request to the
 *    rooms' supervisor (tp_call_direct(TP_SUP_START_CHILD)), and /who one
 *    blocking request to the room: no pending reference to remember, the
 *    answer is the call's result. Other messages wait queued meanwhile
 *    (and count for the mailbox bound);
 *  - a received message is valid only until the next blocking call, and a
 *    line may block (/join, /who): the client's bytes are copied out of
 *    their message before they are framed;
 *  - in a cluster (--cluster) a room may be on another node: found in the
 *    cluster's cached names and joined there, as in chat_member.c;
 *  - looking for a restarted room keeps using a timer message
 *    (CHAT_MSG_REJOIN) rather than tp_sleep(), so the client is served
 *    while its room is down, exactly as with the callback member.
 *
 * Copied stack (TP_STACK_COPIED): a member waiting for its next message
 * keeps only the stack bytes it used (troupectl ps shows them).
 */
#include "chat_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <troupe/direct.h>

#define REJOIN_DELAY_MS 20   /* between looks for a restarted room */
#define REJOIN_TRIES    50   /* then the member starts the room itself */
#define START_TIMEOUT   5000 /* the rooms' supervisor's answer */
#define WHO_TIMEOUT     1000 /* the room's answer to /who */
#define IN_KEEP         4096 /* input buffer kept between chunks */

struct member {
    struct chat *chat;
    tp_ctx *ctx; /* the same for the actor's whole life (it is pinned) */
    tp_conn conn;
    bool ws; /* a WebSocket client */
    char nick[CHAT_NICK_MAX + 1];
    char room[CHAT_ROOM_MAX + 1]; /* "" when in no room */
    tp_pid room_pid;              /* TP_PID_NONE while joining */
    uint64_t room_mon;            /* our monitor on room_pid */
    unsigned rejoin_tries;
    bool rejoining; /* coming back to a room that restarted */
    bool blocked;   /* client reads too slowly: drop room lines */
    uint32_t dropped;
    uint32_t refused;
    char *in; /* the client's chunk being framed (heap, in_cap bytes) */
    size_t in_cap;
    struct chat_frame frame;
};

/* ---- talking to the client ---------------------------------------------- */

static void
emit(struct member *m, const void *data, size_t len)
{
    if (m->ws)
        tp_ws_send_text(m->ctx, m->conn, data, len);
    else
        tp_tcp_send(m->ctx, m->conn, data, len);
}

static void __attribute__((format(printf, 2, 3)))
say(struct member *m, const char *fmt, ...)
{
    char line[CHAT_LINE_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit(m, line, strlen(line));
}

/* ---- rooms -------------------------------------------------------------- */

static void
retry_later(struct member *m)
{
    m->room_pid = TP_PID_NONE;
    m->rejoin_tries = 0;
    tp_send_after(m->ctx, REJOIN_DELAY_MS, tp_self(m->ctx), CHAT_MSG_REJOIN,
                  NULL, 0, NULL);
}

/* Monitors the room and asks to join it; a room too busy to take the
 * JOIN is tried again shortly. */
static void
enter_room(struct member *m, tp_pid room)
{
    struct chat_join j = {.rejoin = m->rejoining};

    memcpy(j.nick, m->nick, sizeof(j.nick));
    m->room_pid = room;
    tp_monitor(m->ctx, room, &m->room_mon);
    if (tp_send(m->ctx, room, CHAT_MSG_JOIN, &j, sizeof(j)) == -EAGAIN) {
        tp_demonitor(m->ctx, m->room_mon, TP_DEMONITOR_FLUSH);
        retry_later(m);
    }
}

/* Starts room m->room (under a supervisor of its own) and enters it: one
 * blocking request to the rooms' supervisor. -EEXIST: another member
 * started it first (it may be waiting for a restart: look again
 * shortly). */
static void
start_room(struct member *m)
{
    tp_sup_req req;
    tp_pid sup = tp_whereis(tp_ctx_runtime(m->ctx), CHAT_ROOMS_SUP);
    const struct chat_room_entry *e = chat_room_get(m->chat, m->room);
    const tp_msg *reply;
    tp_pid pid = TP_PID_NONE;
    int err;

    memset(&req, 0, sizeof(req));
    /* The service's stored spec: it outlives this member, and the room's
     * supervisor copies it when it starts. */
    req.spec = e != NULL ? &e->child : NULL;
    if (req.spec == NULL || sup == TP_PID_NONE) {
        say(m, "* cannot open #%s: too many rooms\n", m->room);
        m->room[0] = '\0';
        return;
    }
    err = tp_call_direct(m->ctx, sup, TP_SUP_START_CHILD, &req, sizeof(req),
                         START_TIMEOUT, &reply);
    if (err == 0)
        err = reply->len == sizeof(tp_sup_result)
                  ? ((const tp_sup_result *)reply->data)->err
                  : -EPROTO;
    if (err == 0 || err == -EEXIST)
        pid = chat_find_room(tp_ctx_runtime(m->ctx), m->chat, m->room);
    if (pid != TP_PID_NONE) {
        enter_room(m, pid);
    } else if (err == -EEXIST) {
        retry_later(m);
    } else {
        say(m, "* cannot open #%s right now\n", m->room);
        m->room[0] = '\0';
    }
}

static void
leave_room(struct member *m, const char *why)
{
    if (m->room_pid != TP_PID_NONE) {
        tp_demonitor(m->ctx, m->room_mon, TP_DEMONITOR_FLUSH);
        tp_send(m->ctx, m->room_pid, CHAT_MSG_LEAVE, why, strlen(why));
        say(m, "* you left #%s\n", m->room);
    }
    m->room_pid = TP_PID_NONE;
    m->room[0] = '\0';
}

static void
join(struct member *m, const char *room, size_t len)
{
    tp_pid pid;

    leave_room(m, "left");
    memcpy(m->room, room, len);
    m->room[len] = '\0';
    m->rejoining = false;
    if ((pid = chat_find_room(tp_ctx_runtime(m->ctx), m->chat, m->room)) !=
        TP_PID_NONE)
        enter_room(m, pid);
    else
        start_room(m);
}

/* Our room died. A crash is restarted by its supervisor: look for the new
 * incarnation for a while (CHAT_MSG_REJOIN), then start it ourselves (in
 * a cluster also when its node went down: the first member to register
 * its cluster name again wins, the others join that one). */
static void
on_room_down(struct member *m, const tp_msg *msg)
{
    tp_exit_reason why;
    tp_pid pid;
    uint64_t ref;

    if (tp_msg_down(msg, &pid, &ref, &why) != 0 || pid != m->room_pid ||
        ref != m->room_mon)
        return;
    if (why.kind == TP_EXIT_NOCONNECTION) /* its node is down */
        say(m, "* #%s was on a node that went down; opening it again\n",
            m->room);
    else if (!tp_exit_is_normal(&why))
        say(m, "* #%s crashed (%s); its supervisor restarts it\n", m->room,
            why.text ? why.text : tp_exit_kind_name(why.kind));
    m->rejoining = true;
    retry_later(m);
}

static void
on_rejoin(struct member *m)
{
    tp_pid pid;

    if (m->room[0] == '\0' || m->room_pid != TP_PID_NONE)
        return; /* left, or already back */
    if ((pid = chat_find_room(tp_ctx_runtime(m->ctx), m->chat, m->room)) !=
        TP_PID_NONE)
        enter_room(m, pid);
    else if (++m->rejoin_tries < REJOIN_TRIES)
        tp_send_after(m->ctx, REJOIN_DELAY_MS, tp_self(m->ctx), CHAT_MSG_REJOIN,
                      NULL, 0, NULL);
    else
        start_room(m);
}

/* ---- nicknames ---------------------------------------------------------- */

static int
take_nick(struct member *m, const char *nick)
{
    char reg[TP_NAME_MAX + 1];

    chat_regname(reg, sizeof(reg), "nick", nick);
    return tp_register(tp_ctx_runtime(m->ctx), reg, tp_self(m->ctx));
}

static void
set_nick(struct member *m, const char *nick, size_t len)
{
    char want[CHAT_NICK_MAX + 1], reg[TP_NAME_MAX + 1];

    memcpy(want, nick, len);
    want[len] = '\0';
    if (strcmp(want, m->nick) == 0)
        return;
    if (take_nick(m, want) != 0) {
        say(m, "* nickname %s is taken\n", want);
        return;
    }
    chat_regname(reg, sizeof(reg), "nick", m->nick);
    tp_unregister(tp_ctx_runtime(m->ctx), reg, tp_self(m->ctx));
    memcpy(m->nick, want, sizeof(want));
    say(m, "* you are now %s\n", m->nick);
    if (m->room_pid != TP_PID_NONE)
        tp_send(m->ctx, m->room_pid, CHAT_MSG_NICK, m->nick, len);
}

/* A first nickname, guest<slot>: unique among live actors. */
static void
guest_nick(struct member *m)
{
    tp_pid self = tp_self(m->ctx);

    snprintf(m->nick, sizeof(m->nick), "guest%u", tp_pid_index(self));
    if (take_nick(m, m->nick) != 0) { /* someone chose that nickname */
        snprintf(m->nick, sizeof(m->nick), "guest%u-%u", tp_pid_index(self),
                 tp_pid_gen(self));
        take_nick(m, m->nick);
    }
}

/* ---- commands ----------------------------------------------------------- */

static void
say_to_room(struct member *m, const struct chat_cmd *c)
{
    char text[CHAT_LINE_MAX + 1];
    char line[CHAT_LINE_MAX + CHAT_NICK_MAX + 8];
    int n;

    if (m->room_pid == TP_PID_NONE) {
        say(m, "* you are in no room: /join lobby\n");
        return;
    }
    chat_clean_text(c->text, c->text_len, text, sizeof(text));
    n = snprintf(line, sizeof(line), "<%s> %s\n", m->nick, text);
    /* The room's mailbox is bounded: past it, the line is dropped and
     * the sender told once per burst, then how many were lost. */
    if (tp_send(m->ctx, m->room_pid, CHAT_MSG_SAY, line, (size_t)n) ==
        -EAGAIN) {
        if (m->refused++ == 0)
            say(m,
                "* #%s is busy: slow down, your lines are being "
                "dropped\n",
                m->room);
    } else if (m->refused != 0) {
        say(m, "* %u of your lines were dropped (#%s was busy)\n", m->refused,
            m->room);
        m->refused = 0;
    }
}

static void
private_msg(struct member *m, const struct chat_cmd *c)
{
    char reg[TP_NAME_MAX + 1], nick[CHAT_NICK_MAX + 1];
    char text[CHAT_LINE_MAX + 1], line[CHAT_LINE_MAX + CHAT_NICK_MAX + 8];
    int n;

    memcpy(nick, c->arg, c->arg_len);
    nick[c->arg_len] = '\0';
    chat_regname(reg, sizeof(reg), "nick", nick);
    chat_clean_text(c->text, c->text_len, text, sizeof(text));
    n = snprintf(line, sizeof(line), "*%s* %s\n", m->nick, text);
    if (tp_send_named(m->ctx, reg, CHAT_MSG_LINE, line, (size_t)n) != 0)
        say(m, "* no one is called %s\n", nick);
}

/* /who: one blocking request; the answer (or TP_MSG_TIMEOUT after 1 s, or
 * NOPROC) is the call's result. */
static void
who(struct member *m)
{
    const tp_msg *reply;

    if (m->room_pid == TP_PID_NONE) {
        say(m, "* you are in no room\n");
        return;
    }
    if (tp_call_direct(m->ctx, m->room_pid, CHAT_MSG_WHO, NULL, 0, WHO_TIMEOUT,
                       &reply) == 0)
        emit(m, reply->data, reply->len);
    else
        say(m, "* #%s did not answer\n", m->room);
}

static void
run_command(struct member *m, const struct chat_cmd *c)
{
    char names[CHAT_LINE_MAX];

    switch (c->kind) {
    case CHAT_CMD_EMPTY:
        break;
    case CHAT_CMD_SAY:
        say_to_room(m, c);
        break;
    case CHAT_CMD_NICK:
        set_nick(m, c->arg, c->arg_len);
        break;
    case CHAT_CMD_JOIN:
        join(m, c->arg, c->arg_len);
        break;
    case CHAT_CMD_LEAVE:
        leave_room(m, "left");
        break;
    case CHAT_CMD_WHO:
        who(m);
        break;
    case CHAT_CMD_ROOMS:
        chat_room_list(m->chat, names, sizeof(names));
        say(m, "* rooms:%s\n", names);
        break;
    case CHAT_CMD_MSG:
        private_msg(m, c);
        break;
    case CHAT_CMD_HELP:
        say(m, "%s", chat_help_text);
        break;
    case CHAT_CMD_QUIT:
        leave_room(m, "quit");
        say(m, "* bye\n");
        tp_tcp_close(m->ctx, m->conn); /* queued lines are still sent */
        break;
    case CHAT_CMD_CRASH:
        tp_fail(m->ctx, "%s asked for it", m->nick);
    case CHAT_CMD_CRASHROOM:
        if (m->room_pid != TP_PID_NONE)
            tp_send(m->ctx, m->room_pid, CHAT_MSG_CRASH, NULL, 0);
        break;
    case CHAT_CMD_BAD:
        say(m, "* %s\n", c->error);
        break;
    }
}

static void
on_line(void *user, const char *line, size_t len)
{
    struct member *m = user;
    struct chat_cmd c;

    if (line == NULL) {
        say(m, "* line too long (max %d bytes)\n", CHAT_LINE_MAX);
        return;
    }
    chat_parse(line, len, &c);
    run_command(m, &c);
}

/* The client's bytes: copied out of their message (a line may block, and
 * the message is gone after the next blocking call), then framed. A
 * WebSocket text message ends its last line. */
static void
on_bytes(struct member *m, const tp_msg *msg, bool ends_line)
{
    if (msg->len > m->in_cap) {
        char *p = realloc(m->in, msg->len);

        if (p == NULL)
            tp_fail(m->ctx, "chat member: out of memory");
        m->in = p;
        m->in_cap = msg->len;
    }
    if (msg->len != 0) { /* an empty WebSocket message has no buffer */
        memcpy(m->in, msg->data, msg->len);
        chat_frame_feed(&m->frame, m->in, msg->len, on_line, m);
    }
    if (ends_line)
        chat_frame_feed(&m->frame, "\n", 1, on_line, m);
    if (m->in_cap > IN_KEEP) { /* a burst: do not keep 64 KiB per member */
        free(m->in);
        m->in = NULL;
        m->in_cap = 0;
    }
}

/* Lines from the room (blobs: written without a copy) or from /msg. A
 * client that reads too slowly loses them (counted) instead of making
 * its write queue grow up to the connection's write limit. */
static void
on_chat_line(struct member *m, const tp_msg *msg)
{
    tp_blob *blob = tp_msg_blob(msg);

    if (blob != NULL && msg->from != m->room_pid)
        return; /* from a room we left (our LEAVE may have been refused) */
    if (m->blocked) {
        m->dropped++;
        return;
    }
    if (blob != NULL && !m->ws)
        tp_tcp_send_blob(m->ctx, m->conn, blob); /* no copy */
    else
        emit(m, msg->data, msg->len);
}

/* ---- the actor ---------------------------------------------------------- */

static void
member_main(tp_ctx *ctx, struct member *m, struct chat *chat, bool ws)
{
    /* A WebSocket client may be written to once it is upgraded. */
    uint32_t open = ws ? TP_MSG_WS_UPGRADED : TP_MSG_TCP_OPENED;
    const tp_msg *msg;

    m->chat = chat; /* the listener's arg */
    m->ctx = ctx;
    m->ws = ws;
    /* A listener spawns us with default options: bound our own mailbox
     * (rooms and any member's /msg send to it). */
    if (tp_set_mailbox_bound(ctx, CHAT_MEMBER_MAILBOX, 0,
                             TP_OVERFLOW_DROP_NEWEST) != 0)
        tp_fail(ctx, "chat member: mailbox bound");
    do { /* a client gone before: TP_MSG_TCP_CLOSED ends the actor */
        if (tp_receive(ctx, &msg, -1) != 0)
            return;
    } while (msg->type != open);
    m->conn = tp_msg_conn(msg);
    guest_nick(m);
    say(m, "* welcome to troupe chat, %s. /help lists the commands.\n",
        m->nick);
    join(m, "lobby", strlen("lobby"));

    /* Until the connection closes (the actor ends in its next receive). */
    while (tp_receive(ctx, &msg, -1) == 0) {
        switch (msg->type) {
        case TP_MSG_TCP_DATA:
            on_bytes(m, msg, false);
            break;
        case TP_MSG_WS_TEXT: /* a line, or lines; the last one ends here */
            on_bytes(m, msg, true);
            break;
        case TP_MSG_TCP_DRAIN:
            say(m, "* the server is shutting down, bye\n");
            break; /* then the runtime closes the connection */
        case CHAT_MSG_LINE:
            on_chat_line(m, msg);
            break;
        case TP_MSG_TCP_WRITE_BLOCKED:
            m->blocked = true;
            break;
        case TP_MSG_TCP_DRAINED:
            m->blocked = false;
            if (m->dropped != 0)
                say(m,
                    "* %u lines were dropped: you are reading too "
                    "slowly\n",
                    m->dropped);
            m->dropped = 0;
            break;
        case TP_MSG_DOWN:
            on_room_down(m, msg);
            break;
        case CHAT_MSG_REJOIN:
            on_rejoin(m);
            break;
        default: /* a late answer to a call that timed out, ... */
            break;
        }
    }
}

static void
member_tcp_main(tp_ctx *ctx, void *state, void *arg)
{
    member_main(ctx, state, arg, false);
}

static void
member_ws_main(tp_ctx *ctx, void *state, void *arg)
{
    member_main(ctx, state, arg, true);
}

/* Also when the actor was killed while blocked (its stack is discarded). */
static void
member_terminate(tp_ctx *ctx, void *state, const tp_exit_reason *reason)
{
    struct member *m = state;

    (void)ctx;
    (void)reason;
    free(m->in);
    m->in = NULL;
}

static const tp_direct member_tcp = {
    TP_DIRECT_BEHAVIOUR("chat.member", sizeof(struct member)),
    .main = member_tcp_main,
    .stack = TP_STACK_COPIED,
    .terminate = member_terminate,
};

static const tp_direct member_ws = {
    TP_DIRECT_BEHAVIOUR("chat.member", sizeof(struct member)),
    .main = member_ws_main,
    .stack = TP_STACK_COPIED,
    .terminate = member_terminate,
};

const tp_behaviour *
chat_member_direct(bool ws)
{
    return tp_direct_behaviour(ws ? &member_ws : &member_tcp);
}
