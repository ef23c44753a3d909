/*
 * Sending to other nodes: every remote send is encoded straight into its
 * peer's open batch under the peer lock; batches are cut into frames and
 * queued, and one frame per peer is written at a time (docs/distribution.md,
 * "Batching, flushing, order" and "Backpressure").
 *
 * Threads: any thread that sends to a remote pid runs node_send. A flushing
 * thread writes its peer's next frame itself when the connection is idle
 * and takes it at once (send_direct); otherwise the peer's connection
 * writes queued frames out in order in the background (tr__send_cb).
 */
#include "node_int.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static bool on_our_sched(struct tr_node *n)
{
	return tr__dist_in_turn(n->rt);
}

static bool q_push(struct tr__peer *p, nng_msg *m)
{
	if (p->qn == p->qcap) {
		uint32_t c = p->qcap ? p->qcap * 2 : 16;
		nng_msg **v = malloc((size_t)c * sizeof(*v));
		if (v == NULL)
			return false;
		for (uint32_t i = 0; i < p->qn; i++)
			v[i] = p->q[(p->qhead + i) % p->qcap];
		free(p->q);
		p->q = v;
		p->qhead = 0;
		p->qcap = c;
	}
	p->q[(p->qhead + p->qn) % p->qcap] = m;
	p->qn++;
	p->queued += nng_msg_len(m);
	return true;
}

/* Closes the open batch into a Frame and queues it (peer lock held). */
static void cut(struct tr_node *n, struct tr__peer *p)
{
	nng_msg *b = p->batch;
	p->run_open = false;
	if (b == NULL)
		return;
	p->batch = NULL;
	atomic_fetch_add_explicit(&p->tx_msgs, p->nenv, memory_order_relaxed);
	p->nenv = 0;
	size_t bl = nng_msg_len(b);
	p->batch_hint = (uint32_t)(bl < TR__NODE_BATCH_BYTES + 512
	                               ? bl
	                               : TR__NODE_BATCH_BYTES + 512);
	uint8_t h[11];
	h[0] = 0x22; /* Frame.batch: field 4, length-delimited */
	size_t hl = 1 + tr__varint_put(h + 1, nng_msg_len(b));
	atomic_fetch_add_explicit(&p->tx_bytes, bl + hl, memory_order_relaxed);
	if (nng_msg_insert(b, h, hl) != 0 || !q_push(p, b)) {
		nng_msg_free(b);
		tr__node_logf(
		    n, "out of memory: a batch to %s was lost", p->name);
	}
}

/* The next frame to hand to the send aio, if it is idle (lock held). */
nng_msg *tr__kick_locked(struct tr__peer *p)
{
	if (p->busy || p->qn == 0 || p->state == TR__PS_DOWN || p->out == NULL)
		return NULL;
	nng_msg *m = p->q[p->qhead];
	p->qhead = (p->qhead + 1) % p->qcap;
	p->qn--;
	p->busy = true;
	p->inflight = nng_msg_len(m);
	return m;
}

/* Frees the send slot (lock held). The holder touches neither aio after
 * this, so on a peer that is down it wakes tr__teardown, which waits for the
 * slot before it frees them. */
static void slot_release_locked(struct tr__peer *p)
{
	p->inflight = 0;
	p->busy = false;
	if (p->state == TR__PS_DOWN)
		pthread_cond_broadcast(&p->idle);
}

/* Never called with the peer lock held: sp_out.c may report a failed frame
 * on the calling thread. */
void tr__start_send(struct tr__peer *p, nng_msg *m)
{
	tr__sp_out_send(p->out, m, true);
}

/* The end of a frame taken by tr__kick_locked (sp_out.c's report). */
void tr__send_cb(void *arg, int rv)
{
	struct tr__peer *p = arg;
	pthread_mutex_lock(&p->lock);
	p->queued -= p->inflight;
	slot_release_locked(p);
	nng_msg *next = rv == 0 ? tr__kick_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	if (next != NULL)
		tr__start_send(p, next);
}

