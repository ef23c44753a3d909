/*
 * The handshake state machine (hs.h). One struct per handshake, in one
 * list; the pairs it committed in another. Everything here runs under the
 * caller's lock (the node lock), so nothing is atomic.
 */
#include "hs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"
#include "troupe.pb-c.h"

enum { HX_ACCEPT, HX_CONNECT };

enum {
	C_HELLO,     /* our Hello is out; waiting for the answer */
	C_AWAIT_ACK, /* our Proof is out; waiting for the Ack */
	C_CROSSED,   /* given up for the peer's own handshake to us */
	A_ANSWERED,  /* our answer is out; waiting for the Proof */
};

struct hx {
	struct hx *next;
	uint32_t id;
	int kind, state;
	uint32_t pipe; /* its inbound connection, once known */
	uint64_t born; /* hs->clock when it began */
	int64_t deadline;
	uint8_t mine[TR__HS_NONCE_LEN];   /* our challenge */
	uint8_t theirs[TR__HS_NONCE_LEN]; /* theirs */
	char name[TR_NODE_NAME_MAX + 1];  /* the peer, once it said */
	uint64_t inc;
	uint32_t minor;
	char *url; /* connect: where; accept: where we dialled back */
	char **urls;
	size_t nurls;
};

/* A committed pair, as far as handshakes are concerned: the node tells us
 * when it is over (tr__hs_pair_lost). */
struct pair {
	char name[TR_NODE_NAME_MAX + 1];
	uint64_t inc;
	uint32_t id;
	uint64_t born; /* hs->clock when it was committed */
};

struct tr__hs {
	char name[TR_NODE_NAME_MAX + 1];
	uint64_t inc;
	uint32_t minor;
	char **urls;
	size_t nurls;
	uint8_t key[TR__HS_KEY_LEN];
	uint32_t max_accepts, timeout_ms;
	int (*random)(void *, void *, size_t);
	void *arg;
	uint32_t next_id;
	uint64_t clock; /* orders handshakes and commits */
	struct hx *list;
	uint32_t naccepts, nconnects;
	struct pair *pairs;
	uint32_t npairs, cap_pairs;
};

/* ---- small helpers ------------------------------------------------------ */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void tr__hs_acts_clear(tr__hs_acts *a)
{
	for (uint32_t i = 0; i < a->n; i++) {
		free(a->v[i].frame);
		strv_free(a->v[i].urls, a->v[i].nurls);
	}
	a->n = 0;
}

static tr__hs_act *act(tr__hs_acts *out, tr__hs_kind kind, struct hx *h)
{
	/* A call emits a handful of actions at most; the cap is a bug guard
	 * (the last slot is overwritten rather than overflowed). */
	tr__hs_act *a = &out->v[out->n < TR__HS_ACTS ? out->n++ : out->n - 1];
	memset(a, 0, sizeof(*a));
	a->kind = kind;
	if (h != NULL) {
		a->hs = h->id;
		a->pipe = h->pipe;
		memcpy(a->name, h->name, sizeof(a->name));
		a->inc = h->inc;
	}
	return a;
}

static void refused(tr__hs_acts *out, struct hx *h, int cause, const char *why)
{
	tr__hs_act *a = act(out, TR__HS_REFUSED, h);
	a->rc = cause;
	a->why = why;
}

static bool name_ok(const char *s)
{
	if (s == NULL)
		return false;
	size_t l = strnlen(s, TR_NODE_NAME_MAX + 1);
	return l >= 1 && l <= TR_NODE_NAME_MAX;
}

static void put_id(tr__hmac *m, const char *name, uint64_t inc)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(inc >> (56 - 8 * i));
	tr__hmac_update(m, name, strlen(name) + 1);
	tr__hmac_update(m, b, sizeof(b));
}

/* MAC(label | nonce | id a | id b), or MAC(label | nonce | nonce2) when
 * `a` is NULL (the Ack). */
