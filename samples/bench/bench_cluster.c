/*
 * cluster-form N: how fast N node processes on 127.0.0.1 become a full
 * mesh when each knows one seed, and how fast the survivors see a member
 * that was killed with SIGKILL go.
 *
 * This process is the seed (node "b0"); it starts N - 1 node processes
 * (its own binary, `troupe-bench --cluster-node NAME SEED`), each of which
 * starts a node, subscribes a port to every node's NODEUP / NODEDOWN and
 * says READY. The clock starts when all of them are up; then each is told
 * to connect to the seed (tr_node_connect, as Erlang's net_adm:ping), and
 * transitive connect does the rest. A process writes "UP <ns>" (its
 * CLOCK_MONOTONIC, the same clock in every process) when it has seen N - 1
 * NODEUPs; formation ends at the latest of them. Then the last process is
 * killed with SIGKILL, and the loss ends at the latest "DOWN <ns>" of the
 * survivors (the seed's own NODEDOWN included). Output:
 *
 *   cluster-form N ops in <formation s> s = <N / s> ops/s
 *   cluster-form formed_ms <ms> converge_ms <ms>
 *
 * Its Erlang twin is samples/bench/peers/cluster_form.erl.
 */
#define _GNU_SOURCE
#include "bench_cluster.h"

#include <troupe/node.h>

#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CL_MAX 32
#define CL_WAIT_MS 30000

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "cluster-form: %s: %s\n", what,
	    rc ? tr_strerror(rc) : "failed");
	exit(1);
}

/* Waits on `port` until `want` distinct nodes sent an event of `type`
 * (NODEUP: each counted once; NODEDOWN: any one). Returns 0, or -1. */
static int wait_events(tr_port *port, uint32_t type, int want)
{
	char seen[CL_MAX][TR_NODE_NAME_MAX + 1];
	int n = 0;
	int64_t end = mono_ns() + (int64_t)CL_WAIT_MS * 1000000;
	while (n < want) {
		int64_t left = (end - mono_ns()) / 1000000;
		tr_msg *m;
		if (left <= 0 || tr_port_recv(&m, port, left) != TR_OK)
			return -1;
		if (m->type == type && m->size >= TR_NODE_EVENT_V1_SIZE) {
			const tr_node_event *ev = (const void *)m->data;
			bool dup = false;
			for (int i = 0; i < n && !dup; i++)
				dup = strcmp(seen[i], ev->node) == 0;
			if (!dup && n < CL_MAX)
				snprintf(
				    seen[n++], sizeof(seen[0]), "%s", ev->node);
		}
		tr_msg_free(m);
	}
	return 0;
}

/* Node up / down lines would be most of the output: not printed. */
static void quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

static tr_node *node_start(tr_runtime *rt, const char *name)
{
	tr_runtime_set_log(rt, quiet, NULL);
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = name;
	o.listen = listen;
	o.cookie = "troupe-bench-cluster";
	tr_node *node;
	int rc = tr_node_start(&node, rt, &o);
	if (rc != TR_OK)
		die("tr_node_start", rc);
	return node;
}

int bench_cluster_node_main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	int n = atoi(argv[4]);
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 1;
	tr_runtime *rt;
	if (tr_runtime_start(&rt, &ro) != TR_OK)
		return 1;
	tr_node *node = node_start(rt, argv[2]);
	tr_port *port;
	if (tr_port_open(&port, rt) != TR_OK ||
	    tr_node_monitor_port(node, port, NULL, true) != TR_OK)
		return 1;
	printf("READY\n");
	fflush(stdout);
	char go;
	if (read(0, &go, 1) != 1)
		return 1;
	int rc = tr_node_connect(node, argv[3], CL_WAIT_MS, NULL);
	if (rc != TR_OK)
		die("connect to the seed", rc);
	if (wait_events(port, TR_MSG_NODEUP, n - 1) != 0)
		return 1;
	printf("UP %" PRId64 "\n", mono_ns());
	fflush(stdout);
	if (wait_events(port, TR_MSG_NODEDOWN, 1) != 0)
		return 1;
	printf("DOWN %" PRId64 "\n", mono_ns());
	fflush(stdout);
	(void)read(0, &go, 1); /* until the parent closes it */
	tr_port_close(port);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	return 0;
}

