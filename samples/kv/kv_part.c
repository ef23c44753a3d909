/*
 * The partition actor (kv_part.h): its messages, the replica's side of
 * the copies, takeovers and the first start of a partition.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv_part.h"
#include "resp_ops.h"
#include "troupe/global.h"

#define TICK_MS 100
#define CLAIM_MS 5000

kv_counters kv_stats;

int64_t kv_now_ms(void)
{
	return rs_now_ms();
}

static void set_role(kv_part *s, int role)
{
	if (s->role == KV_PRIMARY)
		atomic_fetch_sub_explicit(
		    &kv_stats.primaries, 1, memory_order_relaxed);
	if (s->role == KV_REPLICA)
		atomic_fetch_sub_explicit(&kv_stats.copies, 1, memory_order_relaxed);
	s->role = role;
	if (role == KV_PRIMARY)
		atomic_fetch_add_explicit(
		    &kv_stats.primaries, 1, memory_order_relaxed);
	if (role == KV_REPLICA)
		atomic_fetch_add_explicit(&kv_stats.copies, 1, memory_order_relaxed);
}

static void unfollow(tr_ctx *ctx, kv_part *s)
{
	if (s->primary_ref != 0)
		(void)tr_demonitor(ctx, s->primary_ref);
	s->primary_ref = 0;
	s->primary = TR_PID_NONE;
	s->synced = false;
}

void kv_part_become_none(tr_ctx *ctx, kv_part *s, const char *why)
{
	if (s->role == KV_PRIMARY)
		kv_q_fail_local(s, why);
	unfollow(ctx, s);
	set_role(s, KV_NONE);
	rs_store_clear(&s->st);
	s->kept = false;
	s->nreps = 0;
	s->seq = s->released = s->applied = 0;
	kv_q_flush(ctx, s);
}

void kv_part_stand_down(tr_ctx *ctx, kv_part *s)
{
	static const char why[] = "CLUSTERDOWN no majority";
	bool whole = s->role == KV_PRIMARY ||
	             (s->role == KV_REPLICA && s->synced) || s->kept;
	uint64_t seq = s->role == KV_PRIMARY ? s->seq : s->applied;
	if (!whole) {
		kv_part_become_none(ctx, s, why);
		return;
	}
	if (s->role == KV_PRIMARY)
		kv_q_fail_local(s, why);
	unfollow(ctx, s);
	set_role(s, KV_NONE);
	s->kept = true;
	s->nreps = 0;
	s->applied = seq;
	s->seq = s->released = 0;
	kv_q_flush(ctx, s);
}

static int part_init(tr_ctx *ctx, void *arg, void **state)
{
	kv_part *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return 1;
	s->p = *(const uint32_t *)arg; /* the spec's, borrowed */
	kv_part_name(s->name, sizeof(s->name), s->p);
	rs_store_init(&s->st);
	resp_buf_init(&s->out);
	resp_buf_init(&s->repl);
	s->view.n = 1;
	snprintf(s->view.names[0], sizeof(s->view.names[0]), "%s",
	    kv_config.self);
	if (tr_send_after(ctx, NULL, tr_self(ctx), TICK_MS, TICK_MS,
	        KV_MSG_TICK, NULL, 0) != TR_OK) {
		free(s);
		return 1;
	}
	*state = s;
	return 0;
}

#define WAIT_MS 5000 /* a batch waits this long for a primary */
#define FWD_MS 10000 /* and this long for the primary's answer */

/* Whether a batch may run twice with the same end state: everything but
 * INCRBY (a SET's NX or XX may answer otherwise the second time, but
 * leaves the same value). */
static bool idempotent(const void *ops, size_t len)
{
	const char *p = ops, *end = p + len;
	rs_ops_hdr h;
	memcpy(&h, p, sizeof(h));
	p += sizeof(h);
	rs_op op;
	const char *key;
	for (uint32_t k = 0; k < h.nops && rs_op_next(&p, end, &op, &key); k++)
		if (op.code == RS_OP_INCRBY)
			return false;
	return true;
}