static void mac(const tr__hs *hs, uint8_t out[TR__SHA256_LEN],
    const char *label, const uint8_t *nonce, const char *a, uint64_t ia,
    const char *b, uint64_t ib, const uint8_t *nonce2)
{
	tr__hmac m;
	tr__hmac_init(&m, hs->key, sizeof(hs->key));
	tr__hmac_update(&m, label, strlen(label));
	tr__hmac_update(&m, nonce, TR__HS_NONCE_LEN);
	if (a != NULL) {
		put_id(&m, a, ia);
		put_id(&m, b, ib);
	} else {
		tr__hmac_update(&m, nonce2, TR__HS_NONCE_LEN);
	}
	tr__hmac_final(&m, out);
}

static struct hx *find_id(tr__hs *hs, uint32_t id)
{
	for (struct hx *h = hs->list; h != NULL; h = h->next)
		if (h->id == id)
			return h;
	return NULL;
}

static struct hx *find_pipe(tr__hs *hs, uint32_t pipe)
{
	for (struct hx *h = hs->list; pipe != 0 && h != NULL; h = h->next)
		if (h->pipe == pipe)
			return h;
	return NULL;
}

static struct pair *pair_of(tr__hs *hs, const char *name)
{
	for (uint32_t i = 0; i < hs->npairs; i++)
		if (strcmp(hs->pairs[i].name, name) == 0)
			return &hs->pairs[i];
	return NULL;
}

/* A connect of ours to `name` in `state`, if any. */
static struct hx *connect_to(
    tr__hs *hs, const char *name, uint64_t inc, int state)
{
	for (struct hx *h = hs->list; h != NULL; h = h->next)
		if (h->kind == HX_CONNECT && h->state == state &&
		    h->inc == inc && strcmp(h->name, name) == 0)
			return h;
	return NULL;
}

static void hx_free(tr__hs *hs, struct hx *h)
{
	for (struct hx **pp = &hs->list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	}
	if (h->kind == HX_ACCEPT)
		hs->naccepts--;
	else
		hs->nconnects--;
	free(h->url);
	strv_free(h->urls, h->nurls);
	tr__wipe(h, sizeof(*h));
	free(h);
}

/* Ends `h` without a commit. */
static void hx_close(tr__hs *hs, tr__hs_acts *out, struct hx *h)
{
	act(out, TR__HS_CLOSE, h);
	hx_free(hs, h);
}

/* Ends accept `h` after a HelloReject: its outbound connection closes once
 * the Reject is out, but its inbound one is left to the initiator to
 * close (on the Reject), or to the connection layer's deadline for
 * connections that never proved anything: closing it here could reach
 * the initiator before the Reject does, and fail a connect that was only
 * meant to give way. */
static void hx_refuse(tr__hs *hs, tr__hs_acts *out, struct hx *h)
{
	h->pipe = 0;
	hx_close(hs, out, h);
}

/* Ends connect `h` with `rc`: it is reported and over. */
static void give_way(tr__hs_acts *out, struct hx *h);

static void connect_done(
    tr__hs *hs, tr__hs_acts *out, struct hx *h, int rc, bool alias)
{
	tr__hs_act *a = act(out, TR__HS_DONE, h);
	a->rc = rc;
	a->alias = alias;
	hx_close(hs, out, h);
}

/* Connect `h` gives way to another handshake with the same node: its
 * connections close (after what was sent on them), and it waits, as
 * C_CROSSED, for a pair with that node to commit (DONE) or for its
 * deadline. */
static void give_way(tr__hs_acts *out, struct hx *h)
{
	act(out, TR__HS_CLOSE, h);
	h->pipe = 0;
	h->state = C_CROSSED;
}

/* Frames ---------------------------------------------------------------- */

static bool frame_out(const Troupe__Wire__Frame *f, uint8_t **buf, size_t *len)
{
	return tr__frame_encode(buf, len, f) == TR_OK;
}

