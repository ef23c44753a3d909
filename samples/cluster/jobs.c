/*
 * troupe-jobs: a job queue spread over node processes, the starting point
 * for a service of your own (samples/cluster/README.md walks through it).
 *
 *   troupe-jobs NAME LISTEN-URL [--workers N] [--submit N] [--wait-nodes K]
 *
 * Every node runs N workers (4 by default) in the process group
 * "jobs.workers" of the default pg scope, and a dispatcher that competes
 * for the global name "jobs.dispatcher": one node's dispatcher holds the
 * name, the others watch it and take over when it is gone (a crash, its
 * node killed). A node started with --submit N also runs a client, which
 * waits until K nodes (--wait-nodes, 1 by default) form the cluster and
 * then sends N jobs to the holder of the name; the dispatcher hands each
 * to a worker in turn, on any node; the worker answers the client
 * directly, at the pid the job carries (a troupe.Pid inside a protobuf
 * message). The client sends again what is not answered within a second,
 * so jobs get done across a node's loss (at least once), prints its
 * progress every second and exits 0 when every job is done.
 *
 * Members come from the environment: TROUPE_SEEDS (URLs of members) or
 * TROUPE_DNS (a DNS name; docs/distribution.md, "Discovery"). The cookie
 * is TROUPE_COOKIE (an example default when it is not set).
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pb.h>
#include <troupe/pg.h>
#include <troupe/troupe.h>

#include "jobs.pb-c.h"

#define GROUP "jobs.workers"
#define DISPATCHER "jobs.dispatcher"
#define RESEND_MS 1000
#define BUDGET (64u << 10) /* bytes a received job or answer may take */

/* Messages of the sample's own (below TR_PB_TYPE_BASE, so never a
 * protobuf type tag). */
enum { T_TRY = 1, T_TICK, T_FINISHED };

static tr_node *node_of(tr_ctx *ctx)
{
	return tr_node_of(tr_runtime_of(ctx));
}

/* This node's name, for what the sample prints. */
static const char *self_name = "?";

static const char *node_name(tr_ctx *ctx)
{
	(void)ctx;
	return self_name;
}

/* ---- a worker: counts the words of a job's text ------------------------- */

static int worker_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	*state = NULL;
	tr_pid self = tr_self(ctx);
	/* Joined on this node at once; the others learn it in a moment. */
	return tr_pg_join(node_of(ctx), NULL, GROUP, &self, 1) == TR_OK ? 0 : 1;
}

static uint32_t count_words(const char *s)
{
	uint32_t n = 0;
	for (bool in = false; *s != '\0'; s++) {
		bool sp = *s == ' ' || *s == '\t' || *s == '\n';
		n += !sp && !in;
		in = !sp;
	}
	return n;
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != tr_pb_type(&jobs__job__descriptor))
		return 0;
	Jobs__Job *job;
	if (tr_pb_unpack((ProtobufCMessage **)&job, m, &jobs__job__descriptor,
	        BUDGET) != TR_OK)
		return 0; /* malformed: not ours to crash over */
	tr_pid client;
	if (tr_pb_pid_get(&client, node_of(ctx), job->reply_to) == TR_OK) {
		Jobs__Done done = JOBS__DONE__INIT;
		done.id = job->id;
		done.words = count_words(job->text);
		done.worker_node = (char *)node_name(ctx);
		(void)tr_send_pb(
		    ctx, client, TR_PB_TYPE_AUTO, (ProtobufCMessage *)&done);
	}
	tr_pb_free((ProtobufCMessage *)job);
	return 0;
}

static const tr_behaviour worker_b = {
    .name = "jobs.worker", .init = worker_init, .handle = worker_handle};

/* ---- the dispatcher: one active in the cluster, the others on standby --- */

struct dispatcher {
	bool active;
};

static int registered(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg)
{
	(void)reply;
	(void)arg;
	struct dispatcher *d = state;
	tr_pid holder;
	if (status == TR_OK) {
		d->active = true;
		printf("%s: dispatcher active here\n", node_name(ctx));
	} else if (status == TR_EEXIST &&
	           tr_global_whereis(&holder, node_of(ctx), DISPATCHER) ==
	               TR_OK) {
		/* Standby: the holder's DOWN (noconnection if its node goes)
		 * is the cue to try again. */
		char on[TR_NODE_NAME_MAX + 1];
		if (tr_node_name_of(on, sizeof(on), node_of(ctx), holder) ==
		    TR_OK)
			printf("%s: dispatcher on standby (active on %s)\n",
			    node_name(ctx), on);
		(void)tr_monitor(ctx, NULL, holder);
	} else {
		/* Timed out, or the holder went in between: again soon. */
		(void)tr_send_after(
		    ctx, NULL, tr_self(ctx), 200, 0, T_TRY, NULL, 0);
	}
	fflush(stdout);
	return 0;
}

static int dispatcher_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct dispatcher *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return 1;
	*state = d;
	return tr_send(ctx, tr_self(ctx), T_TRY, NULL, 0) == TR_OK ? 0 : 1;
}

