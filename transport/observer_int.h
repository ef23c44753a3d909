/*
 * The observer inside the node library (include/troupe/observer.h): the
 * HTTP endpoint (observer.c), its routes (observer_routes.c and the files
 * each route family lives in: observer_render.c for the node's counters),
 * and its agent (observer_agent.c), the actor that answers the routes
 * that must wait for other actors or for another node.
 *
 * A request is a tr__obs_req. Its route answers it exactly once with
 * tr__obs_answer: a synchronous route on the thread that got it (one of
 * nng's, never a scheduler) before it returns, an agent route on the
 * agent, then or later. The endpoint holds the node (its `busy` count)
 * from the request's arrival until its answer, so that every answer has
 * been given before tr__observer_stop returns.
 */
#ifndef TR_OBSERVER_INT_H
#define TR_OBSERVER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "troupe/observer.h"
#include "troupe/troupe.h"

struct tr_node;
typedef struct tr__observer tr__observer;
typedef struct tr__obs_req tr__obs_req;
typedef struct tr__obs_agent tr__obs_agent;

/* Starts the endpoint of node `n` on `url` with the token of `cookie`,
 * and its agent. Errors: TR_EINVAL (not an http:// URL on a loopback
 * host), TR_EEXIST (the address is in use), TR_ENOMEM, and tr_spawn's. */
int tr__observer_start(
    tr__observer **op, struct tr_node *n, const char *url, const char *cookie);
/* Stops it: once this returns no route runs and every request has its
 * answer. NULL is ignored. */
void tr__observer_stop(tr__observer *o);
/* The URL it listens on, with its port. */
const char *tr__observer_url(const tr__observer *o);
/* Requests refused for want of the token. */
uint64_t tr__observer_refused(const tr__observer *o);
/* When it started (tr__node_now_ms). */
int64_t tr__observer_start_ms(const tr__observer *o);

/* ---- requests and routes ------------------------------------------------ */

#define TR__OBS_PATH_MAX 256
#define TR__OBS_QUERY_MAX 512

/* A route: a method and a path, exact or (ending in '/') a prefix, and
 * the function that answers it. */
typedef struct tr__obs_route {
	const char *method; /* "GET" or "POST" */
	const char *path;
	bool open; /* served without the token: the web page's own files,
	            * which hold nothing of the node */
	/* Whether `fn` must run on the agent (ctx its context), because it
	 * asks other actors (tr_call_then) and answers later. Otherwise it
	 * runs on the thread that got the request (ctx NULL), or on the
	 * agent for a request from another node, and answers before it
	 * returns. */
	bool on_agent;
	void (*fn)(tr_ctx *ctx, tr__obs_req *rq);
} tr__obs_route;

/* The routes, ending with an entry whose method is NULL
 * (observer_routes.c). */
extern const tr__obs_route tr__obs_routes[];

/* The route for `method` and `path`, or NULL. */
const tr__obs_route *tr__obs_route_find(const char *method, const char *path);
/* Whether a route has `path` with another method than `method`. */
bool tr__obs_route_other_method(const char *method, const char *path);

struct tr__obs_req {
	/* What was asked. */
	struct tr_node *n;
	const tr__obs_route *route;
	char method[8];
	char path[TR__OBS_PATH_MAX];   /* without the query */
	char query[TR__OBS_QUERY_MAX]; /* after '?', without token= */
	const char *tail;              /* path past the route's prefix */
	int64_t start_ms;              /* the endpoint's start (uptime) */
	uint64_t refused;              /* the endpoint's refusals so far */
	/* Who gets the answer: this node's endpoint (`aio`), or another
	 * node's agent, which asked with a request (`from`, `from_ref`). */
	tr__observer *o;
	nng_aio *aio;
	tr_pid from;
	uint64_t from_ref;
	/* The agent's bookkeeping (observer_agent.c). */
	tr__obs_agent *agent;
	unsigned holds; /* the answer's own, plus one per call in flight */
	bool answered;
	tr__obs_req *prev, *next;
};

/* The value of `key` in the request's query, URL-decoded into buf[cap]
 * (truncated), or NULL when the query has no such key. */
