/*
 * Tests of the handshake machine (transport/hs.c) on its own, through the
 * socket-free network of hs_sim.h: normal handshakes, connects to nodes
 * that are up already, crossed handshakes in every interleaving of a few
 * thousand seeds, nodes that keep dialling each other, restarts and
 * reconnects, and hostile input (a Hello that claims a connected peer's
 * name, a wrong cookie, a flood of Hellos that never prove anything,
 * garbage).
 */
#include "common.h"

#include "codec.h"
#include "hs_sim.h"
#include "troupe.pb-c.h"

static const char *const names3[] = {"alpha", "beta", "mallory"};

/* Delivers until nothing moves; the order comes from the seed. */
static void settle(struct sim *s, uint64_t seed)
{
	uint64_t r = seed * 0x9e3779b97f4a7c15ull + 7;
	for (int i = 0; i < 10000; i++) {
		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		if (!sim_step(s, (uint32_t)(r >> 32)))
			return;
	}
	fail_msg("the network did not settle");
}

static void assert_connect(
    struct sim *s, int k, int slot, int rc, const char *name)
{
	struct sim_node *nd = &s->nodes[k];
	assert_true(nd->conn_done[slot]);
	assert_int_equal(nd->conn_rc[slot], rc);
	if (name != NULL)
		assert_string_equal(nd->conn_name[slot], name);
}

static void test_basic(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 1, names3);
	int c = sim_connect(&s, 0, 1);
	settle(&s, 1);
	assert_connect(&s, 0, c, TR_OK, "beta");
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].ups, 1);
	assert_int_equal(s.nodes[1].pairs[0].ups, 1);
	uint32_t acc, con, pairs;
	tr__hs_counts(s.nodes[1].hs, &acc, &con, &pairs);
	assert_int_equal(acc, 0);
	assert_int_equal(con, 0);
	assert_int_equal(pairs, 1);
	sim_fini(&s);
}

/* A connect to a node that is up already (the simulation has no fast
 * path by URL, so every connect runs a handshake, as one to another URL
 * of the same node would): it succeeds and nothing changes. */
static void test_connected_noop(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 2, names3);
	(void)sim_connect(&s, 0, 1);
	settle(&s, 2);
	for (int i = 0; i < 5; i++) {
		int c = sim_connect(&s, 0, 1);
		int d = sim_connect(&s, 1, 0);
		settle(&s, (uint64_t)i);
		assert_connect(&s, 0, c, TR_OK, "beta");
		assert_connect(&s, 1, d, TR_OK, "alpha");
	}
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].ups, 1);
	assert_int_equal(s.nodes[1].pairs[0].ups, 1);
	assert_int_equal(s.nodes[0].pairs[1].replaced, 0);
	sim_fini(&s);
}

/* Both dial at once, in thousands of interleavings: one pair, the same
 * on both sides, both connects succeed, and nobody replaced anything (no
 * false NODEDOWN). */
static void test_crossed(void **state)
{
	(void)state;
	for (uint64_t seed = 0; seed < 3000; seed++) {
		struct sim s;
		sim_init(&s, 2, seed, names3);
		int c = sim_connect(&s, 0, 1);
		/* The second connect starts after a seed-chosen number of
		 * deliveries, so that every phase of the first is hit. */
		for (uint64_t i = 0; i < seed % 7; i++)
			(void)sim_step(&s, (uint32_t)(seed >> 3) + (uint32_t)i);
		int d = sim_connect(&s, 1, 0);
		settle(&s, seed);
		if (getenv("SIM_TRACE") != NULL)
			fprintf(
			    stderr, "seed %llu\n", (unsigned long long)seed);
		assert_connect(&s, 0, c, TR_OK, "beta");
		assert_connect(&s, 1, d, TR_OK, "alpha");
		if (!sim_paired(&s, 0, 1))
			fail_msg("seed %llu: no common pair",
			    (unsigned long long)seed);
		assert_int_equal(s.nodes[0].pairs[1].ups, 1);
		assert_int_equal(s.nodes[1].pairs[0].ups, 1);
		sim_fini(&s);
	}
}

