/*
 * The server node process of troupe-bench's remote workloads, from this
 * process's side (bench_remote.h): its start, its connection, its stop;
 * and how any node process of this binary is started and waited for
 * (bench_spawn_node), which bench_global.c's nodes share.
 */
#include "bench_remote.h"
#include "bench_util.h"
#include "sample_clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The node's log, less the two lines every run writes (the peer coming up,
 * and going down when the benchmark ends): anything else is news. */
void bench_remote_log(void *user, const char *line)
{
	(void)user;
	/* The two nodes meeting and parting are every run's own doing. */
	if (strstr(line, " is up (incarnation ") == NULL &&
	    strstr(line, " is down: connection closed") == NULL &&
	    strstr(line, " is down: this node stops") == NULL)
		fprintf(stderr, "%s\n", line);
}

/* The client's side of the server process. */
static struct {
	tr_node *node;
	pid_t pid;   /* the server process, or 0 */
	int life;    /* write end of the server's stdin; closing it stops it */
	char *argv0; /* how to run ourselves where /proc is missing */
	unsigned schedulers; /* what -s asked for, passed on; 0: default */
} remote = {.life = -1};

/* Kills the server process on any exit, error paths included. */
static void kill_server(void)
{
	if (remote.pid > 0) {
		(void)kill(remote.pid, SIGKILL);
		(void)waitpid(remote.pid, NULL, 0);
		remote.pid = 0;
	}
}

static int64_t now_ms(void)
{
	return (int64_t)(now_s() * 1000.0);
}

/* A cookie nobody else on this machine can guess, so that no stray node
 * joins the benchmark. */
static void make_cookie(char *buf, size_t cap)
{
	unsigned char raw[16];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	size_t i;

	if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

		for (i = 0; i < sizeof raw; i++) {
			x = x * 6364136223846793005u + 1442695040888963407u;
			raw[i] = (unsigned char)(x >> 56);
		}
	}
	if (fd >= 0)
		close(fd);
	for (i = 0; i < sizeof raw && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
}

/* Reads a started node process's "READY <url>" line from `fd` into `url`
 * (`cap` bytes), waiting at most BENCH_SERVER_START_MS. Returns false if
 * it never comes. */
static bool read_ready(int fd, char *url, size_t cap)
{
	char line[512];
	size_t len = 0;
	int64_t deadline = now_ms() + BENCH_SERVER_START_MS;

	while (len < sizeof line - 1) {
		int64_t left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (left <= 0)
			return false;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		r = read(fd, line + len, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	if (strncmp(line, "READY ", 6) != 0 || len - 6 >= cap)
		return false;
	memcpy(url, line + 6, len - 6 + 1);
	return true;
}

/* bench_remote.h. */
bool bench_spawn_node(char *const argv[], const char *fallback, pid_t *pid,
    int *life, char *url, size_t cap)
{
	int in[2], out[2];
	pid_t p;
	bool ok;

	/* Close-on-exec, so that the node keeps only its stdin and stdout
	 * (dup2 clears the flag on those). */
	if (pipe(in) != 0 || pipe(out) != 0) {
		perror("troupe-bench: pipe");
		exit(1);
	}
	for (int i = 0; i < 2; i++) {
		(void)fcntl(in[i], F_SETFD, FD_CLOEXEC);
		(void)fcntl(out[i], F_SETFD, FD_CLOEXEC);
	}
	/* The runtime's threads may be running: between fork and exec the
	 * child only calls async-signal-safe functions. */
	p = fork();
	if (p < 0) {
		perror("troupe-bench: fork");
		exit(1);
	}
	if (p == 0) {
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(127);
#ifdef __linux__
		execv("/proc/self/exe", argv);
#endif
		if (fallback != NULL)
			execvp(fallback, argv);
		_exit(127);
	}
	*pid = p;
	*life = in[1];
	close(in[0]);
	close(out[1]);
	ok = read_ready(out[0], url, cap);
	close(out[0]);
	return ok;
}

/* Starts the server process and this process's node, and connects them. */
tr_node *bench_remote_start(tr_runtime *rt)
{
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	char cookie[33] = "", sched[16], url[300];
	char serve[] = "--serve";
	char *args[] = {remote.argv0, serve, sched, cookie, NULL};
	tr_node_opts no;
	int err;

	make_cookie(cookie, sizeof cookie);
	snprintf(sched, sizeof sched, "%u", remote.schedulers);
	atexit(kill_server);
	if (!bench_spawn_node(args, remote.argv0, &remote.pid, &remote.life,
	        url, sizeof url)) {
		fprintf(
		    stderr, "troupe-bench: the server node did not start\n");
		exit(1);
	}

	tr_runtime_set_log(rt, bench_remote_log, NULL);
	tr_node_opts_init(&no);
	no.name = BENCH_CLIENT_NAME;
	no.listen = listen;
	no.cookie = cookie;
	err = tr_node_start(&remote.node, rt, &no);
	if (err != TR_OK)
		bench_die("start node", err);
	err = tr_node_connect(remote.node, url, BENCH_SERVER_START_MS, NULL);
	if (err != TR_OK)
		bench_die("connect to the server node", err);
	return remote.node;
}

/* Stops this node, then the server: closing its stdin asks it to stop;
 * if it has not within BENCH_SERVER_STOP_MS, it is killed. */
void bench_remote_stop(void)
{
	int64_t deadline = now_ms() + BENCH_SERVER_STOP_MS;

	if (remote.node != NULL)
		tr_node_stop(remote.node);
	remote.node = NULL;
	if (remote.life >= 0)
		close(remote.life);
	remote.life = -1;
	while (remote.pid > 0 && now_ms() < deadline) {
		pid_t r = waitpid(remote.pid, NULL, WNOHANG);

		if (r == remote.pid || (r < 0 && errno != EINTR)) {
			remote.pid = 0;
			break;
		}
		usleep(10 * 1000);
	}
	kill_server();
}

void bench_remote_init(char *argv0, unsigned schedulers)
{
	remote.argv0 = argv0;
	remote.schedulers = schedulers;
}

pid_t bench_remote_pid(void)
{
	return remote.pid;
}
