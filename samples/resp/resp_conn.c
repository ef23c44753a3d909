/*
 * A connection actor: one client's socket, its parser and its plan.
 *
 * Each turn it runs `pump`: it parses the requests its parser holds,
 * while the plan is below its bounds (max_steps requests, max_bytes of
 * replies held), turns them into operations and steps (resp_cmd.h),
 * sends each shard one batch of all its operations, writes every reply
 * whose turn has come, and asks for more bytes only when the parser holds
 * no whole request and the plan is below its bounds. A send the socket
 * refuses (TR_EAGAIN) keeps the replies here and stops the reading until
 * TR_MSG_SOCK_DRAINED. So a client that sends faster than it reads is
 * held back by TCP, and a connection holds at most about its bounds.
 *
 * It closes after QUIT's +OK, after a protocol error's reply, and when the
 * client has closed and every request read is answered.
 */
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "resp_ops.h"
#include "resp_order.h"

#define KEEP (64u * 1024u) /* buffers larger than this are given back */

struct conn {
	const rs_server *srv;
	tr_sock sock;
	resp_parser parser;
	rs_batch batch;
	rs_order order;
	resp_buf out;  /* replies the socket has not taken yet */
	bool reading;  /* a tr_sock_recv is pending */
	bool blocked;  /* a send got TR_EAGAIN: until DRAINED */
	bool eof;      /* the client has closed */
	bool quitting; /* QUIT or a protocol error: no more requests */
	bool held;     /* the parser may hold whole requests not parsed */
};

static int conn_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	const rs_server *srv = arg;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return 1;
	c->srv = srv;
	if (srv->hold != NULL)
		srv->hold(srv, 1);
	resp_parser_init(&c->parser, &srv->lim);
	resp_buf_init(&c->out);
	if (!rs_batch_init(&c->batch, srv->route.nshards) ||
	    !rs_order_init(&c->order, srv->route.nshards)) {
		rs_batch_fini(&c->batch);
		if (srv->hold != NULL)
			srv->hold(srv, -1);
		free(c);
		return 1;
	}
	*state = c;
	return 0;
}

static bool over_bounds(const struct conn *c)
{
	return rs_order_steps(&c->order) >= c->srv->max_steps ||
	       rs_order_bytes(&c->order) + c->out.len >= c->srv->max_bytes;
}

/* Parses what the parser holds, within the bounds. */
static void parse(struct conn *c)
{
	uint32_t argc;
	resp_arg *argv;
	c->held = false;
	while (!c->quitting) {
		if (over_bounds(c)) {
			c->held = resp_parse_pending(&c->parser) > 0;
			return;
		}
		int r = resp_parse_next(&c->parser, &argc, &argv);
		if (r == RESP_NEED)
			return;
		if (r == RESP_ERROR) {
			/* Redis's way: the error, then the close. */
			resp_buf *b = &c->batch.local;
			b->len = 0;
			resp_buf_put(b, "-ERR ", 5);
			const char *why = resp_parse_error(&c->parser);
			resp_buf_put(b, why, strlen(why));
			resp_buf_put(b, "\r\n", 2);
			rs_order_local(&c->order, b->p, b->len);
			rs_order_step(&c->order, RS_STEP_CLOSE, 0, 0);
			c->quitting = true;
			return;
		}
		if (rs_cmd_run(&c->srv->route, &c->batch, &c->order, argc,
		        argv) == RS_CMD_QUIT)
			c->quitting = true;
	}
}

/* Sends each shard its batch. False when one cannot be sent. */
static bool dispatch(tr_ctx *ctx, struct conn *c)
{
	for (uint32_t s = 0; s < c->srv->route.nshards; s++) {
		size_t len;
		const void *b = rs_batch_get(&c->batch, s, &len);
		if (b != NULL && tr_send(ctx, c->srv->shards[s], RS_MSG_OPS, b,
		                     len) != TR_OK)
			return false;
	}
	rs_batch_clear(&c->batch, KEEP);
	return true;
}

/* Hands the replies written so far to the socket. False when the socket
 * has failed. */
