/*
 * Polled reads of the connection layer (transport/sp_poll.c, sp.h "Polled
 * reads"), with real sockets over tcp://127.0.0.1 (and ipc://, which is
 * never polled): a trusted
 * connection whose frames come close together is read by the callers of
 * tr__sp_in_poll on their own thread, and its frames still arrive whole
 * and in order, whatever their size; a connection no poller looks at goes
 * back to nng's threads (stranded) and loses nothing; a pause stops a
 * polled connection as it stops any other; a close while polled is
 * reported once, by nng's threads; PARK hands everything back; with no
 * poller awake nothing is handed out; with the window at 0 nothing is
 * ever polled; and a polled socket holds its ACKs back for the poller to
 * send (TCP_QUICKACK off) until it is handed back (on again).
 */
#include "sp_fx.h"

#include <netinet/tcp.h>

#define WINDOW_US 2000u /* wide: a loaded machine still sees hot frames */
#define ROUNDS 400u

struct poller {
	pthread_t th;
	tr__sp_in *in;
	_Atomic bool run;
	_Atomic uint32_t got; /* polls that read bytes */
};

/* The thread delivering the frame on_frame is called for now: frames
 * counted by on_poller_thread came through a poll. */
static pthread_t poller_tid;
static _Atomic bool poller_on;
static _Atomic uint32_t on_poller_thread;
/* What the listener is told of its pollers: awake while one runs, or
 * while a test pretends one is. */
static _Atomic bool pretend_awake;

static bool pollers_awake(void *arg)
{
	(void)arg;
	return atomic_load(&poller_on) || atomic_load(&pretend_awake);
}

static void *poll_main(void *arg)
{
	struct poller *p = arg;
	while (atomic_load(&p->run)) {
		unsigned r = tr__sp_in_poll(p->in, TR__SP_POLL_IDLE, 1);
		if ((r & TR__SP_POLL_GOT) != 0)
			atomic_fetch_add(&p->got, 1);
		if (r == 0)
			sched_yield();
	}
	return NULL;
}

static void poller_start(struct poller *p, tr__sp_in *in)
{
	p->in = in;
	atomic_store(&p->run, true);
	atomic_store(&p->got, 0);
	assert_int_equal(pthread_create(&p->th, NULL, poll_main, p), 0);
	poller_tid = p->th;
	atomic_store(&poller_on, true);
}

static void poller_stop(struct poller *p)
{
	atomic_store(&p->run, false);
	pthread_join(p->th, NULL);
	atomic_store(&poller_on, false);
}

static void on_frame_poll(void *arg, uint32_t id, const uint8_t *buf, size_t len)
{
	if (atomic_load(&poller_on) && pthread_equal(pthread_self(), poller_tid))
		atomic_fetch_add(&on_poller_thread, 1);
	on_frame(arg, id, buf, len);
}

static int setup_poll(void **state, bool ipc)
{
	if (setup(state, ipc) != 0)
		return -1;
	struct fx *f = *state;
	/* The fixture's listener, with the frame hook that notes threads. */
	tr__sp_in_free(f->in);
	free(f->url);
	tr__sp_in_ops ops = {on_frame_poll, on_gone, on_refused, &f->sink};
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_frame = o.max_untrusted = MAX_FRAME;
	o.handshake_ms = 60000;
	if (tr__sp_in_alloc_opts(&f->in, &ops, &o) != TR_OK)
		return -1;
	f->sink.in = f->in;
	f->sink.trust = true;
	tr__sp_in_poll_window(f->in, WINDOW_US, pollers_awake, NULL);
	atomic_store(&pretend_awake, false);
	char *u = url_for(f, ipc, "poll");
	int rc = tr__sp_in_listen(f->in, u, NULL, &f->url);
	free(u);
	if (rc != TR_OK)
		return -1;
	tr__sp_in_start(f->in);
	atomic_store(&on_poller_thread, 0);
	return 0;
}

static int setup_poll_ipc(void **state)
{
	return setup_poll(state, true);
}

static int setup_poll_tcp(void **state)
{
	return setup_poll(state, false);
}

/* Sends frame i and waits for it, `n` times from `from`: the gaps between
 * frames are a round trip, which makes the connection hot. */
static void ping(struct fx *f, tr__sp_out *o, uint32_t from, uint32_t n)
{
	for (uint32_t i = from; i < from + n; i++) {
		(void)tr__sp_out_send_now(o, frame_msg(i));
		assert_int_equal(
		    sink_wait(&f->sink, &f->sink.nframes, i + 1), i + 1);
	}
}

