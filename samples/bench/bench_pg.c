/*
 * Process groups (troupe/pg.h) in a cluster of two node processes on
 * 127.0.0.1: this one, and a peer it starts itself (its own binary,
 * `troupe-bench --pg-node SCHEDULERS COOKIE`), which runs the default
 * scope as every node does, holds PEER_MEMBERS members of the dispatch
 * group and watches the marker group of pg-join.
 *
 * pg-join N: one actor joins its own pid to a group of the default
 * scope and leaves it again, N times; one op is one join + leave pair
 * (two changes of the table, each sent on to the peer by the scope
 * server). The rate is what the joining actor sees: the calls return
 * once this node's table has changed, the peer learns of each change
 * asynchronously (as Erlang's pg:join returns once its own scope server
 * has it). So the second line gives the convergence: after the last
 * pair the actor joins a marker group; the changes of a pair of nodes
 * arrive in order, so the peer has applied every change once it sees
 * the marker (a pg monitor of the marker group); converge_ms is from
 * the end of the loop to then, on CLOCK_MONOTONIC in both processes.
 *
 *   pg-join N ops in <s> s = <ops/s> ops/s
 *   pg-join converge_ms <ms> cluster_ops_s <N / (loop + convergence)>
 *
 * pg-dispatch N: the group has 8 members, 4 actors on each node, and
 * one actor sends N 8-byte messages with tr_pg_send_one (round robin,
 * TR_PG_ANY_NODE: every second message crosses to the peer). A send
 * refused with TR_EAGAIN (flow control) is retried RETRY_MS later. Then
 * it sends every member a flush; each member answers with how many
 * messages it got (a pair's order holds, so the flush comes after them),
 * and the clock stops when the answers add up to N.
 *
 * pg-dispatch-local N: the same without TR_PG_ANY_NODE: the 4 local
 * members get everything (no network hop) while the peer's 4 stay in
 * the group; the answers of all 8 still add up to N.
 *
 * Their Erlang twin is samples/bench/peers/pg_bench.erl.
 */
#define _GNU_SOURCE
#include "bench_pg.h"

#include <troupe/node.h>
#include <troupe/pg.h>

#include <errno.h>
#include <fcntl.h>
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

#define PEER_NAME "troupe-bench-pg-peer"
#define SELF_NAME "troupe-bench-pg"
#define G_JOIN "bench.join"
#define G_MARK "bench.join-end"
#define G_WORK "bench.workers"
#define LOCAL_MEMBERS 4
#define PEER_MEMBERS 4
#define BURST 1024    /* ops of one actor turn, then a message to itself */
#define RETRY_MS 1    /* pause after a send refused with TR_EAGAIN */
#define WAIT_MS 60000 /* for the peer to start, sync, answer */

enum {
	M_MORE = 100,
	M_ITEM,
	M_FLUSH,
	M_COUNT,
	M_DONE,
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "troupe-bench pg: %s: %s\n", what,
	    rc ? tr_strerror(rc) : "failed");
	exit(1);
}

static void must(int rc, const char *what)
{
	if (rc != TR_OK)
		die(what, rc);
}

/* The two nodes meeting and parting are every run's own doing. */
static void pg_log(void *user, const char *line)
{
	(void)user;
	if (strstr(line, " is up (incarnation ") == NULL &&
	    strstr(line, " is down: ") == NULL)
		fprintf(stderr, "%s\n", line);
}

/* ---- members (both nodes) -------------------------------------------------*/

/* Counts M_ITEM; answers M_FLUSH with the count, to the flush's sender. */
static int member_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	uint64_t *count = calloc(1, sizeof(*count));
	if (count == NULL)
		return TR_ENOMEM;
	*state = count;
	tr_pid self = tr_self(ctx);
	return tr_pg_join(
	    tr_node_of(tr_runtime_of(ctx)), NULL, G_WORK, &self, 1);
}

static int member_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	uint64_t *count = state;
	if (m->type == M_ITEM) {
		++*count;
	} else if (m->type == M_FLUSH) {
		must(tr_send(ctx, tr_sender(m), M_COUNT, count, sizeof(*count)),
		    "answer a flush");
		*count = 0;
	}
	return 0;
}

