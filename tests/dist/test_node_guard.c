/*
 * Multi-process tests of what a node must withstand: parties that have
 * not proved the cookie (a Hello that claims a connected peer's name),
 * peers that keep dialling each other, peers that send what only has a
 * meaning inside a process (local-only message types), and the safe way
 * to start a child on a remote supervisor (by behaviour name).
 *
 * Real processes (node_main.c) and real nng sockets; a "raw peer" in this
 * process speaks the protocol itself (the handshake machine of hs.c over
 * nng push0/pull0 sockets), to send what a node never would.
 */
#include "common.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include <troupe/node.h>
#include <troupe/sup.h>

#include "codec.h"
#include "hs.h"
#include "node_child.h"
#include "node_int.h"
#include "test_node_proto.h"
#include "troupe.pb-c.h"

#define TICK_MS 100
#define FLOOD_TICK_MS 500
#define FLOOD_TICK_STR "500"
#define WAIT_MS 10000
#define MAX_CHILDREN 4
#define T_INC 777u /* this node's incarnation */

#include "node_env.h"

/* This node with a known incarnation and a short handshake deadline,
 * ticking every `tick_ms`. */
static void guard_node_up_tick(struct env *e, uint32_t tick_ms)
{
	struct node_conf nc;
	node_conf_init(&nc, e, "tnode", false);
	nc.o.tick_ms = tick_ms;
	nc.o.incarnation = T_INC;
	nc.o.handshake_ms = 1000;
	assert_rc(tr_node_start(&e->node, e->rt, &nc.o), TR_OK);
}

static void guard_node_up(struct env *e)
{
	guard_node_up_tick(e, TICK_MS);
}

static size_t pack(uint8_t **buf, const Troupe__Wire__Frame *f)
{
	size_t len;
	assert_rc(tr__frame_encode(buf, &len, f), TR_OK);
	return len;
}

static void raw_send(nng_socket s, const uint8_t *buf, size_t len)
{
	assert_int_equal(nng_send(s, (void *)buf, len, 0), 0);
}

/* An opening Hello from someone who knows no cookie. */
static void send_hello(
    nng_socket s, const char *name, uint64_t inc, const char *url)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__Hello h = TROUPE__WIRE__HELLO__INIT;
	Troupe__Wire__NodeId id = TROUPE__WIRE__NODE_ID__INIT;
	uint8_t nonce[TR__HS_NONCE_LEN];
	char *urls[1] = {(char *)url};
	memset(nonce, 0x33, sizeof(nonce));
	id.name = (char *)name;
	id.incarnation = inc;
	h.major = TROUPE__WIRE__VERSION__PROTOCOL_MAJOR;
	h.node = &id;
	h.n_listen = 1;
	h.listen = urls;
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	f.body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f.hello = &h;
	uint8_t *buf;
	size_t len = pack(&buf, &f);
	raw_send(s, buf, len);
	free(buf);
}

/* A connected peer stays up, and keeps delivering, however many Hellos
 * with its name (and a higher or the same incarnation) come from
 * connections that never prove the cookie. */
static void test_hostile_hello(void **state)
{
	struct env *e = *state;
	guard_node_up(e);
	const char *args[] = {"--inc", "5000", NULL};
	int k = child_start(e, "alpha", "secret", args, false);
	assert_true(k >= 0);
	char peer[TR_NODE_NAME_MAX + 1];
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, peer), TR_OK);
	tr_pid echo = remote_echo(e, "alpha");
	call_ok(e, echo);

	char back[320];
	url_for(e, back, sizeof(back), "mallory", false);
	nng_socket socks[4];
	for (int round = 0; round < 4; round++) {
		nng_socket *s = &socks[round];
		assert_int_equal(nng_push0_open(s), 0);
		assert_int_equal(
		    nng_dial(*s, tr_node_listen_url(e->node, 0), NULL, 0), 0);
		nng_setopt_ms(*s, NNG_OPT_SENDTIMEO, 2000);
		send_hello(*s, "alpha", round % 2 == 0 ? 5001 : 5000, back);
		/* The "restarted" and "reconnecting" branches of old. */
		for (int i = 0; i < 5; i++) {
			tt_sleep_ms(50);
			call_ok(e, echo);
		}
	}
	tt_sleep_ms(6 * TICK_MS);
	call_ok(e, echo);
	assert_false(log_has(e, "node alpha is down"));
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.peers_up, 1);
	/* The accepts those Hellos cost end at the handshake deadline. */
	int64_t until = tt_now_ms() + 5000;
	do {
		tt_sleep_ms(50);
		assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	} while (st.handshakes_pending != 0 && tt_now_ms() < until);
	assert_int_equal(st.handshakes_pending, 0);
	assert_true(st.handshakes_timed_out + st.conns_closed_deadline >= 4);
	call_ok(e, echo);
	for (int i = 0; i < 4; i++)
		nng_close(socks[i]);
}

