/*
 * Replies in the order of the requests. A connection's requests are
 * answered by several sources: each shard (which answers the operations
 * it was sent, in the order it was sent them) and the connection itself
 * (PING, errors, ...), source number `nshards`. The replies of one source
 * come in order, but the sources' interleave in any way. An rs_order
 * keeps the plan, a queue of steps in request order, each naming the
 * source whose next reply it takes, and the replies that came ahead of
 * their turn; rs_order_emit writes out every reply whose turn has come.
 *
 * Steps:
 *   ONE(src)   the next reply of source src;
 *   SUM(n)     the next n steps (each ONE) are integers: one reply, their
 *              sum (DEL and EXISTS over keys of several shards, DBSIZE);
 *   OK(n)      the next n steps are taken, and one +OK written for them
 *              (MSET, FLUSHALL);
 *   CLOSE      the end: after the replies before it, the connection
 *              closes (QUIT, a protocol error).
 *
 * Pure C, no troupe. Memory: the plan and the replies that wait for their
 * turn; the connection bounds both (rs_order_steps, rs_order_bytes).
 */
#ifndef RESP_ORDER_H
#define RESP_ORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resp_parse.h"

enum { RS_STEP_ONE, RS_STEP_SUM, RS_STEP_OK, RS_STEP_CLOSE };

typedef struct rs_step {
	uint8_t kind;
	uint8_t _reserved;
	uint16_t src;
	uint32_t n;
} rs_step;

/* One source's replies that have not been written yet. */
typedef struct rs_fifo {
	char *p;
	size_t head, len, cap; /* bytes p[head .. len) */
	uint32_t *lens;        /* their lengths: a ring */
	uint32_t lhead, ln, lcap;
} rs_fifo;

typedef struct rs_order {
	uint32_t nsrc; /* shards + 1 (the connection itself) */
	rs_fifo *fifo;
	rs_step *steps; /* the plan: a ring */
	uint32_t shead, sn, scap;
	uint32_t *need; /* scratch for a group: replies needed per source */
	size_t held;    /* bytes of replies in the fifos */
	bool oom;
} rs_order;

/* An order of nshards shards and the connection (source nshards). False
 * when out of memory. */
bool rs_order_init(rs_order *o, uint32_t nshards);
void rs_order_fini(rs_order *o);

/* Appends a step to the plan (`n` for SUM and OK). */
void rs_order_step(rs_order *o, int kind, uint32_t src, uint32_t n);

/* Source src's next replies: `n` of them, of lengths lens[], back to back
 * at `bytes`. */
void rs_order_replies(rs_order *o, uint32_t src, uint32_t n,
    const uint32_t *lens, const char *bytes);

/* rs_order_replies, then rs_order_emit, but without copying the replies
 * whose turn has come. */
bool rs_order_deliver(rs_order *o, uint32_t src, uint32_t n,
    const uint32_t *lens, const char *bytes, resp_buf *out);

/* One reply of the connection's own (source nshards), copied, and its
 * ONE step. */
void rs_order_local(rs_order *o, const char *bytes, size_t len);

/* Writes to `out` every reply whose turn has come, in order. Returns true
 * when the plan reached a CLOSE (it stays at the head). */
bool rs_order_emit(rs_order *o, resp_buf *out);

/* Steps in the plan: requests not answered yet, roughly. */
static inline uint32_t rs_order_steps(const rs_order *o)
{
	return o->sn;
}

/* Bytes of replies waiting for their turn. */
static inline size_t rs_order_bytes(const rs_order *o)
{
	return o->held;
}

/* Gives back memory that grew past `keep` bytes where nothing waits. */
void rs_order_trim(rs_order *o, size_t keep);

#endif
