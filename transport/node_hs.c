/*
 * Connections and handshakes: what sp_in.c's connections deliver, and
 * the glue between connections and the handshake machine (hs.c).
 *
 * A frame from a connection that belongs to a committed pair is that
 * pair's (node_rx.c). Any other frame goes to the handshake machine, which
 * answers with actions carried out here: dial back, send a handshake
 * frame, trust a connection, commit a pair, close, finish a connect. The
 * machine is called under the node lock, and so are the actions, except
 * what must not run there (freeing a connection waits for its callbacks,
 * which take the node lock): connections to close linger on a list that
 * the control thread frees, and commits that replace a pair wait for the
 * control thread's teardown of the old one.
 */
#include "node_int.h"
#include "proc_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "nng_err.h"

#define LINGER_MS 200 /* a closed handshake's frames go out meanwhile */
#define HELD_MAX 256  /* frames a waiting pair may hold */

static bool is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

int tr__node_tls_config(
    struct tr_node *n, nng_tls_config **cfg, nng_tls_mode mode, const char *url)
{
	*cfg = NULL;
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

static void out_closed(void *arg, tr__sp_out *o);

/* A push0 connection to `url`; it dials in the background and redials
 * with backoff (20 ms up to a tick) until the first connection. */
static int push_open(
    struct tr_node *n, const char *url, tr__sp_out **o, nng_tls_config **tls)
{
	*tls = NULL;
	if (is_tls(url)) {
		int rc = tr__node_tls_config(n, tls, NNG_TLS_MODE_CLIENT, url);
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

/* ---- the pipe map and handshake connections (node lock held) ------------ */

static struct tr__peer *pipe_peer(struct tr_node *n, uint32_t id)
{
	for (uint32_t i = 0; i < n->npipes; i++)
		if (n->pipes[i].id == id)
			return n->pipes[i].p;
	return NULL;
}

static bool pipe_bind(struct tr_node *n, uint32_t id, struct tr__peer *p)
{
	if (!tr__node_grow((void **)&n->pipes, n->npipes, &n->cap_pipes,
	        sizeof(*n->pipes)))
		return false;
	n->pipes[n->npipes++] = (struct tr__pipe){id, p};
	return true;
}

static void pipes_unbind(struct tr_node *n, struct tr__peer *p)
{
	for (uint32_t i = 0; i < n->npipes;) {
		if (n->pipes[i].p == p)
			n->pipes[i] = n->pipes[--n->npipes];
		else
			i++;
	}
}

static struct tr__hsconn *hsc_find(struct tr_node *n, uint32_t id)
{
	for (uint32_t i = 0; id != 0 && i < n->nhsc; i++)
		if (n->hsc[i].id == id)
			return &n->hsc[i];
	return NULL;
}

static bool hsc_take(struct tr_node *n, uint32_t id, struct tr__hsconn *out)
{
	struct tr__hsconn *c = hsc_find(n, id);
	if (c == NULL)
		return false;
	*out = *c;
	*c = n->hsc[--n->nhsc];
	return true;
}

static void linger_add(struct tr_node *n, tr__sp_out *o, nng_tls_config *tls)
{
	struct tr__linger *l = malloc(sizeof(*l));
	if (l == NULL) {
		/* Freeing here could deadlock on a callback; leaving it open
		 * until the node stops is the lesser harm. */
		tr__sp_out_close(o);
		return;
	}
	l->at_ms = tr__node_now_ms() + LINGER_MS;
	l->out = o;
	l->tls = tls;
	l->next = n->linger;
	n->linger = l;
}

void tr__linger_sweep(struct tr_node *n, bool all)
{
	int64_t now = tr__node_now_ms();
	struct tr__linger *due = NULL;
	pthread_mutex_lock(&n->lock);
	for (struct tr__linger **lp = &n->linger; *lp != NULL;) {
		struct tr__linger *l = *lp;
		if (all || l->at_ms <= now) {
			*lp = l->next;
			l->next = due;
			due = l;
		} else {
			lp = &l->next;
		}
	}
	pthread_mutex_unlock(&n->lock);
	while (due != NULL) {
		struct tr__linger *l = due;
		due = l->next;
		tr__sp_out_free(l->out);
		if (l->tls != NULL)
			nng_tls_config_free(l->tls);
		free(l);
	}
}

static void send_frame(tr__sp_out *o, uint8_t *buf, size_t len)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, len) == 0) {
		memcpy(nng_msg_body(m), buf, len);
		tr__sp_out_send(o, m, false);
	}
	free(buf);
}

