/*
 * Process children, the child's side (tr_proc_child_main): read the control
 * data from fd 3 (proc.c), start a node that knows only its parent (a warm
 * process then waits to be taken, proc_warm.c), run the root actor, say
 * READY, and exit when the root actor ends or the parent goes away. A
 * thread watches fd 3: EOF there means the parent has closed it (its
 * root's end was seen) or is gone, and the process exits at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "dist.h"
#include "proc_int.h"
#include "troupe/pid.h"

#define CTL_FD 3
#define EXIT_ORPHAN 70
#define EXIT_BADSTART 71
#define CONNECT_MS 10000

struct ctl {
	char *cookie, *url, *node, *behaviour, *listen;
	unsigned char *reply, *arg;
	uint32_t reply_len, arg_len;
	uint32_t flags;
};

static int read_full(int fd, void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t k = read(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

/* A little-endian uint32_t. */
static uint32_t get_u32(const unsigned char *b)
{
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
	       (uint32_t)b[3] << 24;
}

static unsigned char *read_field(int fd, uint32_t *len, uint32_t max)
{
	unsigned char b[4];
	if (read_full(fd, b, 4) != 0)
		return NULL;
	uint32_t l = get_u32(b);
	if (l > max)
		return NULL;
	unsigned char *p = malloc((size_t)l + 1);
	if (p == NULL || read_full(fd, p, l) != 0) {
		free(p);
		return NULL;
	}
	p[l] = '\0';
	*len = l;
	return p;
}

static int read_ctl(struct ctl *c)
{
	unsigned char h[8];
	uint32_t l;
	if (read_full(CTL_FD, h, 8) != 0 || memcmp(h, "TRPC", 4) != 0 ||
	    h[4] != 2)
		return -1;
	c->cookie = (char *)read_field(CTL_FD, &l, 4096);
	c->url = (char *)read_field(CTL_FD, &l, 1024);
	c->node = (char *)read_field(CTL_FD, &l, TR_NODE_NAME_MAX);
	c->reply = read_field(CTL_FD, &c->reply_len, TR_PID_ENCODED_MAX);
	c->behaviour = (char *)read_field(CTL_FD, &l, TR_NAME_MAX);
	c->arg = read_field(CTL_FD, &c->arg_len, TR_PROC_ARG_MAX);
	c->listen = (char *)read_field(CTL_FD, &l, 1024);
	unsigned char *f = read_field(CTL_FD, &l, 4);
	if (f == NULL || l != 4) {
		free(f);
		return -1;
	}
	c->flags = get_u32(f);
	free(f);
	return c->cookie && c->url && c->node && c->reply && c->behaviour &&
	               c->arg && c->listen
	           ? 0
	           : -1;
}

static int no_seeds(void *user, tr_node_seed_add_fn *add, void *sink)
{
	(void)user;
	(void)add;
	(void)sink;
	return TR_OK;
}

/* EOF on fd 3: the parent is done with us, or gone. */
static void *ctl_watch(void *arg)
{
	(void)arg;
	char b[64];
	for (;;) {
		ssize_t k = read(CTL_FD, b, sizeof(b));
		if (k == 0 || (k < 0 && errno != EINTR))
			_exit(EXIT_ORPHAN);
	}
	return NULL;
}

static void ready(tr_port *port, tr_node *node, tr_pid reply, int32_t err,
    int32_t reason, tr_pid root)
{
	unsigned char buf[8 + TR_PID_ENCODED_MAX];
	size_t len = 0;
	memcpy(buf, &err, 4);
	memcpy(buf + 4, &reason, 4);
	if (err == TR_OK &&
	    tr_pid_encode(buf + 8, sizeof(buf) - 8, &len, node, root) != TR_OK)
		_exit(EXIT_BADSTART);
	(void)tr_port_send(port, reply, TR__PROC_READY, buf, 8 + len);
}

