/*
 * What the observer serves (observer.c routes to it): the Prometheus text
 * exposition of a node's counters, and the same counters as JSON, made
 * with jansson. One table lists every metric with its source, so that
 * /metrics and /api/node cannot drift apart.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "node_int.h"
#include "observer_int.h"
#include "troupe/proc.h"
#include "troupe/sock.h"

/* Everything one answer reads, taken once. */
struct snap {
	tr_runtime_stats rt;
	tr_node_stats node;
	tr_proc_stats proc;
	tr_sock_stats sock;
	double uptime_s;
	uint64_t refused;
	bool ready; /* tr_node_set_ready's */
};

enum kind { COUNTER, GAUGE };

struct metric {
	const char *name; /* troupe_ + this */
	const char *help;
	enum kind kind;
	const char *group; /* its object in /api/node */
	const char *field; /* its key there */
	size_t off;        /* of its source in struct snap */
	size_t width;      /* of that source: an unsigned integer of 4 or 8
	                    * bytes, or 0 for a double */
};

/* A member of struct snap, as a metric's source. */
#define F(member)                                                              \
	offsetof(struct snap, member),                                         \
	    (__builtin_types_compatible_p(                                     \
	         __typeof__(((struct snap *)0)->member), double)               \
	            ? 0                                                        \
	            : sizeof(((struct snap *)0)->member))

static double value(const struct metric *m, const struct snap *s)
{
	const char *at = (const char *)s + m->off;
	if (m->width == 0) {
		double d;
		memcpy(&d, at, sizeof(d));
		return d;
	}
	if (m->width == 1) /* a bool, or a uint8_t */
		return (double)*(const uint8_t *)at;
	if (m->width == 2) {
		uint16_t v;
		memcpy(&v, at, sizeof(v));
		return (double)v;
	}
	if (m->width == 4) {
		uint32_t v;
		memcpy(&v, at, sizeof(v));
		return (double)v;
	}
	uint64_t v;
	memcpy(&v, at, sizeof(v));
	return (double)v;
}


