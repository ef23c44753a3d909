/*
 * The budgeted codec: round trips of every frame kind and every control,
 * and hostile input (truncations, byte flips, budgets, lying lengths) that
 * must never crash or leak (the suite also runs under ASan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "troupe/troupe.h"

#define BIG (1u << 24) /* a budget nothing here comes near */

static uint64_t rng = 0x2545f4914f6cdd1du;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- building messages --------------------------------------------------- */

/* Storage for one Batch of envelopes built on the stack of a test. */
struct batch_buf {
	Troupe__Wire__Pid to[16], from[16];
	Troupe__Wire__Envelope env[16];
	Troupe__Wire__Envelope *envp[16];
	uint8_t payload[16][40];
	Troupe__Wire__Batch batch;
};

/* Envelope i: every field set, to values derived from i and `control`. */
static void fill_envelope(struct batch_buf *b, size_t i, int control)
{
	Troupe__Wire__Envelope *e = &b->env[i];

	troupe__wire__pid__init(&b->to[i]);
	troupe__wire__pid__init(&b->from[i]);
	troupe__wire__envelope__init(e);
	b->to[i].node = "alpha";
	b->to[i].incarnation = 1700000000000u + i;
	b->to[i].slot = (uint32_t)(10 + i);
	b->to[i].gen = (uint32_t)(20 + i);
	b->from[i].node = "beta@host";
	b->from[i].incarnation = 42;
	b->from[i].slot = (uint32_t)(30 + i);
	b->from[i].gen = 7;
	for (size_t k = 0; k < sizeof(b->payload[i]); k++)
		b->payload[i][k] = (uint8_t)(i * 31 + k);
	e->to = &b->to[i];
	e->from = &b->from[i];
	e->type = (uint32_t)(1000 + i);
	e->payload.data = b->payload[i];
	e->payload.len = 1 + i; /* includes a 1-byte payload */
	e->ref = UINT64_MAX - i;
	e->flags = 1;
	e->control = (Troupe__Wire__Control)control;
	e->reason = -5 + (int)i; /* negative reasons: sint32 */
	e->reason_text = "noconnection";
	e->name = "registered_name";
	e->error = TR_ENOENT;
	b->envp[i] = e;
}

static void build_batch(struct batch_buf *b, size_t n, int control)
{
	troupe__wire__batch__init(&b->batch);
	for (size_t i = 0; i < n; i++)
		fill_envelope(b, i, control < 0 ? (int)(i % 11) : control);
	b->batch.n_envelopes = n;
	b->batch.envelopes = b->envp;
}

static void check_envelope(
    const Troupe__Wire__Envelope *got, const Troupe__Wire__Envelope *want)
{
	assert_non_null(got);
	assert_non_null(got->to);
	assert_non_null(got->from);
	assert_string_equal(got->to->node, want->to->node);
	assert_int_equal(got->to->incarnation, want->to->incarnation);
	assert_int_equal(got->to->slot, want->to->slot);
	assert_int_equal(got->to->gen, want->to->gen);
	assert_string_equal(got->from->node, want->from->node);
	assert_int_equal(got->from->incarnation, want->from->incarnation);
	assert_int_equal(got->from->slot, want->from->slot);
	assert_int_equal(got->from->gen, want->from->gen);
	assert_int_equal(got->type, want->type);
	assert_int_equal(got->payload.len, want->payload.len);
	assert_memory_equal(
	    got->payload.data, want->payload.data, want->payload.len);
	assert_int_equal(got->ref, want->ref);
	assert_int_equal(got->flags, want->flags);
	assert_int_equal(got->control, want->control);
	assert_int_equal(got->reason, want->reason);
	assert_string_equal(got->reason_text, want->reason_text);
	assert_string_equal(got->name, want->name);
	assert_int_equal(got->error, want->error);
}

/* Encodes `f`, decodes it back with a generous budget, and returns it. */
static Troupe__Wire__Frame *round_trip(
    const Troupe__Wire__Frame *f, uint8_t **bufp, size_t *lenp)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	Troupe__Wire__Frame *g;

	assert_int_equal(tr__frame_encode(&buf, &len, f), TR_OK);
	assert_non_null(buf);
	g = tr__frame_decode(buf, len, tr__decode_budget(len));
	assert_non_null(g);
	if (bufp != NULL) {
		*bufp = buf;
		*lenp = len;
	} else {
		free(buf);
	}
	return g;
}

