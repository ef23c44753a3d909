/*
 * The inbound side of the connection layer: a set of pull0 listeners
 * (tr__sp_in), from its alloc to its free, with the sweep that closes
 * untrusted connections at their deadline and frees dead ones. Its
 * connections are sp_in.c's, its polled reads sp_poll.c's. See sp.h for
 * the contract, sp_in_int.h for the structures, sp_int.h for the locks.
 */
#include "sp_in_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nng_err.h"

/* Asks the sweep to run by `when` (in->mtx held). */
void tr__sp_sweep_want_locked(tr__sp_in *in, nng_time when)
{
	if (in->closing || in->sweep_state == SW_RUNNING)
		return; /* a running sweep looks at everything before it ends */
	nng_time now = nng_clock();
	if (in->sweep_state == SW_ARMED) {
		if (when < in->sweep_at) {
			/* Cancelling finishes the sleep at once: the sweep runs
			 * now, and arms itself again for what is left. */
			in->sweep_at = now;
			nng_aio_cancel(in->sweep);
		}
		return;
	}
	in->sweep_state = SW_ARMED;
	in->sweep_at = when;
	nng_sleep_aio(when > now ? (nng_duration)(when - now) : 0, in->sweep);
}

static void sweep_cb(void *arg)
{
	tr__sp_in *in = arg;
	pthread_mutex_lock(&in->mtx);
	if (in->closing) {
		in->sweep_state = SW_IDLE;
		pthread_mutex_unlock(&in->mtx);
		return;
	}
	in->sweep_state = SW_RUNNING;
	nng_time now = nng_clock();
	nng_time next = 0;
	bool any = false;
	for (size_t i = 0; i < in->nlsns; i++) {
		struct lsn *ls = in->lsns[i];
		while (ls->uhead != NULL && ls->uhead->deadline <= now) {
			in->st.closed_deadline++;
			/* Takes it off the list. */
			tr__sp_close_locked(ls->uhead);
		}
		if (ls->uhead != NULL && (!any || ls->uhead->deadline < next)) {
			next = ls->uhead->deadline;
			any = true;
		}
	}
	/* Dead connections with nothing pending; the others call for a
	 * sweep when they are done. */
	struct inconn *reap = NULL;
	for (struct inconn **cp = &in->dead; *cp != NULL;) {
		struct inconn *c = *cp;
		if (!c->rx_busy && !c->tx_busy) {
			*cp = c->next;
			c->next = reap;
			reap = c;
		} else {
			cp = &c->next;
		}
	}
	if (reap != NULL && (!any || now + REAP_MS < next)) {
		/* Under a flood, connections die one after another: one
		 * sweep every REAP_MS frees them in batches. */
		next = now + REAP_MS;
		any = true;
	}
	in->sweep_state = SW_IDLE;
	if (any)
		tr__sp_sweep_want_locked(in, next);
	pthread_mutex_unlock(&in->mtx);
	while (reap != NULL) {
		struct inconn *nx = reap->next;
		tr__sp_conn_free(reap);
		reap = nx;
	}
}

void tr__sp_in_opts_init(tr__sp_in_opts *opts)
{
	opts->max_frame = TR__SP_MAX_FRAME_DEFAULT;
	opts->max_untrusted = TR__SP_MAX_UNTRUSTED_DEFAULT;
	opts->handshake_ms = TR__SP_HANDSHAKE_MS_DEFAULT;
	opts->max_untrusted_conns = TR__SP_MAX_UNTRUSTED_CONNS_DEFAULT;
}

int tr__sp_in_alloc_opts(
    tr__sp_in **inp, const tr__sp_in_ops *ops, const tr__sp_in_opts *opts)
{
	tr__sp_in *in = calloc(1, sizeof(*in));
	if (in == NULL)
		return TR_ENOMEM;
	if (nng_aio_alloc(&in->sweep, sweep_cb, in) != 0) {
		free(in);
		return TR_ENOMEM;
	}
	if (nng_aio_alloc(&in->hwatch, tr__sp_hwatch_cb, in) != 0) {
		nng_aio_free(in->sweep);
		free(in);
		return TR_ENOMEM;
	}
	pthread_mutex_init(&in->mtx, NULL);
	pthread_mutex_init(&in->deliver, NULL);
	in->ops = *ops;
	tr__sp_in_opts_init(&in->opts);
	if (opts != NULL) {
		if (opts->max_frame != 0)
			in->opts.max_frame = opts->max_frame;
		if (opts->max_untrusted != 0)
			in->opts.max_untrusted = opts->max_untrusted;
		if (opts->handshake_ms != 0)
			in->opts.handshake_ms = opts->handshake_ms;
		if (opts->max_untrusted_conns != 0)
			in->opts.max_untrusted_conns =
			    opts->max_untrusted_conns;
	}
	if (in->opts.max_untrusted > in->opts.max_frame)
		in->opts.max_untrusted = in->opts.max_frame;
	*inp = in;
	return TR_OK;
}

int tr__sp_in_alloc(tr__sp_in **inp, const tr__sp_in_ops *ops, size_t max_frame,
    size_t max_untrusted)
{
	tr__sp_in_opts o;
	tr__sp_in_opts_init(&o);
	o.max_frame = max_frame;
	o.max_untrusted = max_untrusted;
	return tr__sp_in_alloc_opts(inp, ops, &o);
}

