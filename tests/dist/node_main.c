/*
 * A test node: a process the distribution tests fork/exec and talk to.
 *
 *   troupe-test-node NAME LISTEN-URL COOKIE [--tick MS] [--max-frame B]
 *                    [--tls CA CERT KEY] [--connect URL] [--probe]
 *                    [--keep-connecting URL] [--sup] [--inc N]
 *                    [--recv-actor-max B] [--recv-max B]
 *                    [--seed URL]... [--connect-all 0|1] [--reconnect 0|1]
 *                    [--observer URL]
 *                    [--client URL] [--client-max-calls N]
 *
 * It starts a runtime and a node, registers an actor "echo", makes the
 * behaviours "echo" and "crasher" spawnable by other nodes, prints
 * "READY <listen url>" on stdout and runs until it gets SIGTERM or SIGINT
 * (tests usually end it with SIGKILL; it asks the kernel to kill it when
 * its parent dies, so a failed test leaves nothing behind).
 *
 * What the echo behaviour does with a message (tests/dist/test_node_proto.h):
 * a request (ref set) is answered with a copy; TT_ECHO is sent back to its
 * sender; TT_CRASH crashes it with the int32 reason in the payload.
 *
 * With --keep-connecting it calls tr_node_connect on URL every 100 ms for
 * as long as it runs (the obvious way to keep a mesh connected). With
 * --sup it registers a one_for_one supervisor without children as "sup",
 * for starts of children by name from other nodes ("echo" is registered
 * for that too). --inc sets the incarnation. An actor "slow" takes about
 * 20 us over each TT_SLOW message (test_node_proto.h), for tests of flow
 * control, whose limits the --recv options set.
 *
 * --seed gives seed URLs (tr_node_opts.seeds, up to 8), --connect-all 0
 * and --reconnect 0 turn transitive connect and reconnecting off; on
 * SIGUSR1 it prints "NODES" and the names of the nodes connected (for
 * scripts, which are no nodes themselves). An
 * actor "nodes" answers TT_NODES with the nodes connected, and
 * "nodemon" TT_NODE_EVENTS with the NODEUPs and NODEDOWNs it saw of a
 * node (test_node_proto.h).
 *
 * --observer serves the node's observer (troupe/observer.h) at URL and
 * prints "OBSERVER <url>" (with the port it got) before READY.
 *
 * --client opens the node's client endpoint (tr_node_opts.client_url,
 * docs/client.md) at URL, with at most N calls in progress at once
 * (--client-max-calls; the node's default otherwise).
 *
 * With --probe it also registers an actor "probe" (test_node_proto.h) for
 * tests of pids passed on between nodes; the probe also registers and
 * unregisters further echo actors under names a test chooses.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe/node.h>
#include <troupe/observer.h>
#include <troupe/sup.h>
#include <troupe/troupe.h>

#include "node_proc.h"
#include "test_node_proto.h"

static int echo_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	/* Spawned by another node: the argument is a blob we own. */
	free(arg);
	*state = NULL;
	return TR_OK;
}

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == TT_CRASH) {
		int32_t reason = 1;
		if (m->size >= sizeof(reason))
			memcpy(&reason, m->data, sizeof(reason));
		return reason > 0 ? reason : 1;
	}
	if (m->type >= TR_MSG_SYSTEM)
		return 0;
	if (m->ref != 0) {
		(void)tr_reply(ctx, m, m->type, m->data, m->size);
		return 0;
	}
	if (m->type == TT_ECHO && !tr_pid_is_none(tr_sender(m)))
		(void)tr_send(ctx, tr_sender(m), TT_ECHO, m->data, m->size);
	return 0;
}

static const tr_behaviour echo_b = {"echo", echo_init, echo_handle, NULL};

static int slow_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct tt_slow_count *c = state;
	if (m->type == TT_SLOW && m->size == sizeof(uint64_t)) {
		uint64_t seq;
		memcpy(&seq, m->data, sizeof(seq));
		c->bad += seq != c->got;
		c->got++;
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t);
		while ((t.tv_sec - t0.tv_sec) * 1000000000 +
		           (t.tv_nsec - t0.tv_nsec) <
		       20000);
	} else if (m->type == TT_SLOW_COUNT && m->ref != 0) {
		(void)tr_reply(ctx, m, TT_SLOW_COUNT, c, sizeof(*c));
	}
	return 0;
}

