/*
 * The global run queue (gq.h).
 */
#include <stdlib.h>

#include "sched/gq.h"

/* Appends the list head..tail (linked through qnext) to the singles'
 * (gq_lock held); the caller counts them. */
static void singles_link(tr_runtime *rt, tr__actor *head, tr__actor *tail)
{
	tail->qnext = NULL;
	if (rt->gq_tail != NULL)
		rt->gq_tail->qnext = head;
	else
		rt->gq_head = head;
	rt->gq_tail = tail;
}

void tr__gq_push_one(tr_runtime *rt, tr__actor *a)
{
	/* Counted before it is visible, so that a taker never takes what
	 * the count does not hold yet (the count would wrap): a taker that
	 * sees the count and not the actor takes nothing and comes back. */
	atomic_fetch_add_explicit(&rt->gq_len, 1, memory_order_relaxed);
	tr__actor *top = atomic_load_explicit(&rt->gq_in, memory_order_relaxed);
	do
		a->qnext = top;
	/* Release: a->qnext (and what made the actor runnable) is seen by
	 * the taker's acquire exchange in inbox_drain(). */
	while (!atomic_compare_exchange_weak_explicit(&rt->gq_in, &top, a,
	    memory_order_release, memory_order_relaxed));
}

/* Moves the inbox's actors, oldest first, to the end of the singles'
 * list (gq_lock held). The count already holds them. */
static void inbox_drain(tr_runtime *rt)
{
	if (atomic_load_explicit(&rt->gq_in, memory_order_relaxed) == NULL)
		return;
	/* Acquire: pairs with the release of tr__gq_push_one(). */
	tr__actor *a =
	    atomic_exchange_explicit(&rt->gq_in, NULL, memory_order_acquire);
	tr__actor *rev = NULL, *tail = a;
	while (a != NULL) {
		tr__actor *next = a->qnext;
		a->qnext = rev;
		rev = a;
		a = next;
	}
	if (rev != NULL)
		singles_link(rt, rev, tail);
}

void tr__gq_push_spill(tr_runtime *rt, tr__actor *const *as, uint32_t n)
{
	pthread_mutex_lock(&rt->gq_lock);
	struct tr__gq_chunk *c = rt->gc_free;
	if (c != NULL) {
		rt->gc_free = c->next;
		rt->ngc_free--;
	} else {
		pthread_mutex_unlock(&rt->gq_lock);
		c = malloc(sizeof(*c));
		pthread_mutex_lock(&rt->gq_lock);
	}
	if (c == NULL) {
		/* No memory for a chunk: the actors go on the singles' list,
		 * linked through themselves. */
		for (uint32_t i = 0; i + 1 < n; i++)
			as[i]->qnext = as[i + 1];
		singles_link(rt, as[0], as[n - 1]);
		atomic_fetch_add_explicit(&rt->gq_len, n, memory_order_relaxed);
		pthread_mutex_unlock(&rt->gq_lock);
		return;
	}
	c->next = NULL;
	c->head = 0;
	c->n = n;
	for (uint32_t i = 0; i < n; i++)
		c->a[i] = as[i];
	if (rt->gc_tail != NULL)
		rt->gc_tail->next = c;
	else
		rt->gc_head = c;
	rt->gc_tail = c;
	atomic_fetch_add_explicit(&rt->gq_len, n, memory_order_relaxed);
	pthread_mutex_unlock(&rt->gq_lock);
}

/* Up to `want` from the head chunk; an emptied chunk is unlinked and
 * handed back through *spent. */
static uint32_t take_chunk(tr_runtime *rt, tr__actor **out, uint32_t want,
    struct tr__gq_chunk **spent)
{
	struct tr__gq_chunk *c = rt->gc_head;
	if (c == NULL)
		return 0;
	uint32_t k = c->n - c->head;
	if (k > want)
		k = want;
	for (uint32_t i = 0; i < k; i++)
		out[i] = c->a[c->head + i];
	c->head += k;
	if (c->head == c->n) {
		rt->gc_head = c->next;
		if (rt->gc_head == NULL)
			rt->gc_tail = NULL;
		*spent = c;
	}
	return k;
}

static uint32_t take_singles(tr_runtime *rt, tr__actor **out, uint32_t want)
{
	inbox_drain(rt);
	uint32_t k = 0;
	while (k < want && rt->gq_head != NULL) {
		tr__actor *a = rt->gq_head;
		rt->gq_head = a->qnext;
		out[k++] = a;
	}
	if (rt->gq_head == NULL)
		rt->gq_tail = NULL;
	return k;
}

uint32_t tr__gq_take(
    tr_runtime *rt, tr__actor **out, uint32_t max, bool chunks_first)
{
	if (atomic_load_explicit(&rt->gq_len, memory_order_relaxed) == 0)
		return 0;
	struct tr__gq_chunk *spent = NULL;
	pthread_mutex_lock(&rt->gq_lock);
	uint64_t len = atomic_load_explicit(&rt->gq_len, memory_order_relaxed);
	uint64_t want = len / rt->nsched + 1;
	if (want > len)
		want = len;
	if (want > max)
		want = max;
	uint32_t k = 0;
	if (want > 0) {
		if (chunks_first)
			k = take_chunk(rt, out, (uint32_t)want, &spent);
		if (k == 0)
			k = take_singles(rt, out, (uint32_t)want);
		if (k == 0 && !chunks_first)
			k = take_chunk(rt, out, (uint32_t)want, &spent);
	}
	atomic_fetch_sub_explicit(&rt->gq_len, k, memory_order_relaxed);
	if (spent != NULL && rt->ngc_free < TR__GQ_FREE_MAX) {
		spent->next = rt->gc_free;
		rt->gc_free = spent;
		rt->ngc_free++;
		spent = NULL;
	}
	pthread_mutex_unlock(&rt->gq_lock);
	free(spent);
	return k;
}

void tr__gq_fini(tr_runtime *rt)
{
	/* Queued actors are freed with the actor table; only the links go. */
	atomic_store_explicit(&rt->gq_in, NULL, memory_order_relaxed);
	struct tr__gq_chunk *lists[] = {rt->gc_head, rt->gc_free};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		while (lists[i] != NULL) {
			struct tr__gq_chunk *c = lists[i];
			lists[i] = c->next;
			free(c);
		}
	rt->gc_head = rt->gc_tail = rt->gc_free = NULL;
	rt->ngc_free = 0;
}
