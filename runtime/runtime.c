/*
 * Runtime lifecycle: start, quiescence, stop, counters and error strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "abi.h"
#include "rt.h"
#include "sched/gq.h"

#if defined(__SANITIZE_ADDRESS__)
#define TR_RT_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_RT_LSAN 1
#endif
#endif
#ifdef TR_RT_LSAN
#include <sanitizer/lsan_interface.h>
#endif

/* The version the library was built as (troupe/version.h comes from the
 * CMake project version), which is what a program runs with whatever
 * headers it was compiled against. */
unsigned tr_version(void)
{
	return TR_VERSION;
}

const char *tr_version_string(void)
{
	return TR_VERSION_STRING;
}

/* Indexed by -err, from TR_OK down to TR_E_LAST. */
static const char *const err_text[] = {
    [-TR_OK] = "success",
    [-TR_EINVAL] = "invalid argument",
    [-TR_ENOMEM] = "out of memory or actor table full",
    [-TR_ENOPROC] = "no such actor",
    [-TR_ETIMEDOUT] = "timed out",
    [-TR_ECLOSED] = "runtime is stopping",
    [-TR_EMSGSIZE] = "message too large",
    [-TR_EEXIST] = "already exists",
    [-TR_ENOENT] = "not found",
    [-TR_ENOTSUP] = "not supported",
    [-TR_EAGAIN] = "resource temporarily unavailable",
    [-TR_EINIT] = "actor init failed",
    [-TR_EALREADY] = "already started",
    [-TR_ERUNNING] = "child is running",
    [-TR_ERESTARTING] = "child is restarting",
    [-TR_EPERM] = "not the socket's owner",
    [-TR_ECONNREFUSED] = "connection refused",
    [-TR_ECONNRESET] = "connection reset by peer",
    [-TR_EPEERAUTH] = "peer's certificate refused",
    [-TR_EPROTO] = "protocol error",
};

/* A code added below TR_E_LAST's old value moves TR_E_LAST and needs a
 * text here; a text for a code past TR_E_LAST means TR_E_LAST was not
 * moved. */
_Static_assert(sizeof(err_text) / sizeof(err_text[0]) == 1 - TR_E_LAST,
    "every error code from TR_OK to TR_E_LAST has a text");

const char *tr_strerror(int err)
{
	if (err > TR_OK || err < TR_E_LAST || err_text[-err] == NULL)
		return "unknown error";
	return err_text[-err];
}

const char *tr_reason_name(int reason)
{
	switch (reason) {
	case TR_REASON_NORMAL:
		return "normal";
	case TR_REASON_SHUTDOWN:
		return "shutdown";
	case TR_REASON_KILL:
		return "kill";
	case TR_REASON_KILLED:
		return "killed";
	case TR_REASON_NOPROC:
		return "noproc";
	case TR_REASON_NOCONNECTION:
		return "noconnection";
	case TR_REASON_MEMORY_LIMIT:
		return "memory_limit";
	case TR_REASON_CPU_LIMIT:
		return "cpu_limit";
	default:
		if (tr_reason_exit_status(reason) != 0)
			return "exit_status";
		if (tr_reason_signal(reason) != 0)
			return "signal";
		return "error";
	}
}

static void rt_free(tr_runtime *rt)
{
	if (rt->sched != NULL) {
		for (unsigned i = 0; i < rt->nsched; i++)
			free(rt->sched[i]);
		free(rt->sched);
	}
	if (rt->pids != NULL) {
#ifdef TR_RT_LSAN
		__lsan_unregister_root_region(
		    (void *)rt->pids, (size_t)rt->pid_cap * sizeof(*rt->pids));
#endif
		munmap(
		    (void *)rt->pids, (size_t)rt->pid_cap * sizeof(*rt->pids));
	}
	free(rt->slot_free);
	tr__gq_fini(rt);
	pthread_mutex_destroy(&rt->gq_lock);
	pthread_mutex_destroy(&rt->slot_lock);
	pthread_mutex_destroy(&rt->xretire_lock);
	tr__io_fini(rt);
	free(rt);
}

