/*
 * A partition's primary (kv_part.h): it runs the batches, sends the state
 * of what they wrote to its replicas, and answers a batch once its writes
 * are on enough copies. The consistency this gives is in README.md.
 *
 * The replicas are the top replicas - 1 nodes of the partition's ranking
 * in the view, the primary left out. A node that enters that set gets a
 * full copy first (SYNC_BEGIN, DATA, END, in the order of one channel,
 * so the writes sent after the copy follow it); one that leaves the set
 * is told to drop its copy only once every node of the new set holds the
 * whole copy, so that at every moment a synced replica can take over.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_part.h"
#include "resp_ops.h"
#include "troupe/global.h"

#define SYNC_PIECE (256u * 1024u)

static uint32_t need(void)
{
	return kv_config.replicas > 0 ? kv_config.replicas - 1 : 0;
}

/* The writes up to `released` are on every live replica, and there are
 * enough live replicas. */
static void release(kv_part *s)
{
	uint32_t live = 0;
	uint64_t m = s->seq;
	for (uint32_t i = 0; i < s->nreps; i++) {
		if (!s->reps[i].live)
			continue;
		live++;
		if (s->reps[i].acked < m)
			m = s->reps[i].acked;
	}
	if (live >= need() && m > s->released)
		s->released = m;
}

static void send_rep(tr_ctx *ctx, kv_part *s, kv_rep *r, uint32_t type,
    const void *data, size_t len)
{
	/* Not connected: the view's change takes the replica out. A queue
	 * to it that is full: the copy misses this, so it stops counting
	 * until it has a new one, which it asks for (NACK) at the gap. */
	if (tr_send_remote_named(ctx, r->node, s->name, type, data, len) !=
	    TR_OK) {
		r->live = false;
		r->stale = true;
	}
}

static void sync_rep(tr_ctx *ctx, kv_part *s, kv_rep *r)
{
	kv_seq q = {.seq = s->seq};
	r->stale = false;
	r->live = false; /* until it acks the copy */
	r->acked = 0;
	r->sync_seq = s->seq;
	send_rep(ctx, s, r, KV_MSG_SYNC_BEGIN, &q, sizeof(q));
	size_t cursor = 0;
	int64_t now = kv_now_ms();
	bool done = false;
	/* A piece that could not be sent (or made) ends the copy before its
	 * END, so the replica never takes a part for the whole; the next
	 * tick begins again. */
	while (!done && !r->stale) {
		s->repl.len = 0;
		done = rs_store_dump(&s->st, &cursor, now, SYNC_PIECE, &s->repl);
		if (s->repl.oom) {
			s->repl.oom = false;
			r->stale = true;
			break;
		}
		send_rep(ctx, s, r, KV_MSG_SYNC_DATA, s->repl.p, s->repl.len);
	}
	if (!r->stale)
		send_rep(ctx, s, r, KV_MSG_SYNC_END, &q, sizeof(q));
	resp_buf_reset(&s->repl, SYNC_PIECE);
	atomic_fetch_add_explicit(&kv_stats.syncs, 1, memory_order_relaxed);
}

void kv_primary_run(
    tr_ctx *ctx, kv_part *s, kv_req *r, const void *ops, size_t len)
{
	int64_t now = kv_now_ms();
	kv_seq q0 = {0};
	r->target = TR_PID_NONE;
	r->waiting = false;
	r->t0 = now; /* its copies' time starts now */
	s->out.len = 0;
	s->repl.len = 0;
	resp_buf_put(&s->repl, &q0, sizeof(q0)); /* the sequence, below */
	uint32_t nw = 0;
	if (s->repl.oom || !rs_store_exec(&s->st, ops, len, now, &s->out) ||
	    !rs_store_state(&s->st, ops, len, now, &s->repl, &nw)) {
		s->out.oom = s->repl.oom = false;
		(void)kv_q_fill_error(s, r, "ERR out of memory");
		return;
	}
	atomic_fetch_add_explicit(&kv_stats.ops, r->nops, memory_order_relaxed);
	if (nw > 0) {
		kv_seq q = {.seq = ++s->seq};
		memcpy(s->repl.p, &q, sizeof(q));
		for (uint32_t i = 0; i < s->nreps; i++)
			send_rep(ctx, s, &s->reps[i], KV_MSG_REPL, s->repl.p,
			    s->repl.len);
		release(s); /* with no replica to wait for */
	}
	free(r->bytes);
	r->bytes = malloc(s->out.len);
	if (r->bytes == NULL) {
		(void)kv_q_fill_error(s, r, "ERR out of memory");
	} else {
		memcpy(r->bytes, s->out.p, s->out.len);
		r->len = s->out.len;
		r->filled = true;
		r->seq = s->seq;
	}
	if (s->out.cap > SYNC_PIECE)
		resp_buf_reset(&s->out, SYNC_PIECE);
	if (s->repl.cap > SYNC_PIECE)
		resp_buf_reset(&s->repl, SYNC_PIECE);
}