/* A start that failed here: says so, and exits once the parent has it
 * (it closes fd 3, and ctl_watch exits), or 5 s later. Not at once: the
 * READY would be lost with the process. */
static _Noreturn void refuse(
    tr_port *port, tr_node *node, tr_pid reply, int32_t err, int32_t reason)
{
	ready(port, node, reply, err, reason, TR_PID_NONE);
	sleep(5);
	_exit(EXIT_BADSTART);
}

/* A warm process: WARM to the start port, then wait, as long as the
 * parent's node is up, for the start that takes this process. */
static void warm_wait(tr_port *port, tr_pid reply)
{
	if (tr_port_send(port, reply, TR__PROC_WARM, NULL, 0) != TR_OK)
		_exit(EXIT_BADSTART);
	for (;;) {
		tr_msg *m = NULL;
		if (tr_port_recv(&m, port, -1) != TR_OK)
			continue;
		uint32_t type = m->type;
		tr_msg_free(m);
		if (type == TR__PROC_TAKE)
			return;
		if (type == TR_MSG_NODEDOWN)
			_exit(EXIT_ORPHAN);
	}
}

/* The root actor runs the named behaviour inside this one, whose init
 * says READY from the root itself once the behaviour's init has returned:
 * before anything the root does next (a crash right after its init is an
 * exit after a start that succeeded, as with OTP's start_link). */
struct root {
	const tr_behaviour *b;
	void *state;
};

static struct {
	const tr_behaviour *b;
	tr_blob *arg;
	tr_node *node;
	tr_port *port; /* this thread's, which runs the root's init */
	tr_pid reply;
	tr_behaviour wrap; /* b's name, this file's callbacks */
} root_start;

/* READY, then the parent's GO (the root's init runs on this thread, by
 * TR_SPAWN_SYNC_INIT, which owns the port). */
static void ready_go(tr_pid root)
{
	ready(
	    root_start.port, root_start.node, root_start.reply, TR_OK, 0, root);
	int64_t waited = 0;
	while (waited < CONNECT_MS) {
		tr_msg *m = NULL;
		if (tr_port_recv(&m, root_start.port, 1000) != TR_OK) {
			waited += 1000;
			continue;
		}
		uint32_t type = m->type;
		tr_msg_free(m);
		if (type == TR__PROC_GO)
			return;
		if (type == TR_MSG_NODEDOWN)
			_exit(EXIT_ORPHAN);
	}
	_exit(EXIT_BADSTART);
}

static int root_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct root *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return TR_SUP_REASON_NOSTART;
	r->b = root_start.b;
	int rc = TR_OK;
	if (r->b->init != NULL)
		rc = r->b->init(ctx, root_start.arg, &r->state);
	else
		r->state = root_start.arg;
	root_start.arg = NULL; /* the behaviour's now, as a spawn's */
	if (rc != TR_OK) {
		free(r);
		return rc;
	}
	*state = r;
	ready_go(tr_self(ctx));
	return TR_OK;
}

static int root_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct root *r = state;
	return r->b->handle(ctx, r->state, m);
}

static void root_terminate(tr_ctx *ctx, void *state, int reason)
{
	struct root *r = state;
	if (r->b->terminate != NULL)
		r->b->terminate(ctx, r->state, reason);
	free(r);
}

