/*
 * Deferred messages (tr_defer, tr_replay, tr_deferred): an actor that must
 * see one message before others sets the others aside and takes them
 * again later, as gen_statem postpones events, without copying them.
 *
 * A "sorter" actor is driven by messages from the test thread; it reports
 * what it handled, in order, to the test's port.
 */
#include "common.h"

#include <pthread.h>

enum {
	PING = 1, /* uint32_t seq, or struct flood */
	PEERS,    /* the message that must come first */
	REDEFER,  /* replay, deferring odd pings again */
	NESTED,   /* replay, deferring odd ones; at ping 4 replay again */
	BAD,      /* try what tr_defer refuses */
	QUERY,    /* report struct info */
	T_PING = 50,
	T_INFO,
	T_RC,
};

enum { M_DEFER, M_ODD, M_ALL, M_NESTED };

#define NPTR 64

struct flood {
	uint32_t sender, seq;
};

struct info {
	uint32_t deferred;  /* tr_deferred */
	uint32_t replayed;  /* what tr_replay returned last */
	uint32_t same;      /* replayed messages that were the very ones
	                     * deferred (same address: not copied) */
	uint32_t flood_got; /* flood pings handled */
	uint32_t flood_bad; /* of which out of order for their sender */
};

struct sorter {
	tr_pid port;
	int mode;
	const tr_msg *ptr[NPTR];
	struct info info;
	uint32_t next[4]; /* flood: next seq expected per sender */
};

static void report(tr_ctx *ctx, struct sorter *st, uint32_t seq)
{
	TT_ACHECK(tr_send(ctx, st->port, T_PING, &seq, sizeof(seq)) == TR_OK);
}

static int ping(tr_ctx *ctx, struct sorter *st, const tr_msg *m)
{
	if (m->size > sizeof(struct flood)) {
		/* A big one: it only waits. */
		if (st->mode == M_DEFER)
			TT_ACHECK(tr_defer(ctx, m) == TR_OK);
		return 0;
	}
	if (m->size == sizeof(struct flood)) {
		struct flood f;
		memcpy(&f, m->data, sizeof(f));
		if (st->mode == M_DEFER) {
			TT_ACHECK(tr_defer(ctx, m) == TR_OK);
			return 0;
		}
		st->info.flood_got++;
		if (f.sender >= 4 || f.seq != st->next[f.sender])
			st->info.flood_bad++;
		else
			st->next[f.sender]++;
		return 0;
	}
	uint32_t seq;
	TT_ACHECK(m->size == sizeof(seq));
	memcpy(&seq, m->data, sizeof(seq));
	switch (st->mode) {
	case M_DEFER:
		if (seq < NPTR)
			st->ptr[seq] = m;
		TT_ACHECK(tr_defer(ctx, m) == TR_OK);
		return 0;
	case M_ODD:
	case M_NESTED:
		if (seq % 2 == 1) {
			TT_ACHECK(tr_defer(ctx, m) == TR_OK);
			return 0;
		}
		report(ctx, st, seq);
		if (st->mode == M_NESTED && seq == 4) {
			st->mode = M_ALL;
			st->info.replayed = tr_replay(ctx);
		}
		return 0;
	default:
		if (seq < NPTR && st->ptr[seq] == m)
			st->info.same++;
		report(ctx, st, seq);
		return 0;
	}
}

