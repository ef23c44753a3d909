/*
 * The observer's supervision routes (docs/observer.md): the trees of the
 * node (GET /api/supervisors: every live supervisor's INFO, troupe/sup.h)
 * and the operator's restart and terminate of a child
 * (POST /api/supervisor/PID/child/ID/restart|terminate). They run on the
 * agent, which asks the supervisors with tr_call_then: a supervisor
 * answers INFO at once, even in the middle of a group restart, and one
 * that does not answer within the timeout is left out of the tree.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_int.h"
#include "troupe/sup.h"

/* Children listed per supervisor; a simple_one_for_one with more says so
 * with "children_total". */
#define CHILDREN_MAX 1000

static const char *strategy_name(tr_sup_strategy s)
{
	switch (s) {
	case TR_SUP_ONE_FOR_ONE:
		return "one_for_one";
	case TR_SUP_ONE_FOR_ALL:
		return "one_for_all";
	case TR_SUP_REST_FOR_ONE:
		return "rest_for_one";
	case TR_SUP_SIMPLE_ONE_FOR_ONE:
		return "simple_one_for_one";
	}
	return "unknown";
}

static const char *type_name(tr_child_type t)
{
	return t == TR_CHILD_SUPERVISOR ? "supervisor"
	       : t == TR_CHILD_PROCESS  ? "process"
	                                : "worker";
}

static const char *restart_name(tr_restart r)
{
	return r == TR_RESTART_TRANSIENT   ? "transient"
	       : r == TR_RESTART_TEMPORARY ? "temporary"
	                                   : "permanent";
}

static json_t *pid_json(tr_pid p)
{
	if (tr_pid_is_none(p))
		return json_null();
	char t[TR__OBS_PID_TEXT];
	return json_string(tr__obs_pid_text(t, p));
}

static json_t *name_json(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

/* ---- GET /api/supervisors ------------------------------------------------ */

/* The answer being gathered: one INFO per supervisor. */
struct tree {
	tr__obs_req *rq;
	json_t *sups;
	unsigned waiting;
	tr_sup_restart_entry recent[TR_SUP_RECENT_MAX];
	tr_child_status children[CHILDREN_MAX];
};

static json_t *sup_json(struct tree *t, const tr_sup_status *st)
{
	json_t *recent = json_array();
	for (uint32_t i = 0; i < st->nrecent && i < TR_SUP_RECENT_MAX; i++) {
		const tr_sup_restart_entry *e = &t->recent[i];
		char why[TR_REASON_TEXT_MAX + 64];
		snprintf(why, sizeof(why),
		    e->text[0] != '\0' ? "%s (%s)" : "%s",
		    tr_reason_name(e->reason), e->text);
		json_array_append_new(recent,
		    json_pack("{s:I, s:s, s:s, s:i, s:o, s:o}", "at_ms",
		        (json_int_t)e->at_ms, "id", e->id, "reason", why,
		        "code", (int)e->reason, "old", pid_json(e->old_pid),
		        "new", pid_json(e->new_pid)));
	}
	json_t *children = json_array();
	for (uint32_t i = 0; i < st->nlisted && i < CHILDREN_MAX; i++) {
		const tr_child_status *c = &t->children[i];
		json_array_append_new(children,
		    json_pack("{s:s, s:o, s:o, s:s, s:s, s:I, s:b}", "id",
		        c->id, "name", name_json(c->name), "pid",
		        pid_json(c->pid), "type", type_name(c->type), "restart",
		        restart_name(c->restart), "restarts",
		        (json_int_t)c->restarts, "restarting", c->restarting));
	}
	return json_pack(
	    "{s:o, s:o, s:o, s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:o, s:o}",
	    "pid", pid_json(st->pid), "name", name_json(st->name), "parent",
	    pid_json(st->parent), "strategy", strategy_name(st->strategy),
	    "intensity", (json_int_t)st->intensity, "period_ms",
	    (json_int_t)st->period_ms, "restarts", (json_int_t)st->restarts,
	    "children_total", (json_int_t)st->nchildren, "active",
	    (json_int_t)st->active, "busy", st->busy, "shutting_down",
	    st->shutting_down, "recent", recent, "children", children);
}

static void tree_done(tr_ctx *ctx, struct tree *t)
{
	tr__obs_req *rq = t->rq;
	json_t *root = json_pack(
	    "{s:s, s:o}", "node", rq->n->name, "supervisors", t->sups);
	char *body = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	free(t);
	tr__obs_answer(ctx, rq, 200, NULL, body);
}

static int on_info(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)state;
	struct tree *t = arg;
	tr__obs_req *rq = t->rq;
	if (status == TR_OK) {
		tr_sup_status st;
		tr_sup_status_init(&st);
		tr_sup_restart_entry_init(&t->recent[0]);
		tr_child_status_init(&t->children[0]);
		if (tr_sup_info_decode(&st, t->recent, TR_SUP_RECENT_MAX,
		        t->children, CHILDREN_MAX, reply) == TR_OK)
			json_array_append_new(t->sups, sup_json(t, &st));
	}
	/* A supervisor gone or silent meanwhile is simply not in the tree. */
	bool last = --t->waiting == 0;
	if (last)
		tree_done(ctx, t);
	tr__obs_drop(ctx, rq);
	return 0;
}