static bool hello_frame(tr__hs *hs, const uint8_t *nonce, const uint8_t *proof,
    const uint8_t *echo, uint8_t **buf, size_t *len)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__Hello h = TROUPE__WIRE__HELLO__INIT;
	Troupe__Wire__NodeId id = TROUPE__WIRE__NODE_ID__INIT;
	id.name = hs->name;
	id.incarnation = hs->inc;
	h.major = TROUPE__WIRE__VERSION__PROTOCOL_MAJOR;
	h.minor = hs->minor;
	h.node = &id;
	h.n_listen = hs->nurls;
	h.listen = hs->urls;
	h.nonce.data = (uint8_t *)nonce;
	h.nonce.len = TR__HS_NONCE_LEN;
	if (proof != NULL) {
		h.proof.data = (uint8_t *)proof;
		h.proof.len = TR__SHA256_LEN;
		h.echo.data = (uint8_t *)echo;
		h.echo.len = TR__HS_NONCE_LEN;
	}
	f.body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f.hello = &h;
	return frame_out(&f, buf, len);
}

static bool mac_frame(
    int body, const uint8_t *proof, uint8_t **buf, size_t *len)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__Proof p = TROUPE__WIRE__PROOF__INIT;
	Troupe__Wire__Ack a = TROUPE__WIRE__ACK__INIT;
	if (body == TROUPE__WIRE__FRAME__BODY_PROOF) {
		p.proof.data = (uint8_t *)proof;
		p.proof.len = TR__SHA256_LEN;
		f.proof = &p;
	} else {
		a.proof.data = (uint8_t *)proof;
		a.proof.len = TR__SHA256_LEN;
		f.ack = &a;
	}
	f.body_case = body;
	return frame_out(&f, buf, len);
}

/* Sends a HelloReject on h's outbound connection. */
static void reject(tr__hs_acts *out, struct hx *h, int code, const char *why)
{
	Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
	Troupe__Wire__HelloReject r = TROUPE__WIRE__HELLO_REJECT__INIT;
	r.reason = (char *)why;
	r.code = code;
	f.body_case = TROUPE__WIRE__FRAME__BODY_REJECT;
	f.reject = &r;
	uint8_t *buf;
	size_t len;
	if (!frame_out(&f, &buf, &len))
		return; /* out of memory: the peer's deadline tells it */
	tr__hs_act *a = act(out, TR__HS_SEND, h);
	a->frame = buf;
	a->len = len;
}

static bool keep_urls(struct hx *h, const Troupe__Wire__Hello *m)
{
	size_t n =
	    m->n_listen < TR__HS_MAX_URLS ? m->n_listen : TR__HS_MAX_URLS;
	h->urls = calloc(n + 1, sizeof(char *));
	if (h->urls == NULL)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *u = m->listen[i];
		if (u == NULL ||
		    strnlen(u, TR__HS_MAX_URL + 1) > TR__HS_MAX_URL)
			continue;
		if ((h->urls[h->nurls] = strdup(u)) == NULL)
			return false;
		h->nurls++;
	}
	return true;
}

/* Which of the peer's URLs to dial back: the first with the scheme of the
 * listener its Hello came in by (ipc to ipc, tls to tls), else its first. */
static const char *dial_back(const tr__hs *hs, const struct hx *h, int listener)
{
	if (h->nurls == 0)
		return NULL;
	if (listener >= 0 && (size_t)listener < hs->nurls) {
		const char *l = hs->urls[listener];
		const char *colon = strstr(l, "://");
		size_t sl = colon != NULL ? (size_t)(colon - l) + 3 : 0;
		for (size_t i = 0; sl != 0 && i < h->nurls; i++)
			if (strncmp(h->urls[i], l, sl) == 0)
				return h->urls[i];
	}
	return h->urls[0];
}

/* ---- the opening Hello: an accept --------------------------------------- */

static void accept_evict_oldest(tr__hs *hs, tr__hs_acts *out)
{
	struct hx *old = NULL;
	for (struct hx *h = hs->list; h != NULL; h = h->next)
		if (h->kind == HX_ACCEPT &&
		    (old == NULL || h->deadline <= old->deadline))
			old = h;
	if (old != NULL) {
		refused(out, old, TR__HS_R_FULL, "too many handshakes at once");
		hx_close(hs, out, old);
	}
}