/* A Hello with every field set, kept in static storage. */
static Troupe__Wire__Frame *hello_frame(void)
{
	static Troupe__Wire__NodeId id;
	static Troupe__Wire__Hello h;
	static Troupe__Wire__Frame f;
	static char *listen[] = {"tcp://10.0.0.1:4000", "ipc:///run/a.ipc"};
	static uint8_t nonce[32], proof[32];

	troupe__wire__node_id__init(&id);
	troupe__wire__hello__init(&h);
	troupe__wire__frame__init(&f);
	for (size_t i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)i;
		proof[i] = (uint8_t)(255 - i);
	}
	id.name = "alpha@host";
	id.incarnation = 1700000000123u;
	h.major = TROUPE__WIRE__VERSION__PROTOCOL_MAJOR;
	h.minor = 3;
	h.node = &id;
	h.n_listen = 2;
	h.listen = listen;
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	h.proof.data = proof;
	h.proof.len = sizeof(proof);
	f.body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f.hello = &h;
	return &f;
}

/* ---- round trips --------------------------------------------------------- */

static void test_hello(void **state)
{
	Troupe__Wire__Frame *f = hello_frame(), *g;

	(void)state;
	g = round_trip(f, NULL, NULL);
	assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_HELLO);
	assert_int_equal(
	    g->hello->major, TROUPE__WIRE__VERSION__PROTOCOL_MAJOR);
	assert_int_equal(g->hello->minor, 3);
	assert_string_equal(g->hello->node->name, "alpha@host");
	assert_int_equal(g->hello->node->incarnation, 1700000000123u);
	assert_int_equal(g->hello->n_listen, 2);
	assert_string_equal(g->hello->listen[0], "tcp://10.0.0.1:4000");
	assert_string_equal(g->hello->listen[1], "ipc:///run/a.ipc");
	assert_int_equal(g->hello->nonce.len, 32);
	assert_memory_equal(g->hello->nonce.data, f->hello->nonce.data, 32);
	assert_int_equal(g->hello->proof.len, 32);
	assert_memory_equal(g->hello->proof.data, f->hello->proof.data, 32);
	tr__frame_free(g);
}

static void test_proof_and_reject(void **state)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT, *g;
	Troupe__Wire__Proof p = TROUPE__WIRE__PROOF__INIT;
	Troupe__Wire__HelloReject r = TROUPE__WIRE__HELLO_REJECT__INIT;
	uint8_t mac[32];

	(void)state;
	memset(mac, 0xab, sizeof(mac));
	p.proof.data = mac;
	p.proof.len = sizeof(mac);
	f.body_case = TROUPE__WIRE__FRAME__BODY_PROOF;
	f.proof = &p;
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_PROOF);
	assert_int_equal(g->proof->proof.len, 32);
	assert_memory_equal(g->proof->proof.data, mac, 32);
	tr__frame_free(g);

	/* An empty Proof is still a Proof: the oneof case is on the wire. */
	p.proof.len = 0;
	p.proof.data = NULL;
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_PROOF);
	assert_int_equal(g->proof->proof.len, 0);
	tr__frame_free(g);

	r.reason = "protocol major 2 not supported";
	f.body_case = TROUPE__WIRE__FRAME__BODY_REJECT;
	f.reject = &r;
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_REJECT);
	assert_string_equal(
	    g->reject->reason, "protocol major 2 not supported");
	tr__frame_free(g);
}

