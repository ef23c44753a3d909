/*
 * Looking inside a running runtime (troupe/info.h): the actor table's
 * counters and states, listings by slot and top N, and the report of one
 * actor (links, monitors, mailbox head), against a real runtime.
 */
#include "common.h"

#include <pthread.h>
#include <troupe/info.h>

enum {
	MSG_GATE = 1,
	MSG_PLAIN,
	MSG_SETUP,
	MSG_WATCH,
	MSG_GO,
	MSG_ASK,
	MSG_ANSWER,
};

/* ------------------------------------------------------------------------ */
/* Behaviours                                                                */
/* ------------------------------------------------------------------------ */

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour idle_bhv = {
    .name = "info.idle", .handle = idle_handle};

/* A gate: MSG_GATE holds the actor in its callback until `open` is set
 * (a payload byte of 1: then it exits); other messages wait behind it. */
struct gate {
	_Atomic int entered;
	_Atomic int open;
};

static int gate_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct gate *g = state;

	if (m->type != MSG_GATE)
		return 0;
	atomic_store(&g->entered, 1);
	int64_t end = tt_now_ms() + TT_WAIT_MS;
	while (!atomic_load(&g->open) && tt_now_ms() < end)
		tt_sleep_ms(1);
	TT_ACHECK(atomic_load(&g->open));
	if (m->size == 1 && m->data[0] == 1)
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour gate_bhv = {
    .name = "info.gate", .handle = gate_handle};

/* Links to and monitors the pids of MSG_SETUP (link, monitor), or
 * monitors the one of MSG_WATCH; then holds at MSG_GATE. */
static int holder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid p[2];

	if (m->type == MSG_SETUP && m->size == sizeof(p)) {
		memcpy(p, m->data, sizeof(p));
		TT_ACHECK(tr_link(ctx, p[0]) == TR_OK);
		TT_ACHECK(tr_monitor(ctx, NULL, p[1]) == TR_OK);
	} else if (m->type == MSG_WATCH && m->size == sizeof(p[0])) {
		memcpy(p, m->data, sizeof(p[0]));
		TT_ACHECK(tr_monitor(ctx, NULL, p[0]) == TR_OK);
	} else if (m->type == MSG_GATE) {
		return gate_handle(ctx, state, m);
	}
	return 0;
}

static const tr_behaviour holder_bhv = {
    .name = "info.holder",
    .handle = holder_handle,
};

static struct gate *gate_new(void)
{
	struct gate *g = calloc(1, sizeof(*g));

	assert_non_null(g);
	return g;
}

static void gate_hold(tr_runtime *rt, tr_pid pid, struct gate *g, bool exit)
{
	unsigned char b = exit ? 1 : 0;

	assert_rc(tr_post(rt, pid, MSG_GATE, &b, 1), TR_OK);
	assert_true(TT_WAIT_FOR(atomic_load(&g->entered), TT_WAIT_MS));
}

static tr_actor_info info_of(tr_runtime *rt, tr_pid pid)
{
	tr_actor_info in;

	tr_actor_info_init(&in);
	assert_rc(tr_actor_info_get(&in, rt, pid), TR_OK);
	return in;
}

static uint64_t handled_of(tr_runtime *rt, tr_pid pid)
{
	return info_of(rt, pid).handled;
}

/* ------------------------------------------------------------------------ */
/* Pids as text                                                              */
/* ------------------------------------------------------------------------ */

static void test_pid_text(void **state)
{
	(void)state;
	char buf[TR_PID_TEXT_MAX];
	tr_pid p = {.node = 3, .slot = 4000000000u, .gen = 7}, q;

	assert_int_equal(tr_pid_format(buf, sizeof(buf), p), 14);
	assert_string_equal(buf, "3.4000000000.7");
	assert_rc(tr_pid_parse(&q, buf), TR_OK);
	assert_true(tr_pid_eq(p, q));
	tr_pid max = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
	assert_int_equal(
	    tr_pid_format(buf, sizeof(buf), max), TR_PID_TEXT_MAX - 1);
	assert_rc(tr_pid_parse(&q, buf), TR_OK);
	assert_true(tr_pid_eq(max, q));
	/* Cut like snprintf. */
	assert_int_equal(tr_pid_format(buf, 4, p), 14);
	assert_string_equal(buf, "3.4");
	const char *bad[] = {"", "1.2", "1.2.3.4", "1.2.0", "-1.2.3", "1.2.3 ",
	    " 1.2.3", "1..3", "4294967296.1.1", "a.b.c", "1.2.3x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_rc(tr_pid_parse(&q, bad[i]), TR_EINVAL);
		assert_true(tr_pid_is_none(q));
	}
	assert_rc(tr_pid_parse(&q, NULL), TR_EINVAL);
	assert_rc(tr_pid_parse(NULL, "1.2.3"), TR_EINVAL);
	assert_string_equal(tr_actor_state_name(TR_ACTOR_WAITING), "waiting");
	assert_string_equal(tr_actor_state_name(TR_ACTOR_RUNNABLE), "runnable");
	assert_string_equal(tr_actor_state_name(TR_ACTOR_RUNNING), "running");
	assert_string_equal(tr_actor_state_name(TR_ACTOR_EXITING), "exiting");
	assert_string_equal(tr_actor_state_name(99), "unknown");
	assert_string_equal(tr_actor_kind_name(TR_ACTOR_KIND_PORT), "port");
}

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

