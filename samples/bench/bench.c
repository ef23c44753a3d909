/*
 * troupe-bench: micro-benchmarks of the runtime, local and distributed.
 *
 * The workloads, their parameters and their output line are those of the
 * peer benchmarks (Erlang/OTP and CAF), so the figures compare line for line:
 *
 *   <workload> <count> ops in <seconds> s = <ops/s> ops/s
 *
 * Each workload ends with one message from its last actor to a port; the
 * main thread blocks on that port and stops the clock when it arrives. The
 * runtime is started before the clock starts and stopped after the figures
 * are printed, so neither is part of any measurement.
 *
 * The remote workloads (built when the transport is) run between this
 * process and a second node process that the benchmark starts itself
 * (bench_remote.h): its own binary as `troupe-bench --serve SCHEDULERS
 * COOKIE`, whose main is here.
 */
#include "sample_clock.h"
#include <troupe/sup.h>
#include <troupe/troupe.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef TROUPE_BENCH_REMOTE
#include <troupe/node.h>

#include "bench_cluster.h"
#include "bench_observe.h"
#include "bench_proc.h"
#include "bench_global.h"
#include "bench_pg.h"
#include "bench_remote.h"
#include "bench_latency.h"
#include "bench_tree.h"
#include "bench_util.h"

#include <errno.h>
#include <signal.h>
#include <sys/types.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#endif

/* No workload should come near this; hitting it means the runtime lost a
 * message or stopped scheduling, and a hung benchmark helps nobody. */
#define WAIT_MS (10 * 60 * 1000)

/* An actor that must do a lot of work in a loop (spawn a million children,
 * send two million messages) does it in bursts of this many, then sends
 * itself a message to carry on: a callback that never returns would keep
 * its scheduler from everything else, which is exactly what a cooperative
 * runtime asks its actors not to do. The spawner's bursts are close to a
 * scheduler batch (100 messages): on 2 cores, 128 ran spawn about 40%
 * faster than 1024 or than one long loop; fanin hardly cares. */
#define SPAWN_BURST 128
#define FANIN_BURST 1024

enum {
	MSG_PING = 1,
	MSG_PONG,
	MSG_START,
	MSG_TOKEN,
	MSG_CHILD_DONE,
	MSG_SPAWN_MORE,
	MSG_ITEM,
	MSG_SEND_MORE,
	MSG_DONE,
	MSG_UP,
	MSG_CRASH,
	MSG_LOST,
};

static const char usage_line[] =
    "usage: troupe-bench [-s SCHEDULERS] [-p] [-o] pingpong N | ring ACTORS HOPS"
    " | spawn N | fanin SENDERS PER_SENDER | idle N | sup-restart N"
    " | skynet LEAVES | fjcreate N | spawn-thread N | call-latency N"
#ifdef TROUPE_BENCH_REMOTE
    " | remote-pingpong N | remote-idle SECONDS | remote-stream N"
    " | remote-flood N"
    " | remote-call-latency N"
    " | cluster-form N"
    " | global-register N | global-lookup N"
    " | pg-join N | pg-dispatch N | pg-dispatch-local N"
    " | proc-restart N | proc-restart-gap N | proc-restart-warm N"
    " | proc-call N"
#endif
    "\n"
    "  -o: a local workload beside a node whose observer is on, idle\n";

/* Where the last actor of a workload reports: the main thread's port. It is
 * written before any actor is spawned, and a spawn publishes what the
 * spawning thread wrote before it. */
static tr_pid done_pid;

static void fail(const char *what, int err)
{
	bench_die(what, err);
}

static inline void must(int err, const char *what)
{
	if (err != TR_OK)
		fail(what, err);
}

static void report_done(tr_ctx *ctx)
{
	must(tr_send(ctx, done_pid, MSG_DONE, NULL, 0), "send done");
}

static void wait_done(tr_port *port)
{
	tr_msg *m;
	int err = tr_port_recv(&m, port, WAIT_MS);

	if (err == TR_ETIMEDOUT) {
		fprintf(stderr,
		    "troupe-bench: no result after %d s: a message "
		    "was lost or an actor never ran\n",
		    WAIT_MS / 1000);
		exit(1);
	}
	must(err, "port receive");
	if (m->type == MSG_LOST) {
		fprintf(stderr, "troupe-bench: the server node went down\n");
		exit(1);
	}
	if (m->type != MSG_DONE) {
		fprintf(stderr,
		    "troupe-bench: unexpected message type %" PRIu32
		    " at the port\n",
		    m->type);
		exit(1);
	}
	tr_msg_free(m);
}

