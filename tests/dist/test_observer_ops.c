/*
 * The observer's actors, cluster tables and the operator's other actions,
 * over real HTTP against two running nodes (alpha, and beta beside it):
 *
 * - GET /api/actors: a page by pid covers every actor once (cursor
 *   "next"), the top by mailbox puts a flooded mailbox first with its
 *   length, the top by handled its busy reader; bad queries are 400;
 * - GET /api/actor/PID: its links, the monitors it holds and those on it,
 *   its mailbox head by type and size (payload bytes only with
 *   ?payload=1); a dead pid is 404;
 * - POST /api/actor/PID/kill kills the actor (404 once it is gone);
 *   POST /api/peer/NAME/disconnect drops the connection, which both nodes
 *   see (the other one's NODEDOWN; 404 for a node not connected); each
 *   is in the node's log;
 * - GET /api/global lists the cluster-wide names alpha knows, its own
 *   and beta's, each with its pid's node; GET /api/pg the process
 *   groups of every scope with their members on both nodes; an unknown
 *   scope is 404.
 */
#define _GNU_SOURCE
#include "common.h"

#include "observer_ops.h"
#include "troupe/global.h"
#include "troupe/info.h"
#include "troupe/pg.h"

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour idle = {"ops.idle", NULL, idle_handle, NULL};

static void test_kill_and_disconnect(void **state)
{
	struct env *e = *state;
	tr_pid a;
	assert_rc(tr_spawn(&a, e->p.rt, &idle, NULL, NULL), TR_OK);
	char path[128], t[48];
	pid_text(t, sizeof(t), a);
	snprintf(path, sizeof(path), "/api/actor/%s/kill", t);
	int st;
	json_t *j = call(e, "POST", path, true, &st);
	assert_int_equal(st, 200);
	json_decref(j);
	for (long long end = wd_now_ms() + WAIT_MS;
	     tr_is_alive(e->p.rt, a) && wd_now_ms() < end;)
		usleep(5 * 1000);
	assert_false(tr_is_alive(e->p.rt, a));
	char line[96];
	snprintf(line, sizeof(line), "observer: kill actor <%s>: killed", t);
	assert_true(logged(line));
	j = call(e, "POST", path, true, &st);
	assert_int_equal(st, 404);
	json_decref(j);

	size_t n = 0;
	assert_rc(tr_node_list(NULL, 0, &n, e->p.node), TR_OK);
	assert_int_equal(n, 1);
	/* The pair goes down on both sides; beta, which dialed, may dial
	 * again at once, so its NODEDOWN is what tells. */
	tr_port *watch;
	assert_rc(tr_port_open(&watch, e->p.prt), TR_OK);
	assert_rc(tr_node_monitor_port(e->p.peer, watch, "alpha", true), TR_OK);
	j = call(e, "POST", "/api/peer/beta/disconnect", true, &st);
	assert_int_equal(st, 200);
	json_decref(j);
	bool down = false;
	for (long long end = wd_now_ms() + WAIT_MS;
	     !down && wd_now_ms() < end;) {
		tr_msg *m = NULL;
		if (tr_port_recv(&m, watch, 1000) == TR_OK) {
			down = m->type == TR_MSG_NODEDOWN;
			tr_msg_free(m);
		}
	}
	assert_true(down);
	tr_port_close(watch);
	assert_true(logged("observer: disconnect node beta: disconnected"));
	j = call(e, "POST", "/api/peer/ghost/disconnect", true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
	assert_rc(tr_node_disconnect(e->p.node, "ghost"), TR_ENOENT);
	assert_rc(tr_node_disconnect(NULL, "beta"), TR_EINVAL);
}

/* An actor that takes its messages and does nothing with them, except a
 * PARK message: then it stops taking any (it defers them all), so that
 * its mailbox is seen, and LINK links it to the pid in the payload and
 * MON monitors it. */
#define LINK 0x7301
#define MON 0x7302

static int sink_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	tr_pid p;
	if ((m->type == LINK || m->type == MON) && m->size == sizeof(p)) {
		memcpy(&p, m->data, sizeof(p));
		if (m->type == LINK)
			(void)tr_link(ctx, p);
		else
			(void)tr_monitor(ctx, NULL, p);
	}
	return 0;
}

