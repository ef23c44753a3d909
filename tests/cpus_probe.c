/*
 * For test_cpus.sh: prints what this process may use, as troupe sees it,
 * one "name value" line each:
 *
 *   available N    tr_cpus_available()
 *   schedulers N   tr_runtime_schedulers() of a runtime with the defaults
 *   pinned C       the CPU a pinned runtime's only scheduler runs on (the
 *                  one CPU of its thread's mask; -1 if it has several)
 *
 * Exits 0, or 1 if a runtime cannot be started.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include <troupe/troupe.h>

static _Atomic int g_cpu = -2;

static int where_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	(void)state;
	cpu_set_t set;
	int cpu = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 &&
	    CPU_COUNT(&set) == 1) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				cpu = c;
	}
	atomic_store(&g_cpu, cpu);
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static int where_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour where_bhv = {
    .name = "where",
    .init = where_init,
    .handle = where_handle,
};

int main(void)
{
	printf("available %u\n", tr_cpus_available());

	tr_runtime *rt;
	if (tr_runtime_start(&rt, NULL) != TR_OK)
		return 1;
	printf("schedulers %u\n", tr_runtime_schedulers(rt));
	tr_runtime_stop(rt);

	tr_runtime_opts o;
	tr_runtime_opts_init(&o);
	o.schedulers = 1;
	o.pin = true;
	if (tr_runtime_start(&rt, &o) != TR_OK)
		return 1;
	tr_pid pid;
	int rc = tr_spawn(&pid, rt, &where_bhv, NULL, NULL);
	if (rc == TR_OK)
		rc = tr_runtime_wait_quiescent(rt, 30000);
	tr_runtime_stop(rt);
	if (rc != TR_OK)
		return 1;
	printf("pinned %d\n", atomic_load(&g_cpu));
	return 0;
}
