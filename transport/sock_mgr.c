/*
 * The socket manager: one actor per runtime, registered as "troupe.sock",
 * spawned by the runtime's first socket. It monitors the owner of every
 * socket and closes the socket when its owner exits (as a port closes
 * when its connected process dies), and at the runtime's stop it shuts
 * every socket of the runtime down before the runtime goes: no nng
 * callback touches a runtime that is gone.
 *
 * Its messages (local tags, posted by the socket calls and by nng's
 * threads): WATCH (monitor a socket's new owner), UNWATCH (a released
 * socket's monitor is no longer needed), and the DOWN of its monitors.
 * A monitor's reference leads to its socket through a small hash map
 * that only the manager touches.
 *
 * Managers are never freed: they stay on a static list for the life of
 * the process (a few hundred bytes per runtime ever started), so a
 * socket call that found one never holds a pointer to freed memory, and
 * the counters stay readable.
 */
#include <stdlib.h>
#include <string.h>

#include "sock_int.h"

#define T_WATCH 0xFFFE54F0u
#define T_UNWATCH 0xFFFE54F1u
#define MGR_NAME "troupe.sock"

struct watch_msg {
	tr_sock sock;
	tr_pid owner;
};

struct tr__sock_mgr {
	tr__sock_mgr *next; /* the static list */
	tr_runtime *rt;     /* NULL once its actor has ended */
	tr_pid pid;
	pthread_mutex_t mtx; /* closing and the list of sockets */
	bool closing;
	tr__sock_slot *head;
	tr__sk_counters c;
	/* The manager actor's own: monitor reference -> socket. */
	uint64_t *keys;
	tr_sock *vals;
	size_t cap, n;
};

static pthread_mutex_t mgrs_mtx = PTHREAD_MUTEX_INITIALIZER;
static tr__sock_mgr *mgrs;

tr__sk_counters *tr__sk_mgr_counters(tr__sock_mgr *m)
{
	return &m->c;
}

/* ---- the map of monitors (the manager actor only) ----------------------- */

static size_t map_slot(const tr__sock_mgr *m, uint64_t key)
{
	return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 7) & (m->cap - 1);
}

static bool map_put(tr__sock_mgr *m, uint64_t key, tr_sock val)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t nc = m->cap != 0 ? m->cap * 2 : 64;
		uint64_t *nk = calloc(nc, sizeof(*nk));
		tr_sock *nv = calloc(nc, sizeof(*nv));
		if (nk == NULL || nv == NULL) {
			free(nk);
			free(nv);
			return false;
		}
		uint64_t *ok = m->keys;
		tr_sock *ov = m->vals;
		size_t oc = m->cap;
		m->keys = nk;
		m->vals = nv;
		m->cap = nc;
		m->n = 0;
		for (size_t i = 0; i < oc; i++)
			if (ok[i] != 0)
				(void)map_put(m, ok[i], ov[i]);
		free(ok);
		free(ov);
	}
	size_t i = map_slot(m, key);
	while (m->keys[i] != 0)
		i = (i + 1) & (m->cap - 1);
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return true;
}

/* Removes `key`, returning its socket (TR_SOCK_NONE if absent). */
static tr_sock map_take(tr__sock_mgr *m, uint64_t key)
{
	if (m->cap == 0)
		return TR_SOCK_NONE;
	size_t i = map_slot(m, key);
	while (m->keys[i] != 0 && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (m->keys[i] == 0)
		return TR_SOCK_NONE;
	tr_sock v = m->vals[i];
	m->keys[i] = 0;
	m->n--;
	/* Linear probing: put back what follows in the run. */
	for (size_t j = (i + 1) & (m->cap - 1); m->keys[j] != 0;
	     j = (j + 1) & (m->cap - 1)) {
		uint64_t k = m->keys[j];
		tr_sock kv = m->vals[j];
		m->keys[j] = 0;
		m->n--;
		(void)map_put(m, k, kv);
	}
	return v;
}

/* ---- the actor ---------------------------------------------------------- */

static int mgr_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return 0;
}

