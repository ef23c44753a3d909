/*
 * The client endpoint: verification refusal by refusal (keys by purpose,
 * node binding, old clients, local-only types), the replay cache against
 * a model, the endpoint from C (slow calls that occupy only their slots,
 * the bound on calls, the frame limit enforced on the length, raw SP over
 * TCP as docs/client.md describes it, the bounds on connections (how many,
 * how long idle, descriptors after many), TLS, the counters), and the shell
 * recipe of docs/client.md run as written with protoc, openssl and nngcat.
 */
#include "common.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>

#include "client.h"
#include "codec.h"
#include "crypto.h"
#include "troupe/node.h"

#define COOKIE "s3cret cookie"
#define NODE "alpha"
#define WINDOW 30000u
#define NOW 1700000000000u /* a fixed "now" for the pure tests */
#define MAJOR ((uint32_t)TROUPE__WIRE__CLIENT_VERSION__CLIENT_MAJOR)
#define WHY_MAJOR "protocol major version not supported"

static uint64_t rng = 0x853c49e6748fea9bu;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- building requests --------------------------------------------------- */

struct req {
	uint32_t major, minor;
	uint64_t ts;
	uint8_t nonce[32];
	size_t nlen;
	const char *node;
	const char *to;
	uint32_t type;
	const char *payload;
	uint32_t timeout_ms;
};

/* A valid request for NODE at `ts` with a fresh random nonce. */
static struct req req_at(uint64_t ts)
{
	struct req r = {.major = MAJOR,
	    .minor = TR__CLIENT_MINOR,
	    .ts = ts,
	    .nlen = 16,
	    .node = NODE,
	    .to = "echo",
	    .type = 1,
	    .payload = "hello"};

	for (size_t i = 0; i < sizeof(r.nonce); i++)
		r.nonce[i] = (uint8_t)next();
	return r;
}

static uint8_t *body_of(size_t *blen, const struct req *r)
{
	Troupe__Wire__ClientRequest q = TROUPE__WIRE__CLIENT_REQUEST__INIT;
	uint8_t *body;

	q.major = r->major;
	q.minor = r->minor;
	q.timestamp_ms = r->ts;
	q.nonce.data = (uint8_t *)r->nonce;
	q.nonce.len = r->nlen;
	q.node = (char *)r->node;
	q.to_name = (char *)r->to;
	q.type = r->type;
	q.payload.data = (uint8_t *)r->payload;
	q.payload.len = strlen(r->payload);
	q.timeout_ms = r->timeout_ms;
	assert_rc(tr__client_request_encode(&body, blen, &q), TR_OK);
	return body;
}

/* Encodes `r` and signs it with `klen` bytes of `key`; the caller frees
 * the frame. */
static uint8_t *frame_with(
    size_t *len, const struct req *r, const void *key, size_t klen)
{
	uint8_t *body, *frame;
	size_t blen;

	body = body_of(&blen, r);
	assert_rc(tr__client_sign(&frame, len, key, klen, body, blen), TR_OK);
	free(body);
	return frame;
}

/* Encodes `r` and signs it with the client key of `cookie`. */
static uint8_t *frame_of(size_t *len, const struct req *r, const char *cookie)
{
	uint8_t key[TR__KDF_LEN];

	assert_rc(tr__client_key(key, cookie), TR_OK);
	return frame_with(len, r, key, sizeof(key));
}

/* Encodes `r` and signs it the way clients of minor 0 did: with the raw
 * cookie. */
static uint8_t *frame_old(size_t *len, const struct req *r, const char *cookie)
{
	return frame_with(len, r, cookie, strlen(cookie));
}

/* A verifier for NODE and COOKIE over `cache`. */
static tr__client_verifier verifier(tr__nonce_cache *cache)
{
	tr__client_verifier v;

	assert_rc(
	    tr__client_verifier_init(&v, COOKIE, NODE, WINDOW, cache), TR_OK);
	return v;
}

/* Verifies the frame `f` at `now`; returns the result and checks the
 * verdict's cause, and that *out is set exactly on success. */
static int check_frame(const tr__client_verifier *v, uint8_t *f, size_t len,
    uint64_t now, tr__client_cause want)
{
	Troupe__Wire__ClientRequest *out = (void *)1;
	tr__client_verdict vd;
	int rv = tr__client_verify(&out, &vd, v, f, len, now);

	free(f);
	if (vd.cause != want)
		fail_msg("cause %s (%s), want %s",
		    tr__client_cause_name(vd.cause), vd.why,
		    tr__client_cause_name(want));
	if (rv == TR_OK) {
		assert_non_null(out);
		assert_string_equal(vd.why, "");
		tr__client_request_free(out);
	} else {
		assert_null(out);
		assert_true(vd.why[0] != '\0');
	}
	return rv;
}

/* Verifies `r`, signed with the client key of `cookie`. */
static int check(const tr__client_verifier *v, const struct req *r,
    const char *cookie, uint64_t now, tr__client_cause want)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);

	return check_frame(v, f, len, now, want);
}

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

/* ---- the endpoint -------------------------------------------------------- */

static atomic_uint echo_handled;

/* Replies to a request with "echo: " and its payload. */
static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	char buf[256];
	size_t n = m->size < sizeof(buf) - 6 ? m->size : sizeof(buf) - 6;

	(void)state;
	atomic_fetch_add(&echo_handled, 1);
	if (m->ref == 0)
		return 0;
	memcpy(buf, "echo: ", 6);
	memcpy(buf + 6, m->data, n);
	TT_ACHECK(tr_reply(ctx, m, m->type, buf, 6 + n) == TR_OK);
	return 0;
}

static const tr_behaviour echo_b = {.name = "echo", .handle = echo_handle};

/* Takes requests and never answers: a slow actor, as seen by a caller. */
static int hole_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour hole_b = {.name = "hole", .handle = hole_handle};

/* Exits on its first message, without replying. */
static int quit_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	(void)m;
	tr_exit(ctx, 42);
	return 0;
}

static const tr_behaviour quit_b = {.name = "quit", .handle = quit_handle};

/* Replies with a local-only type (as an actor of this process may). */
static int local_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	static const char ptr[sizeof(void *)];

	(void)state;
	if (m->ref != 0)
		TT_ACHECK(tr_reply(ctx, m, TR_MSG_LOCAL_BASE + 1, ptr,
		              sizeof(ptr)) == TR_OK);
	return 0;
}

static const tr_behaviour local_b = {.name = "local", .handle = local_handle};

/* Log lines of the endpoint, counted by the cause they name. */
static atomic_uint log_lines[TR__CC_COUNT];
static atomic_uint log_conn_refused, log_conn_idle;

