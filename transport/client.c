/*
 * The client endpoint: signed one-shot requests from programs that are not
 * nodes. See client.h for the contract and docs/client.md for a client.
 */
#include "client.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#include "codec.h"
#include "crypto.h"
#include "nng_err.h"
#include "ratelog.h"

/* ------------------------------------------------------------------------ */
/* Replay cache                                                              */
/* ------------------------------------------------------------------------ */

#define KEY_LEN 16

/* One remembered nonce: a digest of it (nonces have any length; a 128-bit
 * digest keeps entries fixed-size, and a collision is out of reach) and
 * when it may be forgotten. An expiry of 0 marks a free slot. */
typedef struct entry {
	uint8_t key[KEY_LEN];
	uint64_t expiry;
} entry;

/* Open addressing with linear probing. Expired entries are not removed one
 * by one (that would need tombstones or shifting): they are reused in
 * place by inserts that probe past them, and swept all at once by `purge`
 * when the table would otherwise fill. `used` counts occupied slots, live
 * or expired, and never exceeds `cap`, while there are at least twice as
 * many slots, so probe sequences stay short. */
struct tr__nonce_cache {
	pthread_mutex_t mu;
	size_t cap;
	size_t mask; /* slots - 1; slots is a power of two */
	size_t used;
	uint64_t oldest; /* a lower bound of the expiries held */
	entry *slots;
	entry *scratch; /* cap entries, for purge */
};

int tr__nonce_cache_alloc(tr__nonce_cache **cp, size_t cap)
{
	tr__nonce_cache *c;
	size_t slots = 1;

	if (cp == NULL)
		return TR_EINVAL;
	*cp = NULL;
	if (cap == 0)
		cap = TR__CLIENT_NONCES;
	if (cap > (SIZE_MAX / sizeof(entry)) / 4)
		return TR_EINVAL;
	while (slots < 2 * cap)
		slots *= 2;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	c->slots = calloc(slots, sizeof(entry));
	c->scratch = calloc(cap, sizeof(entry));
	if (c->slots == NULL || c->scratch == NULL ||
	    pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c->slots);
		free(c->scratch);
		free(c);
		return TR_ENOMEM;
	}
	c->cap = cap;
	c->mask = slots - 1;
	c->oldest = UINT64_MAX;
	*cp = c;
	return TR_OK;
}

void tr__nonce_cache_free(tr__nonce_cache *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->mu);
	free(c->slots);
	free(c->scratch);
	free(c);
}

static size_t home(const tr__nonce_cache *c, const uint8_t key[KEY_LEN])
{
	uint64_t h;

	/* The key is a slice of a SHA-256 digest: already uniform. */
	memcpy(&h, key, sizeof(h));
	return (size_t)h & c->mask;
}

/* Drops every expired entry by rebuilding the table from the live ones,
 * and recomputes `oldest` exactly. O(slots), run only when the table is
 * full and something in it has expired. */
static void purge(tr__nonce_cache *c, uint64_t now)
{
	size_t n = 0;

	for (size_t i = 0; i <= c->mask; i++)
		if (c->slots[i].expiry > now)
			c->scratch[n++] = c->slots[i];
	memset(c->slots, 0, (c->mask + 1) * sizeof(entry));
	c->used = n;
	c->oldest = UINT64_MAX;
	for (size_t k = 0; k < n; k++) {
		size_t i = home(c, c->scratch[k].key);

		while (c->slots[i].expiry != 0)
			i = (i + 1) & c->mask;
		c->slots[i] = c->scratch[k];
		if (c->scratch[k].expiry < c->oldest)
			c->oldest = c->scratch[k].expiry;
	}
}

static int insert_locked(tr__nonce_cache *c, const uint8_t key[KEY_LEN],
    uint64_t expiry, uint64_t now)
{
	size_t i = home(c, key);
	size_t reuse = SIZE_MAX;

	/* The whole probe sequence is walked even after a reusable slot is
	 * seen, because a live copy of the key may sit further on. */
	while (c->slots[i].expiry != 0) {
		if (c->slots[i].expiry > now) {
			if (memcmp(c->slots[i].key, key, KEY_LEN) == 0)
				return TR_EEXIST;
		} else if (reuse == SIZE_MAX) {
			reuse = i;
		}
		i = (i + 1) & c->mask;
	}
	if (reuse == SIZE_MAX) {
		if (c->used >= c->cap) {
			/* All live: refuse rather than grow. */
			if (c->oldest > now)
				return TR_EAGAIN;
			purge(c, now);
			if (c->used >= c->cap)
				return TR_EAGAIN;
			/* The key was absent before the purge (checked
			 * above), so only a free slot is needed now. */
			i = home(c, key);
			while (c->slots[i].expiry != 0)
				i = (i + 1) & c->mask;
		}
		c->used++;
	} else {
		i = reuse;
	}
	memcpy(c->slots[i].key, key, KEY_LEN);
	c->slots[i].expiry = expiry;
	if (expiry < c->oldest)
		c->oldest = expiry;
	return TR_OK;
}

int tr__nonce_cache_insert(tr__nonce_cache *c, const void *nonce, size_t len,
    uint64_t expiry_ms, uint64_t now_ms)
{
	uint8_t digest[TR__SHA256_LEN];
	int rv;

	if (c == NULL || (nonce == NULL && len > 0))
		return TR_EINVAL;
	/* Nothing to remember for a nonce that is dead already; this also
	 * keeps 0 free as the empty-slot mark. */
	if (expiry_ms <= now_ms)
		return TR_OK;
	tr__sha256(digest, nonce, len);
	pthread_mutex_lock(&c->mu);
	rv = insert_locked(c, digest, expiry_ms, now_ms);
	pthread_mutex_unlock(&c->mu);
	return rv;
}

size_t tr__nonce_cache_count(tr__nonce_cache *c)
{
	size_t n;

	pthread_mutex_lock(&c->mu);
	n = c->used;
	pthread_mutex_unlock(&c->mu);
	return n;
}

/* ------------------------------------------------------------------------ */
/* Verification                                                              */
/* ------------------------------------------------------------------------ */

static const char *const cause_names[TR__CC_COUNT] = {
    [TR__CC_OK] = "accepted",
    [TR__CC_BAD_SIGNATURE] = "bad signature",
    [TR__CC_TOO_OLD] = "too old",
    [TR__CC_VERSION] = "version",
    [TR__CC_BAD_REQUEST] = "bad request",
    [TR__CC_WRONG_NODE] = "wrong node",
    [TR__CC_WINDOW] = "window",
    [TR__CC_LOCAL_TYPE] = "local type",
    [TR__CC_BUSY] = "busy",
    [TR__CC_REPLAY] = "replay",
    [TR__CC_CACHE_FULL] = "cache full",
};

