/*
 * Tests of the connection layer (transport/sp.c): push0/pull0 spoken over
 * nng streams, with real sockets over ipc:// (in a fresh temporary
 * directory) and tcp://127.0.0.1. Frames arrive whole and in order,
 * whatever their size; the wire is nng's own (a real push0 socket reaches
 * our listener, our dialer reaches a real pull0 listener); a peer that
 * breaks the protocol (another SP protocol, a frame over the maximum, an
 * ipc message type other than 1, bytes that are not SP) is refused; a dialer
 * redials until a listener appears; either side notices the other closing;
 * closing a dialer fails what it still held, with a report for each.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "sp.h"
#include "troupe/troupe.h"

#define WAIT_MS 10000
#define MAX_FRAME (8u << 20)
#define NFRAMES 64

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the inbound side saw. */
struct sink {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint32_t nframes, bad_frames, ngone, nrefused;
	uint32_t last_id;
	size_t bytes;
	char why[128];
};

/* Frame i has size_of(i) bytes, each (i * 7 + k) & 0xff. */
static size_t size_of(uint32_t i)
{
	static const size_t sizes[] = {0, 1, 100, 4096, 70000, 3u << 20};
	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

static nng_msg *frame_msg(uint32_t i)
{
	nng_msg *m;
	size_t n = size_of(i);
	assert_int_equal(nng_msg_alloc(&m, n), 0);
	uint8_t *b = nng_msg_body(m);
	for (size_t k = 0; k < n; k++)
		b[k] = (uint8_t)(i * 7 + k);
	return m;
}

static void on_frame(void *arg, uint32_t id, const uint8_t *buf, size_t len)
{
	struct sink *s = arg;
	pthread_mutex_lock(&s->mu);
	uint32_t i = s->nframes;
	bool ok = len == size_of(i);
	for (size_t k = 0; ok && k < len; k++)
		ok = buf[k] == (uint8_t)(i * 7 + k);
	if (!ok)
		s->bad_frames++;
	s->nframes++;
	s->bytes += len;
	s->last_id = id;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void on_gone(void *arg, uint32_t id)
{
	struct sink *s = arg;
	(void)id;
	pthread_mutex_lock(&s->mu);
	s->ngone++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void on_refused(void *arg, uint32_t id, const char *why)
{
	struct sink *s = arg;
	(void)id;
	pthread_mutex_lock(&s->mu);
	s->nrefused++;
	snprintf(s->why, sizeof(s->why), "%s", why);
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* Waits until *field >= want; returns its value. */
static uint32_t sink_wait(struct sink *s, const uint32_t *field, uint32_t want)
{
	int64_t deadline = now_ms() + WAIT_MS;
	pthread_mutex_lock(&s->mu);
	while (*field < want && now_ms() < deadline) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	uint32_t v = *field;
	pthread_mutex_unlock(&s->mu);
	return v;
}

/* What the outbound side saw. */
struct src {
	_Atomic uint32_t sent_ok, sent_err, closed;
};

static void on_sent(void *owner, int rv)
{
	struct src *s = owner;
	if (rv == 0)
		atomic_fetch_add(&s->sent_ok, 1);
	else
		atomic_fetch_add(&s->sent_err, 1);
}

static void on_closed(void *arg, tr__sp_out *o)
{
	struct src *s = arg;
	(void)o;
	atomic_fetch_add(&s->closed, 1);
}

static uint32_t atomic_wait(_Atomic uint32_t *v, uint32_t want)
{
	int64_t deadline = now_ms() + WAIT_MS;
	while (atomic_load(v) < want && now_ms() < deadline)
		usleep(1000);
	return atomic_load(v);
}

struct fx {
	char dir[256];
	struct sink sink;
	tr__sp_in *in;
	char *url; /* where `in` listens */
};

static char *url_for(struct fx *f, bool ipc, const char *tag)
{
	char *u = malloc(400);
	assert_non_null(u);
	if (ipc)
		snprintf(u, 400, "ipc://%s/%s.sock", f->dir, tag);
	else
		snprintf(u, 400, "tcp://127.0.0.1:0");
	return u;
}

static int setup(void **state, bool ipc)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -1;
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/troupe-sp-XXXXXX",
	    tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	pthread_mutex_init(&f->sink.mu, NULL);
	pthread_cond_init(&f->sink.cv, NULL);
	tr__sp_in_ops ops = {on_frame, on_gone, on_refused, &f->sink};
	if (tr__sp_in_alloc(&f->in, &ops, MAX_FRAME, MAX_FRAME) != TR_OK)
		return -1;
	char *u = url_for(f, ipc, "in");
	int rc = tr__sp_in_listen(f->in, u, NULL, &f->url);
	free(u);
	if (rc != TR_OK)
		return -1;
	tr__sp_in_start(f->in);
	*state = f;
	return 0;
}

static int setup_ipc(void **state)
{
	return setup(state, true);
}

static int setup_tcp(void **state)
{
	return setup(state, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tr__sp_in_free(f->in);
	free(f->url);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	pthread_cond_destroy(&f->sink.cv);
	pthread_mutex_destroy(&f->sink.mu);
	free(f);
	return 0;
}

/* NFRAMES frames of 0 bytes to 3 MiB, half queued, half written by the
 * calling thread: all arrive, whole, in order, on one connection. */
static void test_frames_in_order(void **state)
{
	struct fx *f = *state;
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, f->url, NULL, 100, on_closed, &src), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src);
	uint32_t direct = 0;
	for (uint32_t i = 0; i < NFRAMES; i++) {
		if (i % 2 == 0) {
			tr__sp_out_send(o, frame_msg(i), true);
		} else if (tr__sp_out_send_now(o, frame_msg(i))) {
			direct++;
		}
		if (i == 0)
			/* Let the first connect, so that some writes find the
			 * connection up and idle. */
			assert_int_equal(
			    sink_wait(&f->sink, &f->sink.nframes, 1), 1);
	}
	assert_int_equal(
	    sink_wait(&f->sink, &f->sink.nframes, NFRAMES), NFRAMES);
	assert_int_equal(f->sink.bad_frames, 0);
	/* Every frame is reported once, or was written directly. */
	assert_int_equal(
	    atomic_wait(&src.sent_ok, NFRAMES - direct), NFRAMES - direct);
	assert_int_equal(atomic_load(&src.sent_err), 0);
	assert_true(tr__sp_out_up(o));
	tr__sp_out_free(o);
	/* Our close is not reported as a failure of the link... */
	assert_int_equal(atomic_load(&src.closed), 0);
	/* ...and the listener sees the connection go. */
	assert_int_equal(sink_wait(&f->sink, &f->sink.ngone, 1), 1);
}

/* The wire is nng's: a real push0 socket reaches our listener, and our
 * dialer reaches a real pull0 listener. */
static void test_nng_interop(void **state)
{
	struct fx *f = *state;
	nng_socket push;
	assert_int_equal(nng_push0_open(&push), 0);
	assert_int_equal(nng_dial(push, f->url, NULL, 0), 0);
	for (uint32_t i = 0; i < 6; i++) {
		nng_msg *m = frame_msg(i);
		assert_int_equal(nng_sendmsg(push, m, 0), 0);
	}
	assert_int_equal(sink_wait(&f->sink, &f->sink.nframes, 6), 6);
	assert_int_equal(f->sink.bad_frames, 0);
	nng_close(push);

	nng_socket pull;
	nng_listener l;
	assert_int_equal(nng_pull0_open(&pull), 0);
	nng_setopt_ms(pull, NNG_OPT_RECVTIMEO, WAIT_MS);
	char url[400];
	if (strncmp(f->url, "ipc://", 6) == 0)
		snprintf(url, sizeof(url), "ipc://%s/pull.sock", f->dir);
	else
		snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
	assert_int_equal(nng_listen(pull, url, &l, 0), 0);
	char *real = NULL;
	assert_int_equal(nng_listener_get_string(l, NNG_OPT_URL, &real), 0);
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, real, NULL, 100, on_closed, &src), TR_OK);
	nng_strfree(real);
	tr__sp_out_adopt(o, on_sent, &src);
	for (uint32_t i = 0; i < 6; i++)
		tr__sp_out_send(o, frame_msg(i), true);
	for (uint32_t i = 0; i < 6; i++) {
		nng_msg *m;
		assert_int_equal(nng_recvmsg(pull, &m, 0), 0);
		assert_int_equal(nng_msg_len(m), size_of(i));
		nng_msg *want = frame_msg(i);
		assert_memory_equal(
		    nng_msg_body(m), nng_msg_body(want), size_of(i));
		nng_msg_free(want);
		nng_msg_free(m);
	}
	assert_int_equal(atomic_wait(&src.sent_ok, 6), 6);
	/* The pull socket going away is the link failing: reported. */
	nng_close(pull);
	assert_int_equal(atomic_wait(&src.closed, 1), 1);
	/* And what is sent afterwards fails, reported too. */
	tr__sp_out_send(o, frame_msg(1), true);
	assert_int_equal(atomic_wait(&src.sent_err, 1), 1);
	tr__sp_out_free(o);
}

