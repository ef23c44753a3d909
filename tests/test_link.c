/*
 * Link tests, after erts' link tests: links are bidirectional, idempotent
 * and one per pair; a link to self does nothing; tr_spawn_link is atomic;
 * linking a dead pid yields noproc; after tr_unlink returns no EXIT of that
 * link arrives, even racing with the peer's death.
 */
#include "probe.h"

enum {
	MSG_GO = 1,
};

/* Crashes at once, in init, with the reason given as its argument. */
static int init_crash(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)state;
	return (int)(intptr_t)arg;
}

static int handle_none(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour init_crasher = {
    .name = "init_crasher",
    .init = init_crash,
    .handle = handle_none,
};

/* Crashes with reason 33 on its first message. */
static int handle_crash(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 33;
}

static const tr_behaviour msg_crasher = {
    .name = "msg_crasher",
    .handle = handle_crash,
};

/* ------------------------------------------------------------------------ */

static void test_link_both_ways(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, true);
	tr_pid c = tt_probe_spawn(rt, port, true);

	/* a links b; b's death reaches a. */
	assert_rc(tt_link(port, a, b), TR_OK);
	tt_stop_probe(port, b, 42, NULL, true);
	tt_expect_term(port, b, 42);
	tt_expect_exit(port, a, b, 42);

	/* a links c; a's death reaches c: the link works both ways. */
	assert_rc(tt_link(port, a, c), TR_OK);
	tt_stop_probe(port, a, 43, NULL, false);
	tt_expect_term(port, a, 43);
	tt_expect_exit(port, c, a, 43);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_ping(port, c);
	tt_pstop(fx);
}

static void test_link_idempotent(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, true);
	tr_pid c = tt_probe_spawn(rt, port, true);
	tr_pid d = tt_probe_spawn(rt, port, true);

	/* Linked twice from one side and once from the other: still one
	 * link, so one EXIT. */
	assert_rc(tt_link(port, a, b), TR_OK);
	assert_rc(tt_link(port, a, b), TR_OK);
	assert_rc(tt_link(port, b, a), TR_OK);
	tt_stop_probe(port, b, 7, NULL, true);
	tt_expect_exit(port, a, b, 7);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);

	/* Linked twice, unlinked once: no link left, either way. */
	assert_rc(tt_link(port, c, d), TR_OK);
	assert_rc(tt_link(port, c, d), TR_OK);
	assert_rc(tt_link(port, d, c), TR_OK);
	assert_rc(tt_unlink(port, c, d), TR_OK);
	tt_stop_probe(port, d, 8, NULL, true);
	tt_expect_term(port, d, 8);
	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_ping(port, c);

	/* Unlinking what is not linked is fine. */
	assert_rc(tt_unlink(port, c, a), TR_OK);
	assert_rc(tt_unlink(port, c, d), TR_OK);
	tt_pstop(fx);
}

static int fn_link_self(tr_ctx *ctx, void *arg)
{
	(void)arg;
	return tr_link(ctx, tr_self(ctx));
}

static int fn_unlink_self(tr_ctx *ctx, void *arg)
{
	(void)arg;
	return tr_unlink(ctx, tr_self(ctx));
}

static void test_link_self(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, false);

	/* Nothing happens: no EXIT to itself when it ends, one terminate. */
	assert_rc(tt_run(port, a, fn_link_self, NULL), TR_OK);
	assert_rc(tt_run(port, a, fn_link_self, NULL), TR_OK);
	tt_ping(port, a);
	tt_stop_probe(port, a, 9, NULL, true);
	tt_expect_term(port, a, 9);

	assert_rc(tt_run(port, b, fn_link_self, NULL), TR_OK);
	assert_rc(tt_run(port, b, fn_unlink_self, NULL), TR_OK);
	tt_ping(port, b);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_link_dead_pid(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid dead = tt_dead_pid(rt, port);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, false);
	struct tt_note n;

	/* A trapping caller: TR_ENOPROC and an EXIT noproc from the pid. */
	assert_rc(tt_link(port, a, dead), TR_ENOPROC);
	n = tt_expect_exit(port, a, dead, TR_REASON_NOPROC);
	assert_int_equal(n.info.ref, 0);
	tt_ping(port, a);

	/* A caller that does not trap dies of it. */
	assert_rc(tt_link(port, b, dead), TR_ENOPROC);
	tt_expect_term(port, b, TR_REASON_NOPROC);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, b), TT_WAIT_MS));

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_pstop(fx);
}

static void test_link_bad_args(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 1);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, false);
	uint64_t ref = 0;

	assert_rc(tr_link(NULL, a), TR_EINVAL);
	assert_rc(tr_unlink(NULL, a), TR_EINVAL);
	assert_rc(tr_monitor(NULL, &ref, a), TR_EINVAL);
	assert_rc(
	    tr_spawn_link(NULL, NULL, &msg_crasher, NULL, NULL), TR_EINVAL);
	tt_ping(port, a);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* tr_spawn_link                                                             */
/* ------------------------------------------------------------------------ */

struct spawn_arg {
	const tr_behaviour *b;
	void *barg;
	bool send_first; /* send the child a message at once */
	tr_pid child;    /* out */
};

static int fn_spawn_link(tr_ctx *ctx, void *arg)
{
	struct spawn_arg *a = arg;
	int rc = tr_spawn_link(ctx, &a->child, a->b, a->barg, NULL);

	if (rc == TR_OK && a->send_first)
		TT_ACHECK(tr_send(ctx, a->child, MSG_GO, NULL, 0) == TR_OK);
	return rc;
}

