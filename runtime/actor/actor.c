/*
 * Actors: the actor table (pids), messages, spawn, send, the per-turn
 * dispatch loop, exit and reclamation, and request/reply bookkeeping.
 *
 * The actor table maps a slot to its actor. An entry holds either a
 * pointer to a live actor (64-byte aligned, low bit 0) or, for a free slot,
 * (next generation << 1) | 1. A sender loads the entry, then checks the
 * actor's own pid generation: a stale pid fails one check or the other.
 * The actor it found cannot be freed under it because senders run inside
 * an epoch-based reclamation section (sched.c): an exited actor is only
 * retired, and freed once every thread has passed a quiescent state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "dist/dist.h"
#include "mem/pool.h"
#include "rt.h"

#define STATUS(a) ((a)->status & 0xffu)

/* ---- messages ------------------------------------------------------------ */

/* A message with room for `size` payload bytes, header filled; no limit
 * checked. */
static tr_msg *msg_alloc(uint32_t type, size_t size)
{
	size_t total = TR__MSG_HDR + size;
	unsigned cls = tr__pool_class(total);
	void *b;
	if (TR_LIKELY(cls != TR__POOL_LARGE))
		b = tr__pool_alloc(cls);
	else
		b = aligned_alloc(64, (total + 63) & ~(size_t)63);
	if (TR_UNLIKELY(b == NULL))
		return NULL;
	tr__mhdr *h = b;
	h->next = NULL;
	h->rsv = 0;
	tr_msg *m = tr__msg_at(b);
	m->ref = 0;
	m->sender = TR_PID_NONE;
	m->type = type;
	m->size = (uint32_t)size;
	m->_flags = cls;
	return m;
}

/* msg_alloc within the runtime's size limit. */
static int msg_raw(tr_msg **mp, tr_runtime *rt, uint32_t type, size_t size)
{
	if (TR_UNLIKELY(size > rt->opts.max_msg_size || size > UINT32_MAX))
		return TR_EMSGSIZE;
	*mp = msg_alloc(type, size);
	return TR_LIKELY(*mp != NULL) ? TR_OK : TR_ENOMEM;
}

int tr__msg_new(
    tr_msg **mp, tr_runtime *rt, uint32_t type, const void *data, size_t size)
{
	int rc = msg_raw(mp, rt, type, size);
	if (TR_LIKELY(rc == TR_OK) && size != 0)
		memcpy((*mp)->data, data, size);
	return rc;
}

void tr__msg_free(tr_msg *m)
{
	unsigned cls = m->_flags & TR__MF_CLASS;
	if (TR_LIKELY(cls != TR__POOL_LARGE))
		tr__pool_free(cls, tr__mh(m));
	else
		free(tr__mh(m));
}

int tr__msg_new_sys(tr_msg **mp, uint32_t type, const void *data, size_t size)
{
	tr_msg *m = msg_alloc(type, size);
	if (m == NULL)
		return TR_ENOMEM;
	if (size != 0)
		memcpy(m->data, data, size);
	*mp = m;
	return TR_OK;
}

