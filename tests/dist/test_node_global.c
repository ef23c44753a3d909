/*
 * Multi-process tests of cluster-wide names (troupe/global.h,
 * docs/global.md): this process is node "t0", the others run the global
 * test node (global_node.c), whose "gtest" actor registers, looks up and
 * sends to names on the test's request.
 *
 * - A name registered on one node is seen on all, reached by a global
 *   send from any node, gone everywhere after an unregister, after its
 *   actor dies, and after its node is killed (SIGKILL) within the
 *   failure-detection bound; a registration for another node's pid goes
 *   to its owner.
 * - Two nodes register the same names at once: exactly one wins each
 *   name, and every node agrees.
 * - A partition (two separate pairs) registers the same names on both
 *   sides; once healed, one owner everywhere, the loser killed (DOWN
 *   killed) or notified (TR_MSG_GLOBAL_CONFLICT) as registered.
 * - A frozen node (SIGSTOP) delays a registration only until it is
 *   declared down.
 * - Malformed and out-of-bound messages from a peer are counted and
 *   dropped; bad API arguments get their error codes.
 * - A grant whose claimer never ends its claim is released after its
 *   bound.
 *
 * Every wait is bounded; the fixture (node_env.h) kills and reaps the
 * children.
 */
#include "common.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pid.h>

#include "global.pb-c.h"
#include "global_int.h"
#include "global_proto.h"

_Static_assert(
    GT_T_SYNC == TR__GLOBAL_T_SYNC && GT_T_CLAIM == TR__GLOBAL_T_CLAIM,
    "the test node's copy of the servers' types");

#include "node_child.h"

#define TICK_MS 100
#define WAIT_MS 10000
#define MAX_CHILDREN 4

#include "node_env.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static tr_pid gtest_of(struct env *e, const char *child)
{
	tr_pid pid;
	int64_t t = now_ms();
	int rc = tr_node_whereis(&pid, e->node, child, "gtest", WAIT_MS);
	if (rc != TR_OK) {
		size_t k = 0;
		(void)tr_node_list(NULL, 0, &k, e->node);
		fprintf(stderr,
		    "lookup of gtest on %s: %s after %lld ms, %zu "
		    "nodes up here\n",
		    child, tr_strerror(rc), (long long)(now_ms() - t), k);
	}
	assert_rc(rc, TR_OK);
	return pid;
}

static uint64_t next_token = 1;

/* The next message of `type` on the port within `ms` whose first 8 bytes
 * are `token` (0: any); others are dropped. NULL on a timeout. */
static tr_msg *port_wait(
    struct env *e, uint32_t type, uint64_t token, int64_t ms)
{
	int64_t end = now_ms() + ms;
	while (now_ms() < end) {
		tr_msg *m;
		if (tr_port_recv(&m, e->port, end - now_ms()) != TR_OK)
			return NULL;
		uint64_t t = 0;
		if (m->size >= sizeof(t))
			memcpy(&t, m->data, sizeof(t));
		if (m->type == type && (token == 0 || t == token))
			return m;
		tr_msg_free(m);
	}
	return NULL;
}

/* Child `child` spawns a holder and registers it as `name` (unless
 * spawn_only); the holder's pid goes to *pid. Returns the outcome. */
static int child_reg(struct env *e, const char *child, const char *name,
    int method, bool spawn_only, tr_pid *pid)
{
	struct gt_reg rq;
	memset(&rq, 0, sizeof(rq));
	rq.token = next_token++;
	rq.method = method;
	rq.spawn_only = spawn_only;
	snprintf(rq.name, sizeof(rq.name), "%s", name);
	assert_rc(
	    tr_port_send(e->port, gtest_of(e, child), GT_REG, &rq, sizeof(rq)),
	    TR_OK);
	tr_msg *m = port_wait(e, GT_REG_DONE, rq.token, WAIT_MS);
	assert_non_null(m);
	struct gt_reg_done d;
	assert_int_equal(m->size, sizeof(d));
	memcpy(&d, m->data, sizeof(d));
	tr_msg_free(m);
	assert_rc(tr_pid_decode(pid, e->node, d.pid, d.len), TR_OK);
	return d.rc;
}