/* ---- peers going down -----------------------------------------------------
 */

static void wait_remove(struct tr_node *n, struct tr__peer *p)
{
	for (struct tr__peer **pp = &n->wait; *pp != NULL; pp = &(*pp)->rnext) {
		if (*pp == p) {
			*pp = p->rnext;
			p->rnext = NULL;
			return;
		}
	}
}

void tr__peer_down_locked(
    struct tr_node *n, struct tr__peer *p, const char *why)
{
	pthread_mutex_lock(&p->lock);
	int was = p->state;
	if (was == TR__PS_DOWN || was == TR__PS_KNOWN) {
		pthread_mutex_unlock(&p->lock);
		return;
	}
	p->state = TR__PS_DOWN;
	pthread_mutex_unlock(&p->lock);
	if (was == TR__PS_WAIT) {
		wait_remove(n, p);
		free(p->ack);
		p->ack = NULL;
	}
	if (p->linked)
		n->nidle++;
	pipes_unbind(n, p);
	tr__hs_pair_lost(n->hs, p->hs_id);
	p->was_up = was == TR__PS_UP;
	p->down_why = why;
	p->reaping = true;
	p->rnext = n->reap;
	n->reap = p;
	pthread_cond_broadcast(&n->cv);
	/* A process child comes and goes with its process, whose end its
	 * supervisor reports: its node only at info. */
	if (p->was_up)
		tr__node_logf_at(n,
		    tr__proc_is_child(n, p->name) ? TR_LOG_INFO : TR_LOG_WARNING,
		    "node %s is down: %s", p->name, why);
}

/* ---- actions ----------------------------------------------------------------
 */

static void run_acts(struct tr_node *n, tr__hs_acts *acts);

static void count_refusal(struct tr_node *n, const tr__hs_act *a)
{
	int c = a->rc > 0 && a->rc < TR__HS_R_NCAUSES ? a->rc : 0;
	atomic_fetch_add_explicit(&n->n_hs_refused[c], 1, memory_order_relaxed);
	if (c == TR__HS_R_MALFORMED)
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
	else if (c == TR__HS_R_PROOF || c == TR__HS_R_VERSION ||
	         c == TR__HS_R_SELF || c == TR__HS_R_STALE)
		atomic_fetch_add_explicit(
		    &n->n_refused, 1, memory_order_relaxed);
	tr__ratelogf(&n->log_hs[c], n->rt, 0,
	    "NODE %s: refused a handshake%s%s: %s", n->name,
	    a->name[0] != '\0' ? " with node " : "", a->name,
	    a->why != NULL ? a->why : "");
}

static void finish_up_locked(struct tr_node *n, struct tr__peer *p)
{
	if (p->ack != NULL) {
		/* Queued before the state turns UP, so the Ack precedes every
		 * batch on the wire. */
		(void)tr__frame_put(n, p, p->ack, p->acklen);
		p->ack = NULL;
	}
	int64_t t = tr__node_now_ms();
	atomic_store_explicit(&p->last_rx, t, memory_order_relaxed);
	p->since_ms = t;
	pthread_mutex_lock(&p->lock);
	p->state = TR__PS_UP;
	pthread_mutex_unlock(&p->lock);
	tr__node_logf_at(n,
	    tr__proc_is_child(n, p->name) ? TR_LOG_INFO : TR_LOG_WARNING,
	    "node %s is up (incarnation %llu)", p->name,
	    (unsigned long long)p->inc);
	tr__node_event_locked(n, TR_MSG_NODEUP, p->name, "connected");
	tr__mesh_up_locked(n, p);
	pthread_cond_broadcast(&n->cv);
}

