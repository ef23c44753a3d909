/*
 * troupe-echo: a TCP (or TLS, or ipc) echo server, an actor per
 * connection, on troupe's sockets (troupe/sock.h, docs/sockets.md).
 *
 *   troupe-echo [-p PORT] [-u URL] [-s SCHEDULERS] [-a ACCEPTORS] [-l]
 *               [--cert FILE --key FILE [--ca FILE]]
 *
 * The default URL is tcp://127.0.0.1:7000 (-p sets the port, -u the whole
 * URL; tls+tcp:// needs --cert and --key). -l echoes line by line
 * (TR_SOCK_LINE) instead of whatever arrives. It prints "troupe-echo
 * listening on URL" and serves until SIGINT or SIGTERM.
 *
 *   listener (owns the listening socket)
 *     spawns ACCEPTORS acceptors (4): each asks for a connection
 *     (tr_sock_accept), and when one comes spawns a connection actor,
 *     gives it the socket (tr_sock_give) and tells it to start, then asks
 *     again: an acceptor pool, as ranch has.
 *   connection actor (owns one socket)
 *     asks for data (tr_sock_recv), sends back what came (tr_sock_send),
 *     asks again. When the queue is full (TR_EAGAIN) it keeps the bytes
 *     and asks for nothing until TR_MSG_SOCK_DRAINED: a client that does
 *     not read its echoes stops being read, and TCP pushes back on it.
 *     It exits when its client closes, and its socket with it.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/sock.h"
#include "troupe/troupe.h"

#define T_START 1u /* acceptor -> connection: the socket is yours */

static int read_mode = TR_SOCK_RAW;

/* ---- a connection ------------------------------------------------------- */

struct conn {
	tr_sock sock;
	unsigned char *held; /* an echo the queue had no room for */
	size_t held_len;
};

static int conn_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	*state = c;
	return 0;
}

static int ask(tr_ctx *ctx, struct conn *c)
{
	int rc = tr_sock_recv(ctx, c->sock, read_mode, 0);
	return rc == TR_OK ? 0 : 1;
}

static int echo(tr_ctx *ctx, struct conn *c, const void *b, size_t n)
{
	int rc = tr_sock_send(ctx, c->sock, b, n);
	if (rc == TR_EAGAIN) {
		c->held = malloc(n);
		if (c->held == NULL)
			return 1;
		memcpy(c->held, b, n);
		c->held_len = n;
		return 0; /* read nothing more until the queue drains */
	}
	return rc == TR_OK ? ask(ctx, c) : 1;
}

static int conn_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct conn *c = state;
	switch (m->type) {
	case T_START:
		memcpy(&c->sock, m->data, sizeof(c->sock));
		return ask(ctx, c);
	case TR_MSG_SOCK_DATA: {
		const tr_sock_data *d = (const tr_sock_data *)m->data;
		return echo(ctx, c, d->bytes, d->len);
	}
	case TR_MSG_SOCK_DRAINED: {
		unsigned char *b = c->held;
		size_t n = c->held_len;
		c->held = NULL;
		int r = b != NULL ? echo(ctx, c, b, n) : 0;
		free(b);
		return r;
	}
	case TR_MSG_SOCK_CLOSED:
		tr_exit(ctx, TR_REASON_NORMAL); /* the client left */
		return 0;
	default:
		return 0;
	}
}

static void conn_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	struct conn *c = state;
	free(c->held);
	free(c);
}

static const tr_behaviour conn_bhv = {
    .name = "echo.conn",
    .init = conn_init,
    .handle = conn_handle,
    .terminate = conn_terminate,
};

/* ---- acceptors and the listener ----------------------------------------- */

static int acceptor_init(tr_ctx *ctx, void *arg, void **state)
{
	tr_sock *l = malloc(sizeof(*l));
	if (l == NULL)
		return TR_ENOMEM;
	memcpy(l, arg, sizeof(*l));
	*state = l;
	return tr_sock_accept(ctx, *l) == TR_OK ? 0 : 1;
}

static int acceptor_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_sock *l = state;
	if (m->type != TR_MSG_SOCK_ACCEPTED)
		return 0;
	const tr_sock_accepted *a = (const tr_sock_accepted *)m->data;
	tr_pid c;
	if (tr_spawn(&c, tr_runtime_of(ctx), &conn_bhv, NULL, NULL) != TR_OK ||
	    tr_sock_give(ctx, a->sock, c) != TR_OK ||
	    tr_send(ctx, c, T_START, &a->sock, sizeof(a->sock)) != TR_OK)
		(void)tr_sock_close(ctx, a->sock); /* if still ours */
	return tr_sock_accept(ctx, *l) == TR_OK ? 0 : 1;
}

