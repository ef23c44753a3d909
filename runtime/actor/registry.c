/*
 * The local name registry: name -> pid, and slot -> name so that an
 * exiting actor can drop its name.
 *
 * One mutex guards both tables. Registration is rare and a hot sender
 * should keep the pid it got from tr_whereis, so send-by-name paying for
 * an uncontended lock is acceptable; the per-message send path never
 * touches this file.
 *
 * An actor's `has_name` flag spares every exit the lock. Registering races
 * with the actor's exit; the two sides use a store-fence-load pattern:
 * tr_register sets has_name, fences, then checks the actor is still in the
 * table; the exiting actor removes itself from the table, fences, then
 * reads has_name. At least one of them sees the other.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"

typedef struct rnode {
	struct rnode *next_name, *next_slot;
	tr_pid pid;
	char name[TR_NAME_MAX + 1];
} rnode;

#define NBUCKETS 1024u

struct tr__registry {
	pthread_mutex_t lock;
	rnode *by_name[NBUCKETS];
	rnode *by_slot[NBUCKETS];
};

static uint32_t hash_name(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % NBUCKETS;
}

static rnode **find_name(tr__registry *r, const char *name)
{
	rnode **pp = &r->by_name[hash_name(name)];
	while (*pp != NULL && strcmp((*pp)->name, name) != 0)
		pp = &(*pp)->next_name;
	return pp;
}

static rnode **find_slot(tr__registry *r, rnode *n)
{
	rnode **pp = &r->by_slot[n->pid.slot % NBUCKETS];
	while (*pp != n)
		pp = &(*pp)->next_slot;
	return pp;
}

static void unlink_node(tr__registry *r, rnode **by_name)
{
	rnode *n = *by_name;
	*by_name = n->next_name;
	*find_slot(r, n) = n->next_slot;
	free(n);
}

int tr__registry_init(tr_runtime *rt)
{
	tr__registry *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	rt->registry = r;
	return TR_OK;
}

void tr__registry_fini(tr_runtime *rt)
{
	tr__registry *r = rt->registry;
	if (r == NULL)
		return;
	for (unsigned i = 0; i < NBUCKETS; i++) {
		rnode *n = r->by_name[i];
		while (n != NULL) {
			rnode *next = n->next_name;
			free(n);
			n = next;
		}
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
	rt->registry = NULL;
}

/* Runs f inside an epoch section (or on a scheduler) so the looked-up actor
 * cannot be freed meanwhile. */
typedef struct lookup_scope {
	tr_runtime *rt;
	bool ext;
	unsigned rec;
} lookup_scope;

static void scope_enter(lookup_scope *sc, tr_runtime *rt)
{
	sc->rt = rt;
	sc->ext = !(tr__current != NULL && tr__current->rt == rt);
	if (sc->ext)
		tr__ext_enter(rt, &sc->rec);
}

static void scope_exit(lookup_scope *sc)
{
	if (sc->ext)
		tr__ext_exit(sc->rt, sc->rec);
}

int tr_register(tr_runtime *rt, const char *name, tr_pid pid)
{
	if (rt == NULL || !tr_name_valid(name) || pid.node != 0)
		return TR_EINVAL;
	tr__registry *r = rt->registry;
	lookup_scope sc;
	scope_enter(&sc, rt);
	pthread_mutex_lock(&r->lock);
	int rc = TR_OK;
	rnode **pp = find_name(r, name);
	tr__actor *a = tr__lookup(rt, pid);
	if (*pp != NULL) {
		rc = TR_EEXIST;
	} else if (a == NULL || a->kind != TR__K_ACTOR) {
		rc = TR_ENOPROC;
	} else if (atomic_load_explicit(&a->has_name, memory_order_relaxed)) {
		rc = TR_EEXIST;
	} else {
		rnode *n = calloc(1, sizeof(*n));
		if (n == NULL) {
			rc = TR_ENOMEM;
		} else {
			n->pid = pid;
			strcpy(n->name, name);
			n->next_name = NULL;
			*pp = n;
			n->next_slot = r->by_slot[pid.slot % NBUCKETS];
			r->by_slot[pid.slot % NBUCKETS] = n;
			atomic_store_explicit(
			    &a->has_name, 1, memory_order_relaxed);
			/* Pairs with the fence in the exit path (actor.c). */
			tr__fence_sc();
			if (tr__lookup(rt, pid) != a) {
				/* It exited meanwhile and may not have seen
				 * the flag: undo. */
				unlink_node(r, find_name(r, name));
				rc = TR_ENOPROC;
			}
		}
	}
	pthread_mutex_unlock(&r->lock);
	scope_exit(&sc);
	return rc;
}

