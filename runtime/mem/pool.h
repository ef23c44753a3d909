/*
 * Size-class memory pools with per-thread caches, for messages and actors.
 *
 * Each thread keeps a free list per size class; allocating and freeing touch
 * only that list (no atomics, no locks). Because messages are allocated by
 * the sender and freed by the receiver, lists drift between threads: a list
 * that grows past two batches hands one batch to the class's global depot,
 * and an empty list takes a batch from it (or carves one from a fresh
 * slab). The depot is the only shared state; see pool.c for its lock.
 *
 * Memory is kept for reuse for the life of the process (slabs stay
 * reachable from the depot, so leak checkers see no leak). In builds with
 * AddressSanitizer the pools step aside and every block comes from malloc,
 * so use-after-free and leaks are caught per block.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <stddef.h>

#define TR__POOL_NCLASSES 7u /* 64, 128, ..., 4096 bytes */
#define TR__POOL_LARGE 0xffu /* beyond the classes: plain malloc */
#define TR__POOL_MAX_SMALL 4096u

/* The class for a block of `size` bytes, or TR__POOL_LARGE. */
static inline unsigned tr__pool_class(size_t size)
{
	if (size <= 64)
		return 0;
	if (size > TR__POOL_MAX_SMALL)
		return TR__POOL_LARGE;
	/* ceil(log2(size)) - 6 */
	return (unsigned)(64 - __builtin_clzll((unsigned long long)size - 1)) -
	       6u;
}

static inline size_t tr__pool_class_size(unsigned cls)
{
	return (size_t)64 << cls;
}

/* A 64-byte aligned block of class `cls` (not zeroed), or NULL. */
void *tr__pool_alloc(unsigned cls);

/* Gives a block back to the calling thread's cache. */
void tr__pool_free(unsigned cls, void *p);

#endif
