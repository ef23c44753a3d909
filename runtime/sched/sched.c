/*
 * Schedulers: one thread per core, each with its own run queue; idle ones
 * steal, spin briefly, then park.
 *
 * Run queues follow the design of Go's runtime: a per-scheduler ring of
 * TR__RQ_SIZE actors that only its owner pushes to (at the tail) and that
 * the owner and thieves pop from (at the head, with a CAS), a `runnext`
 * slot for the actor the last send woke up, and a global queue, under a
 * lock, for overflow and for actors made runnable by threads that are not
 * schedulers.
 *
 * The runnext slot is what keeps a conversation on one core: when actor A
 * sends to an idle actor B, B runs next on A's scheduler, with A's message
 * still in cache, and no other scheduler is woken. runnext belongs to its
 * scheduler alone (no atomic operation on the message path). A scheduler
 * takes from it at most RUNNEXT_MAX times in a row, so a ping-pong pair
 * cannot starve the ring. The price: an actor woken by a turn that then
 * runs long waits for that turn to end. To bound that, an idle scheduler
 * that sees another stuck in one turn raises the victim's want_runnext, and
 * the victim's next wake-up goes to its ring, where it can be stolen
 * (see ask_runnext).
 *
 * Memory of exited actors is reclaimed with epochs (quiescent-state-based
 * reclamation): a scheduler announces the global epoch between turns every
 * QS_EVERY turns and whenever it idles, a thread that is not a scheduler
 * announces it for the length of each operation (tr__ext_enter), and an
 * actor retired in epoch e is freed once the epoch reaches e + 2, when no
 * thread can still hold a pointer to it from a table lookup.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "dist/dist.h"
#include "rt.h"
#include "sched/gq.h"

#define RUNNEXT_MAX 64u
#define QS_EVERY 64u
#define GLOBAL_EVERY 61u
/* A busy scheduler looks at the I/O set at most this often. */
#define IO_BUSY_NS 20000u

__thread tr__sched *tr__current;

static inline void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

/* ---- epochs -----------------------------------------------------------------
 */

static bool try_advance(tr_runtime *rt)
{
	uint64_t e = atomic_load_explicit(&rt->epoch, memory_order_seq_cst);
	for (unsigned i = 0; i < rt->nsched; i++) {
		tr__sched *o = rt->sched[i];
		/* Acquire: pairs with the release store of `online` when a
		 * scheduler parks, so its last turn happens before any free
		 * this advance allows. */
		if (atomic_load_explicit(&o->online, memory_order_acquire) &&
		    atomic_load_explicit(&o->epoch, memory_order_acquire) != e)
			return false;
	}
	for (unsigned i = 0; i < TR__EXT_RECS; i++) {
		tr__ext_rec *r = &rt->ext_recs[i];
		if (atomic_load_explicit(&r->active, memory_order_acquire) &&
		    atomic_load_explicit(&r->epoch, memory_order_acquire) != e)
			return false;
	}
	return atomic_compare_exchange_strong_explicit(
	    &rt->epoch, &e, e + 1, memory_order_seq_cst, memory_order_relaxed);
}

void tr__sched_dist_flush(tr__sched *s)
{
	s->dist_dirty = false;
	const struct tr__dist_ops *ops =
	    atomic_load_explicit(&s->rt->dist_ops, memory_order_acquire);
	if (ops != NULL && ops->flush != NULL)
		ops->flush(s->rt->dist_arg);
}

/* The layer's `poll` op (dist.h), and the flush after a poll that got
 * something. Called by an online scheduler outside any turn, after a
 * quiescent state: like the flush, a call that loaded the ops ends before
 * the scheduler's next quiescent state, which tr__dist_detach waits for. */
static unsigned dist_poll(tr__sched *s, unsigned mode)
{
	const struct tr__dist_ops *ops =
	    atomic_load_explicit(&s->rt->dist_ops, memory_order_acquire);
	if (ops == NULL || ops->poll == NULL)
		return 0;
	unsigned r = ops->poll(s->rt->dist_arg, mode, s->idx);
	if ((r & TR__DIST_POLL_GOT) != 0 || s->dist_dirty)
		tr__sched_dist_flush(s);
	return r;
}

