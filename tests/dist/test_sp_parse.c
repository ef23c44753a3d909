/*
 * The stream parser (transport/sp_parse.c) alone: every split of a stream
 * gives the same frames; bad headers, ipc message types and lengths over
 * the limit are refused as soon as their bytes are in; its buffer stays
 * within its bound.
 */
#include "sp_fx.h"

/* ---- the stream parser alone ------------------------------------------- */

#define PARSE_BIG_MAX (1u << 20)

/* The push0 header, then frames of sizes[i] bytes (frame i's pattern). */
static size_t build_stream(
    uint8_t *out, bool ipc, const size_t *sizes, size_t nsizes)
{
	size_t n = TR__SP_HDR;
	tr__sp_header(out, TR__SP_PUSH0);
	for (size_t i = 0; i < nsizes; i++) {
		n += tr__sp_frame_head(out + n, ipc, sizes[i]);
		memcpy(out + n, pattern + (i * 7 & 0xff), sizes[i]);
		n += sizes[i];
	}
	return n;
}

/* The most a parser may hold with these limits. */
static size_t parse_bound(const tr__sp_parse *p, bool trusted)
{
	size_t lim = trusted ? p->max_frame : p->max_untrusted;
	size_t base = trusted ? TR__SP_BUF_TRUSTED : TR__SP_BUF_FIRST;
	return lim + TR__SP_ROOM_MAX > base ? lim + TR__SP_ROOM_MAX : base;
}

/* Feeds the stream in chunks ending at each of cuts[] (then the rest),
 * taking every whole frame after each piece fed; trusts the stream after
 * its first frame if `trust`. Checks the frames are those of `sizes`, and
 * the buffer's bound. Returns how many frames came. */
static size_t parse_chunks(bool ipc, const uint8_t *b, size_t n,
    const size_t *cuts, size_t ncuts, const size_t *sizes, size_t nsizes,
    size_t max_untrusted, bool trust)
{
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, ipc, max_untrusted, PARSE_BIG_MAX);
	size_t at = 0, got = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		while (at < end) {
			size_t k = tr__sp_parse_feed(&p, b + at, end - at);
			at += k;
			size_t before = got;
			const uint8_t *f;
			size_t len;
			int r;
			while ((r = tr__sp_parse_next(&p, &f, &len)) ==
			       TR__SP_FRAME) {
				assert_true(got < nsizes);
				assert_int_equal(len, sizes[got]);
				assert_memory_equal(
				    f, pattern + (got * 7 & 0xff), len);
				got++;
				if (trust)
					tr__sp_parse_trust(&p);
			}
			assert_int_equal(r, TR__SP_NEED);
			assert_true(tr__sp_parse_held(&p) <=
			            parse_bound(&p, p.trusted));
			/* Either bytes went in or frames came out. */
			assert_true(k > 0 || got > before);
		}
	}
	assert_null(tr__sp_parse_why(&p));
	tr__sp_parse_fini(&p);
	return got;
}

/* Every split of a stream, at one point or two, and byte by byte, gives
 * the same frames, on tcp and on ipc (a message-type byte more). */
