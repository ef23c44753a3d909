/*
 * Sockets owned by actors (troupe/sock.h): ownership (give, the owner's
 * exit), the bounded write queue (TR_EAGAIN, then TR_MSG_SOCK_DRAINED), a
 * listener's max_conns, dialing out (refused, timed out, TLS verified or
 * refused), and bad handles.
 */
#include "sock_fx.h"

#include "test_certs.h"

struct srv {
	struct tt_fixture *fx;
	tr_pid p;
	tr_sock l;
	int port;
	char url[256];
};

static void srv_start(
    struct srv *s, void **state, const char *url, const tr_sock_opts *o)
{
	s->fx = tt_begin(state);
	tt_start(s->fx, 2);
	tt_port(s->fx);
	s->p = tt_probe_spawn(s->fx->rt, s->fx->port, false);
	struct sk_call c = {
	    .url = url != NULL ? url : "tcp://127.0.0.1:0", .opts = o};
	assert_rc(sk_do(s->fx->port, s->p, sk_fn_listen, &c), TR_OK);
	s->l = c.sock;
	snprintf(s->url, sizeof(s->url), "%s", c.text);
	s->port = sk_url_port(c.text);
}

static void ask_accept(struct srv *s, tr_pid who)
{
	struct sk_call c = {.sock = s->l};
	assert_rc(sk_do(s->fx->port, who, sk_fn_accept, &c), TR_OK);
}

static void ask_recv(struct srv *s, tr_pid who, tr_sock cs)
{
	struct sk_call c = {.sock = cs, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(s->fx->port, who, sk_fn_recv, &c), TR_OK);
}

static tr_sock_stats stats(struct srv *s)
{
	tr_sock_stats st;
	tr_sock_stats_init(&st);
	assert_rc(tr_sock_stats_get(s->fx->rt, &st), TR_OK);
	return st;
}

/* give moves the socket: the old owner may no longer read or close it,
 * the new one gets its messages, and the socket lives as long as its
 * new owner, not its old one. */