#define SENDS_PER_THREAD 20000

struct poster {
	tr_runtime *rt;
	tr_pid to;
};

static void *post_many(void *arg)
{
	struct poster *p = arg;

	for (int i = 0; i < SENDS_PER_THREAD; i++)
		TT_ACHECK(
		    tr_post(p->rt, p->to, MSG_PLAIN, &i, sizeof(i)) == TR_OK);
	return NULL;
}

/* Two threads flood an actor held in its callback: its mailbox counts
 * every message exactly, and once released it handles them all. */
static void test_counts_concurrent(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	struct gate *g = gate_new();
	tr_pid a = tt_spawn(rt, &gate_bhv, g);

	gate_hold(rt, a, g, false);
	tr_actor_info in = info_of(rt, a);
	assert_int_equal(in.state, TR_ACTOR_RUNNING);
	assert_int_equal(in.mailbox, 0);
	assert_int_equal(in.handled, 1);
	assert_string_equal(in.behaviour, "info.gate");
	assert_int_equal(in.kind, TR_ACTOR_KIND_ACTOR);

	pthread_t th[2];
	struct poster p = {rt, a};
	for (int i = 0; i < 2; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, post_many, &p), 0);
	/* Read while they post: never more than was sent. */
	for (int k = 0; k < 100; k++) {
		in = info_of(rt, a);
		assert_true(in.mailbox <= 2 * SENDS_PER_THREAD);
		assert_int_equal(in.handled, 1);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	in = info_of(rt, a);
	assert_int_equal(in.mailbox, 2 * SENDS_PER_THREAD);
	assert_int_equal(in.handled, 1);

	atomic_store(&g->open, 1);
	assert_true(TT_WAIT_FOR(
	    handled_of(rt, a) == 2 * SENDS_PER_THREAD + 1, TT_WAIT_MS));
	assert_true(
	    TT_WAIT_FOR(info_of(rt, a).state == TR_ACTOR_WAITING, TT_WAIT_MS));
	assert_int_equal(info_of(rt, a).mailbox, 0);
	tt_assert_actors_ok();
	tt_stop(fx);
	free(g);
}

/* A flooded mailbox comes first in the top N by mailbox. */
static void test_top_mailbox(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	enum { IDLE = 200, FLOOD = 5000 };
	tr_pid idle[IDLE];

	for (int i = 0; i < IDLE; i++)
		idle[i] = tt_spawn(rt, &idle_bhv, NULL);
	struct gate *g = gate_new();
	tr_pid a = tt_spawn(rt, &gate_bhv, g);
	gate_hold(rt, a, g, false);
	for (int i = 0; i < FLOOD; i++)
		assert_rc(tr_post(rt, a, MSG_PLAIN, NULL, 0), TR_OK);
	/* A few messages for some idle ones, held by nobody: they drain. */
	for (int i = 0; i < IDLE; i += 10)
		assert_rc(tr_post(rt, idle[i], MSG_PLAIN, NULL, 0), TR_OK);

	tr_actor_info out[5];
	tr_actor_info_init(&out[0]);
	tr_actors_query q;
	tr_actors_query_init(&q);
	q.sort = TR_ACTORS_TOP_MAILBOX;
	size_t n = 0, total = 0;
	uint32_t next = 7;
	assert_rc(tr_actors_list(out, 5, &n, &total, &next, rt, &q), TR_OK);
	assert_int_equal(n, 5);
	assert_int_equal(total, IDLE + 1);
	assert_int_equal(next, 0);
	assert_true(tr_pid_eq(out[0].pid, a));
	assert_int_equal(out[0].mailbox, FLOOD);
	assert_int_equal(out[0].state, TR_ACTOR_RUNNING);
	for (size_t i = 1; i < n; i++) {
		assert_true(out[i].mailbox <= out[i - 1].mailbox);
		assert_int_equal(out[i].struct_size, sizeof(tr_actor_info));
	}

	atomic_store(&g->open, 1);
	tt_quiesce(rt);
	assert_rc(tr_actors_list(out, 5, &n, NULL, NULL, rt, &q), TR_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].mailbox, 0);
	tt_assert_actors_ok();
	tt_stop(fx);
	free(g);
}

