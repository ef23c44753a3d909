/*
 * The observer's HTTP endpoint (include/troupe/observer.h): nng's HTTP
 * server on a loopback URL, one handler per route, each answering from
 * the counters the node and the runtime keep (observer_render.c). A
 * handler runs on one of nng's threads, never on a scheduler, and takes
 * no lock a scheduler waits for.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "crypto.h"
#include "node_int.h"
#include "observer_assets.h"
#include "observer_int.h"

#define TOKEN_LABEL "troupe observer token v1"

/* Lifetime: nng may run a handler after nng_http_server_stop returns
 * (it closes connections without waiting for them), and frees the
 * handlers only once the last connection is gone. So the struct has one
 * reference for the node and one per handler (dropped by nng's free
 * callback of the handler's data), and a handler that starts after
 * `stopping` touches nothing of the node; tr__observer_stop waits for
 * those that started before (`busy`). */
struct tr__observer {
	struct tr_node *n;
	nng_http_server *srv;
	char url[96];
	char token[TR_OBSERVER_TOKEN_SIZE];
	int64_t start_ms;
	_Atomic uint64_t refused;
	_Atomic unsigned refs;
	_Atomic unsigned busy;
	_Atomic bool stopping;
};

static void unref(void *arg)
{
	tr__observer *o = arg;
	if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
		tr__wipe(o->token, sizeof(o->token));
		free(o);
	}
}

int tr_observer_token(char *out, size_t cap, const char *cookie)
{
	if (out == NULL || cookie == NULL || cookie[0] == '\0' ||
	    cap < TR_OBSERVER_TOKEN_SIZE)
		return TR_EINVAL;
	uint8_t k[TR__KDF_LEN];
	int rc = tr__kdf(k, cookie, strlen(cookie), TOKEN_LABEL);
	if (rc != TR_OK) {
		tr__wipe(k, sizeof(k));
		return rc;
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < TR__KDF_LEN; i++) {
		out[2 * i] = hex[k[i] >> 4];
		out[2 * i + 1] = hex[k[i] & 15];
	}
	out[TR_OBSERVER_TOKEN_LEN] = '\0';
	tr__wipe(k, sizeof(k));
	return TR_OK;
}

