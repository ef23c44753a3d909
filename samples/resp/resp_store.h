/*
 * A shard's keys: a hash table owned by one shard actor, and the
 * operations of resp_ops.h run on it. Pure C: no troupe, no locks (one
 * actor owns a store and nothing else touches it).
 *
 * The table is open addressing with linear probing, of slots that hold a
 * key's hash and its entry (the key and value in one allocation); a
 * deletion shifts the following slots back, so there are no tombstones.
 * It doubles at three quarters full, rehashing at once (a pause of a few
 * milliseconds at a million keys; Redis rehashes step by step).
 *
 * Keys with a time to live expire when touched past their deadline, and
 * rs_store_sweep, which the shard runs on a timer, visits a bounded number
 * of slots each time and removes the expired keys it finds there, so keys
 * nobody reads again do not stay for ever. Times are milliseconds of the
 * monotonic clock.
 */
#ifndef RESP_STORE_H
#define RESP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp_parse.h"

typedef struct rs_entry rs_entry;

typedef struct rs_slot {
	uint64_t hash;
	rs_entry *e; /* NULL: empty */
} rs_slot;

typedef struct rs_store {
	rs_slot *slots;
	size_t mask;     /* slots - 1 (a power of two less one), 0 if none */
	size_t count;    /* keys */
	size_t expiring; /* keys with a time to live */
	size_t cursor;   /* where the next sweep starts */
} rs_store;

void rs_store_init(rs_store *st);
void rs_store_fini(rs_store *st);

/* Runs the batch of `len` bytes at `ops` (an rs_ops_hdr and its
 * operations, resp_ops.h) at time `now_ms`, and appends to `out` the
 * answer: an rs_replies_hdr (its shard left 0), the lengths and the
 * replies. False when the
 * batch is malformed (nothing is appended then) or memory ran out
 * (out->oom). */
bool rs_store_exec(
    rs_store *st, const void *ops, size_t len, int64_t now_ms, resp_buf *out);

/* Removes the expired keys among the next `budget` slots; returns how
 * many it removed. */
size_t rs_store_sweep(rs_store *st, int64_t now_ms, size_t budget);

/* Milliseconds of the monotonic clock. */
int64_t rs_now_ms(void);

#endif
