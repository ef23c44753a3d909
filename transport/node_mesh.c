/*
 * Clusters: the nodes this node wants to be connected to, and how it gets
 * there. Members come from three places: seed sources (the static list of
 * the options or TROUPE_SEEDS, and a caller's source such as DNS), the
 * gossip of peers (CONTROL_MEMBERS: the nodes a peer is connected to,
 * Erlang's transitive connect) and the pairs that were up (so that a lost
 * peer is redialled). The control thread dials the members that are not
 * up, one dial at a time each, with a jittered exponential backoff; it
 * never waits for a handshake, whose end comes back through
 * tr__mesh_dial_done_locked. Dials are never made from an nng callback or
 * a scheduler: gossip that arrives there only records members and wakes
 * the control thread.
 *
 * What a peer can make this node keep is bounded: TR__MESH_GOSSIP_MAX
 * entries per message, TR__MESH_MAX members in all, TR__MESH_URLS URLs of
 * TR__MESH_URL_MAX bytes each; the rest is refused, counted and logged.
 * A member keyed by name survives restarts of its node (a new incarnation
 * takes the same entry), so a peer that restarts 100,000 times costs one
 * entry, and one dial in progress at most.
 */
#include "node_int.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "troupe/dns.h"

/* Dials of the node's own in progress at once, over all members. */
#define TR__MESH_DIALS_MAX 32u

/* ---- members (node lock held) --------------------------------------------
 */

static uint32_t rnd(struct tr__mesh *m)
{
	/* xorshift32: jitter only, no secret. */
	uint32_t x = m->rng ? m->rng : 0x9e3779b9u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	m->rng = x;
	return x;
}

/* A wait of [b/2, b], so that nodes that lost each other at once do not
 * redial in lockstep. */
static int64_t jitter(struct tr__mesh *m, uint32_t b)
{
	return (int64_t)(b / 2 + rnd(m) % (b / 2 + 1));
}

static bool url_ok(const char *u)
{
	size_t l = u != NULL ? strlen(u) : 0;
	return l >= 1 && l <= TR__MESH_URL_MAX && strstr(u, "://") != NULL;
}

static void member_clear(struct tr__member *m)
{
	for (uint32_t i = 0; i < m->nurls; i++)
		free(m->urls[i]);
	m->nurls = 0;
}

/* Replaces the member's URLs with copies of the valid ones of v[0..k-1]. */
static void member_urls(struct tr__member *m, char *const *v, size_t k)
{
	member_clear(m);
	for (size_t i = 0; i < k && m->nurls < TR__MESH_URLS; i++)
		if (url_ok(v[i]) && (m->urls[m->nurls] = strdup(v[i])) != NULL)
			m->nurls++;
	m->next_url = 0;
}

static struct tr__member *member_named(struct tr_node *n, const char *name)
{
	for (uint32_t i = 0; i < n->mesh.n; i++)
		if (!n->mesh.v[i].seed && strcmp(n->mesh.v[i].name, name) == 0)
			return &n->mesh.v[i];
	return NULL;
}

/* A new member, zeroed, or NULL at the bound (or out of memory). The
 * pointer is valid until the next add or remove. */
static struct tr__member *member_add(struct tr_node *n)
{
	struct tr__mesh *ms = &n->mesh;
	if (ms->n >= TR__MESH_MAX ||
	    !tr__node_grow((void **)&ms->v, ms->n, &ms->cap, sizeof(*ms->v)))
		return NULL;
	struct tr__member *m = &ms->v[ms->n++];
	memset(m, 0, sizeof(*m));
	m->backoff_ms = TR__MESH_BACKOFF_MIN_MS;
	return m;
}

static void member_remove(struct tr_node *n, uint32_t i)
{
	struct tr__mesh *ms = &n->mesh;
	member_clear(&ms->v[i]);
	ms->v[i] = ms->v[--ms->n];
}

static void backoff(struct tr_node *n, struct tr__member *m, int64_t now)
{
	m->next_ms = now + jitter(&n->mesh, m->backoff_ms);
	m->backoff_ms = m->backoff_ms >= TR__MESH_BACKOFF_MAX_MS / 2
	                    ? TR__MESH_BACKOFF_MAX_MS
	                    : m->backoff_ms * 2;
}