static tr_msg *child_call(struct env *e, const char *child, uint32_t type,
    const void *data, size_t size)
{
	tr_msg *r = NULL;
	assert_rc(
	    tr_call(&r, e->rt, gtest_of(e, child), type, data, size, WAIT_MS),
	    TR_OK);
	return r;
}

static int32_t child_i32(
    struct env *e, const char *child, uint32_t type, const char *name)
{
	tr_msg *r = child_call(e, child, type, name, name ? strlen(name) : 0);
	int32_t v;
	assert_int_equal(r->size, sizeof(v));
	memcpy(&v, r->data, sizeof(v));
	tr_msg_free(r);
	return v;
}

/* whereis on a child: TR_OK with *pid, or its error. */
static int child_where(
    struct env *e, const char *child, const char *name, tr_pid *pid)
{
	tr_msg *r = child_call(e, child, GT_WHEREIS, name, strlen(name));
	struct gt_where w;
	assert_int_equal(r->size, sizeof(w));
	memcpy(&w, r->data, sizeof(w));
	tr_msg_free(r);
	*pid = TR_PID_NONE;
	if (w.rc != TR_OK)
		return w.rc;
	return tr_pid_decode(pid, e->node, w.pid, w.len);
}

static struct gt_status child_status(
    struct env *e, const char *child, const char *name)
{
	tr_msg *r = child_call(e, child, GT_STATUS, name, strlen(name));
	struct gt_status st;
	assert_int_equal(r->size, sizeof(st));
	memcpy(&st, r->data, sizeof(st));
	tr_msg_free(r);
	return st;
}

static tr_global_stats child_stats(struct env *e, const char *child)
{
	tr_msg *r = child_call(e, child, GT_STATS, NULL, 0);
	tr_global_stats st;
	assert_int_equal(r->size, sizeof(st));
	memcpy(&st, r->data, sizeof(st));
	tr_msg_free(r);
	return st;
}

/* Whether `name` is `pid` (TR_PID_NONE: unknown) here and on each child
 * of kids[0..nk-1]; polled until `ms` passed. */
static bool agree(struct env *e, const char *const *kids, int nk,
    const char *name, tr_pid pid, int64_t ms)
{
	int64_t end = now_ms() + ms;
	do {
		tr_pid p;
		int rc = tr_global_whereis(&p, e->node, name);
		bool ok = tr_pid_is_none(pid)
		              ? rc == TR_ENOENT
		              : rc == TR_OK && tr_pid_eq(p, pid);
		for (int i = 0; ok && i < nk; i++) {
			rc = child_where(e, kids[i], name, &p);
			ok = tr_pid_is_none(pid)
			         ? rc == TR_ENOENT
			         : rc == TR_OK && tr_pid_eq(p, pid);
		}
		if (ok)
			return true;
		usleep(20 * 1000);
	} while (now_ms() < end);
	/* What each node has, for the failure's report. */
	tr_pid p;
	fprintf(stderr, "name '%s': here %s", name,
	    tr_strerror(tr_global_whereis(&p, e->node, name)));
	for (int i = 0; i < nk; i++)
		fprintf(stderr, ", %s %s", kids[i],
		    tr_strerror(child_where(e, kids[i], name, &p)));
	fprintf(stderr, "\n");
	return false;
}

static size_t here_count(struct env *e)
{
	size_t k = 0;
	assert_rc(tr_node_list(NULL, 0, &k, e->node), TR_OK);
	return k;
}

