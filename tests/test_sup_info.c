/*
 * Looking at running supervisors: the list of the live ones (tr_sup_list)
 * and INFO (tr_sup_info, tr_sup_req_info, tr_sup_info_decode): what it
 * says about a supervisor and its children, the ring of recent restarts,
 * answers while the supervisor is busy, the versioned structs, and an
 * operator's terminate + restart racing the supervisor's own restarts.
 */
#include <pthread.h>
#include <time.h>

#include "sup_common.h"

#define LONG_PERIOD 3600000u
#define MAXSUP 64

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool listed(tr_runtime *rt, tr_pid p)
{
	tr_pid out[MAXSUP];
	size_t n = 0;

	assert_rc(tr_sup_list(rt, out, MAXSUP, &n), TR_OK);
	for (size_t i = 0; i < n && i < MAXSUP; i++)
		if (tr_pid_eq(out[i], p))
			return true;
	return false;
}

static size_t nlisted(tr_runtime *rt)
{
	size_t n = 0;

	assert_rc(tr_sup_list(rt, NULL, 0, &n), TR_OK);
	return n;
}

/* INFO with room for 16 children and the whole ring. */
struct info {
	tr_sup_status st;
	tr_sup_restart_entry rec[TR_SUP_RECENT_MAX];
	tr_child_status kid[16];
};

static void get_info(struct info *in, tr_runtime *rt, tr_pid sup)
{
	memset(in, 0, sizeof(*in));
	tr_sup_status_init(&in->st);
	tr_sup_restart_entry_init(&in->rec[0]);
	tr_child_status_init(&in->kid[0]);
	assert_rc(tr_sup_info(&in->st, in->rec, TR_SUP_RECENT_MAX, in->kid, 16,
	              rt, sup, TT_WAIT_MS),
	    TR_OK);
}

