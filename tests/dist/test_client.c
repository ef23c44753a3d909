/*
 * The client endpoint from C: calls and their refusals (logged by cause),
 * other majors and other nodes, slow calls that occupy only their slots,
 * the bound on calls, stopping while busy, and the errors of its start.
 */
#include "common.h"

#include "client_fx.h"

static void test_endpoint(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);

	/* A call. */
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->type, 1);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* Its replay, a wrong cookie, a stale request, junk, an old
	 * client, another node, a local-only type: each refused with a
	 * reason, and none reaches the actor. */
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_EEXIST);
	assert_non_null(strstr(rep->message, "replay"));
	tr__client_reply_free(rep);
	free(f);

	r = req_at(wall_ms());
	expect_refusal(s, &r, "not the cookie", TR_EINVAL, "bad signature");
	r = req_at(wall_ms() - 2 * WINDOW);
	expect_refusal(s, &r, COOKIE, TR_ETIMEDOUT, "window");

	rep = roundtrip(s, "short", 5);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "shorter"));
	tr__client_reply_free(rep);

	r = req_at(wall_ms());
	r.major = 7;
	expect_refusal(s, &r, COOKIE, TR_ENOTSUP, WHY_MAJOR);

	r = req_at(wall_ms());
	r.node = "";
	r.minor = 0;
	f = frame_old(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_ENOTSUP);
	assert_non_null(strstr(rep->message, "too old"));
	tr__client_reply_free(rep);
	free(f);

	r = req_at(wall_ms());
	r.node = "beta";
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "for node \"beta\"");

	r = req_at(wall_ms());
	r.type = TR_MSG_LOCAL_BASE + 7;
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");
	r = req_at(wall_ms());
	r.type = TR_MSG_EXIT;
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* Accepted, but no such actor; an actor that exits first; one that
	 * replies with a local-only type (which must not leave). */
	r = req_at(wall_ms());
	r.to = "nobody";
	expect_refusal(s, &r, COOKIE, TR_ENOENT, "nobody");
	r = req_at(wall_ms());
	r.to = "quit";
	expect_refusal(s, &r, COOKIE, TR_ENOPROC, "exited");
	r = req_at(wall_ms());
	r.to = "local";
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");

	/* Every refusal was counted under its cause, the calls by outcome. */
	st = stats(fx);
	assert_int_equal(st.refused[TR__CC_OK], 0);
	assert_int_equal(st.refused[TR__CC_REPLAY], 1);
	assert_int_equal(st.refused[TR__CC_BAD_SIGNATURE], 2);
	assert_int_equal(st.refused[TR__CC_WINDOW], 1);
	assert_int_equal(st.refused[TR__CC_VERSION], 1);
	assert_int_equal(st.refused[TR__CC_TOO_OLD], 1);
	assert_int_equal(st.refused[TR__CC_WRONG_NODE], 1);
	assert_int_equal(st.refused[TR__CC_LOCAL_TYPE], 2);
	assert_int_equal(st.refused[TR__CC_BUSY], 0);
	assert_int_equal(st.refused[TR__CC_CACHE_FULL], 0);
	assert_int_equal(st.refused[TR__CC_BAD_REQUEST], 0);
	assert_int_equal(st.answered, 1);
	assert_int_equal(st.failed, 3);
	assert_int_equal(st.calls, 0);
	/* One connection, the whole time. */
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.conns_refused, 0);
	assert_int_equal(st.conns_idle_closed, 0);
	assert_rc(tr__client_stats_get(NULL, fx->client), TR_EINVAL);
	assert_rc(tr__client_stats_get(&st, NULL), TR_EINVAL);

	nng_close(s);
	fx_stop(fx);
}

/* A flood of refusals is counted in full but logged once per cause per
 * interval. */
