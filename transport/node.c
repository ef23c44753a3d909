/*
 * The node: identity, peers, handshake, heartbeat, remote pids, and the
 * runtime's distribution hook (runtime/dist.h). docs/distribution.md is
 * the design; this file says why where the code alone would not.
 *
 * Threads:
 * - Any thread that sends to a remote pid runs node_send: it encodes an
 *   Envelope straight into the peer's open batch under the peer's lock.
 * - nng's task threads read the inbound connections (sp.c: push0/pull0
 *   over nng's streams); frame_in decodes every inbound frame, runs the
 *   handshake and injects envelopes into mailboxes. sp.c hands over one
 *   frame at a time, in the order of its connection: per-pair order holds
 *   on the receiving side.
 * - A flushing thread writes its peer's next frame itself when the
 *   connection is idle and takes it at once (send_direct); otherwise the
 *   peer's connection writes queued frames out in order in the background.
 * - The ticker (our own thread) sends heartbeats, declares silent peers
 *   down and tears dead peers down: closing connections and telling local
 *   actors (noconnection) happens there, never inside an nng callback,
 *   because freeing a connection waits for its callbacks.
 *
 * Lifetime: a peer struct is never freed while the node runs. Its table
 * entry keeps pointing at it after it went down (state PS_DOWN), so a
 * stale pid finds a dead peer and fails with TR_ENOPROC, and a sender that
 * loaded the pointer just before the peer died never touches freed
 * memory. Indices are never reused.
 */
#include "node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "client.h"
#include "codec.h"
#include "crypto.h"
#include "dist.h"
#include "nng_err.h"
#include "rt.h"
#include "sp.h"
#include "troupe.pb-c.h"
#include "troupe/node.h"

#define TABLE_CAP 65536u       /* node indices; never reused */
#define STALE_NODE 0xffffffffu /* index of pids of our old selves */
#define DEFAULT_TICK_MS 1000u
#define DEFAULT_QUEUE (16u * 1024u * 1024u)
#define NAME_MAX_ TR_NODE_NAME_MAX

typedef Troupe__Wire__Envelope Env;
typedef Troupe__Wire__Pid WPid;

enum { PS_KNOWN, PS_HS, PS_UP, PS_DOWN };

struct xlink {
	tr_pid loc, rem;
};

/* A monitor across a peer. `mine`: the local actor `loc` watches the
 * remote `rem`; otherwise the remote `rem` watches the local `loc`. Refs
 * are only unique per node, so the direction is part of the key. */
struct xmon {
	uint64_t ref;
	tr_pid loc, rem;
	bool mine;
};

struct conn;

/* What a message must share with the open run to join it (Envelope.more):
 * name is NULL for a send to a pid, the registered name for a named
 * send. */
struct runkey {
	tr_pid to, from;
	uint32_t type;
	const char *name;
};

struct peer {
	struct peer *next; /* in the node's list, reap list or graveyard */
	uint32_t idx;
	char name[NAME_MAX_ + 1];
	uint64_t inc;
	bool was_up; /* for the teardown: NODEDOWN is owed */
	int64_t hs_deadline;
	uint8_t nonce[TR__NODE_NONCE_LEN]; /* our challenge to it */
	uint8_t their[TR__NODE_NONCE_LEN]; /* its challenge to us */
	bool have_their;
	uint32_t minor;    /* its protocol minor, from its Hello */
	struct conn *conn; /* a tr_node_connect waiting for it */
	char **listen;     /* where it listens (from its Hello) */
	size_t nlisten;
	uint32_t inp; /* its authenticated connection to us; 0: none */
	bool has_push;
	/* Our push0 connection to it. Teardown frees it only once the send
	 * slot is free for good (see slot_release_locked and teardown). */
	tr__sp_out *out;
	nng_tls_config *tls;
	_Atomic int64_t last_rx;
	_Atomic uint32_t dirty; /* an open batch awaits a flush */

	/* Peer lock: the state, the open batch, the queue of frames and the
	 * links and monitors that cross this peer. Taken by every send to
	 * the peer for as long as it takes to encode one envelope: the one
	 * lock on the remote send path (nng takes several per frame). */
	pthread_mutex_t lock;
	int state;
	nng_msg *batch;
	uint32_t nenv;       /* messages in it */
	uint32_t batch_hint; /* bytes of the last batch: the next one's
	                      * first reservation */
	/* The open run: the batch's last envelope, which further messages
	 * with the same key join as entries of its `more` field. run_off is
	 * where its tag starts in the batch, run_len its body's length. */
	bool run_open;
	uint32_t run_off, run_len;
	tr_pid run_to, run_from;
	uint32_t run_type;
	bool run_named;
	char run_name[TR_NAME_MAX + 1];
	nng_msg **q;
	uint32_t qhead, qn, qcap;
	size_t queued; /* bytes in q and in flight */
	size_t inflight;
	bool busy; /* the send slot: a frame is between kick and nng */
	pthread_cond_t idle; /* `busy` fell on a peer that is down */
	struct xlink *links;
	uint32_t nlinks, cap_links;
	struct xmon *mons;
	uint32_t nmons, cap_mons;
};

/* A tr_node_connect in progress. */
struct conn {
	struct conn *next;
	char *url;
	uint8_t nonce[TR__NODE_NONCE_LEN];
	tr__sp_out *out;
	nng_tls_config *tls;
	bool sent;    /* our Hello went out on `sock` */
	bool adopted; /* the socket now belongs to `peer` */
	struct peer *peer;
	bool done;
	int result;
	char name[NAME_MAX_ + 1];
};

struct pipe_ent {
	uint32_t id;
	struct peer *p;
	bool auth;
};

struct nmon {
	tr_pid pid;
	char *name; /* NULL: every node */
};

struct beh {
	char *name;
	const tr_behaviour *b;
};

/* What the runtime holds as the dist arg. It outlives the node (a stopped
 * node leaves it behind, see tr_node_stop), because a sender may have
 * loaded the ops just before they were detached. */
struct husk {
	_Atomic uint32_t closed;
	_Atomic uint32_t active;
	struct tr_node *n;
	struct husk *next;
};

struct tr_node {
	tr_runtime *rt;
	struct husk *husk;
	char name[NAME_MAX_ + 1];
	uint64_t inc;
	char *cookie;
	size_t cookielen;
	uint32_t tick_ms;
	size_t max_frame, max_queue;
	char **urls;
	size_t nurls;
	char *tls_ca, *tls_cert, *tls_key; /* PEM text */
	nng_tls_config *tls_srv;
	tr__sp_in *in; /* our pull0 listeners and their connections */
	tr__client *client;
	_Atomic(struct peer *) *table;
	_Atomic uint32_t top;
	_Atomic uint64_t n_unauth, n_bad, n_refused;
	/* The peer of the last named send: a stream of named sends to one
	 * node then skips the node lock and the walk of the peer list.
	 * Peers are never freed while the node runs, and their names never
	 * change, so a stale entry is only a wrong guess, caught by the name
	 * comparison or by the state check under the peer lock. */
	_Atomic(struct peer *) named_peer;

	/* Node lock: the peer list, the pipe map, connects, node monitors and
	 * behaviours. Taken once per received frame (to find the pipe's
	 * peer), on handshakes, node up/down and name lookups; never per
	 * message sent. Order: node lock before a peer lock. */
	pthread_mutex_t lock;
	pthread_cond_t cv; /* the ticker's wake-up and connect waiters */
	bool stopping;
	uint32_t next_idx;
	struct peer *peers, *reap, *grave;
	struct pipe_ent *pipes;
	uint32_t npipes, cap_pipes;
	struct conn *conns;
	struct nmon *nmons;
	uint32_t nnmons, cap_nmons;
	struct beh *behs;
	uint32_t nbehs, cap_behs;
	pthread_t ticker;
	bool ticker_started;
};

/* Stopped nodes' husks: reachable, so not leaks; a few dozen bytes per
 * node ever stopped. Husk lock: taken once per tr_node_stop. */
static pthread_mutex_t husk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct husk *husks;

/* ---- small helpers ------------------------------------------------------ */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void logf_(struct tr_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(struct tr_node *n, const char *fmt, ...)
{
	char line[512];
	int k = snprintf(line, sizeof(line), "NODE %s: ", n->name);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	va_end(ap);
	tr_log(n->rt, line);
}

static bool grow(void **v, uint32_t n, uint32_t *cap, size_t elem)
{
	if (n < *cap)
		return true;
	uint32_t c = *cap ? *cap * 2 : 8;
	void *p = realloc(*v, (size_t)c * elem);
	if (p == NULL)
		return false;
	*v = p;
	*cap = c;
	return true;
}

static bool is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

static bool name_ok(const char *s)
{
	if (s == NULL)
		return false;
	size_t l = strlen(s);
	return l >= 1 && l <= NAME_MAX_;
}

/* The handshake MACs. Each name is followed by its NUL byte, so that the
 * concatenation of two names is unambiguous. */
static void mac(struct tr_node *n, uint8_t out[TR__SHA256_LEN],
    const char *label, const uint8_t *nonce, const char *a, const char *b)
{
	tr__hmac h;
	tr__hmac_init(&h, n->cookie, n->cookielen);
	tr__hmac_update(&h, label, strlen(label));
	tr__hmac_update(&h, nonce, TR__NODE_NONCE_LEN);
	tr__hmac_update(&h, a, strlen(a) + 1);
	tr__hmac_update(&h, b, strlen(b) + 1);
	tr__hmac_final(&h, out);
}

static struct peer *peer_at(struct tr_node *n, uint32_t idx)
{
	if (idx == 0 || idx >= TABLE_CAP)
		return NULL;
	/* Acquire: pairs with the release store in peer_new, so the peer's
	 * fields (name, lock) are initialised. */
	return atomic_load_explicit(&n->table[idx], memory_order_acquire);
}

static bool on_our_sched(struct tr_node *n)
{
	return tr__current != NULL && tr__current->rt == n->rt;
}

/* ---- the node table ----------------------------------------------------- */

/* A new entry (node lock held). NULL when out of memory or indices. */
static struct peer *peer_new(
    struct tr_node *n, const char *name, uint64_t inc, int state)
{
	if (n->next_idx + 1 >= TABLE_CAP)
		return NULL;
	struct peer *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->idx = ++n->next_idx;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->inc = inc;
	p->state = state;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	atomic_init(&p->last_rx, now_ms());
	atomic_init(&p->dirty, 0);
	/* Release: pairs with the acquire load in peer_at. */
	atomic_store_explicit(&n->table[p->idx], p, memory_order_release);
	atomic_store_explicit(&n->top, p->idx, memory_order_release);
	p->next = n->peers;
	n->peers = p;
	return p;
}

static void list_remove(struct peer **head, struct peer *p)
{
	for (struct peer **pp = head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			p->next = NULL;
			return;
		}
	}
}