static void count_log(void *user, const char *line)
{
	char want[64];

	(void)user;
	if (strstr(line, "refused a connection") != NULL)
		atomic_fetch_add(&log_conn_refused, 1);
	if (strstr(line, "closed a connection idle") != NULL)
		atomic_fetch_add(&log_conn_idle, 1);
	for (int k = 1; k < TR__CC_COUNT; k++) {
		snprintf(want, sizeof(want), "refused a request (%s)",
		    tr__client_cause_name((tr__client_cause)k));
		if (strstr(line, want) != NULL)
			atomic_fetch_add(&log_lines[k], 1);
	}
}

struct fx {
	tr_runtime *rt;
	tr__client *client;
	char dir[256];
	char url[320];
};

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[600];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	/* ipc:// paths are limited to about 100 bytes: keep it short. */
	snprintf(fx->dir, sizeof(fx->dir), "%s/trc.XXXXXX",
	    tmp != NULL && *tmp != '\0' && strlen(tmp) < 60 ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->url, sizeof(fx->url), "ipc://%s/client.ipc", fx->dir);
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	tr__client_stop(fx->client);
	if (fx->rt != NULL)
		tr_runtime_stop(fx->rt);
	rm_dir(fx->dir);
	free(fx);
	return 0;
}

/* Starts a runtime with the test actors (no endpoint). */
static void fx_runtime(struct fx *fx)
{
	static const struct {
		const char *name;
		const tr_behaviour *b;
	} actors[] = {{"echo", &echo_b}, {"hole", &hole_b}, {"quit", &quit_b},
	    {"local", &local_b}};
	tr_runtime_opts o;
	tr_pid pid;

	tt_restore_signals();
	atomic_store(&echo_handled, 0);
	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	assert_rc(tr_runtime_start(&fx->rt, &o), TR_OK);
	for (int k = 0; k < TR__CC_COUNT; k++)
		atomic_store(&log_lines[k], 0);
	atomic_store(&log_conn_refused, 0);
	atomic_store(&log_conn_idle, 0);
	tr_runtime_set_log(fx->rt, count_log, NULL);
	for (size_t i = 0; i < sizeof(actors) / sizeof(actors[0]); i++) {
		assert_rc(
		    tr_spawn(&pid, fx->rt, actors[i].b, NULL, NULL), TR_OK);
		assert_rc(tr_register(fx->rt, actors[i].name, pid), TR_OK);
	}
}

static tr__client_opts opts_for(const char *url)
{
	tr__client_opts o = {
	    .url = url, .node = NODE, .cookie = COOKIE, .max_request = 65536};

	return o;
}

/* The runtime and an endpoint with `o`. */
static void fx_start_with(struct fx *fx, const tr__client_opts *o)
{
	fx_runtime(fx);
	assert_rc(tr__client_start(&fx->client, fx->rt, o), TR_OK);
	if (strstr(o->url, ":0") == NULL)
		assert_string_equal(tr__client_url(fx->client), o->url);
}

static void fx_start(struct fx *fx)
{
	tr__client_opts o = opts_for(fx->url);

	fx_start_with(fx, &o);
}

static void fx_stop(struct fx *fx)
{
	tr__client_stop(fx->client);
	fx->client = NULL;
	tr_runtime_stop(fx->rt);
	fx->rt = NULL;
}

static tr__client_stats stats(struct fx *fx)
{
	tr__client_stats st;

	assert_rc(tr__client_stats_get(&st, fx->client), TR_OK);
	return st;
}

static nng_socket req_open(const char *url)
{
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dial(s, url, NULL, 0), 0);
	return s;
}

static Troupe__Wire__ClientReply *recv_reply(nng_socket s)
{
	Troupe__Wire__ClientReply *rep;
	void *buf = NULL;
	size_t n = 0;

	assert_int_equal(nng_recv(s, &buf, &n, NNG_FLAG_ALLOC), 0);
	rep = tr__client_reply_decode(buf, n, tr__decode_budget(n));
	nng_free(buf, n);
	assert_non_null(rep);
	return rep;
}

/* Sends `len` bytes and returns the decoded reply (caller frees). */
static Troupe__Wire__ClientReply *roundtrip(
    nng_socket s, const void *frame, size_t len)
{
	assert_int_equal(nng_send(s, (void *)frame, len, 0), 0);
	return recv_reply(s);
}

static Troupe__Wire__ClientReply *call_req(
    nng_socket s, const struct req *r, const char *cookie)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);
	Troupe__Wire__ClientReply *rep = roundtrip(s, f, len);

	free(f);
	return rep;
}

/* Sends `r` (signed with COOKIE's client key) without waiting. */
static void send_req(nng_socket s, const struct req *r)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, COOKIE);

	assert_int_equal(nng_send(s, f, len, 0), 0);
	free(f);
}

static void expect_refusal(nng_socket s, const struct req *r,
    const char *cookie, int err, const char *text)
{
	Troupe__Wire__ClientReply *rep = call_req(s, r, cookie);

	assert_rc(rep->error, err);
	assert_non_null(rep->message);
	if (strstr(rep->message, text) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", text, rep->message);
	assert_int_equal(rep->type, 0);
	assert_int_equal(rep->payload.len, 0);
	tr__client_reply_free(rep);
}

static void test_endpoint(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);

	/* A call. */
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->type, 1);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* Its replay, a wrong cookie, a stale request, junk, an old
	 * client, another node, a local-only type: each refused with a
	 * reason, and none reaches the actor. */
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_EEXIST);
	assert_non_null(strstr(rep->message, "replay"));
	tr__client_reply_free(rep);
	free(f);

	r = req_at(wall_ms());
	expect_refusal(s, &r, "not the cookie", TR_EINVAL, "bad signature");
	r = req_at(wall_ms() - 2 * WINDOW);
	expect_refusal(s, &r, COOKIE, TR_ETIMEDOUT, "window");

	rep = roundtrip(s, "short", 5);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "shorter"));
	tr__client_reply_free(rep);

	r = req_at(wall_ms());
	r.major = 7;
	expect_refusal(s, &r, COOKIE, TR_ENOTSUP, WHY_MAJOR);

	r = req_at(wall_ms());
	r.node = "";
	r.minor = 0;
	f = frame_old(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_ENOTSUP);
	assert_non_null(strstr(rep->message, "too old"));
	tr__client_reply_free(rep);
	free(f);

	r = req_at(wall_ms());
	r.node = "beta";
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "for node \"beta\"");

	r = req_at(wall_ms());
	r.type = TR_MSG_LOCAL_BASE + 7;
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");
	r = req_at(wall_ms());
	r.type = TR_MSG_EXIT;
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* Accepted, but no such actor; an actor that exits first; one that
	 * replies with a local-only type (which must not leave). */
	r = req_at(wall_ms());
	r.to = "nobody";
	expect_refusal(s, &r, COOKIE, TR_ENOENT, "nobody");
	r = req_at(wall_ms());
	r.to = "quit";
	expect_refusal(s, &r, COOKIE, TR_ENOPROC, "exited");
	r = req_at(wall_ms());
	r.to = "local";
	expect_refusal(s, &r, COOKIE, TR_EINVAL, "local-only");

	/* Every refusal was counted under its cause, the calls by outcome. */
	st = stats(fx);
	assert_int_equal(st.refused[TR__CC_OK], 0);
	assert_int_equal(st.refused[TR__CC_REPLAY], 1);
	assert_int_equal(st.refused[TR__CC_BAD_SIGNATURE], 2);
	assert_int_equal(st.refused[TR__CC_WINDOW], 1);
	assert_int_equal(st.refused[TR__CC_VERSION], 1);
	assert_int_equal(st.refused[TR__CC_TOO_OLD], 1);
	assert_int_equal(st.refused[TR__CC_WRONG_NODE], 1);
	assert_int_equal(st.refused[TR__CC_LOCAL_TYPE], 2);
	assert_int_equal(st.refused[TR__CC_BUSY], 0);
	assert_int_equal(st.refused[TR__CC_CACHE_FULL], 0);
	assert_int_equal(st.refused[TR__CC_BAD_REQUEST], 0);
	assert_int_equal(st.answered, 1);
	assert_int_equal(st.failed, 3);
	assert_int_equal(st.calls, 0);
	/* One connection, the whole time. */
	assert_int_equal(st.conns, 1);
	assert_int_equal(st.conns_refused, 0);
	assert_int_equal(st.conns_idle_closed, 0);
	assert_rc(tr__client_stats_get(NULL, fx->client), TR_EINVAL);
	assert_rc(tr__client_stats_get(&st, NULL), TR_EINVAL);

	nng_close(s);
	fx_stop(fx);
}