static const struct metric metrics[] = {
    {"uptime_seconds", "Seconds since the observer started with its node.", GAUGE, "node", "uptime_s", F(uptime_s)},
    {"node_ready", "1 while the node's application says it is ready (GET /api/ready), else 0.", GAUGE, "node", "ready", F(ready)},
    {"actors", "Actors alive.", GAUGE, "runtime", "actors_alive", F(rt.actors_alive)},
    {"actors_spawned_total", "Actors spawned.", COUNTER, "runtime", "actors_spawned", F(rt.actors_spawned)},
    {"messages_sent_total", "Messages accepted by a live mailbox.", COUNTER, "runtime", "msgs_sent", F(rt.msgs_sent)},
    {"messages_dropped_total", "Messages refused: a dead pid, or after the exit.", COUNTER, "runtime", "msgs_dropped", F(rt.msgs_dropped)},
    {"actor_crashes_total", "Actors that exited with a reason other than normal.", COUNTER, "runtime", "crashes", F(rt.crashes)},
    {"turns_total", "Actor turns run, all schedulers.", COUNTER, "runtime", "turns", F(rt.turns)},
    {"steals_total", "Actors taken from another scheduler.", COUNTER, "runtime", "steals", F(rt.steals)},
    {"parks_total", "Times a scheduler went to sleep.", COUNTER, "runtime", "parks", F(rt.parks)},
    {"global_queue", "Runnable actors in the global run queue.", GAUGE, "runtime", "global_queue", F(rt.global_queue)},
    {"timers_armed", "Timers waiting to fire.", GAUGE, "runtime", "timers_armed", F(rt.timers_armed)},
    {"blocking_jobs", "Blocking-pool jobs queued or running.", GAUGE, "runtime", "blocking_jobs", F(rt.blocking_jobs)},
    {"blocking_threads", "Threads of the blocking pool.", GAUGE, "runtime", "blocking_threads", F(rt.blocking_threads)},
    {"blocking_threads_max", "The blocking pool's bound.", GAUGE, "runtime", "blocking_max", F(rt.blocking_max)},
    {"peers_up", "Nodes connected and authenticated.", GAUGE, "dist", "peers_up", F(node.peers_up)},
    {"peers_known", "Entries of the peer table, up or not.", GAUGE, "dist", "peers_known", F(node.peers_known)},
    {"members_known", "Cluster members and seeds this node would dial.", GAUGE, "dist", "members_known", F(node.members_known)},
    {"redials_total", "Dials the node started itself.", COUNTER, "dist", "redials", F(node.redials)},
    {"handshakes_refused_total", "Handshakes refused: cookie, version, name, incarnation.", COUNTER, "dist", "handshakes_refused", F(node.handshakes_refused)},
    {"handshakes_timed_out_total", "Handshakes past their deadline.", COUNTER, "dist", "handshakes_timed_out", F(node.handshakes_timed_out)},
    {"handshakes_evicted_total", "Pending handshakes closed to make room.", COUNTER, "dist", "handshakes_evicted", F(node.handshakes_evicted)},
    {"handshakes_pending", "Handshakes started by others, now.", GAUGE, "dist", "handshakes_pending", F(node.handshakes_pending)},
    {"frames_unauthenticated_total", "Frames dropped from a connection that had not proved the cookie.", COUNTER, "dist", "frames_unauth", F(node.frames_unauth)},
    {"frames_malformed_total", "Frames dropped as undecodable or invalid.", COUNTER, "dist", "frames_malformed", F(node.frames_malformed)},
    {"connections_open", "Inbound connections open.", GAUGE, "dist", "conns_open", F(node.conns_open)},
    {"connections_untrusted", "Inbound connections that have not proved the cookie.", GAUGE, "dist", "conns_untrusted", F(node.conns_untrusted)},
    {"connections_refused_total", "Inbound connections closed for breaking the protocol.", COUNTER, "dist", "conns_refused", F(node.conns_refused)},
    {"receive_backlog_bytes", "Bytes of remote messages in mailboxes.", GAUGE, "dist", "recv_backlog", F(node.recv_backlog)},
    {"busy_refused_total", "Local sends refused because the remote target said BUSY.", COUNTER, "dist", "busy_refused", F(node.busy_refused)},
    {"receive_pauses_total", "Connections paused by flow control.", COUNTER, "dist", "recv_pauses", F(node.recv_pauses)},
    {"proc_children", "Process children running (warm ones included).", GAUGE, "proc", "running", F(proc.running)},
    {"proc_started_total", "Process children launched.", COUNTER, "proc", "started", F(proc.started)},
    {"proc_exited_total", "Process children reaped.", COUNTER, "proc", "exited", F(proc.exited)},
    {"proc_killed_total", "Process children killed by this node.", COUNTER, "proc", "killed", F(proc.killed)},
    {"proc_refused_total", "Starts refused at TR_PROC_MAX.", COUNTER, "proc", "refused", F(proc.refused)},
    {"proc_warm", "Warm process children waiting.", GAUGE, "proc", "warm", F(proc.warm)},
    {"proc_warm_taken_total", "Starts that took a warm process.", COUNTER, "proc", "taken", F(proc.taken)},
    {"sock_listeners", "Listening sockets open.", GAUGE, "sock", "listeners", F(sock.listeners)},
    {"sock_connections", "Socket connections open (connecting, open or closing).", GAUGE, "sock", "conns", F(sock.conns)},
    {"sock_accepted_total", "Socket connections accepted.", COUNTER, "sock", "accepted", F(sock.accepted)},
    {"sock_connected_total", "Socket connections dialed out and connected.", COUNTER, "sock", "connected", F(sock.connected)},
    {"sock_connect_failed_total", "Socket dials that failed or timed out.", COUNTER, "sock", "connect_failed", F(sock.connect_failed)},
    {"sock_closed_by_peer_total", "Socket reads that found the peer gone.", COUNTER, "sock", "closed_by_peer", F(sock.closed_by_peer)},
    {"sock_failed_total", "Socket connections that failed: reset, too long a line or frame, I/O errors.", COUNTER, "sock", "failed", F(sock.failed)},
    {"sock_owner_exits_total", "Sockets closed because their owner exited.", COUNTER, "sock", "owner_exits", F(sock.owner_exits)},
    {"sock_received_bytes_total", "Bytes read from socket connections.", COUNTER, "sock", "bytes_in", F(sock.bytes_in)},
    {"sock_sent_bytes_total", "Bytes written to socket connections.", COUNTER, "sock", "bytes_out", F(sock.bytes_out)},
    {"sock_send_eagain_total", "Socket sends refused with TR_EAGAIN (the write queue full).", COUNTER, "sock", "send_eagain", F(sock.send_eagain)},
    {"sock_accept_waits_total", "Times a listener stopped accepting at max_conns.", COUNTER, "sock", "accept_waits", F(sock.accept_waits)},
    {"sock_accept_dropped_total", "Connections accepted for an actor that had exited meanwhile, closed.", COUNTER, "sock", "accept_dropped", F(sock.accept_dropped)},
    {"observer_refused_total", "Observer requests refused for want of the token.", COUNTER, "observer", "refused", F(refused)},
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static void take(struct snap *s, struct tr_node *n, int64_t start_ms,
    uint64_t refused)
{
	tr_runtime_stats_init(&s->rt);
	tr_node_stats_init(&s->node);
	tr_proc_stats_init(&s->proc);
	tr_sock_stats_init(&s->sock);
	(void)tr_runtime_stats_get(&s->rt, n->rt);
	(void)tr_node_stats_get(&s->node, n);
	(void)tr_proc_stats_get(&s->proc, n);
	(void)tr_sock_stats_get(n->rt, &s->sock);
	s->uptime_s = (double)(tr__node_now_ms() - start_ms) / 1000.0;
	s->refused = refused;
	s->ready = tr__node_ready(n, NULL, 0);
}

/* A growing buffer for the text format. */
struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct buf *b, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !b->failed; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int k = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (k < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)k < b->cap - b->len) {
			b->len += (size_t)k;
			return;
		}
		size_t cap = (b->cap + (size_t)k + 1) * 2;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

