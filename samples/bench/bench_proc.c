/*
 * Process children in troupe-bench (troupe/proc.h):
 *
 * proc-restart N: a one_for_one supervisor (intensity N + 1 in an hour,
 * so it never gives up) with one process child whose root actor, once
 * started, makes its process exit with status 1. One op is one OS process
 * started (this program re-executed), connected back and its root actor
 * up, its exit reaped and reported, and the supervisor's restart of it;
 * timed from the first restart to the N-th, counted by the supervisor's
 * "restarted" reports. Its Erlang twin (peers/proc_restart.erl) restarts a
 * gen_server that owns a port to /bin/false.
 *
 * proc-restart-gap N and proc-restart-warm N: the time a restart takes,
 * from the crash on: the child's root actor makes its process exit with
 * status 1 GAP_MS after it started, first writing the time
 * (CLOCK_REALTIME) to a file; the "restarted" report of the restart that
 * follows reads it. One op is one restart; the line's seconds are the
 * sum of the N restart times, and a second line gives their p50 and p99
 * in microseconds. proc-restart-warm's spec keeps one process warm
 * (tr_proc_spec.warm), which the gap leaves the time to come up. Their
 * twin restarts the owner of a port to a program that writes the time
 * and exits at the same gap (Erlang has no warm ports: one twin).
 *
 * proc-call N: N sequential calls (tr_request and its reply, from an
 * actor) to the root actor of a process child (an echo), then N to a
 * local echo actor: the cost of the process boundary, beside the same
 * call in one process. The twin calls a gen_server on a peer node and a
 * local one, from a process.
 *
 * The child's runtime runs one scheduler.
 */
#include "bench_proc.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <troupe/node.h>
#include <troupe/proc.h>
#include <troupe/sup.h>

enum { B_QUIT = 1, B_ECHO = 2 };

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "troupe-bench: %s: %s\n", what, tr_strerror(rc));
	exit(1);
}

/* ---- the child's behaviours ---------------------------------------------- */

static int quitter_init(tr_ctx *ctx, void *arg, void **state)
{
	free(arg); /* the tr_blob of a start by name */
	*state = NULL;
	return tr_send(ctx, tr_self(ctx), B_QUIT, NULL, 0);
}

static int quitter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	if (m->type == B_QUIT)
		_exit(1);
	return 0;
}

static const tr_behaviour quitter = {
    "bench.quitter", quitter_init, quitter_handle, NULL};

#define GAP_MS 20

static int64_t real_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The argument: the path of the file the time of the crash goes to. */
static int gapper_init(tr_ctx *ctx, void *arg, void **state)
{
	*state = arg;
	return tr_send_after(
	    ctx, NULL, tr_self(ctx), GAP_MS, 0, B_QUIT, NULL, 0);
}

static int gapper_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	const tr_blob *path = state;
	if (m->type != B_QUIT)
		return 0;
	int fd = open((const char *)path->data, O_WRONLY | O_CREAT, 0600);
	int64_t t = real_ns();
	if (fd < 0 || pwrite(fd, &t, sizeof(t), 0) != (ssize_t)sizeof(t))
		_exit(2);
	_exit(1);
}

static const tr_behaviour gapper = {
    "bench.gapper", gapper_init, gapper_handle, NULL};

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == B_ECHO)
		(void)tr_reply(ctx, m, B_ECHO, m->data, m->size);
	return 0;
}

static const tr_behaviour echo = {"bench.echo", NULL, echo_handle, NULL};

void bench_proc_child(void)
{
	if (getenv("TROUPE_PROC") == NULL)
		return;
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 1;
	tr_runtime *rt;
	if (tr_runtime_start(&rt, &ro) != TR_OK ||
	    tr_behaviour_register(rt, quitter.name, &quitter) != TR_OK ||
	    tr_behaviour_register(rt, gapper.name, &gapper) != TR_OK ||
	    tr_behaviour_register(rt, echo.name, &echo) != TR_OK)
		_exit(71);
	(void)tr_proc_child_main(rt);
	_exit(71);
}

/* ---- the parent's side -----------------------------------------------------
 */

static char dir[64];

static void rm_dir(void)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/parent", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