void tr__epoch_barrier(tr_runtime *rt)
{
	/* Two advances: every scheduler passed a quiescent state, and every
	 * ext section left, after the call began (the rule that frees an
	 * actor retired in epoch e at e + 2). Parked schedulers are offline
	 * and hold nothing. */
	uint64_t e0 = atomic_load_explicit(&rt->epoch, memory_order_seq_cst);
	while (
	    atomic_load_explicit(&rt->epoch, memory_order_acquire) < e0 + 2) {
		if (!try_advance(rt)) {
			struct timespec ts = {0, 200000};
			nanosleep(&ts, NULL);
		}
	}
}

static void reclaim(tr__sched *s)
{
	tr_runtime *rt = s->rt;
	uint64_t e = atomic_load_explicit(&rt->epoch, memory_order_acquire);
	while (
	    s->retire_head != NULL && s->retire_head->retire_epoch + 2 <= e) {
		tr__actor *a = s->retire_head;
		s->retire_head = a->qnext;
		if (s->retire_head == NULL)
			s->retire_tail = NULL;
		tr__actor_reclaim(rt, s, a);
	}
	if (atomic_load_explicit(&rt->xretire_n, memory_order_relaxed) != 0 &&
	    pthread_mutex_trylock(&rt->xretire_lock) == 0) {
		while (rt->xretire_head != NULL &&
		       rt->xretire_head->retire_epoch + 2 <= e) {
			tr__actor *a = rt->xretire_head;
			rt->xretire_head = a->qnext;
			if (rt->xretire_head == NULL)
				rt->xretire_tail = NULL;
			atomic_fetch_sub_explicit(
			    &rt->xretire_n, 1, memory_order_relaxed);
			tr__actor_reclaim(rt, s, a);
		}
		pthread_mutex_unlock(&rt->xretire_lock);
	}
}

/* A quiescent state: this scheduler holds no pointer from a table lookup. */
static void quiescent(tr__sched *s)
{
	uint64_t e = atomic_load_explicit(&s->rt->epoch, memory_order_acquire);
	atomic_store_explicit(&s->epoch, e, memory_order_release);
	/* Orders the announcement before every table lookup of the next
	 * turns (a store followed by loads needs a full fence). */
	tr__fence_sc();
	if (s->retire_head != NULL || atomic_load_explicit(&s->rt->xretire_n,
	                                  memory_order_relaxed) != 0) {
		(void)try_advance(s->rt);
		reclaim(s);
	}
}

static void go_online(tr__sched *s)
{
	atomic_store_explicit(&s->epoch,
	    atomic_load_explicit(&s->rt->epoch, memory_order_acquire),
	    memory_order_relaxed);
	atomic_store_explicit(&s->online, 1, memory_order_relaxed);
	tr__fence_sc();
}

static void go_offline(tr__sched *s)
{
	/* Release: everything this scheduler read happens before an epoch
	 * advance that sees it offline. */
	atomic_store_explicit(&s->online, 0, memory_order_release);
}

void tr__retire(tr_runtime *rt, tr__sched *s, tr__actor *a)
{
	/* The actor's table entry was just overwritten; this fence orders
	 * that store before the epoch read, so a thread that announced a
	 * later epoch cannot have found the actor (see sched.c header). */
	tr__fence_sc();
	a->retire_epoch =
	    atomic_load_explicit(&rt->epoch, memory_order_relaxed);
	a->qnext = NULL;
	if (s != NULL) {
		if (s->retire_tail != NULL)
			s->retire_tail->qnext = a;
		else
			s->retire_head = a;
		s->retire_tail = a;
		return;
	}
	pthread_mutex_lock(&rt->xretire_lock);
	if (rt->xretire_tail != NULL)
		rt->xretire_tail->qnext = a;
	else
		rt->xretire_head = a;
	rt->xretire_tail = a;
	atomic_fetch_add_explicit(&rt->xretire_n, 1, memory_order_relaxed);
	pthread_mutex_unlock(&rt->xretire_lock);
}

void tr__ext_enter(tr_runtime *rt, unsigned *idx)
{
	static __thread unsigned hint;
	unsigned i = hint % TR__EXT_RECS;
	for (unsigned tries = 0;; tries++, i = (i + 1) % TR__EXT_RECS) {
		tr__ext_rec *r = &rt->ext_recs[i];
		uint32_t z = 0;
		if (atomic_load_explicit(&r->active, memory_order_relaxed) ==
		        0 &&
		    atomic_compare_exchange_strong_explicit(&r->active, &z, 1,
		        memory_order_acquire, memory_order_relaxed))
			break;
		if (tries >= TR__EXT_RECS)
			tr__cpu_relax();
	}
	hint = i;
	tr__ext_rec *r = &rt->ext_recs[i];
	atomic_store_explicit(&r->epoch,
	    atomic_load_explicit(&rt->epoch, memory_order_acquire),
	    memory_order_relaxed);
	/* As in quiescent(): announce before looking anything up. */
	tr__fence_sc();
	*idx = i;
}

