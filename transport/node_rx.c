/*
 * Receiving from other nodes: the envelopes of a pair's batch frames go
 * into local mailboxes and signals. Runs on nng's threads (sp_in.c hands over
 * one frame at a time, in the order of its connection, so per-pair order
 * holds on the receiving side), which never run actor code.
 */
#include "node_int.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Delivers `m` (taken) to local `to`, behind what flow control holds
 * back for it from `p` (NULL: the node's own signals, which follow
 * nothing of a peer). */
static int deliver(struct tr_node *n, struct tr__peer *p, tr_pid to, tr_msg *m)
{
	if (tr__flow_hold_sig(n, p, to, m))
		return TR_OK;
	int rc = tr__dist_inject(n->rt, to, m);
	if (rc != TR_OK)
		tr__dist_msg_free(m);
	return rc;
}

int tr__inject_sig(struct tr_node *n, struct tr__peer *p, tr_pid to,
    uint32_t kind, uint32_t flags, uint64_t ref, tr_pid from,
    const tr_exit_info *info)
{
	tr_msg *m;
	int rc = tr__dist_msg_new(&m, kind, info, info ? sizeof(*info) : 0);
	if (rc != TR_OK)
		return rc;
	m->sender = from;
	m->ref = ref;
	m->_flags |= TR__MF_SIGNAL | flags;
	return deliver(n, p, to, m);
}

int tr__inject_down(struct tr_node *n, struct tr__peer *p, tr_pid to,
    tr_pid target, uint64_t ref, int reason, const char *text)
{
	tr_exit_info info;
	memset(&info, 0, sizeof(info));
	info.pid = target;
	info.reason = reason;
	info.ref = ref;
	snprintf(info.text, sizeof(info.text), "%s", text ? text : "");
	tr_msg *m;
	int rc = tr__dist_msg_new(&m, TR_MSG_DOWN, &info, sizeof(info));
	if (rc != TR_OK)
		return rc;
	m->sender = target;
	m->ref = ref;
	m->_flags |= TR__MF_DOWN;
	return deliver(n, p, to, m);
}

int tr__inject_msg(struct tr_node *n, tr_pid to, uint32_t type,
    const void *data, size_t size, tr_pid from, uint64_t ref, uint32_t flags)
{
	tr_msg *m;
	int rc = tr__dist_msg_new(&m, type, data, size);
	if (rc != TR_OK)
		return rc;
	m->sender = from;
	m->ref = ref;
	m->_flags |= flags;
	rc = tr__dist_inject(n->rt, to, m);
	if (rc != TR_OK)
		tr__dist_msg_free(m);
	return rc;
}

/* The state of one inbound frame on the receive thread. Plain messages
 * are injected inside one epoch section per frame (tr__dist_enter), not
 * one per message, and consecutive messages to one pid go onto its
 * mailbox together (tr__dist_inject_many_locked): one lookup and one
 * atomic exchange per run instead of per message. Anything else that
 * calls into the runtime or the network first delivers what is pending
 * and leaves the section (rx_leave), as the contract in dist.h asks, so
 * everything still arrives in frame order. A registered name is resolved
 * once per frame: the envelopes of one frame are delivered as if they all
 * arrived at the instant of the first lookup, which is as much as a
 * sender could tell apart. */
#define RX_RUN 64u /* messages handed over at once, at most */

#define RX_BUSY 8u /* BUSYs owed after a section, at most (more: next time) */

struct rx {
	struct tr_node *n;
	struct tr__peer *p;
	const char *run_name; /* the name the pending run was sent to */
	uint32_t nbusy;
	tr_pid busy[RX_BUSY];
	const char *busy_name[RX_BUSY];
	bool in; /* inside the runtime's epoch section */
	unsigned rec;
	const char *name; /* the last name looked up (in the frame) */
	tr_pid pid;
	int err;
	tr_pid run_to; /* the target of the pending run */
	uint32_t nrun;
	tr_msg *run[RX_RUN];
};

