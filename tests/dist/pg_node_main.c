/*
 * A test node for process groups (test_node_pg.c): a node process that a
 * test drives one line at a time on its stdin, and that answers each
 * line with one line on its stdout.
 *
 *   troupe-test-pg-node NAME LISTEN-URL COOKIE [--tick MS] [--connect URL]
 *                       [--recv-actor-max BYTES]
 *
 * prints "READY <listen url>", then reads commands (workers are actors
 * numbered from 0 in the order spawned; each counts the TT_PG_WORK
 * messages it gets):
 *
 *   spawn K           K more workers               -> OK <first index>
 *   join G I...       tr_pg_join of workers I...   -> OK <rc>
 *   leave G I...      tr_pg_leave                  -> OK <rc>
 *   kill I            worker I exits (killed)      -> OK
 *   members G         -> M <members> <local members>
 *   got               -> GOT <count of worker 0> <of 1> ...
 *   stats             -> S <groups> <local> <remote> <peers> <malformed>
 *   garbage NODE      a malformed Sync and Update to NODE's default scope
 *                     server                       -> OK <rc>
 *   quit              stops the node and exits     -> BYE
 *
 * It dies with its parent (PR_SET_PDEATHSIG).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <troupe/node.h>
#include <troupe/pg.h>
#include <troupe/troupe.h>

#include "node_proc.h"

#define TT_PG_WORK 200u
#define TT_PG_GARBAGE 201u
#define WORKERS_MAX 1024

static _Atomic uint64_t got[WORKERS_MAX];
static tr_pid workers[WORKERS_MAX];
static int nworkers;

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	if (m->type == TT_PG_WORK)
		atomic_fetch_add_explicit(
		    &got[(intptr_t)state], 1, memory_order_relaxed);
	return 0;
}

static const tr_behaviour worker_b = {"worker", NULL, worker_handle, NULL};

/* Sends bytes that are no protobuf of pg's to the default scope server
 * of the node named in the payload. */
static int garbage_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != TT_PG_GARBAGE || m->ref == 0)
		return 0;
	char node[TR_NODE_NAME_MAX + 1];
	snprintf(
	    node, sizeof(node), "%.*s", (int)m->size, (const char *)m->data);
	static const unsigned char junk[] = {
	    0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
	int rc = tr_send_remote_named(ctx, node,
	    "troupe.pg:" TR_PG_DEFAULT_SCOPE, 0xFFFD0200u, junk, sizeof(junk));
	if (rc == TR_OK)
		rc = tr_send_remote_named(ctx, node,
		    "troupe.pg:" TR_PG_DEFAULT_SCOPE, 0xFFFD0201u, junk,
		    sizeof(junk));
	int32_t r = rc;
	(void)tr_reply(ctx, m, TT_PG_GARBAGE, &r, sizeof(r));
	return 0;
}

static const tr_behaviour garbage_b = {"garbage", NULL, garbage_handle, NULL};

static int pids_of(char *rest, tr_pid *v, int cap)
{
	int k = 0;
	for (char *t = strtok(rest, " \n"); t != NULL && k < cap;
	     t = strtok(NULL, " \n")) {
		int i = atoi(t);
		v[k++] = i >= 0 && i < nworkers ? workers[i] : TR_PID_NONE;
	}
	return k;
}

int main(int argc, char **argv)
{
	static struct tt_proc p;
	if (tt_proc_init(&p, argc, argv, "pg node", 0) != 0)
		return 2;
	for (int i = 4; i < argc; i++) {
		if (tt_proc_opt(&p, argc, argv, &i))
			continue;
		if (strcmp(argv[i], "--recv-actor-max") == 0 && i + 1 < argc)
			p.o.recv_actor_max = (size_t)atol(argv[++i]);
		else
			return 2;
	}
	if (tt_proc_start(&p, 2) != 0)
		return 1;
	tr_runtime *rt = p.rt;
	tr_node *node = p.node;
	tr_pid garbage;
	if (tr_spawn(&garbage, rt, &garbage_b, NULL, NULL) != TR_OK ||
	    tt_proc_ready(&p) != 0)
		return 1;

	char line[4096];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char cmd[32], arg[TR_PG_NAME_MAX + 1];
		int off = 0;
		if (sscanf(line, "%31s%n", cmd, &off) != 1)
			continue;
		char *rest = line + off;
		tr_pid v[64];
		if (strcmp(cmd, "spawn") == 0) {
			int k = atoi(rest), first = nworkers;
			for (int i = 0; i < k && nworkers < WORKERS_MAX; i++) {
				intptr_t ix = nworkers;
				if (tr_spawn(&workers[nworkers], rt, &worker_b,
				        (void *)ix, NULL) == TR_OK)
					nworkers++;
			}
			printf("OK %d\n", first);
		} else if ((strcmp(cmd, "join") == 0 ||
		               strcmp(cmd, "leave") == 0) &&
		           sscanf(rest, "%255s%n", arg, &off) == 1) {
			int k = pids_of(rest + off, v, 64);
			int rc =
			    cmd[0] == 'j'
			        ? tr_pg_join(node, NULL, arg, v, (size_t)k)
			        : tr_pg_leave(node, NULL, arg, v, (size_t)k);
			printf("OK %d\n", rc);
		} else if (strcmp(cmd, "kill") == 0) {
			int i = atoi(rest);
			if (i >= 0 && i < nworkers)
				(void)tr_kill(rt, workers[i], TR_REASON_KILL);
			printf("OK\n");
		} else if (strcmp(cmd, "members") == 0 &&
		           sscanf(rest, "%255s", arg) == 1) {
			size_t a = 0, l = 0;
			(void)tr_pg_members(NULL, 0, &a, node, NULL, arg);
			(void)tr_pg_local_members(NULL, 0, &l, node, NULL, arg);
			printf("M %zu %zu\n", a, l);
		} else if (strcmp(cmd, "got") == 0) {
			printf("GOT");
			for (int i = 0; i < nworkers; i++)
				printf(" %llu",
				    (unsigned long long)atomic_load(&got[i]));
			printf("\n");
		} else if (strcmp(cmd, "stats") == 0) {
			tr_pg_stats st;
			tr_pg_stats_init(&st);
			(void)tr_pg_stats_get(&st, node, NULL);
			printf("S %u %llu %llu %u %llu\n", st.groups,
			    (unsigned long long)st.local_members,
			    (unsigned long long)st.remote_members, st.peers,
			    (unsigned long long)st.refused_malformed);
		} else if (strcmp(cmd, "garbage") == 0 &&
		           sscanf(rest, "%255s", arg) == 1) {
			tr_msg *r = NULL;
			int rc = tr_call(&r, rt, garbage, TT_PG_GARBAGE, arg,
			    strlen(arg), 5000);
			int32_t x = rc;
			if (rc == TR_OK && r->size == sizeof(x))
				memcpy(&x, r->data, sizeof(x));
			tr_msg_free(r);
			printf("OK %d\n", (int)x);
		} else if (strcmp(cmd, "quit") == 0) {
			break;
		} else {
			printf("ERR\n");
		}
		fflush(stdout);
	}
	tt_proc_stop(&p);
	printf("BYE\n");
	fflush(stdout);
	return 0;
}
