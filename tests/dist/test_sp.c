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
 *
 * The stream parser (sp_parse.c) alone: every split of a stream gives the
 * same frames; bad headers, ipc message types and lengths over the limit
 * are refused as soon as their bytes are in; its buffer stays within its
 * bound. Connections that do not get trusted: closed at the handshake
 * deadline, and beyond the per-listener cap the oldest goes, under a flood
 * of thousands of raw TCP connections from another process, with the
 * open untrusted count, descriptors and memory staying flat while an
 * honest connection gets through. Pause and resume: a paused connection's
 * sender stalls on full socket buffers, and after resume every frame
 * arrives, in order.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "sp.h"
#include "sp_parse.h"
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
	/* What on_frame does besides counting (set before frames come). */
	tr__sp_in *in;       /* for the two below */
	bool trust;          /* trust a connection at its first frame */
	uint32_t pause_at;   /* pause at this frame (0: never) */
	size_t fixed;        /* every frame has this size (0: size_of(i)) */
	uint32_t after_stop; /* frames delivered after `stopped` was set */
	bool stopped;
};

/* Bytes k & 0xff; frame i's bytes are pattern + (i * 7 & 0xff). */
static uint8_t pattern[(8u << 20) + 256];

static void pattern_init(void)
{
	for (size_t k = 0; k < sizeof(pattern); k++)
		pattern[k] = (uint8_t)k;
}