const char *tr__client_cause_name(tr__client_cause cause)
{
	return (unsigned)cause < TR__CC_COUNT ? cause_names[cause] : "?";
}

static int refuse(tr__client_verdict *vd, tr__client_cause cause, int err,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Fills the verdict and returns `err`. */
static int refuse(tr__client_verdict *vd, tr__client_cause cause, int err,
    const char *fmt, ...)
{
	va_list ap;

	vd->cause = cause;
	va_start(ap, fmt);
	vsnprintf(vd->why, sizeof(vd->why), fmt, ap);
	va_end(ap);
	return err;
}

/* Copies at most 64 bytes of a string from a request into `dst` for a
 * message, printable ASCII only: the reply's `message` is a protobuf
 * string (UTF-8) and log lines should not carry control bytes. */
static void printable(char dst[72], const char *src)
{
	size_t i = 0;

	for (; src != NULL && src[i] != '\0' && i < 64; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	if (src != NULL && i == 64 && src[i] != '\0') {
		memcpy(dst + i, "...", 3);
		i += 3;
	}
	dst[i] = '\0';
}

int tr__client_verifier_init(tr__client_verifier *v, const char *cookie,
    const char *node, uint32_t window_ms, tr__nonce_cache *cache)
{
	int rv;

	if (v == NULL)
		return TR_EINVAL;
	memset(v, 0, sizeof(*v));
	if (cookie == NULL || cookie[0] == '\0' || node == NULL ||
	    node[0] == '\0' || cache == NULL)
		return TR_EINVAL;
	v->cookielen = strlen(cookie);
	v->cookie = malloc(v->cookielen);
	v->node = strdup(node);
	if (v->cookie == NULL || v->node == NULL) {
		tr__client_verifier_fini(v);
		return TR_ENOMEM;
	}
	memcpy(v->cookie, cookie, v->cookielen);
	rv = tr__client_key(v->key, cookie);
	if (rv != TR_OK) {
		tr__client_verifier_fini(v);
		return rv;
	}
	v->window_ms = window_ms != 0 ? window_ms : TR__CLIENT_WINDOW_MS;
	v->cache = cache;
	return TR_OK;
}

void tr__client_verifier_fini(tr__client_verifier *v)
{
	if (v == NULL)
		return;
	tr__wipe(v->key, sizeof(v->key));
	if (v->cookie != NULL)
		tr__wipe(v->cookie, v->cookielen);
	free(v->cookie);
	free(v->node);
	memset(v, 0, sizeof(*v));
}

int tr__client_key(uint8_t out[TR__KDF_LEN], const char *cookie)
{
	if (out == NULL || cookie == NULL)
		return TR_EINVAL;
	return tr__kdf(out, cookie, strlen(cookie), TR__KDF_CLIENT);
}

/* Every check of tr__client_verify but the replay cache, so that the
 * endpoint can refuse a request as busy before its nonce is recorded. */
static int check(Troupe__Wire__ClientRequest **out, tr__client_verdict *vd,
    const tr__client_verifier *v, const uint8_t *frame, size_t len,
    uint64_t now)
{
	uint8_t mac[TR__SHA256_LEN];
	const uint8_t *body;
	size_t blen;
	Troupe__Wire__ClientRequest *req;
	uint64_t ts, window = v->window_ms;
	char a[72], b[72];
	int rv;

	*out = NULL;
	if (len < TR__CLIENT_SIG_LEN)
		return refuse(vd, TR__CC_BAD_SIGNATURE, TR_EINVAL,
		    "frame shorter than its %d-byte signature",
		    TR__CLIENT_SIG_LEN);
	body = frame + TR__CLIENT_SIG_LEN;
	blen = len - TR__CLIENT_SIG_LEN;
	/* Authenticate before parsing: nobody without the key gets to
	 * exercise the decoder or fill the replay cache. A MAC that fails
	 * (out of memory) is random, so it fails the comparison too. */
	(void)tr__hmac_sha256(mac, v->key, sizeof(v->key), body, blen);
	if (!tr__ct_equal(mac, frame, TR__CLIENT_SIG_LEN)) {
		/* A client of minor 0 signed with the cookie itself: tell it
		 * what changed rather than just "bad signature". This costs
		 * a second MAC per forged frame; it tells a party without
		 * the cookie nothing, as it cannot produce such a frame. */
		(void)tr__hmac_sha256(mac, v->cookie, v->cookielen, body, blen);
		if (tr__ct_equal(mac, frame, TR__CLIENT_SIG_LEN))
			return refuse(vd, TR__CC_TOO_OLD, TR_ENOTSUP,
			    "client protocol too old: sign with the client "
			    "key (HKDF of the cookie, info \"%s\"), set node "
			    "and minor %d (docs/client.md)",
			    TR__KDF_CLIENT, TR__CLIENT_MINOR);
		return refuse(vd, TR__CC_BAD_SIGNATURE, TR_EINVAL,
		    "bad signature (wrong cookie, or the request was "
		    "altered)");
	}
	req = tr__client_request_decode(body, blen, tr__decode_budget(blen));
	if (req == NULL)
		return refuse(vd, TR__CC_BAD_REQUEST, TR_EINVAL,
		    "request body does not decode");
	if (req->major != TROUPE__WIRE__CLIENT_VERSION__CLIENT_MAJOR) {
		rv = refuse(vd, TR__CC_VERSION, TR_ENOTSUP,
		    "protocol major version not supported");
		goto fail;
	}
	if (req->minor < TR__CLIENT_MINOR) {
		rv = refuse(vd, TR__CC_TOO_OLD, TR_ENOTSUP,
		    "client protocol minor %u is too old: this node needs "
		    "minor %d or later (docs/client.md)",
		    req->minor, TR__CLIENT_MINOR);
		goto fail;
	}
	if (req->node == NULL || strcmp(req->node, v->node) != 0) {
		printable(a, req->node);
		printable(b, v->node);
		rv = refuse(vd, TR__CC_WRONG_NODE, TR_EINVAL,
		    "request is for node \"%s\", not for this node (\"%s\")", a,
		    b);
		goto fail;
	}
	ts = req->timestamp_ms;
	if ((now > window && ts < now - window) ||
	    (ts > now && ts - now > window)) {
		rv = refuse(vd, TR__CC_WINDOW, TR_ETIMEDOUT,
		    "timestamp_ms outside the node's window (clock skew or "
		    "an old request)");
		goto fail;
	}
	if (req->nonce.len < TR__CLIENT_NONCE_MIN) {
		rv = refuse(vd, TR__CC_BAD_REQUEST, TR_EINVAL,
		    "nonce shorter than %d bytes", TR__CLIENT_NONCE_MIN);
		goto fail;
	}
	if (req->to_name == NULL || req->to_name[0] == '\0') {
		rv = refuse(
		    vd, TR__CC_BAD_REQUEST, TR_EINVAL, "to_name is empty");
		goto fail;
	}
	if (tr_msg_type_local(req->type)) {
		rv = refuse(vd, TR__CC_LOCAL_TYPE, TR_EINVAL,
		    "message type 0x%08x is local-only (0x%08x and up never "
		    "leave their process)",
		    req->type, TR_MSG_LOCAL_BASE);
		goto fail;
	}
	vd->cause = TR__CC_OK;
	vd->why[0] = '\0';
	*out = req;
	return TR_OK;
fail:
	tr__client_request_free(req);
	return rv;
}

/* Records the nonce of a request that passed `check`. */
static int record(tr__client_verdict *vd, const tr__client_verifier *v,
    const Troupe__Wire__ClientRequest *req, uint64_t now)
{
	int rv;

	/* A copy of this request is accepted by the timestamp check until
	 * now passes ts + window; the nonce must be remembered exactly that
	 * long (ts + window <= now + 2 * window, so memory stays bounded by
	 * the request rate over twice the window). */
	rv = tr__nonce_cache_insert(v->cache, req->nonce.data, req->nonce.len,
	    req->timestamp_ms + v->window_ms + 1, now);
	if (rv == TR_EEXIST)
		return refuse(vd, TR__CC_REPLAY, rv,
		    "replayed request (nonce seen already)");
	if (rv != TR_OK)
		return refuse(vd, TR__CC_CACHE_FULL, rv,
		    "too many recent requests; try again later");
	return TR_OK;
}

int tr__client_verify(Troupe__Wire__ClientRequest **out,
    tr__client_verdict *verdict, const tr__client_verifier *v,
    const uint8_t *frame, size_t len, uint64_t now_ms)
{
	tr__client_verdict local;
	tr__client_verdict *vd = verdict != NULL ? verdict : &local;
	int rv;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || v == NULL || v->cache == NULL || v->node == NULL ||
	    (frame == NULL && len > 0))
		return refuse(
		    vd, TR__CC_BAD_REQUEST, TR_EINVAL, "invalid arguments");
	rv = check(out, vd, v, frame, len, now_ms);
	if (rv == TR_OK && (rv = record(vd, v, *out, now_ms)) != TR_OK) {
		tr__client_request_free(*out);
		*out = NULL;
	}
	return rv;
}

int tr__client_sign(uint8_t **frame, size_t *len, const void *key, size_t klen,
    const uint8_t *body, size_t blen)
{
	uint8_t *f;

	if (frame == NULL || len == NULL || (key == NULL && klen > 0) ||
	    (body == NULL && blen > 0) || blen > SIZE_MAX - TR__CLIENT_SIG_LEN)
		return TR_EINVAL;
	f = malloc(TR__CLIENT_SIG_LEN + blen);
	if (f == NULL)
		return TR_ENOMEM;
	if (tr__hmac_sha256(f, key, klen, body, blen) != TR_OK) {
		free(f);
		return TR_ENOMEM;
	}
	if (blen > 0)
		memcpy(f + TR__CLIENT_SIG_LEN, body, blen);
	*frame = f;
	*len = TR__CLIENT_SIG_LEN + blen;
	return TR_OK;
}

/* ------------------------------------------------------------------------ */
/* The endpoint                                                              */
/* ------------------------------------------------------------------------ */

/* What a context is doing; the owner of a slot changes with it. The aio
 * callback owns the slot in RECV, SLEEP and SEND (one operation is in
 * flight on its aio, and nng runs the callback once it ends); the
 * endpoint's actor owns it in CALL, from the START message the callback
 * posted until it sends the reply. Each hand-over is a release/acquire
 * pair inside the runtime's mailbox or nng's locks. */
enum { S_IDLE, S_RECV, S_SLEEP, S_SEND, S_CALL };

typedef struct slot {
	struct tr__client *c;
	uint32_t index;
	int state;
	nng_ctx ctx;
	nng_aio *aio;
	bool ctx_open;
	/* A call, from verification to its reply. */
	uint32_t gen; /* bumped per call: matches START to its call */
	Troupe__Wire__ClientRequest *req; /* until the actor takes it */
	uint64_t ref, mref;               /* the request and its monitor */
	uint32_t timeout_ms;
	char name[72]; /* to_name, printable, for messages */
	nng_pipe pipe; /* the connection of the request being handled, or
	                * NNG_PIPE_INITIALIZER */
} slot;

/* One admitted connection, in the endpoint's table (see conn_mu). */
typedef struct conn {
	uint32_t id;   /* nng_pipe_id of the pipe; 0 marks a free cell */
	uint32_t busy; /* its requests being verified, called or answered */
	nng_time last; /* when it was admitted, a request of it arrived, or
	                * a reply to it ended: what idleness counts from */
	bool closing;  /* closed as idle; it leaves at its REM_POST */
} conn;

/* Causes of the connection log lines. */
enum { CL_REFUSED, CL_IDLE, CL_COUNT };

/* START's payload. */
typedef struct start_msg {
	uint32_t index;
	uint32_t gen;
} start_msg;

struct tr__client {
	tr_runtime *rt;
	char *url;
	tr__nonce_cache *cache;
	tr__client_verifier v;
	size_t max_request;
	uint32_t max_calls;
	nng_socket sock;
	bool sock_open;
	nng_tls_config *tls;
	slot *slots;
	uint32_t nslots;
	tr_pid actor;     /* the endpoint's actor, or TR_PID_NONE */
	tr_msg *stop;     /* its STOP message, allocated at start */
	_Atomic int refs; /* tr__client_stop's and the actor's */

	/* The actor's own: the slots in CALL, for routing by reference. A
	 * scan, like the runtime's own table of pending requests. */
	uint32_t *active;
	uint32_t nactive;

	/* `stopping` is set under `mu` and read under it by the actor
	 * before it starts a send, so that once tr__client_stop has set it
	 * no new operation begins on any aio; callbacks read it without
	 * the lock (nng_aio_stop makes them harmless). */
	pthread_mutex_t mu;
	bool mu_init;
	_Atomic bool stopping;

	_Atomic uint32_t calls; /* calls in progress */
	_Atomic uint64_t refused[TR__CC_COUNT];
	_Atomic uint64_t answered, failed;
	tr__ratelog log[TR__CC_COUNT];

	/* The admitted connections: an open-addressing table of at least
	 * twice max_conns cells keyed by pipe id, so that it never fills
	 * and probes stay short. Written by the pipe notifications (nng's
	 * threads), the slot callbacks and the actor (a request's start
	 * and end) and the sweep, all under `conn_mu`, a leaf lock: no nng
	 * call is made while it is held. */
	pthread_mutex_t conn_mu;
	bool conn_mu_init;
	conn *conns;
	uint32_t conn_mask; /* cells - 1; cells is a power of two */
	uint32_t nconns;    /* entries, closing ones included */
	uint32_t max_conns;
	uint32_t idle_ms;
	nng_duration sweep_ms;
	nng_aio *sweep; /* the idle sweep's sleep */
	_Atomic uint64_t conns_refused, conns_idle_closed;
	tr__ratelog conn_log[CL_COUNT];
	/* For the log lines of the pipe notifications, which may come
	 * before `url` is known (tcp://...:0): the configured URL until
	 * then. Release/acquire: a reader of `url` sees its bytes. */
	char *cfg_url;
	_Atomic(const char *) log_url;
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	/* The client's timestamp is Unix time, so this must be the
	 * real-time clock, not a monotonic one. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* An encoded ClientReply in a new nng message: the actor's answer (err
 * TR_OK) or a refusal with its reason. When memory runs short it falls
 * back to a small TR_ENOMEM reply, as rep0 needs an answer to every
 * request (else the client waits for its resend timer); NULL if even
 * that failed. */
static nng_msg *reply_msg(
    int err, const char *why, uint32_t type, const void *data, size_t len)
{
	Troupe__Wire__ClientReply rep = TROUPE__WIRE__CLIENT_REPLY__INIT;
	nng_msg *m;
	size_t n;

	rep.error = err;
	if (err == TR_OK) {
		rep.type = type;
		rep.payload.data = (uint8_t *)data;
		rep.payload.len = len;
	} else {
		rep.message = (char *)why;
	}
	n = protobuf_c_message_get_packed_size(&rep.base);
	if (nng_msg_alloc(&m, n) != 0) {
		rep =
		    (Troupe__Wire__ClientReply)TROUPE__WIRE__CLIENT_REPLY__INIT;
		rep.error = TR_ENOMEM;
		rep.message = (char *)"out of memory on the node";
		n = protobuf_c_message_get_packed_size(&rep.base);
		if (nng_msg_alloc(&m, n) != 0)
			return NULL;
	}
	(void)protobuf_c_message_pack(&rep.base, nng_msg_body(m));
	return m;
}

static void conn_end(tr__client *c, slot *s);

/* Receives the next request; whatever request the slot handled before
 * has ended. */
static void slot_recv(slot *s)
{
	conn_end(s->c, s);
	s->state = S_RECV;
	nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(s->ctx, s->aio);
}

/* Sends `m` as the reply of the request `s` received; a NULL `m` (no
 * memory for any reply) leaves the client to its timeout and receives
 * again. Nothing may touch `s` after this: the callback may be running. */
static void slot_send(slot *s, nng_msg *m)
{
	if (m == NULL) {
		slot_recv(s);
		return;
	}
	s->state = S_SEND;
	nng_aio_set_msg(s->aio, m);
	/* Bounded: a client that sends requests but never reads its
	 * replies must not hold the context for ever. */
	nng_aio_set_timeout(s->aio, TR__CLIENT_SEND_MS);
	nng_ctx_send(s->ctx, s->aio);
}

/* Counts and logs a refusal. */
static void note_refusal(tr__client *c, const tr__client_verdict *vd)
{
	tr__client_cause k = vd->cause;

	if ((unsigned)k >= TR__CC_COUNT || k == TR__CC_OK)
		return;
	atomic_fetch_add_explicit(&c->refused[k], 1, memory_order_relaxed);
	tr__ratelogf(&c->log[k], c->rt, 0,
	    "client endpoint %s: refused a request (%s): %s", c->url,
	    cause_names[k], vd->why);
}

static void release_call(tr__client *c)
{
	atomic_fetch_sub_explicit(&c->calls, 1, memory_order_relaxed);
}

/* ---- connections ----------------------------------------------------------
 *
 * nng runs a socket's pipe notifications for each connection: ADD_PRE
 * once its SP header exchange is done and before the protocol sees it
 * (closing the pipe there refuses it), REM_POST once it is gone, also for
 * one refused in ADD_PRE (nng 1.5.2 runs every later event of a pipe
 * whose ADD_PRE ran). nng_close returns only after every REM_POST of the
 * socket has run. */

static uint32_t conn_home(const tr__client *c, uint32_t id)
{
	/* Pipe ids are consecutive: spread them (Fibonacci hashing). */
	return (id * 2654435761u) & c->conn_mask;
}

/* The cell of `id`, or UINT32_MAX. Under conn_mu. */
static uint32_t conn_find(const tr__client *c, uint32_t id)
{
	uint32_t i = conn_home(c, id);

	if (id == 0)
		return UINT32_MAX;
	while (c->conns[i].id != 0) {
		if (c->conns[i].id == id)
			return i;
		i = (i + 1) & c->conn_mask;
	}
	return UINT32_MAX;
}

/* Adds `id`; the caller checked that nconns < max_conns (so there is a
 * free cell). Under conn_mu. */
static void conn_insert(tr__client *c, uint32_t id, nng_time now)
{
	uint32_t i = conn_home(c, id);

	while (c->conns[i].id != 0)
		i = (i + 1) & c->conn_mask;
	c->conns[i] = (conn){.id = id, .last = now};
	c->nconns++;
}

/* Empties cell `i` and closes the gap (backward shift), so that lookups
 * need no tombstones. Under conn_mu. */
static void conn_remove_at(tr__client *c, uint32_t i)
{
	uint32_t j = i;

	for (;;) {
		uint32_t h;

		j = (j + 1) & c->conn_mask;
		if (c->conns[j].id == 0)
			break;
		h = conn_home(c, c->conns[j].id);
		/* The entry at j may move back to the hole at i if i is on
		 * its probe sequence, that is, no nearer to j than its home
		 * is (cyclically). */
		if (((j - h) & c->conn_mask) >= ((j - i) & c->conn_mask)) {
			c->conns[i] = c->conns[j];
			i = j;
		}
	}
	c->conns[i] = (conn){0};
	c->nconns--;
}

static const char *log_url(tr__client *c)
{
	/* acquire: pairs with the release store in listen_on. */
	return atomic_load_explicit(&c->log_url, memory_order_acquire);
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	tr__client *c = arg;
	int id = nng_pipe_id(p);
	uint32_t i, open = 0;
	bool refuse = false;

	if (id <= 0)
		return;
	pthread_mutex_lock(&c->conn_mu);
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		if (c->nconns >= c->max_conns) {
			refuse = true;
			open = c->nconns;
		} else {
			conn_insert(c, (uint32_t)id, nng_clock());
		}
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		/* Not found: one refused above. */
		if ((i = conn_find(c, (uint32_t)id)) != UINT32_MAX)
			conn_remove_at(c, i);
	}
	pthread_mutex_unlock(&c->conn_mu);
	if (!refuse)
		return;
	atomic_fetch_add_explicit(&c->conns_refused, 1, memory_order_relaxed);
	tr__ratelogf(&c->conn_log[CL_REFUSED], c->rt, 0,
	    "client endpoint %s: refused a connection: %u are open, the "
	    "limit (client_max_conns)",
	    log_url(c), open);
	/* Before the protocol has seen it: no request of it is read. */
	(void)nng_pipe_close(p);
}

/* A request arrived on `s` from pipe `p`: its connection is busy until
 * the request ends (conn_end). Returns false if the sweep is closing the
 * connection as idle: it found no request in progress, and this one must
 * not be served either, so that the client can send it again on a new
 * connection and be served there (as the request is then neither
 * recorded nor called). Slot callback. */
static bool conn_begin(tr__client *c, slot *s, nng_pipe p)
{
	uint32_t i;
	bool ok = true;

	s->pipe = p;
	pthread_mutex_lock(&c->conn_mu);
	if ((i = conn_find(c, (uint32_t)nng_pipe_id(p))) != UINT32_MAX) {
		c->conns[i].busy++;
		c->conns[i].last = nng_clock();
		ok = !c->conns[i].closing;
	}
	pthread_mutex_unlock(&c->conn_mu);
	return ok;
}

/* The request `s` handled has ended (its reply sent, dropped or never
 * made): its connection's idle time starts again. Not found: the
 * connection went meanwhile. */
static void conn_end(tr__client *c, slot *s)
{
	uint32_t i;
	int id = nng_pipe_id(s->pipe);

	if (id <= 0)
		return;
	s->pipe = (nng_pipe)NNG_PIPE_INITIALIZER;
	pthread_mutex_lock(&c->conn_mu);
	if ((i = conn_find(c, (uint32_t)id)) != UINT32_MAX) {
		if (c->conns[i].busy > 0)
			c->conns[i].busy--;
		c->conns[i].last = nng_clock();
	}
	pthread_mutex_unlock(&c->conn_mu);
}

/* The sweep's callback: closes the connections idle for idle_ms, then
 * sleeps again. The table is walked in batches so that no nng call is
 * made under conn_mu. */
static void sweep_cb(void *arg)
{
	enum { BATCH = 32 };
	tr__client *c = arg;
	nng_pipe batch[BATCH];
	uint32_t n, i = 0;
	nng_time now;
	int rv = nng_aio_result(c->sweep);

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED ||
	    atomic_load_explicit(&c->stopping, memory_order_relaxed))
		return;
	now = nng_clock();
	do {
		n = 0;
		pthread_mutex_lock(&c->conn_mu);
		for (; i <= c->conn_mask && n < BATCH; i++) {
			conn *e = &c->conns[i];

			/* `last` may be later than `now`: a request came
			 * since. */
			if (e->id == 0 || e->closing || e->busy > 0 ||
			    e->last + c->idle_ms > now)
				continue;
			/* It stays, and counts against max_conns, until
			 * nng has closed it (REM_POST). */
			e->closing = true;
			batch[n].id = e->id;
			n++;
		}
		pthread_mutex_unlock(&c->conn_mu);
		for (uint32_t k = 0; k < n; k++) {
			/* Counted before the close: its end (REM_POST, on an
			 * nng thread) may be seen before this thread goes
			 * on, and the count must not lag behind it. A pipe
			 * that is gone already leaves on its own. */
			atomic_fetch_add_explicit(
			    &c->conns_idle_closed, 1, memory_order_relaxed);
			if (nng_pipe_close(batch[k]) != 0) {
				atomic_fetch_sub_explicit(&c->conns_idle_closed,
				    1, memory_order_relaxed);
				continue;
			}
			tr__ratelogf(&c->conn_log[CL_IDLE], c->rt, 0,
			    "client endpoint %s: closed a connection idle "
			    "for %u ms (client_idle_ms)",
			    log_url(c), c->idle_ms);
		}
	} while (i <= c->conn_mask);
	nng_sleep_aio(c->sweep_ms, c->sweep);
}

