/*
 * The client endpoint's verification, refusal by refusal, without a
 * network: keys by purpose, node binding, old clients, local-only types,
 * and the replay cache against a model.
 */
#include "common.h"

#include "client_req.h"

/* ---- keys ---------------------------------------------------------------- */

/* The client key is HKDF of the cookie with the client label, distinct
 * from the node's key and from the cookie. */
static void test_client_key(void **state)
{
	uint8_t k[TR__KDF_LEN], want[TR__KDF_LEN], node[TR__KDF_LEN];

	(void)state;
	assert_rc(tr__client_key(k, COOKIE), TR_OK);
	assert_rc(tr__kdf(want, COOKIE, strlen(COOKIE), TR__KDF_CLIENT), TR_OK);
	assert_memory_equal(k, want, sizeof(k));
	assert_rc(tr__kdf(node, COOKIE, strlen(COOKIE), TR__KDF_NODE), TR_OK);
	assert_memory_not_equal(k, node, sizeof(k));
	assert_rc(tr__client_key(NULL, COOKIE), TR_EINVAL);
	assert_rc(tr__client_key(k, NULL), TR_EINVAL);
	assert_rc(tr__client_key(k, ""), TR_EINVAL);
}

/* ---- verification -------------------------------------------------------- */

static void test_verify_ok(void **state)
{
	tr__nonce_cache *c;
	tr__client_verifier v;
	tr__client_verdict vd;
	struct req r = req_at(NOW);
	Troupe__Wire__ClientRequest *out;
	uint8_t *f;
	size_t len;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 64), TR_OK);
	v = verifier(c);
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_OK);
	assert_int_equal(vd.cause, TR__CC_OK);
	assert_non_null(out);
	assert_int_equal(out->major, MAJOR);
	assert_int_equal(out->minor, TR__CLIENT_MINOR);
	assert_string_equal(out->node, NODE);
	assert_int_equal(out->nonce.len, 16);
	assert_memory_equal(out->nonce.data, r.nonce, 16);
	assert_string_equal(out->to_name, "echo");
	assert_int_equal(out->payload.len, 5);
	assert_memory_equal(out->payload.data, "hello", 5);
	tr__client_request_free(out);
	assert_int_equal(tr__nonce_cache_count(c), 1);

	/* The very same frame again: a replay. */
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW + 1), TR_EEXIST);
	assert_int_equal(vd.cause, TR__CC_REPLAY);
	assert_string_equal(vd.why, "replayed request (nonce seen already)");
	assert_null(out);
	/* The verdict is optional. */
	assert_rc(
	    tr__client_verify(&out, NULL, &v, f, len, NOW + 1), TR_EEXIST);
	free(f);

	/* Longer nonces are fine, the edges of the window are in, and so
	 * are a later minor (it only adds fields) and the last type below
	 * the local-only range. */
	r = req_at(NOW - WINDOW);
	r.nlen = 32;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);
	r = req_at(NOW + WINDOW);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);
	r = req_at(NOW);
	r.minor = TR__CLIENT_MINOR + 1;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);
	r = req_at(NOW);
	r.type = TR_MSG_LOCAL_BASE - 1;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);

	/* NULL arguments. */
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, NULL, 10, NOW), TR_EINVAL);
	assert_rc(tr__client_verify(&out, &vd, NULL, f, len, NOW), TR_EINVAL);
	assert_rc(tr__client_verify(NULL, &vd, &v, f, len, NOW), TR_EINVAL);
	free(f);
	tr__client_verifier_fini(&v);
	tr__client_verifier_fini(&v);
	tr__nonce_cache_free(c);
}

static void test_verifier_init(void **state)
{
	tr__nonce_cache *c;
	tr__client_verifier v;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 4), TR_OK);
	assert_rc(
	    tr__client_verifier_init(NULL, COOKIE, NODE, 0, c), TR_EINVAL);
	assert_rc(tr__client_verifier_init(&v, NULL, NODE, 0, c), TR_EINVAL);
	assert_rc(tr__client_verifier_init(&v, "", NODE, 0, c), TR_EINVAL);
	assert_rc(tr__client_verifier_init(&v, COOKIE, NULL, 0, c), TR_EINVAL);
	assert_rc(tr__client_verifier_init(&v, COOKIE, "", 0, c), TR_EINVAL);
	assert_rc(
	    tr__client_verifier_init(&v, COOKIE, NODE, 0, NULL), TR_EINVAL);
	tr__client_verifier_fini(&v); /* a failed init needs none; harmless */
	assert_rc(tr__client_verifier_init(&v, COOKIE, NODE, 0, c), TR_OK);
	assert_int_equal(v.window_ms, TR__CLIENT_WINDOW_MS);
	tr__client_verifier_fini(&v);
	tr__client_verifier_fini(NULL);
	tr__nonce_cache_free(c);
}