static bool own_url(struct tr_node *n, const char *url)
{
	for (size_t i = 0; i < n->nurls; i++)
		if (strcmp(n->urls[i], url) == 0)
			return true;
	return false;
}

/* ---- lifecycle ------------------------------------------------------------
 */

static int seeds_add(struct tr__mesh *ms, const char *u, size_t len)
{
	if (len == 0 || len > TR__MESH_URL_MAX)
		return TR_EINVAL;
	if (ms->nseeds >= TR__MESH_MAX)
		return TR_EINVAL;
	char **v = realloc(ms->seeds, (ms->nseeds + 1) * sizeof(*v));
	if (v == NULL)
		return TR_ENOMEM;
	ms->seeds = v;
	if ((v[ms->nseeds] = strndup(u, len)) == NULL)
		return TR_ENOMEM;
	if (!url_ok(v[ms->nseeds])) {
		free(v[ms->nseeds]);
		return TR_EINVAL;
	}
	ms->nseeds++;
	return TR_OK;
}

static bool tristate_ok(int32_t v)
{
	return v == 0 || v == TR_NODE_ON || v == TR_NODE_OFF;
}

int tr__mesh_init(struct tr_node *n, const tr_node_opts *o)
{
	struct tr__mesh *ms = &n->mesh;
	if (!tristate_ok(o->connect_all) || !tristate_ok(o->reconnect))
		return TR_EINVAL;
	ms->connect_all = o->connect_all != TR_NODE_OFF;
	ms->reconnect = o->reconnect != TR_NODE_OFF;
	ms->rng = (uint32_t)(n->inc ^ (n->inc >> 32) ^ (uintptr_t)n);
	ms->src = o->seed_source;
	ms->src_user = o->seed_user;
	if (ms->src != NULL && ms->src->resolve == NULL)
		return TR_EINVAL;
	int rc = TR_OK;
	/* TROUPE_DNS: a DNS source when the caller gave none. */
	if (ms->src == NULL &&
	    (rc = tr__node_dns_env(&ms->dns, n->rt)) == TR_OK &&
	    ms->dns != NULL) {
		ms->src = tr_node_dns_source();
		ms->src_user = ms->dns;
	}
	if (rc != TR_OK)
		return rc;
	if (o->seeds != NULL) {
		for (size_t i = 0; o->seeds[i] != NULL && rc == TR_OK; i++)
			rc = seeds_add(ms, o->seeds[i], strlen(o->seeds[i]));
		return rc;
	}
	/* TROUPE_SEEDS: comma-separated, blanks around entries ignored. */
	const char *env = getenv("TROUPE_SEEDS");
	for (const char *s = env; s != NULL && *s != '\0' && rc == TR_OK;) {
		const char *e = strchr(s, ',');
		const char *end = e != NULL ? e : s + strlen(s);
		const char *a = s, *b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a)
			rc = seeds_add(ms, a, (size_t)(b - a));
		s = e != NULL ? e + 1 : end;
	}
	return rc;
}

void tr__mesh_fini(struct tr_node *n)
{
	struct tr__mesh *ms = &n->mesh;
	for (uint32_t i = 0; i < ms->n; i++)
		member_clear(&ms->v[i]);
	free(ms->v);
	for (size_t i = 0; i < ms->nseeds; i++)
		free(ms->seeds[i]);
	free(ms->seeds);
	tr_node_dns_free(ms->dns);
	memset(ms, 0, sizeof(*ms));
}

/* ---- seed sources (control thread) ----------------------------------------
 */

struct sink {
	char **v;
	size_t n;
};

static void sink_add(void *arg, const char *url)
{
	struct sink *s = arg;
	if (s->n >= TR__MESH_MAX || !url_ok(url))
		return;
	char **v = realloc(s->v, (s->n + 1) * sizeof(*v));
	if (v == NULL)
		return;
	s->v = v;
	if ((v[s->n] = strdup(url)) != NULL)
		s->n++;
}

/* Node lock held: each URL becomes a seed member, unless it is one
 * already or one of ours. */
