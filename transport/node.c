/*
 * The node: its public API (include/troupe/node.h) and its lifecycle.
 * node_int.h lists the files that do the rest; docs/distribution.md is
 * the design.
 */
#include "node_int.h"
#include "observer_int.h"
#include "proc_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "codec.h"
#include "crypto.h"

/* ---- shared helpers ------------------------------------------------------ */

int64_t tr__node_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tr__node_wait_exit(struct tr_node *n, tr_pid pid, int64_t max_ms)
{
	long ns = 10000;
	for (int64_t waited = 0;
	     waited < max_ms * 1000000 && tr_is_alive(n->rt, pid);
	     waited += ns) {
		nanosleep(&(struct timespec){0, ns}, NULL);
		if (ns < 10000000)
			ns *= 2;
	}
	return !tr_is_alive(n->rt, pid);
}

static void node_vlogf(
    struct tr_node *n, int level, const char *fmt, va_list ap)
{
	if (!tr_log_enabled(n->rt, level))
		return;
	char line[512];
	int k = snprintf(line, sizeof(line), "NODE %s: ", n->name);
	vsnprintf(line + k, sizeof(line) - (size_t)k, fmt, ap);
	tr_log_event e;
	tr_log_event_init(&e, level);
	e.domain = "log";
	e.text = line;
	tr_log_emit(n->rt, &e);
}

void tr__node_logf(struct tr_node *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	node_vlogf(n, TR_LOG_WARNING, fmt, ap);
	va_end(ap);
}

void tr__node_logf_at(struct tr_node *n, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	node_vlogf(n, level, fmt, ap);
	va_end(ap);
}

bool tr__node_grow(void **v, uint32_t n, uint32_t *cap, size_t elem)
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

bool tr__node_name_ok(const char *s)
{
	if (s == NULL)
		return false;
	size_t l = strlen(s);
	return l >= 1 && l <= TR_NODE_NAME_MAX;
}

/* Node lock held. Subscriptions of actors that are gone are dropped. */
static void event_fill(tr_node_event *ev, const char *name, const char *why)
{
	memset(ev, 0, sizeof(*ev));
	snprintf(ev->node, sizeof(ev->node), "%s", name);
	snprintf(ev->reason, sizeof(ev->reason), "%s", why);
}

void tr__node_event_locked(struct tr_node *n, uint32_t type, const char *name,
    const char *reason)
{
	tr_node_event ev;
	event_fill(&ev, name, reason);
	for (uint32_t i = 0; i < n->nnmons;) {
		struct tr__nmon *w = &n->nmons[i];
		if (w->name != NULL && strcmp(w->name, name) != 0) {
			i++;
			continue;
		}
		if (tr__inject_msg(n, w->pid, type, &ev, sizeof(ev),
		        TR_PID_NONE, 0, 0) == TR_ENOPROC) {
			free(w->name);
			*w = n->nmons[--n->nnmons];
			continue;
		}
		i++;
	}
}

/* ---- lifecycle ------------------------------------------------------------
 */

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

static void wipe_free(char *s)
{
	if (s != NULL)
		tr__wipe(s, strlen(s));
	free(s);
}

