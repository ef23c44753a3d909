/*
 * The heart (troupe/heart.h): a watcher forked from the program, and an
 * actor that writes one byte to it every beat_ms.
 *
 * The watcher is a fork of a multithreaded process that never execs until
 * it restarts the program: from fork on it makes system calls only, on
 * data prepared before the fork (the executable's path, its arguments and
 * its environment with the next TROUPE_HEART_RESTARTS). It waits on the
 * read end of a pipe whose write end only the program holds:
 *   - a beat ('b'): the program lives;
 *   - 'q' (tr_heart_stop): it ends on purpose; the watcher exits;
 *   - EOF: the program is gone without a 'q': it is started again;
 *   - nothing for timeout_ms: it is SIGKILLed, and once gone (its
 *     descriptors closed: EOF) started again.
 * A restart is an execve of the watcher itself, so the new program is the
 * watcher's process; it starts a heart of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "abi.h"
#include "troupe/heart.h"

extern char **environ;

#define RESTARTS_VAR "TROUPE_HEART_RESTARTS"
#define ARGS_MAX 256
#define CMDLINE_MAX 65536

enum { BEAT = 1, STOP = 2 };

static struct {
	pthread_mutex_t lock;
	bool on;
	tr_runtime *rt;
	tr_pid beater;
	uint32_t beat_ms;
} heart = {.lock = PTHREAD_MUTEX_INITIALIZER};

unsigned tr_heart_restarts(void)
{
	const char *v = getenv(RESTARTS_VAR);
	return v != NULL ? (unsigned)strtoul(v, NULL, 10) : 0;
}

/* ---- the beating actor -----------------------------------------------------
 */

/* The actor owns the program's end of the pipe (its argument): it beats
 * on it, and on STOP says 'q', closes it and ends. */
static int beat_init(tr_ctx *ctx, void *arg, void **state)
{
	*state = arg;
	tr_timer t;
	int rc = tr_send(ctx, tr_self(ctx), BEAT, NULL, 0);
	if (rc == TR_OK)
		rc = tr_send_after(ctx, &t, tr_self(ctx), heart.beat_ms,
		    heart.beat_ms, BEAT, NULL, 0);
	return rc == TR_OK ? TR_OK : 1;
}

static int beat_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	int fd = (int)(intptr_t)state;
	char b = m->type == STOP ? 'q' : 'b';
	if (m->type != BEAT && m->type != STOP)
		return 0;
	/* Non-blocking: a full pipe means the watcher has beats to read. */
	ssize_t k = write(fd, &b, 1);
	(void)k;
	if (m->type == STOP) {
		close(fd);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static const tr_behaviour beat_b = {
    "troupe.heart", beat_init, beat_handle, NULL};

/* ---- the watcher (after fork: system calls only) ----------------------------
 */

struct plan {
	char exe[4096];
	char *argv[ARGS_MAX + 1];
	char **envp;
	int rfd;
	pid_t program;
	int timeout_ms;
};

__attribute__((noreturn)) static void watcher(const struct plan *p)
{
	/* Nothing of the program's but its standard streams and our end. */
	if (p->rfd > 3)
		(void)syscall(SYS_close_range, 3u, (unsigned)p->rfd - 1, 0);
	(void)syscall(SYS_close_range, (unsigned)p->rfd + 1, ~0u, 0);
	bool killed = false;
	for (;;) {
		struct pollfd pf = {p->rfd, POLLIN, 0};
		int r = poll(&pf, 1, killed ? 100 : p->timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			/* Silent: kill it; EOF follows once it is gone. */
			(void)kill(p->program, SIGKILL);
			killed = true;
			continue;
		}
		char b[64];
		ssize_t k = read(p->rfd, b, sizeof(b));
		if (k < 0 && errno == EINTR)
			continue;
		if (k > 0) {
			for (ssize_t i = 0; i < k; i++)
				if (b[i] == 'q')
					_exit(0);
			continue;
		}
		/* EOF (or an error): the program is gone. */
		break;
	}
	close(p->rfd);
	execve(p->exe, p->argv, p->envp);
	_exit(127);
}

/* The program's arguments, from /proc/self/cmdline, into p->argv. */
static int read_cmdline(struct plan *p, char **buf)
{
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return TR_ENOTSUP;
	char *b = malloc(CMDLINE_MAX + 1);
	size_t n = 0;
	ssize_t k;
	while (b != NULL && n < CMDLINE_MAX &&
	       (k = read(fd, b + n, CMDLINE_MAX - n)) > 0)
		n += (size_t)k;
	close(fd);
	if (b == NULL)
		return TR_ENOMEM;
	b[n] = '\0';
	size_t a = 0;
	for (size_t i = 0; i < n && a < ARGS_MAX; i += strlen(b + i) + 1)
		p->argv[a++] = b + i;
	p->argv[a] = NULL;
	*buf = b;
	return a > 0 ? TR_OK : TR_ENOTSUP;
}

/* This environment, with RESTARTS_VAR one more. */
static char **next_env(char *restarts, size_t cap)
{
	size_t n = 0;
	while (environ[n] != NULL)
		n++;
	char **e = calloc(n + 2, sizeof(*e));
	if (e == NULL)
		return NULL;
	size_t k = 0;
	size_t vl = strlen(RESTARTS_VAR);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], RESTARTS_VAR, vl) != 0 ||
		    environ[i][vl] != '=')
			e[k++] = environ[i];
	snprintf(restarts, cap, "%s=%u", RESTARTS_VAR, tr_heart_restarts() + 1);
	e[k++] = restarts;
	e[k] = NULL;
	return e;
}