/* A frame arrived on `s` (callback): refuse it at once, or hand it to the
 * actor. */
static void on_request(slot *s, nng_msg *m)
{
	tr__client *c = s->c;
	Troupe__Wire__ClientRequest *req = NULL;
	tr__client_verdict vd;
	uint64_t now = wall_ms();
	start_msg sm;
	tr_msg *tm;
	int rv;

	if (nng_msg_len(m) > c->max_request) {
		/* Not reached from a direct req peer (nng refuses such a
		 * frame on its length); kept so that no setting of the
		 * socket can let a larger one through. */
		rv = refuse(&vd, TR__CC_BAD_REQUEST, TR_EMSGSIZE,
		    "request larger than the endpoint's limit of %zu bytes",
		    c->max_request);
	} else {
		rv = check(
		    &req, &vd, &c->v, nng_msg_body(m), nng_msg_len(m), now);
	}
	/* The frame is not needed past the decoding: free it now rather
	 * than hold up to max_request bytes for the whole call. */
	nng_msg_free(m);
	if (rv == TR_OK) {
		/* Reserve a call before the nonce is recorded, so that a
		 * request refused as busy may be sent again as it is. */
		if (atomic_fetch_add_explicit(
		        &c->calls, 1, memory_order_relaxed) >= c->max_calls) {
			release_call(c);
			rv = refuse(&vd, TR__CC_BUSY, TR_EAGAIN,
			    "the endpoint is serving its limit of %u calls; "
			    "try again",
			    c->max_calls);
		} else if ((rv = record(&vd, &c->v, req, now)) != TR_OK) {
			release_call(c);
		}
		if (rv != TR_OK) {
			tr__client_request_free(req);
			req = NULL;
		}
	}
	if (rv != TR_OK) {
		note_refusal(c, &vd);
		slot_send(s, reply_msg(rv, vd.why, 0, NULL, 0));
		return;
	}
	s->req = req;
	s->gen++;
	s->state = S_CALL;
	printable(s->name, req->to_name);
	sm.index = s->index;
	sm.gen = s->gen;
	rv = tr_msg_alloc(&tm, c->rt, TR__CLIENT_T_START, sizeof(sm));
	if (rv == TR_OK) {
		memcpy(tm->data, &sm, sizeof(sm));
		/* From here the actor owns the slot. */
		rv = tr_post_msg(c->rt, c->actor, tm);
		if (rv == TR_OK)
			return;
		tr_msg_free(tm);
	}
	s->req = NULL;
	tr__client_request_free(req);
	release_call(c);
	atomic_fetch_add_explicit(&c->failed, 1, memory_order_relaxed);
	slot_send(s, reply_msg(rv,
	                 rv == TR_ENOMEM ? "out of memory on the node"
	                                 : "the node is stopping",
	                 0, NULL, 0));
}

