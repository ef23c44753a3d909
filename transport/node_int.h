/*
 * The node's own structs and the functions its files share. One concern
 * per file:
 *
 *   node.c       the public API (node.h) and the node's lifecycle
 *   node_peer.c  the peer table: entries, indices with generations, their
 *                lifetime (node_ebr), pids on the wire, crossing links
 *                and monitors
 *   node_out.c   sending: batches, runs, the queue of frames, flushing,
 *                the runtime's distribution hook
 *   node_rx.c    receiving: frames of a pair into mailboxes and signals
 *   node_hs.c    connections and handshakes: the glue between sp.h's
 *                connections and the handshake machine (hs.c)
 *   node_tick.c  the control thread: heartbeats, failure detection,
 *                teardown of lost pairs, reclamation
 *   node_flow.c  receive-side flow control (BUSY / READY)
 *   node_mesh.c  clusters: members to dial (seeds, gossip, lost peers),
 *                their backoff, membership gossip (CONTROL_MEMBERS)
 *   node_dns.c   DNS discovery (troupe/dns.h), TROUPE_DNS
 *   node_ready.c the application's readiness (tr_node_set_ready), which
 *                the observer reports
 *   pg*.c        process groups (pg_int.h)
 *   sp*.c        the connections under it: push0/pull0 over nng streams
 *                (sp.h; its files are listed in sp_int.h and sp_in_int.h)
 *
 * docs/distribution.md is the design. Lock order: the node lock before a
 * peer lock; nothing is called with a peer lock held that takes the node
 * lock.
 */
#ifndef TR_NODE_INT_H_
#define TR_NODE_INT_H_

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "client.h"
#include "dist.h"
#include "hs.h"
#include "node.h"
#include "ratelog.h"
#include "sp.h"
#include "troupe.pb-c.h"
#include "troupe/node.h"
#include "troupe/observer.h"

typedef Troupe__Wire__Envelope Env;
typedef Troupe__Wire__Pid WPid;

#define TR__NODE_DEFAULT_TICK_MS 1000u
#define TR__NODE_DEFAULT_QUEUE (16u * 1024u * 1024u)
#define TR__NODE_DEFAULT_ACTOR_MAX (16u * 1024u * 1024u)
#define TR__NODE_DEFAULT_RECV_MAX (256u * 1024u * 1024u)

/* ---- the peer table ------------------------------------------------------ */

/* A pid's `node` field: the entry's index in the low 16 bits and its
 * generation in the high 16. Index 0 is this node; index 0xffff is never
 * used, so TR__NODE_STALE (pids of an earlier incarnation of ours) never
 * names an entry. */
#define TR__PEER_SLOTS 65536u
#define TR__NODE_STALE 0xffffffffu
#define TR__PEER_IDX(node) ((node)&0xffffu)
#define TR__PEER_GEN(node) ((node) >> 16)

/* Entries of nodes that are not connected (known from pids of third nodes,
 * or down) kept at most; beyond it the oldest are forgotten and their
 * pids go stale. */
#define TR__PEER_IDLE_MAX 4096u

enum {
	TR__PS_KNOWN, /* named by a pid we were given; never connected */
	TR__PS_WAIT,  /* committed; waits for the pair it replaces to go */
	TR__PS_UP,    /* connected and authenticated both ways */
	TR__PS_DOWN,  /* was up; lost */
};

struct tr__xlink {
	tr_pid loc, rem;
};

/* A monitor across a peer. `mine`: the local actor `loc` watches the
 * remote `rem`; otherwise the remote `rem` watches the local `loc`. Refs
 * are only unique per node, so the direction is part of the key. */
struct tr__xmon {
	uint64_t ref;
	tr_pid loc, rem;
	bool mine;
};

/* A name lookup (CONTROL_NAMED_SEND of TR__NODE_T_WHEREIS) awaiting its
 * answer from the peer: the local `loc` that asked, under `ref`. If the
 * pair goes down first, teardown answers it TR_ENOPROC at once, as a
 * gen_server:call by {Name, Node} fails at once on nodedown. At most
 * TR__PEER_ASKS_MAX per pair; past that a lookup goes unrecorded and a
 * lost pair leaves it to its timeout. */
