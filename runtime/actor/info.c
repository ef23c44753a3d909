/*
 * The actor table seen from any thread: listings (tr_actors_list), one
 * actor's entry, and pids as text.
 *
 * A listing walks the table the way a sender looks a pid up: an acquire
 * load of the slot's entry, then reads of the actor it names, inside an
 * epoch-based reclamation section (sched.c) so that the actor cannot be
 * freed under the walk. Nothing it reads needs a lock or the owner's
 * help: the pid, kind and behaviour are immutable after the spawn
 * published them, and the mailbox's counters, its idle bit, the exit and
 * kill flags are atomics. A section is held for one chunk of slots at a
 * time, so that a walk of a large table delays the freeing of exited
 * actors by one chunk's time, not the whole walk's.
 *
 * The counters (rt.h, tr__actor): mb_in and mb_wakes, on the line every
 * sender writes, count pushes; handled, on the line only the owner
 * writes, counts pops. Their difference is the mailbox's length, never
 * negative as read here (tr__mb_length).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "rt.h"

/* Slots walked per EBR section. */
#define CHUNK 4096u

/* ---- pids as text ----------------------------------------------------------
 */

int tr_pid_format(char *buf, size_t cap, tr_pid pid)
{
	char tmp[TR_PID_TEXT_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu32 ".%" PRIu32 ".%" PRIu32,
	    pid.node, pid.slot, pid.gen);
	if (buf != NULL && cap > 0)
		snprintf(buf, cap, "%s", tmp);
	return n;
}

/* A decimal number below 2^32 at *p, which moves past it. */
static bool parse_u32(const char **p, uint32_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	size_t digits = 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX || ++digits > 10)
			return false;
		s++;
	}
	if (digits == 0)
		return false;
	*out = (uint32_t)v;
	*p = s;
	return true;
}

int tr_pid_parse(tr_pid *pid, const char *text)
{
	if (pid == NULL)
		return TR_EINVAL;
	*pid = TR_PID_NONE;
	if (text == NULL)
		return TR_EINVAL;
	tr_pid p;
	const char *s = text;
	if (!parse_u32(&s, &p.node) || *s++ != '.' || !parse_u32(&s, &p.slot) ||
	    *s++ != '.' || !parse_u32(&s, &p.gen) || *s != '\0' || p.gen == 0)
		return TR_EINVAL;
	*pid = p;
	return TR_OK;
}

/* ---- names of states and kinds --------------------------------------------
 */

const char *tr_actor_state_name(uint32_t state)
{
	switch (state) {
	case TR_ACTOR_WAITING:
		return "waiting";
	case TR_ACTOR_RUNNABLE:
		return "runnable";
	case TR_ACTOR_RUNNING:
		return "running";
	case TR_ACTOR_EXITING:
		return "exiting";
	default:
		return "unknown";
	}
}

const char *tr_actor_kind_name(uint32_t kind)
{
	switch (kind) {
	case TR_ACTOR_KIND_ACTOR:
		return "actor";
	case TR_ACTOR_KIND_PORT:
		return "port";
	default:
		return "unknown";
	}
}

/* ---- one actor, from another thread ---------------------------------------
 */

uint32_t tr__actor_state(tr__actor *a, tr__actor *const *running, unsigned nrun)
{
	if (atomic_load_explicit(&a->kill_pending, memory_order_relaxed) != 0)
		return TR_ACTOR_EXITING;
	for (unsigned i = 0; i < nrun; i++)
		if (running[i] == a)
			return TR_ACTOR_RUNNING;
	uintptr_t head =
	    atomic_load_explicit(&a->mb_head, memory_order_relaxed);
	return (head & 1u) != 0 ? TR_ACTOR_WAITING : TR_ACTOR_RUNNABLE;
}

void tr__actor_behaviour_name(const tr__actor *a, char *out)
{
	/* The behaviour is the spawner's and outlives the actor (troupe.h,
	 * tr_spawn); its name is read, never kept. */
	const char *name = a->b != NULL ? a->b->name : NULL;
	size_t i = 0;
	for (; name != NULL && i < TR_NAME_MAX && name[i] != '\0'; i++)
		out[i] = name[i];
	out[i] = '\0';
}

/* The mailbox length and handled count of `a`, as one snapshot. */
static inline void counts_of(tr__actor *a, uint32_t *mailbox, uint64_t *handled)
{
	*mailbox = tr__mb_length(a, handled);
}

/* The actors the schedulers run now; compared with, never dereferenced. */
static unsigned running_snapshot(tr_runtime *rt, tr__actor **running)
{
	unsigned n = 0;
	for (unsigned i = 0; i < rt->nsched; i++) {
		/* Acquire: pairs with the release store of the odd turn_seq
		 * in sched_main, so `running` is at least that turn's. */
		uint32_t seq = atomic_load_explicit(
		    &rt->sched[i]->turn_seq, memory_order_acquire);
		tr__actor *a = atomic_load_explicit(
		    &rt->sched[i]->running, memory_order_relaxed);
		if ((seq & 1u) != 0 && a != NULL)
			running[n++] = a;
	}
	return n;
}