static tr_node *node_start(tr_runtime *rt)
{
	snprintf(dir, sizeof(dir), "/tmp/troupe-bench-proc-XXXXXX");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp", TR_EINVAL);
	atexit(rm_dir);
	char url[128];
	snprintf(url, sizeof(url), "ipc://%s/parent", dir);
	const char *listen[] = {url, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "bench";
	o.listen = listen;
	o.cookie = "troupe-bench-proc";
	tr_node *node;
	int rc = tr_node_start(&node, rt, &o);
	if (rc != TR_OK)
		die("tr_node_start", rc);
	return node;
}

struct restarts {
	_Atomic uint64_t n;
	_Atomic int64_t first, last;
	uint64_t want;
};

static struct restarts rs;

static void on_log(void *user, const tr_log_event *ev)
{
	(void)user;
	if (ev->domain == NULL ||
	    strcmp(ev->domain, "supervisor_report") != 0 ||
	    strstr(ev->text, "event=restarted") == NULL)
		return;
	uint64_t k = atomic_fetch_add(&rs.n, 1) + 1;
	int64_t t = mono_ns();
	if (k == 1)
		atomic_store(&rs.first, t);
	if (k == rs.want + 1)
		atomic_store(&rs.last, t);
}

uint64_t run_proc_restart(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	signal(SIGPIPE, SIG_IGN);
	tr_node *node = node_start(rt);
	rs.want = a[0];
	tr_runtime_set_logger(rt, on_log, NULL);
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, quitter.name);
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "quitter", &ps);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.intensity = (uint32_t)(a[0] + 10);
	fl.period_ms = 3600 * 1000;
	tr_pid sup;
	int rc = tr_sup_start(&sup, rt, &fl, &cs, 1, NULL);
	if (rc != TR_OK)
		die("tr_sup_start", rc);
	/* From the first restart to the N + 1-th: N whole cycles. */
	while (atomic_load(&rs.last) == 0)
		usleep(1000);
	*secs = (double)(atomic_load(&rs.last) - atomic_load(&rs.first)) / 1e9;
	(void)tr_kill(rt, sup, TR_REASON_SHUTDOWN);
	tr_node_stop(node);
	return a[0];
}

/* The restart times of proc-restart-gap and -warm, taken by the log
 * handler at each "restarted" report. */
static struct {
	char file[128];
	int64_t *us;
	_Atomic uint64_t n;
	uint64_t want;
} gaps;

