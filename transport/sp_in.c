/*
 * The inbound side of the connection layer: one connection, from its
 * accept to its free. Its read side (delivering frames, parking while
 * paused, handing itself to the pollers of sp_poll.c when hot), its close
 * and the report of its loss, and the calls on one connection: trust,
 * pause, resume, drop, listener_of, quiet_ms. See sp.h for the contract,
 * sp_in_int.h for the structures, sp_int.h for the locks.
 */
#include "sp_in_int.h"

#include <stdlib.h>

#define ACCEPT_PAUSE_MS 100

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

/* Wakes a parked read side (in->mtx held): its callback runs it on an
 * nng thread. */
void tr__sp_kick_locked(struct inconn *c)
{
	c->parked = false;
	c->rx_busy = true;
	/* Fails only once the aio is stopped, in tr__sp_in_free, which then
	 * deals with the connection itself. */
	if (nng_aio_begin(c->kick))
		nng_aio_finish(c->kick, 0);
}

/* Closes the connection's stream (in->mtx held): its pending read fails,
 * or its parked or polled read side is woken, and the read side reports
 * the loss. A poller reading it now sees the close when it is done. */
void tr__sp_close_locked(struct inconn *c)
{
	ulist_remove(c);
	if (atomic_load_explicit(&c->closed, memory_order_relaxed))
		return;
	atomic_store_explicit(&c->closed, true, memory_order_relaxed);
	nng_stream_close(c->st);
	if (c->parked)
		tr__sp_kick_locked(c);
	else if (c->polled && !c->polling)
		tr__sp_demote_locked(c);
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
		tr__sp_sweep_want_locked(c->in, nng_clock() + REAP_MS);
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
	tr__sp_close_locked(c);
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

/* Hands over every whole frame buffered, until the parser needs more bytes
 * or the connection is closed, paused or broke the protocol. Run by the
 * read side's owner (its callback, or the poller holding it). */
int tr__sp_rx_deliver(struct inconn *c)
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

/* The read side: hands over every whole frame buffered, then reads on,
 * unless the connection is paused (it parks), lost (it reports so) or
 * hot (it goes to the pollers). */
static void rx_run(struct inconn *c)
{
	tr__sp_in *in = c->in;
	for (;;) {
		int d = tr__sp_rx_deliver(c);
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
		c->fd = c->ls->tls || c->ls->ipc ? -1 : tr__stream_fd(c->st, true);
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
		/* Never start a read on a closed stream (sp_int.h). */
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
	if (tr__sp_hot_ok_locked(c)) {
		/* rx_busy stays set: the read side is the pollers' now. */
		c->hot = false;
		c->polled = true;
		c->poll_ns = tr__sp_now_ns();
		tr__sp_hot_append_locked(c);
		atomic_fetch_add_explicit(&in->nhot, 1, memory_order_relaxed);
		in->st.promoted++;
		tr__sp_hwatch_want_locked(in);
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
void tr__sp_rx_note(struct inconn *c, uint64_t t)
{
	tr__sp_in *in = c->in;
	uint64_t w = tr__sp_window_of(in);
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
	tr__sp_rx_note(c, tr__sp_now_ns());
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
		tr__sp_close_locked(c);
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

void tr__sp_conn_free(struct inconn *c)
{
	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	nng_aio_free(c->kick);
	if (c->st != NULL)
		nng_stream_free(c->st);
	tr__sp_parse_fini(&c->parse);
	free(c);
}

static void accept_pause(struct lsn *ls)
{
	ls->sleeping = true;
	nng_sleep_aio(ACCEPT_PAUSE_MS, ls->aio);
}

void tr__sp_accept_cb(void *arg)
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
			tr__sp_conn_free(c);
		}
		nng_stream_free(st);
		accept_pause(ls);
		return;
	}
	pthread_mutex_lock(&in->mtx);
	if (in->closing) {
		pthread_mutex_unlock(&in->mtx);
		tr__sp_conn_free(c);
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
		tr__sp_close_locked(ls->uhead);
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
	tr__sp_sweep_want_locked(in, c->deadline);
	pthread_mutex_unlock(&in->mtx);
	nng_stream_listener_accept(ls->l, ls->aio);
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
			tr__sp_kick_locked(c);
	}
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_drop(tr__sp_in *in, uint32_t id)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *c = conn_find(in, id);
	if (c != NULL)
		tr__sp_close_locked(c); /* the read side reports the loss */
	pthread_mutex_unlock(&in->mtx);
}