static void rx_flush(struct rx *r)
{
	if (r->nrun == 0)
		return;
	if (!r->in) {
		tr__dist_enter(r->n->rt, &r->rec);
		r->in = true;
	}
	if (tr__flow_deliver(
	        r->n, r->p, r->run_to, r->run_name, r->run, r->nrun) &&
	    r->nbusy < RX_BUSY) {
		r->busy[r->nbusy] = r->run_to;
		r->busy_name[r->nbusy++] = r->run_name;
	}
	r->nrun = 0;
}

static void rx_leave(struct rx *r)
{
	rx_flush(r);
	if (r->in) {
		tr__dist_exit(r->n->rt, r->rec);
		r->in = false;
	}
	/* Out of the section: the network may be touched. */
	for (uint32_t i = 0; i < r->nbusy; i++)
		tr__flow_busy_send(r->n, r->p, r->busy[i], r->busy_name[i]);
	r->nbusy = 0;
}

/* Queues a message for `to` behind the pending run; a dead target drops
 * it, as tr__dist_inject would. */
/* Names of two runs: the same string, or both none. */
static bool same_name(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void rx_inject(struct rx *r, tr_pid to, const char *name, uint32_t type,
    const void *data, size_t size, tr_pid from, uint64_t ref, uint32_t flags)
{
	tr_msg *m;
	if (tr__dist_msg_new(&m, type, data, size) != TR_OK)
		return;
	m->sender = from;
	m->ref = ref;
	m->_flags |= flags;
	if (r->nrun != 0 && (r->nrun == RX_RUN || !tr_pid_eq(r->run_to, to) ||
	                        !same_name(r->run_name, name)))
		rx_flush(r);
	r->run_to = to;
	r->run_name = name;
	r->run[r->nrun++] = m;
}

void tr__exit_info(tr_exit_info *info, tr_pid pid, int reason, const char *text)
{
	memset(info, 0, sizeof(*info));
	info->pid = pid;
	info->reason = reason;
	snprintf(info->text, sizeof(info->text), "%s", text ? text : "");
}

/* ---- receiving envelopes ------------------------------------------------ */

/* The node's answer, for a local actor that is gone, to a LINK (an exit
 * signal via the link, reason noproc) or a MONITOR (DOWN noproc, with
 * the monitor's ref): from the dead pid to the remote one that asked. */
static void answer_noproc(struct tr_node *n, struct tr__peer *p, tr_pid dead,
    tr_pid asker, Troupe__Wire__Control control, uint64_t ref)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt, wf;
	tr__pid_out(n, asker, &wt);
	tr__pid_out(n, dead, &wf);
	e.to = &wt;
	e.from = &wf;
	e.control = control;
	e.flags = control == TROUPE__WIRE__CONTROL__CONTROL_EXIT
	              ? TR__ENV_VIALINK
	              : 0;
	e.ref = ref;
	e.reason = TR_REASON_NOPROC;
	(void)tr__env_send_now(n, p, &e, false);
}

/* A message of a local-only type came from the wire (tr_msg_type_local):
 * a peer that runs other code, or a hostile one. It never reaches the
 * actor; it is counted and logged, and a request gets TR_MSG_REFUSED
 * (TR_EINVAL) as its reply, so a caller does not wait for nothing. */
static void refuse_local(
    struct tr_node *n, struct tr__peer *p, const Env *e, tr_pid from)
{
	atomic_fetch_add_explicit(&n->n_local, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->rx_refused, 1, memory_order_relaxed);
	tr__ratelogf(&n->log_local, n->rt, 0,
	    "NODE %s: refused a message of local-only type 0x%08x from node %s",
	    n->name, e->type, p->name);
	if (e->ref == 0 || (e->flags & TR__ENV_REPLY) != 0 ||
	    tr_pid_is_none(from))
		return;
	Env a = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt;
	int32_t err = TR_EINVAL;
	tr__pid_out(n, from, &wt);
	a.to = &wt;
	a.type = TR_MSG_REFUSED;
	a.ref = e->ref;
	a.flags = TR__ENV_REPLY;
	a.payload.data = (uint8_t *)&err;
	a.payload.len = sizeof(err);
	(void)tr__env_send_now(n, p, &a, false);
}

