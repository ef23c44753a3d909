/*
 * DNS discovery (troupe/dns.h): a seed source that looks the members of
 * a cluster up in DNS, the A/AAAA records of one name through glibc's
 * getaddrinfo, or SRV records through libresolv (res_nsearch, then
 * ns_initparse / ns_parserr for the answer section) and getaddrinfo of
 * each target. There is no DNS code of our own: what libresolv splits,
 * we only bound and check.
 *
 * Lookups run on a thread of the source's own, never on the node's
 * control thread, which also sends heartbeats: a DNS server that does not
 * answer would otherwise hold them up for the resolver's timeout (10 s by
 * default) and get this node declared down by every peer. The node's
 * `resolve` only copies the URLs of the last good answer, under the
 * source's lock.
 *
 * TROUPE_DNS (tr__node_dns_env) makes such a source for a node that was
 * given none; the node owns it then.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "abi.h"
#include "node_int.h"
#include "ratelog.h"
#include "troupe/dns.h"

#define DNS_INTERVAL_MS 5000u
#define DNS_INTERVAL_MIN_MS 100u
#define DNS_URLS 64u
#define DNS_URLS_MAX 1024u
/* How often the node asks: a copy of a few URLs, so often is cheap, and
 * the node takes a new answer within this (or its tick). */
#define DNS_ASK_MS 250u
/* The largest answer libresolv is given room for (a TCP answer can be
 * this long; a longer one is cut by res_nsearch and parsed as far as it
 * goes). */
#define DNS_ANSWER_MAX 65535

struct tr_node_dns {
	tr_node_dns_opts o; /* o.name points to `name` */
	char name[TR_NODE_DNS_NAME_MAX + 1];
	tr__ratelog log_fail, log_refused;
	pthread_t thread;
	bool started;

	/* The lock: everything below. */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stop;
	char **urls; /* the last good answer */
	size_t nurls;
	uint64_t lookups, failures, refused;
};

/* ---- options ------------------------------------------------------------- */

static const char *scheme_of(const char *s)
{
	if (s == NULL || strcmp(s, "tcp") == 0)
		return "tcp";
	if (strcmp(s, "tls+tcp") == 0)
		return "tls+tcp";
	return NULL;
}

/* Reads the caller's options into `o` (the library's size) and checks
 * them. */
static int opts_in(tr_node_dns_opts *o, const tr_node_dns_opts *in)
{
	if (in == NULL)
		return TR_EINVAL;
	tr_node_dns_opts_init(o);
	int rc = tr__struct_in(o, sizeof(*o), in, TR_NODE_DNS_OPTS_V1_SIZE);
	if (rc != TR_OK)
		return rc;
	size_t len = o->name != NULL ? strlen(o->name) : 0;
	if (len == 0 || len > TR_NODE_DNS_NAME_MAX)
		return TR_EINVAL;
	if (o->kind == TR_NODE_DNS_A) {
		if (o->port == 0 || o->port > 65535)
			return TR_EINVAL;
	} else if (o->kind == TR_NODE_DNS_SRV) {
		if (o->port != 0)
			return TR_EINVAL;
	} else {
		return TR_EINVAL;
	}
	if ((o->scheme = scheme_of(o->scheme)) == NULL)
		return TR_EINVAL;
	if (o->family != 0 && o->family != 4 && o->family != 6)
		return TR_EINVAL;
	if (o->interval_ms == 0)
		o->interval_ms = DNS_INTERVAL_MS;
	if (o->interval_ms < DNS_INTERVAL_MIN_MS)
		return TR_EINVAL;
	if (o->max_urls == 0)
		o->max_urls = DNS_URLS;
	if (o->max_urls > DNS_URLS_MAX)
		return TR_EINVAL;
	return TR_OK;
}

