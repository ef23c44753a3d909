/*
 * Supervisor tests for the points where troupe once differed from OTP,
 * after stdlib's supervisor_SUITE: children that unlink themselves from
 * their supervisor (stopped under a monitor), terminate by pid, init
 * returning ignore (children and the supervisor itself), registered names
 * already taken, the restarting state, bounded admin calls and admin
 * requests from actors, and the exit reasons the reports carry.
 */
#include "sup_common.h"

#include "rt.h"

#define LONG_PERIOD 3600000u

/* Waits for a report line holding every string of the list. */
#define TT_WAIT_LOG(...)                                                       \
	assert_true(                                                           \
	    TT_WAIT_FOR(tt_logcap_has(tt_cap, __VA_ARGS__, NULL), TT_WAIT_MS))

/* ------------------------------------------------------------------------ */
/* Children that unlinked themselves: monitored while they are stopped       */
/* ------------------------------------------------------------------------ */

static void test_stop_unlinked_child(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* 1: obeys shutdown; 2: traps it, killed after its timeout; 3:
	 * brutal kill; 4: infinity, exits with 42 when told to stop. */
	static struct tt_wcfg u1 = {.id = '1', .log = &evlog};
	static struct tt_wcfg u2 = {.id = '2', .log = &evlog, .trap = true};
	static struct tt_wcfg u3 = {.id = '3', .log = &evlog, .trap = true};
	static struct tt_wcfg u4 = {
	    .id = '4', .log = &evlog, .trap = true, .on_shutdown = 42};
	tr_child_spec specs[] = {tt_wspec("u1", &u1), tt_wspec("u2", &u2),
	    tt_wspec("u3", &u3), tt_wspec("u4", &u4)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	const char *ids[] = {"u1", "u2", "u3", "u4"};
	tr_pid sup, pid;

	specs[0].shutdown_ms = 500;
	specs[1].shutdown_ms = 500;
	specs[2].shutdown_ms = TR_SHUTDOWN_BRUTAL_KILL;
	specs[3].shutdown_ms = TR_SHUTDOWN_INFINITY;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 4);
	for (int i = 0; i < 4; i++)
		tt_wunlink(rt, tt_child(rt, sup, ids[i]), sup);

	/* Each stop ends, by the child's DOWN, with the reason it died of;
	 * the kill after the timeout still applies. */
	assert_rc(tr_sup_terminate_child(rt, sup, "u1", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&u1.last_reason), TR_REASON_SHUTDOWN);
	assert_rc(tr_sup_terminate_child(rt, sup, "u2", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&u2.exits_seen), 1);
	assert_int_equal(atomic_load(&u2.last_reason), TR_REASON_KILLED);
	assert_rc(tr_sup_terminate_child(rt, sup, "u3", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&u3.last_reason), TR_REASON_KILLED);
	assert_rc(tr_sup_terminate_child(rt, sup, "u4", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&u4.last_reason), 42);
	TT_WAIT_LOG("child=u4 pid=", "event=shutdown_error", "reason=42 (");
	for (int i = 0; i < 4; i++)
		assert_true(tr_pid_is_none(tt_child(rt, sup, ids[i])));
	assert_int_equal(tt_counts(rt, sup).specs, 4);

	/* Restarted (and linked again), unlinked again: the supervisor's
	 * own shutdown does not hang on them either. */
	for (int i = 0; i < 4; i++) {
		assert_rc(tr_sup_restart_child(
		              &pid, rt, sup, ids[i], TT_WAIT_MS, NULL),
		    TR_OK);
		tt_wunlink(rt, pid, sup);
	}
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&u1.running) + atomic_load(&u2.running) +
	                     atomic_load(&u3.running) +
	                     atomic_load(&u4.running),
	    0);
	tt_pstop(fx);
}

/* A child that unlinked itself and died: the supervisor never saw it go
 * (as in OTP); stopping it finds it gone (noproc), at once. */
static void test_unlinked_child_died_unseen(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg u = {.id = 'u', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("u", &u)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, pu, pid;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 1);
	pu = tt_child(rt, sup, "u");
	tt_wunlink(rt, pu, sup);
	tt_wcrash(rt, pu, 7);
	tt_quiesce(rt);
	assert_true(tr_pid_eq(tt_child(rt, sup, "u"), pu));
	assert_int_equal(atomic_load(&u.starts), 1);

	assert_rc(tr_sup_terminate_child(rt, sup, "u", TT_WAIT_MS), TR_OK);
	assert_true(tr_pid_is_none(tt_child(rt, sup, "u")));
	TT_WAIT_LOG("child=u pid=", "event=shutdown_error", "(noproc)");
	tt_quiesce(rt);
	assert_false(tt_logcap_has(tt_cap, "event=ignored_exit", NULL));
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "u", TT_WAIT_MS, NULL), TR_OK);
	assert_true(tr_is_alive(rt, pid));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* Dynamic children stopped in parallel, and a group restart's bystander. */
