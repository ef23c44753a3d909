/*
 * troupe-ctl (tools/ctl) against a running node with its observer and a
 * second node connected: the program itself, run as a user runs it, its
 * output and exit status checked.
 *
 * - ping answers with the node's name; nodes lists the node and its peer;
 *   stats prints the counters; metrics the Prometheus text; --json the
 *   node's JSON, which parses;
 * - the cookie from -c or from TROUPE_COOKIE, or the token from -t;
 * - top lists the actors, sorted as asked;
 * - tree draws the supervision tree (the nested supervisor inside its
 *   parent); restart and terminate act on a child, kill on an actor,
 *   disconnect on a peer; -n shows the peer through the node;
 * - a wrong cookie is exit status 1 with the 401 on stderr; no cookie and
 *   a bad command are exit status 2; a node that is not there is 1;
 * - ready: 0 and "NODE is ready" for a node whose application never
 *   said otherwise, 1 and the why once it says it is not ready
 *   (tr_node_set_ready), also with --json and for the peer (-n); 2 for a
 *   wrong cookie, an argument too many, a node that is not there.
 */
#define _GNU_SOURCE
#include "common.h"
#include "observer_pair.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "observer_tree.h"
#include "troupe/node.h"
#include "troupe/observer.h"

#define COOKIE "ctl-secret"

struct env {
	struct obs_pair p;
	tr_pid root;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	alarm(60);
	obs_pair_start(&e->p, "ctl", COOKIE, "watched", "neighbour", true);
	tr_runtime_set_logger(e->p.rt, NULL, NULL);
	obs_tree_start(e->p.rt, &e->root);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	(void)tr_kill(e->p.rt, e->root, TR_REASON_SHUTDOWN);
	obs_pair_stop(&e->p);
	free(e);
	alarm(0);
	return 0;
}

/* Runs troupe-ctl with `args` (a shell fragment) and the environment
 * `envs`; returns its exit status, its stdout in *out (malloc'ed) and
 * its stderr in *err. */
static int ctl(const char *envs, const char *args, char **out, char **err)
{
	char errf[] = "/tmp/troupe-ctl-err-XXXXXX";
	int fd = mkstemp(errf);
	assert_true(fd >= 0);
	close(fd);
	/* Under ThreadSanitizer, nng's own races are not troupe-ctl's
	 * (tests/tsan-ctl.supp says why). */
	const char *san =
#if defined(__SANITIZE_THREAD__)
	    "TSAN_OPTIONS=halt_on_error=1:suppressions=" TROUPE_TESTS_DIR
	    "/tsan-ctl.supp";
#else
	    "";
#endif
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
	    "env -u TROUPE_COOKIE -u TROUPE_OBSERVER_TOKEN "
	    "-u TROUPE_OBSERVER_URL %s %s %s %s 2>%s",
	    san, envs, TROUPE_CTL, args, errf);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t cap = 1 << 16, len = 0;
	*out = malloc(cap);
	assert_non_null(*out);
	size_t k;
	while ((k = fread(*out + len, 1, cap - len - 1, p)) > 0)
		len += k;
	(*out)[len] = '\0';
	int st = pclose(p);
	FILE *f = fopen(errf, "r");
	assert_non_null(f);
	*err = calloc(1, 4096);
	assert_non_null(*err);
	size_t el = fread(*err, 1, 4095, f);
	(*err)[el] = '\0';
	fclose(f);
	unlink(errf);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_commands(void **state)
{
	struct env *e = *state;
	char args[256], *out, *err;

	snprintf(args, sizeof(args), "-u %s -c %s ping", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_true(strncmp(out, "pong from watched in ", 21) == 0);
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s nodes", e->p.url);
	assert_int_equal(ctl("TROUPE_COOKIE=" COOKIE, args, &out, &err), 0);
	assert_non_null(strstr(out, "NODE"));
	assert_non_null(strstr(out, "watched"));
	assert_non_null(strstr(out, "neighbour"));
	free(out);
	free(err);

	char token[TR_OBSERVER_TOKEN_SIZE];
	assert_rc(tr_observer_token(token, sizeof(token), COOKIE), TR_OK);
	snprintf(args, sizeof(args), "-t %s stats", token);
	char envs[160];
	snprintf(envs, sizeof(envs), "TROUPE_OBSERVER_URL=%s", e->p.url);
	assert_int_equal(ctl(envs, args, &out, &err), 0);
	assert_non_null(strstr(out, "runtime\n"));
	assert_non_null(strstr(out, "actors_alive"));
	assert_non_null(strstr(out, "schedulers\n"));
	assert_non_null(strstr(out, "peers_up               1"));
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s/ -c %s metrics", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_non_null(strstr(out, "# TYPE troupe_actors gauge\n"));
	assert_non_null(strstr(out, "troupe_peers_up{node=\"watched\"} 1\n"));
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s -c %s --json stats", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(
	                        json_object_get(j, "node"), "name")),
	    "watched");
	json_decref(j);
	free(out);
	free(err);
}

