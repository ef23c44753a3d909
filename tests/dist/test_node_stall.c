/*
 * A stalled peer stalls nobody else (docs/distribution.md, "Batching,
 * flushing, order" and "Backpressure"): a scheduler's flush never waits on
 * a socket, so while one peer reads nothing, the node's local actors and
 * its other peers keep going, the stalled peer's queue stays within
 * max_queue, and what was accepted for it is delivered once it reads
 * again.
 *
 * This process is a node with two peers, test node processes (node_main.c)
 * "alpha" and "beta". Alpha is frozen (SIGSTOP). A local actor, the
 * flooder, sends 1 KiB messages to alpha's echo, a burst per turn, until
 * they are refused (TR_EAGAIN); then, every millisecond, it tries a burst
 * to alpha again and sends one message to beta's echo. Once alpha's
 * socket buffers and queue take no more for a while, the stall is on.
 * Meanwhile two local actors play ping-pong. Over the stall, and in a
 * one-second window after the queue filled:
 *
 * - the ping-pong keeps completing rounds, none slower than STALL_RTT_MS
 *   (a scheduler that waited on alpha's socket would wait for the whole
 *   stall, which is longer: alpha reads nothing until SIGCONT);
 * - the flooder keeps getting turns, none further apart than
 *   STALL_RTT_MS, and beta keeps echoing;
 * - alpha's queue_bytes (tr_node_list) is full but within max_queue, its
 *   refusals are the queue's (TR_EAGAIN; busy_refused, which counts
 *   targets that said BUSY, stays 0), and alpha is not declared down.
 *
 * After SIGCONT, sends to alpha are accepted again and every message
 * accepted for it comes back from its echo, in order.
 *
 * Bounds are generous, for loaded machines and sanitizers: behaviour, not
 * speed. The tick is long enough (4 ticks of silence declare a peer down)
 * that the stall, bounded by STALL_FILL_MS plus the window, stays well
 * within it on both sides. Children are killed and reaped by the fixture
 * (SIGCONT, SIGKILL, waitpid) on every path, and the test runs under
 * alarm(). Nodes listen on 127.0.0.1 or on ipc:// paths in a fresh
 * temporary directory.
 */
#include "common.h"

#include <signal.h>
#include <unistd.h>

#include <troupe/node.h>

#include "node_child.h"
#include "test_node_proto.h"

#define TICK_MS 5000
#define WAIT_MS 10000
#define MAX_CHILDREN 2

#include "node_env.h"

#define STALL_MAX_QUEUE (256u * 1024u)
#define STALL_MSG 1024u      /* bytes of a message to alpha */
#define STALL_BURST 32u      /* messages to alpha per turn while filling */
#define STALL_FILL_MS 12000  /* alpha's buffers and queue are full by then */
#define STALL_SETTLE_MS 500  /* no send accepted for that long: full */
#define STALL_WINDOW_MS 1000 /* measured with alpha stopped and full */
/* No round trip, no gap between the flooder's turns, is longer. Shorter
 * than the stall (STALL_SETTLE_MS and the window at least), which a wait
 * on alpha's socket would last; long enough for a loaded machine. */
#define STALL_RTT_MS 1000
_Static_assert(STALL_RTT_MS < STALL_SETTLE_MS + STALL_WINDOW_MS,
    "a wait on the stalled socket must outlast the bound");
#define STALL_ROUNDS_MIN 100 /* ping-pong rounds in the window, at least */

enum {
	CMD_FILL = 200, /* flooder: struct targets; fill alpha, then try */
	CMD_FILL_MORE,  /* flooder to itself: the next burst */
	CMD_TRY,        /* flooder's timer: try alpha, send to beta */
	CMD_REPORT,     /* flooder, a call: struct flood_report; uint8 reset */
	CMD_STOP,       /* flooder, a call: no more tries */
	CMD_PP_START,   /* ping: tr_pid of pong; start the rounds */
	CMD_PP_REPORT,  /* ping, a call: struct pp_report; uint8 reset */
	T_PING,
	T_PONG,
	T_FULL, /* flooder -> port: struct full */
};

