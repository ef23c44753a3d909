/*
 * Supervisor tests, after stdlib's supervisor_SUITE: start and stop order,
 * the four strategies, restart types, intensity and its sliding window,
 * escalation through nested supervisors, a child whose restart keeps
 * failing, and the three kinds of child shutdown.
 */
#include "sup_common.h"

#define LONG_PERIOD 3600000u /* no restart falls out of the window */

static void test_start_and_stop_order(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_wspec("b", &b), tt_wspec("c", &c)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_info info[4] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n = 0;
	tr_pid sup;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	/* All started, in order, before tr_sup_start returned. */
	tt_assert_events(&evlog, 0, "Ia Ib Ic");
	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 3);
	assert_string_equal(info[0].id, "a");
	assert_string_equal(info[1].id, "b");
	assert_string_equal(info[2].id, "c");
	for (size_t i = 0; i < 3; i++) {
		assert_true(tr_is_alive(rt, info[i].pid));
		assert_int_equal(info[i].type, TR_CHILD_WORKER);
	}

	/* Stopped in reverse order, with reason shutdown, before the
	 * supervisor's own DOWN. */
	tt_sup_stop(rt, port, w, sup);
	tt_assert_events(&evlog, 3, "Tc:s Tb:s Ta:s");
	assert_int_equal(atomic_load(&a.running) + atomic_load(&b.running) +
	                     atomic_load(&c.running),
	    0);
	assert_rc(tr_sup_count_children(
	              &(tr_child_counts)TR_STRUCT_INIT(tr_child_counts), rt,
	              sup, TT_WAIT_MS),
	    TR_ENOPROC);
	tt_pstop(fx);
}

static void test_one_for_one(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_wspec("b", &b), tt_wspec("c", &c)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, pa, pb, pc, nb;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	pa = tt_child(rt, sup, "a");
	pb = tt_child(rt, sup, "b");
	pc = tt_child(rt, sup, "c");

	tt_wcrash(rt, pb, 7);
	nb = tt_wait_restart(rt, sup, "b", pb);
	assert_true(tr_pid_eq(tt_child(rt, sup, "a"), pa));
	assert_true(tr_pid_eq(tt_child(rt, sup, "c"), pc));
	assert_true(tr_is_alive(rt, nb));
	tt_assert_events(&evlog, 3, "Tb:e Ib");

	/* Killed from outside counts the same. */
	assert_rc(tr_kill(rt, pa, TR_REASON_KILL), TR_OK);
	(void)tt_wait_restart(rt, sup, "a", pa);
	assert_true(tr_pid_eq(tt_child(rt, sup, "b"), nb));
	assert_true(tr_pid_eq(tt_child(rt, sup, "c"), pc));
	tt_assert_events(&evlog, 5, "Ta:k Ia");

	/* A restart is reported. */
	assert_true(TT_WAIT_FOR(
	    tt_logcap_has(tt_cap, "SUPERVISOR REPORT", NULL), TT_WAIT_MS));

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_one_for_all(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_wspec("b", &b), tt_wspec("c", &c)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 5, LONG_PERIOD);
	tr_pid sup, pa, pb, pc;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	pa = tt_child(rt, sup, "a");
	pb = tt_child(rt, sup, "b");
	pc = tt_child(rt, sup, "c");

	/* b crashes: the others stop in reverse start order, then all
	 * start in start order. */
	tt_wcrash(rt, pb, 7);
	(void)tt_wait_restart(rt, sup, "a", pa);
	(void)tt_wait_restart(rt, sup, "b", pb);
	(void)tt_wait_restart(rt, sup, "c", pc);
	tt_assert_events(&evlog, 3, "Tb:e Tc:s Ta:s Ia Ib Ic");
	assert_false(tr_is_alive(rt, pa));
	assert_false(tr_is_alive(rt, pc));

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_rest_for_one(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	static struct tt_wcfg d = {.id = 'd', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b),
	    tt_wspec("c", &c), tt_wspec("d", &d)};
	tr_sup_flags f = tt_flags(TR_SUP_REST_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup, pa, pb, pc, pd;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 4);
	pa = tt_child(rt, sup, "a");
	pb = tt_child(rt, sup, "b");
	pc = tt_child(rt, sup, "c");
	pd = tt_child(rt, sup, "d");

	tt_wcrash(rt, pb, 7);
	(void)tt_wait_restart(rt, sup, "b", pb);
	(void)tt_wait_restart(rt, sup, "c", pc);
	(void)tt_wait_restart(rt, sup, "d", pd);
	assert_true(tr_pid_eq(tt_child(rt, sup, "a"), pa));
	tt_assert_events(&evlog, 4, "Tb:e Td:s Tc:s Ib Ic Id");

	/* The last one: only itself. */
	pd = tt_child(rt, sup, "d");
	pc = tt_child(rt, sup, "c");
	tt_wcrash(rt, pd, 8);
	(void)tt_wait_restart(rt, sup, "d", pd);
	assert_true(tr_pid_eq(tt_child(rt, sup, "c"), pc));
	tt_assert_events(&evlog, 10, "Td:e Id");

	tt_sup_stop(rt, port, w, sup);
	tt_assert_events(&evlog, 12, "Td:s Tc:s Tb:s Ta:s");
	tt_pstop(fx);
}