struct keeper {
	tr_node *node;
	const char *urls[2];
	atomic_bool stop;
	atomic_int fails;
	pthread_t thread;
};

/* The running keeper, stopped by the teardown too when a test fails
 * before it could stop it (its node is about to be freed). */
static struct keeper *keeper_running;

static void keeper_stop(void)
{
	if (keeper_running == NULL)
		return;
	atomic_store(&keeper_running->stop, true);
	pthread_join(keeper_running->thread, NULL);
	keeper_running = NULL;
}

static int guard_teardown(void **state)
{
	keeper_stop();
	return teardown(state);
}

static void *keep_connecting(void *arg)
{
	struct keeper *k = arg;
	for (int i = 0; !atomic_load(&k->stop); i++) {
		if (tr_node_connect(k->node, k->urls[i % 2], 2000, NULL) !=
		    TR_OK)
			atomic_fetch_add(&k->fails, 1);
		tt_sleep_ms(20);
	}
	return NULL;
}

/* Both nodes dial each other again and again (under two URLs on tcp,
 * "127.0.0.1" and "localhost"): they converge on one pair, nothing is
 * ever declared down, and every call succeeds. */
static void test_mutual_dialing(void **state)
{
	struct env *e = *state;
	guard_node_up(e);
	char mine[320];
	snprintf(mine, sizeof(mine), "%s", tr_node_listen_url(e->node, 0));
	const char *args[] = {"--keep-connecting", mine, NULL};
	int k = child_start(e, "alpha", "secret", args, false);
	assert_true(k >= 0);
	struct keeper kp = {.node = e->node};
	char alias[320];
	snprintf(alias, sizeof(alias), "%s", e->kids[k].url);
	if (e->tcp) {
		const char *port = strrchr(e->kids[k].url, ':');
		snprintf(alias, sizeof(alias), "tcp://localhost%s", port);
	}
	kp.urls[0] = e->kids[k].url;
	kp.urls[1] = alias;
	assert_int_equal(
	    pthread_create(&kp.thread, NULL, keep_connecting, &kp), 0);
	keeper_running = &kp;
	tt_sleep_ms(300);
	tr_pid echo = remote_echo(e, "alpha");
	int64_t until = tt_now_ms() + 4000;
	int calls = 0;
	while (tt_now_ms() < until) {
		call_ok(e, echo);
		calls++;
		tt_sleep_ms(10);
	}
	keeper_stop();
	assert_true(calls > 50);
	assert_int_equal(atomic_load(&kp.fails), 0);
	assert_false(log_has(e, "is down"));
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.peers_up, 1);
}

/* ---- a raw peer --------------------------------------------------------- */

/* A peer that speaks the protocol itself: the handshake machine of hs.c
 * with the cookie's handshake key, over an nng push0 socket that dials
 * the node and a pull0 socket the node dials back. */
struct raw {
	tr__hs *hs;
	nng_socket push, pull;
	bool up;
	uint64_t rng;
};

static int raw_random(void *arg, void *buf, size_t n)
{
	struct raw *r = arg;
	uint8_t *b = buf;
	for (size_t i = 0; i < n; i++) {
		r->rng =
		    r->rng * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(r->rng >> 56);
	}
	return TR_OK;
}

static void raw_acts(struct raw *r, tr__hs_acts *a)
{
	for (uint32_t i = 0; i < a->n; i++) {
		tr__hs_act *x = &a->v[i];
		if ((x->kind == TR__HS_SEND || x->kind == TR__HS_UP) &&
		    x->frame != NULL)
			raw_send(r->push, x->frame, x->len);
		if (x->kind == TR__HS_UP)
			r->up = true;
	}
	tr__hs_acts_clear(a);
}