/* The connected or connecting entry for a name (node lock held). */
static struct peer *peer_active(struct tr_node *n, const char *name)
{
	for (struct peer *p = n->peers; p != NULL; p = p->next)
		if (p->state != PS_KNOWN && strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static struct peer *peer_up(struct tr_node *n, const char *name)
{
	struct peer *p = peer_active(n, name);
	return p != NULL && p->state == PS_UP ? p : NULL;
}

/* The index for pids of node (name, inc), making a KNOWN entry for a
 * node we have only heard of (a pid of a third node in an envelope).
 * 0 when there is no room. */
static uint32_t known_index(struct tr_node *n, const char *name, uint64_t inc)
{
	if (!name_ok(name))
		return 0;
	pthread_mutex_lock(&n->lock);
	uint32_t idx = 0;
	for (struct peer *p = n->peers; p != NULL; p = p->next) {
		if (p->inc == inc && strcmp(p->name, name) == 0) {
			idx = p->idx;
			break;
		}
	}
	if (idx == 0) {
		struct peer *p = peer_new(n, name, inc, PS_KNOWN);
		if (p != NULL)
			idx = p->idx;
	}
	pthread_mutex_unlock(&n->lock);
	return idx;
}

/* ---- pids on the wire --------------------------------------------------- */

/* A pid of the sending node itself goes out with an empty node name and
 * incarnation 0: the receiver knows who sent the frame (the pipe is bound
 * to one authenticated peer), so the name would only cost bytes, strlen
 * and strcmp on both sides, in every envelope. Pids of the receiver and of
 * third nodes carry their names. A pid that cannot be named (a node we
 * never knew) goes out with gen 0, which every receiver reads as no pid.
 * See the Pid message in troupe.proto. */
static void pid_out(struct tr_node *n, tr_pid pid, WPid *w)
{
	troupe__wire__pid__init(w);
	if (pid.node != 0) {
		struct peer *p = peer_at(n, pid.node);
		if (p == NULL)
			return; /* gen 0: nobody */
		w->node = p->name;
		w->incarnation = p->inc;
	}
	w->slot = pid.slot;
	w->gen = pid.gen;
}

static tr_pid pid_in(struct tr_node *n, struct peer *from, const WPid *w)
{
	if (w == NULL || w->gen == 0 || w->node == NULL)
		return TR_PID_NONE;
	tr_pid r = {0, w->slot, w->gen};
	if (w->node[0] == '\0' ||
	    (w->incarnation == from->inc && strcmp(w->node, from->name) == 0))
		r.node = from->idx;
	else if (strcmp(w->node, n->name) == 0)
		r.node = w->incarnation == n->inc ? 0 : STALE_NODE;
	else if ((r.node = known_index(n, w->node, w->incarnation)) == 0)
		return TR_PID_NONE;
	return r;
}

/* Whether `w` is a pid of this node (this incarnation). An empty name is
 * the sender's own node, never ours. */
static bool pid_local(struct tr_node *n, const WPid *w, tr_pid *out)
{
	if (w == NULL || w->gen == 0 || w->node == NULL ||
	    w->incarnation != n->inc || strcmp(w->node, n->name) != 0)
		return false;
	*out = (tr_pid){0, w->slot, w->gen};
	return true;
}

/* ---- crossing links and monitors (peer lock held) ----------------------- */

static void xlink_add(struct peer *p, tr_pid loc, tr_pid rem)
{
	for (uint32_t i = 0; i < p->nlinks; i++)
		if (tr_pid_eq(p->links[i].loc, loc) &&
		    tr_pid_eq(p->links[i].rem, rem))
			return;
	/* Out of memory the link goes unrecorded: it then misses its
	 * noconnection, which is the best that can be done. */
	if (grow((void **)&p->links, p->nlinks, &p->cap_links,
	        sizeof(*p->links)))
		p->links[p->nlinks++] = (struct xlink){loc, rem};
}

static void xlink_del(struct peer *p, tr_pid loc, tr_pid rem)
{
	for (uint32_t i = 0; i < p->nlinks; i++) {
		if (tr_pid_eq(p->links[i].loc, loc) &&
		    tr_pid_eq(p->links[i].rem, rem)) {
			p->links[i] = p->links[--p->nlinks];
			return;
		}
	}
}

static void xmon_add(
    struct peer *p, uint64_t ref, tr_pid loc, tr_pid rem, bool mine)
{
	if (grow((void **)&p->mons, p->nmons, &p->cap_mons, sizeof(*p->mons)))
		p->mons[p->nmons++] = (struct xmon){ref, loc, rem, mine};
}

static void xmon_del(struct peer *p, uint64_t ref, bool mine)
{
	for (uint32_t i = 0; i < p->nmons; i++) {
		if (p->mons[i].ref == ref && p->mons[i].mine == mine) {
			p->mons[i] = p->mons[--p->nmons];
			return;
		}
	}
}

/* ---- the outgoing queue ------------------------------------------------- */

static bool q_push(struct peer *p, nng_msg *m)
{
	if (p->qn == p->qcap) {
		uint32_t c = p->qcap ? p->qcap * 2 : 16;
		nng_msg **v = malloc((size_t)c * sizeof(*v));
		if (v == NULL)
			return false;
		for (uint32_t i = 0; i < p->qn; i++)
			v[i] = p->q[(p->qhead + i) % p->qcap];
		free(p->q);
		p->q = v;
		p->qhead = 0;
		p->qcap = c;
	}
	p->q[(p->qhead + p->qn) % p->qcap] = m;
	p->qn++;
	p->queued += nng_msg_len(m);
	return true;
}

/* Closes the open batch into a Frame and queues it (peer lock held). */
static void cut(struct tr_node *n, struct peer *p)
{
	nng_msg *b = p->batch;
	p->run_open = false;
	if (b == NULL)
		return;
	p->batch = NULL;
	p->nenv = 0;
	size_t bl = nng_msg_len(b);
	p->batch_hint = (uint32_t)(bl < TR__NODE_BATCH_BYTES + 512
	                               ? bl
	                               : TR__NODE_BATCH_BYTES + 512);
	uint8_t h[11];
	h[0] = 0x22; /* Frame.batch: field 4, length-delimited */
	size_t hl = 1 + tr__varint_put(h + 1, nng_msg_len(b));
	if (nng_msg_insert(b, h, hl) != 0 || !q_push(p, b)) {
		nng_msg_free(b);
		logf_(n, "out of memory: a batch to %s was lost", p->name);
	}
}

/* The next frame to hand to the send aio, if it is idle (lock held). */
static nng_msg *kick_locked(struct peer *p)
{
	if (p->busy || p->qn == 0 || p->state == PS_DOWN || !p->has_push)
		return NULL;
	nng_msg *m = p->q[p->qhead];
	p->qhead = (p->qhead + 1) % p->qcap;
	p->qn--;
	p->busy = true;
	p->inflight = nng_msg_len(m);
	return m;
}

/* Frees the send slot (lock held). The holder touches neither aio after
 * this, so on a peer that is down it wakes teardown, which waits for the
 * slot before it frees them. */
static void slot_release_locked(struct peer *p)
{
	p->inflight = 0;
	p->busy = false;
	if (p->state == PS_DOWN)
		pthread_cond_broadcast(&p->idle);
}

/* Never called with the peer lock held: sp.c may report a failed frame
 * on the calling thread. */
static void start_send(struct peer *p, nng_msg *m)
{
	tr__sp_out_send(p->out, m, true);
}

/* The end of a frame taken by kick_locked (sp.c's report). */
static void send_cb(void *arg, int rv)
{
	struct peer *p = arg;
	pthread_mutex_lock(&p->lock);
	p->queued -= p->inflight;
	slot_release_locked(p);
	nng_msg *next = rv == 0 ? kick_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	if (next != NULL)
		start_send(p, next);
}

/* Sends `m`, taken by kick_locked (so `busy` is set and no other frame of
 * this peer can go out meanwhile), on the calling thread when the
 * connection is idle and the socket takes it at once: a round trip then
 * crosses no thread of ours or nng's on the way out, and no report comes
 * back. Otherwise the connection writes it in the background and send_cb
 * reports it. Order is kept: the next frame is only taken once this one
 * is written. Not with the peer lock held (see start_send). */
static void send_direct(struct peer *p, nng_msg *m)
{
	while (m != NULL) {
		size_t len = nng_msg_len(m);
		if (!tr__sp_out_send_now(p->out, m))
			return; /* send_cb reports it */
		pthread_mutex_lock(&p->lock);
		p->queued -= len;
		slot_release_locked(p);
		m = kick_locked(p);
		pthread_mutex_unlock(&p->lock);
	}
}

/* Cuts the open batch and sends what is queued. `direct`: on this
 * thread when the connection is idle (send_direct), which may wait a
 * little on a full socket: for schedulers at the end of a turn and for
 * threads of the application. The node's own threads (the ticker, nng's
 * threads answering a peer) pass false and never wait. */
static void flush_peer(struct tr_node *n, struct peer *p, bool direct)
{
	atomic_store_explicit(&p->dirty, 0, memory_order_relaxed);
	pthread_mutex_lock(&p->lock);
	if (p->nenv != 0)
		cut(n, p);
	nng_msg *m = kick_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (m != NULL && direct)
		send_direct(p, m);
	else if (m != NULL)
		start_send(p, m);
}

#define RUN_NONE 1        /* run_put: the message cannot join the open run */
#define BATCH_FIRST 1024u /* bytes first reserved for a batch */

/* Makes room for `need` bytes in a batch, doubling its buffer: nng grows
 * a message to the exact size asked (so appends would copy it each time)
 * and zero-fills new buffers, so a batch starts small (a round trip's
 * frame is tens of bytes) and grows as it fills. The headroom nng leaves
 * in front of a new message takes the frame header (cut). */
static int batch_room(nng_msg *b, size_t need)
{
	size_t cap = nng_msg_capacity(b);
	if (need <= cap)
		return 0;
	size_t c = cap * 2 > BATCH_FIRST ? cap * 2 : BATCH_FIRST;
	return nng_msg_reserve(b, c > need ? c : need);
}

/* Adds a message with key `k` to the open run of the batch as one more
 * entry of its envelope's `more` (peer lock held, state checked): a
 * stream of sends from one actor to one target then costs a payload and
 * two bytes each on the wire, and no header to encode or decode. Returns
 * TR_OK, TR_EAGAIN (bounded, and the queue is full), or RUN_NONE when
 * the message must start an envelope of its own: no run is open, its key
 * differs, the peer's minor predates `more`, or the batch is full. */
static int run_put(struct tr_node *n, struct peer *p, const struct runkey *k,
    const void *data, size_t len, bool bounded)
{
	if (!p->run_open || p->minor < 1 || k->type != p->run_type ||
	    !tr_pid_eq(k->to, p->run_to) || !tr_pid_eq(k->from, p->run_from) ||
	    (k->name != NULL) != p->run_named ||
	    (k->name != NULL && strcmp(k->name, p->run_name) != 0))
		return RUN_NONE;
	size_t blen = nng_msg_len(p->batch);
	size_t hl = 1 + tr__varint_size(len);
	size_t nlen = (size_t)p->run_len + hl + len;
	size_t grow = tr__varint_size(nlen) -
	              tr__varint_size(p->run_len); /* its length prefix */
	size_t add = grow + hl + len;
	if (p->nenv >= TR__NODE_BATCH_ENVS || blen + add > TR__NODE_BATCH_BYTES)
		return RUN_NONE;
	if (bounded && p->queued + blen + add > n->max_queue)
		return TR_EAGAIN;
	if (batch_room(p->batch, blen + add) != 0 ||
	    nng_msg_realloc(p->batch, blen + add) != 0)
		return RUN_NONE;
	uint8_t *b = nng_msg_body(p->batch);
	uint8_t *pre = b + p->run_off + 1; /* the envelope's length */
	if (grow != 0)
		memmove(pre + tr__varint_size(nlen),
		    pre + tr__varint_size(p->run_len), p->run_len);
	(void)tr__varint_put(pre, nlen);
	uint8_t *at = b + blen + grow;
	*at++ = 0x62; /* Envelope.more: field 12, length-delimited */
	at += tr__varint_put(at, len);
	if (len != 0)
		memcpy(at, data, len);
	p->run_len = (uint32_t)nlen;
	p->nenv++;
	if (blen + add >= TR__NODE_BATCH_BYTES ||
	    p->nenv >= TR__NODE_BATCH_ENVS)
		cut(n, p);
	return TR_OK;
}

/* Appends one envelope to the open batch (peer lock held). The caller
 * has checked the state. With a key `k`, the envelope opens a run that
 * later messages with the same key may join (run_put); without, it
 * closes the open run. */
static int env_put(struct tr_node *n, struct peer *p, const Env *e,
    bool bounded, const struct runkey *k)
{
	size_t sz = tr__envelope_size(e);
	uint8_t h[11];
	h[0] = 0x0a; /* Batch.envelopes: field 1, length-delimited */
	size_t hl = 1 + tr__varint_put(h + 1, sz);
	size_t blen = p->batch != NULL ? nng_msg_len(p->batch) : 0;
	if (bounded && p->queued + blen + hl + sz > n->max_queue)
		return TR_EAGAIN;
	if (p->nenv != 0 && blen + hl + sz > TR__NODE_BATCH_BYTES) {
		cut(n, p);
		blen = 0;
	}
	if (p->batch == NULL) {
		if (nng_msg_alloc(&p->batch, 0) != 0)
			return TR_ENOMEM;
		/* As big as the last one: a stream's batches are all full,
		 * and each doubling is a copy into a zero-filled buffer. */
		if (p->batch_hint > BATCH_FIRST)
			(void)nng_msg_reserve(p->batch, p->batch_hint);
	}
	if (batch_room(p->batch, blen + hl + sz) != 0 ||
	    nng_msg_append(p->batch, h, hl) != 0)
		return TR_ENOMEM;
	if (nng_msg_realloc(p->batch, blen + hl + sz) != 0) {
		(void)nng_msg_chop(p->batch, hl);
		return TR_ENOMEM;
	}
	uint8_t *at = (uint8_t *)nng_msg_body(p->batch) + blen + hl;
	(void)tr__envelope_pack(e, at);
	p->nenv++;
	p->run_open =
	    k != NULL && (k->name == NULL || strlen(k->name) <= TR_NAME_MAX);
	if (p->run_open) {
		p->run_off = (uint32_t)blen;
		p->run_len = (uint32_t)sz;
		p->run_to = k->to;
		p->run_from = k->from;
		p->run_type = k->type;
		p->run_named = k->name != NULL;
		if (k->name != NULL)
			strcpy(p->run_name, k->name);
	}
	if (nng_msg_len(p->batch) >= TR__NODE_BATCH_BYTES ||
	    p->nenv >= TR__NODE_BATCH_ENVS)
		cut(n, p);
	return TR_OK;
}

/* Queues a handshake frame, behind everything queued before it. */
static int frame_put(
    struct tr_node *n, struct peer *p, const Troupe__Wire__Frame *f)
{
	uint8_t *buf;
	size_t len;
	int rc = tr__frame_encode(&buf, &len, f);
	if (rc != TR_OK)
		return rc;
	nng_msg *m;
	if (nng_msg_alloc(&m, len) != 0) {
		free(buf);
		return TR_ENOMEM;
	}
	memcpy(nng_msg_body(m), buf, len);
	free(buf);
	pthread_mutex_lock(&p->lock);
	if (p->nenv != 0)
		cut(n, p);
	bool ok = p->state != PS_DOWN && q_push(p, m);
	nng_msg *out = kick_locked(p);
	pthread_mutex_unlock(&p->lock);
	if (!ok)
		nng_msg_free(m);
	if (out != NULL)
		start_send(p, out);
	return ok ? TR_OK : TR_ECLOSED;
}

/* Sends one envelope the node makes itself (an answer, a heartbeat), and
 * flushes it: these are rare and often awaited. */
static int env_send_now(
    struct tr_node *n, struct peer *p, const Env *e, bool direct)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->state == PS_UP ? env_put(n, p, e, false, NULL) : TR_ENOPROC;
	pthread_mutex_unlock(&p->lock);
	if (rc == TR_OK)
		flush_peer(n, p, direct);
	return rc;
}

/* ---- sending (the dist hook) -------------------------------------------- */

enum {
	BK_NONE,
	BK_LINK_ADD,
	BK_LINK_DEL,
	BK_MON_MINE_ADD,
	BK_MON_MINE_DEL,
	BK_MON_THEIRS_DEL
};

static int node_send(struct tr_node *n, tr_pid to, tr_msg *m)
{
	struct peer *p = peer_at(n, to.node);
	if (p == NULL)
		return TR_ENOPROC;
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wto, wfrom;
	tr_exit_info info;
	tr_pid from = m->sender;
	int bk = BK_NONE;
	uint32_t f = m->_flags;
	bool plain = false; /* may join a run */
	if ((f & TR__MF_SIGNAL) != 0) {
		e.ref = m->ref;
		switch (m->type) {
		case TR__SIG_LINK:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_LINK;
			bk = BK_LINK_ADD;
			break;
		case TR__SIG_UNLINK:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_UNLINK;
			bk = BK_LINK_DEL;
			break;
		case TR__SIG_EXIT:
			if (m->size != sizeof(info))
				return TR_EINVAL;
			memcpy(&info, m->data, sizeof(info));
			info.text[sizeof(info.text) - 1] = '\0';
			e.control = TROUPE__WIRE__CONTROL__CONTROL_EXIT;
			e.reason = info.reason;
			e.reason_text = info.text;
			if ((f & TR__MF_VIALINK) != 0) {
				e.flags = TR__ENV_VIALINK;
				bk = BK_LINK_DEL;
			}
			break;
		case TR__SIG_MONITOR:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_MONITOR;
			bk = BK_MON_MINE_ADD;
			break;
		case TR__SIG_DEMONITOR:
			e.control = TROUPE__WIRE__CONTROL__CONTROL_DEMONITOR;
			bk = BK_MON_MINE_DEL;
			break;
		default:
			return TR_EINVAL;
		}
	} else if ((f & TR__MF_DOWN) != 0) {
		if (m->size != sizeof(info))
			return TR_EINVAL;
		memcpy(&info, m->data, sizeof(info));
		info.text[sizeof(info.text) - 1] = '\0';
		e.control = TROUPE__WIRE__CONTROL__CONTROL_DOWN;
		e.ref = m->ref;
		e.reason = info.reason;
		e.reason_text = info.text;
		from = info.pid;
		bk = BK_MON_THEIRS_DEL;
	} else {
		if ((f & TR__MF_RTIMEO) != 0)
			return TR_EINVAL; /* timeouts are local */
		e.type = m->type;
		e.payload.data = m->data;
		e.payload.len = m->size;
		e.ref = m->ref;
		if ((f & TR__MF_REPLY) != 0)
			e.flags = TR__ENV_REPLY;
		plain = e.ref == 0 && e.flags == 0;
	}
	pid_out(n, to, &wto);
	e.to = &wto;
	if (!tr_pid_is_none(from)) {
		pid_out(n, from, &wfrom);
		e.from = &wfrom;
	}
	struct runkey k = {to, from, m->type, NULL};
	pthread_mutex_lock(&p->lock);
	int rc = TR_ENOPROC;
	if (p->state == PS_UP && (!plain || (rc = run_put(n, p, &k, m->data,
	                                         m->size, true)) == RUN_NONE))
		rc = env_put(n, p, &e, true, plain ? &k : NULL);
	if (rc == TR_OK) {
		/* DEMONITOR is sent by the watcher, and also when a dying
		 * watcher clears its monitors; DOWN by the target. */
		switch (bk) {
		case BK_LINK_ADD:
			xlink_add(p, from, to);
			break;
		case BK_LINK_DEL:
			xlink_del(p, from, to);
			break;
		case BK_MON_MINE_ADD:
			xmon_add(p, m->ref, from, to, true);
			break;
		case BK_MON_MINE_DEL:
			xmon_del(p, m->ref, true);
			break;
		case BK_MON_THEIRS_DEL:
			xmon_del(p, m->ref, false);
			break;
		}
	}
	nng_msg *out = rc == TR_OK ? kick_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	if (out != NULL)
		start_send(p, out);
	if (rc != TR_OK)
		return rc;
	tr__msg_free(m);
	if (on_our_sched(n))
		/* The scheduler calls flush at the end of this turn. */
		atomic_store_explicit(&p->dirty, 1, memory_order_relaxed);
	else
		/* A plain thread (tr_post, tr_call, a port) gets no end of
		 * turn: send now, or a call would wait for the tick. */
		flush_peer(n, p, true);
	return TR_OK;
}

static void flush_all(struct tr_node *n, bool direct)
{
	uint32_t top = atomic_load_explicit(&n->top, memory_order_acquire);
	for (uint32_t i = 1; i <= top; i++) {
		struct peer *p = peer_at(n, i);
		if (p != NULL &&
		    atomic_load_explicit(&p->dirty, memory_order_relaxed) != 0)
			flush_peer(n, p, direct);
	}
}

/* The hook's entry points go through the husk: stop sets `closed` and
 * waits for `active` to drain. Both sides use seq_cst so that either the
 * sender sees `closed` or the stopper sees the sender's `active`. */
static bool husk_enter(struct husk *h)
{
	atomic_fetch_add_explicit(&h->active, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&h->closed, memory_order_seq_cst) != 0) {
		atomic_fetch_sub_explicit(&h->active, 1, memory_order_release);
		return false;
	}
	return true;
}

