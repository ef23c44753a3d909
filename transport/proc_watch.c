/*
 * Process children, the watcher: one thread per node (started with the
 * first process child) that polls every child's pidfd and output pipes,
 * logs the output line by line, reaps each child, turns its wait status
 * into an exit reason, enforces the memory limit and the SIGTERM step of a
 * shutdown, and answers the links and monitors that the child node's
 * teardown handed over (tr__proc_hold) with that reason.
 *
 * The order of a crash: the process dies, its connection drops and its
 * pidfd becomes readable, in either order. A teardown that comes first
 * hands over the links and waits for the reap for at most SILENT_GRACE_MS;
 * a process still running by then has gone silent (heartbeats missed, or
 * its connection closed while it lives): it is killed, and the links get
 * noconnection. A reap that comes first records the reason and takes the
 * child node down, whose teardown then finds the reason known.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_int.h"

#define SILENT_GRACE_MS 2000
#define DRAIN_MS 1000   /* output read after the reap, at most */
#define LINGER_MS 10000 /* a reaped record waits this long for its teardown */
#define POLL_FAST_MS 10 /* with a memory limit or no pidfd to poll */

/* ---- the table ----------------------------------------------------------- */

int tr__procs_init(struct tr_node *n, const char *cookie)
{
	struct tr__procs *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return TR_ENOMEM;
	t->cookie = strdup(cookie);
	if (t->cookie == NULL || pipe2(t->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(t->cookie);
		free(t);
		return TR_ENOMEM;
	}
	t->n = n;
	pthread_mutex_init(&t->lock, NULL);
	n->procs = t;
	return TR_OK;
}

void tr__procs_wake(struct tr__procs *t)
{
	char c = 1;
	ssize_t k = write(t->wake[1], &c, 1);
	(void)k; /* full: it is awake already */
}

struct tr__proc *tr__proc_by_node_locked(struct tr__procs *t, const char *name)
{
	for (struct tr__proc *r = t->head; r != NULL; r = r->next)
		if (strcmp(r->node, name) == 0)
			return r;
	return NULL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void tr__proc_free_locked(struct tr__procs *t, struct tr__proc *r)
{
	for (struct tr__proc **pp = &t->head; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			t->count--;
			break;
		}
	close_fd(&r->pidfd);
	close_fd(&r->out_fd);
	close_fd(&r->err_fd);
	close_fd(&r->ctl_fd);
	tr__lines_fini(&r->out);
	tr__lines_fini(&r->err);
	free(r->links);
	free(r->mons);
	free(r);
}

void tr__proc_signal_locked(
    struct tr__procs *t, struct tr__proc *r, int sig, int32_t cause)
{
	if (r->reaped || r->ospid <= 0)
		return;
	if (cause != 0 && r->cause == 0)
		r->cause = cause;
	/* The group first (grandchildren), then the child itself, in case
	 * it left the group. */
	(void)kill(-r->ospid, sig);
	(void)kill(r->ospid, sig);
	if (sig == SIGKILL)
		atomic_fetch_add_explicit(&t->killed, 1, memory_order_relaxed);
}

/* ---- reasons ------------------------------------------------------------- */

static void end_with(struct tr__proc *r, int32_t reason, const char *text)
{
	if (r->state == TR__PROC_ENDED)
		return;
	r->state = TR__PROC_ENDED;
	r->reason = reason;
	snprintf(r->text, sizeof(r->text), "%s", text);
}

static void reason_of(struct tr__proc *r, int status, const struct rusage *ru)
{
	char text[TR_REASON_TEXT_MAX];
	if (WIFEXITED(status)) {
		int st = WEXITSTATUS(status);
		snprintf(text, sizeof(text), "exit status %d", st);
		end_with(r,
		    st == 0 ? TR_REASON_NORMAL : TR_REASON_EXIT_STATUS(st),
		    text);
		return;
	}
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
	const char *abbrev = sigabbrev_np(sig);
	snprintf(text, sizeof(text), "killed by signal %d (SIG%s)", sig,
	    abbrev != NULL ? abbrev : "?");
	int64_t cpu = (int64_t)ru->ru_utime.tv_sec + ru->ru_stime.tv_sec;
	int32_t reason = TR_REASON_SIGNAL(sig);
	if (r->cause == TR_REASON_SHUTDOWN && sig == SIGTERM)
		reason = TR_REASON_SHUTDOWN;
	else if (r->cause != 0 && r->cause != TR_REASON_SHUTDOWN &&
	         sig == SIGKILL)
		reason = r->cause;
	else if (r->cpu_limit_s != 0 &&
	         (sig == SIGXCPU ||
	             (sig == SIGKILL && cpu >= (int64_t)r->cpu_limit_s)))
		reason = TR_REASON_CPU_LIMIT;
	end_with(r, reason, text);
}

/* ---- output -------------------------------------------------------------- */

struct emit_arg {
	struct tr__procs *t;
	struct tr__proc *r;
	const char *stream;
};

static void emit_line(void *arg, const char *line, size_t len, bool partial)
{
	struct emit_arg *a = arg;
	char buf[TR_PROC_LINE_MAX + 1];
	if (len > TR_PROC_LINE_MAX)
		len = TR_PROC_LINE_MAX;
	for (size_t i = 0; i < len; i++)
		buf[i] = line[i] != '\0' ? line[i] : '?';
	buf[len] = '\0';
	tr_log_field f[5];
	size_t nf = 0;
	f[nf++] = tr_log_str("child", a->r->id);
	f[nf++] = tr_log_str("child_node", a->r->node);
	f[nf++] = tr_log_int("os_pid", a->r->ospid);
	f[nf++] = tr_log_str("stream", a->stream);
	f[nf++] = tr_log_int("partial", partial ? 1 : 0);
	tr_log_event ev = {
	    .struct_size = sizeof(tr_log_event),
	    .level =
	        strcmp(a->stream, "stderr") == 0 ? TR_LOG_NOTICE : TR_LOG_INFO,
	    .domain = "proc_output",
	    .text = buf,
	    .fields = f,
	    .nfields = nf,
	};
	tr_log_emit(a->t->n->rt, &ev);
	atomic_fetch_add_explicit(&a->t->lines, 1, memory_order_relaxed);
}

static void read_out(struct tr__procs *t, struct tr__proc *r, int *fd,
    struct tr__lines *l, const char *stream)
{
	struct emit_arg a = {t, r, stream};
	/* A bounded number of reads per look, so one chatty child cannot
	 * hold the others up. */
	for (int i = 0; *fd >= 0 && i < 16; i++) {
		ssize_t k = tr__lines_read_fd(l, *fd, emit_line, &a);
		if (k > 0)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close_fd(fd); /* EOF (flushed), or an error */
	}
}

/* ---- the loop ------------------------------------------------------------ */

/* What a pass decided to do once the table lock is let go. */
struct after {
	struct tr__xlink *links;
	struct tr__xmon *mons;
	uint32_t nl, nm;
	int32_t reason;
	char text[TR_REASON_TEXT_MAX];
	char down[TR_NODE_NAME_MAX + 1]; /* a node to take down, or "" */
	tr_pid waiter;                   /* a start port to tell, or none */
};

static void deliver(struct tr__proc *r, struct after *a)
{
	if (!r->held)
		return;
	a->links = r->links;
	a->mons = r->mons;
	a->nl = r->nlinks;
	a->nm = r->nmons;
	a->reason = r->reason;
	snprintf(a->text, sizeof(a->text), "%s", r->text);
	r->links = NULL;
	r->mons = NULL;
	r->nlinks = r->nmons = 0;
	r->held = false;
}

static bool try_reap(struct tr__procs *t, struct tr__proc *r, int64_t now)
{
	int status = 0;
	struct rusage ru;
	memset(&ru, 0, sizeof(ru));
	pid_t k = wait4(r->ospid, &status, WNOHANG, &ru);
	if (k != r->ospid)
		return false;
	r->reaped = true;
	r->drain_by = now + DRAIN_MS;
	/* A child that crashed left its ipc socket behind. */
	if (strncmp(r->listen, "ipc://", 6) == 0)
		(void)unlink(r->listen + 6);
	/* Its grandchildren go with it. */
	(void)kill(-r->ospid, SIGKILL);
	close_fd(&r->pidfd);
	close_fd(&r->ctl_fd);
	reason_of(r, status, &ru);
	atomic_fetch_add_explicit(&t->exited, 1, memory_order_relaxed);
	return true;
}

static int64_t rss_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	long size = 0, res = 0;
	int got = fscanf(f, "%ld %ld", &size, &res);
	fclose(f);
	return got == 2 ? (int64_t)res * sysconf(_SC_PAGESIZE) : -1;
}

/* One look at one record; table lock held. */
static void look(
    struct tr__procs *t, struct tr__proc *r, int64_t now, struct after *a)
{
	if (r->ospid <= 0)
		return; /* being launched */
	read_out(t, r, &r->out_fd, &r->out, "stdout");
	read_out(t, r, &r->err_fd, &r->err, "stderr");
	if (!r->reaped && try_reap(t, r, now)) {
		if (r->starting && !tr_pid_is_none(r->waiter))
			a->waiter = r->waiter;
		else if (!r->held && r->state == TR__PROC_ENDED &&
		         !tr_pid_is_none(r->root))
			/* Its node may still look up (a grandchild holding
			 * the socket): its teardown brings the links. */
			snprintf(a->down, sizeof(a->down), "%s", r->node);
	}
	if (!r->reaped) {
		/* Every POLL_FAST_MS, not at every wake: a chatty child
		 * wakes the watcher far more often. */
		if (r->memory_limit != 0 && now >= r->rss_at) {
			r->rss_at = now + POLL_FAST_MS;
			int64_t rss = rss_of(r->ospid);
			if (rss > (int64_t)r->memory_limit)
				tr__proc_signal_locked(
				    t, r, SIGKILL, TR_REASON_MEMORY_LIMIT);
		}
		if (r->term_at != 0 && now >= r->term_at) {
			r->term_at = 0;
			tr__proc_signal_locked(
			    t, r, SIGTERM, TR_REASON_SHUTDOWN);
		}
		if (r->held && r->silent_by != 0 && now >= r->silent_by) {
			/* Silent: handed over, and still running. */
			tr__proc_signal_locked(
			    t, r, SIGKILL, TR_REASON_NOCONNECTION);
			end_with(r, TR_REASON_NOCONNECTION, "went silent");
		}
	}
	if (r->state == TR__PROC_ENDED)
		deliver(r, a);
	if (r->reaped && now >= r->drain_by) {
		close_fd(&r->out_fd);
		close_fd(&r->err_fd);
	}
}

static bool done_with(
    const struct tr__procs *t, const struct tr__proc *r, int64_t now)
{
	if (r->ospid <= 0 || !r->reaped || r->starting || r->held ||
	    r->out_fd >= 0 || r->err_fd >= 0)
		return false;
	/* One that was up is kept until its node's teardown came (which
	 * asks for its reason), or for LINGER_MS. */
	return r->torn || tr_pid_is_none(r->root) || t->stopping ||
	       now >= r->drain_by + LINGER_MS;
}

static void after_run(struct tr__procs *t, struct after *a)
{
	struct tr_node *n = t->n;
	if (!tr_pid_is_none(a->waiter))
		(void)tr_port_send(t->port, a->waiter, TR__PROC_DIED,
		    &a->reason, sizeof(a->reason));
	if (a->nl != 0 || a->nm != 0)
		tr__teardown_signal(
		    n, a->links, a->nl, a->mons, a->nm, a->reason, a->text);
	else {
		free(a->links);
		free(a->mons);
	}
	if (a->down[0] != '\0') {
		pthread_mutex_lock(&n->lock);
		struct tr__peer *p = tr__peer_up(n, a->down);
		if (p != NULL)
			tr__peer_down_locked(n, p, "its process ended");
		pthread_mutex_unlock(&n->lock);
	}
}

#define LOOK_MAX 64 /* records handled per pass with deferred work */

static void *watcher_main(void *arg)
{
	struct tr__procs *t = arg;
	struct pollfd *fds = NULL;
	size_t cap = 0;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		if (t->stopping && t->head == NULL) {
			pthread_mutex_unlock(&t->lock);
			break;
		}
		if (t->stopping) {
			/* Warm processes are the list's: no start lets go of
			 * them now (proc_warm.c). */
			tr_port *wp[16];
			size_t nw = tr__proc_warm_drop_locked(t, NULL, wp, 16);
			if (nw > 0) {
				pthread_mutex_unlock(&t->lock);
				for (size_t i = 0; i < nw; i++)
					tr_port_close(wp[i]);
				continue;
			}
		}
		size_t need = 1 + 3 * (size_t)t->count;
		if (need > cap) {
			struct pollfd *nf = realloc(fds, need * sizeof(*fds));
			if (nf != NULL) {
				fds = nf;
				cap = need;
			}
		}
		size_t k = 0;
		int timeout = 1000;
		int64_t now = tr__node_now_ms();
		if (cap > 0)
			fds[k++] = (struct pollfd){t->wake[0], POLLIN, 0};
		for (struct tr__proc *r = t->head; r != NULL; r = r->next) {
			int fd3[3] = {
			    r->reaped ? -1 : r->pidfd, r->out_fd, r->err_fd};
			for (int i = 0; i < 3 && k < cap; i++)
				if (fd3[i] >= 0)
					fds[k++] =
					    (struct pollfd){fd3[i], POLLIN, 0};
			if ((!r->reaped &&
			        (r->pidfd < 0 || r->memory_limit != 0 ||
			            r->silent_by != 0)) ||
			    r->drain_by != 0)
				timeout = POLL_FAST_MS;
			if (r->term_at != 0) {
				int64_t d = r->term_at - now;
				if (d < timeout)
					timeout = d < 0 ? 0 : (int)d;
			}
		}
		pthread_mutex_unlock(&t->lock);
		(void)poll(fds, k, timeout);
		char junk[64];
		while (read(t->wake[0], junk, sizeof(junk)) > 0) {
		}

		struct after todo[LOOK_MAX];
		size_t nt = 0;
		pthread_mutex_lock(&t->lock);
		now = tr__node_now_ms();
		struct tr__proc *nx;
		for (struct tr__proc *r = t->head; r != NULL; r = nx) {
			nx = r->next;
			if (nt == LOOK_MAX)
				break; /* the rest next pass, at once */
			struct after *a = &todo[nt];
			memset(a, 0, sizeof(*a));
			look(t, r, now, a);
			if (a->nl != 0 || a->nm != 0 || a->down[0] != '\0' ||
			    !tr_pid_is_none(a->waiter) || a->links != NULL ||
			    a->mons != NULL) {
				if (!tr_pid_is_none(a->waiter))
					a->reason = r->reason;
				nt++;
			}
			if (done_with(t, r, now))
				tr__proc_free_locked(t, r);
		}
		pthread_mutex_unlock(&t->lock);
		for (size_t i = 0; i < nt; i++)
			after_run(t, &todo[i]);
		if (nt == LOOK_MAX)
			tr__procs_wake(t);
	}
	free(fds);
	return NULL;
}

