/*
 * The supervision tree the observer's tests look at: a root one_for_one
 * supervisor "app_sup" with workers "cache" and "crashy" (CRASH makes a
 * worker crash) and a nested rest_for_one supervisor "pool" (registered
 * as pool_sup) with workers "w1" and "w2". Include it after common.h.
 */
#ifndef TROUPE_TESTS_OBSERVER_TREE_H
#define TROUPE_TESTS_OBSERVER_TREE_H

#include <string.h>

#include "troupe/sup.h"

#define CRASH 0x7201 /* a message that makes a worker crash */

static inline int worker_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	*state = NULL;
	return TR_OK;
}

static inline int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	return m->type == CRASH ? 42 : 0; /* > 0: a crash with that reason */
}

static const tr_behaviour worker = {
    "ui.worker", worker_init, worker_handle, NULL};

/* The nested supervisor's children and arguments: they must outlive the
 * tree (tr_sup_behaviour borrows them). */
static tr_child_spec pool_specs[2];
static tr_sup_args pool_args;

static inline void obs_tree_start(tr_runtime *rt, tr_pid *root)
{
	tr_child_spec_init(&pool_specs[0], "w1", &worker, NULL);
	tr_child_spec_init(&pool_specs[1], "w2", &worker, NULL);
	memset(&pool_args, 0, sizeof(pool_args));
	pool_args.specs = pool_specs;
	pool_args.nspecs = 2;
	tr_sup_flags_init(&pool_args.flags);
	pool_args.flags.strategy = TR_SUP_REST_FOR_ONE;
	pool_args.flags.intensity = 5;

	tr_child_spec specs[3];
	tr_child_spec_init(&specs[0], "cache", &worker, NULL);
	tr_child_spec_init(&specs[1], "crashy", &worker, NULL);
	tr_child_spec_init(&specs[2], "pool", &tr_sup_behaviour, &pool_args);
	specs[2].type = TR_CHILD_SUPERVISOR;
	specs[2].shutdown_ms = TR_SHUTDOWN_INFINITY;
	specs[2].name = "pool_sup";
	tr_sup_flags flags;
	tr_sup_flags_init(&flags);
	flags.strategy = TR_SUP_ONE_FOR_ONE;
	flags.intensity = 10;
	flags.period_ms = 10000;
	assert_rc(tr_sup_start(root, rt, &flags, specs, 3, NULL), TR_OK);
	assert_rc(tr_register(rt, "app_sup", *root), TR_OK);
}

/* The pid of child `id` of the root supervisor. */
static inline tr_pid obs_child_pid(tr_runtime *rt, tr_pid root, const char *id)
{
	tr_child_info info[4];
	tr_child_info_init(&info[0]);
	size_t n = 0;
	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, root, 10000), TR_OK);
	for (size_t i = 0; i < n && i < 4; i++)
		if (strcmp(info[i].id, id) == 0)
			return info[i].pid;
	fail_msg("no child %s", id);
	return TR_PID_NONE;
}

#endif /* TROUPE_TESTS_OBSERVER_TREE_H */
