/*
 * The member actor, registered as "kv.member" on every node: which kv
 * nodes this one is connected to (its view), told to the partition
 * actors at every change; the start of partitions that have never had a
 * primary (KV_MSG_BOOT, while some partition has none and the view has
 * held still for BOOT_QUIET_MS); and one status line a second.
 *
 * A node is a member once its member actor has said hello: nodes that
 * are not kv nodes (the parser's process, a troupe-ctl) are connected
 * too, but have no "kv.member" to answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "resp_store.h"
#include "troupe/global.h"

#define TICK_MS 200
#define BOOT_QUIET_MS 1000 /* a view unchanged this long may boot */

_Atomic bool kv_ready;

struct member {
	kv_view view;
	int64_t changed_ms; /* when the view last changed */
	uint32_t ticks;
	uint64_t last_ops, last_errors;
	char holders[KV_PARTS][TR_NODE_NAME_MAX + 1]; /* as last printed */
};

static int64_t now_ms(void)
{
	return rs_now_ms();
}

static void view_sort(kv_view *v)
{
	for (uint32_t i = 1; i < v->n; i++)
		for (uint32_t j = i;
		     j > 0 && strcmp(v->names[j], v->names[j - 1]) < 0; j--) {
			char t[TR_NODE_NAME_MAX + 1];
			memcpy(t, v->names[j], sizeof(t));
			memcpy(v->names[j], v->names[j - 1], sizeof(t));
			memcpy(v->names[j - 1], t, sizeof(t));
		}
}

static void tell_parts(tr_ctx *ctx, struct member *s, uint32_t type)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		char name[16];
		tr_pid pid;
		kv_part_name(name, sizeof(name), p);
		if (tr_whereis(&pid, rt, name) == TR_OK)
			(void)tr_send(ctx, pid, type, &s->view,
			    type == KV_MSG_VIEW ? sizeof(s->view) : 0);
	}
}

static void print_view(const struct member *s, const char *what)
{
	printf("kv %s: %s; members %u of %u:", kv_config.self, what, s->view.n,
	    kv_config.cluster_size);
	for (uint32_t i = 0; i < s->view.n; i++)
		printf(" %s", s->view.names[i]);
	printf("\n");
	fflush(stdout);
}

static void changed(tr_ctx *ctx, struct member *s, const char *what)
{
	view_sort(&s->view);
	s->changed_ms = now_ms();
	print_view(s, what);
	tell_parts(ctx, s, KV_MSG_VIEW);
}

static int member_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct member *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return 1;
	s->view.n = 1;
	snprintf(s->view.names[0], sizeof(s->view.names[0]), "%s",
	    kv_config.self);
	s->changed_ms = now_ms();
	if (tr_monitor_node(ctx, NULL, true) != TR_OK ||
	    tr_send_after(ctx, NULL, tr_self(ctx), TICK_MS, TICK_MS,
	        KV_MSG_TICK, NULL, 0) != TR_OK) {
		free(s);
		return 1;
	}
	*state = s;
	return 0;
}

static void hello(tr_ctx *ctx, const char *node)
{
	(void)tr_send_remote_named(ctx, node, "kv.member", KV_MSG_HELLO,
	    kv_config.self, strlen(kv_config.self) + 1);
}

static void add(tr_ctx *ctx, struct member *s, const char *node)
{
	if (kv_view_has(&s->view, node) || s->view.n == KV_MAX_NODES)
		return;
	snprintf(s->view.names[s->view.n], sizeof(s->view.names[0]), "%s",
	    node);
	s->view.n++;
	hello(ctx, node); /* it may not know us yet */
	char what[TR_NODE_NAME_MAX + 16];
	snprintf(what, sizeof(what), "%s joined", node);
	changed(ctx, s, what);
}

static void del(tr_ctx *ctx, struct member *s, const tr_node_event *e)
{
	for (uint32_t i = 0; i < s->view.n; i++) {
		if (strcmp(s->view.names[i], e->node) != 0)
			continue;
		memcpy(s->view.names[i], s->view.names[s->view.n - 1],
		    sizeof(s->view.names[0]));
		s->view.n--;
		char what[TR_NODE_NAME_MAX + TR_NODE_REASON_MAX + 16];
		snprintf(what, sizeof(what), "%s left (%s)", e->node, e->reason);
		changed(ctx, s, what);
		return;
	}
}

