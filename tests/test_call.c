/*
 * Calls between actors (tr_call_then, tr_call_named_then, tr_call_cancel):
 * gen_server:call made from an actor, whose outcome runs a continuation in
 * the caller. Every outcome (reply, timeout, callee dead or dying,
 * refusal), calls by name that resolve and retry, cancelling, a
 * continuation that crashes or calls again, and a caller that exits with
 * calls pending.
 *
 * A "caller" actor is driven by the test thread with commands (tr_post);
 * it tells the test's port what started (T_START), what each continuation
 * got (T_DONE) and any message that reached its handle (T_OTHER): the
 * message that ends a call must never get there.
 */
#include "common.h"

#include "rt.h"

enum {
	CMD_CALL = 1, /* struct cmd: tr_call_then */
	CMD_NAMED,    /* struct cmd: tr_call_named_then */
	CMD_CANCEL,   /* struct cmd (ref): tr_call_cancel */
	CMD_REQUEST,  /* struct cmd: tr_request */
	CMD_QUIT,     /* exit normally */
	T_START = 50, /* caller -> port: struct start */
	T_DONE,       /* caller -> port: struct done */
	T_OTHER,      /* caller -> port: uint32_t, a type handle got */
	T_TERM,       /* caller -> port: int32_t, its exit reason */
	T_CANCEL,     /* caller -> port: int32_t, tr_call_cancel's result */
	MSG_Q = 70,   /* a request */
	MSG_HOLD,     /* held: the server answers it only on MSG_RELEASE */
	MSG_RELEASE,
	MSG_REFUSE, /* the refuser answers it with TR_MSG_REFUSED */
};

#define CRASH_VALUE 999u /* the continuation of a call with it crashes */

struct cmd {
	tr_pid to;
	char node[32]; /* "" : NULL */
	char name[32];
	int64_t timeout_ms;
	uint64_t value; /* the payload, and the continuation's tag */
	uint32_t type;
	uint32_t chain; /* calls the continuation makes again */
	uint64_t ref;
};

struct start {
	int32_t rc;
	uint64_t ref;
};

struct done {
	int32_t status;
	uint32_t type; /* the reply's, or 0 for none */
	uint32_t size;
	int32_t down_reason; /* for a DOWN reply */
	uint64_t value;      /* the reply's payload, if 8 bytes */
	uint64_t tag;        /* the call's value */
	tr_pid sender;
};

struct caller {
	tr_pid port;
	struct cmd last; /* what a chained call repeats */
};

static int on_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg);

static int start_call(tr_ctx *ctx, struct caller *c, const struct cmd *k)
{
	uint64_t ref = 0;
	int rc;

	c->last = *k;
	if (k->name[0] != '\0')
		rc = tr_call_named_then(ctx, &ref,
		    k->node[0] != '\0' ? k->node : NULL, k->name, k->type,
		    &k->value, sizeof(k->value), k->timeout_ms, on_done,
		    (void *)(uintptr_t)k->value);
	else
		rc = tr_call_then(ctx, &ref, k->to, k->type, &k->value,
		    sizeof(k->value), k->timeout_ms, on_done,
		    (void *)(uintptr_t)k->value);
	struct start st = {rc, ref};
	TT_ACHECK(tr_send(ctx, c->port, T_START, &st, sizeof(st)) == TR_OK);
	return rc;
}

static int on_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	struct caller *c = state;
	struct done d;

	memset(&d, 0, sizeof(d));
	d.status = status;
	d.tag = (uintptr_t)arg;
	if (reply != NULL) {
		d.type = reply->type;
		d.size = reply->size;
		d.sender = reply->sender;
		if (reply->size == sizeof(d.value))
			memcpy(&d.value, reply->data, sizeof(d.value));
		if (reply->type == TR_MSG_DOWN &&
		    reply->size == sizeof(tr_exit_info)) {
			tr_exit_info info;
			memcpy(&info, reply->data, sizeof(info));
			d.down_reason = info.reason;
		}
	}
	/* A continuation's message is not handle's to defer. */
	if (reply != NULL)
		TT_ACHECK(tr_defer(ctx, reply) == TR_EINVAL);
	TT_ACHECK(tr_send(ctx, c->port, T_DONE, &d, sizeof(d)) == TR_OK);
	if (d.tag == CRASH_VALUE)
		return 44;
	if (c->last.chain > 0) {
		c->last.chain--;
		c->last.value++;
		(void)start_call(ctx, c, &c->last);
	}
	return 0;
}