static void member_fini(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour member_b = {
    .name = "pg_member",
    .init = member_init,
    .handle = member_handle,
    .terminate = member_fini,
};

static void members_spawn(tr_runtime *rt, int n)
{
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_SYNC_INIT;
	for (int i = 0; i < n; i++)
		must(tr_spawn(NULL, rt, &member_b, NULL, &so), "spawn member");
}

/* ---- the peer node process ------------------------------------------------*/

int bench_pg_node_main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = (unsigned)atoi(argv[2]);
	tr_runtime *rt;
	must(tr_runtime_start(&rt, &ro), "peer: start runtime");
	tr_runtime_set_log(rt, pg_log, NULL);
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = PEER_NAME;
	no.listen = listen;
	no.cookie = argv[3];
	tr_node *node;
	must(tr_node_start(&node, rt, &no), "peer: start node");
	members_spawn(rt, PEER_MEMBERS);
	tr_port *port;
	uint64_t ref;
	must(tr_port_open(&port, rt), "peer: open port");
	must(tr_pg_monitor_port(node, port, &ref, NULL, G_MARK),
	    "peer: monitor the marker");
	printf("READY %s\n", tr_node_listen_url(node, 0));
	fflush(stdout);
	/* Until stdin, the other end of the parent's pipe, ends. */
	for (;;) {
		tr_msg *m;
		if (tr_port_recv(&m, port, 20) == TR_OK) {
			const tr_pg_event *ev = (const void *)m->data;
			if (m->type == TR_MSG_PG_JOIN &&
			    m->size >= TR_PG_EVENT_SIZE(0) && ev->npids > 0) {
				printf("SEEN %" PRId64 "\n", mono_ns());
				fflush(stdout);
			}
			tr_msg_free(m);
		}
		struct pollfd p = {0, POLLIN, 0};
		char c;
		if (poll(&p, 1, 0) > 0 && read(0, &c, 1) <= 0)
			break;
	}
	tr_port_close(port);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	return 0;
}

/* ---- the parent's side of it ----------------------------------------------*/

static struct {
	tr_node *node;
	pid_t pid;
	int in, out; /* the peer's stdin (its life) and stdout */
} peer = {NULL, 0, -1, -1};

static void peer_kill(void)
{
	if (peer.pid > 0) {
		kill(peer.pid, SIGKILL);
		waitpid(peer.pid, NULL, 0);
		peer.pid = 0;
	}
}

/* The next line of the peer's stdout, or -1 after WAIT_MS. */
static int read_line(char *buf, size_t cap)
{
	size_t len = 0;
	int64_t end = mono_ns() + (int64_t)WAIT_MS * 1000000;
	while (len + 1 < cap) {
		struct pollfd p = {peer.out, POLLIN, 0};
		int64_t left = (end - mono_ns()) / 1000000;
		if (left <= 0)
			return -1;
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || read(peer.out, buf + len, 1) != 1)
			return -1;
		if (buf[len] == '\n')
			break;
		len++;
	}
	buf[len] = '\0';
	return 0;
}

static void cookie_make(char *buf, size_t cap)
{
	unsigned char raw[16] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
		uint64_t x = (uint64_t)mono_ns() ^ (uint64_t)getpid() << 32;
		for (size_t i = 0; i < sizeof(raw); i++) {
			x = x * 6364136223846793005u + 1442695040888963407u;
			raw[i] = (unsigned char)(x >> 56);
		}
	}
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
}

/* How many members `group` has here: all of them, or local ones only. */
static size_t members_of(const char *group, bool all)
{
	size_t k = 0;
	int rc = all ? tr_pg_members(NULL, 0, &k, peer.node, NULL, group)
	             : tr_pg_local_members(NULL, 0, &k, peer.node, NULL, group);
	must(rc, "pg members");
	return k;
}

/* Starts the peer, this node, connects them, and waits until each has
 * the other's sync: the peer's members are here, and this node's scope
 * server has the peer (its changes go there from now on). */
