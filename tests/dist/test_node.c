/*
 * Multi-process tests of nodes: this process is one node, the others are
 * real processes running the test node program (node_main.c), started
 * with fork/exec and killed (SIGKILL, SIGSTOP) to test failure detection.
 *
 * Every test runs under alarm() and its fixture kills and reaps its
 * children even when it fails; the children also ask the kernel to kill
 * them if this process dies. Nodes listen only on 127.0.0.1 or on ipc://
 * paths in a fresh temporary directory. Each test runs over ipc:// and
 * over tcp:// (TLS tests over tls+tcp://).
 *
 * Timing: the tick is 100 ms; a peer is declared down after 4 ticks, and
 * the tests only check that it happens within 20 ticks (behaviour, not
 * timing).
 */
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>

#include <troupe/node.h>

#include "node_child.h"
#include "test_node_proto.h"
#include "troupe.pb-c.h"

#define TICK_MS 100
#define DOWN_BOUND_MS (20 * TICK_MS)
#define WAIT_MS 10000
#define MAX_CHILDREN 4

#include "node_env.h"
#include "test_certs.h"

static bool tt_has_openssl;

/* Agent commands, posted by the test thread. */
enum {
	CMD_LINK = 200, /* tr_pid: link, monitor, report the ref */
	CMD_LINK_CRASH, /* struct crash: link, monitor, then crash it */
	CMD_MONNODE,    /* char[]: monitor that node */
	CMD_NAMED,      /* struct named: tr_send_remote_named */
	CMD_SPAWN,      /* struct spawn: tr_spawn_remote */
	CMD_STREAM,     /* struct stream: n TT_ECHO to pid, check order */
	T_FWD = 300,    /* agent -> port: a message it got (struct fwd) */
	T_REF,          /* agent -> port: a monitor ref (uint64_t) */
	T_STREAM_DONE,  /* agent -> port: uint32_t[2] {got, out of order} */
	T_RC,           /* agent -> port: int32_t result of a command */
};

struct crash {
	tr_pid pid;
	int32_t reason;
};

struct named {
	char node[64];
	char name[64];
	uint32_t seq;
};

struct spawn {
	char node[64];
	char beh[64];
	bool link;
};

struct stream {
	tr_pid pid;
	uint32_t n;
};

struct fwd {
	uint32_t type;
	uint64_t ref;
	tr_pid sender;
	uint32_t size;
	unsigned char data[256];
};

/* ---- the agent: an actor of this node the test thread drives ------------ */

