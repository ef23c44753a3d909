/*
 * Sockets owned by actors (troupe/sock.h): reads in each mode, writes,
 * the peer's address, and what a peer that closes, resets, breaks off a
 * frame or sends one too large leaves the owner with. The other end is a
 * plain socket of the test thread on 127.0.0.1.
 */
#include "sock_fx.h"

#include <sys/wait.h>

struct srv {
	struct tt_fixture *fx;
	tr_pid p;
	tr_sock l;
	int port;
};

/* A runtime of `nsched` schedulers, a probe, and a listener of the
 * probe's on port 0. */
static void srv_start_n(
    struct srv *s, void **state, const tr_sock_opts *o, unsigned nsched)
{
	s->fx = tt_begin(state);
	tt_start(s->fx, nsched);
	tt_port(s->fx);
	s->p = tt_probe_spawn(s->fx->rt, s->fx->port, false);
	struct sk_call c = {.url = "tcp://127.0.0.1:0", .opts = o};
	assert_rc(sk_do(s->fx->port, s->p, sk_fn_listen, &c), TR_OK);
	s->l = c.sock;
	assert_true(strncmp(c.text, "tcp://127.0.0.1:", 16) == 0);
	s->port = sk_url_port(c.text);
	assert_true(s->port > 0);
}

static void srv_start(struct srv *s, void **state, const tr_sock_opts *o)
{
	srv_start_n(s, state, o, 2);
}

/* A client connected and accepted: its fd, and the probe's handle. */
static int srv_conn(struct srv *s, tr_sock *cs)
{
	struct sk_call c = {.sock = s->l};
	assert_rc(sk_do(s->fx->port, s->p, sk_fn_accept, &c), TR_OK);
	int fd = sk_client(s->port);
	*cs = sk_expect_accepted(s->fx->port, s->p);
	return fd;
}

static tr_sock_stats stats(struct srv *s)
{
	tr_sock_stats st;
	tr_sock_stats_init(&st);
	assert_rc(tr_sock_stats_get(s->fx->rt, &st), TR_OK);
	return st;
}

static void srv_recv(struct srv *s, tr_sock cs, int mode, size_t n)
{
	struct sk_call c = {.sock = cs, .mode = mode, .n = n};
	assert_rc(sk_do(s->fx->port, s->p, sk_fn_recv, &c), TR_OK);
}

static void expect_bytes(struct srv *s, const char *want)
{
	char buf[2048];
	size_t n = sk_expect_data(s->fx->port, s->p, buf, sizeof(buf));
	assert_int_equal(n, strlen(want));
	assert_memory_equal(buf, want, n);
}

static void test_raw_round_trip(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);

	/* The peer's address is the client's. */
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
	char want[64];
	snprintf(want, sizeof(want), "127.0.0.1:%u", ntohs(me.sin_port));
	struct sk_call c = {.sock = cs};
	assert_int_equal(
	    sk_do(s.fx->port, s.p, sk_fn_peer, &c), (int)strlen(want));
	assert_string_equal(c.text, want);

	sk_write_all(fd, "ping", 4);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	expect_bytes(&s, "ping");
	/* One read pending at a time. */
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_EALREADY);

	c = (struct sk_call){.sock = cs, .data = "pong", .len = 4};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	char b[4];
	sk_read_all(fd, b, 4);
	assert_memory_equal(b, "pong", 4);

	/* RAW with a bound gives at most that many bytes. */
	sk_write_all(fd, "abcdef", 6);
	expect_bytes(&s, "abcdef");
	srv_recv(&s, cs, TR_SOCK_RAW, 4);
	sk_write_all(fd, "123456", 6);
	expect_bytes(&s, "1234");
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	expect_bytes(&s, "56");

	/* The client closes: the next read says so, and the handle goes. */
	close(fd);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_RAW};
	TT_WAIT_FOR(sk_do(s.fx->port, s.p, sk_fn_recv, &c) == TR_ENOENT, 5000);
	c = (struct sk_call){.sock = cs, .data = "x", .len = 1};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_ENOENT);
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_ENOENT);

	tr_sock_stats st;
	tr_sock_stats_init(&st);
	assert_rc(tr_sock_stats_get(s.fx->rt, &st), TR_OK);
	assert_int_equal(st.accepted, 1);
	assert_int_equal(st.closed_by_peer, 1);
	assert_int_equal(st.listeners, 1);
	assert_true(st.bytes_in >= 16);
	assert_int_equal(st.bytes_out, 4);
	tt_stop(s.fx);
}