int tr__procs_thread_locked(struct tr__procs *t)
{
	if (t->thread_started)
		return TR_OK;
	int rc = tr_port_open(&t->port, t->n->rt);
	if (rc != TR_OK)
		return rc;
	if (pthread_create(&t->thread, NULL, watcher_main, t) != 0) {
		tr_port_close(t->port);
		t->port = NULL;
		return TR_ENOMEM;
	}
	t->thread_started = true;
	return TR_OK;
}

void tr__procs_stop(struct tr_node *n)
{
	struct tr__procs *t = n->procs;
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	for (struct tr__proc *r = t->head; r != NULL; r = r->next)
		tr__proc_signal_locked(t, r, SIGKILL, TR_REASON_KILLED);
	bool started = t->thread_started;
	pthread_mutex_unlock(&t->lock);
	tr__procs_wake(t);
	if (started)
		pthread_join(t->thread, NULL);
	/* Without a thread nothing was launched. */
	pthread_mutex_lock(&t->lock);
	while (t->head != NULL)
		tr__proc_free_locked(t, t->head);
	pthread_mutex_unlock(&t->lock);
	if (t->port != NULL)
		tr_port_close(t->port);
	t->port = NULL;
	t->thread_started = false;
	size_t cl = strlen(t->cookie);
	memset(t->cookie, 0, cl);
}

