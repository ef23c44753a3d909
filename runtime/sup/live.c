/*
 * The live supervisors: a table of every supervisor whose init succeeded
 * and that has not exited, so that an operator finds the trees of a
 * running runtime without stopping it (tr_sup_list, sup.h).
 *
 * One table for the process, entries tagged with their runtime, under one
 * mutex: supervisors start and stop rarely (a restart of a child touches
 * nothing here), and a list is a copy under the lock. The table grows by
 * doubling; an entry leaves by swapping the last one into its place, whose
 * supervisor's live_idx is updated through the pointer the entry keeps.
 * live_idx is read and written under the lock only, so that update from
 * another supervisor's thread is no race.
 *
 * The table holds runtime pointers, never dereferenced: a supervisor's
 * terminate runs before its runtime is gone (also when the runtime is torn
 * down), and takes its entry with it.
 */
#include <pthread.h>
#include <stdlib.h>

#include "sup_int.h"

typedef struct live_ent {
	tr_runtime *rt;
	tr_pid pid;
	uint32_t *idx; /* the supervisor's live_idx */
} live_ent;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static live_ent *live_tab;
static uint32_t live_n, live_cap;

int tr__sup_live_add(sup *s)
{
	int rc = TR_OK;
	pthread_mutex_lock(&live_lock);
	if (live_n == live_cap) {
		uint32_t ncap = live_cap != 0 ? live_cap * 2 : 16;
		live_ent *nt = ncap > live_cap
		                   ? realloc(live_tab, ncap * sizeof(*nt))
		                   : NULL;
		if (nt == NULL) {
			rc = TR_ENOMEM;
			goto out;
		}
		live_tab = nt;
		live_cap = ncap;
	}
	live_tab[live_n] = (live_ent){s->rt, s->self, &s->live_idx};
	s->live_idx = live_n++;
	s->live = true;
out:
	pthread_mutex_unlock(&live_lock);
	return rc;
}

void tr__sup_live_del(sup *s)
{
	if (!s->live)
		return;
	pthread_mutex_lock(&live_lock);
	uint32_t i = s->live_idx;
	if (i < live_n && live_tab[i].idx == &s->live_idx) {
		live_tab[i] = live_tab[--live_n];
		if (i < live_n)
			*live_tab[i].idx = i;
	}
	s->live = false;
	if (live_n == 0) {
		/* The last one gone: give the memory back (a process that
		 * checks for leaks at its end sees none). */
		free(live_tab);
		live_tab = NULL;
		live_cap = 0;
	}
	pthread_mutex_unlock(&live_lock);
}

int tr_sup_list(tr_runtime *rt, tr_pid *out, size_t cap, size_t *n)
{
	if (n != NULL)
		*n = 0;
	if (rt == NULL || (out == NULL && cap > 0))
		return TR_EINVAL;
	size_t k = 0;
	pthread_mutex_lock(&live_lock);
	for (uint32_t i = 0; i < live_n; i++) {
		if (live_tab[i].rt != rt)
			continue;
		if (k < cap)
			out[k] = live_tab[i].pid;
		k++;
	}
	pthread_mutex_unlock(&live_lock);
	if (n != NULL)
		*n = k;
	return TR_OK;
}
