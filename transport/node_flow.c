/*
 * Flow control of what other nodes send here: the receiving node's memory
 * is bounded, the sender sees backpressure (TR_EAGAIN), signals and
 * heartbeats are never starved, and one slow actor does not stall traffic
 * to the others. docs/distribution.md, "Flow control", has the reasons and
 * the trade-offs; in short:
 *
 * - Per actor (Pony's muting, across the wire). The runtime counts the
 *   bytes of remote messages in each actor's mailbox (its backlog). A
 *   frame's messages for an actor at or over recv_actor_max are held back
 *   here, per sending peer and target, in arrival order, and the peer is
 *   told BUSY for that actor: its sends to it then fail with TR_EAGAIN
 *   until READY. When the actor has worked its backlog down to half, the
 *   runtime calls `drained`; the control thread then delivers what was held
 *   back and sends READY. Signals for an actor with messages held back wait
 *   behind them (per-pair order), signals for any other actor do not.
 * - Per peer: what is held back for a peer is what it sent before BUSY
 *   reached it: what its queue for us held then, and one round trip. A
 *   peer with more than park_max held back (twice the default max_queue,
 *   or twice recv_actor_max; more means it ignores BUSY) has its
 *   connection paused: nothing more is read from it, TCP pushes back, and
 *   its own queue fills to TR_EAGAIN.
 * - Per node: when the backlog of all actors plus what is held back passes
 *   recv_max, every connection is paused until it is below three quarters
 *   of it. A paused connection is not counted as silent by the failure
 *   detector (we stopped reading, the peer did not stop talking), and our
 *   own heartbeats to the peer go on, so nobody is declared down.
 */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNPARK_RUN 64u /* messages handed over at once */

/* ---- holding back (flow lock) ------------------------------------------- */

static struct tr__park *park_find(struct tr__peer *p, tr_pid to)
{
	for (struct tr__park *k = p->parks; k != NULL; k = k->next)
		if (tr_pid_eq(k->to, to))
			return k;
	return NULL;
}

static void park_append(
    struct tr_node *n, struct tr__peer *p, struct tr__park *k, tr_msg *m)
{
	size_t b = tr__dist_rin_size(m);
	tr__dist_msg_set_next(m, NULL);
	if (k->tail != NULL)
		tr__dist_msg_set_next(k->tail, m);
	else
		k->head = m;
	k->tail = m;
	k->bytes += b;
	atomic_fetch_add_explicit(&p->parked, b, memory_order_relaxed);
	atomic_fetch_add_explicit(&n->parked_total, b, memory_order_relaxed);
}

static struct tr__park *park_new(
    struct tr__peer *p, tr_pid to, const char *name)
{
	struct tr__park *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return NULL;
	k->to = to;
	if (name != NULL && strlen(name) <= TR_NAME_MAX)
		strcpy(k->name, name);
	k->next = p->parks;
	p->parks = k;
	atomic_fetch_add_explicit(&p->nparks, 1, memory_order_release);
	return k;
}

static void park_remove(struct tr__peer *p, struct tr__park *k)
{
	for (struct tr__park **kp = &p->parks; *kp != NULL; kp = &(*kp)->next) {
		if (*kp == k) {
			*kp = k->next;
			break;
		}
	}
	atomic_fetch_sub_explicit(&p->nparks, 1, memory_order_release);
	free(k);
}

bool tr__flow_deliver(struct tr_node *n, struct tr__peer *p, tr_pid to,
    const char *name, tr_msg **msgs, uint32_t k)
{
	/* Parks are made only here, on the one thread that reads p's
	 * connection, and removed by the control thread under the flow lock
	 * once everything in them is delivered: seeing none without the lock
	 * means there is none for `to`. */
	if (atomic_load_explicit(&p->nparks, memory_order_acquire) != 0) {
		pthread_mutex_lock(&p->flow);
		struct tr__park *pk = park_find(p, to);
		if (pk != NULL) {
			for (uint32_t i = 0; i < k; i++)
				park_append(n, p, pk, msgs[i]);
			pthread_mutex_unlock(&p->flow);
			return false;
		}
		pthread_mutex_unlock(&p->flow);
	}
	int rc = tr__dist_inject_bounded_locked(
	    n->rt, to, msgs, k, n->recv_actor_max);
	if (rc == TR_OK)
		return false;
	if (rc != TR_EAGAIN) {
		/* A dead or stale target: dropped, as a local send to it. */
		for (uint32_t i = 0; i < k; i++)
			tr__dist_msg_free(msgs[i]);
		return false;
	}
	pthread_mutex_lock(&p->flow);
	struct tr__park *pk = park_new(p, to, name);
	if (pk == NULL) {
		pthread_mutex_unlock(&p->flow);
		/* No memory for the bookkeeping: deliver over the limit rather
		 * than lose messages silently. */
		if (tr__dist_inject_many_locked(n->rt, to, msgs, k) != TR_OK)
			for (uint32_t i = 0; i < k; i++)
				tr__dist_msg_free(msgs[i]);
		return false;
	}
	for (uint32_t i = 0; i < k; i++)
		park_append(n, p, pk, msgs[i]);
	pthread_mutex_unlock(&p->flow);
	return true;
}

