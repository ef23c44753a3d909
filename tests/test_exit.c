/*
 * Exit signal tests, after erts' exit signal tests: the reasons (normal,
 * shutdown, kill/killed, noproc, user reasons with text); tr_kill from a
 * thread and from an actor; trapping; a `normal` signal ignored by a
 * non-trapping actor, unless it sent it to itself; cascades along links; a
 * crash stays with its actor, releases its name before the signals go out, and
 * is reported; tr_call to an actor that dies without replying.
 */
#include "probe.h"

enum {
	MSG_CRASH = 1,
	MSG_EXIT_NORMAL,
	MSG_HANG,
};

static void test_exit_reasons(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	struct {
		int reason;
		const char *text;
		bool by_return;
	} cases[] = {
	    {TR_REASON_NORMAL, NULL, false},
	    {TR_REASON_SHUTDOWN, NULL, false},
	    {15, NULL, true},
	    {16, "the reason, in words", false},
	    {TR_REASON_SHUTDOWN, "maintenance", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tr_pid b = tt_probe_spawn(rt, port, false);
		struct tt_note n;

		assert_rc(tt_link(port, a, b), TR_OK);
		tt_stop_probe(port, b, cases[i].reason, cases[i].text,
		    cases[i].by_return);
		tt_expect_term(port, b, cases[i].reason);
		n = tt_expect_exit(port, a, b, cases[i].reason);
		assert_int_equal(n.info.ref, 0);
		assert_string_equal(
		    n.info.text, cases[i].text ? cases[i].text : "");
	}

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_pstop(fx);
}

static int fn_crash_normal(tr_ctx *ctx, void *arg)
{
	(void)arg;
	tr_crash(ctx, TR_REASON_NORMAL);
	return 0;
}

static void test_crash_normal_is_error(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, false);

	assert_rc(tt_link(port, a, b), TR_OK);
	assert_rc(tt_run(port, b, fn_crash_normal, NULL), 0);
	tt_expect_term(port, b, 1);
	tt_expect_exit(port, a, b, 1);
	tt_pstop(fx);
}

static void test_kill_untrappable(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, true);
	tr_pid a = tt_probe_spawn(rt, port, false);

	for (int from_actor = 0; from_actor < 2; from_actor++) {
		/* b traps exits, c does not and is linked to b. */
		tr_pid b = tt_probe_spawn(rt, port, true);
		tr_pid c = tt_probe_spawn(rt, port, false);

		assert_rc(tt_link(port, w, b), TR_OK);
		assert_rc(tt_link(port, c, b), TR_OK);
		if (from_actor) {
			struct tt_pid_arg k = {
			    .pid = b, .reason = TR_REASON_KILL};

			assert_rc(tt_run(port, a, tt_fn_kill, &k), TR_OK);
		} else {
			assert_rc(tr_kill(rt, b, TR_REASON_KILL), TR_OK);
		}
		/* b dies of it with `killed`; its links see `killed`, which
		 * is an ordinary reason: c dies of it too. */
		tt_expect_term(port, b, TR_REASON_KILLED);
		tt_expect_exit(port, w, b, TR_REASON_KILLED);
		tt_expect_term(port, c, TR_REASON_KILLED);
	}

	/* `killed` sent as a reason is not a kill: it can be trapped. */
	{
		tr_pid b = tt_probe_spawn(rt, port, true);

		assert_rc(tr_kill(rt, b, TR_REASON_KILLED), TR_OK);
		tt_expect_exit(port, b, TR_PID_NONE, TR_REASON_KILLED);
		tt_ping(port, b);
	}

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_ping(port, a);
	tt_pstop(fx);
}