/* Sends a waiting entry to the partition's primary, or runs it here if
 * this is the primary. False while there is no primary to send it to. */
static bool route(tr_ctx *ctx, kv_part *s, kv_req *r)
{
	tr_pid to;
	if (s->role == KV_PRIMARY) {
		kv_primary_run(ctx, s, r, r->ops + sizeof(kv_seq),
		    r->opslen - sizeof(kv_seq));
		return true;
	}
	kv_seq id = {.seq = ++s->next_id};
	memcpy(r->ops, &id, sizeof(id));
	if (s->role == KV_CLAIMING ||
	    tr_global_whereis(&to, kv_config.node, s->name) != TR_OK ||
	    tr_pid_eq(to, tr_self(ctx)) || !kv_watch_add(ctx, s, to) ||
	    tr_send(ctx, to, KV_MSG_FWD, r->ops, r->opslen) != TR_OK)
		return false;
	r->id = id.seq;
	r->target = to;
	r->waiting = false;
	r->deadline = kv_now_ms() + FWD_MS;
	return true;
}

/* Tries the waiting entries again, in order; fails those past their
 * deadline. */
static void route_waiting(tr_ctx *ctx, kv_part *s)
{
	int64_t now = kv_now_ms();
	for (uint32_t i = 0; i < s->qn; i++) {
		kv_req *r = kv_q_at(s, i);
		/* Sent, and no answer: its answer or the primary's DOWN was
		 * lost (a queue to the primary's node that was full). */
		if (!r->waiting && !r->filled && !tr_pid_is_none(r->target) &&
		    now > r->deadline)
			(void)kv_q_fill_error(s, r,
			    "TRYAGAIN no answer from the partition's primary");
		if (!r->waiting)
			continue;
		if (s->view.n < kv_majority())
			(void)kv_q_fill_error(s, r,
			    "CLUSTERDOWN this node does not see a majority "
			    "of the cluster");
		else if (!route(ctx, s, r) && now > r->deadline)
			(void)kv_q_fill_error(s, r,
			    "TRYAGAIN the partition has had no primary for "
			    "5 s");
		if (r->filled)
			r->waiting = false;
	}
	kv_q_flush(ctx, s);
}

/* A batch from one of this node's connections (fwd false), or from
 * another node's partition actor that takes this one for the primary. */
static void batch_in(tr_ctx *ctx, kv_part *s, const tr_msg *m, bool fwd)
{
	rs_ops_hdr h;
	kv_seq id = {0};
	const char *ops = (const char *)m->data;
	size_t len = m->size;
	if (fwd) {
		if (len < sizeof(id))
			return;
		memcpy(&id, ops, sizeof(id));
		ops += sizeof(id);
		len -= sizeof(id);
	}
	if (len < sizeof(h))
		return;
	memcpy(&h, ops, sizeof(h));
	int64_t now = kv_now_ms();
	kv_req r = {.reply_to = m->sender,
	    .reply_type = fwd ? KV_MSG_FWD_REPLY : RS_MSG_REPLIES,
	    .nops = h.nops,
	    .target = TR_PID_NONE,
	    .t0 = now,
	    .deadline = now + WAIT_MS,
	    .id = id.seq};
	bool primary = s->role == KV_PRIMARY && s->view.n >= kv_majority();
	if (fwd && !primary) {
		/* Not run: the sender may send it elsewhere. */
		(void)tr_send(ctx, m->sender, KV_MSG_FWD_MOVED, &id, sizeof(id));
		return;
	}
	if (!primary) {
		r.ops = malloc(sizeof(kv_seq) + len);
		if (r.ops == NULL)
			return; /* the connection waits in vain */
		memcpy(r.ops + sizeof(kv_seq), ops, len);
		r.opslen = sizeof(kv_seq) + len;
		r.retry_ok = idempotent(ops, len);
		r.waiting = true;
	}
	if (!kv_q_push(s, &r)) {
		free(r.ops);
		return;
	}
	kv_req *q = kv_q_at(s, s->qn - 1);
	if (primary)
		kv_primary_run(ctx, s, q, ops, len);
	else if (s->qn == 1 || !kv_q_at(s, s->qn - 2)->waiting)
		(void)route(ctx, s, q); /* else after those ahead of it */
	if (q->waiting && s->view.n < kv_majority())
		(void)kv_q_fill_error(s, q,
		    "CLUSTERDOWN this node does not see a majority of the "
		    "cluster");
	if (q->filled)
		q->waiting = false;
	kv_q_flush(ctx, s);
}

