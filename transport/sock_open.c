/*
 * Listening, accepting and dialing (sock_int.h), and what they share:
 * options, TLS configurations from files, the ctl operation's callback,
 * and the shutdown of a slot when its runtime stops.
 *
 * A listener accepts only while an accept request waits and fewer than
 * max_conns of its connections are open; otherwise connections wait in
 * the kernel's backlog. A failed accept (out of descriptors, say) pauses
 * it for ACCEPT_PAUSE_MS, as nng's own listeners do, so that a flood
 * cannot spin a thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sock_int.h"

#define ACCEPT_PAUSE_MS 100
#define PEM_MAX (1u << 20)

int tr__sk_err(int rv)
{
	switch (rv) {
	case 0:
		return TR_OK;
	case NNG_ECONNREFUSED:
		return TR_ECONNREFUSED;
	case NNG_ECONNRESET:
		return TR_ECONNRESET;
	case NNG_EPEERAUTH:
		return TR_EPEERAUTH;
	case NNG_ECRYPTO:
	case NNG_EPROTO:
		return TR_EPROTO;
	case NNG_ETIMEDOUT:
		return TR_ETIMEDOUT;
	case NNG_ENOMEM:
		return TR_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return TR_EINVAL;
	case NNG_ENOTSUP:
		return TR_ENOTSUP;
	case NNG_EADDRINUSE:
		return TR_EEXIST;
	default:
		return TR_ECLOSED;
	}
}

int tr__sk_aios(tr__sock_slot *s)
{
	if (s->aios_stopped) {
		nng_aio_free(s->rx);
		nng_aio_free(s->tx);
		nng_aio_free(s->ctl);
		s->rx = s->tx = s->ctl = NULL;
		s->aios_stopped = false;
	}
	if ((s->rx == NULL && nng_aio_alloc(&s->rx, tr__sk_rx_cb, s) != 0) ||
	    (s->tx == NULL && nng_aio_alloc(&s->tx, tr__sk_tx_cb, s) != 0) ||
	    (s->ctl == NULL && nng_aio_alloc(&s->ctl, tr__sk_ctl_cb, s) != 0))
		return TR_ENOMEM;
	nng_aio_set_timeout(s->ctl, NNG_DURATION_DEFAULT);
	return TR_OK;
}

/* ---- options ------------------------------------------------------------ */

/* The caller's options over the defaults. */
static int opts_read(tr_sock_opts *o, const tr_sock_opts *in)
{
	tr_sock_opts_init(o);
	if (in != NULL) {
		if (in->struct_size < TR_SOCK_OPTS_V1_SIZE)
			return TR_EINVAL;
		size_t n =
		    in->struct_size < sizeof(*o) ? in->struct_size : sizeof(*o);
		memcpy(o, in, n);
		o->struct_size = (uint32_t)sizeof(*o);
	}
	if (o->send_queue == 0)
		o->send_queue = TR_SOCK_SEND_QUEUE_DEFAULT;
	if (o->max_packet == 0)
		o->max_packet = TR_SOCK_MAX_PACKET_DEFAULT;
	if (o->max_conns == 0)
		o->max_conns = TR_SOCK_MAX_CONNS_DEFAULT;
	if (o->linger_ms == 0)
		o->linger_ms = TR_SOCK_LINGER_MS_DEFAULT;
	return TR_OK;
}

static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	char *b = malloc(PEM_MAX + 1);
	size_t n = b != NULL ? fread(b, 1, PEM_MAX + 1, f) : 0;
	fclose(f);
	if (b == NULL || n == 0 || n > PEM_MAX) {
		free(b);
		return NULL;
	}
	b[n] = '\0';
	return b;
}

