/*
 * The CPUs the process may use (runtime/platform/cpus.h): the cgroup
 * parsers on crafted files (cpu.max, the v1 quota and period, the paths
 * from /proc/self/cgroup and mountinfo, the walk through the parents on a
 * fake file system), then the affinity mask in this process: the count
 * follows the calling thread's mask, a default runtime runs that many
 * schedulers, and a pinned scheduler stays inside the mask. A real quota
 * and taskset are tested by test_cpus.sh, on a separate process.
 */
#define _GNU_SOURCE
#include "common.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "platform/cpus.h"

/* ------------------------------------------------------------------------ */
/* cpu.max and cpu.cfs_quota_us                                              */
/* ------------------------------------------------------------------------ */

static void test_cpu_max(void **state)
{
	(void)state;
	assert_int_equal(tr__cpus_parse_cpu_max("max 100000\n"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("max\n"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("200000 100000\n"), 2);
	assert_int_equal(tr__cpus_parse_cpu_max("100000 100000\n"), 1);
	/* Rounded up: 1.5 CPUs are 2, half a CPU is 1. */
	assert_int_equal(tr__cpus_parse_cpu_max("150000 100000\n"), 2);
	assert_int_equal(tr__cpus_parse_cpu_max("50000 100000\n"), 1);
	assert_int_equal(tr__cpus_parse_cpu_max("1000 100000"), 1);
	assert_int_equal(tr__cpus_parse_cpu_max("400001 100000"), 5);
	assert_int_equal(
	    tr__cpus_parse_cpu_max("18446744073709551615 1"), UINT_MAX);
	/* Malformed: no limit rather than a guess. */
	assert_int_equal(tr__cpus_parse_cpu_max(NULL), 0);
	assert_int_equal(tr__cpus_parse_cpu_max(""), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("\n"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("abc"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("100000"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("100000\n"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("100000 0"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("0 100000"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("-5 100000"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("1.5 1"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("100000 100000 7"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max("100000 abc"), 0);
	assert_int_equal(tr__cpus_parse_cpu_max(" 100000 100000"), 0);
	assert_int_equal(
	    tr__cpus_parse_cpu_max("18446744073709551616 100000"), 0);
}

static void test_cfs(void **state)
{
	(void)state;
	assert_int_equal(tr__cpus_parse_cfs("-1\n", "100000\n"), 0);
	assert_int_equal(tr__cpus_parse_cfs("200000\n", "100000\n"), 2);
	assert_int_equal(tr__cpus_parse_cfs("150000\n", "100000\n"), 2);
	assert_int_equal(tr__cpus_parse_cfs("50000\n", "100000\n"), 1);
	assert_int_equal(tr__cpus_parse_cfs("100000", "50000"), 2);
	assert_int_equal(tr__cpus_parse_cfs(NULL, "100000"), 0);
	assert_int_equal(tr__cpus_parse_cfs("100000", NULL), 0);
	assert_int_equal(tr__cpus_parse_cfs("", "100000"), 0);
	assert_int_equal(tr__cpus_parse_cfs("abc", "100000"), 0);
	assert_int_equal(tr__cpus_parse_cfs("-2", "100000"), 0);
	assert_int_equal(tr__cpus_parse_cfs("0", "100000"), 0);
	assert_int_equal(tr__cpus_parse_cfs("100000", "0"), 0);
	assert_int_equal(tr__cpus_parse_cfs("100000", ""), 0);
	assert_int_equal(tr__cpus_parse_cfs("100000 1", "100000"), 0);
}

/* ------------------------------------------------------------------------ */
/* Finding the cgroup directories                                            */
/* ------------------------------------------------------------------------ */

/* A host with cgroup v2 only (systemd's unified layout). */
static const char mi_v2[] =
    "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc "
    "proc rw\n"
    "26 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime "
    "shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";

/* Docker on cgroup v1, the cpu and cpuacct controllers together, the
 * hierarchy mounted from the container's own cgroup. */
static const char mi_v1_docker[] =
    "700 650 0:50 / / rw,relatime master:300 - overlay overlay rw\n"
    "720 719 0:60 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
    "724 720 0:29 /docker/abc /sys/fs/cgroup/cpuset ro,nosuid master:11 "
    "- cgroup cgroup rw,cpuset\n"
    "725 720 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid "
    "master:12 - cgroup cgroup rw,cpu,cpuacct\n";

static const char cg_v1_docker[] = "12:cpuset:/docker/abc\n"
                                   "4:cpu,cpuacct:/docker/abc\n"
                                   "1:name=systemd:/docker/abc\n"
                                   "0::/docker/abc\n";

/* A hybrid host: v1 controllers, each mounted alone, and a cgroup2 mount
 * with no controller beside them. */
static const char mi_hybrid[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup "
    "rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup "
    "rw,cpuset\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 "
    "rw\n";

static const char cg_hybrid[] = "3:cpuset:/\n"
                                "2:cpuacct:/\n"
                                "1:cpu:/job/7\n"
                                "0::/user.slice\n";

static void test_dirs_v2(void **state)
{
	(void)state;
	tr__cgroup_dirs d;
	tr__cgroup_dirs_find(&d, "0::/kubepods.slice/pod1/ctr\n", mi_v2);
	assert_string_equal(d.v2, "/sys/fs/cgroup/kubepods.slice/pod1/ctr");
	assert_int_equal(d.v2_top, strlen("/sys/fs/cgroup"));
	assert_string_equal(d.v1, "");

	/* In a cgroup namespace the process is at the root of its view. */
	tr__cgroup_dirs_find(&d, "0::/\n", mi_v2);
	assert_string_equal(d.v2, "/sys/fs/cgroup");
	assert_int_equal(d.v2_top, strlen("/sys/fs/cgroup"));

	/* No final newline; a path with a colon in it. */
	tr__cgroup_dirs_find(&d, "0::/a:b", mi_v2);
	assert_string_equal(d.v2, "/sys/fs/cgroup/a:b");
}

static void test_dirs_v1(void **state)
{
	(void)state;
	tr__cgroup_dirs d;
	/* The mount shows the hierarchy from /docker/abc down: the
	 * process's cgroup is the mount point itself. */
	tr__cgroup_dirs_find(&d, cg_v1_docker, mi_v1_docker);
	assert_string_equal(d.v1, "/sys/fs/cgroup/cpu,cpuacct");
	assert_int_equal(d.v1_top, strlen("/sys/fs/cgroup/cpu,cpuacct"));
	/* The 0:: line but no cgroup2 mount: nothing for v2. */
	assert_string_equal(d.v2, "");

	/* cpu alone, not cpuacct nor cpuset; the v2 mount of a hybrid host
	 * is found too (it has no cpu.max, which the walk takes as none). */
	tr__cgroup_dirs_find(&d, cg_hybrid, mi_hybrid);
	assert_string_equal(d.v1, "/sys/fs/cgroup/cpu/job/7");
	assert_int_equal(d.v1_top, strlen("/sys/fs/cgroup/cpu"));
	assert_string_equal(d.v2, "/sys/fs/cgroup/unified/user.slice");
}

static void test_dirs_odd(void **state)
{
	(void)state;
	tr__cgroup_dirs d;
	/* A cgroup outside the mount's root: not reachable, no limit. */
	tr__cgroup_dirs_find(&d, "4:cpu,cpuacct:/other\n", mi_v1_docker);
	assert_string_equal(d.v1, "");
	/* A root that is only a prefix of the name does not hold it. */
	tr__cgroup_dirs_find(&d, "4:cpu,cpuacct:/docker/abcd\n", mi_v1_docker);
	assert_string_equal(d.v1, "");
	tr__cgroup_dirs_find(&d, "4:cpu,cpuacct:/docker/abc/x\n", mi_v1_docker);
	assert_string_equal(d.v1, "/sys/fs/cgroup/cpu,cpuacct/x");

	/* A mount point with a space, escaped by the kernel. */
	tr__cgroup_dirs_find(
	    &d, "0::/a\n", "26 21 0:23 / /mnt/cg\\040x rw - cgroup2 none rw\n");
	assert_string_equal(d.v2, "/mnt/cg x/a");
	assert_int_equal(d.v2_top, strlen("/mnt/cg x"));

	/* Several optional fields before the separator. */
	tr__cgroup_dirs_find(&d, "0::/a\n",
	    "26 21 0:23 / /cg rw shared:4 master:1 propagate_from:2 - "
	    "cgroup2 none rw\n");
	assert_string_equal(d.v2, "/cg/a");

	/* Garbage, empty and missing texts. */
	const char *junk[] = {"", "\n\n", "::::", "0:", "0::", "0::relative",
	    "x y z\n", "1 2 3 4 5 6 7 8 9\n", "1 2 3 / /cg rw - cgroup2\n"};
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		tr__cgroup_dirs_find(&d, junk[i], mi_v2);
		assert_string_equal(d.v2, "");
		assert_string_equal(d.v1, "");
		tr__cgroup_dirs_find(&d, "0::/a\n4:cpu:/a\n", junk[i]);
		assert_string_equal(d.v2, "");
		assert_string_equal(d.v1, "");
	}
	tr__cgroup_dirs_find(&d, NULL, mi_v2);
	assert_string_equal(d.v2, "");
	tr__cgroup_dirs_find(&d, "0::/\n", NULL);
	assert_string_equal(d.v2, "");

	/* A path longer than the lookup handles counts as none. */
	char *longpath = malloc(TR__CGROUP_PATH_MAX + 16);
	assert_non_null(longpath);
	strcpy(longpath, "0::/");
	memset(longpath + 4, 'a', TR__CGROUP_PATH_MAX);
	longpath[TR__CGROUP_PATH_MAX + 4] = '\0';
	tr__cgroup_dirs_find(&d, longpath, mi_v2);
	assert_string_equal(d.v2, "");
	free(longpath);
}

/* ------------------------------------------------------------------------ */
/* The walk through the parents, on a fake file system                       */
/* ------------------------------------------------------------------------ */

struct fake_file {
	const char *path;
	const char *text;
};

/* Files end at a NULL path; every read is counted. */
struct fake_fs {
	const struct fake_file *files;
	unsigned reads;
};

static int fake_read(const char *path, char *buf, size_t size, void *arg)
{
	struct fake_fs *fs = arg;
	fs->reads++;
	for (const struct fake_file *f = fs->files; f->path != NULL; f++) {
		if (strcmp(f->path, path) == 0) {
			snprintf(buf, size, "%s", f->text);
			return 0;
		}
	}
	return -1;
}

static unsigned limit_of(const char *v2, size_t v2_top, const char *v1,
    size_t v1_top, const struct fake_file *files)
{
	tr__cgroup_dirs d;
	memset(&d, 0, sizeof(d));
	snprintf(d.v2, sizeof(d.v2), "%s", v2);
	d.v2_top = v2_top;
	snprintf(d.v1, sizeof(d.v1), "%s", v1);
	d.v1_top = v1_top;
	struct fake_fs fs = {files, 0};
	return tr__cgroup_cpu_limit(&d, fake_read, &fs);
}

static void test_limit_v2(void **state)
{
	(void)state;
	/* Nested: the smallest limit on the way up holds. */
	static const struct fake_file nested[] = {
	    {"/cg/a/cpu.max", "200000 100000\n"},
	    {"/cg/a/b/cpu.max", "max 100000\n"},
	    {"/cg/a/b/c/cpu.max", "400000 100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("/cg/a/b/c", 3, "", 0, nested), 2);
	assert_int_equal(limit_of("/cg/a/b", 3, "", 0, nested), 2);
	/* The deepest one may be the smallest too. */
	static const struct fake_file deep[] = {
	    {"/cg/a/cpu.max", "800000 100000\n"},
	    {"/cg/a/b/cpu.max", "150000 100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("/cg/a/b", 3, "", 0, deep), 2);

	/* Nothing above the mount point is read: there the files belong to
	 * a hierarchy the process does not see as its own. */
	static const struct fake_file above[] = {
	    {"/cg/cpu.max", "100000 100000\n"},
	    {"/cg/a/cpu.max", "300000 100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("/cg/a/b", 5, "", 0, above), 3);
	assert_int_equal(limit_of("/cg/a/b", 3, "", 0, above), 1);

	/* No file (the root, or no cpu controller) and "max": no limit. */
	static const struct fake_file none[] = {
	    {"/cg/a/cpu.max", "max 100000\n"},
	    {"/cg/a/b/cpu.max", "garbage\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("/cg/a/b", 3, "", 0, none), 0);
	assert_int_equal(limit_of("", 0, "", 0, none), 0);

	/* The walk stops at the mount point even when it is the top, and
	 * reads each level once. */
	static const struct fake_file one[] = {
	    {"/sys/fs/cgroup/cpu.max", "100000 100000\n"},
	    {NULL, NULL},
	};
	tr__cgroup_dirs d;
	memset(&d, 0, sizeof(d));
	strcpy(d.v2, "/sys/fs/cgroup/x/y");
	d.v2_top = strlen("/sys/fs/cgroup");
	struct fake_fs fs = {one, 0};
	assert_int_equal(tr__cgroup_cpu_limit(&d, fake_read, &fs), 1);
	assert_int_equal(fs.reads, 3);
}

static void test_limit_v1(void **state)
{
	(void)state;
	static const struct fake_file files[] = {
	    {"/cg/cpu/job/cpu.cfs_quota_us", "150000\n"},
	    {"/cg/cpu/job/cpu.cfs_period_us", "100000\n"},
	    {"/cg/cpu/job/7/cpu.cfs_quota_us", "-1\n"},
	    {"/cg/cpu/job/7/cpu.cfs_period_us", "100000\n"},
	    {"/cg/cpu/cpu.cfs_quota_us", "-1\n"},
	    {"/cg/cpu/cpu.cfs_period_us", "100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("", 0, "/cg/cpu/job/7", 7, files), 2);
	assert_int_equal(limit_of("", 0, "/cg/cpu", 7, files), 0);

	/* A quota without a period file is no limit. */
	static const struct fake_file half[] = {
	    {"/cg/cpu/cpu.cfs_quota_us", "100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("", 0, "/cg/cpu", 7, half), 0);

	/* Both hierarchies: the smaller wins. */
	static const struct fake_file both[] = {
	    {"/v2/a/cpu.max", "300000 100000\n"},
	    {"/v1/a/cpu.cfs_quota_us", "100000\n"},
	    {"/v1/a/cpu.cfs_period_us", "100000\n"},
	    {NULL, NULL},
	};
	assert_int_equal(limit_of("/v2/a", 3, "/v1/a", 3, both), 1);
	assert_int_equal(limit_of("/v2/a", 3, "", 0, both), 3);
}

/* ------------------------------------------------------------------------ */
/* This process: the affinity mask                                           */
/* ------------------------------------------------------------------------ */

static cpu_set_t g_saved_mask;

/* Restricts the calling thread to its highest allowed CPU, and returns it
 * (the mask is restored by restore_mask). */
static int narrow_to_last_cpu(void)
{
	assert_int_equal(pthread_getaffinity_np(pthread_self(),
	                     sizeof(g_saved_mask), &g_saved_mask),
	    0);
	int last = -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &g_saved_mask))
			last = c;
	assert_true(last >= 0);
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(last, &one);
	assert_int_equal(
	    pthread_setaffinity_np(pthread_self(), sizeof(one), &one), 0);
	return last;
}

static void restore_mask(void)
{
	assert_int_equal(pthread_setaffinity_np(pthread_self(),
	                     sizeof(g_saved_mask), &g_saved_mask),
	    0);
}

static void test_available(void **state)
{
	(void)state;
	unsigned n = tr_cpus_available();
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	assert_true(n >= 1);
	assert_true(online < 1 || n <= (unsigned)online);
	assert_int_equal(n, tr__cpus_available());

	cpu_set_t mine;
	assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
	assert_true(n <= (unsigned)CPU_COUNT(&mine));

	/* Follows the calling thread's mask. */
	(void)narrow_to_last_cpu();
	unsigned narrowed = tr_cpus_available();
	restore_mask();
	assert_int_equal(narrowed, 1);
	assert_int_equal(tr_cpus_available(), n);
}

static void test_default_schedulers(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	unsigned n = tr_cpus_available();
	tr_runtime *rt = tt_start(fx, 0);
	assert_int_equal(tr_runtime_schedulers(rt),
	    n < TR_MAX_SCHEDULERS ? n : TR_MAX_SCHEDULERS);
	tt_stop(fx);

	/* Started from a thread confined to one CPU: one scheduler. */
	(void)narrow_to_last_cpu();
	rt = tt_start(fx, 0);
	restore_mask();
	assert_int_equal(tr_runtime_schedulers(rt), 1);
	tt_stop(fx);
}

/* Where the actor's init ran: the one CPU of its thread's mask, or -1 if
 * the mask had several, -2 if it could not be read. */
static _Atomic int g_pinned_cpu = -3;

static int where_init(tr_ctx *ctx, void *arg, void **st)
{
	(void)arg;
	(void)st;
	cpu_set_t set;
	int cpu = -2;
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		cpu = -1;
		if (CPU_COUNT(&set) == 1)
			for (int c = 0; c < CPU_SETSIZE; c++)
				if (CPU_ISSET(c, &set))
					cpu = c;
	}
	atomic_store(&g_pinned_cpu, cpu);
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static int where_handle(tr_ctx *ctx, void *st, const tr_msg *m)
{
	(void)ctx;
	(void)st;
	(void)m;
	return 0;
}

static const tr_behaviour where_bhv = {
    .name = "where",
    .init = where_init,
    .handle = where_handle,
};

static void test_pin_within_mask(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime_opts_init(&o);
	o.schedulers = 1;
	o.pin = true;

	/* Started from a thread confined to its last CPU, scheduler 0 pins
	 * to that CPU (the first of the mask), not to CPU 0. */
	int last = narrow_to_last_cpu();
	tr_runtime *rt = tt_start_opts(fx, &o);
	restore_mask();
	atomic_store(&g_pinned_cpu, -3);
	tt_spawn(rt, &where_bhv, NULL);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pinned_cpu), last);
	tt_stop(fx);

	/* With the whole mask, scheduler 0 goes to its first CPU. */
	int first = -1;
	for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
		if (CPU_ISSET(c, &g_saved_mask))
			first = c;
	rt = tt_start_opts(fx, &o);
	atomic_store(&g_pinned_cpu, -3);
	tt_spawn(rt, &where_bhv, NULL);
	tt_quiesce(rt);
	assert_int_equal(atomic_load(&g_pinned_cpu), first);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cpu_max),
	    cmocka_unit_test(test_cfs),
	    cmocka_unit_test(test_dirs_v2),
	    cmocka_unit_test(test_dirs_v1),
	    cmocka_unit_test(test_dirs_odd),
	    cmocka_unit_test(test_limit_v2),
	    cmocka_unit_test(test_limit_v1),
	    cmocka_unit_test(test_available),
	    TT_TEST(test_default_schedulers),
	    TT_TEST(test_pin_within_mask),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