static void seeds_merge_locked(
    struct tr_node *n, char *const *v, size_t k, int64_t now)
{
	for (size_t i = 0; i < k; i++) {
		if (own_url(n, v[i]))
			continue;
		bool have = false;
		for (uint32_t j = 0; j < n->mesh.n && !have; j++)
			have = n->mesh.v[j].seed &&
			       strcmp(n->mesh.v[j].urls[0], v[i]) == 0;
		if (have)
			continue;
		struct tr__member *m = member_add(n);
		if (m == NULL) {
			atomic_fetch_add_explicit(
			    &n->mesh.n_refused, 1, memory_order_relaxed);
			continue;
		}
		member_urls(m, &v[i], 1);
		if (m->nurls == 0) {
			member_remove(n, n->mesh.n - 1);
			continue;
		}
		m->seed = true;
		m->next_ms = now;
	}
}

void tr__mesh_resolve(struct tr_node *n, int64_t now)
{
	struct tr__mesh *ms = &n->mesh;
	struct sink s = {NULL, 0};
	bool got = false;
	if (ms->nseeds > 0 && now >= ms->next_resolve) {
		/* The static source: its list never changes, once is enough,
		 * and seed members are never forgotten. */
		ms->next_resolve = INT64_MAX;
		for (size_t i = 0; i < ms->nseeds; i++)
			sink_add(&s, ms->seeds[i]);
		got = true;
	}
	if (ms->src != NULL && now >= ms->next_src) {
		uint32_t every = ms->src->interval_ms ? ms->src->interval_ms
		                                      : TR__MESH_RESOLVE_MS;
		ms->next_src = now + every;
		int rc = ms->src->resolve(ms->src_user, sink_add, &s);
		if (rc != TR_OK)
			tr__ratelogf(&ms->log_src, n->rt, 0,
			    "NODE %s: the seed source failed: %s", n->name,
			    tr_strerror(rc));
		got = true;
	}
	if (!got)
		return;
	pthread_mutex_lock(&n->lock);
	seeds_merge_locked(n, s.v, s.n, now);
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->lock);
	for (size_t i = 0; i < s.n; i++)
		free(s.v[i]);
	free(s.v);
}

/* ---- pairs up and down (node lock held) -----------------------------------
 */

void tr__mesh_up_locked(struct tr_node *n, struct tr__peer *p)
{
	struct tr__mesh *ms = &n->mesh;
	struct tr__member *named = NULL;
	for (uint32_t i = 0; i < ms->n; i++) {
		struct tr__member *m = &ms->v[i];
		/* A seed never reached is named by the pair that listens at
		 * its URL. */
		if (m->seed && m->name[0] == '\0') {
			for (size_t j = 0; j < p->nlisten; j++)
				if (strcmp(p->listen[j], m->urls[0]) == 0)
					snprintf(m->name, sizeof(m->name), "%s",
					    p->name);
		}
		if (strcmp(m->name, p->name) != 0)
			continue;
		m->up = true;
		m->lost_ms = 0;
		m->backoff_ms = TR__MESH_BACKOFF_MIN_MS;
		if (!m->seed)
			named = m;
	}
	/* Where to redial it if it is lost: the URLs it advertised. Not a
	 * process child: its end is the end of its process. */
	if (tr__proc_is_child(n, p->name))
		return;
	if (named == NULL && ms->reconnect && p->nlisten > 0 &&
	    (named = member_add(n)) != NULL) {
		snprintf(named->name, sizeof(named->name), "%s", p->name);
		named->up = true;
	}
	if (named != NULL && p->nlisten > 0)
		member_urls(named, p->listen, p->nlisten);
	ms->gossip_due = true;
}

void tr__mesh_down_locked(struct tr_node *n, struct tr__peer *p)
{
	struct tr__mesh *ms = &n->mesh;
	if (n->stopping || tr__peer_up(n, p->name) != NULL)
		return;
	int64_t now = tr__node_now_ms();
	for (uint32_t i = 0; i < ms->n;) {
		struct tr__member *m = &ms->v[i];
		if (strcmp(m->name, p->name) != 0) {
			i++;
			continue;
		}
		m->up = false;
		m->lost_ms = now;
		m->backoff_ms = TR__MESH_BACKOFF_MIN_MS;
		if (ms->reconnect) {
			m->next_ms = now + jitter(ms, TR__MESH_BACKOFF_MIN_MS);
		} else if (!m->seed) {
			member_remove(n, i);
			continue;
		} else {
			m->next_ms = INT64_MAX; /* reached once: done */
		}
		i++;
	}
	pthread_cond_broadcast(&n->cv);
}