static const tr_behaviour slow_b = {"slow", NULL, slow_handle, NULL};

static int nodes_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != TT_NODES || m->ref == 0)
		return 0;
	tr_node_info v[16];
	tr_node_info_init(&v[0]);
	size_t k = 0;
	char out[16 * (TR_NODE_NAME_MAX + 1)];
	size_t len = 0;
	if (tr_node_list(v, 16, &k, tr_node_of(tr_runtime_of(ctx))) == TR_OK)
		for (size_t i = 0; i < k && i < 16; i++)
			len += (size_t)snprintf(
			    out + len, sizeof(out) - len, "%s\n", v[i].name);
	(void)tr_reply(ctx, m, TT_NODES, out, len);
	return 0;
}

static const tr_behaviour nodes_b = {"nodes", NULL, nodes_handle, NULL};

/* "nodemon": NODEUP / NODEDOWN counted per node name (a few nodes). */
#define NODEMON_MAX 16
struct nodemon {
	char name[NODEMON_MAX][TR_NODE_NAME_MAX + 1];
	struct tt_node_events ev[NODEMON_MAX];
	int n;
};

static struct tt_node_events *nodemon_of(struct nodemon *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->name[i], name) == 0)
			return &s->ev[i];
	if (s->n == NODEMON_MAX)
		return NULL;
	snprintf(s->name[s->n], sizeof(s->name[0]), "%s", name);
	memset(&s->ev[s->n], 0, sizeof(s->ev[0]));
	return &s->ev[s->n++];
}

static int nodemon_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct nodemon *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return TR_ENOMEM;
	*state = s;
	return tr_monitor_node(ctx, NULL, true);
}

static int nodemon_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct nodemon *s = state;
	tr_node_event ev;
	if ((m->type == TR_MSG_NODEUP || m->type == TR_MSG_NODEDOWN) &&
	    m->size >= sizeof(ev.node)) {
		memcpy(ev.node, m->data, sizeof(ev.node));
		ev.node[TR_NODE_NAME_MAX] = '\0';
		struct tt_node_events *c = nodemon_of(s, ev.node);
		if (c != NULL) {
			c->ups += m->type == TR_MSG_NODEUP;
			c->downs += m->type == TR_MSG_NODEDOWN;
		}
	} else if (m->type == TT_NODE_EVENTS && m->ref != 0) {
		char name[TR_NODE_NAME_MAX + 1];
		size_t l = m->size < TR_NODE_NAME_MAX ? m->size : TR_NODE_NAME_MAX;
		memcpy(name, m->data, l);
		name[l] = '\0';
		struct tt_node_events z = {0, 0}, *c = nodemon_of(s, name);
		(void)tr_reply(ctx, m, TT_NODE_EVENTS, c ? c : &z, sizeof(z));
	}
	return 0;
}

static void nodemon_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour nodemon_b = {
    "nodemon", nodemon_init, nodemon_handle, nodemon_terminate};
static const tr_behaviour crasher_b = {"crasher", echo_init, echo_handle, NULL};

/* ---- the probe (--probe) ------------------------------------------------ */

struct probe {
	tr_pid reporter;
	tr_pid peer;
	uint64_t ref; /* of the monitor on the peer */
};

static int probe_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct probe *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return TR_ENOMEM;
	(void)tr_trap_exit(ctx, true);
	*state = p;
	return TR_OK;
}

static void probe_report(
    tr_ctx *ctx, struct probe *p, struct tt_probe_report *r, tr_pid pid)
{
	tr_node *node = tr_node_of(tr_runtime_of(ctx));
	r->slot = pid.slot;
	r->gen = pid.gen;
	r->name_rc = tr_node_name_of(r->node, sizeof(r->node), node, pid);
	if (!tr_pid_is_none(p->reporter))
		(void)tr_send(ctx, p->reporter, TT_PROBE_REPORT, r, sizeof(*r));
}

/* The name in the payload of TT_PROBE_REG / TT_PROBE_UNREG, into `buf`
 * (TT_PROBE_NAME_MAX + 1 bytes); "" if it does not fit. */
static void probe_name(char *buf, const tr_msg *m)
{
	buf[0] = '\0';
	if (m->size > 0 && m->size <= TT_PROBE_NAME_MAX) {
		memcpy(buf, m->data, m->size);
		buf[m->size] = '\0';
	}
}

