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

/* Everything one answer reads, taken once. */
struct snap {
	tr_runtime_stats rt;
	tr_node_stats node;
	tr_proc_stats proc;
	double uptime_s;
	uint64_t refused;
};

enum kind { COUNTER, GAUGE };

struct metric {
	const char *name; /* troupe_ + this */
	const char *help;
	enum kind kind;
	const char *group; /* its object in /api/node */
	const char *field; /* its key there */
	double (*get)(const struct snap *s);
};

static double g_uptime(const struct snap *s) { return s->uptime_s; }
static double g_actors(const struct snap *s) { return (double)s->rt.actors_alive; }
static double g_spawned(const struct snap *s) { return (double)s->rt.actors_spawned; }
static double g_sent(const struct snap *s) { return (double)s->rt.msgs_sent; }
static double g_dropped(const struct snap *s) { return (double)s->rt.msgs_dropped; }
static double g_crashes(const struct snap *s) { return (double)s->rt.crashes; }
static double g_turns(const struct snap *s) { return (double)s->rt.turns; }
static double g_steals(const struct snap *s) { return (double)s->rt.steals; }
static double g_parks(const struct snap *s) { return (double)s->rt.parks; }
static double g_peers_up(const struct snap *s) { return s->node.peers_up; }
static double g_peers_known(const struct snap *s) { return s->node.peers_known; }
static double g_members(const struct snap *s) { return s->node.members_known; }
static double g_redials(const struct snap *s) { return (double)s->node.redials; }
static double g_hs_refused(const struct snap *s) { return (double)s->node.handshakes_refused; }
static double g_hs_timeout(const struct snap *s) { return (double)s->node.handshakes_timed_out; }
static double g_hs_evicted(const struct snap *s) { return (double)s->node.handshakes_evicted; }
static double g_hs_pending(const struct snap *s) { return s->node.handshakes_pending; }
static double g_unauth(const struct snap *s) { return (double)s->node.frames_unauth; }
static double g_malformed(const struct snap *s) { return (double)s->node.frames_malformed; }
static double g_conns(const struct snap *s) { return s->node.conns_open; }
static double g_untrusted(const struct snap *s) { return s->node.conns_untrusted; }
static double g_conns_refused(const struct snap *s) { return (double)s->node.conns_refused; }
static double g_backlog(const struct snap *s) { return (double)s->node.recv_backlog; }
static double g_busy_ref(const struct snap *s) { return (double)s->node.busy_refused; }
static double g_pauses(const struct snap *s) { return (double)s->node.recv_pauses; }
static double g_p_running(const struct snap *s) { return (double)s->proc.running; }
static double g_p_started(const struct snap *s) { return (double)s->proc.started; }
static double g_p_exited(const struct snap *s) { return (double)s->proc.exited; }
static double g_p_killed(const struct snap *s) { return (double)s->proc.killed; }
static double g_p_refused(const struct snap *s) { return (double)s->proc.refused; }
static double g_p_warm(const struct snap *s) { return (double)s->proc.warm; }
static double g_p_taken(const struct snap *s) { return (double)s->proc.taken; }
static double g_obs_refused(const struct snap *s) { return (double)s->refused; }

