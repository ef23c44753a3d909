/*
 * Lifecycle tests: starting and stopping runtimes, what stop does to live
 * actors, argument checking, message limits, error strings and quiescence.
 */
#include "common.h"

#include <unistd.h>

enum {
	MSG_PING = 1,
	MSG_SPIN,
	MSG_PROBE,
	MSG_PROBED,
	MSG_IGNORE,
};

/* ------------------------------------------------------------------------ */
/* Start and stop                                                            */
/* ------------------------------------------------------------------------ */

static void start_call_stop(
    struct tt_fixture *fx, const tr_runtime_opts *o, unsigned want_schedulers)
{
	tr_runtime *rt = tt_start_opts(fx, o);
	tr_pid echo;

	assert_int_equal(tr_runtime_schedulers(rt), want_schedulers);
	echo = tt_spawn(rt, &tt_echo, NULL);
	tt_call_echo(rt, echo, want_schedulers, TT_WAIT_MS);
	tt_stop(fx);
}

static void test_start_stop(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned dflt = ncpu < 1                   ? 1
	                : ncpu > TR_MAX_SCHEDULERS ? TR_MAX_SCHEDULERS
	                                           : (unsigned)ncpu;
	const unsigned counts[] = {1, 2, 4};
	tr_runtime_opts o;

	/* The defaults, as NULL and as zeroed options. */
	start_call_stop(fx, NULL, dflt);
	tr_runtime_opts_init(&o);
	start_call_stop(fx, &o, dflt);

	for (int pin = 0; pin < 2; pin++) {
		for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]);
		     i++) {
			tr_runtime_opts_init(&o);
			o.schedulers = counts[i];
			o.pin = pin;
			start_call_stop(fx, &o, counts[i]);
		}
	}
	/* The most schedulers allowed. */
	tr_runtime_opts_init(&o);
	o.schedulers = TR_MAX_SCHEDULERS;
	start_call_stop(fx, &o, TR_MAX_SCHEDULERS);

	/* Stopping nothing is allowed. */
	tr_runtime_stop(NULL);
	tt_assert_actors_ok();
}

static void test_start_errors(void **state)
{
	tr_runtime_opts o;
	tr_runtime *rt = NULL;

	(void)tt_begin(state);
	assert_rc(tr_runtime_start(NULL, NULL), TR_EINVAL);
	tr_runtime_opts_init(&o);
	assert_rc(tr_runtime_start(NULL, &o), TR_EINVAL);
	o.schedulers = TR_MAX_SCHEDULERS + 1;
	assert_rc(tr_runtime_start(&rt, &o), TR_EINVAL);
	o.schedulers = 1000;
	assert_rc(tr_runtime_start(&rt, &o), TR_EINVAL);
}

static void test_opts_init(void **state)
{
	tr_runtime_opts o, zero;

	(void)tt_begin(state);
	memset(&o, 0xA5, sizeof(o));
	memset(&zero, 0, sizeof(zero));
	tr_runtime_opts_init(&o);
	assert_int_equal(o.struct_size, sizeof(o));
	assert_int_equal(o.schedulers, 0);
	assert_false(o.pin);
	assert_int_equal(o.blocking_threads, 0);
	assert_int_equal(o.max_actors, 0);
	assert_int_equal(o.max_msg_size, 0);
	assert_int_equal(o.batch, 0);
	assert_int_equal(o.spin_us, 0);
}

/* Several runtimes live side by side. */
static void test_two_runtimes(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *a = tt_start(fx, 2), *b = NULL;
	tr_pid ea, eb;

	assert_rc(tr_runtime_start(&b, NULL), TR_OK);
	ea = tt_spawn(a, &tt_echo, NULL);
	eb = tt_spawn(b, &tt_echo, NULL);
	for (uint64_t i = 0; i < 10; i++) {
		tt_call_echo(a, ea, i, TT_WAIT_MS);
		tt_call_echo(b, eb, i, TT_WAIT_MS);
	}
	tr_runtime_stop(b);
	/* The other one is unaffected. */
	tt_call_echo(a, ea, 99, TT_WAIT_MS);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* What stop does to actors                                                  */
/* ------------------------------------------------------------------------ */

#define N_LIVE 100

static _Atomic int g_terms[N_LIVE];
static _Atomic unsigned g_bad_reasons;

/* Half of them keep themselves busy, so stop finds some running and some
 * idle with messages queued. */
static int live_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == MSG_SPIN)
		TT_ACHECK(
		    tr_send(ctx, tr_self(ctx), MSG_SPIN, NULL, 0) == TR_OK);
	return 0;
}

