/*
 * The observer's actor routes (docs/observer.md): the actor table
 * (GET /api/actors, tr_actors_list: a page by pid or the top N by
 * mailbox length or by messages handled, read without stopping anything)
 * and one actor in detail (GET /api/actor/PID: its report, which its own
 * thread makes, asked by the agent; troupe/info.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_int.h"
#include "troupe/info.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 1000

static json_t *pid_json(tr_pid p)
{
	if (tr_pid_is_none(p))
		return json_null();
	char t[TR__OBS_PID_TEXT];
	return json_string(tr__obs_pid_text(t, p));
}

static json_t *text_or_null(const char *s)
{
	return s[0] != '\0' ? json_string(s) : json_null();
}

static json_t *actor_json(const tr_actor_info *a)
{
	return json_pack("{s:o, s:o, s:o, s:s, s:s, s:I, s:I}", "pid",
	    pid_json(a->pid), "name", text_or_null(a->name), "behaviour",
	    text_or_null(a->behaviour), "kind", tr_actor_kind_name(a->kind),
	    "state", tr_actor_state_name(a->state), "mailbox",
	    (json_int_t)a->mailbox, "handled", (json_int_t)a->handled);
}

static void answer_json(tr_ctx *ctx, tr__obs_req *rq, json_t *j)
{
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	tr__obs_answer(ctx, rq, 200, NULL, body);
}

void tr__obs_route_actors(tr_ctx *ctx, tr__obs_req *rq)
{
	char sort[16] = "pid", v[24];
	(void)tr__obs_param(rq, "sort", sort, sizeof(sort));
	long limit = LIMIT_DEFAULT;
	if (tr__obs_param(rq, "limit", v, sizeof(v)) != NULL)
		limit = strtol(v, NULL, 10);
	unsigned long after = 0;
	if (tr__obs_param(rq, "after", v, sizeof(v)) != NULL)
		after = strtoul(v, NULL, 10);
	tr_actors_query q;
	tr_actors_query_init(&q);
	q.sort = strcmp(sort, "mailbox") == 0   ? TR_ACTORS_TOP_MAILBOX
	         : strcmp(sort, "handled") == 0 ? TR_ACTORS_TOP_HANDLED
	         : strcmp(sort, "pid") == 0     ? TR_ACTORS_BY_SLOT
	                                        : UINT32_MAX;
	if (q.sort == UINT32_MAX || limit < 1 || limit > LIMIT_MAX ||
	    after > UINT32_MAX) {
		tr__obs_error(ctx, rq, 400,
		    "sort is pid, mailbox or handled; limit 1 to 1000");
		return;
	}
	q.cursor = (uint32_t)after;
	tr_actor_info *out = calloc((size_t)limit, sizeof(*out));
	if (out == NULL) {
		tr__obs_answer(ctx, rq, 500, NULL, NULL);
		return;
	}
	tr_actor_info_init(&out[0]);
	size_t n = 0, total = 0;
	uint32_t next = 0;
	int rc = tr_actors_list(
	    out, (size_t)limit, &n, &total, &next, rq->n->rt, &q);
	if (rc != TR_OK) {
		free(out);
		tr__obs_error(ctx, rq, 500, tr_strerror(rc));
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, actor_json(&out[i]));
	free(out);
	char nx[16];
	snprintf(nx, sizeof(nx), "%u", next);
	answer_json(ctx, rq,
	    json_pack("{s:s, s:I, s:s, s:o, s:o}", "node", rq->n->name, "total",
	        (json_int_t)total, "sort", sort, "actors", arr, "next",
	        next != 0 ? json_string(nx) : json_null()));
}

/* ---- GET /api/actor/PID ------------------------------------------------- */

static json_t *monitors_json(const tr_actor_monitor *m, uint32_t n, tr_pid skip)
{
	json_t *arr = json_array();
	for (uint32_t i = 0; i < n; i++) {
		if (tr_pid_eq(m[i].pid, skip))
			continue;
		char ref[24];
		snprintf(
		    ref, sizeof(ref), "%llu", (unsigned long long)m[i].ref);
		json_array_append_new(arr, json_pack("{s:s, s:o}", "ref", ref,
		                               "pid", pid_json(m[i].pid)));
	}
	return arr;
}

