/*
 * bench/fleet_client.c - the fleet's load client: holds many idle
 * connections to troupe-fleet-node processes (samples/fleet), reads what
 * the nodes push, reconnects what drops, and reports. Plain epoll, one
 * thread; knows the fleet's line protocol (samples/fleet/fleet_proto.h)
 * and nothing of Troupe.
 *
 * Hold mode:
 *   fleet_client --port P --conns N [--host 127.0.0.1] [--id c1]
 *                [--src 127.1.0.1] [--srcs 4] [--rate 20000]
 *                [--inflight 1000] [--backoff-ms 50] [--backoff-max-ms 2000]
 *                [--connect-timeout-ms 5000] [--status FILE]
 *                [--status-ms 500] [--report FILE]
 *   Connection i binds source address src + (i mod srcs) before it
 *   connects (IP_BIND_ADDRESS_NO_PORT: the kernel picks the port for the
 *   whole 4-tuple, so each source address gives its own ~28,000 ports),
 *   then takes the name "<id>.<i>" (HELLO). A connection that drops is
 *   reconnected after a backoff (base * 2^failures, jitter 0.5..1.5x, at
 *   most backoff-max; at once after the node's "BYE drain"); at most
 *   `rate` connects per second and `inflight` at once. Every status-ms it
 *   rewrites FILE (atomically) with one line:
 *     STATUS id= target= open= named= connecting= waiting= connects=
 *       connected= reconnects= drops= drain_drops= failed= timeouts=
 *       msgs= dups= errs= full_at_ms= nodes=N1:C1,N2:C2
 *       dropped=N1:D1,...
 *   (full_at_ms: wall-clock ms when all N were last named, 0 while not).
 *   SIGUSR1 writes the report FILE: "NAME <name> <node>" per named
 *   connection and "RCV <name> <id> <count> <lat_us>" per connection that
 *   got a MSG (lat: from the sender's stamp to the read, same machine).
 *   SIGTERM/SIGINT: closes everything, prints the final STATUS on stdout.
 *
 * Send mode:
 *   fleet_client --send FILE --port P [--host H] [--via-one]
 *                [--window 64] [--tries 400]
 *   FILE: lines "<name> <node> <id>". Opens connections until it holds one
 *   to every node the file names (the NODE greeting says which it got;
 *   with SO_REUSEPORT the kernel picks), then sends each "SEND <name> <id>
 *   <t_ns>" through the connection to the name's node (--via-one: all
 *   through the first one: a cluster resolves names itself) and counts the
 *   ACKs:
 *     RESULT send.ok N / send.noname N / send.dead N / send.ms T
 *   Exit status 1 unless every SEND was acknowledged "ok".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NODES_MAX 256
#define NODE_NAME 32
#define IN_MAX    96 /* longest line a node sends us */
#define EVENTS    256

/* ---- options ----------------------------------------------------------- */

struct opts {
    const char *host, *id, *src, *status, *report, *send;
    int port, conns, srcs, rate, inflight, backoff_ms, backoff_max_ms;
    int connect_timeout_ms, status_ms, window, tries;
    bool via_one;
};

static struct opts O = {
    .host = "127.0.0.1",
    .src = "127.1.0.1",
    .srcs = 4,
    .rate = 20000,
    .inflight = 1000,
    .backoff_ms = 50,
    .backoff_max_ms = 2000,
    .connect_timeout_ms = 5000,
    .status_ms = 500,
    .window = 64,
    .tries = 400,
};

static const char *
arg_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    const char *a = argv[*i];

    if (strncmp(a, "--", 2) != 0 || strncmp(a + 2, name, n) != 0)
        return NULL;
    if (a[2 + n] == '=')
        return a + 3 + n;
    if (a[2 + n] == '\0' && *i + 1 < argc)
        return argv[++*i];
    return NULL;
}

static bool
int_opt(int argc, char **argv, int *i, const char *name, int *out, int lo)
{
    const char *v = arg_value(argc, argv, i, name);
    char *end;
    long n;

    if (v == NULL)
        return false;
    n = strtol(v, &end, 10);
    if (*end != '\0' || n < lo || n > 100000000) {
        fprintf(stderr, "fleet_client: bad --%s %s\n", name, v);
        exit(2);
    }
    *out = (int)n;
    return true;
}