static void husk_exit(struct husk *h)
{
	/* Release: the stopper's acquire load of `active` sees everything
	 * this call did. */
	atomic_fetch_sub_explicit(&h->active, 1, memory_order_release);
}

static int op_send(void *arg, tr_pid to, tr_msg *m)
{
	struct husk *h = arg;
	if (!husk_enter(h))
		return TR_ENOPROC;
	int rc = node_send(h->n, to, m);
	husk_exit(h);
	return rc;
}

static void op_flush(void *arg)
{
	struct husk *h = arg;
	if (!husk_enter(h))
		return;
	flush_all(h->n, true);
	husk_exit(h);
}

static const tr__dist_ops node_ops = {op_send, op_flush};

/* ---- injecting into local actors ---------------------------------------- */

static int inject_sig(struct tr_node *n, tr_pid to, uint32_t kind,
    uint32_t flags, uint64_t ref, tr_pid from, const tr_exit_info *info)
{
	tr_msg *m;
	int rc = tr__msg_new_sys(&m, kind, info, info ? sizeof(*info) : 0);
	if (rc != TR_OK)
		return rc;
	m->sender = from;
	m->ref = ref;
	m->_flags |= TR__MF_SIGNAL | flags;
	rc = tr__dist_inject(n->rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

static int inject_down(struct tr_node *n, tr_pid to, tr_pid target,
    uint64_t ref, int reason, const char *text)
{
	tr_exit_info info;
	memset(&info, 0, sizeof(info));
	info.pid = target;
	info.reason = reason;
	info.ref = ref;
	snprintf(info.text, sizeof(info.text), "%s", text ? text : "");
	tr_msg *m;
	int rc = tr__msg_new_sys(&m, TR_MSG_DOWN, &info, sizeof(info));
	if (rc != TR_OK)
		return rc;
	m->sender = target;
	m->ref = ref;
	m->_flags |= TR__MF_DOWN;
	rc = tr__dist_inject(n->rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

static int inject_msg(struct tr_node *n, tr_pid to, uint32_t type,
    const void *data, size_t size, tr_pid from, uint64_t ref, uint32_t flags)
{
	tr_msg *m;
	int rc = tr__msg_new_sys(&m, type, data, size);
	if (rc != TR_OK)
		return rc;
	m->sender = from;
	m->ref = ref;
	m->_flags |= flags;
	rc = tr__dist_inject(n->rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

/* The state of one inbound frame on the receive thread. Plain messages
 * are injected inside one epoch section per frame (tr__dist_enter), not
 * one per message, and consecutive messages to one pid go onto its
 * mailbox together (tr__dist_inject_many_locked): one lookup and one
 * atomic exchange per run instead of per message. Anything else that
 * calls into the runtime or the network first delivers what is pending
 * and leaves the section (rx_leave), as the contract in dist.h asks, so
 * everything still arrives in frame order. A registered name is resolved
 * once per frame: the envelopes of one frame are delivered as if they all
 * arrived at the instant of the first lookup, which is as much as a
 * sender could tell apart. */
#define RX_RUN 64u /* messages handed over at once, at most */

struct rx {
	struct tr_node *n;
	bool in; /* inside the runtime's epoch section */
	unsigned rec;
	const char *name; /* the last name looked up (in the frame) */
	tr_pid pid;
	int err;
	tr_pid run_to; /* the target of the pending run */
	uint32_t nrun;
	tr_msg *run[RX_RUN];
};

static void rx_flush(struct rx *r)
{
	if (r->nrun == 0)
		return;
	if (!r->in) {
		tr__dist_enter(r->n->rt, &r->rec);
		r->in = true;
	}
	if (tr__dist_inject_many_locked(r->n->rt, r->run_to, r->run, r->nrun) !=
	    TR_OK)
		for (uint32_t i = 0; i < r->nrun; i++)
			tr__msg_free(r->run[i]);
	r->nrun = 0;
}

static void rx_leave(struct rx *r)
{
	rx_flush(r);
	if (r->in) {
		tr__dist_exit(r->n->rt, r->rec);
		r->in = false;
	}
}

/* Queues a message for `to` behind the pending run; a dead target drops
 * it, as tr__dist_inject would. */
static void rx_inject(struct rx *r, tr_pid to, uint32_t type, const void *data,
    size_t size, tr_pid from, uint64_t ref, uint32_t flags)
{
	tr_msg *m;
	if (tr__msg_new_sys(&m, type, data, size) != TR_OK)
		return;
	m->sender = from;
	m->ref = ref;
	m->_flags |= flags;
	if (r->nrun != 0 && (r->nrun == RX_RUN || !tr_pid_eq(r->run_to, to)))
		rx_flush(r);
	r->run_to = to;
	r->run[r->nrun++] = m;
}

static void exit_info(
    tr_exit_info *info, tr_pid pid, int reason, const char *text)
{
	memset(info, 0, sizeof(*info));
	info->pid = pid;
	info->reason = reason;
	snprintf(info->text, sizeof(info->text), "%s", text ? text : "");
}

/* Node lock held. Subscriptions of actors that are gone are dropped. */
static void node_event_locked(
    struct tr_node *n, uint32_t type, const char *name)
{
	tr_node_event ev;
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.node, sizeof(ev.node), "%s", name);
	for (uint32_t i = 0; i < n->nnmons;) {
		struct nmon *w = &n->nmons[i];
		if (w->name != NULL && strcmp(w->name, name) != 0) {
			i++;
			continue;
		}
		if (inject_msg(n, w->pid, type, &ev, sizeof(ev), TR_PID_NONE, 0,
		        0) == TR_ENOPROC) {
			free(w->name);
			*w = n->nmons[--n->nnmons];
			continue;
		}
		i++;
	}
}

/* ---- receiving envelopes ------------------------------------------------ */

/* The node's answer, for a local actor that is gone, to a LINK (an exit
 * signal via the link, reason noproc) or a MONITOR (DOWN noproc, with
 * the monitor's ref): from the dead pid to the remote one that asked. */
static void answer_noproc(struct tr_node *n, struct peer *p, tr_pid dead,
    tr_pid asker, Troupe__Wire__Control control, uint64_t ref)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt, wf;
	pid_out(n, asker, &wt);
	pid_out(n, dead, &wf);
	e.to = &wt;
	e.from = &wf;
	e.control = control;
	e.flags = control == TROUPE__WIRE__CONTROL__CONTROL_EXIT
	              ? TR__ENV_VIALINK
	              : 0;
	e.ref = ref;
	e.reason = TR_REASON_NOPROC;
	(void)env_send_now(n, p, &e, false);
}

/* Remote `rem` links to local `loc`: the link signal goes to `loc` and
 * the link is recorded on the peer (so that the peer's loss fires it),
 * both under the peer lock and only while it is up; a `loc` that is gone
 * answers with an exit signal noproc, as a local link to it would. */
static void link_in(struct tr_node *n, struct peer *p, tr_pid loc, tr_pid rem)
{
	pthread_mutex_lock(&p->lock);
	int rc = p->state == PS_UP
	             ? inject_sig(n, loc, TR__SIG_LINK, 0, 0, rem, NULL)
	             : TR_ECLOSED;
	if (rc == TR_OK)
		xlink_add(p, loc, rem);
	pthread_mutex_unlock(&p->lock);
	if (rc == TR_ENOPROC)
		answer_noproc(
		    n, p, loc, rem, TROUPE__WIRE__CONTROL__CONTROL_EXIT, 0);
}

static const struct beh *beh_find(struct tr_node *n, const char *name)
{
	for (uint32_t i = 0; i < n->nbehs; i++)
		if (strcmp(n->behs[i].name, name) == 0)
			return &n->behs[i];
	return NULL;
}

static void spawn_in(
    struct tr_node *n, struct peer *p, const Env *e, tr_pid from)
{
	if (tr_pid_is_none(from))
		return;
	pthread_mutex_lock(&n->lock);
	const struct beh *bh = e->name ? beh_find(n, e->name) : NULL;
	const tr_behaviour *b = bh != NULL ? bh->b : NULL;
	pthread_mutex_unlock(&n->lock);
	bool link = (e->flags & TR__ENV_LINK) != 0;
	tr_pid pid = TR_PID_NONE;
	int err = TR_ENOENT;
	Env r = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wt, wf;
	/* The peer lock is held across the spawn so that the reply goes
	 * into the batch before anything the new actor sends to the
	 * requester (its exit signal, if it dies at once). */
	pthread_mutex_lock(&p->lock);
	if (p->state != PS_UP) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (b != NULL) {
		tr_node_blob *arg = malloc(sizeof(*arg) + e->payload.len);
		err = TR_ENOMEM;
		if (arg != NULL) {
			arg->size = e->payload.len;
			if (e->payload.len != 0)
				memcpy(
				    arg->data, e->payload.data, e->payload.len);
			err = tr_spawn(&pid, n->rt, b, arg, NULL);
			if (err != TR_OK)
				free(arg);
		}
		if (err == TR_OK && link) {
			if (inject_sig(n, pid, TR__SIG_LINK, 0, 0, from,
			        NULL) == TR_OK)
				xlink_add(p, pid, from);
		}
	}
	pid_out(n, from, &wt);
	r.to = &wt;
	if (err == TR_OK) {
		pid_out(n, pid, &wf);
		r.from = &wf;
	}
	r.control = TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REPLY;
	r.ref = e->ref;
	r.error = err;
	r.flags = link ? TR__ENV_LINK : 0;
	(void)env_put(n, p, &r, false, NULL);
	pthread_mutex_unlock(&p->lock);
	flush_peer(n, p, false);
}

static void spawn_reply_in(
    struct tr_node *n, struct peer *p, tr_pid to, const Env *e, tr_pid from)
{
	tr_spawn_reply r;
	memset(&r, 0, sizeof(r));
	r.error = e->error;
	r.pid = e->error == TR_OK ? from : TR_PID_NONE;
	if (e->error == TR_OK && tr_pid_is_none(from))
		r.error = TR_ENOPROC;
	if (r.error == TR_OK && (e->flags & TR__ENV_LINK) != 0)
		/* If the requester is gone, its child must not stay linked
		 * to no one: it gets an exit signal. */
		link_in(n, p, to, from);
	(void)inject_msg(
	    n, to, TR_MSG_SPAWN_REPLY, &r, sizeof(r), from, e->ref, 0);
}

/* Delivers a plain message and the rest of its run (Envelope.more) to
 * `to`; a payload over the runtime's limit is dropped, as one sent
 * locally would be refused. */
static void rx_run(struct rx *r, tr_pid to, const Env *e, tr_pid from,
    uint64_t ref, uint32_t flags)
{
	size_t max = r->n->rt->opts.max_msg_size;
	if (e->payload.len <= max)
		rx_inject(r, to, e->type, e->payload.data, e->payload.len, from,
		    ref, flags);
	for (size_t i = 0; i < e->n_more; i++)
		if (e->more[i].len <= max)
			rx_inject(r, to, e->type, e->more[i].data,
			    e->more[i].len, from, ref, flags);
}

static void named_in(struct rx *r, struct peer *p, const Env *e, tr_pid from)
{
	struct tr_node *n = r->n;
	tr_pid pid = TR_PID_NONE;
	int err = TR_ENOENT;
	if (e->name != NULL) {
		if (r->name == NULL || strcmp(r->name, e->name) != 0) {
			r->err = tr_whereis(&r->pid, n->rt, e->name);
			r->name = e->name;
		}
		pid = r->pid;
		err = r->err;
	}
	if (e->type == TR__NODE_T_WHEREIS) {
		if (tr_pid_is_none(from))
			return;
		rx_leave(r);
		Env a = TROUPE__WIRE__ENVELOPE__INIT;
		WPid wt, wf;
		pid_out(n, from, &wt);
		a.to = &wt;
		if (err == TR_OK) {
			pid_out(n, pid, &wf);
			a.from = &wf;
		}
		a.type = TR__NODE_T_WHEREIS_REPLY;
		a.ref = e->ref;
		a.error = err;
		(void)env_send_now(n, p, &a, false);
		return;
	}
	if (err != TR_OK || e->type >= TR_MSG_SYSTEM)
		return; /* as in Erlang: an unknown name drops the message */
	rx_run(r, pid, e, from, 0, 0);
}

static void env_in(struct rx *r, struct peer *p, const Env *e)
{
	struct tr_node *n = r->n;
	tr_pid from = pid_in(n, p, e->from);
	tr_pid to = TR_PID_NONE;
	Troupe__Wire__Control c = e->control;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_HEARTBEAT)
		return;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REQUEST) {
		rx_leave(r);
		spawn_in(n, p, e, from);
		return;
	}
	if (c == TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND) {
		named_in(r, p, e, from);
		return;
	}
	if (!pid_local(n, e->to, &to))
		return; /* not ours, or an earlier incarnation of us */
	tr_exit_info info;
	int rc;
	if (c == TROUPE__WIRE__CONTROL__CONTROL_NONE) {
		uint32_t flags = (e->flags & TR__ENV_REPLY) ? TR__MF_REPLY : 0;
		if (e->type == TR__NODE_T_WHEREIS_REPLY) {
			int32_t err = e->error;
			rx_inject(
			    r, to, e->type, &err, sizeof(err), from, e->ref, 0);
			return;
		}
		if (e->type >= TR_MSG_SYSTEM)
			return;
		rx_run(r, to, e, from, e->ref, flags);
		return;
	}
	/* Signals: rare, and some take locks or call tr_kill. */
	rx_leave(r);
	switch (c) {
	case TROUPE__WIRE__CONTROL__CONTROL_LINK:
		if (!tr_pid_is_none(from))
			link_in(n, p, to, from);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_UNLINK:
		pthread_mutex_lock(&p->lock);
		xlink_del(p, to, from);
		pthread_mutex_unlock(&p->lock);
		(void)inject_sig(n, to, TR__SIG_UNLINK, 0, 0, from, NULL);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_EXIT: {
		bool vialink = (e->flags & TR__ENV_VIALINK) != 0;
		if (vialink) {
			pthread_mutex_lock(&p->lock);
			xlink_del(p, to, from);
			pthread_mutex_unlock(&p->lock);
		}
		if (!vialink && e->reason == TR_REASON_KILL) {
			/* exit(Pid, kill): through tr_kill, which also raises
			 * the target's kill flag so it dies within a batch
			 * even behind a flooded mailbox. */
			(void)tr_kill(n->rt, to, TR_REASON_KILL);
			return;
		}
		exit_info(&info, from, e->reason, e->reason_text);
		(void)inject_sig(n, to, TR__SIG_EXIT,
		    vialink ? TR__MF_VIALINK : 0, 0, from, &info);
		return;
	}
	case TROUPE__WIRE__CONTROL__CONTROL_MONITOR:
		if (tr_pid_is_none(from))
			return;
		pthread_mutex_lock(&p->lock);
		rc = p->state == PS_UP ? inject_sig(n, to, TR__SIG_MONITOR, 0,
		                             e->ref, from, NULL)
		                       : TR_ECLOSED;
		if (rc == TR_OK)
			xmon_add(p, e->ref, to, from, false);
		pthread_mutex_unlock(&p->lock);
		if (rc == TR_ENOPROC)
			answer_noproc(n, p, to, from,
			    TROUPE__WIRE__CONTROL__CONTROL_DOWN, e->ref);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_DEMONITOR:
		pthread_mutex_lock(&p->lock);
		xmon_del(p, e->ref, false);
		pthread_mutex_unlock(&p->lock);
		(void)inject_sig(
		    n, to, TR__SIG_DEMONITOR, 0, e->ref, from, NULL);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_DOWN:
		pthread_mutex_lock(&p->lock);
		xmon_del(p, e->ref, true);
		pthread_mutex_unlock(&p->lock);
		(void)inject_down(
		    n, to, from, e->ref, e->reason, e->reason_text);
		return;
	case TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REPLY:
		spawn_reply_in(n, p, to, e, from);
		return;
	default:
		return;
	}
}

/* ---- peers going down --------------------------------------------------- */

static void conn_finish(
    struct tr_node *n, struct conn *c, int result, const char *name)
{
	if (c == NULL || c->done)
		return;
	c->done = true;
	c->result = result;
	if (name != NULL)
		snprintf(c->name, sizeof(c->name), "%s", name);
	pthread_cond_broadcast(&n->cv);
}

static void pipes_unbind(struct tr_node *n, struct peer *p)
{
	for (uint32_t i = 0; i < n->npipes;) {
		if (n->pipes[i].p == p)
			n->pipes[i] = n->pipes[--n->npipes];
		else
			i++;
	}
}

/* Node lock held. The peer stops accepting sends at once; the ticker
 * does the rest (teardown). */
static void peer_down_locked(
    struct tr_node *n, struct peer *p, const char *why, int conn_result)
{
	pthread_mutex_lock(&p->lock);
	int was = p->state;
	if (was == PS_DOWN || was == PS_KNOWN) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->state = PS_DOWN;
	pthread_mutex_unlock(&p->lock);
	list_remove(&n->peers, p);
	pipes_unbind(n, p);
	p->was_up = was == PS_UP;
	if (p->conn != NULL) {
		conn_finish(n, p->conn, conn_result, NULL);
		p->conn->peer = NULL;
		p->conn = NULL;
	}
	p->next = n->reap;
	n->reap = p;
	pthread_cond_broadcast(&n->cv);
	if (p->was_up)
		logf_(n, "node %s is down: %s", p->name, why);
}

/* Ticker thread, no lock held. */
static void teardown(struct tr_node *n, struct peer *p)
{
	/* A sender may have taken the send slot just before the peer went
	 * down and not yet handed its frame to the connection (see
	 * kick_locked and start_send). Closing the connection first makes
	 * every send on it, pending or still to come, fail at once, so the
	 * holder lets go of the slot soon; no one can take it again, since
	 * kick_locked refuses a peer that is down. Only then is the
	 * connection ours to free. */
	if (p->out != NULL)
		tr__sp_out_close(p->out);
	pthread_mutex_lock(&p->lock);
	while (p->busy)
		pthread_cond_wait(&p->idle, &p->lock);
	p->has_push = false;
	pthread_mutex_unlock(&p->lock);
	tr__sp_out_free(p->out); /* waits for its callbacks' return */
	p->out = NULL;
	if (p->tls != NULL)
		nng_tls_config_free(p->tls);
	p->tls = NULL;
	if (p->inp != 0)
		tr__sp_in_drop(n->in, p->inp);
	pthread_mutex_lock(&p->lock);
	struct xlink *links = p->links;
	struct xmon *mons = p->mons;
	uint32_t nl = p->nlinks, nm = p->nmons;
	p->links = NULL;
	p->mons = NULL;
	p->nlinks = p->nmons = p->cap_links = p->cap_mons = 0;
	/* In-flight messages on a broken connection are lost. */
	if (p->batch != NULL)
		nng_msg_free(p->batch);
	p->batch = NULL;
	p->nenv = 0;
	while (p->qn != 0) {
		nng_msg_free(p->q[p->qhead]);
		p->qhead = (p->qhead + 1) % p->qcap;
		p->qn--;
	}
	free(p->q);
	p->q = NULL;
	p->qcap = 0;
	p->queued = 0;
	pthread_mutex_unlock(&p->lock);

	tr_exit_info info;
	for (uint32_t i = 0; i < nl; i++) {
		exit_info(&info, links[i].rem, TR_REASON_NOCONNECTION, "");
		(void)inject_sig(n, links[i].loc, TR__SIG_EXIT, TR__MF_VIALINK,
		    0, links[i].rem, &info);
	}
	for (uint32_t i = 0; i < nm; i++) {
		if (mons[i].mine)
			(void)inject_down(n, mons[i].loc, mons[i].rem,
			    mons[i].ref, TR_REASON_NOCONNECTION, "");
		else
			/* The watcher is gone with its node: the target
			 * forgets it, so its list does not grow. */
			(void)inject_sig(n, mons[i].loc, TR__SIG_DEMONITOR, 0,
			    mons[i].ref, mons[i].rem, NULL);
	}
	free(links);
	free(mons);
	pthread_mutex_lock(&n->lock);
	if (p->was_up)
		node_event_locked(n, TR_MSG_NODEDOWN, p->name);
	p->next = n->grave;
	n->grave = p;
	pthread_mutex_unlock(&n->lock);
}

/* ---- sockets ------------------------------------------------------------ */

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 8192;
			char *b = realloc(buf, cap);
			if (b == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = b;
		}
		size_t k = fread(buf + len, 1, cap - len - 1, f);
		len += k;
		if (k == 0)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

static int tls_config(
    struct tr_node *n, nng_tls_config **cfg, nng_tls_mode mode, const char *url)
{
	if (n->tls_ca == NULL || n->tls_cert == NULL || n->tls_key == NULL)
		return TR_EINVAL;
	int rv = nng_tls_config_alloc(cfg, mode);
	if (rv == 0)
		rv = nng_tls_config_ca_chain(*cfg, n->tls_ca, NULL);
	if (rv == 0)
		rv = nng_tls_config_own_cert(
		    *cfg, n->tls_cert, n->tls_key, NULL);
	/* Mutual: each side proves its certificate to the other. */
	if (rv == 0)
		rv = nng_tls_config_auth_mode(*cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0 && mode == NNG_TLS_MODE_CLIENT && url != NULL) {
		nng_url *u;
		if (nng_url_parse(&u, url) == 0) {
			rv = nng_tls_config_server_name(*cfg, u->u_hostname);
			nng_url_free(u);
		}
	}
	if (rv != 0 && *cfg != NULL) {
		nng_tls_config_free(*cfg);
		*cfg = NULL;
	}
	return tr__nng_err(rv);
}

/* sp.c: our connection `o` to a peer failed after it was up. */
static void out_closed(void *arg, tr__sp_out *o)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	for (struct peer *p = n->peers; p != NULL; p = p->next) {
		if (p->out == o && p->state == PS_UP) {
			peer_down_locked(n, p, "connection closed", TR_ECLOSED);
			break;
		}
	}
	pthread_mutex_unlock(&n->lock);
}

/* A push0 connection to `url`; it dials in the background and redials
 * with backoff (20 ms up to a tick) until the first connection. */
static int push_open(
    struct tr_node *n, const char *url, tr__sp_out **o, nng_tls_config **tls)
{
	*tls = NULL;
	if (is_tls(url)) {
		int rc = tls_config(n, tls, NNG_TLS_MODE_CLIENT, url);
		if (rc != TR_OK)
			return rc;
	}
	int rc = tr__sp_out_open(o, url, *tls, n->tick_ms, out_closed, n);
	if (rc != TR_OK && *tls != NULL) {
		nng_tls_config_free(*tls);
		*tls = NULL;
	}
	return rc;
}

/* Node lock held. */
static int peer_attach_push(struct peer *p, tr__sp_out *o, nng_tls_config *tls)
{
	tr__sp_out_adopt(o, send_cb, p);
	p->out = o;
	p->tls = tls;
	pthread_mutex_lock(&p->lock);
	p->has_push = true;
	pthread_mutex_unlock(&p->lock);
	return TR_OK;
}

/* ---- the handshake ------------------------------------------------------ */

static struct pipe_ent *pipe_find(struct tr_node *n, uint32_t id)
{
	for (uint32_t i = 0; i < n->npipes; i++)
		if (n->pipes[i].id == id)
			return &n->pipes[i];
	return NULL;
}

static bool pipe_bind(struct tr_node *n, uint32_t id, struct peer *p)
{
	struct pipe_ent *e = pipe_find(n, id);
	if (e != NULL) {
		if (e->p != p) {
			e->p = p;
			e->auth = false;
		}
		return true;
	}
	if (!grow((void **)&n->pipes, n->npipes, &n->cap_pipes,
	        sizeof(*n->pipes)))
		return false;
	n->pipes[n->npipes++] = (struct pipe_ent){id, p, false};
	return true;
}

/* Our Hello in `f` (with `h` and `id`, which it points to): our name,
 * incarnation, versions and URLs, the challenge `nonce`, and `proof` when
 * answering (NULL when opening). */
static void hello_fill(struct tr_node *n, Troupe__Wire__Frame *f,
    Troupe__Wire__Hello *h, Troupe__Wire__NodeId *id, const uint8_t *nonce,
    const uint8_t *proof)
{
	troupe__wire__frame__init(f);
	troupe__wire__hello__init(h);
	troupe__wire__node_id__init(id);
	id->name = n->name;
	id->incarnation = n->inc;
	h->major = TROUPE__WIRE__VERSION__PROTOCOL_MAJOR;
	h->minor = TR__NODE_MINOR;
	h->node = id;
	h->n_listen = n->nurls;
	h->listen = n->urls;
	h->nonce.data = (uint8_t *)nonce;
	h->nonce.len = TR__NODE_NONCE_LEN;
	if (proof != NULL) {
		h->proof.data = (uint8_t *)proof;
		h->proof.len = TR__SHA256_LEN;
	}
	f->body_case = TROUPE__WIRE__FRAME__BODY_HELLO;
	f->hello = h;
}

static int hello_put(struct tr_node *n, struct peer *p, const uint8_t *proof)
{
	Troupe__Wire__Frame f;
	Troupe__Wire__Hello h;
	Troupe__Wire__NodeId id;
	hello_fill(n, &f, &h, &id, p->nonce, proof);
	return frame_put(n, p, &f);
}

/* Node lock held: the peer is authenticated both ways. */
static void peer_set_up(struct tr_node *n, struct peer *p)
{
	atomic_store_explicit(&p->last_rx, now_ms(), memory_order_relaxed);
	pthread_mutex_lock(&p->lock);
	p->state = PS_UP;
	pthread_mutex_unlock(&p->lock);
	if (p->conn != NULL) {
		conn_finish(n, p->conn, TR_OK, p->name);
		p->conn->peer = NULL;
		p->conn = NULL;
	}
	logf_(n, "node %s is up (incarnation %" PRIu64 ")", p->name, p->inc);
	node_event_locked(n, TR_MSG_NODEUP, p->name);
}

/* Which of our listen-URL schemes the pipe came in by, to dial back with
 * the same transport. */
/* The URL of the peer's that matches the scheme of the listener its
 * Hello came in on (ipc to ipc, tls to tls), else its first. */
static const char *dial_back_url(
    struct tr_node *n, const Troupe__Wire__Hello *h, uint32_t pp)
{
	const char *pick = h->n_listen ? h->listen[0] : NULL;
	int k = tr__sp_in_listener_of(n->in, pp);
	if (k >= 0 && (size_t)k < n->nurls) {
		const char *lurl = n->urls[k];
		const char *colon = strstr(lurl, "://");
		size_t sl = colon ? (size_t)(colon - lurl) : 0;
		for (size_t i = 0; sl != 0 && i < h->n_listen; i++) {
			if (strncmp(h->listen[i], lurl, sl + 3) == 0) {
				pick = h->listen[i];
				break;
			}
		}
	}
	return pick;
}

static struct conn *conn_match(struct tr_node *n, const Troupe__Wire__Hello *h)
{
	const char *name = h->node->name;
	for (struct conn *c = n->conns; c != NULL; c = c->next) {
		if (c->adopted || c->done)
			continue;
		if (h->proof.len == TR__SHA256_LEN) {
			uint8_t want[TR__SHA256_LEN];
			mac(n, want, "troupe-hello", c->nonce, n->name, name);
			if (tr__ct_equal(want, h->proof.data, sizeof(want)))
				return c;
		}
		/* A crossed connect: its socket can carry our answer only
		 * once our own Hello has gone out on it. */
		for (size_t i = 0; c->sent && i < h->n_listen; i++)
			if (strcmp(h->listen[i], c->url) == 0)
				return c;
	}
	return NULL;
}

/* A connect whose nonce the answer's proof is over (a duplicate of a
 * handshake already under way with that node). */
static struct conn *conn_by_proof(
    struct tr_node *n, const char *name, const uint8_t *proof)
{
	for (struct conn *c = n->conns; c != NULL; c = c->next) {
		if (c->adopted || c->done)
			continue;
		uint8_t want[TR__SHA256_LEN];
		mac(n, want, "troupe-hello", c->nonce, n->name, name);
		if (tr__ct_equal(want, proof, sizeof(want)))
			return c;
	}
	return NULL;
}

static void peer_set_listen(struct peer *p, const Troupe__Wire__Hello *h)
{
	if (p->listen != NULL)
		return;
	p->listen = calloc(h->n_listen + 1, sizeof(char *));
	if (p->listen == NULL)
		return;
	for (size_t i = 0; i < h->n_listen && i < 16; i++)
		if ((p->listen[p->nlisten] = strdup(h->listen[i])) != NULL)
			p->nlisten++;
}

static void hello_in(
    struct tr_node *n, uint32_t pp, const Troupe__Wire__Hello *h)
{
	if (h->major != TROUPE__WIRE__VERSION__PROTOCOL_MAJOR) {
		logf_(n, "refused a peer: protocol major %u not supported",
		    h->major);
		atomic_fetch_add_explicit(
		    &n->n_refused, 1, memory_order_relaxed);
		return;
	}
	if (h->node == NULL || !name_ok(h->node->name) ||
	    h->nonce.len != TR__NODE_NONCE_LEN ||
	    (h->proof.len != 0 && h->proof.len != TR__SHA256_LEN)) {
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
		return;
	}
	const char *name = h->node->name;
	uint64_t inc = h->node->incarnation;
	bool answer = h->proof.len != 0;
	if (strcmp(name, n->name) == 0) {
		logf_(n, "refused a peer that has our own name");
		atomic_fetch_add_explicit(
		    &n->n_refused, 1, memory_order_relaxed);
		return;
	}
	pthread_mutex_lock(&n->lock);
	if (n->stopping)
		goto out;
	struct peer *p = peer_active(n, name);
	if (p != NULL && p->inc != inc) {
		if (inc < p->inc)
			goto out; /* an older self of a restarted node */
		peer_down_locked(n, p, "restarted", TR_ECLOSED);
		p = NULL;
	}
	if (p != NULL && p->state == PS_UP) {
		if (answer)
			goto out; /* a late answer of a crossed handshake */
		/* It starts over: it has lost us (it declared us down). */
		peer_down_locked(n, p, "reconnecting", TR_ECLOSED);
		p = NULL;
	}
	if (p == NULL) {
		struct conn *c = conn_match(n, h);
		p = NULL;
		for (struct peer *k = n->peers; k != NULL; k = k->next)
			if (k->state == PS_KNOWN && k->inc == inc &&
			    strcmp(k->name, name) == 0)
				p = k;
		if (p != NULL) {
			pthread_mutex_lock(&p->lock);
			p->state = PS_HS;
			pthread_mutex_unlock(&p->lock);
		} else {
			p = peer_new(n, name, inc, PS_HS);
		}
		if (p == NULL)
			goto out;
		peer_set_listen(p, h);
		p->hs_deadline =
		    now_ms() +
		    (n->tick_ms * 20 > 5000 ? n->tick_ms * 20 : 5000);
		int rc;
		if (c != NULL) {
			memcpy(p->nonce, c->nonce, sizeof(p->nonce));
			rc = peer_attach_push(p, c->out, c->tls);
			if (rc == TR_OK) {
				c->adopted = true;
				c->tls = NULL;
				c->peer = p;
				p->conn = c;
			}
		} else if (answer) {
			/* An answer to no connect of ours. With a wrong
			 * cookie no nonce matches: find the connect by its
			 * URL, or the only one waiting, to refuse it. */
			struct conn *only = NULL;
			int waiting = 0;
			for (struct conn *k = n->conns; k != NULL; k = k->next)
				if (!k->adopted && !k->done) {
					only = k;
					waiting++;
				}
			logf_(n,
			    "refused node %s: its handshake proof is "
			    "wrong (another cookie?)",
			    name);
			atomic_fetch_add_explicit(
			    &n->n_refused, 1, memory_order_relaxed);
			if (waiting == 1)
				conn_finish(n, only, TR_ECLOSED, name);
			peer_down_locked(n, p, "refused", TR_ECLOSED);
			goto out;
		} else {
			rc = tr__random(p->nonce, sizeof(p->nonce));
			const char *url = dial_back_url(n, h, pp);
			tr__sp_out *s = NULL;
			nng_tls_config *tls = NULL;
			if (rc == TR_OK && url == NULL)
				rc = TR_EINVAL;
			if (rc == TR_OK)
				rc = push_open(n, url, &s, &tls);
			if (rc == TR_OK)
				rc = peer_attach_push(p, s, tls);
			if (rc != TR_OK)
				logf_(n, "cannot dial back node %s at %s: %s",
				    name, url ? url : "(no URL)",
				    tr_strerror(rc));
		}
		if (rc != TR_OK) {
			peer_down_locked(n, p, "no connection back", rc);
			goto out;
		}
	}
	if (!pipe_bind(n, pp, p))
		goto out;
	memcpy(p->their, h->nonce.data, sizeof(p->their));
	p->have_their = true;
	/* Before the state turns UP under the peer lock, which orders it
	 * before every send that reads it. */
	p->minor = h->minor;
	uint8_t proof[TR__SHA256_LEN];
	if (answer) {
		uint8_t want[TR__SHA256_LEN];
		mac(n, want, "troupe-hello", p->nonce, n->name, name);
		struct conn *dup = NULL;
		if (!tr__ct_equal(want, h->proof.data, sizeof(want)))
			dup = conn_by_proof(n, name, h->proof.data);
		if (dup != NULL)
			/* Its socket is a second way to the same node: the
			 * connect succeeds, and closes it. */
			conn_finish(n, dup, TR_OK, name);
		else if (!tr__ct_equal(want, h->proof.data, sizeof(want))) {
			logf_(n,
			    "refused node %s: its handshake proof is "
			    "wrong (another cookie?)",
			    name);
			atomic_fetch_add_explicit(
			    &n->n_refused, 1, memory_order_relaxed);
			Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
			Troupe__Wire__HelloReject r =
			    TROUPE__WIRE__HELLO_REJECT__INIT;
			r.reason = "handshake proof refused";
			f.body_case = TROUPE__WIRE__FRAME__BODY_REJECT;
			f.reject = &r;
			(void)frame_put(n, p, &f);
			if (p->conn != NULL)
				snprintf(p->conn->name, sizeof(p->conn->name),
				    "%s", name);
			peer_down_locked(n, p, "refused", TR_ECLOSED);
			goto out;
		}
		struct pipe_ent *pe = pipe_find(n, pp);
		pe->auth = true;
		tr__sp_in_trust(n->in, pp);
		p->inp = pp;
		Troupe__Wire__Frame f = TROUPE__WIRE__FRAME__INIT;
		Troupe__Wire__Proof pr = TROUPE__WIRE__PROOF__INIT;
		mac(n, proof, "troupe-proof", p->their, name, n->name);
		pr.proof.data = proof;
		pr.proof.len = sizeof(proof);
		f.body_case = TROUPE__WIRE__FRAME__BODY_PROOF;
		f.proof = &pr;
		/* Queued before the state turns UP, so the Proof precedes
		 * every batch on the wire. */
		if (frame_put(n, p, &f) != TR_OK) {
			peer_down_locked(n, p, "no memory", TR_ENOMEM);
			goto out;
		}
		if (p->state != PS_UP)
			peer_set_up(n, p);
	} else {
		mac(n, proof, "troupe-hello", p->their, name, n->name);
		(void)hello_put(n, p, proof);
	}
out:
	pthread_mutex_unlock(&n->lock);
}

static void proof_in(
    struct tr_node *n, uint32_t pp, const Troupe__Wire__Proof *pr)
{
	pthread_mutex_lock(&n->lock);
	struct pipe_ent *pe = pipe_find(n, pp);
	if (pe == NULL || pe->auth) {
		pthread_mutex_unlock(&n->lock);
		return;
	}
	struct peer *p = pe->p;
	uint8_t want[TR__SHA256_LEN];
	mac(n, want, "troupe-proof", p->nonce, n->name, p->name);
	if (pr->proof.len != sizeof(want) ||
	    !tr__ct_equal(want, pr->proof.data, sizeof(want))) {
		logf_(n,
		    "refused node %s: its handshake proof is wrong "
		    "(another cookie?)",
		    p->name);
		atomic_fetch_add_explicit(
		    &n->n_refused, 1, memory_order_relaxed);
		peer_down_locked(n, p, "refused", TR_ECLOSED);
		pthread_mutex_unlock(&n->lock);
		return;
	}
	pe->auth = true;
	tr__sp_in_trust(n->in, pp);
	p->inp = pp;
	if (p->state == PS_HS)
		peer_set_up(n, p);
	pthread_mutex_unlock(&n->lock);
}

static void reject_in(
    struct tr_node *n, uint32_t pp, const Troupe__Wire__HelloReject *r)
{
	pthread_mutex_lock(&n->lock);
	struct pipe_ent *pe = pipe_find(n, pp);
	if (pe != NULL && !pe->auth) {
		logf_(n, "node %s refused us: %s", pe->p->name,
		    r->reason ? r->reason : "");
		peer_down_locked(n, pe->p, "refused us", TR_ECLOSED);
	}
	pthread_mutex_unlock(&n->lock);
}

/* ---- the receive path --------------------------------------------------- */

/* sp.c: one whole frame from connection `pp` (one at a time). */
static void frame_in(void *arg, uint32_t pp, const uint8_t *buf, size_t len)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	struct pipe_ent *pe = pipe_find(n, pp);
	struct peer *p = pe != NULL && pe->auth ? pe->p : NULL;
	pthread_mutex_unlock(&n->lock);
	if (len == 0) {
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
		return;
	}
	if (p == NULL &&
	    ((buf[0] != 0x0a && buf[0] != 0x12 && buf[0] != 0x1a) ||
	        len > TR__NODE_HS_MAX_FRAME)) {
		/* Only Hello, Proof and HelloReject from a pipe that has not
		 * proved the cookie, and nothing big: dropped undecoded. */
		atomic_fetch_add_explicit(
		    &n->n_unauth, 1, memory_order_relaxed);
		return;
	}
	/* Tiny envelopes decode into structs many times their size: the
	 * codec's budget accounts for that. */
	Troupe__Wire__Frame *f =
	    tr__frame_decode(buf, len, tr__decode_budget(len));
	if (f == NULL) {
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
		return;
	}
	switch (f->body_case) {
	case TROUPE__WIRE__FRAME__BODY_HELLO:
		hello_in(n, pp, f->hello);
		break;
	case TROUPE__WIRE__FRAME__BODY_PROOF:
		proof_in(n, pp, f->proof);
		break;
	case TROUPE__WIRE__FRAME__BODY_REJECT:
		reject_in(n, pp, f->reject);
		break;
	case TROUPE__WIRE__FRAME__BODY_BATCH:
		if (p == NULL) {
			atomic_fetch_add_explicit(
			    &n->n_unauth, 1, memory_order_relaxed);
			break;
		}
		atomic_store_explicit(
		    &p->last_rx, now_ms(), memory_order_relaxed);
		{
			struct rx r = {.n = n};
			for (size_t i = 0; i < f->batch->n_envelopes; i++)
				env_in(&r, p, f->batch->envelopes[i]);
			rx_leave(&r);
		}
		break;
	default:
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
		break;
	}
	tr__frame_free(f);
}

