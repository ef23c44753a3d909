/*
 * The name server (docs/global.md): one actor per node, registered as
 * "troupe.global". It follows the nodes that are up (tr_monitor_node),
 * sends each new peer the names this node owns (SYNC), drops the names of
 * a node that went down, monitors the pids of the names it owns, resolves
 * conflicts after a partition, and hands registrations to global_claim.c.
 * Only it writes the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "crypto.h"
#include "global_int.h"
#include "troupe/pb.h"
#include "troupe/pid.h"

int64_t tr__gwall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tr__gname_ok(const char *s)
{
	return s != NULL && s[0] != '\0' &&
	       strnlen(s, TR_GLOBAL_NAME_MAX + 1) <= TR_GLOBAL_NAME_MAX;
}

void tr__gbad(struct tr__global *g, const char *peer, const char *what)
{
	atomic_fetch_add_explicit(&g->n_malformed, 1, memory_order_relaxed);
	tr__ratelogf(&g->log_bad, g->n->rt, 0,
	    "GLOBAL %s: dropped a message from node %s: %s", g->n->name, peer,
	    what);
}

int tr__gsend(
    struct tr__global *g, const char *peer, uint32_t type, const GMsg *m)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t stackbuf[1024];
	uint8_t *buf = len <= sizeof(stackbuf) ? stackbuf : malloc(len);
	if (buf == NULL)
		return TR_ENOMEM;
	protobuf_c_message_pack(&m->base, buf);
	int rc = tr_send_remote_named(
	    g->ctx, peer, TR_GLOBAL_SERVER_NAME, type, buf, len);
	if (buf != stackbuf)
		free(buf);
	if (rc != TR_OK && rc != TR_ENOPROC)
		tr__ratelogf(&g->log_send, g->n->rt, 0,
		    "GLOBAL %s: a message to node %s was not sent: %s",
		    g->n->name, peer, tr_strerror(rc));
	return rc;
}

void tr__gentry_out(struct tr__global *g, const struct tr__gentry *x, GEntry *e,
    uint8_t *pidbuf)
{
	troupe__global__entry__init(e);
	size_t len = 0;
	if (tr_pid_encode(pidbuf, TR_PID_ENCODED_MAX, &len, g->n, x->pid) !=
	    TR_OK)
		len = 0;
	e->name = (char *)x->name;
	e->pid.data = pidbuf;
	e->pid.len = len;
	e->at_ms = x->at_ms;
	e->method = (uint32_t)x->method;
}

bool tr__gentry_in(
    struct tr__global *g, const char *peer, const GEntry *e, tr_pid *pid)
{
	if (e == NULL || !tr__gname_ok(e->name) ||
	    e->method > TR_GLOBAL_UNREGISTER) {
		tr__gbad(g, peer, "a bad entry");
		return false;
	}
	int rc = tr_pid_decode(pid, g->n, e->pid.data, e->pid.len);
	if (rc == TR_ENOPROC)
		return false; /* stale: nothing to hold */
	char owner[TR_NODE_NAME_MAX + 1];
	if (rc != TR_OK ||
	    tr_node_name_of(owner, sizeof(owner), g->n, *pid) != TR_OK ||
	    strcmp(owner, peer) != 0) {
		tr__gbad(g, peer, "a pid that is not the sender's");
		return false;
	}
	return true;
}

static bool peer_up(struct tr__global *g, const char *name)
{
	for (uint32_t i = 0; i < g->npeers; i++)
		if (strcmp(g->peers[i], name) == 0)
			return true;
	return false;
}

static void to_all(struct tr__global *g, uint32_t type, const GMsg *m)
{
	for (uint32_t i = 0; i < g->npeers; i++)
		(void)tr__gsend(g, g->peers[i], type, m);
}

void tr__gtick_arm(struct tr__global *g)
{
	if (g->tick_armed || g->ctx == NULL)
		return;
	if (tr_send_after(g->ctx, NULL, g->server, TR__GLOBAL_TICK_MS, 0,
	        TR__GLOBAL_L_TICK, NULL, 0) == TR_OK)
		g->tick_armed = true;
}

int tr__glocal_put(struct tr__global *g, const char *name, tr_pid pid,
    int64_t at_ms, int32_t method)
{
	struct tr__gentry *e =
	    tr__gtab_put(&g->tab, name, g->n->name, pid, at_ms, method);
	if (e == NULL)
		return TR_ENOMEM;
	e->local = true;
	if (tr_monitor(g->ctx, &e->mref, pid) != TR_OK) {
		tr__gtab_del(&g->tab, e);
		return TR_ENOPROC;
	}
	return TR_OK;
}

