/*
 * A connection's reads, writes and close (sock_int.h has the states and
 * the rules for starting nng operations).
 *
 * Reads: one rx operation at most, started only while a tr_sock_recv is
 * pending and the buffer cannot answer it: on a tcp:// connection, a
 * recv on the calling thread or an arming in the runtime's I/O set
 * (sock_io.c), whose event a scheduler takes and hands to
 * tr__sk_io_ready; on TLS and ipc, nng's `rx`. Its room is what the buffer
 * has free, at most what a RAW read asked for; the buffer starts at
 * TR__SK_RBUF_MIN, doubles when a read fills it (or when a line, frame or
 * exact read needs more), up to max_packet plus a frame's prefix, and
 * goes back to its first size once empty after growing past 64 KiB.
 *
 * Writes: two buffers, `wa` being written, `wb` taking what is sent
 * meanwhile; when `wa` is done they swap. A write is tried first on the
 * calling thread with an aio that has no callback (quick_aio): nng's
 * tcp and ipc streams write at once what the socket takes and then
 * complete such an aio in place, so the common send costs no thread hop
 * at all. When the socket takes nothing, the
 * quick operation is cancelled (nothing of it was written: nng's
 * streams complete a write whole or not at all) and the rest goes by
 * the slot's `tx` aio, whose callback runs on one of nng's threads once
 * the socket has room. Not on TLS streams (sock_int.h: `quick`).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sock_int.h"

#define RBUF_SHRINK (64u * 1024u)
#define FRAME_HDR 4u

void tr__sk_post_status(
    tr_runtime *rt, tr_pid to, uint32_t type, tr_sock sock, int status)
{
	tr_sock_status st = {.sock = sock, .status = status};
	(void)tr_post(rt, to, type, &st, sizeof(st));
}

/* ---- the calling thread's quick aio ------------------------------------- */

static pthread_key_t quick_key;
static pthread_once_t quick_once = PTHREAD_ONCE_INIT;

static void quick_free(void *a)
{
	nng_aio_free(a);
}

static void quick_key_make(void)
{
	(void)pthread_key_create(&quick_key, quick_free);
}

/* The calling thread's aio without a callback, made at its first use and
 * freed when the thread exits; NULL if it cannot be made. It is only
 * ever used synchronously, under a slot's mutex, and left idle. */
static nng_aio *quick_aio(void)
{
	(void)pthread_once(&quick_once, quick_key_make);
	nng_aio *a = pthread_getspecific(quick_key);
	if (a == NULL && nng_aio_alloc(&a, NULL, NULL) == 0 &&
	    pthread_setspecific(quick_key, a) != 0) {
		nng_aio_free(a);
		a = NULL;
	}
	return a;
}

/* Runs `op` (nng_stream_send or _recv with the iov set on `a`) to the end
 * if the stream can do it at once: its result, or NNG_ECANCELED when it
 * would have had to wait (nothing was moved). */
static int quick_run(nng_aio *a, nng_stream *st,
    void (*op)(nng_stream *, nng_aio *), size_t *count)
{
	op(st, a);
	/* Done in place, or pending in the stream: then the cancel takes it
	 * back and completes it in place (it has no callback), unless the
	 * stream's own thread completed it first, which the result tells.
	 * On a completed aio the cancel does nothing. */
	nng_aio_cancel(a);
	nng_aio_wait(a);
	*count = nng_aio_count(a);
	return nng_aio_result(a);
}

static size_t queued(const tr__sock_slot *s)
{
	return (s->wa_len - s->woff) + s->wb_len;
}

static void stream_close(tr__sock_slot *s)
{
	tr__sk_io_drop(s);
	if (s->st != NULL)
		nng_stream_close(s->st);
}

static void conns_gauge_down(tr__sock_slot *s)
{
	if (s->mgr != NULL)
		atomic_fetch_sub_explicit(&tr__sk_mgr_counters(s->mgr)->conns,
		    1, memory_order_relaxed);
}