static bool
str_opt(int argc, char **argv, int *i, const char *name, const char **out)
{
    const char *v = arg_value(argc, argv, i, name);

    if (v != NULL)
        *out = v;
    return v != NULL;
}

static bool
int_opts(int argc, char **argv, int *i)
{
    return int_opt(argc, argv, i, "port", &O.port, 1) ||
           int_opt(argc, argv, i, "conns", &O.conns, 1) ||
           int_opt(argc, argv, i, "srcs", &O.srcs, 1) ||
           int_opt(argc, argv, i, "rate", &O.rate, 1) ||
           int_opt(argc, argv, i, "inflight", &O.inflight, 1) ||
           int_opt(argc, argv, i, "backoff-ms", &O.backoff_ms, 1) ||
           int_opt(argc, argv, i, "backoff-max-ms", &O.backoff_max_ms, 1) ||
           int_opt(argc, argv, i, "connect-timeout-ms", &O.connect_timeout_ms,
                   1) ||
           int_opt(argc, argv, i, "status-ms", &O.status_ms, 10) ||
           int_opt(argc, argv, i, "window", &O.window, 1) ||
           int_opt(argc, argv, i, "tries", &O.tries, 1);
}

static bool
str_opts(int argc, char **argv, int *i)
{
    return str_opt(argc, argv, i, "host", &O.host) ||
           str_opt(argc, argv, i, "id", &O.id) ||
           str_opt(argc, argv, i, "src", &O.src) ||
           str_opt(argc, argv, i, "status", &O.status) ||
           str_opt(argc, argv, i, "report", &O.report) ||
           str_opt(argc, argv, i, "send", &O.send);
}

static void
parse_opts(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--via-one") == 0) {
            O.via_one = true;
            continue;
        }
        if (!int_opts(argc, argv, &i) && !str_opts(argc, argv, &i)) {
            fprintf(stderr,
                    "fleet_client: bad argument '%s'\n"
                    "usage: fleet_client --port P --conns N [options]\n"
                    "       fleet_client --send FILE --port P [options]\n"
                    "(see the comment at the top of bench/fleet_client.c)\n",
                    argv[i]);
            exit(2);
        }
    }
    if (O.port == 0 || (O.send == NULL && O.conns == 0)) {
        fprintf(stderr, "fleet_client: --port and --conns (or --send) are "
                        "required\n");
        exit(2);
    }
}

/* ---- clocks ------------------------------------------------------------ */

static uint64_t
clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t
mono_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC) / 1000000u;
}

static uint64_t
wall_ms(void)
{
    return clock_ns(CLOCK_REALTIME) / 1000000u;
}

/* ---- addresses ----------------------------------------------------------*/

static int
parse_ip(const char *text, struct in_addr *out)
{
    if (inet_pton(AF_INET, text, out) != 1) {
        fprintf(stderr, "fleet_client: bad IPv4 address %s\n", text);
        return -1;
    }
    return 0;
}

static struct sockaddr_in
sockaddr_of(struct in_addr a, int port)
{
    struct sockaddr_in sa;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr = a;
    return sa;
}

/* A non-blocking socket bound to src (port chosen at connect), connecting
 * to dst. Returns the fd (connect in progress or done) or -errno. */
static int
start_connect(const struct sockaddr_in *src, const struct sockaddr_in *dst)
{
    int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int err;

    if (fd < 0)
        return -errno;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (src != NULL &&
        bind(fd, (const struct sockaddr *)src, sizeof(*src)) != 0)
        goto fail;
    if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == 0 ||
        errno == EINPROGRESS)
        return fd;
fail:
    err = -errno;
    close(fd);
    return err;
}

/* ---- node names ---------------------------------------------------------*/

struct node {
    char name[NODE_NAME];
    uint32_t open, dropped;
};

static struct node nodes[NODES_MAX];
static int nnodes;

/* The index of node `name` (added when new), or -1 when the table is
 * full or the name too long. */
