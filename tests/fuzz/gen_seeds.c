/*
 * Writes the seed corpora of fuzz_codec, fuzz_sp, fuzz_global and fuzz_pg
 * into DIR/codec/, DIR/sp/, DIR/global/ and DIR/pg/ (see each target for
 * its input format): frames as the node sends them, the odd but valid
 * encodings protobuf-c accepts, frames codec.h refuses, SP streams over
 * tcp and ipc, good and bad, cut in various ways, and the node services'
 * messages as a peer sends them, valid and refused. Usage: gen_seeds DIR (cmake --build BUILD --target
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
#include "global.pb-c.h"
#include "global_int.h"
#include "pg.pb-c.h"
#include "pg_int.h"
#include "sp_parse.h"
#include "svc_pair.h"
#include "troupe/pid.h"

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

/* ---- fuzz_global and fuzz_pg: type byte + payload ----------------------- */

/* A portable pid encoding (troupe/pid.h): version, name length, name,
 * incarnation, slot, gen (little-endian). */
static size_t pid_enc(uint8_t *b, const char *node, uint64_t inc,
    uint32_t slot, uint32_t gen)
{
	size_t n = strlen(node), k = 0;
	b[k++] = TR_PID_ENCODING_V1;
	b[k++] = (uint8_t)n;
	memcpy(b + k, node, n);
	k += n;
	for (int i = 0; i < 8; i++)
		b[k++] = (uint8_t)(inc >> 8 * i);
	for (int i = 0; i < 4; i++)
		b[k++] = (uint8_t)(slot >> 8 * i);
	for (int i = 0; i < 4; i++)
		b[k++] = (uint8_t)(gen >> 8 * i);
	return k;
}

static void svc_put(const char *sub, const char *name, uint8_t sel,
    const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		exit(1);
	protobuf_c_message_pack(m, buf);
	put(sub, name, &sel, 1, buf, len);
	free(buf);
}

/* The selector byte of fuzz_global: the type's offset from the base. */
#define GSEL(t) ((uint8_t)((t)-TR__GLOBAL_T_BASE))

struct gpid {
	uint8_t b[TR_PID_ENCODED_MAX];
	size_t n;
};

static void gentry(Troupe__Global__Entry *e, struct gpid *p, const char *name,
    const char *node, uint64_t inc, uint32_t slot, uint32_t gen, int64_t at,
    uint32_t method)
{
	troupe__global__entry__init(e);
	p->n = pid_enc(p->b, node, inc, slot, gen);
	e->name = (char *)name;
	e->pid.data = p->b;
	e->pid.len = p->n;
	e->at_ms = at;
	e->method = method;
}

