/*
 * The client endpoint's side (docs/client.md): the gate, registered as
 * "kv", takes each call (KV_MSG_CMD: one Redis command as a RESP array)
 * and starts a call actor for it; the call actor has the command parsed
 * by the parser, which runs in a process of its own (a process child of
 * the node's tree, kv_parser_bhv), runs it as a connection would (the
 * batches to the partition actors, the replies in order) and answers the
 * call. The bytes of a call come from outside the cluster, so the code
 * that reads them first runs where a crash of it is one exit signal: the
 * gate sees the parser's DOWN, its calls fail with an error, and the
 * supervisor starts a new parser, which says hello (KV_MSG_PARSER_UP).
 *
 * The parser's answer (KV_MSG_PARSED): a uint32_t count and each
 * argument as a uint32_t length and its bytes; or the count UINT32_MAX
 * and an error's text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv.h"
#include "resp_cmd.h"
#include "resp_ops.h"
#include "resp_order.h"
#include "resp_parse.h"

#define CALL_MS 2000
#define KV_MSG_CALL_TIMEOUT 0x4B560053u
#define KV_MSG_CALL_FAIL 0x4B560054u

/* ---- the call actor ----------------------------------------------------- */

struct call_arg {
	tr_msg req; /* the call's sender and ref: tr_reply answers it */
	tr_pid parser;
	size_t len;
	unsigned char cmd[];
};

struct call {
	struct call_arg *a;
	rs_batch batch;
	rs_order order;
	resp_buf out;
	char *args; /* the arguments, NUL after each */
	resp_arg *argv;
	bool sent;
};

static void answer(tr_ctx *ctx, struct call *c, const void *p, size_t n)
{
	(void)tr_reply(ctx, &c->a->req, KV_MSG_CMD_REPLY, p, n);
	tr_exit(ctx, TR_REASON_NORMAL);
}

static void answer_error(tr_ctx *ctx, struct call *c, const char *text)
{
	resp_buf b;
	resp_buf_init(&b);
	resp_put_errorz(&b, text);
	answer(ctx, c, b.p, b.len);
	resp_buf_fini(&b);
}

static int call_init(tr_ctx *ctx, void *arg, void **state)
{
	struct call *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		free(arg);
		return 1;
	}
	c->a = arg;
	resp_buf_init(&c->out);
	*state = c;
	uint64_t ref;
	if (!rs_batch_init(&c->batch, KV_PARTS) ||
	    !rs_order_init(&c->order, KV_PARTS) ||
	    tr_monitor(ctx, &ref, c->a->parser) != TR_OK ||
	    tr_send(ctx, c->a->parser, KV_MSG_PARSE, c->a->cmd, c->a->len) !=
	        TR_OK ||
	    tr_send_after(ctx, NULL, tr_self(ctx), CALL_MS, 0,
	        KV_MSG_CALL_TIMEOUT, NULL, 0) != TR_OK)
		(void)tr_send(ctx, tr_self(ctx), KV_MSG_CALL_FAIL, NULL, 0);
	return 0;
}

/* Reads the parser's answer into argc and argv; an error's text into
 * *err. */
static bool decode(struct call *c, const unsigned char *p, size_t n,
    uint32_t *argc, const char **err)
{
	uint32_t k;
	if (n < 4)
		return false;
	memcpy(&k, p, 4);
	if (k == UINT32_MAX) {
		c->args = malloc(n - 4 + 1);
		if (c->args == NULL)
			return false;
		memcpy(c->args, p + 4, n - 4);
		c->args[n - 4] = '\0';
		*err = c->args;
		return true;
	}
	if (k == 0 || k > (n - 4) / 4)
		return false;
	c->args = malloc(n + k);
	c->argv = calloc(k, sizeof(*c->argv));
	if (c->args == NULL || c->argv == NULL)
		return false;
	size_t at = 4, w = 0;
	for (uint32_t i = 0; i < k; i++) {
		uint32_t len;
		if (n - at < 4)
			return false;
		memcpy(&len, p + at, 4);
		at += 4;
		if (len > n - at)
			return false;
		memcpy(c->args + w, p + at, len);
		c->argv[i] = (resp_arg){.p = c->args + w, .len = len};
		c->args[w + len] = '\0';
		w += (size_t)len + 1;
		at += len;
	}
	*argc = k;
	return at == n;
}