static tr__sp_out *dial(struct fx *f, struct src *src)
{
	tr__sp_out *o;
	assert_int_equal(
	    tr__sp_out_open(&o, f->url, NULL, 50, on_closed, src), TR_OK);
	tr__sp_out_adopt(o, on_sent, src);
	return o;
}

/* Closes `o` from the dialling side and waits until the listener has
 * reported it `gone` once and holds no connection open (trusted or not).
 * Frees `o`. */
static void hang_up(struct fx *f, tr__sp_out *o)
{
	tr__sp_out_free(o);
	assert_int_equal(sink_wait(&f->sink, &f->sink.ngone, 1), 1);
	assert_true(stats_wait(f->in, 0, 0));
}

/* Frames of 0 bytes to 3 MiB, one at a time and in bursts: all arrive, in
 * order, many of them through the poller; then, with the poller stopped
 * while the connection is hot, the rest still arrive, through nng's
 * threads, and the strand is counted. */
static void test_polled_in_order(void **state)
{
	struct fx *f = *state;
	struct src src = {0};
	struct poller p;
	poller_start(&p, f->in);
	tr__sp_out *o = dial(f, &src);
	ping(f, o, 0, ROUNDS);
	/* A burst, some of it large: partial reads under the poller. */
	for (uint32_t i = ROUNDS; i < ROUNDS + NFRAMES; i++)
		tr__sp_out_send(o, frame_msg(i), true);
	uint32_t total = ROUNDS + NFRAMES;
	assert_int_equal(sink_wait(&f->sink, &f->sink.nframes, total), total);
	assert_int_equal(sink_get(&f->sink, &f->sink.bad_frames), 0);
	tr__sp_in_stats st = stats_of(f->in);
	assert_true(st.promoted > 0);
	assert_true(st.polled > 0);
	assert_true(atomic_load(&p.got) > 0);
	assert_true(atomic_load(&on_poller_thread) > 0);
	print_message("%u frames: %u read by the poller's thread, %llu polls "
	              "read bytes, %llu times handed to the poller\n",
	    total, atomic_load(&on_poller_thread),
	    (unsigned long long)st.polled, (unsigned long long)st.promoted);

	/* Hot, and a poller said to be awake that never polls: the watch
	 * hands the read side back every time. */
	poller_stop(&p);
	atomic_store(&pretend_awake, true);
	uint64_t stranded = st.stranded;
	ping(f, o, total, 50);
	total += 50;
	st = stats_of(f->in);
	assert_true(st.stranded > stranded);
	atomic_store(&pretend_awake, false);
	assert_int_equal(sink_get(&f->sink, &f->sink.bad_frames), 0);
	assert_int_equal(sink_get(&f->sink, &f->sink.ngone), 0);
	hang_up(f, o);
}

/* A pause stops a polled connection: nothing is delivered after it, and
 * after the resume everything arrives in order. */
static void test_polled_pause(void **state)
{
	struct fx *f = *state;
	struct sink *sk = &f->sink;
	struct src src = {0};
	struct poller p;
	poller_start(&p, f->in);
	tr__sp_out *o = dial(f, &src);
	ping(f, o, 0, ROUNDS);
	pthread_mutex_lock(&sk->mu);
	sk->pause_at = ROUNDS + 10;
	pthread_mutex_unlock(&sk->mu);
	ping(f, o, ROUNDS, 10);
	for (uint32_t i = ROUNDS + 10; i < ROUNDS + 40; i++)
		tr__sp_out_send(o, frame_msg(i), true);
	usleep(100 * 1000);
	assert_int_equal(sink_get(sk, &sk->nframes), ROUNDS + 10);
	assert_int_equal(sink_get(sk, &sk->after_stop), 0);
	tr__sp_in_resume(f->in, sink_get(sk, &sk->last_id));
	assert_int_equal(sink_wait(sk, &sk->nframes, ROUNDS + 40), ROUNDS + 40);
	assert_int_equal(sink_get(sk, &sk->bad_frames), 0);
	assert_int_equal(sink_get(sk, &sk->ngone), 0);
	poller_stop(&p);
	hang_up(f, o);
}

/* The peer closes a polled connection: `gone` comes once, from nng's
 * threads, and the connection is freed; PARK then hands back another
 * hot one, whose frames keep coming with no poller. */
