/*
 * The observer (troupe/observer.h) against a running node, over real HTTP
 * on loopback: this test's client is a plain TCP socket writing HTTP/1.1.
 *
 * - off by default; a host that is not loopback, or a scheme other than
 *   http://, is refused at tr_node_start;
 * - no token, or a wrong one: 401, counted; the token in a header or in
 *   the query: 200;
 * - /metrics is the Prometheus text format (HELP and TYPE before each
 *   metric, the node label on every sample) and its values follow the
 *   node: actors spawned, a second node connected, refusals;
 * - /api/node is JSON with the same values, the peer and each scheduler;
 *   /api/health answers; other paths 404, other methods 405;
 * - the token is the cookie's, the same on every node of a cluster;
 * - a node stops at once with a client connected to its observer;
 * - ?node=NAME answers for another node of the cluster, through the two
 *   nodes' observer agents: the same route, that node's answer; a node
 *   that is not connected is 404.
 */
#define _GNU_SOURCE
#include "common.h"
#include "observer_pair.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "troupe/node.h"
#include "troupe/observer.h"

#define COOKIE "observer-secret"

struct env {
	struct obs_pair p;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	alarm(60);
	obs_pair_start(&e->p, "obs", COOKIE, "obs", "peer", true);
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

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

struct resp {
	int status;
	char head[2048];
	char *body;
};

/* One request, `auth` the Authorization header's value or NULL; reads
 * the answer until the server closes (Connection: close). */
static struct resp request(
    struct env *e, const char *method, const char *path, const char *auth)
{
	int fd = dial(e->p.port);
	char req[512];
	int k = snprintf(req, sizeof(req),
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
	    "\r\n",
	    method, path, auth != NULL ? "Authorization: " : "",
	    auth != NULL ? auth : "", auth != NULL ? "\r\n" : "");
	assert_int_equal(write(fd, req, (size_t)k), k);
	size_t cap = 1 << 16, len = 0;
	char *all = malloc(cap);
	assert_non_null(all);
	for (;;) {
		if (len + 1 == cap) {
			cap *= 2;
			all = realloc(all, cap);
			assert_non_null(all);
		}
		ssize_t r = read(fd, all + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	all[len] = '\0';
	struct resp out;
	memset(&out, 0, sizeof(out));
	assert_int_equal(sscanf(all, "HTTP/1.1 %d", &out.status), 1);
	char *sep = strstr(all, "\r\n\r\n");
	assert_non_null(sep);
	size_t hl = (size_t)(sep - all);
	snprintf(out.head, sizeof(out.head), "%.*s", (int)hl, all);
	out.body = strdup(sep + 4);
	free(all);
	return out;
}

static struct resp get(struct env *e, const char *path)
{
	char auth[128];
	snprintf(auth, sizeof(auth), "Bearer %s", e->p.token);
	return request(e, "GET", path, auth);
}

/* The value of sample `name` with only the node label, or -1. */
static double sample(const char *body, const char *name)
{
	char key[160];
	snprintf(key, sizeof(key), "\n%s{node=\"obs\"} ", name);
	const char *p = strstr(body, key);
	return p != NULL ? strtod(p + strlen(key), NULL) : -1;
}

static void test_refused_urls(void **state)
{
	(void)state;
	const char *bad[] = {"http://0.0.0.0:0", "http://198.18.0.1:0",
	    "https://127.0.0.1:0", "tcp://127.0.0.1:0", "http://127.0.0.1:0/x",
	    "nonsense"};
	tr_runtime *rt;
	assert_rc(tr_runtime_start(&rt, NULL), TR_OK);
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:0");
	const char *l[] = {url, NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tr_node_opts o;
		tr_node_opts_init(&o);
		o.name = "bad";
		o.cookie = COOKIE;
		o.listen = l;
		o.observer_url = bad[i];
		tr_node *n = NULL;
		int rc = tr_node_start(&n, rt, &o);
		if (rc != TR_EINVAL)
			fail_msg("%s: %s", bad[i], tr_strerror(rc));
		assert_null(n);
	}
	/* Off by default. */
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "plain";
	o.cookie = COOKIE;
	o.listen = l;
	tr_node *n = NULL;
	assert_rc(tr_node_start(&n, rt, &o), TR_OK);
	assert_rc(tr_node_observer_url(url, sizeof(url), n), TR_ENOENT);
	assert_rc(tr_node_observer_url(NULL, 0, n), TR_EINVAL);
	tr_node_stop(n);
	tr_runtime_stop(rt);
}

static void test_token(void **state)
{
	struct env *e = *state;
	char a[TR_OBSERVER_TOKEN_SIZE], b[TR_OBSERVER_TOKEN_SIZE];
	assert_rc(tr_observer_token(a, sizeof(a), COOKIE), TR_OK);
	assert_rc(tr_observer_token(b, sizeof(b), "another cookie"), TR_OK);
	assert_int_equal(strlen(a), TR_OBSERVER_TOKEN_LEN);
	assert_string_equal(a, e->p.token);
	assert_string_not_equal(a, b);
	assert_rc(tr_observer_token(a, sizeof(a) - 1, COOKIE), TR_EINVAL);
	assert_rc(tr_observer_token(a, sizeof(a), ""), TR_EINVAL);
	assert_rc(tr_observer_token(NULL, sizeof(a), COOKIE), TR_EINVAL);

	struct resp r = request(e, "GET", "/metrics", NULL);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.head, "WWW-Authenticate: Bearer"));
	free(r.body);
	r = request(e, "GET", "/api/node", "Bearer 0123");
	assert_int_equal(r.status, 401);
	free(r.body);
	b[0] = b[0] == 'a' ? 'b' : 'a';
	char wrong[128];
	snprintf(wrong, sizeof(wrong), "Bearer %s", b);
	r = request(e, "GET", "/api/node", wrong);
	assert_int_equal(r.status, 401);
	free(r.body);
	char path[128];
	snprintf(path, sizeof(path), "/api/health?x=1&token=%s", e->p.token);
	r = request(e, "GET", path, NULL);
	assert_int_equal(r.status, 200);
	json_error_t je;
	json_t *j = json_loads(r.body, 0, &je);
	assert_non_null(j);
	assert_string_equal(
	    json_string_value(json_object_get(j, "node")), "obs");
	assert_true(json_is_true(json_object_get(j, "ok")));
	json_decref(j);
	free(r.body);
	/* Three refusals so far, counted. */
	r = get(e, "/metrics");
	assert_int_equal(r.status, 200);
	assert_true(sample(r.body, "troupe_observer_refused_total") == 3);
	free(r.body);
}

static void test_metrics(void **state)
{
	struct env *e = *state;
	tr_pid pids[100];
	for (int i = 0; i < 100; i++)
		pids[i] = tt_spawn(e->p.rt, &tt_echo, NULL);
	struct resp r = get(e, "/metrics");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
	assert_true(sample(r.body, "troupe_actors") >= 100);
	assert_true(sample(r.body, "troupe_actors_spawned_total") >= 100);
	assert_true(sample(r.body, "troupe_peers_up") == 1);
	assert_true(sample(r.body, "troupe_uptime_seconds") >= 0);
	/* Every line: a HELP or TYPE comment, or a sample of the metric
	 * they named, with the node label. */
	regex_t help, type, smp;
	assert_int_equal(regcomp(&help, "^# HELP troupe_[a-z_]+ .+$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&type, "^# TYPE troupe_[a-z_]+ (counter|gauge)$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&smp,
	                     "^troupe_[a-z_]+\\{node=\"obs\"(,scheduler=\"[0-9]+\"|,peer=\"peer\")?\\} "
	                     "-?[0-9.e+]+$",
	                     REG_EXTENDED),
	    0);
	char typed[96] = "";
	int samples = 0, per_sched = 0, per_peer = 0;
	char *save = NULL;
	for (char *line = strtok_r(r.body, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (regexec(&help, line, 0, NULL, 0) == 0)
			continue;
		if (regexec(&type, line, 0, NULL, 0) == 0) {
			sscanf(line, "# TYPE %95s", typed);
			continue;
		}
		if (regexec(&smp, line, 0, NULL, 0) != 0)
			fail_msg("not the text format: \"%s\"", line);
		/* The sample is of the metric the last TYPE named. */
		assert_true(strncmp(line, typed, strlen(typed)) == 0 &&
		            line[strlen(typed)] == '{');
		if (strncmp(line, "troupe_scheduler_turns_total{", 29) == 0)
			per_sched++;
		if (strstr(line, ",peer=\"peer\"}") != NULL)
			per_peer++;
		samples++;
	}
	assert_int_equal(per_sched, (int)tr_runtime_schedulers(e->p.rt));
	assert_int_equal(per_peer, 8); /* each per-peer metric, once */
	assert_true(samples > 30);
	regfree(&help);
	regfree(&type);
	regfree(&smp);
	free(r.body);
	for (int i = 0; i < 100; i++)
		(void)tr_kill(e->p.rt, pids[i], TR_REASON_KILL);
}

static void test_node_json(void **state)
{
	struct env *e = *state;
	struct resp r = get(e, "/api/node");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "Content-Type: application/json"));
	json_error_t je;
	json_t *j = json_loads(r.body, 0, &je);
	if (j == NULL)
		fail_msg("not JSON (%s): %s", je.text, r.body);
	json_t *node = json_object_get(j, "node");
	assert_string_equal(
	    json_string_value(json_object_get(node, "name")), "obs");
	tr_runtime_stats st;
	tr_runtime_stats_init(&st);
	assert_rc(tr_runtime_stats_get(&st, e->p.rt), TR_OK);
	json_t *rt = json_object_get(j, "runtime");
	json_int_t spawned =
	    json_integer_value(json_object_get(rt, "actors_spawned"));
	assert_true(spawned > 0 && (uint64_t)spawned <= st.actors_spawned);
	json_t *dist = json_object_get(j, "dist");
	assert_int_equal(
	    json_integer_value(json_object_get(dist, "peers_up")), 1);
	json_t *peers = json_object_get(dist, "peers");
	assert_int_equal(json_array_size(peers), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(peers, 0), "name")),
	    "peer");
	assert_int_equal(json_array_size(json_object_get(j, "schedulers")),
	    tr_runtime_schedulers(e->p.rt));
	assert_non_null(json_object_get(json_object_get(j, "proc"), "running"));
	json_decref(j);
	free(r.body);

	r = get(e, "/nope");
	assert_int_equal(r.status, 404);
	free(r.body);
	char auth[128];
	snprintf(auth, sizeof(auth), "Bearer %s", e->p.token);
	r = request(e, "POST", "/metrics", auth);
	assert_int_equal(r.status, 405);
	free(r.body);

	/* Another node on the same observer URL: in use. */
	char url[96];
	assert_rc(tr_node_observer_url(url, sizeof(url), e->p.node), TR_OK);
	tr_runtime *rt3;
	assert_rc(tr_runtime_start(&rt3, NULL), TR_OK);
	const char *l[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "third";
	o.cookie = COOKIE;
	o.listen = l;
	o.observer_url = url;
	tr_node *n = NULL;
	assert_rc(tr_node_start(&n, rt3, &o), TR_EEXIST);
	tr_runtime_stop(rt3);
	/* The first one still answers. */
	r = get(e, "/api/health");
	assert_int_equal(r.status, 200);
	free(r.body);
}

