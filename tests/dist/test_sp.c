/*
 * Tests of the connection layer (transport/sp.h): push0/pull0 spoken over
 * nng streams, with real sockets over ipc:// (in a fresh temporary
 * directory) and tcp://127.0.0.1. Frames arrive whole and in order,
 * whatever their size; the wire is nng's own (a real push0 socket reaches
 * our listener, our dialer reaches a real pull0 listener); a peer that
 * breaks the protocol (another SP protocol, a frame over the maximum, an
 * ipc message type other than 1, bytes that are not SP) is refused; a dialer
 * redials until a listener appears; either side notices the other closing;
 * closing a dialer fails what it still held, with a report for each.
 * Pause and resume: a paused connection's sender stalls on full socket
 * buffers, and after resume every frame arrives, in order. The parser
 * alone is test_sp_parse.c; untrusted connections, test_sp_untrusted.c.
 */
#include "sp_fx.h"

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
	    BOTH(test_frames_in_order),
	    BOTH(test_nng_interop),
	    BOTH(test_refusals),
	    BOTH(test_redial_and_drop),
	    cmocka_unit_test_setup_teardown(
	        test_untrusted_limit, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_close_fails_queued, setup_ipc, teardown),
	    BOTH(test_pause_resume),
	    BOTH(test_pause_and_close),
	    cmocka_unit_test_setup_teardown(
	        test_refusal_counts, setup_tcp, teardown),
	};
	alarm(300);
	signal(SIGPIPE, SIG_IGN);
	/* TEST_FILTER=<name> runs only the tests so named. */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	pattern_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