/* A label value as the text format wants it: \ " and newline escaped. */
static void label(char *out, size_t cap, const char *v)
{
	size_t k = 0;
	for (; *v != '\0' && k + 3 < cap; v++) {
		if (*v == '\\' || *v == '"') {
			out[k++] = '\\';
			out[k++] = *v;
		} else if (*v == '\n') {
			out[k++] = '\\';
			out[k++] = 'n';
		} else {
			out[k++] = *v;
		}
	}
	out[k] = '\0';
}

/* Per scheduler: a label scheduler="i" beside node=. */
static const struct {
	const char *name, *help;
	enum kind kind;
	size_t off, width; /* of an unsigned integer in tr_sched_stats */
	double scale;
} sched_metrics[] = {
    {"scheduler_turns_total", "Actor turns run by one scheduler.", COUNTER, offsetof(tr_sched_stats, turns), 8, 1},
    {"scheduler_steals_total", "Actors one scheduler took from another.", COUNTER, offsetof(tr_sched_stats, steals), 8, 1},
    {"scheduler_parks_total", "Times one scheduler went to sleep.", COUNTER, offsetof(tr_sched_stats, parks), 8, 1},
    {"scheduler_parked_seconds_total", "Seconds one scheduler slept (its load: 1 - the rate of this).", COUNTER, offsetof(tr_sched_stats, parked_ns), 8, 1e-9},
    {"scheduler_run_queue", "Actors in one scheduler's run queue.", GAUGE, offsetof(tr_sched_stats, run_queue), 4, 1},
};

static double sched_value(const tr_sched_stats *st, size_t k)
{
	const char *at = (const char *)st + sched_metrics[k].off;
	if (sched_metrics[k].width == 4) {
		uint32_t v;
		memcpy(&v, at, sizeof(v));
		return (double)v * sched_metrics[k].scale;
	}
	uint64_t v;
	memcpy(&v, at, sizeof(v));
	return (double)v * sched_metrics[k].scale;
}

