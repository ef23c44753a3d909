/*
 * Replies in the order of the requests (resp_order.h).
 */
#include <stdlib.h>
#include <string.h>

#include "resp_order.h"

bool rs_order_init(rs_order *o, uint32_t nshards)
{
	memset(o, 0, sizeof(*o));
	o->nsrc = nshards + 1;
	o->fifo = calloc(o->nsrc, sizeof(*o->fifo));
	o->need = calloc(o->nsrc, sizeof(*o->need));
	if (o->fifo == NULL || o->need == NULL) {
		rs_order_fini(o);
		return false;
	}
	return true;
}

static void fifo_fini(rs_fifo *f)
{
	free(f->p);
	free(f->lens);
	memset(f, 0, sizeof(*f));
}

void rs_order_fini(rs_order *o)
{
	if (o->fifo != NULL)
		for (uint32_t i = 0; i < o->nsrc; i++)
			fifo_fini(&o->fifo[i]);
	free(o->fifo);
	free(o->need);
	free(o->steps);
	memset(o, 0, sizeof(*o));
}

/* Grows a ring of `size`-byte items (head, n, cap: a power of two) to
 * hold `more` more. */
static bool ring_room(void **ring, uint32_t head, uint32_t n, uint32_t *cap,
    size_t size, uint32_t more)
{
	if (n + more <= *cap)
		return true;
	uint32_t nc = *cap != 0 ? *cap : 16;
	while (nc < n + more)
		nc *= 2;
	char *nr = malloc((size_t)nc * size);
	if (nr == NULL)
		return false;
	char *old = *ring;
	for (uint32_t i = 0; i < n; i++) /* unrolled into order */
		memcpy(nr + (size_t)i * size,
		    old + (size_t)((head + i) & (*cap - 1)) * size, size);
	free(old);
	*ring = nr;
	*cap = nc;
	return true;
}

void rs_order_step(rs_order *o, int kind, uint32_t src, uint32_t n)
{
	if (o->oom)
		return;
	uint32_t head = o->shead;
	if (o->sn == o->scap) {
		if (!ring_room((void **)&o->steps, head, o->sn, &o->scap,
		        sizeof(rs_step), 1)) {
			o->oom = true;
			return;
		}
		o->shead = 0;
	}
	rs_step *s = &o->steps[(o->shead + o->sn) & (o->scap - 1)];
	*s = (rs_step){.kind = (uint8_t)kind, .src = (uint16_t)src, .n = n};
	o->sn++;
}

static bool fifo_put(rs_order *o, rs_fifo *f, uint32_t n, const uint32_t *lens,
    const char *bytes)
{
	size_t total = 0;
	for (uint32_t i = 0; i < n; i++)
		total += lens[i];
	if (f->ln + n > f->lcap) {
		if (!ring_room((void **)&f->lens, f->lhead, f->ln, &f->lcap,
		        sizeof(uint32_t), n))
			return false;
		f->lhead = 0;
	}
	if (f->head == f->len)
		f->head = f->len = 0;
	if (f->cap - f->len < total && f->head > 0) {
		memmove(f->p, f->p + f->head, f->len - f->head);
		f->len -= f->head;
		f->head = 0;
	}
	if (f->cap - f->len < total) {
		size_t nc = f->cap != 0 ? f->cap : 1024;
		while (nc - f->len < total)
			nc *= 2;
		char *np = realloc(f->p, nc);
		if (np == NULL)
			return false;
		f->p = np;
		f->cap = nc;
	}
	if (total > 0)
		memcpy(f->p + f->len, bytes, total);
	f->len += total;
	o->held += total;
	for (uint32_t i = 0; i < n; i++)
		f->lens[(f->lhead + f->ln + i) & (f->lcap - 1)] = lens[i];
	f->ln += n;
	return true;
}

void rs_order_replies(rs_order *o, uint32_t src, uint32_t n,
    const uint32_t *lens, const char *bytes)
{
	if (o->oom || src >= o->nsrc)
		return;
	if (!fifo_put(o, &o->fifo[src], n, lens, bytes))
		o->oom = true;
}

void rs_order_local(rs_order *o, const char *bytes, size_t len)
{
	uint32_t l = (uint32_t)len;
	rs_order_replies(o, o->nsrc - 1, 1, &l, bytes);
	rs_order_step(o, RS_STEP_ONE, o->nsrc - 1, 0);
}

