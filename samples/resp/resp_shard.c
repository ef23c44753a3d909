/*
 * A shard: the only owner of its keys (resp_store.h). It answers each
 * batch of operations (RS_MSG_OPS) with one message of replies, to the
 * batch's sender, and every 100 ms sweeps some slots for expired keys.
 */
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "resp_ops.h"
#include "resp_store.h"

#define SWEEP_MS 100
#define SWEEP_SLOTS 4096u
#define OUT_KEEP (256u * 1024u)

struct shard {
	uint32_t idx;
	rs_store st;
	resp_buf out;
};

static int shard_init(tr_ctx *ctx, void *arg, void **state)
{
	struct shard *s = calloc(1, sizeof(*s));
	if (s != NULL)
		memcpy(&s->idx, arg, sizeof(s->idx));
	free(arg);
	if (s == NULL)
		return 1;
	rs_store_init(&s->st);
	resp_buf_init(&s->out);
	int rc = tr_send_after(
	    ctx, NULL, tr_self(ctx), SWEEP_MS, SWEEP_MS, RS_MSG_SWEEP, NULL, 0);
	if (rc != TR_OK) {
		free(s);
		return 1;
	}
	*state = s;
	return 0;
}

static int shard_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct shard *s = state;
	switch (m->type) {
	case RS_MSG_OPS:
		s->out.len = 0;
		if (!rs_store_exec(
		        &s->st, m->data, m->size, rs_now_ms(), &s->out))
			return 1; /* out of memory (a batch is never
			           * malformed) */
		memcpy(s->out.p + offsetof(rs_replies_hdr, shard), &s->idx,
		    sizeof(s->idx));
		/* A connection that has gone does not need its replies. */
		(void)tr_send(
		    ctx, m->sender, RS_MSG_REPLIES, s->out.p, s->out.len);
		if (s->out.cap > OUT_KEEP)
			resp_buf_reset(&s->out, OUT_KEEP);
		return 0;
	case RS_MSG_SWEEP:
		(void)rs_store_sweep(&s->st, rs_now_ms(), SWEEP_SLOTS);
		return 0;
	default:
		return 0;
	}
}

static void shard_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	struct shard *s = state;
	rs_store_fini(&s->st);
	resp_buf_fini(&s->out);
	free(s);
}

const tr_behaviour rs_shard_bhv = {
    .name = "resp.shard",
    .init = shard_init,
    .handle = shard_handle,
    .terminate = shard_terminate,
};