/* The entry sent to `from` as id `*id`, which the answer begins with
 * (moved past it); NULL if none waits for it (answered as failed). */
static kv_req *waiting_on(
    kv_part *s, const tr_msg *m, const char **rest, size_t *len)
{
	kv_seq id;
	if (m->size < sizeof(id))
		return NULL;
	memcpy(&id, m->data, sizeof(id));
	*rest = (const char *)m->data + sizeof(id);
	*len = m->size - sizeof(id);
	for (uint32_t i = 0; i < s->qn; i++) {
		kv_req *r = kv_q_at(s, i);
		if (!r->filled && !r->waiting && r->id == id.seq &&
		    tr_pid_eq(r->target, m->sender))
			return r;
	}
	return NULL;
}

/* A remote primary's answer. */
static void fwd_reply(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	const char *rest;
	size_t len;
	kv_req *r = waiting_on(s, m, &rest, &len);
	if (r == NULL || len < sizeof(rs_replies_hdr))
		return;
	free(r->bytes);
	r->bytes = malloc(len);
	if (r->bytes == NULL) {
		(void)kv_q_fill_error(s, r, "ERR out of memory");
	} else {
		memcpy(r->bytes, rest, len);
		r->len = len;
		r->filled = true;
	}
	kv_q_flush(ctx, s);
}

/* It was not the primary any more, and ran nothing: wait for the next. */
static void fwd_moved(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	const char *rest;
	size_t len;
	kv_req *r = waiting_on(s, m, &rest, &len);
	if (r == NULL)
		return;
	r->target = TR_PID_NONE;
	r->waiting = true;
	route_waiting(ctx, s);
}

/* Whether the name's holder is the primary that died (or on a node out
 * of the view): an entry that is about to go. */
static bool stale(kv_part *s)
{
	tr_pid h;
	char node[TR_NODE_NAME_MAX + 1];
	if (tr_global_whereis(&h, kv_config.node, s->name) != TR_OK)
		return true;
	if (tr_pid_eq(h, s->dead_primary))
		return true;
	return tr_node_name_of(node, sizeof(node), kv_config.node, h) ==
	           TR_OK &&
	       !kv_view_has(&s->view, node);
}

static int claim_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)reply;
	kv_part *s = state;
	bool takeover = arg != NULL;
	if (s->role != KV_CLAIMING)
		return 0;
	if (status == TR_EEXIST && takeover && stale(s)) {
		/* The dead primary's entry is still in the table (its
		 * node's NODEDOWN has not come yet): again soon. */
		s->claim_retry = true;
		return 0;
	}
	if (status != TR_OK) {
		printf("kv %s: %s: claim failed (%s)\n", kv_config.self, s->name,
		    tr_strerror(status));
		fflush(stdout);
		kv_part_become_none(ctx, s, "TRYAGAIN");
		return 0;
	}
	set_role(s, KV_PRIMARY);
	s->kept = false;
	s->seq = s->released = s->applied;
	s->nreps = 0;
	if (takeover)
		atomic_fetch_add_explicit(
		    &kv_stats.takeovers, 1, memory_order_relaxed);
	printf("kv %s: %s: %s, %zu keys\n", kv_config.self, s->name,
	    takeover ? "took over as primary" : "started as primary",
	    s->st.count);
	fflush(stdout);
	kv_primary_maintain(ctx, s);
	route_waiting(ctx, s);
	return 0;
}