static void test_endpoint_refusal_log(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);
	for (int i = 0; i < 50; i++) {
		rep = roundtrip(s, "not a frame", 11);
		assert_rc(rep->error, TR_EINVAL);
		tr__client_reply_free(rep);
	}
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	for (int i = 0; i < 20; i++) {
		rep = roundtrip(s, f, len);
		assert_rc(rep->error, i == 0 ? TR_OK : TR_EEXIST);
		tr__client_reply_free(rep);
	}
	free(f);
	assert_int_equal(stats(fx).refused[TR__CC_BAD_SIGNATURE], 50);
	assert_int_equal(stats(fx).refused[TR__CC_REPLAY], 19);
	assert_int_equal(atomic_load(&log_lines[TR__CC_BAD_SIGNATURE]), 1);
	assert_int_equal(atomic_load(&log_lines[TR__CC_REPLAY]), 1);
	assert_int_equal(atomic_load(&log_lines[TR__CC_WINDOW]), 0);
	nng_close(s);
	fx_stop(fx);
}

/* Correctly signed requests of another protocol major (0, the next one,
 * the largest) are refused over the endpoint with TR_ENOTSUP and the
 * reason, no type and no payload, and none reaches the actor; nor is
 * their nonce remembered: the same nonce with the right major is then
 * served (which also shows the actor was there to reach). */
static void test_endpoint_wrong_major(void **state)
{
	static const uint32_t majors[] = {0, MAJOR + 1, UINT32_MAX};
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);
	r = req_at(wall_ms());
	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		r.major = majors[i];
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_ENOTSUP);
		assert_non_null(rep->message);
		assert_string_equal(rep->message, WHY_MAJOR);
		assert_int_equal(rep->type, 0);
		assert_int_equal(rep->payload.len, 0);
		tr__client_reply_free(rep);
	}
	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 0);

	r.major = MAJOR;
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	nng_close(s);
	fx_stop(fx);
}

/* Two nodes' endpoints with one cookie: a request for alpha, captured and
 * replayed to beta, is refused there. */
static void test_endpoint_other_node(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o;
	tr__client *beta;
	Troupe__Wire__ClientReply *rep;
	char url[340];
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket a, b;

	fx_start(fx);
	snprintf(url, sizeof(url), "ipc://%s/beta.ipc", fx->dir);
	o = opts_for(url);
	o.node = "beta";
	assert_rc(tr__client_start(&beta, fx->rt, &o), TR_OK);
	a = req_open(fx->url);
	b = req_open(url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(a, f, len);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	rep = roundtrip(b, f, len);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "not for this node (\"beta\")"));
	tr__client_reply_free(rep);
	free(f);
	assert_int_equal(atomic_load(&echo_handled), 1);
	nng_close(a);
	nng_close(b);
	tr__client_stop(beta);
	fx_stop(fx);
}

/* K slow calls are outstanding (an actor that never answers): each holds
 * a call slot and nothing else, so fast calls are still answered at once;
 * then every slow call ends with its own timeout. */