void tr__mesh_dial_done_locked(
    struct tr_node *n, uint32_t hs, int rc, const char *name)
{
	if (hs == 0)
		return;
	for (uint32_t i = 0; i < n->mesh.n; i++) {
		struct tr__member *m = &n->mesh.v[i];
		if (m->dial != hs)
			continue;
		m->dial = 0;
		int64_t now = tr__node_now_ms();
		if (rc == TR_OK && name != NULL && name[0] != '\0') {
			if (m->seed && m->name[0] == '\0')
				snprintf(m->name, sizeof(m->name), "%s", name);
			if (tr__peer_up(n, name) != NULL) {
				m->up = true;
				m->lost_ms = 0;
			}
			/* Not up yet (waiting for an old pair to go): the
			 * next try, if it is still needed, after a while. */
			m->backoff_ms = TR__MESH_BACKOFF_MIN_MS;
			m->next_ms = now + TR__MESH_BACKOFF_MAX_MS;
		} else {
			backoff(n, m, now);
		}
		return;
	}
}

/* ---- gossip ---------------------------------------------------------------
 */

/* Node lock held: tells every peer of minor 1 or later which nodes are
 * up here. One encoding for all of them: a receiver skips its own name. */
static void gossip_send_locked(struct tr_node *n)
{
	uint32_t k = 0;
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
		k += p->state == TR__PS_UP && k < TR__MESH_GOSSIP_MAX;
	if (k < 2)
		return; /* one peer only: nothing it does not know */
	Troupe__Wire__Member *mv = calloc(k, sizeof(*mv));
	Troupe__Wire__Member **mp = calloc(k, sizeof(*mp));
	Troupe__Wire__NodeId *idv = calloc(k, sizeof(*idv));
	uint32_t i = 0;
	for (struct tr__peer *p = n->peers;
	     p != NULL && mv != NULL && mp != NULL && idv != NULL && i < k;
	     p = p->next) {
		/* A process child of this node is no member to pass on:
		 * it belongs to this node alone. */
		if (p->state != TR__PS_UP || tr__proc_is_child(n, p->name))
			continue;
		troupe__wire__member__init(&mv[i]);
		troupe__wire__node_id__init(&idv[i]);
		idv[i].name = p->name;
		idv[i].incarnation = p->inc;
		mv[i].node = &idv[i];
		mv[i].listen = p->listen;
		mv[i].n_listen =
		    p->nlisten < TR__MESH_URLS ? p->nlisten : TR__MESH_URLS;
		mp[i] = &mv[i];
		i++;
	}
	Troupe__Wire__Members ms = TROUPE__WIRE__MEMBERS__INIT;
	ms.members = mp;
	ms.n_members = i;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (i == k &&
	    tr__pb_encode(&buf, &len, (const ProtobufCMessage *)&ms) == TR_OK) {
		Env e = TROUPE__WIRE__ENVELOPE__INIT;
		e.control = TROUPE__WIRE__CONTROL__CONTROL_MEMBERS;
		e.payload.data = buf;
		e.payload.len = len;
		for (struct tr__peer *p = n->peers; p != NULL; p = p->next) {
			if (p->state != TR__PS_UP ||
			    p->minor < TR__NODE_MINOR_MEMBERS)
				continue;
			pthread_mutex_lock(&p->lock);
			/* Unbounded, as heartbeats: small, and rare. */
			if (p->state == TR__PS_UP)
				(void)tr__env_put(n, p, &e, false, NULL);
			pthread_mutex_unlock(&p->lock);
			tr__flush_peer(n, p, false);
		}
	}
	free(buf);
	free(mv);
	free(mp);
	free(idv);
}

static void refused(struct tr_node *n, uint64_t k, const char *why)
{
	if (k == 0)
		return;
	atomic_fetch_add_explicit(&n->mesh.n_refused, k, memory_order_relaxed);
	tr__ratelogf(&n->mesh.log_refused, n->rt, 0,
	    "NODE %s: refused %llu gossiped node(s): %s", n->name,
	    (unsigned long long)k, why);
}

