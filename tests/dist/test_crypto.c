/*
 * The transport's crypto over mbed TLS: SHA-256 (the FIPS 180-4 examples),
 * HMAC-SHA256 (RFC 4231's test cases, incremental against one-shot), HKDF
 * (RFC 5869's test cases, keys by purpose), and a cross-check of all three
 * against openssl when it is installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto.h"
#include "troupe/troupe.h"

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

static void assert_digest(const uint8_t *got, size_t n, const char *want)
{
	char h[2 * TR__SHA256_LEN + 1];

	hex(h, got, n);
	assert_string_equal(h, want);
}

/* A fixed-seed generator, so that every run tests the same cases. */
static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- SHA-256 ------------------------------------------------------------- */

static void sha_str(const char *s, const char *want)
{
	uint8_t d[TR__SHA256_LEN];

	tr__sha256(d, s, strlen(s));
	assert_digest(d, sizeof(d), want);
}

static void test_sha256_examples(void **state)
{
	(void)state;
	/* FIPS 180-4 / NIST's SHA256 examples: one block, two blocks (the
	 * 448-bit message, whose padding needs a second block). */
	sha_str("abc", "ba7816bf8f01cfea414140de5dae2223"
	               "b00361a396177a9cb410ff61f20015ad");
	sha_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039"
	    "a33ce45964ff2167f6ecedd419db06c1");
	sha_str("", "e3b0c44298fc1c149afbf4c8996fb924"
	            "27ae41e4649b934ca495991b7852b855");
}