static bool flush(tr_ctx *ctx, struct conn *c)
{
	if (c->blocked || c->out.len == 0)
		return true;
	int rc = tr_sock_send(ctx, c->sock, c->out.p, c->out.len);
	if (rc == TR_EAGAIN) {
		c->blocked = true;
		return true;
	}
	if (rc != TR_OK)
		return false;
	resp_buf_reset(&c->out, KEEP);
	return true;
}

static void finish(tr_ctx *ctx, struct conn *c)
{
	(void)tr_sock_close(ctx, c->sock); /* what is queued goes first */
	tr_exit(ctx, TR_REASON_NORMAL);
}

static int pump(tr_ctx *ctx, struct conn *c)
{
	bool closing;
	for (;;) {
		parse(c);
		if (rs_batch_oom(&c->batch) || c->order.oom)
			return 1;
		if (!dispatch(ctx, c))
			return 1;
		closing = rs_order_emit(&c->order, &c->out);
		if (c->out.oom)
			return 1;
		if (!flush(ctx, c)) {
			tr_exit(ctx, TR_REASON_NORMAL);
			return 0;
		}
		/* Replies written make room: parse what is held. */
		if (!c->held || c->blocked || c->quitting || over_bounds(c))
			break;
	}
	if (c->out.len == 0 &&
	    (closing ||
	        (c->eof && rs_order_steps(&c->order) == 0 && !c->held))) {
		finish(ctx, c);
		return 0;
	}
	if (!c->reading && !c->blocked && !c->eof && !c->quitting && !c->held &&
	    !over_bounds(c)) {
		if (tr_sock_recv(ctx, c->sock, TR_SOCK_RAW, RS_READ_MAX) !=
		    TR_OK) {
			tr_exit(ctx, TR_REASON_NORMAL);
			return 0;
		}
		c->reading = true;
	}
	if (rs_order_steps(&c->order) == 0)
		rs_order_trim(&c->order, KEEP);
	return 0;
}

/* A shard's replies: `size` bytes at `data`. */
static bool replies(struct conn *c, const unsigned char *data, size_t size)
{
	rs_replies_hdr h;
	if (size < sizeof(h))
		return false;
	memcpy(&h, data, sizeof(h));
	if (h.shard >= c->srv->route.nshards ||
	    h.n > (size - sizeof(h)) / sizeof(uint32_t))
		return false;
	const uint32_t *lens = (const uint32_t *)(data + sizeof(h));
	size_t total = 0;
	for (uint32_t i = 0; i < h.n; i++)
		total += lens[i];
	const char *bytes = (const char *)(lens + h.n);
	if (total != size - sizeof(h) - h.n * sizeof(uint32_t))
		return false;
	(void)rs_order_deliver(&c->order, h.shard, h.n, lens, bytes, &c->out);
	return true;
}

static int conn_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct conn *c = state;
	switch (m->type) {
	case RS_MSG_START:
		memcpy(&c->sock, m->data, sizeof(c->sock));
		return pump(ctx, c);
	case RS_MSG_REPLIES:
		if (!replies(c, m->data, m->size))
			return 1;
		return pump(ctx, c);
	case TR_MSG_SOCK_DATA: {
		const tr_sock_data *d = (const tr_sock_data *)m->data;
		c->reading = false;
		if (!resp_parse_feed(&c->parser, d->bytes, d->len))
			return 1;
		return pump(ctx, c);
	}
	case TR_MSG_SOCK_DRAINED:
		c->blocked = false;
		return pump(ctx, c);
	case TR_MSG_SOCK_CLOSED: {
		const tr_sock_status *st = (const tr_sock_status *)m->data;
		c->reading = false;
		c->eof = true;
		if (st->status != TR_ECLOSED) {
			tr_exit(ctx, TR_REASON_NORMAL); /* reset, or failed */
			return 0;
		}
		return pump(ctx, c);
	}
	default:
		return 0;
	}
}

static void conn_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	struct conn *c = state;
	resp_parser_fini(&c->parser);
	rs_batch_fini(&c->batch);
	rs_order_fini(&c->order);
	resp_buf_fini(&c->out);
	if (c->srv->hold != NULL)
		c->srv->hold(c->srv, -1);
	free(c);
}

const tr_behaviour rs_conn_bhv = {
    .name = "resp.conn",
    .init = conn_init,
    .handle = conn_handle,
    .terminate = conn_terminate,
};
