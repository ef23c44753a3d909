/*
 * Multi-process tests of what OTP users expect of nodes: a monitor or link
 * to a pid of a node that is not connected fires noconnection (a stale pid
 * of an earlier incarnation, noproc), node monitor subscriptions count as
 * OTP's monitor_node does, calls from an actor to another node's actor by
 * pid and by {name, node} (gen_server:call), lookups by name that fail
 * at once when their node is lost, and the node's name in log events.
 *
 * This process is one node ("tnode") with an agent actor the test thread
 * drives; the others run the test node program (node_main.c). Each test
 * runs over ipc:// and tcp://. Timing: a tick of 100 ms, a peer declared
 * down within 20 ticks (behaviour, not speed).
 */
#include "common.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <troupe/node.h>

#include "node_child.h"
#include "test_node_proto.h"

#define TICK_MS 100
#define DOWN_BOUND_MS (20 * TICK_MS)
#define WAIT_MS 10000
#define MAX_CHILDREN 4

#include "node_env.h"

enum {
	CMD_MON = 200,  /* struct cmd: tr_monitor (T_RC, then T_REF) */
	CMD_LINK,       /* struct cmd: tr_link (T_RC) */
	CMD_MONNODE,    /* struct cmd: tr_monitor_node(name, on) (T_RC) */
	CMD_CALL,       /* struct cmd: tr_call_then (T_RC, then T_DONE) */
	CMD_CALL_NAMED, /* struct cmd: tr_call_named_then (T_RC, T_DONE) */
	T_FWD = 300,    /* agent -> port: a message it got (struct fwd) */
	T_REF,          /* agent -> port: uint64_t */
	T_RC,           /* agent -> port: int32_t */
	T_DONE,         /* agent -> port: struct done */
};

struct cmd {
	tr_pid pid;
	char node[64];
	char name[64];
	bool on;
	uint32_t type;
	int64_t timeout_ms;
};

struct fwd {
	uint32_t type;
	uint64_t ref;
	tr_pid sender;
	uint32_t size;
	unsigned char data[256];
};

struct done {
	int32_t status;
	uint32_t type;
	uint32_t size;
	int32_t down_reason;
	tr_pid sender;
	char data[32];
};

/* ---- the agent ------------------------------------------------------------
 */

struct agent {
	tr_pid port;
};

static int agent_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)tr_trap_exit(ctx, true);
	*state = arg;
	return TR_OK;
}

static void agent_rc(tr_ctx *ctx, struct agent *a, int32_t rc)
{
	(void)tr_send(ctx, a->port, T_RC, &rc, sizeof(rc));
}

static int agent_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	struct agent *a = state;
	struct done d;

	(void)arg;
	memset(&d, 0, sizeof(d));
	d.status = status;
	if (reply != NULL) {
		d.type = reply->type;
		d.size = reply->size;
		d.sender = reply->sender;
		memcpy(d.data, reply->data,
		    reply->size < sizeof(d.data) ? reply->size
		                                 : sizeof(d.data));
		if (reply->type == TR_MSG_DOWN &&
		    reply->size == sizeof(tr_exit_info)) {
			tr_exit_info info;
			memcpy(&info, reply->data, sizeof(info));
			d.down_reason = info.reason;
		}
	}
	(void)tr_send(ctx, a->port, T_DONE, &d, sizeof(d));
	return 0;
}