static void test_every_control(void **state)
{
	struct batch_buf b;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT, *g;

	(void)state;
	/* Each control alone... */
	for (int c = 0; c <= TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND; c++) {
		build_batch(&b, 1, c);
		f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
		f.batch = &b.batch;
		g = round_trip(&f, NULL, NULL);
		assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_BATCH);
		assert_int_equal(g->batch->n_envelopes, 1);
		check_envelope(g->batch->envelopes[0], &b.env[0]);
		tr__frame_free(g);
	}
	/* ...and all of them in one batch, in order. */
	build_batch(&b, 16, -1);
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->batch->n_envelopes, 16);
	for (size_t i = 0; i < 16; i++)
		check_envelope(g->batch->envelopes[i], &b.env[i]);
	tr__frame_free(g);

	/* An envelope with only defaults (a heartbeat-sized message) and an
	 * empty batch both survive. */
	troupe__wire__envelope__init(&b.env[0]);
	b.batch.n_envelopes = 1;
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->batch->n_envelopes, 1);
	assert_null(g->batch->envelopes[0]->to);
	assert_int_equal(g->batch->envelopes[0]->control, 0);
	tr__frame_free(g);
	b.batch.n_envelopes = 0;
	g = round_trip(&f, NULL, NULL);
	assert_int_equal(g->body_case, TROUPE__WIRE__FRAME__BODY_BATCH);
	assert_int_equal(g->batch->n_envelopes, 0);
	tr__frame_free(g);
}

static void test_client_messages(void **state)
{
	Troupe__Wire__ClientRequest q = TROUPE__WIRE__CLIENT_REQUEST__INIT, *q2;
	Troupe__Wire__ClientReply r = TROUPE__WIRE__CLIENT_REPLY__INIT, *r2;
	uint8_t nonce[16] = "0123456789abcdef", *buf;
	size_t len;

	(void)state;
	q.major = 1;
	q.timestamp_ms = 1700000000999u;
	q.nonce.data = nonce;
	q.nonce.len = sizeof(nonce);
	q.to_name = "echo";
	q.type = 5;
	q.payload.data = (uint8_t *)"hello";
	q.payload.len = 5;
	q.timeout_ms = 2500;
	assert_int_equal(tr__client_request_encode(&buf, &len, &q), TR_OK);
	q2 = tr__client_request_decode(buf, len, tr__decode_budget(len));
	free(buf);
	assert_non_null(q2);
	assert_int_equal(q2->major, 1);
	assert_int_equal(q2->timestamp_ms, 1700000000999u);
	assert_int_equal(q2->nonce.len, 16);
	assert_memory_equal(q2->nonce.data, nonce, 16);
	assert_string_equal(q2->to_name, "echo");
	assert_int_equal(q2->type, 5);
	assert_int_equal(q2->payload.len, 5);
	assert_memory_equal(q2->payload.data, "hello", 5);
	assert_int_equal(q2->timeout_ms, 2500);
	tr__client_request_free(q2);

	r.error = TR_EEXIST;
	r.message = "replayed";
	r.type = 9;
	r.payload.data = (uint8_t *)"x";
	r.payload.len = 1;
	assert_int_equal(tr__client_reply_encode(&buf, &len, &r), TR_OK);
	r2 = tr__client_reply_decode(buf, len, tr__decode_budget(len));
	free(buf);
	assert_non_null(r2);
	assert_int_equal(r2->error, TR_EEXIST);
	assert_string_equal(r2->message, "replayed");
	assert_int_equal(r2->type, 9);
	assert_int_equal(r2->payload.len, 1);
	tr__client_reply_free(r2);

	/* An all-default message encodes to nothing, yet to a real buffer. */
	troupe__wire__client_reply__init(&r);
	buf = NULL;
	assert_int_equal(tr__client_reply_encode(&buf, &len, &r), TR_OK);
	assert_non_null(buf);
	assert_int_equal(len, 0);
	r2 = tr__client_reply_decode(buf, len, tr__decode_budget(len));
	assert_non_null(r2);
	assert_int_equal(r2->error, 0);
	tr__client_reply_free(r2);
	free(buf);

	assert_int_equal(tr__client_reply_encode(NULL, &len, &r), TR_EINVAL);
	assert_int_equal(tr__client_reply_encode(&buf, NULL, &r), TR_EINVAL);
	assert_int_equal(tr__client_reply_encode(&buf, &len, NULL), TR_EINVAL);
	tr__client_reply_free(NULL);
	tr__client_request_free(NULL);
	tr__frame_free(NULL);
}

/* ---- refusals ------------------------------------------------------------ */

