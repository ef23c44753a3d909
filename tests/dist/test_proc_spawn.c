/*
 * Launching OS process children (transport/proc_spawn.c) with real
 * processes, pipes and /proc:
 *
 * - stdout and stderr come as lines on their pipes until EOF, the exit
 *   status is the child's, the pidfd becomes readable when it exits; a
 *   child killed by a signal is seen as such;
 * - the child leads its own process group: kill(-pid) takes its
 *   background grandchildren too;
 * - ctl_fd becomes fd 3 (also when it is 1 in the parent, or when the
 *   parent's 0..2 are closed and every new descriptor lands low), EOF on
 *   it when the parent closes its end; no other descriptor of the parent
 *   reaches the child, close-on-exec or not, nor another child's pipes;
 *   signals start at their defaults, none blocked;
 * - env_add adds and overrides, cwd, PATH search; a program that does not
 *   exist (or cannot run) is an error code, with no zombie and no
 *   descriptor left behind;
 * - RLIMIT_CPU kills a spinning child, RLIMIT_NOFILE is what ulimit sees;
 * - a child whose parent is SIGKILLed dies too (PR_SET_PDEATHSIG);
 * - threads launching at once, and 200 launches of /bin/true (the median
 *   launch time is printed, not asserted).
 *
 * The test process is a child subreaper, so that orphaned grandchildren
 * come back to it to be reaped; every test kills and reaps what it
 * started, also when it fails half way.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_lines.h"
#include "proc_state.h"
#include "proc_spawn.h"

#define WAIT_MS 10000

/* ---- children started by the test, killed and reaped at teardown ------ */

#define MAX_KIDS 32
static pid_t kids[MAX_KIDS];

static void kid_add(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == 0) {
			kids[i] = pid;
			return;
		}
	fail_msg("too many children");
}

static void kid_done(pid_t pid)
{
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] == pid)
			kids[i] = 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < MAX_KIDS; i++)
		if (kids[i] != 0) {
			(void)kill(-kids[i], SIGKILL);
			(void)kill(kids[i], SIGKILL);
			(void)waitpid(kids[i], NULL, 0);
			kids[i] = 0;
		}
	/* Orphans that came back to this subreaper. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return 0;
}

static void launched_close(struct tr__proc_launched *c)
{
	int *fds[] = {&c->pidfd, &c->out_fd, &c->err_fd};
	for (int i = 0; i < 3; i++)
		if (*fds[i] >= 0) {
			close(*fds[i]);
			*fds[i] = -1;
		}
}

/* Launches argv (argv[0] is also the path) with rq's other fields. */
static int launch(struct tr__proc_launched *c, struct tr__proc_launch rq,
    const char *const *argv)
{
	rq.path = argv[0];
	rq.argv = argv;
	int rc = tr__proc_launch(c, &rq);
	if (rc == TR_OK)
		kid_add(c->pid);
	return rc;
}

/* A request with no ctl_fd unless the fields given say otherwise. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define RQ(...) ((struct tr__proc_launch){.ctl_fd = -1, ##__VA_ARGS__})

/* Waits for the child's exit; returns its wait status, or -1 after
 * WAIT_MS. */
static int wait_exit(struct tr__proc_launched *c, int64_t ms)
{
	int64_t dl = tt_now_ms() + ms;
	for (;;) {
		int ws;
		pid_t r = waitpid(c->pid, &ws, WNOHANG);
		if (r == c->pid) {
			kid_done(c->pid);
			return ws;
		}
		if (tt_now_ms() > dl)
			return -1;
		tt_sleep_ms(5);
	}
}

/* ---- output -------------------------------------------------------------*/

#define OUT_LINES 32

struct lines {
	int n;
	char v[OUT_LINES][256];
};

static void lines_emit(void *arg, const char *line, size_t len, bool partial)
{
	struct lines *o = arg;
	(void)partial;
	if (o->n < OUT_LINES)
		snprintf(o->v[o->n++], sizeof(o->v[0]), "%.*s", (int)len, line);
}

/* A child's two streams, read with poll until both are at EOF. */
struct reader {
	struct tr__lines l[2];
	bool eof[2];
	struct lines out, err;
};