static void test_unlinked_dynamic_and_group(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg d = {.id = 'd', .trap = true};
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog, .trap = true};
	tr_child_spec tmpl = tt_wspec("dyn", &d);
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_pid sup, pid, pa, pb;

	tmpl.shutdown_ms = 300;
	sup = tt_sup_start(rt, &f, &tmpl, 1);
	for (int i = 0; i < 3; i++) {
		assert_rc(tr_sup_start_child(
		              &pid, rt, sup, NULL, &d, TT_WAIT_MS, NULL),
		    TR_OK);
		if (i < 2)
			tt_wunlink(rt, pid, sup);
	}
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&d.running), 0);
	assert_int_equal(atomic_load(&d.last_reason), TR_REASON_KILLED);

	/* one_for_all: a crashes; b, unlinked and deaf to shutdown, is
	 * killed after its timeout, and both start again. */
	reset_log();
	specs[1].shutdown_ms = 300;
	f = tt_flags(TR_SUP_ONE_FOR_ALL, 5, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, specs, 2);
	pa = tt_child(rt, sup, "a");
	pb = tt_child(rt, sup, "b");
	tt_wunlink(rt, pb, sup);
	tt_wcrash(rt, pa, 7);
	(void)tt_wait_restart(rt, sup, "a", pa);
	(void)tt_wait_restart(rt, sup, "b", pb);
	tt_assert_events(&evlog, 0, "Ia Ib Ta:e Xb Tb:k Ia Ib");
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* The log handler of the race below: a crash report is written by the
 * dying actor after its pid has ended and before its exit signals go out,
 * so a slow one holds a crashed child in that window. */
static void slow_crash_log(void *user, const char *line)
{
	if (strncmp(line, "CRASH REPORT", 12) == 0)
		tt_sleep_ms(2);
	tt_logcap_fn(user, line);
}

/* Two children of a one_for_all supervisor crash at once, again and again:
 * the second is often found dead by the monitor before its EXIT is out,
 * and its report must still give the reason it crashed with. */
static void test_stop_race_keeps_reason(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_runtime_set_log(rt, slow_crash_log, tt_cap);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 100000, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, specs, 2);

	for (int i = 0; i < 60; i++) {
		tr_pid pa = tt_child(rt, sup, "a"), pb = tt_child(rt, sup, "b");

		int r41 = 41, r43 = 43;

		/* b may be stopped by the group restart a's crash starts
		 * before its own order reaches it. */
		assert_rc(tr_post(rt, pa, TT_W_STOP, &r41, sizeof(r41)), TR_OK);
		(void)tr_post(rt, pb, TT_W_STOP, &r43, sizeof(r43));
		(void)tt_wait_restart(rt, sup, "a", pa);
		(void)tt_wait_restart(rt, sup, "b", pb);
	}
	tt_quiesce(rt);
	if (tt_logcap_has(tt_cap, "SUPERVISOR", "noproc", NULL)) {
		tt_logcap_dump(tt_cap);
		fail_msg("a report lost a child's reason");
	}
	assert_true(tt_logcap_has(tt_cap, "child=b pid=", "reason=43 (", NULL));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Terminate by pid                                                          */
/* ------------------------------------------------------------------------ */