struct tr__xask {
	uint64_t ref;
	tr_pid loc;
};
#define TR__PEER_ASKS_MAX 4096u

/* A frame that came on a pair's connection before the pair could take
 * it (TR__PS_WAIT): replayed once it is up. */
struct tr__held {
	struct tr__held *next;
	size_t len;
	uint8_t buf[];
};

/* One entry of the table: a node (name, incarnation) and, while it is
 * connected, the pair of connections to it. */
struct tr__peer {
	struct tr__peer *next;  /* the node's list of entries */
	struct tr__peer *rnext; /* reap, wait or retire lists */
	struct tr__peer *dnext; /* the node's dirty list (node_out.c) */
	uint32_t idx, gen;
	uint32_t id; /* idx | gen << 16: the `node` of its pids */
	bool linked; /* in the node's list and the table */
	char name[TR_NODE_NAME_MAX + 1];
	uint64_t inc;
	int64_t since_ms;         /* created, or up since */
	bool was_up;              /* NODEDOWN is owed at teardown */
	bool reaping;             /* down, and its teardown has not finished */
	const char *down_why;     /* why it went down (a static string) */
	struct tr__peer *wait_on; /* TR__PS_WAIT: the pair it replaces */
	uint8_t *ack;             /* TR__PS_WAIT: the Ack to send once up */
	size_t acklen;
	uint32_t hs_id; /* the handshake that committed the pair */
	uint32_t minor;
	char **listen; /* where it listens (from its Hello) */
	size_t nlisten;
	char **aliases; /* other URLs that reached it */
	size_t naliases;
	uint32_t inp; /* its connection to us (a tr__sp_in id); 0: none */
	/* Our connection to it. Teardown frees it only once the send slot
	 * is free for good (see tr__slot_release_locked and teardown). */
	tr__sp_out *out;
	nng_tls_config *tls;
	struct tr__held *held, **held_tail;
	size_t nheld;
	_Atomic int64_t last_rx;
	/* 1 from the put that pushes it on the node's dirty list until the
	 * flush that takes it off clears it (node_out.c, "The dirty list"). */
	_Atomic uint32_t dirty;
	/* Retired, and seen off the dirty list for good: freed after one more
	 * grace period (tr__peer_reclaim; node lock). */
	bool unlisted;
	/* Traffic, for tr_node_list and the observer: messages and bytes of
	 * the batches queued to it (counted under the peer lock) and of those
	 * received from it, and its messages refused here. Relaxed: counters. */
	_Atomic uint64_t tx_msgs, tx_bytes, rx_msgs, rx_bytes, rx_refused;

	/* Peer lock: the state, the open batch, the queue of frames and the
	 * links and monitors that cross this peer. Taken by every send to
	 * the peer for as long as it takes to encode one envelope: the one
	 * lock on the remote send path (nng takes several per frame). */
	pthread_mutex_t lock;
	int state;
	nng_msg *batch;
	uint32_t nenv;       /* messages in it */
	uint32_t batch_hint; /* bytes of the last batch: the next one's
	                      * first reservation */
	/* The open run: the batch's last envelope, which further messages
	 * with the same key join as entries of its `more` field. run_off is
	 * where its tag starts in the batch, run_len its body's length. */
	bool run_open;
	uint32_t run_off, run_len;
	tr_pid run_to, run_from;
	uint32_t run_type;
	bool run_named;
	char run_name[TR_NAME_MAX + 1];
	nng_msg **q;
	uint32_t qhead, qn, qcap;
	size_t queued; /* bytes in q and in flight */
	size_t inflight;
	bool busy; /* the send slot: a frame is between kick and nng */
	pthread_cond_t idle; /* `busy` fell on a peer that is down */
	struct tr__xlink *links;
	uint32_t nlinks, cap_links;
	struct tr__xmon *mons;
	uint32_t nmons, cap_mons;
	struct tr__xask *asks;
	uint32_t nasks, cap_asks;
	/* Flow control, sending side (node_flow.c; peer lock): targets on
	 * this peer that told us BUSY, until READY. */
	struct tr__busy *busy_to;
	uint32_t nbusy, cap_busy;
	/* Flow control, receiving side (node_flow.c; flow lock): messages
	 * from this peer held back for local actors over their backlog, per
	 * target, in arrival order. Lock order: peer lock, then flow. */
	pthread_mutex_t flow;
	struct tr__park *parks;
	_Atomic uint32_t nparks;
	_Atomic size_t parked; /* bytes in parks; written under flow */
	bool paused;   /* its connection: node lock */
};