static void test_spawn_link_atomic(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	unsigned rounds = (unsigned)tt_env_u64("TT_LINK_ROUNDS", 200);

	/* The child dies in init, or on its first message, before it could
	 * be linked by a later call: the trapping parent still gets its
	 * reason, never noproc. */
	for (unsigned i = 0; i < rounds; i++) {
		struct spawn_arg sa = {
		    .b = (i & 1) ? &msg_crasher : &init_crasher,
		    .barg = (void *)(intptr_t)21,
		    .send_first = (i & 1) != 0,
		};

		assert_rc(tt_run(port, a, fn_spawn_link, &sa), TR_OK);
		tt_expect_exit(port, a, sa.child, (i & 1) ? 33 : 21);
	}

	/* A parent that does not trap goes down with the child. */
	for (unsigned i = 0; i < 20; i++) {
		tr_pid p = tt_probe_spawn(rt, port, false);
		struct spawn_arg sa = {
		    .b = (i & 1) ? &msg_crasher : &init_crasher,
		    .barg = (void *)(intptr_t)22,
		    .send_first = (i & 1) != 0,
		};

		assert_rc(tt_run(port, p, fn_spawn_link, &sa), TR_OK);
		tt_expect_term(port, p, (i & 1) ? 33 : 22);
	}

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_ping(port, a);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* tr_unlink                                                                 */
/* ------------------------------------------------------------------------ */

static void test_unlink_then_peer_dies(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = tt_probe_spawn(rt, port, true);
	tr_pid b = tt_probe_spawn(rt, port, true);
	tr_pid c = tt_probe_spawn(rt, port, false);
	tr_pid d = tt_probe_spawn(rt, port, false);

	/* Unlinked by a: b's crash reaches no one... */
	assert_rc(tt_link(port, a, b), TR_OK);
	assert_rc(tt_unlink(port, a, b), TR_OK);
	tt_stop_probe(port, b, 5, NULL, true);
	tt_expect_term(port, b, 5);

	/* ...and unlinking one side removed the other: c unlinks d, then
	 * c crashes; d, not trapping, would die of it. */
	assert_rc(tt_link(port, d, c), TR_OK);
	assert_rc(tt_unlink(port, c, d), TR_OK);
	tt_stop_probe(port, c, 6, NULL, true);
	tt_expect_term(port, c, 6);

	tt_quiesce(rt);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_ping(port, a);
	tt_ping(port, d);
	tt_pstop(fx);
}

/* A victim that crashes with 77 on any message. */
static int handle_crash77(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 77;
}

static const tr_behaviour victim = {
    .name = "victim",
    .handle = handle_crash77,
};

static int fn_unlink_race(tr_ctx *ctx, void *arg)
{
	unsigned mode = *(unsigned *)arg;
	tr_runtime *rt = tr_runtime_of(ctx);
	tr_pid v;
	int64_t until;
	int rc = tr_spawn_link(ctx, &v, &victim, NULL, NULL);

	if (rc != TR_OK)
		return rc;
	switch (mode % 4) {
	case 0: /* the victim is killed, then unlinked */
		TT_ACHECK(tr_kill(rt, v, 77) == TR_OK);
		break;
	case 1: /* the victim crashes by itself */
		TT_ACHECK(tr_send(ctx, v, MSG_GO, NULL, 0) == TR_OK);
		break;
	case 2: /* the victim is dead and its EXIT on its way, or here */
		TT_ACHECK(tr_kill(rt, v, 77) == TR_OK);
		until = tt_now_ms() + 200;
		while (tr_is_alive(rt, v) && tt_now_ms() < until) {
		}
		break;
	case 3: /* unlinked first, then it crashes */
		rc = tr_unlink(ctx, v);
		TT_ACHECK(tr_send(ctx, v, MSG_GO, NULL, 0) == TR_OK);
		return rc;
	}
	return tr_unlink(ctx, v);
}

static void test_unlink_races_peer_death(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 4);
	tr_port *port = tt_port(fx);
	_Atomic unsigned exits = 0;
	struct tt_probe tmpl = {.exits = &exits};
	tr_pid trapper = tt_probe_spawn_cfg(rt, port, true, &tmpl);
	tr_pid plain = tt_probe_spawn(rt, port, false);
	unsigned rounds = (unsigned)tt_env_u64("TT_LINK_ROUNDS", 400);

	for (unsigned i = 0; i < rounds; i++) {
		assert_rc(tt_run(port, trapper, fn_unlink_race, &i), TR_OK);
		assert_rc(tt_run(port, plain, fn_unlink_race, &i), TR_OK);
	}
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&exits), 0);
	tt_assert_none(port, TT_P_EXIT, TR_PID_NONE);
	tt_assert_none(port, TT_P_TERM, TR_PID_NONE);
	tt_ping(port, trapper);
	tt_ping(port, plain);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_link_both_ways),
	    TT_PTEST(test_link_idempotent),
	    TT_PTEST(test_link_self),
	    TT_PTEST(test_link_dead_pid),
	    TT_PTEST(test_link_bad_args),
	    TT_PTEST(test_spawn_link_atomic),
	    TT_PTEST(test_unlink_then_peer_dies),
	    TT_PTEST(test_unlink_races_peer_death),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
