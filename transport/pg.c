/*
 * Process groups (troupe/pg.h): scopes and their servers' lifecycle, and
 * the public calls. Joins and leaves change the table at once and queue
 * the change for the scope's server; reads and dispatch read the table
 * under its lock, shared, and send nothing but the user's messages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node_int.h"
#include "pg_int.h"

/* ---- scopes ---------------------------------------------------------------*/

struct tr__pg_scope *tr__pg_scope_find(struct tr_node *n, const char *scope)
{
	if (n == NULL || n->pg == NULL)
		return NULL;
	if (scope == NULL || scope[0] == '\0')
		scope = TR_PG_DEFAULT_SCOPE;
	/* Acquire: pairs with the release that published each scope. */
	for (struct tr__pg_scope *s =
	         atomic_load_explicit(&n->pg->head, memory_order_acquire);
	     s != NULL; s = s->next)
		if (strcmp(s->name, scope) == 0)
			return s;
	return NULL;
}

/* The registered name of a scope's server. */
static void reg_name(char out[TR_NAME_MAX + 1], const char *scope, size_t len)
{
	if (len <= TR_NAME_MAX - 10) {
		snprintf(out, TR_NAME_MAX + 1, "troupe.pg:%s", scope);
		return;
	}
	uint64_t h = 14695981039346656037u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)scope[i]) * 1099511628211u;
	snprintf(
	    out, TR_NAME_MAX + 1, "troupe.pg#%016llx", (unsigned long long)h);
}

static void scope_free(struct tr__pg_scope *s)
{
	tr__pg_table_fini(s);
	pthread_rwlock_destroy(&s->lock);
	free(s);
}

int tr_pg_scope_start(tr_node *n, const char *scope)
{
	size_t len;
	if (n == NULL || n->pg == NULL || !tr__pg_name_ok(scope, &len))
		return TR_EINVAL;
	struct tr__pg *pg = n->pg;
	pthread_mutex_lock(&pg->lock);
	int rc = TR_OK;
	struct tr__pg_scope *s = NULL;
	if (tr__pg_scope_find(n, scope) != NULL)
		rc = TR_EEXIST;
	else if (pg->nscopes >= TR_PG_SCOPES_MAX)
		rc = TR_EAGAIN;
	else if ((s = calloc(1, sizeof(*s))) == NULL)
		rc = TR_ENOMEM;
	if (rc != TR_OK)
		goto out;
	s->n = n;
	s->rt = n->rt;
	memcpy(s->name, scope, len);
	s->len = len;
	reg_name(s->reg, scope, len);
	pthread_rwlock_init(&s->lock, NULL);
	rc = tr__pg_table_init(s);
	if (rc != TR_OK) {
		pthread_rwlock_destroy(&s->lock);
		free(s);
		goto out;
	}
	/* Published before its server runs: the server's first NODEUPs may
	 * owe syncs, and peers' messages name the scope at once. */
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_SYNC_INIT;
	rc = tr_spawn(&s->server, n->rt, &tr__pg_server_b, s, &so);
	if (rc == TR_OK) {
		rc = tr_register(n->rt, s->reg, s->server);
		if (rc != TR_OK) {
			(void)tr_kill(n->rt, s->server, TR_REASON_KILL);
			while (tr_is_alive(n->rt, s->server))
				nanosleep(&(struct timespec){0, 1000000}, NULL);
		}
	}
	if (rc != TR_OK) {
		scope_free(s);
		goto out;
	}
	s->next = atomic_load_explicit(&pg->head, memory_order_relaxed);
	atomic_store_explicit(&pg->head, s, memory_order_release);
	pg->nscopes++;
out:
	pthread_mutex_unlock(&pg->lock);
	return rc;
}

int tr__pg_start(struct tr_node *n)
{
	struct tr__pg *pg = calloc(1, sizeof(*pg));
	if (pg == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&pg->lock, NULL);
	n->pg = pg;
	return tr_pg_scope_start(n, TR_PG_DEFAULT_SCOPE);
}

void tr__pg_stop(struct tr_node *n)
{
	struct tr__pg *pg = n->pg;
	if (pg == NULL)
		return;
	struct tr__pg_scope *s =
	    atomic_load_explicit(&pg->head, memory_order_acquire);
	atomic_store_explicit(&pg->head, NULL, memory_order_release);
	/* The servers first: none of them runs once they are all dead. */
	for (struct tr__pg_scope *t = s; t != NULL; t = t->next)
		(void)tr_kill(n->rt, t->server, TR_REASON_KILL);
	for (struct tr__pg_scope *t = s; t != NULL; t = t->next)
		(void)tr__node_wait_exit(n, t->server, 5000);
	while (s != NULL) {
		struct tr__pg_scope *nx = s->next;
		scope_free(s);
		s = nx;
	}
	pthread_mutex_destroy(&pg->lock);
	free(pg);
	n->pg = NULL;
}