/* The primaries' nodes; prints the partitions that moved. Returns how
 * many partitions have a primary. */
static uint32_t primaries(struct member *s, bool print)
{
	char line[1024];
	size_t at = 0;
	uint32_t have = 0, moved = 0;
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		char name[16], node[TR_NODE_NAME_MAX + 1] = "";
		tr_pid pid;
		kv_part_name(name, sizeof(name), p);
		if (tr_global_whereis(&pid, kv_config.node, name) == TR_OK &&
		    tr_node_name_of(node, sizeof(node), kv_config.node, pid) ==
		        TR_OK)
			have++;
		if (strcmp(node, s->holders[p]) == 0)
			continue;
		if (node[0] != '\0' && s->holders[p][0] != '\0' &&
		    at < sizeof(line) - 64) {
			at += (size_t)snprintf(line + at, sizeof(line) - at,
			    " %s %s->%s", name, s->holders[p], node);
			moved++;
		}
		if (node[0] != '\0')
			memcpy(s->holders[p], node, sizeof(node));
	}
	if (print && moved > 0) {
		printf("kv %s: primaries moved:%s\n", kv_config.self, line);
		fflush(stdout);
	}
	return have;
}

static void status(struct member *s, uint32_t have)
{
	uint64_t ops = atomic_load_explicit(&kv_stats.ops, memory_order_relaxed);
	uint64_t err =
	    atomic_load_explicit(&kv_stats.errors, memory_order_relaxed);
	printf("kv %s: members %u/%u, primaries %u/%u, leads %u, copies %u, "
	       "%llu ops/s, %llu errors/s, takeovers %llu, syncs %llu\n",
	    kv_config.self, s->view.n, kv_config.cluster_size, have, KV_PARTS,
	    atomic_load_explicit(&kv_stats.primaries, memory_order_relaxed),
	    atomic_load_explicit(&kv_stats.copies, memory_order_relaxed),
	    (unsigned long long)(ops - s->last_ops),
	    (unsigned long long)(err - s->last_errors),
	    (unsigned long long)atomic_load_explicit(
	        &kv_stats.takeovers, memory_order_relaxed),
	    (unsigned long long)atomic_load_explicit(
	        &kv_stats.syncs, memory_order_relaxed));
	fflush(stdout);
	s->last_ops = ops;
	s->last_errors = err;
}

static void tick(tr_ctx *ctx, struct member *s)
{
	uint32_t have = primaries(s, true);
	if (have < KV_PARTS && s->view.n >= kv_majority() &&
	    now_ms() - s->changed_ms >= BOOT_QUIET_MS)
		tell_parts(ctx, s, KV_MSG_BOOT);
	bool ready = have == KV_PARTS && s->view.n >= kv_majority();
	atomic_store_explicit(&kv_ready, ready, memory_order_release);
	if (++s->ticks % (1000 / TICK_MS) == 0)
		status(s, have);
}

static int member_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct member *s = state;
	switch (m->type) {
	case TR_MSG_NODEUP:
		if (m->size >= TR_NODE_EVENT_V1_SIZE)
			hello(ctx, ((const tr_node_event *)m->data)->node);
		break;
	case TR_MSG_NODEDOWN:
		if (m->size >= TR_NODE_EVENT_V2_SIZE)
			del(ctx, s, (const tr_node_event *)m->data);
		break;
	case KV_MSG_HELLO: {
		char node[TR_NODE_NAME_MAX + 1];
		if (tr_node_name_of(node, sizeof(node), kv_config.node,
		        m->sender) == TR_OK &&
		    strcmp(node, kv_config.self) != 0)
			add(ctx, s, node);
		break;
	}
	case KV_MSG_TICK:
		tick(ctx, s);
		break;
	default:
		break;
	}
	return 0;
}

static void member_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	atomic_store_explicit(&kv_ready, false, memory_order_release);
	free(state);
}

const tr_behaviour kv_member_bhv = {
    .name = "kv.member",
    .init = member_init,
    .handle = member_handle,
    .terminate = member_terminate,
};