void tr__ext_exit(tr_runtime *rt, unsigned idx)
{
	atomic_store_explicit(
	    &rt->ext_recs[idx].active, 0, memory_order_release);
}

unsigned tr__ext_active(tr_runtime *rt)
{
	unsigned n = 0;
	for (unsigned i = 0; i < TR__EXT_RECS; i++)
		n += atomic_load_explicit(
		         &rt->ext_recs[i].active, memory_order_acquire) != 0;
	return n;
}

/* ---- the global queue
 * -------------------------------------------------------- */

/* Local ring, owner side. */
static bool rq_push_slow(tr__sched *s, tr__actor *a, uint32_t h, uint32_t t);

static void rq_push(tr__sched *s, tr__actor *a)
{
	for (;;) {
		uint32_t t =
		    atomic_load_explicit(&s->rq_tail, memory_order_relaxed);
		/* Acquire: pairs with the thieves' release CAS of rq_head, so
		 * a slot they emptied may be reused. */
		uint32_t h =
		    atomic_load_explicit(&s->rq_head, memory_order_acquire);
		if (t - h < TR__RQ_SIZE) {
			atomic_store_explicit(&s->rq_buf[t % TR__RQ_SIZE], a,
			    memory_order_relaxed);
			/* Release: publishes the slot to consumers. */
			atomic_store_explicit(
			    &s->rq_tail, t + 1, memory_order_release);
			return;
		}
		if (rq_push_slow(s, a, h, t))
			return;
	}
}

/* The ring is full: move half of it, and `a`, to the global queue. */
static bool rq_push_slow(tr__sched *s, tr__actor *a, uint32_t h, uint32_t t)
{
	uint32_t n = (t - h) / 2;
	tr__actor *batch[TR__GQ_CHUNK];
	for (uint32_t i = 0; i < n; i++)
		batch[i] = atomic_load_explicit(
		    &s->rq_buf[(h + i) % TR__RQ_SIZE], memory_order_relaxed);
	if (!atomic_compare_exchange_strong_explicit(&s->rq_head, &h, h + n,
	        memory_order_acq_rel, memory_order_relaxed))
		return false; /* thieves made room; try the ring again */
	/* As one chunk of pointers: the actors, cold by now, are not
	 * touched on the way (gq.h). */
	batch[n] = a;
	tr__gq_push_spill(s->rt, batch, n + 1);
	return true;
}

static tr__actor *rq_pop(tr__sched *s)
{
	uint32_t h = atomic_load_explicit(&s->rq_head, memory_order_acquire);
	for (;;) {
		uint32_t t =
		    atomic_load_explicit(&s->rq_tail, memory_order_relaxed);
		if (h == t)
			return NULL;
		tr__actor *a = atomic_load_explicit(
		    &s->rq_buf[h % TR__RQ_SIZE], memory_order_relaxed);
		if (atomic_compare_exchange_weak_explicit(&s->rq_head, &h,
		        h + 1, memory_order_release, memory_order_acquire))
			return a;
	}
}

/* Takes a share of the global queue into the local ring; returns one. */
static inline void maybe_wake(tr_runtime *rt);

static tr__actor *gq_take(tr__sched *s)
{
	tr__actor *got[TR__RQ_SIZE / 2];
	s->gq_chunks_first = !s->gq_chunks_first;
	uint32_t n = tr__gq_take(s->rt, got, TR__RQ_SIZE / 2, s->gq_chunks_first);
	if (n == 0)
		return NULL;
	/* The ring has room: we only come here when it is empty, or every
	 * GLOBAL_EVERY turns with at most half of it taken. */
	for (uint32_t i = 1; i < n; i++)
		rq_push(s, got[i]);
	/* The actors moved to the ring are stealable again, but a scheduler
	 * that looked for work while they were in transit (neither in the
	 * global queue nor in the ring) may have gone to sleep: without a
	 * wake it would sleep on while this one runs `first`, however long
	 * that takes, and they wait behind it. */
	if (n > 1)
		maybe_wake(s->rt);
	return got[0];
}

