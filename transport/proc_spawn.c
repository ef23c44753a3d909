/*
 * Launching an OS process child (proc_spawn.h).
 *
 * The parent prepares everything (the path, the environment, the pipes,
 * the default signal action) before fork; the child then only moves
 * descriptors and makes system calls before execve. Between fork and exec
 * the child is a copy of a possibly multithreaded process whose other
 * threads are gone, holding whatever locks they held: it must not call
 * malloc, stdio or anything else that may take a lock.
 */
#define _GNU_SOURCE
#include "proc_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* What the child needs, all of it made before fork. */
struct child_args {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *cwd;
	pid_t parent;
	int fds[4];   /* 0: /dev/null, 1: stdout's write end, 2: stderr's
	               * write end, 3: ctl_fd or -1 */
	int nfds;     /* 3, or 4 with a ctl_fd */
	int status_w; /* the status pipe's write end (close-on-exec) */
	bool cpu;
	struct rlimit cpu_lim;
	bool nofile;
	struct rlimit nofile_lim;
	long maxfd; /* for closing one by one where close_range is missing */
	struct sigaction dfl;
	sigset_t none;
};

/* ---- the child, from fork to exec: async-signal-safe calls only ------- */

/* Sends errno to the parent and exits. */
__attribute__((noreturn)) static void child_fail(int status_w)
{
	int e = errno;
	/* A 4-byte write to a pipe is atomic; if the parent is gone there is
	 * nobody to tell. */
	ssize_t n = write(status_w, &e, sizeof(e));
	(void)n;
	_exit(127);
}

/* Closes every descriptor in [lo, hi]. */
static void close_span(unsigned lo, unsigned hi, long maxfd)
{
	if (lo > hi)
		return;
	if (syscall(SYS_close_range, lo, hi, 0) == 0)
		return;
	/* Kernels before 5.9 have no close_range (ENOSYS). */
	for (long fd = lo; fd <= (long)hi && fd < maxfd; fd++)
		(void)close((int)fd);
}

__attribute__((noreturn)) static void child(const struct child_args *a)
{
	int st = a->status_w;
	/* The status pipe first, out of 0..3 where the dup2s below go. */
	if (st < 4) {
		st = fcntl(st, F_DUPFD_CLOEXEC, 4);
		/* Told on the pipe where it is: an exit without a word
		 * would read as an exec. */
		if (st < 0)
			child_fail(a->status_w);
	}
	if (setpgid(0, 0) != 0)
		child_fail(st);
	/* Dies with the parent thread. The parent may have died before the
	 * prctl: then it is already orphaned and no signal will come. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		child_fail(st);
	if (getppid() != a->parent)
		_exit(127);

	/* Every signal back to its default (fork keeps handlers and the
	 * ignored ones, exec keeps the ignored ones), then none blocked (the
	 * parent blocked all across fork). Signals the C library reserves
	 * refuse with EINVAL, which is fine. */
	for (int s = 1; s < NSIG; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		(void)sigaction(s, &a->dfl, NULL);
	}
	if (sigprocmask(SIG_SETMASK, &a->none, NULL) != 0)
		child_fail(st);

	/* Every source out of 0..3 first, so that no dup2 below overwrites a
	 * source not yet moved (ctl_fd may be 1, say). The copies are
	 * close-on-exec; dup2 clears that flag on the targets. */
	int src[4];
	for (int i = 0; i < a->nfds; i++) {
		src[i] = a->fds[i];
		if (src[i] < 4) {
			src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 4);
			if (src[i] < 0)
				child_fail(st);
		}
	}
	for (int i = 0; i < a->nfds; i++)
		if (dup2(src[i], i) != i)
			child_fail(st);
	/* Everything else goes, close-on-exec or not, but the status pipe
	 * (which exec closes). */
	close_span((unsigned)a->nfds, (unsigned)st - 1, a->maxfd);
	close_span((unsigned)st + 1, ~0u, a->maxfd);

	if (a->cpu && setrlimit(RLIMIT_CPU, &a->cpu_lim) != 0)
		child_fail(st);
	if (a->nofile && setrlimit(RLIMIT_NOFILE, &a->nofile_lim) != 0)
		child_fail(st);
	if (a->cwd != NULL && chdir(a->cwd) != 0)
		child_fail(st);
	execve(a->path, a->argv, a->envp);
	child_fail(st);
}

