/*
 * A test node for pids and protobuf messages in payloads: a process
 * test_node_pbpid.c fork/execs and talks to.
 *
 *   troupe-test-pbpid-node NAME LISTEN-URL COOKIE [--connect URL]
 *
 * It starts a runtime and a node, registers the actor "relay"
 * (pbpid_proto.h), prints "READY <listen url>" on stdout and runs until
 * SIGTERM or SIGINT (or its parent dies). Public API only, linked with the
 * shared libraries and a generated .proto that imports troupe/pid.proto,
 * as an application would be.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <troupe/pb.h>
#include <troupe/pid.h>

#include "node_proc.h"
#include "pbpid_proto.h"
#include "pbpid_test.pb-c.h"

static void fail(tr_ctx *ctx, const tr_msg *m, uint32_t type, int rc)
{
	int32_t v = rc;
	if (!tr_pid_is_none(tr_sender(m)))
		(void)tr_send(ctx, tr_sender(m), type, &v, sizeof(v));
}

static void relay(tr_ctx *ctx, tr_node *node, const tr_msg *m)
{
	tr_pid pids[TT_RELAY_MAX];
	int n = 0, rc = TR_OK;
	size_t off = 0;
	while (off < m->size && rc == TR_OK) {
		size_t l = tr_pid_encoded_size(m->data + off, m->size - off);
		if (l == 0 || n == TT_RELAY_MAX)
			rc = TR_EINVAL;
		else
			rc = tr_pid_decode(&pids[n++], node, m->data + off, l);
		off += l;
	}
	if (rc == TR_OK && n == 0)
		rc = TR_EINVAL;
	if (rc != TR_OK) {
		fail(ctx, m, TT_RELAY_FAIL, rc);
		return;
	}
	if (n == 1) {
		char name[TR_NODE_NAME_MAX + 1];
		(void)tr_node_name_of(name, sizeof(name), node, tr_self(ctx));
		(void)tr_send(ctx, pids[0], TT_ARRIVED, name, strlen(name));
		return;
	}
	unsigned char buf[TT_RELAY_MAX * TR_PID_ENCODED_MAX];
	size_t len = 0, l;
	for (int i = 1; i < n && rc == TR_OK; i++, len += l)
		rc = tr_pid_encode(
		    buf + len, sizeof(buf) - len, &l, node, pids[i]);
	if (rc == TR_OK)
		rc = tr_send(ctx, pids[0], TT_RELAY, buf, len);
	if (rc != TR_OK)
		fail(ctx, m, TT_RELAY_FAIL, rc);
}

static void job(tr_ctx *ctx, tr_node *node, const tr_msg *m)
{
	ProtobufCMessage *pm;
	int rc = tr_pb_unpack(&pm, m, &tt__job__descriptor, TT_JOB_BUDGET);
	if (rc != TR_OK) {
		fail(ctx, m, TT_PB_FAIL, rc);
		return;
	}
	Tt__Job *in = (Tt__Job *)pm;
	tr_pid to;
	rc = tr_pb_pid_get(&to, node, in->reply_to);
	Tt__Job out = TT__JOB__INIT;
	char text[300];
	snprintf(text, sizeof(text), "re: %s", in->text);
	out.text = text;
	Troupe__Pid me, others[TT_RELAY_MAX], *op[TT_RELAY_MAX];
	char names[TT_RELAY_MAX + 1][TR_NODE_NAME_MAX + 1];
	if (rc == TR_OK)
		rc =
		    tr_pb_pid_set(&me, names[TT_RELAY_MAX], node, tr_self(ctx));
	out.reply_to = &me;
	for (size_t i = 0; i < in->n_others && i < TT_RELAY_MAX && rc == TR_OK;
	     i++) {
		tr_pid p;
		rc = tr_pb_pid_get(&p, node, in->others[i]);
		if (rc == TR_OK)
			rc = tr_pb_pid_set(&others[i], names[i], node, p);
		op[i] = &others[i];
		out.n_others = i + 1;
	}
	out.others = op;
	if (rc == TR_OK)
		rc = tr_send_pb(ctx, to, TR_PB_TYPE_AUTO, &out.base);
	if (rc != TR_OK)
		fail(ctx, m, TT_PB_FAIL, rc);
	tr_pb_free(pm);
}

static int relay_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	tr_node *node = tr_node_of(tr_runtime_of(ctx));
	if (m->type == TT_RELAY)
		relay(ctx, node, m);
	else if (m->type == tr_pb_type(&tt__job__descriptor))
		job(ctx, node, m);
	return 0;
}

static const tr_behaviour relay_b = {"relay", NULL, relay_handle, NULL};

int main(int argc, char **argv)
{
	static struct tt_proc p;
	if (tt_proc_init(&p, argc, argv, "child", 0) != 0)
		return 2;
	for (int i = 4; i < argc; i++) {
		if (!tt_proc_opt(&p, argc, argv, &i)) {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (tt_proc_start(&p, 2) != 0)
		return 1;
	tr_pid r;
	if (tr_spawn(&r, p.rt, &relay_b, NULL, NULL) != TR_OK ||
	    tr_register(p.rt, "relay", r) != TR_OK || tt_proc_ready(&p) != 0)
		return 1;
	(void)tt_proc_wait(&p);
	tt_proc_stop(&p);
	return 0;
}
