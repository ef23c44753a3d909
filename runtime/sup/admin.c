/*
 * Administration, the supervisor's side: answering the admin requests.
 *
 * A request that changes the tree (start, terminate, restart, delete)
 * while the supervisor is stopping children (a group restart, a terminate)
 * is put aside and handled once that is done, in arrival order, after the
 * exits that came meanwhile: the order in which OTP's supervisor, blocked
 * in its receive, would see them. which_children, count_children and info
 * (info.c) are answered at once, info even while shutting down. Every answer is a reply to the request's sender and
 * ref, in the layout the request spoke (local, or portable for
 * TR_SUP_REQ_START_NAMED); a caller that has given up (its tr_call or
 * tr_request timed out) drops it.
 *
 * The results follow OTP's handle_call clauses: already_started (with the
 * pid) and already_present, running and restarting, not_found, and
 * {ok, undefined} for a child whose init ignored its start.
 */
#include <stdlib.h>
#include <string.h>

#include "sup_int.h"

/* ---- replies ------------------------------------------------------------ */

static void reply_to(
    tr_ctx *ctx, tr_pid to, uint64_t ref, const tr_sup_reply *r, size_t size)
{
	/* tr_reply needs only the request's sender and ref, so a request
	 * answered later is replied to through a header that carries them. */
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = to;
	hdr.ref = ref;
	if (tr_reply(ctx, &hdr, TR_SUP_REPLY, r, size) == TR_EMSGSIZE &&
	    size > sizeof(*r)) {
		tr_sup_reply e;
		memset(&e, 0, sizeof(e));
		e.err = TR_EMSGSIZE;
		(void)tr_reply(ctx, &hdr, TR_SUP_REPLY, &e, sizeof(e));
	}
}

void tr__sup_reply_err(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid)
{
	tr_sup_reply r;
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.init_reason = reason;
	r.pid = pid;
	reply_to(ctx, to, ref, &r, sizeof(r));
}

/* The reply to a request of `type`, in the layout that request speaks. */
static void answer(tr_ctx *ctx, tr_pid to, uint64_t ref, uint32_t type, int err,
    int reason, tr_pid pid)
{
	if (type == TR_SUP_REQ_START_NAMED)
		tr__sup_named_reply(ctx, to, ref, err, reason, pid);
	else
		tr__sup_reply_err(ctx, to, ref, err, reason, pid);
}

void tr__sup_flush_deferred(tr_ctx *ctx, sup *s, int err)
{
	while (s->dq_head != NULL) {
		deferred *d = s->dq_head;
		s->dq_head = d->next;
		answer(ctx, d->sender, d->ref, d->type, err, 0, TR_PID_NONE);
		tr__sup_named_free(d->nq);
		free(d);
	}
	s->dq_tail = NULL;
}

void tr__sup_free_deferred(sup *s)
{
	while (s->dq_head != NULL) {
		deferred *d = s->dq_head;
		s->dq_head = d->next;
		tr__sup_named_free(d->nq);
		free(d);
	}
	s->dq_tail = NULL;
}

/* ---- starting children -------------------------------------------------- */

/* Starts a new child and keeps it, or frees it and keeps nothing (OTP keeps
 * no spec for a child that failed to start). One whose init ignored the
 * start is kept, stopped, unless it is temporary or dynamic. */
static void start_new(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t type, child *c)
{
	int reason;
	tr_pid holder;
	int rc = tr__sup_child_start(ctx, s, c, &reason, &holder);
	if (rc == SUP_IGNORED) {
		if (c->restart == TR_RESTART_TEMPORARY || sup_is_simple(s))
			tr__sup_child_free(c);
		else
			tr__sup_list_append(s, c);
		answer(ctx, from, ref, type, TR_OK, 0, TR_PID_NONE);
		return;
	}
	if (rc != TR_OK) {
		tr__sup_child_free(c);
		answer(ctx, from, ref, type, rc, rc == TR_EINIT ? reason : 0,
		    rc == TR_EALREADY ? holder : TR_PID_NONE);
		return;
	}
	tr__sup_list_append(s, c);
	answer(ctx, from, ref, type, TR_OK, 0, c->pid);
}