/* ---- join and leave -------------------------------------------------------*/

static int args(struct tr__pg_scope **sp, tr_node *n, const char *scope,
    const char *group, size_t *len)
{
	if (n == NULL || !tr__pg_name_ok(group, len) ||
	    (scope != NULL && scope[0] != '\0' && !tr__pg_name_ok(scope, NULL)))
		return TR_EINVAL;
	*sp = tr__pg_scope_find(n, scope);
	return *sp != NULL ? TR_OK : TR_ENOENT;
}

static int pids_ok(const tr_pid *pids, size_t np)
{
	if (pids == NULL || np == 0 || np > TR_PG_JOIN_MAX)
		return TR_EINVAL;
	for (size_t i = 0; i < np; i++)
		if (pids[i].node != 0 || tr_pid_is_none(pids[i]))
			return TR_EINVAL;
	return TR_OK;
}

/* Exclusive lock: undoes the first k joins of a failed call. */
static void join_undo(struct tr__pg_scope *s, struct tr__pg_group *g,
    const tr_pid *pids, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		struct tr__pg_lpid *e = tr__pg_lpid_get(s, pids[i], false);
		if (tr__pg_mem_del(s, g, pids[i], false, 1) == 1 && e != NULL) {
			e->joins--;
			tr__pg_lpid_gc(s, e);
		}
	}
}