static int
node_index(const char *name, size_t len)
{
    for (int i = 0; i < nnodes; i++)
        if (strlen(nodes[i].name) == len &&
            memcmp(nodes[i].name, name, len) == 0)
            return i;
    if (nnodes == NODES_MAX || len == 0 || len >= NODE_NAME)
        return -1;
    memcpy(nodes[nnodes].name, name, len);
    nodes[nnodes].name[len] = '\0';
    return nnodes++;
}

/* ======================================================================== */
/* Hold mode                                                                */

enum slot_state { S_WAIT = 0, S_CONNECTING, S_OPEN };

struct slot {
    int fd;
    uint8_t state;
    uint8_t named, bye;
    int16_t node;      /* index in nodes[], -1 before NODE */
    uint16_t inlen;    /* bytes of a partial line in in[] */
    uint16_t fails;    /* consecutive failures: the backoff's exponent */
    bool ever;         /* was connected once: later connects are reconnects */
    uint32_t heap_pos; /* position in the wait heap, UINT32_MAX if none */
    uint64_t due_ms;   /* S_WAIT: connect at; S_CONNECTING: started at */
    uint64_t got_id;   /* the MSG id received (got > 0) */
    uint32_t got, lat_us;
    char in[IN_MAX];
};

struct counters {
    uint64_t connects, connected, reconnects, drops, drain_drops, failed;
    uint64_t timeouts, msgs, dups, errs, named;
    uint64_t open, connecting;
};

static struct slot *slots;
static struct counters C;
static struct sockaddr_in dst;
static struct in_addr src0;
static int epfd;
static uint64_t full_at_ms; /* wall ms when all were last named */
static volatile sig_atomic_t want_report, want_stop;

/* ---- the wait heap (slots due to connect, by due_ms) ------------------- */

static uint32_t *heap;
static uint32_t heap_len;

static bool
heap_less(uint32_t a, uint32_t b)
{
    return slots[heap[a]].due_ms < slots[heap[b]].due_ms;
}

static void
heap_swap(uint32_t a, uint32_t b)
{
    uint32_t t = heap[a];

    heap[a] = heap[b];
    heap[b] = t;
    slots[heap[a]].heap_pos = a;
    slots[heap[b]].heap_pos = b;
}

static void
heap_up(uint32_t i)
{
    while (i > 0 && heap_less(i, (i - 1) / 2)) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void
heap_down(uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;

        if (l < heap_len && heap_less(l, m))
            m = l;
        if (r < heap_len && heap_less(r, m))
            m = r;
        if (m == i)
            return;
        heap_swap(i, m);
        i = m;
    }
}

static void
heap_push(uint32_t slot)
{
    heap[heap_len] = slot;
    slots[slot].heap_pos = heap_len;
    heap_up(heap_len++);
}

static uint32_t
heap_pop(void)
{
    uint32_t top = heap[0];

    heap_swap(0, --heap_len);
    heap_down(0);
    slots[top].heap_pos = UINT32_MAX;
    return top;
}

/* ---- slot life ----------------------------------------------------------*/

/* Waits `ms` (jittered 0.5..1.5x) before the slot connects again. */
static void
schedule(uint32_t i, uint64_t ms)
{
    struct slot *s = &slots[i];

    s->state = S_WAIT;
    s->due_ms = mono_ms() + ms / 2 + (ms > 0 ? (uint64_t)rand() % ms : 0);
    heap_push(i);
}

static uint64_t
backoff(const struct slot *s)
{
    uint64_t ms = (uint64_t)O.backoff_ms << (s->fails < 16 ? s->fails : 16);

    return ms < (uint64_t)O.backoff_max_ms ? ms : (uint64_t)O.backoff_max_ms;
}

/* Closes the slot's socket and schedules its reconnect. */
static void
drop(uint32_t i, bool failed)
{
    struct slot *s = &slots[i];

    if (s->state == S_OPEN && s->node >= 0) {
        nodes[s->node].open--;
        nodes[s->node].dropped++;
    }
    if (s->state == S_OPEN)
        C.open--;
    if (s->state == S_CONNECTING)
        C.connecting--;
    if (s->named)
        C.named--;
    if (s->state == S_OPEN && !failed)
        s->bye ? C.drain_drops++ : C.drops++;
    if (failed)
        C.failed++, s->fails++;
    if (C.named < (uint64_t)O.conns)
        full_at_ms = 0;
    close(s->fd);
    s->fd = -1;
    s->named = 0;
    s->node = -1;
    s->inlen = 0;
    schedule(i, s->bye && !failed ? (uint64_t)O.backoff_ms : backoff(s));
    s->bye = 0;
}