/* ---- waking and parking
 * ------------------------------------------------------ */

/* Wakes scheduler `o`, asleep on its futex or in the I/O set. */
static void sched_wake(tr_runtime *rt, tr__sched *o)
{
	atomic_store_explicit(&o->wake_word, 1, memory_order_release);
	/* Pairs with the fence in park(): either the sleeper sees the word
	 * before it waits in the I/O set, or this sees it there. */
	tr__fence_sc();
	if (atomic_load_explicit(&rt->io_sleeper, memory_order_relaxed) ==
	    o->idx + 1)
		tr__io_kick(rt);
	else
		tr__futex_wake(&o->wake_word, 1);
}

static void wake_one(tr_runtime *rt)
{
	uint64_t m = atomic_load_explicit(&rt->parked, memory_order_acquire);
	while (m != 0) {
		unsigned i = (unsigned)__builtin_ctzll(m);
		if (atomic_compare_exchange_weak_explicit(&rt->parked, &m,
		        m & ~((uint64_t)1 << i), memory_order_acq_rel,
		        memory_order_acquire)) {
			sched_wake(rt, rt->sched[i]);
			return;
		}
	}
}

/* Called after making work stealable: wakes a parked scheduler unless one
 * is already looking for work. */
static inline void maybe_wake(tr_runtime *rt)
{
	/* Pairs with the fence in park(): either the parking scheduler sees
	 * the new work in its re-check, or we see its parked bit. */
	tr__fence_sc();
	if (atomic_load_explicit(&rt->parked, memory_order_relaxed) != 0 &&
	    atomic_load_explicit(&rt->nspinning, memory_order_relaxed) == 0)
		wake_one(rt);
}

static void port_wake(tr_port *p)
{
	atomic_store_explicit(&p->wake, 1, memory_order_release);
	tr__futex_wake(&p->wake, 1);
}

void tr__schedule(tr_runtime *rt, tr__sched *s, tr__actor *a, bool hot)
{
	if (TR_UNLIKELY(a->kind == TR__K_PORT)) {
		port_wake(a->port);
		return;
	}
	if (TR_UNLIKELY(
	        atomic_load_explicit(&rt->halted, memory_order_relaxed))) {
		/* The runtime is being torn down: the actor stays in the
		 * table and its mailbox is freed there. */
		return;
	}
	if (TR_LIKELY(s != NULL)) {
		if (hot) {
			if (TR_LIKELY(atomic_load_explicit(&s->want_runnext,
			                  memory_order_relaxed) == 0)) {
				tr__actor *old = s->runnext;
				s->runnext = a;
				if (old == NULL)
					return;
				a = old;
			} else {
				atomic_store_explicit(
				    &s->want_runnext, 0, memory_order_relaxed);
			}
		}
		rq_push(s, a);
		maybe_wake(rt);
		return;
	}
	tr__gq_push_one(rt, a);
	maybe_wake(rt);
}

/* ---- stealing
 * ----------------------------------------------------------------- */

static tr__actor *steal_ring(tr__sched *s, tr__sched *v)
{
	uint32_t h = atomic_load_explicit(&v->rq_head, memory_order_acquire);
	for (;;) {
		/* Acquire: pairs with the owner's release store of rq_tail. */
		uint32_t t =
		    atomic_load_explicit(&v->rq_tail, memory_order_acquire);
		uint32_t n = t - h;
		n -= n / 2;
		if (n == 0)
			return NULL;
		if (n > TR__RQ_SIZE / 2) {
			/* h and t were read at different times; read again. */
			h = atomic_load_explicit(
			    &v->rq_head, memory_order_acquire);
			continue;
		}
		uint32_t mt =
		    atomic_load_explicit(&s->rq_tail, memory_order_relaxed);
		for (uint32_t i = 0; i < n; i++)
			atomic_store_explicit(
			    &s->rq_buf[(mt + i) % TR__RQ_SIZE],
			    atomic_load_explicit(
			        &v->rq_buf[(h + i) % TR__RQ_SIZE],
			        memory_order_relaxed),
			    memory_order_relaxed);
		if (atomic_compare_exchange_strong_explicit(&v->rq_head, &h,
		        h + n, memory_order_acq_rel, memory_order_acquire)) {
			n--;
			tr__actor *a = atomic_load_explicit(
			    &s->rq_buf[(mt + n) % TR__RQ_SIZE],
			    memory_order_relaxed);
			if (n != 0)
				atomic_store_explicit(
				    &s->rq_tail, mt + n, memory_order_release);
			return a;
		}
	}
}

