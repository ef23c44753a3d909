/*
 * The one interface between the local runtime and a distribution layer
 * (transport/), in the way nng keeps its transports behind an ops table.
 *
 * The runtime knows nothing of nodes: a pid whose `node` is not 0 is
 * handed to the attached layer's `send`, and messages that arrive from
 * other nodes come back in through tr__dist_inject, from the layer's own
 * threads. The layer's threads never run actor code.
 */
#ifndef TR_DIST_H
#define TR_DIST_H

#include "troupe/troupe.h"

typedef struct tr__dist_ops {
	/* A message or signal (see rt.h, TR__MF_*) for `to`, whose node is
	 * not 0. On TR_OK the layer owns `m`; on error the caller frees it.
	 * Called from any thread, schedulers included: it must not block for
	 * long (queue, and apply backpressure by failing with TR_EAGAIN
	 * rather than by sleeping). */
	int (*send)(void *arg, tr_pid to, tr_msg *m);
	/* Called by a scheduler after a turn in which it called `send`, so
	 * that batched output goes out at the end of the turn. */
	void (*flush)(void *arg);
	/* Flow control (may be NULL): the backlog of remote messages of local
	 * actor `pid` fell to the level tr__dist_inject_bounded_locked set.
	 * Called once per such level, from the thread running the actor (a
	 * scheduler, in a turn, or a port's thread): queue the work and
	 * return at once. */
	void (*drained)(void *arg, tr_pid pid);
	/* The node's name (may be NULL): read once, when the layer attaches,
	 * for log metadata and to tell calls by name that are local. */
	const char *(*name)(void *arg);
	/* Name lookup on another node, for calls by name (may be NULL):
	 * asks node `node_name` which pid is registered there as `name`,
	 * and answers the local pid `from` later with a reply-flagged
	 * (TR__MF_REPLY) message of type TR__DIST_WHEREIS_REPLY whose `ref`
	 * is `ref`, whose sender is the pid found and whose payload is an
	 * int32_t: TR_OK, or TR_ENOENT when the name is not registered
	 * there. Returns TR_OK when the question went out, TR_ENOPROC when
	 * no such node is connected (nothing will come). Called by the
	 * thread running the actor `from`, as `send`. */
	int (*whereis)(void *arg, tr_pid from, const char *node_name,
	    const char *name, uint64_t ref);
} tr__dist_ops;

/* The answer to the `whereis` op (a system type: no user sends it). */
#define TR__DIST_WHEREIS_REPLY 0xFFFF00F1u

/* Attaches a layer; one per runtime. Errors: TR_EINVAL, TR_EEXIST. */
int tr__dist_attach(tr_runtime *rt, const tr__dist_ops *ops, void *arg);

/* Detaches it; sends to remote pids fail with TR_ENOPROC afterwards, and
 * once it returns no call of the layer's ops is running or will start, so
 * the layer may free its `arg`. Call from a thread that is not one of the
 * runtime's schedulers; it waits for every scheduler's current turn. */
void tr__dist_detach(tr_runtime *rt);

/* The `arg` given to tr__dist_attach, or NULL: how the layer's public
 * functions that take only a ctx or a runtime find their node. */
void *tr__dist_arg(tr_runtime *rt);

/* Delivers a message from another node to the local pid `to`. On TR_OK the
 * runtime owns `m`. Thread-safe. */
int tr__dist_inject(tr_runtime *rt, tr_pid to, tr_msg *m);

/* Batch injection, for a layer thread that delivers many messages at once
 * (a frame of envelopes): tr__dist_inject enters and leaves the runtime's
 * epoch section for every message, which costs an atomic exchange and a
 * full fence each time. Instead:
 *
 *	unsigned rec;
 *	tr__dist_enter(rt, &rec);
 *	... tr__dist_inject_locked(rt, to, m) for each message ...
 *	tr__dist_exit(rt, rec);
 *
 * Contract: only from a thread that is not one of this runtime's
 * schedulers; sections do not nest on one thread (enter once, exit once
 * with the `rec` it gave); keep a section short (it holds back the reuse
 * of exited actors' memory, so not across blocking calls or a wait for
 * the network) and make no runtime call inside it that blocks or enters
 * a section itself (tr__msg_* allocation, tr__msg_free and tr_whereis are
 * fine). tr__dist_inject_locked has the result and ownership rules of
 * tr__dist_inject. */
void tr__dist_enter(tr_runtime *rt, unsigned *rec);
int tr__dist_inject_locked(tr_runtime *rt, tr_pid to, tr_msg *m);
void tr__dist_exit(tr_runtime *rt, unsigned rec);

/* Inside a section too: delivers msgs[0..n-1], in that order, to `to`,
 * as n calls of tr__dist_inject_locked would, but with one lookup and
 * one push onto the mailbox for all of them. On TR_OK the runtime owns
 * every message; on error (TR_EINVAL, TR_ENOPROC) none, and the caller
 * frees them all. n may be 0. */
int tr__dist_inject_many_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n);

/* Flow control for remote traffic: tr__dist_inject_many_locked that first
 * looks at the target's backlog (bytes of messages delivered through this
 * call and not yet taken from its mailbox by the actor, each counted as
 * its size plus its header). Below `limit` it delivers them all and adds
 * them to the backlog (which can thus pass `limit` by one call's worth).
 * At or above, it delivers nothing and returns TR_EAGAIN, the caller
 * still owns the messages, and the layer's `drained` op will be called
 * once with `to` when the backlog has fallen to `limit / 2`. Errors and
 * ownership otherwise as tr__dist_inject_many_locked. */
int tr__dist_inject_bounded_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n, uint32_t limit);

/* Bytes of remote messages (those of tr__dist_inject_bounded_locked) in
 * the mailboxes of all actors. Any thread. */
uint64_t tr__dist_backlog(tr_runtime *rt);

#endif