void tr__glocal_drop(struct tr__global *g, struct tr__gentry *e)
{
	if (e->mref != 0)
		(void)tr_demonitor(g->ctx, e->mref);
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	GEntry w;
	uint8_t pb[TR_PID_ENCODED_MAX];
	tr__gentry_out(g, e, &w, pb);
	m.entry = &w;
	to_all(g, TR__GLOBAL_T_REMOVE, &m);
	tr__gtab_del(&g->tab, e);
}

/* Whether entry a (at, owner, pid) beats b: the earlier registration, then
 * the owner whose name sorts first, then the lower pid (slot, gen: the
 * same on every node for pids of one node). */
static bool beats(int64_t at_a, const char *own_a, tr_pid a, int64_t at_b,
    const char *own_b, tr_pid b)
{
	if (at_a != at_b)
		return at_a < at_b;
	int c = strcmp(own_a, own_b);
	if (c != 0)
		return c < 0;
	if (a.slot != b.slot)
		return a.slot < b.slot;
	return a.gen < b.gen;
}

/* A pid of this node lost `e` to `winner`: drop the name (every peer is
 * told) and apply its method. */
static void lose(struct tr__global *g, struct tr__gentry *e, tr_pid winner)
{
	atomic_fetch_add_explicit(&g->n_conflicts, 1, memory_order_relaxed);
	tr_pid loser = e->pid;
	int32_t method = e->method;
	tr_global_conflict c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", e->name);
	c.winner = winner;
	tr_logf(g->n->rt, TR_LOG_INFO,
	    "GLOBAL %s: name '%s' lost a conflict after a partition (%s)",
	    g->n->name, e->name,
	    method == TR_GLOBAL_KILL     ? "killed"
	    : method == TR_GLOBAL_NOTIFY ? "notified"
	                                 : "unregistered");
	tr__glocal_drop(g, e);
	if (method == TR_GLOBAL_KILL)
		(void)tr_kill(g->n->rt, loser, TR_REASON_KILL);
	else if (method == TR_GLOBAL_NOTIFY)
		(void)tr__inject_msg(g->n, loser, TR_MSG_GLOBAL_CONFLICT, &c,
		    sizeof(c), g->server, 0, 0);
}

void tr__gapply(struct tr__global *g, const char *owner, const char *name,
    tr_pid pid, int64_t at_ms, int32_t method)
{
	struct tr__gentry *e = tr__gtab_find(&g->tab, name);
	if (e != NULL && tr_pid_eq(e->pid, pid))
		return;
	if (e != NULL) {
		if (beats(e->at_ms, e->owner, e->pid, at_ms, owner, pid))
			return; /* ours stands; its owner beats the other */
		if (e->local)
			lose(g, e, pid);
		else
			tr__gtab_del(&g->tab, e);
	}
	if (tr__gtab_put(&g->tab, name, owner, pid, at_ms, method) == NULL) {
		atomic_fetch_add_explicit(
		    &g->n_refused, 1, memory_order_relaxed);
		tr__ratelogf(&g->log_refused, g->n->rt, 0,
		    "GLOBAL %s: name '%s' of node %s not taken: the table is "
		    "full (%u names)",
		    g->n->name, name, owner, TR_GLOBAL_MAX_NAMES);
	}
}

/* ---- node events ------------------------------------------------------- */

struct sync_ctx {
	struct tr__global *g;
	const char *peer;
	GEntry *ents;
	GEntry **ptrs;
	uint8_t (*pids)[TR_PID_ENCODED_MAX];
	uint32_t k;
};

static void sync_flush(struct sync_ctx *s)
{
	if (s->k == 0)
		return;
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	m.entries = s->ptrs;
	m.n_entries = s->k;
	(void)tr__gsend(s->g, s->peer, TR__GLOBAL_T_SYNC, &m);
	s->k = 0;
}

static void sync_one(struct tr__gentry *e, void *arg)
{
	struct sync_ctx *s = arg;
	if (!e->local)
		return;
	tr__gentry_out(s->g, e, &s->ents[s->k], s->pids[s->k]);
	s->ptrs[s->k] = &s->ents[s->k];
	if (++s->k == TR__GLOBAL_SYNC_MAX)
		sync_flush(s);
}

static void sync_to(struct tr__global *g, const char *peer)
{
	struct sync_ctx s = {g, peer, NULL, NULL, NULL, 0};
	s.ents = calloc(TR__GLOBAL_SYNC_MAX, sizeof(*s.ents));
	s.ptrs = calloc(TR__GLOBAL_SYNC_MAX, sizeof(*s.ptrs));
	s.pids = calloc(TR__GLOBAL_SYNC_MAX, sizeof(*s.pids));
	if (s.ents != NULL && s.ptrs != NULL && s.pids != NULL) {
		tr__gtab_each(&g->tab, sync_one, &s);
		sync_flush(&s);
	}
	free(s.ents);
	free(s.ptrs);
	free(s.pids);
}

