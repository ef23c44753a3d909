/*
 * Budgeted decoding of wire messages. See codec.h for the contract.
 */
#include "codec.h"

#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/troupe.h"

/* A decode allocates from an arena: a chain of a few big blocks, freed
 * at once with the message. One malloc per field (what protobuf-c does
 * with a plain allocator) was the largest cost of the receive path.
 *
 * The budget is charged per allocation exactly as if every allocation
 * were its own block with a header (size + sizeof(hdr)), so a given
 * budget accepts the same messages whatever the block sizes. Each
 * allocation does carry that header: it points back to the arena, which
 * is how tr__pb_free finds the blocks from the message alone. New blocks
 * are never larger than what is left of the budget (or the one
 * allocation that needs more), and a block is only started when an
 * allocation does not fit in the previous one, whose unused tail is
 * smaller than that allocation; so what a decode makes the process
 * allocate is at most about twice the budget (the spare block below is
 * memory already held, of at most CACHE_MAX bytes). */
typedef union hdr {
	struct arena *arena;
	max_align_t align;
} hdr;

#define ALIGN_ (sizeof(hdr)) /* a power of two: max_align_t's size */
#define FIRST_MIN 1024u      /* bytes of the smallest first block */
#define FIRST_PER_BYTE 4u    /* first block: this many per input byte */

typedef struct block {
	struct block *next;
	size_t cap; /* bytes after the block header */
	max_align_t align;
} block;

/* One spare first block, kept from the last arena freed: a frame's decode
 * would otherwise malloc a block of a few hundred KiB and free it again,
 * which glibc serves with fresh mappings or trims back to the kernel,
 * paying page faults and TLB shootdowns for every frame. One slot suits
 * the node's single receive path; the exchange makes it safe from any
 * thread, and a block larger than CACHE_MAX is never kept. */
#define CACHE_MAX (4u * 1024u * 1024u)
static _Atomic(block *) spare;

/* The state of one decode, at the start of its first block. */
typedef struct arena {
	block *blocks;    /* the first block, which holds the arena; the
	                   * others are chained behind it */
	char *cur, *end;  /* free space in the newest block */
	size_t left;      /* budget not yet charged */
	size_t next_size; /* payload bytes of the next block */
} arena;

static size_t round_up(size_t n)
{
	return (n + ALIGN_ - 1) & ~(size_t)(ALIGN_ - 1);
}

/* A new block of at least `need` bytes, sized up to next_size but never
 * past what is left of the budget. */
static bool arena_grow(arena *a, size_t need)
{
	size_t size = a->next_size;
	if (size > a->left)
		size = a->left;
	if (size < need)
		size = need;
	if (size > SIZE_MAX - sizeof(block))
		return false;
	block *b = malloc(sizeof(block) + size);
	if (b == NULL)
		return false;
	b->cap = size;
	/* Behind the first block, which holds the arena and goes last. */
	b->next = a->blocks->next;
	a->blocks->next = b;
	a->cur = (char *)(b + 1);
	a->end = a->cur + size;
	if (a->next_size <= SIZE_MAX / 2)
		a->next_size *= 2;
	return true;
}

static void *charge(void *data, size_t size)
{
	arena *a = data;

	if (a == NULL || size > SIZE_MAX - 2 * ALIGN_)
		return NULL;
	size_t cost = size + sizeof(hdr);
	if (cost > a->left)
		return NULL;
	size_t need = round_up(cost);
	if ((size_t)(a->end - a->cur) < need && !arena_grow(a, need))
		return NULL;
	a->left -= cost;
	hdr *h = (hdr *)a->cur;
	a->cur += need;
	h->arena = a;
	return h + 1;
}

static void release(void *data, void *p)
{
	(void)data;
	(void)p;
	/* Nothing: blocks go all at once in arena_free. Nor are bytes
	 * credited back: the budget bounds everything one decode
	 * allocates, so a message that repeats a field to make protobuf-c
	 * free and reallocate it gains nothing. */
}

/* A new arena with a first block sized for `len` input bytes (or the
 * spare block, when it is large enough). */