const char *tr__obs_param(
    const tr__obs_req *rq, const char *key, char *buf, size_t cap);

/* Answers `rq` with `status`, `type` (NULL: application/json) and `body`
 * (malloc'ed, NUL-terminated, taken; NULL: a 500 "out of memory"). Once
 * per request; a later call frees `body` and does nothing. `ctx`: the
 * agent's context when called on the agent (it must be, for a request
 * from another node), else NULL. */
void tr__obs_answer(tr_ctx *ctx, tr__obs_req *rq, uint16_t status,
    const char *type, char *body);
/* tr__obs_answer with {"error": text} as JSON. */
void tr__obs_error(
    tr_ctx *ctx, tr__obs_req *rq, uint16_t status, const char *text);

/* On the agent: a call for `rq` is in flight, so `rq` must outlive its
 * answer until the call's continuation runs, which ends with
 * tr__obs_drop(ctx, rq) (after which `rq` may be gone). */
void tr__obs_hold(tr__obs_req *rq);
void tr__obs_drop(tr_ctx *ctx, tr__obs_req *rq);

/* A pid as text, "node.slot.gen" (the node part is 0 for the answering
 * node's own actors), into buf[TR__OBS_PID_TEXT]; returns buf. */
#define TR__OBS_PID_TEXT 40
char *tr__obs_pid_text(char *buf, tr_pid p);
/* Reads a pid as tr__obs_pid_text writes it (or with '<' '>' around it)
 * from the start of `s`; returns where it ended, or NULL. */
const char *tr__obs_pid_parse(const char *s, tr_pid *out);
/* URL-decodes s[0..len) into buf[cap] (truncated, NUL-terminated). */
void tr__obs_unescape(char *buf, size_t cap, const char *s, size_t len);

/* The routes of the other files (the table is in observer_routes.c). */
void tr__obs_route_supervisors(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_child_action(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_kill(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_actors(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_actor(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_global(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_pg(tr_ctx *ctx, tr__obs_req *rq);
void tr__obs_route_disconnect(tr_ctx *ctx, tr__obs_req *rq);

/* ---- the endpoint's side of the agent (observer_agent.c) ---------------- */

/* Spawns the agent of `o` (registered as TR__OBS_AGENT_NAME). */
int tr__obs_agent_start(tr__obs_agent **ap, tr__observer *o, struct tr_node *n);
/* Hands `rq` (from the endpoint) to the agent; on an error the caller
 * still owns `rq` and answers it. */
int tr__obs_agent_post(tr__obs_agent *a, tr__obs_req *rq);
/* From now on every request gets 503 at once. */
void tr__obs_agent_quiesce(tr__obs_agent *a);
/* Ends the agent once its last request is gone, and waits for that (the
 * calls it holds end within their timeouts); then frees it. */
void tr__obs_agent_stop(tr__obs_agent *a);

/* Delivers an answer that went through tr__obs_answer to the endpoint
 * (observer.c): status, type and body (taken). */
void tr__observer_reply(tr__observer *o, nng_aio *aio, uint16_t status,
    const char *type, char *body);

#define TR__OBS_AGENT_NAME "troupe.observer"
/* How long the agent waits for an actor or another node. */
#define TR__OBS_CALL_MS 3000
/* Requests the agent holds at once; more get 503. */
#define TR__OBS_AGENT_MAX 64

/* ---- what the routes render (observer_render.c) ------------------------- */

/* The bodies of /metrics and /api/node for node `n`, whose endpoint
 * started at `start_ms` (tr__node_now_ms) and refused `refused`
 * requests; malloc'ed, NUL-terminated, the caller's. NULL when memory
 * ran out. */
char *tr__observer_metrics(
    struct tr_node *n, int64_t start_ms, uint64_t refused);
char *tr__observer_node_json(
    struct tr_node *n, int64_t start_ms, uint64_t refused);
char *tr__observer_health_json(struct tr_node *n);
/* The body of /api/ready: the node's name, `ready`, and `why` when not
 * ready. */
char *tr__observer_ready_json(struct tr_node *n, bool ready, const char *why);

#endif /* TR_OBSERVER_INT_H */