int tr_msg_alloc(tr_msg **msgp, tr_runtime *rt, uint32_t type, size_t size)
{
	if (msgp == NULL || rt == NULL || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	return msg_raw(msgp, rt, type, size);
}

void tr_msg_free(tr_msg *msg)
{
	if (msg != NULL)
		tr__msg_free(msg);
}

/* ---- counters -------------------------------------------------------------
 */

/* Per-scheduler counters are written only by their scheduler: a relaxed
 * load and store, no locked instruction. */
static inline void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

static inline void count_sent(tr_runtime *rt, tr__sched *s)
{
	if (s != NULL)
		bump(&s->n_sent);
	else
		atomic_fetch_add_explicit(&rt->x_sent, 1, memory_order_relaxed);
}

static inline void count_dropped(tr_runtime *rt, tr__sched *s)
{
	if (s != NULL)
		bump(&s->n_dropped);
	else
		atomic_fetch_add_explicit(
		    &rt->x_dropped, 1, memory_order_relaxed);
}

/* ---- the actor table -------------------------------------------------------
 */

static inline uint32_t next_gen(uint32_t gen)
{
	gen++;
	return gen == 0 ? 1 : gen;
}

/* Refills a scheduler's slot cache with up to half its size (under the
 * slot lock: one acquisition per slot_cache_max/2 spawns). Caches are
 * bounded by a fraction of the table and emptied when a scheduler parks, so
 * free slots cannot hide from other threads for long. */
static void slot_refill(tr_runtime *rt, tr__sched *s)
{
	uint32_t want = (rt->slot_cache_max + 1) / 2;
	pthread_mutex_lock(&rt->slot_lock);
	while (s->nslots < want && rt->nslot_free > 0)
		s->slots[s->nslots++] = rt->slot_free[--rt->nslot_free];
	while (s->nslots < want && rt->slot_hwm < rt->pid_cap)
		s->slots[s->nslots++] = rt->slot_hwm++;
	pthread_mutex_unlock(&rt->slot_lock);
	/* Hand out the lowest slots first, so the table stays dense. */
	for (uint32_t i = 0, j = s->nslots; i + 1 < j; i++, j--) {
		uint32_t t = s->slots[i];
		s->slots[i] = s->slots[j - 1];
		s->slots[j - 1] = t;
	}
}

uint32_t tr__slot_alloc(tr_runtime *rt, tr__sched *s)
{
	if (s != NULL) {
		if (TR_UNLIKELY(s->nslots == 0))
			slot_refill(rt, s);
		return s->nslots != 0 ? s->slots[--s->nslots] : 0;
	}
	uint32_t slot = 0;
	pthread_mutex_lock(&rt->slot_lock);
	if (rt->nslot_free > 0)
		slot = rt->slot_free[--rt->nslot_free];
	else if (rt->slot_hwm < rt->pid_cap)
		slot = rt->slot_hwm++;
	pthread_mutex_unlock(&rt->slot_lock);
	return slot;
}

static void slot_give_back(tr_runtime *rt, const uint32_t *slots, uint32_t n)
{
	pthread_mutex_lock(&rt->slot_lock);
	if (rt->nslot_free + n > rt->cap_slot_free) {
		uint32_t cap = rt->cap_slot_free ? rt->cap_slot_free * 2 : 1024;
		while (cap < rt->nslot_free + n)
			cap *= 2;
		uint32_t *p = realloc(rt->slot_free, cap * sizeof(*p));
		if (p == NULL) {
			/* Leaking a few slot numbers beats failing an exit:
			 * the table only loses capacity. */
			pthread_mutex_unlock(&rt->slot_lock);
			return;
		}
		rt->slot_free = p;
		rt->cap_slot_free = cap;
	}
	memcpy(rt->slot_free + rt->nslot_free, slots, n * sizeof(*slots));
	rt->nslot_free += n;
	pthread_mutex_unlock(&rt->slot_lock);
}

void tr__slot_release(tr_runtime *rt, tr__sched *s, uint32_t slot)
{
	if (s == NULL) {
		slot_give_back(rt, &slot, 1);
		return;
	}
	if (TR_UNLIKELY(s->nslots >= rt->slot_cache_max)) {
		uint32_t half = (s->nslots + 1) / 2;
		s->nslots -= half;
		slot_give_back(rt, s->slots + s->nslots, half);
	}
	s->slots[s->nslots++] = slot;
}

void tr__slot_flush(tr_runtime *rt, tr__sched *s)
{
	if (s->nslots != 0) {
		slot_give_back(rt, s->slots, s->nslots);
		s->nslots = 0;
	}
}

tr__actor *tr__lookup(tr_runtime *rt, tr_pid pid)
{
	if (TR_UNLIKELY(
	        pid.node != 0 || pid.slot == 0 || pid.slot >= rt->pid_cap))
		return NULL;
	/* Acquire: pairs with the release store that published the actor in
	 * tr_spawn, so its fields are visible. */
	uintptr_t v =
	    atomic_load_explicit(&rt->pids[pid.slot], memory_order_acquire);
	if (TR_UNLIKELY((v & 1u) != 0 || v == 0))
		return NULL;
	tr__actor *a = (tr__actor *)v;
	return TR_LIKELY(a->pid.gen == pid.gen) ? a : NULL;
}

tr__actor *tr__actor_new(tr_runtime *rt, tr__sched *s, uint32_t kind)
{
	uint32_t slot = tr__slot_alloc(rt, s);
	if (slot == 0)
		return NULL;
	tr__actor *a = tr__pool_alloc(tr__pool_class(sizeof(tr__actor)));
	if (a == NULL) {
		tr__slot_release(rt, s, slot);
		return NULL;
	}
	uintptr_t v =
	    atomic_load_explicit(&rt->pids[slot], memory_order_relaxed);
	a->pid.node = 0;
	a->pid.slot = slot;
	a->pid.gen = v == 0 ? 1u : (uint32_t)(v >> 1);
	a->kind = kind;
	a->b = NULL;
	a->port = NULL;
	atomic_init(&a->has_name, 0);
	atomic_init(&a->kill_pending, 0);
	/* The block may have been a message or another actor: a backlog
	 * left in it would hold this one's remote traffic back for ever. */
	atomic_init(&a->rin, 0);
	atomic_init(&a->rin_low, 0);
	tr__mb_init(a, kind == TR__K_PORT);
	a->state = NULL;
	a->qnext = NULL;
	a->ext = NULL;
	a->retire_epoch = 0;
	a->status = TR__A_NEW;
	a->reason = TR_REASON_NORMAL;
	return a;
}

static inline void actor_publish(tr_runtime *rt, tr__actor *a)
{
	/* Release: pairs with the acquire load in tr__lookup. */
	atomic_store_explicit(
	    &rt->pids[a->pid.slot], (uintptr_t)a, memory_order_release);
}

void tr__actor_unpublish(tr_runtime *rt, tr__actor *a)
{
	atomic_store_explicit(&rt->pids[a->pid.slot],
	    ((uintptr_t)next_gen(a->pid.gen) << 1) | 1u, memory_order_release);
}

/* Frees an actor nobody can reach any more: the mailbox (messages that
 * raced with its exit are dropped, as sends to a dead pid are) and then
 * the actor itself. */
void tr__actor_reclaim(tr_runtime *rt, tr__sched *s, tr__actor *a)
{
	tr__sig_drain(rt, s, a, TR_REASON_NOPROC, "");
	if (a->mb_tail != tr__stub(a))
		tr__msg_free(a->mb_tail);
	if (a->port != NULL)
		free(a->port);
	tr__pool_free(tr__pool_class(sizeof(tr__actor)), a);
}

/* ---- sending --------------------------------------------------------------
 */

/* A pid of another node: hand it to the distribution layer. */
static int dist_send(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *m)
{
	/* Acquire: pairs with the release store in tr__dist_attach. */
	const tr__dist_ops *ops =
	    atomic_load_explicit(&rt->dist_ops, memory_order_acquire);
	if (ops == NULL) {
		count_dropped(rt, s);
		return TR_ENOPROC;
	}
	int rc = ops->send(rt->dist_arg, to, m);
	if (rc == TR_OK) {
		count_sent(rt, s);
		if (s != NULL)
			s->dist_dirty = true;
	} else {
		count_dropped(rt, s);
	}
	return rc;
}

int tr__dist_attach(tr_runtime *rt, const tr__dist_ops *ops, void *arg)
{
	if (rt == NULL || ops == NULL || ops->send == NULL)
		return TR_EINVAL;
	if (atomic_load_explicit(&rt->dist_ops, memory_order_acquire) != NULL)
		return TR_EEXIST;
	rt->dist_arg = arg;
	const char *name = ops->name != NULL ? ops->name(arg) : NULL;
	struct tr__node_name *nn = rt->node_names;
	if (name != NULL && (nn == NULL || strcmp(nn->name, name) != 0)) {
		/* A node of another name than the last one: a new copy. A
		 * node that restarts under its name reuses the old one. */
		size_t len = strlen(name) + 1;
		nn = malloc(sizeof(*nn) + len);
		if (nn != NULL) {
			memcpy(nn->name, name, len);
			nn->prev = rt->node_names;
			rt->node_names = nn;
		}
	}
	/* Release: pairs with the acquire load in tr__node_name. */
	atomic_store_explicit(
	    &rt->node_name, name != NULL ? nn : NULL, memory_order_release);
	atomic_store_explicit(&rt->dist_ops, ops, memory_order_release);
	return TR_OK;
}

void *tr__dist_arg(tr_runtime *rt)
{
	return atomic_load_explicit(&rt->dist_ops, memory_order_acquire) != NULL
	           ? rt->dist_arg
	           : NULL;
}

void tr__dist_detach(tr_runtime *rt)
{
	atomic_store_explicit(&rt->node_name, NULL, memory_order_relaxed);
	atomic_store_explicit(&rt->dist_ops, NULL, memory_order_seq_cst);
	/* Every call of the layer's ops runs inside a scheduler turn or an
	 * ext section (dist_send, the flush at a turn's end): once those
	 * that were open are over, nobody holds the ops any more. */
	tr__epoch_barrier(rt);
}

int tr__dist_inject(tr_runtime *rt, tr_pid to, tr_msg *m)
{
	if (to.node != 0)
		return TR_EINVAL; /* only local pids arrive from the wire */
	return tr__deliver_any(rt, to, m);
}

/* The scheduler of `rt` running on this thread (in the `poll` op, when a
 * layer injects), or NULL for a layer's own thread. */
static tr__sched *poll_sched(const tr_runtime *rt)
{
	tr__sched *s = tr__current;
	return s != NULL && s->rt == rt ? s : NULL;
}

#define REC_SCHED (~0u) /* a "section" of a scheduler in the poll op */

void tr__dist_enter(tr_runtime *rt, unsigned *rec)
{
	if (poll_sched(rt) != NULL)
		*rec = REC_SCHED;
	else
		tr__ext_enter(rt, rec);
}

void tr__dist_exit(tr_runtime *rt, unsigned rec)
{
	if (rec != REC_SCHED)
		tr__ext_exit(rt, rec);
}

int tr__dist_inject_locked(tr_runtime *rt, tr_pid to, tr_msg *m)
{
	if (to.node != 0)
		return TR_EINVAL; /* only local pids arrive from the wire */
	/* A layer thread in an ext section (tr__dist_enter), or a scheduler
	 * in the poll op: either keeps the looked-up actor alive. */
	return tr__deliver(rt, poll_sched(rt), to, m);
}

/* The actor of a local pid from the wire (inside a section), or NULL:
 * counted as `n` dropped messages, as a send to a dead pid is. */
static tr__actor *wire_target(tr_runtime *rt, tr_pid to, size_t n)
{
	tr__actor *a = tr__lookup(rt, to);
	if (TR_UNLIKELY(a == NULL))
		atomic_fetch_add_explicit(
		    &rt->x_dropped, n, memory_order_relaxed);
	return a;
}

/* Pushes msgs[0..n-1] (n > 0) onto a's mailbox as one chain. */
static void chain_push(tr_runtime *rt, tr__actor *a, tr_msg **msgs, size_t n)
{
	/* The chain is private until the exchange below: plain links. */
	for (size_t i = 0; i + 1 < n; i++)
		__atomic_store_n(
		    tr__link(msgs[i]), msgs[i + 1], __ATOMIC_RELAXED);
	tr_msg *last = msgs[n - 1];
	__atomic_store_n(tr__link(last), NULL, __ATOMIC_RELAXED);
	/* As in tr__mb_push, for a chain: acq_rel on the exchange, then
	 * the release store of the old head's link publishes the whole
	 * chain (the links above happen before it) to the consumer. */
	uintptr_t prev = atomic_exchange_explicit(
	    &a->mb_head, (uintptr_t)last, memory_order_acq_rel);
	tr_msg *p = (tr_msg *)(prev & ~(uintptr_t)1);
	/* Counted before the link store, as in tr__mb_push: all of the
	 * chain, but its first message when it wakes the actor. */
	uint32_t counted = (uint32_t)n - ((prev & 1u) != 0 ? 1u : 0u);
	if (counted != 0)
		atomic_fetch_add_explicit(
		    &a->mb_in, counted, memory_order_relaxed);
	__atomic_store_n(tr__link(p), msgs[0], __ATOMIC_RELEASE);
	if ((prev & 1u) != 0)
		tr__schedule(rt, poll_sched(rt), a, true);
	atomic_fetch_add_explicit(&rt->x_sent, n, memory_order_relaxed);
}

int tr__dist_inject_many_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n)
{
	if (to.node != 0)
		return TR_EINVAL;
	if (n == 0)
		return TR_OK;
	tr__actor *a = wire_target(rt, to, n);
	if (a == NULL)
		return TR_ENOPROC;
	chain_push(rt, a, msgs, n);
	return TR_OK;
}

