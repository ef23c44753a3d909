/*
 * Pid tests: stale pids fail safely (also once their slot is reused), odd
 * pids are refused, and a crash stays inside its actor.
 */
#include "common.h"

#include <pthread.h>

enum {
	MSG_PING = 1,
	MSG_QUIT,
	MSG_CRASH_RETURN,
	MSG_CRASH_CALL,
	MSG_CRASH_NORMAL,
	MSG_EXIT_NORMAL,
};

static _Atomic unsigned g_pings;
static _Atomic unsigned g_quits;
static _Atomic unsigned g_terminated;

/* Counts what it gets; exits normally on MSG_QUIT. */
static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == MSG_QUIT) {
		atomic_fetch_add(&g_quits, 1);
		tr_exit(ctx, TR_REASON_NORMAL);
	} else {
		atomic_fetch_add(&g_pings, 1);
	}
	return 0;
}

static void idle_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)state;
	(void)reason;
	atomic_fetch_add(&g_terminated, 1);
}

static const tr_behaviour idle_bhv = {
    .name = "idle",
    .handle = idle_handle,
    .terminate = idle_terminate,
};

static void reset_counters(void)
{
	atomic_store(&g_pings, 0);
	atomic_store(&g_quits, 0);
	atomic_store(&g_terminated, 0);
}

static void test_stale_pid(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid old;

	reset_counters();
	old = tt_spawn(rt, &idle_bhv, NULL);
	assert_int_equal(old.node, 0);
	assert_true(tr_is_alive(rt, old));
	assert_rc(tr_post(rt, old, MSG_QUIT, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_quits), 1);
	assert_int_equal(atomic_load(&g_terminated), 1);

	assert_false(tr_is_alive(rt, old));
	assert_rc(tr_post(rt, old, MSG_PING, NULL, 0), TR_ENOPROC);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pings), 0);
	tt_stop(fx);
	tt_assert_actors_ok();
}

#define SMALL_TABLE 64
#define CYCLES 2000

/* With a 64-slot table, 2000 spawn/exit cycles must reuse slots: every old
 * pid must still be refused, and the actors now in those slots must never
 * see a message meant for an old one. */
static void test_stale_pid_after_slot_reuse(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime *rt;
	tr_pid *old = calloc(CYCLES, sizeof(*old));
	tr_pid live[SMALL_TABLE + 8];
	unsigned nlive = 0, spawned = 0, slots_used = 0;
	bool *slot_seen;
	int rc;

	assert_non_null(old);
	reset_counters();
	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	o.max_actors = SMALL_TABLE;
	rt = tt_start_opts(fx, &o);

	for (unsigned i = 0; i < CYCLES; i++) {
		int64_t deadline = tt_now_ms() + TT_WAIT_MS;

		/* A full table is expected now and then: let the actors
		 * that were told to quit finish, then try again. */
		while ((rc = tr_spawn(&old[i], rt, &idle_bhv, NULL, NULL)) ==
		       TR_ENOMEM) {
			if (tt_now_ms() > deadline)
				fail_msg("tr_spawn #%u: TR_ENOMEM with %" PRIu64
				         " actors alive (max_actors %d): slots "
				         "of exited actors are not reused",
				    i, tt_stats(rt).actors_alive, SMALL_TABLE);
			tt_quiesce(rt);
			tt_sleep_ms(10);
		}
		assert_rc(rc, TR_OK);
		spawned++;
		assert_rc(tr_post(rt, old[i], MSG_QUIT, NULL, 0), TR_OK);
	}
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_quits), CYCLES);
	assert_int_equal(atomic_load(&g_terminated), CYCLES);

	/* Slot reuse happened (the pids can only be told apart by their
	 * generation), and yet no two pids are equal. */
	slot_seen = calloc(1u << 20, sizeof(*slot_seen));
	assert_non_null(slot_seen);
	for (unsigned i = 0; i < CYCLES; i++) {
		assert_true(old[i].slot < (1u << 20));
		if (!slot_seen[old[i].slot]) {
			slot_seen[old[i].slot] = true;
			slots_used++;
		}
	}
	free(slot_seen);
	assert_true(slots_used <= SMALL_TABLE);
	for (unsigned i = 0; i < CYCLES; i++)
		for (unsigned j = i + 1; j < CYCLES; j++)
			assert_false(tr_pid_eq(old[i], old[j]));

	/* Fill the table with live actors: they sit in the old slots. */
	while (nlive < SMALL_TABLE + 8) {
		rc = tr_spawn(&live[nlive], rt, &idle_bhv, NULL, NULL);
		if (rc != TR_OK)
			break;
		nlive++;
	}
	assert_rc(rc, TR_ENOMEM);
	assert_true(nlive > 0 && nlive <= SMALL_TABLE);
	spawned += nlive;

	for (unsigned i = 0; i < CYCLES; i++) {
		assert_false(tr_is_alive(rt, old[i]));
		assert_rc(tr_post(rt, old[i], MSG_PING, NULL, 0), TR_ENOPROC);
	}
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pings), 0);

	/* The new actors are reachable through their own pids. */
	for (unsigned i = 0; i < nlive; i++) {
		assert_true(tr_is_alive(rt, live[i]));
		assert_rc(tr_post(rt, live[i], MSG_PING, NULL, 0), TR_OK);
	}
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pings), nlive);

	tt_stop(fx);
	/* Stop terminated the live ones. */
	assert_int_equal(atomic_load(&g_terminated), spawned);
	free(old);
	tt_assert_actors_ok();
}