static void hello_open(tr__hs *hs, tr__hs_acts *out, int64_t now, uint32_t pipe,
    int listener, const Troupe__Wire__Hello *m)
{
	const char *name = m->node->name;
	if (strcmp(name, hs->name) == 0) {
		refused(out, NULL, TR__HS_R_SELF, "a node with our own name");
		return;
	}
	/* The oldest gives way: an attacker must keep opening connections
	 * faster than honest handshakes finish to keep anyone out. */
	if (hs->naccepts >= hs->max_accepts)
		accept_evict_oldest(hs, out);
	struct hx *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return;
	h->id = ++hs->next_id;
	h->born = ++hs->clock;
	h->kind = HX_ACCEPT;
	h->state = A_ANSWERED;
	h->pipe = pipe;
	h->deadline = now + hs->timeout_ms;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->inc = m->node->incarnation;
	h->minor = m->minor;
	memcpy(h->theirs, m->nonce.data, TR__HS_NONCE_LEN);
	h->next = hs->list;
	hs->list = h;
	hs->naccepts++;
	const char *url = NULL;
	uint8_t proof[TR__SHA256_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	if (keep_urls(h, m))
		url = dial_back(hs, h, listener);
	if (url != NULL)
		h->url = strdup(url);
	if (h->url == NULL ||
	    hs->random(hs->arg, h->mine, sizeof(h->mine)) != TR_OK) {
		hx_free(hs, h);
		return;
	}
	mac(hs, proof, "troupe2-hello", h->theirs, h->name, h->inc, hs->name,
	    hs->inc, NULL);
	if (!hello_frame(hs, h->mine, proof, h->theirs, &buf, &len)) {
		hx_free(hs, h);
		return;
	}
	tr__hs_act *a = act(out, TR__HS_DIAL, h);
	a->url = h->url;
	a->frame = buf;
	a->len = len;
}

/* ---- the answer: our connect learns who answered ------------------------ */

static void hello_answer(
    tr__hs *hs, tr__hs_acts *out, uint32_t pipe, const Troupe__Wire__Hello *m)
{
	/* The echo names the connect; only the proof says it is real. A
	 * wrong echo is anyone's: it changes nothing. */
	struct hx *h = NULL;
	if (m->echo.len == TR__HS_NONCE_LEN)
		for (struct hx *k = hs->list; k != NULL && h == NULL;
		     k = k->next)
			if (k->kind == HX_CONNECT && k->state == C_HELLO &&
			    k->pipe == 0 &&
			    memcmp(k->mine, m->echo.data, TR__HS_NONCE_LEN) ==
			        0)
				h = k;
	if (h == NULL) {
		refused(out, NULL, TR__HS_R_MALFORMED,
		    "an answer to no handshake of ours");
		act(out, TR__HS_CLOSE, NULL)->pipe = pipe;
		return;
	}
	const char *name = m->node->name;
	uint64_t inc = m->node->incarnation;
	uint8_t want[TR__SHA256_LEN];
	mac(hs, want, "troupe2-hello", h->mine, hs->name, hs->inc, name, inc,
	    NULL);
	h->pipe = pipe;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->inc = inc;
	h->minor = m->minor;
	if (!tr__ct_equal(want, m->proof.data, sizeof(want))) {
		/* Whoever knew our nonce answered without the cookie: the
		 * node at that URL has another one. */
		refused(out, h, TR__HS_R_PROOF,
		    "its handshake proof is wrong (another cookie?)");
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED,
		    "handshake proof refused");
		connect_done(hs, out, h, TR_ECLOSED, false);
		return;
	}
	memcpy(h->theirs, m->nonce.data, TR__HS_NONCE_LEN);
	if (strcmp(name, hs->name) == 0) {
		refused(out, h, TR__HS_R_SELF, "we dialled ourselves");
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED,
		    "same name");
		connect_done(hs, out, h, TR_ECLOSED, false);
		return;
	}
	struct pair *p = pair_of(hs, name);
	if (p != NULL && p->inc == inc) {
		/* Up already, under another URL: nothing to do. */
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_CONNECTED,
		    "already connected");
		connect_done(hs, out, h, TR_OK, true);
		return;
	}
	if (p != NULL && p->inc > inc) {
		refused(out, h, TR__HS_R_STALE,
		    "an older incarnation of a node that is up");
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED,
		    "a newer incarnation of this node is connected");
		connect_done(hs, out, h, TR_ECLOSED, false);
		return;
	}
	if (!keep_urls(h, m)) {
		connect_done(hs, out, h, TR_ENOMEM, false);
		return;
	}
	/* Another connect of ours to the same node has its Proof out: that
	 * one will commit; this one waits for it. */
	if (connect_to(hs, name, inc, C_AWAIT_ACK) != NULL) {
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_CONNECTED,
		    "a handshake with this node is under way");
		give_way(out, h);
		return;
	}
	/* Crossed: it is dialling us too (its Hello came, we answered). The
	 * handshake of the lower name wins; if that is its, ours waits for
	 * its to commit. */
	for (struct hx *k = hs->list; k != NULL; k = k->next) {
		if (k->kind == HX_ACCEPT && k->inc == inc &&
		    strcmp(k->name, name) == 0 && strcmp(hs->name, name) > 0) {
			reject(out, h,
			    TROUPE__WIRE__REJECT_CODE__REJECT_CROSSED,
			    "crossed handshakes: yours wins");
			give_way(out, h);
			return;
		}
	}
	uint8_t proof[TR__SHA256_LEN];
	uint8_t *buf;
	size_t len;
	mac(hs, proof, "troupe2-proof", h->theirs, name, inc, hs->name, hs->inc,
	    NULL);
	if (!mac_frame(TROUPE__WIRE__FRAME__BODY_PROOF, proof, &buf, &len)) {
		connect_done(hs, out, h, TR_ENOMEM, false);
		return;
	}
	act(out, TR__HS_TRUST, h);
	tr__hs_act *a = act(out, TR__HS_SEND, h);
	a->frame = buf;
	a->len = len;
	h->state = C_AWAIT_ACK;
}