static void test_kill_from_thread_and_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid b = tt_probe_spawn(rt, port, true);
	tr_pid c = tt_probe_spawn(rt, port, false);
	tr_pid m = tt_probe_spawn(rt, port, false);
	struct tt_pid_arg k = {.pid = b, .reason = 5};
	struct tt_note n;
	uint64_t ref;

	/* To a trapping actor: an EXIT from no one, then from a. */
	assert_rc(tr_kill(rt, b, 5), TR_OK);
	n = tt_expect_exit(port, b, TR_PID_NONE, 5);
	assert_string_equal(n.info.text, "");
	assert_rc(tt_run(port, a, tt_fn_kill, &k), TR_OK);
	tt_expect_exit(port, b, a, 5);
	tt_ping(port, b);

	/* To one that does not trap: it dies with the reason; the sender,
	 * not linked, lives on. */
	ref = tt_monitor(port, m, c);
	k.pid = c;
	k.reason = 6;
	assert_rc(tt_run(port, a, tt_fn_kill, &k), TR_OK);
	tt_expect_term(port, c, 6);
	n = tt_expect_down(port, m, c, 6);
	assert_int_equal(n.info.ref, ref);
	tt_ping(port, a);

	/* Errors. */
	assert_rc(tr_kill(rt, c, 6), TR_ENOPROC);
	assert_rc(tr_kill(NULL, b, 6), TR_EINVAL);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_normal_signal_ignored(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid b = tt_probe_spawn(rt, port, true);
	tr_pid c = tt_probe_spawn(rt, port, false);
	tr_pid d = tt_probe_spawn(rt, port, false);
	struct tt_pid_arg k = {.pid = a, .reason = TR_REASON_NORMAL};

	/* From a thread and from an actor: ignored unless trapping. */
	assert_rc(tr_kill(rt, a, TR_REASON_NORMAL), TR_OK);
	assert_rc(tt_run(port, d, tt_fn_kill, &k), TR_OK);
	assert_rc(tr_kill(rt, b, TR_REASON_NORMAL), TR_OK);
	tt_expect_exit(port, b, TR_PID_NONE, TR_REASON_NORMAL);

	/* A linked actor that ends normally does not take c with it. */
	assert_rc(tt_link(port, c, d), TR_OK);
	tt_stop_probe(port, d, TR_REASON_NORMAL, NULL, false);
	tt_expect_term(port, d, TR_REASON_NORMAL);

	tt_quiesce(rt);
	tt_ping(port, a);
	tt_ping(port, c);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_pstop(fx);
}

static int fn_exit_self_normal(tr_ctx *ctx, void *arg)
{
	(void)arg;
	return tr_kill(tr_runtime_of(ctx), tr_self(ctx), TR_REASON_NORMAL);
}

/* exit(self(), normal), as erl_link_SUITE's self_exit: the one normal exit
 * signal that a process which does not trap exits acts on. It ends with
 * reason normal (no crash report), its links get EXIT normal and its
 * monitors DOWN normal; one that traps gets an EXIT message from itself
 * and lives on. */
static void test_normal_exit_self(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid w = tt_probe_spawn(rt, port, true);
	tr_pid m = tt_probe_spawn(rt, port, false);
	tr_pid t = tt_probe_spawn(rt, port, true);
	struct tt_note n;
	uint64_t ref;
	char pid_a[32];

	snprintf(pid_a, sizeof(pid_a), "%u.%u", a.slot, a.gen);
	assert_rc(tt_link(port, w, a), TR_OK);
	ref = tt_monitor(port, m, a);
	assert_rc(tt_run(port, a, fn_exit_self_normal, NULL), TR_OK);
	tt_expect_term(port, a, TR_REASON_NORMAL);
	tt_expect_exit(port, w, a, TR_REASON_NORMAL);
	n = tt_expect_down(port, m, a, TR_REASON_NORMAL);
	assert_int_equal(n.info.ref, ref);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, a), TT_WAIT_MS));

	/* Trapping: a message from itself. */
	assert_rc(tt_run(port, t, fn_exit_self_normal, NULL), TR_OK);
	n = tt_expect_exit(port, t, t, TR_REASON_NORMAL);
	assert_int_equal(n.info.ref, 0);
	tt_ping(port, t);

	/* The same signal from another actor still changes nothing. */
	struct tt_pid_arg k = {.pid = m, .reason = TR_REASON_NORMAL};
	assert_rc(tt_run(port, t, tt_fn_kill, &k), TR_OK);
	tt_quiesce(rt);
	tt_ping(port, m);
	tt_ping(port, w);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	assert_false(tt_logcap_has(tt_cap, pid_a, NULL));
	tt_pstop(fx);
}

static void test_trap_exit_toggle(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, false);

	/* tr_trap_exit answers the previous setting. */
	assert_int_equal(tt_run(port, a, tt_fn_trap_on, NULL), 1);
	assert_int_equal(tt_run(port, b, tt_fn_trap_off, NULL), 0);
	assert_int_equal(tt_run(port, b, tt_fn_trap_on, NULL), 0);
	assert_int_equal(tt_run(port, b, tt_fn_trap_on, NULL), 1);

	/* b traps now: a signal is a message. */
	assert_rc(tr_kill(rt, b, 8), TR_OK);
	tt_expect_exit(port, b, TR_PID_NONE, 8);

	/* a stops trapping: the same signal kills it. */
	assert_int_equal(tt_run(port, a, tt_fn_trap_off, NULL), 1);
	assert_rc(tr_kill(rt, a, 8), TR_OK);
	tt_expect_term(port, a, 8);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_ping(port, b);
	tt_pstop(fx);
}

