/*
 * The parts of troupe-resp under its connection and shard actors, with no
 * actors (samples/resp: resp_cmd.c, resp_order.c, resp_store.c): requests
 * made into batches, run on stores, and their replies delivered in every
 * order between the shards, must give Redis's replies in the order of
 * the requests; and the store alone (its table growing and shrinking,
 * times to live, the sweep).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "resp_cmd.h"
#include "resp_ops.h"
#include "resp_order.h"
#include "resp_parse.h"
#include "resp_store.h"

#define SHARDS 3

/* A connection's pipeline without actors: parse, batch, run each shard's
 * batch on its store, deliver the answers in the shard order `perm`. */
struct pipe {
	rs_route route;
	rs_batch batch;
	rs_order order;
	rs_store st[SHARDS];
	resp_parser parser;
	resp_buf out;
	int64_t now;
	bool closed;
};

static void pipe_init(struct pipe *p)
{
	memset(p, 0, sizeof(*p));
	p->route.nshards = SHARDS;
	p->route.key[0] = 0x0123456789abcdefull;
	p->route.key[1] = 0xfedcba9876543210ull;
	assert_true(rs_batch_init(&p->batch, SHARDS));
	assert_true(rs_order_init(&p->order, SHARDS));
	for (int i = 0; i < SHARDS; i++)
		rs_store_init(&p->st[i]);
	resp_parser_init(&p->parser, NULL);
	resp_buf_init(&p->out);
	p->now = 1000;
}

static void pipe_fini(struct pipe *p)
{
	rs_batch_fini(&p->batch);
	rs_order_fini(&p->order);
	for (int i = 0; i < SHARDS; i++)
		rs_store_fini(&p->st[i]);
	resp_parser_fini(&p->parser);
	resp_buf_fini(&p->out);
}

/* Feeds `in`, runs every request, answers the shards in order perm[]
 * (a permutation of the shards), half of them through the queue
 * (rs_order_replies) and half straight (rs_order_deliver). Returns the
 * output so far, NUL-ended. */
static const char *pipe_run(struct pipe *p, const char *in, const int *perm)
{
	uint32_t argc;
	resp_arg *argv;
	assert_true(resp_parse_feed(&p->parser, in, strlen(in)));
	while (resp_parse_next(&p->parser, &argc, &argv) == RESP_CMD)
		if (rs_cmd_run(&p->route, &p->batch, &p->order, argc, argv) ==
		    RS_CMD_QUIT)
			break;
	assert_false(rs_batch_oom(&p->batch));
	resp_buf ans;
	resp_buf_init(&ans);
	for (int k = 0; k < SHARDS; k++) {
		int s = perm[k];
		size_t len;
		const void *b = rs_batch_get(&p->batch, (uint32_t)s, &len);
		if (b == NULL)
			continue;
		ans.len = 0;
		assert_true(rs_store_exec(&p->st[s], b, len, p->now, &ans));
		rs_replies_hdr h;
		memcpy(&h, ans.p, sizeof(h));
		const uint32_t *lens = (const uint32_t *)(ans.p + sizeof(h));
		const char *bytes = (const char *)(lens + h.n);
		if (k % 2 == 0) {
			p->closed |= rs_order_deliver(
			    &p->order, (uint32_t)s, h.n, lens, bytes, &p->out);
		} else {
			rs_order_replies(
			    &p->order, (uint32_t)s, h.n, lens, bytes);
			p->closed |= rs_order_emit(&p->order, &p->out);
		}
	}
	rs_batch_clear(&p->batch, 0);
	p->closed |= rs_order_emit(&p->order, &p->out);
	assert_false(p->order.oom);
	resp_buf_fini(&ans);
	resp_buf_put(&p->out, "", 1);
	p->out.len--;
	return p->out.p;
}