bool tr__flow_hold_sig(
    struct tr_node *n, struct tr__peer *p, tr_pid to, tr_msg *m)
{
	if (p == NULL ||
	    atomic_load_explicit(&p->nparks, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&p->flow);
	struct tr__park *pk = park_find(p, to);
	if (pk != NULL)
		park_append(n, p, pk, m);
	pthread_mutex_unlock(&p->flow);
	return pk != NULL;
}

/* ---- BUSY and READY ----------------------------------------------------- */

static void busy_env(struct tr_node *n, struct tr__peer *p, tr_pid to,
    const char *name, Troupe__Wire__Control c)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt;
	tr__pid_out(n, to, &wt);
	e.to = &wt;
	e.control = c;
	if (name != NULL && name[0] != '\0')
		e.name = (char *)name;
	(void)tr__env_send_now(n, p, &e, false);
}

void tr__flow_busy_send(
    struct tr_node *n, struct tr__peer *p, tr_pid to, const char *name)
{
	atomic_fetch_add_explicit(&n->n_busy_sent, 1, memory_order_relaxed);
	busy_env(n, p, to, name, TROUPE__WIRE__CONTROL__CONTROL_BUSY);
}

void tr__flow_busy_in(struct tr_node *n, struct tr__peer *p, const Env *e)
{
	tr_pid to = tr__pid_in(n, p, e->to);
	if (tr_pid_is_none(to) || to.node != p->id)
		return; /* BUSY only ever names an actor of its sender */
	const char *name =
	    e->name != NULL && strlen(e->name) <= TR_NAME_MAX ? e->name : "";
	pthread_mutex_lock(&p->lock);
	uint32_t i = 0;
	while (i < p->nbusy && !tr_pid_eq(p->busy_to[i].pid, to))
		i++;
	if (e->control == TROUPE__WIRE__CONTROL__CONTROL_BUSY) {
		/* A peer names only its own actors, and at most one BUSY is
		 * outstanding per actor: the list is bounded by its actors
		 * that are over their backlog. */
		if (i == p->nbusy &&
		    tr__node_grow((void **)&p->busy_to, p->nbusy, &p->cap_busy,
		        sizeof(*p->busy_to))) {
			p->busy_to[p->nbusy].pid = to;
			strcpy(p->busy_to[p->nbusy].name, name);
			p->nbusy++;
		}
	} else if (i < p->nbusy) {
		p->busy_to[i] = p->busy_to[--p->nbusy];
	}
	pthread_mutex_unlock(&p->lock);
}

bool tr__flow_is_busy(const struct tr__peer *p, tr_pid to, const char *name)
{
	for (uint32_t i = 0; i < p->nbusy; i++) {
		if (name != NULL ? strcmp(p->busy_to[i].name, name) == 0
		                 : tr_pid_eq(p->busy_to[i].pid, to))
			return true;
	}
	return false;
}

/* ---- pausing ------------------------------------------------------------- */

static uint64_t total(struct tr_node *n)
{
	return tr__dist_backlog(n->rt) +
	       atomic_load_explicit(&n->parked_total, memory_order_relaxed);
}

/* Node lock held. */
static void pause_locked(struct tr_node *n, struct tr__peer *p)
{
	if (p->inp == 0)
		return;
	tr__sp_in_pause(n->in, p->inp);
	atomic_fetch_add_explicit(&n->n_pauses, 1, memory_order_relaxed);
}

void tr__flow_after_frame(struct tr_node *n, struct tr__peer *p)
{
	size_t parked = atomic_load_explicit(&p->parked, memory_order_relaxed);
	bool over_peer = parked > n->park_max;
	bool over_node = total(n) > n->recv_max;
	if (!over_peer && !over_node)
		return;
	pthread_mutex_lock(&n->lock);
	if (over_peer && !p->paused && p->state == TR__PS_UP) {
		p->paused = true;
		if (!n->global_paused)
			pause_locked(n, p);
		tr__ratelogf(&n->log_flow, n->rt, 0,
		    "NODE %s: stopped reading from node %s for a while: %zu "
		    "bytes held back for busy actors",
		    n->name, p->name, parked);
	}
	if (over_node && !n->global_paused) {
		n->global_paused = true;
		for (struct tr__peer *q = n->peers; q != NULL; q = q->next)
			if (q->state == TR__PS_UP && !q->paused)
				pause_locked(n, q);
		tr__ratelogf(&n->log_flow, n->rt, 0,
		    "NODE %s: stopped reading from every node: %llu bytes of "
		    "remote messages wait here (recv_max %zu)",
		    n->name, (unsigned long long)total(n), n->recv_max);
	}
	pthread_mutex_unlock(&n->lock);
}

