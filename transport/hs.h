/*
 * The handshake between nodes, as a state machine of its own: no sockets,
 * threads, locks or clocks. The node (node_hs.c) feeds it what arrives on
 * connections that have not proved the cookie, the connects its user asks
 * for, the losses of pairs and the time, and carries out what it answers
 * (a list of actions: dial, send a frame, trust a connection, commit a
 * pair, close, finish a connect, count a refusal). Tests and the fuzzer
 * drive it the same way, with no network at all.
 *
 * The protocol (proto/troupe.proto has the frames, docs/distribution.md
 * the reasons). Connections are one-way, so a pair of nodes uses two: the
 * initiator I dials the responder R (I's "out"), R dials back a URL that I
 * advertised (R's out, I's "in").
 *
 *   I -> R  Hello (opening)  R makes an *accept* (bounded, with a deadline)
 *                            and dials back; nothing else changes
 *   R -> I  Hello (answer)   I checks the proof over its nonce: R is real
 *   I -> R  Proof            R checks it: I is real; R commits the pair
 *   R -> I  Ack              I commits the pair
 *
 * Rules that keep every node's view of its peers authenticated and stable:
 * - Nothing that arrives before its proof verified changes anything but
 *   its own handshake (and an accept costs one bounded dial-back). A peer
 *   that is up stays up, and keeps delivering, until a handshake with the
 *   same name has verified: only then does it replace it (a restarted
 *   node, or one that lost us and starts over).
 * - A connect whose answer comes from a node that is up already (under any
 *   URL) is a no-op: it succeeds, and the new connections are closed.
 * - Crossed handshakes (I's to R and R's to I at once): the one started by
 *   the node whose name sorts lower (strcmp) wins. A node that sees both
 *   applies the rule; a node that has committed one refuses or drops the
 *   other, so both end with the same pair and nobody reports a loss.
 *
 * Handshake ids (uint32, from 1, never reused) name the state of one
 * handshake: an accept or a connect. Pipe ids are the node's inbound
 * connections (tr__sp_in ids; 0 is none).
 */
#ifndef TR_HS_H
#define TR_HS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe/node.h"

#define TR__HS_KEY_LEN 32
#define TR__HS_NONCE_LEN 32
#define TR__HS_MAX_URLS 16     /* URLs kept from a Hello */
#define TR__HS_MAX_URL 1024    /* longest URL kept */
#define TR__HS_ACCEPTS 64      /* default cap on accepts at once */
#define TR__HS_TIMEOUT_MS 5000 /* default deadline of a handshake */

/* Why a refusal was counted (TR__HS_REFUSED's `rc`). */
enum {
	TR__HS_R_MALFORMED = 1, /* undecodable, or a frame out of place */
	TR__HS_R_VERSION,       /* another protocol major */
	TR__HS_R_SELF,          /* our own name */
	TR__HS_R_PROOF,         /* a wrong proof: another cookie */
	TR__HS_R_FULL,          /* an accept evicted: too many at once */
	TR__HS_R_TIMEOUT,       /* a handshake past its deadline */
	TR__HS_R_STALE,         /* an older incarnation than the one up */
	TR__HS_R_NCAUSES
};

typedef enum tr__hs_kind {
	/* Open an outbound connection for handshake `hs` to `url`, and send
	 * `frame` on it first. */
	TR__HS_DIAL = 1,
	/* Send `frame` on the outbound connection of `hs`. */
	TR__HS_SEND,
	/* Inbound connection `pipe` has proved the cookie: lift its limits. */
	TR__HS_TRUST,
	/* Commit: node `name`/`inc` (minor `minor`, listening on `urls`) is
	 * up over the outbound connection of `hs` and the inbound `pipe`.
	 * If `replaces` is not 0, that handshake's pair (the same name) is
	 * over first: tear it down, then commit. Then send `frame` (the Ack,
	 * when we are the responder; may be NULL) on the new outbound. */
	TR__HS_UP,
	/* Close the outbound connection of `hs` (if it has one: `hs` may be
	 * 0), after the frames sent on it, and the inbound `pipe` (if not
	 * 0). The handshake is over, or waits for another one without
	 * connections of its own. */
	TR__HS_CLOSE,
	/* The connect `hs` has its result `rc` (TR_OK: `name` is up, maybe
	 * over another pair; TR_ECLOSED: refused; TR_ETIMEDOUT). With `alias`,
	 * the connect's URL reached a node that was up already. */
	TR__HS_DONE,
	/* A refusal of cause `rc` (TR__HS_R_*), `why` for the log. */
	TR__HS_REFUSED,
} tr__hs_kind;