/* Remote `rem` links to local `loc`: the link signal goes to `loc` and
 * the link is recorded on the peer (so that the peer's loss fires it),
 * both under the peer lock and only while it is up; a `loc` that is gone
 * answers with an exit signal noproc, as a local link to it would. */
static void link_in(
    struct tr_node *n, struct tr__peer *p, tr_pid loc, tr_pid rem)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->state == TR__PS_UP
	             ? tr__inject_sig(n, p, loc, TR__SIG_LINK, 0, 0, rem, NULL)
	             : TR_ECLOSED;
	if (rc == TR_OK)
		tr__xlink_add(p, loc, rem);
	pthread_mutex_unlock(&p->lock);
	if (rc == TR_ENOPROC)
		answer_noproc(
		    n, p, loc, rem, TROUPE__WIRE__CONTROL__CONTROL_EXIT, 0);
}

static void spawn_in(
    struct tr_node *n, struct tr__peer *p, const Env *e, tr_pid from)
{
	if (tr_pid_is_none(from))
		return;
	const tr_behaviour *b =
	    e->name != NULL ? tr__dist_behaviour_find(n->rt, e->name) : NULL;
	bool link = (e->flags & TR__ENV_LINK) != 0;
	tr_pid pid = TR_PID_NONE;
	int err = TR_ENOENT;
	Env r = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt, wf;
	/* The peer lock is held across the spawn so that the reply goes
	 * into the batch before anything the new actor sends to the
	 * requester (its exit signal, if it dies at once). */
	pthread_mutex_lock(&p->lock);
	if (p->state != TR__PS_UP) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (b != NULL) {
		tr_node_blob *arg = malloc(sizeof(*arg) + e->payload.len);
		err = TR_ENOMEM;
		if (arg != NULL) {
			arg->size = e->payload.len;
			if (e->payload.len != 0)
				memcpy(
				    arg->data, e->payload.data, e->payload.len);
			err = tr_spawn(&pid, n->rt, b, arg, NULL);
			if (err != TR_OK)
				free(arg);
		}
		if (err == TR_OK && link) {
			if (tr__inject_sig(n, NULL, pid, TR__SIG_LINK, 0, 0,
			        from, NULL) == TR_OK)
				tr__xlink_add(p, pid, from);
		}
	}
	tr__pid_out(n, from, &wt);
	r.to = &wt;
	if (err == TR_OK) {
		tr__pid_out(n, pid, &wf);
		r.from = &wf;
	}
	r.control = TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REPLY;
	r.ref = e->ref;
	r.error = err;
	r.flags = link ? TR__ENV_LINK : 0;
	(void)tr__env_put(n, p, &r, false, NULL);
	pthread_mutex_unlock(&p->lock);
	tr__flush_peer(n, p, false);
}

static void spawn_reply_in(
    struct tr_node *n, struct tr__peer *p, tr_pid to, const Env *e, tr_pid from)
{
	tr_spawn_reply r;
	memset(&r, 0, sizeof(r));
	r.error = e->error;
	r.pid = e->error == TR_OK ? from : TR_PID_NONE;
	if (e->error == TR_OK && tr_pid_is_none(from))
		r.error = TR_ENOPROC;
	if (r.error == TR_OK && (e->flags & TR__ENV_LINK) != 0)
		/* If the requester is gone, its child must not stay linked
		 * to no one: it gets an exit signal. */
		link_in(n, p, to, from);
	(void)tr__inject_msg(
	    n, to, TR_MSG_SPAWN_REPLY, &r, sizeof(r), from, e->ref, 0);
}

/* Delivers a plain message and the rest of its run (Envelope.more) to
 * `to`; a payload over the runtime's limit is dropped, as one sent
 * locally would be refused. */
