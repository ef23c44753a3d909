/*
 * The RESP2 request parser (resp_parse.h; the writers are in
 * resp_reply.c).
 *
 * The parser's place in the request at the head of its buffer is a state
 * and offsets from that head: the count line of an array (COUNT), the
 * header line of each bulk string (BULK_HDR) and its bytes (BULK_DATA),
 * or an inline line (INLINE). A line end is searched for from where the
 * last search stopped, a bulk string's bytes are waited for as a whole,
 * so a request split in many pieces costs no more than one in one piece.
 * Input is checked as Redis checks it (networking.c's processInlineBuffer
 * and processMultibulkBuffer), and the CRLF after each line and bulk
 * string, which Redis skips unchecked, must be there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp_parse.h"

enum { ST_START, ST_COUNT, ST_BULK_HDR, ST_BULK_DATA, ST_INLINE };

#define BUF_FIRST 4096u
#define BUF_SHRINK (256u * 1024u)

void resp_parser_init(resp_parser *p, const resp_limits *lim)
{
	memset(p, 0, sizeof(*p));
	if (lim != NULL)
		p->lim = *lim;
	if (p->lim.max_argc == 0)
		p->lim.max_argc = RESP_MAX_ARGC_DEFAULT;
	if (p->lim.max_bulk == 0)
		p->lim.max_bulk = RESP_MAX_BULK_DEFAULT;
	if (p->lim.max_inline == 0)
		p->lim.max_inline = RESP_MAX_INLINE_DEFAULT;
	if (p->lim.max_request == 0)
		p->lim.max_request = RESP_MAX_REQUEST_DEFAULT;
	p->state = ST_START;
}

void resp_parser_fini(resp_parser *p)
{
	free(p->buf);
	free(p->offs);
	free(p->lens);
	free(p->argv);
	free(p->ibuf);
	memset(p, 0, sizeof(*p));
}

bool resp_parse_feed(resp_parser *p, const void *data, size_t n)
{
	if (n == 0)
		return true;
	if (p->head == p->len) {
		p->head = p->len = 0;
		if (p->cap > BUF_SHRINK && n <= BUF_FIRST) {
			free(p->buf);
			p->buf = NULL;
			p->cap = 0;
		}
	}
	if (p->cap - p->len < n + 1 && p->head > 0) {
		memmove(p->buf, p->buf + p->head, p->len - p->head);
		p->len -= p->head;
		p->head = 0;
	}
	if (p->cap - p->len < n + 1) {
		size_t nc = p->cap != 0 ? p->cap : BUF_FIRST;
		while (nc - p->len < n + 1)
			nc *= 2;
		char *nb = realloc(p->buf, nc);
		if (nb == NULL)
			return false;
		p->buf = nb;
		p->cap = nc;
	}
	memcpy(p->buf + p->len, data, n);
	p->len += n;
	return true;
}

const char *resp_parse_error(const resp_parser *p)
{
	return p->why;
}

size_t resp_parse_pending(const resp_parser *p)
{
	return p->len - p->head;
}

size_t resp_parse_capacity(const resp_parser *p)
{
	return p->cap + p->icap +
	       (size_t)p->acap * (2 * sizeof(size_t) + sizeof(resp_arg));
}

static int refuse(resp_parser *p, const char *why)
{
	p->why = why;
	return RESP_ERROR;
}

/* Reads the number line that starts at `start` (after its '*' or '$') of
 * the request at `b` (n bytes): RESP_CMD with *v, RESP_NEED, or
 * RESP_ERROR (`toobig` when no line end comes within max_inline, `bad`
 * when it is no number). Sets p->pos past its CRLF. */