static void test_verify_refusals(void **state)
{
	tr__nonce_cache *c;
	tr__client_verifier v;
	Troupe__Wire__ClientRequest *out;
	tr__client_verdict vd;
	struct req r;
	uint8_t *f, junk[64], key[TR__KDF_LEN];
	size_t len;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 64), TR_OK);
	v = verifier(c);

	/* Too short to hold a signature (also: empty). */
	memset(junk, 0, sizeof(junk));
	for (size_t n = 0; n < TR__CLIENT_SIG_LEN; n++) {
		assert_rc(
		    tr__client_verify(&out, &vd, &v, junk, n, NOW), TR_EINVAL);
		assert_int_equal(vd.cause, TR__CC_BAD_SIGNATURE);
		assert_non_null(strstr(vd.why, "shorter"));
	}

	/* Bad signature: the wrong cookie, a flipped bit anywhere in the
	 * signature or the body, a body cut short, the key of another
	 * purpose. */
	r = req_at(NOW);
	assert_rc(check(&v, &r, "another cookie", NOW, TR__CC_BAD_SIGNATURE),
	    TR_EINVAL);
	f = frame_of(&len, &r, COOKIE);
	for (size_t i = 0; i < len; i++) {
		f[i] ^= 0x04;
		assert_rc(
		    tr__client_verify(&out, &vd, &v, f, len, NOW), TR_EINVAL);
		assert_int_equal(vd.cause, TR__CC_BAD_SIGNATURE);
		f[i] ^= 0x04;
	}
	assert_rc(tr__client_verify(&out, &vd, &v, f, len - 1, NOW), TR_EINVAL);
	/* The signature with its body left out. */
	assert_rc(tr__client_verify(&out, &vd, &v, f, TR__CLIENT_SIG_LEN, NOW),
	    TR_EINVAL);
	assert_string_equal(
	    vd.why, "bad signature (wrong cookie, or the request was altered)");
	free(f);
	assert_rc(tr__kdf(key, COOKIE, strlen(COOKIE), TR__KDF_NODE), TR_OK);
	f = frame_with(&len, &r, key, sizeof(key));
	assert_rc(
	    check_frame(&v, f, len, NOW, TR__CC_BAD_SIGNATURE), TR_EINVAL);

	/* A client of minor 0: the request as it was (no node, no minor),
	 * signed with the raw cookie. Told why, not just "bad signature". */
	r = req_at(NOW);
	r.node = "";
	r.minor = 0;
	f = frame_old(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_ENOTSUP);
	assert_int_equal(vd.cause, TR__CC_TOO_OLD);
	assert_non_null(strstr(vd.why, "too old"));
	assert_non_null(strstr(vd.why, TR__KDF_CLIENT));
	assert_null(out);
	free(f);
	/* Signed with the raw cookie of another node: just a bad one. */
	f = frame_old(&len, &r, "another cookie");
	assert_rc(
	    check_frame(&v, f, len, NOW, TR__CC_BAD_SIGNATURE), TR_EINVAL);
	/* The new key but minor 0 (the field left out). */
	r = req_at(NOW);
	r.minor = 0;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_TOO_OLD), TR_ENOTSUP);

	/* A well-signed body that does not decode. */
	memset(junk, 0xff, sizeof(junk));
	assert_rc(tr__client_key(key, COOKIE), TR_OK);
	assert_rc(
	    tr__client_sign(&f, &len, key, sizeof(key), junk, sizeof(junk)),
	    TR_OK);
	assert_rc(check_frame(&v, f, len, NOW, TR__CC_BAD_REQUEST), TR_EINVAL);

	/* Wrong major, correctly signed: 0 (unset), the next one, the
	 * largest; with the reason a reply gives. */
	r = req_at(NOW);
	r.major = 0;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_VERSION), TR_ENOTSUP);
	r.major = MAJOR + 1;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_VERSION), TR_ENOTSUP);
	r.major = UINT32_MAX;
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_ENOTSUP);
	assert_string_equal(vd.why, WHY_MAJOR);
	free(f);

	/* Meant for another node, for none, for one whose name only starts
	 * like ours; the reason names both. */
	r = req_at(NOW);
	r.node = "beta";
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_EINVAL);
	assert_int_equal(vd.cause, TR__CC_WRONG_NODE);
	assert_non_null(strstr(vd.why, "\"beta\""));
	assert_non_null(strstr(vd.why, "\"" NODE "\""));
	free(f);
	r.node = "";
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WRONG_NODE), TR_EINVAL);
	r.node = NODE "x";
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WRONG_NODE), TR_EINVAL);
	r.node = "al";
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WRONG_NODE), TR_EINVAL);
	/* Control bytes in the name do not reach the reason. */
	r.node = "evil\n\x1b[2J";
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_EINVAL);
	assert_null(strchr(vd.why, '\n'));
	assert_null(strchr(vd.why, '\x1b'));
	free(f);

	/* Outside the window, either way, and absurd timestamps. */
	r = req_at(NOW - WINDOW - 1);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WINDOW), TR_ETIMEDOUT);
	r = req_at(NOW + WINDOW + 1);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WINDOW), TR_ETIMEDOUT);
	r = req_at(0);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WINDOW), TR_ETIMEDOUT);
	r = req_at(UINT64_MAX);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_WINDOW), TR_ETIMEDOUT);

	/* Nonces that are too short; no actor named. */
	r = req_at(NOW);
	r.nlen = 15;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_BAD_REQUEST), TR_EINVAL);
	r.nlen = 0;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_BAD_REQUEST), TR_EINVAL);
	r = req_at(NOW);
	r.to = "";
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_BAD_REQUEST), TR_EINVAL);

	/* Local-only types, from the first to the last. */
	r = req_at(NOW);
	r.type = TR_MSG_LOCAL_BASE;
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(&out, &vd, &v, f, len, NOW), TR_EINVAL);
	assert_int_equal(vd.cause, TR__CC_LOCAL_TYPE);
	assert_non_null(strstr(vd.why, "local-only"));
	free(f);
	r.type = TR_MSG_SYSTEM;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_LOCAL_TYPE), TR_EINVAL);
	r.type = TR_MSG_DOWN;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_LOCAL_TYPE), TR_EINVAL);
	r.type = TR__CLIENT_T_START;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_LOCAL_TYPE), TR_EINVAL);
	r.type = UINT32_MAX;
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_LOCAL_TYPE), TR_EINVAL);

	/* None of the refused requests was remembered. */
	assert_int_equal(tr__nonce_cache_count(c), 0);

	/* A replay with another timestamp is a new request (new body, new
	 * signature) but the same nonce: refused too. */
	r = req_at(NOW);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);
	r.ts = NOW + 5;
	assert_rc(check(&v, &r, COOKIE, NOW + 10, TR__CC_REPLAY), TR_EEXIST);
	/* Once the window has passed, the timestamp check refuses it, and
	 * the cache may forget it. */
	r.ts = NOW;
	assert_rc(check(&v, &r, COOKIE, NOW + WINDOW + 1, TR__CC_WINDOW),
	    TR_ETIMEDOUT);

	assert_string_equal(tr__client_cause_name(TR__CC_OK), "accepted");
	assert_string_equal(tr__client_cause_name(TR__CC_REPLAY), "replay");
	assert_string_equal(tr__client_cause_name(TR__CC_COUNT), "?");
	for (int k = 0; k < TR__CC_COUNT; k++)
		assert_non_null(tr__client_cause_name((tr__client_cause)k));
	tr__client_verifier_fini(&v);
	tr__nonce_cache_free(c);
}

