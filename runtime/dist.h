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
} tr__dist_ops;

/* Attaches a layer; one per runtime. Errors: TR_EINVAL, TR_EEXIST. */
int tr__dist_attach(tr_runtime *rt, const tr__dist_ops *ops, void *arg);

/* Detaches it; sends to remote pids fail with TR_ENOPROC afterwards. The
 * caller makes sure no `send` is still running (e.g. by stopping the
 * runtime's activity first). */
void tr__dist_detach(tr_runtime *rt);

/* The `arg` given to tr__dist_attach, or NULL: how the layer's public
 * functions that take only a ctx or a runtime find their node. */
void *tr__dist_arg(tr_runtime *rt);

/* Delivers a message from another node to the local pid `to`. On TR_OK the
 * runtime owns `m`. Thread-safe. */
int tr__dist_inject(tr_runtime *rt, tr_pid to, tr_msg *m);

#endif
