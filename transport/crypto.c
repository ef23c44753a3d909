/*
 * SHA-256 after FIPS 180-4 (sections 4.1.2, 4.2.2, 5.1.1, 5.3.3, 6.2) and
 * HMAC after RFC 2104. Written for clarity first: the transport MACs a few
 * hundred bytes per handshake or client request, never bulk data.
 */
#include "crypto.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "troupe/troupe.h"

/* FIPS 180-4 4.2.2: the first 32 bits of the fractional parts of the cube
 * roots of the first 64 primes. */
static const uint32_t K[64] = {
    0x428a2f98,
    0x71374491,
    0xb5c0fbcf,
    0xe9b5dba5,
    0x3956c25b,
    0x59f111f1,
    0x923f82a4,
    0xab1c5ed5,
    0xd807aa98,
    0x12835b01,
    0x243185be,
    0x550c7dc3,
    0x72be5d74,
    0x80deb1fe,
    0x9bdc06a7,
    0xc19bf174,
    0xe49b69c1,
    0xefbe4786,
    0x0fc19dc6,
    0x240ca1cc,
    0x2de92c6f,
    0x4a7484aa,
    0x5cb0a9dc,
    0x76f988da,
    0x983e5152,
    0xa831c66d,
    0xb00327c8,
    0xbf597fc7,
    0xc6e00bf3,
    0xd5a79147,
    0x06ca6351,
    0x14292967,
    0x27b70a85,
    0x2e1b2138,
    0x4d2c6dfc,
    0x53380d13,
    0x650a7354,
    0x766a0abb,
    0x81c2c92e,
    0x92722c85,
    0xa2bfe8a1,
    0xa81a664b,
    0xc24b8b70,
    0xc76c51a3,
    0xd192e819,
    0xd6990624,
    0xf40e3585,
    0x106aa070,
    0x19a4c116,
    0x1e376c08,
    0x2748774c,
    0x34b0bcb5,
    0x391c0cb3,
    0x4ed8aa4a,
    0x5b9cca4f,
    0x682e6ff3,
    0x748f82ee,
    0x78a5636f,
    0x84c87814,
    0x8cc70208,
    0x90befffa,
    0xa4506ceb,
    0xbef9a3f7,
    0xc67178f2,
};

/* FIPS 180-4 5.3.3: the first 32 bits of the fractional parts of the
 * square roots of the first 8 primes. */
static const uint32_t H0[8] = {
    0x6a09e667,
    0xbb67ae85,
    0x3c6ef372,
    0xa54ff53a,
    0x510e527f,
    0x9b05688c,
    0x1f83d9ab,
    0x5be0cd19,
};

static inline uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

/* The six logical functions of FIPS 180-4 4.1.2. */
static inline uint32_t ch(uint32_t x, uint32_t y, uint32_t z)
{
	return (x & y) ^ (~x & z);
}

static inline uint32_t maj(uint32_t x, uint32_t y, uint32_t z)
{
	return (x & y) ^ (x & z) ^ (y & z);
}

static inline uint32_t bsig0(uint32_t x)
{
	return rotr(x, 2) ^ rotr(x, 13) ^ rotr(x, 22);
}

static inline uint32_t bsig1(uint32_t x)
{
	return rotr(x, 6) ^ rotr(x, 11) ^ rotr(x, 25);
}

static inline uint32_t ssig0(uint32_t x)
{
	return rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3);
}

static inline uint32_t ssig1(uint32_t x)
{
	return rotr(x, 17) ^ rotr(x, 19) ^ (x >> 10);
}