/* Everything of a listing's entry but the registered name and the
 * counts. */
static void info_fill(
    tr_actor_info *info, tr__actor *a, tr__actor *const *running, unsigned nrun)
{
	memset(info, 0, sizeof(*info));
	info->struct_size = (uint32_t)sizeof(*info);
	info->pid = a->pid;
	info->kind =
	    a->kind == TR__K_PORT ? TR_ACTOR_KIND_PORT : TR_ACTOR_KIND_ACTOR;
	info->state = tr__actor_state(a, running, nrun);
	tr__actor_behaviour_name(a, info->behaviour);
}

/* The live actor of `slot`, or NULL; inside a section. */
static inline tr__actor *slot_actor(tr_runtime *rt, uint32_t slot)
{
	/* Acquire: pairs with the release store that published the actor
	 * (actor_publish, tr_port_open), as in tr__lookup. */
	uintptr_t v =
	    atomic_load_explicit(&rt->pids[slot], memory_order_acquire);
	return v != 0 && (v & 1u) == 0 ? (tr__actor *)v : NULL;
}

/* One past the highest slot ever handed out. */
static uint32_t table_end(tr_runtime *rt)
{
	pthread_mutex_lock(&rt->slot_lock);
	uint32_t end = rt->slot_hwm;
	pthread_mutex_unlock(&rt->slot_lock);
	return end;
}

/* A section for the walk: none needed on one of rt's schedulers, which
 * is between quiescent states for the length of its turn. */
typedef struct section {
	tr_runtime *rt;
	bool ext;
	unsigned rec;
} section;

static void section_enter(section *sc, tr_runtime *rt)
{
	sc->rt = rt;
	sc->ext = !(tr__current != NULL && tr__current->rt == rt);
	if (sc->ext)
		tr__ext_enter(rt, &sc->rec);
}

static void section_exit(section *sc)
{
	if (sc->ext)
		tr__ext_exit(sc->rt, sc->rec);
}

int tr_actor_info_get(tr_actor_info *info, tr_runtime *rt, tr_pid pid)
{
	if (rt == NULL || tr__struct_out_ok(info, TR_ACTOR_INFO_V1_SIZE) != 0 ||
	    pid.node != 0)
		return TR_EINVAL;
	tr__actor *running[TR_MAX_SCHEDULERS];
	tr_actor_info mine;
	section sc;
	section_enter(&sc, rt);
	unsigned nrun = running_snapshot(rt, running);
	tr__actor *a = tr__lookup(rt, pid);
	if (a != NULL) {
		info_fill(&mine, a, running, nrun);
		counts_of(a, &mine.mailbox, &mine.handled);
		(void)tr__registry_name_of(rt, a, mine.name);
	}
	section_exit(&sc);
	if (a == NULL)
		return TR_ENOPROC;
	tr__struct_out(info, &mine, sizeof(mine));
	return TR_OK;
}

/* ---- pages in slot order ---------------------------------------------------
 */

/* Entry i of the caller's array, whose stride is out[0].struct_size. */
static inline tr_actor_info *entry_at(tr_actor_info *out, size_t i)
{
	return (tr_actor_info *)(void *)((char *)out + i * out[0].struct_size);
}

static void put(tr_actor_info *out, size_t i, const tr_actor_info *mine)
{
	uint32_t stride = out[0].struct_size;
	tr_actor_info *dst = entry_at(out, i);
	dst->struct_size = stride;
	tr__struct_out(dst, mine, sizeof(*mine));
}

static void by_slot(tr_actor_info *out, size_t cap, size_t *n, size_t *total,
    uint32_t *next, tr_runtime *rt, uint32_t from)
{
	tr__actor *running[TR_MAX_SCHEDULERS];
	uint32_t end = table_end(rt);
	size_t got = 0, live = 0;
	uint32_t after = 0;
	/* Slot 0 never names an actor. A total counts the slots before the
	 * cursor too. */
	if (from == 0)
		from = 1;
	uint32_t slot = total != NULL ? 1 : from;
	bool done = false;
	while (slot < end && !done) {
		uint32_t stop = end - slot > CHUNK ? slot + CHUNK : end;
		section sc;
		section_enter(&sc, rt);
		unsigned nrun = running_snapshot(rt, running);
		for (; slot < stop; slot++) {
			tr__actor *a = slot_actor(rt, slot);
			if (a == NULL)
				continue;
			live++;
			if (slot < from || after != 0)
				continue;
			if (got == cap) {
				/* The next page starts here. */
				after = slot;
				if (total == NULL) {
					done = true;
					break;
				}
				continue;
			}
			tr_actor_info mine;
			info_fill(&mine, a, running, nrun);
			counts_of(a, &mine.mailbox, &mine.handled);
			(void)tr__registry_name_of(rt, a, mine.name);
			put(out, got++, &mine);
		}
		section_exit(&sc);
	}
	*n = got;
	if (total != NULL)
		*total = live;
	if (next != NULL)
		*next = after;
}

