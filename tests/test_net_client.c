/*
 * tests/test_net_client.c - the scale test's client, run as a separate
 * process: opens N idle TCP connections to 127.0.0.1:PORT, prints
 * "ready <n>" once they are all established, holds them until stdin
 * closes (or says "quit"), then closes them and exits.
 *
 *   test_net_client PORT N
 *
 * Plain epoll and non-blocking connects (at most 512 in progress), so
 * 15,000 connections open in well under a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define IN_FLIGHT 512

static int
start_one(int ep, const struct sockaddr_in *to)
{
    struct epoll_event ev;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0 &&
        errno != EINPROGRESS) {
        close(fd);
        return -errno;
    }
    ev.events = EPOLLOUT;
    ev.data.fd = fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return fd;
}

/* Waits for connects to finish; returns how many succeeded. */
static int
finish_some(int ep, int *pending, int *failed)
{
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 1000), ok = 0;

    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd, err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        (*pending)--;
        if (err == 0) {
            ok++;
        } else {
            (*failed)++;
            close(fd);
        }
    }
    return ok;
}

int
main(int argc, char **argv)
{
    struct rlimit rl;
    struct sockaddr_in to;
    int n, ep, started = 0, done = 0, pending = 0, failed = 0;
    char line[64];

    if (argc != 3)
        return 2;
    n = atoi(argv[2]);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    memset(&to, 0, sizeof(to));
    to.sin_family = AF_INET;
    to.sin_port = htons((uint16_t)atoi(argv[1]));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ep = epoll_create1(EPOLL_CLOEXEC);
    while (done < n && failed < 100) {
        while (started < n && pending < IN_FLIGHT) {
            if (start_one(ep, &to) < 0) {
                failed++;
                break;
            }
            started++;
            pending++;
        }
        done += finish_some(ep, &pending, &failed);
    }
    printf("ready %d\n", done);
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL &&
           strncmp(line, "quit", 4) != 0)
        ;
    return done == n ? 0 : 1; /* exit closes every socket */
}