int tr_unregister(tr_runtime *rt, const char *name)
{
	if (rt == NULL || !tr_name_valid(name))
		return TR_EINVAL;
	tr__registry *r = rt->registry;
	lookup_scope sc;
	scope_enter(&sc, rt);
	pthread_mutex_lock(&r->lock);
	int rc = TR_ENOENT;
	rnode **pp = find_name(r, name);
	if (*pp != NULL) {
		tr__actor *a = tr__lookup(rt, (*pp)->pid);
		if (a != NULL)
			atomic_store_explicit(
			    &a->has_name, 0, memory_order_relaxed);
		unlink_node(r, pp);
		rc = TR_OK;
	}
	pthread_mutex_unlock(&r->lock);
	scope_exit(&sc);
	return rc;
}

int tr_whereis(tr_pid *pid, tr_runtime *rt, const char *name)
{
	if (pid == NULL || rt == NULL || !tr_name_valid(name))
		return TR_EINVAL;
	tr__registry *r = rt->registry;
	pthread_mutex_lock(&r->lock);
	rnode *n = *find_name(r, name);
	int rc = n != NULL ? TR_OK : TR_ENOENT;
	if (n != NULL)
		*pid = n->pid;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

void tr__registry_release(tr_runtime *rt, tr__actor *a, char *name)
{
	tr__registry *r = rt->registry;
	pthread_mutex_lock(&r->lock);
	rnode *n = r->by_slot[a->pid.slot % NBUCKETS];
	while (n != NULL && !tr_pid_eq(n->pid, a->pid))
		n = n->next_slot;
	if (n != NULL) {
		strcpy(name, n->name);
		unlink_node(r, find_name(r, n->name));
	}
	atomic_store_explicit(&a->has_name, 0, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
}

bool tr__registry_name_of(tr_runtime *rt, tr__actor *a, char *name)
{
	name[0] = '\0';
	if (!atomic_load_explicit(&a->has_name, memory_order_relaxed))
		return false;
	tr__registry *r = rt->registry;
	pthread_mutex_lock(&r->lock);
	rnode *n = r->by_slot[a->pid.slot % NBUCKETS];
	while (n != NULL && !tr_pid_eq(n->pid, a->pid))
		n = n->next_slot;
	if (n != NULL)
		strcpy(name, n->name);
	pthread_mutex_unlock(&r->lock);
	return n != NULL;
}

bool tr__registry_name_pid(tr_runtime *rt, tr_pid pid, char *name)
{
	name[0] = '\0';
	if (pid.node != 0 || pid.gen == 0)
		return false;
	tr__registry *r = rt->registry;
	pthread_mutex_lock(&r->lock);
	rnode *n = r->by_slot[pid.slot % NBUCKETS];
	while (n != NULL && !tr_pid_eq(n->pid, pid))
		n = n->next_slot;
	if (n != NULL)
		strcpy(name, n->name);
	pthread_mutex_unlock(&r->lock);
	return n != NULL;
}

int tr_send_named(
    tr_ctx *ctx, const char *name, uint32_t type, const void *data, size_t size)
{
	if (ctx == NULL)
		return TR_EINVAL;
	tr_pid pid;
	int rc = tr_whereis(&pid, ctx->rt, name);
	if (rc != TR_OK)
		return rc;
	return tr_send(ctx, pid, type, data, size);
}