/* The node stops at once while a client holds a connection open. */
static void test_other_node(void **state)
{
	struct env *e = *state;
	struct resp r = get(e, "/api/node?node=peer");
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(j, "node"), "name")),
	    "peer");
	/* The peer's own peer is this node. */
	json_t *peers = json_object_get(json_object_get(j, "dist"), "peers");
	assert_int_equal(json_array_size(peers), 1);
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(peers, 0), "name")),
	    "obs");
	json_decref(j);
	free(r.body);

	/* Its own name: answered here, as without node=. */
	r = get(e, "/api/node?node=obs");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"obs\""));
	free(r.body);

	/* The Prometheus text crosses as well, with its content type. */
	r = get(e, "/metrics?node=peer");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.head, "text/plain; version=0.0.4"));
	assert_non_null(strstr(r.body, "{node=\"peer\"}"));
	free(r.body);

	/* Those requests and their answers are the peer's traffic. */
	r = get(e, "/api/node");
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_non_null(j);
	json_t *p0 = json_array_get(
	    json_object_get(json_object_get(j, "dist"), "peers"), 0);
	assert_true(json_integer_value(json_object_get(p0, "msgs_out")) >= 2);
	assert_true(json_integer_value(json_object_get(p0, "msgs_in")) >= 2);
	assert_true(json_integer_value(json_object_get(p0, "bytes_in")) > 100);
	assert_true(json_integer_value(json_object_get(p0, "bytes_out")) > 20);
	assert_non_null(json_object_get(p0, "last_rx_ms"));
	assert_non_null(json_object_get(p0, "queue_bytes"));
	json_decref(j);
	free(r.body);

	r = get(e, "/api/node?node=ghost");
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "not connected"));
	free(r.body);
	r = get(e, "/nope?node=peer");
	assert_int_equal(r.status, 404);
	free(r.body);
}

static void test_stop_with_client(void **state)
{
	struct env *e = *state;
	int fd = dial(e->p.port);
	const char *half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
	assert_int_equal(write(fd, half, strlen(half)), (ssize_t)strlen(half));
	int64_t t0 = tt_now_ms();
	tr_node_stop(e->p.node);
	assert_true(tt_now_ms() - t0 < 3000);
	e->p.node = NULL;
	close(fd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refused_urls),
	    cmocka_unit_test_setup_teardown(test_token, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_node, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_stop_with_client, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
