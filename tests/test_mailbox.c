/*
 * Mailbox tests: many producers into one mailbox (nothing lost, per-sender
 * order kept), copy semantics of tr_send/tr_post, and zero-copy messages.
 */
#include "common.h"

#include <pthread.h>

enum {
	MSG_ITEM = 1,
	MSG_GO,
	MSG_REPORT,
	MSG_BLOB,
	MSG_BLOB_ACK,
	MSG_VALUE,
};

#define N_ACTOR_PRODUCERS 8
#define N_THREAD_PRODUCERS 2
#define N_PRODUCERS (N_ACTOR_PRODUCERS + N_THREAD_PRODUCERS)
#define K_MSGS 20000u
/* Messages a producer actor sends per turn: it then sends itself MSG_GO to
 * continue, so producers interleave with the sink instead of each flooding
 * the mailbox in one callback. */
#define CHUNK 64u

struct item {
	tr_pid from; /* the producing actor, or TR_PID_NONE for a thread */
	uint32_t producer;
	uint32_t seq;
};

struct report {
	uint64_t received;
	uint32_t errors;
	uint32_t complete; /* producers whose every message arrived */
};

/* ------------------------------------------------------------------------ */
/* Sink                                                                      */
/* ------------------------------------------------------------------------ */

struct sink {
	tr_pid report_to;
	uint64_t expect;
	uint64_t received;
	uint32_t errors;
	uint32_t next_seq[N_PRODUCERS];
};

static int sink_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct sink *s = state;
	struct item it;

	if (m->type != MSG_ITEM || m->size != sizeof(it)) {
		s->errors++;
		return 0;
	}
	memcpy(&it, m->data, sizeof(it));
	/* The sequence of each producer must come in exactly 0, 1, 2, ...:
	 * a gap is a lost message, a step back is a reordering. */
	if (it.producer >= N_PRODUCERS || it.seq != s->next_seq[it.producer])
		s->errors++;
	else
		s->next_seq[it.producer] = it.seq + 1;
	if (!tr_pid_eq(m->sender, it.from))
		s->errors++;
	s->received++;
	/* Anything past the expected total is a duplicate. */
	TT_ACHECK(s->received <= s->expect);
	if (s->received == s->expect) {
		struct report r = {s->received, s->errors, 0};

		for (int i = 0; i < N_PRODUCERS; i++)
			if (s->next_seq[i] == K_MSGS)
				r.complete++;
		TT_ACHECK(tr_send(ctx, s->report_to, MSG_REPORT, &r,
		              sizeof(r)) == TR_OK);
	}
	return 0;
}

static void sink_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour sink_bhv = {
    .name = "sink",
    .handle = sink_handle,
    .terminate = sink_terminate,
};

/* ------------------------------------------------------------------------ */
/* Producers                                                                 */
/* ------------------------------------------------------------------------ */

struct producer {
	tr_pid sink;
	uint32_t id;
	uint32_t next;
};

static int producer_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct producer *p = state;
	uint32_t n = 0;

	TT_ACHECK(m->type == MSG_GO);
	while (n < CHUNK && p->next < K_MSGS) {
		struct item it = {tr_self(ctx), p->id, p->next};

		TT_ACHECK(
		    tr_send(ctx, p->sink, MSG_ITEM, &it, sizeof(it)) == TR_OK);
		p->next++;
		n++;
	}
	if (p->next < K_MSGS)
		TT_ACHECK(tr_send(ctx, tr_self(ctx), MSG_GO, NULL, 0) == TR_OK);
	else
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static void producer_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	TT_ACHECK(reason == TR_REASON_NORMAL);
	free(state);
}

static const tr_behaviour producer_bhv = {
    .name = "producer",
    .handle = producer_handle,
    .terminate = producer_terminate,
};

struct thread_producer {
	tr_runtime *rt;
	tr_pid sink;
	uint32_t id;
};

static void *thread_producer_main(void *arg)
{
	struct thread_producer *tp = arg;

	for (uint32_t i = 0; i < K_MSGS; i++) {
		struct item it = {TR_PID_NONE, tp->id, i};

		TT_ACHECK(tr_post(tp->rt, tp->sink, MSG_ITEM, &it,
		              sizeof(it)) == TR_OK);
	}
	return NULL;
}