/* A victim that has been in the same turn since our previous look, with
 * nothing in its ring, may be holding a woken actor in runnext while we
 * idle: ask it to put its next wake-up where we can steal it. One that is
 * merely busy changes turns all the time and keeps its conversation local. */
static void ask_runnext(tr__sched *s, tr__sched *v)
{
	uint32_t seq = atomic_load_explicit(&v->turn_seq, memory_order_relaxed);
	if ((seq & 1u) == 0 || s->seen_seq[v->idx] != seq) {
		s->seen_seq[v->idx] = seq;
		return;
	}
	if (atomic_load_explicit(&v->want_runnext, memory_order_relaxed) == 0)
		atomic_store_explicit(
		    &v->want_runnext, 1, memory_order_relaxed);
}

static tr__actor *steal(tr__sched *s)
{
	tr_runtime *rt = s->rt;
	unsigned n = rt->nsched;
	if (n < 2)
		return NULL;
	s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
	unsigned start = (unsigned)(s->rng >> 33) % n;
	for (unsigned k = 0; k < n; k++) {
		tr__sched *v = rt->sched[(start + k) % n];
		if (v == s)
			continue;
		tr__actor *a = steal_ring(s, v);
		if (a == NULL)
			ask_runnext(s, v);
		if (a != NULL) {
			bump(&s->n_steals);
			return a;
		}
	}
	return NULL;
}

/* ---- the scheduler loop
 * ------------------------------------------------------- */

static bool work_visible(tr_runtime *rt)
{
	if (atomic_load_explicit(&rt->gq_len, memory_order_relaxed) != 0)
		return true;
	for (unsigned i = 0; i < rt->nsched; i++) {
		tr__sched *o = rt->sched[i];
		if (atomic_load_explicit(&o->rq_tail, memory_order_acquire) !=
		    atomic_load_explicit(&o->rq_head, memory_order_acquire))
			return true;
	}
	return false;
}

static inline bool exiting(tr_runtime *rt)
{
	return atomic_load_explicit(&rt->halted, memory_order_acquire) != 0;
}

/* Events an I/O sleeper takes at once. */
#define IO_BATCH 64

static void park(tr__sched *s)
{
	tr_runtime *rt = s->rt;
	uint64_t bit = (uint64_t)1 << s->idx;
	/* Online still: no poll of this scheduler's comes until it wakes. */
	(void)dist_poll(s, TR__DIST_POLL_PARK);
	tr__slot_flush(rt, s);
	go_offline(s);
	atomic_store_explicit(&s->wake_word, 0, memory_order_relaxed);
	/* The I/O set's sleeper, if it has a set and nobody sleeps there
	 * (sched/io.c). Before the fence below, which orders it before the
	 * look at wake_word, against sched_wake's store and look. */
	uint32_t none = 0;
	bool io = atomic_load_explicit(&rt->io_ep, memory_order_acquire) >=
	              0 &&
	          atomic_compare_exchange_strong_explicit(&rt->io_sleeper,
	              &none, s->idx + 1, memory_order_seq_cst,
	              memory_order_relaxed);
	struct epoll_event evs[IO_BATCH];
	int got = 0;
	atomic_fetch_or_explicit(&rt->parked, bit, memory_order_seq_cst);
	/* Pairs with the fences in maybe_wake() and sched_wake(). */
	tr__fence_sc();
	if (work_visible(rt) || s->runnext != NULL || exiting(rt)) {
		atomic_fetch_and_explicit(
		    &rt->parked, ~bit, memory_order_acq_rel);
	} else {
		bump(&s->n_parks);
		uint64_t t0 = tr__now_ns();
		atomic_store_explicit(&s->park_since, t0, memory_order_relaxed);
		while (atomic_load_explicit(
		           &s->wake_word, memory_order_acquire) == 0 &&
		       !exiting(rt)) {
			if (!io) {
				tr__futex_wait(&s->wake_word, 0, -1);
				continue;
			}
			got = tr__io_wait(rt, evs, IO_BATCH, -1);
			if (got > 0)
				break; /* a descriptor is ready */
		}
		/* Relaxed: statistics. The reader may count this sleep twice
		 * or not at all for a moment; the next read is right. */
		atomic_store_explicit(&s->park_since, 0, memory_order_relaxed);
		atomic_store_explicit(&s->parked_ns,
		    atomic_load_explicit(&s->parked_ns, memory_order_relaxed) +
		        (tr__now_ns() - t0),
		    memory_order_relaxed);
		atomic_fetch_and_explicit(
		    &rt->parked, ~bit, memory_order_acq_rel);
	}
	if (io)
		atomic_store_explicit(&rt->io_sleeper, 0, memory_order_seq_cst);
	go_online(s);
	if (got > 0)
		(void)tr__io_dispatch(rt, evs, got);
}