/* Connects to `url` with a bare stream, writes `n` bytes, and leaves
 * the connection to the listener to close. */
static void raw_send(const char *url, const void *buf, size_t n)
{
	nng_stream_dialer *d;
	nng_aio *aio;
	assert_int_equal(nng_stream_dialer_alloc(&d, url), 0);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_timeout(aio, WAIT_MS);
	nng_stream_dialer_dial(d, aio);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	nng_stream *st = nng_aio_get_output(aio, 0);
	nng_iov iov = {(void *)buf, n};
	nng_aio_set_iov(aio, 1, &iov);
	nng_stream_send(st, aio);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	/* Read until the listener closes it: proof it did. */
	uint8_t sink[64];
	iov.iov_buf = sink;
	iov.iov_len = sizeof(sink);
	int rv = 0;
	while (rv == 0) {
		nng_aio_set_iov(aio, 1, &iov);
		nng_stream_recv(st, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
	}
	assert_int_not_equal(rv, NNG_ETIMEDOUT);
	/* The dialer first: see tr__sp_out_free. */
	nng_stream_dialer_free(d);
	nng_stream_free(st);
	nng_aio_free(aio);
}

/* Peers that break the protocol: another SP protocol (req0), a frame
 * over max_frame, bytes that are not SP at all. Each is refused, closed
 * and counted; the listener keeps serving. */
static void test_refusals(void **state)
{
	struct fx *f = *state;
	/* Another SP protocol: req0's header. */
	static const uint8_t req0_hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	raw_send(f->url, req0_hdr, sizeof(req0_hdr));
	assert_int_equal(sink_wait(&f->sink, &f->sink.nrefused, 1), 1);
	assert_string_equal(f->sink.why, "not an SP push0 peer");
	uint32_t base = 1;

	/* A push0 header, then a length over max_frame: refused on the
	 * length alone, before any of the frame is read. */
	static const uint8_t push0_hdr[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};
	bool ipc = strncmp(f->url, "ipc://", 6) == 0;
	uint8_t big[8 + 9];
	size_t n = 0;
	memcpy(big, push0_hdr, 8);
	n = 8;
	if (ipc)
		big[n++] = 1;
	uint64_t len = (uint64_t)MAX_FRAME + 1;
	for (int i = 7; i >= 0; i--)
		big[n++] = (uint8_t)(len >> (8 * i));
	raw_send(f->url, big, n);
	assert_int_equal(
	    sink_wait(&f->sink, &f->sink.nrefused, base + 1), base + 1);
	assert_string_equal(f->sink.why, "frame larger than the maximum");

	/* Not SP at all. */
	static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
	raw_send(f->url, junk, sizeof(junk) - 1);
	assert_int_equal(
	    sink_wait(&f->sink, &f->sink.nrefused, base + 2), base + 2);
	assert_string_equal(f->sink.why, "not an SP push0 peer");

	/* On ipc, a message type other than 1. */
	if (ipc) {
		big[8] = 2;
		raw_send(f->url, big, n);
		assert_int_equal(
		    sink_wait(&f->sink, &f->sink.nrefused, base + 3), base + 3);
		assert_string_equal(f->sink.why, "bad ipc message type");
	}

	/* Still serving. */
	nng_socket push;
	assert_int_equal(nng_push0_open(&push), 0);
	assert_int_equal(nng_dial(push, f->url, NULL, 0), 0);
	assert_int_equal(nng_sendmsg(push, frame_msg(0), 0), 0);
	assert_int_equal(sink_wait(&f->sink, &f->sink.nframes, 1), 1);
	nng_close(push);
	assert_int_equal(f->sink.bad_frames, 0);
}

/* A dialer started before anyone listens redials (with backoff) and
 * delivers what was queued meanwhile; dropping its connection on the
 * listening side is reported to it as the link closing. */
static void test_redial_and_drop(void **state)
{
	struct fx *f = *state;
	struct sink late;
	memset(&late, 0, sizeof(late));
	pthread_mutex_init(&late.mu, NULL);
	pthread_cond_init(&late.cv, NULL);
	char url[400];
	bool ipc = strncmp(f->url, "ipc://", 6) == 0;
	if (ipc) {
		snprintf(url, sizeof(url), "ipc://%s/late.sock", f->dir);
	} else {
		/* A port that is free now: the system's choice, let go. */
		nng_socket s;
		nng_listener l;
		assert_int_equal(nng_pull0_open(&s), 0);
		assert_int_equal(nng_listen(s, "tcp://127.0.0.1:0", &l, 0), 0);
		char *real;
		assert_int_equal(
		    nng_listener_get_string(l, NNG_OPT_URL, &real), 0);
		snprintf(url, sizeof(url), "%s", real);
		nng_strfree(real);
		nng_close(s);
	}
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, url, NULL, 50, on_closed, &src), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src);
	tr__sp_out_send(o, frame_msg(0), true);
	tr__sp_out_send(o, frame_msg(1), true);
	usleep(150 * 1000); /* a few failed dials */
	assert_false(tr__sp_out_up(o));
	assert_int_equal(atomic_load(&src.sent_ok), 0);

	tr__sp_in *in;
	tr__sp_in_ops ops = {on_frame, on_gone, on_refused, &late};
	assert_int_equal(
	    tr__sp_in_alloc(&in, &ops, MAX_FRAME, MAX_FRAME), TR_OK);
	char *bound;
	assert_int_equal(tr__sp_in_listen(in, url, NULL, &bound), TR_OK);
	assert_string_equal(bound, url);
	free(bound);
	tr__sp_in_start(in);
	assert_int_equal(sink_wait(&late, &late.nframes, 2), 2);
	assert_int_equal(late.bad_frames, 0);
	assert_int_equal(atomic_wait(&src.sent_ok, 2), 2);
	assert_int_equal(tr__sp_in_listener_of(in, late.last_id), 0);

	tr__sp_in_drop(in, late.last_id);
	assert_int_equal(sink_wait(&late, &late.ngone, 1), 1);
	assert_int_equal(atomic_wait(&src.closed, 1), 1);
	assert_false(tr__sp_out_up(o));
	assert_int_equal(tr__sp_in_listener_of(in, late.last_id), -1);
	tr__sp_in_reap(in);
	tr__sp_out_free(o);
	tr__sp_in_free(in);
	pthread_cond_destroy(&late.cv);
	pthread_mutex_destroy(&late.mu);
}

