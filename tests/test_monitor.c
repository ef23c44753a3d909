/*
 * Monitor tests, after erts' monitor tests: DOWN carries the reason and its
 * text; monitors stack; a dead target gives DOWN noproc at once; after
 * tr_demonitor returns no DOWN arrives, even racing with the target's
 * death; tr_spawn_monitor is atomic; a monitor is one-way.
 */
#include "probe.h"

enum {
	MSG_GO = 1,
};

static void test_down_reasons(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	struct {
		int reason;
		const char *text;
		bool by_return;
	} cases[] = {
	    {TR_REASON_NORMAL, NULL, false},
	    {TR_REASON_SHUTDOWN, NULL, false},
	    {17, NULL, true},
	    {18, "out of cheese", false},
	    {TR_REASON_NORMAL, "done", false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tr_pid t = tt_probe_spawn(rt, port, false);
		uint64_t ref = tt_monitor(port, w, t);
		struct tt_note n;

		tt_stop_probe(port, t, cases[i].reason, cases[i].text,
		    cases[i].by_return);
		tt_expect_term(port, t, cases[i].reason);
		n = tt_expect_down(port, w, t, cases[i].reason);
		assert_int_equal(n.info.ref, ref);
		assert_string_equal(
		    n.info.text, cases[i].text ? cases[i].text : "");
	}

	/* Killed, even while trapping exits. */
	for (int trap = 0; trap < 2; trap++) {
		tr_pid t = tt_probe_spawn(rt, port, trap);
		uint64_t ref = tt_monitor(port, w, t);
		struct tt_note n;

		assert_rc(tr_kill(rt, t, TR_REASON_KILL), TR_OK);
		n = tt_expect_down(port, w, t, TR_REASON_KILLED);
		assert_int_equal(n.info.ref, ref);
		tt_expect_term(port, t, TR_REASON_KILLED);
	}

	/* A long text is cut to TR_REASON_TEXT_MAX - 1 bytes. */
	{
		char text[150], want[TR_REASON_TEXT_MAX];
		tr_pid t = tt_probe_spawn(rt, port, false);
		struct tt_note n;

		for (size_t i = 0; i < sizeof(text) - 1; i++)
			text[i] = (char)('a' + i % 26);
		text[sizeof(text) - 1] = '\0';
		memcpy(want, text, sizeof(want) - 1);
		want[sizeof(want) - 1] = '\0';
		(void)tt_monitor(port, w, t);
		tt_stop_probe(port, t, 19, text, false);
		n = tt_expect_down(port, w, t, 19);
		assert_string_equal(n.info.text, want);
	}

	/* The monitor did not hurt the watcher. */
	tt_ping(port, w);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_monitors_stack(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_pid t = tt_probe_spawn(rt, port, false);
	uint64_t r1 = tt_monitor(port, w, t);
	uint64_t r2 = tt_monitor(port, w, t);
	struct tt_note n1, n2;

	assert_true(r1 != r2);
	tt_stop_probe(port, t, 12, "twice", false);
	n1 = tt_expect_down(port, w, t, 12);
	n2 = tt_expect_down(port, w, t, 12);
	assert_true((n1.info.ref == r1 && n2.info.ref == r2) ||
	            (n1.info.ref == r2 && n2.info.ref == r1));
	assert_string_equal(n1.info.text, "twice");
	assert_string_equal(n2.info.text, "twice");

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	/* Both fired: neither can be removed any more. */
	assert_rc(tt_demonitor(port, w, r1), TR_ENOENT);
	assert_rc(tt_demonitor(port, w, r2), TR_ENOENT);
	tt_pstop(fx);
}

static void test_monitor_dead_pid(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid dead = tt_dead_pid(rt, port);
	tr_pid w = tt_probe_spawn(rt, port, false);
	uint64_t r1 = tt_monitor(port, w, dead);
	uint64_t r2 = tt_monitor(port, w, dead);
	struct tt_note n1, n2;

	assert_true(r1 != r2);
	n1 = tt_expect_down(port, w, dead, TR_REASON_NOPROC);
	n2 = tt_expect_down(port, w, dead, TR_REASON_NOPROC);
	assert_int_equal(n1.info.ref, r1);
	assert_int_equal(n2.info.ref, r2);
	tt_ping(port, w);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_demonitor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_pid t = tt_probe_spawn(rt, port, false);
	tr_pid u = tt_probe_spawn(rt, port, false);
	uint64_t r1, r2, r3;
	struct tt_note n;

	/* Removed, then the target dies: nothing. */
	r1 = tt_monitor(port, w, t);
	assert_rc(tt_demonitor(port, w, r1), TR_OK);
	assert_rc(tt_demonitor(port, w, r1), TR_ENOENT);
	tt_stop_probe(port, t, 4, NULL, true);
	tt_expect_term(port, t, 4);

	/* Of two monitors, the one left fires. */
	r2 = tt_monitor(port, w, u);
	r3 = tt_monitor(port, w, u);
	assert_rc(tt_demonitor(port, w, r2), TR_OK);
	tt_stop_probe(port, u, 5, NULL, true);
	n = tt_expect_down(port, w, u, 5);
	assert_int_equal(n.info.ref, r3);

	/* Unknown references. */
	assert_rc(tt_demonitor(port, w, 0), TR_ENOENT);
	assert_rc(tt_demonitor(port, w, r3 + 1000), TR_ENOENT);
	assert_rc(tr_demonitor(NULL, r3), TR_EINVAL);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_pstop(fx);
}

/* A victim that crashes with 66 on any message. */
static int handle_crash66(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 66;
}

static const tr_behaviour victim = {
    .name = "victim",
    .handle = handle_crash66,
};

/* Spawns a victim (not linked), monitors it, has it die one way or
 * another, and demonitors. */
static int fn_demonitor_race(tr_ctx *ctx, void *arg)
{
	unsigned mode = *(unsigned *)arg;
	tr_runtime *rt = tr_runtime_of(ctx);
	tr_pid v;
	uint64_t ref;
	int64_t until;
	int rc = tr_spawn(&v, rt, &victim, NULL, NULL);

	if (rc != TR_OK)
		return rc;
	rc = tr_monitor(ctx, &ref, v);
	if (rc != TR_OK)
		return rc;
	switch (mode % 3) {
	case 0:
		TT_ACHECK(tr_kill(rt, v, 66) == TR_OK);
		break;
	case 1:
		TT_ACHECK(tr_send(ctx, v, MSG_GO, NULL, 0) == TR_OK);
		break;
	case 2: /* the DOWN is on its way, or here already */
		TT_ACHECK(tr_kill(rt, v, TR_REASON_KILL) == TR_OK);
		until = tt_now_ms() + 200;
		while (tr_is_alive(rt, v) && tt_now_ms() < until) {
		}
		break;
	}
	return tr_demonitor(ctx, ref);
}

static void test_demonitor_races_target_death(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	_Atomic unsigned downs = 0;
	struct tt_probe tmpl = {.downs = &downs};
	tr_pid w = tt_probe_spawn_cfg(rt, port, false, &tmpl);
	unsigned rounds = (unsigned)tt_env_u64("TT_MONITOR_ROUNDS", 600);

	for (unsigned i = 0; i < rounds; i++)
		assert_rc(tt_run(port, w, fn_demonitor_race, &i), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&downs), 0);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_ping(port, w);
	tt_pstop(fx);
}

/* Crashes at once, in init, with the reason given as its argument. */
static int init_crash(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)state;
	return (int)(intptr_t)arg;
}

