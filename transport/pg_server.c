/*
 * The scope server (troupe/pg.h): one actor per scope and node. It
 * watches the local members (a member that exits leaves), sends the
 * local changes on to the peers of the scope (Update), exchanges the
 * memberships with a peer that comes up (Sync), applies what peers send,
 * and drops a peer's members when it goes down.
 *
 * Order. Joins and leaves change the table at once, and queue a change
 * for the server with the lock held, so the server's mailbox sees the
 * changes in table order. A sync owed to a peer is a snapshot taken
 * under the lock and queued the same way: the changes queued before it
 * are in it (they are not sent to that peer), those after it are sent
 * after it. A peer thus applies exactly the changes after the state it
 * was sent, in order (the transport keeps a pair's order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "pg.pb-c.h"
#include "pg_int.h"
#include "troupe/pb.h"

typedef Troupe__Pg__Sync Sync;
typedef Troupe__Pg__Update Update;
typedef Troupe__Pg__Group PGroup;

/* A sync owed: the peer, then nparts parts, each a uint32_t length and
 * the packed Sync. */
struct owed {
	uint64_t peer_id;
	uint32_t nparts;
	uint32_t pad;
	char name[TR_NODE_NAME_MAX + 1];
	unsigned char parts[];
};

/* ---- peers ----------------------------------------------------------------*/

static struct tr__pg_peer *peer_find(struct tr__pg_scope *s, const char *name)
{
	for (uint32_t i = 0; i < s->npeers; i++)
		if (strcmp(s->peers[i].name, name) == 0)
			return &s->peers[i];
	return NULL;
}

