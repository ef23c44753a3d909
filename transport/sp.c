/*
 * push0/pull0 over nng streams. See sp.h for the contract.
 *
 * Locks: each tr__sp_out has one mutex for its state and queue; a
 * tr__sp_in has one for its connections, counters and sweep, never held
 * around a callback, and one (`deliver`) held around each `frame` call.
 *
 * Every read, write and dial is started with the object's mutex held,
 * after checking that its stream is not closed, and every close happens
 * with that mutex held too: nng 1.5 leaves an operation started on a
 * closed stream pending for ever (its completion would never come), and
 * so would whatever waits for it. Starting them under the mutex is safe:
 * nng completes an aio that has a callback on one of its task threads,
 * never on the thread that started it. The one exception, the direct
 * write of tr__sp_out_send_now, has no callback and a timeout, and is
 * not made under the mutex.
 */
#include "sp.h"
#include "sp_parse.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <nng/supplemental/util/platform.h>

#include "nng_err.h"
#include "troupe/troupe.h"

#define SP_HDR TR__SP_HDR
#define PROTO_PUSH0 TR__SP_PUSH0
#define PROTO_PULL0 TR__SP_PULL0
#define REDIAL_MIN_MS 20u
#define ACCEPT_PAUSE_MS 100
#define REAP_MS 10 /* closed connections are freed this soon */
#define FD_UNKNOWN (-2)  /* an inbound connection's socket, not looked for */

static bool url_ipc(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0;
}

/* ---- outbound ----------------------------------------------------------- */

enum { O_DIAL, O_NEGO, O_UP, O_FAILED, O_CLOSED };

struct qent {
	nng_msg *m;
	bool notify;
};

struct tr__sp_out {
	pthread_mutex_t mtx;
	nng_stream_dialer *dialer;
	nng_stream *st;
	bool ipc;
	bool tls; /* tls+tcp://: no direct writes (tr__sp_out_send_now) */
	int state;
	bool sleeping; /* dial_aio is waiting out a backoff */
	uint32_t backoff_ms, backoff_max;
	nng_aio *dial_aio;
	nng_aio *nego_aio;
	uint8_t nego_tx[SP_HDR], nego_rx[SP_HDR];
	size_t nego_sent, nego_got;
	nng_aio *tx_aio;     /* tx_cb: the background writer */
	nng_aio *direct_aio; /* no callback: tr__sp_out_send_now */
	nng_aio *watch_aio;  /* watch_cb: a read that ends with the link */
	uint8_t watch_byte;
	/* Frames not yet fully written, oldest first; while `writing`, the
	 * head is being written (by tx_aio or by a direct send) and `done`
	 * of its prefix-and-body bytes are out. */
	struct qent *q;
	uint32_t qhead, qn, qcap;
	bool writing;
	size_t done;
	uint8_t head[9];
	size_t headlen;
	tr__sp_sent_fn sent;
	void *owner;
	tr__sp_closed_fn closed;
	void *arg;
};

static bool q_push_back(tr__sp_out *o, struct qent e)
{
	if (o->qn == o->qcap) {
		uint32_t c = o->qcap ? o->qcap * 2 : 8;
		struct qent *v = malloc((size_t)c * sizeof(*v));
		if (v == NULL)
			return false;
		for (uint32_t i = 0; i < o->qn; i++)
			v[i] = o->q[(o->qhead + i) % o->qcap];
		free(o->q);
		o->q = v;
		o->qhead = 0;
		o->qcap = c;
	}
	o->q[(o->qhead + o->qn) % o->qcap] = e;
	o->qn++;
	return true;
}

static struct qent q_pop(tr__sp_out *o)
{
	struct qent e = o->q[o->qhead];
	o->qhead = (o->qhead + 1) % o->qcap;
	o->qn--;
	return e;
}

/* Points `iov` at what is left of the head frame; returns how many. */
static unsigned head_iov(tr__sp_out *o, nng_iov iov[2])
{
	nng_msg *m = o->q[o->qhead].m;
	unsigned k = 0;
	size_t done = o->done;
	if (done < o->headlen) {
		iov[k].iov_buf = o->head + done;
		iov[k].iov_len = o->headlen - done;
		k++;
		done = 0;
	} else {
		done -= o->headlen;
	}
	size_t len = nng_msg_len(m);
	if (done < len) {
		iov[k].iov_buf = (uint8_t *)nng_msg_body(m) + done;
		iov[k].iov_len = len - done;
		k++;
	}
	return k;
}

/* The head frame becomes the one being written (mtx held). */
static void head_begin(tr__sp_out *o)
{
	o->writing = true;
	o->done = 0;
	o->headlen =
	    tr__sp_frame_head(o->head, o->ipc, nng_msg_len(o->q[o->qhead].m));
}

static void fail_queued(tr__sp_out *o, int rv, bool keep);

/* Starts the background write of what is left of the head (mtx held; the
 * caller owns `writing`). On a link that is gone, every queued frame
 * fails instead. */
static void tx_start_locked(tr__sp_out *o)
{
	if (o->state != O_UP) {
		o->writing = false;
		fail_queued(o, NNG_ECLOSED, false);
		return;
	}
	nng_iov iov[2];
	unsigned k = head_iov(o, iov);
	nng_aio_set_iov(o->tx_aio, k, iov);
	nng_stream_send(o->st, o->tx_aio);
}

/* Fails every queued frame but the one being written, if `keep` (mtx
 * held on entry and on return; released around each report). */
static void fail_queued(tr__sp_out *o, int rv, bool keep)
{
	while (o->qn > (keep && o->writing ? 1u : 0u)) {
		struct qent e;
		if (keep && o->writing) {
			/* Take the second: the head stays where it is. */
			uint32_t at = (o->qhead + 1) % o->qcap;
			e = o->q[at];
			for (uint32_t i = 1; i + 1 < o->qn; i++)
				o->q[(o->qhead + i) % o->qcap] =
				    o->q[(o->qhead + i + 1) % o->qcap];
			o->qn--;
		} else {
			e = q_pop(o);
		}
		pthread_mutex_unlock(&o->mtx);
		nng_msg_free(e.m);
		if (e.notify && o->sent != NULL)
			o->sent(o->owner, rv);
		pthread_mutex_lock(&o->mtx);
	}
}

/* The connection is lost (mtx held): closes it; returns whether to
 * report `closed` (it was up, and not closed by us). */
static bool lost_locked(tr__sp_out *o)
{
	bool report = o->state == O_UP;
	if (o->state == O_UP || o->state == O_NEGO)
		o->state = O_FAILED;
	if (o->st != NULL)
		nng_stream_close(o->st);
	return report;
}

static void redial_locked(tr__sp_out *o)
{
	/* A connection that never came up: drop it and dial again later,
	 * as nng's dialers do. */
	if (o->st != NULL) {
		nng_stream_close(o->st);
		/* Freed only in tr__sp_out_free: an aio may still be on
		 * it. Keep at most one: a failed one is replaced. */
	}
	o->state = O_DIAL;
	o->sleeping = true;
	nng_sleep_aio((nng_duration)o->backoff_ms, o->dial_aio);
	o->backoff_ms = o->backoff_ms * 2 > o->backoff_max ? o->backoff_max
	                                                   : o->backoff_ms * 2;
}

