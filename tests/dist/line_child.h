/*
 * Test node programs driven one line at a time: the child's stdin is a
 * pipe the test writes commands to, and its stdout (node_child.h) gives
 * one line of answer per command. For pg_node_main.c and
 * cluster_node_main.c.
 */
#ifndef TT_LINE_CHILD_H
#define TT_LINE_CHILD_H

#include <stdarg.h>

#include "node_child.h"

struct lchild {
	struct child c;
	int in; /* the write end of its stdin; -1 when closed */
};

/* child_spawn with a pipe for stdin. Returns as child_spawn. */
static inline int lchild_spawn(
    struct lchild *p, const char *const *argv, const char *name, int wait_ms)
{
	int in[2];
	p->in = -1;
	if (pipe(in) != 0)
		return -1;
	/* The child's stdin: dup'd over 0 around the fork of child_spawn. */
	int save = dup(0);
	dup2(in[0], 0);
	close(in[0]);
	int rc = child_spawn(&p->c, argv, name, wait_ms);
	dup2(save, 0);
	close(save);
	p->in = in[1];
	return rc;
}

/* Ends the child: "quit" and up to 5 s for it to exit, unless `hard`,
 * then SIGKILL whatever is left, and reaps it. */
static inline void lchild_end(struct lchild *p, bool hard)
{
	if (p->c.pid > 0 && !hard && p->in >= 0) {
		(void)!write(p->in, "quit\n", 5);
		for (int i = 0; i < 500; i++) {
			if (waitpid(p->c.pid, NULL, WNOHANG) == p->c.pid) {
				close(p->c.out);
				p->c.pid = 0;
				break;
			}
			usleep(10000);
		}
	}
	kill_child(&p->c);
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
}

/* Reads one line of the child's stdout into ans (without the newline),
 * waiting up to `ms`. Returns false on a timeout or the end of its
 * output. */
static inline bool lchild_line(struct lchild *p, char *ans, size_t cap, int ms)
{
	size_t len = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (len + 1 < cap) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t el = (int64_t)(t.tv_sec - t0.tv_sec) * 1000 +
		             (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el >= ms)
			break;
		struct pollfd pf = {p->c.out, POLLIN, 0};
		if (poll(&pf, 1, (int)(ms - el)) <= 0)
			continue;
		ssize_t r = read(p->c.out, ans + len, 1);
		if (r <= 0)
			break;
		if (ans[len] == '\n') {
			ans[len] = '\0';
			return true;
		}
		len++;
	}
	ans[len] = '\0';
	return false;
}

/* Sends one command (printf-style, without the newline) and reads its
 * one-line answer, waiting up to `ms`. Returns false when the command
 * could not be written or no answer came in time. */
static inline bool lchild_cmdv(struct lchild *p, char *ans, size_t cap,
    int ms, const char *fmt, va_list ap)
{
	char line[1024];
	int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line) - 1)
		return false;
	line[n++] = '\n';
	if (write(p->in, line, (size_t)n) != n)
		return false;
	return lchild_line(p, ans, cap, ms);
}

static inline bool lchild_cmd(
    struct lchild *p, char *ans, size_t cap, int ms, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = lchild_cmdv(p, ans, cap, ms, fmt, ap);
	va_end(ap);
	return ok;
}

#endif
