/*
 * Process children started ahead (tr_proc_spec.warm): after a start of a
 * spec that asks for them, up to `warm` processes of it are launched at
 * once and come up on their own (exec, node, connection, cookie) while the
 * child runs. Each then says WARM to its start port and waits. The next
 * start of that spec takes one: it answers the WARM with TAKE, and the
 * child runs its root's init and says READY, as any start (proc.c).
 *
 * A waiting warm process is a record of the table with `warm_key` set,
 * held (starting) by the list so that the watcher reaps it but keeps it;
 * its start port stays in the record until a start takes both. One that
 * died waiting is dropped by the next take; tr_proc_cool drops them, and
 * the watcher does when the node stops.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "proc_int.h"

/* Table lock held: lets go of a warm record (the watcher frees it once
 * reaped) and gives its port to the caller. */
static tr_port *drop_locked(struct tr__procs *t, struct tr__proc *r)
{
	tr_port *p = r->warm_port;
	r->warm_port = NULL;
	r->warm_key = NULL;
	r->starting = false;
	r->waiter = TR_PID_NONE;
	tr__proc_signal_locked(t, r, SIGKILL, TR_REASON_KILLED);
	atomic_fetch_sub_explicit(&t->warm, 1, memory_order_relaxed);
	return p;
}

bool tr__proc_warm_take(struct tr__procs *t, const void *key,
    struct tr__proc **rp, tr_port **portp)
{
	tr_port *dead[TR_PROC_WARM_MAX];
	size_t nd = 0;
	struct tr__proc *got = NULL;
	pthread_mutex_lock(&t->lock);
	for (struct tr__proc *r = t->head; r != NULL && got == NULL;
	     r = r->next) {
		if (r->warm_key != key)
			continue;
		if (r->reaped) {
			if (nd < TR_PROC_WARM_MAX)
				dead[nd++] = drop_locked(t, r);
			continue;
		}
		got = r;
	}
	if (got != NULL) {
		*portp = got->warm_port;
		got->warm_port = NULL;
		got->warm_key = NULL;
		/* Its lines from now on are this child's. */
		const char *id = tr_sup_starting_id();
		snprintf(got->id, sizeof(got->id), "%s", id != NULL ? id : "");
		*rp = got;
		atomic_fetch_sub_explicit(&t->warm, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&t->taken, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < nd; i++)
		tr_port_close(dead[i]);
	if (nd > 0)
		tr__procs_wake(t);
	return got != NULL;
}

void tr__proc_warm_fill(
    struct tr__procs *t, const tr_proc_spec *s, const void *key)
{
	uint32_t want = s->warm < TR_PROC_WARM_MAX ? s->warm : TR_PROC_WARM_MAX;
	pthread_mutex_lock(&t->lock);
	uint32_t have = 0;
	for (struct tr__proc *r = t->head; r != NULL; r = r->next)
		if (r->warm_key == key)
			have++;
	pthread_mutex_unlock(&t->lock);
	for (; have < want; have++) {
		/* The record is the list's once launched (its port in it):
		 * not to be touched here again. */
		struct tr__proc *r = NULL;
		tr_port *port = NULL;
		int rc = tr__proc_begin(t, s, key, &r, &port);
		if (rc != TR_OK) {
			if (rc != TR_ECLOSED)
				tr__node_logf(t->n,
				    "warm process of %s not launched: %s",
				    s->behaviour, tr_strerror(rc));
			return;
		}
		atomic_fetch_add_explicit(&t->warm, 1, memory_order_relaxed);
	}
}

size_t tr__proc_warm_drop_locked(
    struct tr__procs *t, const void *key, tr_port **ports, size_t cap)
{
	size_t k = 0;
	/* One being launched is its launcher's until it has a process. */
	for (struct tr__proc *r = t->head; r != NULL && k < cap; r = r->next)
		if (r->warm_key != NULL && r->ospid > 0 &&
		    (key == NULL || r->warm_key == key))
			ports[k++] = drop_locked(t, r);
	return k;
}

unsigned tr_proc_cool(tr_node *node, const tr_proc_spec *proc)
{
	struct tr__procs *t = node != NULL ? node->procs : NULL;
	if (t == NULL)
		return 0;
	tr_port *ports[64];
	size_t k, total = 0;
	do {
		/* At most TR_PROC_WARM_MAX per spec, but any number of specs:
		 * in rounds of what the array holds. */
		pthread_mutex_lock(&t->lock);
		k = tr__proc_warm_drop_locked(t, proc, ports, 64);
		pthread_mutex_unlock(&t->lock);
		for (size_t i = 0; i < k; i++)
			tr_port_close(ports[i]);
		total += k;
	} while (k == 64);
	if (total > 0)
		tr__procs_wake(t);
	return (unsigned)total;
}
