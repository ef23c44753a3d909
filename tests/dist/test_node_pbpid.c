/*
 * Pids and protobuf messages in payloads (troupe/pid.h, troupe/pb.h).
 *
 * This process is node "tnode"; its port stands for the actor whose pid
 * travels. The others run pbpid_main.c, whose "relay" decodes the pids
 * it is sent and sends on (pbpid_proto.h). What is checked: a pid in a
 * payload reaches its actor from another node, and from a third one it
 * was passed on to; stale pids (a dead actor, an earlier incarnation)
 * decode as TR_ENOPROC; malformed encodings are TR_EINVAL; a protobuf
 * message with pids in it round-trips between nodes; an unpack over its
 * budget, and malformed protobuf bytes, fail with an error at the
 * receiver. Each multi-process test runs over ipc:// and tcp://.
 */
#include "common.h"

#include <unistd.h>

#include <troupe/pb.h>
#include <troupe/pid.h>

#include "node_child.h"
#include "pbpid_proto.h"
#include "pbpid_test.pb-c.h"

#define TICK_MS 100
#define WAIT_MS 10000
#define MAX_CHILDREN 4

#include "node_env.h"

/* The next message on the port of type `type`; others are dropped. */
static tr_msg *expect(struct env *e, uint32_t type)
{
	for (;;) {
		tr_msg *m;
		assert_rc(tr_port_recv(&m, e->port, WAIT_MS), TR_OK);
		if (m->type == type)
			return m;
		tr_msg_free(m);
	}
}

static int32_t expect_rc(struct env *e, uint32_t type)
{
	tr_msg *m = expect(e, type);
	int32_t rc;
	assert_int_equal(m->size, sizeof(rc));
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	return rc;
}

static size_t enc(unsigned char *buf, size_t cap, struct env *e, tr_pid pid)
{
	size_t len;
	assert_rc(tr_pid_encode(buf, cap, &len, e->node, pid), TR_OK);
	return len;
}

static int start_node(struct env *e, const char *name, const char *connect)
{
	const char *args[3] = {"--connect", connect, NULL};
	return child_up(e, name, connect ? args : NULL);
}

static tr_pid relay_of(struct env *e, const char *node)
{
	tr_pid pid;
	assert_rc(
	    tr_node_whereis(&pid, e->node, node, "relay", WAIT_MS), TR_OK);
	return pid;
}

static void expect_arrived(struct env *e, tr_pid from, const char *node)
{
	tr_msg *m = expect(e, TT_ARRIVED);
	assert_true(tr_pid_eq(m->sender, from));
	assert_int_equal(m->size, strlen(node));
	assert_memory_equal(m->data, node, m->size);
	tr_msg_free(m);
}

static int dummy_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour dummy_b = {"dummy", NULL, dummy_handle, NULL};

/* One node: the encoding itself, its refusals, and staleness of local
 * pids. */