static int agent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct agent *a = state;
	struct cmd c;
	const char q[] = "question";

	if (m->type >= CMD_MON && m->type <= CMD_CALL_NAMED) {
		memset(&c, 0, sizeof(c));
		memcpy(&c, m->data, m->size < sizeof(c) ? m->size : sizeof(c));
	}
	switch (m->type) {
	case CMD_MON: {
		uint64_t ref = 0;
		agent_rc(ctx, a, tr_monitor(ctx, &ref, c.pid));
		(void)tr_send(ctx, a->port, T_REF, &ref, sizeof(ref));
		return 0;
	}
	case CMD_LINK:
		agent_rc(ctx, a, tr_link(ctx, c.pid));
		return 0;
	case CMD_MONNODE:
		agent_rc(ctx, a, tr_monitor_node(ctx, c.node, c.on));
		return 0;
	case CMD_CALL:
		agent_rc(ctx, a,
		    tr_call_then(ctx, NULL, c.pid, c.type, q, sizeof(q),
		        c.timeout_ms, agent_done, NULL));
		return 0;
	case CMD_CALL_NAMED:
		agent_rc(ctx, a,
		    tr_call_named_then(ctx, NULL, c.node, c.name, c.type, q,
		        sizeof(q), c.timeout_ms, agent_done, NULL));
		return 0;
	default:
		break;
	}
	struct fwd f;
	memset(&f, 0, sizeof(f));
	f.type = m->type;
	f.ref = m->ref;
	f.sender = m->sender;
	f.size = m->size;
	memcpy(f.data, m->data,
	    m->size < sizeof(f.data) ? m->size : sizeof(f.data));
	(void)tr_send(ctx, a->port, T_FWD, &f, sizeof(f));
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

static void start_agent(struct env *e)
{
	struct agent *a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->port = tr_port_pid(e->port);
	assert_rc(tr_spawn(&e->agent, e->rt, &agent_b, a, NULL), TR_OK);
}

/* The next message of `type` on the port (for T_FWD: forwarding a message
 * of `fwd_type`); others are dropped. NULL after `ms`. */
static tr_msg *port_wait(
    struct env *e, uint32_t type, uint32_t fwd_type, int64_t ms)
{
	int64_t dl = tt_now_ms() + ms;
	for (;;) {
		int64_t left = dl - tt_now_ms();
		if (left < 0)
			return NULL;
		tr_msg *m;
		if (tr_port_recv(&m, e->port, left) != TR_OK)
			return NULL;
		if (m->type == type &&
		    (type != T_FWD ||
		        ((const struct fwd *)m->data)->type == fwd_type))
			return m;
		tr_msg_free(m);
	}
}

static int agent_cmd(struct env *e, uint32_t cmd, const struct cmd *c)
{
	assert_rc(tr_post(e->rt, e->agent, cmd, c, sizeof(*c)), TR_OK);
	tr_msg *m = port_wait(e, T_RC, 0, WAIT_MS);
	assert_non_null(m);
	int32_t rc;
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	return rc;
}

static struct fwd expect_fwd(struct env *e, uint32_t type, int64_t ms)
{
	struct fwd f;
	tr_msg *m = port_wait(e, T_FWD, type, ms);
	if (m == NULL)
		fail_msg("no message of type %#x reached the agent", type);
	memcpy(&f, m->data, sizeof(f));
	tr_msg_free(m);
	return f;
}

static struct done expect_done(struct env *e, int64_t ms)
{
	struct done d;
	tr_msg *m = port_wait(e, T_DONE, 0, ms);
	if (m == NULL)
		fail_msg("no call ended");
	memcpy(&d, m->data, sizeof(d));
	tr_msg_free(m);
	return d;
}

static int pair_up(struct env *e, const char *name)
{
	assert_rc(node_up(e, "tnode", false), TR_OK);
	start_agent(e);
	return child_up(e, name, NULL);
}

static struct cmd cmd_pid(tr_pid pid)
{
	struct cmd c;
	memset(&c, 0, sizeof(c));
	c.pid = pid;
	return c;
}

static struct cmd cmd_node(const char *node, bool on)
{
	struct cmd c;
	memset(&c, 0, sizeof(c));
	snprintf(c.node, sizeof(c.node), "%s", node);
	c.on = on;
	return c;
}

static tr_exit_info info_of(const struct fwd *f)
{
	tr_exit_info info;
	memcpy(&info, f->data, sizeof(info));
	return info;
}

/* Monitors and links to pids of a node that went down: DOWN and EXIT
 * noconnection at once, as they would have fired had they been made
 * before (Erlang's answer for a node it cannot reach). Once the node is
 * back with a new incarnation, the old pids are stale: noproc. */