/* Pids that never named an actor of this runtime are refused without
 * touching anything. */
static void test_odd_pids(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid live, wrong_gen, far_slot, remote;
	int rc;

	reset_counters();
	assert_true(tr_pid_is_none(TR_PID_NONE));
	assert_false(tr_is_alive(rt, TR_PID_NONE));
	rc = tr_post(rt, TR_PID_NONE, MSG_PING, NULL, 0);
	assert_true(rc == TR_ENOPROC || rc == TR_EINVAL);

	live = tt_spawn(rt, &idle_bhv, NULL);
	wrong_gen = live;
	wrong_gen.gen++;
	assert_false(tr_pid_eq(live, wrong_gen));
	assert_false(tr_is_alive(rt, wrong_gen));
	assert_rc(tr_post(rt, wrong_gen, MSG_PING, NULL, 0), TR_ENOPROC);

	/* Far beyond any table that was touched. */
	far_slot = (tr_pid){0, 0xFFFFFFF0u, 1};
	assert_false(tr_is_alive(rt, far_slot));
	assert_rc(tr_post(rt, far_slot, MSG_PING, NULL, 0), TR_ENOPROC);

	/* Another node, with no distribution running. */
	remote = live;
	remote.node = 7;
	assert_false(tr_is_alive(rt, remote));
	rc = tr_post(rt, remote, MSG_PING, NULL, 0);
	assert_true(rc == TR_ENOPROC || rc == TR_ENOTSUP || rc == TR_EINVAL);

	tt_quiesce(rt);
	/* None of those reached the live actor in that slot. */
	assert_int_equal(atomic_load(&g_pings), 0);
	assert_rc(tr_post(rt, live, MSG_PING, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pings), 1);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Crash isolation                                                           */
/* ------------------------------------------------------------------------ */

/* Crash report lines, captured from whichever scheduler thread reports. */
static pthread_mutex_t g_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_log_text[8192];
static size_t g_log_len;
static unsigned g_log_lines;
static int g_log_user_ok = 1;
static int g_log_cookie;

static void capture_log(void *user, const char *line)
{
	size_t n;

	pthread_mutex_lock(&g_log_mu);
	if (user != &g_log_cookie || line == NULL)
		g_log_user_ok = 0;
	if (line != NULL) {
		n = strlen(line);
		if (g_log_len + n + 2 < sizeof(g_log_text)) {
			memcpy(g_log_text + g_log_len, line, n);
			g_log_len += n;
			g_log_text[g_log_len++] = '\n';
			g_log_text[g_log_len] = '\0';
		}
	}
	g_log_lines++;
	pthread_mutex_unlock(&g_log_mu);
}

static unsigned log_lines(void)
{
	unsigned n;

	pthread_mutex_lock(&g_log_mu);
	n = g_log_lines;
	pthread_mutex_unlock(&g_log_mu);
	return n;
}

static bool log_mentions(const char *word)
{
	bool found;

	pthread_mutex_lock(&g_log_mu);
	found = strstr(g_log_text, word) != NULL;
	pthread_mutex_unlock(&g_log_mu);
	return found;
}

static void log_reset(void)
{
	pthread_mutex_lock(&g_log_mu);
	g_log_text[0] = '\0';
	g_log_len = 0;
	g_log_lines = 0;
	g_log_user_ok = 1;
	pthread_mutex_unlock(&g_log_mu);
}

static _Atomic int g_crash_reason;
static _Atomic unsigned g_crash_terms;
static _Atomic unsigned g_crash_handled;
static _Atomic unsigned g_init_runs;

static int crasher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	atomic_fetch_add(&g_crash_handled, 1);
	switch (m->type) {
	case MSG_CRASH_RETURN:
		return 42;
	case MSG_CRASH_CALL:
		tr_crash(ctx, 7);
		return 0;
	case MSG_CRASH_NORMAL:
		/* A crash "for a normal reason" is still a crash. */
		tr_crash(ctx, TR_REASON_NORMAL);
		return 0;
	case MSG_EXIT_NORMAL:
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	return 0;
}

static void crasher_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)state;
	atomic_store(&g_crash_reason, reason);
	atomic_fetch_add(&g_crash_terms, 1);
}

