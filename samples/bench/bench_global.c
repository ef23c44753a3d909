/*
 * troupe-bench's cluster-wide name workloads (troupe/global.h), on a
 * cluster of three node processes on 127.0.0.1: this one and two others it
 * starts (troupe-bench --global-serve), all connected to each other. Their
 * Erlang twin is samples/bench/peers/global_bench.erl (three BEAM nodes).
 *
 *   global-register N  N actors of this node are registered one after the
 *                      other, each under its own name, by the blocking
 *                      tr_global_register from the main thread (every
 *                      node votes on each name); timed from the first call
 *                      to the N-th TR_OK.
 *   global-lookup N    1000 names are registered first (not timed), then
 *                      N lookups (tr_global_whereis: a read of this
 *                      node's table) go round them.
 */
#include "bench_global.h"
#include "bench_remote.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <troupe/global.h>
#include <troupe/node.h>

#define GB_START_MS 10000
#define GB_NAMES 1000 /* global-lookup's names */

static double gb_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void gb_must(int rc, const char *what)
{
	if (rc != TR_OK) {
		fprintf(
		    stderr, "troupe-bench: %s: %s\n", what, tr_strerror(rc));
		exit(1);
	}
}

static void gb_log(void *user, const char *line)
{
	(void)user;
	if (strstr(line, " is up (incarnation ") == NULL &&
	    strstr(line, " is down: ") == NULL)
		fprintf(stderr, "%s\n", line);
}

int bench_global_serve(int argc, char **argv)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: %s --global-serve NAME COOKIE [SEED]\n",
		    argv[0]);
		return 2;
	}
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	const char *seeds[] = {argc == 5 ? argv[4] : NULL, NULL};
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 2;
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = argv[2];
	no.listen = listen;
	no.cookie = argv[3];
	if (argc == 5)
		no.seeds = seeds;
	tr_runtime *rt;
	tr_node *node;
	gb_must(tr_runtime_start(&rt, &ro), "server: start runtime");
	tr_runtime_set_log(rt, gb_log, NULL);
	gb_must(tr_node_start(&node, rt, &no), "server: start node");
	printf("READY %s\n", tr_node_listen_url(node, 0));
	fflush(stdout);
	char buf[64];
	ssize_t r;
	while ((r = read(0, buf, sizeof buf)) != 0)
		if (r < 0 && errno != EINTR)
			break;
	tr_node_stop(node);
	tr_runtime_stop(rt);
	return 0;
}

/* The two other nodes: their processes and the pipes that keep them. */
static struct {
	pid_t pid[2];
	int life[2];
	tr_node *node;
} gb = {{0, 0}, {-1, -1}, NULL};

static void gb_kill(void)
{
	for (int i = 0; i < 2; i++)
		if (gb.pid[i] > 0) {
			(void)kill(gb.pid[i], SIGKILL);
			(void)waitpid(gb.pid[i], NULL, 0);
			gb.pid[i] = 0;
		}
}

static void gb_spawn(
    int i, const char *cookie, const char *seed, char *url, size_t cap)
{
	char name[32], opt[] = "--global-serve", exe[] = "/proc/self/exe";
	snprintf(name, sizeof name, "gb%d", i + 1);
	char *args[] = {exe, opt, name, (char *)cookie, (char *)seed, NULL};
	if (!bench_spawn_node(args, NULL, &gb.pid[i], &gb.life[i], url, cap)) {
		fprintf(stderr, "troupe-bench: node %s did not start\n", name);
		exit(1);
	}
}

/* This node and the two others, connected to each other. */
static tr_node *gb_start(tr_runtime *rt)
{
	char cookie[40], url0[300], url1[300];
	snprintf(cookie, sizeof cookie, "gb%ld%ld", (long)getpid(),
	    (long)time(NULL));
	atexit(gb_kill);
	gb_spawn(0, cookie, NULL, url0, sizeof url0);
	gb_spawn(1, cookie, url0, url1, sizeof url1);
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = "gbench";
	no.listen = listen;
	no.cookie = cookie;
	tr_runtime_set_log(rt, gb_log, NULL);
	gb_must(tr_node_start(&gb.node, rt, &no), "start node");
	gb_must(tr_node_connect(gb.node, url0, GB_START_MS, NULL), "connect");
	gb_must(tr_node_connect(gb.node, url1, GB_START_MS, NULL), "connect");
	/* The two others meet through gb2's seed; give it a moment. */
	size_t k = 0;
	for (int i = 0; i < 100 && k < 2; i++) {
		(void)tr_node_list(NULL, 0, &k, gb.node);
		usleep(10 * 1000);
	}
	usleep(200 * 1000);
	return gb.node;
}

static void gb_stop(void)
{
	tr_node_stop(gb.node);
	gb.node = NULL;
	for (int i = 0; i < 2; i++) {
		close(gb.life[i]);
		for (int t = 0; t < 300 && gb.pid[i] > 0; t++) {
			if (waitpid(gb.pid[i], NULL, WNOHANG) == gb.pid[i])
				gb.pid[i] = 0;
			else
				usleep(10 * 1000);
		}
	}
	gb_kill();
}

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}
static const tr_behaviour idle_b = {"global_holder", NULL, idle_handle, NULL};

static void gb_register(tr_runtime *rt, tr_node *node, uint64_t n)
{
	char name[32];
	for (uint64_t i = 0; i < n; i++) {
		tr_pid pid;
		gb_must(tr_spawn(&pid, rt, &idle_b, NULL, NULL), "spawn");
		snprintf(
		    name, sizeof name, "bench.%llu", (unsigned long long)i);
		gb_must(tr_global_register(node, name, pid, NULL, 10000),
		    "register");
	}
}

uint64_t bench_global_register(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	tr_node *node = gb_start(rt);
	tr_pid *pids = malloc(a[0] * sizeof(*pids));
	if (pids == NULL)
		exit(1);
	for (uint64_t i = 0; i < a[0]; i++)
		gb_must(tr_spawn(&pids[i], rt, &idle_b, NULL, NULL), "spawn");
	char name[32];
	double t0 = gb_now();
	for (uint64_t i = 0; i < a[0]; i++) {
		snprintf(
		    name, sizeof name, "bench.%llu", (unsigned long long)i);
		gb_must(tr_global_register(node, name, pids[i], NULL, 10000),
		    "register");
	}
	*secs = gb_now() - t0;
	free(pids);
	gb_stop();
	return a[0];
}

uint64_t bench_global_lookup(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	tr_node *node = gb_start(rt);
	gb_register(rt, node, GB_NAMES);
	static char names[GB_NAMES][32];
	for (int i = 0; i < GB_NAMES; i++)
		snprintf(names[i], sizeof names[i], "bench.%d", i);
	uint64_t found = 0;
	unsigned j = 0;
	double t0 = gb_now();
	for (uint64_t i = 0; i < a[0]; i++) {
		tr_pid pid;
		found += tr_global_whereis(&pid, node, names[j]) == TR_OK;
		j = (j + 7) % GB_NAMES;
	}
	*secs = gb_now() - t0;
	if (found != a[0]) {
		fprintf(stderr, "troupe-bench: %llu lookups failed\n",
		    (unsigned long long)(a[0] - found));
		exit(1);
	}
	gb_stop();
	return a[0];
}