/* Waits until this node has `here` peers and each child `there`. */
static bool wait_mesh(
    struct env *e, const char *const *kids, int nk, size_t here, uint32_t there)
{
	int64_t end = now_ms() + WAIT_MS;
	while (now_ms() < end) {
		bool ok = here_count(e) == here;
		for (int i = 0; ok && i < nk; i++)
			ok = (uint32_t)child_i32(e, kids[i], GT_NODES, NULL) ==
			     there;
		if (ok)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

static void start_mesh(struct env *e, const char *const *kids, int nk)
{
	assert_rc(node_up(e, "t0", false), TR_OK);
	const char *seed = tr_node_listen_url(e->node, 0);
	for (int i = 0; i < nk; i++) {
		const char *args[] = {"--seed", seed, NULL};
		assert_true(
		    child_start(e, kids[i], "secret", args, false) >= 0);
	}
	assert_true(wait_mesh(e, kids, nk, (size_t)nk, (uint32_t)nk));
}

static void ping_via(struct env *e, const char *from, const char *name)
{
	uint8_t enc[TR_PID_ENCODED_MAX];
	size_t len = 0;
	assert_rc(tr_pid_encode(
	              enc, sizeof(enc), &len, e->node, tr_port_pid(e->port)),
	    TR_OK);
	if (from == NULL) {
		assert_rc(
		    tr_global_post(e->node, name, GT_PING, enc, len), TR_OK);
	} else {
		struct gt_send sd;
		memset(&sd, 0, sizeof(sd));
		snprintf(sd.name, sizeof(sd.name), "%s", name);
		memcpy(sd.pid, enc, len);
		sd.len = (uint32_t)len;
		tr_msg *r = child_call(e, from, GT_SEND, &sd, sizeof(sd));
		int32_t rc;
		memcpy(&rc, r->data, sizeof(rc));
		tr_msg_free(r);
		assert_rc(rc, TR_OK);
	}
	tr_msg *m = port_wait(e, GT_PONG, 0, WAIT_MS);
	assert_non_null(m);
	assert_int_equal(m->size, strlen(name));
	assert_memory_equal(m->data, name, strlen(name));
	tr_msg_free(m);
}

/* ---- register, look up, send, remove ------------------------------------ */

static void test_basic(void **state)
{
	struct env *e = *state;
	const char *kids[] = {"g1", "g2"};
	start_mesh(e, kids, 2);

	tr_pid p;
	assert_rc(child_reg(e, "g1", "svc", TR_GLOBAL_KILL, false, &p), TR_OK);
	assert_true(agree(e, kids, 2, "svc", p, WAIT_MS));
	ping_via(e, NULL, "svc"); /* global send from here */
	ping_via(e, "g2", "svc"); /* and from a third node */
	tr_global_info v[4];
	tr_global_info_init(&v[0]);
	size_t k = 0;
	assert_rc(tr_global_names(v, 4, &k, e->node), TR_OK);
	assert_int_equal(k, 1);
	assert_string_equal(v[0].name, "svc");
	assert_true(tr_pid_eq(v[0].pid, p));

	/* Unregistered from a node that does not own it. */
	assert_rc(tr_global_unregister(e->node, "svc"), TR_OK);
	assert_true(agree(e, kids, 2, "svc", TR_PID_NONE, WAIT_MS));

	/* Its actor dies: gone everywhere. */
	assert_rc(child_reg(e, "g1", "svc", TR_GLOBAL_KILL, false, &p), TR_OK);
	assert_true(agree(e, kids, 2, "svc", p, WAIT_MS));
	assert_rc(child_i32(e, "g1", GT_KILL, "svc"), TR_OK);
	assert_true(agree(e, kids, 2, "svc", TR_PID_NONE, WAIT_MS));

	/* A pid of another node: the request goes to its owner. */
	tr_pid q;
	assert_rc(child_reg(e, "g1", "fw", 0, true, &q), TR_OK);
	assert_rc(tr_global_register(e->node, "fw", q, NULL, 5000), TR_OK);
	assert_true(agree(e, kids, 2, "fw", q, WAIT_MS));

	/* A pid of this node (the port). */
	tr_pid me = tr_port_pid(e->port);
	assert_rc(
	    tr_global_register(e->node, "t0.port", me, NULL, 5000), TR_OK);
	assert_true(agree(e, kids, 2, "t0.port", me, WAIT_MS));

	/* Node g2 is killed: its names go everywhere within the failure
	 * detection bound (4 ticks), the others stay. */
	tr_pid l;
	assert_rc(child_reg(e, "g2", "last", TR_GLOBAL_KILL, false, &l), TR_OK);
	assert_true(agree(e, kids, 2, "last", l, WAIT_MS));
	kill(e->kids[1].pid, SIGKILL);
	assert_true(agree(e, kids, 1, "last", TR_PID_NONE, WAIT_MS));
	assert_true(agree(e, kids, 1, "fw", q, 0));
	assert_true(agree(e, kids, 1, "t0.port", me, 0));
}

/* ---- two nodes register the same names at once -------------------------- */

#define RACE_N 40

static void test_race(void **state)
{
	struct env *e = *state;
	const char *kids[] = {"g1", "g2"};
	start_mesh(e, kids, 2);
	struct gt_race rq[2];
	for (int i = 0; i < 2; i++) {
		memset(&rq[i], 0, sizeof(rq[i]));
		rq[i].token = next_token++;
		rq[i].count = RACE_N;
		snprintf(rq[i].prefix, sizeof(rq[i].prefix), "race.");
	}
	tr_pid g1 = gtest_of(e, "g1"), g2 = gtest_of(e, "g2");
	assert_rc(
	    tr_port_send(e->port, g1, GT_RACE, &rq[0], sizeof(rq[0])), TR_OK);
	assert_rc(
	    tr_port_send(e->port, g2, GT_RACE, &rq[1], sizeof(rq[1])), TR_OK);
	uint32_t won = 0;
	for (int i = 0; i < 2; i++) {
		tr_msg *m = port_wait(e, GT_RACE_DONE, 0, 25000);
		assert_non_null(m);
		struct gt_race_done d;
		memcpy(&d, m->data, sizeof(d));
		tr_msg_free(m);
		won += d.won;
	}
	assert_int_equal(won, RACE_N);
	for (int i = 0; i < RACE_N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "race.%d", i);
		tr_pid p;
		assert_rc(tr_global_whereis(&p, e->node, name), TR_OK);
		assert_true(agree(e, kids, 2, name, p, WAIT_MS));
	}
	size_t k = 0;
	assert_rc(tr_global_names(NULL, 0, &k, e->node), TR_OK);
	assert_int_equal(k, RACE_N);
}

/* ---- a partition heals -------------------------------------------------- */

static void test_partition(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "t0", false), TR_OK);
	const char *seed = tr_node_listen_url(e->node, 0);
	const char *a1[] = {"--seed", seed, NULL};
	assert_true(child_start(e, "g1", "secret", a1, false) >= 0);
	const char *left[] = {"g1"};
	assert_true(wait_mesh(e, left, 1, 1, 1));

	/* The same names on both sides; the earlier registration wins: "k"
	 * on this side, "n" and "u" on the other (g2 + g3, which this
	 * process cannot reach: g3 registers them before it is ready). */
	tr_pid k1, n1, u1;
	assert_rc(child_reg(e, "g1", "k", TR_GLOBAL_KILL, false, &k1), TR_OK);
	usleep(30 * 1000);
	assert_true(child_start(e, "g2", "secret", NULL, false) >= 0);
	const char *a3[] = {"--seed", e->kids[1].url, "--reg", "k:0", "--reg",
	    "n:1", "--reg", "u:2", NULL};
	assert_true(child_start(e, "g3", "secret", a3, false) >= 0);
	usleep(30 * 1000);
	assert_rc(child_reg(e, "g1", "n", TR_GLOBAL_NOTIFY, false, &n1), TR_OK);
	assert_rc(
	    child_reg(e, "g1", "u", TR_GLOBAL_UNREGISTER, false, &u1), TR_OK);
	/* This side sees its own. */
	assert_true(agree(e, left, 1, "k", k1, WAIT_MS));
	assert_true(agree(e, left, 1, "n", n1, WAIT_MS));
	assert_true(agree(e, left, 1, "u", u1, WAIT_MS));

	/* Heal. */
	assert_rc(
	    tr_node_connect(e->node, e->kids[1].url, WAIT_MS, NULL), TR_OK);
	const char *all[] = {"g1", "g2", "g3"};
	assert_true(wait_mesh(e, all, 3, 3, 3));
	assert_true(agree(e, all, 3, "k", k1, WAIT_MS));
	tr_pid n3, u3;
	char owner[TR_NODE_NAME_MAX + 1];
	assert_rc(child_where(e, "g3", "n", &n3), TR_OK);
	assert_rc(tr_node_name_of(owner, sizeof(owner), e->node, n3), TR_OK);
	assert_string_equal(owner, "g3");
	assert_true(agree(e, all, 3, "n", n3, WAIT_MS));
	assert_rc(child_where(e, "g3", "u", &u3), TR_OK);
	assert_rc(tr_node_name_of(owner, sizeof(owner), e->node, u3), TR_OK);
	assert_string_equal(owner, "g3");
	assert_true(agree(e, all, 3, "u", u3, WAIT_MS));

	/* The losers: killed (DOWN killed), notified, just unregistered. */
	int64_t end = now_ms() + WAIT_MS;
	struct gt_status st;
	do {
		st = child_status(e, "g3", "k");
		if (st.alive == 0)
			break;
		usleep(20 * 1000);
	} while (now_ms() < end);
	assert_int_equal(st.alive, 0);
	assert_int_equal(st.reason, TR_REASON_KILLED);
	end = now_ms() + WAIT_MS;
	do {
		st = child_status(e, "g1", "n");
		if (st.conflicts > 0)
			break;
		usleep(20 * 1000);
	} while (now_ms() < end);
	assert_int_equal(st.alive, 1);
	assert_int_equal(st.conflicts, 1);
	st = child_status(e, "g1", "u");
	assert_int_equal(st.alive, 1);
	assert_int_equal(st.conflicts, 0);
	/* The winners live on. */
	assert_int_equal(child_status(e, "g1", "k").alive, 1);
	assert_int_equal(child_status(e, "g3", "n").alive, 1);
	assert_int_equal(child_stats(e, "g3").conflicts, 1);
	assert_int_equal(child_stats(e, "g1").conflicts, 2);
}

