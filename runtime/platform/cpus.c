/*
 * The CPUs the process may use (cpus.h): the affinity mask, the cgroup
 * CPU quota, and pinning within the mask.
 */
#define _GNU_SOURCE
#include "platform/cpus.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the parsers: pure functions of the files' text ------------------- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A decimal number at *s, advancing past it; false if there is none or it
 * does not fit. */
static bool parse_u64(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		p++;
	}
	*s = p;
	*out = v;
	return true;
}

/* True if nothing but white space is left. */
static bool at_end(const char *s)
{
	while (is_space(*s))
		s++;
	return *s == '\0';
}

/* ceil(quota / period) as a CPU count, at least 1 (quota > 0). */
static unsigned quota_cpus(uint64_t quota, uint64_t period)
{
	uint64_t n = quota / period + (quota % period != 0);
	return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

unsigned tr__cpus_parse_cpu_max(const char *text)
{
	if (text == NULL)
		return 0;
	const char *s = text;
	uint64_t quota, period;
	/* "max PERIOD" (or "max" alone, as it may be written) is no limit;
	 * so is whatever is not "QUOTA PERIOD". */
	if (!parse_u64(&s, &quota) || quota == 0)
		return 0;
	if (*s != ' ')
		return 0;
	while (*s == ' ')
		s++;
	if (!parse_u64(&s, &period) || period == 0 || !at_end(s))
		return 0;
	return quota_cpus(quota, period);
}

unsigned tr__cpus_parse_cfs(const char *quota_text, const char *period_text)
{
	if (quota_text == NULL || period_text == NULL)
		return 0;
	const char *q = quota_text, *p = period_text;
	uint64_t quota, period;
	/* "-1" (no limit) fails here like any other text that is not a
	 * quota. */
	if (!parse_u64(&q, &quota) || quota == 0 || !at_end(q))
		return 0;
	if (!parse_u64(&p, &period) || period == 0 || !at_end(p))
		return 0;
	return quota_cpus(quota, period);
}

/* True if the comma-separated list [s, end) has the entry `word`. */
static bool list_has(const char *s, const char *end, const char *word)
{
	size_t wl = strlen(word);
	while (s < end) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		const char *e = c != NULL ? c : end;
		if ((size_t)(e - s) == wl && memcmp(s, word, wl) == 0)
			return true;
		s = e + 1;
	}
	return false;
}

/* The line at *s, [*line, *end), advancing past its newline; false at the
 * end of the text. */
static bool next_line(const char **s, const char **line, const char **end)
{
	if (**s == '\0')
		return false;
	*line = *s;
	const char *nl = strchr(*s, '\n');
	*end = nl != NULL ? nl : *s + strlen(*s);
	*s = nl != NULL ? nl + 1 : *end;
	return true;
}

/* The cgroup path of the v2 hierarchy (v2) or of the v1 hierarchy with the
 * cpu controller into out, from /proc/self/cgroup's
 * "ID:CONTROLLERS:PATH" lines; false if there is none. */
static bool cgroup_path(const char *text, bool v2, char *out, size_t size)
{
	const char *s = text, *line, *end;
	while (next_line(&s, &line, &end)) {
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		if (c1 == NULL)
			continue;
		const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
		if (c2 == NULL)
			continue;
		bool is_v2 = c1 - line == 1 && line[0] == '0' && c2 == c1 + 1;
		bool want =
		    v2 ? is_v2 : (!is_v2 && list_has(c1 + 1, c2, "cpu"));
		if (!want)
			continue;
		/* The path is the rest of the line, colons and all. */
		size_t n = (size_t)(end - c2 - 1);
		if (n == 0 || c2[1] != '/' || n >= size)
			return false;
		memcpy(out, c2 + 1, n);
		out[n] = '\0';
		return true;
	}
	return false;
}

/* Field [s, end) of a mountinfo line into out, with the kernel's octal
 * escapes (\040 for a space, ...) undone; false if it does not fit. */