void tr__sk_release_check(tr__sock_slot *s)
{
	if (s->shutting || s->state != TR__SK_DEAD || s->rx_busy ||
	    s->tx_busy || s->ctl_busy) {
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	tr_sock parent = s->parent;
	bool conn = s->kind == TR__SK_CONN;
	if (conn)
		conns_gauge_down(s);
	else if (s->mgr != NULL)
		atomic_fetch_sub_explicit(
		    &tr__sk_mgr_counters(s->mgr)->listeners, 1,
		    memory_order_relaxed);
	tr__sk_mgr_drop(s);
	tr__sk_release(s); /* unlocks */
	if (conn && parent != TR_SOCK_NONE)
		tr__sk_listener_conn_gone(parent);
}

/* Reports the end of the socket to its owner, for the pending read. */
static void report_closed(tr__sock_slot *s, int reason)
{
	s->rwant = false;
	s->state = TR__SK_DEAD;
	tr__sk_post_status(
	    s->rt, s->owner, TR_MSG_SOCK_CLOSED, tr__sk_handle(s), reason);
}

void tr__sk_fail(tr__sock_slot *s, int reason)
{
	if (s->state != TR__SK_OPEN && s->state != TR__SK_CONNECTING)
		return;
	if (reason == TR_ECLOSED)
		TR__SK_COUNT(s, closed_by_peer, 1);
	else
		TR__SK_COUNT(s, failed, 1);
	s->state = TR__SK_FAILED;
	s->fail = reason;
	s->drained_want = false;
	stream_close(s);
	if (s->rwant)
		report_closed(s, reason);
}

/* ---- reading ------------------------------------------------------------ */

/* Answers the pending read from the buffer if it can (true: answered, or
 * the socket failed). */
static bool try_answer(tr__sock_slot *s, size_t *need)
{
	size_t off = 0, len = 0, used = 0;
	/* No arithmetic on a buffer not yet made. */
	const uint8_t *at = s->rbuf != NULL ? s->rbuf + s->roff
	                                    : (const uint8_t *)"";
	int r = tr__sk_frame(
	    &s->want, at, s->rlen, s->max_packet, &off, &len, &used, need);
	if (r == TR__SK_NEED)
		return false;
	if (r == TR__SK_TOOBIG) {
		tr__sk_fail(s, TR_EMSGSIZE);
		return true;
	}
	tr_msg *m;
	if (tr_msg_alloc(&m, s->rt, TR_MSG_SOCK_DATA,
	        sizeof(tr_sock_data) + len) != TR_OK) {
		tr__sk_fail(s, TR_ENOMEM);
		return true;
	}
	tr_sock_data *d = (tr_sock_data *)m->data;
	d->sock = tr__sk_handle(s);
	d->len = (uint32_t)len;
	d->_reserved = 0;
	if (len > 0)
		memcpy(d->bytes, s->rbuf + s->roff + off, len);
	s->roff += used;
	s->rlen -= used;
	if (s->rlen == 0)
		s->roff = 0;
	s->rwant = false;
	if (tr_post_msg(s->rt, s->owner, m) != TR_OK)
		tr_msg_free(m); /* the owner is gone; the manager closes */
	return true;
}

/* Makes room in the read buffer for `need` bytes buffered in all. */
static bool rbuf_room(tr__sock_slot *s, size_t need)
{
	size_t limit = (size_t)s->max_packet + FRAME_HDR;
	if (s->rlen == 0 && s->rcap > RBUF_SHRINK && need <= TR__SK_RBUF_MIN) {
		free(s->rbuf);
		s->rbuf = NULL;
		s->rcap = 0;
	}
	size_t want = s->rcap != 0 ? s->rcap : TR__SK_RBUF_MIN;
	if (s->rfull && s->rlen + s->roff >= s->rcap && want < limit)
		want *= 2; /* the traffic fills reads: read more at once */
	while (want < need)
		want *= 2;
	if (want > limit)
		want = limit;
	if (want < need)
		return false;
	if (s->roff > 0 && (s->roff + s->rlen == s->rcap || want > s->rcap)) {
		memmove(s->rbuf, s->rbuf + s->roff, s->rlen);
		s->roff = 0;
	}
	if (want > s->rcap) {
		uint8_t *nb = realloc(s->rbuf, want);
		if (nb == NULL)
			return false;
		s->rbuf = nb;
		s->rcap = want;
	}
	s->rfull = false;
	return true;
}

/* The reason for a failed read: a clean end is TR_ECLOSED, unless the
 * peer left a line, frame or exact read half sent. */
static int rx_reason(tr__sock_slot *s, int rv)
{
	if (rv == NNG_ECONNSHUT || rv == NNG_ECLOSED)
		return s->rlen > 0 && s->want.mode != TR_SOCK_RAW ? TR_EPROTO
		                                                  : TR_ECLOSED;
	return tr__sk_err(rv);
}

static void close_flush(tr__sock_slot *s);

/* Takes in what a read into the free room of the buffer brought: `n`
 * bytes, or the end or failure `rv`. False: the read is over (the end
 * or the failure is reported, or kept for the next tr_sock_recv). */
static bool rx_took(tr__sock_slot *s, int rv, size_t n)
{
	if (rv != 0) {
		int reason = rx_reason(s, rv);
		if (reason != TR_ECLOSED) {
			tr__sk_fail(s, reason);
			return false;
		}
		/* The peer's end: the owner is told, and what is queued is
		 * still written (the peer may be reading yet). */
		TR__SK_COUNT(s, closed_by_peer, 1);
		s->rwant = false;
		tr__sk_post_status(s->rt, s->owner, TR_MSG_SOCK_CLOSED,
		    tr__sk_handle(s), TR_ECLOSED);
		if (s->half_close)
			s->eof = true; /* only the reading side is over */
		else
			close_flush(s);
		return false;
	}
	TR__SK_COUNT(s, bytes_in, n);
	s->rfull = s->rhot = s->roff + s->rlen + n == s->rcap;
	s->rlen += n;
	return true;
}

/* Starts a read for the pending tr_sock_recv (s OPEN, rwant, rx idle).
 * When the last read filled its room, more is likely waiting in the
 * socket: it is read at once on the calling thread (as writes are, see
 * the top), as long as each read answers nothing and brings more; the
 * read that would wait goes by `rx`, whose callback runs on one of nng's
 * threads when data comes. */
static void rx_start(tr__sock_slot *s, size_t need)
{
	nng_iov iov;
	bool io = tr__sk_io_usable(s);
	for (;;) {
		if (!rbuf_room(s, need)) {
			tr__sk_fail(s, TR_ENOMEM);
			return;
		}
		size_t room = s->rcap - s->roff - s->rlen;
		if (s->want.mode == TR_SOCK_RAW && s->want.n != 0 &&
		    s->want.n < room)
			room = s->want.n; /* nothing read that nobody asked for */
		iov = (nng_iov){s->rbuf + s->roff + s->rlen, room};
		if (io) {
			/* Through the I/O set (sock_io.c): read while the
			 * last read filled its room, else arm at once (the
			 * arming finds data that is there already). */
			int rv = 0;
			size_t n = 0;
			if (!s->rhot ||
			    !tr__sk_io_read(s, iov.iov_buf, room, &rv, &n)) {
				s->rhot = false;
				if (tr__sk_io_arm(s))
					return;
				break; /* refused: by nng from now on */
			}
			if (!rx_took(s, rv, n) || try_answer(s, &need) ||
			    s->state != TR__SK_OPEN)
				return;
			continue;
		}
		nng_aio *q = s->quick && s->rhot ? quick_aio() : NULL;
		if (q == NULL)
			break;
		size_t n = 0;
		nng_aio_set_iov(q, 1, &iov);
		int rv = quick_run(q, s->st, nng_stream_recv, &n);
		if (rv == NNG_ECANCELED) {
			s->rhot = false; /* nothing was waiting */
			break;
		}
		if (!rx_took(s, rv, n) || try_answer(s, &need) ||
		    s->state != TR__SK_OPEN)
			return;
	}
	nng_aio_set_iov(s->rx, 1, &iov);
	s->rx_busy = true;
	nng_stream_recv(s->st, s->rx);
}

/* The pending read: answered from the buffer, or a read started. */
static void rx_run(tr__sock_slot *s)
{
	size_t need = 1;
	if (try_answer(s, &need))
		return;
	if (s->state == TR__SK_OPEN && !s->rx_busy && !s->io_armed)
		rx_start(s, need);
}

void tr__sk_io_ready(tr_runtime *rt, uint64_t token, uint32_t events)
{
	(void)rt;
	(void)events; /* the read says what there is: data, end or error */
	tr__sock_slot *s = tr__sk_lock((tr_sock)token);
	if (s == NULL)
		return; /* a stale event of a socket since released */
	if (s->io_armed) {
		s->io_armed = false;
		if (s->state == TR__SK_OPEN && s->rwant) {
			s->rhot = true;
			rx_run(s);
		}
	}
	tr__sk_release_check(s);
}

void tr__sk_rx_cb(void *arg)
{
	tr__sock_slot *s = arg;
	pthread_mutex_lock(&s->mtx);
	int rv = nng_aio_result(s->rx);
	s->rx_busy = false;
	if (s->state != TR__SK_OPEN || !s->rwant) {
		/* Closed or failed meanwhile (a cancelled read). */
		tr__sk_release_check(s);
		return;
	}
	if (rx_took(s, rv, nng_aio_count(s->rx)))
		rx_run(s);
	tr__sk_release_check(s);
}

int tr__sk_conn_recv(tr__sock_slot *s, int mode, size_t n)
{
	int rc = TR_OK;
	if (mode < TR_SOCK_RAW || mode > TR_SOCK_FRAME ||
	    (mode == TR_SOCK_EXACT && (n == 0 || n > s->max_packet))) {
		rc = TR_EINVAL;
	} else if (s->state == TR__SK_CLOSING || s->state == TR__SK_DEAD) {
		rc = TR_ENOENT;
	} else if (s->rwant) {
		rc = TR_EALREADY;
	} else if (s->eof) {
		rc = TR_ECLOSED;
	}
	if (rc != TR_OK) {
		pthread_mutex_unlock(&s->mtx);
		return rc;
	}
	s->rwant = true;
	s->want = (tr__sk_want){.mode = mode, .n = n};
	if (s->state == TR__SK_FAILED) {
		/* What it failed of, now that somebody asks. */
		report_closed(s, s->fail);
		tr__sk_release_check(s);
		return TR_OK;
	}
	if (s->state == TR__SK_OPEN)
		rx_run(s);
	/* CONNECTING: the read starts once connected. */
	tr__sk_release_check(s);
	return TR_OK;
}

/* ---- writing ------------------------------------------------------------ */

static void close_now(tr__sock_slot *s);

/* A write that failed on the calling thread. */
static void tx_failed(tr__sock_slot *s, int rv)
{
	if (s->state == TR__SK_CLOSING)
		close_now(s);
	else
		tr__sk_fail(s, tr__sk_err(rv));
}

/* Writes `len` bytes at `p` on the calling thread, as far as the socket
 * takes them without waiting: how many it took. On an error the socket
 * has failed (or, closing, is closed). */
static size_t tx_now(tr__sock_slot *s, const uint8_t *p, size_t len)
{
	nng_aio *q = s->quick ? quick_aio() : NULL;
	size_t done = 0;
	while (q != NULL && done < len) {
		size_t n = 0;
		nng_iov iov = {(void *)(p + done), len - done};
		nng_aio_set_iov(q, 1, &iov);
		int rv = quick_run(q, s->st, nng_stream_send, &n);
		if (rv == NNG_ECANCELED)
			break;
		if (rv != 0) {
			tx_failed(s, rv);
			break;
		}
		TR__SK_COUNT(s, bytes_out, n);
		done += n;
	}
	return done;
}

/* Writes what is queued (s OPEN or CLOSING, tx idle): on the calling
 * thread as far as the socket takes it when `quick`, the rest by `tx`. */
static void tx_start(tr__sock_slot *s, bool quick)
{
	for (;;) {
		if (s->woff == s->wa_len && s->wb_len > 0) {
			uint8_t *b = s->wa;
			size_t cap = s->wa_cap;
			s->wa = s->wb;
			s->wa_cap = s->wb_cap;
			s->wa_len = s->wb_len;
			s->wb = b;
			s->wb_cap = cap;
			s->wb_len = 0;
			s->woff = 0;
		}
		if (s->woff == s->wa_len)
			return;
		if (!quick)
			break;
		size_t n = tx_now(s, s->wa + s->woff, s->wa_len - s->woff);
		s->woff += n;
		if (s->state != TR__SK_OPEN && s->state != TR__SK_CLOSING)
			return; /* failed */
		if (s->woff < s->wa_len)
			break; /* the socket is full */
	}
	nng_iov iov = {s->wa + s->woff, s->wa_len - s->woff};
	nng_aio_set_iov(s->tx, 1, &iov);
	s->tx_busy = true;
	nng_stream_send(s->st, s->tx);
}

static bool buf_append(
    uint8_t **b, size_t *len, size_t *cap, const void *d, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = *cap != 0 ? *cap : 1024;
		while (nc < *len + n)
			nc *= 2;
		uint8_t *nb = realloc(*b, nc);
		if (nb == NULL)
			return false;
		*b = nb;
		*cap = nc;
	}
	if (n > 0)
		memcpy(*b + *len, d, n);
	*len += n;
	return true;
}