/* Handled counts are exact, and the top N by handled is in order. */
static void test_top_handled(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	enum { N = 50 };
	tr_pid p[N];

	for (int i = 0; i < N; i++) {
		p[i] = tt_spawn(rt, &idle_bhv, NULL);
		for (int k = 0; k < i; k++)
			assert_rc(
			    tr_post(rt, p[i], MSG_PLAIN, &k, sizeof(k)), TR_OK);
	}
	tt_quiesce(rt);
	for (int i = 0; i < N; i++) {
		tr_actor_info in = info_of(rt, p[i]);
		assert_int_equal(in.handled, (uint64_t)i);
		assert_int_equal(in.mailbox, 0);
		assert_int_equal(in.state, TR_ACTOR_WAITING);
	}
	tr_actor_info out[10];
	tr_actor_info_init(&out[0]);
	tr_actors_query q;
	tr_actors_query_init(&q);
	q.sort = TR_ACTORS_TOP_HANDLED;
	size_t n = 0;
	assert_rc(tr_actors_list(out, 10, &n, NULL, NULL, rt, &q), TR_OK);
	assert_int_equal(n, 10);
	for (int i = 0; i < 10; i++) {
		assert_true(tr_pid_eq(out[i].pid, p[N - 1 - i]));
		assert_int_equal(out[i].handled, (uint64_t)(N - 1 - i));
		assert_string_equal(out[i].behaviour, "info.idle");
	}
	/* A registered name shows. */
	assert_rc(tr_register(rt, "info.busiest", p[N - 1]), TR_OK);
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, rt, &q), TR_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].name, "info.busiest");
	assert_string_equal(info_of(rt, p[N - 1]).name, "info.busiest");
	assert_string_equal(info_of(rt, p[0]).name, "");
	tt_assert_actors_ok();
	tt_stop(fx);
}

/* ------------------------------------------------------------------------ */
/* Pages                                                                     */
/* ------------------------------------------------------------------------ */

static int cmp_slot(const void *x, const void *y)
{
	const tr_pid *a = x, *b = y;
	return a->slot < b->slot ? -1 : a->slot > b->slot;
}

/* Pages by slot cover every actor exactly once, in slot order, in the
 * entries of a newer caller (the stride is out[0].struct_size, and what
 * this library does not know of an entry is zeroed). */
static void test_pages(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	enum { N = 1000, PAGE = 37 };
	tr_pid *p = calloc(N, sizeof(*p));
	tr_pid *seen = calloc(N + PAGE, sizeof(*seen));

	assert_non_null(p);
	assert_non_null(seen);
	for (int i = 0; i < N; i++)
		p[i] = tt_spawn(rt, &idle_bhv, NULL);
	tt_quiesce(rt);
	enum { MORE = 24 };
	size_t stride = sizeof(tr_actor_info) + MORE;
	unsigned char *buf = calloc(PAGE + 1, stride);
	assert_non_null(buf);
	tr_actors_query q;
	tr_actors_query_init(&q);
	size_t nseen = 0, pages = 0;
	for (;;) {
		tr_actor_info *out = (tr_actor_info *)(void *)buf;
		out->struct_size = (uint32_t)stride;
		size_t n = 0, total = 0;
		uint32_t next = 0;
		/* The canary past the page stays. */
		memset(buf, 0xcd, PAGE * stride);
		out->struct_size = (uint32_t)stride;
		memset(buf + PAGE * stride, 0xab, stride);
		assert_rc(tr_actors_list(out, PAGE, &n, &total, &next, rt, &q),
		    TR_OK);
		assert_int_equal(total, N);
		assert_true(n <= PAGE);
		assert_int_equal(buf[PAGE * stride], 0xab);
		/* The same page without the total. */
		size_t n2 = 0;
		uint32_t next2 = 0;
		assert_rc(tr_actors_list(out, PAGE, &n2, NULL, &next2, rt, &q),
		    TR_OK);
		assert_int_equal(n2, n);
		assert_int_equal(next2, next);
		for (size_t i = 0; i < n; i++) {
			tr_actor_info *e =
			    (tr_actor_info *)(void *)(buf + i * stride);
			assert_int_equal(e->struct_size, stride);
			assert_int_equal(e->state, TR_ACTOR_WAITING);
			for (size_t k = 0; k < MORE; k++)
				assert_int_equal(
				    ((unsigned char *)e)[sizeof(*e) + k], 0);
			if (nseen > 0)
				assert_true(e->pid.slot > seen[nseen - 1].slot);
			seen[nseen++] = e->pid;
		}
		pages++;
		if (next == 0)
			break;
		assert_int_equal(n, PAGE);
		assert_true(next > seen[nseen - 1].slot);
		q.cursor = next;
	}
	assert_int_equal(nseen, N);
	assert_int_equal(pages, (N + PAGE - 1) / PAGE);
	qsort(p, N, sizeof(*p), cmp_slot);
	for (int i = 0; i < N; i++)
		assert_true(tr_pid_eq(p[i], seen[i]));
	tt_stop(fx);
	free(buf);
	free(seen);
	free(p);
}