static struct reader *reader_new(void)
{
	struct reader *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	assert_rc(tr__lines_init(&r->l[0], 4096), TR_OK);
	assert_rc(tr__lines_init(&r->l[1], 4096), TR_OK);
	return r;
}

static void reader_free(struct reader *r)
{
	tr__lines_fini(&r->l[0]);
	tr__lines_fini(&r->l[1]);
	free(r);
}

/* Reads until both streams are at EOF, or (want > 0) until `want` stdout
 * lines are in. Returns false after WAIT_MS. */
static bool reader_run(struct reader *r, struct tr__proc_launched *c, int want)
{
	int64_t dl = tt_now_ms() + WAIT_MS;
	while (tt_now_ms() < dl) {
		if (want > 0 && r->out.n >= want)
			return true;
		if (r->eof[0] && r->eof[1])
			return want <= 0 || r->out.n >= want;
		struct pollfd pf[2] = {
		    {.fd = r->eof[0] ? -1 : c->out_fd, .events = POLLIN},
		    {.fd = r->eof[1] ? -1 : c->err_fd, .events = POLLIN}};
		if (poll(pf, 2, 100) < 0 && errno != EINTR)
			return false;
		for (int i = 0; i < 2; i++) {
			if (r->eof[i] || pf[i].revents == 0)
				continue;
			struct lines *o = i == 0 ? &r->out : &r->err;
			ssize_t n;
			while ((n = tr__lines_read_fd(
			            &r->l[i], pf[i].fd, lines_emit, o)) > 0)
				;
			if (n == 0)
				r->eof[i] = true;
		}
	}
	return false;
}

/* Reads both streams to EOF into out and err. */
static bool collect(
    struct tr__proc_launched *c, struct lines *out, struct lines *err)
{
	struct reader *r = reader_new();
	bool ok = reader_run(r, c, 0);
	*out = r->out;
	*err = r->err;
	reader_free(r);
	return ok;
}

/* ---- /proc ----------------------------------------------------------- */

/* Whether pid is gone or a zombie (a zombie of ours is reaped). */
static bool proc_dead(pid_t pid)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(p, "r");
	if (f == NULL)
		return true;
	char buf[512];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	bool zombie = rp != NULL && (rp[2] == 'Z' || rp[2] == 'X');
	if (zombie)
		(void)waitpid(pid, NULL, WNOHANG);
	return zombie;
}

static bool no_children(void)
{
	return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* ---- tests ------------------------------------------------------------*/

static void test_out_err_status(void **state)
{
	(void)state;
	struct tr__proc_launched c;
	const char *argv[] = {
	    "/bin/sh", "-c", "echo out; echo err >&2; exit 3", NULL};
	assert_rc(launch(&c, RQ(), argv), TR_OK);
	assert_true(c.pid > 0);
	assert_int_equal(c.os_errno, 0);
	assert_true(fcntl(c.out_fd, F_GETFD) & FD_CLOEXEC);
	assert_true(fcntl(c.err_fd, F_GETFL) & O_NONBLOCK);
	struct lines out = {0}, err = {0};
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0], "out");
	assert_int_equal(err.n, 1);
	assert_string_equal(err.v[0], "err");
	if (c.pidfd >= 0) {
		struct pollfd pf = {.fd = c.pidfd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, WAIT_MS), 1);
		assert_true(pf.revents & POLLIN);
	} else {
		print_message("pidfd_open refused here: waitpid only\n");
	}
	int ws = wait_exit(&c, WAIT_MS);
	assert_true(ws != -1 && WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 3);
	launched_close(&c);
}

static void test_killed_by_signal(void **state)
{
	(void)state;
	struct tr__proc_launched c;
	const char *argv[] = {"/bin/sh", "-c", "kill -SEGV $$", NULL};
	assert_rc(launch(&c, RQ(), argv), TR_OK);
	int ws = wait_exit(&c, WAIT_MS);
	assert_true(ws != -1 && WIFSIGNALED(ws));
	assert_int_equal(WTERMSIG(ws), SIGSEGV);
	launched_close(&c);
}

