/*
 * docs/examples/guide_flow.c - docs/GUIDE.md, step 5: flow control. A
 * "firehose" connection actor streams 8 MiB to a client that reads slowly.
 * It writes until the runtime says its write queue is full
 * (TP_MSG_TCP_WRITE_BLOCKED), stops, and goes on when the queue has
 * drained (TP_MSG_TCP_DRAINED), so the server's memory for this client
 * stays near the high-water mark instead of growing to 8 MiB.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe.h>
#include <unistd.h>

#define TOTAL (8u << 20)
#define CHUNK (16u << 10)

enum { MORE = 1 }; /* to itself: write the next chunk */

struct firehose {
    tp_conn conn;
    uint64_t sent;
    bool blocked;
    unsigned pauses;
    uint64_t max_queued;
};

/* One chunk, then a message to itself for the next: a long job is split
 * into short turns so other actors on this scheduler get theirs. */
static void
write_chunk(tp_ctx *ctx, struct firehose *f)
{
    static char chunk[CHUNK];

    if (f->blocked)
        return; /* DRAINED will bring us back */
    if (f->sent >= TOTAL) {
        printf("server: sent %u MiB, paused %u times, at most %llu KiB "
               "queued\n",
               TOTAL >> 20, f->pauses, (unsigned long long)f->max_queued >> 10);
        fflush(stdout);
        tp_tcp_close(ctx, f->conn); /* after the queued bytes */
        return;
    }
    memset(chunk, 'a' + (int)(f->sent / CHUNK % 26), sizeof(chunk));
    f->sent += sizeof(chunk);
    if (tp_tcp_send(ctx, f->conn, chunk, sizeof(chunk)) == 1) {
        f->blocked = true; /* over write_high: stop producing */
        f->pauses++;
        return;
    }
    tp_send(ctx, tp_self(ctx), MORE, NULL, 0);
}

static void
firehose_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct firehose *f = state;
    const tp_tcp_write_state *ws = msg->data;

    switch (msg->type) {
    case TP_MSG_TCP_OPENED:
        f->conn = tp_msg_conn(msg);
        write_chunk(ctx, f);
        break;
    case MORE:
        write_chunk(ctx, f);
        break;
    case TP_MSG_TCP_WRITE_BLOCKED: /* the same news as send's 1 */
        if (ws->queued > f->max_queued)
            f->max_queued = ws->queued;
        break;
    case TP_MSG_TCP_DRAINED: /* back under write_low: go on */
        f->blocked = false;
        write_chunk(ctx, f);
        break;
    }
}

static const tp_behaviour firehose = {.name = "firehose",
                                      .state_size = sizeof(struct firehose),
                                      .handle = firehose_handle};

/* A slow client: reads 64 KiB at a time with a pause in between. */
static void
slow_client(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    static char buf[64 << 10];
    size_t total = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        return;
    while ((n = recv(fd, buf, sizeof(buf), MSG_WAITALL)) > 0) {
        total += (size_t)n;
        usleep(1000);
    }
    printf("client: received %zu MiB\n", total >> 20);
    close(fd);
}

int
main(void)
{
    tp_runtime *rt;
    tp_listen_opts lo;
    tp_listener *l;

    tp_runtime_create(&rt, NULL);
    tp_runtime_start(rt);
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.behaviour = &firehose;
    lo.conn.write_high = 256u << 10; /* BLOCKED above (the default) */
    lo.conn.write_low = 64u << 10;   /* DRAINED below (the default) */
    lo.conn.write_limit = 4u << 20;  /* a client that never reads is cut
                                        off past this; we never get there */
    if (tp_tcp_listen(rt, &lo, &l) != 0)
        return 1;
    slow_client(tp_listener_port(l));
    tp_runtime_destroy(rt);
    return 0;
}
