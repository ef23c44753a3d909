/*
 * The fixture of the multi-process node tests: this process's runtime and
 * node, the test node processes it starts (node_main.c), a port to wait
 * on, and the node's log lines kept for checks. Include after common.h
 * and node_child.h, with TICK_MS, WAIT_MS and MAX_CHILDREN defined and
 * TT_NODE_MAIN the path of the test node program.
 */
#ifndef TT_NODE_ENV_H
#define TT_NODE_ENV_H

#include <pthread.h>
#include <stdlib.h>

#include <troupe/node.h>

struct env {
	bool tcp; /* else ipc */
	char dir[256];
	tr_runtime *rt;
	tr_node *node;
	tr_port *port;
	tr_pid agent;
	struct child kids[MAX_CHILDREN];
	int nkids;
	char logbuf[16384]; /* the node's log lines, to check refusals */
	pthread_mutex_t loglock;
};

static inline void env_log(void *user, const char *line)
{
	struct env *e = user;
	pthread_mutex_lock(&e->loglock);
	size_t l = strlen(e->logbuf);
	snprintf(e->logbuf + l, sizeof(e->logbuf) - l, "%s\n", line);
	pthread_mutex_unlock(&e->loglock);
	if (getenv("TT_NODE_VERBOSE") != NULL)
		fprintf(stderr, "[test] %s\n", line);
}

static inline bool log_has(struct env *e, const char *s)
{
	pthread_mutex_lock(&e->loglock);
	bool r = strstr(e->logbuf, s) != NULL;
	pthread_mutex_unlock(&e->loglock);
	return r;
}

static inline void url_for(
    struct env *e, char *buf, size_t cap, const char *tag, bool tls)
{
	if (tls)
		snprintf(buf, cap, "tls+tcp://127.0.0.1:0");
	else if (e->tcp)
		snprintf(buf, cap, "tcp://127.0.0.1:0");
	else
		snprintf(buf, cap, "ipc://%s/%s.sock", e->dir, tag);
}

/* The options this node starts with (node_up), for a test that changes
 * some of them before its own tr_node_start: `o` names it `name`,
 * listening on url_for's address, with cookie "secret" and TICK_MS; with
 * `tls`, over TLS with the certificates in e->dir. The strings `o` points
 * to are the struct's own, so it must outlive the start. */
struct node_conf {
	char url[300], ca[300], cert[300], key[300];
	const char *listen[2];
	tr_node_opts o;
};

static inline void node_conf_init(
    struct node_conf *c, struct env *e, const char *name, bool tls)
{
	url_for(e, c->url, sizeof(c->url), name, tls);
	c->listen[0] = c->url;
	c->listen[1] = NULL;
	tr_node_opts_init(&c->o);
	c->o.name = name;
	c->o.listen = c->listen;
	c->o.cookie = "secret";
	c->o.tick_ms = TICK_MS;
	if (tls) {
		snprintf(c->ca, sizeof(c->ca), "%s/ca.pem", e->dir);
		snprintf(c->cert, sizeof(c->cert), "%s/t.crt", e->dir);
		snprintf(c->key, sizeof(c->key), "%s/t.key", e->dir);
		c->o.tls_ca_file = c->ca;
		c->o.tls_cert_file = c->cert;
		c->o.tls_key_file = c->key;
	}
}

/* Starts this node as node_conf_init describes it; returns as
 * tr_node_start. */
static inline int node_up(struct env *e, const char *name, bool tls)
{
	struct node_conf c;
	node_conf_init(&c, e, name, tls);
	return tr_node_start(&e->node, e->rt, &c.o);
}

static inline int setup(void **state, bool tcp)
{
	struct env *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	pthread_mutex_init(&e->loglock, NULL);
	e->tcp = tcp;
	const char *tmp = getenv("TMPDIR");
	snprintf(e->dir, sizeof(e->dir), "%s/troupe-node-XXXXXX",
	    tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(e->dir) == NULL)
		return -1;
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 2;
	if (tr_runtime_start(&e->rt, &ro) != TR_OK)
		return -1;
	tr_runtime_set_log(e->rt, env_log, e);
	if (tr_port_open(&e->port, e->rt) != TR_OK)
		return -1;
	*state = e;
	alarm(120);
	return 0;
}

static inline int setup_ipc(void **state)
{
	return setup(state, false);
}

static inline int setup_tcp(void **state)
{
	return setup(state, true);
}

static inline int teardown(void **state)
{
	struct env *e = *state;
	for (int i = 0; i < e->nkids; i++)
		kill_child(&e->kids[i]);
	if (e->port != NULL)
		tr_port_close(e->port);
	tr_node_stop(e->node);
	tr_runtime_stop(e->rt);
	rm_tree(e->dir);
	pthread_mutex_destroy(&e->loglock);
	free(e);
	alarm(0);
	return 0;
}

/* Starts a test node; returns its index in e->kids, or -1 (the test then
 * fails). `args` is a NULL-terminated list of extra options. */
static inline int child_start(struct env *e, const char *name,
    const char *cookie, const char *const *args, bool tls)
{
	if (e->nkids == MAX_CHILDREN)
		return -1;
	struct child *c = &e->kids[e->nkids];
	char url[300];
	url_for(e, url, sizeof(url), name, tls);
	const char *argv[16];
	int k = 0;
	argv[k++] = TT_NODE_MAIN;
	argv[k++] = name;
	argv[k++] = url;
	argv[k++] = cookie;
	for (int i = 0; args != NULL && args[i] != NULL && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	int rc = child_spawn(c, argv, name, WAIT_MS);
	if (c->pid > 0)
		e->nkids++; /* the teardown reaps it either way */
	return rc == 0 ? e->nkids - 1 : -1;
}

/* Starts test node `name` (child_start: cookie "secret", no TLS, the
 * extra options `args`) and connects this node to it, waiting up to
 * WAIT_MS: on return the child is up, a peer that answered as `name`.
 * Returns its index in e->kids; fails the test if it did not start, did
 * not connect, or answered as another node. */
static inline int child_up(
    struct env *e, const char *name, const char *const *args)
{
	int k = child_start(e, name, "secret", args, false);
	assert_true(k >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	assert_string_equal(peer, name);
	return k;
}

static inline tr_pid remote_echo(struct env *e, const char *node)
{
	tr_pid pid;
	assert_rc(tr_node_whereis(&pid, e->node, node, "echo", WAIT_MS), TR_OK);
	assert_int_not_equal(pid.node, 0);
	return pid;
}

static inline void call_ok(struct env *e, tr_pid pid)
{
	tr_msg *r;
	const char q[] = "ping";
	assert_rc(tr_call(&r, e->rt, pid, 7, q, sizeof(q), WAIT_MS), TR_OK);
	assert_int_equal(r->type, 7);
	assert_int_equal(r->size, sizeof(q));
	assert_memory_equal(r->data, q, sizeof(q));
	assert_true(tr_pid_eq(r->sender, pid));
	tr_msg_free(r);
}

#endif
