/*
 * troupe-resp: a server of the Redis protocol (RESP2) on troupe's
 * sockets, an actor per connection, keys spread over shard actors
 * (README.md).
 *
 *   troupe-resp [-p PORT] [-u URL] [-s SCHEDULERS] [-n SHARDS]
 *               [-a ACCEPTORS]
 *
 * The default URL is tcp://127.0.0.1:6380 (-p sets the port, -u the whole
 * URL). SHARDS defaults to the number of schedulers, which defaults to
 * one per core. It prints "troupe-resp listening on URL" and serves until
 * SIGINT or SIGTERM, then exits 0.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "resp.h"

static void usage(void)
{
	fprintf(stderr, "usage: troupe-resp [-p PORT] [-u URL] [-s SCHEDULERS] "
	                "[-n SHARDS] [-a ACCEPTORS]\n");
	exit(2);
}

/* A positive number of at most `max`, or usage. */
static int number(const char *s, int max)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0 || v > max)
		usage();
	return (int)v;
}

static int spawn_shards(tr_runtime *rt, rs_server *srv)
{
	for (uint32_t i = 0; i < srv->route.nshards; i++) {
		uint32_t *idx = malloc(sizeof(*idx));
		if (idx == NULL)
			return TR_ENOMEM;
		*idx = i;
		int rc =
		    tr_spawn(&srv->shards[i], rt, &rs_shard_bhv, idx, NULL);
		if (rc != TR_OK) {
			free(idx);
			return rc;
		}
	}
	return TR_OK;
}

/* Starts the listener and waits for its word: TR_OK and the URL, or why
 * not. */
static int start_listener(
    tr_runtime *rt, tr_port *port, rs_listen_args *la, char *url, size_t cap)
{
	la->report = tr_port_pid(port);
	int rc = tr_spawn(NULL, rt, &rs_listener_bhv, la, NULL);
	tr_msg *m = NULL;
	if (rc == TR_OK)
		rc = tr_port_recv(&m, port, 10000);
	if (rc != TR_OK)
		return rc;
	rs_listening r;
	memcpy(&r, m->data, sizeof(r));
	tr_msg_free(m);
	snprintf(url, cap, "%s", r.url);
	return r.rc;
}

int main(int argc, char **argv)
{
	char urlbuf[256], bound[256];
	const char *url = NULL;
	int port = 6380, acceptors = 4, shards = 0, c;
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	rs_listen_args la = {0};
	tr_sock_opts_init(&la.opts);
	/* A client that shuts its write side after its last request still
	 * gets every reply: the connection closes once they are written. */
	la.opts.half_close = true;
	while ((c = getopt(argc, argv, "p:u:s:n:a:")) != -1) {
		switch (c) {
		case 'p':
			port = number(optarg, 65535);
			break;
		case 'u':
			url = optarg;
			break;
		case 's':
			ro.schedulers =
			    (unsigned)number(optarg, TR_MAX_SCHEDULERS);
			break;
		case 'n':
			shards = number(optarg, 4096);
			break;
		case 'a':
			acceptors = number(optarg, 1024);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || acceptors < 1)
		usage();
	if (url == NULL) {
		snprintf(urlbuf, sizeof(urlbuf), "tcp://127.0.0.1:%d", port);
		url = urlbuf;
	}
	/* SIGINT and SIGTERM are waited for below, by this thread alone. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	tr_runtime *rt;
	int rc = tr_runtime_start(&rt, &ro);
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-resp: %s\n", tr_strerror(rc));
		return 1;
	}
	rs_server srv = {.max_steps = RS_MAX_STEPS_DEFAULT,
	    .max_bytes = RS_MAX_BYTES_DEFAULT};
	srv.route.nshards =
	    shards > 0 ? (uint32_t)shards : tr_runtime_schedulers(rt);
	if (getrandom(srv.route.key, sizeof(srv.route.key), 0) !=
	    (ssize_t)sizeof(srv.route.key))
		rc = TR_ENOMEM;
	srv.shards = calloc(srv.route.nshards, sizeof(*srv.shards));
	if (srv.shards == NULL)
		rc = TR_ENOMEM;
	if (rc == TR_OK)
		rc = spawn_shards(rt, &srv);
	tr_port *rport = NULL;
	if (rc == TR_OK)
		rc = tr_port_open(&rport, rt);
	la.url = url;
	la.acceptors = acceptors;
	la.srv = &srv;
	if (rc == TR_OK)
		rc = start_listener(rt, rport, &la, bound, sizeof(bound));
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-resp: %s: %s\n", url, tr_strerror(rc));
		tr_port_close(rport);
		tr_runtime_stop(rt);
		free(srv.shards);
		return 1;
	}
	printf("troupe-resp listening on %s\n", bound);
	fflush(stdout);
	int sig;
	sigwait(&sigs, &sig);
	tr_port_close(rport);
	tr_runtime_stop(rt); /* every socket closes with its owner */
	free(srv.shards);
	return 0;
}