/* ---- commits --------------------------------------------------------------
 */

/* Commits `h`: a TRUST and an UP (with `ack`, taken) for the node, which
 * replaces the pair it had with the same name. Connects that gave way to
 * this one (crossed) or that wait for the same node are done. */
static void commit(
    tr__hs *hs, tr__hs_acts *out, struct hx *h, uint8_t *ack, size_t acklen)
{
	struct pair *p = pair_of(hs, h->name);
	uint32_t old = p != NULL ? p->id : 0;
	if (p == NULL) {
		if (hs->npairs == hs->cap_pairs) {
			uint32_t c = hs->cap_pairs ? hs->cap_pairs * 2 : 8;
			struct pair *v = realloc(hs->pairs, c * sizeof(*v));
			if (v == NULL) {
				free(ack);
				hx_close(hs, out, h);
				return;
			}
			hs->pairs = v;
			hs->cap_pairs = c;
		}
		p = &hs->pairs[hs->npairs++];
		snprintf(p->name, sizeof(p->name), "%s", h->name);
	}
	p->inc = h->inc;
	p->id = h->id;
	p->born = ++hs->clock;
	if (h->kind == HX_ACCEPT)
		act(out, TR__HS_TRUST, h);
	tr__hs_act *a = act(out, TR__HS_UP, h);
	a->replaces = old;
	a->minor = h->minor;
	a->frame = ack;
	a->len = acklen;
	a->urls = h->urls;
	a->nurls = h->nurls;
	h->urls = NULL;
	h->nurls = 0;
	if (h->kind == HX_CONNECT) {
		tr__hs_act *d = act(out, TR__HS_DONE, h);
		d->rc = TR_OK;
	}
	/* The handshake is over; the pair lives on in the node. */
	hx_free(hs, h);
	struct hx *nx;
	for (struct hx *k = hs->list; k != NULL; k = nx) {
		nx = k->next;
		if (k->kind == HX_CONNECT && k->state != C_HELLO &&
		    strcmp(k->name, p->name) == 0) {
			tr__hs_act *d = act(out, TR__HS_DONE, k);
			d->rc = TR_OK;
			hx_close(hs, out, k);
		}
	}
}

