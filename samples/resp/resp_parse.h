/*
 * RESP2, the Redis protocol: an incremental parser of requests
 * (resp_parse.c) and the writers of replies (resp_reply.c). Pure C: no
 * sockets, no threads, no troupe; a connection actor drives one parser,
 * and a test or a fuzzer can drive one alone.
 *
 * Requests come in two shapes, as Redis takes them:
 *
 *   - an array of bulk strings, what redis-cli and redis-benchmark send:
 *     "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
 *   - an inline command, a line of words, what nc and telnet send:
 *     "GET k\r\n" (the '\r' is optional; words split on white space, and
 *     "double" or 'single' quotes make one word of several, with the
 *     escapes of redis-cli: \n \r \t \b \a \\ \" \xHH, and \' in single
 *     quotes).
 *
 * Bytes are fed as they come (resp_parse_feed), in pieces split anywhere,
 * and whole requests are taken one at a time (resp_parse_next). The
 * parser keeps its place in a request that is not complete yet, so each
 * byte is looked at about once however the input is split.
 *
 * Bounds (resp_limits): a request has at most max_argc arguments, each of
 * at most max_bulk bytes, at most max_request bytes in all; an inline line
 * and the count line of an array or a bulk string are at most max_inline
 * bytes. Past any of them, as for any malformed input, the parser refuses
 * the stream for good with Redis's error ("Protocol error: invalid bulk
 * length", ...), which the server writes back as "-ERR " and the text
 * before it closes the connection, as Redis does. The buffer holds the
 * bytes fed and not yet taken: at most one incomplete request (so at most
 * max_request bytes) plus what was fed after it.
 */
#ifndef RESP_PARSE_H
#define RESP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The defaults of resp_limits (0 in a field means its default). Redis's
 * own are 1024 * 1024 arguments, 512 MiB a bulk string and 64 KiB an
 * inline request; these keep a connection's memory smaller. */
#define RESP_MAX_ARGC_DEFAULT (64u * 1024u)
#define RESP_MAX_BULK_DEFAULT (16u * 1024u * 1024u)
#define RESP_MAX_INLINE_DEFAULT (64u * 1024u)
#define RESP_MAX_REQUEST_DEFAULT (64u * 1024u * 1024u)

typedef struct resp_limits {
	uint32_t max_argc;
	uint32_t max_bulk;
	uint32_t max_inline;
	uint32_t max_request;
} resp_limits;

/* One argument of a request: `len` bytes at `p` (which are followed by a
 * NUL byte, so that a number can be read with strtoll). */
typedef struct resp_arg {
	const char *p;
	size_t len;
} resp_arg;

/* What resp_parse_next found. */
enum {
	RESP_NEED = 0,  /* no whole request yet: feed more */
	RESP_CMD = 1,   /* a request: argc arguments at argv */
	RESP_ERROR = 2, /* the input broke the protocol: resp_parse_error */
};

/* A parser. The fields are private to resp_parse.c; embed it. */
typedef struct resp_parser {
	resp_limits lim;
	char *buf;
	size_t cap, len; /* bytes at buf, bytes fed there */
	size_t head;     /* bytes of it taken: the current request's start */
	/* Progress in the current request (offsets from head). */
	int state;
	size_t pos;     /* bytes of the request parsed */
	size_t scan;    /* bytes of the request searched for a line end */
	size_t bulk;    /* the bulk string being read: its length */
	uint32_t argc;  /* an array's count */
	uint32_t nargs; /* arguments complete */
	size_t *offs;   /* their offsets and lengths, until complete */
	size_t *lens;
	uint32_t acap; /* room in offs, lens and argv */
	resp_arg *argv;
	char *ibuf; /* an inline request's words, unescaped */
	size_t icap;
	const char *why; /* the refusal, once refused */
	char why_buf[64];
} resp_parser;

/* Starts a parser with limits `lim` (NULL: all defaults). Allocates
 * nothing; pair it with resp_parser_fini. */
void resp_parser_init(resp_parser *p, const resp_limits *lim);

/* Frees what the parser holds. */
void resp_parser_fini(resp_parser *p);

/* Appends `n` bytes at `data` to what the parser holds (copied). False
 * when memory runs out (nothing is taken). */
bool resp_parse_feed(resp_parser *p, const void *data, size_t n);

/* Takes the next request. RESP_CMD: `*argc` arguments at `*argv`, which
 * point into the parser and stay valid until its next call; empty
 * requests ("*0\r\n", a blank line) are skipped, as Redis skips them.
 * RESP_NEED: the bytes fed hold no whole request yet. RESP_ERROR: the
 * stream is refused, for good (every later call says so again), and
 * resp_parse_error says why; also when memory runs out. */
int resp_parse_next(resp_parser *p, uint32_t *argc, resp_arg **argv);

/* The refusal ("Protocol error: ..."), or NULL while there is none. */
const char *resp_parse_error(const resp_parser *p);

/* Bytes fed and not yet taken. */
size_t resp_parse_pending(const resp_parser *p);

/* Bytes the parser's buffer holds (its capacity), for bounds checks. */
size_t resp_parse_capacity(const resp_parser *p);

/* ---- replies ------------------------------------------------------------ */

/* A growing buffer of replies. A writer that cannot get memory marks the
 * buffer failed (`oom`), and the later writers do nothing: check once at
 * the end. */
typedef struct resp_buf {
	char *p;
	size_t len, cap;
	bool oom;
} resp_buf;

void resp_buf_init(resp_buf *b);
void resp_buf_fini(resp_buf *b);

/* Makes room for `n` more bytes; false (and oom) when there is none. */
bool resp_buf_reserve(resp_buf *b, size_t n);

/* Appends raw bytes (a reply already encoded). */
void resp_buf_put(resp_buf *b, const void *p, size_t n);

/* Empties the buffer; gives its memory back if it grew past `keep`. */
void resp_buf_reset(resp_buf *b, size_t keep);

/* "+s\r\n": a simple string (s must hold no CR or LF). */
void resp_put_simple(resp_buf *b, const char *s, size_t n);
/* "-s\r\n": an error, "ERR ..." by custom; CR and LF become spaces. */
void resp_put_error(resp_buf *b, const char *s, size_t n);
/* resp_put_error of a NUL-terminated text. */
void resp_put_errorz(resp_buf *b, const char *s);
/* ":v\r\n": an integer. */
void resp_put_int(resp_buf *b, int64_t v);
/* "$n\r\n...\r\n": a bulk string. */
void resp_put_bulk(resp_buf *b, const void *p, size_t n);
/* "$-1\r\n": the null bulk string. */
void resp_put_null(resp_buf *b);
/* "*n\r\n": an array of n replies, which follow (n of -1: the null array). */
void resp_put_array(resp_buf *b, int64_t n);

/* Writes v in decimal at `out` (room for 20 bytes); returns the length. */
size_t resp_fmt_int(char *out, int64_t v);

/* Reads a whole argument as a 64-bit integer as Redis does (decimal, an
 * optional '-', no '+', no white space, no leading zeros, within range);
 * false when it is not one. */
bool resp_arg_int(const char *p, size_t n, int64_t *v);

#endif
