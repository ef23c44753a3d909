/*
 * Timers: one thread per runtime sleeps until the earliest deadline of a
 * binary heap and sends the due messages, so no scheduler ever waits on a
 * clock.
 *
 * The heap sits under one mutex, taken once per arm, cancel or firing.
 * Firing sends while holding it: that is what lets tr_timer_cancel promise
 * that no message of a cancelled timer is sent after it returns. Timers are
 * not on the message hot path (a send does not touch them), so the lock is
 * named here and accepted.
 *
 * A message already sent is caught too: a timer's message to a local pid
 * carries the timer's reference (TR__MF_TIMER, in its header's rsv), and the thread
 * that takes it from the mailbox asks tr__timer_take whether the timer is
 * still live. A one-shot timer that fired keeps its entry (without its
 * payload) until its message is taken, so a cancel in between finds it
 * and frees it, and the message is then dropped; a periodic timer's
 * messages are live while the timer is. That costs the lock once more per
 * timer message, on the receiving side.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"

typedef struct tentry {
	uint64_t deadline; /* ns, monotonic */
	uint64_t seq;      /* arm order, breaks deadline ties */
	uint64_t interval; /* ns; 0 for one-shot */
	uint64_t ref;
	tr_pid to, from;
	uint32_t type, flags;
	uint32_t gen;  /* bumped on free: stale tr_timer ids fail */
	uint32_t hidx; /* position in the heap, or UINT32_MAX */
	bool fired;    /* one-shot, out of the heap: its message waits to be
	                * taken (tr__timer_take) */
	uint32_t next_free;
	size_t size;
	void *data;
} tentry;

struct tr__timers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool started, stop;
	tentry *ents;
	uint32_t nents, cap_ents, free_head; /* free list through next_free */
	uint32_t *heap;
	uint32_t nheap, cap_heap;
	uint64_t seq;
	_Atomic uint64_t armed;
};

#define NONE UINT32_MAX

