/*
 * Client requests for the client endpoint's tests: building, signing and
 * verifying them (test_client_verify.c, test_client.c,
 * test_client_conns.c, test_client_tls.c).
 */
#ifndef TT_CLIENT_REQ_H
#define TT_CLIENT_REQ_H

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

static inline uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static inline uint64_t wall_ms(void)
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
static inline struct req req_at(uint64_t ts)
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

static inline uint8_t *body_of(size_t *blen, const struct req *r)
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
static inline uint8_t *frame_with(
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
static inline uint8_t *frame_of(size_t *len, const struct req *r, const char *cookie)
{
	uint8_t key[TR__KDF_LEN];

	assert_rc(tr__client_key(key, cookie), TR_OK);
	return frame_with(len, r, key, sizeof(key));
}

/* Encodes `r` and signs it the way clients of minor 0 did: with the raw
 * cookie. */
static inline uint8_t *frame_old(size_t *len, const struct req *r, const char *cookie)
{
	return frame_with(len, r, cookie, strlen(cookie));
}

/* A verifier for NODE and COOKIE over `cache`. */
static inline tr__client_verifier verifier(tr__nonce_cache *cache)
{
	tr__client_verifier v;

	assert_rc(
	    tr__client_verifier_init(&v, COOKIE, NODE, WINDOW, cache), TR_OK);
	return v;
}

/* Verifies the frame `f` at `now`; returns the result and checks the
 * verdict's cause, and that *out is set exactly on success. */
static inline int check_frame(const tr__client_verifier *v, uint8_t *f, size_t len,
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
static inline int check(const tr__client_verifier *v, const struct req *r,
    const char *cookie, uint64_t now, tr__client_cause want)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);

	return check_frame(v, f, len, now, want);
}


#endif
