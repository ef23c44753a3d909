/*
 * The ABI rules of docs/abi.md: the run-time version matches the macros,
 * versioned structs from older and newer callers are read as far as they
 * reach (the rest keeps its defaults), uninitialised ones are refused,
 * getters never write past the caller's struct_size, and the per-scheduler
 * counters reject an index out of range.
 *
 * An "older caller" of a struct that has had one version so far is
 * simulated twice: through the public calls with struct_size set to the
 * first version's size, and through the library's own reader
 * (runtime/dist/abi.h) with a struct of two versions made up here, so that
 * the defaults of a field the caller does not know are checked too.
 */
#include "common.h"

#include <troupe/sup.h>

#include "abi.h"

/* ---- versions ----------------------------------------------------------- */

static void test_version(void **state)
{
	(void)state;
	assert_int_equal(tr_version(), TR_VERSION);
	assert_int_equal(tr_version(), TR_VERSION_MAJOR * 10000 +
	                                   TR_VERSION_MINOR * 100 +
	                                   TR_VERSION_PATCH);
	assert_string_equal(tr_version_string(), TR_VERSION_STRING);
	char want[32];
	snprintf(want, sizeof(want), "%d.%d.%d", TR_VERSION_MAJOR,
	    TR_VERSION_MINOR, TR_VERSION_PATCH);
	assert_string_equal(tr_version_string(), want);
	assert_true(TR_VERSION_MINOR < 100 && TR_VERSION_PATCH < 100);
}

/* ---- the reader, on a struct with two versions -------------------------- */

/* Version 1 of a made-up options struct, as an old caller has it, and
 * version 2, as the library has it (one field more, default 7). */
struct opts_v1 {
	uint32_t struct_size;
	uint32_t a;
	uint64_t b;
};
struct opts_v2 {
	uint32_t struct_size;
	uint32_t a;
	uint64_t b;
	uint32_t c;
};
#define OPTS_V1_SIZE TR_STRUCT_END(struct opts_v2, b)

static void opts_v2_defaults(struct opts_v2 *o)
{
	memset(o, 0, sizeof(*o));
	o->struct_size = sizeof(*o);
	o->a = 1;
	o->b = 2;
	o->c = 7;
}

static void test_reader_versions(void **state)
{
	(void)state;
	struct opts_v2 lib;

	/* An older caller: its fields are read, the new one is defaulted. */
	struct opts_v1 old = {.struct_size = sizeof(old), .a = 10, .b = 20};
	opts_v2_defaults(&lib);
	assert_rc(tr__struct_in(&lib, sizeof(lib), &old, OPTS_V1_SIZE), TR_OK);
	assert_int_equal(lib.struct_size, sizeof(lib));
	assert_int_equal(lib.a, 10);
	assert_int_equal(lib.b, 20);
	assert_int_equal(lib.c, 7);

	/* Not initialised, or smaller than the first version. */
	opts_v2_defaults(&lib);
	old.struct_size = 0;
	assert_rc(
	    tr__struct_in(&lib, sizeof(lib), &old, OPTS_V1_SIZE), TR_EINVAL);
	old.struct_size = OPTS_V1_SIZE - 1;
	assert_rc(
	    tr__struct_in(&lib, sizeof(lib), &old, OPTS_V1_SIZE), TR_EINVAL);
	assert_int_equal(lib.a, 1); /* untouched on error */

	/* A newer caller: an unknown field left at zero is accepted, one
	 * that is set is refused. */
	struct {
		struct opts_v2 o;
		uint64_t d;
	} newer;
	memset(&newer, 0, sizeof(newer));
	newer.o.struct_size = sizeof(newer);
	newer.o.c = 3;
	opts_v2_defaults(&lib);
	assert_rc(
	    tr__struct_in(&lib, sizeof(lib), &newer, OPTS_V1_SIZE), TR_OK);
	assert_int_equal(lib.c, 3);
	assert_int_equal(lib.struct_size, sizeof(lib));
	newer.d = 1;
	assert_rc(
	    tr__struct_in(&lib, sizeof(lib), &newer, OPTS_V1_SIZE), TR_ENOTSUP);

	/* Filling an older caller's struct: nothing past its struct_size. */
	unsigned char buf[sizeof(struct opts_v2) + 16];
	memset(buf, 0xA5, sizeof(buf));
	uint32_t size = OPTS_V1_SIZE;
	memcpy(buf, &size, sizeof(size));
	struct opts_v2 full = {sizeof(full), 100, 200, 300};
	assert_rc(tr__struct_out_ok(buf, OPTS_V1_SIZE), TR_OK);
	tr__struct_out(buf, &full, sizeof(full));
	struct opts_v1 got;
	memcpy(&got, buf, sizeof(got));
	assert_int_equal(got.struct_size, OPTS_V1_SIZE);
	assert_int_equal(got.a, 100);
	assert_int_equal(got.b, 200);
	for (size_t i = OPTS_V1_SIZE; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xA5);
	size = 0;
	memcpy(buf, &size, sizeof(size));
	assert_rc(tr__struct_out_ok(buf, OPTS_V1_SIZE), TR_EINVAL);
}