static void test_restart_types(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg p = {.id = 'p', .log = &evlog};
	static struct tt_wcfg t = {.id = 't', .log = &evlog};
	static struct tt_wcfg m = {.id = 'm', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("perm", &p), tt_wspec("trans", &t), tt_wspec("temp", &m)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 20, LONG_PERIOD);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_pid sup, pid, old;

	specs[1].restart = TR_RESTART_TRANSIENT;
	specs[2].restart = TR_RESTART_TEMPORARY;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);

	/* permanent: restarted even after a normal exit. */
	old = tt_child(rt, sup, "perm");
	tt_wcrash(rt, old, TR_REASON_NORMAL);
	(void)tt_wait_restart(rt, sup, "perm", old);
	old = tt_child(rt, sup, "perm");
	tt_wcrash(rt, old, TR_REASON_SHUTDOWN);
	(void)tt_wait_restart(rt, sup, "perm", old);

	/* transient: not after normal or shutdown (the spec stays), but
	 * after a crash. */
	const int quiet[] = {TR_REASON_NORMAL, TR_REASON_SHUTDOWN};
	for (size_t i = 0; i < 2; i++) {
		old = tt_child(rt, sup, "trans");
		assert_false(tr_pid_is_none(old));
		tt_wcrash(rt, old, quiet[i]);
		assert_true(TT_WAIT_FOR(
		    tr_pid_is_none(tt_child(rt, sup, "trans")), TT_WAIT_MS));
		tt_quiesce(rt);
		assert_true(tr_pid_is_none(tt_child(rt, sup, "trans")));
		cnt = tt_counts(rt, sup);
		assert_int_equal(cnt.specs, 3);
		assert_int_equal(cnt.active, 2);
		assert_rc(tr_sup_restart_child(
		              &pid, rt, sup, "trans", TT_WAIT_MS, NULL),
		    TR_OK);
		assert_true(tr_is_alive(rt, pid));
	}
	old = tt_child(rt, sup, "trans");
	tt_wcrash(rt, old, 9);
	(void)tt_wait_restart(rt, sup, "trans", old);

	/* temporary: never restarted, and its spec is gone. */
	old = tt_child(rt, sup, "temp");
	tt_wcrash(rt, old, 9);
	assert_true(TT_WAIT_FOR(!tt_has_child(rt, sup, "temp"), TT_WAIT_MS));
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 2);
	assert_int_equal(atomic_load(&m.starts), 1);
	assert_rc(tr_sup_restart_child(&pid, rt, sup, "temp", TT_WAIT_MS, NULL),
	    TR_ENOENT);

	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&p.running) + atomic_load(&t.running) +
	                     atomic_load(&m.running),
	    0);
	tt_pstop(fx);
}