/* Frame i has size_of(i) bytes, each (i * 7 + k) & 0xff. */
static size_t size_of(uint32_t i)
{
	static const size_t sizes[] = {0, 1, 100, 4096, 70000, 3u << 20};
	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Frame i of `n` bytes. */
static nng_msg *frame_msg_n(uint32_t i, size_t n)
{
	nng_msg *m;
	assert_int_equal(nng_msg_alloc(&m, n), 0);
	if (n > 0)
		memcpy(nng_msg_body(m), pattern + (i * 7 & 0xff), n);
	return m;
}

static nng_msg *frame_msg(uint32_t i)
{
	return frame_msg_n(i, size_of(i));
}

static void on_frame(void *arg, uint32_t id, const uint8_t *buf, size_t len)
{
	struct sink *s = arg;
	pthread_mutex_lock(&s->mu);
	uint32_t i = s->nframes;
	size_t want = s->fixed != 0 ? s->fixed : size_of(i);
	if (len != want || memcmp(buf, pattern + (i * 7 & 0xff), len) != 0)
		s->bad_frames++;
	if (s->stopped)
		s->after_stop++;
	s->nframes++;
	s->bytes += len;
	bool first = s->nframes == 1 || s->last_id != id;
	s->last_id = id;
	bool trust = s->trust && first;
	bool pause = s->pause_at != 0 && s->nframes == s->pause_at;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* As the node does: from inside the callback. */
	if (trust)
		tr__sp_in_trust(s->in, id);
	if (pause) {
		tr__sp_in_pause(s->in, id);
		pthread_mutex_lock(&s->mu);
		s->stopped = true;
		pthread_mutex_unlock(&s->mu);
	}
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

/* Reads *field under the sink's lock. */
static uint32_t sink_get(struct sink *s, const uint32_t *field)
{
	pthread_mutex_lock(&s->mu);
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
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_frame = o.max_untrusted = MAX_FRAME;
	o.handshake_ms = 60000; /* these connections are never trusted */
	if (tr__sp_in_alloc_opts(&f->in, &ops, &o) != TR_OK)
		return -1;
	f->sink.in = f->in;
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
	/* Each failed dial leaves nng's reaper a stream that holds a
	 * reference to the dialer. Were the reaper to drop the last one,
	 * after our free, ThreadSanitizer would see the dialer's mutex
	 * destroyed there with no order to our last use of it: the order
	 * exists, through nng's atomics, but libnng is not instrumented.
	 * Letting the reaper finish first keeps the last reference ours. */
	usleep(50 * 1000);
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

/* ---- the stream parser alone ------------------------------------------- */

#define PARSE_BIG_MAX (1u << 20)

/* The push0 header, then frames of sizes[i] bytes (frame i's pattern). */
static size_t build_stream(
    uint8_t *out, bool ipc, const size_t *sizes, size_t nsizes)
{
	size_t n = TR__SP_HDR;
	tr__sp_header(out, TR__SP_PUSH0);
	for (size_t i = 0; i < nsizes; i++) {
		n += tr__sp_frame_head(out + n, ipc, sizes[i]);
		memcpy(out + n, pattern + (i * 7 & 0xff), sizes[i]);
		n += sizes[i];
	}
	return n;
}

/* The most a parser may hold with these limits. */
static size_t parse_bound(const tr__sp_parse *p, bool trusted)
{
	size_t lim = trusted ? p->max_frame : p->max_untrusted;
	size_t base = trusted ? TR__SP_BUF_TRUSTED : TR__SP_BUF_FIRST;
	return lim + TR__SP_ROOM_MAX > base ? lim + TR__SP_ROOM_MAX : base;
}

/* Feeds the stream in chunks ending at each of cuts[] (then the rest),
 * taking every whole frame after each piece fed; trusts the stream after
 * its first frame if `trust`. Checks the frames are those of `sizes`, and
 * the buffer's bound. Returns how many frames came. */
static size_t parse_chunks(bool ipc, const uint8_t *b, size_t n,
    const size_t *cuts, size_t ncuts, const size_t *sizes, size_t nsizes,
    size_t max_untrusted, bool trust)
{
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, ipc, max_untrusted, PARSE_BIG_MAX);
	size_t at = 0, got = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		while (at < end) {
			size_t k = tr__sp_parse_feed(&p, b + at, end - at);
			at += k;
			size_t before = got;
			const uint8_t *f;
			size_t len;
			int r;
			while ((r = tr__sp_parse_next(&p, &f, &len)) ==
			       TR__SP_FRAME) {
				assert_true(got < nsizes);
				assert_int_equal(len, sizes[got]);
				assert_memory_equal(
				    f, pattern + (got * 7 & 0xff), len);
				got++;
				if (trust)
					tr__sp_parse_trust(&p);
			}
			assert_int_equal(r, TR__SP_NEED);
			assert_true(tr__sp_parse_held(&p) <=
			            parse_bound(&p, p.trusted));
			/* Either bytes went in or frames came out. */
			assert_true(k > 0 || got > before);
		}
	}
	assert_null(tr__sp_parse_why(&p));
	tr__sp_parse_fini(&p);
	return got;
}

/* Every split of a stream, at one point or two, and byte by byte, gives
 * the same frames, on tcp and on ipc (a message-type byte more). */
static void test_parse_splits(void **state)
{
	(void)state;
	static const size_t sizes[] = {
	    0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 255, 256, 300, 0, 1};
	static const size_t nsz = sizeof(sizes) / sizeof(sizes[0]);
	uint8_t *b = malloc(8192);
	size_t *cuts = malloc(8192 * sizeof(*cuts));
	assert_non_null(b);
	assert_non_null(cuts);
	for (int ipc = 0; ipc <= 1; ipc++) {
		size_t n = build_stream(b, ipc, sizes, nsz);
		for (size_t k = 0; k <= n; k++)
			assert_int_equal(parse_chunks(ipc, b, n, &k, 1, sizes,
			                     nsz, 1000, false),
			    nsz);
		/* Two cuts, over the first six frames. */
		size_t n6 = build_stream(b, ipc, sizes, 6);
		for (size_t k = 0; k <= n6; k++)
			for (size_t j = k; j <= n6; j++) {
				size_t two[2] = {k, j};
				assert_int_equal(parse_chunks(ipc, b, n6, two,
				                     2, sizes, 6, 1000, false),
				    6);
			}
		/* Byte by byte. */
		n = build_stream(b, ipc, sizes, nsz);
		for (size_t k = 0; k < n; k++)
			cuts[k] = k + 1;
		assert_int_equal(
		    parse_chunks(ipc, b, n, cuts, n, sizes, nsz, 1000, false),
		    nsz);
	}
	free(b);
	free(cuts);

	/* Frames larger than the first buffer (it grows to each, bound
	 * by the limit), cut around the buffer's sizes and the prefixes. */
	static const size_t big[] = {
	    70000, 3, TR__SP_BUF_FIRST, TR__SP_BUF_FIRST - 9, 300000, 0, 65536};
	static const size_t nbig = sizeof(big) / sizeof(big[0]);
	b = malloc(600000);
	assert_non_null(b);
	for (int ipc = 0; ipc <= 1; ipc++) {
		size_t n = build_stream(b, ipc, big, nbig);
		size_t pts[] = {0, 1, 7, 8, 9, 10, 16, 17, 18, 4090, 4096, 4104,
		    4105, 4106, 70000, 70017, 70018, 70027, 262144, 262153,
		    n - 65536, n - 1, n};
		for (size_t k = 0; k < sizeof(pts) / sizeof(pts[0]); k++)
			/* Untrusted up to 300000: every frame fits. */
			assert_int_equal(parse_chunks(ipc, b, n, &pts[k], 1,
			                     big, nbig, 300000, false),
			    nbig);
		/* Untrusted up to 100 bytes, then trusted: a frame over
		 * the first limit passes once its stream is trusted. */
		static const size_t tr[] = {100, 70000, 5};
		n = build_stream(b, ipc, tr, 3);
		for (size_t k = 0; k < sizeof(pts) / sizeof(pts[0]); k++) {
			size_t cut = pts[k] < n ? pts[k] : n;
			assert_int_equal(
			    parse_chunks(ipc, b, n, &cut, 1, tr, 3, 100, true),
			    3);
		}
	}
	free(b);
}

/* Feeds `b` byte by byte; returns the offset of the byte at which the
 * stream was refused (n if it never was), checking `why`, and that every
 * frame before was whole. */
static size_t refused_at(bool ipc, const uint8_t *b, size_t n,
    size_t max_untrusted, bool trusted, const char *why)
{
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, ipc, max_untrusted, 1000);
	if (trusted)
		tr__sp_parse_trust(&p);
	size_t k;
	for (k = 0; k < n; k++) {
		assert_int_equal(tr__sp_parse_feed(&p, b + k, 1), 1);
		const uint8_t *f;
		size_t len;
		int r;
		while ((r = tr__sp_parse_next(&p, &f, &len)) == TR__SP_FRAME)
			;
		if (r == TR__SP_REFUSE)
			break;
		assert_null(tr__sp_parse_why(&p));
	}
	if (k < n) {
		assert_string_equal(tr__sp_parse_why(&p), why);
		/* For good: nothing more goes in or comes out. */
		uint8_t *at;
		size_t room;
		assert_false(tr__sp_parse_room(&p, &at, &room));
		assert_int_equal(tr__sp_parse_feed(&p, b, 1), 0);
		const uint8_t *f;
		size_t len;
		assert_int_equal(
		    tr__sp_parse_next(&p, &f, &len), TR__SP_REFUSE);
	}
	assert_true(tr__sp_parse_held(&p) <= parse_bound(&p, trusted));
	tr__sp_parse_fini(&p);
	return k;
}