/* Bad arguments. */
static void test_list_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_actor_info out[2];
	size_t n;
	tr_actors_query q;

	tr_actor_info_init(&out[0]);
	tr_actors_query_init(&q);
	assert_rc(tr_actors_list(NULL, 1, &n, NULL, NULL, rt, &q), TR_EINVAL);
	assert_rc(tr_actors_list(out, 1, NULL, NULL, NULL, rt, &q), TR_EINVAL);
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, NULL, &q), TR_EINVAL);
	assert_rc(tr_actors_list(NULL, 0, &n, NULL, NULL, rt, NULL), TR_OK);
	assert_int_equal(n, 0);
	out[0].struct_size = 0;
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, rt, &q), TR_EINVAL);
	out[0].struct_size = TR_ACTOR_INFO_V1_SIZE - 1;
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, rt, &q), TR_EINVAL);
	tr_actor_info_init(&out[0]);
	q.struct_size = 0;
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, rt, &q), TR_EINVAL);
	tr_actors_query_init(&q);
	q.sort = 9;
	assert_rc(tr_actors_list(out, 1, &n, NULL, NULL, rt, &q), TR_EINVAL);
	q.sort = TR_ACTORS_TOP_MAILBOX;
	assert_rc(
	    tr_actors_list(out, TR_ACTORS_TOP_MAX + 1, &n, NULL, NULL, rt, &q),
	    TR_EINVAL);
	/* A caller built against a newer troupe, asking for more. */
	struct {
		tr_actors_query q;
		uint32_t more;
	} big;
	memset(&big, 0, sizeof(big));
	big.q.struct_size = sizeof(big);
	big.more = 1;
	assert_rc(
	    tr_actors_list(out, 1, &n, NULL, NULL, rt, &big.q), TR_ENOTSUP);
	tr_actor_info in;
	tr_actor_info_init(&in);
	assert_rc(tr_actor_info_get(&in, rt, (tr_pid){0, 1, 99}), TR_ENOPROC);
	assert_rc(tr_actor_info_get(&in, rt, (tr_pid){1, 1, 1}), TR_EINVAL);
	in.struct_size = 0;
	assert_rc(tr_actor_info_get(&in, rt, (tr_pid){0, 1, 1}), TR_EINVAL);
	tt_stop(fx);
}

/* ------------------------------------------------------------------------ */
/* Listing while actors spawn and die                                        */
/* ------------------------------------------------------------------------ */

#define CHURN_MAX 500000u /* children a churner spawns at most */

struct churn {
	_Atomic int stop;
	uint64_t spawned;
	tr_pid done_to;
};

static int child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	(void)m;
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour child_bhv = {
    .name = "info.child", .handle = child_handle};

/* Spawns children that exit on their first message, in bursts, until
 * told to stop. */
static int churn_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct churn *c = state;

	(void)m;
	if (atomic_load(&c->stop)) {
		TT_ACHECK(tr_send(ctx, c->done_to, MSG_GO, &c->spawned,
		              sizeof(c->spawned)) == TR_OK);
		return 0;
	}
	/* A bounded churn: children that wait in the run queues make the
	 * table the listings walk longer, so an unbounded one would make
	 * the test's time grow with the spawn rate. Past the bound it only
	 * keeps its turns going. */
	for (int i = 0; i < 200 && c->spawned < CHURN_MAX; i++, c->spawned++) {
		tr_pid child;
		if (tr_spawn(&child, tr_runtime_of(ctx), &child_bhv, NULL,
		        NULL) != TR_OK) {
			tt_actor_fail(__FILE__, __LINE__, "tr_spawn");
			break;
		}
		TT_ACHECK(tr_send(ctx, child, MSG_GO, NULL, 0) == TR_OK);
	}
	TT_ACHECK(tr_send(ctx, tr_self(ctx), MSG_GO, NULL, 0) == TR_OK);
	return 0;
}