static void on_watch(tr_ctx *ctx, tr__sock_mgr *m, const struct watch_msg *w)
{
	tr__sock_slot *s = tr__sk_lock(w->sock);
	if (s == NULL)
		return;
	if (!tr_pid_eq(s->owner, w->owner)) {
		/* Given away again meanwhile: a later WATCH follows. */
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	s->mon_pending = false;
	uint64_t old = s->mon;
	uint64_t ref = 0;
	if (tr_monitor(ctx, &ref, w->owner) == TR_OK &&
	    map_put(m, ref, w->sock)) {
		s->mon = ref;
	} else {
		/* No memory to watch the owner with: the socket could
		 * outlive it unseen, so it closes now. */
		s->mon = 0;
		if (ref != 0)
			(void)tr_demonitor(ctx, ref);
		pthread_mutex_unlock(&s->mtx);
		if (old != 0) {
			(void)tr_demonitor(ctx, old);
			(void)map_take(m, old);
		}
		s = tr__sk_lock(w->sock);
		if (s == NULL)
			return;
		if (s->kind == TR__SK_LISTENER)
			tr__sk_listener_close(s, true);
		else
			tr__sk_conn_close(s, true);
		return;
	}
	pthread_mutex_unlock(&s->mtx);
	if (old != 0) {
		(void)tr_demonitor(ctx, old);
		(void)map_take(m, old);
	}
}

static void on_down(tr__sock_mgr *m, const tr_exit_info *x)
{
	tr_sock h = map_take(m, x->ref);
	if (h == TR_SOCK_NONE)
		return;
	tr__sock_slot *s = tr__sk_lock(h);
	if (s == NULL)
		return;
	if (s->mon != x->ref || !tr_pid_eq(s->owner, x->pid)) {
		pthread_mutex_unlock(&s->mtx);
		return;
	}
	s->mon = 0;
	atomic_fetch_add_explicit(&m->c.owner_exits, 1, memory_order_relaxed);
	if (s->kind == TR__SK_LISTENER)
		tr__sk_listener_close(s, true);
	else
		tr__sk_conn_close(s, true);
}

static int mgr_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	tr__sock_mgr *m = state;
	switch (msg->type) {
	case T_WATCH:
		if (msg->size == sizeof(struct watch_msg))
			on_watch(ctx, m, (const struct watch_msg *)msg->data);
		break;
	case T_UNWATCH:
		if (msg->size == sizeof(uint64_t)) {
			uint64_t ref;
			memcpy(&ref, msg->data, sizeof(ref));
			if (map_take(m, ref) != TR_SOCK_NONE)
				(void)tr_demonitor(ctx, ref);
		}
		break;
	case TR_MSG_DOWN:
		if (msg->size == sizeof(tr_exit_info))
			on_down(m, (const tr_exit_info *)msg->data);
		break;
	default:
		break;
	}
	return 0;
}

/* Shuts every socket of `m` down: listeners first, so that no accept
 * adds a connection behind the snapshot of connections. */
static void shutdown_all(tr__sock_mgr *m)
{
	for (int pass = 0; pass < 2; pass++) {
		int kind = pass == 0 ? TR__SK_LISTENER : TR__SK_CONN;
		pthread_mutex_lock(&m->mtx);
		size_t n = 0;
		for (tr__sock_slot *s = m->head; s != NULL; s = s->mnext)
			n++;
		tr_sock *hs = calloc(n + 1, sizeof(*hs));
		size_t k = 0;
		/* The slots' kinds are read under their own mutex below;
		 * here only their handles, which the manager's mutex keeps
		 * stable while they are on the list. */
		for (tr__sock_slot *s = m->head; s != NULL && hs != NULL;
		     s = s->mnext)
			hs[k++] = ((uint64_t)s->gen << 32) | (s->idx + 1);
		pthread_mutex_unlock(&m->mtx);
		for (size_t i = 0; i < k; i++) {
			tr__sock_slot *s = tr__sk_lock(hs[i]);
			if (s == NULL)
				continue;
			if (s->kind != kind) {
				pthread_mutex_unlock(&s->mtx);
				continue;
			}
			pthread_mutex_unlock(&s->mtx);
			tr__sk_shutdown(s);
		}
		free(hs);
	}
}

static void mgr_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	tr__sock_mgr *m = state;
	/* No socket call finds this manager from now on (a killed manager
	 * is replaced by the next call), and none it found already can add
	 * a socket to it. */
	pthread_mutex_lock(&mgrs_mtx);
	m->rt = NULL;
	pthread_mutex_unlock(&mgrs_mtx);
	pthread_mutex_lock(&m->mtx);
	m->closing = true;
	pthread_mutex_unlock(&m->mtx);
	shutdown_all(m);
	free(m->keys);
	free(m->vals);
	m->keys = NULL;
	m->vals = NULL;
	m->cap = m->n = 0;
}

static const tr_behaviour mgr_behaviour = {
    .name = MGR_NAME,
    .init = mgr_init,
    .handle = mgr_handle,
    .terminate = mgr_terminate,
};

