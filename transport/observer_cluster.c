/*
 * The observer's cluster routes (docs/observer.md): the cluster-wide
 * names this node knows (GET /api/global, troupe/global.h) and its
 * process groups, scope by scope (GET /api/pg, troupe/pg.h). Both answer
 * from the node's own tables, on the thread that got the request; a pid
 * is shown with the name of the node it lives on.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_int.h"
#include "pg_int.h"
#include "troupe/global.h"
#include "troupe/pg.h"

/* Listed at most, per answer: groups of a scope, members of a group,
 * names. The counts say how many there are. */
#define NAMES_MAX 10000
#define GROUPS_MAX 1000
#define MEMBERS_MAX 1000

/* {"pid": "0.7.1", "node": "alpha"}: the pid as this node numbers it,
 * and the name of its node. */
static json_t *pid_json(struct tr_node *n, tr_pid p)
{
	char t[TR__OBS_PID_TEXT], node[TR_NODE_NAME_MAX + 1];
	if (tr_node_name_of(node, sizeof(node), n, p) != TR_OK)
		snprintf(node, sizeof(node), "?");
	return json_pack(
	    "{s:s, s:s}", "pid", tr__obs_pid_text(t, p), "node", node);
}

static void answer_json(tr_ctx *ctx, tr__obs_req *rq, json_t *j)
{
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	tr__obs_answer(ctx, rq, 200, NULL, body);
}

void tr__obs_route_global(tr_ctx *ctx, tr__obs_req *rq)
{
	struct tr_node *n = rq->n;
	size_t count = 0;
	(void)tr_global_names(NULL, 0, &count, n);
	size_t cap = count + 16 < NAMES_MAX ? count + 16 : NAMES_MAX;
	tr_global_info *v = calloc(cap, sizeof(*v));
	json_t *names = json_array();
	if (v != NULL) {
		tr_global_info_init(&v[0]);
		if (tr_global_names(v, cap, &count, n) == TR_OK)
			for (size_t i = 0; i < count && i < cap; i++) {
				json_t *o = pid_json(n, v[i].pid);
				json_object_set_new(
				    o, "name", json_string(v[i].name));
				json_object_set_new(o, "registered_ms",
				    json_integer(
				        (json_int_t)v[i].registered_ms));
				json_array_append_new(names, o);
			}
		free(v);
	}
	tr_global_stats st;
	tr_global_stats_init(&st);
	(void)tr_global_stats_get(&st, n);
	answer_json(ctx, rq,
	    json_pack("{s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I}}", "node",
	        n->name, "total", (json_int_t)count, "names", names, "stats",
	        "malformed", (json_int_t)st.malformed, "names_refused",
	        (json_int_t)st.names_refused, "conflicts",
	        (json_int_t)st.conflicts, "claims_retried",
	        (json_int_t)st.claims_retried, "grants_expired",
	        (json_int_t)st.grants_expired));
}

static json_t *scope_json(struct tr_node *n, const char *scope)
{
	tr_pg_stats st;
	tr_pg_stats_init(&st);
	(void)tr_pg_stats_get(&st, n, scope);
	size_t ng = 0;
	(void)tr_pg_which_groups(NULL, 0, &ng, n, scope);
	size_t cap = ng + 8 < GROUPS_MAX ? ng + 8 : GROUPS_MAX;
	tr_pg_group_name *g = calloc(cap, sizeof(*g));
	tr_pid *m = calloc(MEMBERS_MAX, sizeof(*m));
	json_t *groups = json_array();
	if (g != NULL && m != NULL &&
	    tr_pg_which_groups(g, cap, &ng, n, scope) == TR_OK) {
		for (size_t i = 0; i < ng && i < cap; i++) {
			size_t nm = 0;
			if (tr_pg_members(m, MEMBERS_MAX, &nm, n, scope,
			        g[i].name) != TR_OK)
				continue;
			json_t *members = json_array();
			for (size_t k = 0; k < nm && k < MEMBERS_MAX; k++)
				json_array_append_new(
				    members, pid_json(n, m[k]));
			json_array_append_new(
			    groups, json_pack("{s:s, s:I, s:o}", "name",
			                g[i].name, "members_total",
			                (json_int_t)nm, "members", members));
		}
	}
	free(g);
	free(m);
	return json_pack("{s:s, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I}}",
	    "scope", scope, "groups_total", (json_int_t)ng, "groups", groups,
	    "stats", "local_members", (json_int_t)st.local_members,
	    "remote_members", (json_int_t)st.remote_members, "peers",
	    (json_int_t)st.peers, "monitors", (json_int_t)st.monitors,
	    "refused_malformed", (json_int_t)st.refused_malformed,
	    "refused_bounds", (json_int_t)st.refused_bounds);
}

void tr__obs_route_pg(tr_ctx *ctx, tr__obs_req *rq)
{
	struct tr_node *n = rq->n;
	char want[TR_PG_NAME_MAX + 1];
	bool one = tr__obs_param(rq, "scope", want, sizeof(want)) != NULL;
	json_t *scopes = json_array();
	/* Scopes are published once and unlinked only when the node stops,
	 * after its observer (tr_node_stop): the list may be walked without
	 * its lock. */
	struct tr__pg_scope *s =
	    n->pg != NULL
	        ? atomic_load_explicit(&n->pg->head, memory_order_acquire)
	        : NULL;
	bool found = false;
	for (; s != NULL; s = s->next) {
		if (one && strcmp(s->name, want) != 0)
			continue;
		found = true;
		json_array_append_new(scopes, scope_json(n, s->name));
	}
	if (one && !found) {
		json_decref(scopes);
		tr__obs_error(ctx, rq, 404, "no such scope");
		return;
	}
	answer_json(ctx, rq,
	    json_pack("{s:s, s:o}", "node", n->name, "scopes", scopes));
}
