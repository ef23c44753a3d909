/*
 * Framing of a socket's reads (sock_int.h): what answers a pending
 * tr_sock_recv, found in the bytes buffered so far.
 */
#include <string.h>

#include "sock_int.h"

#define FRAME_HDR 4u

int tr__sk_frame(tr__sk_want *w, const uint8_t *buf, size_t len,
    size_t max_packet, size_t *off, size_t *plen, size_t *used, size_t *need)
{
	switch (w->mode) {
	case TR_SOCK_RAW: {
		if (len == 0) {
			*need = 1;
			return TR__SK_NEED;
		}
		/* Never more than max_packet, though the buffer holds up to
		 * a frame's prefix more (what a line or frame read left). */
		size_t n = w->n != 0 && w->n < len ? w->n : len;
		if (n > max_packet)
			n = max_packet;
		*off = 0;
		*plen = n;
		*used = n;
		return TR__SK_READY;
	}
	case TR_SOCK_EXACT:
		if (len < w->n) {
			*need = w->n;
			return TR__SK_NEED;
		}
		*off = 0;
		*plen = w->n;
		*used = w->n;
		return TR__SK_READY;
	case TR_SOCK_LINE: {
		/* Search only what was not searched before: a long line
		 * that arrives in many reads costs linear time. */
		size_t from = w->scanned < len ? w->scanned : 0;
		const uint8_t *nl =
		    len > from ? memchr(buf + from, '\n', len - from) : NULL;
		if (nl == NULL) {
			w->scanned = len;
			if (len >= max_packet)
				return TR__SK_TOOBIG;
			*need = len + 1;
			return TR__SK_NEED;
		}
		size_t n = (size_t)(nl - buf) + 1;
		if (n > max_packet)
			return TR__SK_TOOBIG;
		w->scanned = 0;
		*off = 0;
		*plen = n;
		*used = n;
		return TR__SK_READY;
	}
	case TR_SOCK_FRAME: {
		if (len < FRAME_HDR) {
			*need = FRAME_HDR;
			return TR__SK_NEED;
		}
		/* Checked on the prefix alone, before any of the body is
		 * buffered. */
		size_t n = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 |
		           (size_t)buf[2] << 8 | (size_t)buf[3];
		if (n > max_packet)
			return TR__SK_TOOBIG;
		if (len - FRAME_HDR < n) {
			*need = FRAME_HDR + n;
			return TR__SK_NEED;
		}
		*off = FRAME_HDR;
		*plen = n;
		*used = FRAME_HDR + n;
		return TR__SK_READY;
	}
	default:
		return TR__SK_TOOBIG;
	}
}
