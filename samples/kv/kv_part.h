/*
 * A partition actor (one per partition on every node) and the roles it
 * plays. Internal to kv_part.c, kv_primary.c and kv_queue.c.
 *
 * Roles:
 *   NONE      holds nothing (or a copy kept from before its node lost
 *             the majority, "kept"); passes its connections' batches to the
 *             partition's primary (the holder of the cluster-wide name
 *             kv.p<N>) and their replies back.
 *   REPLICA   holds a copy that one primary keeps up to date; "synced"
 *             once the first full copy has arrived. It monitors the
 *             primary, and when the primary dies it claims the name if it
 *             is synced and its node sees a majority; else it drops the
 *             copy and becomes NONE.
 *   CLAIMING  a claim of the name is under way (a takeover, or the first
 *             start of the partition).
 *   PRIMARY   runs the batches, sends the state of every key a write
 *             changed to its replicas, and answers a batch once every
 *             live replica has acked it and there are at least
 *             replicas - 1 of them (kv_primary.c).
 *
 * Every batch, whoever runs it, becomes an entry of one queue (kv_queue.c),
 * answered in arrival order, so that each connection gets its replies in
 * the order of its requests whatever ran them.
 */
#ifndef KV_PART_H
#define KV_PART_H

#include "kv.h"
#include "resp_parse.h"
#include "resp_store.h"

enum { KV_NONE, KV_REPLICA, KV_CLAIMING, KV_PRIMARY };

/* A replica, as its primary sees it. */
typedef struct kv_rep {
	char node[TR_NODE_NAME_MAX + 1];
	uint64_t acked;    /* the highest sequence it has acked */
	uint64_t sync_seq; /* the sequence its copy was made at */
	bool live;         /* acked sync_seq: it holds the whole copy */
	bool stale;        /* a send to it failed: a new copy is due */
} kv_rep;

/* A batch waiting for its answer. */
typedef struct kv_req {
	tr_pid reply_to;     /* a connection, or a partition actor */
	uint32_t reply_type; /* RS_MSG_REPLIES or KV_MSG_FWD_REPLY */
	uint32_t nops;
	tr_pid target;       /* where it runs: TR_PID_NONE for here */
	uint64_t seq;        /* here: answered once released >= seq */
	int64_t t0;          /* when it came (ms) */
	int64_t deadline;    /* waiting, or sent: an error after this (ms) */
	uint64_t id;         /* sent elsewhere: our id of it; from another
	                      * node: the sender's, echoed */
	char *bytes;         /* the answer: an RS_MSG_REPLIES payload */
	size_t len;
	char *ops;           /* sent elsewhere: 8 bytes for the id, then
	                      * the batch, to send again */
	size_t opslen;
	bool filled;         /* bytes hold the answer */
	bool waiting;        /* no primary to run it yet: tried again */
	bool retry_ok;       /* it may run twice (no INCRBY) */
} kv_req;

/* A remote primary batches were sent to, and its monitor. */
typedef struct kv_watch {
	tr_pid pid;
	uint64_t ref;
} kv_watch;

#define KV_WATCH_MAX 8u

typedef struct kv_part {
	uint32_t p;
	char name[16];
	int role;
	rs_store st;
	resp_buf out;  /* scratch: replies */
	resp_buf repl; /* scratch: state for the replicas */
	kv_view view;
	bool seen; /* the partition has been seen with a primary */
	bool kept; /* NONE with a whole copy, kept when the majority went */
	int64_t unheld_ms; /* when BOOT first found it without a primary */
	/* REPLICA */
	tr_pid primary;
	uint64_t primary_ref;
	bool synced;
	uint64_t applied; /* the primary's sequence of the last batch run */
	/* CLAIMING a takeover */
	tr_pid dead_primary;
	bool claim_retry;     /* the name is still the dead one's: again */
	int64_t claim_until;  /* then gives up */
	/* PRIMARY */
	uint64_t seq;      /* of the last write */
	uint64_t released; /* writes up to here are on enough copies */
	kv_rep reps[KV_MAX_NODES];
	uint32_t nreps;
	/* the queue */
	kv_req *q;
	uint32_t qhead, qn, qcap;
	uint64_t next_id; /* of batches sent elsewhere */
	kv_watch watch[KV_WATCH_MAX];
	uint32_t nwatch;
} kv_part;

/* kv_queue.c */
bool kv_q_push(kv_part *s, const kv_req *r);
kv_req *kv_q_at(kv_part *s, uint32_t i);
/* An answer of n errors `text` (a RESP error line without "-" and CRLF). */
bool kv_q_fill_error(kv_part *s, kv_req *r, const char *text);
/* Answers the entries at the head whose answers are ready. */
void kv_q_flush(tr_ctx *ctx, kv_part *s);
/* Fails the entries that run here and are not released yet. */
void kv_q_fail_local(kv_part *s, const char *text);
void kv_q_fini(kv_part *s);
/* Monitors `pid` unless it already is; false when out of slots. */
bool kv_watch_add(tr_ctx *ctx, kv_part *s, tr_pid pid);

/* kv_primary.c */
/* Runs a batch as primary and fills entry r with its answer. */
void kv_primary_run(
    tr_ctx *ctx, kv_part *s, kv_req *r, const void *ops, size_t len);
/* Fits the set of replicas to the view; gives up the role without a
 * majority. */
void kv_primary_maintain(tr_ctx *ctx, kv_part *s);
void kv_primary_ack(tr_ctx *ctx, kv_part *s, tr_pid from, uint64_t seq);
void kv_primary_nack(tr_ctx *ctx, kv_part *s, tr_pid from);
/* Fails writes that waited for their copies past the timeout. */
void kv_primary_tick(tr_ctx *ctx, kv_part *s, int64_t now);

/* kv_part.c */
void kv_part_become_none(tr_ctx *ctx, kv_part *s, const char *why);
/* The majority is gone: serves nothing, claims nothing, but keeps a
 * whole copy (a primary's, a synced replica's) for the day the cluster
 * comes back with no primary for the partition (every node stalled at
 * once): the copy holds every acknowledged write. */
void kv_part_stand_down(tr_ctx *ctx, kv_part *s);
int64_t kv_now_ms(void);

#endif
