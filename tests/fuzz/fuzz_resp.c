/*
 * Fuzz target: the RESP2 request parser of troupe-resp
 * (samples/resp/resp_parse.c). The stream is parsed whole and in chunks
 * chosen by the input; both must give the same requests, byte for byte,
 * and the same refusal. Every request must keep to the limits, every
 * argument must be NUL-ended, the bytes held while a request is
 * incomplete must stay within the bound resp_parse.h states, and each
 * request, written again as an array of bulk strings, must parse back to
 * itself. ASan and UBSan watch every access.
 *
 * Input: byte 0 = flags (bits 0-1: the limits, one of the defaults, small
 * {4 args, 16-byte bulk, 32-byte lines, 64-byte requests}, medium {64,
 * 1024, 256, 4096} or tiny {1, 1, 1, 8}), byte 1 = n, then n chunk
 * sizes (0: take requests without feeding), then the stream. Once the
 * chunk sizes are used up, the rest is fed at once.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_parse.h"

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_resp: %s:%d: %s\n", __FILE__,    \
			    __LINE__, #c);                                     \
			abort();                                               \
		}                                                              \
	} while (0)

static const resp_limits limits[4] = {
    {0, 0, 0, 0},
    {4, 16, 32, 64},
    {64, 1024, 256, 4096},
    {1, 1, 1, 8},
};

/* What a parse gave: each request as its argc, then each argument's
 * length and bytes; then the refusal, if any. */
struct record {
	resp_buf reqs;
	const char *why;
};

static void put_u32(resp_buf *b, uint32_t v)
{
	resp_buf_put(b, &v, sizeof(v));
}

/* Takes every request; returns the last answer (NEED or ERROR). */
static int drain(resp_parser *p, const resp_limits *lim, struct record *r)
{
	uint32_t argc;
	resp_arg *argv;
	int res;
	while ((res = resp_parse_next(p, &argc, &argv)) == RESP_CMD) {
		CHECK(argc >= 1 && argc <= lim->max_argc);
		put_u32(&r->reqs, argc);
		for (uint32_t i = 0; i < argc; i++) {
			CHECK(argv[i].len <= lim->max_bulk ||
			      argv[i].len <= lim->max_inline);
			CHECK(argv[i].p[argv[i].len] == '\0');
			put_u32(&r->reqs, (uint32_t)argv[i].len);
			resp_buf_put(&r->reqs, argv[i].p, argv[i].len);
		}
	}
	if (res == RESP_ERROR) {
		r->why = resp_parse_error(p);
		CHECK(r->why != NULL &&
		      strncmp(r->why, "Protocol error: ", 16) == 0);
		CHECK(resp_parse_next(p, &argc, &argv) == RESP_ERROR);
	} else {
		CHECK(res == RESP_NEED);
		CHECK(resp_parse_error(p) == NULL);
		/* Only an incomplete request is held: within max_request,
		 * plus the count line being read. */
		CHECK(resp_parse_pending(p) <=
		      (size_t)lim->max_request + lim->max_inline + 3);
	}
	return res;
}

/* Each request of `r`, written as an array, parses back to itself. */
static void check_reencoded(const struct record *r)
{
	if (r->reqs.len == 0)
		return;
	resp_buf enc;
	resp_buf_init(&enc);
	const char *q = r->reqs.p, *end = q + r->reqs.len;
	while (q < end) {
		uint32_t argc, len;
		memcpy(&argc, q, 4);
		q += 4;
		resp_put_array(&enc, argc);
		for (uint32_t i = 0; i < argc; i++) {
			memcpy(&len, q, 4);
			resp_put_bulk(&enc, q + 4, len);
			q += 4 + len;
		}
	}
	CHECK(!enc.oom);
	resp_parser p;
	resp_parser_init(&p, NULL);
	struct record back = {0};
	resp_buf_init(&back.reqs);
	CHECK(resp_parse_feed(&p, enc.p, enc.len));
	CHECK(drain(&p, &p.lim, &back) == RESP_NEED);
	CHECK(resp_parse_pending(&p) == 0);
	CHECK(back.reqs.len == r->reqs.len);
	CHECK(memcmp(back.reqs.p, r->reqs.p, r->reqs.len) == 0);
	resp_parser_fini(&p);
	resp_buf_fini(&back.reqs);
	resp_buf_fini(&enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const resp_limits *lim0 = &limits[data[0] & 3];
	size_t nchunks = data[1];
	if (size < 2 + nchunks)
		return 0;
	const uint8_t *chunks = data + 2;
	const char *s = (const char *)data + 2 + nchunks;
	size_t n = size - 2 - nchunks;

	/* The limits as the parser fills them in. */
	resp_parser whole;
	resp_parser_init(&whole, lim0);
	resp_limits lim = whole.lim;

	struct record a = {0}, b = {0};
	resp_buf_init(&a.reqs);
	resp_buf_init(&b.reqs);
	CHECK(resp_parse_feed(&whole, s, n));
	int ra = drain(&whole, &lim, &a);

	resp_parser cut;
	resp_parser_init(&cut, lim0);
	size_t at = 0;
	int rb = RESP_NEED;
	for (size_t c = 0; rb == RESP_NEED && (at < n || c < nchunks); c++) {
		size_t k = c < nchunks ? chunks[c] : n - at;
		if (k > n - at)
			k = n - at;
		CHECK(resp_parse_feed(&cut, s + at, k));
		at += k;
		rb = drain(&cut, &lim, &b);
	}
	CHECK(!a.reqs.oom && !b.reqs.oom);
	CHECK(ra == rb);
	CHECK(a.reqs.len == b.reqs.len);
	CHECK(a.reqs.len == 0 || memcmp(a.reqs.p, b.reqs.p, a.reqs.len) == 0);
	CHECK((a.why == NULL) == (b.why == NULL));
	CHECK(a.why == NULL || strcmp(a.why, b.why) == 0);
	if (ra == RESP_NEED)
		CHECK(resp_parse_pending(&whole) == resp_parse_pending(&cut));
	check_reencoded(&a);

	resp_parser_fini(&whole);
	resp_parser_fini(&cut);
	resp_buf_fini(&a.reqs);
	resp_buf_fini(&b.reqs);
	return 0;
}