static void parsed(tr_ctx *ctx, struct call *c, const tr_msg *m)
{
	uint32_t argc = 0;
	const char *err = NULL;
	if (!decode(c, m->data, m->size, &argc, &err)) {
		answer_error(ctx, c, "ERR malformed answer of the parser");
		return;
	}
	if (err != NULL) {
		answer_error(ctx, c, err);
		return;
	}
	(void)rs_cmd_run(&kv_config.route, &c->batch, &c->order, argc, c->argv);
	tr_runtime *rt = tr_runtime_of(ctx);
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		size_t len;
		const void *b = rs_batch_get(&c->batch, p, &len);
		char name[16];
		tr_pid pid;
		kv_part_name(name, sizeof(name), p);
		if (b != NULL && (tr_whereis(&pid, rt, name) != TR_OK ||
		                     tr_send(ctx, pid, RS_MSG_OPS, b, len) != TR_OK)) {
			answer_error(ctx, c, "TRYAGAIN the node is restarting");
			return;
		}
	}
	c->sent = true;
}

static void emit(tr_ctx *ctx, struct call *c)
{
	bool closing = rs_order_emit(&c->order, &c->out);
	if (c->out.oom) {
		answer_error(ctx, c, "ERR out of memory");
		return;
	}
	if (closing || rs_order_steps(&c->order) == 0)
		answer(ctx, c, c->out.p, c->out.len);
}

static int call_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct call *c = state;
	switch (m->type) {
	case KV_MSG_PARSED:
		if (!c->sent)
			parsed(ctx, c, m);
		if (c->sent)
			emit(ctx, c); /* a command that needed no partition */
		break;
	case RS_MSG_REPLIES: {
		rs_replies_hdr h;
		if (m->size < sizeof(h))
			break;
		memcpy(&h, m->data, sizeof(h));
		if (h.shard >= KV_PARTS ||
		    h.n > (m->size - sizeof(h)) / sizeof(uint32_t))
			break;
		const uint32_t *lens =
		    (const uint32_t *)((const char *)m->data + sizeof(h));
		rs_order_replies(&c->order, h.shard, h.n, lens,
		    (const char *)(lens + h.n));
		emit(ctx, c);
		break;
	}
	case TR_MSG_DOWN:
		answer_error(ctx, c, "TRYAGAIN the parser died; it restarts");
		break;
	case KV_MSG_CALL_TIMEOUT:
		answer_error(ctx, c, "TRYAGAIN no answer in time");
		break;
	case KV_MSG_CALL_FAIL:
		answer_error(ctx, c, "TRYAGAIN the parser is not running");
		break;
	default:
		break;
	}
	return 0;
}

static void call_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	struct call *c = state;
	rs_batch_fini(&c->batch);
	rs_order_fini(&c->order);
	resp_buf_fini(&c->out);
	free(c->args);
	free(c->argv);
	free(c->a);
	free(c);
}

static const tr_behaviour call_bhv = {
    .name = "kv.call",
    .init = call_init,
    .handle = call_handle,
    .terminate = call_terminate,
};

/* ---- the gate ----------------------------------------------------------- */

struct gate {
	tr_pid parser;
	uint64_t ref;
};

static int gate_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	struct gate *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return 1;
	*state = g;
	return 0;
}