/* The callback of every slot's aio: one operation of the slot ended. */
static void slot_cb(void *arg)
{
	slot *s = arg;
	tr__client *c = s->c;
	int rv = nng_aio_result(s->aio);
	nng_msg *m;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED ||
	    atomic_load_explicit(&c->stopping, memory_order_relaxed)) {
		/* tr__client_stop: leave the slot idle. A message still
		 * held is freed by the stop. */
		if (s->state == S_SEND && rv != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			nng_aio_set_msg(s->aio, NULL);
		}
		if (s->state == S_RECV && rv == 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			nng_aio_set_msg(s->aio, NULL);
		}
		s->state = S_IDLE;
		return;
	}
	switch (s->state) {
	case S_RECV:
		if (rv != 0) {
			/* Transient (e.g. NNG_ENOMEM): pause rather than
			 * spin, then receive again. */
			s->state = S_SLEEP;
			nng_sleep_aio(10, s->aio);
			return;
		}
		m = nng_aio_get_msg(s->aio);
		nng_aio_set_msg(s->aio, NULL);
		if (!conn_begin(c, s, nng_msg_get_pipe(m))) {
			/* Its connection is being closed as idle. */
			nng_msg_free(m);
			slot_recv(s);
			return;
		}
		on_request(s, m);
		return;
	case S_SEND:
		if (rv != 0) {
			/* Timed out on a client that does not read, or the
			 * pipe failed: a failed send leaves the message to
			 * us. */
			nng_msg_free(nng_aio_get_msg(s->aio));
			nng_aio_set_msg(s->aio, NULL);
		}
		slot_recv(s);
		return;
	case S_SLEEP:
	default:
		slot_recv(s);
		return;
	}
}

