/*
 * troupe-bench's tail latency under load (bench_latency.h): what a
 * service is judged by. A client actor calls a server actor N times in a
 * row (tr_request, answered with tr_reply: gen_server:call's shape) and
 * times each round trip, while rings of actors keep every scheduler busy
 * passing tokens. In call-latency the server is on the client's node; in
 * remote-call-latency it is on the server node process (bench_remote.h),
 * and rings run on both nodes. Their Erlang twins are
 * peers/call_latency.erl and peers/remote_call_latency.erl (gen_server
 * calls beside rings of processes, on one BEAM node and across two).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_latency.h"
#ifdef TROUPE_BENCH_REMOTE
#include "bench_remote.h"
#endif
#include "bench_util.h"
#include "sample_clock.h"

#define MSG_CALL 0x4C410001u
#define MSG_TOKEN 0x4C410002u
#define MSG_DONE 0x4C410003u
#define MSG_RINGS 0x4C410004u      /* start the rings of the server's node */
#define MSG_RINGS_STOP 0x4C410005u /* and stop them */
#define CALL_MS 5000 /* a call not answered in this long fails the run */
#define RING 100     /* actors in each ring */
#define TOKENS 4     /* tokens going round each ring */

static _Atomic bool stop_rings;


static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- the background: rings ------------------------------------------------ */

/* A ring member's state is the next member's pid, set by the message
 * that links the ring (MSG_TOKEN with a pid before the tokens start). */
static int ring_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_pid *next = state;
	if (m->type != MSG_TOKEN)
		return 0;
	if (m->size == sizeof(tr_pid)) {
		memcpy(next, m->data, sizeof(*next));
		return 0;
	}
	if (atomic_load_explicit(&stop_rings, memory_order_relaxed)) {
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	(void)tr_send(ctx, *next, MSG_TOKEN, NULL, 0);
	return 0;
}

static int ring_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	*state = calloc(1, sizeof(tr_pid));
	return *state == NULL;
}

static void ring_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour ring_b = {
    .name = "lat.ring",
    .init = ring_init,
    .handle = ring_handle,
    .terminate = ring_terminate,
};

/* A message from the running actor `ctx`, or from this plain thread when
 * `ctx` is NULL (tr_post is not for actors). */
static void put(tr_runtime *rt, tr_ctx *ctx, tr_pid to, const void *data,
    size_t size)
{
	if (ctx != NULL)
		(void)tr_send(ctx, to, MSG_TOKEN, data, size);
	else
		(void)tr_post(rt, to, MSG_TOKEN, data, size);
}

static void start_ring(tr_runtime *rt, tr_ctx *ctx)
{
	tr_pid p[RING];
	for (int i = 0; i < RING; i++) {
		int rc = tr_spawn(&p[i], rt, &ring_b, NULL, NULL);
		if (rc != TR_OK)
			bench_die("ring spawn", rc);
	}
	for (int i = 0; i < RING; i++)
		put(rt, ctx, p[i], &p[(i + 1) % RING], sizeof(tr_pid));
	for (int t = 0; t < TOKENS; t++)
		put(rt, ctx, p[t * (RING / TOKENS)], NULL, 0);
}

/* A ring for each scheduler of `rt`, started by the actor `ctx` or, when
 * it is NULL, by this plain thread. */
static void start_rings(tr_runtime *rt, tr_ctx *ctx)
{
	unsigned rings = tr_runtime_schedulers(rt);
	atomic_store_explicit(&stop_rings, false, memory_order_relaxed);
	for (unsigned r = 0; r < rings; r++)
		start_ring(rt, ctx);
}

/* ---- the calls ----------------------------------------------------------- */

/* The server answers calls, and on the server node also starts its
 * node's rings when asked (a call, answered once they run) and stops
 * them. */
static int server_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type == MSG_RINGS)
		start_rings(tr_runtime_of(ctx), ctx);
	if (m->type == MSG_RINGS_STOP)
		atomic_store_explicit(&stop_rings, true, memory_order_relaxed);
	if ((m->type == MSG_CALL || m->type == MSG_RINGS) && m->ref != 0)
		(void)tr_reply(ctx, m, m->type, m->data, m->size);
	return 0;
}

static const tr_behaviour server_b = {
    .name = "lat.server",
    .handle = server_handle,
};

struct client {
	tr_pid server, report;
	uint64_t n, i;
	uint64_t t0;
	uint64_t ref;
	uint64_t *ns; /* each round trip */
};

