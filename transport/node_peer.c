/*
 * The peer table: one entry per node (name, incarnation) this node talks
 * to or has heard of, its index and generation, and its lifetime.
 *
 * Lifetime. A pid names its node by the entry's index and generation
 * (node_int.h), so an entry can be freed and its index used again: a pid
 * of the old entry then fails the generation check and is stale, as a
 * pid of a dead actor is. An entry is freed
 * when more than TR__PEER_IDLE_MAX entries are idle (known but never
 * connected, or down: a node that stopped, or an earlier incarnation of a
 * node that restarted), the oldest first. Until then a pid of an idle
 * entry still names its node and incarnation on the wire, so a node that
 * passes it on passes a stale pid, not "no pid".
 * A node that reconnects with the same incarnation gets a new entry at the
 * same index and generation, so its pids keep working, as in Erlang.
 *
 * Threads hold entry pointers outside the node lock (senders, the receive
 * path, the public calls) only inside a section of the node's own
 * epoch-based reclamation (tr__node_ebr_enter/exit): two epochs, each with
 * a count of sections that entered in it. An unlinked entry waits in the
 * list of the epoch it was unlinked in; the control thread frees that list
 * after the next flip, once the count of that epoch is back to zero, and
 * flips only when the count of the older epoch is zero, so no section
 * lives across two flips. An entry is also reachable from the node's
 * list of dirty peers (node_out.c) after it is unlinked: it is freed one
 * grace period after it is seen off that list (tr__peer_reclaim).
 */
#include "node_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reclamation ------------------------------------------------------------
 */

unsigned tr__node_ebr_enter(struct tr__node_ebr *e)
{
	for (;;) {
		unsigned k =
		    atomic_load_explicit(&e->epoch, memory_order_seq_cst) & 1u;
		/* seq_cst with the re-check below and with the flip in
		 * tr__peer_reclaim: either the flipper sees this section
		 * counted in epoch k before it frees what k retired, or this
		 * section sees the flip and counts itself in the new epoch,
		 * in which every retired entry is unlinked already. */
		atomic_fetch_add_explicit(
		    &e->active[k], 1, memory_order_seq_cst);
		if ((atomic_load_explicit(&e->epoch, memory_order_seq_cst) &
		        1u) == k)
			return k;
		atomic_fetch_sub_explicit(
		    &e->active[k], 1, memory_order_relaxed);
	}
}

void tr__node_ebr_exit(struct tr__node_ebr *e, unsigned k)
{
	/* Release: the section's reads of entries happen before the
	 * control thread's acquire load that lets it free them. */
	atomic_fetch_sub_explicit(&e->active[k], 1, memory_order_release);
}

void tr__peer_reclaim(struct tr_node *n)
{
	pthread_mutex_lock(&n->lock);
	unsigned cur =
	    atomic_load_explicit(&n->ebr.epoch, memory_order_relaxed) & 1u;
	unsigned old = cur ^ 1u;
	if (atomic_load_explicit(&n->ebr.active[old], memory_order_acquire) !=
	    0) {
		pthread_mutex_unlock(&n->lock);
		return; /* a section of the older epoch is still open */
	}
	struct tr__peer *dead = NULL, *nx;
	for (struct tr__peer *p = n->retire[old]; p != NULL; p = nx) {
		nx = p->rnext;
		if (p->unlisted) {
			p->rnext = dead;
			dead = p;
			continue;
		}
		/* Every section that found p in the table or the list of
		 * entries has left, so nobody will push p on the dirty list
		 * again (pushers hold it inside a section). But the list may
		 * still hold it, and a flush that took it from there may hold
		 * it in a section of the current epoch. While p->dirty is 1,
		 * p is on the list or with such a flush: it waits one more
		 * grace period and is looked at again. Once it is 0, p is off
		 * the list for good, and every flush that took it entered its
		 * section before it cleared p->dirty. Acquire: pairs with that
		 * clear's release in tr__flush_all, so those sections are
		 * counted where the next reclaim looks, like any section that
		 * began before an unlink; p is freed after that grace period.
		 * The ticker's own flush runs on this thread, before. */
		if (atomic_load_explicit(&p->dirty, memory_order_acquire) == 0)
			p->unlisted = true;
		p->rnext = n->retire[cur];
		n->retire[cur] = p;
	}
	n->retire[old] = NULL;
	if (n->retire[cur] != NULL)
		atomic_store_explicit(
		    &n->ebr.epoch, cur ^ 1u, memory_order_seq_cst);
	pthread_mutex_unlock(&n->lock);
	for (struct tr__peer *p = dead; p != NULL; p = nx) {
		nx = p->rnext;
		tr__peer_free(p);
	}
}

/* ---- entries
 * ------------------------------------------------------------------ */