static void test_parse_splits(void **state)
{
	(void)state;
	static const size_t sizes[] = {
	    0, 1, 2, 7, 8, 9, 15, 16, 17, 100, 255, 256, 300, 0, 1};
	static const size_t nsz = sizeof(sizes) / sizeof(sizes[0]);
	uint8_t *b = malloc(8192);
	size_t *cuts = malloc(8192 * sizeof(*cuts));
	assert_non_null(b);
	assert_non_null(cuts);
	for (int ipc = 0; ipc <= 1; ipc++) {
		size_t n = build_stream(b, ipc, sizes, nsz);
		for (size_t k = 0; k <= n; k++)
			assert_int_equal(parse_chunks(ipc, b, n, &k, 1, sizes,
			                     nsz, 1000, false),
			    nsz);
		/* Two cuts, over the first six frames. */
		size_t n6 = build_stream(b, ipc, sizes, 6);
		for (size_t k = 0; k <= n6; k++)
			for (size_t j = k; j <= n6; j++) {
				size_t two[2] = {k, j};
				assert_int_equal(parse_chunks(ipc, b, n6, two,
				                     2, sizes, 6, 1000, false),
				    6);
			}
		/* Byte by byte. */
		n = build_stream(b, ipc, sizes, nsz);
		for (size_t k = 0; k < n; k++)
			cuts[k] = k + 1;
		assert_int_equal(
		    parse_chunks(ipc, b, n, cuts, n, sizes, nsz, 1000, false),
		    nsz);
	}
	free(b);
	free(cuts);

	/* Frames larger than the first buffer (it grows to each, bound
	 * by the limit), cut around the buffer's sizes and the prefixes. */
	static const size_t big[] = {
	    70000, 3, TR__SP_BUF_FIRST, TR__SP_BUF_FIRST - 9, 300000, 0, 65536};
	static const size_t nbig = sizeof(big) / sizeof(big[0]);
	b = malloc(600000);
	assert_non_null(b);
	for (int ipc = 0; ipc <= 1; ipc++) {
		size_t n = build_stream(b, ipc, big, nbig);
		size_t pts[] = {0, 1, 7, 8, 9, 10, 16, 17, 18, 4090, 4096, 4104,
		    4105, 4106, 70000, 70017, 70018, 70027, 262144, 262153,
		    n - 65536, n - 1, n};
		for (size_t k = 0; k < sizeof(pts) / sizeof(pts[0]); k++)
			/* Untrusted up to 300000: every frame fits. */
			assert_int_equal(parse_chunks(ipc, b, n, &pts[k], 1,
			                     big, nbig, 300000, false),
			    nbig);
		/* Untrusted up to 100 bytes, then trusted: a frame over
		 * the first limit passes once its stream is trusted. */
		static const size_t tr[] = {100, 70000, 5};
		n = build_stream(b, ipc, tr, 3);
		for (size_t k = 0; k < sizeof(pts) / sizeof(pts[0]); k++) {
			size_t cut = pts[k] < n ? pts[k] : n;
			assert_int_equal(
			    parse_chunks(ipc, b, n, &cut, 1, tr, 3, 100, true),
			    3);
		}
	}
	free(b);
}

/* Feeds `b` byte by byte; returns the offset of the byte at which the
 * stream was refused (n if it never was), checking `why`, and that every
 * frame before was whole. */
static size_t refused_at(bool ipc, const uint8_t *b, size_t n,
    size_t max_untrusted, bool trusted, const char *why)
{
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, ipc, max_untrusted, 1000);
	if (trusted)
		tr__sp_parse_trust(&p);
	size_t k;
	for (k = 0; k < n; k++) {
		assert_int_equal(tr__sp_parse_feed(&p, b + k, 1), 1);
		const uint8_t *f;
		size_t len;
		int r;
		while ((r = tr__sp_parse_next(&p, &f, &len)) == TR__SP_FRAME)
			;
		if (r == TR__SP_REFUSE)
			break;
		assert_null(tr__sp_parse_why(&p));
	}
	if (k < n) {
		assert_string_equal(tr__sp_parse_why(&p), why);
		/* For good: nothing more goes in or comes out. */
		uint8_t *at;
		size_t room;
		assert_false(tr__sp_parse_room(&p, &at, &room));
		assert_int_equal(tr__sp_parse_feed(&p, b, 1), 0);
		const uint8_t *f;
		size_t len;
		assert_int_equal(
		    tr__sp_parse_next(&p, &f, &len), TR__SP_REFUSE);
	}
	assert_true(tr__sp_parse_held(&p) <= parse_bound(&p, trusted));
	tr__sp_parse_fini(&p);
	return k;
}

/* Bad headers are refused at their first wrong byte, an ipc message type
 * other than 1 at that byte, a length over the limit at its last byte. */