static void test_polled_close_and_park(void **state)
{
	struct fx *f = *state;
	struct src src = {0};
	struct poller p;
	poller_start(&p, f->in);
	tr__sp_out *o = dial(f, &src);
	ping(f, o, 0, ROUNDS);
	hang_up(f, o);
	poller_stop(&p);

	sink_reset(&f->sink);
	struct src src2 = {0};
	poller_start(&p, f->in);
	o = dial(f, &src2);
	ping(f, o, 0, ROUNDS);
	/* Hot and polled; then the poller parks: PARK hands the read side
	 * back at once, and with no poller awake nothing is handed out
	 * again, so nothing is left to the watch (but what it may have
	 * taken between the stop and the park). */
	atomic_store(&pretend_awake, true);
	poller_stop(&p);
	/* The read side that delivered the last frame has handed itself
	 * to the pollers (or not) by now. */
	usleep(20 * 1000);
	tr__sp_in_stats st = stats_of(f->in);
	(void)tr__sp_in_poll(f->in, TR__SP_POLL_PARK, 1);
	atomic_store(&pretend_awake, false);
	ping(f, o, ROUNDS, 50);
	tr__sp_in_stats st2 = stats_of(f->in);
	assert_true(st2.stranded - st.stranded <= 1);
	assert_int_equal(st2.promoted, st.promoted);
	assert_int_equal(sink_get(&f->sink, &f->sink.bad_frames), 0);
	hang_up(f, o);
}

/* Window 0: polling is off, and a poll finds nothing; over ipc:// (no
 * socket to peek at) nothing is polled either. */
static void test_window_off(void **state)
{
	struct fx *f = *state;
	if (strncmp(f->url, "ipc://", 6) != 0)
		tr__sp_in_poll_window(f->in, 0, NULL, NULL);
	struct src src = {0};
	struct poller p;
	poller_start(&p, f->in);
	tr__sp_out *o = dial(f, &src);
	ping(f, o, 0, ROUNDS);
	poller_stop(&p);
	assert_int_equal(stats_of(f->in).promoted, 0);
	assert_int_equal(atomic_load(&on_poller_thread), 0);
	tr__sp_out_free(o);
	assert_int_equal(sink_wait(&f->sink, &f->sink.ngone, 1), 1);
}

/* The listener's end of the one connection to `port`, in this process:
 * the socket bound to it that has a peer (the listening one has none).
 * -1 if there is none. */
static int inbound_fd(int port)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		struct sockaddr_in a, b;
		socklen_t al = sizeof(a), bl = sizeof(b);
		if (fd > 2 && fd != dirfd(d) &&
		    getsockname(fd, (struct sockaddr *)&a, &al) == 0 &&
		    a.sin_family == AF_INET && ntohs(a.sin_port) == port &&
		    getpeername(fd, (struct sockaddr *)&b, &bl) == 0)
			found = fd;
	}
	closedir(d);
	return found;
}

static int quickack_of(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &v, &l), 0);
	return v;
}

/* While polled, the socket is in delayed-ACK mode between the poller's
 * looks (the poller sends each ACK itself, after the reply would have
 * gone); handed back (PARK), the kernel acknowledges on its own again.
 * Sampled after each round trip: the poller's looks switch the mode off
 * and on, so only "seen off while polled" and "on once handed back" are
 * certain. */
static void test_polled_acks_late(void **state)
{
	struct fx *f = *state;
	struct src src = {0};
	struct poller p;
	poller_start(&p, f->in);
	tr__sp_out *o = dial(f, &src);
	ping(f, o, 0, ROUNDS);
	int fd = inbound_fd(url_port(f->url));
	assert_true(fd >= 0);
	unsigned held = 0;
	for (uint32_t i = ROUNDS; i < 2 * ROUNDS; i++) {
		ping(f, o, i, 1);
		held += quickack_of(fd) == 0;
	}
	print_message("delayed-ACK mode seen after %u of %u round trips\n",
	    held, ROUNDS);
	assert_true(held > 0);
	assert_true(stats_of(f->in).polled > 0);
	/* Stopped and parked: handed back, quick ACKs again. */
	atomic_store(&pretend_awake, true);
	poller_stop(&p);
	(void)tr__sp_in_poll(f->in, TR__SP_POLL_PARK, 1);
	atomic_store(&pretend_awake, false);
	assert_int_equal(quickack_of(fd), 1);
	ping(f, o, 2 * ROUNDS, 20);
	assert_int_equal(sink_get(&f->sink, &f->sink.bad_frames), 0);
	hang_up(f, o);
}

#define TCP(fn) cmocka_unit_test_setup_teardown(fn, setup_poll_tcp, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TCP(test_polled_in_order),
	    TCP(test_polled_pause),
	    TCP(test_polled_close_and_park),
	    TCP(test_window_off),
	    TCP(test_polled_acks_late),
	    cmocka_unit_test_setup_teardown(
	        test_window_off, setup_poll_ipc, teardown),
	};
	alarm(300);
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	pattern_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