static const tr_behaviour init_crasher = {
    .name = "init_crasher",
    .init = init_crash,
    .handle = handle_crash66,
};

struct spawn_arg {
	const tr_behaviour *b;
	void *barg;
	bool send_first;
	tr_pid child;
	uint64_t ref;
};

static int fn_spawn_monitor(tr_ctx *ctx, void *arg)
{
	struct spawn_arg *a = arg;
	int rc = tr_spawn_monitor(ctx, &a->child, &a->ref, a->b, a->barg, NULL);

	if (rc == TR_OK && a->send_first)
		TT_ACHECK(tr_send(ctx, a->child, MSG_GO, NULL, 0) == TR_OK);
	return rc;
}

static void test_spawn_monitor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	unsigned rounds = (unsigned)tt_env_u64("TT_MONITOR_ROUNDS", 200);

	/* However early the child dies, the DOWN has its reason, never
	 * noproc, and the watcher (not linked) lives on. */
	for (unsigned i = 0; i < rounds; i++) {
		struct spawn_arg sa = {
		    .b = (i & 1) ? &victim : &init_crasher,
		    .barg = (void *)(intptr_t)31,
		    .send_first = (i & 1) != 0,
		};
		struct tt_note n;

		assert_rc(tt_run(port, w, fn_spawn_monitor, &sa), TR_OK);
		assert_true(sa.ref != 0);
		n = tt_expect_down(port, w, sa.child, (i & 1) ? 66 : 31);
		assert_int_equal(n.info.ref, sa.ref);
	}
	tt_ping(port, w);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_pstop(fx);
}