static void dial_cb(void *arg)
{
	tr__sp_out *o = arg;
	int rv = nng_aio_result(o->dial_aio);
	pthread_mutex_lock(&o->mtx);
	if (o->state != O_DIAL) {
		/* Closed: a connection that came up meanwhile goes too. */
		bool late = rv == 0 && !o->sleeping;
		pthread_mutex_unlock(&o->mtx);
		if (late)
			nng_stream_free(nng_aio_get_output(o->dial_aio, 0));
		return;
	}
	if (o->sleeping) {
		o->sleeping = false;
		nng_stream_dialer_dial(o->dialer, o->dial_aio);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	if (rv != 0) {
		redial_locked(o);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	if (o->st != NULL)
		nng_stream_free(o->st); /* the failed try before; idle */
	o->st = nng_aio_get_output(o->dial_aio, 0);
	o->state = O_NEGO;
	o->nego_sent = o->nego_got = 0;
	nng_iov iov = {o->nego_tx, SP_HDR};
	nng_aio_set_iov(o->nego_aio, 1, &iov);
	nng_stream_send(o->st, o->nego_aio);
	pthread_mutex_unlock(&o->mtx);
}

static void nego_cb(void *arg)
{
	tr__sp_out *o = arg;
	int rv = nng_aio_result(o->nego_aio);
	size_t n = nng_aio_count(o->nego_aio);
	pthread_mutex_lock(&o->mtx);
	if (o->state != O_NEGO) {
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	if (rv != 0) {
		redial_locked(o);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	nng_iov iov;
	if (o->nego_sent < SP_HDR) {
		o->nego_sent += n;
	} else {
		o->nego_got += n;
	}
	if (o->nego_sent < SP_HDR) {
		iov.iov_buf = o->nego_tx + o->nego_sent;
		iov.iov_len = SP_HDR - o->nego_sent;
		nng_aio_set_iov(o->nego_aio, 1, &iov);
		nng_stream_send(o->st, o->nego_aio);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	if (o->nego_got < SP_HDR) {
		iov.iov_buf = o->nego_rx + o->nego_got;
		iov.iov_len = SP_HDR - o->nego_got;
		nng_aio_set_iov(o->nego_aio, 1, &iov);
		nng_stream_recv(o->st, o->nego_aio);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	if (!tr__sp_header_ok(o->nego_rx, PROTO_PULL0)) {
		/* Not a pull0 listener: as nng, close and dial again. */
		redial_locked(o);
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	o->state = O_UP;
	o->backoff_ms = REDIAL_MIN_MS;
	/* push0 never receives: this read only ends when the link does. */
	iov.iov_buf = &o->watch_byte;
	iov.iov_len = 1;
	nng_aio_set_iov(o->watch_aio, 1, &iov);
	nng_stream_recv(o->st, o->watch_aio);
	if (o->qn != 0 && !o->writing) {
		head_begin(o);
		tx_start_locked(o);
	}
	pthread_mutex_unlock(&o->mtx);
}

static void watch_cb(void *arg)
{
	tr__sp_out *o = arg;
	pthread_mutex_lock(&o->mtx);
	bool report = o->state == O_UP && lost_locked(o);
	pthread_mutex_unlock(&o->mtx);
	if (report && o->closed != NULL)
		o->closed(o->arg, o);
}

static void tx_cb(void *arg)
{
	tr__sp_out *o = arg;
	int rv = nng_aio_result(o->tx_aio);
	size_t n = nng_aio_count(o->tx_aio);
	pthread_mutex_lock(&o->mtx);
	if (rv == 0 && o->state == O_UP) {
		o->done += n;
		nng_msg *m = o->q[o->qhead].m;
		if (o->done < o->headlen + nng_msg_len(m)) {
			tx_start_locked(o); /* the rest of a partial write */
			pthread_mutex_unlock(&o->mtx);
			return;
		}
		struct qent e = q_pop(o);
		o->writing = o->qn != 0;
		if (o->writing) {
			head_begin(o);
			tx_start_locked(o);
		}
		pthread_mutex_unlock(&o->mtx);
		nng_msg_free(e.m);
		if (e.notify && o->sent != NULL)
			o->sent(o->owner, 0);
		return;
	}
	/* The link is gone (or closed by us): every frame fails. */
	if (rv == 0)
		rv = NNG_ECLOSED;
	o->writing = false;
	bool report = lost_locked(o);
	pthread_mutex_unlock(&o->mtx);
	if (report && o->closed != NULL)
		o->closed(o->arg, o);
	pthread_mutex_lock(&o->mtx);
	fail_queued(o, rv, false);
	pthread_mutex_unlock(&o->mtx);
}

int tr__sp_out_open(tr__sp_out **op, const char *url, nng_tls_config *tls,
    uint32_t redial_max_ms, tr__sp_closed_fn closed, void *arg)
{
	tr__sp_out *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&o->mtx, NULL);
	o->ipc = url_ipc(url);
	o->tls = tls != NULL;
	o->closed = closed;
	o->arg = arg;
	o->backoff_ms = REDIAL_MIN_MS;
	o->backoff_max =
	    redial_max_ms < REDIAL_MIN_MS ? REDIAL_MIN_MS : redial_max_ms;
	tr__sp_header(o->nego_tx, PROTO_PUSH0);
	int rv = nng_stream_dialer_alloc(&o->dialer, url);
	if (rv == 0 && tls != NULL)
		rv = nng_stream_dialer_set_ptr(
		    o->dialer, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_aio_alloc(&o->dial_aio, dial_cb, o);
	if (rv == 0)
		rv = nng_aio_alloc(&o->nego_aio, nego_cb, o);
	if (rv == 0)
		rv = nng_aio_alloc(&o->tx_aio, tx_cb, o);
	if (rv == 0)
		rv = nng_aio_alloc(&o->watch_aio, watch_cb, o);
	if (rv == 0)
		rv = nng_aio_alloc(&o->direct_aio, NULL, NULL);
	if (rv != 0) {
		tr__sp_out_free(o);
		return tr__nng_err(rv);
	}
	pthread_mutex_lock(&o->mtx);
	o->state = O_DIAL;
	nng_stream_dialer_dial(o->dialer, o->dial_aio);
	pthread_mutex_unlock(&o->mtx);
	*op = o;
	return TR_OK;
}

void tr__sp_out_adopt(tr__sp_out *o, tr__sp_sent_fn sent, void *owner)
{
	pthread_mutex_lock(&o->mtx);
	o->sent = sent;
	o->owner = owner;
	pthread_mutex_unlock(&o->mtx);
}

void tr__sp_out_send(tr__sp_out *o, nng_msg *m, bool notify)
{
	pthread_mutex_lock(&o->mtx);
	if (o->state == O_FAILED || o->state == O_CLOSED ||
	    !q_push_back(o, (struct qent){m, notify})) {
		pthread_mutex_unlock(&o->mtx);
		nng_msg_free(m);
		if (notify && o->sent != NULL)
			o->sent(o->owner, NNG_ECLOSED);
		return;
	}
	if (o->state == O_UP && !o->writing) {
		head_begin(o);
		tx_start_locked(o);
	}
	pthread_mutex_unlock(&o->mtx);
}

bool tr__sp_out_send_now(tr__sp_out *o, nng_msg *m)
{
	pthread_mutex_lock(&o->mtx);
	/* Not over TLS: nng's TLS stream writes one iov per call (so a
	 * direct write would never complete at once), and its cancel on
	 * timeout aborts the whole connection's send, which closes it. */
	if (o->tls || o->state != O_UP || o->writing || o->qn != 0 ||
	    !q_push_back(o, (struct qent){m, true})) {
		pthread_mutex_unlock(&o->mtx);
		tr__sp_out_send(o, m, true);
		return false;
	}
	head_begin(o);
	nng_iov iov[2];
	unsigned k = head_iov(o, iov);
	size_t total = o->headlen + nng_msg_len(m);
	/* Started under the mutex, like every other operation (see the top
	 * of this file); finished without it. With no callback, nng
	 * completes the aio on this thread when the socket takes the bytes
	 * at once (a partial write completes at once with its count); when
	 * the socket takes none the aio is left pending in the stream, and
	 * the cancel takes it back at once with nothing written: the caller
	 * never waits for room, and the frame goes in the background. */
	nng_aio_set_iov(o->direct_aio, k, iov);
	nng_stream_send(o->st, o->direct_aio);
	pthread_mutex_unlock(&o->mtx);
	nng_aio_cancel(o->direct_aio);
	nng_aio_wait(o->direct_aio);
	int rv = nng_aio_result(o->direct_aio);
	size_t n = rv == 0 ? nng_aio_count(o->direct_aio) : 0;
	pthread_mutex_lock(&o->mtx);
	bool whole = rv == 0 && n == total;
	if (whole || o->state != O_UP) {
		/* Written, or the link went meanwhile (closed by teardown,
		 * or failed): the head, ours, is done here. Others queued
		 * behind it go on, or fail when the link is closed. Nothing
		 * of `o` is touched after the report, which may let teardown
		 * free it. */
		(void)q_pop(o);
		o->writing = false;
		if (whole && o->state == O_UP && o->qn != 0) {
			head_begin(o);
			tx_start_locked(o);
		}
		tr__sp_sent_fn sent = o->sent;
		void *owner = o->owner;
		pthread_mutex_unlock(&o->mtx);
		nng_msg_free(m);
		if (!whole && sent != NULL)
			sent(owner, rv != 0 ? rv : NNG_ECLOSED);
		return whole;
	}
	/* The rest goes in the background, reported by tx_cb. */
	o->done = n;
	tx_start_locked(o);
	pthread_mutex_unlock(&o->mtx);
	return false;
}

bool tr__sp_out_up(tr__sp_out *o)
{
	pthread_mutex_lock(&o->mtx);
	bool up = o->state == O_UP;
	pthread_mutex_unlock(&o->mtx);
	return up;
}

void tr__sp_out_close(tr__sp_out *o)
{
	pthread_mutex_lock(&o->mtx);
	if (o->state == O_CLOSED) {
		pthread_mutex_unlock(&o->mtx);
		return;
	}
	o->state = O_CLOSED;
	if (o->st != NULL)
		nng_stream_close(o->st);
	/* Frames not being written fail now; the one being written (if
	 * any) fails in tx_cb or tr__sp_out_send_now. */
	if (o->dialer != NULL)
		nng_stream_dialer_close(o->dialer);
	fail_queued(o, NNG_ECLOSED, true);
	pthread_mutex_unlock(&o->mtx);
}

void tr__sp_out_free(tr__sp_out *o)
{
	if (o == NULL)
		return;
	tr__sp_out_close(o);
	nng_aio *aios[] = {
	    o->dial_aio, o->nego_aio, o->tx_aio, o->watch_aio, o->direct_aio};
	for (size_t i = 0; i < sizeof(aios) / sizeof(aios[0]); i++)
		if (aios[i] != NULL)
			nng_aio_stop(aios[i]);
	/* Whatever a stopped tx_aio left. */
	pthread_mutex_lock(&o->mtx);
	o->writing = false;
	fail_queued(o, NNG_ECLOSED, false);
	pthread_mutex_unlock(&o->mtx);
	for (size_t i = 0; i < sizeof(aios) / sizeof(aios[0]); i++)
		if (aios[i] != NULL)
			nng_aio_free(aios[i]);
	/* The dialer first: the connection holds a reference to it, which
	 * nng's reaper drops when it frees the connection, after (and
	 * ordered by its reap queue after) everything this thread did to
	 * the dialer. The other order leaves the last reference to either
	 * thread, ordered only by nng's uninstrumented atomics. */
	if (o->dialer != NULL)
		nng_stream_dialer_free(o->dialer);
	if (o->st != NULL)
		nng_stream_free(o->st);
	free(o->q);
	pthread_mutex_destroy(&o->mtx);
	free(o);
}

/* ---- inbound ------------------------------------------------------------ */

/*
 * Each connection has a read side, which owns its parser: at any time
 * either one read (or a kick, below) is pending for it, or one of their
 * callbacks runs it, or it is parked. It parks only when the connection
 * is paused, leaving nothing pending; whoever changes that (a resume, or
 * a close, whose loss must still be reported) wakes it with a kick: an
 * aio finished at once, whose callback runs the read side on one of
 * nng's threads, never on the caller's. So `frame` and `gone` are always
 * called by the read side, and `gone` is its last report.
 *
 * A connection is freed once it is dead (its loss reported) and neither
 * side has anything pending (rx_busy and tx_busy clear): then stopping
 * its aios waits for nothing but nng's own bookkeeping, so the sweep (an
 * aio of the tr__sp_in, which also closes untrusted connections at their
 * deadline) frees it from nng's thread within REAP_MS, releasing its
 * socket. tr__sp_in_reap frees the rest, waiting.
 */

struct lsn {
	tr__sp_in *in;
	int idx;
	bool sleeping; /* aio is waiting out a pause after a failure */
	nng_stream_listener *l;
	nng_aio *aio;
	bool ipc;
	bool tls; /* tls+tcp://: its connections are never polled */
	/* Its untrusted open connections, oldest first (in->mtx). */
	struct inconn *uhead, *utail;
	uint32_t nuntrusted;
};

struct inconn {
	struct inconn *next;          /* on in->conns, then on in->dead */
	struct inconn *uprev, *unext; /* on its listener's untrusted list */
	tr__sp_in *in;
	struct lsn *ls;
	uint32_t id;
	nng_stream *st;
	nng_time deadline; /* trusted by then, or closed */
	/* Written under in->mtx; the read side also reads them without it,
	 * on its fast path (relaxed: whatever it must not miss, it checks
	 * again under the mutex before parking or reading). */
	_Atomic bool trusted;
	_Atomic bool closed; /* its stream is closed */
	_Atomic bool paused;
	/* nng_clock() of the last bytes read (relaxed: a liveness hint for
	 * the node's failure detector). */
	_Atomic uint64_t last_rx;
	/* Under in->mtx. */
	bool ulisted; /* on the untrusted list */
	bool dead;    /* moved to in->dead; `gone` reported or under way */
	bool parked;  /* the read side is parked (see above) */
	bool rx_busy; /* a read or a kick is pending, or its callback runs */
	bool tx_busy; /* the SP header's write is pending or its callback */
	/* Polled reads (see "Polled reads" below), under in->mtx. */
	bool polled;  /* the read side is handed to pollers (on in->hot) */
	bool polling; /* a poller is reading it now, without the mutex */
	struct inconn *hprev, *hnext; /* on in->hot */
	uint64_t poll_ns;             /* the last poll of it */
	unsigned owner;               /* the idle poller it keeps to, or 0 */
	bool ack_late;  /* its socket acknowledges when told (ack_late_*) */
	bool ack_owed;  /* bytes read since the last acknowledgement told */
	/* The read side's own (whoever runs it): when it last read bytes,
	 * and whether the last two reads came close enough together for it
	 * to be handed to the pollers (tr__sp_in_poll). */
	uint64_t rx_ns;
	bool hot;
	int fd; /* its socket (stream_fd), -1 for none, or FD_UNKNOWN */
	nng_aio *rx, *tx, *kick;
	uint8_t hdr[SP_HDR];
	size_t hdr_sent;
	tr__sp_parse parse; /* the read side's */
};

enum { SW_IDLE, SW_ARMED, SW_RUNNING };

struct tr__sp_in {
	pthread_mutex_t mtx;     /* everything below but ops and opts */
	pthread_mutex_t deliver; /* one frame at a time */
	tr__sp_in_ops ops;
	tr__sp_in_opts opts;
	struct lsn **lsns;
	size_t nlsns;
	struct inconn *conns, *dead;
	uint32_t next_id;
	bool closing;
	bool muted; /* under deliver: no more frames */
	/* The sweep: closes untrusted connections at their deadline and
	 * frees dead ones. Armed (sleeping until sweep_at) only while there
	 * is something for it to do. */
	nng_aio *sweep;
	int sweep_state;
	nng_time sweep_at;
	/* Polled reads: connections whose read side pollers own, oldest poll
	 * first (mtx; nhot is also read without it, relaxed, as a hint), the
	 * window (0: never polled) and the watch that takes back those no
	 * poller looks at. */
	struct inconn *hot, *hot_tail;
	_Atomic uint32_t nhot;
	_Atomic uint64_t window_ns; /* relaxed: read by the read sides */
	bool (*awake)(void *arg); /* whether a poller is awake */
	void *awake_arg;
	nng_aio *hwatch;
	bool hwatch_armed;
	tr__sp_in_stats st;
};

static void ulist_add(struct lsn *ls, struct inconn *c)
{
	c->uprev = ls->utail;
	c->unext = NULL;
	if (ls->utail != NULL)
		ls->utail->unext = c;
	else
		ls->uhead = c;
	ls->utail = c;
	ls->nuntrusted++;
	c->ulisted = true;
	c->in->st.untrusted++;
}

static void ulist_remove(struct inconn *c)
{
	struct lsn *ls = c->ls;
	if (!c->ulisted)
		return;
	if (c->uprev != NULL)
		c->uprev->unext = c->unext;
	else
		ls->uhead = c->unext;
	if (c->unext != NULL)
		c->unext->uprev = c->uprev;
	else
		ls->utail = c->uprev;
	c->uprev = c->unext = NULL;
	ls->nuntrusted--;
	c->ulisted = false;
	c->in->st.untrusted--;
}

/* Asks the sweep to run by `when` (in->mtx held). */
static void sweep_want_locked(tr__sp_in *in, nng_time when)
{
	if (in->closing || in->sweep_state == SW_RUNNING)
		return; /* a running sweep looks at everything before it ends */
	nng_time now = nng_clock();
	if (in->sweep_state == SW_ARMED) {
		if (when < in->sweep_at) {
			/* Cancelling finishes the sleep at once: the sweep runs
			 * now, and arms itself again for what is left. */
			in->sweep_at = now;
			nng_aio_cancel(in->sweep);
		}
		return;
	}
	in->sweep_state = SW_ARMED;
	in->sweep_at = when;
	nng_sleep_aio(when > now ? (nng_duration)(when - now) : 0, in->sweep);
}

/* Wakes a parked read side (in->mtx held): its callback runs it on an
 * nng thread. */
static void kick_locked(struct inconn *c)
{
	c->parked = false;
	c->rx_busy = true;
	/* Fails only once the aio is stopped, in tr__sp_in_free, which then
	 * deals with the connection itself. */
	if (nng_aio_begin(c->kick))
		nng_aio_finish(c->kick, 0);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void hot_remove_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	if (c->hprev != NULL)
		c->hprev->hnext = c->hnext;
	else
		in->hot = c->hnext;
	if (c->hnext != NULL)
		c->hnext->hprev = c->hprev;
	else
		in->hot_tail = c->hprev;
	c->hprev = c->hnext = NULL;
}

static void hot_append_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	c->hnext = NULL;
	c->hprev = in->hot_tail;
	if (in->hot_tail != NULL)
		in->hot_tail->hnext = c;
	else
		in->hot = c;
	in->hot_tail = c;
}

/* Takes a polled read side back from the pollers (in->mtx held, no poller
 * reading it): a kick runs it on an nng thread, which delivers what is
 * buffered and reads on in the background, or reports what stopped it. */
static void demote_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	if (c->ack_late) {
		/* Acknowledges what is owed and leaves the kernel to
		 * acknowledge on its own again. */
		int v = 1;
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
		c->ack_late = c->ack_owed = false;
	}
	hot_remove_locked(c);
	c->polled = false;
	c->owner = 0;
	atomic_fetch_sub_explicit(&in->nhot, 1, memory_order_relaxed);
	kick_locked(c);
}

/* Closes the connection's stream (in->mtx held): its pending read fails,
 * or its parked or polled read side is woken, and the read side reports
 * the loss. A poller reading it now sees the close when it is done. */
static void close_locked(struct inconn *c)
{
	ulist_remove(c);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed))
		return;
	atomic_store_explicit(&c->closed, true, memory_order_relaxed);
	nng_stream_close(c->st);
	if (c->parked)
		kick_locked(c);
	else if (c->polled && !c->polling)
		demote_locked(c);
}

static struct inconn *conn_find(tr__sp_in *in, uint32_t id)
{
	for (struct inconn *c = in->conns; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* The read side has finished with `c` (in->mtx held): once the write side
 * has too, the sweep frees it. */
static void quiet_check_locked(struct inconn *c)
{
	if (c->dead && !c->rx_busy && !c->tx_busy)
		sweep_want_locked(c->in, nng_clock() + REAP_MS);
}

/* The read side's end: the connection is lost (closed by either side, or
 * failed). It moves to the dead list and `gone` is reported. Nothing of
 * `c` is touched after the final unlock, which may let the sweep free it. */
static void conn_lost(struct inconn *c)
{
	tr__sp_in *in = c->in;
	uint32_t id = c->id;
	pthread_mutex_lock(&in->mtx);
	for (struct inconn **cp = &in->conns; *cp != NULL; cp = &(*cp)->next) {
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	}
	c->dead = true;
	c->next = in->dead;
	in->dead = c;
	close_locked(c);
	if (atomic_load_explicit(&c->paused, memory_order_relaxed)) {
		atomic_store_explicit(&c->paused, false, memory_order_relaxed);
		in->st.paused--;
	}
	in->st.open--;
	pthread_mutex_unlock(&in->mtx);
	if (in->ops.gone != NULL)
		in->ops.gone(in->ops.arg, id);
	pthread_mutex_lock(&in->mtx);
	c->rx_busy = false;
	quiet_check_locked(c);
	pthread_mutex_unlock(&in->mtx);
}

static void conn_refuse(struct inconn *c, const char *why)
{
	tr__sp_in *in = c->in;
	pthread_mutex_lock(&in->mtx);
	in->st.refused++;
	pthread_mutex_unlock(&in->mtx);
	if (in->ops.refused != NULL)
		in->ops.refused(in->ops.arg, c->id, why);
	conn_lost(c);
}

static uint64_t window_of(tr__sp_in *in)
{
	return atomic_load_explicit(&in->window_ns, memory_order_relaxed);
}

static bool addr_is(const struct sockaddr_storage *a, const nng_sockaddr *n)
{
	if (a->ss_family == AF_INET && n->s_family == NNG_AF_INET) {
		const struct sockaddr_in *i = (const struct sockaddr_in *)a;
		return i->sin_port == n->s_in.sa_port &&
		       i->sin_addr.s_addr == n->s_in.sa_addr;
	}
	if (a->ss_family == AF_INET6 && n->s_family == NNG_AF_INET6) {
		const struct sockaddr_in6 *i = (const struct sockaddr_in6 *)a;
		return i->sin6_port == n->s_in6.sa_port &&
		       memcmp(&i->sin6_addr, n->s_in6.sa_addr, 16) == 0;
	}
	return false;
}

/* The socket under a tcp:// stream, or -1: nng 1.5's streams offer no
 * query of readiness, nor their descriptor, so it is found once by its
 * pair of addresses among the process's open descriptors (unique for a
 * connected TCP socket). Only ever peeked at (poll_one). */
static int stream_fd(nng_stream *st)
{
	nng_sockaddr la, ra;
	if (nng_stream_get_addr(st, NNG_OPT_LOCADDR, &la) != 0 ||
	    nng_stream_get_addr(st, NNG_OPT_REMADDR, &ra) != 0 ||
	    (la.s_family != NNG_AF_INET && la.s_family != NNG_AF_INET6))
		return -1;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char *end;
		long f = strtol(e->d_name, &end, 10);
		if (end == e->d_name || *end != '\0' || f == dirfd(d) ||
		    f > INT32_MAX)
			continue;
		struct sockaddr_storage a, b;
		socklen_t al = sizeof(a), bl = sizeof(b);
		if (getsockname((int)f, (struct sockaddr *)&a, &al) == 0 &&
		    addr_is(&a, &la) &&
		    getpeername((int)f, (struct sockaddr *)&b, &bl) == 0 &&
		    addr_is(&b, &ra))
			found = (int)f;
	}
	closedir(d);
	return found;
}

/* What stopped rx_deliver. */
enum { D_NEED, D_CLOSED, D_PAUSED, D_REFUSED };

/* Hands over every whole frame buffered, until the parser needs more bytes
 * or the connection is closed, paused or broke the protocol. Run by the
 * read side's owner (its callback, or the poller holding it). */
static int rx_deliver(struct inconn *c)
{
	tr__sp_in *in = c->in;
	for (;;) {
		if (atomic_load_explicit(&c->closed, memory_order_relaxed))
			return D_CLOSED;
		if (atomic_load_explicit(&c->paused, memory_order_relaxed))
			return D_PAUSED;
		/* Trusted by `frame` on this thread, or by another before
		 * this frame's read completed (ordered by nng's hand-over of
		 * the read, or by in->mtx for a poller); a frame after that
		 * is checked against the larger limit. */
		if (!c->parse.trusted &&
		    atomic_load_explicit(&c->trusted, memory_order_relaxed))
			tr__sp_parse_trust(&c->parse);
		const uint8_t *f;
		size_t len;
		int r = tr__sp_parse_next(&c->parse, &f, &len);
		if (r == TR__SP_NEED)
			return D_NEED;
		if (r == TR__SP_REFUSE)
			return D_REFUSED;
		pthread_mutex_lock(&in->deliver);
		if (!in->muted)
			in->ops.frame(in->ops.arg, c->id, f, len);
		pthread_mutex_unlock(&in->deliver);
	}
}

/* Whether the read side should go to the pollers rather than read on in
 * the background (in->mtx held): a trusted connection whose socket was
 * found (tcp://, not TLS: stream_fd), whose last two reads came within
 * HOT_GAP windows of each other, while a poller is awake to read it. */
#define HOT_GAP 50u
static bool hot_ok_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	return c->hot && window_of(in) != 0 && !in->closing && c->fd >= 0 &&
	       atomic_load_explicit(&c->trusted, memory_order_relaxed) &&
	       (in->awake == NULL || in->awake(in->awake_arg));
}

static void hwatch_want_locked(tr__sp_in *in);

/* The read side: hands over every whole frame buffered, then reads on,
 * unless the connection is paused (it parks), lost (it reports so) or
 * hot (it goes to the pollers). */
static void rx_run(struct inconn *c)
{
	tr__sp_in *in = c->in;
	for (;;) {
		int d = rx_deliver(c);
		if (d == D_NEED)
			break;
		if (d == D_CLOSED) {
			conn_lost(c);
			return;
		}
		if (d == D_REFUSED) {
			conn_refuse(c, tr__sp_parse_why(&c->parse));
			return;
		}
		pthread_mutex_lock(&in->mtx);
		if (atomic_load_explicit(&c->paused, memory_order_relaxed) &&
		    !atomic_load_explicit(&c->closed, memory_order_relaxed)) {
			c->parked = true;
			c->rx_busy = false;
			pthread_mutex_unlock(&in->mtx);
			return;
		}
		pthread_mutex_unlock(&in->mtx);
	}
	if (c->hot && c->fd == FD_UNKNOWN &&
	    atomic_load_explicit(&c->trusted, memory_order_relaxed))
		c->fd = c->ls->tls || c->ls->ipc ? -1 : stream_fd(c->st);
	uint8_t *at;
	size_t room;
	if (!tr__sp_parse_room(&c->parse, &at, &room) || room == 0) {
		conn_refuse(c, tr__sp_parse_why(&c->parse) != NULL
		                   ? tr__sp_parse_why(&c->parse)
		                   : "out of memory");
		return;
	}
	pthread_mutex_lock(&in->mtx);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
		/* Never start a read on a closed stream (see the top). */
		pthread_mutex_unlock(&in->mtx);
		conn_lost(c);
		return;
	}
	if (atomic_load_explicit(&c->paused, memory_order_relaxed)) {
		c->parked = true;
		c->rx_busy = false;
		pthread_mutex_unlock(&in->mtx);
		return;
	}
	if (hot_ok_locked(c)) {
		/* rx_busy stays set: the read side is the pollers' now. */
		c->hot = false;
		c->polled = true;
		c->poll_ns = now_ns();
		hot_append_locked(c);
		atomic_fetch_add_explicit(&in->nhot, 1, memory_order_relaxed);
		in->st.promoted++;
		hwatch_want_locked(in);
		pthread_mutex_unlock(&in->mtx);
		return;
	}
	c->hot = false;
	nng_iov iov = {at, room};
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_stream_recv(c->st, c->rx);
	pthread_mutex_unlock(&in->mtx);
}

/* Notes a read of bytes by the read side's owner: a read soon after the
 * one before makes the connection hot. */
static void rx_note(struct inconn *c, uint64_t t)
{
	tr__sp_in *in = c->in;
	uint64_t w = window_of(in);
	c->hot = w != 0 && t - c->rx_ns < HOT_GAP * w;
	c->rx_ns = t;
	atomic_store_explicit(&c->last_rx, nng_clock(), memory_order_relaxed);
}

static void in_rx_cb(void *arg)
{
	struct inconn *c = arg;
	if (nng_aio_result(c->rx) != 0) {
		conn_lost(c);
		return;
	}
	tr__sp_parse_commit(&c->parse, nng_aio_count(c->rx));
	rx_note(c, now_ns());
	rx_run(c);
}

static void in_kick_cb(void *arg)
{
	/* Woken by a resume or a close; a stopped kick (tr__sp_in_free)
	 * finds the connection closed. */
	rx_run(arg);
}

static void in_tx_cb(void *arg)
{
	struct inconn *c = arg;
	tr__sp_in *in = c->in;
	int rv = nng_aio_result(c->tx);
	pthread_mutex_lock(&in->mtx);
	if (rv != 0) {
		/* The read side reports the loss, so that nothing of this
		 * connection is handed over after `gone`. */
		close_locked(c);
	} else {
		c->hdr_sent += nng_aio_count(c->tx);
		if (c->hdr_sent < SP_HDR &&
		    !atomic_load_explicit(&c->closed, memory_order_relaxed)) {
			nng_iov iov = {
			    c->hdr + c->hdr_sent, SP_HDR - c->hdr_sent};
			nng_aio_set_iov(c->tx, 1, &iov);
			nng_stream_send(c->st, c->tx);
			pthread_mutex_unlock(&in->mtx);
			return;
		}
	}
	c->tx_busy = false;
	quiet_check_locked(c);
	pthread_mutex_unlock(&in->mtx);
}

static void conn_free(struct inconn *c)
{
	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	nng_aio_free(c->kick);
	if (c->st != NULL)
		nng_stream_free(c->st);
	tr__sp_parse_fini(&c->parse);
	free(c);
}

static void sweep_cb(void *arg)
{
	tr__sp_in *in = arg;
	pthread_mutex_lock(&in->mtx);
	if (in->closing) {
		in->sweep_state = SW_IDLE;
		pthread_mutex_unlock(&in->mtx);
		return;
	}
	in->sweep_state = SW_RUNNING;
	nng_time now = nng_clock();
	nng_time next = 0;
	bool any = false;
	for (size_t i = 0; i < in->nlsns; i++) {
		struct lsn *ls = in->lsns[i];
		while (ls->uhead != NULL && ls->uhead->deadline <= now) {
			in->st.closed_deadline++;
			close_locked(ls->uhead); /* takes it off the list */
		}
		if (ls->uhead != NULL && (!any || ls->uhead->deadline < next)) {
			next = ls->uhead->deadline;
			any = true;
		}
	}
	/* Dead connections with nothing pending; the others call for a
	 * sweep when they are done. */
	struct inconn *reap = NULL;
	for (struct inconn **cp = &in->dead; *cp != NULL;) {
		struct inconn *c = *cp;
		if (!c->rx_busy && !c->tx_busy) {
			*cp = c->next;
			c->next = reap;
			reap = c;
		} else {
			cp = &c->next;
		}
	}
	if (reap != NULL && (!any || now + REAP_MS < next)) {
		/* Under a flood, connections die one after another: one
		 * sweep every REAP_MS frees them in batches. */
		next = now + REAP_MS;
		any = true;
	}
	in->sweep_state = SW_IDLE;
	if (any)
		sweep_want_locked(in, next);
	pthread_mutex_unlock(&in->mtx);
	while (reap != NULL) {
		struct inconn *nx = reap->next;
		conn_free(reap);
		reap = nx;
	}
}

static void accept_pause(struct lsn *ls)
{
	ls->sleeping = true;
	nng_sleep_aio(ACCEPT_PAUSE_MS, ls->aio);
}

static void accept_cb(void *arg)
{
	struct lsn *ls = arg;
	tr__sp_in *in = ls->in;
	int rv = nng_aio_result(ls->aio);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return;
	if (ls->sleeping) {
		ls->sleeping = false;
		nng_stream_listener_accept(ls->l, ls->aio);
		return;
	}
	if (rv != 0) {
		/* A failed accept (out of descriptors or memory, or the
		 * peer went away first): pause, as nng's listeners do, so
		 * that a flood cannot spin a thread. */
		accept_pause(ls);
		return;
	}
	nng_stream *st = nng_aio_get_output(ls->aio, 0);
	struct inconn *c = calloc(1, sizeof(*c));
	uint8_t *at = NULL;
	size_t room = 0;
	if (c != NULL) {
		c->in = in;
		c->st = st;
		c->ls = ls;
		c->fd = FD_UNKNOWN;
		tr__sp_parse_init(&c->parse, PROTO_PUSH0, ls->ipc,
		    in->opts.max_untrusted, in->opts.max_frame);
		tr__sp_header(c->hdr, PROTO_PULL0);
	}
	if (c == NULL || !tr__sp_parse_room(&c->parse, &at, &room) ||
	    nng_aio_alloc(&c->rx, in_rx_cb, c) != 0 ||
	    nng_aio_alloc(&c->tx, in_tx_cb, c) != 0 ||
	    nng_aio_alloc(&c->kick, in_kick_cb, c) != 0) {
		if (c != NULL) {
			c->st = NULL;
			conn_free(c);
		}
		nng_stream_free(st);
		accept_pause(ls);
		return;
	}
	pthread_mutex_lock(&in->mtx);
	if (in->closing) {
		pthread_mutex_unlock(&in->mtx);
		conn_free(c);
		return;
	}
	if (++in->next_id == 0)
		in->next_id = 1;
	c->id = in->next_id;
	c->next = in->conns;
	in->conns = c;
	in->st.accepted++;
	in->st.open++;
	c->deadline = nng_clock() + in->opts.handshake_ms;
	atomic_init(&c->last_rx, nng_clock());
	ulist_add(ls, c);
	if (ls->nuntrusted > in->opts.max_untrusted_conns) {
		in->st.closed_cap++;
		close_locked(ls->uhead);
	}
	c->tx_busy = true;
	nng_iov iov = {c->hdr, SP_HDR};
	nng_aio_set_iov(c->tx, 1, &iov);
	nng_stream_send(c->st, c->tx);
	c->rx_busy = true;
	iov.iov_buf = at;
	iov.iov_len = room;
	nng_aio_set_iov(c->rx, 1, &iov);
	nng_stream_recv(c->st, c->rx);
	sweep_want_locked(in, c->deadline);
	pthread_mutex_unlock(&in->mtx);
	nng_stream_listener_accept(ls->l, ls->aio);
}

/* ---- polled reads --------------------------------------------------------
 *
 * A hot connection's read side can be handed from nng's threads to the
 * callers of tr__sp_in_poll (a node's idle schedulers): rx_run, instead
 * of starting the background read, puts the connection on in->hot, and a
 * poller then reads its socket itself, without waiting (MSG_DONTWAIT), so
 * a poll never waits and costs one syscall (two after a read: the first
 * sends the acknowledgement owed for the bytes read the time before, so
 * that it leaves after the reply the actor wrote meanwhile; see ack_late
 * and docs/distribution.md, "Acknowledged after the reply"). What it reads it
 * hands over itself (rx_deliver), so a frame that arrives while a
 * scheduler polls reaches its actor with no thread woken at all.
 *
 * At most one poller reads a connection at a time (`polling`, under the
 * mutex); while one does, the connection stays on in->hot but is skipped.
 * Anything but bytes or nothing (the stream closed or failed, the
 * connection paused or refused, no room) and a window with nothing read
 * hand the read side back with a kick (demote_locked): it then runs on an
 * nng thread as before, which reports what there is to report, so `gone`
 * and `refused` are never called by a poller. The watch (hwatch), armed
 * while anything is hot, takes back what no poller has looked at for
 * STRAND_NS: pollers that all went busy or to sleep leave a connection to
 * the background within that time.
 */
#define STRAND_NS 5000000u /* 5 ms */
#define WATCH_MS 10
#define BUSY_EVERY_NS 20000u

static void hwatch_want_locked(tr__sp_in *in)
{
	if (in->hwatch_armed || in->closing)
		return;
	in->hwatch_armed = true;
	nng_sleep_aio(WATCH_MS, in->hwatch);
}

static void hwatch_cb(void *arg)
{
	tr__sp_in *in = arg;
	uint64_t t = now_ns();
	pthread_mutex_lock(&in->mtx);
	in->hwatch_armed = false;
	for (struct inconn *c = in->hot, *nx; c != NULL; c = nx) {
		nx = c->hnext;
		if (!c->polling && t - c->poll_ns > STRAND_NS) {
			in->st.stranded++;
			demote_locked(c);
		}
	}
	if (in->hot != NULL)
		hwatch_want_locked(in);
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_poll_window(tr__sp_in *in, uint32_t window_us,
    bool (*awake)(void *arg), void *arg)
{
	pthread_mutex_lock(&in->mtx);
	atomic_store_explicit(&in->window_ns, (uint64_t)window_us * 1000u,
	    memory_order_relaxed);
	in->awake = awake;
	in->awake_arg = arg;
	pthread_mutex_unlock(&in->mtx);
}

/* Reads what `c` has waiting (held: polling set, in->mtx held on entry
 * and on return) and hands it over. Returns the frames' bytes read, 0 for
 * none; hands the read side back when it must (see above). */
static size_t poll_one(struct inconn *c, uint64_t t, int mode)
{
	tr__sp_in *in = c->in;
	uint8_t *at;
	size_t room;
	if (atomic_load_explicit(&c->closed, memory_order_relaxed) ||
	    atomic_load_explicit(&c->paused, memory_order_relaxed) ||
	    !tr__sp_parse_room(&c->parse, &at, &room) || room == 0) {
		c->polling = false;
		demote_locked(c);
		return 0;
	}
	pthread_mutex_unlock(&in->mtx);
	/* Straight from the kernel: one syscall, with or without bytes, and
	 * nng's poller left alone (a read through the stream that found
	 * nothing would arm it, and the next bytes would wake its thread for
	 * nothing). nng reads a TCP stream into the caller's buffer, keeping
	 * nothing back, and it has no read of its own pending while the
	 * connection is polled, so the bytes come in order. The socket stays
	 * open until conn_free, which waits for this poller (the connection
	 * stays polled while `polling`), so the descriptor is still ours.
	 * The end of the stream, or an error, goes back to nng's thread
	 * (demote below), whose read sees the end of the stream and reports
	 * the loss. */
	if (!c->ack_late || c->ack_owed) {
		int v = c->ack_late ? 2 : 0;
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
		c->ack_late = true;
		c->ack_owed = false;
	}
	ssize_t k = recv(c->fd, at, room, MSG_DONTWAIT);
	if (k > 0)
		c->ack_owed = true;
	int rv = 0;
	size_t n = 0;
	int d = D_NEED;
	if (k > 0)
		n = (size_t)k;
	else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	                      errno == EINTR))
		rv = NNG_ECANCELED; /* nothing yet */
	else
		rv = NNG_ECLOSED;
	if (n != 0) {
		tr__sp_parse_commit(&c->parse, n);
		rx_note(c, t);
		d = rx_deliver(c);
	}
	pthread_mutex_lock(&in->mtx);
	c->polling = false;
	c->poll_ns = t;
	if (n != 0)
		in->st.polled++;
	/* Quiet for a window: an idle poller is about to park, so the read
	 * side goes back. Between turns, the schedulers are busy and nng's
	 * threads would wait for a core: kept for as long as a connection
	 * stays hot. */
	uint64_t quiet = mode == TR__SP_POLL_BUSY ? HOT_GAP * window_of(in)
	                                          : window_of(in);
	if (d != D_NEED || (rv != 0 && rv != NNG_ECANCELED) ||
	    atomic_load_explicit(&c->closed, memory_order_relaxed) ||
	    (n == 0 && t - c->rx_ns > quiet))
		demote_locked(c);
	return n;
}

/* Whether `who`, polling in `mode` at `t`, may poll `c` (in->mtx held). An
 * idle poller keeps to the connections it polled, so that one scheduler
 * spins on a hot connection rather than all of them; one that has not
 * polled its connection for BUSY_EVERY_NS (it found work) lets another
 * take it over. */
static bool poll_mine(const struct inconn *c, int mode, unsigned who, uint64_t t)
{
	if (c->polling)
		return false;
	bool stale = t - c->poll_ns >= BUSY_EVERY_NS;
	if (mode == TR__SP_POLL_BUSY)
		return stale;
	return c->owner == 0 || c->owner == who || stale;
}

unsigned tr__sp_in_poll(tr__sp_in *in, int mode, unsigned who)
{
	/* Relaxed: a hint. A connection made hot just after this load is
	 * seen by the next poll, or taken back by the watch. */
	if (atomic_load_explicit(&in->nhot, memory_order_relaxed) == 0)
		return 0;
	uint64_t t = now_ns();
	unsigned out = 0;
	pthread_mutex_lock(&in->mtx);
	if (mode == TR__SP_POLL_PARK) {
		for (struct inconn *c = in->hot, *nx; c != NULL; c = nx) {
			nx = c->hnext;
			if (!c->polling && (c->owner == who || c->owner == 0))
				demote_locked(c);
		}
		pthread_mutex_unlock(&in->mtx);
		return 0;
	}
	/* The connection polled longest ago that this poller may take,
	 * moved to the back. */
	struct inconn *c = in->hot;
	while (c != NULL && !poll_mine(c, mode, who, t))
		c = c->hnext;
	if (c != NULL) {
		hot_remove_locked(c);
		hot_append_locked(c);
		c->polling = true;
		if (mode == TR__SP_POLL_IDLE)
			c->owner = who;
		if (poll_one(c, t, mode) != 0)
			out |= TR__SP_POLL_GOT;
		if (c->polled)
			out |= TR__SP_POLL_HOT;
	}
	pthread_mutex_unlock(&in->mtx);
	return out;
}

void tr__sp_in_opts_init(tr__sp_in_opts *opts)
{
	opts->max_frame = TR__SP_MAX_FRAME_DEFAULT;
	opts->max_untrusted = TR__SP_MAX_UNTRUSTED_DEFAULT;
	opts->handshake_ms = TR__SP_HANDSHAKE_MS_DEFAULT;
	opts->max_untrusted_conns = TR__SP_MAX_UNTRUSTED_CONNS_DEFAULT;
}

int tr__sp_in_alloc_opts(
    tr__sp_in **inp, const tr__sp_in_ops *ops, const tr__sp_in_opts *opts)
{
	tr__sp_in *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return TR_ENOMEM;
	if (nng_aio_alloc(&in->sweep, sweep_cb, in) != 0) {
		free(in);
		return TR_ENOMEM;
	}
	if (nng_aio_alloc(&in->hwatch, hwatch_cb, in) != 0) {
		nng_aio_free(in->sweep);
		free(in);
		return TR_ENOMEM;
	}
	pthread_mutex_init(&in->mtx, NULL);
	pthread_mutex_init(&in->deliver, NULL);
	in->ops = *ops;
	tr__sp_in_opts_init(&in->opts);
	if (opts != NULL) {
		if (opts->max_frame != 0)
			in->opts.max_frame = opts->max_frame;
		if (opts->max_untrusted != 0)
			in->opts.max_untrusted = opts->max_untrusted;
		if (opts->handshake_ms != 0)
			in->opts.handshake_ms = opts->handshake_ms;
		if (opts->max_untrusted_conns != 0)
			in->opts.max_untrusted_conns =
			    opts->max_untrusted_conns;
	}
	if (in->opts.max_untrusted > in->opts.max_frame)
		in->opts.max_untrusted = in->opts.max_frame;
	*inp = in;
	return TR_OK;
}

int tr__sp_in_alloc(tr__sp_in **inp, const tr__sp_in_ops *ops, size_t max_frame,
    size_t max_untrusted)
{
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_frame = max_frame;
	o.max_untrusted = max_untrusted;
	return tr__sp_in_alloc_opts(inp, ops, &o);
}

/* The URL with the port a listener on port 0 got. */
static char *bound_url(nng_stream_listener *l, const char *url)
{
	const char *colon = strrchr(url, ':');
	int port;
	if (url_ipc(url) || colon == NULL || strcmp(colon, ":0") != 0 ||
	    nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return strdup(url);
	size_t base = (size_t)(colon - url);
	char *s = malloc(base + 16);
	if (s != NULL)
		snprintf(s, base + 16, "%.*s:%d", (int)base, url, port);
	return s;
}

int tr__sp_in_listen(
    tr__sp_in *in, const char *url, nng_tls_config *tls, char **bound)
{
	struct lsn *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return TR_ENOMEM;
	ls->in = in;
	ls->idx = (int)in->nlsns;
	ls->ipc = url_ipc(url);
	ls->tls = tls != NULL || strncmp(url, "tls+", 4) == 0;
	int rv = nng_stream_listener_alloc(&ls->l, url);
	if (rv == 0 && tls != NULL)
		rv =
		    nng_stream_listener_set_ptr(ls->l, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_stream_listener_listen(ls->l);
	if (rv == 0)
		rv = nng_aio_alloc(&ls->aio, accept_cb, ls);
	char *b = rv == 0 ? bound_url(ls->l, url) : NULL;
	struct lsn **v = NULL;
	if (rv == 0 && b != NULL)
		v = realloc(in->lsns, (in->nlsns + 1) * sizeof(*v));
	if (v == NULL) {
		free(b);
		if (ls->aio != NULL)
			nng_aio_free(ls->aio);
		if (ls->l != NULL)
			nng_stream_listener_free(ls->l);
		free(ls);
		return rv != 0 ? tr__nng_err(rv) : TR_ENOMEM;
	}
	/* The listener array is read by the sweep under the mutex. */
	pthread_mutex_lock(&in->mtx);
	in->lsns = v;
	in->lsns[in->nlsns++] = ls;
	pthread_mutex_unlock(&in->mtx);
	*bound = b;
	return TR_OK;
}

void tr__sp_in_start(tr__sp_in *in)
{
	for (size_t i = 0; i < in->nlsns; i++)
		nng_stream_listener_accept(in->lsns[i]->l, in->lsns[i]->aio);
}

int tr__sp_in_listener_of(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	int k = c != NULL ? c->ls->idx : -1;
	pthread_mutex_unlock(&in->mtx);
	return k;
}

int64_t tr__sp_in_quiet_ms(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	int64_t ms = -1;
	if (c != NULL) {
		uint64_t t =
		    atomic_load_explicit(&c->last_rx, memory_order_relaxed);
		uint64_t now = nng_clock();
		ms = t != 0 && now >= t ? (int64_t)(now - t) : -1;
	}
	pthread_mutex_unlock(&in->mtx);
	return ms;
}

void tr__sp_in_trust(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	if (c != NULL) {
		atomic_store_explicit(&c->trusted, true, memory_order_relaxed);
		ulist_remove(c);
	}
	pthread_mutex_unlock(&in->mtx);
}

/* The read under way is left to complete rather than cancelled: a
 * cancelled read on nng's TLS stream aborts the TCP read under it, which
 * fails the whole connection. The read side parks once it sees the flag,
 * with what it read kept in the parser. */
void tr__sp_in_pause(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	if (c != NULL &&
	    !atomic_load_explicit(&c->paused, memory_order_relaxed)) {
		atomic_store_explicit(&c->paused, true, memory_order_relaxed);
		in->st.paused++;
	}
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_resume(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	if (c != NULL &&
	    atomic_load_explicit(&c->paused, memory_order_relaxed)) {
		atomic_store_explicit(&c->paused, false, memory_order_relaxed);
		in->st.paused--;
		if (c->parked)
			kick_locked(c);
	}
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_stats_get(tr__sp_in *in, tr__sp_in_stats *st)
{
	pthread_mutex_lock(&in->mtx);
	*st = in->st;
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_drop(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	if (c != NULL)
		close_locked(c); /* the read side reports the loss */
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_reap(tr__sp_in *in)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *d = in->dead;
	in->dead = NULL;
	pthread_mutex_unlock(&in->mtx);
	while (d != NULL) {
		struct inconn *nx = d->next;
		conn_free(d); /* stopping its aios waits for its callbacks */
		d = nx;
	}
}

void tr__sp_in_close(tr__sp_in *in)
{
	pthread_mutex_lock(&in->deliver);
	in->muted = true;
	pthread_mutex_unlock(&in->deliver);
	pthread_mutex_lock(&in->mtx);
	in->closing = true;
	for (struct inconn *c = in->conns; c != NULL; c = c->next)
		close_locked(c);
	pthread_mutex_unlock(&in->mtx);
	for (size_t i = 0; i < in->nlsns; i++)
		nng_stream_listener_close(in->lsns[i]->l);
}

void tr__sp_in_free(tr__sp_in *in)
{
	if (in == NULL)
		return;
	tr__sp_in_close(in);
	for (size_t i = 0; i < in->nlsns; i++) {
		nng_aio_stop(in->lsns[i]->aio);
		nng_aio_free(in->lsns[i]->aio);
		nng_stream_listener_free(in->lsns[i]->l);
	}
	/* No sweep runs after this, so nothing below is freed under us; and
	 * nothing is hot any more (closing took it all back). */
	nng_aio_stop(in->sweep);
	nng_aio_stop(in->hwatch);
	/* Every connection is closed: its read fails, or its kick runs, at
	 * once, and stopping its aios waits for conn_lost, which moves it to
	 * `dead`. */
	for (;;) {
		pthread_mutex_lock(&in->mtx);
		struct inconn *c = in->conns;
		pthread_mutex_unlock(&in->mtx);
		if (c == NULL)
			break;
		nng_aio_stop(c->rx);
		nng_aio_stop(c->kick);
		nng_aio_stop(c->tx);
		pthread_mutex_lock(&in->mtx);
		if (!c->dead) {
			/* Stopped before its callback saw the close. */
			for (struct inconn **cp = &in->conns; *cp != NULL;
			     cp = &(*cp)->next) {
				if (*cp == c) {
					*cp = c->next;
					break;
				}
			}
			c->dead = true;
			c->next = in->dead;
			in->dead = c;
		}
		pthread_mutex_unlock(&in->mtx);
	}
	tr__sp_in_reap(in);
	for (size_t i = 0; i < in->nlsns; i++)
		free(in->lsns[i]);
	free(in->lsns);
	nng_aio_free(in->sweep);
	nng_aio_free(in->hwatch);
	pthread_mutex_destroy(&in->deliver);
	pthread_mutex_destroy(&in->mtx);
	free(in);
}
