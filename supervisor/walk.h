/*
 * supervisor/walk.h - an asynchronous walk of a supervision tree, for the
 * actors that show one (the console's `tree`, the cluster's service actor
 * answering another node's console): the root is asked for its children
 * with TP_SUP_WHICH_CHILDREN, then every child supervisor, in parallel;
 * the walker never waits on a supervisor. Nodes are kept in one array in
 * which each supervisor's children form one block (first, n; total counts
 * those not listed). Bounded: `show` children listed per supervisor,
 * `max_nodes` in all, `max_depth` levels, `ask_ms` for each answer.
 *
 * Used by one actor at a time, from its callbacks (not thread-safe).
 */
#ifndef TP_SUPERVISOR_WALK_H
#define TP_SUPERVISOR_WALK_H

#include <stdbool.h>
#include <stdint.h>
#include <troupe/request.h>
#include <troupe/supervisor.h>

/** One node of the tree: a child as its supervisor reported it. */
struct tp__tree_node {
    tp_child_info ci;
    uint64_t ref; /* outstanding WHICH_CHILDREN, 0 = none */
    uint32_t first, n, total;
    int depth;
    bool asked, failed;
};

struct tp__tree_walk {
    struct tp__tree_node *nodes; /* nodes[0] is the root */
    uint32_t n, cap, outstanding;
    uint32_t max_nodes, show, ask_ms;
    int max_depth;
};

/** Sets the bounds; nothing allocated yet. */
void tp__tree_walk_init(struct tp__tree_walk *w, uint32_t max_nodes,
                        uint32_t show, int max_depth, uint32_t ask_ms);

/**
 * Adds the root (a copy of *root) and asks it, if it is a running
 * supervisor. Returns 0 or -ENOMEM. The walk is complete when
 * w->outstanding is 0 (at once, when the root could not be asked).
 */
int tp__tree_walk_start(tp_ctx *ctx, struct tp__tree_walk *w,
                        const tp_child_info *root);

/**
 * If m (a reply, timeout or noproc) answers one of the walk's requests,
 * records it, asks the child supervisors it lists and returns true;
 * false when m is not the walk's.
 */
bool tp__tree_walk_answer(tp_ctx *ctx, struct tp__tree_walk *w,
                          const tp_msg *m);

/** Forgets outstanding requests and frees the nodes; w is zeroed. */
void tp__tree_walk_free(tp_ctx *ctx, struct tp__tree_walk *w);

#endif /* TP_SUPERVISOR_WALK_H */