/* sp.c: connection `id` is gone. */
static void pipe_gone(void *arg, uint32_t id)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	for (uint32_t i = 0; i < n->npipes; i++) {
		struct pipe_ent *pe = &n->pipes[i];
		if (pe->id != id)
			continue;
		struct peer *p = pe->p;
		n->pipes[i] = n->pipes[--n->npipes];
		if (p != NULL && p->inp == id)
			peer_down_locked(n, p, "connection closed", TR_ECLOSED);
		break;
	}
	pthread_mutex_unlock(&n->lock);
}

/* sp.c: connection `id` broke the SP protocol (a frame over max_frame,
 * a bad header): counted as malformed; `gone` follows. */
static void pipe_refused(void *arg, uint32_t id, const char *why)
{
	struct tr_node *n = arg;
	(void)id;
	atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
	logf_(n, "closed an inbound connection: %s", why);
}

/* ---- the ticker --------------------------------------------------------- */

static void heartbeat(struct tr_node *n, struct peer *p)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_HEARTBEAT;
	pthread_mutex_lock(&p->lock);
	/* Unbounded: a heartbeat is two bytes, and refusing it would not
	 * help a peer that is already behind. */
	if (p->state == PS_UP)
		(void)env_put(n, p, &e, false, NULL);
	pthread_mutex_unlock(&p->lock);
	flush_peer(n, p, false);
}

