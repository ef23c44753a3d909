/*
 * A scope's table (troupe/pg.h): groups by name, their local and remote
 * members with join counts, the local pids with memberships, the
 * monitors and the events they get. Every function here runs with the
 * scope's lock held (pg_int.h says how).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "pg_int.h"

#define GB_MIN 64u

static uint32_t hash_name(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static uint32_t hash_pid(tr_pid p)
{
	uint64_t x = ((uint64_t)p.slot << 32 | p.gen) * 0x9E3779B97F4A7C15u;
	return (uint32_t)(x >> 32) ^ p.node;
}

bool tr__pg_name_ok(const char *s, size_t *len)
{
	if (s == NULL)
		return false;
	size_t l = strnlen(s, TR_PG_NAME_MAX + 1);
	if (l == 0 || l > TR_PG_NAME_MAX)
		return false;
	if (len != NULL)
		*len = l;
	return true;
}

int tr__pg_table_init(struct tr__pg_scope *s)
{
	s->gb = calloc(GB_MIN, sizeof(*s->gb));
	s->pb = calloc(GB_MIN, sizeof(*s->pb));
	if (s->gb == NULL || s->pb == NULL) {
		free(s->gb);
		free(s->pb);
		return TR_ENOMEM;
	}
	s->ngb = s->npb = GB_MIN;
	s->next_ref = 1;
	return TR_OK;
}

void tr__pg_table_fini(struct tr__pg_scope *s)
{
	for (uint32_t i = 0; i < s->ngb; i++) {
		struct tr__pg_group *g, *nx;
		for (g = s->gb[i]; g != NULL; g = nx) {
			nx = g->next;
			free(g->loc);
			free(g->rem);
			free(g);
		}
	}
	for (uint32_t i = 0; i < s->npb; i++) {
		struct tr__pg_lpid *e, *nx;
		for (e = s->pb[i]; e != NULL; e = nx) {
			nx = e->next;
			free(e);
		}
	}
	free(s->gb);
	free(s->pb);
	free(s->subs);
	free(s->peers);
}

/* ---- groups ---------------------------------------------------------------*/

struct tr__pg_group *tr__pg_group_find(
    struct tr__pg_scope *s, const char *name, size_t len)
{
	uint32_t h = hash_name(name, len);
	for (struct tr__pg_group *g = s->gb[h & (s->ngb - 1)]; g != NULL;
	     g = g->next)
		if (g->hash == h && g->len == len &&
		    memcmp(g->name, name, len) == 0)
			return g;
	return NULL;
}

static void groups_grow(struct tr__pg_scope *s)
{
	uint32_t nb = s->ngb * 2;
	struct tr__pg_group **v = calloc(nb, sizeof(*v));
	if (v == NULL)
		return; /* longer chains, still correct */
	for (uint32_t i = 0; i < s->ngb; i++) {
		struct tr__pg_group *g, *nx;
		for (g = s->gb[i]; g != NULL; g = nx) {
			nx = g->next;
			g->next = v[g->hash & (nb - 1)];
			v[g->hash & (nb - 1)] = g;
		}
	}
	free(s->gb);
	s->gb = v;
	s->ngb = nb;
}

struct tr__pg_group *tr__pg_group_get(
    struct tr__pg_scope *s, const char *name, size_t len, int *rc)
{
	struct tr__pg_group *g = tr__pg_group_find(s, name, len);
	*rc = TR_OK;
	if (g != NULL)
		return g;
	if (s->ngroups >= TR_PG_GROUPS_MAX) {
		*rc = TR_EAGAIN;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		*rc = TR_ENOMEM;
		return NULL;
	}
	g->hash = hash_name(name, len);
	g->len = (uint16_t)len;
	memcpy(g->name, name, len);
	if (s->ngroups >= s->ngb)
		groups_grow(s);
	g->next = s->gb[g->hash & (s->ngb - 1)];
	s->gb[g->hash & (s->ngb - 1)] = g;
	s->ngroups++;
	return g;
}

void tr__pg_group_gc(struct tr__pg_scope *s, struct tr__pg_group *g)
{
	if (g == NULL || g->nloc != 0 || g->nrem != 0)
		return;
	struct tr__pg_group **pp = &s->gb[g->hash & (s->ngb - 1)];
	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	s->ngroups--;
	free(g->loc);
	free(g->rem);
	free(g);
}

/* ---- members --------------------------------------------------------------*/

static struct tr__pg_mem *mem_find(struct tr__pg_mem *v, uint32_t n, tr_pid p)
{
	/* From the end: what joined last tends to leave first. */
	for (uint32_t i = n; i-- > 0;)
		if (tr_pid_eq(v[i].pid, p))
			return &v[i];
	return NULL;
}

