/*
 * Views of the cluster and where partitions go in them (kv.h).
 */
#include <stdio.h>
#include <stdlib.h>
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

/* The view is the member actor's, told once it has seen a NODEDOWN,
 * while the monitors of actors on a node that went down fire at the same
 * time: when several nodes go at once (this one cut off from the others),
 * a partition actor hears that its primary died while its view still
 * holds the others, gone too. The node's own list has them gone. */
uint32_t kv_view_connected(const kv_view *v)
{
	size_t n = 0, got = 0;
	if (tr_node_list(NULL, 0, &n, kv_config.node) != TR_OK || n == 0)
		return 1;
	tr_node_info *info = calloc(n, sizeof(*info));
	if (info == NULL)
		return 1;
	tr_node_info_init(&info[0]);
	if (tr_node_list(info, n, &got, kv_config.node) != TR_OK)
		got = 0;
	uint32_t live = 1;
	for (uint32_t i = 0; i < v->n; i++) {
		const char *m = v->names[i];
		for (size_t k = 0; k < got && k < n; k++) {
			if (strcmp(info[k].name, m) == 0 &&
			    strcmp(m, kv_config.self) != 0) {
				live++;
				break;
			}
		}
	}
	free(info);
	return live;
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
