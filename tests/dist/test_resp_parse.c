/*
 * The RESP2 parser of troupe-resp (samples/resp/resp_parse.c) alone:
 * every request shape, the same requests whatever the split of the
 * stream, many requests per buffer, Redis's refusals of bad input (and
 * the same refusal for every split), the limits, and the reply writers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp_parse.h"

/* The requests a stream gives, as text: each argument as LEN:BYTES, a
 * request ended by '\n'; then "ERR <why>" if it was refused. */
struct out {
	char *p;
	size_t len, cap;
};

static void out_put(struct out *o, const void *p, size_t n)
{
	if (o->len + n + 1 > o->cap) {
		o->cap = (o->len + n + 1) * 2;
		o->p = realloc(o->p, o->cap);
		assert_non_null(o->p);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void out_putz(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

/* Takes every request the parser has; false once it refused. */
static bool drain(resp_parser *p, struct out *o)
{
	uint32_t argc;
	resp_arg *argv;
	int r;
	while ((r = resp_parse_next(p, &argc, &argv)) == RESP_CMD) {
		assert_true(argc > 0);
		for (uint32_t i = 0; i < argc; i++) {
			char num[32];
			snprintf(num, sizeof(num), "%zu:", argv[i].len);
			out_putz(o, num);
			for (size_t k = 0; k < argv[i].len; k++) {
				if (argv[i].p[k] == '\0')
					out_putz(o, "<NUL>");
				else
					out_put(o, &argv[i].p[k], 1);
			}
			assert_int_equal(argv[i].p[argv[i].len], '\0');
			out_putz(o, i + 1 < argc ? " " : "\n");
		}
	}
	if (r == RESP_ERROR) {
		assert_non_null(resp_parse_error(p));
		out_putz(o, "ERR ");
		out_putz(o, resp_parse_error(p));
		/* Refused for good. */
		assert_int_equal(resp_parse_next(p, &argc, &argv), RESP_ERROR);
		return false;
	}
	assert_null(resp_parse_error(p));
	return true;
}

/* The whole stream in one piece. */
static char *parse_all(const resp_limits *lim, const char *s, size_t n)
{
	resp_parser p;
	struct out o = {0};
	resp_parser_init(&p, lim);
	assert_true(resp_parse_feed(&p, s, n));
	drain(&p, &o);
	resp_parser_fini(&p);
	out_putz(&o, "");
	return o.p;
}

/* In pieces ending at each of cuts[]. */
static char *parse_cuts(const resp_limits *lim, const char *s, size_t n,
    const size_t *cuts, size_t ncuts)
{
	resp_parser p;
	struct out o = {0};
	resp_parser_init(&p, lim);
	size_t at = 0;
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : n;
		assert_true(resp_parse_feed(&p, s + at, end - at));
		at = end;
		if (!drain(&p, &o))
			break;
	}
	resp_parser_fini(&p);
	out_putz(&o, "");
	return o.p;
}

/* Every split of the stream in two, and byte by byte, gives `want`. */
static void check_splits(
    const resp_limits *lim, const char *s, size_t n, const char *want)
{
	char *all = parse_all(lim, s, n);
	assert_string_equal(all, want);
	free(all);
	for (size_t k = 0; k <= n; k++) {
		char *got = parse_cuts(lim, s, n, &k, 1);
		if (strcmp(got, want) != 0)
			fail_msg("split at %zu of %zu: got [%s], want [%s]", k,
			    n, got, want);
		free(got);
	}
	size_t *cuts = malloc((n + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (size_t k = 0; k < n; k++)
		cuts[k] = k + 1;
	char *got = parse_cuts(lim, s, n, cuts, n);
	assert_string_equal(got, want);
	free(got);
	free(cuts);
}

#define CHECK(s, want) check_splits(NULL, s, sizeof(s) - 1, want)

/* ---- request shapes ----------------------------------------------------- */

static void test_arrays(void **state)
{
	(void)state;
	CHECK("*1\r\n$4\r\nPING\r\n", "4:PING\n");
	CHECK("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
	    "3:SET 1:k 5:hello\n");
	/* An empty bulk string, and bytes Redis allows in one: CR, LF,
	 * NUL, '$', '*'. */
	CHECK("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$6\r\na\r\n\0$*\r\n",
	    "3:SET 0: 6:a\r\n<NUL>$*\n");
	/* Empty arrays are skipped, as Redis skips them. */
	CHECK("*0\r\n*-1\r\n*1\r\n$1\r\nx\r\n*0\r\n", "1:x\n");
	CHECK("*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n",
	    "4:ECHO 11:hello world\n");
}

static void test_inline(void **state)
{
	(void)state;
	CHECK("PING\r\n", "4:PING\n");
	CHECK("PING\n", "4:PING\n");
	CHECK("  SET   k\tv  \r\n", "3:SET 1:k 1:v\n");
	/* Blank lines are skipped. */
	CHECK("\r\n\n   \r\nGET k\r\n", "3:GET 1:k\n");
	/* Quotes make one word; redis-cli's escapes. */
	CHECK("SET k \"a b\"\r\n", "3:SET 1:k 3:a b\n");
	CHECK("ECHO \"\\x41\\n\\t\\\"\\\\z\"\r\n", "4:ECHO 6:A\n\t\"\\z\n");
	CHECK("ECHO 'it\\'s' \"\"\r\n", "4:ECHO 4:it's 0:\n");
	CHECK("ECHO a\"b c\" d\r\n", "4:ECHO 4:ab c 1:d\n");
	/* A NUL ends the line's words, as in Redis's sdssplitargs. */
	CHECK("ECHO a\0b\r\nPING\r\n", "4:ECHO 1:a\n4:PING\n");
	/* Inline and arrays mixed. */
	CHECK("PING\r\n*1\r\n$4\r\nPING\r\nECHO x\n",
	    "4:PING\n4:PING\n4:ECHO 1:x\n");
}

static void test_big_bulk(void **state)
{
	(void)state;
	size_t n = 1u << 20;
	char *s = malloc(n + 64), *want = malloc(n + 64);
	assert_non_null(s);
	assert_non_null(want);
	int h = sprintf(s, "*2\r\n$4\r\nECHO\r\n$%zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		s[h + i] = (char)('a' + i % 26);
	memcpy(s + h + n, "\r\n", 2);
	int w = sprintf(want, "4:ECHO %zu:", n);
	memcpy(want + w, s + h, n);
	strcpy(want + w + n, "\n");
	/* Fed in pieces of 1000: the same request. */
	size_t total = (size_t)h + n + 2, ncuts = total / 1000;
	size_t *cuts = malloc((ncuts + 1) * sizeof(*cuts));
	assert_non_null(cuts);
	for (size_t i = 0; i < ncuts; i++)
		cuts[i] = (i + 1) * 1000;
	char *got = parse_cuts(NULL, s, total, cuts, ncuts);
	assert_string_equal(got, want);
	free(got);
	free(cuts);
	free(s);
	free(want);
}

/* 10,000 requests in one buffer, and the parser's buffer after them. */
static void test_pipelined(void **state)
{
	(void)state;
	struct out in = {0}, want = {0};
	for (int i = 0; i < 10000; i++) {
		char req[128], exp[128], key[32];
		int kl = snprintf(key, sizeof(key), "key:%d", i);
		if (i % 3 == 2) {
			snprintf(req, sizeof(req), "GET %s\r\n", key);
		} else {
			snprintf(req, sizeof(req),
			    "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$3\r\nxyz\r\n", kl,
			    key);
		}
		snprintf(exp, sizeof(exp),
		    i % 3 == 2 ? "3:GET %d:%s\n" : "3:SET %d:%s 3:xyz\n", kl,
		    key);
		out_putz(&in, req);
		out_putz(&want, exp);
	}
	char *all = parse_all(NULL, in.p, in.len);
	assert_string_equal(all, want.p);
	free(all);
	/* In pieces of 7 bytes, with every request taken as it comes. */
	resp_parser p;
	struct out o = {0};
	resp_parser_init(&p, NULL);
	for (size_t at = 0; at < in.len; at += 7) {
		size_t k = in.len - at < 7 ? in.len - at : 7;
		assert_true(resp_parse_feed(&p, in.p + at, k));
		assert_true(drain(&p, &o));
		/* Only an incomplete request waits: a few bytes. */
		assert_true(resp_parse_pending(&p) < 64);
	}
	assert_int_equal(resp_parse_pending(&p), 0);
	assert_true(resp_parse_capacity(&p) < 64 * 1024);
	out_putz(&o, "");
	assert_string_equal(o.p, want.p);
	resp_parser_fini(&p);
	free(o.p);
	free(in.p);
	free(want.p);
}

/* ---- refusals ----------------------------------------------------------- */

static void test_bad_array_length(void **state)
{
	(void)state;
	CHECK("*abc\r\n", "ERR Protocol error: invalid multibulk length");
	CHECK("*1x\r\n", "ERR Protocol error: invalid multibulk length");
	CHECK("*+1\r\n", "ERR Protocol error: invalid multibulk length");
	CHECK("*01\r\n", "ERR Protocol error: invalid multibulk length");
	CHECK("*\r\n", "ERR Protocol error: invalid multibulk length");
	/* A CR not followed by LF. */
	CHECK("*1\rx$4\r\nPING\r\n",
	    "ERR Protocol error: invalid multibulk length");
	/* The requests before the bad one are taken. */
	CHECK("PING\r\n*1\r\n$4\r\nPING\r\n*z\r\n",
	    "4:PING\n4:PING\nERR Protocol error: invalid multibulk length");
}

static void test_bad_bulk(void **state)
{
	(void)state;
	CHECK("*1\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'");
	CHECK("*2\r\n$4\r\nECHO\r\nx\r\n",
	    "ERR Protocol error: expected '$', got 'x'");
	CHECK("*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length");
	CHECK("*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length");
	CHECK("*1\r\n$\r\n", "ERR Protocol error: invalid bulk length");
	/* Missing CRLF after the bytes. */
	CHECK("*1\r\n$4\r\nPINGxx", "ERR Protocol error: expected CRLF after "
	                            "bulk data");
	CHECK("*1\r\n$4\r\nPING\rx", "ERR Protocol error: expected CRLF after "
	                             "bulk data");
	CHECK("*1\r\n$4\r\nPIN\r\n\r\n", "ERR Protocol error: expected CRLF "
	                                 "after bulk data");
	CHECK("ECHO \"abc\r\n",
	    "ERR Protocol error: unbalanced quotes in request");
	CHECK("ECHO 'abc\r\n",
	    "ERR Protocol error: unbalanced quotes in request");
	CHECK("ECHO a\"b c\"d\r\n",
	    "ERR Protocol error: unbalanced quotes in request");
	CHECK("ECHO \"a\"b\r\n",
	    "ERR Protocol error: unbalanced quotes in request");
}

static void test_limits(void **state)
{
	(void)state;
	resp_limits lim = {
	    .max_argc = 3, .max_bulk = 10, .max_inline = 16, .max_request = 40};
	const char *s;
	/* Too many arguments. */
	s = "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n*4\r\n";
	check_splits(&lim, s, strlen(s),
	    "1:a 1:b 1:c\nERR Protocol error: invalid multibulk length");
	s = "ECHO a b c\r\n";
	check_splits(
	    &lim, s, strlen(s), "ERR Protocol error: invalid multibulk length");
	/* A bulk string too long, and one just right. */
	s = "*1\r\n$10\r\n0123456789\r\n*1\r\n$11\r\n";
	check_splits(&lim, s, strlen(s),
	    "10:0123456789\nERR Protocol error: invalid bulk length");
	/* Count lines and inline lines too long, with or without their
	 * end. */
	s = "*00000000000000001\r\n";
	check_splits(&lim, s, strlen(s),
	    "ERR Protocol error: too big mbulk count string");
	s = "*1\r\n$00000000000000001\r\n";
	check_splits(&lim, s, strlen(s),
	    "ERR Protocol error: too big bulk count string");
	s = "*1111111111111111111";
	check_splits(&lim, s, strlen(s),
	    "ERR Protocol error: too big mbulk count string");
	s = "PING 0123456789abcdef\r\n";
	check_splits(
	    &lim, s, strlen(s), "ERR Protocol error: too big inline request");
	s = "PING 0123456789abcdef";
	check_splits(
	    &lim, s, strlen(s), "ERR Protocol error: too big inline request");
	/* A line of exactly max_inline bytes is fine even when its CR comes
	 * alone (fuzz_resp's find). */
	resp_limits one = {
	    .max_argc = 1, .max_bulk = 1, .max_inline = 1, .max_request = 8};
	s = "x\r\nab\r\n";
	check_splits(&one, s, strlen(s),
	    "1:x\nERR Protocol error: too big inline request");
	/* A request over max_request bytes in all. */
	s = "*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$1\r\nx\r\n";
	check_splits(&lim, s, strlen(s), "ERR Protocol error: too big request");
	/* Within every limit: fine. */
	s = "*2\r\n$10\r\n0123456789\r\n$1\r\nx\r\nECHO ab cd\r\n";
	check_splits(
	    &lim, s, strlen(s), "10:0123456789 1:x\n4:ECHO 2:ab 2:cd\n");
}

/* An incomplete request waits, whatever it lacks. */
static void test_incomplete(void **state)
{
	(void)state;
	static const char *const parts[] = {"*", "*2", "*2\r", "*2\r\n",
	    "*2\r\n$", "*2\r\n$4", "*2\r\n$4\r\n", "*2\r\n$4\r\nECHO",
	    "*2\r\n$4\r\nECHO\r", "*2\r\n$4\r\nECHO\r\n", "PING", "PING\r",
	    "ECHO \"a"};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		resp_parser p;
		uint32_t argc;
		resp_arg *argv;
		resp_parser_init(&p, NULL);
		assert_true(resp_parse_feed(&p, parts[i], strlen(parts[i])));
		assert_int_equal(resp_parse_next(&p, &argc, &argv), RESP_NEED);
		assert_int_equal(resp_parse_pending(&p), strlen(parts[i]));
		resp_parser_fini(&p);
	}
}

/* ---- writers ------------------------------------------------------------ */

static void test_writers(void **state)
{
	(void)state;
	resp_buf b;
	resp_buf_init(&b);
	resp_put_simple(&b, "OK", 2);
	resp_put_errorz(&b, "ERR bad\r\nthing");
	resp_put_int(&b, 0);
	resp_put_int(&b, -42);
	resp_put_int(&b, INT64_MAX);
	resp_put_int(&b, INT64_MIN);
	resp_put_bulk(&b, "a\r\nb", 4);
	resp_put_bulk(&b, "", 0);
	resp_put_null(&b);
	resp_put_array(&b, 2);
	resp_put_array(&b, -1);
	const char *want = "+OK\r\n-ERR bad  thing\r\n:0\r\n:-42\r\n"
	                   ":9223372036854775807\r\n:-9223372036854775808\r\n"
	                   "$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n*2\r\n*-1\r\n";
	assert_false(b.oom);
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.p, want, b.len);
	/* Large replies grow the buffer. */
	resp_buf_reset(&b, 0);
	char big[5000];
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 100; i++)
		resp_put_bulk(&b, big, sizeof(big));
	assert_int_equal(b.len, 100 * (sizeof(big) + 9));
	resp_buf_fini(&b);
}

static void test_arg_int(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		bool ok;
		int64_t v;
	} cases[] = {
	    {"0", true, 0},
	    {"1", true, 1},
	    {"-1", true, -1},
	    {"9223372036854775807", true, INT64_MAX},
	    {"-9223372036854775808", true, INT64_MIN},
	    {"9223372036854775808", false, 0},
	    {"-9223372036854775809", false, 0},
	    {"99999999999999999999", false, 0},
	    {"", false, 0},
	    {"-", false, 0},
	    {"-0", false, 0},
	    {"01", false, 0},
	    {"+1", false, 0},
	    {" 1", false, 0},
	    {"1 ", false, 0},
	    {"1a", false, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 12345;
		bool ok = resp_arg_int(cases[i].s, strlen(cases[i].s), &v);
		if (ok != cases[i].ok || (ok && v != cases[i].v))
			fail_msg("resp_arg_int(\"%s\")", cases[i].s);
	}
	char num[24];
	size_t n = resp_fmt_int(num, -1234567890123LL);
	assert_int_equal(n, 14);
	assert_memory_equal(num, "-1234567890123", n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_arrays),
	    cmocka_unit_test(test_inline),
	    cmocka_unit_test(test_big_bulk),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_bad_array_length),
	    cmocka_unit_test(test_bad_bulk),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_incomplete),
	    cmocka_unit_test(test_writers),
	    cmocka_unit_test(test_arg_int),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