/* Sends `m`, taken by tr__kick_locked (so `busy` is set and no other frame of
 * this peer can go out meanwhile), on the calling thread when the
 * connection is idle and the socket takes it at once: a round trip then
 * crosses no thread of ours or nng's on the way out, and no report comes
 * back. Otherwise the connection writes it in the background and tr__send_cb
 * reports it. Order is kept: the next frame is only taken once this one
 * is written. Not with the peer lock held (see tr__start_send). */
static void send_direct(struct tr__peer *p, nng_msg *m)
{
	while (m != NULL) {
		size_t len = nng_msg_len(m);
		if (!tr__sp_out_send_now(p->out, m))
			return; /* tr__send_cb reports it */
		pthread_mutex_lock(&p->lock);
		p->queued -= len;
		slot_release_locked(p);
		m = tr__kick_locked(p);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Cuts the open batch and sends what is queued. `direct`: on this
 * thread as far as the socket takes it at once when the connection is
 * idle (send_direct, which never waits for room: the rest goes by nng's
 * threads), for schedulers at the end of a turn and for threads of the
 * application. The node's own threads (the ticker, nng's threads
 * answering a peer) pass false. */
void tr__flush_peer(struct tr_node *n, struct tr__peer *p, bool direct)
{
	pthread_mutex_lock(&p->lock);
	if (p->nenv != 0)
		cut(n, p);
	nng_msg *m = tr__kick_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (m != NULL && direct)
		send_direct(p, m);
	else if (m != NULL)
		tr__start_send(p, m);
}

#define TR__RUN_NONE 1 /* tr__run_put: the message cannot join the open run */
#define BATCH_FIRST 1024u /* bytes first reserved for a batch */

/* Makes room for `need` bytes in a batch, doubling its buffer: nng grows
 * a message to the exact size asked (so appends would copy it each time)
 * and zero-fills new buffers, so a batch starts small (a round trip's
 * frame is tens of bytes) and grows as it fills. The headroom nng leaves
 * in front of a new message takes the frame header (cut). */
static int batch_room(nng_msg *b, size_t need)
{
	size_t cap = nng_msg_capacity(b);
	if (need <= cap)
		return 0;
	size_t c = cap * 2 > BATCH_FIRST ? cap * 2 : BATCH_FIRST;
	return nng_msg_reserve(b, c > need ? c : need);
}

/* Adds a message with key `k` to the open run of the batch as one more
 * entry of its envelope's `more` (peer lock held, state checked): a
 * stream of sends from one actor to one target then costs a payload and
 * two bytes each on the wire, and no header to encode or decode. Returns
 * TR_OK, TR_EAGAIN (bounded, and the queue is full), or TR__RUN_NONE when
 * the message must start an envelope of its own: no run is open, its key
 * differs, the peer's minor predates `more`, or the batch is full. */
int tr__run_put(struct tr_node *n, struct tr__peer *p,
    const struct tr__runkey *k, const void *data, size_t len, bool bounded)
{
	if (!p->run_open || k->type != p->run_type ||
	    !tr_pid_eq(k->to, p->run_to) || !tr_pid_eq(k->from, p->run_from) ||
	    (k->name != NULL) != p->run_named ||
	    (k->name != NULL && strcmp(k->name, p->run_name) != 0))
		return TR__RUN_NONE;
	size_t blen = nng_msg_len(p->batch);
	size_t hl = 1 + tr__varint_size(len);
	size_t nlen = (size_t)p->run_len + hl + len;
	size_t grow = tr__varint_size(nlen) -
	              tr__varint_size(p->run_len); /* its length prefix */
	size_t add = grow + hl + len;
	if (p->nenv >= TR__NODE_BATCH_ENVS || blen + add > TR__NODE_BATCH_BYTES)
		return TR__RUN_NONE;
	if (bounded && p->queued + blen + add > n->max_queue)
		return TR_EAGAIN;
	if (batch_room(p->batch, blen + add) != 0 ||
	    nng_msg_realloc(p->batch, blen + add) != 0)
		return TR__RUN_NONE;
	uint8_t *b = nng_msg_body(p->batch);
	uint8_t *pre = b + p->run_off + 1; /* the envelope's length */
	if (grow != 0)
		memmove(pre + tr__varint_size(nlen),
		    pre + tr__varint_size(p->run_len), p->run_len);
	(void)tr__varint_put(pre, nlen);
	uint8_t *at = b + blen + grow;
	*at++ = 0x62; /* Envelope.more: field 12, length-delimited */
	at += tr__varint_put(at, len);
	if (len != 0)
		memcpy(at, data, len);
	p->run_len = (uint32_t)nlen;
	p->nenv++;
	if (blen + add >= TR__NODE_BATCH_BYTES ||
	    p->nenv >= TR__NODE_BATCH_ENVS)
		cut(n, p);
	return TR_OK;
}

/* Appends one envelope to the open batch (peer lock held). The caller
 * has checked the state. With a key `k`, the envelope opens a run that
 * later messages with the same key may join (tr__run_put); without, it
 * closes the open run. */
int tr__env_put(struct tr_node *n, struct tr__peer *p, const Env *e,
    bool bounded, const struct tr__runkey *k)
{
	size_t sz = tr__envelope_size(e);
	uint8_t h[11];
	h[0] = 0x0a; /* Batch.envelopes: field 1, length-delimited */
	size_t hl = 1 + tr__varint_put(h + 1, sz);
	size_t blen = p->batch != NULL ? nng_msg_len(p->batch) : 0;
	if (bounded && p->queued + blen + hl + sz > n->max_queue)
		return TR_EAGAIN;
	if (p->nenv != 0 && blen + hl + sz > TR__NODE_BATCH_BYTES) {
		cut(n, p);
		blen = 0;
	}
	if (p->batch == NULL) {
		if (nng_msg_alloc(&p->batch, 0) != 0)
			return TR_ENOMEM;
		/* As big as the last one: a stream's batches are all full,
		 * and each doubling is a copy into a zero-filled buffer. */
		if (p->batch_hint > BATCH_FIRST)
			(void)nng_msg_reserve(p->batch, p->batch_hint);
	}
	if (batch_room(p->batch, blen + hl + sz) != 0 ||
	    nng_msg_append(p->batch, h, hl) != 0)
		return TR_ENOMEM;
	if (nng_msg_realloc(p->batch, blen + hl + sz) != 0) {
		(void)nng_msg_chop(p->batch, hl);
		return TR_ENOMEM;
	}
	uint8_t *at = (uint8_t *)nng_msg_body(p->batch) + blen + hl;
	(void)tr__envelope_pack(e, at);
	p->nenv++;
	p->run_open =
	    k != NULL && (k->name == NULL || strlen(k->name) <= TR_NAME_MAX);
	if (p->run_open) {
		p->run_off = (uint32_t)blen;
		p->run_len = (uint32_t)sz;
		p->run_to = k->to;
		p->run_from = k->from;
		p->run_type = k->type;
		p->run_named = k->name != NULL;
		if (k->name != NULL)
			strcpy(p->run_name, k->name);
	}
	if (nng_msg_len(p->batch) >= TR__NODE_BATCH_BYTES ||
	    p->nenv >= TR__NODE_BATCH_ENVS)
		cut(n, p);
	return TR_OK;
}

int tr__frame_put(
    struct tr_node *n, struct tr__peer *p, uint8_t *buf, size_t len)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, len) != 0) {
		free(buf);
		return TR_ENOMEM;
	}
	memcpy(nng_msg_body(m), buf, len);
	free(buf);
	pthread_mutex_lock(&p->lock);
	if (p->nenv != 0)
		cut(n, p);
	bool ok = p->state != TR__PS_DOWN && q_push(p, m);
	nng_msg *out = tr__kick_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (!ok)
		nng_msg_free(m);
	if (out != NULL)
		tr__start_send(p, out);
	return ok ? TR_OK : TR_ECLOSED;
}