static void raw_heartbeat(struct raw *r)
{
	static const uint8_t hb[] = {0x22, 0x04, 0x0a, 0x02, 0x38, 0x09};
	raw_send(r->push, hb, sizeof(hb));
}

/* The next Batch frame from the node (handshake frames go to the
 * machine), or NULL after `ms`. */
static Troupe__Wire__Frame *raw_recv(struct raw *r, int ms)
{
	int64_t until = tt_now_ms() + ms;
	while (tt_now_ms() < until) {
		void *buf;
		size_t len;
		if (r->up)
			raw_heartbeat(r);
		int rv = nng_recv(r->pull, &buf, &len, NNG_FLAG_ALLOC);
		if (rv == NNG_ETIMEDOUT)
			continue;
		assert_int_equal(rv, 0);
		Troupe__Wire__Frame *f = NULL;
		if (!r->up) {
			tr__hs_acts a = {0};
			(void)tr__hs_frame(
			    r->hs, &a, tt_now_ms(), 1, 0, buf, len);
			raw_acts(r, &a);
		} else {
			f = tr__frame_decode(buf, len, tr__decode_budget(len));
		}
		nng_free(buf, len);
		if (f != NULL &&
		    f->body_case == TROUPE__WIRE__FRAME__BODY_BATCH)
			return f;
		tr__frame_free(f);
	}
	return NULL;
}

static void raw_connect(struct env *e, struct raw *r, const char *name)
{
	char back[320];
	url_for(e, back, sizeof(back), name, false);
	if (e->tcp)
		snprintf(back, sizeof(back), "tcp://127.0.0.1:0");
	assert_int_equal(nng_pull0_open(&r->pull), 0);
	nng_listener l;
	assert_int_equal(nng_listener_create(&l, r->pull, back), 0);
	assert_int_equal(nng_listener_start(l, 0), 0);
	if (e->tcp) {
		nng_sockaddr sa;
		assert_int_equal(
		    nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa), 0);
		snprintf(back, sizeof(back), "tcp://127.0.0.1:%u",
		    ntohs(sa.s_in.sa_port));
	}
	nng_setopt_ms(r->pull, NNG_OPT_RECVTIMEO, 50);
	assert_int_equal(nng_push0_open(&r->push), 0);
	nng_setopt_ms(r->push, NNG_OPT_SENDTIMEO, 2000);
	assert_int_equal(
	    nng_dial(r->push, tr_node_listen_url(e->node, 0), NULL, 0), 0);
	const char *urls[1] = {back};
	tr__hs_cfg c;
	memset(&c, 0, sizeof(c));
	c.name = name;
	c.inc = 42;
	c.urls = urls;
	c.nurls = 1;
	assert_rc(tr__node_hs_key(c.key, "secret"), TR_OK);
	c.random = raw_random;
	c.arg = r;
	r->rng = 99;
	assert_rc(tr__hs_alloc(&r->hs, &c), TR_OK);
	tr__hs_acts a = {0};
	uint32_t id;
	assert_rc(tr__hs_connect(r->hs, &a, tt_now_ms(), "x", &id), TR_OK);
	raw_acts(r, &a);
	int64_t until = tt_now_ms() + WAIT_MS;
	while (!r->up && tt_now_ms() < until) {
		Troupe__Wire__Frame *f = raw_recv(r, 100);
		tr__frame_free(f);
	}
	assert_true(r->up);
}

static void raw_close(struct raw *r)
{
	nng_close(r->push);
	nng_close(r->pull);
	tr__hs_free(r->hs);
}

/* One envelope in a batch frame, sent by the raw peer. */
static void raw_env(struct raw *r, Troupe__Wire__Envelope *env)
{
	Troupe__Wire__Envelope *envs[1] = {env};
	Troupe__Wire__Batch b = TROUPE__WIRE__BATCH__INIT;
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	b.n_envelopes = 1;
	b.envelopes = envs;
	f.body_case = TROUPE__WIRE__FRAME__BODY_BATCH;
	f.batch = &b;
	uint8_t *buf;
	size_t len = pack(&buf, &f);
	raw_send(r->push, buf, len);
	free(buf);
}