static const tr_child_status *kid(const struct info *in, const char *id)
{
	for (uint32_t i = 0; i < in->st.nlisted && i < 16; i++)
		if (strcmp(in->kid[i].id, id) == 0)
			return &in->kid[i];
	fail_msg("no child \"%s\" in the answer", id);
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* The list                                                                  */
/* ------------------------------------------------------------------------ */

static void test_list_nested(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec leaf_specs[] = {tt_wspec("b", &b)};
	static tr_sup_args leaf_args;
	tr_child_spec mid_specs[2];
	static tr_sup_args mid_args;
	tr_child_spec root_specs[1];
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid root, mid, leaf, out[2];
	struct info in;
	size_t n;

	assert_int_equal(nlisted(rt), 0);
	leaf_args = (tr_sup_args){.specs = leaf_specs, .nspecs = 1};
	leaf_args.flags = tt_flags(TR_SUP_REST_FOR_ONE, 2, 4000);
	mid_specs[0] = tt_wspec("a", &a);
	mid_specs[1] = tt_supspec("leaf", &leaf_args);
	mid_args = (tr_sup_args){.specs = mid_specs, .nspecs = 2};
	mid_args.flags = tt_flags(TR_SUP_ONE_FOR_ALL, 3, 6000);
	root_specs[0] = tt_supspec("mid", &mid_args);
	root_specs[0].name = "mid_sup";

	root = tt_sup_start(rt, &f, root_specs, 1);
	assert_rc(tr_register(rt, "root_sup", root), TR_OK);
	mid = tt_child(rt, root, "mid");
	leaf = tt_child(rt, mid, "leaf");
	assert_int_equal(nlisted(rt), 3);
	assert_true(listed(rt, root));
	assert_true(listed(rt, mid));
	assert_true(listed(rt, leaf));

	/* A short array: the count, and as many pids as fit. */
	out[1] = TR_PID_NONE;
	assert_rc(tr_sup_list(rt, out, 1, &n), TR_OK);
	assert_int_equal(n, 3);
	assert_true(tr_pid_eq(out[0], root) || tr_pid_eq(out[0], mid) ||
	            tr_pid_eq(out[0], leaf));
	assert_true(tr_pid_is_none(out[1]));

	/* The tree, from each one's parent and name. */
	get_info(&in, rt, root);
	assert_true(tr_pid_eq(in.st.pid, root));
	assert_true(tr_pid_is_none(in.st.parent));
	assert_string_equal(in.st.name, "root_sup");
	get_info(&in, rt, mid);
	assert_true(tr_pid_eq(in.st.parent, root));
	assert_string_equal(in.st.name, "mid_sup");
	assert_int_equal(in.st.strategy, TR_SUP_ONE_FOR_ALL);
	assert_int_equal(in.st.supervisors, 1);
	assert_int_equal(in.st.workers, 1);
	get_info(&in, rt, leaf);
	assert_true(tr_pid_eq(in.st.parent, mid));
	assert_string_equal(in.st.name, "");
	assert_int_equal(in.st.strategy, TR_SUP_REST_FOR_ONE);
	assert_int_equal(in.st.intensity, 2);
	assert_int_equal(in.st.period_ms, 4000);

	/* A stopped subtree leaves the list. */
	assert_rc(tr_sup_terminate_child(rt, root, "mid", TT_WAIT_MS), TR_OK);
	assert_true(TT_WAIT_FOR(nlisted(rt) == 1, TT_WAIT_MS));
	assert_true(listed(rt, root));
	assert_false(listed(rt, mid));
	assert_false(listed(rt, leaf));
	tt_sup_stop(rt, port, w, root);
	assert_true(TT_WAIT_FOR(nlisted(rt) == 0, TT_WAIT_MS));

	assert_rc(tr_sup_list(NULL, out, 2, &n), TR_EINVAL);
	assert_rc(tr_sup_list(rt, NULL, 2, &n), TR_EINVAL);
	tt_pstop(fx);
}

/* A start that fails leaves nothing listed: neither the supervisor nor
 * the reaper that stops its children. */
static void test_list_failed_start(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	static struct tt_wcfg a = {.id = 'a'};
	static struct tt_wcfg b = {.id = 'b', .fail_from = 1, .fail_reason = 9};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_pid sup;
	int reason = 0;

	assert_rc(tr_sup_start(&sup, rt, &f, specs, 2, &reason), TR_EINIT);
	assert_int_equal(reason, 9);
	assert_true(TT_WAIT_FOR(atomic_load(&a.running) == 0, TT_WAIT_MS));
	assert_int_equal(nlisted(rt), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* What INFO says                                                            */
/* ------------------------------------------------------------------------ */

static void test_info_fields(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'}, c = {.id = 'c'};
	static struct tt_wcfg d = {.id = 'd'};
	static tr_child_spec nested_specs[1];
	static tr_sup_args nested;
	tr_child_spec specs[4];
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 3, 7000);
	tr_child_status two[2];
	tr_sup_status st;
	struct info in;
	tr_pid sup;

	nested_specs[0] = tt_wspec("d", &d);
	nested = (tr_sup_args){.specs = nested_specs, .nspecs = 1};
	nested.flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	specs[0] = tt_wspec("a", &a);
	specs[1] = tt_wspec("b", &b);
	specs[1].restart = TR_RESTART_TRANSIENT;
	specs[1].name = "info_b";
	specs[1].significant = true;
	specs[1].shutdown_ms = TR_SHUTDOWN_BRUTAL_KILL;
	specs[2] = tt_wspec("c", &c);
	specs[2].restart = TR_RESTART_TEMPORARY;
	specs[3] = tt_supspec("n", &nested);
	f.auto_shutdown = TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT;
	sup = tt_sup_start(rt, &f, specs, 4);

	get_info(&in, rt, sup);
	assert_int_equal(in.st.struct_size, sizeof(in.st));
	assert_true(tr_pid_eq(in.st.pid, sup));
	assert_int_equal(in.st.strategy, TR_SUP_ONE_FOR_ALL);
	assert_int_equal(in.st.intensity, 3);
	assert_int_equal(in.st.period_ms, 7000);
	assert_int_equal(in.st.auto_shutdown, TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT);
	assert_int_equal(in.st.restarts, 0);
	assert_int_equal(in.st.nrecent, 0);
	assert_int_equal(in.st.nchildren, 4);
	assert_int_equal(in.st.nlisted, 4);
	assert_int_equal(in.st.active, 4);
	assert_int_equal(in.st.supervisors, 1);
	assert_int_equal(in.st.workers, 3);
	assert_false(in.st.busy);
	assert_false(in.st.shutting_down);
	/* In start order, each as its spec says. */
	assert_string_equal(in.kid[0].id, "a");
	assert_string_equal(in.kid[1].id, "b");
	assert_string_equal(in.kid[2].id, "c");
	assert_string_equal(in.kid[3].id, "n");
	assert_true(tr_pid_eq(in.kid[0].pid, tt_child(rt, sup, "a")));
	assert_int_equal(in.kid[0].type, TR_CHILD_WORKER);
	assert_int_equal(in.kid[0].restart, TR_RESTART_PERMANENT);
	assert_int_equal(in.kid[0].shutdown_ms, 5000);
	assert_string_equal(in.kid[0].name, "");
	assert_int_equal(in.kid[1].restart, TR_RESTART_TRANSIENT);
	assert_string_equal(in.kid[1].name, "info_b");
	assert_true(in.kid[1].significant);
	assert_int_equal(in.kid[1].shutdown_ms, TR_SHUTDOWN_BRUTAL_KILL);
	assert_int_equal(in.kid[2].restart, TR_RESTART_TEMPORARY);
	assert_int_equal(in.kid[3].type, TR_CHILD_SUPERVISOR);
	assert_int_equal(in.kid[3].shutdown_ms, TR_SHUTDOWN_INFINITY);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(in.kid[i].struct_size, sizeof(in.kid[i]));
		assert_int_equal(in.kid[i].restarts, 0);
		assert_false(in.kid[i].restarting);
	}

	/* A stopped child: no pid, still listed. */
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	get_info(&in, rt, sup);
	assert_true(tr_pid_is_none(kid(&in, "a")->pid));
	assert_int_equal(in.st.active, 3);
	assert_int_equal(in.st.nchildren, 4);

	/* Room for two: the first two, and the counts of all. */
	tr_sup_status_init(&st);
	tr_child_status_init(&two[0]);
	assert_rc(
	    tr_sup_info(&st, NULL, 0, two, 2, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(st.nchildren, 4);
	assert_int_equal(st.nlisted, 2);
	assert_string_equal(two[1].id, "b");
	/* No room at all: the status alone. */
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 0, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(st.nlisted, 0);
	assert_int_equal(st.nchildren, 4);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* A worker that exits with a text (tr_exit_text) when told. */
#define TXT_STOP 0x7180

static int txt_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == TXT_STOP)
		tr_exit_text(ctx, 77, "disk full");
	return 0;
}

static const tr_behaviour txt_worker = {
    .name = "txt_worker",
    .handle = txt_handle,
};

static void test_crash_in_ring(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec specs[2];
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 100, LONG_PERIOD);
	struct info in;
	tr_pid sup, pa, pa2, pt, pt2;
	uint64_t t0, t1;

	specs[0] = tt_wspec("a", &a);
	tr_child_spec_init(&specs[1], "t", &txt_worker, NULL);
	sup = tt_sup_start(rt, &f, specs, 2);
	pa = tt_child(rt, sup, "a");
	t0 = wall_ms();
	tt_wcrash(rt, pa, 42);
	pa2 = tt_wait_restart(rt, sup, "a", pa);
	t1 = wall_ms();

	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, 1);
	assert_int_equal(in.st.nrecent, 1);
	assert_int_equal(in.rec[0].struct_size, sizeof(in.rec[0]));
	assert_string_equal(in.rec[0].id, "a");
	assert_int_equal(in.rec[0].reason, 42);
	assert_string_equal(in.rec[0].text, "");
	assert_true(tr_pid_eq(in.rec[0].old_pid, pa));
	assert_true(tr_pid_eq(in.rec[0].new_pid, pa2));
	/* The wall clock, give or take a step of it meanwhile. */
	assert_true(
	    in.rec[0].at_ms + 60000 >= t0 && in.rec[0].at_ms <= t1 + 60000);
	assert_int_equal(kid(&in, "a")->restarts, 1);
	assert_int_equal(kid(&in, "t")->restarts, 0);

	/* An exit with a text: the text is kept with the reason. */
	pt = tt_child(rt, sup, "t");
	assert_rc(tr_post(rt, pt, TXT_STOP, NULL, 0), TR_OK);
	pt2 = tt_wait_restart(rt, sup, "t", pt);
	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, 2);
	assert_int_equal(in.st.nrecent, 2);
	assert_string_equal(in.rec[0].id, "t");
	assert_int_equal(in.rec[0].reason, 77);
	assert_string_equal(in.rec[0].text, "disk full");
	assert_true(tr_pid_eq(in.rec[0].old_pid, pt));
	assert_true(tr_pid_eq(in.rec[0].new_pid, pt2));
	assert_string_equal(in.rec[1].id, "a"); /* newest first */
	assert_int_equal(kid(&in, "t")->restarts, 1);

	/* An operator's restart is no restart of the supervisor's. */
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_rc(
	    tr_sup_restart_child(NULL, rt, sup, "a", TT_WAIT_MS, NULL), TR_OK);
	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, 2);
	assert_int_equal(kid(&in, "a")->restarts, 1);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_ring_keeps_newest(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 100, LONG_PERIOD);
	tr_sup_restart_entry three[3];
	tr_sup_status st;
	struct info in;
	tr_pid sup, p;
	const int nr = 11;

	sup = tt_sup_start(rt, &f, specs, 1);
	p = tt_child(rt, sup, "a");
	for (int i = 0; i < nr; i++) {
		tt_wcrash(rt, p, 100 + i);
		p = tt_wait_restart(rt, sup, "a", p);
	}
	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, nr);
	assert_int_equal(in.st.nrecent, TR_SUP_RECENT_MAX);
	assert_int_equal(kid(&in, "a")->restarts, nr);
	assert_true(tr_pid_eq(in.rec[0].new_pid, p));
	for (int i = 0; i < TR_SUP_RECENT_MAX; i++) {
		assert_int_equal(in.rec[i].reason, 100 + nr - 1 - i);
		if (i > 0) {
			/* Each restart's old pid the one before's new. */
			assert_true(tr_pid_eq(
			    in.rec[i - 1].old_pid, in.rec[i].new_pid));
		}
	}

	/* Room for three: the three newest. */
	tr_sup_status_init(&st);
	tr_sup_restart_entry_init(&three[0]);
	assert_rc(
	    tr_sup_info(&st, three, 3, NULL, 0, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(st.nrecent, TR_SUP_RECENT_MAX);
	assert_int_equal(three[0].reason, 100 + nr - 1);
	assert_int_equal(three[2].reason, 100 + nr - 3);
	assert_int_equal(three[2].struct_size, sizeof(three[2]));

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* A group restart is one restart: the child that caused it has the entry,
 * and every child of the group counts a restart. */
static void test_group_restart_counts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 10, LONG_PERIOD);
	struct info in;
	tr_pid sup, pa, pb, pa2, pb2;

	sup = tt_sup_start(rt, &f, specs, 2);
	pa = tt_child(rt, sup, "a");
	pb = tt_child(rt, sup, "b");
	tt_wcrash(rt, pa, 5);
	pa2 = tt_wait_restart(rt, sup, "a", pa);
	pb2 = tt_wait_restart(rt, sup, "b", pb);
	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, 1);
	assert_int_equal(in.st.nrecent, 1);
	assert_string_equal(in.rec[0].id, "a");
	assert_int_equal(in.rec[0].reason, 5);
	assert_true(tr_pid_eq(in.rec[0].old_pid, pa));
	assert_true(tr_pid_eq(in.rec[0].new_pid, pa2));
	assert_int_equal(kid(&in, "a")->restarts, 1);
	assert_int_equal(kid(&in, "b")->restarts, 1);
	assert_true(tr_pid_eq(kid(&in, "b")->pid, pb2));
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

