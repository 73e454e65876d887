/*
 * docs/examples/guide_conn.c - docs/GUIDE.md, step 4: a connection
 * handler. Every accepted connection is an actor; its bytes arrive as
 * messages. This server answers each line in capitals, under a dynamic
 * supervisor. main() then connects to it like any client would.
 *
 *   guide_conn          serve on a free port, test itself, exit
 *   guide_conn PORT     serve on PORT until Ctrl-C (try: nc localhost PORT)
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <troupe.h>
#include <unistd.h>

struct shout {
    tp_conn conn;
    unsigned long lines;
};

static void
shout_handle(tp_ctx *ctx, void *state, const tp_msg *msg)
{
    struct shout *s = state;
    char up[4096];
    size_t n = msg->len < sizeof(up) ? msg->len : sizeof(up);

    switch (msg->type) {
    case TP_MSG_TCP_OPENED: /* the first message: who and where */
        s->conn = tp_msg_conn(msg);
        tp_tcp_send(ctx, s->conn, "hi! say something\n", 18);
        break;
    case TP_MSG_TCP_DATA: /* some bytes: not necessarily one line */
        for (size_t i = 0; i < n; i++) {
            up[i] = (char)toupper((unsigned char)((const char *)msg->data)[i]);
            s->lines += up[i] == '\n';
        }
        tp_tcp_send(ctx, s->conn, up, n); /* queued; never blocks */
        break;
    case TP_MSG_TCP_CLOSED: /* the last one; then the actor ends */
        printf("server: connection closed after %lu lines\n", s->lines);
        break;
    }
}

static const tp_behaviour shout = {.name = "shout",
                                   .state_size = sizeof(struct shout),
                                   .handle = shout_handle};

static int
serve(tp_runtime *rt, int port, tp_listener **out)
{
    tp_sup_spec spec;
    tp_listen_opts lo;
    tp_pid sup;
    int err;

    /* Connections come and go: a dynamic supervisor, temporary children
     * (a connection is never restarted; its actor just ends). */
    tp_sup_spec_init(&spec, TP_DYNAMIC);
    tp_child_spec_init(&spec.child_template, "conn", &shout, NULL);
    spec.child_template.restart = TP_TEMPORARY;
    if ((err = tp_runtime_supervisor_start(rt, "shout", &spec, &sup)) != 0)
        return err;
    tp_listen_opts_init(&lo);
    lo.address = "127.0.0.1";
    lo.port = (uint16_t)port;
    lo.behaviour = &shout;
    lo.supervisor = sup;
    lo.conn.idle_timeout_ms = 60000; /* a silent client is closed */
    return tp_tcp_listen(rt, &lo, out);
}

/* A plain blocking client, to show the server working. */
static void
client(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char buf[256];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("client");
        exit(1);
    }
    send(fd, "hello\nactors\n", 13, 0);
    while (got < 18 + 13) { /* the greeting, then our two lines back */
        ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    printf("client got:\n%s", buf);
    close(fd);
}

int
main(int argc, char **argv)
{
    tp_runtime *rt;
    tp_listener *l;
    int err, port = argc > 1 ? atoi(argv[1]) : 0;

    tp_runtime_create(&rt, NULL);
    tp_runtime_start(rt);
    if ((err = serve(rt, port, &l)) != 0) {
        fprintf(stderr, "listen: %s\n", tp_strerror(err));
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", tp_listener_port(l));
    fflush(stdout);
    if (argc > 1) {
        signal(SIGINT, SIG_DFL);
        pause(); /* until Ctrl-C */
    }
    client(tp_listener_port(l));
    usleep(100 * 1000);     /* let the server see the close */
    tp_runtime_destroy(rt); /* closes the listener and any connection */
    return 0;
}