static int probe_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct probe *p = state;
	struct tt_probe_report r;
	memset(&r, 0, sizeof(r));
	tr_exit_info info;
	char name[TT_PROBE_NAME_MAX + 1];
	tr_pid pid = TR_PID_NONE;
	switch (m->type) {
	case TT_PROBE_SUB:
		p->reporter = tr_sender(m);
		r.what = TT_R_SUB;
		probe_report(ctx, p, &r, tr_self(ctx));
		break;
	case TT_PROBE_INTRO:
		p->peer = tr_sender(m);
		if (m->size >= sizeof(r.seq))
			memcpy(&r.seq, m->data, sizeof(r.seq));
		r.what = TT_R_INTRO;
		r.rc = tr_pid_is_none(p->peer)
		           ? TR_EINVAL
		           : tr_send(ctx, p->peer, TT_PROBE_HELLO, &r.seq,
		                 sizeof(r.seq));
		probe_report(ctx, p, &r, p->peer);
		break;
	case TT_PROBE_HELLO:
		if (m->size >= sizeof(r.seq))
			memcpy(&r.seq, m->data, sizeof(r.seq));
		r.what = TT_R_HELLO;
		probe_report(ctx, p, &r, tr_sender(m));
		break;
	case TT_PROBE_WATCH:
		r.what = TT_R_WATCH;
		r.rc = tr_link(ctx, p->peer);
		r.rc2 = tr_monitor(ctx, &p->ref, p->peer);
		if (r.rc == TR_OK && r.rc2 == TR_OK)
			r.rc = tr_send(ctx, p->peer, TT_PROBE_PING, NULL, 0);
		probe_report(ctx, p, &r, p->peer);
		break;
	case TT_PROBE_PING:
		(void)tr_send(ctx, tr_sender(m), TT_PROBE_PONG, NULL, 0);
		break;
	case TT_PROBE_PONG:
		r.what = TT_R_PONG;
		probe_report(ctx, p, &r, tr_sender(m));
		break;
	case TT_PROBE_REG:
		probe_name(name, m);
		r.what = TT_R_REG;
		r.rc = tr_spawn(&pid, tr_runtime_of(ctx), &echo_b, NULL, NULL);
		if (r.rc == TR_OK && (r.rc = tr_register(tr_runtime_of(ctx),
		                          name, pid)) != TR_OK)
			(void)tr_kill(tr_runtime_of(ctx), pid, TR_REASON_KILL);
		probe_report(ctx, p, &r, pid);
		break;
	case TT_PROBE_UNREG:
		probe_name(name, m);
		r.what = TT_R_UNREG;
		r.rc = tr_unregister(tr_runtime_of(ctx), name);
		probe_report(ctx, p, &r, tr_self(ctx));
		break;
	case TR_MSG_EXIT:
	case TR_MSG_DOWN:
		if (m->size < sizeof(info))
			break;
		memcpy(&info, m->data, sizeof(info));
		r.what = m->type == TR_MSG_EXIT ? TT_R_EXIT : TT_R_DOWN;
		r.reason = info.reason;
		r.seq = m->type == TR_MSG_DOWN && info.ref == p->ref;
		probe_report(ctx, p, &r, info.pid);
		break;
	default:
		break;
	}
	return 0;
}

static void probe_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour probe_b = {
    "probe", probe_init, probe_handle, probe_terminate};

struct keeper {
	tr_node *node;
	const char *url;
};

