/*
 * Writes the seed corpora of fuzz_codec and fuzz_sp into DIR/codec/ and
 * DIR/sp/ (see each target for its input format): frames as the node
 * sends them, the odd but valid encodings protobuf-c accepts, frames
 * codec.h refuses, and SP streams over tcp and ipc, good and bad, cut in
 * various ways. Usage: gen_seeds DIR (cmake --build BUILD --target
 * fuzz_seeds writes tests/fuzz/corpus). Seeds found by fuzzing (crashes
 * fixed since, slow inputs) are added by hand next to these, named
 * crash-* or slow-*, and are not written here.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "codec.h"
#include "sp_parse.h"

static const char *root;

static void put(const char *sub, const char *name, const uint8_t *a, size_t na,
    const uint8_t *b, size_t nb)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", root, sub);
	if (mkdir(path, 0777) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", root, sub, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL || fwrite(a, 1, na, f) != na ||
	    (nb > 0 && fwrite(b, 1, nb, f) != nb) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- fuzz_codec: budget byte + frame ------------------------------------ */

static void codec(const char *name, const uint8_t *frame, size_t len)
{
	/* The node's budget, a small one (1 KiB), and none to speak of. */
	static const struct {
		const char *tag;
		uint8_t sel;
	} budgets[] = {{"node", 0}, {"1k", 1 | 15 << 2}, {"huge", 3}};
	for (size_t i = 0; i < sizeof(budgets) / sizeof(budgets[0]); i++) {
		char n[256];
		snprintf(n, sizeof(n), "%s-%s", name, budgets[i].tag);
		put("codec", n, &budgets[i].sel, 1, frame, len);
	}
}

static void codec_frame(const char *name, const Troupe__Wire__Frame *f)
{
	uint8_t *buf;
	size_t len;
	if (tr__frame_encode(&buf, &len, f) != 0)
		exit(1);
	codec(name, buf, len);
	free(buf);
}

static void codec_batch(
    const char *name, Troupe__Wire__Envelope **envs, size_t n)
{
	Troupe__Wire__Batch b = TROUPE__WIRE__BATCH__INIT;
	b.envelopes = envs;
	b.n_envelopes = n;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &b;
	codec_frame(name, &f);
}

