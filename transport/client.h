/*
 * The client endpoint: how programs that are not nodes (scripts, services
 * in other languages) call registered actors of a node, one signed request
 * per round trip (see proto/troupe.proto and docs/client.md).
 *
 * A request frame is 32 bytes of HMAC-SHA256(client key, body) followed by
 * the body, an encoded ClientRequest; the client key is derived from the
 * cookie with tr__kdf(cookie, TR__KDF_CLIENT), never the cookie itself.
 * The request names the node it is meant for (ClientRequest.node), so a
 * request captured on its way to one node of a cluster cannot be replayed
 * to another. The node verifies the frame, sends the actor registered
 * under `to_name` a request (tr_request) and answers with an encoded
 * ClientReply once the actor replied, exited, or timed out. Replies are
 * unsigned: the client trusts the connection it dialled (use tls+tcp://
 * where that is not enough). Every refused request gets a ClientReply with
 * a TR_E* error and a message for a human, and nothing of it reaches an
 * actor.
 *
 * Refusals (ClientReply.error and tr__client_verify), by cause:
 *   TR_EINVAL    bad signature: frame shorter than a signature, or not
 *                signed with the client key (wrong cookie, altered bytes)
 *   TR_ENOTSUP   too old: signed with the raw cookie (a client of minor 0,
 *                before keys by purpose), or minor 0
 *   TR_ENOTSUP   version: protocol major other than PROTOCOL_MAJOR
 *   TR_EINVAL    bad request: undecodable body, nonce shorter than
 *                TR__CLIENT_NONCE_MIN bytes, empty to_name
 *   TR_EINVAL    wrong node: `node` is not this node's name
 *   TR_ETIMEDOUT window: timestamp_ms further than the window from the
 *                node's clock (either way)
 *   TR_EINVAL    local type: `type` is local-only (tr_msg_type_local)
 *   TR_EAGAIN    busy (endpoint only): max_calls calls are in progress
 *   TR_EEXIST    replay: the nonce was seen within the window
 *   TR_EAGAIN    cache full: the replay cache is full of live nonces
 * and, for an accepted request, those of the call: TR_ENOENT (no actor
 * registered under to_name), TR_ETIMEDOUT (no reply in time), TR_ENOPROC
 * (the actor exited first), TR_EMSGSIZE (payload above the runtime's
 * max_msg_size), TR_EINVAL (the actor replied with a local-only type),
 * TR_ENOMEM, TR_ECLOSED (the runtime is stopping).
 */
#ifndef TR_CLIENT_H
#define TR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "troupe.pb-c.h"
#include "troupe/troupe.h"

#define TR__CLIENT_SIG_LEN 32      /* HMAC-SHA256 in front of the body */
#define TR__CLIENT_NONCE_MIN 16    /* shortest nonce accepted */
#define TR__CLIENT_MINOR 1         /* the client protocol minor spoken */
#define TR__CLIENT_WINDOW_MS 30000 /* default accepted clock skew */
#define TR__CLIENT_NONCES 65536    /* default replay cache capacity */
#define TR__CLIENT_MAX_REQUEST ((size_t)1 << 20) /* default frame limit */
#define TR__CLIENT_MAX_CALLS 64                  /* default calls in progress */
#define TR__CLIENT_MAX_CALLS_CAP 65536 /* largest max_calls accepted */
#define TR__CLIENT_SPARE 8             /* contexts beyond max_calls */
#define TR__CLIENT_SEND_MS 10000       /* a reply's wait for its reader */
#define TR__CLIENT_CALL_MS 5000        /* call timeout when timeout_ms is 0 */
#define TR__CLIENT_CALL_MAX_MS 30000   /* cap on a request's timeout_ms */
#define TR__CLIENT_WHY_MAX 256         /* longest reason, NUL included */
#define TR__CLIENT_MAX_CONNS 256       /* default connections open at once */
#define TR__CLIENT_MAX_CONNS_CAP 65536 /* largest max_conns accepted */
#define TR__CLIENT_IDLE_MS 60000       /* default idle time before a close */