/* A look at the I/O set, without waiting (an online scheduler outside
 * any turn): true if it had events, handed on. */
static bool io_poll(tr__sched *s)
{
	struct epoll_event evs[IO_BATCH];
	int n = tr__io_wait(s->rt, evs, IO_BATCH, 0); /* 0 without a set */
	return tr__io_dispatch(s->rt, evs, n) > 0;
}

/* Work this scheduler gave itself outside a turn. */
static tr__actor *own_work(tr__sched *s)
{
	tr__actor *a = s->runnext;
	if (a != NULL) {
		s->runnext = NULL;
		return a;
	}
	return rq_pop(s);
}

static tr__actor *find_work(tr__sched *s)
{
	tr__actor *a = gq_take(s);
	if (a == NULL)
		a = steal(s);
	return a;
}

/* How long an idle scheduler spins on the CPU before it starts yielding
 * between looks (see idle). */
#define SPIN_HOT_NS 5000u

/* Looks for work for spin_us (spinning for SPIN_HOT_NS, then yielding the
 * core between looks), then parks. NULL: look again. */
static tr__actor *idle(tr__sched *s)
{
	tr_runtime *rt = s->rt;
	uint64_t limit = (uint64_t)rt->opts.spin_us * 1000u;
	uint64_t t0 = tr__now_ns();
	atomic_fetch_add_explicit(&rt->nspinning, 1, memory_order_seq_cst);
	for (;;) {
		/* quiescent() may free retired actors, and answering what was
		 * left in their mailboxes (tr__sig_drain) wakes actors from
		 * this thread: into runnext or this ring, where neither the
		 * thieves' look nor find_work() goes. Look there first. */
		quiescent(s);
		tr__actor *a = own_work(s);
		if (a == NULL)
			a = find_work(s);
		if (a != NULL) {
			atomic_fetch_sub_explicit(
			    &rt->nspinning, 1, memory_order_seq_cst);
			return a;
		}
		/* A hot connection of the layer: what a poll delivered is in
		 * runnext, and the spin starts over; a poll that read nothing
		 * counts as a look, paced as the others below. */
		unsigned pr = dist_poll(s, TR__DIST_POLL_IDLE);
		if ((pr & TR__DIST_POLL_GOT) != 0 || io_poll(s)) {
			t0 = tr__now_ns();
			continue;
		}
		uint64_t spent = tr__now_ns() - t0;
		if (exiting(rt) || spent > limit)
			break;
		if (spent > SPIN_HOT_NS) {
			/* Past the first microseconds, give the core to any
			 * thread that is ready to run on it (a node's receive
			 * thread, another process) and look again when it is
			 * handed back: on a busy machine a spinning scheduler
			 * otherwise takes the CPU its next work needs. */
			sched_yield();
		} else if ((pr & TR__DIST_POLL_HOT) == 0) {
			for (int i = 0; i < 50; i++)
				tr__cpu_relax();
		}
	}
	atomic_fetch_sub_explicit(&rt->nspinning, 1, memory_order_seq_cst);
	if (!exiting(rt))
		park(s);
	return NULL;
}

static inline tr__actor *next_actor(tr__sched *s)
{
	tr__actor *a;
	if (TR_UNLIKELY(s->tick % GLOBAL_EVERY == 0) &&
	    (a = gq_take(s)) != NULL)
		return a;
	if (s->streak < RUNNEXT_MAX && (a = s->runnext) != NULL) {
		s->runnext = NULL;
		s->streak++;
		return a;
	}
	s->streak = 0;
	if ((a = rq_pop(s)) != NULL)
		return a;
	a = s->runnext;
	s->runnext = NULL;
	return a;
}

