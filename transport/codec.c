/*
 * Budgeted decoding of wire messages. See codec.h for the contract.
 */
#include "codec.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/troupe.h"

/* Every block carries a header in front, charged like the payload, so
 * that the budget bounds real memory; the union keeps the payload at
 * malloc's alignment. */
typedef union hdr {
	size_t size;
	max_align_t align;
} hdr;

/* The state of one decode. It lives on the decoder's stack: protobuf-c
 * uses the allocator's data only while unpack runs (including the frees of
 * a failed unpack). Frees that come later go through `release`, which
 * needs no state. */
typedef struct budget {
	size_t left;
} budget;

static void *charge(void *data, size_t size)
{
	budget *b = data;
	hdr *h;
	size_t cost;

	if (size > SIZE_MAX - sizeof(hdr))
		return NULL;
	cost = size + sizeof(hdr);
	if (b == NULL || cost > b->left)
		return NULL;
	h = malloc(cost);
	if (h == NULL)
		return NULL;
	h->size = cost;
	b->left -= cost;
	return h + 1;
}

static void release(void *data, void *p)
{
	(void)data;
	/* Bytes are not credited back: the budget bounds everything one
	 * decode allocates, so a message that repeats a field to make
	 * protobuf-c free and reallocate it gains nothing. */
	if (p != NULL)
		free((hdr *)p - 1);
}

/* The allocator used to free decoded messages after the decode is over:
 * the same functions, with no budget to credit. */
static ProtobufCAllocator freeing = { charge, release, NULL };

size_t tr__decode_budget(size_t len)
{
	if (len > (SIZE_MAX - TR__DECODE_SLACK) / TR__DECODE_FACTOR)
		return SIZE_MAX;
	return TR__DECODE_FACTOR * len + TR__DECODE_SLACK;
}

ProtobufCMessage *tr__pb_decode(const ProtobufCMessageDescriptor *d,
    const uint8_t *buf, size_t len, size_t budget_bytes)
{
	budget b = { budget_bytes };
	ProtobufCAllocator a = { charge, release, &b };
	static const uint8_t empty[1];

	if (d == NULL || (buf == NULL && len > 0))
		return NULL;
	/* protobuf-c reads nothing for len 0, but give it a valid pointer
	 * rather than rely on that. */
	if (buf == NULL)
		buf = empty;
	return protobuf_c_message_unpack(d, &a, len, buf);
}

void tr__pb_free(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, &freeing);
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
		&troupe__wire__control__descriptor, (int)e->control) != NULL;
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

Troupe__Wire__Frame *tr__frame_decode(const uint8_t *buf, size_t len,
    size_t budget_bytes)
{
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

Troupe__Wire__ClientRequest *tr__client_request_decode(const uint8_t *buf,
    size_t len, size_t budget_bytes)
{
	return (Troupe__Wire__ClientRequest *)tr__pb_decode(
	    &troupe__wire__client_request__descriptor, buf, len, budget_bytes);
}

void tr__client_request_free(Troupe__Wire__ClientRequest *r)
{
	tr__pb_free((ProtobufCMessage *)r);
}

int tr__client_request_encode(uint8_t **buf, size_t *len,
    const Troupe__Wire__ClientRequest *r)
{
	return tr__pb_encode(buf, len, (const ProtobufCMessage *)r);
}

Troupe__Wire__ClientReply *tr__client_reply_decode(const uint8_t *buf,
    size_t len, size_t budget_bytes)
{
	return (Troupe__Wire__ClientReply *)tr__pb_decode(
	    &troupe__wire__client_reply__descriptor, buf, len, budget_bytes);
}

void tr__client_reply_free(Troupe__Wire__ClientReply *r)
{
	tr__pb_free((ProtobufCMessage *)r);
}

int tr__client_reply_encode(uint8_t **buf, size_t *len,
    const Troupe__Wire__ClientReply *r)
{
	return tr__pb_encode(buf, len, (const ProtobufCMessage *)r);
}