static void test_process_group(void **state)
{
	(void)state;
	struct tr__proc_launched c;
	const char *argv[] = {"/bin/sh", "-c",
	    "sleep 30 & echo $!; sleep 30 & echo $!; wait", NULL};
	assert_rc(launch(&c, RQ(), argv), TR_OK);
	assert_int_equal(getpgid(c.pid), c.pid);
	struct reader *r = reader_new();
	bool two = reader_run(r, &c, 2);
	pid_t g[2] = {(pid_t)atoi(r->out.v[0]), (pid_t)atoi(r->out.v[1])};
	reader_free(r);
	assert_true(two);
	for (int i = 0; i < 2; i++) {
		assert_true(g[i] > 0);
		assert_false(proc_dead(g[i]));
		assert_int_equal(getpgid(g[i]), c.pid);
	}
	assert_int_equal(kill(-c.pid, SIGKILL), 0);
	int ws = wait_exit(&c, WAIT_MS);
	assert_true(ws != -1 && WIFSIGNALED(ws));
	assert_int_equal(WTERMSIG(ws), SIGKILL);
	assert_true(TT_WAIT_FOR(proc_dead(g[0]) && proc_dead(g[1]), 2000));
	launched_close(&c);
}

/* A child that copies fd 3 to stdout, with ctl_fd as given. */
static void check_ctl_echo(int ctl_r, int ctl_w)
{
	struct tr__proc_launched c;
	const char *argv[] = {"/bin/sh", "-c", "cat <&3; echo done", NULL};
	int rc = launch(&c, RQ(.ctl_fd = ctl_r), argv);
	assert_rc(rc, TR_OK);
	assert_int_equal(write(ctl_w, "hello\nworld\n", 12), 12);
	struct reader *r = reader_new();
	bool two = reader_run(r, &c, 2);
	struct lines out = r->out;
	/* The parent's end closed: cat sees EOF. */
	close(ctl_w);
	bool eof = reader_run(r, &c, 0);
	struct lines all = r->out;
	reader_free(r);
	assert_true(two);
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[0], "hello");
	assert_string_equal(out.v[1], "world");
	assert_true(eof);
	assert_int_equal(all.n, 3);
	assert_string_equal(all.v[2], "done");
	int ws = wait_exit(&c, WAIT_MS);
	assert_true(ws != -1 && WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	launched_close(&c);
}

static void test_ctl_fd(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	check_ctl_echo(p[0], p[1]);
	close(p[0]);

	/* ctl_fd at 1 in the parent, where the child's stdout goes. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int saved = dup(1);
	assert_true(saved >= 0);
	assert_int_equal(dup2(p[0], 1), 1);
	struct tr__proc_launched c;
	const char *argv[] = {"/bin/sh", "-c", "cat <&3", NULL};
	int rc = launch(&c, RQ(.ctl_fd = 1), argv);
	dup2(saved, 1);
	close(saved);
	close(p[0]);
	assert_rc(rc, TR_OK);
	assert_int_equal(write(p[1], "via one\n", 8), 8);
	close(p[1]);
	struct lines out = {0}, err = {0};
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0], "via one");
	int ws = wait_exit(&c, WAIT_MS);
	assert_true(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	launched_close(&c);

	/* A descriptor that is not open is refused before any fork. */
	assert_rc(launch(&c, RQ(.ctl_fd = 1000), argv), TR_EINVAL);
	assert_int_equal(c.os_errno, EBADF);
	assert_int_equal(c.pid, -1);
}

/* The fds `ls /proc/self/fd` lists: 0..n-1 and at most one more (the
 * directory ls reads). */
static void check_fds_seen(const struct lines *out, int n)
{
	int extra = 0;
	bool seen[4] = {false};
	for (int i = 0; i < out->n; i++) {
		int fd = atoi(out->v[i]);
		if (fd < n)
			seen[fd] = true;
		else
			extra++;
	}
	for (int i = 0; i < n; i++)
		assert_true(seen[i]);
	if (extra > 1) {
		for (int i = 0; i < out->n; i++)
			print_message("child fd %s\n", out->v[i]);
		fail_msg("%d descriptors of the parent leaked", extra - 1);
	}
}