int tr_node_dns_parse(
    tr_node_dns_opts *o, char *buf, size_t cap, const char *spec)
{
	if (o == NULL || buf == NULL || spec == NULL)
		return TR_EINVAL;
	bool srv = strncmp(spec, "srv:", 4) == 0;
	const char *s = srv ? spec + 4 : spec;
	const char *scheme = "tcp";
	const char *sep = strstr(s, "://");
	if (sep != NULL) {
		char sch[8];
		size_t l = (size_t)(sep - s);
		if (l >= sizeof(sch))
			return TR_EINVAL;
		memcpy(sch, s, l);
		sch[l] = '\0';
		if ((scheme = scheme_of(sch)) == NULL)
			return TR_EINVAL;
		s = sep + 3;
	}
	size_t len = strlen(s);
	unsigned long port = 0;
	if (!srv) {
		const char *colon = strrchr(s, ':');
		if (colon == NULL || colon[1] == '\0')
			return TR_EINVAL;
		char *end;
		port = strtoul(colon + 1, &end, 10);
		if (*end != '\0' || port == 0 || port > 65535 ||
		    colon[1] == '+' || colon[1] == '-')
			return TR_EINVAL;
		len = (size_t)(colon - s);
	}
	if (len == 0 || len > TR_NODE_DNS_NAME_MAX || len >= cap ||
	    memchr(s, ':', len) != NULL || memchr(s, '/', len) != NULL)
		return TR_EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	o->name = buf;
	o->kind = srv ? TR_NODE_DNS_SRV : TR_NODE_DNS_A;
	o->port = (uint32_t)port;
	o->scheme = scheme;
	return TR_OK;
}

/* ---- one lookup ---------------------------------------------------------- */

/* The URLs of one answer, bounded by max. */
struct urls {
	char **v;
	size_t n, max;
	uint64_t refused;
	bool nomem;
};

static void urls_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void urls_add(struct urls *u, const char *url)
{
	for (size_t i = 0; i < u->n; i++)
		if (strcmp(u->v[i], url) == 0)
			return; /* an address under two names */
	if (u->n >= u->max) {
		u->refused++;
		return;
	}
	char **v = realloc(u->v, (u->n + 1) * sizeof(*v));
	if (v == NULL) {
		u->nomem = true;
		return;
	}
	u->v = v;
	if ((v[u->n] = strdup(url)) == NULL)
		u->nomem = true;
	else
		u->n++;
}

/* The addresses of `host`, each with `port`, into `u`. */
static int addrs(
    const tr_node_dns_opts *o, const char *host, unsigned port, struct urls *u)
{
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = o->family == 4   ? AF_INET
	                  : o->family == 6 ? AF_INET6
	                                   : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int e = getaddrinfo(host, NULL, &hints, &res);
	if (e != 0)
		return e == EAI_MEMORY ? TR_ENOMEM : TR_ENOENT;
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		char ip[INET6_ADDRSTRLEN], url[TR_NODE_URL_MAX + 1];
		int l = -1;
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *sa =
			    (const void *)ai->ai_addr;
			if (inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip)))
				l = snprintf(url, sizeof(url), "%s://%s:%u",
				    o->scheme, ip, port);
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *sa =
			    (const void *)ai->ai_addr;
			/* A link-local address needs its interface, which a
			 * URL of another node would not name: not taken. */
			if (sa->sin6_scope_id == 0 &&
			    inet_ntop(AF_INET6, &sa->sin6_addr, ip, sizeof(ip)))
				l = snprintf(url, sizeof(url), "%s://[%s]:%u",
				    o->scheme, ip, port);
		}
		if (l <= 0 || (size_t)l >= sizeof(url))
			u->refused++;
		else
			urls_add(u, url);
	}
	freeaddrinfo(res);
	return TR_OK;
}

struct target {
	char host[NS_MAXDNAME];
	unsigned port, prio, weight;
};

/* Lower priority first, then higher weight (RFC 2782's order, without
 * its random pick: every target is a member, the order only says which
 * are dialled first). */
static int target_cmp(const void *a, const void *b)
{
	const struct target *x = a, *y = b;
	if (x->prio != y->prio)
		return x->prio < y->prio ? -1 : 1;
	if (x->weight != y->weight)
		return x->weight > y->weight ? -1 : 1;
	return strcmp(x->host, y->host);
}