/* The obvious mesh keeper: both call connect on each other again and
 * again, with deliveries in between. The pair never changes. */
static void test_keep_dialling(void **state)
{
	(void)state;
	for (uint64_t seed = 0; seed < 200; seed++) {
		struct sim s;
		sim_init(&s, 2, seed, names3);
		uint64_t r = seed + 1;
		for (int round = 0; round < 30; round++) {
			if (s.nodes[0].nconnects == 16 ||
			    s.nodes[1].nconnects == 16) {
				settle(&s, r);
				s.nodes[0].nconnects = s.nodes[1].nconnects = 0;
			}
			(void)sim_connect(&s, 0, 1);
			(void)sim_connect(&s, 1, 0);
			for (int i = 0; i < 5; i++) {
				r = r * 6364136223846793005ull + 1;
				(void)sim_step(&s, (uint32_t)(r >> 33));
			}
		}
		settle(&s, r);
		assert_true(sim_paired(&s, 0, 1));
		assert_int_equal(s.nodes[0].pairs[1].ups, 1);
		assert_int_equal(s.nodes[1].pairs[0].ups, 1);
		sim_fini(&s);
	}
}

/* Three nodes that all dial each other at once. */
static void test_mesh3(void **state)
{
	(void)state;
	for (uint64_t seed = 0; seed < 500; seed++) {
		struct sim s;
		sim_init(&s, 3, seed, names3);
		for (int a = 0; a < 3; a++)
			for (int b = 0; b < 3; b++)
				if (a != b)
					(void)sim_connect(&s, a, b);
		settle(&s, seed);
		for (int a = 0; a < 3; a++) {
			for (int b = a + 1; b < 3; b++) {
				assert_true(sim_paired(&s, a, b));
				assert_int_equal(s.nodes[a].pairs[b].ups, 1);
				assert_int_equal(s.nodes[b].pairs[a].ups, 1);
			}
			for (uint32_t i = 0; i < s.nodes[a].nconnects; i++)
				assert_connect(&s, a, (int)i, TR_OK, NULL);
		}
		sim_fini(&s);
	}
}

/* A restarted node (new incarnation) takes over its old pair once it has
 * proved the cookie; a node that lost us and starts over with the same
 * incarnation too. */
static void test_restart_and_reconnect(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 5, names3);
	(void)sim_connect(&s, 0, 1);
	settle(&s, 5);
	assert_true(sim_paired(&s, 0, 1));

	/* beta restarts; alpha has not noticed yet (its pair is still up
	 * when beta's new Hello comes). */
	sim_restart(&s, 1, NULL);
	s.nodes[0].pairs[1].up = true; /* the close is not told yet */
	int c = sim_connect(&s, 1, 0);
	settle(&s, 5);
	assert_connect(&s, 1, c, TR_OK, "alpha");
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].inc, s.nodes[1].inc);

	/* beta loses alpha (its side only: a one-sided failure detection)
	 * and dials again: alpha takes the new pair. */
	struct sim_pair *pb = &s.nodes[1].pairs[0];
	tr__hs_pair_lost(s.nodes[1].hs, pb->hs);
	pb->up = false;
	uint32_t before = s.nodes[0].pairs[1].replaced;
	c = sim_connect(&s, 1, 0);
	settle(&s, 6);
	assert_connect(&s, 1, c, TR_OK, "alpha");
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].replaced, before + 1);
	sim_fini(&s);
}

static size_t hello(uint8_t **buf, const char *name, uint64_t inc,
    const char *url, const uint8_t *proof, const uint8_t *echo)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__Hello h = TROUPE__WIRE__HELLO__INIT;
	Troupe__Wire__NodeId id = TROUPE__WIRE__NODE_ID__INIT;
	uint8_t nonce[TR__HS_NONCE_LEN];
	char *urls[1] = {(char *)url};
	memset(nonce, 0x5a, sizeof(nonce));
	id.name = (char *)name;
	id.incarnation = inc;
	h.major = TROUPE__WIRE__VERSION__PROTOCOL_MAJOR;
	h.node = &id;
	h.n_listen = url != NULL ? 1 : 0;
	h.listen = urls;
	h.nonce.data = nonce;
	h.nonce.len = sizeof(nonce);
	if (proof != NULL) {
		h.proof.data = (uint8_t *)proof;
		h.proof.len = 32;
		h.echo.data = (uint8_t *)echo;
		h.echo.len = 32;
	}
	f.body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f.hello = &h;
	size_t len;
	assert_int_equal(tr__frame_encode(buf, &len, &f), TR_OK);
	return len;
}