/* The pair of handshake `a->hs` is committed (TR__HS_UP). */
static void commit(struct tr_node *n, tr__hs_act *a)
{
	struct tr__hsconn c;
	if (!hsc_take(n, a->hs, &c)) {
		free(a->frame);
		return;
	}
	struct tr__peer *old = NULL;
	for (struct tr__peer *p = n->peers; p != NULL && a->replaces;
	     p = p->next)
		if (p->hs_id == a->replaces && strcmp(p->name, a->name) == 0 &&
		    (p->state == TR__PS_UP || p->state == TR__PS_WAIT))
			old = p;
	struct tr__peer *ident = tr__peer_find(n, a->name, a->inc);
	struct tr__peer *wait_on = NULL;
	if (old != NULL) {
		tr__peer_down_locked(n, old,
		    old->inc == a->inc ? "it reconnected" : "it restarted");
		wait_on = old;
	} else if (ident != NULL && ident->reaping) {
		wait_on = ident; /* lost, and its teardown is under way */
	}
	struct tr__peer *p = tr__peer_new(n, a->name, a->inc,
	    wait_on != NULL ? TR__PS_WAIT : TR__PS_UP, ident);
	if (p == NULL) {
		tr__node_logf(
		    n, "no room for node %s: its handshake is lost", a->name);
		free(a->frame);
		linger_add(n, c.out, c.tls);
		if (a->pipe != 0)
			tr__sp_in_drop(n->in, a->pipe);
		return;
	}
	if (ident != NULL && ident != wait_on && !ident->reaping)
		tr__peer_retire(n, ident); /* unlinked by tr__peer_new */
	p->hs_id = a->hs;
	p->minor = a->minor;
	p->listen = a->urls;
	p->nlisten = a->nurls;
	a->urls = NULL;
	a->nurls = 0;
	p->out = c.out;
	p->tls = c.tls;
	p->inp = a->pipe;
	p->ack = a->frame;
	p->acklen = a->len;
	a->frame = NULL;
	tr__sp_out_adopt(p->out, tr__send_cb, p);
	if (a->pipe == 0 || !pipe_bind(n, a->pipe, p)) {
		tr__peer_down_locked(n, p, "its connection is gone");
		return;
	}
	if (wait_on != NULL) {
		p->wait_on = wait_on;
		p->rnext = n->wait;
		n->wait = p;
		return;
	}
	finish_up_locked(n, p);
}

static void waiter_done(struct tr_node *n, const tr__hs_act *a)
{
	for (struct tr__waiter *w = n->waiters; w != NULL; w = w->next) {
		if (w->id != a->hs || w->done)
			continue;
		w->done = true;
		w->rc = a->rc;
		w->alias = a->alias;
		snprintf(w->name, sizeof(w->name), "%s", a->name);
		pthread_cond_broadcast(&n->cv);
		return;
	}
	/* No tr_node_connect waits for it: one of the node's own. */
	tr__mesh_dial_done_locked(n, a->hs, a->rc, a->name);
}

static void act_dial(struct tr_node *n, tr__hs_act *a, tr__hs_acts *more)
{
	struct tr__hsconn c = {a->hs, NULL, NULL};
	int rc = TR_ENOMEM;
	if (tr__node_grow(
	        (void **)&n->hsc, n->nhsc, &n->cap_hsc, sizeof(*n->hsc)))
		rc = push_open(n, a->url, &c.out, &c.tls);
	if (rc != TR_OK) {
		tr__ratelogf(&n->log_hs[0], n->rt, 0,
		    "NODE %s: cannot dial back node %s at %s: %s", n->name,
		    a->name, a->url, tr_strerror(rc));
		free(a->frame);
		a->frame = NULL;
		tr__hs_out_lost(n->hs, more, a->hs);
		return;
	}
	n->hsc[n->nhsc++] = c;
	send_frame(c.out, a->frame, a->len);
	a->frame = NULL;
}