void tr__mesh_gossip_in(struct tr_node *n, struct tr__peer *p, const Env *e)
{
	(void)p;
	if (!n->mesh.connect_all)
		return;
	Troupe__Wire__Members *ms = (Troupe__Wire__Members *)tr__pb_decode(
	    &troupe__wire__members__descriptor, e->payload.data, e->payload.len,
	    tr__decode_budget(e->payload.len));
	if (ms == NULL) {
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
		return;
	}
	uint64_t over = 0, full = 0;
	bool added = false;
	int64_t now = tr__node_now_ms();
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < ms->n_members && !n->stopping; i++) {
		if (i >= TR__MESH_GOSSIP_MAX) {
			over = ms->n_members - i;
			break;
		}
		const Troupe__Wire__Member *w = ms->members[i];
		if (w->node == NULL || !tr__node_name_ok(w->node->name) ||
		    strcmp(w->node->name, n->name) == 0 ||
		    tr__peer_up(n, w->node->name) != NULL ||
		    member_named(n, w->node->name) != NULL)
			continue;
		struct tr__member *m = member_add(n);
		if (m == NULL) {
			full++;
			continue;
		}
		snprintf(m->name, sizeof(m->name), "%s", w->node->name);
		member_urls(m, w->listen, w->n_listen);
		if (m->nurls == 0) {
			member_remove(n, n->mesh.n - 1);
			continue;
		}
		/* Known from a peer only: forgotten if never reached. */
		m->lost_ms = now;
		m->next_ms = now;
		added = true;
	}
	if (added)
		pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->lock);
	tr__pb_free((ProtobufCMessage *)ms);
	refused(n, over, "more than 128 in one message");
	refused(n, full, "1024 members known already");
}

/* ---- the control thread's part (node lock held) --------------------------
 */

int64_t tr__mesh_tick_locked(struct tr_node *n, int64_t now)
{
	struct tr__mesh *ms = &n->mesh;
	int64_t due = now + 1000;
	if (n->stopping)
		return due;
	if (ms->gossip_due) {
		ms->gossip_due = false;
		gossip_send_locked(n);
	}
	uint32_t dialing = 0;
	for (uint32_t i = 0; i < ms->n; i++)
		dialing += ms->v[i].dial != 0;
	for (uint32_t i = 0; i < ms->n; i++) {
		struct tr__member *m = &ms->v[i];
		if (m->dial != 0) {
			if (now < m->dial_end) {
				due = m->dial_end < due ? m->dial_end : due;
				continue;
			}
			/* Cleared first: the cancel reports the dial's end,
			 * which then finds no member. */
			uint32_t hs = m->dial;
			m->dial = 0;
			dialing--;
			tr__node_dial_cancel_locked(n, hs);
			m = &ms->v[i];
			backoff(n, m, now);
		}
		if (m->up)
			continue;
		if (!m->seed && m->lost_ms != 0 &&
		    now - m->lost_ms > TR__MESH_FORGET_MS) {
			member_remove(n, i--); /* stopped for good */
			continue;
		}
		if (m->next_ms == INT64_MAX || m->nurls == 0)
			continue;
		if (now < m->next_ms) {
			due = m->next_ms < due ? m->next_ms : due;
			continue;
		}
		if (m->name[0] != '\0' && tr__peer_up(n, m->name) != NULL) {
			m->up = true;
			continue;
		}
		if (dialing >= TR__MESH_DIALS_MAX) {
			due = now + 50 < due ? now + 50 : due;
			continue;
		}
		const char *url = m->urls[m->next_url++ % m->nurls];
		uint32_t hs = 0;
		int rc = tr__node_dial_locked(n, url, &hs);
		atomic_fetch_add_explicit(
		    &ms->n_dials, 1, memory_order_relaxed);
		m = &ms->v[i];
		if (rc == TR_OK && hs != 0) {
			m->dial = hs;
			m->dial_end = now + TR__MESH_DIAL_MS;
			dialing++;
			due = m->dial_end < due ? m->dial_end : due;
		} else {
			/* An error, or an alias of a pair that is up. */
			backoff(n, m, now);
			due = m->next_ms < due ? m->next_ms : due;
		}
	}
	return due > now ? due : now + 1;
}

void tr__mesh_stats(struct tr_node *n, tr_node_stats *st)
{
	pthread_mutex_lock(&n->lock);
	st->members_known = n->mesh.n;
	pthread_mutex_unlock(&n->lock);
	st->members_refused =
	    atomic_load_explicit(&n->mesh.n_refused, memory_order_relaxed);
	st->redials =
	    atomic_load_explicit(&n->mesh.n_dials, memory_order_relaxed);
}