static void rx_run(struct rx *r, tr_pid to, const char *name, const Env *e,
    tr_pid from, uint64_t ref, uint32_t flags)
{
	size_t max = r->n->max_msg;
	if (e->payload.len <= max)
		rx_inject(r, to, name, e->type, e->payload.data, e->payload.len,
		    from, ref, flags);
	for (size_t i = 0; i < e->n_more; i++)
		if (e->more[i].len <= max)
			rx_inject(r, to, name, e->type, e->more[i].data,
			    e->more[i].len, from, ref, flags);
}

static void named_in(
    struct rx *r, struct tr__peer *p, const Env *e, tr_pid from)
{
	struct tr_node *n = r->n;
	tr_pid pid = TR_PID_NONE;
	int err = TR_ENOENT;
	if (e->name != NULL) {
		if (r->name == NULL || strcmp(r->name, e->name) != 0) {
			r->err = tr_whereis(&r->pid, n->rt, e->name);
			r->name = e->name;
		}
		pid = r->pid;
		err = r->err;
	}
	if (e->type == TR__NODE_T_WHEREIS) {
		if (tr_pid_is_none(from))
			return;
		rx_leave(r);
		Env a = TROUPE__WIRE__ENVELOPE__INIT;
		WPid wt, wf;
		tr__pid_out(n, from, &wt);
		a.to = &wt;
		if (err == TR_OK) {
			tr__pid_out(n, pid, &wf);
			a.from = &wf;
		}
		a.type = TR__NODE_T_WHEREIS_REPLY;
		a.ref = e->ref;
		a.error = err;
		(void)tr__env_send_now(n, p, &a, false);
		return;
	}
	if (tr_msg_type_local(e->type)) {
		rx_leave(r);
		refuse_local(n, p, e, from);
		return;
	}
	if (err != TR_OK)
		return; /* as in Erlang: an unknown name drops the message */
	rx_run(r, pid, e->name, e, from, 0, 0);
}