/* ---- the endpoint's actor -------------------------------------------------
 *
 * One actor makes every call, so that calls need no thread: it sends each
 * request with tr_request (the runtime arms the timeout) after monitoring
 * the callee (a callee that dies answers with DOWN at once, as tr_call
 * does), and turns whichever comes first into the reply. */

static void client_unref(tr__client *c);

static slot *active_find(tr__client *c, uint64_t ref, bool monitor)
{
	for (uint32_t i = 0; i < c->nactive; i++) {
		slot *s = &c->slots[c->active[i]];

		if ((monitor ? s->mref : s->ref) == ref)
			return s;
	}
	return NULL;
}

static void active_remove(tr__client *c, slot *s)
{
	for (uint32_t i = 0; i < c->nactive; i++) {
		if (c->active[i] == s->index) {
			c->active[i] = c->active[--c->nactive];
			return;
		}
	}
}

/* Ends the call of `s` with `m` as its reply (actor thread). */
static void finish(tr__client *c, slot *s, nng_msg *m, bool answered)
{
	s->ref = s->mref = 0;
	release_call(c);
	atomic_fetch_add_explicit(
	    answered ? &c->answered : &c->failed, 1, memory_order_relaxed);
	pthread_mutex_lock(&c->mu);
	if (!atomic_load_explicit(&c->stopping, memory_order_relaxed))
		slot_send(s, m);
	else if (m != NULL)
		nng_msg_free(m);
	pthread_mutex_unlock(&c->mu);
}