static void wait_quiescent(tr_runtime *rt)
{
	int err = tr_runtime_wait_quiescent(rt, WAIT_MS);

	if (err == TR_ETIMEDOUT) {
		fprintf(stderr, "troupe-bench: the runtime never became "
		                "quiescent\n");
		exit(1);
	}
	must(err, "wait for quiescence");
}

static int ignore_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)ctx;
	(void)state;
	(void)msg;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* pingpong N: N round trips between two actors, 2 N messages.               */
/* ------------------------------------------------------------------------ */

struct pinger {
	tr_pid pong;
	uint64_t left; /* round trips still to make */
};

static int ponger_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)state;
	must(tr_send(ctx, tr_sender(msg), MSG_PONG, NULL, 0), "send pong");
	return 0;
}

static int pinger_init(tr_ctx *ctx, void *arg, void **state)
{
	struct pinger *p = arg;

	(void)state; /* the state is the argument */
	must(tr_send(ctx, p->pong, MSG_PING, NULL, 0), "send ping");
	return TR_OK;
}

static int pinger_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct pinger *p = state;

	(void)msg;
	if (--p->left == 0) {
		report_done(ctx);
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	must(tr_send(ctx, p->pong, MSG_PING, NULL, 0), "send ping");
	return 0;
}

static const tr_behaviour ponger = {
    .name = "ponger",
    .handle = ponger_handle,
};

static const tr_behaviour pinger = {
    .name = "pinger",
    .init = pinger_init,
    .handle = pinger_handle,
};

static uint64_t run_pingpong(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct pinger p;
	double t0;

	/* The ponger stands for Erlang's, which exists before the clock
	 * starts; the pinger is spawned on the clock, as there. */
	must(tr_spawn(&p.pong, rt, &ponger, NULL, NULL), "spawn ponger");
	p.left = a[0];
	wait_quiescent(rt);

	t0 = now_s();
	must(tr_spawn(NULL, rt, &pinger, &p, NULL), "spawn pinger");
	wait_done(port);
	*secs = now_s() - t0;
	return 2 * a[0];
}

/* ------------------------------------------------------------------------ */
/* ring ACTORS HOPS: a token passed HOPS times round a ring of ACTORS.       */
/* ------------------------------------------------------------------------ */

/* The ring is ACTORS - 1 nodes plus a head that plays the part of the peers'
 * main process. The head is an actor, not the port, so that every hop is a
 * scheduler-to-scheduler send and the hot loop never wakes a thread. */

struct ring_start {
	tr_pid first;  /* the node the head passes the token to */
	uint64_t hops; /* how many times the token is passed */
};

struct ring_head {
	tr_pid first;
};

static int ring_node_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	const tr_pid *next = state;
	uint64_t h = *(const uint64_t *)msg->data;
	uint64_t fwd = h == 0 ? 0 : h - 1;

	must(tr_send(ctx, *next, MSG_TOKEN, &fwd, sizeof fwd), "pass token");
	/* A token of 0 goes once round the ring to the head, taking every
	 * node down on its way, as in the Erlang peer. */
	if (h == 0)
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static int ring_head_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct ring_head *head = state;
	uint64_t h;

	if (msg->type == MSG_START) {
		const struct ring_start *st = (const void *)msg->data;

		head->first = st->first;
		h = st->hops;
	} else {
		h = *(const uint64_t *)msg->data;
		if (h == 0) {
			report_done(ctx);
			tr_exit(ctx, TR_REASON_NORMAL);
			return 0;
		}
		h--;
	}
	must(tr_send(ctx, head->first, MSG_TOKEN, &h, sizeof h), "pass token");
	return 0;
}

static const tr_behaviour ring_node = {
    .name = "ring_node",
    .handle = ring_node_handle,
};

static const tr_behaviour ring_head = {
    .name = "ring_head",
    .handle = ring_head_handle,
};