struct agent {
	tr_pid port;
	uint32_t n, got, bad;
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

static int agent_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct agent *a = state;
	switch (m->type) {
	case CMD_LINK:
	case CMD_LINK_CRASH: {
		struct crash c;
		memset(&c, 0, sizeof(c));
		memcpy(&c, m->data, m->size < sizeof(c) ? m->size : sizeof(c));
		uint64_t ref = 0;
		int rc = tr_link(ctx, c.pid);
		if (rc == TR_OK)
			rc = tr_monitor(ctx, &ref, c.pid);
		if (rc == TR_OK && m->type == CMD_LINK_CRASH)
			rc = tr_send(
			    ctx, c.pid, TT_CRASH, &c.reason, sizeof(c.reason));
		agent_rc(ctx, a, rc);
		(void)tr_send(ctx, a->port, T_REF, &ref, sizeof(ref));
		return 0;
	}
	case CMD_MONNODE:
		agent_rc(
		    ctx, a, tr_monitor_node(ctx, (const char *)m->data, true));
		return 0;
	case CMD_NAMED: {
		const struct named *nm = (const void *)m->data;
		agent_rc(ctx, a,
		    tr_send_remote_named(ctx, nm->node, nm->name, TT_ECHO,
		        &nm->seq, sizeof(nm->seq)));
		return 0;
	}
	case CMD_SPAWN: {
		const struct spawn *sp = (const void *)m->data;
		uint64_t ref;
		agent_rc(ctx, a,
		    tr_spawn_remote(
		        ctx, &ref, sp->node, sp->beh, "arg", 3, sp->link));
		return 0;
	}
	case CMD_STREAM: {
		const struct stream *st = (const void *)m->data;
		a->n = st->n;
		a->got = a->bad = 0;
		int rc = TR_OK;
		/* Consecutive sends form runs (Envelope.more); their sizes
		 * vary so that runs grow past one- and two-byte lengths. */
		for (uint32_t i = 0; i < st->n && rc == TR_OK; i++) {
			uint64_t pad[33] = {i};
			size_t sz = i % 3 == 0 ? 8 : i % 3 == 1 ? 64 : 264;
			rc = tr_send(ctx, st->pid, TT_ECHO, pad, sz);
		}
		agent_rc(ctx, a, rc);
		return 0;
	}
	case TT_ECHO:
		if (a->n != 0) {
			uint64_t seq;
			memcpy(&seq, m->data, sizeof(seq));
			size_t want = seq % 3 == 0   ? 8
			              : seq % 3 == 1 ? 64
			                             : 264;
			if (seq != a->got || m->size != want)
				a->bad++;
			if (++a->got == a->n) {
				uint32_t r[2] = {a->got, a->bad};
				a->n = 0;
				(void)tr_send(
				    ctx, a->port, T_STREAM_DONE, r, sizeof(r));
			}
			return 0;
		}
		break;
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

/* The next message of type `type` on the port (others are dropped), or
 * NULL after `ms`. */
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

static int agent_cmd(struct env *e, uint32_t cmd, const void *data, size_t size)
{
	assert_rc(tr_post(e->rt, e->agent, cmd, data, size), TR_OK);
	tr_msg *m = port_wait(e, T_RC, 0, WAIT_MS);
	assert_non_null(m);
	int32_t rc;
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	return rc;
}

/* This node plus one test node, connected; returns the child's index. */
static int pair_up(struct env *e, const char *name)
{
	assert_rc(node_up(e, "tnode", false), TR_OK);
	start_agent(e);
	return child_up(e, name, NULL);
}

/* ---- tests -------------------------------------------------------------- */

/* Handshake, remote send, and per-pair order of 10k messages. */
static void test_send_order(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	tr_pid echo = remote_echo(e, "alpha");
	char name[TR_NODE_NAME_MAX + 1];
	assert_rc(tr_node_name_of(name, sizeof(name), e->node, echo), TR_OK);
	assert_string_equal(name, "alpha");
	struct stream st = {echo, 10000};
	assert_rc(agent_cmd(e, CMD_STREAM, &st, sizeof(st)), TR_OK);
	tr_msg *m = port_wait(e, T_STREAM_DONE, 0, 60000);
	assert_non_null(m);
	uint32_t r[2];
	memcpy(r, m->data, sizeof(r));
	tr_msg_free(m);
	assert_int_equal(r[0], 10000);
	assert_int_equal(r[1], 0);
}

/* Request/reply across nodes (small and 3 MiB), and a call to a remote
 * pid that is dead. */
static void test_request_reply(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	tr_pid echo = remote_echo(e, "alpha");
	for (int i = 0; i < 100; i++)
		call_ok(e, echo);
	/* Large ones: 3 MiB each way, written and read in many pieces. */
	size_t big = (size_t)3 << 20;
	uint8_t *q = malloc(big);
	assert_non_null(q);
	for (size_t k = 0; k < big; k++)
		q[k] = (uint8_t)(k * 131 + (k >> 12));
	for (int i = 0; i < 3; i++) {
		tr_msg *r;
		assert_rc(tr_call(&r, e->rt, echo, 8, q, big, WAIT_MS), TR_OK);
		assert_int_equal(r->size, big);
		assert_memory_equal(r->data, q, big);
		tr_msg_free(r);
	}
	free(q);
	tr_pid dead = echo;
	dead.gen += 1000;
	tr_msg *r = NULL;
	assert_rc(tr_call(&r, e->rt, dead, 7, "x", 1, WAIT_MS), TR_ENOPROC);
	/* A node that is not connected. */
	tr_pid nowhere = {4000, 1, 1};
	assert_rc(tr_call(&r, e->rt, nowhere, 7, "x", 1, WAIT_MS), TR_ENOPROC);
	tr_pid none;
	assert_rc(tr_node_whereis(&none, e->node, "alpha", "nobody", WAIT_MS),
	    TR_ENOENT);
	assert_rc(tr_node_whereis(&none, e->node, "nonode", "echo", WAIT_MS),
	    TR_ENOPROC);
}

/* {Name, Node} ! Msg. */
static void test_named_send(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	struct named nm = {"alpha", "echo", 42};
	assert_rc(agent_cmd(e, CMD_NAMED, &nm, sizeof(nm)), TR_OK);
	tr_msg *m = port_wait(e, T_FWD, TT_ECHO, WAIT_MS);
	assert_non_null(m);
	const struct fwd *f = (const void *)m->data;
	uint32_t seq;
	memcpy(&seq, f->data, sizeof(seq));
	assert_int_equal(seq, 42);
	assert_int_not_equal(f->sender.node, 0);
	tr_msg_free(m);
	struct named bad = {"nonode", "echo", 1};
	assert_rc(agent_cmd(e, CMD_NAMED, &bad, sizeof(bad)), TR_ENOPROC);
}

/* Remote spawn: a known behaviour gives a usable pid, an unknown one
 * TR_ENOENT in the reply. */
static void test_remote_spawn(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	struct spawn sp = {"alpha", "echo", false};
	assert_rc(agent_cmd(e, CMD_SPAWN, &sp, sizeof(sp)), TR_OK);
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_SPAWN_REPLY, WAIT_MS);
	assert_non_null(m);
	tr_spawn_reply rep;
	memcpy(&rep, ((const struct fwd *)m->data)->data, sizeof(rep));
	tr_msg_free(m);
	assert_rc(rep.error, TR_OK);
	assert_int_not_equal(rep.pid.node, 0);
	call_ok(e, rep.pid);

	struct spawn bad = {"alpha", "no-such-behaviour", false};
	assert_rc(agent_cmd(e, CMD_SPAWN, &bad, sizeof(bad)), TR_OK);
	m = port_wait(e, T_FWD, TR_MSG_SPAWN_REPLY, WAIT_MS);
	assert_non_null(m);
	memcpy(&rep, ((const struct fwd *)m->data)->data, sizeof(rep));
	tr_msg_free(m);
	assert_rc(rep.error, TR_ENOENT);
}

static void expect_exit_down(
    struct env *e, tr_pid from, uint64_t ref, int reason, int64_t ms)
{
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_EXIT, ms);
	assert_non_null(m);
	tr_exit_info info;
	memcpy(&info, ((const struct fwd *)m->data)->data, sizeof(info));
	tr_msg_free(m);
	assert_true(tr_pid_eq(info.pid, from));
	assert_int_equal(info.reason, reason);
	m = port_wait(e, T_FWD, TR_MSG_DOWN, ms);
	assert_non_null(m);
	memcpy(&info, ((const struct fwd *)m->data)->data, sizeof(info));
	tr_msg_free(m);
	assert_true(tr_pid_eq(info.pid, from));
	assert_int_equal(info.reason, reason);
	assert_true(info.ref == ref);
}

