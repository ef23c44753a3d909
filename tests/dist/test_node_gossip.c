/*
 * Membership gossip (CONTROL_MEMBERS) against its bounds, in one process:
 * what a peer that proved the cookie can make a node keep. The envelopes
 * are handed to the mesh as the receive path does (tr__mesh_gossip_in);
 * the nodes they name listen nowhere, so every dial fails and is retried
 * with backoff, which must not grow anything either.
 *
 * - At most TR__MESH_GOSSIP_MAX entries are taken from one message; the
 *   rest are refused and counted.
 * - At most TR__MESH_MAX members in all; gossip beyond is refused.
 * - Entries without a usable URL, with our own name, or a bad name are
 *   skipped; an undecodable payload is counted as malformed.
 * - With connect_all off, gossip is ignored.
 */
#include "common.h"

#include <unistd.h>

#include "codec.h"
#include "node_int.h"

struct fx {
	char dir[256];
	tr_runtime *rt;
	tr_node *node;
};

static int start(struct fx *f, int32_t connect_all)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(f->dir, sizeof(f->dir), "%s/troupe-gossip-XXXXXX",
	    tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	char url[300];
	snprintf(url, sizeof(url), "ipc://%s/me.sock", f->dir);
	const char *listen[2] = {url, NULL};
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 1;
	if (tr_runtime_start(&f->rt, &ro) != TR_OK)
		return -1;
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "me";
	o.listen = listen;
	o.cookie = "secret";
	o.tick_ms = 100;
	o.connect_all = connect_all;
	return tr_node_start(&f->node, f->rt, &o) == TR_OK ? 0 : -1;
}

static void stop(struct fx *f)
{
	tr_node_stop(f->node);
	tr_runtime_stop(f->rt);
	char p[320];
	snprintf(p, sizeof(p), "%s/me.sock", f->dir);
	unlink(p);
	rmdir(f->dir);
}

/* Hands a CONTROL_MEMBERS naming nodes `prefix`0 .. `prefix`k-1 (each at
 * an ipc URL nobody listens on) to the mesh. */
static void gossip(struct fx *f, const char *prefix, uint32_t k, bool urls)
{
	Troupe__Wire__Member *mv = calloc(k, sizeof(*mv));
	Troupe__Wire__Member **mp = calloc(k, sizeof(*mp));
	Troupe__Wire__NodeId *idv = calloc(k, sizeof(*idv));
	char(*names)[32] = calloc(k, sizeof(*names));
	char(*us)[320] = calloc(k, sizeof(*us));
	char **up = calloc(k, sizeof(*up));
	assert_non_null(mv && mp && idv && names && us && up);
	for (uint32_t i = 0; i < k; i++) {
		troupe__wire__member__init(&mv[i]);
		troupe__wire__node_id__init(&idv[i]);
		snprintf(names[i], sizeof(names[i]), "%s%u", prefix, i);
		snprintf(
		    us[i], sizeof(us[i]), "ipc://%s/%s.sock", f->dir, names[i]);
		up[i] = us[i];
		idv[i].name = names[i];
		idv[i].incarnation = 1;
		mv[i].node = &idv[i];
		mv[i].listen = urls ? &up[i] : NULL;
		mv[i].n_listen = urls ? 1 : 0;
		mp[i] = &mv[i];
	}
	Troupe__Wire__Members ms = TROUPE__WIRE__MEMBERS__INIT;
	ms.members = mp;
	ms.n_members = k;
	uint8_t *buf;
	size_t len;
	assert_rc(
	    tr__pb_encode(&buf, &len, (const ProtobufCMessage *)&ms), TR_OK);
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_MEMBERS;
	e.payload.data = buf;
	e.payload.len = len;
	tr__mesh_gossip_in(f->node, NULL, &e);
	free(buf);
	free(mv);
	free(mp);
	free(idv);
	free(names);
	free(us);
	free(up);
}

