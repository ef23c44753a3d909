/*
 * Registration without a cluster-wide lock (docs/global.md, "Claims"):
 * the owner's server claims one name from every node that is up, each
 * grants at most one claim per name at a time; all yes commits, a no
 * fails, a busy withdraws and retries after a jittered, growing backoff
 * until the caller's deadline. A node that goes down is dropped from the
 * votes awaited; grants of a claimer that went down, or older than their
 * bound, are released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "global_int.h"
#include "troupe/pid.h"

static uint32_t rnd(struct tr__global *g)
{
	/* xorshift64: backoff jitter only. */
	uint64_t x = g->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	g->rng = x;
	return (uint32_t)(x >> 32);
}

static void reply(struct tr__global *g, tr_pid caller, uint64_t ref, int rc)
{
	if (rc == TR_OK) {
		(void)tr__inject_msg(g->n, caller, TR__GLOBAL_L_REG_OK, NULL, 0,
		    g->server, ref, TR__MF_REPLY);
	} else {
		int32_t err = rc;
		(void)tr__inject_msg(g->n, caller, TR_MSG_REFUSED, &err,
		    sizeof(err), g->server, ref, TR__MF_REPLY);
	}
}

/* ---- grants -------------------------------------------------------------- */

static struct tr__ggrant *grant_of(struct tr__global *g, const char *name)
{
	for (struct tr__ggrant *x = g->grants; x != NULL; x = x->next)
		if (strcmp(x->name, name) == 0)
			return x;
	return NULL;
}

bool tr__gclaim_busy(struct tr__global *g, const char *name)
{
	return grant_of(g, name) != NULL;
}

static bool grant_add(
    struct tr__global *g, const char *name, const char *claimer, uint64_t claim)
{
	if (g->ngrants >= TR__GLOBAL_GRANTS_MAX)
		return false;
	struct tr__ggrant *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return false;
	x->name = strdup(name);
	x->claimer = strdup(claimer);
	if (x->name == NULL || x->claimer == NULL) {
		free(x->name);
		free(x->claimer);
		free(x);
		return false;
	}
	x->claim = claim;
	x->since = tr__node_now_ms();
	x->next = g->grants;
	g->grants = x;
	g->ngrants++;
	tr__gtick_arm(g);
	return true;
}

static void grant_free(struct tr__global *g, struct tr__ggrant **pp)
{
	struct tr__ggrant *x = *pp;
	*pp = x->next;
	g->ngrants--;
	free(x->name);
	free(x->claimer);
	free(x);
}

/* Releases the grant of `claimer`'s claim `claim` (of `name`, if given). */
static void grant_release(
    struct tr__global *g, const char *claimer, uint64_t claim, const char *name)
{
	for (struct tr__ggrant **pp = &g->grants; *pp != NULL;
	     pp = &(*pp)->next) {
		struct tr__ggrant *x = *pp;
		if (x->claim == claim && strcmp(x->claimer, claimer) == 0 &&
		    (name == NULL || strcmp(x->name, name) == 0)) {
			grant_free(g, pp);
			return;
		}
	}
}

/* ---- claims -------------------------------------------------------------- */

static void wait_free(struct tr__gclaim *c)
{
	for (uint32_t i = 0; i < c->nwait; i++)
		free(c->wait[i]);
	free(c->wait);
	c->wait = NULL;
	c->nwait = 0;
}

