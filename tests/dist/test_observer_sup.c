/*
 * The observer's supervision trees and a supervisor's children as an
 * operator acts on them, over real HTTP against two running nodes (alpha
 * with a tree, beta beside it):
 *
 * - GET /api/supervisors lists alpha's supervisors with their strategy,
 *   intensity, children (types, restart types, pids), the nested one with
 *   alpha's root as its parent; a crash of a child shows as a restart of
 *   it (its count, the reason, the old and the new pid), newest first;
 *   ?node=beta answers with beta's (none);
 * - POST .../child/ID/restart of a running child terminates it and starts
 *   it again (a new pid); terminate stops it (no pid), restart starts it;
 *   an unknown child is 404, an unknown supervisor 404; GET on an action
 *   is 405 and an action without the token 401; each is in the log.
 */
#define _GNU_SOURCE
#include "common.h"

#include "observer_ops.h"

static json_t *sup_by_pid(json_t *j, tr_pid p)
{
	char t[48];
	pid_text(t, sizeof(t), p);
	json_t *s;
	size_t i;
	json_array_foreach(json_object_get(j, "supervisors"), i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "pid")), t) ==
		    0)
			return s;
	}
	return NULL;
}

static json_t *child_by_id(json_t *sup, const char *id)
{
	json_t *c;
	size_t i;
	json_array_foreach(json_object_get(sup, "children"), i, c)
	{
		if (strcmp(json_string_value(json_object_get(c, "id")), id) ==
		    0)
			return c;
	}
	return NULL;
}
static void test_supervisors(void **state)
{
	struct env *e = *state;
	json_t *j = get_ok(e, "/api/supervisors");
	assert_string_equal(
	    json_string_value(json_object_get(j, "node")), "alpha");
	assert_int_equal(json_array_size(json_object_get(j, "supervisors")), 2);
	json_t *root = sup_by_pid(j, e->root);
	assert_non_null(root);
	assert_string_equal(
	    json_string_value(json_object_get(root, "name")), "app_sup");
	assert_string_equal(
	    json_string_value(json_object_get(root, "strategy")),
	    "one_for_one");
	assert_int_equal(
	    json_integer_value(json_object_get(root, "intensity")), 10);
	assert_int_equal(
	    json_integer_value(json_object_get(root, "period_ms")), 10000);
	assert_int_equal(
	    json_integer_value(json_object_get(root, "restarts")), 0);
	assert_int_equal(json_array_size(json_object_get(root, "children")), 3);
	json_t *pool = child_by_id(root, "pool");
	assert_string_equal(
	    json_string_value(json_object_get(pool, "type")), "supervisor");
	assert_string_equal(
	    json_string_value(json_object_get(pool, "restart")), "permanent");
	/* The nested supervisor: its own entry, alpha's root its parent. */
	tr_pid pp = obs_child_pid(e->p.rt, e->root, "pool");
	json_t *nested = sup_by_pid(j, pp);
	assert_non_null(nested);
	char rt[48];
	pid_text(rt, sizeof(rt), e->root);
	assert_string_equal(
	    json_string_value(json_object_get(nested, "parent")), rt);
	assert_string_equal(
	    json_string_value(json_object_get(nested, "strategy")),
	    "rest_for_one");
	assert_int_equal(
	    json_array_size(json_object_get(nested, "children")), 2);
	json_decref(j);

	/* A crash: a restart of crashy, with its reason and both pids. */
	tr_pid old = obs_child_pid(e->p.rt, e->root, "crashy");
	assert_rc(tr_post(e->p.rt, old, CRASH, NULL, 0), TR_OK);
	json_t *entry = NULL;
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		j = get_ok(e, "/api/supervisors");
		root = sup_by_pid(j, e->root);
		json_t *c = child_by_id(root, "crashy");
		if (json_integer_value(json_object_get(c, "restarts")) == 1 &&
		    json_is_string(json_object_get(c, "pid"))) {
			entry = json_incref(
			    json_array_get(json_object_get(root, "recent"), 0));
			assert_int_equal(json_integer_value(
			                     json_object_get(root, "restarts")),
			    1);
			json_decref(j);
			break;
		}
		json_decref(j);
		usleep(20 * 1000);
	}
	assert_non_null(entry);
	char ot[48];
	pid_text(ot, sizeof(ot), old);
	assert_string_equal(
	    json_string_value(json_object_get(entry, "id")), "crashy");
	assert_string_equal(
	    json_string_value(json_object_get(entry, "old")), ot);
	assert_true(json_is_string(json_object_get(entry, "new")));
	assert_int_equal(
	    json_integer_value(json_object_get(entry, "code")), 42);
	assert_true(json_integer_value(json_object_get(entry, "at_ms")) >
	            1700000000000LL);
	json_decref(entry);

	/* beta has no supervisor; asked through alpha. */
	j = get_ok(e, "/api/supervisors?node=beta");
	assert_string_equal(
	    json_string_value(json_object_get(j, "node")), "beta");
	assert_int_equal(json_array_size(json_object_get(j, "supervisors")), 0);
	json_decref(j);
}

