/*
 * supervisor/root.c - the runtime's root supervisor and its stop hook.
 *
 * The root is an ordinary one_for_one supervisor spawned on first use. Its
 * stop hook runs in tp_runtime_stop() (on the stopping thread, before the
 * phase that kills whatever is left): it asks the root to shut down, which
 * stops the tree from the top, each supervisor stopping its children in
 * reverse start order within their shutdown times, and waits until the
 * root is gone or the stop deadline passes.
 */
#include "runtime/runtime_int.h"
#include "sup_int.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

struct root {
    tp_pid pid;
    bool stopped; /* the stop hook ran: no new root */
    struct tp__stop_hook hook;
};

/* Guards every runtime's root slot (created once, rarely read). */
static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;

static const tp_sup_spec root_spec = {
    .strategy = TP_ONE_FOR_ONE,
    .intensity = 10,
    .period_ms = 10000,
};

static bool
alive(tp_runtime *rt, tp_pid pid)
{
    tp_actor_info info;

    return pid != TP_PID_NONE && tp_actor_peek(rt, pid, &info) == 0;
}

static void
pause_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};

    nanosleep(&ts, NULL);
}

static void
root_stop(struct tp_runtime *rt, void *arg, uint64_t deadline_ns)
{
    tp_exit_reason why = {TP_EXIT_SHUTDOWN, 0, "runtime stopping"};
    struct root *r = arg;
    unsigned nap = 1;
    tp_pid pid;

    pthread_mutex_lock(&root_lock);
    r->stopped = true;
    pid = r->pid;
    pthread_mutex_unlock(&root_lock);
    if (pid == TP_PID_NONE || tp_runtime_exit_pid(rt, pid, &why) != 0)
        return;
    /* Outside the runtime there is no monitor to wait on: poll, backing
     * off to 10 ms, bounded by the deadline. */
    while (alive(rt, pid) && tp_now_ns() < deadline_ns) {
        pause_ms(nap);
        nap = nap < 10 ? nap + 1 : 10;
    }
    if (alive(rt, pid))
        tp_log(TP_LOG_WARN, "root supervisor: tree not down by the deadline");
}

static void
root_free(struct tp_runtime *rt, void *p)
{
    (void)rt;
    tp__free(p);
}

/* The root slot of rt, created on first use (root_lock held). */
static struct root *
root_of(tp_runtime *rt)
{
    struct root *r = rt->ext[TP__EXT_SUPERVISOR];

    if (r != NULL)
        return r;
    if ((r = tp__calloc(1, sizeof(*r))) == NULL)
        return NULL;
    r->hook.phase = TP__STOP_SUPERVISORS;
    r->hook.fn = root_stop;
    r->hook.arg = r;
    rt->ext[TP__EXT_SUPERVISOR] = r;
    rt->ext_free[TP__EXT_SUPERVISOR] = root_free;
    tp__rt_add_stop_hook(rt, &r->hook);
    return r;
}

tp_pid
tp_runtime_root_supervisor(tp_runtime *rt)
{
    tp_pid pid = TP_PID_NONE;
    struct root *r;

    if (rt == NULL)
        return TP_PID_NONE;
    pthread_mutex_lock(&root_lock);
    r = root_of(rt);
    if (r != NULL && !r->stopped) {
        /* A root that ended (intensity reached) is replaced. */
        if (!alive(rt, r->pid) &&
            tp_runtime_spawn(rt, &tp_supervisor_behaviour, (void *)&root_spec,
                             NULL, &r->pid) != 0)
            r->pid = TP_PID_NONE;
        pid = r->pid;
    }
    pthread_mutex_unlock(&root_lock);
    return pid;
}

int
tp_runtime_supervisor_start(tp_runtime *rt, const char *id,
                            const tp_sup_spec *spec, tp_pid *out)
{
    tp_child_spec c;
    tp_pid root;

    if (rt == NULL || id == NULL || tp__sup_spec_check(spec) != 0)
        return -EINVAL;
    root = tp_runtime_root_supervisor(rt);
    if (root == TP_PID_NONE)
        return atomic_load(&rt->stopping) ? -ESHUTDOWN : -ENOMEM;
    tp_child_spec_init(&c, id, &tp_supervisor_behaviour, (void *)spec);
    return tp_supervisor_start_child(rt, root, &c, NULL, out, 0);
}
