/*
 * The application's readiness (troupe/observer.h, tr_node_set_ready) as
 * the observer reports it, over real HTTP on loopback (a plain socket,
 * tests/dist/http_client.h):
 *
 * - a node is ready once it is up: GET /api/ready is 200 {"node", "ready":
 *   true}, troupe_node_ready 1; the route wants the token (401 without
 *   it, or with a wrong one);
 * - after tr_node_set_ready(false, why): 503 with "ready": false and the
 *   why, the gauge 0, /api/health still 200 (liveness is not readiness);
 *   true again: 200, the why gone; NULL: an empty why; a long why cut at
 *   TR_NODE_READY_WHY_MAX bytes on a character's boundary, bytes that are
 *   not UTF-8 replaced; a NULL node is TR_EINVAL;
 * - ?node=NAME: the other node's readiness through the agents, its 503
 *   and its why;
 * - set from an actor's callback (a scheduler) and from two threads at
 *   once while the endpoint is asked: every answer is one setter's, the
 *   status, the flag and the why together.
 */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>

#include <jansson.h>

#include "http_client.h"
#include "observer_pair.h"

#define COOKIE "observer-ready-secret"

struct env {
	struct obs_pair p;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	alarm(60);
	obs_pair_start(&e->p, "obsready", COOKIE, "obs", "peer", true);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	obs_pair_stop(&e->p);
	free(e);
	alarm(0);
	return 0;
}

/* GET `path` with `auth` (NULL: the token's): its answer. */
static struct wd_res ask(struct env *e, const char *path, const char *auth)
{
	char tok[128], err[256] = "";
	snprintf(tok, sizeof(tok), "Bearer %s", e->p.token);
	struct wd_res r;
	if (wd_http(e->p.port, "GET", path, auth != NULL ? auth : tok, NULL,
	        10000, &r, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	return r;
}

/* /api/ready (with `query`, "" for none): checks the answer's status, its
 * node and its flag against `want_ready`; returns its why (malloc'ed,
 * NULL when it has none). */
static char *ready(struct env *e, const char *query, const char *node,
    bool want_ready)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/ready%s", query);
	struct wd_res r = ask(e, path, NULL);
	if (r.status != (want_ready ? 200 : 503))
		fail_msg("%s: HTTP %d: %s", path, r.status, r.body);
	char type[64];
	assert_string_equal(
	    wd_header(&r, "Content-Type", type, sizeof(type)),
	    "application/json");
	json_error_t je;
	json_t *j = json_loads(r.body, 0, &je);
	if (j == NULL)
		fail_msg("not JSON (%s): %s", je.text, r.body);
	assert_string_equal(json_string_value(json_object_get(j, "node")), node);
	assert_true(json_is_boolean(json_object_get(j, "ready")));
	assert_int_equal(json_is_true(json_object_get(j, "ready")), want_ready);
	const char *why = json_string_value(json_object_get(j, "why"));
	char *out = why != NULL ? strdup(why) : NULL;
	json_decref(j);
	free(r.body);
	return out;
}

/* troupe_node_ready of a fresh /metrics (node "obs"), or -1. */
static double gauge(struct env *e)
{
	struct wd_res r = ask(e, "/metrics", NULL);
	assert_int_equal(r.status, 200);
	const char *key = "\n# TYPE troupe_node_ready gauge\n"
	                  "troupe_node_ready{node=\"obs\"} ";
	const char *p = strstr(r.body, key);
	double v = p != NULL ? strtod(p + strlen(key), NULL) : -1;
	free(r.body);
	return v;
}

static void test_ready(void **state)
{
	struct env *e = *state;
	/* Ready once up. */
	assert_null(ready(e, "", "obs", true));
	assert_true(gauge(e) == 1);

	/* The token, as on every route of the node's data. */
	struct wd_res r;
	char err[256] = "";
	assert_int_equal(wd_http(e->p.port, "GET", "/api/ready", NULL, NULL,
	                     10000, &r, err, sizeof(err)),
	    0);
	assert_int_equal(r.status, 401);
	free(r.body);
	r = ask(e, "/api/ready", "Bearer 0123");
	assert_int_equal(r.status, 401);
	free(r.body);

	assert_rc(tr_node_set_ready(e->p.node, false, "waiting for a majority"),
	    TR_OK);
	char *why = ready(e, "", "obs", false);
	assert_string_equal(why, "waiting for a majority");
	free(why);
	assert_true(gauge(e) == 0);
	r = ask(e, "/api/health", NULL);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"ok\":true"));
	free(r.body);
	/* The JSON of the node says it too. */
	r = ask(e, "/api/node", NULL);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(
	                     json_object_get(j, "node"), "ready")),
	    0);
	json_decref(j);
	free(r.body);

	/* True again: the why is dropped. */
	assert_rc(tr_node_set_ready(e->p.node, true, "ignored"), TR_OK);
	assert_null(ready(e, "", "obs", true));
	assert_true(gauge(e) == 1);

	/* No why. */
	assert_rc(tr_node_set_ready(e->p.node, false, NULL), TR_OK);
	why = ready(e, "", "obs", false);
	assert_string_equal(why, "");
	free(why);

	/* Cut at TR_NODE_READY_WHY_MAX bytes, never inside a character:
	 * 126 bytes and a two-byte "é" would be 128. */
	char long_why[400];
	memset(long_why, 'a', 126);
	strcpy(long_why + 126, "\xc3\xa9 and more");
	assert_rc(tr_node_set_ready(e->p.node, false, long_why), TR_OK);
	why = ready(e, "", "obs", false);
	assert_int_equal(strlen(why), 126);
	assert_true(strspn(why, "a") == 126);
	free(why);
	memset(long_why, 'b', sizeof(long_why) - 1);
	long_why[sizeof(long_why) - 1] = '\0';
	assert_rc(tr_node_set_ready(e->p.node, false, long_why), TR_OK);
	why = ready(e, "", "obs", false);
	assert_int_equal(strlen(why), TR_NODE_READY_WHY_MAX);
	free(why);
	/* Bytes that are not UTF-8 (a stray byte, a cut sequence, an
	 * overlong '/') become '?'; whole characters stay. */
	assert_rc(tr_node_set_ready(e->p.node, false,
	              "x\xff y\xe2\x82 z\xc0\xaf \xe2\x82\xac"),
	    TR_OK);
	why = ready(e, "", "obs", false);
	assert_string_equal(why, "x? y?? z?? \xe2\x82\xac");
	free(why);

	assert_rc(tr_node_set_ready(NULL, true, NULL), TR_EINVAL);
	assert_rc(tr_node_set_ready(e->p.node, true, NULL), TR_OK);
	assert_null(ready(e, "", "obs", true));
}

