/*
 * Multi-process tests of clusters (docs/distribution.md, "Clusters"):
 * this process is node "tnode", the others run the test node program
 * (node_main.c) with --seed pointing at this node only.
 *
 * - Five nodes from one seed: each child knows only this node, and every
 *   node ends up connected to the four others (tr_node_list here, the
 *   "nodes" actor of each child there); tr_node_list's fields.
 * - --connect-all 0 keeps the cluster a star.
 * - A member killed with SIGKILL: one NODEDOWN here and on each survivor,
 *   and it leaves the survivors' lists; restarted with the same name (a new
 * incarnation), it is reconnected to everyone by itself, with one NODEUP here.
 * - A transient loss (SIGSTOP past the failure-detection bound, SIGCONT):
 *   reconnected by itself, one NODEDOWN and one NODEUP, with reasons.
 * - Node monitors on a port; a subscription to every node reports the
 *   nodes up already.
 * - Formation and convergence: five nodes from one seed, timed (printed,
 *   not asserted); a member killed with SIGKILL is gone from every
 *   survivor's list within the failure-detection bound (4 ticks, plus
 *   the test's own polling), and each survivor saw one NODEDOWN.
 *
 * Every wait is bounded; the fixture (node_env.h) kills and reaps the
 * children, and each test runs over ipc:// and tcp://127.0.0.1.
 */
#include "common.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <troupe/node.h>

#include "node_child.h"
#include "test_node_proto.h"

#define TICK_MS 100
#define WAIT_MS 15000
#define QUIET_MS 1500
#define MAX_CHILDREN 8

#include "node_env.h"

static const char *const kid_names[] = {"n1", "n2", "n3", "n4"};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t here_count(struct env *e)
{
	tr_node_info v[8];
	tr_node_info_init(&v[0]);
	size_t k = 0;
	assert_rc(tr_node_list(v, 8, &k, e->node), TR_OK);
	return k;
}

/* The nodes child `name` says it is connected to, as one string of names
 * each ended by '\n'; "" when it cannot be asked. */
static void child_nodes(struct env *e, const char *name, char *buf, size_t cap)
{
	buf[0] = '\0';
	tr_pid pid;
	if (tr_node_whereis(&pid, e->node, name, "nodes", 2000) != TR_OK)
		return;
	tr_msg *r;
	if (tr_call(&r, e->rt, pid, TT_NODES, NULL, 0, 2000) != TR_OK)
		return;
	size_t l = r->size < cap - 1 ? r->size : cap - 1;
	memcpy(buf, r->data, l);
	buf[l] = '\0';
	tr_msg_free(r);
}

/* What child `name`'s nodemon saw of node `of`; {~0, ~0} if it cannot be
 * asked. */
static struct tt_node_events child_events(
    struct env *e, const char *name, const char *of)
{
	struct tt_node_events ev = {UINT32_MAX, UINT32_MAX};
	tr_pid pid;
	if (tr_node_whereis(&pid, e->node, name, "nodemon", 2000) != TR_OK)
		return ev;
	tr_msg *r;
	if (tr_call(&r, e->rt, pid, TT_NODE_EVENTS, of, strlen(of), 2000) !=
	    TR_OK)
		return ev;
	if (r->size == sizeof(ev))
		memcpy(&ev, r->data, sizeof(ev));
	tr_msg_free(r);
	return ev;
}

static size_t lines(const char *s)
{
	size_t k = 0;
	for (; *s; s++)
		k += *s == '\n';
	return k;
}

/* Waits until this node has `here` peers and each child of `kids` lists
 * `there` nodes. */