static void test_line_exact_frame(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);

	/* Several lines in one write: one answer each, from the buffer. */
	sk_write_all(fd, "a\nbb\nccc", 8);
	srv_recv(&s, cs, TR_SOCK_LINE, 0);
	expect_bytes(&s, "a\n");
	srv_recv(&s, cs, TR_SOCK_LINE, 0);
	expect_bytes(&s, "bb\n");
	srv_recv(&s, cs, TR_SOCK_LINE, 0);
	assert_null(sk_try_expect(s.fx->port, s.p, TR_MSG_SOCK_DATA, 200));
	sk_write_all(fd, "c\nEXACT", 7);
	expect_bytes(&s, "cccc\n");

	srv_recv(&s, cs, TR_SOCK_EXACT, 5);
	expect_bytes(&s, "EXACT");
	srv_recv(&s, cs, TR_SOCK_EXACT, 3);
	sk_write_all(fd, "x", 1);
	assert_null(sk_try_expect(s.fx->port, s.p, TR_MSG_SOCK_DATA, 200));
	sk_write_all(fd, "yz", 2);
	expect_bytes(&s, "xyz");

	/* A frame in two pieces: its prefix is not in the answer. */
	srv_recv(&s, cs, TR_SOCK_FRAME, 0);
	sk_write_all(fd, "\0\0\0\5he", 6);
	assert_null(sk_try_expect(s.fx->port, s.p, TR_MSG_SOCK_DATA, 200));
	sk_write_all(fd, "llo\0\0\0\0", 7);
	expect_bytes(&s, "hello");
	srv_recv(&s, cs, TR_SOCK_FRAME, 0);
	expect_bytes(&s, ""); /* an empty frame */

	/* Bad requests. */
	struct sk_call c = {.sock = cs, .mode = 9};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_EINVAL);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_EXACT, .n = 0};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_EINVAL);
	c = (struct sk_call){.sock = s.l, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_EINVAL);
	c = (struct sk_call){.sock = cs};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_accept, &c), TR_EINVAL);
	c = (struct sk_call){.sock = 12345};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_ENOENT);
	close(fd);
	tt_stop(s.fx);
}

/* A line or frame over max_packet fails the socket, on the prefix alone
 * for a frame; a RAW read stays within it. */
static void test_too_large(void **state)
{
	tr_sock_opts o;
	tr_sock_opts_init(&o);
	o.max_packet = 16;
	struct srv s;
	srv_start(&s, state, &o);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	srv_recv(&s, cs, TR_SOCK_FRAME, 0);
	sk_write_all(fd, "\0\0\x10\0", 4); /* 4096 bytes announced */
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_EMSGSIZE);
	assert_true(sk_sees_end(fd));
	close(fd);

	fd = srv_conn(&s, &cs);
	srv_recv(&s, cs, TR_SOCK_LINE, 0);
	sk_write_all(fd, "0123456789abcdefghij", 20); /* no newline */
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_EMSGSIZE);
	struct sk_call c = {.sock = cs, .mode = TR_SOCK_EXACT, .n = 17};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_ENOENT);
	close(fd);

	/* A RAW read never answers more than max_packet, though the read
	 * buffer holds a frame's prefix more. */
	fd = srv_conn(&s, &cs);
	const char *raw = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
	sk_write_all(fd, raw, 40);
	char got[64];
	size_t have = 0;
	while (have < 40) {
		srv_recv(&s, cs, TR_SOCK_RAW, 0);
		size_t k = sk_expect_data(s.fx->port, s.p, got + have, 16);
		assert_true(k >= 1 && k <= 16);
		have += k;
	}
	assert_memory_equal(got, raw, 40);
	close(fd);

	tr_sock_stats st;
	tr_sock_stats_init(&st);
	assert_rc(tr_sock_stats_get(s.fx->rt, &st), TR_OK);
	assert_int_equal(st.failed, 2);
	tt_stop(s.fx);
}

/* A peer that closes in the middle of a frame, or resets. */
static void test_broken_off_and_reset(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	srv_recv(&s, cs, TR_SOCK_FRAME, 0);
	sk_write_all(fd, "\0\0\0\x64only ten.", 14);
	close(fd);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_EPROTO);

	/* A failure with no read pending waits for the next read. */
	fd = srv_conn(&s, &cs);
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	assert_int_equal(
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(fd); /* an RST */
	usleep(100 * 1000);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	int st = sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL);
	assert_true(st == TR_ECONNRESET || st == TR_ECLOSED);
	tt_stop(s.fx);
}

/* A stream that comes faster than it is asked for: every byte arrives,
 * in order, in reads of at most what was asked (the reads that find
 * data waiting are made at once, sock_conn.c), then the end. */