static struct tr__pg_peer *peer_get(struct tr__pg_scope *s, const char *name)
{
	struct tr__pg_peer *p = peer_find(s, name);
	if (p != NULL)
		return p;
	if (s->npeers >= TR__PG_PEERS_MAX ||
	    !tr__node_grow(
	        (void **)&s->peers, s->npeers, &s->cappeers, sizeof(*s->peers)))
		return NULL;
	p = &s->peers[s->npeers++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->id = ++s->next_peer_id;
	atomic_store_explicit(&s->npeers_pub, s->npeers, memory_order_relaxed);
	return p;
}

/* Exclusive lock: every member of `p` leaves (events; no changes to
 * send: they are not ours). */
static void peer_sweep(
    struct tr__pg_scope *s, struct tr__pg_peer *p, bool all, uint32_t epoch)
{
	if (p->node == 0)
		return;
	for (uint32_t b = 0; b < s->ngb; b++) {
		struct tr__pg_group *g = s->gb[b], *nx;
		for (; g != NULL; g = nx) {
			nx = g->next;
			tr_pid gone[64];
			uint32_t ng = 0;
			for (uint32_t i = 0; i < g->nrem;) {
				struct tr__pg_mem *m = &g->rem[i];
				if (m->pid.node != p->node ||
				    (!all && m->mark == epoch)) {
					i++;
					continue;
				}
				tr_pid pid = m->pid;
				(void)tr__pg_mem_del(
				    s, g, pid, true, UINT32_MAX);
				p->held--;
				gone[ng++] = pid;
				if (ng == 64) {
					tr__pg_notify(
					    s, g->name, true, gone, ng);
					ng = 0;
				}
			}
			tr__pg_notify(s, g->name, true, gone, ng);
			tr__pg_group_gc(s, g);
		}
	}
}

static void peer_remove(struct tr__pg_scope *s, struct tr__pg_peer *p)
{
	pthread_rwlock_wrlock(&s->lock);
	peer_sweep(s, p, true, 0);
	pthread_rwlock_unlock(&s->lock);
	*p = s->peers[--s->npeers];
	atomic_store_explicit(&s->npeers_pub, s->npeers, memory_order_relaxed);
}

/* ---- packing --------------------------------------------------------------*/

static void wpid_fill(struct tr__pg_scope *s, Troupe__Pid *w, tr_pid pid)
{
	troupe__pid__init(w);
	w->node = s->n->name;
	w->incarnation = s->n->inc;
	w->slot = pid.slot;
	w->gen = pid.gen;
}

/* One part of a sync: groups[0..n-1] packed, appended to *buf. */
static bool part_put(unsigned char **buf, size_t *len, size_t *cap,
    const struct tr__pg_scope *s, PGroup **groups, size_t n, bool first,
    bool last, bool want)
{
	Sync m = TROUPE__PG__SYNC__INIT;
	m.scope = (char *)s->name;
	m.groups = groups;
	m.n_groups = n;
	m.want_reply = want;
	m.first = first;
	m.last = last;
	size_t sz = troupe__pg__sync__get_packed_size(&m);
	if (*len + sz + 4 > *cap) {
		size_t nc = (*len + sz + 4) * 2;
		unsigned char *v = realloc(*buf, nc);
		if (v == NULL)
			return false;
		*buf = v;
		*cap = nc;
	}
	uint32_t l = (uint32_t)sz;
	memcpy(*buf + *len, &l, 4);
	troupe__pg__sync__pack(&m, *buf + *len + 4);
	*len += 4 + sz;
	return true;
}

/* Shared lock held: the local memberships, in parts of about
 * TR__PG_SYNC_PART bytes, as an owed sync to `p`, queued to the server. */
static int owe_sync(struct tr__pg_scope *s, struct tr__pg_peer *p, bool want)
{
	size_t hdr = offsetof(struct owed, parts);
	size_t cap = hdr + 256, len = hdr;
	unsigned char *buf = malloc(cap);
	if (buf == NULL)
		return TR_ENOMEM;
	uint32_t nparts = 0;
	PGroup *gv[64];
	PGroup gs[64];
	Troupe__Pid **pv = NULL;
	Troupe__Pid *pw = NULL;
	size_t npv = 0, cappv = 0, ng = 0, est = 0;
	bool ok = true, first = true;
	/* Each group is its own list of pids (one per join), filled into
	 * pw[] and pointed to from pv[]: both only grow. */
	for (uint32_t b = 0; b < s->ngb && ok; b++) {
		for (struct tr__pg_group *g = s->gb[b]; g != NULL && ok;
		     g = g->next) {
			if (g->nloc == 0)
				continue;
			size_t need = 0;
			for (uint32_t i = 0; i < g->nloc; i++)
				need += g->loc[i].count;
			if (npv + need > cappv) {
				/* Pointers into pw move with it: flush the
				 * part first so none is kept across. */
				if (ng > 0) {
					ok = part_put(&buf, &len, &cap, s, gv,
					    ng, first, false, want);
					first = false;
					nparts++;
					ng = 0;
					est = 0;
				}
				npv = 0;
				size_t nc = need * 2 + 64;
				Troupe__Pid **a = realloc(pv, nc * sizeof(*a));
				Troupe__Pid *c =
				    a ? realloc(pw, nc * sizeof(*c)) : NULL;
				if (a != NULL)
					pv = a;
				if (c == NULL) {
					ok = false;
					break;
				}
				pw = c;
				cappv = nc;
			}
			PGroup *pg = &gs[ng];
			troupe__pg__group__init(pg);
			pg->name = g->name;
			pg->pids = &pv[npv];
			for (uint32_t i = 0; i < g->nloc; i++)
				for (uint32_t k = 0; k < g->loc[i].count; k++) {
					wpid_fill(s, &pw[npv], g->loc[i].pid);
					pv[npv] = &pw[npv];
					npv++;
				}
			pg->n_pids = need;
			gv[ng++] = pg;
			est += g->len +
			       need * (s->n ? 24 + strlen(s->n->name) : 0);
			if (ng == 64 || est >= TR__PG_SYNC_PART) {
				ok = part_put(&buf, &len, &cap, s, gv, ng,
				    first, false, want);
				first = false;
				nparts++;
				ng = 0;
				est = 0;
				npv = 0;
			}
		}
	}
	if (ok) {
		ok = part_put(&buf, &len, &cap, s, gv, ng, first, true, want);
		nparts++;
	}
	free(pv);
	free(pw);
	if (!ok) {
		free(buf);
		return TR_ENOMEM;
	}
	struct owed *o = (struct owed *)buf;
	o->peer_id = p->id;
	o->nparts = nparts;
	o->pad = 0;
	snprintf(o->name, sizeof(o->name), "%s", p->name);
	tr_msg *m;
	int rc = tr__dist_msg_new(&m, TR__PG_T_OWED, buf, len);
	free(buf);
	if (rc != TR_OK)
		return rc;
	rc = tr__dist_inject(s->rt, s->server, m);
	if (rc != TR_OK) {
		tr__dist_msg_free(m);
		return rc;
	}
	p->pending++;
	p->live = false;
	return TR_OK;
}

static void sync_to(struct tr__pg_scope *s, const char *node, bool want)
{
	struct tr__pg_peer *p = peer_get(s, node);
	if (p == NULL) {
		atomic_fetch_add_explicit(
		    &s->n_bounds, 1, memory_order_relaxed);
		tr__ratelogf(&s->log_bound, s->rt, 0,
		    "pg %s: no room for peer %s", s->name, node);
		return;
	}
	pthread_rwlock_rdlock(&s->lock);
	int rc = owe_sync(s, p, want);
	pthread_rwlock_unlock(&s->lock);
	if (rc != TR_OK)
		tr__ratelogf(&s->log_bound, s->rt, 0,
		    "pg %s: cannot sync with %s: %s", s->name, node,
		    tr_strerror(rc));
}

/* A send to `p` was refused (flow control: its server is behind and
 * said BUSY, or this node's queue for it is full; or it is going down).
 * Nothing more goes to it until a sync, armed TR__PG_RESYNC_MS from now,
 * has brought it what it missed: a change is never lost to a peer that
 * stays connected. */
static void peer_missed(
    tr_ctx *ctx, struct tr__pg_scope *s, struct tr__pg_peer *p, int rc)
{
	p->live = false;
	if (p->resync)
		return;
	tr__ratelogf(&s->log_flow, s->rt, 0,
	    "pg %s: a send to %s refused (%s): it is synced again", s->name,
	    p->name, tr_strerror(rc));
	if (tr_send_after(ctx, NULL, tr_self(ctx), TR__PG_RESYNC_MS, 0,
	        TR__PG_T_RESYNC, &p->id, sizeof(p->id)) == TR_OK)
		p->resync = true;
}

static void owed_send(tr_ctx *ctx, struct tr__pg_scope *s, const tr_msg *m)
{
	const struct owed *o = (const void *)m->data;
	struct tr__pg_peer *p = peer_find(s, o->name);
	if (p == NULL || p->id != o->peer_id)
		return; /* it went down since; a new record syncs anew */
	const unsigned char *q = o->parts;
	int rc = TR_OK;
	for (uint32_t i = 0; i < o->nparts && rc == TR_OK; i++) {
		uint32_t l;
		memcpy(&l, q, 4);
		rc = tr_send_remote_named(
		    ctx, p->name, s->reg, TR__PG_T_SYNC, q + 4, l);
		q += 4 + l;
	}
	--p->pending;
	if (rc != TR_OK)
		peer_missed(ctx, s, p, rc);
	else if (p->pending == 0 && !p->resync)
		p->live = true;
}

/* The timer of peer_missed: a sync, unless one is on its way already. */
static void resync(tr_ctx *ctx, struct tr__pg_scope *s, const tr_msg *m)
{
	uint64_t id;
	if (!tr_pid_eq(m->sender, tr_self(ctx)) || m->size != sizeof(id))
		return;
	memcpy(&id, m->data, sizeof(id));
	for (uint32_t i = 0; i < s->npeers; i++) {
		struct tr__pg_peer *p = &s->peers[i];
		if (p->id != id)
			continue;
		p->resync = false;
		if (p->pending == 0)
			sync_to(s, p->name, false);
		return;
	}
}

/* ---- local changes --------------------------------------------------------*/

/* Watches or forgets the local pids of a change, as the table says now. */
static void track(
    tr_ctx *ctx, struct tr__pg_scope *s, const tr_pid *pids, uint32_t n)
{
	pthread_rwlock_wrlock(&s->lock);
	for (uint32_t i = 0; i < n; i++) {
		if (i > 0 && tr_pid_eq(pids[i], pids[i - 1]))
			continue;
		struct tr__pg_lpid *e = tr__pg_lpid_get(s, pids[i], false);
		if (e == NULL)
			continue;
		if (e->joins > 0 && e->ref == 0) {
			if (tr_monitor(ctx, &e->ref, e->pid) == TR_OK)
				s->ntracked++;
		} else if (e->joins == 0 && e->ref != 0) {
			(void)tr_demonitor(ctx, e->ref);
			e->ref = 0;
			s->ntracked--;
			tr__pg_lpid_gc(s, e);
		}
	}
	pthread_rwlock_unlock(&s->lock);
}

static void change_send(tr_ctx *ctx, struct tr__pg_scope *s, const tr_msg *m)
{
	const struct tr__pg_change *c = (const void *)m->data;
	const char *group = (const char *)(c->pids + c->npids);
	track(ctx, s, c->pids, c->npids);
	bool any = false;
	for (uint32_t i = 0; i < s->npeers && !any; i++)
		any = s->peers[i].live;
	if (!any)
		return;
	Troupe__Pid *pw = malloc((size_t)c->npids * sizeof(*pw));
	Troupe__Pid **pv = malloc((size_t)c->npids * sizeof(*pv));
	unsigned char *buf = NULL;
	if (pw != NULL && pv != NULL) {
		for (uint32_t i = 0; i < c->npids; i++) {
			wpid_fill(s, &pw[i], c->pids[i]);
			pv[i] = &pw[i];
		}
		Update u = TROUPE__PG__UPDATE__INIT;
		u.scope = s->name;
		u.group = (char *)group;
		u.pids = pv;
		u.n_pids = c->npids;
		u.leave = c->leave != TR__PG_JOIN;
		u.all = c->leave == TR__PG_LEAVE_ALL;
		size_t sz = troupe__pg__update__get_packed_size(&u);
		buf = malloc(sz ? sz : 1);
		if (buf != NULL) {
			troupe__pg__update__pack(&u, buf);
			for (uint32_t i = 0; i < s->npeers; i++) {
				struct tr__pg_peer *p = &s->peers[i];
				int rc = p->live ? tr_send_remote_named(ctx,
				                       p->name, s->reg,
				                       TR__PG_T_UPDATE, buf, sz)
				                 : TR_OK;
				if (rc != TR_OK)
					peer_missed(ctx, s, p, rc);
			}
		}
	}
	if (buf == NULL)
		tr__ratelogf(&s->log_bound, s->rt, 0,
		    "pg %s: out of memory: a change not sent to peers",
		    s->name);
	free(buf);
	free(pw);
	free(pv);
}

/* A watched local pid exited: it leaves every group. */
static void member_down(struct tr__pg_scope *s, const tr_exit_info *info)
{
	pthread_rwlock_wrlock(&s->lock);
	struct tr__pg_lpid *e = tr__pg_lpid_get(s, info->pid, false);
	if (e == NULL || e->ref != info->ref) {
		pthread_rwlock_unlock(&s->lock);
		return;
	}
	e->ref = 0;
	s->ntracked--;
	for (uint32_t b = 0; b < s->ngb && e->joins > 0; b++) {
		struct tr__pg_group *g = s->gb[b], *nx;
		for (; g != NULL; g = nx) {
			nx = g->next;
			uint32_t k =
			    tr__pg_mem_del(s, g, info->pid, false, UINT32_MAX);
			if (k == 0)
				continue;
			e->joins -= k;
			tr__pg_notify(s, g->name, true, &info->pid, 1);
			(void)tr__pg_change_queue(s, TR__PG_LEAVE_ALL, g->name,
			    g->len, &info->pid, 1);
			tr__pg_group_gc(s, g);
		}
	}
	e->joins = 0;
	tr__pg_lpid_gc(s, e);
	pthread_rwlock_unlock(&s->lock);
}

/* ---- what peers send ------------------------------------------------------*/

static void refuse(struct tr__pg_scope *s, const char *from, const char *why)
{
	atomic_fetch_add_explicit(&s->n_malformed, 1, memory_order_relaxed);
	tr__ratelogf(&s->log_bad, s->rt, 0,
	    "pg %s: refused a message from %s: %s", s->name, from, why);
}

/* The pids of a peer's group, as this node names them, checked to be
 * the sender's own. Stale ones (an earlier incarnation) are skipped.
 * Returns how many went into out[], or -1 for a malformed list. */
static ssize_t pids_in(struct tr__pg_scope *s, tr_pid from,
    Troupe__Pid *const *w, size_t n, tr_pid *out)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		tr_pid pid;
		int rc = tr_pb_pid_get(&pid, s->n, w[i]);
		if (rc == TR_ENOPROC)
			continue;
		if (rc != TR_OK || pid.node != from.node)
			return -1;
		out[k++] = pid;
	}
	return (ssize_t)k;
}