static void on_gap_log(void *user, const tr_log_event *ev)
{
	(void)user;
	if (ev->domain == NULL ||
	    strcmp(ev->domain, "supervisor_report") != 0 ||
	    strstr(ev->text, "event=restarted") == NULL)
		return;
	int64_t now = real_ns(), t = 0;
	int fd = open(gaps.file, O_RDONLY);
	bool got = fd >= 0 && pread(fd, &t, sizeof(t), 0) == (ssize_t)sizeof(t);
	if (fd >= 0)
		close(fd);
	uint64_t k = atomic_load(&gaps.n);
	if (!got || k >= gaps.want)
		return;
	gaps.us[k] = (now - t) / 1000;
	atomic_store(&gaps.n, k + 1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t gap_run(tr_runtime *rt, const char *name, uint32_t warm,
    uint64_t n, double *secs)
{
	signal(SIGPIPE, SIG_IGN);
	tr_node *node = node_start(rt);
	snprintf(gaps.file, sizeof(gaps.file), "%s/crashed", dir);
	gaps.us = calloc(n, sizeof(*gaps.us));
	gaps.want = n;
	if (gaps.us == NULL)
		die("calloc", TR_ENOMEM);
	tr_runtime_set_logger(rt, on_gap_log, NULL);
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, gapper.name);
	ps.arg = gaps.file;
	ps.arg_size = strlen(gaps.file) + 1;
	ps.warm = warm;
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "gapper", &ps);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.intensity = (uint32_t)(n + 10);
	fl.period_ms = 3600 * 1000;
	tr_pid sup;
	int rc = tr_sup_start(&sup, rt, &fl, &cs, 1, NULL);
	if (rc != TR_OK)
		die("tr_sup_start", rc);
	while (atomic_load(&gaps.n) < n)
		usleep(1000);
	(void)tr_kill(rt, sup, TR_REASON_SHUTDOWN);
	tr_node_stop(node);
	(void)unlink(gaps.file);
	int64_t sum = 0;
	for (uint64_t i = 0; i < n; i++)
		sum += gaps.us[i];
	qsort(gaps.us, n, sizeof(*gaps.us), cmp_i64);
	*secs = (double)sum / 1e6;
	printf("%s %llu ops in %.4f s = %.0f ops/s\n", name,
	    (unsigned long long)n, *secs, (double)n / *secs);
	printf("%s latency_us p50 %lld p99 %lld\n", name,
	    (long long)gaps.us[(n - 1) / 2], (long long)gaps.us[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
	free(gaps.us);
	return n;
}

uint64_t run_proc_restart_gap(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	return gap_run(rt, "proc-restart-gap", 0, a[0], secs);
}

uint64_t run_proc_restart_warm(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	return gap_run(rt, "proc-restart-warm", 1, a[0], secs);
}

/* An actor makes the calls, one at a time (tr_request, its reply, the
 * next), as the twin's driver process does gen_server:call. */
enum { C_GO = 10 };

struct caller {
	tr_pid to;
	uint64_t left;
	uint64_t ref;
	_Atomic int64_t done_ns;
};

static int caller_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct caller *c = state;
	if (m->type == C_GO || (m->ref == c->ref && m->type == B_ECHO)) {
		if (c->left == 0) {
			atomic_store(&c->done_ns, mono_ns());
			return 0;
		}
		c->left--;
		int rc = tr_request(ctx, &c->ref, c->to, B_ECHO, &c->left,
		    sizeof(c->left), 10000);
		if (rc != TR_OK)
			die("tr_request", rc);
	} else if (m->type == TR_MSG_TIMEOUT) {
		die("a call timed out", TR_ETIMEDOUT);
	}
	return 0;
}

static const tr_behaviour caller_b = {
    "bench.caller", NULL, caller_handle, NULL};

static double call_loop(tr_runtime *rt, tr_pid to, uint64_t n)
{
	static struct caller c;
	c.to = to;
	c.left = n;
	c.ref = 0;
	atomic_store(&c.done_ns, 0);
	tr_pid p;
	int rc = tr_spawn(&p, rt, &caller_b, &c, NULL);
	if (rc != TR_OK)
		die("spawn", rc);
	int64_t t0 = mono_ns();
	tr_port *port;
	if ((rc = tr_port_open(&port, rt)) != TR_OK ||
	    (rc = tr_port_send(port, p, C_GO, NULL, 0)) != TR_OK)
		die("go", rc);
	while (atomic_load(&c.done_ns) == 0)
		usleep(200);
	double s = (double)(atomic_load(&c.done_ns) - t0) / 1e9;
	(void)tr_kill(rt, p, TR_REASON_KILL);
	tr_port_close(port);
	return s;
}

/* Starts the process child from an actor, as a start function must be
 * called, and hands its pid to the waiting thread. */
struct starter {
	tr_proc_spec ps;
	tr_pid root;
	_Atomic int rc;
};

static int starter_init(tr_ctx *ctx, void *arg, void **state)
{
	struct starter *s = arg;
	*state = s;
	(void)tr_trap_exit(ctx, true);
	int reason = 0;
	int rc = tr_proc_start_link(ctx, &s->ps, &s->root, &reason);
	atomic_store(&s->rc, rc == TR_OK ? 1 : rc);
	return TR_OK;
}

static int starter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour starter_b = {
    "bench.starter", starter_init, starter_handle, NULL};

uint64_t run_proc_call(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	(void)port;
	signal(SIGPIPE, SIG_IGN);
	tr_node *node = node_start(rt);
	static struct starter st;
	tr_proc_spec_init(&st.ps, echo.name);
	tr_pid starter;
	int rc = tr_spawn(&starter, rt, &starter_b, &st, NULL);
	if (rc != TR_OK)
		die("spawn", rc);
	while (atomic_load(&st.rc) == 0)
		usleep(1000);
	if (atomic_load(&st.rc) != 1)
		die("tr_proc_start_link", atomic_load(&st.rc));
	(void)call_loop(rt, st.root, a[0] / 10 + 1); /* warm up */
	double remote = call_loop(rt, st.root, a[0]);
	printf("proc-call %llu ops in %.3f s = %.0f ops/s\n",
	    (unsigned long long)a[0], remote, (double)a[0] / remote);
	tr_pid local;
	rc = tr_spawn(&local, rt, &echo, NULL, NULL);
	if (rc != TR_OK)
		die("spawn", rc);
	(void)call_loop(rt, local, a[0] / 10 + 1);
	double here = call_loop(rt, local, a[0]);
	printf("local-call %llu ops in %.3f s = %.0f ops/s\n",
	    (unsigned long long)a[0], here, (double)a[0] / here);
	*secs = remote;
	(void)tr_kill(rt, starter, TR_REASON_KILL);
	tr_node_stop(node);
	return a[0];
}