static int number_line(resp_parser *p, const char *b, size_t n, size_t start,
    int64_t *v, const char *toobig, const char *bad)
{
	if (p->scan <= start) {
		/* The usual line first: a short number and its CRLF, all in
		 * (what the search below would find, sooner). */
		size_t j = start;
		uint64_t u = 0;
		while (j < n && j - start < 18 && (unsigned)(b[j] - '0') <= 9)
			u = u * 10 + (unsigned)(b[j++] - '0');
		if (j > start && j + 1 < n && b[j] == '\r' &&
		    b[j + 1] == '\n' && (b[start] != '0' || j == start + 1) &&
		    j - start <= p->lim.max_inline) {
			*v = (int64_t)u;
			p->pos = p->scan = j + 2;
			return RESP_CMD;
		}
		p->scan = start;
	}
	const char *cr = memchr(b + p->scan, '\r', n - p->scan);
	if (cr == NULL) {
		p->scan = n;
		return n - start > p->lim.max_inline ? refuse(p, toobig)
		                                     : RESP_NEED;
	}
	size_t at = (size_t)(cr - b);
	p->scan = at;
	if (at - start > p->lim.max_inline)
		return refuse(p, toobig);
	if (at + 1 >= n)
		return RESP_NEED;
	if (b[at + 1] != '\n' || !resp_arg_int(b + start, at - start, v))
		return refuse(p, bad);
	p->pos = at + 2;
	p->scan = p->pos;
	return RESP_CMD;
}

/* Room for `need` arguments in offs, lens and argv. */
static bool args_room(resp_parser *p, size_t need)
{
	if (need <= p->acap)
		return true;
	size_t nc = p->acap != 0 ? p->acap : 8;
	while (nc < need)
		nc *= 2;
	size_t *o = realloc(p->offs, nc * sizeof(*o));
	if (o != NULL)
		p->offs = o;
	size_t *l = realloc(p->lens, nc * sizeof(*l));
	if (l != NULL)
		p->lens = l;
	resp_arg *a = realloc(p->argv, nc * sizeof(*a));
	if (a != NULL)
		p->argv = a;
	if (o == NULL || l == NULL || a == NULL)
		return false;
	p->acap = (uint32_t)nc;
	return true;
}