/* The endpoint's own messages to its actor, in the local-only range (they
 * carry slot numbers of one process; tr_msg_type_local is true for both,
 * so they can never arrive from the wire). */
#define TR__CLIENT_T_START (TR_MSG_LOCAL_BASE + 0xC100u)
#define TR__CLIENT_T_STOP (TR_MSG_LOCAL_BASE + 0xC101u)

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

/* Why a request was refused (or not: TR__CC_OK). One counter per cause in
 * tr__client_stats. */
typedef enum tr__client_cause {
	TR__CC_OK = 0,
	TR__CC_BAD_SIGNATURE, /* too short, or not signed with the client key */
	TR__CC_TOO_OLD,       /* signed with the raw cookie, or minor 0 */
	TR__CC_VERSION,       /* another protocol major */
	TR__CC_BAD_REQUEST,   /* undecodable, short nonce, empty to_name */
	TR__CC_WRONG_NODE,    /* meant for another node */
	TR__CC_WINDOW,        /* timestamp outside the window */
	TR__CC_LOCAL_TYPE,    /* a local-only message type */
	TR__CC_BUSY,          /* max_calls calls in progress (endpoint) */
	TR__CC_REPLAY,        /* nonce seen already */
	TR__CC_CACHE_FULL,    /* replay cache full of live nonces */
	TR__CC_COUNT
} tr__client_cause;

/* A short name of a cause for log lines ("bad signature", "too old",
 * ...); "accepted" for TR__CC_OK, "?" for values out of range. */
const char *tr__client_cause_name(tr__client_cause cause);

/* The outcome of one verification, for the reply and the counters. */
typedef struct tr__client_verdict {
	tr__client_cause cause;
	char why[TR__CLIENT_WHY_MAX]; /* for a human; "" when accepted */
} tr__client_verdict;

/* What requests are checked against: the client key, the raw cookie (only
 * to recognise clients of minor 0 and tell them why they are refused),
 * this node's name, the window and the replay cache. Fields are private;
 * holds key material (tr__client_verifier_fini wipes it). */
typedef struct tr__client_verifier {
	uint8_t key[TR__KDF_LEN]; /* tr__kdf(cookie, TR__KDF_CLIENT) */
	uint8_t *cookie;          /* a copy of the raw cookie */
	size_t cookielen;
	char *node; /* requests must name this node */
	uint32_t window_ms;
	tr__nonce_cache *cache; /* not owned */
} tr__client_verifier;

/* Builds a verifier for node `node` from `cookie` (its strlen bytes) with
 * an accepted clock skew of `window_ms` either way (0:
 * TR__CLIENT_WINDOW_MS), recording nonces in `cache` (which must outlive
 * the verifier). Copies what it needs. Errors: TR_EINVAL (NULL, empty
 * cookie or node), TR_ENOMEM. On error the verifier needs no fini (it
 * accepts one all the same). */
int tr__client_verifier_init(tr__client_verifier *v, const char *cookie,
    const char *node, uint32_t window_ms, tr__nonce_cache *cache);

/* Wipes the keys and frees the copies. Accepts a zeroed or half-built
 * verifier and a second call. */
void tr__client_verifier_fini(tr__client_verifier *v);

/* Verifies one request frame of `len` bytes received at `now_ms` (Unix
 * time in ms) and records its nonce. Checks, in this order: length,
 * signature with the client key (constant-time; on a mismatch, whether the
 * raw cookie signed it: too old), decoding, major, minor, node, timestamp,
 * nonce length, to_name, local type, replay; nothing is decoded before a
 * signature matched, and a nonce is recorded only for a request that
 * passed every other check. On TR_OK `*out` is the decoded request, owned
 * by the caller (free with tr__client_request_free); otherwise `*out` is
 * NULL. `verdict` (may be NULL) receives the cause and the reason. Errors:
 * as listed at the top of this file (never TR__CC_BUSY), plus TR_EINVAL
 * for NULL arguments (cause TR__CC_BAD_REQUEST). Thread-safe (the cache
 * locks). */