static bool group_ok(const char *name, size_t *len)
{
	return tr__pg_name_ok(name, len);
}

/* Exclusive lock: joins of a peer's pids (`mark`: the sync epoch). */
static void remote_join(struct tr__pg_scope *s, struct tr__pg_peer *p,
    struct tr__pg_group *g, const tr_pid *pids, size_t n, bool sync,
    tr_pid *fresh, uint32_t *nfresh)
{
	*nfresh = 0;
	for (size_t i = 0; i < n; i++) {
		struct tr__pg_mem *m = NULL;
		for (uint32_t j = g->nrem; j-- > 0;)
			if (tr_pid_eq(g->rem[j].pid, pids[i])) {
				m = &g->rem[j];
				break;
			}
		if (m != NULL && sync && m->mark != p->epoch) {
			/* Named again by a sync: its count starts anew. */
			m->count = 1;
			m->mark = p->epoch;
			continue;
		}
		if (m == NULL && p->held >= TR_PG_PEER_MAX) {
			atomic_fetch_add_explicit(
			    &s->n_bounds, 1, memory_order_relaxed);
			tr__ratelogf(&s->log_bound, s->rt, 0,
			    "pg %s: peer %s holds %u memberships: refused",
			    s->name, p->name, (unsigned)TR_PG_PEER_MAX);
			continue;
		}
		int rc = tr__pg_mem_add(s, g, pids[i], true, p->epoch);
		if (rc != TR_OK) {
			atomic_fetch_add_explicit(
			    &s->n_bounds, 1, memory_order_relaxed);
			tr__ratelogf(&s->log_bound, s->rt, 0,
			    "pg %s: group %s of peer %s: %s", s->name, g->name,
			    p->name, tr_strerror(rc));
			continue;
		}
		if (m == NULL) {
			p->held++;
			if (sync)
				fresh[(*nfresh)++] = pids[i];
		}
		if (!sync)
			fresh[(*nfresh)++] = pids[i];
	}
}