static bool wait_mesh(struct env *e, const char *const *kids, int nk,
    size_t here, size_t there, int64_t ms)
{
	int64_t end = now_ms() + ms;
	char buf[2048];
	while (now_ms() < end) {
		bool ok = here_count(e) == here;
		for (int i = 0; ok && i < nk; i++) {
			child_nodes(e, kids[i], buf, sizeof(buf));
			ok = lines(buf) == there;
		}
		if (ok)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static int start_kids(struct env *e, int k, const char *extra)
{
	const char *seed = tr_node_listen_url(e->node, 0);
	for (int i = 0; i < k; i++) {
		const char *args[] = {"--seed", seed,
		    extra ? "--connect-all" : NULL, extra, NULL};
		if (child_start(e, kid_names[i], "secret", args, false) < 0)
			return -1;
	}
	return 0;
}

/* The next node event on `port` within `ms`: its type, or 0. */
static uint32_t next_event(tr_port *port, int64_t ms, tr_node_event *ev)
{
	tr_msg *m;
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		if (tr_port_recv(&m, port, end - now_ms()) != TR_OK)
			return 0;
		uint32_t t = m->type;
		if ((t == TR_MSG_NODEUP || t == TR_MSG_NODEDOWN) &&
		    m->size >= TR_NODE_EVENT_V2_SIZE) {
			memcpy(ev, m->data, sizeof(*ev));
			tr_msg_free(m);
			return t;
		}
		tr_msg_free(m);
	}
	return 0;
}

/* Counts the events of node `name` of each kind over `ms`. */
static void count_events(
    tr_port *port, const char *name, int64_t ms, int *up, int *down)
{
	tr_node_event ev;
	int64_t end = now_ms() + ms;
	uint32_t t;
	while (now_ms() < end &&
	       (t = next_event(port, end - now_ms(), &ev)) != 0) {
		if (strcmp(ev.node, name) != 0)
			continue;
		*up += t == TR_MSG_NODEUP;
		*down += t == TR_MSG_NODEDOWN;
	}
}

/* Waits for an event of `type` for `name`, counting the others of it. */
static bool wait_event(tr_port *port, uint32_t type, const char *name,
    int64_t ms, tr_node_event *out)
{
	int64_t end = now_ms() + ms;
	uint32_t t;
	while (
	    now_ms() < end && (t = next_event(port, end - now_ms(), out)) != 0)
		if (t == type && strcmp(out->node, name) == 0)
			return true;
	return false;
}

static void test_mesh_from_one_seed(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	assert_int_equal(start_kids(e, 4, NULL), 0);
	assert_true(wait_mesh(e, kid_names, 4, 4, 4, WAIT_MS));

	/* tr_node_list: every child, with its incarnation, URL, up-time. */
	tr_node_info v[8];
	tr_node_info_init(&v[0]);
	size_t k = 0;
	assert_rc(tr_node_list(v, 8, &k, e->node), TR_OK);
	assert_int_equal(k, 4);
	for (int i = 0; i < 4; i++) {
		bool found = false;
		for (size_t j = 0; j < k; j++) {
			if (strcmp(v[j].name, kid_names[i]) != 0)
				continue;
			found = true;
			assert_int_equal(v[j].struct_size, sizeof(v[0]));
			assert_true(v[j].incarnation != 0);
			assert_string_equal(v[j].url, e->kids[i].url);
			assert_true(v[j].up_ms < 60000);
		}
		assert_true(found);
	}
	/* A short array: the count says how many there are. */
	assert_rc(tr_node_list(v, 2, &k, e->node), TR_OK);
	assert_int_equal(k, 4);
	assert_rc(tr_node_list(NULL, 0, &k, e->node), TR_OK);
	assert_int_equal(k, 4);
	tr_node_info bad;
	memset(&bad, 0, sizeof(bad));
	assert_rc(tr_node_list(&bad, 1, &k, e->node), TR_EINVAL);

	tr_node_stats st;
	tr_node_stats_init(&st);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.peers_up, 4);
	assert_int_equal(st.members_refused, 0);
}

/* The failure-detection bound: 4 ticks of silence. A killed node's
 * connections close at once, so it is usually far less; the slack is
 * the polling of this test (a call to each child) on a loaded machine. */
#define DETECT_MS (4 * TICK_MS)
#define POLL_SLACK_MS 3000

static void test_form_and_converge(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	int64_t t0 = now_ms();
	assert_int_equal(start_kids(e, 4, NULL), 0);
	int64_t started = now_ms();
	assert_true(wait_mesh(e, kid_names, 4, 4, 4, WAIT_MS));
	int64_t meshed = now_ms();
	fprintf(stderr,
	    "  %s: 5 nodes from one seed: meshed %lld ms after the first "
	    "start (%lld ms after the last)\n",
	    e->tcp ? "tcp" : "ipc", (long long)(meshed - t0),
	    (long long)(meshed - started));

	/* n3 dies: gone from every survivor's list within the bound. */
	kill_child(&e->kids[2]);
	int64_t t1 = now_ms();
	const char *surv[] = {"n1", "n2", "n4"};
	assert_true(wait_mesh(e, surv, 3, 3, 3, WAIT_MS));
	int64_t gone = now_ms() - t1;
	fprintf(stderr, "  %s: the loss of a node seen by all 4 survivors "
	                "in %lld ms\n",
	    e->tcp ? "tcp" : "ipc", (long long)gone);
	assert_true(gone <= DETECT_MS + POLL_SLACK_MS);
	char buf[2048];
	for (int i = 0; i < 3; i++) {
		child_nodes(e, surv[i], buf, sizeof(buf));
		assert_null(strstr(buf, "n3\n"));
		struct tt_node_events c = child_events(e, surv[i], "n3");
		assert_int_equal(c.downs, 1);
		assert_int_equal(c.ups, 1);
	}
}

