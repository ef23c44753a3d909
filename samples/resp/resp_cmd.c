/*
 * The commands (resp_cmd.h): each request's arity and options checked
 * as Redis checks them, with its error texts, then made into operations
 * and steps.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resp_cmd.h"
#include "resp_ops.h"

bool rs_batch_init(rs_batch *b, uint32_t nshards)
{
	memset(b, 0, sizeof(*b));
	b->nshards = nshards;
	b->ops = calloc(nshards, sizeof(*b->ops));
	b->nops = calloc(nshards, sizeof(*b->nops));
	if (b->ops == NULL || b->nops == NULL) {
		rs_batch_fini(b);
		return false;
	}
	return true;
}

void rs_batch_fini(rs_batch *b)
{
	if (b->ops != NULL)
		for (uint32_t i = 0; i < b->nshards; i++)
			resp_buf_fini(&b->ops[i]);
	free(b->ops);
	free(b->nops);
	resp_buf_fini(&b->local);
	memset(b, 0, sizeof(*b));
}

const void *rs_batch_get(rs_batch *b, uint32_t s, size_t *len)
{
	if (b->nops[s] == 0)
		return NULL;
	rs_ops_hdr h = {.nops = b->nops[s]};
	memcpy(b->ops[s].p, &h, sizeof(h));
	*len = b->ops[s].len;
	return b->ops[s].p;
}

void rs_batch_clear(rs_batch *b, size_t keep)
{
	for (uint32_t i = 0; i < b->nshards; i++) {
		if (b->nops[i] != 0 || b->ops[i].cap > keep)
			resp_buf_reset(&b->ops[i], keep);
		b->nops[i] = 0;
	}
}

bool rs_batch_oom(const rs_batch *b)
{
	for (uint32_t i = 0; i < b->nshards; i++)
		if (b->ops[i].oom)
			return true;
	return b->local.oom;
}

/* ---- building blocks ---------------------------------------------------- */

struct env {
	const rs_route *r;
	rs_batch *b;
	rs_order *o;
	uint32_t argc;
	const resp_arg *argv;
};

/* Appends an operation on `key` (NULL for none: shard `shard`) to its
 * shard's batch and the step that takes its reply. */
static void op(struct env *e, uint8_t code, uint8_t flags, int64_t arg,
    const resp_arg *key, const resp_arg *val, uint32_t shard)
{
	uint64_t h = 0;
	size_t klen = key != NULL ? key->len : 0;
	size_t vlen = val != NULL ? val->len : 0;
	if (key != NULL) {
		h = rs_hash(e->r->key, key->p, key->len);
		shard = rs_shard_of(h, e->r->nshards);
	}
	resp_buf *b = &e->b->ops[shard];
	if (e->b->nops[shard] == 0) {
		b->len = 0;
		if (!resp_buf_reserve(b, sizeof(rs_ops_hdr)))
			return;
		b->len = sizeof(rs_ops_hdr);
	}
	size_t sz = rs_op_size(klen, vlen);
	if (!resp_buf_reserve(b, sz))
		return;
	rs_op o = {.code = code,
	    .flags = flags,
	    .klen = (uint32_t)klen,
	    .vlen = (uint32_t)vlen,
	    .arg = arg,
	    .hash = h};
	char *w = b->p + b->len;
	memcpy(w, &o, sizeof(o));
	if (klen > 0)
		memcpy(w + sizeof(o), key->p, klen);
	if (vlen > 0)
		memcpy(w + sizeof(o) + klen, val->p, vlen);
	memset(w + sizeof(o) + klen + vlen, 0, sz - sizeof(o) - klen - vlen);
	b->len += sz;
	e->b->nops[shard]++;
	rs_order_step(e->o, RS_STEP_ONE, shard, 0);
}

/* The connection's own reply, written by the caller into e->b->local. */
static resp_buf *local_begin(struct env *e)
{
	e->b->local.len = 0;
	return &e->b->local;
}

static void local_end(struct env *e)
{
	rs_order_local(e->o, e->b->local.p, e->b->local.len);
}

static void reply_error(struct env *e, const char *text)
{
	resp_put_errorz(local_begin(e), text);
	local_end(e);
}

static void reply_simple(struct env *e, const char *text)
{
	resp_put_simple(local_begin(e), text, strlen(text));
	local_end(e);
}

static bool arg_is(const resp_arg *a, const char *word)
{
	return a->len == strlen(word) && strncasecmp(a->p, word, a->len) == 0;
}

/* ---- commands ----------------------------------------------------------- */

static int c_ping(struct env *e)
{
	if (e->argc > 2) {
		reply_error(
		    e, "ERR wrong number of arguments for 'ping' command");
	} else if (e->argc == 1) {
		reply_simple(e, "PONG");
	} else {
		resp_put_bulk(local_begin(e), e->argv[1].p, e->argv[1].len);
		local_end(e);
	}
	return RS_CMD_GO;
}

static int c_echo(struct env *e)
{
	resp_put_bulk(local_begin(e), e->argv[1].p, e->argv[1].len);
	local_end(e);
	return RS_CMD_GO;
}

