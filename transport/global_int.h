/*
 * Cluster-wide names (include/troupe/global.h): what the files of the
 * name server share. One concern per file:
 *
 *   global.c         the public API: requests to the server, lookups
 *   global_table.c   the table of names (by name and by pid), under a
 *                    rwlock: the server writes, any thread reads
 *   global_server.c  the server actor: its lifecycle, node events, sync,
 *                    conflicts, removal, the messages of its peers
 *   global_claim.c   registration: claims, votes, grants, forwarded
 *                    requests, their deadlines
 *
 * docs/global.md is the design. Everything but the table and the
 * counters belongs to the server actor alone (its state, one thread at a
 * time): no lock.
 */
#ifndef TR_GLOBAL_INT_H_
#define TR_GLOBAL_INT_H_

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "global.pb-c.h"
#include "node_int.h"
#include "ratelog.h"
#include "troupe/global.h"

typedef Troupe__Global__Msg GMsg;
typedef Troupe__Global__Entry GEntry;

/* Types of the servers' messages to each other (docs/global.md): the
 * range 0xFFFD0100..0xFFFD01FF is reserved for them. */
#define TR__GLOBAL_T_BASE 0xFFFD0100u
enum {
	TR__GLOBAL_T_SYNC = TR__GLOBAL_T_BASE + 1,
	TR__GLOBAL_T_CLAIM,
	TR__GLOBAL_T_VOTE,
	TR__GLOBAL_T_COMMIT,
	TR__GLOBAL_T_ABORT,
	TR__GLOBAL_T_REMOVE,
	TR__GLOBAL_T_FWD_REG,
	TR__GLOBAL_T_FWD_REPLY,
	TR__GLOBAL_T_FWD_UNREG,
	TR__GLOBAL_T_LAST = TR__GLOBAL_T_FWD_UNREG,
};

/* Local requests to the server (local-only types, never on the wire):
 * 0xFFFE4700..0xFFFE47FF is reserved for them. */
#define TR__GLOBAL_L_BASE 0xFFFE4700u
enum {
	TR__GLOBAL_L_REG = TR__GLOBAL_L_BASE + 1, /* struct tr__greq */
	TR__GLOBAL_L_UNREG,                       /* struct tr__greq */
	TR__GLOBAL_L_TICK,                        /* the server's timer */
	TR__GLOBAL_L_REG_OK,                      /* a reply: registered */
};

enum { TR__GVOTE_YES = 0, TR__GVOTE_NO = 1, TR__GVOTE_BUSY = 2 };

/* Bounds on what peers send and on what the server keeps. */
#define TR__GLOBAL_SYNC_MAX 512u    /* entries in one SYNC */
#define TR__GLOBAL_GRANTS_MAX 4096u /* grants held at once */
#define TR__GLOBAL_CLAIMS_MAX 4096u /* claims and forwards in progress */
#define TR__GLOBAL_MSG_BUDGET(size) (16u * (size_t)(size) + 4096u)
#define TR__GLOBAL_TICK_MS 5 /* the timer, while anything waits */
/* Slack of a caller's wait over the server's deadline, so that the
 * server's answer (TR_ETIMEDOUT included) comes first. */
#define TR__GLOBAL_SLACK_MS 1000

struct tr__greq {
	tr_pid pid;
	int32_t method;
	int64_t timeout_ms;
	char name[TR_GLOBAL_NAME_MAX + 1];
};

/* ---- the table ------------------------------------------------------------
 */

struct tr__gentry {
	struct tr__gentry *next;  /* chain by name */
	struct tr__gentry *pnext; /* chain by pid */
	uint32_t hash;            /* of name */
	uint32_t len;             /* of name */
	char *owner;              /* the pid's node's name */
	tr_pid pid;
	int64_t at_ms;
	int32_t method;
	bool local; /* owned here: monitored under mref */
	uint64_t mref;
	char name[]; /* in the same allocation: one miss less per lookup */
};

struct tr__gtable {
	pthread_rwlock_t lock;
	struct tr__gentry **byname, **bypid;
	uint32_t nb; /* buckets of each, a power of two */
	_Atomic uint32_t n;
};

int tr__gtab_init(struct tr__gtable *t);
void tr__gtab_fini(struct tr__gtable *t);
/* Readers: under the read lock (any thread) or from the server (the only
 * writer). */
struct tr__gentry *tr__gtab_find(struct tr__gtable *t, const char *name);
struct tr__gentry *tr__gtab_find_pid(struct tr__gtable *t, tr_pid pid);
/* The server: a new entry (copies name and owner) under the write lock.
 * NULL: TR_GLOBAL_MAX_NAMES reached, or no memory. */
struct tr__gentry *tr__gtab_put(struct tr__gtable *t, const char *name,
    const char *owner, tr_pid pid, int64_t at_ms, int32_t method);