/* Until a connection is trusted, its frames are bounded by the smaller
 * limit: a larger one is refused on its length. Trusted, it may send up
 * to max_frame. */
static void test_untrusted_limit(void **state)
{
	struct fx *f = *state;
	struct sink sk;
	memset(&sk, 0, sizeof(sk));
	pthread_mutex_init(&sk.mu, NULL);
	pthread_cond_init(&sk.cv, NULL);
	tr__sp_in *in;
	tr__sp_in_ops ops = {on_frame, on_gone, on_refused, &sk};
	assert_int_equal(tr__sp_in_alloc(&in, &ops, MAX_FRAME, 1000), TR_OK);
	char url[400], *bound;
	snprintf(url, sizeof(url), "ipc://%s/limits.sock", f->dir);
	assert_int_equal(tr__sp_in_listen(in, url, NULL, &bound), TR_OK);
	free(bound);
	tr__sp_in_start(in);

	/* Frames 0..2 (0, 1 and 100 bytes) pass; frame 3 (4096) does not. */
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, url, NULL, 50, on_closed, &src), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src);
	for (uint32_t i = 0; i < 4; i++)
		tr__sp_out_send(o, frame_msg(i), true);
	assert_int_equal(sink_wait(&sk, &sk.nrefused, 1), 1);
	assert_string_equal(sk.why, "frame larger than the maximum");
	assert_int_equal(sk.nframes, 3);
	assert_int_equal(atomic_wait(&src.closed, 1), 1);
	tr__sp_out_free(o);

	/* Another connection, trusted after its first frame. */
	struct src src2 = {0};
	assert_int_equal(
	    tr__sp_out_open(&o, url, NULL, 50, on_closed, &src2), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src2);
	pthread_mutex_lock(&sk.mu);
	sk.nframes = 0; /* frame_msg numbering starts again */
	pthread_mutex_unlock(&sk.mu);
	tr__sp_out_send(o, frame_msg(0), true);
	assert_int_equal(sink_wait(&sk, &sk.nframes, 1), 1);
	tr__sp_in_trust(in, sk.last_id);
	for (uint32_t i = 1; i < 6; i++) /* up to 3 MiB */
		tr__sp_out_send(o, frame_msg(i), true);
	assert_int_equal(sink_wait(&sk, &sk.nframes, 6), 6);
	assert_int_equal(sk.bad_frames, 0);
	assert_int_equal(sk.nrefused, 1);
	tr__sp_out_free(o);
	tr__sp_in_free(in);
	pthread_cond_destroy(&sk.cv);
	pthread_mutex_destroy(&sk.mu);
}