static const tr_behaviour churn_bhv = {
    .name = "info.churn", .handle = churn_handle};

static void test_list_churn(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	enum { SPAWNERS = 2, ROUNDS = 200 };
	struct churn c[SPAWNERS];

	for (int i = 0; i < 500; i++)
		(void)tt_spawn(rt, &idle_bhv, NULL);
	for (int i = 0; i < SPAWNERS; i++) {
		memset(&c[i], 0, sizeof(c[i]));
		c[i].done_to = tr_port_pid(port);
		tr_pid s = tt_spawn(rt, &churn_bhv, &c[i]);
		assert_rc(tr_post(rt, s, MSG_GO, NULL, 0), TR_OK);
	}
	tr_actor_info *out = calloc(256, sizeof(*out));
	assert_non_null(out);
	int inspected = 0, gone = 0;
	for (int round = 0; round < ROUNDS; round++) {
		tr_actors_query q;
		tr_actors_query_init(&q);
		q.sort = (uint32_t)(round % 3);
		size_t n = 0, total = 0;
		uint32_t next = 0;
		tr_actor_info_init(&out[0]);
		assert_rc(
		    tr_actors_list(out, 256, &n, &total, &next, rt, &q), TR_OK);
		assert_true(n <= 256);
		assert_true(total >= 500);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(out[i].struct_size, sizeof(*out));
			assert_true(out[i].state <= TR_ACTOR_EXITING);
		}
		/* Inspect the last listed: it answers, or has died
		 * (TR_ENOPROC at once, or from its drained mailbox). */
		if (n > 0 && round % 2 == 0) {
			tr_msg *r = NULL;
			tr_actor_report rep;
			tr_actor_report_init(&rep);
			tr_pid p = out[n - 1].pid;
			int rc =
			    tr_actor_inspect(&r, &rep, rt, p, NULL, TT_WAIT_MS);
			assert_true(rc == TR_OK || rc == TR_ENOPROC);
			if (rc == TR_OK) {
				assert_true(tr_pid_eq(rep.pid, p));
				tr_msg_free(r);
				inspected++;
			} else {
				gone++;
			}
		}
	}
	for (int i = 0; i < SPAWNERS; i++)
		atomic_store(&c[i].stop, 1);
	uint64_t spawned = 0;
	for (int i = 0; i < SPAWNERS; i++) {
		uint64_t k = 0;
		tt_recv_data(port, MSG_GO, &k, sizeof(k));
		spawned += k;
	}
	print_message("%d listings beside %" PRIu64
	              " spawns and exits; %d inspected, %d gone\n",
	    ROUNDS, spawned, inspected, gone);
	tt_quiesce(rt);
	free(out);
	tt_assert_actors_ok();
	tt_stop(fx);
}

/* ------------------------------------------------------------------------ */
/* One actor in detail                                                       */
/* ------------------------------------------------------------------------ */

struct inspector {
	tr_runtime *rt;
	tr_pid pid;
	tr_inspect_opts opts;
	int rc;
	tr_msg *reply;
	tr_actor_report rep;
};

static void *inspect_thread(void *arg)
{
	struct inspector *in = arg;

	tr_actor_report_init(&in->rep);
	in->rc = tr_actor_inspect(
	    &in->reply, &in->rep, in->rt, in->pid, &in->opts, TT_WAIT_MS);
	return NULL;
}

/* Starts an inspection of `pid` on another thread and waits until the
 * request is in the held actor's mailbox. */
static void inspect_start(pthread_t *th, struct inspector *in, tr_runtime *rt,
    tr_pid pid, uint32_t flags)
{
	memset(in, 0, sizeof(*in));
	in->rt = rt;
	in->pid = pid;
	tr_inspect_opts_init(&in->opts);
	in->opts.flags = flags;
	uint32_t before = info_of(rt, pid).mailbox;
	assert_int_equal(pthread_create(th, NULL, inspect_thread, in), 0);
	assert_true(
	    TT_WAIT_FOR(info_of(rt, pid).mailbox == before + 1, TT_WAIT_MS));
}

