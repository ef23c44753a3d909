/*
 * push0 over nng streams: the outbound side of the connection layer, one
 * connection a tr__sp_out. See sp.h for the contract, sp_int.h for the
 * locks and why every operation is started under the mutex.
 */
#include "sp.h"
#include "sp_int.h"

#include <pthread.h>
#include <stdlib.h>

#include "nng_err.h"

#define REDIAL_MIN_MS 20u

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
	o->ipc = tr__sp_url_ipc(url);
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
	/* Started under the mutex, like every other operation (see
	 * sp_int.h); finished without it. With no callback, nng
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
