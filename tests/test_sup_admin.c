/*
 * Supervisor administration tests, after stdlib's supervisor_SUITE: child
 * admin calls and their errors, which/count_children, validation of flags
 * and specs, simple_one_for_one with many dynamic children, significant
 * children with auto_shutdown, and requests while shutting down.
 */
#include "sup_common.h"

#define LONG_PERIOD 3600000u

static void test_child_admin(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_child_spec sb = tt_wspec("b", &b);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_info info[4] = {TR_STRUCT_INIT(tr_child_info)};
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_pid sup, pa, pb, pid;
	size_t n;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 1);
	pa = tt_child(rt, sup, "a");

	/* start_child: a new id starts, after the others. */
	assert_rc(tr_sup_start_child(&pb, rt, sup, &sb, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_is_alive(rt, pb));
	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 2);
	assert_string_equal(info[0].id, "a");
	assert_string_equal(info[1].id, "b");
	assert_true(tr_pid_eq(info[1].pid, pb));

	/* The id of a running child: already started, with its pid. */
	pid = TR_PID_NONE;
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[0], NULL, TT_WAIT_MS, NULL),
	    TR_EALREADY);
	assert_true(tr_pid_eq(pid, pa));

	/* Running: no restart, no delete. */
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "a", TT_WAIT_MS, NULL),
	    TR_ERUNNING);
	assert_rc(tr_sup_delete_child(rt, sup, "a", TT_WAIT_MS), TR_ERUNNING);

	/* Terminated: the spec stays (already present), and restarts with
	 * a new pid. */
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_false(tr_is_alive(rt, pa));
	assert_true(tr_pid_is_none(tt_child(rt, sup, "a")));
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 1);
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[0], NULL, TT_WAIT_MS, NULL),
	    TR_EEXIST);
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "a", TT_WAIT_MS, NULL), TR_OK);
	assert_false(tr_pid_eq(pid, pa));
	assert_true(tr_is_alive(rt, pid));
	assert_true(tr_pid_eq(tt_child(rt, sup, "a"), pid));

	/* Deleting a stopped child forgets it. */
	assert_rc(tr_sup_terminate_child(rt, sup, "b", TT_WAIT_MS), TR_OK);
	assert_rc(tr_sup_delete_child(rt, sup, "b", TT_WAIT_MS), TR_OK);
	assert_false(tt_has_child(rt, sup, "b"));
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 1);
	assert_int_equal(cnt.active, 1);
	assert_int_equal(cnt.workers, 1);

	/* Unknown ids. */
	assert_rc(tr_sup_delete_child(rt, sup, "b", TT_WAIT_MS), TR_ENOENT);
	assert_rc(tr_sup_terminate_child(rt, sup, "b", TT_WAIT_MS), TR_ENOENT);
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "b", TT_WAIT_MS, NULL),
	    TR_ENOENT);
	assert_rc(
	    tr_sup_terminate_child(rt, sup, "nobody", TT_WAIT_MS), TR_ENOENT);

	/* A pid that is not a child. */
	assert_rc(tr_sup_terminate_pid(rt, sup, w, TT_WAIT_MS), TR_ENOENT);
	assert_rc(tr_sup_terminate_pid(rt, sup, pb, TT_WAIT_MS), TR_ENOENT);
	assert_true(tr_is_alive(rt, w));
	/* Nor is a child's pid, but for simple_one_for_one: OTP looks a pid
	 * up among the ids of the other strategies, and answers not_found
	 * (the child lives on). */
	pid = tt_child(rt, sup, "a");
	assert_rc(tr_sup_terminate_pid(rt, sup, pid, TT_WAIT_MS), TR_ENOENT);
	assert_true(tr_is_alive(rt, pid));
	assert_true(tr_pid_eq(tt_child(rt, sup, "a"), pid));
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_false(tr_is_alive(rt, pid));
	assert_true(tr_pid_is_none(tt_child(rt, sup, "a")));

	tt_assert_events(&evlog, 0, "Ia Ib Ta:s Ia Tb:s Ta:s");
	tt_sup_stop(rt, port, w, sup);

	/* A supervisor that is gone. */
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_ENOPROC);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sb, NULL, TT_WAIT_MS, NULL),
	    TR_ENOPROC);
	assert_rc(tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS),
	    TR_ENOPROC);
	tt_pstop(fx);
}