static int c_quit(struct env *e)
{
	reply_simple(e, "OK");
	rs_order_step(e->o, RS_STEP_CLOSE, 0, 0);
	return RS_CMD_QUIT;
}

static int c_select(struct env *e)
{
	int64_t db;
	if (!resp_arg_int(e->argv[1].p, e->argv[1].len, &db))
		reply_error(e, "ERR value is not an integer or out of range");
	else if (db != 0)
		reply_error(e, "ERR DB index is out of range");
	else
		reply_simple(e, "OK");
	return RS_CMD_GO;
}

static int c_command(struct env *e)
{
	resp_buf *b = local_begin(e);
	if (e->argc >= 2 && arg_is(&e->argv[1], "count"))
		resp_put_int(b, 0);
	else
		resp_put_array(b, 0);
	local_end(e);
	return RS_CMD_GO;
}

/* CONFIG GET: the parameters benchmarks ask for, as this server has
 * them (no snapshots, no append-only file). */
static int c_config(struct env *e)
{
	static const char *const params[][2] = {
	    {"save", ""},
	    {"appendonly", "no"},
	};
	resp_buf *b = local_begin(e);
	if (!arg_is(&e->argv[1], "get")) {
		char text[200];
		snprintf(text, sizeof(text),
		    "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
		    (int)(e->argv[1].len > 128 ? 128 : e->argv[1].len),
		    e->argv[1].p);
		resp_put_errorz(b, text);
		local_end(e);
		return RS_CMD_GO;
	}
	size_t np = sizeof(params) / sizeof(params[0]), found = 0;
	bool hit[sizeof(params) / sizeof(params[0])] = {false};
	for (uint32_t i = 2; i < e->argc; i++)
		for (size_t k = 0; k < np; k++)
			if (!hit[k] && arg_is(&e->argv[i], params[k][0])) {
				hit[k] = true;
				found++;
			}
	resp_put_array(b, (int64_t)(2 * found));
	for (size_t k = 0; k < np; k++)
		if (hit[k]) {
			resp_put_bulk(b, params[k][0], strlen(params[k][0]));
			resp_put_bulk(b, params[k][1], strlen(params[k][1]));
		}
	local_end(e);
	return RS_CMD_GO;
}

static int c_get(struct env *e)
{
	op(e, RS_OP_GET, 0, 0, &e->argv[1], NULL, 0);
	return RS_CMD_GO;
}

static int c_set(struct env *e)
{
	uint8_t flags = 0;
	int64_t ttl = 0;
	bool expiry = false;
	for (uint32_t i = 3; i < e->argc; i++) {
		const resp_arg *a = &e->argv[i];
		bool ex = arg_is(a, "ex"), px = arg_is(a, "px");
		if (arg_is(a, "nx") && !(flags & RS_SET_XX)) {
			flags |= RS_SET_NX;
		} else if (arg_is(a, "xx") && !(flags & RS_SET_NX)) {
			flags |= RS_SET_XX;
		} else if (arg_is(a, "keepttl") && !expiry) {
			flags |= RS_SET_KEEPTTL;
			expiry = true;
		} else if ((ex || px) && !expiry && i + 1 < e->argc) {
			int64_t v;
			const resp_arg *n = &e->argv[++i];
			if (!resp_arg_int(n->p, n->len, &v)) {
				reply_error(e, "ERR value is not an integer or "
				               "out of range");
				return RS_CMD_GO;
			}
			if (v <= 0 || (ex && v > INT64_MAX / 1000)) {
				reply_error(e, "ERR invalid expire time in "
				               "'set' command");
				return RS_CMD_GO;
			}
			ttl = ex ? v * 1000 : v;
			expiry = true;
		} else {
			reply_error(e, "ERR syntax error");
			return RS_CMD_GO;
		}
	}
	op(e, RS_OP_SET, flags, ttl, &e->argv[1], &e->argv[2], 0);
	return RS_CMD_GO;
}

/* DEL, UNLINK, EXISTS: one integer, the sum over the keys. */
static int keys_sum(struct env *e, uint8_t code)
{
	if (e->argc > 2)
		rs_order_step(e->o, RS_STEP_SUM, 0, e->argc - 1);
	for (uint32_t i = 1; i < e->argc; i++)
		op(e, code, 0, 0, &e->argv[i], NULL, 0);
	return RS_CMD_GO;
}

static int c_del(struct env *e)
{
	return keys_sum(e, RS_OP_DEL);
}

static int c_exists(struct env *e)
{
	return keys_sum(e, RS_OP_EXISTS);
}

static int incr_by(struct env *e, int64_t by)
{
	op(e, RS_OP_INCRBY, 0, by, &e->argv[1], NULL, 0);
	return RS_CMD_GO;
}

static int c_incr(struct env *e)
{
	return incr_by(e, 1);
}

static int c_decr(struct env *e)
{
	return incr_by(e, -1);
}

