/*
 * Splitting a stream into lines (proc_lines.h).
 *
 * A line that is not yet complete waits in buf. A full buffer (max_line
 * bytes) is emitted as a partial piece only when a byte that does not end
 * the line arrives, so that a line of exactly max_line bytes comes whole;
 * a '\r' arriving then is held in the extra byte until the next byte says
 * whether it ends the line.
 */
#include "proc_lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LINE_LIMIT ((size_t)64 << 20)

int tr__lines_init(struct tr__lines *l, size_t max_line)
{
	if (l == NULL)
		return TR_EINVAL;
	*l = (struct tr__lines){0};
	if (max_line == 0 || max_line > MAX_LINE_LIMIT)
		return TR_EINVAL;
	l->buf = malloc(max_line + 1);
	if (l->buf == NULL)
		return TR_ENOMEM;
	l->max_line = max_line;
	return TR_OK;
}

void tr__lines_fini(struct tr__lines *l)
{
	if (l == NULL)
		return;
	free(l->buf);
	*l = (struct tr__lines){0};
}

/* Emits line[0..len) as a complete line, less a trailing '\r'. */
static void emit_line(
    const char *line, size_t len, tr__lines_emit emit, void *arg)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	emit(arg, line, len, false);
}

/* Appends k bytes holding no '\n' to the current line. */
static void append(struct tr__lines *l, const char *p, size_t k,
    tr__lines_emit emit, void *arg)
{
	size_t max = l->max_line;
	while (k > 0) {
		if (l->len >= max) {
			/* Full, and more of the line is coming. */
			if (l->len == max && p[0] == '\r') {
				l->buf[l->len++] = '\r';
				p++;
				k--;
				continue;
			}
			emit(arg, l->buf, max, true);
			/* The held '\r' (len max + 1) was not the line's
			 * end: it starts the next piece. */
			l->len = l->len > max ? 1 : 0;
			if (l->len == 1)
				l->buf[0] = '\r';
			continue;
		}
		size_t take = max - l->len < k ? max - l->len : k;
		memcpy(l->buf + l->len, p, take);
		l->len += take;
		p += take;
		k -= take;
	}
}

void tr__lines_feed(struct tr__lines *l, const char *buf, size_t n,
    tr__lines_emit emit, void *arg)
{
	while (n > 0) {
		const char *nl = memchr(buf, '\n', n);
		size_t seg = nl != NULL ? (size_t)(nl - buf) : n;
		if (nl != NULL && l->len == 0 && seg <= l->max_line) {
			/* A whole line in the input: no copy. */
			emit_line(buf, seg, emit, arg);
		} else {
			append(l, buf, seg, emit, arg);
			if (nl == NULL)
				return;
			emit_line(l->buf, l->len, emit, arg);
			l->len = 0;
		}
		buf += seg + 1;
		n -= seg + 1;
	}
}

void tr__lines_flush(struct tr__lines *l, tr__lines_emit emit, void *arg)
{
	if (l->len == 0)
		return;
	emit_line(l->buf, l->len, emit, arg);
	l->len = 0;
}

ssize_t tr__lines_read_fd(
    struct tr__lines *l, int fd, tr__lines_emit emit, void *arg)
{
	char chunk[TR__LINES_READ];
	ssize_t n;
	do
		n = read(fd, chunk, sizeof(chunk));
	while (n < 0 && errno == EINTR);
	if (n > 0)
		tr__lines_feed(l, chunk, (size_t)n, emit, arg);
	else if (n == 0)
		tr__lines_flush(l, emit, arg);
	return n;
}