static void *sched_main(void *arg)
{
	tr__sched *s = arg;
	tr_runtime *rt = s->rt;
	tr__current = s;
	if (rt->opts.pin)
		tr__pin_self(s->idx);
	go_online(s);
	while (!exiting(rt)) {
		tr__actor *a = next_actor(s);
		if (a == NULL && (a = find_work(s)) == NULL &&
		    (a = idle(s)) == NULL)
			continue;
		/* turn_seq is odd during a turn, even between turns. The
		 * actor of the turn is noted before the odd value, which
		 * publishes it (release: pairs with the acquire load in
		 * info.c's running_snapshot); nothing clears it, the even
		 * value says it is over. */
		uint32_t seq =
		    atomic_load_explicit(&s->turn_seq, memory_order_relaxed);
		atomic_store_explicit(&s->running, a, memory_order_relaxed);
		atomic_store_explicit(
		    &s->turn_seq, seq + 1, memory_order_release);
		bump(&s->n_turns);
		s->tick++;
		tr__run_actor(s, a);
		atomic_store_explicit(
		    &s->turn_seq, seq + 2, memory_order_relaxed);
		/* End of a turn that sent to other nodes: let the
		 * distribution layer flush its batches. */
		if (TR_UNLIKELY(s->dist_dirty))
			tr__sched_dist_flush(s);
		if (++s->since_qs >= QS_EVERY) {
			s->since_qs = 0;
			quiescent(s);
			/* A hot connection nobody idle polls is read between
			 * turns, at most every 20 µs. */
			(void)dist_poll(s, TR__DIST_POLL_BUSY);
			/* And the I/O set, as often. */
			if (atomic_load_explicit(&rt->io_ep,
			        memory_order_relaxed) >= 0) {
				uint64_t now = tr__now_ns();
				if (now >= s->io_next_ns) {
					s->io_next_ns = now + IO_BUSY_NS;
					(void)io_poll(s);
				}
			}
		}
	}
	go_offline(s);
	tr__current = NULL;
	return NULL;
}

int tr__sched_start_all(tr_runtime *rt)
{
	rt->sched = calloc(rt->nsched, sizeof(*rt->sched));
	if (rt->sched == NULL)
		return TR_ENOMEM;
	for (unsigned i = 0; i < rt->nsched; i++) {
		tr__sched *s = aligned_alloc(
		    TR_CACHE_LINE, (sizeof(*s) + TR_CACHE_LINE - 1) &
		                       ~(size_t)(TR_CACHE_LINE - 1));
		if (s == NULL)
			return TR_ENOMEM;
		memset(s, 0, sizeof(*s));
		s->rt = rt;
		s->idx = i;
		s->ctx.s = s;
		s->ctx.rt = rt;
		s->rng = 0x9e3779b97f4a7c15ull * (i + 1);
		for (unsigned k = 0; k < TR_MAX_SCHEDULERS; k++)
			s->seen_seq[k] = UINT32_MAX;
		rt->sched[i] = s;
	}
	for (unsigned i = 0; i < rt->nsched; i++) {
		if (pthread_create(&rt->sched[i]->thread, NULL, sched_main,
		        rt->sched[i]) != 0) {
			atomic_store_explicit(
			    &rt->halted, 1, memory_order_release);
			for (unsigned k = 0; k < i; k++) {
				atomic_store(&rt->sched[k]->wake_word, 1);
				tr__futex_wake(&rt->sched[k]->wake_word, 1);
				pthread_join(rt->sched[k]->thread, NULL);
			}
			return TR_ENOMEM;
		}
	}
	return TR_OK;
}

void tr__sched_join_all(tr_runtime *rt)
{
	atomic_store_explicit(&rt->halted, 1, memory_order_seq_cst);
	for (unsigned i = 0; i < rt->nsched; i++)
		sched_wake(rt, rt->sched[i]);
	for (unsigned i = 0; i < rt->nsched; i++)
		pthread_join(rt->sched[i]->thread, NULL);
}

bool tr__all_parked(tr_runtime *rt)
{
	uint64_t all =
	    rt->nsched == 64 ? ~(uint64_t)0 : (((uint64_t)1 << rt->nsched) - 1);
	return atomic_load_explicit(&rt->parked, memory_order_acquire) == all &&
	       atomic_load_explicit(&rt->gq_len, memory_order_acquire) == 0;
}