static void test_terminate_pid_refused(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	const tr_sup_strategy strategies[] = {
	    TR_SUP_ONE_FOR_ONE, TR_SUP_ONE_FOR_ALL, TR_SUP_REST_FOR_ONE};
	tr_pid sup, pa, pid;

	for (size_t i = 0; i < 3; i++) {
		tr_sup_flags f = tt_flags(strategies[i], 5, LONG_PERIOD);

		sup = tt_sup_start(rt, &f, specs, 2);
		pa = tt_child(rt, sup, "a");
		assert_rc(
		    tr_sup_terminate_pid(rt, sup, pa, TT_WAIT_MS), TR_ENOENT);
		assert_true(tr_is_alive(rt, pa));
		assert_int_equal(tt_counts(rt, sup).active, 2);
		tt_sup_stop(rt, port, w, sup);
	}

	/* simple_one_for_one: by pid is how its children are named. */
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 5, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, specs, 1);
	assert_rc(tr_sup_start_child(&pid, rt, sup, NULL, &a, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_rc(tr_sup_terminate_pid(rt, sup, pid, TT_WAIT_MS), TR_OK);
	assert_false(tr_is_alive(rt, pid));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* init returning ignore                                                     */
/* ------------------------------------------------------------------------ */

static void test_ignore_static(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg p = {.id = 'p',
	    .log = &evlog,
	    .fail_from = 1,
	    .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg t = {.id = 't',
	    .log = &evlog,
	    .fail_from = 1,
	    .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg k = {.id = 'k', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("p", &p), tt_wspec("t", &t), tt_wspec("k", &k)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_child_info info[4] = {TR_STRUCT_INIT(tr_child_info)};
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	size_t n = 0;
	tr_pid sup, pid;

	specs[1].restart = TR_RESTART_TEMPORARY;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	tt_assert_events(&evlog, 0, "Np Nt Ik");

	/* The permanent child keeps its spec, with no pid; the temporary
	 * one leaves nothing (OTP: specs 2, active 1). */
	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 2);
	assert_string_equal(info[0].id, "p");
	assert_true(tr_pid_is_none(info[0].pid));
	assert_false(info[0].restarting);
	assert_string_equal(info[1].id, "k");
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 1);

	/* restart_child: ignored again ({ok, undefined}), then started. */
	pid = w;
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "p", TT_WAIT_MS, NULL), TR_OK);
	assert_true(tr_pid_is_none(pid));
	atomic_store(&p.fail_from, 0);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "p", TT_WAIT_MS, NULL), TR_OK);
	assert_true(tr_is_alive(rt, pid));
	tt_quiesce(rt);
	assert_false(tt_logcap_has(tt_cap, "event=ignored_exit", NULL));
	assert_false(tt_logcap_has(tt_cap, "event=start_failed", NULL));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_ignore_start_child(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg ig = {
	    .id = 'i', .fail_from = 1, .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg k = {.id = 'k'};
	tr_child_spec perm = tt_wspec("perm", &ig);
	tr_child_spec temp = tt_wspec("temp", &ig);
	tr_child_spec ok = tt_wspec("ok", &k);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_pid sup, pid;

	temp.restart = TR_RESTART_TEMPORARY;
	sup = tt_sup_start(rt, &f, NULL, 0);
	pid = w;
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &perm, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_pid_is_none(pid));
	pid = w;
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &temp, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_pid_is_none(pid));
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &ok, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_is_alive(rt, pid));
	assert_true(tt_has_child(rt, sup, "perm"));
	assert_false(tt_has_child(rt, sup, "temp"));
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 1);
	assert_int_equal(cnt.workers, 2);
	/* The kept spec is present: already_present. */
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &perm, NULL, TT_WAIT_MS, NULL),
	    TR_EEXIST);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_ignore_dynamic(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg ig = {
	    .id = 'i', .fail_from = 1, .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg later = {
	    .id = 'l', .fail_from = 2, .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg k = {.id = 'k'};
	tr_child_spec tmpl = tt_wspec("dyn", &k);
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, pid, pk;

	sup = tt_sup_start(rt, &f, &tmpl, 1);
	pid = w;
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, NULL, &ig, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_true(tr_pid_is_none(pid));
	assert_rc(tr_sup_start_child(&pk, rt, sup, NULL, &k, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_int_equal(tt_counts(rt, sup).specs, 1);

	/* A restart that is ignored removes the dynamic child. */
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, NULL, &later, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_int_equal(tt_counts(rt, sup).specs, 2);
	tt_wcrash(rt, pid, 7);
	assert_true(TT_WAIT_FOR(tt_counts(rt, sup).specs == 1, TT_WAIT_MS));
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&later.starts), 2);
	assert_int_equal(tt_counts(rt, sup).active, 1);
	assert_true(tr_pid_eq(tt_child(rt, sup, ""), pk));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_ignore_on_restart(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg c = {.id = 'c',
	    .log = &evlog,
	    .fail_from = 2,
	    .fail_reason = TR_INIT_IGNORE};
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b',
	    .log = &evlog,
	    .fail_from = 2,
	    .fail_reason = TR_INIT_IGNORE};
	tr_child_spec one[] = {tt_wspec("c", &c)};
	tr_child_spec two[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_child_info info[2] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n;
	tr_pid sup, pa;

	/* one_for_one: the restart is ignored; the spec stays, stopped,
	 * and no retry follows. */
	sup = tt_sup_start(rt, &f, one, 1);
	tt_wcrash(rt, tt_child(rt, sup, "c"), 7);
	assert_true(TT_WAIT_FOR(atomic_load(&c.starts) == 2, TT_WAIT_MS));
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&c.starts), 2);
	assert_rc(
	    tr_sup_which_children(info, 2, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 1);
	assert_true(tr_pid_is_none(info[0].pid));
	assert_false(info[0].restarting);
	assert_true(tr_is_alive(rt, sup));
	tt_sup_stop(rt, port, w, sup);

	/* one_for_all: a is restarted, b ignores its restart. */
	reset_log();
	f = tt_flags(TR_SUP_ONE_FOR_ALL, 5, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, two, 2);
	pa = tt_child(rt, sup, "a");
	tt_wcrash(rt, pa, 7);
	(void)tt_wait_restart(rt, sup, "a", pa);
	assert_true(TT_WAIT_FOR(atomic_load(&b.starts) == 2, TT_WAIT_MS));
	tt_quiesce(rt);
	tt_assert_events(&evlog, 0, "Ia Ib Ta:e Tb:s Ia Nb");
	assert_true(tr_pid_is_none(tt_child(rt, sup, "b")));
	assert_int_equal(tt_counts(rt, sup).specs, 2);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static tr_pid tt_sup_start_args_ok(tr_runtime *rt, const tr_sup_args *args)
{
	tr_pid sup = TR_PID_NONE;

	assert_rc(tr_sup_start_args(&sup, rt, args, NULL), TR_OK);
	assert_false(tr_pid_is_none(sup));
	return sup;
}

/* The supervisor's own init callback. */
struct sup_init_cfg {
	int rc;                     /* what init returns */
	const tr_child_spec *specs; /* put into the arguments, if not NULL */
	size_t nspecs;
	_Atomic int calls;
};

static int sup_init_cb(void *arg, tr_sup_args *args)
{
	struct sup_init_cfg *c = arg;

	atomic_fetch_add(&c->calls, 1);
	if (c->specs != NULL) {
		args->specs = c->specs;
		args->nspecs = c->nspecs;
	}
	return c->rc;
}

struct link_start {
	const tr_sup_args *args;
	tr_pid sup; /* out */
};

static int fn_start_link_args(tr_ctx *ctx, void *arg)
{
	struct link_start *ls = arg;

	return tr_sup_start_link_args(ctx, &ls->sup, ls->args, NULL);
}

static void test_ignore_sup_init(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_pid trapper = tt_probe_spawn(rt, port, true);
	static struct tt_wcfg a = {.id = 'a'};
	static struct sup_init_cfg ig = {.rc = TR_INIT_IGNORE};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_args args = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD),
	    .init = sup_init_cb,
	    .init_arg = &ig,
	};
	struct sup_init_cfg changes = {
	    .rc = TR_OK, .specs = specs, .nspecs = 1};
	struct sup_init_cfg fails = {.rc = 77}, bad = {.rc = -7};
	struct link_start ls = {.args = &args};
	tr_runtime_stats st0 = TR_STRUCT_INIT(tr_runtime_stats),
	                 st1 = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid sup;
	int reason = 0;

	/* ignore: no supervisor, no error, nothing left. */
	tt_quiesce(rt);
	st0 = tt_stats(rt);
	sup = w;
	assert_rc(tr_sup_start_args(&sup, rt, &args, &reason), TR_OK);
	assert_true(tr_pid_is_none(sup));
	assert_int_equal(reason, 0);
	tt_quiesce(rt);
	st1 = tt_stats(rt);
	assert_int_equal(st1.actors_alive, st0.actors_alive);

	/* Linked from an actor that traps exits: it gets no EXIT. */
	ls.sup = w;
	assert_rc(tt_run(port, trapper, fn_start_link_args, &ls), TR_OK);
	assert_true(tr_pid_is_none(ls.sup));
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, trapper);
	assert_int_equal(atomic_load(&ig.calls), 2);

	/* init may change the arguments, fail with a reason, or answer
	 * what it may not. */
	args.init_arg = &changes;
	sup = tt_sup_start_args_ok(rt, &args);
	assert_int_equal(atomic_load(&a.running), 1);
	tt_sup_stop(rt, port, w, sup);
	args.init_arg = &fails;
	assert_rc(tr_sup_start_args(&sup, rt, &args, &reason), TR_EINIT);
	assert_int_equal(reason, 77);
	args.init_arg = &bad;
	assert_rc(tr_sup_start_args(&sup, rt, &args, &reason), TR_EINVAL);

	/* Nested: a permanent child supervisor whose init ignores keeps its
	 * spec with no pid; a temporary one leaves nothing. */
	args.init_arg = &ig;
	tr_child_spec outer[] = {
	    tt_supspec("inner", &args), tt_supspec("tmp", &args)};
	outer[1].restart = TR_RESTART_TEMPORARY;
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, outer, 2);
	assert_true(tt_has_child(rt, sup, "inner"));
	assert_false(tt_has_child(rt, sup, "tmp"));
	assert_true(tr_pid_is_none(tt_child(rt, sup, "inner")));
	tr_child_counts cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 1);
	assert_int_equal(cnt.active, 0);
	assert_int_equal(cnt.supervisors, 1);
	/* And when it no longer ignores, it starts its children. */
	args.init_arg = &changes;
	tr_pid in;
	assert_rc(tr_sup_restart_child(&in, rt, sup, "inner", TT_WAIT_MS, NULL),
	    TR_OK);
	assert_false(tr_pid_is_none(tt_child(rt, in, "a")));
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&a.running), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Registered names                                                          */
/* ------------------------------------------------------------------------ */