/* A flood of refusals is counted in full but logged once per cause per
 * interval. */
static void test_endpoint_refusal_log(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);
	for (int i = 0; i < 50; i++) {
		rep = roundtrip(s, "not a frame", 11);
		assert_rc(rep->error, TR_EINVAL);
		tr__client_reply_free(rep);
	}
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	for (int i = 0; i < 20; i++) {
		rep = roundtrip(s, f, len);
		assert_rc(rep->error, i == 0 ? TR_OK : TR_EEXIST);
		tr__client_reply_free(rep);
	}
	free(f);
	assert_int_equal(stats(fx).refused[TR__CC_BAD_SIGNATURE], 50);
	assert_int_equal(stats(fx).refused[TR__CC_REPLAY], 19);
	assert_int_equal(atomic_load(&log_lines[TR__CC_BAD_SIGNATURE]), 1);
	assert_int_equal(atomic_load(&log_lines[TR__CC_REPLAY]), 1);
	assert_int_equal(atomic_load(&log_lines[TR__CC_WINDOW]), 0);
	nng_close(s);
	fx_stop(fx);
}

/* Correctly signed requests of another protocol major (0, the next one,
 * the largest) are refused over the endpoint with TR_ENOTSUP and the
 * reason, no type and no payload, and none reaches the actor; nor is
 * their nonce remembered: the same nonce with the right major is then
 * served (which also shows the actor was there to reach). */
static void test_endpoint_wrong_major(void **state)
{
	static const uint32_t majors[] = {0, MAJOR + 1, UINT32_MAX};
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);
	r = req_at(wall_ms());
	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		r.major = majors[i];
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_ENOTSUP);
		assert_non_null(rep->message);
		assert_string_equal(rep->message, WHY_MAJOR);
		assert_int_equal(rep->type, 0);
		assert_int_equal(rep->payload.len, 0);
		tr__client_reply_free(rep);
	}
	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 0);

	r.major = MAJOR;
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	nng_close(s);
	fx_stop(fx);
}

/* Two nodes' endpoints with one cookie: a request for alpha, captured and
 * replayed to beta, is refused there. */
static void test_endpoint_other_node(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o;
	tr__client *beta;
	Troupe__Wire__ClientReply *rep;
	char url[340];
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket a, b;

	fx_start(fx);
	snprintf(url, sizeof(url), "ipc://%s/beta.ipc", fx->dir);
	o = opts_for(url);
	o.node = "beta";
	assert_rc(tr__client_start(&beta, fx->rt, &o), TR_OK);
	a = req_open(fx->url);
	b = req_open(url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(a, f, len);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	rep = roundtrip(b, f, len);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "not for this node (\"beta\")"));
	tr__client_reply_free(rep);
	free(f);
	assert_int_equal(atomic_load(&echo_handled), 1);
	nng_close(a);
	nng_close(b);
	tr__client_stop(beta);
	fx_stop(fx);
}

/* K slow calls are outstanding (an actor that never answers): each holds
 * a call slot and nothing else, so fast calls are still answered at once;
 * then every slow call ends with its own timeout. */