static void test_temporary_bystander(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg m = {.id = 'm', .log = &evlog};
	static struct tt_wcfg c = {.id = 'c', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_wspec("temp", &m), tt_wspec("c", &c)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 5, LONG_PERIOD);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	tr_pid sup, pa, pc;

	specs[1].restart = TR_RESTART_TEMPORARY;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);
	pa = tt_child(rt, sup, "a");
	pc = tt_child(rt, sup, "c");

	/* a crashes: the temporary child is stopped as a bystander, not
	 * restarted, and forgotten. */
	tt_wcrash(rt, pa, 7);
	(void)tt_wait_restart(rt, sup, "a", pa);
	(void)tt_wait_restart(rt, sup, "c", pc);
	tt_assert_events(&evlog, 3, "Ta:e Tc:s Tm:s Ia Ic");
	assert_false(tt_has_child(rt, sup, "temp"));
	cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 2);
	assert_int_equal(atomic_load(&m.starts), 1);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Intensity                                                                 */
/* ------------------------------------------------------------------------ */

static void test_intensity_exceeded(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {.id = 'b', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 2, LONG_PERIOD);
	tr_pid sup, old;
	uint64_t ref;
	struct tt_note n;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 2);
	ref = tt_monitor(port, w, sup);

	/* MaxR = 2: two restarts are fine... */
	for (int i = 0; i < 2; i++) {
		old = tt_child(rt, sup, "a");
		tt_wcrash(rt, old, 7);
		(void)tt_wait_restart(rt, sup, "a", old);
	}
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);

	/* ...the third is one too many: everything stops, the supervisor
	 * exits with shutdown. */
	tt_wstop(rt, tt_child(rt, sup, "a"), 7);
	n = tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	assert_int_equal(n.info.ref, ref);
	assert_int_equal(atomic_load(&a.running), 0);
	assert_int_equal(atomic_load(&b.running), 0);
	assert_int_equal(atomic_load(&a.starts), 3);
	assert_int_equal(atomic_load(&b.last_reason), TR_REASON_SHUTDOWN);
	assert_true(TT_WAIT_FOR(
	    tt_logcap_has(tt_cap, "SUPERVISOR REPORT", NULL), TT_WAIT_MS));
	tt_pstop(fx);
}

static void test_intensity_window_slides(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 200);
	tr_pid sup, old;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 1);
	(void)tt_monitor(port, w, sup);

	/* One restart per 200 ms is allowed; crashes spaced by more than
	 * that never add up. */
	for (int i = 0; i < 4; i++) {
		old = tt_child(rt, sup, "a");
		tt_wcrash(rt, old, 7);
		(void)tt_wait_restart(rt, sup, "a", old);
		tt_sleep_ms(300);
	}
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	assert_true(tr_is_alive(rt, sup));
	assert_int_equal(atomic_load(&a.starts), 5);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_escalation(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg x = {.id = 'x', .log = &evlog};
	static struct tt_wcfg y = {.id = 'y', .log = &evlog};
	tr_child_spec inner_specs[] = {tt_wspec("x", &x)};
	tr_sup_args inner = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, LONG_PERIOD),
	    .specs = inner_specs,
	    .nspecs = 1,
	};
	tr_child_spec outer_specs[] = {
	    tt_wspec("y", &y), tt_supspec("inner", &inner)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, LONG_PERIOD);
	tr_pid outer, in1, in2, x1, x2, py;
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);

	reset_log();
	outer = tt_sup_start(rt, &f, outer_specs, 2);
	(void)tt_monitor(port, w, outer);
	in1 = tt_child(rt, outer, "inner");
	(void)tt_monitor(port, w, in1);
	py = tt_child(rt, outer, "y");
	cnt = tt_counts(rt, outer);
	assert_int_equal(cnt.supervisors, 1);
	assert_int_equal(cnt.workers, 1);

	/* x crashes twice: the inner supervisor gives up... */
	x1 = tt_child(rt, in1, "x");
	tt_wcrash(rt, x1, 7);
	x1 = tt_wait_restart(rt, in1, "x", x1);
	tt_wstop(rt, x1, 7);
	tt_expect_down(port, w, in1, TR_REASON_SHUTDOWN);

	/* ...the outer one restarts it, with a new x; y is untouched. */
	in2 = tt_wait_restart(rt, outer, "inner", in1);
	x2 = tt_child(rt, in2, "x");
	assert_false(tr_pid_is_none(x2));
	assert_false(tr_pid_eq(x2, x1));
	assert_true(tr_is_alive(rt, x2));
	assert_true(tr_pid_eq(tt_child(rt, outer, "y"), py));
	assert_int_equal(atomic_load(&x.running), 1);

	/* Again: now the outer supervisor is over its intensity too. */
	(void)tt_monitor(port, w, in2);
	tt_wcrash(rt, x2, 7);
	x2 = tt_wait_restart(rt, in2, "x", x2);
	tt_wstop(rt, x2, 7);
	tt_expect_down(port, w, in2, TR_REASON_SHUTDOWN);
	tt_expect_down(port, w, outer, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&x.running), 0);
	assert_int_equal(atomic_load(&y.running), 0);
	tt_pstop(fx);
}

