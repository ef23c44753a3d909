/*
 * Fuzz target: the frame decoder of transport/codec.c, differential.
 *
 * tr__frame_decode decodes the usual Batch frame with a hand-written fast
 * path and leaves everything else to protobuf-c; both run under a byte
 * budget, and it refuses what codec.h says (no body, an unknown control,
 * `more` with a control other than NONE and NAMED_SEND). Here the same
 * bytes are also unpacked by protobuf-c's generic decoder with its own
 * allocator, and:
 *
 * - with a budget too large to matter, tr__frame_decode accepts exactly
 *   what protobuf-c accepts and codec.h's validation (written again here,
 *   from the .proto) lets through, and every decoded field is equal;
 * - with the budget of the input (byte 0 picks the node's
 *   tr__decode_budget, a small one, or the handshake's), a frame that
 *   protobuf-c decodes within that budget (tr__pb_decode) and that passes
 *   the validation is accepted, since the fast path charges a subset of
 *   what protobuf-c charges (it allocates no scan slabs and copies no run
 *   payloads); a frame accepted under a budget is one accepted without;
 * - every Envelope decoded, valid or not, is packed by tr__envelope_size
 *   and tr__envelope_pack exactly as protobuf-c packs it.
 *
 * Input: byte 0 chooses the budget; the rest is the frame.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_codec: %s:%d: %s\n", __FILE__,   \
			    __LINE__, #c);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

#define HUGE_BUDGET ((size_t)1 << 40)

/* codec.h's validation, from the .proto: a body is set; controls are
 * CONTROL_NONE (0) .. CONTROL_MEMBERS (13, minor 1); `more` only with NONE
 * and NAMED_SEND (10). */