/* The server: unlinks and frees `e` under the write lock. */
void tr__gtab_del(struct tr__gtable *t, struct tr__gentry *e);
/* The server: calls fn for each entry (fn may delete the one it is given). */
void tr__gtab_each(struct tr__gtable *t,
    void (*fn)(struct tr__gentry *e, void *arg), void *arg);

/* ---- the server -----------------------------------------------------------
 */

/* A vote the server awaits from a peer, and a grant it gave. */
struct tr__gclaim {
	struct tr__gclaim *next;
	uint64_t id; /* this attempt's; a new one per attempt */
	char name[TR_GLOBAL_NAME_MAX + 1];
	tr_pid pid;
	int32_t method;
	int64_t at_ms;
	int64_t deadline; /* monotonic ms */
	bool voting;      /* else waiting for next_try */
	int64_t next_try;
	uint32_t attempt;
	char **wait; /* peers whose vote is awaited */
	uint32_t nwait;
	/* Who asked: a local caller (reply to `caller` under `ref`), or a
	 * peer's server (fwd_node, fwd_id). */
	tr_pid caller;
	uint64_t ref;
	char *fwd_node;
	uint64_t fwd_id;
};

struct tr__ggrant {
	struct tr__ggrant *next;
	char *name;
	char *claimer; /* node name; this node's own for its own claims */
	uint64_t claim;
	int64_t since;
};

/* A registration forwarded to the pid's owner, awaiting FWD_REPLY. */
struct tr__gfwd {
	struct tr__gfwd *next;
	uint64_t id;
	char *node;
	tr_pid caller;
	uint64_t ref;
	int64_t deadline;
};

struct tr__global {
	struct tr_node *n;
	tr_pid server;
	struct tr__gtable tab;
	_Atomic uint64_t n_malformed, n_refused, n_conflicts, n_retried,
	    n_expired;
	tr__ratelog log_bad, log_refused, log_send;
	/* The server's own (no lock). */
	tr_ctx *ctx;  /* during a turn */
	char **peers; /* nodes up now */
	uint32_t npeers, cap_peers;
	struct tr__gclaim *claims;
	struct tr__ggrant *grants;
	struct tr__gfwd *fwds;
	uint32_t nclaims, ngrants, nfwds;
	uint64_t next_id;
	uint64_t rng;
	bool tick_armed;
	int64_t grant_ms; /* a grant's bound */
};

int tr__global_start(struct tr_node *n);
void tr__global_stop(struct tr_node *n);

/* global_server.c, for global_claim.c. */
/* Packs and sends `m` as `type` to the server of node `peer`. */
int tr__gsend(
    struct tr__global *g, const char *peer, uint32_t type, const GMsg *m);
/* Fills `e` (and the caller's buffer `pidbuf`, TR_PID_ENCODED_MAX bytes)
 * from a table entry. */
void tr__gentry_out(struct tr__global *g, const struct tr__gentry *x, GEntry *e,
    uint8_t *pidbuf);
/* A peer's entry, checked: a name of 1..255 bytes, a pid of `peer`. */
bool tr__gentry_in(
    struct tr__global *g, const char *peer, const GEntry *e, tr_pid *pid);
void tr__gbad(struct tr__global *g, const char *peer, const char *what);
bool tr__gname_ok(const char *s);
/* Makes `e` an entry of the table as `owner` has it (sync, commit):
 * inserts, keeps, or resolves a conflict. */
void tr__gapply(struct tr__global *g, const char *owner, const char *name,
    tr_pid pid, int64_t at_ms, int32_t method);
/* The table: a local entry is held (monitored) or dropped (and every peer
 * told). */
int tr__glocal_put(struct tr__global *g, const char *name, tr_pid pid,
    int64_t at_ms, int32_t method);
void tr__glocal_drop(struct tr__global *g, struct tr__gentry *e);
void tr__gtick_arm(struct tr__global *g);
int64_t tr__gwall_ms(void);

/* global_claim.c */
void tr__gclaim_start(struct tr__global *g, const char *name, tr_pid pid,
    int32_t method, int64_t timeout_ms, tr_pid caller, uint64_t ref,
    const char *fwd_node, uint64_t fwd_id);
void tr__gclaim_in(
    struct tr__global *g, const char *peer, uint32_t type, const GMsg *m);
void tr__gclaim_fwd(struct tr__global *g, const struct tr__greq *rq,
    tr_pid caller, uint64_t ref);
void tr__gclaim_fwd_reply(
    struct tr__global *g, const char *peer, const GMsg *m);
void tr__gclaim_nodedown(struct tr__global *g, const char *peer);
/* Deadlines, retries, grants past their bound. Returns whether anything
 * still waits (the timer stays armed). */
bool tr__gclaim_tick(struct tr__global *g, int64_t now);
void tr__gclaim_fini(struct tr__global *g);
/* Whether a grant or a claim of this node holds `name` now. */
bool tr__gclaim_busy(struct tr__global *g, const char *name);

#endif