static void claim(tr_ctx *ctx, kv_part *s, bool takeover)
{
	tr_global_opts o;
	tr_global_opts_init(&o);
	o.method = TR_GLOBAL_NOTIFY;
	if (s->role != KV_CLAIMING) {
		set_role(s, KV_CLAIMING);
		s->claim_until = kv_now_ms() + CLAIM_MS;
	}
	s->claim_retry = false;
	if (tr_global_register_then(ctx, NULL, s->name, tr_self(ctx), &o,
	        CLAIM_MS, claim_done, takeover ? (void *)1 : NULL) != TR_OK)
		kv_part_become_none(ctx, s, "TRYAGAIN");
}

static void claim_again(tr_ctx *ctx, kv_part *s)
{
	if (s->role != KV_CLAIMING || !s->claim_retry)
		return;
	if (kv_now_ms() > s->claim_until || s->view.n < kv_majority()) {
		printf("kv %s: %s: the dead primary's name did not go: gives "
		       "up\n",
		    kv_config.self, s->name);
		fflush(stdout);
		kv_part_become_none(ctx, s, "TRYAGAIN");
		return;
	}
	claim(ctx, s, true);
}

/* The primary this replica follows has died. */
static void primary_down(tr_ctx *ctx, kv_part *s, const tr_exit_info *x)
{
	s->primary_ref = 0;
	if (s->role == KV_REPLICA && s->synced && s->view.n >= kv_majority() &&
	    kv_view_connected(&s->view) >= kv_majority()) {
		printf("kv %s: %s: primary down (%s): claiming it\n",
		    kv_config.self, s->name, x->text);
		fflush(stdout);
		s->dead_primary = s->primary;
		unfollow(ctx, s);
		claim(ctx, s, true);
		return;
	}
	kv_part_become_none(ctx, s, "TRYAGAIN");
}

static void down(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	const tr_exit_info *x = (const tr_exit_info *)m->data;
	if (s->primary_ref != 0 && x->ref == s->primary_ref) {
		primary_down(ctx, s, x);
		return;
	}
	for (uint32_t i = 0; i < s->nwatch; i++) {
		if (s->watch[i].ref != x->ref)
			continue;
		for (uint32_t j = 0; j < s->qn; j++) {
			kv_req *r = kv_q_at(s, j);
			if (r->filled || r->waiting ||
			    !tr_pid_eq(r->target, x->pid))
				continue;
			if (r->retry_ok) {
				r->target = TR_PID_NONE;
				r->waiting = true;
				r->deadline = kv_now_ms() + WAIT_MS;
			} else {
				(void)kv_q_fill_error(s, r,
				    "TRYAGAIN the partition's primary went "
				    "down: the outcome is unknown");
			}
		}
		s->watch[i] = s->watch[--s->nwatch];
		break;
	}
	route_waiting(ctx, s);
}

/* ---- the replica's side ------------------------------------------------- */

static bool from_primary(const kv_part *s, const tr_msg *m)
{
	return s->role == KV_REPLICA && tr_pid_eq(m->sender, s->primary);
}

static void sync_begin(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	if (s->role == KV_PRIMARY || s->role == KV_CLAIMING)
		return; /* a conflict; the name's owner decides */
	if (!from_primary(s, m)) {
		unfollow(ctx, s);
		s->primary = m->sender;
		if (tr_monitor(ctx, &s->primary_ref, m->sender) != TR_OK)
			s->primary_ref = 0;
	}
	rs_store_clear(&s->st);
	s->kept = false;
	s->synced = false;
	s->applied = 0;
	set_role(s, KV_REPLICA);
}

