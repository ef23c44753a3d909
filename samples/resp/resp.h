/*
 * troupe-resp's actors (README.md): the shards that own the keys, the
 * connection actors that speak RESP to clients, and the listener with its
 * acceptors. What they share is an rs_server, written before the first
 * of them starts and only read afterwards.
 */
#ifndef RESP_H
#define RESP_H

#include <stddef.h>
#include <stdint.h>

#include "resp_cmd.h"
#include "resp_parse.h"
#include "troupe/sock.h"
#include "troupe/troupe.h"

/* Requests a connection has in the plan at most before it stops parsing
 * (and reading), and bytes of replies it holds at most before it does. */
#define RS_MAX_STEPS_DEFAULT 2048u
#define RS_MAX_BYTES_DEFAULT (1024u * 1024u)
/* The most one read asks for. */
#define RS_READ_MAX (64u * 1024u)

typedef struct rs_server {
	rs_route route;     /* nshards and the hash's key */
	tr_pid *shards;     /* route.nshards of them */
	resp_limits lim;    /* of each connection's parser */
	uint32_t max_steps; /* RS_MAX_STEPS_DEFAULT */
	size_t max_bytes;   /* RS_MAX_BYTES_DEFAULT */
	/* NULL, or called with +1 by each connection's init and -1 by its
	 * end: a server that does not outlive every connection (one made
	 * per start of a supervised listener) counts its users with it. */
	void (*hold)(const struct rs_server *srv, int delta);
} rs_server;

/* A shard: spawned with a malloc'd uint32_t, its number (it frees it). */
extern const tr_behaviour rs_shard_bhv;

/* A connection: spawned with the rs_server; its first message,
 * RS_MSG_START from its acceptor, carries its socket (a tr_sock), which
 * it owns by then. */
#define RS_MSG_START 0x52530010u
extern const tr_behaviour rs_conn_bhv;

/* The listener: spawned with an rs_listen_args (borrowed: init reads
 * it). It listens on `url` and starts `acceptors` acceptors, linked to
 * it, then sends `report` an RS_MSG_LISTENING with an rs_listening. */
typedef struct rs_listen_args {
	const char *url;
	tr_sock_opts opts;
	int acceptors;
	const rs_server *srv;
	tr_pid report;
} rs_listen_args;

#define RS_MSG_LISTENING 0x52530011u
typedef struct rs_listening {
	int32_t rc; /* TR_OK, or why it could not listen */
	char url[256];
} rs_listening;

extern const tr_behaviour rs_listener_bhv;

#endif
