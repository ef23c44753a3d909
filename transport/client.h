/*
 * The client endpoint: how programs that are not nodes (scripts, services
 * in other languages) call registered actors of a node, one signed request
 * per round trip (see proto/troupe.proto and docs/client.md).
 *
 * A request frame is 32 bytes of HMAC-SHA256(cookie, body) followed by the
 * body, an encoded ClientRequest. The node verifies the frame, calls the
 * actor registered under `to_name` with tr_call, and answers with an
 * encoded ClientReply (unsigned: the client trusts the socket it dialled).
 * Every refused request gets a ClientReply with a TR_E* error and a
 * message for a human, and nothing of it reaches an actor.
 *
 * Error codes of a refusal (ClientReply.error and tr__client_verify):
 *   TR_EINVAL    frame shorter than a signature, bad signature (wrong
 *                cookie or altered bytes), undecodable body, nonce shorter
 *                than TR__CLIENT_NONCE_MIN bytes, empty to_name
 *   TR_ENOTSUP   protocol major other than PROTOCOL_MAJOR
 *   TR_ETIMEDOUT timestamp_ms further than the window from the node's
 *                clock (either way)
 *   TR_EEXIST    the nonce was seen within the window: a replay
 *   TR_EAGAIN    the replay cache is full of live nonces; retry later
 * and then those of tr_whereis / tr_call (TR_ENOENT: no such name,
 * TR_ETIMEDOUT: no reply in time, TR_ENOPROC, TR_EMSGSIZE, ...).
 */
#ifndef TR_CLIENT_H
#define TR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "troupe.pb-c.h"
#include "troupe/troupe.h"

#define TR__CLIENT_SIG_LEN 32        /* HMAC-SHA256 in front of the body */
#define TR__CLIENT_NONCE_MIN 16      /* shortest nonce accepted */
#define TR__CLIENT_WINDOW_MS 30000   /* default accepted clock skew */
#define TR__CLIENT_NONCES 65536      /* default replay cache capacity */
#define TR__CLIENT_WORKERS 4         /* requests served at the same time */
#define TR__CLIENT_CALL_MS 5000      /* tr_call timeout when timeout_ms is 0 */
#define TR__CLIENT_CALL_MAX_MS 30000 /* cap on a request's timeout_ms */

/* ---- replay cache -------------------------------------------------------- */

/* The nonces of accepted requests, each remembered until its request's
 * timestamp has left the window (after that the timestamp check refuses a
 * replay on its own). Bounded: it holds at most `cap` live nonces and
 * refuses new ones with TR_EAGAIN beyond that, rather than grow. Stores a
 * 16-byte digest of each nonce, so its memory is fixed at allocation: at
 * most 120 bytes per unit of capacity (the default, 65536, remembers about
 * 1000 requests a second over the longest retention of twice the window
 * of 30 s, in under 5 MiB). Thread-safe (a mutex inside). */
typedef struct tr__nonce_cache tr__nonce_cache;

/* Allocates a cache for at most `cap` live nonces (0: TR__CLIENT_NONCES).
 * Errors: TR_EINVAL (c NULL, cap absurdly large), TR_ENOMEM. */
int tr__nonce_cache_alloc(tr__nonce_cache **c, size_t cap);

/* Frees a cache. NULL is ignored. No call may be running on it. */
void tr__nonce_cache_free(tr__nonce_cache *c);

/* Records `len` bytes of `nonce` until `expiry_ms`, unless it is recorded
 * already and not expired at `now_ms`. Entries with expiry_ms <= now_ms
 * are forgotten. Returns TR_OK (recorded), TR_EEXIST (seen: a replay), or
 * TR_EAGAIN (full of live nonces; nothing recorded). */
int tr__nonce_cache_insert(tr__nonce_cache *c, const void *nonce, size_t len,
    uint64_t expiry_ms, uint64_t now_ms);

/* The number of entries held (live or expired but not yet purged); for
 * tests. */
size_t tr__nonce_cache_count(tr__nonce_cache *c);

/* ---- verification -------------------------------------------------------- */

/* Verifies one request frame of `len` bytes received at `now_ms` (Unix
 * time in ms) against `cookie` (its strlen bytes are the HMAC key) with an
 * accepted clock skew of `window_ms` either way, and records its nonce in
 * `cache`. Checks, in this order: length, signature (constant-time),
 * decoding, major version, timestamp, nonce length, replay; nothing is
 * decoded before the signature matched, and a nonce is recorded only for a
 * request that passed every other check. On TR_OK `*out` is the decoded
 * request, owned by the caller (free with tr__client_request_free);
 * otherwise `*out` is NULL. Errors: as listed at the top of this file,
 * plus TR_EINVAL for NULL arguments. Thread-safe. */
int tr__client_verify(const uint8_t *frame, size_t len, const char *cookie,
    uint64_t now_ms, uint32_t window_ms, tr__nonce_cache *cache,
    Troupe__Wire__ClientRequest **out);

/* A static, human-readable reason for a refusal by tr__client_verify with
 * error `err` (the message of the ClientReply); "" for TR_OK. */
const char *tr__client_refusal(int err);

/* Signs `body` for `cookie`: writes the 32-byte signature followed by the
 * body into a new malloc'd buffer (`*frame`, `*len`), which the caller
 * frees. For clients written in C and for tests. Errors: TR_EINVAL,
 * TR_ENOMEM. */
int tr__client_sign(uint8_t **frame, size_t *len, const char *cookie,
    const uint8_t *body, size_t blen);

/* ---- the endpoint -------------------------------------------------------- */

/* A running client endpoint. Threads: TR__CLIENT_WORKERS workers, one per
 * nng context; each waits on its own aio (no callback), so no nng thread
 * ever waits for an actor, and a slow call holds only its own worker. */
typedef struct tr__client tr__client;

/* Starts an endpoint for runtime `rt`: an nng rep0 socket listening on
 * `url` that accepts frames of at most `max_frame` bytes (0: 1 MiB; larger
 * ones are dropped by nng, unanswered), with requests `window_ms` old or
 * new at most (0: TR__CLIENT_WINDOW_MS). `cookie` is copied. A request's
 * timeout_ms of 0 means TR__CLIENT_CALL_MS; larger ones are cut to
 * TR__CLIENT_CALL_MAX_MS. Errors: TR_EINVAL (a NULL argument, empty
 * cookie, malformed URL), TR_ENOTSUP (a transport nng lacks), TR_EEXIST
 * (address in use), TR_ENOMEM, TR_ECLOSED (other nng failures). On error
 * nothing is left behind. Call from a plain thread. */
int tr__client_start(tr__client **c, tr_runtime *rt, const char *url,
    const char *cookie, uint32_t window_ms, size_t max_frame);

/* The URL the endpoint listens on (for tcp://host:0, with the real port).
 * Valid until tr__client_stop. */
const char *tr__client_url(const tr__client *c);

/* Stops the endpoint: closes it (requests not yet answered get no
 * reply; the client's req socket times out), waits for the workers (a
 * worker inside tr_call finishes it first: at most TR__CLIENT_CALL_MAX_MS)
 * and frees everything. Call before tr_runtime_stop, from a plain thread,
 * once. NULL is ignored. */
void tr__client_stop(tr__client *c);

#endif
