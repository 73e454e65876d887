/*
 * samples/chat/chat_member.c - one chat client: the actor of one
 * connection.
 *
 * - Its nickname is a registered name, "nick:<nick>": the registry makes
 *   nicknames unique and releases them when the actor dies.
 * - It is in one room at a time and monitors that room: if the room dies
 *   (crash), the member tells its client and joins the room again once
 *   the supervisor has restarted it.
 * - In a cluster (--cluster) the room may be on another node: the member
 *   joins it there (the same messages and monitor, to a remote pid).
 * - A room that does not exist yet is started as a child of the rooms'
 *   supervisor, with an asynchronous request (TP_SUP_START_CHILD): an
 *   actor never blocks.
 * - The same actor serves TCP clients (nc, telnet: lines) and WebSocket
 *   clients (browsers: one text message per line or lines, each written
 *   with its newline), chosen by its listener (chat_member_ws_behaviour).
 * - Bounded (samples/chat/README.md, "Bounds"): its mailbox drops lines
 *   past CHAT_MEMBER_MAILBOX; while its client reads too slowly (the
 *   connection's write queue is over its high mark) room lines are
 *   dropped and counted, and the client is told how many once it caught
 *   up; a line the room refuses (its mailbox is full) is dropped and the
 *   sender told to slow down.
 */
#include "chat_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define REJOIN_DELAY_MS 20 /* between looks for a restarted room */
#define REJOIN_TRIES    50 /* then the member starts the room itself */
#define START_TIMEOUT   5000

struct member {
    struct chat *chat;
    tp_conn conn;
    bool ws; /* a WebSocket client */
    char nick[CHAT_NICK_MAX + 1];
    char room[CHAT_ROOM_MAX + 1]; /* "" when in no room */
    tp_pid room_pid;              /* TP_PID_NONE while joining */
    uint64_t room_mon;            /* our monitor on room_pid */
    uint64_t start_ref;           /* pending TP_SUP_START_CHILD */
    uint64_t who_ref;             /* pending /who */
    unsigned rejoin_tries;
    bool rejoining;          /* coming back to a room that restarted */
    bool blocked;            /* client reads too slowly: drop room lines */
    uint32_t dropped;        /* room lines dropped while blocked */
    uint32_t refused;        /* our lines the busy room refused */
    struct chat_frame frame; /* the line being received */
};

/* Handed to the framing callback. */
struct line_ctx {
    tp_ctx *ctx;
    struct member *m;
};

/* ---- talking to the client ---------------------------------------------- */

/* Bytes for the client: a TCP write, or one WebSocket text message. */
static void
emit(tp_ctx *ctx, struct member *m, const void *data, size_t len)
{
    if (m->ws)
        tp_ws_send_text(ctx, m->conn, data, len);
    else
        tp_tcp_send(ctx, m->conn, data, len);
}

