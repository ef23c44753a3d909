/*
 * Scheduler tests: a busy actor does not starve others, idle schedulers
 * steal work, the batch limit makes actors with full mailboxes take
 * turns, and actors spawned by several plain threads at once all run,
 * once each.
 */
#include "common.h"

#include <pthread.h>
#include <unistd.h>

enum {
	MSG_SPIN = 1,
	MSG_STOP,
	MSG_GO,
	MSG_WORK,
	MSG_DONE,
	MSG_TICK,
};

/* ------------------------------------------------------------------------ */
/* Fairness                                                                  */
/* ------------------------------------------------------------------------ */

static _Atomic uint64_t g_spins;

/* Keeps itself busy for ever by sending itself a message per message, so
 * its mailbox is never empty, until told to stop. */
static int busy_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == MSG_STOP) {
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	atomic_fetch_add(&g_spins, 1);
	TT_ACHECK(tr_send(ctx, tr_self(ctx), MSG_SPIN, NULL, 0) == TR_OK);
	return 0;
}

static const tr_behaviour busy_bhv = {
    .name = "busy",
    .handle = busy_handle,
};

static void test_busy_actor_does_not_starve(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_pid busy, echo;
	uint64_t before;

	atomic_store(&g_spins, 0);
	busy = tt_spawn(rt, &busy_bhv, NULL);
	echo = tt_spawn(rt, &tt_echo, NULL);
	assert_rc(tr_post(rt, busy, MSG_SPIN, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&g_spins) >= 1000, TT_WAIT_MS));

	/* The only scheduler is shared with an actor that is always
	 * runnable; each call must still be answered. */
	for (uint64_t i = 0; i < 20; i++) {
		before = atomic_load(&g_spins);
		tt_call_echo(rt, echo, i, 10000);
		/* And the busy actor was not stopped to make room. */
		assert_true(tr_is_alive(rt, busy));
		assert_true(
		    TT_WAIT_FOR(atomic_load(&g_spins) > before, TT_WAIT_MS));
	}

	assert_rc(tr_post(rt, busy, MSG_STOP, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_false(tr_is_alive(rt, busy));
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Work stealing                                                             */
/* ------------------------------------------------------------------------ */

#define N_WORKERS 64
#define ROUNDS 5
#define WORK_MS 3

static _Atomic unsigned g_work_done;

struct worker {
	tr_pid report_to;
	unsigned rounds_left;
};

/* CPU-bound: each message costs a few milliseconds, and the worker keeps
 * itself runnable until its rounds are done. */
static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct worker *w = state;

	TT_ACHECK(m->type == MSG_WORK);
	tt_spin_ms(WORK_MS);
	atomic_fetch_add(&g_work_done, 1);
	if (--w->rounds_left > 0) {
		TT_ACHECK(
		    tr_send(ctx, tr_self(ctx), MSG_WORK, NULL, 0) == TR_OK);
	} else {
		TT_ACHECK(
		    tr_send(ctx, w->report_to, MSG_DONE, NULL, 0) == TR_OK);
		tr_exit(ctx, TR_REASON_NORMAL);
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
    .name = "worker",
    .handle = worker_handle,
    .terminate = free_state,
};

/* Spawns all workers from one actor, so they all start on its scheduler:
 * the other scheduler only gets work by stealing. */
static int spawner_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid report_to;

	(void)state;
	TT_ACHECK(m->type == MSG_GO && m->size == sizeof(report_to));
	memcpy(&report_to, m->data, sizeof(report_to));
	for (int i = 0; i < N_WORKERS; i++) {
		struct worker *w = malloc(sizeof(*w));
		tr_pid pid;

		TT_ACHECK(w != NULL);
		w->report_to = report_to;
		w->rounds_left = ROUNDS;
		if (tr_spawn(&pid, tr_runtime_of(ctx), &worker_bhv, w, NULL) !=
		    TR_OK) {
			tt_actor_fail(__FILE__, __LINE__, "tr_spawn");
			free(w);
			continue;
		}
		TT_ACHECK(tr_send(ctx, pid, MSG_WORK, NULL, 0) == TR_OK);
	}
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour spawner_bhv = {
    .name = "spawner",
    .handle = spawner_handle,
};

static void test_work_stealing(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid spawner, report_to = tr_port_pid(port);
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);

	atomic_store(&g_work_done, 0);
	assert_int_equal(tr_runtime_schedulers(rt), 2);
	spawner = tt_spawn(rt, &spawner_bhv, NULL);
	assert_rc(
	    tr_post(rt, spawner, MSG_GO, &report_to, sizeof(report_to)), TR_OK);
	for (int i = 0; i < N_WORKERS; i++) {
		tr_msg *m = tt_recv(port, 60000);

		assert_int_equal(m->type, MSG_DONE);
		tr_msg_free(m);
	}
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_work_done), N_WORKERS * ROUNDS);

	st = tt_stats(rt);
	tr_sched_stats s0 = TR_STRUCT_INIT(tr_sched_stats);
	tr_sched_stats s1 = TR_STRUCT_INIT(tr_sched_stats);
	assert_rc(tr_runtime_sched_stats_get(&s0, rt, 0), TR_OK);
	assert_rc(tr_runtime_sched_stats_get(&s1, rt, 1), TR_OK);
	print_message("steals %" PRIu64 ", turns %" PRIu64 " / %" PRIu64
	              ", parks %" PRIu64 "\n",
	    st.steals, s0.turns, s1.turns, st.parks);
	assert_true(st.steals > 0);
	assert_true(s0.turns > 0);
	assert_true(s1.turns > 0);
	/* The per-scheduler counters add up to the runtime's. */
	assert_true(st.turns == s0.turns + s1.turns);
	assert_true(st.steals == s0.steals + s1.steals);
	/* There is no scheduler beyond the two asked for. */
	tr_sched_stats s2 = TR_STRUCT_INIT(tr_sched_stats);
	assert_rc(tr_runtime_sched_stats_get(&s2, rt, 2), TR_EINVAL);

	/* Idle now: both schedulers sleep, and their sleep counts as it
	 * goes (parked_ns grows with no wake-up in between); nothing is in
	 * their run queues. */
	tr_sched_stats p0 = TR_STRUCT_INIT(tr_sched_stats);
	tr_sched_stats p1 = TR_STRUCT_INIT(tr_sched_stats);
	assert_rc(tr_runtime_sched_stats_get(&p0, rt, 0), TR_OK);
	usleep(50 * 1000);
	assert_rc(tr_runtime_sched_stats_get(&p1, rt, 0), TR_OK);
	assert_true(p1.parked_ns > p0.parked_ns);
	assert_int_equal(p1.run_queue, 0);
	tr_runtime_stats v2;
	tr_runtime_stats_init(&v2);
	assert_rc(tr_runtime_stats_get(&v2, rt), TR_OK);
	assert_int_equal(v2.global_queue, 0);
	assert_int_equal(v2.blocking_jobs, 0);
	assert_true(v2.blocking_max >= 1);
	assert_true(v2.blocking_threads <= v2.blocking_max);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Batch limit                                                               */
