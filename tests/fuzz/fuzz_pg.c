/*
 * Fuzz target: a pg scope server's handling of what peers send
 * (transport/pg_server.c, pg_table.c): wire_in's budgeted decode, the
 * checks of scopes, group names and pids, Sync in parts (first, last,
 * want_reply) and Update (joins, leaves, leaves of all), as node A's
 * server of the default scope ("troupe.pg:default") gets them from a
 * peer B over a real connection (svc_pair.h).
 *
 * Input: byte 0 picks the type, 0xFFFD0200 + (b % 3): Sync, Update, and
 * the next type of the range (which the server must ignore); the rest is
 * the payload, a troupe.pg.Sync or Update or not. Seed pids are of B
 * ("fb", incarnation SVC_INC_B).
 *
 * Each input runs in two rounds, each ended by a marker: an Update that
 * joins a new pid of B (slot SVC_MARK_SLOT, a new gen) to the group
 * "~fuzz.mark", which the server handles after what came before it (one
 * sender, one receiver: in order), and whose member the target waits
 * for in A's table.
 *
 *   1. The input, then the marker. Then: A's server is alive and
 *      registered; A has heard from one peer at most; the groups, and the
 *      members held for B, are within pg.h's bounds; every member is a
 *      pid of B (A has no members of its own, and a peer can only join
 *      pids of its own); the groups listed are those the stats count.
 *   2. A Sync of B's that names nothing (first and last: B has no
 *      members left), then the marker. Then A holds exactly one group
 *      with exactly one member, the marker: the next input starts from
 *      the same table.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pg.pb-c.h"
#include "pg_int.h"
#include "svc_pair.h"

#define MARK_GROUP "~fuzz.mark"

static struct svc_pair pair;
static uint32_t seq;

static int send_packed(uint32_t type, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len ? len : 1);
	if (buf == NULL)
		return TR_ENOMEM;
	protobuf_c_message_pack(m, buf);
	int rc = svc_pair_send(&pair, SVC_TO_PG, type, buf, len);
	free(buf);
	return rc;
}

/* The marker: a join of (B, SVC_MARK_SLOT, gen) to MARK_GROUP. */
static int send_mark(uint32_t gen)
{
	Troupe__Pid w = TROUPE__PID__INIT;
	w.node = SVC_NODE_B;
	w.incarnation = SVC_INC_B;
	w.slot = SVC_MARK_SLOT;
	w.gen = gen;
	Troupe__Pid *pv[1] = {&w};
	Troupe__Pg__Update u = TROUPE__PG__UPDATE__INIT;
	u.scope = TR_PG_DEFAULT_SCOPE;
	u.group = MARK_GROUP;
	u.pids = pv;
	u.n_pids = 1;
	return send_packed(TR__PG_T_UPDATE, &u.base);
}

static bool mark_seen(void *arg)
{
	uint32_t gen = *(const uint32_t *)arg;
	tr_pid v[8];
	size_t n;
	if (tr_pg_members(v, 8, &n, pair.node[0], NULL, MARK_GROUP) != TR_OK)
		abort();
	for (size_t i = 0; i < n && i < 8; i++)
		if (v[i].slot == SVC_MARK_SLOT && v[i].gen == gen)
			return true;
	return false;
}

static bool is_b(tr_pid pid)
{
	char owner[TR_NODE_NAME_MAX + 1];
	return pid.node != 0 &&
	       tr_node_name_of(owner, sizeof(owner), pair.node[0], pid) ==
	           TR_OK &&
	       strcmp(owner, SVC_NODE_B) == 0;
}

static void stats_of_a(tr_pg_stats *st)
{
	tr_pid server;
	if (tr_whereis(&server, pair.rt[0], "troupe.pg:" TR_PG_DEFAULT_SCOPE) !=
	        TR_OK ||
	    !tr_is_alive(pair.rt[0], server))
		abort();
	tr_pg_stats_init(st);
	if (tr_pg_stats_get(st, pair.node[0], NULL) != TR_OK)
		abort();
}

static void check_a(void)
{
	tr_pg_stats st;
	stats_of_a(&st);
	if (st.peers > 1 || st.groups > TR_PG_GROUPS_MAX ||
	    st.remote_members > TR_PG_PEER_MAX || st.local_members != 0)
		abort();
	size_t ng;
	if (tr_pg_which_groups(NULL, 0, &ng, pair.node[0], NULL) != TR_OK)
		abort();
	tr_pg_group_name *gv = calloc(ng + 1, sizeof(*gv));
	tr_pid *pv = NULL;
	if (gv == NULL)
		return;
	size_t ng2;
	if (tr_pg_which_groups(gv, ng + 1, &ng2, pair.node[0], NULL) != TR_OK ||
	    ng2 != ng || ng != st.groups)
		abort(); /* B's messages have all been handled: no change */
	uint64_t total = 0;
	for (size_t i = 0; i < ng; i++) {
		size_t nm;
		if (tr_pg_members(NULL, 0, &nm, pair.node[0], NULL,
		        gv[i].name) != TR_OK ||
		    nm == 0 || nm > TR_PG_MEMBERS_MAX)
			abort();
		free(pv);
		pv = calloc(nm, sizeof(*pv));
		if (pv == NULL)
			break;
		size_t nm2;
		if (tr_pg_members(pv, nm, &nm2, pair.node[0], NULL,
		        gv[i].name) != TR_OK ||
		    nm2 != nm)
			abort();
		for (size_t j = 0; j < nm; j++)
			if (!is_b(pv[j]))
				abort(); /* a member B could not have joined */
		total += nm;
	}
	/* Each pid is listed once per group however often it joined: the
	 * distinct (group, pid) pairs are what the stats count. */
	if (pv != NULL && total != st.remote_members)
		abort();
	free(pv);
	free(gv);
}

static void clean(uint32_t gen)
{
	Troupe__Pg__Sync s = TROUPE__PG__SYNC__INIT;
	s.scope = TR_PG_DEFAULT_SCOPE;
	s.first = true;
	s.last = true;
	if (send_packed(TR__PG_T_SYNC, &s.base) != TR_OK ||
	    send_mark(gen) != TR_OK ||
	    !svc_pair_wait(&pair, mark_seen, &gen, "the cleanup"))
		return;
	tr_pg_stats st;
	stats_of_a(&st);
	size_t nm;
	if (st.groups != 1 || st.remote_members != 1 ||
	    tr_pg_members(NULL, 0, &nm, pair.node[0], NULL, MARK_GROUP) !=
	        TR_OK ||
	    nm != 1)
		abort(); /* a member of B's survived a Sync naming none */
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
	uint32_t type = TR__PG_T_SYNC + data[0] % 3u;
	uint32_t gen = ++seq;
	if (svc_pair_send(&pair, SVC_TO_PG, type, data + 1, size - 1) !=
	        TR_OK ||
	    send_mark(gen) != TR_OK)
		return 0;
	if (svc_pair_wait(&pair, mark_seen, &gen, "a message after the input"))
		check_a();
	clean(++seq);
	return 0;
}