static void test_start_child_fails(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {
	    .id = 'b', .log = &evlog, .fail_from = 1, .fail_reason = 55};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_wspec("b", &b), tt_wspec("c", &c)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_counts before = TR_STRUCT_INIT(tr_child_counts),
	                after = TR_STRUCT_INIT(tr_child_counts);
	tr_runtime_stats st0 = TR_STRUCT_INIT(tr_runtime_stats),
	                 st1 = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid sup, pid;
	int reason = 0;

	reset_log();
	tt_quiesce(rt);
	st0 = tt_stats(rt);

	/* A child fails in tr_sup_start: the ones started are stopped, and
	 * no supervisor is left. */
	sup = TR_PID_NONE;
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 3, &reason), TR_EINIT);
	assert_int_equal(reason, 55);
	assert_true(TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS));
	tt_assert_events(&evlog, 0, "Ia Fb Ta:s");
	assert_int_equal(atomic_load(&c.starts), 0);
	tt_quiesce(rt);
	st1 = tt_stats(rt);
	assert_int_equal(st1.actors_alive, st0.actors_alive);

	/* start_child fails: TR_EINIT with the reason, and no spec kept. */
	sup = tt_sup_start(rt, &f, specs, 1);
	before = tt_counts(rt, sup);
	reason = 0;
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[1], NULL, TT_WAIT_MS, &reason),
	    TR_EINIT);
	assert_int_equal(reason, 55);
	after = tt_counts(rt, sup);
	assert_memory_equal(&before, &after, sizeof(before));
	assert_false(tt_has_child(rt, sup, "b"));
	/* So the id is free: with a good spec it starts. */
	specs[1] = tt_wspec("b", &c);
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[1], NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_is_alive(rt, pid));

	/* restart_child whose init fails: TR_EINIT, and the child stays
	 * stopped. */
	b.fail_from = 0;
	specs[1] = tt_wspec("b2", &b);
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[1], NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_rc(tr_sup_terminate_child(rt, sup, "b2", TT_WAIT_MS), TR_OK);
	b.fail_from = 1;
	reason = 0;
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "b2", TT_WAIT_MS, &reason),
	    TR_EINIT);
	assert_int_equal(reason, 55);
	assert_true(tr_pid_is_none(tt_child(rt, sup, "b2")));

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* OTP stops the children a failed start had started with their shutdown
 * spec: a child that ignores the shutdown signal is killed after its
 * timeout, so nothing is left running. (The worker configs are static so
 * that a child left running cannot outlive its config when a test fails.) */
static void test_start_fails_stops_stubborn_child(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog, .trap = true};
	static struct tt_wcfg b = {
	    .id = 'b', .log = &evlog, .fail_from = 1, .fail_reason = 56};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup = TR_PID_NONE;
	int reason = 0;

	specs[0].shutdown_ms = 100;
	reset_log();
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 2, &reason), TR_EINIT);
	assert_int_equal(reason, 56);
	if (!TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS)) {
		char buf[256];

		fail_msg("child a still runs after the failed start (events: "
		         "%s)",
		    tt_ev_render(&evlog, 0, buf, sizeof(buf)));
	}
	assert_int_equal(atomic_load(&a.last_reason), TR_REASON_KILLED);
	tt_pstop(fx);
}

/* A nested supervisor with bad arguments fails its init with
 * TR_SUP_REASON_BADARGS, which fails the outer start. */
static void test_nested_bad_args(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	tr_child_spec inner_specs[] = {tt_wspec("x", &a)};
	tr_sup_args inner = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 0), /* period 0 */
	    .specs = inner_specs,
	    .nspecs = 1,
	};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_supspec("inner", &inner)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup = TR_PID_NONE;
	int reason = 0;

	reset_log();
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 2, &reason), TR_EINIT);
	assert_int_equal(reason, TR_SUP_REASON_BADARGS);
	assert_true(TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS));
	assert_int_equal(atomic_load(&a.starts), 1);
	tt_pstop(fx);
}