static json_t *head_json(const tr_actor_report *r)
{
	static const char hex[] = "0123456789abcdef";
	json_t *arr = json_array();
	for (uint32_t i = 0; i < r->nhead; i++) {
		const tr_mailbox_entry *e = &r->head[i];
		char type[12];
		snprintf(type, sizeof(type), "0x%08x", e->type);
		json_t *o = json_pack("{s:s, s:I, s:o, s:b}", "type", type,
		    "size", (json_int_t)e->size, "sender", pid_json(e->sender),
		    "system", (e->flags & TR_MAILBOX_SYSTEM) != 0);
		if (e->nbytes > 0) {
			const unsigned char *b = tr_mailbox_entry_bytes(r, e);
			char *h = malloc(2 * (size_t)e->nbytes + 1);
			if (h != NULL) {
				for (uint32_t k = 0; k < e->nbytes; k++) {
					h[2 * k] = hex[b[k] >> 4];
					h[2 * k + 1] = hex[b[k] & 15];
				}
				h[2 * e->nbytes] = '\0';
				json_object_set_new(o, "bytes", json_string(h));
				free(h);
			}
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static int on_report(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)state;
	tr__obs_req *rq = arg;
	tr_actor_report r;
	tr_actor_report_init(&r);
	if (status == TR_OK)
		status = tr_actor_report_decode(&r, reply);
	if (status != TR_OK) {
		tr__obs_error(ctx, rq,
		    status == TR_ENOPROC     ? 404
		    : status == TR_ETIMEDOUT ? 504
		                             : 500,
		    status == TR_ENOPROC     ? "no such actor"
		    : status == TR_ETIMEDOUT ? "no answer in time (a long "
		                               "callback, or a long mailbox "
		                               "before the question)"
		                             : tr_strerror(status));
		tr__obs_drop(ctx, rq);
		return 0;
	}
	json_t *links = json_array();
	for (uint32_t i = 0; i < r.nlinks; i++)
		json_array_append_new(links, pid_json(r.links[i]));
	/* The agent's own monitor of the call is not the actor's. */
	tr_pid self = tr_self(ctx);
	json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:b, s:I, s:I, "
	                      "s:I, s:I, s:o, s:I, s:o, s:o, s:o}",
	    "node", rq->n->name, "pid", pid_json(r.pid), "name",
	    text_or_null(r.name), "behaviour", text_or_null(r.behaviour),
	    "kind", tr_actor_kind_name(r.kind), "state",
	    tr_actor_state_name(r.state), "trap_exit", r.trap_exit, "mailbox",
	    (json_int_t)r.mailbox, "handled", (json_int_t)r.handled, "deferred",
	    (json_int_t)r.deferred, "requests", (json_int_t)r.requests, "links",
	    links, "links_total", (json_int_t)r.links_total, "monitors",
	    monitors_json(r.monitors, r.nmonitors, TR_PID_NONE), "monitored_by",
	    monitors_json(r.monitored_by, r.nmonitored_by, self),
	    "mailbox_head", head_json(&r));
	answer_json(ctx, rq, j);
	tr__obs_drop(ctx, rq);
	return 0;
}

void tr__obs_route_actor(tr_ctx *ctx, tr__obs_req *rq)
{
	tr_pid pid;
	const char *end = tr__obs_pid_parse(rq->tail, &pid);
	if (end == NULL || *end != '\0') {
		tr__obs_error(ctx, rq, 404, "expected /api/actor/PID");
		return;
	}
	char v[8];
	tr_inspect_opts o;
	tr_inspect_opts_init(&o);
	/* Payload bytes only when the operator asks (?payload=1). */
	if (tr__obs_param(rq, "payload", v, sizeof(v)) != NULL &&
	    strcmp(v, "1") == 0)
		o.flags |= TR_INSPECT_PAYLOAD;
	o.list_max = 256;
	int rc = pid.node == 0 ? TR_OK : TR_EINVAL;
	if (rc == TR_OK) {
		tr__obs_hold(rq);
		rc = tr_call_then(ctx, NULL, pid, TR_MSG_ACTOR_INSPECT, &o,
		    sizeof(o), TR__OBS_CALL_MS, on_report, rq);
		if (rc != TR_OK)
			tr__obs_drop(ctx, rq);
	}
	if (rc != TR_OK)
		tr__obs_error(ctx, rq, rc == TR_ENOPROC ? 404 : 400,
		    rc == TR_ENOPROC ? "no such actor" : tr_strerror(rc));
}