void tr__procs_fini(struct tr_node *n)
{
	struct tr__procs *t = n->procs;
	if (t == NULL)
		return;
	close(t->wake[0]);
	close(t->wake[1]);
	pthread_mutex_destroy(&t->lock);
	free(t->cookie);
	free(t);
	n->procs = NULL;
}

/* ---- the node's hooks ---------------------------------------------------- */

bool tr__proc_is_child(struct tr_node *n, const char *name)
{
	struct tr__procs *t = n->procs;
	if (t == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	bool is = tr__proc_by_node_locked(t, name) != NULL;
	pthread_mutex_unlock(&t->lock);
	return is;
}

bool tr__proc_hold(struct tr_node *n, const char *name, struct tr__xlink *links,
    uint32_t nl, struct tr__xmon *mons, uint32_t nm)
{
	struct tr__procs *t = n->procs;
	if (t == NULL)
		return false;
	pthread_mutex_lock(&t->lock);
	struct tr__proc *r = tr__proc_by_node_locked(t, name);
	if (r == NULL || r->root_ended) {
		if (r != NULL)
			r->torn = true;
		pthread_mutex_unlock(&t->lock);
		return false;
	}
	r->torn = true;
	r->held = true;
	r->links = links;
	r->nlinks = nl;
	r->mons = mons;
	r->nmons = nm;
	if (!r->reaped)
		r->silent_by = tr__node_now_ms() + SILENT_GRACE_MS;
	pthread_mutex_unlock(&t->lock);
	tr__procs_wake(t);
	return true;
}

void tr__proc_exit_sent(
    struct tr_node *n, const char *name, tr_pid to, int reason)
{
	struct tr__procs *t = n->procs;
	if (t == NULL || reason == TR_REASON_NORMAL)
		return;
	pthread_mutex_lock(&t->lock);
	struct tr__proc *r = tr__proc_by_node_locked(t, name);
	if (r != NULL && tr_pid_eq(r->root, to) && !r->reaped) {
		if (reason == TR_REASON_KILL)
			tr__proc_signal_locked(t, r, SIGKILL, TR_REASON_KILLED);
		else if (r->term_at == 0)
			r->term_at = tr__node_now_ms() + r->term_ms;
	}
	pthread_mutex_unlock(&t->lock);
	tr__procs_wake(t);
}

void tr__proc_exit_seen(struct tr_node *n, const char *name, tr_pid from)
{
	struct tr__procs *t = n->procs;
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	struct tr__proc *r = tr__proc_by_node_locked(t, name);
	if (r != NULL && tr_pid_eq(r->root, from) && !r->root_ended) {
		/* Its end went to whoever watched it: the process is done,
		 * and EOF on its fd 3 tells it so. */
		r->root_ended = true;
		close_fd(&r->ctl_fd);
	}
	pthread_mutex_unlock(&t->lock);
}
