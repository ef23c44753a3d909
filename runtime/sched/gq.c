/*
 * The global run queue (gq.h).
 */
#include <stdlib.h>

#include "sched/gq.h"

static void singles_push(
    tr_runtime *rt, tr__actor *head, tr__actor *tail, uint64_t n)
{
	tail->qnext = NULL;
	if (rt->gq_tail != NULL)
		rt->gq_tail->qnext = head;
	else
		rt->gq_head = head;
	rt->gq_tail = tail;
	atomic_fetch_add_explicit(&rt->gq_len, n, memory_order_relaxed);
}

void tr__gq_push_one(tr_runtime *rt, tr__actor *a)
{
	pthread_mutex_lock(&rt->gq_lock);
	singles_push(rt, a, a, 1);
	pthread_mutex_unlock(&rt->gq_lock);
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
		singles_push(rt, as[0], as[n - 1], n);
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