static void proof_in(
    tr__hs *hs, tr__hs_acts *out, struct hx *h, const Troupe__Wire__Proof *m)
{
	uint8_t want[TR__SHA256_LEN];
	mac(hs, want, "troupe2-proof", h->mine, hs->name, hs->inc, h->name,
	    h->inc, NULL);
	if (h->kind != HX_ACCEPT || h->state != A_ANSWERED ||
	    m->proof.len != sizeof(want) ||
	    !tr__ct_equal(want, m->proof.data, sizeof(want))) {
		refused(out, h, TR__HS_R_PROOF,
		    "its handshake proof is wrong (another cookie?)");
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED,
		    "handshake proof refused");
		hx_refuse(hs, out, h);
		return;
	}
	struct pair *p = pair_of(hs, h->name);
	if (p != NULL && p->inc > h->inc) {
		refused(out, h, TR__HS_R_STALE,
		    "an older incarnation of a node that is up");
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED,
		    "a newer incarnation of this node is connected");
		hx_refuse(hs, out, h);
		return;
	}
	/* A pair with it committed after this accept began: this is the
	 * leftover of a crossing, whose initiator has committed that pair
	 * too and given this one up (its Proof was on the way). A node that
	 * lost us and starts over dials after the pair was made. */
	if (p != NULL && p->inc == h->inc && p->born > h->born) {
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_CONNECTED,
		    "already connected");
		hx_refuse(hs, out, h);
		return;
	}
	/* Crossed, and ours (the lower name's) wins: ours has its Proof out
	 * already, so the peer will commit ours. */
	if (strcmp(hs->name, h->name) < 0 &&
	    connect_to(hs, h->name, h->inc, C_AWAIT_ACK) != NULL) {
		reject(out, h, TROUPE__WIRE__REJECT_CODE__REJECT_CROSSED,
		    "crossed handshakes: mine wins");
		hx_refuse(hs, out, h);
		return;
	}
	uint8_t proof[TR__SHA256_LEN];
	uint8_t *buf = NULL;
	size_t len = 0;
	mac(hs, proof, "troupe2-ack", h->theirs, NULL, 0, NULL, 0, h->mine);
	if (!mac_frame(TROUPE__WIRE__FRAME__BODY_ACK, proof, &buf, &len)) {
		hx_refuse(hs, out, h);
		return;
	}
	commit(hs, out, h, buf, len);
}

static void ack_in(
    tr__hs *hs, tr__hs_acts *out, struct hx *h, const Troupe__Wire__Ack *m)
{
	uint8_t want[TR__SHA256_LEN];
	mac(hs, want, "troupe2-ack", h->mine, NULL, 0, NULL, 0, h->theirs);
	if (h->kind != HX_CONNECT || h->state != C_AWAIT_ACK ||
	    m->proof.len != sizeof(want) ||
	    !tr__ct_equal(want, m->proof.data, sizeof(want))) {
		refused(out, h, TR__HS_R_PROOF, "a wrong Ack");
		connect_done(hs, out, h, TR_ECLOSED, false);
		return;
	}
	commit(hs, out, h, NULL, 0);
}

static void reject_in(tr__hs *hs, tr__hs_acts *out, struct hx *h,
    const Troupe__Wire__HelloReject *m)
{
	if (h->kind == HX_ACCEPT) {
		/* It gave up its own connect: crossed (ours wins) or
		 * connected already, or it refused our proof. */
		if (m->code == TROUPE__WIRE__REJECT_CODE__REJECT_REFUSED)
			refused(out, h, TR__HS_R_PROOF,
			    m->reason != NULL ? "it refused us" : "refused");
		struct hx *w = connect_to(hs, h->name, h->inc, C_CROSSED);
		hx_close(hs, out, h);
		/* A connect that gave way to this one learns how it ended. */
		if (w != NULL) {
			struct pair *p = pair_of(hs, w->name);
			connect_done(hs, out, w,
			    p != NULL && p->inc == w->inc ? TR_OK : TR_ECLOSED,
			    false);
		}
		return;
	}
	switch (m->code) {
	case TROUPE__WIRE__REJECT_CODE__REJECT_CROSSED:
		/* Its handshake to us wins; ours waits for it to commit. */
		if (h->state == C_AWAIT_ACK)
			give_way(out, h);
		return;
	case TROUPE__WIRE__REJECT_CODE__REJECT_CONNECTED:
		connect_done(hs, out, h,
		    pair_of(hs, h->name) != NULL ? TR_OK : TR_ECLOSED, false);
		return;
	default:
		refused(out, h, TR__HS_R_PROOF, "it refused us");
		connect_done(hs, out, h, TR_ECLOSED, false);
		return;
	}
}

