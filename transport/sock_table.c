/*
 * The process-wide table of socket slots (sock_int.h).
 *
 * Slots live in chunks that are allocated on demand and never freed, and
 * the chunk directory has a fixed size, so a lookup reads two pointers
 * without a lock and then takes the slot's own mutex. A handle is the
 * slot's index plus one in its low 32 bits and the slot's generation in
 * its high 32 bits; the generation changes at every release, so a stale
 * handle fails the check under the slot's mutex.
 */
#include <stdlib.h>

#include "sock_int.h"

#define CHUNK 256u
#define NCHUNKS 4096u /* 1 Mi sockets at most */

static _Atomic(tr__sock_slot *) chunks[NCHUNKS];
static pthread_mutex_t table_mtx = PTHREAD_MUTEX_INITIALIZER;
static uint32_t *free_idx; /* under table_mtx */
static uint32_t nfree, cap_free, hwm;

static tr__sock_slot *slot_at(uint32_t idx)
{
	if (idx >= NCHUNKS * CHUNK)
		return NULL;
	/* Acquire: pairs with the release that published the chunk, whose
	 * mutexes were initialised before it. */
	tr__sock_slot *c =
	    atomic_load_explicit(&chunks[idx / CHUNK], memory_order_acquire);
	return c != NULL ? &c[idx % CHUNK] : NULL;
}

/* A new chunk for indices from `hwm` (table_mtx held). */
static bool grow_locked(void)
{
	uint32_t ci = hwm / CHUNK;
	if (ci >= NCHUNKS)
		return false;
	tr__sock_slot *c = calloc(CHUNK, sizeof(*c));
	if (c == NULL)
		return false;
	for (uint32_t i = 0; i < CHUNK; i++) {
		pthread_mutex_init(&c[i].mtx, NULL);
		c[i].idx = ci * CHUNK + i;
		c[i].gen = 1;
	}
	atomic_store_explicit(&chunks[ci], c, memory_order_release);
	return true;
}

tr__sock_slot *tr__sk_alloc(void)
{
	pthread_mutex_lock(&table_mtx);
	uint32_t idx;
	if (nfree > 0) {
		idx = free_idx[--nfree];
	} else {
		if (hwm % CHUNK == 0 && !grow_locked()) {
			pthread_mutex_unlock(&table_mtx);
			return NULL;
		}
		/* Make room now for this index's return, so that a release
		 * never fails. */
		if (hwm + 1 > cap_free) {
			uint32_t nc = cap_free != 0 ? cap_free * 2 : CHUNK;
			uint32_t *nf = realloc(free_idx, nc * sizeof(*nf));
			if (nf == NULL) {
				pthread_mutex_unlock(&table_mtx);
				return NULL;
			}
			free_idx = nf;
			cap_free = nc;
		}
		idx = hwm++;
	}
	pthread_mutex_unlock(&table_mtx);
	tr__sock_slot *s = slot_at(idx);
	pthread_mutex_lock(&s->mtx);
	s->kind = TR__SK_NONE;
	s->state = TR__SK_FREE;
	return s;
}

tr_sock tr__sk_handle(const tr__sock_slot *s)
{
	return ((uint64_t)s->gen << 32) | (uint64_t)(s->idx + 1);
}

tr__sock_slot *tr__sk_lock(tr_sock h)
{
	uint32_t lo = (uint32_t)h;
	if (lo == 0)
		return NULL;
	tr__sock_slot *s = slot_at(lo - 1);
	if (s == NULL)
		return NULL;
	pthread_mutex_lock(&s->mtx);
	if (s->gen != (uint32_t)(h >> 32) || s->state == TR__SK_FREE ||
	    s->kind == TR__SK_NONE) {
		pthread_mutex_unlock(&s->mtx);
		return NULL;
	}
	return s;
}

/* The thread sanitizer's suppression of nng's reference-counted dialers
 * (tests/tsan.supp) names tr__sk_dialer_free. A report's stack shows,
 * for each instrumented function, the place where it called the next
 * one, and nng is not instrumented: so the call into nng is made one
 * level down, from a function of its own, and tr__sk_dialer_free is on
 * the stack of the report. Neither is inlined. */
__attribute__((noinline)) static void dialer_free_now(nng_stream_dialer *d)
{
	nng_stream_dialer_free(d);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void tr__sk_dialer_free(nng_stream_dialer *d)
{
	dialer_free_now(d);
	__asm__ volatile("" ::: "memory");
}

void tr__sk_release(tr__sock_slot *s)
{
	nng_stream *st = s->st;
	nng_stream_dialer *d = s->dialer;
	nng_stream_listener *l = s->lsn;
	nng_tls_config *tls = s->tls;
	void *bufs[] = {s->rbuf, s->wa, s->wb, s->url, s->waiters};
	s->st = NULL;
	s->dialer = NULL;
	s->lsn = NULL;
	s->tls = NULL;
	s->rbuf = s->wa = s->wb = NULL;
	s->url = NULL;
	s->waiters = NULL;
	s->rcap = s->roff = s->rlen = 0;
	s->wa_len = s->wa_cap = s->woff = s->wb_len = s->wb_cap = 0;
	s->wn = s->whead = s->open_conns = 0;
	s->rwant = s->drained_want = s->at_max = s->mon_pending = false;
	s->fail = 0;
	s->eof = s->half_close = s->quick = s->rfull = s->rhot = false;
	s->fd = -1;
	s->fd_tried = s->io_added = s->io_armed = false;
	s->mon = 0;
	s->owner = TR_PID_NONE;
	s->parent = TR_SOCK_NONE;
	s->rt = NULL;
	s->mgr = NULL;
	s->kind = TR__SK_NONE;
	s->state = TR__SK_FREE;
	if (++s->gen == 0)
		s->gen = 1;
	uint32_t idx = s->idx;
	pthread_mutex_unlock(&s->mtx);
	/* nng frees streams, dialers and listeners on its reaper thread, so
	 * none of these blocks. The dialer first: the stream holds a
	 * reference to it, which the reaper drops when it frees the stream,
	 * after (ordered by its reap queue) everything done here to the
	 * dialer (see sp_out.c). */
	if (d != NULL)
		tr__sk_dialer_free(d);
	if (st != NULL)
		nng_stream_free(st);
	if (l != NULL)
		nng_stream_listener_free(l);
	if (tls != NULL)
		nng_tls_config_free(tls);
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
	pthread_mutex_lock(&table_mtx);
	free_idx[nfree++] = idx;
	pthread_mutex_unlock(&table_mtx);
}