static const tr_behaviour sink = {"ops.sink", NULL, sink_handle, NULL};

/* Blocks its scheduler's turn until `go` is set: its mailbox fills. */

static int stuck_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	while (!atomic_load(&go))
		usleep(1000);
	return 0;
}

static const tr_behaviour stuck = {"ops.stuck", NULL, stuck_handle, NULL};

struct ask {
	struct env *e;
	const char *path;
	json_t *j;
	int status;
};

static void *ask_main(void *arg)
{
	struct ask *a = arg;
	a->j = call(a->e, "GET", a->path, true, &a->status);
	return NULL;
}

static void test_actors(void **state)
{
	struct env *e = *state;
	/* A busy reader, done before the flood below: an actor stuck in a
	 * callback holds up what is queued behind it on its scheduler. */
	tr_pid reader;
	assert_rc(tr_spawn(&reader, e->p.rt, &sink, NULL, NULL), TR_OK);
	for (int i = 0; i < 3000; i++)
		assert_rc(tr_post(e->p.rt, reader, 9, &i, sizeof(i)), TR_OK);
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		tr_actor_info ai;
		tr_actor_info_init(&ai);
		assert_rc(tr_actor_info_get(&ai, e->p.rt, reader), TR_OK);
		if (ai.handled >= 3000)
			break;
		usleep(1000);
	}
	/* A flooded mailbox: the actor is stuck in its first message. */
	atomic_store(&go, 0);
	tr_pid flooded;
	assert_rc(tr_spawn(&flooded, e->p.rt, &stuck, NULL, NULL), TR_OK);
	assert_rc(tr_register(e->p.rt, "flooded", flooded), TR_OK);
	for (int i = 0; i < 5000; i++)
		assert_rc(tr_post(e->p.rt, flooded, 9, &i, sizeof(i)), TR_OK);
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		tr_actor_info ai;
		tr_actor_info_init(&ai);
		assert_rc(tr_actor_info_get(&ai, e->p.rt, flooded), TR_OK);
		if (ai.state == TR_ACTOR_RUNNING)
			break; /* in its first message, for good */
		usleep(1000);
	}

	char fp[48], rp[48];
	pid_text(fp, sizeof(fp), flooded);
	pid_text(rp, sizeof(rp), reader);
	json_t *j = get_ok(e, "/api/actors?sort=mailbox&limit=5");
	json_t *first = json_array_get(json_object_get(j, "actors"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(first, "pid")), fp);
	assert_string_equal(
	    json_string_value(json_object_get(first, "name")), "flooded");
	assert_string_equal(
	    json_string_value(json_object_get(first, "behaviour")),
	    "ops.stuck");
	assert_true(
	    json_integer_value(json_object_get(first, "mailbox")) >= 4999);
	assert_string_equal(
	    json_string_value(json_object_get(first, "state")), "running");
	assert_true(json_integer_value(json_object_get(j, "total")) >= 10);
	assert_true(json_is_null(json_object_get(j, "next")));
	json_decref(j);

	/* Among the top 3 by handled (the node's own actors may have handled
	 * more), in order. */
	j = get_ok(e, "/api/actors?sort=handled&limit=3");
	bool found = false;
	json_int_t prev = INT64_MAX;
	json_t *t;
	size_t k;
	json_array_foreach(json_object_get(j, "actors"), k, t)
	{
		json_int_t h =
		    json_integer_value(json_object_get(t, "handled"));
		assert_true(h <= prev);
		prev = h;
		if (strcmp(json_string_value(json_object_get(t, "pid")), rp) ==
		    0) {
			found = true;
			assert_true(h >= 3000);
		}
	}
	assert_true(found);
	json_decref(j);

	/* Pages of 3 by pid: every actor once. */
	size_t seen = 0, total = 0;
	bool got_flooded = false;
	char path[128] = "/api/actors?sort=pid&limit=3";
	for (int pages = 0; pages < 100; pages++) {
		j = get_ok(e, path);
		total = (size_t)json_integer_value(json_object_get(j, "total"));
		json_t *a;
		size_t i;
		json_array_foreach(json_object_get(j, "actors"), i, a)
		{
			seen++;
			if (strcmp(json_string_value(json_object_get(a, "pid")),
			        fp) == 0)
				got_flooded = true;
		}
		json_t *next = json_object_get(j, "next");
		if (json_is_null(next)) {
			json_decref(j);
			break;
		}
		snprintf(path, sizeof(path),
		    "/api/actors?sort=pid&limit=3&after=%s",
		    json_string_value(next));
		json_decref(j);
	}
	assert_true(got_flooded);
	assert_int_equal(seen, total);

	int st;
	j = call(e, "GET", "/api/actors?sort=size", true, &st);
	assert_int_equal(st, 400);
	json_decref(j);
	j = call(e, "GET", "/api/actors?limit=5000", true, &st);
	assert_int_equal(st, 400);
	json_decref(j);

	/* One actor: links, monitors both ways, its mailbox head. */
	tr_pid other;
	assert_rc(tr_spawn(&other, e->p.rt, &sink, NULL, NULL), TR_OK);
	assert_rc(tr_post(e->p.rt, reader, LINK, &other, sizeof(other)), TR_OK);
	assert_rc(tr_post(e->p.rt, other, MON, &reader, sizeof(reader)), TR_OK);
	assert_rc(
	    tr_post(e->p.rt, reader, MON, &flooded, sizeof(flooded)), TR_OK);
	char op[48];
	pid_text(op, sizeof(op), other);
	snprintf(path, sizeof(path), "/api/actor/%s", rp);
	json_t *links = NULL;
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		j = get_ok(e, path);
		if (json_array_size(json_object_get(j, "links")) == 1 &&
		    json_array_size(json_object_get(j, "monitored_by")) == 1 &&
		    json_array_size(json_object_get(j, "monitors")) == 1)
			break;
		json_decref(j);
		j = NULL;
		usleep(2000);
	}
	assert_non_null(j);
	links = json_object_get(j, "links");
	assert_string_equal(json_string_value(json_array_get(links, 0)), op);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(j, "monitored_by"), 0), "pid")),
	    op);
	assert_string_equal(
	    json_string_value(json_object_get(
	        json_array_get(json_object_get(j, "monitors"), 0), "pid")),
	    fp);
	assert_string_equal(
	    json_string_value(json_object_get(j, "behaviour")), "ops.sink");
	json_decref(j);

	/* The mailbox head: the flooded actor gets through its backlog and
	 * is stuck again in one message; the question is asked (from another
	 * thread, as it waits its turn), three messages go behind it, and
	 * then the actor is let go: the report lists those three. */
	atomic_store(&go, 1);
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		tr_actor_info ai;
		tr_actor_info_init(&ai);
		assert_rc(tr_actor_info_get(&ai, e->p.rt, flooded), TR_OK);
		if (ai.state == TR_ACTOR_WAITING)
			break; /* through its backlog */
		usleep(1000);
	}
	atomic_store(&go, 0);
	assert_rc(tr_post(e->p.rt, flooded, 9, NULL, 0), TR_OK);
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		tr_actor_info ai;
		tr_actor_info_init(&ai);
		assert_rc(tr_actor_info_get(&ai, e->p.rt, flooded), TR_OK);
		if (ai.state == TR_ACTOR_RUNNING && ai.mailbox == 0)
			break; /* stuck in that message */
		usleep(1000);
	}
	snprintf(path, sizeof(path), "/api/actor/%s?payload=1", fp);
	struct ask a = {e, path, NULL, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, ask_main, &a), 0);
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		tr_actor_info ai;
		tr_actor_info_init(&ai);
		assert_rc(tr_actor_info_get(&ai, e->p.rt, flooded), TR_OK);
		if (ai.mailbox >= 2)
			break; /* the question, and the agent's monitor before
			        * it (its tr_call_then monitors the actor it
			        * asks) */
		usleep(1000);
	}
	int x = 0x01020304;
	for (int i = 0; i < 3; i++)
		assert_rc(tr_post(e->p.rt, flooded, 77, &x, sizeof(x)), TR_OK);
	atomic_store(&go, 1);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(a.status, 200);
	j = a.j;
	assert_string_equal(
	    json_string_value(json_object_get(j, "name")), "flooded");
	json_t *head = json_object_get(j, "mailbox_head");
	assert_int_equal(json_array_size(head), 3);
	json_t *h0 = json_array_get(head, 0);
	assert_string_equal(
	    json_string_value(json_object_get(h0, "type")), "0x0000004d");
	assert_int_equal(json_integer_value(json_object_get(h0, "size")), 4);
	assert_string_equal(
	    json_string_value(json_object_get(h0, "bytes")), "04030201");
	json_decref(j);

	(void)tr_kill(e->p.rt, flooded, TR_REASON_KILL);
	for (long long end = wd_now_ms() + WAIT_MS;
	     tr_is_alive(e->p.rt, flooded) && wd_now_ms() < end;)
		usleep(1000);
	j = call(e, "GET", path, true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
	j = call(e, "GET", "/api/actor/nonsense", true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
}

static json_t *member_on(json_t *group, const char *node)
{
	json_t *m;
	size_t i;
	json_array_foreach(json_object_get(group, "members"), i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "node")),
		        node) == 0)
			return m;
	}
	return NULL;
}

