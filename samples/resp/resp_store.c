/*
 * A shard's keys and the operations on them (resp_store.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resp_ops.h"
#include "resp_store.h"

#define SLOTS_FIRST 64u
#define NUM_ROOM 24u /* a value INCR may write over: 20 digits and a sign */

struct rs_entry {
	int64_t expire; /* the deadline, or 0: none */
	uint32_t klen, vlen, vcap;
	uint32_t _pad;
	char kv[]; /* the key, then room for vcap bytes of value */
};

#define NONE ((size_t)-1)

int64_t rs_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rs_store_init(rs_store *st)
{
	memset(st, 0, sizeof(*st));
}

static void free_all(rs_store *st)
{
	if (st->slots != NULL)
		for (size_t i = 0; i <= st->mask; i++)
			free(st->slots[i].e);
	free(st->slots);
	st->slots = NULL;
	st->mask = st->count = st->expiring = st->cursor = 0;
}

void rs_store_fini(rs_store *st)
{
	free_all(st);
}

static size_t find(
    const rs_store *st, uint64_t h, const char *key, uint32_t klen)
{
	if (st->slots == NULL)
		return NONE;
	for (size_t i = h & st->mask;; i = (i + 1) & st->mask) {
		const rs_slot *s = &st->slots[i];
		if (s->e == NULL)
			return NONE;
		if (s->hash == h && s->e->klen == klen &&
		    memcmp(s->e->kv, key, klen) == 0)
			return i;
	}
}

/* Empties slot i and shifts back the slots after it that may move. */
static void remove_at(rs_store *st, size_t i)
{
	rs_entry *e = st->slots[i].e;
	if (e->expire != 0)
		st->expiring--;
	free(e);
	st->count--;
	size_t j = i;
	for (;;) {
		j = (j + 1) & st->mask;
		if (st->slots[j].e == NULL)
			break;
		size_t k = st->slots[j].hash & st->mask;
		/* The slot at j may move to i unless its home k lies
		 * cyclically in (i, j]. */
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
		if (!stays) {
			st->slots[i] = st->slots[j];
			i = j;
		}
	}
	st->slots[i].e = NULL;
}

/* The live slot of a key (an expired key is removed on the way). */
static size_t lookup(
    rs_store *st, uint64_t h, const char *key, uint32_t klen, int64_t now)
{
	size_t i = find(st, h, key, klen);
	if (i != NONE && st->slots[i].e->expire != 0 &&
	    now >= st->slots[i].e->expire) {
		remove_at(st, i);
		return NONE;
	}
	return i;
}

static bool grow(rs_store *st)
{
	size_t n = st->slots == NULL ? SLOTS_FIRST : (st->mask + 1) * 2;
	rs_slot *ns = calloc(n, sizeof(*ns));
	if (ns == NULL)
		return false;
	if (st->slots != NULL) {
		for (size_t i = 0; i <= st->mask; i++) {
			rs_slot s = st->slots[i];
			if (s.e == NULL)
				continue;
			size_t j = s.hash & (n - 1);
			while (ns[j].e != NULL)
				j = (j + 1) & (n - 1);
			ns[j] = s;
		}
		free(st->slots);
	}
	st->slots = ns;
	st->mask = n - 1;
	st->cursor = 0;
	return true;
}

/* Puts a new key's entry in (the key is not there). */
static bool insert(rs_store *st, uint64_t h, rs_entry *e)
{
	if ((st->count + 1) * 4 > (st->slots == NULL ? 0 : st->mask + 1) * 3 &&
	    !grow(st))
		return false;
	size_t i = h & st->mask;
	while (st->slots[i].e != NULL)
		i = (i + 1) & st->mask;
	st->slots[i] = (rs_slot){.hash = h, .e = e};
	st->count++;
	if (e->expire != 0)
		st->expiring++;
	return true;
}

static rs_entry *entry_new(const char *key, uint32_t klen, const char *val,
    uint32_t vlen, uint32_t vcap)
{
	if (vcap < vlen)
		vcap = vlen;
	rs_entry *e = malloc(sizeof(*e) + klen + vcap);
	if (e == NULL)
		return NULL;
	e->expire = 0;
	e->klen = klen;
	e->vlen = vlen;
	e->vcap = vcap;
	memcpy(e->kv, key, klen);
	if (vlen > 0)
		memcpy(e->kv + klen, val, vlen);
	return e;
}

/* Sets slot i's expiry (keeping the count of keys with one). */
static void set_expire(rs_store *st, rs_entry *e, int64_t expire)
{
	st->expiring += (expire != 0) - (e->expire != 0);
	e->expire = expire;
}