static void peer_start(tr_runtime *rt)
{
	char cookie[33] = "", sched[16], line[512];
	cookie_make(cookie, sizeof(cookie));
	snprintf(sched, sizeof(sched), "%u", tr_runtime_schedulers(rt));
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		die("pipe", 0);
	signal(SIGPIPE, SIG_IGN);
	atexit(peer_kill);
	peer.pid = fork();
	if (peer.pid < 0)
		die("fork", 0);
	if (peer.pid == 0) {
		/* Threads run in this process: only async-signal-safe calls
		 * until exec. dup2 clears close-on-exec on 0 and 1. */
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(127);
		execl("/proc/self/exe", "troupe-bench", "--pg-node", sched,
		    cookie, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	peer.in = in[1];
	peer.out = out[0];
	if (read_line(line, sizeof(line)) != 0 ||
	    strncmp(line, "READY ", 6) != 0)
		die("the peer node did not start", 0);

	tr_runtime_set_log(rt, pg_log, NULL);
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = SELF_NAME;
	no.listen = listen;
	no.cookie = cookie;
	must(tr_node_start(&peer.node, rt, &no), "start node");
	must(tr_node_connect(peer.node, line + 6, WAIT_MS, NULL),
	    "connect to the peer");
	int64_t end = mono_ns() + (int64_t)WAIT_MS * 1000000;
	for (;;) {
		tr_pg_stats st;
		tr_pg_stats_init(&st);
		must(tr_pg_stats_get(&st, peer.node, NULL), "pg stats");
		if (st.peers >= 1 && st.remote_members >= PEER_MEMBERS)
			break;
		if (mono_ns() > end)
			die("no sync with the peer", TR_ETIMEDOUT);
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
}

/* Stops this node, then the peer (its stdin ends; killed if it lingers). */
static void peer_stop(void)
{
	tr_node_stop(peer.node);
	peer.node = NULL;
	close(peer.in);
	close(peer.out);
	for (int i = 0; i < 500 && peer.pid > 0; i++) {
		if (waitpid(peer.pid, NULL, WNOHANG) == peer.pid)
			peer.pid = 0;
		else
			nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	peer_kill();
}

/* The port's M_DONE, with its payload in *out. */
static void done_wait(tr_port *port, void *out, size_t size)
{
	tr_msg *m;
	must(tr_port_recv(&m, port, WAIT_MS), "wait for the result");
	if (m->type != M_DONE || m->size != size)
		die("an unexpected message at the port", 0);
	memcpy(out, m->data, size);
	tr_msg_free(m);
}

/* ---- pg-join --------------------------------------------------------------*/

struct joiner {
	tr_pid done;   /* the main thread's port */
	uint64_t left; /* pairs still to do */
	int64_t t_end; /* CLOCK_MONOTONIC after the last pair */
};

static void join_burst(tr_ctx *ctx, struct joiner *j)
{
	tr_node *node = tr_node_of(tr_runtime_of(ctx));
	tr_pid self = tr_self(ctx);
	for (int i = 0; i < BURST && j->left > 0; i++, j->left--) {
		must(tr_pg_join(node, NULL, G_JOIN, &self, 1), "pg join");
		must(tr_pg_leave(node, NULL, G_JOIN, &self, 1), "pg leave");
	}
	if (j->left > 0) {
		must(tr_send(ctx, self, M_MORE, NULL, 0), "send more");
		return;
	}
	j->t_end = mono_ns();
	must(tr_pg_join(node, NULL, G_MARK, &self, 1), "pg join the marker");
	must(tr_send(ctx, j->done, M_DONE, &j->t_end, sizeof(j->t_end)),
	    "send done");
}

static int joiner_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	(void)state; /* the state is the argument */
	return tr_send(ctx, tr_self(ctx), M_MORE, NULL, 0);
}

static int joiner_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	if (m->type == M_MORE)
		join_burst(ctx, state);
	return 0;
}

static const tr_behaviour joiner_b = {
    .name = "pg_joiner",
    .init = joiner_init,
    .handle = joiner_handle,
};

uint64_t run_pg_join(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct joiner j;
	char line[128];
	peer_start(rt);
	j.done = tr_port_pid(port);
	j.left = a[0];
	int64_t t0 = mono_ns();
	must(tr_spawn(NULL, rt, &joiner_b, &j, NULL), "spawn joiner");
	int64_t t_end;
	done_wait(port, &t_end, sizeof(t_end));
	if (read_line(line, sizeof(line)) != 0 ||
	    strncmp(line, "SEEN ", 5) != 0)
		die("the peer did not see the last change", TR_ETIMEDOUT);
	int64_t seen = strtoll(line + 5, NULL, 10);
	if (members_of(G_JOIN, true) != 0)
		die("members left in the group", 0);
	peer_stop();
	*secs = (double)(t_end - t0) / 1e9;
	double conv = (double)(seen - t_end) / 1e9;
	printf("pg-join %" PRIu64 " ops in %.4f s = %.0f ops/s\n", a[0], *secs,
	    (double)a[0] / *secs);
	printf("pg-join converge_ms %.2f cluster_ops_s %.0f\n", conv * 1e3,
	    (double)a[0] / (*secs + conv));
	return a[0];
}

/* ---- pg-dispatch ----------------------------------------------------------*/

struct dispatcher {
	tr_pid done;
	unsigned mode;
	uint64_t left;    /* messages still to send */
	uint64_t refused; /* sends refused with TR_EAGAIN (retried) */
	tr_pid to[LOCAL_MEMBERS + PEER_MEMBERS]; /* for the flushes */
	size_t nto, flushed, answered;
	uint64_t got; /* what the members' answers add up to */
};

/* Sends the rest of the flushes; false if one must be retried. */
static bool flush_more(tr_ctx *ctx, struct dispatcher *d)
{
	for (; d->flushed < d->nto; d->flushed++) {
		int rc = tr_send(ctx, d->to[d->flushed], M_FLUSH, NULL, 0);
		if (rc == TR_EAGAIN)
			return false;
		must(rc, "send a flush");
	}
	return true;
}

static void dispatch_burst(tr_ctx *ctx, struct dispatcher *d)
{
	int rc = TR_OK;
	for (int i = 0; i < BURST && d->left > 0; i++) {
		rc = tr_pg_send_one(ctx, NULL, G_WORK, d->mode, M_ITEM,
		    &d->left, sizeof(d->left), NULL);
		if (rc != TR_OK)
			break;
		d->left--;
	}
	if (rc == TR_OK && d->left > 0) {
		must(tr_send(ctx, tr_self(ctx), M_MORE, NULL, 0), "send more");
		return;
	}
	if (rc == TR_OK && flush_more(ctx, d))
		return;
	if (rc != TR_OK && rc != TR_EAGAIN)
		die("pg send one", rc);
	d->refused++;
	must(tr_send_after(
	         ctx, NULL, tr_self(ctx), RETRY_MS, 0, M_MORE, NULL, 0),
	    "arm a retry");
}

static int dispatcher_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	(void)state; /* the state is the argument */
	return tr_send(ctx, tr_self(ctx), M_MORE, NULL, 0);
}

static int dispatcher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct dispatcher *d = state;
	if (m->type == M_MORE) {
		dispatch_burst(ctx, d);
	} else if (m->type == M_COUNT && m->size == sizeof(uint64_t)) {
		uint64_t c;
		memcpy(&c, m->data, sizeof(c));
		d->got += c;
		if (++d->answered == d->nto)
			must(tr_send(
			         ctx, d->done, M_DONE, &d->got, sizeof(d->got)),
			    "send done");
	}
	return 0;
}