static arena *arena_new(size_t len, size_t budget_bytes)
{
	size_t first = len <= (SIZE_MAX - FIRST_MIN) / FIRST_PER_BYTE
	                   ? FIRST_PER_BYTE * len + FIRST_MIN
	                   : SIZE_MAX;
	if (first > budget_bytes)
		first = budget_bytes;
	first = round_up(first);
	size_t head = round_up(sizeof(block) + sizeof(arena)) - sizeof(block);
	if (first > SIZE_MAX - head - sizeof(block))
		return NULL;
	/* Acquire: pairs with the exchange in arena_free, so the block's
	 * last user's writes happen before ours. */
	block *b = atomic_exchange_explicit(&spare, NULL, memory_order_acquire);
	if (b != NULL && b->cap < head + first) {
		free(b);
		b = NULL;
	}
	if (b == NULL) {
		b = malloc(sizeof(block) + head + first);
		if (b == NULL)
			return NULL;
		b->cap = head + first;
	}
	b->next = NULL;
	arena *a = (arena *)(b + 1);
	a->blocks = b;
	a->cur = (char *)(b + 1) + head;
	a->end = (char *)(b + 1) + b->cap;
	a->left = budget_bytes;
	a->next_size = first > FIRST_MIN ? first : FIRST_MIN;
	return a;
}

static void arena_free(arena *a)
{
	block *b = a->blocks->next;
	while (b != NULL) {
		block *nx = b->next;
		free(b);
		b = nx;
	}
	b = a->blocks;
	if (b->cap <= CACHE_MAX)
		/* Release: the next owner of ours sees what we wrote in it;
		 * acquire: what the last user wrote in the block we get back
		 * happens before our free of it. */
		b = atomic_exchange_explicit(&spare, b, memory_order_acq_rel);
	free(b);
}

size_t tr__decode_budget(size_t len)
{
	if (len > (SIZE_MAX - TR__DECODE_SLACK) / TR__DECODE_FACTOR)
		return SIZE_MAX;
	return TR__DECODE_FACTOR * len + TR__DECODE_SLACK;
}

ProtobufCMessage *tr__pb_decode(const ProtobufCMessageDescriptor *d,
    const uint8_t *buf, size_t len, size_t budget_bytes)
{
	static const uint8_t empty[1];

	if (d == NULL || (buf == NULL && len > 0) || budget_bytes == 0)
		return NULL;
	/* protobuf-c reads nothing for len 0, but give it a valid pointer
	 * rather than rely on that. */
	if (buf == NULL)
		buf = empty;
	arena *ar = arena_new(len, budget_bytes);
	if (ar == NULL)
		return NULL;
	ProtobufCAllocator a = {charge, release, ar};
	ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, buf);
	if (m == NULL)
		arena_free(ar);
	return m;
}

void tr__pb_free(ProtobufCMessage *m)
{
	/* The message itself came from the arena, behind a header that
	 * names it; everything it points to is in the same blocks. */
	if (m != NULL)
		arena_free(((hdr *)m - 1)->arena);
}

int tr__pb_encode(uint8_t **buf, size_t *len, const ProtobufCMessage *m)
{
	size_t n;
	uint8_t *p;

	if (buf == NULL || len == NULL || m == NULL)
		return TR_EINVAL;
	n = protobuf_c_message_get_packed_size(m);
	/* malloc(0) may return NULL; callers test the pointer, not n. */
	p = malloc(n > 0 ? n : 1);
	if (p == NULL)
		return TR_ENOMEM;
	if (protobuf_c_message_pack(m, p) != n) {
		/* Cannot happen for a message protobuf-c sized itself; treat
		 * it as a caller's invalid message rather than send junk. */
		free(p);
		return TR_EINVAL;
	}
	*buf = p;
	*len = n;
	return TR_OK;
}

/* Whether an envelope can be acted on by this build: proto3 enums are
 * open, so protobuf-c hands over any number a newer (or hostile) peer put
 * there, and the node core must never switch on an unknown control. */
static bool envelope_ok(const Troupe__Wire__Envelope *e)
{
	return e != NULL &&
	       protobuf_c_enum_descriptor_get_value(
	           &troupe__wire__control__descriptor, (int)e->control) !=
	           NULL &&
	       (e->n_more == 0 ||
	           e->control == TROUPE__WIRE__CONTROL__CONTROL_NONE ||
	           e->control == TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND);
}