#define T_GOT 500u /* victim -> port: the type it got (uint32_t) */

static int victim_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int victim_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *port = state;
	uint32_t t = m->type;
	(void)tr_send(ctx, *port, T_GOT, &t, sizeof(t));
	return 0;
}

static const tr_behaviour victim_b = {
    "victim", victim_init, victim_handle, NULL};

/* Local-only types never cross: a send of one to a remote pid fails at
 * once, and one that a (modified) peer sends anyway is refused at the
 * receiving node, counted, and answered with TR_MSG_REFUSED. */
static void test_local_types(void **state)
{
	struct env *e = *state;
	guard_node_up(e);
	int k = child_start(e, "alpha", "secret", NULL, false);
	assert_true(k >= 0);
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, NULL), TR_OK);
	tr_pid echo = remote_echo(e, "alpha");
	tr_sup_request q;
	memset(&q, 0, sizeof(q));
	assert_rc(tr_post(e->rt, echo, TR_SUP_REQ_START_CHILD, &q, sizeof(q)),
	    TR_EINVAL);
	tr_msg *rep;
	assert_rc(tr_call(&rep, e->rt, echo, TR_SUP_REQ_START_CHILD, &q,
	              sizeof(q), 1000),
	    TR_EINVAL);
	assert_rc(
	    tr_post(e->rt, echo, TR_MSG_LOCAL_BASE + 5, "x", 1), TR_EINVAL);

	/* A raw peer sends a START_CHILD request (with pointers in it) to
	 * a port of ours, and a named one. */
	tr_port *victim;
	assert_rc(tr_port_open(&victim, e->rt), TR_OK);
	tr_pid vport = tr_port_pid(victim), vp;
	assert_rc(tr_spawn(&vp, e->rt, &victim_b, &vport, NULL), TR_OK);
	assert_rc(tr_register(e->rt, "victim", vp), TR_OK);
	struct raw r;
	memset(&r, 0, sizeof(r));
	raw_connect(e, &r, "mallory");
	Troupe__Wire__Envelope env = TROUPE__WIRE__ENVELOPE__INIT;
	Troupe__Wire__Pid to = TROUPE__WIRE__PID__INIT;
	Troupe__Wire__Pid from = TROUPE__WIRE__PID__INIT;
	to.node = "tnode";
	to.incarnation = T_INC;
	to.slot = vp.slot;
	to.gen = vp.gen;
	from.node = "";
	from.slot = 7;
	from.gen = 1;
	q.has_spec = true;
	q.spec.start = (const tr_behaviour *)(uintptr_t)0xdeadbeef;
	env.to = &to;
	env.from = &from;
	env.type = TR_SUP_REQ_START_CHILD;
	env.ref = 4242;
	env.payload.data = (uint8_t *)&q;
	env.payload.len = sizeof(q);
	raw_env(&r, &env);
	Troupe__Wire__Envelope named = TROUPE__WIRE__ENVELOPE__INIT;
	named.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	named.name = "victim";
	named.from = &from;
	named.type = TR_SUP_REQ_START_CHILD;
	named.payload.data = (uint8_t *)&q;
	named.payload.len = sizeof(q);
	raw_env(&r, &named);

	bool refused = false;
	int64_t until = tt_now_ms() + WAIT_MS;
	while (!refused && tt_now_ms() < until) {
		Troupe__Wire__Frame *f = raw_recv(&r, 200);
		for (size_t i = 0; f != NULL && i < f->batch->n_envelopes;
		     i++) {
			Troupe__Wire__Envelope *x = f->batch->envelopes[i];
			if (x->type == TR_MSG_REFUSED && x->ref == 4242 &&
			    (x->flags & TR__ENV_REPLY) != 0 &&
			    x->payload.len == sizeof(int32_t)) {
				int32_t err;
				memcpy(&err, x->payload.data, sizeof(err));
				assert_int_equal(err, TR_EINVAL);
				refused = true;
			}
		}
		tr__frame_free(f);
	}
	assert_true(refused);
	tr_msg *m;
	assert_rc(tr_port_recv(&m, victim, 300), TR_ETIMEDOUT);
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.local_refused, 2);
	assert_true(log_has(e, "local-only type"));
	/* An ordinary message from the same peer still gets through. */
	env.type = TT_ECHO;
	env.ref = 0;
	env.payload.data = (uint8_t *)"ok";
	env.payload.len = 2;
	raw_env(&r, &env);
	assert_rc(tr_port_recv(&m, victim, WAIT_MS), TR_OK);
	assert_int_equal(m->type, T_GOT);
	uint32_t got;
	memcpy(&got, m->data, sizeof(got));
	assert_int_equal(got, TT_ECHO);
	tr_msg_free(m);
	(void)tr_kill(e->rt, vp, TR_REASON_KILL);
	raw_close(&r);
	tr_port_close(victim);
}