/* Bad headers are refused at their first wrong byte, an ipc message type
 * other than 1 at that byte, a length over the limit at its last byte. */
static void test_parse_refusals(void **state)
{
	(void)state;
	static const char *hdr_why = "not an SP push0 peer";
	uint8_t b[64];
	for (size_t j = 0; j < TR__SP_HDR; j++) {
		tr__sp_header(b, TR__SP_PUSH0);
		b[j] ^= 0x5a;
		assert_int_equal(
		    refused_at(false, b, 8, 100, false, hdr_why), j);
	}
	static const uint8_t req0[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	assert_int_equal(refused_at(false, req0, 8, 100, false, hdr_why), 5);
	static const uint8_t pull0[8] = {0, 'S', 'P', 0, 0, 0x51, 0, 0};
	assert_int_equal(refused_at(true, pull0, 8, 100, false, hdr_why), 5);
	assert_int_equal(refused_at(false, (const uint8_t *)"GET / HTTP/1.0",
	                     14, 100, false, hdr_why),
	    0);
	/* TLS's ClientHello starts 0x16 0x03. */
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0xa5};
	assert_int_equal(refused_at(false, tls, 5, 100, false, hdr_why), 0);

	/* ipc: the type byte, before any of the length. */
	for (unsigned t = 0; t < 256; t++) {
		size_t n = build_stream(b, true, (const size_t[]){3}, 1);
		b[8 + 9 + 3] = (uint8_t)t; /* a second frame's type */
		memset(b + 8 + 9 + 4, 0, 8);
		n += 9;
		if (t == 1)
			assert_int_equal(refused_at(true, b, n, 100, false,
			                     "bad ipc message type"),
			    n);
		else
			assert_int_equal(refused_at(true, b, n, 100, false,
			                     "bad ipc message type"),
			    8 + 12);
	}

	/* Lengths: the limit passes, one more is refused on the length's
	 * last byte, before any of the frame; trusted, the larger limit. */
	static const char *big_why = "frame larger than the maximum";
	const uint64_t lens[] = {100, 101, 1000, 1001, UINT64_MAX,
	    (uint64_t)1 << 63, (uint64_t)1 << 32};
	for (int ipc = 0; ipc <= 1; ipc++) {
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			for (int trusted = 0; trusted <= 1; trusted++) {
				tr__sp_header(b, TR__SP_PUSH0);
				size_t n =
				    8 + tr__sp_frame_head(b + 8, ipc, lens[i]);
				uint64_t lim = trusted ? 1000 : 100;
				size_t at = refused_at(
				    ipc, b, n, 100, trusted, big_why);
				assert_int_equal(at, lens[i] > lim ? n - 1 : n);
			}
		}
	}
	/* A frame of exactly the limit is whole once its last byte is in,
	 * and the buffer held it whole. */
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, false, 65536, 65536);
	uint8_t *s = malloc(8 + 8 + 65536);
	assert_non_null(s);
	size_t n = build_stream(s, false, (const size_t[]){65536}, 1);
	assert_int_equal(tr__sp_parse_feed(&p, s, n - 1), n - 1);
	const uint8_t *f;
	size_t len;
	assert_int_equal(tr__sp_parse_next(&p, &f, &len), TR__SP_NEED);
	assert_int_equal(tr__sp_parse_feed(&p, s + n - 1, 1), 1);
	assert_int_equal(tr__sp_parse_next(&p, &f, &len), TR__SP_FRAME);
	assert_int_equal(len, 65536);
	assert_memory_equal(f, pattern, len);
	/* Whole: the frame, its prefix and the SP header. */
	assert_int_equal(tr__sp_parse_held(&p), 8 + 8 + 65536);
	tr__sp_parse_fini(&p);
	free(s);
}

/* ---- untrusted connections: deadline and cap ------------------------------
 */

static void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

