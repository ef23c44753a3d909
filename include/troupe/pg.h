/*
 * troupe process groups: OTP's pg in the node layer.
 *
 * A scope is a named set of groups, served on each node that takes part
 * in it by one scope server, an ordinary actor (Erlang's
 * pg:start_link(Scope)). Only nodes that run a scope take part in it: a
 * node that does not run "jobs" neither sees nor holds members of "jobs".
 * The default scope (scope NULL or "" in every call below) is
 * TR_PG_DEFAULT_SCOPE, started by tr_node_start and stopped by
 * tr_node_stop; other scopes start with tr_pg_scope_start and stop with
 * the node.
 *
 * A group is a name (1..TR_PG_NAME_MAX bytes) with members: pids, each
 * with a join count. A pid may join a group several times and then
 * leaves it only after as many leaves (as in pg); it is listed once
 * whatever its count. Only local pids join or leave (as in pg: a node
 * speaks for its own actors); an actor that exits leaves all its groups
 * at once, on every node, and so do the members of a node that goes
 * down (NODEDOWN, within the node's failure-detection bound).
 *
 * Guarantees (docs/pg.md has the details):
 *  - After tr_pg_join returns, tr_pg_members and tr_pg_local_members on
 *    this node include the pids; after tr_pg_leave returns, they do not
 *    (unless joined again). Reads are local: no message, no wait.
 *  - Other nodes learn of joins and leaves asynchronously, in the order
 *    they happened on the joining node (eventually consistent, as pg):
 *    while messages are in flight, nodes may disagree; once nothing
 *    changes and the pairs are connected, every node of the scope agrees.
 *    A pair that (re)connects exchanges its memberships (a sync), which
 *    replaces what each side held of the other.
 *  - A split hides the members of the other side (NODEDOWN); its heal
 *    brings them back (NODEUP, sync).
 *
 * Every call is thread-safe and non-blocking: actors and plain threads
 * alike may call any of them (those that take a tr_ctx only from an
 * actor). Errors common to all: TR_EINVAL (NULL arguments, a name of
 * length 0 or above TR_PG_NAME_MAX), TR_ENOENT (no such scope running on
 * this node; an empty or unknown group for the send helpers).
 */
#ifndef TROUPE_PG_H
#define TROUPE_PG_H

#include "troupe/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest scope or group name, in bytes, without the final NUL. */
#define TR_PG_NAME_MAX 255

/* The default scope's name (scope NULL or ""). */
#define TR_PG_DEFAULT_SCOPE "default"

/* Pids in one join or leave call, at most. */
#define TR_PG_JOIN_MAX 4096u

/* Bounds of one scope on one node (docs/pg.md, "Bounds"). Beyond them a
 * local join fails with TR_EAGAIN, and what a peer announces is refused,
 * counted (tr_pg_stats) and logged. */
#define TR_PG_GROUPS_MAX 65536u  /* groups in a scope */
#define TR_PG_MEMBERS_MAX 65536u /* distinct pids in one group */
#define TR_PG_PEER_MAX 262144u   /* memberships held for one peer */
#define TR_PG_MONITORS_MAX 4096u /* monitors of a scope */
#define TR_PG_SCOPES_MAX 64u     /* scopes running on a node */

/* Starts scope `scope` on `node` (Erlang's pg:start_link(Scope)): its
 * server is registered locally as "troupe.pg:" + scope (names longer than
 * 54 bytes as "troupe.pg#" + 16 hex digits of their 64-bit FNV-1a hash),
 * and meets the servers of the same scope on the nodes connected now and
 * later. Errors: TR_EINVAL, TR_EEXIST (running already, or its server's
 * name is taken), TR_EAGAIN (TR_PG_SCOPES_MAX running), TR_ENOMEM, and
 * the errors of tr_spawn. */
TR_API int tr_pg_scope_start(tr_node *node, const char *scope);

/* Joins the local pids[0..n-1] (1..TR_PG_JOIN_MAX of them, repeats
 * allowed: each counts as a join) to `group` (pg:join). The group exists
 * while it has members. A pid that is not alive joins and is removed as
 * soon as the scope server sees it is dead. Errors: TR_EINVAL (a pid of
 * another node or TR_PID_NONE: nothing joins), TR_EAGAIN (a bound of the
 * scope: nothing joins), TR_ENOMEM, TR_ENOENT (no such scope). */
TR_API int tr_pg_join(tr_node *node, const char *scope, const char *group,
    const tr_pid *pids, size_t n);

/* Leaves `group` once for each of pids[0..n-1] (pg:leave). Pids that are
 * not members are skipped. Errors: TR_EINVAL (as for join), TR_ENOENT (no
 * such scope, or none of the pids was a member). */
TR_API int tr_pg_leave(tr_node *node, const char *scope, const char *group,
    const tr_pid *pids, size_t n);

/* Fills out[0..cap-1] with the members of `group` on every node of the
 * scope (pg:get_members), local ones first, each pid once, and sets
 * *count to how many there are (which may exceed cap; out may be NULL
 * when cap is 0). An unknown group has 0 members (TR_OK). */
TR_API int tr_pg_members(tr_pid *out, size_t cap, size_t *count, tr_node *node,
    const char *scope, const char *group);

/* The same, for the members on this node only (pg:get_local_members). */
TR_API int tr_pg_local_members(tr_pid *out, size_t cap, size_t *count,
    tr_node *node, const char *scope, const char *group);

/* A group's name, as tr_pg_which_groups returns it. */
typedef struct tr_pg_group_name {
	char name[TR_PG_NAME_MAX + 1];
} tr_pg_group_name;

/* Fills out[0..cap-1] with the groups of the scope that have members
 * (pg:which_groups), in no particular order; *count as for
 * tr_pg_members. */
