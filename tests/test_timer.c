/*
 * Timer tests: one-shot order, equal deadlines, cancel (also of a timer
 * whose message is already in the mailbox: it is never delivered),
 * periodic timers and timers armed from a plain thread.
 *
 * Timers send to the test's port, so what arrives there is exactly what
 * fired, in firing order. Actor-armed timers are armed by an "agent" actor
 * that the test drives with tr_call.
 */
#include "common.h"

enum {
	MSG_ARM = 1,
	MSG_ARMED,
	MSG_FIRE,
	MSG_TICK,
	MSG_SENTINEL,
	MSG_NOTE,
};

struct arm_cmd {
	tr_pid to;
	int64_t delay_ms;
	int64_t interval_ms;
	uint32_t type;
	uint64_t value;
};

struct arm_res {
	int rc;
	tr_timer timer;
};

#define MAX_ARM 16

/* Arms every command of the request within one callback, in order, and
 * replies with the results. */
static int agent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct arm_cmd cmd[MAX_ARM];
	struct arm_res res[MAX_ARM];
	size_t n = m->size / sizeof(cmd[0]);

	(void)state;
	TT_ACHECK(m->type == MSG_ARM && m->ref != 0);
	TT_ACHECK(n > 0 && n <= MAX_ARM && m->size % sizeof(cmd[0]) == 0);
	if (n > MAX_ARM)
		n = MAX_ARM;
	memcpy(cmd, m->data, n * sizeof(cmd[0]));
	for (size_t i = 0; i < n; i++) {
		res[i].timer = 0;
		res[i].rc = tr_send_after(ctx, &res[i].timer, cmd[i].to,
		    cmd[i].delay_ms, cmd[i].interval_ms, cmd[i].type,
		    &cmd[i].value, sizeof(cmd[i].value));
	}
	TT_ACHECK(
	    tr_reply(ctx, m, MSG_ARMED, res, n * sizeof(res[0])) == TR_OK);
	return 0;
}

static const tr_behaviour agent_bhv = {
    .name = "timer_agent",
    .handle = agent_handle,
};

