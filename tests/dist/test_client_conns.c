/*
 * The client endpoint's connections: raw SP over TCP as docs/client.md
 * describes it, the frame limit enforced on the length, and the bounds on
 * connections (how many, how long idle, descriptors after many), also
 * through a node's client_url.
 */
#include "common.h"

#include "client_fx.h"
#include "proc_state.h"

/* ---- SP over raw TCP, as docs/client.md describes it --------------------- */

/* Starts the endpoint on tcp://127.0.0.1:0 and returns its port. */
static int fx_start_tcp(struct fx *fx, tr__client_opts *o)
{
	const char *url, *colon;

	o->url = "tcp://127.0.0.1:0";
	fx_start_with(fx, o);
	url = tr__client_url(fx->client);
	colon = strrchr(url, ':');
	assert_non_null(colon);
	snprintf(fx->url, sizeof(fx->url), "%s", url);
	return atoi(colon + 1);
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		b += k;
		n -= (size_t)k;
	}
}

/* Reads exactly `n` bytes, waiting at most TT_WAIT_MS; returns false on
 * end of stream or a reset. */
static bool read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t k;

		assert_int_equal(poll(&pf, 1, TT_WAIT_MS), 1);
		k = recv(fd, b, n, 0);
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The SP/TCP handshake of a req0 peer: "\0SP\0", protocol 0x0030 (req0),
 * two reserved bytes; the node answers with protocol 0x0031 (rep0). */