static void test_which_and_count(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	static struct tt_wcfg x = {.id = 'x'};
	tr_child_spec inner_specs[] = {tt_wspec("x", &x)};
	tr_sup_args inner = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000),
	    .specs = inner_specs,
	    .nspecs = 1,
	};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_supspec("inner", &inner), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_info info[3] = {TR_STRUCT_INIT(tr_child_info)};
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	size_t n = 0;
	tr_pid sup;

	sup = tt_sup_start(rt, &f, specs, 3);
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 3);
	assert_int_equal(cnt.active, 3);
	assert_int_equal(cnt.supervisors, 1);
	assert_int_equal(cnt.workers, 2);

	assert_rc(
	    tr_sup_which_children(info, 3, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 3);
	assert_int_equal(info[0].type, TR_CHILD_WORKER);
	assert_int_equal(info[1].type, TR_CHILD_SUPERVISOR);
	assert_string_equal(info[1].id, "inner");
	assert_int_equal(info[2].type, TR_CHILD_WORKER);
	assert_int_equal(tt_counts(rt, info[1].pid).workers, 1);

	/* A smaller buffer: the total still comes back. */
	memset(info, 0x5a, sizeof(info));
	info[0].struct_size = sizeof(info[0]); /* the stride */
	n = 0;
	assert_rc(
	    tr_sup_which_children(info, 1, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 3);
	assert_string_equal(info[0].id, "a");
	assert_int_equal((unsigned char)info[1].id[0], 0x5a);
	n = 0;
	assert_rc(
	    tr_sup_which_children(NULL, 0, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 3);

	/* A stopped child counts as a spec, not as active. */
	assert_rc(tr_sup_terminate_child(rt, sup, "inner", TT_WAIT_MS), TR_OK);
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 3);
	assert_int_equal(cnt.active, 2);
	assert_int_equal(cnt.supervisors, 1);
	assert_int_equal(atomic_load(&x.running), 0);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Validation                                                                */
/* ------------------------------------------------------------------------ */

static const tr_behaviour no_handle = {
    .name = "no_handle",
    .init = tt_worker_init,
};

static void test_validation(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	char longest[TR_NAME_MAX + 1], too_long[TR_NAME_MAX + 2];
	tr_child_spec good[2], bad[2];
	tr_sup_flags f, fbad;
	tr_runtime_stats st0 = TR_STRUCT_INIT(tr_runtime_stats),
	                 st1 = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid sup = TR_PID_NONE, pid;

	memset(longest, 'l', TR_NAME_MAX);
	longest[TR_NAME_MAX] = '\0';
	memset(too_long, 't', TR_NAME_MAX + 1);
	too_long[TR_NAME_MAX + 1] = '\0';
	good[0] = tt_wspec("a", &a);
	good[1] = tt_wspec(longest, &a);
	f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);

	tt_quiesce(rt);
	st0 = tt_stats(rt);

	/* Flags. */
	fbad = f;
	fbad.strategy = (tr_sup_strategy)99;
	assert_rc(tr_sup_start(&sup, rt, &fbad, good, 1, NULL), TR_EINVAL);
	fbad = f;
	fbad.period_ms = 0;
	assert_rc(tr_sup_start(&sup, rt, &fbad, good, 1, NULL), TR_EINVAL);
	fbad = f;
	fbad.auto_shutdown = (tr_auto_shutdown)7;
	assert_rc(tr_sup_start(&sup, rt, &fbad, good, 1, NULL), TR_EINVAL);
	assert_rc(tr_sup_start(&sup, rt, NULL, good, 1, NULL), TR_EINVAL);
	assert_rc(tr_sup_start(&sup, NULL, &f, good, 1, NULL), TR_EINVAL);
	assert_rc(tr_sup_start(&sup, rt, &f, NULL, 1, NULL), TR_EINVAL);

	/* Specs, each way a spec can be wrong. */
	bad[0] = good[0];
	bad[1] = good[0];
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("", &a);
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec(NULL, &a);
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec(too_long, &a);
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].start = NULL;
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].significant = true; /* and permanent */
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].restart = (tr_restart)9;
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].shutdown_ms = -5;
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].type = (tr_child_type)5;
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);
	bad[1] = tt_wspec("b", &a);
	bad[1].start = &no_handle;
	assert_rc(tr_sup_start(&sup, rt, &f, bad, 2, NULL), TR_EINVAL);

	/* simple_one_for_one takes exactly one spec. */
	fbad = f;
	fbad.strategy = TR_SUP_SIMPLE_ONE_FOR_ONE;
	assert_rc(tr_sup_start(&sup, rt, &fbad, good, 0, NULL), TR_EINVAL);
	assert_rc(tr_sup_start(&sup, rt, &fbad, good, 2, NULL), TR_EINVAL);

	/* Nothing was left behind, and no worker ran. */
	tt_quiesce(rt);
	st1 = tt_stats(rt);
	assert_int_equal(st1.actors_alive, st0.actors_alive);
	assert_int_equal(atomic_load(&a.starts), 0);

	/* The longest id is fine, and so is a supervisor with no child. */
	sup = tt_sup_start(rt, &f, good, 2);
	assert_true(tt_has_child(rt, sup, longest));
	/* start_child checks its spec the same way. */
	bad[1] = tt_wspec(too_long, &a);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &bad[1], NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	bad[1] = tt_wspec("c", &a);
	bad[1].significant = true;
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &bad[1], NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, NULL, NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	assert_int_equal(tt_counts(rt, sup).specs, 2);
	tt_sup_stop(rt, port, w, sup);

	sup = tt_sup_start(rt, &f, NULL, 0);
	assert_int_equal(tt_counts(rt, sup).specs, 0);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static int fn_count_from_actor(tr_ctx *ctx, void *arg)
{
	tr_child_counts c = TR_STRUCT_INIT(tr_child_counts);

	return tr_sup_count_children(
	    &c, tr_runtime_of(ctx), *(tr_pid *)arg, TT_WAIT_MS);
}