static void sink_fini(struct sink *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static void sink_reset(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->nframes = s->bad_frames = s->ngone = s->nrefused = 0;
	s->after_stop = 0;
	s->stopped = false;
	pthread_mutex_unlock(&s->mu);
}

/* A tr__sp_in on tcp://127.0.0.1 (one listener per entry of `n`), started;
 * the URL of the first in *url. */
static tr__sp_in *in_open(
    struct sink *s, const tr__sp_in_opts *o, int nlisten, char **url)
{
	tr__sp_in *in;
	tr__sp_in_ops ops = {on_frame, on_gone, on_refused, s};
	assert_int_equal(tr__sp_in_alloc_opts(&in, &ops, o), TR_OK);
	s->in = in;
	for (int i = 0; i < nlisten; i++) {
		char *b;
		assert_int_equal(
		    tr__sp_in_listen(in, "tcp://127.0.0.1:0", NULL, &b), TR_OK);
		url[i] = b;
	}
	tr__sp_in_start(in);
	return in;
}

static int url_port(const char *url)
{
	return atoi(strrchr(url, ':') + 1);
}

/* A raw TCP connection to 127.0.0.1:port, or -1. Async-signal-safe (the
 * flood's child process uses it). */
static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads (and drops) what comes on `fd` until the other side closes it or
 * `ms` pass; returns whether it was closed. */
static bool raw_closed_within(int fd, int ms)
{
	int64_t end = now_ms() + ms;
	for (;;) {
		int64_t left = end - now_ms();
		struct pollfd pf = {fd, POLLIN, 0};
		int r = poll(&pf, 1, left > 0 ? (int)left : 0);
		if (r <= 0)
			return false;
		char b[64];
		if (read(fd, b, sizeof(b)) <= 0)
			return true;
	}
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static long rss_kib(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%ld %ld", &size, &res), 2);
	fclose(f);
	return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static tr__sp_in_stats stats_of(tr__sp_in *in)
{
	tr__sp_in_stats st;
	tr__sp_in_stats_get(in, &st);
	return st;
}

/* Waits until `in` has `open` connections open and `untrusted` of them
 * untrusted; returns whether it did within WAIT_MS. */
static bool stats_wait(tr__sp_in *in, uint32_t open, uint32_t untrusted)
{
	int64_t end = now_ms() + WAIT_MS;
	while (now_ms() < end) {
		tr__sp_in_stats st = stats_of(in);
		if (st.open == open && st.untrusted == untrusted)
			return true;
		usleep(2000);
	}
	return false;
}

/* An honest connection: dials, sends frame 0, which the sink trusts;
 * returns once it is trusted (false if it was closed first). */
static bool honest_open(tr__sp_out **op, struct src *src, const char *url,
    struct sink *s, uint32_t nframes_before)
{
	assert_int_equal(
	    tr__sp_out_open(op, url, NULL, 50, on_closed, src), TR_OK);
	tr__sp_out_adopt(*op, on_sent, src);
	tr__sp_out_send(*op, frame_msg(nframes_before), true);
	int64_t end = now_ms() + WAIT_MS;
	while (now_ms() < end) {
		pthread_mutex_lock(&s->mu);
		uint32_t n = s->nframes;
		pthread_mutex_unlock(&s->mu);
		if (n > nframes_before)
			return true;
		if (atomic_load(&src->closed) != 0)
			return false;
		usleep(1000);
	}
	return false;
}

/* Connections that send nothing, only the SP header, or the header and
 * part of a length are closed at the handshake deadline, counted, with
 * `gone`; a connection trusted in time stays. */
static void test_handshake_deadline(void **state)
{
	(void)state;
	struct sink sk;
	sink_init(&sk);
	sk.trust = true;
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.handshake_ms = 300;
	char *url;
	tr__sp_in *in = in_open(&sk, &o, 1, &url);
	int port = url_port(url);

	enum { N = 12 };
	static const uint8_t push0[8 + 4] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};
	int fds[N];
	int64_t t0 = now_ms();
	for (int i = 0; i < N; i++) {
		fds[i] = raw_connect(port);
		assert_true(fds[i] >= 0);
		size_t n = i < 4 ? 0 : i < 8 ? 8 : 12;
		if (n > 0)
			assert_int_equal(write(fds[i], push0, n), (ssize_t)n);
	}
	struct src src = {0};
	tr__sp_out *o1;
	assert_true(honest_open(&o1, &src, url, &sk, 0));
	for (int i = 0; i < N; i++) {
		assert_true(raw_closed_within(fds[i], WAIT_MS));
		int64_t dt = now_ms() - t0;
		/* Not before the deadline (a ms of rounding), and not
		 * long after, sanitizers included. */
		assert_true(dt >= 299);
		assert_true(dt <= 300 + 3000);
		close(fds[i]);
	}
	assert_true(stats_wait(in, 1, 0));
	tr__sp_in_stats st = stats_of(in);
	assert_int_equal(st.accepted, N + 1);
	assert_int_equal(st.closed_deadline, N);
	assert_int_equal(st.closed_cap, 0);
	assert_int_equal(st.refused, 0);
	assert_int_equal(sink_wait(&sk, &sk.ngone, N), N);
	/* The trusted one outlives the deadline, and still delivers. */
	while (now_ms() < t0 + 700)
		usleep(10000);
	tr__sp_out_send(o1, frame_msg(1), true);
	assert_int_equal(sink_wait(&sk, &sk.nframes, 2), 2);
	assert_int_equal(sink_get(&sk, &sk.bad_frames), 0);
	assert_int_equal(atomic_load(&src.closed), 0);
	assert_int_equal(sink_get(&sk, &sk.ngone), N);
	tr__sp_out_free(o1);
	assert_int_equal(sink_wait(&sk, &sk.ngone, N + 1), N + 1);
	tr__sp_in_free(in);
	free(url);
	sink_fini(&sk);
}

/* Beyond the cap, each new untrusted connection closes the oldest of its
 * own listener; another listener's are not touched. */
static void test_untrusted_cap(void **state)
{
	(void)state;
	struct sink sk;
	sink_init(&sk);
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_untrusted_conns = 4;
	o.handshake_ms = 20000;
	char *url[2];
	tr__sp_in *in = in_open(&sk, &o, 2, url);
	enum { NA = 10, NB = 2 };
	int a[NA], b[NB];
	for (int i = 0; i < NB; i++) {
		b[i] = raw_connect(url_port(url[1]));
		assert_true(b[i] >= 0);
		assert_true(stats_wait(in, (uint32_t)i + 1, (uint32_t)i + 1));
	}
	for (int i = 0; i < NA; i++) {
		a[i] = raw_connect(url_port(url[0]));
		assert_true(a[i] >= 0);
		/* One at a time, so that which is oldest is known. */
		int64_t end = now_ms() + WAIT_MS;
		while (stats_of(in).accepted < (uint64_t)(NB + i + 1) &&
		       now_ms() < end)
			usleep(1000);
		tr__sp_in_stats st = stats_of(in);
		assert_true(st.untrusted <= 4 + NB);
	}
	/* The six oldest of listener 0 are closed; the rest stay. */
	for (int i = 0; i < NA - 4; i++)
		assert_true(raw_closed_within(a[i], WAIT_MS));
	for (int i = NA - 4; i < NA; i++)
		assert_false(raw_closed_within(a[i], 100));
	for (int i = 0; i < NB; i++)
		assert_false(raw_closed_within(b[i], 100));
	assert_true(stats_wait(in, 4 + NB, 4 + NB));
	tr__sp_in_stats st = stats_of(in);
	assert_int_equal(st.accepted, NA + NB);
	assert_int_equal(st.closed_cap, NA - 4);
	assert_int_equal(st.closed_deadline, 0);
	assert_int_equal(sink_wait(&sk, &sk.ngone, NA - 4), NA - 4);
	/* Closed by their peer: counted as neither. */
	for (int i = 0; i < NA; i++)
		close(a[i]);
	for (int i = 0; i < NB; i++)
		close(b[i]);
	assert_true(stats_wait(in, 0, 0));
	st = stats_of(in);
	assert_int_equal(st.closed_cap, NA - 4);
	assert_int_equal(st.closed_deadline, 0);
	tr__sp_in_free(in);
	free(url[0]);
	free(url[1]);
	sink_fini(&sk);
}

/* The flood's child: opens `total` raw connections to `port`, about
 * `rate` a second, at most FLOOD_OPEN at once, every other one sending a
 * valid push0 header and then nothing, and reads each until the listener
 * closes it. Only system calls after fork. Writes {opened, closed,
 * failed} to `out`. */
#define FLOOD_OPEN 256
static void flood_child(int port, int total, int rate, int out)
{
	static struct pollfd pf[FLOOD_OPEN];
	static const uint8_t push0[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};
	int counts[3] = {0, 0, 0}; /* opened, closed by the listener, failed */
	int nopen = 0;
	int64_t t0 = now_ms(), end = t0 + 60000;
	while ((counts[0] < total || nopen > 0) && now_ms() < end) {
		int64_t due = (now_ms() - t0) * rate / 1000 + 1;
		while (counts[0] < total && counts[0] < due &&
		       nopen < FLOOD_OPEN) {
			int fd = raw_connect(port);
			if (fd < 0) {
				counts[2]++;
				break;
			}
			if (counts[0] % 2 == 1 &&
			    write(fd, push0, sizeof(push0)) != sizeof(push0))
				counts[2]++;
			pf[nopen].fd = fd;
			pf[nopen].events = POLLIN;
			nopen++;
			counts[0]++;
		}
		if (poll(pf, (nfds_t)nopen, 1) <= 0)
			continue;
		for (int i = 0; i < nopen;) {
			char b[64];
			if ((pf[i].revents & (POLLIN | POLLHUP | POLLERR)) !=
			        0 &&
			    read(pf[i].fd, b, sizeof(b)) <= 0) {
				close(pf[i].fd);
				pf[i] = pf[--nopen];
				counts[1]++;
				continue;
			}
			pf[i].revents = 0;
			i++;
		}
	}
	if (write(out, counts, sizeof(counts)) != sizeof(counts))
		_exit(2);
	_exit(0);
}

struct sampler {
	tr__sp_in *in;
	_Atomic bool stop;
	uint64_t mid; /* accepted connections at which to take rss_mid */
	uint32_t max_untrusted;
	int max_fds;
	long rss_mid;
};

static void *sampler_main(void *arg)
{
	struct sampler *sm = arg;
	while (!atomic_load(&sm->stop)) {
		tr__sp_in_stats st = stats_of(sm->in);
		if (st.untrusted > sm->max_untrusted)
			sm->max_untrusted = st.untrusted;
		int n = count_fds();
		if (n > sm->max_fds)
			sm->max_fds = n;
		if (sm->rss_mid == 0 && st.accepted >= sm->mid)
			sm->rss_mid = rss_kib();
		usleep(2000);
	}
	return NULL;
}

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* Thousands of raw connections from another process, far more than the
 * cap, that send nothing or only the SP header: the open untrusted
 * connections never exceed the cap, descriptors and memory stay flat,
 * each one is closed (by the cap or at the deadline) and counted, and an
 * honest connection that gets trusted in time works all along. The
 * number is TROUPE_SP_FLOOD (default 3000), at about 1000 a second. */
static void test_untrusted_flood(void **state)
{
	(void)state;
	const char *env = getenv("TROUPE_SP_FLOOD");
	int total = env != NULL && atoi(env) > 0 ? atoi(env) : 3000;
	const uint32_t cap = 32;
	struct sink sk;
	sink_init(&sk);
	sk.trust = true;
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_untrusted_conns = cap;
	o.handshake_ms = 1000;
	char *url;
	tr__sp_in *in = in_open(&sk, &o, 1, &url);
	int port = url_port(url);

	/* Warm up (nng's first connections set up its own state). */
	for (int i = 0; i < 4; i++) {
		int fd = raw_connect(port);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_true(stats_wait(in, 0, 0));
	usleep(50 * 1000);
	int fds0 = count_fds();
	long rss0 = rss_kib();
	uint64_t acc0 = stats_of(in).accepted;

	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Hold none of the parent's descriptors, so that every
		 * close of the listener's is the connection's end. */
		for (int fd = 3; fd < 4096; fd++)
			if (fd != pfd[1])
				close(fd);
		flood_child(port, total, 1000, pfd[1]);
	}
	close(pfd[1]);
	struct sampler sm = {.in = in, .mid = acc0 + (uint64_t)total / 3};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, sampler_main, &sm), 0);

	/* An honest connection, once the flood is under way; a real peer
	 * would retry if the flood pushed it out before its trust. */
	usleep(300 * 1000);
	struct src src = {0};
	tr__sp_out *o1 = NULL;
	int tries = 0;
	bool ok = false;
	while (!ok && tries < 5) {
		memset(&src, 0, sizeof(src));
		tr__sp_out_free(o1);
		tries++;
		ok = honest_open(&o1, &src, url, &sk, 0);
	}
	assert_true(ok);
	for (uint32_t i = 1; i < 21; i++) {
		tr__sp_out_send(o1, frame_msg(i), true);
		usleep(10 * 1000);
	}
	assert_int_equal(sink_wait(&sk, &sk.nframes, 21), 21);
	assert_int_equal(sink_get(&sk, &sk.bad_frames), 0);

	int counts[3];
	assert_int_equal(read(pfd[0], counts, sizeof(counts)), sizeof(counts));
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The honest one is still there; the flood is all gone. */
	assert_true(stats_wait(in, 1, 0));
	int64_t end = now_ms() + WAIT_MS;
	while (count_fds() > fds0 + 2 && now_ms() < end)
		usleep(5000);
	atomic_store(&sm.stop, true);
	pthread_join(th, NULL);
	int fds1 = count_fds();
	long rss1 = rss_kib();
	tr__sp_in_stats st = stats_of(in);
	print_message("flood: %d connections (%d failed), %d tries; max "
	              "untrusted %u (cap %u); fds %d -> max %d -> %d; rss %ld "
	              "-> %ld (a third in) -> %ld KiB; closed: %llu cap, %llu "
	              "deadline\n",
	    counts[0], counts[2], tries, sm.max_untrusted, cap, fds0,
	    sm.max_fds, fds1, rss0, sm.rss_mid, rss1,
	    (unsigned long long)st.closed_cap,
	    (unsigned long long)st.closed_deadline);
	assert_int_equal(counts[0], total);
	assert_int_equal(counts[1], total); /* each closed by the listener */
	assert_int_equal(counts[2], 0);
	assert_true(sm.max_untrusted <= cap);
	assert_int_equal(sm.max_untrusted, cap); /* the flood reached it */
	assert_int_equal(st.accepted - acc0, (uint64_t)total + (uint64_t)tries);
	assert_int_equal(st.closed_cap + st.closed_deadline,
	    (uint64_t)total + (uint64_t)tries - 1);
	assert_true(st.closed_cap > 0);
	assert_int_equal(st.refused, 0);
	/* Descriptors: the honest connection's two (both ends are in this
	 * process), the cap, and those closed but not yet freed by the
	 * background reaper, which lags on a loaded machine: bounded, and
	 * far below the flood's 3000. */
	assert_true(sm.max_fds <= fds0 + 2 + 4 * (int)cap + 256);
	assert_true(fds1 <= fds0 + 2);
	/* The first connections cost the threads' allocator arenas a few
	 * MiB, once (ThreadSanitizer's shadow some tens); the two thirds
	 * after that nothing more. (AddressSanitizer keeps freed memory in
	 * quarantine by design.) */
#ifndef UNDER_ASAN
	assert_true(sm.rss_mid != 0);
	assert_true(rss1 - sm.rss_mid < 4 * 1024);
#ifndef UNDER_TSAN
	assert_true(rss1 - rss0 < 16 * 1024);
#endif
#endif
	assert_int_equal(atomic_load(&src.closed), 0);
	tr__sp_out_free(o1);
	assert_true(stats_wait(in, 0, 0));
	tr__sp_in_free(in);
	free(url);
	sink_fini(&sk);
}

