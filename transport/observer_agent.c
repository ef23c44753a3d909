/*
 * The observer's agent (observer_int.h): an actor on the node, registered
 * as "troupe.observer", that answers what an HTTP thread cannot answer at
 * once: routes that ask other actors (a supervisor's children, an actor's
 * links) and requests for another node, which it forwards to that node's
 * agent as a named request and whose reply it relays. It never blocks:
 * each question is a tr_call_then with a timeout, so every request it
 * holds is answered within TR__OBS_CALL_MS of its last question.
 *
 * A request (tr__obs_req) lives until its answer is given and every call
 * made for it has come back (`holds`); the agent keeps the ones it holds
 * in a list, so that it can answer them all when it must stop.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "observer.pb-c.h"
#include "observer_int.h"

/* Local-only tags of the agent: a request from this node's endpoint (the
 * payload is its pointer) and the end. */
#define T_JOB (TR_MSG_LOCAL_BASE + 0x4f00u)
#define T_END (TR_MSG_LOCAL_BASE + 0x4f01u)
/* Between agents (proto/observer.proto). */
#define T_REQUEST 0xFFFD0400u
#define T_REPLY 0xFFFD0401u

struct tr__obs_agent {
	tr__observer *o;
	struct tr_node *n;
	tr_pid pid;
	/* Written by the agent only. */
	tr__obs_req *head;
	bool ending;
	/* Requests alive, counted by whoever makes one (the endpoint's
	 * thread or the agent) and by the agent when it frees one. */
	_Atomic unsigned live;
	_Atomic bool quiet; /* tr__obs_agent_quiesce */
};

/* ---- a request's lifetime ------------------------------------------------ */

static void req_free(tr_ctx *ctx, tr__obs_req *rq)
{
	tr__obs_agent *a = rq->agent;
	if (a != NULL) {
		if (rq->prev != NULL)
			rq->prev->next = rq->next;
		else
			a->head = rq->next;
		if (rq->next != NULL)
			rq->next->prev = rq->prev;
		atomic_fetch_sub_explicit(&a->live, 1, memory_order_relaxed);
	}
	free(rq);
	if (a != NULL && a->ending && a->head == NULL && ctx != NULL)
		tr_exit(ctx, TR_REASON_NORMAL);
}

void tr__obs_hold(tr__obs_req *rq)
{
	rq->holds++;
}

void tr__obs_drop(tr_ctx *ctx, tr__obs_req *rq)
{
	if (--rq->holds == 0)
		req_free(ctx, rq);
}

/* The answer to another node's agent: a Reply, as a reply to its
 * request. */
static void answer_remote(tr_ctx *ctx, tr__obs_req *rq, uint16_t status,
    const char *type, const char *body)
{
	Troupe__Observer__Reply r = TROUPE__OBSERVER__REPLY__INIT;
	r.status = status;
	r.content_type = (char *)(type != NULL ? type : "");
	r.body.data = (uint8_t *)body;
	r.body.len = body != NULL ? strlen(body) : 0;
	size_t len = troupe__observer__reply__get_packed_size(&r);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return; /* the asker times out */
	troupe__observer__reply__pack(&r, buf);
	tr_msg req;
	memset(&req, 0, sizeof(req));
	req.sender = rq->from;
	req.ref = rq->from_ref;
	(void)tr_reply(ctx, &req, T_REPLY, buf, len);
	free(buf);
}

void tr__obs_answer(
    tr_ctx *ctx, tr__obs_req *rq, uint16_t status, const char *type, char *body)
{
	if (rq->answered) {
		free(body);
		return;
	}
	rq->answered = true;
	if (body == NULL) {
		status = 500;
		type = "text/plain";
		body = strdup("500 out of memory\n");
	}
	if (type == NULL)
		type = "application/json";
	if (rq->aio != NULL)
		tr__observer_reply(rq->o, rq->aio, status, type, body);
	else {
		if (ctx != NULL)
			answer_remote(ctx, rq, status, type, body);
		free(body);
	}
	tr__obs_drop(ctx, rq);
}

/* ---- forwarding to another node ---------------------------------------- */

