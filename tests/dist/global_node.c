/*
 * The test node of test_node_global.c: a node whose actor "gtest" does
 * with global names what a test asks (global_proto.h).
 *
 *   troupe-test-gnode NAME LISTEN-URL COOKIE [--tick MS] [--seed URL]...
 *                     [--connect-all 0|1] [--reg NAME:METHOD]...
 *
 * With --reg it waits for a first peer, then registers a holder for each
 * NAME with METHOD (tr_global_method) before it is ready, so that a test
 * can have names registered on a side of a partition it cannot reach.
 * It prints "READY <listen url>" and runs until SIGTERM or SIGINT (or its
 * parent dies: it asks the kernel to kill it then).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pid.h>
#include <troupe/troupe.h>

#include "global_proto.h"
#include "node_proc.h"

static tr_node *node;

/* ---- holders ------------------------------------------------------------- */

struct holder {
	tr_pid gtest;
	char name[TR_GLOBAL_NAME_MAX + 1];
};

static int holder_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int holder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct holder *h = state;
	if (m->type == GT_PING) {
		tr_pid to;
		if (tr_pid_decode(&to, node, m->data, m->size) == TR_OK)
			(void)tr_send(
			    ctx, to, GT_PONG, h->name, strlen(h->name));
	} else if (m->type == TR_MSG_GLOBAL_CONFLICT) {
		(void)tr_send(ctx, h->gtest, GT_PONG, h->name, strlen(h->name));
	}
	return 0;
}

static void holder_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour holder_b = {
    "holder", holder_init, holder_handle, holder_terminate};

/* ---- gtest --------------------------------------------------------------- */

#define SLOTS 512

struct slot {
	bool used;
	char name[TR_GLOBAL_NAME_MAX + 1];
	tr_pid pid;
	uint64_t mref;
	bool alive;
	int32_t reason, conflicts;
	tr_pid reply_to;
	uint64_t token;
};

struct race {
	bool on;
	tr_pid reply_to;
	uint64_t token;
	uint32_t i, count, won;
	char prefix[64];
};

struct gstate {
	struct slot s[SLOTS];
	struct race race;
};

static void copy_name(char *dst, const tr_msg *m)
{
	size_t l = m->size < TR_GLOBAL_NAME_MAX ? m->size : TR_GLOBAL_NAME_MAX;
	memcpy(dst, m->data, l);
	dst[l] = '\0';
}

/* The newest holder of `name`. */
static struct slot *slot_of(struct gstate *g, const char *name)
{
	for (int i = SLOTS - 1; i >= 0; i--)
		if (g->s[i].used && strcmp(g->s[i].name, name) == 0)
			return &g->s[i];
	return NULL;
}

static int spawn_holder(tr_ctx *ctx, const char *name, tr_pid *pid)
{
	struct holder *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return TR_ENOMEM;
	h->gtest = tr_self(ctx);
	snprintf(h->name, sizeof(h->name), "%s", name);
	int rc = tr_spawn(pid, tr_runtime_of(ctx), &holder_b, h, NULL);
	if (rc != TR_OK)
		free(h);
	return rc;
}

static void reg_reply(tr_ctx *ctx, struct slot *s, int rc)
{
	struct gt_reg_done d;
	memset(&d, 0, sizeof(d));
	d.token = s->token;
	d.rc = rc;
	size_t len = 0;
	(void)tr_pid_encode(d.pid, sizeof(d.pid), &len, node, s->pid);
	d.len = (uint32_t)len;
	(void)tr_send(ctx, s->reply_to, GT_REG_DONE, &d, sizeof(d));
}

static int reg_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)reply;
	struct gstate *g = state;
	reg_reply(ctx, &g->s[(uintptr_t)arg], status);
	return 0;
}

static void race_step(tr_ctx *ctx, struct gstate *g);

static int race_done(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)reply;
	(void)arg;
	struct gstate *g = state;
	if (status == TR_OK)
		g->race.won++;
	g->race.i++;
	race_step(ctx, g);
	return 0;
}

static void race_step(tr_ctx *ctx, struct gstate *g)
{
	struct race *r = &g->race;
	while (r->i < r->count) {
		char name[128];
		snprintf(name, sizeof(name), "%s%u", r->prefix, r->i);
		tr_pid pid;
		if (spawn_holder(ctx, name, &pid) == TR_OK &&
		    tr_global_register_then(ctx, NULL, name, pid, NULL, 10000,
		        race_done, NULL) == TR_OK)
			return;
		r->i++;
	}
	struct gt_race_done d = {r->token, r->won};
	(void)tr_send(ctx, r->reply_to, GT_RACE_DONE, &d, sizeof(d));
	r->on = false;
}