static void test_inspect(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	struct gate *g = gate_new();
	tr_spawn_opts so;
	tr_spawn_opts_init(&so);
	so.flags = TR_SPAWN_TRAP_EXIT;
	tr_pid a;
	assert_rc(tr_spawn(&a, rt, &holder_bhv, g, &so), TR_OK);
	tr_pid b = tt_spawn(rt, &idle_bhv, NULL);
	tr_pid c = tt_spawn(rt, &idle_bhv, NULL);
	tr_pid d = tt_spawn(rt, &holder_bhv, NULL);
	tr_pid pair[2] = {b, c};
	assert_rc(tr_post(rt, a, MSG_SETUP, pair, sizeof(pair)), TR_OK);
	assert_rc(tr_post(rt, d, MSG_WATCH, &a, sizeof(a)), TR_OK);
	assert_rc(tr_register(rt, "info.a", a), TR_OK);
	tt_quiesce(rt);

	/* Held, with the request and then three messages queued. */
	gate_hold(rt, a, g, false);
	pthread_t th;
	struct inspector in;
	inspect_start(&th, &in, rt, a, 0);
	uint64_t payload = 0x1122334455667788u;
	assert_rc(tr_post(rt, a, 100, &payload, sizeof(payload)), TR_OK);
	assert_rc(tr_post(rt, a, 101, NULL, 0), TR_OK);
	assert_rc(tr_post(rt, a, 102, "sixteen bytes!!", 16), TR_OK);
	atomic_store(&g->open, 1);
	pthread_join(th, NULL);
	assert_rc(in.rc, TR_OK);
	tr_actor_report *r = &in.rep;
	assert_true(tr_pid_eq(r->pid, a));
	assert_int_equal(r->kind, TR_ACTOR_KIND_ACTOR);
	assert_int_equal(r->state, TR_ACTOR_RUNNING);
	assert_true(r->trap_exit);
	assert_string_equal(r->name, "info.a");
	assert_string_equal(r->behaviour, "info.holder");
	assert_int_equal(r->nlinks, 1);
	assert_int_equal(r->links_total, 1);
	assert_true(tr_pid_eq(r->links[0], b));
	assert_int_equal(r->nmonitors, 1);
	assert_true(tr_pid_eq(r->monitors[0].pid, c));
	assert_true(r->monitors[0].ref != 0);
	assert_int_equal(r->nmonitored_by, 1);
	assert_true(tr_pid_eq(r->monitored_by[0].pid, d));
	assert_int_equal(r->deferred, 0);
	assert_int_equal(r->mailbox, 3);
	assert_int_equal(r->nhead, 3);
	assert_int_equal(r->head[0].type, 100);
	assert_int_equal(r->head[0].size, 8);
	assert_int_equal(r->head[1].type, 101);
	assert_int_equal(r->head[1].size, 0);
	assert_int_equal(r->head[2].type, 102);
	assert_int_equal(r->head[2].size, 16);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(r->head[i].nbytes, 0);
		assert_int_equal(r->head[i].flags, 0);
		assert_true(tr_pid_is_none(r->head[i].sender));
	}
	tr_msg_free(in.reply);

	/* Payload bytes on request, cut to payload_max; a signal shows as
	 * a system message. */
	g->entered = 0;
	g->open = 0;
	tt_quiesce(rt);
	gate_hold(rt, a, g, false);
	memset(&in, 0, sizeof(in));
	in.rt = rt;
	in.pid = a;
	tr_inspect_opts_init(&in.opts);
	in.opts.flags = TR_INSPECT_PAYLOAD;
	in.opts.payload_max = 4;
	in.opts.head_max = 2;
	uint32_t before = info_of(rt, a).mailbox;
	assert_int_equal(pthread_create(&th, NULL, inspect_thread, &in), 0);
	assert_true(
	    TT_WAIT_FOR(info_of(rt, a).mailbox == before + 1, TT_WAIT_MS));
	assert_rc(tr_post(rt, a, 100, &payload, sizeof(payload)), TR_OK);
	assert_rc(tr_kill(rt, a, TR_REASON_NORMAL), TR_OK); /* trapped */
	assert_rc(tr_post(rt, a, 102, "xyz", 3), TR_OK);
	atomic_store(&g->open, 1);
	pthread_join(th, NULL);
	assert_rc(in.rc, TR_OK);
	r = &in.rep;
	assert_int_equal(r->mailbox, 3);
	assert_int_equal(r->nhead, 2);
	assert_int_equal(r->head[0].nbytes, 4);
	assert_memory_equal(
	    tr_mailbox_entry_bytes(r, &r->head[0]), &payload, 4);
	assert_int_equal(r->head[1].flags, TR_MAILBOX_SYSTEM);
	tr_msg_free(in.reply);

	/* tr_call works too; its own monitor shows among monitored_by. */
	tt_quiesce(rt);
	tr_msg *reply = NULL;
	assert_rc(
	    tr_call(&reply, rt, a, TR_MSG_ACTOR_INSPECT, NULL, 0, TT_WAIT_MS),
	    TR_OK);
	tr_actor_report rep;
	tr_actor_report_init(&rep);
	assert_rc(tr_actor_report_decode(&rep, reply), TR_OK);
	assert_int_equal(rep.nmonitored_by, 2);
	assert_int_equal(rep.mailbox, 0);
	assert_int_equal(rep.nhead, 0);
	/* A list cut short keeps its total. */
	tr_msg_free(reply);
	tr_inspect_opts o;
	tr_inspect_opts_init(&o);
	o.list_max = 1;
	assert_rc(tr_call(&reply, rt, a, TR_MSG_ACTOR_INSPECT, &o, sizeof(o),
	              TT_WAIT_MS),
	    TR_OK);
	assert_rc(tr_actor_report_decode(&rep, reply), TR_OK);
	assert_int_equal(rep.nmonitored_by, 1);
	assert_int_equal(rep.monitored_by_total, 2);
	tr_msg_free(reply);
	tt_assert_actors_ok();
	tt_stop(fx);
	free(g);
}