/* The connected nodes (tr_node_list), malloc'ed; *k gets how many. */
static tr_node_info *peer_list(struct tr_node *n, size_t *k)
{
	*k = 0;
	size_t count = 0;
	if (tr_node_list(NULL, 0, &count, n) != TR_OK || count == 0)
		return NULL;
	count += 8; /* room for a few that come meanwhile */
	tr_node_info *v = calloc(count, sizeof(*v));
	if (v == NULL)
		return NULL;
	tr_node_info_init(&v[0]);
	size_t got = 0;
	if (tr_node_list(v, count, &got, n) != TR_OK)
		got = 0;
	*k = got < count ? got : count;
	return v;
}

/* Per connected node: a label peer="NAME" beside node=. */
static const struct {
	const char *name, *help;
	enum kind kind;
	size_t off; /* of a uint64_t in tr_node_info */
} peer_metrics[] = {
    {"peer_messages_sent_total", "Messages queued to one connected node.", COUNTER, offsetof(tr_node_info, msgs_out)},
    {"peer_sent_bytes_total", "Bytes of the batches queued to one connected node.", COUNTER, offsetof(tr_node_info, bytes_out)},
    {"peer_messages_received_total", "Messages received from one connected node.", COUNTER, offsetof(tr_node_info, msgs_in)},
    {"peer_received_bytes_total", "Bytes of the batches received from one connected node.", COUNTER, offsetof(tr_node_info, bytes_in)},
    {"peer_queue_bytes", "Bytes queued to one connected node or in flight.", GAUGE, offsetof(tr_node_info, queue_bytes)},
    {"peer_last_receive_age_seconds", "Seconds since the last frame from one connected node.", GAUGE, offsetof(tr_node_info, last_rx_ms)},
    {"peer_refused_total", "Messages of one connected node refused here.", COUNTER, offsetof(tr_node_info, refused_in)},
    {"peer_up_seconds", "Seconds one connected node has been up.", GAUGE, offsetof(tr_node_info, up_ms)},
};

static void put_peers(struct buf *b, struct tr_node *n, const char *node)
{
	size_t k;
	tr_node_info *v = peer_list(n, &k);
	if (k == 0) {
		free(v);
		return;
	}
	for (size_t m = 0; m < sizeof(peer_metrics) / sizeof(peer_metrics[0]);
	     m++) {
		put(b, "# HELP troupe_%s %s\n# TYPE troupe_%s %s\n",
		    peer_metrics[m].name, peer_metrics[m].help,
		    peer_metrics[m].name,
		    peer_metrics[m].kind == COUNTER ? "counter" : "gauge");
		bool ms = strstr(peer_metrics[m].name, "seconds") != NULL;
		for (size_t i = 0; i < k; i++) {
			char peer[2 * TR_NODE_NAME_MAX + 4];
			label(peer, sizeof(peer), v[i].name);
			uint64_t x;
			memcpy(&x, (const char *)&v[i] + peer_metrics[m].off,
			    sizeof(x));
			put(b, "troupe_%s{node=\"%s\",peer=\"%s\"} %.15g\n",
			    peer_metrics[m].name, node, peer,
			    ms ? (double)x / 1000.0 : (double)x);
		}
	}
	free(v);
}