/* ---- posix_spawn, for programs that set their own death signal ------- */

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_FAST_SPAWN 1
/* glibc's posix_spawn runs the child on the parent's memory until exec
 * (CLONE_VM | CLONE_VFORK) and reports a failed exec as its return value.
 * Its file actions run in order, so every source is first copied out of
 * 0..3; closefrom (2.34) closes the rest. Returns 0 or an errno. */
static int spawn_fast(pid_t *pidp, const struct child_args *a)
{
	int src[4], tmp[4] = {-1, -1, -1, -1};
	for (int i = 0; i < a->nfds; i++) {
		src[i] = a->fds[i];
		if (src[i] < 4) {
			tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 4);
			if (tmp[i] < 0) {
				int e = errno;
				for (int j = 0; j < i; j++)
					if (tmp[j] >= 0)
						close(tmp[j]);
				return e;
			}
			src[i] = tmp[i];
		}
	}
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	int e = posix_spawn_file_actions_init(&fa);
	if (e != 0)
		goto out_tmp;
	e = posix_spawnattr_init(&at);
	if (e != 0) {
		posix_spawn_file_actions_destroy(&fa);
		goto out_tmp;
	}
	sigset_t all;
	sigfillset(&all);
	for (int i = 0; i < a->nfds && e == 0; i++)
		e = posix_spawn_file_actions_adddup2(&fa, src[i], i);
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, a->nfds);
	if (e == 0 && a->cwd != NULL)
		e = posix_spawn_file_actions_addchdir_np(&fa, a->cwd);
	if (e == 0)
		e = posix_spawnattr_setflags(&at,
		    POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
		        POSIX_SPAWN_SETSIGDEF);
	if (e == 0)
		e = posix_spawnattr_setpgroup(&at, 0);
	if (e == 0)
		e = posix_spawnattr_setsigmask(&at, &a->none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(&at, &all);
	if (e == 0)
		e = posix_spawn(pidp, a->path, &fa, &at, a->argv, a->envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
out_tmp:
	for (int i = 0; i < a->nfds; i++)
		if (tmp[i] >= 0)
			close(tmp[i]);
	return e;
}
#endif

/* ---- the parent ------------------------------------------------------- */

/* The errno of a failed launch as a troupe code (proc_spawn.h lists which
 * goes where). */
static int map_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return TR_ENOENT;
	case ENOMEM:
		return TR_ENOMEM;
	case EAGAIN:
	case EMFILE:
	case ENFILE:
	case ETXTBSY:
		return TR_EAGAIN;
	default:
		/* EACCES, ENOEXEC, EPERM, E2BIG, ENAMETOOLONG, ELOOP, EISDIR,
		 * EBADF, EINVAL: the request cannot run as given. */
		return TR_EINVAL;
	}
}

/* Length of the key of "K=V" (the whole string without '='). */
static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq != NULL ? (size_t)(eq - kv) : strlen(kv);
}

static bool same_key(const char *a, const char *b)
{
	size_t n = key_len(a);
	return n == key_len(b) && memcmp(a, b, n) == 0;
}

/* The child's environment: the parent's, less the keys env_add sets, then
 * env_add (a key it sets twice: the later one). The array is malloc'd;
 * its strings are borrowed. NULL when out of memory. */
static char **make_env(const char *const *add)
{
	size_t nenv = 0, nadd = 0;
	while (environ != NULL && environ[nenv] != NULL)
		nenv++;
	while (add != NULL && add[nadd] != NULL)
		nadd++;
	char **envp = malloc((nenv + nadd + 1) * sizeof(*envp));
	if (envp == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < nenv; i++) {
		bool replaced = false;
		for (size_t j = 0; j < nadd && !replaced; j++)
			replaced = same_key(environ[i], add[j]);
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; j < nadd; j++) {
		bool later = false;
		for (size_t m = j + 1; m < nadd && !later; m++)
			later = same_key(add[j], add[m]);
		if (!later)
			envp[k++] = (char *)add[j];
	}
	envp[k] = NULL;
	return envp;
}

