/*
 * The node's control thread ("the ticker"): its own thread, not a timer
 * actor, so that heartbeats keep their rhythm however busy the schedulers
 * are. Each tick it sends a heartbeat to every peer that is up, declares
 * peers silent for TR__NODE_DOWN_TICKS ticks down, ends handshakes past
 * their deadline and frees what the node's reclamation allows. Between
 * ticks it tears down lost pairs: closing connections and telling local
 * actors (noconnection) happens here, never inside an nng callback,
 * because freeing a connection waits for its callbacks.
 */
#include "node_int.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void heartbeat(struct tr_node *n, struct tr__peer *p)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_HEARTBEAT;
	pthread_mutex_lock(&p->lock);
	/* Unbounded: a heartbeat is two bytes, and refusing it would not
	 * help a peer that is already behind. */
	if (p->state == TR__PS_UP)
		(void)tr__env_put(n, p, &e, false, NULL);
	pthread_mutex_unlock(&p->lock);
	tr__flush_peer(n, p, false);
}

void tr__teardown_signal(struct tr_node *n, struct tr__xlink *links,
    uint32_t nl, struct tr__xmon *mons, uint32_t nm, int reason,
    const char *text)
{
	tr_exit_info info;
	for (uint32_t i = 0; i < nl; i++) {
		tr__exit_info(&info, links[i].rem, reason, text);
		(void)tr__inject_sig(n, NULL, links[i].loc, TR__SIG_EXIT,
		    TR__MF_VIALINK, 0, links[i].rem, &info);
	}
	for (uint32_t i = 0; i < nm; i++) {
		if (mons[i].mine)
			(void)tr__inject_down(n, NULL, mons[i].loc, mons[i].rem,
			    mons[i].ref, reason, text);
		else
			/* The watcher is gone with its node: the target
			 * forgets it, so its list does not grow. */
			(void)tr__inject_sig(n, NULL, mons[i].loc,
			    TR__SIG_DEMONITOR, 0, mons[i].ref, mons[i].rem,
			    NULL);
	}
	free(links);
	free(mons);
}