static void test_star_without_connect_all(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	assert_int_equal(start_kids(e, 4, "0"), 0);
	assert_true(wait_mesh(e, kid_names, 4, 4, 1, WAIT_MS));
	usleep(QUIET_MS * 1000);
	/* Still a star: each child knows this node only. */
	char buf[2048];
	for (int i = 0; i < 4; i++) {
		child_nodes(e, kid_names[i], buf, sizeof(buf));
		assert_string_equal(buf, "tnode\n");
	}
	assert_int_equal(here_count(e), 4);
}

static void test_kill_and_restart(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	tr_port *mon;
	assert_rc(tr_port_open(&mon, e->rt), TR_OK);
	assert_rc(tr_node_monitor_port(e->node, mon, NULL, true), TR_OK);
	assert_int_equal(start_kids(e, 3, NULL), 0);
	assert_true(wait_mesh(e, kid_names, 3, 3, 3, WAIT_MS));
	/* One NODEUP each, in whatever order they came. */
	tr_node_event ev;
	int ups[3] = {0, 0, 0};
	uint32_t t;
	while ((ups[0] == 0 || ups[1] == 0 || ups[2] == 0) &&
	       (t = next_event(mon, WAIT_MS, &ev)) != 0)
		for (int i = 0; i < 3; i++)
			if (strcmp(ev.node, kid_names[i]) == 0)
				ups[i] += t == TR_MSG_NODEUP ? 1 : 100;
	for (int i = 0; i < 3; i++)
		assert_int_equal(ups[i], 1);

	/* n2 dies: one NODEDOWN here, and the survivors drop it. */
	kill_child(&e->kids[1]);
	assert_true(wait_event(mon, TR_MSG_NODEDOWN, "n2", WAIT_MS, &ev));
	assert_true(ev.reason[0] != '\0');
	const char *surv[] = {"n1", "n3"};
	assert_true(wait_mesh(e, surv, 2, 2, 2, WAIT_MS));

	/* Restarted with the same name: reconnected to all, one NODEUP. */
	const char *seed = tr_node_listen_url(e->node, 0);
	const char *args[] = {"--seed", seed, NULL};
	assert_true(child_start(e, "n2", "secret", args, false) >= 0);
	assert_true(wait_event(mon, TR_MSG_NODEUP, "n2", WAIT_MS, &ev));
	assert_true(wait_mesh(e, kid_names, 3, 3, 3, WAIT_MS));
	int up = 0, down = 0;
	count_events(mon, "n2", QUIET_MS, &up, &down);
	assert_int_equal(up, 0);
	assert_int_equal(down, 0);
	/* On each survivor too: n2 went down once and came up twice (its
	 * first run, and the restart). */
	for (int i = 0; i < 2; i++) {
		struct tt_node_events c = child_events(e, surv[i], "n2");
		assert_int_equal(c.downs, 1);
		assert_int_equal(c.ups, 2);
	}
	tr_port_close(mon);
}

static void test_transient_loss(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	tr_port *mon;
	assert_rc(tr_port_open(&mon, e->rt), TR_OK);
	assert_rc(tr_node_monitor_port(e->node, mon, "n1", true), TR_OK);
	tr_node_event ev;
	assert_true(wait_event(mon, TR_MSG_NODEDOWN, "n1", WAIT_MS, &ev));
	assert_string_equal(ev.reason, "not connected");
	assert_int_equal(start_kids(e, 1, NULL), 0);
	assert_true(wait_event(mon, TR_MSG_NODEUP, "n1", WAIT_MS, &ev));
	assert_string_equal(ev.reason, "connected");
	tr_node_info v[2];
	tr_node_info_init(&v[0]);
	size_t k = 0;
	assert_rc(tr_node_list(v, 2, &k, e->node), TR_OK);
	assert_int_equal(k, 1);
	uint64_t inc = v[0].incarnation;

	/* Frozen past 4 ticks: declared down; thawed: back by itself. */
	kill(e->kids[0].pid, SIGSTOP);
	assert_true(wait_event(mon, TR_MSG_NODEDOWN, "n1", WAIT_MS, &ev));
	assert_string_equal(ev.reason, "no heartbeat for 4 ticks");
	usleep(10 * TICK_MS * 1000);
	kill(e->kids[0].pid, SIGCONT);
	assert_true(wait_event(mon, TR_MSG_NODEUP, "n1", WAIT_MS, &ev));
	int up = 0, down = 0;
	count_events(mon, "n1", QUIET_MS, &up, &down);
	assert_int_equal(up, 0);
	assert_int_equal(down, 0);
	assert_rc(tr_node_list(v, 2, &k, e->node), TR_OK);
	assert_int_equal(k, 1);
	assert_true(v[0].incarnation == inc); /* the same run of it */
	tr_port_close(mon);
}

