/*
 * The reply writers of resp_parse.h, and its numbers: Redis's strict
 * reading of an integer argument, and the writing of one.
 */
#include <stdlib.h>
#include <string.h>

#include "resp_parse.h"

bool resp_arg_int(const char *s, size_t n, int64_t *v)
{
	size_t i = 0;
	bool neg = false;
	if (n == 0 || n > 20)
		return false;
	if (n == 1 && s[0] == '0') {
		*v = 0;
		return true;
	}
	if (s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || s[i] < '1' || s[i] > '9')
		return false;
	uint64_t u = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (u > (UINT64_MAX - d) / 10)
			return false;
		u = u * 10 + d;
	}
	if (neg) {
		if (u > (uint64_t)INT64_MAX + 1)
			return false;
		*v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	} else {
		if (u > (uint64_t)INT64_MAX)
			return false;
		*v = (int64_t)u;
	}
	return true;
}

void resp_buf_init(resp_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void resp_buf_fini(resp_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

bool resp_buf_reserve(resp_buf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t nc = b->cap != 0 ? b->cap : 1024;
	while (nc - b->len < n)
		nc *= 2;
	char *np = realloc(b->p, nc);
	if (np == NULL) {
		b->oom = true;
		return false;
	}
	b->p = np;
	b->cap = nc;
	return true;
}

void resp_buf_put(resp_buf *b, const void *p, size_t n)
{
	if (n > 0 && resp_buf_reserve(b, n)) {
		memcpy(b->p + b->len, p, n);
		b->len += n;
	}
}

void resp_buf_reset(resp_buf *b, size_t keep)
{
	b->len = 0;
	if (b->cap > keep) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

size_t resp_fmt_int(char *out, int64_t v)
{
	char tmp[20];
	size_t n = 0, len = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		out[len++] = '-';
	while (n > 0)
		out[len++] = tmp[--n];
	return len;
}

/* c, the number v and CRLF. */
static void put_num_line(resp_buf *b, char c, int64_t v)
{
	if (!resp_buf_reserve(b, 23))
		return;
	char *o = b->p + b->len;
	o[0] = c;
	size_t n = 1 + resp_fmt_int(o + 1, v);
	o[n] = '\r';
	o[n + 1] = '\n';
	b->len += n + 2;
}

void resp_put_simple(resp_buf *b, const char *s, size_t n)
{
	if (!resp_buf_reserve(b, n + 3))
		return;
	char *o = b->p + b->len;
	o[0] = '+';
	memcpy(o + 1, s, n);
	o[n + 1] = '\r';
	o[n + 2] = '\n';
	b->len += n + 3;
}

void resp_put_error(resp_buf *b, const char *s, size_t n)
{
	if (!resp_buf_reserve(b, n + 3))
		return;
	char *o = b->p + b->len;
	o[0] = '-';
	for (size_t i = 0; i < n; i++)
		o[1 + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
	o[n + 1] = '\r';
	o[n + 2] = '\n';
	b->len += n + 3;
}

void resp_put_errorz(resp_buf *b, const char *s)
{
	resp_put_error(b, s, strlen(s));
}

void resp_put_int(resp_buf *b, int64_t v)
{
	put_num_line(b, ':', v);
}

void resp_put_bulk(resp_buf *b, const void *p, size_t n)
{
	if (!resp_buf_reserve(b, n + 25))
		return;
	put_num_line(b, '$', (int64_t)n);
	memcpy(b->p + b->len, p, n);
	b->p[b->len + n] = '\r';
	b->p[b->len + n + 1] = '\n';
	b->len += n + 2;
}

void resp_put_null(resp_buf *b)
{
	resp_buf_put(b, "$-1\r\n", 5);
}

void resp_put_array(resp_buf *b, int64_t n)
{
	put_num_line(b, '*', n);
}
