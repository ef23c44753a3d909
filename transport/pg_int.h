/*
 * Process groups (troupe/pg.h): the structs their files share. One
 * concern per file:
 *
 *   pg.c         the public API and the scopes' lifecycle
 *   pg_table.c   a scope's table: groups, members, local pids, monitors
 *                and their events
 *   pg_server.c  the scope server: peers, syncs and updates on the wire,
 *                pids that exit, nodes that go down
 *
 * docs/pg.md is the design. A scope's table lock (a rwlock) is taken
 * after nothing of the node's and before nothing but the runtime's
 * mailbox pushes (tr__inject_msg): reads take it shared, joins, leaves,
 * monitors and the server's changes exclusive, and every message whose
 * order matters (events to monitors, changes for the server to send on)
 * is queued with it held, so that mailbox order is table order.
 */
#ifndef TR_PG_INT_H_
#define TR_PG_INT_H_

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ratelog.h"
#include "troupe/pg.h"

struct tr_node;

/* Node services' wire types for pg (proto/pg.proto). */
#define TR__PG_T_SYNC 0xFFFD0200u
#define TR__PG_T_UPDATE 0xFFFD0201u
/* Local: a change the server sends on (struct tr__pg_change), and a sync
 * it owes a peer (struct tr__pg_owed). System types: nobody else can
 * send them, and they never cross a node. */
#define TR__PG_T_CHANGE 0xFFFF0048u
#define TR__PG_T_OWED 0xFFFF0049u
/* Local-only: the server's own timer, a peer to sync with again (its
 * record's id) after a send to it was refused. Taken only from the
 * server itself. */
#define TR__PG_T_RESYNC 0xFFFE5047u
/* How long after a refused send the peer is synced again (and again,
 * while sends to it are refused). */
#define TR__PG_RESYNC_MS 10

/* Bytes of one Sync part, about; a larger table goes in several. */
#define TR__PG_SYNC_PART 65536u
/* Peers of a scope the server keeps track of. */
#define TR__PG_PEERS_MAX 4096u
/* What an unpacked peer message may take, per byte of it (and at least
 * 64 KiB). */
#define TR__PG_UNPACK_FACTOR 16u

struct tr__pg_mem {
	tr_pid pid;
	uint32_t count;
	uint32_t mark; /* remote: the sync epoch that last named it */
};

struct tr__pg_group {
	struct tr__pg_group *next; /* hash chain */
	uint32_t hash;
	struct tr__pg_mem *loc, *rem;
	uint32_t nloc, caploc, nrem, caprem;
	_Atomic uint32_t rr; /* round-robin cursor */
	uint16_t len;
	char name[TR_PG_NAME_MAX + 1];
};

/* A local pid with memberships, or watched by the server. */
struct tr__pg_lpid {
	struct tr__pg_lpid *next;
	tr_pid pid;
	uint64_t joins; /* over every group */
	uint64_t ref;   /* the server's monitor of it, or 0 */
};

struct tr__pg_sub {
	uint64_t ref;
	tr_pid to;
	bool all; /* the whole scope */
	char group[TR_PG_NAME_MAX + 1];
};

/* A peer of the scope, as its server knows it (server only). */
struct tr__pg_peer {
	char name[TR_NODE_NAME_MAX + 1];
	uint32_t node;    /* the `node` of its pids; 0: not heard from yet */
	uint32_t pending; /* syncs owed to it not sent yet */
	bool live;        /* a sync went to it: changes go too */
	bool resync;      /* a send to it was refused: a resync is armed */
	uint32_t epoch;   /* of its sync being received */
	uint64_t id;      /* this record, among the scope's (syncs owed) */
	uint64_t held;    /* memberships of it in the table */
};

struct tr__pg_scope {
	struct tr__pg_scope *next; /* immutable once published */
	struct tr_node *n;
	tr_runtime *rt;
	char name[TR_PG_NAME_MAX + 1];
	size_t len;
	char reg[TR_NAME_MAX + 1];
	tr_pid server;

