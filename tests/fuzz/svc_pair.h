/*
 * Two nodes in one process, for the fuzz targets of the node services
 * (fuzz_global.c, fuzz_pg.c). Node A ("fa") runs the service under test;
 * node B ("fb") runs a relay actor that sends what the target gives it
 * to a server of A with tr_send_remote_named. Every input thus reaches
 * A's server the way a peer's message does: over a real, authenticated
 * connection (ipc:// in a fresh temporary directory), as a named send
 * from a pid of B.
 *
 * Order: the target posts to the relay from one thread, so the relay
 * sends in that order, and the transport keeps the order of the pair
 * (relay, A's server): A's server handles the messages of one input in
 * the order they were given. The targets use this to know when an input
 * has been handled: they follow it with a valid message whose effect is
 * visible in A's table (a name, a member), and wait for that effect.
 *
 * Both nodes have fixed incarnations, so that the pids in the checked-in
 * seeds (portable encodings, troupe.Pid) name pids of the running nodes.
 *
 * One pair per process, started once (svc_pair_start) and stopped at
 * exit. Everything here runs on the fuzzer's thread.
 */
#ifndef TR_FUZZ_SVC_PAIR_H_
#define TR_FUZZ_SVC_PAIR_H_

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pg.h>
#include <troupe/troupe.h>

/* Node names and incarnations: the seeds depend on them (gen_seeds.c). */
#define SVC_NODE_A "fa"
#define SVC_NODE_B "fb"
#define SVC_INC_A 1001u
#define SVC_INC_B 1002u
/* The slot of the pids of B that the targets' markers use (any slot: the
 * services do not check that a peer's pid is alive). */
#define SVC_MARK_SLOT 0x00fa0000u

/* Where the relay sends. */
enum { SVC_TO_GLOBAL = 0, SVC_TO_PG = 1 };

/* How long an input may take before the target gives up on A: far more
 * than a loaded machine needs for a round trip. */
#define SVC_WAIT_MS 20000

/* The relay's message: a header, then the payload to send. */
#define SVC_RELAY 100u
struct svc_relay_hdr {
	uint32_t type; /* the wire type to send it as */
	uint32_t to;   /* SVC_TO_* */
};

struct svc_pair {
	tr_runtime *rt[2];
	tr_node *node[2]; /* [0] A, [1] B */
	tr_pid relay;     /* on B */
	char dir[512];
	char url[2][600];
	_Atomic uint64_t failed; /* sends the relay could not make */
	uint64_t failed_seen;
};

static inline int64_t svc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int svc_relay_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct svc_pair *p = state;
	struct svc_relay_hdr h;
	if (m->type != SVC_RELAY || m->size < sizeof(h))
		return 0;
	memcpy(&h, m->data, sizeof(h));
	const char *to = h.to == SVC_TO_GLOBAL
	                     ? TR_GLOBAL_SERVER_NAME
	                     : "troupe.pg:" TR_PG_DEFAULT_SCOPE;
	if (tr_send_remote_named(ctx, SVC_NODE_A, to, h.type,
	        m->data + sizeof(h), m->size - sizeof(h)) != TR_OK)
		atomic_fetch_add_explicit(&p->failed, 1, memory_order_relaxed);
	return 0;
}

static const tr_behaviour svc_relay_b = {
    "fuzz.relay", NULL, svc_relay_handle, NULL};

/* Whether A sees B connected. */
static inline bool svc_pair_up(struct svc_pair *p)
{
	tr_node_stats st;
	tr_node_stats_init(&st);
	return tr_node_stats_get(&st, p->node[0]) == TR_OK && st.peers_up == 1;
}

/* Connects B to A and waits until A has it up too. Aborts on failure:
 * the target cannot run without it. */