static void acceptor_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour acceptor_bhv = {
    .name = "echo.acceptor",
    .init = acceptor_init,
    .handle = acceptor_handle,
    .terminate = acceptor_terminate,
};

struct listen_args {
	const char *url;
	tr_sock_opts opts;
	int acceptors;
	tr_port *report; /* told the bound URL, or the error */
};

#define T_LISTENING 2u

static int listener_init(tr_ctx *ctx, void *arg, void **state)
{
	struct listen_args *la = arg;
	/* The acceptors read the handle from here when they start, after
	 * this init has returned. */
	tr_sock *lp = malloc(sizeof(*lp));
	if (lp == NULL)
		return TR_ENOMEM;
	*state = lp;
	tr_sock l = TR_SOCK_NONE;
	int rc = tr_sock_listen(ctx, &l, la->url, &la->opts);
	*lp = l;
	char url[256] = "";
	if (rc == TR_OK)
		(void)tr_sock_url(ctx, l, url, sizeof(url));
	for (int i = 0; rc == TR_OK && i < la->acceptors; i++) {
		tr_pid a;
		/* Linked: an acceptor that fails takes the listener (and its
		 * socket) down with it, and the other way round. */
		rc = tr_spawn_link(ctx, &a, &acceptor_bhv, lp, NULL);
	}
	struct {
		int rc;
		char url[256];
	} r = {.rc = rc};
	memcpy(r.url, url, sizeof(url));
	(void)tr_send(ctx, tr_port_pid(la->report), T_LISTENING, &r, sizeof(r));
	if (rc != TR_OK && l == TR_SOCK_NONE)
		free(lp); /* no terminate follows a failed init */
	return rc == TR_OK ? 0 : 1;
}

static int listener_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static void listener_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour listener_bhv = {
    .name = "echo.listener",
    .init = listener_init,
    .handle = listener_handle,
    .terminate = listener_terminate,
};

/* ---- main --------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: troupe-echo [-p PORT] [-u URL] [-s SCHEDULERS] "
	                "[-a ACCEPTORS] [-l] [--cert FILE --key FILE "
	                "[--ca FILE]]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cert", required_argument, NULL, 'C'},
	    {"key", required_argument, NULL, 'K'},
	    {"ca", required_argument, NULL, 'A'},
	    {NULL, 0, NULL, 0},
	};
	char urlbuf[256];
	const char *url = NULL;
	int port = 7000, acceptors = 4, c;
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	struct listen_args la = {0};
	tr_sock_opts_init(&la.opts);
	while (
	    (c = getopt_long(argc, argv, "p:u:s:a:l", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'u':
			url = optarg;
			break;
		case 's':
			ro.schedulers = (unsigned)atoi(optarg);
			break;
		case 'a':
			acceptors = atoi(optarg);
			break;
		case 'l':
			read_mode = TR_SOCK_LINE;
			break;
		case 'C':
			la.opts.tls_cert_file = optarg;
			break;
		case 'K':
			la.opts.tls_key_file = optarg;
			break;
		case 'A':
			la.opts.tls_ca_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (acceptors < 1 || port < 0 || port > 65535)
		usage();
	if (url == NULL) {
		snprintf(urlbuf, sizeof(urlbuf), "tcp://127.0.0.1:%d", port);
		url = urlbuf;
	}
	/* SIGINT and SIGTERM are waited for below, by this thread alone. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	tr_runtime *rt;
	int rc = tr_runtime_start(&rt, &ro);
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-echo: %s\n", tr_strerror(rc));
		return 1;
	}
	tr_port *port_ = NULL;
	rc = tr_port_open(&port_, rt);
	la.url = url;
	la.acceptors = acceptors;
	la.report = port_;
	tr_pid lp;
	if (rc == TR_OK)
		rc = tr_spawn(&lp, rt, &listener_bhv, &la, NULL);
	tr_msg *m = NULL;
	if (rc == TR_OK)
		rc = tr_port_recv(&m, port_, 10000);
	if (rc == TR_OK) {
		int lrc;
		memcpy(&lrc, m->data, sizeof(lrc));
		if (lrc != TR_OK)
			rc = lrc;
		else
			printf("troupe-echo listening on %s\n",
			    (const char *)m->data + sizeof(int));
		fflush(stdout);
		tr_msg_free(m);
	}
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-echo: %s: %s\n", url, tr_strerror(rc));
		tr_port_close(port_);
		tr_runtime_stop(rt);
		return 1;
	}
	int sig;
	sigwait(&sigs, &sig);
	tr_port_close(port_);
	tr_runtime_stop(rt); /* every socket closes with its owner */
	return 0;
}