/* ------------------------------------------------------------------------ */

#define BATCH 4
#define PER_ACTOR 20
#define LOG_MAX 256

/* The order in which the two loggers handled their messages. Only the one
 * scheduler writes it and the test thread reads it after quiescence, but
 * atomics keep that visible to ThreadSanitizer too. */
static _Atomic uint8_t g_log[LOG_MAX];
static _Atomic unsigned g_log_len;

static int logger_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	unsigned i = atomic_fetch_add(&g_log_len, 1);

	(void)ctx;
	TT_ACHECK(m->type == MSG_TICK);
	if (i < LOG_MAX)
		atomic_store(&g_log[i], (uint8_t)(uintptr_t)state);
	return 0;
}

static const tr_behaviour logger_bhv = {
    .name = "logger",
    .handle = logger_handle,
};

/* Fills both loggers' mailboxes within one callback: with one scheduler,
 * neither can run before both are full. */
static int filler_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid to[2];

	(void)state;
	TT_ACHECK(m->size == sizeof(to));
	memcpy(to, m->data, sizeof(to));
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < PER_ACTOR; i++)
			TT_ACHECK(
			    tr_send(ctx, to[k], MSG_TICK, NULL, 0) == TR_OK);
	return 0;
}

static const tr_behaviour filler_bhv = {
    .name = "filler",
    .handle = filler_handle,
};