static int c_incrby(struct env *e)
{
	int64_t v;
	if (!resp_arg_int(e->argv[2].p, e->argv[2].len, &v)) {
		reply_error(e, "ERR value is not an integer or out of range");
		return RS_CMD_GO;
	}
	return incr_by(e, v);
}

static int c_decrby(struct env *e)
{
	int64_t v;
	if (!resp_arg_int(e->argv[2].p, e->argv[2].len, &v)) {
		reply_error(e, "ERR value is not an integer or out of range");
		return RS_CMD_GO;
	}
	if (v == INT64_MIN) {
		reply_error(e, "ERR decrement would overflow");
		return RS_CMD_GO;
	}
	return incr_by(e, -v);
}

static int c_mget(struct env *e)
{
	resp_put_array(local_begin(e), e->argc - 1);
	local_end(e);
	for (uint32_t i = 1; i < e->argc; i++)
		op(e, RS_OP_GET, 0, 0, &e->argv[i], NULL, 0);
	return RS_CMD_GO;
}

static int c_mset(struct env *e)
{
	if (e->argc % 2 != 1) {
		reply_error(
		    e, "ERR wrong number of arguments for 'mset' command");
		return RS_CMD_GO;
	}
	rs_order_step(e->o, RS_STEP_OK, 0, (e->argc - 1) / 2);
	for (uint32_t i = 1; i < e->argc; i += 2)
		op(e, RS_OP_SET, 0, 0, &e->argv[i], &e->argv[i + 1], 0);
	return RS_CMD_GO;
}

/* DBSIZE, FLUSHALL: every shard. */
static int all_shards(struct env *e, uint8_t code, int step)
{
	rs_order_step(e->o, step, 0, e->r->nshards);
	for (uint32_t s = 0; s < e->r->nshards; s++)
		op(e, code, 0, 0, NULL, NULL, s);
	return RS_CMD_GO;
}

static int c_dbsize(struct env *e)
{
	return all_shards(e, RS_OP_DBSIZE, RS_STEP_SUM);
}

static int c_flushall(struct env *e)
{
	if (e->argc == 2 && !arg_is(&e->argv[1], "async") &&
	    !arg_is(&e->argv[1], "sync")) {
		reply_error(e, "ERR syntax error");
		return RS_CMD_GO;
	}
	return all_shards(e, RS_OP_FLUSH, RS_STEP_OK);
}

/* Arity as Redis gives it: n exactly, or -n for at least n. */
#define CMD(name, arity, run)                                                  \
	{                                                                      \
		name, sizeof(name) - 1, arity, run                             \
	}
static const struct cmd {
	const char *name;
	size_t len;
	int arity;
	int (*run)(struct env *e);
} cmds[] = {
    CMD("get", 2, c_get),
    CMD("set", -3, c_set),
    CMD("incr", 2, c_incr),
    CMD("ping", -1, c_ping),
    CMD("del", -2, c_del),
    CMD("mget", -2, c_mget),
    CMD("mset", -3, c_mset),
    CMD("exists", -2, c_exists),
    CMD("incrby", 3, c_incrby),
    CMD("decr", 2, c_decr),
    CMD("decrby", 3, c_decrby),
    CMD("unlink", -2, c_del),
    CMD("echo", 2, c_echo),
    CMD("dbsize", 1, c_dbsize),
    CMD("flushall", -1, c_flushall),
    CMD("flushdb", -1, c_flushall),
    CMD("select", 2, c_select),
    CMD("command", -1, c_command),
    CMD("config", -2, c_config),
    CMD("quit", -1, c_quit),
};

static void unknown(struct env *e)
{
	char text[512];
	const resp_arg *a = &e->argv[0];
	int n = snprintf(text, sizeof(text),
	    "ERR unknown command '%.*s', with args beginning with: ",
	    (int)(a->len > 128 ? 128 : a->len), a->p);
	size_t args = 0;
	for (uint32_t i = 1; i < e->argc && args < 128; i++) {
		a = &e->argv[i];
		size_t room = 128 - args, len = a->len > room ? room : a->len;
		int k = snprintf(text + n, sizeof(text) - (size_t)n, "'%.*s' ",
		    (int)len, a->p);
		n += k;
		args += (size_t)k;
	}
	reply_error(e, text);
}

int rs_cmd_run(const rs_route *r, rs_batch *b, rs_order *o, uint32_t argc,
    const resp_arg *argv)
{
	struct env e = {.r = r, .b = b, .o = o, .argc = argc, .argv = argv};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const struct cmd *c = &cmds[i];
		if (argv[0].len != c->len ||
		    strncasecmp(argv[0].p, c->name, c->len) != 0)
			continue;
		if ((c->arity > 0 && argc != (uint32_t)c->arity) ||
		    (c->arity < 0 && argc < (uint32_t)-c->arity)) {
			char text[200];
			snprintf(text, sizeof(text),
			    "ERR wrong number of arguments for '%s' command",
			    c->name);
			reply_error(&e, text);
			return RS_CMD_GO;
		}
		return c->run(&e);
	}
	unknown(&e);
	return RS_CMD_GO;
}
