/*
 * Polled reads, the inbound side's hot connections read by the callers of
 * tr__sp_in_poll (sp.h, "Polled reads"). See sp_in_int.h for the
 * structures, sp_int.h for the locks.
 *
 * A hot connection's read side can be handed from nng's threads to the
 * callers of tr__sp_in_poll (a node's idle schedulers): rx_run (sp_in.c),
 * instead of starting the background read, puts the connection on
 * in->hot, and a poller then reads its socket itself, without waiting
 * (MSG_DONTWAIT), so a poll never waits and costs one syscall (two after a
 * read: the first sends the acknowledgement owed for the bytes read the
 * time before, so that it leaves after the reply the actor wrote
 * meanwhile; see ack_late and docs/distribution.md, "Acknowledged after
 * the reply"). What it reads it hands over itself (tr__sp_rx_deliver), so
 * a frame that arrives while a scheduler polls reaches its actor with no
 * thread woken at all.
 *
 * At most one poller reads a connection at a time (`polling`, under the
 * mutex); while one does, the connection stays on in->hot but is skipped.
 * Anything but bytes or nothing (the stream closed or failed, the
 * connection paused or refused, no room) and a window with nothing read
 * hand the read side back with a kick (tr__sp_demote_locked): it then
 * runs on an nng thread as before, which reports what there is to report,
 * so `gone` and `refused` are never called by a poller. The watch
 * (hwatch), armed while anything is hot, takes back what no poller has
 * looked at for STRAND_NS: pollers that all went busy or to sleep leave a
 * connection to the background within that time.
 */
#include "sp_in_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define STRAND_NS 5000000u /* 5 ms */
#define WATCH_MS 10
#define BUSY_EVERY_NS 20000u

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

void tr__sp_hot_append_locked(struct inconn *c)
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

/* Sets the socket's TCP_QUICKACK: 0 holds ACKs back, 2 sends what is
 * owed and keeps holding, 1 sends it and lets the kernel ACK on its own
 * (the mode in which nng's threads read). */
static void quickack(const struct inconn *c, int v)
{
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &v, sizeof v);
}

/* Takes a polled read side back from the pollers (in->mtx held, no poller
 * reading it): a kick runs it on an nng thread, which delivers what is
 * buffered and reads on in the background, or reports what stopped it. */
void tr__sp_demote_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	if (c->ack_late) {
		quickack(c, 1);
		c->ack_late = c->ack_owed = false;
	}
	hot_remove_locked(c);
	c->polled = false;
	c->owner = 0;
	atomic_fetch_sub_explicit(&in->nhot, 1, memory_order_relaxed);
	tr__sp_kick_locked(c);
}

/* Whether the read side should go to the pollers rather than read on in
 * the background (in->mtx held): a trusted connection whose socket was
 * found (tcp://, not TLS: tr__stream_fd), whose last two reads came within
 * HOT_GAP windows of each other, while a poller is awake to read it. */
bool tr__sp_hot_ok_locked(struct inconn *c)
{
	tr__sp_in *in = c->in;
	return c->hot && tr__sp_window_of(in) != 0 && !in->closing &&
	       c->fd >= 0 &&
	       atomic_load_explicit(&c->trusted, memory_order_relaxed) &&
	       (in->awake == NULL || in->awake(in->awake_arg));
}

void tr__sp_hwatch_want_locked(tr__sp_in *in)
{
	if (in->hwatch_armed || in->closing)
		return;
	in->hwatch_armed = true;
	nng_sleep_aio(WATCH_MS, in->hwatch);
}

void tr__sp_hwatch_cb(void *arg)
{
	tr__sp_in *in = arg;
	uint64_t t = tr__sp_now_ns();
	pthread_mutex_lock(&in->mtx);
	in->hwatch_armed = false;
	for (struct inconn *c = in->hot, *nx; c != NULL; c = nx) {
		nx = c->hnext;
		if (!c->polling && t - c->poll_ns > STRAND_NS) {
			in->st.stranded++;
			tr__sp_demote_locked(c);
		}
	}
	if (in->hot != NULL)
		tr__sp_hwatch_want_locked(in);
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
		tr__sp_demote_locked(c);
		return 0;
	}
	pthread_mutex_unlock(&in->mtx);
	/* Straight from the kernel: one syscall, with or without bytes, and
	 * nng's poller left alone (a read through the stream that found
	 * nothing would arm it, and the next bytes would wake its thread for
	 * nothing). nng reads a TCP stream into the caller's buffer, keeping
	 * nothing back, and it has no read of its own pending while the
	 * connection is polled, so the bytes come in order. The socket stays
	 * open until tr__sp_conn_free, which waits for this poller (the
	 * connection stays polled while `polling`), so the descriptor is
	 * still ours. The end of the stream, or an error, goes back to nng's
	 * thread (demote below), whose read sees the end of the stream and
	 * reports the loss.
	 *
	 * First, the ACK of what the last poll read, which the kernel was
	 * told to hold back (TCP_QUICKACK 0 on the first poll): this poll
	 * comes after the actor's turn, whose reply went out at its end, so
	 * the ACK follows the reply instead of delaying the actor. 2 sends
	 * what is owed and keeps the delayed mode; demote sets 1. */
	if (!c->ack_late || c->ack_owed) {
		quickack(c, c->ack_late ? 2 : 0);
		c->ack_late = true;
		c->ack_owed = false;
	}
	ssize_t k = recv(c->fd, at, room, MSG_DONTWAIT);
	size_t n = k > 0 ? (size_t)k : 0;
	/* The end of the stream, or an error: nng's thread reports it. */
	bool ended = k == 0 || (k < 0 && errno != EAGAIN &&
	                           errno != EWOULDBLOCK && errno != EINTR);
	int d = D_NEED;
	if (n != 0) {
		c->ack_owed = true;
		tr__sp_parse_commit(&c->parse, n);
		tr__sp_rx_note(c, t);
		d = tr__sp_rx_deliver(c);
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
	uint64_t quiet = mode == TR__SP_POLL_BUSY
	                     ? HOT_GAP * tr__sp_window_of(in)
	                     : tr__sp_window_of(in);
	if (d != D_NEED || ended ||
	    atomic_load_explicit(&c->closed, memory_order_relaxed) ||
	    (n == 0 && t - c->rx_ns > quiet))
		tr__sp_demote_locked(c);
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
	uint64_t t = tr__sp_now_ns();
	unsigned out = 0;
	pthread_mutex_lock(&in->mtx);
	if (mode == TR__SP_POLL_PARK) {
		for (struct inconn *c = in->hot, *nx; c != NULL; c = nx) {
			nx = c->hnext;
			if (!c->polling && (c->owner == who || c->owner == 0))
				tr__sp_demote_locked(c);
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
		tr__sp_hot_append_locked(c);
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