/* ---- pause and resume ---------------------------------------------------- */

#define PAUSE_FRAME (64u << 10)
#define PAUSE_NFRAMES 1024u /* 64 MiB: far more than socket buffers hold */

/* Sends frames `from`..`to`-1 of PAUSE_FRAME bytes, keeping at most 8
 * unsent; stops early once nothing was sent for `stall_ms` (0: never).
 * Returns the frames queued. */
static uint32_t send_until(
    tr__sp_out *o, struct src *src, uint32_t from, uint32_t to, int stall_ms)
{
	uint32_t q = from;
	uint32_t last = atomic_load(&src->sent_ok);
	int64_t since = now_ms();
	while (q < to) {
		uint32_t ok = atomic_load(&src->sent_ok);
		if (ok != last) {
			last = ok;
			since = now_ms();
		}
		if (stall_ms > 0 && now_ms() - since > stall_ms)
			break;
		if (q - ok < 8) {
			tr__sp_out_send(o, frame_msg_n(q, PAUSE_FRAME), true);
			q++;
		} else {
			usleep(500);
		}
		assert_true(now_ms() - since < WAIT_MS);
	}
	return q;
}

/* Paused from inside `frame`, a connection delivers nothing more and its
 * sender stalls once the socket buffers are full; resumed from another
 * thread, every frame arrives, in order. Then pausing and resuming from
 * another thread while frames flow loses and reorders nothing. */