static void test_cascade(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid b = tt_probe_spawn(rt, port, false);
	tr_pid c = tt_probe_spawn(rt, port, false);
	tr_pid w = tt_probe_spawn(rt, port, true);
	tr_pid m = tt_probe_spawn(rt, port, false);
	tr_pid bystander = tt_probe_spawn(rt, port, false);
	struct tt_note n;

	/* a - b - c - w(trapping); m monitors c. */
	assert_rc(tt_link(port, a, b), TR_OK);
	assert_rc(tt_link(port, c, b), TR_OK);
	assert_rc(tt_link(port, w, c), TR_OK);
	(void)tt_monitor(port, m, c);

	tt_stop_probe(port, a, 9, "first domino", false);
	tt_expect_term(port, a, 9);
	tt_expect_term(port, b, 9);
	tt_expect_term(port, c, 9);
	n = tt_expect_exit(port, w, c, 9);
	assert_string_equal(n.info.text, "first domino");
	n = tt_expect_down(port, m, c, 9);
	assert_string_equal(n.info.text, "first domino");

	/* Only the linked ones. */
	tt_quiesce(rt);
	tt_ping(port, w);
	tt_ping(port, m);
	tt_ping(port, bystander);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_crash_isolated(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid b = tt_probe_spawn(rt, port, false);
	tr_runtime_stats before = TR_STRUCT_INIT(tr_runtime_stats),
	                 after = TR_STRUCT_INIT(tr_runtime_stats);

	tt_quiesce(rt);
	before = tt_stats(rt);
	tt_stop_probe(port, a, 11, NULL, true);
	/* terminate ran, with the reason. */
	tt_expect_term(port, a, 11);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, a), TT_WAIT_MS));
	tt_quiesce(rt);
	after = tt_stats(rt);
	assert_int_equal(after.crashes, before.crashes + 1);
	assert_int_equal(after.actors_alive + 1, before.actors_alive);
	tt_ping(port, b);
	assert_rc(tr_post(rt, a, TT_P_PING, NULL, 0), TR_ENOPROC);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Names are released before the signals go out                             */
/* ------------------------------------------------------------------------ */

static const char victim_name[] = "victim";

/* On the EXIT of the named victim: its name is free and can be taken. */
static int hook_take_name(tr_ctx *ctx, void *arg, const tr_exit_info *info)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	tr_pid got;

	(void)arg;
	(void)info;
	if (tr_whereis(&got, rt, victim_name) != TR_ENOENT)
		return 1;
	if (tr_register(rt, victim_name, tr_self(ctx)) != TR_OK)
		return 2;
	if (tr_whereis(&got, rt, victim_name) != TR_OK ||
	    !tr_pid_eq(got, tr_self(ctx)))
		return 3;
	if (tr_unregister(rt, victim_name) != TR_OK)
		return 4;
	return 0;
}

/* On the DOWN of the named victim: its name is free. */
static int hook_name_free(tr_ctx *ctx, void *arg, const tr_exit_info *info)
{
	tr_pid got;

	(void)arg;
	(void)info;
	return tr_whereis(&got, tr_runtime_of(ctx), victim_name) == TR_ENOENT
	           ? 0
	           : 1;
}

