/*
 * One actor in detail: the runtime's answer to TR_MSG_ACTOR_INSPECT, its
 * decoder, and tr_actor_inspect for plain threads.
 *
 * An actor's links, monitors, trap_exit flag, deferred messages and the
 * inner links of its mailbox belong to the thread running it (signal.c,
 * actor.c): no other thread may read them without a lock the hot paths
 * would pay for. So the question travels as a message and the owner's
 * thread answers it between two messages, in the dispatch loop, before
 * the behaviour could see it (actor.c, dispatch; a port's thread in
 * tr_port_recv). The answer is an ordinary reply, so every way of waiting
 * for one works: tr_request, tr_call_then, tr_call, tr_actor_inspect. An
 * actor that exits with requests still queued answers them TR_ENOPROC as
 * its mailbox is drained (tr__sig_drain), which spares the callers both a
 * monitor and their timeout.
 *
 * The reply's payload is private to this file (decoded here, in the same
 * library that wrote it): a fixed header, then the arrays of the public
 * element types (tr_pid, tr_actor_monitor, tr_mailbox_entry, each 8-byte
 * aligned), then the payload bytes asked for.
 */
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "rt.h"

#define REP_MAGIC 0x52504e49u /* "INPR" */

#define HEAD_DEFAULT 16u
#define PAYLOAD_DEFAULT 64u
#define LIST_DEFAULT 1024u

typedef struct rep {
	uint32_t magic;
	uint32_t size; /* of the whole payload */
	tr_pid pid;
	uint32_t kind, state, trap_exit, mailbox;
	uint64_t handled;
	uint32_t deferred, requests;
	uint32_t nlinks, links_total;
	uint32_t nmon, mon_total;
	uint32_t nby, by_total;
	uint32_t nhead;
	uint32_t off_links, off_mon, off_by, off_head;
	char name[TR_NAME_MAX + 1];
	char behaviour[TR_NAME_MAX + 1];
} rep;

static inline size_t align8(size_t n)
{
	return (n + 7u) & ~(size_t)7u;
}

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* Reads a request's options (an empty payload: the defaults) and fills
 * in the defaults of the zero fields. */
static int opts_read(tr_inspect_opts *o, const void *data, size_t size)
{
	tr_inspect_opts_init(o);
	if (size != 0) {
		uint32_t ss;
		if (data == NULL || size < sizeof(ss))
			return TR_EINVAL;
		memcpy(&ss, data, sizeof(ss));
		if (ss > size)
			return TR_EINVAL;
		int rc =
		    tr__struct_in(o, sizeof(*o), data, TR_INSPECT_OPTS_V1_SIZE);
		if (rc != TR_OK)
			return rc;
	}
	if ((o->flags & ~TR_INSPECT_PAYLOAD) != 0 ||
	    o->head_max > TR_INSPECT_HEAD_MAX ||
	    o->payload_max > TR_INSPECT_PAYLOAD_MAX ||
	    o->list_max > TR_INSPECT_LIST_MAX)
		return TR_EINVAL;
	if (o->head_max == 0)
		o->head_max = HEAD_DEFAULT;
	if (o->payload_max == 0)
		o->payload_max = PAYLOAD_DEFAULT;
	if (o->list_max == 0)
		o->list_max = LIST_DEFAULT;
	return TR_OK;
}

/* ---- the answer, on the owner's thread -------------------------------------
 */

static int reply_send(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *r)
{
	int rc =
	    s != NULL ? tr__deliver(rt, s, to, r) : tr__deliver_any(rt, to, r);
	if (rc != TR_OK)
		tr__msg_free(r);
	return rc;
}

static void refuse(
    tr_runtime *rt, tr__sched *s, tr__actor *a, const tr_msg *m, int err)
{
	tr_msg *r;
	if (tr__msg_refused(&r, a->pid, m->ref, err) == TR_OK)
		(void)reply_send(rt, s, m->sender, r);
}

static void mons_put(
    unsigned char *base, uint32_t off, const struct tr__mon *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		tr_actor_monitor e = {.ref = v[i].ref, .pid = v[i].pid};
		memcpy(base + off + i * sizeof(e), &e, sizeof(e));
	}
}