int tr_runtime_start(tr_runtime **rtp, const tr_runtime_opts *opts)
{
	if (rtp == NULL)
		return TR_EINVAL;
	*rtp = NULL;
	/* The caller's options over the defaults: fields its struct_size
	 * does not reach keep them. */
	tr_runtime_opts o;
	tr_runtime_opts_init(&o);
	int rc = tr__struct_in(&o, sizeof(o), opts, TR_RUNTIME_OPTS_V1_SIZE);
	if (rc != TR_OK)
		return rc;
	if (o.schedulers == 0) {
		o.schedulers = tr__cpus_available();
		if (o.schedulers > TR_MAX_SCHEDULERS)
			o.schedulers = TR_MAX_SCHEDULERS;
	}
	if (o.schedulers > TR_MAX_SCHEDULERS)
		return TR_EINVAL;
	if (o.blocking_threads == 0)
		o.blocking_threads = 4;
	if (o.max_actors == 0)
		o.max_actors = 16u << 20;
	if (o.max_msg_size == 0)
		o.max_msg_size = (size_t)64 << 20;
	if (o.batch == 0)
		o.batch = 100;
	if (o.spin_us == 0)
		o.spin_us = 100;
	if (o.max_actors > (1u << 30))
		return TR_EINVAL;

	tr_runtime *rt = aligned_alloc(TR_CACHE_LINE,
	    (sizeof(*rt) + TR_CACHE_LINE - 1) & ~(size_t)(TR_CACHE_LINE - 1));
	if (rt == NULL)
		return TR_ENOMEM;
	memset(rt, 0, sizeof(*rt));
	tr__io_init(rt);
	rt->opts = o;
	rt->nsched = o.schedulers;
	pthread_mutex_init(&rt->gq_lock, NULL);
	pthread_mutex_init(&rt->slot_lock, NULL);
	pthread_mutex_init(&rt->xretire_lock, NULL);
	atomic_init(&rt->epoch, 1);
	atomic_init(&rt->next_ref, 1);
	/* Slot 0 is never used, so the all-zero pid names nobody. */
	rt->pid_cap = o.max_actors + 1;
	rt->slot_hwm = 1;
	rt->slot_cache_max = o.max_actors / (4 * o.schedulers);
	if (rt->slot_cache_max > TR__SLOT_CACHE)
		rt->slot_cache_max = TR__SLOT_CACHE;
	if (rt->slot_cache_max == 0)
		rt->slot_cache_max = 1;
	/* Reserve the whole table up front: it never moves, so lookups need
	 * no lock, and untouched pages cost no memory. */
	void *p = mmap(NULL, (size_t)rt->pid_cap * sizeof(*rt->pids),
	    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
	    -1, 0);
	if (p == MAP_FAILED) {
		rt->pids = NULL;
		rt_free(rt);
		return TR_ENOMEM;
	}
	rt->pids = p;
#ifdef TR_RT_LSAN
	/* The table holds the only pointer to each live actor, and
	 * LeakSanitizer does not scan mmap'd memory: without this, a leak
	 * check while the runtime runs (libFuzzer's after an input, a
	 * program's __lsan_do_leak_check) reports every actor, and what it
	 * holds, as leaked. */
	__lsan_register_root_region(p, (size_t)rt->pid_cap * sizeof(*rt->pids));
#endif

	rc = tr__registry_init(rt);
	if (rc == TR_OK)
		rc = tr__log_init(rt);
	if (rc == TR_OK)
		rc = tr__behaviours_init(rt);
	if (rc == TR_OK)
		rc = tr__timers_init(rt);
	if (rc == TR_OK)
		rc = tr__bpool_init(rt);
	if (rc == TR_OK)
		rc = tr__sched_start_all(rt);
	if (rc != TR_OK) {
		atomic_store(&rt->halted, 1);
		tr__bpool_free(rt);
		tr__timers_free(rt);
		tr__behaviours_fini(rt);
		tr__registry_fini(rt);
		tr__log_fini(rt);
		rt_free(rt);
		return rc;
	}
	*rtp = rt;
	return TR_OK;
}

unsigned tr_runtime_schedulers(const tr_runtime *rt)
{
	return rt != NULL ? rt->nsched : 0;
}

unsigned tr_cpus_available(void)
{
	return tr__cpus_available();
}

static bool quiescent_now(tr_runtime *rt)
{
	/* Jobs and timers first: each hands its work to an ext section
	 * before it stops counting, and that section to the global queue
	 * before it ends, so reading in this order misses nothing. */
	return tr__bpool_busy(rt) == 0 && tr__timers_armed(rt) == 0 &&
	       tr__ext_active(rt) == 0 && tr__all_parked(rt);
}