/* ---- options through the public calls ----------------------------------- */

static void test_runtime_opts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime_opts o;
	tr_runtime *rt = NULL;

	/* Not initialised, or too small: refused, nothing started. */
	memset(&o, 0, sizeof(o));
	o.schedulers = 1;
	assert_rc(tr_runtime_start(&rt, &o), TR_EINVAL);
	assert_null(rt);
	tr_runtime_opts_init(&o);
	o.struct_size = TR_RUNTIME_OPTS_V1_SIZE - 1;
	assert_rc(tr_runtime_start(&rt, &o), TR_EINVAL);
	assert_null(rt);

	/* A newer caller that sets an option this library lacks. */
	struct {
		tr_runtime_opts o;
		uint64_t later;
	} newer;
	memset(&newer, 0, sizeof(newer));
	newer.o.struct_size = sizeof(newer);
	newer.later = 1;
	assert_rc(tr_runtime_start(&rt, &newer.o), TR_ENOTSUP);
	assert_null(rt);

	/* The first version's size, from an older caller: its options
	 * apply, whatever lies past it is not read (left as junk here). */
	struct {
		tr_runtime_opts o;
		unsigned char junk[16];
	} old;
	memset(&old, 0xA5, sizeof(old));
	tr_runtime_opts_init(&old.o);
	old.o.struct_size = TR_RUNTIME_OPTS_V1_SIZE;
	old.o.schedulers = 1;
	rt = tt_start_opts(fx, &old.o);
	assert_int_equal(tr_runtime_schedulers(rt), 1);
	tt_stop(fx);

	/* The newer caller with its unknown option at its default (0). */
	newer.later = 0;
	newer.o.schedulers = 2;
	rt = tt_start_opts(fx, &newer.o);
	assert_int_equal(tr_runtime_schedulers(rt), 2);
	tt_stop(fx);
}

static int nop_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

static const tr_behaviour nop = {.name = "nop", .handle = nop_handle};

static void test_spawn_opts(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_pid pid;
	tr_spawn_opts so;

	memset(&so, 0, sizeof(so));
	assert_rc(tr_spawn(&pid, rt, &nop, NULL, &so), TR_EINVAL);
	tr_spawn_opts_init(&so);
	so.struct_size = TR_SPAWN_OPTS_V1_SIZE - 1;
	assert_rc(tr_spawn(&pid, rt, &nop, NULL, &so), TR_EINVAL);
	so.struct_size = TR_SPAWN_OPTS_V1_SIZE;
	so.flags = TR_SPAWN_TRAP_EXIT;
	assert_rc(tr_spawn(&pid, rt, &nop, NULL, &so), TR_OK);
	assert_rc(tr_kill(rt, pid, TR_REASON_KILL), TR_OK);
	tt_quiesce(rt);
	tt_stop(fx);
}

/* Flags and specs: an uninitialised flags struct is refused; an array of
 * specs from a newer caller has a larger stride, which the supervisor
 * follows; entries whose struct_size differ are refused. */