static void live_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	if (reason != TR_REASON_SHUTDOWN)
		atomic_fetch_add(&g_bad_reasons, 1);
	atomic_fetch_add((_Atomic int *)state, 1);
}

static const tr_behaviour live_bhv = {
    .name = "live",
    .handle = live_handle,
    .terminate = live_terminate,
};

static void test_stop_terminates_each_once(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);

	atomic_store(&g_bad_reasons, 0);
	for (int i = 0; i < N_LIVE; i++) {
		tr_pid p;

		atomic_store(&g_terms[i], 0);
		p = tt_spawn(rt, &live_bhv, (void *)&g_terms[i]);
		if (i % 2 == 0) {
			assert_rc(tr_post(rt, p, MSG_SPIN, NULL, 0), TR_OK);
		} else {
			for (int k = 0; k < 50; k++)
				assert_rc(
				    tr_post(rt, p, MSG_PING, &k, sizeof(k)),
				    TR_OK);
		}
	}
	tt_stop(fx);
	for (int i = 0; i < N_LIVE; i++)
		assert_int_equal(atomic_load(&g_terms[i]), 1);
	assert_int_equal(atomic_load(&g_bad_reasons), 0);
	tt_assert_actors_ok();
}

/* An actor spawned while the only scheduler is busy, and still waiting for
 * its first turn when stop begins, gets init and then terminate: its
 * argument is not lost. */
static _Atomic unsigned g_lazy_inits, g_lazy_terms;
static _Atomic unsigned g_probe_inits, g_probe_terms, g_probes;
static _Atomic bool g_spinning;
static _Atomic int g_spinner_rc;
static _Atomic int g_terminate_spawn_rc;

static int lazy_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	TT_ACHECK(arg != NULL && *state == arg);
	TT_ACHECK(arg != NULL && *(int *)arg == 1234);
	atomic_fetch_add(&g_lazy_inits, 1);
	return TR_OK;
}

static int unexpected_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	tt_actor_fail(__FILE__, __LINE__, "no message was sent");
	return 0;
}

static void lazy_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	TT_ACHECK(atomic_load(&g_lazy_inits) == 1);
	TT_ACHECK(reason == TR_REASON_SHUTDOWN);
	atomic_fetch_add(&g_lazy_terms, 1);
	free(state);
}

static const tr_behaviour lazy_bhv = {
    .name = "lazy",
    .init = lazy_init,
    .handle = unexpected_handle,
    .terminate = lazy_terminate,
};

static int probe_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	(void)state;
	atomic_fetch_add(&g_probe_inits, 1);
	return TR_OK;
}

static void probe_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)state;
	(void)reason;
	atomic_fetch_add(&g_probe_terms, 1);
}

static const tr_behaviour probe_bhv = {
    .name = "probe",
    .init = probe_init,
    .handle = unexpected_handle,
    .terminate = probe_terminate,
};

/* Holds the only scheduler until the runtime starts stopping, which it
 * detects by tr_spawn failing with TR_ECLOSED. */
static int spinner_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	int64_t deadline = tt_now_ms() + TT_WAIT_MS;
	int rc;

	(void)state;
	(void)m;
	atomic_store(&g_spinning, true);
	for (;;) {
		rc = tr_spawn(NULL, tr_runtime_of(ctx), &probe_bhv, NULL, NULL);
		if (rc == TR_OK)
			atomic_fetch_add(&g_probes, 1);
		if (rc != TR_OK || tt_now_ms() > deadline)
			break;
		tt_sleep_ms(1);
	}
	atomic_store(&g_spinner_rc, rc);
	return 0;
}

static const tr_behaviour spinner_bhv = {
    .name = "spinner",
    .handle = spinner_handle,
};

/* Its terminate runs during stop and tries to spawn. */
static void spawny_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)state;
	(void)reason;
	atomic_store(&g_terminate_spawn_rc,
	    tr_spawn(NULL, tr_runtime_of(ctx), &probe_bhv, NULL, NULL));
}

static const tr_behaviour spawny_bhv = {
    .name = "spawny",
    .handle = unexpected_handle,
    .terminate = spawny_terminate,
};