static const struct metric metrics[] = {
    {"uptime_seconds", "Seconds since the observer started with its node.", GAUGE, "node", "uptime_s", g_uptime},
    {"actors", "Actors alive.", GAUGE, "runtime", "actors_alive", g_actors},
    {"actors_spawned_total", "Actors spawned.", COUNTER, "runtime", "actors_spawned", g_spawned},
    {"messages_sent_total", "Messages accepted by a live mailbox.", COUNTER, "runtime", "msgs_sent", g_sent},
    {"messages_dropped_total", "Messages refused: a dead pid, or after the exit.", COUNTER, "runtime", "msgs_dropped", g_dropped},
    {"actor_crashes_total", "Actors that exited with a reason other than normal.", COUNTER, "runtime", "crashes", g_crashes},
    {"turns_total", "Actor turns run, all schedulers.", COUNTER, "runtime", "turns", g_turns},
    {"steals_total", "Actors taken from another scheduler.", COUNTER, "runtime", "steals", g_steals},
    {"parks_total", "Times a scheduler went to sleep.", COUNTER, "runtime", "parks", g_parks},
    {"peers_up", "Nodes connected and authenticated.", GAUGE, "dist", "peers_up", g_peers_up},
    {"peers_known", "Entries of the peer table, up or not.", GAUGE, "dist", "peers_known", g_peers_known},
    {"members_known", "Cluster members and seeds this node would dial.", GAUGE, "dist", "members_known", g_members},
    {"redials_total", "Dials the node started itself.", COUNTER, "dist", "redials", g_redials},
    {"handshakes_refused_total", "Handshakes refused: cookie, version, name, incarnation.", COUNTER, "dist", "handshakes_refused", g_hs_refused},
    {"handshakes_timed_out_total", "Handshakes past their deadline.", COUNTER, "dist", "handshakes_timed_out", g_hs_timeout},
    {"handshakes_evicted_total", "Pending handshakes closed to make room.", COUNTER, "dist", "handshakes_evicted", g_hs_evicted},
    {"handshakes_pending", "Handshakes started by others, now.", GAUGE, "dist", "handshakes_pending", g_hs_pending},
    {"frames_unauthenticated_total", "Frames dropped from a connection that had not proved the cookie.", COUNTER, "dist", "frames_unauth", g_unauth},
    {"frames_malformed_total", "Frames dropped as undecodable or invalid.", COUNTER, "dist", "frames_malformed", g_malformed},
    {"connections_open", "Inbound connections open.", GAUGE, "dist", "conns_open", g_conns},
    {"connections_untrusted", "Inbound connections that have not proved the cookie.", GAUGE, "dist", "conns_untrusted", g_untrusted},
    {"connections_refused_total", "Inbound connections closed for breaking the protocol.", COUNTER, "dist", "conns_refused", g_conns_refused},
    {"receive_backlog_bytes", "Bytes of remote messages in mailboxes.", GAUGE, "dist", "recv_backlog", g_backlog},
    {"busy_refused_total", "Local sends refused because the remote target said BUSY.", COUNTER, "dist", "busy_refused", g_busy_ref},
    {"receive_pauses_total", "Connections paused by flow control.", COUNTER, "dist", "recv_pauses", g_pauses},
    {"proc_children", "Process children running (warm ones included).", GAUGE, "proc", "running", g_p_running},
    {"proc_started_total", "Process children launched.", COUNTER, "proc", "started", g_p_started},
    {"proc_exited_total", "Process children reaped.", COUNTER, "proc", "exited", g_p_exited},
    {"proc_killed_total", "Process children killed by this node.", COUNTER, "proc", "killed", g_p_killed},
    {"proc_refused_total", "Starts refused at TR_PROC_MAX.", COUNTER, "proc", "refused", g_p_refused},
    {"proc_warm", "Warm process children waiting.", GAUGE, "proc", "warm", g_p_warm},
    {"proc_warm_taken_total", "Starts that took a warm process.", COUNTER, "proc", "taken", g_p_taken},
    {"observer_refused_total", "Observer requests refused for want of the token.", COUNTER, "observer", "refused", g_obs_refused},
};

#define NMETRICS (sizeof(metrics) / sizeof(metrics[0]))

static void take(struct snap *s, struct tr_node *n, int64_t start_ms,
    uint64_t refused)
{
	tr_runtime_stats_init(&s->rt);
	tr_node_stats_init(&s->node);
	tr_proc_stats_init(&s->proc);
	(void)tr_runtime_stats_get(&s->rt, n->rt);
	(void)tr_node_stats_get(&s->node, n);
	(void)tr_proc_stats_get(&s->proc, n);
	s->uptime_s = (double)(tr__node_now_ms() - start_ms) / 1000.0;
	s->refused = refused;
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

static const char *sched_names[][2] = {
    {"scheduler_turns_total", "Actor turns run by one scheduler."},
    {"scheduler_steals_total", "Actors one scheduler took from another."},
    {"scheduler_parks_total", "Times one scheduler went to sleep."},
};

static uint64_t sched_value(const tr_sched_stats *st, int i)
{
	return i == 0 ? st->turns : i == 1 ? st->steals : st->parks;
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
		    m->get(&s));
	}
	unsigned ns = tr_runtime_schedulers(n->rt);
	for (int k = 0; k < 3; k++) {
		put(&b, "# HELP troupe_%s %s\n# TYPE troupe_%s counter\n",
		    sched_names[k][0], sched_names[k][1], sched_names[k][0]);
		for (unsigned i = 0; i < ns; i++) {
			tr_sched_stats st;
			tr_sched_stats_init(&st);
			if (tr_runtime_sched_stats_get(&st, n->rt, i) != TR_OK)
				continue;
			put(&b, "troupe_%s{node=\"%s\",scheduler=\"%u\"} %llu\n",
			    sched_names[k][0], node, i,
			    (unsigned long long)sched_value(&st, k));
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
		double v = m->get(&s);
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
		    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		        "turns", (json_int_t)st.turns, "steals",
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