static int
epoll_set(int op, int fd, uint32_t events, uint32_t i)
{
    struct epoll_event ev = {.events = events, .data.u32 = i};

    return epoll_ctl(epfd, op, fd, &ev);
}

/* Starts slot i's connect. Returns 0, or -1 when out of descriptors. */
static int
connect_slot(uint32_t i)
{
    struct slot *s = &slots[i];
    struct in_addr a = {htonl(ntohl(src0.s_addr) + i % (uint32_t)O.srcs)};
    struct sockaddr_in src = sockaddr_of(a, 0);
    int fd = start_connect(&src, &dst);

    C.connects++;
    if (s->ever)
        C.reconnects++;
    if (fd < 0) {
        s->fd = -1, s->state = S_WAIT, s->fails++;
        C.failed++;
        schedule(i, backoff(s));
        return fd == -EMFILE || fd == -ENFILE ? -1 : 0;
    }
    s->fd = fd;
    s->state = S_CONNECTING;
    s->due_ms = mono_ms();
    C.connecting++;
    epoll_set(EPOLL_CTL_ADD, fd, EPOLLOUT, i);
    return 0;
}

static void
send_line(struct slot *s, const char *line, size_t len)
{
    /* A few bytes on a fresh socket: the kernel takes them whole. */
    if (write(s->fd, line, len) != (ssize_t)len)
        C.errs++;
}

static void
connected(uint32_t i)
{
    struct slot *s = &slots[i];
    char hello[128];
    int err = 0, n;
    socklen_t len = sizeof(err);

    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
        drop(i, true);
        return;
    }
    C.connecting--;
    C.open++;
    C.connected++;
    s->state = S_OPEN;
    s->ever = true;
    epoll_set(EPOLL_CTL_MOD, s->fd, EPOLLIN | EPOLLRDHUP, i);
    n = snprintf(hello, sizeof(hello), "HELLO %s.%u\n", O.id, i);
    send_line(s, hello, (size_t)n);
}

/* ---- what the node says -------------------------------------------------*/

static void
on_node(struct slot *s, const char *name, size_t len)
{
    int k = node_index(name, len);

    if (s->node >= 0 || k < 0) {
        C.errs++;
        return;
    }
    s->node = (int16_t)k;
    nodes[k].open++;
}

static void
on_named(struct slot *s)
{
    if (s->named)
        return;
    s->named = 1;
    s->fails = 0; /* accepted, greeted and named: healthy again */
    if (++C.named == (uint64_t)O.conns)
        full_at_ms = wall_ms();
}

static void
on_msg(struct slot *s, const char *args)
{
    unsigned long long id = 0, t = 0;
    uint64_t now = clock_ns(CLOCK_MONOTONIC);

    if (sscanf(args, "%llu %llu", &id, &t) != 2) {
        C.errs++;
        return;
    }
    C.msgs++;
    if (s->got != 0 && s->got_id == id)
        C.dups++;
    if (s->got++ == 0) {
        s->got_id = id;
        s->lat_us = t != 0 && now > t ? (uint32_t)((now - t) / 1000u) : 0;
    }
}

static void
on_line(struct slot *s, char *line, size_t len)
{
    line[len] = '\0';
    if (strncmp(line, "NODE ", 5) == 0)
        on_node(s, line + 5, len - 5);
    else if (strncmp(line, "OK ", 3) == 0)
        on_named(s);
    else if (strncmp(line, "MSG ", 4) == 0)
        on_msg(s, line + 4);
    else if (strcmp(line, "BYE drain") == 0)
        s->bye = 1;
    else
        C.errs++; /* ERR, or something we never asked for */
}

/* Splits what was read into lines; false on a line too long. */
static bool
feed(struct slot *s, const char *data, size_t len)
{
    for (size_t k = 0; k < len; k++) {
        if (data[k] == '\n') {
            on_line(s, s->in, s->inlen);
            s->inlen = 0;
        } else if (s->inlen == IN_MAX - 1) {
            return false;
        } else {
            s->in[s->inlen++] = data[k];
        }
    }
    return true;
}