static void r_supervisors(tr_ctx *ctx, tr__obs_req *rq)
{
	size_t n = 0;
	tr_pid *pids = NULL;
	for (;;) {
		size_t cap = n + 16;
		tr_pid *v = realloc(pids, cap * sizeof(*v));
		if (v == NULL) {
			free(pids);
			tr__obs_answer(ctx, rq, 500, NULL, NULL);
			return;
		}
		pids = v;
		if (tr_sup_list(rq->n->rt, pids, cap, &n) != TR_OK)
			n = 0;
		if (n <= cap)
			break;
	}
	struct tree *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		free(pids);
		tr__obs_answer(ctx, rq, 500, NULL, NULL);
		return;
	}
	t->rq = rq;
	t->sups = json_array();
	tr_sup_request q;
	(void)tr_sup_req_info(&q, CHILDREN_MAX);
	t->waiting = 1; /* this function's own, dropped below */
	for (size_t i = 0; i < n; i++) {
		tr__obs_hold(rq);
		t->waiting++;
		if (tr_call_then(ctx, NULL, pids[i], q.type, &q, sizeof(q),
		        TR__OBS_CALL_MS, on_info, t) != TR_OK) {
			t->waiting--;
			tr__obs_drop(ctx, rq);
		}
	}
	free(pids);
	if (--t->waiting == 0)
		tree_done(ctx, t);
}

/* ---- POST /api/supervisor/PID/child/ID/restart|terminate ---------------- */

/* An operator's action: OTP's restart_child refuses a running child, so
 * an operator's restart of one is terminate, then restart. */
enum step { RESTART, TERMINATE_FIRST, RESTART_AGAIN, TERMINATE };

struct action {
	tr__obs_req *rq;
	tr_pid sup;
	char id[TR_NAME_MAX + 1];
	enum step step;
};

static void act_answer(tr_ctx *ctx, struct action *a, int err, tr_pid pid)
{
	tr__obs_req *rq = a->rq;
	bool restart = a->step != TERMINATE;
	char sp[TR__OBS_PID_TEXT];
	tr__obs_pid_text(sp, a->sup);
	tr_logf(rq->n->rt, err == TR_OK ? TR_LOG_NOTICE : TR_LOG_WARNING,
	    "observer: %s child %s of supervisor %s: %s",
	    restart ? "restart" : "terminate", a->id, sp,
	    err == TR_OK ? "done" : tr_strerror(err));
	json_t *j = err == TR_OK ? json_pack("{s:b, s:o}", "ok", true, "pid",
	                               pid_json(pid))
	                         : json_pack("{s:b, s:s}", "ok", false, "error",
	                               tr_strerror(err));
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	uint16_t status = err == TR_OK          ? 200
	                  : err == TR_ENOPROC   ? 404
	                  : err == TR_ENOENT    ? 404
	                  : err == TR_ENOTSUP   ? 400
	                  : err == TR_ETIMEDOUT ? 504
	                                        : 409;
	free(a);
	tr__obs_answer(ctx, rq, status, NULL, body);
}