static bool unescape(const char *s, const char *end, char *out, size_t size)
{
	size_t n = 0;
	while (s < end) {
		char c = *s++;
		if (c == '\\' && end - s >= 3 && s[0] >= '0' && s[0] <= '3' &&
		    s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7') {
			c = (char)((s[0] - '0') << 6 | (s[1] - '0') << 3 |
			           (s[2] - '0'));
			s += 3;
		}
		if (n + 1 >= size)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

/* A mountinfo line's fields that matter here: the mount's root (4th) and
 * mount point (5th), and after the optional fields and their "-"
 * separator, the file system type and the super block's options. */
typedef struct mount_line {
	const char *root, *root_end;
	const char *point, *point_end;
	const char *fstype, *fstype_end;
	const char *opts, *opts_end;
} mount_line;

/* False for a line that is not a mountinfo line. */
static bool mount_fields(const char *line, const char *end, mount_line *m)
{
	enum { MAXF = 64 };
	const char *f[MAXF], *fe[MAXF];
	int n = 0;
	const char *s = line;
	while (s < end && n < MAXF) {
		while (s < end && *s == ' ')
			s++;
		if (s == end)
			break;
		const char *e = memchr(s, ' ', (size_t)(end - s));
		if (e == NULL)
			e = end;
		f[n] = s;
		fe[n] = e;
		n++;
		s = e;
	}
	int sep = 6;
	while (sep < n && !(fe[sep] - f[sep] == 1 && *f[sep] == '-'))
		sep++;
	if (sep + 3 >= n)
		return false;
	m->root = f[3];
	m->root_end = fe[3];
	m->point = f[4];
	m->point_end = fe[4];
	m->fstype = f[sep + 1];
	m->fstype_end = fe[sep + 1];
	m->opts = f[sep + 3];
	m->opts_end = fe[sep + 3];
	return true;
}

static bool field_is(const char *s, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - s) == n && memcmp(s, word, n) == 0;
}

/* The directory of cgroup `path` under the first mount of the hierarchy
 * (v2, or v1 with the cpu controller) whose root holds it, into out, and
 * the length of its mount point into *top; false if no mount does. */
static bool cgroup_dir(const char *mountinfo, bool v2, const char *path,
    char *out, size_t size, size_t *top)
{
	char root[TR__CGROUP_PATH_MAX];
	const char *s = mountinfo, *line, *end;
	mount_line m;
	while (next_line(&s, &line, &end)) {
		if (!mount_fields(line, end, &m))
			continue;
		bool want = v2 ? field_is(m.fstype, m.fstype_end, "cgroup2")
		               : (field_is(m.fstype, m.fstype_end, "cgroup") &&
		                     list_has(m.opts, m.opts_end, "cpu"));
		if (!want)
			continue;
		if (!unescape(m.root, m.root_end, root, sizeof(root)) ||
		    !unescape(m.point, m.point_end, out, size))
			continue;
		/* The mount shows the hierarchy from `root` down (a
		 * container's own cgroup, say): the path must be in it. */
		size_t rl = strlen(root);
		if (rl == 1 && root[0] == '/')
			rl = 0;
		if (strncmp(path, root, rl) != 0 ||
		    (path[rl] != '/' && path[rl] != '\0'))
			continue;
		const char *rel = path + rl;
		if (strcmp(rel, "/") == 0)
			rel = "";
		*top = strlen(out);
		if (*top + strlen(rel) >= size)
			continue;
		strcat(out, rel);
		return true;
	}
	out[0] = '\0';
	return false;
}

void tr__cgroup_dirs_find(
    tr__cgroup_dirs *out, const char *proc_cgroup, const char *mountinfo)
{
	char path[TR__CGROUP_PATH_MAX];
	memset(out, 0, sizeof(*out));
	if (proc_cgroup == NULL || mountinfo == NULL)
		return;
	if (cgroup_path(proc_cgroup, true, path, sizeof(path)))
		(void)cgroup_dir(mountinfo, true, path, out->v2,
		    sizeof(out->v2), &out->v2_top);
	if (cgroup_path(proc_cgroup, false, path, sizeof(path)))
		(void)cgroup_dir(mountinfo, false, path, out->v1,
		    sizeof(out->v1), &out->v1_top);
}

/* The smaller of two limits, 0 being none. */
static unsigned min_limit(unsigned a, unsigned b)
{
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

/* The smallest limit of `dir` and its parents up to its first `top`
 * characters (the mount point). */
static unsigned walk_up(
    const char *dir, size_t top, bool v2, tr__read_file_fn read, void *arg)
{
	char d[TR__CGROUP_PATH_MAX];
	char file[TR__CGROUP_PATH_MAX + 32];
	char a[64], b[64];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof(d) || top > len)
		return 0;
	memcpy(d, dir, len + 1);
	unsigned limit = 0;
	for (;;) {
		unsigned here = 0;
		if (v2) {
			snprintf(file, sizeof(file), "%s/cpu.max", d);
			if (read(file, a, sizeof(a), arg) == 0)
				here = tr__cpus_parse_cpu_max(a);
		} else {
			snprintf(file, sizeof(file), "%s/cpu.cfs_quota_us", d);
			if (read(file, a, sizeof(a), arg) == 0) {
				snprintf(file, sizeof(file),
				    "%s/cpu.cfs_period_us", d);
				if (read(file, b, sizeof(b), arg) == 0)
					here = tr__cpus_parse_cfs(a, b);
			}
		}
		limit = min_limit(limit, here);
		if (len <= top)
			break;
		/* Up one level, never above the mount point. */
		while (len > top && d[len - 1] != '/')
			len--;
		if (len > top)
			len--; /* the slash */
		d[len] = '\0';
		if (len == 0)
			break;
	}
	return limit;
}

unsigned tr__cgroup_cpu_limit(
    const tr__cgroup_dirs *dirs, tr__read_file_fn read, void *arg)
{
	return min_limit(walk_up(dirs->v2, dirs->v2_top, true, read, arg),
	    walk_up(dirs->v1, dirs->v1_top, false, read, arg));
}

/* ---- this process's files ---------------------------------------------- */

/* The whole of a small file (/proc files say they are empty, so it is read
 * until the end), NUL-terminated, malloc'd; NULL if it cannot be read or
 * is larger than `max`. */
static char *slurp(const char *path, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf != NULL) {
		if (len + 1 == cap) {
			char *nb = cap < max ? realloc(buf, cap * 2) : NULL;
			if (nb == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			buf = NULL;
			break;
		}
		if (r == 0) {
			buf[len] = '\0';
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	return buf;
}

static int read_small(const char *path, char *buf, size_t size, void *arg)
{
	(void)arg;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = 0;
	while (len + 1 < size) {
		ssize_t r = read(fd, buf + len, size - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return len > 0 ? 0 : -1;
}

/* The calling thread's affinity mask, malloc'd (CPU_FREE), and its size in
 * bytes; NULL if it cannot be had. The kernel refuses a mask smaller than
 * its own (EINVAL), so a machine with more CPUs than cpu_set_t holds gets
 * a larger one. */
static cpu_set_t *affinity(size_t *size)
{
	for (int n = CPU_SETSIZE; n <= (1 << 20); n *= 2) {
		cpu_set_t *set = CPU_ALLOC(n);
		if (set == NULL)
			return NULL;
		*size = CPU_ALLOC_SIZE(n);
		if (sched_getaffinity(0, *size, set) == 0)
			return set;
		CPU_FREE(set);
		if (errno != EINVAL)
			return NULL;
	}
	return NULL;
}

unsigned tr__cpus_available(void)
{
	unsigned n = 0;
	size_t size;
	cpu_set_t *set = affinity(&size);
	if (set != NULL) {
		n = (unsigned)CPU_COUNT_S(size, set);
		CPU_FREE(set);
	}
	if (n == 0) {
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		n = online > 0 ? (unsigned)online : 1u;
	}
	/* About 8 KiB: off the stack, which may be a small thread's. */
	tr__cgroup_dirs *dirs = malloc(sizeof(*dirs));
	char *cg = slurp("/proc/self/cgroup", (size_t)1 << 20);
	char *mi = slurp("/proc/self/mountinfo", (size_t)16 << 20);
	if (dirs != NULL && cg != NULL && mi != NULL) {
		tr__cgroup_dirs_find(dirs, cg, mi);
		unsigned q = tr__cgroup_cpu_limit(dirs, read_small, NULL);
		if (q != 0 && q < n)
			n = q;
	}
	free(mi);
	free(cg);
	free(dirs);
	return n;
}

void tr__pin_self(unsigned i)
{
	size_t size;
	cpu_set_t *set = affinity(&size);
	if (set == NULL)
		return;
	int count = CPU_COUNT_S(size, set);
	if (count > 0) {
		unsigned want = i % (unsigned)count;
		int cpu = 0;
		for (unsigned seen = 0;; cpu++) {
			if (CPU_ISSET_S((size_t)cpu, size, set) &&
			    seen++ == want)
				break;
		}
		CPU_ZERO_S(size, set);
		CPU_SET_S((size_t)cpu, size, set);
		(void)pthread_setaffinity_np(pthread_self(), size, set);
	}
	CPU_FREE(set);
}