static const int perms[6][SHARDS] = {
    {0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};

/* Every order between the shards gives `want`. */
static void check(const char *in, const char *want)
{
	for (int k = 0; k < 6; k++) {
		struct pipe p;
		pipe_init(&p);
		const char *got = pipe_run(&p, in, perms[k]);
		if (strcmp(got, want) != 0)
			fail_msg("order %d: [%s] gave [%s], want [%s]", k, in,
			    got, want);
		assert_int_equal(rs_order_steps(&p.order), 0);
		assert_int_equal(rs_order_bytes(&p.order), 0);
		pipe_fini(&p);
	}
}

static void test_commands(void **state)
{
	(void)state;
	check("PING\r\nPING hi\r\nECHO x\r\n",
	    "+PONG\r\n$2\r\nhi\r\n$1\r\nx\r\n");
	check("SET a 1\r\nGET a\r\nGET b\r\nINCR a\r\nINCRBY a -5\r\n"
	      "DECR a\r\nDECRBY c 3\r\n",
	    "+OK\r\n$1\r\n1\r\n$-1\r\n:2\r\n:-3\r\n:-4\r\n:-3\r\n");
	check("MSET a 1 b 2 c 3 d 4\r\nMGET d c x b a\r\nEXISTS a b x c d a\r\n"
	      "DEL a b x\r\nDBSIZE\r\nFLUSHALL\r\nDBSIZE\r\n",
	    "+OK\r\n*5\r\n$1\r\n4\r\n$1\r\n3\r\n$-1\r\n$1\r\n2\r\n$1\r\n1\r\n"
	    ":5\r\n:2\r\n:2\r\n+OK\r\n:0\r\n");
	check("SET k v NX\r\nSET k w NX\r\nSET k x XX\r\nSET j y XX\r\n"
	      "GET k\r\nGET j\r\n",
	    "+OK\r\n$-1\r\n+OK\r\n$-1\r\n$1\r\nx\r\n$-1\r\n");
	check("SET s abc\r\nINCR s\r\nSET n 9223372036854775807\r\nINCR n\r\n"
	      "INCRBY n x\r\n",
	    "+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n"
	    "-ERR increment or decrement would overflow\r\n"
	    "-ERR value is not an integer or out of range\r\n");
	check(
	    "GET\r\nSET a\r\nMSET a\r\nMSET a 1 b\r\nPING a b\r\nNOPE x y\r\n",
	    "-ERR wrong number of arguments for 'get' command\r\n"
	    "-ERR wrong number of arguments for 'set' command\r\n"
	    "-ERR wrong number of arguments for 'mset' command\r\n"
	    "-ERR wrong number of arguments for 'mset' command\r\n"
	    "-ERR wrong number of arguments for 'ping' command\r\n"
	    "-ERR unknown command 'NOPE', with args beginning with: 'x' 'y' "
	    "\r\n");
	check("SET a 1 EX 0\r\nSET a 1 EX x\r\nSET a 1 PX 10 EX 5\r\n"
	      "SET a 1 FOO\r\nSET a 1 NX XX\r\n",
	    "-ERR invalid expire time in 'set' command\r\n"
	    "-ERR value is not an integer or out of range\r\n"
	    "-ERR syntax error\r\n-ERR syntax error\r\n-ERR syntax error\r\n");
	check("CONFIG GET save appendonly nothing\r\nCONFIG GET x\r\n"
	      "COMMAND DOCS\r\nCOMMAND COUNT\r\nSELECT 0\r\nSELECT 1\r\n",
	    "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n"
	    "*0\r\n*0\r\n:0\r\n+OK\r\n-ERR DB index is out of range\r\n");
	/* The longest times to live. */
	check(
	    "SET a 1 PX 9223372036854775807\r\nSET b 2 EX 9223372036854775\r\n"
	    "SET c 3 EX 9223372036854776\r\nGET a\r\nGET b\r\n",
	    "+OK\r\n+OK\r\n-ERR invalid expire time in 'set' command\r\n"
	    "$1\r\n1\r\n$1\r\n2\r\n");
	/* Case does not matter in names and options. */
	check("set K v px 100 nX\r\nget K\r\nGet k\r\n",
	    "+OK\r\n$1\r\nv\r\n$-1\r\n");
}

/* QUIT: its +OK, then nothing more. */
static void test_quit(void **state)
{
	(void)state;
	for (int k = 0; k < 6; k++) {
		struct pipe p;
		pipe_init(&p);
		const char *got = pipe_run(
		    &p, "SET a 1\r\nGET a\r\nQUIT\r\nGET a\r\n", perms[k]);
		assert_string_equal(got, "+OK\r\n$1\r\n1\r\n+OK\r\n");
		assert_true(p.closed);
		pipe_fini(&p);
	}
}

/* Many requests over many keys, in one batch: replies in order. */
static void test_many(void **state)
{
	(void)state;
	resp_buf in, want;
	resp_buf_init(&in);
	resp_buf_init(&want);
	for (int i = 0; i < 3000; i++) {
		char r[64], w[64];
		snprintf(
		    r, sizeof(r), "SET key:%d %d\r\nGET key:%d\r\n", i, i, i);
		snprintf(w, sizeof(w), "+OK\r\n$%zu\r\n%d\r\n",
		    (size_t)snprintf(NULL, 0, "%d", i), i);
		resp_buf_put(&in, r, strlen(r));
		resp_buf_put(&want, w, strlen(w));
	}
	resp_buf_put(&in, "DBSIZE\r\n", 9);
	resp_buf_put(&want, ":3000\r\n", 8);
	check(in.p, want.p);
	resp_buf_fini(&in);
	resp_buf_fini(&want);
}

/* Times to live: expired when read, or by the sweep. */
static void test_expiry(void **state)
{
	(void)state;
	struct pipe p;
	pipe_init(&p);
	assert_string_equal(pipe_run(&p,
	                        "SET a 1 PX 100\r\nSET b 2 EX 1\r\n"
	                        "SET c 3\r\nINCR a\r\n",
	                        perms[0]),
	    "+OK\r\n+OK\r\n+OK\r\n:2\r\n");
	p.out.len = 0;
	p.now += 100; /* a's deadline: gone, and INCR kept its TTL */
	assert_string_equal(
	    pipe_run(&p, "GET a\r\nGET b\r\nDBSIZE\r\n", perms[0]),
	    "$-1\r\n$1\r\n2\r\n:2\r\n");
	p.out.len = 0;
	/* SET without EX clears the TTL; KEEPTTL keeps it. */
	assert_string_equal(pipe_run(&p,
	                        "SET c 4 PX 10\r\nSET c 5 KEEPTTL\r\n"
	                        "SET b 6\r\n",
	                        perms[0]),
	    "+OK\r\n+OK\r\n+OK\r\n");
	p.out.len = 0;
	p.now += 2000;
	size_t before = 0;
	for (int i = 0; i < SHARDS; i++)
		before += p.st[i].count;
	assert_int_equal(before, 2); /* c expired, not yet removed */
	size_t swept = 0;
	for (int i = 0; i < SHARDS; i++)
		swept += rs_store_sweep(&p.st[i], p.now, 1000);
	assert_int_equal(swept, 1);
	assert_string_equal(
	    pipe_run(&p, "GET b\r\nGET c\r\n", perms[0]), "$1\r\n6\r\n$-1\r\n");
	pipe_fini(&p);
}

/* The table alone: many keys in, half out, the rest all found. */
static void test_table(void **state)
{
	(void)state;
	struct pipe p;
	pipe_init(&p);
	resp_buf in, want;
	resp_buf_init(&in);
	resp_buf_init(&want);
	for (int i = 0; i < 20000; i++) {
		char r[64];
		snprintf(r, sizeof(r), "SET k%d v%d\r\n", i, i);
		resp_buf_put(&in, r, strlen(r));
	}
	resp_buf_put(&in, "", 1);
	pipe_run(&p, in.p, perms[0]);
	in.len = 0;
	for (int i = 0; i < 20000; i += 2) {
		char r[64];
		snprintf(r, sizeof(r), "DEL k%d\r\n", i);
		resp_buf_put(&in, r, strlen(r));
	}
	resp_buf_put(&in, "", 1);
	p.out.len = 0;
	pipe_run(&p, in.p, perms[0]);
	in.len = 0;
	for (int i = 0; i < 20000; i++) {
		char r[64], w[64];
		snprintf(r, sizeof(r), "EXISTS k%d\r\n", i);
		snprintf(w, sizeof(w), ":%d\r\n", i % 2);
		resp_buf_put(&in, r, strlen(r));
		resp_buf_put(&want, w, strlen(w));
	}
	resp_buf_put(&in, "DBSIZE\r\n", 9);
	resp_buf_put(&want, ":10000\r\n", 9);
	p.out.len = 0;
	assert_string_equal(pipe_run(&p, in.p, perms[3]), want.p);
	resp_buf_fini(&in);
	resp_buf_fini(&want);
	pipe_fini(&p);
}

/* ---- replication by state (rs_store_state, rs_store_dump) -------------- */

/* The keys of a store as "key=value;" sorted, and how many have a time
 * to live, through rs_store_dump in pieces of at most `piece` bytes. */
static char *contents(rs_store *st, int64_t now, size_t piece, int *ttls)
{
	char **items = NULL;
	size_t n = 0, cap = 0, cursor = 0, total = 1;
	bool done;
	*ttls = 0;
	do {
		resp_buf b;
		resp_buf_init(&b);
		done = rs_store_dump(st, &cursor, now, piece, &b);
		assert_false(b.oom);
		rs_ops_hdr h;
		memcpy(&h, b.p, sizeof(h));
		const char *q = b.p + sizeof(h);
		for (uint32_t i = 0; i < h.nops; i++) {
			rs_op op;
			memcpy(&op, q, sizeof(op));
			assert_int_equal(op.code, RS_OP_SET);
			*ttls += op.arg > 0;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				items = realloc(items, cap * sizeof(*items));
			}
			size_t len = (size_t)op.klen + op.vlen + 3;
			items[n] = malloc(len);
			snprintf(items[n], len, "%.*s=%.*s;", (int)op.klen,
			    q + sizeof(op), (int)op.vlen, q + sizeof(op) + op.klen);
			total += len;
			n++;
			q += rs_op_size(op.klen, op.vlen);
		}
		resp_buf_fini(&b);
	} while (!done);
	for (size_t i = 1; i < n; i++) /* insertion sort: small tables */
		for (size_t j = i; j > 0 && strcmp(items[j], items[j - 1]) < 0;
		     j--) {
			char *t = items[j];
			items[j] = items[j - 1];
			items[j - 1] = t;
		}
	char *all = malloc(total);
	all[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strcat(all, items[i]);
		free(items[i]);
	}
	free(items);
	return all;
}

