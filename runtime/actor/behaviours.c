/*
 * Behaviours by name: what other nodes and clients may start here, since
 * they can name a behaviour but never hand over its address. Remote
 * spawns and remote supervisor child starts (sup.c) share this registry,
 * and the blob type and refusal replies that go with starting and calling
 * across the wire live here too.
 *
 * One mutex guards a small array searched linearly: registrations happen
 * at startup, lookups once per remote start, and a node registers tens of
 * behaviours, not thousands. Entries are never removed before the runtime
 * stops, so a looked-up behaviour may be used after the lock is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "rt.h"
#include "troupe/sup.h"

typedef struct bentry {
	const tr_behaviour *b;
	char name[TR_NAME_MAX + 1];
} bentry;

struct tr__behaviours {
	pthread_mutex_t lock;
	bentry *v;
	size_t n, cap;
};

int tr__behaviours_init(tr_runtime *rt)
{
	tr__behaviours *r = calloc(1, sizeof(*r));
	if (r == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	rt->behaviours = r;
	return TR_OK;
}

void tr__behaviours_fini(tr_runtime *rt)
{
	tr__behaviours *r = rt->behaviours;
	if (r == NULL)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r->v);
	free(r);
	rt->behaviours = NULL;
}

static bentry *find(tr__behaviours *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0)
			return &r->v[i];
	return NULL;
}

int tr_behaviour_register(
    tr_runtime *rt, const char *name, const tr_behaviour *b)
{
	/* The supervisor's argument is a tr_sup_args full of pointers; one
	 * started by name would read a blob as such. */
	if (rt == NULL || !tr_name_valid(name) || b == NULL || b->handle == NULL ||
	    b == &tr_sup_behaviour)
		return TR_EINVAL;
	tr__behaviours *r = rt->behaviours;
	int rc = TR_OK;
	pthread_mutex_lock(&r->lock);
	if (find(r, name) != NULL) {
		rc = TR_EEXIST;
	} else if (r->n == r->cap) {
		size_t cap = r->cap != 0 ? r->cap * 2 : 8;
		bentry *v = realloc(r->v, cap * sizeof(*v));
		if (v == NULL) {
			rc = TR_ENOMEM;
		} else {
			r->v = v;
			r->cap = cap;
		}
	}
	if (rc == TR_OK) {
		bentry *e = &r->v[r->n++];
		e->b = b;
		memcpy(e->name, name, strlen(name) + 1);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

const tr_behaviour *tr__behaviour_find(tr_runtime *rt, const char *name)
{
	if (rt == NULL || !tr_name_valid(name))
		return NULL;
	tr__behaviours *r = rt->behaviours;
	pthread_mutex_lock(&r->lock);
	bentry *e = find(r, name);
	const tr_behaviour *b = e != NULL ? e->b : NULL;
	pthread_mutex_unlock(&r->lock);
	return b;
}

tr_blob *tr__blob_new(const void *data, size_t size)
{
	if (size > SIZE_MAX - sizeof(tr_blob) || (data == NULL && size != 0))
		return NULL;
	tr_blob *b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	if (size != 0)
		memcpy(b->data, data, size);
	return b;
}

int tr__msg_refused(tr_msg **mp, tr_pid from, uint64_t ref, int err)
{
	if (mp == NULL || ref == 0 || err >= 0)
		return TR_EINVAL;
	int32_t e = err;
	int rc = tr__msg_new_sys(mp, TR_MSG_REFUSED, &e, sizeof(e));
	if (rc != TR_OK)
		return rc;
	(*mp)->sender = from;
	(*mp)->ref = ref;
	(*mp)->_flags |= TR__MF_REPLY;
	return TR_OK;
}

int tr__reply_refused(
    tr_runtime *rt, tr_pid from, tr_pid to, uint64_t ref, int err)
{
	if (rt == NULL || to.node != 0 || tr_pid_is_none(to))
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_refused(&m, from, ref, err);
	if (rc != TR_OK)
		return rc;
	rc = tr__deliver_any(rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}