static void *ticker_main(void *arg)
{
	struct tr_node *n = arg;
	int64_t tick = n->tick_ms;
	int64_t next = now_ms() + tick;
	pthread_mutex_lock(&n->lock);
	while (!n->stopping || n->reap != NULL) {
		if (n->reap != NULL) {
			struct peer *p = n->reap;
			n->reap = p->next;
			pthread_mutex_unlock(&n->lock);
			teardown(n, p);
			pthread_mutex_lock(&n->lock);
			continue;
		}
		int64_t t = now_ms();
		if (t >= next) {
			next = t + tick;
			struct peer *nx;
			for (struct peer *p = n->peers; p != NULL; p = nx) {
				nx = p->next;
				int64_t rx = atomic_load_explicit(
				    &p->last_rx, memory_order_relaxed);
				if (p->state == PS_UP &&
				    t - rx > TR__NODE_DOWN_TICKS * tick)
					peer_down_locked(n, p,
					    "no heartbeat for 4 ticks",
					    TR_ECLOSED);
				else if (p->state == PS_UP)
					heartbeat(n, p);
				else if (p->state == PS_HS &&
				         t > p->hs_deadline) {
					logf_(n, "handshake with %s timed out",
					    p->name);
					peer_down_locked(
					    n, p, "handshake", TR_ETIMEDOUT);
				}
			}
			pthread_mutex_unlock(&n->lock);
			flush_all(n, false);
			tr__sp_in_reap(n->in); /* closed inbound connections */
			pthread_mutex_lock(&n->lock);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + (next - t) * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&n->cv, &n->lock, &ts);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

void tr_node_opts_init(tr_node_opts *opts)
{
	if (opts != NULL)
		memset(opts, 0, sizeof(*opts));
}

static void node_free(struct tr_node *n)
{
	/* First: its callbacks use the node. */
	tr__sp_in_free(n->in);
	for (size_t i = 0; i < n->nurls; i++)
		free(n->urls[i]);
	free(n->urls);
	if (n->tls_srv != NULL)
		nng_tls_config_free(n->tls_srv);
	struct peer *lists[] = {n->peers, n->grave, n->reap};
	for (size_t k = 0; k < 3; k++) {
		struct peer *nx;
		for (struct peer *p = lists[k]; p != NULL; p = nx) {
			nx = p->next;
			if (p->batch != NULL)
				nng_msg_free(p->batch);
			while (p->qn != 0) {
				nng_msg_free(p->q[p->qhead]);
				p->qhead = (p->qhead + 1) % p->qcap;
				p->qn--;
			}
			free(p->q);
			for (size_t i = 0; i < p->nlisten; i++)
				free(p->listen[i]);
			free(p->listen);
			free(p->links);
			free(p->mons);
			tr__sp_out_free(p->out);
			pthread_cond_destroy(&p->idle);
			pthread_mutex_destroy(&p->lock);
			free(p);
		}
	}
	for (uint32_t i = 0; i < n->nnmons; i++)
		free(n->nmons[i].name);
	free(n->nmons);
	for (uint32_t i = 0; i < n->nbehs; i++)
		free(n->behs[i].name);
	free(n->behs);
	free(n->pipes);
	free(n->table);
	if (n->cookie != NULL)
		tr__wipe(n->cookie, n->cookielen);
	free(n->cookie);
	free(n->tls_ca);
	free(n->tls_cert);
	if (n->tls_key != NULL)
		tr__wipe(n->tls_key, strlen(n->tls_key));
	free(n->tls_key);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

static int listen_all(struct tr_node *n, const char *const *urls)
{
	size_t k = 0;
	while (urls[k] != NULL)
		k++;
	if (k == 0)
		return TR_EINVAL;
	n->urls = calloc(k, sizeof(*n->urls));
	if (n->urls == NULL)
		return TR_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		nng_tls_config *tls = NULL;
		if (is_tls(urls[i])) {
			if (n->tls_srv == NULL) {
				int rc = tls_config(
				    n, &n->tls_srv, NNG_TLS_MODE_SERVER, NULL);
				if (rc != TR_OK)
					return rc;
			}
			tls = n->tls_srv;
		}
		/* The URL as advertised: with the port the system chose for
		 * a tcp listener on port 0. Listener i is n->urls[i]. */
		int rc = tr__sp_in_listen(n->in, urls[i], tls, &n->urls[i]);
		if (rc != TR_OK)
			return rc;
		n->nurls++;
	}
	return TR_OK;
}

int tr_node_start(tr_node **nodep, tr_runtime *rt, const tr_node_opts *opts)
{
	if (nodep == NULL || rt == NULL || opts == NULL ||
	    !name_ok(opts->name) || opts->cookie == NULL ||
	    opts->cookie[0] == '\0' || opts->listen == NULL)
		return TR_EINVAL;
	*nodep = NULL;
	if (tr__dist_arg(rt) != NULL)
		return TR_EEXIST;
	struct tr_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	n->rt = rt;
	snprintf(n->name, sizeof(n->name), "%s", opts->name);
	if (opts->incarnation != 0) {
		n->inc = opts->incarnation;
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		n->inc =
		    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	}
	n->cookielen = strlen(opts->cookie);
	n->cookie = strdup(opts->cookie);
	n->tick_ms = opts->tick_ms ? opts->tick_ms : DEFAULT_TICK_MS;
	n->max_frame =
	    opts->max_frame ? opts->max_frame : rt->opts.max_msg_size + 65536;
	n->max_queue = opts->max_queue ? opts->max_queue : DEFAULT_QUEUE;
	n->table = calloc(TABLE_CAP, sizeof(*n->table));
	int rc = TR_OK;
	if (n->cookie == NULL || n->table == NULL)
		rc = TR_ENOMEM;
	if (rc == TR_OK &&
	    (opts->tls_ca_file || opts->tls_cert_file || opts->tls_key_file)) {
		if (!opts->tls_ca_file || !opts->tls_cert_file ||
		    !opts->tls_key_file)
			rc = TR_EINVAL;
		else if ((n->tls_ca = read_file(opts->tls_ca_file)) == NULL ||
		         (n->tls_cert = read_file(opts->tls_cert_file)) ==
		             NULL ||
		         (n->tls_key = read_file(opts->tls_key_file)) == NULL)
			rc = TR_EINVAL;
	}
	if (rc == TR_OK) {
		tr__sp_in_ops ops = {frame_in, pipe_gone, pipe_refused, n};
		rc = tr__sp_in_alloc(
		    &n->in, &ops, n->max_frame, TR__NODE_HS_MAX_FRAME);
	}
	if (rc == TR_OK)
		rc = listen_all(n, opts->listen);
	if (rc == TR_OK && opts->client_url != NULL) {
		/* The client endpoint has its own frame limit, far below
		 * max_frame: it buffers nothing larger before a request's
		 * signature is checked. */
		tr__client_opts co = {
		    .url = opts->client_url,
		    .node = n->name,
		    .cookie = opts->cookie,
		    .window_ms = opts->client_window_ms,
		    .max_request = opts->client_max_request,
		    .max_calls = opts->client_max_calls,
		    .tls_cert = n->tls_cert,
		    .tls_key = n->tls_key,
		};
		rc = tr__client_start(&n->client, rt, &co);
	}
	if (rc == TR_OK) {
		n->husk = calloc(1, sizeof(*n->husk));
		if (n->husk == NULL)
			rc = TR_ENOMEM;
		else
			n->husk->n = n;
	}
	if (rc == TR_OK &&
	    pthread_create(&n->ticker, NULL, ticker_main, n) != 0)
		rc = TR_ENOMEM;
	if (rc == TR_OK) {
		n->ticker_started = true;
		rc = tr__dist_attach(rt, &node_ops, n->husk);
	}
	if (rc != TR_OK) {
		if (n->ticker_started) {
			pthread_mutex_lock(&n->lock);
			n->stopping = true;
			pthread_cond_broadcast(&n->cv);
			pthread_mutex_unlock(&n->lock);
			pthread_join(n->ticker, NULL);
		}
		if (n->client != NULL)
			tr__client_stop(n->client);
		free(n->husk);
		node_free(n);
		return rc;
	}
	tr__sp_in_start(n->in);
	*nodep = n;
	return TR_OK;
}

void tr_node_stop(tr_node *n)
{
	if (n == NULL)
		return;
	if (n->client != NULL)
		tr__client_stop(n->client);
	n->client = NULL;
	/* No more sends: from here the hook answers TR_ENOPROC, and once
	 * `active` drains no thread is inside the node. */
	tr__dist_detach(n->rt);
	atomic_store_explicit(&n->husk->closed, 1, memory_order_seq_cst);
	while (atomic_load_explicit(&n->husk->active, memory_order_seq_cst))
		sched_yield();
	/* Stop receiving first, so no handshake races the teardown. */
	tr__sp_in_close(n->in);
	pthread_mutex_lock(&n->lock);
	struct peer *nx;
	for (struct peer *p = n->peers; p != NULL; p = nx) {
		nx = p->next;
		peer_down_locked(n, p, "this node stops", TR_ECLOSED);
	}
	n->stopping = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->ticker, NULL);
	struct husk *h = n->husk;
	h->n = NULL;
	pthread_mutex_lock(&husk_lock);
	h->next = husks;
	husks = h;
	pthread_mutex_unlock(&husk_lock);
	node_free(n);
}

int tr_node_stats_get(tr_node_stats *st, tr_node *n)
{
	if (st == NULL || n == NULL)
		return TR_EINVAL;
	memset(st, 0, sizeof(*st));
	st->frames_unauth =
	    atomic_load_explicit(&n->n_unauth, memory_order_relaxed);
	st->frames_malformed =
	    atomic_load_explicit(&n->n_bad, memory_order_relaxed);
	st->handshakes_refused =
	    atomic_load_explicit(&n->n_refused, memory_order_relaxed);
	pthread_mutex_lock(&n->lock);
	for (struct peer *p = n->peers; p != NULL; p = p->next)
		st->peers_up += p->state == PS_UP;
	pthread_mutex_unlock(&n->lock);
	return TR_OK;
}

tr_node *tr_node_of(tr_runtime *rt)
{
	if (rt == NULL)
		return NULL;
	struct husk *h = tr__dist_arg(rt);
	return h != NULL ? h->n : NULL;
}

const char *tr_node_listen_url(const tr_node *n, size_t i)
{
	if (n == NULL || i >= n->nurls)
		return NULL;
	return n->urls[i];
}

/* ---- connecting --------------------------------------------------------- */

int tr_node_connect(tr_node *n, const char *url, int64_t timeout_ms, char *peer)
{
	if (n == NULL || url == NULL || url[0] == '\0')
		return TR_EINVAL;
	pthread_mutex_lock(&n->lock);
	for (struct peer *p = n->peers; p != NULL; p = p->next) {
		for (size_t i = 0; p->state == PS_UP && i < p->nlisten; i++) {
			if (strcmp(p->listen[i], url) == 0) {
				if (peer != NULL)
					snprintf(peer, TR_NODE_NAME_MAX + 1,
					    "%s", p->name);
				pthread_mutex_unlock(&n->lock);
				return TR_OK;
			}
		}
	}
	pthread_mutex_unlock(&n->lock);
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	c->url = strdup(url);
	int rc =
	    c->url != NULL ? tr__random(c->nonce, sizeof(c->nonce)) : TR_ENOMEM;
	if (rc == TR_OK)
		rc = push_open(n, url, &c->out, &c->tls);
	if (rc != TR_OK) {
		free(c->url);
		free(c);
		return rc;
	}
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	pthread_mutex_lock(&n->lock);
	c->next = n->conns;
	n->conns = c;
	pthread_mutex_unlock(&n->lock);

	Troupe__Wire__Frame f;
	Troupe__Wire__Hello h;
	Troupe__Wire__NodeId id;
	hello_fill(n, &f, &h, &id, c->nonce, NULL);
	uint8_t *buf;
	size_t len;
	rc = tr__frame_encode(&buf, &len, &f);
	if (rc == TR_OK) {
		/* Written once the connection is up; the answer (or the
		 * deadline) ends the wait below. */
		nng_msg *m;
		if (nng_msg_alloc(&m, len) == 0) {
			memcpy(nng_msg_body(m), buf, len);
			tr__sp_out_send(c->out, m, false);
		} else {
			rc = TR_ENOMEM;
		}
		free(buf);
	}
	pthread_mutex_lock(&n->lock);
	c->sent = rc == TR_OK;
	while (rc == TR_OK && !c->done) {
		int64_t t = now_ms();
		if (t >= deadline) {
			rc = TR_ETIMEDOUT;
			break;
		}
		int64_t wait = deadline - t > 100 ? 100 : deadline - t;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + wait * 1000000;
		ts.tv_sec += ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&n->cv, &n->lock, &ts);
	}
	if (rc == TR_OK)
		rc = c->result;
	if (rc == TR_OK && peer != NULL)
		snprintf(peer, TR_NODE_NAME_MAX + 1, "%s", c->name);
	for (struct conn **cp = &n->conns; *cp != NULL; cp = &(*cp)->next) {
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	}
	if (c->peer != NULL)
		c->peer->conn = NULL;
	bool adopted = c->adopted;
	pthread_mutex_unlock(&n->lock);
	if (!adopted) {
		tr__sp_out_free(c->out);
		if (c->tls != NULL)
			nng_tls_config_free(c->tls);
	}
	if (rc == TR_ECLOSED)
		logf_(n, "connect to %s refused", url);
	free(c->url);
	free(c);
	return rc;
}

