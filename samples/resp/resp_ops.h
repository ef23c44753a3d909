/*
 * What connections and shards say to each other: batches of operations
 * on keys, and batches of their replies. Plain bytes (no pointers), so a
 * shard could as well be on another node.
 *
 * A batch (RS_MSG_OPS): an rs_ops_hdr, then `nops` operations, each an
 * rs_op, its key and its value, padded to 8 bytes. A connection sends a
 * shard one batch with all of that shard's operations from what it
 * parsed of one read, in the order of the requests.
 *
 * The answer (RS_MSG_REPLIES): an rs_replies_hdr, then `n` uint32_t
 * lengths, then the replies, already encoded in RESP, one per operation,
 * in the batch's order, back to back: the connection writes them to its
 * client as they are, in the order of the requests.
 */
#ifndef RESP_OPS_H
#define RESP_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RS_MSG_OPS 0x52530001u     /* connection -> shard */
#define RS_MSG_REPLIES 0x52530002u /* shard -> connection */
#define RS_MSG_SWEEP 0x52530003u   /* a shard's timer: expire some keys */

/* Operations. Each is answered with one reply. */
enum {
	RS_OP_GET = 1,    /* the value (bulk) or null */
	RS_OP_SET = 2,    /* +OK, or null when NX/XX say no */
	RS_OP_DEL = 3,    /* :1 when the key was there, else :0 */
	RS_OP_EXISTS = 4, /* :1 or :0 */
	RS_OP_INCRBY = 5, /* :the new value, or an error */
	RS_OP_DBSIZE = 6, /* :keys of the shard (no key) */
	RS_OP_FLUSH = 7,  /* +OK: every key of the shard gone (no key) */
};

/* RS_OP_SET's flags. */
#define RS_SET_NX 1u      /* only if the key is not there */
#define RS_SET_XX 2u      /* only if it is */
#define RS_SET_KEEPTTL 4u /* keep its time to live */

typedef struct rs_ops_hdr {
	uint32_t nops;
	uint32_t _reserved;
} rs_ops_hdr;

typedef struct rs_op {
	uint8_t code;
	uint8_t flags;
	uint16_t _reserved;
	uint32_t klen;
	uint32_t vlen;
	uint32_t _reserved2;
	int64_t arg;   /* INCRBY: the increment; SET: time to live in ms
	                * (0: none) */
	uint64_t hash; /* rs_hash of the key */
} rs_op;

typedef struct rs_replies_hdr {
	uint32_t n;
	uint32_t shard; /* the answering shard's number */
} rs_replies_hdr;

/* The size of an operation with its key and value, padded. */
static inline size_t rs_op_size(size_t klen, size_t vlen)
{
	return sizeof(rs_op) + ((klen + vlen + 7) & ~(size_t)7);
}

/* Reads the operation at *p (which must end by `end`) into *op, points
 * *key at its key (its value follows the key) and moves *p past it.
 * False, with nothing moved, when what is left is too short for it. */
static inline bool rs_op_next(
    const char **p, const char *end, rs_op *op, const char **key)
{
	if ((size_t)(end - *p) < sizeof(*op))
		return false;
	memcpy(op, *p, sizeof(*op));
	size_t sz = rs_op_size(op->klen, op->vlen);
	if (sz > (size_t)(end - *p))
		return false;
	*key = *p + sizeof(*op);
	*p += sz;
	return true;
}

/* ---- the hash of keys --------------------------------------------------- */

/* SipHash-1-2 (as Redis's dict uses) of `n` bytes at `p` under the 128-bit
 * key k: a random key chosen at start, so that nobody can choose keys
 * that collide. The shard of a key is its high bits, its place in the
 * shard's table its low bits. */
static inline uint64_t rs_rotl(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

#define RS_SIPROUND(v0, v1, v2, v3)                                            \
	do {                                                                   \
		v0 += v1;                                                      \
		v1 = rs_rotl(v1, 13);                                          \
		v1 ^= v0;                                                      \
		v0 = rs_rotl(v0, 32);                                          \
		v2 += v3;                                                      \
		v3 = rs_rotl(v3, 16);                                          \
		v3 ^= v2;                                                      \
		v0 += v3;                                                      \
		v3 = rs_rotl(v3, 21);                                          \
		v3 ^= v0;                                                      \
		v2 += v1;                                                      \
		v1 = rs_rotl(v1, 17);                                          \
		v1 ^= v2;                                                      \
		v2 = rs_rotl(v2, 32);                                          \
	} while (0)

static inline uint64_t rs_hash(const uint64_t k[2], const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0];
	uint64_t v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0];
	uint64_t v3 = 0x7465646279746573ull ^ k[1];
	uint64_t b = (uint64_t)n << 56, m;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&m, s + i, 8); /* SipHash's values on little-endian */
		v3 ^= m;
		RS_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	for (size_t j = 0; i + j < n; j++)
		b |= (uint64_t)s[i + j] << (8 * j);
	v3 ^= b;
	RS_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	RS_SIPROUND(v0, v1, v2, v3);
	RS_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* The shard of a key of hash h, of n shards. */
static inline uint32_t rs_shard_of(uint64_t h, uint32_t n)
{
	return (uint32_t)(((h >> 32) * (uint64_t)n) >> 32);
}

#endif
