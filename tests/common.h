/*
 * Shared helpers for the troupe test suite.
 *
 * Each test executable includes this header exactly once, so the file-static
 * state below is per executable.
 *
 * Rules the helpers enforce:
 * - cmocka's assert_* macros longjmp back into the test runner, which is only
 *   safe on the test (main) thread. Actor callbacks and helper threads use
 *   TT_ACHECK instead, which records the failure in an atomic counter that
 *   the test thread asserts on.
 * - Every wait is bounded, so a runtime bug fails a test instead of hanging
 *   the suite; the bounds are generous because sanitizer builds are slow.
 */
#ifndef TROUPE_TESTS_COMMON_H
#define TROUPE_TESTS_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <troupe/troupe.h>

#define TT_UNUSED __attribute__((unused))

/* Default bound for a wait that should normally finish in milliseconds. */
#define TT_WAIT_MS 30000

/* ------------------------------------------------------------------------ */
/* Time                                                                      */
/* ------------------------------------------------------------------------ */

static inline int64_t tt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tt_sleep_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/* Burns CPU for about `ms` milliseconds: a workload, never an assertion. */
static inline void tt_spin_ms(int64_t ms)
{
	int64_t end = tt_now_ms() + ms;
	volatile uint64_t x = 0;

	while (tt_now_ms() < end) {
		for (int i = 0; i < 1000; i++) {
			x = x * 6364136223846793005u + 1442695040888963407u;
		}
	}
}

/* Polls `cond` every millisecond for up to `ms` milliseconds; evaluates to
 * whether it became true. A bounded wait, not a timing assertion. */
#define TT_WAIT_FOR(cond, ms)                                                  \
	({                                                                     \
		int64_t tt_dl_ = tt_now_ms() + (ms);                           \
		bool tt_ok_ = false;                                           \
		for (;;) {                                                     \
			if (cond) {                                            \
				tt_ok_ = true;                                 \
				break;                                         \
			}                                                      \
			if (tt_now_ms() > tt_dl_)                              \
				break;                                         \
			tt_sleep_ms(1);                                        \
		}                                                              \
		tt_ok_;                                                        \
	})

/* ------------------------------------------------------------------------ */
/* Checks off the test thread                                                */
/* ------------------------------------------------------------------------ */

static _Atomic unsigned tt_actor_failures;

static inline void tt_actor_fail(const char *file, int line, const char *expr)
{
	/* Print the first few only: a broken invariant in a hot handler
	 * would otherwise flood the log. */
	if (atomic_fetch_add(&tt_actor_failures, 1) < 10)
		fprintf(stderr, "%s:%d: check failed off the test thread: %s\n",
		    file, line, expr);
}

#define TT_ACHECK(cond)                                                        \
	((cond) ? (void)0 : tt_actor_fail(__FILE__, __LINE__, #cond))

#define tt_assert_actors_ok()                                                  \
	assert_int_equal(atomic_load(&tt_actor_failures), 0)

/* Compares error codes and names both on mismatch. */
#define assert_rc(actual, expected)                                            \
	do {                                                                   \
		int tt_a_ = (actual), tt_e_ = (expected);                      \
		if (tt_a_ != tt_e_)                                            \
			fail_msg("%s = %d (%s), expected %d (%s)", #actual,    \
			    tt_a_, tr_strerror(tt_a_), tt_e_,                  \
			    tr_strerror(tt_e_));                               \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Environment                                                               */
/* ------------------------------------------------------------------------ */

static inline uint64_t tt_env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (s == NULL || *s == '\0')
		return dflt;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0)
		return dflt;
	return v;
}

/* ------------------------------------------------------------------------ */
/* Fixture: one runtime and one port per test                                */
/* ------------------------------------------------------------------------ */

/* cmocka catches SIGSEGV and friends with a handler that longjmps to the
 * test runner. A fault on a scheduler thread would then jump onto the test
 * thread's stack from another thread; restoring the dispositions the process
 * started with (the sanitizers' handlers, or the default) makes such a crash
 * kill the process with a proper report instead. */
static const int tt_signals[] = {SIGFPE, SIGILL, SIGSEGV, SIGBUS, SIGSYS};
static struct sigaction tt_saved_signals[5];

static inline void tt_save_signals(void)
{
	for (size_t i = 0; i < 5; i++)
		sigaction(tt_signals[i], NULL, &tt_saved_signals[i]);
}

static inline void tt_restore_signals(void)
{
	for (size_t i = 0; i < 5; i++)
		sigaction(tt_signals[i], &tt_saved_signals[i], NULL);
}

struct tt_fixture {
	tr_runtime *rt;
	tr_port *port;
};

static TT_UNUSED int tt_setup(void **state)
{
	struct tt_fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	atomic_store(&tt_actor_failures, 0);
	*state = fx;
	return 0;
}

/* Only does work when a test failed half way: a passing test stops its own
 * runtime. */
static TT_UNUSED int tt_teardown(void **state)
{
	struct tt_fixture *fx = *state;

	if (fx->port != NULL)
		tr_port_close(fx->port);
	if (fx->rt != NULL)
		tr_runtime_stop(fx->rt);
	free(fx);
	return 0;
}

#define TT_TEST(fn) cmocka_unit_test_setup_teardown(fn, tt_setup, tt_teardown)

static inline struct tt_fixture *tt_begin(void **state)
{
	tt_restore_signals();
	return *state;
}

static inline tr_runtime *tt_start_opts(
    struct tt_fixture *fx, const tr_runtime_opts *opts)
{
	assert_null(fx->rt);
	assert_rc(tr_runtime_start(&fx->rt, opts), TR_OK);
	assert_non_null(fx->rt);
	return fx->rt;
}

static inline tr_runtime *tt_start(struct tt_fixture *fx, unsigned schedulers)
{
	tr_runtime_opts o;

	tr_runtime_opts_init(&o);
	o.schedulers = schedulers;
	return tt_start_opts(fx, &o);
}

static inline tr_port *tt_port(struct tt_fixture *fx)
{
	assert_null(fx->port);
	assert_rc(tr_port_open(&fx->port, fx->rt), TR_OK);
	assert_non_null(fx->port);
	return fx->port;
}

static inline void tt_stop(struct tt_fixture *fx)
{
	if (fx->port != NULL) {
		tr_port_close(fx->port);
		fx->port = NULL;
	}
	tr_runtime_stop(fx->rt);
	fx->rt = NULL;
}

static inline void tt_quiesce(tr_runtime *rt)
{
	assert_rc(tr_runtime_wait_quiescent(rt, TT_WAIT_MS), TR_OK);
}

static inline tr_runtime_stats tt_stats(tr_runtime *rt)
{
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);

	assert_rc(tr_runtime_stats_get(&st, rt), TR_OK);
	return st;
}

