/*
 * Port tests: a plain thread's mailbox. Open, receive (with and without a
 * wait), send, close, and actors replying to a port.
 */
#include "common.h"

#include <pthread.h>

enum {
	MSG_PING = 1,
	MSG_SEQ,
	MSG_WAKE,
};

static void test_open_close(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *a = NULL, *b = NULL;
	tr_pid pa, pb;
	tr_msg *m = NULL;

	assert_rc(tr_port_open(NULL, rt), TR_EINVAL);
	assert_rc(tr_port_open(&a, NULL), TR_EINVAL);

	assert_rc(tr_port_open(&a, rt), TR_OK);
	assert_rc(tr_port_open(&b, rt), TR_OK);
	pa = tr_port_pid(a);
	pb = tr_port_pid(b);
	assert_false(tr_pid_is_none(pa));
	assert_false(tr_pid_eq(pa, pb));
	assert_int_equal(pa.node, 0);

	/* Empty: a poll and a short wait both time out. */
	assert_rc(tr_port_recv(&m, a, 0), TR_ETIMEDOUT);
	assert_rc(tr_port_recv(&m, a, 20), TR_ETIMEDOUT);
	assert_rc(tr_port_recv(NULL, a, 0), TR_EINVAL);
	assert_rc(tr_port_recv(&m, NULL, 0), TR_EINVAL);

	/* Closing with messages still queued frees them. */
	for (int i = 0; i < 100; i++)
		assert_rc(tr_post(rt, pa, MSG_PING, &i, sizeof(i)), TR_OK);
	tr_port_close(a);
	assert_rc(tr_post(rt, pa, MSG_PING, NULL, 0), TR_ENOPROC);
	tr_port_close(b);
	tr_port_close(NULL);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Port to port, and tr_post to a port: in order, with the right sender. */
static void test_send_recv(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime *rt;
	tr_port *a = NULL, *b = NULL;
	tr_pid pb;
	tr_msg *m;
	char big[2048];

	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	o.max_msg_size = 1024;
	rt = tt_start_opts(fx, &o);
	assert_rc(tr_port_open(&a, rt), TR_OK);
	assert_rc(tr_port_open(&b, rt), TR_OK);

	for (uint32_t i = 0; i < 1000; i++)
		assert_rc(
		    tr_port_send(a, tr_port_pid(b), MSG_SEQ, &i, sizeof(i)),
		    TR_OK);
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t v;
		tr_pid from = tt_recv_data(b, MSG_SEQ, &v, sizeof(v));

		assert_int_equal(v, i);
		assert_true(tr_pid_eq(from, tr_port_pid(a)));
	}
	assert_rc(tr_port_recv(&m, b, 0), TR_ETIMEDOUT);

	assert_rc(tr_post(rt, tr_port_pid(b), MSG_PING, NULL, 0), TR_OK);
	m = tt_recv(b, 0);
	assert_int_equal(m->type, MSG_PING);
	assert_int_equal(m->size, 0);
	assert_true(tr_pid_is_none(m->sender));
	tr_msg_free(m);

	/* Errors as tr_send. */
	memset(big, 0, sizeof(big));
	assert_rc(
	    tr_port_send(a, tr_port_pid(b), MSG_PING, big, 1025), TR_EMSGSIZE);
	assert_rc(tr_port_send(a, tr_port_pid(b), MSG_PING, big, 1024), TR_OK);
	m = tt_recv(b, TT_WAIT_MS);
	assert_int_equal(m->size, 1024);
	tr_msg_free(m);
	assert_rc(
	    tr_port_send(a, tr_port_pid(b), TR_MSG_SYSTEM, NULL, 0), TR_EINVAL);
	assert_rc(
	    tr_port_send(a, tr_port_pid(b), MSG_PING, NULL, 4), TR_EINVAL);
	pb = tr_port_pid(b);
	tr_port_close(b);
	assert_rc(tr_port_send(a, pb, MSG_PING, NULL, 0), TR_ENOPROC);
	tr_port_close(a);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* An actor answers a port: the reply comes to the port, from the actor. */
static void test_actor_replies_to_port(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid echo = tt_spawn(rt, &tt_echo, NULL);

	for (uint64_t i = 0; i < 100; i++) {
		uint64_t got;
		tr_pid from;

		assert_rc(
		    tr_port_send(port, echo, MSG_PING, &i, sizeof(i)), TR_OK);
		from = tt_recv_data(port, MSG_PING, &got, sizeof(got));
		assert_int_equal(got, i);
		assert_true(tr_pid_eq(from, echo));
	}
	/* Pipelined: sent all at once, answered in order. */
	for (uint64_t i = 0; i < 1000; i++)
		assert_rc(
		    tr_port_send(port, echo, MSG_SEQ, &i, sizeof(i)), TR_OK);
	for (uint64_t i = 0; i < 1000; i++) {
		uint64_t got;

		tt_recv_data(port, MSG_SEQ, &got, sizeof(got));
		assert_int_equal(got, i);
	}
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* Reports whether the pid in the message is alive, as seen from an actor. */
static int alive_check_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid who;
	bool alive;

	(void)state;
	TT_ACHECK(m->size == sizeof(who));
	memcpy(&who, m->data, sizeof(who));
	alive = tr_is_alive(tr_runtime_of(ctx), who);
	TT_ACHECK(tr_send(ctx, who, MSG_PING, &alive, sizeof(alive)) == TR_OK);
	return 0;
}

static const tr_behaviour alive_check_bhv = {
    .name = "alive_check",
    .handle = alive_check_handle,
};

/* An open port's pid is alive (actors send to it as to any actor), the
 * same seen from a plain thread or from an actor; closed, it is dead. */
static void test_port_pid_is_alive(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = NULL;
	tr_pid pp, checker;
	bool from_actor = false, from_main;

	assert_rc(tr_port_open(&port, rt), TR_OK);
	pp = tr_port_pid(port);
	checker = tt_spawn(rt, &alive_check_bhv, NULL);
	assert_rc(tr_post(rt, checker, MSG_PING, &pp, sizeof(pp)), TR_OK);
	tt_recv_data(port, MSG_PING, &from_actor, sizeof(from_actor));
	from_main = tr_is_alive(rt, pp);
	print_message("port pid alive: from an actor %d, from main %d\n",
	    from_actor, from_main);
	tr_port_close(port);
	assert_false(tr_is_alive(rt, pp));
	tt_quiesce(rt);
	tt_stop(fx);
	assert_true(from_actor);
	assert_true(from_main);
	tt_assert_actors_ok();
}

struct waker {
	tr_runtime *rt;
	tr_pid to;
	_Atomic bool go;
};

static void *waker_main(void *arg)
{
	struct waker *w = arg;
	int64_t deadline = tt_now_ms() + TT_WAIT_MS;

	while (!atomic_load(&w->go) && tt_now_ms() < deadline)
		tt_sleep_ms(1);
	TT_ACHECK(tr_post(w->rt, w->to, MSG_WAKE, NULL, 0) == TR_OK);
	return NULL;
}

/* A receiver blocked in a long wait is woken by a message from another
 * thread. */
static void test_blocked_recv_wakes(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct waker w = {rt, tr_port_pid(port), false};
	pthread_t th;
	tr_msg *m;

	assert_int_equal(pthread_create(&th, NULL, waker_main, &w), 0);
	atomic_store(&w.go, true);
	m = tt_recv(port, TT_WAIT_MS);
	assert_int_equal(m->type, MSG_WAKE);
	tr_msg_free(m);
	assert_int_equal(pthread_join(th, NULL), 0);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_open_close),
	    TT_TEST(test_port_pid_is_alive),
	    TT_TEST(test_send_recv),
	    TT_TEST(test_actor_replies_to_port),
	    TT_TEST(test_blocked_recv_wakes),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