static int caller_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct caller *c = state;
	struct cmd k;

	switch (m->type) {
	case CMD_CALL:
	case CMD_NAMED:
		TT_ACHECK(m->size == sizeof(k));
		memcpy(&k, m->data, sizeof(k));
		(void)start_call(ctx, c, &k);
		return 0;
	case CMD_REQUEST: {
		memcpy(&k, m->data, sizeof(k));
		struct start st = {0, 0};
		st.rc = tr_request(ctx, &st.ref, k.to, k.type, &k.value,
		    sizeof(k.value), k.timeout_ms);
		TT_ACHECK(
		    tr_send(ctx, c->port, T_START, &st, sizeof(st)) == TR_OK);
		return 0;
	}
	case CMD_CANCEL: {
		memcpy(&k, m->data, sizeof(k));
		int32_t rc = tr_call_cancel(ctx, k.ref);
		TT_ACHECK(
		    tr_send(ctx, c->port, T_CANCEL, &rc, sizeof(rc)) == TR_OK);
		return 0;
	}
	case CMD_QUIT:
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	default: {
		uint32_t t = m->type;
		TT_ACHECK(
		    tr_send(ctx, c->port, T_OTHER, &t, sizeof(t)) == TR_OK);
		return 0;
	}
	}
}

static void caller_terminate(tr_ctx *ctx, void *state, int reason)
{
	struct caller *c = state;
	int32_t r = reason;

	(void)tr_send(ctx, c->port, T_TERM, &r, sizeof(r));
	free(c);
}

static const tr_behaviour caller_bhv = {
    .name = "caller",
    .handle = caller_handle,
    .terminate = caller_terminate,
};

static tr_pid caller_spawn(tr_runtime *rt, tr_port *port)
{
	struct caller *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->port = tr_port_pid(port);
	return tt_spawn(rt, &caller_bhv, c);
}

/* The servers. holder: answers MSG_Q at once; keeps the last MSG_HOLD and
 * answers it when told (MSG_RELEASE); crashes on a MSG_Q of value 33;
 * refuses MSG_REFUSE with TR_EAGAIN, as a node would. */
struct holder {
	tr_pid to;
	uint64_t ref;
	uint64_t value;
};

static _Atomic unsigned g_requests;

static int holder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct holder *h = state;
	uint64_t v = 0;

	if (m->size == sizeof(v))
		memcpy(&v, m->data, sizeof(v));
	switch (m->type) {
	case MSG_Q:
		atomic_fetch_add(&g_requests, 1);
		if (v == 33)
			return 33;
		v += 1000;
		TT_ACHECK(tr_reply(ctx, m, MSG_Q, &v, sizeof(v)) == TR_OK);
		return 0;
	case MSG_HOLD:
		h->to = m->sender;
		h->ref = m->ref;
		h->value = v;
		return 0;
	case MSG_RELEASE: {
		/* tr_reply needs only the request's sender and ref. */
		tr_msg req;
		memset(&req, 0, sizeof(req));
		req.sender = h->to;
		req.ref = h->ref;
		v = h->value + 2000;
		(void)tr_reply(ctx, &req, MSG_HOLD, &v, sizeof(v));
		return 0;
	}
	case MSG_REFUSE:
		TT_ACHECK(tr__reply_refused(tr_runtime_of(ctx), tr_self(ctx),
		              m->sender, m->ref, TR_EAGAIN) == TR_OK);
		return 0;
	}
	return 0;
}