static int gate_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct gate *g = state;
	switch (m->type) {
	case KV_MSG_PARSER_UP:
		if (g->ref != 0)
			(void)tr_demonitor(ctx, g->ref);
		g->parser = m->sender;
		if (tr_monitor(ctx, &g->ref, g->parser) != TR_OK)
			g->ref = 0;
		int32_t os_pid = 0;
		if (m->size == sizeof(os_pid))
			memcpy(&os_pid, m->data, sizeof(os_pid));
		printf("kv %s: parser process up (pid %d)\n", kv_config.self,
		    (int)os_pid);
		fflush(stdout);
		break;
	case TR_MSG_DOWN: {
		const tr_exit_info *x = (const tr_exit_info *)m->data;
		if (x->ref != g->ref)
			break;
		printf("kv %s: parser process down (%s); its supervisor "
		       "restarts it\n",
		    kv_config.self, x->text);
		fflush(stdout);
		g->parser = TR_PID_NONE;
		g->ref = 0;
		break;
	}
	case KV_MSG_CMD: {
		if (m->ref == 0)
			break;
		struct call_arg *a = NULL;
		if (!tr_pid_is_none(g->parser))
			a = malloc(sizeof(*a) + m->size);
		if (a == NULL) {
			static const char e[] =
			    "-TRYAGAIN the parser is restarting\r\n";
			(void)tr_reply(ctx, m, KV_MSG_CMD_REPLY, e, sizeof(e) - 1);
			break;
		}
		memset(&a->req, 0, sizeof(a->req));
		a->req.sender = m->sender;
		a->req.ref = m->ref;
		a->parser = g->parser;
		a->len = m->size;
		memcpy(a->cmd, m->data, m->size);
		if (tr_spawn(NULL, tr_runtime_of(ctx), &call_bhv, a, NULL) !=
		    TR_OK) {
			free(a);
			static const char e[] = "-ERR out of memory\r\n";
			(void)tr_reply(ctx, m, KV_MSG_CMD_REPLY, e, sizeof(e) - 1);
		}
		break;
	}
	default:
		break;
	}
	return 0;
}

static void gate_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

const tr_behaviour kv_gate_bhv = {
    .name = "kv.gate",
    .init = gate_init,
    .handle = gate_handle,
    .terminate = gate_terminate,
};

/* ---- the parser, in its own process ------------------------------------- */

/* Its argument: the parent node's name, to which it says hello. */
static int parser_init(tr_ctx *ctx, void *arg, void **state)
{
	tr_blob *b = arg;
	char parent[TR_NODE_NAME_MAX + 1];
	size_t n = b->size < sizeof(parent) - 1 ? b->size : sizeof(parent) - 1;
	memcpy(parent, b->data, n);
	parent[n] = '\0';
	free(b);
	*state = NULL;
	int32_t os_pid = (int32_t)getpid(); /* for the operator's eyes */
	return tr_send_remote_named(ctx, parent, "kv", KV_MSG_PARSER_UP,
	           &os_pid, sizeof(os_pid)) == TR_OK
	           ? 0
	           : 1;
}

static int parser_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != KV_MSG_PARSE)
		return 0;
	resp_parser ps;
	resp_parser_init(&ps, NULL);
	resp_buf out;
	resp_buf_init(&out);
	uint32_t argc = 0;
	resp_arg *argv = NULL;
	int r = resp_parse_feed(&ps, m->data, m->size)
	            ? resp_parse_next(&ps, &argc, &argv)
	            : RESP_ERROR;
	if (r == RESP_CMD && resp_parse_pending(&ps) != 0) {
		r = RESP_ERROR;
		argc = 0;
	}
	if (r == RESP_CMD) {
		resp_buf_put(&out, &argc, 4);
		for (uint32_t i = 0; i < argc; i++) {
			uint32_t len = (uint32_t)argv[i].len;
			resp_buf_put(&out, &len, 4);
			resp_buf_put(&out, argv[i].p, len);
		}
	} else {
		uint32_t e = UINT32_MAX;
		const char *why = r == RESP_ERROR && resp_parse_error(&ps)
		                      ? resp_parse_error(&ps)
		                      : "one whole command per call";
		resp_buf_put(&out, &e, 4);
		resp_buf_put(&out, "ERR ", 4);
		resp_buf_put(&out, why, strlen(why));
	}
	if (!out.oom)
		(void)tr_send(ctx, m->sender, KV_MSG_PARSED, out.p, out.len);
	resp_buf_fini(&out);
	resp_parser_fini(&ps);
	return 0;
}

const tr_behaviour kv_parser_bhv = {
    .name = "kv.parser",
    .init = parser_init,
    .handle = parser_handle,
};