static void test_refused_frames(void **state)
{
	struct batch_buf b;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	uint8_t *buf;
	size_t len;
	/* Only an unknown field (number 15, varint 1): no body. */
	static const uint8_t unknown_only[] = {0x78, 0x01};

	(void)state;
	/* No body at all: an empty buffer, and an unknown field only. */
	assert_null(tr__frame_decode(NULL, 0, BIG));
	assert_null(tr__frame_decode(unknown_only, sizeof(unknown_only), BIG));
	assert_int_equal(tr__frame_encode(&buf, &len, &f), TR_OK);
	assert_int_equal(len, 0);
	assert_null(tr__frame_decode(buf, len, BIG));
	free(buf);

	/* A control this build does not know, first or last in a batch, and
	 * a negative one. */
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &b.batch;
	static const int bad[] = {14, 15, 1000, -1};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		for (size_t pos = 0; pos < 3; pos += 2) {
			build_batch(&b, 3, 1);
			b.env[pos].control = (Troupe__Wire__Control)bad[k];
			assert_int_equal(
			    tr__frame_encode(&buf, &len, &f), TR_OK);
			assert_null(tr__frame_decode(buf, len, BIG));
			/* The same bytes are fine for the generic decoder,
			 * which does not look at controls. */
			ProtobufCMessage *m = tr__pb_decode(
			    &troupe__wire__frame__descriptor, buf, len, BIG);
			assert_non_null(m);
			tr__pb_free(m);
			free(buf);
		}
	}

	/* A budget of 0 refuses everything, even an empty message. */
	assert_null(tr__client_reply_decode(NULL, 0, 0));
	assert_null(tr__pb_decode(NULL, NULL, 0, BIG));
}