/* ---- draining -------------------------------------------------------------
 */

void tr__flow_drained(void *arg, tr_pid pid)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	if (tr__node_grow((void **)&n->drained, n->ndrained, &n->cap_drained,
	        sizeof(*n->drained)))
		n->drained[n->ndrained++] = pid;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->lock);
}

/* Delivers what `p` holds back for `to`, as much as its backlog takes
 * (node lock held; the control thread). True when nothing is left: READY
 * is owed. */
static bool unpark(struct tr_node *n, struct tr__peer *p, tr_pid to, char *name)
{
	pthread_mutex_lock(&p->flow);
	struct tr__park *pk = park_find(p, to);
	if (pk == NULL) {
		pthread_mutex_unlock(&p->flow);
		return false;
	}
	unsigned rec;
	tr__dist_enter(n->rt, &rec);
	tr_msg *run[UNPARK_RUN];
	for (;;) {
		uint32_t k = 0;
		size_t b = 0;
		for (tr_msg *m = pk->head; m != NULL && k < UNPARK_RUN;
		     m = tr__dist_msg_next(m)) {
			run[k++] = m;
			b += tr__dist_rin_size(m);
		}
		if (k == 0)
			break;
		tr_msg *rest = tr__dist_msg_next(run[k - 1]);
		int rc = tr__dist_inject_bounded_locked(
		    n->rt, to, run, k, n->recv_actor_max);
		if (rc == TR_EAGAIN)
			break; /* it asked to hear of the next drain */
		if (rc != TR_OK)
			for (uint32_t i = 0; i < k; i++)
				tr__dist_msg_free(run[i]);
		pk->head = rest;
		if (rest == NULL)
			pk->tail = NULL;
		pk->bytes -= b;
		atomic_fetch_sub_explicit(&p->parked, b, memory_order_relaxed);
		atomic_fetch_sub_explicit(
		    &n->parked_total, b, memory_order_relaxed);
	}
	tr__dist_exit(n->rt, rec);
	bool done = pk->head == NULL;
	if (done) {
		strcpy(name, pk->name);
		park_remove(p, pk);
	}
	pthread_mutex_unlock(&p->flow);
	return done;
}

void tr__flow_tick(struct tr_node *n)
{
	unsigned k = tr__node_ebr_enter(&n->ebr);
	pthread_mutex_lock(&n->lock);
	while (n->ndrained != 0) {
		tr_pid pid = n->drained[--n->ndrained];
		for (struct tr__peer *p = n->peers; p != NULL; p = p->next) {
			if (atomic_load_explicit(
			        &p->nparks, memory_order_acquire) == 0)
				continue;
			char name[TR_NAME_MAX + 1];
			if (unpark(n, p, pid, name))
				busy_env(n, p, pid, name,
				    TROUPE__WIRE__CONTROL__CONTROL_READY);
		}
	}
	uint64_t t = total(n);
	if (n->global_paused && t < n->recv_max / 4 * 3) {
		n->global_paused = false;
		for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
			if (p->state == TR__PS_UP && !p->paused && p->inp != 0)
				tr__sp_in_resume(n->in, p->inp);
	}
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next) {
		if (!p->paused || atomic_load_explicit(&p->parked,
		                      memory_order_relaxed) >= n->park_max / 2)
			continue;
		p->paused = false;
		if (!n->global_paused && p->inp != 0)
			tr__sp_in_resume(n->in, p->inp);
	}
	pthread_mutex_unlock(&n->lock);
	tr__node_ebr_exit(&n->ebr, k);
}

void tr__flow_drop(struct tr_node *n, struct tr__peer *p)
{
	pthread_mutex_lock(&p->flow);
	while (p->parks != NULL) {
		struct tr__park *pk = p->parks;
		tr_msg *nx;
		for (tr_msg *m = pk->head; m != NULL; m = nx) {
			nx = tr__dist_msg_next(m);
			tr__dist_msg_free(m);
		}
		park_remove(p, pk);
	}
	atomic_fetch_sub_explicit(&n->parked_total,
	    atomic_exchange_explicit(&p->parked, 0, memory_order_relaxed),
	    memory_order_relaxed);
	pthread_mutex_unlock(&p->flow);
}

void tr__flow_stats(struct tr_node *n, tr_node_stats *st)
{
	st->recv_backlog = tr__dist_backlog(n->rt);
	st->recv_parked =
	    atomic_load_explicit(&n->parked_total, memory_order_relaxed);
	st->busy_sent =
	    atomic_load_explicit(&n->n_busy_sent, memory_order_relaxed);
	st->busy_refused =
	    atomic_load_explicit(&n->n_busy_refused, memory_order_relaxed);
	st->recv_pauses =
	    atomic_load_explicit(&n->n_pauses, memory_order_relaxed);
}
