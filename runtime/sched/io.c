/*
 * The I/O set (dist.h, "readiness"): one epoll set per runtime, made on
 * first use, whose events the schedulers take themselves.
 *
 * The set holds its users' descriptors, each EPOLLONESHOT with a token,
 * and an eventfd with token 0, level-triggered: the kick. A scheduler
 * looks at the set with a zero timeout when it idles and between turns
 * (sched.c); the scheduler that parks while no other sleeps in the set
 * (rt->io_sleeper, taken with a CAS) waits in epoll_wait instead of on
 * its futex, so that some thread waits for the descriptors whenever all
 * schedulers sleep. A waker that finds its scheduler there writes the
 * kick; the sleeper reads it back. A kick left set after its sleeper woke
 * for another reason wakes the next sleeper once, which reads it, finds
 * no wake-up for itself and sleeps again.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "rt.h"

void tr__io_init(tr_runtime *rt)
{
	atomic_init(&rt->io_ep, -1);
	atomic_init(&rt->io_sleeper, 0);
	rt->io_kick = -1;
	rt->io_failed = false;
	rt->io_ready = NULL;
	pthread_mutex_init(&rt->io_lock, NULL);
}

void tr__io_fini(tr_runtime *rt)
{
	int ep = atomic_load_explicit(&rt->io_ep, memory_order_acquire);
	if (ep >= 0)
		(void)close(ep);
	if (rt->io_kick >= 0)
		(void)close(rt->io_kick);
	atomic_store_explicit(&rt->io_ep, -1, memory_order_relaxed);
	rt->io_kick = -1;
	pthread_mutex_destroy(&rt->io_lock);
}

int tr__io_set(tr_runtime *rt, tr__io_ready_fn ready)
{
	if (rt == NULL || ready == NULL)
		return -1;
	/* Acquire: pairs with the release below, after which io_ready and
	 * io_kick are read without the lock. */
	int ep = atomic_load_explicit(&rt->io_ep, memory_order_acquire);
	if (ep >= 0)
		return ep;
	pthread_mutex_lock(&rt->io_lock);
	ep = atomic_load_explicit(&rt->io_ep, memory_order_relaxed);
	if (ep < 0 && !rt->io_failed) {
		int e = epoll_create1(EPOLL_CLOEXEC);
		int k = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
		if (e >= 0 && k >= 0 && epoll_ctl(e, EPOLL_CTL_ADD, k, &ev) == 0) {
			rt->io_kick = k;
			rt->io_ready = ready;
			atomic_store_explicit(&rt->io_ep, e, memory_order_release);
			ep = e;
		} else {
			if (e >= 0)
				(void)close(e);
			if (k >= 0)
				(void)close(k);
			rt->io_failed = true;
		}
	}
	pthread_mutex_unlock(&rt->io_lock);
	return ep;
}

int tr__io_wait(
    tr_runtime *rt, struct epoll_event *evs, int max, int timeout_ms)
{
	int ep = atomic_load_explicit(&rt->io_ep, memory_order_acquire);
	if (ep < 0)
		return 0;
	int n = epoll_wait(ep, evs, max, timeout_ms);
	if (n <= 0)
		return 0; /* none, or EINTR: the caller looks again */
	int k = 0;
	for (int i = 0; i < n; i++) {
		if (evs[i].data.u64 == 0) {
			/* The kick: only the sleeper (a timeout) takes it
			 * back; a zero-timeout look leaves it for it. */
			if (timeout_ms != 0) {
				uint64_t v;
				(void)!read(rt->io_kick, &v, sizeof(v));
			}
			continue;
		}
		evs[k++] = evs[i];
	}
	return k;
}

unsigned tr__io_dispatch(tr_runtime *rt, const struct epoll_event *evs, int n)
{
	for (int i = 0; i < n; i++)
		rt->io_ready(rt, evs[i].data.u64, evs[i].events);
	return n > 0 ? (unsigned)n : 0u;
}

void tr__io_kick(tr_runtime *rt)
{
	uint64_t one = 1;
	/* EAGAIN only if the counter is full, which a wake-up never needs. */
	(void)!write(rt->io_kick, &one, sizeof(one));
}
