/*
 * The parser, bugs included (parse.h lists them). Each bug is one a C
 * parser really has; where the real bug would be undefined behaviour,
 * which an optimiser may turn into anything (or remove), the code makes
 * its usual outcome happen for certain instead, and says so.
 */
#include "parse.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where one field is put together: the key, and where its value goes. In
 * the parser this stands for, `key` is filled with an unchecked copy, so
 * a long key runs over it into `out`. */
struct slot {
	char key[PARSE_KEY_MAX];
	char *out;
};

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

/* Copies the key [k, k + klen) into the slot, without its NUL (its length
 * is kept beside it). */
static void copy_key(struct slot *s, const char *k, size_t klen)
{
	if (klen > PARSE_KEY_MAX) {
		/* BUG, on purpose: there is no check of klen against the
		 * buffer. The real code copies all of the key, and its bytes
		 * past PARSE_KEY_MAX land on `out`, the pointer the value is
		 * written through next: a segfault. Such an overrun is
		 * undefined behaviour, whose effect depends on the layout,
		 * the compiler and the bytes, so the sample simulates its
		 * usual end: `out` becomes an address made from the byte
		 * that overran, in the first page of the address space,
		 * which is never mapped. The volatile keeps the compiler
		 * from seeing through it. */
		volatile uintptr_t smashed =
		    16u + (unsigned char)k[PARSE_KEY_MAX];
		memcpy(s->key, k, PARSE_KEY_MAX);
		s->out = (char *)smashed;
		return;
	}
	memcpy(s->key, k, klen);
}

/* Skips the blanks before a value. */
static const char *skip_blanks(const char *p, const char *end)
{
	/* BUG, on purpose: a tab is taken for a blank but does not move
	 * `q` on (the `q++` was meant for both), so a value that starts
	 * with a tab spins here for ever. `q` is volatile so that the
	 * compiler keeps the loop: C lets it assume that a loop without
	 * side effects ends. */
	volatile const char *q = p;
	while (q < end && (*q == ' ' || *q == '\t')) {
		if (*q == ' ')
			q++;
	}
	return (const char *)q;
}

/* Decodes the value [v, end) with its %XX escapes into s->out, which has
 * room for PARSE_VALUE_MAX bytes; returns its length, or -1 when it is
 * too long. */
static long decode_value(struct slot *s, const char *v, const char *end)
{
	volatile char *o = s->out; /* written as the real code does, byte by
	                            * byte: the first write through a
	                            * smashed `out` is the segfault */
	size_t n = 0;
	while (v < end) {
		if (n + 1 >= PARSE_VALUE_MAX)
			return -1;
		char c = *v++;
		if (c == '%') {
			int hi = v < end ? hex(v[0]) : -1;
			int lo = v + 1 < end ? hex(v[1]) : -1;
			/* BUG, on purpose: the author "knew" that a '%' is
			 * always followed by two hex digits and asserted it,
			 * with a check that stays in release builds (an
			 * assert() would vanish under NDEBUG). Input is not
			 * an invariant: a bad escape aborts the process. */
			if (hi < 0 || lo < 0) {
				fprintf(
				    stderr, "parse.c: bad escape, aborting\n");
				abort();
			}
			c = (char)(hi * 16 + lo);
			v += 2;
		}
		o[n++] = c;
	}
	o[n] = '\0';
	return (long)n;
}

size_t parse_request(const char *in, size_t len, char *out, size_t cap)
{
	char body[PARSE_VALUE_MAX * 4];
	char value[PARSE_VALUE_MAX];
	size_t blen = 0;
	unsigned nfields = 0;
	const char *end = in + len;
	body[0] = '\0';
	for (const char *f = in; f < end;) {
		const char *fe = memchr(f, ';', (size_t)(end - f));
		if (fe == NULL)
			fe = end;
		const char *eq = memchr(f, '=', (size_t)(fe - f));
		if (eq == NULL)
			return (size_t)snprintf(out, cap,
			    "invalid: field %u has no '='", nfields + 1);
		size_t klen = (size_t)(eq - f);
		if (klen == 0)
			return (size_t)snprintf(out, cap,
			    "invalid: field %u has no key", nfields + 1);
		nfields++;
		struct slot s;
		s.out = value;
		copy_key(&s, f, klen);
		long vlen = decode_value(&s, skip_blanks(eq + 1, fe), fe);
		if (vlen < 0)
			return (size_t)snprintf(out, cap,
			    "invalid: the value of field %u is too long",
			    nfields);
		int w = snprintf(body + blen, sizeof(body) - blen, " %.*s=%s",
		    (int)klen, s.key, value);
		if (w > 0)
			blen += (size_t)w < sizeof(body) - blen
			            ? (size_t)w
			            : sizeof(body) - blen - 1;
		if (fe == end)
			break;
		f = fe + 1;
	}
	return (size_t)snprintf(
	    out, cap, "%u field%s:%s", nfields, nfields == 1 ? "" : "s", body);
}