static void env_in(struct rx *r, struct tr__peer *p, const Env *e)
{
	struct tr_node *n = r->n;
	tr_pid from = tr__pid_in(n, p, e->from);
	tr_pid to = TR_PID_NONE;
	Troupe__Wire__Control c = e->control;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_HEARTBEAT)
		return;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REQUEST) {
		rx_leave(r);
		spawn_in(n, p, e, from);
		return;
	}
	if (c == TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND) {
		named_in(r, p, e, from);
		return;
	}
	if (c == TROUPE__WIRE__CONTROL__CONTROL_MEMBERS) {
		rx_leave(r); /* it takes the node lock */
		tr__mesh_gossip_in(n, p, e);
		return;
	}
	if (c == TROUPE__WIRE__CONTROL__CONTROL_BUSY ||
	    c == TROUPE__WIRE__CONTROL__CONTROL_READY) {
		tr__flow_busy_in(n, p, e);
		return;
	}
	if (!tr__pid_local(n, e->to, &to))
		return; /* not ours, or an earlier incarnation of us */
	tr_exit_info info;
	int rc;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_NONE) {
		uint32_t flags = (e->flags & TR__ENV_REPLY) ? TR__MF_REPLY : 0;
		if (e->type == TR__NODE_T_WHEREIS_REPLY) {
			/* A reply: an actor's call by name (dist.h's whereis
			 * op) awaits it, and drops it if it came too late. */
			int32_t err = e->error;
			pthread_mutex_lock(&p->lock);
			tr__xask_del(p, e->ref, to);
			pthread_mutex_unlock(&p->lock);
			rx_inject(r, to, NULL, e->type, &err, sizeof(err), from,
			    e->ref, TR__MF_REPLY);
			return;
		}
		if (e->type == TR_MSG_REFUSED && flags != 0) {
			/* A node's answer in place of a reply it refused to
			 * deliver: the error reaches the waiting caller. */
			int32_t err = TR_EINVAL;
			if (e->payload.len == sizeof(err))
				memcpy(&err, e->payload.data, sizeof(err));
			if (err >= 0)
				err = TR_EINVAL;
			rx_inject(r, to, NULL, TR_MSG_REFUSED, &err,
			    sizeof(err), from, e->ref, flags);
			return;
		}
		if (tr_msg_type_local(e->type)) {
			rx_leave(r);
			refuse_local(n, p, e, from);
			return;
		}
		rx_run(r, to, NULL, e, from, e->ref, flags);
		return;
	}
	/* Signals: rare, and some take locks or call tr_kill. */
	rx_leave(r);
	switch (c) {
	case TROUPE__WIRE__CONTROL__CONTROL_LINK:
		if (!tr_pid_is_none(from))
			link_in(n, p, to, from);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_UNLINK:
		pthread_mutex_lock(&p->lock);
		tr__xlink_del(p, to, from);
		pthread_mutex_unlock(&p->lock);
		(void)tr__inject_sig(
		    n, p, to, TR__SIG_UNLINK, 0, 0, from, NULL);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_EXIT: {
		bool vialink = (e->flags & TR__ENV_VIALINK) != 0;
		if (vialink) {
			pthread_mutex_lock(&p->lock);
			tr__xlink_del(p, to, from);
			pthread_mutex_unlock(&p->lock);
			tr__proc_exit_seen(n, p->name, from);
		}
		if (!vialink && e->reason == TR_REASON_KILL) {
			/* exit(Pid, kill): through tr_kill, which also raises
			 * the target's kill flag so it dies within a batch
			 * even behind a flooded mailbox. */
			(void)tr_kill(n->rt, to, TR_REASON_KILL);
			return;
		}
		tr__exit_info(&info, from, e->reason, e->reason_text);
		(void)tr__inject_sig(n, p, to, TR__SIG_EXIT,
		    vialink ? TR__MF_VIALINK : 0, 0, from, &info);
		return;
	}
	case TROUPE__WIRE__CONTROL__CONTROL_MONITOR:
		if (tr_pid_is_none(from))
			return;
		pthread_mutex_lock(&p->lock);
		rc = p->state == TR__PS_UP
		         ? tr__inject_sig(
		               n, p, to, TR__SIG_MONITOR, 0, e->ref, from, NULL)
		         : TR_ECLOSED;
		if (rc == TR_OK)
			tr__xmon_add(p, e->ref, to, from, false);
		pthread_mutex_unlock(&p->lock);
		if (rc == TR_ENOPROC)
			answer_noproc(n, p, to, from,
			    TROUPE__WIRE__CONTROL__CONTROL_DOWN, e->ref);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_DEMONITOR:
		pthread_mutex_lock(&p->lock);
		tr__xmon_del(p, e->ref, false);
		pthread_mutex_unlock(&p->lock);
		(void)tr__inject_sig(
		    n, p, to, TR__SIG_DEMONITOR, 0, e->ref, from, NULL);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_DOWN:
		pthread_mutex_lock(&p->lock);
		tr__xmon_del(p, e->ref, true);
		pthread_mutex_unlock(&p->lock);
		tr__proc_exit_seen(n, p->name, from);
		(void)tr__inject_down(
		    n, p, to, from, e->ref, e->reason, e->reason_text);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REPLY:
		spawn_reply_in(n, p, to, e, from);
		return;
	default:
		return;
	}
}

void tr__rx_batch(
    struct tr_node *n, struct tr__peer *p, const Troupe__Wire__Batch *b)
{
	struct rx r = {.n = n, .p = p};
	uint64_t k = b->n_envelopes;
	for (size_t i = 0; i < b->n_envelopes; i++) {
		k += b->envelopes[i]->n_more;
		env_in(&r, p, b->envelopes[i]);
	}
	atomic_fetch_add_explicit(&p->rx_msgs, k, memory_order_relaxed);
	rx_leave(&r);
}