/* Sends one envelope the node makes itself (an answer, a heartbeat), and
 * flushes it: these are rare and often awaited. */
int tr__env_send_now(
    struct tr_node *n, struct tr__peer *p, const Env *e, bool direct)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->state == TR__PS_UP ? tr__env_put(n, p, e, false, NULL)
	                               : TR_ENOPROC;
	pthread_mutex_unlock(&p->lock);
	if (rc == TR_OK)
		tr__flush_peer(n, p, direct);
	return rc;
}

/* The end of a put made under p->lock: unlocks, and starts the send of a
 * batch that is due (rc TR_OK). */
static void unlock_kick(struct tr__peer *p, int rc)
{
	nng_msg *out = rc == TR_OK ? tr__kick_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	if (out != NULL)
		tr__start_send(p, out);
}

/* ---- the dirty list ------------------------------------------------------
 *
 * A put in a scheduler's turn leaves its batch to the flush at the turn's
 * end (tr__flush_all), which visits only the peers such puts marked: an
 * intrusive stack, n->dirty linked through p->dnext, on which a put pushes
 * its peer when it turns p->dirty from 0 to 1, and which a flush takes
 * whole with one exchange. A flush thus costs the peers it has to write,
 * however many peers the node has known. Taking the whole stack, never
 * one entry, leaves no ABA to fear: a push only needs the head it read to
 * be the head still.
 *
 * p->dirty is 1 from the exchange that decides to push p until the flush
 * that took the stack clears it. Meanwhile p is with its pusher, on the
 * stack, or with that flush, and nobody else pushes it: p->dnext has one
 * writer at a time, and the flush reads it before the clear.
 *
 * No mark is lost. A put encodes under the peer lock and marks after it
 * unlocks; a flush clears p->dirty before it locks to cut. If the flush
 * locks after the put unlocked, it cuts the put's envelopes. If it locked
 * first, its clear happens before the put's mark, which then reads 0 (or
 * the 1 of a later put, which pushed p) and pushes p again, for the next
 * flush: a peer made dirty while a flush holds it is flushed again, at
 * worst for nothing.
 *
 * Lifetime: every pusher holds p inside an ebr section, and flushes on a
 * scheduler run inside one (op_flush); the ticker, whose flush is outside,
 * is the thread that frees. tr__peer_reclaim frees a retired peer only one
 * grace period after it has seen p->dirty 0, once nobody can push it. */