static void codec_seeds(void)
{
	static uint8_t nonce[32], proof[32];
	for (int i = 0; i < 32; i++) {
		nonce[i] = (uint8_t)(i * 37 + 1);
		proof[i] = (uint8_t)(255 - i * 11);
	}
	Troupe__Wire__NodeId id = TROUPE__WIRE__NODE_ID__INIT;
	id.name = "alpha@host";
	id.incarnation = 1716000000123ull;
	char *urls[] = {"tcp://10.0.0.1:4100", "ipc:///run/troupe/alpha"};
	Troupe__Wire__Hello h = TROUPE__WIRE__HELLO__INIT;
	h.major = 1;
	h.minor = 1;
	h.node = &id;
	h.listen = urls;
	h.n_listen = 2;
	h.nonce.data = nonce;
	h.nonce.len = 32;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	f.body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f.hello = &h;
	codec_frame("hello", &f);
	h.proof.data = proof;
	h.proof.len = 32;
	codec_frame("hello-answer", &f);

	Troupe__Wire__Proof pr = TROUPE__WIRE__PROOF__INIT;
	pr.proof.data = proof;
	pr.proof.len = 32;
	f.body_case = TROUPE__WIRE__FRAME__BODY_PROOF;
	f.proof = &pr;
	codec_frame("proof", &f);

	Troupe__Wire__HelloReject rj = TROUPE__WIRE__HELLO_REJECT__INIT;
	rj.reason = "protocol major 2 not supported";
	f.body_case = TROUPE__WIRE__FRAME__BODY_REJECT;
	f.reject = &rj;
	codec_frame("reject", &f);

	Troupe__Wire__Frame empty = TROUPE__WIRE__FRAME__INIT;
	codec_frame("no-body", &empty);

	/* Batches as the node builds them. */
	Troupe__Wire__Envelope hb = TROUPE__WIRE__ENVELOPE__INIT;
	hb.control = TROUPE__WIRE__CONTROL__CONTROL_HEARTBEAT;
	Troupe__Wire__Envelope *one[] = {&hb};
	codec_batch("batch-heartbeat", one, 1);
	codec_batch("batch-empty", NULL, 0);

	Troupe__Wire__Pid to = TROUPE__WIRE__PID__INIT;
	to.node = "beta";
	to.incarnation = 1716000000456ull;
	to.slot = 4242;
	to.gen = 7;
	Troupe__Wire__Pid from = TROUPE__WIRE__PID__INIT;
	from.slot = 17;
	from.gen = 1;
	static uint8_t payload[64];
	for (int i = 0; i < 64; i++)
		payload[i] = (uint8_t)i;
	Troupe__Wire__Envelope msg = TROUPE__WIRE__ENVELOPE__INIT;
	msg.to = &to;
	msg.from = &from;
	msg.type = 0x1001;
	msg.payload.data = payload;
	msg.payload.len = sizeof(payload);
	msg.ref = 0xdeadbeefcafeull;
	msg.flags = 1;
	Troupe__Wire__Envelope ex = TROUPE__WIRE__ENVELOPE__INIT;
	ex.to = &from;
	ex.from = &to;
	ex.control = TROUPE__WIRE__CONTROL__CONTROL_EXIT;
	ex.reason = -3;
	ex.reason_text = "worker crashed";
	ex.flags = 1;
	Troupe__Wire__Envelope down = TROUPE__WIRE__ENVELOPE__INIT;
	down.to = &from;
	down.from = &to;
	down.control = TROUPE__WIRE__CONTROL__CONTROL_DOWN;
	down.ref = 99;
	down.reason = 2;
	Troupe__Wire__Envelope sp = TROUPE__WIRE__ENVELOPE__INIT;
	sp.to = &to;
	sp.control = TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REPLY;
	sp.error = -12;
	sp.ref = 5;
	Troupe__Wire__Envelope named = TROUPE__WIRE__ENVELOPE__INIT;
	named.from = &from;
	named.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	named.name = "logger";
	named.type = 3;
	named.payload.data = payload;
	named.payload.len = 5;
	ProtobufCBinaryData more[3] = {{3, payload}, {0, NULL}, {64, payload}};
	Troupe__Wire__Envelope run = msg;
	run.ref = 0;
	run.flags = 0;
	run.more = more;
	run.n_more = 3;
	Troupe__Wire__Envelope *mixed[] = {&msg, &ex, &down, &sp, &named, &hb};
	codec_batch("batch-mixed", mixed, 6);
	Troupe__Wire__Envelope named_run = named;
	named_run.more = more;
	named_run.n_more = 2;
	Troupe__Wire__Envelope *runs[] = {&run, &named_run, &msg};
	codec_batch("batch-runs", runs, 3);

	/* Refused by codec.h's validation. */
	Troupe__Wire__Envelope odd = hb;
	odd.control = (Troupe__Wire__Control)42;
	Troupe__Wire__Envelope *bad1[] = {&msg, &odd};
	codec_batch("batch-unknown-control", bad1, 2);
	Troupe__Wire__Envelope neg = hb;
	neg.control = (Troupe__Wire__Control)-1;
	Troupe__Wire__Envelope *bad2[] = {&neg};
	codec_batch("batch-negative-control", bad2, 1);
	Troupe__Wire__Envelope linkrun = ex;
	linkrun.control = TROUPE__WIRE__CONTROL__CONTROL_LINK;
	linkrun.more = more;
	linkrun.n_more = 1;
	Troupe__Wire__Envelope *bad3[] = {&linkrun};
	codec_batch("batch-more-with-link", bad3, 1);

	/* Hand-made bytes: valid protobuf that the fast path leaves to
	 * protobuf-c, and protobuf that is not valid. */
	static const uint8_t out_of_order[] = {0x22, 0x0a, 0x0a, 0x08, 0x18,
	    0x05, 0x0a, 0x04, 0x18, 0x01, 0x20, 0x02}; /* type before to */
	codec("env-out-of-order", out_of_order, sizeof(out_of_order));
	static const uint8_t dup[] = {
	    0x22, 0x06, 0x0a, 0x04, 0x18, 0x01, 0x18, 0x02}; /* type twice */
	codec("env-duplicate-field", dup, sizeof(dup));
	static const uint8_t unknown[] = {0x22, 0x06, 0x0a, 0x04, 0x18, 0x01,
	    0x78, 0x07}; /* field 15, a varint */
	codec("env-unknown-field", unknown, sizeof(unknown));
	static const uint8_t unknown_hi[] = {0x22, 0x07, 0x0a, 0x05, 0x18, 0x01,
	    0x80, 0x01, 0x07}; /* field 16 */
	codec("env-unknown-field16", unknown_hi, sizeof(unknown_hi));
	static const uint8_t two_batches[] = {
	    0x22, 0x02, 0x0a, 0x00, 0x22, 0x02, 0x0a, 0x00}; /* merged */
	codec("batch-twice", two_batches, sizeof(two_batches));
	static const uint8_t hello_then_batch[] = {
	    0x0a, 0x02, 0x08, 0x01, 0x22, 0x02, 0x0a, 0x00};
	codec("hello-then-batch", hello_then_batch, sizeof(hello_then_batch));
	static const uint8_t long_varint[] = {0x22, 0x0d, 0x0a, 0x0b, 0x38,
	    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	codec("env-control-ten-bytes", long_varint, sizeof(long_varint));
	/* Tags and length prefixes are varints, but protobuf-c reads
	 * them only up to five bytes. */
	static const uint8_t tag5[] = {
	    0x22, 0x08, 0x0a, 0x06, 0x98, 0x80, 0x80, 0x80, 0x00, 0x01};
	codec("env-five-byte-tag", tag5, sizeof(tag5));
	static const uint8_t tag6[] = {
	    0x22, 0x09, 0x0a, 0x07, 0x98, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
	codec("env-six-byte-tag", tag6, sizeof(tag6));
	static const uint8_t len5[] = {0x22, 0x0a, 0x0a, 0x84, 0x80, 0x80, 0x80,
	    0x00, 0x18, 0x01, 0x30, 0x02};
	codec("env-five-byte-length", len5, sizeof(len5));
	static const uint8_t len6[] = {0x22, 0x0b, 0x0a, 0x84, 0x80, 0x80, 0x80,
	    0x80, 0x00, 0x18, 0x01, 0x30, 0x02};
	codec("env-six-byte-length", len6, sizeof(len6));
	static const uint8_t truncated[] = {
	    0x22, 0x08, 0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 'h'};
	codec("batch-truncated", truncated, sizeof(truncated));
	static const uint8_t wrong_wt[] = {0x22, 0x04, 0x0a, 0x02, 0x1a, 0x00};
	codec("env-wrong-wire-type", wrong_wt, sizeof(wrong_wt));
	static const uint8_t pid_dup[] = {
	    0x22, 0x08, 0x0a, 0x06, 0x0a, 0x04, 0x18, 0x01, 0x18, 0x02};
	codec("pid-duplicate-field", pid_dup, sizeof(pid_dup));
}

/* ---- fuzz_sp: flags, chunk sizes, stream -------------------------------- */

struct stream {
	uint8_t b[16384];
	size_t n;
};

static void s_header(struct stream *s, unsigned proto)
{
	tr__sp_header(s->b + s->n, proto);
	s->n += TR__SP_HDR;
}

static void s_frame(struct stream *s, bool ipc, size_t len, uint8_t fill)
{
	s->n += tr__sp_frame_head(s->b + s->n, ipc, len);
	memset(s->b + s->n, fill, len);
	s->n += len;
}

static void s_bytes(struct stream *s, const void *p, size_t n)
{
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

/* flags: bit 0 ipc, bit 1 trust, bits 2-3 untrusted limit (16, 300,
 * 5000, 70000), bit 4 push0. */
static void sp(const char *name, uint8_t flags, const uint8_t *chunks,
    size_t nchunks, const struct stream *s)
{
	uint8_t head[2 + 255];
	head[0] = flags;
	head[1] = (uint8_t)nchunks;
	memcpy(head + 2, chunks, nchunks);
	put("sp", name, head, 2 + nchunks, s->b, s->n);
}

static void sp_seeds(void)
{
	static const uint8_t whole[] = {0};
	static const uint8_t small[] = {1, 2, 3, 5, 7, 11, 13};
	static const uint8_t lazy[] = {0x80 | 3, 0x80 | 9, 0, 0x80 | 40, 1};
	for (int ipc = 0; ipc <= 1; ipc++) {
		const char *t = ipc ? "ipc" : "tcp";
		uint8_t fl = (uint8_t)(ipc | 16 | 1 << 2); /* limit 300 */
		char n[128];
		struct stream s = {.n = 0};
		s_header(&s, TR__SP_PUSH0);
		s_frame(&s, ipc, 0, 0);
		s_frame(&s, ipc, 1, 'a');
		s_frame(&s, ipc, 17, 'b');
		s_frame(&s, ipc, 300, 'c');
		snprintf(n, sizeof(n), "%s-frames-whole", t);
		sp(n, fl, whole, 0, &s);
		snprintf(n, sizeof(n), "%s-frames-small-chunks", t);
		sp(n, fl, small, sizeof(small), &s);
		snprintf(n, sizeof(n), "%s-frames-lazy", t);
		sp(n, fl, lazy, sizeof(lazy), &s);

		/* Over the limit: refused on the length. */
		struct stream o = {.n = 0};
		s_header(&o, TR__SP_PUSH0);
		s_frame(&o, ipc, 5, 'x');
		s_frame(&o, ipc, 301, 'y');
		snprintf(n, sizeof(n), "%s-oversized", t);
		sp(n, fl, small, sizeof(small), &o);
		/* Trusted after the first frame: the same passes. */
		snprintf(n, sizeof(n), "%s-trusted", t);
		sp(n, (uint8_t)(fl | 2), small, 3, &o);

		/* Larger than the first buffer (limit 5000). */
		struct stream g = {.n = 0};
		s_header(&g, TR__SP_PUSH0);
		s_frame(&g, ipc, 4999, 'g');
		s_frame(&g, ipc, 10, 'h');
		snprintf(n, sizeof(n), "%s-grow", t);
		sp(n, (uint8_t)(ipc | 16 | 2 << 2), small, 2, &g);

		/* Cut in the middle of a length. */
		struct stream c = {.n = 0};
		s_header(&c, TR__SP_PUSH0);
		s_frame(&c, ipc, 3, 'z');
		c.n += tr__sp_frame_head(c.b + c.n, ipc, 200) - 3;
		snprintf(n, sizeof(n), "%s-cut-length", t);
		sp(n, fl, small, 4, &c);

		/* A huge length. */
		struct stream h = {.n = 0};
		s_header(&h, TR__SP_PUSH0);
		h.n += tr__sp_frame_head(h.b + h.n, ipc, UINT64_MAX);
		snprintf(n, sizeof(n), "%s-huge-length", t);
		sp(n, (uint8_t)(fl | 2), whole, 0, &h);

		/* Another protocol's header; pull0 expected instead. */
		struct stream r = {.n = 0};
		static const uint8_t req0[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
		s_bytes(&r, req0, 8);
		s_frame(&r, ipc, 2, 'q');
		snprintf(n, sizeof(n), "%s-req0", t);
		sp(n, fl, small, 2, &r);
		struct stream p = {.n = 0};
		s_header(&p, TR__SP_PULL0);
		s_frame(&p, ipc, 2, 'p');
		snprintf(n, sizeof(n), "%s-pull0-peer", t);
		sp(n, (uint8_t)(fl & ~16), small, 2, &p);
	}
	/* ipc: a message type other than 1. */
	struct stream m = {.n = 0};
	s_header(&m, TR__SP_PUSH0);
	s_frame(&m, true, 4, 'm');
	m.b[m.n] = 2;
	m.n++;
	sp("ipc-bad-type", 1 | 16 | 1 << 2, whole, 0, &m);
	/* Not SP at all. */
	struct stream x = {.n = 0};
	s_bytes(&x, "GET / HTTP/1.0\r\n\r\n", 18);
	sp("http", 16, whole, 0, &x);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	if (mkdir(root, 0777) != 0 && errno != EEXIST) {
		perror(root);
		return 1;
	}
	codec_seeds();
	sp_seeds();
	return 0;
}