static bool frame_ok(const Troupe__Wire__Frame *f)
{
	switch (f->body_case) {
	case TROUPE__WIRE__FRAME__BODY_HELLO:
		return f->hello != NULL;
	case TROUPE__WIRE__FRAME__BODY_PROOF:
		return f->proof != NULL;
	case TROUPE__WIRE__FRAME__BODY_REJECT:
		return f->reject != NULL;
	case TROUPE__WIRE__FRAME__BODY_ACK:
		return f->ack != NULL;
	case TROUPE__WIRE__FRAME__BODY_BATCH:
		if (f->batch == NULL)
			return false;
		for (size_t i = 0; i < f->batch->n_envelopes; i++)
			if (!envelope_ok(f->batch->envelopes[i]))
				return false;
		return true;
	default:
		/* No body, or a body added by a newer minor that this
		 * build cannot handle. */
		return false;
	}
}

/* ---- the hand-written Batch decoder -------------------------------------- */

/* Nearly every frame is a Batch, and protobuf-c's generic unpack (its walk
 * over the descriptors, its scan of every field into temporary slabs) was
 * most of the receive path's CPU. This decoder handles a Batch frame in
 * the canonical form every encoder writes (a Frame holding only its batch,
 * every field of an Envelope or Pid at most once and in field-number
 * order, no unknown fields) and builds the very structs protobuf-c would,
 * in the same arena, with the same per-allocation charges for the
 * structs, strings, bytes and the array of envelopes. Anything else is
 * left to protobuf-c (FAST_NO), so odd but valid encodings still decode
 * as protobuf says; FAST_FAIL is the budget or memory running out. */
enum { FAST_OK, FAST_NO, FAST_FAIL };

/* A varint of at most ten bytes, as protobuf-c reads them. */
static bool get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 70 && p < end; shift += 7) {
		uint8_t c = *p++;
		r |= (uint64_t)(c & 0x7f) << shift;
		if ((c & 0x80) == 0) {
			*pp = p;
			*v = r;
			return true;
		}
	}
	return false;
}

/* protobuf-c reads a tag or a length prefix of at most five bytes (a
 * longer one, even a valid varint, fails its unpack) and takes no length
 * over INT_MAX: the fast path leaves such input to protobuf-c (FAST_NO),
 * so that both accept the same frames. */
#define PB_PREFIX_MAX 5

/* The next field's number (1..15, else 0) and wire type. */
static unsigned get_tag(const uint8_t **pp, const uint8_t *end, unsigned *wt)
{
	const uint8_t *start = *pp;
	uint64_t tag;
	if (!get_varint(pp, end, &tag) || *pp - start > PB_PREFIX_MAX ||
	    (tag >> 3) > 15)
		return 0;
	*wt = (unsigned)(tag & 7);
	return (unsigned)(tag >> 3);
}

/* A length-delimited field's extent, checked against `end`. */
static bool get_len(const uint8_t **pp, const uint8_t *end, size_t *len)
{
	const uint8_t *start = *pp;
	uint64_t v;
	if (!get_varint(pp, end, &v) || *pp - start > PB_PREFIX_MAX ||
	    v > INT_MAX || v > (uint64_t)(end - *pp))
		return false;
	*len = (size_t)v;
	return true;
}

static int get_string(
    arena *a, const uint8_t **pp, const uint8_t *end, char **out)
{
	size_t len;
	if (!get_len(pp, end, &len))
		return FAST_NO;
	char *s = charge(a, len + 1);
	if (s == NULL)
		return FAST_FAIL;
	memcpy(s, *pp, len);
	s[len] = '\0';
	*pp += len;
	*out = s;
	return FAST_OK;
}

static int fast_pid(
    arena *a, const uint8_t *p, const uint8_t *end, Troupe__Wire__Pid **out)
{
	Troupe__Wire__Pid *w = charge(a, sizeof(*w));
	if (w == NULL)
		return FAST_FAIL;
	troupe__wire__pid__init(w);
	unsigned last = 0, f, wt;
	while (p < end) {
		uint64_t v;
		if ((f = get_tag(&p, end, &wt)) <= last || f > 4)
			return FAST_NO;
		last = f;
		if (f == 1) {
			int r;
			if (wt != 2 ||
			    (r = get_string(a, &p, end, &w->node)) != FAST_OK)
				return wt != 2 ? FAST_NO : r;
			continue;
		}
		if (wt != 0 || !get_varint(&p, end, &v))
			return FAST_NO;
		if (f == 2)
			w->incarnation = v;
		else if (f == 3)
			w->slot = (uint32_t)v;
		else
			w->gen = (uint32_t)v;
	}
	*out = w;
	return FAST_OK;
}

