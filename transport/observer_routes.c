/*
 * The observer's routes (observer_int.h): the table the endpoint and the
 * agent look requests up in, the query parameters, and the routes that
 * answer from the node's counters (rendered by observer_render.c).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_assets.h"
#include "observer_int.h"

static void r_metrics(tr_ctx *ctx, tr__obs_req *rq)
{
	tr__obs_answer(ctx, rq, 200, "text/plain; version=0.0.4; charset=utf-8",
	    tr__observer_metrics(rq->n, rq->start_ms, rq->refused));
}

static void r_node(tr_ctx *ctx, tr__obs_req *rq)
{
	tr__obs_answer(ctx, rq, 200, NULL,
	    tr__observer_node_json(rq->n, rq->start_ms, rq->refused));
}

static void r_health(tr_ctx *ctx, tr__obs_req *rq)
{
	tr__obs_answer(ctx, rq, 200, NULL, tr__observer_health_json(rq->n));
}

/* The application's readiness (tr_node_set_ready): 503 when it is not,
 * as a readiness probe that reads only the status wants. */
static void r_ready(tr_ctx *ctx, tr__obs_req *rq)
{
	char why[TR_NODE_READY_WHY_MAX + 1];
	bool ready = tr__node_ready(rq->n, why, sizeof(why));
	tr__obs_answer(ctx, rq, ready ? 200 : 503, NULL,
	    tr__observer_ready_json(rq->n, ready, why));
}

const tr__obs_route tr__obs_routes[] = {
    {"GET", "/metrics", false, false, r_metrics},
    {"GET", "/api/node", false, false, r_node},
    {"GET", "/api/health", false, false, r_health},
    {"GET", "/api/ready", false, false, r_ready},
    {"GET", "/api/supervisors", false, true, tr__obs_route_supervisors},
    {"POST", "/api/supervisor/", false, true, tr__obs_route_child_action},
    {"GET", "/api/actors", false, false, tr__obs_route_actors},
    {"GET", "/api/global", false, false, tr__obs_route_global},
    {"GET", "/api/pg", false, false, tr__obs_route_pg},
    {"GET", "/api/actor/", false, true, tr__obs_route_actor},
    {"POST", "/api/actor/", false, false, tr__obs_route_kill},
    {"POST", "/api/peer/", false, false, tr__obs_route_disconnect},
    {"GET", "/", true, false, tr__obs_route_ui},
    {"GET", "/ui/", true, false, tr__obs_route_ui},
    {NULL, NULL, false, false, NULL},
};

/* A path ending in '/' is a prefix, but "/", the web page, is exact. */
static bool matches(const tr__obs_route *r, const char *path)
{
	size_t l = strlen(r->path);
	return l > 1 && r->path[l - 1] == '/' ? strncmp(r->path, path, l) == 0
	                                      : strcmp(r->path, path) == 0;
}

const tr__obs_route *tr__obs_route_find(const char *method, const char *path)
{
	for (const tr__obs_route *r = tr__obs_routes; r->method != NULL; r++)
		if (strcmp(r->method, method) == 0 && matches(r, path))
			return r;
	return NULL;
}

bool tr__obs_route_other_method(const char *method, const char *path)
{
	for (const tr__obs_route *r = tr__obs_routes; r->method != NULL; r++)
		if (strcmp(r->method, method) != 0 && matches(r, path))
			return true;
	return false;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void tr__obs_unescape(char *buf, size_t cap, const char *s, size_t len)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < cap; i++) {
		int c = (unsigned char)s[i];
		if (c == '+')
			c = ' ';
		else if (c == '%' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
		         hexval(s[i + 2]) >= 0) {
			c = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		}
		buf[o++] = (char)c;
	}
	if (cap > 0)
		buf[o] = '\0';
}

const char *tr__obs_param(
    const tr__obs_req *rq, const char *key, char *buf, size_t cap)
{
	size_t kl = strlen(key);
	for (const char *p = rq->query; *p != '\0';) {
		size_t l = strcspn(p, "&");
		if (l > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			tr__obs_unescape(buf, cap, p + kl + 1, l - kl - 1);
			return buf;
		}
		p += l + (p[l] == '&');
	}
	return NULL;
}

void tr__obs_error(
    tr_ctx *ctx, tr__obs_req *rq, uint16_t status, const char *text)
{
	json_t *j = json_pack("{s:s}", "error", text);
	char *body = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	tr__obs_answer(ctx, rq, status, NULL, body);
}