static void op_set(rs_store *st, const rs_op *op, const char *key,
    const char *val, int64_t now, resp_buf *out)
{
	size_t i = lookup(st, op->hash, key, op->klen, now);
	if (((op->flags & RS_SET_NX) && i != NONE) ||
	    ((op->flags & RS_SET_XX) && i == NONE)) {
		resp_put_null(out);
		return;
	}
	int64_t expire = 0;
	if (op->arg > 0 && __builtin_add_overflow(now, op->arg, &expire))
		expire = INT64_MAX; /* as good as never */
	if (i != NONE) {
		rs_entry *e = st->slots[i].e;
		/* In place when it fits and does not waste much. */
		if (e->vcap < op->vlen || e->vcap > 2 * (size_t)op->vlen + 64) {
			rs_entry *ne =
			    entry_new(key, op->klen, val, op->vlen, 0);
			if (ne == NULL) {
				resp_put_errorz(out, "ERR out of memory");
				return;
			}
			ne->expire = e->expire;
			free(e);
			st->slots[i].e = e = ne;
		} else {
			memcpy(e->kv + e->klen, val, op->vlen);
			e->vlen = op->vlen;
		}
		if (!(op->flags & RS_SET_KEEPTTL))
			set_expire(st, e, expire);
	} else {
		rs_entry *e = entry_new(key, op->klen, val, op->vlen, 0);
		if (e != NULL)
			e->expire = expire;
		if (e == NULL || !insert(st, op->hash, e)) {
			free(e);
			resp_put_errorz(out, "ERR out of memory");
			return;
		}
	}
	resp_put_simple(out, "OK", 2);
}

static void op_incrby(
    rs_store *st, const rs_op *op, const char *key, int64_t now, resp_buf *out)
{
	size_t i = lookup(st, op->hash, key, op->klen, now);
	int64_t v = 0;
	rs_entry *e = i != NONE ? st->slots[i].e : NULL;
	if (e != NULL && !resp_arg_int(e->kv + e->klen, e->vlen, &v)) {
		resp_put_errorz(
		    out, "ERR value is not an integer or out of range");
		return;
	}
	if (__builtin_add_overflow(v, op->arg, &v)) {
		resp_put_errorz(
		    out, "ERR increment or decrement would overflow");
		return;
	}
	char num[NUM_ROOM];
	uint32_t n = (uint32_t)resp_fmt_int(num, v);
	if (e != NULL && e->vcap >= n) {
		memcpy(e->kv + e->klen, num, n);
		e->vlen = n;
	} else {
		rs_entry *ne = entry_new(key, op->klen, num, n, NUM_ROOM);
		if (ne == NULL) {
			resp_put_errorz(out, "ERR out of memory");
			return;
		}
		if (e != NULL) {
			ne->expire = e->expire; /* INCR keeps the TTL */
			free(e);
			st->slots[i].e = ne;
		} else if (!insert(st, op->hash, ne)) {
			free(ne);
			resp_put_errorz(out, "ERR out of memory");
			return;
		}
	}
	resp_put_int(out, v);
}

static void run_op(rs_store *st, const rs_op *op, const char *key,
    const char *val, int64_t now, resp_buf *out)
{
	size_t i;
	switch (op->code) {
	case RS_OP_GET:
		i = lookup(st, op->hash, key, op->klen, now);
		if (i == NONE) {
			resp_put_null(out);
		} else {
			const rs_entry *e = st->slots[i].e;
			resp_put_bulk(out, e->kv + e->klen, e->vlen);
		}
		break;
	case RS_OP_SET:
		op_set(st, op, key, val, now, out);
		break;
	case RS_OP_DEL:
		i = lookup(st, op->hash, key, op->klen, now);
		if (i != NONE)
			remove_at(st, i);
		resp_buf_put(out, i != NONE ? ":1\r\n" : ":0\r\n", 4);
		break;
	case RS_OP_EXISTS:
		i = lookup(st, op->hash, key, op->klen, now);
		resp_buf_put(out, i != NONE ? ":1\r\n" : ":0\r\n", 4);
		break;
	case RS_OP_INCRBY:
		op_incrby(st, op, key, now, out);
		break;
	case RS_OP_DBSIZE:
		resp_put_int(out, (int64_t)st->count);
		break;
	case RS_OP_FLUSH:
		free_all(st);
		resp_put_simple(out, "OK", 2);
		break;
	default:
		resp_put_errorz(out, "ERR unknown operation");
		break;
	}
}

bool rs_store_exec(
    rs_store *st, const void *ops, size_t len, int64_t now_ms, resp_buf *out)
{
	const char *p = ops, *end = p + len;
	rs_ops_hdr h;
	if (len < sizeof(h))
		return false;
	memcpy(&h, p, sizeof(h));
	p += sizeof(h);
	if (h.nops > (len - sizeof(h)) / sizeof(rs_op))
		return false;
	size_t base = out->len;
	size_t lens_at = base + sizeof(rs_replies_hdr);
	if (!resp_buf_reserve(out, sizeof(rs_replies_hdr) + 4 * (size_t)h.nops))
		return false;
	out->len = lens_at + 4 * (size_t)h.nops;
	for (uint32_t k = 0; k < h.nops; k++) {
		rs_op op;
		const char *key;
		if (!rs_op_next(&p, end, &op, &key))
			goto bad;
		size_t before = out->len;
		run_op(st, &op, key, key + op.klen, now_ms, out);
		if (out->oom)
			return false;
		uint32_t n = (uint32_t)(out->len - before);
		memcpy(out->p + lens_at + 4 * (size_t)k, &n, 4);
	}
	rs_replies_hdr rh = {.n = h.nops};
	memcpy(out->p + base, &rh, sizeof(rh));
	return true;
bad:
	out->len = base;
	return false;
}