static void test_stream_in(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	enum { TOTAL = 1 << 20, ASK = 1000 };
	static unsigned char out[TOTAL];
	for (size_t i = 0; i < TOTAL; i++)
		out[i] = (unsigned char)(i * 131 + (i >> 9));
	pid_t w = fork();
	assert_true(w >= 0);
	if (w == 0) {
		/* The writer: all of it at once, then the end. */
		size_t off = 0;
		while (off < TOTAL) {
			ssize_t k = write(fd, out + off, TOTAL - off);
			if (k <= 0)
				_exit(1);
			off += (size_t)k;
		}
		shutdown(fd, SHUT_WR);
		_exit(0);
	}
	usleep(50 * 1000); /* let the kernel hold a good part of it */
	static unsigned char in[TOTAL];
	size_t got = 0;
	while (got < TOTAL) {
		srv_recv(&s, cs, TR_SOCK_RAW, ASK);
		unsigned char buf[ASK];
		size_t n = sk_expect_data(s.fx->port, s.p, buf, sizeof(buf));
		assert_true(n >= 1 && got + n <= TOTAL);
		memcpy(in + got, buf, n);
		got += n;
	}
	assert_memory_equal(in, out, TOTAL);
	srv_recv(&s, cs, TR_SOCK_RAW, ASK);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);
	int ws = 0;
	assert_int_equal(waitpid(w, &ws, 0), w);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	close(fd);
	assert_int_equal(stats(&s).bytes_in, TOTAL);
	tt_stop(s.fx);
}

/* A client that sends its last request and shuts its write side: by
 * default the end closes the socket once what is queued is written, and
 * a reply that was not yet queued cannot go; with half_close the socket
 * stays writable until closed. */
static void test_half_close(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	sk_write_all(fd, "last", 4);
	shutdown(fd, SHUT_WR);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	expect_bytes(&s, "last");
	/* A reply larger than the kernel takes at once: the rest is queued
	 * when the end is read, and still written. */
	enum { BIG = 4 << 20 };
	unsigned char *big = malloc(BIG), *got = malloc(BIG);
	assert_true(big != NULL && got != NULL);
	for (size_t i = 0; i < BIG; i++)
		big[i] = (unsigned char)(i * 7 + (i >> 12));
	struct sk_call c = {.sock = cs, .data = big, .len = BIG};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);
	c = (struct sk_call){.sock = cs, .data = "late", .len = 4};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_ENOENT);
	sk_read_all(fd, got, BIG);
	assert_memory_equal(got, big, BIG);
	assert_true(sk_sees_end(fd));
	free(big);
	free(got);
	close(fd);
	tt_stop(s.fx);

	tr_sock_opts o;
	tr_sock_opts_init(&o);
	o.half_close = true;
	srv_start(&s, state, &o);
	fd = srv_conn(&s, &cs);
	sk_write_all(fd, "last", 4);
	shutdown(fd, SHUT_WR);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	expect_bytes(&s, "last");
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	assert_rc(sk_expect_status(s.fx->port, s.p, TR_MSG_SOCK_CLOSED, NULL),
	    TR_ECLOSED);
	/* Still open for writing; reading is over. */
	c = (struct sk_call){.sock = cs, .data = "reply", .len = 5};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
	c = (struct sk_call){.sock = cs, .mode = TR_SOCK_RAW};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_recv, &c), TR_ECLOSED);
	char b[8];
	sk_read_all(fd, b, 5);
	assert_memory_equal(b, "reply", 5);
	c = (struct sk_call){.sock = cs};
	assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
	assert_true(sk_sees_end(fd));
	close(fd);
	TT_WAIT_FOR(stats(&s).conns == 0, 5000);
	assert_int_equal(stats(&s).closed_by_peer, 1);
	tt_stop(s.fx);
}

