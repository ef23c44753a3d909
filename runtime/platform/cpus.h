/*
 * The CPUs the process may use: how many (the default number of
 * schedulers) and which (what a pinned scheduler is pinned to).
 *
 * The count is the smaller of two limits, and at least 1:
 *
 * - the calling thread's affinity mask (sched_getaffinity), which taskset,
 *   numactl and a cpuset cgroup (a container's --cpuset-cpus, Kubernetes'
 *   static CPU manager) narrow;
 * - the cgroup CPU quota, ceil(quota / period): cgroup v2's cpu.max, or
 *   cgroup v1's cpu.cfs_quota_us over cpu.cfs_period_us (-1: none), of the
 *   process's cgroup and of each parent up to the hierarchy's mount point,
 *   the smallest of them (a parent's limit holds its children too). A
 *   container's --cpus and a Kubernetes CPU limit set it.
 *
 * Without this a pod limited to 2 CPUs on a 64-core host would run 64
 * schedulers that spin for work, and use up its quota spinning: the kernel
 * then throttles the whole process for the rest of each period.
 *
 * Rounding is up (1.5 CPUs gives 2 schedulers), as the JVM does for its
 * processor count; OTP (for its online schedulers) and Go's automaxprocs
 * round down, to at least 1. A quota is CPU time per period, not a number
 * of cores: two threads under a quota of 1.5 both run while they have
 * work, and are throttled only once together they used 1.5 periods'
 * worth. Rounding down would leave half a CPU of the quota that no
 * scheduler can use; rounding up lets actors use all of it, at the cost of
 * some throttling when every scheduler is busy at once. The waste this
 * file is there to prevent, schedulers spinning for work that is not
 * there, stays small with one scheduler to spare: an idle scheduler spins
 * for spin_us, mostly yielding, then parks (docs/runtime.md). A program
 * that wants the other rounding passes its own count in
 * tr_runtime_opts.schedulers.
 *
 * The parsers are pure functions of the files' text, so that the tests
 * feed them crafted files; tr__cpus_available() is them applied to this
 * process's files.
 */
#ifndef TR_PLATFORM_CPUS_H
#define TR_PLATFORM_CPUS_H

#include <stddef.h>

/* The longest cgroup directory path the lookup handles; a longer one
 * counts as no limit. */
#define TR__CGROUP_PATH_MAX 4096

/* Where the files that limit this process's CPU time are: the directory of
 * its cgroup in the v2 hierarchy and in the v1 hierarchy that has the cpu
 * controller ("" for none), and for each the length of its mount point's
 * path, which is as far up as the walk through the parents goes (the
 * mount may be a container's own cgroup, its parents out of sight). */
typedef struct tr__cgroup_dirs {
	char v2[TR__CGROUP_PATH_MAX];
	size_t v2_top;
	char v1[TR__CGROUP_PATH_MAX];
	size_t v1_top;
} tr__cgroup_dirs;

/* CPUs a cgroup v2 cpu.max text allows ("200000 100000\n": 2), rounded up;
 * 0 for no limit: "max ...", or a text that is not two numbers (a quota
 * and a period above 0), which is taken as no limit rather than guessed
 * at. NULL is no limit. */
unsigned tr__cpus_parse_cpu_max(const char *text);

/* The same for cgroup v1's cpu.cfs_quota_us and cpu.cfs_period_us texts:
 * a quota of -1 is no limit, and so is a text that is not a number (a
 * quota above 0 or -1, a period above 0). */
unsigned tr__cpus_parse_cfs(const char *quota, const char *period);

/* Fills `out` from the texts of /proc/self/cgroup and
 * /proc/self/mountinfo: the v2 hierarchy (the "0::" line, a cgroup2
 * mount) and the v1 hierarchy whose controllers include cpu (a cgroup
 * mount with the cpu option). A path that is not under the mount's root
 * (a cgroup outside this mount namespace's view) leaves that directory
 * empty. Either text may be NULL (nothing found). */
void tr__cgroup_dirs_find(
    tr__cgroup_dirs *out, const char *proc_cgroup, const char *mountinfo);

/* Reads the file at `path` into buf (at most size - 1 bytes, then a NUL).
 * Returns 0, or -1 if it cannot be read. */
typedef int (*tr__read_file_fn)(
    const char *path, char *buf, size_t size, void *arg);

/* The CPUs the cgroup quotas of `dirs` allow: the smallest limit of each
 * directory and its parents up to its mount point, both hierarchies, read
 * through `read` (arg is passed on); 0 for no limit. */
unsigned tr__cgroup_cpu_limit(
    const tr__cgroup_dirs *dirs, tr__read_file_fn read, void *arg);

/* The number of CPUs this process may use, as above: the calling thread's
 * affinity mask and the cgroup quota; at least 1. Reads /proc and the
 * cgroup files each call (no cache: taskset or a changed quota shows at
 * the next call). Any thread. */
unsigned tr__cpus_available(void);

/* Pins the calling thread to the i-th CPU (modulo their number) of the
 * affinity mask it has now, which a new thread inherits from the one that
 * created it: scheduler i of a runtime started under `taskset -c 4-7` goes
 * to CPU 4 + i % 4, never outside the mask. Failures are ignored (pinning
 * is an optimisation, never a requirement). */
void tr__pin_self(unsigned i);

#endif