static void test_restart_keeps_failing(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg b = {
	    .id = 'b', .log = &evlog, .fail_from = 2, .fail_reason = 99};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 3, LONG_PERIOD);
	tr_pid sup;

	reset_log();
	sup = tt_sup_start(rt, &f, specs, 2);
	(void)tt_monitor(port, w, sup);

	/* b's first start worked; once it crashes, every restart fails
	 * until the supervisor gives up. */
	tt_wcrash(rt, tt_child(rt, sup, "b"), 7);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	assert_true(atomic_load(&b.starts) >= 2);
	assert_int_equal(atomic_load(&b.running), 0);
	assert_int_equal(atomic_load(&a.running), 0);
	assert_int_equal(atomic_load(&a.last_reason), TR_REASON_SHUTDOWN);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Shutdown                                                                  */
/* ------------------------------------------------------------------------ */

static void test_shutdown_kinds(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* k: brutal kill, traps exits; s: stubborn, traps exits and never
	 * stops on shutdown; o: obedient, stops on shutdown. */
	static struct tt_wcfg k = {.id = 'k', .log = &evlog, .trap = true};
	static struct tt_wcfg s = {.id = 's', .log = &evlog, .trap = true};
	static struct tt_wcfg o = {.id = 'o', .log = &evlog};
	tr_child_spec specs[] = {
	    tt_wspec("k", &k), tt_wspec("s", &s), tt_wspec("o", &o)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup, pid;

	specs[0].shutdown_ms = TR_SHUTDOWN_BRUTAL_KILL;
	specs[1].shutdown_ms = 100;
	specs[2].shutdown_ms = 60000;
	reset_log();
	sup = tt_sup_start(rt, &f, specs, 3);

	/* Brutal kill: killed at once, no shutdown signal first. */
	assert_rc(tr_sup_terminate_child(rt, sup, "k", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&k.running), 0);
	assert_int_equal(atomic_load(&k.last_reason), TR_REASON_KILLED);
	assert_int_equal(atomic_load(&k.exits_seen), 0);

	/* A timeout: a shutdown signal (trapped and ignored), then a kill. */
	assert_rc(tr_sup_terminate_child(rt, sup, "s", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&s.running), 0);
	assert_int_equal(atomic_load(&s.exits_seen), 1);
	assert_int_equal(atomic_load(&s.last_exit_reason), TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&s.last_reason), TR_REASON_KILLED);

	/* A child that obeys stops with shutdown, long before its timeout. */
	assert_rc(tr_sup_terminate_child(rt, sup, "o", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&o.running), 0);
	assert_int_equal(atomic_load(&o.last_reason), TR_REASON_SHUTDOWN);
	tt_assert_events(&evlog, 3, "Tk:k Xs Ts:k To:s");

	/* The specs stay; the same holds when the supervisor stops. */
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "s", TT_WAIT_MS, NULL), TR_OK);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "k", TT_WAIT_MS, NULL), TR_OK);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "o", TT_WAIT_MS, NULL), TR_OK);
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&s.running), 0);
	assert_int_equal(atomic_load(&s.last_reason), TR_REASON_KILLED);
	assert_int_equal(atomic_load(&k.last_reason), TR_REASON_KILLED);
	assert_int_equal(atomic_load(&o.last_reason), TR_REASON_SHUTDOWN);
	tt_pstop(fx);
}