static void test_no_fd_leak(void **state)
{
	(void)state;
	/* A descriptor without close-on-exec, and another child alive with
	 * its pipes open in this process. */
	int plain = open("/dev/null", O_RDONLY);
	assert_true(plain >= 0);
	struct tr__proc_launched other, c;
	const char *sleeper[] = {"/bin/sleep", "30", NULL};
	assert_rc(launch(&other, RQ(), sleeper), TR_OK);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);

	const char *ls[] = {"/bin/ls", "/proc/self/fd", NULL};
	struct lines out = {0}, err = {0};
	assert_rc(launch(&c, RQ(.ctl_fd = p[0]), ls), TR_OK);
	assert_true(collect(&c, &out, &err));
	assert_int_equal(err.n, 0);
	check_fds_seen(&out, 4);
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);

	memset(&out, 0, sizeof(out));
	assert_rc(launch(&c, RQ(), ls), TR_OK);
	assert_true(collect(&c, &out, &err));
	check_fds_seen(&out, 3);
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);

	/* Signals: none ignored, none blocked, although this thread blocks
	 * SIGUSR1 and the process ignores SIGPIPE. */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	struct sigaction ign = {.sa_handler = SIG_IGN}, prev;
	sigaction(SIGPIPE, &ign, &prev);
	const char *grep[] = {
	    "/bin/grep", "-E", "^Sig(Ign|Blk):", "/proc/self/status", NULL};
	memset(&out, 0, sizeof(out));
	int rc = launch(&c, RQ(), grep);
	sigaction(SIGPIPE, &prev, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	assert_rc(rc, TR_OK);
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 2);
	for (int i = 0; i < 2; i++)
		assert_non_null(strstr(out.v[i], ":\t0000000000000000"));
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);

	close(p[0]);
	close(p[1]);
	close(plain);
	kill(other.pid, SIGKILL);
	assert_true(wait_exit(&other, WAIT_MS) != -1);
	launched_close(&other);
}

/* With the parent's 0, 1 and 2 closed, the descriptors the launch makes
 * land on 0..3 (where the child's go); the child still gets /dev/null,
 * its pipes and ctl_fd in their places, and an exec failure still comes
 * back as one. */
static void test_low_fds_closed(void **state)
{
	(void)state;
	int ctl[2];
	assert_int_equal(pipe2(ctl, O_CLOEXEC), 0);
	int saved[3];
	for (int i = 0; i < 3; i++)
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 10);
	for (int i = 0; i < 3; i++)
		close(i);
	struct tr__proc_launched c, bad;
	const char *argv[] = {
	    "/bin/sh", "-c", "cat; echo out; echo err >&2; cat <&3", NULL};
	int rc = launch(&c, RQ(.ctl_fd = ctl[0]), argv);
	const char *nope[] = {"/nonexistent/prog", NULL};
	int rc_bad = launch(&bad, RQ(), nope);
	/* The launch's own descriptors may be on 0..2 now: up with them
	 * before this process gets its own back. */
	int *mine[] = {&c.pidfd, &c.out_fd, &c.err_fd};
	for (int i = 0; i < 3 && rc == TR_OK; i++)
		if (*mine[i] >= 0 && *mine[i] < 3) {
			int up = fcntl(*mine[i], F_DUPFD_CLOEXEC, 10);
			close(*mine[i]);
			*mine[i] = up;
		}
	for (int i = 0; i < 3; i++) {
		dup2(saved[i], i);
		close(saved[i]);
	}
	close(ctl[0]);
	assert_rc(rc, TR_OK);
	assert_rc(rc_bad, TR_ENOENT);
	assert_int_equal(write(ctl[1], "ctl\n", 4), 4);
	close(ctl[1]);
	struct lines out = {0}, err = {0};
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 2);
	assert_string_equal(out.v[0], "out");
	assert_string_equal(out.v[1], "ctl");
	assert_int_equal(err.n, 1);
	assert_string_equal(err.v[0], "err");
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);
}

static void test_env_cwd_path(void **state)
{
	(void)state;
	const char *add[] = {
	    "FOO=bar", "HOME=/nowhere", "TWICE=1", "TWICE=2", NULL};
	const char *argv[] = {"sh", "-c",
	    "echo $FOO; echo $HOME; echo $TWICE; echo \"$PATH\"; pwd", NULL};
	struct tr__proc_launched c;
	assert_rc(launch(&c, RQ(.env_add = add, .cwd = "/tmp"), argv), TR_OK);
	struct lines out = {0}, err = {0};
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 5);
	assert_string_equal(out.v[0], "bar");
	assert_string_equal(out.v[1], "/nowhere");
	assert_string_equal(out.v[2], "2");
	const char *path = getenv("PATH");
	assert_string_equal(out.v[3], path != NULL ? path : "");
	assert_string_equal(out.v[4], "/tmp");
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);
}