static void test_never_run_actor_and_spawn_during_stop(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_pid spinner;
	int *arg = malloc(sizeof(*arg));

	assert_non_null(arg);
	*arg = 1234;
	atomic_store(&g_lazy_inits, 0);
	atomic_store(&g_lazy_terms, 0);
	atomic_store(&g_probe_inits, 0);
	atomic_store(&g_probe_terms, 0);
	atomic_store(&g_probes, 0);
	atomic_store(&g_spinning, false);
	atomic_store(&g_spinner_rc, 1);
	atomic_store(&g_terminate_spawn_rc, 1);

	tt_spawn(rt, &spawny_bhv, NULL);
	spinner = tt_spawn(rt, &spinner_bhv, NULL);
	assert_rc(tr_post(rt, spinner, MSG_SPIN, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&g_spinning), TT_WAIT_MS));
	tt_spawn(rt, &lazy_bhv, arg);
	tt_stop(fx);

	assert_rc(atomic_load(&g_spinner_rc), TR_ECLOSED);
	assert_rc(atomic_load(&g_terminate_spawn_rc), TR_ECLOSED);
	assert_int_equal(atomic_load(&g_lazy_inits), 1);
	assert_int_equal(atomic_load(&g_lazy_terms), 1);
	assert_int_equal(atomic_load(&g_probe_inits), atomic_load(&g_probes));
	assert_int_equal(atomic_load(&g_probe_terms), atomic_load(&g_probes));
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Argument checking                                                         */
/* ------------------------------------------------------------------------ */

static const tr_behaviour no_handle_bhv = {
    .name = "no_handle",
};

static void test_spawn_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_spawn_opts so = {
	    .struct_size = sizeof(tr_spawn_opts), .flags = 1u << 31};
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);
	tr_pid pid;
	int arg = 0;

	assert_rc(tr_spawn(&pid, NULL, &tt_echo, &arg, NULL), TR_EINVAL);
	assert_rc(tr_spawn(&pid, rt, NULL, &arg, NULL), TR_EINVAL);
	assert_rc(tr_spawn(&pid, rt, &no_handle_bhv, &arg, NULL), TR_EINVAL);
	assert_rc(tr_spawn(&pid, rt, &tt_echo, &arg, &so), TR_EINVAL);
	so.flags = 0;
	assert_rc(tr_spawn(NULL, rt, &tt_echo, NULL, &so), TR_OK);
	tt_quiesce(rt);
	/* Only the last one was spawned. */
	st = tt_stats(rt);
	assert_int_equal(st.actors_spawned, 1);
	assert_int_equal(st.actors_alive, 1);

	assert_rc(tr_runtime_stats_get(NULL, rt), TR_EINVAL);
	assert_rc(tr_runtime_stats_get(&st, NULL), TR_EINVAL);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static int quit_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	(void)m;
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour quit_bhv = {
    .name = "quit",
    .handle = quit_handle,
};

static void test_stats_counts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_runtime_stats st = tt_stats(rt);
	tr_pid p[10];

	assert_int_equal(st.actors_alive, 0);
	assert_int_equal(st.actors_spawned, 0);
	for (int i = 0; i < 10; i++)
		p[i] = tt_spawn(rt, &quit_bhv, NULL);
	tt_quiesce(rt);
	st = tt_stats(rt);
	assert_int_equal(st.actors_alive, 10);
	assert_int_equal(st.actors_spawned, 10);
	for (int i = 0; i < 10; i++)
		assert_rc(tr_post(rt, p[i], MSG_PING, NULL, 0), TR_OK);
	tt_quiesce(rt);
	st = tt_stats(rt);
	assert_int_equal(st.actors_alive, 0);
	assert_int_equal(st.actors_spawned, 10);
	assert_int_equal(st.crashes, 0);
	assert_true(st.msgs_sent >= 10);
	/* Refused sends are counted as dropped. */
	assert_rc(tr_post(rt, p[0], MSG_PING, NULL, 0), TR_ENOPROC);
	st = tt_stats(rt);
	assert_true(st.msgs_dropped >= 1);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Message size and type limits                                              */
/* ------------------------------------------------------------------------ */

#define MAX_MSG 1024

struct probe_report {
	int send_over;
	int send_max;
	int send_reserved;
	int send_timeout_type;
	int send_null_data;
	int request_over;
	int send_after_over;
	int alloc_over;
	int send_msg_reserved; /* 1 if tr_msg_alloc refused the type */
};