static void mark_dirty(struct tr_node *n, struct tr__peer *p)
{
	/* Acquire: pairs with the release clear in tr__flush_all, so that
	 * the flush's read of p->dnext happens before the write below. */
	if (atomic_exchange_explicit(&p->dirty, 1, memory_order_acquire) != 0)
		return;
	struct tr__peer *h =
	    atomic_load_explicit(&n->dirty, memory_order_relaxed);
	do
		p->dnext = h;
	/* Release: pairs with the acquire exchange in tr__flush_all, which
	 * then reads this p->dnext. */
	while (!atomic_compare_exchange_weak_explicit(
	    &n->dirty, &h, p, memory_order_release, memory_order_relaxed));
}

void tr__flush_all(struct tr_node *n, bool direct)
{
	/* Acquire: pairs with the release of every push before it (each
	 * push and take is a read-modify-write of n->dirty, so the pushes'
	 * release sequences reach this exchange). */
	struct tr__peer *p =
	    atomic_exchange_explicit(&n->dirty, NULL, memory_order_acquire);
	while (p != NULL) {
		struct tr__peer *nx = p->dnext;
		/* Release: pairs with the acquire exchange of p's next push
		 * (which writes p->dnext, read just above) and with the
		 * acquire load in tr__peer_reclaim. Before the lock in
		 * tr__flush_peer: see "No mark is lost". The peers after p
		 * are still marked, so still kept from being freed. */
		atomic_store_explicit(&p->dirty, 0, memory_order_release);
		tr__flush_peer(n, p, direct);
		p = nx;
	}
}