static tr_child_spec named_spec(
    const char *id, const char *name, struct tt_wcfg *cfg)
{
	tr_child_spec s = tt_wspec(id, cfg);

	s.name = name;
	return s;
}

static void test_name_already_started(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_pid holder = tt_probe_spawn(rt, port, false);
	tr_pid holder2 = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg x = {.id = 'x'}, y = {.id = 'y'};
	static struct tt_wcfg z = {.id = 'z', .reg_name = "self.z"};
	char too_long[TR_NAME_MAX + 2];
	tr_child_spec sx = named_spec("x", "db", &x);
	tr_child_spec sy = named_spec("y", "db2", &y);
	tr_child_spec sz = named_spec("z", "self.z", &z);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, pid, py, who;

	assert_rc(tr_register(rt, "db", holder), TR_OK);
	sup = tt_sup_start(rt, &f, NULL, 0);

	/* Held by another actor: already started, with its pid; the
	 * child's init never ran and no spec is kept. */
	pid = TR_PID_NONE;
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sx, NULL, TT_WAIT_MS, NULL),
	    TR_EALREADY);
	assert_true(tr_pid_eq(pid, holder));
	assert_int_equal(atomic_load(&x.starts), 0);
	assert_int_equal(tt_counts(rt, sup).specs, 0);
	TT_WAIT_LOG("child=x pid=", "event=start_failed");

	/* A free name: the child is registered under it, at every start. */
	assert_rc(tr_sup_start_child(&py, rt, sup, &sy, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_rc(tr_whereis(&who, rt, "db2"), TR_OK);
	assert_true(tr_pid_eq(who, py));
	tt_wcrash(rt, py, 7);
	py = tt_wait_restart(rt, sup, "y", py);
	assert_rc(tr_whereis(&who, rt, "db2"), TR_OK);
	assert_true(tr_pid_eq(who, py));

	/* Taken while the child was stopped: restart_child says so. */
	assert_rc(tr_sup_terminate_child(rt, sup, "y", TT_WAIT_MS), TR_OK);
	assert_rc(tr_whereis(&who, rt, "db2"), TR_ENOENT);
	assert_rc(tr_register(rt, "db2", holder2), TR_OK);
	pid = TR_PID_NONE;
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "y", TT_WAIT_MS, NULL),
	    TR_EALREADY);
	assert_true(tr_pid_eq(pid, holder2));
	assert_int_equal(atomic_load(&y.starts), 2);
	assert_rc(tr_unregister(rt, "db2"), TR_OK);
	assert_rc(
	    tr_sup_restart_child(&py, rt, sup, "y", TT_WAIT_MS, NULL), TR_OK);
	assert_rc(tr_whereis(&who, rt, "db2"), TR_OK);
	assert_true(tr_pid_eq(who, py));

	/* A child whose init takes the same name itself is fine. */
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sz, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_rc(tr_whereis(&who, rt, "self.z"), TR_OK);
	assert_true(tr_pid_eq(who, pid));

	/* A name of a bad length. */
	memset(too_long, 'n', TR_NAME_MAX + 1);
	too_long[TR_NAME_MAX + 1] = '\0';
	sx = named_spec("x2", too_long, &x);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sx, NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	sx = named_spec("x2", "", &x);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sx, NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	tt_sup_stop(rt, port, w, sup);
	assert_rc(tr_whereis(&who, rt, "db2"), TR_ENOENT);
	tt_pstop(fx);
}