/* A target that said BUSY; `name` is "" unless it was reached by name. */
struct tr__busy {
	tr_pid pid;
	char name[TR_NAME_MAX + 1];
};

/* The messages held back for one local actor, in arrival order. */
struct tr__park {
	struct tr__park *next;
	tr_pid to;
	char name[TR_NAME_MAX + 1]; /* the name used, if any (for BUSY) */
	tr_msg *head, *tail;        /* chained through _next */
	size_t bytes;
};

/* The node's epoch-based reclamation of entries: every thread that may
 * hold an entry pointer outside the node lock does so inside a section;
 * the control thread frees an entry unlinked in one epoch once no section
 * of that epoch is left. */
struct tr__node_ebr {
	_Atomic uint32_t epoch;
	_Atomic uint32_t active[2];
};

unsigned tr__node_ebr_enter(struct tr__node_ebr *e);
void tr__node_ebr_exit(struct tr__node_ebr *e, unsigned k);

/* ---- handshakes in progress (node_hs.c) ---------------------------------- */

/* The connections of a handshake that is not committed: its outbound
 * connection (our dial, or our dial-back) and what it was opened for. */
struct tr__hsconn {
	uint32_t id;
	tr__sp_out *out;
	nng_tls_config *tls;
};

/* A tr_node_connect waiting for its handshake. */
struct tr__waiter {
	struct tr__waiter *next;
	uint32_t id;
	const char *url;
	bool done;
	int rc;
	bool alias;
	char name[TR_NODE_NAME_MAX + 1];
};

/* An outbound connection to close once what was queued on it had time to
 * go (a HelloReject, say). */
struct tr__linger {
	struct tr__linger *next;
	int64_t at_ms;
	tr__sp_out *out;
	nng_tls_config *tls;
};

/* ---- clusters (node_mesh.c) ---------------------------------------------- */

/* Members known at once (seed URLs, nodes learnt from gossip, lost peers
 * to redial); past it, gossiped nodes are refused and counted. */
#define TR__MESH_MAX 1024u
/* Entries taken from one CONTROL_MEMBERS; the rest are refused. */
#define TR__MESH_GOSSIP_MAX 128u
/* URLs kept per member, and their longest. */
#define TR__MESH_URLS 4u
#define TR__MESH_URL_MAX TR_NODE_URL_MAX
/* Redial backoff: doubling from MIN to MAX, each wait jittered to
 * [half, all] of it. */
#define TR__MESH_BACKOFF_MIN_MS 100u
#define TR__MESH_BACKOFF_MAX_MS 5000u
/* A dial the node started itself is given up after this long. */
#define TR__MESH_DIAL_MS 3000
/* A member that is not a seed and has not been connected for this long
 * is forgotten (a node that stopped for good). */
#define TR__MESH_FORGET_MS 60000
#define TR__MESH_RESOLVE_MS 5000u

/* A node this node wants to be connected to. */
struct tr__member {
	char name[TR_NODE_NAME_MAX + 1]; /* "" for a seed never reached */
	char *urls[TR__MESH_URLS];
	uint32_t nurls;
	uint32_t next_url; /* the URL of the next dial (round robin) */
	bool seed;         /* from a seed source: never forgotten */
	bool up;           /* a pair with `name` is up */
	int64_t next_ms;   /* no dial before */
	uint32_t backoff_ms;
	int64_t lost_ms;   /* not up since (for TR__MESH_FORGET_MS) */
	uint32_t dial;     /* the handshake of our dial in progress, or 0 */
	int64_t dial_end;  /* when that dial is given up */
};