/* After a put: a caller in a scheduler's turn (`in_turn`) leaves the
 * batch to the flush at the turn's end; any other (a plain thread's
 * tr_post, tr_call, a port; a runtime being torn down) gets no end of
 * turn, so the batch goes now, or a call would wait for the tick. */
static void flush_after_put(struct tr_node *n, struct tr__peer *p, bool in_turn)
{
	if (in_turn)
		mark_dirty(n, p);
	else
		tr__flush_peer(n, p, true);
}

int tr__ask_send(struct tr_node *n, struct tr__peer *p, const Env *e,
    tr_pid loc, uint64_t ref)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->state == TR__PS_UP ? tr__env_put(n, p, e, false, NULL)
	                               : TR_ENOPROC;
	if (rc == TR_OK)
		tr__xask_add(p, ref, loc);
	unlock_kick(p, rc);
	if (rc != TR_OK)
		return rc;
	flush_after_put(n, p, on_our_sched(n));
	return TR_OK;
}

/* ---- sending (the dist hook) -------------------------------------------- */

enum {
	BK_NONE,
	BK_LINK_ADD,
	BK_LINK_DEL,
	BK_MON_MINE_ADD,
	BK_MON_MINE_DEL,
	BK_MON_THEIRS_DEL
};

/* A LINK or MONITOR for a pid of a node that is not connected: it would
 * have fired with noconnection had the connection been lost after it was
 * made, so it fires now (Erlang answers a monitor or link to a node it
 * cannot reach the same way): the sender gets DOWN noconnection, or an
 * exit signal noconnection through the link, from `to`. A pid of an
 * earlier incarnation of a node that is up again is stale, not
 * unreachable: TR_ENOPROC, and the runtime answers noproc. */
static int answer_unreachable(
    struct tr_node *n, struct tr__peer *p, tr_pid to, tr_msg *m)
{
	tr_pid from = m->sender;
	if (from.node != 0 || tr_pid_is_none(from))
		return TR_ENOPROC;
	pthread_mutex_lock(&n->lock);
	bool stale = tr__peer_up(n, p->name) != NULL;
	pthread_mutex_unlock(&n->lock);
	if (stale)
		return TR_ENOPROC;
	int rc;
	if (m->type == TR__SIG_MONITOR) {
		rc = tr__inject_down(
		    n, NULL, from, to, m->ref, TR_REASON_NOCONNECTION, "");
	} else {
		tr_exit_info info;
		tr__exit_info(&info, to, TR_REASON_NOCONNECTION, "");
		rc = tr__inject_sig(
		    n, NULL, from, TR__SIG_EXIT, TR__MF_VIALINK, 0, to, &info);
	}
	if (rc != TR_OK)
		return rc;
	tr__dist_msg_free(m);
	return TR_OK;
}