int tr__client_verify(Troupe__Wire__ClientRequest **out,
    tr__client_verdict *verdict, const tr__client_verifier *v,
    const uint8_t *frame, size_t len, uint64_t now_ms);

/* The client key of `cookie` (its strlen bytes): tr__kdf(cookie,
 * TR__KDF_CLIENT). Errors as tr__kdf. */
int tr__client_key(uint8_t out[TR__KDF_LEN], const char *cookie);

/* Signs `body` with `klen` bytes of `key` (a client key; tests also sign
 * with a raw cookie, as clients of minor 0 did): writes the 32-byte
 * signature followed by the body into a new malloc'd buffer (`*frame`,
 * `*len`), which the caller frees. For clients written in C, the fuzzer
 * and tests. Errors: TR_EINVAL, TR_ENOMEM. */
int tr__client_sign(uint8_t **frame, size_t *len, const void *key, size_t klen,
    const uint8_t *body, size_t blen);

/* ---- the endpoint -------------------------------------------------------- */

/* A running client endpoint.
 *
 * How it is built, and its bounds. An nng rep0 socket with max_calls +
 * TR__CLIENT_SPARE contexts, each with its own aio and a callback (no
 * thread of its own): a callback verifies the frame it received (CPU
 * only, bounded by max_request) and either sends the refusal at once or
 * hands the request to the endpoint's actor, which calls the target with
 * tr_request and tr_monitor and routes the reply, the DOWN or the timeout
 * back to the context by reference. So a slow call holds one context and
 * one entry in the actor's table, and no thread: N slow calls occupy N
 * call slots and nothing else.
 *   - Calls in progress: at most max_calls; a verified request beyond
 *     that is answered at once with TR_EAGAIN (busy) and its nonce is not
 *     recorded, so the same frame may be sent again.
 *   - Requests waiting: every context is receiving unless it is in a call
 *     or sending a reply, so at least TR__CLIENT_SPARE are receiving when
 *     max_calls calls are in progress; beyond the contexts, nng holds at
 *     most one received frame per connection (backpressure on it).
 *   - Memory per request: nng refuses a frame longer than max_request
 *     on its length (it closes the connection before reading it); a
 *     context holds its frame only while verifying, and a call only the
 *     callee's name after its request went out.
 *   - A reply waits at most TR__CLIENT_SEND_MS for a client that does not
 *     read, then is dropped and its context receives again.
 *   - Connections: at most max_conns are open at once. nng tells the
 *     endpoint of each connection once its SP header exchange is done,
 *     before it may carry a request (a pipe notification); one beyond
 *     the limit is closed there, without a byte of a request read, and
 *     counted (conns_refused). So the frames nng holds for connections
 *     total at most max_conns * max_request bytes.
 *   - Idle connections: one that has no request being verified, called
 *     or answered, and received none for idle_ms (counted from when it
 *     was admitted, its last request arrived, or its last reply ended),
 *     is closed (conns_idle_closed). A slow call keeps its connection;
 *     a connection that trickles a frame and never completes it does
 *     not. A sweep on one nng sleep, every idle_ms / 8 (between 5 ms
 *     and 1 s), finds them: a connection is closed between idle_ms and
 *     idle_ms plus that period after it went quiet. No thread and no
 *     timer per connection: a table allocated at start, at most 96
 *     bytes per unit of max_conns (12 KiB for the default).
 *   - Not reached by the two above: a connection that has not finished
 *     its SP header exchange (its TLS handshake included) is nng's
 *     alone, as nng 1.5.2 tells of none before. nng closes it after
 *     10 s; their number is not bounded here.
 *   What a client sees of either close: its connection closed, no
 *   reply. Neither closes a connection with a request in progress, so a
 *   request still waiting for its reply then never reached an actor and
 *   its nonce was not recorded. A req0 socket dials again
 *   (NNG_OPT_RECONNMINT, 100 ms by default) and sends such a request
 *   again on the new connection, where it is served; one refused for
 *   the limit is admitted once others close.
 * Every refusal and close is counted by cause (tr__client_stats_get) and
 * logged at most once per 10 s per cause (ratelog.h). */
typedef struct tr__client tr__client;