static void test_parse_refusals(void **state)
{
	(void)state;
	static const char *hdr_why = "not an SP push0 peer";
	uint8_t b[64];
	for (size_t j = 0; j < TR__SP_HDR; j++) {
		tr__sp_header(b, TR__SP_PUSH0);
		b[j] ^= 0x5a;
		assert_int_equal(
		    refused_at(false, b, 8, 100, false, hdr_why), j);
	}
	static const uint8_t req0[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
	assert_int_equal(refused_at(false, req0, 8, 100, false, hdr_why), 5);
	static const uint8_t pull0[8] = {0, 'S', 'P', 0, 0, 0x51, 0, 0};
	assert_int_equal(refused_at(true, pull0, 8, 100, false, hdr_why), 5);
	assert_int_equal(refused_at(false, (const uint8_t *)"GET / HTTP/1.0",
	                     14, 100, false, hdr_why),
	    0);
	/* TLS's ClientHello starts 0x16 0x03. */
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0xa5};
	assert_int_equal(refused_at(false, tls, 5, 100, false, hdr_why), 0);

	/* ipc: the type byte, before any of the length. */
	for (unsigned t = 0; t < 256; t++) {
		size_t n = build_stream(b, true, (const size_t[]){3}, 1);
		b[8 + 9 + 3] = (uint8_t)t; /* a second frame's type */
		memset(b + 8 + 9 + 4, 0, 8);
		n += 9;
		if (t == 1)
			assert_int_equal(refused_at(true, b, n, 100, false,
			                     "bad ipc message type"),
			    n);
		else
			assert_int_equal(refused_at(true, b, n, 100, false,
			                     "bad ipc message type"),
			    8 + 12);
	}

	/* Lengths: the limit passes, one more is refused on the length's
	 * last byte, before any of the frame; trusted, the larger limit. */
	static const char *big_why = "frame larger than the maximum";
	const uint64_t lens[] = {100, 101, 1000, 1001, UINT64_MAX,
	    (uint64_t)1 << 63, (uint64_t)1 << 32};
	for (int ipc = 0; ipc <= 1; ipc++) {
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			for (int trusted = 0; trusted <= 1; trusted++) {
				tr__sp_header(b, TR__SP_PUSH0);
				size_t n =
				    8 + tr__sp_frame_head(b + 8, ipc, lens[i]);
				uint64_t lim = trusted ? 1000 : 100;
				size_t at = refused_at(
				    ipc, b, n, 100, trusted, big_why);
				assert_int_equal(at, lens[i] > lim ? n - 1 : n);
			}
		}
	}
	/* A frame of exactly the limit is whole once its last byte is in,
	 * and the buffer held it whole. */
	tr__sp_parse p;
	tr__sp_parse_init(&p, TR__SP_PUSH0, false, 65536, 65536);
	uint8_t *s = malloc(8 + 8 + 65536);
	assert_non_null(s);
	size_t n = build_stream(s, false, (const size_t[]){65536}, 1);
	assert_int_equal(tr__sp_parse_feed(&p, s, n - 1), n - 1);
	const uint8_t *f;
	size_t len;
	assert_int_equal(tr__sp_parse_next(&p, &f, &len), TR__SP_NEED);
	assert_int_equal(tr__sp_parse_feed(&p, s + n - 1, 1), 1);
	assert_int_equal(tr__sp_parse_next(&p, &f, &len), TR__SP_FRAME);
	assert_int_equal(len, 65536);
	assert_memory_equal(f, pattern, len);
	/* Whole: the frame, its prefix and the SP header. */
	assert_int_equal(tr__sp_parse_held(&p), 8 + 8 + 65536);
	tr__sp_parse_fini(&p);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_splits),
	    cmocka_unit_test(test_parse_refusals),
	};
	alarm(300);
	signal(SIGPIPE, SIG_IGN);
	/* TEST_FILTER=<name> runs only the tests so named. */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	pattern_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