/* A child with this id exists: already started (with its pid), or already
 * present (stopped, or between restart attempts, as OTP answers). */
static void answer_taken(
    tr_ctx *ctx, tr_pid from, uint64_t ref, uint32_t type, const child *old)
{
	if (child_running(old))
		answer(ctx, from, ref, type, TR_EALREADY, 0, old->pid);
	else
		answer(ctx, from, ref, type, TR_EEXIST, 0, TR_PID_NONE);
}

/* A name field of a request, NUL-terminated for sure: NULL when empty. */
static const char *field(char *buf, const char *f)
{
	memcpy(buf, f, TR_NAME_MAX + 1);
	buf[TR_NAME_MAX] = '\0';
	return buf[0] != '\0' ? buf : NULL;
}

static void req_start_child(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, const tr_sup_request *q)
{
	const uint32_t type = TR_SUP_REQ_START_CHILD;
	child *c;
	if (sup_is_simple(s)) {
		if (q->has_spec) {
			tr__sup_reply_err(
			    ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
			return;
		}
		tr_child_spec t = tr__sup_tmpl_spec(s);
		/* A template with a start function: a start without an
		 * argument of its own takes the template's (a process
		 * child's spec). */
		void *arg = s->tmpl->start_fn != NULL && q->arg == NULL
		                ? s->tmpl->arg
		                : q->arg;
		c = tr__sup_child_new(
		    &t, s->tmpl->start, "", s->tmpl->name, arg);
		/* A template made by name takes a blob, copied now. */
		if (c != NULL && s->tmpl->by_name &&
		    tr__sup_child_set_blob(c, q->arg) != TR_OK) {
			tr__sup_child_free(c);
			c = NULL;
		}
	} else {
		char id[TR_NAME_MAX + 1], sname[TR_NAME_MAX + 1];
		char name[TR_NAME_MAX + 1];
		tr_child_spec sp = q->spec;
		(void)field(id, q->id);
		sp.id = NULL;
		sp.start_name = field(sname, q->start_name);
		sp.name = field(name, q->name);
		if (!q->has_spec || !tr__sup_valid_id(id) ||
		    !tr__sup_valid_spec_body(&sp)) {
			tr__sup_reply_err(
			    ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
			return;
		}
		child *old = tr__sup_find_id(s, id);
		if (old != NULL) {
			answer_taken(ctx, from, ref, type, old);
			return;
		}
		int rc = tr__sup_child_from_spec(s->rt, &sp, id, &c);
		if (rc != TR_OK) {
			tr__sup_reply_err(ctx, from, ref, rc, 0, TR_PID_NONE);
			return;
		}
	}
	if (c == NULL) {
		tr__sup_reply_err(ctx, from, ref, TR_ENOMEM, 0, TR_PID_NONE);
		return;
	}
	start_new(ctx, s, from, ref, type, c);
}

/* A START_NAMED request, decoded and checked but for what depends on this
 * supervisor; takes `nq` over. */
static void req_start_named(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, named_req *nq)
{
	const uint32_t type = TR_SUP_REQ_START_NAMED;
	child *c = NULL;
	int err = TR_OK;
	if (sup_is_simple(s)) {
		/* Dynamic children take the template's policy; a request
		 * can only add one if the template takes a blob. */
		if (!s->tmpl->by_name) {
			err = TR_ENOTSUP;
		} else if (nq->id[0] != '\0' || nq->b != s->tmpl->start) {
			err = TR_EINVAL;
		} else {
			tr_child_spec t = tr__sup_tmpl_spec(s);
			c = tr__sup_child_new(
			    &t, s->tmpl->start, "", s->tmpl->name, NULL);
		}
	} else if (nq->id[0] == '\0') {
		err = TR_EINVAL;
	} else {
		child *old = tr__sup_find_id(s, nq->id);
		if (old != NULL) {
			answer_taken(ctx, from, ref, type, old);
			tr__sup_named_free(nq);
			return;
		}
		c = tr__sup_child_new(&nq->spec, nq->b, nq->id, NULL, NULL);
	}
	if (err == TR_OK && c == NULL)
		err = TR_ENOMEM;
	if (err != TR_OK) {
		answer(ctx, from, ref, type, err, 0, TR_PID_NONE);
		tr__sup_named_free(nq);
		return;
	}
	/* The request's copy of the argument becomes the spec's. */
	c->by_name = true;
	c->blob = nq->blob;
	nq->blob = NULL;
	tr__sup_named_free(nq);
	start_new(ctx, s, from, ref, type, c);
}

/* ---- the other requests ------------------------------------------------- */

static void req_terminate(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, child *c)
{
	if (child_running(c)) {
		s->op = OP_TERMINATE;
		s->term_child = c;
		s->term_sender = from;
		s->term_ref = ref;
		if (c->state == C_RUNNING)
			tr__sup_child_stop(ctx, s, c, true);
		return;
	}
	/* Not running (stopped, or between restart attempts): it is stopped
	 * now, and a pending retry will find it so and do nothing. */
	c->state = C_STOPPED;
	c->retry_tok = 0;
	if (c->restart == TR_RESTART_TEMPORARY || sup_is_simple(s))
		tr__sup_child_remove(s, c);
	tr__sup_reply_err(ctx, from, ref, TR_OK, 0, TR_PID_NONE);
}

/* restart_child and delete_child, on a child found by id. */
static void req_restart_delete(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t type, child *c)
{
	if (child_restarting(c)) {
		tr__sup_reply_err(
		    ctx, from, ref, TR_ERESTARTING, 0, TR_PID_NONE);
		return;
	}
	if (c->state != C_STOPPED) {
		tr__sup_reply_err(ctx, from, ref, TR_ERUNNING, 0, c->pid);
		return;
	}
	if (type == TR_SUP_REQ_DELETE_CHILD) {
		tr__sup_child_remove(s, c);
		tr__sup_reply_err(ctx, from, ref, TR_OK, 0, TR_PID_NONE);
		return;
	}
	int reason;
	tr_pid holder;
	int rc = tr__sup_child_start(ctx, s, c, &reason, &holder);
	if (rc == SUP_IGNORED)
		tr__sup_reply_err(ctx, from, ref, TR_OK, 0, TR_PID_NONE);
	else if (rc == TR_OK)
		tr__sup_reply_err(ctx, from, ref, TR_OK, 0, c->pid);
	else
		tr__sup_reply_err(ctx, from, ref, rc,
		    rc == TR_EINIT ? reason : 0,
		    rc == TR_EALREADY ? holder : TR_PID_NONE);
}

static void req_which(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t cap)
{
	uint32_t n = s->nchildren < cap ? s->nchildren : cap;
	size_t size = sizeof(tr_sup_reply) + (size_t)n * sizeof(tr_child_info);
	tr_sup_reply *r = calloc(1, size);
	if (r == NULL) {
		tr__sup_reply_err(ctx, from, ref, TR_ENOMEM, 0, TR_PID_NONE);
		return;
	}
	r->total = s->nchildren;
	r->n = n;
	uint32_t i = 0;
	for (child *c = s->head; c != NULL && i < n; c = c->next, i++) {
		tr_child_info *ci = &r->children[i];
		ci->struct_size = sizeof(*ci);
		memcpy(ci->id, c->id, strlen(c->id) + 1);
		ci->pid = child_running(c) ? c->pid : TR_PID_NONE;
		ci->type = (tr_child_type)c->type;
		ci->restarting = child_restarting(c);
	}
	reply_to(ctx, from, ref, r, size);
	free(r);
}

static void req_count(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref)
{
	tr_sup_reply r;
	memset(&r, 0, sizeof(r));
	r.counts.struct_size = sizeof(r.counts);
	for (child *c = s->head; c != NULL; c = c->next) {
		r.counts.specs++;
		if (child_running(c))
			r.counts.active++;
		if (c->type == TR_CHILD_SUPERVISOR)
			r.counts.supervisors++;
		else
			r.counts.workers++;
	}
	reply_to(ctx, from, ref, &r, sizeof(r));
}

static bool mutating(uint32_t type)
{
	return type != TR_SUP_REQ_WHICH_CHILDREN &&
	       type != TR_SUP_REQ_COUNT_CHILDREN && type != TR_SUP_REQ_INFO;
}

static void defer(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t type,
    const tr_sup_request *q, named_req *nq)
{
	deferred *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		answer(ctx, from, ref, type, TR_ENOMEM, 0, TR_PID_NONE);
		tr__sup_named_free(nq);
		return;
	}
	d->sender = from;
	d->ref = ref;
	d->type = type;
	if (q != NULL)
		d->req = *q;
	d->nq = nq;
	if (s->dq_tail != NULL)
		s->dq_tail->next = d;
	else
		s->dq_head = d;
	s->dq_tail = d;
}

void tr__sup_on_request(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref,
    uint32_t type, const tr_sup_request *q, named_req *nq)
{
	/* INFO is for operators, who most want to see a supervisor that is
	 * slow to stop: answered until it has exited. */
	if (type == TR_SUP_REQ_INFO) {
		tr__sup_req_info(ctx, s, from, ref, q->cap);
		return;
	}
	if (s->shutting_down) {
		answer(ctx, from, ref, type, TR_ECLOSED, 0, TR_PID_NONE);
		tr__sup_named_free(nq);
		return;
	}
	if (s->op != OP_NONE && mutating(type)) {
		defer(ctx, s, from, ref, type, q, nq);
		return;
	}
	if (type == TR_SUP_REQ_START_NAMED) {
		req_start_named(ctx, s, from, ref, nq);
		return;
	}
	char id[TR_NAME_MAX + 1];
	(void)field(id, q->id);
	child *c = NULL;
	switch (type) {
	case TR_SUP_REQ_START_CHILD:
		req_start_child(ctx, s, from, ref, q);
		return;
	case TR_SUP_REQ_TERMINATE_PID:
		/* By pid only for simple_one_for_one: OTP looks a pid up
		 * among the ids of the other strategies, and finds none. */
		if (sup_is_simple(s))
			c = tr__pm_get(&s->map, q->pid);
		break;
	case TR_SUP_REQ_TERMINATE_CHILD:
	case TR_SUP_REQ_RESTART_CHILD:
	case TR_SUP_REQ_DELETE_CHILD:
		if (sup_is_simple(s)) {
			tr__sup_reply_err(
			    ctx, from, ref, TR_ENOTSUP, 0, TR_PID_NONE);
			return;
		}
		c = tr__sup_find_id(s, id);
		break;
	case TR_SUP_REQ_WHICH_CHILDREN:
		req_which(ctx, s, from, ref, q->cap);
		return;
	case TR_SUP_REQ_COUNT_CHILDREN:
		req_count(ctx, s, from, ref);
		return;
	default:
		tr__sup_reply_err(ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
		return;
	}
	if (c == NULL)
		tr__sup_reply_err(ctx, from, ref, TR_ENOENT, 0, TR_PID_NONE);
	else if (type == TR_SUP_REQ_TERMINATE_CHILD ||
	         type == TR_SUP_REQ_TERMINATE_PID)
		req_terminate(ctx, s, from, ref, c);
	else
		req_restart_delete(ctx, s, from, ref, type, c);
}

/* Exits first (they may start another operation, which puts the rest aside
 * again), then requests in arrival order. */
void tr__sup_drain(tr_ctx *ctx, sup *s)
{
	while (s->op == OP_NONE && !s->shutting_down) {
		if (s->npending > 0) {
			child *c = s->head;
			while (c != NULL && c->state != C_PENDING)
				c = c->next;
			if (c == NULL) {
				s->npending = 0;
				continue;
			}
			s->npending--;
			if (c->pending_retry) {
				c->pending_retry = false;
				c->state = C_RESTARTING;
				tr__sup_restart(ctx, s, c);
			} else {
				tr__sup_child_exited(
				    ctx, s, c, c->pending_reason);
			}
			continue;
		}
		deferred *d = s->dq_head;
		if (d == NULL)
			return;
		s->dq_head = d->next;
		if (s->dq_head == NULL)
			s->dq_tail = NULL;
		tr__sup_on_request(
		    ctx, s, d->sender, d->ref, d->type, &d->req, d->nq);
		free(d);
	}
}