/* A request bound to one node is refused by every other node that shares
 * the cookie: a captured request cannot be replayed across the cluster,
 * though each node has its own replay cache. */
static void test_verify_other_node(void **state)
{
	tr__nonce_cache *ca, *cb;
	tr__client_verifier a, b;
	struct req r = req_at(NOW);
	uint8_t *f;
	size_t len;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&ca, 8), TR_OK);
	assert_rc(tr__nonce_cache_alloc(&cb, 8), TR_OK);
	assert_rc(
	    tr__client_verifier_init(&a, COOKIE, NODE, WINDOW, ca), TR_OK);
	assert_rc(
	    tr__client_verifier_init(&b, COOKIE, "beta", WINDOW, cb), TR_OK);
	f = frame_of(&len, &r, COOKIE);
	assert_rc(check_frame(&a, f, len, NOW, TR__CC_OK), TR_OK);
	f = frame_of(&len, &r, COOKIE);
	assert_rc(check_frame(&b, f, len, NOW, TR__CC_WRONG_NODE), TR_EINVAL);
	assert_int_equal(tr__nonce_cache_count(cb), 0);
	tr__client_verifier_fini(&a);
	tr__client_verifier_fini(&b);
	tr__nonce_cache_free(ca);
	tr__nonce_cache_free(cb);
}

