/*
 * The Redis protocol listener of a node, as a supervised child: each
 * start makes a server description (resp.h) with the pids of the
 * partition actors running then, and runs troupe-resp's listener with
 * it. The connections it starts hold the description (rs_server.hold),
 * which goes when the last of them and the listener have ended: a
 * restart of the partition actors restarts this child too (the tree is
 * rest_for_one), and the old connections, whose partition actors are
 * gone, end at their next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"
#include "resp.h"

/* The listener's address and socket options, set by main. */
const char *kv_resp_url;
tr_sock_opts kv_resp_opts;

struct kv_srv {
	rs_server srv; /* first: the connections see this */
	_Atomic uint32_t refs;
	tr_pid shards[KV_PARTS];
};

static void hold(const rs_server *srv, int delta)
{
	struct kv_srv *k = (struct kv_srv *)(void *)srv;
	if (delta > 0)
		atomic_fetch_add_explicit(&k->refs, 1, memory_order_relaxed);
	else if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) ==
	         1)
		free(k);
}

static int resp_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	struct kv_srv *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return 1;
	k->srv.route = kv_config.route;
	k->srv.shards = k->shards;
	k->srv.max_steps = RS_MAX_STEPS_DEFAULT;
	k->srv.max_bytes = RS_MAX_BYTES_DEFAULT;
	k->srv.hold = hold;
	atomic_init(&k->refs, 1); /* the listener's */
	tr_runtime *rt = tr_runtime_of(ctx);
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		char name[16];
		kv_part_name(name, sizeof(name), p);
		if (tr_whereis(&k->shards[p], rt, name) != TR_OK) {
			free(k);
			return 1;
		}
	}
	rs_listen_args la = {.url = kv_resp_url,
	    .opts = kv_resp_opts,
	    .acceptors = 4,
	    .srv = &k->srv,
	    .report = tr_self(ctx)};
	void *ls = NULL;
	if (rs_listener_bhv.init(ctx, &la, &ls) != 0) {
		fprintf(stderr, "kv %s: cannot listen on %s\n", kv_config.self,
		    kv_resp_url);
		free(k);
		return 1;
	}
	*state = k;
	return 0;
}

static int resp_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	if (m->type == RS_MSG_LISTENING && m->size == sizeof(rs_listening)) {
		const rs_listening *l = (const rs_listening *)m->data;
		printf("kv %s: redis protocol on %s\n", kv_config.self, l->url);
		fflush(stdout);
	}
	return 0;
}

static void resp_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	hold(state, -1);
}

const tr_behaviour kv_resp_bhv = {
    .name = "kv.resp",
    .init = resp_init,
    .handle = resp_handle,
    .terminate = resp_terminate,
};