/* Takes source src's next reply: where it is and how long. */
static const char *take(rs_order *o, uint32_t src, uint32_t *len)
{
	rs_fifo *f = &o->fifo[src];
	*len = f->lens[f->lhead];
	o->held -= *len;
	f->lhead = (f->lhead + 1) & (f->lcap - 1);
	f->ln--;
	const char *p = f->p + f->head;
	f->head += *len;
	return p;
}

/* An integer reply's value (0 if it is not one). */
static int64_t reply_int(const char *p, uint32_t len)
{
	int64_t v = 0;
	if (len >= 4 && p[0] == ':' && resp_arg_int(p + 1, len - 3, &v))
		return v;
	return 0;
}

static const rs_step *step_at(const rs_order *o, uint32_t i)
{
	return &o->steps[(o->shead + i) & (o->scap - 1)];
}

static void step_pop(rs_order *o, uint32_t k)
{
	o->shead = (o->shead + k) & (o->scap - 1);
	o->sn -= k;
}

/* Whether the n steps after the head have their replies in. */
static bool group_ready(rs_order *o, uint32_t n)
{
	if (n >= o->sn)
		return false;
	memset(o->need, 0, o->nsrc * sizeof(*o->need));
	for (uint32_t i = 1; i <= n; i++) {
		uint32_t src = step_at(o, i)->src;
		if (++o->need[src] > o->fifo[src].ln)
			return false;
	}
	return true;
}

bool rs_order_emit(rs_order *o, resp_buf *out)
{
	while (o->sn > 0) {
		const rs_step *s = step_at(o, 0);
		uint32_t len;
		const char *p;
		switch (s->kind) {
		case RS_STEP_ONE:
			if (o->fifo[s->src].ln == 0)
				return false;
			p = take(o, s->src, &len);
			resp_buf_put(out, p, len);
			step_pop(o, 1);
			break;
		case RS_STEP_SUM:
		case RS_STEP_OK: {
			uint32_t n = s->n;
			int kind = s->kind;
			if (!group_ready(o, n))
				return false;
			int64_t sum = 0;
			const char *err = NULL;
			uint32_t errlen = 0;
			for (uint32_t i = 1; i <= n; i++) {
				p = take(o, step_at(o, i)->src, &len);
				/* A part that failed (a store out of memory,
				 * a replicated store's refusal) fails the
				 * whole: its error is the reply. */
				if (len > 0 && p[0] == '-' && err == NULL) {
					err = p;
					errlen = len;
				}
				sum += reply_int(p, len);
			}
			step_pop(o, n + 1);
			if (err != NULL)
				resp_buf_put(out, err, errlen);
			else if (kind == RS_STEP_SUM)
				resp_put_int(out, sum);
			else
				resp_put_simple(out, "OK", 2);
			break;
		}
		case RS_STEP_CLOSE:
			return true;
		}
	}
	return false;
}

bool rs_order_deliver(rs_order *o, uint32_t src, uint32_t n,
    const uint32_t *lens, const char *bytes, resp_buf *out)
{
	uint32_t i = 0;
	if (src >= o->nsrc) {
		o->oom = true;
		return false;
	}
	/* Straight to `out` while their turn has come; none of this
	 * source's may be waiting, or they would go first. */
	while (i < n && o->fifo[src].ln == 0) {
		(void)rs_order_emit(o, out); /* the other sources' first */
		if (o->sn == 0)
			break;
		const rs_step *s = step_at(o, 0);
		if (s->kind != RS_STEP_ONE || s->src != src)
			break;
		resp_buf_put(out, bytes, lens[i]);
		bytes += lens[i];
		i++;
		step_pop(o, 1);
	}
	if (i < n)
		rs_order_replies(o, src, n - i, lens + i, bytes);
	return rs_order_emit(o, out);
}

void rs_order_trim(rs_order *o, size_t keep)
{
	for (uint32_t i = 0; i < o->nsrc; i++) {
		rs_fifo *f = &o->fifo[i];
		if (f->ln == 0 && f->cap > keep) {
			free(f->p);
			f->p = NULL;
			f->head = f->len = f->cap = 0;
		}
	}
}