struct targets {
	tr_pid alpha, beta;
};

struct full {
	int32_t rc; /* the send that stopped the filling */
	uint64_t accepted;
};

struct flood_report {
	uint64_t accepted; /* to alpha, TR_OK */
	uint64_t got, bad; /* echoed back by alpha; out of order */
	uint64_t beta_sent, beta_got, beta_bad;
	uint64_t tries;     /* timer turns since the last reset */
	uint64_t refused;   /* of which alpha refused (TR_EAGAIN) */
	int64_t max_gap_us; /* between those turns */
	int32_t last_rc;    /* of the last try to alpha */
};

struct pp_report {
	uint64_t rounds;
	int64_t max_rtt_us;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool want_reset(const tr_msg *m)
{
	return m->size >= 1 && ((const uint8_t *)m->data)[0] != 0;
}

/* ---- the flooder ----------------------------------------------------------
 */

struct flood {
	tr_pid port;
	struct targets t;
	struct flood_report r;
	int64_t last_turn_us;
	tr_timer timer;
	bool trying;
};

static int flood_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int send_alpha(tr_ctx *ctx, struct flood *f)
{
	uint8_t buf[STALL_MSG];
	memset(buf, 0xa5, sizeof(buf));
	memcpy(buf, &f->r.accepted, sizeof(f->r.accepted));
	int rc = tr_send(ctx, f->t.alpha, TT_ECHO, buf, sizeof(buf));
	if (rc == TR_OK)
		f->r.accepted++;
	return rc;
}

static void fill(tr_ctx *ctx, struct flood *f)
{
	int rc = TR_OK;
	for (uint32_t i = 0; i < STALL_BURST && rc == TR_OK; i++)
		rc = send_alpha(ctx, f);
	if (rc == TR_OK) {
		/* The next burst in a turn of its own: each turn ends with a
		 * flush, the path under test. */
		(void)tr_send(ctx, tr_self(ctx), CMD_FILL_MORE, NULL, 0);
		return;
	}
	struct full fu = {rc, f->r.accepted};
	(void)tr_send(ctx, f->port, T_FULL, &fu, sizeof(fu));
	if (rc != TR_EAGAIN)
		return;
	f->trying = true;
	f->last_turn_us = now_us();
	(void)tr_send_after(
	    ctx, &f->timer, tr_self(ctx), 1, 1, CMD_TRY, NULL, 0);
}

static void try_turn(tr_ctx *ctx, struct flood *f)
{
	if (!f->trying)
		return;
	int64_t t = now_us();
	if (t - f->last_turn_us > f->r.max_gap_us)
		f->r.max_gap_us = t - f->last_turn_us;
	f->last_turn_us = t;
	f->r.tries++;
	int rc = TR_OK;
	for (uint32_t i = 0; i < STALL_BURST && rc == TR_OK; i++)
		rc = send_alpha(ctx, f);
	f->r.last_rc = rc;
	f->r.refused += rc == TR_EAGAIN;
	uint64_t seq = f->r.beta_sent;
	if (tr_send(ctx, f->t.beta, TT_ECHO, &seq, sizeof(seq)) == TR_OK)
		f->r.beta_sent++;
}

static void echoed(struct flood *f, const tr_msg *m)
{
	uint64_t seq;
	if (m->size < sizeof(seq))
		return;
	memcpy(&seq, m->data, sizeof(seq));
	if (tr_pid_eq(m->sender, f->t.alpha)) {
		f->r.bad += seq != f->r.got || m->size != STALL_MSG;
		f->r.got++;
	} else if (tr_pid_eq(m->sender, f->t.beta)) {
		f->r.beta_bad += seq != f->r.beta_got;
		f->r.beta_got++;
	}
}

static int flood_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct flood *f = state;
	switch (m->type) {
	case CMD_FILL:
		if (m->size == sizeof(f->t)) {
			memcpy(&f->t, m->data, sizeof(f->t));
			fill(ctx, f);
		}
		break;
	case CMD_FILL_MORE:
		fill(ctx, f);
		break;
	case CMD_TRY:
		try_turn(ctx, f);
		break;
	case TT_ECHO:
		echoed(f, m);
		break;
	case CMD_REPORT:
		(void)tr_reply(ctx, m, CMD_REPORT, &f->r, sizeof(f->r));
		if (want_reset(m)) {
			f->r.tries = 0;
			f->r.refused = 0;
			f->r.max_gap_us = 0;
			f->last_turn_us = now_us();
		}
		break;
	case CMD_STOP:
		if (f->trying)
			(void)tr_timer_cancel(tr_runtime_of(ctx), f->timer);
		f->trying = false;
		(void)tr_reply(ctx, m, CMD_STOP, NULL, 0);
		break;
	default:
		break;
	}
	return 0;
}

