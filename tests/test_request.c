/*
 * Request/reply tests: tr_request + tr_reply between actors, request
 * timeouts and late replies, and tr_call from plain threads.
 *
 * A "client" actor issues requests on command from the test thread and
 * forwards everything it receives to the test's port as a trace, so the
 * test thread makes all the assertions.
 */
#include "common.h"

#include <pthread.h>

enum {
	MSG_REQ = 1, /* server replies value + 1 */
	MSG_REP,     /* the server's reply */
	MSG_GATED,   /* server replies only once the test opens the gate */
	MSG_PLAIN,   /* not a request: server's tr_reply must refuse it */
	MSG_CMD,     /* test -> client */
	MSG_ISSUED,  /* client -> test: result of tr_request / tr_call */
	MSG_TRACE,   /* client -> test: a message the client received */
};

/* ------------------------------------------------------------------------ */
/* Server                                                                    */
/* ------------------------------------------------------------------------ */

static _Atomic bool g_gate;
static _Atomic bool g_late_replied;
static _Atomic int g_late_reply_rc;
static _Atomic int g_plain_reply_rc;

static int server_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	uint64_t v = 0;
	int64_t deadline;

	(void)state;
	if (m->size == sizeof(v))
		memcpy(&v, m->data, sizeof(v));
	v++;
	switch (m->type) {
	case MSG_REQ:
		TT_ACHECK(m->ref != 0);
		TT_ACHECK(tr_reply(ctx, m, MSG_REP, &v, sizeof(v)) == TR_OK);
		break;
	case MSG_GATED:
		/* A reply can only be sent while the request is being
		 * handled, so a late reply means a slow handler: hold this
		 * scheduler until the test has seen the timeout. Bounded,
		 * so a runtime that cannot deliver the timeout meanwhile
		 * fails the test instead of hanging it. */
		deadline = tt_now_ms() + TT_WAIT_MS;
		while (!atomic_load(&g_gate) && tt_now_ms() < deadline)
			tt_sleep_ms(1);
		TT_ACHECK(atomic_load(&g_gate));
		atomic_store(
		    &g_late_reply_rc, tr_reply(ctx, m, MSG_REP, &v, sizeof(v)));
		atomic_store(&g_late_replied, true);
		break;
	case MSG_PLAIN:
		TT_ACHECK(m->ref == 0);
		atomic_store(&g_plain_reply_rc,
		    tr_reply(ctx, m, MSG_REP, &v, sizeof(v)));
		break;
	}
	return 0;
}

static const tr_behaviour server_bhv = {
    .name = "server",
    .handle = server_handle,
};

/* Never answers. */
static int silent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour silent_bhv = {
    .name = "silent",
    .handle = silent_handle,
};

/* ------------------------------------------------------------------------ */
/* Client                                                                    */
/* ------------------------------------------------------------------------ */

enum { OP_REQUEST = 1, OP_CALL };

struct cmd {
	uint32_t op;
	uint32_t type;
	tr_pid to;
	uint64_t value;
	int64_t timeout_ms;
};

struct issued {
	int rc;
	uint64_t ref;
};

struct trace {
	uint32_t type;
	uint32_t size;
	uint64_t ref;
	tr_pid sender;
	uint64_t value;
};