char *tr__observer_metrics(struct tr_node *n, int64_t start_ms, uint64_t refused)
{
	struct snap s;
	take(&s, n, start_ms, refused);
	char node[2 * TR_NODE_NAME_MAX + 4];
	label(node, sizeof(node), n->name);
	struct buf b = {malloc(8192), 0, 8192, false};
	if (b.p == NULL)
		return NULL;
	for (size_t i = 0; i < NMETRICS; i++) {
		const struct metric *m = &metrics[i];
		put(&b, "# HELP troupe_%s %s\n# TYPE troupe_%s %s\n", m->name,
		    m->help, m->name, m->kind == COUNTER ? "counter" : "gauge");
		put(&b, "troupe_%s{node=\"%s\"} %.15g\n", m->name, node,
		    value(m, &s));
	}
	unsigned ns = tr_runtime_schedulers(n->rt);
	for (size_t k = 0; k < sizeof(sched_metrics) / sizeof(sched_metrics[0]);
	     k++) {
		put(&b, "# HELP troupe_%s %s\n# TYPE troupe_%s %s\n",
		    sched_metrics[k].name, sched_metrics[k].help,
		    sched_metrics[k].name,
		    sched_metrics[k].kind == COUNTER ? "counter" : "gauge");
		for (unsigned i = 0; i < ns; i++) {
			tr_sched_stats st;
			tr_sched_stats_init(&st);
			if (tr_runtime_sched_stats_get(&st, n->rt, i) != TR_OK)
				continue;
			put(&b, "troupe_%s{node=\"%s\",scheduler=\"%u\"} %.15g\n",
			    sched_metrics[k].name, node, i, sched_value(&st, k));
		}
	}
	put_peers(&b, n, node);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The object `name` of `root`, made if it is not there. */
static json_t *group(json_t *root, const char *name)
{
	json_t *g = json_object_get(root, name);
	if (g == NULL) {
		g = json_object();
		json_object_set_new(root, name, g);
	}
	return g;
}

static json_t *peers_json(struct tr_node *n)
{
	json_t *arr = json_array();
	size_t k;
	tr_node_info *v = peer_list(n, &k);
	for (size_t i = 0; i < k; i++)
		json_array_append_new(arr,
		    json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, "
		              "s:I, s:I, s:I}",
		        "name", v[i].name, "incarnation",
		        (json_int_t)v[i].incarnation, "url", v[i].url, "up_ms",
		        (json_int_t)v[i].up_ms, "msgs_out",
		        (json_int_t)v[i].msgs_out, "bytes_out",
		        (json_int_t)v[i].bytes_out, "msgs_in",
		        (json_int_t)v[i].msgs_in, "bytes_in",
		        (json_int_t)v[i].bytes_in, "queue_bytes",
		        (json_int_t)v[i].queue_bytes, "last_rx_ms",
		        (json_int_t)v[i].last_rx_ms, "refused_in",
		        (json_int_t)v[i].refused_in, "busy_targets",
		        (json_int_t)v[i].busy_targets));
	free(v);
	return arr;
}

static char *dump(json_t *root)
{
	char *out = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
	json_decref(root);
	return out;
}

char *tr__observer_node_json(struct tr_node *n, int64_t start_ms, uint64_t refused)
{
	struct snap s;
	take(&s, n, start_ms, refused);
	json_t *root = json_object();
	if (root == NULL)
		return NULL;
	json_object_set_new(group(root, "node"), "name", json_string(n->name));
	for (size_t i = 0; i < NMETRICS; i++) {
		const struct metric *m = &metrics[i];
		double v = value(m, &s);
		json_object_set_new(group(root, m->group), m->field,
		    m->kind == COUNTER || v == (double)(json_int_t)v
		        ? json_integer((json_int_t)v)
		        : json_real(v));
	}
	json_t *scheds = json_array();
	unsigned ns = tr_runtime_schedulers(n->rt);
	for (unsigned i = 0; i < ns; i++) {
		tr_sched_stats st;
		tr_sched_stats_init(&st);
		if (tr_runtime_sched_stats_get(&st, n->rt, i) != TR_OK)
			continue;
		json_array_append_new(scheds,
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		        "parked_ns", (json_int_t)st.parked_ns, "run_queue",
		        (json_int_t)st.run_queue, "turns", (json_int_t)st.turns, "steals",
		        (json_int_t)st.steals, "parks", (json_int_t)st.parks,
		        "msgs_sent", (json_int_t)st.msgs_sent, "msgs_dropped",
		        (json_int_t)st.msgs_dropped, "spawned",
		        (json_int_t)st.spawned, "exited", (json_int_t)st.exited,
		        "crashes", (json_int_t)st.crashes));
	}
	json_object_set_new(root, "schedulers", scheds);
	json_object_set_new(group(root, "dist"), "peers", peers_json(n));
	return dump(root);
}

char *tr__observer_health_json(struct tr_node *n)
{
	return dump(json_pack("{s:s, s:b}", "node", n->name, "ok", 1));
}

char *tr__observer_ready_json(struct tr_node *n, bool ready, const char *why)
{
	/* `why` is UTF-8 (tr_node_set_ready made it so), which json_pack
	 * needs. */
	return dump(ready ? json_pack("{s:s, s:b}", "node", n->name, "ready", 1)
	                  : json_pack("{s:s, s:b, s:s}", "node", n->name,
	                        "ready", 0, "why", why));
}