int tr__dist_inject_bounded_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n, uint32_t limit)
{
	if (to.node != 0)
		return TR_EINVAL;
	if (n == 0)
		return TR_OK;
	tr__actor *a = wire_target(rt, to, n);
	if (a == NULL)
		return TR_ENOPROC;
	if (atomic_load_explicit(&a->rin, memory_order_seq_cst) >= limit) {
		/* Ask to hear of the drain first, then look again: either
		 * the owner's take (seq_cst, in tr__rin_taken) sees the
		 * request, or this second load sees the take. */
		uint32_t low = limit / 2 > 0 ? limit / 2 : 1;
		atomic_store_explicit(&a->rin_low, low, memory_order_seq_cst);
		if (atomic_load_explicit(&a->rin, memory_order_seq_cst) >=
		    limit)
			return TR_EAGAIN;
		/* It drained meanwhile: deliver, and let the request stand
		 * (at worst one drained call more than needed). */
	}
	uint32_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		msgs[i]->_flags |= TR__MF_REMOTE;
		bytes += tr__rin_size(msgs[i]);
	}
	/* Counted before the push, so that the owner never takes off what
	 * was not added. */
	atomic_fetch_add_explicit(&a->rin, bytes, memory_order_relaxed);
	atomic_fetch_add_explicit(&rt->rin_total, bytes, memory_order_relaxed);
	chain_push(rt, a, msgs, n);
	return TR_OK;
}