int tr_pg_join(tr_node *n, const char *scope, const char *group,
    const tr_pid *pids, size_t np)
{
	struct tr__pg_scope *s;
	size_t len;
	int rc = args(&s, n, scope, group, &len);
	if (rc == TR_OK)
		rc = pids_ok(pids, np);
	if (rc != TR_OK)
		return rc;
	pthread_rwlock_wrlock(&s->lock);
	struct tr__pg_group *g = tr__pg_group_get(s, group, len, &rc);
	size_t i = 0;
	for (; g != NULL && i < np; i++) {
		struct tr__pg_lpid *e = tr__pg_lpid_get(s, pids[i], true);
		rc = e == NULL ? TR_ENOMEM
		               : tr__pg_mem_add(s, g, pids[i], false, 0);
		if (rc != TR_OK) {
			tr__pg_lpid_gc(s, e);
			break;
		}
		e->joins++;
	}
	if (rc == TR_OK)
		rc = tr__pg_change_queue(
		    s, TR__PG_JOIN, group, len, pids, (uint32_t)np);
	if (rc == TR_OK) {
		tr__pg_notify(s, g->name, false, pids, (uint32_t)np);
	} else if (g != NULL) {
		join_undo(s, g, pids, i);
		tr__pg_group_gc(s, g);
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int tr_pg_leave(tr_node *n, const char *scope, const char *group,
    const tr_pid *pids, size_t np)
{
	struct tr__pg_scope *s;
	size_t len;
	int rc = args(&s, n, scope, group, &len);
	if (rc == TR_OK)
		rc = pids_ok(pids, np);
	if (rc != TR_OK)
		return rc;
	tr_pid small[64];
	tr_pid *left = np <= 64 ? small : malloc(np * sizeof(*left));
	if (left == NULL)
		return TR_ENOMEM;
	uint32_t nl = 0;
	pthread_rwlock_wrlock(&s->lock);
	struct tr__pg_group *g = tr__pg_group_find(s, group, len);
	for (size_t i = 0; g != NULL && i < np; i++) {
		if (tr__pg_mem_del(s, g, pids[i], false, 1) == 0)
			continue;
		struct tr__pg_lpid *e = tr__pg_lpid_get(s, pids[i], false);
		if (e != NULL)
			e->joins--; /* forgotten by the server (it watches) */
		left[nl++] = pids[i];
	}
	rc = nl == 0 ? TR_ENOENT : TR_OK;
	if (nl > 0) {
		/* Out of memory for the change: the table has changed all
		 * the same (a leave cannot be refused); peers then learn of
		 * it at their next sync. */
		(void)tr__pg_change_queue(
		    s, TR__PG_LEAVE, group, len, left, nl);
		tr__pg_notify(s, g->name, true, left, nl);
		tr__pg_group_gc(s, g);
	}
	pthread_rwlock_unlock(&s->lock);
	if (left != small)
		free(left);
	return rc;
}

/* ---- reads ----------------------------------------------------------------*/

static int members(tr_pid *out, size_t cap, size_t *count, tr_node *n,
    const char *scope, const char *group, bool remote_too)
{
	struct tr__pg_scope *s;
	size_t len;
	if (count == NULL || (cap > 0 && out == NULL))
		return TR_EINVAL;
	int rc = args(&s, n, scope, group, &len);
	if (rc != TR_OK)
		return rc;
	pthread_rwlock_rdlock(&s->lock);
	struct tr__pg_group *g = tr__pg_group_find(s, group, len);
	size_t k = 0;
	if (g != NULL) {
		for (uint32_t i = 0; i < g->nloc; i++, k++)
			if (k < cap)
				out[k] = g->loc[i].pid;
		for (uint32_t i = 0; remote_too && i < g->nrem; i++, k++)
			if (k < cap)
				out[k] = g->rem[i].pid;
	}
	pthread_rwlock_unlock(&s->lock);
	*count = k;
	return TR_OK;
}

int tr_pg_members(tr_pid *out, size_t cap, size_t *count, tr_node *n,
    const char *scope, const char *group)
{
	return members(out, cap, count, n, scope, group, true);
}

int tr_pg_local_members(tr_pid *out, size_t cap, size_t *count, tr_node *n,
    const char *scope, const char *group)
{
	return members(out, cap, count, n, scope, group, false);
}

int tr_pg_which_groups(tr_pg_group_name *out, size_t cap, size_t *count,
    tr_node *n, const char *scope)
{
	if (n == NULL || count == NULL || (cap > 0 && out == NULL) ||
	    (scope != NULL && scope[0] != '\0' && !tr__pg_name_ok(scope, NULL)))
		return TR_EINVAL;
	struct tr__pg_scope *s = tr__pg_scope_find(n, scope);
	if (s == NULL)
		return TR_ENOENT;
	size_t k = 0;
	pthread_rwlock_rdlock(&s->lock);
	for (uint32_t b = 0; b < s->ngb; b++)
		for (struct tr__pg_group *g = s->gb[b]; g != NULL;
		     g = g->next, k++)
			if (k < cap)
				snprintf(out[k].name, sizeof(out[k].name), "%s",
				    g->name);
	pthread_rwlock_unlock(&s->lock);
	*count = k;
	return TR_OK;
}

/* ---- monitors -------------------------------------------------------------*/

static int monitor(
    tr_node *n, tr_pid to, uint64_t *ref, const char *scope, const char *group)
{
	size_t len;
	if (n == NULL || ref == NULL ||
	    (group != NULL && !tr__pg_name_ok(group, &len)) ||
	    (scope != NULL && scope[0] != '\0' && !tr__pg_name_ok(scope, NULL)))
		return TR_EINVAL;
	struct tr__pg_scope *s = tr__pg_scope_find(n, scope);
	if (s == NULL)
		return TR_ENOENT;
	pthread_rwlock_wrlock(&s->lock);
	int rc = tr__pg_sub_add(s, to, group, ref);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

int tr_pg_monitor(
    tr_ctx *ctx, uint64_t *ref, const char *scope, const char *group)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return monitor(
	    tr_node_of(tr_runtime_of(ctx)), tr_self(ctx), ref, scope, group);
}

int tr_pg_monitor_port(tr_node *n, tr_port *port, uint64_t *ref,
    const char *scope, const char *group)
{
	if (port == NULL)
		return TR_EINVAL;
	return monitor(n, tr_port_pid(port), ref, scope, group);
}

int tr_pg_demonitor(tr_node *n, const char *scope, uint64_t ref)
{
	if (n == NULL || ref == 0 ||
	    (scope != NULL && scope[0] != '\0' && !tr__pg_name_ok(scope, NULL)))
		return TR_EINVAL;
	struct tr__pg_scope *s = tr__pg_scope_find(n, scope);
	if (s == NULL)
		return TR_ENOENT;
	pthread_rwlock_wrlock(&s->lock);
	int rc = tr__pg_sub_del(s, ref);
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/* ---- dispatch -------------------------------------------------------------*/

static int send1(tr_ctx *ctx, tr_runtime *rt, tr_pid to, uint32_t type,
    const void *data, size_t size)
{
	return ctx != NULL ? tr_send(ctx, to, type, data, size)
	                   : tr_post(rt, to, type, data, size);
}

static int send_all(tr_ctx *ctx, tr_node *n, const char *scope,
    const char *group, uint32_t type, const void *data, size_t size,
    size_t *sent)
{
	if (sent != NULL)
		*sent = 0;
	if (type >= TR_MSG_SYSTEM || (data == NULL && size > 0))
		return TR_EINVAL;
	tr_pid small[64], *v = small;
	size_t k, cap = 64;
	int rc;
	for (;;) {
		rc = tr_pg_members(v, cap, &k, n, scope, group);
		if (rc != TR_OK || k <= cap)
			break;
		if (v != small)
			free(v);
		cap = k + 16;
		if ((v = malloc(cap * sizeof(*v))) == NULL)
			return TR_ENOMEM;
	}
	if (rc == TR_OK && k == 0)
		rc = TR_ENOENT;
	size_t ok = 0;
	int first = TR_OK;
	for (size_t i = 0; rc == TR_OK && i < k; i++) {
		int r = send1(ctx, n->rt, v[i], type, data, size);
		if (r == TR_OK)
			ok++;
		else if (first == TR_OK)
			first = r;
	}
	if (v != small)
		free(v);
	if (rc != TR_OK)
		return rc;
	if (sent != NULL)
		*sent = ok;
	return ok > 0 ? TR_OK : first;
}

static uint32_t rnd(void)
{
	static _Thread_local uint32_t x;
	if (x == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (uint32_t)ts.tv_nsec ^ (uint32_t)(uintptr_t)&x ^
		    0x9E3779B9u;
		if (x == 0)
			x = 1;
	}
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

static int send_one(tr_ctx *ctx, tr_node *n, const char *scope,
    const char *group, unsigned mode, uint32_t type, const void *data,
    size_t size, tr_pid *chosen)
{
	if (chosen != NULL)
		*chosen = TR_PID_NONE;
	unsigned how = mode & ~TR_PG_ANY_NODE;
	if (how > TR_PG_ROUND_ROBIN || type >= TR_MSG_SYSTEM ||
	    (data == NULL && size > 0))
		return TR_EINVAL;
	struct tr__pg_scope *s;
	size_t len;
	int rc = args(&s, n, scope, group, &len);
	if (rc != TR_OK)
		return rc;
	tr_pid to = TR_PID_NONE;
	pthread_rwlock_rdlock(&s->lock);
	struct tr__pg_group *g = tr__pg_group_find(s, group, len);
	if (g != NULL) {
		bool local = !(mode & TR_PG_ANY_NODE) && g->nloc > 0;
		uint32_t k = local ? g->nloc : g->nloc + g->nrem;
		uint32_t i = how == TR_PG_ROUND_ROBIN
		                 ? atomic_fetch_add_explicit(
		                       &g->rr, 1, memory_order_relaxed) %
		                       k
		                 : rnd() % k;
		to = i < g->nloc ? g->loc[i].pid : g->rem[i - g->nloc].pid;
	}
	pthread_rwlock_unlock(&s->lock);
	if (tr_pid_is_none(to))
		return TR_ENOENT;
	if (chosen != NULL)
		*chosen = to;
	return send1(ctx, n->rt, to, type, data, size);
}

int tr_pg_send_all(tr_ctx *ctx, const char *scope, const char *group,
    uint32_t type, const void *data, size_t size, size_t *sent)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return send_all(ctx, tr_node_of(tr_runtime_of(ctx)), scope, group, type,
	    data, size, sent);
}

int tr_pg_send_one(tr_ctx *ctx, const char *scope, const char *group,
    unsigned mode, uint32_t type, const void *data, size_t size, tr_pid *chosen)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return send_one(ctx, tr_node_of(tr_runtime_of(ctx)), scope, group, mode,
	    type, data, size, chosen);
}

int tr_pg_post_all(tr_node *n, const char *scope, const char *group,
    uint32_t type, const void *data, size_t size, size_t *sent)
{
	if (n == NULL)
		return TR_EINVAL;
	return send_all(NULL, n, scope, group, type, data, size, sent);
}

int tr_pg_post_one(tr_node *n, const char *scope, const char *group,
    unsigned mode, uint32_t type, const void *data, size_t size, tr_pid *chosen)
{
	if (n == NULL)
		return TR_EINVAL;
	return send_one(NULL, n, scope, group, mode, type, data, size, chosen);
}

/* ---- counters -------------------------------------------------------------*/

int tr_pg_stats_get(tr_pg_stats *out, tr_node *n, const char *scope)
{
	if (out == NULL || out->struct_size < TR_PG_STATS_V1_SIZE || n == NULL)
		return TR_EINVAL;
	struct tr__pg_scope *s = tr__pg_scope_find(n, scope);
	if (s == NULL)
		return TR_ENOENT;
	tr_pg_stats st;
	tr_pg_stats_init(&st);
	pthread_rwlock_rdlock(&s->lock);
	st.groups = s->ngroups;
	st.local_members = s->nloc;
	st.remote_members = s->nrem;
	st.monitors = s->nsubs;
	st.tracked = s->ntracked;
	pthread_rwlock_unlock(&s->lock);
	st.peers = atomic_load_explicit(&s->npeers_pub, memory_order_relaxed);
	st.refused_malformed =
	    atomic_load_explicit(&s->n_malformed, memory_order_relaxed);
	st.refused_bounds =
	    atomic_load_explicit(&s->n_bounds, memory_order_relaxed);
	size_t k =
	    out->struct_size < sizeof(st) ? out->struct_size : sizeof(st);
	uint32_t keep = out->struct_size;
	memcpy(out, &st, k);
	out->struct_size = keep;
	return TR_OK;
}
