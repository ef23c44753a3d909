/*
 * Launching an OS process child (issue 11's process children): one call
 * that forks and execs a program in its own process group, with its
 * stdout and stderr on pipes, an optional control descriptor as fd 3,
 * limits, a working directory and added environment, and that reports a
 * failed exec as an error code rather than as a child that exits 127.
 *
 * Reaping is the caller's: tr__proc_launch never waits for a child that
 * started (only for one whose exec failed), and keeps no state of its own.
 */
#ifndef TR_PROC_SPAWN_H
#define TR_PROC_SPAWN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "troupe/troupe.h"

/* What to run. Every pointer is borrowed for the call only. */
struct tr__proc_launch {
	const char *path;           /* the executable: used as it is if it has
	                             * a '/', else searched in the PATH of the
	                             * child's environment (env_add's PATH if
	                             * it sets one, else the parent's; unset:
	                             * "/usr/local/bin:/usr/bin:/bin") */
	const char *const *argv;    /* NULL-terminated; NULL: {path, NULL} */
	const char *const *env_add; /* NULL, or NULL-terminated "K=V" strings
	                             * added to the parent's environ; one whose
	                             * K the parent has replaces the parent's */
	const char *cwd;            /* NULL: the parent's */
	uint64_t cpu_limit_s;       /* 0: none; else RLIMIT_CPU soft = this,
	                             * hard = this + 1 (SIGXCPU at the soft
	                             * limit, SIGKILL at the hard one) */
	uint64_t nofile_limit;      /* 0: inherit; else RLIMIT_NOFILE soft and
	                             * hard (raising the hard limit needs
	                             * CAP_SYS_RESOURCE) */
	int ctl_fd;                 /* -1, or a descriptor of the parent that
	                             * becomes fd 3 in the child; the parent's
	                             * stays open (the caller closes it) */
	bool self_pdeathsig;        /* the program sets PR_SET_PDEATHSIG
	                             * itself, first thing (a process child:
	                             * tr_proc_child_main): launched with
	                             * posix_spawn (no copy of the parent's
	                             * page tables: ~0.1 ms where fork takes
	                             * milliseconds in a large parent), the
	                             * limits applied with prlimit before the
	                             * call returns */
};

/* A started child. Every descriptor is the caller's to close. */
struct tr__proc_launched {
	pid_t pid;    /* also its process group: kill(-pid, sig) reaches
	               * its descendants that stayed in the group */
	int pidfd;    /* pidfd_open(pid) (close-on-exec, as every pidfd), or
	               * -1 where the kernel refuses it (ENOSYS, EPERM,
	               * EINVAL): the caller then polls waitpid */
	int out_fd;   /* read end of the child's stdout pipe,
	               * O_NONBLOCK | O_CLOEXEC */
	int err_fd;   /* read end of the child's stderr pipe,
	               * O_NONBLOCK | O_CLOEXEC */
	int os_errno; /* on failure, the errno behind the code (0 if none),
	               * for the log; 0 on success */
};

/*
 * Starts rq->path as a child process and fills *out.
 *
 * The child: is the leader of a new process group; is SIGKILLed when the
 * thread that launched it exits (PR_SET_PDEATHSIG follows the parent
 * *thread*, not the process: launch from a thread that lives as long as
 * the children should, e.g. a reaper thread, never from a short-lived
 * pool thread), and exits at once if the parent died before it could ask
 * for that; starts with every signal at its default disposition and none
 * blocked; has stdin on /dev/null, stdout and stderr on the pipes,
 * rq->ctl_fd as fd 3, and no other descriptor of the parent (fds from 4
 * up, and 3 without ctl_fd, are closed before exec whether or not they
 * are close-on-exec).
 *
 * Everything that allocates is done before fork; between fork and exec
 * the child makes only async-signal-safe calls, so launching from a
 * multithreaded process is safe. Every descriptor the parent makes is
 * close-on-exec from birth, so a child launched at the same time by
 * another thread never holds this child's pipes. Signals are blocked in
 * the calling thread across fork, so no handler of the parent runs in
 * the child.
 *
 * Returns TR_OK once the exec has happened (a failed setpgid, dup2,
 * setrlimit, chdir or execve in the child is sent back on a close-on-exec
 * status pipe), or once the child died before it could say (a signal
 * from outside, e.g. kill(-pid) by another thread): either way the caller
 * reaps it and its wait status tells how it ended. On failure *out has pid -1,
 * every fd -1 and os_errno set; a child that was forked has been reaped, and
 * every descriptor made by the call is closed. Errors: TR_EINVAL  rq or out
 * NULL, path NULL or empty, ctl_fd not open; or the exec refused the program:
 * EACCES (not executable or a directory on the way not searchable), ENOEXEC
 * (not a format the kernel runs, e.g. a script without "#!"), EPERM (a mount or
 * security policy forbids it), E2BIG, ENAMETOOLONG, ELOOP, EISDIR; or EPERM
 * from setrlimit (a limit above the hard one without CAP_SYS_RESOURCE)
 *   TR_ENOENT  no such program (ENOENT, ENOTDIR, not found in PATH), or
 *              no such cwd
 *   TR_ENOMEM  out of memory (malloc, fork's or exec's ENOMEM)
 *   TR_EAGAIN  out of processes or descriptors (EAGAIN, EMFILE, ENFILE),
 *              or ETXTBSY
 *
 * Thread-safe, no global state: several threads may launch at once. It
 * reads the parent's environ: a thread that calls setenv meanwhile races
 * with it, as with every exec of the C library.
 */
int tr__proc_launch(
    struct tr__proc_launched *out, const struct tr__proc_launch *rq);

#endif