struct kid {
	pid_t pid;
	int in, out; /* its stdin, its stdout */
};

/* The next line of a child's stdout, or -1. */
static int read_line(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	int64_t end = mono_ns() + (int64_t)CL_WAIT_MS * 1000000;
	while (len + 1 < cap) {
		struct pollfd p = {fd, POLLIN, 0};
		int64_t left = (end - mono_ns()) / 1000000;
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		if (read(fd, buf + len, 1) != 1)
			return -1;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	return 0;
}

/* The time in a child's "WHAT <ns>" line. */
static int64_t kid_time(struct kid *k, const char *what)
{
	char line[128];
	size_t l = strlen(what);
	if (read_line(k->out, line, sizeof(line)) != 0 ||
	    strncmp(line, what, l) != 0 || line[l] != ' ')
		die(what, 0);
	return strtoll(line + l + 1, NULL, 10);
}

static void kid_start(struct kid *k, const char *name, const char *seed, int n)
{
	int in[2], out[2];
	if (pipe(in) != 0 || pipe(out) != 0)
		die("pipe", 0);
	char nb[16];
	snprintf(nb, sizeof(nb), "%d", n);
	k->pid = fork();
	if (k->pid < 0)
		die("fork", 0);
	if (k->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl("/proc/self/exe", "troupe-bench", "--cluster-node", name,
		    seed, nb, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	k->in = in[1];
	k->out = out[0];
}

uint64_t run_cluster_form(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	int n = (int)a[0];
	if (n < 3 || n > CL_MAX)
		die("N must be 3..32", TR_EINVAL);
	signal(SIGPIPE, SIG_IGN);
	tr_node *node = node_start(rt, "b0");
	const char *seed = tr_node_listen_url(node, 0);
	tr_port *mon;
	if (tr_port_open(&mon, rt) != TR_OK ||
	    tr_node_monitor_port(node, mon, NULL, true) != TR_OK)
		die("node monitor", 0);
	struct kid kids[CL_MAX];
	char name[16], line[64];
	for (int i = 1; i < n; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		kid_start(&kids[i], name, seed, n);
		if (read_line(kids[i].out, line, sizeof(line)) != 0 ||
		    strcmp(line, "READY") != 0)
			die("a node process did not start", 0);
	}

	/* Formation: every process has seen the n - 1 others. */
	int64_t t0 = mono_ns();
	for (int i = 1; i < n; i++)
		if (write(kids[i].in, "g", 1) != 1)
			die("write", 0);
	if (wait_events(mon, TR_MSG_NODEUP, n - 1) != 0)
		die("the seed did not see every node", TR_ETIMEDOUT);
	int64_t last = mono_ns();
	for (int i = 1; i < n; i++) {
		int64_t t = kid_time(&kids[i], "UP");
		last = t > last ? t : last;
	}
	double formed = (double)(last - t0) / 1e9;

	/* Convergence: the last one is killed; each survivor sees it go. */
	int64_t t1 = mono_ns();
	kill(kids[n - 1].pid, SIGKILL);
	if (wait_events(mon, TR_MSG_NODEDOWN, 1) != 0)
		die("the seed did not see the loss", TR_ETIMEDOUT);
	last = mono_ns();
	for (int i = 1; i < n - 1; i++) {
		int64_t t = kid_time(&kids[i], "DOWN");
		last = t > last ? t : last;
	}
	double converged = (double)(last - t1) / 1e9;

	for (int i = 1; i < n; i++) {
		close(kids[i].in);
		close(kids[i].out);
		kill(kids[i].pid, SIGKILL);
		waitpid(kids[i].pid, NULL, 0);
	}
	tr_port_close(mon);
	tr_node_stop(node);
	*secs = formed;
	printf("cluster-form %d ops in %.4f s = %.0f ops/s\n", n, formed,
	    (double)n / formed);
	printf("cluster-form formed_ms %.2f converge_ms %.2f\n", formed * 1e3,
	    converged * 1e3);
	return (uint64_t)n;
}