static void test_lying_lengths(void **state)
{
	(void)state;
	/* Frame.proof (field 2), whose Proof.proof (field 1, bytes) declares
	 * 100 bytes where 3 follow. */
	static const uint8_t inner[] = {0x12, 0x05, 0x0a, 0x64, 'a', 'b', 'c'};
	/* Frame.proof declares 100 bytes of Proof where 5 follow. */
	static const uint8_t outer[] = {0x12, 0x64, 0x0a, 0x03, 'a', 'b', 'c'};
	/* A length of 2^63 (a 10-byte varint), which must not wrap. */
	static const uint8_t huge[] = {0x12, 0x0c, 0x0a, 0x80, 0x80, 0x80, 0x80,
	    0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 'x'};
	/* A varint that never ends. */
	static const uint8_t endless[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	/* ClientRequest.payload (field 6) declares 2^32 - 1 bytes. */
	static const uint8_t req[] = {0x32, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x'};
	/* The honest version of `inner`, as a control. */
	static const uint8_t good[] = {0x12, 0x05, 0x0a, 0x03, 'a', 'b', 'c'};
	Troupe__Wire__Frame *g;

	assert_null(tr__frame_decode(inner, sizeof(inner), BIG));
	assert_null(tr__frame_decode(outer, sizeof(outer), BIG));
	assert_null(tr__frame_decode(huge, sizeof(huge), BIG));
	assert_null(tr__frame_decode(endless, sizeof(endless), BIG));
	assert_null(tr__client_request_decode(req, sizeof(req), BIG));
	g = tr__frame_decode(good, sizeof(good), BIG);
	assert_non_null(g);
	assert_int_equal(g->proof->proof.len, 3);
	tr__frame_free(g);
}

static void test_budget(void **state)
{
	struct batch_buf b;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT, *g;
	Troupe__Wire__Batch big = TROUPE__WIRE__BATCH__INIT;
	Troupe__Wire__Envelope **many;
	uint8_t *buf;
	size_t len, lo, hi;
	const size_t n = 2000;

	(void)state;
	/* 2000 references to 16 envelopes: a large frame. */
	build_batch(&b, 16, -1);
	many = calloc(n, sizeof(*many));
	assert_non_null(many);
	for (size_t i = 0; i < n; i++)
		many[i] = &b.env[i % 16];
	big.n_envelopes = n;
	big.envelopes = many;
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &big;
	assert_int_equal(tr__frame_encode(&buf, &len, &f), TR_OK);
	free(many);

	/* The default budget is ample for honest traffic. */
	g = tr__frame_decode(buf, len, tr__decode_budget(len));
	assert_non_null(g);
	assert_int_equal(g->batch->n_envelopes, n);
	tr__frame_free(g);

	/* Find the smallest budget that decodes: every budget below it
	 * fails cleanly (no leak: ASan checks), and it is exact. */
	lo = 0;
	hi = tr__decode_budget(len);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		g = tr__frame_decode(buf, len, mid);
		if (g != NULL)
			hi = mid;
		else
			lo = mid + 1;
		tr__frame_free(g);
	}
	assert_true(lo > len); /* decoding costs more than the bytes */
	assert_null(tr__frame_decode(buf, len, lo - 1));
	assert_null(tr__frame_decode(buf, len, len));
	assert_null(tr__frame_decode(buf, len, 1));
	g = tr__frame_decode(buf, len, lo);
	assert_non_null(g);
	tr__frame_free(g);
	/* Budgets just below the threshold fail at the last allocations,
	 * with everything before them to free. */
	for (size_t k = 1; k < 300; k++)
		assert_null(tr__frame_decode(buf, len, lo - k));
	free(buf);

	/* A small frame that declares many elements: 50000 empty envelopes
	 * cost 2 bytes each on the wire but a struct each decoded. */
	len = 50000 * 2 + 8;
	buf = malloc(len);
	assert_non_null(buf);
	{
		size_t inner = 50000 * 2, p = 0;

		buf[p++] = 0x22; /* Frame.batch */
		while (inner >= 0x80) {
			buf[p++] = (uint8_t)(inner | 0x80);
			inner >>= 7;
		}
		buf[p++] = (uint8_t)inner;
		for (size_t i = 0; i < 50000; i++) {
			buf[p++] = 0x0a; /* Batch.envelopes, empty */
			buf[p++] = 0x00;
		}
		len = p;
	}
	g = tr__frame_decode(buf, len, BIG);
	assert_non_null(g);
	assert_int_equal(g->batch->n_envelopes, 50000);
	tr__frame_free(g);
	assert_null(tr__frame_decode(buf, len, tr__decode_budget(len)));
	free(buf);
}

/* ---- hostile bytes ------------------------------------------------------- */

/* Encoded sample frames of every kind, for the mutation tests. */
static void samples(uint8_t *bufs[4], size_t lens[4], struct batch_buf *b)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__Proof p = TROUPE__WIRE__PROOF__INIT;
	Troupe__Wire__HelloReject r = TROUPE__WIRE__HELLO_REJECT__INIT;
	uint8_t mac[32] = {1, 2, 3};

	assert_int_equal(
	    tr__frame_encode(&bufs[0], &lens[0], hello_frame()), TR_OK);
	p.proof.data = mac;
	p.proof.len = sizeof(mac);
	f.body_case = TROUPE__WIRE__FRAME__BODY_PROOF;
	f.proof = &p;
	assert_int_equal(tr__frame_encode(&bufs[1], &lens[1], &f), TR_OK);
	r.reason = "no";
	f.body_case = TROUPE__WIRE__FRAME__BODY_REJECT;
	f.reject = &r;
	assert_int_equal(tr__frame_encode(&bufs[2], &lens[2], &f), TR_OK);
	build_batch(b, 16, -1);
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &b->batch;
	assert_int_equal(tr__frame_encode(&bufs[3], &lens[3], &f), TR_OK);
}

static void test_truncations(void **state)
{
	struct batch_buf b;
	uint8_t *bufs[4];
	size_t lens[4];
	unsigned decoded = 0, refused = 0;

	(void)state;
	samples(bufs, lens, &b);
	for (size_t s = 0; s < 4; s++) {
		for (size_t n = 0; n <= lens[s]; n++) {
			/* A copy of exactly n bytes, so that ASan sees any
			 * read past the end. */
			uint8_t *cut = malloc(n > 0 ? n : 1);
			Troupe__Wire__Frame *g;

			assert_non_null(cut);
			memcpy(cut, bufs[s], n);
			g = tr__frame_decode(cut, n, tr__decode_budget(n));
			if (g != NULL) {
				decoded++;
				assert_int_not_equal(g->body_case,
				    TROUPE__WIRE__FRAME__BODY__NOT_SET);
			} else {
				refused++;
			}
			tr__frame_free(g);
			free(cut);
		}
		free(bufs[s]);
	}
	/* The full frames decode; most cuts do not. */
	assert_true(decoded >= 4);
	assert_true(refused > 0);
}

