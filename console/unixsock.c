/*
 * console/unixsock.c - the Unix socket file, private from its first
 * moment, and the peer credentials of a connection to it.
 *
 * The socket is bound inside a fresh directory made by mkdtemp() next to
 * the path (mode 0700, ours: no one else can connect to anything in it,
 * nor swap its entries), given its mode there through the directory's
 * descriptor, then hard-linked to the path with linkat(), which never
 * replaces or follows whatever sits at the path; the private directory is
 * then removed. So there is no moment at which a socket at the path has
 * looser permissions, and nothing outside our own directory is ever
 * chmod-ed or followed. On stop the path is unlinked only while it still
 * is our socket (same device and inode).
 *
 * What may sit at the path first: nothing; a socket nobody listens on
 * (a dead server's: removed); a socket that answers a connect (another
 * running server: refused with -EADDRINUSE, it is left alone); anything
 * else (refused too).
 */
#include "console_int.h"
#include "net/net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCK_NAME "s"

/* Is a server listening on the socket at path? 1 yes, 0 no (dead),
 * negative errno when we cannot tell. */
static int
alive(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc;

    if (fd < 0)
        return -errno;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 1 : -errno;
    close(fd);
    if (rc == -EAGAIN || rc == -EINPROGRESS)
        return 1; /* its backlog is full: very much alive */
    if (rc == -ECONNREFUSED || rc == -ENOENT)
        return 0;
    return rc;
}

/* Deals with what is at path now: 0 when the path is free (a dead
 * server's socket was removed), else -EADDRINUSE (logged). */
static int
clear_path(const char *path)
{
    struct stat st;
    int live;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode)) {
        tp_log(TP_LOG_ERROR, "console: %s exists and is not a socket", path);
        return -EADDRINUSE;
    }
    if ((live = alive(path)) > 0) {
        tp_log(TP_LOG_ERROR, "console: another server is listening on %s",
               path);
        return -EADDRINUSE;
    }
    if (live < 0) {
        tp_log(TP_LOG_ERROR,
               "console: cannot tell whether a server listens on %s (%s): "
               "not replacing it",
               path, tp_strerror(live));
        return -EADDRINUSE;
    }
    /* unlink() never follows a symlink swapped in meanwhile. */
    if (unlink(path) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* mkdtemp() next to the path, opened and checked to be ours and private
 * (no one swapped it between the two calls). */
static int
make_private_dir(struct tp__unix_file *u)
{
    char copy[108];
    struct stat st;
    int n;

    snprintf(copy, sizeof(copy), "%s", u->path);
    n = snprintf(u->dir, sizeof(u->dir), "%s/.tpc-XXXXXX", dirname(copy));
    if (n < 0 || (size_t)n + sizeof("/" SOCK_NAME) > sizeof(u->tmp))
        return -ENAMETOOLONG;
    if (mkdtemp(u->dir) == NULL) {
        u->dir[0] = '\0';
        return -errno;
    }
    u->dirfd = open(u->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (u->dirfd < 0 || fstat(u->dirfd, &st) != 0 || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0)
        return u->dirfd < 0 ? -errno : -EPERM;
    n = (int)strlen(u->dir);
    memcpy(u->tmp, u->dir, (size_t)n);
    memcpy(u->tmp + n, "/" SOCK_NAME, sizeof("/" SOCK_NAME));
    return 0;
}

int
tp__unix_prepare(struct tp__unix_file *u, const char *path)
{
    int err;

    memset(u, 0, sizeof(*u));
    u->dirfd = -1;
    if (strlen(path) >= sizeof(u->path))
        return -ENAMETOOLONG;
    snprintf(u->path, sizeof(u->path), "%s", path);
    if ((err = clear_path(path)) != 0)
        return err;
    if ((err = make_private_dir(u)) != 0)
        tp__unix_remove(u);
    return err;
}

int
tp__unix_publish(struct tp__unix_file *u, uint32_t mode)
{
    struct stat st;
    int err;

    /* Through our directory's descriptor: the entry is ours (no one else
     * can write there), and it must be the socket we bound. */
    if (fstatat(u->dirfd, SOCK_NAME, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EPERM;
    if (fchmodat(u->dirfd, SOCK_NAME, (mode_t)mode, 0) != 0)
        return -errno;
    for (int tries = 0;; tries++) {
        if (linkat(u->dirfd, SOCK_NAME, AT_FDCWD, u->path, 0) == 0)
            break;
        /* Someone put something there since we looked: look again once. */
        if (errno != EEXIST || tries > 0)
            return errno == EEXIST ? -EADDRINUSE : -errno;
        if ((err = clear_path(u->path)) != 0)
            return err;
    }
    u->linked = true;
    u->dev = st.st_dev;
    u->ino = st.st_ino;
    unlinkat(u->dirfd, SOCK_NAME, 0);
    close(u->dirfd);
    u->dirfd = -1;
    rmdir(u->dir);
    u->dir[0] = '\0';
    return 0;
}

void
tp__unix_remove(struct tp__unix_file *u)
{
    struct stat st;

    if (u->dirfd >= 0) {
        unlinkat(u->dirfd, SOCK_NAME, 0);
        close(u->dirfd);
        u->dirfd = -1;
    }
    if (u->dir[0] != '\0')
        rmdir(u->dir);
    u->dir[0] = '\0';
    /* Only our own socket: a live server that took the path after us, or
     * a link swapped in, is not ours to remove. */
    if (u->linked && lstat(u->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        st.st_dev == u->dev && st.st_ino == u->ino)
        unlink(u->path);
    u->linked = false;
}

int
tp__conn_peer_cred(tp_runtime *rt, tp_conn conn, uid_t *uid, gid_t *gid)
{
    struct tp__conn *c = tp__conn_resolve(tp__net_of(rt), conn);
    struct ucred cr;
    socklen_t len = sizeof(cr);
    int fd;

    if (c == NULL)
        return -ENOTCONN;
    /* The host runs on the connection's loop thread (pinned, one loop),
     * which alone closes the fd: it stays valid during this handler. The
     * gen is re-checked all the same (acquire: after the fd was read). */
    fd = atomic_load_explicit(&c->fd, memory_order_relaxed);
    if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return -ENOTCONN;
    if (atomic_load_explicit(&c->gen, memory_order_acquire) != (conn >> 32))
        return -ENOTCONN;
    *uid = cr.uid;
    *gid = cr.gid;
    return 0;
}