/* ---- a frozen node ------------------------------------------------------ */

static void test_frozen(void **state)
{
	struct env *e = *state;
	const char *kids[] = {"g1", "g2"};
	start_mesh(e, kids, 2);
	kill(e->kids[1].pid, SIGSTOP);
	int64_t t0 = now_ms();
	tr_pid me = tr_port_pid(e->port);
	/* The vote of g2 is awaited until g2 is declared down (4 ticks),
	 * then the claim goes on without it: well within its timeout. */
	assert_rc(tr_global_register(e->node, "fz", me, NULL, 20000), TR_OK);
	assert_true(now_ms() - t0 < 15000);
	assert_true(agree(e, kids, 1, "fz", me, WAIT_MS));
	kill(e->kids[1].pid, SIGCONT);
	/* Back (reconnected): it gets the name by sync. */
	assert_true(wait_mesh(e, kids, 2, 2, 2));
	assert_true(agree(e, kids, 2, "fz", me, WAIT_MS));
}

/* ---- hostile peers, bad arguments --------------------------------------- */

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}
static const tr_behaviour idle_b = {"idle", NULL, idle_handle, NULL};

static void send_sync(struct env *e, tr_pid to, GEntry **ents, size_t n)
{
	Troupe__Global__Msg m = TROUPE__GLOBAL__MSG__INIT;
	m.entries = ents;
	m.n_entries = n;
	size_t len = protobuf_c_message_get_packed_size(&m.base);
	uint8_t *buf = malloc(len);
	assert_non_null(buf);
	protobuf_c_message_pack(&m.base, buf);
	assert_rc(tr_port_send(e->port, to, GT_T_SYNC, buf, len), TR_OK);
	free(buf);
}