/* Gives back write buffers that grew large, once the queue is empty. */
static void wbuf_trim(tr__sock_slot *s)
{
	if (s->wa_cap > RBUF_SHRINK) {
		free(s->wa);
		s->wa = NULL;
		s->wa_cap = 0;
	}
	if (s->wb_cap > RBUF_SHRINK) {
		free(s->wb);
		s->wb = NULL;
		s->wb_cap = 0;
	}
	s->wa_len = s->woff = s->wb_len = 0;
}

int tr__sk_conn_send(tr__sock_slot *s, const void *data, size_t len)
{
	int rc = TR_OK;
	size_t q = queued(s);
	if (s->state == TR__SK_FAILED) {
		rc = TR_ECLOSED;
	} else if (s->state != TR__SK_OPEN && s->state != TR__SK_CONNECTING) {
		rc = TR_ENOENT;
	} else if (q > 0 && q + len > s->send_queue) {
		s->drained_want = true;
		TR__SK_COUNT(s, send_eagain, 1);
		rc = TR_EAGAIN;
	} else if (len == 0) {
		rc = TR_OK;
	} else if (!s->tx_busy && q == 0) {
		/* Idle: straight from the caller's bytes, as far as the
		 * socket takes them; only the rest is copied and waits. */
		size_t done = 0;
		if (s->state == TR__SK_OPEN)
			done = tx_now(s, data, len);
		s->wa_len = s->woff = s->wb_len = 0;
		if (s->state != TR__SK_OPEN && s->state != TR__SK_CONNECTING) {
			rc = TR_OK; /* failed: the next read says why */
		} else if (done == len) {
			wbuf_trim(s);
		} else if (!buf_append(&s->wa, &s->wa_len, &s->wa_cap,
		               (const uint8_t *)data + done, len - done)) {
			rc = TR_ENOMEM;
		} else if (s->state == TR__SK_OPEN) {
			tx_start(s, false);
		}
	} else if (!buf_append(&s->wb, &s->wb_len, &s->wb_cap, data, len)) {
		rc = TR_ENOMEM;
	}
	pthread_mutex_unlock(&s->mtx);
	return rc;
}

