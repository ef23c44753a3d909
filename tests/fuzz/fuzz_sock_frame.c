/*
 * Fuzz target: the framing of a socket's reads (tr__sk_frame,
 * transport/sock_read.c), which finds the answer to a pending
 * tr_sock_recv (whatever arrived, exactly n bytes, a line, a
 * length-prefixed frame) in the bytes buffered so far.
 *
 * The target plays a connection: a stream arrives in pieces of sizes the
 * input chooses, and each read takes at most what the read buffer has
 * room for, with the buffer and offset bookkeeping of sock_conn.c (its
 * growth, its memmove, its shrinking, a RAW read's bound on the room), so
 * that tr__sk_frame sees what it sees on a real connection. Reads are
 * asked for one after another, as an owner does after each answer. Every
 * call is checked against troupe/sock.h and sock_int.h, written here again
 * from those alone:
 *
 * - an answer lies within the buffered bytes and is the stream's next
 *   bytes; it is never longer than max_packet; RAW gives everything
 *   buffered up to its n (at least 1 byte), EXACT exactly n, a LINE ends
 *   at its first '\n', a FRAME is as long as its 4-byte big-endian prefix
 *   says and comes without it;
 * - NEED only when the answer is not there, asking for more than is
 *   buffered and never for more than max_packet plus a frame's prefix
 *   (else the caller could not make room); with that, a read always has
 *   room;
 * - TOOBIG only for a line or frame over max_packet;
 * - the same stream and the same reads give the same answers and the
 *   same end, whether the stream comes in the input's pieces or all at
 *   once (RAW reads aside, whose answers are what happened to arrive).
 *
 * Input: bytes 0-1 = max_packet (big-endian; bit 15 clear: 1 + the low 14
 * bits, so 1 .. 16384; set: 1 + 32 times the low 15 bits, up to about
 * 1 MiB), byte 2 = the reads (bits 0-1: the mode of every read, RAW,
 * EXACT, LINE or FRAME; bit 2: each read's mode and n drawn from the
 * seed instead; bits 3-5: the pieces are of 1 .. 4^k bytes), bytes 3-4 =
 * n (big-endian: RAW's bound, 0 for none; EXACT's size, 1 + n %
 * max_packet), byte 5 = the seed of the pieces' sizes (and of the drawn
 * reads), then the stream.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sock_int.h"

#define FRAME_HDR 4u
#define RBUF_SHRINK (64u * 1024u) /* sock_conn.c's */
#define HEAD 6u

#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