static void test_pause_resume(void **state)
{
	struct fx *f = *state;
	struct sink *sk = &f->sink;
	pthread_mutex_lock(&sk->mu);
	sk->fixed = PAUSE_FRAME;
	sk->pause_at = 4;
	sk->trust = true;
	pthread_mutex_unlock(&sk->mu);
	struct src src = {0};
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, f->url, NULL, 50, on_closed, &src), TR_OK);
	tr__sp_out_adopt(o, on_sent, &src);
	uint32_t q = send_until(o, &src, 0, PAUSE_NFRAMES, 500);
	/* Stalled well before the end, with nothing delivered since the
	 * pause: the sender holds the rest. */
	assert_true(q < PAUSE_NFRAMES);
	uint32_t stalled = atomic_load(&src.sent_ok);
	usleep(200 * 1000);
	assert_int_equal(atomic_load(&src.sent_ok), stalled);
	assert_int_equal(sink_get(sk, &sk->nframes), 4);
	assert_int_equal(sink_get(sk, &sk->after_stop), 0);
	tr__sp_in_stats st = stats_of(f->in);
	assert_int_equal(st.paused, 1);
	assert_int_equal(st.open, 1);
	assert_int_equal(sink_get(sk, &sk->ngone), 0);
	print_message("paused at 4 of %u frames of %u KiB: the sender "
	              "stalled with %u written\n",
	    PAUSE_NFRAMES, PAUSE_FRAME >> 10, stalled);

	tr__sp_in_resume(f->in, sink_get(sk, &sk->last_id));
	q = send_until(o, &src, q, PAUSE_NFRAMES, 0);
	assert_int_equal(
	    sink_wait(sk, &sk->nframes, PAUSE_NFRAMES), PAUSE_NFRAMES);
	assert_int_equal(sink_get(sk, &sk->bad_frames), 0);
	assert_int_equal(stats_of(f->in).paused, 0);

	/* From another thread, while frames flow. */
	uint32_t id = sink_get(sk, &sk->last_id);
	uint32_t total = PAUSE_NFRAMES + 256;
	while (q < total) {
		tr__sp_in_pause(f->in, id);
		tr__sp_in_pause(f->in, id); /* twice: no change */
		/* A few more while paused (they wait in the buffers). */
		for (int k = 0; k < 2 && q < total; k++, q++)
			tr__sp_out_send(o, frame_msg_n(q, PAUSE_FRAME), true);
		usleep(1000);
		tr__sp_in_resume(f->in, id);
		q = send_until(o, &src, q, q + 16 < total ? q + 16 : total, 0);
	}
	tr__sp_in_resume(f->in, id);
	tr__sp_in_resume(f->in, id); /* not paused: no change */
	assert_int_equal(sink_wait(sk, &sk->nframes, total), total);
	assert_int_equal(sink_get(sk, &sk->bad_frames), 0);
	assert_int_equal(atomic_wait(&src.sent_ok, total), total);
	assert_int_equal(stats_of(f->in).paused, 0);
	assert_int_equal(sink_get(sk, &sk->ngone), 0);
	tr__sp_out_free(o);
	assert_int_equal(sink_wait(sk, &sk->ngone, 1), 1);
	assert_true(stats_wait(f->in, 0, 0));
}