static int node_send(struct tr_node *n, tr_pid to, tr_msg *m)
{
	struct tr__peer *p = tr__peer_at(n, to.node);
	if (p == NULL)
		return TR_ENOPROC;
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wto, wfrom;
	tr_exit_info info;
	tr_pid from = m->sender;
	int bk = BK_NONE;
	uint32_t f = m->_flags;
	bool plain = false; /* may join a run */
	if ((f & TR__MF_SIGNAL) != 0) {
		e.ref = m->ref;
		switch (m->type) {
		case TR__SIG_LINK:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_LINK;
			bk = BK_LINK_ADD;
			break;
		case TR__SIG_UNLINK:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_UNLINK;
			bk = BK_LINK_DEL;
			break;
		case TR__SIG_EXIT:
			if (m->size != sizeof(info))
				return TR_EINVAL;
			memcpy(&info, m->data, sizeof(info));
			info.text[sizeof(info.text) - 1] = '\0';
			e.control = TROUPE__WIRE__CONTROL__CONTROL_EXIT;
			e.reason = info.reason;
			e.reason_text = info.text;
			if ((f & TR__MF_VIALINK) != 0) {
				e.flags = TR__ENV_VIALINK;
				bk = BK_LINK_DEL;
			}
			break;
		case TR__SIG_MONITOR:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_MONITOR;
			bk = BK_MON_MINE_ADD;
			break;
		case TR__SIG_DEMONITOR:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_DEMONITOR;
			bk = BK_MON_MINE_DEL;
			break;
		default:
			return TR_EINVAL;
		}
	} else if ((f & TR__MF_DOWN) != 0) {
		if (m->size != sizeof(info))
			return TR_EINVAL;
		memcpy(&info, m->data, sizeof(info));
		info.text[sizeof(info.text) - 1] = '\0';
		e.control = TROUPE__WIRE__CONTROL__CONTROL_DOWN;
		e.ref = m->ref;
		e.reason = info.reason;
		e.reason_text = info.text;
		from = info.pid;
		bk = BK_MON_THEIRS_DEL;
	} else {
		/* Timeouts are local, and so are the types that say so. */
		if ((f & TR__MF_RTIMEO) != 0 || tr_msg_type_local(m->type))
			return TR_EINVAL;
		e.type = m->type;
		e.payload.data = m->data;
		e.payload.len = m->size;
		e.ref = m->ref;
		if ((f & TR__MF_REPLY) != 0)
			e.flags = TR__ENV_REPLY;
		plain = e.ref == 0 && e.flags == 0;
	}
	tr__pid_out(n, to, &wto);
	e.to = &wto;
	if (!tr_pid_is_none(from)) {
		tr__pid_out(n, from, &wfrom);
		e.from = &wfrom;
	}
	struct tr__runkey k = {to, from, m->type, NULL};
	/* Messages, but not replies (the target waits for them) nor
	 * signals (never starved), stop at a target that said BUSY. */
	bool stoppable =
	    (f & (TR__MF_SIGNAL | TR__MF_DOWN | TR__MF_REPLY)) == 0;
	pthread_mutex_lock(&p->lock);
	int rc = TR_ENOPROC;
	bool down = p->state != TR__PS_UP;
	if (stoppable && p->nbusy != 0 && tr__flow_is_busy(p, to, NULL)) {
		rc = TR_EAGAIN;
		atomic_fetch_add_explicit(
		    &n->n_busy_refused, 1, memory_order_relaxed);
	} else if (p->state == TR__PS_UP &&
	           (!plain || (rc = tr__run_put(n, p, &k, m->data, m->size,
	                           true)) == TR__RUN_NONE))
		rc = tr__env_put(n, p, &e, true, plain ? &k : NULL);
	if (rc == TR_OK) {
		/* DEMONITOR is sent by the watcher, and also when a dying
		 * watcher clears its monitors; DOWN by the target. */
		switch (bk) {
		case BK_LINK_ADD:
			tr__xlink_add(p, from, to);
			break;
		case BK_LINK_DEL:
			tr__xlink_del(p, from, to);
			break;
		case BK_MON_MINE_ADD:
			tr__xmon_add(p, m->ref, from, to, true);
			break;
		case BK_MON_MINE_DEL:
			tr__xmon_del(p, m->ref, true);
			break;
		case BK_MON_THEIRS_DEL:
			tr__xmon_del(p, m->ref, false);
			break;
		}
	}
	unlock_kick(p, rc);
	if (rc == TR_ENOPROC && down &&
	    (bk == BK_LINK_ADD || bk == BK_MON_MINE_ADD))
		return answer_unreachable(n, p, to, m);
	if (rc != TR_OK)
		return rc;
	tr__dist_msg_free(m);
	flush_after_put(n, p, on_our_sched(n));
	/* After the put: a process child that this kills at once must not
	 * make the send itself fail. */
	if (e.control == TROUPE__WIRE__CONTROL__CONTROL_EXIT &&
	    (e.flags & TR__ENV_VIALINK) == 0)
		tr__proc_exit_sent(n, p->name, to, e.reason);
	return TR_OK;
}

