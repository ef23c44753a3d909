/*
 * Splitting a process child's stdout or stderr into lines, for the log:
 * one splitter per stream, a fixed buffer, no allocation after init.
 *
 * Bytes are passed through as they are: invalid UTF-8, NUL bytes and
 * control characters reach the emit callback unchanged (a line may hold
 * NULs: use its length, never strlen), and whoever writes the line to a
 * log escapes it. Only '\n' ends a line, and a '\r' just before it is
 * dropped.
 */
#ifndef TR_PROC_LINES_H
#define TR_PROC_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "troupe/troupe.h"

/* Called for each line: `line` (not NUL-terminated, valid during the call
 * only) holds `len` bytes without the '\n' and a '\r' before it. partial:
 * the line is longer than max_line and this is its next max_line bytes;
 * more of it follows, the last piece with partial false. */
typedef void (*tr__lines_emit)(
    void *arg, const char *line, size_t len, bool partial);

/* One stream's splitter. Not thread-safe: one reader at a time. */
struct tr__lines {
	/* max_line + 1 bytes: room for a '\r' that may come just before
	 * the '\n' of a full line. */
	char *buf;
	size_t max_line;
	size_t len; /* bytes of the current line held in buf */
};

/* The most tr__lines_read_fd reads in one call. */
#define TR__LINES_READ 8192

/* Makes an empty splitter whose lines are at most max_line bytes (e.g.
 * 4096); longer ones come in pieces. Errors: TR_EINVAL (l NULL, max_line
 * 0 or above 64 MiB), TR_ENOMEM. */
int tr__lines_init(struct tr__lines *l, size_t max_line);

/* Frees the buffer; bytes of an unfinished line are dropped (flush first
 * to keep them). Idempotent; l NULL is ignored. */
void tr__lines_fini(struct tr__lines *l);

/* Feeds n bytes: emit is called for every line that they complete, and
 * for every max_line bytes of a line that is longer (partial = true: a
 * line of exactly max_line bytes comes whole, the next byte decides). A
 * line split across feeds is joined. */
void tr__lines_feed(struct tr__lines *l, const char *buf, size_t n,
    tr__lines_emit emit, void *arg);

/* At EOF: emits what is held as a last line (partial false), if
 * anything is; the splitter is then empty. Calling it again emits
 * nothing. */
void tr__lines_flush(struct tr__lines *l, tr__lines_emit emit, void *arg);

/* One read(2) of at most TR__LINES_READ bytes from fd (retried on EINTR),
 * fed to the splitter. Returns the bytes read (> 0); 0 at EOF, after
 * flushing; -1 with errno EAGAIN (or EWOULDBLOCK) when a non-blocking fd
 * has nothing now; -1 with read's errno on another error. */
ssize_t tr__lines_read_fd(
    struct tr__lines *l, int fd, tr__lines_emit emit, void *arg);

#endif
