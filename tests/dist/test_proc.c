/*
 * Process children (troupe/proc.h) with real OS processes: this program is
 * both the parent (the tests) and, re-executed, the child, whose root
 * actor runs the behaviour "victim" registered below.
 *
 * - a child that segfaults, aborts or exits 3 ends with TR_REASON_SIGNAL
 *   (SIGSEGV, SIGABRT) and TR_REASON_EXIT_STATUS(3); one SIGKILLed from
 *   outside with TR_REASON_SIGNAL(SIGKILL); one killed by an exit
 *   signal `kill` (hung in C code) ends killed; a root actor that exits
 *   with a reason of its own gives that reason; calls reach the root;
 * - a supervisor restarts a crashing process child as any child, and
 *   stops one that ignores its shutdown by killing it after the timeout;
 *   one_for_all and rest_for_one treat it as any child beside actors,
 *   and simple_one_for_one starts, restarts and stops dynamic ones;
 * - limits: over its memory limit TR_REASON_MEMORY_LIMIT, over its CPU
 *   time TR_REASON_CPU_LIMIT; its open files limit, working directory and
 *   environment are as the spec says, and no descriptor of the parent
 *   leaks into it;
 * - a failed init, an unknown behaviour, a missing program and bad specs
 *   fail the start with their codes; any program that calls
 *   tr_proc_child_main can be the child;
 * - a stopped (silent) child ends with noconnection, and is killed;
 * - its grandchildren die with it;
 * - its stdout and stderr reach the parent's log handler line by line;
 * - 1000 restarts leak no descriptor, zombie or memory;
 * - a parent SIGKILLed leaves no child behind, and a parent node that
 *   stops kills and reaps its children, hung ones included, at once;
 * - nothing is left running: every test ends with no process child.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_state.h"
#include "troupe/node.h"
#include "troupe/proc.h"
#include "troupe/sup.h"

#define WAIT_MS 20000

enum {
	V_SEGV = 1,
	V_ABORT,
	V_EXIT3,
	V_HANG,
	V_GROW,
	V_GRANDKIDS,
	V_ECHO,
	V_PRINT,
	V_QUIT42,
	V_INFO,
	V_SPIN,
	V_QUIT = 50, /* the quitter's own */
};

/* What a child tells of itself (V_INFO). */
struct info {
	int32_t os_pid;
	int32_t nofile;
	char cwd[128];
	char var[32];
	char fd_path[128]; /* what fd PROC_TEST_FD is in the child, or "" */
};

/* ---- the child's root actor ---------------------------------------------- */

static int victim_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	switch (m->type) {
	case V_SEGV: {
		/* An address in the unmapped first page, which neither the
		 * compiler nor UBSan's null check sees through. */
		volatile uintptr_t bad = 16;
		*(volatile int *)bad = 1;
		return 0;
	}
	case V_ABORT:
		abort();
	case V_EXIT3:
		exit(3);
	case V_HANG:
		for (;;)
			pause();
	case V_GROW:
		/* 1 MiB a millisecond, touched, until stopped. */
		for (;;) {
			char *p = malloc(1 << 20);
			if (p != NULL)
				memset(p, 1, 1 << 20);
			usleep(1000);
		}
	case V_GRANDKIDS:
		for (int i = 0; i < 2; i++) {
			pid_t k = fork();
			if (k == 0) {
				execl(
				    "/bin/sleep", "sleep", "30", (char *)NULL);
				_exit(127);
			}
			printf("grandchild %d\n", (int)k);
		}
		fflush(stdout);
		return 0;
	case V_ECHO:
		(void)tr_reply(ctx, m, V_ECHO, m->data, m->size);
		return 0;
	case V_PRINT:
		printf("hello from the child\npart one ");
		printf("and two\n");
		fprintf(stderr, "a warning\n");
		fflush(stdout);
		return 0;
	case V_QUIT42:
		return 42;
	case V_INFO: {
		struct info in;
		memset(&in, 0, sizeof(in));
		in.os_pid = (int32_t)getpid();
		struct rlimit rl;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
			in.nofile = (int32_t)rl.rlim_cur;
		if (getcwd(in.cwd, sizeof(in.cwd)) == NULL)
			in.cwd[0] = '\0';
		const char *v = getenv("PROC_TEST_VAR");
		snprintf(in.var, sizeof(in.var), "%s", v != NULL ? v : "");
		const char *fd = getenv("PROC_TEST_FD");
		if (fd != NULL) {
			char link[64];
			snprintf(link, sizeof(link), "/proc/self/fd/%s", fd);
			ssize_t k =
			    readlink(link, in.fd_path, sizeof(in.fd_path) - 1);
			in.fd_path[k > 0 ? k : 0] = '\0';
		}
		(void)tr_reply(ctx, m, V_INFO, &in, sizeof(in));
		return 0;
	}
	case V_SPIN:
		for (volatile unsigned long i = 0;; i++) {
		}
	default:
		return 0;
	}
}