/* The hook's entry points hold entry pointers inside an ebr section. The
 * runtime never calls them once tr__dist_detach has returned. */
static int op_send(void *arg, tr_pid to, tr_msg *m)
{
	struct tr_node *n = arg;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	int rc = node_send(n, to, m);
	tr__node_ebr_exit(&n->ebr, k);
	return rc;
}

static void op_flush(void *arg)
{
	struct tr_node *n = arg;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	tr__flush_all(n, true);
	tr__node_ebr_exit(&n->ebr, k);
}

/* Reads the hot inbound connections (sp.h, "Polled reads") on an idle or
 * between-turns scheduler: their frames go through frame_in there, and
 * what they deliver lands in that scheduler's run queue. */
static unsigned op_poll(void *arg, unsigned mode, unsigned sched)
{
	struct tr_node *n = arg;
	int m = mode == TR__DIST_POLL_IDLE   ? TR__SP_POLL_IDLE
	        : mode == TR__DIST_POLL_BUSY ? TR__SP_POLL_BUSY
	                                     : TR__SP_POLL_PARK;
	unsigned r = tr__sp_in_poll(n->in, m, sched + 1);
	return ((r & TR__SP_POLL_GOT) != 0 ? TR__DIST_POLL_GOT : 0u) |
	       ((r & TR__SP_POLL_HOT) != 0 ? TR__DIST_POLL_HOT : 0u);
}

const tr__dist_ops tr__node_ops = {
    .send = op_send,
    .flush = op_flush,
    .drained = tr__flow_drained,
    .name = tr__node_op_name,
    .whereis = tr__node_op_whereis,
    .poll = op_poll,
};
int tr__ctx_put(tr_ctx *ctx, struct tr_node *n, struct tr__peer *p, Env *e,
    const struct tr__runkey *k, WPid *wf)
{
	pthread_mutex_lock(&p->lock);
	int rc = TR_ENOPROC;
	if (k != NULL && k->name != NULL && p->nbusy != 0 &&
	    tr__flow_is_busy(p, TR_PID_NONE, k->name)) {
		rc = TR_EAGAIN;
		atomic_fetch_add_explicit(
		    &n->n_busy_refused, 1, memory_order_relaxed);
	} else if (p->state == TR__PS_UP &&
	           (k == NULL || (rc = tr__run_put(n, p, k, e->payload.data,
	                              e->payload.len, true)) == TR__RUN_NONE)) {
		if (e->from == NULL && wf != NULL) {
			tr__pid_out(n, k->from, wf);
			e->from = wf;
		}
		rc = tr__env_put(n, p, e, true, k);
	}
	unlock_kick(p, rc);
	if (rc != TR_OK)
		return rc;
	/* tr__dist_turn_dirty is false for a callback on no scheduler (a
	 * runtime being torn down). */
	flush_after_put(n, p, tr__dist_turn_dirty(ctx));
	return TR_OK;
}

void tr__out_drop_locked(struct tr__peer *p)
{
	if (p->batch != NULL)
		nng_msg_free(p->batch);
	p->batch = NULL;
	p->nenv = 0;
	p->run_open = false;
	while (p->qn != 0) {
		nng_msg_free(p->q[p->qhead]);
		p->qhead = (p->qhead + 1) % p->qcap;
		p->qn--;
	}
	free(p->q);
	p->q = NULL;
	p->qcap = 0;
	p->queued = 0;
}