static void test_many_producers_one_consumer(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct sink *s = calloc(1, sizeof(*s));
	struct thread_producer tp[N_THREAD_PRODUCERS];
	pthread_t th[N_THREAD_PRODUCERS];
	tr_pid sink, prod[N_ACTOR_PRODUCERS];
	struct report r;
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);

	assert_non_null(s);
	s->report_to = tr_port_pid(port);
	s->expect = (uint64_t)N_PRODUCERS * K_MSGS;
	sink = tt_spawn(rt, &sink_bhv, s);

	for (uint32_t i = 0; i < N_ACTOR_PRODUCERS; i++) {
		struct producer *p = calloc(1, sizeof(*p));

		assert_non_null(p);
		p->sink = sink;
		p->id = i;
		prod[i] = tt_spawn(rt, &producer_bhv, p);
	}
	for (uint32_t i = 0; i < N_THREAD_PRODUCERS; i++) {
		tp[i] =
		    (struct thread_producer){rt, sink, N_ACTOR_PRODUCERS + i};
		assert_int_equal(
		    pthread_create(&th[i], NULL, thread_producer_main, &tp[i]),
		    0);
	}
	for (uint32_t i = 0; i < N_ACTOR_PRODUCERS; i++)
		assert_rc(tr_post(rt, prod[i], MSG_GO, NULL, 0), TR_OK);
	for (uint32_t i = 0; i < N_THREAD_PRODUCERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);

	tt_recv_data(port, MSG_REPORT, &r, sizeof(r));
	assert_int_equal(r.received, (uint64_t)N_PRODUCERS * K_MSGS);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.complete, N_PRODUCERS);

	tt_quiesce(rt);
	st = tt_stats(rt);
	assert_true(st.msgs_sent >= (uint64_t)N_PRODUCERS * K_MSGS);
	/* The producers exited normally; the sink is still there. */
	for (uint32_t i = 0; i < N_ACTOR_PRODUCERS; i++)
		assert_false(tr_is_alive(rt, prod[i]));
	assert_true(tr_is_alive(rt, sink));
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* ------------------------------------------------------------------------ */
/* Copy semantics and zero-copy messages                                     */
/* ------------------------------------------------------------------------ */

#define BLOB_SIZE 4096u

static uint8_t blob_byte(size_t i, uint8_t salt)
{
	return (uint8_t)(i * 31u + salt);
}

/* Checks a blob from the test thread and answers the sender given in the
 * blob's first bytes with a zero-copy blob of its own. */
static int blob_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *report_to = state;
	tr_msg *r = NULL;
	bool ok = true;

	if (m->type == MSG_VALUE) {
		/* Relay copy-semantics probes unchanged. */
		TT_ACHECK(tr_send(ctx, *report_to, MSG_VALUE, m->data,
		              m->size) == TR_OK);
		return 0;
	}
	TT_ACHECK(m->type == MSG_BLOB);
	TT_ACHECK(m->size == BLOB_SIZE);
	TT_ACHECK(tr_pid_is_none(m->sender));
	TT_ACHECK(((uintptr_t)m->data & 15u) == 0);
	for (size_t i = 0; i < m->size && i < BLOB_SIZE; i++)
		if (m->data[i] != blob_byte(i, 1))
			ok = false;
	TT_ACHECK(ok);

	TT_ACHECK(tr_msg_alloc(&r, tr_runtime_of(ctx), MSG_BLOB_ACK,
	              BLOB_SIZE) == TR_OK);
	if (r == NULL)
		return 0;
	for (size_t i = 0; i < BLOB_SIZE; i++)
		r->data[i] = blob_byte(i, 2);
	if (tr_send_msg(ctx, *report_to, r) != TR_OK) {
		/* On error the sender still owns the message. */
		tt_actor_fail(__FILE__, __LINE__, "tr_send_msg");
		tr_msg_free(r);
	}
	return 0;
}

static void blob_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour blob_bhv = {
    .name = "blob",
    .handle = blob_handle,
    .terminate = blob_terminate,
};

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