/* Runs `in` on the pipe's stores and sends the state of what each batch
 * wrote to the replica stores `rep`, as a primary does. */
static void run_replicated(struct pipe *p, rs_store *rep, const char *in)
{
	uint32_t argc;
	resp_arg *argv;
	assert_true(resp_parse_feed(&p->parser, in, strlen(in)));
	while (resp_parse_next(&p->parser, &argc, &argv) == RESP_CMD)
		(void)rs_cmd_run(&p->route, &p->batch, &p->order, argc, argv);
	resp_buf ans, state, sink;
	resp_buf_init(&ans);
	resp_buf_init(&state);
	resp_buf_init(&sink);
	for (uint32_t s = 0; s < SHARDS; s++) {
		size_t len;
		const void *b = rs_batch_get(&p->batch, s, &len);
		if (b == NULL)
			continue;
		ans.len = state.len = sink.len = 0;
		assert_true(rs_store_exec(&p->st[s], b, len, p->now, &ans));
		rs_order_replies(&p->order, s,
		    ((const rs_replies_hdr *)(const void *)ans.p)->n,
		    (const uint32_t *)(ans.p + sizeof(rs_replies_hdr)),
		    ans.p + sizeof(rs_replies_hdr) +
		        4 * ((const rs_replies_hdr *)(const void *)ans.p)->n);
		uint32_t nw;
		assert_true(
		    rs_store_state(&p->st[s], b, len, p->now, &state, &nw));
		if (nw > 0)
			/* The replica's clock runs late: no matter. */
			assert_true(rs_store_exec(&rep[s], state.p, state.len,
			    p->now + 700, &sink));
	}
	rs_batch_clear(&p->batch, 0);
	(void)rs_order_emit(&p->order, &p->out);
	resp_buf_fini(&ans);
	resp_buf_fini(&state);
	resp_buf_fini(&sink);
}

