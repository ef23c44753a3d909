#include "mem/pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define TR_POOL_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_POOL_BYPASS 1
#endif
#endif

#ifdef TR_POOL_BYPASS

void *tr__pool_alloc(unsigned cls)
{
	return aligned_alloc(64, tr__pool_class_size(cls));
}

void tr__pool_free(unsigned cls, void *p)
{
	(void)cls;
	free(p);
}

#else

#define SLAB_BYTES (256u * 1024u)

/* A free block: the first word links blocks of one chain; the first block
 * of a chain in the depot also links the depot's chains and knows how many
 * blocks its chain holds, so that a refill never walks it (the blocks were
 * freed on another core: walking them was a cache miss each, in series). */
typedef struct block {
	struct block *next;
	struct block *next_chain;
	unsigned count;
} block;

/* The depot of one class. Its mutex is taken once per batch moved (tens to
 * hundreds of blocks), never per allocation, so it is off the hot path;
 * a lock-free stack here would need ABA protection for no measurable gain. */
typedef struct depot {
	pthread_mutex_t lock;
	block *chains;    /* full batches given back by threads */
	char *bump, *end; /* unused tail of the newest slab */
	void *slabs;      /* every slab, linked by their first word */
} depot;

static depot depots[TR__POOL_NCLASSES] = {
    [0 ... TR__POOL_NCLASSES - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

typedef struct tcache {
	block *head[TR__POOL_NCLASSES];
	unsigned count[TR__POOL_NCLASSES];
	int registered;
} tcache;

static __thread tcache tc;
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;

static unsigned batch_of(unsigned cls)
{
	size_t n = 32768 / tr__pool_class_size(cls);
	return n > 256 ? 256u : (n < 8 ? 8u : (unsigned)n);
}

static void depot_put(unsigned cls, block *chain, unsigned count)
{
	depot *d = &depots[cls];
	chain->count = count;
	pthread_mutex_lock(&d->lock);
	chain->next_chain = d->chains;
	d->chains = chain;
	pthread_mutex_unlock(&d->lock);
}

/* Gives every cached block back when a thread exits, so a short-lived
 * thread (a blocking-pool worker, a test thread) strands nothing. */
static void tc_flush(void *arg)
{
	tcache *c = arg;
	for (unsigned cls = 0; cls < TR__POOL_NCLASSES; cls++) {
		if (c->head[cls] != NULL) {
			depot_put(cls, c->head[cls], c->count[cls]);
			c->head[cls] = NULL;
			c->count[cls] = 0;
		}
	}
}

static void tc_key_make(void)
{
	(void)pthread_key_create(&tc_key, tc_flush);
}

static void tc_register(void)
{
	pthread_once(&tc_once, tc_key_make);
	(void)pthread_setspecific(tc_key, &tc);
	tc.registered = 1;
}

/* Refills the calling thread's list of class cls with one batch. */
static int refill(unsigned cls)
{
	depot *d = &depots[cls];
	size_t sz = tr__pool_class_size(cls);
	unsigned n = batch_of(cls);
	block *chain = NULL;

	pthread_mutex_lock(&d->lock);
	if (d->chains != NULL) {
		chain = d->chains;
		d->chains = chain->next_chain;
		pthread_mutex_unlock(&d->lock);
		tc.head[cls] = chain;
		tc.count[cls] = chain->count;
		return 0;
	}
	if ((size_t)(d->end - d->bump) < (size_t)n * sz) {
		char *slab = aligned_alloc(64, SLAB_BYTES);
		if (slab == NULL) {
			pthread_mutex_unlock(&d->lock);
			return -1;
		}
		/* The first 64 bytes of a slab link the slab list. */
		*(void **)slab = d->slabs;
		d->slabs = slab;
		d->bump = slab + 64;
		d->end = slab + SLAB_BYTES;
	}
	char *p = d->bump;
	unsigned k = (unsigned)((size_t)(d->end - d->bump) / sz);
	if (k > n)
		k = n;
	d->bump += (size_t)k * sz;
	pthread_mutex_unlock(&d->lock);

	for (unsigned i = k; i-- > 0;) {
		block *b = (block *)(p + (size_t)i * sz);
		b->next = chain;
		chain = b;
	}
	tc.head[cls] = chain;
	tc.count[cls] = k;
	return 0;
}

void *tr__pool_alloc(unsigned cls)
{
	block *b = tc.head[cls];
	if (__builtin_expect(b == NULL, 0)) {
		if (!tc.registered)
			tc_register();
		if (refill(cls) != 0)
			return NULL;
		b = tc.head[cls];
	}
	tc.head[cls] = b->next;
	tc.count[cls]--;
	return b;
}

void tr__pool_free(unsigned cls, void *p)
{
	block *b = p;
	b->next = tc.head[cls];
	tc.head[cls] = b;
	unsigned n = batch_of(cls);
	if (__builtin_expect(++tc.count[cls] > 2 * n, 0)) {
		if (!tc.registered)
			tc_register();
		/* Keep the newest `n` blocks, which are likely still in this
		 * core's cache, and hand the older rest to the depot. */
		block *last = b;
		for (unsigned i = 1; i < n; i++)
			last = last->next;
		block *old = last->next;
		last->next = NULL;
		depot_put(cls, old, tc.count[cls] - n);
		tc.count[cls] = n;
	}
}

#endif