/* The request at the head is taken: `used` bytes. */
static void take(resp_parser *p, size_t used)
{
	p->head += used;
	p->state = ST_START;
	p->pos = p->scan = 0;
	p->nargs = p->argc = 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
	       c == '\f';
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Splits an inline line (n bytes at s, ended early by a NUL as in Redis's
 * sdssplitargs) into words in p->ibuf, their offsets and lengths in
 * p->offs and p->lens; sets p->nargs. RESP_CMD, or RESP_ERROR. */
static int split_words(resp_parser *p, const char *s, size_t n)
{
	const char *nul = memchr(s, '\0', n);
	const char *end = nul != NULL ? nul : s + n;
	const char *q = s;
	if (p->icap < 2 * n + 1) {
		char *nb = realloc(p->ibuf, 2 * n + 1);
		if (nb == NULL)
			return refuse(p, "Protocol error: out of memory");
		p->ibuf = nb;
		p->icap = 2 * n + 1;
	}
	size_t w = 0;
	p->nargs = 0;
	for (;;) {
		while (q < end && is_space(*q))
			q++;
		if (q == end)
			return RESP_CMD;
		if (p->nargs == p->lim.max_argc)
			return refuse(
			    p, "Protocol error: invalid multibulk length");
		if (!args_room(p, (size_t)p->nargs + 1))
			return refuse(p, "Protocol error: out of memory");
		size_t start = w;
		bool inq = false, insq = false;
		for (;;) {
			char c = q < end ? *q : '\0';
			if (inq) {
				if (c == '\\' && q + 3 < end && q[1] == 'x' &&
				    hex(q[2]) >= 0 && hex(q[3]) >= 0) {
					p->ibuf[w++] =
					    (char)(hex(q[2]) * 16 + hex(q[3]));
					q += 3;
				} else if (c == '\\' && q + 1 < end) {
					q++;
					char e = *q;
					p->ibuf[w++] = e == 'n'   ? '\n'
					               : e == 'r' ? '\r'
					               : e == 't' ? '\t'
					               : e == 'b' ? '\b'
					               : e == 'a' ? '\a'
					                          : e;
				} else if (c == '"') {
					if (q + 1 < end && !is_space(q[1]))
						goto unbalanced;
					q++;
					break;
				} else if (q == end) {
					goto unbalanced;
				} else {
					p->ibuf[w++] = c;
				}
			} else if (insq) {
				if (c == '\\' && q + 1 < end && q[1] == '\'') {
					q++;
					p->ibuf[w++] = '\'';
				} else if (c == '\'') {
					if (q + 1 < end && !is_space(q[1]))
						goto unbalanced;
					q++;
					break;
				} else if (q == end) {
					goto unbalanced;
				} else {
					p->ibuf[w++] = c;
				}
			} else if (q == end || is_space(c)) {
				break;
			} else if (c == '"') {
				inq = true;
			} else if (c == '\'') {
				insq = true;
			} else {
				p->ibuf[w++] = c;
			}
			q++;
		}
		p->offs[p->nargs] = start;
		p->lens[p->nargs] = w - start;
		p->ibuf[w++] = '\0';
		p->nargs++;
	}
unbalanced:
	return refuse(p, "Protocol error: unbalanced quotes in request");
}

/* An inline request at b (n bytes). */
static int inline_line(resp_parser *p, char *b, size_t n)
{
	const char *nl = memchr(b + p->scan, '\n', n - p->scan);
	if (nl == NULL) {
		/* Too long already, even if a CR that came last ends it. */
		size_t sofar = n - (n > 0 && b[n - 1] == '\r');
		p->scan = n;
		return sofar > p->lim.max_inline
		           ? refuse(p, "Protocol error: too big inline request")
		           : RESP_NEED;
	}
	size_t at = (size_t)(nl - b), linelen = at;
	if (linelen > 0 && b[linelen - 1] == '\r')
		linelen--;
	if (linelen > p->lim.max_inline)
		return refuse(p, "Protocol error: too big inline request");
	int r = split_words(p, b, linelen);
	if (r != RESP_CMD)
		return r;
	p->pos = at + 1;
	return RESP_CMD;
}

/* The arguments of the complete request at b: argv, each NUL-ended. */
static void finish(resp_parser *p, char *base)
{
	for (uint32_t i = 0; i < p->nargs; i++) {
		p->argv[i].p = base + p->offs[i];
		p->argv[i].len = p->lens[i];
		base[p->offs[i] + p->lens[i]] = '\0';
	}
}

/* A short number and its CRLF at b[*at ..), all in and within the
 * limits: its value, and *at past the CRLF; else -1. */
static int64_t short_number(
    const resp_parser *p, const char *b, size_t n, size_t *at)
{
	size_t j = *at, start = *at;
	int64_t u = 0;
	while (j < n && j - start < 18 && (unsigned)(b[j] - '0') <= 9)
		u = u * 10 + (b[j++] - '0');
	if (j == start || j + 1 >= n || b[j] != '\r' || b[j + 1] != '\n' ||
	    (b[start] == '0' && j > start + 1) || j - start > p->lim.max_inline)
		return -1;
	*at = j + 2;
	return u;
}

/* The usual request: an array whose bytes are all in and keep to every
 * limit, read in one go. RESP_CMD, or RESP_NEED to leave the request to
 * the careful path below (which reads it from its start again: nothing
 * here changes the parser until the request is taken). */
static int whole_array(
    resp_parser *p, char *b, size_t n, uint32_t *argc, resp_arg **argv)
{
	size_t at = 1;
	int64_t count = short_number(p, b, n, &at);
	if (count <= 0 || count > (int64_t)p->lim.max_argc ||
	    !args_room(p, (size_t)count))
		return RESP_NEED;
	for (int64_t i = 0; i < count; i++) {
		if (at >= n || b[at] != '$')
			return RESP_NEED;
		at++;
		int64_t len = short_number(p, b, n, &at);
		if (len < 0 || len > (int64_t)p->lim.max_bulk ||
		    at + (size_t)len + 2 > n ||
		    at + (size_t)len + 2 > p->lim.max_request ||
		    b[at + len] != '\r' || b[at + len + 1] != '\n')
			return RESP_NEED;
		p->argv[i] = (resp_arg){.p = b + at, .len = (size_t)len};
		at += (size_t)len + 2;
	}
	for (int64_t i = 0; i < count; i++)
		((char *)p->argv[i].p)[p->argv[i].len] = '\0';
	*argc = (uint32_t)count;
	*argv = p->argv;
	take(p, at);
	return RESP_CMD;
}

int resp_parse_next(resp_parser *p, uint32_t *argc, resp_arg **argv)
{
	int64_t v;
	int r;
	if (p->why != NULL)
		return RESP_ERROR;
	if (p->buf == NULL)
		return RESP_NEED; /* nothing fed yet */
	for (;;) {
		char *b = p->buf + p->head;
		size_t n = p->len - p->head;
		switch (p->state) {
		case ST_START:
			if (n == 0)
				return RESP_NEED;
			if (b[0] == '*' &&
			    whole_array(p, b, n, argc, argv) == RESP_CMD)
				return RESP_CMD;
			p->state = b[0] == '*' ? ST_COUNT : ST_INLINE;
			p->pos = p->scan = b[0] == '*' ? 1 : 0;
			break;
		case ST_COUNT:
			r = number_line(p, b, n, 1, &v,
			    "Protocol error: too big mbulk count string",
			    "Protocol error: invalid multibulk length");
			if (r != RESP_CMD)
				return r;
			if (v > (int64_t)p->lim.max_argc)
				return refuse(p,
				    "Protocol error: invalid multibulk length");
			if (v <= 0) {
				take(p, p->pos); /* empty: skipped */
				break;
			}
			p->argc = (uint32_t)v;
			p->nargs = 0;
			p->state = ST_BULK_HDR;
			break;
		case ST_BULK_HDR:
			if (n <= p->pos)
				return RESP_NEED;
			if (b[p->pos] != '$') {
				snprintf(p->why_buf, sizeof(p->why_buf),
				    "Protocol error: expected '$', got '%c'",
				    b[p->pos]);
				return refuse(p, p->why_buf);
			}
			r = number_line(p, b, n, p->pos + 1, &v,
			    "Protocol error: too big bulk count string",
			    "Protocol error: invalid bulk length");
			if (r != RESP_CMD)
				return r;
			if (v < 0 || v > (int64_t)p->lim.max_bulk)
				return refuse(
				    p, "Protocol error: invalid bulk length");
			if (p->pos + (size_t)v + 2 > p->lim.max_request)
				return refuse(
				    p, "Protocol error: too big request");
			p->bulk = (size_t)v;
			p->state = ST_BULK_DATA;
			break;
		case ST_BULK_DATA:
			if (n < p->pos + p->bulk + 2)
				return RESP_NEED;
			if (b[p->pos + p->bulk] != '\r' ||
			    b[p->pos + p->bulk + 1] != '\n')
				return refuse(p, "Protocol error: expected "
				                 "CRLF after bulk data");
			if (!args_room(p, (size_t)p->nargs + 1))
				return refuse(
				    p, "Protocol error: out of memory");
			p->offs[p->nargs] = p->pos;
			p->lens[p->nargs] = p->bulk;
			p->nargs++;
			p->pos += p->bulk + 2;
			p->scan = p->pos;
			if (p->nargs < p->argc) {
				p->state = ST_BULK_HDR;
				break;
			}
			finish(p, b);
			*argc = p->nargs;
			*argv = p->argv;
			take(p, p->pos);
			return RESP_CMD;
		case ST_INLINE:
			r = inline_line(p, b, n);
			if (r != RESP_CMD)
				return r;
			if (p->nargs == 0) {
				take(p, p->pos); /* a blank line: skipped */
				break;
			}
			finish(p, p->ibuf);
			*argc = p->nargs;
			*argv = p->argv;
			take(p, p->pos);
			return RESP_CMD;
		}
	}
}