static void test_tree_and_actions(void **state)
{
	struct env *e = *state;
	char args[256], *out, *err;
	snprintf(args, sizeof(args), "-u %s -c %s tree", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_non_null(strstr(out, "node watched: 2 supervisors\n"));
	assert_non_null(strstr(out, "app_sup <"));
	assert_non_null(strstr(out, "one_for_one, 10 restarts in 10000 ms"));
	/* pool_sup drawn inside app_sup, below its child entry "pool". */
	char *pool = strstr(out, "- pool:\n");
	assert_non_null(pool);
	assert_non_null(strstr(pool, "pool_sup <"));
	assert_non_null(strstr(pool, "- w1 "));
	assert_non_null(strstr(out, "- crashy "));
	free(out);
	free(err);

	/* top, once (stdout is a pipe here: it would be once anyway). */
	snprintf(args, sizeof(args), "-u %s -c %s top -s handled -l 50 --once",
	    e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_non_null(strstr(out, "top by handled\n"));
	assert_non_null(strstr(out, "PID "));
	assert_non_null(strstr(out, "MAILBOX"));
	assert_non_null(strstr(out, " app_sup "));
	assert_non_null(strstr(out, " supervisor "));
	free(out);
	free(err);
	snprintf(args, sizeof(args), "-u %s -c %s top -s size", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 2);
	free(out);
	free(err);

	tr_pid before = obs_child_pid(e->p.rt, e->root, "crashy");
	snprintf(args, sizeof(args), "-u %s -c %s restart %u.%u.%u crashy",
	    e->p.url, COOKIE, e->root.node, e->root.slot, e->root.gen);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_true(strncmp(out, "done: ", 6) == 0);
	assert_false(tr_pid_eq(before, obs_child_pid(e->p.rt, e->root, "crashy")));
	free(out);
	free(err);
	snprintf(args, sizeof(args), "-u %s -c %s terminate %u.%u.%u ghost",
	    e->p.url, COOKIE, e->root.node, e->root.slot, e->root.gen);
	assert_int_equal(ctl("", args, &out, &err), 1);
	assert_non_null(strstr(err, "HTTP 404"));
	free(out);
	free(err);

	tr_pid cache = obs_child_pid(e->p.rt, e->root, "cache");
	snprintf(args, sizeof(args), "-u %s -c %s kill %u.%u.%u", e->p.url,
	    COOKIE, cache.node, cache.slot, cache.gen);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_string_equal(out, "done\n");
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s -c %s -n neighbour tree", e->p.url,
	    COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_non_null(strstr(out, "node neighbour: 0 supervisors\n"));
	free(out);
	free(err);

	/* The pair goes down; neighbour, which dialed, may dial again at
	 * once: then its pair is younger than the disconnect. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	snprintf(args, sizeof(args), "-u %s -c %s disconnect neighbour", e->p.url,
	    COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	free(out);
	free(err);
	tr_node_info info[2];
	tr_node_info_init(&info[0]);
	size_t n = 0;
	assert_rc(tr_node_list(info, 2, &n, e->p.node), TR_OK);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (n == 1) {
		uint64_t since = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 +
		                            (t1.tv_nsec - t0.tv_nsec) / 1000000);
		assert_true(info[0].up_ms <= since + 1);
	} else {
		assert_int_equal(n, 0);
	}
	snprintf(args, sizeof(args), "-u %s -c %s -n ghost tree", e->p.url,
	    COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 1);
	assert_non_null(strstr(err, "not connected"));
	free(out);
	free(err);
}

static void test_ready(void **state)
{
	struct env *e = *state;
	char args[256], *out, *err;

	snprintf(args, sizeof(args), "-u %s -c %s ready", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_string_equal(out, "watched is ready\n");
	free(out);
	free(err);

	assert_rc(tr_node_set_ready(e->p.node, false, "loading the data"), TR_OK);
	assert_int_equal(ctl("", args, &out, &err), 1);
	assert_string_equal(out, "watched is not ready: loading the data\n");
	assert_string_equal(err, "");
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s -c %s --json ready", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 1);
	json_t *j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_false(json_object_get(j, "ready")));
	assert_string_equal(
	    json_string_value(json_object_get(j, "why")), "loading the data");
	json_decref(j);
	free(out);
	free(err);

	/* The peer's own, through this node's endpoint. */
	snprintf(args, sizeof(args), "-u %s -c %s -n neighbour ready", e->p.url,
	    COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	assert_string_equal(out, "neighbour is ready\n");
	free(out);
	free(err);

	assert_rc(tr_node_set_ready(e->p.node, true, NULL), TR_OK);
	snprintf(args, sizeof(args), "-u %s -c %s ready", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 0);
	free(out);
	free(err);

	/* Not asked: 2, never the 1 of "not ready". */
	snprintf(args, sizeof(args), "-u %s -c wrong ready", e->p.url);
	assert_int_equal(ctl("", args, &out, &err), 2);
	assert_non_null(strstr(err, "HTTP 401"));
	assert_string_equal(out, "");
	free(out);
	free(err);
	snprintf(args, sizeof(args), "-u %s -c %s ready now", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 2);
	assert_non_null(strstr(err, "usage: troupe-ctl"));
	free(out);
	free(err);
	tr_node_stop(e->p.node);
	e->p.node = NULL;
	snprintf(args, sizeof(args), "-u %s -c %s ready", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 2);
	assert_non_null(strstr(err, "troupe-ctl: "));
	free(out);
	free(err);
}

static void test_failures(void **state)
{
	struct env *e = *state;
	char args[256], *out, *err;

	snprintf(args, sizeof(args), "-u %s -c wrong ping", e->p.url);
	assert_int_equal(ctl("", args, &out, &err), 1);
	assert_non_null(strstr(err, "HTTP 401"));
	assert_string_equal(out, "");
	free(out);
	free(err);

	snprintf(args, sizeof(args), "-u %s ping", e->p.url);
	assert_int_equal(ctl("", args, &out, &err), 2);
	assert_non_null(strstr(err, "give the cookie"));
	free(out);
	free(err);

	assert_int_equal(ctl("", "-c x frobnicate", &out, &err), 2);
	assert_non_null(strstr(err, "usage: troupe-ctl"));
	free(out);
	free(err);

	/* Nothing listens there (the observer's port, its node stopped). */
	tr_node_stop(e->p.node);
	e->p.node = NULL;
	snprintf(args, sizeof(args), "-u %s -c %s ping", e->p.url, COOKIE);
	assert_int_equal(ctl("", args, &out, &err), 1);
	assert_non_null(strstr(err, "troupe-ctl: "));
	free(out);
	free(err);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_tree_and_actions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ready, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