static void node_up(struct tr__global *g, const char *peer)
{
	if (!peer_up(g, peer)) {
		if (!tr__node_grow((void **)&g->peers, g->npeers, &g->cap_peers,
		        sizeof(*g->peers)))
			return;
		char *p = strdup(peer);
		if (p == NULL)
			return;
		g->peers[g->npeers++] = p;
	}
	sync_to(g, peer);
}

static void drop_owned_by(struct tr__gentry *e, void *arg)
{
	struct tr__global *g = ((void **)arg)[0];
	const char *peer = ((void **)arg)[1];
	if (!e->local && strcmp(e->owner, peer) == 0)
		tr__gtab_del(&g->tab, e);
}

static void node_down(struct tr__global *g, const char *peer)
{
	for (uint32_t i = 0; i < g->npeers; i++)
		if (strcmp(g->peers[i], peer) == 0) {
			free(g->peers[i]);
			g->peers[i] = g->peers[--g->npeers];
			break;
		}
	void *arg[2] = {g, (void *)peer};
	tr__gtab_each(&g->tab, drop_owned_by, arg);
	tr__gclaim_nodedown(g, peer);
}

/* ---- messages of peers ------------------------------------------------- */

static void sync_in(struct tr__global *g, const char *peer, const GMsg *m)
{
	size_t k = m->n_entries;
	if (k > TR__GLOBAL_SYNC_MAX) {
		atomic_fetch_add_explicit(&g->n_refused,
		    k - TR__GLOBAL_SYNC_MAX, memory_order_relaxed);
		tr__ratelogf(&g->log_refused, g->n->rt, 0,
		    "GLOBAL %s: %zu names of a sync from node %s refused "
		    "(at most %u in one)",
		    g->n->name, k - TR__GLOBAL_SYNC_MAX, peer,
		    TR__GLOBAL_SYNC_MAX);
		k = TR__GLOBAL_SYNC_MAX;
	}
	for (size_t i = 0; i < k; i++) {
		tr_pid pid;
		const GEntry *e = m->entries[i];
		if (tr__gentry_in(g, peer, e, &pid))
			tr__gapply(g, peer, e->name, pid, e->at_ms,
			    (int32_t)e->method);
	}
}

static void remove_in(struct tr__global *g, const char *peer, const GMsg *m)
{
	tr_pid pid;
	if (!tr__gentry_in(g, peer, m->entry, &pid))
		return;
	struct tr__gentry *e = tr__gtab_find(&g->tab, m->entry->name);
	if (e != NULL && !e->local && tr_pid_eq(e->pid, pid))
		tr__gtab_del(&g->tab, e);
}

static void unreg_in(struct tr__global *g, const char *peer, const GMsg *m)
{
	if (!tr__gname_ok(m->name)) {
		tr__gbad(g, peer, "a bad name");
		return;
	}
	struct tr__gentry *e = tr__gtab_find(&g->tab, m->name);
	if (e != NULL && e->local)
		tr__glocal_drop(g, e);
}

static void wire_in(struct tr__global *g, const tr_msg *msg)
{
	char peer[TR_NODE_NAME_MAX + 1];
	if (msg->sender.node == 0 ||
	    tr_node_name_of(peer, sizeof(peer), g->n, msg->sender) != TR_OK)
		return; /* not from a peer's server: not ours to take */
	ProtobufCMessage *pm = NULL;
	if (tr_pb_unpack(&pm, msg, &troupe__global__msg__descriptor,
	        TR__GLOBAL_MSG_BUDGET(msg->size)) != TR_OK) {
		tr__gbad(g, peer, "undecodable");
		return;
	}
	const GMsg *m = (const GMsg *)pm;
	switch (msg->type) {
	case TR__GLOBAL_T_SYNC:
		sync_in(g, peer, m);
		break;
	case TR__GLOBAL_T_REMOVE:
		remove_in(g, peer, m);
		break;
	case TR__GLOBAL_T_FWD_UNREG:
		unreg_in(g, peer, m);
		break;
	case TR__GLOBAL_T_FWD_REPLY:
		tr__gclaim_fwd_reply(g, peer, m);
		break;
	default:
		tr__gclaim_in(g, peer, msg->type, m);
		break;
	}
	tr_pb_free(pm);
}

/* ---- the actor ----------------------------------------------------------- */

static int gs_init(tr_ctx *ctx, void *arg, void **state)
{
	struct tr__global *g = arg;
	g->ctx = ctx;
	*state = g;
	return tr_monitor_node(ctx, NULL, true) == TR_OK ? TR_OK : 1;
}