/* The safe way for a remote caller: start a child by the name of a
 * behaviour its node registered, through the portable request. */
static void test_named_child(void **state)
{
	struct env *e = *state;
	guard_node_up(e);
	const char *args[] = {"--sup", NULL};
	int k = child_start(e, "alpha", "secret", args, false);
	assert_true(k >= 0);
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, NULL), TR_OK);
	tr_pid sup;
	assert_rc(
	    tr_node_whereis(&sup, e->node, "alpha", "sup", WAIT_MS), TR_OK);
	tr_sup_named_spec spec;
	tr_sup_named_spec_init(&spec, "w1", "echo", "arg", 3);
	tr_pid child;
	int reason = 0;
	assert_rc(tr_sup_start_named_child(
	              &child, e->rt, sup, &spec, WAIT_MS, &reason),
	    TR_OK);
	assert_int_equal(child.node, sup.node);
	call_ok(e, child);
	/* Again: already started, with the pid. */
	tr_pid again;
	assert_rc(tr_sup_start_named_child(
	              &again, e->rt, sup, &spec, WAIT_MS, &reason),
	    TR_EALREADY);
	assert_true(tr_pid_eq(again, child));
	tr_sup_named_spec_init(&spec, "w2", "nosuch", NULL, 0);
	assert_rc(tr_sup_start_named_child(
	              &again, e->rt, sup, &spec, WAIT_MS, &reason),
	    TR_ENOENT);
	/* The local request, with its function pointers, never leaves. */
	tr_child_spec cs;
	memset(&cs, 0, sizeof(cs));
	assert_rc(
	    tr_sup_start_child(&again, e->rt, sup, &cs, NULL, WAIT_MS, NULL),
	    TR_EINVAL);
}

/* ---- flooding a slow actor on another node ------------------------------- */

#define CMD_FLOOD 600u
#define T_FLOOD_MORE 601u
#define T_FLOOD_DONE 602u

struct flood {
	tr_pid to, report;
	int64_t until;
	uint64_t seq, refused;
};

static int flooder_init(tr_ctx *ctx, void *arg, void **state)
{
	*state = arg;
	return tr_send(ctx, tr_self(ctx), T_FLOOD_MORE, NULL, 0);
}

/* Bursts of TT_SLOW with counting seqs; a refusal (TR_EAGAIN: the target
 * said BUSY, or our queue for its node is full) waits 1 ms, nothing is
 * dropped. */
static int flooder_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct flood *f = state;
	if (m->type != T_FLOOD_MORE)
		return 0;
	if (tt_now_ms() >= f->until) {
		uint64_t r[2] = {f->seq, f->refused};
		(void)tr_send(ctx, f->report, T_FLOOD_DONE, r, sizeof(r));
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	for (int i = 0; i < 2000; i++) {
		int rc = tr_send(ctx, f->to, TT_SLOW, &f->seq, sizeof(f->seq));
		if (rc == TR_EAGAIN) {
			f->refused++;
			return tr_send_after(ctx, NULL, tr_self(ctx), 1, 0,
			    T_FLOOD_MORE, NULL, 0);
		}
		if (rc != TR_OK)
			return rc;
		f->seq++;
	}
	return tr_send(ctx, tr_self(ctx), T_FLOOD_MORE, NULL, 0);
}

static const tr_behaviour flooder_b = {
    "flooder", flooder_init, flooder_handle, NULL};

/* A slow actor flooded from another node: the receiving node's memory
 * stays bounded, the sender sees TR_EAGAIN and never loses a message,
 * every message arrives in order, the node's other actors answer
 * meanwhile, and nobody is declared down. */