static const tr_behaviour victim = {"victim", NULL, victim_handle, NULL};

/* Exits with status 1 right after its start. */
static int quitter_init(tr_ctx *ctx, void *arg, void **state)
{
	free(arg);
	*state = NULL;
	return tr_send(ctx, tr_self(ctx), V_QUIT, NULL, 0);
}

static int quitter_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	if (m->type == V_QUIT)
		_exit(1);
	return 0;
}

static const tr_behaviour quitter = {
    "quitter", quitter_init, quitter_handle, NULL};

/* Fails its init with the reason its argument holds. */
static int failer_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)state;
	tr_blob *b = arg;
	int r = 0;
	if (b->size == sizeof(r))
		memcpy(&r, b->data, sizeof(r));
	free(b);
	return r;
}

static const tr_behaviour failer = {"failer", failer_init, victim_handle, NULL};

/* ---- the parent's side ----------------------------------------------------
 */

struct env {
	tr_runtime *rt;
	tr_node *node;
	tr_port *port;
	char dir[64];
	pthread_mutex_t lock;
	char lines[16][256];
	int nlines;
	_Atomic unsigned restarts; /* supervisor "restarted" reports */
	_Atomic bool segv_report;  /* a report that names SIGSEGV */
};

static void on_log(void *user, const tr_log_event *ev)
{
	struct env *e = user;
	if (getenv("TT_VERBOSE") != NULL)
		fprintf(stderr, "log: %s\n", ev->text);
	if (ev->domain != NULL &&
	    strcmp(ev->domain, "supervisor_report") == 0 &&
	    strstr(ev->text, "event=restarted") != NULL)
		atomic_fetch_add(&e->restarts, 1);
	if (ev->domain != NULL &&
	    strcmp(ev->domain, "supervisor_report") == 0 &&
	    strstr(ev->text, "event=child_terminated") != NULL &&
	    strstr(ev->text, "(signal: killed by signal 11 (SIGSEGV))") != NULL)
		atomic_store(&e->segv_report, true);
	if (ev->domain == NULL || strcmp(ev->domain, "proc_output") != 0)
		return;
	pthread_mutex_lock(&e->lock);
	if (e->nlines < 16)
		snprintf(e->lines[e->nlines++], 256, "%s", ev->text);
	pthread_mutex_unlock(&e->lock);
}

static bool seen_line(struct env *e, const char *prefix, char *out)
{
	bool found = false;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < e->nlines && !found; i++)
		if (strncmp(e->lines[i], prefix, strlen(prefix)) == 0) {
			found = true;
			if (out != NULL)
				snprintf(out, 256, "%s", e->lines[i]);
		}
	pthread_mutex_unlock(&e->lock);
	return found;
}

/* An actor that starts process children when asked and reports the EXIT
 * messages it gets (it traps exits) to the test's port. */
enum { O_START = 100, O_STARTED, O_EXIT };

struct started {
	int rc;
	int reason;
	tr_pid pid;
};

static int owner_init(tr_ctx *ctx, void *arg, void **state)
{
	*state = arg;
	(void)tr_trap_exit(ctx, true);
	return TR_OK;
}

static int owner_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct env *e = state;
	if (m->type == O_START && m->size == sizeof(tr_proc_spec)) {
		struct started st = {0, 0, TR_PID_NONE};
		st.rc = tr_proc_start_link(
		    ctx, (void *)m->data, &st.pid, &st.reason);
		(void)tr_send(
		    ctx, tr_port_pid(e->port), O_STARTED, &st, sizeof(st));
	} else if (m->type == TR_MSG_EXIT) {
		(void)tr_send(
		    ctx, tr_port_pid(e->port), O_EXIT, m->data, m->size);
	}
	return 0;
}

static const tr_behaviour owner_b = {"owner", owner_init, owner_handle, NULL};

static int setup_tick(void **state, uint32_t tick_ms)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	pthread_mutex_init(&e->lock, NULL);
	snprintf(e->dir, sizeof(e->dir), "/tmp/troupe-proc-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_rc(tr_runtime_start(&e->rt, NULL), TR_OK);
	tr_runtime_set_logger(e->rt, on_log, e);
	char url[128];
	snprintf(url, sizeof(url), "ipc://%s/parent", e->dir);
	const char *listen[] = {url, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "parent";
	o.cookie = "proc-secret";
	o.listen = listen;
	o.tick_ms = tick_ms;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_OK);
	assert_rc(tr_port_open(&e->port, e->rt), TR_OK);
	*state = e;
	alarm(120);
	return 0;
}