/* Envelope.more, repeated bytes: every entry from `p` (at the first tag)
 * to `end`, in an array sized by a first pass, as protobuf-c does; the
 * entries point into the frame (codec.h), so a run costs no copy. */
static int fast_more(
    arena *a, const uint8_t *p, const uint8_t *end, Troupe__Wire__Envelope *e)
{
	size_t n = 0, len;
	unsigned wt;
	for (const uint8_t *q = p; q < end; n++) {
		if (get_tag(&q, end, &wt) != 12 || wt != 2 ||
		    !get_len(&q, end, &len))
			return FAST_NO;
		q += len;
	}
	if (n > SIZE_MAX / sizeof(*e->more))
		return FAST_FAIL;
	e->more = charge(a, n * sizeof(*e->more));
	if (e->more == NULL)
		return FAST_FAIL;
	for (size_t i = 0; i < n; i++) {
		(void)get_tag(&p, end, &wt);
		(void)get_len(&p, end, &len);
		/* Into the frame, not copied: see codec.h. */
		e->more[i].len = len;
		e->more[i].data = len > 0 ? (uint8_t *)p : NULL;
		p += len;
	}
	e->n_more = n;
	return FAST_OK;
}

static int32_t unzigzag32(uint64_t v)
{
	uint32_t u = (uint32_t)v;
	return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}

static int fast_env(arena *a, const uint8_t *p, const uint8_t *end,
    Troupe__Wire__Envelope **out)
{
	Troupe__Wire__Envelope *e = charge(a, sizeof(*e));
	if (e == NULL)
		return FAST_FAIL;
	troupe__wire__envelope__init(e);
	unsigned last = 0, f, wt;
	while (p < end) {
		uint64_t v;
		size_t len;
		int r = FAST_OK;
		const uint8_t *at = p;
		if ((f = get_tag(&p, end, &wt)) <= last || f > 12)
			return FAST_NO;
		last = f;
		switch (f) {
		case 12:
			/* The last field: the rest must be its entries. */
			if (wt != 2)
				return FAST_NO;
			r = fast_more(a, at, end, e);
			p = end;
			break;
		case 1:
		case 2:
		case 4:
			if (wt != 2 || !get_len(&p, end, &len))
				return FAST_NO;
			if (f == 4) {
				if (len > 0) {
					e->payload.data = charge(a, len);
					if (e->payload.data == NULL)
						return FAST_FAIL;
					memcpy(e->payload.data, p, len);
				}
				e->payload.len = len;
			} else {
				r = fast_pid(
				    a, p, p + len, f == 1 ? &e->to : &e->from);
			}
			p += len;
			break;
		case 9:
		case 10:
			if (wt != 2)
				return FAST_NO;
			r = get_string(
			    a, &p, end, f == 9 ? &e->reason_text : &e->name);
			break;
		default:
			if (wt != 0 || !get_varint(&p, end, &v))
				return FAST_NO;
			switch (f) {
			case 3:
				e->type = (uint32_t)v;
				break;
			case 5:
				e->ref = v;
				break;
			case 6:
				e->flags = (uint32_t)v;
				break;
			case 7:
				e->control =
				    (Troupe__Wire__Control)(int32_t)(uint32_t)v;
				break;
			case 8:
				e->reason = unzigzag32(v);
				break;
			default:
				e->error = unzigzag32(v);
				break;
			}
			break;
		}
		if (r != FAST_OK)
			return r;
	}
	*out = e;
	return FAST_OK;
}

