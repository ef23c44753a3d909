/*
 * Multi-process tests of three or more nodes: this process is node A
 * ("tnode"), the others are real processes running the test node program
 * (node_main.c) with its "probe" actor (--probe, test_node_proto.h).
 *
 * - A pid of node C passed to node B by node A, in an envelope's sender
 *   field: B sends to it directly, and links and monitors through it fire
 *   with noconnection when C is killed.
 * - Node monitors for every node (NODEUP, NODEDOWN), for a node that is
 *   not connected (NODEDOWN at once), and turned off.
 * - A pid of an earlier incarnation of C passed to B is refused there too:
 *   it never reaches the actor of the new incarnation in the same slot.
 * - tr_node_whereis asks the node it names and no other: names found on B
 *   and on C give working pids, names missing there give TR_ENOENT, nodes
 *   not connected to this one TR_ENOPROC, and a pid of B found so and
 *   passed on to C reaches B's actor.
 *
 * These are the rules of pairs of nodes, so every node here runs with
 * transitive connect and reconnecting off (connect_all, reconnect):
 * otherwise B's gossip would connect this node to D and C, and a killed
 * node would be dialled again. test_node_cluster tests both.
 *
 * As in test_node.c: every test runs under alarm() over ipc:// (in a fresh
 * temporary directory) and over tcp://127.0.0.1; the fixture kills and
 * reaps the children even when a test fails, and the children ask the
 * kernel to kill them if this process dies. The tick is 100 ms and a
 * peer must be declared down within 20 ticks (behaviour, not timing).
 */
#include "common.h"

#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <troupe/node.h>

#include "node_child.h"
#include "rt.h"
#include "test_node_proto.h"

#define TICK_MS 100
#define DOWN_BOUND_MS (20 * TICK_MS)
#define WAIT_MS 10000
#define QUIET_MS (5 * TICK_MS)
#define MAX_CHILDREN 4
#define MAX_STASH 64

/* Agent commands, posted by the test thread; agent -> port messages. */
enum {
	CMD_MONNODE = 200, /* struct monnode: tr_monitor_node */
	CMD_SYNC,          /* nothing: answered with T_RC */
	T_FWD = 300,       /* a message the agent got (struct fwd) */
	T_RC,              /* int32_t result of a command */
};

struct monnode {
	char node[64]; /* "" for every node */
	bool on;
};

struct fwd {
	uint32_t type;
	tr_pid sender;
	uint32_t size;
	unsigned char data[256];
};

/* ---- the agent: an actor of this node the test thread drives ------------ */

static int agent_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int agent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	int32_t rc;
	switch (m->type) {
	case CMD_MONNODE: {
		struct monnode mn;
		memset(&mn, 0, sizeof(mn));
		memcpy(
		    &mn, m->data, m->size < sizeof(mn) ? m->size : sizeof(mn));
		mn.node[sizeof(mn.node) - 1] = '\0';
		rc = tr_monitor_node(
		    ctx, mn.node[0] != '\0' ? mn.node : NULL, mn.on);
		(void)tr_send(ctx, *port, T_RC, &rc, sizeof(rc));
		return 0;
	}
	case CMD_SYNC:
		rc = TR_OK;
		(void)tr_send(ctx, *port, T_RC, &rc, sizeof(rc));
		return 0;
	default:
		break;
	}
	struct fwd f;
	memset(&f, 0, sizeof(f));
	f.type = m->type;
	f.sender = m->sender;
	f.size = m->size;
	memcpy(f.data, m->data,
	    m->size < sizeof(f.data) ? m->size : sizeof(f.data));
	(void)tr_send(ctx, *port, T_FWD, &f, sizeof(f));
	return 0;
}

static void agent_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour agent_b = {
    "agent", agent_init, agent_handle, agent_terminate};

/* ---- the fixture -------------------------------------------------------- */

/* A port with the messages taken from it that no wait wanted yet. */
struct inbox {
	tr_port *port;
	tr_msg *stash[MAX_STASH];
	int n;
};