/* Runs the sending checks that need an actor context. */
static int prober_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	static const char big[MAX_MSG + 1];
	struct probe_report r;
	tr_pid self = tr_self(ctx);
	tr_msg *msg = NULL;

	if (m->type != MSG_PROBE)
		return 0;
	r.send_over = tr_send(ctx, self, MSG_IGNORE, big, MAX_MSG + 1);
	r.send_max = tr_send(ctx, self, MSG_IGNORE, big, MAX_MSG);
	r.send_reserved = tr_send(ctx, self, TR_MSG_SYSTEM, NULL, 0);
	r.send_timeout_type = tr_send(ctx, self, TR_MSG_TIMEOUT, NULL, 0);
	r.send_null_data = tr_send(ctx, self, MSG_IGNORE, NULL, 8);
	r.request_over =
	    tr_request(ctx, NULL, self, MSG_IGNORE, big, MAX_MSG + 1, 1000);
	r.send_after_over =
	    tr_send_after(ctx, NULL, self, 1, 0, MSG_IGNORE, big, MAX_MSG + 1);
	r.alloc_over =
	    tr_msg_alloc(&msg, tr_runtime_of(ctx), MSG_IGNORE, MAX_MSG + 1);
	if (r.alloc_over == TR_OK)
		tr_msg_free(msg);
	msg = NULL;
	if (tr_msg_alloc(&msg, tr_runtime_of(ctx), TR_MSG_SYSTEM, 0) == TR_OK) {
		r.send_msg_reserved = tr_send_msg(ctx, self, msg);
		if (r.send_msg_reserved != TR_OK)
			tr_msg_free(msg);
	} else {
		r.send_msg_reserved = 1;
	}
	TT_ACHECK(tr_send(ctx, *port, MSG_PROBED, &r, sizeof(r)) == TR_OK);
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour prober_bhv = {
    .name = "prober",
    .handle = prober_handle,
    .terminate = free_state,
};