static uint64_t run_ring(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct ring_head head;
	uint64_t nodes = a[0] - 1;
	tr_pid *next = malloc((nodes + 1) * sizeof *next);
	struct ring_start st;
	tr_pid hp, prev;
	double t0;

	if (next == NULL) {
		fprintf(stderr, "troupe-bench: out of memory\n");
		exit(1);
	}
	must(tr_spawn(&hp, rt, &ring_head, &head, NULL), "spawn ring head");
	wait_quiescent(rt);

	/* The ring is built on the clock, as the peers build theirs. Node i
	 * passes to node i - 1 and node 0 to the head, so the last node
	 * spawned is the one the head starts with. */
	t0 = now_s();
	prev = hp;
	for (uint64_t i = 0; i < nodes; i++) {
		next[i] = prev;
		must(tr_spawn(&prev, rt, &ring_node, &next[i], NULL),
		    "spawn ring node");
	}
	st.first = prev;
	st.hops = a[1];
	must(tr_post(rt, hp, MSG_START, &st, sizeof st), "start ring");
	wait_done(port);
	*secs = now_s() - t0;

	/* The nodes may still be draining the last token; they read `next`
	 * until they exit. */
	wait_quiescent(rt);
	free(next);
	return a[1];
}

/* ------------------------------------------------------------------------ */
/* spawn N: an actor spawns N children; each tells it so and exits.          */
/* ------------------------------------------------------------------------ */

struct spawner {
	tr_pid self;       /* read by the children, set before any is spawned */
	uint64_t to_spawn; /* children not spawned yet */
	uint64_t to_hear;  /* children not heard from yet */
};

static int child_init(tr_ctx *ctx, void *arg, void **state)
{
	const tr_pid *parent = arg;

	(void)state;
	must(tr_send(ctx, *parent, MSG_CHILD_DONE, NULL, 0), "send child done");
	tr_exit(ctx, TR_REASON_NORMAL);
	return TR_OK;
}

static const tr_behaviour child = {
    .name = "child",
    .init = child_init,
    .handle = ignore_handle,
};

static void spawn_burst(tr_ctx *ctx, struct spawner *s)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	uint64_t n = s->to_spawn < SPAWN_BURST ? s->to_spawn : SPAWN_BURST;

	for (uint64_t i = 0; i < n; i++)
		must(tr_spawn(NULL, rt, &child, &s->self, NULL), "spawn child");
	s->to_spawn -= n;
	if (s->to_spawn > 0)
		must(tr_send(ctx, s->self, MSG_SPAWN_MORE, NULL, 0),
		    "send spawn more");
}

static int spawner_init(tr_ctx *ctx, void *arg, void **state)
{
	struct spawner *s = arg;

	(void)state;
	s->self = tr_self(ctx);
	spawn_burst(ctx, s);
	return TR_OK;
}

static int spawner_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct spawner *s = state;

	if (msg->type == MSG_SPAWN_MORE) {
		spawn_burst(ctx, s);
	} else if (--s->to_hear == 0) {
		report_done(ctx);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static const tr_behaviour spawner = {
    .name = "spawner",
    .init = spawner_init,
    .handle = spawner_handle,
};

static uint64_t run_spawn(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct spawner s;
	double t0;

	s.to_spawn = a[0];
	s.to_hear = a[0];
	t0 = now_s();
	must(tr_spawn(NULL, rt, &spawner, &s, NULL), "spawn parent");
	wait_done(port);
	*secs = now_s() - t0;
	return a[0];
}

/* ------------------------------------------------------------------------ */
/* fanin SENDERS PER_SENDER: many senders, one sink.                         */
/* ------------------------------------------------------------------------ */

struct sink {
	uint64_t left; /* messages still to come */
};

struct sender {
	tr_pid sink;
	uint64_t left; /* messages still to send */
};

static int sink_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct sink *s = state;

	(void)msg;
	if (--s->left == 0) {
		report_done(ctx);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static void send_burst(tr_ctx *ctx, struct sender *s)
{
	uint64_t n = s->left < FANIN_BURST ? s->left : FANIN_BURST;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t item = s->left - i;

		must(tr_send(ctx, s->sink, MSG_ITEM, &item, sizeof item),
		    "send item");
	}
	s->left -= n;
	if (s->left > 0)
		must(tr_send(ctx, tr_self(ctx), MSG_SEND_MORE, NULL, 0),
		    "send send more");
	else
		tr_exit(ctx, TR_REASON_NORMAL);
}

static int sender_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)state;
	send_burst(ctx, arg);
	return TR_OK;
}

static int sender_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)msg;
	send_burst(ctx, state);
	return 0;
}

static const tr_behaviour sink = {
    .name = "sink",
    .handle = sink_handle,
};

static const tr_behaviour sender = {
    .name = "sender",
    .init = sender_init,
    .handle = sender_handle,
};

