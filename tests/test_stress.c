/*
 * Stress tests with a million actors (the TROUPE_STRESS_ACTORS environment
 * variable overrides the count; sanitizer builds default to fewer):
 * - churn: actors spawned by a few spawner actors, each sends one message
 *   to a counter and exits; nothing is lost and nothing stays alive;
 * - idle: a million actors alive at once, each handles one message, then
 *   tr_runtime_stop terminates every one of them.
 */
#include "common.h"

enum {
	MSG_GO = 1,
	MSG_HIT,
	MSG_DONE,
	MSG_MORE,
	MSG_PING,
};

#define N_SPAWNERS 4
/* Spawns per spawner turn: the spawner then sends itself MSG_MORE, so the
 * children it spawned run (and exit) before the next chunk, which keeps
 * the number alive at once small. */
#define CHUNK 1000

/* Set by tests/CMakeLists.txt: lower in sanitizer builds. */
#ifndef TT_STRESS_DEFAULT
#define TT_STRESS_DEFAULT 1000000
#endif

static uint64_t stress_actors(void)
{
	return tt_env_u64("TROUPE_STRESS_ACTORS", TT_STRESS_DEFAULT);
}

/* ------------------------------------------------------------------------ */
/* Churn                                                                     */
/* ------------------------------------------------------------------------ */

struct counter {
	tr_pid report_to;
	uint64_t expect;
	uint64_t hits;
};

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct counter *c = state;

	TT_ACHECK(m->type == MSG_HIT);
	c->hits++;
	TT_ACHECK(c->hits <= c->expect);
	if (c->hits == c->expect)
		TT_ACHECK(tr_send(ctx, c->report_to, MSG_DONE, &c->hits,
		              sizeof(c->hits)) == TR_OK);
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour counter_bhv = {
    .name = "counter",
    .handle = counter_handle,
    .terminate = free_state,
};

/* A child's payload of MSG_GO is the counter's pid. */
static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid counter;

	(void)state;
	TT_ACHECK(m->type == MSG_GO && m->size == sizeof(counter));
	memcpy(&counter, m->data, sizeof(counter));
	TT_ACHECK(tr_send(ctx, counter, MSG_HIT, NULL, 0) == TR_OK);
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour child_bhv = {
    .name = "child",
    .handle = child_handle,
};

struct spawner {
	tr_pid counter;
	uint64_t left;
};

static int spawner_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct spawner *s = state;

	TT_ACHECK(m->type == MSG_MORE);
	for (int i = 0; i < CHUNK && s->left > 0; i++) {
		tr_pid child;
		int rc = tr_spawn(
		    &child, tr_runtime_of(ctx), &child_bhv, NULL, NULL);

		if (rc != TR_OK) {
			tt_actor_fail(__FILE__, __LINE__, "tr_spawn");
			break;
		}
		TT_ACHECK(tr_send(ctx, child, MSG_GO, &s->counter,
		              sizeof(s->counter)) == TR_OK);
		s->left--;
	}
	if (s->left > 0)
		TT_ACHECK(
		    tr_send(ctx, tr_self(ctx), MSG_MORE, NULL, 0) == TR_OK);
	else
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour spawner_bhv = {
    .name = "spawner",
    .handle = spawner_handle,
    .terminate = free_state,
};

