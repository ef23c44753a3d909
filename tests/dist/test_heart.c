/*
 * The heart (troupe/heart.h) with real processes: this program, run with
 * TT_HEART_NODE set, is the watched program: it starts a heart (timeout
 * 1500 ms, beats every 100 ms, so that a loaded machine does not look
 * hung), says "UP <restarts> <pid>" and obeys lines on stdin: "hang"
 * blocks its only scheduler in C code, "exit" stops the heart and exits.
 *
 * - a program whose scheduler hangs is killed and started again, with
 *   tr_heart_restarts one more;
 * - one killed by SIGKILL from outside is started again;
 * - one that stops its heart and exits stays gone, and so does its
 *   watcher.
 * Everything runs in a process group of its own, killed at the end; the
 * test is a child subreaper, so that it reaps them all.
 */
#define _GNU_SOURCE
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_state.h"
#include "troupe/heart.h"

#define WAIT_MS 20000

/* ---- the watched program ----------------------------------------------------
 */

static int hang_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	for (volatile unsigned long i = 0;; i++) {
	}
	return 0;
}

static const tr_behaviour hang_b = {"hang", NULL, hang_handle, NULL};

static int node_main(void)
{
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 1;
	tr_runtime *rt;
	if (tr_runtime_start(&rt, &ro) != TR_OK)
		return 1;
	tr_heart_opts ho;
	tr_heart_opts_init(&ho);
	ho.timeout_ms = 1500;
	ho.beat_ms = 100;
	int rc = tr_heart_start(rt, &ho);
	if (rc != TR_OK) {
		printf("ERR %d\n", rc);
		return 1;
	}
	if (tr_heart_start(rt, &ho) != TR_EEXIST)
		printf("ERR second start\n");
	printf("UP %u %d\n", tr_heart_restarts(), (int)getpid());
	fflush(stdout);
	tr_pid h;
	if (tr_spawn(&h, rt, &hang_b, NULL, NULL) != TR_OK)
		return 1;
	tr_port *port;
	if (tr_port_open(&port, rt) != TR_OK)
		return 1;
	char line[64];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		if (strncmp(line, "hang", 4) == 0)
			(void)tr_port_send(port, h, 1, NULL, 0);
		if (strncmp(line, "exit", 4) == 0) {
			tr_heart_stop();
			printf("BYE %d\n", (int)getpid());
			fflush(stdout);
			_exit(0);
		}
	}
	tr_heart_stop();
	return 0;
}

/* ---- the test
 * ----------------------------------------------------------------- */

struct prog {
	pid_t pgid;
	FILE *out;
	int in;
};

static bool read_line(struct prog *p, char *buf, size_t cap)
{
	int64_t end = tt_now_ms() + WAIT_MS;
	while (tt_now_ms() < end) {
		if (fgets(buf, (int)cap, p->out) != NULL)
			return true;
		if (feof(p->out))
			return false;
		clearerr(p->out);
		usleep(10000);
	}
	return false;
}

static void expect_up(struct prog *p, unsigned restarts, int *pid)
{
	char line[128];
	unsigned r = 0;
	if (!read_line(p, line, sizeof(line)) ||
	    sscanf(line, "UP %u %d", &r, pid) != 2)
		fail_msg("no UP line (got \"%s\")", line);
	assert_int_equal(r, restarts);
}


static void say(struct prog *p, const char *what)
{
	assert_int_equal(
	    write(p->in, what, strlen(what)), (ssize_t)strlen(what));
}

static void test_heart(void **state)
{
	(void)state;
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		setenv("TT_HEART_NODE", "1", 1);
		unsetenv("TROUPE_HEART_RESTARTS");
		execl(
		    "/proc/self/exe", "test_heart", "--watched", (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(in[0]);
	close(out[1]);
	struct prog p = {pid, fdopen(out[0], "r"), in[1]};
	assert_non_null(p.out);
	(void)fcntl(out[0], F_SETFL, O_NONBLOCK);

	int p0, p1, p2;
	expect_up(&p, 0, &p0);
	assert_int_equal(p0, pid);
	/* Its only scheduler stuck: no beats, killed, started again. */
	say(&p, "hang\n");
	expect_up(&p, 1, &p1);
	assert_int_not_equal(p1, p0);
	assert_true(TT_WAIT_FOR(tt_proc_dead(p0), WAIT_MS));
	/* Killed from outside: started again. */
	assert_int_equal(kill(p1, SIGKILL), 0);
	expect_up(&p, 2, &p2);
	assert_int_not_equal(p2, p1);
	/* A clean exit: nothing comes back. */
	say(&p, "exit\n");
	char line[128];
	assert_true(read_line(&p, line, sizeof(line)));
	assert_true(strncmp(line, "BYE", 3) == 0);
	assert_true(TT_WAIT_FOR(tt_proc_dead(p2), WAIT_MS));
	/* Every process of the group gone (the watchers too): EOF on the
	 * stdout they all shared. */
	int64_t end = tt_now_ms() + WAIT_MS;
	bool eof = false;
	while (!eof && tt_now_ms() < end) {
		if (fgets(line, sizeof(line), p.out) == NULL) {
			eof = feof(p.out);
			clearerr(p.out);
			usleep(10000);
		} else {
			fail_msg("unexpected line \"%s\"", line);
		}
	}
	(void)kill(-pid, SIGKILL);
	/* This test is a subreaper: the watchers and the programs they
	 * became were its descendants, and are reaped here. */
	while (waitpid(-1, NULL, WNOHANG) > 0) {
	}
	fclose(p.out);
	close(p.in);
	assert_true(eof);
}

int main(void)
{
	if (getenv("TT_HEART_NODE") != NULL)
		return node_main();
	signal(SIGPIPE, SIG_IGN);
	(void)prctl(PR_SET_CHILD_SUBREAPER, 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_heart),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