static int dispatcher_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct dispatcher *d = state;
	if (m->type == T_TRY || m->type == TR_MSG_DOWN) {
		if (m->type == TR_MSG_DOWN)
			printf("%s: the active dispatcher is gone, taking over\n",
			    node_name(ctx));
		/* Nodes that start apart each take the name; when they
		 * meet, one keeps it and the others are told (NOTIFY; by
		 * default they would be killed, as in Erlang). */
		tr_global_opts o;
		tr_global_opts_init(&o);
		o.method = TR_GLOBAL_NOTIFY;
		if (tr_global_register_then(ctx, NULL, DISPATCHER,
		        tr_self(ctx), &o, 2000, registered, NULL) != TR_OK)
			(void)tr_send_after(
			    ctx, NULL, tr_self(ctx), 200, 0, T_TRY, NULL, 0);
		return 0;
	}
	if (m->type == TR_MSG_GLOBAL_CONFLICT) {
		d->active = false;
		printf("%s: dispatcher lost the name to another node's, on "
		       "standby\n",
		    node_name(ctx));
		fflush(stdout);
		return registered(ctx, d, TR_EEXIST, NULL, NULL);
	}
	if (m->type != tr_pb_type(&jobs__job__descriptor))
		return 0;
	/* The job's bytes go on as they came: the pid inside them is
	 * portable, so the worker's node reads it as the client's. */
	if (d->active)
		(void)tr_pg_send_one(ctx, NULL, GROUP,
		    TR_PG_ROUND_ROBIN | TR_PG_ANY_NODE, m->type, m->data, m->size,
		    NULL);
	else /* sent here in a race with a takeover: to the holder */
		(void)tr_global_send(ctx, DISPATCHER, m->type, m->data, m->size);
	return 0;
}

static void dispatcher_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour dispatcher_b = {.name = "jobs.dispatcher",
    .init = dispatcher_init,
    .handle = dispatcher_handle,
    .terminate = dispatcher_terminate};

/* ---- the client: submits the jobs, counts the answers by node ----------- */

struct client_args {
	uint32_t jobs, wait_nodes;
	tr_pid main_port; /* told T_FINISHED at the end */
};

#define NODES_MAX 16

struct client {
	struct client_args a;
	int64_t *sent_ms; /* per job: when last sent; -1: done */
	uint32_t next, done, resent, ticks;
	char node[NODES_MAX][TR_NODE_NAME_MAX + 1];
	uint32_t by_node[NODES_MAX];
	bool started;
};