struct big_spec {
	tr_child_spec s;
	uint64_t later; /* a field this library does not know, left 0 */
};

static void test_sup_structs(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_sup_flags f;
	tr_pid sup = TR_PID_NONE;
	struct big_spec specs[2];

	memset(specs, 0, sizeof(specs));
	tr_child_spec_init(&specs[0].s, "a", &nop, NULL);
	tr_child_spec_init(&specs[1].s, "b", &nop, NULL);
	specs[0].s.struct_size = sizeof(specs[0]);
	specs[1].s.struct_size = sizeof(specs[1]);

	memset(&f, 0, sizeof(f));
	assert_rc(tr_sup_start(&sup, rt, &f, &specs[0].s, 2, NULL), TR_EINVAL);
	tr_sup_flags_init(&f);
	f.struct_size = TR_SUP_FLAGS_V1_SIZE - 1;
	assert_rc(tr_sup_start(&sup, rt, &f, &specs[0].s, 2, NULL), TR_EINVAL);
	tr_sup_flags_init(&f);

	/* Entries of different sizes. */
	specs[1].s.struct_size = sizeof(tr_child_spec);
	assert_rc(tr_sup_start(&sup, rt, &f, &specs[0].s, 2, NULL), TR_EINVAL);
	specs[1].s.struct_size = sizeof(specs[1]);

	/* The newer caller's stride: both children start. */
	assert_rc(tr_sup_start(&sup, rt, &f, &specs[0].s, 2, NULL), TR_OK);
	tr_child_counts cnt = TR_STRUCT_INIT(tr_child_counts);
	assert_rc(tr_sup_count_children(&cnt, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(cnt.specs, 2);
	assert_int_equal(cnt.active, 2);

	/* Output structs: refused when not initialised; which_children
	 * writes entries at the caller's stride and nothing beyond cap. */
	tr_child_counts bad;
	memset(&bad, 0, sizeof(bad));
	assert_rc(tr_sup_count_children(&bad, rt, sup, TT_WAIT_MS), TR_EINVAL);
	struct {
		tr_child_info i;
		uint64_t later;
	} info[3];
	memset(info, 0xA5, sizeof(info));
	info[0].i.struct_size = sizeof(info[0]);
	size_t n = 0;
	assert_rc(tr_sup_which_children(&info[0].i, 2, &n, rt, sup, TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(n, 2);
	assert_string_equal(info[0].i.id, "a");
	assert_string_equal(info[1].i.id, "b");
	assert_int_equal(info[1].i.struct_size, sizeof(info[1]));
	assert_int_equal(info[1].later, 0); /* unknown to the library: 0 */
	const unsigned char *g = (const unsigned char *)&info[2];
	for (size_t i = 0; i < sizeof(info[2]); i++)
		assert_int_equal(g[i], 0xA5);
	info[0].i.struct_size = 0;
	assert_rc(tr_sup_which_children(&info[0].i, 2, &n, rt, sup, TT_WAIT_MS),
	    TR_EINVAL);

	assert_rc(tr_kill(rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	tt_quiesce(rt);
	tt_stop(fx);
}

/* ---- statistics --------------------------------------------------------- */

static void test_stats_bounds(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	(void)tt_spawn(rt, &nop, NULL);
	tt_quiesce(rt);

	/* Not initialised, too small, NULL. */
	tr_runtime_stats st;
	memset(&st, 0, sizeof(st));
	assert_rc(tr_runtime_stats_get(&st, rt), TR_EINVAL);
	st.struct_size = TR_RUNTIME_STATS_V1_SIZE - 1;
	assert_rc(tr_runtime_stats_get(&st, rt), TR_EINVAL);
	assert_rc(tr_runtime_stats_get(NULL, rt), TR_EINVAL);

	/* The first version's size in a larger buffer: nothing is written
	 * past struct_size, and struct_size is kept. */
	union {
		tr_runtime_stats st;
		unsigned char b[sizeof(tr_runtime_stats) + 32];
	} g;
	memset(&g, 0xA5, sizeof(g));
	g.st.struct_size = TR_RUNTIME_STATS_V1_SIZE;
	assert_rc(tr_runtime_stats_get(&g.st, rt), TR_OK);
	assert_int_equal(g.st.struct_size, TR_RUNTIME_STATS_V1_SIZE);
	assert_int_equal(g.st.actors_spawned, 1);
	for (size_t i = TR_RUNTIME_STATS_V1_SIZE; i < sizeof(g.b); i++)
		assert_int_equal(g.b[i], 0xA5);

	/* A newer caller's larger struct: the fields this library does not
	 * know read 0, and nothing past its struct_size is written. */
	const size_t newer = sizeof(tr_runtime_stats) + 16;
	memset(&g, 0xA5, sizeof(g));
	g.st.struct_size = (uint32_t)newer;
	assert_rc(tr_runtime_stats_get(&g.st, rt), TR_OK);
	for (size_t i = sizeof(tr_runtime_stats); i < newer; i++)
		assert_int_equal(g.b[i], 0);
	for (size_t i = newer; i < sizeof(g.b); i++)
		assert_int_equal(g.b[i], 0xA5);
	tt_stop(fx);
}

static void test_sched_stats(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	unsigned n = tr_runtime_schedulers(rt);
	assert_int_equal(n, 2);

	tr_sched_stats s;
	tr_sched_stats_init(&s);
	assert_rc(tr_runtime_sched_stats_get(&s, rt, n), TR_EINVAL);
	assert_rc(tr_runtime_sched_stats_get(&s, rt, UINT32_MAX), TR_EINVAL);
	assert_rc(tr_runtime_sched_stats_get(&s, NULL, 0), TR_EINVAL);
	assert_rc(tr_runtime_sched_stats_get(NULL, rt, 0), TR_EINVAL);
	s.struct_size = 0;
	assert_rc(tr_runtime_sched_stats_get(&s, rt, 0), TR_EINVAL);

	union {
		tr_sched_stats st;
		unsigned char b[sizeof(tr_sched_stats) + 32];
	} g;
	for (unsigned i = 0; i < n; i++) {
		memset(&g, 0xA5, sizeof(g));
		g.st.struct_size = TR_SCHED_STATS_V1_SIZE;
		assert_rc(tr_runtime_sched_stats_get(&g.st, rt, i), TR_OK);
		for (size_t k = TR_SCHED_STATS_V1_SIZE; k < sizeof(g.b); k++)
			assert_int_equal(g.b[k], 0xA5);
	}
	tt_stop(fx);
}

/* ---- log events --------------------------------------------------------- */

static atomic_int g_events;
static atomic_uint g_event_size;

static void count_events(void *user, const tr_log_event *ev)
{
	(void)user;
	atomic_fetch_add(&g_events, 1);
	atomic_store(&g_event_size, ev->struct_size);
}

static void test_log_event(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_runtime_set_logger(rt, count_events, NULL);
	atomic_store(&g_events, 0);

	tr_log_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.level = TR_LOG_ERROR;
	ev.text = "not initialised";
	tr_log_emit(rt, &ev);
	assert_int_equal(atomic_load(&g_events), 0);
	char buf[64];
	assert_int_equal(tr_log_format_text(buf, sizeof(buf), &ev), 0);

	tr_log_event_init(&ev, TR_LOG_ERROR);
	ev.text = "first version";
	ev.struct_size = TR_LOG_EVENT_V1_SIZE;
	tr_log_emit(rt, &ev);
	assert_int_equal(atomic_load(&g_events), 1);
	/* A handler sees the library's own event. */
	assert_int_equal(atomic_load(&g_event_size), sizeof(tr_log_event));
	assert_true(tr_log_format_text(buf, sizeof(buf), &ev) > 0);
	assert_non_null(strstr(buf, "first version"));
	tr_runtime_set_logger(rt, NULL, NULL);
	tt_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_version),
	    cmocka_unit_test(test_reader_versions),
	    TT_TEST(test_runtime_opts),
	    TT_TEST(test_spawn_opts),
	    TT_TEST(test_sup_structs),
	    TT_TEST(test_stats_bounds),
	    TT_TEST(test_sched_stats),
	    TT_TEST(test_log_event),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
