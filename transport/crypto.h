/*
 * Hashing, message authentication, key derivation and randomness for the
 * transport, on top of mbed TLS 2.28 (libmbedcrypto, the crypto library nng
 * already links for TLS): troupe writes protocols, not primitives.
 *
 *   tr__sha256        SHA-256 (mbedtls_sha256_ret)
 *   tr__hmac_*        HMAC-SHA256, incremental (mbedtls_md_hmac_*)
 *   tr__kdf           HKDF-SHA256 (mbedtls_hkdf), one key per purpose
 *   tr__ct_equal      constant-time comparison (mbedtls_ct_memcmp, public
 *                     in mbedtls/constant_time.h since 2.28)
 *   tr__wipe          mbedtls_platform_zeroize
 *   tr__random        getrandom(2), the kernel's CSPRNG
 *
 * Why getrandom rather than mbed's CTR-DRBG: the transport needs a few
 * dozen random bytes per handshake or request, and the kernel's generator
 * is the entropy source a DRBG would be seeded from anyway; it needs no
 * state to seed, reseed, lock between threads or protect against fork(),
 * all of which a process-wide CTR-DRBG context would.
 *
 * Every function is reentrant; a context may be used by one thread at a
 * time.
 */
#ifndef TR_CRYPTO_H
#define TR_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/md.h>

#define TR__SHA256_LEN 32
#define TR__KDF_LEN 32 /* bytes of a key from tr__kdf */

/* One-shot SHA-256 of `len` bytes at `data` (NULL is allowed when len is
 * 0). Allocates nothing; cannot fail. */
void tr__sha256(uint8_t out[TR__SHA256_LEN], const void *data, size_t len);

/* An incremental HMAC-SHA256, so that callers can MAC several parts (a
 * label, a nonce, two names) without concatenating them. Fields are
 * private.
 *
 * mbed TLS allocates the state of an HMAC context on the heap (about 240
 * bytes), so a context that was initialised must be finished: by
 * tr__hmac_final, or by tr__hmac_fini to drop it without a result. Both
 * wipe the key material and free the state; either may be called on a
 * context whose init failed, and fini again after final. */
typedef struct tr__hmac {
	mbedtls_md_context_t md;
	bool failed; /* init could not allocate: final gives no MAC */
} tr__hmac;

/* Starts a MAC keyed with `klen` bytes at `key` (any length: keys longer
 * than a block are hashed first, as RFC 2104 says). Returns TR_OK, or
 * TR_ENOMEM when mbed TLS could not allocate the state: update is then a
 * no-op and final fails (see there), so a caller that ignores this result
 * is still safe. */
int tr__hmac_init(tr__hmac *h, const void *key, size_t klen);

/* Absorbs `len` bytes at `data` (NULL is allowed when len is 0). */
void tr__hmac_update(tr__hmac *h, const void *data, size_t len);

/* Writes the MAC to `out`, wipes and frees the context. Returns TR_OK, or
 * TR_ENOMEM if init had failed: `out` is then filled with fresh random
 * bytes (never a predictable value such as zeros), so that a caller that
 * compares it with a MAC received from a peer without checking this
 * result still finds them different. */
int tr__hmac_final(tr__hmac *h, uint8_t out[TR__SHA256_LEN]);

/* Wipes and frees a context without producing a MAC (an error path).
 * Harmless on a context already finished. */
void tr__hmac_fini(tr__hmac *h);

/* One-shot HMAC-SHA256 of `len` bytes at `data` keyed with `klen` bytes
 * at `key`. Returns TR_OK or TR_ENOMEM (with `out` random, as for
 * tr__hmac_final). */
int tr__hmac_sha256(uint8_t out[TR__SHA256_LEN], const void *key, size_t klen,
    const void *data, size_t len);

/* ---- keys by purpose ------------------------------------------------------
 *
 * The cookie is never used as a key itself: each use gets its own key,
 * derived with HKDF-SHA256 (RFC 5869) from the cookie's bytes as the input
 * key material, with the purpose's label as `info` and an empty salt (RFC
 * 5869 then uses 32 zero bytes). The salt is empty on purpose: the cookie
 * is the only secret both sides hold, there is no random value they could
 * share as a salt, the labels already separate the purposes (and name
 * troupe, so no other protocol derives the same keys by accident), and a
 * client written from docs/client.md has one parameter fewer to get
 * right. A key learnt from one purpose (say, by a bug in a client) does
 * not give the others. The labels end in a version: a change of a
 * protocol's use of its key changes the label. */
#define TR__KDF_NODE "troupe node handshake v2"   /* node <-> node proofs */
#define TR__KDF_CLIENT "troupe client request v2" /* client request MACs */

/* Derives the TR__KDF_LEN-byte key for purpose `label` (a NUL-terminated
 * string, normally one of TR__KDF_*) from `len` bytes of `cookie`:
 * HKDF-SHA256(salt = empty, ikm = cookie, info = label, L = 32). Returns
 * TR_OK, TR_EINVAL (NULL arguments, an empty cookie) or TR_ENOMEM; on
 * error `out` is filled with random bytes (see tr__hmac_final). */
int tr__kdf(uint8_t out[TR__KDF_LEN], const void *cookie, size_t len,
    const char *label);

/* General HKDF-SHA256 (RFC 5869): `olen` bytes (at most 255 * 32) from
 * `ilen` bytes of input key material with the given salt (NULL, 0: none)
 * and info. tr__kdf is this with an empty salt, the label as info and 32
 * bytes out. Returns TR_OK, TR_EINVAL (NULL with a length, olen 0 or too
 * large) or TR_ENOMEM. */
int tr__hkdf(uint8_t *out, size_t olen, const void *salt, size_t slen,
    const void *ikm, size_t ilen, const void *info, size_t infolen);

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
 * drop, for key material (mbedtls_platform_zeroize). NULL is allowed when
 * n is 0. */
void tr__wipe(void *p, size_t n);

#endif