static int setup(void **state)
{
	return setup_tick(state, 0);
}

static int setup_fast(void **state)
{
	return setup_tick(state, 200);
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->port != NULL)
		tr_port_close(e->port);
	tr_node_stop(e->node);
	tr_runtime_stop(e->rt);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0);
	pthread_mutex_destroy(&e->lock);
	free(e);
	alarm(0);
	return 0;
}

static tr_msg *expect(struct env *e, uint32_t type)
{
	int64_t end = tt_now_ms() + WAIT_MS;
	for (;;) {
		tr_msg *m = NULL;
		int64_t left = end - tt_now_ms();
		if (left <= 0)
			fail_msg("no message of type %u came", type);
		if (tr_port_recv(&m, e->port, left) != TR_OK)
			continue;
		if (m->type == type)
			return m;
		tr_msg_free(m);
	}
}

static struct started owner_try(struct env *e, const tr_proc_spec *ps)
{
	tr_pid o;
	assert_rc(tr_spawn(&o, e->rt, &owner_b, e, NULL), TR_OK);
	assert_rc(tr_port_send(e->port, o, O_START, ps, sizeof(*ps)), TR_OK);
	tr_msg *m = expect(e, O_STARTED);
	struct started st;
	memcpy(&st, m->data, sizeof(st));
	tr_msg_free(m);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	return st;
}

static struct info child_info(struct env *e, tr_pid root)
{
	tr_msg *rep = NULL;
	assert_rc(tr_call(&rep, e->rt, root, V_INFO, NULL, 0, WAIT_MS), TR_OK);
	struct info in;
	assert_int_equal(rep->size, sizeof(in));
	memcpy(&in, rep->data, sizeof(in));
	tr_msg_free(rep);
	return in;
}

/* The child's environment: with tr_proc_sanitizer_env under a sanitizer
 * (so that its crashes end it as they would without one), and `extra`. */
static const char *san_env[3];

static const char *const *child_env(const char *extra)
{
	size_t k = 0;
	if (tr_proc_sanitizer_env() != NULL)
		san_env[k++] = tr_proc_sanitizer_env();
	if (extra != NULL)
		san_env[k++] = extra;
	san_env[k] = NULL;
	return san_env;
}

/* tr_proc_spec_init, and the environment above. */
static void spec_init(tr_proc_spec *ps, const char *behaviour)
{
	tr_proc_spec_init(ps, behaviour);
	ps->env = child_env(NULL);
}

static tr_pid owner_start(struct env *e, const tr_proc_spec *ps, tr_pid *root)
{
	tr_pid o;
	assert_rc(tr_spawn(&o, e->rt, &owner_b, e, NULL), TR_OK);
	assert_rc(tr_port_send(e->port, o, O_START, ps, sizeof(*ps)), TR_OK);
	tr_msg *m = expect(e, O_STARTED);
	struct started st;
	memcpy(&st, m->data, sizeof(st));
	tr_msg_free(m);
	if (st.rc != TR_OK)
		fail_msg("start: %d (%s), reason %d (%s)", st.rc,
		    tr_strerror(st.rc), st.reason, tr_reason_name(st.reason));
	assert_true(st.pid.node != 0);
	*root = st.pid;
	return o;
}

static int expect_exit(struct env *e, tr_pid from)
{
	for (;;) {
		tr_msg *m = expect(e, O_EXIT);
		tr_exit_info x;
		memcpy(&x, m->data, sizeof(x));
		tr_msg_free(m);
		if (tr_pid_eq(x.pid, from))
			return x.reason;
	}
}

static void no_children_left(struct env *e)
{
	tr_proc_stats st;
	int64_t end = tt_now_ms() + WAIT_MS;
	do {
		tr_proc_stats_init(&st);
		assert_rc(tr_proc_stats_get(&st, e->node), TR_OK);
		if (st.running == 0)
			return;
		usleep(10000);
	} while (tt_now_ms() < end);
	fail_msg("%llu process children still running",
	    (unsigned long long)st.running);
}

/* Starts a child of `ps`, sends it `cmd`, and checks the reason it ends
 * with. */