static uint64_t ref_of(struct env *e)
{
	tr_msg *m = port_wait(e, T_REF, 0, WAIT_MS);
	assert_non_null(m);
	uint64_t ref;
	memcpy(&ref, m->data, sizeof(ref));
	tr_msg_free(m);
	return ref;
}

/* A remote actor linked and monitored crashes: EXIT and DOWN with its
 * reason. */
static void test_link_monitor_crash(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	struct spawn sp = {"alpha", "crasher", false};
	assert_rc(agent_cmd(e, CMD_SPAWN, &sp, sizeof(sp)), TR_OK);
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_SPAWN_REPLY, WAIT_MS);
	assert_non_null(m);
	tr_spawn_reply rep;
	memcpy(&rep, ((const struct fwd *)m->data)->data, sizeof(rep));
	tr_msg_free(m);
	assert_rc(rep.error, TR_OK);
	struct crash c = {rep.pid, 42};
	assert_rc(agent_cmd(e, CMD_LINK_CRASH, &c, sizeof(c)), TR_OK);
	uint64_t ref = ref_of(e);
	expect_exit_down(e, rep.pid, ref, 42, WAIT_MS);
	/* The actor is gone; its node is fine. */
	assert_false(tr_call(&m, e->rt, rep.pid, 7, "x", 1, WAIT_MS) == TR_OK);
	call_ok(e, remote_echo(e, "alpha"));
}

