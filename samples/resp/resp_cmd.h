/*
 * The commands: what each request becomes. A request on keys becomes
 * operations (resp_ops.h) for the shards of its keys, put in the batch
 * the connection sends when it has parsed what it read, and steps of the
 * plan (resp_order.h) that say how their replies make the request's
 * reply; a request that needs no key (PING, ECHO, an error) is answered
 * at once, as a reply of the connection's own in the plan. Pure C, no
 * troupe.
 *
 * Commands: PING [msg], ECHO msg, QUIT, SELECT 0, COMMAND (and COMMAND
 * DOCS, COUNT, ...: an empty array, so that redis-cli starts quietly),
 * CONFIG GET (save and appendonly, which redis-benchmark asks for; other
 * parameters: nothing), GET, SET key value [NX|XX] [EX s|PX ms|KEEPTTL],
 * DEL and UNLINK and EXISTS (any number of keys), INCR, DECR, INCRBY,
 * DECRBY, MGET, MSET, DBSIZE, FLUSHALL and FLUSHDB. Anything else is
 * answered as Redis answers an unknown command.
 *
 * A request over keys of several shards is not atomic: MSET's keys are
 * set shard by shard, and a reader may see some set before others.
 */
#ifndef RESP_CMD_H
#define RESP_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "resp_order.h"
#include "resp_parse.h"

/* Where keys go: how many shards, and the hash's key (resp_ops.h). */
typedef struct rs_route {
	uint32_t nshards;
	uint64_t key[2];
} rs_route;

/* The operations of one read's requests, a batch for each shard. */
typedef struct rs_batch {
	uint32_t nshards;
	resp_buf *ops;  /* per shard: an rs_ops_hdr and the operations */
	uint32_t *nops; /* per shard: how many */
	resp_buf local; /* scratch for the connection's own replies */
} rs_batch;

bool rs_batch_init(rs_batch *b, uint32_t nshards);
void rs_batch_fini(rs_batch *b);

/* Shard s's batch: `*len` bytes, NULL if it has no operation. The header
 * is filled in. */
const void *rs_batch_get(rs_batch *b, uint32_t s, size_t *len);

/* Empties every shard's batch (after they have been sent). */
void rs_batch_clear(rs_batch *b, size_t keep);

/* Whether memory ran out in the batch. */
bool rs_batch_oom(const rs_batch *b);

/* What rs_cmd_run says of the connection. */
enum {
	RS_CMD_GO = 0, /* go on reading */
	RS_CMD_QUIT,   /* QUIT: close once its +OK is written */
};

/* Makes the request of argc arguments at argv into operations (in `b`)
 * and steps with replies (in `o`). */
int rs_cmd_run(const rs_route *r, rs_batch *b, rs_order *o, uint32_t argc,
    const resp_arg *argv);

#endif