static void test_zero_copy(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid *report_to = malloc(sizeof(*report_to));
	tr_pid blob, dead;
	tr_msg *m = NULL;

	assert_non_null(report_to);
	*report_to = tr_port_pid(port);
	blob = tt_spawn(rt, &blob_bhv, report_to);

	/* Test thread -> actor: tr_msg_alloc + tr_post_msg. */
	assert_rc(tr_msg_alloc(&m, rt, MSG_BLOB, BLOB_SIZE), TR_OK);
	assert_non_null(m);
	assert_int_equal(m->type, MSG_BLOB);
	assert_int_equal(m->size, BLOB_SIZE);
	assert_int_equal((uintptr_t)m->data & 15u, 0);
	for (size_t i = 0; i < BLOB_SIZE; i++)
		m->data[i] = blob_byte(i, 1);
	assert_rc(tr_post_msg(rt, blob, m), TR_OK);
	m = NULL; /* the runtime owns it now */

	/* Actor -> port: tr_msg_alloc + tr_send_msg. */
	m = tt_recv(port, TT_WAIT_MS);
	assert_int_equal(m->type, MSG_BLOB_ACK);
	assert_int_equal(m->size, BLOB_SIZE);
	assert_true(tr_pid_eq(m->sender, blob));
	assert_int_equal((uintptr_t)m->data & 15u, 0);
	for (size_t i = 0; i < BLOB_SIZE; i++)
		assert_int_equal(m->data[i], blob_byte(i, 2));
	tr_msg_free(m);

	/* A refused message stays the caller's: free it here. */
	dead = tt_spawn(rt, &quit_bhv, NULL);
	assert_rc(tr_post(rt, dead, MSG_VALUE, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_false(tr_is_alive(rt, dead));
	assert_rc(tr_msg_alloc(&m, rt, MSG_BLOB, 64), TR_OK);
	assert_rc(tr_post_msg(rt, dead, m), TR_ENOPROC);
	tr_msg_free(m);

	/* Empty payloads are fine both ways. */
	assert_rc(tr_msg_alloc(&m, rt, MSG_VALUE, 0), TR_OK);
	assert_int_equal(m->size, 0);
	assert_rc(tr_post_msg(rt, blob, m), TR_OK);
	m = tt_recv(port, TT_WAIT_MS);
	assert_int_equal(m->type, MSG_VALUE);
	assert_int_equal(m->size, 0);
	tr_msg_free(m);

	tr_msg_free(NULL);
	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* tr_post copies the bytes before it returns: changing the buffer after the
 * call must not change what arrives. */
static void test_post_copies(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid *report_to = malloc(sizeof(*report_to));
	tr_pid relay;
	uint64_t buf[8], got[8];

	assert_non_null(report_to);
	*report_to = tr_port_pid(port);
	relay = tt_spawn(rt, &blob_bhv, report_to);

	for (uint64_t round = 0; round < 100; round++) {
		for (int i = 0; i < 8; i++)
			buf[i] = round * 8 + (uint64_t)i;
		assert_rc(
		    tr_post(rt, relay, MSG_VALUE, buf, sizeof(buf)), TR_OK);
		memset(buf, 0xA5, sizeof(buf));
	}
	for (uint64_t round = 0; round < 100; round++) {
		tt_recv_data(port, MSG_VALUE, got, sizeof(got));
		/* Also checks the order of one thread's posts. */
		for (int i = 0; i < 8; i++)
			assert_int_equal(got[i], round * 8 + (uint64_t)i);
	}
	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Messages still queued when the runtime stops are freed by it (checked by
 * LeakSanitizer in the address build). */
static void test_undelivered_freed_at_stop(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_pid sinks[16];

	for (int i = 0; i < 16; i++) {
		struct sink *s = calloc(1, sizeof(*s));

		assert_non_null(s);
		s->report_to = TR_PID_NONE;
		s->expect = UINT64_MAX;
		sinks[i] = tt_spawn(rt, &sink_bhv, s);
	}
	for (uint32_t n = 0; n < 200; n++) {
		for (int i = 0; i < 16; i++) {
			struct item it = {TR_PID_NONE, 0, n};
			tr_msg *m = NULL;

			assert_rc(
			    tr_post(rt, sinks[i], MSG_ITEM, &it, sizeof(it)),
			    TR_OK);
			assert_rc(tr_msg_alloc(&m, rt, MSG_ITEM, 256), TR_OK);
			memset(m->data, 0, 256);
			assert_rc(tr_post_msg(rt, sinks[i], m), TR_OK);
		}
	}
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_many_producers_one_consumer),
	    TT_TEST(test_zero_copy),
	    TT_TEST(test_post_copies),
	    TT_TEST(test_undelivered_freed_at_stop),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