static void
say(tp_ctx *ctx, struct member *m, const char *fmt, ...)
{
    char line[CHAT_LINE_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    emit(ctx, m, line, strlen(line));
}

/* ---- rooms -------------------------------------------------------------- */

static void
retry_later(tp_ctx *ctx, struct member *m)
{
    m->room_pid = TP_PID_NONE;
    m->rejoin_tries = 0;
    tp_send_after(ctx, REJOIN_DELAY_MS, tp_self(ctx), CHAT_MSG_REJOIN, NULL, 0,
                  NULL);
}

/* Monitors the room and asks to join it; a room too busy to take the
 * JOIN is tried again shortly. */
static void
enter_room(tp_ctx *ctx, struct member *m, tp_pid room, bool rejoin)
{
    struct chat_join j = {.rejoin = rejoin};

    memcpy(j.nick, m->nick, sizeof(j.nick));
    m->room_pid = room;
    tp_monitor(ctx, room, &m->room_mon);
    if (tp_send(ctx, room, CHAT_MSG_JOIN, &j, sizeof(j)) == -EAGAIN) {
        tp_demonitor(ctx, m->room_mon, TP_DEMONITOR_FLUSH);
        retry_later(ctx, m);
    }
}

/* Asks the rooms' supervisor to start room m->room (under a supervisor
 * of its own). */
static void
start_room(tp_ctx *ctx, struct member *m)
{
    tp_sup_req req;
    tp_pid sup = tp_whereis(tp_ctx_runtime(ctx), CHAT_ROOMS_SUP);
    const struct chat_room_entry *e = chat_room_get(m->chat, m->room);

    memset(&req, 0, sizeof(req));
    /* The service's stored spec: it outlives this member, and the room's
     * supervisor copies it when it starts. */
    req.spec = e != NULL ? &e->child : NULL;
    if (req.spec == NULL || sup == TP_PID_NONE) {
        say(ctx, m, "* cannot open #%s: too many rooms\n", m->room);
        m->room[0] = '\0';
        return;
    }
    tp_request(ctx, sup, TP_SUP_START_CHILD, &req, sizeof(req), START_TIMEOUT,
               &m->start_ref);
}

static void
open_room(tp_ctx *ctx, struct member *m, bool rejoin)
{
    tp_pid pid = chat_find_room(tp_ctx_runtime(ctx), m->chat, m->room);

    if (pid != TP_PID_NONE)
        enter_room(ctx, m, pid, rejoin);
    else
        start_room(ctx, m);
}

static void
leave_room(tp_ctx *ctx, struct member *m, const char *why)
{
    if (m->room_pid != TP_PID_NONE) {
        tp_demonitor(ctx, m->room_mon, TP_DEMONITOR_FLUSH);
        tp_send(ctx, m->room_pid, CHAT_MSG_LEAVE, why, strlen(why));
        say(ctx, m, "* you left #%s\n", m->room);
    }
    if (m->start_ref != 0)
        tp_request_forget(ctx, m->start_ref);
    m->start_ref = 0;
    m->room_pid = TP_PID_NONE;
    m->room[0] = '\0';
}

static void
join(tp_ctx *ctx, struct member *m, const char *room, size_t len)
{
    leave_room(ctx, m, "left");
    memcpy(m->room, room, len);
    m->room[len] = '\0';
    m->rejoining = false;
    open_room(ctx, m, false);
}

/* Our room died. A crash is restarted by its supervisor: look for the new
 * incarnation for a while, then start it ourselves. In a cluster the room
 * may have been on a node that went down: then after that while a member
 * on a surviving node opens it again (the first to register its cluster
 * name wins, the others join that one). */
static void
on_room_down(tp_ctx *ctx, struct member *m, const tp_msg *msg)
{
    tp_exit_reason why;
    tp_pid pid;
    uint64_t ref;

    if (tp_msg_down(msg, &pid, &ref, &why) != 0 || pid != m->room_pid ||
        ref != m->room_mon)
        return;
    if (why.kind == TP_EXIT_NOCONNECTION) /* its node is down */
        say(ctx, m, "* #%s was on a node that went down; opening it again\n",
            m->room);
    else if (!tp_exit_is_normal(&why))
        say(ctx, m, "* #%s crashed (%s); its supervisor restarts it\n", m->room,
            why.text ? why.text : tp_exit_kind_name(why.kind));
    m->rejoining = true;
    retry_later(ctx, m);
}

static void
on_rejoin(tp_ctx *ctx, struct member *m)
{
    tp_pid pid;

    if (m->room[0] == '\0' || m->room_pid != TP_PID_NONE)
        return; /* left, or already back */
    pid = chat_find_room(tp_ctx_runtime(ctx), m->chat, m->room);
    if (pid != TP_PID_NONE)
        enter_room(ctx, m, pid, m->rejoining);
    else if (++m->rejoin_tries < REJOIN_TRIES)
        tp_send_after(ctx, REJOIN_DELAY_MS, tp_self(ctx), CHAT_MSG_REJOIN, NULL,
                      0, NULL);
    else
        start_room(ctx, m);
}

/* The rooms' supervisor answered our TP_SUP_START_CHILD: the room's
 * supervisor started, and with it the room (started in its init); or
 * -EEXIST: another member started it first (the room may be waiting for
 * a restart: look again shortly). */
static void
on_room_started(tp_ctx *ctx, struct member *m, const tp_msg *msg)
{
    const tp_sup_result *res = msg->data;
    tp_pid pid = TP_PID_NONE;
    int err = -ETIMEDOUT;

    m->start_ref = 0;
    if (msg->type == TP_MSG_REPLY && msg->len == sizeof(*res))
        err = res->err;
    if (err == 0 || err == -EEXIST)
        pid = chat_find_room(tp_ctx_runtime(ctx), m->chat, m->room);
    if (pid != TP_PID_NONE) {
        enter_room(ctx, m, pid, m->rejoining);
    } else if (err == -EEXIST) {
        retry_later(ctx, m);
    } else {
        say(ctx, m, "* cannot open #%s right now\n", m->room);
        m->room[0] = '\0';
    }
}

/* ---- nicknames ---------------------------------------------------------- */

static int
take_nick(tp_ctx *ctx, const char *nick)
{
    char reg[TP_NAME_MAX + 1];

    chat_regname(reg, sizeof(reg), "nick", nick);
    return tp_register(tp_ctx_runtime(ctx), reg, tp_self(ctx));
}

static void
drop_nick(tp_ctx *ctx, const char *nick)
{
    char reg[TP_NAME_MAX + 1];

    chat_regname(reg, sizeof(reg), "nick", nick);
    tp_unregister(tp_ctx_runtime(ctx), reg, tp_self(ctx));
}

static void
set_nick(tp_ctx *ctx, struct member *m, const char *nick, size_t len)
{
    char want[CHAT_NICK_MAX + 1];

    memcpy(want, nick, len);
    want[len] = '\0';
    if (strcmp(want, m->nick) == 0)
        return;
    if (take_nick(ctx, want) != 0) {
        say(ctx, m, "* nickname %s is taken\n", want);
        return;
    }
    drop_nick(ctx, m->nick);
    memcpy(m->nick, want, sizeof(want));
    say(ctx, m, "* you are now %s\n", m->nick);
    if (m->room_pid != TP_PID_NONE)
        tp_send(ctx, m->room_pid, CHAT_MSG_NICK, m->nick, len);
}

/* A first nickname, guest<slot>: unique among live actors. */
static void
guest_nick(tp_ctx *ctx, struct member *m)
{
    tp_pid self = tp_self(ctx);

    snprintf(m->nick, sizeof(m->nick), "guest%u", tp_pid_index(self));
    if (take_nick(ctx, m->nick) != 0) { /* someone chose that nickname */
        snprintf(m->nick, sizeof(m->nick), "guest%u-%u", tp_pid_index(self),
                 tp_pid_gen(self));
        take_nick(ctx, m->nick);
    }
}

/* ---- commands ----------------------------------------------------------- */

static void
say_to_room(tp_ctx *ctx, struct member *m, const struct chat_cmd *c)
{
    char text[CHAT_LINE_MAX + 1];
    char line[CHAT_LINE_MAX + CHAT_NICK_MAX + 8];
    int n;

    if (m->room_pid == TP_PID_NONE) {
        say(ctx, m, "* you are in no room: /join lobby\n");
        return;
    }
    chat_clean_text(c->text, c->text_len, text, sizeof(text));
    n = snprintf(line, sizeof(line), "<%s> %s\n", m->nick, text);
    /* The room's mailbox is bounded: past it, the line is dropped and
     * the sender told once per burst, then how many were lost. */
    if (tp_send(ctx, m->room_pid, CHAT_MSG_SAY, line, (size_t)n) == -EAGAIN) {
        if (m->refused++ == 0)
            say(ctx, m,
                "* #%s is busy: slow down, your lines are being "
                "dropped\n",
                m->room);
    } else if (m->refused != 0) {
        say(ctx, m, "* %u of your lines were dropped (#%s was busy)\n",
            m->refused, m->room);
        m->refused = 0;
    }
}

static void
private_msg(tp_ctx *ctx, struct member *m, const struct chat_cmd *c)
{
    char reg[TP_NAME_MAX + 1], nick[CHAT_NICK_MAX + 1];
    char text[CHAT_LINE_MAX + 1], line[CHAT_LINE_MAX + CHAT_NICK_MAX + 8];
    int n;

    memcpy(nick, c->arg, c->arg_len);
    nick[c->arg_len] = '\0';
    chat_regname(reg, sizeof(reg), "nick", nick);
    chat_clean_text(c->text, c->text_len, text, sizeof(text));
    n = snprintf(line, sizeof(line), "*%s* %s\n", m->nick, text);
    if (tp_send_named(ctx, reg, CHAT_MSG_LINE, line, (size_t)n) != 0)
        say(ctx, m, "* no one is called %s\n", nick);
}

static void
who(tp_ctx *ctx, struct member *m)
{
    if (m->room_pid == TP_PID_NONE) {
        say(ctx, m, "* you are in no room\n");
        return;
    }
    /* request/reply: the answer comes back as TP_MSG_REPLY with who_ref,
     * or TP_MSG_TIMEOUT if the room does not answer within 1 s. */
    tp_request(ctx, m->room_pid, CHAT_MSG_WHO, NULL, 0, 1000, &m->who_ref);
}

static void
list_rooms(tp_ctx *ctx, struct member *m)
{
    char names[CHAT_LINE_MAX];

    chat_room_list(m->chat, names, sizeof(names));
    say(ctx, m, "* rooms:%s\n", names);
}

static void
quit(tp_ctx *ctx, struct member *m)
{
    leave_room(ctx, m, "quit");
    say(ctx, m, "* bye\n");
    tp_tcp_close(ctx, m->conn); /* queued lines are still sent */
}

static void
crash_room(tp_ctx *ctx, struct member *m)
{
    if (m->room_pid != TP_PID_NONE)
        tp_send(ctx, m->room_pid, CHAT_MSG_CRASH, NULL, 0);
}

static void
run_command(tp_ctx *ctx, struct member *m, const struct chat_cmd *c)
{
    switch (c->kind) {
    case CHAT_CMD_EMPTY:
        break;
    case CHAT_CMD_SAY:
        say_to_room(ctx, m, c);
        break;
    case CHAT_CMD_NICK:
        set_nick(ctx, m, c->arg, c->arg_len);
        break;
    case CHAT_CMD_JOIN:
        join(ctx, m, c->arg, c->arg_len);
        break;
    case CHAT_CMD_LEAVE:
        leave_room(ctx, m, "left");
        break;
    case CHAT_CMD_WHO:
        who(ctx, m);
        break;
    case CHAT_CMD_ROOMS:
        list_rooms(ctx, m);
        break;
    case CHAT_CMD_MSG:
        private_msg(ctx, m, c);
        break;
    case CHAT_CMD_HELP:
        say(ctx, m, "%s", chat_help_text);
        break;
    case CHAT_CMD_QUIT:
        quit(ctx, m);
        break;
    case CHAT_CMD_CRASH:
        tp_fail(ctx, "%s asked for it", m->nick);
    case CHAT_CMD_CRASHROOM:
        crash_room(ctx, m);
        break;
    case CHAT_CMD_BAD:
        say(ctx, m, "* %s\n", c->error);
        break;
    }
}

static void
on_line(void *user, const char *line, size_t len)
{
    struct line_ctx *lc = user;
    struct chat_cmd c;

    if (line == NULL) {
        say(lc->ctx, lc->m, "* line too long (max %d bytes)\n", CHAT_LINE_MAX);
        return;
    }
    chat_parse(line, len, &c);
    run_command(lc->ctx, lc->m, &c);
}

/* ---- the actor ---------------------------------------------------------- */

static void
on_open(tp_ctx *ctx, struct member *m, const tp_msg *msg)
{
    m->conn = tp_msg_conn(msg);
    guest_nick(ctx, m);
    say(ctx, m, "* welcome to troupe chat, %s. /help lists the commands.\n",
        m->nick);
    join(ctx, m, "lobby", strlen("lobby"));
}

/* Lines from the room (blobs: written without a copy) or from /msg. A
 * client that reads too slowly loses them (counted) instead of making
 * its write queue grow up to the connection's write limit. */
static void
on_chat_line(tp_ctx *ctx, struct member *m, const tp_msg *msg)
{
    tp_blob *blob = tp_msg_blob(msg);

    if (blob != NULL && msg->from != m->room_pid)
        return; /* from a room we left (our LEAVE may have been refused) */
    if (m->blocked) {
        m->dropped++;
        return;
    }
    if (blob != NULL && !m->ws)
        tp_tcp_send_blob(ctx, m->conn, blob); /* no copy */
    else
        emit(ctx, m, msg->data, msg->len);
}

static void
on_drained(tp_ctx *ctx, struct member *m)
{
    m->blocked = false;
    if (m->dropped != 0)
        say(ctx, m, "* %u lines were dropped: you are reading too slowly\n",
            m->dropped);
    m->dropped = 0;
}

/* Answers to our requests: /who, or a room start. */
static void
on_answer(tp_ctx *ctx, struct member *m, const tp_msg *msg)
{
    if (msg->ref == m->start_ref) {
        on_room_started(ctx, m, msg);
    } else if (msg->ref == m->who_ref) {
        m->who_ref = 0;
        if (msg->type == TP_MSG_REPLY)
            emit(ctx, m, msg->data, msg->len);
        else
            say(ctx, m, "* #%s did not answer\n", m->room);
    }
}

static void
member_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct member *m = state;
    struct line_ctx lc = {ctx, m};

    switch (msg->type) {
    case TP_MSG_TCP_OPENED:
        if (!m->ws)
            on_open(ctx, m, msg);
        break;
    case TP_MSG_WS_UPGRADED: /* a WebSocket client may be written to now */
        on_open(ctx, m, msg);
        break;
    case TP_MSG_TCP_DATA:
        chat_frame_feed(&m->frame, msg->data, msg->len, on_line, &lc);
        break;
    case TP_MSG_WS_TEXT: /* a line, or lines; the last one ends here */
        chat_frame_feed(&m->frame, msg->data, msg->len, on_line, &lc);
        chat_frame_feed(&m->frame, "\n", 1, on_line, &lc);
        break;
    case TP_MSG_TCP_DRAIN:
        say(ctx, m, "* the server is shutting down, bye\n");
        break; /* then the runtime closes the connection */
    case CHAT_MSG_LINE:
        on_chat_line(ctx, m, msg);
        break;
    case TP_MSG_TCP_WRITE_BLOCKED:
        m->blocked = true;
        break;
    case TP_MSG_TCP_DRAINED:
        on_drained(ctx, m);
        break;
    case TP_MSG_DOWN:
        on_room_down(ctx, m, msg);
        break;
    case CHAT_MSG_REJOIN:
        on_rejoin(ctx, m);
        break;
    case TP_MSG_REPLY:
    case TP_MSG_TIMEOUT:
    case TP_MSG_NOPROC:
        on_answer(ctx, m, msg);
        break;
    }
}

static int
member_init(tp_ctx *ctx, void *state, void *arg)
{
    struct member *m = state;

    m->chat = arg; /* the listener's arg */
    /* A listener spawns us with default options: bound our own mailbox
     * (rooms and any member's /msg send to it). */
    return tp_set_mailbox_bound(ctx, CHAT_MEMBER_MAILBOX, 0,
                                TP_OVERFLOW_DROP_NEWEST);
}

const tp_behaviour chat_member_behaviour = {
    .name = "chat.member",
    .state_size = sizeof(struct member),
    .init = member_init,
    .handle = member_handle,
};

static int
member_ws_init(tp_ctx *ctx, void *state, void *arg)
{
    struct member *m = state;

    m->ws = true;
    return member_init(ctx, state, arg);
}

const tp_behaviour chat_member_ws_behaviour = {
    .name = "chat.member",
    .state_size = sizeof(struct member),
    .init = member_ws_init,
    .handle = member_handle,
};