static inline tr_pid tt_spawn(tr_runtime *rt, const tr_behaviour *b, void *arg)
{
	tr_pid pid = TR_PID_NONE;

	assert_rc(tr_spawn(&pid, rt, b, arg, NULL), TR_OK);
	assert_false(tr_pid_is_none(pid));
	return pid;
}

/* ------------------------------------------------------------------------ */
/* Receiving on a port                                                       */
/* ------------------------------------------------------------------------ */

/* The next message of `port`; fails the test if none comes within `ms`. The
 * caller frees it. */
static inline tr_msg *tt_recv(tr_port *port, int64_t ms)
{
	tr_msg *m = NULL;

	assert_rc(tr_port_recv(&m, port, ms), TR_OK);
	assert_non_null(m);
	return m;
}

/* Receives the next message, checks its type and payload size and copies
 * the payload to `out`. Returns the sender. */
static inline tr_pid tt_recv_data(
    tr_port *port, uint32_t type, void *out, size_t size)
{
	tr_msg *m = tt_recv(port, TT_WAIT_MS);
	tr_pid from = m->sender;

	assert_int_equal(m->type, type);
	assert_int_equal(m->size, size);
	if (size > 0)
		memcpy(out, m->data, size);
	tr_msg_free(m);
	return from;
}

/* Asserts that nothing is waiting on `port` right now. */
static inline void tt_assert_port_empty(tr_port *port)
{
	tr_msg *m = NULL;
	int rc = tr_port_recv(&m, port, 0);

	if (rc == TR_OK) {
		uint32_t type = m->type;

		tr_msg_free(m);
		fail_msg("unexpected message of type %#x on the port", type);
	}
	assert_rc(rc, TR_ETIMEDOUT);
}

/* ------------------------------------------------------------------------ */
/* A few shared behaviours                                                   */
/* ------------------------------------------------------------------------ */

/* Echo: answers a request with a reply of the same type and payload, and a
 * plain message that has a sender with a copy back to it. */
static TT_UNUSED int tt_echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->ref != 0) {
		TT_ACHECK(tr_reply(ctx, m, m->type, m->data, m->size) == TR_OK);
	} else if (!tr_pid_is_none(m->sender)) {
		TT_ACHECK(tr_send(ctx, m->sender, m->type, m->data, m->size) ==
		          TR_OK);
	}
	return 0;
}

static const tr_behaviour tt_echo TT_UNUSED = {
    .name = "tt_echo",
    .handle = tt_echo_handle,
};

/* A tr_call round trip to an echo actor, checked end to end. */
static inline void tt_call_echo(
    tr_runtime *rt, tr_pid echo, uint64_t value, int64_t timeout_ms)
{
	tr_msg *r = NULL;
	uint64_t got;

	assert_rc(
	    tr_call(&r, rt, echo, 7, &value, sizeof(value), timeout_ms), TR_OK);
	assert_non_null(r);
	assert_int_equal(r->type, 7);
	assert_int_equal(r->size, sizeof(got));
	memcpy(&got, r->data, sizeof(got));
	assert_int_equal(got, value);
	assert_true(tr_pid_eq(r->sender, echo));
	tr_msg_free(r);
}

#endif /* TROUPE_TESTS_COMMON_H */
