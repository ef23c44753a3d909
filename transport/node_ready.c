/*
 * The application's readiness (troupe/observer.h, tr_node_set_ready):
 * a flag and a short text kept by the node, which the observer reports
 * (GET /api/ready, troupe_node_ready). A scheduler may set it from an
 * actor's callback, so nothing here waits: the lock is held only to copy
 * at most TR_NODE_READY_WHY_MAX bytes, never across I/O or a call out.
 */
#define _GNU_SOURCE
#include <string.h>

#include "node_int.h"

void tr__node_ready_init(struct tr__node_ready *r)
{
	pthread_mutex_init(&r->lock, NULL);
	atomic_init(&r->ready, true);
	r->why[0] = '\0';
}

void tr__node_ready_fini(struct tr__node_ready *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* The length of the UTF-8 character at `s` (1 to 4), or 0 when the
 * bytes there are not one (a stray continuation byte, an overlong form,
 * a surrogate, past U+10FFFF, cut by the string's end). */
static size_t utf8_char(const unsigned char *s)
{
	unsigned c = s[0];
	size_t len;
	uint32_t min;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		len = 3;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	uint32_t cp = c & (0x7Fu >> len);
	for (size_t i = 1; i < len; i++) {
		/* A NUL is no continuation byte: the walk stops at the
		 * string's end. */
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

/* `why` into out[TR_NODE_READY_WHY_MAX + 1]: whole characters only, a
 * '?' for each byte that is not part of one, so that the observer's
 * JSON (which must be UTF-8) can always carry it. */
static void copy_why(char *out, const char *why)
{
	const unsigned char *s = (const unsigned char *)why;
	size_t o = 0;
	while (*s != '\0') {
		size_t l = utf8_char(s);
		size_t take = l != 0 ? l : 1;
		if (o + take > TR_NODE_READY_WHY_MAX)
			break;
		if (l != 0)
			memcpy(out + o, s, l);
		else
			out[o] = '?';
		o += take;
		s += take;
	}
	out[o] = '\0';
}

int tr_node_set_ready(tr_node *node, bool ready, const char *why)
{
	if (node == NULL)
		return TR_EINVAL;
	char text[TR_NODE_READY_WHY_MAX + 1] = "";
	if (!ready && why != NULL)
		copy_why(text, why); /* outside the lock: it reads the caller's */
	struct tr__node_ready *r = &node->ready;
	pthread_mutex_lock(&r->lock);
	memcpy(r->why, text, sizeof(r->why));
	/* Relaxed: the lock orders the flag with `why` for tr__node_ready's
	 * locked reader; the gauge reads the flag alone. */
	atomic_store_explicit(&r->ready, ready, memory_order_relaxed);
	pthread_mutex_unlock(&r->lock);
	return TR_OK;
}

bool tr__node_ready(struct tr_node *n, char *why, size_t cap)
{
	struct tr__node_ready *r = &n->ready;
	if (why == NULL)
		return atomic_load_explicit(&r->ready, memory_order_relaxed);
	pthread_mutex_lock(&r->lock);
	bool ready = atomic_load_explicit(&r->ready, memory_order_relaxed);
	if (cap > 0) {
		size_t l = strnlen(r->why, cap - 1);
		memcpy(why, r->why, l);
		why[l] = '\0';
	}
	pthread_mutex_unlock(&r->lock);
	return ready;
}
