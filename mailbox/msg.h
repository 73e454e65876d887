/*
 * mailbox/msg.h - messages and blobs as the runtime stores them.
 *
 * A message is one allocation: a 64-byte header and the payload copied in
 * after it (Erlang's copy semantics), or a header that holds a reference to
 * an immutable refcounted blob. The mailbox layer knows nothing of threads:
 * its memory comes from an allocator hook that the runtime fills with
 * per-thread pools.
 */
#ifndef TP_MAILBOX_MSG_H
#define TP_MAILBOX_MSG_H

#include "mpsc.h"

#include <stdatomic.h>
#include <troupe/actor.h>

/* Internal signal kinds carried in tp__msg.sig (0 = ordinary message). */
enum tp__sig {
    TP__SIG_NONE = 0,
    TP__SIG_EXIT,      /* exit signal: payload tp__exit_payload */
    TP__SIG_LINK,      /* from wants a link */
    TP__SIG_UNLINK,    /* from dropped its link */
    TP__SIG_MONITOR,   /* from monitors me with ref */
    TP__SIG_DEMONITOR, /* from dropped monitor ref */
    TP__SIG_DOWN,      /* a monitor of mine fired: payload tp__exit_payload */
    TP__SIG_INFO,      /* from asks for tp_actor_info, reply with ref */
    TP__SIG_CALL       /* run payload's function in the actor (internal) */
};

/* Message flags. */
#define TP__MSG_LINKED  0x1u /* EXIT came through a link */
#define TP__MSG_FORCED  0x2u /* bypasses the mailbox bound */
#define TP__MSG_FIRED   0x4u /* DOWN already validated in the system lane */
#define TP__MSG_COUNTED 0x8u /* its bytes count against a byte bound */

struct tp__msg {
    struct tp__node node; /* intrusive queue link: must stay first */
    tp_msg m;             /* what handlers see */
    struct tp_blob *blob; /* payload owner when not inline */
    uint32_t cap;         /* bytes allocated (header included) */
    uint8_t klass;        /* allocator size class */
    uint8_t sig;          /* enum tp__sig */
    uint16_t flags;
};

#define TP__MSG_HDR 64u

_Static_assert(sizeof(struct tp__msg) <= TP__MSG_HDR, "message header");

/* Payload of EXIT / DOWN signals and of TP_MSG_EXIT / TP_MSG_DOWN. */
struct tp__exit_payload {
    uint64_t pid; /* who exited */
    uint64_t ref; /* monitor reference (DOWN), else 0 */
    int32_t kind; /* tp_exit_kind */
    int32_t code;
    uint32_t text_len; /* bytes of text, without the NUL */
    uint32_t pad;
    char text[]; /* NUL-terminated */
};

struct tp_blob {
    atomic_uint refs;
    atomic_uint shared; /* set once sent: no more mutation */
    size_t len;
    _Alignas(8) unsigned char data[];
};

/* Allocator hook (filled by the runtime with its per-thread pools). */
struct tp__msg_allocator {
    /* Returns memory for at least size bytes and its size class. */
    void *(*alloc)(size_t size, uint8_t *klass, uint32_t *cap);
    void (*free)(void *p, uint8_t klass);
};

void tp__msg_set_allocator(const struct tp__msg_allocator *a);

/* A message with room for len inline payload bytes (data not copied).
 * Returns NULL on ENOMEM. */
struct tp__msg *tp__msg_alloc(size_t len);

/* A message whose payload is a copy of data[0..len). */
struct tp__msg *tp__msg_copy(uint32_t type, const void *data, size_t len);

/* A message referencing blob b (takes a new reference). */
struct tp__msg *tp__msg_with_blob(uint32_t type, struct tp_blob *b);

/* Frees a message (and its blob reference). */
void tp__msg_free(struct tp__msg *m);

/* Writable inline payload. */
static inline void *
tp__msg_payload(struct tp__msg *m)
{
    return (char *)m + TP__MSG_HDR;
}

static inline struct tp__msg *
tp__msg_of(const tp_msg *pub)
{
    return (struct tp__msg *)((char *)pub - offsetof(struct tp__msg, m));
}

/* An EXIT/DOWN message: text may be NULL. */
struct tp__msg *tp__msg_exit(uint8_t sig, uint32_t type, tp_pid pid,
                             uint64_t ref, const tp_exit_reason *reason);

/* Decodes an exit payload into reason (text points into the message). */
int tp__exit_payload_decode(const tp_msg *m, tp_pid *pid, uint64_t *ref,
                            tp_exit_reason *reason);

#endif /* TP_MAILBOX_MSG_H */