static void test_admin_from_actor_refused(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup = tt_sup_start(rt, &f, specs, 1);

	/* A blocking call from an actor would stall its scheduler. */
	assert_rc(tt_run(port, w, fn_count_from_actor, &sup), TR_EINVAL);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Supervisors started by actors                                             */
/* ------------------------------------------------------------------------ */

struct start_arg {
	const tr_sup_flags *flags;
	const tr_child_spec *specs;
	size_t n;
	bool link;
	tr_pid sup; /* out */
};

static int fn_sup_start(tr_ctx *ctx, void *arg)
{
	struct start_arg *a = arg;

	if (a->link)
		return tr_sup_start_link(
		    ctx, &a->sup, a->flags, a->specs, a->n, NULL);
	return tr_sup_start(
	    &a->sup, tr_runtime_of(ctx), a->flags, a->specs, a->n, NULL);
}

static void test_start_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 0, 5000);
	struct start_arg sa = {.flags = &f, .specs = specs, .n = 1};
	tr_pid p, sup;

	/* tr_sup_start from an actor: not linked; the actor's end does not
	 * reach the supervisor. */
	p = tt_probe_spawn(rt, port, false);
	assert_rc(tt_run(port, p, fn_sup_start, &sa), TR_OK);
	sup = sa.sup;
	tt_stop_probe(port, p, 9, NULL, true);
	tt_expect_term(port, p, 9);
	tt_quiesce(rt);
	assert_true(tr_is_alive(rt, sup));
	assert_int_equal(atomic_load(&a.running), 1);
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&a.running), 0);

	/* tr_sup_start_link: the parent's end takes the tree down, with the
	 * parent's reason. */
	sa.link = true;
	p = tt_probe_spawn(rt, port, false);
	assert_rc(tt_run(port, p, fn_sup_start, &sa), TR_OK);
	sup = sa.sup;
	(void)tt_monitor(port, w, sup);
	tt_stop_probe(port, p, 9, NULL, true);
	tt_expect_down(port, w, sup, 9);
	assert_int_equal(atomic_load(&a.running), 0);
	assert_int_equal(atomic_load(&a.last_reason), TR_REASON_SHUTDOWN);

	/* ...and the supervisor's end reaches the parent: intensity 0, so
	 * the first crash makes it give up. */
	p = tt_probe_spawn(rt, port, true);
	assert_rc(tt_run(port, p, fn_sup_start, &sa), TR_OK);
	sup = sa.sup;
	tt_wcrash(rt, tt_child(rt, sup, "a"), 7);
	tt_expect_exit(port, p, sup, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&a.running), 0);

	tt_quiesce(rt);
	tt_pstop(fx);
}