struct tr__peer *tr__peer_at(struct tr_node *n, uint32_t node)
{
	uint32_t idx = TR__PEER_IDX(node);
	if (idx == 0 || idx == 0xffffu)
		return NULL;
	/* Acquire: pairs with the release store in tr__peer_new, so the
	 * entry's fields (name, lock) are initialised. */
	struct tr__peer *p =
	    atomic_load_explicit(&n->table[idx], memory_order_acquire);
	return p != NULL && p->id == node ? p : NULL;
}

struct tr__peer *tr__peer_find(
    struct tr_node *n, const char *name, uint64_t inc)
{
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
		if (p->inc == inc && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

struct tr__peer *tr__peer_up(struct tr_node *n, const char *name)
{
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
		if (p->state == TR__PS_UP && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static bool idle(const struct tr__peer *p)
{
	return p->state == TR__PS_KNOWN || p->state == TR__PS_DOWN;
}

/* Takes `p` out of the list and the table (node lock held). */
static void unlink_peer(struct tr_node *n, struct tr__peer *p, bool free_idx)
{
	if (!p->linked)
		return;
	p->linked = false;
	for (struct tr__peer **pp = &n->peers; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	p->next = NULL;
	if (idle(p))
		n->nidle--;
	if (atomic_load_explicit(&n->named_peer, memory_order_relaxed) == p)
		atomic_store_explicit(
		    &n->named_peer, NULL, memory_order_relaxed);
	if (!free_idx)
		return;
	if (atomic_load_explicit(&n->table[p->idx], memory_order_relaxed) == p)
		atomic_store_explicit(
		    &n->table[p->idx], NULL, memory_order_release);
	n->gens[p->idx]++;
	n->free_idx[n->nfree_idx++] = p->idx;
}

struct tr__peer *tr__peer_new(struct tr_node *n, const char *name, uint64_t inc,
    int state, struct tr__peer *old)
{
	uint32_t idx;
	if (old != NULL)
		idx = old->idx;
	else if (n->nfree_idx != 0)
		idx = n->free_idx[n->nfree_idx - 1];
	else if (n->next_idx + 1 < 0xffffu)
		idx = n->next_idx + 1;
	else
		return NULL;
	struct tr__peer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (old != NULL)
		unlink_peer(n, old, false);
	else if (n->nfree_idx != 0)
		n->nfree_idx--;
	else
		n->next_idx = idx;
	p->idx = idx;
	p->gen = n->gens[idx];
	p->id = idx | p->gen << 16;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->inc = inc;
	p->state = state;
	p->since_ms = tr__node_now_ms();
	p->held_tail = &p->held;
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_init(&p->flow, NULL);
	pthread_cond_init(&p->idle, NULL);
	atomic_init(&p->last_rx, p->since_ms);
	atomic_init(&p->dirty, 0);
	p->linked = true;
	p->next = n->peers;
	n->peers = p;
	if (idle(p))
		n->nidle++;
	/* Release: pairs with the acquire load in tr__peer_at. */
	atomic_store_explicit(&n->table[idx], p, memory_order_release);
	return p;
}

uint32_t tr__peer_known(struct tr_node *n, const char *name, uint64_t inc)
{
	if (!tr__node_name_ok(name))
		return 0;
	struct tr__peer *p = tr__peer_find(n, name, inc);
	if (p == NULL) {
		p = tr__peer_new(n, name, inc, TR__PS_KNOWN, NULL);
		if (p != NULL)
			tr__peer_trim(n);
	}
	return p != NULL ? p->id : 0;
}

void tr__peer_retire(struct tr_node *n, struct tr__peer *p)
{
	unlink_peer(n, p, true);
	unsigned cur =
	    atomic_load_explicit(&n->ebr.epoch, memory_order_relaxed) & 1u;
	p->rnext = n->retire[cur];
	n->retire[cur] = p;
}

void tr__peer_trim(struct tr_node *n)
{
	/* The list holds the newest first: the oldest idle are at its end.
	 * Rare (a cluster with thousands of departed nodes), so a walk. */
	while (n->nidle > TR__PEER_IDLE_MAX) {
		struct tr__peer *last = NULL;
		for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
			if (idle(p))
				last = p;
		if (last == NULL)
			return;
		tr__peer_retire(n, last);
	}
}

static void strv_free(char **v, size_t k)
{
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(v);
}

void tr__peer_free(struct tr__peer *p)
{
	if (p == NULL)
		return;
	tr__out_drop_locked(p);
	strv_free(p->listen, p->nlisten);
	strv_free(p->aliases, p->naliases);
	free(p->links);
	free(p->mons);
	free(p->asks);
	free(p->busy_to);
	while (p->parks != NULL) {
		struct tr__park *pk = p->parks;
		p->parks = pk->next;
		tr_msg *m = pk->head;
		while (m != NULL) {
			tr_msg *nm = tr__dist_msg_next(m);
			tr__dist_msg_free(m);
			m = nm;
		}
		free(pk);
	}
	struct tr__held *nx;
	for (struct tr__held *h = p->held; h != NULL; h = nx) {
		nx = h->next;
		free(h);
	}
	tr__sp_out_free(p->out);
	if (p->tls != NULL)
		nng_tls_config_free(p->tls);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->flow);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- pids on the wire
 * ---------------------------------------------------------- */

/* A pid of the sending node itself goes out with an empty node name and
 * incarnation 0: the receiver knows who sent the frame (the pipe is bound
 * to one authenticated peer), so the name would only cost bytes, strlen
 * and strcmp on both sides, in every envelope. Pids of the receiver and of
 * third nodes carry their names. A pid that cannot be named (an entry that
 * is gone) goes out with gen 0, which every receiver reads as no pid. See
 * the Pid message in troupe.proto. */
void tr__pid_out(struct tr_node *n, tr_pid pid, WPid *w)
{
	troupe__wire__pid__init(w);
	if (pid.node != 0) {
		struct tr__peer *p = tr__peer_at(n, pid.node);
		if (p == NULL)
			return; /* gen 0: nobody */
		w->node = p->name;
		w->incarnation = p->inc;
	}
	w->slot = pid.slot;
	w->gen = pid.gen;
}

tr_pid tr__pid_in(struct tr_node *n, struct tr__peer *from, const WPid *w)
{
	if (w == NULL || w->gen == 0 || w->node == NULL)
		return TR_PID_NONE;
	tr_pid r = {0, w->slot, w->gen};
	if (w->node[0] == '\0' ||
	    (w->incarnation == from->inc && strcmp(w->node, from->name) == 0)) {
		r.node = from->id;
	} else if (strcmp(w->node, n->name) == 0) {
		r.node = w->incarnation == n->inc ? 0 : TR__NODE_STALE;
	} else {
		pthread_mutex_lock(&n->lock);
		r.node = tr__peer_known(n, w->node, w->incarnation);
		pthread_mutex_unlock(&n->lock);
		if (r.node == 0)
			return TR_PID_NONE;
	}
	return r;
}

bool tr__pid_local(struct tr_node *n, const WPid *w, tr_pid *out)
{
	if (w == NULL || w->gen == 0 || w->node == NULL ||
	    w->incarnation != n->inc || strcmp(w->node, n->name) != 0)
		return false;
	*out = (tr_pid){0, w->slot, w->gen};
	return true;
}

/* ---- crossing links and monitors (peer lock held)
 * ------------------------------ */

void tr__xlink_add(struct tr__peer *p, tr_pid loc, tr_pid rem)
{
	for (uint32_t i = 0; i < p->nlinks; i++)
		if (tr_pid_eq(p->links[i].loc, loc) &&
		    tr_pid_eq(p->links[i].rem, rem))
			return;
	/* Out of memory the link goes unrecorded: it then misses its
	 * noconnection, which is the best that can be done. */
	if (tr__node_grow((void **)&p->links, p->nlinks, &p->cap_links,
	        sizeof(*p->links)))
		p->links[p->nlinks++] = (struct tr__xlink){loc, rem};
}

void tr__xlink_del(struct tr__peer *p, tr_pid loc, tr_pid rem)
{
	for (uint32_t i = 0; i < p->nlinks; i++) {
		if (tr_pid_eq(p->links[i].loc, loc) &&
		    tr_pid_eq(p->links[i].rem, rem)) {
			p->links[i] = p->links[--p->nlinks];
			return;
		}
	}
}

void tr__xmon_add(
    struct tr__peer *p, uint64_t ref, tr_pid loc, tr_pid rem, bool mine)
{
	if (tr__node_grow(
	        (void **)&p->mons, p->nmons, &p->cap_mons, sizeof(*p->mons)))
		p->mons[p->nmons++] = (struct tr__xmon){ref, loc, rem, mine};
}

void tr__xmon_del(struct tr__peer *p, uint64_t ref, bool mine)
{
	for (uint32_t i = 0; i < p->nmons; i++) {
		if (p->mons[i].ref == ref && p->mons[i].mine == mine) {
			p->mons[i] = p->mons[--p->nmons];
			return;
		}
	}
}

void tr__xask_add(struct tr__peer *p, uint64_t ref, tr_pid loc)
{
	if (p->nasks < TR__PEER_ASKS_MAX &&
	    tr__node_grow(
	        (void **)&p->asks, p->nasks, &p->cap_asks, sizeof(*p->asks)))
		p->asks[p->nasks++] = (struct tr__xask){ref, loc};
}

void tr__xask_del(struct tr__peer *p, uint64_t ref, tr_pid loc)
{
	for (uint32_t i = 0; i < p->nasks; i++) {
		if (p->asks[i].ref == ref && tr_pid_eq(p->asks[i].loc, loc)) {
			p->asks[i] = p->asks[--p->nasks];
			return;
		}
	}
}