static void end_case(
    struct env *e, const tr_proc_spec *ps, uint32_t cmd, int reason)
{
	tr_pid root;
	tr_pid o = owner_start(e, ps, &root);
	assert_rc(tr_port_send(e->port, root, cmd, NULL, 0), TR_OK);
	int r = expect_exit(e, root);
	if (r != reason)
		fail_msg("command %u: reason %d (%s), expected %d (%s)", cmd, r,
		    tr_reason_name(r), reason, tr_reason_name(reason));
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	no_children_left(e);
}

static void test_crash_reasons(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	struct {
		uint32_t cmd;
		int reason;
	} cases[] = {
	    {V_SEGV, TR_REASON_SIGNAL(SIGSEGV)},
	    {V_ABORT, TR_REASON_SIGNAL(SIGABRT)},
	    {V_EXIT3, TR_REASON_EXIT_STATUS(3)},
	    {V_QUIT42, 42},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		end_case(e, &ps, cases[i].cmd, cases[i].reason);
	assert_string_equal(
	    tr_reason_name(TR_REASON_SIGNAL(SIGSEGV)), "signal");
	assert_int_equal(tr_reason_signal(TR_REASON_SIGNAL(SIGSEGV)), SIGSEGV);
	assert_int_equal(tr_reason_exit_status(TR_REASON_EXIT_STATUS(3)), 3);
	no_children_left(e);
}

static void test_call_and_kill(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	tr_msg *rep = NULL;
	assert_rc(
	    tr_call(&rep, e->rt, root, V_ECHO, "ping", 4, WAIT_MS), TR_OK);
	assert_int_equal(rep->size, 4);
	assert_memory_equal(rep->data, "ping", 4);
	tr_msg_free(rep);
	/* SIGKILLed by someone else (the OOM killer, an operator): a signal
	 * troupe did not send. */
	struct info in = child_info(e, root);
	assert_int_equal(kill(in.os_pid, SIGKILL), 0);
	assert_int_equal(expect_exit(e, root), TR_REASON_SIGNAL(SIGKILL));
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	o = owner_start(e, &ps, &root);
	/* Hung in C code: only the SIGKILL behind exit(kill) ends it. */
	assert_rc(tr_port_send(e->port, root, V_HANG, NULL, 0), TR_OK);
	usleep(50000);
	int krc = tr_kill(e->rt, root, TR_REASON_KILL);
	int kr = expect_exit(e, root);
	if (krc != TR_OK)
		fail_msg("kill: %d, exit %d (%s)", krc, kr, tr_reason_name(kr));
	assert_int_equal(kr, TR_REASON_KILLED);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	no_children_left(e);
}

/* The pids of the grandchildren the child printed, into gk[0..2); how
 * many it printed. */
static int grandchildren(struct env *e, int gk[2])
{
	int ng = 0;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < e->nlines && ng < 2; i++)
		if (sscanf(e->lines[i], "grandchild %d", &gk[ng]) == 1)
			ng++;
	pthread_mutex_unlock(&e->lock);
	return ng;
}