static inline void svc_pair_connect(struct svc_pair *p)
{
	int64_t end = svc_now_ms() + SVC_WAIT_MS;
	while (svc_now_ms() < end) {
		if (tr_node_connect(p->node[1], p->url[0], 5000, NULL) ==
		        TR_OK &&
		    svc_pair_up(p)) {
			/* The services' own exchange at NODEUP (pg's
			 * servers sync each other, twice) comes from B's
			 * servers, in no order with the relay's messages:
			 * let it pass before the next input. */
			nanosleep(&(struct timespec){0, 500000000}, NULL);
			return;
		}
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	fprintf(stderr, "svc_pair: nodes %s and %s do not connect\n",
	    SVC_NODE_A, SVC_NODE_B);
	abort();
}

static inline void svc_pair_stop(struct svc_pair *p)
{
	for (int i = 1; i >= 0; i--) {
		if (p->node[i] != NULL)
			tr_node_stop(p->node[i]);
		if (p->rt[i] != NULL)
			tr_runtime_stop(p->rt[i]);
		p->node[i] = NULL;
		p->rt[i] = NULL;
	}
	for (int i = 0; i < 2; i++) {
		char path[700];
		snprintf(path, sizeof(path), "%s/%s", p->dir,
		    i == 0 ? SVC_NODE_A : SVC_NODE_B);
		(void)unlink(path);
	}
	if (p->dir[0] != '\0')
		(void)rmdir(p->dir);
}

/* Starts both nodes (one scheduler each, a 250 ms tick, logs from
 * errors up only: the services log every message they refuse, rate
 * limited), the relay, and the connection. Aborts on failure. */
static inline void svc_pair_start(struct svc_pair *p)
{
	memset(p, 0, sizeof(*p));
	const char *tmp = getenv("TMPDIR");
	snprintf(p->dir, sizeof(p->dir), "%s/troupe-fuzz-XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(p->dir) == NULL) {
		perror("svc_pair: mkdtemp");
		abort();
	}
	static const char *const names[2] = {SVC_NODE_A, SVC_NODE_B};
	static const uint64_t incs[2] = {SVC_INC_A, SVC_INC_B};
	for (int i = 0; i < 2; i++) {
		snprintf(p->url[i], sizeof(p->url[i]), "ipc://%s/%s", p->dir,
		    names[i]);
		tr_runtime_opts ro;
		tr_runtime_opts_init(&ro);
		ro.schedulers = 1;
		ro.max_actors = 4096;
		if (tr_runtime_start(&p->rt[i], &ro) != TR_OK)
			abort();
		tr_runtime_set_log_level(p->rt[i], TR_LOG_ERROR);
		const char *listen[2] = {p->url[i], NULL};
		tr_node_opts o;
		tr_node_opts_init(&o);
		o.name = names[i];
		o.incarnation = incs[i];
		o.listen = listen;
		o.cookie = "fuzz";
		o.tick_ms = 250;
		int rc = tr_node_start(&p->node[i], p->rt[i], &o);
		if (rc != TR_OK) {
			fprintf(stderr, "svc_pair: node %s: %s\n", names[i],
			    tr_strerror(rc));
			abort();
		}
	}
	if (tr_spawn(&p->relay, p->rt[1], &svc_relay_b, p, NULL) != TR_OK)
		abort();
	svc_pair_connect(p);
}

/* Has the relay send `len` bytes as `type` to A's server `to`. Returns
 * TR_OK or the error of the post (the relay's own failure to send is
 * counted, and seen by svc_pair_wait). */
static inline int svc_pair_send(struct svc_pair *p, uint32_t to, uint32_t type,
    const void *data, size_t len)
{
	struct svc_relay_hdr h = {type, to};
	uint8_t stackbuf[4096];
	size_t n = sizeof(h) + len;
	uint8_t *buf = n <= sizeof(stackbuf) ? stackbuf : malloc(n);
	if (buf == NULL)
		return TR_ENOMEM;
	memcpy(buf, &h, sizeof(h));
	if (len > 0)
		memcpy(buf + sizeof(h), data, len);
	int rc = tr_post(p->rt[1], p->relay, SVC_RELAY, buf, n);
	if (buf != stackbuf)
		free(buf);
	return rc;
}

/* Waits until done(arg) holds. True once it does; false when the relay
 * could not send something or the nodes lost each other meanwhile (they
 * are connected again before it returns: the input is given up on, as a
 * network may lose it). A's server neither taking a valid message in
 * SVC_WAIT_MS nor having lost its connection means it has stopped or is
 * stuck: that aborts (a finding). */
static inline bool svc_pair_wait(
    struct svc_pair *p, bool (*done)(void *arg), void *arg, const char *what)
{
	int64_t end = svc_now_ms() + SVC_WAIT_MS;
	for (unsigned i = 0;; i++) {
		if (done(arg))
			return true;
		uint64_t f =
		    atomic_load_explicit(&p->failed, memory_order_relaxed);
		if (f != p->failed_seen || !svc_pair_up(p)) {
			p->failed_seen = f;
			if (!svc_pair_up(p))
				svc_pair_connect(p);
			return false;
		}
		if (svc_now_ms() > end)
			break;
		if (i < 64)
			sched_yield();
		else
			nanosleep(&(struct timespec){0, 20000}, NULL);
	}
	fprintf(stderr,
	    "svc_pair: node %s did not take %s within %d ms: its server "
	    "stopped or is stuck\n",
	    SVC_NODE_A, what, SVC_WAIT_MS);
	abort();
}

#endif
