/*
 * troupe global: names for pids across a cluster (Erlang/OTP's global).
 *
 * Each node runs a name server, an actor registered locally as
 * "troupe.global" (TR_GLOBAL_SERVER_NAME), started by tr_node_start and
 * stopped by tr_node_stop. Every node keeps a full copy of the table of
 * names, so a lookup (tr_global_whereis, tr_global_send) is a local read
 * with no message, as global:whereis_name reads an ETS table.
 *
 * Ownership: an entry is owned by the node its pid lives on. The owner's
 * server monitors the pid; when the pid dies, the owner drops the name and
 * tells every peer. When a node goes down (NODEDOWN), every node drops at
 * once each name whose pid lived there.
 *
 * Registration takes no cluster-wide lock: the owner's server asks every
 * connected node for a vote on the one name (a claim); each node grants
 * at most one claim per name at a time. All yes: the name is held
 * everywhere (TR_OK). A no (someone holds it): TR_EEXIST. A vote that is
 * busy with another claim: the claim is withdrawn and tried again after a
 * short random, growing backoff, until the call's timeout
 * (TR_ETIMEDOUT). A node that goes down while its vote is awaited is
 * dropped from the wait at its NODEDOWN, so a frozen or flapping node
 * delays a registration by at most the failure-detection bound (4 ticks),
 * never more, and never beyond the timeout. A grant whose claimer goes
 * down, or that is neither committed nor withdrawn within 8 ticks (at
 * least 2 s), is released.
 *
 * Partitions: nodes that cannot reach each other vote without each other,
 * so each side of a partition may register the same name for a pid of its
 * own, and lookups on each side see their side's pid. When the sides meet
 * again (NODEUP, each sends the other the names it owns), the conflict is
 * resolved by one rule that every node computes alike: the entry
 * registered earlier (owner's wall clock) wins; a tie goes to the owner
 * node whose name sorts first (strcmp), then to the lower pid. The loser's
 * owner drops the loser's name and applies the loser's method
 * (tr_global_method). Clock skew between nodes can only change which one
 * wins, never whether there is one: no name ever keeps two owners once
 * the nodes are connected. docs/global.md has the protocol and the
 * bounds.
 *
 * A pid has at most one global name (as global refuses a second one
 * unless global_multi_name_action is allow): registering another name for
 * it gives TR_EEXIST.
 */
#ifndef TROUPE_GLOBAL_H
#define TROUPE_GLOBAL_H

#include "troupe/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The local name of the name server on each node. */
#define TR_GLOBAL_SERVER_NAME "troupe.global"

/* Global names: 1..255 bytes, any bytes but NUL. */
#define TR_GLOBAL_NAME_MAX 255

/* Names a node holds at most (its own and others'); a registration past it
 * gets TR_ENOMEM, and names synced from peers past it are refused and
 * counted (names_refused). */
#define TR_GLOBAL_MAX_NAMES 65536u

/* What happens to the loser of a conflict after a partition healed. */
enum tr_global_method {
	/* Default: the loser is killed, exit(Pid, kill) as global's
	 * random_exit_name: it dies with reason TR_REASON_KILLED (links and
	 * monitors see killed). */
	TR_GLOBAL_KILL = 0,
	/* The name is dropped and the loser gets a TR_MSG_GLOBAL_CONFLICT
	 * message (payload tr_global_conflict). */
	TR_GLOBAL_NOTIFY = 1,
	/* The name is just dropped (global's notify_all_name without the
	 * message). */
	TR_GLOBAL_UNREGISTER = 2,
};

/* Sent by the name server of the loser's node to a loser registered with
 * TR_GLOBAL_NOTIFY; its name is already gone when it arrives. */
#define TR_MSG_GLOBAL_CONFLICT 0xFFFF0050u

typedef struct tr_global_conflict {
	char name[TR_GLOBAL_NAME_MAX + 1]; /* the name it lost */
	tr_pid winner;                     /* who holds it now */
} tr_global_conflict;

/* Options of a registration. Versioned: fill with tr_global_opts_init. */
typedef struct tr_global_opts {
	uint32_t struct_size; /* sizeof(tr_global_opts), by the _init */
	int32_t method;       /* enum tr_global_method; default KILL */
} tr_global_opts;

#define TR_GLOBAL_OPTS_V1_SIZE TR_STRUCT_END(tr_global_opts, method)

static inline void tr_global_opts_init(tr_global_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->struct_size = (uint32_t)sizeof(*o);
}