static int fast_frame(
    arena *a, const uint8_t *buf, size_t len, Troupe__Wire__Frame **out)
{
	const uint8_t *p = buf + 1, *end = buf + len;
	size_t blen, n = 0;
	/* Frame.batch (field 4, length-delimited), and nothing after it. */
	if (len == 0 || buf[0] != 0x22 || !get_len(&p, end, &blen) ||
	    blen != (size_t)(end - p))
		return FAST_NO;
	/* Count the envelopes first: protobuf-c sizes the array so. */
	for (const uint8_t *q = p; q < end; n++) {
		unsigned wt;
		size_t el;
		if (get_tag(&q, end, &wt) != 1 || wt != 2 ||
		    !get_len(&q, end, &el))
			return FAST_NO;
		q += el;
	}
	Troupe__Wire__Frame *f = charge(a, sizeof(*f));
	Troupe__Wire__Batch *b = f != NULL ? charge(a, sizeof(*b)) : NULL;
	if (b == NULL)
		return FAST_FAIL;
	troupe__wire__frame__init(f);
	troupe__wire__batch__init(b);
	if (n > 0) {
		if (n > SIZE_MAX / sizeof(*b->envelopes))
			return FAST_FAIL;
		b->envelopes = charge(a, n * sizeof(*b->envelopes));
		if (b->envelopes == NULL)
			return FAST_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned wt;
		size_t el;
		(void)get_tag(&p, end, &wt);
		(void)get_len(&p, end, &el);
		int r = fast_env(a, p, p + el, &b->envelopes[i]);
		if (r != FAST_OK)
			return r;
		p += el;
	}
	b->n_envelopes = n;
	f->body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f->batch = b;
	*out = f;
	return FAST_OK;
}

Troupe__Wire__Frame *tr__frame_decode(
    const uint8_t *buf, size_t len, size_t budget_bytes)
{
	if (buf != NULL && len > 0 && buf[0] == 0x22 && budget_bytes > 0) {
		arena *a = arena_new(len, budget_bytes);
		if (a == NULL)
			return NULL;
		Troupe__Wire__Frame *g = NULL;
		int r = fast_frame(a, buf, len, &g);
		if (r == FAST_OK && frame_ok(g))
			return g;
		arena_free(a);
		if (r != FAST_NO)
			return NULL;
	}
	Troupe__Wire__Frame *f = (Troupe__Wire__Frame *)tr__pb_decode(
	    &troupe__wire__frame__descriptor, buf, len, budget_bytes);

	if (f != NULL && !frame_ok(f)) {
		tr__frame_free(f);
		return NULL;
	}
	return f;
}

void tr__frame_free(Troupe__Wire__Frame *f)
{
	tr__pb_free((ProtobufCMessage *)f);
}

int tr__frame_encode(uint8_t **buf, size_t *len, const Troupe__Wire__Frame *f)
{
	return tr__pb_encode(buf, len, (const ProtobufCMessage *)f);
}

/* ---- the hand-written Envelope encoder ----------------------------------- */

/* The rules of protobuf-c 1.4 for proto3 fields, which this must match:
 * fields in field-number order; a scalar equal to 0, a NULL or empty
 * string, empty bytes and a NULL message are left out; a non-NULL message
 * is written even when empty; int32 and enums are sign-extended to 64
 * bits, sint32 zigzag-encoded. */

#define WT_VARINT 0u
#define WT_LEN 2u

