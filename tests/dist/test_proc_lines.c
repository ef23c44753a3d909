/*
 * The line splitter of process children's output (transport/proc_lines.c)
 * alone: lines split across feeds are joined, "\r\n" ends a line as "\n"
 * does, empty lines are kept, a line longer than max_line comes in
 * max_line pieces marked partial and ends with a piece that is not, flush
 * gives an unterminated last line, bytes pass through unchanged (NUL
 * included), and reading from a real pipe gives the same lines.
 */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include "proc_lines.h"

#define CAP_LINES 64
#define CAP_BYTES 16384

struct cap {
	int n;
	size_t len[CAP_LINES];
	bool partial[CAP_LINES];
	char text[CAP_LINES][CAP_BYTES];
};

static void cap_emit(void *arg, const char *line, size_t len, bool partial)
{
	struct cap *c = arg;
	if (c->n >= CAP_LINES)
		return;
	c->len[c->n] = len;
	c->partial[c->n] = partial;
	memcpy(c->text[c->n], line, len < CAP_BYTES ? len : CAP_BYTES);
	c->n++;
}

static void assert_line(const struct cap *c, int i, const char *s, bool partial)
{
	assert_true(i < c->n);
	assert_int_equal(c->len[i], strlen(s));
	assert_memory_equal(c->text[i], s, strlen(s));
	assert_int_equal(c->partial[i], partial);
}

static struct cap *cap_new(void)
{
	struct cap *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	return c;
}

static void feed_str(struct tr__lines *l, const char *s, struct cap *c)
{
	tr__lines_feed(l, s, strlen(s), cap_emit, c);
}

static void test_init_refusals(void **state)
{
	(void)state;
	struct tr__lines l;
	assert_rc(tr__lines_init(NULL, 16), TR_EINVAL);
	assert_rc(tr__lines_init(&l, 0), TR_EINVAL);
	assert_rc(tr__lines_init(&l, (size_t)1 << 40), TR_EINVAL);
	assert_rc(tr__lines_init(&l, 16), TR_OK);
	tr__lines_fini(&l);
	tr__lines_fini(&l); /* idempotent */
	tr__lines_fini(NULL);
}

static void test_split_across_feeds(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	assert_rc(tr__lines_init(&l, 4096), TR_OK);
	feed_str(&l, "hel", c);
	assert_int_equal(c->n, 0);
	feed_str(&l, "lo\nwo", c);
	assert_int_equal(c->n, 1);
	feed_str(&l, "r", c);
	feed_str(&l, "ld\nthree\nfo", c);
	assert_int_equal(c->n, 3);
	assert_line(c, 0, "hello", false);
	assert_line(c, 1, "world", false);
	assert_line(c, 2, "three", false);
	/* Byte by byte gives the same. */
	const char *s = "a\nbc\n\ndef\n";
	for (size_t i = 0; s[i] != '\0'; i++)
		tr__lines_feed(&l, s + i, 1, cap_emit, c);
	assert_line(c, 3, "foa", false);
	assert_line(c, 4, "bc", false);
	assert_line(c, 5, "", false);
	assert_line(c, 6, "def", false);
	assert_int_equal(c->n, 7);
	tr__lines_flush(&l, cap_emit, c);
	assert_int_equal(c->n, 7); /* nothing held */
	tr__lines_fini(&l);
	free(c);
}

static void test_crlf_and_empty(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	assert_rc(tr__lines_init(&l, 4096), TR_OK);
	feed_str(&l, "one\r\n\r\n\ntwo\r", c);
	feed_str(&l, "\nmid\rdle\r\n", c);
	assert_int_equal(c->n, 5);
	assert_line(c, 0, "one", false);
	assert_line(c, 1, "", false);
	assert_line(c, 2, "", false);
	assert_line(c, 3, "two", false);
	assert_line(c, 4, "mid\rdle", false); /* only a '\r' before '\n' */
	tr__lines_fini(&l);
	free(c);
}

static void test_long_line(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	assert_rc(tr__lines_init(&l, 4096), TR_OK);
	char *big = malloc(10001);
	assert_non_null(big);
	for (int i = 0; i < 10000; i++)
		big[i] = (char)('a' + i % 26);
	big[10000] = '\n';
	/* In one feed, and then in feeds of 1000 bytes. */
	for (int round = 0; round < 2; round++) {
		c->n = 0;
		if (round == 0)
			tr__lines_feed(&l, big, 10001, cap_emit, c);
		else
			for (size_t off = 0; off < 10001; off += 1000)
				tr__lines_feed(&l, big + off,
				    10001 - off < 1000 ? 10001 - off : 1000,
				    cap_emit, c);
		assert_int_equal(c->n, 3);
		assert_int_equal(c->len[0], 4096);
		assert_true(c->partial[0]);
		assert_memory_equal(c->text[0], big, 4096);
		assert_int_equal(c->len[1], 4096);
		assert_true(c->partial[1]);
		assert_memory_equal(c->text[1], big + 4096, 4096);
		assert_int_equal(c->len[2], 10000 - 8192);
		assert_false(c->partial[2]);
		assert_memory_equal(c->text[2], big + 8192, 10000 - 8192);
	}
	free(big);
	tr__lines_fini(&l);
	free(c);
}

