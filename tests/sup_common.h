/*
 * Helpers for the supervisor tests: a worker behaviour for children, and
 * short ways to find, crash and wait for them.
 *
 * A worker's argument is a struct tt_wcfg that outlives the supervisor (it
 * is borrowed, as tr_child_spec says). The worker records its starts and
 * ends in the config's counters and in an event log ("Ia" init of a, "Fa"
 * failed init, "Na" init that ignored its start, "Ta:s" terminate with
 * reason shutdown, "Xa" an EXIT message trapped), so a test can check who
 * was stopped and started, in what order.
 */
#ifndef TROUPE_TESTS_SUP_COMMON_H
#define TROUPE_TESTS_SUP_COMMON_H

#include "probe.h"

#include <troupe/sup.h>

enum {
	TT_W_STOP = 0x7100, /* payload: int reason; > 0 crashes by return */
	TT_W_UNLINK,        /* request, payload: tr_pid; the worker unlinks
	                     * itself from that pid, then replies */
};

struct tt_wcfg {
	char id;
	struct tt_evlog *log;
	bool trap;             /* trap exits and ignore the EXIT messages */
	_Atomic int fail_from; /* init fails from this start on (1: the
	                        * first); 0: never */
	int fail_reason;       /* what init fails with (TR_INIT_IGNORE: init
	                        * ignores the start) */
	int on_shutdown;       /* with trap: an EXIT `shutdown` makes it exit
	                        * with this reason (0: it ignores it) */
	const char *reg_name;  /* init registers the worker under this name
	                        * (NULL: none); fails with 1 if it cannot */
	_Atomic int starts;    /* init calls */
	_Atomic int running;   /* initialised and not yet terminated */
	_Atomic int terms;
	_Atomic int last_reason;      /* of the last terminate */
	_Atomic int exits_seen;       /* EXIT messages trapped */
	_Atomic int last_exit_reason; /* of the last one */
};

struct tt_wstate {
	struct tt_wcfg *cfg;
};

static int tt_worker_init(tr_ctx *ctx, void *arg, void **state)
{
	struct tt_wcfg *cfg = arg;
	struct tt_wstate *st;
	int n = atomic_fetch_add(&cfg->starts, 1) + 1;

	if (cfg->fail_from > 0 && n >= cfg->fail_from) {
		tt_ev(cfg->log, cfg->fail_reason == TR_INIT_IGNORE ? 'N' : 'F',
		    cfg->id, cfg->fail_reason);
		return cfg->fail_reason;
	}
	if (cfg->reg_name != NULL && tr_register(tr_runtime_of(ctx),
	                                 cfg->reg_name, tr_self(ctx)) != TR_OK)
		return 1;
	st = malloc(sizeof(*st));
	if (st == NULL)
		return 1;
	st->cfg = cfg;
	if (cfg->trap)
		(void)tr_trap_exit(ctx, true);
	atomic_fetch_add(&cfg->running, 1);
	tt_ev(cfg->log, 'I', cfg->id, 0);
	*state = st;
	return TR_OK;
}

static int tt_worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct tt_wstate *st = state;
	tr_exit_info info;
	int reason;

	if (m->type == TR_MSG_EXIT) {
		TT_ACHECK(m->size == sizeof(info));
		memcpy(&info, m->data, sizeof(info));
		atomic_store(&st->cfg->last_exit_reason, info.reason);
		atomic_fetch_add(&st->cfg->exits_seen, 1);
		tt_ev(st->cfg->log, 'X', st->cfg->id, info.reason);
		if (info.reason == TR_REASON_SHUTDOWN &&
		    st->cfg->on_shutdown != 0)
			tr_exit(ctx, st->cfg->on_shutdown);
		return 0;
	}
	if (m->type == TT_W_UNLINK && m->ref != 0) {
		tr_pid from;

		TT_ACHECK(m->size == sizeof(from));
		memcpy(&from, m->data, sizeof(from));
		TT_ACHECK(tr_unlink(ctx, from) == TR_OK);
		TT_ACHECK(tr_reply(ctx, m, TT_W_UNLINK, NULL, 0) == TR_OK);
		return 0;
	}
	if (m->type == TT_W_STOP) {
		TT_ACHECK(m->size == sizeof(reason));
		memcpy(&reason, m->data, sizeof(reason));
		if (reason > 0)
			return reason;
		tr_exit(ctx, reason);
		return 0;
	}
	if (m->ref != 0)
		TT_ACHECK(tr_reply(ctx, m, m->type, m->data, m->size) == TR_OK);
	return 0;
}

static void tt_worker_terminate(tr_ctx *ctx, void *state, int reason)
{
	struct tt_wstate *st = state;
	struct tt_wcfg *cfg = st->cfg;

	(void)ctx;
	atomic_store(&cfg->last_reason, reason);
	atomic_fetch_add(&cfg->terms, 1);
	tt_ev(cfg->log, 'T', cfg->id, reason);
	free(st);
	/* Last: a test that waits for running == 0 may then free cfg. */
	atomic_fetch_sub(&cfg->running, 1);
}

static const tr_behaviour tt_worker TT_UNUSED = {
    .name = "tt_worker",
    .init = tt_worker_init,
    .handle = tt_worker_handle,
    .terminate = tt_worker_terminate,
};

/* A worker spec with OTP's defaults. */
static TT_UNUSED tr_child_spec tt_wspec(const char *id, struct tt_wcfg *cfg)
{
	tr_child_spec s;

	tr_child_spec_init(&s, id, &tt_worker, cfg);
	return s;
}