static const tr_behaviour dispatcher_b = {
    .name = "pg_dispatcher",
    .init = dispatcher_init,
    .handle = dispatcher_handle,
};

static uint64_t dispatch(tr_runtime *rt, tr_port *port, uint64_t n,
    unsigned mode, const char *name, double *secs)
{
	static struct dispatcher d;
	peer_start(rt);
	members_spawn(rt, LOCAL_MEMBERS);
	d.done = tr_port_pid(port);
	d.mode = mode;
	d.left = n;
	must(tr_pg_members(d.to, LOCAL_MEMBERS + PEER_MEMBERS, &d.nto,
	         peer.node, NULL, G_WORK),
	    "pg members");
	if (d.nto != LOCAL_MEMBERS + PEER_MEMBERS ||
	    members_of(G_WORK, false) != LOCAL_MEMBERS)
		die("the group is not 4 + 4 members", 0);
	int64_t t0 = mono_ns();
	must(tr_spawn(NULL, rt, &dispatcher_b, &d, NULL), "spawn dispatcher");
	uint64_t got;
	done_wait(port, &got, sizeof(got));
	*secs = (double)(mono_ns() - t0) / 1e9;
	if (got != n)
		die("the members did not get every message", 0);
	peer_stop();
	printf("%s %" PRIu64 " ops in %.4f s = %.0f ops/s\n", name, n, *secs,
	    (double)n / *secs);
	printf("%s refused_retried %" PRIu64 "\n", name, d.refused);
	return n;
}

uint64_t run_pg_dispatch(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	return dispatch(rt, port, a[0], TR_PG_ROUND_ROBIN | TR_PG_ANY_NODE,
	    "pg-dispatch", secs);
}

uint64_t run_pg_dispatch_local(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	return dispatch(
	    rt, port, a[0], TR_PG_ROUND_ROBIN, "pg-dispatch-local", secs);
}