/* Registers `name` for `pid` across the cluster and waits for the outcome
 * for at most `timeout_ms` (0..; a claim that is retried stops at it).
 * Blocking: from a plain thread only. `pid` may be of another node: the
 * request goes to its node's server (the owner), which runs the claim.
 * `opts` may be NULL (defaults). Errors: TR_EINVAL (NULL node or name, an
 * empty or longer than 255 bytes name, TR_PID_NONE, a negative timeout,
 * opts not initialised or with an unknown method, called from an actor),
 * TR_ENOPROC (the pid is not alive, or its node is not connected or goes
 * down first), TR_EEXIST (the name is held by another pid, or the pid has
 * another name), TR_ETIMEDOUT (no decision in time: nothing is held),
 * TR_ENOMEM (TR_GLOBAL_MAX_NAMES names), TR_ENOTSUP (opts from a newer
 * troupe), TR_ECLOSED (the node stops). Registering the name a pid already
 * holds is TR_OK. Thread-safe. */
TR_API int tr_global_register(tr_node *node, const char *name, tr_pid pid,
    const tr_global_opts *opts, int64_t timeout_ms);

/* tr_global_register for actors: the outcome comes as a continuation, as
 * for tr_call_then: `fn(ctx, state, status, reply, arg)` runs once in the
 * caller with `status` the outcome (TR_OK or the errors of
 * tr_global_register; `reply` is not to be read), after at most about
 * `timeout_ms`. `ref` (may be NULL) takes the call's reference for
 * tr_call_cancel. Errors (fn is never called): TR_EINVAL (as above, fn or
 * ctx NULL), TR_ENOTSUP (no node), TR_ENOMEM. */
TR_API int tr_global_register_then(tr_ctx *ctx, uint64_t *ref, const char *name,
    tr_pid pid, const tr_global_opts *opts, int64_t timeout_ms, tr_call_fn fn,
    void *arg);

/* Unregisters `name` across the cluster, without waiting: the request
 * goes to the name's owner, which drops it and tells every node. Any
 * thread, actors included. Errors: TR_EINVAL, TR_ENOENT (no such name
 * here now), TR_ECLOSED. A lookup just after may still see the name for
 * the time the owner takes to answer (a round trip). */
TR_API int tr_global_unregister(tr_node *node, const char *name);

/* The pid registered as `name`, from this node's copy of the table (no
 * message). Any thread. Errors: TR_EINVAL, TR_ENOENT. */
TR_API int tr_global_whereis(tr_pid *pid, tr_node *node, const char *name);

/* Sends a copy of `data` to the pid registered as `name` (global:send).
 * Errors: TR_ENOENT (no such name), others as tr_send. */
TR_API int tr_global_send(tr_ctx *ctx, const char *name, uint32_t type,
    const void *data, size_t size);

/* tr_global_send from a plain thread (as tr_post). */
TR_API int tr_global_post(tr_node *node, const char *name, uint32_t type,
    const void *data, size_t size);

/* One registered name. Versioned: fill the array's first entry with
 * tr_global_info_init. */
typedef struct tr_global_info {
	uint32_t struct_size;
	char name[TR_GLOBAL_NAME_MAX + 1];
	tr_pid pid;
	int64_t registered_ms; /* wall clock of its owner, ms */
} tr_global_info;

#define TR_GLOBAL_INFO_V1_SIZE TR_STRUCT_END(tr_global_info, registered_ms)

static inline void tr_global_info_init(tr_global_info *i)
{
	memset(i, 0, sizeof(*i));
	i->struct_size = (uint32_t)sizeof(*i);
}

/* global:registered_names(): fills out[0..cap-1] with the names this node
 * knows now, in no particular order, and sets *count to how many there
 * are (maybe more than cap). The stride of `out` is out[0].struct_size
 * (abi.md, "Arrays"). Any thread. Errors: TR_EINVAL (node or count NULL;
 * cap > 0 and out NULL or not initialised). */
TR_API int tr_global_names(
    tr_global_info *out, size_t cap, size_t *count, tr_node *node);

/* Counters of a node's name server. Versioned: tr_global_stats_init. */
typedef struct tr_global_stats {
	uint32_t struct_size;
	uint32_t names;          /* in the table now */
	uint64_t malformed;      /* messages from peers dropped: undecodable,
	                          * a bad name or pid, a field out of bounds */
	uint64_t names_refused;  /* synced names not taken: table full, or
	                          * past 512 in one message */
	uint64_t conflicts;      /* conflicts this node resolved against a
	                          * pid of its own */
	uint64_t claims_retried; /* claims withdrawn on a busy vote */
	uint64_t grants_expired; /* grants released after their bound */
} tr_global_stats;

#define TR_GLOBAL_STATS_V1_SIZE TR_STRUCT_END(tr_global_stats, grants_expired)

static inline void tr_global_stats_init(tr_global_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Errors: TR_EINVAL (NULL, struct_size below TR_GLOBAL_STATS_V1_SIZE). */
TR_API int tr_global_stats_get(tr_global_stats *st, tr_node *node);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_GLOBAL_H */