/* Has the agent arm `n` timers in one go; fills `res`. */
static void agent_arm(tr_runtime *rt, tr_pid agent, const struct arm_cmd *cmd,
    size_t n, struct arm_res *res)
{
	tr_msg *r = NULL;

	assert_rc(tr_call(&r, rt, agent, MSG_ARM, cmd, n * sizeof(cmd[0]),
	              TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(r->type, MSG_ARMED);
	assert_int_equal(r->size, n * sizeof(res[0]));
	memcpy(res, r->data, n * sizeof(res[0]));
	tr_msg_free(r);
}

/* Has the agent arm one timer that must be accepted; returns it. */
static tr_timer agent_arm1(tr_runtime *rt, tr_pid agent, tr_pid to,
    int64_t delay_ms, int64_t interval_ms, uint32_t type, uint64_t value)
{
	struct arm_cmd cmd = {to, delay_ms, interval_ms, type, value};
	struct arm_res res;

	agent_arm(rt, agent, &cmd, 1, &res);
	assert_rc(res.rc, TR_OK);
	assert_true(res.timer != 0);
	return res.timer;
}

/* Receives a timer message, checks its type and returns its value. */
static uint64_t recv_value(tr_port *port, uint32_t type, tr_pid *sender)
{
	uint64_t v = 0;
	tr_pid from = tt_recv_data(port, type, &v, sizeof(v));

	if (sender != NULL)
		*sender = from;
	return v;
}

static void test_send_after_order(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid agent = tt_spawn(rt, &agent_bhv, NULL);
	tr_pid me = tr_port_pid(port), from;
	struct arm_cmd cmd[8];
	struct arm_res res[8];
	const int64_t delays[3] = {50, 10, 30};

	/* Armed 50, 10, 30: fire by deadline. */
	for (int i = 0; i < 3; i++)
		cmd[i] = (struct arm_cmd){
		    me, delays[i], 0, MSG_FIRE, (uint64_t)delays[i]};
	agent_arm(rt, agent, cmd, 3, res);
	for (int i = 0; i < 3; i++) {
		assert_rc(res[i].rc, TR_OK);
		assert_true(res[i].timer != 0);
		for (int j = 0; j < i; j++)
			assert_true(res[i].timer != res[j].timer);
	}
	assert_int_equal(recv_value(port, MSG_FIRE, &from), 10);
	/* Sent as if by the actor that armed it. */
	assert_true(tr_pid_eq(from, agent));
	assert_int_equal(recv_value(port, MSG_FIRE, NULL), 30);
	assert_int_equal(recv_value(port, MSG_FIRE, NULL), 50);

	/* Equal delays fire in the order they were armed. */
	for (int i = 0; i < 8; i++)
		cmd[i] = (struct arm_cmd){me, 20, 0, MSG_FIRE, (uint64_t)i};
	agent_arm(rt, agent, cmd, 8, res);
	for (int i = 0; i < 8; i++)
		assert_rc(res[i].rc, TR_OK);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(recv_value(port, MSG_FIRE, NULL), i);

	/* The same from a plain thread. */
	for (uint64_t i = 0; i < 8; i++)
		assert_rc(
		    tr_post_after(rt, NULL, me, 20, 0, MSG_FIRE, &i, sizeof(i)),
		    TR_OK);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(recv_value(port, MSG_FIRE, NULL), i);

	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_cancel(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid agent = tt_spawn(rt, &agent_bhv, NULL);
	tr_pid me = tr_port_pid(port);
	tr_timer t, fired, posted = 0;
	uint64_t v = 3;
	int rc;

	/* Cancel a pending one-shot; then a sentinel due after it proves it
	 * never fired: had it fired, it would arrive first. */
	t = agent_arm1(rt, agent, me, 200, 0, MSG_FIRE, 1);
	assert_rc(tr_timer_cancel(rt, t), TR_OK);
	assert_rc(tr_timer_cancel(rt, t), TR_ENOENT);
	agent_arm1(rt, agent, me, 400, 0, MSG_SENTINEL, 2);
	assert_int_equal(recv_value(port, MSG_SENTINEL, NULL), 2);
	tt_assert_port_empty(port);

	/* The same for a timer armed by a plain thread. */
	assert_rc(
	    tr_post_after(rt, &posted, me, 200, 0, MSG_FIRE, &v, sizeof(v)),
	    TR_OK);
	assert_true(posted != 0);
	assert_rc(tr_timer_cancel(rt, posted), TR_OK);
	assert_rc(tr_timer_cancel(rt, posted), TR_ENOENT);
	agent_arm1(rt, agent, me, 400, 0, MSG_SENTINEL, 4);
	assert_int_equal(recv_value(port, MSG_SENTINEL, NULL), 4);
	tt_assert_port_empty(port);

	/* A one-shot that has fired can no longer be cancelled. */
	fired = agent_arm1(rt, agent, me, 10, 0, MSG_FIRE, 5);
	assert_int_equal(recv_value(port, MSG_FIRE, NULL), 5);
	assert_rc(tr_timer_cancel(rt, fired), TR_ENOENT);

	/* References that never were. */
	rc = tr_timer_cancel(rt, 0);
	assert_true(rc == TR_ENOENT || rc == TR_EINVAL);
	assert_rc(tr_timer_cancel(rt, (tr_timer)0x7ead00001234ull), TR_ENOENT);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

#define INTERVAL_MS 10

static void test_periodic(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid agent = tt_spawn(rt, &agent_bhv, NULL);
	tr_pid me = tr_port_pid(port);
	unsigned drained = 0;
	tr_msg *m;
	tr_timer t;

	t = agent_arm1(rt, agent, me, INTERVAL_MS, INTERVAL_MS, MSG_TICK, 9);
	for (int i = 0; i < 3; i++)
		assert_int_equal(recv_value(port, MSG_TICK, NULL), 9);
	/* Armed periodic timers keep the runtime busy. */
	assert_rc(tr_runtime_wait_quiescent(rt, 3 * INTERVAL_MS), TR_ETIMEDOUT);
	assert_rc(tr_timer_cancel(rt, t), TR_OK);

	/* Ticks sent before cancel returned may be queued, but none of them
	 * reaches the port any more: they are dropped when taken. */
	while (tr_port_recv(&m, port, 0) == TR_OK) {
		assert_int_equal(m->type, MSG_TICK);
		tr_msg_free(m);
		drained++;
	}
	assert_int_equal(drained, 0);

	/* Wait five intervals, marked by a sentinel: a tick sent after the
	 * cancel would arrive before it. */
	agent_arm1(rt, agent, me, 5 * INTERVAL_MS, 0, MSG_SENTINEL, 1);
	assert_int_equal(recv_value(port, MSG_SENTINEL, NULL), 1);
	tt_assert_port_empty(port);
	assert_rc(tr_timer_cancel(rt, t), TR_ENOENT);
	/* Nothing armed any more. */
	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ---- a cancelled timer's message is never delivered --------------------- */

enum {
	MSG_WAIT = 20, /* arm a deadline to self, let it fire, cancel it */
	MSG_WAITED,    /* reply: int32_t, what the cancel returned */
	MSG_DEADLINE,  /* the deadline timer's message */
	MSG_SEEN,      /* request: how many MSG_DEADLINE came; reply uint32_t */
	MSG_OWN,       /* arm a deadline that cancels itself when it comes */
};

struct waiter {
	tr_timer t;
	uint32_t deadlines;
	int32_t own_cancel; /* what cancelling a timer from its own message
	                     * returned */
};

static uint64_t sent_now(tr_runtime *rt)
{
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);
	TT_ACHECK(tr_runtime_stats_get(&st, rt) == TR_OK);
	return st.msgs_sent;
}

/* The receive ... after pattern: the actor arms a deadline for itself,
 * the awaited message comes (here: the request that armed it is still
 * being handled, so the deadline's message is certainly behind it in the
 * mailbox), and it cancels the deadline. */
static int waiter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct waiter *w = state;
	tr_runtime *rt = tr_runtime_of(ctx);
	int32_t rc;

	switch (m->type) {
	case MSG_WAIT: {
		uint64_t before = sent_now(rt);
		rc = tr_send_after(
		    ctx, &w->t, tr_self(ctx), 0, 0, MSG_DEADLINE, NULL, 0);
		TT_ACHECK(rc == TR_OK);
		/* Let it fire: its message lands in this mailbox. */
		int64_t dl = tt_now_ms() + TT_WAIT_MS;
		while (sent_now(rt) == before && tt_now_ms() < dl)
			tt_sleep_ms(1);
		TT_ACHECK(sent_now(rt) != before);
		rc = tr_timer_cancel(rt, w->t);
		TT_ACHECK(
		    tr_reply(ctx, m, MSG_WAITED, &rc, sizeof(rc)) == TR_OK);
		return 0;
	}
	case MSG_OWN:
		rc = tr_send_after(
		    ctx, &w->t, tr_self(ctx), 1, 0, MSG_DEADLINE, NULL, 0);
		TT_ACHECK(rc == TR_OK);
		w->own_cancel = 1;
		return 0;
	case MSG_DEADLINE:
		w->deadlines++;
		if (w->own_cancel == 1)
			w->own_cancel = tr_timer_cancel(rt, w->t);
		return 0;
	case MSG_SEEN: {
		uint32_t r[2] = {w->deadlines, (uint32_t)w->own_cancel};
		TT_ACHECK(tr_reply(ctx, m, MSG_SEEN, r, sizeof(r)) == TR_OK);
		return 0;
	}
	}
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason);

static const tr_behaviour waiter_bhv = {
    .name = "waiter",
    .handle = waiter_handle,
    .terminate = free_state,
};

static void waiter_seen(
    tr_runtime *rt, tr_pid w, uint32_t *deadlines, int32_t *own_cancel)
{
	tr_msg *r = NULL;
	uint32_t v[2];

	assert_rc(tr_call(&r, rt, w, MSG_SEEN, NULL, 0, TT_WAIT_MS), TR_OK);
	assert_int_equal(r->size, sizeof(v));
	memcpy(v, r->data, sizeof(v));
	tr_msg_free(r);
	*deadlines = v[0];
	*own_cancel = (int32_t)v[1];
}

static void test_cancel_after_fire(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct waiter *ws = calloc(1, sizeof(*ws));
	tr_pid me = tr_port_pid(port);
	tr_runtime_stats before = TR_STRUCT_INIT(tr_runtime_stats),
	                 after = TR_STRUCT_INIT(tr_runtime_stats);
	uint32_t deadlines;
	int32_t rc, own;
	tr_timer t = 0;
	tr_msg *r = NULL;

	assert_non_null(ws);
	tr_pid w = tt_spawn(rt, &waiter_bhv, ws);

	/* An actor's own deadline, fired and in its mailbox: the cancel
	 * succeeds and the message is dropped when its turn comes. */
	for (int i = 0; i < 3; i++) {
		before = tt_stats(rt);
		assert_rc(
		    tr_call(&r, rt, w, MSG_WAIT, NULL, 0, TT_WAIT_MS), TR_OK);
		assert_int_equal(r->size, sizeof(rc));
		memcpy(&rc, r->data, sizeof(rc));
		tr_msg_free(r);
		assert_rc(rc, TR_OK);
		waiter_seen(rt, w, &deadlines, &own);
		assert_int_equal(deadlines, 0);
		after = tt_stats(rt);
		assert_true(after.msgs_dropped >= before.msgs_dropped + 1);
	}

	/* Cancelled from the handler of its own message: too late, it is
	 * being delivered (TR_ENOENT), and it came once. */
	assert_rc(tr_post(rt, w, MSG_OWN, NULL, 0), TR_OK);
	assert_true(
	    TT_WAIT_FOR((waiter_seen(rt, w, &deadlines, &own), deadlines == 1),
	        TT_WAIT_MS));
	assert_rc(own, TR_ENOENT);

	/* A port: the message is in its mailbox when the cancel comes. */
	before = tt_stats(rt);
	assert_rc(tr_post_after(rt, &t, me, 0, 0, MSG_FIRE, NULL, 0), TR_OK);
	assert_true(
	    TT_WAIT_FOR(tt_stats(rt).msgs_sent > before.msgs_sent, TT_WAIT_MS));
	assert_rc(tr_timer_cancel(rt, t), TR_OK);
	assert_rc(tr_timer_cancel(rt, t), TR_ENOENT);
	tt_assert_port_empty(port);

	/* Fired and taken: no longer cancellable. */
	assert_rc(tr_post_after(rt, &t, me, 0, 0, MSG_FIRE, NULL, 0), TR_OK);
	tr_msg_free(tt_recv(port, TT_WAIT_MS));
	assert_rc(tr_timer_cancel(rt, t), TR_ENOENT);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Counts ticks, tells the port about each, and exits after three. */
struct ticked {
	tr_pid report_to;
	unsigned ticks;
};

static int ticked_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct ticked *t = state;

	TT_ACHECK(m->type == MSG_TICK);
	TT_ACHECK(tr_pid_is_none(m->sender));
	TT_ACHECK(tr_send(ctx, t->report_to, MSG_NOTE, NULL, 0) == TR_OK);
	if (++t->ticks == 3)
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour ticked_bhv = {
    .name = "ticked",
    .handle = ticked_handle,
    .terminate = free_state,
};

/* A periodic timer whose target dies stops by itself: the runtime becomes
 * quiescent without anyone cancelling it. */
static void test_periodic_stops_when_target_dies(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct ticked *t = calloc(1, sizeof(*t));
	tr_timer timer = 0;
	tr_pid target;

	assert_non_null(t);
	t->report_to = tr_port_pid(port);
	target = tt_spawn(rt, &ticked_bhv, t);
	assert_rc(
	    tr_post_after(rt, &timer, target, 5, 5, MSG_TICK, NULL, 0), TR_OK);
	for (int i = 0; i < 3; i++) {
		tr_msg *m = tt_recv(port, TT_WAIT_MS);

		assert_int_equal(m->type, MSG_NOTE);
		tr_msg_free(m);
	}
	tt_quiesce(rt);
	assert_false(tr_is_alive(rt, target));
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_post_after(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid me = tr_port_pid(port), from, gone;
	tr_timer t = 0;
	uint64_t v = 5;
	struct arm_cmd cmd;
	struct arm_res res;
	tr_pid agent = tt_spawn(rt, &agent_bhv, NULL);

	/* The bytes are copied when the timer is armed. */
	assert_rc(
	    tr_post_after(rt, &t, me, 20, 0, MSG_FIRE, &v, sizeof(v)), TR_OK);
	assert_true(t != 0);
	v = 6;
	assert_int_equal(recv_value(port, MSG_FIRE, &from), 5);
	assert_true(tr_pid_is_none(from));

	/* Errors as tr_post, plus a negative delay. */
	assert_rc(tr_post_after(rt, NULL, me, -1, 0, MSG_FIRE, &v, sizeof(v)),
	    TR_EINVAL);
	assert_rc(
	    tr_post_after(rt, NULL, me, 10, 0, TR_MSG_SYSTEM, &v, sizeof(v)),
	    TR_EINVAL);
	assert_rc(
	    tr_post_after(rt, NULL, me, 10, 0, MSG_FIRE, NULL, 8), TR_EINVAL);
	assert_rc(tr_post_after(NULL, NULL, me, 10, 0, MSG_FIRE, &v, sizeof(v)),
	    TR_EINVAL);
	/* A pid whose generation is stale names no live actor. */
	gone = agent;
	gone.gen++;
	assert_rc(tr_post_after(rt, NULL, gone, 10, 0, MSG_FIRE, &v, sizeof(v)),
	    TR_ENOPROC);

	/* The same checks from an actor. */
	cmd = (struct arm_cmd){me, -1, 0, MSG_FIRE, 1};
	agent_arm(rt, agent, &cmd, 1, &res);
	assert_rc(res.rc, TR_EINVAL);
	cmd = (struct arm_cmd){gone, 10, 0, MSG_FIRE, 1};
	agent_arm(rt, agent, &cmd, 1, &res);
	assert_rc(res.rc, TR_ENOPROC);
	cmd = (struct arm_cmd){me, 10, 0, TR_MSG_TIMEOUT, 1};
	agent_arm(rt, agent, &cmd, 1, &res);
	assert_rc(res.rc, TR_EINVAL);
	/* A zero delay is fine and fires. */
	cmd = (struct arm_cmd){me, 0, 0, MSG_FIRE, 7};
	agent_arm(rt, agent, &cmd, 1, &res);
	assert_rc(res.rc, TR_OK);
	assert_int_equal(recv_value(port, MSG_FIRE, NULL), 7);

	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Stop cancels pending timers and frees their payloads instead of waiting
 * for them (a wait would hit the ctest timeout). */
static void test_stop_cancels_timers(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid agent = tt_spawn(rt, &agent_bhv, NULL);
	uint64_t big[32] = {0};

	for (int i = 0; i < 50; i++) {
		assert_rc(tr_post_after(rt, NULL, agent, 3600 * 1000, 0,
		              MSG_FIRE, big, sizeof(big)),
		    TR_OK);
		assert_rc(tr_post_after(rt, NULL, agent, 3600 * 1000, 1000,
		              MSG_TICK, big, sizeof(big)),
		    TR_OK);
	}
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_send_after_order),
	    TT_TEST(test_cancel),
	    TT_TEST(test_cancel_after_fire),
	    TT_TEST(test_periodic),
	    TT_TEST(test_periodic_stops_when_target_dies),
	    TT_TEST(test_post_after),
	    TT_TEST(test_stop_cancels_timers),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