typedef struct tr__hs_act {
	tr__hs_kind kind;
	uint32_t hs;
	uint32_t pipe;
	uint32_t replaces;
	int rc;
	bool alias;
	const char *url; /* DIAL: valid until the next call on the machine */
	const char *why; /* REFUSED: a static string */
	uint8_t *frame;  /* DIAL, SEND, UP: malloc'd; now the caller's */
	size_t len;
	char name[TR_NODE_NAME_MAX + 1]; /* UP, DONE, REFUSED (may be "") */
	uint64_t inc;
	uint32_t minor;
	char **urls; /* UP: malloc'd array of malloc'd strings; caller's */
	size_t nurls;
} tr__hs_act;

#define TR__HS_ACTS 16

/* What one call asks the node to do, in this order. */
typedef struct tr__hs_acts {
	uint32_t n;
	tr__hs_act v[TR__HS_ACTS];
} tr__hs_acts;

/* Frees what the actions still own (frames, URL lists), for callers that
 * did not take them, and empties the list. */
void tr__hs_acts_clear(tr__hs_acts *a);

typedef struct tr__hs_cfg {
	const char *name; /* ours; copied */
	uint64_t inc;
	uint32_t minor;
	const char *const *urls; /* where we listen, advertised; copied */
	size_t nurls;
	uint8_t key[TR__HS_KEY_LEN]; /* the handshake key */
	uint32_t max_accepts;        /* 0: TR__HS_ACCEPTS */
	uint32_t timeout_ms;         /* 0: TR__HS_TIMEOUT_MS */
	/* Fills `buf` with `n` random bytes; TR_OK or an error. */
	int (*random)(void *arg, void *buf, size_t n);
	void *arg;
} tr__hs_cfg;

typedef struct tr__hs tr__hs;

/* Errors: TR_EINVAL, TR_ENOMEM. */
int tr__hs_alloc(tr__hs **hsp, const tr__hs_cfg *cfg);
void tr__hs_free(tr__hs *hs);

/* A frame from inbound connection `pipe` that is not (yet) a committed
 * pair's, i.e. any frame the node does not route to a peer, at `now_ms`
 * (monotonic). `listener` is the index of the listen URL the connection
 * came in by (-1 if unknown), for the choice of the URL to dial back.
 * Whatever it is, the result only concerns the handshake that the
 * connection belongs to. Returns true if the frame was a handshake frame
 * (decoded and handled, or refused and counted), false if it is
 * something else (a Batch): the caller counts it as unauthenticated. */
bool tr__hs_frame(tr__hs *hs, tr__hs_acts *out, int64_t now_ms, uint32_t pipe,
    int listener, const uint8_t *buf, size_t len);

/* Starts a connect to `url` (the caller has opened the outbound
 * connection already; it dials until it is up): the action list gets a
 * SEND of our Hello for the returned id. Errors: TR_ENOMEM and the
 * random source's. */
int tr__hs_connect(tr__hs *hs, tr__hs_acts *out, int64_t now_ms,
    const char *url, uint32_t *id);

/* The caller of connect `id` gave up (its deadline): the handshake ends
 * (CLOSE) unless it has committed already. */
void tr__hs_cancel(tr__hs *hs, tr__hs_acts *out, uint32_t id);

/* The outbound connection of `id` failed or closed. */
void tr__hs_out_lost(tr__hs *hs, tr__hs_acts *out, uint32_t id);

/* Inbound connection `pipe` is gone. */
void tr__hs_pipe_lost(tr__hs *hs, tr__hs_acts *out, uint32_t pipe);

/* The pair committed by handshake `id` (TR__HS_UP) is over (the node
 * declared the peer down, or tore it down for a replacement). */
void tr__hs_pair_lost(tr__hs *hs, uint32_t id);

/* Deadlines: ends handshakes that are past theirs. Call every tick.
 * Returns true when it stopped for room in `out`: carry out the actions
 * and call again. */
bool tr__hs_tick(tr__hs *hs, tr__hs_acts *out, int64_t now_ms);

/* Counts, for tests: handshakes in progress (accepts, connects) and pairs
 * committed. */
void tr__hs_counts(
    const tr__hs *hs, uint32_t *accepts, uint32_t *connects, uint32_t *pairs);

#endif
