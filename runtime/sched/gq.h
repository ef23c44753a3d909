/*
 * The global run queue (rt.h, "Global run queue"). Two parts under one
 * lock, and an inbox without one:
 *
 *   - singles: an intrusive FIFO list (tr__actor.qnext) of actors made
 *     runnable by threads that are not schedulers. Those threads push
 *     onto the inbox, a lock-free stack (one compare-and-swap, no lock a
 *     taker holds), and a taker moves the whole inbox, reversed into
 *     arrival order, onto the list before it takes singles: a thread
 *     that spawns in a loop never waits on the schedulers' lock, nor
 *     wakes one that waits on it;
 *   - chunks: arrays of up to TR__GQ_CHUNK actor pointers, each the half
 *     of a full local ring that its scheduler spilled, in spill order.
 *
 * Taking from a chunk copies pointers out of one array and never touches
 * the actors themselves, which are cold by then (a spill is the oldest
 * half of a ring); taking singles walks their list. Chunks come from a
 * free list (at most TR__GQ_FREE_MAX kept) or malloc; when malloc fails
 * a spill goes on the singles' list instead, so a spill never fails.
 */
#ifndef TR_SCHED_GQ_H
#define TR_SCHED_GQ_H

#include "rt.h"

#define TR__GQ_CHUNK (TR__RQ_SIZE / 2 + 1)
#define TR__GQ_FREE_MAX 16u

struct tr__gq_chunk {
	struct tr__gq_chunk *next;
	uint32_t head, n; /* a[head..n-1] are still queued */
	tr__actor *a[TR__GQ_CHUNK];
};

/* Queues one actor (a single), lock-free: any thread. */
void tr__gq_push_one(tr_runtime *rt, tr__actor *a);

/* Queues n (1..TR__GQ_CHUNK) actors, in order, as one chunk. */
void tr__gq_push_spill(tr_runtime *rt, tr__actor *const *as, uint32_t n);

/* Takes this scheduler's share of the queue (its length over the
 * schedulers, plus one), at most `max`, into out[]; from the chunks first
 * if `chunks_first`, else from the singles first (the caller alternates,
 * so that neither part waits on the other). Returns how many. */
uint32_t tr__gq_take(
    tr_runtime *rt, tr__actor **out, uint32_t max, bool chunks_first);

/* Frees the chunks, queued or spare (the runtime's end). */
void tr__gq_fini(tr_runtime *rt);

#endif