struct req_arg {
	tr_pid sup;
	uint32_t type;
	tr_sup_request req;
	uint64_t ref; /* out */
};

static int fn_sup_request(tr_ctx *ctx, void *arg)
{
	struct req_arg *a = arg;

	return tr_request(ctx, &a->ref, a->sup, a->type, &a->req,
	    sizeof(a->req), 4 * TT_WAIT_MS);
}

/* The next reply to a probe's request, as forwarded to the port. */
static tr_sup_reply *expect_reply(
    tr_port *port, tr_pid probe, uint64_t ref, struct tt_other *o)
{
	tr_msg *m = tt_expect(port, TT_P_OTHER, probe);

	assert_int_equal(m->size, sizeof(*o));
	memcpy(o, m->data, sizeof(*o));
	tr_msg_free(m);
	assert_int_equal(o->type, TR_SUP_REPLY);
	assert_int_equal(o->ref, ref);
	assert_true(o->size >= sizeof(tr_sup_reply));
	return (tr_sup_reply *)o->data;
}

static void test_requests_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup = tt_sup_start(rt, &f, specs, 1);
	struct tt_other *o = calloc(1, sizeof(*o));
	struct req_arg ra;
	tr_sup_reply *r;

	assert_non_null(o);

	/* count_children */
	memset(&ra, 0, sizeof(ra));
	ra.sup = sup;
	ra.type = TR_SUP_REQ_COUNT_CHILDREN;
	assert_rc(tt_run(port, w, fn_sup_request, &ra), TR_OK);
	r = expect_reply(port, w, ra.ref, o);
	assert_rc(r->err, TR_OK);
	assert_int_equal(r->counts.specs, 1);
	assert_int_equal(r->counts.active, 1);

	/* start_child with a spec */
	memset(&ra, 0, sizeof(ra));
	ra.sup = sup;
	ra.type = TR_SUP_REQ_START_CHILD;
	strcpy(ra.req.id, "b");
	ra.req.has_spec = true;
	ra.req.spec = tt_wspec(NULL, &b);
	assert_rc(tt_run(port, w, fn_sup_request, &ra), TR_OK);
	r = expect_reply(port, w, ra.ref, o);
	assert_rc(r->err, TR_OK);
	assert_true(tr_is_alive(rt, r->pid));
	assert_int_equal(atomic_load(&b.running), 1);

	/* which_children, with room for one entry */
	memset(&ra, 0, sizeof(ra));
	ra.sup = sup;
	ra.type = TR_SUP_REQ_WHICH_CHILDREN;
	ra.req.cap = 1;
	assert_rc(tt_run(port, w, fn_sup_request, &ra), TR_OK);
	r = expect_reply(port, w, ra.ref, o);
	assert_rc(r->err, TR_OK);
	assert_int_equal(r->total, 2);
	assert_int_equal(r->n, 1);
	assert_string_equal(r->children[0].id, "a");

	/* an unknown id */
	memset(&ra, 0, sizeof(ra));
	ra.sup = sup;
	ra.type = TR_SUP_REQ_DELETE_CHILD;
	strcpy(ra.req.id, "zz");
	assert_rc(tt_run(port, w, fn_sup_request, &ra), TR_OK);
	r = expect_reply(port, w, ra.ref, o);
	assert_rc(r->err, TR_ENOENT);

	free(o);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* simple_one_for_one                                                        */
/* ------------------------------------------------------------------------ */