/* tr_kill from this node on a remote pid: an untrappable kill travels as
 * an exit signal and the remote actor dies with `killed`, which its link
 * and monitor report back. */
static void test_remote_kill(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	tr_pid echo = remote_echo(e, "alpha");
	struct crash c = {echo, 0};
	assert_rc(agent_cmd(e, CMD_LINK, &c, sizeof(c)), TR_OK);
	uint64_t ref = ref_of(e);
	call_ok(e, echo); /* the link and monitor went out before */
	assert_rc(tr_kill(e->rt, echo, TR_REASON_KILL), TR_OK);
	expect_exit_down(e, echo, ref, TR_REASON_KILLED, WAIT_MS);
}

/* Kills (SIGKILL) or freezes (SIGSTOP) the peer: links and monitors fire
 * with noconnection, and node monitors get NODEDOWN, within 20 ticks. */
static void node_loss(struct env *e, int sig)
{
	int k = pair_up(e, "alpha");
	/* Linked both ways through remote spawn_link, plus a plain link and
	 * a monitor on the registered echo. */
	tr_pid echo = remote_echo(e, "alpha");
	assert_rc(agent_cmd(e, CMD_MONNODE, "alpha", 6), TR_OK);
	struct crash c = {echo, 0};
	assert_rc(agent_cmd(e, CMD_LINK, &c, sizeof(c)), TR_OK);
	uint64_t ref = ref_of(e);
	call_ok(e, echo); /* the link and monitor went out before */
	int64_t t0 = tt_now_ms();
	kill(e->kids[k].pid, sig);
	expect_exit_down(
	    e, echo, ref, TR_REASON_NOCONNECTION, DOWN_BOUND_MS + 2000);
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_NODEDOWN, DOWN_BOUND_MS);
	assert_non_null(m);
	tr_node_event ev;
	memcpy(&ev, ((const struct fwd *)m->data)->data, sizeof(ev));
	tr_msg_free(m);
	assert_string_equal(ev.node, "alpha");
	int64_t took = tt_now_ms() - t0;
	if (took > DOWN_BOUND_MS)
		fail_msg("node down took %lld ms", (long long)took);
	/* Sends to its pids now fail. */
	assert_false(tr_post(e->rt, echo, 7, "x", 1) == TR_OK);
	if (sig == SIGSTOP)
		kill(e->kids[k].pid, SIGCONT);
	kill_child(&e->kids[k]);
}

static void test_sigkill(void **state)
{
	node_loss(*state, SIGKILL);
}

static void test_sigstop(void **state)
{
	node_loss(*state, SIGSTOP);
}

/* The peer restarts: a new incarnation, old pids stale, new ones work. */
static void test_reconnect(void **state)
{
	struct env *e = *state;
	int k = pair_up(e, "alpha");
	tr_pid old = remote_echo(e, "alpha");
	call_ok(e, old);
	assert_rc(agent_cmd(e, CMD_MONNODE, "alpha", 6), TR_OK);
	kill_child(&e->kids[k]);
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_NODEDOWN, DOWN_BOUND_MS + 2000);
	assert_non_null(m);
	tr_msg_free(m);
	int k2 = child_start(e, "alpha", "secret", NULL, false);
	assert_true(k2 >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k2].url, WAIT_MS, peer), TR_OK);
	m = port_wait(e, T_FWD, TR_MSG_NODEUP, WAIT_MS);
	assert_non_null(m);
	tr_msg_free(m);
	tr_pid fresh = remote_echo(e, "alpha");
	assert_int_not_equal(fresh.node, old.node);
	call_ok(e, fresh);
	tr_msg *r;
	assert_rc(tr_call(&r, e->rt, old, 7, "x", 1, WAIT_MS), TR_ENOPROC);
}

