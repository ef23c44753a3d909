/*
 * Warm process children (tr_proc_spec.warm) with real OS processes: this
 * program is both the parent (the tests) and, re-executed, the child,
 * whose root actor runs "warmling".
 *
 * - a start of a warm spec leaves a process waiting, its node connected,
 *   its root's init not run; the restart after a crash takes it (counted),
 *   runs the init there and then, and the next one is launched;
 * - a warm process that dies while it waits is dropped: the restart
 *   starts a process of its own and succeeds;
 * - tr_proc_cool ends the waiting ones; a node that stops with warm
 *   processes stops at once and leaves no process behind.
 */
#define _GNU_SOURCE
#include "common.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc_state.h"
#include "troupe/node.h"
#include "troupe/proc.h"
#include "troupe/sup.h"

#define WAIT_MS 20000

enum { W_CRASH = 1, W_PID };

/* ---- the child's root actor ---------------------------------------------- */

/* The init leaves a file "init.<os pid>" in the directory its argument
 * names: what ran an init, and when. */
static int warmling_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	tr_blob *dir = arg;
	char path[256];
	snprintf(path, sizeof(path), "%s/init.%d", (const char *)dir->data,
	    (int)getpid());
	free(dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return TR_SUP_REASON_NOSTART;
	close(fd);
	*state = NULL;
	return TR_OK;
}

static int warmling_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == W_CRASH)
		abort();
	if (m->type == W_PID) {
		int32_t p = (int32_t)getpid();
		(void)tr_reply(ctx, m, W_PID, &p, sizeof(p));
	}
	return 0;
}

static const tr_behaviour warmling = {
    "warmling", warmling_init, warmling_handle, NULL};

/* ---- the parent's side ----------------------------------------------------
 */

struct env {
	tr_runtime *rt;
	tr_node *node;
	char dir[64];
	char url[128];
	const char *env[2];
	_Atomic unsigned restarts;
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
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/troupe-warm-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	assert_rc(tr_runtime_start(&e->rt, NULL), TR_OK);
	tr_runtime_set_logger(e->rt, on_log, e);
	snprintf(e->url, sizeof(e->url), "ipc://%s/parent", e->dir);
	const char *listen[] = {e->url, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "parent";
	o.cookie = "warm-secret";
	o.listen = listen;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_OK);
	/* Under a sanitizer, the child's abort must end it as without. */
	e->env[0] = tr_proc_sanitizer_env();
	e->env[1] = NULL;
	*state = e;
	alarm(120);
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	if (e->node != NULL)
		tr_node_stop(e->node);
	tr_runtime_stop(e->rt);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
	assert_int_equal(system(cmd), 0);
	free(e);
	alarm(0);
	return 0;
}

static void spec_init(struct env *e, tr_proc_spec *ps, uint32_t warm)
{
	tr_proc_spec_init(ps, "warmling");
	ps->env = e->env[0] != NULL ? e->env : NULL;
	ps->arg = e->dir;
	ps->arg_size = strlen(e->dir) + 1;
	ps->warm = warm;
}

static tr_proc_stats stats(struct env *e)
{
	tr_proc_stats st;
	tr_proc_stats_init(&st);
	assert_rc(tr_proc_stats_get(&st, e->node), TR_OK);
	return st;
}

static uint32_t peers_up(struct env *e)
{
	tr_node_stats st;
	tr_node_stats_init(&st);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	return st.peers_up;
}

/* How many inits ran: the files they left. */
static int inits(struct env *e)
{
	DIR *d = opendir(e->dir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL;)
		if (strncmp(de->d_name, "init.", 5) == 0)
			n++;
	closedir(d);
	return n;
}

static bool init_ran_in(struct env *e, int pid)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/init.%d", e->dir, pid);
	return access(path, F_OK) == 0;
}

/* The OS processes whose parent is this one, up to `cap`. */
static int kids(int *out, int cap)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int n = 0;
	for (struct dirent *de; (de = readdir(d)) != NULL && n < cap;) {
		int pid = atoi(de->d_name);
		int ppid = 0;
		if (pid > 0 && tt_proc_state(pid, &ppid) != 'Z' &&
		    ppid == (int)getpid())
			out[n++] = pid;
	}
	closedir(d);
	return n;
}

static int root_os_pid(struct env *e, tr_pid root)
{
	tr_msg *rep = NULL;
	assert_rc(tr_call(&rep, e->rt, root, W_PID, NULL, 0, WAIT_MS), TR_OK);
	int32_t p = 0;
	assert_int_equal(rep->size, sizeof(p));
	memcpy(&p, rep->data, sizeof(p));
	tr_msg_free(rep);
	return p;
}

static tr_pid the_child(struct env *e, tr_pid sup)
{
	tr_child_info ci;
	tr_child_info_init(&ci);
	size_t n = 0;
	assert_rc(
	    tr_sup_which_children(&ci, 1, &n, e->rt, sup, WAIT_MS), TR_OK);
	assert_int_equal(n, 1);
	return ci.pid;
}

static tr_pid sup_start(struct env *e, const tr_proc_spec *ps)
{
	tr_child_spec cs;
	tr_proc_child_spec(&cs, "warm", ps);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.intensity = 10;
	tr_pid sup;
	assert_rc(tr_sup_start(&sup, e->rt, &fl, &cs, 1, NULL), TR_OK);
	return sup;
}