static void test_simple_one_for_one_info(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec spec = tt_wspec("dyn", &a);
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 10, LONG_PERIOD);
	tr_child_status kids[3];
	tr_sup_restart_entry rec[1];
	tr_sup_status st;
	tr_pid sup, pids[5], p2;

	sup = tt_sup_start(rt, &f, &spec, 1);
	for (int i = 0; i < 5; i++)
		assert_rc(tr_sup_start_child(
		              &pids[i], rt, sup, NULL, &a, TT_WAIT_MS, NULL),
		    TR_OK);
	tt_wcrash(rt, pids[0], 3);
	/* The restarted child keeps its place in the list. */
	assert_true(TT_WAIT_FOR(
	    (tr_sup_status_init(&st), tr_child_status_init(&kids[0]),
	        tr_sup_restart_entry_init(&rec[0]),
	        tr_sup_info(&st, rec, 1, kids, 3, rt, sup, TT_WAIT_MS) ==
	                TR_OK &&
	            st.restarts == 1 && st.active == 5),
	    TT_WAIT_MS));
	assert_int_equal(st.strategy, TR_SUP_SIMPLE_ONE_FOR_ONE);
	assert_int_equal(st.nchildren, 5);
	assert_int_equal(st.nlisted, 3);
	assert_int_equal(st.workers, 5);
	assert_string_equal(rec[0].id, "");
	assert_int_equal(rec[0].reason, 3);
	assert_true(tr_pid_eq(rec[0].old_pid, pids[0]));
	p2 = rec[0].new_pid;
	assert_true(tr_is_alive(rt, p2));
	for (int i = 0; i < 3; i++) {
		assert_string_equal(kids[i].id, "");
		assert_true(tr_pid_eq(kids[i].pid, i == 0 ? p2 : pids[i]));
	}
	assert_int_equal(kids[0].restarts, 1);

	/* An operator stops a dynamic child by pid; restart is not for
	 * them (OTP's simple_one_for_one). */
	assert_rc(tr_sup_terminate_pid(rt, sup, p2, TT_WAIT_MS), TR_OK);
	assert_rc(tr_sup_restart_child(NULL, rt, sup, "dyn", TT_WAIT_MS, NULL),
	    TR_ENOTSUP);
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 0, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(st.nchildren, 4);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* A busy supervisor                                                         */
/* ------------------------------------------------------------------------ */