static bool before(const tentry *a, const tentry *b)
{
	return a->deadline < b->deadline ||
	       (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_set(tr__timers *t, uint32_t i, uint32_t e)
{
	t->heap[i] = e;
	t->ents[e].hidx = i;
}

static void sift_up(tr__timers *t, uint32_t i)
{
	uint32_t e = t->heap[i];
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (!before(&t->ents[e], &t->ents[t->heap[p]]))
			break;
		heap_set(t, i, t->heap[p]);
		i = p;
	}
	heap_set(t, i, e);
}

static void sift_down(tr__timers *t, uint32_t i)
{
	uint32_t e = t->heap[i];
	for (;;) {
		uint32_t l = 2 * i + 1, m = i;
		const tentry *best = &t->ents[e];
		if (l < t->nheap && before(&t->ents[t->heap[l]], best)) {
			m = l;
			best = &t->ents[t->heap[l]];
		}
		if (l + 1 < t->nheap && before(&t->ents[t->heap[l + 1]], best))
			m = l + 1;
		if (m == i)
			break;
		heap_set(t, i, t->heap[m]);
		i = m;
	}
	heap_set(t, i, e);
}

static void heap_remove(tr__timers *t, uint32_t i)
{
	uint32_t last = t->heap[--t->nheap];
	t->ents[t->heap[i]].hidx = NONE;
	if (i < t->nheap) {
		heap_set(t, i, last);
		sift_down(t, i);
		sift_up(t, t->ents[last].hidx);
	}
	atomic_store_explicit(&t->armed, t->nheap, memory_order_release);
}

static void entry_free(tr__timers *t, uint32_t e)
{
	tentry *x = &t->ents[e];
	free(x->data);
	x->data = NULL;
	x->fired = false;
	x->gen++;
	x->next_free = t->free_head;
	t->free_head = e;
}

static inline tr_timer timer_id(const tentry *x, uint32_t e)
{
	return ((uint64_t)x->gen << 32) | (uint64_t)(e + 1);
}

static void fire(tr_runtime *rt, tr__timers *t, uint32_t e)
{
	tentry *x = &t->ents[e];
	tr_msg *m;
	/* Request timeouts have their own guard (the pending reference, in
	 * call.c); a message to another node cannot be called back. */
	bool guarded = x->to.node == 0 && (x->flags & TR__MF_RTIMEO) == 0;
	int rc = tr__msg_new(&m, rt, x->type, x->data, x->size);
	if (rc == TR_OK) {
		m->sender = x->from;
		m->ref = x->ref;
		m->_flags |= x->flags;
		if (guarded) {
			m->_flags |= TR__MF_TIMER;
			tr__mh(m)->rsv = timer_id(x, e);
		}
		rc = tr__deliver_any(rt, x->to, m);
		if (rc != TR_OK)
			tr__msg_free(m);
	}
	if (x->interval != 0 && rc != TR_ENOPROC) {
		/* Periodic: the next tick is due one interval after this
		 * one was, so ticks do not drift with scheduling delays. */
		x->deadline += x->interval;
		uint64_t now = tr__now_ns();
		if (x->deadline < now)
			x->deadline = now;
		x->seq = t->seq++;
		t->heap[0] = e;
		sift_down(t, 0);
		return;
	}
	heap_remove(t, 0);
	if (rc == TR_OK && guarded) {
		/* The entry stays until its message is taken. Its taker
		 * waits for this lock, so it cannot come before. */
		free(x->data);
		x->data = NULL;
		x->fired = true;
		return;
	}
	entry_free(t, e);
}

static void *timer_main(void *arg)
{
	tr_runtime *rt = arg;
	tr__timers *t = rt->timers;
	pthread_mutex_lock(&t->lock);
	while (!t->stop) {
		if (t->nheap == 0) {
			pthread_cond_wait(&t->cond, &t->lock);
			continue;
		}
		uint32_t e = t->heap[0];
		uint64_t now = tr__now_ns();
		if (t->ents[e].deadline <= now) {
			fire(rt, t, e);
			continue;
		}
		uint64_t d = t->ents[e].deadline;
		struct timespec ts = {
		    (time_t)(d / 1000000000u), (long)(d % 1000000000u)};
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int tr__timers_init(tr_runtime *rt)
{
	tr__timers *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->free_head = NONE;
	rt->timers = t;
	if (pthread_create(&t->thread, NULL, timer_main, rt) != 0)
		return TR_ENOMEM;
	t->started = true;
	return TR_OK;
}

void tr__timers_fini(tr_runtime *rt)
{
	tr__timers *t = rt->timers;
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	if (t->started)
		pthread_join(t->thread, NULL);
	t->started = false;
	/* Actors still run until the schedulers stop, and may arm or cancel:
	 * the struct stays (arming now fails with TR_ECLOSED) until
	 * tr__timers_free. */
	pthread_mutex_lock(&t->lock);
	while (t->nheap > 0) {
		uint32_t e = t->heap[0];
		heap_remove(t, 0);
		entry_free(t, e);
	}
	pthread_mutex_unlock(&t->lock);
}

void tr__timers_free(tr_runtime *rt)
{
	tr__timers *t = rt->timers;
	if (t == NULL)
		return;
	tr__timers_fini(rt);
	for (uint32_t i = 0; i < t->nents; i++)
		free(t->ents[i].data);
	free(t->ents);
	free(t->heap);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
	rt->timers = NULL;
}

uint64_t tr__timers_armed(tr_runtime *rt)
{
	tr__timers *t = rt->timers;
	return t != NULL ? atomic_load_explicit(&t->armed, memory_order_acquire)
	                 : 0;
}

static int grow(tr__timers *t)
{
	if (t->nheap == t->cap_heap) {
		uint32_t cap = t->cap_heap ? t->cap_heap * 2 : 64;
		uint32_t *h = realloc(t->heap, cap * sizeof(*h));
		if (h == NULL)
			return TR_ENOMEM;
		t->heap = h;
		t->cap_heap = cap;
	}
	if (t->free_head == NONE && t->nents == t->cap_ents) {
		uint32_t cap = t->cap_ents ? t->cap_ents * 2 : 64;
		tentry *e = realloc(t->ents, cap * sizeof(*e));
		if (e == NULL)
			return TR_ENOMEM;
		t->ents = e;
		t->cap_ents = cap;
	}
	return TR_OK;
}

int tr__timer_arm(tr_runtime *rt, tr_timer *id, tr_pid to, tr_pid from,
    int64_t delay_ms, int64_t interval_ms, uint32_t type, uint32_t flags,
    uint64_t ref, const void *data, size_t size)
{
	if (delay_ms < 0 || interval_ms < 0 || (data == NULL && size != 0))
		return TR_EINVAL;
	if (size > rt->opts.max_msg_size)
		return TR_EMSGSIZE;
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return TR_ECLOSED;
	/* As a send would: a target already dead is reported now (and one
	 * that dies later silently ends the timer when it fires). */
	if (!tr_is_alive(rt, to))
		return TR_ENOPROC;
	void *copy = NULL;
	if (size != 0) {
		copy = malloc(size);
		if (copy == NULL)
			return TR_ENOMEM;
		memcpy(copy, data, size);
	}
	tr__timers *t = rt->timers;
	pthread_mutex_lock(&t->lock);
	if (t->stop) {
		pthread_mutex_unlock(&t->lock);
		free(copy);
		return TR_ECLOSED;
	}
	if (grow(t) != TR_OK) {
		pthread_mutex_unlock(&t->lock);
		free(copy);
		return TR_ENOMEM;
	}
	uint32_t e;
	if (t->free_head != NONE) {
		e = t->free_head;
		t->free_head = t->ents[e].next_free;
	} else {
		e = t->nents++;
		t->ents[e].gen = 1;
	}
	tentry *x = &t->ents[e];
	x->deadline = tr__now_ns() + (uint64_t)delay_ms * 1000000u;
	x->seq = t->seq++;
	x->interval = (uint64_t)interval_ms * 1000000u;
	x->ref = ref;
	x->to = to;
	x->from = from;
	x->type = type;
	x->flags = flags;
	x->size = size;
	x->data = copy;
	t->heap[t->nheap] = e;
	t->nheap++;
	sift_up(t, t->nheap - 1);
	atomic_store_explicit(&t->armed, t->nheap, memory_order_release);
	if (t->heap[0] == e)
		pthread_cond_signal(&t->cond);
	x->fired = false;
	if (id != NULL)
		*id = timer_id(x, e);
	pthread_mutex_unlock(&t->lock);
	return TR_OK;
}

int tr_timer_cancel(tr_runtime *rt, tr_timer timer)
{
	if (rt == NULL)
		return TR_EINVAL;
	tr__timers *t = rt->timers;
	if (t == NULL || timer == 0)
		return TR_ENOENT;
	uint32_t e = (uint32_t)(timer & 0xffffffffu) - 1;
	uint32_t gen = (uint32_t)(timer >> 32);
	int rc = TR_ENOENT;
	pthread_mutex_lock(&t->lock);
	if (e < t->nents && t->ents[e].gen == gen) {
		tentry *x = &t->ents[e];
		if (x->hidx != NONE && x->hidx < t->nheap &&
		    t->heap[x->hidx] == e) {
			heap_remove(t, x->hidx);
			entry_free(t, e);
			rc = TR_OK;
		} else if (x->fired) {
			/* Fired, its message not taken yet: freeing the entry
			 * makes tr__timer_take drop it. */
			entry_free(t, e);
			rc = TR_OK;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool tr__timer_take(tr_runtime *rt, const tr_msg *m)
{
	tr__timers *t = rt->timers;
	if (t == NULL)
		return true;
	uint32_t e = (uint32_t)(tr__mh(m)->rsv & 0xffffffffu) - 1;
	uint32_t gen = (uint32_t)(tr__mh(m)->rsv >> 32);
	bool live = false;
	pthread_mutex_lock(&t->lock);
	if (e < t->nents && t->ents[e].gen == gen) {
		tentry *x = &t->ents[e];
		if (x->fired) {
			entry_free(t, e);
			live = true;
		} else if (x->hidx != NONE) {
			live = true; /* a periodic timer, still armed */
		}
	}
	pthread_mutex_unlock(&t->lock);
	return live;
}

int tr_send_after(tr_ctx *ctx, tr_timer *timer, tr_pid to, int64_t delay_ms,
    int64_t interval_ms, uint32_t type, const void *data, size_t size)
{
	if (ctx == NULL || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	return tr__timer_arm(ctx->rt, timer, to, ctx->a->pid, delay_ms,
	    interval_ms, type, 0, 0, data, size);
}

int tr_post_after(tr_runtime *rt, tr_timer *timer, tr_pid to, int64_t delay_ms,
    int64_t interval_ms, uint32_t type, const void *data, size_t size)
{
	if (rt == NULL || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	return tr__timer_arm(rt, timer, to, TR_PID_NONE, delay_ms, interval_ms,
	    type, 0, 0, data, size);
}