/* ---- names, spawn, node monitors ---------------------------------------- */

static struct peer *peer_up_ref(struct tr_node *n, const char *node_name)
{
	pthread_mutex_lock(&n->lock);
	struct peer *p = peer_up(n, node_name);
	pthread_mutex_unlock(&n->lock);
	return p;
}

/* Puts an envelope from an actor; its turn's end flushes it. With a key,
 * `e->from` may be left NULL and `wf` given: the sender's pid is only
 * encoded when the message starts an envelope rather than joining a
 * run. */
static int ctx_put(tr_ctx *ctx, struct tr_node *n, struct peer *p, Env *e,
    const struct runkey *k, WPid *wf)
{
	pthread_mutex_lock(&p->lock);
	int rc = TR_ENOPROC;
	if (p->state == PS_UP &&
	    (k == NULL || (rc = run_put(n, p, k, e->payload.data,
	                       e->payload.len, true)) == RUN_NONE)) {
		if (e->from == NULL && wf != NULL) {
			pid_out(n, k->from, wf);
			e->from = wf;
		}
		rc = env_put(n, p, e, true, k);
	}
	nng_msg *out = rc == TR_OK ? kick_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	if (out != NULL)
		start_send(p, out);
	if (rc != TR_OK)
		return rc;
	if (ctx->s != NULL) {
		atomic_store_explicit(&p->dirty, 1, memory_order_relaxed);
		ctx->s->dist_dirty = true;
	} else {
		flush_peer(n, p, true);
	}
	return TR_OK;
}