static void free_state(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour holder_bhv = {
    .name = "holder",
    .handle = holder_handle,
    .terminate = free_state,
};

static tr_pid holder_spawn(tr_runtime *rt)
{
	struct holder *h = calloc(1, sizeof(*h));

	assert_non_null(h);
	return tt_spawn(rt, &holder_bhv, h);
}

/* ---- helpers on the test thread ------------------------------------------ */

static tr_msg *expect(tr_port *port, uint32_t type)
{
	for (;;) {
		tr_msg *m = tt_recv(port, TT_WAIT_MS);

		if (m->type == type)
			return m;
		if (m->type == T_OTHER) {
			uint32_t t;
			memcpy(&t, m->data, sizeof(t));
			fail_msg("handle got a message of type %#x", t);
		}
		fail_msg("message of type %u, expected %u", m->type, type);
	}
}

static struct start do_cmd(
    tr_runtime *rt, tr_port *port, tr_pid caller, uint32_t cmd, struct cmd k)
{
	struct start st;

	assert_rc(tr_post(rt, caller, cmd, &k, sizeof(k)), TR_OK);
	tr_msg *m = expect(port, T_START);
	memcpy(&st, m->data, sizeof(st));
	tr_msg_free(m);
	return st;
}

static struct done expect_done(tr_port *port)
{
	struct done d;
	tr_msg *m = expect(port, T_DONE);

	memcpy(&d, m->data, sizeof(d));
	tr_msg_free(m);
	return d;
}

static struct cmd call_to(tr_pid to, uint32_t type, uint64_t value, int64_t ms)
{
	struct cmd k;

	memset(&k, 0, sizeof(k));
	k.to = to;
	k.type = type;
	k.value = value;
	k.timeout_ms = ms;
	return k;
}

static struct cmd call_named(
    const char *node, const char *name, uint64_t value, int64_t ms)
{
	struct cmd k = call_to(TR_PID_NONE, MSG_Q, value, ms);

	snprintf(k.node, sizeof(k.node), "%s", node != NULL ? node : "");
	snprintf(k.name, sizeof(k.name), "%s", name);
	return k;
}

/* ---- tests ------------------------------------------------------------- */

/* The reply runs the continuation, not handle; a chained call from the
 * continuation works the same. */
static void test_call_reply(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct cmd k = call_to(srv, MSG_Q, 5, TT_WAIT_MS);
	struct start st;
	struct done d;

	k.chain = 2;
	st = do_cmd(rt, port, caller, CMD_CALL, k);
	assert_rc(st.rc, TR_OK);
	assert_true(st.ref != 0);
	for (uint64_t i = 0; i < 3; i++) {
		if (i > 0)
			tr_msg_free(expect(port, T_START));
		d = expect_done(port);
		assert_rc(d.status, TR_OK);
		assert_int_equal(d.type, MSG_Q);
		assert_int_equal(d.value, 1005 + i);
		assert_int_equal(d.tag, 5 + i);
		assert_true(tr_pid_eq(d.sender, srv));
	}
	/* The callee is no longer monitored: its end reaches nobody. */
	assert_rc(tr_kill(rt, srv, TR_REASON_KILL), TR_OK);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* No answer in time: TR_ETIMEDOUT; the late reply is dropped. */
static void test_call_timeout(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct start st;
	struct done d;

	st = do_cmd(rt, port, caller, CMD_CALL, call_to(srv, MSG_HOLD, 7, 30));
	assert_rc(st.rc, TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_ETIMEDOUT);
	assert_int_equal(d.type, 0);
	assert_int_equal(d.tag, 7);
	assert_rc(tr_post(rt, srv, MSG_RELEASE, NULL, 0), TR_OK);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A callee that is dead fails the call at once (no continuation); one
 * that dies before replying ends it with its DOWN. */
static void test_call_callee_gone(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	tr_pid dead = holder_spawn(rt);
	struct start st;
	struct done d;

	/* Its crash report is expected. */
	tr_runtime_set_log_level(rt, TR_LOG_CRITICAL);
	assert_rc(tr_kill(rt, dead, TR_REASON_KILL), TR_OK);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, dead), TT_WAIT_MS));
	st = do_cmd(
	    rt, port, caller, CMD_CALL, call_to(dead, MSG_Q, 1, TT_WAIT_MS));
	assert_rc(st.rc, TR_ENOPROC);

	st = do_cmd(
	    rt, port, caller, CMD_CALL, call_to(srv, MSG_Q, 33, TT_WAIT_MS));
	assert_rc(st.rc, TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.type, TR_MSG_DOWN);
	assert_int_equal(d.down_reason, 33);
	assert_true(tr_pid_eq(d.sender, srv));

	/* No deadline: the DOWN alone ends it. */
	srv = holder_spawn(rt);
	st = do_cmd(rt, port, caller, CMD_CALL, call_to(srv, MSG_HOLD, 2, -1));
	assert_rc(st.rc, TR_OK);
	assert_rc(tr_kill(rt, srv, 9), TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.down_reason, 9);

	/* Errors. */
	st = do_cmd(rt, port, caller, CMD_CALL,
	    call_to(TR_PID_NONE, MSG_Q, 1, TT_WAIT_MS));
	assert_rc(st.rc, TR_EINVAL);
	st = do_cmd(rt, port, caller, CMD_CALL,
	    call_to(srv, TR_MSG_SYSTEM, 1, TT_WAIT_MS));
	assert_rc(st.rc, TR_EINVAL);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A refusal (what a node answers in place of a request it did not
 * deliver) ends the call with its code. */
static void test_call_refused(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct done d;

	assert_rc(do_cmd(rt, port, caller, CMD_CALL,
	              call_to(srv, MSG_REFUSE, 3, TT_WAIT_MS))
	              .rc,
	    TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_EAGAIN);
	assert_int_equal(d.type, TR_MSG_REFUSED);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* tr_call_cancel: no continuation, the reply and the callee's end are
 * dropped; it also forgets a tr_request. */
static void test_call_cancel(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct start st;
	struct cmd k;
	tr_msg *m;
	int32_t rc;

	st = do_cmd(
	    rt, port, caller, CMD_CALL, call_to(srv, MSG_HOLD, 4, TT_WAIT_MS));
	assert_rc(st.rc, TR_OK);
	memset(&k, 0, sizeof(k));
	k.ref = st.ref;
	for (int i = 0; i < 2; i++) {
		assert_rc(
		    tr_post(rt, caller, CMD_CANCEL, &k, sizeof(k)), TR_OK);
		m = expect(port, T_CANCEL);
		memcpy(&rc, m->data, sizeof(rc));
		tr_msg_free(m);
		assert_rc(rc, i == 0 ? TR_OK : TR_ENOENT);
	}
	assert_rc(tr_post(rt, srv, MSG_RELEASE, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_rc(tr_kill(rt, srv, 5), TR_OK);

	/* A request's timeout, cancelled, never comes. */
	srv = holder_spawn(rt);
	st = do_cmd(
	    rt, port, caller, CMD_REQUEST, call_to(srv, MSG_HOLD, 6, 20));
	assert_rc(st.rc, TR_OK);
	k.ref = st.ref;
	assert_rc(tr_post(rt, caller, CMD_CANCEL, &k, sizeof(k)), TR_OK);
	m = expect(port, T_CANCEL);
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	assert_rc(rc, TR_OK);
	tt_sleep_ms(50);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A continuation that returns a reason crashes its actor with it; an actor
 * that exits with calls pending runs none of them, and leaves no timer. */
static void test_call_caller_ends(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct done d;
	tr_msg *m;
	int32_t reason;

	tr_runtime_set_log_level(rt, TR_LOG_CRITICAL);
	assert_rc(do_cmd(rt, port, caller, CMD_CALL,
	              call_to(srv, MSG_Q, CRASH_VALUE, TT_WAIT_MS))
	              .rc,
	    TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_OK);
	m = expect(port, T_TERM);
	memcpy(&reason, m->data, sizeof(reason));
	tr_msg_free(m);
	assert_int_equal(reason, 44);

	caller = caller_spawn(rt, port);
	for (int i = 0; i < 3; i++)
		assert_rc(do_cmd(rt, port, caller, CMD_CALL,
		              call_to(srv, MSG_HOLD, 8, 100000))
		              .rc,
		    TR_OK);
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named(NULL, "nobody", 9, 100000))
	              .rc,
	    TR_OK);
	assert_rc(tr_post(rt, caller, CMD_QUIT, NULL, 0), TR_OK);
	m = expect(port, T_TERM);
	memcpy(&reason, m->data, sizeof(reason));
	tr_msg_free(m);
	assert_int_equal(reason, TR_REASON_NORMAL);
	assert_rc(tr_post(rt, srv, MSG_RELEASE, NULL, 0), TR_OK);
	/* Quiescent: the deadlines and the retry timer went with it. */
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* By name: resolved when the call starts; a name nobody holds yet is
 * tried again until someone registers it, or the deadline. */
static void test_call_named(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid caller = caller_spawn(rt, port);
	tr_pid srv = holder_spawn(rt);
	struct done d;

	assert_rc(tr_register(rt, "svc", srv), TR_OK);
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named(NULL, "svc", 1, TT_WAIT_MS))
	              .rc,
	    TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_OK);
	assert_int_equal(d.value, 1001);
	assert_true(tr_pid_eq(d.sender, srv));

	/* Nobody holds "later" for a while: the call waits for it. */
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named(NULL, "later", 2, TT_WAIT_MS))
	              .rc,
	    TR_OK);
	tt_sleep_ms(60);
	tr_pid late = holder_spawn(rt);
	assert_rc(tr_register(rt, "later", late), TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_OK);
	assert_int_equal(d.value, 1002);
	assert_true(tr_pid_eq(d.sender, late));

	/* Nobody ever: TR_ENOPROC at the deadline, with no reply. */
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named(NULL, "nobody", 3, 50))
	              .rc,
	    TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.type, 0);

	/* A callee that got the request and died is not asked again. */
	atomic_store(&g_requests, 0);
	tr_runtime_set_log_level(rt, TR_LOG_CRITICAL);
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named(NULL, "svc", 33, TT_WAIT_MS))
	              .rc,
	    TR_OK);
	d = expect_done(port);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.down_reason, 33);
	assert_int_equal(atomic_load(&g_requests), 1);

	/* Bad names, and another node's name without a node. */
	assert_rc(
	    do_cmd(rt, port, caller, CMD_NAMED, call_named(NULL, "", 3, 50)).rc,
	    TR_EINVAL);
	assert_rc(do_cmd(rt, port, caller, CMD_NAMED,
	              call_named("elsewhere", "svc", 3, 50))
	              .rc,
	    TR_ENOTSUP);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A server restarted under the caller's feet: many callers call it by
 * name while it is killed and registered again, over and over. Every call
 * ends exactly once, with a reply or with the DOWN of a server that had
 * the request. */