/* ---- top N -----------------------------------------------------------------
 *
 * One walk of the whole table with a heap of the N best so far, its worst
 * at the root: an actor that does not beat the root costs its counters'
 * loads and one comparison, so the walk's cost does not depend on N but
 * for the few actors that enter the heap.
 */

typedef struct top_ent {
	uint64_t key;
	tr_actor_info info;
} top_ent;

/* Whether x ranks before y: a larger key, then a lower slot. */
static inline bool ranks_before(const top_ent *x, const top_ent *y)
{
	return x->key > y->key ||
	       (x->key == y->key && x->info.pid.slot < y->info.pid.slot);
}

static void sift_up(top_ent *h, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!ranks_before(&h[p], &h[i]))
			break;
		top_ent t = h[p];
		h[p] = h[i];
		h[i] = t;
		i = p;
	}
}

static void sift_down(top_ent *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && ranks_before(&h[w], &h[l]))
			w = l;
		if (r < n && ranks_before(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		top_ent t = h[w];
		h[w] = h[i];
		h[i] = t;
		i = w;
	}
}

static int cmp_rank(const void *x, const void *y)
{
	const top_ent *a = x, *b = y;
	return ranks_before(a, b) ? -1 : ranks_before(b, a) ? 1 : 0;
}

static int top_n(tr_actor_info *out, size_t cap, size_t *n, size_t *total,
    tr_runtime *rt, bool by_mailbox)
{
	top_ent *h = NULL;
	if (cap > 0 && (h = malloc(cap * sizeof(*h))) == NULL)
		return TR_ENOMEM;
	tr__actor *running[TR_MAX_SCHEDULERS];
	uint32_t end = table_end(rt);
	size_t nh = 0, live = 0;
	for (uint32_t slot = 1; slot < end;) {
		uint32_t stop = end - slot > CHUNK ? slot + CHUNK : end;
		section sc;
		section_enter(&sc, rt);
		unsigned nrun = running_snapshot(rt, running);
		for (; slot < stop; slot++) {
			tr__actor *a = slot_actor(rt, slot);
			if (a == NULL)
				continue;
			live++;
			if (cap == 0)
				continue;
			top_ent e;
			counts_of(a, &e.info.mailbox, &e.info.handled);
			e.key = by_mailbox ? e.info.mailbox : e.info.handled;
			e.info.pid.slot = slot;
			if (nh == cap && !ranks_before(&e, &h[0]))
				continue;
			uint32_t mailbox = e.info.mailbox;
			uint64_t handled = e.info.handled;
			info_fill(&e.info, a, running, nrun);
			e.info.mailbox = mailbox;
			e.info.handled = handled;
			if (nh < cap) {
				h[nh] = e;
				sift_up(h, nh++);
			} else {
				h[0] = e;
				sift_down(h, nh, 0);
			}
		}
		section_exit(&sc);
	}
	if (nh > 0)
		qsort(h, nh, sizeof(*h), cmp_rank);
	/* Names last, for the few actors listed (those that died since
	 * keep none). */
	section sc;
	section_enter(&sc, rt);
	for (size_t i = 0; i < nh; i++) {
		tr__actor *a = tr__lookup(rt, h[i].info.pid);
		if (a != NULL)
			(void)tr__registry_name_of(rt, a, h[i].info.name);
	}
	section_exit(&sc);
	for (size_t i = 0; i < nh; i++)
		put(out, i, &h[i].info);
	free(h);
	*n = nh;
	if (total != NULL)
		*total = live;
	return TR_OK;
}

int tr_actors_list(tr_actor_info *out, size_t cap, size_t *n, size_t *total,
    uint32_t *next, tr_runtime *rt, const tr_actors_query *q)
{
	if (rt == NULL || n == NULL || (out == NULL && cap > 0) ||
	    (cap > 0 && tr__struct_out_ok(out, TR_ACTOR_INFO_V1_SIZE) != 0))
		return TR_EINVAL;
	tr_actors_query o;
	tr_actors_query_init(&o);
	int rc = tr__struct_in(&o, sizeof(o), q, TR_ACTORS_QUERY_V1_SIZE);
	if (rc != TR_OK)
		return rc;
	*n = 0;
	if (next != NULL)
		*next = 0;
	switch (o.sort) {
	case TR_ACTORS_BY_SLOT:
		by_slot(out, cap, n, total, next, rt, o.cursor);
		return TR_OK;
	case TR_ACTORS_TOP_MAILBOX:
	case TR_ACTORS_TOP_HANDLED:
		if (cap > TR_ACTORS_TOP_MAX)
			return TR_EINVAL;
		return top_n(
		    out, cap, n, total, rt, o.sort == TR_ACTORS_TOP_MAILBOX);
	default:
		return TR_EINVAL;
	}
}