static void test_simple_one_for_one(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* Two configs: each child gets the argument it was started with. */
	static struct tt_wcfg even = {.id = 'e'}, odd = {.id = 'o'};
	static struct tt_wcfg unused = {.id = 'u'};
	tr_child_spec spec = tt_wspec("dyn", &unused);
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 5, LONG_PERIOD);
	const size_t nkids = (size_t)tt_env_u64("TT_SUP_CHILDREN", 2000);
	tr_child_info *info = calloc(nkids + 1, sizeof(*info));
	tr_child_info_init(&info[0]);
	tr_pid *pids = calloc(nkids, sizeof(*pids));
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_pid sup, pid, victim;
	size_t n = 0;

	assert_non_null(info);
	assert_non_null(pids);
	sup = tt_sup_start(rt, &f, &spec, 1);
	/* No child until one is asked for. */
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 0);
	assert_int_equal(atomic_load(&unused.starts), 0);

	for (size_t i = 0; i < nkids; i++) {
		assert_rc(tr_sup_start_child(&pids[i], rt, sup, NULL,
		              (i & 1) ? &odd : &even, TT_WAIT_MS, NULL),
		    TR_OK);
		assert_false(tr_pid_is_none(pids[i]));
	}
	assert_int_equal(atomic_load(&even.running), (nkids + 1) / 2);
	assert_int_equal(atomic_load(&odd.running), nkids / 2);
	assert_int_equal(atomic_load(&unused.starts), 0);

	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, nkids);
	assert_int_equal(cnt.active, nkids);
	assert_int_equal(cnt.workers, nkids);
	assert_int_equal(cnt.supervisors, 0);

	/* Listed in start order, with the pids handed out, no ids. */
	assert_rc(
	    tr_sup_which_children(info, nkids + 1, &n, rt, sup, TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(n, nkids);
	for (size_t i = 0; i < nkids; i++) {
		assert_true(tr_pid_eq(info[i].pid, pids[i]));
		assert_string_equal(info[i].id, "");
	}

	/* A spec is refused; so are the id-based calls. */
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &spec, &odd, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "dyn", TT_WAIT_MS, NULL),
	    TR_ENOTSUP);
	assert_rc(tr_sup_delete_child(rt, sup, "dyn", TT_WAIT_MS), TR_ENOTSUP);
	assert_rc(
	    tr_sup_terminate_child(rt, sup, "dyn", TT_WAIT_MS), TR_ENOTSUP);

	/* Terminated by pid: gone for good. */
	assert_rc(tr_sup_terminate_pid(rt, sup, pids[10], TT_WAIT_MS), TR_OK);
	assert_false(tr_is_alive(rt, pids[10]));
	assert_rc(
	    tr_sup_terminate_pid(rt, sup, pids[10], TT_WAIT_MS), TR_ENOENT);
	assert_rc(tr_sup_terminate_pid(rt, sup, w, TT_WAIT_MS), TR_ENOENT);
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, nkids - 1);
	assert_int_equal(cnt.active, nkids - 1);

	/* A crash: restarted with a new pid, with its own argument. */
	victim = pids[11];
	tt_wcrash(rt, victim, 7);
	assert_true(TT_WAIT_FOR(
	    atomic_load(&odd.starts) == (int)(nkids / 2 + 1), TT_WAIT_MS));
	tt_quiesce(rt);
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, nkids - 1);
	assert_int_equal(cnt.active, nkids - 1);
	assert_rc(
	    tr_sup_which_children(info, nkids + 1, &n, rt, sup, TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(n, nkids - 1);
	for (size_t i = 0; i < n; i++)
		assert_false(tr_pid_eq(info[i].pid, victim));

	/* Stopping the supervisor stops them all first. */
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&even.running), 0);
	assert_int_equal(atomic_load(&odd.running), 0);
	assert_int_equal(
	    atomic_load(&even.terms) + atomic_load(&odd.terms), nkids + 1);
	tt_pstop(fx);
	free(info);
	free(pids);
}

/* ------------------------------------------------------------------------ */
/* Significant children                                                      */
/* ------------------------------------------------------------------------ */