static void test_hostile(void **state)
{
	struct env *e = *state;
	const char *kids[] = {"g1"};
	start_mesh(e, kids, 1);
	tr_pid srv;
	assert_rc(tr_node_whereis(
	              &srv, e->node, "g1", TR_GLOBAL_SERVER_NAME, WAIT_MS),
	    TR_OK);

	/* Bytes that are no message, from a peer: counted, dropped. */
	assert_rc(child_i32(e, "g1", GT_JUNK, "t0"), TR_OK);
	tr_global_stats st;
	int64_t end = now_ms() + WAIT_MS;
	do {
		tr_global_stats_init(&st);
		assert_rc(tr_global_stats_get(&st, e->node), TR_OK);
		/* The count comes before the log line: wait for both. */
		if (st.malformed > 0 &&
		    log_has(e, "GLOBAL t0: dropped a message from node g1"))
			break;
		usleep(20 * 1000);
	} while (now_ms() < end);
	assert_int_equal(st.malformed, 1);
	assert_true(log_has(e, "GLOBAL t0: dropped a message from node g1"));

	/* A sync that claims a pid of the receiver's own for this node. */
	uint8_t enc[TR_PID_ENCODED_MAX];
	size_t len = 0;
	assert_rc(tr_pid_encode(enc, sizeof(enc), &len, e->node, srv), TR_OK);
	GEntry bad = TROUPE__GLOBAL__ENTRY__INIT;
	bad.name = "evil";
	bad.pid.data = enc;
	bad.pid.len = len;
	GEntry *one[1] = {&bad};
	send_sync(e, srv, one, 1);
	/* Over the bound: 600 entries, 512 taken. */
	uint8_t me[TR_PID_ENCODED_MAX];
	size_t mlen = 0;
	assert_rc(
	    tr_pid_encode(me, sizeof(me), &mlen, e->node, tr_port_pid(e->port)),
	    TR_OK);
	static GEntry ents[600];
	static GEntry *ptrs[600];
	static char names[600][16];
	for (int i = 0; i < 600; i++) {
		troupe__global__entry__init(&ents[i]);
		snprintf(names[i], sizeof(names[i]), "many.%d", i);
		ents[i].name = names[i];
		ents[i].pid.data = me;
		ents[i].pid.len = mlen;
		ptrs[i] = &ents[i];
	}
	send_sync(e, srv, ptrs, 600);
	end = now_ms() + WAIT_MS;
	do {
		st = child_stats(e, "g1");
		if (st.malformed >= 1 && st.names_refused >= 88 &&
		    st.names >= 512)
			break;
		usleep(20 * 1000);
	} while (now_ms() < end);
	assert_int_equal(st.malformed, 1);
	assert_int_equal(st.names_refused, 88);
	assert_int_equal(st.names, 512);
	tr_pid p;
	assert_rc(child_where(e, "g1", "evil", &p), TR_ENOENT);

	/* Bad arguments. */
	tr_pid a, dead;
	assert_rc(tr_spawn(&a, e->rt, &idle_b, NULL, NULL), TR_OK);
	assert_rc(tr_spawn(&dead, e->rt, &idle_b, NULL, NULL), TR_OK);
	assert_rc(tr_kill(e->rt, dead, TR_REASON_KILL), TR_OK);
	while (tr_is_alive(e->rt, dead))
		usleep(1000);
	char longname[TR_GLOBAL_NAME_MAX + 2];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_rc(tr_global_register(NULL, "x", a, NULL, 1000), TR_EINVAL);
	assert_rc(tr_global_register(e->node, NULL, a, NULL, 1000), TR_EINVAL);
	assert_rc(tr_global_register(e->node, "", a, NULL, 1000), TR_EINVAL);
	assert_rc(
	    tr_global_register(e->node, longname, a, NULL, 1000), TR_EINVAL);
	assert_rc(tr_global_register(e->node, "x", TR_PID_NONE, NULL, 1000),
	    TR_EINVAL);
	assert_rc(tr_global_register(e->node, "x", a, NULL, -1), TR_EINVAL);
	tr_global_opts o;
	tr_global_opts_init(&o);
	o.method = 9;
	assert_rc(tr_global_register(e->node, "x", a, &o, 1000), TR_EINVAL);
	o.struct_size = 0;
	assert_rc(tr_global_register(e->node, "x", a, &o, 1000), TR_EINVAL);
	assert_rc(
	    tr_global_register(e->node, "x", dead, NULL, 1000), TR_ENOPROC);
	longname[TR_GLOBAL_NAME_MAX] = '\0'; /* 255 bytes: fine */
	assert_rc(tr_global_register(e->node, longname, a, NULL, 5000), TR_OK);
	assert_true(agree(e, kids, 1, longname, a, WAIT_MS));
	/* The same again: fine; another name for it, or the name for
	 * another pid: taken. */
	assert_rc(tr_global_register(e->node, longname, a, NULL, 5000), TR_OK);
	assert_rc(
	    tr_global_register(e->node, "other", a, NULL, 5000), TR_EEXIST);
	assert_rc(tr_global_register(
	              e->node, longname, tr_port_pid(e->port), NULL, 5000),
	    TR_EEXIST);
	/* A name g1 holds (for a pid of its own). */
	tr_pid h;
	assert_rc(child_reg(e, "g1", "theirs", 0, false, &h), TR_OK);
	assert_rc(tr_global_register(
	              e->node, "theirs", tr_port_pid(e->port), NULL, 5000),
	    TR_EEXIST);
	assert_rc(tr_global_whereis(&p, e->node, "nope"), TR_ENOENT);
	assert_rc(tr_global_whereis(NULL, e->node, "nope"), TR_EINVAL);
	assert_rc(tr_global_whereis(&p, e->node, ""), TR_EINVAL);
	assert_rc(tr_global_unregister(e->node, "nope"), TR_ENOENT);
	assert_rc(tr_global_unregister(e->node, NULL), TR_EINVAL);
	assert_rc(tr_global_post(e->node, "nope", 1, NULL, 0), TR_ENOENT);
	assert_rc(tr_global_send(NULL, "x", 1, NULL, 0), TR_EINVAL);
	assert_rc(
	    tr_global_register_then(NULL, NULL, "x", a, NULL, 1000, NULL, NULL),
	    TR_EINVAL);
	size_t k;
	assert_rc(tr_global_names(NULL, 0, NULL, e->node), TR_EINVAL);
	assert_rc(tr_global_names(NULL, 1, &k, e->node), TR_EINVAL);
	assert_rc(tr_global_stats_get(NULL, e->node), TR_EINVAL);
	(void)tr_kill(e->rt, a, TR_REASON_KILL);
}