uint64_t tr__dist_backlog(tr_runtime *rt)
{
	return atomic_load_explicit(&rt->rin_total, memory_order_relaxed);
}

void tr__rin_taken(tr_runtime *rt, tr__actor *a, uint32_t bytes)
{
	atomic_fetch_sub_explicit(&rt->rin_total, bytes, memory_order_relaxed);
	uint32_t now =
	    atomic_fetch_sub_explicit(&a->rin, bytes, memory_order_seq_cst) -
	    bytes;
	uint32_t low = atomic_load_explicit(&a->rin_low, memory_order_seq_cst);
	if (TR_LIKELY(low == 0 || now > low))
		return;
	if (atomic_exchange_explicit(&a->rin_low, 0, memory_order_acq_rel) == 0)
		return;
	/* Acquire: pairs with the release store in tr__dist_attach. */
	const tr__dist_ops *ops =
	    atomic_load_explicit(&rt->dist_ops, memory_order_acquire);
	if (ops != NULL && ops->drained != NULL)
		ops->drained(rt->dist_arg, a->pid);
}

int tr__deliver(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *m)
{
	tr__actor *a = tr__lookup(rt, to);
	if (TR_UNLIKELY(a == NULL)) {
		if (to.node != 0)
			return dist_send(rt, s, to, m);
		count_dropped(rt, s);
		return TR_ENOPROC;
	}
	if (tr__mb_push(a, m))
		tr__schedule(rt, s, a, true);
	count_sent(rt, s);
	return TR_OK;
}

int tr__deliver_any(tr_runtime *rt, tr_pid to, tr_msg *m)
{
	tr__sched *s = tr__current;
	if (s != NULL && s->rt == rt)
		return tr__deliver(rt, s, to, m);
	unsigned rec;
	tr__ext_enter(rt, &rec);
	int rc = tr__deliver(rt, NULL, to, m);
	tr__ext_exit(rt, rec);
	return rc;
}

uint64_t tr__new_ref(tr_runtime *rt)
{
	return atomic_fetch_add_explicit(
	    &rt->next_ref, 1, memory_order_relaxed);
}

/* Delivery from an actor context: on its scheduler, or (while the runtime
 * is being torn down) from the stopping thread. */
static inline int ctx_deliver(tr_ctx *ctx, tr_pid to, tr_msg *m)
{
	if (TR_LIKELY(ctx->s != NULL))
		return tr__deliver(ctx->rt, ctx->s, to, m);
	return tr__deliver_any(ctx->rt, to, m);
}

int tr_send(
    tr_ctx *ctx, tr_pid to, uint32_t type, const void *data, size_t size)
{
	if (TR_UNLIKELY(ctx == NULL || (data == NULL && size != 0) ||
	                type >= TR_MSG_SYSTEM))
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_new(&m, ctx->rt, type, data, size);
	if (TR_UNLIKELY(rc != TR_OK))
		return rc;
	m->sender = ctx->a->pid;
	rc = ctx_deliver(ctx, to, m);
	if (TR_UNLIKELY(rc != TR_OK))
		tr__msg_free(m);
	return rc;
}