int tr__pg_mem_add(struct tr__pg_scope *s, struct tr__pg_group *g, tr_pid pid,
    bool remote, uint32_t mark)
{
	struct tr__pg_mem **v = remote ? &g->rem : &g->loc;
	uint32_t *n = remote ? &g->nrem : &g->nloc;
	uint32_t *cap = remote ? &g->caprem : &g->caploc;
	struct tr__pg_mem *m = mem_find(*v, *n, pid);
	if (m != NULL) {
		if (m->count == UINT32_MAX)
			return TR_EAGAIN;
		m->count++;
		m->mark = mark;
		return TR_OK;
	}
	if (g->nloc + g->nrem >= TR_PG_MEMBERS_MAX)
		return TR_EAGAIN;
	if (!tr__node_grow((void **)v, *n, cap, sizeof(**v)))
		return TR_ENOMEM;
	(*v)[(*n)++] = (struct tr__pg_mem){pid, 1, mark};
	if (remote)
		s->nrem++;
	else
		s->nloc++;
	return TR_OK;
}

uint32_t tr__pg_mem_del(struct tr__pg_scope *s, struct tr__pg_group *g,
    tr_pid pid, bool remote, uint32_t k)
{
	struct tr__pg_mem *v = remote ? g->rem : g->loc;
	uint32_t *n = remote ? &g->nrem : &g->nloc;
	struct tr__pg_mem *m = mem_find(v, *n, pid);
	if (m == NULL)
		return 0;
	if (k < m->count) {
		m->count -= k;
		return k;
	}
	uint32_t took = m->count;
	/* Order kept: members are listed in join order. */
	memmove(m, m + 1, (size_t)(v + *n - (m + 1)) * sizeof(*m));
	(*n)--;
	if (remote)
		s->nrem--;
	else
		s->nloc--;
	return took;
}

/* ---- local pids -----------------------------------------------------------*/

struct tr__pg_lpid *tr__pg_lpid_get(
    struct tr__pg_scope *s, tr_pid pid, bool make)
{
	uint32_t b = hash_pid(pid) & (s->npb - 1);
	for (struct tr__pg_lpid *e = s->pb[b]; e != NULL; e = e->next)
		if (tr_pid_eq(e->pid, pid))
			return e;
	if (!make)
		return NULL;
	if (s->nlpids >= s->npb) {
		uint32_t nb = s->npb * 2;
		struct tr__pg_lpid **v = calloc(nb, sizeof(*v));
		if (v != NULL) {
			for (uint32_t i = 0; i < s->npb; i++) {
				struct tr__pg_lpid *e, *nx;
				for (e = s->pb[i]; e != NULL; e = nx) {
					nx = e->next;
					uint32_t h =
					    hash_pid(e->pid) & (nb - 1);
					e->next = v[h];
					v[h] = e;
				}
			}
			free(s->pb);
			s->pb = v;
			s->npb = nb;
			b = hash_pid(pid) & (nb - 1);
		}
	}
	struct tr__pg_lpid *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->pid = pid;
	e->next = s->pb[b];
	s->pb[b] = e;
	s->nlpids++;
	return e;
}

void tr__pg_lpid_gc(struct tr__pg_scope *s, struct tr__pg_lpid *e)
{
	if (e == NULL || e->joins != 0 || e->ref != 0)
		return;
	struct tr__pg_lpid **pp = &s->pb[hash_pid(e->pid) & (s->npb - 1)];
	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	s->nlpids--;
	free(e);
}

/* ---- monitors and events --------------------------------------------------*/

/* tr__dist_msg_new copies its data: a payload is built in a buffer of
 * the caller's first, on the stack when small, else in *heap. */
static int buf_get(size_t size, unsigned char **heap)
{
	*heap = NULL;
	if (size <= 1024)
		return TR_OK;
	*heap = malloc(size);
	return *heap != NULL ? TR_OK : TR_ENOMEM;
}

static int event_send(struct tr__pg_scope *s, const struct tr__pg_sub *w,
    const char *group, bool leave, const tr_pid *pids, uint32_t n)
{
	_Alignas(16) unsigned char tmp[1024];
	unsigned char *heap;
	size_t size = TR_PG_EVENT_SIZE(n);
	tr_msg *m;
	uint32_t type = leave ? TR_MSG_PG_LEAVE : TR_MSG_PG_JOIN;
	int rc = buf_get(size, &heap);
	if (rc != TR_OK)
		return rc;
	tr_pg_event *ev = (tr_pg_event *)(heap != NULL ? heap : tmp);
	memset(ev, 0, offsetof(tr_pg_event, pids));
	ev->version = TR_PG_EVENT_V1;
	ev->npids = n;
	memcpy(ev->scope, s->name, s->len);
	snprintf(ev->group, sizeof(ev->group), "%s", group);
	memcpy(ev->pids, pids, (size_t)n * sizeof(tr_pid));
	rc = tr__dist_msg_new(&m, type, ev, size);
	free(heap);
	if (rc != TR_OK)
		return rc;
	m->ref = w->ref;
	rc = tr__dist_inject(s->rt, w->to, m);
	if (rc != TR_OK)
		tr__dist_msg_free(m);
	return rc;
}

