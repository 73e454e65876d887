/*
 * mailbox/msg.c - message and blob allocation.
 */
#include "msg.h"

#include "common/common.h"

#include <errno.h>
#include <string.h>

static void *
default_alloc(size_t size, uint8_t *klass, uint32_t *cap)
{
    *klass = 0;
    *cap = (uint32_t)size;
    return tp__malloc(size);
}

static void
default_free(void *p, uint8_t klass)
{
    (void)klass;
    tp__free(p);
}

static const struct tp__msg_allocator default_allocator = {default_alloc,
                                                           default_free};
static const struct tp__msg_allocator *allocator = &default_allocator;

void
tp__msg_set_allocator(const struct tp__msg_allocator *a)
{
    allocator = a != NULL ? a : &default_allocator;
}

struct tp__msg *
tp__msg_alloc(size_t len)
{
    uint8_t klass;
    uint32_t cap;
    struct tp__msg *m;

    if (len > (size_t)INT32_MAX)
        return NULL;
    m = allocator->alloc(TP__MSG_HDR + len, &klass, &cap);
    if (m == NULL)
        return NULL;
    m->m.from = TP_PID_NONE;
    m->m.to = TP_PID_NONE;
    m->m.ref = 0;
    m->m.type = 0;
    m->m.len = (uint32_t)len;
    m->m.data = len != 0 ? tp__msg_payload(m) : NULL;
    m->blob = NULL;
    m->cap = cap;
    m->klass = klass;
    m->sig = TP__SIG_NONE;
    m->flags = 0;
    return m;
}

struct tp__msg *
tp__msg_copy(uint32_t type, const void *data, size_t len)
{
    struct tp__msg *m = tp__msg_alloc(len);

    if (m == NULL)
        return NULL;
    m->m.type = type;
    if (len != 0)
        memcpy(tp__msg_payload(m), data, len);
    return m;
}

struct tp__msg *
tp__msg_with_blob(uint32_t type, struct tp_blob *b)
{
    struct tp__msg *m;

    if (b->len > (size_t)INT32_MAX)
        return NULL;
    m = tp__msg_alloc(0);
    if (m == NULL)
        return NULL;
    m->m.type = type;
    m->m.len = (uint32_t)b->len;
    m->m.data = b->len != 0 ? b->data : NULL;
    /* Once sent, a blob is immutable: relaxed is enough, the message
     * publication (release) orders it. */
    atomic_store_explicit(&b->shared, 1, memory_order_relaxed);
    m->blob = tp_blob_ref(b);
    return m;
}

void
tp__msg_free(struct tp__msg *m)
{
    if (m->blob != NULL)
        tp_blob_unref(m->blob);
    allocator->free(m, m->klass);
}

struct tp__msg *
tp__msg_exit(uint8_t sig, uint32_t type, tp_pid pid, uint64_t ref,
             const tp_exit_reason *reason)
{
    size_t tlen = reason->text != NULL ? strlen(reason->text) : 0;
    struct tp__msg *m;
    struct tp__exit_payload *p;

    if (tlen > 1024)
        tlen = 1024; /* reasons are for people: bound them */
    m = tp__msg_alloc(sizeof(*p) + tlen + 1);
    if (m == NULL)
        return NULL;
    m->m.type = type;
    m->sig = sig;
    p = tp__msg_payload(m);
    p->pid = pid;
    p->ref = ref;
    p->kind = (int32_t)reason->kind;
    p->code = reason->code;
    p->text_len = (uint32_t)tlen;
    p->pad = 0;
    if (tlen != 0)
        memcpy(p->text, reason->text, tlen);
    p->text[tlen] = '\0';
    return m;
}

int
tp__exit_payload_decode(const tp_msg *m, tp_pid *pid, uint64_t *ref,
                        tp_exit_reason *reason)
{
    const struct tp__exit_payload *p = m->data;

    if (m->len < sizeof(*p) + 1 || p == NULL ||
        sizeof(*p) + p->text_len + 1 != m->len)
        return -EINVAL;
    if (pid != NULL)
        *pid = p->pid;
    if (ref != NULL)
        *ref = p->ref;
    if (reason != NULL) {
        reason->kind = (tp_exit_kind)p->kind;
        reason->code = p->code;
        reason->text = p->text_len != 0 ? p->text : NULL;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Blobs                                                                  */

tp_blob *
tp_blob_new(const void *data, size_t len)
{
    struct tp_blob *b;

    if (len > (size_t)INT32_MAX)
        return NULL;
    b = tp__malloc(sizeof(*b) + len);
    if (b == NULL)
        return NULL;
    atomic_init(&b->refs, 1);
    atomic_init(&b->shared, 0);
    b->len = len;
    if (data != NULL)
        memcpy(b->data, data, len);
    else
        memset(b->data, 0, len);
    return b;
}

const void *
tp_blob_data(const tp_blob *b)
{
    return b->data;
}

void *
tp_blob_mutable_data(tp_blob *b)
{
    if (atomic_load_explicit(&b->refs, memory_order_acquire) != 1 ||
        atomic_load_explicit(&b->shared, memory_order_relaxed) != 0)
        return NULL;
    return b->data;
}

size_t
tp_blob_len(const tp_blob *b)
{
    return b->len;
}

tp_blob *
tp_blob_ref(tp_blob *b)
{
    /* relaxed: taking a reference needs no ordering (as in shared_ptr). */
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
    return b;
}

void
tp_blob_unref(tp_blob *b)
{
    if (b == NULL)
        return;
    /* acq_rel: the last owner must see every other owner's reads done
     * before it frees the bytes. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
        tp__free(b);
}

tp_blob *
tp_msg_blob(const tp_msg *msg)
{
    return tp__msg_of(msg)->blob;
}