static bool scope_ok(struct tr__pg_scope *s, const char *scope)
{
	return scope != NULL && strcmp(scope, s->name) == 0;
}

static void sync_in(
    struct tr__pg_scope *s, struct tr__pg_peer *p, tr_pid from, const Sync *m)
{
	if (!scope_ok(s, m->scope)) {
		refuse(s, p->name, "a sync of another scope");
		return;
	}
	size_t len;
	for (size_t i = 0; i < m->n_groups; i++)
		if (m->groups[i] == NULL ||
		    !group_ok(m->groups[i]->name, &len)) {
			refuse(s, p->name, "a bad group name");
			return;
		}
	pthread_rwlock_wrlock(&s->lock);
	if (m->first)
		p->epoch++;
	for (size_t i = 0; i < m->n_groups; i++) {
		const PGroup *pg = m->groups[i];
		tr_pid *v =
		    malloc((pg->n_pids ? pg->n_pids : 1) * 2 * sizeof(*v));
		if (v == NULL)
			break;
		ssize_t k = pids_in(s, from, pg->pids, pg->n_pids, v);
		if (k < 0) {
			free(v);
			refuse(s, p->name, "a pid not of its own");
			continue;
		}
		int rc;
		(void)group_ok(pg->name, &len);
		struct tr__pg_group *g =
		    tr__pg_group_get(s, pg->name, len, &rc);
		if (g == NULL) {
			atomic_fetch_add_explicit(
			    &s->n_bounds, 1, memory_order_relaxed);
			tr__ratelogf(&s->log_bound, s->rt, 0,
			    "pg %s: group of peer %s refused: %s", s->name,
			    p->name, tr_strerror(rc));
			free(v);
			continue;
		}
		uint32_t nf;
		remote_join(s, p, g, v, (size_t)k, true, v + k, &nf);
		tr__pg_notify(s, g->name, false, v + k, nf);
		tr__pg_group_gc(s, g);
		free(v);
	}
	if (m->last)
		peer_sweep(s, p, false, p->epoch);
	pthread_rwlock_unlock(&s->lock);
	if (m->want_reply && m->last)
		sync_to(s, p->name, false);
}