static void sp_handshake(int fd)
{
	static const uint8_t hello[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
	static const uint8_t want[8] = {0, 'S', 'P', 0, 0x00, 0x31, 0, 0};
	uint8_t got[8];

	write_all(fd, hello, sizeof(hello));
	assert_true(read_all(fd, got, sizeof(got)));
	assert_memory_equal(got, want, sizeof(want));
}

/* One message: a 64-bit big-endian length, then the 32-bit request id
 * (high bit set) and the frame. */
static void sp_send(int fd, uint32_t id, const void *frame, size_t len)
{
	uint8_t hdr[12];

	put_be32(hdr, 0);
	put_be32(hdr + 4, (uint32_t)(len + 4));
	put_be32(hdr + 8, id);
	write_all(fd, hdr, sizeof(hdr));
	write_all(fd, frame, len);
}

/* A reply: the same framing; returns the decoded ClientReply and the id
 * it carried back. */
static Troupe__Wire__ClientReply *sp_recv(int fd, uint32_t *id)
{
	Troupe__Wire__ClientReply *rep;
	uint8_t hdr[12], *body;
	uint32_t n;

	assert_true(read_all(fd, hdr, sizeof(hdr)));
	assert_int_equal(get_be32(hdr), 0);
	n = get_be32(hdr + 4);
	assert_true(n >= 4 && n < 65536);
	*id = get_be32(hdr + 8);
	body = malloc(n - 4 + 1);
	assert_non_null(body);
	assert_true(read_all(fd, body, n - 4));
	rep = tr__client_reply_decode(body, n - 4, tr__decode_budget(n - 4));
	free(body);
	assert_non_null(rep);
	return rep;
}

/* A client with no nng at all: plain sockets, the SP framing and request
 * ids exactly as docs/client.md gives them; two requests in flight on one
 * connection, each reply carrying its id back. */
static void test_endpoint_raw_sp(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	struct req r1, r2;
	uint8_t *f1, *f2;
	size_t l1, l2;
	uint32_t id, seen = 0;
	int fd;

	fd = tcp_connect(fx_start_tcp(fx, &o));
	sp_handshake(fd);
	r1 = req_at(wall_ms());
	r2 = req_at(wall_ms());
	r2.payload = "second";
	f1 = frame_of(&l1, &r1, COOKIE);
	f2 = frame_of(&l2, &r2, COOKIE);
	sp_send(fd, 0x80000001u, f1, l1);
	sp_send(fd, 0x80000002u, f2, l2);
	for (int i = 0; i < 2; i++) {
		rep = sp_recv(fd, &id);
		assert_rc(rep->error, TR_OK);
		if (id == 0x80000001u) {
			assert_int_equal(rep->payload.len, 11);
			assert_memory_equal(
			    rep->payload.data, "echo: hello", 11);
		} else {
			assert_int_equal(id, 0x80000002u);
			assert_int_equal(rep->payload.len, 12);
			assert_memory_equal(
			    rep->payload.data, "echo: second", 12);
		}
		seen |= 1u << (id & 3);
		tr__client_reply_free(rep);
	}
	assert_int_equal(seen, 6);
	/* A refusal comes back the same way. */
	sp_send(fd, 0x80000003u, f1, l1);
	rep = sp_recv(fd, &id);
	assert_int_equal(id, 0x80000003u);
	assert_rc(rep->error, TR_EEXIST);
	tr__client_reply_free(rep);
	free(f1);
	free(f2);
	close(fd);
	fx_stop(fx);
}

/* Frames over max_request are refused on their length: the node closes
 * the connection after the 8-byte length, before it buffers any of the
 * frame. Four connections that announce 60 MiB frames and push what they
 * can cost the node (this process) no memory to speak of. Through nng, a
 * req socket sees no reply (it redials and resends until it gives up),
 * and the endpoint serves the next request. */
static void test_endpoint_too_large(void **state)
{
	enum { CONNS = 4, PART = 16 << 20 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	uint8_t hdr[12], *part, buf[16];
	int fd[CONNS], port;
	long before, after;
	struct req r;
	nng_socket s;
	void *rbuf;
	size_t n;

	o.max_request = 64 * 1024;
	port = fx_start_tcp(fx, &o);
	part = calloc(1, PART);
	assert_non_null(part);
	before = tt_proc_kb(0, "VmRSS");
	for (int i = 0; i < CONNS; i++) {
		fd[i] = tcp_connect(port);
		sp_handshake(fd[i]);
		put_be32(hdr, 0);
		put_be32(hdr + 4, 60u << 20);
		put_be32(hdr + 8, 0x80000001u);
		write_all(fd[i], hdr, sizeof(hdr));
	}
	for (int i = 0; i < CONNS; i++) {
		/* Closed by the node: the read sees the end (or a reset). */
		struct pollfd pf = {.fd = fd[i], .events = POLLIN};

		assert_int_equal(poll(&pf, 1, TT_WAIT_MS), 1);
		assert_true(recv(fd[i], buf, sizeof(buf), 0) <= 0);
		/* And whatever more is pushed is not buffered by it. */
		(void)send(fd[i], part, PART, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd[i]);
	}
	after = tt_proc_kb(0, "VmRSS");
	print_message("RSS before %ld KiB, after 4 oversized frames %ld KiB\n",
	    before, after);
	assert_true(after - before < 8 * 1024);
	free(part);

	/* Over nng: one byte over the limit gets no reply; a frame at the
	 * limit is verified (and refused: it is junk). The limit counts
	 * the frame, not the 4-byte request id in front of it. */
	s = req_open(fx->url);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 300), 0);
	part = calloc(1, o.max_request + 1);
	assert_non_null(part);
	assert_int_equal(nng_send(s, part, o.max_request + 1, 0), 0);
	rbuf = NULL;
	assert_int_equal(nng_recv(s, &rbuf, &n, NNG_FLAG_ALLOC), NNG_ETIMEDOUT);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	rep = roundtrip(s, part, o.max_request);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "bad signature"));
	tr__client_reply_free(rep);
	free(part);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	fx_stop(fx);
}

/* ---- bounds on connections ------------------------------------------------
 */

/* The most connections seen open at once by `sample`. */
static uint32_t conns_peak;

/* The endpoint's counters, keeping note of the peak of open connections. */
static tr__client_stats sample(struct fx *fx)
{
	tr__client_stats st = stats(fx);

	if (st.conns > conns_peak)
		conns_peak = st.conns;
	return st;
}

/* Connections the endpoint has decided on: admitted and still open, or
 * refused. */
static uint64_t conns_seen(struct fx *fx)
{
	tr__client_stats st = sample(fx);

	return st.conns + st.conns_refused;
}

/* Whether the node closed `fd` within `ms`: the read sees the end of the
 * stream (or a reset). */
