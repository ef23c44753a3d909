/*
 * Helpers for the socket tests (troupe/sock.h): a probe does the socket
 * calls in its own context (tt_run) and forwards every socket message it
 * gets to the test's port, where sk_expect picks them by type; the test
 * thread plays the other end with plain blocking sockets on 127.0.0.1.
 */
#ifndef TROUPE_TESTS_SOCK_FX_H
#define TROUPE_TESTS_SOCK_FX_H

#include "probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "troupe/sock.h"

/* ---- calls made inside a probe ------------------------------------------ */

struct sk_call {
	const char *url;
	const tr_sock_opts *opts;
	tr_sock sock; /* in: the socket; out: a new one */
	int mode;
	size_t n;
	const void *data;
	size_t len;
	tr_pid to;
	int64_t timeout_ms;
	char text[256]; /* out: tr_sock_url / tr_sock_peer */
	int64_t value;  /* out: tr_sock_queued */
};

static TT_UNUSED int sk_fn_listen(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	int rc = tr_sock_listen(ctx, &c->sock, c->url, c->opts);
	if (rc == TR_OK)
		(void)tr_sock_url(ctx, c->sock, c->text, sizeof(c->text));
	return rc;
}

static TT_UNUSED int sk_fn_accept(tr_ctx *ctx, void *arg)
{
	return tr_sock_accept(ctx, ((struct sk_call *)arg)->sock);
}

static TT_UNUSED int sk_fn_connect(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	return tr_sock_connect(ctx, &c->sock, c->url, c->opts, c->timeout_ms);
}

static TT_UNUSED int sk_fn_recv(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	return tr_sock_recv(ctx, c->sock, c->mode, c->n);
}

static TT_UNUSED int sk_fn_send(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	return tr_sock_send(ctx, c->sock, c->data, c->len);
}

static TT_UNUSED int sk_fn_close(tr_ctx *ctx, void *arg)
{
	return tr_sock_close(ctx, ((struct sk_call *)arg)->sock);
}

static TT_UNUSED int sk_fn_give(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	return tr_sock_give(ctx, c->sock, c->to);
}

static TT_UNUSED int sk_fn_peer(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	return tr_sock_peer(ctx, c->sock, c->text, sizeof(c->text));
}

static TT_UNUSED int sk_fn_queued(tr_ctx *ctx, void *arg)
{
	struct sk_call *c = arg;
	c->value = tr_sock_queued(ctx, c->sock);
	return TR_OK;
}

/* One call in `probe`: its result. */
static TT_UNUSED int sk_do(
    tr_port *port, tr_pid probe, tt_run_fn fn, struct sk_call *c)
{
	return tt_run(port, probe, fn, c);
}

/* ---- socket messages, as the probes forward them ------------------------ */

static bool sk_is_type(const tr_msg *m, const void *arg)
{
	const struct tt_other *o = (const struct tt_other *)m->data;
	return m->size == sizeof(*o) && o->type == *(const uint32_t *)arg;
}

/* The next forwarded message of `type` from `probe` within `ms`, or NULL;
 * the caller frees it. Its tt_other holds the first 2 KiB of the
 * payload. */
static TT_UNUSED tr_msg *sk_try_expect(
    tr_port *port, tr_pid probe, uint32_t type, int64_t ms)
{
	return tt_try_expect_if(port, TT_P_OTHER, probe, sk_is_type, &type, ms);
}

static TT_UNUSED tr_msg *sk_expect(tr_port *port, tr_pid probe, uint32_t type)
{
	tr_msg *m = sk_try_expect(port, probe, type, TT_WAIT_MS);
	if (m == NULL)
		fail_msg("no socket message %#x from the probe", type);
	return m;
}

static TT_UNUSED const struct tt_other *sk_other(const tr_msg *m)
{
	return (const struct tt_other *)m->data;
}

/* The status of a forwarded tr_sock_status message of `type`. */
static TT_UNUSED int sk_expect_status(
    tr_port *port, tr_pid probe, uint32_t type, tr_sock *sock)
{
	tr_msg *m = sk_expect(port, probe, type);
	tr_sock_status st;
	memcpy(&st, sk_other(m)->data, sizeof(st));
	tr_msg_free(m);
	if (sock != NULL)
		*sock = st.sock;
	return st.status;
}

/* The bytes of the next TR_MSG_SOCK_DATA (at most 2 KiB are forwarded)
 * into `buf`; returns their length. */
static TT_UNUSED size_t sk_expect_data(
    tr_port *port, tr_pid probe, void *buf, size_t cap)
{
	tr_msg *m = sk_expect(port, probe, TR_MSG_SOCK_DATA);
	const tr_sock_data *d = (const tr_sock_data *)sk_other(m)->data;
	size_t n = d->len;
	assert_true(n <= cap);
	assert_int_equal(sk_other(m)->size, sizeof(tr_sock_data) + n);
	memcpy(buf, d->bytes, n);
	tr_msg_free(m);
	return n;
}

/* The connection of the next TR_MSG_SOCK_ACCEPTED. */
static TT_UNUSED tr_sock sk_expect_accepted(tr_port *port, tr_pid probe)
{
	tr_msg *m = sk_expect(port, probe, TR_MSG_SOCK_ACCEPTED);
	tr_sock_accepted a;
	memcpy(&a, sk_other(m)->data, sizeof(a));
	tr_msg_free(m);
	assert_true(a.sock != TR_SOCK_NONE);
	return a.sock;
}

/* ---- the test thread's end: plain sockets -------------------------------- */

/* The port of a "tcp://HOST:PORT" URL. */
static TT_UNUSED int sk_url_port(const char *url)
{
	const char *c = strrchr(url, ':');
	assert_non_null(c);
	return atoi(c + 1);
}

static TT_UNUSED int sk_client(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {
	    .sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static TT_UNUSED void sk_write_all(int fd, const void *b, size_t n)
{
	const char *p = b;
	while (n > 0) {
		ssize_t k = write(fd, p, n);
		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

/* Reads exactly n bytes (the socket has a 10 s receive timeout). */
static TT_UNUSED void sk_read_all(int fd, void *b, size_t n)
{
	char *p = b;
	while (n > 0) {
		ssize_t k = read(fd, p, n);
		if (k <= 0)
			fail_msg("read: %zd (%s)", k, strerror(errno));
		p += k;
		n -= (size_t)k;
	}
}

/* Whether the peer has closed: a read returns 0 (or a reset) in time. */
static TT_UNUSED bool sk_sees_end(int fd)
{
	char b[256];
	for (;;) {
		ssize_t k = read(fd, b, sizeof(b));
		if (k == 0 || (k < 0 && errno == ECONNRESET))
			return true;
		if (k < 0)
			return false; /* the timeout */
	}
}

#endif