static void test_call_named_restarts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	enum { CALLERS = 8, ROUNDS = 20 };
	tr_pid callers[CALLERS];
	unsigned ok = 0, gone = 0;

	for (int i = 0; i < CALLERS; i++)
		callers[i] = caller_spawn(rt, port);
	for (int r = 0; r < ROUNDS; r++) {
		tr_pid srv = holder_spawn(rt), was;
		/* The name of the one killed last is released soon. */
		assert_true(TT_WAIT_FOR(
		    tr_whereis(&was, rt, "flaky") == TR_ENOENT, TT_WAIT_MS));
		assert_rc(tr_register(rt, "flaky", srv), TR_OK);
		for (int i = 0; i < CALLERS; i++) {
			struct cmd k = call_named(NULL, "flaky", 1, TT_WAIT_MS);
			assert_rc(
			    tr_post(rt, callers[i], CMD_NAMED, &k, sizeof(k)),
			    TR_OK);
		}
		assert_rc(tr_kill(rt, srv, TR_REASON_KILL), TR_OK);
	}
	/* The last ones find nobody until this one comes. */
	tr_pid last = holder_spawn(rt), was;
	assert_true(TT_WAIT_FOR(
	    tr_whereis(&was, rt, "flaky") == TR_ENOENT, TT_WAIT_MS));
	assert_rc(tr_register(rt, "flaky", last), TR_OK);
	for (int n = 0; n < 2 * CALLERS * ROUNDS;) {
		tr_msg *m = tt_recv(port, TT_WAIT_MS);
		if (m->type == T_START) {
			struct start st;
			memcpy(&st, m->data, sizeof(st));
			assert_rc(st.rc, TR_OK);
		} else {
			assert_int_equal(m->type, T_DONE);
			struct done d;
			memcpy(&d, m->data, sizeof(d));
			if (d.status == TR_OK) {
				ok++;
				assert_int_equal(d.value, 1001);
			} else {
				assert_rc(d.status, TR_ENOPROC);
				assert_int_equal(d.type, TR_MSG_DOWN);
				assert_int_equal(
				    d.down_reason, TR_REASON_KILLED);
				gone++;
			}
		}
		tr_msg_free(m);
		n++;
	}
	print_message(
	    "replies %u, callee killed with the request %u\n", ok, gone);
	assert_int_equal(ok + gone, CALLERS * ROUNDS);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_call_reply),
	    TT_TEST(test_call_timeout),
	    TT_TEST(test_call_callee_gone),
	    TT_TEST(test_call_refused),
	    TT_TEST(test_call_cancel),
	    TT_TEST(test_call_caller_ends),
	    TT_TEST(test_call_named),
	    TT_TEST(test_call_named_restarts),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