/* The end of a close: the stream closes, the slot goes. */
static void close_now(tr__sock_slot *s)
{
	s->state = TR__SK_DEAD;
	stream_close(s);
	if (s->ctl_busy)
		nng_aio_cancel(s->ctl); /* the linger timer */
}

void tr__sk_tx_cb(void *arg)
{
	tr__sock_slot *s = arg;
	pthread_mutex_lock(&s->mtx);
	int rv = nng_aio_result(s->tx);
	s->tx_busy = false;
	if (rv != 0) {
		if (s->state == TR__SK_OPEN)
			tr__sk_fail(s, tr__sk_err(rv));
		else if (s->state == TR__SK_CLOSING)
			close_now(s);
		tr__sk_release_check(s);
		return;
	}
	size_t n = nng_aio_count(s->tx);
	TR__SK_COUNT(s, bytes_out, n);
	s->woff += n;
	if (s->state == TR__SK_OPEN || s->state == TR__SK_CLOSING) {
		tx_start(s, true);
		if (!s->tx_busy && s->state != TR__SK_DEAD) {
			wbuf_trim(s);
			if (s->state == TR__SK_CLOSING)
				close_now(s);
		}
	}
	if (s->drained_want && s->state == TR__SK_OPEN &&
	    queued(s) <= s->send_queue / 2) {
		s->drained_want = false;
		tr__sk_post_status(s->rt, s->owner, TR_MSG_SOCK_DRAINED,
		    tr__sk_handle(s), TR_OK);
	}
	tr__sk_release_check(s);
}