struct term_call {
	tr_runtime *rt;
	tr_pid sup;
	const char *id;
	_Atomic int rc;
	_Atomic bool done;
};

static void *term_thread(void *arg)
{
	struct term_call *t = arg;

	atomic_store(&t->rc,
	    tr_sup_terminate_child(t->rt, t->sup, t->id, 4 * TT_WAIT_MS));
	atomic_store(&t->done, true);
	return NULL;
}

static void test_info_while_stopping(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	/* s ignores `shutdown` and has a long timeout: the supervisor stays
	 * busy stopping it for as long as the test needs. */
	static struct tt_wcfg s = {.id = 's', .trap = true};
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("s", &s)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	struct term_call t = {.rt = rt, .id = "s"};
	pthread_t th;
	struct info in;
	tr_pid sup, ps;

	specs[1].shutdown_ms = 10 * TT_WAIT_MS;
	sup = tt_sup_start(rt, &f, specs, 2);
	ps = tt_child(rt, sup, "s");
	t.sup = sup;

	/* Terminating s: busy, and INFO answers at once. */
	assert_int_equal(pthread_create(&th, NULL, term_thread, &t), 0);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 1, TT_WAIT_MS));
	get_info(&in, rt, sup);
	assert_true(in.st.busy);
	assert_false(in.st.shutting_down);
	assert_true(tr_pid_eq(kid(&in, "s")->pid, ps)); /* still running */
	assert_false(atomic_load(&t.done));
	assert_rc(tr_kill(rt, ps, TR_REASON_KILL), TR_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_rc(atomic_load(&t.rc), TR_OK);
	get_info(&in, rt, sup);
	assert_false(in.st.busy);
	assert_true(tr_pid_is_none(kid(&in, "s")->pid));

	/* Shutting down: INFO still answers, the other requests do not. */
	assert_rc(
	    tr_sup_restart_child(&ps, rt, sup, "s", TT_WAIT_MS, NULL), TR_OK);
	(void)tt_monitor(port, w, sup);
	assert_rc(tr_kill(rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 2, TT_WAIT_MS));
	get_info(&in, rt, sup);
	assert_true(in.st.shutting_down);
	assert_false(in.st.busy);
	assert_true(tr_pid_eq(kid(&in, "s")->pid, ps));
	assert_rc(tr_sup_count_children(&cnt, rt, sup, TT_WAIT_MS), TR_ECLOSED);
	assert_rc(tr_kill(rt, ps, TR_REASON_KILL), TR_OK);
	tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Errors and versioned structs                                              */
/* ------------------------------------------------------------------------ */

/* A caller built against a newer troupe: larger entries. */
struct big_kid {
	tr_child_status c;
	uint64_t later;
};

static void test_info_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	tr_sup_status st;
	tr_sup_restart_entry rec[1];
	tr_child_status kids[2];
	struct big_kid big[3];
	tr_pid sup, dead;

	sup = tt_sup_start(rt, &f, specs, 2);
	tr_sup_restart_entry_init(&rec[0]);
	tr_child_status_init(&kids[0]);

	/* Bad struct sizes and arrays. */
	assert_rc(tr_sup_info(NULL, NULL, 0, NULL, 0, rt, sup, TT_WAIT_MS),
	    TR_EINVAL);
	memset(&st, 0, sizeof(st));
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 0, rt, sup, TT_WAIT_MS), TR_EINVAL);
	st.struct_size = TR_SUP_STATUS_V1_SIZE - 1;
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 0, rt, sup, TT_WAIT_MS), TR_EINVAL);
	tr_sup_status_init(&st);
	assert_rc(
	    tr_sup_info(&st, NULL, 1, NULL, 0, rt, sup, TT_WAIT_MS), TR_EINVAL);
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 1, rt, sup, TT_WAIT_MS), TR_EINVAL);
	kids[0].struct_size = 0;
	assert_rc(
	    tr_sup_info(&st, NULL, 0, kids, 2, rt, sup, TT_WAIT_MS), TR_EINVAL);
	rec[0].struct_size = 8;
	assert_rc(
	    tr_sup_info(&st, rec, 1, NULL, 0, rt, sup, TT_WAIT_MS), TR_EINVAL);
	assert_rc(tr_sup_info(&st, NULL, 0, NULL, 0, NULL, sup, TT_WAIT_MS),
	    TR_EINVAL);
	assert_rc(tr_sup_info_decode(&st, NULL, 0, NULL, 0, NULL), TR_EINVAL);
	assert_rc(tr_sup_req_info(NULL, 1), TR_EINVAL);

	/* A dead pid, and a pid that never was. */
	dead = tt_dead_pid(rt, port);
	assert_rc(tr_sup_info(&st, NULL, 0, NULL, 0, rt, dead, TT_WAIT_MS),
	    TR_ENOPROC);
	assert_rc(
	    tr_sup_info(&st, NULL, 0, NULL, 0, rt, TR_PID_NONE, TT_WAIT_MS),
	    TR_ENOPROC);

	/* Larger entries: the stride is theirs, what this library does not
	 * know is zeroed, nothing past the array is written. */
	memset(big, 0xab, sizeof(big));
	big[0].c.struct_size = sizeof(big[0]);
	assert_rc(tr_sup_info(&st, NULL, 0, &big[0].c, 2, rt, sup, TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(st.nlisted, 2);
	assert_string_equal(big[0].c.id, "a");
	assert_string_equal(big[1].c.id, "b");
	assert_int_equal(big[1].c.struct_size, sizeof(big[1]));
	assert_int_equal(big[0].later, 0);
	assert_int_equal(big[1].later, 0);
	assert_int_equal(big[2].c.struct_size, 0xabababab);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* From an actor                                                             */
/* ------------------------------------------------------------------------ */

struct asker {
	tr_pid sup;
	uint64_t ref;
	int sent;
	_Atomic int rc; /* of the decode */
	_Atomic bool done;
	tr_sup_status st;
	tr_child_status kids[4];
};

static int asker_init(tr_ctx *ctx, void *arg, void **state)
{
	struct asker *a = arg;
	tr_sup_request q;

	TT_ACHECK(tr_sup_req_info(&q, 4) == TR_OK);
	a->sent = tr_sup_request_send(ctx, &a->ref, a->sup, &q, TT_WAIT_MS);
	*state = a;
	return TR_OK;
}

static int asker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct asker *a = state;

	(void)ctx;
	if (m->ref != a->ref)
		return 0;
	tr_sup_status_init(&a->st);
	tr_child_status_init(&a->kids[0]);
	atomic_store(
	    &a->rc, tr_sup_info_decode(&a->st, NULL, 0, a->kids, 4, m));
	atomic_store(&a->done, true);
	return 0;
}

static const tr_behaviour asker_b = {
    .name = "asker",
    .init = asker_init,
    .handle = asker_handle,
};

static void test_info_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	tr_child_spec specs[] = {tt_wspec("a", &a)};
	tr_sup_flags f = tt_flags(TR_SUP_REST_FOR_ONE, 4, 9000);
	static struct asker ask;
	tr_pid sup, p;

	sup = tt_sup_start(rt, &f, specs, 1);
	ask.sup = sup;
	p = tt_spawn(rt, &asker_b, &ask);
	assert_true(TT_WAIT_FOR(atomic_load(&ask.done), TT_WAIT_MS));
	assert_rc(ask.sent, TR_OK);
	assert_rc(atomic_load(&ask.rc), TR_OK);
	assert_int_equal(ask.st.strategy, TR_SUP_REST_FOR_ONE);
	assert_int_equal(ask.st.intensity, 4);
	assert_int_equal(ask.st.nlisted, 1);
	assert_string_equal(ask.kids[0].id, "a");
	assert_rc(tr_kill(rt, p, TR_REASON_KILL), TR_OK);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Concurrency                                                               */
/* ------------------------------------------------------------------------ */

struct lister {
	tr_runtime *rt;
	_Atomic bool stop;
	_Atomic unsigned seen, infos;
	_Atomic unsigned bad;
};

static void *list_thread(void *arg)
{
	struct lister *l = arg;
	tr_pid out[MAXSUP];
	tr_sup_status st;

	while (!atomic_load(&l->stop)) {
		size_t n = 0;

		if (tr_sup_list(l->rt, out, MAXSUP, &n) != TR_OK)
			atomic_fetch_add(&l->bad, 1);
		if (n > 0)
			atomic_fetch_add(&l->seen, 1);
		for (size_t i = 0; i < n && i < MAXSUP; i++) {
			tr_sup_status_init(&st);
			int rc = tr_sup_info(
			    &st, NULL, 0, NULL, 0, l->rt, out[i], TT_WAIT_MS);
			if (rc == TR_OK && tr_pid_eq(st.pid, out[i]))
				atomic_fetch_add(&l->infos, 1);
			else if (rc != TR_ENOPROC)
				atomic_fetch_add(&l->bad, 1);
		}
	}
	return NULL;
}

static void test_concurrent_list(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'};
	static tr_child_spec inner_specs[1];
	static tr_sup_args inner;
	tr_child_spec specs[1];
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	struct lister l = {.rt = rt};
	pthread_t th[2];
	const int rounds = (int)tt_env_u64("TT_SUP_LIST_ROUNDS", 200);

	inner_specs[0] = tt_wspec("a", &a);
	inner = (tr_sup_args){.specs = inner_specs, .nspecs = 1};
	inner.flags = tt_flags(TR_SUP_ONE_FOR_ONE, 1, 5000);
	specs[0] = tt_supspec("inner", &inner);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, list_thread, &l), 0);
	for (int r = 0; r < rounds; r++) {
		tr_pid sup = tt_sup_start(rt, &f, specs, 1);

		tt_sup_stop(rt, port, w, sup);
	}
	atomic_store(&l.stop, true);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	assert_int_equal(atomic_load(&l.bad), 0);
	assert_true(TT_WAIT_FOR(nlisted(rt) == 0, TT_WAIT_MS));
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* An operator's restart of a running child                                  */
/* ------------------------------------------------------------------------ */

