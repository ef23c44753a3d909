/*
 * Views of the cluster and where partitions go in them (kv.h).
 */
#include <stdio.h>
#include <string.h>

#include "kv.h"
#include "resp_ops.h"

void kv_part_name(char *buf, size_t cap, uint32_t p)
{
	snprintf(buf, cap, "kv.p%u", p);
}

bool kv_view_has(const kv_view *v, const char *name)
{
	for (uint32_t i = 0; i < v->n; i++)
		if (strcmp(v->names[i], name) == 0)
			return true;
	return false;
}

/* Rendezvous (highest random weight) hashing: each member's weight for
 * partition p is a hash of (p, its name); the ranking is by weight. A
 * member that leaves moves only the partitions it ranked first in, and
 * every node ranks alike, since the hash's key is the cluster's. */
void kv_rank(const kv_view *v, uint32_t p, uint32_t order[KV_MAX_NODES])
{
	uint64_t w[KV_MAX_NODES];
	for (uint32_t i = 0; i < v->n; i++) {
		char buf[TR_NODE_NAME_MAX + 16];
		int n = snprintf(buf, sizeof(buf), "%u/%s", p, v->names[i]);
		w[i] = rs_hash(kv_config.route.key, buf, (size_t)n);
		order[i] = i;
	}
	for (uint32_t i = 1; i < v->n; i++) /* a handful: insertion sort */
		for (uint32_t j = i; j > 0 && w[order[j]] > w[order[j - 1]];
		     j--) {
			uint32_t t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
}
