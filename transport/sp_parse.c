/*
 * The SP stream parser. See sp_parse.h for the contract.
 */
#include "sp_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tr__sp_header(uint8_t h[TR__SP_HDR], unsigned proto)
{
	h[0] = 0;
	h[1] = 'S';
	h[2] = 'P';
	h[3] = 0;
	h[4] = (uint8_t)(proto >> 8);
	h[5] = (uint8_t)proto;
	h[6] = 0;
	h[7] = 0;
}

bool tr__sp_header_ok(const uint8_t h[TR__SP_HDR], unsigned proto)
{
	uint8_t want[TR__SP_HDR];
	tr__sp_header(want, proto);
	return memcmp(h, want, TR__SP_HDR) == 0;
}

size_t tr__sp_frame_head(uint8_t *h, bool ipc, uint64_t len)
{
	size_t k = 0;
	if (ipc)
		h[k++] = 1;
	for (int i = 7; i >= 0; i--)
		h[k++] = (uint8_t)(len >> (8 * i));
	return k;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void tr__sp_parse_init(tr__sp_parse *p, unsigned peer, bool ipc,
    size_t max_untrusted, size_t max_frame)
{
	memset(p, 0, sizeof(*p));
	/* So that a frame's prefix plus its length never overflows. */
	if (max_frame > SIZE_MAX - 2 * TR__SP_HEAD_MAX)
		max_frame = SIZE_MAX - 2 * TR__SP_HEAD_MAX;
	p->max_frame = max_frame;
	p->max_untrusted =
	    max_untrusted < max_frame ? max_untrusted : max_frame;
	p->peer = peer;
	p->ipc = ipc;
}

void tr__sp_parse_fini(tr__sp_parse *p)
{
	free(p->buf);
	p->buf = NULL;
	p->cap = p->fill = p->pos = 0;
}

void tr__sp_parse_trust(tr__sp_parse *p)
{
	p->trusted = true;
}

static int refuse(tr__sp_parse *p, const char *why)
{
	if (p->why == NULL)
		p->why = why;
	return TR__SP_REFUSE;
}

static const char *header_why(unsigned peer)
{
	switch (peer) {
	case TR__SP_PUSH0:
		return "not an SP push0 peer";
	case TR__SP_PULL0:
		return "not an SP pull0 peer";
	default:
		return "not the expected SP peer";
	}
}

/* The bytes from pos that the first frame not yet taken needs, whole (0
 * while its prefix is not all in, or when its length is over the limit:
 * tr__sp_parse_next refuses that). */
static size_t peek_need(const tr__sp_parse *p)
{
	size_t at = p->pos + (p->nego ? 0 : TR__SP_HDR);
	size_t hl = p->ipc ? 9 : 8;
	if (p->fill < at + hl)
		return 0;
	uint64_t flen = get_be64(p->buf + at + hl - 8);
	if (flen > (p->trusted ? p->max_frame : p->max_untrusted))
		return 0;
	return at - p->pos + hl + (size_t)flen;
}

bool tr__sp_parse_room(tr__sp_parse *p, uint8_t **at, size_t *len)
{
	if (p->why != NULL)
		return false;
	size_t need = peek_need(p);
	if (p->pos != 0) {
		memmove(p->buf, p->buf + p->pos, p->fill - p->pos);
		p->fill -= p->pos;
		p->pos = 0;
	}
	size_t want = p->trusted ? TR__SP_BUF_TRUSTED : TR__SP_BUF_FIRST;
	/* The frame being read, whole (its length is within the limit). */
	if (need > want)
		want = need;
	if (want > p->cap) {
		uint8_t *nb = realloc(p->buf, want);
		if (nb != NULL) {
			p->buf = nb;
			p->cap = want;
		} else if (p->cap < need || p->cap == 0) {
			/* Without room for the frame being read there is no
			 * way on; a smaller buffer than wanted is only slower
			 * when the frame fits. */
			refuse(p, "out of memory");
			return false;
		}
	}
	*at = p->buf + p->fill;
	*len = p->cap - p->fill;
	return true;
}

void tr__sp_parse_commit(tr__sp_parse *p, size_t n)
{
	p->fill += n;
}

size_t tr__sp_parse_feed(tr__sp_parse *p, const uint8_t *data, size_t n)
{
	size_t done = 0;
	while (done < n) {
		uint8_t *at;
		size_t room;
		if (!tr__sp_parse_room(p, &at, &room) || room == 0)
			break;
		size_t k = n - done < room ? n - done : room;
		memcpy(at, data + done, k);
		tr__sp_parse_commit(p, k);
		done += k;
	}
	return done;
}

int tr__sp_parse_next(tr__sp_parse *p, const uint8_t **frame, size_t *len)
{
	if (p->why != NULL)
		return TR__SP_REFUSE;
	if (!p->nego) {
		/* Each byte of the header is checked as it comes, so that
		 * a peer that speaks something else (HTTP, TLS) is refused at
		 * its first byte. */
		uint8_t want[TR__SP_HDR];
		size_t have = p->fill - p->pos;
		if (have == 0)
			return TR__SP_NEED;
		tr__sp_header(want, p->peer);
		if (memcmp(p->buf + p->pos, want,
		        have < TR__SP_HDR ? have : TR__SP_HDR) != 0)
			return refuse(p, header_why(p->peer));
		if (have < TR__SP_HDR)
			return TR__SP_NEED;
		p->nego = true;
		p->pos += TR__SP_HDR;
	}
	size_t hl = p->ipc ? 9 : 8;
	size_t have = p->fill - p->pos;
	const uint8_t *h = p->buf + p->pos;
	if (have == 0)
		return TR__SP_NEED;
	if (p->ipc && h[0] != 1)
		return refuse(p, "bad ipc message type");
	if (have < hl)
		return TR__SP_NEED;
	uint64_t flen = get_be64(h + hl - 8);
	size_t limit = p->trusted ? p->max_frame : p->max_untrusted;
	if (flen > limit)
		return refuse(p, "frame larger than the maximum");
	if (have - hl < flen)
		return TR__SP_NEED;
	*frame = h + hl;
	*len = (size_t)flen;
	p->pos += hl + (size_t)flen;
	return TR__SP_FRAME;
}

const char *tr__sp_parse_why(const tr__sp_parse *p)
{
	return p->why;
}

size_t tr__sp_parse_held(const tr__sp_parse *p)
{
	return p->cap;
}