static void test_give_and_owner_exit(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL, NULL);
	tr_pid b = tt_probe_spawn(s.fx->rt, s.fx->port, false);
	ask_accept(&s, s.p);
	int fd = sk_client(s.port);
	tr_sock cs = sk_expect_accepted(s.fx->port, s.p);

	struct sk_call c = {.sock = cs, .to = b};
	assert_rc(sk_do(s.fx->port, b, sk_fn_give, &c), TR_EPERM);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_give, &c), TR_OK);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_EPERM);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_EPERM);
	c = (struct sk_call){.sock = cs, .to = TR_PID_NONE};
	assert_rc(sk_do(s.fx->port, b, sk_fn_give, &c), TR_EINVAL);
	c = (struct sk_call){.sock = cs, .to = {0, 999999, 7}};
	assert_rc(sk_do(s.fx->port, b, sk_fn_give, &c), TR_ENOPROC);

	/* Any actor may send; the new owner reads. */
	c = (struct sk_call){.sock = cs, .data = "from-a ", .len = 7};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	ask_recv(&s, b, cs);
	sk_write_all(fd, "hi", 2);
	char buf[16];
	assert_int_equal(sk_expect_data(s.fx->port, b, buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	sk_read_all(fd, buf, 7);
	assert_memory_equal(buf, "from-a ", 7);

	/* The old owner exits: nothing happens to the socket. */
	tt_stop_probe(s.fx->port, s.p, TR_REASON_NORMAL, NULL, false);
	tt_expect_term(s.fx->port, s.p, TR_REASON_NORMAL);
	usleep(100 * 1000);
	c = (struct sk_call){.sock = cs, .data = "still ", .len = 6};
	assert_rc(sk_do(s.fx->port, b, sk_fn_send, &c), TR_OK);
	sk_read_all(fd, buf, 6);
	assert_memory_equal(buf, "still ", 6);

	/* The new owner crashes: what it queued is written, then the end. */
	c = (struct sk_call){.sock = cs, .data = "bye", .len = 3};
	assert_rc(sk_do(s.fx->port, b, sk_fn_send, &c), TR_OK);
	tt_stop_probe(s.fx->port, b, 77, "crash", false);
	tt_expect_term(s.fx->port, b, 77);
	sk_read_all(fd, buf, 3);
	assert_memory_equal(buf, "bye", 3);
	assert_true(sk_sees_end(fd));
	close(fd);
	/* The listener's owner (s.p) exited too: its listener is closed. */
	TT_WAIT_FOR(stats(&s).listeners == 0 && stats(&s).conns == 0, 5000);
	tr_sock_stats st = stats(&s);
	assert_int_equal(st.owner_exits, 2);
	tt_stop(s.fx);
}

/* A client that never reads: sends fill the queue to send_queue and are
 * refused, then one DRAINED comes once the client reads, and every byte
 * taken arrives in order. */
static void test_backpressure(void **state)
{
	tr_sock_opts o;
	tr_sock_opts_init(&o);
	o.send_queue = 64 * 1024;
	struct srv s;
	srv_start(&s, state, NULL, &o);
	ask_accept(&s, s.p);
	int fd = sk_client(s.port);
	tr_sock cs = sk_expect_accepted(s.fx->port, s.p);

	/* The kernel's buffers keep taking bytes for a while after the first
	 * refusal (nng writes the queue out asynchronously and autotuning
	 * grows the windows), so each DRAINED that comes while the client
	 * still does not read is answered by filling the queue again, until
	 * it stays full: the bound holds once the kernel holds no more. */
	static unsigned char chunk[8192];
	size_t taken = 0;
	int rounds = 0;
	for (;; rounds++) {
		assert_true(rounds < 200);
		int rc = TR_OK;
		for (int i = 0; i < 100000 && rc == TR_OK; i++) {
			for (size_t k = 0; k < sizeof(chunk); k++)
				chunk[k] = (unsigned char)((taken + k) * 7);
			struct sk_call c = {
			    .sock = cs, .data = chunk, .len = sizeof(chunk)};
			rc = sk_do(s.fx->port, s.p, sk_fn_send, &c);
			if (rc == TR_OK)
				taken += sizeof(chunk);
		}
		assert_rc(rc, TR_EAGAIN);
		struct sk_call q = {.sock = cs};
		assert_rc(sk_do(s.fx->port, s.p, sk_fn_queued, &q), TR_OK);
		assert_true(q.value <= 64 * 1024);
		tr_msg *d =
		    sk_try_expect(s.fx->port, s.p, TR_MSG_SOCK_DRAINED, 200);
		if (d == NULL)
			break;
		tr_msg_free(d);
	}
	struct sk_call q = {.sock = cs};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_queued, &q), TR_OK);
	assert_true(q.value > 0 && q.value <= 64 * 1024);
	assert_true(stats(&s).send_eagain >= 1);

	unsigned char *got = malloc(taken);
	assert_non_null(got);
	sk_read_all(fd, got, taken);
	for (size_t k = 0; k < taken; k++)
		if (got[k] != (unsigned char)(k * 7))
			fail_msg("byte %zu is wrong", k);
	free(got);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_DRAINED, NULL),
	    TR_OK);
	struct sk_call c = {.sock = cs, .data = "ok", .len = 2};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	char b[2];
	sk_read_all(fd, b, 2);
	close(fd);
	tt_stop(s.fx);
}

/* max_conns: the next connection waits in the backlog until one closes. */
static void test_max_conns(void **state)
{
	tr_sock_opts o;
	tr_sock_opts_init(&o);
	o.max_conns = 1;
	struct srv s;
	srv_start(&s, state, NULL, &o);
	ask_accept(&s, s.p);
	ask_accept(&s, s.p);
	int f1 = sk_client(s.port);
	tr_sock c1 = sk_expect_accepted(s.fx->port, s.p);
	int f2 = sk_client(s.port); /* the kernel takes it into the backlog */
	assert_null(sk_try_expect(s.fx->port, s.p, TR_MSG_SOCK_ACCEPTED, 300));
	assert_true(stats(&s).accept_waits >= 1);
	struct sk_call c = {.sock = c1};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
	assert_true(sk_sees_end(f1));
	tr_sock c2 = sk_expect_accepted(s.fx->port, s.p);
	assert_true(c2 != c1);
	close(f1);
	close(f2);
	tt_stop(s.fx);
}