static void test_endpoint_slow_calls(void **state)
{
	enum { K = 40 };
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket slow[K], s;
	int64_t t0, worst = 0;

	fx_start(fx);
	for (size_t i = 0; i < K; i++) {
		slow[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 5000;
		send_req(slow[i], &r);
	}
	/* All K are in progress (so none of them waits in nng). */
	assert_true(TT_WAIT_FOR(stats(fx).calls == K, TT_WAIT_MS));
	s = req_open(fx->url);
	for (int i = 0; i < 20; i++) {
		int64_t t;

		t0 = tt_now_ms();
		r = req_at(wall_ms());
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
		t = tt_now_ms() - t0;
		worst = t > worst ? t : worst;
	}
	print_message("fast call with %d slow ones outstanding: worst %" PRId64
	              " ms\n",
	    K, worst);
	/* The behaviour, not a speed: all 20 fast calls were answered while
	 * every slow call still held its slot (they end after 5 s). */
	assert_int_equal(stats(fx).calls, K);

	for (size_t i = 0; i < K; i++) {
		rep = recv_reply(slow[i]);
		assert_rc(rep->error, TR_ETIMEDOUT);
		assert_non_null(strstr(rep->message, "hole"));
		assert_non_null(strstr(rep->message, "5000 ms"));
		tr__client_reply_free(rep);
		nng_close(slow[i]);
	}
	assert_int_equal(stats(fx).failed, K);
	assert_int_equal(stats(fx).answered, 20);
	assert_int_equal(stats(fx).calls, 0);
	nng_close(s);
	fx_stop(fx);
}

/* With max_calls calls in progress, the next request is answered at once
 * with TR_EAGAIN and is not recorded: the same frame works later. */
static void test_endpoint_busy(void **state)
{
	enum { MAX = 3 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(fx->url);
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket slow[MAX], s;
	uint8_t *f;
	size_t len;

	o.max_calls = MAX;
	fx_start_with(fx, &o);
	for (size_t i = 0; i < MAX; i++) {
		slow[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 5000;
		send_req(slow[i], &r);
	}
	assert_true(TT_WAIT_FOR(stats(fx).calls == MAX, TT_WAIT_MS));
	s = req_open(fx->url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	/* Answered at once: while every slot is still held. */
	assert_int_equal(stats(fx).calls, MAX);
	assert_rc(rep->error, TR_EAGAIN);
	assert_non_null(strstr(rep->message, "limit of 3 calls"));
	tr__client_reply_free(rep);
	/* Refusals are still answered meanwhile. */
	rep = roundtrip(s, "junk", 4);
	assert_rc(rep->error, TR_EINVAL);
	tr__client_reply_free(rep);
	assert_int_equal(stats(fx).refused[TR__CC_BUSY], 1);

	for (size_t i = 0; i < MAX; i++) {
		rep = recv_reply(slow[i]);
		assert_rc(rep->error, TR_ETIMEDOUT);
		tr__client_reply_free(rep);
		nng_close(slow[i]);
	}
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	free(f);
	nng_close(s);
	fx_stop(fx);
}

/* Stopping while calls are in progress and requests are queued; the URL
 * can be listened on again right after. */
static void test_endpoint_stop_busy(void **state)
{
	enum { N = 12 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(fx->url);
	nng_socket s[N];
	struct req r;
	int64_t t0;

	o.max_calls = 4;
	fx_start_with(fx, &o);
	for (size_t i = 0; i < N; i++) {
		s[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 30000;
		send_req(s[i], &r);
	}
	tt_sleep_ms(50);
	t0 = tt_now_ms();
	tr__client_stop(fx->client);
	fx->client = NULL;
	/* Never waits for an actor: the calls would hold it for 30 s. */
	assert_true(tt_now_ms() - t0 < 20000);
	assert_rc(tr__client_start(&fx->client, fx->rt, &o), TR_OK);
	for (size_t i = 0; i < N; i++)
		nng_close(s[i]);
	fx_stop(fx);
}

static void test_start_errors(void **state)
{
	struct fx *fx = *state;
	tr__client *c = (void *)1, *c2;
	tr__client_opts o;

	fx_start(fx);
	o = opts_for(fx->url);
	assert_rc(tr__client_start(&c, NULL, &o), TR_EINVAL);
	assert_null(c);
	assert_rc(tr__client_start(&c, fx->rt, NULL), TR_EINVAL);
	assert_rc(tr__client_start(NULL, fx->rt, &o), TR_EINVAL);
	o.url = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.cookie = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.cookie = "";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.node = NULL;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.node = "";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.max_calls = TR__CLIENT_MAX_CALLS_CAP + 1;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for(fx->url);
	o.max_conns = TR__CLIENT_MAX_CONNS_CAP + 1;
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for("nonsense");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o = opts_for("nope://x");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_ENOTSUP);
	o = opts_for(fx->url);
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EEXIST);
	assert_null(c);
	/* tls+tcp:// needs a certificate and its key, and ones that load. */
	o = opts_for("tls+tcp://127.0.0.1:0");
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	o.tls_cert = "not a certificate";
	o.tls_key = "not a key";
	assert_rc(tr__client_start(&c, fx->rt, &o), TR_EINVAL);
	assert_null(c);
	/* tcp port 0: the real port is reported. Defaults for the rest. */
	o = (tr__client_opts){
	    .url = "tcp://127.0.0.1:0", .node = NODE, .cookie = COOKIE};
	assert_rc(tr__client_start(&c2, fx->rt, &o), TR_OK);
	assert_null(strstr(tr__client_url(c2), ":0"));
	assert_non_null(strstr(tr__client_url(c2), "tcp://127.0.0.1:"));
	tr__client_stop(c2);
	tr__client_stop(NULL);
	fx_stop(fx);
}
/* ---- SP over raw TCP, as docs/client.md describes it --------------------- */

/* Starts the endpoint on tcp://127.0.0.1:0 and returns its port. */
static int fx_start_tcp(struct fx *fx, tr__client_opts *o)
{
	const char *url, *colon;

	o->url = "tcp://127.0.0.1:0";
	fx_start_with(fx, o);
	url = tr__client_url(fx->client);
	colon = strrchr(url, ':');
	assert_non_null(colon);
	snprintf(fx->url, sizeof(fx->url), "%s", url);
	return atoi(colon + 1);
}

static int tcp_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)port),
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t k = send(fd, b, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		b += k;
		n -= (size_t)k;
	}
}

/* Reads exactly `n` bytes, waiting at most TT_WAIT_MS; returns false on
 * end of stream or a reset. */
static bool read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t k;

		assert_int_equal(poll(&pf, 1, TT_WAIT_MS), 1);
		k = recv(fd, b, n, 0);
		if (k <= 0)
			return false;
		b += k;
		n -= (size_t)k;
	}
	return true;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* The SP/TCP handshake of a req0 peer: "\0SP\0", protocol 0x0030 (req0),
 * two reserved bytes; the node answers with protocol 0x0031 (rep0). */
static void sp_handshake(int fd)
{
	static const uint8_t hello[8] = {0, 'S', 'P', 0, 0x00, 0x30, 0, 0};
	static const uint8_t want[8] = {0, 'S', 'P', 0, 0x00, 0x31, 0, 0};
	uint8_t got[8];

	write_all(fd, hello, sizeof(hello));
	assert_true(read_all(fd, got, sizeof(got)));
	assert_memory_equal(got, want, sizeof(want));
}

/* One message: a 64-bit big-endian length, then the 32-bit request id
 * (high bit set) and the frame. */
static void sp_send(int fd, uint32_t id, const void *frame, size_t len)
{
	uint8_t hdr[12];

	put_be32(hdr, 0);
	put_be32(hdr + 4, (uint32_t)(len + 4));
	put_be32(hdr + 8, id);
	write_all(fd, hdr, sizeof(hdr));
	write_all(fd, frame, len);
}

/* A reply: the same framing; returns the decoded ClientReply and the id
 * it carried back. */
static Troupe__Wire__ClientReply *sp_recv(int fd, uint32_t *id)
{
	Troupe__Wire__ClientReply *rep;
	uint8_t hdr[12], *body;
	uint32_t n;

	assert_true(read_all(fd, hdr, sizeof(hdr)));
	assert_int_equal(get_be32(hdr), 0);
	n = get_be32(hdr + 4);
	assert_true(n >= 4 && n < 65536);
	*id = get_be32(hdr + 8);
	body = malloc(n - 4 + 1);
	assert_non_null(body);
	assert_true(read_all(fd, body, n - 4));
	rep = tr__client_reply_decode(body, n - 4, tr__decode_budget(n - 4));
	free(body);
	assert_non_null(rep);
	return rep;
}

/* A client with no nng at all: plain sockets, the SP framing and request
 * ids exactly as docs/client.md gives them; two requests in flight on one
 * connection, each reply carrying its id back. */
