/*
 * Hashing, message authentication and randomness for the transport.
 *
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), written for troupe so
 * that the transport needs no crypto library: the node handshake proves
 * knowledge of the cookie with them, and client requests are signed with
 * them. Nothing here allocates; every function is reentrant, and a context
 * may be used by one thread at a time.
 */
#ifndef TR_CRYPTO_H
#define TR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR__SHA256_LEN 32
#define TR__SHA256_BLOCK 64

/* An incremental SHA-256 computation. Fields are private. */
typedef struct tr__sha256_ctx {
	uint32_t h[8];
	uint64_t nbytes;               /* bytes absorbed so far */
	uint8_t buf[TR__SHA256_BLOCK]; /* a partial block */
	size_t nbuf;                   /* bytes used in buf */
} tr__sha256_ctx;

/* Starts a hash. */
void tr__sha256_init(tr__sha256_ctx *s);

/* Absorbs `len` bytes at `data` (NULL is allowed when len is 0). */
void tr__sha256_update(tr__sha256_ctx *s, const void *data, size_t len);

/* Writes the digest to `out` and wipes the context; call init again to
 * reuse it. */
void tr__sha256_final(tr__sha256_ctx *s, uint8_t out[TR__SHA256_LEN]);

/* One-shot SHA-256 of `len` bytes at `data`. */
void tr__sha256(uint8_t out[TR__SHA256_LEN], const void *data, size_t len);

/* An incremental HMAC-SHA256, so that callers can MAC several parts (a
 * label, a nonce, two names) without concatenating them. Fields are
 * private; the context holds key material and is wiped by final. */
typedef struct tr__hmac {
	tr__sha256_ctx inner; /* keyed with key ^ ipad, absorbs the message */
	tr__sha256_ctx outer; /* keyed with key ^ opad, absorbs inner's */
} tr__hmac;

/* Starts a MAC keyed with `klen` bytes at `key` (any length: keys longer
 * than a block are hashed first, as RFC 2104 says). */
void tr__hmac_init(tr__hmac *h, const void *key, size_t klen);

/* Absorbs `len` bytes at `data` (NULL is allowed when len is 0). */
void tr__hmac_update(tr__hmac *h, const void *data, size_t len);

/* Writes the MAC to `out` and wipes the context. */
void tr__hmac_final(tr__hmac *h, uint8_t out[TR__SHA256_LEN]);

/* One-shot HMAC-SHA256 of `len` bytes at `data` keyed with `key`. */
void tr__hmac_sha256(uint8_t out[TR__SHA256_LEN], const void *key, size_t klen,
    const void *data, size_t len);

/* Whether the `n` bytes at `a` and `b` are equal, in a time that depends
 * only on `n` (never on where they differ): use it for every comparison
 * of a MAC an untrusted peer sent. */
bool tr__ct_equal(const void *a, const void *b, size_t n);

/* Fills `buf` with `n` bytes from the kernel's CSPRNG (getrandom; it
 * blocks only until the kernel's pool is first seeded, early at boot).
 * Returns TR_OK, or TR_EAGAIN if the kernel gave no randomness (the
 * buffer's contents are then unspecified). Thread-safe. */
int tr__random(void *buf, size_t n);

/* Overwrites `n` bytes at `p` with zeros in a way the compiler cannot
 * drop, for key material. */
void tr__wipe(void *p, size_t n);

#endif