static void claim_finish(struct tr__global *g, struct tr__gclaim *c, int rc)
{
	if (c->fwd_node != NULL) {
		GMsg m = TROUPE__GLOBAL__MSG__INIT;
		m.claim = c->fwd_id;
		m.result = rc;
		(void)tr__gsend(g, c->fwd_node, TR__GLOBAL_T_FWD_REPLY, &m);
	} else {
		reply(g, c->caller, c->ref, rc);
	}
	for (struct tr__gclaim **pp = &g->claims; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	g->nclaims--;
	wait_free(c);
	free(c->fwd_node);
	free(c);
}

static void claim_entry(struct tr__global *g, const struct tr__gclaim *c,
    GEntry *e, uint8_t *pidbuf)
{
	troupe__global__entry__init(e);
	size_t len = 0;
	(void)tr_pid_encode(pidbuf, TR_PID_ENCODED_MAX, &len, g->n, c->pid);
	e->name = (char *)c->name;
	e->pid.data = pidbuf;
	e->pid.len = len;
	e->at_ms = c->at_ms;
	e->method = (uint32_t)c->method;
}

/* Sends the claim's entry, as a message of `type` with the claim's id, to
 * the nodes to[0..n-1]. */
static void claim_send(struct tr__global *g, const struct tr__gclaim *c,
    uint32_t type, char *const *to, uint32_t n)
{
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	GEntry e;
	uint8_t pb[TR_PID_ENCODED_MAX];
	claim_entry(g, c, &e, pb);
	m.entry = &e;
	m.claim = c->id;
	for (uint32_t i = 0; i < n; i++)
		(void)tr__gsend(g, to[i], type, &m);
}

/* Withdraws the attempt in progress: every peer releases its grant. */
static void claim_abort(struct tr__global *g, struct tr__gclaim *c)
{
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	m.name = c->name;
	m.claim = c->id;
	for (uint32_t i = 0; i < g->npeers; i++)
		(void)tr__gsend(g, g->peers[i], TR__GLOBAL_T_ABORT, &m);
	grant_release(g, g->n->name, c->id, c->name);
	wait_free(c);
	c->voting = false;
}

static void claim_commit(struct tr__global *g, struct tr__gclaim *c)
{
	grant_release(g, g->n->name, c->id, c->name);
	int rc = tr__glocal_put(g, c->name, c->pid, c->at_ms, c->method);
	if (rc != TR_OK) {
		claim_abort(g, c);
		claim_finish(g, c, rc);
		return;
	}
	/* To every node up now, also those that came up during the claim
	 * (they missed the claim; a COMMIT is a sync of one entry). */
	claim_send(g, c, TR__GLOBAL_T_COMMIT, g->peers, g->npeers);
	wait_free(c);
	claim_finish(g, c, TR_OK);
}

static void claim_backoff(struct tr__global *g, struct tr__gclaim *c)
{
	atomic_fetch_add_explicit(&g->n_retried, 1, memory_order_relaxed);
	c->voting = false;
	c->attempt++;
	uint32_t base = 2u << (c->attempt < 6 ? c->attempt : 6); /* ..128 */
	int64_t delay = base / 2 + rnd(g) % (base / 2 + 1);
	int64_t now = tr__node_now_ms();
	if (now + delay >= c->deadline) {
		claim_finish(g, c, TR_ETIMEDOUT);
		return;
	}
	c->next_try = now + delay;
	tr__gtick_arm(g);
}

/* One attempt: the self vote, then CLAIM to every peer up now. */
static void claim_try(struct tr__global *g, struct tr__gclaim *c)
{
	struct tr__gentry *e = tr__gtab_find(&g->tab, c->name);
	if (e != NULL) {
		claim_finish(
		    g, c, tr_pid_eq(e->pid, c->pid) ? TR_OK : TR_EEXIST);
		return;
	}
	if (tr__gtab_find_pid(&g->tab, c->pid) != NULL) {
		claim_finish(g, c, TR_EEXIST);
		return;
	}
	c->id = ++g->next_id;
	if (tr__gclaim_busy(g, c->name) ||
	    !grant_add(g, c->name, g->n->name, c->id)) {
		claim_backoff(g, c);
		return;
	}
	c->voting = true;
	c->wait = calloc(g->npeers ? g->npeers : 1, sizeof(*c->wait));
	if (c->wait == NULL) {
		claim_abort(g, c);
		claim_finish(g, c, TR_ENOMEM);
		return;
	}
	for (uint32_t i = 0; i < g->npeers; i++) {
		c->wait[c->nwait] = strdup(g->peers[i]);
		if (c->wait[c->nwait] != NULL)
			c->nwait++;
	}
	if (c->nwait == 0) {
		claim_commit(g, c);
		return;
	}
	claim_send(g, c, TR__GLOBAL_T_CLAIM, c->wait, c->nwait);
	tr__gtick_arm(g);
}

void tr__gclaim_start(struct tr__global *g, const char *name, tr_pid pid,
    int32_t method, int64_t timeout_ms, tr_pid caller, uint64_t ref,
    const char *fwd_node, uint64_t fwd_id)
{
	struct tr__gclaim *c = NULL;
	int rc = TR_OK;
	if (!tr__gname_ok(name) || method < 0 ||
	    method > TR_GLOBAL_UNREGISTER || timeout_ms < 0)
		rc = TR_EINVAL;
	else if (pid.node != 0 || !tr_is_alive(g->n->rt, pid))
		rc = TR_ENOPROC;
	else if (g->nclaims >= TR__GLOBAL_CLAIMS_MAX)
		rc = TR_EAGAIN;
	else if ((c = calloc(1, sizeof(*c))) == NULL ||
	         (fwd_node != NULL && (c->fwd_node = strdup(fwd_node)) == NULL))
		rc = TR_ENOMEM;
	if (rc != TR_OK) {
		if (c != NULL)
			free(c);
		if (fwd_node != NULL) {
			GMsg m = TROUPE__GLOBAL__MSG__INIT;
			m.claim = fwd_id;
			m.result = rc;
			(void)tr__gsend(
			    g, fwd_node, TR__GLOBAL_T_FWD_REPLY, &m);
		} else {
			reply(g, caller, ref, rc);
		}
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->pid = pid;
	c->method = method;
	c->at_ms = tr__gwall_ms();
	if (timeout_ms > 3600000)
		timeout_ms = 3600000;
	c->deadline = tr__node_now_ms() + timeout_ms;
	c->caller = caller;
	c->ref = ref;
	c->fwd_id = fwd_id;
	c->next = g->claims;
	g->claims = c;
	g->nclaims++;
	claim_try(g, c);
}

static struct tr__gclaim *claim_voting(
    struct tr__global *g, uint64_t id, const char *name)
{
	for (struct tr__gclaim *c = g->claims; c != NULL; c = c->next)
		if (c->voting && c->id == id && strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

/* Drops `peer` from the votes `c` awaits; whether it was awaited. */
static bool unwait(struct tr__gclaim *c, const char *peer)
{
	for (uint32_t i = 0; i < c->nwait; i++)
		if (strcmp(c->wait[i], peer) == 0) {
			free(c->wait[i]);
			c->wait[i] = c->wait[--c->nwait];
			return true;
		}
	return false;
}

static void vote(struct tr__global *g, const char *peer, const GMsg *m)
{
	tr_pid pid;
	if (!tr__gentry_in(g, peer, m->entry, &pid)) {
		/* A claim this node cannot take (a stale pid, or a bad one):
		 * a no, so that its claimer does not wait for nothing. */
		if (m->entry != NULL && tr__gname_ok(m->entry->name)) {
			GMsg v = TROUPE__GLOBAL__MSG__INIT;
			v.name = m->entry->name;
			v.claim = m->claim;
			v.result = TR__GVOTE_NO;
			(void)tr__gsend(g, peer, TR__GLOBAL_T_VOTE, &v);
		}
		return;
	}
	const char *name = m->entry->name;
	GMsg v = TROUPE__GLOBAL__MSG__INIT;
	uint8_t hb[TR_PID_ENCODED_MAX];
	size_t hl = 0;
	v.name = (char *)name;
	v.claim = m->claim;
	struct tr__gentry *e = tr__gtab_find(&g->tab, name);
	struct tr__ggrant *x = grant_of(g, name);
	if (e != NULL && !tr_pid_eq(e->pid, pid)) {
		v.result = TR__GVOTE_NO;
		if (tr_pid_encode(hb, sizeof(hb), &hl, g->n, e->pid) == TR_OK) {
			v.holder.data = hb;
			v.holder.len = hl;
		}
	} else if (e != NULL) {
		v.result = TR__GVOTE_YES;
	} else if (tr__gtab_find_pid(&g->tab, pid) != NULL) {
		v.result = TR__GVOTE_NO;
	} else if (x != NULL) {
		v.result = x->claim == m->claim && strcmp(x->claimer, peer) == 0
		               ? TR__GVOTE_YES
		               : TR__GVOTE_BUSY;
	} else {
		v.result = grant_add(g, name, peer, m->claim) ? TR__GVOTE_YES
		                                              : TR__GVOTE_BUSY;
	}
	(void)tr__gsend(g, peer, TR__GLOBAL_T_VOTE, &v);
}

static void vote_in(struct tr__global *g, const char *peer, const GMsg *m)
{
	if (!tr__gname_ok(m->name) || m->result < TR__GVOTE_YES ||
	    m->result > TR__GVOTE_BUSY) {
		tr__gbad(g, peer, "a bad vote");
		return;
	}
	struct tr__gclaim *c = claim_voting(g, m->claim, m->name);
	if (c == NULL || !unwait(c, peer))
		return; /* late: the attempt is over */
	if (m->result == TR__GVOTE_NO) {
		claim_abort(g, c);
		claim_finish(g, c, TR_EEXIST);
	} else if (m->result == TR__GVOTE_BUSY) {
		claim_abort(g, c);
		claim_backoff(g, c);
	} else if (c->nwait == 0) {
		claim_commit(g, c);
	}
}

void tr__gclaim_in(
    struct tr__global *g, const char *peer, uint32_t type, const GMsg *m)
{
	tr_pid pid;
	switch (type) {
	case TR__GLOBAL_T_CLAIM:
		vote(g, peer, m);
		break;
	case TR__GLOBAL_T_VOTE:
		vote_in(g, peer, m);
		break;
	case TR__GLOBAL_T_COMMIT:
		if (m->entry == NULL) {
			tr__gbad(g, peer, "a commit without an entry");
			break;
		}
		if (tr__gname_ok(m->entry->name))
			grant_release(g, peer, m->claim, m->entry->name);
		if (tr__gentry_in(g, peer, m->entry, &pid))
			tr__gapply(g, peer, m->entry->name, pid,
			    m->entry->at_ms, (int32_t)m->entry->method);
		break;
	case TR__GLOBAL_T_ABORT:
		if (!tr__gname_ok(m->name))
			tr__gbad(g, peer, "a bad name");
		else
			grant_release(g, peer, m->claim, m->name);
		break;
	case TR__GLOBAL_T_FWD_REG: {
		const GEntry *e = m->entry;
		if (e == NULL || !tr__gname_ok(e->name) ||
		    e->method > TR_GLOBAL_UNREGISTER) {
			tr__gbad(g, peer, "a bad forwarded registration");
			break;
		}
		int rc = tr_pid_decode(&pid, g->n, e->pid.data, e->pid.len);
		if (rc != TR_OK || pid.node != 0)
			pid = TR_PID_NONE; /* answered TR_ENOPROC */
		tr__gclaim_start(g, e->name, pid, (int32_t)e->method,
		    m->timeout_ms < 0 ? 0 : m->timeout_ms, TR_PID_NONE, 0, peer,
		    m->claim);
		break;
	}
	default:
		tr__gbad(g, peer, "an unknown kind");
		break;
	}
}

/* ---- forwarded registrations --------------------------------------------- */

void tr__gclaim_fwd(struct tr__global *g, const struct tr__greq *rq,
    tr_pid caller, uint64_t ref)
{
	char owner[TR_NODE_NAME_MAX + 1];
	uint8_t pb[TR_PID_ENCODED_MAX];
	size_t len = 0;
	if (tr_node_name_of(owner, sizeof(owner), g->n, rq->pid) != TR_OK ||
	    tr_pid_encode(pb, sizeof(pb), &len, g->n, rq->pid) != TR_OK) {
		reply(g, caller, ref, TR_ENOPROC);
		return;
	}
	bool up = false;
	for (uint32_t i = 0; i < g->npeers && !up; i++)
		up = strcmp(g->peers[i], owner) == 0;
	struct tr__gfwd *f = NULL;
	if (!up) {
		reply(g, caller, ref, TR_ENOPROC);
		return;
	}
	if (g->nfwds >= TR__GLOBAL_CLAIMS_MAX ||
	    (f = calloc(1, sizeof(*f))) == NULL ||
	    (f->node = strdup(owner)) == NULL) {
		free(f);
		reply(g, caller, ref, f == NULL ? TR_EAGAIN : TR_ENOMEM);
		return;
	}
	f->id = ++g->next_id;
	f->caller = caller;
	f->ref = ref;
	f->deadline = tr__node_now_ms() + rq->timeout_ms;
	f->next = g->fwds;
	g->fwds = f;
	g->nfwds++;
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	GEntry e = TROUPE__GLOBAL__ENTRY__INIT;
	e.name = (char *)rq->name;
	e.pid.data = pb;
	e.pid.len = len;
	e.method = (uint32_t)rq->method;
	m.entry = &e;
	m.claim = f->id;
	m.timeout_ms = rq->timeout_ms;
	(void)tr__gsend(g, owner, TR__GLOBAL_T_FWD_REG, &m);
	tr__gtick_arm(g);
}

static void fwd_free(struct tr__global *g, struct tr__gfwd **pp)
{
	struct tr__gfwd *f = *pp;
	*pp = f->next;
	g->nfwds--;
	free(f->node);
	free(f);
}

void tr__gclaim_fwd_reply(struct tr__global *g, const char *peer, const GMsg *m)
{
	for (struct tr__gfwd **pp = &g->fwds; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->id == m->claim && strcmp((*pp)->node, peer) == 0) {
			int rc = m->result;
			if (rc > 0 || rc < TR_E_LAST)
				rc = TR_EINVAL;
			reply(g, (*pp)->caller, (*pp)->ref, rc);
			fwd_free(g, pp);
			return;
		}
}

/* ---- node down, time --------------------------------------------------- */

void tr__gclaim_nodedown(struct tr__global *g, const char *peer)
{
	struct tr__gclaim *nx;
	for (struct tr__gclaim *c = g->claims; c != NULL; c = nx) {
		nx = c->next;
		if (c->voting && unwait(c, peer) && c->nwait == 0)
			claim_commit(g, c); /* may free c, never nx */
	}
	for (struct tr__ggrant **pp = &g->grants; *pp != NULL;) {
		if (strcmp((*pp)->claimer, peer) == 0)
			grant_free(g, pp);
		else
			pp = &(*pp)->next;
	}
	for (struct tr__gfwd **pp = &g->fwds; *pp != NULL;) {
		if (strcmp((*pp)->node, peer) == 0) {
			reply(g, (*pp)->caller, (*pp)->ref, TR_ENOPROC);
			fwd_free(g, pp);
		} else {
			pp = &(*pp)->next;
		}
	}
}

bool tr__gclaim_tick(struct tr__global *g, int64_t now)
{
	struct tr__gclaim *nx;
	for (struct tr__gclaim *c = g->claims; c != NULL; c = nx) {
		nx = c->next;
		if (now >= c->deadline) {
			if (c->voting)
				claim_abort(g, c);
			claim_finish(g, c, TR_ETIMEDOUT);
		} else if (!c->voting && now >= c->next_try) {
			claim_try(g, c);
		}
	}
	for (struct tr__ggrant **pp = &g->grants; *pp != NULL;) {
		struct tr__ggrant *x = *pp;
		if (strcmp(x->claimer, g->n->name) != 0 &&
		    now - x->since >= g->grant_ms) {
			atomic_fetch_add_explicit(
			    &g->n_expired, 1, memory_order_relaxed);
			grant_free(g, pp);
		} else {
			pp = &x->next;
		}
	}
	for (struct tr__gfwd **pp = &g->fwds; *pp != NULL;) {
		if (now >= (*pp)->deadline) {
			reply(g, (*pp)->caller, (*pp)->ref, TR_ETIMEDOUT);
			fwd_free(g, pp);
		} else {
			pp = &(*pp)->next;
		}
	}
	return g->claims != NULL || g->grants != NULL || g->fwds != NULL;
}

void tr__gclaim_fini(struct tr__global *g)
{
	while (g->claims != NULL) {
		struct tr__gclaim *c = g->claims;
		if (c->voting)
			claim_abort(g, c);
		claim_finish(g, c, TR_ECLOSED);
	}
	while (g->grants != NULL)
		grant_free(g, &g->grants);
	while (g->fwds != NULL) {
		reply(g, g->fwds->caller, g->fwds->ref, TR_ECLOSED);
		fwd_free(g, &g->fwds);
	}
}