static int sorter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct sorter *st = state;

	switch (m->type) {
	case PING:
		return ping(ctx, st, m);
	case PEERS:
		st->mode = M_ALL;
		st->info.deferred = tr_deferred(ctx);
		st->info.replayed = tr_replay(ctx);
		report(ctx, st, 1000);
		return 0;
	case REDEFER:
		st->mode = M_ODD;
		st->info.replayed = tr_replay(ctx);
		return 0;
	case NESTED:
		st->mode = M_NESTED;
		st->info.replayed = tr_replay(ctx);
		return 0;
	case BAD: {
		tr_msg fake;
		int32_t rc[4];
		memset(&fake, 0, sizeof(fake));
		rc[0] = tr_defer(ctx, NULL);
		rc[1] = tr_defer(ctx, &fake);
		rc[2] = tr_defer(ctx, m);
		rc[3] = tr_defer(ctx, m); /* it left the mailbox already */
		TT_ACHECK(
		    tr_send(ctx, st->port, T_RC, rc, sizeof(rc)) == TR_OK);
		return 0;
	}
	case QUERY:
		st->info.deferred = tr_deferred(ctx);
		TT_ACHECK(tr_send(ctx, st->port, T_INFO, &st->info,
		              sizeof(st->info)) == TR_OK);
		return 0;
	}
	return 0;
}

static void sorter_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour sorter_bhv = {
    .name = "sorter",
    .handle = sorter_handle,
    .terminate = sorter_terminate,
};

static tr_pid sorter_spawn(tr_runtime *rt, tr_port *port)
{
	struct sorter *st = calloc(1, sizeof(*st));

	assert_non_null(st);
	st->port = tr_port_pid(port);
	return tt_spawn(rt, &sorter_bhv, st);
}

static void post_ping(tr_runtime *rt, tr_pid to, uint32_t seq)
{
	assert_rc(tr_post(rt, to, PING, &seq, sizeof(seq)), TR_OK);
}

static void expect_pings(tr_port *port, const uint32_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t got;
		tt_recv_data(port, T_PING, &got, sizeof(got));
		if (got != want[i])
			fail_msg(
			    "ping %zu: got %u, expected %u", i, got, want[i]);
	}
}

static struct info query(tr_runtime *rt, tr_port *port, tr_pid to)
{
	struct info in;

	assert_rc(tr_post(rt, to, QUERY, NULL, 0), TR_OK);
	tt_recv_data(port, T_INFO, &in, sizeof(in));
	return in;
}

/* Pings before PEERS wait for it; afterwards they come in their order,
 * before the pings sent after PEERS, and they are the same messages. */