static void test_auto_shutdown_any(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg p = {.id = 'p', .log = &evlog};
	static struct tt_wcfg s = {.id = 's', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("p", &p), tt_wspec("s", &s)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, old;

	f.auto_shutdown = TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT;
	specs[1].restart = TR_RESTART_TRANSIENT;
	specs[1].significant = true;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 2);
	(void)tt_monitor(port, w, sup);

	/* A crash is restarted as usual. */
	old = tt_child(rt, sup, "s");
	tt_wcrash(rt, old, 7);
	(void)tt_wait_restart(rt, sup, "s", old);

	/* Stopped by the supervisor is not "on its own". */
	assert_rc(tr_sup_terminate_child(rt, sup, "s", TT_WAIT_MS), TR_OK);
	assert_rc(
	    tr_sup_restart_child(&old, rt, sup, "s", TT_WAIT_MS, NULL), TR_OK);
	tt_quiesce(rt);
	assert_true(tr_is_alive(rt, sup));
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);

	/* A normal exit: the supervisor shuts down, stopping the rest. */
	tt_wstop(rt, tt_child(rt, sup, "s"), TR_REASON_NORMAL);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&p.running), 0);
	assert_int_equal(atomic_load(&p.last_reason), TR_REASON_SHUTDOWN);
	tt_pstop(fx);
}

static void test_auto_shutdown_all(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg p = {.id = 'p', .log = &evlog};
	static struct tt_wcfg s1 = {.id = '1', .log = &evlog};
	static struct tt_wcfg s2 = {.id = '2', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("s1", &s1), tt_wspec("p", &p), tt_wspec("s2", &s2)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup;

	f.auto_shutdown = TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT;
	specs[0].restart = TR_RESTART_TRANSIENT;
	specs[0].significant = true;
	specs[2].restart = TR_RESTART_TRANSIENT;
	specs[2].significant = true;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	(void)tt_monitor(port, w, sup);

	/* One of two: the supervisor carries on. */
	tt_wstop(rt, tt_child(rt, sup, "s1"), TR_REASON_NORMAL);
	assert_true(
	    TT_WAIT_FOR(tr_pid_is_none(tt_child(rt, sup, "s1")), TT_WAIT_MS));
	tt_quiesce(rt);
	assert_true(tr_is_alive(rt, sup));
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);

	/* Both: it shuts down. */
	tt_wstop(rt, tt_child(rt, sup, "s2"), TR_REASON_SHUTDOWN);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&p.running), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Requests while the supervisor shuts down                                  */
/* ------------------------------------------------------------------------ */

static void test_request_while_shutting_down(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* s ignores the shutdown signal and has a long timeout, so the
	 * supervisor stays in its shutdown for as long as the test needs. */
	static struct tt_wcfg s = {.id = 's', .trap = true};
	static struct tt_wcfg b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("s", &s)};
	tr_child_spec sb = tt_wspec("b", &b);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_child_info info[2] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n;
	tr_pid sup, ps, pid;

	specs[0].shutdown_ms = 10 * TT_WAIT_MS;
	sup = tt_sup_start(rt, &f, specs, 1);
	ps = tt_child(rt, sup, "s");
	(void)tt_monitor(port, w, sup);

	assert_rc(tr_kill(rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 1, TT_WAIT_MS));
	assert_rc(tr_sup_count_children(&cnt, rt, sup, TT_WAIT_MS), TR_ECLOSED);
	assert_rc(tr_sup_which_children(info, 2, &n, rt, sup, TT_WAIT_MS),
	    TR_ECLOSED);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sb, NULL, TT_WAIT_MS, NULL),
	    TR_ECLOSED);
	assert_rc(tr_sup_terminate_child(rt, sup, "s", TT_WAIT_MS), TR_ECLOSED);
	assert_int_equal(atomic_load(&b.starts), 0);

	/* Let it finish. */
	assert_rc(tr_kill(rt, ps, TR_REASON_KILL), TR_OK);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&s.running), 0);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_child_admin),
	    TT_PTEST(test_start_child_fails),
	    TT_PTEST(test_start_fails_stops_stubborn_child),
	    TT_PTEST(test_nested_bad_args),
	    TT_PTEST(test_which_and_count),
	    TT_PTEST(test_validation),
	    TT_PTEST(test_admin_from_actor_refused),
	    TT_PTEST(test_start_from_actor),
	    TT_PTEST(test_requests_from_actor),
	    TT_PTEST(test_simple_one_for_one),
	    TT_PTEST(test_auto_shutdown_any),
	    TT_PTEST(test_auto_shutdown_all),
	    TT_PTEST(test_request_while_shutting_down),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