static uint64_t run_fanin(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct sink k;
	struct sender *s = calloc(a[0], sizeof *s);
	tr_pid kp;
	double t0;

	if (s == NULL) {
		fprintf(stderr, "troupe-bench: out of memory\n");
		exit(1);
	}
	k.left = a[0] * a[1];
	t0 = now_s();
	must(tr_spawn(&kp, rt, &sink, &k, NULL), "spawn sink");
	for (uint64_t i = 0; i < a[0]; i++) {
		s[i].sink = kp;
		s[i].left = a[1];
		must(tr_spawn(NULL, rt, &sender, &s[i], NULL), "spawn sender");
	}
	wait_done(port);
	*secs = now_s() - t0;

	wait_quiescent(rt);
	free(s);
	return a[0] * a[1];
}

/* ------------------------------------------------------------------------ */
/* idle N: N live actors that wait for a message that never comes.           */
/* ------------------------------------------------------------------------ */

static const tr_behaviour idler = {
    .name = "idler",
    .handle = ignore_handle,
};

static uint64_t run_idle(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	long long before;
	double t0;

	(void)port;
	before = rss_bytes();
	/* As in the peers, the clock covers the spawns; the actors run their
	 * first turn concurrently and are all settled before memory is
	 * read. */
	t0 = now_s();
	for (uint64_t i = 0; i < a[0]; i++)
		must(tr_spawn(NULL, rt, &idler, NULL, NULL), "spawn idler");
	*secs = now_s() - t0;
	wait_quiescent(rt);
	printf("idle %" PRIu64 " ops in %.4f s = %.0f ops/s\n", a[0], *secs,
	    (double)a[0] / *secs);
	printf("bytes_per_actor %.0f\n",
	    (double)(rss_bytes() - before) / (double)a[0]);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* sup-restart N: a supervisor restarts a crashing child N times.            */
/* ------------------------------------------------------------------------ */

/* A one_for_one supervisor with one permanent child and an intensity it
 * never reaches. Each child's init tells a driver it is up; the driver
 * answers with an order to crash, which the child obeys by returning a user
 * reason. So one op is: the crash, its exit signal, the supervisor's
 * bookkeeping and a synchronous restart (spawn, link, init), then the
 * hello and the next order. The clock runs in the driver, from the first
 * order to the N-th restarted child's hello, and it reports the time to the
 * port, as the Erlang peer measures it. */

#define CHILD_CRASH_REASON 7 /* any user reason: the child "failed" */

struct restart_driver {
	tr_pid self;   /* read by every child's init; set before the first */
	uint64_t left; /* restarts still to see */
	double t0;     /* when the first order to crash went out */
};

static int doomed_init(tr_ctx *ctx, void *arg, void **state)
{
	const struct restart_driver *d = arg;

	*state = NULL; /* the argument is the driver's; it is only borrowed */
	must(tr_send(ctx, d->self, MSG_UP, NULL, 0), "send up");
	return TR_OK;
}

static int doomed_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)ctx;
	(void)state;
	return msg->type == MSG_CRASH ? CHILD_CRASH_REASON : 0;
}

static const tr_behaviour doomed = {
    .name = "doomed",
    .init = doomed_init,
    .handle = doomed_handle,
};

static int restart_driver_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct restart_driver *d = state;

	if (d->t0 == 0.0) {
		d->t0 = now_s(); /* the first child, before any crash */
	} else if (--d->left == 0) {
		double secs = now_s() - d->t0;

		/* The last child stays up; the supervisor is stopped by
		 * the main thread once the figure is in. */
		must(tr_send(ctx, done_pid, MSG_DONE, &secs, sizeof secs),
		    "send done");
		return 0;
	}
	must(tr_send(ctx, tr_sender(msg), MSG_CRASH, NULL, 0), "send crash");
	return 0;
}

static const tr_behaviour restart_driver = {
    .name = "restart_driver",
    .handle = restart_driver_handle,
};

/* Crash and supervisor reports are built by the runtime as usual (that is
 * part of the cost of a restart), then dropped: writing 2 N lines to the
 * terminal would measure the terminal. The Erlang peer drops its own. */
static void drop_log(void *user, const char *line)
{
	(void)user;
	(void)line;
}