static void test_pid_local(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	tr_pid port = tr_port_pid(e->port), back;
	unsigned char b[TR_PID_ENCODED_MAX + 8], c[TR_PID_ENCODED_MAX + 8];
	size_t len = enc(b, sizeof(b), e, port), need;
	assert_int_equal(len, TR_PID_ENCODED_SIZE(5));
	assert_int_equal(b[0], TR_PID_ENCODING_V1);
	assert_int_equal(b[1], 5);
	assert_memory_equal(b + 2, "tnode", 5);
	assert_int_equal(tr_pid_encoded_size(b, len), len);
	assert_int_equal(tr_pid_encoded_size(b, len - 1), 0);
	assert_rc(tr_pid_decode(&back, e->node, b, len), TR_OK);
	assert_true(tr_pid_eq(back, port));

	/* Refusals. */
	assert_rc(tr_pid_encode(b, 4, &need, e->node, port), TR_EMSGSIZE);
	assert_int_equal(need, len);
	assert_rc(tr_pid_encode(b, sizeof(b), &need, e->node, TR_PID_NONE),
	    TR_EINVAL);
	for (size_t l = 0; l < len; l++) {
		assert_rc(tr_pid_decode(&back, e->node, b, l), TR_EINVAL);
		assert_true(tr_pid_is_none(back));
	}
	assert_rc(tr_pid_decode(&back, e->node, b, len + 1), TR_EINVAL);
	memcpy(c, b, len);
	c[0] = 2; /* a version this build does not know */
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_EINVAL);
	memcpy(c, b, len);
	c[1] = 255; /* an overlong name: the bytes end before it does */
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_EINVAL);
	memcpy(c, b, len);
	c[3] = '\0'; /* a NUL in the name */
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_EINVAL);
	memcpy(c, b, len);
	memset(c + len - 4, 0, 4); /* gen 0 */
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_EINVAL);
	memcpy(c, b, len);
	memset(c + 7, 0, 8); /* incarnation 0 */
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_EINVAL);
	unsigned char z[2] = {1, 0}; /* an empty name */
	assert_rc(tr_pid_decode(&back, e->node, z, 2), TR_EINVAL);
	assert_rc(tr_pid_decode(&back, e->node, NULL, 0), TR_EINVAL);

	/* An earlier incarnation of ours: stale. */
	memcpy(c, b, len);
	c[7] ^= 1;
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_ENOPROC);

	/* A dead actor: its pid decoded earlier fails on send, and its
	 * encoding decodes as stale. */
	tr_pid d;
	assert_rc(tr_spawn(&d, e->rt, &dummy_b, NULL, NULL), TR_OK);
	len = enc(c, sizeof(c), e, d);
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_OK);
	assert_rc(tr_post(e->rt, back, 1, "x", 1), TR_OK);
	assert_rc(tr_kill(e->rt, d, TR_REASON_KILL), TR_OK);
	for (int i = 0; i < 1000 && tr_is_alive(e->rt, d); i++)
		usleep(1000);
	assert_rc(tr_post(e->rt, back, 1, "x", 1), TR_ENOPROC);
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_ENOPROC);

	/* A node never met: a pid that names it (and encodes as it came),
	 * but that nothing reaches until it is connected. */
	unsigned char g[TR_PID_ENCODED_MAX];
	size_t gl = TR_PID_ENCODED_SIZE(5);
	memcpy(g, b, gl);
	memcpy(g + 2, "ghost", 5);
	assert_rc(tr_pid_decode(&back, e->node, g, gl), TR_OK);
	assert_int_not_equal(back.node, 0);
	assert_int_equal(enc(c, sizeof(c), e, back), gl);
	assert_memory_equal(c, g, gl);
	assert_rc(tr_post(e->rt, back, 1, "x", 1), TR_ENOPROC);
}

