/*
 * What a process is, from /proc/<pid>/stat, for the tests of process
 * children and of the heart.
 */
#ifndef TT_PROC_STATE_H
#define TT_PROC_STATE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

#endif