static void flood_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour flood_b = {
    "flooder", flood_init, flood_handle, flood_terminate};

/* ---- the local ping-pong --------------------------------------------------
 */

struct ping {
	tr_pid pong;
	int64_t sent_us;
	struct pp_report r;
};

static int ping_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	*state = calloc(1, sizeof(struct ping));
	return *state != NULL ? TR_OK : TR_ENOMEM;
}

static void ping_send(tr_ctx *ctx, struct ping *p)
{
	p->sent_us = now_us();
	(void)tr_send(ctx, p->pong, T_PING, NULL, 0);
}

static int ping_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct ping *p = state;
	switch (m->type) {
	case CMD_PP_START:
		if (m->size == sizeof(p->pong)) {
			memcpy(&p->pong, m->data, sizeof(p->pong));
			ping_send(ctx, p);
		}
		break;
	case T_PONG: {
		int64_t rtt = now_us() - p->sent_us;
		if (rtt > p->r.max_rtt_us)
			p->r.max_rtt_us = rtt;
		p->r.rounds++;
		ping_send(ctx, p);
		break;
	}
	case CMD_PP_REPORT:
		(void)tr_reply(ctx, m, CMD_PP_REPORT, &p->r, sizeof(p->r));
		if (want_reset(m))
			memset(&p->r, 0, sizeof(p->r));
		break;
	default:
		break;
	}
	return 0;
}

static void ping_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour ping_b = {
    "ping", ping_init, ping_handle, ping_terminate};

static int pong_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == T_PING)
		(void)tr_send(ctx, tr_sender(m), T_PONG, NULL, 0);
	return 0;
}

static const tr_behaviour pong_b = {"pong", NULL, pong_handle, NULL};

/* ---- helpers --------------------------------------------------------------
 */

static void call_report(
    struct env *e, tr_pid to, uint32_t type, bool reset, void *out, size_t size)
{
	uint8_t rs = reset;
	tr_msg *r;
	assert_rc(
	    tr_call(&r, e->rt, to, type, &rs, sizeof(rs), WAIT_MS), TR_OK);
	assert_int_equal(r->size, size);
	memcpy(out, r->data, size);
	tr_msg_free(r);
}

/* The entry of `name` in tr_node_list; fails the test if it is not up. */
static tr_node_info peer_info(struct env *e, const char *name)
{
	tr_node_info v[MAX_CHILDREN + 1];
	tr_node_info_init(&v[0]);
	size_t k = 0;
	assert_rc(tr_node_list(v, MAX_CHILDREN + 1, &k, e->node), TR_OK);
	for (size_t i = 0; i < k && i <= MAX_CHILDREN; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i];
	fail_msg("node %s is not connected", name);
	return v[0];
}