static void test_endpoint_raw_sp(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	struct req r1, r2;
	uint8_t *f1, *f2;
	size_t l1, l2;
	uint32_t id, seen = 0;
	int fd;

	fd = tcp_connect(fx_start_tcp(fx, &o));
	sp_handshake(fd);
	r1 = req_at(wall_ms());
	r2 = req_at(wall_ms());
	r2.payload = "second";
	f1 = frame_of(&l1, &r1, COOKIE);
	f2 = frame_of(&l2, &r2, COOKIE);
	sp_send(fd, 0x80000001u, f1, l1);
	sp_send(fd, 0x80000002u, f2, l2);
	for (int i = 0; i < 2; i++) {
		rep = sp_recv(fd, &id);
		assert_rc(rep->error, TR_OK);
		if (id == 0x80000001u) {
			assert_int_equal(rep->payload.len, 11);
			assert_memory_equal(
			    rep->payload.data, "echo: hello", 11);
		} else {
			assert_int_equal(id, 0x80000002u);
			assert_int_equal(rep->payload.len, 12);
			assert_memory_equal(
			    rep->payload.data, "echo: second", 12);
		}
		seen |= 1u << (id & 3);
		tr__client_reply_free(rep);
	}
	assert_int_equal(seen, 6);
	/* A refusal comes back the same way. */
	sp_send(fd, 0x80000003u, f1, l1);
	rep = sp_recv(fd, &id);
	assert_int_equal(id, 0x80000003u);
	assert_rc(rep->error, TR_EEXIST);
	tr__client_reply_free(rep);
	free(f1);
	free(f2);
	close(fd);
	fx_stop(fx);
}

static long rss_kib(void)
{
	FILE *fp = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;

	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld %ld", &pages, &rss), 2);
	fclose(fp);
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Frames over max_request are refused on their length: the node closes
 * the connection after the 8-byte length, before it buffers any of the
 * frame. Four connections that announce 60 MiB frames and push what they
 * can cost the node (this process) no memory to speak of. Through nng, a
 * req socket sees no reply (it redials and resends until it gives up),
 * and the endpoint serves the next request. */
static void test_endpoint_too_large(void **state)
{
	enum { CONNS = 4, PART = 16 << 20 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	uint8_t hdr[12], *part, buf[16];
	int fd[CONNS], port;
	long before, after;
	struct req r;
	nng_socket s;
	void *rbuf;
	size_t n;

	o.max_request = 64 * 1024;
	port = fx_start_tcp(fx, &o);
	part = calloc(1, PART);
	assert_non_null(part);
	before = rss_kib();
	for (int i = 0; i < CONNS; i++) {
		fd[i] = tcp_connect(port);
		sp_handshake(fd[i]);
		put_be32(hdr, 0);
		put_be32(hdr + 4, 60u << 20);
		put_be32(hdr + 8, 0x80000001u);
		write_all(fd[i], hdr, sizeof(hdr));
	}
	for (int i = 0; i < CONNS; i++) {
		/* Closed by the node: the read sees the end (or a reset). */
		struct pollfd pf = {.fd = fd[i], .events = POLLIN};

		assert_int_equal(poll(&pf, 1, TT_WAIT_MS), 1);
		assert_true(recv(fd[i], buf, sizeof(buf), 0) <= 0);
		/* And whatever more is pushed is not buffered by it. */
		(void)send(fd[i], part, PART, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd[i]);
	}
	after = rss_kib();
	print_message("RSS before %ld KiB, after 4 oversized frames %ld KiB\n",
	    before, after);
	assert_true(after - before < 8 * 1024);
	free(part);

	/* Over nng: one byte over the limit gets no reply; a frame at the
	 * limit is verified (and refused: it is junk). The limit counts
	 * the frame, not the 4-byte request id in front of it. */
	s = req_open(fx->url);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 300), 0);
	part = calloc(1, o.max_request + 1);
	assert_non_null(part);
	assert_int_equal(nng_send(s, part, o.max_request + 1, 0), 0);
	rbuf = NULL;
	assert_int_equal(nng_recv(s, &rbuf, &n, NNG_FLAG_ALLOC), NNG_ETIMEDOUT);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	rep = roundtrip(s, part, o.max_request);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "bad signature"));
	tr__client_reply_free(rep);
	free(part);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	fx_stop(fx);
}

/* ---- bounds on connections ------------------------------------------------
 */

/* The most connections seen open at once by `sample`. */
static uint32_t conns_peak;

/* The endpoint's counters, keeping note of the peak of open connections. */
static tr__client_stats sample(struct fx *fx)
{
	tr__client_stats st = stats(fx);

	if (st.conns > conns_peak)
		conns_peak = st.conns;
	return st;
}

/* Connections the endpoint has decided on: admitted and still open, or
 * refused. */
static uint64_t conns_seen(struct fx *fx)
{
	tr__client_stats st = sample(fx);

	return st.conns + st.conns_refused;
}

/* Whether the node closed `fd` within `ms`: the read sees the end of the
 * stream (or a reset). */
static bool closed_by_node(int fd, int ms)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	uint8_t b;

	if (poll(&pf, 1, ms) != 1)
		return false;
	return recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

/* A raw TCP connection that has done its SP handshake. */
static int sp_connect(int port)
{
	int fd = tcp_connect(port);

	sp_handshake(fd);
	return fd;
}

/* A req socket that dials in the background (a connection refused at
 * once is no error to nng: it dials again). */
static nng_socket req_open_bg(const char *url)
{
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK), 0);
	return s;
}

/* At most max_conns connections are open at once: one beyond is closed
 * as soon as its SP headers are exchanged, before any request of it is
 * read; each is counted, and the cause logged once per interval. A req
 * client that comes while the endpoint is full is refused again at each
 * redial, its request waiting on its side; it is served once another
 * client leaves. */
