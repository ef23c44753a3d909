/*
 * Process children (troupe/proc.h) with real OS processes: this program is
 * both the parent (the tests) and, re-executed, the child, whose root
 * actor runs the behaviour "victim" registered below.
 *
 * - a child that segfaults, aborts or exits 3 ends with TR_REASON_SIGNAL
 *   (SIGSEGV, SIGABRT) and TR_REASON_EXIT_STATUS(3); one killed by an
 *   exit signal `kill` ends killed; a root actor that exits with a reason
 *   of its own gives that reason; calls reach the root;
 * - a supervisor restarts a crashing process child as any child, and
 *   stops one that ignores its shutdown by killing it after the timeout;
 * - a child over its memory limit ends with TR_REASON_MEMORY_LIMIT;
 * - a child's grandchildren die with it;
 * - its stdout and stderr reach the parent's log handler line by line;
 * - nothing is left running: every test ends with no process child.
 */
#define _GNU_SOURCE
#include "common.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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
};

/* ---- the child's root actor ---------------------------------------------- */

static int victim_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	switch (m->type) {
	case V_SEGV: {
		/* A null pointer the compiler cannot see through. */
		volatile int *volatile nil = NULL;
		*nil = 1;
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
				execl("/bin/sleep", "sleep", "30", (char *)NULL);
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
	default:
		return 0;
	}
}

static const tr_behaviour victim = {"victim", NULL, victim_handle, NULL};

/* ---- the parent's side ---------------------------------------------------- */

struct env {
	tr_runtime *rt;
	tr_node *node;
	tr_port *port;
	char dir[64];
	pthread_mutex_t lock;
	char lines[16][256];
	int nlines;
};

static void on_log(void *user, const tr_log_event *ev)
{
	struct env *e = user;
	if (getenv("TT_VERBOSE") != NULL)
		fprintf(stderr, "log: %s\n", ev->text);
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
		(void)tr_send(ctx, tr_port_pid(e->port), O_STARTED, &st,
		    sizeof(st));
	} else if (m->type == TR_MSG_EXIT) {
		(void)tr_send(ctx, tr_port_pid(e->port), O_EXIT, m->data,
		    m->size);
	}
	return 0;
}

static const tr_behaviour owner_b = {"owner", owner_init, owner_handle, NULL};

static int setup(void **state)
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
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_OK);
	assert_rc(tr_port_open(&e->port, e->rt), TR_OK);
	*state = e;
	alarm(120);
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
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

static void test_crash_reasons(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, "victim");
	struct {
		uint32_t cmd;
		int reason;
	} cases[] = {
	    {V_SEGV, TR_REASON_SIGNAL(SIGSEGV)},
	    {V_ABORT, TR_REASON_SIGNAL(SIGABRT)},
	    {V_EXIT3, TR_REASON_EXIT_STATUS(3)},
	    {V_QUIT42, 42},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tr_pid root;
		tr_pid o = owner_start(e, &ps, &root);
		assert_rc(
		    tr_port_send(e->port, root, cases[i].cmd, NULL, 0), TR_OK);
		int r = expect_exit(e, root);
		if (r != cases[i].reason)
			fail_msg("case %zu: reason %d (%s), expected %d", i, r,
			    tr_reason_name(r), cases[i].reason);
		(void)tr_kill(e->rt, o, TR_REASON_KILL);
	}
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
	tr_proc_spec_init(&ps, "victim");
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	tr_msg *rep = NULL;
	assert_rc(tr_call(&rep, e->rt, root, V_ECHO, "ping", 4, WAIT_MS),
	    TR_OK);
	assert_int_equal(rep->size, 4);
	assert_memory_equal(rep->data, "ping", 4);
	tr_msg_free(rep);
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

static void test_output_and_grandchildren(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, "victim");
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	assert_rc(tr_port_send(e->port, root, V_PRINT, NULL, 0), TR_OK);
	assert_rc(tr_port_send(e->port, root, V_GRANDKIDS, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(seen_line(e, "grandchild", NULL) &&
	                            seen_line(e, "a warning", NULL),
	    WAIT_MS));
	assert_true(seen_line(e, "hello from the child", NULL));
	assert_true(seen_line(e, "part one and two", NULL));
	char line[256];
	int gk[2] = {0, 0}, ng = 0;
	pthread_mutex_lock(&e->lock);
	for (int i = 0; i < e->nlines && ng < 2; i++)
		if (sscanf(e->lines[i], "grandchild %d", &gk[ng]) == 1)
			ng++;
	pthread_mutex_unlock(&e->lock);
	(void)line;
	assert_true(TT_WAIT_FOR(
	    ({
		    bool two = false;
		    pthread_mutex_lock(&e->lock);
		    ng = 0;
		    for (int i = 0; i < e->nlines && ng < 2; i++)
			    if (sscanf(e->lines[i], "grandchild %d",
			            &gk[ng]) == 1)
				    ng++;
		    two = ng == 2;
		    pthread_mutex_unlock(&e->lock);
		    two;
	    }),
	    WAIT_MS));
	assert_rc(tr_port_send(e->port, root, V_SEGV, NULL, 0), TR_OK);
	assert_int_equal(expect_exit(e, root), TR_REASON_SIGNAL(SIGSEGV));
	for (int i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", gk[i]);
		/* Gone, or a zombie of init's waiting to be reaped: either
		 * way no longer "sleep". */
		assert_true(TT_WAIT_FOR(
		    ({
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
	tr_proc_spec_init(&ps, "victim");
	ps.memory_limit = 64u << 20;
	tr_pid root;
	tr_pid o = owner_start(e, &ps, &root);
	assert_rc(tr_port_send(e->port, root, V_GROW, NULL, 0), TR_OK);
	assert_int_equal(expect_exit(e, root), TR_REASON_MEMORY_LIMIT);
	(void)tr_kill(e->rt, o, TR_REASON_KILL);
	no_children_left(e);
}

/* A supervisor restarts a crashing process child; a child that hangs in
 * C code is killed at its shutdown timeout. */
static void test_supervised(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, "victim");
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
	assert_rc(tr_sup_which_children(&ci, 1, &n, e->rt, sup, WAIT_MS),
	    TR_OK);
	assert_int_equal(n, 1);
	assert_int_equal(ci.type, TR_CHILD_PROCESS);
	tr_pid first = ci.pid;
	assert_true(first.node != 0);
	assert_rc(tr_port_send(e->port, first, V_SEGV, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(
	    ({
		    tr_child_info_init(&ci);
		    tr_sup_which_children(&ci, 1, &n, e->rt, sup, WAIT_MS) ==
		            TR_OK &&
		        !tr_pid_is_none(ci.pid) && !tr_pid_eq(ci.pid, first);
	    }),
	    WAIT_MS));
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

int main(void)
{
	/* The child's side: never returns in a process child. */
	tr_runtime *crt = NULL;
	if (getenv("TROUPE_PROC") != NULL) {
		if (tr_runtime_start(&crt, NULL) != TR_OK ||
		    tr_behaviour_register(crt, "victim", &victim) != TR_OK)
			return 71;
		return tr_proc_child_main(crt) == TR_ENOENT ? 72 : 73;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_crash_reasons, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_call_and_kill, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_output_and_grandchildren, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_memory_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_supervised, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