/* The child and one warm process run, the warm one's node is up. */
static bool one_warm(struct env *e)
{
	tr_proc_stats st = stats(e);
	return st.warm == 1 && st.running == 2 && peers_up(e) == 2;
}

static void crash_and_wait(struct env *e, tr_pid sup, tr_pid *child)
{
	unsigned r0 = atomic_load(&e->restarts);
	assert_rc(tr_post(e->rt, *child, W_CRASH, NULL, 0), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&e->restarts) == r0 + 1, WAIT_MS));
	tr_pid now = the_child(e, sup);
	assert_false(tr_pid_eq(now, *child));
	*child = now;
}

/* A supervisor of one child of `ps` (warm 1), once its warm process is up:
 * the child's root, its OS pid and the warm one's. */
static tr_pid start_one_warm(struct env *e, const tr_proc_spec *ps,
    tr_pid *child, int *first, int *warm)
{
	tr_pid sup = sup_start(e, ps);
	*child = the_child(e, sup);
	*first = root_os_pid(e, *child);
	assert_true(TT_WAIT_FOR(one_warm(e), WAIT_MS));
	int k[4];
	assert_int_equal(kids(k, 4), 2);
	*warm = k[0] == *first ? k[1] : k[0];
	return sup;
}

/* A restart takes the warm process: its init runs then, in it, and the
 * next warm one is launched. */
static void test_warm_restart(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(e, &ps, 1);
	tr_pid child;
	int first, warm;
	tr_pid sup = start_one_warm(e, &ps, &child, &first, &warm);
	assert_true(init_ran_in(e, first));
	/* Up and connected, and its init not run: it waits. */
	tt_sleep_ms(300);
	assert_int_equal(inits(e), 1);
	assert_false(init_ran_in(e, warm));

	crash_and_wait(e, sup, &child);
	assert_int_equal(root_os_pid(e, child), warm);
	assert_true(init_ran_in(e, warm));
	assert_int_equal(inits(e), 2);
	tr_proc_stats st = stats(e);
	assert_int_equal(st.taken, 1);
	/* And another one waits for the next restart. */
	assert_true(TT_WAIT_FOR(one_warm(e), WAIT_MS));
	crash_and_wait(e, sup, &child);
	assert_int_equal(stats(e).taken, 2);
	assert_int_equal(inits(e), 3);

	/* The supervisor gone, its warm process stays until cooled. */
	assert_true(TT_WAIT_FOR(one_warm(e), WAIT_MS));
	assert_rc(tr_kill(e->rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	assert_true(TT_WAIT_FOR(stats(e).running == 1, WAIT_MS));
	assert_int_equal(tr_proc_cool(e->node, &ps), 1);
	assert_int_equal(tr_proc_cool(e->node, &ps), 0);
	assert_true(TT_WAIT_FOR(stats(e).running == 0, WAIT_MS));
	assert_int_equal(stats(e).warm, 0);
	assert_int_equal(inits(e), 3);
}

/* A warm process killed while it waits is dropped: the restart starts a
 * process of its own. */
static void test_warm_dead(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(e, &ps, 1);
	tr_pid child;
	int first, warm;
	tr_pid sup = start_one_warm(e, &ps, &child, &first, &warm);
	assert_int_equal(kill(warm, SIGKILL), 0);
	assert_true(TT_WAIT_FOR(stats(e).running == 1, WAIT_MS));

	crash_and_wait(e, sup, &child);
	int third = root_os_pid(e, child);
	assert_true(third != first && third != warm);
	assert_true(init_ran_in(e, third));
	assert_int_equal(stats(e).taken, 0);
	/* The dead one's place is taken by a new warm process. */
	assert_true(TT_WAIT_FOR(one_warm(e), WAIT_MS));
	assert_rc(tr_kill(e->rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	assert_int_equal(tr_proc_cool(e->node, NULL), 1);
	assert_true(TT_WAIT_FOR(stats(e).running == 0, WAIT_MS));
}

/* A node that stops with warm processes waiting ends them at once. */
static void test_warm_node_stop(void **state)
{
	struct env *e = *state;
	tr_proc_spec ps;
	spec_init(e, &ps, 3);
	tr_pid sup = sup_start(e, &ps);
	(void)the_child(e, sup);
	assert_true(TT_WAIT_FOR(({
		tr_proc_stats st = stats(e);
		st.warm == 3 && st.running == 4 && peers_up(e) == 4;
	}),
	    WAIT_MS));
	int k[8];
	int nk = kids(k, 8);
	assert_int_equal(nk, 4);
	int64_t t0 = tt_now_ms();
	tr_node_stop(e->node);
	e->node = NULL;
	assert_true(tt_now_ms() - t0 < 5000);
	for (int i = 0; i < nk; i++)
		assert_true(tt_proc_dead(k[i]));
	assert_int_equal(kids(k, 8), 0);
	(void)tr_kill(e->rt, sup, TR_REASON_KILL);
}

int main(void)
{
	/* The child's side: never returns in a process child. */
	tr_runtime *crt = NULL;
	if (getenv("TROUPE_PROC") != NULL) {
		if (tr_runtime_start(&crt, NULL) != TR_OK ||
		    tr_behaviour_register(crt, "warmling", &warmling) != TR_OK)
			return 71;
		return tr_proc_child_main(crt) == TR_ENOENT ? 72 : 73;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_warm_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_warm_dead, setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_warm_node_stop, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
