/*
 * The map from a running child's pid to its child, so that an exit among
 * many simple_one_for_one children is found in O(1).
 *
 * Open addressing with linear probing and backward-shift deletion: no
 * tombstones, and a restart (one removal, one insertion) never allocates.
 * The load factor stays at or below one half.
 */
#include <stdlib.h>

#include "sup_int.h"

static uint32_t pid_hash(tr_pid p)
{
	uint64_t h = (uint64_t)p.slot << 32 | p.gen;
	h ^= (uint64_t)p.node << 17;
	h *= 0x9e3779b97f4a7c15u;
	return (uint32_t)(h >> 32);
}

child *tr__pm_get(const pidmap *m, tr_pid p)
{
	if (m->cap == 0 || tr_pid_is_none(p))
		return NULL;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = pid_hash(p) & mask;; i = (i + 1) & mask) {
		if (tr_pid_is_none(m->slots[i].pid))
			return NULL;
		if (tr_pid_eq(m->slots[i].pid, p))
			return m->slots[i].c;
	}
}

/* Inserts without growing: the caller made room with tr__pm_reserve. */
void tr__pm_put(pidmap *m, tr_pid p, child *c)
{
	uint32_t mask = m->cap - 1;
	uint32_t i = pid_hash(p) & mask;
	while (!tr_pid_is_none(m->slots[i].pid))
		i = (i + 1) & mask;
	m->slots[i].pid = p;
	m->slots[i].c = c;
	m->n++;
}

/* Makes room for one more entry, so that the insertion after a successful
 * spawn cannot fail. */
int tr__pm_reserve(pidmap *m)
{
	if ((m->n + 1) * 2 <= m->cap)
		return TR_OK;
	uint32_t ncap = m->cap != 0 ? m->cap * 2 : 8;
	if (ncap < m->cap)
		return TR_ENOMEM;
	struct pm_slot *ns = calloc(ncap, sizeof(*ns));
	if (ns == NULL)
		return TR_ENOMEM;
	pidmap old = *m;
	m->slots = ns;
	m->cap = ncap;
	m->n = 0;
	for (uint32_t i = 0; i < old.cap; i++)
		if (!tr_pid_is_none(old.slots[i].pid))
			tr__pm_put(m, old.slots[i].pid, old.slots[i].c);
	free(old.slots);
	return TR_OK;
}

void tr__pm_del(pidmap *m, tr_pid p)
{
	if (m->cap == 0 || tr_pid_is_none(p))
		return;
	uint32_t mask = m->cap - 1;
	uint32_t i = pid_hash(p) & mask;
	for (;; i = (i + 1) & mask) {
		if (tr_pid_is_none(m->slots[i].pid))
			return;
		if (tr_pid_eq(m->slots[i].pid, p))
			break;
	}
	/* Backward shift: pull later entries of the probe run into the hole
	 * unless their home position lies cyclically after the hole. */
	uint32_t j = i;
	for (;;) {
		m->slots[i].pid = TR_PID_NONE;
		m->slots[i].c = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (tr_pid_is_none(m->slots[j].pid)) {
				m->n--;
				return;
			}
			uint32_t home = pid_hash(m->slots[j].pid) & mask;
			if (i <= j ? (i < home && home <= j)
			           : (i < home || home <= j))
				continue;
			break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
}