/* A paused connection: `gone` never fires for the pause itself; a drop
 * reports it at once; its peer closing it is noticed on resume, after the
 * frames it sent before; and freeing the listener with one paused does
 * not wait for it. */
static void test_pause_and_close(void **state)
{
	struct fx *f = *state;
	struct sink *sk = &f->sink;
	for (int round = 0; round < 3; round++) {
		sink_reset(sk);
		pthread_mutex_lock(&sk->mu);
		sk->fixed = 100;
		sk->pause_at = 2;
		pthread_mutex_unlock(&sk->mu);
		struct src src = {0};
		tr__sp_out *o;
		assert_int_equal(
		    tr__sp_out_open(&o, f->url, NULL, 50, on_closed, &src),
		    TR_OK);
		tr__sp_out_adopt(o, on_sent, &src);
		for (uint32_t i = 0; i < 10; i++)
			tr__sp_out_send(o, frame_msg_n(i, 100), true);
		assert_int_equal(atomic_wait(&src.sent_ok, 10), 10);
		assert_int_equal(sink_wait(sk, &sk->nframes, 2), 2);
		usleep(100 * 1000);
		assert_int_equal(sink_get(sk, &sk->nframes), 2);
		assert_int_equal(sink_get(sk, &sk->ngone), 0);
		assert_int_equal(stats_of(f->in).paused, 1);
		uint32_t id = sink_get(sk, &sk->last_id);
		if (round == 0) {
			tr__sp_in_drop(f->in, id);
			assert_int_equal(sink_wait(sk, &sk->ngone, 1), 1);
			assert_int_equal(sink_get(sk, &sk->nframes), 2);
			assert_int_equal(atomic_wait(&src.closed, 1), 1);
			tr__sp_out_free(o);
		} else if (round == 1) {
			tr__sp_out_free(o);
			usleep(200 * 1000);
			assert_int_equal(sink_get(sk, &sk->ngone), 0);
			tr__sp_in_resume(f->in, id);
			assert_int_equal(sink_wait(sk, &sk->ngone, 1), 1);
			assert_int_equal(sink_get(sk, &sk->nframes), 10);
			assert_int_equal(sink_get(sk, &sk->bad_frames), 0);
		} else {
			/* Freed by the teardown, paused. */
			tr__sp_in_free(f->in);
			f->in = NULL;
			assert_int_equal(sink_get(sk, &sk->ngone), 1);
			assert_int_equal(sink_get(sk, &sk->nframes), 2);
			tr__sp_out_free(o);
			break;
		}
		assert_true(stats_wait(f->in, 0, 0));
		tr__sp_in_stats st = stats_of(f->in);
		assert_int_equal(st.paused, 0);
	}
}