static void test_message_limits(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime *rt;
	tr_port *port;
	tr_pid *port_pid = malloc(sizeof(*port_pid));
	tr_pid prober, echo;
	static const char big[MAX_MSG + 1];
	struct probe_report r;
	tr_msg *m = NULL, *reply = NULL;
	int rc;

	assert_non_null(port_pid);
	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	o.max_msg_size = MAX_MSG;
	rt = tt_start_opts(fx, &o);
	port = tt_port(fx);
	*port_pid = tr_port_pid(port);
	prober = tt_spawn(rt, &prober_bhv, port_pid);
	echo = tt_spawn(rt, &tt_echo, NULL);

	/* From a plain thread. */
	assert_rc(
	    tr_post(rt, prober, MSG_IGNORE, big, MAX_MSG + 1), TR_EMSGSIZE);
	assert_rc(tr_post(rt, prober, MSG_IGNORE, big, MAX_MSG), TR_OK);
	assert_rc(tr_msg_alloc(&m, rt, MSG_IGNORE, MAX_MSG + 1), TR_EMSGSIZE);
	assert_rc(tr_msg_alloc(&m, rt, MSG_IGNORE, MAX_MSG), TR_OK);
	tr_msg_free(m);
	assert_rc(tr_call(&reply, rt, echo, MSG_IGNORE, big, MAX_MSG + 1, 1000),
	    TR_EMSGSIZE);
	assert_rc(
	    tr_post_after(rt, NULL, prober, 1, 0, MSG_IGNORE, big, MAX_MSG + 1),
	    TR_EMSGSIZE);

	assert_rc(tr_post(rt, prober, TR_MSG_SYSTEM, NULL, 0), TR_EINVAL);
	assert_rc(tr_post(rt, prober, TR_MSG_TIMEOUT, NULL, 0), TR_EINVAL);
	assert_rc(tr_post(rt, prober, 0xFFFFFFFFu, NULL, 0), TR_EINVAL);
	assert_rc(tr_post(rt, prober, TR_MSG_SYSTEM - 1, NULL, 0), TR_OK);
	assert_rc(tr_post(rt, prober, MSG_IGNORE, NULL, 8), TR_EINVAL);
	assert_rc(tr_post(NULL, prober, MSG_IGNORE, NULL, 0), TR_EINVAL);
	assert_rc(tr_msg_alloc(NULL, rt, MSG_IGNORE, 8), TR_EINVAL);
	/* A message of a reserved type cannot be made, or cannot be sent. */
	m = NULL;
	rc = tr_msg_alloc(&m, rt, TR_MSG_SYSTEM, 0);
	if (rc == TR_OK) {
		assert_rc(tr_post_msg(rt, prober, m), TR_EINVAL);
		tr_msg_free(m);
	} else {
		assert_rc(rc, TR_EINVAL);
	}

	/* From an actor. */
	assert_rc(tr_post(rt, prober, MSG_PROBE, NULL, 0), TR_OK);
	tt_recv_data(port, MSG_PROBED, &r, sizeof(r));
	assert_rc(r.send_over, TR_EMSGSIZE);
	assert_rc(r.send_max, TR_OK);
	assert_rc(r.send_reserved, TR_EINVAL);
	assert_rc(r.send_timeout_type, TR_EINVAL);
	assert_rc(r.send_null_data, TR_EINVAL);
	assert_rc(r.request_over, TR_EMSGSIZE);
	assert_rc(r.send_after_over, TR_EMSGSIZE);
	assert_rc(r.alloc_over, TR_EMSGSIZE);
	assert_true(
	    r.send_msg_reserved == 1 || r.send_msg_reserved == TR_EINVAL);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Strings                                                                   */
/* ------------------------------------------------------------------------ */

/* Every code's own text is checked in test_errors.c; here, what lies
 * outside the codes. */
static void test_strerror(void **state)
{
	(void)tt_begin(state);
	assert_string_not_equal(tr_strerror(TR_EAGAIN), "unknown error");
	assert_string_equal(tr_strerror(TR_E_LAST - 1), "unknown error");
	assert_string_equal(tr_strerror(-999), "unknown error");
	assert_string_equal(tr_strerror(1), "unknown error");
	assert_string_equal(tr_strerror(INT32_MIN), "unknown error");
	assert_string_equal(tr_strerror(INT32_MAX), "unknown error");
}

static void test_reason_name(void **state)
{
	(void)tt_begin(state);
	assert_string_equal(tr_reason_name(TR_REASON_NORMAL), "normal");
	assert_string_equal(tr_reason_name(TR_REASON_SHUTDOWN), "shutdown");
	assert_string_equal(tr_reason_name(TR_REASON_KILL), "kill");
	assert_string_equal(tr_reason_name(TR_REASON_KILLED), "killed");
	assert_string_equal(tr_reason_name(TR_REASON_NOPROC), "noproc");
	assert_string_equal(
	    tr_reason_name(TR_REASON_NOCONNECTION), "noconnection");
	assert_string_equal(tr_reason_name(1), "error");
	assert_string_equal(tr_reason_name(42), "error");
}

/* ------------------------------------------------------------------------ */
/* Quiescence                                                                */
/* ------------------------------------------------------------------------ */

static void test_wait_quiescent(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid echo = tt_spawn(rt, &tt_echo, NULL), busy;
	tr_timer periodic = 0, oneshot = 0;

	assert_rc(tr_runtime_wait_quiescent(rt, TT_WAIT_MS), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, -1), TR_OK);

	/* An armed periodic timer is never quiescent. */
	assert_rc(tr_post_after(rt, &periodic, echo, 10, 10, MSG_PING, NULL, 0),
	    TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, 100), TR_ETIMEDOUT);
	assert_rc(tr_timer_cancel(rt, periodic), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, TT_WAIT_MS), TR_OK);

	/* Nor is an armed one-shot. */
	assert_rc(tr_post_after(
	              rt, &oneshot, echo, 3600 * 1000, 0, MSG_PING, NULL, 0),
	    TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, 50), TR_ETIMEDOUT);
	assert_rc(tr_timer_cancel(rt, oneshot), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, TT_WAIT_MS), TR_OK);

	/* Nor is an actor that is always runnable. */
	atomic_store(&g_bad_reasons, 0);
	atomic_store(&g_terms[0], 0);
	busy = tt_spawn(rt, &live_bhv, (void *)&g_terms[0]);
	assert_rc(tr_post(rt, busy, MSG_SPIN, NULL, 0), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(rt, 50), TR_ETIMEDOUT);
	tt_stop(fx);
	assert_int_equal(atomic_load(&g_terms[0]), 1);
	tt_assert_actors_ok();
}

/* An init that calls tr_exit and returns TR_OK has initialised the actor:
 * it ends before any message, and terminate runs with the state init
 * stored (so nothing leaks). With TR_SPAWN_SYNC_INIT the spawn still fails
 * with TR_EINIT and the reason. An init that fails returns its reason and
 * gets no terminate (test_pid). */
static _Atomic unsigned g_ie_terms, g_ie_handled;
static _Atomic int g_ie_reason;

static int ie_init(tr_ctx *ctx, void *arg, void **state)
{
	int *st = malloc(sizeof(*st));

	TT_ACHECK(st != NULL);
	if (st != NULL)
		*st = 77;
	*state = st;
	tr_exit(ctx, (int)(intptr_t)arg);
	return TR_OK;
}