static void test_byte_flips(void **state)
{
	struct batch_buf b;
	uint8_t *bufs[4];
	size_t lens[4];
	unsigned decoded = 0;

	(void)state;
	samples(bufs, lens, &b);
	for (int round = 0; round < 20000; round++) {
		size_t s = (size_t)(next() % 4);
		size_t n = lens[s];
		uint8_t *m = malloc(n);
		int flips = 1 + (int)(next() % 4);
		Troupe__Wire__Frame *g;
		size_t budget;

		assert_non_null(m);
		memcpy(m, bufs[s], n);
		for (int k = 0; k < flips; k++) {
			size_t at = (size_t)(next() % n);

			/* Half single-bit flips, half whole random bytes
			 * (which hit tags and lengths harder). */
			if (next() & 1)
				m[at] ^= (uint8_t)(1u << (next() % 8));
			else
				m[at] = (uint8_t)next();
		}
		/* Mostly the normal budget, sometimes a tight one, so that
		 * both failure paths run on damaged input. */
		budget = (next() % 4) ? tr__decode_budget(n)
		                      : (size_t)(next() % (2 * n + 1));
		g = tr__frame_decode(m, n, budget);
		if (g != NULL) {
			decoded++;
			/* Whatever decoded is safe to walk. */
			if (g->body_case == TROUPE__WIRE__FRAME__BODY_BATCH)
				for (size_t i = 0; i < g->batch->n_envelopes;
				     i++)
					assert_non_null(g->batch->envelopes[i]);
		}
		tr__frame_free(g);
		free(m);
	}
	for (size_t s = 0; s < 4; s++)
		free(bufs[s]);
	assert_true(decoded > 0);

	/* Pure noise of every small length. */
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(next() % 64);
		uint8_t *m = malloc(n > 0 ? n : 1);

		assert_non_null(m);
		for (size_t i = 0; i < n; i++)
			m[i] = (uint8_t)next();
		tr__frame_free(tr__frame_decode(m, n, tr__decode_budget(n)));
		tr__client_request_free(
		    tr__client_request_decode(m, n, tr__decode_budget(n)));
		free(m);
	}
}

/* Checks the hand-written encoder against protobuf-c for one envelope. */
static void check_same_encoding(const Troupe__Wire__Envelope *e)
{
	size_t want = protobuf_c_message_get_packed_size(&e->base);
	uint8_t *a = malloc(want + 1), *b = malloc(want + 1);

	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(tr__envelope_size(e), want);
	assert_int_equal(protobuf_c_message_pack(&e->base, a), want);
	assert_int_equal(tr__envelope_pack(e, b), want);
	assert_memory_equal(a, b, want);
	free(a);
	free(b);
}