/* Closing a dialer that never connected fails every frame it held, each
 * reported (with notify) once; frames sent after the close fail at once. */
static void test_close_fails_queued(void **state)
{
	struct fx *f = *state;
	char url[400];
	snprintf(url, sizeof(url), "ipc://%s/nobody.sock", f->dir);
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, url, NULL, 50, on_closed, &src), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src);
	for (uint32_t i = 0; i < 5; i++)
		tr__sp_out_send(o, frame_msg(i), i != 2);
	tr__sp_out_close(o);
	assert_int_equal(atomic_load(&src.sent_err), 4);
	tr__sp_out_send(o, frame_msg(0), true);
	assert_int_equal(atomic_load(&src.sent_err), 5);
	assert_false(tr__sp_out_send_now(o, frame_msg(0)));
	assert_int_equal(atomic_load(&src.sent_err), 6);
	tr__sp_out_free(o);
	assert_int_equal(atomic_load(&src.sent_ok), 0);
	assert_int_equal(atomic_load(&src.closed), 0);
	/* A scheme with no stream transport, and a URL that is no URL. */
	assert_int_equal(
	    tr__sp_out_open(&o, "inproc://x", NULL, 50, on_closed, &src),
	    TR_ENOTSUP);
	char *bound = NULL;
	assert_int_equal(
	    tr__sp_in_listen(f->in, "inproc://x", NULL, &bound), TR_ENOTSUP);
	assert_int_equal(
	    tr__sp_in_listen(f->in, "not a url", NULL, &bound), TR_EINVAL);
	assert_int_equal(
	    tr__sp_out_open(&o, "not a url", NULL, 50, on_closed, &src),
	    TR_EINVAL);
	assert_null(bound);
}

#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    BOTH(test_frames_in_order),
	    BOTH(test_nng_interop),
	    BOTH(test_refusals),
	    BOTH(test_redial_and_drop),
	    cmocka_unit_test_setup_teardown(
	        test_untrusted_limit, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_close_fails_queued, setup_ipc, teardown),
	};
	alarm(300);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
