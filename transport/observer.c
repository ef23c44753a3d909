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
#include <nng/supplemental/tls/tls.h>

#include "crypto.h"
#include "node_int.h"
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
	tr__obs_agent *agent;
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

void tr__observer_reply(tr__observer *o, nng_aio *aio, uint16_t status,
    const char *type, char *body)
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
	/* For the web page above all (observer_assets.h): nothing loaded
	 * from elsewhere, no framing, no guessed types, and its URL (with
	 * the token) never sent on as a Referer. */
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Content-Security-Policy",
		    "default-src 'none'; script-src 'self'; style-src 'self'; "
		    "img-src 'self' data:; connect-src 'self'; "
		    "frame-ancestors 'none'; base-uri 'none'; "
		    "form-action 'none'");
	if (rv == 0)
		rv = nng_http_res_set_header(
		    res, "X-Content-Type-Options", "nosniff");
	if (rv == 0)
		rv = nng_http_res_set_header(res, "Referrer-Policy", "no-referrer");
	if (rv == 0 && body != NULL)
		rv = nng_http_res_copy_data(res, body, strlen(body));
	free(body);
	if (rv != 0) {
		if (res != NULL)
			nng_http_res_free(res);
		nng_aio_finish(aio, rv);
	} else {
		nng_aio_set_output(aio, 0, res);
		nng_aio_finish(aio, 0);
	}
	/* The request's hold on the node, taken in serve(). */
	atomic_fetch_sub_explicit(&o->busy, 1, memory_order_seq_cst);
}

/* Copies the request's path and query (token= left out) into rq; false
 * when either is too long. */
static bool split_uri(tr__obs_req *rq, const char *uri)
{
	size_t pl = strcspn(uri, "?#");
	if (pl >= sizeof(rq->path))
		return false;
	memcpy(rq->path, uri, pl);
	rq->path[pl] = '\0';
	size_t ql = 0;
	if (uri[pl] == '?') {
		const char *q = uri + pl + 1;
		size_t qlen = strcspn(q, "#");
		for (size_t i = 0; i < qlen;) {
			size_t l = strcspn(q + i, "&#");
			if (l > qlen - i)
				l = qlen - i;
			if (l > 0 && strncmp(q + i, "token=", 6) != 0) {
				if (ql + l + 2 > sizeof(rq->query))
					return false;
				if (ql > 0)
					rq->query[ql++] = '&';
				memcpy(rq->query + ql, q + i, l);
				ql += l;
			}
			i += l + 1;
		}
	}
	rq->query[ql] = '\0';
	return true;
}

static void serve_on(nng_aio *aio, tr__observer *o);

static void serve(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	tr__observer *o = nng_http_handler_get_data(h);
	/* Seq_cst, both: pairs with tr__observer_stop's store of stopping
	 * and load of busy (either it sees this one busy, or this one sees
	 * it stopping). The hold ends with the answer
	 * (tr__observer_reply). */
	atomic_fetch_add_explicit(&o->busy, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&o->stopping, memory_order_seq_cst))
		tr__observer_reply(o, aio, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "text/plain", strdup("503 the node is stopping\n"));
	else
		serve_on(aio, o);
}

static void serve_on(nng_aio *aio, tr__observer *o)
{
	nng_http_req *req = nng_aio_get_input(aio, 0);
	const char *method = nng_http_req_get_method(req);
	tr__obs_req *rq = calloc(1, sizeof(*rq));
	if (rq == NULL) {
		tr__observer_reply(o, aio, NNG_HTTP_STATUS_INTERNAL_SERVER_ERROR,
		    "text/plain", strdup("500 out of memory\n"));
		return;
	}
	rq->n = o->n;
	rq->o = o;
	rq->aio = aio;
	rq->start_ms = o->start_ms;
	rq->holds = 1;
	snprintf(rq->method, sizeof(rq->method), "%s", method);
	if (!split_uri(rq, nng_http_req_get_uri(req))) {
		tr__obs_error(NULL, rq, NNG_HTTP_STATUS_ENTITY_TOO_LONG,
		    "the path or the query is too long");
		return;
	}
	rq->route = tr__obs_route_find(rq->method, rq->path);
	if (rq->route == NULL || !rq->route->open) {
		if (!authorized(o, req)) {
			atomic_fetch_add_explicit(
			    &o->refused, 1, memory_order_relaxed);
			tr__obs_answer(NULL, rq, NNG_HTTP_STATUS_UNAUTHORIZED,
			    "text/plain",
			    strdup("401 the observer token is needed\n"));
			return;
		}
	}
	rq->refused = atomic_load_explicit(&o->refused, memory_order_relaxed);
	if (rq->route == NULL) {
		bool other = tr__obs_route_other_method(rq->method, rq->path);
		tr__obs_error(NULL, rq,
		    other ? NNG_HTTP_STATUS_METHOD_NOT_ALLOWED
		          : NNG_HTTP_STATUS_NOT_FOUND,
		    other ? "another method is needed" : "no such route");
		return;
	}
	rq->tail = rq->path + strlen(rq->route->path);
	/* Another node's view goes through the agent, which asks that
	 * node's agent. */
	char other[TR_NODE_NAME_MAX + 1];
	bool remote = !rq->route->open && /* the page is this node's */
	              tr__obs_param(rq, "node", other, sizeof(other)) != NULL &&
	              strcmp(other, o->n->name) != 0;
	if (!rq->route->on_agent && !remote) {
		rq->route->fn(NULL, rq);
		return;
	}
	if (tr__obs_agent_post(o->agent, rq) != TR_OK)
		tr__obs_error(NULL, rq, NNG_HTTP_STATUS_SERVICE_UNAVAILABLE,
		    "the observer is busy");
}