/* A nested supervisor's spec. */
static TT_UNUSED tr_child_spec tt_supspec(const char *id, tr_sup_args *args)
{
	tr_child_spec s;

	tr_child_spec_init(&s, id, &tr_sup_behaviour, args);
	s.type = TR_CHILD_SUPERVISOR;
	s.shutdown_ms = TR_SHUTDOWN_INFINITY;
	return s;
}

static TT_UNUSED tr_sup_flags tt_flags(
    tr_sup_strategy strategy, uint32_t intensity, uint32_t period_ms)
{
	tr_sup_flags f;

	tr_sup_flags_init(&f);
	f.strategy = strategy;
	f.intensity = intensity;
	f.period_ms = period_ms;
	return f;
}

static TT_UNUSED tr_pid tt_sup_start(
    tr_runtime *rt, const tr_sup_flags *f, const tr_child_spec *specs, size_t n)
{
	tr_pid sup = TR_PID_NONE;
	int reason = 0;

	assert_rc(tr_sup_start(&sup, rt, f, specs, n, &reason), TR_OK);
	assert_false(tr_pid_is_none(sup));
	return sup;
}

/* The pid of child `id` (TR_PID_NONE when it is not running); fails the
 * test if the supervisor has no such child. */
static TT_UNUSED tr_pid tt_child(tr_runtime *rt, tr_pid sup, const char *id)
{
	tr_child_info info[64] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n = 0;

	assert_rc(
	    tr_sup_which_children(info, 64, &n, rt, sup, TT_WAIT_MS), TR_OK);
	for (size_t i = 0; i < n && i < 64; i++)
		if (strcmp(info[i].id, id) == 0)
			return info[i].pid;
	fail_msg("the supervisor has no child \"%s\"", id);
	return TR_PID_NONE;
}

/* Whether the supervisor has a child `id`. */
static TT_UNUSED bool tt_has_child(tr_runtime *rt, tr_pid sup, const char *id)
{
	tr_child_info info[64] = {TR_STRUCT_INIT(tr_child_info)};
	size_t n = 0;

	assert_rc(
	    tr_sup_which_children(info, 64, &n, rt, sup, TT_WAIT_MS), TR_OK);
	for (size_t i = 0; i < n && i < 64; i++)
		if (strcmp(info[i].id, id) == 0)
			return true;
	return false;
}

static TT_UNUSED tr_child_counts tt_counts(tr_runtime *rt, tr_pid sup)
{
	tr_child_counts c = TR_STRUCT_INIT(tr_child_counts);

	assert_rc(tr_sup_count_children(&c, rt, sup, TT_WAIT_MS), TR_OK);
	return c;
}

/* Waits for child `id` to run with a pid other than `old`; returns it. */
static TT_UNUSED tr_pid tt_wait_restart(
    tr_runtime *rt, tr_pid sup, const char *id, tr_pid old)
{
	tr_pid p = TR_PID_NONE;

	if (!TT_WAIT_FOR((p = tt_child(rt, sup, id),
	                     !tr_pid_is_none(p) && !tr_pid_eq(p, old)),
	        TT_WAIT_MS))
		fail_msg("child \"%s\" was not restarted", id);
	return p;
}

/* Makes worker `pid` end with `reason` (> 0: a crash). */
static TT_UNUSED void tt_wstop(tr_runtime *rt, tr_pid pid, int reason)
{
	assert_rc(tr_post(rt, pid, TT_W_STOP, &reason, sizeof(reason)), TR_OK);
}

/* Makes worker `pid` unlink itself from `from` (its supervisor), and
 * waits until it has. */
static TT_UNUSED void tt_wunlink(tr_runtime *rt, tr_pid pid, tr_pid from)
{
	tr_msg *r = NULL;

	assert_rc(
	    tr_call(&r, rt, pid, TT_W_UNLINK, &from, sizeof(from), TT_WAIT_MS),
	    TR_OK);
	tr_msg_free(r);
}

/* Crashes worker `pid` and waits until it is dead. */
static TT_UNUSED void tt_wcrash(tr_runtime *rt, tr_pid pid, int reason)
{
	tt_wstop(rt, pid, reason);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, pid), TT_WAIT_MS));
}

/* Stops a supervisor the way its parent would, and waits, through the
 * watcher probe `w`, for its DOWN with reason shutdown (and for those of
 * monitors `w` had on it already). */
static TT_UNUSED void tt_sup_stop(
    tr_runtime *rt, tr_port *port, tr_pid w, tr_pid sup)
{
	uint64_t ref = tt_monitor(port, w, sup);
	struct tt_note n;

	assert_rc(tr_kill(rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	do {
		n = tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	} while (n.info.ref != ref);
}

/* Checks the events since `from` against `want`. */
#define tt_assert_events(log, from, want)                                      \
	do {                                                                   \
		char tt_buf_[1024];                                            \
		assert_string_equal(                                           \
		    tt_ev_render((log), (from), tt_buf_, sizeof(tt_buf_)),     \
		    (want));                                                   \
	} while (0)

/* The event log the supervisor tests' workers write to. */
static struct tt_evlog evlog;

static TT_UNUSED void reset_log(void)
{
	memset(&evlog, 0, sizeof(evlog));
}

#endif /* TROUPE_TESTS_SUP_COMMON_H */