static void fail_call(tr__client *c, slot *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void fail_call(tr__client *c, slot *s, int err, const char *fmt, ...)
{
	char why[TR__CLIENT_WHY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(c, s, reply_msg(err, why, 0, NULL, 0), false);
}

static void start_call(tr__client *c, tr_ctx *ctx, const tr_msg *m)
{
	Troupe__Wire__ClientRequest *req;
	start_msg sm;
	slot *s;
	tr_pid pid;
	uint64_t ref, mref;
	int64_t timeout;
	int rv;

	if (m->size != sizeof(sm) || !tr_pid_is_none(m->sender))
		return; /* not the endpoint's own */
	memcpy(&sm, m->data, sizeof(sm));
	if (sm.index >= c->nslots)
		return;
	s = &c->slots[sm.index];
	if (s->gen != sm.gen || s->state != S_CALL || s->req == NULL)
		return;
	req = s->req;
	s->req = NULL;
	if (atomic_load_explicit(&c->stopping, memory_order_relaxed)) {
		tr__client_request_free(req);
		release_call(c);
		return;
	}
	timeout = req->timeout_ms == 0 ? TR__CLIENT_CALL_MS : req->timeout_ms;
	if (timeout > TR__CLIENT_CALL_MAX_MS)
		timeout = TR__CLIENT_CALL_MAX_MS;
	s->timeout_ms = (uint32_t)timeout;
	rv = tr_whereis(&pid, c->rt, req->to_name);
	if (rv != TR_OK) {
		tr__client_request_free(req);
		fail_call(c, s, rv, "no actor registered as \"%s\" (%s)",
		    s->name, tr_strerror(rv));
		return;
	}
	rv = tr_monitor(ctx, &mref, pid);
	if (rv == TR_OK) {
		rv = tr_request(ctx, &ref, pid, req->type, req->payload.data,
		    req->payload.len, timeout);
		if (rv != TR_OK)
			(void)tr_demonitor(ctx, mref);
	}
	tr__client_request_free(req);
	if (rv != TR_OK) {
		fail_call(c, s, rv, "call to \"%s\" failed: %s", s->name,
		    tr_strerror(rv));
		return;
	}
	s->ref = ref;
	s->mref = mref;
	c->active[c->nactive++] = s->index;
}

static int actor_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr__client *c = state;
	tr_exit_info info;
	slot *s;

	switch (m->type) {
	case TR__CLIENT_T_START:
		start_call(c, ctx, m);
		return 0;
	case TR__CLIENT_T_STOP:
		if (tr_pid_is_none(m->sender))
			tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	case TR_MSG_TIMEOUT:
		if (m->ref == 0 || (s = active_find(c, m->ref, false)) == NULL)
			return 0; /* the timeout of a call DOWN ended */
		active_remove(c, s);
		(void)tr_demonitor(ctx, s->mref);
		fail_call(c, s, TR_ETIMEDOUT,
		    "call to \"%s\" failed: no reply within %u ms", s->name,
		    s->timeout_ms);
		return 0;
	case TR_MSG_DOWN:
		if (m->size != sizeof(info) || m->ref == 0 ||
		    (s = active_find(c, m->ref, true)) == NULL)
			return 0;
		memcpy(&info, m->data, sizeof(info));
		active_remove(c, s);
		/* The request's timeout still fires later, and finds no
		 * call. */
		fail_call(c, s, TR_ENOPROC,
		    "call to \"%s\" failed: the actor exited before it "
		    "replied (reason %d)",
		    s->name, (int)info.reason);
		return 0;
	default:
		if (m->ref == 0 || (s = active_find(c, m->ref, false)) == NULL)
			return 0; /* not a reply we wait for */
		active_remove(c, s);
		(void)tr_demonitor(ctx, s->mref);
		if (tr_msg_type_local(m->type)) {
			/* Its payload may hold pointers: it must not leave
			 * the process. */
			fail_call(c, s, TR_EINVAL,
			    "\"%s\" replied with the local-only type 0x%08x",
			    s->name, m->type);
			return 0;
		}
		finish(c, s, reply_msg(TR_OK, "", m->type, m->data, m->size),
		    true);
		return 0;
	}
}

static void actor_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	client_unref(state);
}