static void test_name_taken_at_sup_start(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid holder = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a), named_spec("b", "db", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_sup_args inner = {.flags = f, .specs = specs, .nspecs = 2};
	tr_child_spec outer[] = {tt_supspec("inner", &inner)};
	tr_pid sup = TR_PID_NONE;
	int reason = 0;

	reset_log();
	assert_rc(tr_register(rt, "db", holder), TR_OK);
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 2, &reason), TR_EALREADY);
	assert_true(tr_pid_is_none(sup));
	assert_true(TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS));
	assert_int_equal(atomic_load(&b.starts), 0);
	tt_assert_events(&evlog, 0, "Ia Ta:s");

	/* Nested, the inner supervisor fails with a reason that says so. */
	assert_rc(tr_sup_start(&sup, rt, &f, outer, 1, &reason), TR_EINIT);
	assert_int_equal(reason, TR_SUP_REASON_ALREADY_STARTED);
	assert_true(TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS));
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* The restarting state                                                      */
/* ------------------------------------------------------------------------ */

static bool is_restarting(tr_runtime *rt, tr_pid sup, const char *id)
{
	tr_child_info info[4] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n = 0;

	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS), TR_OK);
	for (size_t i = 0; i < n && i < 4; i++)
		if (strcmp(info[i].id, id) == 0)
			return info[i].restarting;
	return false;
}

static void test_restarting_state(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* r's restarts fail until the test lets them succeed; the intensity
	 * is out of reach meanwhile. */
	static struct tt_wcfg r = {
	    .id = 'r', .fail_from = 2, .fail_reason = 99};
	static struct tt_wcfg k = {.id = 'k'};
	tr_child_spec specs[] = {tt_wspec("r", &r), tt_wspec("k", &k)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 100000000u, LONG_PERIOD);
	tr_pid sup, pid;

	assert_string_equal(tr_strerror(TR_ERESTARTING), "child is restarting");
	sup = tt_sup_start(rt, &f, specs, 2);
	tt_wcrash(rt, tt_child(rt, sup, "r"), 7);
	assert_true(TT_WAIT_FOR(is_restarting(rt, sup, "r"), TT_WAIT_MS));

	/* OTP's {error, restarting} and already_present; not active. */
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "r", TT_WAIT_MS, NULL),
	    TR_ERESTARTING);
	assert_rc(
	    tr_sup_delete_child(rt, sup, "r", TT_WAIT_MS), TR_ERESTARTING);
	assert_rc(tr_sup_start_child(
	              &pid, rt, sup, &specs[0], NULL, TT_WAIT_MS, NULL),
	    TR_EEXIST);
	assert_int_equal(tt_counts(rt, sup).active, 1);
	assert_true(tr_pid_is_none(tt_child(rt, sup, "r")));
	/* A running child is running, not restarting. */
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "k", TT_WAIT_MS, NULL),
	    TR_ERUNNING);
	assert_true(tr_pid_eq(pid, tt_child(rt, sup, "k")));
	assert_false(is_restarting(rt, sup, "k"));

	/* Once a retry succeeds it is running again. */
	atomic_store(&r.fail_from, 0);
	assert_true(
	    TT_WAIT_FOR(!tr_pid_is_none(tt_child(rt, sup, "r")), TT_WAIT_MS));
	assert_false(is_restarting(rt, sup, "r"));

	/* terminate_child ends a restart loop; the child can then be
	 * deleted. */
	atomic_store(&r.fail_from, atomic_load(&r.starts) + 1);
	tt_wcrash(rt, tt_child(rt, sup, "r"), 7);
	assert_true(TT_WAIT_FOR(is_restarting(rt, sup, "r"), TT_WAIT_MS));
	assert_rc(tr_sup_terminate_child(rt, sup, "r", TT_WAIT_MS), TR_OK);
	assert_false(is_restarting(rt, sup, "r"));
	assert_rc(tr_sup_delete_child(rt, sup, "r", TT_WAIT_MS), TR_OK);
	assert_false(tt_has_child(rt, sup, "r"));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Bounded calls                                                             */
/* ------------------------------------------------------------------------ */

static int never_answers(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour silent = {.name = "silent", .handle = never_answers};

static void test_call_timeouts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec sa = tt_wspec("a", &a);
	tr_pid quiet = tt_spawn(rt, &silent, NULL);
	tr_sup_named_spec ns;
	tr_child_info info[2] = {TR_STRUCT_INIT(tr_child_info)};
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	size_t n;
	tr_pid pid;

	/* Whatever the supervisor does, a call returns in its time. */
	assert_rc(tr_sup_start_child(&pid, rt, quiet, &sa, NULL, 50, NULL),
	    TR_ETIMEDOUT);
	assert_rc(tr_sup_terminate_child(rt, quiet, "a", 50), TR_ETIMEDOUT);
	assert_rc(tr_sup_terminate_pid(rt, quiet, quiet, 50), TR_ETIMEDOUT);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, quiet, "a", 50, NULL), TR_ETIMEDOUT);
	assert_rc(tr_sup_delete_child(rt, quiet, "a", 50), TR_ETIMEDOUT);
	assert_rc(
	    tr_sup_which_children(info, 2, &n, rt, quiet, 50), TR_ETIMEDOUT);
	assert_rc(tr_sup_count_children(&cnt, rt, quiet, 50), TR_ETIMEDOUT);
	tr_sup_named_spec_init(&ns, "a", "nw", NULL, 0);
	assert_rc(tr_sup_start_named_child(&pid, rt, quiet, &ns, 50, NULL),
	    TR_ETIMEDOUT);
	assert_int_equal(atomic_load(&a.starts), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Administration from an actor                                              */
/* ------------------------------------------------------------------------ */

/* A clerk: an actor that sends the admin requests it is given and reports
 * each decoded answer to the test's port. */
enum {
	CK_GO = 0x7600, /* port -> clerk: struct ck_go */
	CK_DONE,        /* clerk -> port: struct ck_done */
	CK_PING,        /* port -> clerk; the clerk answers CK_PONG */
	CK_PONG,
};

struct ck_go {
	tr_pid sup;
	int64_t timeout_ms;
	tr_sup_request q;
};

struct ck_done {
	int send_rc;
	int decode_rc;
	uint32_t type; /* of the answer */
	tr_sup_result res;
	tr_child_info children[4];
};

struct ck_state {
	tr_pid report;
	uint64_t ref;
};

static int ck_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int ck_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct ck_state *st = state;
	struct ck_done d;

	memset(&d, 0, sizeof(d));
	if (m->type == CK_GO) {
		struct ck_go g;

		TT_ACHECK(m->size == sizeof(g));
		memcpy(&g, m->data, sizeof(g));
		d.send_rc = tr_sup_request_send(
		    ctx, &st->ref, g.sup, &g.q, g.timeout_ms);
		if (d.send_rc != TR_OK)
			TT_ACHECK(tr_send(ctx, st->report, CK_DONE, &d,
			              sizeof(d)) == TR_OK);
		return 0;
	}
	if (m->type == CK_PING) {
		TT_ACHECK(tr_send(ctx, m->sender, CK_PONG, NULL, 0) == TR_OK);
		return 0;
	}
	if (m->ref != 0 && m->ref == st->ref) {
		d.type = m->type;
		d.decode_rc = tr_sup_reply_decode(&d.res, m);
		/* The entries live in the message: copy them out now. */
		for (uint32_t i = 0; i < d.res.n && i < 4; i++)
			d.children[i] = d.res.children[i];
		d.res.children = NULL;
		TT_ACHECK(
		    tr_send(ctx, st->report, CK_DONE, &d, sizeof(d)) == TR_OK);
	}
	return 0;
}

