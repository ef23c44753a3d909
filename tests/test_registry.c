/*
 * Registry tests: register / whereis / unregister, their errors, names
 * released at exit, and tr_send_named.
 */
#include "common.h"

enum {
	MSG_PING = 1,
	MSG_QUIT,
	MSG_SEND_NAMED, /* payload: a name; the actor sends MSG_PING to it */
	MSG_RC,
	MSG_GOT,
};

/* Tells the port about each ping (with its sender), runs tr_send_named on
 * command, and exits on MSG_QUIT. */
static int named_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	char name[TR_NAME_MAX + 2];
	uint64_t v = 99;
	int rc;

	switch (m->type) {
	case MSG_PING:
		TT_ACHECK(tr_send(ctx, *port, MSG_GOT, &m->sender,
		              sizeof(m->sender)) == TR_OK);
		break;
	case MSG_QUIT:
		tr_exit(ctx, TR_REASON_NORMAL);
		break;
	case MSG_SEND_NAMED:
		TT_ACHECK(m->size < sizeof(name));
		memset(name, 0, sizeof(name));
		memcpy(name, m->data,
		    m->size < sizeof(name) - 1 ? m->size : sizeof(name) - 1);
		rc = tr_send_named(ctx, name, MSG_PING, &v, sizeof(v));
		TT_ACHECK(
		    tr_send(ctx, *port, MSG_RC, &rc, sizeof(rc)) == TR_OK);
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

static const tr_behaviour named_bhv = {
    .name = "named",
    .handle = named_handle,
    .terminate = free_state,
};

static tr_pid spawn_named(tr_runtime *rt, tr_port *port)
{
	tr_pid *p = malloc(sizeof(*p));

	assert_non_null(p);
	*p = tr_port_pid(port);
	return tt_spawn(rt, &named_bhv, p);
}

static void test_register_whereis_unregister(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = spawn_named(rt, port), b = spawn_named(rt, port), got;

	assert_rc(tr_register(rt, "alpha", a), TR_OK);
	got = TR_PID_NONE;
	assert_rc(tr_whereis(&got, rt, "alpha"), TR_OK);
	assert_true(tr_pid_eq(got, a));

	/* The name is taken; and a has a name already. */
	assert_rc(tr_register(rt, "alpha", b), TR_EEXIST);
	assert_rc(tr_register(rt, "alpha", a), TR_EEXIST);
	assert_rc(tr_register(rt, "alpha2", a), TR_EEXIST);
	assert_rc(tr_whereis(&got, rt, "alpha2"), TR_ENOENT);
	assert_rc(tr_register(rt, "beta", b), TR_OK);
	assert_rc(tr_whereis(&got, rt, "beta"), TR_OK);
	assert_true(tr_pid_eq(got, b));

	assert_rc(tr_unregister(rt, "alpha"), TR_OK);
	assert_rc(tr_whereis(&got, rt, "alpha"), TR_ENOENT);
	assert_rc(tr_unregister(rt, "alpha"), TR_ENOENT);
	assert_rc(tr_unregister(rt, "never"), TR_ENOENT);
	/* Once unregistered, a may take another name, and b's is intact. */
	assert_rc(tr_register(rt, "alpha2", a), TR_OK);
	assert_rc(tr_whereis(&got, rt, "alpha2"), TR_OK);
	assert_true(tr_pid_eq(got, a));
	assert_rc(tr_whereis(&got, rt, "beta"), TR_OK);
	assert_true(tr_pid_eq(got, b));

	/* Names are compared in full, not by prefix. */
	assert_rc(tr_whereis(&got, rt, "alph"), TR_ENOENT);
	assert_rc(tr_whereis(&got, rt, "alpha22"), TR_ENOENT);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_register_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = spawn_named(rt, port), dead, got, remote;
	char longest[TR_NAME_MAX + 1], too_long[TR_NAME_MAX + 2];
	int rc;

	memset(longest, 'x', TR_NAME_MAX);
	longest[TR_NAME_MAX] = '\0';
	memset(too_long, 'y', TR_NAME_MAX + 1);
	too_long[TR_NAME_MAX + 1] = '\0';

	assert_rc(tr_register(rt, NULL, a), TR_EINVAL);
	assert_rc(tr_register(rt, "", a), TR_EINVAL);
	assert_rc(tr_register(rt, too_long, a), TR_EINVAL);
	assert_rc(tr_register(NULL, "n", a), TR_EINVAL);
	assert_rc(tr_whereis(&got, rt, NULL), TR_EINVAL);
	assert_rc(tr_whereis(NULL, rt, "n"), TR_EINVAL);
	assert_rc(tr_unregister(rt, NULL), TR_EINVAL);
	/* The refused calls registered nothing. */
	rc = tr_whereis(&got, rt, too_long);
	assert_true(rc == TR_ENOENT || rc == TR_EINVAL);
	assert_rc(tr_whereis(&got, rt, ""), TR_EINVAL);

	/* Exactly TR_NAME_MAX bytes is allowed. */
	assert_rc(tr_register(rt, longest, a), TR_OK);
	assert_rc(tr_whereis(&got, rt, longest), TR_OK);
	assert_true(tr_pid_eq(got, a));

	/* Dead and non-local pids. */
	dead = spawn_named(rt, port);
	assert_rc(tr_post(rt, dead, MSG_QUIT, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_rc(tr_register(rt, "dead", dead), TR_ENOPROC);
	assert_rc(tr_whereis(&got, rt, "dead"), TR_ENOENT);
	rc = tr_register(rt, "none", TR_PID_NONE);
	assert_true(rc == TR_ENOPROC || rc == TR_EINVAL);
	remote = a;
	remote.node = 3;
	assert_rc(tr_register(rt, "remote", remote), TR_EINVAL);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_name_released_at_exit(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid a = spawn_named(rt, port), b, got;

	assert_rc(tr_register(rt, "svc", a), TR_OK);
	assert_rc(tr_post(rt, a, MSG_QUIT, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_false(tr_is_alive(rt, a));
	assert_rc(tr_whereis(&got, rt, "svc"), TR_ENOENT);
	assert_rc(tr_unregister(rt, "svc"), TR_ENOENT);

	/* The name is free for a new actor. */
	b = spawn_named(rt, port);
	assert_rc(tr_register(rt, "svc", b), TR_OK);
	assert_rc(tr_whereis(&got, rt, "svc"), TR_OK);
	assert_true(tr_pid_eq(got, b));
	tt_stop(fx);
	tt_assert_actors_ok();
}

static void test_send_named(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid target = spawn_named(rt, port), sender = spawn_named(rt, port);
	tr_pid from, who;
	int rc, nrc = 0, ngot = 0;

	assert_rc(tr_register(rt, "target", target), TR_OK);
	assert_rc(tr_post(rt, sender, MSG_SEND_NAMED, "target", 6), TR_OK);
	/* Two reports from two actors: their order is not defined. */
	for (int i = 0; i < 2; i++) {
		tr_msg *m = tt_recv(port, TT_WAIT_MS);

		from = m->sender;
		if (m->type == MSG_RC) {
			assert_int_equal(m->size, sizeof(rc));
			memcpy(&rc, m->data, sizeof(rc));
			assert_true(tr_pid_eq(from, sender));
			assert_rc(rc, TR_OK);
			nrc++;
		} else {
			assert_int_equal(m->type, MSG_GOT);
			assert_int_equal(m->size, sizeof(who));
			memcpy(&who, m->data, sizeof(who));
			assert_true(tr_pid_eq(from, target));
			assert_true(tr_pid_eq(who, sender));
			ngot++;
		}
		tr_msg_free(m);
	}
	assert_int_equal(nrc, 1);
	assert_int_equal(ngot, 1);

	assert_rc(tr_post(rt, sender, MSG_SEND_NAMED, "nobody", 6), TR_OK);
	tt_recv_data(port, MSG_RC, &rc, sizeof(rc));
	assert_rc(rc, TR_ENOENT);

	/* After the target unregisters, the name no longer reaches it. */
	assert_rc(tr_unregister(rt, "target"), TR_OK);
	assert_rc(tr_post(rt, sender, MSG_SEND_NAMED, "target", 6), TR_OK);
	tt_recv_data(port, MSG_RC, &rc, sizeof(rc));
	assert_rc(rc, TR_ENOENT);

	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_register_whereis_unregister),
	    TT_TEST(test_register_errors),
	    TT_TEST(test_name_released_at_exit),
	    TT_TEST(test_send_named),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
