/*
 * Blocking-work tests: tr_run_blocking runs off the schedulers, its result
 * comes back as a message, and queued jobs still run at stop.
 */
#include "common.h"

#include <dirent.h>
#include <pthread.h>

enum {
	MSG_GO = 1,
	MSG_GO_MANY,
	MSG_GO_ERRORS,
	MSG_GO_AND_EXIT,
	MSG_RESULT,
	MSG_ISSUED,
	MSG_TRACE,
	MSG_ERRORS,
	MSG_GO_GATED4,
};

static _Atomic bool g_gate;
static _Atomic unsigned g_fn_started;
static _Atomic unsigned g_fn_done;
static _Atomic uintptr_t g_fn_thread;
static _Atomic uintptr_t g_actor_thread;
/* Set when the port is closed before the results come back. */
static _Atomic bool g_drop_results;
static int g_token;

static void reset(void)
{
	atomic_store(&g_gate, false);
	atomic_store(&g_fn_started, 0);
	atomic_store(&g_fn_done, 0);
	atomic_store(&g_fn_thread, 0);
	atomic_store(&g_actor_thread, 0);
	atomic_store(&g_drop_results, false);
}

/* Blocks (really sleeps) for 200 ms, then until the test opens the gate,
 * bounded so that a broken runtime fails rather than hangs. */
static void *gated_fn(void *arg)
{
	int64_t deadline = tt_now_ms() + TT_WAIT_MS;

	atomic_store(&g_fn_thread, (uintptr_t)pthread_self());
	atomic_fetch_add(&g_fn_started, 1);
	tt_sleep_ms(200);
	while (!atomic_load(&g_gate) && tt_now_ms() < deadline)
		tt_sleep_ms(1);
	atomic_fetch_add(&g_fn_done, 1);
	return arg;
}

/* Sleeps 20 ms and hands back its argument. */
static void *short_fn(void *arg)
{
	tt_sleep_ms(20);
	atomic_fetch_add(&g_fn_done, 1);
	return arg;
}

struct issued {
	int rc;
	uint64_t ref;
};

struct trace {
	uint32_t type;
	uint32_t size;
	uint64_t ref;
	tr_pid sender;
	void *result;
};

struct errors {
	int null_fn;
	int reserved_type;
};

#define MANY 16

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	struct issued is;
	struct trace tr;
	struct errors er;

	switch (m->type) {
	case MSG_GO:
		atomic_store(&g_actor_thread, (uintptr_t)pthread_self());
		is.ref = 0;
		is.rc = tr_run_blocking(
		    ctx, &is.ref, MSG_RESULT, gated_fn, &g_token);
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_ISSUED, &is, sizeof(is)) == TR_OK);
		break;
	case MSG_GO_MANY:
		for (uintptr_t i = 1; i <= MANY; i++) {
			is.ref = 0;
			is.rc = tr_run_blocking(
			    ctx, &is.ref, MSG_RESULT, short_fn, (void *)i);
			TT_ACHECK(tr_send(ctx, *port, MSG_ISSUED, &is,
			              sizeof(is)) == TR_OK);
		}
		break;
	case MSG_GO_GATED4:
		for (int i = 0; i < 4; i++) {
			is.ref = 0;
			is.rc = tr_run_blocking(
			    ctx, &is.ref, MSG_RESULT, gated_fn, &g_token);
			TT_ACHECK(tr_send(ctx, *port, MSG_ISSUED, &is,
			              sizeof(is)) == TR_OK);
		}
		break;
	case MSG_GO_ERRORS:
		er.null_fn = tr_run_blocking(ctx, NULL, MSG_RESULT, NULL, NULL);
		er.reserved_type =
		    tr_run_blocking(ctx, NULL, TR_MSG_SYSTEM, short_fn, NULL);
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_ERRORS, &er, sizeof(er)) == TR_OK);
		break;
	case MSG_GO_AND_EXIT:
		/* The result will find the actor gone and be dropped. */
		TT_ACHECK(tr_run_blocking(
		              ctx, NULL, MSG_RESULT, gated_fn, NULL) == TR_OK);
		tr_exit(ctx, TR_REASON_NORMAL);
		break;
	default:
		if (atomic_load(&g_drop_results))
			break;
		memset(&tr, 0, sizeof(tr));
		tr.type = m->type;
		tr.size = m->size;
		tr.ref = m->ref;
		tr.sender = m->sender;
		if (m->size == sizeof(tr_blocking_result)) {
			tr_blocking_result br;

			memcpy(&br, m->data, sizeof(br));
			tr.result = br.result;
		}
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_TRACE, &tr, sizeof(tr)) == TR_OK);
		break;
	}
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour worker_bhv = {
    .name = "blocking_worker",
    .handle = worker_handle,
    .terminate = free_state,
};

