/*
 * troupe-kv: one node of a replicated key-value store on the Redis
 * protocol (README.md). Settings come from flags or the environment
 * (docs/deploy.md, "Settings"):
 *
 *   troupe-kv [--name N] [--listen URL] [--resp HOST:PORT]
 *             [--observer HOST:PORT] [--client URL] [--schedulers N]
 *             [--replicas R] [--cluster-size C]
 *
 * The tree of each node (rest_for_one: a child's restart restarts those
 * after it):
 *
 *   kv.root
 *     kv.member   the view of the cluster (kv_member.c)
 *     kv.parts    one_for_all: the KV_PARTS partition actors (kv_part.c)
 *     kv.resp     the Redis protocol listener and its connections
 *     kv          the gate of the client endpoint (kv_gate.c)
 *     kv.parser   its parser, a process child
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "kv_main.h"
#include "resp_ops.h"
#include "troupe/proc.h"
#include "troupe/sup.h"

kv_cfg kv_config;

static struct {
	const char *name, *listen, *resp, *observer, *client;
	unsigned schedulers;
	unsigned replicas, cluster_size, tick_ms;
} set;

static void usage(void)
{
	fprintf(stderr,
	    "usage: troupe-kv [--name N] [--listen URL] [--resp HOST:PORT]\n"
	    "                 [--observer HOST:PORT] [--client URL]\n"
	    "                 [--schedulers N] [--replicas R] "
	    "[--cluster-size C]\n"
	    "Each flag may also come from the environment (TROUPE_NAME, "
	    "TROUPE_LISTEN,\n"
	    "TROUPE_RESP, TROUPE_OBSERVER, TROUPE_CLIENT, TROUPE_SCHEDULERS, "
	    "TROUPE_REPLICAS,\n"
	    "TROUPE_CLUSTER_SIZE); members from TROUPE_SEEDS or TROUPE_DNS; "
	    "the cookie from\n"
	    "$CREDENTIALS_DIRECTORY/cookie, TROUPE_COOKIE_FILE or "
	    "TROUPE_COOKIE.\n");
	exit(2);
}

static unsigned number(const char *what, const char *s, unsigned lo,
    unsigned hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		fprintf(stderr, "troupe-kv: %s: %s is not a number in %u..%u\n",
		    what, s, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

static const char *env_or(const char *var, const char *dflt)
{
	const char *v = getenv(var);
	return v != NULL && v[0] != '\0' ? v : dflt;
}

static void settings(int argc, char **argv)
{
	static char host[256];
	if (gethostname(host, sizeof(host) - 1) != 0)
		snprintf(host, sizeof(host), "kv");
	set.name = env_or("TROUPE_NAME", host);
	set.listen = env_or("TROUPE_LISTEN", "tcp://127.0.0.1:7100");
	set.resp = env_or("TROUPE_RESP", "127.0.0.1:6380");
	set.observer = env_or("TROUPE_OBSERVER", "127.0.0.1:8080");
	set.client = env_or("TROUPE_CLIENT", "tcp://127.0.0.1:7200");
	const char *s = env_or("TROUPE_SCHEDULERS", "0");
	const char *r = env_or("TROUPE_REPLICAS", "2");
	const char *c = env_or("TROUPE_CLUSTER_SIZE", "3");
	const char *t = env_or("TROUPE_TICK_MS", "250");
	static const struct option longs[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"listen", required_argument, NULL, 'l'},
	    {"resp", required_argument, NULL, 'r'},
	    {"observer", required_argument, NULL, 'o'},
	    {"client", required_argument, NULL, 'c'},
	    {"schedulers", required_argument, NULL, 's'},
	    {"replicas", required_argument, NULL, 'R'},
	    {"cluster-size", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (o) {
		case 'n': set.name = optarg; break;
		case 'l': set.listen = optarg; break;
		case 'r': set.resp = optarg; break;
		case 'o': set.observer = optarg; break;
		case 'c': set.client = optarg; break;
		case 's': s = optarg; break;
		case 'R': r = optarg; break;
		case 'C': c = optarg; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	set.schedulers = number("schedulers", s, 0, TR_MAX_SCHEDULERS);
	set.cluster_size = number("cluster size", c, 1, KV_MAX_NODES);
	set.replicas = number("replicas", r, 1, set.cluster_size);
	set.tick_ms = number("TROUPE_TICK_MS", t, 50, 10000);
}

/* The cookie, from a systemd credential, a file or the environment. */
static char *cookie(void)
{
	char path[4096];
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	const char *file = NULL;
	if (dir != NULL) {
		snprintf(path, sizeof(path), "%s/cookie", dir);
		if (access(path, R_OK) == 0)
			file = path;
	}
	if (file == NULL)
		file = getenv("TROUPE_COOKIE_FILE");
	if (file == NULL) {
		const char *v = getenv("TROUPE_COOKIE");
		return v != NULL && v[0] != '\0' ? strdup(v) : NULL;
	}
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		fprintf(stderr, "troupe-kv: %s: %s\n", file, strerror(errno));
		return NULL;
	}
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return n > 0 ? strdup(buf) : NULL;
}

/* The hash's key, the same on every node of the cluster and unknown
 * without the cookie (so nobody outside picks keys that collide). */
static void route_key(uint64_t key[2], const char *ck)
{
	static const uint64_t k0[2] = {0x6b762e706172742eull, 0x6b6579302e2e2e2eull};
	static const uint64_t k1[2] = {0x6b762e706172742eull, 0x6b6579312e2e2e2eull};
	key[0] = rs_hash(k0, ck, strlen(ck));
	key[1] = rs_hash(k1, ck, strlen(ck));
}

int main(int argc, char **argv)
{
	settings(argc, argv);
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = set.schedulers;
	tr_runtime *rt = NULL;
	int rc = tr_runtime_start(&rt, &ro);
	if (rc != TR_OK ||
	    (rc = tr_behaviour_register(rt, "kv.parser", &kv_parser_bhv)) !=
	        TR_OK) {
		fprintf(stderr, "troupe-kv: %s\n", tr_strerror(rc));
		return 1;
	}
	/* In the parser's process this runs the parser and never returns. */
	rc = tr_proc_child_main(rt);
	if (rc != TR_ENOENT) {
		fprintf(stderr, "troupe-kv: parser process: %s\n",
		    tr_strerror(rc));
		return 1;
	}
	char *ck = cookie();
	if (ck == NULL) {
		fprintf(stderr, "troupe-kv: no cookie: set one in "
		                "$CREDENTIALS_DIRECTORY/cookie, "
		                "TROUPE_COOKIE_FILE or TROUPE_COOKIE\n");
		tr_runtime_stop(rt);
		return 1;
	}
	if (strstr(set.listen, "://0.0.0.0:") != NULL ||
	    strstr(set.listen, "://[::]:") != NULL)
		fprintf(stderr,
		    "troupe-kv: warning: %s is what this node tells its peers; "
		    "a node on another host cannot dial it back. Listen on an "
		    "address the other nodes reach (docs/deploy.md).\n",
		    set.listen);
	kv_config.self = set.name;
	kv_config.replicas = set.replicas;
	kv_config.cluster_size = set.cluster_size;
	kv_config.route.nshards = KV_PARTS;
	kv_config.timeout_ms = 2000;
	kv_config.advertise = set.listen;
	route_key(kv_config.route.key, ck);
	int status = kv_run(rt, ck, set.listen, set.resp, set.observer,
	    set.client, set.tick_ms);
	free(ck);
	return status;
}