static int on_forwarded(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)state;
	tr__obs_req *rq = arg;
	char node[TR_NODE_NAME_MAX + 1];
	(void)tr__obs_param(rq, "node", node, sizeof(node));
	Troupe__Observer__Reply *r = NULL;
	if (status == TR_OK && reply->type == T_REPLY)
		r = troupe__observer__reply__unpack(
		    NULL, reply->size, reply->data);
	if (r != NULL) {
		char *body = malloc(r->body.len + 1);
		if (body != NULL) {
			memcpy(body, r->body.data, r->body.len);
			body[r->body.len] = '\0';
		}
		tr__obs_answer(ctx, rq, (uint16_t)r->status,
		    r->content_type[0] != '\0' ? r->content_type : NULL, body);
		troupe__observer__reply__free_unpacked(r, NULL);
	} else {
		char text[TR_NODE_NAME_MAX + 96];
		snprintf(text, sizeof(text), "node %s: %s", node,
		    status == TR_ETIMEDOUT ? "no answer in time"
		    : status == TR_OK      ? "a malformed answer"
		    : status == TR_ENOPROC
		        ? "no observer there, or it went down"
		        : tr_strerror(status));
		tr__obs_error(
		    ctx, rq, status == TR_ETIMEDOUT ? 504 : 502, text);
	}
	tr__obs_drop(ctx, rq);
	return 0;
}

/* Asks node `node`'s agent for `rq`, without node= (so it answers for
 * itself). */
static void forward(tr_ctx *ctx, tr__obs_req *rq, const char *node)
{
	char query[TR__OBS_QUERY_MAX];
	size_t ql = 0;
	for (const char *p = rq->query; *p != '\0';) {
		size_t l = strcspn(p, "&");
		if (strncmp(p, "node=", 5) != 0) {
			if (ql > 0)
				query[ql++] = '&';
			memcpy(query + ql, p, l);
			ql += l;
		}
		p += l + (p[l] == '&');
	}
	query[ql] = '\0';
	Troupe__Observer__Request q = TROUPE__OBSERVER__REQUEST__INIT;
	q.method = rq->method;
	q.path = rq->path;
	q.query = query;
	uint8_t buf[16 + TR__OBS_PATH_MAX + TR__OBS_QUERY_MAX + 8];
	size_t len = troupe__observer__request__pack(&q, buf);
	tr__obs_hold(rq);
	int rc = tr_call_named_then(ctx, NULL, node, TR__OBS_AGENT_NAME,
	    T_REQUEST, buf, len, TR__OBS_CALL_MS, on_forwarded, rq);
	if (rc != TR_OK) {
		tr__obs_drop(ctx, rq);
		char text[TR_NODE_NAME_MAX + 64];
		snprintf(text, sizeof(text), "node %s: %s", node,
		    rc == TR_ENOPROC ? "not connected" : tr_strerror(rc));
		tr__obs_error(ctx, rq, rc == TR_ENOPROC ? 404 : 503, text);
	}
}

/* ---- the actor ---------------------------------------------------------- */

/* Runs `rq`, now on the agent's list. */
static void run(tr_ctx *ctx, tr__obs_agent *a, tr__obs_req *rq)
{
	rq->agent = a;
	rq->prev = NULL;
	rq->next = a->head;
	if (a->head != NULL)
		a->head->prev = rq;
	a->head = rq;
	if (atomic_load_explicit(&a->quiet, memory_order_acquire)) {
		tr__obs_error(ctx, rq, 503, "the node is stopping");
		return;
	}
	char node[TR_NODE_NAME_MAX + 1];
	if (rq->aio != NULL && tr__obs_param(rq, "node", node, sizeof(node)) &&
	    strcmp(node, a->n->name) != 0) {
		forward(ctx, rq, node);
		return;
	}
	if (rq->route == NULL) {
		tr__obs_error(ctx, rq, 404, "no such route");
		return;
	}
	rq->route->fn(ctx, rq);
}