static void node_free(struct tr_node *n)
{
	/* First: its callbacks use the node. */
	tr__sp_in_free(n->in);
	tr__linger_sweep(n, true);
	for (size_t i = 0; i < n->nurls; i++)
		free(n->urls[i]);
	free(n->urls);
	if (n->tls_srv != NULL)
		nng_tls_config_free(n->tls_srv);
	struct tr__peer *nx;
	for (struct tr__peer *p = n->peers; p != NULL; p = nx) {
		nx = p->next;
		tr__peer_free(p);
	}
	for (int k = 0; k < 2; k++) {
		for (struct tr__peer *p = n->retire[k]; p != NULL; p = nx) {
			nx = p->rnext;
			tr__peer_free(p);
		}
	}
	tr__hs_free(n->hs);
	tr__mesh_fini(n);
	/* Last of what the callbacks reach: the hooks of process children
	 * (tr__procs_stop emptied the table long before). */
	tr__procs_fini(n);
	for (uint32_t i = 0; i < n->nnmons; i++)
		free(n->nmons[i].name);
	free(n->nmons);
	free(n->pipes);
	free(n->drained);
	free(n->hsc);
	free(n->table);
	free(n->gens);
	free(n->free_idx);
	tr__wipe(n->hs_key, sizeof(n->hs_key));
	free(n->tls_ca);
	free(n->tls_cert);
	wipe_free(n->tls_key);
	tr__node_ready_fini(&n->ready);
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
		if (strncmp(urls[i], "tls+", 4) == 0) {
			if (n->tls_srv == NULL) {
				int rc = tr__node_tls_config(
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

static int hs_random(void *arg, void *buf, size_t len)
{
	(void)arg;
	return tr__random(buf, len);
}

/* The handshake's own key, derived from the cookie. */
int tr__node_hs_key(uint8_t out[TR__HS_KEY_LEN], const char *cookie)
{
	return tr__kdf(out, cookie, strlen(cookie), TR__KDF_NODE);
}

/* sp_poll.c's question before a hot connection goes to the schedulers. */
static bool pollers_awake(void *arg)
{
	struct tr_node *n = arg;
	return tr__dist_sched_awake(n->rt);
}

static int node_setup(struct tr_node *n, const tr_node_opts *opts)
{
	n->table = calloc(TR__PEER_SLOTS, sizeof(*n->table));
	n->gens = calloc(TR__PEER_SLOTS, sizeof(*n->gens));
	n->free_idx = calloc(TR__PEER_SLOTS, sizeof(*n->free_idx));
	if (n->table == NULL || n->gens == NULL || n->free_idx == NULL)
		return TR_ENOMEM;
	if (opts->tls_ca_file || opts->tls_cert_file || opts->tls_key_file) {
		if (!opts->tls_ca_file || !opts->tls_cert_file ||
		    !opts->tls_key_file)
			return TR_EINVAL;
		if ((n->tls_ca = read_file(opts->tls_ca_file)) == NULL ||
		    (n->tls_cert = read_file(opts->tls_cert_file)) == NULL ||
		    (n->tls_key = read_file(opts->tls_key_file)) == NULL)
			return TR_EINVAL;
	}
	tr__sp_in_ops ops = tr__node_in_ops;
	ops.arg = n;
	tr__sp_in_opts so;
	tr__sp_in_opts_init(&so);
	so.max_frame = n->max_frame;
	so.max_untrusted = TR__NODE_HS_MAX_FRAME;
	so.handshake_ms = opts->handshake_ms;
	so.max_untrusted_conns = opts->max_handshakes;
	int rc = tr__sp_in_alloc_opts(&n->in, &ops, &so);
	if (rc == TR_OK) {
		/* Hot connections are read by idle schedulers (the dist
		 * hook's poll op), for as long as one spins for work. */
		tr__sp_in_poll_window(n->in,
		    opts->busy_poll == TR_NODE_OFF ? 0
		                                   : tr__dist_spin_us(n->rt),
		    pollers_awake, n);
		rc = listen_all(n, opts->listen);
	}
	if (rc != TR_OK)
		return rc;
	tr__hs_cfg hc;
	memset(&hc, 0, sizeof(hc));
	hc.name = n->name;
	hc.inc = n->inc;
	hc.minor = TR__NODE_MINOR;
	hc.urls = (const char *const *)n->urls;
	hc.nurls = n->nurls;
	memcpy(hc.key, n->hs_key, sizeof(hc.key));
	hc.random = hs_random;
	hc.max_accepts = opts->max_handshakes;
	hc.timeout_ms = opts->handshake_ms;
	rc = tr__hs_alloc(&n->hs, &hc);
	tr__wipe(hc.key, sizeof(hc.key));
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
		    .max_conns = opts->client_max_conns,
		    .idle_ms = opts->client_idle_ms,
		    .tls_cert = n->tls_cert,
		    .tls_key = n->tls_key,
		};
		rc = tr__client_start(&n->client, n->rt, &co);
	}
	return rc;
}

int tr_node_start(tr_node **nodep, tr_runtime *rt, const tr_node_opts *uopts)
{
	/* The caller's options over the defaults: fields its struct_size
	 * does not reach keep them. */
	tr_node_opts o;
	tr_node_opts_init(&o);
	if (uopts == NULL)
		return TR_EINVAL;
	int orc = tr__struct_in(&o, sizeof(o), uopts, TR_NODE_OPTS_V1_SIZE);
	if (orc != TR_OK)
		return orc;
	const tr_node_opts *opts = &o;
	if (nodep == NULL || rt == NULL || !tr__node_name_ok(opts->name) ||
	    opts->cookie == NULL || opts->cookie[0] == '\0' ||
	    opts->listen == NULL)
		return TR_EINVAL;
	*nodep = NULL;
	/* A node layer and a runtime from different releases disagree on
	 * the flags and payloads that cross dist.h: refuse to attach. */
	if (tr__dist_version() != TR__DIST_VERSION)
		return TR_ENOTSUP;
	if (tr__dist_arg(rt) != NULL)
		return TR_EEXIST;
	struct tr_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return TR_ENOMEM;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cv, NULL);
	tr__node_ready_init(&n->ready);
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
	int rc = tr__node_hs_key(n->hs_key, opts->cookie);
	n->tick_ms = opts->tick_ms ? opts->tick_ms : TR__NODE_DEFAULT_TICK_MS;
	n->max_msg = tr__dist_max_msg(rt);
	n->max_frame = opts->max_frame ? opts->max_frame : n->max_msg + 65536;
	n->max_queue =
	    opts->max_queue ? opts->max_queue : TR__NODE_DEFAULT_QUEUE;
	size_t am = opts->recv_actor_max ? opts->recv_actor_max
	                                 : TR__NODE_DEFAULT_ACTOR_MAX;
	n->recv_actor_max = am < UINT32_MAX / 2 ? (uint32_t)am : UINT32_MAX / 2;
	n->recv_max =
	    opts->recv_max ? opts->recv_max : TR__NODE_DEFAULT_RECV_MAX;
	/* What a peer may have sent before our BUSY reached it: its queue
	 * for us (max_queue, 16 MiB by default) and the socket buffers.
	 * Allow twice that, or twice an actor's limit, before its connection
	 * pauses, but never more than the node's own bound. */
	n->park_max = (size_t)n->recv_actor_max * 2;
	if (n->park_max < 2 * (size_t)TR__NODE_DEFAULT_QUEUE)
		n->park_max = 2 * (size_t)TR__NODE_DEFAULT_QUEUE;
	if (n->park_max > n->recv_max)
		n->park_max = n->recv_max;
	if (rc == TR_OK)
		rc = node_setup(n, opts);
	if (rc == TR_OK)
		rc = tr__procs_init(n, opts->cookie);
	if (rc == TR_OK)
		rc = tr__mesh_init(n, opts);
	if (rc == TR_OK &&
	    pthread_create(&n->ticker, NULL, tr__ticker_main, n) != 0)
		rc = TR_ENOMEM;
	if (rc == TR_OK) {
		n->ticker_started = true;
		rc = tr__dist_attach(rt, &tr__node_ops, n);
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
		node_free(n);
		return rc;
	}
	tr__sp_in_start(n->in);
	rc = tr__global_start(n);
	if (rc == TR_OK)
		rc = tr__pg_start(n);
	/* Last: it serves what the rest keeps. */
	if (rc == TR_OK && o.observer_url != NULL)
		rc = tr__observer_start(
		    &n->observer, n, o.observer_url, o.cookie);
	if (rc != TR_OK) {
		tr_node_stop(n);
		return rc;
	}
	*nodep = n;
	return TR_OK;
}

void tr_node_stop(tr_node *n)
{
	if (n == NULL)
		return;
	/* The observer first: no answer reads a node being taken apart. */
	tr__observer_stop(n->observer);
	n->observer = NULL;
	/* Process children next: they are killed and reaped, and what
	 * watched them hears of it while the node still carries signals. */
	tr__procs_stop(n);
	tr__pg_stop(n);
	tr__global_stop(n);
	if (n->client != NULL)
		tr__client_stop(n->client);
	n->client = NULL;
	/* No more sends: once detach returns no thread is inside the
	 * node's hook, and new sends to remote pids fail with TR_ENOPROC. */
	tr__dist_detach(n->rt);
	/* Stop receiving first, so no handshake races the teardown. */
	tr__sp_in_close(n->in);
	pthread_mutex_lock(&n->lock);
	struct tr__peer *nx;
	for (struct tr__peer *p = n->peers; p != NULL; p = nx) {
		nx = p->next;
		tr__peer_down_locked(n, p, "this node stops");
	}
	tr__hs_close_all_locked(n);
	n->stopping = true;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->ticker, NULL);
	node_free(n);
}

