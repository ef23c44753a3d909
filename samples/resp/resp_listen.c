/*
 * The listener and its acceptors, as in samples/sockets/echo.c: the
 * listener owns the listening socket and starts the acceptors, linked to
 * it; each acceptor asks for a connection (tr_sock_accept), spawns a
 * connection actor for it, gives it the socket and tells it so
 * (RS_MSG_START, after tr_sock_give: messages from one sender arrive in
 * order, so the connection reads only once it owns the socket), and asks
 * again. Each acceptor has its own copy of the listener's handle.
 */
#include <stdlib.h>
#include <string.h>

#include "resp.h"

struct acceptor {
	tr_sock l;
	const rs_server *srv;
};

static int acceptor_init(tr_ctx *ctx, void *arg, void **state)
{
	struct acceptor *a = arg; /* its own copy */
	*state = a;
	if (tr_sock_accept(ctx, a->l) != TR_OK) {
		free(a); /* no terminate follows a failed init */
		return 1;
	}
	return 0;
}

static int acceptor_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct acceptor *a = state;
	if (m->type != TR_MSG_SOCK_ACCEPTED)
		return 0;
	const tr_sock_accepted *acc = (const tr_sock_accepted *)m->data;
	tr_pid c;
	/* The connection's argument is the server, which outlives it. */
	if (tr_spawn(&c, tr_runtime_of(ctx), &rs_conn_bhv, (void *)a->srv,
	        NULL) != TR_OK ||
	    tr_sock_give(ctx, acc->sock, c) != TR_OK ||
	    tr_send(ctx, c, RS_MSG_START, &acc->sock, sizeof(acc->sock)) !=
	        TR_OK)
		(void)tr_sock_close(ctx, acc->sock); /* if still ours */
	return tr_sock_accept(ctx, a->l) == TR_OK ? 0 : 1;
}

static void acceptor_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour acceptor_bhv = {
    .name = "resp.acceptor",
    .init = acceptor_init,
    .handle = acceptor_handle,
    .terminate = acceptor_terminate,
};

static int listener_init(tr_ctx *ctx, void *arg, void **state)
{
	const rs_listen_args *la = arg;
	tr_sock l = TR_SOCK_NONE;
	rs_listening r = {.rc = tr_sock_listen(ctx, &l, la->url, &la->opts)};
	if (r.rc == TR_OK)
		(void)tr_sock_url(ctx, l, r.url, sizeof(r.url));
	for (int i = 0; r.rc == TR_OK && i < la->acceptors; i++) {
		/* Linked: an acceptor that fails takes the listener (and its
		 * socket) down with it, and the other way round. */
		struct acceptor *a = malloc(sizeof(*a));
		if (a == NULL) {
			r.rc = TR_ENOMEM;
			break;
		}
		*a = (struct acceptor){.l = l, .srv = la->srv};
		tr_pid p;
		r.rc = tr_spawn_link(ctx, &p, &acceptor_bhv, a, NULL);
		if (r.rc != TR_OK)
			free(a);
	}
	(void)tr_send(ctx, la->report, RS_MSG_LISTENING, &r, sizeof(r));
	*state = NULL;
	return r.rc == TR_OK ? 0 : 1; /* its socket closes with it */
}

static int listener_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

const tr_behaviour rs_listener_bhv = {
    .name = "resp.listener",
    .init = listener_init,
    .handle = listener_handle,
};