/* The node's members. Node lock, but for the seed sources' fields, which
 * only the control thread reads. */
struct tr__mesh {
	bool connect_all, reconnect;
	struct tr__member *v;
	uint32_t n, cap;
	bool gossip_due; /* a pair came up: tell every peer */
	uint32_t rng;
	_Atomic uint64_t n_refused, n_dials;
	tr__ratelog log_refused, log_src;
	/* Seed sources: the static list (opts or TROUPE_SEEDS), and the
	 * caller's. */
	char **seeds;
	size_t nseeds;
	const tr_node_seed_source *src;
	void *src_user;
	int64_t next_resolve, next_src;
	struct tr_node_dns *dns; /* made from TROUPE_DNS, owned here */
};

/* TROUPE_DNS (node_dns.c): a DNS source for a node given none; *d is
 * NULL when the variable is not set. Errors: as tr_node_dns_parse and
 * tr_node_dns_alloc. */
int tr__node_dns_env(struct tr_node_dns **d, tr_runtime *rt);

/* ---- the node ------------------------------------------------------------ */

struct tr__nmon {
	tr_pid pid;
	char *name; /* NULL: every node */
};

struct tr__pipe {
	uint32_t id;
	struct tr__peer *p;
};

/* The application's readiness (node_ready.c; troupe/observer.h,
 * tr_node_set_ready). `ready` is read without the lock (the gauge); the
 * lock keeps it and `why` together for a reader that wants both. */
struct tr__node_ready {
	pthread_mutex_t lock; /* held only to copy `why` */
	_Atomic bool ready;
	char why[TR_NODE_READY_WHY_MAX + 1];
};

void tr__node_ready_init(struct tr__node_ready *r);
void tr__node_ready_fini(struct tr__node_ready *r);
/* Whether the node's application says it is ready; when `why` is not
 * NULL, what it says is missing is copied there (cap bytes, cut; "" when
 * ready), consistent with the answer. */
bool tr__node_ready(struct tr_node *n, char *why, size_t cap);

struct tr_node {
	tr_runtime *rt;
	char name[TR_NODE_NAME_MAX + 1];
	uint64_t inc;
	uint8_t hs_key[TR__HS_KEY_LEN];
	uint32_t tick_ms;
	size_t max_frame, max_queue;
	size_t max_msg; /* the runtime's payload limit (tr__dist_max_msg) */
	char **urls;
	size_t nurls;
	char *tls_ca, *tls_cert, *tls_key; /* PEM text */
	nng_tls_config *tls_srv;
	tr__sp_in *in; /* our pull0 listeners and their connections */
	tr__client *client;
	struct tr__observer *observer; /* observer_url's endpoint, or NULL */
	struct tr__node_ready ready;
	struct tr__node_ebr ebr;

	/* The table: pointers published with release, read with acquire. */
	_Atomic(struct tr__peer *) *table;
	/* Peers whose open batch awaits the flush at the end of a turn: a
	 * stack linked through dnext, pushed by puts, taken whole by
	 * tr__flush_all (node_out.c, "The dirty list"). */
	_Atomic(struct tr__peer *) dirty;
	_Atomic uint64_t n_unauth, n_bad, n_refused, n_local;
	_Atomic uint64_t n_hs_refused[TR__HS_R_NCAUSES];
	tr__ratelog log_unauth, log_bad, log_local, log_flow, log_conns;
	uint64_t seen_deadline, seen_cap; /* control thread: logged so far */
	tr__ratelog log_hs[TR__HS_R_NCAUSES];
	/* The peer of the last named send: a stream of named sends to one
	 * node then skips the node lock and the walk of the entries. Cleared
	 * before its entry is retired; read inside an ebr section. */
	_Atomic(struct tr__peer *) named_peer;