/* A monitor that lands in the mailbox of an actor exiting meanwhile is
 * answered when the actor's memory is reclaimed, often by a scheduler that
 * has gone idle; the watcher that answer wakes must still run (it once
 * sat in the idle scheduler's runnext slot while that scheduler parked).
 * A watcher that stops running fails the next tt_run. */
static int fn_monitor(tr_ctx *ctx, void *arg)
{
	uint64_t ref;
	return tr_monitor(ctx, &ref, *(const tr_pid *)arg);
}

static void test_monitor_races_exit(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	_Atomic unsigned downs = 0;
	struct tt_probe tmpl = {.downs = &downs, .quiet = true};
	tr_pid w = tt_probe_spawn_cfg(rt, port, false, &tmpl);
	unsigned rounds = (unsigned)tt_env_u64("TT_MONITOR_ROUNDS", 600) * 4;

	for (unsigned i = 0; i < rounds; i++) {
		tr_pid v;
		assert_rc(tr_spawn(&v, rt, &victim, NULL, NULL), TR_OK);
		assert_rc(tr_port_send(port, v, MSG_GO, NULL, 0), TR_OK);
		assert_rc(tt_run(port, w, fn_monitor, &v), TR_OK);
	}
	assert_true(TT_WAIT_FOR(atomic_load(&downs) == rounds, TT_WAIT_MS));
	tt_ping(port, w);
	tt_pstop(fx);
}

static void test_monitor_one_way(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_pid t = tt_probe_spawn(rt, port, true);
	tr_pid l = tt_probe_spawn(rt, port, true);

	/* The watcher dies: the target (trapping) hears nothing, and later
	 * its own death goes nowhere. */
	(void)tt_monitor(port, w, t);
	tt_stop_probe(port, w, 3, NULL, true);
	tt_expect_term(port, w, 3);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_ping(port, t);

	/* Linked and monitoring: both an EXIT and a DOWN. */
	assert_rc(tt_link(port, l, t), TR_OK);
	(void)tt_monitor(port, l, t);
	tt_stop_probe(port, t, 2, "both", false);
	tt_expect_exit(port, l, t, 2);
	tt_expect_down(port, l, t, 2);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_assert_none(port, TT_P_DOWN, TR_PID_NONE);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_down_reasons),
	    TT_PTEST(test_monitors_stack),
	    TT_PTEST(test_monitor_dead_pid),
	    TT_PTEST(test_demonitor),
	    TT_PTEST(test_demonitor_races_target_death),
	    TT_PTEST(test_spawn_monitor),
	    TT_PTEST(test_monitor_one_way),
	    TT_PTEST(test_monitor_races_exit),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