static inline uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* FIPS 180-4 6.2.2: one 512-bit block into the hash state. */
static void compress(uint32_t h[8], const uint8_t block[64])
{
	uint32_t w[64];
	uint32_t a, b, c, d, e, f, g, hh, t1, t2;

	for (int t = 0; t < 16; t++)
		w[t] = load_be32(block + 4 * t);
	for (int t = 16; t < 64; t++)
		w[t] =
		    ssig1(w[t - 2]) + w[t - 7] + ssig0(w[t - 15]) + w[t - 16];

	a = h[0];
	b = h[1];
	c = h[2];
	d = h[3];
	e = h[4];
	f = h[5];
	g = h[6];
	hh = h[7];
	for (int t = 0; t < 64; t++) {
		t1 = hh + bsig1(e) + ch(e, f, g) + K[t] + w[t];
		t2 = bsig0(a) + maj(a, b, c);
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
	/* The schedule holds words derived from the message, which may be
	 * key material (HMAC pads). */
	tr__wipe(w, sizeof(w));
}

void tr__sha256_init(tr__sha256_ctx *s)
{
	memcpy(s->h, H0, sizeof(H0));
	s->nbytes = 0;
	s->nbuf = 0;
}

void tr__sha256_update(tr__sha256_ctx *s, const void *data, size_t len)
{
	const uint8_t *p = data;

	s->nbytes += len;
	if (s->nbuf > 0) {
		size_t take = TR__SHA256_BLOCK - s->nbuf;

		if (take > len)
			take = len;
		memcpy(s->buf + s->nbuf, p, take);
		s->nbuf += take;
		p += take;
		len -= take;
		if (s->nbuf < TR__SHA256_BLOCK)
			return;
		compress(s->h, s->buf);
		s->nbuf = 0;
	}
	/* Whole blocks straight from the caller's buffer, without a copy. */
	while (len >= TR__SHA256_BLOCK) {
		compress(s->h, p);
		p += TR__SHA256_BLOCK;
		len -= TR__SHA256_BLOCK;
	}
	if (len > 0) {
		memcpy(s->buf, p, len);
		s->nbuf = len;
	}
}

void tr__sha256_final(tr__sha256_ctx *s, uint8_t out[TR__SHA256_LEN])
{
	/* FIPS 180-4 5.1.1: a 1 bit, zeros up to 448 mod 512 bits, then the
	 * message length in bits as a 64-bit big-endian number. */
	uint64_t bits = s->nbytes * 8;

	s->buf[s->nbuf++] = 0x80;
	if (s->nbuf > TR__SHA256_BLOCK - 8) {
		memset(s->buf + s->nbuf, 0, TR__SHA256_BLOCK - s->nbuf);
		compress(s->h, s->buf);
		s->nbuf = 0;
	}
	memset(s->buf + s->nbuf, 0, TR__SHA256_BLOCK - 8 - s->nbuf);
	store_be32(s->buf + 56, (uint32_t)(bits >> 32));
	store_be32(s->buf + 60, (uint32_t)bits);
	compress(s->h, s->buf);
	for (int i = 0; i < 8; i++)
		store_be32(out + 4 * i, s->h[i]);
	tr__wipe(s, sizeof(*s));
}

void tr__sha256(uint8_t out[TR__SHA256_LEN], const void *data, size_t len)
{
	tr__sha256_ctx s;

	tr__sha256_init(&s);
	tr__sha256_update(&s, data, len);
	tr__sha256_final(&s, out);
}

void tr__hmac_init(tr__hmac *h, const void *key, size_t klen)
{
	/* RFC 2104: K is the key zero-padded to a block, or its hash when it
	 * is longer than a block; inner = H(K ^ ipad | text), outer =
	 * H(K ^ opad | inner). Both pads are absorbed now, so that update and
	 * final only ever touch the message. */
	uint8_t k[TR__SHA256_BLOCK];
	uint8_t pad[TR__SHA256_BLOCK];

	memset(k, 0, sizeof(k));
	if (klen > TR__SHA256_BLOCK)
		tr__sha256(k, key, klen);
	else if (klen > 0)
		memcpy(k, key, klen);

	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x36;
	tr__sha256_init(&h->inner);
	tr__sha256_update(&h->inner, pad, sizeof(pad));

	for (size_t i = 0; i < sizeof(pad); i++)
		pad[i] = k[i] ^ 0x5c;
	tr__sha256_init(&h->outer);
	tr__sha256_update(&h->outer, pad, sizeof(pad));

	tr__wipe(k, sizeof(k));
	tr__wipe(pad, sizeof(pad));
}

void tr__hmac_update(tr__hmac *h, const void *data, size_t len)
{
	tr__sha256_update(&h->inner, data, len);
}

void tr__hmac_final(tr__hmac *h, uint8_t out[TR__SHA256_LEN])
{
	uint8_t in[TR__SHA256_LEN];

	tr__sha256_final(&h->inner, in);
	tr__sha256_update(&h->outer, in, sizeof(in));
	tr__sha256_final(&h->outer, out);
	tr__wipe(in, sizeof(in));
}

void tr__hmac_sha256(uint8_t out[TR__SHA256_LEN], const void *key, size_t klen,
    const void *data, size_t len)
{
	tr__hmac h;

	tr__hmac_init(&h, key, klen);
	tr__hmac_update(&h, data, len);
	tr__hmac_final(&h, out);
}

bool tr__ct_equal(const void *a, const void *b, size_t n)
{
	/* Volatile reads keep the compiler from turning the loop into an
	 * early-exit memcmp; every byte is looked at whatever differs. */
	const volatile uint8_t *x = a;
	const volatile uint8_t *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

int tr__random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t got = getrandom(p, n, 0);

		if (got < 0) {
			/* A signal before the first byte: try again. Any
			 * other failure (ENOSYS on an old kernel, EFAULT)
			 * will not go away by retrying at once. */
			if (errno == EINTR)
				continue;
			return TR_EAGAIN;
		}
		/* Reads above 256 bytes may be cut short by a signal. */
		p += got;
		n -= (size_t)got;
	}
	return TR_OK;
}

void tr__wipe(void *p, size_t n)
{
	/* A memset through a volatile pointer: the stores must happen even
	 * though the memory is dead afterwards. */
	volatile uint8_t *v = p;

	while (n-- > 0)
		*v++ = 0;
}