/* The URL with the port a listener on port 0 got. */
static char *bound_url(nng_stream_listener *l, const char *url)
{
	const char *colon = strrchr(url, ':');
	int port;
	if (tr__sp_url_ipc(url) || colon == NULL || strcmp(colon, ":0") != 0 ||
	    nng_stream_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) != 0)
		return strdup(url);
	size_t base = (size_t)(colon - url);
	char *s = malloc(base + 16);
	if (s != NULL)
		snprintf(s, base + 16, "%.*s:%d", (int)base, url, port);
	return s;
}

int tr__sp_in_listen(
    tr__sp_in *in, const char *url, nng_tls_config *tls, char **bound)
{
	struct lsn *ls = calloc(1, sizeof(*ls));
	if (ls == NULL)
		return TR_ENOMEM;
	ls->in = in;
	ls->idx = (int)in->nlsns;
	ls->ipc = tr__sp_url_ipc(url);
	ls->tls = tls != NULL || strncmp(url, "tls+", 4) == 0;
	int rv = nng_stream_listener_alloc(&ls->l, url);
	if (rv == 0 && tls != NULL)
		rv =
		    nng_stream_listener_set_ptr(ls->l, NNG_OPT_TLS_CONFIG, tls);
	if (rv == 0)
		rv = nng_stream_listener_listen(ls->l);
	if (rv == 0)
		rv = nng_aio_alloc(&ls->aio, tr__sp_accept_cb, ls);
	char *b = rv == 0 ? bound_url(ls->l, url) : NULL;
	struct lsn **v = NULL;
	if (rv == 0 && b != NULL)
		v = realloc(in->lsns, (in->nlsns + 1) * sizeof(*v));
	if (v == NULL) {
		free(b);
		if (ls->aio != NULL)
			nng_aio_free(ls->aio);
		if (ls->l != NULL)
			nng_stream_listener_free(ls->l);
		free(ls);
		return rv != 0 ? tr__nng_err(rv) : TR_ENOMEM;
	}
	/* The listener array is read by the sweep under the mutex. */
	pthread_mutex_lock(&in->mtx);
	in->lsns = v;
	in->lsns[in->nlsns++] = ls;
	pthread_mutex_unlock(&in->mtx);
	*bound = b;
	return TR_OK;
}

void tr__sp_in_start(tr__sp_in *in)
{
	for (size_t i = 0; i < in->nlsns; i++)
		nng_stream_listener_accept(in->lsns[i]->l, in->lsns[i]->aio);
}

void tr__sp_in_stats_get(tr__sp_in *in, tr__sp_in_stats *st)
{
	pthread_mutex_lock(&in->mtx);
	*st = in->st;
	pthread_mutex_unlock(&in->mtx);
}

void tr__sp_in_reap(tr__sp_in *in)
{
	pthread_mutex_lock(&in->mtx);
	struct inconn *d = in->dead;
	in->dead = NULL;
	pthread_mutex_unlock(&in->mtx);
	while (d != NULL) {
		struct inconn *nx = d->next;
		/* Stopping its aios waits for its callbacks. */
		tr__sp_conn_free(d);
		d = nx;
	}
}

void tr__sp_in_close(tr__sp_in *in)
{
	pthread_mutex_lock(&in->deliver);
	in->muted = true;
	pthread_mutex_unlock(&in->deliver);
	pthread_mutex_lock(&in->mtx);
	in->closing = true;
	for (struct inconn *c = in->conns; c != NULL; c = c->next)
		tr__sp_close_locked(c);
	pthread_mutex_unlock(&in->mtx);
	for (size_t i = 0; i < in->nlsns; i++)
		nng_stream_listener_close(in->lsns[i]->l);
}

void tr__sp_in_free(tr__sp_in *in)
{
	if (in == NULL)
		return;
	tr__sp_in_close(in);
	for (size_t i = 0; i < in->nlsns; i++) {
		nng_aio_stop(in->lsns[i]->aio);
		nng_aio_free(in->lsns[i]->aio);
		nng_stream_listener_free(in->lsns[i]->l);
	}
	/* No sweep runs after this, so nothing below is freed under us; and
	 * nothing is hot any more (closing took it all back). */
	nng_aio_stop(in->sweep);
	nng_aio_stop(in->hwatch);
	/* Every connection is closed: its read fails, or its kick runs, at
	 * once, and stopping its aios waits for conn_lost, which moves it to
	 * `dead`. */
	for (;;) {
		pthread_mutex_lock(&in->mtx);
		struct inconn *c = in->conns;
		pthread_mutex_unlock(&in->mtx);
		if (c == NULL)
			break;
		nng_aio_stop(c->rx);
		nng_aio_stop(c->kick);
		nng_aio_stop(c->tx);
		pthread_mutex_lock(&in->mtx);
		if (!c->dead) {
			/* Stopped before its callback saw the close. */
			for (struct inconn **cp = &in->conns; *cp != NULL;
			     cp = &(*cp)->next) {
				if (*cp == c) {
					*cp = c->next;
					break;
				}
			}
			c->dead = true;
			c->next = in->dead;
			in->dead = c;
		}
		pthread_mutex_unlock(&in->mtx);
	}
	tr__sp_in_reap(in);
	for (size_t i = 0; i < in->nlsns; i++)
		free(in->lsns[i]);
	free(in->lsns);
	nng_aio_free(in->sweep);
	nng_aio_free(in->hwatch);
	pthread_mutex_destroy(&in->deliver);
	pthread_mutex_destroy(&in->mtx);
	free(in);
}