/* OTP's restart_child refuses a running child; an operator's "restart"
 * is terminate, then restart. Here it runs over and over against a
 * one_for_all supervisor that restarts the whole group whenever another
 * child crashes. Each terminate succeeds; each restart either starts the
 * child or finds it started by a group restart that came in between
 * (TR_ERUNNING, with its pid); the supervisor never gives up or loses the
 * child. */
struct operator
{
	tr_runtime *rt;
	tr_pid sup;
	int rounds;
	_Atomic unsigned bad, started, running;
};

static void *operator_thread(void *arg)
{
	struct operator* o = arg;

	for (int i = 0; i < o->rounds; i++) {
		tr_pid p = TR_PID_NONE;
		int rc = tr_sup_terminate_child(o->rt, o->sup, "a", TT_WAIT_MS);

		if (rc != TR_OK)
			atomic_fetch_add(&o->bad, 1);
		rc = tr_sup_restart_child(
		    &p, o->rt, o->sup, "a", TT_WAIT_MS, NULL);
		if (rc == TR_OK)
			atomic_fetch_add(&o->started, 1);
		else if (rc == TR_ERUNNING)
			atomic_fetch_add(&o->running, 1);
		else
			atomic_fetch_add(&o->bad, 1);
		if ((rc == TR_OK || rc == TR_ERUNNING) && tr_pid_is_none(p))
			atomic_fetch_add(&o->bad, 1);
	}
	return NULL;
}