/* ---- closing ------------------------------------------------------------ */

/* Closes OPEN connection `s` once what is queued is written, for at most
 * linger_ms. */
static void close_flush(tr__sock_slot *s)
{
	if (s->rx_busy)
		nng_aio_cancel(s->rx);
	s->state = TR__SK_CLOSING;
	s->drained_want = false;
	if (!s->tx_busy)
		tx_start(s, true);
	if (s->state != TR__SK_CLOSING)
		return; /* a write failed: closed */
	if (!s->tx_busy) {
		close_now(s); /* all written */
		return;
	}
	if (!s->ctl_busy) {
		s->ctl_busy = true;
		nng_sleep_aio((nng_duration)s->linger_ms, s->ctl);
	}
}

void tr__sk_conn_close(tr__sock_slot *s, bool owner_exit)
{
	(void)owner_exit;
	s->rwant = false;
	switch (s->state) {
	case TR__SK_CONNECTING:
		s->state = TR__SK_DEAD;
		if (s->dialer != NULL)
			nng_stream_dialer_close(s->dialer);
		break;
	case TR__SK_OPEN:
		close_flush(s);
		break;
	case TR__SK_FAILED:
		s->state = TR__SK_DEAD;
		break;
	default:
		break;
	}
	tr__sk_release_check(s);
}

void tr__sk_conn_start(tr__sock_slot *s)
{
	if (s->rwant)
		rx_run(s);
	if (s->state == TR__SK_OPEN && !s->tx_busy)
		tx_start(s, true);
}