static const tr_behaviour actor_b = {
    .name = "troupe client endpoint",
    .handle = actor_handle,
    .terminate = actor_terminate,
};

/* ---- life cycle -----------------------------------------------------------
 */

/* Frees what is left once neither tr__client_stop nor the actor needs it
 * (nng is closed by then). */
static void client_free(tr__client *c)
{
	for (uint32_t i = 0; c->slots != NULL && i < c->nslots; i++)
		tr__client_request_free(c->slots[i].req);
	free(c->slots);
	free(c->active);
	free(c->conns);
	if (c->conn_mu_init)
		pthread_mutex_destroy(&c->conn_mu);
	free(c->cfg_url);
	tr_msg_free(c->stop);
	tr__client_verifier_fini(&c->v);
	tr__nonce_cache_free(c->cache);
	if (c->mu_init)
		pthread_mutex_destroy(&c->mu);
	free(c->url);
	free(c);
}

static void client_unref(tr__client *c)
{
	/* acq_rel: the last one to drop its reference sees every write the
	 * other made before dropping its own. */
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		client_free(c);
}

/* Shuts the nng side down in any state of construction, tells the actor
 * to exit, and drops the caller's reference.
 *
 * Order matters. `stopping` is set first, under the lock the actor holds
 * while it starts a send, so no new send starts after it. nng_aio_stop
 * then cancels each aio's operation, waits for its callback, and makes
 * any later operation on the aio fail at once without a callback, so
 * from here no callback runs. Only then is the socket closed: closing it
 * while a context was inside nng_ctx_send crashes nng 1.5.2 (the
 * context's release wakes nng_close, which frees the socket while the
 * same release goes on to lock the socket's mutex). */
static void client_close(tr__client *c)
{
	if (c->mu_init) {
		pthread_mutex_lock(&c->mu);
		atomic_store_explicit(&c->stopping, true, memory_order_relaxed);
		pthread_mutex_unlock(&c->mu);
	} else {
		atomic_store_explicit(&c->stopping, true, memory_order_relaxed);
	}
	for (uint32_t i = 0; c->slots != NULL && i < c->nslots; i++)
		if (c->slots[i].aio != NULL)
			nng_aio_stop(c->slots[i].aio);
	if (c->sweep != NULL)
		nng_aio_stop(c->sweep);
	for (uint32_t i = 0; c->slots != NULL && i < c->nslots; i++) {
		slot *s = &c->slots[i];

		if (s->aio != NULL) {
			/* A send that nng_aio_stop refused to begin. */
			nng_msg_free(nng_aio_get_msg(s->aio));
			nng_aio_set_msg(s->aio, NULL);
		}
		if (s->ctx_open)
			nng_ctx_close(s->ctx);
		s->ctx_open = false;
	}
	/* Runs the REM_POST of every connection left: the table is still
	 * there for them. */
	if (c->sock_open)
		nng_close(c->sock);
	c->sock_open = false;
	if (c->sweep != NULL)
		nng_aio_free(c->sweep);
	c->sweep = NULL;
	for (uint32_t i = 0; c->slots != NULL && i < c->nslots; i++) {
		if (c->slots[i].aio != NULL)
			nng_aio_free(c->slots[i].aio);
		c->slots[i].aio = NULL;
	}
	if (c->tls != NULL)
		nng_tls_config_free(c->tls);
	c->tls = NULL;
	if (!tr_pid_is_none(c->actor)) {
		/* The actor drops its reference in terminate. */
		if (tr_post_msg(c->rt, c->actor, c->stop) == TR_OK)
			c->stop = NULL;
	}
	client_unref(c);
}

static bool is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

/* The server side of TLS: the node's certificate, no client certificate
 * asked for (requests are signed; see client.h). */
static int tls_setup(tr__client *c, nng_listener l, const tr__client_opts *o)
{
	int rv;

	if (o->tls_cert == NULL || o->tls_key == NULL)
		return TR_EINVAL;
	rv = nng_tls_config_alloc(&c->tls, NNG_TLS_MODE_SERVER);
	if (rv != 0)
		return tr__nng_err(rv);
	if ((rv = nng_tls_config_own_cert(
	         c->tls, o->tls_cert, o->tls_key, NULL)) != 0 ||
	    (rv = nng_tls_config_auth_mode(c->tls, NNG_TLS_AUTH_MODE_NONE)) !=
	        0)
		return rv == NNG_ENOMEM ? TR_ENOMEM : TR_EINVAL;
	return tr__nng_err(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c->tls));
}