static void test_operator_restart_race(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_pstart(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg a = {.id = 'a'}, b = {.id = 'b'};
	tr_child_spec specs[] = {tt_wspec("a", &a), tt_wspec("b", &b)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 100000, LONG_PERIOD);
	const int rounds = (int)tt_env_u64("TT_SUP_OP_ROUNDS", 300);
	struct operator o = {.rt = rt, .rounds = rounds};
	int crashes = 0;
	struct info in;
	pthread_t th;
	tr_pid sup, pb;

	sup = tt_sup_start(rt, &f, specs, 2);
	o.sup = sup;
	assert_int_equal(pthread_create(&th, NULL, operator_thread, &o), 0);
	pb = tt_child(rt, sup, "b");
	for (int i = 0; i < rounds; i++) {
		tt_wcrash(rt, pb, 1);
		crashes++;
		pb = tt_wait_restart(rt, sup, "b", pb);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(atomic_load(&o.bad), 0);
	assert_int_equal(atomic_load(&o.started) + atomic_load(&o.running),
	    (unsigned)rounds);
	get_info(&in, rt, sup);
	assert_int_equal(in.st.restarts, (uint64_t)crashes);
	assert_int_equal(in.st.active, 2);
	assert_true(tr_is_alive(rt, kid(&in, "a")->pid));
	assert_int_equal(atomic_load(&a.running), 1);
	assert_int_equal(atomic_load(&b.running), 1);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_PTEST(test_list_nested),
	    TT_PTEST(test_list_failed_start),
	    TT_PTEST(test_info_fields),
	    TT_PTEST(test_crash_in_ring),
	    TT_PTEST(test_ring_keeps_newest),
	    TT_PTEST(test_group_restart_counts),
	    TT_PTEST(test_simple_one_for_one_info),
	    TT_PTEST(test_info_while_stopping),
	    TT_PTEST(test_info_errors),
	    TT_PTEST(test_info_from_actor),
	    TT_PTEST(test_concurrent_list),
	    TT_PTEST(test_operator_restart_race),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
