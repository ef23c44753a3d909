/*
 * The blocking pool: a few plain threads that run tr_run_blocking jobs, so
 * a blocking call (disk, DNS, a C library that sleeps) never stalls a
 * scheduler. The result goes back to the actor as an ordinary message.
 *
 * Jobs wait in a list under a mutex and condition variable: a job is slow
 * by definition, so a lock per job costs nothing that matters. Threads are
 * started as jobs need them, up to tr_runtime_opts.blocking_threads: one
 * when a job is queued and none is idle, none before the first job (a
 * process that never blocks, such as a process child, has none to start
 * and none to tear down when it exits), and they stay until the runtime
 * stops.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>

#include "rt.h"

typedef struct job {
	struct job *next;
	tr_blocking_fn fn;
	void *arg;
	tr_pid to;
	uint32_t type;
	uint64_t ref;
} job;

struct tr__bpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t *threads; /* room for max */
	unsigned nthreads, max;
	unsigned idle;   /* threads waiting for a job */
	unsigned queued; /* jobs no thread has taken yet */
	bool stop;
	job *head, *tail;
	_Atomic uint64_t busy; /* queued or running, until delivered */
};

static void *worker(void *arg)
{
	tr_runtime *rt = arg;
	tr__bpool *p = rt->bpool;
	/* Its name in ps and top, and how the tests count the pool. */
	(void)pthread_setname_np(pthread_self(), "troupe-blocking");
	pthread_mutex_lock(&p->lock);
	for (;;) {
		job *j = p->head;
		if (j == NULL) {
			if (p->stop)
				break;
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
			continue;
		}
		p->head = j->next;
		p->queued--;
		if (p->head == NULL)
			p->tail = NULL;
		pthread_mutex_unlock(&p->lock);

		tr_blocking_result res = {j->fn(j->arg)};
		tr_msg *m;
		if (tr__msg_new(&m, rt, j->type, &res, sizeof(res)) == TR_OK) {
			m->ref = j->ref;
			if (tr__deliver_any(rt, j->to, m) != TR_OK)
				tr__msg_free(m);
		}
		free(j);
		atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int tr__bpool_init(tr_runtime *rt)
{
	tr__bpool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	rt->bpool = p;
	p->max = rt->opts.blocking_threads;
	p->threads = calloc(p->max, sizeof(pthread_t));
	return p->threads != NULL ? TR_OK : TR_ENOMEM;
}

void tr__bpool_fini(tr_runtime *rt)
{
	tr__bpool *p = rt->bpool;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	/* The struct stays until tr__bpool_free: actors still running may
	 * call tr_run_blocking, which now fails with TR_ECLOSED. */
	p->nthreads = 0;
}

void tr__bpool_free(tr_runtime *rt)
{
	tr__bpool *p = rt->bpool;
	if (p == NULL)
		return;
	tr__bpool_fini(rt);
	free(p->threads);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->cond);
	free(p);
	rt->bpool = NULL;
}

void tr__bpool_threads(tr_runtime *rt, uint32_t *now, uint32_t *max)
{
	tr__bpool *p = rt->bpool;
	*now = *max = 0;
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	*now = p->nthreads;
	*max = p->max;
	pthread_mutex_unlock(&p->lock);
}

uint64_t tr__bpool_busy(tr_runtime *rt)
{
	tr__bpool *p = rt->bpool;
	return p != NULL ? atomic_load_explicit(&p->busy, memory_order_acquire)
	                 : 0;
}

int tr_run_blocking(
    tr_ctx *ctx, uint64_t *ref, uint32_t type, tr_blocking_fn fn, void *arg)
{
	if (ctx == NULL || fn == NULL || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_runtime *rt = ctx->rt;
	tr__bpool *p = rt->bpool;
	if (p == NULL ||
	    atomic_load_explicit(&rt->stopping, memory_order_acquire))
		return TR_ECLOSED;
	job *j = malloc(sizeof(*j));
	if (j == NULL)
		return TR_ENOMEM;
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	j->to = ctx->a->pid;
	j->type = type;
	j->ref = tr__new_ref(rt);
	uint64_t r = j->ref;
	pthread_mutex_lock(&p->lock);
	if (p->stop) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return TR_ECLOSED;
	}
	/* A thread for it unless an idle one is left over once the jobs
	 * queued before it are taken. */
	if (p->queued >= p->idle && p->nthreads < p->max) {
		if (pthread_create(&p->threads[p->nthreads], NULL, worker, rt) ==
		    0)
			p->nthreads++;
		else if (p->nthreads == 0) {
			pthread_mutex_unlock(&p->lock);
			free(j);
			return TR_ENOMEM;
		}
	}
	atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
	p->queued++;
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	if (ref != NULL)
		*ref = r;
	return TR_OK;
}