static const tr_behaviour clerk_b = {
    .name = "clerk",
    .init = ck_init,
    .handle = ck_handle,
};

static void ck_send(tr_port *port, tr_pid clerk, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms)
{
	struct ck_go g;

	memset(&g, 0, sizeof(g));
	g.sup = sup;
	g.timeout_ms = timeout_ms;
	g.q = *q;
	assert_rc(tr_port_send(port, clerk, CK_GO, &g, sizeof(g)), TR_OK);
}

static struct ck_done ck_wait(tr_port *port, tr_pid clerk)
{
	struct ck_done d;
	tr_msg *m = tt_expect(port, CK_DONE, clerk);

	assert_int_equal(m->size, sizeof(d));
	memcpy(&d, m->data, sizeof(d));
	tr_msg_free(m);
	return d;
}

/* Sends a request through the clerk and returns its decoded answer. */
static struct ck_done ck_ask(tr_port *port, tr_pid clerk, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms)
{
	struct ck_done d;

	ck_send(port, clerk, sup, q, timeout_ms);
	d = ck_wait(port, clerk);
	assert_rc(d.send_rc, TR_OK);
	assert_rc(d.decode_rc, TR_OK);
	return d;
}

static void test_admin_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	static struct tt_wcfg s = {.id = 's', .trap = true};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("s", &s)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	struct ck_state cs = {.report = tr_port_pid(port)};
	tr_pid clerk = tt_spawn(rt, &clerk_b, &cs);
	tr_pid quiet = tt_spawn(rt, &silent, NULL);
	tr_sup_request q;
	struct ck_done d;
	tr_pid sup, who, pb;

	specs[1].shutdown_ms = 10 * TT_WAIT_MS;
	sup = tt_sup_start(rt, &f, specs, 2);

	assert_rc(tr_sup_req_count_children(&q), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_int_equal(d.type, TR_SUP_REPLY);
	assert_rc(d.res.err, TR_OK);
	assert_int_equal(d.res.counts.specs, 2);
	assert_int_equal(d.res.counts.active, 2);

	/* start_child: the spec's strings travel in the request, so the
	 * caller's buffers may change as soon as it is built. */
	{
		char id[8] = "b", name[16] = "clerk.b";
		tr_child_spec sb = tt_wspec(id, &b);

		sb.name = name;
		assert_rc(tr_sup_req_start_child(&q, &sb, NULL), TR_OK);
		strcpy(id, "zz");
		strcpy(name, "zz");
	}
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_OK);
	pb = d.res.pid;
	assert_true(tr_is_alive(rt, pb));
	assert_true(tr_pid_eq(tt_child(rt, sup, "b"), pb));
	assert_rc(tr_whereis(&who, rt, "clerk.b"), TR_OK);
	assert_true(tr_pid_eq(who, pb));

	assert_rc(tr_sup_req_which_children(&q, 4), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_OK);
	assert_int_equal(d.res.total, 3);
	assert_int_equal(d.res.n, 3);
	assert_string_equal(d.children[0].id, "a");
	assert_string_equal(d.children[2].id, "b");
	assert_true(tr_pid_eq(d.children[2].pid, pb));

	assert_rc(tr_sup_req_delete_child(&q, "b"), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_ERUNNING);
	assert_true(tr_pid_eq(d.res.pid, pb));
	assert_rc(tr_sup_req_terminate_pid(&q, pb), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_ENOENT);
	assert_rc(tr_sup_req_terminate_child(&q, "b"), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_OK);
	assert_false(tr_is_alive(rt, pb));
	assert_rc(tr_sup_req_restart_child(&q, "b"), TR_OK);
	d = ck_ask(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(d.res.err, TR_OK);
	assert_true(tr_is_alive(rt, d.res.pid));

	/* The clerk is never blocked: while the supervisor waits for s (it
	 * ignores its shutdown, with a long timeout), the clerk answers. */
	assert_rc(tr_sup_req_terminate_child(&q, "s"), TR_OK);
	ck_send(port, clerk, sup, &q, -1);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 1, TT_WAIT_MS));
	assert_rc(tr_port_send(port, clerk, CK_PING, NULL, 0), TR_OK);
	tr_msg_free(tt_expect(port, CK_PONG, clerk));
	assert_null(tt_try_expect(port, CK_DONE, clerk, 50));
	assert_rc(tr_kill(rt, tt_child(rt, sup, "s"), TR_REASON_KILL), TR_OK);
	d = ck_wait(port, clerk);
	assert_rc(d.decode_rc, TR_OK);
	assert_rc(d.res.err, TR_OK);

	/* A request's timeout decodes as an answer too. */
	assert_rc(tr_sup_req_count_children(&q), TR_OK);
	d = ck_ask(port, clerk, quiet, &q, 50);
	assert_int_equal(d.type, TR_MSG_TIMEOUT);
	assert_rc(d.res.err, TR_ETIMEDOUT);

	/* Requests no builder made, and a supervisor that is gone. */
	memset(&q, 0, sizeof(q));
	ck_send(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(ck_wait(port, clerk).send_rc, TR_EINVAL);
	assert_rc(tr_sup_request_send(NULL, NULL, sup, &q, 0), TR_EINVAL);
	tt_sup_stop(rt, port, w, sup);
	assert_rc(tr_sup_req_count_children(&q), TR_OK);
	ck_send(port, clerk, sup, &q, TT_WAIT_MS);
	assert_rc(ck_wait(port, clerk).send_rc, TR_ENOPROC);
	tt_pstop(fx);
}

