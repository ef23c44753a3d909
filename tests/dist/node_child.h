/*
 * What the multi-process node tests share: starting a child node process,
 * and cleaning up after it.
 */
#ifndef TROUPE_TEST_NODE_CHILD_H
#define TROUPE_TEST_NODE_CHILD_H

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include "proc_state.h"
#include <unistd.h>

/* A test node program started by a test. */
struct child {
	pid_t pid;     /* 0 when not running */
	int out;       /* the read end of its stdout */
	char url[512]; /* where it listens */
};

/* Runs the test node program argv[0] (argv NULL-terminated) as child
 * `c`, its stdout a pipe to c->out, and waits up to wait_ms for its
 * first line, "READY <url>", which gives c->url. Returns 0, or -1 when it
 * did not start; c->pid is set whenever a process was forked, so that the
 * caller's cleanup (kill_child) reaps it either way. */
static inline int child_spawn(
    struct child *c, const char *const *argv, const char *name, int wait_ms)
{
	int fds[2];
	c->pid = 0;
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	c->pid = pid;
	c->out = fds[0];
	/* Read "READY <url>\n", bounded. */
	char line[512];
	size_t len = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t ms = (int64_t)(t.tv_sec - t0.tv_sec) * 1000 +
		             (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (len >= sizeof(line) - 1 || ms >= wait_ms)
			break;
		struct pollfd p = {c->out, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = read(c->out, line + len, 1);
		if (r <= 0 || line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	if (strncmp(line, "READY ", 6) != 0) {
		fprintf(
		    stderr, "test node %s did not start: '%s'\n", name, line);
		return -1;
	}
	snprintf(c->url, sizeof(c->url), "%s", line + 6);
	return 0;
}

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
