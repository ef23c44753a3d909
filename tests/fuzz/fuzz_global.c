/*
 * Fuzz target: the name server's handling of what peers send
 * (transport/global_server.c, global_claim.c, global_table.c): wire_in's
 * budgeted decode, the checks of names and pids, SYNC, CLAIM, VOTE,
 * COMMIT, ABORT, REMOVE, FWD_REG, FWD_REPLY and FWD_UNREG, as node A's
 * server "troupe.global" gets them from a peer B over a real connection
 * (svc_pair.h).
 *
 * Input: byte 0 picks the type, TR__GLOBAL_T_BASE + (b % 11): the nine
 * types of global_int.h and one below and one above them (which the
 * server must ignore); the rest is the payload, a troupe.global.Msg or
 * not. Seed pids are of B ("fb", incarnation SVC_INC_B) or A.
 *
 * Each input runs in two rounds, each ended by a marker: a SYNC of a new
 * name for a pid of B, which the server handles after what came before
 * it (one sender, one receiver: in order), and whose arrival in A's
 * table the target waits for.
 *
 *   1. The input, then the marker. Then: A's server is alive and
 *      registered; its table has at most TR_GLOBAL_MAX_NAMES names; each
 *      name's pid is of A or B (a peer can only add names of its own
 *      pids); each name of B's is what a lookup of it gives.
 *   2. The cleanup: a REMOVE for each name of B's, a FWD_UNREG for each
 *      of A's, then the marker. Then exactly one name of B's is left (the
 *      marker): the next input starts from the same table.
 *
 * A's claims and grants (a CLAIM holds a grant for up to 2 s) carry over
 * from one input to the next, within their bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "global.pb-c.h"
#include "global_int.h"
#include "svc_pair.h"
#include "troupe/pid.h"

static struct svc_pair pair;
static uint32_t seq;

struct mark {
	char name[64];
	uint32_t gen;
};

static void mark_name(struct mark *k, uint32_t gen)
{
	k->gen = gen;
	snprintf(k->name, sizeof(k->name), "~fuzz.mark.%u", gen);
}

static int send_msg(uint32_t type, const GMsg *m)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return TR_ENOMEM;
	protobuf_c_message_pack(&m->base, buf);
	int rc = svc_pair_send(&pair, SVC_TO_GLOBAL, type, buf, len);
	free(buf);
	return rc;
}

/* A SYNC of the marker's name, for the pid (B, SVC_MARK_SLOT, gen). */
static int send_mark(const struct mark *k)
{
	uint8_t pb[TR_PID_ENCODED_MAX];
	size_t plen;
	tr_pid pid = {0, SVC_MARK_SLOT, k->gen};
	if (tr_pid_encode(pb, sizeof(pb), &plen, pair.node[1], pid) != TR_OK)
		abort();
	GEntry e = TROUPE__GLOBAL__ENTRY__INIT;
	e.name = (char *)k->name;
	e.pid.data = pb;
	e.pid.len = plen;
	e.at_ms = 1;
	e.method = TR_GLOBAL_UNREGISTER;
	GEntry *ents[1] = {&e};
	GMsg m = TROUPE__GLOBAL__MSG__INIT;
	m.entries = ents;
	m.n_entries = 1;
	return send_msg(TR__GLOBAL_T_SYNC, &m);
}

static bool mark_seen(void *arg)
{
	const struct mark *k = arg;
	tr_pid pid;
	return tr_global_whereis(&pid, pair.node[0], k->name) == TR_OK &&
	       pid.slot == SVC_MARK_SLOT && pid.gen == k->gen;
}

static bool is_b(tr_pid pid)
{
	char owner[TR_NODE_NAME_MAX + 1];
	if (tr_node_name_of(owner, sizeof(owner), pair.node[0], pid) != TR_OK)
		abort(); /* a name whose pid's node A does not know */
	if (strcmp(owner, SVC_NODE_B) == 0)
		return true;
	if (strcmp(owner, SVC_NODE_A) != 0)
		abort(); /* a name of a node that did not send it */
	return false;
}

/* A's names now (*n of them); NULL if there is no memory. */
static tr_global_info *names_of_a(size_t *n)
{
	tr_global_info probe;
	tr_global_info_init(&probe);
	size_t count;
	if (tr_global_names(&probe, 0, &count, pair.node[0]) != TR_OK)
		abort();
	size_t cap = count + 64;
	tr_global_info *v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return NULL;
	tr_global_info_init(&v[0]);
	if (tr_global_names(v, cap, &count, pair.node[0]) != TR_OK)
		abort();
	*n = count < cap ? count : cap;
	return v;
}

static void check_a(void)
{
	tr_pid server;
	if (tr_whereis(&server, pair.rt[0], TR_GLOBAL_SERVER_NAME) != TR_OK ||
	    !tr_is_alive(pair.rt[0], server))
		abort();
	tr_global_stats st;
	tr_global_stats_init(&st);
	if (tr_global_stats_get(&st, pair.node[0]) != TR_OK ||
	    st.names > TR_GLOBAL_MAX_NAMES)
		abort();
	size_t n;
	tr_global_info *v = names_of_a(&n);
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!is_b(v[i].pid))
			continue;
		/* Only B's messages change B's names, and they have all
		 * been handled: the table by name must agree with the
		 * list. */
		tr_pid p;
		if (tr_global_whereis(&p, pair.node[0], v[i].name) != TR_OK ||
		    !tr_pid_eq(p, v[i].pid))
			abort();
	}
	free(v);
}

/* Round 2: every name of B's removed, every name of A's unregistered, so
 * that only the marker `k` is left of B's. */
static void clean(const struct mark *k)
{
	size_t n;
	tr_global_info *v = names_of_a(&n);
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		GMsg m = TROUPE__GLOBAL__MSG__INIT;
		if (is_b(v[i].pid)) {
			uint8_t pb[TR_PID_ENCODED_MAX];
			size_t plen;
			if (tr_pid_encode(pb, sizeof(pb), &plen, pair.node[0],
			        v[i].pid) != TR_OK)
				abort();
			GEntry e = TROUPE__GLOBAL__ENTRY__INIT;
			e.name = v[i].name;
			e.pid.data = pb;
			e.pid.len = plen;
			m.entry = &e;
			(void)send_msg(TR__GLOBAL_T_REMOVE, &m);
		} else {
			m.name = v[i].name;
			(void)send_msg(TR__GLOBAL_T_FWD_UNREG, &m);
		}
	}
	free(v);
	if (send_mark(k) != TR_OK ||
	    !svc_pair_wait(&pair, mark_seen, (void *)k, "the cleanup"))
		return;
	v = names_of_a(&n);
	if (v == NULL)
		return;
	size_t nb = 0;
	for (size_t i = 0; i < n; i++)
		nb += is_b(v[i].pid);
	if (nb != 1)
		abort(); /* a name of B's survived its REMOVE */
	free(v);
}

static void stop_pair(void)
{
	svc_pair_stop(&pair);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool started;
	if (!started) {
		svc_pair_start(&pair);
		atexit(stop_pair);
		started = true;
	}
	if (size == 0)
		return 0;
	uint32_t type = TR__GLOBAL_T_BASE + data[0] % 11u;
	struct mark k;
	mark_name(&k, ++seq);
	if (svc_pair_send(&pair, SVC_TO_GLOBAL, type, data + 1, size - 1) !=
	        TR_OK ||
	    send_mark(&k) != TR_OK)
		return 0;
	if (svc_pair_wait(&pair, mark_seen, &k, "a message after the input"))
		check_a();
	mark_name(&k, ++seq);
	clean(&k);
	return 0;
}
