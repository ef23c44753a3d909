/*
 * SHA-256 and HMAC-SHA256: the FIPS 180-4 examples, RFC 4231's test cases,
 * incremental against one-shot, and a cross-check against openssl when it
 * is installed.
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
	tr__sha256_ctx s;

	(void)state;
	assert_non_null(a);
	memset(a, 'a', 1000000);
	tr__sha256(d, a, 1000000);
	assert_digest(d, sizeof(d),
	    "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	/* Fed in odd-sized pieces, crossing block boundaries everywhere. */
	tr__sha256_init(&s);
	for (size_t off = 0; off < 1000000;) {
		size_t n = 1 + (size_t)(next() % 200);

		if (n > 1000000 - off)
			n = 1000000 - off;
		tr__sha256_update(&s, a + off, n);
		off += n;
	}
	tr__sha256_final(&s, d);
	assert_digest(d, sizeof(d),
	    "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

/* ---- HMAC (RFC 4231) ----------------------------------------------------- */

static void hmac_case(const uint8_t *key, size_t klen, const void *data,
    size_t len, const char *want, size_t outlen)
{
	uint8_t d[TR__SHA256_LEN];

	tr__hmac_sha256(d, key, klen, data, len);
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
		tr__hmac_sha256(one, key, klen, data, len);

		tr__hmac_init(&h, key, klen);
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
		tr__hmac_final(&h, inc);
		assert_memory_equal(one, inc, 32);
	}
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
		tr__hmac_sha256(d, key, klen, data, n);
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
	    cmocka_unit_test(test_ct_equal),
	    cmocka_unit_test(test_random),
	    cmocka_unit_test_teardown(test_openssl, remove_scratch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