static uint64_t run_sup_restart(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct restart_driver d;
	tr_child_spec spec;
	tr_sup_flags flags;
	tr_pid sup;
	tr_msg *m;
	int err;

	tr_runtime_set_log(rt, drop_log, NULL);
	d.left = a[0];
	must(tr_spawn(&d.self, rt, &restart_driver, &d, NULL), "spawn driver");

	/* N restarts in an hour never exceed an intensity of N + 1; the
	 * supervisor keeps one timestamp per restart within the period. */
	tr_sup_flags_init(&flags);
	flags.intensity = (uint32_t)(a[0] + 1);
	flags.period_ms = 3600u * 1000u;
	tr_child_spec_init(&spec, "doomed", &doomed, &d);
	spec.shutdown_ms = TR_SHUTDOWN_BRUTAL_KILL;
	err = tr_sup_start(&sup, rt, &flags, &spec, 1, NULL);
	must(err, "start supervisor");

	err = tr_port_recv(&m, port, WAIT_MS);
	if (err == TR_ETIMEDOUT) {
		fprintf(stderr,
		    "troupe-bench: no result after %d s: a restart "
		    "was lost\n",
		    WAIT_MS / 1000);
		exit(1);
	}
	must(err, "port receive");
	memcpy(secs, m->data, sizeof *secs);
	tr_msg_free(m);

	must(tr_kill(rt, sup, TR_REASON_SHUTDOWN), "stop supervisor");
	wait_quiescent(rt);
	return a[0];
}

#ifdef TROUPE_BENCH_REMOTE
/* ------------------------------------------------------------------------ */
/* Remote workloads: two node processes on 127.0.0.1.                        */
/* ------------------------------------------------------------------------ */

/* The server process registers two actors, as the Erlang peer's server node
 * does: "echo" answers every ping with a pong to its sender, and "counter"
 * takes a start message with a count, counts that many items and then sends
 * one done to whoever sent the start. The client addresses both by name
 * ({echo, Node} ! Msg in Erlang) on every send, as the peer does. It also
 * registers remote-flood's "slow" (below) and remote-call-latency's call
 * server (bench_latency.h). */

#define SERVER_NAME BENCH_SERVER_NAME
#define STREAM_PAYLOAD 64     /* bytes per remote-stream item, as the peer's */
#define RETRY_MS 1 /* pause of a stream sender whose peer queue is full */

static void usage(void);
static uint64_t parse_count(const char *s, uint64_t max);

struct counter {
	tr_pid reply_to; /* the sender of the start message */
	uint64_t left;   /* items still to come */
};

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)state;
	if (msg->type == MSG_PING)
		must(tr_send(ctx, tr_sender(msg), MSG_PONG, NULL, 0),
		    "send pong");
	return 0;
}

static int counter_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct counter *c = state;

	if (msg->type == MSG_START && msg->size == sizeof c->left) {
		memcpy(&c->left, msg->data, sizeof c->left);
		c->reply_to = tr_sender(msg);
	} else if (msg->type == MSG_ITEM && c->left > 0 && --c->left == 0) {
		must(tr_send(ctx, c->reply_to, MSG_DONE, NULL, 0), "send done");
	}
	return 0;
}

static const tr_behaviour echo_server = {
    .name = "echo",
    .handle = echo_handle,
};

static const tr_behaviour counter_server = {
    .name = "counter",
    .handle = counter_handle,
};

/* remote-flood's receiver: a counter that takes SLOW_US over each item,
 * so that a sender outruns it and flow control has work to do. */
#define SLOW_US 2.0

static int slow_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	if (msg->type == MSG_ITEM) {
		double t0 = now_s();
		while ((now_s() - t0) * 1e6 < SLOW_US)
			;
	}
	return counter_handle(ctx, state, msg);
}

static const tr_behaviour slow_server = {
    .name = "slow",
    .handle = slow_handle,
};

/* troupe-bench --serve SCHEDULERS COOKIE: the server node. It writes
 * "READY <url>" on stdout, then runs until stdin, the other end of a pipe
 * the client holds, reaches its end: when the client closes it or dies,
 * the server stops cleanly. */