static tr_pid connect_child(struct env *e, const char *name)
{
	static const char *const args[] = {"--tick", "5000", NULL};
	(void)child_up(e, name, args);
	return remote_echo(e, name);
}

/* ---- the test -------------------------------------------------------------
 */

static void test_stalled_peer(void **state)
{
	struct env *e = *state;
	struct node_conf nc;
	node_conf_init(&nc, e, "tnode", false);
	nc.o.max_queue = STALL_MAX_QUEUE;
	assert_rc(tr_node_start(&e->node, e->rt, &nc.o), TR_OK);
	tr_pid alpha = connect_child(e, "alpha");
	tr_pid beta = connect_child(e, "beta");
	pid_t alpha_os = e->kids[0].pid;

	struct flood *fl = calloc(1, sizeof(*fl));
	assert_non_null(fl);
	fl->port = tr_port_pid(e->port);
	tr_pid flooder, ping, pong;
	assert_rc(tr_spawn(&flooder, e->rt, &flood_b, fl, NULL), TR_OK);
	assert_rc(tr_spawn(&ping, e->rt, &ping_b, NULL, NULL), TR_OK);
	assert_rc(tr_spawn(&pong, e->rt, &pong_b, NULL, NULL), TR_OK);
	assert_rc(
	    tr_post(e->rt, ping, CMD_PP_START, &pong, sizeof(pong)), TR_OK);
	struct pp_report pp;
	int64_t dl = tt_now_ms() + WAIT_MS;
	do
		call_report(e, ping, CMD_PP_REPORT, false, &pp, sizeof(pp));
	while (pp.rounds == 0 && tt_now_ms() < dl);
	assert_true(pp.rounds > 0);
	tr_node_stats st;
	tr_node_stats_init(&st);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	uint64_t busy_refused0 = st.busy_refused;

	/* Alpha stops reading (all of it: waitpid reports the stop once
	 * every thread has stopped); the flooder fills its socket and
	 * queue. */
	assert_int_equal(kill(alpha_os, SIGSTOP), 0);
	int ws;
	assert_int_equal(waitpid(alpha_os, &ws, WUNTRACED), alpha_os);
	assert_true(WIFSTOPPED(ws));
	call_report(e, ping, CMD_PP_REPORT, true, &pp, sizeof(pp));
	struct targets t = {alpha, beta};
	assert_rc(tr_post(e->rt, flooder, CMD_FILL, &t, sizeof(t)), TR_OK);
	tr_msg *m;
	assert_rc(tr_port_recv(&m, e->port, STALL_FILL_MS), TR_OK);
	assert_int_equal(m->type, T_FULL);
	struct full fu;
	assert_int_equal(m->size, sizeof(fu));
	memcpy(&fu, m->data, sizeof(fu));
	tr_msg_free(m);
	assert_rc(fu.rc, TR_EAGAIN);
	assert_true(fu.accepted > 0);
	/* The first refusal may come while the connection still writes the
	 * queue into socket buffers that grow (a TCP window opens for a
	 * while though nothing is read): the tries go on until the buffers
	 * take no more and sends stay refused, which is the stall. */
	struct flood_report fr;
	int64_t start = tt_now_ms(), changed = start;
	uint64_t last = fu.accepted;
	for (;;) {
		tt_sleep_ms(50);
		call_report(e, flooder, CMD_REPORT, false, &fr, sizeof(fr));
		int64_t t = tt_now_ms();
		if (fr.accepted != last) {
			last = fr.accepted;
			changed = t;
		} else if (t - changed >= STALL_SETTLE_MS) {
			break;
		}
		assert_true(t - start < STALL_FILL_MS);
	}
	fu.accepted = fr.accepted;
	/* Full, and within the bound: what is queued or in flight plus the
	 * open batch never passes max_queue; only heartbeats (a few bytes a
	 * tick, never refused) and frame headers may add to it. */
	tr_node_info ai = peer_info(e, "alpha");
	assert_true(ai.queue_bytes >= STALL_MAX_QUEUE / 2);
	assert_true(ai.queue_bytes <= STALL_MAX_QUEUE + 1024);

	/* The window: alpha stopped and full for a second. */
	struct flood_report fr0, fr1;
	struct pp_report pp0, pp1;
	call_report(e, flooder, CMD_REPORT, true, &fr0, sizeof(fr0));
	call_report(e, ping, CMD_PP_REPORT, false, &pp0, sizeof(pp0));
	tt_sleep_ms(STALL_WINDOW_MS);
	call_report(e, ping, CMD_PP_REPORT, false, &pp1, sizeof(pp1));
	call_report(e, flooder, CMD_REPORT, false, &fr1, sizeof(fr1));
	ai = peer_info(e, "alpha");
	print_message("stall: %" PRIu64
	              " accepted for alpha, full after %" PRId64
	              " ms, queue %" PRIu64 " B; window: %" PRIu64
	              " rounds, slowest %" PRId64 " us over the stall, %" PRIu64
	              " flooder turns, widest gap %" PRId64 " us, %" PRIu64
	              " echoes from beta\n",
	    fu.accepted, changed - start, ai.queue_bytes,
	    pp1.rounds - pp0.rounds, pp1.max_rtt_us, fr1.tries, fr1.max_gap_us,
	    fr1.beta_got - fr0.beta_got);
	/* Local actors kept going, none held up by alpha's socket. */
	assert_true(pp1.rounds - pp0.rounds >= STALL_ROUNDS_MIN);
	assert_true(pp1.max_rtt_us < STALL_RTT_MS * 1000);
	/* So did the actor sending to alpha, and beta's traffic. */
	assert_true(fr1.tries >= 10);
	assert_true(fr1.max_gap_us < STALL_RTT_MS * 1000);
	assert_true(fr1.beta_got > fr0.beta_got);
	assert_int_equal(fr1.beta_bad, 0);
	/* Alpha stayed refused by its queue's bound, read nothing, and
	 * stayed up. */
	assert_true(fr1.refused > 0);
	assert_int_equal(fr1.got, 0);
	assert_true(ai.queue_bytes <= STALL_MAX_QUEUE + 1024);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.busy_refused, busy_refused0);
	assert_int_equal(st.peers_up, 2);

	/* Alpha reads again: sends to it are accepted again, and everything
	 * accepted comes back, in order. */
	assert_int_equal(kill(alpha_os, SIGCONT), 0);
	dl = tt_now_ms() + 3 * WAIT_MS;
	do {
		tt_sleep_ms(10);
		call_report(e, flooder, CMD_REPORT, false, &fr, sizeof(fr));
	} while (fr.accepted == fu.accepted && tt_now_ms() < dl);
	assert_true(fr.accepted > fu.accepted);
	tr_msg *r;
	assert_rc(
	    tr_call(&r, e->rt, flooder, CMD_STOP, NULL, 0, WAIT_MS), TR_OK);
	tr_msg_free(r);
	call_report(e, flooder, CMD_REPORT, false, &fr, sizeof(fr));
	uint64_t accepted = fr.accepted;
	while (fr.got < accepted && tt_now_ms() < dl) {
		tt_sleep_ms(10);
		call_report(e, flooder, CMD_REPORT, false, &fr, sizeof(fr));
	}
	assert_int_equal(fr.got, accepted);
	assert_int_equal(fr.bad, 0);
	assert_int_equal(fr.beta_bad, 0);
	call_ok(e, alpha);
	ai = peer_info(e, "alpha");
	assert_true(ai.msgs_out >= accepted);
	assert_rc(tr_node_stats_get(&st, e->node), TR_OK);
	assert_int_equal(st.peers_up, 2);
}

int main(void)
{
	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_stalled_peer, setup_ipc, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_stalled_peer, setup_tcp, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