static void sub_drop(struct tr__pg_scope *s, uint32_t i)
{
	memmove(&s->subs[i], &s->subs[i + 1],
	    (size_t)(s->nsubs - i - 1) * sizeof(*s->subs));
	s->nsubs--;
}

void tr__pg_notify(struct tr__pg_scope *s, const char *group, bool leave,
    const tr_pid *pids, uint32_t n)
{
	if (n == 0)
		return;
	for (uint32_t i = 0; i < s->nsubs;) {
		struct tr__pg_sub *w = &s->subs[i];
		if (!w->all && strcmp(w->group, group) != 0) {
			i++;
			continue;
		}
		if (event_send(s, w, group, leave, pids, n) == TR_ENOPROC) {
			sub_drop(s, i); /* its subscriber is gone */
			continue;
		}
		i++;
	}
}

/* The current members of `g` to one new monitor. */
static int snapshot_send(
    struct tr__pg_scope *s, const struct tr__pg_sub *w, struct tr__pg_group *g)
{
	uint32_t n = g->nloc + g->nrem;
	if (n == 0)
		return TR_OK;
	tr_pid *v = malloc((size_t)n * sizeof(*v));
	if (v == NULL)
		return TR_ENOMEM;
	for (uint32_t i = 0; i < g->nloc; i++)
		v[i] = g->loc[i].pid;
	for (uint32_t i = 0; i < g->nrem; i++)
		v[g->nloc + i] = g->rem[i].pid;
	int rc = event_send(s, w, g->name, false, v, n);
	free(v);
	return rc;
}

int tr__pg_sub_add(
    struct tr__pg_scope *s, tr_pid to, const char *group, uint64_t *ref)
{
	if (s->nsubs >= TR_PG_MONITORS_MAX)
		return TR_EAGAIN;
	if (!tr__node_grow(
	        (void **)&s->subs, s->nsubs, &s->capsubs, sizeof(*s->subs)))
		return TR_ENOMEM;
	struct tr__pg_sub *w = &s->subs[s->nsubs];
	memset(w, 0, sizeof(*w));
	w->ref = s->next_ref++;
	w->to = to;
	w->all = group == NULL;
	int rc = TR_OK;
	if (group != NULL) {
		size_t len = strlen(group);
		memcpy(w->group, group, len);
		struct tr__pg_group *g = tr__pg_group_find(s, group, len);
		if (g != NULL)
			rc = snapshot_send(s, w, g);
	} else {
		for (uint32_t i = 0; i < s->ngb && rc == TR_OK; i++)
			for (struct tr__pg_group *g = s->gb[i];
			     g != NULL && rc == TR_OK; g = g->next)
				rc = snapshot_send(s, w, g);
	}
	if (rc != TR_OK)
		return rc;
	s->nsubs++;
	*ref = w->ref;
	return TR_OK;
}

int tr__pg_sub_del(struct tr__pg_scope *s, uint64_t ref)
{
	for (uint32_t i = 0; i < s->nsubs; i++)
		if (s->subs[i].ref == ref) {
			sub_drop(s, i);
			return TR_OK;
		}
	return TR_ENOENT;
}

/* ---- changes for the server -----------------------------------------------*/

int tr__pg_change_queue(struct tr__pg_scope *s, uint32_t op, const char *group,
    size_t len, const tr_pid *pids, uint32_t n)
{
	_Alignas(16) unsigned char tmp[1024];
	unsigned char *heap;
	size_t size =
	    sizeof(struct tr__pg_change) + (size_t)n * sizeof(tr_pid) + len + 1;
	tr_msg *m = NULL;
	int rc = buf_get(size, &heap);
	if (rc != TR_OK)
		return rc;
	struct tr__pg_change *c =
	    (struct tr__pg_change *)(heap != NULL ? heap : tmp);
	c->leave = op;
	c->npids = n;
	c->len = (uint32_t)len;
	c->pad = 0;
	memcpy(c->pids, pids, (size_t)n * sizeof(tr_pid));
	char *name = (char *)(c->pids + n);
	memcpy(name, group, len);
	name[len] = '\0';
	rc = tr__dist_msg_new(&m, TR__PG_T_CHANGE, c, size);
	free(heap);
	if (rc != TR_OK)
		return rc;
	rc = tr__dist_inject(s->rt, s->server, m);
	if (rc != TR_OK)
		tr__dist_msg_free(m);
	return rc;
}