int tr__sk_mgr_get(tr__sock_mgr **mp, tr_ctx *ctx)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	pthread_mutex_lock(&mgrs_mtx);
	for (tr__sock_mgr *m = mgrs; m != NULL; m = m->next) {
		if (m->rt == rt) {
			pthread_mutex_unlock(&mgrs_mtx);
			*mp = m;
			return TR_OK;
		}
	}
	tr__sock_mgr *m = calloc(1, sizeof(*m));
	if (m == NULL) {
		pthread_mutex_unlock(&mgrs_mtx);
		return TR_ENOMEM;
	}
	pthread_mutex_init(&m->mtx, NULL);
	m->rt = rt;
	int rc = tr_spawn(&m->pid, rt, &mgr_behaviour, m, NULL);
	if (rc != TR_OK) {
		pthread_mutex_unlock(&mgrs_mtx);
		pthread_mutex_destroy(&m->mtx);
		free(m);
		return rc == TR_ECLOSED ? TR_ECLOSED : TR_ENOMEM;
	}
	/* Only for operators (the observer's actor list): a name taken
	 * already is no reason to fail. */
	(void)tr_register(rt, MGR_NAME, m->pid);
	m->next = mgrs;
	mgrs = m;
	pthread_mutex_unlock(&mgrs_mtx);
	*mp = m;
	return TR_OK;
}

static void post_watch(tr__sock_slot *s)
{
	struct watch_msg w = {.sock = tr__sk_handle(s), .owner = s->owner};
	s->mon_pending = true;
	(void)tr_post(s->rt, s->mgr->pid, T_WATCH, &w, sizeof(w));
}

int tr__sk_mgr_adopt(tr__sock_slot *s)
{
	tr__sock_mgr *m = s->mgr;
	pthread_mutex_lock(&m->mtx);
	if (m->closing) {
		pthread_mutex_unlock(&m->mtx);
		s->mgr = NULL;
		return TR_ECLOSED;
	}
	s->mprev = NULL;
	s->mnext = m->head;
	if (m->head != NULL)
		m->head->mprev = s;
	m->head = s;
	pthread_mutex_unlock(&m->mtx);
	post_watch(s);
	return TR_OK;
}

void tr__sk_mgr_rewatch(tr__sock_slot *s)
{
	post_watch(s);
}

void tr__sk_mgr_drop(tr__sock_slot *s)
{
	tr__sock_mgr *m = s->mgr;
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mtx);
	if (s->mprev != NULL)
		s->mprev->mnext = s->mnext;
	else if (m->head == s)
		m->head = s->mnext;
	if (s->mnext != NULL)
		s->mnext->mprev = s->mprev;
	s->mprev = s->mnext = NULL;
	/* Under the manager's mutex: once the manager is closing (its
	 * terminate, on the way to the runtime's end) nothing is posted, and
	 * a post begun before has ended when the terminate takes the mutex,
	 * so no nng thread posts into a runtime being freed. */
	if (s->mon != 0 && !m->closing) {
		uint64_t ref = s->mon;
		(void)tr_post(s->rt, m->pid, T_UNWATCH, &ref, sizeof(ref));
	}
	pthread_mutex_unlock(&m->mtx);
}

int tr_sock_stats_get(tr_runtime *rt, tr_sock_stats *st)
{
	if (rt == NULL || st == NULL || st->struct_size < TR_SOCK_STATS_V1_SIZE)
		return TR_EINVAL;
	tr_sock_stats o;
	tr_sock_stats_init(&o);
	pthread_mutex_lock(&mgrs_mtx);
	for (tr__sock_mgr *m = mgrs; m != NULL; m = m->next) {
		if (m->rt != rt)
			continue;
		const tr__sk_counters *c = &m->c;
#define RD(f) atomic_load_explicit(&c->f, memory_order_relaxed)
		o.listeners = RD(listeners);
		o.conns = RD(conns);
		o.accepted = RD(accepted);
		o.connected = RD(connected);
		o.connect_failed = RD(connect_failed);
		o.closed_by_peer = RD(closed_by_peer);
		o.failed = RD(failed);
		o.owner_exits = RD(owner_exits);
		o.bytes_in = RD(bytes_in);
		o.bytes_out = RD(bytes_out);
		o.send_eagain = RD(send_eagain);
		o.accept_waits = RD(accept_waits);
		o.accept_dropped = RD(accept_dropped);
#undef RD
		break;
	}
	pthread_mutex_unlock(&mgrs_mtx);
	size_t n = st->struct_size < sizeof(o) ? st->struct_size : sizeof(o);
	uint32_t keep = st->struct_size;
	memcpy(st, &o, n);
	st->struct_size = keep;
	return TR_OK;
}