static int gtest_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	*state = calloc(1, sizeof(struct gstate));
	return *state != NULL ? TR_OK : 1;
}

static void do_reg(tr_ctx *ctx, struct gstate *g, const tr_msg *m)
{
	struct gt_reg rq;
	if (m->size != sizeof(rq))
		return;
	memcpy(&rq, m->data, sizeof(rq));
	rq.name[TR_GLOBAL_NAME_MAX] = '\0';
	int i = 0;
	while (i < SLOTS && g->s[i].used)
		i++;
	if (i == SLOTS)
		return;
	struct slot *s = &g->s[i];
	memset(s, 0, sizeof(*s));
	s->used = true;
	snprintf(s->name, sizeof(s->name), "%s", rq.name);
	s->reply_to = tr_sender(m);
	s->token = rq.token;
	int rc = spawn_holder(ctx, rq.name, &s->pid);
	if (rc == TR_OK) {
		s->alive = true;
		(void)tr_monitor(ctx, &s->mref, s->pid);
	}
	if (rc == TR_OK && !rq.spawn_only) {
		tr_global_opts o;
		tr_global_opts_init(&o);
		o.method = rq.method;
		rc = tr_global_register_then(ctx, NULL, rq.name, s->pid, &o,
		    5000, reg_done, (void *)(uintptr_t)i);
		if (rc == TR_OK)
			return;
	}
	reg_reply(ctx, s, rc);
}

static int gtest_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct gstate *g = state;
	char name[TR_GLOBAL_NAME_MAX + 1];
	int32_t rc;
	switch (m->type) {
	case GT_REG:
		do_reg(ctx, g, m);
		break;
	case GT_RACE: {
		struct gt_race rq;
		if (m->size != sizeof(rq) || g->race.on)
			break;
		memcpy(&rq, m->data, sizeof(rq));
		rq.prefix[sizeof(rq.prefix) - 1] = '\0';
		g->race = (struct race){
		    true, tr_sender(m), rq.token, 0, rq.count, 0, ""};
		snprintf(
		    g->race.prefix, sizeof(g->race.prefix), "%s", rq.prefix);
		race_step(ctx, g);
		break;
	}
	case GT_WHEREIS: {
		struct gt_where w;
		memset(&w, 0, sizeof(w));
		copy_name(name, m);
		tr_pid pid;
		w.rc = tr_global_whereis(&pid, node, name);
		size_t len = 0;
		if (w.rc == TR_OK)
			w.rc = tr_pid_encode(
			    w.pid, sizeof(w.pid), &len, node, pid);
		w.len = (uint32_t)len;
		(void)tr_reply(ctx, m, GT_WHEREIS, &w, sizeof(w));
		break;
	}
	case GT_UNREG:
		copy_name(name, m);
		rc = tr_global_unregister(node, name);
		(void)tr_reply(ctx, m, GT_UNREG, &rc, sizeof(rc));
		break;
	case GT_KILL: {
		copy_name(name, m);
		struct slot *s = slot_of(g, name);
		rc = s != NULL
		         ? tr_kill(tr_runtime_of(ctx), s->pid, GT_KILL_REASON)
		         : TR_ENOENT;
		(void)tr_reply(ctx, m, GT_KILL, &rc, sizeof(rc));
		break;
	}
	case GT_STATUS: {
		copy_name(name, m);
		struct slot *s = slot_of(g, name);
		struct gt_status st = {-1, 0, 0};
		if (s != NULL)
			st = (struct gt_status){
			    s->alive, s->reason, s->conflicts};
		(void)tr_reply(ctx, m, GT_STATUS, &st, sizeof(st));
		break;
	}
	case GT_STATS: {
		tr_global_stats st;
		tr_global_stats_init(&st);
		(void)tr_global_stats_get(&st, node);
		(void)tr_reply(ctx, m, GT_STATS, &st, sizeof(st));
		break;
	}
	case GT_JUNK: {
		copy_name(name, m);
		static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f, 0x12};
		rc = tr_send_remote_named(ctx, name, TR_GLOBAL_SERVER_NAME,
		    GT_T_SYNC, junk, sizeof(junk));
		(void)tr_reply(ctx, m, GT_JUNK, &rc, sizeof(rc));
		break;
	}
	case GT_SEND: {
		struct gt_send sd;
		rc = TR_EINVAL;
		if (m->size == sizeof(sd)) {
			memcpy(&sd, m->data, sizeof(sd));
			sd.name[TR_GLOBAL_NAME_MAX] = '\0';
			rc = tr_global_send(ctx, sd.name, GT_PING, sd.pid,
			    sd.len <= sizeof(sd.pid) ? sd.len : 0);
		}
		(void)tr_reply(ctx, m, GT_SEND, &rc, sizeof(rc));
		break;
	}
	case GT_NAMES: {
		size_t k = 0;
		(void)tr_global_names(NULL, 0, &k, node);
		uint32_t c = (uint32_t)k;
		(void)tr_reply(ctx, m, GT_NAMES, &c, sizeof(c));
		break;
	}
	case GT_PONG: { /* a holder got a conflict message */
		copy_name(name, m);
		struct slot *s = slot_of(g, name);
		if (s != NULL)
			s->conflicts++;
		break;
	}
	case GT_NODES: {
		size_t k = 0;
		(void)tr_node_list(NULL, 0, &k, node);
		uint32_t c = (uint32_t)k;
		(void)tr_reply(ctx, m, GT_NODES, &c, sizeof(c));
		break;
	}
	case TR_MSG_DOWN:
		for (int i = 0; i < SLOTS; i++)
			if (g->s[i].used && g->s[i].mref == m->ref) {
				const tr_exit_info *x =
				    (const tr_exit_info *)m->data;
				g->s[i].alive = false;
				g->s[i].reason = x->reason;
			}
		break;
	default:
		break;
	}
	return 0;
}