static void test_down_node_pids(void **state)
{
	struct env *e = *state;
	int k = pair_up(e, "alpha");
	tr_pid echo = remote_echo(e, "alpha");
	struct cmd c = cmd_node("alpha", true);

	assert_rc(agent_cmd(e, CMD_MONNODE, &c), TR_OK);
	kill_child(&e->kids[k]);
	(void)expect_fwd(e, TR_MSG_NODEDOWN, DOWN_BOUND_MS + 2000);

	c = cmd_pid(echo);
	assert_rc(agent_cmd(e, CMD_MON, &c), TR_OK);
	tr_msg *m = port_wait(e, T_REF, 0, WAIT_MS);
	assert_non_null(m);
	uint64_t ref;
	memcpy(&ref, m->data, sizeof(ref));
	tr_msg_free(m);
	struct fwd f = expect_fwd(e, TR_MSG_DOWN, WAIT_MS);
	tr_exit_info info = info_of(&f);
	assert_int_equal(f.ref, ref);
	assert_true(tr_pid_eq(info.pid, echo));
	assert_int_equal(info.reason, TR_REASON_NOCONNECTION);

	/* A link: accepted, then its exit signal (the agent traps). */
	assert_rc(agent_cmd(e, CMD_LINK, &c), TR_OK);
	f = expect_fwd(e, TR_MSG_EXIT, WAIT_MS);
	info = info_of(&f);
	assert_true(tr_pid_eq(info.pid, echo));
	assert_int_equal(info.reason, TR_REASON_NOCONNECTION);

	/* alpha again, a new incarnation: the old pid names nobody. */
	int k2 = child_start(e, "alpha", "secret", NULL, false);
	assert_true(k2 >= 0);
	assert_rc(
	    tr_node_connect(e->node, e->kids[k2].url, WAIT_MS, NULL), TR_OK);
	(void)expect_fwd(e, TR_MSG_NODEUP, WAIT_MS);
	assert_rc(agent_cmd(e, CMD_MON, &c), TR_OK);
	f = expect_fwd(e, TR_MSG_DOWN, WAIT_MS);
	assert_int_equal(info_of(&f).reason, TR_REASON_NOPROC);
	assert_rc(agent_cmd(e, CMD_LINK, &c), TR_ENOPROC);
	f = expect_fwd(e, TR_MSG_EXIT, WAIT_MS);
	assert_int_equal(info_of(&f).reason, TR_REASON_NOPROC);
	call_ok(e, remote_echo(e, "alpha"));
}

/* Node monitors count: on twice and off once leaves one, which hears one
 * NODEDOWN, as OTP's monitor_node(Node, false) removes one. */
static void test_monitor_node_counts(void **state)
{
	struct env *e = *state;
	int k = pair_up(e, "alpha");
	struct cmd on = cmd_node("alpha", true), off = cmd_node("alpha", false);

	assert_rc(agent_cmd(e, CMD_MONNODE, &on), TR_OK);
	assert_rc(agent_cmd(e, CMD_MONNODE, &on), TR_OK);
	assert_rc(agent_cmd(e, CMD_MONNODE, &off), TR_OK);
	kill_child(&e->kids[k]);
	(void)expect_fwd(e, TR_MSG_NODEDOWN, DOWN_BOUND_MS + 2000);
	assert_null(port_wait(e, T_FWD, TR_MSG_NODEDOWN, 5 * TICK_MS));

	/* One more: it hears at once that alpha is down; then both hear
	 * it come back, and after one off, only one hears it go. */
	assert_rc(agent_cmd(e, CMD_MONNODE, &on), TR_OK);
	(void)expect_fwd(e, TR_MSG_NODEDOWN, WAIT_MS);
	int k2 = child_start(e, "alpha", "secret", NULL, false);
	assert_true(k2 >= 0);
	assert_rc(
	    tr_node_connect(e->node, e->kids[k2].url, WAIT_MS, NULL), TR_OK);
	(void)expect_fwd(e, TR_MSG_NODEUP, WAIT_MS);
	(void)expect_fwd(e, TR_MSG_NODEUP, WAIT_MS);
	assert_rc(agent_cmd(e, CMD_MONNODE, &off), TR_OK);
	kill_child(&e->kids[k2]);
	(void)expect_fwd(e, TR_MSG_NODEDOWN, DOWN_BOUND_MS + 2000);
	assert_null(port_wait(e, T_FWD, TR_MSG_NODEDOWN, 5 * TICK_MS));
	/* The last one off; off again finds nothing and is no error. */
	assert_rc(agent_cmd(e, CMD_MONNODE, &off), TR_OK);
	assert_rc(agent_cmd(e, CMD_MONNODE, &off), TR_OK);
}