static void test_builders(void **state)
{
	tr_sup_request q;
	char too_long[TR_NAME_MAX + 2];
	char longest[TR_NAME_MAX + 1];
	tr_child_spec sp;

	(void)state;
	memset(too_long, 'x', TR_NAME_MAX + 1);
	too_long[TR_NAME_MAX + 1] = '\0';
	memset(longest, 'l', TR_NAME_MAX);
	longest[TR_NAME_MAX] = '\0';

	assert_rc(tr_sup_req_terminate_child(&q, longest), TR_OK);
	assert_int_equal(q.type, TR_SUP_REQ_TERMINATE_CHILD);
	assert_string_equal(q.id, longest);
	assert_rc(tr_sup_req_terminate_child(&q, too_long), TR_EINVAL);
	assert_rc(tr_sup_req_restart_child(&q, ""), TR_EINVAL);
	assert_rc(tr_sup_req_delete_child(&q, NULL), TR_EINVAL);
	assert_rc(tr_sup_req_terminate_child(NULL, "a"), TR_EINVAL);
	assert_rc(tr_sup_req_count_children(NULL), TR_EINVAL);
	assert_rc(tr_sup_req_which_children(&q, (size_t)UINT32_MAX + 9), TR_OK);
	assert_int_equal(q.cap, UINT32_MAX);
	assert_rc(tr_sup_req_terminate_pid(&q, (tr_pid){0, 3, 4}), TR_OK);
	assert_int_equal(q.type, TR_SUP_REQ_TERMINATE_PID);
	assert_int_equal(q.pid.slot, 3);

	tr_child_spec_init(&sp, "w", NULL, NULL);
	sp.start_name = "pool.w";
	sp.name = "reg.w";
	assert_rc(tr_sup_req_start_child(&q, &sp, NULL), TR_OK);
	assert_int_equal(q.type, TR_SUP_REQ_START_CHILD);
	assert_true(q.has_spec);
	assert_string_equal(q.id, "w");
	assert_string_equal(q.start_name, "pool.w");
	assert_string_equal(q.name, "reg.w");
	assert_null(q.spec.id);
	assert_null(q.spec.start_name);
	assert_null(q.spec.name);
	sp.name = too_long;
	assert_rc(tr_sup_req_start_child(&q, &sp, NULL), TR_EINVAL);
	sp.name = NULL;
	sp.id = NULL;
	assert_rc(tr_sup_req_start_child(&q, &sp, NULL), TR_EINVAL);
	assert_rc(tr_sup_req_start_child(&q, NULL, &q), TR_OK);
	assert_false(q.has_spec);
	assert_ptr_equal(q.arg, &q);
}

static void test_reply_decode(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	(void)tt_pstart(fx, 1);
	unsigned char buf[sizeof(tr_sup_reply) + 2 * sizeof(tr_child_info)];
	tr_sup_reply *r = (tr_sup_reply *)(void *)buf;
	tr_sup_result res;
	tr_msg *m;

	memset(buf, 0, sizeof(buf));
	r->err = TR_OK;
	r->total = 5;
	r->n = 2;
	strcpy(r->children[1].id, "second");
	assert_rc(tr__msg_new_sys(&m, TR_SUP_REPLY, buf, sizeof(buf)), TR_OK);
	assert_rc(tr_sup_reply_decode(&res, m), TR_OK);
	assert_int_equal(res.total, 5);
	assert_int_equal(res.n, 2);
	assert_string_equal(res.children[1].id, "second");
	/* More entries than the payload holds, a positive err, too short. */
	((tr_sup_reply *)(void *)m->data)->n = 3;
	assert_rc(tr_sup_reply_decode(&res, m), TR_EINVAL);
	((tr_sup_reply *)(void *)m->data)->n = 0;
	((tr_sup_reply *)(void *)m->data)->err = 4;
	assert_rc(tr_sup_reply_decode(&res, m), TR_EINVAL);
	m->size = sizeof(tr_sup_reply) - 1;
	assert_rc(tr_sup_reply_decode(&res, m), TR_EINVAL);
	m->type = TR_SUP_NAMED_REPLY;
	m->size = sizeof(buf);
	assert_rc(tr_sup_reply_decode(&res, m), TR_EINVAL);
	tr__msg_free(m);

	/* A refusal and a timeout are answers. */
	assert_rc(tr__msg_refused(&m, TR_PID_NONE, 1, TR_ENOTSUP), TR_OK);
	assert_rc(tr_sup_reply_decode(&res, m), TR_OK);
	assert_rc(res.err, TR_ENOTSUP);
	tr__msg_free(m);
	assert_rc(tr__msg_new_sys(&m, TR_MSG_TIMEOUT, NULL, 0), TR_OK);
	assert_rc(tr_sup_reply_decode(&res, m), TR_OK);
	assert_rc(res.err, TR_ETIMEDOUT);
	tr__msg_free(m);
	assert_rc(tr_sup_reply_decode(NULL, NULL), TR_EINVAL);
	tt_pstop(fx);
}