static bool desired(const kv_part *s, const char *node)
{
	uint32_t order[KV_MAX_NODES], k = 0;
	kv_rank(&s->view, s->p, order);
	for (uint32_t i = 0; i < s->view.n && k < need(); i++) {
		const char *n = s->view.names[order[i]];
		if (strcmp(n, kv_config.self) == 0)
			continue;
		if (strcmp(n, node) == 0)
			return true;
		k++;
	}
	return false;
}

static kv_rep *find_rep(kv_part *s, const char *node)
{
	for (uint32_t i = 0; i < s->nreps; i++)
		if (strcmp(s->reps[i].node, node) == 0)
			return &s->reps[i];
	return NULL;
}

static void remove_rep(kv_part *s, uint32_t i)
{
	s->reps[i] = s->reps[--s->nreps];
}

void kv_primary_maintain(tr_ctx *ctx, kv_part *s)
{
	if (s->role != KV_PRIMARY)
		return;
	if (s->view.n < kv_majority()) {
		printf("kv %s: %s: no majority in view (%u of %u): gives up "
		       "the partition\n",
		    kv_config.self, s->name, s->view.n,
		    kv_config.cluster_size);
		fflush(stdout);
		(void)tr_global_unregister(kv_config.node, s->name);
		kv_part_stand_down(ctx, s);
		return;
	}
	/* Replicas whose nodes left. */
	for (uint32_t i = 0; i < s->nreps;)
		if (!kv_view_has(&s->view, s->reps[i].node))
			remove_rep(s, i);
		else
			i++;
	/* New ones. */
	bool all_live = true;
	for (uint32_t i = 0; i < s->view.n; i++) {
		const char *n = s->view.names[i];
		if (strcmp(n, kv_config.self) == 0 || !desired(s, n))
			continue;
		kv_rep *r = find_rep(s, n);
		if (r == NULL && s->nreps < KV_MAX_NODES) {
			r = &s->reps[s->nreps++];
			memset(r, 0, sizeof(*r));
			size_t nl = strlen(n);
			memcpy(r->node, n, nl + 1); /* a view's name fits */
			sync_rep(ctx, s, r);
		}
		all_live = all_live && r != NULL && r->live;
	}
	/* Old ones, once the new set holds the copy. */
	if (all_live)
		for (uint32_t i = 0; i < s->nreps;) {
			if (!desired(s, s->reps[i].node)) {
				send_rep(ctx, s, &s->reps[i], KV_MSG_DROP, NULL,
				    0);
				remove_rep(s, i);
			} else {
				i++;
			}
		}
	release(s);
	kv_q_flush(ctx, s);
}

static kv_rep *rep_of(kv_part *s, tr_pid from)
{
	char node[TR_NODE_NAME_MAX + 1];
	if (tr_node_name_of(node, sizeof(node), kv_config.node, from) != TR_OK)
		return NULL;
	return find_rep(s, node);
}

void kv_primary_ack(tr_ctx *ctx, kv_part *s, tr_pid from, uint64_t seq)
{
	kv_rep *r = s->role == KV_PRIMARY ? rep_of(s, from) : NULL;
	if (r == NULL || seq <= r->acked)
		return;
	r->acked = seq;
	if (!r->live && r->acked >= r->sync_seq) {
		r->live = true;
		kv_primary_maintain(ctx, s); /* old replicas may go now */
		return;
	}
	release(s);
	kv_q_flush(ctx, s);
}

void kv_primary_nack(tr_ctx *ctx, kv_part *s, tr_pid from)
{
	kv_rep *r = s->role == KV_PRIMARY ? rep_of(s, from) : NULL;
	if (r != NULL)
		sync_rep(ctx, s, r); /* it lost its copy: a new one */
}

void kv_primary_tick(tr_ctx *ctx, kv_part *s, int64_t now)
{
	if (s->role != KV_PRIMARY)
		return;
	for (uint32_t i = 0; i < s->nreps; i++)
		if (s->reps[i].stale)
			sync_rep(ctx, s, &s->reps[i]);
	bool failed = false;
	for (uint32_t i = 0; i < s->qn; i++) {
		kv_req *r = kv_q_at(s, i);
		if (tr_pid_is_none(r->target) && r->filled &&
		    r->seq > s->released &&
		    now - r->t0 > (int64_t)kv_config.timeout_ms) {
			(void)kv_q_fill_error(s, r,
			    "TRYAGAIN write not on enough copies in time");
			failed = true;
		}
	}
	if (failed)
		kv_q_flush(ctx, s);
}