static void test_endpoint_conn_cap(void **state)
{
	enum { CAP = 4, EXTRA = 3 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	int fd[CAP + EXTRA], port;
	struct req r;
	nng_socket s;
	nng_aio *aio;
	nng_msg *m;
	uint8_t *f;
	size_t len;
	int64_t t0 = tt_now_ms();

	conns_peak = 0;
	o.max_conns = CAP;
	port = fx_start_tcp(fx, &o);
	for (int i = 0; i < CAP + EXTRA; i++) {
		fd[i] = sp_connect(port);
		/* One at a time, so that the first CAP are the ones let
		 * in. */
		assert_true(
		    TT_WAIT_FOR(conns_seen(fx) == (uint64_t)i + 1, TT_WAIT_MS));
	}
	st = sample(fx);
	assert_int_equal(st.conns, CAP);
	assert_int_equal(st.conns_refused, EXTRA);
	for (int i = CAP; i < CAP + EXTRA; i++) {
		assert_true(closed_by_node(fd[i], TT_WAIT_MS));
		close(fd[i]);
	}
	/* The admitted ones stay, and are served. */
	for (int i = 0; i < CAP; i++)
		assert_false(closed_by_node(fd[i], i == 0 ? 200 : 0));
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	sp_send(fd[1], 0x80000001u, f, len);
	free(f);
	{
		uint32_t id;

		rep = sp_recv(fd[1], &id);
		assert_int_equal(id, 0x80000001u);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
	}

	/* A req client, full house: its request waits on its side while
	 * its connections are refused. */
	s = req_open_bg(fx->url);
	r = req_at(wall_ms());
	f = frame_of(&len, &r, COOKIE);
	assert_int_equal(nng_msg_alloc(&m, 0), 0);
	assert_int_equal(nng_msg_append(m, f, len), 0);
	free(f);
	assert_int_equal(nng_aio_alloc(&aio, NULL, NULL), 0);
	nng_aio_set_msg(aio, m);
	nng_aio_set_timeout(aio, TT_WAIT_MS);
	nng_send_aio(s, aio);
	assert_true(
	    TT_WAIT_FOR(sample(fx).conns_refused >= EXTRA + 2, TT_WAIT_MS));
	assert_int_equal(sample(fx).answered, 1);
	/* A place frees: the req client gets it, sends, is answered. */
	close(fd[0]);
	nng_aio_wait(aio);
	assert_int_equal(nng_aio_result(aio), 0);
	nng_aio_free(aio);
	rep = recv_reply(s);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	tr__client_reply_free(rep);
	st = sample(fx);
	assert_int_equal(st.conns, CAP);
	assert_int_equal(st.answered, 2);
	assert_true(conns_peak <= CAP);
	/* Counted every time, logged once per 10 s. */
	if (tt_now_ms() - t0 < 9000)
		assert_int_equal(atomic_load(&log_conn_refused), 1);
	else
		assert_true(atomic_load(&log_conn_refused) >= 1);
	print_message("%" PRIu64 " connections refused, %u log line(s)\n",
	    st.conns_refused, atomic_load(&log_conn_refused));

	nng_close(s);
	for (int i = 1; i < CAP; i++)
		close(fd[i]);
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	assert_true(conns_peak <= CAP);
	fx_stop(fx);
}

/* A connection with no request for idle_ms is closed; one that sends a
 * request now and then stays, and so does one whose call is in progress
 * for longer than idle_ms: its idle time starts when its reply is sent.
 * A req client whose connection was closed as idle dials again by itself
 * and is served. */
static void test_endpoint_idle(void **state)
{
	enum { IDLE = 1000, QUIET = 2 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	int quiet[QUIET], busy, calling, port, rounds = 0;
	uint64_t closed;
	int64_t t0, t;
	struct req r;
	uint32_t id;
	uint8_t *f;
	size_t len;
	nng_socket s;

	o.idle_ms = IDLE;
	port = fx_start_tcp(fx, &o);
	t0 = tt_now_ms();
	for (int i = 0; i < QUIET; i++)
		quiet[i] = sp_connect(port);
	busy = sp_connect(port);
	calling = sp_connect(port);
	assert_true(TT_WAIT_FOR(stats(fx).conns == QUIET + 2, TT_WAIT_MS));
	r = req_at(wall_ms());
	r.to = "hole";
	r.timeout_ms = 3 * IDLE;
	f = frame_of(&len, &r, COOKIE);
	sp_send(calling, 0x80000001u, f, len);
	free(f);
	assert_true(TT_WAIT_FOR(stats(fx).calls == 1, TT_WAIT_MS));

	/* Not closed before their time (checked only while it is early
	 * enough to tell). */
	for (int i = 0; i < QUIET; i++) {
		bool gone = closed_by_node(quiet[i], 0);

		if (tt_now_ms() < t0 + IDLE)
			assert_false(gone);
	}
	/* The busy one keeps calling, well within idle_ms each time, until
	 * the slow call ends (after 3 idle times); the quiet ones go
	 * meanwhile. */
	for (;;) {
		struct pollfd pf = {.fd = calling, .events = POLLIN};

		assert_true(poll(&pf, 1, 0) >= 0);
		if (pf.revents != 0)
			break;
		assert_true(tt_now_ms() - t0 < TT_WAIT_MS);
		r = req_at(wall_ms());
		f = frame_of(&len, &r, COOKIE);
		sp_send(busy, 0x80000000u | (uint32_t)++rounds, f, len);
		free(f);
		rep = sp_recv(busy, &id);
		assert_int_equal(id, 0x80000000u | (uint32_t)rounds);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
		tt_sleep_ms(50);
	}
	for (int i = 0; i < QUIET; i++) {
		assert_true(closed_by_node(quiet[i], TT_WAIT_MS));
		close(quiet[i]);
	}
	/* The slow call's connection was kept for its reply. */
	rep = sp_recv(calling, &id);
	t = tt_now_ms();
	assert_int_equal(id, 0x80000001u);
	assert_rc(rep->error, TR_ETIMEDOUT);
	tr__client_reply_free(rep);
	assert_int_equal(stats(fx).conns_idle_closed, QUIET);
	assert_int_equal(stats(fx).conns, 2);
	print_message("%d calls on the busy connection over %" PRId64
	              " ms; quiet ones closed\n",
	    rounds, t - t0);

	/* Now both are quiet: each goes an idle time after its last reply
	 * (had the slow call's counted from its request, it would go at
	 * the next sweep). */
	assert_true(closed_by_node(calling, TT_WAIT_MS));
	assert_true(tt_now_ms() - t >= IDLE / 4);
	assert_true(closed_by_node(busy, TT_WAIT_MS));
	close(calling);
	close(busy);
	assert_true(
	    TT_WAIT_FOR(stats(fx).conns_idle_closed == QUIET + 2, TT_WAIT_MS));
	/* Counted every time, logged once per 10 s. */
	if (tt_now_ms() - t0 < 9000)
		assert_int_equal(atomic_load(&log_conn_idle), 1);
	else
		assert_true(atomic_load(&log_conn_idle) >= 1);

	/* A req client left quiet past idle_ms: its connection is closed,
	 * it dials again, and its next call is served. */
	s = req_open(fx->url);
	closed = stats(fx).conns_idle_closed;
	assert_true(
	    TT_WAIT_FOR(stats(fx).conns_idle_closed > closed + 1, TT_WAIT_MS));
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	assert_true(TT_WAIT_FOR(stats(fx).conns == 0, TT_WAIT_MS));
	fx_stop(fx);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Many connections made and dropped, over the limit and under it, by
 * raw clients and req sockets, and left for the node to close as idle:
 * afterwards this process (both ends) holds as many descriptors as
 * before, and the endpoint counts no connection. */
static void test_endpoint_conn_fds(void **state)
{
	enum { CAP = 4, PER = 8, ROUNDS = 40, IDLE = 200 };
	struct fx *fx = *state;
	tr__client_opts o = opts_for(NULL);
	Troupe__Wire__ClientReply *rep;
	tr__client_stats st;
	int fd[PER], port, fds0, fds1;
	struct req r;
	nng_socket s;

	conns_peak = 0;
	o.max_conns = CAP;
	o.idle_ms = IDLE;
	port = fx_start_tcp(fx, &o);
	/* A first req socket brings up whatever nng keeps for good. */
	s = req_open(fx->url);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);
	nng_close(s);
	assert_true(TT_WAIT_FOR(stats(fx).conns == 0, TT_WAIT_MS));
	fds0 = count_fds();

	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < PER; i++)
			fd[i] = sp_connect(port);
		(void)sample(fx);
		for (int i = 0; i < PER; i++)
			close(fd[i]);
		if (round % 8 == 0) {
			assert_true(
			    TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
			s = req_open(fx->url);
			r = req_at(wall_ms());
			rep = call_req(s, &r, COOKIE);
			assert_rc(rep->error, TR_OK);
			tr__client_reply_free(rep);
			nng_close(s);
		}
	}
	/* And a full house left for the node to close. */
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	for (int i = 0; i < CAP; i++)
		fd[i] = sp_connect(port);
	for (int i = 0; i < CAP; i++) {
		assert_true(closed_by_node(fd[i], TT_WAIT_MS));
		close(fd[i]);
	}
	assert_true(TT_WAIT_FOR(sample(fx).conns == 0, TT_WAIT_MS));
	st = sample(fx);
	assert_true(st.conns_refused > 0);
	assert_true(st.conns_idle_closed >= CAP);
	assert_true(conns_peak <= CAP);
	/* nng closes its ends on its own threads: wait for it. */
	assert_true(TT_WAIT_FOR(count_fds() <= fds0, TT_WAIT_MS));
	fds1 = count_fds();
	print_message("descriptors %d before, %d after %d connections; %" PRIu64
	              " refused, %" PRIu64 " closed as idle\n",
	    fds0, fds1, ROUNDS * PER + CAP, st.conns_refused,
	    st.conns_idle_closed);
	assert_true(fds1 <= fds0);
	fx_stop(fx);
}

/* The node's options reach its endpoint, and its counters the node's:
 * with client_max_conns 2, a third req client is refused (again at each
 * redial) while two are connected; with client_idle_ms short, a quiet
 * one is closed. */
static void test_node_client_conns(void **state)
{
	struct fx *fx = *state;
	tr_node_opts o;
	tr_node *node;
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	char url[340];
	nng_socket s[3];

	fx_runtime(fx);
	snprintf(url, sizeof(url), "ipc://%s/node-client.ipc", fx->dir);
	tr_node_opts_init(&o);
	o.name = NODE;
	o.cookie = COOKIE;
	o.listen = (const char *const[]){"tcp://127.0.0.1:0", NULL};
	o.client_url = url;
	o.client_max_conns = 2;
	o.client_idle_ms = 300;
	assert_rc(tr_node_start(&node, fx->rt, &o), TR_OK);
	for (int i = 0; i < 3; i++)
		s[i] = req_open_bg(url);
	assert_true(TT_WAIT_FOR(tr_node_stats_get(&st, node) == TR_OK &&
	                            st.client_conns_refused >= 2,
	    TT_WAIT_MS));
	assert_true(st.client_conns <= 2);
	for (int i = 0; i < 3; i++)
		nng_close(s[i]);
	assert_true(TT_WAIT_FOR(
	    tr_node_stats_get(&st, node) == TR_OK && st.client_conns == 0,
	    TT_WAIT_MS));
	/* A quiet one is closed after client_idle_ms. */
	s[0] = req_open_bg(url);
	assert_true(TT_WAIT_FOR(tr_node_stats_get(&st, node) == TR_OK &&
	                            st.client_conns_idle_closed >= 1,
	    TT_WAIT_MS));
	nng_close(s[0]);
	tr_node_stop(node);
	fx_stop(fx);
}

/* ---- TLS ----------------------------------------------------------------- */

static int sh(const char *dir, const char *cmd)
{
	char buf[2048];

	snprintf(buf, sizeof(buf), "cd '%s' && (%s) >/dev/null 2>&1", dir, cmd);
	return system(buf);
}

/* A CA and a certificate for 127.0.0.1 signed by it. */
static bool make_certs(const char *dir)
{
	static const char *const cmds[] = {
	    "printf 'subjectAltName=DNS:localhost,DNS:127.0.0.1,"
	    "IP:127.0.0.1\\n' > san.ext",
	    "openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
	    "-subj /CN=troupe-test-ca -keyout ca.key -out ca.pem",
	    "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
	    "-keyout node.key -out node.csr && "
	    "openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key "
	    "-CAcreateserial -days 2 -extfile san.ext -out node.crt",
	    NULL};

	for (int i = 0; cmds[i] != NULL; i++)
		if (sh(dir, cmds[i]) != 0)
			return false;
	return true;
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *s;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* The PEM text of the fixture's certificate, key and CA. */
struct pems {
	char *cert, *key, *ca;
};

static struct pems tls_files(struct fx *fx)
{
	char path[400];
	struct pems p;

	assert_true(make_certs(fx->dir));
	snprintf(path, sizeof(path), "%s/node.crt", fx->dir);
	p.cert = slurp(path);
	snprintf(path, sizeof(path), "%s/node.key", fx->dir);
	p.key = slurp(path);
	snprintf(path, sizeof(path), "%s/ca.pem", fx->dir);
	p.ca = slurp(path);
	return p;
}

static void pems_free(struct pems *p)
{
	free(p->cert);
	free(p->key);
	free(p->ca);
}

/* A req socket dialling over TLS that checks the node's certificate
 * against `ca` (and its name, 127.0.0.1, taken from the URL). */
static nng_socket req_open_tls(const char *url, const char *ca)
{
	nng_tls_config *cfg;
	nng_dialer d;
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dialer_create(&d, s, url), 0);
	assert_int_equal(nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT), 0);
	assert_int_equal(nng_tls_config_ca_chain(cfg, ca, NULL), 0);
	assert_int_equal(
	    nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED), 0);
	assert_int_equal(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg), 0);
	nng_tls_config_free(cfg);
	assert_int_equal(nng_dialer_start(d, 0), 0);
	return s;
}