static void update_in(
    struct tr__pg_scope *s, struct tr__pg_peer *p, tr_pid from, const Update *u)
{
	size_t len;
	if (!scope_ok(s, u->scope) || !group_ok(u->group, &len)) {
		refuse(s, p->name, "an update of another scope or group");
		return;
	}
	tr_pid *v = malloc((u->n_pids ? u->n_pids : 1) * 2 * sizeof(*v));
	if (v == NULL)
		return;
	ssize_t k = pids_in(s, from, u->pids, u->n_pids, v);
	if (k < 0) {
		free(v);
		refuse(s, p->name, "a pid not of its own");
		return;
	}
	pthread_rwlock_wrlock(&s->lock);
	int rc = TR_OK;
	struct tr__pg_group *g = u->leave
	                             ? tr__pg_group_find(s, u->group, len)
	                             : tr__pg_group_get(s, u->group, len, &rc);
	if (g == NULL && !u->leave) {
		atomic_fetch_add_explicit(
		    &s->n_bounds, 1, memory_order_relaxed);
		tr__ratelogf(&s->log_bound, s->rt, 0,
		    "pg %s: group of peer %s refused: %s", s->name, p->name,
		    tr_strerror(rc));
	} else if (g != NULL && u->leave) {
		uint32_t nl = 0;
		for (ssize_t i = 0; i < k; i++) {
			uint32_t was = 0;
			for (uint32_t j = 0; j < g->nrem; j++)
				if (tr_pid_eq(g->rem[j].pid, v[i]))
					was = g->rem[j].count;
			uint32_t took = tr__pg_mem_del(
			    s, g, v[i], true, u->all ? UINT32_MAX : 1);
			if (took > 0) {
				v[k + nl++] = v[i];
				if (took == was)
					p->held--;
			}
		}
		tr__pg_notify(s, g->name, true, v + k, nl);
		tr__pg_group_gc(s, g);
	} else if (g != NULL) {
		uint32_t nf;
		remote_join(s, p, g, v, (size_t)k, false, v + k, &nf);
		tr__pg_notify(s, g->name, false, v + k, nf);
		tr__pg_group_gc(s, g);
	}
	pthread_rwlock_unlock(&s->lock);
	free(v);
}