int tr_heart_start(tr_runtime *rt, const tr_heart_opts *uopts)
{
	tr_heart_opts o;
	tr_heart_opts_init(&o);
	if (rt == NULL || uopts == NULL ||
	    tr__struct_in(&o, sizeof(o), uopts, TR_HEART_OPTS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	uint32_t timeout = o.timeout_ms != 0 ? o.timeout_ms : 60000;
	uint32_t beat = o.beat_ms != 0 ? o.beat_ms : timeout / 4;
	if (beat == 0 || beat >= timeout)
		return TR_EINVAL;
	pthread_mutex_lock(&heart.lock);
	if (heart.on) {
		pthread_mutex_unlock(&heart.lock);
		return TR_EEXIST;
	}
	static struct plan p; /* read by the watcher, after the fork */
	static char restarts[64];
	char *args = NULL;
	int rc = read_cmdline(&p, &args);
	ssize_t el = readlink("/proc/self/exe", p.exe, sizeof(p.exe) - 1);
	if (rc == TR_OK && (el <= 0 || (size_t)el >= sizeof(p.exe) - 1))
		rc = TR_ENOTSUP;
	if (rc == TR_OK) {
		p.exe[el] = '\0';
		p.envp = next_env(restarts, sizeof(restarts));
		if (p.envp == NULL)
			rc = TR_ENOMEM;
	}
	int fds[2] = {-1, -1};
	if (rc == TR_OK && pipe2(fds, O_CLOEXEC) != 0)
		rc = TR_ENOMEM;
	pid_t w = -1;
	if (rc == TR_OK) {
		p.rfd = fds[0];
		p.program = getpid();
		p.timeout_ms = (int)timeout;
		sigset_t all, old;
		sigfillset(&all);
		(void)pthread_sigmask(SIG_SETMASK, &all, &old);
		w = fork();
		if (w == 0) {
			/* Signals at their defaults, unblocked: the program
			 * it becomes starts as this one did. */
			struct sigaction dfl;
			memset(&dfl, 0, sizeof(dfl));
			dfl.sa_handler = SIG_DFL;
			for (int s = 1; s < NSIG; s++)
				if (s != SIGKILL && s != SIGSTOP)
					(void)sigaction(s, &dfl, NULL);
			sigset_t none;
			sigemptyset(&none);
			(void)sigprocmask(SIG_SETMASK, &none, NULL);
			watcher(&p);
		}
		(void)pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (w < 0)
			rc = TR_ENOMEM;
	}
	close(fds[0]);
	if (rc == TR_OK) {
		(void)fcntl(fds[1], F_SETFL, O_NONBLOCK);
		heart.beat_ms = beat;
		heart.rt = rt;
		tr_spawn_opts so;
		tr_spawn_opts_init(&so);
		so.flags = TR_SPAWN_SYNC_INIT;
		rc = tr_spawn(
		    &heart.beater, rt, &beat_b, (void *)(intptr_t)fds[1], &so);
		if (rc != TR_OK) {
			char q = 'q';
			ssize_t k = write(fds[1], &q, 1);
			(void)k;
			close(fds[1]);
		}
	} else if (fds[1] >= 0) {
		close(fds[1]);
	}
	heart.on = rc == TR_OK;
	free(args);
	free(p.envp);
	p.envp = NULL;
	pthread_mutex_unlock(&heart.lock);
	return rc;
}

void tr_heart_stop(void)
{
	pthread_mutex_lock(&heart.lock);
	if (heart.on) {
		tr_port *port = NULL;
		if (tr_port_open(&port, heart.rt) == TR_OK) {
			(void)tr_port_send(port, heart.beater, STOP, NULL, 0);
			tr_port_close(port);
		}
		/* Its 'q' is out once it has ended (1 s at most: a runtime
		 * that no longer runs actors is past saving). */
		for (int i = 0; i < 1000 && tr_is_alive(heart.rt, heart.beater);
		     i++)
			usleep(1000);
		heart.on = false;
	}
	pthread_mutex_unlock(&heart.lock);
}