static void test_shutdown_infinity_nested(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg s = {.id = 's', .log = &evlog, .trap = true};
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg z = {.id = 'z', .log = &evlog};
	tr_child_spec inner_specs[] = {tt_wspec("a", &a), tt_wspec("s", &s)};
	tr_sup_args inner = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000),
	    .specs = inner_specs,
	    .nspecs = 2,
	};
	tr_child_spec outer_specs[] = {
	    tt_supspec("inner", &inner), tt_wspec("z", &z)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid outer, in;

	inner_specs[1].shutdown_ms = 200;
	reset_log();
	outer = tt_sup_start(rt, &f, outer_specs, 2);
	in = tt_child(rt, outer, "inner");
	(void)tt_monitor(port, w, in);
	tt_assert_events(&evlog, 0, "Ia Is Iz");

	/* The outer supervisor waits for the inner one, which waits for its
	 * stubborn child: when the outer's DOWN comes, the whole tree is
	 * gone, in reverse order. */
	tt_sup_stop(rt, port, w, outer);
	tt_expect_down(port, w, in, TR_REASON_SHUTDOWN);
	assert_int_equal(atomic_load(&s.running) + atomic_load(&a.running) +
	                     atomic_load(&z.running),
	    0);
	tt_assert_events(&evlog, 3, "Tz:s Xs Ts:k Ta:s");
	tt_pstop(fx);
}

static void test_runtime_stop_with_live_tree(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	static struct tt_wcfg a = {.id = 'a', .log = &evlog};
	static struct tt_wcfg x = {.id = 'x', .log = &evlog};
	tr_child_spec inner_specs[] = {tt_wspec("x", &x)};
	tr_sup_args inner = {
	    .flags = tt_flags(TR_SUP_ONE_FOR_ALL, 1, 5000),
	    .specs = inner_specs,
	    .nspecs = 1,
	};
	tr_child_spec specs[] = {
	    tt_wspec("a", &a), tt_supspec("inner", &inner)};
	tr_sup_flags f = tt_flags(TR_SUP_REST_FOR_ONE, 1, 5000);

	reset_log();
	(void)tt_sup_start(rt, &f, specs, 2);
	assert_int_equal(atomic_load(&a.running) + atomic_load(&x.running), 2);
	/* Stopping the runtime ends every actor, supervisors included,
	 * each terminate running once. */
	tt_pstop(fx);
	assert_int_equal(atomic_load(&a.running) + atomic_load(&x.running), 0);
	assert_int_equal(atomic_load(&a.terms) + atomic_load(&x.terms), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_start_and_stop_order),
	    TT_PTEST(test_one_for_one),
	    TT_PTEST(test_one_for_all),
	    TT_PTEST(test_rest_for_one),
	    TT_PTEST(test_restart_types),
	    TT_PTEST(test_temporary_bystander),
	    TT_PTEST(test_intensity_exceeded),
	    TT_PTEST(test_intensity_window_slides),
	    TT_PTEST(test_escalation),
	    TT_PTEST(test_restart_keeps_failing),
	    TT_PTEST(test_shutdown_kinds),
	    TT_PTEST(test_shutdown_infinity_nested),
	    TT_PTEST(test_runtime_stop_with_live_tree),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