static void test_million_spawn_send_exit(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	uint64_t n = stress_actors(), done = 0;
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct counter *c = calloc(1, sizeof(*c));
	tr_runtime_stats base = TR_STRUCT_INIT(tr_runtime_stats),
	                 st = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid counter;
	int64_t t0;

	print_message("%" PRIu64 " actors\n", n);
	assert_non_null(c);
	c->report_to = tr_port_pid(port);
	c->expect = n;
	counter = tt_spawn(rt, &counter_bhv, c);
	tt_quiesce(rt);
	base = tt_stats(rt);

	t0 = tt_now_ms();
	for (int i = 0; i < N_SPAWNERS; i++) {
		struct spawner *s = malloc(sizeof(*s));
		tr_pid p;

		assert_non_null(s);
		s->counter = counter;
		/* Spread the remainder over the first spawners. */
		s->left = n / N_SPAWNERS + ((uint64_t)i < n % N_SPAWNERS);
		p = tt_spawn(rt, &spawner_bhv, s);
		assert_rc(tr_post(rt, p, MSG_MORE, NULL, 0), TR_OK);
	}
	tt_recv_data(port, MSG_DONE, &done, sizeof(done));
	assert_int_equal(done, n);
	assert_rc(tr_runtime_wait_quiescent(rt, 600000), TR_OK);
	print_message(
	    "spawn + send + exit: %" PRId64 " ms\n", tt_now_ms() - t0);

	st = tt_stats(rt);
	assert_int_equal(st.actors_alive, base.actors_alive);
	assert_true(st.actors_spawned >= base.actors_spawned + n);
	assert_int_equal(st.crashes, 0);
	assert_true(tr_is_alive(rt, counter));
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* A million idle actors at once                                             */
/* ------------------------------------------------------------------------ */

static _Atomic uint64_t g_idle_handled;
static _Atomic uint64_t g_idle_terms;
static _Atomic uint64_t g_idle_bad_reason;

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	TT_ACHECK(m->type == MSG_PING);
	atomic_fetch_add_explicit(&g_idle_handled, 1, memory_order_relaxed);
	return 0;
}

static void idle_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)state;
	if (reason != TR_REASON_SHUTDOWN)
		atomic_fetch_add(&g_idle_bad_reason, 1);
	atomic_fetch_add_explicit(&g_idle_terms, 1, memory_order_relaxed);
}

static const tr_behaviour idle_bhv = {
    .name = "idle",
    .handle = idle_handle,
    .terminate = idle_terminate,
};

static void test_million_idle_then_stop(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	uint64_t n = stress_actors();
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid *pids = malloc(n * sizeof(*pids));
	tr_runtime_stats base = TR_STRUCT_INIT(tr_runtime_stats),
	                 st = TR_STRUCT_INIT(tr_runtime_stats);
	int64_t t0;

	assert_non_null(pids);
	atomic_store(&g_idle_handled, 0);
	atomic_store(&g_idle_terms, 0);
	atomic_store(&g_idle_bad_reason, 0);
	base = tt_stats(rt);

	t0 = tt_now_ms();
	for (uint64_t i = 0; i < n; i++) {
		int rc = tr_spawn(&pids[i], rt, &idle_bhv, NULL, NULL);

		if (rc != TR_OK)
			fail_msg("spawn %" PRIu64 ": %s", i, tr_strerror(rc));
	}
	for (uint64_t i = 0; i < n; i++) {
		int rc = tr_post(rt, pids[i], MSG_PING, &i, sizeof(i));

		if (rc != TR_OK)
			fail_msg("post %" PRIu64 ": %s", i, tr_strerror(rc));
	}
	assert_rc(tr_runtime_wait_quiescent(rt, 600000), TR_OK);
	print_message(
	    "spawn + post + handle: %" PRId64 " ms\n", tt_now_ms() - t0);
	assert_int_equal(atomic_load(&g_idle_handled), n);
	st = tt_stats(rt);
	assert_int_equal(st.actors_alive, base.actors_alive + n);
	assert_int_equal(st.actors_spawned, base.actors_spawned + n);
	/* No terminate before stop. */
	assert_int_equal(atomic_load(&g_idle_terms), 0);

	t0 = tt_now_ms();
	tt_stop(fx);
	print_message("stop: %" PRId64 " ms\n", tt_now_ms() - t0);
	assert_int_equal(atomic_load(&g_idle_terms), n);
	assert_int_equal(atomic_load(&g_idle_bad_reason), 0);
	free(pids);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_million_spawn_send_exit),
	    TT_TEST(test_million_idle_then_stop),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