static void run_one(struct tr_node *n, tr__hs_act *a, tr__hs_acts *more)
{
	struct tr__hsconn *c;
	struct tr__hsconn gone;
	switch (a->kind) {
	case TR__HS_DIAL:
		act_dial(n, a, more);
		break;
	case TR__HS_SEND:
		if ((c = hsc_find(n, a->hs)) != NULL) {
			send_frame(c->out, a->frame, a->len);
			a->frame = NULL;
		}
		break;
	case TR__HS_TRUST:
		if (a->pipe != 0)
			tr__sp_in_trust(n->in, a->pipe);
		break;
	case TR__HS_UP:
		commit(n, a);
		break;
	case TR__HS_CLOSE:
		if (hsc_take(n, a->hs, &gone))
			linger_add(n, gone.out, gone.tls);
		if (a->pipe != 0 && pipe_peer(n, a->pipe) == NULL)
			tr__sp_in_drop(n->in, a->pipe);
		break;
	case TR__HS_DONE:
		waiter_done(n, a);
		break;
	case TR__HS_REFUSED:
		count_refusal(n, a);
		break;
	}
}

/* Carries out the actions in order, and those they lead to. */
static void run_acts(struct tr_node *n, tr__hs_acts *acts)
{
	tr__hs_acts more;
	while (acts->n != 0) {
		more.n = 0;
		for (uint32_t i = 0; i < acts->n; i++)
			run_one(n, &acts->v[i], &more);
		tr__hs_acts_clear(acts);
		*acts = more;
	}
}

void tr__hs_tick_locked(struct tr_node *n, int64_t now)
{
	tr__hs_acts acts = {0};
	bool more;
	do {
		more = tr__hs_tick(n->hs, &acts, now);
		run_acts(n, &acts);
	} while (more);
}

void tr__hs_close_all_locked(struct tr_node *n)
{
	while (n->nhsc != 0) {
		struct tr__hsconn *c = &n->hsc[--n->nhsc];
		linger_add(n, c->out, c->tls);
	}
	for (struct tr__waiter *w = n->waiters; w != NULL; w = w->next) {
		if (!w->done) {
			w->done = true;
			w->rc = TR_ECLOSED;
		}
	}
	pthread_cond_broadcast(&n->cv);
}

/* Replays frames a pair held while it waited (no lock held). */
static void replay(struct tr_node *n, struct tr__peer *p, struct tr__held *h)
{
	while (h != NULL) {
		struct tr__held *nx = h->next;
		Troupe__Wire__Frame *f =
		    tr__frame_decode(h->buf, h->len, tr__decode_budget(h->len));
		if (f != NULL &&
		    f->body_case == TROUPE__WIRE__FRAME__BODY_BATCH)
			tr__rx_batch(n, p, f->batch);
		tr__frame_free(f);
		free(h);
		h = nx;
	}
}