int tr_proc_child_main(tr_runtime *rt)
{
	const char *mark = getenv("TROUPE_PROC");
	long parent = 0;
	if (mark == NULL || sscanf(mark, "3:%ld", &parent) != 1)
		return TR_ENOENT;
	/* First of all: die with the parent (the launch left it to us, see
	 * proc_spawn.h), and a parent already gone is caught at once. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != (pid_t)parent)
		_exit(EXIT_ORPHAN);
	if (rt == NULL)
		_exit(EXIT_BADSTART);
	/* Nothing of this start is for the programs this one may run, nor
	 * are the parent's cluster settings for this node. */
	unsetenv("TROUPE_PROC");
	unsetenv("TROUPE_SEEDS");
	unsetenv("TROUPE_DNS");
	struct ctl c;
	memset(&c, 0, sizeof(c));
	if (read_ctl(&c) != 0) {
		fprintf(stderr, "process child: no start data on fd 3\n");
		_exit(EXIT_BADSTART);
	}
	(void)fcntl(CTL_FD, F_SETFD, FD_CLOEXEC);
	pthread_t w;
	if (pthread_create(&w, NULL, ctl_watch, NULL) != 0)
		_exit(EXIT_BADSTART);

	const char *none[] = {NULL};
	const char *listen[] = {c.listen, NULL};
	/* No seeds of any kind: neither TROUPE_SEEDS nor TROUPE_DNS, which
	 * the child inherits from a parent that is a member of a cluster,
	 * may make it dial the parent's peers. */
	static const tr_node_seed_source no_source = {.resolve = no_seeds};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = c.node;
	o.cookie = c.cookie;
	o.listen = listen;
	o.seeds = none;
	o.seed_source = &no_source;
	o.connect_all = TR_NODE_OFF;
	o.reconnect = TR_NODE_OFF;
	tr_node *node = NULL;
	tr_port *port = NULL;
	int rc = tr_node_start(&node, rt, &o);
	if (rc == TR_OK)
		rc = tr_port_open(&port, rt);
	if (rc == TR_OK)
		rc = tr_node_connect(node, c.url, CONNECT_MS, NULL);
	if (rc != TR_OK) {
		/* To the parent's log, through stderr. */
		fprintf(stderr, "process child %s: no node up to %s: %s\n",
		    c.node, c.url, tr_strerror(rc));
		_exit(EXIT_BADSTART);
	}
	memset(c.cookie, 0, strlen(c.cookie));
	tr_pid reply;
	if (tr_pid_decode(&reply, node, c.reply, c.reply_len) != TR_OK)
		_exit(EXIT_BADSTART);
	/* The parent is gone when its node is. */
	(void)tr_node_monitor_port(node, port, NULL, true);
	if ((c.flags & TR__PROC_CTL_WARM) != 0)
		warm_wait(port, reply);

	const tr_behaviour *b = tr__dist_behaviour_find(rt, c.behaviour);
	if (b == NULL)
		refuse(port, node, reply, TR_EINIT, TR_REASON_NOPROC);
	tr_blob *blob = malloc(sizeof(*blob) + c.arg_len);
	if (blob == NULL)
		_exit(EXIT_BADSTART);
	blob->size = c.arg_len;
	memcpy(blob->data, c.arg, c.arg_len);
	root_start.b = b;
	root_start.arg = blob;
	root_start.node = node;
	root_start.port = port;
	root_start.reply = reply;
	root_start.wrap =
	    (tr_behaviour){b->name, root_init, root_handle, root_terminate};
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_SYNC_INIT;
	int reason = 0;
	so.init_reason = &reason;
	tr_pid root;
	rc = tr_spawn(&root, rt, &root_start.wrap, NULL, &so);
	if (rc != TR_OK)
		refuse(port, node, reply, rc == TR_EINIT ? TR_EINIT : rc,
		    rc == TR_EINIT ? reason : 0);
	/* Until the root actor ends (the parent saw its end and closes fd
	 * 3: ctl_watch exits) or the parent's node is gone. */
	for (;;) {
		tr_msg *m = NULL;
		if (tr_port_recv(&m, port, 1000) == TR_OK) {
			bool down = m->type == TR_MSG_NODEDOWN;
			tr_msg_free(m);
			if (down)
				_exit(EXIT_ORPHAN);
		}
		/* Ended, and a second later fd 3 is still open: no one on
		 * the parent's side watched it. */
		if (!tr_is_alive(rt, root)) {
			sleep(1);
			_exit(0);
		}
	}
}
