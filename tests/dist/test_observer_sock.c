/*
 * The observer's socket counters: tr_sock_stats (troupe/sock.h) of the
 * node's runtime as troupe_sock_* in /metrics (gauges for what is open,
 * counters for the rest) and as the "sock" object of /api/node. A probe
 * on the node's runtime listens, accepts, reads and writes; a plain socket
 * of the test thread is the client; the numbers follow each step.
 */
#define _GNU_SOURCE
#include "sock_fx.h"

#include <jansson.h>

#include "http_client.h"
#include "observer_pair.h"

#define COOKIE "observer-sock-secret"

struct env {
	struct obs_pair p;
	tr_port *port;
	tr_pid probe;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	alarm(60);
	obs_pair_start(&e->p, "obssock", COOKIE, "obs", "peer", false);
	assert_rc(tr_port_open(&e->port, e->p.rt), TR_OK);
	e->probe = tt_probe_spawn(e->p.rt, e->port, false);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	tr_port_close(e->port);
	obs_pair_stop(&e->p);
	free(e);
	alarm(0);
	return 0;
}

/* GET `path` with the token: its body (the caller frees it). */
static char *get(struct env *e, const char *path)
{
	char auth[128], err[256] = "";
	snprintf(auth, sizeof(auth), "Bearer %s", e->p.token);
	struct wd_res r;
	if (wd_http(e->p.port, "GET", path, auth, NULL, 10000, &r, err,
	        sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(r.status, 200);
	return r.body;
}

/* The sample of troupe_`name` (node label only) in a fresh /metrics, or
 * -1 when it is not there. */
static double metric(struct env *e, const char *name)
{
	char *body = get(e, "/metrics");
	char key[160];
	snprintf(key, sizeof(key), "\ntroupe_%s{node=\"obs\"} ", name);
	const char *p = strstr(body, key);
	double v = p != NULL ? strtod(p + strlen(key), NULL) : -1;
	free(body);
	return v;
}

/* Waits (bounded) until troupe_`name` is `want`. */
static void expect_metric(struct env *e, const char *name, double want)
{
	if (!TT_WAIT_FOR(metric(e, name) == want, 10000))
		fail_msg(
		    "troupe_%s is %g, not %g", name, metric(e, name), want);
}

/* Field `f` of /api/node's "sock" object. */
static json_int_t node_sock(struct env *e, const char *f)
{
	char *body = get(e, "/api/node");
	json_t *j = json_loads(body, 0, NULL);
	free(body);
	assert_non_null(j);
	json_t *v = json_object_get(json_object_get(j, "sock"), f);
	assert_true(json_is_integer(v));
	json_int_t n = json_integer_value(v);
	json_decref(j);
	return n;
}

static void test_types(void **state)
{
	struct env *e = *state;
	char *body = get(e, "/metrics");
	const char *types[] = {
	    "# TYPE troupe_sock_listeners gauge\n",
	    "# TYPE troupe_sock_connections gauge\n",
	    "# TYPE troupe_sock_accepted_total counter\n",
	    "# TYPE troupe_sock_connected_total counter\n",
	    "# TYPE troupe_sock_connect_failed_total counter\n",
	    "# TYPE troupe_sock_closed_by_peer_total counter\n",
	    "# TYPE troupe_sock_failed_total counter\n",
	    "# TYPE troupe_sock_owner_exits_total counter\n",
	    "# TYPE troupe_sock_received_bytes_total counter\n",
	    "# TYPE troupe_sock_sent_bytes_total counter\n",
	    "# TYPE troupe_sock_send_eagain_total counter\n",
	    "# TYPE troupe_sock_accept_waits_total counter\n",
	    "# TYPE troupe_sock_accept_dropped_total counter\n",
	};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strstr(body, types[i]) == NULL)
			fail_msg("no \"%s\" in /metrics", types[i]);
	free(body);
	/* No socket yet: all zero. */
	assert_true(metric(e, "sock_listeners") == 0);
	assert_true(metric(e, "sock_connections") == 0);
	assert_true(metric(e, "sock_accepted_total") == 0);
	assert_int_equal(node_sock(e, "bytes_in"), 0);
}

static void test_counts(void **state)
{
	struct env *e = *state;
	struct sk_call c = {.url = "tcp://127.0.0.1:0"};
	assert_rc(sk_do(e->port, e->probe, sk_fn_listen, &c), TR_OK);
	tr_sock l = c.sock;
	int port = sk_url_port(c.text);
	expect_metric(e, "sock_listeners", 1);

	c = (struct sk_call){.sock = l};
	assert_rc(sk_do(e->port, e->probe, sk_fn_accept, &c), TR_OK);
	int fd = sk_client(port);
	tr_sock cs = sk_expect_accepted(e->port, e->probe);
	expect_metric(e, "sock_accepted_total", 1);
	expect_metric(e, "sock_connections", 1);

	/* 5 bytes in, 9 out. */
	sk_write_all(fd, "ping\n", 5);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_LINE};
	assert_rc(sk_do(e->port, e->probe, sk_fn_recv, &c), TR_OK);
	char b[16];
	assert_int_equal(sk_expect_data(e->port, e->probe, b, sizeof(b)), 5);
	c = (struct sk_call){.sock = cs, .data = "pong pong", .len = 9};
	assert_rc(sk_do(e->port, e->probe, sk_fn_send, &c), TR_OK);
	sk_read_all(fd, b, 9);
	expect_metric(e, "sock_received_bytes_total", 5);
	expect_metric(e, "sock_sent_bytes_total", 9);
	assert_int_equal(node_sock(e, "bytes_in"), 5);
	assert_int_equal(node_sock(e, "bytes_out"), 9);
	assert_int_equal(node_sock(e, "accepted"), 1);

	/* The client leaves: the next read finds it gone. */
	close(fd);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(e->port, e->probe, sk_fn_recv, &c), TR_OK);
	assert_rc(sk_expect_status(e->port, e->probe, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);
	expect_metric(e, "sock_closed_by_peer_total", 1);
	expect_metric(e, "sock_connections", 0);

	/* The listener closes; a dial to its port is refused. */
	c = (struct sk_call){.sock = l};
	assert_rc(sk_do(e->port, e->probe, sk_fn_close, &c), TR_OK);
	expect_metric(e, "sock_listeners", 0);
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	c = (struct sk_call){.url = url, .timeout_ms = 5000};
	assert_rc(sk_do(e->port, e->probe, sk_fn_connect, &c), TR_OK);
	assert_rc(
	    sk_expect_status(e->port, e->probe, TR_MSG_SOCK_CONNECTED, NULL),
	    TR_ECONNREFUSED);
	expect_metric(e, "sock_connect_failed_total", 1);
	expect_metric(e, "sock_connections", 0);
	assert_int_equal(node_sock(e, "connect_failed"), 1);
	assert_int_equal(node_sock(e, "listeners"), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_types, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