void tr__hs_commit_waiting(struct tr_node *n, struct tr__peer *torn)
{
	unsigned k = tr__node_ebr_enter(&n->ebr);
	pthread_mutex_lock(&n->lock);
	struct tr__peer *ready = NULL;
	for (struct tr__peer **pp = &n->wait; *pp != NULL;) {
		struct tr__peer *p = *pp;
		if (p->wait_on == torn) {
			*pp = p->rnext;
			p->wait_on = NULL;
			finish_up_locked(n, p);
			p->rnext = ready;
			ready = p;
		} else {
			pp = &p->rnext;
		}
	}
	struct tr__held *held[8];
	struct tr__peer *who[8];
	unsigned nh = 0;
	for (struct tr__peer *p = ready; p != NULL && nh < 8; p = p->rnext) {
		held[nh] = p->held;
		who[nh++] = p;
		p->held = NULL;
		p->held_tail = &p->held;
		p->nheld = 0;
	}
	pthread_mutex_unlock(&n->lock);
	for (unsigned i = 0; i < nh; i++)
		replay(n, who[i], held[i]);
	tr__node_ebr_exit(&n->ebr, k);
}

/* ---- sp.h's callbacks ------------------------------------------------------
 */

/* Keeps a copy of a frame for a pair that waits (node lock held); past
 * HELD_MAX the pair has broken the protocol. */
static void hold(
    struct tr_node *n, struct tr__peer *p, const uint8_t *buf, size_t len)
{
	struct tr__held *h =
	    p->nheld < HELD_MAX ? malloc(sizeof(*h) + len) : NULL;
	if (h == NULL) {
		tr__peer_down_locked(n, p, "too many frames before it was up");
		return;
	}
	h->next = NULL;
	h->len = len;
	memcpy(h->buf, buf, len);
	*p->held_tail = h;
	p->held_tail = &h->next;
	p->nheld++;
}

static void frame_in(void *arg, uint32_t pp, const uint8_t *buf, size_t len)
{
	struct tr_node *n = arg;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	pthread_mutex_lock(&n->lock);
	struct tr__peer *p = pipe_peer(n, pp);
	if (p != NULL && p->state == TR__PS_WAIT) {
		hold(n, p, buf, len);
		pthread_mutex_unlock(&n->lock);
		tr__node_ebr_exit(&n->ebr, k);
		return;
	}
	if (p == NULL && !n->stopping) {
		tr__hs_acts acts = {0};
		int listener = tr__sp_in_listener_of(n->in, pp);
		bool hs = tr__hs_frame(
		    n->hs, &acts, tr__node_now_ms(), pp, listener, buf, len);
		run_acts(n, &acts);
		pthread_mutex_unlock(&n->lock);
		if (!hs) {
			/* Nothing but handshake frames from a connection that
			 * has not proved the cookie: dropped undecoded. */
			atomic_fetch_add_explicit(
			    &n->n_unauth, 1, memory_order_relaxed);
			tr__ratelogf(&n->log_unauth, n->rt, 0,
			    "NODE %s: dropped a frame from a connection that "
			    "has not proved the cookie",
			    n->name);
		}
		tr__node_ebr_exit(&n->ebr, k);
		return;
	}
	pthread_mutex_unlock(&n->lock);
	Troupe__Wire__Frame *f =
	    p != NULL && len != 0
	        ? tr__frame_decode(buf, len, tr__decode_budget(len))
	        : NULL;
	if (f != NULL && f->body_case == TROUPE__WIRE__FRAME__BODY_BATCH) {
		atomic_store_explicit(
		    &p->last_rx, tr__node_now_ms(), memory_order_relaxed);
		atomic_fetch_add_explicit(&p->rx_bytes, len, memory_order_relaxed);
		tr__rx_batch(n, p, f->batch);
		tr__flow_after_frame(n, p);
	} else if (p != NULL) {
		/* Undecodable, or a handshake frame on a pair's connection
		 * (a late one of a crossed handshake): nothing to do. */
		atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
	}
	tr__frame_free(f);
	tr__node_ebr_exit(&n->ebr, k);
}

static void pipe_gone(void *arg, uint32_t id)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	struct tr__peer *p = pipe_peer(n, id);
	if (p != NULL && p->inp == id)
		tr__peer_down_locked(n, p, "connection closed");
	tr__hs_acts acts = {0};
	tr__hs_pipe_lost(n->hs, &acts, id);
	run_acts(n, &acts);
	pthread_mutex_unlock(&n->lock);
}

