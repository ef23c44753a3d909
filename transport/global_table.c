/*
 * The table of global names: two chained hash maps (by name, by pid) over
 * the same entries, under a rwlock. Only the name server writes; lookups
 * from any thread take the read lock, so a whereis is a local read with
 * no message. The maps grow (double) at one entry per bucket.
 */
#include <stdlib.h>
#include <string.h>

#include "global_int.h"

#define GTAB_MIN 1024u

/* FNV-1a of a name, and its length. */
static uint32_t hash_name(const char *s, uint32_t *len)
{
	uint32_t h = 2166136261u;
	const char *p = s;
	for (; *p != '\0'; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	*len = (uint32_t)(p - s);
	return h;
}

static uint32_t hash_pid(tr_pid p)
{
	uint64_t x = ((uint64_t)p.node << 32) ^ ((uint64_t)p.slot << 7) ^ p.gen;
	x *= 0x9E3779B97F4A7C15ull;
	return (uint32_t)(x >> 32);
}

int tr__gtab_init(struct tr__gtable *t)
{
	memset(t, 0, sizeof(*t));
	t->nb = GTAB_MIN;
	t->byname = calloc(t->nb, sizeof(*t->byname));
	t->bypid = calloc(t->nb, sizeof(*t->bypid));
	if (t->byname == NULL || t->bypid == NULL) {
		free(t->byname);
		free(t->bypid);
		return TR_ENOMEM;
	}
	pthread_rwlock_init(&t->lock, NULL);
	return TR_OK;
}

static void entry_free(struct tr__gentry *e)
{
	free(e->owner);
	free(e);
}

void tr__gtab_fini(struct tr__gtable *t)
{
	for (uint32_t i = 0; i < t->nb; i++) {
		struct tr__gentry *nx;
		for (struct tr__gentry *e = t->byname[i]; e != NULL; e = nx) {
			nx = e->next;
			entry_free(e);
		}
	}
	free(t->byname);
	free(t->bypid);
	pthread_rwlock_destroy(&t->lock);
}

struct tr__gentry *tr__gtab_find(struct tr__gtable *t, const char *name)
{
	uint32_t len;
	uint32_t h = hash_name(name, &len);
	struct tr__gentry *e = t->byname[h & (t->nb - 1)];
	while (e != NULL && (e->hash != h || e->len != len ||
	                        memcmp(e->name, name, len) != 0))
		e = e->next;
	return e;
}

struct tr__gentry *tr__gtab_find_pid(struct tr__gtable *t, tr_pid pid)
{
	struct tr__gentry *e = t->bypid[hash_pid(pid) & (t->nb - 1)];
	while (e != NULL && !tr_pid_eq(e->pid, pid))
		e = e->pnext;
	return e;
}

/* Write lock held: doubles both maps. Out of memory: they stay as they
 * are (longer chains, still correct). */
static void grow_locked(struct tr__gtable *t)
{
	uint32_t nb = t->nb * 2;
	struct tr__gentry **bn = calloc(nb, sizeof(*bn));
	struct tr__gentry **bp = calloc(nb, sizeof(*bp));
	if (bn == NULL || bp == NULL) {
		free(bn);
		free(bp);
		return;
	}
	for (uint32_t i = 0; i < t->nb; i++) {
		struct tr__gentry *nx;
		for (struct tr__gentry *e = t->byname[i]; e != NULL; e = nx) {
			nx = e->next;
			uint32_t h = e->hash & (nb - 1);
			e->next = bn[h];
			bn[h] = e;
			h = hash_pid(e->pid) & (nb - 1);
			e->pnext = bp[h];
			bp[h] = e;
		}
	}
	free(t->byname);
	free(t->bypid);
	t->byname = bn;
	t->bypid = bp;
	t->nb = nb;
}

struct tr__gentry *tr__gtab_put(struct tr__gtable *t, const char *name,
    const char *owner, tr_pid pid, int64_t at_ms, int32_t method)
{
	uint32_t n = atomic_load_explicit(&t->n, memory_order_relaxed);
	if (n >= TR_GLOBAL_MAX_NAMES)
		return NULL;
	uint32_t len;
	uint32_t hash = hash_name(name, &len);
	struct tr__gentry *e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->name, name, len + 1);
	e->len = len;
	e->owner = strdup(owner);
	if (e->owner == NULL) {
		entry_free(e);
		return NULL;
	}
	e->hash = hash;
	e->pid = pid;
	e->at_ms = at_ms;
	e->method = method;
	pthread_rwlock_wrlock(&t->lock);
	if (n + 1 > t->nb)
		grow_locked(t);
	uint32_t h = e->hash & (t->nb - 1);
	e->next = t->byname[h];
	t->byname[h] = e;
	h = hash_pid(pid) & (t->nb - 1);
	e->pnext = t->bypid[h];
	t->bypid[h] = e;
	atomic_store_explicit(&t->n, n + 1, memory_order_relaxed);
	pthread_rwlock_unlock(&t->lock);
	return e;
}

void tr__gtab_del(struct tr__gtable *t, struct tr__gentry *e)
{
	pthread_rwlock_wrlock(&t->lock);
	struct tr__gentry **pp = &t->byname[e->hash & (t->nb - 1)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->next;
	if (*pp == e)
		*pp = e->next;
	pp = &t->bypid[hash_pid(e->pid) & (t->nb - 1)];
	while (*pp != NULL && *pp != e)
		pp = &(*pp)->pnext;
	if (*pp == e)
		*pp = e->pnext;
	atomic_fetch_sub_explicit(&t->n, 1, memory_order_relaxed);
	pthread_rwlock_unlock(&t->lock);
	entry_free(e);
}

void tr__gtab_each(struct tr__gtable *t,
    void (*fn)(struct tr__gentry *e, void *arg), void *arg)
{
	/* Only the server writes, and fn runs on it: a chain may lose the
	 * entry fn is given, never one ahead of it. The map does not grow
	 * during a walk (fn only deletes). */
	for (uint32_t i = 0; i < t->nb; i++) {
		struct tr__gentry *nx;
		for (struct tr__gentry *e = t->byname[i]; e != NULL; e = nx) {
			nx = e->next;
			fn(e, arg);
		}
	}
}