static void test_envelope_encoder(void **state)
{
	struct batch_buf b;
	Troupe__Wire__Envelope e;
	Troupe__Wire__Pid empty = TROUPE__WIRE__PID__INIT;

	(void)state;
	/* Every field set, every control. */
	for (int c = 0; c <= 10; c++) {
		build_batch(&b, 16, c);
		for (size_t i = 0; i < 16; i++)
			check_same_encoding(&b.env[i]);
	}
	/* Nothing set, empty and NULL strings, an empty pid. */
	troupe__wire__envelope__init(&e);
	check_same_encoding(&e);
	e.to = &empty;
	e.name = "";
	e.reason_text = NULL;
	check_same_encoding(&e);
	/* Extremes: negative and large values, an unknown control. */
	fill_envelope(&b, 0, 0);
	b.env[0].reason = INT32_MIN;
	b.env[0].error = INT32_MAX;
	b.env[0].control = (Troupe__Wire__Control)-1;
	b.env[0].type = UINT32_MAX;
	b.to[0].incarnation = 0;
	b.to[0].node = "";
	b.from[0].slot = 0;
	check_same_encoding(&b.env[0]);
	/* Random mixes of present and absent fields. */
	for (int k = 0; k < 2000; k++) {
		uint64_t r = next();

		fill_envelope(&b, (size_t)(r % 16), (int)(r >> 8) % 12);
		e = b.env[r % 16];
		if (r & (1u << 20))
			e.to = NULL;
		if (r & (1u << 21))
			e.from = NULL;
		if (r & (1u << 22))
			e.payload.len = 0;
		if (r & (1u << 23))
			e.ref = 0;
		if (r & (1u << 24))
			e.name = NULL;
		if (r & (1u << 25))
			e.reason = (int32_t)(next() >> 32);
		if (r & (1u << 26))
			e.ref = next() >> (next() % 64);
		if (r & (1u << 27)) {
			static ProtobufCBinaryData more[3];

			for (size_t k = 0; k < 3; k++) {
				more[k].data = b.payload[k];
				more[k].len = k * 13 % 41;
			}
			e.n_more = 1 + (size_t)(r >> 28) % 3;
			e.more = more;
		}
		check_same_encoding(&e);
	}
}

static void same_pid(const Troupe__Wire__Pid *a, const Troupe__Wire__Pid *b)
{
	assert_true((a == NULL) == (b == NULL));
	if (a == NULL)
		return;
	assert_string_equal(a->node, b->node);
	assert_int_equal(a->incarnation, b->incarnation);
	assert_int_equal(a->slot, b->slot);
	assert_int_equal(a->gen, b->gen);
}

/* A batch frame decoded by tr__frame_decode (the hand-written decoder for
 * canonical batches) against protobuf-c's generic decode of the same
 * bytes: the same result, field for field. */
static void check_same_decoding(const uint8_t *buf, size_t len)
{
	Troupe__Wire__Frame *g = tr__frame_decode(buf, len, BIG);
	Troupe__Wire__Frame *w = (Troupe__Wire__Frame *)tr__pb_decode(
	    &troupe__wire__frame__descriptor, buf, len, BIG);

	if (g == NULL) {
		/* Refused: malformed for protobuf-c too, or a Frame the
		 * node does not accept (no body, an unknown control). */
		if (w != NULL &&
		    w->body_case == TROUPE__WIRE__FRAME__BODY_BATCH) {
			int bad = 0;

			for (size_t i = 0; i < w->batch->n_envelopes; i++) {
				const Troupe__Wire__Envelope *e =
				    w->batch->envelopes[i];

				bad |=
				    e->control >
				        TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND ||
				    e->control < 0 ||
				    (e->n_more > 0 &&
				        e->control !=
				            TROUPE__WIRE__CONTROL__CONTROL_NONE &&
				        e->control !=
				            TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND);
			}
			assert_true(bad);
		}
		tr__pb_free((ProtobufCMessage *)w);
		return;
	}
	assert_non_null(w);
	assert_int_equal(g->body_case, w->body_case);
	if (g->body_case == TROUPE__WIRE__FRAME__BODY_BATCH) {
		assert_int_equal(g->batch->n_envelopes, w->batch->n_envelopes);
		for (size_t i = 0; i < g->batch->n_envelopes; i++) {
			const Troupe__Wire__Envelope *a =
			    g->batch->envelopes[i];
			const Troupe__Wire__Envelope *b =
			    w->batch->envelopes[i];

			same_pid(a->to, b->to);
			same_pid(a->from, b->from);
			assert_int_equal(a->type, b->type);
			assert_int_equal(a->payload.len, b->payload.len);
			if (a->payload.len > 0)
				assert_memory_equal(a->payload.data,
				    b->payload.data, a->payload.len);
			assert_int_equal(a->ref, b->ref);
			assert_int_equal(a->flags, b->flags);
			assert_int_equal(a->control, b->control);
			assert_int_equal(a->reason, b->reason);
			assert_string_equal(a->reason_text, b->reason_text);
			assert_string_equal(a->name, b->name);
			assert_int_equal(a->error, b->error);
			assert_int_equal(a->n_more, b->n_more);
			for (size_t k = 0; k < a->n_more; k++) {
				assert_int_equal(
				    a->more[k].len, b->more[k].len);
				if (a->more[k].len > 0)
					assert_memory_equal(a->more[k].data,
					    b->more[k].data, a->more[k].len);
			}
		}
	}
	tr__frame_free(g);
	tr__pb_free((ProtobufCMessage *)w);
}