static void test_output_and_grandchildren(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	assert_rc(tr_port_send(e->port, root, V_PRINT, NULL, 0), TR_OK);
	assert_rc(tr_port_send(e->port, root, V_GRANDKIDS, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(
	    seen_line(e, "grandchild", NULL) && seen_line(e, "a warning", NULL),
	    WAIT_MS));
	assert_true(seen_line(e, "hello from the child", NULL));
	assert_true(seen_line(e, "part one and two", NULL));
	int gk[2] = {0, 0};
	assert_true(TT_WAIT_FOR(grandchildren(e, gk) == 2, WAIT_MS));
	assert_rc(tr_port_send(e->port, root, V_SEGV, NULL, 0), TR_OK);
	assert_int_equal(expect_exit(e, root), TR_REASON_SIGNAL(SIGSEGV));
	for (int i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", gk[i]);
		/* Gone, or a zombie of init's waiting to be reaped: either
		 * way no longer "sleep". */
		assert_true(TT_WAIT_FOR(({
			FILE *f = fopen(path, "r");
			char b[16] = "";
			if (f != NULL) {
				size_t k = fread(b, 1, sizeof(b) - 1, f);
				b[k] = '\0';
				fclose(f);
			}
			strncmp(b, "sleep", 5) != 0;
		}),
		    WAIT_MS));
	}
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	no_children_left(e);
}

static void test_memory_limit(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	ps.memory_limit = 64u << 20;
	end_case(e, &ps, V_GROW, TR_REASON_MEMORY_LIMIT);
}

/* A supervisor restarts a crashing process child; a child that hangs in
 * C code is killed at its shutdown timeout. */
static void test_supervised(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "parser", &ps);
	cs.shutdown_ms = 300;
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.intensity = 10;
	tr_pid sup;
	assert_rc(tr_sup_start(&sup, e->rt, &fl, &cs, 1, NULL), TR_OK);
	tr_child_info ci;
	tr_child_info_init(&ci);
	size_t n = 0;
	assert_rc(
	    tr_sup_which_children(&ci, 1, &n, e->rt, sup, WAIT_MS), TR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ci.type, TR_CHILD_PROCESS);
	tr_pid first = ci.pid;
	assert_true(first.node != 0);
	assert_rc(tr_port_send(e->port, first, V_SEGV, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(({
		tr_child_info_init(&ci);
		tr_sup_which_children(&ci, 1, &n, e->rt, sup, WAIT_MS) ==
		        TR_OK &&
		    !tr_pid_is_none(ci.pid) && !tr_pid_eq(ci.pid, first);
	}),
	    WAIT_MS));
	/* The report says what happened. */
	assert_true(TT_WAIT_FOR(atomic_load(&e->segv_report), WAIT_MS));
	tr_msg *rep = NULL;
	assert_rc(tr_call(&rep, e->rt, ci.pid, V_ECHO, "x", 1, WAIT_MS), TR_OK);
	tr_msg_free(rep);
	assert_rc(tr_port_send(e->port, ci.pid, V_HANG, NULL, 0), TR_OK);
	usleep(50000);
	int64_t t0 = tt_now_ms();
	assert_rc(tr_sup_terminate_child(e->rt, sup, "parser", WAIT_MS), TR_OK);
	/* Not before its timeout (it ignores everything), and not long
	 * after it. */
	assert_true(tt_now_ms() - t0 >= 250);
	no_children_left(e);
	(void)tr_kill(e->rt, sup, TR_REASON_SHUTDOWN);
}

static void test_limits_and_env(void **state)
{
	struct env *e = *state;
	/* A descriptor of the parent without close-on-exec must not reach
	 * the child. */
	char marker[128], fdvar[32];
	snprintf(marker, sizeof(marker), "%s/marker", e->dir);
	int mfd = open(marker, O_CREAT | O_WRONLY, 0600);
	assert_true(mfd >= 0);
	snprintf(fdvar, sizeof(fdvar), "PROC_TEST_FD=%d", mfd);
	const char *env[] = {"PROC_TEST_VAR=hello", fdvar, NULL};
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	const char *const *base = child_env(NULL);
	const char *all[6];
	size_t k = 0;
	for (size_t i = 0; base[i] != NULL; i++)
		all[k++] = base[i];
	all[k++] = env[0];
	all[k++] = env[1];
	all[k] = NULL;
	ps.env = all;
	ps.cwd = e->dir;
	ps.nofile_limit = 64;
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	struct info in = child_info(e, root);
	assert_int_equal(in.nofile, 64);
	assert_string_equal(in.cwd, e->dir);
	assert_string_equal(in.var, "hello");
	assert_int_not_equal(in.os_pid, getpid());
	assert_true(strstr(in.fd_path, "marker") == NULL);
	close(mfd);
	assert_rc(tr_kill(e->rt, root, TR_REASON_KILL), TR_OK);
	assert_int_equal(expect_exit(e, root), TR_REASON_KILLED);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);

	/* A second of CPU time, then SIGXCPU. */
	ps.cpu_limit_s = 1;
	end_case(e, &ps, V_SPIN, TR_REASON_CPU_LIMIT);
}

static void test_start_failures(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	int seven = 7;
	spec_init(&ps, "failer");
	ps.arg = &seven;
	ps.arg_size = sizeof(seven);
	struct started st = owner_try(e, &ps);
	assert_rc(st.rc, TR_EINIT);
	assert_int_equal(st.reason, 7);

	spec_init(&ps, "no-such-behaviour");
	st = owner_try(e, &ps);
	assert_rc(st.rc, TR_EINIT);
	assert_int_equal(st.reason, TR_REASON_NOPROC);

	spec_init(&ps, "victim");
	ps.path = "/nonexistent/program";
	st = owner_try(e, &ps);
	assert_rc(st.rc, TR_ENOENT);

	/* Any program that calls tr_proc_child_main: this one by its path,
	 * with arguments of its own. */
	char self[256];
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(k > 0);
	self[k] = '\0';
	const char *argv[] = {self, "--as-a-child", NULL};
	ps.path = self;
	ps.argv = argv;
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	(void)child_info(e, root);
	assert_rc(tr_kill(e->rt, root, TR_REASON_KILL), TR_OK);
	assert_int_equal(expect_exit(e, root), TR_REASON_KILLED);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);

	/* Bad specs. */
	spec_init(&ps, NULL);
	assert_rc(owner_try(e, &ps).rc, TR_EINVAL);
	spec_init(&ps, "victim");
	ps.arg_size = TR_PROC_ARG_MAX + 1;
	ps.arg = calloc(1, ps.arg_size);
	assert_rc(owner_try(e, &ps).rc, TR_EINVAL);
	free((void *)ps.arg);
	tr_pid none;
	assert_rc(tr_proc_start_link(NULL, &ps, &none, NULL), TR_EINVAL);
	no_children_left(e);
}

