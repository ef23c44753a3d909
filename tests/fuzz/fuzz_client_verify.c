/*
 * Fuzzes the verification of client requests (tr__client_verify), the
 * code that reads what anyone on the network sends to a client endpoint.
 *
 * The first byte of an input picks how the rest becomes a frame:
 *   0  the bytes are the frame, as an attacker without the cookie sends
 *      it (only the length and signature checks can be reached);
 *   1  the bytes are a body, signed here with the client key, so that the
 *      decoder and every check after the signature are reached;
 *   2  the same, signed with the raw cookie (a client of minor 0);
 *   3  the bytes fill the fields of a ClientRequest, which is encoded and
 *      signed, so that well-formed requests near every boundary (window,
 *      node name, nonce length, types) are tried without the fuzzer having
 *      to discover protobuf's encoding first.
 * Each frame is verified twice against a fresh replay cache, and the
 * results are checked against the contract: a verdict matches its return
 * code, a request is returned exactly on success, and an accepted request
 * is refused as a replay the second time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "codec.h"
#include "crypto.h"

#define COOKIE "fuzz cookie"
#define NODE "alpha"
#define NOW 1700000000000u
#define WINDOW 30000u

static void check_failed(const char *what)
{
	fprintf(stderr, "fuzz_client_verify: %s\n", what);
	abort();
}

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			check_failed(#cond);                                   \
	} while (0)

/* Takes `n` bytes from the input (zeros once it runs out). */
static void take(void *out, size_t n, const uint8_t **p, size_t *left)
{
	size_t k = n < *left ? n : *left;

	memset(out, 0, n);
	memcpy(out, *p, k);
	*p += k;
	*left -= k;
}

/* Mode 3: a request built from the input's bytes. */
static uint8_t *structured(size_t *blen, const uint8_t *p, size_t left)
{
	static const char *const nodes[] = {NODE, "", "beta", "alph", "alphaa"};
	static const char *const names[] = {"echo", "", "x"};
	Troupe__Wire__ClientRequest q = TROUPE__WIRE__CLIENT_REQUEST__INIT;
	uint8_t sel[4], nonce[40];
	int32_t skew;
	uint8_t *body = NULL;

	take(sel, sizeof(sel), &p, &left);
	take(&skew, sizeof(skew), &p, &left);
	take(&q.type, sizeof(q.type), &p, &left);
	take(&q.timeout_ms, sizeof(q.timeout_ms), &p, &left);
	take(nonce, sizeof(nonce), &p, &left);
	q.major = sel[0] & 0x80 ? sel[0] & 3 : 1;
	q.minor = sel[1] & 0x80 ? sel[1] & 3 : 1;
	q.node = (char *)nodes[sel[2] % 5];
	q.to_name = (char *)names[sel[3] % 3];
	/* Skews around the window's edges as often as anywhere else. */
	q.timestamp_ms = NOW + (int64_t)(skew % (int32_t)(4 * WINDOW));
	q.nonce.data = nonce;
	q.nonce.len = (size_t)(sel[1] & 0x3f) % (sizeof(nonce) + 1);
	q.payload.data = (uint8_t *)p;
	q.payload.len = left;
	if (tr__client_request_encode(&body, blen, &q) != TR_OK)
		return NULL;
	return body;
}

static void verify_twice(
    const tr__client_verifier *v, const uint8_t *frame, size_t len)
{
	Troupe__Wire__ClientRequest *out;
	tr__client_verdict vd;
	int rv;

	for (int round = 0; round < 2; round++) {
		out = (void *)1;
		memset(&vd, 0x5a, sizeof(vd));
		rv = tr__client_verify(&out, &vd, v, frame, len, NOW);
		CHECK((unsigned)vd.cause < TR__CC_COUNT);
		CHECK(vd.cause != TR__CC_BUSY);
		CHECK(memchr(vd.why, '\0', sizeof(vd.why)) != NULL);
		if (rv == TR_OK) {
			CHECK(round == 0); /* the second time is a replay */
			CHECK(vd.cause == TR__CC_OK && vd.why[0] == '\0');
			CHECK(out != NULL && out->node != NULL &&
			      strcmp(out->node, NODE) == 0);
			CHECK(out->nonce.len >= TR__CLIENT_NONCE_MIN);
			CHECK(!tr_msg_type_local(out->type));
			tr__client_request_free(out);
		} else {
			CHECK(out == NULL);
			CHECK(vd.cause != TR__CC_OK && vd.why[0] != '\0');
			CHECK(rv == TR_EINVAL || rv == TR_ENOTSUP ||
			      rv == TR_ETIMEDOUT || rv == TR_EEXIST ||
			      rv == TR_EAGAIN);
			if (round == 1 && vd.cause == TR__CC_REPLAY)
				return;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t key[TR__KDF_LEN];
	static int have_key;
	tr__nonce_cache *cache;
	tr__client_verifier v;
	uint8_t *body = NULL, *frame = NULL;
	size_t blen, flen;
	int mode;

	if (size == 0)
		return 0;
	if (!have_key) {
		if (tr__client_key(key, COOKIE) != TR_OK)
			check_failed("tr__client_key");
		have_key = 1;
	}
	mode = data[0] & 3;
	data++;
	size--;
	/* A fresh cache per input keeps runs reproducible. */
	if (tr__nonce_cache_alloc(&cache, 16) != TR_OK)
		return 0;
	if (tr__client_verifier_init(&v, COOKIE, NODE, WINDOW, cache) !=
	    TR_OK) {
		tr__nonce_cache_free(cache);
		return 0;
	}
	switch (mode) {
	case 0:
		verify_twice(&v, data, size);
		break;
	case 1:
	case 2:
		if (mode == 1)
			CHECK(tr__client_sign(&frame, &flen, key, sizeof(key),
			          data, size) == TR_OK);
		else
			CHECK(tr__client_sign(&frame, &flen, COOKIE,
			          strlen(COOKIE), data, size) == TR_OK);
		verify_twice(&v, frame, flen);
		break;
	default:
		body = structured(&blen, data, size);
		if (body != NULL && tr__client_sign(&frame, &flen, key,
		                        sizeof(key), body, blen) == TR_OK)
			verify_twice(&v, frame, flen);
		break;
	}
	free(frame);
	free(body);
	tr__client_verifier_fini(&v);
	tr__nonce_cache_free(cache);
	return 0;
}
