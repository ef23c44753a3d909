/*
 * What /proc says of a process, for the tests: its state and parent, a
 * field of its status (resident memory), its open descriptors.
 */
#ifndef TT_PROC_STATE_H
#define TT_PROC_STATE_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* The state letter of process `pid` (R, S, D, Z, X, T...) and its parent in
 * *ppid (may be NULL), or 0 if there is no such process. */
static inline char tt_proc_state(int pid, int *ppid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return 0;
	size_t k = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[k] = '\0';
	/* The command may hold spaces and parentheses: the state follows
	 * the last ')'. */
	char *rp = strrchr(buf, ')');
	char st = 0;
	int pp = 0;
	if (rp == NULL || sscanf(rp + 1, " %c %d", &st, &pp) != 2)
		return 0;
	if (ppid != NULL)
		*ppid = pp;
	return st;
}

/* Gone, or dead and waiting to be reaped. */
static inline bool tt_proc_dead(int pid)
{
	char st = tt_proc_state(pid, NULL);
	return st == 0 || st == 'Z' || st == 'X';
}

/* Field `key` of /proc/<pid>/status in kB (pid 0: this process), e.g.
 * "VmRSS", or -1. */
static inline long tt_proc_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	if (pid == 0)
		snprintf(path, sizeof(path), "/proc/self/status");
	else
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	size_t kl = strlen(key);
	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':')
			kb = strtol(line + kl + 1, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kb;
}

/* The descriptors this process has open, or -1. */
static inline int tt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* less the directory's own */
}

#endif