int tr_send_msg(tr_ctx *ctx, tr_pid to, tr_msg *msg)
{
	if (ctx == NULL || msg == NULL || msg->type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	if (msg->size > ctx->rt->opts.max_msg_size)
		return TR_EMSGSIZE;
	msg->sender = ctx->a->pid;
	msg->ref = 0;
	msg->_flags &= TR__MF_CLASS;
	return ctx_deliver(ctx, to, msg);
}

int tr_forward(tr_ctx *ctx, tr_pid to, const tr_msg *msg)
{
	if (ctx == NULL || msg == NULL || msg->type >= TR_MSG_SYSTEM ||
	    (msg->_flags & (TR__MF_SIGNAL | TR__MF_DOWN | TR__MF_RTIMEO)) != 0)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_new(&m, ctx->rt, msg->type, msg->data, msg->size);
	if (rc != TR_OK)
		return rc;
	m->sender = msg->sender;
	m->ref = msg->ref;
	m->_flags |= msg->_flags & TR__MF_REPLY;
	rc = ctx_deliver(ctx, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

int tr_post(
    tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t size)
{
	if (rt == NULL || (data == NULL && size != 0) || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_new(&m, rt, type, data, size);
	if (rc != TR_OK)
		return rc;
	rc = tr__deliver_any(rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

int tr_post_msg(tr_runtime *rt, tr_pid to, tr_msg *msg)
{
	if (rt == NULL || msg == NULL || msg->type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	if (msg->size > rt->opts.max_msg_size)
		return TR_EMSGSIZE;
	msg->sender = TR_PID_NONE;
	msg->ref = 0;
	msg->_flags &= TR__MF_CLASS;
	return tr__deliver_any(rt, to, msg);
}

bool tr_is_alive(tr_runtime *rt, tr_pid pid)
{
	if (rt == NULL)
		return false;
	/* The table entry is the truth: an actor leaves it when it exits
	 * (its status is private to the thread running it). */
	tr__sched *s = tr__current;
	if (s != NULL && s->rt == rt)
		return tr__lookup(rt, pid) != NULL;
	unsigned rec;
	tr__ext_enter(rt, &rec);
	bool alive = tr__lookup(rt, pid) != NULL;
	tr__ext_exit(rt, rec);
	return alive;
}

/* ---- spawn -----------------------------------------------------------------
 */

static bool run_init(tr_ctx *ctx, tr__actor *a);
static void actor_exit(tr_runtime *rt, tr__sched *s, tr_ctx *ctx, tr__actor *a,
    const char *where, uint32_t type);

int tr__spawn(tr_pid *pid, tr_runtime *rt, const tr_behaviour *b, void *arg,
    const tr_spawn_opts *opts, tr__actor *parent, bool link, uint64_t *mref)
{
	tr_spawn_opts o;
	tr_spawn_opts_init(&o);
	int rc = tr__struct_in(&o, sizeof(o), opts, TR_SPAWN_OPTS_V1_SIZE);
	if (rc != TR_OK)
		return rc;
	uint32_t flags = o.flags;
	if (rt == NULL || b == NULL || b->handle == NULL ||
	    (flags & ~(TR_SPAWN_SYNC_INIT | TR_SPAWN_TRAP_EXIT)) != 0)
		return TR_EINVAL;
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return TR_ECLOSED;
	tr__sched *s = tr__current;
	if (s != NULL && s->rt != rt)
		s = NULL;
	tr__actor *a = tr__actor_new(rt, s, TR__K_ACTOR);
	if (a == NULL)
		return TR_ENOMEM;
	a->b = b;
	a->state = arg;
	if ((flags & TR_SPAWN_TRAP_EXIT) != 0)
		a->status |= TR__A_TRAP;
	if (parent != NULL && (link || mref != NULL) &&
	    tr__sig_spawn_bind(rt, parent, a, link, mref) != TR_OK) {
		/* Not yet visible to anyone: undo by hand. */
		tr__sig_spawn_unbind(parent, a, link, mref ? *mref : 0);
		if (a->ext != NULL) {
			free(a->ext->links);
			free(a->ext->watchers);
			free(a->ext->watching);
			free(a->ext);
		}
		tr__slot_release(rt, s, a->pid.slot);
		tr__pool_free(tr__pool_class(sizeof(tr__actor)), a);
		return TR_ENOMEM;
	}
	if (pid != NULL)
		*pid = a->pid;
	if (s != NULL)
		bump(&s->n_spawned);
	else
		atomic_fetch_add_explicit(
		    &rt->x_spawned, 1, memory_order_relaxed);
	actor_publish(rt, a);
	if ((flags & TR_SPAWN_SYNC_INIT) != 0) {
		/* Run init here, as the child: swap the scheduler's context
		 * (nested synchronous spawns nest the swaps). */
		tr_ctx local = {.s = NULL, .rt = rt, .a = a};
		tr_ctx *ctx = &local;
		tr__actor *saved = NULL;
		if (s != NULL) {
			saved = s->ctx.a;
			s->ctx.a = a;
			ctx = &s->ctx;
		}
		bool ok = run_init(ctx, a);
		if (!ok) {
			int reason = (a->status & TR__A_IGNORED) != 0
			                 ? TR_INIT_IGNORE
			                 : a->reason;
			if (parent != NULL)
				tr__sig_spawn_unbind(
				    parent, a, link, mref != NULL ? *mref : 0);
			actor_exit(rt, s, ctx, a, "init", 0);
			tr__retire(rt, s, a);
			if (s != NULL)
				s->ctx.a = saved;
			if (o.init_reason != NULL)
				*o.init_reason = reason;
			return TR_EINIT;
		}
		if (s != NULL)
			s->ctx.a = saved;
	}
	tr__schedule(rt, s, a, false);
	return TR_OK;
}

int tr_spawn(tr_pid *pid, tr_runtime *rt, const tr_behaviour *b, void *arg,
    const tr_spawn_opts *opts)
{
	return tr__spawn(pid, rt, b, arg, opts, NULL, false, NULL);
}

tr_pid tr_self(const tr_ctx *ctx)
{
	return ctx != NULL ? ctx->a->pid : TR_PID_NONE;
}

tr_runtime *tr_runtime_of(const tr_ctx *ctx)
{
	return ctx != NULL ? ctx->rt : NULL;
}

void tr_exit(tr_ctx *ctx, int reason)
{
	if (ctx == NULL)
		return;
	tr__actor *a = ctx->a;
	a->status = (a->status & ~0xffu) | TR__A_EXITING;
	a->reason = reason;
}

void tr_crash(tr_ctx *ctx, int reason)
{
	tr_exit(ctx, reason == TR_REASON_NORMAL ? 1 : reason);
}

/* ---- running an actor
 * -------------------------------------------------------- */

/* The exit path of an actor, on the thread running it: terminate, make
 * its pid dead, release its name, then (the caller) retire its memory. */
static void actor_exit(tr_runtime *rt, tr__sched *s, tr_ctx *ctx, tr__actor *a,
    const char *where, uint32_t type)
{
	int reason = a->reason;
	bool owed = (a->status & TR__A_NOTERM) == 0;
	bool report = (a->status & TR__A_NOREPORT) == 0;
	a->status = TR__A_DEAD;
	/* For the listing (info.c): the pid stays live until unpublished
	 * below, and terminate may take long (a supervisor stopping its
	 * children). This actor runs no turn again, so the word's other
	 * meaning (a kill to apply) no longer matters. */
	atomic_store_explicit(&a->kill_pending, 2, memory_order_relaxed);
	if (owed && a->b->terminate != NULL) {
		ctx->a = a;
		a->b->terminate(ctx, a->state, reason);
	}
	a->state = NULL;
	tr__ext *x = a->ext;
	if (x != NULL) {
		tr__calls_free(rt, a);
		tr__saved_free(a);
	}
	tr__actor_unpublish(rt, a);
	/* Pairs with the fence in tr_register: either it sees the pid dead,
	 * or we see its name. */
	tr__fence_sc();
	char name[TR_NAME_MAX + 1] = "";
	if (atomic_load_explicit(&a->has_name, memory_order_relaxed))
		tr__registry_release(rt, a, name);
	tr__slot_release(rt, s, a->pid.slot);
	if (reason != TR_REASON_NORMAL && reason != TR_REASON_SHUTDOWN &&
	    report) {
		tr__log_crash(rt, a, reason, name,
		    x != NULL ? x->exit_text : "", where, type);
		if (s != NULL)
			bump(&s->n_crashes);
		else
			atomic_fetch_add_explicit(
			    &rt->x_crashes, 1, memory_order_relaxed);
	}
	/* Signals go out only now, after the name is released (DESIGN.md);
	 * then link and monitor requests still queued get the real reason. */
	tr__sig_exit(rt, s, a, reason);
	tr__sig_drain(rt, s, a, reason, x != NULL ? x->exit_text : "");
	if (x != NULL) {
		free(x->pending);
		free(x);
		a->ext = NULL;
	}
	if (s != NULL)
		bump(&s->n_died);
	else
		atomic_fetch_add_explicit(&rt->x_died, 1, memory_order_relaxed);
}

/* Runs init; false if the actor is to exit at once. */
static bool run_init(tr_ctx *ctx, tr__actor *a)
{
	/* Keep the flag bits (trap_exit may be set at spawn). */
	a->status = (a->status & ~0xffu) | TR__A_RUNNING;
	void *st = a->state;
	int rc = a->b->init != NULL ? a->b->init(ctx, st, &st) : TR_OK;
	a->state = st;
	if (rc == TR_INIT_IGNORE) {
		/* OTP's ignore: not wanted, which is no crash. */
		a->status = TR__A_EXITING | TR__A_NOTERM | TR__A_NOREPORT |
		            TR__A_IGNORED;
		a->reason = TR_REASON_NORMAL;
		return false;
	}
	if (rc != TR_OK) {
		a->status = TR__A_EXITING | TR__A_NOTERM;
		a->reason = rc > 0 ? rc : (rc == 0 ? 1 : rc);
		return false;
	}
	/* An init that called tr_exit and returned TR_OK initialised the
	 * actor: terminate runs and frees the state init stored. */
	return STATUS(a) != TR__A_EXITING;
}

/* A system message: signals, DOWNs, timer messages, replies and request
 * timeouts. True if it goes on to handle. */
static TR_NOINLINE bool sys_dispatch(tr__sched *s, tr__actor *a, tr_msg *m)
{
	uint32_t f = m->_flags;
	if ((f & TR__MF_INSPECT) != 0) {
		/* The runtime answers for the actor (inspect.c). */
		tr__inspect_answer(s->rt, s, a, m);
		return false;
	}
	if ((f & (TR__MF_SIGNAL | TR__MF_DOWN)) != 0) {
		if (!tr__sig_dispatch(s, a, m))
			return false;
		/* A DOWN of a call's monitor ends (or retries) the call. */
		return (f & TR__MF_DOWN) == 0 || !tr__call_down(s, a, m);
	}
	if ((f & TR__MF_TIMER) != 0) {
		if (tr__timer_take(s->rt, m))
			return true;
		bump(&s->n_dropped); /* cancelled since it was sent */
		return false;
	}
	return tr__call_dispatch(s, a, m);
}

/* Handles one message; system messages are filtered here. */
static inline void dispatch(tr__sched *s, tr__actor *a, tr_msg *m)
{
	if (TR_UNLIKELY((m->_flags & TR__MF_SYSTEM) != 0) &&
	    !sys_dispatch(s, a, m))
		return;
	int rc = a->b->handle(&s->ctx, a->state, m);
	if (TR_UNLIKELY(rc != 0)) {
		a->status = (a->status & ~0xffu) | TR__A_EXITING;
		a->reason = rc;
	}
}

/* ---- deferred messages ------------------------------------------------------
 *
 * The message handed to handle is still in the mailbox: it is the queue's
 * tail, serving as its stub until the next pop frees it. tr_defer takes it
 * out by putting the actor's own stub back in its place, so the mailbox
 * moves on without it and nothing is copied. Deferred messages are kept
 * in a list of the actor's extension, chained through their link word,
 * which nobody else touches once a message has left the queue.
 */

static void saved_push(tr__ext *x, tr_msg *m)
{
	__atomic_store_n(tr__link(m), NULL, __ATOMIC_RELAXED);
	if (x->saved_tail != NULL)
		__atomic_store_n(tr__link(x->saved_tail), m, __ATOMIC_RELAXED);
	else
		x->saved_head = m;
	x->saved_tail = m;
	x->nsaved++;
}

/* Takes the tail `m` out of the mailbox of `a` (the thread running it). */
static void mb_detach_tail(tr__actor *a, tr_msg *m)
{
	tr_msg *stub = tr__stub(a);
	/* Acquire: pairs with the release store of the link in
	 * tr__mb_push, as in tr__mb_pop. */
	tr_msg *next = __atomic_load_n(tr__link(m), __ATOMIC_ACQUIRE);
	if (next == NULL) {
		/* m may be the head, which the next sender links to: make the
		 * stub the head instead. Release: the stub's cleared link is
		 * visible to the sender whose exchange finds the stub. */
		a->stub_next = NULL;
		uintptr_t head = (uintptr_t)m;
		if (atomic_compare_exchange_strong_explicit(&a->mb_head, &head,
		        (uintptr_t)stub, memory_order_release,
		        memory_order_relaxed)) {
			a->mb_tail = stub;
			return;
		}
		/* A sender swapped the head already and is about to link
		 * its message to m; it will within a few instructions. */
		while ((next = __atomic_load_n(
		            tr__link(m), __ATOMIC_ACQUIRE)) == NULL)
			tr__cpu_relax();
	}
	/* m is not the head: no sender writes its link any more, and the
	 * stub, off the queue, is written by this thread only. */
	a->stub_next = next;
	a->mb_tail = stub;
}

int tr_defer(tr_ctx *ctx, const tr_msg *msg)
{
	if (ctx == NULL || msg == NULL || ctx->s == NULL)
		return TR_EINVAL;
	tr__actor *a = ctx->a;
	tr__ext *x = tr__ext_of(a);
	if (x == NULL)
		return TR_ENOMEM;
	if (x->in_cont)
		return TR_EINVAL; /* a call's answer is not handle's */
	tr_msg *m = (tr_msg *)msg;
	if (m == x->replaying) {
		x->resaved = true; /* replay() keeps it */
		return TR_OK;
	}
	if (m != a->mb_tail || m == tr__stub(a))
		return TR_EINVAL;
	mb_detach_tail(a, m);
	saved_push(x, m);
	return TR_OK;
}

uint32_t tr_replay(tr_ctx *ctx)
{
	if (ctx == NULL || ctx->a->ext == NULL || ctx->a->ext->nsaved == 0)
		return 0;
	tr__actor *a = ctx->a;
	/* Only a running actor: one that is exiting frees them instead. */
	if (STATUS(a) == TR__A_RUNNING)
		a->status = (a->status & ~0xffu) | TR__A_REPLAY;
	return a->ext->nsaved;
}

uint32_t tr_deferred(const tr_ctx *ctx)
{
	return ctx != NULL && ctx->a->ext != NULL ? ctx->a->ext->nsaved : 0;
}

void tr__saved_free(tr__actor *a)
{
	tr__ext *x = a->ext;
	tr_msg *m = x->saved_head;
	while (m != NULL) {
		tr_msg *next = __atomic_load_n(tr__link(m), __ATOMIC_RELAXED);
		tr__msg_free(m);
		m = next;
	}
	x->saved_head = x->saved_tail = NULL;
	x->nsaved = 0;
}

/* Appends the list at `m` to the save queue. */
static void saved_append(tr__ext *x, tr_msg *m)
{
	while (m != NULL) {
		tr_msg *next = __atomic_load_n(tr__link(m), __ATOMIC_RELAXED);
		saved_push(x, m);
		m = next;
	}
}

/* Hands the deferred messages to handle again, oldest first (tr_replay),
 * before the mailbox goes on. */
static void replay(tr__sched *s, tr__actor *a)
{
	tr__ext *x = a->ext;
	a->status = (a->status & ~0xffu) | TR__A_RUNNING;
	tr_msg *list = x->saved_head;
	x->saved_head = x->saved_tail = NULL;
	x->nsaved = 0;
	while (list != NULL) {
		tr_msg *m = list;
		list = __atomic_load_n(tr__link(m), __ATOMIC_RELAXED);
		x->replaying = m;
		x->resaved = false;
		int rc = a->b->handle(&s->ctx, a->state, m);
		x->replaying = NULL;
		if (x->resaved)
			saved_push(x, m);
		else
			tr__msg_free(m);
		if (TR_UNLIKELY(rc != 0)) {
			a->status = (a->status & ~0xffu) | TR__A_EXITING;
			a->reason = rc;
		}
		if (STATUS(a) == TR__A_RUNNING)
			continue;
		/* Exiting: the rest is freed with the actor. Replay asked
		 * again: start over from the oldest, those not replayed yet
		 * after those deferred again. */
		saved_append(x, list);
		if (STATUS(a) != TR__A_REPLAY)
			return;
		a->status = (a->status & ~0xffu) | TR__A_RUNNING;
		list = x->saved_head;
		x->saved_head = x->saved_tail = NULL;
		x->nsaved = 0;
	}
}

void tr__run_actor(tr__sched *s, tr__actor *a)
{
	s->ctx.a = a;
	if (TR_UNLIKELY(STATUS(a) == TR__A_NEW)) {
		if (!run_init(&s->ctx, a)) {
			actor_exit(s->rt, s, &s->ctx, a, "init", 0);
			tr__retire(s->rt, s, a);
			return;
		}
	}
	if (TR_UNLIKELY(atomic_load_explicit(
	                    &a->kill_pending, memory_order_relaxed) != 0)) {
		/* tr_kill(KILL) does not wait its turn in the mailbox. */
		a->status =
		    (a->status & ~0xffu) | TR__A_EXITING | TR__A_NOREPORT;
		a->reason = TR_REASON_KILLED;
		if (a->ext != NULL)
			a->ext->exit_text[0] = '\0';
		actor_exit(s->rt, s, &s->ctx, a, NULL, 0);
		tr__retire(s->rt, s, a);
		return;
	}
	uint32_t n = s->rt->opts.batch;
	/* Remote messages taken in this turn, given back to the backlog once
	 * at its end (one atomic per turn, not per message). */
	uint32_t rin = 0;
	for (;;) {
		tr_msg *m = tr__mb_pop(a);
		if (m == NULL) {
			if (rin != 0) {
				tr__rin_taken(s->rt, a, rin);
				rin = 0;
			}
			if (tr__mb_mark_idle(a))
				return;
			/* A sender swapped the head but has not linked its
			 * message yet; it will within a few instructions. */
			tr__cpu_relax();
			continue;
		}
		tr__mb_taken(a);
		if (TR_UNLIKELY((m->_flags & TR__MF_REMOTE) != 0))
			rin += tr__rin_size(m);
		dispatch(s, a, m);
		if (TR_UNLIKELY(STATUS(a) != TR__A_RUNNING)) {
			uint32_t type = m->type; /* m may be deferred, or freed
			                          * in the replay */
			if (STATUS(a) == TR__A_REPLAY)
				replay(s, a);
			if (STATUS(a) != TR__A_RUNNING) {
				if (rin != 0)
					tr__rin_taken(s->rt, a, rin);
				actor_exit(s->rt, s, &s->ctx, a, NULL, type);
				tr__retire(s->rt, s, a);
				return;
			}
		}
		if (--n == 0)
			break;
	}
	if (rin != 0)
		tr__rin_taken(s->rt, a, rin);
	/* The batch is used up: go idle if nothing waits, otherwise let the
	 * others run first. */
	if (__atomic_load_n(tr__link(a->mb_tail), __ATOMIC_ACQUIRE) == NULL &&
	    tr__mb_mark_idle(a))
		return;
	tr__schedule(s->rt, s, a, false);
}

/* Ends an actor while the runtime is torn down (single-threaded: the
 * schedulers are gone): init if it never ran, then terminate, then free. */
void tr__actor_teardown(tr_runtime *rt, tr__actor *a)
{
	tr_ctx ctx = {.s = NULL, .rt = rt, .a = a};
	if (a->kind == TR__K_ACTOR && STATUS(a) != TR__A_DEAD) {
		if (STATUS(a) == TR__A_NEW)
			(void)run_init(&ctx, a);
		if (STATUS(a) == TR__A_RUNNING)
			a->reason = TR_REASON_SHUTDOWN;
		actor_exit(rt, NULL, &ctx, a, NULL, 0);
	} else {
		tr__actor_unpublish(rt, a);
	}
	tr__actor_reclaim(rt, NULL, a);
}