/* How to start an endpoint. Zero-initialise, then fill. */
typedef struct tr__client_opts {
	const char *url;      /* where to listen: tcp://, ipc://, tls+tcp:// */
	const char *node;     /* the node's name: requests must carry it */
	const char *cookie;   /* the cookie (its strlen bytes); copied */
	uint32_t window_ms;   /* accepted clock skew; 0: TR__CLIENT_WINDOW_MS */
	size_t max_request;   /* largest frame; 0: TR__CLIENT_MAX_REQUEST */
	uint32_t max_calls;   /* calls in progress; 0: TR__CLIENT_MAX_CALLS,
	                       * at most TR__CLIENT_MAX_CALLS_CAP */
	size_t nonces;        /* replay cache capacity; 0: TR__CLIENT_NONCES */
	uint32_t max_conns;   /* connections open at once; 0:
	                       * TR__CLIENT_MAX_CONNS, at most
	                       * TR__CLIENT_MAX_CONNS_CAP */
	uint32_t idle_ms;     /* a connection quiet this long is closed; 0:
	                       * TR__CLIENT_IDLE_MS */
	const char *tls_cert; /* tls+tcp:// only: the node's certificate and */
	const char *tls_key;  /* its private key, PEM text (the contents of
	                       * tr_node_opts' tls_cert_file / tls_key_file) */
} tr__client_opts;

/* Starts an endpoint for runtime `rt` as `opts` says (copied: nothing of
 * it is used after the call). A request's timeout_ms of 0 means
 * TR__CLIENT_CALL_MS; larger ones are cut to TR__CLIENT_CALL_MAX_MS.
 * Over tls+tcp:// the endpoint presents tls_cert and does not ask the
 * client for a certificate (requests are signed; TLS adds privacy and
 * proves the node to the client). Errors: TR_EINVAL (a NULL or empty
 * argument, max_calls or max_conns above its cap, a malformed URL,
 * tls+tcp:// without tls_cert and tls_key, or ones nng cannot load),
 * TR_ENOTSUP (a transport nng lacks), TR_EEXIST (address in use),
 * TR_ENOMEM, TR_ECLOSED (the runtime is stopping, other nng failures). On error
 * nothing is left behind. Call from a plain thread. */
int tr__client_start(
    tr__client **c, tr_runtime *rt, const tr__client_opts *opts);

/* The URL the endpoint listens on (for tcp://host:0, with the real port).
 * Valid until tr__client_stop. */
const char *tr__client_url(const tr__client *c);

/* Counters since the start. Every refusal counts once under its cause;
 * `answered` and `failed` count accepted requests by outcome; connections
 * refused and closed as idle have counters of their own. */
typedef struct tr__client_stats {
	uint64_t refused[TR__CC_COUNT]; /* by cause; [TR__CC_OK] is 0 */
	uint64_t answered; /* the actor replied; its reply was sent back */
	uint64_t failed;   /* accepted, but the call failed: no such name,
	                    * timeout, the actor exited, a local-only reply,
	                    * out of memory */
	uint32_t calls;    /* calls in progress now */
	/* Connections open now: admitted and not yet gone (closing ones
	 * included), never above max_conns. */
	uint32_t conns;
	/* Connections closed as soon as their SP headers were exchanged,
	 * because max_conns were open. */
	uint64_t conns_refused;
	/* Connections closed after idle_ms without a request. */
	uint64_t conns_idle_closed;
} tr__client_stats;

/* Fills `st`. Thread-safe. Errors: TR_EINVAL. */
int tr__client_stats_get(tr__client_stats *st, tr__client *c);

/* Stops the endpoint: no callback runs any more and the socket is closed
 * when it returns (requests not yet answered get no reply; the client's
 * req socket times out), so the URL may be listened on again at once.
 * Calls in progress are abandoned: their actors' late replies are
 * dropped. The endpoint's actor exits soon after and frees what remains
 * (at the latest in tr_runtime_stop). Call before tr_runtime_stop, from a
 * plain thread, once. NULL is ignored. Never waits for an actor. */
void tr__client_stop(tr__client *c);

#endif
