/*
 * The observer's operator actions that need no other actor's answer:
 * kill an actor (POST /api/actor/PID/kill, tr_kill with reason kill) and
 * drop a connected node (POST /api/peer/NAME/disconnect,
 * tr_node_disconnect). Each is logged by the node, done or not. The
 * supervisor's child actions are in observer_sup.c; the pid text is
 * here.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_int.h"
#include "troupe/info.h"

char *tr__obs_pid_text(char *buf, tr_pid p)
{
	(void)tr_pid_format(buf, TR__OBS_PID_TEXT, p);
	return buf;
}

static const char *u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;
	const char *p = s;
	while (*p >= '0' && *p <= '9' && p - s < 10)
		v = v * 10 + (uint64_t)(*p++ - '0');
	if (p == s || v > UINT32_MAX)
		return NULL;
	*out = (uint32_t)v;
	return p;
}

const char *tr__obs_pid_parse(const char *s, tr_pid *out)
{
	bool angle = *s == '<';
	const char *p = s + angle;
	tr_pid v;
	if ((p = u32(p, &v.node)) == NULL || *p++ != '.' ||
	    (p = u32(p, &v.slot)) == NULL || *p++ != '.' ||
	    (p = u32(p, &v.gen)) == NULL || (angle && *p++ != '>'))
		return NULL;
	*out = v;
	return p;
}

static void ok(tr_ctx *ctx, tr__obs_req *rq)
{
	tr__obs_answer(ctx, rq, 200, NULL, strdup("{\"ok\":true}"));
}

void tr__obs_route_kill(tr_ctx *ctx, tr__obs_req *rq)
{
	tr_pid pid;
	const char *p = tr__obs_pid_parse(rq->tail, &pid);
	if (p == NULL || strcmp(p, "/kill") != 0) {
		tr__obs_error(ctx, rq, 404, "expected /api/actor/PID/kill");
		return;
	}
	char t[TR__OBS_PID_TEXT];
	tr__obs_pid_text(t, pid);
	/* Only this node's own actors: a pid of another node is killed
	 * through that node's observer (?node=). */
	int rc =
	    pid.node == 0 ? tr_kill(rq->n->rt, pid, TR_REASON_KILL) : TR_EINVAL;
	tr_logf(rq->n->rt, rc == TR_OK ? TR_LOG_WARNING : TR_LOG_NOTICE,
	    "observer: kill actor <%s>: %s", t,
	    rc == TR_OK ? "killed" : tr_strerror(rc));
	if (rc == TR_OK)
		ok(ctx, rq);
	else
		tr__obs_error(ctx, rq, rc == TR_ENOPROC ? 404 : 400,
		    rc == TR_ENOPROC ? "no such actor" : tr_strerror(rc));
}

void tr__obs_route_disconnect(tr_ctx *ctx, tr__obs_req *rq)
{
	const char *slash = strrchr(rq->tail, '/');
	if (slash == NULL || slash == rq->tail ||
	    strcmp(slash, "/disconnect") != 0) {
		tr__obs_error(
		    ctx, rq, 404, "expected /api/peer/NAME/disconnect");
		return;
	}
	char name[TR_NODE_NAME_MAX + 1];
	tr__obs_unescape(
	    name, sizeof(name), rq->tail, (size_t)(slash - rq->tail));
	int rc = tr_node_disconnect(rq->n, name);
	tr_logf(rq->n->rt, rc == TR_OK ? TR_LOG_WARNING : TR_LOG_NOTICE,
	    "observer: disconnect node %s: %s", name,
	    rc == TR_OK ? "disconnected" : tr_strerror(rc));
	if (rc == TR_OK)
		ok(ctx, rq);
	else
		tr__obs_error(ctx, rq, 404, "no such node connected");
}