static tr_pid spawn_worker(tr_runtime *rt, tr_port *port)
{
	tr_pid *p = malloc(sizeof(*p));

	assert_non_null(p);
	*p = tr_port_pid(port);
	return tt_spawn(rt, &worker_bhv, p);
}

/* A runtime of `schedulers` with a pool of `threads`, the test's port
 * and a worker reporting to it. */
static tr_runtime *start_pool(struct tt_fixture *fx, unsigned schedulers,
    unsigned threads, tr_port **port, tr_pid *worker)
{
	tr_runtime_opts o;
	tr_runtime_opts_init(&o);
	o.schedulers = schedulers;
	o.blocking_threads = threads;
	tr_runtime *rt = tt_start_opts(fx, &o);
	*port = tt_port(fx);
	*worker = spawn_worker(rt, *port);
	return rt;
}

static void test_blocking_does_not_block_scheduler(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_port *port = tt_port(fx);
	tr_pid worker, echo;
	struct issued is;
	struct trace tr;

	reset();
	worker = spawn_worker(rt, port);
	echo = tt_spawn(rt, &tt_echo, NULL);
	assert_rc(tr_post(rt, worker, MSG_GO, NULL, 0), TR_OK);
	tt_recv_data(port, MSG_ISSUED, &is, sizeof(is));
	assert_rc(is.rc, TR_OK);
	assert_true(is.ref != 0);
	assert_true(TT_WAIT_FOR(atomic_load(&g_fn_started) == 1, TT_WAIT_MS));

	/* The job is blocked (it waits for the gate); the only scheduler
	 * must still serve other actors. */
	for (uint64_t i = 0; i < 20; i++)
		tt_call_echo(rt, echo, i, 10000);
	assert_int_equal(atomic_load(&g_fn_done), 0);
	/* A blocking job is not quiescence. */
	assert_rc(tr_runtime_wait_quiescent(rt, 10), TR_ETIMEDOUT);

	atomic_store(&g_gate, true);
	tt_recv_data(port, MSG_TRACE, &tr, sizeof(tr));
	assert_int_equal(tr.type, MSG_RESULT);
	assert_int_equal(tr.ref, is.ref);
	assert_int_equal(tr.size, sizeof(tr_blocking_result));
	assert_ptr_equal(tr.result, &g_token);
	assert_true(tr_pid_is_none(tr.sender));
	/* It ran on a thread that is not the scheduler. */
	assert_true(atomic_load(&g_fn_thread) != 0);
	assert_true(atomic_load(&g_fn_thread) != atomic_load(&g_actor_thread));

	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_many_jobs(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_port *port;
	tr_pid worker;	uint64_t refs[MANY];
	bool seen[MANY] = {false};


	reset();
	tr_runtime *rt = start_pool(fx, 2, 2, &port, &worker);
	assert_rc(tr_post(rt, worker, MSG_GO_MANY, NULL, 0), TR_OK);
	for (int i = 0; i < MANY; i++) {
		struct issued is;

		tt_recv_data(port, MSG_ISSUED, &is, sizeof(is));
		assert_rc(is.rc, TR_OK);
		refs[i] = is.ref;
		for (int j = 0; j < i; j++)
			assert_true(refs[i] != refs[j]);
	}
	/* Each job's result comes exactly once, under its own ref. */
	for (int i = 0; i < MANY; i++) {
		struct trace tr;
		uintptr_t arg;

		tt_recv_data(port, MSG_TRACE, &tr, sizeof(tr));
		assert_int_equal(tr.type, MSG_RESULT);
		arg = (uintptr_t)tr.result;
		assert_true(arg >= 1 && arg <= MANY);
		assert_false(seen[arg - 1]);
		seen[arg - 1] = true;
		assert_int_equal(tr.ref, refs[arg - 1]);
	}
	assert_int_equal(atomic_load(&g_fn_done), MANY);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_blocking_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid worker;
	struct errors er;

	reset();
	worker = spawn_worker(rt, port);
	assert_rc(tr_post(rt, worker, MSG_GO_ERRORS, NULL, 0), TR_OK);
	tt_recv_data(port, MSG_ERRORS, &er, sizeof(er));
	assert_rc(er.null_fn, TR_EINVAL);
	assert_rc(er.reserved_type, TR_EINVAL);
	tt_quiesce(rt);
	/* Nothing ran. */
	assert_int_equal(atomic_load(&g_fn_done), 0);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* The actor is gone when its job finishes: the result is dropped safely. */
static void test_result_after_exit(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid worker;

	reset();
	worker = spawn_worker(rt, port);
	assert_rc(tr_post(rt, worker, MSG_GO_AND_EXIT, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&g_fn_started) == 1, TT_WAIT_MS));
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, worker), TT_WAIT_MS));
	atomic_store(&g_gate, true);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_fn_done), 1);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* The threads of this process that run blocking jobs (they are named). */