/* Stopped: its heartbeats stop, it is declared down, and killed. */
static void test_silent(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	struct info in = child_info(e, root);
	assert_int_equal(kill(in.os_pid, SIGSTOP), 0);
	assert_int_equal(expect_exit(e, root), TR_REASON_NOCONNECTION);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	no_children_left(e);
}

static tr_pid child_pid(struct env *e, tr_pid sup, const char *id)
{
	tr_child_info ci[4];
	tr_child_info_init(&ci[0]);
	size_t n = 0;
	assert_rc(tr_sup_which_children(ci, 4, &n, e->rt, sup, WAIT_MS), TR_OK);
	for (size_t i = 0; i < n && i < 4; i++)
		if (strcmp(ci[i].id, id) == 0)
			return ci[i].pid;
	return TR_PID_NONE;
}

static bool all_up(struct env *e, tr_pid sup)
{
	const char *ids[] = {"a", "p", "b"};
	for (int i = 0; i < 3; i++)
		if (tr_pid_is_none(child_pid(e, sup, ids[i])))
			return false;
	return true;
}

/* one_for_all and rest_for_one over an actor, a process child and an
 * actor. */
static void test_strategies(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_child_spec cs[3];
	tr_child_spec_init(&cs[0], "a", &victim, NULL);
	tr_proc_child_spec(&cs[1], "p", &ps);
	tr_child_spec_init(&cs[2], "b", &victim, NULL);
	tr_sup_strategy strat[] = {TR_SUP_ONE_FOR_ALL, TR_SUP_REST_FOR_ONE};
	for (int k = 0; k < 2; k++) {
		tr_sup_flags fl;
		tr_sup_flags_init(&fl);
		fl.strategy = strat[k];
		fl.intensity = 10;
		tr_pid sup;
		assert_rc(tr_sup_start(&sup, e->rt, &fl, cs, 3, NULL), TR_OK);
		tr_pid a = child_pid(e, sup, "a"), p = child_pid(e, sup, "p"),
		       b = child_pid(e, sup, "b");
		assert_true(p.node != 0 && a.node == 0 && b.node == 0);
		/* The process child crashes. */
		assert_rc(tr_port_send(e->port, p, V_SEGV, NULL, 0), TR_OK);
		assert_true(TT_WAIT_FOR(
		    !tr_pid_eq(child_pid(e, sup, "p"), p) && all_up(e, sup),
		    WAIT_MS));
		tr_pid a2 = child_pid(e, sup, "a"), p2 = child_pid(e, sup, "p"),
		       b2 = child_pid(e, sup, "b");
		assert_false(tr_pid_eq(b2, b));
		if (strat[k] == TR_SUP_ONE_FOR_ALL)
			assert_false(tr_pid_eq(a2, a));
		else
			assert_true(tr_pid_eq(a2, a));
		/* An actor before it crashes: the process child restarts
		 * with it under both strategies. */
		assert_rc(tr_port_send(e->port, a2, V_QUIT42, NULL, 0), TR_OK);
		assert_true(
		    TT_WAIT_FOR(!tr_pid_eq(child_pid(e, sup, "a"), a2) &&
		                    !tr_pid_eq(child_pid(e, sup, "p"), p2) &&
		                    all_up(e, sup),
		        WAIT_MS));
		tr_msg *rep = NULL;
		assert_rc(tr_call(&rep, e->rt, child_pid(e, sup, "p"), V_ECHO,
		              "y", 1, WAIT_MS),
		    TR_OK);
		tr_msg_free(rep);
		(void)tr_kill(e->rt, sup, TR_REASON_SHUTDOWN);
		assert_true(TT_WAIT_FOR(!tr_is_alive(e->rt, sup), WAIT_MS));
		no_children_left(e);
	}
}

/* simple_one_for_one over a process child template: dynamic process
 * children, each restarted on its own, stopped by pid. */