static void test_exec_failures(void **state)
{
	(void)state;
	assert_true(no_children());
	int before = tt_count_fds();
	struct tr__proc_launched c;
	/* By path: the exec in the child fails, the status pipe says so. */
	const char *nope[] = {"/nonexistent/prog", NULL};
	assert_rc(launch(&c, RQ(), nope), TR_ENOENT);
	assert_int_equal(c.os_errno, ENOENT);
	assert_int_equal(c.pid, -1);
	assert_int_equal(c.out_fd, -1);
	/* By name: not found in PATH. */
	const char *byname[] = {"no-such-program-here", NULL};
	assert_rc(launch(&c, RQ(), byname), TR_ENOENT);
	/* A file that is not executable, a directory. */
	const char *notx[] = {"/etc/passwd", NULL};
	assert_rc(launch(&c, RQ(), notx), TR_EINVAL);
	assert_int_equal(c.os_errno, EACCES);
	const char *dir[] = {"/tmp", NULL};
	assert_rc(launch(&c, RQ(), dir), TR_EINVAL);
	/* A working directory that does not exist. */
	const char *sh[] = {"/bin/sh", "-c", "exit 0", NULL};
	assert_rc(launch(&c, RQ(.cwd = "/nonexistent/dir"), sh), TR_ENOENT);
	/* Bad requests. */
	assert_rc(tr__proc_launch(NULL, NULL), TR_EINVAL);
	assert_rc(tr__proc_launch(&c, NULL), TR_EINVAL);
	struct tr__proc_launch empty = RQ(.path = "");
	assert_rc(tr__proc_launch(&c, &empty), TR_EINVAL);
	assert_true(no_children());
	assert_int_equal(tt_count_fds(), before);
}

static void test_rlimits(void **state)
{
	(void)state;
	struct tr__proc_launched c;
	const char *spin[] = {"/bin/sh", "-c", "while :; do :; done", NULL};
	assert_rc(launch(&c, RQ(.cpu_limit_s = 1), spin), TR_OK);
	int ws = wait_exit(&c, 5000);
	assert_true(ws != -1);
	assert_true(WIFSIGNALED(ws));
	assert_true(WTERMSIG(ws) == SIGXCPU || WTERMSIG(ws) == SIGKILL);
	launched_close(&c);

	const char *ul[] = {"/bin/sh", "-c", "ulimit -n", NULL};
	assert_rc(launch(&c, RQ(.nofile_limit = 16), ul), TR_OK);
	struct lines out = {0}, err = {0};
	assert_true(collect(&c, &out, &err));
	assert_int_equal(out.n, 1);
	assert_string_equal(out.v[0], "16");
	assert_true(wait_exit(&c, WAIT_MS) == 0);
	launched_close(&c);
}

/* A helper process (a fork of this one) launches `sleep 30` and reports
 * its pid; the helper SIGKILLed, the sleep dies with it. */
static void test_dies_with_parent(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t helper = fork();
	assert_true(helper >= 0);
	if (helper == 0) {
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		struct tr__proc_launch rq = RQ(.path = "/bin/sleep");
		const char *argv[] = {"/bin/sleep", "30", NULL};
		rq.argv = argv;
		struct tr__proc_launched c;
		pid_t pid = tr__proc_launch(&c, &rq) == TR_OK ? c.pid : -1;
		ssize_t n = write(p[1], &pid, sizeof(pid));
		(void)n;
		for (;;)
			pause();
	}
	kid_add(helper);
	close(p[1]);
	pid_t sleeper = -1;
	assert_int_equal(
	    read(p[0], &sleeper, sizeof(sleeper)), (ssize_t)sizeof(sleeper));
	close(p[0]);
	assert_true(sleeper > 0);
	assert_false(proc_dead(sleeper));
	assert_int_equal(kill(helper, SIGKILL), 0);
	assert_int_equal(waitpid(helper, NULL, 0), helper);
	kid_done(helper);
	/* The orphan comes back to this subreaper (as a zombie once dead). */
	bool dead = TT_WAIT_FOR(proc_dead(sleeper), 2000);
	if (!dead) {
		/* Ours now (this process is its subreaper): reap it, so that
		 * the next tests start with no child. */
		(void)kill(sleeper, SIGKILL);
		(void)waitpid(sleeper, NULL, 0);
	}
	assert_true(dead);
}