static void test_batch_decoder(void **state)
{
	struct batch_buf b;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	uint8_t *buf;
	size_t len;

	(void)state;
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	/* Every control; then sparse envelopes (absent fields). */
	for (int c = -1; c <= 10; c++) {
		build_batch(&b, 16, c);
		if (c == 10)
			for (size_t i = 0; i < 16; i++) {
				if (i & 1)
					b.env[i].to = NULL;
				if (i & 2)
					b.env[i].payload.len = 0;
				if (i & 4)
					b.env[i].name = "";
				if (i & 8)
					b.from[i].node = "";
			}
		f.batch = &b.batch;
		assert_int_equal(tr__frame_encode(&buf, &len, &f), TR_OK);
		check_same_decoding(buf, len);
		/* Damaged copies: both decoders agree on each. */
		for (int round = 0; round < 3000; round++) {
			uint8_t *m = malloc(len);
			size_t at = (size_t)(next() % len);

			assert_non_null(m);
			memcpy(m, buf, len);
			if (next() & 1)
				m[at] ^= (uint8_t)(1u << (next() % 8));
			else
				m[at] = (uint8_t)next();
			check_same_decoding(m, len);
			free(m);
		}
		free(buf);
	}
	/* Runs (Envelope.more) on plain and named sends, with empty and
	 * long entries, and then on a control that may not carry them. */
	for (int c = 0; c <= 1; c++) {
		ProtobufCBinaryData more[300];
		static uint8_t big[300];

		build_batch(&b, 4,
		    c == 0 ? TROUPE__WIRE__CONTROL__CONTROL_NONE
		           : TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND);
		for (size_t k = 0; k < 300; k++) {
			big[k] = (uint8_t)(k * 7);
			more[k].data = big;
			more[k].len =
			    k % 3 == 0 ? 0 : k; /* past 127: 2-byte lengths */
		}
		b.env[1].n_more = 1;
		b.env[1].more = more + 5;
		b.env[3].n_more = 300;
		b.env[3].more = more;
		f.batch = &b.batch;
		assert_int_equal(tr__frame_encode(&buf, &len, &f), TR_OK);
		check_same_decoding(buf, len);
		{
			Troupe__Wire__Frame *g =
			    tr__frame_decode(buf, len, BIG);

			assert_non_null(g);
			assert_int_equal(g->batch->envelopes[3]->n_more, 300);
			assert_int_equal(
			    g->batch->envelopes[3]->more[299].len, 299);
			tr__frame_free(g);
		}
		for (int round = 0; round < 3000; round++) {
			uint8_t *m = malloc(len);
			size_t at = (size_t)(next() % len);

			assert_non_null(m);
			memcpy(m, buf, len);
			m[at] ^= (uint8_t)(1u << (next() % 8));
			check_same_decoding(m, len);
			free(m);
		}
		free(buf);
		b.env[3].control = TROUPE__WIRE__CONTROL__CONTROL_LINK;
		assert_int_equal(tr__frame_encode(&buf, &len, &f), TR_OK);
		assert_null(tr__frame_decode(buf, len, BIG));
		check_same_decoding(buf, len);
		free(buf);
	}
	/* An empty batch. */
	{
		static const uint8_t empty_batch[] = {0x22, 0x00};

		check_same_decoding(empty_batch, sizeof(empty_batch));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hello),
	    cmocka_unit_test(test_proof_and_reject),
	    cmocka_unit_test(test_every_control),
	    cmocka_unit_test(test_client_messages),
	    cmocka_unit_test(test_refused_frames),
	    cmocka_unit_test(test_lying_lengths),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_byte_flips),
	    cmocka_unit_test(test_envelope_encoder),
	    cmocka_unit_test(test_batch_decoder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