/* The bytes around max_line: exactly max_line comes whole, with or
 * without "\r\n"; one more byte makes a partial piece and a final one. */
static void test_max_line_edges(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	assert_rc(tr__lines_init(&l, 4), TR_OK);
	feed_str(&l, "abcd\nabcd\r\nabcde\nabcd\rx\nabcdefgh", c);
	assert_int_equal(c->n, 7);
	assert_line(c, 0, "abcd", false);
	assert_line(c, 1, "abcd", false);
	assert_line(c, 2, "abcd", true);
	assert_line(c, 3, "e", false);
	assert_line(c, 4, "abcd", true);
	assert_line(c, 5, "\rx", false);
	assert_line(c, 6, "abcd", true);
	c->n = 0;
	/* "efgh" waits for its end; at EOF it is the line's last piece. */
	tr__lines_flush(&l, cap_emit, c);
	assert_int_equal(c->n, 1);
	assert_line(c, 0, "efgh", false);
	/* The same split into single bytes. */
	c->n = 0;
	const char *s = "abcd\r\nabcde\n";
	for (size_t i = 0; s[i] != '\0'; i++)
		tr__lines_feed(&l, s + i, 1, cap_emit, c);
	assert_int_equal(c->n, 3);
	assert_line(c, 0, "abcd", false);
	assert_line(c, 1, "abcd", true);
	assert_line(c, 2, "e", false);
	tr__lines_fini(&l);
	free(c);
}

static void test_flush_and_bytes(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	assert_rc(tr__lines_init(&l, 64), TR_OK);
	static const char raw[] = "a\0b\xff\xfe\n\x1b[1mtail";
	tr__lines_feed(&l, raw, sizeof(raw) - 1, cap_emit, c);
	assert_int_equal(c->n, 1);
	assert_int_equal(c->len[0], 5);
	assert_memory_equal(c->text[0], "a\0b\xff\xfe", 5);
	tr__lines_flush(&l, cap_emit, c);
	assert_int_equal(c->n, 2);
	assert_line(c, 1, "\x1b[1mtail", false);
	tr__lines_flush(&l, cap_emit, c);
	assert_int_equal(c->n, 2);
	/* fini drops a held line without emitting it. */
	feed_str(&l, "dropped", c);
	tr__lines_fini(&l);
	assert_int_equal(c->n, 2);
	free(c);
}

/* A real pipe: EAGAIN while empty, lines as written, EOF flushes. */
static void test_read_fd(void **state)
{
	(void)state;
	struct tr__lines l;
	struct cap *c = cap_new();
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_rc(tr__lines_init(&l, 4096), TR_OK);
	errno = 0;
	assert_int_equal(tr__lines_read_fd(&l, p[0], cap_emit, c), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	assert_int_equal(write(p[1], "x\ny", 3), 3);
	assert_int_equal(tr__lines_read_fd(&l, p[0], cap_emit, c), 3);
	assert_int_equal(c->n, 1);
	assert_line(c, 0, "x", false);
	assert_int_equal(write(p[1], "z\r\nlast", 7), 7);
	close(p[1]);
	assert_int_equal(tr__lines_read_fd(&l, p[0], cap_emit, c), 7);
	assert_int_equal(tr__lines_read_fd(&l, p[0], cap_emit, c), 0);
	assert_int_equal(c->n, 3);
	assert_line(c, 1, "yz", false);
	assert_line(c, 2, "last", false);
	/* A closed descriptor is an error, not EOF. */
	close(p[0]);
	errno = 0;
	assert_int_equal(tr__lines_read_fd(&l, p[0], cap_emit, c), -1);
	assert_int_equal(errno, EBADF);
	tr__lines_fini(&l);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_refusals),
	    cmocka_unit_test(test_split_across_feeds),
	    cmocka_unit_test(test_crlf_and_empty),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_max_line_edges),
	    cmocka_unit_test(test_flush_and_bytes),
	    cmocka_unit_test(test_read_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