/* Counters of refusals match what was refused. */
static void test_refusal_counts(void **state)
{
	struct fx *f = *state;
	static const uint8_t req0_hdr[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	raw_send(f->url, req0_hdr, sizeof(req0_hdr));
	static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
	raw_send(f->url, junk, sizeof(junk) - 1);
	assert_int_equal(sink_wait(&f->sink, &f->sink.ngone, 2), 2);
	tr__sp_in_stats st = stats_of(f->in);
	assert_int_equal(st.refused, 2);
	assert_int_equal(st.accepted, 2);
	assert_int_equal(st.closed_cap + st.closed_deadline, 0);
	assert_true(stats_wait(f->in, 0, 0));
}

#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_splits),
	    cmocka_unit_test(test_parse_refusals),
	    BOTH(test_frames_in_order),
	    BOTH(test_nng_interop),
	    BOTH(test_refusals),
	    BOTH(test_redial_and_drop),
	    cmocka_unit_test_setup_teardown(
	        test_untrusted_limit, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_close_fails_queued, setup_ipc, teardown),
	    cmocka_unit_test(test_handshake_deadline),
	    cmocka_unit_test(test_untrusted_cap),
	    cmocka_unit_test(test_untrusted_flood),
	    BOTH(test_pause_resume),
	    BOTH(test_pause_and_close),
	    cmocka_unit_test_setup_teardown(
	        test_refusal_counts, setup_tcp, teardown),
	};
	alarm(300);
	signal(SIGPIPE, SIG_IGN);
	/* TEST_FILTER=test_untrusted_flood runs only the tests so named. */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	pattern_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
