/*
 * Fuzz target: the SP stream parser (transport/sp_parse.c), fed a stream
 * in chunks chosen by the input, against a reference that parses the whole
 * stream at once. Both must give the same frames, byte for byte, and the
 * same refusal; the parser's buffer must stay within the bound sp_parse.h
 * states at every step; ASan and UBSan watch every access.
 *
 * Input: byte 0 = flags (bit 0: ipc; bit 1: trust the stream once its
 * first frame is taken; bits 2-3: the untrusted limit, one of 16, 300,
 * 5000, 70000 bytes; bit 4: the peer must be push0, else pull0), byte 1 =
 * n, then n chunk bytes (low 7 bits: the chunk's size, 0 meaning "take
 * frames without feeding"; bit 7: do not take frames after this chunk),
 * then the stream. Once the chunk bytes are used up, the rest is fed in
 * chunks of the last size (all at once if there were none).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sp_parse.h"

#define MAX_FRAME 100000u
#define MAX_FRAMES 4096

static const size_t limits[4] = {16, 300, 5000, 70000};

struct result {
	size_t n;
	size_t off[MAX_FRAMES], len[MAX_FRAMES];
	const char *why;
};

/* The reference needs no coverage of its own: it would only steer the
 * fuzzer towards the oracle's branches and slow every run. */
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

NO_COVERAGE static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The reference: the whole stream at once, written from the wire format
 * alone. */
NO_COVERAGE static void reference(struct result *r, const uint8_t *s, size_t n,
    bool ipc, bool trust, size_t untrusted, unsigned proto)
{
	static const uint8_t push0[8] = {0, 'S', 'P', 0, 0, 0x50, 0, 0};
	static const uint8_t pull0[8] = {0, 'S', 'P', 0, 0, 0x51, 0, 0};
	const uint8_t *hdr = proto == TR__SP_PUSH0 ? push0 : pull0;
	r->n = 0;
	r->why = NULL;
	for (size_t i = 0; i < 8 && i < n; i++) {
		if (s[i] != hdr[i]) {
			r->why = proto == TR__SP_PUSH0 ? "not an SP push0 peer"
			                               : "not an SP pull0 peer";
			return;
		}
	}
	if (n < 8)
		return;
	size_t pos = 8, hl = ipc ? 9 : 8;
	bool trusted = false;
	while (pos < n) {
		if (ipc && s[pos] != 1) {
			r->why = "bad ipc message type";
			return;
		}
		if (n - pos < hl)
			return;
		uint64_t len = be64(s + pos + hl - 8);
		if (len > (trusted ? MAX_FRAME : untrusted)) {
			r->why = "frame larger than the maximum";
			return;
		}
		if (n - pos - hl < len)
			return;
		if (r->n == MAX_FRAMES)
			abort(); /* cannot be: every frame takes 8 bytes */
		r->off[r->n] = pos + hl;
		r->len[r->n] = (size_t)len;
		r->n++;
		pos += hl + (size_t)len;
		if (trust)
			trusted = true;
	}
}

static size_t bound(const tr__sp_parse *p)
{
	size_t lim = p->trusted ? MAX_FRAME : p->max_untrusted;
	size_t base = p->trusted ? TR__SP_BUF_TRUSTED : TR__SP_BUF_FIRST;
	return lim + TR__SP_ROOM_MAX > base ? lim + TR__SP_ROOM_MAX : base;
}

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_sp: %s:%d: %s\n", __FILE__,      \
			    __LINE__, #c);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

static struct result want, got;
static const uint8_t *stream;

/* Takes every whole frame, checking each against the reference. */
static int drain(tr__sp_parse *p, bool trust)
{
	const uint8_t *f;
	size_t len;
	int r;
	while ((r = tr__sp_parse_next(p, &f, &len)) == TR__SP_FRAME) {
		CHECK(got.n < want.n);
		CHECK(len == want.len[got.n]);
		CHECK(
		    len == 0 || memcmp(f, stream + want.off[got.n], len) == 0);
		got.n++;
		if (trust)
			tr__sp_parse_trust(p);
	}
	CHECK(tr__sp_parse_held(p) <= bound(p));
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	size_t nchunks = data[1];
	if (size < 2 + nchunks)
		return 0;
	const uint8_t *chunks = data + 2;
	stream = data + 2 + nchunks;
	size_t n = size - 2 - nchunks;
	bool ipc = flags & 1, trust = flags & 2;
	size_t untrusted = limits[flags >> 2 & 3];
	unsigned proto = flags & 16 ? TR__SP_PUSH0 : TR__SP_PULL0;

	reference(&want, stream, n, ipc, trust, untrusted, proto);
	got.n = 0;

	tr__sp_parse p;
	tr__sp_parse_init(&p, proto, ipc, untrusted, MAX_FRAME);
	size_t at = 0, last = n;
	int r = TR__SP_NEED;
	for (size_t c = 0; r != TR__SP_REFUSE && (at < n || c < nchunks); c++) {
		size_t k = last;
		bool lazy = false;
		if (c < nchunks) {
			k = chunks[c] & 0x7f;
			lazy = chunks[c] & 0x80;
			if (k != 0)
				last = k;
		}
		if (k > n - at)
			k = n - at;
		while (k > 0) {
			size_t in = tr__sp_parse_feed(&p, stream + at, k);
			at += in;
			k -= in;
			if (k == 0 && lazy)
				break;
			size_t before = got.n;
			r = drain(&p, trust);
			if (r == TR__SP_REFUSE)
				break;
			/* Short only when its first frame was whole. */
			CHECK(k == 0 || in > 0 || got.n > before);
		}
		if (r != TR__SP_REFUSE && !lazy)
			r = drain(&p, trust);
	}
	if (r != TR__SP_REFUSE)
		r = drain(&p, trust);
	/* Everything fed, everything taken: the same frames and the same
	 * end as the reference. */
	CHECK(got.n == want.n);
	if (want.why != NULL) {
		CHECK(r == TR__SP_REFUSE);
		CHECK(strcmp(tr__sp_parse_why(&p), want.why) == 0);
		uint8_t *room;
		size_t len;
		CHECK(!tr__sp_parse_room(&p, &room, &len));
	} else {
		CHECK(r == TR__SP_NEED);
		CHECK(tr__sp_parse_why(&p) == NULL);
		/* And there is room for whatever comes next. */
		uint8_t *room;
		size_t len;
		CHECK(tr__sp_parse_room(&p, &room, &len) && len > 0);
		CHECK(tr__sp_parse_held(&p) <= bound(&p));
	}
	tr__sp_parse_fini(&p);
	return 0;
}