/* An actor asks another for its report with tr_request. */
struct asker {
	tr_pid target, report_to;
	uint64_t ref;
};

static int asker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct asker *s = state;

	if (m->type == MSG_ASK) {
		TT_ACHECK(
		    tr_request(ctx, &s->ref, s->target, TR_MSG_ACTOR_INSPECT,
		        NULL, 0, TT_WAIT_MS) == TR_OK);
		return 0;
	}
	if (m->type == TR_MSG_ACTOR_REPORT && m->ref == s->ref) {
		tr_actor_report r;
		tr_actor_report_init(&r);
		TT_ACHECK(tr_actor_report_decode(&r, m) == TR_OK);
		TT_ACHECK(tr_pid_eq(r.pid, s->target));
		TT_ACHECK(r.nlinks == 0 && r.nmonitored_by == 0);
		TT_ACHECK(tr_send(ctx, s->report_to, MSG_ANSWER, &r.handled,
		              sizeof(r.handled)) == TR_OK);
		return 0;
	}
	tt_actor_fail(__FILE__, __LINE__, "unexpected message");
	return 0;
}

static const tr_behaviour asker_bhv = {
    .name = "info.asker", .handle = asker_handle};

static void test_inspect_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	tr_pid t = tt_spawn(rt, &idle_bhv, NULL);
	for (int i = 0; i < 5; i++)
		assert_rc(tr_post(rt, t, MSG_PLAIN, NULL, 0), TR_OK);
	struct asker s = {.target = t, .report_to = tr_port_pid(port)};
	tr_pid a = tt_spawn(rt, &asker_bhv, &s);
	assert_rc(tr_post(rt, a, MSG_ASK, NULL, 0), TR_OK);
	uint64_t handled = 0;
	tt_recv_data(port, MSG_ANSWER, &handled, sizeof(handled));
	assert_int_equal(handled, 6); /* five, and the request */
	/* The request reached no behaviour: idle_bhv ignores everything,
	 * and the asker failed on nothing. */
	tt_assert_actors_ok();
	tt_stop(fx);
}