int tr_send_remote_named(tr_ctx *ctx, const char *node_name, const char *name,
    uint32_t type, const void *data, size_t size)
{
	if (ctx == NULL || node_name == NULL || name == NULL ||
	    (data == NULL && size != 0) || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	if (size > ctx->rt->opts.max_msg_size)
		return TR_EMSGSIZE;
	struct tr_node *n = tr_node_of(ctx->rt);
	if (n == NULL)
		return TR_ENOPROC;
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	e.name = (char *)name;
	e.type = type;
	e.payload.data = (uint8_t *)data;
	e.payload.len = size;
	struct runkey k = {TR_PID_NONE, tr_self(ctx), type, name};
	/* Acquire: pairs with the release store below, though the fields
	 * read here were published by peer_new already. */
	struct peer *p =
	    atomic_load_explicit(&n->named_peer, memory_order_acquire);
	if (p != NULL && strcmp(p->name, node_name) == 0) {
		/* A peer: never this node's own name. */
		int rc = ctx_put(ctx, n, p, &e, &k, &wf);
		if (rc != TR_ENOPROC)
			return rc;
		/* That entry went down: the node may be up again under a
		 * new entry. */
	}
	if (strcmp(node_name, n->name) == 0)
		return tr_send_named(ctx, name, type, data, size);
	p = peer_up_ref(n, node_name);
	if (p == NULL)
		return TR_ENOPROC;
	atomic_store_explicit(&n->named_peer, p, memory_order_release);
	return ctx_put(ctx, n, p, &e, &k, &wf);
}

int tr_node_whereis(tr_pid *pid, tr_node *n, const char *node_name,
    const char *name, int64_t timeout_ms)
{
	if (pid == NULL || n == NULL || node_name == NULL || name == NULL)
		return TR_EINVAL;
	if (strcmp(node_name, n->name) == 0)
		return tr_whereis(pid, n->rt, name);
	struct peer *p = peer_up_ref(n, node_name);
	if (p == NULL)
		return TR_ENOPROC;
	tr_port *port;
	int rc = tr_port_open(&port, n->rt);
	if (rc != TR_OK)
		return rc;
	uint64_t ref = tr__new_ref(n->rt);
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	pid_out(n, tr_port_pid(port), &wf);
	e.from = &wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	e.name = (char *)name;
	e.type = TR__NODE_T_WHEREIS;
	e.ref = ref;
	rc = env_send_now(n, p, &e, true);
	int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
	while (rc == TR_OK) {
		int64_t t = now_ms();
		tr_msg *m;
		rc = tr_port_recv(&m, port,
		    deadline == INT64_MAX ? -1
		    : t >= deadline       ? 0
		                          : deadline - t);
		if (rc != TR_OK)
			break;
		if (m->type == TR__NODE_T_WHEREIS_REPLY && m->ref == ref &&
		    m->size == sizeof(int32_t)) {
			int32_t err;
			memcpy(&err, m->data, sizeof(err));
			rc = err;
			if (rc == TR_OK)
				*pid = m->sender;
			tr_msg_free(m);
			break;
		}
		tr_msg_free(m);
	}
	tr_port_close(port);
	return rc;
}

int tr_node_name_of(char *buf, size_t cap, tr_node *n, tr_pid pid)
{
	if (buf == NULL || cap == 0 || n == NULL)
		return TR_EINVAL;
	const char *name = NULL;
	if (pid.node == 0) {
		name = n->name;
	} else {
		struct peer *p = peer_at(n, pid.node);
		if (p != NULL)
			name = p->name;
	}
	if (name == NULL)
		return TR_ENOENT;
	if (strlen(name) + 1 > cap)
		return TR_EINVAL;
	memcpy(buf, name, strlen(name) + 1);
	return TR_OK;
}

int tr_node_register_behaviour(
    tr_node *n, const char *name, const tr_behaviour *b)
{
	if (n == NULL || name == NULL || name[0] == '\0' || b == NULL ||
	    b->handle == NULL)
		return TR_EINVAL;
	pthread_mutex_lock(&n->lock);
	int rc = TR_OK;
	if (beh_find(n, name) != NULL)
		rc = TR_EEXIST;
	else if (!grow((void **)&n->behs, n->nbehs, &n->cap_behs,
	             sizeof(*n->behs)))
		rc = TR_ENOMEM;
	else if ((n->behs[n->nbehs].name = strdup(name)) == NULL)
		rc = TR_ENOMEM;
	else
		n->behs[n->nbehs++].b = b;
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int tr_spawn_remote(tr_ctx *ctx, uint64_t *ref, const char *node_name,
    const char *behaviour, const void *arg, size_t size, bool link)
{
	if (ctx == NULL || node_name == NULL || behaviour == NULL ||
	    (arg == NULL && size != 0))
		return TR_EINVAL;
	struct tr_node *n = tr_node_of(ctx->rt);
	if (n == NULL)
		return TR_ENOPROC;
	struct peer *p = peer_up_ref(n, node_name);
	if (p == NULL)
		return TR_ENOPROC;
	uint64_t r = tr__new_ref(ctx->rt);
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	pid_out(n, tr_self(ctx), &wf);
	e.from = &wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REQUEST;
	e.name = (char *)behaviour;
	e.payload.data = (uint8_t *)arg;
	e.payload.len = size;
	e.ref = r;
	e.flags = link ? TR__ENV_LINK : 0;
	int rc = ctx_put(ctx, n, p, &e, NULL, NULL);
	if (rc == TR_OK && ref != NULL)
		*ref = r;
	return rc;
}

int tr_monitor_node(tr_ctx *ctx, const char *node_name, bool on)
{
	if (ctx == NULL || (node_name != NULL && !name_ok(node_name)))
		return TR_EINVAL;
	struct tr_node *n = tr_node_of(ctx->rt);
	if (n == NULL)
		return TR_ENOTSUP;
	tr_pid self = tr_self(ctx);
	pthread_mutex_lock(&n->lock);
	int rc = TR_OK;
	if (on) {
		char *nm = node_name ? strdup(node_name) : NULL;
		if ((node_name != NULL && nm == NULL) ||
		    !grow((void **)&n->nmons, n->nnmons, &n->cap_nmons,
		        sizeof(*n->nmons))) {
			free(nm);
			rc = TR_ENOMEM;
		} else {
			n->nmons[n->nnmons++] = (struct nmon){self, nm};
			if (nm != NULL && peer_up(n, nm) == NULL &&
			    strcmp(nm, n->name) != 0) {
				tr_node_event ev;
				memset(&ev, 0, sizeof(ev));
				snprintf(ev.node, sizeof(ev.node), "%s", nm);
				(void)inject_msg(n, self, TR_MSG_NODEDOWN, &ev,
				    sizeof(ev), TR_PID_NONE, 0, 0);
			}
		}
	} else {
		for (uint32_t i = 0; i < n->nnmons;) {
			struct nmon *w = &n->nmons[i];
			bool same = node_name == NULL
			                ? w->name == NULL
			                : w->name != NULL &&
			                      strcmp(w->name, node_name) == 0;
			if (tr_pid_eq(w->pid, self) && same) {
				free(w->name);
				*w = n->nmons[--n->nnmons];
			} else {
				i++;
			}
		}
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}