/* Calls from an actor to another node: by pid and by {name, node}; a name
 * nobody holds there is tried until the deadline; a node that is not
 * connected fails at once; a callee that does not answer, or whose node
 * is lost, ends the call. */
static void test_remote_calls(void **state)
{
	struct env *e = *state;
	int k = pair_up(e, "alpha");
	tr_pid echo = remote_echo(e, "alpha");
	const char q[] = "question";
	struct cmd c = cmd_pid(echo);
	struct done d;

	c.type = 7;
	c.timeout_ms = WAIT_MS;
	assert_rc(agent_cmd(e, CMD_CALL, &c), TR_OK);
	d = expect_done(e, WAIT_MS);
	assert_rc(d.status, TR_OK);
	assert_int_equal(d.type, 7);
	assert_int_equal(d.size, sizeof(q));
	assert_string_equal(d.data, q);
	assert_true(tr_pid_eq(d.sender, echo));

	/* By name on alpha; by name on this node under its own name. */
	memset(&c, 0, sizeof(c));
	snprintf(c.node, sizeof(c.node), "alpha");
	snprintf(c.name, sizeof(c.name), "echo");
	c.type = 8;
	c.timeout_ms = WAIT_MS;
	assert_rc(agent_cmd(e, CMD_CALL_NAMED, &c), TR_OK);
	d = expect_done(e, WAIT_MS);
	assert_rc(d.status, TR_OK);
	assert_int_equal(d.type, 8);
	assert_true(tr_pid_eq(d.sender, echo));
	tr_pid local;
	assert_rc(tr_spawn(&local, e->rt, &tt_echo, NULL, NULL), TR_OK);
	assert_rc(tr_register(e->rt, "local-echo", local), TR_OK);
	snprintf(c.node, sizeof(c.node), "tnode");
	snprintf(c.name, sizeof(c.name), "local-echo");
	assert_rc(agent_cmd(e, CMD_CALL_NAMED, &c), TR_OK);
	d = expect_done(e, WAIT_MS);
	assert_rc(d.status, TR_OK);
	assert_true(tr_pid_eq(d.sender, local));

	/* Nobody holds the name there: tried until the deadline. */
	snprintf(c.node, sizeof(c.node), "alpha");
	snprintf(c.name, sizeof(c.name), "nobody");
	c.timeout_ms = 300;
	assert_rc(agent_cmd(e, CMD_CALL_NAMED, &c), TR_OK);
	d = expect_done(e, WAIT_MS);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.type, 0);

	/* A node that is not connected. */
	snprintf(c.node, sizeof(c.node), "zeta");
	snprintf(c.name, sizeof(c.name), "echo");
	assert_rc(agent_cmd(e, CMD_CALL_NAMED, &c), TR_ENOPROC);

	/* "slow" never answers a TT_SLOW: the deadline; then alpha is lost
	 * while a call to it waits: DOWN noconnection. */
	tr_pid slow;
	assert_rc(
	    tr_node_whereis(&slow, e->node, "alpha", "slow", WAIT_MS), TR_OK);
	c = cmd_pid(slow);
	c.type = TT_SLOW;
	c.timeout_ms = 200;
	assert_rc(agent_cmd(e, CMD_CALL, &c), TR_OK);
	d = expect_done(e, WAIT_MS);
	assert_rc(d.status, TR_ETIMEDOUT);
	c.timeout_ms = -1;
	assert_rc(agent_cmd(e, CMD_CALL, &c), TR_OK);
	call_ok(e, echo); /* the call went out before */
	kill_child(&e->kids[k]);
	d = expect_done(e, DOWN_BOUND_MS + 2000);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.type, TR_MSG_DOWN);
	assert_int_equal(d.down_reason, TR_REASON_NOCONNECTION);

	/* Its pids now fail at once. */
	c = cmd_pid(echo);
	c.type = 7;
	c.timeout_ms = WAIT_MS;
	assert_rc(agent_cmd(e, CMD_CALL, &c), TR_ENOPROC);
}