static int ie_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	atomic_fetch_add(&g_ie_handled, 1);
	return 0;
}

static void ie_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	TT_ACHECK(state != NULL && *(int *)state == 77);
	atomic_store(&g_ie_reason, reason);
	atomic_fetch_add(&g_ie_terms, 1);
	free(state);
}

static const tr_behaviour ie_bhv = {
    .name = "init_exit",
    .init = ie_init,
    .handle = ie_handle,
    .terminate = ie_terminate,
};

static void test_init_exit_terminates(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	const int reasons[] = {TR_REASON_NORMAL, TR_REASON_SHUTDOWN, 5};
	int why = 0;
	tr_pid p;

	/* The crash reports of reasons 5 and 6 are expected. */
	tr_runtime_set_log_level(rt, TR_LOG_CRITICAL);
	atomic_store(&g_ie_terms, 0);
	atomic_store(&g_ie_handled, 0);
	for (unsigned i = 0; i < 3; i++) {
		assert_rc(tr_spawn(&p, rt, &ie_bhv,
		              (void *)(intptr_t)reasons[i], NULL),
		    TR_OK);
		(void)tr_post(rt, p, MSG_PING, NULL, 0);
		tt_quiesce(rt);
		assert_false(tr_is_alive(rt, p));
		assert_int_equal(atomic_load(&g_ie_terms), i + 1);
		assert_int_equal(atomic_load(&g_ie_reason), reasons[i]);
	}

	/* Synchronous: the start fails, and terminate ran before. */
	tr_spawn_opts so = {.struct_size = sizeof(tr_spawn_opts),
	    .flags = TR_SPAWN_SYNC_INIT,
	    .init_reason = &why};
	assert_rc(
	    tr_spawn(&p, rt, &ie_bhv, (void *)(intptr_t)6, &so), TR_EINIT);
	assert_int_equal(why, 6);
	assert_int_equal(atomic_load(&g_ie_terms), 4);
	assert_int_equal(atomic_load(&g_ie_reason), 6);
	assert_int_equal(atomic_load(&g_ie_handled), 0);
	tt_stop(fx);
	/* Nothing more at stop: each ran once. */
	assert_int_equal(atomic_load(&g_ie_terms), 4);
	tt_assert_actors_ok();
}

static int ignore_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	(void)state;
	return TR_INIT_IGNORE;
}

static const tr_behaviour ignore_bhv = {
    "ignorer", ignore_init, ie_handle, NULL};

/* OTP's ignore: the actor ends at once, with reason normal, as no crash;
 * a synchronous spawn tells the spawner. */
static void test_init_ignore(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	int why = 0;
	tr_pid p;
	tr_spawn_opts so = {.struct_size = sizeof(tr_spawn_opts),
	    .flags = TR_SPAWN_SYNC_INIT,
	    .init_reason = &why};
	assert_rc(tr_spawn(&p, rt, &ignore_bhv, NULL, &so), TR_EINIT);
	assert_int_equal(why, TR_INIT_IGNORE);
	assert_rc(tr_spawn(&p, rt, &ignore_bhv, NULL, NULL), TR_OK);
	tt_quiesce(rt);
	assert_false(tr_is_alive(rt, p));
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);
	assert_rc(tr_runtime_stats_get(&st, rt), TR_OK);
	assert_int_equal(st.crashes, 0);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A timeout of 0 polls: an idle runtime is quiescent right now. */
static void test_wait_quiescent_poll(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);

	tt_quiesce(rt);
	assert_rc(tr_runtime_wait_quiescent(rt, 0), TR_OK);
	assert_rc(tr_runtime_wait_quiescent(NULL, 0), TR_EINVAL);
	tt_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_start_stop),
	    TT_TEST(test_start_errors),
	    TT_TEST(test_opts_init),
	    TT_TEST(test_two_runtimes),
	    TT_TEST(test_stop_terminates_each_once),
	    TT_TEST(test_never_run_actor_and_spawn_during_stop),
	    TT_TEST(test_spawn_errors),
	    TT_TEST(test_stats_counts),
	    TT_TEST(test_message_limits),
	    TT_TEST(test_strerror),
	    TT_TEST(test_reason_name),
	    TT_TEST(test_wait_quiescent),
	    TT_TEST(test_wait_quiescent_poll),
	    TT_TEST(test_init_ignore),
	    TT_TEST(test_init_exit_terminates),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