/* tls+tcp:// with the node's certificate: a client that checks it gets
 * its answers; a plain tcp client gets nothing from a TLS port. */
static void test_endpoint_tls(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for("tls+tcp://127.0.0.1:0");
	Troupe__Wire__ClientReply *rep;
	struct pems p;
	struct req r;
	char plain[340];
	nng_socket s;
	void *buf = NULL;
	size_t n;

	if (!have("openssl")) {
		skip();
	}
	p = tls_files(fx);
	o.tls_cert = p.cert;
	o.tls_key = p.key;
	fx_start_with(fx, &o);
	assert_non_null(strstr(tr__client_url(fx->client), "tls+tcp://"));
	s = req_open_tls(tr__client_url(fx->client), p.ca);
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	nng_close(s);

	snprintf(plain, sizeof(plain), "tcp://%s",
	    tr__client_url(fx->client) + strlen("tls+tcp://"));
	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 500), 0);
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 500), 0);
	assert_int_equal(nng_dial(s, plain, NULL, NNG_FLAG_NONBLOCK), 0);
	r = req_at(wall_ms());
	{
		size_t len;
		uint8_t *f = frame_of(&len, &r, COOKIE);

		/* The send times out (no pipe comes up), or the request
		 * is never answered. */
		if (nng_send(s, f, len, 0) == 0)
			assert_int_equal(nng_recv(s, &buf, &n, NNG_FLAG_ALLOC),
			    NNG_ETIMEDOUT);
		free(f);
	}
	nng_close(s);
	assert_int_equal(atomic_load(&echo_handled), 1);
	pems_free(&p);
	fx_stop(fx);
}