static bool valid(const Troupe__Wire__Frame *f)
{
	switch (f->body_case) {
	case TROUPE__WIRE__FRAME__BODY_HELLO:
	case TROUPE__WIRE__FRAME__BODY_PROOF:
	case TROUPE__WIRE__FRAME__BODY_REJECT:
	case TROUPE__WIRE__FRAME__BODY_ACK:
		return f->hello != NULL; /* the union's one pointer */
	case TROUPE__WIRE__FRAME__BODY_BATCH:
		if (f->batch == NULL)
			return false;
		for (size_t i = 0; i < f->batch->n_envelopes; i++) {
			const Troupe__Wire__Envelope *e =
			    f->batch->envelopes[i];
			int c = (int)e->control;
			if (c < 0 || c > TROUPE__WIRE__CONTROL__CONTROL_MEMBERS)
				return false;
			if (e->n_more != 0 && c != 0 && c != 10)
				return false;
		}
		return true;
	default:
		return false;
	}
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static bool bin_eq(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static bool unknown_eq(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
	if (a->n_unknown_fields != b->n_unknown_fields)
		return false;
	for (unsigned i = 0; i < a->n_unknown_fields; i++) {
		const ProtobufCMessageUnknownField *x = &a->unknown_fields[i];
		const ProtobufCMessageUnknownField *y = &b->unknown_fields[i];
		if (x->tag != y->tag || x->wire_type != y->wire_type ||
		    x->len != y->len ||
		    (x->len != 0 && memcmp(x->data, y->data, x->len) != 0))
			return false;
	}
	return true;
}

static void pid_check(const Troupe__Wire__Pid *a, const Troupe__Wire__Pid *b)
{
	CHECK((a == NULL) == (b == NULL));
	if (a == NULL)
		return;
	CHECK(str_eq(a->node, b->node));
	CHECK(a->incarnation == b->incarnation);
	CHECK(a->slot == b->slot);
	CHECK(a->gen == b->gen);
	CHECK(unknown_eq(&a->base, &b->base));
}

static void env_check(
    const Troupe__Wire__Envelope *a, const Troupe__Wire__Envelope *b)
{
	pid_check(a->to, b->to);
	pid_check(a->from, b->from);
	CHECK(a->type == b->type);
	CHECK(bin_eq(a->payload, b->payload));
	CHECK(a->ref == b->ref);
	CHECK(a->flags == b->flags);
	CHECK(a->control == b->control);
	CHECK(a->reason == b->reason);
	CHECK(str_eq(a->reason_text, b->reason_text));
	CHECK(str_eq(a->name, b->name));
	CHECK(a->error == b->error);
	CHECK(a->n_more == b->n_more);
	for (size_t i = 0; i < a->n_more; i++)
		CHECK(bin_eq(a->more[i], b->more[i]));
	CHECK(unknown_eq(&a->base, &b->base));
}

/* Every field of two decodes of the same bytes is equal. */
static void frame_check(
    const Troupe__Wire__Frame *a, const Troupe__Wire__Frame *b)
{
	CHECK(a->body_case == b->body_case);
	CHECK(unknown_eq(&a->base, &b->base));
	switch (a->body_case) {
	case TROUPE__WIRE__FRAME__BODY_HELLO: {
		const Troupe__Wire__Hello *x = a->hello, *y = b->hello;
		CHECK(x->major == y->major && x->minor == y->minor);
		CHECK((x->node == NULL) == (y->node == NULL));
		if (x->node != NULL) {
			CHECK(str_eq(x->node->name, y->node->name));
			CHECK(x->node->incarnation == y->node->incarnation);
			CHECK(unknown_eq(&x->node->base, &y->node->base));
		}
		CHECK(x->n_listen == y->n_listen);
		for (size_t i = 0; i < x->n_listen; i++)
			CHECK(str_eq(x->listen[i], y->listen[i]));
		CHECK(bin_eq(x->nonce, y->nonce));
		CHECK(bin_eq(x->proof, y->proof));
		CHECK(bin_eq(x->echo, y->echo));
		CHECK(unknown_eq(&x->base, &y->base));
		break;
	}
	case TROUPE__WIRE__FRAME__BODY_PROOF:
		CHECK(bin_eq(a->proof->proof, b->proof->proof));
		CHECK(unknown_eq(&a->proof->base, &b->proof->base));
		break;
	case TROUPE__WIRE__FRAME__BODY_ACK:
		CHECK(bin_eq(a->ack->proof, b->ack->proof));
		CHECK(unknown_eq(&a->ack->base, &b->ack->base));
		break;
	case TROUPE__WIRE__FRAME__BODY_REJECT:
		CHECK(str_eq(a->reject->reason, b->reject->reason));
		CHECK(a->reject->code == b->reject->code);
		CHECK(unknown_eq(&a->reject->base, &b->reject->base));
		break;
	case TROUPE__WIRE__FRAME__BODY_BATCH:
		CHECK(a->batch->n_envelopes == b->batch->n_envelopes);
		for (size_t i = 0; i < a->batch->n_envelopes; i++)
			env_check(
			    a->batch->envelopes[i], b->batch->envelopes[i]);
		CHECK(unknown_eq(&a->batch->base, &b->batch->base));
		break;
	default:
		break;
	}
}

/* The hand-written Envelope encoder against protobuf-c's. */
static void pack_check(const Troupe__Wire__Frame *f)
{
	if (f->body_case != TROUPE__WIRE__FRAME__BODY_BATCH || f->batch == NULL)
		return;
	for (size_t i = 0; i < f->batch->n_envelopes; i++) {
		const Troupe__Wire__Envelope *e = f->batch->envelopes[i];
		size_t n = protobuf_c_message_get_packed_size(&e->base);
		CHECK(tr__envelope_size(e) == n);
		uint8_t *x = malloc(n + 1), *y = malloc(n + 1);
		CHECK(x != NULL && y != NULL);
		CHECK(protobuf_c_message_pack(&e->base, x) == n);
		CHECK(tr__envelope_pack(e, y) == n);
		CHECK(n == 0 || memcmp(x, y, n) == 0);
		free(x);
		free(y);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const uint8_t *buf = data + 1;
	size_t len = size - 1;
	size_t budget;
	switch (sel & 3) {
	case 0:
		budget = tr__decode_budget(len); /* what the node uses */
		break;
	case 1:
		budget = ((size_t)(sel >> 2) + 1) * 64; /* 64 B .. 4 KiB */
		break;
	case 2:
		budget = 4096 + (size_t)(sel >> 2) * 1024;
		break;
	default:
		budget = HUGE_BUDGET;
		break;
	}

	/* protobuf-c alone, with malloc. */
	Troupe__Wire__Frame *g =
	    (Troupe__Wire__Frame *)protobuf_c_message_unpack(
	        &troupe__wire__frame__descriptor, NULL, len,
	        len > 0 ? buf : (const uint8_t *)"");
	bool ok = g != NULL && valid(g);

	Troupe__Wire__Frame *big = tr__frame_decode(buf, len, HUGE_BUDGET);
	CHECK((big != NULL) == ok);
	if (big != NULL) {
		frame_check(g, big);
		pack_check(big);
	}

	Troupe__Wire__Frame *fb = tr__frame_decode(buf, len, budget);
	Troupe__Wire__Frame *gb = (Troupe__Wire__Frame *)tr__pb_decode(
	    &troupe__wire__frame__descriptor, buf, len, budget);
	if (gb != NULL) {
		CHECK(g != NULL);
		frame_check(g, gb);
		if (valid(gb))
			CHECK(fb != NULL);
	}
	if (fb != NULL) {
		CHECK(ok);
		frame_check(g, fb);
	}
	if (g != NULL)
		pack_check(g);

	tr__frame_free(fb);
	tr__pb_free((ProtobufCMessage *)gb);
	tr__frame_free(big);
	if (g != NULL)
		protobuf_c_message_free_unpacked(&g->base, NULL);
	return 0;
}