TR_API int tr_pg_which_groups(tr_pg_group_name *out, size_t cap, size_t *count,
    tr_node *node, const char *scope);

/* ---- monitors (pg:monitor, pg:monitor_scope) ---------------------------- */

/* Delivered to a monitor: pids joined or left a group. The message's
 * `ref` is the monitor's reference, its payload a tr_pg_event. */
#define TR_MSG_PG_JOIN 0xFFFF0040u
#define TR_MSG_PG_LEAVE 0xFFFF0041u

#define TR_PG_EVENT_V1 1u

/* The payload of TR_MSG_PG_JOIN / TR_MSG_PG_LEAVE: a struct of this
 * process (pids as this node names them), version TR_PG_EVENT_V1, whose
 * size is TR_PG_EVENT_SIZE(npids); a later version only adds fields
 * after `pids` and raises `version`. A JOIN lists the pids of one join
 * (a pid twice if it joined twice in one call); a LEAVE the pids of one
 * leave, or every pid that left at once (an exit, a node down, a sync),
 * each once. */
typedef struct tr_pg_event {
	uint32_t version;
	uint32_t npids;
	char scope[TR_PG_NAME_MAX + 1];
	char group[TR_PG_NAME_MAX + 1];
	tr_pid pids[];
} tr_pg_event;

#define TR_PG_EVENT_SIZE(npids)                                                \
	(offsetof(tr_pg_event, pids) + (size_t)(npids) * sizeof(tr_pid))

/* Subscribes the running actor to the joins and leaves of `group`, or of
 * every group of the scope when `group` is NULL, local and remote alike.
 * No race with the current state: the members there are now arrive
 * first, as TR_MSG_PG_JOIN messages (one per group that has members,
 * local ones and remote ones in one list), before any later change. The
 * monitor's reference goes to *ref. It ends with tr_pg_demonitor, or when
 * the subscriber is found dead. Errors: TR_EINVAL, TR_ENOENT (no such
 * scope), TR_EAGAIN (TR_PG_MONITORS_MAX), TR_ENOMEM. */
TR_API int tr_pg_monitor(
    tr_ctx *ctx, uint64_t *ref, const char *scope, const char *group);

/* The same for a plain thread: the messages go to `port`. */
TR_API int tr_pg_monitor_port(tr_node *node, tr_port *port, uint64_t *ref,
    const char *scope, const char *group);

/* Ends a monitor. After it returns, no further event of it is sent
 * (events sent already stay in the mailbox). Errors: TR_EINVAL, TR_ENOENT
 * (no such scope or monitor). */
TR_API int tr_pg_demonitor(tr_node *node, const char *scope, uint64_t ref);

/* ---- dispatch ------------------------------------------------------------ */

/* Modes of tr_pg_send_one: how a member is chosen. */
#define TR_PG_RANDOM 0u      /* uniformly at random */
#define TR_PG_ROUND_ROBIN 1u /* in turn (a cursor per group and node) */
/* A flag to or into the mode: choose among all members. By default a
 * member on this node is chosen whenever the group has one (no network
 * hop), and a remote one only when it has none. */
#define TR_PG_ANY_NODE 0x100u

/* Sends a copy of data[0..size) with tag `type` to every member of
 * `group` (each pid once), local and remote, from the running actor, and
 * sets *sent (may be NULL) to how many sends succeeded. The members are
 * those of the moment of the call. Errors: TR_ENOENT (no members, or no
 * such scope), TR_EINVAL (a reserved type, data NULL with size > 0), the
 * errors of tr_send when no send succeeded (the first one's). */
TR_API int tr_pg_send_all(tr_ctx *ctx, const char *scope, const char *group,
    uint32_t type, const void *data, size_t size, size_t *sent);

/* Sends to one member chosen by `mode` (above); its pid goes to *chosen
 * (may be NULL). Errors: TR_ENOENT (no members, no such scope),
 * TR_EINVAL (an unknown mode), and those of tr_send. */
TR_API int tr_pg_send_one(tr_ctx *ctx, const char *scope, const char *group,
    unsigned mode, uint32_t type, const void *data, size_t size,
    tr_pid *chosen);

/* tr_pg_send_all and tr_pg_send_one from a plain thread (as tr_post). */
TR_API int tr_pg_post_all(tr_node *node, const char *scope, const char *group,
    uint32_t type, const void *data, size_t size, size_t *sent);
TR_API int tr_pg_post_one(tr_node *node, const char *scope, const char *group,
    unsigned mode, uint32_t type, const void *data, size_t size,
    tr_pid *chosen);

/* ---- counters -------------------------------------------------------------*/

/* The state of one scope on this node, and what it refused. Versioned:
 * tr_pg_stats_init before each get. */
typedef struct tr_pg_stats {
	uint32_t struct_size;
	uint32_t groups;            /* groups with members */
	uint64_t local_members;     /* (group, pid) entries of local pids */
	uint64_t remote_members;    /* of pids of other nodes */
	uint32_t peers;             /* nodes of the scope heard from */
	uint32_t monitors;          /* monitors of the scope */
	uint32_t tracked;           /* local pids the server watches */
	uint64_t refused_malformed; /* peer messages that did not decode, or
	                             * named pids not of their sender */
	uint64_t refused_bounds;    /* memberships refused on a bound */
} tr_pg_stats;

#define TR_PG_STATS_V1_SIZE TR_STRUCT_END(tr_pg_stats, refused_bounds)

static inline void tr_pg_stats_init(tr_pg_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills what fits in st->struct_size. Errors: TR_EINVAL (struct_size
 * below TR_PG_STATS_V1_SIZE), TR_ENOENT (no such scope). */
TR_API int tr_pg_stats_get(tr_pg_stats *st, tr_node *node, const char *scope);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_PG_H */