/* A TLS configuration for `url` (NULL and TR_OK unless tls+tcp://). */
static int tls_make(
    nng_tls_config **cfgp, const tr_sock_opts *o, const char *url, bool server)
{
	*cfgp = NULL;
	if (strncmp(url, "tls+tcp://", 10) != 0)
		return TR_OK;
	if (server && (o->tls_cert_file == NULL || o->tls_key_file == NULL))
		return TR_EINVAL;
	if (!server && o->tls_ca_file == NULL && !o->tls_insecure)
		return TR_EINVAL;
	nng_tls_config *cfg;
	int rv = nng_tls_config_alloc(
	    &cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (rv != 0)
		return rv == NNG_ENOTSUP ? TR_ENOTSUP : TR_ENOMEM;
	int rc = TR_OK;
	if (o->tls_cert_file != NULL && o->tls_key_file != NULL) {
		char *cert = read_pem(o->tls_cert_file);
		char *key = read_pem(o->tls_key_file);
		if (cert == NULL || key == NULL ||
		    nng_tls_config_own_cert(cfg, cert, key, NULL) != 0)
			rc = TR_EINVAL;
		free(cert);
		free(key);
	}
	if (rc == TR_OK && o->tls_ca_file != NULL &&
	    nng_tls_config_ca_file(cfg, o->tls_ca_file) != 0)
		rc = TR_EINVAL;
	if (rc == TR_OK &&
	    nng_tls_config_auth_mode(cfg, o->tls_ca_file != NULL
	                                      ? NNG_TLS_AUTH_MODE_REQUIRED
	                                      : NNG_TLS_AUTH_MODE_NONE) != 0)
		rc = TR_EINVAL;
	if (rc == TR_OK && !server && o->tls_server_name != NULL &&
	    nng_tls_config_server_name(cfg, o->tls_server_name) != 0)
		rc = TR_EINVAL;
	if (rc != TR_OK) {
		nng_tls_config_free(cfg);
		return rc;
	}
	*cfgp = cfg;
	return TR_OK;
}

/* A new slot of `kind` for the calling actor, locked, with its aios. */
static int slot_new(
    tr__sock_slot **sp, tr_ctx *ctx, int kind, const tr_sock_opts *o)
{
	tr__sock_mgr *mgr;
	int rc = tr__sk_mgr_get(&mgr, ctx);
	if (rc != TR_OK)
		return rc;
	tr__sock_slot *s = tr__sk_alloc();
	if (s == NULL)
		return TR_ENOMEM;
	s->kind = kind;
	s->rt = tr_runtime_of(ctx);
	s->mgr = mgr;
	s->owner = tr_self(ctx);
	s->send_queue = o->send_queue;
	s->max_packet = o->max_packet;
	s->linger_ms = o->linger_ms;
	s->half_close = o->half_close;
	if (tr__sk_aios(s) != TR_OK) {
		s->mgr = NULL;
		s->state = TR__SK_DEAD;
		tr__sk_release(s);
		return TR_ENOMEM;
	}
	*sp = s;
	return TR_OK;
}

/* Gives up a slot that never opened (locked). */
static void slot_abandon(tr__sock_slot *s)
{
	s->mgr = NULL;
	s->state = TR__SK_DEAD;
	tr__sk_release(s);
}

static int set_tcp_opts_listener(nng_stream_listener *l, const tr_sock_opts *o)
{
	/* ipc:// has neither option: nng says NNG_ENOTSUP, ignored. */
	int rv =
	    nng_stream_listener_set_bool(l, NNG_OPT_TCP_NODELAY, o->nodelay);
	if (rv == 0 || rv == NNG_ENOTSUP)
		rv = nng_stream_listener_set_bool(
		    l, NNG_OPT_TCP_KEEPALIVE, o->keepalive);
	return rv == NNG_ENOTSUP ? 0 : rv;
}

static int set_tcp_opts_dialer(nng_stream_dialer *d, const tr_sock_opts *o)
{
	int rv = nng_stream_dialer_set_bool(d, NNG_OPT_TCP_NODELAY, o->nodelay);
	if (rv == 0 || rv == NNG_ENOTSUP)
		rv = nng_stream_dialer_set_bool(
		    d, NNG_OPT_TCP_KEEPALIVE, o->keepalive);
	return rv == NNG_ENOTSUP ? 0 : rv;
}

/* The URL with the port a listener on port 0 got. */
static char *bound_url(nng_stream_listener *l, const char *url)
{
	const char *colon = strrchr(url, ':');
	int port;
	if (strncmp(url, "ipc://", 6) == 0 || colon == NULL ||
	    strcmp(colon, ":0") != 0 ||
	    nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return strdup(url);
	size_t base = (size_t)(colon - url);
	char *b = malloc(base + 16);
	if (b != NULL)
		snprintf(b, base + 16, "%.*s:%d", (int)base, url, port);
	return b;
}

/* ---- listening ---------------------------------------------------------- */

/* Accepts one more connection if one is wanted and allowed (locked). */
static void accept_more(tr__sock_slot *l)
{
	if (l->state != TR__SK_OPEN || l->ctl_busy || l->wn == 0)
		return;
	if (l->open_conns >= l->max_conns) {
		if (!l->at_max) {
			l->at_max = true;
			TR__SK_COUNT(l, accept_waits, 1);
		}
		return;
	}
	l->ctl_busy = true;
	nng_stream_listener_accept(l->lsn, l->ctl);
}

int tr_sock_listen(
    tr_ctx *ctx, tr_sock *lp, const char *url, const tr_sock_opts *opts)
{
	if (ctx == NULL || lp == NULL || url == NULL)
		return TR_EINVAL;
	tr_sock_opts o;
	int rc = opts_read(&o, opts);
	if (rc != TR_OK)
		return rc;
	nng_tls_config *tls = NULL;
	if ((rc = tls_make(&tls, &o, url, true)) != TR_OK)
		return rc;
	tr__sock_slot *s;
	if ((rc = slot_new(&s, ctx, TR__SK_LISTENER, &o)) != TR_OK) {
		if (tls != NULL)
			nng_tls_config_free(tls);
		return rc;
	}
	s->quick = tls == NULL;
	s->tls = tls;
	s->max_conns = o.max_conns;
	s->conn_opts = o;
	s->conn_opts.tls_cert_file = s->conn_opts.tls_key_file = NULL;
	s->conn_opts.tls_ca_file = s->conn_opts.tls_server_name = NULL;
	s->waiters = calloc(TR__SK_ACCEPT_WAITERS, sizeof(*s->waiters));
	int rv = s->waiters != NULL ? nng_stream_listener_alloc(&s->lsn, url)
	                            : NNG_ENOMEM;
	if (rv == 0 && tls != NULL)
		rv = nng_stream_listener_set_ptr(
		    s->lsn, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = set_tcp_opts_listener(s->lsn, &o);
	if (rv == 0)
		rv = nng_stream_listener_listen(s->lsn);
	if (rv == 0 && (s->url = bound_url(s->lsn, url)) == NULL)
		rv = NNG_ENOMEM;
	if (rv == 0 && (rc = tr__sk_mgr_adopt(s)) != TR_OK)
		rv = -1;
	if (rv != 0) {
		slot_abandon(s);
		return rv == -1 ? rc : tr__sk_err(rv);
	}
	s->state = TR__SK_OPEN;
	atomic_fetch_add_explicit(
	    &tr__sk_mgr_counters(s->mgr)->listeners, 1, memory_order_relaxed);
	*lp = tr__sk_handle(s);
	pthread_mutex_unlock(&s->mtx);
	return TR_OK;
}

int tr_sock_accept(tr_ctx *ctx, tr_sock l)
{
	if (ctx == NULL)
		return TR_EINVAL;
	tr__sock_slot *s = tr__sk_lock(l);
	if (s == NULL)
		return TR_ENOENT;
	int rc = TR_OK;
	if (s->kind != TR__SK_LISTENER)
		rc = TR_EINVAL;
	else if (s->state != TR__SK_OPEN || s->rt != tr_runtime_of(ctx))
		rc = s->state != TR__SK_OPEN ? TR_ENOENT : TR_EINVAL;
	else if (s->wn == TR__SK_ACCEPT_WAITERS)
		rc = TR_EAGAIN;
	if (rc == TR_OK) {
		s->waiters[(s->whead + s->wn++) % TR__SK_ACCEPT_WAITERS] =
		    tr_self(ctx);
		accept_more(s);
	}
	pthread_mutex_unlock(&s->mtx);
	return rc;
}

/* A connection accepted by listener `l` (locked) for its first waiter. */
/* What a new connection takes from its listener. */
struct accept_ctx {
	tr_runtime *rt;
	tr__sock_mgr *mgr;
	tr_pid owner;
	tr_sock listener;
	tr_sock_opts opts;
	bool quick;
};

/* Sets up connection `st` for its owner, with no listener's lock held
 * (a slot's mutex is never taken while another's is held). Returns false
 * if it was dropped. */
static bool accepted(const struct accept_ctx *a, nng_stream *st)
{
	tr__sock_slot *c = tr__sk_alloc();
	if (c == NULL) {
		nng_stream_free(st);
		return false;
	}
	c->kind = TR__SK_CONN;
	c->rt = a->rt;
	c->mgr = a->mgr;
	c->owner = a->owner;
	c->send_queue = a->opts.send_queue;
	c->max_packet = a->opts.max_packet;
	c->linger_ms = a->opts.linger_ms;
	c->half_close = a->opts.half_close;
	c->quick = a->quick;
	c->st = st;
	if (tr__sk_aios(c) != TR_OK || tr__sk_mgr_adopt(c) != TR_OK) {
		slot_abandon(c);
		return false;
	}
	c->state = TR__SK_OPEN;
	TR__SK_COUNT(c, accepted, 1);
	TR__SK_COUNT(c, conns, 1);
	tr_sock_accepted m = {
	    .listener = a->listener, .sock = tr__sk_handle(c)};
	if (tr_post(c->rt, a->owner, TR_MSG_SOCK_ACCEPTED, &m, sizeof(m)) !=
	    TR_OK) {
		/* The actor that asked is gone: nobody owns this one. */
		tr__sk_conn_close(c, true); /* unlocks */
		return false;
	}
	/* Counted against the listener from now on (its count was raised
	 * before this began). */
	c->parent = a->listener;
	pthread_mutex_unlock(&c->mtx);
	return true;
}

static void listener_ctl(tr__sock_slot *s, int rv)
{
	if (s->state != TR__SK_OPEN) {
		if (rv == 0)
			nng_stream_free(nng_aio_get_output(s->ctl, 0));
		tr__sk_release_check(s);
		return;
	}
	if (rv == 0 && s->at_max) {
		/* The pause after a failed accept is over. */
		s->at_max = false;
	} else if (rv == 0 && s->wn > 0) {
		struct accept_ctx a = {.rt = s->rt,
		    .mgr = s->mgr,
		    .owner = s->waiters[s->whead],
		    .listener = tr__sk_handle(s),
		    .opts = s->conn_opts,
		    .quick = s->quick};
		s->whead = (s->whead + 1) % TR__SK_ACCEPT_WAITERS;
		s->wn--;
		s->open_conns++; /* its slot in max_conns, held meanwhile */
		nng_stream *st = nng_aio_get_output(s->ctl, 0);
		pthread_mutex_unlock(&s->mtx);
		if (!accepted(&a, st)) {
			atomic_fetch_add_explicit(
			    &tr__sk_mgr_counters(a.mgr)->accept_dropped, 1,
			    memory_order_relaxed);
		} else {
			/* Accept on, if the listener is still there. */
			s = tr__sk_lock(a.listener);
			if (s != NULL) {
				accept_more(s);
				pthread_mutex_unlock(&s->mtx);
			}
			return;
		}
		/* Dropped: its slot in max_conns is free again, and the
		 * listener accepts on. */
		tr__sk_listener_conn_gone(a.listener);
		return;
	} else if (rv == 0) {
		nng_stream_free(nng_aio_get_output(s->ctl, 0));
	} else if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
		/* Out of descriptors or memory, or the peer left first. */
		s->at_max = true;
		s->ctl_busy = true;
		nng_sleep_aio(ACCEPT_PAUSE_MS, s->ctl);
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	accept_more(s);
	pthread_mutex_unlock(&s->mtx);
}

void tr__sk_listener_conn_gone(tr_sock parent)
{
	tr__sock_slot *l = tr__sk_lock(parent);
	if (l == NULL)
		return;
	if (l->kind == TR__SK_LISTENER && l->open_conns > 0) {
		l->open_conns--;
		if (l->at_max && !l->ctl_busy && l->open_conns < l->max_conns)
			l->at_max = false;
		accept_more(l);
	}
	pthread_mutex_unlock(&l->mtx);
}

void tr__sk_listener_close(tr__sock_slot *s, bool owner_exit)
{
	(void)owner_exit;
	if (s->state == TR__SK_OPEN) {
		s->state = TR__SK_DEAD;
		s->wn = 0;
		nng_stream_listener_close(s->lsn);
	}
	tr__sk_release_check(s);
}

/* ---- dialing ------------------------------------------------------------ */

int tr_sock_connect(tr_ctx *ctx, tr_sock *sp, const char *url,
    const tr_sock_opts *opts, int64_t timeout_ms)
{
	if (ctx == NULL || sp == NULL || url == NULL)
		return TR_EINVAL;
	tr_sock_opts o;
	int rc = opts_read(&o, opts);
	if (rc != TR_OK)
		return rc;
	nng_tls_config *tls = NULL;
	if ((rc = tls_make(&tls, &o, url, false)) != TR_OK)
		return rc;
	tr__sock_slot *s;
	if ((rc = slot_new(&s, ctx, TR__SK_CONN, &o)) != TR_OK) {
		if (tls != NULL)
			nng_tls_config_free(tls);
		return rc;
	}
	s->tls = tls;
	s->quick = tls == NULL;
	int rv = nng_stream_dialer_alloc(&s->dialer, url);
	if (rv == 0 && tls != NULL)
		rv = nng_stream_dialer_set_ptr(
		    s->dialer, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = set_tcp_opts_dialer(s->dialer, &o);
	if (rv == 0 && (rc = tr__sk_mgr_adopt(s)) != TR_OK)
		rv = -1;
	if (rv != 0) {
		slot_abandon(s);
		return rv == -1 ? rc : tr__sk_err(rv);
	}
	s->state = TR__SK_CONNECTING;
	TR__SK_COUNT(s, conns, 1);
	nng_aio_set_timeout(s->ctl, timeout_ms < 0 ? NNG_DURATION_INFINITE
	                            : timeout_ms > INT32_MAX
	                                ? INT32_MAX
	                                : (nng_duration)timeout_ms);
	s->ctl_busy = true;
	nng_stream_dialer_dial(s->dialer, s->ctl);
	*sp = tr__sk_handle(s);
	pthread_mutex_unlock(&s->mtx);
	return TR_OK;
}

static void dial_ctl(tr__sock_slot *s, int rv)
{
	nng_aio_set_timeout(s->ctl, NNG_DURATION_DEFAULT);
	if (s->state != TR__SK_CONNECTING) {
		/* Closed while dialing. */
		if (rv == 0)
			nng_stream_free(nng_aio_get_output(s->ctl, 0));
		tr__sk_release_check(s);
		return;
	}
	if (rv != 0) {
		TR__SK_COUNT(s, connect_failed, 1);
		s->state = TR__SK_DEAD;
		tr__sk_post_status(s->rt, s->owner, TR_MSG_SOCK_CONNECTED,
		    tr__sk_handle(s), tr__sk_err(rv));
		tr__sk_release_check(s);
		return;
	}
	s->st = nng_aio_get_output(s->ctl, 0);
	s->state = TR__SK_OPEN;
	TR__SK_COUNT(s, connected, 1);
	tr__sk_post_status(
	    s->rt, s->owner, TR_MSG_SOCK_CONNECTED, tr__sk_handle(s), TR_OK);
	tr__sk_conn_start(s);
	tr__sk_release_check(s);
}

void tr__sk_open_ctl(tr__sock_slot *s, int rv)
{
	if (s->kind == TR__SK_LISTENER)
		listener_ctl(s, rv);
	else
		dial_ctl(s, rv);
}

void tr__sk_ctl_cb(void *arg)
{
	tr__sock_slot *s = arg;
	pthread_mutex_lock(&s->mtx);
	int rv = nng_aio_result(s->ctl);
	s->ctl_busy = false;
	if (s->kind == TR__SK_CONN && s->state != TR__SK_CONNECTING &&
	    (s->dialer == NULL || s->st != NULL)) {
		/* A connection's linger timer: time is up, the queue is cut
		 * (or the timer was cancelled once the queue drained). */
		if (rv == 0 && s->state == TR__SK_CLOSING) {
			s->state = TR__SK_DEAD;
			if (s->st != NULL)
				nng_stream_close(s->st);
		}
		tr__sk_release_check(s);
		return;
	}
	tr__sk_open_ctl(s, rv);
}

/* ---- the runtime's stop ------------------------------------------------- */

void tr__sk_shutdown(tr__sock_slot *s)
{
	pthread_mutex_lock(&s->mtx);
	s->shutting = true;
	s->rwant = false;
	if (s->st != NULL)
		nng_stream_close(s->st);
	if (s->dialer != NULL)
		nng_stream_dialer_close(s->dialer);
	if (s->lsn != NULL)
		nng_stream_listener_close(s->lsn);
	pthread_mutex_unlock(&s->mtx);
	/* Waits for their callbacks, which find the slot shutting and leave
	 * it alone; no operation starts on them after this. */
	nng_aio_stop(s->rx);
	nng_aio_stop(s->tx);
	nng_aio_stop(s->ctl);
	pthread_mutex_lock(&s->mtx);
	if (s->kind == TR__SK_CONN) {
		if (s->mgr != NULL)
			atomic_fetch_sub_explicit(
			    &tr__sk_mgr_counters(s->mgr)->conns, 1,
			    memory_order_relaxed);
	} else if (s->mgr != NULL) {
		atomic_fetch_sub_explicit(
		    &tr__sk_mgr_counters(s->mgr)->listeners, 1,
		    memory_order_relaxed);
	}
	/* A stopped aio can never start again: the next socket of this
	 * slot gets new ones. */
	s->aios_stopped = true;
	s->shutting = false;
	s->state = TR__SK_DEAD;
	s->rx_busy = s->tx_busy = s->ctl_busy = false;
	s->mon = 0; /* the manager is ending: no UNWATCH */
	tr__sk_mgr_drop(s);
	tr__sk_release(s);
}