/* A node with another cookie is refused, and nothing reaches it. */
/* URLs the node cannot use: a scheme with no stream transport, and no
 * URL at all; refused, with nothing left behind. */
static void test_bad_urls(void **state)
{
	struct env *e = *state;
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "tnode";
	o.cookie = "secret";
	const char *inproc[2] = {"inproc://tnode", NULL};
	const char *junk[2] = {"not a url", NULL};
	o.listen = inproc;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_ENOTSUP);
	o.listen = junk;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_EINVAL);
	assert_null(tr_node_of(e->rt));
	assert_rc(node_up(e, "tnode", false), TR_OK);
	assert_rc(
	    tr_node_connect(e->node, "inproc://x", 1000, NULL), TR_ENOTSUP);
	assert_rc(tr_node_connect(e->node, "not a url", 1000, NULL), TR_EINVAL);
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.peers_up, 0);
}

static void test_wrong_cookie(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	int k = child_start(e, "alpha", "not-the-secret", NULL, false);
	assert_true(k >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	int rc = tr_node_connect(e->node, e->kids[k].url, 5000, peer);
	assert_true(rc == TR_ECLOSED || rc == TR_ETIMEDOUT);
	assert_true(log_has(e, "refused"));
	tr_pid pid;
	assert_rc(
	    tr_node_whereis(&pid, e->node, "alpha", "echo", 1000), TR_ENOPROC);
	/* And the other way round: it dials us with its wrong cookie. */
	const char *args[] = {
	    "--connect", tr_node_listen_url(e->node, 0), NULL};
	int k2 = child_start(e, "beta", "not-the-secret", args, false);
	assert_int_equal(k2, -1); /* its connect fails, it never gets READY */
	assert_rc(
	    tr_node_whereis(&pid, e->node, "beta", "echo", 1000), TR_ENOPROC);
	/* The refusal is counted for operators. */
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_true(st.handshakes_refused >= 1);
	assert_int_equal(st.peers_up, 0);
}

/* Raw frames on the node's pull listener: garbage, a batch without a
 * handshake, a bad Hello, an oversized frame. None crashes it, none
 * reaches an actor, and the node keeps working. */
static void test_malformed(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	const char *args[] = {"--max-frame", "65536", NULL};
	int k = child_start(e, "alpha", "secret", args, false);
	assert_true(k >= 0);
	nng_socket s;
	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(nng_dial(s, e->kids[k].url, NULL, 0), 0);
	nng_setopt_ms(s, NNG_OPT_SENDTIMEO, 2000);
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 1};
	static const uint8_t batch_hdr[] = {0x22, 0x04, 0x0a, 0x02, 0x38, 0x00};
	static const uint8_t bad_hello[] = {0x0a, 0x03, 0x08, 0x01, 0x22};
	static const uint8_t trunc[] = {0x0a, 0x7f, 0x08};
	assert_int_equal(nng_send(s, (void *)garbage, sizeof(garbage), 0), 0);
	assert_int_equal(
	    nng_send(s, (void *)batch_hdr, sizeof(batch_hdr), 0), 0);
	assert_int_equal(
	    nng_send(s, (void *)bad_hello, sizeof(bad_hello), 0), 0);
	assert_int_equal(nng_send(s, (void *)trunc, sizeof(trunc), 0), 0);
	/* A well-formed batch that would crash "echo" if it were let in. */
	Troupe__Wire__Envelope env = TROUPE__WIRE__ENVELOPE__INIT;
	Troupe__Wire__Envelope *envs[1] = {&env};
	Troupe__Wire__Batch b = TROUPE__WIRE__BATCH__INIT;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	int32_t reason = 5;
	env.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	env.name = "echo";
	env.type = TT_CRASH;
	env.payload.data = (uint8_t *)&reason;
	env.payload.len = sizeof(reason);
	b.n_envelopes = 1;
	b.envelopes = envs;
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &b;
	uint8_t fb[256];
	size_t fl = troupe__wire__frame__pack(&f, fb);
	assert_int_equal(nng_send(s, fb, fl, 0), 0);
	uint8_t *big = calloc(1, 200000);
	assert_non_null(big);
	big[0] = 0x22;
	(void)nng_send(s, big, 200000, 0); /* the pipe is closed on it */
	free(big);
	tt_sleep_ms(300);
	nng_close(s);
	int st;
	assert_int_equal(waitpid(e->kids[k].pid, &st, WNOHANG), 0);
	start_agent(e);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	call_ok(e, remote_echo(e, "alpha"));

	/* The same garbage at our own node is counted, not delivered. */
	tr_node_stats st0 = TR_STRUCT_INIT(tr_node_stats),
	              st1 = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st0, e->node), TR_OK);
	assert_int_equal(nng_push0_open(&s), 0);
	assert_int_equal(
	    nng_dial(s, tr_node_listen_url(e->node, 0), NULL, 0), 0);
	nng_setopt_ms(s, NNG_OPT_SENDTIMEO, 2000);
	assert_int_equal(nng_send(s, (void *)garbage, sizeof(garbage), 0), 0);
	assert_int_equal(nng_send(s, fb, fl, 0), 0);
	int64_t until = tt_now_ms() + WAIT_MS;
	do {
		tt_sleep_ms(10);
		assert_rc(tr_node_stats_get(&st1, e->node), TR_OK);
	} while (st1.frames_unauth + st1.frames_malformed <
	             st0.frames_unauth + st0.frames_malformed + 2 &&
	         tt_now_ms() < until);
	nng_close(s);
	assert_true(st1.frames_unauth + st1.frames_malformed >=
	            st0.frames_unauth + st0.frames_malformed + 2);
	assert_int_equal(st1.peers_up, 1);
	assert_rc(tr_node_stats_get(NULL, e->node), TR_EINVAL);
}