#define THREADS 4
#define PER_THREAD 25

static void *launcher(void *arg)
{
	_Atomic int *ok = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		const char *argv[] = {"/bin/echo", "hi", NULL};
		struct tr__proc_launch rq = RQ(.path = argv[0], .argv = argv);
		struct tr__proc_launched c;
		if (tr__proc_launch(&c, &rq) != TR_OK) {
			TT_ACHECK(false);
			continue;
		}
		/* EOF must come: no other child holds this one's pipe. */
		char buf[64];
		size_t got = 0;
		int64_t dl = tt_now_ms() + WAIT_MS;
		for (;;) {
			struct pollfd pf = {.fd = c.out_fd, .events = POLLIN};
			(void)poll(&pf, 1, 100);
			ssize_t n =
			    read(c.out_fd, buf + got, sizeof(buf) - 1 - got);
			if (n == 0 || tt_now_ms() > dl)
				break;
			if (n > 0)
				got += (size_t)n;
		}
		int ws = -1;
		pid_t r;
		do
			r = waitpid(c.pid, &ws, 0);
		while (r < 0 && errno == EINTR);
		TT_ACHECK(r == c.pid);
		bool good = got == 3 && memcmp(buf, "hi\n", 3) == 0 &&
		            WIFEXITED(ws) && WEXITSTATUS(ws) == 0;
		TT_ACHECK(good);
		if (good)
			atomic_fetch_add(ok, 1);
		launched_close(&c);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	int before = tt_count_fds();
	_Atomic int ok = 0;
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, launcher, &ok), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	tt_assert_actors_ok();
	assert_int_equal(atomic_load(&ok), THREADS * PER_THREAD);
	assert_true(no_children());
	assert_int_equal(tt_count_fds(), before);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#define LAUNCHES 200

static void test_many_launches(void **state)
{
	(void)state;
	int before = tt_count_fds();
	static int64_t ns[LAUNCHES];
	const char *argv[] = {"/bin/true", NULL};
	for (int i = 0; i < LAUNCHES; i++) {
		struct tr__proc_launched c;
		int64_t t0 = now_ns();
		assert_rc(launch(&c, RQ(), argv), TR_OK);
		ns[i] = now_ns() - t0;
		int ws = wait_exit(&c, WAIT_MS);
		assert_true(ws != -1 && WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
		launched_close(&c);
	}
	qsort(ns, LAUNCHES, sizeof(ns[0]), cmp_i64);
	print_message("launch of /bin/true: median %.1f us, p90 %.1f us "
	              "(until exec, %d launches)\n",
	    (double)ns[LAUNCHES / 2] / 1e3, (double)ns[LAUNCHES * 9 / 10] / 1e3,
	    LAUNCHES);
	assert_true(no_children());
	assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
	/* Orphaned grandchildren come back here to be reaped. */
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_out_err_status, teardown),
	    cmocka_unit_test_teardown(test_killed_by_signal, teardown),
	    cmocka_unit_test_teardown(test_process_group, teardown),
	    cmocka_unit_test_teardown(test_ctl_fd, teardown),
	    cmocka_unit_test_teardown(test_no_fd_leak, teardown),
	    cmocka_unit_test_teardown(test_low_fds_closed, teardown),
	    cmocka_unit_test_teardown(test_env_cwd_path, teardown),
	    cmocka_unit_test_teardown(test_exec_failures, teardown),
	    cmocka_unit_test_teardown(test_rlimits, teardown),
	    cmocka_unit_test_teardown(test_dies_with_parent, teardown),
	    cmocka_unit_test_teardown(test_threads, teardown),
	    cmocka_unit_test_teardown(test_many_launches, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
