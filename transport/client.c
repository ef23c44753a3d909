/*
 * The client endpoint: signed one-shot requests from programs that are not
 * nodes. See client.h for the contract and docs/client.md for a client.
 */
#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#include "codec.h"
#include "crypto.h"
#include "nng_err.h"

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

static const char why_short[] = "frame shorter than its 32-byte signature";
static const char why_sig[] =
    "bad signature (wrong cookie, or the request was altered)";
static const char why_decode[] = "request body does not decode";
static const char why_major[] = "protocol major version not supported";
static const char why_time[] =
    "timestamp_ms outside the node's window (clock skew or an old request)";
static const char why_nonce[] = "nonce shorter than 16 bytes";
static const char why_replay[] = "replayed request (nonce seen already)";
static const char why_full[] = "too many recent requests; try again later";

const char *tr__client_refusal(int err)
{
	switch (err) {
	case TR_OK:
		return "";
	case TR_EINVAL:
		return "malformed or badly signed request";
	case TR_ENOTSUP:
		return why_major;
	case TR_ETIMEDOUT:
		return why_time;
	case TR_EEXIST:
		return why_replay;
	case TR_EAGAIN:
		return why_full;
	default:
		return tr_strerror(err);
	}
}

/* tr__client_verify, with the precise reason of a refusal for the reply's
 * message (several refusals share TR_EINVAL). */
static int verify(const uint8_t *frame, size_t len, const char *cookie,
    uint64_t now, uint32_t window, tr__nonce_cache *cache,
    Troupe__Wire__ClientRequest **out, const char **why)
{
	uint8_t mac[TR__SHA256_LEN];
	const uint8_t *body;
	size_t blen;
	Troupe__Wire__ClientRequest *req;
	uint64_t ts, expiry;
	int rv;

	*out = NULL;
	if (len < TR__CLIENT_SIG_LEN) {
		*why = why_short;
		return TR_EINVAL;
	}
	body = frame + TR__CLIENT_SIG_LEN;
	blen = len - TR__CLIENT_SIG_LEN;
	/* Authenticate before parsing: nobody without the cookie gets to
	 * exercise the decoder or fill the replay cache. */
	tr__hmac_sha256(mac, cookie, strlen(cookie), body, blen);
	if (!tr__ct_equal(mac, frame, TR__CLIENT_SIG_LEN)) {
		*why = why_sig;
		return TR_EINVAL;
	}
	req = tr__client_request_decode(body, blen, tr__decode_budget(blen));
	if (req == NULL) {
		*why = why_decode;
		return TR_EINVAL;
	}
	if (req->major != TROUPE__WIRE__CLIENT_VERSION__CLIENT_MAJOR) {
		*why = why_major;
		rv = TR_ENOTSUP;
		goto refuse;
	}
	ts = req->timestamp_ms;
	if ((now > window && ts < now - window) ||
	    (ts > now && ts - now > window)) {
		*why = why_time;
		rv = TR_ETIMEDOUT;
		goto refuse;
	}
	if (req->nonce.len < TR__CLIENT_NONCE_MIN) {
		*why = why_nonce;
		rv = TR_EINVAL;
		goto refuse;
	}
	/* A copy of this request is accepted by the timestamp check until
	 * now passes ts + window; the nonce must be remembered exactly that
	 * long (ts + window <= now + 2 * window, so memory stays bounded by
	 * the request rate over twice the window). */
	expiry = ts + window + 1;
	rv = tr__nonce_cache_insert(
	    cache, req->nonce.data, req->nonce.len, expiry, now);
	if (rv != TR_OK) {
		*why = rv == TR_EEXIST ? why_replay : why_full;
		goto refuse;
	}
	*why = "";
	*out = req;
	return TR_OK;
refuse:
	tr__client_request_free(req);
	return rv;
}

int tr__client_verify(const uint8_t *frame, size_t len, const char *cookie,
    uint64_t now_ms, uint32_t window_ms, tr__nonce_cache *cache,
    Troupe__Wire__ClientRequest **out)
{
	const char *why;

	if (out != NULL)
		*out = NULL;
	if ((frame == NULL && len > 0) || cookie == NULL || cache == NULL ||
	    out == NULL)
		return TR_EINVAL;
	return verify(frame, len, cookie, now_ms, window_ms, cache, out, &why);
}

int tr__client_sign(uint8_t **frame, size_t *len, const char *cookie,
    const uint8_t *body, size_t blen)
{
	uint8_t *f;

	if (frame == NULL || len == NULL || cookie == NULL ||
	    (body == NULL && blen > 0) || blen > SIZE_MAX - TR__CLIENT_SIG_LEN)
		return TR_EINVAL;
	f = malloc(TR__CLIENT_SIG_LEN + blen);
	if (f == NULL)
		return TR_ENOMEM;
	tr__hmac_sha256(f, cookie, strlen(cookie), body, blen);
	if (blen > 0)
		memcpy(f + TR__CLIENT_SIG_LEN, body, blen);
	*frame = f;
	*len = TR__CLIENT_SIG_LEN + blen;
	return TR_OK;
}