static int pool_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	int n = 0;
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] == '.')
			continue;
		char path[300], name[32] = "";
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue; /* gone meanwhile */
		if (fgets(name, sizeof(name), f) != NULL &&
		    strcmp(name, "troupe-blocking\n") == 0)
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The pool starts no thread before a job needs one, then as many as run
 * at once up to blocking_threads: three of four gated jobs run together,
 * the fourth waits for one of them. One runtime in this process, so every
 * thread named troupe-blocking is its pool's. */
static void test_threads_on_demand(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_port *port;
	tr_pid worker;

	reset();
	tr_runtime *rt = start_pool(fx, 1, 3, &port, &worker);
	tt_quiesce(rt);
	assert_int_equal(pool_threads(), 0);
	assert_rc(tr_post(rt, worker, MSG_GO_GATED4, NULL, 0), TR_OK);
	for (int i = 0; i < 4; i++) {
		struct issued is;

		tt_recv_data(port, MSG_ISSUED, &is, sizeof(is));
		assert_rc(is.rc, TR_OK);
	}
	assert_true(TT_WAIT_FOR(atomic_load(&g_fn_started) == 3, TT_WAIT_MS));
	/* Each job sleeps 200 ms before it looks at the gate: none is done,
	 * so the fourth has no thread yet. */
	assert_int_equal(pool_threads(), 3);
	assert_int_equal(atomic_load(&g_fn_done), 0);
	assert_int_equal(atomic_load(&g_fn_started), 3);
	atomic_store(&g_gate, true);
	for (int i = 0; i < 4; i++) {
		struct trace tr;

		tt_recv_data(port, MSG_TRACE, &tr, sizeof(tr));
		assert_int_equal(tr.type, MSG_RESULT);
	}
	assert_int_equal(atomic_load(&g_fn_done), 4);
	assert_int_equal(pool_threads(), 3);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Jobs queued when the runtime stops still run before stop returns. */
static void test_queued_jobs_run_at_stop(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_port *port;
	tr_pid worker;

	reset();
	tr_runtime *rt = start_pool(fx, 2, 1, &port, &worker);
	assert_rc(tr_post(rt, worker, MSG_GO_MANY, NULL, 0), TR_OK);
	for (int i = 0; i < MANY; i++) {
		struct issued is;

		tt_recv_data(port, MSG_ISSUED, &is, sizeof(is));
		assert_rc(is.rc, TR_OK);
	}
	/* One pool thread at 20 ms per job: most are still queued. Their
	 * results reach the worker after the port is closed. */
	atomic_store(&g_drop_results, true);
	tt_stop(fx);
	assert_int_equal(atomic_load(&g_fn_done), MANY);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_blocking_does_not_block_scheduler),
	    TT_TEST(test_many_jobs),
	    TT_TEST(test_threads_on_demand),
	    TT_TEST(test_blocking_errors),
	    TT_TEST(test_result_after_exit),
	    TT_TEST(test_queued_jobs_run_at_stop),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