void tr__teardown(struct tr_node *n, struct tr__peer *p)
{
	/* A sender may have taken the send slot just before the peer went
	 * down and not yet handed its frame to the connection (see
	 * tr__kick_locked and tr__start_send). Closing the connection first
	 * makes every send on it, pending or still to come, fail at once, so
	 * the holder lets go of the slot soon; no one can take it again,
	 * since tr__kick_locked refuses a peer that is down. Only then is the
	 * connection ours to free. */
	if (p->out != NULL)
		tr__sp_out_close(p->out);
	pthread_mutex_lock(&p->lock);
	while (p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	pthread_mutex_unlock(&p->lock);
	tr__sp_out *out = p->out;
	nng_tls_config *tls = p->tls;
	tr__sp_out_free(out); /* waits for its callbacks' return */
	if (tls != NULL)
		nng_tls_config_free(tls);
	/* Under the node lock, as the callbacks that look for a pair by
	 * its connection read it there. */
	pthread_mutex_lock(&n->lock);
	p->out = NULL;
	p->tls = NULL;
	pthread_mutex_unlock(&n->lock);
	if (p->inp != 0)
		tr__sp_in_drop(n->in, p->inp);
	pthread_mutex_lock(&p->lock);
	struct tr__xlink *links = p->links;
	struct tr__xmon *mons = p->mons;
	struct tr__xask *asks = p->asks;
	uint32_t nl = p->nlinks, nm = p->nmons, na = p->nasks;
	p->links = NULL;
	p->mons = NULL;
	p->asks = NULL;
	p->nlinks = p->nmons = p->cap_links = p->cap_mons = 0;
	p->nasks = p->cap_asks = 0;
	/* In-flight messages on a broken connection are lost. */
	tr__out_drop_locked(p);
	free(p->busy_to);
	p->busy_to = NULL;
	p->nbusy = p->cap_busy = 0;
	pthread_mutex_unlock(&p->lock);
	tr__flow_drop(n, p);

	/* A process child's links and monitors wait for its exit status,
	 * the reason they get (proc_watch.c). */
	if (tr__proc_hold(n, p->name, links, nl, mons, nm))
		links = NULL, mons = NULL, nl = nm = 0;
	tr__teardown_signal(
	    n, links, nl, mons, nm, TR_REASON_NOCONNECTION, "");
	/* A lookup that will get no answer fails now: no such node. */
	int32_t gone = TR_ENOPROC;
	for (uint32_t i = 0; i < na; i++)
		(void)tr__inject_msg(n, asks[i].loc, TR__NODE_T_WHEREIS_REPLY,
		    &gone, sizeof(gone), TR_PID_NONE, asks[i].ref, TR__MF_REPLY);
	free(asks);
	pthread_mutex_lock(&n->lock);
	if (p->was_up) {
		tr__node_event_locked(n, TR_MSG_NODEDOWN, p->name,
		    p->down_why != NULL ? p->down_why : "connection lost");
		tr__mesh_down_locked(n, p);
	}
	p->was_up = false;
	p->reaping = false;
	/* An entry replaced by a new pair of the same node (or of a newer
	 * incarnation) is unlinked already: nobody can find it any more.
	 * Otherwise it stays, down, so that its pids fail safely and a
	 * reconnect of the same incarnation finds its index. */
	if (!p->linked)
		tr__peer_retire(n, p);
	else if (tr__proc_is_child(n, p->name))
		/* A process child's node never comes back (its name dies
		 * with its process): nothing to keep. */
		tr__peer_retire(n, p);
	else
		tr__peer_trim(n);
	pthread_mutex_unlock(&n->lock);
}

static void tick_peers_locked(struct tr_node *n, int64_t t, int64_t tick)
{
	struct tr__peer *nx;
	for (struct tr__peer *p = n->peers; p != NULL; p = nx) {
		nx = p->next;
		if (p->state != TR__PS_UP)
			continue;
		/* A connection we stopped reading is not silent: it is us. */
		if (p->paused || n->global_paused)
			atomic_store_explicit(
			    &p->last_rx, t, memory_order_relaxed);
		int64_t rx =
		    atomic_load_explicit(&p->last_rx, memory_order_relaxed);
		if (t - rx > TR__NODE_DOWN_TICKS * tick && p->inp != 0) {
			/* No whole frame for 4 ticks; but bytes of a large
			 * one may be arriving: that is not silence. */
			int64_t q = tr__sp_in_quiet_ms(n->in, p->inp);
			if (q >= 0 && q <= TR__NODE_DOWN_TICKS * tick) {
				rx = t - q;
				atomic_store_explicit(
				    &p->last_rx, rx, memory_order_relaxed);
			}
		}
		if (t - rx > TR__NODE_DOWN_TICKS * tick)
			tr__peer_down_locked(n, p, "no heartbeat for 4 ticks");
		else
			heartbeat(n, p);
	}
}

/* Connections the connection layer closed unproved (at the handshake
 * deadline, or the oldest for the cap) are counted there; say so in the
 * log too, once in a while. */
static void log_conns(struct tr_node *n)
{
	tr__sp_in_stats st;
	tr__sp_in_stats_get(n->in, &st);
	uint64_t d = st.closed_deadline - n->seen_deadline;
	uint64_t c = st.closed_cap - n->seen_cap;
	if (d == 0 && c == 0)
		return;
	if (tr__ratelogf(&n->log_conns, n->rt, 0,
	        "NODE %s: closed connections that proved nothing: %llu at "
	        "the handshake deadline, %llu to make room (%u unproved "
	        "open)",
	        n->name, (unsigned long long)d, (unsigned long long)c,
	        st.untrusted)) {
		n->seen_deadline = st.closed_deadline;
		n->seen_cap = st.closed_cap;
	}
}

void *tr__ticker_main(void *arg)
{
	struct tr_node *n = arg;
	int64_t tick = n->tick_ms;
	int64_t next = tr__node_now_ms() + tick;
	tr__mesh_resolve(n, tr__node_now_ms()); /* the seeds, at once */
	pthread_mutex_lock(&n->lock);
	while (!n->stopping || n->reap != NULL) {
		if (n->reap != NULL) {
			struct tr__peer *p = n->reap;
			n->reap = p->rnext;
			pthread_mutex_unlock(&n->lock);
			tr__teardown(n, p);
			tr__hs_commit_waiting(n, p);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		if (n->ndrained != 0) {
			pthread_mutex_unlock(&n->lock);
			tr__flow_tick(n);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		int64_t t = tr__node_now_ms();
		/* Dials of members that are due, and gossip owed: between
		 * ticks too, so a cluster forms in round trips, not ticks. */
		int64_t due = tr__mesh_tick_locked(n, t);
		if (t >= next) {
			next = t + tick;
			tick_peers_locked(n, t, tick);
			tr__hs_tick_locked(n, t);
			pthread_mutex_unlock(&n->lock);
			tr__flush_all(n, false);
			tr__sp_in_reap(n->in); /* closed inbound connections */
			log_conns(n);
			tr__linger_sweep(n, false);
			tr__flow_tick(n);
			tr__peer_reclaim(n);
			tr__mesh_resolve(n, t);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		int64_t until = due < next ? due : next;
		if (until < t)
			until = t;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (until - t) * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&n->cv, &n->lock, &ts);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}