static void test_batch_limit_interleaves(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime *rt;
	tr_pid loggers[2], filler;
	unsigned len, last[3] = {0, 0, 0}, count[3] = {0, 0, 0};
	unsigned cutoff, run = 0, max_run = 0;
	uint8_t prev = 0;

	tr_runtime_opts_init(&o);
	o.schedulers = 1;
	o.batch = BATCH;
	rt = tt_start_opts(fx, &o);
	atomic_store(&g_log_len, 0);
	loggers[0] = tt_spawn(rt, &logger_bhv, (void *)(uintptr_t)1);
	loggers[1] = tt_spawn(rt, &logger_bhv, (void *)(uintptr_t)2);
	filler = tt_spawn(rt, &filler_bhv, NULL);
	assert_rc(tr_post(rt, filler, MSG_GO, loggers, sizeof(loggers)), TR_OK);
	tt_quiesce(rt);

	len = atomic_load(&g_log_len);
	assert_int_equal(len, 2 * PER_ACTOR);
	for (unsigned i = 0; i < len; i++) {
		uint8_t id = atomic_load(&g_log[i]);

		assert_true(id == 1 || id == 2);
		count[id]++;
		last[id] = i;
	}
	assert_int_equal(count[1], PER_ACTOR);
	assert_int_equal(count[2], PER_ACTOR);

	/* While both have messages waiting, neither may handle more than a
	 * batch in a row. */
	cutoff = last[1] < last[2] ? last[1] : last[2];
	for (unsigned i = 0; i <= cutoff; i++) {
		uint8_t id = atomic_load(&g_log[i]);

		run = id == prev ? run + 1 : 1;
		prev = id;
		if (run > max_run)
			max_run = run;
	}
	print_message("longest run while both were busy: %u\n", max_run);
	assert_true(max_run <= BATCH);
	/* Which also means they interleaved, rather than one draining its
	 * mailbox before the other started. */
	assert_true(cutoff >= 2 * BATCH);

	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Spawning from plain threads                                               */
/* ------------------------------------------------------------------------ */

enum { SPAWNERS = 4, PER_SPAWNER = 20000 };

/* One per spawned actor, written by its spawner before tr_spawn() and
 * read by the actor's init: what a spawn publishes must be seen. */
struct sp_arg {
	unsigned thread, seq;
};

static struct sp_arg g_sp_args[SPAWNERS][PER_SPAWNER];
static _Atomic unsigned g_sp_ran[SPAWNERS][PER_SPAWNER];
static _Atomic unsigned g_sp_inits;

static int sp_init(tr_ctx *ctx, void *arg, void **state)
{
	struct sp_arg *a = arg;
	(void)state;
	TT_ACHECK(a->thread < SPAWNERS && a->seq < PER_SPAWNER);
	atomic_fetch_add(&g_sp_ran[a->thread][a->seq], 1);
	atomic_fetch_add(&g_sp_inits, 1);
	tr_exit(ctx, TR_REASON_NORMAL);
	return TR_OK;
}

static int sp_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour sp_bhv = {
    .name = "spawned-by-thread",
    .init = sp_init,
    .handle = sp_handle,
};

struct spawner {
	tr_runtime *rt;
	unsigned idx;
	_Atomic unsigned *go;
	unsigned failed;
};

static void *spawner_main(void *p)
{
	struct spawner *sp = p;
	while (atomic_load(sp->go) == 0)
		;
	for (unsigned i = 0; i < PER_SPAWNER; i++) {
		struct sp_arg *a = &g_sp_args[sp->idx][i];
		a->thread = sp->idx;
		a->seq = i;
		if (tr_spawn(NULL, sp->rt, &sp_bhv, a, NULL) != TR_OK)
			sp->failed++;
	}
	return NULL;
}

static void spawn_from_threads(struct tt_fixture *fx, unsigned schedulers)
{
	tr_runtime_opts o;
	tr_runtime_opts_init(&o);
	o.schedulers = schedulers;
	tr_runtime *rt = tt_start_opts(fx, &o);
	memset(g_sp_ran, 0, sizeof(g_sp_ran));
	atomic_store(&g_sp_inits, 0);

	_Atomic unsigned go = 0;
	struct spawner sp[SPAWNERS];
	pthread_t th[SPAWNERS];
	for (unsigned i = 0; i < SPAWNERS; i++) {
		sp[i] = (struct spawner){.rt = rt, .idx = i, .go = &go};
		assert_int_equal(
		    pthread_create(&th[i], NULL, spawner_main, &sp[i]), 0);
	}
	atomic_store(&go, 1);
	for (unsigned i = 0; i < SPAWNERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(sp[i].failed, 0);
	}
	tt_quiesce(rt);

	assert_int_equal(atomic_load(&g_sp_inits), SPAWNERS * PER_SPAWNER);
	for (unsigned t = 0; t < SPAWNERS; t++)
		for (unsigned i = 0; i < PER_SPAWNER; i++)
			assert_int_equal(atomic_load(&g_sp_ran[t][i]), 1);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Two schedulers take from the global queue while four threads push. */
static void test_thread_spawns_all_run(void **state)
{
	spawn_from_threads(tt_begin(state), 2);
}

/* One scheduler, four threads: the global queue fills faster than it is
 * taken from, and spills its takes into the ring. */
static void test_thread_spawns_one_scheduler(void **state)
{
	spawn_from_threads(tt_begin(state), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_busy_actor_does_not_starve),
	    TT_TEST(test_work_stealing),
	    TT_TEST(test_batch_limit_interleaves),
	    TT_TEST(test_thread_spawns_all_run),
	    TT_TEST(test_thread_spawns_one_scheduler),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
