/*
 * The distribution interface's entry points into the runtime's internals
 * (dist/dist.h): message allocation, the runtime's header of a message,
 * references, behaviours by name, and what a layer needs to know of the
 * thread it runs on, so that a layer built as a library of its own needs
 * none of rt.h's structs. Attaching, detaching and injecting live with
 * delivery, in actor/actor.c.
 *
 * These are exported (TR__DIST_API) thin wrappers rather than exports of
 * the internal functions themselves: the runtime keeps calling its hidden
 * tr__msg_free and the like directly, without going through the PLT, on
 * its own hot paths.
 */
#include <stdint.h>

#include "dist/dist.h"
#include "rt.h"

int tr__dist_msg_new(tr_msg **mp, uint32_t type, const void *data, size_t size)
{
	if (size > UINT32_MAX)
		return TR_EMSGSIZE;
	return tr__msg_new_sys(mp, type, data, size);
}

void tr__dist_msg_free(tr_msg *m)
{
	tr__msg_free(m);
}

uint32_t tr__dist_rin_size(const tr_msg *m)
{
	return tr__rin_size(m);
}

tr_msg *tr__dist_msg_next(const tr_msg *m)
{
	return tr__msg_next(m);
}

void tr__dist_msg_set_next(tr_msg *m, tr_msg *next)
{
	tr__msg_set_next(m, next);
}

uint64_t tr__dist_new_ref(tr_runtime *rt)
{
	return tr__new_ref(rt);
}

const tr_behaviour *tr__dist_behaviour_find(tr_runtime *rt, const char *name)
{
	return tr__behaviour_find(rt, name);
}

unsigned tr__dist_version(void)
{
	return TR__DIST_VERSION;
}

bool tr__dist_in_turn(const tr_runtime *rt)
{
	/* tr__current is set by a scheduler thread for its whole life and
	 * read only by that thread: no atomic needed. */
	const tr__sched *s = tr__current;
	return s != NULL && s->rt == rt;
}

bool tr__dist_turn_dirty(tr_ctx *ctx)
{
	/* dist_dirty is written and read only by the scheduler that owns it
	 * (sched_main reads it after the turn), which is the calling thread. */
	if (ctx->s == NULL)
		return false;
	ctx->s->dist_dirty = true;
	return true;
}

size_t tr__dist_max_msg(const tr_runtime *rt)
{
	return rt->opts.max_msg_size;
}

uint32_t tr__dist_spin_us(const tr_runtime *rt)
{
	return rt->opts.spin_us;
}

bool tr__dist_sched_awake(tr_runtime *rt)
{
	uint64_t all =
	    rt->nsched == 64 ? ~(uint64_t)0 : (((uint64_t)1 << rt->nsched) - 1);
	return atomic_load_explicit(&rt->parked, memory_order_acquire) != all;
}