static void apply(tr_ctx *ctx, kv_part *s, const void *ops, size_t len)
{
	(void)ctx;
	s->out.len = 0;
	(void)rs_store_exec(&s->st, ops, len, kv_now_ms(), &s->out);
	s->out.oom = false;
	if (s->out.cap > 256u * 1024u)
		resp_buf_reset(&s->out, 256u * 1024u);
}

static void ack(tr_ctx *ctx, const tr_msg *m, uint64_t seq)
{
	kv_seq q = {.seq = seq};
	(void)tr_send(ctx, m->sender, KV_MSG_ACK, &q, sizeof(q));
}

static void replica_msg(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	kv_seq q;
	if (!from_primary(s, m)) {
		/* Not ours to follow: tell it, so that it copies afresh. */
		if (m->type != KV_MSG_DROP)
			(void)tr_send(ctx, m->sender, KV_MSG_NACK, NULL, 0);
		return;
	}
	switch (m->type) {
	case KV_MSG_SYNC_DATA:
		apply(ctx, s, m->data, m->size);
		break;
	case KV_MSG_SYNC_END:
		if (m->size < sizeof(q))
			return;
		memcpy(&q, m->data, sizeof(q));
		s->synced = true;
		s->applied = q.seq;
		ack(ctx, m, q.seq);
		break;
	case KV_MSG_REPL:
		if (m->size < sizeof(q) || !s->synced)
			return;
		memcpy(&q, m->data, sizeof(q));
		if (q.seq != s->applied + 1) {
			/* One was lost on the way (a full queue): this copy
			 * is behind for good. It may not take over, and asks
			 * for a new one. */
			s->synced = false;
			(void)tr_send(ctx, m->sender, KV_MSG_NACK, NULL, 0);
			return;
		}
		apply(ctx, s, (const char *)m->data + sizeof(q),
		    m->size - sizeof(q));
		s->applied = q.seq;
		ack(ctx, m, q.seq);
		break;
	case KV_MSG_DROP:
		kv_part_become_none(ctx, s, "TRYAGAIN");
		break;
	}
}

/* ---- the rest ----------------------------------------------------------- */

static void view_in(tr_ctx *ctx, kv_part *s, const tr_msg *m)
{
	if (m->size != sizeof(kv_view))
		return;
	memcpy(&s->view, m->data, sizeof(s->view));
	/* Without a majority this node serves nothing (below), and what it
	 * saw is no guide to what the others did meanwhile: once back with
	 * a majority it finds out again whether the partition has a
	 * primary (boot, below). */
	if (s->view.n < kv_majority())
		s->seen = false;
	if (s->role == KV_PRIMARY)
		kv_primary_maintain(ctx, s);
	else if (s->role == KV_REPLICA && s->view.n < kv_majority())
		kv_part_stand_down(ctx, s);
	route_waiting(ctx, s);
}

/* Whether the partition has a primary now; remembers that it had one. */
static bool held(kv_part *s, tr_ctx *ctx)
{
	tr_pid holder;
	if (tr_global_whereis(&holder, kv_config.node, s->name) != TR_OK)
		return false;
	s->seen = true;
	s->unheld_ms = 0;
	if (s->kept && s->role == KV_NONE && !tr_pid_eq(holder, tr_self(ctx))) {
		/* It lives on elsewhere, maybe with writes this copy lacks:
		 * the copy is stale from now on. */
		rs_store_clear(&s->st);
		s->kept = false;
		s->applied = 0;
	}
	return true;
}

/* The head start of kept copies. After every node stalled at once, the
 * nodes' views settle when their connections are back, which may be
 * some redials apart: a node whose view settled first must not start a
 * partition empty before a node holding its copy, whose view settled
 * later, has claimed it (that copy would be dropped, and the writes on it
 * lost). 1 s was seen too short in about one run in ten of the stall test
 * (tests/dist/test_kv.sh); it is still a head start, not a guarantee
 * (samples/kv/README.md). */