/* One node: protobuf payloads with pids, to the port and back. */
static void test_pb_local(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	uint32_t t = tr_pb_type(&tt__job__descriptor);
	assert_true(t >= TR_PB_TYPE_BASE && t < TR_MSG_LOCAL_BASE);
	assert_int_equal(t, tr_pb_type(&tt__job__descriptor));
	assert_int_not_equal(t, tr_pb_type(&troupe__pid__descriptor));
	assert_int_equal(tr_pb_type(NULL), 0);

	tr_pid port = tr_port_pid(e->port), back;
	Tt__Job j = TT__JOB__INIT;
	Troupe__Pid p;
	char name[TR_NODE_NAME_MAX + 1];
	assert_rc(tr_pb_pid_set(&p, name, e->node, port), TR_OK);
	assert_string_equal(p.node, "tnode");
	j.reply_to = &p;
	j.text = "hello";
	assert_rc(tr_post_pb(e->rt, port, TR_PB_TYPE_AUTO, &j.base), TR_OK);
	assert_rc(tr_post_pb(e->rt, port, 77, &j.base), TR_OK);
	assert_rc(tr_post_pb(e->rt, port, TR_MSG_SYSTEM, &j.base), TR_EINVAL);

	tr_msg *m = expect(e, t);
	ProtobufCMessage *pm;
	assert_rc(tr_pb_unpack(&pm, m, &tt__job__descriptor, 4096), TR_OK);
	Tt__Job *r = (Tt__Job *)pm;
	assert_string_equal(r->text, "hello");
	assert_rc(tr_pb_pid_get(&back, e->node, r->reply_to), TR_OK);
	assert_true(tr_pid_eq(back, port));
	tr_pb_free(pm);
	/* Over the budget: refused, nothing leaks (ASan's leak check). */
	assert_rc(tr_pb_unpack(&pm, m, &tt__job__descriptor, 40), TR_EMSGSIZE);
	assert_null(pm);
	assert_rc(tr_pb_unpack(&pm, m, &tt__job__descriptor, 0), TR_EINVAL);
	tr_msg_free(m);
	m = expect(e, 77);
	tr_msg_free(m);

	/* Malformed bytes: every truncation of a packed Job that protobuf
	 * refuses, and bytes that are no protobuf at all. */
	static const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	assert_rc(tr_msg_alloc(&m, e->rt, t, sizeof(junk)), TR_OK);
	memcpy(m->data, junk, sizeof(junk));
	assert_rc(tr_pb_unpack(&pm, m, &tt__job__descriptor, 4096), TR_EINVAL);
	tr_msg_free(m);
	unsigned char packed[512];
	size_t n = tt__job__pack(&j, packed);
	for (size_t l = 1; l < n; l++) {
		assert_rc(tr_msg_alloc(&m, e->rt, t, l), TR_OK);
		memcpy(m->data, packed, l);
		int rc = tr_pb_unpack(&pm, m, &tt__job__descriptor, 4096);
		if (rc == TR_OK)
			tr_pb_free(pm); /* a shorter valid Job */
		else
			assert_rc(rc, TR_EINVAL);
		tr_msg_free(m);
	}

	/* Pids that cannot be: refused. */
	Troupe__Pid q = TROUPE__PID__INIT;
	assert_rc(tr_pb_pid_get(&back, e->node, &q), TR_EINVAL);
	q.node = "";
	q.incarnation = 1;
	q.gen = 1;
	assert_rc(tr_pb_pid_get(&back, e->node, &q), TR_EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	q.node = longname;
	assert_rc(tr_pb_pid_get(&back, e->node, &q), TR_EINVAL);
	assert_rc(tr_pb_pid_get(&back, e->node, NULL), TR_EINVAL);
}

/* A pid of this node, in a payload to another node, reaches its actor
 * from there. */
static void test_pid_travels(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	start_node(e, "beta", NULL);
	tr_pid rb = relay_of(e, "beta");
	unsigned char b[TR_PID_ENCODED_MAX];
	size_t len = enc(b, sizeof(b), e, tr_port_pid(e->port));
	assert_rc(tr_port_send(e->port, rb, TT_RELAY, b, len), TR_OK);
	expect_arrived(e, rb, "beta");

	/* Malformed at the receiver: an error back, not a crash. */
	assert_rc(tr_port_send(e->port, rb, TT_RELAY, b, len - 1), TR_OK);
	assert_int_equal(expect_rc(e, TT_RELAY_FAIL), TR_EINVAL);
	assert_rc(tr_port_send(e->port, rb, TT_RELAY, "\x01\xff", 2), TR_OK);
	assert_int_equal(expect_rc(e, TT_RELAY_FAIL), TR_EINVAL);
	/* The relay still works. */
	assert_rc(tr_port_send(e->port, rb, TT_RELAY, b, len), TR_OK);
	expect_arrived(e, rb, "beta");
}

/* A pid of this node passed through beta arrives at gamma meaning the
 * same actor; and gamma's relay, named by this node, reaches beta. */
static void test_pid_third_node(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	int kb = start_node(e, "beta", NULL);
	start_node(e, "gamma", e->kids[kb].url);
	tr_pid rb = relay_of(e, "beta"), rc = relay_of(e, "gamma");
	unsigned char b[2 * TR_PID_ENCODED_MAX];
	size_t len = enc(b, sizeof(b), e, rc);
	len += enc(b + len, sizeof(b) - len, e, tr_port_pid(e->port));
	assert_rc(tr_port_send(e->port, rb, TT_RELAY, b, len), TR_OK);
	expect_arrived(e, rc, "gamma");
}

/* After its node restarts, a pid of the old incarnation is stale: here
 * and at the restarted node itself. */
static void test_pid_stale_incarnation(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	int k = start_node(e, "beta", NULL);
	tr_pid old = relay_of(e, "beta"), back;
	unsigned char b[TR_PID_ENCODED_MAX];
	size_t len = enc(b, sizeof(b), e, old);
	assert_rc(tr_pid_decode(&back, e->node, b, len), TR_OK);
	assert_true(tr_pid_eq(back, old));

	kill_child(&e->kids[k]);
	usleep(5 * 1000); /* the incarnation is the start time in ms */
	start_node(e, "beta", NULL);
	tr_pid now = relay_of(e, "beta");
	assert_rc(tr_pid_decode(&back, e->node, b, len), TR_ENOPROC);
	assert_true(tr_pid_is_none(back));
	/* The new beta refuses its own earlier incarnation too. */
	assert_rc(tr_port_send(e->port, now, TT_RELAY, b, len), TR_OK);
	assert_int_equal(expect_rc(e, TT_RELAY_FAIL), TR_ENOPROC);
	unsigned char c[TR_PID_ENCODED_MAX];
	size_t cl = enc(c, sizeof(c), e, tr_port_pid(e->port));
	assert_rc(tr_port_send(e->port, now, TT_RELAY, c, cl), TR_OK);
	expect_arrived(e, now, "beta");
}

/* A later incarnation of a connected node that a payload only names is
 * hearsay: it decodes (a pid of a node not connected), and the pids of
 * the incarnation that is connected stay good. */
static void test_pid_hearsay_incarnation(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	start_node(e, "beta", NULL);
	tr_pid now = relay_of(e, "beta"), back;
	unsigned char b[TR_PID_ENCODED_MAX], c[TR_PID_ENCODED_MAX];
	size_t len = enc(b, sizeof(b), e, now);
	memcpy(c, b, len);
	/* Bit 46 of the incarnation (byte 5 of it, after "beta"): a start
	 * time in ms some two thousand years from now. */
	c[2 + 4 + 5] ^= 0x40;
	assert_rc(tr_pid_decode(&back, e->node, c, len), TR_OK);
	assert_false(tr_pid_eq(back, now));
	assert_rc(tr_pid_decode(&back, e->node, b, len), TR_OK);
	assert_true(tr_pid_eq(back, now));
	unsigned char p[TR_PID_ENCODED_MAX];
	size_t plen = enc(p, sizeof(p), e, tr_port_pid(e->port));
	assert_rc(tr_port_send(e->port, back, TT_RELAY, p, plen), TR_OK);
	expect_arrived(e, now, "beta");
}

/* A protobuf message with pids round-trips between two nodes; over its
 * budget or malformed, the receiver answers with the error. */
static void test_pb_nodes(void **state)
{
	struct env *e = *state;
	assert_rc(node_up(e, "tnode", false), TR_OK);
	start_node(e, "beta", NULL);
	tr_pid rb = relay_of(e, "beta"), port = tr_port_pid(e->port), back;
	uint32_t t = tr_pb_type(&tt__job__descriptor);

	Tt__Job j = TT__JOB__INIT;
	Troupe__Pid p[2], *pp[2] = {&p[0], &p[1]};
	char names[2][TR_NODE_NAME_MAX + 1];
	assert_rc(tr_pb_pid_set(&p[0], names[0], e->node, port), TR_OK);
	assert_rc(tr_pb_pid_set(&p[1], names[1], e->node, rb), TR_OK);
	assert_string_equal(p[1].node, "beta");
	j.reply_to = &p[0];
	j.text = "hi";
	j.others = pp;
	j.n_others = 2;
	unsigned char buf[4096];
	size_t n = tt__job__pack(&j, buf);
	assert_rc(tr_port_send(e->port, rb, t, buf, n), TR_OK);

	tr_msg *m = expect(e, t);
	assert_true(tr_pid_eq(m->sender, rb));
	ProtobufCMessage *pm;
	assert_rc(tr_pb_unpack(&pm, m, &tt__job__descriptor, 4096), TR_OK);
	tr_msg_free(m);
	Tt__Job *r = (Tt__Job *)pm;
	assert_string_equal(r->text, "re: hi");
	assert_rc(tr_pb_pid_get(&back, e->node, r->reply_to), TR_OK);
	assert_true(tr_pid_eq(back, rb));
	assert_int_equal(r->n_others, 2);
	assert_rc(tr_pb_pid_get(&back, e->node, r->others[0]), TR_OK);
	assert_true(tr_pid_eq(back, port));
	assert_rc(tr_pb_pid_get(&back, e->node, r->others[1]), TR_OK);
	assert_true(tr_pid_eq(back, rb));
	tr_pb_free(pm);

	/* Over the relay's budget. */
	static char big[3 * TT_JOB_BUDGET];
	memset(big, 'x', sizeof(big) - 1);
	j.text = big;
	j.n_others = 0;
	static unsigned char bigbuf[4 * TT_JOB_BUDGET];
	n = tt__job__pack(&j, bigbuf);
	assert_rc(tr_port_send(e->port, rb, t, bigbuf, n), TR_OK);
	assert_int_equal(expect_rc(e, TT_PB_FAIL), TR_EMSGSIZE);
	/* Not protobuf. */
	assert_rc(tr_port_send(e->port, rb, t, "\xff\xff\xff", 3), TR_OK);
	assert_int_equal(expect_rc(e, TT_PB_FAIL), TR_EINVAL);
	/* A Pid that cannot be (gen 0) in a valid Job. */
	j.text = "bad";
	p[0].gen = 0;
	n = tt__job__pack(&j, buf);
	assert_rc(tr_port_send(e->port, rb, t, buf, n), TR_OK);
	assert_int_equal(expect_rc(e, TT_PB_FAIL), TR_EINVAL);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, teardown),              \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, teardown)
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_pid_local, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(test_pb_local, setup_ipc, teardown),
	    BOTH(test_pid_travels),
	    BOTH(test_pid_third_node),
	    BOTH(test_pid_stale_incarnation),
	    BOTH(test_pid_hearsay_incarnation),
	    BOTH(test_pb_nodes),
	};
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
