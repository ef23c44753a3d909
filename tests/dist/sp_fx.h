/*
 * The connection layer's tests (transport/sp.h, sp_parse.h): frames with
 * a checkable pattern, a sink that counts what callbacks report, senders,
 * listeners and dialers over ipc:// (in a fresh temporary directory) and
 * tcp://127.0.0.1, raw TCP connections, and the counters of a listener.
 */
#ifndef TT_SP_FX_H
#define TT_SP_FX_H

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

#include "proc_state.h"
#include "sp.h"
#include "sp_parse.h"
#include "troupe/troupe.h"

#define WAIT_MS 10000
#define MAX_FRAME (8u << 20)
#define NFRAMES 64

static inline int64_t now_ms(void)
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

static inline void pattern_init(void)
{
	for (size_t k = 0; k < sizeof(pattern); k++)
		pattern[k] = (uint8_t)k;
}

/* Frame i has size_of(i) bytes, each (i * 7 + k) & 0xff. */
static inline size_t size_of(uint32_t i)
{
	static const size_t sizes[] = {0, 1, 100, 4096, 70000, 3u << 20};
	return sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Frame i of `n` bytes. */
static inline nng_msg *frame_msg_n(uint32_t i, size_t n)
{
	nng_msg *m;
	assert_int_equal(nng_msg_alloc(&m, n), 0);
	if (n > 0)
		memcpy(nng_msg_body(m), pattern + (i * 7 & 0xff), n);
	return m;
}

static inline nng_msg *frame_msg(uint32_t i)
{
	return frame_msg_n(i, size_of(i));
}

static inline void on_frame(void *arg, uint32_t id, const uint8_t *buf, size_t len)
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

static inline void on_gone(void *arg, uint32_t id)
{
	struct sink *s = arg;
	(void)id;
	pthread_mutex_lock(&s->mu);
	s->ngone++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static inline void on_refused(void *arg, uint32_t id, const char *why)
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
static inline uint32_t sink_wait(struct sink *s, const uint32_t *field, uint32_t want)
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
static inline uint32_t sink_get(struct sink *s, const uint32_t *field)
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

static inline void on_sent(void *owner, int rv)
{
	struct src *s = owner;
	if (rv == 0)
		atomic_fetch_add(&s->sent_ok, 1);
	else
		atomic_fetch_add(&s->sent_err, 1);
}

static inline void on_closed(void *arg, tr__sp_out *o)
{
	struct src *s = arg;
	(void)o;
	atomic_fetch_add(&s->closed, 1);
}

static inline uint32_t atomic_wait(_Atomic uint32_t *v, uint32_t want)
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

static inline char *url_for(struct fx *f, bool ipc, const char *tag)
{
	char *u = malloc(400);
	assert_non_null(u);
	if (ipc)
		snprintf(u, 400, "ipc://%s/%s.sock", f->dir, tag);
	else
		snprintf(u, 400, "tcp://127.0.0.1:0");
	return u;
}

static inline int setup(void **state, bool ipc)
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

static inline int setup_ipc(void **state)
{
	return setup(state, true);
}

static inline int setup_tcp(void **state)
{
	return setup(state, false);
}

static inline int teardown(void **state)
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

/* ---- untrusted connections: deadline and cap ------------------------------
 */

static inline void sink_init(struct sink *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
}

static inline void sink_fini(struct sink *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

static inline void sink_reset(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	s->nframes = s->bad_frames = s->ngone = s->nrefused = 0;
	s->after_stop = 0;
	s->stopped = false;
	pthread_mutex_unlock(&s->mu);
}

/* A tr__sp_in on tcp://127.0.0.1 (one listener per entry of `n`), started;
 * the URL of the first in *url. */
static inline tr__sp_in *in_open(
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

static inline int url_port(const char *url)
{
	return atoi(strrchr(url, ':') + 1);
}

/* A raw TCP connection to 127.0.0.1:port, or -1. Async-signal-safe (the
 * flood's child process uses it). */
static inline int raw_connect(int port)
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
static inline bool raw_closed_within(int fd, int ms)
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

static inline tr__sp_in_stats stats_of(tr__sp_in *in)
{
	tr__sp_in_stats st;
	tr__sp_in_stats_get(in, &st);
	return st;
}

/* Waits until `in` has `open` connections open and `untrusted` of them
 * untrusted; returns whether it did within WAIT_MS. */
static inline bool stats_wait(tr__sp_in *in, uint32_t open, uint32_t untrusted)
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
static inline bool honest_open(tr__sp_out **op, struct src *src, const char *url,
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

#endif