static void test_simple(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "pool", &ps);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.strategy = TR_SUP_SIMPLE_ONE_FOR_ONE;
	fl.intensity = 10;
	tr_pid sup;
	assert_rc(tr_sup_start(&sup, e->rt, &fl, &cs, 1, NULL), TR_OK);
	tr_pid kid[3];
	for (int i = 0; i < 3; i++) {
		assert_rc(tr_sup_start_child(
		              &kid[i], e->rt, sup, NULL, NULL, WAIT_MS, NULL),
		    TR_OK);
		assert_true(kid[i].node != 0);
	}
	tr_child_counts cc;
	tr_child_counts_init(&cc);
	assert_rc(tr_sup_count_children(&cc, e->rt, sup, WAIT_MS), TR_OK);
	assert_int_equal(cc.active, 3);
	assert_int_equal(cc.workers, 3);
	/* One crashes: restarted alone (a new pid, the others kept). */
	assert_rc(tr_port_send(e->port, kid[1], V_ABORT, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&e->restarts) >= 1, WAIT_MS));
	tr_child_info ci[4];
	tr_child_info_init(&ci[0]);
	size_t n = 0;
	assert_rc(tr_sup_which_children(ci, 4, &n, e->rt, sup, WAIT_MS),
	    TR_OK);
	assert_int_equal(n, 3);
	int kept = 0;
	for (size_t i = 0; i < n; i++)
		kept += tr_pid_eq(ci[i].pid, kid[0]) || tr_pid_eq(ci[i].pid, kid[2]);
	assert_int_equal(kept, 2);
	assert_rc(tr_sup_terminate_pid(e->rt, sup, kid[0], WAIT_MS), TR_OK);
	tr_child_counts_init(&cc);
	assert_rc(tr_sup_count_children(&cc, e->rt, sup, WAIT_MS), TR_OK);
	assert_int_equal(cc.active, 2);
	(void)tr_kill(e->rt, sup, TR_REASON_SHUTDOWN);
	assert_true(TT_WAIT_FOR(!tr_is_alive(e->rt, sup), WAIT_MS));
	no_children_left(e);
}

static int zombies(void)
{
	int z = 0;
	DIR *d = opendir("/proc");
	assert_non_null(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		int pid = atoi(de->d_name), ppid = 0;
		if (pid > 0 && tt_proc_state(pid, &ppid) == 'Z' &&
		    ppid == (int)getpid())
			z++;
	}
	closedir(d);
	return z;
}

/* Restarts of a process child that exits at once leak no descriptor, no
 * zombie and no memory. */
static void test_restarts_leak(void **state)
{
	struct env *e = *state;
	unsigned n = (unsigned)tt_env_u64("TROUPE_PROC_RESTARTS", 1000);
	tr_proc_spec ps;
	spec_init(&ps, "quitter");
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "q", &ps);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.intensity = n + 100;
	fl.period_ms = 3600 * 1000;
	/* A first round makes what lives as long as the node (the
	 * watcher's thread and port). */
	tr_pid sup;
	assert_rc(tr_sup_start(&sup, e->rt, &fl, &cs, 1, NULL), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&e->restarts) >= 2, WAIT_MS));
	(void)tr_kill(e->rt, sup, TR_REASON_SHUTDOWN);
	assert_true(TT_WAIT_FOR(!tr_is_alive(e->rt, sup), WAIT_MS));
	no_children_left(e);
	int fds0 = tt_count_fds();
	long rss0 = tt_proc_kb(0, "VmRSS");

	atomic_store(&e->restarts, 0);
	int64_t t0 = tt_now_ms();
	assert_rc(tr_sup_start(&sup, e->rt, &fl, &cs, 1, NULL), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&e->restarts) >= n, 120000));
	fprintf(stderr, "%u restarts in %lld ms\n", n,
	    (long long)(tt_now_ms() - t0));
	(void)tr_kill(e->rt, sup, TR_REASON_SHUTDOWN);
	assert_true(TT_WAIT_FOR(!tr_is_alive(e->rt, sup), WAIT_MS));
	no_children_left(e);
	assert_true(TT_WAIT_FOR(tt_count_fds() <= fds0, WAIT_MS));
	assert_int_equal(zombies(), 0);
	long rss1 = tt_proc_kb(0, "VmRSS");
	fprintf(stderr, "rss %ld KiB -> %ld KiB\n", rss0, rss1);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
	assert_true(rss1 - rss0 < 8 * 1024);
#endif
	tr_proc_stats st;
	tr_proc_stats_init(&st);
	assert_rc(tr_proc_stats_get(&st, e->node), TR_OK);
	assert_true(st.started >= n && st.exited == st.started);
}