void tr__inspect_answer(
    tr_runtime *rt, tr__sched *s, tr__actor *a, const tr_msg *m)
{
	if (m->ref == 0 || tr_pid_is_none(m->sender))
		return; /* nobody to answer */
	tr_inspect_opts o;
	int rc = opts_read(&o, m->data, m->size);
	if (rc != TR_OK) {
		refuse(rt, s, a, m, rc);
		return;
	}
	/* The messages queued after the request (m is the mailbox's tail:
	 * nothing but this thread frees what follows it). */
	const tr_msg *head[TR_INSPECT_HEAD_MAX];
	uint32_t nhead = 0;
	size_t bytes = 0;
	tr_msg *q = (tr_msg *)(uintptr_t)m;
	while (nhead < o.head_max) {
		/* Acquire: pairs with the release store of the link in
		 * tr__mb_push, as in tr__mb_pop. */
		q = __atomic_load_n(tr__link(q), __ATOMIC_ACQUIRE);
		if (q == NULL)
			break;
		head[nhead++] = q;
		if ((o.flags & TR_INSPECT_PAYLOAD) != 0)
			bytes += min_u32(q->size, o.payload_max);
	}
	const tr__ext *x = a->ext;
	uint32_t links = x != NULL ? x->nlinks : 0;
	uint32_t mon = x != NULL ? x->nwatching : 0;
	uint32_t by = x != NULL ? x->nwatchers : 0;
	rep h;
	memset(&h, 0, sizeof(h));
	h.magic = REP_MAGIC;
	h.pid = a->pid;
	h.kind =
	    a->kind == TR__K_PORT ? TR_ACTOR_KIND_PORT : TR_ACTOR_KIND_ACTOR;
	h.state = (a->status & 0xffu) == TR__A_EXITING ||
	                  atomic_load_explicit(
	                      &a->kill_pending, memory_order_relaxed) != 0
	              ? TR_ACTOR_EXITING
	              : TR_ACTOR_RUNNING;
	h.trap_exit = (a->status & TR__A_TRAP) != 0;
	h.mailbox = tr__mb_length(a, &h.handled);
	h.deferred = x != NULL ? x->nsaved : 0;
	h.requests = x != NULL ? x->npending : 0;
	h.links_total = links;
	h.mon_total = mon;
	h.by_total = by;
	h.nlinks = min_u32(links, o.list_max);
	h.nmon = min_u32(mon, o.list_max);
	h.nby = min_u32(by, o.list_max);
	h.nhead = nhead;
	(void)tr__registry_name_of(rt, a, h.name);
	tr__actor_behaviour_name(a, h.behaviour);
	size_t off = align8(sizeof(h));
	h.off_links = (uint32_t)off;
	off = align8(off + h.nlinks * sizeof(tr_pid));
	h.off_mon = (uint32_t)off;
	off = align8(off + h.nmon * sizeof(tr_actor_monitor));
	h.off_by = (uint32_t)off;
	off = align8(off + h.nby * sizeof(tr_actor_monitor));
	h.off_head = (uint32_t)off;
	off += nhead * sizeof(tr_mailbox_entry);
	size_t total = off + bytes;
	tr_msg *r;
	rc = total <= UINT32_MAX
	         ? tr_msg_alloc(&r, rt, TR_MSG_ACTOR_REPORT, total)
	         : TR_EMSGSIZE;
	if (rc != TR_OK) {
		refuse(rt, s, a, m, rc);
		return;
	}
	h.size = (uint32_t)total;
	unsigned char *base = r->data;
	memset(base, 0, total);
	memcpy(base, &h, sizeof(h));
	if (h.nlinks != 0)
		memcpy(base + h.off_links, x->links, h.nlinks * sizeof(tr_pid));
	if (h.nmon != 0)
		mons_put(base, h.off_mon, x->watching, h.nmon);
	if (h.nby != 0)
		mons_put(base, h.off_by, x->watchers, h.nby);
	for (uint32_t i = 0; i < nhead; i++) {
		const tr_msg *e = head[i];
		tr_mailbox_entry me = {
		    .type = e->type,
		    .size = e->size,
		    .sender = e->sender,
		    .flags = (e->_flags & TR__MF_SYSTEM) != 0
		                 ? TR_MAILBOX_SYSTEM
		                 : 0,
		};
		if ((o.flags & TR_INSPECT_PAYLOAD) != 0) {
			me.nbytes = min_u32(e->size, o.payload_max);
			me.offset = (uint32_t)off;
			memcpy(base + off, e->data, me.nbytes);
			off += me.nbytes;
		}
		memcpy(base + h.off_head + i * sizeof(me), &me, sizeof(me));
	}
	r->sender = a->pid;
	r->ref = m->ref;
	r->_flags |= TR__MF_REPLY;
	(void)reply_send(rt, s, m->sender, r);
}

/* ---- the decoder -----------------------------------------------------------
 */

/* Whether an array of n elements of `elem` bytes at `off` lies inside a
 * payload of `size` bytes, 8-byte aligned. */
static bool array_ok(uint32_t off, uint32_t n, size_t elem, uint32_t size)
{
	return (off & 7u) == 0 && off <= size &&
	       (uint64_t)n * elem <= (uint64_t)(size - off);
}

