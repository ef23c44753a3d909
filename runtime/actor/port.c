/*
 * Ports: a pid and a mailbox for a plain thread, and tr_call on top.
 *
 * A port is an actor entry of kind TR__K_PORT whose mailbox starts empty
 * and idle. The sender that finds it idle does not schedule it (nothing is
 * to run) but sets the port's wake word and wakes the waiting thread with a
 * futex; the receiving thread marks the mailbox idle again before it
 * sleeps, exactly as a scheduler does between turns.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

int tr_port_open(tr_port **portp, tr_runtime *rt)
{
	if (portp == NULL || rt == NULL)
		return TR_EINVAL;
	if (atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return TR_ECLOSED;
	tr_port *p = aligned_alloc(TR_CACHE_LINE,
	    (sizeof(*p) + TR_CACHE_LINE - 1) & ~(size_t)(TR_CACHE_LINE - 1));
	if (p == NULL)
		return TR_ENOMEM;
	memset(p, 0, sizeof(*p));
	tr__sched *s = tr__current;
	if (s != NULL && s->rt != rt)
		s = NULL;
	tr__actor *a = tr__actor_new(rt, s, TR__K_PORT);
	if (a == NULL) {
		free(p);
		return TR_ENOMEM;
	}
	p->rt = rt;
	p->a = a;
	a->port = p;
	a->status = TR__A_RUNNING;
	atomic_fetch_add_explicit(&rt->ports_alive, 1, memory_order_relaxed);
	/* Release: pairs with the acquire load in tr__lookup. */
	atomic_store_explicit(
	    &rt->pids[a->pid.slot], (uintptr_t)a, memory_order_release);
	*portp = p;
	return TR_OK;
}

tr_pid tr_port_pid(const tr_port *port)
{
	return port != NULL ? port->a->pid : TR_PID_NONE;
}

/* The popped message stays in the mailbox as its stub until the next pop,
 * so the caller gets a copy it owns. */
static int take_copy(tr_msg **out, tr_port *p)
{
	tr__actor *a = p->a;
	tr_msg *m;
	for (;;) {
		m = tr__mb_pop(a);
		if (m == NULL)
			return TR_ENOENT;
		tr__mb_taken(a);
		if ((m->_flags & TR__MF_REMOTE) != 0)
			tr__rin_taken(p->rt, a, tr__rin_size(m));
		/* A port has no links and watches nothing itself: signals
		 * sent to its pid mean nothing to it. */
		if ((m->_flags & TR__MF_SIGNAL) != 0)
			continue;
		/* An inspection of the port: its thread answers it here, the
		 * one place it owns the mailbox (inspect.c). */
		if ((m->_flags & TR__MF_INSPECT) != 0) {
			tr__inspect_answer(p->rt, NULL, a, m);
			continue;
		}
		/* The message of a timer cancelled since it was sent. */
		if ((m->_flags & TR__MF_TIMER) != 0 &&
		    !tr__timer_take(p->rt, m))
			continue;
		break;
	}
	/* Header fields one by one: the link word may be being written by
	 * the next sender right now (m is the mailbox's stub until the next
	 * pop). */
	tr_msg *c;
	int rc = tr__msg_new(&c, p->rt, m->type, m->data, m->size);
	if (rc != TR_OK)
		return rc;
	c->ref = m->ref;
	c->sender = m->sender;
	c->_flags |= m->_flags & ~(TR__MF_CLASS | TR__MF_REMOTE | TR__MF_TIMER);
	*out = c;
	return TR_OK;
}