static void test_defer_replay(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid s = sorter_spawn(rt, port);
	uint32_t want[16];

	for (uint32_t i = 0; i < 10; i++)
		post_ping(rt, s, i);
	tt_quiesce(rt);
	struct info in = query(rt, port, s);
	assert_int_equal(in.deferred, 10);
	tt_assert_port_empty(port);
	assert_rc(tr_post(rt, s, PEERS, NULL, 0), TR_OK);
	for (uint32_t i = 10; i < 15; i++)
		post_ping(rt, s, i);
	want[0] = 1000;
	for (uint32_t i = 0; i < 15; i++)
		want[i + 1] = i;
	expect_pings(port, want, 16);
	in = query(rt, port, s);
	assert_int_equal(in.deferred, 0);
	assert_int_equal(in.replayed, 10);
	assert_int_equal(in.same, 10);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A replayed message deferred again keeps its place; tr_replay during a
 * replay starts over from the oldest once the current one returns. */
static void test_defer_again(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid s = sorter_spawn(rt, port);
	const uint32_t evens[] = {0, 2, 4, 6, 8};
	const uint32_t odds[] = {1000, 1, 3, 5, 7, 9};
	const uint32_t nested[] = {0, 2, 4, 1, 3, 5, 6, 7, 8, 9};

	for (uint32_t i = 0; i < 10; i++)
		post_ping(rt, s, i);
	assert_rc(tr_post(rt, s, REDEFER, NULL, 0), TR_OK);
	expect_pings(port, evens, 5);
	struct info in = query(rt, port, s);
	assert_int_equal(in.deferred, 5);
	assert_int_equal(in.replayed, 10);
	assert_rc(tr_post(rt, s, PEERS, NULL, 0), TR_OK);
	expect_pings(port, odds, 6);

	/* Back to deferring everything, then the nested replay. */
	tr_pid n = sorter_spawn(rt, port);
	for (uint32_t i = 0; i < 10; i++)
		post_ping(rt, n, i);
	assert_rc(tr_post(rt, n, NESTED, NULL, 0), TR_OK);
	expect_pings(port, nested, 10);
	in = query(rt, port, n);
	assert_int_equal(in.deferred, 0);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* What tr_defer refuses; deferred messages of an actor that exits (or
 * that the runtime stops) are freed with it, large ones too. */
static void test_defer_errors_and_exit(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid s = sorter_spawn(rt, port);
	int32_t rc[4];
	static unsigned char big[100000];

	assert_rc(tr_post(rt, s, BAD, NULL, 0), TR_OK);
	tt_recv_data(port, T_RC, rc, sizeof(rc));
	assert_rc(rc[0], TR_EINVAL);
	assert_rc(rc[1], TR_EINVAL);
	assert_rc(rc[2], TR_OK);
	assert_rc(rc[3], TR_EINVAL);
	assert_int_equal(query(rt, port, s).deferred, 1);
	assert_rc(tr_defer(NULL, NULL), TR_EINVAL);
	assert_int_equal(tr_replay(NULL), 0);
	assert_int_equal(tr_deferred(NULL), 0);

	/* Killed with deferred messages, big and small. */
	for (uint32_t i = 0; i < 50; i++) {
		struct flood f = {0, i};
		assert_rc(tr_post(rt, s, PING, &f, sizeof(f)), TR_OK);
	}
	for (uint32_t i = 0; i < 3; i++)
		assert_rc(tr_post(rt, s, PING, big, sizeof(big)), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(query(rt, port, s).deferred, 54);
	assert_rc(tr_kill(rt, s, TR_REASON_KILL), TR_OK);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, s), TT_WAIT_MS));

	/* Still holding them when the runtime stops. */
	s = sorter_spawn(rt, port);
	for (uint32_t i = 0; i < 5; i++)
		post_ping(rt, s, i);
	tt_quiesce(rt);
	assert_int_equal(query(rt, port, s).deferred, 5);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Senders race with the deferring actor: the message it defers is often
 * the last one in its mailbox while the next is being pushed. Everything
 * is replayed once, in each sender's order. */
struct flooder {
	tr_runtime *rt;
	tr_pid to;
	uint32_t id, n;
};

static void *flood_main(void *arg)
{
	struct flooder *f = arg;

	for (uint32_t i = 0; i < f->n; i++) {
		struct flood m = {f->id, i};
		TT_ACHECK(tr_post(f->rt, f->to, PING, &m, sizeof(m)) == TR_OK);
		if (i % 64 == 0)
			sched_yield();
	}
	return NULL;
}

static void test_defer_concurrent(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid s = sorter_spawn(rt, port);
	enum { SENDERS = 3 };
	uint32_t n = (uint32_t)tt_env_u64("TT_DEFER_FLOOD", 20000);
	pthread_t th[SENDERS];
	struct flooder f[SENDERS];

	for (uint32_t i = 0; i < SENDERS; i++) {
		f[i] = (struct flooder){rt, s, i, n};
		assert_int_equal(
		    pthread_create(&th[i], NULL, flood_main, &f[i]), 0);
	}
	for (uint32_t i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	tt_quiesce(rt);
	struct info in = query(rt, port, s);
	assert_int_equal(in.deferred, SENDERS * n);
	assert_rc(tr_post(rt, s, PEERS, NULL, 0), TR_OK);
	uint32_t mark;
	tt_recv_data(port, T_PING, &mark, sizeof(mark));
	assert_int_equal(mark, 1000);
	in = query(rt, port, s);
	assert_int_equal(in.flood_got, SENDERS * n);
	assert_int_equal(in.flood_bad, 0);
	assert_int_equal(in.deferred, 0);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_defer_replay),
	    TT_TEST(test_defer_again),
	    TT_TEST(test_defer_errors_and_exit),
	    TT_TEST(test_defer_concurrent),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