size_t tr__varint_size(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t tr__varint_put(uint8_t *p, uint64_t v)
{
	size_t i = 0;
	while (v >= 0x80) {
		p[i++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[i++] = (uint8_t)v;
	return i;
}

static uint8_t *vput(uint8_t *p, uint64_t v)
{
	return p + tr__varint_put(p, v);
}

static uint64_t zigzag32(int32_t v)
{
	return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

static uint64_t int32_wire(int32_t v)
{
	return (uint64_t)(int64_t)v; /* negative: ten bytes, as protobuf */
}

/* Tags of fields 1..15 fit in one byte. */
static size_t varint_field_size(uint64_t v)
{
	return v != 0 ? 1 + tr__varint_size(v) : 0;
}

static size_t len_field_size(size_t len)
{
	return 1 + tr__varint_size(len) + len;
}

static size_t str_len(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

static size_t pid_size(const Troupe__Wire__Pid *w)
{
	size_t nl = str_len(w->node);
	return (nl != 0 ? len_field_size(nl) : 0) +
	       varint_field_size(w->incarnation) + varint_field_size(w->slot) +
	       varint_field_size(w->gen);
}

static uint8_t *put_varint_field(uint8_t *p, unsigned field, uint64_t v)
{
	if (v == 0)
		return p;
	*p++ = (uint8_t)(field << 3 | WT_VARINT);
	return vput(p, v);
}

static uint8_t *put_len_field(
    uint8_t *p, unsigned field, const void *data, size_t len)
{
	*p++ = (uint8_t)(field << 3 | WT_LEN);
	p = vput(p, len);
	if (len != 0)
		memcpy(p, data, len);
	return p + len;
}

static uint8_t *put_str_field(uint8_t *p, unsigned field, const char *s)
{
	size_t l = str_len(s);
	return l != 0 ? put_len_field(p, field, s, l) : p;
}

static uint8_t *put_pid_field(
    uint8_t *p, unsigned field, const Troupe__Wire__Pid *w)
{
	if (w == NULL)
		return p;
	*p++ = (uint8_t)(field << 3 | WT_LEN);
	p = vput(p, pid_size(w));
	p = put_str_field(p, 1, w->node);
	p = put_varint_field(p, 2, w->incarnation);
	p = put_varint_field(p, 3, w->slot);
	return put_varint_field(p, 4, w->gen);
}

static bool env_plain(const Troupe__Wire__Envelope *e)
{
	return e->base.n_unknown_fields == 0 &&
	       (e->to == NULL || e->to->base.n_unknown_fields == 0) &&
	       (e->from == NULL || e->from->base.n_unknown_fields == 0);
}

size_t tr__envelope_size(const Troupe__Wire__Envelope *e)
{
	if (!env_plain(e))
		return protobuf_c_message_get_packed_size(&e->base);
	size_t n = 0, l;
	if (e->to != NULL)
		n += len_field_size(pid_size(e->to));
	if (e->from != NULL)
		n += len_field_size(pid_size(e->from));
	n += varint_field_size(e->type);
	if (e->payload.len != 0)
		n += len_field_size(e->payload.len);
	n += varint_field_size(e->ref);
	n += varint_field_size(e->flags);
	n += varint_field_size(int32_wire((int32_t)e->control));
	n += varint_field_size(zigzag32(e->reason));
	if ((l = str_len(e->reason_text)) != 0)
		n += len_field_size(l);
	if ((l = str_len(e->name)) != 0)
		n += len_field_size(l);
	n += varint_field_size(zigzag32(e->error));
	for (size_t i = 0; i < e->n_more; i++)
		n += len_field_size(e->more[i].len);
	return n;
}

size_t tr__envelope_pack(const Troupe__Wire__Envelope *e, uint8_t *out)
{
	if (!env_plain(e))
		return protobuf_c_message_pack(&e->base, out);
	uint8_t *p = out;
	p = put_pid_field(p, 1, e->to);
	p = put_pid_field(p, 2, e->from);
	p = put_varint_field(p, 3, e->type);
	if (e->payload.len != 0)
		p = put_len_field(p, 4, e->payload.data, e->payload.len);
	p = put_varint_field(p, 5, e->ref);
	p = put_varint_field(p, 6, e->flags);
	p = put_varint_field(p, 7, int32_wire((int32_t)e->control));
	p = put_varint_field(p, 8, zigzag32(e->reason));
	p = put_str_field(p, 9, e->reason_text);
	p = put_str_field(p, 10, e->name);
	p = put_varint_field(p, 11, zigzag32(e->error));
	for (size_t i = 0; i < e->n_more; i++)
		p = put_len_field(p, 12, e->more[i].data, e->more[i].len);
	return (size_t)(p - out);
}

/* ---- client endpoint messages -------------------------------------------- */

Troupe__Wire__ClientRequest *tr__client_request_decode(
    const uint8_t *buf, size_t len, size_t budget_bytes)
{
	return (Troupe__Wire__ClientRequest *)tr__pb_decode(
	    &troupe__wire__client_request__descriptor, buf, len, budget_bytes);
}

void tr__client_request_free(Troupe__Wire__ClientRequest *r)
{
	tr__pb_free((ProtobufCMessage *)r);
}

int tr__client_request_encode(
    uint8_t **buf, size_t *len, const Troupe__Wire__ClientRequest *r)
{
	return tr__pb_encode(buf, len, (const ProtobufCMessage *)r);
}

Troupe__Wire__ClientReply *tr__client_reply_decode(
    const uint8_t *buf, size_t len, size_t budget_bytes)
{
	return (Troupe__Wire__ClientReply *)tr__pb_decode(
	    &troupe__wire__client_reply__descriptor, buf, len, budget_bytes);
}

void tr__client_reply_free(Troupe__Wire__ClientReply *r)
{
	tr__pb_free((ProtobufCMessage *)r);
}

int tr__client_reply_encode(
    uint8_t **buf, size_t *len, const Troupe__Wire__ClientReply *r)
{
	return tr__pb_encode(buf, len, (const ProtobufCMessage *)r);
}