/* A lookup by name on another node, from a plain thread (tr_node_whereis)
 * and from an actor's call by {name, node}, fails at once with TR_ENOPROC
 * when the node is lost before it answers, as gen_server:call({Name,
 * Node}) exits at once on nodedown, rather than at its deadline. */
struct lookup {
	struct env *e;
	int rc;
};

static void *lookup_main(void *arg)
{
	struct lookup *l = arg;
	tr_pid pid;
	l->rc = tr_node_whereis(&pid, l->e->node, "alpha", "echo", 60000);
	return NULL;
}

static void test_lookup_lost_node(void **state)
{
	struct env *e = *state;
	int k = pair_up(e, "alpha");
	(void)remote_echo(e, "alpha");
	/* Frozen, alpha reads nothing and answers nothing. */
	assert_int_equal(kill(e->kids[k].pid, SIGSTOP), 0);
	/* kill returns before a thread running on another core stops;
	 * waitpid reports the stop once every thread has. */
	int st;
	assert_int_equal(waitpid(e->kids[k].pid, &st, WUNTRACED),
	    e->kids[k].pid);
	assert_true(WIFSTOPPED(st));
	struct lookup l = {e, 1};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, lookup_main, &l), 0);
	struct cmd c;
	memset(&c, 0, sizeof(c));
	snprintf(c.node, sizeof(c.node), "alpha");
	snprintf(c.name, sizeof(c.name), "echo");
	c.type = 8;
	c.timeout_ms = 60000;
	assert_rc(agent_cmd(e, CMD_CALL_NAMED, &c), TR_OK);
	tt_sleep_ms(200); /* both lookups are out */
	assert_int_equal(kill(e->kids[k].pid, SIGKILL), 0);
	struct done d = expect_done(e, DOWN_BOUND_MS + 2000);
	assert_rc(d.status, TR_ENOPROC);
	assert_int_equal(d.type, 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_rc(l.rc, TR_ENOPROC);
	kill_child(&e->kids[k]);
}

/* Log events of a node carry its name. */
static pthread_mutex_t node_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen_node[64];

static void node_logger(void *user, const tr_log_event *ev)
{
	(void)user;
	pthread_mutex_lock(&node_mu);
	if (strcmp(ev->text, "about this node") == 0)
		snprintf(seen_node, sizeof(seen_node), "%s",
		    ev->node != NULL ? ev->node : "(none)");
	pthread_mutex_unlock(&node_mu);
}

static void test_log_node(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	tr_runtime_set_logger(e->rt, node_logger, NULL);
	tr_logf(e->rt, TR_LOG_INFO, "about this node");
	pthread_mutex_lock(&node_mu);
	assert_string_equal(seen_node, "tnode");
	pthread_mutex_unlock(&node_mu);

	/* No node, then a node of another name on the same runtime. */
	tr_node_stop(e->node);
	e->node = NULL;
	tr_logf(e->rt, TR_LOG_INFO, "about this node");
	pthread_mutex_lock(&node_mu);
	assert_string_equal(seen_node, "(none)");
	pthread_mutex_unlock(&node_mu);
	assert_rc(node_up(e, "tnode2", false), TR_OK);
	tr_logf(e->rt, TR_LOG_INFO, "about this node");
	pthread_mutex_lock(&node_mu);
	assert_string_equal(seen_node, "tnode2");
	pthread_mutex_unlock(&node_mu);
	tr_runtime_set_log(e->rt, env_log, e);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)
	const struct CMUnitTest tests[] = {
	    BOTH(test_down_node_pids),
	    BOTH(test_monitor_node_counts),
	    BOTH(test_remote_calls),
	    BOTH(test_lookup_lost_node),
	    cmocka_unit_test_setup_teardown(test_log_node, setup_ipc, teardown),
	};
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