static void test_cluster(void **state)
{
	struct env *e = *state;
	tr_pid a, b;
	assert_rc(tr_spawn(&a, e->p.rt, &sink, NULL, NULL), TR_OK);
	assert_rc(tr_spawn(&b, e->p.prt, &sink, NULL, NULL), TR_OK);
	assert_rc(tr_global_register(e->p.node, "svc.alpha", a, NULL, WAIT_MS),
	    TR_OK);
	assert_rc(
	    tr_global_register(e->p.peer, "svc.beta", b, NULL, WAIT_MS), TR_OK);
	assert_rc(tr_pg_join(e->p.node, TR_PG_DEFAULT_SCOPE, "workers", &a, 1),
	    TR_OK);
	assert_rc(tr_pg_join(e->p.peer, TR_PG_DEFAULT_SCOPE, "workers", &b, 1),
	    TR_OK);
	json_t *j = NULL;
	for (long long end = wd_now_ms() + WAIT_MS; wd_now_ms() < end;) {
		j = get_ok(e, "/api/pg?scope=default");
		json_t *g = json_array_get(
		    json_object_get(
		        json_array_get(json_object_get(j, "scopes"), 0),
		        "groups"),
		    0);
		if (g != NULL && member_on(g, "alpha") != NULL &&
		    member_on(g, "beta") != NULL)
			break;
		json_decref(j);
		j = NULL;
		usleep(5000);
	}
	assert_non_null(j);
	json_t *sc = json_array_get(json_object_get(j, "scopes"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(sc, "scope")), "default");
	json_t *g = json_array_get(json_object_get(sc, "groups"), 0);
	assert_string_equal(
	    json_string_value(json_object_get(g, "name")), "workers");
	assert_int_equal(
	    json_integer_value(json_object_get(g, "members_total")), 2);
	char at[48];
	pid_text(at, sizeof(at), a);
	assert_string_equal(
	    json_string_value(json_object_get(member_on(g, "alpha"), "pid")),
	    at);
	json_decref(j);

	j = get_ok(e, "/api/global");
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
	json_t *nm;
	size_t i;
	int seen = 0;
	json_array_foreach(json_object_get(j, "names"), i, nm)
	{
		const char *name =
		    json_string_value(json_object_get(nm, "name"));
		const char *node =
		    json_string_value(json_object_get(nm, "node"));
		if (strcmp(name, "svc.alpha") == 0) {
			assert_string_equal(node, "alpha");
			assert_string_equal(
			    json_string_value(json_object_get(nm, "pid")), at);
			seen++;
		} else if (strcmp(name, "svc.beta") == 0) {
			assert_string_equal(node, "beta");
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	json_decref(j);

	/* beta's view, through alpha. */
	j = get_ok(e, "/api/global?node=beta");
	assert_string_equal(
	    json_string_value(json_object_get(j, "node")), "beta");
	assert_int_equal(json_integer_value(json_object_get(j, "total")), 2);
	json_decref(j);

	int st;
	j = call(e, "GET", "/api/pg?scope=nope", true, &st);
	assert_int_equal(st, 404);
	json_decref(j);
}
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_actors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cluster, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_kill_and_disconnect, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