static tr_node_stats stats(struct fx *f)
{
	tr_node_stats st;
	tr_node_stats_init(&st);
	assert_rc(tr_node_stats_get(&st, f->node), TR_OK);
	return st;
}

static void test_bounds(void **state)
{
	(void)state;
	struct fx f;
	assert_int_equal(start(&f, 0), 0);

	gossip(&f, "a", TR__MESH_GOSSIP_MAX + 72, true);
	tr_node_stats st = stats(&f);
	assert_int_equal(st.members_known, TR__MESH_GOSSIP_MAX);
	assert_int_equal(st.members_refused, 72);

	/* The same again: known already, nothing new, nothing refused
	 * beyond the message's own bound. */
	gossip(&f, "a", TR__MESH_GOSSIP_MAX, true);
	st = stats(&f);
	assert_int_equal(st.members_known, TR__MESH_GOSSIP_MAX);
	assert_int_equal(st.members_refused, 72);

	/* Up to the total bound, and no further. */
	char pfx[8];
	for (int r = 0; r < 9; r++) {
		snprintf(pfx, sizeof(pfx), "b%d-", r);
		gossip(&f, pfx, TR__MESH_GOSSIP_MAX, true);
	}
	st = stats(&f);
	assert_int_equal(st.members_known, TR__MESH_MAX);
	assert_int_equal(
	    st.members_refused, 72 + (TR__MESH_GOSSIP_MAX * 10 - TR__MESH_MAX));

	/* The dials to nowhere go on with backoff; nothing grows. */
	usleep(1500 * 1000);
	st = stats(&f);
	assert_true(st.members_known <= TR__MESH_MAX);
	assert_true(st.redials > 0);
	assert_int_equal(st.peers_up, 0);
	stop(&f);
}

static void test_skipped(void **state)
{
	(void)state;
	struct fx f;
	assert_int_equal(start(&f, 0), 0);
	gossip(&f, "c", 10, false); /* no URLs: nothing to dial */
	tr_node_stats st = stats(&f);
	assert_int_equal(st.members_known, 0);

	/* Our own name is skipped. */
	Troupe__Wire__NodeId id = TROUPE__WIRE__NODE_ID__INIT;
	id.name = "me";
	char *u = "ipc:///nowhere";
	Troupe__Wire__Member m = TROUPE__WIRE__MEMBER__INIT, *mp = &m;
	m.node = &id;
	m.listen = &u;
	m.n_listen = 1;
	Troupe__Wire__Members ms = TROUPE__WIRE__MEMBERS__INIT;
	ms.members = &mp;
	ms.n_members = 1;
	uint8_t *buf;
	size_t len;
	assert_rc(
	    tr__pb_encode(&buf, &len, (const ProtobufCMessage *)&ms), TR_OK);
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_MEMBERS;
	e.payload.data = buf;
	e.payload.len = len;
	tr__mesh_gossip_in(f.node, NULL, &e);
	free(buf);
	assert_int_equal(stats(&f).members_known, 0);

	/* Bytes that are no Members: malformed. */
	uint64_t bad = stats(&f).frames_malformed;
	uint8_t junk[] = {0x0a, 0xff, 0xff, 0xff, 0x0f};
	e.payload.data = junk;
	e.payload.len = sizeof(junk);
	tr__mesh_gossip_in(f.node, NULL, &e);
	assert_int_equal(stats(&f).frames_malformed, bad + 1);
	stop(&f);
}

static void test_connect_all_off(void **state)
{
	(void)state;
	struct fx f;
	assert_int_equal(start(&f, TR_NODE_OFF), 0);
	gossip(&f, "d", 5, true);
	tr_node_stats st = stats(&f);
	assert_int_equal(st.members_known, 0);
	assert_int_equal(st.members_refused, 0);
	stop(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_skipped),
	    cmocka_unit_test(test_connect_all_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
