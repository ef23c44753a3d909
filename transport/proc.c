/*
 * Process children, the parent's side of a start (tr_proc_start_link): a
 * record in the node's table, the control data the child reads from its fd
 * 3, the launch, and the wait for the child's READY on a port of this
 * call's own. The wait needs no actor of this node to run (the caller's
 * scheduler is blocked in it), so it works on a runtime of one scheduler.
 *
 * The control data, all integers little-endian u32:
 *   "TRPC", version 2, then eight fields, each a u32 length and its
 *   bytes: cookie, parent URL, child node name, start port pid
 *   (tr_pid_encode), behaviour name, root argument, the URL the child
 *   listens on (the parent's handshake dials back to it): beside the
 *   parent's ipc socket, or an ephemeral loopback port; flags (a u32:
 *   TR__PROC_CTL_WARM, a warm process, proc_warm.c).
 * The parent keeps the write end open for the child's life: EOF on it
 * tells the child its parent is gone (proc_child.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "proc_int.h"
#include "proc_spawn.h"
#include "troupe/pid.h"

#define DEFAULT_START_MS 10000u
#define DEFAULT_TERM_MS 1000u

static bool spec_ok(const tr_proc_spec *s)
{
	return tr_name_valid(s->behaviour) && s->arg_size <= TR_PROC_ARG_MAX &&
	       (s->arg != NULL || s->arg_size == 0);
}

/* The URL the child dials: the first ipc:// listener, else the first
 * tcp:// one with a wildcard host made loopback. */