static void test_name_released_before_signals(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	struct tt_probe linked = {.hook = hook_take_name};
	struct tt_probe watcher = {.hook = hook_name_free};
	tr_pid w = tt_probe_spawn_cfg(rt, port, true, &linked);
	tr_pid m = tt_probe_spawn_cfg(rt, port, false, &watcher);
	unsigned rounds = (unsigned)tt_env_u64("TT_EXIT_ROUNDS", 200);

	for (unsigned i = 0; i < rounds; i++) {
		tr_pid v = tt_probe_spawn(rt, port, false);
		struct tt_note n;

		assert_rc(tr_register(rt, victim_name, v), TR_OK);
		if (i & 1)
			(void)tt_monitor(port, m, v);
		else
			assert_rc(tt_link(port, w, v), TR_OK);
		tt_stop_probe(port, v, 13, NULL, (i & 2) != 0);
		if (i & 1)
			n = tt_expect_down(port, m, v, 13);
		else
			n = tt_expect_exit(port, w, v, 13);
		assert_int_equal(n.hook_rc, 0);
		tt_expect_term(port, v, 13);
	}
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Crash reports                                                             */
/* ------------------------------------------------------------------------ */

static void test_crash_report(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	tr_pid b = tt_probe_spawn(rt, port, false);
	tr_pid c = tt_probe_spawn(rt, port, false);
	tr_pid d = tt_probe_spawn(rt, port, false);
	char pid_a[32], pid_b[32], type_dec[16], type_hex[16];

	snprintf(pid_a, sizeof(pid_a), "%u.%u", a.slot, a.gen);
	snprintf(pid_b, sizeof(pid_b), "%u.%u", b.slot, b.gen);
	snprintf(type_dec, sizeof(type_dec), "%u", (unsigned)TT_P_STOP);
	snprintf(type_hex, sizeof(type_hex), "%#x", (unsigned)TT_P_STOP);

	assert_rc(tr_register(rt, "reporter", a), TR_OK);
	assert_rc(tr_register(rt, "quiet-normal", c), TR_OK);
	assert_rc(tr_register(rt, "quiet-shutdown", d), TR_OK);

	/* With a text, and by return value without one. */
	tt_stop_probe(port, a, 42, "disk on fire", false);
	tt_stop_probe(port, b, 43, NULL, true);
	tt_expect_term(port, a, 42);
	tt_expect_term(port, b, 43);
	if (!TT_WAIT_FOR(tt_logcap_has(tt_cap, pid_a, "reporter", "42",
	                     "disk on fire", type_dec, NULL) ||
	                     tt_logcap_has(tt_cap, pid_a, "reporter", "42",
	                         "disk on fire", type_hex, NULL),
	        TT_WAIT_MS)) {
		tt_logcap_dump(tt_cap);
		fail_msg("no crash report for the named actor");
	}
	if (!TT_WAIT_FOR(
	        tt_logcap_has(tt_cap, pid_b, "43", NULL), TT_WAIT_MS)) {
		tt_logcap_dump(tt_cap);
		fail_msg("no crash report for the unnamed actor");
	}

	/* normal and shutdown are not crashes. */
	tt_stop_probe(port, c, TR_REASON_NORMAL, NULL, false);
	tt_stop_probe(port, d, TR_REASON_SHUTDOWN, NULL, false);
	tt_expect_term(port, c, TR_REASON_NORMAL);
	tt_expect_term(port, d, TR_REASON_SHUTDOWN);
	tt_quiesce(rt);
	assert_false(tt_logcap_has(tt_cap, "quiet-normal", NULL));
	assert_false(tt_logcap_has(tt_cap, "quiet-shutdown", NULL));
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* tr_call to an actor that dies without replying                            */
/* ------------------------------------------------------------------------ */

static _Atomic int hang_seen;

static int mute_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	switch (m->type) {
	case MSG_CRASH:
		return 50;
	case MSG_EXIT_NORMAL:
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	case MSG_HANG:
		atomic_store(&hang_seen, 1);
		return 0;
	}
	return 0;
}

static const tr_behaviour mute = {
    .name = "mute",
    .handle = mute_handle,
};

struct killer {
	tr_runtime *rt;
	tr_pid pid;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	if (TT_WAIT_FOR(atomic_load(&hang_seen) != 0, TT_WAIT_MS))
		TT_ACHECK(tr_kill(k->rt, k->pid, TR_REASON_KILL) == TR_OK);
	return NULL;
}

static void test_call_to_dying_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	const uint32_t types[] = {MSG_CRASH, MSG_EXIT_NORMAL, MSG_HANG};
	/* Long enough that waiting for it would show as TR_ETIMEDOUT. */
	const int64_t timeout = 4 * TT_WAIT_MS;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		tr_pid p = tt_spawn(rt, &mute, NULL);
		struct killer k = {rt, p};
		pthread_t th;
		tr_msg *r = NULL;

		/* The hanging one is killed by another thread while the
		 * call waits. */
		atomic_store(&hang_seen, 0);
		if (types[i] == MSG_HANG)
			assert_int_equal(
			    pthread_create(&th, NULL, killer_main, &k), 0);
		assert_rc(
		    tr_call(&r, rt, p, types[i], NULL, 0, timeout), TR_ENOPROC);
		assert_null(r);
		if (types[i] == MSG_HANG)
			pthread_join(th, NULL);
		assert_true(TT_WAIT_FOR(!tr_is_alive(rt, p), TT_WAIT_MS));
	}

	/* A pid that is dead already. */
	{
		tr_pid p = tt_spawn(rt, &mute, NULL);
		tr_msg *r = NULL;

		assert_rc(tr_kill(rt, p, TR_REASON_KILL), TR_OK);
		assert_true(TT_WAIT_FOR(!tr_is_alive(rt, p), TT_WAIT_MS));
		assert_rc(
		    tr_call(&r, rt, p, MSG_HANG, NULL, 0, timeout), TR_ENOPROC);
	}

	tt_quiesce(rt);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_exit_reasons),
	    TT_PTEST(test_crash_normal_is_error),
	    TT_PTEST(test_kill_untrappable),
	    TT_PTEST(test_kill_from_thread_and_actor),
	    TT_PTEST(test_normal_signal_ignored),
	    TT_PTEST(test_normal_exit_self),
	    TT_PTEST(test_trap_exit_toggle),
	    TT_PTEST(test_cascade),
	    TT_PTEST(test_crash_isolated),
	    TT_PTEST(test_name_released_before_signals),
	    TT_PTEST(test_crash_report),
	    TT_PTEST(test_call_to_dying_actor),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