static const char *const texts[] = {
    "the quick brown fox jumps over the lazy dog",
    "let it crash",
    "actors share nothing and send messages",
    "a supervisor restarts what crashed",
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void submit(tr_ctx *ctx, struct client *c, uint32_t id)
{
	char name[TR_NODE_NAME_MAX + 1];
	Troupe__Pid me;
	Jobs__Job job = JOBS__JOB__INIT;
	job.id = id;
	job.text = (char *)texts[id % (sizeof(texts) / sizeof(texts[0]))];
	if (tr_pb_pid_set(&me, name, node_of(ctx), tr_self(ctx)) != TR_OK)
		return;
	job.reply_to = &me;
	tr_pid to;
	/* No holder for a moment (a takeover): the resend will do. */
	if (tr_global_whereis(&to, node_of(ctx), DISPATCHER) == TR_OK)
		(void)tr_send_pb(ctx, to, TR_PB_TYPE_AUTO, (ProtobufCMessage *)&job);
	c->sent_ms[id] = now_ms();
}

static void progress(struct client *c, const char *what)
{
	printf("client: %s %u/%u done, %u resent; by node:", what, c->done,
	    c->a.jobs, c->resent);
	for (int i = 0; i < NODES_MAX && c->node[i][0] != '\0'; i++)
		printf(" %s=%u", c->node[i], c->by_node[i]);
	printf("\n");
	fflush(stdout);
}

static int client_init(tr_ctx *ctx, void *arg, void **state)
{
	struct client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return 1;
	c->a = *(const struct client_args *)arg;
	c->sent_ms = calloc(c->a.jobs ? c->a.jobs : 1, sizeof(int64_t));
	if (c->sent_ms == NULL) {
		free(c);
		return 1;
	}
	*state = c;
	/* Ten ticks a second: submits, resends, reports. */
	return tr_send_after(
	           ctx, NULL, tr_self(ctx), 100, 100, T_TICK, NULL, 0) == TR_OK
	           ? 0
	           : 1;
}

static void tick(tr_ctx *ctx, struct client *c)
{
	if (!c->started) {
		size_t n = 0;
		(void)tr_node_list(NULL, 0, &n, node_of(ctx));
		if (n + 1 < c->a.wait_nodes)
			return;
		c->started = true;
		printf("client: %zu node(s) in the cluster, submitting %u "
		       "jobs\n",
		    n + 1, c->a.jobs);
	}
	int64_t now = now_ms();
	for (uint32_t i = 0; i < 10 && c->next < c->a.jobs; i++)
		submit(ctx, c, c->next++);
	for (uint32_t id = 0; id < c->next; id++)
		if (c->sent_ms[id] >= 0 && now - c->sent_ms[id] > RESEND_MS) {
			submit(ctx, c, id);
			c->resent++;
		}
	if (++c->ticks % 10 == 0)
		progress(c, "so far");
}

static int client_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct client *c = state;
	if (m->type == T_TICK) {
		tick(ctx, c);
		return 0;
	}
	if (m->type != tr_pb_type(&jobs__done__descriptor))
		return 0;
	Jobs__Done *d;
	if (tr_pb_unpack((ProtobufCMessage **)&d, m, &jobs__done__descriptor,
	        BUDGET) != TR_OK)
		return 0;
	if (d->id < c->next && c->sent_ms[d->id] >= 0) {
		c->sent_ms[d->id] = -1; /* a second answer counts once */
		c->done++;
		int i = 0;
		while (i < NODES_MAX - 1 && c->node[i][0] != '\0' &&
		       strcmp(c->node[i], d->worker_node) != 0)
			i++;
		if (c->node[i][0] == '\0')
			snprintf(c->node[i], sizeof(c->node[i]), "%s",
			    d->worker_node);
		c->by_node[i]++;
	}
	tr_pb_free((ProtobufCMessage *)d);
	if (c->done == c->a.jobs) {
		progress(c, "finished:");
		(void)tr_send(ctx, c->a.main_port, T_FINISHED, NULL, 0);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static void client_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	struct client *c = state;
	free(c->sent_ms);
	free(c);
}

static const tr_behaviour client_b = {.name = "jobs.client",
    .init = client_init,
    .handle = client_handle,
    .terminate = client_terminate};

/* ---- main ----------------------------------------------------------------
 */

static int usage(const char *argv0)
{
	fprintf(stderr,
	    "usage: %s NAME LISTEN-URL [--workers N] [--submit N] "
	    "[--wait-nodes K]\n"
	    "  members: TROUPE_SEEDS or TROUPE_DNS; cookie: TROUPE_COOKIE\n",
	    argv0);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage(argv[0]);
	uint32_t workers = 4, jobs = 0, wait_nodes = 1;
	for (int i = 3; i < argc; i++) {
		uint32_t *v = strcmp(argv[i], "--workers") == 0  ? &workers
		              : strcmp(argv[i], "--submit") == 0 ? &jobs
		              : strcmp(argv[i], "--wait-nodes") == 0
		                  ? &wait_nodes
		                  : NULL;
		if (v == NULL || i + 1 >= argc)
			return usage(argv[0]);
		*v = (uint32_t)strtoul(argv[++i], NULL, 10);
	}
	const char *cookie = getenv("TROUPE_COOKIE");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	tr_runtime *rt;
	tr_node *node;
	tr_node_opts o;
	const char *listen[] = {argv[2], NULL};
	tr_node_opts_init(&o);
	o.name = self_name = argv[1];
	o.listen = listen;
	o.cookie = cookie != NULL ? cookie : "troupe-jobs example cookie";
	o.tick_ms = 250; /* a lost node is seen within a second */
	int rc = tr_runtime_start(&rt, NULL);
	if (rc == TR_OK && (rc = tr_node_start(&node, rt, &o)) != TR_OK)
		tr_runtime_stop(rt);
	if (rc != TR_OK) {
		fprintf(stderr, "%s: cannot start: %s\n", argv[1],
		    tr_strerror(rc));
		return 1;
	}
	tr_pid pid;
	for (uint32_t i = 0; i < workers && rc == TR_OK; i++)
		rc = tr_spawn(&pid, rt, &worker_b, NULL, NULL);
	if (rc == TR_OK)
		rc = tr_spawn(&pid, rt, &dispatcher_b, NULL, NULL);
	tr_port *port = NULL;
	if (rc == TR_OK && jobs > 0 && (rc = tr_port_open(&port, rt)) == TR_OK) {
		/* Read by the client's init, which may run later. */
		static struct client_args a;
		a = (struct client_args){jobs, wait_nodes, tr_port_pid(port)};
		rc = tr_spawn(&pid, rt, &client_b, &a, NULL);
	}
	if (rc == TR_OK) {
		printf("%s: up at %s with %u workers\n", argv[1],
		    tr_node_listen_url(node, 0), workers);
		fflush(stdout);
	}
	int status = rc == TR_OK ? 0 : 1;
	if (rc == TR_OK && port != NULL) {
		tr_msg *m;
		/* Ends when the client is done, or after two minutes. */
		status = tr_port_recv(&m, port, 120000) == TR_OK ? 0 : 1;
		if (status == 0)
			tr_msg_free(m);
	} else if (rc == TR_OK) {
		int sig;
		sigwait(&set, &sig);
	}
	if (port != NULL)
		tr_port_close(port);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	return status;
}