static bool closed_by_node(int fd, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	uint8_t b;

	if (poll(&pf, 1, ms) != 1)
		return false;
	return recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

/* A raw TCP connection that has done its SP handshake. */
static int sp_connect(int port)
{
	int fd = tcp_connect(port);

	sp_handshake(fd);
	return fd;
}

/* A req socket that dials in the background (a connection refused at
 * once is no error to nng: it dials again). */
static nng_socket req_open_bg(const char *url)
{
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK), 0);
	return s;
}

/* At most max_conns connections are open at once: one beyond is closed
 * as soon as its SP headers are exchanged, before any request of it is
 * read; each is counted, and the cause logged once per interval. A req
 * client that comes while the endpoint is full is refused again at each
 * redial, its request waiting on its side; it is served once another
 * client leaves. */
static void test_endpoint_conn_cap(void **state)
{
	enum { CAP = 4, EXTRA = 3 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	int fd[CAP + EXTRA], port;
	struct req r;
	nng_socket s;
	nng_aio *aio;
	nng_msg *m;
	uint8_t *f;
	size_t len;
	int64_t t0 = tt_now_ms();

	conns_peak = 0;
	o.max_conns = CAP;
	port = fx_start_tcp(fx, &o);
	for (int i = 0; i < CAP + EXTRA; i++) {
		fd[i] = sp_connect(port);
		/* One at a time, so that the first CAP are the ones let
		 * in. */
		assert_true(
		    TT_WAIT_FOR(conns_seen(fx) == (uint64_t)i + 1, TT_WAIT_MS));
	}
	st = sample(fx);
	assert_int_equal(st.conns, CAP);
	assert_int_equal(st.conns_refused, EXTRA);
	for (int i = CAP; i < CAP + EXTRA; i++) {
		assert_true(closed_by_node(fd[i], TT_WAIT_MS));
		close(fd[i]);
	}
	/* The admitted ones stay, and are served. */
	for (int i = 0; i < CAP; i++)
		assert_false(closed_by_node(fd[i], i == 0 ? 200 : 0));
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	sp_send(fd[1], 0x80000001u, f, len);
	free(f);
	{
		uint32_t id;

		rep = sp_recv(fd[1], &id);
		assert_int_equal(id, 0x80000001u);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
	}

	/* A req client, full house: its request waits on its side while
	 * its connections are refused. */
	s = req_open_bg(fx->url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, f, len), 0);
	free(f);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_msg(aio, m);
	nng_aio_set_timeout(aio, TT_WAIT_MS);
	nng_send_aio(s, aio);
	assert_true(
	    TT_WAIT_FOR(sample(fx).conns_refused >= EXTRA + 2, TT_WAIT_MS));
	assert_int_equal(sample(fx).answered, 1);
	/* A place frees: the req client gets it, sends, is answered. */
	close(fd[0]);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	nng_aio_free(aio);
	rep = recv_reply(s);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	tr__client_reply_free(rep);
	st = sample(fx);
	assert_int_equal(st.conns, CAP);
	assert_int_equal(st.answered, 2);
	assert_true(conns_peak <= CAP);
	/* Counted every time, logged once per 10 s. */
	if (tt_now_ms() - t0 < 9000)
		assert_int_equal(atomic_load(&log_conn_refused), 1);
	else
		assert_true(atomic_load(&log_conn_refused) >= 1);
	print_message("%" PRIu64 " connections refused, %u log line(s)\n",
	    st.conns_refused, atomic_load(&log_conn_refused));

	nng_close(s);
	for (int i = 1; i < CAP; i++)
		close(fd[i]);
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	assert_true(conns_peak <= CAP);
	fx_stop(fx);
}

/* A connection with no request for idle_ms is closed; one that sends a
 * request now and then stays, and so does one whose call is in progress
 * for longer than idle_ms: its idle time starts when its reply is sent.
 * A req client whose connection was closed as idle dials again by itself
 * and is served. */