static void global_seeds(void)
{
	static const char *const sub = "global";
	Troupe__Global__Entry e[3];
	Troupe__Global__Entry *ev[3] = {&e[0], &e[1], &e[2]};
	struct gpid p[3];
	Troupe__Global__Msg m;
	char longname[TR_GLOBAL_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	/* SYNC: names of B's pids, one and several (every method, one name
	 * twice: the earlier registration wins). */
	troupe__global__msg__init(&m);
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	m.entries = ev;
	m.n_entries = 1;
	svc_put(sub, "sync-one", GSEL(TR__GLOBAL_T_SYNC), &m.base);
	gentry(&e[1], &p[1], "svc.b", SVC_NODE_B, SVC_INC_B, 8, 1, 2000, 1);
	gentry(&e[2], &p[2], "svc.a", SVC_NODE_B, SVC_INC_B, 9, 3, 500, 2);
	m.n_entries = 3;
	svc_put(sub, "sync-three-one-name-twice", GSEL(TR__GLOBAL_T_SYNC),
	    &m.base);
	/* Refused: a pid of A's (slot 1, gen 1: A's first actor, alive; a
	 * pid of A's that is not alive is stale, skipped), a stale
	 * incarnation of B's (skipped), names empty and too long, an unknown
	 * method, a pid that is no encoding. */
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_A, SVC_INC_A, 1, 1, 1000, 0);
	m.n_entries = 1;
	svc_put(sub, "sync-pid-not-the-senders", GSEL(TR__GLOBAL_T_SYNC),
	    &m.base);
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_B, SVC_INC_B - 1, 7, 1, 1000, 0);
	svc_put(sub, "sync-stale-pid", GSEL(TR__GLOBAL_T_SYNC), &m.base);
	gentry(&e[0], &p[0], "", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	svc_put(sub, "sync-empty-name", GSEL(TR__GLOBAL_T_SYNC), &m.base);
	gentry(&e[0], &p[0], longname, SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	svc_put(sub, "sync-name-256", GSEL(TR__GLOBAL_T_SYNC), &m.base);
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 3);
	svc_put(sub, "sync-bad-method", GSEL(TR__GLOBAL_T_SYNC), &m.base);
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	e[0].pid.len = 5;
	svc_put(sub, "sync-pid-cut", GSEL(TR__GLOBAL_T_SYNC), &m.base);

	/* A claim's messages, as B's server would send them about one name
	 * (claim 42), and those of a forwarded registration (request 7) for
	 * a pid of A. */
	gentry(&e[0], &p[0], "svc.c", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	troupe__global__msg__init(&m);
	m.entry = &e[0];
	m.claim = 42;
	svc_put(sub, "claim", GSEL(TR__GLOBAL_T_CLAIM), &m.base);
	svc_put(sub, "commit", GSEL(TR__GLOBAL_T_COMMIT), &m.base);
	svc_put(sub, "remove", GSEL(TR__GLOBAL_T_REMOVE), &m.base);
	troupe__global__msg__init(&m);
	m.name = "svc.c";
	m.claim = 42;
	svc_put(sub, "abort", GSEL(TR__GLOBAL_T_ABORT), &m.base);
	svc_put(sub, "vote-yes", GSEL(TR__GLOBAL_T_VOTE), &m.base);
	m.result = TR__GVOTE_NO;
	m.holder.data = p[0].b;
	m.holder.len = p[0].n;
	svc_put(sub, "vote-no", GSEL(TR__GLOBAL_T_VOTE), &m.base);
	m.result = TR__GVOTE_BUSY;
	m.holder.len = 0;
	svc_put(sub, "vote-busy", GSEL(TR__GLOBAL_T_VOTE), &m.base);
	troupe__global__msg__init(&m);
	gentry(&e[1], &p[1], "svc.f", SVC_NODE_A, SVC_INC_A, 1, 1, 0, 2);
	m.entry = &e[1];
	m.claim = 7;
	m.timeout_ms = 200;
	svc_put(sub, "fwd-reg", GSEL(TR__GLOBAL_T_FWD_REG), &m.base);
	troupe__global__msg__init(&m);
	m.claim = 7;
	m.result = TR_EEXIST;
	svc_put(sub, "fwd-reply", GSEL(TR__GLOBAL_T_FWD_REPLY), &m.base);
	troupe__global__msg__init(&m);
	m.name = "svc.f";
	svc_put(sub, "fwd-unreg", GSEL(TR__GLOBAL_T_FWD_UNREG), &m.base);
	m.name = longname;
	svc_put(sub, "fwd-unreg-name-256", GSEL(TR__GLOBAL_T_FWD_UNREG),
	    &m.base);

	/* Types just outside the range: the server ignores them. */
	troupe__global__msg__init(&m);
	gentry(&e[0], &p[0], "svc.a", SVC_NODE_B, SVC_INC_B, 7, 1, 1000, 0);
	m.entries = ev;
	m.n_entries = 1;
	svc_put(sub, "type-base", 0, &m.base);
	svc_put(sub, "type-past-last", GSEL(TR__GLOBAL_T_LAST) + 1, &m.base);

	/* Bytes that do not decode. */
	static const uint8_t junk[] = {GSEL(TR__GLOBAL_T_SYNC), 0xff, 0xff,
	    0xff, 0x0f, 0x12, 0x80};
	put(sub, "undecodable", junk, sizeof(junk), NULL, 0);
	static const uint8_t cut[] = {GSEL(TR__GLOBAL_T_SYNC), 0x32, 0x20,
	    0x0a, 0x05, 's', 'v'};
	put(sub, "sync-truncated", cut, sizeof(cut), NULL, 0);
}

static void pgpid(Troupe__Pid *w, const char *node, uint64_t inc,
    uint32_t slot, uint32_t gen)
{
	troupe__pid__init(w);
	w->node = (char *)node;
	w->incarnation = inc;
	w->slot = slot;
	w->gen = gen;
}

/* The selector byte of fuzz_pg. */
#define PSEL(t) ((uint8_t)((t)-TR__PG_T_SYNC))

static void pg_seeds(void)
{
	static const char *const sub = "pg";
	Troupe__Pid w[4];
	Troupe__Pid *wv[4] = {&w[0], &w[1], &w[2], &w[3]};
	pgpid(&w[0], SVC_NODE_B, SVC_INC_B, 7, 1);
	pgpid(&w[1], SVC_NODE_B, SVC_INC_B, 8, 1);
	pgpid(&w[2], SVC_NODE_B, SVC_INC_B, 7, 1); /* a second join */
	pgpid(&w[3], SVC_NODE_B, SVC_INC_B, 9, 2);
	Troupe__Pg__Group g[2];
	Troupe__Pg__Group *gv[2] = {&g[0], &g[1]};
	troupe__pg__group__init(&g[0]);
	g[0].name = "svc.g";
	g[0].pids = wv;
	g[0].n_pids = 3;
	troupe__pg__group__init(&g[1]);
	g[1].name = "svc.h";
	g[1].pids = wv + 3;
	g[1].n_pids = 1;

	/* Sync: whole, in parts, asking for a reply. */
	Troupe__Pg__Sync s = TROUPE__PG__SYNC__INIT;
	s.scope = TR_PG_DEFAULT_SCOPE;
	s.groups = gv;
	s.n_groups = 2;
	s.first = true;
	s.last = true;
	svc_put(sub, "sync-whole", PSEL(TR__PG_T_SYNC), &s.base);
	s.want_reply = true;
	svc_put(sub, "sync-want-reply", PSEL(TR__PG_T_SYNC), &s.base);
	s.want_reply = false;
	s.last = false;
	s.n_groups = 1;
	svc_put(sub, "sync-first-part", PSEL(TR__PG_T_SYNC), &s.base);
	s.first = false;
	s.last = true;
	s.groups = gv + 1;
	svc_put(sub, "sync-last-part", PSEL(TR__PG_T_SYNC), &s.base);
	s.groups = NULL;
	s.n_groups = 0;
	s.first = true;
	svc_put(sub, "sync-none", PSEL(TR__PG_T_SYNC), &s.base);
	/* Refused: another scope, a bad group name, a pid of A's (its first
	 * actor, alive), a stale one of B's (skipped, not refused). */
	s.groups = gv;
	s.n_groups = 2;
	s.scope = "other";
	svc_put(sub, "sync-other-scope", PSEL(TR__PG_T_SYNC), &s.base);
	s.scope = TR_PG_DEFAULT_SCOPE;
	g[1].name = "";
	svc_put(sub, "sync-empty-group", PSEL(TR__PG_T_SYNC), &s.base);
	g[1].name = "svc.h";
	pgpid(&w[3], SVC_NODE_A, SVC_INC_A, 1, 1);
	svc_put(sub, "sync-pid-not-the-senders", PSEL(TR__PG_T_SYNC), &s.base);
	pgpid(&w[3], SVC_NODE_B, SVC_INC_B - 1, 9, 2);
	svc_put(sub, "sync-stale-pid", PSEL(TR__PG_T_SYNC), &s.base);
	pgpid(&w[3], SVC_NODE_B, SVC_INC_B, 9, 2);

	/* Update: joins (one pid twice), a leave, a leave of all. */
	Troupe__Pg__Update u = TROUPE__PG__UPDATE__INIT;
	u.scope = TR_PG_DEFAULT_SCOPE;
	u.group = "svc.g";
	u.pids = wv;
	u.n_pids = 3;
	svc_put(sub, "update-join", PSEL(TR__PG_T_UPDATE), &u.base);
	u.leave = true;
	u.n_pids = 1;
	svc_put(sub, "update-leave", PSEL(TR__PG_T_UPDATE), &u.base);
	u.all = true;
	svc_put(sub, "update-leave-all", PSEL(TR__PG_T_UPDATE), &u.base);
	u.leave = false;
	u.all = false;
	u.scope = "other";
	svc_put(sub, "update-other-scope", PSEL(TR__PG_T_UPDATE), &u.base);
	u.scope = TR_PG_DEFAULT_SCOPE;
	pgpid(&w[0], "", SVC_INC_B, 7, 1);
	svc_put(sub, "update-pid-no-node", PSEL(TR__PG_T_UPDATE), &u.base);
	pgpid(&w[0], SVC_NODE_B, SVC_INC_B, 7, 0);
	svc_put(sub, "update-pid-gen0", PSEL(TR__PG_T_UPDATE), &u.base);

	/* The next type of the range: the server ignores it. */
	s.groups = gv;
	s.n_groups = 2;
	s.first = true;
	s.last = true;
	pgpid(&w[0], SVC_NODE_B, SVC_INC_B, 7, 1);
	svc_put(sub, "type-past-update", 2, &s.base);

	static const uint8_t junk[] = {PSEL(TR__PG_T_SYNC), 0xff, 0xff, 0xff,
	    0x0f, 0x12, 0x80};
	put(sub, "undecodable", junk, sizeof(junk), NULL, 0);
	static const uint8_t cut[] = {PSEL(TR__PG_T_UPDATE), 0x0a, 0x07, 'd',
	    'e', 'f'};
	put(sub, "update-truncated", cut, sizeof(cut), NULL, 0);
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
	global_seeds();
	pg_seeds();
	return 0;
}