static void test_endpoint_slow_calls(void **state)
{
	enum { K = 40 };
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket slow[K], s;
	int64_t t0, worst = 0;

	fx_start(fx);
	for (size_t i = 0; i < K; i++) {
		slow[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 5000;
		send_req(slow[i], &r);
	}
	/* All K are in progress (so none of them waits in nng). */
	assert_true(TT_WAIT_FOR(stats(fx).calls == K, TT_WAIT_MS));
	s = req_open(fx->url);
	for (int i = 0; i < 20; i++) {
		int64_t t;

		t0 = tt_now_ms();
		r = req_at(wall_ms());
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
		t = tt_now_ms() - t0;
		worst = t > worst ? t : worst;
	}
	print_message("fast call with %d slow ones outstanding: worst %" PRId64
	              " ms\n",
	    K, worst);
	/* The behaviour, not a speed: all 20 fast calls were answered while
	 * every slow call still held its slot (they end after 5 s). */
	assert_int_equal(stats(fx).calls, K);

	for (size_t i = 0; i < K; i++) {
		rep = recv_reply(slow[i]);
		assert_rc(rep->error, TR_ETIMEDOUT);
		assert_non_null(strstr(rep->message, "hole"));
		assert_non_null(strstr(rep->message, "5000 ms"));
		tr__client_reply_free(rep);
		nng_close(slow[i]);
	}
	assert_int_equal(stats(fx).failed, K);
	assert_int_equal(stats(fx).answered, 20);
	assert_int_equal(stats(fx).calls, 0);
	nng_close(s);
	fx_stop(fx);
}

/* With max_calls calls in progress, the next request is answered at once
 * with TR_EAGAIN and is not recorded: the same frame works later. */
static void test_endpoint_busy(void **state)
{
	enum { MAX = 3 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(fx->url);
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket slow[MAX], s;
	uint8_t *f;
	size_t len;

	o.max_calls = MAX;
	fx_start_with(fx, &o);
	for (size_t i = 0; i < MAX; i++) {
		slow[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 5000;
		send_req(slow[i], &r);
	}
	assert_true(TT_WAIT_FOR(stats(fx).calls == MAX, TT_WAIT_MS));
	s = req_open(fx->url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	/* Answered at once: while every slot is still held. */
	assert_int_equal(stats(fx).calls, MAX);
	assert_rc(rep->error, TR_EAGAIN);
	assert_non_null(strstr(rep->message, "limit of 3 calls"));
	tr__client_reply_free(rep);
	/* Refusals are still answered meanwhile. */
	rep = roundtrip(s, "junk", 4);
	assert_rc(rep->error, TR_EINVAL);
	tr__client_reply_free(rep);
	assert_int_equal(stats(fx).refused[TR__CC_BUSY], 1);

	for (size_t i = 0; i < MAX; i++) {
		rep = recv_reply(slow[i]);
		assert_rc(rep->error, TR_ETIMEDOUT);
		tr__client_reply_free(rep);
		nng_close(slow[i]);
	}
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	free(f);
	nng_close(s);
	fx_stop(fx);
}

/* Stopping while calls are in progress and requests are queued; the URL
 * can be listened on again right after. */
static void test_endpoint_stop_busy(void **state)
{
	enum { N = 12 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(fx->url);
	nng_socket s[N];
	struct req r;
	int64_t t0;

	o.max_calls = 4;
	fx_start_with(fx, &o);
	for (size_t i = 0; i < N; i++) {
		s[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 30000;
		send_req(s[i], &r);
	}
	tt_sleep_ms(50);
	t0 = tt_now_ms();
	tr__client_stop(fx->client);
	fx->client = NULL;
	/* Never waits for an actor: the calls would hold it for 30 s. */
	assert_true(tt_now_ms() - t0 < 20000);
	assert_rc(tr__client_start(&fx->client, fx->rt, &o), TR_OK);
	for (size_t i = 0; i < N; i++)
		nng_close(s[i]);
	fx_stop(fx);
}

static void test_start_errors(void **state)
{
	struct fx *fx = *state;
	tr__client *c = (void *)1, *c2;
	tr__client_opts o;

	fx_start(fx);
	o = opts_for(fx->url);
	assert_rc(tr__client_start(&c, NULL, &o), TR_EINVAL);
	assert_null(c);
	assert_rc(tr__client_start(&c, fx->rt, NULL), TR_EINVAL);
	assert_rc(tr__client_start(NULL, fx->rt, &o), TR_EINVAL);
	o.url = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.cookie = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.cookie = "";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.node = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.node = "";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.max_calls = TR__CLIENT_MAX_CALLS_CAP + 1;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.max_conns = TR__CLIENT_MAX_CONNS_CAP + 1;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for("nonsense");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for("nope://x");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_ENOTSUP);
	o = opts_for(fx->url);
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EEXIST);
	assert_null(c);
	/* tls+tcp:// needs a certificate and its key, and ones that load. */
	o = opts_for("tls+tcp://127.0.0.1:0");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.tls_cert = "not a certificate";
	o.tls_key = "not a key";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	assert_null(c);
	/* tcp port 0: the real port is reported. Defaults for the rest. */
	o = (tr__client_opts){
	    .url = "tcp://127.0.0.1:0", .node = NODE, .cookie = COOKIE};
	assert_rc(tr__client_start(&c2, fx->rt, &o), TR_OK);
	assert_null(strstr(tr__client_url(c2), ":0"));
	assert_non_null(strstr(tr__client_url(c2), "tcp://127.0.0.1:"));
	tr__client_stop(c2);
	tr__client_stop(NULL);
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_endpoint, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_refusal_log, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_wrong_major, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_other_node, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_slow_calls, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_busy, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_stop_busy, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_start_errors, fx_setup, fx_teardown),
	};

	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
