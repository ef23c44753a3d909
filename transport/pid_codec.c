/*
 * The bytes of the portable pid encoding (troupe/pid.h, version 1). The
 * integers are written byte by byte, little-endian, so the format does
 * not depend on the host's byte order or on alignment.
 */
#include "pid_codec.h"

#include <string.h>

#define HDR 2u /* version, name length */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t tr_pid_encoded_size(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	if (b == NULL || len < HDR || b[0] != TR_PID_ENCODING_V1)
		return 0;
	size_t need = TR_PID_ENCODED_SIZE(b[1]);
	return len >= need ? need : 0;
}

int tr__pidc_write(const struct tr__pidc *v, void *buf, size_t cap, size_t *len)
{
	if (v->name == NULL || v->name_len == 0 ||
	    v->name_len > TR_NODE_NAME_MAX || v->inc == 0 || v->gen == 0)
		return TR_EINVAL;
	size_t need = TR_PID_ENCODED_SIZE(v->name_len);
	*len = need;
	if (cap < need)
		return TR_EMSGSIZE;
	uint8_t *b = buf;
	b[0] = TR_PID_ENCODING_V1;
	b[1] = (uint8_t)v->name_len;
	memcpy(b + HDR, v->name, v->name_len);
	uint8_t *t = b + HDR + v->name_len;
	put_le(t, v->inc, 8);
	put_le(t + 8, v->slot, 4);
	put_le(t + 12, v->gen, 4);
	return TR_OK;
}

int tr__pidc_parse(struct tr__pidc *v, const void *buf, size_t len)
{
	const uint8_t *b = buf;
	/* Exactly one encoding: a shorter buffer is a truncated pid, a
	 * longer one holds bytes nobody accounted for. Both are refused,
	 * never read past `len`. */
	size_t need = tr_pid_encoded_size(b, len);
	if (need == 0 || need != len)
		return TR_EINVAL;
	size_t l = b[1];
	if (l == 0 || memchr(b + HDR, '\0', l) != NULL)
		return TR_EINVAL;
	const uint8_t *t = b + HDR + l;
	v->name = (const char *)(b + HDR);
	v->name_len = l;
	v->inc = get_le(t, 8);
	v->slot = (uint32_t)get_le(t + 8, 4);
	v->gen = (uint32_t)get_le(t + 12, 4);
	if (v->inc == 0 || v->gen == 0)
		return TR_EINVAL;
	return TR_OK;
}