int tr_runtime_wait_quiescent(tr_runtime *rt, int64_t timeout_ms)
{
	if (rt == NULL)
		return TR_EINVAL;
	if (tr__current != NULL)
		return TR_EINVAL;
	uint64_t deadline =
	    timeout_ms < 0 ? UINT64_MAX
	                   : tr__now_ns() + (uint64_t)timeout_ms * 1000000u;
	/* Polling keeps the schedulers free of any bookkeeping for a
	 * rarely-used call. One observation suffices: a scheduler clears its
	 * parked bit before it is woken, and work made runnable by another
	 * thread is counted (global queue, ext sections, timers, jobs) until
	 * a scheduler has it. */
	for (;;) {
		if (quiescent_now(rt))
			return TR_OK;
		if (tr__now_ns() >= deadline)
			return TR_ETIMEDOUT;
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
}

void tr_runtime_stop(tr_runtime *rt)
{
	if (rt == NULL)
		return;
	atomic_store_explicit(&rt->stopping, 1, memory_order_seq_cst);
	/* Timers first (nothing new gets armed by the clock), then blocking
	 * jobs (queued ones finish and post their results), then the
	 * schedulers. */
	tr__timers_fini(rt);
	tr__bpool_fini(rt);
	tr__sched_join_all(rt);

	/* Single-threaded from here on. Retired actors first: their slots
	 * are already free and their memory only awaits the grace period. */
	for (unsigned i = 0; i < rt->nsched; i++) {
		tr__sched *s = rt->sched[i];
		while (s->retire_head != NULL) {
			tr__actor *a = s->retire_head;
			s->retire_head = a->qnext;
			tr__actor_reclaim(rt, NULL, a);
		}
		s->retire_tail = NULL;
	}
	while (rt->xretire_head != NULL) {
		tr__actor *a = rt->xretire_head;
		rt->xretire_head = a->qnext;
		tr__actor_reclaim(rt, NULL, a);
	}
	/* Then every live actor, in slot order. Terminate callbacks may
	 * send; those messages land in mailboxes freed here too. */
	for (uint32_t slot = 1; slot < rt->slot_hwm; slot++) {
		uintptr_t v =
		    atomic_load_explicit(&rt->pids[slot], memory_order_acquire);
		if (v == 0 || (v & 1u) != 0)
			continue;
		tr__actor_teardown(rt, (tr__actor *)v);
	}
	tr__timers_free(rt);
	tr__bpool_free(rt);
	tr__behaviours_fini(rt);
	tr__registry_fini(rt);
	tr__log_fini(rt);
	rt_free(rt);
}

/* The counters are filled into a struct of the library's size, then copied
 * into the caller's as far as its struct_size reaches. */
int tr_runtime_stats_get(tr_runtime_stats *out, tr_runtime *rt)
{
	if (rt == NULL ||
	    tr__struct_out_ok(out, TR_RUNTIME_STATS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_runtime_stats all;
	tr_runtime_stats_init(&all);
	tr_runtime_stats *st = &all;
	st->global_queue = atomic_load_explicit(&rt->gq_len, memory_order_relaxed);
	st->timers_armed = tr__timers_armed(rt);
	st->blocking_jobs = tr__bpool_busy(rt);
	tr__bpool_threads(rt, &st->blocking_threads, &st->blocking_max);
	uint64_t spawned = atomic_load(&rt->x_spawned);
	uint64_t died = atomic_load(&rt->x_died);
	st->msgs_sent = atomic_load(&rt->x_sent);
	st->msgs_dropped = atomic_load(&rt->x_dropped);
	st->crashes = atomic_load(&rt->x_crashes);
	for (unsigned i = 0; i < rt->nsched; i++) {
		tr__sched *s = rt->sched[i];
		spawned +=
		    atomic_load_explicit(&s->n_spawned, memory_order_relaxed);
		died += atomic_load_explicit(&s->n_died, memory_order_relaxed);
		st->msgs_sent +=
		    atomic_load_explicit(&s->n_sent, memory_order_relaxed);
		st->msgs_dropped +=
		    atomic_load_explicit(&s->n_dropped, memory_order_relaxed);
		st->steals +=
		    atomic_load_explicit(&s->n_steals, memory_order_relaxed);
		st->parks +=
		    atomic_load_explicit(&s->n_parks, memory_order_relaxed);
		st->crashes +=
		    atomic_load_explicit(&s->n_crashes, memory_order_relaxed);
		st->turns +=
		    atomic_load_explicit(&s->n_turns, memory_order_relaxed);
	}
	st->actors_spawned = spawned;
	st->actors_alive = spawned >= died ? spawned - died : 0;
	tr__struct_out(out, &all, sizeof(all));
	return TR_OK;
}

int tr_runtime_sched_stats_get(tr_sched_stats *out, tr_runtime *rt, unsigned i)
{
	if (rt == NULL || i >= rt->nsched ||
	    tr__struct_out_ok(out, TR_SCHED_STATS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	/* Relaxed: each counter is written by its scheduler alone and read
	 * as a recent value; nothing else is published through them. */
	const tr__sched *s = rt->sched[i];
	tr_sched_stats st;
	tr_sched_stats_init(&st);
	st.turns = atomic_load_explicit(&s->n_turns, memory_order_relaxed);
	st.steals = atomic_load_explicit(&s->n_steals, memory_order_relaxed);
	st.parks = atomic_load_explicit(&s->n_parks, memory_order_relaxed);
	st.msgs_sent = atomic_load_explicit(&s->n_sent, memory_order_relaxed);
	st.msgs_dropped =
	    atomic_load_explicit(&s->n_dropped, memory_order_relaxed);
	st.spawned = atomic_load_explicit(&s->n_spawned, memory_order_relaxed);
	st.exited = atomic_load_explicit(&s->n_died, memory_order_relaxed);
	st.crashes = atomic_load_explicit(&s->n_crashes, memory_order_relaxed);
	st.parked_ns = atomic_load_explicit(&s->parked_ns, memory_order_relaxed);
	uint64_t since = atomic_load_explicit(&s->park_since, memory_order_relaxed);
	uint64_t now = tr__now_ns();
	if (since != 0 && now > since)
		st.parked_ns += now - since;
	uint32_t h = atomic_load_explicit(&s->rq_head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&s->rq_tail, memory_order_relaxed);
	st.run_queue = t - h <= TR__RQ_SIZE ? t - h : 0;
	tr__struct_out(out, &st, sizeof(st));
	return TR_OK;
}