/* Whether `host` (a URL's host, IPv6 in brackets) is a loopback one. */
static bool loopback(const char *host)
{
	if (strcmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	char h6[64];
	size_t l = strlen(host);
	if (l >= 2 && l < sizeof(h6) + 2 && host[0] == '[' &&
	    host[l - 1] == ']') {
		memcpy(h6, host + 1, l - 2);
		h6[l - 2] = '\0';
		host = h6;
	}
	struct in6_addr a6;
	return inet_pton(AF_INET6, host, &a6) == 1 &&
	       IN6_IS_ADDR_LOOPBACK(&a6);
}

/* The token of a request: its bearer header, else its ?token=. */
static bool authorized(tr__observer *o, nng_http_req *req)
{
	const char *got = NULL;
	size_t len = 0;
	const char *h = nng_http_req_get_header(req, "Authorization");
	if (h != NULL && strncmp(h, "Bearer ", 7) == 0) {
		got = h + 7;
		len = strlen(got);
	} else {
		const char *uri = nng_http_req_get_uri(req);
		const char *q = strchr(uri, '?');
		for (const char *p = q; p != NULL; p = strchr(p + 1, '&')) {
			if (strncmp(p + 1, "token=", 6) == 0) {
				got = p + 7;
				len = strcspn(got, "&#");
				break;
			}
		}
	}
	return got != NULL && len == TR_OBSERVER_TOKEN_LEN &&
	       tr__ct_equal(got, o->token, TR_OBSERVER_TOKEN_LEN);
}

static void reply(nng_aio *aio, uint16_t status, const char *type, char *body)
{
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_status(res, status);
	if (rv == 0 && type != NULL)
		rv = nng_http_res_set_header(res, "Content-Type", type);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (rv == 0 && status == NNG_HTTP_STATUS_UNAUTHORIZED)
		rv = nng_http_res_set_header(
		    res, "WWW-Authenticate", "Bearer realm=\"troupe\"");
	if (rv == 0 && body != NULL)
		rv = nng_http_res_copy_data(res, body, strlen(body));
	free(body);
	if (rv != 0) {
		if (res != NULL)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

/* The web page's files (observer_assets.h), served without the token:
 * they hold nothing of the node, and a browser fetches the script and the
 * style sheet without the page's query; every /api route the page then
 * calls needs the token. The policy headers keep the page from loading
 * anything from elsewhere, from being framed, and from sending its URL
 * (with the token in it) as a Referer. */
static void reply_asset(nng_aio *aio, const char *uri)
{
	char path[128];
	size_t l = strcspn(uri, "?#");
	const tr__obs_asset *a = NULL;
	if (l < sizeof(path)) {
		memcpy(path, uri, l);
		path[l] = '\0';
		a = tr__observer_asset(path);
	}
	if (a == NULL) {
		reply(aio, NNG_HTTP_STATUS_NOT_FOUND, "text/plain",
		    strdup("404 no such file\n"));
		return;
	}
	nng_http_res *res = NULL;
	int rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Type", a->type);
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Cache-Control", "no-store");
	if (rv == 0)
		rv = nng_http_res_set_header(res, "X-Content-Type-Options",
		    "nosniff");
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Referrer-Policy",
		    "no-referrer");
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Security-Policy",
		    "default-src 'none'; script-src 'self'; style-src 'self'; "
		    "img-src 'self' data:; connect-src 'self'; "
		    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
	if (rv == 0) /* static data: nng sends it without a copy */
		rv = nng_http_res_set_data(res, a->bytes, a->len);
	if (rv != 0) {
		if (res != NULL)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

enum route { R_METRICS, R_NODE, R_HEALTH, R_UI };

static void serve_on(nng_aio *aio, tr__observer *o, enum route r);

static void serve(nng_aio *aio, enum route r)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	tr__observer *o = nng_http_handler_get_data(h);
	/* Seq_cst, both: pairs with tr__observer_stop's store of stopping
	 * and load of busy (either it sees this one busy, or this one sees
	 * it stopping). */
	atomic_fetch_add_explicit(&o->busy, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&o->stopping, memory_order_seq_cst))
		reply(aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain",
		    strdup("503 the node is stopping\n"));
	else
		serve_on(aio, o, r);
	atomic_fetch_sub_explicit(&o->busy, 1, memory_order_seq_cst);
}

static void serve_on(nng_aio *aio, tr__observer *o, enum route r)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	if (r == R_UI) {
		reply_asset(aio, nng_http_req_get_uri(req));
		return;
	}
	if (!authorized(o, req)) {
		atomic_fetch_add_explicit(&o->refused, 1, memory_order_relaxed);
		reply(aio, NNG_HTTP_STATUS_UNAUTHORIZED, "text/plain",
		    strdup("401 the observer token is needed\n"));
		return;
	}
	uint64_t refused =
	    atomic_load_explicit(&o->refused, memory_order_relaxed);
	char *body = NULL;
	const char *type = "application/json";
	switch (r) {
	case R_METRICS:
		body = tr__observer_metrics(o->n, o->start_ms, refused);
		type = "text/plain; version=0.0.4; charset=utf-8";
		break;
	case R_NODE:
		body = tr__observer_node_json(o->n, o->start_ms, refused);
		break;
	case R_HEALTH:
		body = tr__observer_health_json(o->n);
		break;
	case R_UI:
		break;
	}
	if (body == NULL) {
		reply(aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR, "text/plain",
		    strdup("500 out of memory\n"));
		return;
	}
	reply(aio, NNG_HTTP_STATUS_OK, type, body);
}

static void on_metrics(nng_aio *aio)
{
	serve(aio, R_METRICS);
}

static void on_node(nng_aio *aio)
{
	serve(aio, R_NODE);
}

static void on_health(nng_aio *aio)
{
	serve(aio, R_HEALTH);
}

static void on_ui(nng_aio *aio)
{
	serve(aio, R_UI);
}

/* `tree`: the handler answers the paths below `path` as well. */
static int add_route(tr__observer *o, const char *path, bool tree,
    void (*fn)(nng_aio *))
{
	nng_http_handler *h = NULL;
	int rv = nng_http_handler_alloc(&h, path, fn);
	if (rv == 0)
		rv = nng_http_handler_set_method(h, "GET");
	if (rv == 0 && tree)
		rv = nng_http_handler_set_tree(h);
	if (rv == 0) {
		atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
		rv = nng_http_handler_set_data(h, o, unref);
		if (rv != 0)
			atomic_fetch_sub_explicit(
			    &o->refs, 1, memory_order_relaxed);
	}
	if (rv == 0)
		rv = nng_http_server_add_handler(o->srv, h);
	if (rv != 0 && h != NULL)
		nng_http_handler_free(h); /* drops its reference, if any */
	return rv;
}

int tr__observer_start(tr__observer **op, struct tr_node *n, const char *url,
    const char *cookie)
{
	*op = NULL;
	nng_url *u = NULL;
	if (url == NULL || nng_url_parse(&u, url) != 0)
		return TR_EINVAL;
	bool ok = strcmp(u->u_scheme, "http") == 0 && loopback(u->u_hostname) &&
	          (u->u_path[0] == '\0' || strcmp(u->u_path, "/") == 0);
	if (!ok) {
		nng_url_free(u);
		tr__node_logf(n,
		    "observer_url %s refused: http:// on a loopback host only",
		    url);
		return TR_EINVAL;
	}
	tr__observer *o = calloc(1, sizeof(*o));
	if (o == NULL) {
		nng_url_free(u);
		return TR_ENOMEM;
	}
	o->n = n;
	o->start_ms = tr__node_now_ms();
	atomic_init(&o->refs, 1);
	int rc = tr_observer_token(o->token, sizeof(o->token), cookie);
	int rv = rc == TR_OK ? nng_http_server_hold(&o->srv, u) : 0;
	if (rc == TR_OK && rv == 0)
		rv = add_route(o, "/metrics", false, on_metrics);
	if (rc == TR_OK && rv == 0)
		rv = add_route(o, "/api/node", false, on_node);
	if (rc == TR_OK && rv == 0)
		rv = add_route(o, "/api/health", false, on_health);
	if (rc == TR_OK && rv == 0)
		rv = add_route(o, "/", false, on_ui);
	if (rc == TR_OK && rv == 0)
		rv = add_route(o, "/ui", true, on_ui);
	/* nng hands out the running server of a URL in use in this process
	 * (its handlers then collide): only a server this start started is
	 * this start's to stop. */
	bool started = false;
	if (rc == TR_OK && rv == 0)
		started = (rv = nng_http_server_start(o->srv)) == 0;
	nng_sockaddr sa;
	if (rc == TR_OK && rv == 0)
		rv = nng_http_server_get_addr(o->srv, &sa);
	if (rc == TR_OK && rv == 0) {
		char host[64];
		if (sa.s_family == NNG_AF_INET6) {
			inet_ntop(AF_INET6, sa.s_in6.sa_addr, host, sizeof(host));
			snprintf(o->url, sizeof(o->url), "http://[%s]:%u", host,
			    ntohs(sa.s_in6.sa_port));
		} else {
			inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host));
			snprintf(o->url, sizeof(o->url), "http://%s:%u", host,
			    ntohs(sa.s_in.sa_port));
		}
	}
	nng_url_free(u);
	if (rc == TR_OK && rv != 0)
		rc = rv == NNG_EADDRINUSE ? TR_EEXIST
		     : rv == NNG_ENOMEM   ? TR_ENOMEM
		                          : TR_EINVAL;
	if (rc != TR_OK) {
		atomic_store_explicit(&o->stopping, true, memory_order_seq_cst);
		if (started)
			nng_http_server_stop(o->srv);
		if (o->srv != NULL)
			nng_http_server_release(o->srv);
		unref(o);
		return rc;
	}
	*op = o;
	return TR_OK;
}

void tr__observer_stop(tr__observer *o)
{
	if (o == NULL)
		return;
	atomic_store_explicit(&o->stopping, true, memory_order_seq_cst);
	nng_http_server_stop(o->srv);
	/* Handlers that began before `stopping` may still read the node. */
	while (atomic_load_explicit(&o->busy, memory_order_seq_cst) != 0)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	nng_http_server_release(o->srv);
	unref(o);
}

const char *tr__observer_url(const tr__observer *o)
{
	return o->url;
}

uint64_t tr__observer_refused(const tr__observer *o)
{
	return atomic_load_explicit(&o->refused, memory_order_relaxed);
}

int tr_node_observer_url(char *buf, size_t cap, tr_node *node)
{
	if (buf == NULL || node == NULL)
		return TR_EINVAL;
	if (node->observer == NULL)
		return TR_ENOENT;
	const char *u = tr__observer_url(node->observer);
	if (strlen(u) + 1 > cap)
		return TR_ENOMEM;
	memcpy(buf, u, strlen(u) + 1);
	return TR_OK;
}
