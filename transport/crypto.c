/*
 * The transport's crypto, as thin wrappers over mbed TLS: see crypto.h for
 * the contracts and the choices (getrandom, the HKDF salt).
 */
#include "crypto.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <mbedtls/constant_time.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include "troupe/troupe.h"

void tr__sha256(uint8_t out[TR__SHA256_LEN], const void *data, size_t len)
{
	static const uint8_t empty[1];

	/* mbedtls_sha256_ret fails only for bad arguments (is224 not 0 or
	 * 1, or NULL with a length); a NULL pointer of length 0 is given a
	 * real one to be on the safe side of that check. */
	(void)mbedtls_sha256_ret(
	    data != NULL ? data : empty, data != NULL ? len : 0, out, 0);
}

/* What a MAC or a key is replaced with when mbed TLS could not compute it:
 * bytes nobody can predict, so that a caller comparing them with a value
 * a peer sent never finds a match. The kernel's generator first; should
 * even that fail, a hash of a counter, the clock and an address, which
 * needs no allocation and no system call that can fail. */
static void unpredictable(uint8_t out[TR__SHA256_LEN])
{
	static _Atomic uint64_t counter;
	struct {
		uint64_t n;
		struct timespec mono, real;
		const void *where;
	} seed;

	if (tr__random(out, TR__SHA256_LEN) == TR_OK)
		return;
	memset(&seed, 0, sizeof(seed));
	seed.n = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
	clock_gettime(CLOCK_MONOTONIC, &seed.mono);
	clock_gettime(CLOCK_REALTIME, &seed.real);
	seed.where = out;
	tr__sha256(out, &seed, sizeof(seed));
}

int tr__hmac_init(tr__hmac *h, const void *key, size_t klen)
{
	static const uint8_t empty[1];
	const mbedtls_md_info_t *md =
	    mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

	mbedtls_md_init(&h->md);
	h->failed = false;
	if (md == NULL || mbedtls_md_setup(&h->md, md, 1) != 0 ||
	    mbedtls_md_hmac_starts(&h->md, key != NULL ? key : empty,
	        key != NULL ? klen : 0) != 0) {
		mbedtls_md_free(&h->md);
		h->failed = true;
		return TR_ENOMEM;
	}
	return TR_OK;
}

void tr__hmac_update(tr__hmac *h, const void *data, size_t len)
{
	if (h->failed || len == 0 || data == NULL)
		return;
	(void)mbedtls_md_hmac_update(&h->md, data, len);
}

int tr__hmac_final(tr__hmac *h, uint8_t out[TR__SHA256_LEN])
{
	int rv = TR_OK;

	if (h->failed || mbedtls_md_hmac_finish(&h->md, out) != 0) {
		unpredictable(out);
		rv = TR_ENOMEM;
	}
	tr__hmac_fini(h);
	return rv;
}

void tr__hmac_fini(tr__hmac *h)
{
	/* mbedtls_md_free zeroizes and frees the inner and outer states
	 * (which hold the padded key), then zeroizes the context itself, so
	 * a second call finds no state and does nothing. */
	mbedtls_md_free(&h->md);
}

int tr__hmac_sha256(uint8_t out[TR__SHA256_LEN], const void *key, size_t klen,
    const void *data, size_t len)
{
	tr__hmac h;

	(void)tr__hmac_init(&h, key, klen);
	tr__hmac_update(&h, data, len);
	return tr__hmac_final(&h, out);
}

int tr__hkdf(uint8_t *out, size_t olen, const void *salt, size_t slen,
    const void *ikm, size_t ilen, const void *info, size_t infolen)
{
	static const uint8_t empty[1];
	const mbedtls_md_info_t *md =
	    mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);

	if (out == NULL || olen == 0 || olen > 255 * TR__SHA256_LEN ||
	    (salt == NULL && slen > 0) || (ikm == NULL && ilen > 0) ||
	    (info == NULL && infolen > 0))
		return TR_EINVAL;
	/* mbedtls_hkdf fails for bad arguments (excluded above) and when it
	 * cannot allocate its HMAC state. An empty salt makes it use HashLen
	 * zero bytes, as RFC 5869 section 2.2 says. */
	if (md == NULL ||
	    mbedtls_hkdf(md, slen > 0 ? salt : NULL, slen,
	        ikm != NULL ? ikm : empty, ilen, info != NULL ? info : empty,
	        infolen, out, olen) != 0)
		return TR_ENOMEM;
	return TR_OK;
}

int tr__kdf(
    uint8_t out[TR__KDF_LEN], const void *cookie, size_t len, const char *label)
{
	int rv;

	if (out == NULL)
		return TR_EINVAL;
	if (cookie == NULL || len == 0 || label == NULL) {
		unpredictable(out);
		return TR_EINVAL;
	}
	/* No salt: crypto.h says why. */
	rv = tr__hkdf(
	    out, TR__KDF_LEN, NULL, 0, cookie, len, label, strlen(label));
	if (rv != TR_OK)
		unpredictable(out);
	return rv;
}

bool tr__ct_equal(const void *a, const void *b, size_t n)
{
	return n == 0 || mbedtls_ct_memcmp(a, b, n) == 0;
}

int tr__random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return TR_EAGAIN;
		}
		p += got;
		n -= (size_t)got;
	}
	return TR_OK;
}

void tr__wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		mbedtls_platform_zeroize(p, n);
}