/* Dialing: connected, refused, timed out; and handles that are no more. */
static void test_connect(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL, NULL);
	ask_accept(&s, s.p);
	struct sk_call c = {.url = s.url, .timeout_ms = 5000};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
	tr_sock d = c.sock;
	/* Queued before the connection is up, written once it is. */
	c = (struct sk_call){.sock = d, .data = "early", .len = 5};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	tr_sock got;
	assert_rc(
	    sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CONNECTED, &got),
	    TR_OK);
	assert_true(got == d);
	tr_sock a = sk_expect_accepted(s.fx->port, s.p);
	c = (struct sk_call){.sock = a, .mode = TR_SOCK_EXACT, .n = 5};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_OK);
	char b[8];
	assert_int_equal(sk_expect_data(s.fx->port, s.p, b, sizeof(b)), 5);
	assert_memory_equal(b, "early", 5);
	/* The accepted end closes: the dialed end reads the end. */
	c = (struct sk_call){.sock = a};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
	ask_recv(&s, s.p, d);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);

	/* Nothing listens there now. */
	c = (struct sk_call){.sock = s.l};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_ENOENT);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_accept, &c), TR_ENOENT);
	c = (struct sk_call){.url = s.url, .timeout_ms = 5000};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
	assert_rc(
	    sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CONNECTED, NULL),
	    TR_ECONNREFUSED);
	/* A listener whose backlog is full drops the SYN: the dial times
	 * out. */
	int bl = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in ba = {.sin_family = AF_INET};
	ba.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t bal = sizeof(ba);
	assert_int_equal(bind(bl, (struct sockaddr *)&ba, sizeof(ba)), 0);
	assert_int_equal(listen(bl, 0), 0);
	assert_int_equal(getsockname(bl, (struct sockaddr *)&ba, &bal), 0);
	/* Connect until one stays pending past the kernel's first SYN
	 * retransmission (1 s): then the queue is full, not just slow. */
	int fill[16], nfill = 0;
	bool full = false;
	while (!full && nfill < 16) {
		int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		fill[nfill++] = f;
		(void)connect(f, (struct sockaddr *)&ba, sizeof(ba));
		struct pollfd pf = {.fd = f, .events = POLLOUT};
		full = poll(&pf, 1, 1500) == 0;
	}
	assert_true(full);
	char burl[64];
	snprintf(burl, sizeof(burl), "tcp://127.0.0.1:%u", ntohs(ba.sin_port));
	/* The kernel may still answer a SYN now and then (a connection
	 * that completes counts in the queue, which stays full: nobody
	 * accepts): tries, one of which must time out. */
	bool timed_out = false;
	for (int i = 0; i < 20 && !timed_out; i++) {
		c = (struct sk_call){.url = burl, .timeout_ms = 300};
		int64_t t0 = tt_now_ms();
		assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
		int st = sk_expect_status(
		    s.fx->port, s.p, TR_MSG_SOCK_CONNECTED, NULL);
		if (st == TR_ETIMEDOUT) {
			assert_true(tt_now_ms() - t0 >= 250);
			timed_out = true;
		} else {
			assert_rc(st, TR_OK);
			assert_rc(
			    sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
		}
	}
	assert_true(timed_out);
	for (int i = 0; i < nfill; i++)
		close(fill[i]);
	close(bl);

	c = (struct sk_call){.url = "tcp://127.0.0.1", .timeout_ms = 5000};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_EINVAL);
	c = (struct sk_call){.url = "inproc://x", .timeout_ms = 5000};
	assert_int_not_equal(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
	assert_true(stats(&s).connect_failed >= 1);
	tt_stop(s.fx);
}

/* TLS: a dialer that trusts the CA connects and talks; one that trusts
 * another CA is refused. */