/* ---- the entry points ------------------------------------------------------
 */

int tr__hs_alloc(tr__hs **hsp, const tr__hs_cfg *cfg)
{
	if (hsp == NULL || cfg == NULL || !name_ok(cfg->name) ||
	    cfg->random == NULL)
		return TR_EINVAL;
	tr__hs *hs = calloc(1, sizeof(*hs));
	if (hs == NULL)
		return TR_ENOMEM;
	snprintf(hs->name, sizeof(hs->name), "%s", cfg->name);
	hs->inc = cfg->inc;
	hs->minor = cfg->minor;
	memcpy(hs->key, cfg->key, sizeof(hs->key));
	hs->max_accepts = cfg->max_accepts ? cfg->max_accepts : TR__HS_ACCEPTS;
	hs->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : TR__HS_TIMEOUT_MS;
	hs->random = cfg->random;
	hs->arg = cfg->arg;
	hs->urls = calloc(cfg->nurls + 1, sizeof(char *));
	if (hs->urls == NULL) {
		free(hs);
		return TR_ENOMEM;
	}
	for (size_t i = 0; i < cfg->nurls; i++) {
		if ((hs->urls[i] = strdup(cfg->urls[i])) == NULL) {
			tr__hs_free(hs);
			return TR_ENOMEM;
		}
		hs->nurls++;
	}
	*hsp = hs;
	return TR_OK;
}

void tr__hs_free(tr__hs *hs)
{
	if (hs == NULL)
		return;
	while (hs->list != NULL)
		hx_free(hs, hs->list);
	strv_free(hs->urls, hs->nurls);
	free(hs->pairs);
	tr__wipe(hs->key, sizeof(hs->key));
	free(hs);
}

bool tr__hs_frame(tr__hs *hs, tr__hs_acts *out, int64_t now_ms, uint32_t pipe,
    int listener, const uint8_t *buf, size_t len)
{
	/* Handshake frames are small; anything else from a connection that
	 * is not a pair's is not ours to decode. */
	if (len == 0 || (buf[0] != 0x0a && buf[0] != 0x12 && buf[0] != 0x1a &&
	                    buf[0] != 0x2a))
		return false;
	Troupe__Wire__Frame *f =
	    tr__frame_decode(buf, len, tr__decode_budget(len));
	if (f == NULL) {
		refused(out, NULL, TR__HS_R_MALFORMED, "an undecodable frame");
		return true;
	}
	struct hx *h = find_pipe(hs, pipe);
	switch (f->body_case) {
	case TROUPE__WIRE__FRAME__BODY_HELLO: {
		const Troupe__Wire__Hello *m = f->hello;
		if (m->major != TROUPE__WIRE__VERSION__PROTOCOL_MAJOR) {
			refused(out, NULL, TR__HS_R_VERSION,
			    "a peer of another protocol major");
			break;
		}
		if (h != NULL || m->node == NULL || !name_ok(m->node->name) ||
		    m->nonce.len != TR__HS_NONCE_LEN ||
		    (m->proof.len != 0 && m->proof.len != TR__SHA256_LEN)) {
			refused(
			    out, h, TR__HS_R_MALFORMED, "a malformed Hello");
			break;
		}
		if (m->proof.len == 0)
			hello_open(hs, out, now_ms, pipe, listener, m);
		else
			hello_answer(hs, out, pipe, m);
		break;
	}
	case TROUPE__WIRE__FRAME__BODY_PROOF:
		if (h == NULL)
			refused(out, NULL, TR__HS_R_MALFORMED,
			    "a Proof out of place");
		else
			proof_in(hs, out, h, f->proof);
		break;
	case TROUPE__WIRE__FRAME__BODY_ACK:
		if (h == NULL)
			refused(out, NULL, TR__HS_R_MALFORMED,
			    "an Ack out of place");
		else
			ack_in(hs, out, h, f->ack);
		break;
	case TROUPE__WIRE__FRAME__BODY_REJECT:
		if (h != NULL)
			reject_in(hs, out, h, f->reject);
		break;
	default:
		tr__frame_free(f);
		return false;
	}
	tr__frame_free(f);
	return true;
}