/* The SRV records of o->name, their targets' addresses into `u`. */
static int srv(const tr_node_dns_opts *o, struct urls *u)
{
	struct __res_state rs;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0)
		return TR_ENOENT;
	int rc = TR_OK;
	unsigned char *ans = malloc(DNS_ANSWER_MAX);
	struct target *t = calloc(o->max_urls, sizeof(*t));
	if (ans == NULL || t == NULL) {
		rc = TR_ENOMEM;
		goto out;
	}
	int len =
	    res_nsearch(&rs, o->name, ns_c_in, ns_t_srv, ans, DNS_ANSWER_MAX);
	if (len < 0) {
		rc = TR_ENOENT;
		goto out;
	}
	if (len > DNS_ANSWER_MAX)
		len = DNS_ANSWER_MAX; /* cut: parsed as far as it goes */
	ns_msg h;
	if (ns_initparse(ans, len, &h) != 0) {
		u->refused++;
		rc = TR_ENOENT;
		goto out;
	}
	size_t nt = 0;
	int count = ns_msg_count(h, ns_s_an);
	for (int i = 0; i < count; i++) {
		ns_rr rr;
		if (ns_parserr(&h, ns_s_an, i, &rr) != 0) {
			u->refused += (uint64_t)(count - i);
			break;
		}
		if (ns_rr_type(rr) != ns_t_srv || ns_rr_class(rr) != ns_c_in)
			continue; /* a CNAME on the way */
		const unsigned char *rd = ns_rr_rdata(rr);
		struct target *x = &t[nt];
		if (nt >= o->max_urls) {
			u->refused++;
			continue;
		}
		if (ns_rr_rdlen(rr) < 7 ||
		    ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), rd + 6,
		        x->host, sizeof(x->host)) < 0) {
			u->refused++;
			continue;
		}
		x->prio = ns_get16(rd);
		x->weight = ns_get16(rd + 2);
		x->port = ns_get16(rd + 4);
		/* "." says there is no such service (RFC 2782). */
		if (x->port == 0 || x->host[0] == '\0' ||
		    strcmp(x->host, ".") == 0) {
			u->refused++;
			continue;
		}
		nt++;
	}
	if (nt == 0 && rc == TR_OK)
		rc = TR_ENOENT;
	qsort(t, nt, sizeof(*t), target_cmp);
	/* A target that does not resolve (yet) is skipped; the answer is
	 * good if one does. */
	bool any = false;
	for (size_t i = 0; i < nt && u->n < u->max; i++) {
		int r = addrs(o, t[i].host, t[i].port, u);
		if (r == TR_ENOMEM)
			u->nomem = true;
		any |= r == TR_OK;
	}
	if (nt > 0)
		rc = any ? TR_OK : TR_ENOENT;
out:
	free(t);
	free(ans);
	res_nclose(&rs);
	return rc;
}

static int lookup(const tr_node_dns_opts *o, struct urls *u)
{
	int rc = o->kind == TR_NODE_DNS_SRV ? srv(o, u)
	                                    : addrs(o, o->name, o->port, u);
	if (rc == TR_OK && u->nomem)
		rc = TR_ENOMEM;
	return rc;
}

int tr_node_dns_lookup(
    const tr_node_dns_opts *in, tr_node_seed_add_fn *add, void *sink)
{
	tr_node_dns_opts o;
	int rc = opts_in(&o, in);
	if (rc != TR_OK)
		return rc;
	if (add == NULL)
		return TR_EINVAL;
	struct urls u = {NULL, 0, o.max_urls, 0, false};
	rc = lookup(&o, &u);
	if (rc == TR_OK)
		for (size_t i = 0; i < u.n; i++)
			add(sink, u.v[i]);
	urls_free(u.v, u.n);
	return rc;
}

/* ---- the source ---------------------------------------------------------- */

static void refresh(tr_node_dns *d)
{
	struct urls u = {NULL, 0, d->o.max_urls, 0, false};
	int rc = lookup(&d->o, &u);
	pthread_mutex_lock(&d->lock);
	d->lookups++;
	d->refused += u.refused;
	if (rc == TR_OK) {
		urls_free(d->urls, d->nurls);
		d->urls = u.v;
		d->nurls = u.n;
		u.v = NULL;
		u.n = 0;
	} else {
		d->failures++;
	}
	pthread_mutex_unlock(&d->lock);
	urls_free(u.v, u.n);
	if (d->o.log_rt == NULL)
		return;
	if (rc != TR_OK)
		tr__ratelogf(&d->log_fail, d->o.log_rt, 0,
		    "DNS %s%s: lookup failed (%s); the URLs before are kept",
		    d->o.kind == TR_NODE_DNS_SRV ? "srv:" : "", d->name,
		    tr_strerror(rc));
	if (u.refused != 0)
		tr__ratelogf(&d->log_refused, d->o.log_rt, 0,
		    "DNS %s%s: %llu record(s) not taken (over max_urls %u, "
		    "malformed, or no service)",
		    d->o.kind == TR_NODE_DNS_SRV ? "srv:" : "", d->name,
		    (unsigned long long)u.refused, d->o.max_urls);
}