/* Anyone can send a Hello with a connected peer's name and a higher (or
 * the same) incarnation: it costs a pending accept and changes nothing
 * about the peer, and since it cannot prove the cookie it ends at its
 * deadline. */
static void test_hostile_hello(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 9, names3);
	(void)sim_connect(&s, 0, 1);
	settle(&s, 9);
	assert_true(sim_paired(&s, 0, 1));
	uint64_t incs[] = {s.nodes[1].inc + 1, s.nodes[1].inc};
	for (int k = 0; k < 2; k++) {
		uint8_t *buf;
		size_t len =
		    hello(&buf, "beta", incs[k], "sim://nowhere", NULL, NULL);
		tr__hs_acts a = {0};
		assert_true(tr__hs_frame(
		    s.nodes[0].hs, &a, s.now, 9000 + (uint32_t)k, 0, buf, len));
		free(buf);
		sim_run(&s, 0, &a);
		/* Answers, with a forged answer of its own on top: */
		uint8_t proof[32], echo[32];
		memset(proof, 1, sizeof(proof));
		memset(echo, 2, sizeof(echo));
		len = hello(&buf, "beta", incs[k], NULL, proof, echo);
		assert_true(tr__hs_frame(
		    s.nodes[0].hs, &a, s.now, 9100 + (uint32_t)k, 0, buf, len));
		free(buf);
		sim_run(&s, 0, &a);
		settle(&s, 9);
	}
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].ups, 1);
	assert_int_equal(s.nodes[0].pairs[1].replaced, 0);
	uint32_t acc;
	tr__hs_counts(s.nodes[0].hs, &acc, NULL, NULL);
	assert_int_equal(acc, 2);
	sim_tick(&s, TR__HS_TIMEOUT_MS + 1);
	tr__hs_counts(s.nodes[0].hs, &acc, NULL, NULL);
	assert_int_equal(acc, 0);
	assert_int_equal(s.nodes[0].refused[TR__HS_R_TIMEOUT], 2);
	assert_true(sim_paired(&s, 0, 1));
	sim_fini(&s);
}

/* Another cookie: the connect is refused on both sides, nothing pairs. */
static void test_wrong_key(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 11, names3);
	uint8_t other[32];
	memset(other, 8, sizeof(other));
	sim_restart(&s, 1, other);
	int c = sim_connect(&s, 0, 1);
	settle(&s, 11);
	assert_connect(&s, 0, c, TR_ECLOSED, NULL);
	assert_false(s.nodes[0].pairs[1].up);
	assert_false(s.nodes[1].pairs[0].up);
	assert_true(s.nodes[0].refused[TR__HS_R_PROOF] >= 1);
	int d = sim_connect(&s, 1, 0);
	settle(&s, 12);
	assert_connect(&s, 1, d, TR_ECLOSED, NULL);
	assert_false(s.nodes[0].pairs[1].up);
	sim_fini(&s);
}

/* A flood of Hellos that never prove anything: at most max_accepts at
 * once (the oldest make room), all gone at the deadline, and an honest
 * connect in the middle of it still pairs. */
static void test_accept_flood(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 13, names3);
	for (uint32_t i = 0; i < 500; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ghost%u", i);
		uint8_t *buf;
		size_t len = hello(&buf, name, 1, "sim://nowhere", NULL, NULL);
		tr__hs_acts a = {0};
		assert_true(tr__hs_frame(
		    s.nodes[0].hs, &a, s.now, 10000 + i, 0, buf, len));
		free(buf);
		sim_run(&s, 0, &a);
		uint32_t acc;
		tr__hs_counts(s.nodes[0].hs, &acc, NULL, NULL);
		assert_true(acc <= TR__HS_ACCEPTS);
		if (i == 250) {
			int c = sim_connect(&s, 1, 0);
			settle(&s, 13);
			assert_connect(&s, 1, c, TR_OK, "alpha");
		}
	}
	assert_int_equal(
	    s.nodes[0].refused[TR__HS_R_FULL], 500 - TR__HS_ACCEPTS);
	sim_tick(&s, TR__HS_TIMEOUT_MS + 1);
	uint32_t acc;
	tr__hs_counts(s.nodes[0].hs, &acc, NULL, NULL);
	assert_int_equal(acc, 0);
	assert_true(sim_paired(&s, 0, 1));
	sim_fini(&s);
}