struct env {
	bool tcp; /* else ipc */
	char dir[256];
	tr_runtime *rt;
	tr_node *node;
	struct inbox in[2]; /* 0: probe reports; 0 and 1: the agents */
	tr_pid agent[2];
	struct child kids[MAX_CHILDREN];
	int nkids;
};

static void quiet_log(void *user, const char *line)
{
	(void)user;
	if (getenv("TT_NODE_VERBOSE") != NULL)
		fprintf(stderr, "[test] %s\n", line);
}

static void url_for(struct env *e, char *buf, size_t cap, const char *tag)
{
	if (e->tcp)
		snprintf(buf, cap, "tcp://127.0.0.1:0");
	else
		snprintf(buf, cap, "ipc://%s/%s.sock", e->dir, tag);
}

static int setup(void **state, bool tcp)
{
	struct env *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	*state = e;
	e->tcp = tcp;
	alarm(120);
	const char *tmp = getenv("TMPDIR");
	snprintf(e->dir, sizeof(e->dir), "%s/troupe-mesh-XXXXXX",
	    tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(e->dir) == NULL)
		return -1;
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 2;
	if (tr_runtime_start(&e->rt, &ro) != TR_OK)
		return -1;
	tr_runtime_set_log(e->rt, quiet_log, NULL);
	for (int i = 0; i < 2; i++)
		if (tr_port_open(&e->in[i].port, e->rt) != TR_OK)
			return -1;
	char url[300];
	url_for(e, url, sizeof(url), "tnode");
	const char *listen[2] = {url, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "tnode";
	o.listen = listen;
	o.cookie = "secret";
	o.tick_ms = TICK_MS;
	o.connect_all = TR_NODE_OFF;
	o.reconnect = TR_NODE_OFF;
	if (tr_node_start(&e->node, e->rt, &o) != TR_OK)
		return -1;
	return 0;
}

static int setup_ipc(void **state)
{
	return setup(state, false);
}

static int setup_tcp(void **state)
{
	return setup(state, true);
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e == NULL)
		return 0;
	for (int i = 0; i < e->nkids; i++)
		kill_child(&e->kids[i]);
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < e->in[i].n; k++)
			tr_msg_free(e->in[i].stash[k]);
		if (e->in[i].port != NULL)
			tr_port_close(e->in[i].port);
	}
	tr_node_stop(e->node);
	if (e->rt != NULL)
		tr_runtime_stop(e->rt);
	if (e->dir[0] != '\0')
		rm_tree(e->dir);
	free(e);
	alarm(0);
	return 0;
}

/* Starts a test node with the extra options `args` (NULL-terminated);
 * returns its index in e->kids, or -1. */
