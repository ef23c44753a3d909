/*
 * A node's start, its tree (main.c's header draws it) and its life until
 * a signal.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"
#include "kv_main.h"
#include "troupe/observer.h"
#include "troupe/proc.h"
#include "troupe/sup.h"

static uint32_t part_idx[KV_PARTS];
static char part_ids[KV_PARTS][16];
static tr_child_spec part_specs[KV_PARTS];
static tr_sup_args parts_args;
static tr_proc_spec parser_spec;
static const char *parser_env[2];

static void tree_specs(tr_child_spec *specs, tr_node *node)
{
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		part_idx[p] = p;
		kv_part_name(part_ids[p], sizeof(part_ids[p]), p);
		tr_child_spec_init(
		    &part_specs[p], part_ids[p], &kv_part_bhv, &part_idx[p]);
		part_specs[p].name = part_ids[p];
	}
	/* A partition actor that crashes takes its siblings along: the
	 * listener's connections hold all their pids, and the other
	 * nodes' copies make up for what the restart forgets. */
	parts_args.specs = part_specs;
	parts_args.nspecs = KV_PARTS;
	tr_sup_flags_init(&parts_args.flags);
	parts_args.flags.strategy = TR_SUP_ONE_FOR_ALL;
	parts_args.flags.intensity = 0;

	tr_child_spec_init(&specs[0], "kv.member", &kv_member_bhv, NULL);
	specs[0].name = "kv.member";
	tr_child_spec_init(&specs[1], "kv.parts", &tr_sup_behaviour, &parts_args);
	specs[1].type = TR_CHILD_SUPERVISOR;
	specs[1].shutdown_ms = TR_SHUTDOWN_INFINITY;
	tr_child_spec_init(&specs[2], "kv.resp", &kv_resp_bhv, NULL);
	tr_child_spec_init(&specs[3], "kv", &kv_gate_bhv, NULL);
	specs[3].name = "kv";

	parser_env[0] = tr_proc_sanitizer_env();
	tr_proc_spec_init(&parser_spec, "kv.parser");
	parser_spec.arg = kv_config.self;
	parser_spec.arg_size = strlen(kv_config.self);
	parser_spec.env = parser_env;
	parser_spec.memory_limit = 256u << 20;
	parser_spec.warm = 1; /* a restart takes a process started ahead */
	(void)node;
	tr_proc_child_spec(&specs[4], "kv.parser", &parser_spec);
	specs[4].shutdown_ms = 1000;
}

/* "SCHEME://HOST:PORT", malloc'd. */
static char *url_of(const char *scheme, const char *hostport)
{
	size_t n = strlen(scheme) + strlen(hostport) + 4;
	char *u = malloc(n);
	if (u != NULL)
		snprintf(u, n, "%s://%s", scheme, hostport);
	return u;
}

int kv_run(tr_runtime *rt, const char *cookie, const char *listen,
    const char *resp, const char *observer, const char *client,
    unsigned tick_ms)
{
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	char *obs = url_of("http", observer);
	char *rurl = url_of("tcp", resp);
	const char *listens[] = {listen, NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = kv_config.self;
	no.cookie = cookie;
	no.listen = listens;
	no.tick_ms = tick_ms;
	no.client_url = client;
	no.observer_url = obs;
	tr_node *node = NULL;
	int rc = obs != NULL && rurl != NULL ? tr_node_start(&node, rt, &no)
	                                     : TR_ENOMEM;
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-kv: node %s on %s: %s\n", kv_config.self,
		    listen, tr_strerror(rc));
		tr_runtime_stop(rt);
		free(obs);
		free(rurl);
		return 1;
	}
	/* Not ready for the clients until the member actor says so (the
	 * loop below): the observer's /api/ready, a readiness probe's. */
	(void)tr_node_set_ready(
	    node, false, "forming the cluster: waiting for a majority");
	kv_config.node = node;
	kv_resp_url = rurl;
	tr_sock_opts_init(&kv_resp_opts);
	kv_resp_opts.half_close = true;

	tr_child_spec specs[5];
	tree_specs(specs, node);
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.strategy = TR_SUP_REST_FOR_ONE;
	fl.intensity = 20;
	fl.period_ms = 10000;
	tr_pid root = TR_PID_NONE;
	int ir = 0;
	rc = tr_sup_start(&root, rt, &fl, specs, 5, &ir);
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-kv: %s: the tree did not start: %s "
		                "(reason %d)\n",
		    kv_config.self, tr_strerror(rc), ir);
		tr_node_stop(node);
		tr_runtime_stop(rt);
		free(obs);
		free(rurl);
		return 1;
	}
	printf("kv %s: node %s, %u schedulers, %u partitions, %u copies of "
	       "each key, cluster of %u; observer %s; client endpoint %s\n",
	    kv_config.self, listen, tr_runtime_schedulers(rt), KV_PARTS,
	    kv_config.replicas, kv_config.cluster_size, obs, client);
	fflush(stdout);

	bool ready = false;
	int status = 0;
	for (;;) {
		struct timespec ts = {.tv_nsec = 100 * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &ts);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		bool now = atomic_load_explicit(&kv_ready, memory_order_acquire);
		if (now != ready)
			(void)tr_node_set_ready(node, now,
			    "no majority in view, or a partition without a "
			    "primary");
		if (now && !ready) {
			printf("kv %s: ready\n", kv_config.self);
			fflush(stdout);
			kv_notify("READY=1\nSTATUS=serving");
		}
		ready = now;
		if (!tr_pid_is_none(root) && !tr_is_alive(rt, root)) {
			fprintf(stderr, "kv %s: the tree gave up\n",
			    kv_config.self);
			status = 1;
			break;
		}
	}
	kv_notify("STOPPING=1");
	printf("kv %s: stopping\n", kv_config.self);
	fflush(stdout);
	tr_kill(rt, root, TR_REASON_SHUTDOWN);
	for (int i = 0; i < 100 && tr_is_alive(rt, root); i++)
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	free(obs);
	free(rurl);
	return status;
}