static void test_tls_connect(void **state)
{
	if (system("command -v openssl >/dev/null 2>&1") != 0)
		skip();
	char dir[] = "/tmp/troupe-socktls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	static const char *const names[] = {"srv", "rogue", NULL};
	assert_true(tt_make_certs(dir, names));
	char ca[128], rca[128], crt[128], key[128];
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(rca, sizeof(rca), "%s/rca.pem", dir);
	snprintf(crt, sizeof(crt), "%s/srv.crt", dir);
	snprintf(key, sizeof(key), "%s/srv.key", dir);
	tr_sock_opts so;
	tr_sock_opts_init(&so);
	so.tls_cert_file = crt;
	so.tls_key_file = key;
	struct srv s;
	srv_start(&s, state, "tls+tcp://127.0.0.1:0", &so);
	ask_accept(&s, s.p);

	tr_sock_opts co;
	tr_sock_opts_init(&co);
	struct sk_call c = {.url = s.url, .opts = &co, .timeout_ms = 5000};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_EINVAL);
	co.tls_ca_file = ca;
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
	tr_sock d = c.sock;
	tr_sock a = sk_expect_accepted(s.fx->port, s.p);
	assert_rc(
	    sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CONNECTED, NULL),
	    TR_OK);
	c = (struct sk_call){.sock = d, .data = "secret\n", .len = 7};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	c = (struct sk_call){.sock = a, .mode = TR_SOCK_LINE};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_OK);
	char b[16];
	assert_int_equal(sk_expect_data(s.fx->port, s.p, b, sizeof(b)), 7);
	assert_memory_equal(b, "secret\n", 7);

	/* Another CA: the connection comes up (nng's TLS shakes hands with
	 * the first read or write), and the first write ends it: the
	 * server's certificate is refused. */
	ask_accept(&s, s.p);
	co.tls_ca_file = rca;
	c = (struct sk_call){.url = s.url, .opts = &co, .timeout_ms = 5000};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_connect, &c), TR_OK);
	d = c.sock;
	assert_rc(
	    sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CONNECTED, NULL),
	    TR_OK);
	/* The server's end shakes hands as it reads. */
	tr_sock a2 = sk_expect_accepted(s.fx->port, s.p);
	ask_recv(&s, s.p, a2);
	c = (struct sk_call){.sock = d, .data = "x", .len = 1};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	ask_recv(&s, s.p, d);
	/* Both ends end: the dialer with the refusal, the server's end
	 * with whatever the aborted handshake left it. */
	bool refused = false;
	for (int i = 0; i < 2; i++) {
		tr_sock who;
		int st =
		    sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, &who);
		if (who == d) {
			if (st != TR_EPEERAUTH && st != TR_EPROTO)
				fail_msg(
				    "a rogue CA's dial: %s", tr_strerror(st));
			refused = true;
		}
	}
	assert_true(refused);

	/* A TLS listener without its certificate is refused. */
	tr_sock_opts bad;
	tr_sock_opts_init(&bad);
	c = (struct sk_call){.url = "tls+tcp://127.0.0.1:0", .opts = &bad};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_listen, &c), TR_EINVAL);
	bad.tls_cert_file = "/nonexistent.pem";
	bad.tls_key_file = key;
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_listen, &c), TR_EINVAL);
	tt_stop(s.fx);
	char rm[200];
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	assert_int_equal(system(rm), 0);
}

/* Bad input from the API's users gets its error code. */
static void test_bad_input(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL, NULL);
	struct sk_call c = {.url = "tcp://127.0.0.1:0"};
	tr_sock_opts o = {0};
	c.opts = &o; /* not initialised */
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_listen, &c), TR_EINVAL);
	c = (struct sk_call){.url = s.url};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_listen, &c), TR_EEXIST);
	c = (struct sk_call){.sock = s.l, .data = "x", .len = 1};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_EINVAL);
	c = (struct sk_call){.sock = s.l ^ (1ull << 40)};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_accept, &c), TR_ENOENT);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_peer, &c), TR_ENOENT);
	c = (struct sk_call){.sock = s.l};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_peer, &c), TR_EINVAL);
	assert_rc(tr_sock_recv(NULL, s.l, TR_SOCK_RAW, 0), TR_EINVAL);
	assert_rc(tr_sock_listen(NULL, &c.sock, s.url, NULL), TR_EINVAL);
	tr_sock_stats st = {.struct_size = 4};
	assert_rc(tr_sock_stats_get(s.fx->rt, &st), TR_EINVAL);
	tt_stop(s.fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_give_and_owner_exit),
	    TT_TEST(test_backpressure),
	    TT_TEST(test_max_conns),
	    TT_TEST(test_connect),
	    TT_TEST(test_tls_connect),
	    TT_TEST(test_bad_input),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