static int child_start(struct env *e, const char *name, const char *const *args)
{
	if (e->nkids == MAX_CHILDREN)
		return -1;
	struct child *c = &e->kids[e->nkids];
	char url[300];
	url_for(e, url, sizeof(url), name);
	const char *argv[16];
	int k = 0;
	argv[k++] = TT_NODE_MAIN;
	argv[k++] = name;
	argv[k++] = url;
	argv[k++] = "secret";
	argv[k++] = "--connect-all";
	argv[k++] = "0";
	argv[k++] = "--reconnect";
	argv[k++] = "0";
	for (int i = 0; args != NULL && args[i] != NULL && k < 15; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	int rc = child_spawn(c, argv, name, WAIT_MS);
	if (c->pid > 0)
		e->nkids++; /* the teardown reaps it either way */
	return rc == 0 ? e->nkids - 1 : -1;
}

/* A test node with a probe, connected to this one; its index in kids. */
static int probe_node(struct env *e, const char *name, const char *dial)
{
	const char *args[] = {"--probe", dial ? "--connect" : NULL, dial, NULL};
	int k = child_start(e, name, args);
	assert_true(k >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	assert_string_equal(peer, name);
	return k;
}

static void start_agent(struct env *e, int i)
{
	tr_pid *port = malloc(sizeof(*port));
	assert_non_null(port);
	*port = tr_port_pid(e->in[i].port);
	assert_rc(tr_spawn(&e->agent[i], e->rt, &agent_b, port, NULL), TR_OK);
}

typedef bool (*want_fn)(const tr_msg *m, const void *arg);

/* The first message on inbox `i` that `want` accepts, stashed or new; or
 * NULL after `ms`. The caller frees it. */
static tr_msg *inbox_take(
    struct env *e, int i, want_fn want, const void *arg, int64_t ms)
{
	struct inbox *in = &e->in[i];
	for (int k = 0; k < in->n; k++) {
		tr_msg *m = in->stash[k];
		if (want(m, arg)) {
			memmove(&in->stash[k], &in->stash[k + 1],
			    (size_t)(in->n - k - 1) * sizeof(in->stash[0]));
			in->n--;
			return m;
		}
	}
	int64_t dl = tt_now_ms() + ms;
	for (;;) {
		int64_t left = dl - tt_now_ms();
		if (left < 0)
			return NULL;
		tr_msg *m;
		if (tr_port_recv(&m, in->port, left) != TR_OK)
			return NULL;
		if (want(m, arg))
			return m;
		if (in->n == MAX_STASH)
			tr_msg_free(m);
		else
			in->stash[in->n++] = m;
	}
}

struct report_want {
	tr_pid from;
	uint32_t what;
};

static bool want_report(const tr_msg *m, const void *arg)
{
	const struct report_want *w = arg;
	struct tt_probe_report r;
	if (m->type != TT_PROBE_REPORT || m->size != sizeof(r) ||
	    !tr_pid_eq(m->sender, w->from))
		return false;
	memcpy(&r, m->data, sizeof(r));
	return r.what == w->what;
}

/* The next report `what` of the probe `from`; fails the test after `ms`. */
static struct tt_probe_report report_of(
    struct env *e, tr_pid from, uint32_t what, int64_t ms)
{
	struct report_want w = {from, what};
	tr_msg *m = inbox_take(e, 0, want_report, &w, ms);
	if (m == NULL)
		fail_msg("no report %u from the probe", (unsigned)what);
	struct tt_probe_report r;
	memcpy(&r, m->data, sizeof(r));
	tr_msg_free(m);
	return r;
}

static bool has_report(struct env *e, tr_pid from, uint32_t what, int64_t ms)
{
	struct report_want w = {from, what};
	tr_msg *m = inbox_take(e, 0, want_report, &w, ms);
	tr_msg_free(m);
	return m != NULL;
}

static bool want_type(const tr_msg *m, const void *arg)
{
	const uint32_t *t = arg;
	if (m->type != t[0])
		return false;
	return m->type != T_FWD || ((const struct fwd *)m->data)->type == t[1];
}

/* Posts a command to agent `i` and returns its result. */
static int agent_cmd(
    struct env *e, int i, uint32_t cmd, const void *data, size_t size)
{
	assert_rc(tr_post(e->rt, e->agent[i], cmd, data, size), TR_OK);
	uint32_t t[2] = {T_RC, 0};
	tr_msg *m = inbox_take(e, i, want_type, t, WAIT_MS);
	assert_non_null(m);
	int32_t rc;
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	return rc;
}

static int monitor_node(struct env *e, int i, const char *node, bool on)
{
	struct monnode mn;
	memset(&mn, 0, sizeof(mn));
	snprintf(mn.node, sizeof(mn.node), "%s", node ? node : "");
	mn.on = on;
	return agent_cmd(e, i, CMD_MONNODE, &mn, sizeof(mn));
}

/* Takes the next node event `type` of agent `i` about `node`; false if
 * none comes within `ms`. Events about other nodes stay stashed. */
struct event_want {
	uint32_t type;
	const char *node;
};

static bool want_event(const tr_msg *m, const void *arg)
{
	const struct event_want *w = arg;
	const struct fwd *f = (const void *)m->data;
	tr_node_event ev;
	if (m->type != T_FWD || f->type != w->type || f->size != sizeof(ev))
		return false;
	memcpy(&ev, f->data, sizeof(ev));
	return strcmp(ev.node, w->node) == 0;
}

static bool node_event(
    struct env *e, int i, uint32_t type, const char *node, int64_t ms)
{
	struct event_want w = {type, node};
	tr_msg *m = inbox_take(e, i, want_event, &w, ms);
	tr_msg_free(m);
	return m != NULL;
}

static bool any_event(struct env *e, int i)
{
	uint32_t t[2] = {T_FWD, TR_MSG_NODEUP};
	tr_msg *m = inbox_take(e, i, want_type, t, 0);
	if (m == NULL) {
		t[1] = TR_MSG_NODEDOWN;
		m = inbox_take(e, i, want_type, t, 0);
	}
	tr_msg_free(m);
	return m != NULL;
}

static tr_pid remote_probe(struct env *e, const char *node)
{
	tr_pid pid;
	assert_rc(
	    tr_node_whereis(&pid, e->node, node, "probe", WAIT_MS), TR_OK);
	assert_int_not_equal(pid.node, 0);
	return pid;
}

/* Makes this process the probe's reporter. */
static void subscribe(struct env *e, tr_pid probe)
{
	assert_rc(
	    tr_port_send(e->in[0].port, probe, TT_PROBE_SUB, NULL, 0), TR_OK);
	(void)report_of(e, probe, TT_R_SUB, WAIT_MS);
}

/*
 * Sends `to` a message whose sender is `from`, a pid of a third node: what
 * a middle node that passes a pid on puts on the wire. The public API
 * cannot do this (every send carries the sending actor's own pid, and pids
 * must not travel in payloads), so the test hands the message to the
 * runtime's internal delivery with the sender filled in; the node layer
 * then encodes `from` into the envelope's sender field with its node's
 * name and incarnation, as for any sender.
 */
static int send_as(struct env *e, tr_pid from, tr_pid to, uint32_t type,
    const void *data, size_t size)
{
	tr_msg *m;
	int rc = tr_msg_alloc(&m, e->rt, type, size);
	if (rc != TR_OK)
		return rc;
	memcpy(m->data, data, size);
	m->sender = from;
	m->ref = 0;
	m->_flags &= TR__MF_CLASS;
	rc = tr__deliver_any(e->rt, to, m);
	if (rc != TR_OK)
		tr_msg_free(m);
	return rc;
}

/* A report names `pid` (a pid of node `node`, as this node knows it). */
static void assert_names(
    const struct tt_probe_report *r, const char *node, tr_pid pid)
{
	assert_rc(r->name_rc, TR_OK);
	assert_string_equal(r->node, node);
	assert_int_equal(r->slot, pid.slot);
	assert_int_equal(r->gen, pid.gen);
}

/* Has the probe `probe` register a fresh echo actor as `name` on its node
 * (`type` TT_PROBE_REG) or unregister `name` (TT_PROBE_UNREG); returns its
 * report. */
static struct tt_probe_report name_cmd(
    struct env *e, tr_pid probe, uint32_t type, const char *name)
{
	assert_rc(tr_port_send(e->in[0].port, probe, type, name, strlen(name)),
	    TR_OK);
	return report_of(
	    e, probe, type == TT_PROBE_REG ? TT_R_REG : TT_R_UNREG, WAIT_MS);
}

/* A call to `pid` is answered by `pid` with a copy of the request. */
static void call_ok(struct env *e, tr_pid pid)
{
	const char q[] = "ping";
	tr_msg *r;
	assert_rc(tr_call(&r, e->rt, pid, 7, q, sizeof(q), WAIT_MS), TR_OK);
	assert_int_equal(r->type, 7);
	assert_int_equal(r->size, sizeof(q));
	assert_memory_equal(r->data, q, sizeof(q));
	assert_true(tr_pid_eq(r->sender, pid));
	tr_msg_free(r);
}

/* tr_node_whereis of `name` on `node` gives the pid of `node` that the
 * TT_R_REG report `reg` names, and that pid answers a call. */
static tr_pid found_on(struct env *e, const char *node, const char *name,
    const struct tt_probe_report *reg)
{
	tr_pid pid;
	char where[TR_NODE_NAME_MAX + 1];
	assert_rc(tr_node_whereis(&pid, e->node, node, name, WAIT_MS), TR_OK);
	assert_int_not_equal(pid.node, 0);
	assert_rc(tr_node_name_of(where, sizeof(where), e->node, pid), TR_OK);
	assert_string_equal(where, node);
	assert_names(reg, node, pid);
	call_ok(e, pid);
	return pid;
}

/* ---- tests -------------------------------------------------------------- */

/* B learns the pid of C's probe from an envelope that A sent, sends to it
 * directly, and C's probe sees B's probe as the sender. B then links to
 * and monitors it through that pid; SIGKILL on C fires both with
 * noconnection. */
static void test_third_node_pid(void **state)
{
	struct env *e = *state;
	int c = probe_node(e, "gamma", NULL);
	probe_node(e, "beta", e->kids[c].url); /* B dials C */
	tr_pid pb = remote_probe(e, "beta");
	tr_pid pc = remote_probe(e, "gamma");
	subscribe(e, pb);
	subscribe(e, pc);

	uint64_t seq = 77;
	assert_rc(send_as(e, pc, pb, TT_PROBE_INTRO, &seq, sizeof(seq)), TR_OK);
	struct tt_probe_report r = report_of(e, pb, TT_R_INTRO, WAIT_MS);
	assert_rc(r.rc, TR_OK);
	assert_names(&r, "gamma", pc);
	r = report_of(e, pc, TT_R_HELLO, WAIT_MS);
	assert_int_equal(r.seq, 77);
	assert_names(&r, "beta", pb);

	/* The ping goes after the link and monitor, in per-pair order: the
	 * pong means C holds both. */
	assert_rc(
	    tr_port_send(e->in[0].port, pb, TT_PROBE_WATCH, NULL, 0), TR_OK);
	r = report_of(e, pb, TT_R_WATCH, WAIT_MS);
	assert_rc(r.rc, TR_OK);
	assert_rc(r.rc2, TR_OK);
	r = report_of(e, pb, TT_R_PONG, WAIT_MS);
	assert_names(&r, "gamma", pc);

	kill_child(&e->kids[c]);
	r = report_of(e, pb, TT_R_EXIT, DOWN_BOUND_MS + 2000);
	assert_int_equal(r.reason, TR_REASON_NOCONNECTION);
	assert_names(&r, "gamma", pc);
	r = report_of(e, pb, TT_R_DOWN, DOWN_BOUND_MS + 2000);
	assert_int_equal(r.reason, TR_REASON_NOCONNECTION);
	assert_int_equal(r.seq, 1); /* the monitor's own ref */
	assert_names(&r, "gamma", pc);
}

/* tr_monitor_node for every node: NODEUP for a node we dial and for one
 * that dials us, NODEDOWN with its name when one is killed; for a node
 * not connected, NODEDOWN at once; turned off, nothing more. Agent 1
 * subscribes to every node all along, as the control that events did
 * happen. */
static void test_monitor_all_nodes(void **state)
{
	struct env *e = *state;
	start_agent(e, 0);
	start_agent(e, 1);
	assert_rc(monitor_node(e, 0, NULL, true), TR_OK);
	assert_rc(monitor_node(e, 1, NULL, true), TR_OK);

	int b = probe_node(e, "beta", NULL);
	assert_true(node_event(e, 0, TR_MSG_NODEUP, "beta", WAIT_MS));
	const char *dial[] = {
	    "--connect", tr_node_listen_url(e->node, 0), NULL};
	int c = child_start(e, "gamma", dial);
	assert_true(c >= 0);
	assert_true(node_event(e, 0, TR_MSG_NODEUP, "gamma", WAIT_MS));

	assert_rc(monitor_node(e, 0, "nosuch", true), TR_OK);
	assert_true(node_event(e, 0, TR_MSG_NODEDOWN, "nosuch", 2000));

	kill_child(&e->kids[b]);
	assert_true(node_event(e, 0, TR_MSG_NODEDOWN, "beta", DOWN_BOUND_MS));
	assert_true(node_event(e, 1, TR_MSG_NODEDOWN, "beta", DOWN_BOUND_MS));

	/* Off: agent 0 hears no more, agent 1 still does. */
	assert_rc(monitor_node(e, 0, NULL, false), TR_OK);
	assert_rc(agent_cmd(e, 0, CMD_SYNC, NULL, 0), TR_OK);
	assert_false(any_event(e, 0));
	kill_child(&e->kids[c]);
	assert_true(node_event(e, 1, TR_MSG_NODEDOWN, "gamma", DOWN_BOUND_MS));
	int d = child_start(e, "delta", dial);
	assert_true(d >= 0);
	assert_true(node_event(e, 1, TR_MSG_NODEUP, "delta", WAIT_MS));
	tt_sleep_ms(QUIET_MS);
	assert_rc(agent_cmd(e, 0, CMD_SYNC, NULL, 0), TR_OK);
	assert_false(any_event(e, 0));
	assert_rc(monitor_node(e, 1, NULL, false), TR_OK);
}

/* C restarts; A passes B a pid of C's previous incarnation, which names
 * the same slot as C's new probe. B's send to it fails with TR_ENOPROC,
 * link and monitor answer noproc, and C's new probe never gets it: the
 * first hello it gets from B is the one sent to its own pid. */
static void test_stale_third_node(void **state)
{
	struct env *e = *state;
	start_agent(e, 0);
	int c1 = probe_node(e, "gamma", NULL);
	tr_pid old = remote_probe(e, "gamma");
	assert_rc(monitor_node(e, 0, "gamma", true), TR_OK);
	kill_child(&e->kids[c1]);
	assert_true(
	    node_event(e, 0, TR_MSG_NODEDOWN, "gamma", DOWN_BOUND_MS + 2000));

	int c2 = probe_node(e, "gamma", NULL);
	assert_true(node_event(e, 0, TR_MSG_NODEUP, "gamma", WAIT_MS));
	probe_node(e, "beta", e->kids[c2].url);
	tr_pid pb = remote_probe(e, "beta");
	tr_pid pc = remote_probe(e, "gamma");
	assert_int_not_equal(pc.node, old.node);
	/* Both runs spawn the same actors in the same order. */
	assert_int_equal(pc.slot, old.slot);
	assert_int_equal(pc.gen, old.gen);
	subscribe(e, pb);
	subscribe(e, pc);

	uint64_t seq = 1;
	assert_rc(
	    send_as(e, old, pb, TT_PROBE_INTRO, &seq, sizeof(seq)), TR_OK);
	struct tt_probe_report r = report_of(e, pb, TT_R_INTRO, WAIT_MS);
	assert_rc(r.rc, TR_ENOPROC);
	assert_names(&r, "gamma", old);

	assert_rc(
	    tr_port_send(e->in[0].port, pb, TT_PROBE_WATCH, NULL, 0), TR_OK);
	r = report_of(e, pb, TT_R_WATCH, WAIT_MS);
	assert_rc(r.rc, TR_ENOPROC); /* tr_link */
	assert_rc(r.rc2, TR_OK);     /* tr_monitor: DOWN follows */
	r = report_of(e, pb, TT_R_EXIT, WAIT_MS);
	assert_int_equal(r.reason, TR_REASON_NOPROC);
	assert_names(&r, "gamma", old);
	r = report_of(e, pb, TT_R_DOWN, WAIT_MS);
	assert_int_equal(r.reason, TR_REASON_NOPROC);
	assert_int_equal(r.seq, 1);
	assert_names(&r, "gamma", old);

	/* The current pid works, and is the first thing C's probe hears of
	 * B (per-pair order: a stale hello would have come first). */
	seq = 2;
	assert_rc(send_as(e, pc, pb, TT_PROBE_INTRO, &seq, sizeof(seq)), TR_OK);
	r = report_of(e, pb, TT_R_INTRO, WAIT_MS);
	assert_rc(r.rc, TR_OK);
	assert_names(&r, "gamma", pc);
	r = report_of(e, pc, TT_R_HELLO, WAIT_MS);
	assert_int_equal(r.seq, 2);
	assert_names(&r, "beta", pb);
	assert_false(has_report(e, pc, TT_R_HELLO, QUIET_MS));
	assert_false(has_report(e, pc, TT_R_EXIT, 0));
	assert_false(has_report(e, pc, TT_R_DOWN, 0));
}

/* tr_node_whereis with three nodes: this one (A) connected to B and C, C
 * connected to B as well, and D connected to B only.
 *
 * Names registered at run time on B and on C (by their probes, as fresh
 * echo actors) are found on the node asked, as pids of that node that
 * answer calls; the probes found by name hear what is sent to them. The
 * node asked is the only one asked: B's name on C, C's on B, a name on
 * neither and B's name once unregistered there are TR_ENOENT (the pid
 * found before still works: it never depended on the name). A node never
 * connected and D (connected to B, but no transitive connect) are
 * TR_ENOPROC. B's probe pid, found by whereis and passed to C in an
 * envelope's sender field, takes C's send to B's probe. */
static void test_whereis_three_nodes(void **state)
{
	struct env *e = *state;
	int b = probe_node(e, "beta", NULL);
	probe_node(e, "gamma", e->kids[b].url); /* C dials B */
	tr_pid pb = remote_probe(e, "beta");
	tr_pid pc = remote_probe(e, "gamma");
	assert_int_not_equal(pb.node, pc.node);
	subscribe(e, pb);
	subscribe(e, pc);

	struct tt_probe_report rb = name_cmd(e, pb, TT_PROBE_REG, "svc_b");
	assert_rc(rb.rc, TR_OK);
	struct tt_probe_report rg = name_cmd(e, pc, TT_PROBE_REG, "svc_c");
	assert_rc(rg.rc, TR_OK);
	tr_pid sb = found_on(e, "beta", "svc_b", &rb);
	(void)found_on(e, "gamma", "svc_c", &rg);

	tr_pid none;
	assert_rc(tr_node_whereis(&none, e->node, "gamma", "svc_b", WAIT_MS),
	    TR_ENOENT);
	assert_rc(tr_node_whereis(&none, e->node, "beta", "svc_c", WAIT_MS),
	    TR_ENOENT);
	assert_rc(tr_node_whereis(&none, e->node, "beta", "nobody", WAIT_MS),
	    TR_ENOENT);
	assert_rc(tr_node_whereis(&none, e->node, "gamma", "nobody", WAIT_MS),
	    TR_ENOENT);
	struct tt_probe_report r = name_cmd(e, pb, TT_PROBE_UNREG, "svc_b");
	assert_rc(r.rc, TR_OK);
	assert_rc(tr_node_whereis(&none, e->node, "beta", "svc_b", WAIT_MS),
	    TR_ENOENT);
	call_ok(e, sb);

	assert_rc(tr_node_whereis(&none, e->node, "nosuch", "echo", WAIT_MS),
	    TR_ENOPROC);
	const char *dial[] = {"--connect", e->kids[b].url, NULL};
	assert_true(child_start(e, "delta", dial) >= 0);
	assert_rc(tr_node_whereis(&none, e->node, "delta", "echo", WAIT_MS),
	    TR_ENOPROC);

	uint64_t seq = 41;
	assert_rc(send_as(e, pb, pc, TT_PROBE_INTRO, &seq, sizeof(seq)), TR_OK);
	r = report_of(e, pc, TT_R_INTRO, WAIT_MS);
	assert_rc(r.rc, TR_OK);
	assert_names(&r, "beta", pb);
	r = report_of(e, pb, TT_R_HELLO, WAIT_MS);
	assert_int_equal(r.seq, 41);
	assert_names(&r, "gamma", pc);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)
	const struct CMUnitTest tests[] = {
	    BOTH(test_third_node_pid),
	    BOTH(test_monitor_all_nodes),
	    BOTH(test_stale_third_node),
	    BOTH(test_whereis_three_nodes),
	};
	/* TT_NODE_FILTER=test_stale_third_node runs one test (a glob). */
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