	/* Node lock: the entries, the pipe map, handshakes, node monitors
	 * and behaviours. Taken once per received frame (to find the pipe's
	 * peer), on handshakes, node up/down and name lookups; never per
	 * message sent. */
	pthread_mutex_t lock;
	pthread_cond_t
	    cv; /* the control thread's wake-up and connect waiters */
	bool stopping;
	uint16_t *gens; /* generation of each index, bumped when freed */
	uint32_t *free_idx;
	uint32_t nfree_idx;
	uint32_t next_idx;
	struct tr__peer *peers; /* every entry in the table */
	uint32_t nidle;         /* entries KNOWN or DOWN */
	struct tr__peer *reap;  /* lost pairs the control thread tears down */
	struct tr__peer *wait;  /* committed pairs that wait for a teardown */
	struct tr__peer *retire[2]; /* unlinked, by ebr epoch */
	struct tr__pipe *pipes;
	uint32_t npipes, cap_pipes;
	tr__hs *hs;
	struct tr__hsconn *hsc;
	uint32_t nhsc, cap_hsc;
	struct tr__waiter *waiters;
	struct tr__linger *linger;
	/* Flow control (node_flow.c). */
	uint32_t recv_actor_max;
	size_t recv_max, park_max;
	_Atomic uint64_t parked_total;
	_Atomic uint64_t n_busy_sent, n_busy_refused, n_pauses;
	bool global_paused; /* node lock */
	tr_pid *drained;    /* actors that drained: node lock */
	uint32_t ndrained, cap_drained;
	struct tr__nmon *nmons;
	uint32_t nnmons, cap_nmons;
	struct tr__mesh mesh;
	pthread_t ticker;
	bool ticker_started;
	struct tr__pg *pg; /* process groups (pg_int.h) */
	struct tr__global *global; /* cluster-wide names (global_int.h) */
	struct tr__procs *procs; /* process children (proc_int.h) */
};

/* Cluster-wide names (global_server.c): the name server, started once
 * the node is up and stopped before its connections close. */
struct tr__global;
int tr__global_start(struct tr_node *n);
void tr__global_stop(struct tr_node *n);

/* ---- shared helpers (node.c) ----------------------------------------------
 */

int64_t tr__node_now_ms(void);
/* Waits until the local actor `pid` (a node service's server, killed by
 * the caller) has exited, at most `max_ms`: sleeps of 10 us doubling to
 * 10 ms, since a killed actor is usually gone within microseconds and a
 * node that starts and stops often should not pay milliseconds. False
 * when it is still alive (a runtime that no longer runs actors). */
bool tr__node_wait_exit(struct tr_node *n, tr_pid pid, int64_t max_ms);
/* The handshake key of a cookie (keys by purpose: the client endpoint
 * signs with another). */