/* A grant to a claimer that never commits nor aborts (this process sends
 * a CLAIM by hand and ignores the vote) holds the name for its bound (8
 * ticks, at least 2 s), then is released: a registration of that name on
 * the granting node waits for it, retrying, and then succeeds. */
static void test_grant_bound(void **state)
{
	struct env *e = *state;
	const char *kids[] = {"g1"};
	start_mesh(e, kids, 1);
	tr_pid srv;
	assert_rc(tr_node_whereis(
	              &srv, e->node, "g1", TR_GLOBAL_SERVER_NAME, WAIT_MS),
	    TR_OK);
	uint8_t me[TR_PID_ENCODED_MAX];
	size_t mlen = 0;
	assert_rc(
	    tr_pid_encode(me, sizeof(me), &mlen, e->node, tr_port_pid(e->port)),
	    TR_OK);
	GEntry ent = TROUPE__GLOBAL__ENTRY__INIT;
	ent.name = "granted";
	ent.pid.data = me;
	ent.pid.len = mlen;
	Troupe__Global__Msg m = TROUPE__GLOBAL__MSG__INIT;
	m.entry = &ent;
	m.claim = 424242;
	uint8_t buf[512];
	size_t len = protobuf_c_message_get_packed_size(&m.base);
	assert_true(len <= sizeof(buf));
	protobuf_c_message_pack(&m.base, buf);
	assert_rc(tr_port_send(e->port, srv, GT_T_CLAIM, buf, len), TR_OK);
	int64_t t0 = now_ms();
	tr_pid h;
	assert_rc(child_reg(e, "g1", "granted", 0, false, &h), TR_OK);
	assert_true(now_ms() - t0 >= 1000); /* it did wait for the grant */
	assert_true(agree(e, kids, 1, "granted", h, WAIT_MS));
	tr_global_stats st = child_stats(e, "g1");
	assert_int_equal(st.grants_expired, 1);
	assert_true(st.claims_retried > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_basic, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(test_basic, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(test_race, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_partition, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(test_frozen, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_grant_bound, setup_tcp, teardown),
	};
	/* TT_NODE_FILTER=test_race runs one test (a glob, as cmocka's). */
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