/* ------------------------------------------------------------------------ */
/* The endpoint                                                              */
/* ------------------------------------------------------------------------ */

/* One nng context and the thread that serves it. The thread waits on its
 * own aio with nng_aio_wait rather than working in an aio callback: a call
 * into an actor can take up to its timeout, and a callback runs on one of
 * nng's few shared threads, which must never wait that long. With one
 * thread per context, TR__CLIENT_WORKERS slow calls can be in progress at
 * once while nng keeps receiving for the others. */
typedef struct worker {
	struct tr__client *c;
	nng_ctx ctx;
	nng_aio *aio;
	pthread_t thr;
	bool ctx_open; /* ctx was opened (for closing) */
	bool running;  /* the thread was created (for joining) */
} worker;

struct tr__client {
	tr_runtime *rt;
	char *cookie;
	char *url;
	uint32_t window_ms;
	tr__nonce_cache *cache;
	nng_socket sock;
	bool open;
	worker w[TR__CLIENT_WORKERS];
};

static uint64_t wall_ms(void)
{
	struct timespec ts;

	/* The client's timestamp is Unix time, so this must be the
	 * real-time clock, not a monotonic one. */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Calls the actor a verified request names. On TR_OK `*reply` is the
 * actor's answer (the caller frees it); otherwise `msg` holds a reason. */
static int call(tr__client *c, const Troupe__Wire__ClientRequest *req,
    tr_msg **reply, char *msg, size_t cap)
{
	tr_pid pid;
	int64_t timeout;
	int rv;

	if (req->to_name == NULL || req->to_name[0] == '\0') {
		snprintf(msg, cap, "to_name is empty");
		return TR_EINVAL;
	}
	rv = tr_whereis(&pid, c->rt, req->to_name);
	if (rv != TR_OK) {
		snprintf(msg, cap, "no actor registered as \"%.*s\" (%s)",
		    TR_NAME_MAX, req->to_name, tr_strerror(rv));
		return rv;
	}
	timeout = req->timeout_ms == 0 ? TR__CLIENT_CALL_MS : req->timeout_ms;
	if (timeout > TR__CLIENT_CALL_MAX_MS)
		timeout = TR__CLIENT_CALL_MAX_MS;
	rv = tr_call(reply, c->rt, pid, req->type, req->payload.data,
	    req->payload.len, timeout);
	if (rv != TR_OK)
		snprintf(msg, cap, "call to \"%.*s\" failed: %s", TR_NAME_MAX,
		    req->to_name, tr_strerror(rv));
	return rv;
}

/* The reply when the real one cannot be encoded: a ClientReply with
 * error TR_ENOMEM, packed into a caller's buffer, so that it needs no
 * allocation but nng's. */
static size_t pack_enomem(uint8_t *buf, size_t cap)
{
	Troupe__Wire__ClientReply rep = TROUPE__WIRE__CLIENT_REPLY__INIT;

	rep.error = TR_ENOMEM;
	rep.message = (char *)"out of memory on the node";
	if (protobuf_c_message_get_packed_size(&rep.base) > cap)
		return 0;
	return protobuf_c_message_pack(&rep.base, buf);
}

/* Turns the request in `m` into its reply, in place. rep0 needs an answer
 * to every request (else the client waits for its resend timer), so when
 * memory runs out it still tries a short TR_ENOMEM reply; returns false
 * if even that failed and `m` is left empty. */
static bool serve(tr__client *c, nng_msg *m)
{
	Troupe__Wire__ClientRequest *req = NULL;
	Troupe__Wire__ClientReply rep = TROUPE__WIRE__CLIENT_REPLY__INIT;
	tr_msg *answer = NULL;
	char text[TR_NAME_MAX + 128];
	uint8_t small[64];
	const char *why;
	uint8_t *buf = NULL;
	size_t len;
	int rv;

	rv = verify(nng_msg_body(m), nng_msg_len(m), c->cookie, wall_ms(),
	    c->window_ms, c->cache, &req, &why);
	if (rv == TR_OK) {
		rv = call(c, req, &answer, text, sizeof(text));
		why = text;
	}
	rep.error = rv;
	if (rv == TR_OK) {
		rep.type = answer->type;
		rep.payload.data = answer->data;
		rep.payload.len = answer->size;
	} else {
		rep.message = (char *)why;
	}
	rv = tr__client_reply_encode(&buf, &len, &rep);
	tr_msg_free(answer);
	tr__client_request_free(req);
	nng_msg_clear(m);
	if (rv == TR_OK) {
		rv = nng_msg_append(m, buf, len);
		free(buf);
		if (rv == 0)
			return true;
	}
	len = pack_enomem(small, sizeof(small));
	return len > 0 && nng_msg_append(m, small, len) == 0;
}

static void *work(void *arg)
{
	worker *w = arg;
	nng_msg *m;
	int rv;

	for (;;) {
		nng_ctx_recv(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			break; /* tr__client_stop closed the context */
		if (rv != 0) {
			/* Transient (e.g. NNG_ENOMEM): pause rather than
			 * spin, then receive again. */
			nng_msleep(10);
			continue;
		}
		m = nng_aio_get_msg(w->aio);
		(void)serve(w->c, m);
		nng_aio_set_msg(w->aio, m);
		nng_ctx_send(w->ctx, w->aio);
		nng_aio_wait(w->aio);
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			/* A failed send leaves the message with us. */
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				break;
		}
	}
	return NULL;
}

/* Frees a client in any state of construction.
 *
 * The contexts are closed first and the socket only once every worker has
 * been joined. Closing the socket while a worker is still inside
 * nng_ctx_send crashes nng 1.5.2: the worker's release of its context
 * wakes nng_close, which frees the socket while the same release goes on
 * to lock the socket's mutex (nng panics, "pthread_mutex_lock: Invalid
 * argument"). Closing a context instead is safe at any time: its pending
 * receive or send fails with NNG_ECLOSED, as does any later operation on
 * it, so each worker ends its loop (after a call in progress, if any,
 * returns) and the joins below end. */
static void client_free(tr__client *c)
{
	for (size_t i = 0; i < TR__CLIENT_WORKERS; i++)
		if (c->w[i].ctx_open)
			nng_ctx_close(c->w[i].ctx);
	for (size_t i = 0; i < TR__CLIENT_WORKERS; i++)
		if (c->w[i].running)
			pthread_join(c->w[i].thr, NULL);
	if (c->open)
		nng_close(c->sock);
	for (size_t i = 0; i < TR__CLIENT_WORKERS; i++)
		if (c->w[i].aio != NULL)
			nng_aio_free(c->w[i].aio);
	tr__nonce_cache_free(c->cache);
	if (c->cookie != NULL) {
		tr__wipe(c->cookie, strlen(c->cookie));
		free(c->cookie);
	}
	free(c->url);
	free(c);
}

int tr__client_start(tr__client **cp, tr_runtime *rt, const char *url,
    const char *cookie, uint32_t window_ms, size_t max_frame)
{
	tr__client *c;
	nng_listener l;
	char *s = NULL;
	int rv;

	if (cp == NULL)
		return TR_EINVAL;
	*cp = NULL;
	if (rt == NULL || url == NULL || cookie == NULL || cookie[0] == '\0')
		return TR_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	c->rt = rt;
	c->window_ms = window_ms != 0 ? window_ms : TR__CLIENT_WINDOW_MS;
	if (max_frame == 0)
		max_frame = 1u << 20;
	c->cookie = strdup(cookie);
	if (c->cookie == NULL) {
		rv = TR_ENOMEM;
		goto fail;
	}
	rv = tr__nonce_cache_alloc(&c->cache, TR__CLIENT_NONCES);
	if (rv != TR_OK)
		goto fail;

	if ((rv = tr__nng_err(nng_rep0_open(&c->sock))) != TR_OK)
		goto fail;
	c->open = true;
	/* nng 1.5.2 accepts messages of any size by default: bound both the
	 * socket and the listener, as every listener of troupe does. */
	if ((rv = tr__nng_err(nng_socket_set_size(
	         c->sock, NNG_OPT_RECVMAXSZ, max_frame))) != TR_OK ||
	    (rv = tr__nng_err(nng_listener_create(&l, c->sock, url))) !=
	        TR_OK ||
	    (rv = tr__nng_err(nng_listener_set_size(
	         l, NNG_OPT_RECVMAXSZ, max_frame))) != TR_OK ||
	    (rv = tr__nng_err(nng_listener_start(l, 0))) != TR_OK)
		goto fail;
	if (nng_listener_get_string(l, NNG_OPT_URL, &s) == 0) {
		c->url = strdup(s);
		nng_strfree(s);
	} else {
		c->url = strdup(url);
	}
	if (c->url == NULL) {
		rv = TR_ENOMEM;
		goto fail;
	}

	for (size_t i = 0; i < TR__CLIENT_WORKERS; i++) {
		worker *w = &c->w[i];

		w->c = c;
		if ((rv = tr__nng_err(nng_ctx_open(&w->ctx, c->sock))) != TR_OK)
			goto fail;
		w->ctx_open = true;
		if ((rv = tr__nng_err(nng_aio_alloc(&w->aio, NULL, NULL))) !=
		    TR_OK)
			goto fail;
		if (pthread_create(&w->thr, NULL, work, w) != 0) {
			rv = TR_ENOMEM;
			goto fail;
		}
		w->running = true;
	}
	*cp = c;
	return TR_OK;
fail:
	client_free(c);
	return rv;
}

const char *tr__client_url(const tr__client *c)
{
	return c->url;
}

void tr__client_stop(tr__client *c)
{
	if (c != NULL)
		client_free(c);
}