#define CHECK(c)                                                               \
	do {                                                                   \
		if (!(c)) {                                                    \
			fprintf(stderr, "fuzz_sock_frame: %s:%d: %s\n",        \
			    __FILE__, __LINE__, #c);                           \
			abort();                                               \
		}                                                              \
	} while (0)

NO_COVERAGE static uint32_t next(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

NO_COVERAGE static size_t be32(const uint8_t *p)
{
	return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 |
	       (size_t)p[3];
}

/* What the input asks for. */
struct plan {
	const uint8_t *s; /* the stream */
	size_t n;
	size_t max_packet;
	int mode;   /* of every read, unless drawn */
	bool drawn; /* each read's mode and n from the seed */
	size_t raw_n, exact_n;
	uint32_t piece_max; /* 0: the whole stream in one piece */
	uint8_t seed;
};

/* One answer: where in the stream, how long. */
struct answer {
	int mode;
	size_t at, len;
};

enum { END_EOF, END_TOOBIG };

struct run {
	struct answer *a;
	size_t na;
	int end;
	size_t left; /* buffered, not answered, at the end */
	bool raw;    /* some read was RAW */
};

/* A connection's read side, as sock_conn.c keeps it. */
struct conn {
	uint8_t *rbuf;
	size_t rcap, roff, rlen;
	bool rfull;
	size_t max_packet;
};

/* sock_conn.c's rbuf_room: room in the buffer for `need` bytes in all. */
static bool room_for(struct conn *c, size_t need)
{
	size_t limit = c->max_packet + FRAME_HDR;
	if (c->rlen == 0 && c->rcap > RBUF_SHRINK && need <= TR__SK_RBUF_MIN) {
		free(c->rbuf);
		c->rbuf = NULL;
		c->rcap = 0;
	}
	size_t want = c->rcap != 0 ? c->rcap : TR__SK_RBUF_MIN;
	if (c->rfull && c->rlen + c->roff >= c->rcap && want < limit)
		want *= 2;
	while (want < need)
		want *= 2;
	if (want > limit)
		want = limit;
	if (want < need)
		return false;
	if (c->roff > 0 && (c->roff + c->rlen == c->rcap || want > c->rcap)) {
		memmove(c->rbuf, c->rbuf + c->roff, c->rlen);
		c->roff = 0;
	}
	if (want > c->rcap) {
		uint8_t *nb = realloc(c->rbuf, want);
		CHECK(nb != NULL);
		c->rbuf = nb;
		c->rcap = want;
	}
	c->rfull = false;
	return true;
}

/* The next read's request, as tr_sock_recv takes it (its checks
 * passed). */
static tr__sk_want request(const struct plan *p, uint32_t *rs)
{
	tr__sk_want w = {.mode = p->mode};
	size_t n = p->mode == TR_SOCK_RAW ? p->raw_n : p->exact_n;
	if (p->drawn) {
		uint32_t r = next(rs);
		w.mode = (int)(r & 3);
		n = (r >> 2) % 4 == 0 ? 0 : (r >> 4) % 300;
		if (w.mode == TR_SOCK_EXACT)
			n = 1 + n % p->max_packet;
	}
	w.n = w.mode == TR_SOCK_RAW || w.mode == TR_SOCK_EXACT ? n : 0;
	return w;
}

/* The first '\n' of b[0 .. len), or len; b[0 .. *clean) is known to
 * have none (so that a long line arriving a byte at a time costs linear
 * time here too). */
NO_COVERAGE static size_t first_nl(const uint8_t *b, size_t len, size_t *clean)
{
	size_t i = *clean;
	while (i < len && b[i] != '\n')
		i++;
	*clean = i;
	return i;
}

/* One call's result against the contract; `b` holds the `len` bytes
 * buffered; `clean` is first_nl's for the current read. */
static void check(const struct plan *p, const tr__sk_want *w, const uint8_t *b,
    size_t len, int r, size_t off, size_t plen, size_t used, size_t need,
    size_t *clean)
{
	size_t mp = p->max_packet, nl = first_nl(b, len, clean);
	bool line_big = nl < len ? nl + 1 > mp : len >= mp;
	bool frame_big = len >= FRAME_HDR && be32(b) > mp;
	switch (r) {
	case TR__SK_READY:
		CHECK(off <= len && plen <= len - off && used <= len);
		CHECK(off + plen <= used);
		CHECK(plen <= mp);
		switch (w->mode) {
		case TR_SOCK_RAW: {
			size_t want = len;
			if (w->n != 0 && w->n < want)
				want = w->n;
			if (mp < want)
				want = mp;
			CHECK(len > 0 && off == 0 && plen == want &&
			      used == plen);
			break;
		}
		case TR_SOCK_EXACT:
			CHECK(off == 0 && plen == w->n && used == plen);
			break;
		case TR_SOCK_LINE:
			CHECK(!line_big && off == 0 && plen == nl + 1);
			CHECK(used == plen && b[plen - 1] == '\n');
			break;
		case TR_SOCK_FRAME:
			CHECK(
			    !frame_big && len >= FRAME_HDR && off == FRAME_HDR);
			CHECK(plen == be32(b) && used == FRAME_HDR + plen);
			break;
		default:
			CHECK(0);
		}
		break;
	case TR__SK_NEED:
		CHECK(need > len && need <= mp + FRAME_HDR);
		switch (w->mode) {
		case TR_SOCK_RAW:
			CHECK(len == 0);
			break;
		case TR_SOCK_EXACT:
			CHECK(len < w->n);
			break;
		case TR_SOCK_LINE:
			CHECK(nl == len && !line_big);
			break;
		case TR_SOCK_FRAME:
			CHECK(len < FRAME_HDR ||
			      (!frame_big && len - FRAME_HDR < be32(b)));
			break;
		default:
			CHECK(0);
		}
		break;
	case TR__SK_TOOBIG:
		CHECK(w->mode == TR_SOCK_LINE
		          ? line_big
		          : w->mode == TR_SOCK_FRAME && frame_big);
		break;
	default:
		CHECK(0);
	}
}

/* The stream through a connection, read after read, until it fails or
 * the stream is spent with a read waiting. */
static void play(const struct plan *p, struct run *out)
{
	struct conn c = {.max_packet = p->max_packet};
	uint32_t ps = 0x9e3779b9u ^ p->seed, rs = 0x85ebca6bu ^ p->seed;
	size_t sent = 0, piece = 0; /* delivered; left of the current piece */
	size_t at = 0;              /* the stream offset of rbuf[roff] */
	out->na = 0;
	out->raw = false;
	for (;;) {
		tr__sk_want w = request(p, &rs);
		out->raw |= w.mode == TR_SOCK_RAW;
		size_t clean = 0;
		for (;;) {
			size_t off = 0, plen = 0, used = 0, need = 0;
			const uint8_t *b =
			    c.rbuf != NULL ? c.rbuf + c.roff : NULL;
			int r = tr__sk_frame(&w, b, c.rlen, p->max_packet, &off,
			    &plen, &used, &need);
			check(
			    p, &w, b, c.rlen, r, off, plen, used, need, &clean);
			if (r == TR__SK_TOOBIG) {
				out->end = END_TOOBIG;
				goto done;
			}
			if (r == TR__SK_READY) {
				CHECK(used > 0 && out->na < p->n);
				/* The answer is the stream's next bytes. */
				CHECK(plen == 0 ||
				      memcmp(b + off, p->s + at + off, plen) ==
				          0);
				out->a[out->na++] =
				    (struct answer){.mode = w.mode,
				        .at = at + off,
				        .len = plen};
				at += used;
				c.roff += used;
				c.rlen -= used;
				if (c.rlen == 0)
					c.roff = 0;
				break;
			}
			/* NEED: a read, if anything is left to arrive. */
			if (sent == p->n) {
				out->end = END_EOF;
				goto done;
			}
			size_t roff = c.roff;
			CHECK(room_for(&c, need));
			/* What it moved is what was there. */
			CHECK(c.roff == roff || c.rlen == 0 ||
			      memcmp(c.rbuf, p->s + at, c.rlen) == 0);
			size_t room = c.rcap - c.roff - c.rlen;
			if (w.mode == TR_SOCK_RAW && w.n != 0 && w.n < room)
				room = w.n;
			CHECK(room > 0);
			if (piece == 0) {
				piece = p->piece_max != 0
				            ? 1 + next(&ps) % p->piece_max
				            : p->n;
				if (piece > p->n - sent)
					piece = p->n - sent;
			}
			size_t k = room < piece ? room : piece;
			memcpy(c.rbuf + c.roff + c.rlen, p->s + sent, k);
			sent += k;
			piece -= k;
			c.rfull = c.roff + c.rlen + k == c.rcap;
			c.rlen += k;
		}
	}
done:
	out->left = c.rlen;
	free(c.rbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HEAD)
		return 0;
	struct plan p;
	unsigned mp = (unsigned)data[0] << 8 | data[1];
	p.max_packet = mp & 0x8000 ? 1 + (size_t)(mp & 0x7fff) * 32
	                           : 1 + (size_t)(mp & 0x3fff);
	p.mode = data[2] & 3;
	p.drawn = data[2] & 4;
	p.piece_max = 1u << 2 * (data[2] >> 3 & 7);
	size_t n = (size_t)data[3] << 8 | data[4];
	p.raw_n = n;
	p.exact_n = 1 + n % p.max_packet;
	p.seed = data[5];
	p.s = data + HEAD;
	p.n = size - HEAD;

	/* Each answer takes at least one byte of the stream. */
	struct run pieces, whole;
	pieces.a = calloc(p.n + 1, sizeof(struct answer));
	whole.a = calloc(p.n + 1, sizeof(struct answer));
	CHECK(pieces.a != NULL && whole.a != NULL);
	play(&p, &pieces);
	uint32_t piece_max = p.piece_max;
	p.piece_max = 0;
	play(&p, &whole);
	p.piece_max = piece_max;
	if (!pieces.raw) {
		CHECK(pieces.na == whole.na);
		CHECK(pieces.end == whole.end);
		/* At the end of the stream the same bytes are left; a failure
		 * may come after more or fewer bytes were read. */
		CHECK(pieces.end != END_EOF || pieces.left == whole.left);
		for (size_t i = 0; i < pieces.na; i++) {
			CHECK(pieces.a[i].mode == whole.a[i].mode);
			CHECK(pieces.a[i].at == whole.a[i].at);
			CHECK(pieces.a[i].len == whole.a[i].len);
		}
	}
	free(pieces.a);
	free(whole.a);
	return 0;
}