static void test_other_node(void **state)
{
	struct env *e = *state;
	assert_null(ready(e, "?node=peer", "peer", true));
	assert_rc(tr_node_set_ready(e->p.peer, false, "the peer's reason"),
	    TR_OK);
	char *why = ready(e, "?node=peer", "peer", false);
	assert_string_equal(why, "the peer's reason");
	free(why);
	/* This node's own is its own. */
	assert_null(ready(e, "", "obs", true));
	assert_null(ready(e, "?node=obs", "obs", true));
	assert_rc(tr_node_set_ready(e->p.peer, true, NULL), TR_OK);
	assert_null(ready(e, "?node=peer", "peer", true));
}

/* An actor that sets its node's readiness from its callback: a request
 * of type 1 sets not ready, 2 ready; it replies when done. */
static int setter_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return 0;
}

static int setter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_node *node = state;
	if (m->ref == 0)
		return 0;
	TT_ACHECK(tr_node_set_ready(node, m->type == 2, "set by an actor") ==
	          TR_OK);
	TT_ACHECK(tr_reply(ctx, m, m->type, NULL, 0) == TR_OK);
	return 0;
}

static const tr_behaviour setter = {
    .name = "ready_setter",
    .init = setter_init,
    .handle = setter_handle,
};

struct flipper {
	tr_node *node;
	const char *why;
	_Atomic bool *stop;
};

static void *flip(void *arg)
{
	struct flipper *f = arg;
	for (unsigned i = 0;
	     !atomic_load_explicit(f->stop, memory_order_relaxed); i++)
		if (tr_node_set_ready(f->node, i % 2 == 0, f->why) != TR_OK)
			abort();
	return NULL;
}

/* One answer of /api/ready, checked whole: 200 and ready with no why, or
 * 503 and not ready with one of the setters' whys. */
static void check_one(struct env *e)
{
	struct wd_res r = ask(e, "/api/ready", NULL);
	json_t *j = json_loads(r.body, 0, NULL);
	if (j == NULL)
		fail_msg("not JSON: %s", r.body);
	bool ok = json_is_true(json_object_get(j, "ready"));
	const char *why = json_string_value(json_object_get(j, "why"));
	if (ok)
		assert_true(r.status == 200 && why == NULL);
	else if (r.status != 503 || why == NULL ||
	         (strcmp(why, "thread one") != 0 &&
	             strcmp(why, "thread two") != 0 &&
	             strcmp(why, "set by an actor") != 0))
		fail_msg("HTTP %d: %s", r.status, r.body);
	json_decref(j);
	free(r.body);
}

static void test_concurrent(void **state)
{
	struct env *e = *state;
	tr_pid a = tt_spawn(e->p.rt, &setter, e->p.node);
	tr_msg *rep = NULL;
	assert_rc(tr_call(&rep, e->p.rt, a, 1, NULL, 0, 5000), TR_OK);
	tr_msg_free(rep);
	char *why = ready(e, "", "obs", false);
	assert_string_equal(why, "set by an actor");
	free(why);
	assert_rc(tr_call(&rep, e->p.rt, a, 2, NULL, 0, 5000), TR_OK);
	tr_msg_free(rep);
	assert_null(ready(e, "", "obs", true));

	/* Two threads and the actor at once, the endpoint asked meanwhile. */
	_Atomic bool stop = false;
	struct flipper f1 = {e->p.node, "thread one", &stop};
	struct flipper f2 = {e->p.node, "thread two", &stop};
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, flip, &f1), 0);
	assert_int_equal(pthread_create(&t2, NULL, flip, &f2), 0);
	for (int i = 0; i < 100; i++) {
		assert_rc(tr_call(&rep, e->p.rt, a, 1 + (uint32_t)(i % 2), NULL,
		              0, 5000),
		    TR_OK);
		tr_msg_free(rep);
		check_one(e);
	}
	atomic_store_explicit(&stop, true, memory_order_relaxed);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	(void)tr_kill(e->p.rt, a, TR_REASON_KILL);
	assert_rc(tr_node_set_ready(e->p.node, true, NULL), TR_OK);
	assert_null(ready(e, "", "obs", true));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