static void test_endpoint_idle(void **state)
{
	enum { IDLE = 1000, QUIET = 2 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	int quiet[QUIET], busy, calling, port, rounds = 0;
	uint64_t closed;
	int64_t t0, t;
	struct req r;
	uint32_t id;
	uint8_t *f;
	size_t len;
	nng_socket s;

	o.idle_ms = IDLE;
	port = fx_start_tcp(fx, &o);
	t0 = tt_now_ms();
	for (int i = 0; i < QUIET; i++)
		quiet[i] = sp_connect(port);
	busy = sp_connect(port);
	calling = sp_connect(port);
	assert_true(TT_WAIT_FOR(stats(fx).conns == QUIET + 2, TT_WAIT_MS));
	r = req_at(wall_ms());
	r.to = "hole";
	r.timeout_ms = 3 * IDLE;
	f = frame_of(&len, &r, COOKIE);
	sp_send(calling, 0x80000001u, f, len);
	free(f);
	assert_true(TT_WAIT_FOR(stats(fx).calls == 1, TT_WAIT_MS));

	/* Not closed before their time (checked only while it is early
	 * enough to tell). */
	for (int i = 0; i < QUIET; i++) {
		bool gone = closed_by_node(quiet[i], 0);

		if (tt_now_ms() < t0 + IDLE)
			assert_false(gone);
	}
	/* The busy one keeps calling, well within idle_ms each time, until
	 * the slow call ends (after 3 idle times); the quiet ones go
	 * meanwhile. */
	for (;;) {
		struct pollfd pf = {.fd = calling, .events = POLLIN};

		assert_true(poll(&pf, 1, 0) >= 0);
		if (pf.revents != 0)
			break;
		assert_true(tt_now_ms() - t0 < TT_WAIT_MS);
		r = req_at(wall_ms());
		f = frame_of(&len, &r, COOKIE);
		sp_send(busy, 0x80000000u | (uint32_t)++rounds, f, len);
		free(f);
		rep = sp_recv(busy, &id);
		assert_int_equal(id, 0x80000000u | (uint32_t)rounds);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
		tt_sleep_ms(50);
	}
	for (int i = 0; i < QUIET; i++) {
		assert_true(closed_by_node(quiet[i], TT_WAIT_MS));
		close(quiet[i]);
	}
	/* The slow call's connection was kept for its reply. */
	rep = sp_recv(calling, &id);
	t = tt_now_ms();
	assert_int_equal(id, 0x80000001u);
	assert_rc(rep->error, TR_ETIMEDOUT);
	tr__client_reply_free(rep);
	assert_int_equal(stats(fx).conns_idle_closed, QUIET);
	assert_int_equal(stats(fx).conns, 2);
	print_message("%d calls on the busy connection over %" PRId64
	              " ms; quiet ones closed\n",
	    rounds, t - t0);

	/* Now both are quiet: each goes an idle time after its last reply
	 * (had the slow call's counted from its request, it would go at
	 * the next sweep). */
	assert_true(closed_by_node(calling, TT_WAIT_MS));
	assert_true(tt_now_ms() - t >= IDLE / 4);
	assert_true(closed_by_node(busy, TT_WAIT_MS));
	close(calling);
	close(busy);
	assert_true(
	    TT_WAIT_FOR(stats(fx).conns_idle_closed == QUIET + 2, TT_WAIT_MS));
	/* Counted every time, logged once per 10 s. */
	if (tt_now_ms() - t0 < 9000)
		assert_int_equal(atomic_load(&log_conn_idle), 1);
	else
		assert_true(atomic_load(&log_conn_idle) >= 1);

	/* A req client left quiet past idle_ms: its connection is closed,
	 * it dials again, and its next call is served. */
	s = req_open(fx->url);
	closed = stats(fx).conns_idle_closed;
	assert_true(
	    TT_WAIT_FOR(stats(fx).conns_idle_closed > closed + 1, TT_WAIT_MS));
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	assert_true(TT_WAIT_FOR(stats(fx).conns == 0, TT_WAIT_MS));
	fx_stop(fx);
}

/* Many connections made and dropped, over the limit and under it, by
 * raw clients and req sockets, and left for the node to close as idle:
 * afterwards this process (both ends) holds as many descriptors as
 * before, and the endpoint counts no connection. */
static void test_endpoint_conn_fds(void **state)
{
	enum { CAP = 4, PER = 8, ROUNDS = 40, IDLE = 200 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	int fd[PER], port, fds0, fds1;
	struct req r;
	nng_socket s;

	conns_peak = 0;
	o.max_conns = CAP;
	o.idle_ms = IDLE;
	port = fx_start_tcp(fx, &o);
	/* A first req socket brings up whatever nng keeps for good. */
	s = req_open(fx->url);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	assert_true(TT_WAIT_FOR(stats(fx).conns == 0, TT_WAIT_MS));
	fds0 = tt_count_fds();

	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < PER; i++)
			fd[i] = sp_connect(port);
		(void)sample(fx);
		for (int i = 0; i < PER; i++)
			close(fd[i]);
		if (round % 8 == 0) {
			assert_true(
			    TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
			s = req_open(fx->url);
			r = req_at(wall_ms());
			rep = call_req(s, &r, COOKIE);
			assert_rc(rep->error, TR_OK);
			tr__client_reply_free(rep);
			nng_close(s);
		}
	}
	/* And a full house left for the node to close. A connection of the
	 * last round that this side has closed may still be counted a
	 * moment (nng reports it to the endpoint once its own end of the
	 * handshake is done), so one of the house can be refused rather
	 * than closed as idle: either way the node closes all of them. */
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	tr__client_stats st0 = sample(fx);
	for (int i = 0; i < CAP; i++)
		fd[i] = sp_connect(port);
	for (int i = 0; i < CAP; i++) {
		assert_true(closed_by_node(fd[i], TT_WAIT_MS));
		close(fd[i]);
	}
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	st = sample(fx);
	assert_true(st.conns_refused > 0);
	assert_true(st.conns_idle_closed > st0.conns_idle_closed);
	assert_true((st.conns_idle_closed - st0.conns_idle_closed) +
	                (st.conns_refused - st0.conns_refused) >=
	            CAP);
	assert_true(conns_peak <= CAP);
	/* nng closes its ends on its own threads: wait for it. */
	assert_true(TT_WAIT_FOR(tt_count_fds() <= fds0, TT_WAIT_MS));
	fds1 = tt_count_fds();
	print_message("descriptors %d before, %d after %d connections; %" PRIu64
	              " refused, %" PRIu64 " closed as idle\n",
	    fds0, fds1, ROUNDS * PER + CAP, st.conns_refused,
	    st.conns_idle_closed);
	assert_true(fds1 <= fds0);
	fx_stop(fx);
}

/* The node's options reach its endpoint, and its counters the node's:
 * with client_max_conns 2, a third req client is refused (again at each
 * redial) while two are connected; with client_idle_ms short, a quiet
 * one is closed. */
static void test_node_client_conns(void **state)
{
	struct fx *fx = *state;
	tr_node_opts o;
	tr_node *node;
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	char url[340];
	nng_socket s[3];

	fx_runtime(fx);
	snprintf(url, sizeof(url), "ipc://%s/node-client.ipc", fx->dir);
	tr_node_opts_init(&o);
	o.name = NODE;
	o.cookie = COOKIE;
	o.listen = (const char *const[]){"tcp://127.0.0.1:0", NULL};
	o.client_url = url;
	o.client_max_conns = 2;
	o.client_idle_ms = 300;
	assert_rc(tr_node_start(&node, fx->rt, &o), TR_OK);
	for (int i = 0; i < 3; i++)
		s[i] = req_open_bg(url);
	assert_true(TT_WAIT_FOR(tr_node_stats_get(&st, node) == TR_OK &&
	                            st.client_conns_refused >= 2,
	    TT_WAIT_MS));
	assert_true(st.client_conns <= 2);
	for (int i = 0; i < 3; i++)
		nng_close(s[i]);
	assert_true(TT_WAIT_FOR(
	    tr_node_stats_get(&st, node) == TR_OK && st.client_conns == 0,
	    TT_WAIT_MS));
	/* A quiet one is closed after client_idle_ms. */
	s[0] = req_open_bg(url);
	assert_true(TT_WAIT_FOR(tr_node_stats_get(&st, node) == TR_OK &&
	                            st.client_conns_idle_closed >= 1,
	    TT_WAIT_MS));
	nng_close(s[0]);
	tr_node_stop(node);
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_raw_sp, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_too_large, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_conn_cap, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_idle, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_conn_fds, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_node_client_conns, fx_setup, fx_teardown),
	};

	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