/* ---- the shell recipe of docs/client.md ---------------------------------- */

static bool have_tools(void)
{
	return have("protoc") && have("openssl") && have("nngcat") &&
	       have("timeout");
}

/* Appends the ```sh block that follows "<!-- recipe: NAME -->" in the
 * document to `out`, as it stands. */
static void append_block(FILE *out, const char *doc, const char *name)
{
	char marker[64];
	const char *p, *start, *end;

	snprintf(marker, sizeof(marker), "<!-- recipe: %s -->\n```sh\n", name);
	p = strstr(doc, marker);
	if (p == NULL)
		fail_msg("docs/client.md has no recipe block \"%s\"", name);
	start = p + strlen(marker);
	end = strstr(start, "```\n");
	assert_non_null(end);
	fwrite(start, 1, (size_t)(end - start), out);
}

/* Writes a script made of the named blocks, runs it in the fixture's
 * directory with URL, COOKIE, NODE, PROTO_DIR (and CA, if given) set,
 * bounded by `timeout`, and returns what it printed. */
static char *run_recipe(struct fx *fx, const char *cookie, const char *ca,
    const char *const *blocks)
{
	char path[600], cmd[2048], *doc = slurp(TT_CLIENT_DOC);
	char *outp = NULL;
	size_t outn = 0;
	FILE *fp, *out;
	char chunk[512];
	size_t n;

	snprintf(path, sizeof(path), "%s/recipe.sh", fx->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("set -eu\n", fp);
	for (size_t i = 0; blocks[i] != NULL; i++)
		append_block(fp, doc, blocks[i]);
	fclose(fp);
	free(doc);

	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && URL='%s' COOKIE='%s' NODE='%s' PROTO_DIR='%s' "
	    "CA='%s' timeout 60 bash ./recipe.sh 2>&1",
	    fx->dir, fx->url, cookie, NODE, TT_PROTO_DIR, ca != NULL ? ca : "");
	fp = popen(cmd, "r");
	assert_non_null(fp);
	out = open_memstream(&outp, &outn);
	assert_non_null(out);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, out);
	fclose(out);
	if (pclose(fp) != 0)
		fail_msg("the recipe failed:\n%s", outp);
	return outp;
}

static const char *const full[] = {
    "settings", "request", "encode", "key", "sign", "send", "decode", NULL};
static const char *const resend[] = {"settings", "send", "decode", NULL};
static const char *const full_tls[] = {
    "settings", "request", "encode", "key", "sign", "send-tls", "decode", NULL};

static void assert_contains(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

static void test_recipe(void **state)
{
	struct fx *fx = *state;
	char *out;

	if (!have_tools()) {
		skip();
	}
	fx_start(fx);

	out = run_recipe(fx, COOKIE, NULL, full);
	assert_contains(out, "type: 1\n");
	assert_contains(out, "payload: \"echo: hello\"\n");
	assert_null(strstr(out, "error:"));
	free(out);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* The same frame.bin sent again: a replay. */
	out = run_recipe(fx, COOKIE, NULL, resend);
	assert_contains(out, "error: -7\n");
	assert_contains(out, "replayed request");
	free(out);

	/* The whole recipe with a cookie the node does not have. */
	out = run_recipe(fx, "wrong cookie", NULL, full);
	assert_contains(out, "error: -1\n");
	assert_contains(out, "bad signature");
	free(out);

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);
	fx_stop(fx);
}

/* The README's copy of the recipe is the recipe: after its one line of
 * settings, the very blocks of docs/client.md from "request" to
 * "decode". */
static void test_readme_recipe(void **state)
{
	static const char *const blocks[] = {
	    "request", "encode", "key", "sign", "send", "decode", NULL};
	char *doc = slurp(TT_CLIENT_DOC), *readme = slurp(TT_README);
	char *want = NULL;
	size_t wantn = 0;
	const char *sec, *start, *end;
	FILE *out;

	(void)state;
	out = open_memstream(&want, &wantn);
	assert_non_null(out);
	for (size_t i = 0; blocks[i] != NULL; i++)
		append_block(out, doc, blocks[i]);
	fclose(out);
	sec = strstr(readme, "### Programs that are not nodes\n");
	assert_non_null(sec);
	start = strstr(sec, "```sh\nURL=");
	assert_non_null(start);
	start = strchr(start + strlen("```sh\n"), '\n') + 1;
	end = strstr(start, "```\n");
	assert_non_null(end);
	if ((size_t)(end - start) != wantn || memcmp(start, want, wantn) != 0)
		fail_msg("README.md's recipe differs from docs/client.md's:\n"
		         "%.*s\nwant:\n%s",
		    (int)(end - start), start, want);
	free(want);
	free(doc);
	free(readme);
}

/* The recipe over tls+tcp://, with nngcat checking the node's
 * certificate against the CA. */
static void test_recipe_tls(void **state)
{
	struct fx *fx = *state;
	tr__client_opts o = opts_for("tls+tcp://127.0.0.1:0");
	char ca[400], *out;
	struct pems p;

	if (!have_tools()) {
		skip();
	}
	p = tls_files(fx);
	o.tls_cert = p.cert;
	o.tls_key = p.key;
	fx_start_with(fx, &o);
	snprintf(fx->url, sizeof(fx->url), "%s", tr__client_url(fx->client));
	snprintf(ca, sizeof(ca), "%s/ca.pem", fx->dir);
	out = run_recipe(fx, COOKIE, ca, full_tls);
	assert_contains(out, "payload: \"echo: hello\"\n");
	assert_null(strstr(out, "error:"));
	free(out);
	pems_free(&p);
	fx_stop(fx);
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
	    cmocka_unit_test_setup_teardown(
	        test_endpoint, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_refusal_log, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_wrong_major, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_other_node, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_slow_calls, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_busy, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_stop_busy, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_start_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_raw_sp, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_too_large, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_conn_cap, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_idle, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_conn_fds, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_node_client_conns, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_tls, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_recipe, fx_setup, fx_teardown),
	    cmocka_unit_test(test_readme_recipe),
	    cmocka_unit_test_setup_teardown(
	        test_recipe_tls, fx_setup, fx_teardown),
	};

	tt_save_signals();
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