int tr_port_recv(tr_msg **msgp, tr_port *port, int64_t timeout_ms)
{
	if (msgp == NULL || port == NULL)
		return TR_EINVAL;
	tr__actor *a = port->a;
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX
	                   : tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
	/* A port received on inside a turn (a start function waiting for
	 * its child): what the turn sent to other nodes goes before it
	 * waits, not at the turn's end, or the reply waits for it. */
	tr__sched *s = tr__current;
	if (s != NULL && s->rt == port->rt && TR_UNLIKELY(s->dist_dirty))
		tr__sched_dist_flush(s);
	for (;;) {
		int rc = take_copy(msgp, port);
		if (rc != TR_ENOENT)
			return rc;
		atomic_store_explicit(&port->wake, 0, memory_order_relaxed);
		uintptr_t t = (uintptr_t)a->mb_tail;
		uintptr_t h =
		    atomic_load_explicit(&a->mb_head, memory_order_acquire);
		if (h == t) {
			if (!tr__mb_mark_idle(a))
				continue; /* a message raced in */
		} else if (h != (t | 1u)) {
			/* A sender is between its swap and its link. */
			tr__cpu_relax();
			continue;
		}
		/* Idle: the next sender sets `wake` and wakes us. */
		for (;;) {
			if (atomic_load_explicit(
			        &port->wake, memory_order_acquire) != 0)
				break;
			uint64_t now = tr__now_ns();
			if (now >= deadline)
				return TR_ETIMEDOUT;
			int64_t left = deadline == UINT64_MAX
			                   ? -1
			                   : (int64_t)(deadline - now);
			tr__futex_wait(&port->wake, 0, left);
		}
	}
}

int tr_port_send(
    tr_port *port, tr_pid to, uint32_t type, const void *data, size_t size)
{
	if (port == NULL || (data == NULL && size != 0) ||
	    type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_new(&m, port->rt, type, data, size);
	if (rc != TR_OK)
		return rc;
	m->sender = port->a->pid;
	rc = tr__deliver_any(port->rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

void tr_port_close(tr_port *port)
{
	if (port == NULL)
		return;
	tr_runtime *rt = port->rt;
	tr__actor *a = port->a;
	tr__actor_unpublish(rt, a);
	a->status = TR__A_DEAD;
	tr__sched *s = tr__current;
	if (s != NULL && s->rt != rt)
		s = NULL;
	tr__slot_release(rt, s, a->pid.slot);
	atomic_fetch_sub_explicit(&rt->ports_alive, 1, memory_order_relaxed);
	/* Senders may still hold the entry: free it after a grace period.
	 * The port struct goes with it (tr__actor_reclaim). */
	tr__retire(rt, s, a);
}

int tr_call(tr_msg **reply, tr_runtime *rt, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms)
{
	if (reply == NULL || rt == NULL || (data == NULL && size != 0) ||
	    type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	if (tr__current != NULL)
		return TR_EINVAL; /* an actor must not block: tr_request */
	tr_port *p;
	int rc = tr_port_open(&p, rt);
	if (rc != TR_OK)
		return rc;
	tr_msg *m;
	rc = tr__msg_new(&m, rt, type, data, size);
	if (rc != TR_OK) {
		tr_port_close(p);
		return rc;
	}
	uint64_t ref = tr__new_ref(rt), mref = 0;
	m->sender = p->a->pid;
	m->ref = ref;
	tr__req_mark(m);
	/* Monitor first, so a target that dies before replying answers with
	 * DOWN instead of leaving us to the timeout. */
	rc = tr__port_monitor(rt, p->a->pid, to, &mref);
	if (rc == TR_OK)
		rc = tr__deliver_any(rt, to, m);
	if (rc != TR_OK) {
		tr__msg_free(m);
		tr_port_close(p);
		return rc;
	}
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX
	                   : tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		uint64_t now = tr__now_ns();
		int64_t left = deadline == UINT64_MAX ? -1
		               : now >= deadline
		                   ? 0
		                   : (int64_t)((deadline - now) / 1000000u);
		tr_msg *r;
		rc = tr_port_recv(&r, p, left);
		if (rc != TR_OK)
			break;
		if (r->ref == ref && (r->_flags & TR__MF_REPLY) != 0) {
			if (TR_UNLIKELY(r->type == TR_MSG_REFUSED)) {
				/* Refused before delivery (behaviours.c builds
				 * these): the code is the answer. Only the
				 * runtime can send a system type, but a node
				 * relays what a peer said, so check it. */
				rc = tr_refusal_code(r);
				if (rc == 0)
					rc = TR_EINVAL;
				tr__msg_free(r);
				break;
			}
			r->_flags &= ~TR__MF_REPLY;
			*reply = r;
			break;
		}
		if (r->ref == mref && (r->_flags & TR__MF_DOWN) != 0) {
			tr__msg_free(r);
			mref = 0;
			rc = TR_ENOPROC;
			break;
		}
		tr__msg_free(r); /* not ours: a stray message to a fresh pid */
	}
	if (mref != 0)
		tr__port_demonitor(rt, p->a->pid, to, mref);
	tr_port_close(p);
	return rc;
}