static int parent_url(struct tr_node *n, char *out, size_t cap)
{
	const char *tcp = NULL;
	for (size_t i = 0;; i++) {
		const char *u = tr_node_listen_url(n, i);
		if (u == NULL)
			break;
		if (strncmp(u, "ipc://", 6) == 0) {
			snprintf(out, cap, "%s", u);
			return TR_OK;
		}
		if (tcp == NULL && strncmp(u, "tcp://", 6) == 0)
			tcp = u;
	}
	if (tcp == NULL)
		return TR_ENOTSUP;
	const char *port = strrchr(tcp + 6, ':');
	if (port == NULL)
		return TR_ENOTSUP;
	const char *host = tcp + 6;
	size_t hl = (size_t)(port - host);
	if (hl == 0 || (hl == 7 && memcmp(host, "0.0.0.0", 7) == 0) ||
	    (hl == 1 && host[0] == '*'))
		snprintf(out, cap, "tcp://127.0.0.1%s", port);
	else if (hl == 4 && memcmp(host, "[::]", 4) == 0)
		snprintf(out, cap, "tcp://[::1]%s", port);
	else
		snprintf(out, cap, "%s", tcp);
	return TR_OK;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

struct ctl_buf {
	unsigned char *p;
	size_t len, cap;
};

static void ctl_field(struct ctl_buf *b, const void *data, size_t len)
{
	put_u32(b->p + b->len, (uint32_t)len);
	b->len += 4;
	if (len != 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

/* Writes all of buf to the pipe (which the child reads from the start). */
static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return TR_ECLOSED;
		p += k;
		len -= (size_t)k;
	}
	return TR_OK;
}

static int ready_decode(struct tr_node *n, const tr_msg *m, tr_pid *root,
    int32_t *err, int32_t *reason)
{
	if (m->size < 8)
		return TR_EINVAL;
	memcpy(err, m->data, 4);
	memcpy(reason, (const char *)m->data + 4, 4);
	if (*err != TR_OK)
		return TR_OK;
	return tr_pid_decode(root, n, (const char *)m->data + 8, m->size - 8);
}

/* Waits for the child's READY (or its death) until `deadline`. A warm
 * process says WARM first (again, if it was waiting before this start
 * took it): it is told to go on, and *took set. */
static int await_ready(struct tr_node *n, tr_port *port, int64_t deadline,
    tr_pid *root, tr_pid *child_port, int *init_reason, bool *took)
{
	for (;;) {
		int64_t left = deadline - tr__node_now_ms();
		if (left <= 0)
			return TR_ETIMEDOUT;
		tr_msg *m = NULL;
		int rc = tr_port_recv(&m, port, left);
		if (rc == TR_ETIMEDOUT)
			return TR_ETIMEDOUT;
		if (rc != TR_OK)
			return rc;
		if (m->type == TR__PROC_DIED && m->size == 4) {
			int32_t r;
			memcpy(&r, m->data, 4);
			tr_msg_free(m);
			*init_reason = r;
			return TR_EINIT;
		}
		if (m->type == TR__PROC_WARM && !*took) {
			rc = tr_port_send(port, m->sender, TR__PROC_TAKE, NULL, 0);
			tr_msg_free(m);
			if (rc != TR_OK)
				return rc;
			*took = true;
			continue;
		}
		if (m->type != TR__PROC_READY) {
			tr_msg_free(m);
			continue;
		}
		int32_t err = TR_OK, reason = 0;
		rc = ready_decode(n, m, root, &err, &reason);
		*child_port = m->sender;
		tr_msg_free(m);
		if (rc != TR_OK)
			return TR_EINVAL;
		if (err == TR_EINIT) {
			*init_reason = reason;
			return TR_EINIT;
		}
		return err;
	}
}

/* The record of a start that did not come up: killed, left to the
 * watcher to reap. */
static void start_abandon(struct tr__procs *t, struct tr__proc *r)
{
	pthread_mutex_lock(&t->lock);
	r->starting = false;
	r->waiter = TR_PID_NONE;
	if (!r->reaped)
		tr__proc_signal_locked(t, r, SIGKILL, TR_REASON_KILLED);
	pthread_mutex_unlock(&t->lock);
	tr__procs_wake(t);
}

static int launch(struct tr__procs *t, struct tr__proc *r,
    const tr_proc_spec *s, const char *url, tr_port *port)
{
	struct tr_node *n = t->n;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return TR_ENOMEM;
	unsigned char enc[TR_PID_ENCODED_MAX];
	size_t elen = 0;
	int rc = tr_pid_encode(enc, sizeof(enc), &elen, n, tr_port_pid(port));
	size_t need = 8 + 8 * 4 + strlen(t->cookie) + strlen(url) +
	              strlen(r->node) + elen + strlen(s->behaviour) +
	              s->arg_size + strlen(r->listen) + 4;
	struct ctl_buf b = {malloc(need), 0, need};
	if (rc != TR_OK || b.p == NULL) {
		free(b.p);
		close(pfd[0]);
		close(pfd[1]);
		return rc != TR_OK ? rc : TR_ENOMEM;
	}
	memcpy(b.p, "TRPC", 4);
	put_u32(b.p + 4, 2);
	b.len = 8;
	ctl_field(&b, t->cookie, strlen(t->cookie));
	ctl_field(&b, url, strlen(url));
	ctl_field(&b, r->node, strlen(r->node));
	ctl_field(&b, enc, elen);
	ctl_field(&b, s->behaviour, strlen(s->behaviour));
	ctl_field(&b, s->arg, s->arg_size);
	ctl_field(&b, r->listen, strlen(r->listen));
	unsigned char flags[4];
	put_u32(flags, r->warm_key != NULL ? TR__PROC_CTL_WARM : 0);
	ctl_field(&b, flags, 4);

	/* The environment marks the process as a child; what a parent's
	 * cluster settings would make it do is unset in proc_child.c. */
	size_t nenv = 0;
	while (s->env != NULL && s->env[nenv] != NULL)
		nenv++;
	const char **env = calloc(nenv + 2, sizeof(*env));
	if (env == NULL) {
		free(b.p);
		close(pfd[0]);
		close(pfd[1]);
		return TR_ENOMEM;
	}
	for (size_t i = 0; i < nenv; i++)
		env[i] = s->env[i];
	char mark[48];
	snprintf(mark, sizeof(mark), "TROUPE_PROC=3:%ld", (long)getpid());
	env[nenv] = mark;
	const char *self_argv[] = {"troupe-proc-child", NULL};
	struct tr__proc_launch rq = {
	    .path = s->path != NULL ? s->path : "/proc/self/exe",
	    .argv = s->argv != NULL   ? s->argv
	            : s->path == NULL ? self_argv
	                              : NULL,
	    .env_add = env,
	    .cwd = s->cwd,
	    .cpu_limit_s = s->cpu_limit_s,
	    .nofile_limit = s->nofile_limit,
	    .ctl_fd = pfd[0],
	    .self_pdeathsig = true, /* tr_proc_child_main sets it */
	};
	struct tr__proc_launched out;
	rc = tr__proc_launch(&out, &rq);
	free(env);
	close(pfd[0]);
	if (rc == TR_OK)
		rc = write_all(pfd[1], b.p, b.len);
	free(b.p);
	if (rc != TR_OK && out.pid <= 0) {
		close(pfd[1]);
		return rc;
	}
	/* All at once: from here on the record may be the watcher's to
	 * reap (and, for a warm one, another thread's to drop). */
	pthread_mutex_lock(&t->lock);
	r->ospid = out.pid;
	r->pidfd = out.pidfd;
	r->out_fd = out.out_fd;
	r->err_fd = out.err_fd;
	r->ctl_fd = pfd[1];
	atomic_fetch_add_explicit(&t->started, 1, memory_order_relaxed);
	pthread_mutex_unlock(&t->lock);
	/* A child that died before it read its control data made the write
	 * fail: its end is the watcher's to report. */
	return TR_OK;
}

/* Makes the record of a launch of `s` (`warm_key` non-NULL: a warm
 * process of that spec, which waits before its root's init) and launches
 * it, with its start port open: on TR_OK *rp is in the table, starting,
 * and *portp is its start port. */
int tr__proc_begin(struct tr__procs *t, const tr_proc_spec *s,
    const void *warm_key, struct tr__proc **rp, tr_port **portp)
{
	struct tr_node *n = t->n;
	char url[600];
	int rc = parent_url(n, url, sizeof(url));
	if (rc != TR_OK)
		return rc;
	struct tr__proc *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return TR_ENOMEM;
	r->pidfd = r->out_fd = r->err_fd = r->ctl_fd = -1;
	r->starting = true;
	r->warm_key = warm_key;
	r->memory_limit = s->memory_limit;
	r->cpu_limit_s = s->cpu_limit_s;
	r->term_ms = s->term_ms != 0 ? s->term_ms : DEFAULT_TERM_MS;
	const char *id = tr_sup_starting_id();
	snprintf(r->id, sizeof(r->id), "%s", id != NULL ? id : "");
	tr_port *port = NULL;
	if (tr__lines_init(&r->out, TR_PROC_LINE_MAX) != TR_OK ||
	    tr__lines_init(&r->err, TR_PROC_LINE_MAX) != TR_OK) {
		rc = TR_ENOMEM;
		goto fail;
	}
	if ((rc = tr_port_open(&port, n->rt)) != TR_OK)
		goto fail;
	r->waiter = tr_port_pid(port);
	/* A warm one's port is in its record from the start, for whoever
	 * drops it (proc_warm.c) once it has a process. */
	if (warm_key != NULL)
		r->warm_port = port;

	pthread_mutex_lock(&t->lock);
	if (t->stopping || t->count >= TR_PROC_MAX) {
		bool stopping = t->stopping;
		pthread_mutex_unlock(&t->lock);
		if (!stopping) {
			atomic_fetch_add_explicit(
			    &t->refused, 1, memory_order_relaxed);
			tr__node_logf(n,
			    "process child refused: %u running already "
			    "(TR_PROC_MAX)",
			    TR_PROC_MAX);
		}
		rc = stopping ? TR_ECLOSED : TR_EAGAIN;
		goto fail;
	}
	unsigned long long seq = ++t->seq;
	snprintf(r->node, sizeof(r->node), "%.200s.proc%llu", n->name, seq);
	if (strncmp(url, "ipc://", 6) == 0 &&
	    strlen(url) + 24 < sizeof(r->listen))
		snprintf(r->listen, sizeof(r->listen), "%s.p%llu", url, seq);
	else
		snprintf(r->listen, sizeof(r->listen), "tcp://127.0.0.1:0");
	rc = tr__procs_thread_locked(t);
	/* In the table before the child can connect: its node is known as
	 * a process child from its first handshake on. The watcher leaves
	 * a record alone until it has a process. */
	if (rc == TR_OK) {
		r->next = t->head;
		t->head = r;
		t->count++;
	}
	pthread_mutex_unlock(&t->lock);
	if (rc == TR_OK)
		rc = launch(t, r, s, url, port);
	if (rc != TR_OK)
		goto fail;
	tr__procs_wake(t);
	*rp = r;
	*portp = port;
	return TR_OK;

fail:
	/* Before the launch: the record has no process, and may or may not
	 * be in the table yet (tr__proc_free_locked takes it out if it is). */
	if (port != NULL)
		tr_port_close(port);
	pthread_mutex_lock(&t->lock);
	tr__proc_free_locked(t, r);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int tr_proc_start_link(tr_ctx *ctx, void *proc, tr_pid *pid, int *init_reason)
{
	int dummy = 0;
	if (init_reason == NULL)
		init_reason = &dummy;
	*init_reason = 0;
	if (pid != NULL)
		*pid = TR_PID_NONE;
	if (ctx == NULL || proc == NULL || pid == NULL)
		return TR_EINVAL;
	tr_proc_spec s;
	tr_proc_spec_init(&s, NULL);
	int rc = tr__struct_in(
	    &s, sizeof(s), (const tr_proc_spec *)proc, TR_PROC_SPEC_V1_SIZE);
	if (rc != TR_OK || !spec_ok(&s))
		return TR_EINVAL;
	struct tr_node *n = tr_node_of(tr_runtime_of(ctx));
	if (n == NULL || n->procs == NULL)
		return TR_ENOTSUP;
	struct tr__procs *t = n->procs;

	struct tr__proc *r = NULL;
	tr_port *port = NULL;
	bool warm = s.warm > 0 && tr__proc_warm_take(t, proc, &r, &port);
	if (!warm && (rc = tr__proc_begin(t, &s, NULL, &r, &port)) != TR_OK)
		return rc;
	uint32_t start_ms =
	    s.start_timeout_ms != 0 ? s.start_timeout_ms : DEFAULT_START_MS;
	tr_pid root = TR_PID_NONE, child_port = TR_PID_NONE;
	bool took = false;
	rc = await_ready(n, port, tr__node_now_ms() + start_ms, &root,
	    &child_port, init_reason, &took);
	if (warm && !took && rc != TR_OK) {
		/* It died waiting, before its init: not this start's failure.
		 * A start of its own, then. */
		start_abandon(t, r);
		tr_port_close(port);
		*init_reason = 0;
		warm = false;
		if ((rc = tr__proc_begin(t, &s, NULL, &r, &port)) != TR_OK)
			return rc;
		rc = await_ready(n, port, tr__node_now_ms() + start_ms, &root,
		    &child_port, init_reason, &took);
	}
	if (rc == TR_OK)
		rc = tr_link(ctx, root);
	/* The link is on its way to the root ahead of this (one connection,
	 * in order): the root's first turn is already linked. */
	if (rc == TR_OK)
		rc = tr_port_send(port, child_port, TR__PROC_GO, NULL, 0);
	if (rc != TR_OK) {
		start_abandon(t, r);
		tr_port_close(port);
		if (rc == TR_ETIMEDOUT)
			tr__node_logf(n,
			    "process child %s (%s) not up in %u ms", r->node,
			    s.behaviour, start_ms);
		return rc;
	}
	pthread_mutex_lock(&t->lock);
	r->starting = false;
	r->waiter = TR_PID_NONE;
	r->root = root;
	if (r->state == TR__PROC_STARTING)
		r->state = TR__PROC_UP;
	pthread_mutex_unlock(&t->lock);
	tr_port_close(port);
	tr__procs_wake(t);
	*pid = root;
	/* The next start's process, launched now, comes up while this one
	 * runs. */
	if (s.warm > 0)
		tr__proc_warm_fill(t, &s, proc);
	return TR_OK;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static char san_env[512];
static pthread_once_t san_once = PTHREAD_ONCE_INIT;

static void san_env_make(void)
{
#if defined(__SANITIZE_ADDRESS__)
	const char *var = "ASAN_OPTIONS", *more = "";
#else
	/* ThreadSanitizer's _exit otherwise sleeps a second (its default
	 * atexit_sleep_ms), and so each restart of a crashing child. */
	const char *var = "TSAN_OPTIONS", *more = ":atexit_sleep_ms=0";
#endif
	const char *cur = getenv(var);
	snprintf(san_env, sizeof(san_env), "%s=%s%sdetect_leaks=0:handle_segv=0%s",
	    var, cur != NULL ? cur : "", cur != NULL && cur[0] != '\0' ? ":" : "",
	    more);
}
#endif

const char *tr_proc_sanitizer_env(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	(void)pthread_once(&san_once, san_env_make);
	return san_env;
#else
	return NULL;
#endif
}

int tr_proc_stats_get(tr_proc_stats *out, tr_node *node)
{
	if (node == NULL ||
	    tr__struct_out_ok(out, TR_PROC_STATS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_proc_stats all;
	tr_proc_stats_init(&all);
	struct tr__procs *t = node->procs;
	if (t != NULL) {
		all.started =
		    atomic_load_explicit(&t->started, memory_order_relaxed);
		all.exited =
		    atomic_load_explicit(&t->exited, memory_order_relaxed);
		all.killed =
		    atomic_load_explicit(&t->killed, memory_order_relaxed);
		all.refused =
		    atomic_load_explicit(&t->refused, memory_order_relaxed);
		all.lines =
		    atomic_load_explicit(&t->lines, memory_order_relaxed);
		/* No lock: the watcher logs output lines under it, and a log
		 * handler may well ask for these. */
		all.running = all.started - all.exited;
		all.warm = atomic_load_explicit(&t->warm, memory_order_relaxed);
		all.taken =
		    atomic_load_explicit(&t->taken, memory_order_relaxed);
	}
	tr__struct_out(out, &all, sizeof(all));
	return TR_OK;
}