int tr__hs_connect(
    tr__hs *hs, tr__hs_acts *out, int64_t now_ms, const char *url, uint32_t *id)
{
	(void)now_ms;
	struct hx *h = calloc(1, sizeof(*h));
	if (h == NULL)
		return TR_ENOMEM;
	h->kind = HX_CONNECT;
	h->state = C_HELLO;
	h->deadline = INT64_MAX; /* the caller's; see tr__hs_cancel */
	h->url = strdup(url);
	int rc = h->url != NULL ? hs->random(hs->arg, h->mine, sizeof(h->mine))
	                        : TR_ENOMEM;
	uint8_t *buf = NULL;
	size_t len = 0;
	if (rc == TR_OK && !hello_frame(hs, h->mine, NULL, NULL, &buf, &len))
		rc = TR_ENOMEM;
	if (rc != TR_OK) {
		free(h->url);
		free(h);
		return rc;
	}
	h->id = ++hs->next_id;
	h->born = ++hs->clock;
	h->next = hs->list;
	hs->list = h;
	hs->nconnects++;
	tr__hs_act *a = act(out, TR__HS_SEND, h);
	a->frame = buf;
	a->len = len;
	*id = h->id;
	return TR_OK;
}

void tr__hs_cancel(tr__hs *hs, tr__hs_acts *out, uint32_t id)
{
	struct hx *h = find_id(hs, id);
	if (h != NULL && h->kind == HX_CONNECT)
		hx_close(hs, out, h);
}

void tr__hs_out_lost(tr__hs *hs, tr__hs_acts *out, uint32_t id)
{
	struct hx *h = find_id(hs, id);
	if (h == NULL)
		return;
	if (h->kind == HX_CONNECT)
		connect_done(hs, out, h, TR_ECLOSED, false);
	else
		hx_close(hs, out, h);
}

void tr__hs_pipe_lost(tr__hs *hs, tr__hs_acts *out, uint32_t pipe)
{
	struct hx *h = find_pipe(hs, pipe);
	if (h == NULL)
		return;
	h->pipe = 0; /* nothing left to close there */
	if (h->kind == HX_CONNECT && h->state == C_CROSSED)
		return; /* it waits for the other pair, not for this one */
	tr__hs_out_lost(hs, out, h->id);
}

void tr__hs_pair_lost(tr__hs *hs, uint32_t id)
{
	for (uint32_t i = 0; i < hs->npairs; i++) {
		if (hs->pairs[i].id == id) {
			hs->pairs[i] = hs->pairs[--hs->npairs];
			return;
		}
	}
}

bool tr__hs_tick(tr__hs *hs, tr__hs_acts *out, int64_t now_ms)
{
	struct hx *nx;
	for (struct hx *h = hs->list; h != NULL; h = nx) {
		nx = h->next;
		if (out->n + 3 > TR__HS_ACTS)
			return true; /* the rest after these */
		/* A connect's own deadline is its caller's; once answered it
		 * gets the handshake's too. */
		if (h->kind == HX_CONNECT && h->state != C_HELLO &&
		    h->deadline == INT64_MAX)
			h->deadline = now_ms + hs->timeout_ms;
		if (now_ms < h->deadline)
			continue;
		refused(out, h, TR__HS_R_TIMEOUT, "the handshake timed out");
		if (h->kind == HX_CONNECT)
			connect_done(hs, out, h, TR_ETIMEDOUT, false);
		else
			hx_close(hs, out, h);
	}
	return false;
}

void tr__hs_counts(
    const tr__hs *hs, uint32_t *accepts, uint32_t *connects, uint32_t *pairs)
{
	if (accepts != NULL)
		*accepts = hs->naccepts;
	if (connects != NULL)
		*connects = hs->nconnects;
	if (pairs != NULL)
		*pairs = hs->npairs;
}
