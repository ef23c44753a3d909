/*
 * What the multi-process node tests share: a child node process, and
 * cleaning up after it.
 */
#ifndef TROUPE_TEST_NODE_CHILD_H
#define TROUPE_TEST_NODE_CHILD_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A test node program started by a test. */
struct child {
	pid_t pid;     /* 0 when not running */
	int out;       /* the read end of its stdout */
	char url[512]; /* where it listens */
};

/* Ends a child for sure (a frozen one too) and reaps it. */
static inline void kill_child(struct child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGCONT);
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		close(c->out);
	}
	c->pid = 0;
}

/* Removes a test's temporary directory and the files (ipc sockets,
 * certificates) in it. */
static inline void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

#endif