/* A call that timed out may still be carried out, with the request as it
 * was sent: nothing it named was read from the caller's memory later. */
static void test_timed_out_request_is_self_contained(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg s = {.id = 's', .trap = true};
	static struct tt_wcfg l = {.id = 'l'};
	tr_child_spec specs[] = {tt_wspec("s", &s)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	struct ck_state cs = {.report = tr_port_pid(port)};
	tr_pid clerk = tt_spawn(rt, &clerk_b, &cs);
	char id[8] = "late", name[16] = "late.name";
	tr_child_spec sl = tt_wspec(id, &l);
	tr_sup_request q;
	tr_pid sup, pid, who;

	specs[0].shutdown_ms = 10 * TT_WAIT_MS;
	sl.name = name;
	sup = tt_sup_start(rt, &f, specs, 1);
	/* The supervisor is busy stopping s, which ignores it... */
	assert_rc(tr_sup_req_terminate_child(&q, "s"), TR_OK);
	ck_send(port, clerk, sup, &q, -1);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 1, TT_WAIT_MS));
	/* ...so a start waits, and the caller gives up. */
	assert_rc(tr_sup_start_child(&pid, rt, sup, &sl, NULL, 100, NULL),
	    TR_ETIMEDOUT);
	strcpy(id, "XXXX");
	strcpy(name, "XXXX");
	assert_rc(tr_kill(rt, tt_child(rt, sup, "s"), TR_REASON_KILL), TR_OK);
	assert_rc(ck_wait(port, clerk).res.err, TR_OK);
	assert_true(TT_WAIT_FOR(tt_has_child(rt, sup, "late"), TT_WAIT_MS));
	assert_false(tt_has_child(rt, sup, "XXXX"));
	assert_rc(tr_whereis(&who, rt, "late.name"), TR_OK);
	assert_true(tr_pid_eq(who, tt_child(rt, sup, "late")));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* The reasons reports carry                                                 */
/* ------------------------------------------------------------------------ */

static void test_reports_carry_reason(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	static struct tt_wcfg x = {.id = 'x'}, y = {.id = 'y'};
	static struct tt_wcfg z = {.id = 'z'};
	tr_child_spec one[] = {tt_wspec("a", &a)};
	tr_child_spec two[] = {tt_wspec("x", &x), tt_wspec("y", &y)};
	tr_child_spec last[] = {tt_wspec("z", &z)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, old;

	sup = tt_sup_start(rt, &f, one, 1);
	old = tt_child(rt, sup, "a");
	tt_wcrash(rt, old, 42);
	(void)tt_wait_restart(rt, sup, "a", old);
	TT_WAIT_LOG("child=a pid=", "event=child_terminated", "reason=42 (");
	TT_WAIT_LOG("child=a pid=", "event=restarted", "reason=42 (");
	assert_false(tt_logcap_has(tt_cap, "child=a pid=", "reason=0 ", NULL));
	tt_sup_stop(rt, port, w, sup);

	/* A group restart: the child that crashed, and its bystanders. */
	f = tt_flags(TR_SUP_ONE_FOR_ALL, 5, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, two, 2);
	old = tt_child(rt, sup, "x");
	tt_wcrash(rt, tt_child(rt, sup, "y"), 42);
	(void)tt_wait_restart(rt, sup, "x", old);
	TT_WAIT_LOG("child=y pid=", "event=restarted", "reason=42 (");
	TT_WAIT_LOG("child=x pid=", "event=restarted", "(shutdown)");
	tt_sup_stop(rt, port, w, sup);

	/* Giving up names the offender's reason. */
	f = tt_flags(TR_SUP_ONE_FOR_ONE, 0, LONG_PERIOD);
	sup = tt_sup_start(rt, &f, last, 1);
	(void)tt_monitor(port, w, sup);
	tt_wcrash(rt, tt_child(rt, sup, "z"), 42);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	TT_WAIT_LOG("child=z pid=", "event=reached_max_restart_intensity",
	    "reason=42 (");
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_stop_unlinked_child),
	    TT_PTEST(test_unlinked_child_died_unseen),
	    TT_PTEST(test_unlinked_dynamic_and_group),
	    TT_PTEST(test_stop_race_keeps_reason),
	    TT_PTEST(test_terminate_pid_refused),
	    TT_PTEST(test_ignore_static),
	    TT_PTEST(test_ignore_start_child),
	    TT_PTEST(test_ignore_dynamic),
	    TT_PTEST(test_ignore_on_restart),
	    TT_PTEST(test_ignore_sup_init),
	    TT_PTEST(test_name_already_started),
	    TT_PTEST(test_name_taken_at_sup_start),
	    TT_PTEST(test_restarting_state),
	    TT_PTEST(test_call_timeouts),
	    TT_PTEST(test_admin_from_actor),
	    cmocka_unit_test(test_builders),
	    TT_PTEST(test_reply_decode),
	    TT_PTEST(test_timed_out_request_is_self_contained),
	    TT_PTEST(test_reports_carry_reason),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