static void
readable(uint32_t i)
{
    struct slot *s = &slots[i];
    char buf[4096];

    for (;;) {
        ssize_t n = read(s->fd, buf, sizeof(buf));

        if (n > 0 && feed(s, buf, (size_t)n))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n > 0)
            C.errs++;
        /* Closed before it was greeted: refused (over max_conns). */
        drop(i, n > 0 || s->node < 0);
        return;
    }
}

/* ---- the loop -----------------------------------------------------------*/

static void
on_event(const struct epoll_event *ev)
{
    uint32_t i = ev->data.u32;
    struct slot *s = &slots[i];

    if (s->state == S_CONNECTING)
        connected(i);
    else if (s->state == S_OPEN)
        readable(i);
}

/* Connects what is due, within the rate and the in-flight bound. */
static void
connect_due(double *tokens)
{
    uint64_t now = mono_ms();

    while (heap_len > 0 && slots[heap[0]].due_ms <= now && *tokens >= 1 &&
           C.connecting < (uint64_t)O.inflight) {
        *tokens -= 1;
        if (connect_slot(heap_pop()) != 0)
            return; /* out of descriptors: try again later */
    }
}

/* Connects that hang (SYNs dropped by a full backlog) count as failed. */
static void
sweep_timeouts(void)
{
    uint64_t now = mono_ms();

    for (uint32_t i = 0; i < (uint32_t)O.conns; i++)
        if (slots[i].state == S_CONNECTING &&
            now - slots[i].due_ms > (uint64_t)O.connect_timeout_ms) {
            C.timeouts++;
            drop(i, true);
        }
}

static void
list_nodes(FILE *f, bool dropped)
{
    for (int k = 0; k < nnodes; k++)
        fprintf(f, "%s%s:%u", k == 0 ? "" : ",", nodes[k].name,
                dropped ? nodes[k].dropped : nodes[k].open);
    if (nnodes == 0)
        fprintf(f, "-");
}

static void
print_status(FILE *f)
{
    fprintf(f,
            "STATUS id=%s target=%d open=%llu named=%llu connecting=%llu "
            "waiting=%u connects=%llu connected=%llu reconnects=%llu "
            "drops=%llu drain_drops=%llu failed=%llu timeouts=%llu msgs=%llu "
            "dups=%llu errs=%llu full_at_ms=%llu nodes=",
            O.id, O.conns, (unsigned long long)C.open,
            (unsigned long long)C.named, (unsigned long long)C.connecting,
            heap_len, (unsigned long long)C.connects,
            (unsigned long long)C.connected, (unsigned long long)C.reconnects,
            (unsigned long long)C.drops, (unsigned long long)C.drain_drops,
            (unsigned long long)C.failed, (unsigned long long)C.timeouts,
            (unsigned long long)C.msgs, (unsigned long long)C.dups,
            (unsigned long long)C.errs, (unsigned long long)full_at_ms);
    list_nodes(f, false);
    fprintf(f, " dropped=");
    list_nodes(f, true);
    fprintf(f, "\n");
}

/* Writes path atomically (a reader never sees half a file). */
static void
write_file(const char *path, void (*fill)(FILE *))
{
    char tmp[4096];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL)
        return;
    fill(f);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static void
fill_report(FILE *f)
{
    print_status(f);
    for (uint32_t i = 0; i < (uint32_t)O.conns; i++) {
        const struct slot *s = &slots[i];

        if (s->named && s->node >= 0)
            fprintf(f, "NAME %s.%u %s\n", O.id, i, nodes[s->node].name);
        if (s->got != 0)
            fprintf(f, "RCV %s.%u %llu %u %u\n", O.id, i,
                    (unsigned long long)s->got_id, s->got, s->lat_us);
    }
}

static void
on_signal(int sig)
{
    if (sig == SIGUSR1)
        want_report = 1;
    else
        want_stop = 1;
}