static int serve_main(int argc, char **argv)
{
	static struct counter counter, slow;
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_runtime_opts ro;
	tr_node_opts no;
	tr_runtime *rt;
	tr_node *node;
	tr_pid pid;
	char buf[64];
	ssize_t r;

#ifdef __linux__
	/* A client killed before it could close the pipe takes us along. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
	if (argc != 4)
		usage();
	tr_runtime_opts_init(&ro);
	if (strcmp(argv[2], "0") != 0)
		ro.schedulers =
		    (unsigned)parse_count(argv[2], TR_MAX_SCHEDULERS);
	tr_node_opts_init(&no);
	no.name = SERVER_NAME;
	no.listen = listen;
	no.cookie = argv[3];

	must(tr_runtime_start(&rt, &ro), "server: start runtime");
	tr_runtime_set_log(rt, bench_remote_log, NULL);
	must(tr_node_start(&node, rt, &no), "server: start node");
	must(tr_spawn(&pid, rt, &echo_server, NULL, NULL), "spawn echo");
	must(tr_register(rt, "echo", pid), "register echo");
	must(tr_spawn(&pid, rt, &counter_server, &counter, NULL),
	    "spawn counter");
	must(tr_register(rt, "counter", pid), "register counter");
	must(tr_spawn(&pid, rt, &slow_server, &slow, NULL), "spawn slow");
	must(tr_register(rt, "slow", pid), "register slow");
	bench_latency_serve(rt);
	printf("READY %s\n", tr_node_listen_url(node, 0));
	fflush(stdout);

	while ((r = read(0, buf, sizeof buf)) != 0)
		if (r < 0 && errno != EINTR)
			break;
	tr_node_stop(node);
	tr_runtime_stop(rt);
	return 0;
}

/* Both client actors watch the server node: if it goes down, the main
 * thread hears of it in a few ticks instead of waiting for WAIT_MS. */
static bool server_lost(tr_ctx *ctx, const tr_msg *msg)
{
	if (msg->type != TR_MSG_NODEDOWN)
		return false;
	must(tr_send(ctx, done_pid, MSG_LOST, NULL, 0), "send lost");
	tr_exit(ctx, TR_REASON_NORMAL);
	return true;
}

/* remote-pingpong N: N round trips to the server's echo, 2 N messages. */

static int rpinger_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	(void)state; /* the state is the argument: the round trips left */
	must(tr_monitor_node(ctx, SERVER_NAME, true), "monitor node");
	must(tr_send_remote_named(ctx, SERVER_NAME, "echo", MSG_PING, NULL, 0),
	    "send ping");
	return TR_OK;
}

static int rpinger_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	uint64_t *left = state;

	if (server_lost(ctx, msg) || msg->type != MSG_PONG)
		return 0;
	if (--*left == 0) {
		report_done(ctx);
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	must(tr_send_remote_named(ctx, SERVER_NAME, "echo", MSG_PING, NULL, 0),
	    "send ping");
	return 0;
}

static const tr_behaviour rpinger = {
    .name = "remote_pinger",
    .init = rpinger_init,
    .handle = rpinger_handle,
};

static uint64_t run_remote_pingpong(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static uint64_t left;
	double t0;

	(void)bench_remote_start(rt);
	left = a[0];
	t0 = now_s();
	must(tr_spawn(NULL, rt, &rpinger, &left, NULL), "spawn pinger");
	wait_done(port);
	*secs = now_s() - t0;
	return 2 * a[0];
}

/* remote-idle SECONDS: 20000 round trips, which make both connections
 * hot (read by the schedulers themselves, docs/distribution.md "Busy
 * polling"), then SECONDS with nothing sent but the nodes' heartbeats: the
 * CPU each node process uses meanwhile, as a share of one core. */