/* A dead pid, an actor that dies with the request queued, bad options. */
static void test_inspect_errors(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_msg *reply = NULL;
	tr_actor_report rep;
	tr_actor_report_init(&rep);

	tr_pid t = tt_spawn(rt, &idle_bhv, NULL);
	assert_rc(tr_kill(rt, t, TR_REASON_KILL), TR_OK);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, t), TT_WAIT_MS));
	assert_rc(tr_actor_inspect(&reply, &rep, rt, t, NULL, TT_WAIT_MS),
	    TR_ENOPROC);
	assert_rc(
	    tr_call(&reply, rt, t, TR_MSG_ACTOR_INSPECT, NULL, 0, TT_WAIT_MS),
	    TR_ENOPROC);

	/* Dies at the end of the callback it is held in: the queued
	 * request is answered TR_ENOPROC, long before the timeout. */
	struct gate *g = gate_new();
	tr_pid a = tt_spawn(rt, &gate_bhv, g);
	gate_hold(rt, a, g, true);
	pthread_t th;
	struct inspector in;
	inspect_start(&th, &in, rt, a, 0);
	atomic_store(&g->open, 1);
	pthread_join(th, NULL);
	assert_rc(in.rc, TR_ENOPROC);

	/* Bad sizes and limits. */
	tr_pid b = tt_spawn(rt, &idle_bhv, NULL);
	tr_inspect_opts o;
	tr_inspect_opts_init(&o);
	o.struct_size = 3;
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, &o, TT_WAIT_MS), TR_EINVAL);
	o.struct_size = 0;
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, &o, TT_WAIT_MS), TR_EINVAL);
	tr_inspect_opts_init(&o);
	o.head_max = TR_INSPECT_HEAD_MAX + 1;
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, &o, TT_WAIT_MS), TR_EINVAL);
	tr_inspect_opts_init(&o);
	o.flags = 0x80;
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, &o, TT_WAIT_MS), TR_EINVAL);
	rep.struct_size = 0;
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, NULL, TT_WAIT_MS), TR_EINVAL);
	tr_actor_report_init(&rep);
	assert_rc(tr_actor_inspect(
	              &reply, &rep, rt, (tr_pid){1, 1, 1}, NULL, TT_WAIT_MS),
	    TR_EINVAL);
	/* The actor's side refuses a malformed request itself. */
	tr_inspect_opts_init(&o);
	o.struct_size = 2;
	assert_rc(tr_call(&reply, rt, b, TR_MSG_ACTOR_INSPECT, &o, sizeof(o),
	              TT_WAIT_MS),
	    TR_EINVAL);
	uint32_t big = 1000;
	assert_rc(tr_call(&reply, rt, b, TR_MSG_ACTOR_INSPECT, &big,
	              sizeof(big), TT_WAIT_MS),
	    TR_EINVAL);
	/* A message of another type does not decode. */
	tr_msg *m = NULL;
	assert_rc(tr_msg_alloc(&m, rt, MSG_PLAIN, 8), TR_OK);
	assert_rc(tr_actor_report_decode(&rep, m), TR_EINVAL);
	tr_msg_free(m);
	assert_rc(tr_msg_alloc(&m, rt, TR_MSG_ACTOR_REPORT, 8), TR_OK);
	memset(m->data, 0, 8);
	assert_rc(tr_actor_report_decode(&rep, m), TR_EINVAL);
	tr_msg_free(m);
	/* Still alive and well. */
	assert_rc(
	    tr_actor_inspect(&reply, &rep, rt, b, NULL, TT_WAIT_MS), TR_OK);
	tr_msg_free(reply);
	tt_assert_actors_ok();
	tt_stop(fx);
	free(g);
}

/* A port answers while its thread receives. */
static void *port_recv_thread(void *arg)
{
	tr_port *p = arg;
	tr_msg *m = NULL;

	TT_ACHECK(tr_port_recv(&m, p, TT_WAIT_MS) == TR_OK);
	TT_ACHECK(m != NULL && m->type == MSG_GO);
	tr_msg_free(m);
	return NULL;
}

static void test_inspect_port(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	tr_port *port = tt_port(fx);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, port_recv_thread, port), 0);
	tr_msg *reply = NULL;
	tr_actor_report rep;
	tr_actor_report_init(&rep);
	assert_rc(tr_actor_inspect(
	              &reply, &rep, rt, tr_port_pid(port), NULL, TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(rep.kind, TR_ACTOR_KIND_PORT);
	assert_string_equal(rep.behaviour, "");
	tr_msg_free(reply);
	assert_int_equal(
	    info_of(rt, tr_port_pid(port)).kind, TR_ACTOR_KIND_PORT);
	assert_rc(tr_post(rt, tr_port_pid(port), MSG_GO, NULL, 0), TR_OK);
	pthread_join(th, NULL);
	tt_assert_actors_ok();
	tt_stop(fx);
}

int main(void)
{
	tt_save_signals();
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_pid_text),
	    TT_TEST(test_counts_concurrent),
	    TT_TEST(test_top_mailbox),
	    TT_TEST(test_top_handled),
	    TT_TEST(test_pages),
	    TT_TEST(test_list_errors),
	    TT_TEST(test_list_churn),
	    TT_TEST(test_inspect),
	    TT_TEST(test_inspect_from_actor),
	    TT_TEST(test_inspect_errors),
	    TT_TEST(test_inspect_port),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