/* The parent node stops with its children running: they are killed and
 * reaped before tr_node_stop returns, which it does at once. */
static void test_node_stop(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	int pids[4];
	tr_pid root;
	for (int i = 0; i < 4; i++) {
		(void)owner_start(e, &ps, &root);
		pids[i] = child_info(e, root).os_pid;
	}
	/* The last one hung in C code. */
	assert_rc(tr_port_send(e->port, root, V_HANG, NULL, 0), TR_OK);
	usleep(20000);
	int64_t t0 = tt_now_ms();
	tr_port_close(e->port);
	e->port = NULL;
	tr_node_stop(e->node);
	e->node = NULL;
	assert_true(tt_now_ms() - t0 < 5000);
	for (int i = 0; i < 4; i++)
		assert_true(tt_proc_state(pids[i], NULL) == 0);
	assert_int_equal(zombies(), 0);
}

/* ---- a parent SIGKILLed ----------------------------------------------------
 */

/* The parent of test_orphans, this program with TT_PROC_PARENT set: a node
 * with one process child, whose OS pid it prints before it waits to be
 * killed. */
static int parent_main(const char *dir)
{
	struct env e;
	memset(&e, 0, sizeof(e));
	pthread_mutex_init(&e.lock, NULL);
	snprintf(e.dir, sizeof(e.dir), "%s", dir);
	if (tr_runtime_start(&e.rt, NULL) != TR_OK)
		return 1;
	tr_runtime_set_log_level(e.rt, TR_LOG_ERROR);
	char url[128];
	snprintf(url, sizeof(url), "ipc://%s/orphans", dir);
	const char *listen[] = {url, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "doomed";
	o.cookie = "proc-secret";
	o.listen = listen;
	if (tr_node_start(&e.node, e.rt, &o) != TR_OK ||
	    tr_port_open(&e.port, e.rt) != TR_OK)
		return 1;
	tr_proc_spec ps;
	spec_init(&ps, "victim");
	tr_pid root;
	(void)owner_start(&e, &ps, &root);
	struct info in = child_info(&e, root);
	printf("CHILD %d\n", (int)in.os_pid);
	fflush(stdout);
	for (;;)
		pause();
}


static void test_orphans(void **state)
{
	struct env *e = *state;
	int out[2];
	assert_int_equal(pipe(out), 0);
	pid_t pp = fork();
	assert_true(pp >= 0);
	if (pp == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		setenv("TT_PROC_PARENT", e->dir, 1);
		execl("/proc/self/exe", "test_proc", (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	char line[64] = "";
	size_t k = 0;
	while (k < sizeof(line) - 1) {
		ssize_t r = read(out[0], line + k, 1);
		if (r <= 0 || line[k] == '\n')
			break;
		k++;
	}
	line[k] = '\0';
	close(out[0]);
	int child = 0;
	if (sscanf(line, "CHILD %d", &child) != 1) {
		kill(pp, SIGKILL);
		waitpid(pp, NULL, 0);
		fail_msg("the parent said \"%s\"", line);
	}
	assert_false(tt_proc_dead(child));
	assert_int_equal(kill(pp, SIGKILL), 0);
	assert_int_equal(waitpid(pp, NULL, 0), pp);
	assert_true(TT_WAIT_FOR(tt_proc_dead(child), WAIT_MS));
}

int main(void)
{
	/* The child's side: never returns in a process child. */
	tr_runtime *crt = NULL;
	if (getenv("TROUPE_PROC") != NULL) {
		if (tr_runtime_start(&crt, NULL) != TR_OK ||
		    tr_behaviour_register(crt, "victim", &victim) != TR_OK ||
		    tr_behaviour_register(crt, "quitter", &quitter) != TR_OK ||
		    tr_behaviour_register(crt, "failer", &failer) != TR_OK)
			return 71;
		return tr_proc_child_main(crt) == TR_ENOENT ? 72 : 73;
	}
	signal(SIGPIPE, SIG_IGN);
	if (getenv("TT_PROC_PARENT") != NULL)
		return parent_main(getenv("TT_PROC_PARENT"));
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_crash_reasons, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_call_and_kill, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_output_and_grandchildren, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_supervised, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_limits_and_env, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_start_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_silent, setup_fast, teardown),
	    cmocka_unit_test_setup_teardown(test_strategies, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_restarts_leak, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_orphans, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_node_stop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_simple, setup, teardown),
	};
	/* TT_PROC_FILTER=test_silent runs one test (a glob, as cmocka's). */
	if (getenv("TT_PROC_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_PROC_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