static void test_verify_full_cache(void **state)
{
	tr__nonce_cache *c;
	tr__client_verifier v;
	struct req r;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 8), TR_OK);
	v = verifier(c);
	for (int i = 0; i < 8; i++) {
		r = req_at(NOW);
		assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_OK), TR_OK);
	}
	/* Full of live nonces: refused, not grown. */
	r = req_at(NOW);
	assert_rc(check(&v, &r, COOKIE, NOW, TR__CC_CACHE_FULL), TR_EAGAIN);
	assert_int_equal(tr__nonce_cache_count(c), 8);
	/* The refused nonce was not recorded: it works once there is room,
	 * and the expired entries make room for a full cache's worth. */
	r.ts = NOW + WINDOW + 1;
	assert_rc(check(&v, &r, COOKIE, NOW + WINDOW + 1, TR__CC_OK), TR_OK);
	for (int i = 0; i < 7; i++) {
		r = req_at(NOW + WINDOW + 1);
		assert_rc(
		    check(&v, &r, COOKIE, NOW + WINDOW + 1, TR__CC_OK), TR_OK);
	}
	assert_int_equal(tr__nonce_cache_count(c), 8);
	tr__client_verifier_fini(&v);
	tr__nonce_cache_free(c);
}
/* The cache against a plain list, over random inserts as time passes:
 * same answers, and never more than `cap` entries. */
static void test_nonce_cache_model(void **state)
{
	enum { CAP = 64, KEYS = 200 };
	tr__nonce_cache *c;
	uint64_t model[KEYS]; /* expiry per key; 0: absent */
	uint64_t now = 1;

	(void)state;
	memset(model, 0, sizeof(model));
	assert_rc(tr__nonce_cache_alloc(&c, CAP), TR_OK);
	for (int op = 0; op < 200000; op++) {
		uint32_t key = (uint32_t)(next() % KEYS);
		uint64_t expiry = now + 1 + next() % 100;
		size_t live = 0;
		int want, got;

		for (size_t k = 0; k < KEYS; k++)
			if (model[k] > now && k != key)
				live++;
		if (model[key] > now)
			want = TR_EEXIST;
		else if (live >= CAP)
			want = TR_EAGAIN;
		else
			want = TR_OK;
		got = tr__nonce_cache_insert(c, &key, sizeof(key), expiry, now);
		if (got != want)
			fail_msg("op %d: key %u at %" PRIu64 ": got %d, want "
			         "%d",
			    op, key, now, got, want);
		if (want == TR_OK)
			model[key] = expiry;
		assert_true(tr__nonce_cache_count(c) <= CAP);
		if (next() % 3 == 0)
			now += next() % 4;
	}
	/* A dead expiry is accepted and not stored. */
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now, now), TR_OK);
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now + 10, now), TR_OK);
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now + 10, now), TR_EEXIST);
	tr__nonce_cache_free(c);
	tr__nonce_cache_free(NULL);
	assert_rc(tr__nonce_cache_alloc(NULL, 1), TR_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_client_key),
	    cmocka_unit_test(test_verify_ok),
	    cmocka_unit_test(test_verifier_init),
	    cmocka_unit_test(test_verify_refusals),
	    cmocka_unit_test(test_verify_other_node),
	    cmocka_unit_test(test_verify_full_cache),
	    cmocka_unit_test(test_nonce_cache_model),
	};

	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
