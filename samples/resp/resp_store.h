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

/* Replication: the state of keys rather than the operations, so that a
 * copy that runs it ends up the same whatever its clock says of times to
 * live. rs_store_state appends to `out` a batch (rs_ops_hdr and
 * operations) that makes every key a batch `ops` wrote (SET, DEL, INCRBY,
 * FLUSH; run on `st` already) what it is in `st` now: a SET of its value
 * with its remaining time to live, a DEL, or the FLUSH. *nwrites is how
 * many operations that batch holds (0: the batch only read). False when
 * `ops` is malformed or memory ran out. */
bool rs_store_state(rs_store *st, const void *ops, size_t len, int64_t now_ms,
    resp_buf *out, uint32_t *nwrites);

/* A copy of the whole store, in pieces: appends to `out` a batch of SETs
 * of the keys from slot *cursor on (start at 0), of about max_bytes at
 * most, and moves *cursor past them. True when the walk has reached the
 * end. The store must not change between the pieces of one walk (one
 * actor's turn makes them all). */
bool rs_store_dump(rs_store *st, size_t *cursor, int64_t now_ms,
    size_t max_bytes, resp_buf *out);

/* Removes every key. */
void rs_store_clear(rs_store *st);

/* Milliseconds of the monotonic clock. */
int64_t rs_now_ms(void);

#endif