#define BOOT_EMPTY_MS 3000

/* A partition without a primary anywhere, in a view with a majority that
 * has held still (the member actor's BOOT):
 *   - a node with a kept copy claims it with that copy at once (the
 *     whole cluster lost its majority and came back: every acknowledged
 *     write is on such a copy; two such claims are settled by the name);
 *   - else, if this actor never saw the partition held (a new cluster,
 *     or all of its copies lost while this node was away), the top node
 *     of its ranking starts it empty, BOOT_EMPTY_MS later, so that a
 *     kept copy anywhere wins.
 * A node that restarts sees the partitions held by others before its
 * view has held still long enough for a BOOT. */
static void boot(tr_ctx *ctx, kv_part *s)
{
	uint32_t order[KV_MAX_NODES];
	if (s->role != KV_NONE || s->view.n < kv_majority() || held(s, ctx))
		return;
	int64_t now = kv_now_ms();
	if (s->unheld_ms == 0)
		s->unheld_ms = now;
	if (s->kept) {
		printf("kv %s: %s: no primary anywhere: claims it with the copy "
		       "it kept (%zu keys)\n",
		    kv_config.self, s->name, s->st.count);
		fflush(stdout);
		claim(ctx, s, false);
		return;
	}
	if (s->seen || now - s->unheld_ms < BOOT_EMPTY_MS)
		return;
	kv_rank(&s->view, s->p, order);
	if (strcmp(s->view.names[order[0]], kv_config.self) == 0)
		claim(ctx, s, false);
}

static int part_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	kv_part *s = state;
	switch (m->type) {
	case RS_MSG_OPS:
		batch_in(ctx, s, m, false);
		break;
	case KV_MSG_FWD:
		batch_in(ctx, s, m, true);
		break;
	case KV_MSG_FWD_REPLY:
		fwd_reply(ctx, s, m);
		break;
	case KV_MSG_FWD_MOVED:
		fwd_moved(ctx, s, m);
		break;
	case KV_MSG_ACK:
		if (m->size == sizeof(kv_seq)) {
			kv_seq q;
			memcpy(&q, m->data, sizeof(q));
			kv_primary_ack(ctx, s, m->sender, q.seq);
		}
		break;
	case KV_MSG_NACK:
		kv_primary_nack(ctx, s, m->sender);
		break;
	case KV_MSG_SYNC_BEGIN:
		sync_begin(ctx, s, m);
		break;
	case KV_MSG_SYNC_DATA:
	case KV_MSG_SYNC_END:
	case KV_MSG_REPL:
	case KV_MSG_DROP:
		replica_msg(ctx, s, m);
		break;
	case KV_MSG_VIEW:
		view_in(ctx, s, m);
		break;
	case KV_MSG_BOOT:
		boot(ctx, s);
		break;
	case KV_MSG_TICK:
		if (!s->seen || s->kept)
			(void)held(s, ctx);
		claim_again(ctx, s);
		kv_primary_tick(ctx, s, kv_now_ms());
		route_waiting(ctx, s);
		break;
	case TR_MSG_DOWN:
		down(ctx, s, m);
		break;
	case TR_MSG_GLOBAL_CONFLICT:
		printf("kv %s: %s: lost the name in a conflict: drops its "
		       "copy\n",
		    kv_config.self, s->name);
		fflush(stdout);
		kv_part_become_none(ctx, s, "TRYAGAIN the partition moved");
		break;
	default:
		break;
	}
	return 0;
}

static void part_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	kv_part *s = state;
	set_role(s, KV_NONE);
	rs_store_fini(&s->st);
	resp_buf_fini(&s->out);
	resp_buf_fini(&s->repl);
	kv_q_fini(s);
	free(s);
}

const tr_behaviour kv_part_bhv = {
    .name = "kv.part",
    .init = part_init,
    .handle = part_handle,
    .terminate = part_terminate,
};