/* User and system time of process `pid` so far, in seconds, or -1. */
static double proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command's closing parenthesis: fields 3.. of proc(5);
	 * utime and stime are the 14th and 15th. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (p == NULL || sscanf(p + 2,
	                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
	                     "%llu %llu",
	                     &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t run_remote_idle(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static uint64_t left;
	(void)bench_remote_start(rt);
	left = 20000;
	must(tr_spawn(NULL, rt, &rpinger, &left, NULL), "spawn pinger");
	wait_done(port);
	pid_t server = bench_remote_pid();
	double me0 = proc_cpu_s(getpid()), srv0 = proc_cpu_s(server);
	double t0 = now_s();
	struct timespec ts = {(time_t)a[0], 0};
	while (nanosleep(&ts, &ts) != 0)
		;
	*secs = now_s() - t0;
	double me = proc_cpu_s(getpid()) - me0;
	double srv = proc_cpu_s(server) - srv0;
	printf("remote-idle %" PRIu64 " s: this node %.2f%% of a core, "
	       "the server node %.2f%%\n",
	    a[0], 100.0 * me / *secs, 100.0 * srv / *secs);
	return 0;
}

/* remote-stream N: a start, N one-way 64-byte items to the server's
 * counter, and one done back; N messages, as the peer counts them. The
 * items go in bursts of FANIN_BURST, one batch frame each at the end of
 * the turn. A send refused with TR_EAGAIN (more than the node's max_queue
 * bytes waiting for the server) is retried after RETRY_MS: nothing is
 * dropped, and the scheduler is not spun while the socket drains. */

struct streamer {
	const char *to; /* the server's actor: "counter", or "slow" */
	uint64_t left;  /* items still to send */
	uint64_t refused; /* sends refused with TR_EAGAIN (and retried) */
	unsigned char payload[STREAM_PAYLOAD];
};

static void stream_burst(tr_ctx *ctx, struct streamer *s)
{
	uint64_t n = s->left < FANIN_BURST ? s->left : FANIN_BURST;
	int err = TR_OK;

	for (; n > 0; n--, s->left--) {
		err = tr_send_remote_named(ctx, SERVER_NAME, s->to, MSG_ITEM,
		    s->payload, sizeof s->payload);
		if (err != TR_OK)
			break;
	}
	if (err == TR_EAGAIN)
		s->refused++;
	if (err == TR_EAGAIN)
		must(tr_send_after(ctx, NULL, tr_self(ctx), RETRY_MS, 0,
		         MSG_SEND_MORE, NULL, 0),
		    "arm retry");
	else if (err != TR_OK)
		fail("send item", err);
	else if (s->left > 0)
		must(tr_send(ctx, tr_self(ctx), MSG_SEND_MORE, NULL, 0),
		    "send send more");
}

static int streamer_init(tr_ctx *ctx, void *arg, void **state)
{
	struct streamer *s = arg;

	(void)state;
	must(tr_monitor_node(ctx, SERVER_NAME, true), "monitor node");
	must(tr_send_remote_named(ctx, SERVER_NAME, s->to, MSG_START,
	         &s->left, sizeof s->left),
	    "send start");
	stream_burst(ctx, s);
	return TR_OK;
}

static int streamer_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	if (server_lost(ctx, msg))
		return 0;
	if (msg->type == MSG_SEND_MORE) {
		stream_burst(ctx, state);
	} else if (msg->type == MSG_DONE) {
		report_done(ctx);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static const tr_behaviour streamer = {
    .name = "streamer",
    .init = streamer_init,
    .handle = streamer_handle,
};

static uint64_t run_remote_stream(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct streamer s;
	double t0;

	(void)bench_remote_start(rt);
	s.to = "counter";
	s.left = a[0];
	memset(s.payload, 'x', sizeof s.payload);
	t0 = now_s();
	must(tr_spawn(NULL, rt, &streamer, &s, NULL), "spawn streamer");
	wait_done(port);
	*secs = now_s() - t0;
	return a[0];
}

/* A line of /proc/PID/status, in kB ("VmRSS", "VmHWM"), or -1. */
static long proc_kb(pid_t pid, const char *key)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0 &&
		    line[strlen(key)] == ':')
			kb = strtol(line + strlen(key) + 1, NULL, 10);
	fclose(f);
	return kb;
}

/* remote-flood N: as remote-stream, to an actor that takes SLOW_US over
 * each item: the sender outruns it, and the receiver's flow control tells
 * it BUSY. N messages. Also prints the receiving process's resident
 * memory before and at its peak, and the sends refused (and retried). */
static uint64_t run_remote_flood(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct streamer s;
	double t0;
	long rss0;

	(void)bench_remote_start(rt);
	rss0 = proc_kb(bench_remote_pid(), "VmRSS");
	s.to = "slow";
	s.left = a[0];
	memset(s.payload, 'x', sizeof s.payload);
	t0 = now_s();
	must(tr_spawn(NULL, rt, &streamer, &s, NULL), "spawn streamer");
	wait_done(port);
	*secs = now_s() - t0;
	printf("remote-flood receiver_rss_kb %ld peak_kb %ld refused %" PRIu64
	       " accepted %" PRIu64 "\n",
	    rss0, proc_kb(bench_remote_pid(), "VmHWM"), s.refused, a[0]);
	return a[0];
}
#endif /* TROUPE_BENCH_REMOTE */

/* ------------------------------------------------------------------------ */

struct workload {
	const char *name;
	int nargs;
	bool prints; /* prints its own lines (idle has two) */
	uint64_t (*run)(
	    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);
};

/* The first LOCAL_WORKLOADS are local: one runtime, no node. */
#define LOCAL_WORKLOADS 10
static const struct workload workloads[] = {
    {"pingpong", 1, false, run_pingpong},
    {"ring", 2, false, run_ring},
    {"spawn", 1, false, run_spawn},
    {"fanin", 2, false, run_fanin},
    {"idle", 1, true, run_idle},
    {"sup-restart", 1, false, run_sup_restart},
    {"skynet", 1, false, bench_skynet},
    {"fjcreate", 1, false, bench_fjcreate},
    {"spawn-thread", 1, false, bench_spawn_thread},
    {"call-latency", 1, false, bench_call_latency},
#ifdef TROUPE_BENCH_REMOTE
    {"remote-pingpong", 1, false, run_remote_pingpong},
    {"remote-idle", 1, true, run_remote_idle},
    {"remote-stream", 1, false, run_remote_stream},
    {"remote-flood", 1, false, run_remote_flood},
    {"remote-call-latency", 1, false, bench_remote_call_latency},
    {"cluster-form", 1, true, run_cluster_form},
    {"global-register", 1, false, bench_global_register},
    {"global-lookup", 1, false, bench_global_lookup},
    {"pg-join", 1, true, run_pg_join},
    {"pg-dispatch", 1, true, run_pg_dispatch},
    {"pg-dispatch-local", 1, true, run_pg_dispatch_local},
    {"proc-restart", 1, false, run_proc_restart},
    {"proc-restart-gap", 1, true, run_proc_restart_gap},
    {"proc-restart-warm", 1, true, run_proc_restart_warm},
    {"proc-call", 1, true, run_proc_call},
#endif
};

static void usage(void)
{
	fputs(usage_line, stderr);
	exit(2);
}

/* A positive decimal integer no larger than `max`, or a usage error. */
static uint64_t parse_count(const char *s, uint64_t max)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		usage();
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v == 0 || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const struct workload *w = NULL;
	tr_runtime_opts opts;
	uint64_t a[2];
	tr_runtime *rt;
	tr_port *port;
	uint64_t count;
	double secs;
	int c;
	bool observe = false;

#ifdef TROUPE_BENCH_REMOTE
	bench_proc_child(); /* returns only when not a process child */
	if (argc > 1 && strcmp(argv[1], "--serve") == 0)
		return serve_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--cluster-node") == 0)
		return bench_cluster_node_main(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--global-serve") == 0)
		return bench_global_serve(argc, argv);
	if (argc > 1 && strcmp(argv[1], "--pg-node") == 0)
		return bench_pg_node_main(argc, argv);
#endif
	tr_runtime_opts_init(&opts);
	while ((c = getopt(argc, argv, "s:poh")) != -1) {
		switch (c) {
		case 's':
			opts.schedulers =
			    (unsigned)parse_count(optarg, TR_MAX_SCHEDULERS);
			break;
		case 'p':
			opts.pin = true;
			break;
		case 'o':
			observe = true;
			break;
		case 'h':
			fputs(usage_line, stdout);
			return 0;
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++)
		if (strcmp(argv[optind], workloads[i].name) == 0)
			w = &workloads[i];
	if (w == NULL || argc - optind - 1 != w->nargs)
		usage();
	/* Counts, and SENDERS * PER_SENDER, stay below 2^40 so that no sum
	 * or product overflows; actor counts must fit a pid's slot. */
	for (int i = 0; i < w->nargs; i++)
		a[i] = parse_count(argv[optind + 1 + i], UINT64_C(1) << 40);
	if ((strcmp(w->name, "ring") == 0 || strcmp(w->name, "idle") == 0) &&
	    a[0] > UINT32_MAX)
		usage();
	/* The supervisor's intensity, N + 1, is a uint32_t. */
	if (strcmp(w->name, "sup-restart") == 0 && a[0] >= UINT32_MAX)
		usage();
	if (strcmp(w->name, "fanin") == 0 && a[1] > (UINT64_C(1) << 40) / a[0])
		usage();

#ifdef TROUPE_BENCH_REMOTE
	bench_remote_init(argv[0], opts.schedulers);
#endif
	must(tr_runtime_start(&rt, &opts), "start runtime");
	must(tr_port_open(&port, rt), "open port");
	done_pid = tr_port_pid(port);
	tr_node *observed = NULL;
#ifdef TROUPE_BENCH_REMOTE
	/* Local workloads only: the others start nodes of their own. */
	if (observe && w - workloads < LOCAL_WORKLOADS)
		observed = bench_observe_start(rt);
#endif
	if (observe && observed == NULL)
		usage();

	count = w->run(rt, port, a, &secs);
	if (!w->prints)
		printf("%s %" PRIu64 " ops in %.4f s = %.0f ops/s\n", w->name,
		    count, secs, (double)count / secs);
	fflush(stdout);

#ifdef TROUPE_BENCH_REMOTE
	bench_remote_stop();
	tr_node_stop(observed);
#endif
	tr_port_close(port);
	tr_runtime_stop(rt);
	return 0;
}