static void pipe_refused(void *arg, uint32_t id, const char *why)
{
	struct tr_node *n = arg;
	(void)id;
	atomic_fetch_add_explicit(&n->n_bad, 1, memory_order_relaxed);
	tr__ratelogf(&n->log_bad, n->rt, 0,
	    "NODE %s: closed an inbound connection: %s", n->name, why);
}

const tr__sp_in_ops tr__node_in_ops = {frame_in, pipe_gone, pipe_refused, NULL};

/* sp_out.c: our connection `o` failed after it was up. */
static void out_closed(void *arg, tr__sp_out *o)
{
	struct tr_node *n = arg;
	pthread_mutex_lock(&n->lock);
	struct tr__peer *p = n->peers;
	/* The state first: a pair that is down may be in its teardown,
	 * which frees its connection without the node lock. */
	for (; p != NULL; p = p->next)
		if ((p->state == TR__PS_UP || p->state == TR__PS_WAIT) &&
		    p->out == o)
			break;
	if (p != NULL) {
		tr__peer_down_locked(n, p, "connection closed");
	} else {
		for (uint32_t i = 0; i < n->nhsc; i++) {
			if (n->hsc[i].out == o) {
				tr__hs_acts acts = {0};
				tr__hs_out_lost(n->hs, &acts, n->hsc[i].id);
				run_acts(n, &acts);
				break;
			}
		}
	}
	pthread_mutex_unlock(&n->lock);
}

/* ---- connecting
 * --------------------------------------------------------------- */

static bool url_in(char *const *v, size_t k, const char *url)
{
	for (size_t i = 0; i < k; i++)
		if (strcmp(v[i], url) == 0)
			return true;
	return false;
}

/* Node lock held: the peer that is up and known to listen at `url`. */
static struct tr__peer *peer_at_url(struct tr_node *n, const char *url)
{
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
		if (p->state == TR__PS_UP &&
		    (url_in(p->listen, p->nlisten, url) ||
		        url_in(p->aliases, p->naliases, url)))
			return p;
	return NULL;
}

static void alias_add(struct tr__peer *p, const char *url)
{
	if (p->naliases >= TR__HS_MAX_URLS ||
	    url_in(p->aliases, p->naliases, url))
		return;
	char **v = realloc(p->aliases, (p->naliases + 1) * sizeof(char *));
	if (v == NULL)
		return;
	p->aliases = v;
	if ((v[p->naliases] = strdup(url)) != NULL)
		p->naliases++;
}

/* Waits on the node's condition (node lock held) until woken, `deadline`
 * or 100 ms, whichever comes first. */
static void timed_wait(struct tr_node *n, int64_t deadline)
{
	int64_t t = tr__node_now_ms();
	int64_t wait = deadline - t > 100 ? 100 : deadline - t;
	if (wait < 0)
		wait = 0;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + wait * 1000000;
	ts.tv_sec += ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	pthread_cond_timedwait(&n->cv, &n->lock, &ts);
}

static void copy_name(char *peer, const char *name)
{
	if (peer != NULL)
		snprintf(peer, TR_NODE_NAME_MAX + 1, "%s", name);
}

