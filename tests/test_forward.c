/*
 * tr_forward: a router passes messages on with their original sender and
 * reference, so the final receiver can answer the original sender directly
 * (the way a pid reaches a third party without being written into bytes).
 */
#include "common.h"

enum {
	MSG_ASK = 1, /* router -> worker: answer value + 1 */
	MSG_WHO,     /* router -> worker: report the sender to the port */
	MSG_ANSWER,
	MSG_SENDER, /* worker -> port: the sender it saw */
	MSG_RC,     /* router -> port: result of forwarding a system msg */
};

struct router {
	tr_pid worker;
	tr_pid port;
};

static int router_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	(void)state;
	tr_trap_exit(ctx, true);
	return TR_OK;
}

static int router_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct router *r = state;

	if (m->type == TR_MSG_EXIT) {
		/* Runtime messages are not forwardable. */
		int rc = tr_forward(ctx, r->worker, m);
		TT_ACHECK(
		    tr_send(ctx, r->port, MSG_RC, &rc, sizeof(rc)) == TR_OK);
		return 0;
	}
	TT_ACHECK(tr_forward(ctx, r->worker, m) == TR_OK);
	return 0;
}

static const tr_behaviour router_b = {
    .name = "router",
    .init = router_init,
    .handle = router_handle,
};

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	uint64_t v;

	switch (m->type) {
	case MSG_ASK:
		memcpy(&v, m->data, sizeof(v));
		v++;
		TT_ACHECK(tr_reply(ctx, m, MSG_ANSWER, &v, sizeof(v)) == TR_OK);
		break;
	case MSG_WHO: {
		tr_pid s = tr_sender(m);
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_SENDER, &s, sizeof(s)) == TR_OK);
		break;
	}
	default:
		break;
	}
	return 0;
}

static const tr_behaviour worker_b = {
    .name = "worker",
    .handle = worker_handle,
};

static void test_forward_keeps_sender_and_ref(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	static tr_pid port_pid;
	static struct router r;

	port_pid = tr_port_pid(port);
	tr_pid worker = tt_spawn(rt, &worker_b, &port_pid);
	r.worker = worker;
	r.port = port_pid;
	tr_pid router = tt_spawn(rt, &router_b, &r);

	/* A request through the router is answered by the worker, straight
	 * to the caller, with the caller's reference. */
	for (uint64_t i = 0; i < 100; i++) {
		tr_msg *reply = NULL;
		assert_rc(tr_call(&reply, rt, router, MSG_ASK, &i, sizeof(i),
		              TT_WAIT_MS),
		    TR_OK);
		uint64_t v;
		assert_int_equal(reply->type, MSG_ANSWER);
		memcpy(&v, reply->data, sizeof(v));
		assert_int_equal(v, i + 1);
		assert_true(tr_pid_eq(tr_sender(reply), worker));
		tr_msg_free(reply);
	}

	/* A plain message keeps its sender: the port. */
	assert_rc(tr_port_send(port, router, MSG_WHO, NULL, 0), TR_OK);
	tr_pid seen;
	tt_recv_data(port, MSG_SENDER, &seen, sizeof(seen));
	assert_true(tr_pid_eq(seen, port_pid));

	/* An EXIT message (runtime-made) is refused. */
	assert_rc(tr_kill(rt, router, TR_REASON_SHUTDOWN), TR_OK);
	int rc;
	tt_recv_data(port, MSG_RC, &rc, sizeof(rc));
	assert_rc(rc, TR_EINVAL);

	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	assert_int_equal(atomic_load(&tt_actor_failures), 0);
}

static void test_forward_errors(void **state)
{
	(void)state;
	tr_msg m;
	memset(&m, 0, sizeof(m));
	assert_rc(tr_forward(NULL, TR_PID_NONE, &m), TR_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_forward_keeps_sender_and_ref),
	    TT_TEST(test_forward_errors),
	};

	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