int tr__node_hs_key(uint8_t out[TR__HS_KEY_LEN], const char *cookie);
void tr__node_logf(struct tr_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* tr__node_logf at `level` (tr__node_logf's is TR_LOG_WARNING). */
void tr__node_logf_at(struct tr_node *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool tr__node_grow(void **v, uint32_t n, uint32_t *cap, size_t elem);
bool tr__node_name_ok(const char *s);
/* Node lock held: NODEUP / NODEDOWN to the node monitors, with a reason
 * for humans. */
void tr__node_event_locked(struct tr_node *n, uint32_t type, const char *name,
    const char *reason);
/* The runtime's `name` and `whereis` ops (dist.h). */
const char *tr__node_op_name(void *arg);
int tr__node_op_whereis(void *arg, tr_pid from, const char *node_name,
    const char *name, uint64_t ref);

/* ---- the peer table (node_peer.c) -----------------------------------------
 */

/* The entry a pid's `node` names, or NULL (index free, generation
 * stale). Inside an ebr section or with the node lock held. */
struct tr__peer *tr__peer_at(struct tr_node *n, uint32_t node);
/* Node lock held: the entry of (name, inc), or NULL. */
struct tr__peer *tr__peer_find(
    struct tr_node *n, const char *name, uint64_t inc);
/* Node lock held: the entry of `name` that is up, or NULL. */
struct tr__peer *tr__peer_up(struct tr_node *n, const char *name);
/* Node lock held: a new entry for (name, inc) in `state`, taking over the
 * index of the entry `old` when given (the same node: its pids stay
 * valid), else a fresh index; `old` is unlinked (the caller retires or
 * tears it down). NULL when out of memory or indices. */
struct tr__peer *tr__peer_new(struct tr_node *n, const char *name, uint64_t inc,
    int state, struct tr__peer *old);
/* Node lock held: the entry for pids of node (name, inc), made KNOWN if
 * there is none; 0 when there is no room. */
uint32_t tr__peer_known(struct tr_node *n, const char *name, uint64_t inc);
/* Node lock held: unlinks `p` (its index goes free with a new
 * generation) and queues it to be freed once no ebr section can hold it. */
void tr__peer_retire(struct tr_node *n, struct tr__peer *p);
/* Node lock held: forgets the oldest idle entries beyond the cap. */
void tr__peer_trim(struct tr_node *n);
/* Frees an entry and everything it still holds (no lock, nobody holds
 * it). */
void tr__peer_free(struct tr__peer *p);
/* Control thread: frees what was retired in the epoch that has drained,
 * and opens a new one. */
void tr__peer_reclaim(struct tr_node *n);

void tr__pid_out(struct tr_node *n, tr_pid pid, WPid *w);
tr_pid tr__pid_in(struct tr_node *n, struct tr__peer *from, const WPid *w);
bool tr__pid_local(struct tr_node *n, const WPid *w, tr_pid *out);

/* Peer lock held. */
void tr__xlink_add(struct tr__peer *p, tr_pid loc, tr_pid rem);
void tr__xlink_del(struct tr__peer *p, tr_pid loc, tr_pid rem);
void tr__xmon_add(
    struct tr__peer *p, uint64_t ref, tr_pid loc, tr_pid rem, bool mine);
void tr__xmon_del(struct tr__peer *p, uint64_t ref, bool mine);
/* Lookups awaiting an answer (struct tr__xask); peer lock held. */
void tr__xask_add(struct tr__peer *p, uint64_t ref, tr_pid loc);
void tr__xask_del(struct tr__peer *p, uint64_t ref, tr_pid loc);

/* ---- sending (node_out.c) --------------------------------------------------
 */

/* What a message must share with the open run to join it (Envelope.more):
 * name is NULL for a send to a pid, the registered name for a named
 * send. */
struct tr__runkey {
	tr_pid to, from;
	uint32_t type;
	const char *name;
};

#define TR__RUN_NONE 1 /* run_put: the message cannot join the open run */

extern const tr__dist_ops tr__node_ops;

int tr__run_put(struct tr_node *n, struct tr__peer *p,
    const struct tr__runkey *k, const void *data, size_t len, bool bounded);
int tr__env_put(struct tr_node *n, struct tr__peer *p, const Env *e,
    bool bounded, const struct tr__runkey *k);
/* Queues an encoded Frame (taken) behind everything queued before it;
 * TR_ECLOSED on a peer that is down (the frame is freed). */
int tr__frame_put(
    struct tr_node *n, struct tr__peer *p, uint8_t *buf, size_t len);
/* Sends one envelope the node makes itself (an answer, a heartbeat) and
 * flushes it. */
int tr__env_send_now(
    struct tr_node *n, struct tr__peer *p, const Env *e, bool direct);
/* Sends a name lookup `e` asked by the local `loc` under `ref`, recorded
 * as awaiting its answer (struct tr__xask). Within a turn of this node's
 * runtime the turn's end flushes it; elsewhere it is flushed now.
 * TR_ENOPROC if the pair is not up. */
int tr__ask_send(struct tr_node *n, struct tr__peer *p, const Env *e,
    tr_pid loc, uint64_t ref);
/* Cuts the open batch of `p` and starts the send of what is queued
 * (`direct`: see node_out.c). Leaves p->dirty alone: a peer on the dirty
 * list stays there until tr__flush_all takes it. */
void tr__flush_peer(struct tr_node *n, struct tr__peer *p, bool direct);
/* Flushes the peers on the dirty list, and only those: the end of a
 * scheduler's turn (inside an ebr section) and the ticker. */
void tr__flush_all(struct tr_node *n, bool direct);
/* Peer lock held: the next frame for the send slot, if it is free. */
nng_msg *tr__kick_locked(struct tr__peer *p);
void tr__start_send(struct tr__peer *p, nng_msg *m);
/* sp_out.c's report of a frame taken by tr__kick_locked. */
void tr__send_cb(void *arg, int rv);
/* Puts an envelope from an actor or a plain thread (ctx NULL); an
 * actor's turn flushes it at its end. */
int tr__ctx_put(tr_ctx *ctx, struct tr_node *n, struct tr__peer *p, Env *e,
    const struct tr__runkey *k, WPid *wf);
/* Frees what a peer's send side holds (batch, queue): in-flight messages
 * on a lost connection are lost. Peer lock held. */
void tr__out_drop_locked(struct tr__peer *p);

/* ---- receiving (node_rx.c) --------------------------------------------------
 */

/* A batch frame from the pair of `p`, decoded and delivered. */
void tr__rx_batch(
    struct tr_node *n, struct tr__peer *p, const Troupe__Wire__Batch *b);
/* A signal or DOWN for local `to`; from the pair of `p` (behind what flow
 * control holds back for `to`), or the node's own (p NULL). */
int tr__inject_sig(struct tr_node *n, struct tr__peer *p, tr_pid to,
    uint32_t kind, uint32_t flags, uint64_t ref, tr_pid from,
    const tr_exit_info *info);
int tr__inject_down(struct tr_node *n, struct tr__peer *p, tr_pid to,
    tr_pid target, uint64_t ref, int reason, const char *text);
int tr__inject_msg(struct tr_node *n, tr_pid to, uint32_t type,
    const void *data, size_t size, tr_pid from, uint64_t ref, uint32_t flags);
void tr__exit_info(
    tr_exit_info *info, tr_pid pid, int reason, const char *text);

/* ---- connections and handshakes (node_hs.c) --------------------------------
 */

/* sp_in.c's callbacks for the node's inbound connections. */
extern const tr__sp_in_ops tr__node_in_ops;
int tr__node_tls_config(struct tr_node *n, nng_tls_config **cfg,
    nng_tls_mode mode, const char *url);
/* Node lock held: `p` stops taking sends at once and is queued for the
 * control thread's teardown. */
void tr__peer_down_locked(
    struct tr_node *n, struct tr__peer *p, const char *why);
/* Starts a connect and waits for it (tr_node_connect). */
int tr__node_connect(
    struct tr_node *n, const char *url, int64_t timeout_ms, char *peer);
/* Node lock held: the handshakes' deadlines, and lingering connections. */
void tr__hs_tick_locked(struct tr_node *n, int64_t now);
/* Control thread, no lock: commits the pairs that waited for the teardown
 * of `torn` (which is retired, not yet freed). */
void tr__hs_commit_waiting(struct tr_node *n, struct tr__peer *torn);
/* No lock: frees lingering connections that are due (all, if `all`). */
void tr__linger_sweep(struct tr_node *n, bool all);
/* Node lock held: frees the connections of every handshake (at stop). */
void tr__hs_close_all_locked(struct tr_node *n);

/* ---- flow control (node_flow.c) ---------------------------------------------
 */

/* Receive path, inside a dist section: delivers msgs[0..k-1] (taken) to
 * local `to`, or holds them back behind what is held for it already, or
 * because `to` is over its backlog. Returns true when `to` has just begun
 * to be held back: a BUSY is owed to `p` (tr__flow_busy_send, after the
 * section). `name`: the registered name they were sent to, or NULL. */
bool tr__flow_deliver(struct tr_node *n, struct tr__peer *p, tr_pid to,
    const char *name, tr_msg **msgs, uint32_t k);
/* Any thread: if messages from `p` are held back for `to`, appends `m`
 * (a signal, taken) behind them, to keep the pair's order; else false. */
bool tr__flow_hold_sig(
    struct tr_node *n, struct tr__peer *p, tr_pid to, tr_msg *m);
/* Tells `p` that local `to` (reached under `name`, or NULL) is busy. */
void tr__flow_busy_send(
    struct tr_node *n, struct tr__peer *p, tr_pid to, const char *name);
/* A BUSY or READY envelope from `p`. */
void tr__flow_busy_in(struct tr_node *n, struct tr__peer *p, const Env *e);
/* Peer lock held: whether `to` (or `name`, if not NULL) said BUSY. */
bool tr__flow_is_busy(const struct tr__peer *p, tr_pid to, const char *name);
/* After a frame of `p`'s connection `pipe`: pauses reading when `p` has
 * too much held back, or the node is over recv_max. */
void tr__flow_after_frame(struct tr_node *n, struct tr__peer *p);
/* The runtime's `drained` op. */
void tr__flow_drained(void *arg, tr_pid pid);
/* Control thread, no lock: delivers what drained actors can take now,
 * READY to senders, resumes reading when below the bounds. */
void tr__flow_tick(struct tr_node *n);
/* Teardown (no lock): frees what is held back for a lost peer. */
void tr__flow_drop(struct tr_node *n, struct tr__peer *p);
void tr__flow_stats(struct tr_node *n, tr_node_stats *st);

/* ---- clusters (node_mesh.c) -------------------------------------------------
 */

/* At start, before the control thread runs: the options' seeds (or
 * TROUPE_SEEDS), the seed source, connect_all and reconnect. Errors:
 * TR_ENOMEM, TR_EINVAL (a seed that is not a URL of 1..511 bytes). */
int tr__mesh_init(struct tr_node *n, const tr_node_opts *o);
void tr__mesh_fini(struct tr_node *n);
/* Node lock held: the pair of `p` is up; its node needs no dial, and
 * every peer hears of it. */
void tr__mesh_up_locked(struct tr_node *n, struct tr__peer *p);
/* Node lock held: the pair of `p` was lost (teardown): redial it with
 * backoff, unless reconnecting is off or this node stops. */
void tr__mesh_down_locked(struct tr_node *n, struct tr__peer *p);
/* Node lock held: a dial of ours (handshake `hs`) ended with `rc`,
 * reaching node `name` when TR_OK. */
void tr__mesh_dial_done_locked(
    struct tr_node *n, uint32_t hs, int rc, const char *name);
/* A CONTROL_MEMBERS from the pair of `p` (up), no lock held. */
void tr__mesh_gossip_in(struct tr_node *n, struct tr__peer *p, const Env *e);
/* Control thread, no lock held: asks the seed sources that are due. */
void tr__mesh_resolve(struct tr_node *n, int64_t now);
/* Control thread, node lock held: gossip owed, dials due, dials past
 * their time. Returns when it next has something to do. */
int64_t tr__mesh_tick_locked(struct tr_node *n, int64_t now);
void tr__mesh_stats(struct tr_node *n, tr_node_stats *st);

/* Node lock held: starts a handshake with `url` without waiting for it
 * (the control thread's own dials); its end is reported to
 * tr__mesh_dial_done_locked. *hs is 0 when `url` is a pair that is up
 * already (no dial needed). Errors: as tr_node_connect's start. */
int tr__node_dial_locked(struct tr_node *n, const char *url, uint32_t *hs);
/* Node lock held: gives up such a dial. */
void tr__node_dial_cancel_locked(struct tr_node *n, uint32_t hs);

/* ---- process groups (pg.c) ------------------------------------------------
 */

/* Once the node is up: the pg layer and its default scope. */
int tr__pg_start(struct tr_node *n);
/* First thing at stop: the scope servers end, the scopes are freed. */
void tr__pg_stop(struct tr_node *n);

/* ---- the control thread (node_tick.c)
 * ---------------------------------------- */

void *tr__ticker_main(void *arg);
/* Control thread, no lock held: closes the pair of a lost peer, fires its
 * links and monitors (noconnection) and its NODEDOWN. */
void tr__teardown(struct tr_node *n, struct tr__peer *p);

#endif