/* rq->path as execve takes it, malloc'd into *outp: as it is with a '/',
 * else the first regular executable file of that name in the PATH of
 * envp. Returns 0 or an errno (ENOENT: nowhere; EACCES: found only
 * without execute permission; ENOMEM). */
static int resolve(char **outp, const char *path, char *const *envp)
{
	if (strchr(path, '/') != NULL) {
		*outp = strdup(path);
		return *outp != NULL ? 0 : ENOMEM;
	}
	const char *dirs = NULL;
	for (size_t i = 0; envp[i] != NULL && dirs == NULL; i++)
		if (strncmp(envp[i], "PATH=", 5) == 0)
			dirs = envp[i] + 5;
	if (dirs == NULL)
		dirs = DEFAULT_PATH;
	size_t plen = strlen(path);
	int err = ENOENT;
	for (const char *d = dirs;; d++) {
		const char *end = strchrnul(d, ':');
		size_t dlen = (size_t)(end - d);
		/* An empty entry is the current directory, as for execvp. */
		char *cand = malloc(dlen + plen + 3);
		if (cand == NULL)
			return ENOMEM;
		if (dlen == 0)
			memcpy(cand, ".", 1), dlen = 1;
		else
			memcpy(cand, d, dlen);
		cand[dlen] = '/';
		memcpy(cand + dlen + 1, path, plen + 1);
		struct stat sb;
		if (stat(cand, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (access(cand, X_OK) == 0) {
				*outp = cand;
				return 0;
			}
			err = EACCES;
		}
		free(cand);
		if (*end == '\0')
			break;
		d = end;
	}
	return err;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		(void)close(*fd);
		*fd = -1;
	}
}

static void reap(pid_t pid)
{
	int ws;
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
}

/* Reads the child's status pipe: 0 when exec happened (EOF), else the
 * errno the child sent. */