static void *dns_main(void *arg)
{
	tr_node_dns *d = arg;
	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec +
		              (uint64_t)d->o.interval_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		while (!d->stop &&
		       pthread_cond_timedwait(&d->cv, &d->lock, &ts) == 0)
			;
		if (d->stop)
			break;
		pthread_mutex_unlock(&d->lock);
		refresh(d);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int tr_node_dns_alloc(tr_node_dns **dp, const tr_node_dns_opts *in)
{
	if (dp == NULL)
		return TR_EINVAL;
	*dp = NULL;
	tr_node_dns_opts o;
	int rc = opts_in(&o, in);
	if (rc != TR_OK)
		return rc;
	tr_node_dns *d = calloc(1, sizeof(*d));
	if (d == NULL)
		return TR_ENOMEM;
	d->o = o;
	snprintf(d->name, sizeof(d->name), "%s", o.name);
	d->o.name = d->name;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	refresh(d);
	if (pthread_create(&d->thread, NULL, dns_main, d) != 0) {
		tr_node_dns_free(d);
		return TR_ENOMEM;
	}
	d->started = true;
	*dp = d;
	return TR_OK;
}

void tr_node_dns_free(tr_node_dns *d)
{
	if (d == NULL)
		return;
	if (d->started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->lock);
		pthread_join(d->thread, NULL);
	}
	urls_free(d->urls, d->nurls);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static int dns_resolve(void *user, tr_node_seed_add_fn *add, void *sink)
{
	tr_node_dns *d = user;
	if (d == NULL || add == NULL)
		return TR_EINVAL;
	pthread_mutex_lock(&d->lock);
	bool none = d->nurls == 0 && d->failures != 0;
	for (size_t i = 0; i < d->nurls; i++)
		add(sink, d->urls[i]);
	pthread_mutex_unlock(&d->lock);
	/* Nothing good yet: the node logs it (rate-limited). */
	return none ? TR_ENOENT : TR_OK;
}

static const tr_node_seed_source dns_source = {dns_resolve, DNS_ASK_MS};

const tr_node_seed_source *tr_node_dns_source(void)
{
	return &dns_source;
}

int tr_node_dns_stats_get(tr_node_dns_stats *st, tr_node_dns *d)
{
	if (d == NULL || tr__struct_out_ok(st, TR_NODE_DNS_STATS_V1_SIZE))
		return TR_EINVAL;
	tr_node_dns_stats s;
	tr_node_dns_stats_init(&s);
	pthread_mutex_lock(&d->lock);
	s.urls = (uint32_t)d->nurls;
	s.lookups = d->lookups;
	s.failures = d->failures;
	s.refused = d->refused;
	pthread_mutex_unlock(&d->lock);
	tr__struct_out(st, &s, sizeof(s));
	return TR_OK;
}

/* ---- TROUPE_DNS ---------------------------------------------------------- */

int tr__node_dns_env(tr_node_dns **d, tr_runtime *rt)
{
	*d = NULL;
	const char *spec = getenv("TROUPE_DNS");
	if (spec == NULL || spec[0] == '\0')
		return TR_OK;
	tr_node_dns_opts o;
	char name[TR_NODE_DNS_NAME_MAX + 1];
	tr_node_dns_opts_init(&o);
	int rc = tr_node_dns_parse(&o, name, sizeof(name), spec);
	if (rc != TR_OK) {
		tr_logf(rt, TR_LOG_ERROR,
		    "TROUPE_DNS '%.300s' is not NAME:PORT or srv:NAME", spec);
		return rc;
	}
	o.log_rt = rt;
	return tr_node_dns_alloc(d, &o);
}
