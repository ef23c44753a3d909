/*
 * troupe-kv: a replicated key-value store on the Redis protocol, made of
 * troupe nodes (README.md). This header holds what its actors say to each
 * other and the configuration they share, written by main before the
 * first of them starts and only read afterwards.
 *
 * The keys are cut into partitions (KV_PARTS), a key's partition given by
 * its hash (resp_ops.h, under a key derived from the cookie, so every node
 * cuts alike). Every node runs one partition actor per partition,
 * registered locally as "kv.p<N>"; the one that is the partition's
 * primary also holds the cluster-wide name "kv.p<N>" (troupe/global.h),
 * and its replicas hold copies it keeps up to date (kv_part.h).
 */
#ifndef KV_H
#define KV_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp_cmd.h"
#include "resp_ops.h"
#include "troupe/node.h"
#include "troupe/sock.h"
#include "troupe/troupe.h"

#define KV_PARTS 16u
#define KV_MAX_NODES 16u

/* The shared configuration. */
typedef struct kv_cfg {
	tr_node *node;
	const char *self;       /* this node's name */
	uint32_t replicas;      /* copies of each key (the primary's included) */
	uint32_t cluster_size;  /* members the cluster is meant to have */
	rs_route route;         /* KV_PARTS and the hash's key */
	const char *advertise;  /* node URL the others reach */
	uint32_t timeout_ms;    /* a write not replicated this soon fails */
} kv_cfg;

extern kv_cfg kv_config;

/* The cluster's majority: a node whose view holds fewer members serves
 * nothing and takes nothing over. */
static inline uint32_t kv_majority(void)
{
	return kv_config.cluster_size / 2 + 1;
}

/* ---- messages ----------------------------------------------------------- */

/* The member actor (kv_member.c) to the local partition actors: the
 * view, a kv_view. */
#define KV_MSG_VIEW 0x4B560010u
/* Between member actors: "I am a kv node" (payload: the sender's node
 * name). */
#define KV_MSG_HELLO 0x4B560011u
/* The member actor to a partition actor: no partition has a primary
 * anywhere, the view has a majority and has held for a while: the top
 * node of each partition's ranking may start it empty. */
#define KV_MSG_BOOT 0x4B560012u
/* Timers. */
#define KV_MSG_TICK 0x4B560013u

/* A partition actor to the primary of its partition: a kv_seq (the
 * sender's id of it) and a batch of operations (resp_ops.h) from one of
 * its connections; answered with a KV_MSG_FWD_REPLY (the id, then an
 * RS_MSG_REPLIES payload), or a KV_MSG_FWD_MOVED (the id). */
#define KV_MSG_FWD 0x4B560020u
#define KV_MSG_FWD_REPLY 0x4B560021u
/* The answer of a partition actor that is not the primary (any more): it
 * ran nothing, the batch may go to the next primary. Payload: the id. */
#define KV_MSG_FWD_MOVED 0x4B560022u

/* The primary to a replica: kv_seq then a batch of the state of the keys
 * a write changed (rs_store_state). Acked with KV_MSG_ACK (a kv_seq). */
#define KV_MSG_REPL 0x4B560030u
#define KV_MSG_ACK 0x4B560031u
/* A copy from scratch: BEGIN (a kv_seq, ignored), DATA (batches of SETs,
 * rs_store_dump), END (a kv_seq: the primary's sequence at the copy, which
 * the replica acks). */
#define KV_MSG_SYNC_BEGIN 0x4B560032u
#define KV_MSG_SYNC_DATA 0x4B560033u
#define KV_MSG_SYNC_END 0x4B560034u
/* The primary to a former replica: drop the copy. */
#define KV_MSG_DROP 0x4B560035u
/* A replica to a sender it does not follow: "I have no copy from you". */
#define KV_MSG_NACK 0x4B560036u

/* The client endpoint's calls (kv_gate.c): one Redis command as a RESP
 * array in, its RESP reply out. */
#define KV_MSG_CMD 0x4B560001u
#define KV_MSG_CMD_REPLY 0x4B560002u
/* The gate and its parser process (kv_parser.c). */
#define KV_MSG_PARSE 0x4B560050u
#define KV_MSG_PARSED 0x4B560051u
#define KV_MSG_PARSER_UP 0x4B560052u

typedef struct kv_seq {
	uint64_t seq;
} kv_seq;

/* A view: the kv nodes this node is connected to, itself included,
 * sorted by name. */
typedef struct kv_view {
	uint32_t n;
	uint32_t _pad;
	char names[KV_MAX_NODES][TR_NODE_NAME_MAX + 1];
} kv_view;

/* The partition of a key's hash. */
static inline uint32_t kv_part_of(uint64_t hash)
{
	return rs_shard_of(hash, KV_PARTS);
}

/* The local name of partition p's actor, which is also the cluster-wide
 * name of its primary. */
void kv_part_name(char *buf, size_t cap, uint32_t p);

/* Rendezvous ranking: writes into order[] the indexes of the view's
 * members, best first, for partition p; the same on every node. */
void kv_rank(const kv_view *v, uint32_t p, uint32_t order[KV_MAX_NODES]);

/* Whether `name` is in the view. */
bool kv_view_has(const kv_view *v, const char *name);

/* How many of the view's members this node is connected to now, itself
 * counted: at most v->n, less while the view lags behind a node that went
 * down. 1 when the node's list cannot be had. Any thread. */
uint32_t kv_view_connected(const kv_view *v);

/* Counters of a node's activity, printed by the member actor once a
 * second. Written by the partition actors with relaxed atomics. */
typedef struct kv_counters {
	_Atomic uint64_t ops;        /* operations run as primary */
	_Atomic uint64_t errors;     /* replies that were errors we made */
	_Atomic uint64_t takeovers;  /* partitions this node took over */
	_Atomic uint64_t syncs;      /* copies sent to new replicas */
	_Atomic uint32_t primaries;  /* partitions this node leads now */
	_Atomic uint32_t copies;     /* partitions it holds a replica of */
} kv_counters;

extern kv_counters kv_stats;

/* Set by the member actor: the node sees a majority and every partition
 * has a primary. kv_node.c's loop reports it: READY=1 to sd_notify (the
 * first time), and each change to the observer (tr_node_set_ready: its
 * /api/ready, which troupe-kv-health --ready asks; the plain health
 * check asks /api/health, whether the node runs). */
extern _Atomic bool kv_ready;

/* The behaviours. */
extern const tr_behaviour kv_part_bhv;   /* arg: a malloc'd uint32_t p */
extern const tr_behaviour kv_member_bhv; /* arg: NULL */
extern const tr_behaviour kv_gate_bhv;   /* arg: NULL; registered "kv" */
extern const tr_behaviour kv_parser_bhv; /* in the parser's process */
extern const tr_behaviour kv_resp_bhv;   /* arg: NULL (kv_resp_url) */
extern const char *kv_resp_url;
extern tr_sock_opts kv_resp_opts;

#endif