static void wire_in(struct tr__pg_scope *s, const tr_msg *m)
{
	char from[TR_NODE_NAME_MAX + 1];
	if (m->sender.node == 0 ||
	    tr_node_name_of(from, sizeof(from), s->n, m->sender) != TR_OK) {
		refuse(s, "this node", "not from a peer");
		return;
	}
	struct tr__pg_peer *p = peer_get(s, from);
	if (p == NULL) {
		atomic_fetch_add_explicit(
		    &s->n_bounds, 1, memory_order_relaxed);
		return;
	}
	p->node = m->sender.node;
	size_t budget = (size_t)m->size * TR__PG_UNPACK_FACTOR;
	if (budget < 65536)
		budget = 65536;
	ProtobufCMessage *pm;
	const ProtobufCMessageDescriptor *d =
	    m->type == TR__PG_T_SYNC ? &troupe__pg__sync__descriptor
	                             : &troupe__pg__update__descriptor;
	if (tr_pb_unpack(&pm, m, d, budget) != TR_OK) {
		refuse(s, from, "does not decode");
		return;
	}
	if (m->type == TR__PG_T_SYNC)
		sync_in(s, p, m->sender, (const Sync *)pm);
	else
		update_in(s, p, m->sender, (const Update *)pm);
	tr_pb_free(pm);
}

/* ---- the behaviour --------------------------------------------------------*/

static int server_init(tr_ctx *ctx, void *arg, void **state)
{
	*state = arg;
	/* Every node: NODEUP at once for those up now, as for later ones. */
	return tr_monitor_node(ctx, NULL, true) == TR_OK ? TR_OK : 1;
}

static int server_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct tr__pg_scope *s = state;
	switch (m->type) {
	case TR__PG_T_CHANGE:
		change_send(ctx, s, m);
		break;
	case TR__PG_T_OWED:
		owed_send(ctx, s, m);
		break;
	case TR__PG_T_RESYNC:
		resync(ctx, s, m);
		break;
	case TR__PG_T_SYNC:
	case TR__PG_T_UPDATE:
		wire_in(s, m);
		break;
	case TR_MSG_DOWN:
		if (m->size >= sizeof(tr_exit_info))
			member_down(s, (const tr_exit_info *)m->data);
		break;
	case TR_MSG_NODEUP:
		if (m->size >= TR_NODE_EVENT_V1_SIZE)
			sync_to(
			    s, ((const tr_node_event *)m->data)->node, true);
		break;
	case TR_MSG_NODEDOWN:
		if (m->size >= TR_NODE_EVENT_V1_SIZE) {
			struct tr__pg_peer *p = peer_find(
			    s, ((const tr_node_event *)m->data)->node);
			if (p != NULL)
				peer_remove(s, p);
		}
		break;
	default:
		break; /* not ours: dropped, as an unknown message */
	}
	return 0;
}

const tr_behaviour tr__pg_server_b = {
    "troupe.pg", server_init, server_handle, NULL};