/* Garbage, truncated frames, frames out of place, our own name, another
 * major: refused and counted, never a crash or a state change. */
static void test_garbage(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 2, 17, names3);
	(void)sim_connect(&s, 0, 1);
	settle(&s, 17);
	uint8_t *good;
	size_t glen = hello(&good, "zed", 1, "sim://nowhere", NULL, NULL);
	uint64_t r = 1;
	for (uint32_t i = 0; i < 20000; i++) {
		uint8_t buf[256];
		size_t len = glen < sizeof(buf) ? glen : sizeof(buf);
		memcpy(buf, good, len);
		r = r * 6364136223846793005ull + 1442695040888963407ull;
		len = (size_t)(r >> 40) % (len + 1);
		for (int k = 0; k < 3; k++) {
			r = r * 6364136223846793005ull + 1;
			if (len != 0)
				buf[(r >> 33) % len] = (uint8_t)(r >> 24);
		}
		tr__hs_acts a = {0};
		(void)tr__hs_frame(
		    s.nodes[0].hs, &a, s.now, 50000 + i, 0, buf, len);
		sim_run(&s, 0, &a);
		if (i % 64 == 0)
			sim_tick(&s, TR__HS_TIMEOUT_MS + 1);
	}
	free(good);
	/* Our own name, another major, a Proof and an Ack from nowhere. */
	uint8_t *buf;
	size_t len = hello(&buf, "alpha", 1, "sim://x", NULL, NULL);
	tr__hs_acts a = {0};
	assert_true(tr__hs_frame(s.nodes[0].hs, &a, s.now, 90001, 0, buf, len));
	free(buf);
	sim_run(&s, 0, &a);
	assert_true(s.nodes[0].refused[TR__HS_R_SELF] >= 1);
	static const uint8_t proof_frame[] = {0x12, 0x02, 0x0a, 0x00};
	static const uint8_t ack_frame[] = {0x2a, 0x02, 0x0a, 0x00};
	static const uint8_t major9[] = {0x0a, 0x02, 0x08, 0x09};
	assert_true(tr__hs_frame(s.nodes[0].hs, &a, s.now, 90002, 0,
	    proof_frame, sizeof(proof_frame)));
	assert_true(tr__hs_frame(
	    s.nodes[0].hs, &a, s.now, 90003, 0, ack_frame, sizeof(ack_frame)));
	assert_true(tr__hs_frame(
	    s.nodes[0].hs, &a, s.now, 90004, 0, major9, sizeof(major9)));
	sim_run(&s, 0, &a);
	assert_true(s.nodes[0].refused[TR__HS_R_VERSION] >= 1);
	/* A Batch is not the machine's. */
	static const uint8_t batch[] = {0x22, 0x00};
	assert_false(tr__hs_frame(
	    s.nodes[0].hs, &a, s.now, 90005, 0, batch, sizeof(batch)));
	sim_tick(&s, TR__HS_TIMEOUT_MS + 1);
	assert_true(sim_paired(&s, 0, 1));
	assert_int_equal(s.nodes[0].pairs[1].ups, 1);
	sim_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_connected_noop),
	    cmocka_unit_test(test_crossed),
	    cmocka_unit_test(test_keep_dialling),
	    cmocka_unit_test(test_mesh3),
	    cmocka_unit_test(test_restart_and_reconnect),
	    cmocka_unit_test(test_hostile_hello),
	    cmocka_unit_test(test_wrong_key),
	    cmocka_unit_test(test_accept_flood),
	    cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