int tr_actor_report_decode(tr_actor_report *r, const tr_msg *reply)
{
	if (tr__struct_out_ok(r, TR_ACTOR_REPORT_V1_SIZE) != TR_OK ||
	    reply == NULL || reply->type != TR_MSG_ACTOR_REPORT ||
	    reply->size < sizeof(rep))
		return TR_EINVAL;
	const unsigned char *base = reply->data;
	rep h;
	memcpy(&h, base, sizeof(h));
	if (h.magic != REP_MAGIC || h.size != reply->size ||
	    h.nlinks > h.links_total || h.nmon > h.mon_total ||
	    h.nby > h.by_total || h.nhead > TR_INSPECT_HEAD_MAX ||
	    !array_ok(h.off_links, h.nlinks, sizeof(tr_pid), h.size) ||
	    !array_ok(h.off_mon, h.nmon, sizeof(tr_actor_monitor), h.size) ||
	    !array_ok(h.off_by, h.nby, sizeof(tr_actor_monitor), h.size) ||
	    !array_ok(h.off_head, h.nhead, sizeof(tr_mailbox_entry), h.size) ||
	    memchr(h.name, '\0', sizeof(h.name)) == NULL ||
	    memchr(h.behaviour, '\0', sizeof(h.behaviour)) == NULL)
		return TR_EINVAL;
	const tr_mailbox_entry *head =
	    (const tr_mailbox_entry *)(const void *)(base + h.off_head);
	for (uint32_t i = 0; i < h.nhead; i++) {
		tr_mailbox_entry e;
		memcpy(&e, &head[i], sizeof(e));
		if (e.offset > h.size || e.nbytes > h.size - e.offset)
			return TR_EINVAL;
	}
	tr_actor_report mine;
	tr_actor_report_init(&mine);
	mine.pid = h.pid;
	mine.kind = h.kind;
	mine.state = h.state;
	mine.trap_exit = h.trap_exit != 0;
	mine.mailbox = h.mailbox;
	mine.handled = h.handled;
	mine.deferred = h.deferred;
	mine.requests = h.requests;
	memcpy(mine.name, h.name, sizeof(mine.name));
	memcpy(mine.behaviour, h.behaviour, sizeof(mine.behaviour));
	mine.nlinks = h.nlinks;
	mine.links_total = h.links_total;
	mine.nmonitors = h.nmon;
	mine.monitors_total = h.mon_total;
	mine.nmonitored_by = h.nby;
	mine.monitored_by_total = h.by_total;
	mine.nhead = h.nhead;
	mine.links = (const tr_pid *)(const void *)(base + h.off_links);
	mine.monitors =
	    (const tr_actor_monitor *)(const void *)(base + h.off_mon);
	mine.monitored_by =
	    (const tr_actor_monitor *)(const void *)(base + h.off_by);
	mine.head = head;
	mine.base = base;
	tr__struct_out(r, &mine, sizeof(mine));
	return TR_OK;
}

/* ---- from a plain thread ---------------------------------------------------
 */

int tr_actor_inspect(tr_msg **reply, tr_actor_report *r, tr_runtime *rt,
    tr_pid pid, const tr_inspect_opts *opts, int64_t timeout_ms)
{
	if (reply == NULL || rt == NULL ||
	    tr__struct_out_ok(r, TR_ACTOR_REPORT_V1_SIZE) != TR_OK ||
	    tr_pid_is_none(pid) || pid.node != 0)
		return TR_EINVAL;
	if (tr__current != NULL)
		return TR_EINVAL; /* an actor must not block: tr_request */
	tr_inspect_opts o;
	int rc = opts_read(&o, opts, opts != NULL ? opts->struct_size : 0);
	if (rc == TR_OK && opts != NULL && opts->struct_size == 0)
		rc = TR_EINVAL;
	if (rc != TR_OK)
		return rc;
	tr_port *p;
	rc = tr_port_open(&p, rt);
	if (rc != TR_OK)
		return rc;
	tr_msg *m;
	rc = tr__msg_new(&m, rt, TR_MSG_ACTOR_INSPECT, &o, sizeof(o));
	if (rc != TR_OK) {
		tr_port_close(p);
		return rc;
	}
	uint64_t ref = tr__new_ref(rt);
	m->sender = tr_port_pid(p);
	m->ref = ref;
	m->_flags |= TR__MF_INSPECT;
	rc = tr__deliver_any(rt, pid, m);
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
		tr_msg *a;
		rc = tr_port_recv(&a, p, left);
		if (rc != TR_OK)
			break;
		if (a->ref != ref || (a->_flags & TR__MF_REPLY) == 0) {
			tr__msg_free(a); /* a stray message to a fresh pid */
			continue;
		}
		a->_flags &= ~TR__MF_REPLY;
		if (a->type == TR_MSG_REFUSED) {
			rc = tr_refusal_code(a);
			if (rc == 0)
				rc = TR_EINVAL;
			tr__msg_free(a);
			break;
		}
		rc = tr_actor_report_decode(r, a);
		if (rc == TR_OK)
			*reply = a;
		else
			tr__msg_free(a);
		break;
	}
	tr_port_close(p);
	return rc;
}