int tr__node_connect(
    struct tr_node *n, const char *url, int64_t timeout_ms, char *peer)
{
	pthread_mutex_lock(&n->lock);
	struct tr__peer *up = peer_at_url(n, url);
	if (up != NULL) {
		copy_name(peer, up->name);
		pthread_mutex_unlock(&n->lock);
		return TR_OK;
	}
	pthread_mutex_unlock(&n->lock);
	struct tr__hsconn c = {0, NULL, NULL};
	int rc = push_open(n, url, &c.out, &c.tls);
	if (rc != TR_OK)
		return rc;
	int64_t deadline =
	    timeout_ms < 0 ? INT64_MAX : tr__node_now_ms() + timeout_ms;
	struct tr__waiter w = {.url = url};
	tr__hs_acts acts = {0};
	pthread_mutex_lock(&n->lock);
	if (n->stopping)
		rc = TR_ECLOSED;
	else if (!tr__node_grow(
	             (void **)&n->hsc, n->nhsc, &n->cap_hsc, sizeof(*n->hsc)))
		rc = TR_ENOMEM;
	else
		rc =
		    tr__hs_connect(n->hs, &acts, tr__node_now_ms(), url, &w.id);
	if (rc != TR_OK) {
		linger_add(n, c.out, c.tls);
		pthread_mutex_unlock(&n->lock);
		return rc;
	}
	c.id = w.id;
	n->hsc[n->nhsc++] = c;
	w.next = n->waiters;
	n->waiters = &w;
	run_acts(n, &acts);
	while (!w.done) {
		int64_t t = tr__node_now_ms();
		if (t >= deadline) {
			tr__hs_cancel(n->hs, &acts, w.id);
			run_acts(n, &acts);
			if (!w.done) {
				w.done = true;
				w.rc = TR_ETIMEDOUT;
			}
			break;
		}
		timed_wait(n, deadline);
	}
	for (struct tr__waiter **wp = &n->waiters; *wp != NULL;
	     wp = &(*wp)->next) {
		if (*wp == &w) {
			*wp = w.next;
			break;
		}
	}
	rc = w.rc;
	if (rc == TR_OK) {
		struct tr__peer *p = tr__peer_up(n, w.name);
		if (p == NULL) {
			/* Committed, but waiting for the pair it replaces to
			 * be torn down: it is up in a moment. */
			for (p = n->wait; p != NULL; p = p->rnext)
				if (strcmp(p->name, w.name) == 0)
					break;
			while (p != NULL && !n->stopping &&
			       tr__peer_up(n, w.name) == NULL &&
			       tr__node_now_ms() < deadline)
				timed_wait(n, deadline);
			p = tr__peer_up(n, w.name);
		}
		if (p == NULL)
			rc = TR_ECLOSED;
		else if (w.alias)
			alias_add(p, url);
	}
	pthread_mutex_unlock(&n->lock);
	if (rc == TR_OK)
		copy_name(peer, w.name);
	else if (rc == TR_ECLOSED)
		tr__node_logf(n, "connect to %s refused", url);
	return rc;
}

/* The control thread's own dials (seeds, gossip, reconnects): started
 * like a tr_node_connect, but nobody waits; the machine's DONE for it
 * finds no waiter and goes to the mesh (waiter_done). */
int tr__node_dial_locked(struct tr_node *n, const char *url, uint32_t *hs)
{
	*hs = 0;
	if (n->stopping)
		return TR_ECLOSED;
	if (peer_at_url(n, url) != NULL)
		return TR_OK;
	struct tr__hsconn c = {0, NULL, NULL};
	if (!tr__node_grow(
	        (void **)&n->hsc, n->nhsc, &n->cap_hsc, sizeof(*n->hsc)))
		return TR_ENOMEM;
	int rc = push_open(n, url, &c.out, &c.tls);
	if (rc != TR_OK)
		return rc;
	tr__hs_acts acts = {0};
	uint32_t id = 0;
	rc = tr__hs_connect(n->hs, &acts, tr__node_now_ms(), url, &id);
	if (rc != TR_OK) {
		linger_add(n, c.out, c.tls);
		tr__hs_acts_clear(&acts);
		return rc;
	}
	c.id = id;
	n->hsc[n->nhsc++] = c;
	*hs = id;
	run_acts(n, &acts);
	return TR_OK;
}

void tr__node_dial_cancel_locked(struct tr_node *n, uint32_t hs)
{
	tr__hs_acts acts = {0};
	tr__hs_cancel(n->hs, &acts, hs);
	run_acts(n, &acts);
}