static const tr_behaviour crasher_bhv = {
    .name = "crasher_bhv",
    .handle = crasher_handle,
    .terminate = crasher_terminate,
};

static int bad_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	(void)state;
	atomic_fetch_add(&g_init_runs, 1);
	return 5;
}

static const tr_behaviour bad_init_bhv = {
    .name = "bad_init_bhv",
    .init = bad_init,
    .handle = crasher_handle,
    .terminate = crasher_terminate,
};

/* Runs one crasher to its end with `how` and checks the outcome. */
static void crash_case(
    tr_runtime *rt, tr_pid echo, uint32_t how, int want_reason, bool is_crash)
{
	tr_runtime_stats before = tt_stats(rt), after;
	unsigned lines_before = log_lines();
	tr_pid c;

	atomic_store(&g_crash_terms, 0);
	atomic_store(&g_crash_handled, 0);
	atomic_store(&g_crash_reason, 12345);
	c = tt_spawn(rt, &crasher_bhv, NULL);
	/* The first message kills it; the rest must never be handled. */
	assert_rc(tr_post(rt, c, how, NULL, 0), TR_OK);
	for (int i = 0; i < 10; i++) {
		int rc = tr_post(rt, c, MSG_PING, NULL, 0);

		assert_true(rc == TR_OK || rc == TR_ENOPROC);
	}
	assert_true(TT_WAIT_FOR(atomic_load(&g_crash_terms) == 1, TT_WAIT_MS));
	if (is_crash)
		assert_true(
		    TT_WAIT_FOR(log_lines() > lines_before, TT_WAIT_MS));
	tt_quiesce(rt);

	assert_int_equal(atomic_load(&g_crash_terms), 1);
	assert_int_equal(atomic_load(&g_crash_reason), want_reason);
	assert_int_equal(atomic_load(&g_crash_handled), 1);
	assert_false(tr_is_alive(rt, c));
	assert_rc(tr_post(rt, c, MSG_PING, NULL, 0), TR_ENOPROC);
	after = tt_stats(rt);
	assert_int_equal(after.crashes, before.crashes + (is_crash ? 1 : 0));
	if (is_crash) {
		assert_true(log_mentions("crasher_bhv"));
	} else {
		/* A normal exit is not reported. */
		assert_int_equal(log_lines(), lines_before);
	}
	/* The rest of the runtime did not notice. */
	assert_true(tr_is_alive(rt, echo));
	tt_call_echo(rt, echo, how, TT_WAIT_MS);
}

static void test_crash_isolation(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid echo;

	log_reset();
	tr_runtime_set_log(rt, capture_log, &g_log_cookie);
	echo = tt_spawn(rt, &tt_echo, NULL);
	tt_call_echo(rt, echo, 1, TT_WAIT_MS);

	crash_case(rt, echo, MSG_CRASH_RETURN, 42, true);
	crash_case(rt, echo, MSG_CRASH_CALL, 7, true);
	crash_case(rt, echo, MSG_CRASH_NORMAL, 1, true);
	crash_case(rt, echo, MSG_EXIT_NORMAL, TR_REASON_NORMAL, false);

	pthread_mutex_lock(&g_log_mu);
	print_message("crash reports:\n%s", g_log_text);
	assert_int_equal(g_log_user_ok, 1);
	pthread_mutex_unlock(&g_log_mu);

	tt_stop(fx);
	tt_assert_actors_ok();
}

/* An init that fails crashes the actor at once, without terminate. */
static void test_init_crash(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_runtime_stats before = TR_STRUCT_INIT(tr_runtime_stats),
	                 after = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid c, echo;

	log_reset();
	tr_runtime_set_log(rt, capture_log, &g_log_cookie);
	echo = tt_spawn(rt, &tt_echo, NULL);
	tt_quiesce(rt);
	atomic_store(&g_init_runs, 0);
	atomic_store(&g_crash_terms, 0);
	atomic_store(&g_crash_handled, 0);
	before = tt_stats(rt);

	c = tt_spawn(rt, &bad_init_bhv, NULL);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_init_runs), 1);
	assert_false(tr_is_alive(rt, c));
	assert_rc(tr_post(rt, c, MSG_PING, NULL, 0), TR_ENOPROC);
	after = tt_stats(rt);
	assert_int_equal(after.crashes, before.crashes + 1);
	assert_int_equal(after.actors_alive, before.actors_alive);
	tt_call_echo(rt, echo, 3, TT_WAIT_MS);

	tt_stop(fx);
	/* Neither handle nor terminate ever ran, not even at stop. */
	assert_int_equal(atomic_load(&g_crash_terms), 0);
	assert_int_equal(atomic_load(&g_crash_handled), 0);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_stale_pid),
	    TT_TEST(test_stale_pid_after_slot_reuse),
	    TT_TEST(test_odd_pids),
	    TT_TEST(test_crash_isolation),
	    TT_TEST(test_init_crash),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