	pthread_rwlock_t lock;
	struct tr__pg_group **gb; /* groups, by hash */
	uint32_t ngb, ngroups;
	struct tr__pg_lpid **pb; /* local pids, by pid */
	uint32_t npb, nlpids, ntracked;
	uint64_t nloc, nrem;
	struct tr__pg_sub *subs;
	uint32_t nsubs, capsubs;
	uint64_t next_ref;

	/* Server only. */
	struct tr__pg_peer *peers;
	uint32_t npeers, cappeers;
	uint64_t next_peer_id;
	_Atomic uint32_t npeers_pub; /* npeers, for tr_pg_stats */

	_Atomic uint64_t n_malformed, n_bounds;
	tr__ratelog log_bad, log_bound, log_flow;
};

/* What tr_node holds. */
struct tr__pg {
	pthread_mutex_t lock; /* starts */
	_Atomic(struct tr__pg_scope *) head;
	uint32_t nscopes;
};

/* A change of the local memberships, queued for the server to send on
 * (and to watch or forget the pids): `npids` pids (repeats: one per
 * join or leave), then the group's name. */
#define TR__PG_JOIN 0u
#define TR__PG_LEAVE 1u
#define TR__PG_LEAVE_ALL 2u /* every join of the pids (an exit) */
struct tr__pg_change {
	uint32_t leave;
	uint32_t npids;
	uint32_t len;
	uint32_t pad;
	tr_pid pids[];
};

/* ---- the table (pg_table.c); `lock` held as said --------------------------*/

bool tr__pg_name_ok(const char *s, size_t *len);
int tr__pg_table_init(struct tr__pg_scope *s);
void tr__pg_table_fini(struct tr__pg_scope *s);
/* Shared or exclusive. */
struct tr__pg_group *tr__pg_group_find(
    struct tr__pg_scope *s, const char *name, size_t len);
/* Exclusive: the group, made if there is none (NULL: a bound, or no
 * memory: *rc says which). */
struct tr__pg_group *tr__pg_group_get(
    struct tr__pg_scope *s, const char *name, size_t len, int *rc);
/* Exclusive: frees `g` if it has no members. */
void tr__pg_group_gc(struct tr__pg_scope *s, struct tr__pg_group *g);
/* Exclusive: one join of `pid` (remote: into the remote list). TR_OK,
 * TR_EAGAIN (a bound), TR_ENOMEM. *fresh: it was not a member. */
int tr__pg_mem_add(struct tr__pg_scope *s, struct tr__pg_group *g, tr_pid pid,
    bool remote, uint32_t mark);
/* Exclusive: `k` leaves of `pid` (UINT32_MAX: all); how many were
 * taken. */
uint32_t tr__pg_mem_del(struct tr__pg_scope *s, struct tr__pg_group *g,
    tr_pid pid, bool remote, uint32_t k);
/* Exclusive: a local pid's entry, made if `make`. */
struct tr__pg_lpid *tr__pg_lpid_get(
    struct tr__pg_scope *s, tr_pid pid, bool make);
void tr__pg_lpid_gc(struct tr__pg_scope *s, struct tr__pg_lpid *e);
/* Exclusive: events to the monitors of `g`'s name (and the scope's). */
void tr__pg_notify(struct tr__pg_scope *s, const char *group, bool leave,
    const tr_pid *pids, uint32_t n);
/* Exclusive: adds a monitor and sends it the current members. */
int tr__pg_sub_add(
    struct tr__pg_scope *s, tr_pid to, const char *group, uint64_t *ref);
int tr__pg_sub_del(struct tr__pg_scope *s, uint64_t ref);
/* Exclusive: queues a change for the server. */
int tr__pg_change_queue(struct tr__pg_scope *s, uint32_t op, const char *group,
    size_t len, const tr_pid *pids, uint32_t n);

/* ---- the server (pg_server.c) ---------------------------------------------*/

extern const tr_behaviour tr__pg_server_b;

/* ---- the scopes (pg.c) ----------------------------------------------------*/

struct tr__pg_scope *tr__pg_scope_find(struct tr_node *n, const char *scope);

#endif