static int listen_on(tr__client *c, const tr__client_opts *o)
{
	/* nng counts the request id that a req peer puts in front of the
	 * frame in a message's size (and 4 bytes more per device a request
	 * is relayed through, which leave that much less room). */
	size_t limit = c->max_request + 4;
	nng_listener l;
	char *s = NULL;
	int rv;

	if ((rv = tr__nng_err(nng_rep0_open(&c->sock))) != TR_OK)
		return rv;
	c->sock_open = true;
	/* Before the listener starts, so that every connection is seen. */
	if ((rv = tr__nng_err(nng_pipe_notify(
	         c->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, c))) != TR_OK ||
	    (rv = tr__nng_err(nng_pipe_notify(
	         c->sock, NNG_PIPE_EV_REM_POST, pipe_cb, c))) != TR_OK)
		return rv;
	/* nng 1.5.2 accepts messages of any size by default: bound both the
	 * socket and the listener, as every listener of troupe does. A
	 * longer frame is refused on its length header: the connection is
	 * closed before a byte of the frame is buffered. */
	if ((rv = tr__nng_err(nng_socket_set_size(
	         c->sock, NNG_OPT_RECVMAXSZ, limit))) != TR_OK ||
	    (rv = tr__nng_err(nng_listener_create(&l, c->sock, o->url))) !=
	        TR_OK ||
	    (rv = tr__nng_err(
	         nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, limit))) != TR_OK)
		return rv;
	if (is_tls(o->url) && (rv = tls_setup(c, l, o)) != TR_OK)
		return rv;
	if ((rv = tr__nng_err(nng_listener_start(l, 0))) != TR_OK)
		return rv;
	if (nng_listener_get_string(l, NNG_OPT_URL, &s) == 0) {
		c->url = strdup(s);
		nng_strfree(s);
	} else {
		c->url = strdup(o->url);
	}
	if (c->url == NULL)
		return TR_ENOMEM;
	/* release: pairs with the acquire in log_url. */
	atomic_store_explicit(&c->log_url, c->url, memory_order_release);
	return TR_OK;
}

int tr__client_start(tr__client **cp, tr_runtime *rt, const tr__client_opts *o)
{
	tr__client *c;
	int rv;

	if (cp == NULL)
		return TR_EINVAL;
	*cp = NULL;
	if (rt == NULL || o == NULL || o->url == NULL || o->cookie == NULL ||
	    o->cookie[0] == '\0' || o->node == NULL || o->node[0] == '\0' ||
	    o->max_calls > TR__CLIENT_MAX_CALLS_CAP ||
	    o->max_conns > TR__CLIENT_MAX_CONNS_CAP)
		return TR_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	c->rt = rt;
	atomic_init(&c->refs, 1);
	c->max_request =
	    o->max_request != 0 ? o->max_request : TR__CLIENT_MAX_REQUEST;
	c->max_calls = o->max_calls != 0 ? o->max_calls : TR__CLIENT_MAX_CALLS;
	c->nslots = c->max_calls + TR__CLIENT_SPARE;
	c->max_conns = o->max_conns != 0 ? o->max_conns : TR__CLIENT_MAX_CONNS;
	c->idle_ms = o->idle_ms != 0 ? o->idle_ms : TR__CLIENT_IDLE_MS;
	c->sweep_ms = (nng_duration)(c->idle_ms / 8);
	if (c->sweep_ms < 5)
		c->sweep_ms = 5;
	if (c->sweep_ms > 1000)
		c->sweep_ms = 1000;
	if (pthread_mutex_init(&c->mu, NULL) != 0) {
		free(c);
		return TR_ENOMEM;
	}
	c->mu_init = true;
	if (pthread_mutex_init(&c->conn_mu, NULL) != 0) {
		rv = TR_ENOMEM;
		goto fail;
	}
	c->conn_mu_init = true;
	c->conn_mask = 1;
	while (c->conn_mask + 1 < 2 * c->max_conns)
		c->conn_mask = 2 * c->conn_mask + 1;
	c->slots = calloc(c->nslots, sizeof(*c->slots));
	c->active = calloc(c->nslots, sizeof(*c->active));
	c->conns = calloc((size_t)c->conn_mask + 1, sizeof(*c->conns));
	c->cfg_url = strdup(o->url);
	if (c->slots == NULL || c->active == NULL || c->conns == NULL ||
	    c->cfg_url == NULL) {
		rv = TR_ENOMEM;
		goto fail;
	}
	atomic_init(&c->log_url, c->cfg_url);
	if ((rv = tr__nonce_cache_alloc(&c->cache, o->nonces)) != TR_OK ||
	    (rv = tr__client_verifier_init(
	         &c->v, o->cookie, o->node, o->window_ms, c->cache)) != TR_OK ||
	    (rv = tr_msg_alloc(&c->stop, rt, TR__CLIENT_T_STOP, 0)) != TR_OK)
		goto fail;

	/* The actor first: a request may arrive as soon as the listener
	 * runs. It holds a reference until its terminate. */
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	rv = tr_spawn(&c->actor, rt, &actor_b, c, NULL);
	if (rv != TR_OK) {
		atomic_fetch_sub_explicit(&c->refs, 1, memory_order_relaxed);
		c->actor = TR_PID_NONE;
		goto fail;
	}
	if ((rv = listen_on(c, o)) != TR_OK)
		goto fail;
	for (uint32_t i = 0; i < c->nslots; i++) {
		slot *s = &c->slots[i];

		s->c = c;
		s->index = i;
		if ((rv = tr__nng_err(nng_ctx_open(&s->ctx, c->sock))) != TR_OK)
			goto fail;
		s->ctx_open = true;
		if ((rv = tr__nng_err(nng_aio_alloc(&s->aio, slot_cb, s))) !=
		    TR_OK)
			goto fail;
	}
	if ((rv = tr__nng_err(nng_aio_alloc(&c->sweep, sweep_cb, c))) != TR_OK)
		goto fail;
	for (uint32_t i = 0; i < c->nslots; i++)
		slot_recv(&c->slots[i]);
	nng_sleep_aio(c->sweep_ms, c->sweep);
	*cp = c;
	return TR_OK;
fail:
	client_close(c);
	return rv;
}

const char *tr__client_url(const tr__client *c)
{
	return c->url;
}

int tr__client_stats_get(tr__client_stats *st, tr__client *c)
{
	if (st == NULL || c == NULL)
		return TR_EINVAL;
	memset(st, 0, sizeof(*st));
	for (int k = 0; k < TR__CC_COUNT; k++)
		st->refused[k] =
		    atomic_load_explicit(&c->refused[k], memory_order_relaxed);
	st->answered = atomic_load_explicit(&c->answered, memory_order_relaxed);
	st->failed = atomic_load_explicit(&c->failed, memory_order_relaxed);
	st->calls = atomic_load_explicit(&c->calls, memory_order_relaxed);
	st->conns_refused =
	    atomic_load_explicit(&c->conns_refused, memory_order_relaxed);
	st->conns_idle_closed =
	    atomic_load_explicit(&c->conns_idle_closed, memory_order_relaxed);
	pthread_mutex_lock(&c->conn_mu);
	st->conns = c->nconns;
	pthread_mutex_unlock(&c->conn_mu);
	return TR_OK;
}

void tr__client_stop(tr__client *c)
{
	if (c != NULL)
		client_close(c);
}