static void *keep_connecting(void *arg)
{
	struct keeper *k = arg;
	for (;;) {
		(void)tr_node_connect(k->node, k->url, 2000, NULL);
		usleep(100 * 1000);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static struct tt_proc p;
	if (tt_proc_init(&p, argc, argv, "child", SIGUSR1) != 0)
		return 2;
	tr_node_opts *o = &p.o;
	const char *keep = NULL;
	bool probe = false, sup = false;
	for (int i = 4; i < argc; i++) {
		if (tt_proc_opt(&p, argc, argv, &i)) {
			continue;
		} else if (strcmp(argv[i], "--max-frame") == 0 &&
		           i + 1 < argc) {
			o->max_frame = (size_t)atol(argv[++i]);
		} else if (strcmp(argv[i], "--tls") == 0 && i + 3 < argc) {
			o->tls_ca_file = argv[++i];
			o->tls_cert_file = argv[++i];
			o->tls_key_file = argv[++i];
		} else if (strcmp(argv[i], "--probe") == 0) {
			probe = true;
		} else if (strcmp(argv[i], "--keep-connecting") == 0 &&
		           i + 1 < argc) {
			keep = argv[++i];
		} else if (strcmp(argv[i], "--sup") == 0) {
			sup = true;
		} else if (strcmp(argv[i], "--recv-actor-max") == 0 &&
		           i + 1 < argc) {
			o->recv_actor_max = (size_t)atol(argv[++i]);
		} else if (strcmp(argv[i], "--recv-max") == 0 && i + 1 < argc) {
			o->recv_max = (size_t)atol(argv[++i]);
		} else if (strcmp(argv[i], "--connect-all") == 0 &&
		           i + 1 < argc) {
			o->connect_all =
			    atoi(argv[++i]) ? TR_NODE_ON : TR_NODE_OFF;
		} else if (strcmp(argv[i], "--reconnect") == 0 &&
		           i + 1 < argc) {
			o->reconnect = atoi(argv[++i]) ? TR_NODE_ON : TR_NODE_OFF;
		} else if (strcmp(argv[i], "--inc") == 0 && i + 1 < argc) {
			o->incarnation = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--observer") == 0 && i + 1 < argc) {
			o->observer_url = argv[++i];
		} else if (strcmp(argv[i], "--client") == 0 && i + 1 < argc) {
			o->client_url = argv[++i];
		} else if (strcmp(argv[i], "--client-max-calls") == 0 &&
		           i + 1 < argc) {
			o->client_max_calls = (uint32_t)atol(argv[++i]);
		} else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (tt_proc_start(&p, 2) != 0)
		return 1;
	tr_runtime *rt = p.rt;
	tr_node *node = p.node;
	tr_pid echo;
	if (tr_spawn(&echo, rt, &echo_b, NULL, NULL) != TR_OK ||
	    tr_register(rt, "echo", echo) != TR_OK ||
	    tr_node_register_behaviour(node, "echo", &echo_b) != TR_OK ||
	    tr_node_register_behaviour(node, "crasher", &crasher_b) != TR_OK)
		return 1;
	static struct tt_slow_count slow_count;
	tr_pid slow;
	if (tr_spawn(&slow, rt, &slow_b, &slow_count, NULL) != TR_OK ||
	    tr_register(rt, "slow", slow) != TR_OK)
		return 1;
	tr_pid nodes_pid;
	if (tr_spawn(&nodes_pid, rt, &nodes_b, NULL, NULL) != TR_OK ||
	    tr_register(rt, "nodes", nodes_pid) != TR_OK)
		return 1;
	tr_pid nodemon_pid;
	if (tr_spawn(&nodemon_pid, rt, &nodemon_b, NULL, NULL) != TR_OK ||
	    tr_register(rt, "nodemon", nodemon_pid) != TR_OK)
		return 1;
	tr_pid probe_pid;
	if (probe && (tr_spawn(&probe_pid, rt, &probe_b, NULL, NULL) != TR_OK ||
	                 tr_register(rt, "probe", probe_pid) != TR_OK))
		return 1;
	if (sup) {
		tr_sup_flags f;
		tr_sup_flags_init(&f);
		tr_pid sp;
		if (tr_sup_start(&sp, rt, &f, NULL, 0, NULL) != TR_OK ||
		    tr_register(rt, "sup", sp) != TR_OK)
			return 1;
	}
	pthread_t kt;
	struct keeper kp = {node, keep};
	if (keep != NULL &&
	    pthread_create(&kt, NULL, keep_connecting, &kp) != 0)
		return 1;
	if (o->observer_url != NULL) {
		char url[128];
		if (tr_node_observer_url(url, sizeof(url), node) != TR_OK)
			return 1;
		printf("OBSERVER %s\n", url);
	}
	if (tt_proc_ready(&p) != 0)
		return 1;

	while (tt_proc_wait(&p) == SIGUSR1) {
		tr_node_info v[16];
		tr_node_info_init(&v[0]);
		size_t k = 0;
		(void)tr_node_list(v, 16, &k, node);
		printf("NODES");
		for (size_t i = 0; i < k && i < 16; i++)
			printf(" %s", v[i].name);
		printf("\n");
		fflush(stdout);
	}
	tt_proc_stop(&p);
	return 0;
}