/* A frozen peer: sends pile up to max_queue, then fail with TR_EAGAIN
 * (nothing is dropped silently, nothing grows without bound); once it is
 * declared down they fail with TR_ENOPROC. */
static void test_backpressure(void **state)
{
	struct env *e = *state;
	struct node_conf nc;
	node_conf_init(&nc, e, "tnode", false);
	/* Slow builds (sanitizers) take a while to fill the socket
	 * buffers before the queue: give detection time. */
	nc.o.tick_ms = 1000;
	nc.o.max_queue = 256 * 1024;
	assert_rc(tr_node_start(&e->node, e->rt, &nc.o), TR_OK);
	start_agent(e);
	int k = child_start(e, "alpha", "secret", NULL, false);
	assert_true(k >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	tr_pid echo = remote_echo(e, "alpha");
	kill(e->kids[k].pid, SIGSTOP);
	/* 64 MB of 64-byte messages: far beyond the socket buffers. */
	struct stream st = {echo, 1000000};
	assert_rc(agent_cmd(e, CMD_STREAM, &st, sizeof(st)), TR_EAGAIN);
	tr_msg *m = port_wait(e, T_FWD, 0xdead, DOWN_BOUND_MS);
	assert_null(m);
	/* Frozen for good: declared down in about 4 ticks, and then a send
	 * fails with TR_ENOPROC (its queue is freed). */
	int64_t until = tt_now_ms() + 20 * (int64_t)nc.o.tick_ms;
	int rc;
	while ((rc = tr_post(e->rt, echo, 7, "x", 1)) != TR_ENOPROC &&
	       tt_now_ms() < until)
		tt_sleep_ms(50);
	assert_rc(rc, TR_ENOPROC);
	kill(e->kids[k].pid, SIGCONT);
}

/* Remote spawn_link: the child's crash reaches the (trapping) parent. */
static void test_spawn_link(void **state)
{
	struct env *e = *state;
	pair_up(e, "alpha");
	struct spawn sp = {"alpha", "crasher", true};
	assert_rc(agent_cmd(e, CMD_SPAWN, &sp, sizeof(sp)), TR_OK);
	tr_msg *m = port_wait(e, T_FWD, TR_MSG_SPAWN_REPLY, WAIT_MS);
	assert_non_null(m);
	tr_spawn_reply rep;
	memcpy(&rep, ((const struct fwd *)m->data)->data, sizeof(rep));
	tr_msg_free(m);
	assert_rc(rep.error, TR_OK);
	int32_t reason = 7;
	assert_rc(
	    tr_post(e->rt, rep.pid, TT_CRASH, &reason, sizeof(reason)), TR_OK);
	m = port_wait(e, T_FWD, TR_MSG_EXIT, WAIT_MS);
	assert_non_null(m);
	tr_exit_info info;
	memcpy(&info, ((const struct fwd *)m->data)->data, sizeof(info));
	tr_msg_free(m);
	assert_true(tr_pid_eq(info.pid, rep.pid));
	assert_int_equal(info.reason, 7);
}

/* ---- TLS ---------------------------------------------------------------- */



static void test_tls(void **state)
{
	struct env *e = *state;
	if (!tt_has_openssl)
		skip();
	static const char *const names[] = {"t", "alpha", "rogue", NULL};
	assert_true(tt_make_certs(e->dir, names));
	assert_rc(node_up(e, "tnode", true), TR_OK);
	start_agent(e);
	char ca[300], crt[300], key[300];
	snprintf(ca, sizeof(ca), "%s/ca.pem", e->dir);
	snprintf(crt, sizeof(crt), "%s/alpha.crt", e->dir);
	snprintf(key, sizeof(key), "%s/alpha.key", e->dir);
	const char *args[] = {"--tls", ca, crt, key, NULL};
	int k = child_start(e, "alpha", "secret", args, true);
	assert_true(k >= 0);
	assert_true(strncmp(e->kids[k].url, "tls+tcp://", 10) == 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	call_ok(e, remote_echo(e, "alpha"));

	/* A node whose certificate our CA did not sign is refused. */
	snprintf(crt, sizeof(crt), "%s/rogue.crt", e->dir);
	snprintf(key, sizeof(key), "%s/rogue.key", e->dir);
	const char *rargs[] = {"--tls", ca, crt, key, NULL};
	int r = child_start(e, "rogue", "secret", rargs, true);
	assert_true(r >= 0);
	int rc = tr_node_connect(e->node, e->kids[r].url, 3000, peer);
	assert_false(rc == TR_OK);
	tr_pid pid;
	assert_rc(
	    tr_node_whereis(&pid, e->node, "rogue", "echo", 1000), TR_ENOPROC);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	tt_has_openssl = system("openssl version >/dev/null 2>&1") == 0;
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)
	const struct CMUnitTest tests[] = {
	    BOTH(test_send_order),
	    cmocka_unit_test_setup_teardown(test_bad_urls, setup_ipc, teardown),
	    BOTH(test_request_reply),
	    BOTH(test_named_send),
	    BOTH(test_remote_spawn),
	    BOTH(test_link_monitor_crash),
	    BOTH(test_remote_kill),
	    BOTH(test_sigkill),
	    BOTH(test_sigstop),
	    BOTH(test_reconnect),
	    BOTH(test_wrong_cookie),
	    BOTH(test_malformed),
	    BOTH(test_backpressure),
	    BOTH(test_spawn_link),
	    cmocka_unit_test_setup_teardown(test_tls, setup_tcp, teardown),
	};
	/* TT_NODE_FILTER=test_tls runs one test (a glob, as cmocka's). */
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