static void child_action(struct env *e, const char *id, const char *what,
    int want_status, tr_pid *pid)
{
	char path[256], rt[48];
	pid_text(rt, sizeof(rt), e->root);
	snprintf(
	    path, sizeof(path), "/api/supervisor/%s/child/%s/%s", rt, id, what);
	int st;
	json_t *j = call(e, "POST", path, true, &st);
	assert_int_equal(st, want_status);
	assert_non_null(j);
	if (want_status == 200) {
		assert_true(json_is_true(json_object_get(j, "ok")));
		if (pid != NULL) {
			const char *t =
			    json_string_value(json_object_get(j, "pid"));
			assert_non_null(t);
			assert_int_equal(sscanf(t, "%u.%u.%u", &pid->node,
			                     &pid->slot, &pid->gen),
			    3);
		}
	} else {
		assert_non_null(json_object_get(j, "error"));
	}
	json_decref(j);
}

static void test_child_actions(void **state)
{
	struct env *e = *state;
	/* Restart of a running child: terminated, then started again. */
	tr_pid before = obs_child_pid(e->p.rt, e->root, "crashy"), after;
	child_action(e, "crashy", "restart", 200, &after);
	assert_false(tr_pid_eq(before, after));
	assert_false(tr_is_alive(e->p.rt, before));
	assert_true(
	    tr_pid_eq(obs_child_pid(e->p.rt, e->root, "crashy"), after));
	assert_true(logged("observer: restart child crashy of supervisor"));

	/* Terminate, then restart a stopped one. */
	tr_pid cache = obs_child_pid(e->p.rt, e->root, "cache");
	child_action(e, "cache", "terminate", 200, NULL);
	assert_false(tr_is_alive(e->p.rt, cache));
	assert_true(tr_pid_is_none(obs_child_pid(e->p.rt, e->root, "cache")));
	assert_true(logged("observer: terminate child cache of supervisor"));
	child_action(e, "cache", "restart", 200, &after);
	assert_true(tr_is_alive(e->p.rt, after));

	/* Errors. */
	child_action(e, "ghost", "restart", 404, NULL);
	int st;
	json_t *j = call(
	    e, "POST", "/api/supervisor/0.999.7/child/x/restart", true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
	j = call(e, "POST", "/api/supervisor/nonsense", true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
	char path[256], rt[48];
	pid_text(rt, sizeof(rt), e->root);
	snprintf(
	    path, sizeof(path), "/api/supervisor/%s/child/cache/terminate", rt);
	j = call(e, "GET", path, true, &st);
	assert_int_equal(st, 405);
	json_decref(j);
	j = call(e, "POST", path, false, &st);
	assert_int_equal(st, 401);
	json_decref(j);
	assert_true(
	    tr_is_alive(e->p.rt, obs_child_pid(e->p.rt, e->root, "cache")));
}
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_supervisors, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_child_actions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