static int client_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	struct issued is = {0, 0};
	struct trace tr;
	struct cmd c;
	tr_msg *reply = NULL;

	if (m->type == MSG_CMD && tr_pid_is_none(m->sender)) {
		TT_ACHECK(m->size == sizeof(c));
		memcpy(&c, m->data, sizeof(c));
		if (c.op == OP_REQUEST) {
			is.rc = tr_request(ctx, &is.ref, c.to, c.type, &c.value,
			    sizeof(c.value), c.timeout_ms);
		} else {
			/* Must be refused at once: an actor that blocked
			 * here would stall its scheduler. */
			is.rc = tr_call(&reply, tr_runtime_of(ctx), c.to,
			    c.type, &c.value, sizeof(c.value), c.timeout_ms);
			if (is.rc == TR_OK)
				tr_msg_free(reply);
		}
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_ISSUED, &is, sizeof(is)) == TR_OK);
		return 0;
	}
	memset(&tr, 0, sizeof(tr));
	tr.type = m->type;
	tr.size = m->size;
	tr.ref = m->ref;
	tr.sender = m->sender;
	if (m->size == sizeof(tr.value))
		memcpy(&tr.value, m->data, sizeof(tr.value));
	TT_ACHECK(tr_send(ctx, *port, MSG_TRACE, &tr, sizeof(tr)) == TR_OK);
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour client_bhv = {
    .name = "client",
    .handle = client_handle,
    .terminate = free_state,
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

struct world {
	tr_runtime *rt;
	tr_port *port;
	tr_pid server, silent, client, dead;
};

static void world_init(struct world *w, struct tt_fixture *fx)
{
	tr_pid *port_pid = malloc(sizeof(*port_pid));

	assert_non_null(port_pid);
	atomic_store(&g_gate, false);
	atomic_store(&g_late_replied, false);
	atomic_store(&g_late_reply_rc, 1);
	atomic_store(&g_plain_reply_rc, 1);
	/* Two schedulers: the gated server holds one of them. */
	w->rt = tt_start(fx, 2);
	w->port = tt_port(fx);
	*port_pid = tr_port_pid(w->port);
	w->server = tt_spawn(w->rt, &server_bhv, NULL);
	w->silent = tt_spawn(w->rt, &silent_bhv, NULL);
	w->client = tt_spawn(w->rt, &client_bhv, port_pid);
	w->dead = tt_spawn(w->rt, &quit_bhv, NULL);
	assert_rc(tr_post(w->rt, w->dead, 0, NULL, 0), TR_OK);
	tt_quiesce(w->rt);
	assert_false(tr_is_alive(w->rt, w->dead));
}

/* Has the client run one command; returns what it reported. */
static struct issued client_do(struct world *w, uint32_t op, tr_pid to,
    uint32_t type, uint64_t value, int64_t timeout_ms)
{
	struct cmd c = {op, type, to, value, timeout_ms};
	struct issued is;

	assert_rc(tr_post(w->rt, w->client, MSG_CMD, &c, sizeof(c)), TR_OK);
	tt_recv_data(w->port, MSG_ISSUED, &is, sizeof(is));
	return is;
}

static struct trace next_trace(struct world *w)
{
	struct trace tr;
	tr_pid from = tt_recv_data(w->port, MSG_TRACE, &tr, sizeof(tr));

	assert_true(tr_pid_eq(from, w->client));
	return tr;
}

static void test_request_reply(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	struct issued a, b;
	struct trace tr;

	world_init(&w, fx);
	a = client_do(&w, OP_REQUEST, w.server, MSG_REQ, 41, -1);
	assert_rc(a.rc, TR_OK);
	assert_true(a.ref != 0);
	tr = next_trace(&w);
	assert_int_equal(tr.type, MSG_REP);
	assert_int_equal(tr.ref, a.ref);
	assert_true(tr_pid_eq(tr.sender, w.server));
	assert_int_equal(tr.value, 42);

	/* Each request gets a fresh reference; two outstanding requests
	 * are told apart by it. The first reply may come before or after
	 * the second request is issued, so sort the four reports by type:
	 * within each type the order is fixed (the server answers in
	 * request order). */
	{
		struct cmd c1 = {OP_REQUEST, MSG_REQ, w.server, 100, 10000};
		struct cmd c2 = {OP_REQUEST, MSG_REQ, w.server, 200, 10000};
		struct issued is[2];
		struct trace trs[2];
		int nis = 0, ntr = 0;

		assert_rc(
		    tr_post(w.rt, w.client, MSG_CMD, &c1, sizeof(c1)), TR_OK);
		assert_rc(
		    tr_post(w.rt, w.client, MSG_CMD, &c2, sizeof(c2)), TR_OK);
		for (int i = 0; i < 4; i++) {
			tr_msg *m = tt_recv(w.port, TT_WAIT_MS);

			if (m->type == MSG_ISSUED) {
				assert_true(nis < 2);
				assert_int_equal(m->size, sizeof(is[0]));
				memcpy(&is[nis++], m->data, sizeof(is[0]));
			} else {
				assert_int_equal(m->type, MSG_TRACE);
				assert_true(ntr < 2);
				assert_int_equal(m->size, sizeof(trs[0]));
				memcpy(&trs[ntr++], m->data, sizeof(trs[0]));
			}
			tr_msg_free(m);
		}
		a = is[0];
		b = is[1];
		assert_rc(a.rc, TR_OK);
		assert_rc(b.rc, TR_OK);
		assert_true(a.ref != b.ref);
		assert_int_equal(trs[0].type, MSG_REP);
		assert_int_equal(trs[0].ref, a.ref);
		assert_int_equal(trs[0].value, 101);
		assert_int_equal(trs[1].type, MSG_REP);
		assert_int_equal(trs[1].ref, b.ref);
		assert_int_equal(trs[1].value, 201);
	}

	/* Answered requests leave no timeout behind. */
	tt_quiesce(w.rt);
	tt_assert_port_empty(w.port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_request_timeout(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	struct issued a;
	struct trace tr;

	world_init(&w, fx);
	a = client_do(&w, OP_REQUEST, w.silent, MSG_REQ, 1, 50);
	assert_rc(a.rc, TR_OK);
	tr = next_trace(&w);
	assert_int_equal(tr.type, TR_MSG_TIMEOUT);
	assert_int_equal(tr.ref, a.ref);
	assert_int_equal(tr.size, 0);
	/* Exactly one of reply or timeout. */
	tt_quiesce(w.rt);
	tt_assert_port_empty(w.port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_request_late_reply_dropped(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	struct issued a;
	struct trace tr;
	int rc;

	world_init(&w, fx);
	a = client_do(&w, OP_REQUEST, w.server, MSG_GATED, 1, 50);
	assert_rc(a.rc, TR_OK);
	tr = next_trace(&w);
	assert_int_equal(tr.type, TR_MSG_TIMEOUT);
	assert_int_equal(tr.ref, a.ref);

	/* Now let the server reply: the reply must not reach the client. */
	atomic_store(&g_gate, true);
	assert_true(TT_WAIT_FOR(atomic_load(&g_late_replied), TT_WAIT_MS));
	rc = atomic_load(&g_late_reply_rc);
	assert_true(rc == TR_OK || rc == TR_ENOPROC || rc == TR_ENOENT);
	tt_quiesce(w.rt);
	tt_assert_port_empty(w.port);

	/* The pair still works afterwards. */
	a = client_do(&w, OP_REQUEST, w.server, MSG_REQ, 5, 10000);
	assert_rc(a.rc, TR_OK);
	tr = next_trace(&w);
	assert_int_equal(tr.type, MSG_REP);
	assert_int_equal(tr.ref, a.ref);
	assert_int_equal(tr.value, 6);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_request_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	struct issued a;

	world_init(&w, fx);
	/* A dead target: refused, and nothing arrives later. */
	a = client_do(&w, OP_REQUEST, w.dead, MSG_REQ, 1, 50);
	assert_rc(a.rc, TR_ENOPROC);
	a = client_do(&w, OP_REQUEST, w.server, TR_MSG_SYSTEM, 1, 50);
	assert_rc(a.rc, TR_EINVAL);

	/* tr_reply to a message that is no request. */
	assert_rc(tr_post(w.rt, w.server, MSG_PLAIN, NULL, 0), TR_OK);
	assert_true(
	    TT_WAIT_FOR(atomic_load(&g_plain_reply_rc) != 1, TT_WAIT_MS));
	assert_rc(atomic_load(&g_plain_reply_rc), TR_EINVAL);

	/* tr_call from inside an actor. */
	a = client_do(&w, OP_CALL, w.server, MSG_REQ, 1, 1000);
	assert_rc(a.rc, TR_EINVAL);

	tt_quiesce(w.rt);
	tt_assert_port_empty(w.port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static uint64_t call_value(struct world *w, tr_pid to, uint32_t type,
    uint64_t value, int64_t timeout_ms)
{
	tr_msg *r = NULL;
	uint64_t got = 0;

	assert_rc(
	    tr_call(&r, w->rt, to, type, &value, sizeof(value), timeout_ms),
	    TR_OK);
	assert_non_null(r);
	assert_int_equal(r->type, MSG_REP);
	assert_int_equal(r->size, sizeof(got));
	assert_true(tr_pid_eq(r->sender, to));
	memcpy(&got, r->data, sizeof(got));
	tr_msg_free(r);
	return got;
}

static void test_call_from_main(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	tr_msg *r = NULL;
	uint64_t v = 1;
	int rc;

	world_init(&w, fx);
	assert_int_equal(call_value(&w, w.server, MSG_REQ, 41, TT_WAIT_MS), 42);
	assert_int_equal(call_value(&w, w.server, MSG_REQ, 9, -1), 10);

	assert_rc(tr_call(&r, w.rt, w.silent, MSG_REQ, &v, sizeof(v), 100),
	    TR_ETIMEDOUT);
	assert_rc(
	    tr_call(&r, w.rt, w.dead, MSG_REQ, &v, sizeof(v), 100), TR_ENOPROC);
	assert_rc(
	    tr_call(&r, w.rt, w.server, TR_MSG_SYSTEM, &v, sizeof(v), 100),
	    TR_EINVAL);
	assert_rc(tr_call(NULL, w.rt, w.server, MSG_REQ, &v, sizeof(v), 100),
	    TR_EINVAL);
	assert_rc(tr_call(&r, NULL, w.server, MSG_REQ, &v, sizeof(v), 100),
	    TR_EINVAL);

	/* A reply that comes after the call timed out is dropped (and
	 * freed), and does not confuse the next call. */
	assert_rc(tr_call(&r, w.rt, w.server, MSG_GATED, &v, sizeof(v), 50),
	    TR_ETIMEDOUT);
	atomic_store(&g_gate, true);
	assert_true(TT_WAIT_FOR(atomic_load(&g_late_replied), TT_WAIT_MS));
	rc = atomic_load(&g_late_reply_rc);
	assert_true(rc == TR_OK || rc == TR_ENOPROC || rc == TR_ENOENT);
	tt_quiesce(w.rt);
	assert_int_equal(call_value(&w, w.server, MSG_REQ, 77, TT_WAIT_MS), 78);

	tt_quiesce(w.rt);
	tt_assert_port_empty(w.port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

#define CALL_THREADS 4
#define CALLS 300

struct caller {
	tr_runtime *rt;
	tr_pid server;
	uint64_t base;
};

/* Each thread's replies must be its own. */
static void *caller_main(void *arg)
{
	struct caller *c = arg;

	for (uint64_t i = 0; i < CALLS; i++) {
		uint64_t v = c->base + i, got = 0;
		tr_msg *r = NULL;
		int rc = tr_call(
		    &r, c->rt, c->server, MSG_REQ, &v, sizeof(v), TT_WAIT_MS);

		TT_ACHECK(rc == TR_OK);
		if (rc != TR_OK)
			continue;
		TT_ACHECK(r->type == MSG_REP && r->size == sizeof(got));
		memcpy(&got, r->data, sizeof(got));
		TT_ACHECK(got == v + 1);
		tr_msg_free(r);
	}
	return NULL;
}

static void test_call_concurrent(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	struct world w;
	struct caller c[CALL_THREADS];
	pthread_t th[CALL_THREADS];

	world_init(&w, fx);
	for (int i = 0; i < CALL_THREADS; i++) {
		c[i] = (struct caller){w.rt, w.server, (uint64_t)(i + 1) << 32};
		assert_int_equal(
		    pthread_create(&th[i], NULL, caller_main, &c[i]), 0);
	}
	for (int i = 0; i < CALL_THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	tt_assert_actors_ok();
	tt_quiesce(w.rt);
	tt_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_request_reply),
	    TT_TEST(test_request_timeout),
	    TT_TEST(test_request_late_reply_dropped),
	    TT_TEST(test_request_errors),
	    TT_TEST(test_call_from_main),
	    TT_TEST(test_call_concurrent),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