static void call(tr_ctx *ctx, struct client *c)
{
	c->t0 = now_ns();
	int rc = tr_request(
	    ctx, &c->ref, c->server, MSG_CALL, &c->i, sizeof(c->i), CALL_MS);
	if (rc != TR_OK)
		bench_die("request", rc);
}

static int client_init(tr_ctx *ctx, void *arg, void **state)
{
	struct client *c = arg;
	*state = c;
	call(ctx, c);
	return 0;
}

static int client_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct client *c = state;
	if (m->ref != c->ref)
		return 0;
	if (m->type == TR_MSG_REFUSED)
		bench_die("call", tr_refusal_code(m));
	if (m->type != MSG_CALL)
		bench_die("call", TR_ETIMEDOUT);
	c->ns[c->i] = now_ns() - c->t0;
	if (++c->i == c->n) {
		(void)tr_send(ctx, c->report, MSG_DONE, NULL, 0);
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	call(ctx, c);
	return 0;
}

static const tr_behaviour client_b = {
    .name = "lat.client",
    .init = client_init,
    .handle = client_handle,
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The value below which a fraction q of the sorted ns[] lies, in us. */
static double pct(const uint64_t *ns, uint64_t n, double q)
{
	uint64_t k = (uint64_t)(q * (double)(n - 1) + 0.5);
	return (double)ns[k] / 1000.0;
}

/* N calls from a client actor to `server`, with the rings running; prints
 * "<name> latency_us p50 A p99 B p999 C" and stops this node's rings. */
static uint64_t calls(tr_runtime *rt, tr_port *port, tr_pid server,
    uint64_t n, const char *name, double *secs)
{
	static struct client c;
	c = (struct client){.server = server,
	    .report = tr_port_pid(port),
	    .n = n,
	    .ns = malloc(n * sizeof(uint64_t))};
	if (c.ns == NULL)
		bench_die(name, TR_ENOMEM);
	double t0 = now_s();
	int rc = tr_spawn(NULL, rt, &client_b, &c, NULL);
	if (rc != TR_OK)
		bench_die("client spawn", rc);
	(void)bench_wait(port);
	*secs = now_s() - t0;
	atomic_store_explicit(&stop_rings, true, memory_order_relaxed);
	qsort(c.ns, c.n, sizeof(*c.ns), cmp_u64);
	printf("%s latency_us p50 %.1f p99 %.1f p999 %.1f\n", name,
	    pct(c.ns, c.n, 0.50), pct(c.ns, c.n, 0.99), pct(c.ns, c.n, 0.999));
	free(c.ns);
	return n;
}

uint64_t bench_call_latency(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	start_rings(rt, NULL);
	tr_pid server;
	int rc = tr_spawn(&server, rt, &server_b, NULL, NULL);
	if (rc != TR_OK)
		bench_die("server spawn", rc);
	(void)calls(rt, port, server, a[0], "call-latency", secs);
	(void)tr_kill(rt, server, TR_REASON_KILL);
	return a[0];
}

#ifdef TROUPE_BENCH_REMOTE
void bench_latency_serve(tr_runtime *rt)
{
	tr_pid server;
	int rc = tr_spawn(&server, rt, &server_b, NULL, NULL);
	if (rc != TR_OK)
		bench_die("server spawn", rc);
	rc = tr_register(rt, BENCH_LATENCY_SERVER, server);
	if (rc != TR_OK)
		bench_die("server register", rc);
}

uint64_t bench_remote_call_latency(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	tr_node *node = bench_remote_start(rt);
	tr_pid server;
	int rc = tr_node_whereis(&server, node, BENCH_SERVER_NAME,
	    BENCH_LATENCY_SERVER, BENCH_SERVER_START_MS);
	if (rc != TR_OK)
		bench_die("server lookup", rc);
	/* The server node's rings run before the first call goes out. */
	tr_msg *reply;
	rc = tr_call(&reply, rt, server, MSG_RINGS, NULL, 0, CALL_MS);
	if (rc != TR_OK)
		bench_die("server rings", rc);
	tr_msg_free(reply);
	start_rings(rt, NULL);
	(void)calls(rt, port, server, a[0], "remote-call-latency", secs);
	(void)tr_post(rt, server, MSG_RINGS_STOP, NULL, 0);
	return a[0];
}
#endif