static void test_sha256_million_a(void **state)
{
	uint8_t d[TR__SHA256_LEN];
	char *a = malloc(1000000);

	(void)state;
	assert_non_null(a);
	memset(a, 'a', 1000000);
	tr__sha256(d, a, 1000000);
	assert_digest(d, sizeof(d),
	    "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	/* NULL with length 0 is the empty message. */
	tr__sha256(d, NULL, 0);
	assert_digest(d, sizeof(d),
	    "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
	free(a);
}

/* ---- HMAC (RFC 4231) ----------------------------------------------------- */

static void hmac_case(const uint8_t *key, size_t klen, const void *data,
    size_t len, const char *want, size_t outlen)
{
	uint8_t d[TR__SHA256_LEN];

	assert_int_equal(tr__hmac_sha256(d, key, klen, data, len), TR_OK);
	assert_digest(d, outlen, want);
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t k[131], data[50];
	static const char *t7 =
	    "This is a test using a larger than block-size key and a larger "
	    "than block-size data. The key needs to be hashed before being "
	    "used by the HMAC algorithm.";
	static const char *t6 =
	    "Test Using Larger Than Block-Size Key - Hash Key First";

	(void)state;
	/* 1 */
	memset(k, 0x0b, 20);
	hmac_case(k, 20, "Hi There", 8,
	    "b0344c61d8db38535ca8afceaf0bf12b"
	    "881dc200c9833da726e9376c2e32cff7",
	    32);
	/* 2: a key shorter than the output */
	hmac_case((const uint8_t *)"Jefe", 4, "what do ya want for nothing?",
	    28,
	    "5bdcc146bf60754e6a042426089575c7"
	    "5a003f089d2739839dec58b964ec3843",
	    32);
	/* 3 */
	memset(k, 0xaa, 20);
	memset(data, 0xdd, 50);
	hmac_case(k, 20, data, 50,
	    "773ea91e36800e46854db8ebd09181a7"
	    "2959098b3ef8c122d9635514ced565fe",
	    32);
	/* 4 */
	for (int i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(data, 0xcd, 50);
	hmac_case(k, 25, data, 50,
	    "82558a389a443c0ea4cc819899f2083a"
	    "85f0faa3e578f8077a2e3ff46729665b",
	    32);
	/* 5: the RFC gives the output truncated to 128 bits */
	memset(k, 0x0c, 20);
	hmac_case(k, 20, "Test With Truncation", 20,
	    "a3b6167473100ee06e0c796c2955552b", 16);
	/* 6: a key longer than a block is hashed first */
	memset(k, 0xaa, 131);
	hmac_case(k, 131, t6, strlen(t6),
	    "60e431591ee0b67f0d8a26aacbf5b77f"
	    "8e0bc6213728c5140546040f0ee37f54",
	    32);
	/* 7: long key and data longer than a block */
	hmac_case(k, 131, t7, strlen(t7),
	    "9b09ffa71b942fcb27635fbcd5b0e944"
	    "bfdc63644f0713938a7f51535c3a35e2",
	    32);
}

static void test_hmac_incremental(void **state)
{
	uint8_t key[200], data[1000], one[32], inc[32];

	(void)state;
	for (int round = 0; round < 2000; round++) {
		size_t klen = (size_t)(next() % sizeof(key));
		size_t len = (size_t)(next() % sizeof(data));
		tr__hmac h;

		for (size_t i = 0; i < klen; i++)
			key[i] = (uint8_t)next();
		for (size_t i = 0; i < len; i++)
			data[i] = (uint8_t)next();
		assert_int_equal(
		    tr__hmac_sha256(one, key, klen, data, len), TR_OK);

		assert_int_equal(tr__hmac_init(&h, key, klen), TR_OK);
		for (size_t off = 0; off <= len;) {
			/* Pieces of 0 bytes included: they must be no-ops. */
			size_t n = (size_t)(next() % 130);

			if (n > len - off)
				n = len - off;
			tr__hmac_update(&h, data + off, n);
			off += n;
			if (off == len && n == 0)
				break;
		}
		assert_int_equal(tr__hmac_final(&h, inc), TR_OK);
		assert_memory_equal(one, inc, 32);
		/* fini after final is harmless (the state is gone). */
		tr__hmac_fini(&h);
	}
}

/* A context dropped half way (an error path) frees its state: with the
 * address sanitizer this test fails if it leaks. A NULL key of length 0
 * is the empty key. */
static void test_hmac_fini(void **state)
{
	uint8_t a[32], b[32];
	tr__hmac h;

	(void)state;
	for (int i = 0; i < 100; i++) {
		assert_int_equal(tr__hmac_init(&h, "key", 3), TR_OK);
		tr__hmac_update(&h, "data", 4);
		tr__hmac_fini(&h);
		tr__hmac_fini(&h);
	}
	assert_int_equal(tr__hmac_sha256(a, NULL, 0, "x", 1), TR_OK);
	assert_int_equal(tr__hmac_sha256(b, "", 0, "x", 1), TR_OK);
	assert_memory_equal(a, b, 32);
	assert_int_equal(tr__hmac_init(&h, NULL, 0), TR_OK);
	tr__hmac_update(&h, NULL, 0);
	tr__hmac_update(&h, "x", 1);
	assert_int_equal(tr__hmac_final(&h, b), TR_OK);
	assert_memory_equal(a, b, 32);
}

/* ---- HKDF (RFC 5869) ----------------------------------------------------- */

static void unhex(uint8_t *out, const char *h)
{
	for (size_t i = 0; h[2 * i] != '\0'; i++) {
		unsigned v;

		assert_int_equal(sscanf(h + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void hkdf_case(const char *ikm, const char *salt, const char *info,
    size_t olen, const char *want)
{
	uint8_t i[128], s[128], n[128], o[128];
	char got[2 * sizeof(o) + 1];

	unhex(i, ikm);
	unhex(s, salt);
	unhex(n, info);
	assert_int_equal(tr__hkdf(o, olen, s, strlen(salt) / 2, i,
	                     strlen(ikm) / 2, n, strlen(info) / 2),
	    TR_OK);
	hex(got, o, olen);
	assert_string_equal(got, want);
}

static void test_hkdf_rfc5869(void **state)
{
	uint8_t k[TR__KDF_LEN], ikm[22];
	char got[2 * TR__KDF_LEN + 1];

	(void)state;
	/* A.1: basic */
	hkdf_case("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
	    "000102030405060708090a0b0c", "f0f1f2f3f4f5f6f7f8f9", 42,
	    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
	    "34007208d5b887185865");
	/* A.2: longer inputs and outputs */
	hkdf_case("000102030405060708090a0b0c0d0e0f"
	          "101112131415161718191a1b1c1d1e1f"
	          "202122232425262728292a2b2c2d2e2f"
	          "303132333435363738393a3b3c3d3e3f"
	          "404142434445464748494a4b4c4d4e4f",
	    "606162636465666768696a6b6c6d6e6f"
	    "707172737475767778797a7b7c7d7e7f"
	    "808182838485868788898a8b8c8d8e8f"
	    "909192939495969798999a9b9c9d9e9f"
	    "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
	    "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	    "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	    "e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	    "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
	    82,
	    "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
	    "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
	    "cc30c58179ec3e87c14c01d5c1f3434f1d87");
	/* A.3: no salt, no info */
	hkdf_case("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "", 42,
	    "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
	    "9d201395faa4b61a96c8");
	/* tr__kdf is A.3's construction (empty salt) with a label as info
	 * and 32 bytes out: with an empty label it gives A.3's first 32
	 * bytes (HKDF's output is a prefix of any longer one). */
	memset(ikm, 0x0b, sizeof(ikm));
	assert_int_equal(tr__kdf(k, ikm, sizeof(ikm), ""), TR_OK);
	hex(got, k, sizeof(k));
	assert_string_equal(got, "8da4e775a563c18f715f802a063c5a31"
	                         "b8a11f5c5ee1879ec3454e5f3c738d2d");

	/* Bad arguments. */
	assert_int_equal(
	    tr__hkdf(NULL, 32, NULL, 0, ikm, 1, NULL, 0), TR_EINVAL);
	assert_int_equal(tr__hkdf(k, 0, NULL, 0, ikm, 1, NULL, 0), TR_EINVAL);
	assert_int_equal(
	    tr__hkdf(k, 255 * 32 + 1, NULL, 0, ikm, 1, NULL, 0), TR_EINVAL);
	assert_int_equal(tr__hkdf(k, 32, NULL, 1, ikm, 1, NULL, 0), TR_EINVAL);
	assert_int_equal(tr__hkdf(k, 32, NULL, 0, NULL, 1, NULL, 0), TR_EINVAL);
	assert_int_equal(tr__hkdf(k, 32, NULL, 0, ikm, 1, NULL, 1), TR_EINVAL);
}

/* One key per purpose: the node and client keys differ from each other
 * and from the cookie, depend on every byte of the cookie, and are the
 * same on every call. */
static void test_kdf_purposes(void **state)
{
	static const char cookie[] = "change-me";
	uint8_t node[TR__KDF_LEN], client[TR__KDF_LEN], again[TR__KDF_LEN];
	uint8_t zero[TR__KDF_LEN];
	char other[sizeof(cookie)];

	(void)state;
	assert_string_not_equal(TR__KDF_NODE, TR__KDF_CLIENT);
	assert_int_equal(
	    tr__kdf(node, cookie, strlen(cookie), TR__KDF_NODE), TR_OK);
	assert_int_equal(
	    tr__kdf(client, cookie, strlen(cookie), TR__KDF_CLIENT), TR_OK);
	assert_memory_not_equal(node, client, TR__KDF_LEN);
	assert_int_equal(
	    tr__kdf(again, cookie, strlen(cookie), TR__KDF_CLIENT), TR_OK);
	assert_memory_equal(client, again, TR__KDF_LEN);
	memset(zero, 0, sizeof(zero));
	assert_memory_not_equal(client, zero, TR__KDF_LEN);
	for (size_t i = 0; i < strlen(cookie); i++) {
		memcpy(other, cookie, sizeof(cookie));
		other[i] ^= 1;
		assert_int_equal(
		    tr__kdf(again, other, strlen(other), TR__KDF_CLIENT),
		    TR_OK);
		assert_memory_not_equal(client, again, TR__KDF_LEN);
	}
	/* A cookie one byte shorter is another cookie too. */
	assert_int_equal(
	    tr__kdf(again, cookie, strlen(cookie) - 1, TR__KDF_CLIENT), TR_OK);
	assert_memory_not_equal(client, again, TR__KDF_LEN);

	/* Refusals leave unpredictable bytes, never zeros or a key. */
	memset(again, 0, sizeof(again));
	assert_int_equal(tr__kdf(again, cookie, 0, TR__KDF_CLIENT), TR_EINVAL);
	assert_memory_not_equal(again, zero, TR__KDF_LEN);
	assert_int_equal(tr__kdf(again, NULL, 3, TR__KDF_CLIENT), TR_EINVAL);
	assert_int_equal(
	    tr__kdf(again, cookie, strlen(cookie), NULL), TR_EINVAL);
	assert_memory_not_equal(again, client, TR__KDF_LEN);
	assert_int_equal(
	    tr__kdf(NULL, cookie, strlen(cookie), TR__KDF_NODE), TR_EINVAL);
}

static void test_ct_equal(void **state)
{
	uint8_t a[64], b[64];

	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)i;
	assert_true(tr__ct_equal(a, b, sizeof(a)));
	assert_true(tr__ct_equal(a, b, 0));
	for (size_t i = 0; i < sizeof(a); i++) {
		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			assert_false(tr__ct_equal(a, b, sizeof(a)));
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_true(tr__ct_equal(a, b, sizeof(a)));
	/* Lengths that are not a multiple of a word. */
	for (size_t n = 1; n < 20; n++) {
		assert_true(tr__ct_equal(a, b, n));
		b[n - 1] ^= 0x80;
		assert_false(tr__ct_equal(a, b, n));
		b[n - 1] ^= 0x80;
	}
}

static void test_wipe(void **state)
{
	uint8_t k[40], zero[40];

	(void)state;
	memset(k, 0xa5, sizeof(k));
	memset(zero, 0, sizeof(zero));
	tr__wipe(k, sizeof(k));
	assert_memory_equal(k, zero, sizeof(k));
	tr__wipe(NULL, 0);
}

static void test_random(void **state)
{
	uint8_t a[300], b[300], zero[300];

	(void)state;
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(tr__random(a, sizeof(a)), TR_OK);
	assert_int_equal(tr__random(b, sizeof(b)), TR_OK);
	assert_int_equal(tr__random(NULL, 0), TR_OK);
	/* 2400 random bits are never all zero, nor twice the same. */
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
}

/* ---- openssl cross-check ------------------------------------------------- */

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

/* Runs `cmd` and returns the hex digest it printed ("...= <hex>"). */
static void run_digest(char *out, size_t cap, const char *cmd)
{
	char line[512];
	FILE *p = popen(cmd, "r");
	char *eq;

	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	line[strcspn(line, "\r\n")] = '\0';
	eq = strrchr(line, ' ');
	assert_non_null(eq);
	snprintf(out, cap, "%s", eq + 1);
}

/* The scratch file of test_openssl, removed by the teardown even when an
 * assertion fails half way. */
static char scratch[512];

static int remove_scratch(void **state)
{
	(void)state;
	if (scratch[0] != '\0')
		unlink(scratch);
	scratch[0] = '\0';
	return 0;
}

static void test_openssl(void **state)
{
	static const size_t sizes[] = {
	    0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 65537};
	static const size_t klens[] = {1, 5, 32, 63, 64, 65, 100};
	const char *tmp = getenv("TMPDIR");
	char cmd[1024], want[128], got[2 * TR__SHA256_LEN + 1];
	char key[101];
	uint8_t *data, d[TR__SHA256_LEN];
	int fd;

	(void)state;
	if (!have("openssl")) {
		skip();
	}
	snprintf(scratch, sizeof(scratch), "%s/tr_crypto_XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	fd = mkstemp(scratch);
	assert_true(fd >= 0);
	data = malloc(65537);
	assert_non_null(data);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		size_t klen = klens[i % (sizeof(klens) / sizeof(klens[0]))];

		for (size_t j = 0; j < n; j++)
			data[j] = (uint8_t)next();
		assert_int_equal(ftruncate(fd, 0), 0);
		assert_int_equal(pwrite(fd, data, n, 0), (ssize_t)n);

		snprintf(
		    cmd, sizeof(cmd), "openssl dgst -sha256 < '%s'", scratch);
		run_digest(want, sizeof(want), cmd);
		tr__sha256(d, data, n);
		hex(got, d, sizeof(d));
		assert_string_equal(got, want);

		/* Printable keys only, so that they pass through the shell
		 * unquoted; lengths around the block size. */
		for (size_t j = 0; j < klen; j++)
			key[j] =
			    "abcdefghijklmnopqrstuvwxyz0123456789"[next() % 36];
		key[klen] = '\0';
		snprintf(cmd, sizeof(cmd),
		    "openssl dgst -sha256 -hmac '%s' < '%s'", key, scratch);
		run_digest(want, sizeof(want), cmd);
		assert_int_equal(tr__hmac_sha256(d, key, klen, data, n), TR_OK);
		hex(got, d, sizeof(d));
		assert_string_equal(got, want);

		/* HKDF with the client label, as docs/client.md derives the
		 * client key: openssl prints the key as hex pairs separated
		 * by colons. */
		snprintf(cmd, sizeof(cmd),
		    "openssl kdf -keylen 32 -kdfopt digest:SHA256 "
		    "-kdfopt key:'%s' -kdfopt info:'%s' HKDF | tr -d ':' | "
		    "tr A-F a-f | sed 's/^/= /'",
		    key, TR__KDF_CLIENT);
		run_digest(want, sizeof(want), cmd);
		assert_int_equal(tr__kdf(d, key, klen, TR__KDF_CLIENT), TR_OK);
		hex(got, d, sizeof(d));
		assert_string_equal(got, want);
	}
	free(data);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sha256_examples),
	    cmocka_unit_test(test_sha256_million_a),
	    cmocka_unit_test(test_hmac_rfc4231),
	    cmocka_unit_test(test_hmac_incremental),
	    cmocka_unit_test(test_hmac_fini),
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_kdf_purposes),
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_wipe),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test_teardown(test_openssl, remove_scratch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