/* A request from another node's agent. */
static void serve_remote(tr_ctx *ctx, tr__obs_agent *a, const tr_msg *m)
{
	if (m->ref == 0)
		return;
	Troupe__Observer__Request *q =
	    troupe__observer__request__unpack(NULL, m->size, m->data);
	tr__obs_req *rq = NULL;
	unsigned live =
	    atomic_fetch_add_explicit(&a->live, 1, memory_order_relaxed);
	if (q != NULL && live < TR__OBS_AGENT_MAX)
		rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		atomic_fetch_sub_explicit(&a->live, 1, memory_order_relaxed);
		tr__obs_req tmp;
		memset(&tmp, 0, sizeof(tmp));
		tmp.from = m->sender;
		tmp.from_ref = m->ref;
		answer_remote(ctx, &tmp, q == NULL ? 400 : 503, "text/plain",
		    q == NULL ? "400 a malformed request\n"
		              : "503 the observer is busy\n");
		if (q != NULL)
			troupe__observer__request__free_unpacked(q, NULL);
		return;
	}
	rq->n = a->n;
	rq->o = a->o;
	rq->from = m->sender;
	rq->from_ref = m->ref;
	rq->holds = 1;
	rq->start_ms = tr__observer_start_ms(a->o);
	rq->refused = tr__observer_refused(a->o);
	snprintf(rq->method, sizeof(rq->method), "%s", q->method);
	bool fits = strlen(q->path) < sizeof(rq->path) &&
	            strlen(q->query) < sizeof(rq->query);
	if (fits) {
		strcpy(rq->path, q->path);
		strcpy(rq->query, q->query);
	}
	troupe__observer__request__free_unpacked(q, NULL);
	rq->route = fits ? tr__obs_route_find(rq->method, rq->path) : NULL;
	if (rq->route != NULL)
		rq->tail = rq->path + strlen(rq->route->path);
	run(ctx, a, rq);
}

static int agent_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return 0;
}

static int agent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr__obs_agent *a = state;
	switch (m->type) {
	case T_JOB: {
		tr__obs_req *rq;
		if (m->size != sizeof(rq))
			return 0;
		memcpy(&rq, m->data, sizeof(rq));
		run(ctx, a, rq);
		break;
	}
	case T_REQUEST:
		serve_remote(ctx, a, m);
		break;
	case T_END:
		a->ending = true;
		if (a->head == NULL)
			tr_exit(ctx, TR_REASON_NORMAL);
		break;
	default:
		break;
	}
	return 0;
}

/* A crash (a route's bug): answer what is held, so that the endpoint's
 * stop does not wait for answers that will never come. */
static void agent_terminate(tr_ctx *ctx, void *state, int reason)
{
	tr__obs_agent *a = state;
	if (reason == TR_REASON_NORMAL)
		return;
	a->ending = false; /* no tr_exit from inside terminate */
	while (a->head != NULL) {
		tr__obs_req *rq = a->head;
		rq->holds = 1;
		if (rq->answered)
			req_free(NULL, rq);
		else /* frees it */
			tr__obs_error(
			    ctx, rq, 500, "the observer's agent crashed");
	}
}

static const tr_behaviour agent_behaviour = {
    .name = "troupe.observer",
    .init = agent_init,
    .handle = agent_handle,
    .terminate = agent_terminate,
};

int tr__obs_agent_start(tr__obs_agent **ap, tr__observer *o, struct tr_node *n)
{
	tr__obs_agent *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return TR_ENOMEM;
	a->o = o;
	a->n = n;
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_SYNC_INIT;
	int rc = tr_spawn(&a->pid, n->rt, &agent_behaviour, a, &so);
	if (rc == TR_OK) {
		rc = tr_register(n->rt, TR__OBS_AGENT_NAME, a->pid);
		if (rc != TR_OK) {
			(void)tr_kill(n->rt, a->pid, TR_REASON_KILL);
			(void)tr__node_wait_exit(n, a->pid, 5000);
		}
	}
	if (rc != TR_OK) {
		free(a);
		return rc;
	}
	*ap = a;
	return TR_OK;
}

int tr__obs_agent_post(tr__obs_agent *a, tr__obs_req *rq)
{
	unsigned live =
	    atomic_fetch_add_explicit(&a->live, 1, memory_order_relaxed);
	int rc = live < TR__OBS_AGENT_MAX
	             ? tr_post(a->n->rt, a->pid, T_JOB, &rq, sizeof(rq))
	             : TR_EAGAIN;
	if (rc != TR_OK)
		atomic_fetch_sub_explicit(&a->live, 1, memory_order_relaxed);
	return rc;
}

void tr__obs_agent_quiesce(tr__obs_agent *a)
{
	atomic_store_explicit(&a->quiet, true, memory_order_release);
}

void tr__obs_agent_stop(tr__obs_agent *a)
{
	if (a == NULL)
		return;
	if (tr_post(a->n->rt, a->pid, T_END, NULL, 0) == TR_OK &&
	    !tr__node_wait_exit(a->n, a->pid, 2 * TR__OBS_CALL_MS + 5000))
		tr__node_logf(a->n, "observer: its agent did not end");
	else
		free(a);
}