static void test_flood(void **state)
{
	struct env *e = *state;
	/* A failure-detection bound of 2 s on both sides: this is about
	 * memory and order under a flood, and a loaded machine (the flooded
	 * node spins on two cores) must not starve a 400 ms bound. */
	guard_node_up_tick(e, FLOOD_TICK_MS);
	const char *args[] = {"--recv-actor-max", "262144", "--recv-max",
	    "8388608", "--tick", FLOOD_TICK_STR, NULL};
	int k = child_start(e, "alpha", "secret", args, false);
	assert_true(k >= 0);
	assert_rc(
	    tr_node_connect(e->node, e->kids[k].url, WAIT_MS, NULL), TR_OK);
	tr_pid echo = remote_echo(e, "alpha"), slow;
	assert_rc(
	    tr_node_whereis(&slow, e->node, "alpha", "slow", WAIT_MS), TR_OK);
	call_ok(e, echo);
	long base = tt_proc_kb(e->kids[k].pid, "VmRSS"), peak = base;
	struct flood *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->to = slow;
	f->report = tr_port_pid(e->port);
	f->until = tt_now_ms() + 3000;
	tr_pid fl;
	assert_rc(tr_spawn(&fl, e->rt, &flooder_b, f, NULL), TR_OK);
	int64_t worst = 0;
	while (tt_now_ms() < f->until) {
		int64_t t0 = tt_now_ms();
		call_ok(e, echo);
		if (tt_now_ms() - t0 > worst)
			worst = tt_now_ms() - t0;
		long r = tt_proc_kb(e->kids[k].pid, "VmRSS");
		if (r > peak)
			peak = r;
		tt_sleep_ms(20);
	}
	tr_msg *m;
	int drc = tr_port_recv(&m, e->port, WAIT_MS);
	if (drc != TR_OK)
		fail_msg("the flooder did not finish: %s, %llu sent, %llu "
		         "refused",
		    tr_is_alive(e->rt, fl) ? "alive" : "gone",
		    (unsigned long long)f->seq,
		    (unsigned long long)f->refused);
	assert_int_equal(m->type, T_FLOOD_DONE);
	uint64_t res[2];
	memcpy(res, m->data, sizeof(res));
	tr_msg_free(m);
	free(f);
	/* Every accepted message arrives, in order. */
	struct tt_slow_count c = {0, 0};
	int64_t until = tt_now_ms() + 60000;
	while (c.got < res[0] && tt_now_ms() < until) {
		tr_msg *r;
		/* It may still be BUSY: a call is refused like a send. */
		int rc =
		    tr_call(&r, e->rt, slow, TT_SLOW_COUNT, NULL, 0, WAIT_MS);
		if (rc != TR_EAGAIN) {
			assert_rc(rc, TR_OK);
			memcpy(&c, r->data, sizeof(c));
			tr_msg_free(r);
		}
		long rr = tt_proc_kb(e->kids[k].pid, "VmRSS");
		if (rr > peak)
			peak = rr;
		tt_sleep_ms(50);
	}
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	print_message("flood: %llu accepted, %llu refused (%llu busy), "
	              "receiver RSS %ld -> %ld kB, worst echo %lld ms\n",
	    (unsigned long long)res[0], (unsigned long long)res[1],
	    (unsigned long long)st.busy_refused, base, peak, (long long)worst);
	assert_int_equal(c.got, res[0]);
	assert_int_equal(c.bad, 0);
	assert_true(res[1] > 0);
	assert_true(st.busy_refused > 0);
	assert_true(peak - base < 64 * 1024);
	assert_false(log_has(e, "is down"));
	assert_int_equal(st.peers_up, 1);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
#define BOTH(fn)                                                               \
	cmocka_unit_test_setup_teardown(fn, setup_ipc, guard_teardown),        \
	    cmocka_unit_test_setup_teardown(fn, setup_tcp, guard_teardown)
	const struct CMUnitTest tests[] = {
	    BOTH(test_hostile_hello),
	    BOTH(test_mutual_dialing),
	    BOTH(test_local_types),
	    BOTH(test_named_child),
	    BOTH(test_flood),
	};
	if (getenv("TT_NODE_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TT_NODE_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