static void test_monitor_reports_up(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	assert_int_equal(start_kids(e, 2, NULL), 0);
	assert_true(wait_mesh(e, kid_names, 2, 2, 2, WAIT_MS));
	tr_port *mon;
	assert_rc(tr_port_open(&mon, e->rt), TR_OK);
	assert_rc(tr_node_monitor_port(e->node, mon, NULL, true), TR_OK);
	bool seen[2] = {false, false};
	tr_node_event ev;
	for (int i = 0; i < 2; i++) {
		assert_int_equal(next_event(mon, WAIT_MS, &ev), TR_MSG_NODEUP);
		assert_string_equal(ev.reason, "already up");
		for (int j = 0; j < 2; j++)
			seen[j] |= strcmp(ev.node, kid_names[j]) == 0;
	}
	assert_true(seen[0] && seen[1]);
	/* Off: nothing more, even when a node goes. */
	assert_rc(tr_node_monitor_port(e->node, mon, NULL, false), TR_OK);
	kill_child(&e->kids[0]);
	assert_int_equal(next_event(mon, QUIET_MS, &ev), 0);
	assert_rc(tr_node_monitor_port(NULL, mon, NULL, true), TR_EINVAL);
	assert_rc(tr_node_monitor_port(e->node, NULL, NULL, true), TR_EINVAL);
	tr_port_close(mon);
}

/* TROUPE_SEEDS, read by the children at their start (they inherit this
 * process's environment). */
static void test_seeds_from_env(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	assert_int_equal(
	    setenv("TROUPE_SEEDS", tr_node_listen_url(e->node, 0), 1), 0);
	int a = child_start(e, "n1", "secret", NULL, false);
	int b = child_start(e, "n2", "secret", NULL, false);
	unsetenv("TROUPE_SEEDS");
	assert_true(a >= 0 && b >= 0);
	assert_true(wait_mesh(e, kid_names, 2, 2, 2, WAIT_MS));
}

struct src_arg {
	const char *url;
	int calls;
};

static int src_resolve(void *user, tr_node_seed_add_fn *add, void *sink)
{
	struct src_arg *a = user;
	a->calls++;
	add(sink, "not a url"); /* ignored */
	add(sink, a->url);
	return TR_OK;
}

static const tr_node_seed_source test_src = {src_resolve, 200};

/* A seed source of the caller's (what a DNS source would be): asked at
 * start and then periodically, its URLs dialled. */
static void test_seed_source(void **state)
{
	struct env *e = *state;
	int k = child_start(e, "n1", "secret", NULL, false);
	assert_true(k >= 0);
	char url[300];
	url_for(e, url, sizeof(url), "tnode", false);
	const char *listen[2] = {url, NULL};
	struct src_arg arg = {e->kids[k].url, 0};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "tnode";
	o.listen = listen;
	o.cookie = "secret";
	o.tick_ms = TICK_MS;
	o.seed_source = &test_src;
	o.seed_user = &arg;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_OK);
	int64_t end = now_ms() + WAIT_MS;
	while (here_count(e) != 1 && now_ms() < end)
		usleep(50 * 1000);
	assert_int_equal(here_count(e), 1);
	usleep(5 * 200 * 1000);
	tr_node_stats st;
	tr_node_stats_init(&st);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.members_known, 2); /* the seed URL and n1 */
	tr_node_stop(e->node); /* the source is read until the stop */
	e->node = NULL;
	assert_true(arg.calls >= 2);

	/* Bad seeds are refused at the start. */
	const char *bad[] = {"", NULL};
	o.seed_source = NULL;
	o.seeds = bad;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_EINVAL);
	o.seeds = NULL;
	o.connect_all = 7;
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_EINVAL);
	e->node = NULL;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)
	const struct CMUnitTest tests[] = {
	    BOTH(test_mesh_from_one_seed),
	    BOTH(test_form_and_converge),
	    BOTH(test_star_without_connect_all),
	    BOTH(test_kill_and_restart),
	    BOTH(test_transient_loss),
	    BOTH(test_monitor_reports_up),
	    BOTH(test_seeds_from_env),
	    BOTH(test_seed_source),
	};
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