/* The counters are filled into a struct of the library's size, then copied
 * into the caller's as far as its struct_size reaches. */
int tr_node_stats_get(tr_node_stats *out, tr_node *n)
{
	if (n == NULL || tr__struct_out_ok(out, TR_NODE_STATS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_node_stats all;
	tr_node_stats_init(&all);
	tr_node_stats *st = &all;
	st->frames_unauth =
	    atomic_load_explicit(&n->n_unauth, memory_order_relaxed);
	st->frames_malformed =
	    atomic_load_explicit(&n->n_bad, memory_order_relaxed);
	st->handshakes_refused =
	    atomic_load_explicit(&n->n_refused, memory_order_relaxed);
	st->local_refused =
	    atomic_load_explicit(&n->n_local, memory_order_relaxed);
	st->handshakes_evicted = atomic_load_explicit(
	    &n->n_hs_refused[TR__HS_R_FULL], memory_order_relaxed);
	st->handshakes_timed_out = atomic_load_explicit(
	    &n->n_hs_refused[TR__HS_R_TIMEOUT], memory_order_relaxed);
	tr__sp_in_stats ss;
	tr__sp_in_stats_get(n->in, &ss);
	st->conns_open = ss.open;
	st->conns_untrusted = ss.untrusted;
	st->conns_paused = ss.paused;
	st->conns_closed_deadline = ss.closed_deadline;
	st->conns_closed_cap = ss.closed_cap;
	st->conns_refused = ss.refused;
	tr__flow_stats(n, st);
	tr__mesh_stats(n, st);
	tr__client_stats cs;
	if (n->client != NULL &&
	    tr__client_stats_get(&cs, n->client) == TR_OK) {
		st->client_answered = cs.answered;
		st->client_failed = cs.failed;
		st->client_bad_signature = cs.refused[TR__CC_BAD_SIGNATURE];
		st->client_too_old =
		    cs.refused[TR__CC_TOO_OLD] + cs.refused[TR__CC_VERSION];
		st->client_bad_request = cs.refused[TR__CC_BAD_REQUEST];
		st->client_wrong_node = cs.refused[TR__CC_WRONG_NODE];
		st->client_replayed =
		    cs.refused[TR__CC_WINDOW] + cs.refused[TR__CC_REPLAY];
		st->client_local_type = cs.refused[TR__CC_LOCAL_TYPE];
		st->client_busy =
		    cs.refused[TR__CC_BUSY] + cs.refused[TR__CC_CACHE_FULL];
		st->client_conns = cs.conns;
		st->client_conns_refused = cs.conns_refused;
		st->client_conns_idle_closed = cs.conns_idle_closed;
	}
	pthread_mutex_lock(&n->lock);
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next) {
		st->peers_up += p->state == TR__PS_UP;
		st->peers_known++;
	}
	tr__hs_counts(n->hs, &st->handshakes_pending, NULL, NULL);
	pthread_mutex_unlock(&n->lock);
	tr__struct_out(out, &all, sizeof(all));
	return TR_OK;
}

tr_node *tr_node_of(tr_runtime *rt)
{
	return rt != NULL ? tr__dist_arg(rt) : NULL;
}

const char *tr_node_listen_url(const tr_node *n, size_t i)
{
	if (n == NULL || i >= n->nurls)
		return NULL;
	return n->urls[i];
}

int tr_node_connect(tr_node *n, const char *url, int64_t timeout_ms, char *peer)
{
	if (n == NULL || url == NULL || url[0] == '\0')
		return TR_EINVAL;
	return tr__node_connect(n, url, timeout_ms, peer);
}

/* ---- names, spawn, node monitors ------------------------------------------
 */

/* The entry of `node_name` that is up, or NULL; the caller is inside an
 * ebr section and may use it until it leaves. */
static struct tr__peer *peer_up_ref(struct tr_node *n, const char *node_name)
{
	pthread_mutex_lock(&n->lock);
	struct tr__peer *p = tr__peer_up(n, node_name);
	pthread_mutex_unlock(&n->lock);
	return p;
}

static int send_named(struct tr_node *n, tr_ctx *ctx, const char *node_name,
    const char *name, uint32_t type, const void *data, size_t size)
{
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	e.name = (char *)name;
	e.type = type;
	e.payload.data = (uint8_t *)data;
	e.payload.len = size;
	struct tr__runkey k = {TR_PID_NONE, tr_self(ctx), type, name};
	/* Acquire: pairs with the release store below, though the fields
	 * read here were published by peer_new already. */
	struct tr__peer *p =
	    atomic_load_explicit(&n->named_peer, memory_order_acquire);
	if (p != NULL && strcmp(p->name, node_name) == 0) {
		/* A peer: never this node's own name. */
		int rc = tr__ctx_put(ctx, n, p, &e, &k, &wf);
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
	return tr__ctx_put(ctx, n, p, &e, &k, &wf);
}

int tr_send_remote_named(tr_ctx *ctx, const char *node_name, const char *name,
    uint32_t type, const void *data, size_t size)
{
	if (ctx == NULL || node_name == NULL || name == NULL ||
	    (data == NULL && size != 0) || tr_msg_type_local(type))
		return TR_EINVAL;
	tr_runtime *rt = tr_runtime_of(ctx);
	if (size > tr__dist_max_msg(rt))
		return TR_EMSGSIZE;
	struct tr_node *n = tr_node_of(rt);
	if (n == NULL)
		return TR_ENOPROC;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	int rc = send_named(n, ctx, node_name, name, type, data, size);
	tr__node_ebr_exit(&n->ebr, k);
	return rc;
}

int tr_node_whereis(tr_pid *pid, tr_node *n, const char *node_name,
    const char *name, int64_t timeout_ms)
{
	if (pid == NULL || n == NULL || node_name == NULL || name == NULL)
		return TR_EINVAL;
	if (strcmp(node_name, n->name) == 0)
		return tr_whereis(pid, n->rt, name);
	tr_port *port;
	int rc = tr_port_open(&port, n->rt);
	if (rc != TR_OK)
		return rc;
	uint64_t ref = tr__dist_new_ref(n->rt);
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	tr__pid_out(n, tr_port_pid(port), &wf);
	e.from = &wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	e.name = (char *)name;
	e.type = TR__NODE_T_WHEREIS;
	e.ref = ref;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	struct tr__peer *p = peer_up_ref(n, node_name);
	uint32_t id = p != NULL ? p->id : 0;
	rc = p != NULL ? tr__ask_send(n, p, &e, tr_port_pid(port), ref)
	               : TR_ENOPROC;
	tr__node_ebr_exit(&n->ebr, k);
	int64_t deadline =
	    timeout_ms < 0 ? INT64_MAX : tr__node_now_ms() + timeout_ms;
	while (rc == TR_OK) {
		int64_t t = tr__node_now_ms();
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
	if (rc == TR_ETIMEDOUT) {
		/* Unanswered: the pair forgets the lookup (an answer or a
		 * teardown removes it otherwise). */
		k = tr__node_ebr_enter(&n->ebr);
		p = tr__peer_at(n, id);
		if (p != NULL) {
			pthread_mutex_lock(&p->lock);
			tr__xask_del(p, ref, tr_port_pid(port));
			pthread_mutex_unlock(&p->lock);
		}
		tr__node_ebr_exit(&n->ebr, k);
	}
	tr_port_close(port);
	return rc;
}

int tr_node_name_of(char *buf, size_t cap, tr_node *n, tr_pid pid)
{
	if (buf == NULL || cap == 0 || n == NULL)
		return TR_EINVAL;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	const char *name = NULL;
	if (pid.node == 0) {
		name = n->name;
	} else {
		struct tr__peer *p = tr__peer_at(n, pid.node);
		if (p != NULL)
			name = p->name;
	}
	int rc = TR_OK;
	if (name == NULL)
		rc = TR_ENOENT;
	else if (strlen(name) + 1 > cap)
		rc = TR_EINVAL;
	else
		memcpy(buf, name, strlen(name) + 1);
	tr__node_ebr_exit(&n->ebr, k);
	return rc;
}

_Static_assert(TR__NODE_T_WHEREIS_REPLY == TR__DIST_WHEREIS_REPLY,
    "the runtime's calls by name read the node's lookup answers");

const char *tr__node_op_name(void *arg)
{
	return ((struct tr_node *)arg)->name;
}

/* The runtime's whereis op: tr_node_whereis's question, asked for an
 * actor (a call by name); its answer is a reply to `from`. The runtime
 * calls it within an actor's turn (the flush at its end sends it) or an
 * ext section. */
int tr__node_op_whereis(void *arg, tr_pid from, const char *node_name,
    const char *name, uint64_t ref)
{
	struct tr_node *n = arg;
	if (strcmp(node_name, n->name) == 0 || !tr__node_name_ok(node_name))
		return TR_EINVAL; /* the runtime resolves its own names */
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	tr__pid_out(n, from, &wf);
	e.from = &wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_NAMED_SEND;
	e.name = (char *)name;
	e.type = TR__NODE_T_WHEREIS;
	e.ref = ref;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	struct tr__peer *p = peer_up_ref(n, node_name);
	int rc = p != NULL ? tr__ask_send(n, p, &e, from, ref) : TR_ENOPROC;
	tr__node_ebr_exit(&n->ebr, k);
	return rc;
}

int tr_node_register_behaviour(
    tr_node *n, const char *name, const tr_behaviour *b)
{
	if (n == NULL)
		return TR_EINVAL;
	return tr_behaviour_register(n->rt, name, b);
}

int tr_spawn_remote(tr_ctx *ctx, uint64_t *ref, const char *node_name,
    const char *behaviour, const void *arg, size_t size, bool link)
{
	if (ctx == NULL || node_name == NULL || behaviour == NULL ||
	    (arg == NULL && size != 0))
		return TR_EINVAL;
	struct tr_node *n = tr_node_of(tr_runtime_of(ctx));
	if (n == NULL)
		return TR_ENOPROC;
	uint64_t r = tr__dist_new_ref(tr_runtime_of(ctx));
	Env e = TROUPE__WIRE__ENVELOPE__INIT;
	WPid wf;
	tr__pid_out(n, tr_self(ctx), &wf);
	e.from = &wf;
	e.control = TROUPE__WIRE__CONTROL__CONTROL_SPAWN_REQUEST;
	e.name = (char *)behaviour;
	e.payload.data = (uint8_t *)arg;
	e.payload.len = size;
	e.ref = r;
	e.flags = link ? TR__ENV_LINK : 0;
	unsigned k = tr__node_ebr_enter(&n->ebr);
	struct tr__peer *p = peer_up_ref(n, node_name);
	int rc =
	    p != NULL ? tr__ctx_put(ctx, n, p, &e, NULL, NULL) : TR_ENOPROC;
	tr__node_ebr_exit(&n->ebr, k);
	if (rc == TR_OK && ref != NULL)
		*ref = r;
	return rc;
}

/* One subscription of `pid` (an actor or a port) on or off; the node
 * lock makes the NODEUPs of the nodes up now and the events after them
 * one sequence, with nothing lost or doubled in between. */
static int nmon_set(struct tr_node *n, tr_pid self, const char *node_name,
    bool on)
{
	pthread_mutex_lock(&n->lock);
	int rc = TR_OK;
	tr_node_event ev;
	if (on) {
		char *nm = node_name ? strdup(node_name) : NULL;
		if ((node_name != NULL && nm == NULL) ||
		    !tr__node_grow((void **)&n->nmons, n->nnmons, &n->cap_nmons,
		        sizeof(*n->nmons))) {
			free(nm);
			rc = TR_ENOMEM;
		} else if (nm != NULL) {
			n->nmons[n->nnmons++] = (struct tr__nmon){self, nm};
			if (tr__peer_up(n, nm) == NULL &&
			    strcmp(nm, n->name) != 0) {
				event_fill(&ev, nm, "not connected");
				(void)tr__inject_msg(n, self, TR_MSG_NODEDOWN,
				    &ev, sizeof(ev), TR_PID_NONE, 0, 0);
			}
		} else {
			n->nmons[n->nnmons++] = (struct tr__nmon){self, NULL};
			/* Unlike net_kernel:monitor_nodes: the nodes up now
			 * too, so a subscriber needs no nodes() of its own
			 * (which would race the subscription). */
			for (struct tr__peer *p = n->peers; p != NULL;
			     p = p->next) {
				if (p->state != TR__PS_UP)
					continue;
				event_fill(&ev, p->name, "already up");
				(void)tr__inject_msg(n, self, TR_MSG_NODEUP,
				    &ev, sizeof(ev), TR_PID_NONE, 0, 0);
			}
		}
	} else {
		for (uint32_t i = 0; i < n->nnmons;) {
			struct tr__nmon *w = &n->nmons[i];
			bool same = node_name == NULL
			                ? w->name == NULL
			                : w->name != NULL &&
			                      strcmp(w->name, node_name) == 0;
			if (tr_pid_eq(w->pid, self) && same) {
				/* Subscriptions count, as in OTP: one off
				 * undoes one on. */
				free(w->name);
				*w = n->nmons[--n->nnmons];
				break;
			}
			i++;
		}
	}
	pthread_mutex_unlock(&n->lock);
	return rc;
}

int tr_monitor_node(tr_ctx *ctx, const char *node_name, bool on)
{
	if (ctx == NULL || (node_name != NULL && !tr__node_name_ok(node_name)))
		return TR_EINVAL;
	struct tr_node *n = tr_node_of(tr_runtime_of(ctx));
	if (n == NULL)
		return TR_ENOTSUP;
	return nmon_set(n, tr_self(ctx), node_name, on);
}

int tr_node_monitor_port(
    tr_node *n, tr_port *port, const char *node_name, bool on)
{
	if (n == NULL || port == NULL ||
	    (node_name != NULL && !tr__node_name_ok(node_name)))
		return TR_EINVAL;
	return nmon_set(n, tr_port_pid(port), node_name, on);
}

/* Filled under the node lock into entries of the library's size, then
 * copied out at the caller's stride (abi.md, "Arrays"). */
/* The traffic fields of `in` (node lock held; the peer lock for the
 * queue, taken after it as everywhere). */
static void peer_traffic(tr_node_info *in, struct tr__peer *p, int64_t t)
{
	in->msgs_out = atomic_load_explicit(&p->tx_msgs, memory_order_relaxed);
	in->bytes_out = atomic_load_explicit(&p->tx_bytes, memory_order_relaxed);
	in->msgs_in = atomic_load_explicit(&p->rx_msgs, memory_order_relaxed);
	in->bytes_in = atomic_load_explicit(&p->rx_bytes, memory_order_relaxed);
	in->refused_in =
	    atomic_load_explicit(&p->rx_refused, memory_order_relaxed);
	int64_t rx = atomic_load_explicit(&p->last_rx, memory_order_relaxed);
	in->last_rx_ms = t > rx ? (uint64_t)(t - rx) : 0;
	pthread_mutex_lock(&p->lock);
	in->queue_bytes = p->queued;
	in->busy_targets = p->nbusy;
	pthread_mutex_unlock(&p->lock);
}

int tr_node_disconnect(tr_node *n, const char *name)
{
	if (n == NULL || name == NULL)
		return TR_EINVAL;
	pthread_mutex_lock(&n->lock);
	struct tr__peer *p = tr__peer_up(n, name);
	if (p != NULL)
		tr__peer_down_locked(n, p, "disconnected by the operator");
	pthread_mutex_unlock(&n->lock);
	return p != NULL ? TR_OK : TR_ENOENT;
}

int tr_node_list(tr_node_info *out, size_t cap, size_t *count, tr_node *n)
{
	if (n == NULL || count == NULL ||
	    (cap > 0 &&
	        tr__struct_out_ok(out, TR_NODE_INFO_V1_SIZE) != TR_OK))
		return TR_EINVAL;
	uint32_t stride = cap > 0 ? out[0].struct_size : 0;
	size_t k = 0;
	int64_t t = tr__node_now_ms();
	pthread_mutex_lock(&n->lock);
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next) {
		if (p->state != TR__PS_UP)
			continue;
		if (k < cap) {
			tr_node_info in;
			tr_node_info_init(&in);
			snprintf(in.name, sizeof(in.name), "%s", p->name);
			in.incarnation = p->inc;
			if (p->nlisten > 0)
				snprintf(in.url, sizeof(in.url), "%s",
				    p->listen[0]);
			in.up_ms = t > p->since_ms ? (uint64_t)(t - p->since_ms)
			                           : 0;
			peer_traffic(&in, p, t);
			tr_node_info *dst =
			    (tr_node_info *)((unsigned char *)out + k * stride);
			memcpy(dst, &stride, sizeof(stride));
			tr__struct_out(dst, &in, sizeof(in));
		}
		k++;
	}
	pthread_mutex_unlock(&n->lock);
	*count = k;
	return TR_OK;
}