static void test_replicas(void **state)
{
	(void)state;
	struct pipe p;
	pipe_init(&p);
	rs_store rep[SHARDS], copy[SHARDS];
	for (int i = 0; i < SHARDS; i++) {
		rs_store_init(&rep[i]);
		rs_store_init(&copy[i]);
	}
	run_replicated(&p, rep,
	    "SET a 1\r\nSET b 2\r\nINCR n\r\nINCRBY n 41\r\nSET t x "
	    "PX 1000\r\nGET a\r\nMSET c 3 d 4 e 5\r\nDEL b zz\r\n"
	    "SET a 9 XX\r\nSET f 6 NX\r\nSET f 7 NX\r\nINCR t2\r\n");
	/* An expiry the primary sees first: the INCR that follows starts
	 * over on the primary, and the replica must say the same although
	 * its own clock would still keep the old key. */
	run_replicated(&p, rep, "SET gone 5 PX 100\r\n");
	p.now += 200;
	run_replicated(&p, rep, "INCR gone\r\n");
	int ttl_p, ttl_r, ttl_c;
	for (int s = 0; s < SHARDS; s++) {
		char *a = contents(&p.st[s], p.now, 1u << 20, &ttl_p);
		char *b = contents(&rep[s], p.now, 1u << 20, &ttl_r);
		assert_string_equal(a, b);
		assert_int_equal(ttl_p, ttl_r);
		/* A copy from scratch, in pieces of one key or so. */
		size_t cursor = 0;
		bool done;
		do {
			resp_buf d, sink;
			resp_buf_init(&d);
			resp_buf_init(&sink);
			done = rs_store_dump(&p.st[s], &cursor, p.now, 16, &d);
			assert_true(rs_store_exec(
			    &copy[s], d.p, d.len, p.now, &sink));
			resp_buf_fini(&d);
			resp_buf_fini(&sink);
		} while (!done);
		char *c = contents(&copy[s], p.now, 40, &ttl_c);
		assert_string_equal(a, c);
		assert_int_equal(ttl_p, ttl_c);
		free(a);
		free(b);
		free(c);
	}
	/* What the keys are, all shards together. */
	char *all = NULL;
	size_t at = 0;
	for (int s = 0; s < SHARDS; s++) {
		char *a = contents(&p.st[s], p.now, 1u << 20, &ttl_p);
		all = realloc(all, at + strlen(a) + 1);
		strcpy(all + at, a);
		at += strlen(a);
		free(a);
	}
	assert_non_null(strstr(all, "a=9;"));
	assert_null(strstr(all, "b="));
	assert_non_null(strstr(all, "f=6;"));
	assert_non_null(strstr(all, "n=42;"));
	assert_non_null(strstr(all, "gone=1;"));
	assert_non_null(strstr(all, "t2=1;"));
	free(all);
	/* FLUSHALL travels as it is. */
	run_replicated(&p, rep, "FLUSHALL\r\n");
	for (int s = 0; s < SHARDS; s++) {
		char *b = contents(&rep[s], p.now, 1u << 20, &ttl_r);
		assert_string_equal(b, "");
		free(b);
		rs_store_fini(&rep[s]);
		rs_store_fini(&copy[s]);
	}
	pipe_fini(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_commands),
	    cmocka_unit_test(test_quit),
	    cmocka_unit_test(test_many),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_table),
	    cmocka_unit_test(test_replicas),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