size_t rs_store_sweep(rs_store *st, int64_t now_ms, size_t budget)
{
	size_t removed = 0;
	if (st->expiring == 0 || st->slots == NULL)
		return 0;
	size_t i = st->cursor & st->mask;
	while (budget-- > 0 && st->expiring > 0) {
		rs_entry *e = st->slots[i].e;
		if (e != NULL && e->expire != 0 && now_ms >= e->expire) {
			remove_at(st, i); /* slot i again: a key moved in */
			removed++;
			continue;
		}
		i = (i + 1) & st->mask;
	}
	st->cursor = i;
	return removed;
}

/* ---- the state of keys, for replication --------------------------------- */

/* Appends an operation with its key and value, padded (resp_ops.h). */
static bool put_op(
    resp_buf *out, const rs_op *op, const char *key, const char *val)
{
	size_t sz = rs_op_size(op->klen, op->vlen);
	if (!resp_buf_reserve(out, sz))
		return false;
	char *p = out->p + out->len;
	memset(p, 0, sz);
	memcpy(p, op, sizeof(*op));
	memcpy(p + sizeof(*op), key, op->klen);
	if (op->vlen > 0)
		memcpy(p + sizeof(*op) + op->klen, val, op->vlen);
	out->len += sz;
	return true;
}

/* Appends to `out` an operation that makes a key what it is in `st` now:
 * a SET of its value with its remaining time to live, or a DEL. */
static void put_state(rs_store *st, uint64_t h, const char *key, uint32_t klen,
    int64_t now, resp_buf *out, uint32_t *nops)
{
	size_t i = lookup(st, h, key, klen, now);
	const rs_entry *e = i != NONE ? st->slots[i].e : NULL;
	rs_op op = {.code = e != NULL ? RS_OP_SET : RS_OP_DEL,
	    .klen = klen,
	    .vlen = e != NULL ? e->vlen : 0,
	    .hash = h};
	if (e != NULL && e->expire != 0)
		op.arg = e->expire > now ? e->expire - now : 1;
	if (put_op(out, &op, key, e != NULL ? e->kv + e->klen : NULL))
		(*nops)++;
}

/* Starts a batch in `out`; its header is written by end_batch. */
static size_t begin_batch(resp_buf *out)
{
	size_t at = out->len;
	rs_ops_hdr h = {0};
	resp_buf_put(out, &h, sizeof(h));
	return at;
}

static void end_batch(resp_buf *out, size_t at, uint32_t nops)
{
	if (out->oom)
		return;
	rs_ops_hdr h = {.nops = nops};
	memcpy(out->p + at, &h, sizeof(h));
}

bool rs_store_state(rs_store *st, const void *ops, size_t len, int64_t now_ms,
    resp_buf *out, uint32_t *nwrites)
{
	const char *p = ops, *end = p + len;
	rs_ops_hdr h;
	*nwrites = 0;
	if (len < sizeof(h))
		return false;
	memcpy(&h, p, sizeof(h));
	p += sizeof(h);
	size_t at = begin_batch(out);
	uint32_t n = 0;
	for (uint32_t k = 0; k < h.nops; k++) {
		rs_op op;
		const char *key;
		if (!rs_op_next(&p, end, &op, &key))
			return false;
		switch (op.code) {
		case RS_OP_SET:
		case RS_OP_DEL:
		case RS_OP_INCRBY:
			put_state(st, op.hash, key, op.klen, now_ms, out, &n);
			break;
		case RS_OP_FLUSH:
			if (resp_buf_reserve(out, sizeof(rs_op))) {
				rs_op f = {.code = RS_OP_FLUSH};
				resp_buf_put(out, &f, sizeof(f));
				n++;
			}
			break;
		default:
			break; /* reads change nothing */
		}
	}
	end_batch(out, at, n);
	*nwrites = n;
	return !out->oom;
}

bool rs_store_dump(rs_store *st, size_t *cursor, int64_t now_ms,
    size_t max_bytes, resp_buf *out)
{
	size_t at = begin_batch(out);
	uint32_t n = 0;
	size_t i = *cursor;
	size_t nslots = st->slots != NULL ? st->mask + 1 : 0;
	for (; i < nslots && out->len - at < max_bytes && !out->oom; i++) {
		const rs_entry *e = st->slots[i].e;
		if (e == NULL || (e->expire != 0 && now_ms >= e->expire))
			continue;
		/* Not lookup: the walk must not move slots under it. */
		rs_op op = {.code = RS_OP_SET,
		    .klen = e->klen,
		    .vlen = e->vlen,
		    .hash = st->slots[i].hash};
		if (e->expire != 0)
			op.arg = e->expire - now_ms;
		if (!put_op(out, &op, e->kv, e->kv + e->klen))
			break;
		n++;
	}
	end_batch(out, at, n);
	*cursor = i;
	return i >= nslots;
}

void rs_store_clear(rs_store *st)
{
	free_all(st);
}