static int read_status(int fd)
{
	int e = 0;
	size_t got = 0;
	while (got < sizeof(e)) {
		ssize_t n = read(fd, (char *)&e + got, sizeof(e) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno != 0 ? errno : EIO;
		if (n == 0)
			return got == 0 ? 0 : EIO;
		got += (size_t)n;
	}
	return e != 0 ? e : EIO;
}

static int make_pipe(int p[2], bool nonblock_read)
{
	if (pipe2(p, O_CLOEXEC) != 0)
		return errno;
	if (nonblock_read && fcntl(p[0], F_SETFL, O_NONBLOCK) != 0)
		return errno;
	return 0;
}

static int fail(struct tr__proc_launched *out, int e)
{
	out->os_errno = e;
	return map_errno(e);
}

int tr__proc_launch(
    struct tr__proc_launched *out, const struct tr__proc_launch *rq)
{
	if (out == NULL)
		return TR_EINVAL;
	*out = (struct tr__proc_launched){
	    .pid = -1, .pidfd = -1, .out_fd = -1, .err_fd = -1};
	if (rq == NULL || rq->path == NULL || rq->path[0] == '\0')
		return fail(out, EINVAL);
	int ctl = rq->ctl_fd >= 0 ? rq->ctl_fd : -1;
	if (ctl >= 0 && fcntl(ctl, F_GETFD) < 0)
		return fail(out, EBADF);

	char *dflt_argv[2] = {(char *)rq->path, NULL};
	struct child_args a = {
	    .argv = rq->argv != NULL ? (char *const *)rq->argv : dflt_argv,
	    .cwd = rq->cwd,
	    .parent = getpid(),
	    .nfds = ctl >= 0 ? 4 : 3,
	    .cpu = rq->cpu_limit_s != 0,
	    .nofile = rq->nofile_limit != 0,
	};
	if (a.cpu) {
		rlim_t s = (rlim_t)rq->cpu_limit_s;
		a.cpu_lim.rlim_cur = s;
		a.cpu_lim.rlim_max = s == RLIM_INFINITY ? s : s + 1;
	}
	if (a.nofile)
		a.nofile_lim.rlim_cur = a.nofile_lim.rlim_max =
		    (rlim_t)rq->nofile_limit;
	a.maxfd = sysconf(_SC_OPEN_MAX);
	if (a.maxfd < 0 || a.maxfd > INT_MAX)
		a.maxfd = 65536;
	a.dfl.sa_handler = SIG_DFL;
	sigemptyset(&a.dfl.sa_mask);
	sigemptyset(&a.none);

	int err = 0;
	char *path = NULL;
	char **envp = make_env(rq->env_add);
	if (envp == NULL)
		return fail(out, ENOMEM);
	err = resolve(&path, rq->path, envp);
	if (err != 0) {
		free(envp);
		return fail(out, err);
	}
	a.path = path;
	a.envp = envp;

	int devnull = -1, op[2] = {-1, -1}, ep[2] = {-1, -1};
	int sp[2] = {-1, -1}, pidfd = -1;
	pid_t pid = -1;
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0) {
		err = errno;
		goto out;
	}
	if ((err = make_pipe(op, true)) != 0 ||
	    (err = make_pipe(ep, true)) != 0 ||
	    (err = make_pipe(sp, false)) != 0)
		goto out;
	a.fds[0] = devnull;
	a.fds[1] = op[1];
	a.fds[2] = ep[1];
	a.fds[3] = ctl;
	a.status_w = sp[1];

#ifdef HAVE_FAST_SPAWN
	if (rq->self_pdeathsig) {
		err = spawn_fast(&pid, &a);
		close_fd(&devnull);
		close_fd(&op[1]);
		close_fd(&ep[1]);
		if (err == 0 && a.cpu && prlimit(pid, RLIMIT_CPU, &a.cpu_lim, NULL) != 0)
			err = errno;
		if (err == 0 && a.nofile &&
		    prlimit(pid, RLIMIT_NOFILE, &a.nofile_lim, NULL) != 0)
			err = errno;
		if (err != 0) {
			if (pid > 0) {
				(void)kill(pid, SIGKILL);
				reap(pid);
			}
			pid = -1;
			goto out;
		}
		goto started;
	}
#endif
	/* No handler of the parent may run in the child before it has put
	 * every signal back to its default: block them all across fork. */
	sigset_t all, old;
	sigfillset(&all);
	(void)pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child(&a);
	int fork_errno = errno;
	(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
	close_fd(&devnull);
	close_fd(&op[1]);
	close_fd(&ep[1]);
	close_fd(&sp[1]);
	if (pid < 0) {
		err = fork_errno;
		goto out;
	}

	/* The pidfd at once, before anybody could reap the pid. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 && errno != ENOSYS && errno != EPERM && errno != EINVAL) {
		err = errno;
		(void)kill(pid, SIGKILL);
		(void)kill(-pid, SIGKILL);
		reap(pid);
		pid = -1;
		goto out;
	}
	err = read_status(sp[0]);
	if (err != 0) {
		reap(pid);
		pid = -1;
		goto out;
	}
#ifdef HAVE_FAST_SPAWN
started:
	if (pidfd < 0 && rq->self_pdeathsig) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0 && errno != ENOSYS && errno != EPERM &&
		    errno != EINVAL) {
			err = errno;
			(void)kill(pid, SIGKILL);
			reap(pid);
			pid = -1;
			goto out;
		}
	}
#endif
	out->pid = pid;
	out->pidfd = pidfd;
	out->out_fd = op[0];
	out->err_fd = ep[0];
	pidfd = op[0] = ep[0] = -1;
out:
	close_fd(&devnull);
	close_fd(&op[0]);
	close_fd(&op[1]);
	close_fd(&ep[0]);
	close_fd(&ep[1]);
	close_fd(&sp[0]);
	close_fd(&sp[1]);
	close_fd(&pidfd);
	free(path);
	free(envp);
	return err != 0 ? fail(out, err) : TR_OK;
}
