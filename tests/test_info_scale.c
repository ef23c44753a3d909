/*
 * Listings of a large actor table (troupe/info.h): a million idle actors
 * (TROUPE_STRESS_ACTORS overrides the count; sanitizer builds default to
 * fewer), listed by slot page after page and by top N while the
 * schedulers keep running. The times are printed, never asserted: they
 * are the figures of docs/runtime.md.
 */
#include "common.h"

#include <troupe/info.h>

#ifndef TT_STRESS_DEFAULT
#define TT_STRESS_DEFAULT 1000000
#endif

enum { MSG_PING = 1 };

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour idle_bhv = {
    .name = "scale.idle", .handle = idle_handle};

static double ms_since(int64_t t0_ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - t0_ns) /
	       1e6;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_list_many(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	uint64_t n = tt_env_u64("TROUPE_STRESS_ACTORS", TT_STRESS_DEFAULT);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid *pids = malloc(n * sizeof(*pids));

	assert_non_null(pids);
	print_message("%" PRIu64 " actors\n", n);
	for (uint64_t i = 0; i < n; i++) {
		int rc = tr_spawn(&pids[i], rt, &idle_bhv, NULL, NULL);

		if (rc != TR_OK)
			fail_msg("spawn %" PRIu64 ": %s", i, tr_strerror(rc));
	}
	/* Every 1000th actor gets a few messages, so that the top N has
	 * something to find. */
	for (uint64_t i = 0; i < n; i += 1000)
		for (uint64_t k = 0; k < 1 + i % 7; k++)
			assert_rc(
			    tr_post(rt, pids[i], MSG_PING, NULL, 0), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, 600000), TR_OK);

	tr_actor_info *out = calloc(1000, sizeof(*out));
	assert_non_null(out);
	tr_actor_info_init(&out[0]);
	tr_actors_query q;
	size_t got = 0, total = 0, listed = 0, pages = 0;
	uint32_t next = 0;

	/* One page of 100, with and without the total. */
	tr_actors_query_init(&q);
	int64_t t0 = now_ns();
	assert_rc(tr_actors_list(out, 100, &got, NULL, &next, rt, &q), TR_OK);
	print_message("first page of 100: %.3f ms\n", ms_since(t0));
	assert_int_equal(got, 100);
	t0 = now_ns();
	assert_rc(tr_actors_list(out, 100, &got, &total, &next, rt, &q), TR_OK);
	print_message(
	    "first page of 100 with the total: %.3f ms\n", ms_since(t0));
	assert_int_equal(total, n);

	/* Every page of 1000. */
	next = 0;
	t0 = now_ns();
	do {
		q.cursor = next;
		assert_rc(tr_actors_list(out, 1000, &got, NULL, &next, rt, &q),
		    TR_OK);
		listed += got;
		pages++;
	} while (next != 0);
	double all = ms_since(t0);
	print_message("all %zu pages of 1000: %.1f ms (%.3f ms a page)\n",
	    pages, all, all / (double)pages);
	assert_int_equal(listed, n);

	/* Top 100 by mailbox and by handled: a walk of the whole table. */
	tr_actors_query_init(&q);
	q.sort = TR_ACTORS_TOP_HANDLED;
	for (int rep = 0; rep < 3; rep++) {
		t0 = now_ns();
		assert_rc(tr_actors_list(out, 100, &got, &total, NULL, rt, &q),
		    TR_OK);
		print_message("top 100 by handled: %.1f ms\n", ms_since(t0));
	}
	assert_int_equal(got, 100);
	assert_int_equal(total, n);
	assert_int_equal(out[0].handled, 7);
	q.sort = TR_ACTORS_TOP_MAILBOX;
	for (int rep = 0; rep < 3; rep++) {
		t0 = now_ns();
		assert_rc(tr_actors_list(out, 100, &got, &total, NULL, rt, &q),
		    TR_OK);
		print_message("top 100 by mailbox: %.1f ms\n", ms_since(t0));
	}
	assert_int_equal(out[0].mailbox, 0);

	free(out);
	free(pids);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_list_many),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
