/*
 * net/addr.c - tp_net_addr: numeric parsing, formatting, and conversion
 * from and to struct sockaddr (pure functions, no sockets).
 */
#include "net_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

void
tp__addr_from_sockaddr(const void *sa, tp_net_addr *out)
{
    const struct sockaddr *s = sa;

    memset(out, 0, sizeof(*out));
    if (s->sa_family == AF_INET) {
        const struct sockaddr_in *in = sa;
        out->family = TP_NET_INET;
        out->port = ntohs(in->sin_port);
        memcpy(out->addr, &in->sin_addr, 4);
    } else if (s->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = sa;
        out->family = TP_NET_INET6;
        out->port = ntohs(in6->sin6_port);
        out->scope = in6->sin6_scope_id;
        memcpy(out->addr, &in6->sin6_addr, 16);
    } else if (s->sa_family == AF_UNIX) {
        out->family = TP_NET_UNIX;
    }
}

int
tp__addr_to_sockaddr(const tp_net_addr *a, void *ss, unsigned *len)
{
    memset(ss, 0, sizeof(struct sockaddr_storage));
    if (a->family == TP_NET_INET) {
        struct sockaddr_in *in = ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->addr, 4);
        *len = sizeof(*in);
        return 0;
    }
    if (a->family == TP_NET_INET6) {
        struct sockaddr_in6 *in6 = ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        in6->sin6_scope_id = a->scope;
        memcpy(&in6->sin6_addr, a->addr, 16);
        *len = sizeof(*in6);
        return 0;
    }
    return -EINVAL;
}

int
tp_net_addr_parse(const char *text, uint16_t port, tp_net_addr *out)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t n;

    if (out == NULL)
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    out->port = port;
    if (text == NULL || text[0] == '\0')
        text = "0.0.0.0";
    n = strlen(text);
    /* Accept "[::1]" as well as "::1". */
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
        if (n - 2 >= sizeof(buf))
            return -EINVAL;
        memcpy(buf, text + 1, n - 2);
        buf[n - 2] = '\0';
        text = buf;
    }
    if (inet_pton(AF_INET, text, out->addr) == 1) {
        out->family = TP_NET_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->addr) == 1) {
        out->family = TP_NET_INET6;
        return 0;
    }
    memset(out, 0, sizeof(*out));
    return -EINVAL;
}

int
tp_net_addr_format(const tp_net_addr *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (a == NULL || buf == NULL || size == 0)
        return -EINVAL;
    switch (a->family) {
    case TP_NET_INET:
        inet_ntop(AF_INET, a->addr, ip, sizeof(ip));
        n = snprintf(buf, size, "%s:%u", ip, a->port);
        break;
    case TP_NET_INET6:
        inet_ntop(AF_INET6, a->addr, ip, sizeof(ip));
        n = snprintf(buf, size, "[%s]:%u", ip, a->port);
        break;
    case TP_NET_UNIX:
        n = snprintf(buf, size, "unix");
        break;
    default:
        n = snprintf(buf, size, "-");
        break;
    }
    return n < (int)size ? n : (int)size - 1;
}
