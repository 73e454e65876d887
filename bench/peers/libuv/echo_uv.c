/*
 * bench/peers/libuv/echo_uv.c - the practical limit for an echo server on
 * libuv: one loop per thread (one thread per CPU), each with its own
 * SO_REUSEPORT listening socket, one 64 KiB read buffer per loop, writes
 * tried at once (uv_try_write) and queued with a copy only when the kernel
 * did not take everything. No actors, no messages.
 *
 *   echo_uv PORT [THREADS]   (THREADS default: online CPUs)
 *
 * Prints "port <n>" when listening; runs until killed.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BUF 65536

struct loop {
    uv_loop_t loop;
    uv_tcp_t server;
    char buf[BUF];
    int port;
    pthread_t th;
};

struct wreq {
    uv_write_t req;
    char data[];
};

static void
alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct loop *l = h->loop->data;

    (void)hint;
    *b = uv_buf_init(l->buf, BUF);
}

static void
close_cb(uv_handle_t *h)
{
    free(h);
}

static void
write_cb(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    uv_buf_t out;
    struct wreq *w;
    int done;

    if (n < 0) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (n == 0)
        return;
    out = uv_buf_init(b->base, (unsigned)n);
    done = uv_try_write(s, &out, 1);
    if (done == n)
        return;
    if (done < 0 && done != UV_EAGAIN) {
        uv_close((uv_handle_t *)s, close_cb);
        return;
    }
    if (done < 0)
        done = 0;
    w = malloc(sizeof(*w) + (size_t)(n - done));
    memcpy(w->data, b->base + done, (size_t)(n - done));
    out = uv_buf_init(w->data, (unsigned)(n - done));
    uv_write(&w->req, s, &out, 1, write_cb);
}

static void
on_connection(uv_stream_t *server, int status)
{
    uv_tcp_t *c;

    if (status < 0)
        return;
    c = malloc(sizeof(*c));
    uv_tcp_init(server->loop, c);
    if (uv_accept(server, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, close_cb);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, alloc_cb, read_cb);
}

/* libuv 1.44 has no UV_TCP_REUSEPORT: set the option on the socket. */
static int
listen_reuseport(struct loop *l)
{
    struct sockaddr_in in;
    uv_os_fd_t fd;
    int one = 1;

    uv_tcp_init_ex(&l->loop, &l->server, AF_INET);
    uv_fileno((uv_handle_t *)&l->server, &fd);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    uv_ip4_addr("127.0.0.1", l->port, &in);
    if (uv_tcp_bind(&l->server, (struct sockaddr *)&in, 0) != 0)
        return -1;
    return uv_listen((uv_stream_t *)&l->server, 1024, on_connection);
}

static void *
loop_main(void *arg)
{
    struct loop *l = arg;

    uv_run(&l->loop, UV_RUN_DEFAULT);
    return NULL;
}

int
main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 0;
    int n = argc > 2 ? atoi(argv[2]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct loop *loops = calloc((size_t)n, sizeof(*loops));
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (port <= 0 || n <= 0) {
        fprintf(stderr, "usage: echo_uv PORT [THREADS]\n");
        return 2;
    }
    for (int i = 0; i < n; i++) {
        uv_loop_init(&loops[i].loop);
        loops[i].loop.data = &loops[i];
        loops[i].port = port;
        if (listen_reuseport(&loops[i]) != 0) {
            fprintf(stderr, "echo_uv: cannot listen on %d\n", port);
            return 1;
        }
    }
    printf("port %d\n", port);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        pthread_create(&loops[i].th, NULL, loop_main, &loops[i]);
    for (int i = 0; i < n; i++)
        pthread_join(loops[i].th, NULL);
    return 0;
}