static int gs_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct tr__global *g = state;
	g->ctx = ctx;
	if (m->type == TR_MSG_NODEUP || m->type == TR_MSG_NODEDOWN) {
		if (m->size < TR_NODE_EVENT_V1_SIZE)
			return 0;
		char peer[TR_NODE_NAME_MAX + 1];
		snprintf(peer, sizeof(peer), "%s",
		    ((const tr_node_event *)m->data)->node);
		if (m->type == TR_MSG_NODEUP)
			node_up(g, peer);
		else
			node_down(g, peer);
		return 0;
	}
	if (m->type == TR_MSG_DOWN && m->size >= sizeof(tr_exit_info)) {
		const tr_exit_info *x = (const tr_exit_info *)m->data;
		struct tr__gentry *e = tr__gtab_find_pid(&g->tab, x->pid);
		if (e != NULL && e->local && e->mref == m->ref) {
			e->mref = 0;
			tr__glocal_drop(g, e);
		}
		return 0;
	}
	if (m->type == TR__GLOBAL_L_TICK) {
		g->tick_armed = false;
		if (tr__gclaim_tick(g, tr__node_now_ms()))
			tr__gtick_arm(g);
		return 0;
	}
	if ((m->type == TR__GLOBAL_L_REG || m->type == TR__GLOBAL_L_UNREG) &&
	    m->sender.node == 0 && m->size == sizeof(struct tr__greq)) {
		struct tr__greq rq;
		memcpy(&rq, m->data, sizeof(rq));
		rq.name[TR_GLOBAL_NAME_MAX] = '\0';
		if (m->type == TR__GLOBAL_L_UNREG) {
			struct tr__gentry *e = tr__gtab_find(&g->tab, rq.name);
			GMsg w = TROUPE__GLOBAL__MSG__INIT;
			w.name = rq.name;
			if (e != NULL && e->local)
				tr__glocal_drop(g, e);
			else if (e != NULL)
				(void)tr__gsend(
				    g, e->owner, TR__GLOBAL_T_FWD_UNREG, &w);
		} else if (rq.pid.node != 0) {
			tr__gclaim_fwd(g, &rq, m->sender, m->ref);
		} else {
			tr__gclaim_start(g, rq.name, rq.pid, rq.method,
			    rq.timeout_ms, m->sender, m->ref, NULL, 0);
		}
		return 0;
	}
	if (m->type > TR__GLOBAL_T_BASE && m->type <= TR__GLOBAL_T_LAST)
		wire_in(g, m);
	return 0;
}

static void gs_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)reason;
	struct tr__global *g = state;
	g->ctx = ctx;
	tr__gclaim_fini(g);
	for (uint32_t i = 0; i < g->npeers; i++)
		free(g->peers[i]);
	free(g->peers);
	g->peers = NULL;
	g->npeers = 0;
	g->ctx = NULL;
}

static const tr_behaviour gs_behaviour = {
    .name = "troupe.global",
    .init = gs_init,
    .handle = gs_handle,
    .terminate = gs_terminate,
};

int tr__global_start(struct tr_node *n)
{
	struct tr__global *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return TR_ENOMEM;
	g->n = n;
	if (tr__gtab_init(&g->tab) != TR_OK) {
		free(g);
		return TR_ENOMEM;
	}
	g->grant_ms = 8 * (int64_t)n->tick_ms;
	if (g->grant_ms < 2000)
		g->grant_ms = 2000;
	(void)tr__random(&g->rng, sizeof(g->rng));
	g->rng |= 1;
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_SYNC_INIT;
	int rc = tr_spawn(&g->server, n->rt, &gs_behaviour, g, &so);
	if (rc == TR_OK) {
		rc = tr_register(n->rt, TR_GLOBAL_SERVER_NAME, g->server);
		if (rc != TR_OK) {
			(void)tr_kill(n->rt, g->server, TR_REASON_KILL);
			while (tr_is_alive(n->rt, g->server))
				nanosleep(&(struct timespec){0, 1000000}, NULL);
		}
	}
	if (rc != TR_OK) {
		tr__gtab_fini(&g->tab);
		free(g);
		return rc;
	}
	n->global = g;
	return TR_OK;
}

void tr__global_stop(struct tr_node *n)
{
	struct tr__global *g = n->global;
	if (g == NULL)
		return;
	(void)tr_kill(n->rt, g->server, TR_REASON_SHUTDOWN);
	/* Its terminate answers the callers still waiting. A runtime that
	 * no longer runs actors is given up on after 5 s. */
	if (!tr__node_wait_exit(n, g->server, 5000))
		return; /* still running: leave it its memory */
	n->global = NULL;
	tr__gtab_fini(&g->tab);
	free(g);
}