static void on_request(nng_aio *aio)
{
	serve(aio);
}

static int add_handler(tr__observer *o, const char *method)
{
	nng_http_handler *h = NULL;
	int rv = nng_http_handler_alloc(&h, "/", on_request);
	if (rv == 0)
		rv = nng_http_handler_set_method(h, method);
	if (rv == 0)
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

/* Waits until every request that got past `stopping` has its answer. */
static void wait_idle(tr__observer *o)
{
	while (atomic_load_explicit(&o->busy, memory_order_seq_cst) != 0)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
}

int tr__observer_start(tr__observer **op, struct tr_node *n, const char *url,
    const char *cookie)
{
	*op = NULL;
	nng_url *u = NULL;
	if (url == NULL || nng_url_parse(&u, url) != 0)
		return TR_EINVAL;
	/* http:// on loopback; https:// anywhere, with mutual TLS: the
	 * node's own certificate, and a client certificate signed by the
	 * node's CA required of every client. */
	bool tls = strcmp(u->u_scheme, "https") == 0;
	bool ok = (tls || (strcmp(u->u_scheme, "http") == 0 &&
	                      loopback(u->u_hostname))) &&
	          (u->u_path[0] == '\0' || strcmp(u->u_path, "/") == 0);
	if (!ok || (tls && n->tls_ca == NULL)) {
		nng_url_free(u);
		tr__node_logf(n,
		    ok ? "observer_url %s refused: https:// needs the node's "
		         "tls_ca_file, tls_cert_file and tls_key_file"
		       : "observer_url %s refused: http:// on a loopback host, "
		         "or https://",
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
	if (rc == TR_OK && rv == 0 && tls) {
		nng_tls_config *cfg = NULL;
		rc = tr__node_tls_config(n, &cfg, NNG_TLS_MODE_SERVER, NULL);
		if (rc == TR_OK) {
			rv = nng_http_server_set_tls(o->srv, cfg);
			nng_tls_config_free(cfg); /* the server holds its own */
		}
	}
	if (rc == TR_OK)
		rc = tr__obs_agent_start(&o->agent, o, n);
	if (rc == TR_OK && rv == 0)
		rv = add_handler(o, "GET");
	if (rc == TR_OK && rv == 0)
		rv = add_handler(o, "POST");
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
			snprintf(o->url, sizeof(o->url), "%s://[%s]:%u",
			    tls ? "https" : "http", host, ntohs(sa.s_in6.sa_port));
		} else {
			inet_ntop(AF_INET, &sa.s_in.sa_addr, host, sizeof(host));
			snprintf(o->url, sizeof(o->url), "%s://%s:%u",
			    tls ? "https" : "http", host, ntohs(sa.s_in.sa_port));
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
		if (o->agent != NULL) {
			tr__obs_agent_quiesce(o->agent);
			wait_idle(o);
			tr__obs_agent_stop(o->agent);
		}
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
	/* Requests that came before `stopping` may still read the node, or
	 * wait on the agent, which from now on answers 503 at once. */
	tr__obs_agent_quiesce(o->agent);
	wait_idle(o);
	tr__obs_agent_stop(o->agent);
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

int64_t tr__observer_start_ms(const tr__observer *o)
{
	return o->start_ms;
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