static void
install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int
raise_fd_limit(int need)
{
    struct rlimit rl;

    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((rlim_t)need > rl.rlim_cur) {
        fprintf(stderr,
                "fleet_client: %d connections need %d descriptors, the limit "
                "is %llu: run more client processes\n",
                O.conns, need, (unsigned long long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

static int
hold_setup(void)
{
    struct in_addr a;
    static char idbuf[32];

    if (O.id == NULL) {
        snprintf(idbuf, sizeof(idbuf), "c%d", (int)getpid());
        O.id = idbuf;
    }
    if (raise_fd_limit(O.conns + 32) != 0 || parse_ip(O.host, &a) != 0 ||
        parse_ip(O.src, &src0) != 0)
        return -1;
    dst = sockaddr_of(a, O.port);
    slots = calloc((size_t)O.conns, sizeof(*slots));
    heap = calloc((size_t)O.conns, sizeof(*heap));
    if (slots == NULL || heap == NULL || (epfd = epoll_create1(0)) < 0)
        return -1;
    for (uint32_t i = 0; i < (uint32_t)O.conns; i++) {
        slots[i].fd = -1;
        slots[i].node = -1;
        slots[i].due_ms = 0;
        heap_push(i);
    }
    return 0;
}

static void
write_status(FILE *f)
{
    print_status(f);
}

static void
hold_tick(uint64_t *next_status, uint64_t *next_sweep)
{
    uint64_t now = mono_ms();

    if (O.status != NULL && now >= *next_status) {
        write_file(O.status, write_status);
        *next_status = now + (uint64_t)O.status_ms;
    }
    if (now >= *next_sweep) {
        sweep_timeouts();
        *next_sweep = now + 1000;
    }
    if (want_report && O.report != NULL) {
        want_report = 0;
        write_file(O.report, fill_report);
    }
}

/* How long the loop may sleep: until the next connect is due (and a
 * token is there for it), 50 ms at most. */
static int
wait_ms(double tokens)
{
    uint64_t now = mono_ms(), due;
    int ms;

    if (heap_len == 0 || C.connecting >= (uint64_t)O.inflight)
        return 50;
    due = slots[heap[0]].due_ms;
    ms = due > now ? (int)(due - now) : 0;
    if (tokens < 1) {
        int t = (int)((1 - tokens) * 1000.0 / O.rate) + 1;
        ms = ms > t ? ms : t;
    }
    return ms < 50 ? ms : 50;
}

static int
hold_mode(void)
{
    struct epoll_event ev[EVENTS];
    uint64_t next_status = 0, next_sweep = 0, last = mono_ms();
    double tokens = 0;

    if (hold_setup() != 0)
        return 1;
    install_signals();
    while (!want_stop) {
        uint64_t now = mono_ms();
        int n;

        tokens += (double)(now - last) * O.rate / 1000.0;
        if (tokens > O.rate / 10.0 + 1)
            tokens = O.rate / 10.0 + 1; /* bursts of 100 ms at most */
        last = now;
        connect_due(&tokens);
        n = epoll_wait(epfd, ev, EVENTS, wait_ms(tokens));
        for (int k = 0; k < n; k++)
            on_event(&ev[k]);
        hold_tick(&next_status, &next_sweep);
    }
    if (O.status != NULL)
        write_file(O.status, write_status);
    print_status(stdout);
    return 0;
}

/* ======================================================================== */
/* Send mode                                                                */

struct target {
    char name[64];
    int node; /* index in nodes[] */
    unsigned long long id;
};

struct sender {
    int fd[NODES_MAX]; /* a connection per node, -1 until found */
    struct target *t;
    size_t nt;
    unsigned long long ok, noname, dead;
};

static int
read_targets(struct sender *s, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256], name[64], node[NODE_NAME];
    size_t cap = 0;

    if (f == NULL) {
        fprintf(stderr, "fleet_client: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long long id;
        if (sscanf(line, "%63s %31s %llu", name, node, &id) != 3)
            continue;
        if (s->nt == cap && (s->t = realloc(s->t, (cap = cap * 2 + 64) *
                                                      sizeof(*s->t))) == NULL)
            return -1;
        snprintf(s->t[s->nt].name, sizeof(s->t[s->nt].name), "%s", name);
        s->t[s->nt].node = node_index(node, strlen(node));
        s->t[s->nt++].id = id;
    }
    fclose(f);
    return 0;
}

/* Reads one line (blocking, 10 s at most) into buf. */
static int
read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;

    while (n + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1 || read(fd, buf + n, 1) != 1)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return (int)n;
}

/* A blocking connection and the node that greeted it. */
static int
dial_node(int *node)
{
    struct in_addr a;
    struct sockaddr_in sa;
    char line[128];
    int fd;

    if (parse_ip(O.host, &a) != 0)
        return -1;
    sa = sockaddr_of(a, O.port);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        read_line(fd, line, sizeof(line)) < 5 || strncmp(line, "NODE ", 5)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *node = node_index(line + 5, strlen(line + 5));
    return fd;
}

static bool
have_all(const struct sender *s)
{
    for (size_t k = 0; k < s->nt; k++)
        if (s->fd[O.via_one ? 0 : s->t[k].node] < 0)
            return false;
    return true;
}

/* Dials until every node named by a target has a connection. */
static int
find_nodes(struct sender *s)
{
    for (int k = 0; k < NODES_MAX; k++)
        s->fd[k] = -1;
    for (int tries = 0; tries < O.tries && !have_all(s); tries++) {
        int node = -1, fd = dial_node(&node);

        if (fd >= 0 && O.via_one && s->fd[0] < 0)
            s->fd[0] = fd;
        else if (fd >= 0 && !O.via_one && node >= 0 && s->fd[node] < 0)
            s->fd[node] = fd;
        else if (fd >= 0)
            close(fd);
    }
    if (have_all(s))
        return 0;
    fprintf(stderr,
            "fleet_client: no connection to some node after %d "
            "tries\n",
            O.tries);
    return -1;
}

static int
count_ack(struct sender *s, int fd)
{
    char line[128];

    if (read_line(fd, line, sizeof(line)) < 0)
        return -1;
    if (strncmp(line, "ACK ", 4) != 0)
        return 0; /* not an answer (e.g. ERR): read on */
    if (strstr(line, " ok") != NULL)
        s->ok++;
    else if (strstr(line, " noname") != NULL)
        s->noname++;
    else
        s->dead++;
    return 1;
}

/* Sends the targets of one connection, at most `window` unanswered. */
static int
send_via(struct sender *s, int fd, int node)
{
    size_t pending = 0;
    char line[160];

    for (size_t k = 0; k < s->nt; k++) {
        if (!O.via_one && s->t[k].node != node)
            continue;
        int n =
            snprintf(line, sizeof(line), "SEND %s %llu %llu\n", s->t[k].name,
                     s->t[k].id, (unsigned long long)clock_ns(CLOCK_MONOTONIC));
        if (write(fd, line, (size_t)n) != n)
            return -1;
        for (++pending; pending >= (size_t)O.window;) {
            int r = count_ack(s, fd);
            if (r < 0)
                return -1;
            pending -= (size_t)r;
        }
    }
    while (pending > 0) {
        int r = count_ack(s, fd);
        if (r < 0)
            return -1;
        pending -= (size_t)r;
    }
    return 0;
}

static int
send_mode(void)
{
    static struct sender s;
    uint64_t t0;
    int rc = 0;

    if (read_targets(&s, O.send) != 0 || find_nodes(&s) != 0)
        return 1;
    t0 = mono_ms();
    for (int k = 0; k < (O.via_one ? 1 : nnodes) && rc == 0; k++)
        if (s.fd[k] >= 0)
            rc = send_via(&s, s.fd[k], k);
    printf("RESULT send.targets %zu\nRESULT send.ok %llu\nRESULT send.noname "
           "%llu\nRESULT send.dead %llu\nRESULT send.ms %llu\n",
           s.nt, s.ok, s.noname, s.dead, (unsigned long long)(mono_ms() - t0));
    for (int k = 0; k < NODES_MAX; k++)
        if (s.fd[k] >= 0)
            close(s.fd[k]);
    return rc == 0 && s.ok == s.nt ? 0 : 1;
}

int
main(int argc, char **argv)
{
    parse_opts(argc, argv);
    srand((unsigned)(getpid() ^ (int)mono_ms()));
    return O.send != NULL ? send_mode() : hold_mode();
}