static int act_send(tr_ctx *ctx, struct action *a);

static int on_act(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)state;
	struct action *a = arg;
	tr__obs_req *rq = a->rq;
	tr_sup_result r;
	memset(&r, 0, sizeof(r));
	int err = status;
	if (status == TR_OK)
		err =
		    tr_sup_reply_decode(&r, reply) == TR_OK ? r.err : TR_EINVAL;
	enum step next = a->step;
	if (a->step == RESTART && err == TR_ERUNNING)
		next = TERMINATE_FIRST;
	else if (a->step == TERMINATE_FIRST && err == TR_OK)
		next = RESTART_AGAIN;
	else if (a->step == RESTART_AGAIN && err == TR_ERUNNING)
		err = TR_OK; /* a group restart in between started it:
		              * running is what was wanted */
	if (next != a->step) {
		a->step = next;
		int rc = act_send(ctx, a);
		if (rc != TR_OK)
			act_answer(ctx, a, rc, TR_PID_NONE);
	} else {
		act_answer(ctx, a, err, r.pid);
	}
	tr__obs_drop(ctx, rq);
	return 0;
}

static int act_send(tr_ctx *ctx, struct action *a)
{
	tr_sup_request q;
	bool term = a->step == TERMINATE || a->step == TERMINATE_FIRST;
	int rc = term ? tr_sup_req_terminate_child(&q, a->id)
	              : tr_sup_req_restart_child(&q, a->id);
	if (rc != TR_OK)
		return rc;
	tr__obs_hold(a->rq);
	rc = tr_call_then(ctx, NULL, a->sup, q.type, &q, sizeof(q),
	    TR__OBS_CALL_MS, on_act, a);
	if (rc != TR_OK)
		tr__obs_drop(ctx, a->rq);
	return rc;
}

static void r_child_action(tr_ctx *ctx, tr__obs_req *rq)
{
	/* tail: PID/child/ID/restart or PID/child/ID/terminate */
	tr_pid sup;
	const char *p = tr__obs_pid_parse(rq->tail, &sup);
	const char *what = strrchr(rq->tail, '/');
	if (p == NULL || strncmp(p, "/child/", 7) != 0 || what == NULL ||
	    what < p + 7 ||
	    (strcmp(what, "/restart") != 0 &&
	        strcmp(what, "/terminate") != 0)) {
		tr__obs_error(ctx, rq, 404,
		    "expected /api/supervisor/PID/child/ID/restart or "
		    "/terminate");
		return;
	}
	struct action *a = calloc(1, sizeof(*a));
	if (a == NULL) {
		tr__obs_answer(ctx, rq, 500, NULL, NULL);
		return;
	}
	a->rq = rq;
	a->sup = sup;
	a->step = strcmp(what, "/restart") == 0 ? RESTART : TERMINATE;
	size_t il = (size_t)(what - (p + 7));
	tr__obs_unescape(a->id, sizeof(a->id), p + 7, il);
	if (il == 0 || il > 3 * TR_NAME_MAX) {
		free(a);
		tr__obs_error(ctx, rq, 400, "a child id is needed");
		return;
	}
	int rc = act_send(ctx, a);
	if (rc != TR_OK)
		act_answer(ctx, a, rc, TR_PID_NONE);
}

void tr__obs_route_supervisors(tr_ctx *ctx, tr__obs_req *rq)
{
	r_supervisors(ctx, rq);
}

void tr__obs_route_child_action(tr_ctx *ctx, tr__obs_req *rq)
{
	r_child_action(ctx, rq);
}