/* Sockets of a runtime that stops are closed: the peer sees the end. */
static void test_runtime_stop_closes(void **state)
{
	struct srv s;
	srv_start(&s, state, NULL);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	srv_recv(&s, cs, TR_SOCK_RAW, 0);
	tt_stop(s.fx);
	assert_true(sk_sees_end(fd));
	close(fd);
	/* And nothing listens any more. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_not_equal(connect(l, (struct sockaddr *)&a, sizeof(a)), 0);
	close(l);
}

/* A tcp:// read that waits is armed in the runtime's I/O set, and with
 * one scheduler that scheduler is the set's sleeper whenever it parks:
 * the socket's data wakes it, and so does a message from outside (the
 * set's kick). A wake-up of either kind that got lost would hang here. */
static void test_sleeper_wakes(void **state)
{
	struct srv s;
	srv_start_n(&s, state, NULL, 1);
	tr_sock cs;
	int fd = srv_conn(&s, &cs);
	for (int i = 0; i < 20; i++) {
		char b[16], r[16];
		int n = snprintf(b, sizeof(b), "round %d", i);
		srv_recv(&s, cs, TR_SOCK_RAW, 0);
		assert_rc(tr_runtime_wait_quiescent(s.fx->rt, 5000), TR_OK);
		sk_write_all(fd, b, (size_t)n);
		expect_bytes(&s, b);
		assert_rc(tr_runtime_wait_quiescent(s.fx->rt, 5000), TR_OK);
		struct sk_call c = {.sock = cs, .data = b, .len = (size_t)n};
		assert_rc(sk_do(s.fx->port, s.p, sk_fn_send, &c), TR_OK);
		sk_read_all(fd, r, (size_t)n);
		assert_memory_equal(r, b, (size_t)n);
	}
	close(fd);
	tt_stop(s.fx);
}

/* Connections closed by their owner while their reads wait in the I/O
 * set leave it: what their clients send later reaches nobody, the others
 * still get theirs, and the slots serve new connections afterwards. */
static void test_close_while_armed(void **state)
{
	enum { N = 32 };
	struct srv s;
	srv_start(&s, state, NULL);
	for (int round = 0; round < 2; round++) {
		int fds[N];
		tr_sock cs[N];
		for (int i = 0; i < N; i++) {
			fds[i] = srv_conn(&s, &cs[i]);
			srv_recv(&s, cs[i], TR_SOCK_RAW, 0);
		}
		for (int i = 0; i < N; i += 2) {
			struct sk_call c = {.sock = cs[i]};
			assert_rc(sk_do(s.fx->port, s.p, sk_fn_close, &c), TR_OK);
		}
		for (int i = 0; i < N; i += 2)
			assert_true(sk_sees_end(fds[i]));
		for (int i = 1; i < N; i += 2) {
			char b[16];
			int n = snprintf(b, sizeof(b), "c%d.%d", round, i);
			sk_write_all(fds[i], b, (size_t)n);
			expect_bytes(&s, b);
		}
		for (int i = 0; i < N; i++)
			close(fds[i]);
		for (int i = 1; i < N; i += 2) {
			srv_recv(&s, cs[i], TR_SOCK_RAW, 0);
			assert_rc(sk_expect_status(s.fx->port, s.p,
			              TR_MSG_SOCK_CLOSED, NULL),
			    TR_ECLOSED);
		}
	}
	tr_sock_stats st = stats(&s);
	assert_int_equal(st.accepted, 2 * N);
	assert_int_equal(st.closed_by_peer, N);
	TT_WAIT_FOR(stats(&s).conns == 0, 5000);
	tt_stop(s.fx);
}

/* ipc:// works the same way. */
static void test_ipc(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tt_start(fx, 2);
	tt_port(fx);
	tr_pid p = tt_probe_spawn(fx->rt, fx->port, false);
	char url[128];
	snprintf(url, sizeof(url), "ipc:///tmp/troupe-sock-%d", (int)getpid());
	struct sk_call c = {.url = url};
	assert_rc(sk_do(fx->port, p, sk_fn_listen, &c), TR_OK);
	assert_string_equal(c.text, url);
	tr_sock l = c.sock;
	c = (struct sk_call){.sock = l};
	assert_rc(sk_do(fx->port, p, sk_fn_accept, &c), TR_OK);
	c = (struct sk_call){.url = url, .timeout_ms = 5000};
	assert_rc(sk_do(fx->port, p, sk_fn_connect, &c), TR_OK);
	tr_sock d = c.sock;
	assert_rc(
	    sk_expect_status(fx->port, p, TR_MSG_SOCK_CONNECTED, NULL), TR_OK);
	tr_sock a = sk_expect_accepted(fx->port, p);
	c = (struct sk_call){.sock = d, .data = "\0\0\0\3ipc", .len = 7};
	assert_rc(sk_do(fx->port, p, sk_fn_send, &c), TR_OK);
	c = (struct sk_call){.sock = a, .mode = TR_SOCK_FRAME};
	assert_rc(sk_do(fx->port, p, sk_fn_recv, &c), TR_OK);
	char b[8];
	assert_int_equal(sk_expect_data(fx->port, p, b, sizeof(b)), 3);
	assert_memory_equal(b, "ipc", 3);
	tt_stop(fx);
	unlink(url + 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_raw_round_trip),
	    TT_TEST(test_line_exact_frame),
	    TT_TEST(test_too_large),
	    TT_TEST(test_broken_off_and_reset),
	    TT_TEST(test_stream_in),
	    TT_TEST(test_half_close),
	    TT_TEST(test_runtime_stop_closes),
	    TT_TEST(test_sleeper_wakes),
	    TT_TEST(test_close_while_armed),
	    TT_TEST(test_ipc),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