static void gtest_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour gtest_b = {
    "gtest", gtest_init, gtest_handle, gtest_terminate};

/* --reg: after a first peer is up, registers each NAME:METHOD through
 * gtest, as a test's GT_REG would. */
static int startup_regs(tr_runtime *rt, tr_pid gt, const char **regs, int n)
{
	size_t k = 0;
	for (int i = 0; i < 1000 && k == 0; i++) {
		(void)tr_node_list(NULL, 0, &k, node);
		if (k == 0)
			usleep(10 * 1000);
	}
	tr_port *port;
	if (k == 0 || tr_port_open(&port, rt) != TR_OK)
		return -1;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		struct gt_reg rq;
		memset(&rq, 0, sizeof(rq));
		rq.token = (uint64_t)i + 1;
		const char *colon = strchr(regs[i], ':');
		size_t l = colon ? (size_t)(colon - regs[i]) : strlen(regs[i]);
		memcpy(rq.name, regs[i], l < TR_GLOBAL_NAME_MAX ? l : 0);
		rq.method = colon ? atoi(colon + 1) : 0;
		tr_msg *m = NULL;
		rc = -1;
		if (tr_port_send(port, gt, GT_REG, &rq, sizeof(rq)) == TR_OK &&
		    tr_port_recv(&m, port, 10000) == TR_OK &&
		    m->type == GT_REG_DONE &&
		    m->size == sizeof(struct gt_reg_done))
			rc = ((const struct gt_reg_done *)m->data)->rc == TR_OK
			         ? 0
			         : -1;
		tr_msg_free(m);
		if (rc != 0)
			printf("FAILED --reg %s\n", regs[i]);
	}
	tr_port_close(port);
	return rc;
}

int main(int argc, char **argv)
{
	static struct tt_proc p;
	if (tt_proc_init(&p, argc, argv, "gnode", 0) != 0)
		return 2;
	const char *regs[8];
	int nregs = 0;
	for (int i = 4; i < argc; i++) {
		if (tt_proc_opt(&p, argc, argv, &i)) {
			continue;
		} else if (strcmp(argv[i], "--connect-all") == 0 &&
		           i + 1 < argc) {
			p.o.connect_all =
			    atoi(argv[++i]) ? TR_NODE_ON : TR_NODE_OFF;
		} else if (strcmp(argv[i], "--reg") == 0 && i + 1 < argc &&
		           nregs < 8) {
			regs[nregs++] = argv[++i];
		} else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (tt_proc_start(&p, 2) != 0)
		return 1;
	node = p.node;
	tr_pid gt;
	if (tr_spawn(&gt, p.rt, &gtest_b, NULL, NULL) != TR_OK ||
	    tr_register(p.rt, "gtest", gt) != TR_OK)
		return 1;
	if (nregs > 0 && startup_regs(p.rt, gt, regs, nregs) != 0)
		return 1;
	if (tt_proc_ready(&p) != 0)
		return 1;
	(void)tt_proc_wait(&p);
	tt_proc_stop(&p);
	return 0;
}
