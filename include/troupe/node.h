/*
 * troupe nodes: the same send, link and monitor across processes and hosts.
 *
 * A node is a runtime with a name, an incarnation and one or more listen
 * URLs (tcp://, ipc://, tls+tcp://). Nodes that share a cookie connect and
 * prove it to each other (HMAC over random challenges with a key derived
 * from the cookie; the cookie never crosses the wire). Nothing a party
 * sends before it has proved the cookie changes what a node knows of its
 * peers, and what such a party can make the node spend is bounded (one
 * connection for handshake_ms, 64 KiB of frame, max_handshakes at once).
 * Once connected, a tr_pid can name an actor on another
 * node: tr_send, tr_link, tr_monitor, tr_kill and tr_request work on it as
 * on a local pid. On the wire a pid always carries its node's name and
 * incarnation in envelope fields (sender, target), independent of the
 * payload, so a pid received from one node reaches its actor from any node
 * that is connected to the actor's node. A tr_pid's `node` field is a local
 * index into this node's table of peers: copy pids freely within a process,
 * but do not write their raw bytes into payloads bound for other nodes;
 * put them there with tr_pid_encode (troupe/pid.h), or as a troupe.Pid in
 * a protobuf message (troupe/pb.h).
 * Message types that are local-only (tr_msg_type_local) never cross.
 *
 * Flow control: a sender's queue for a peer is bounded (max_queue: sends
 * fail with TR_EAGAIN), and so is what a receiving node holds. An actor
 * whose mailbox holds more than recv_actor_max bytes of remote messages
 * makes its senders' nodes refuse further sends to it with TR_EAGAIN
 * until it has caught up (BUSY / READY); a node that holds more than
 * recv_max stops reading its connections until it is back under. Neither
 * stalls signals or heartbeats of other actors, and neither declares
 * anyone down (docs/distribution.md, "Flow control").
 *
 * Failure detection: every connection carries heartbeats each tick (default
 * 1 s); a peer silent for 4 ticks (killed, frozen, cut off) is declared
 * down: every link across it fires with reason noconnection, every monitor
 * gets DOWN noconnection, and node monitors get TR_MSG_NODEDOWN. A link or
 * monitor made later to a pid of a node that is not connected fires
 * noconnection at once. Messages in flight on a broken connection may be
 * lost; per-pair order is kept. A restarted peer has a new incarnation:
 * its old pids are stale everywhere (links and monitors to them: noproc).
 *
 * Clusters: a node joins by knowing one member. Pairs tell each other
 * which nodes they are connected to, and each connects to those it is not
 * (transitive connect; connect_all); seeds (seeds, TROUPE_SEEDS, a
 * tr_node_seed_source such as DNS: troupe/dns.h, TROUPE_DNS) are
 * dialled at start; a lost peer is redialled
 * with backoff (100 ms doubling to 5 s, jittered; reconnect) and
 * forgotten after 60 s without a connect. tr_node_list is nodes().
 * docs/distribution.md, "Clusters", has the bounds.
 *
 * No nng or protobuf-c type appears here. One node per runtime.
 */
#ifndef TROUPE_NODE_H
#define TROUPE_NODE_H

#include "troupe/troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_node tr_node;

#define TR_NODE_NAME_MAX 255

/* Options of a node. Versioned (troupe.h, "Versioned structs"): fill
 * with tr_node_opts_init. */
typedef struct tr_node_opts {
	uint32_t struct_size;      /* sizeof(tr_node_opts), by the _init */
	const char *name;          /* unique among connected nodes, 1..255
	                            * bytes (e.g. "alpha" or "alpha@host") */
	uint64_t incarnation;      /* 0: the start time in ms */
	const char *const *listen; /* NULL-terminated list of URLs to listen
	                            * on; ports may be 0 (tcp) to pick one */
	const char *cookie;        /* the shared secret; required */
	uint32_t tick_ms;          /* heartbeat tick; 0 = 1000 ms */
	size_t max_frame;          /* largest frame accepted from a peer;
	                            * 0 = the runtime's max_msg_size + 64 KiB */
	size_t max_queue;          /* bytes queued for one peer before sends to
	                            * it fail with TR_EAGAIN; 0 = 16 MiB */
	const char *tls_ca_file;   /* tls+tcp://: CA that signs the peers */
	const char *tls_cert_file; /* tls+tcp://: this node's certificate */
	const char *tls_key_file;  /* tls+tcp://: its private key */
	uint32_t handshake_ms;     /* a connection must prove the cookie
	                            * this soon after it came; 0 = 5000 ms */
	uint32_t max_handshakes;   /* handshakes started by others at once,
	                            * and connections not proved yet per
	                            * listener (beyond it the oldest is
	                            * closed); 0 = 64 */
	size_t recv_actor_max;     /* remote bytes in one actor's mailbox
	                            * before its senders are told BUSY;
	                            * 0 = 16 MiB */
	size_t recv_max;           /* remote bytes in all mailboxes and held
	                            * back together before the node stops
	                            * reading; 0 = 256 MiB */
	const char *client_url;    /* optional: a rep0 endpoint for programs
	                            * that are not nodes (docs/client.md);
	                            * tls+tcp:// uses tls_cert_file and
	                            * tls_key_file */
	uint32_t client_window_ms; /* accepted age of a client request;
	                            * 0 = 30000 ms */
	size_t client_max_request; /* largest client request frame; a longer
	                            * one is refused on its length, its
	                            * connection closed; 0 = 1 MiB */
	uint32_t client_max_calls; /* client calls in progress at once (at
	                            * most 65536); beyond, a request gets
	                            * TR_EAGAIN at once; 0 = 64 */
	uint32_t client_max_conns; /* client connections open at once (at
	                            * most 65536); one beyond is closed as
	                            * soon as it is made; 0 = 256 */
	uint32_t client_idle_ms;   /* a client connection with no request
	                            * for this long (none in progress) is
	                            * closed; 0 = 60000 ms */
	/* ---- clusters (docs/distribution.md, "Clusters"); fields added
	 * after the first version ---- */
	const char *const *seeds;  /* NULL-terminated URLs of members to join;
	                            * dialled at start and redialled with
	                            * backoff until connected. NULL: the
	                            * comma-separated URLs of the environment
	                            * variable TROUPE_SEEDS, if set */
	const struct tr_node_seed_source *seed_source; /* optional: a further
	                            * source of seed URLs (e.g. DNS), asked
	                            * periodically; the node reads it, the
	                            * caller keeps it alive until
	                            * tr_node_stop. NULL: a DNS source made
	                            * from the environment variable
	                            * TROUPE_DNS, if set (troupe/dns.h) */
	void *seed_user;           /* seed_source's argument */
	int32_t connect_all;       /* transitive connect: 0 (default) or
	                            * TR_NODE_ON: connect to every node a peer
	                            * is connected to; TR_NODE_OFF: only to
	                            * what this node dials (Erlang's
	                            * -connect_all false) */
	int32_t reconnect;         /* 0 (default) or TR_NODE_ON: redial a
	                            * lost peer with backoff; TR_NODE_OFF:
	                            * never redial by itself */
	/* ---- the observer (troupe/observer.h); added after the first
	 * version ---- */
	const char *observer_url;  /* NULL (default): none; else its HTTP
	                            * endpoint, "http://127.0.0.1:PORT" (a
	                            * loopback host; port 0 picks one), or
	                            * "https://HOST:PORT" on any host, with
	                            * mutual TLS by the tls_*_file above */
	/* ---- added after the first version ---- */
	int32_t busy_poll;         /* 0 (default) or TR_NODE_ON: an idle
	                            * scheduler reads the inbound tcp://
	                            * connections whose frames come within
	                            * the runtime's spin_us of each other
	                            * itself, while it spins, so that a
	                            * message of a hot connection wakes no
	                            * thread (docs/distribution.md, "Busy
	                            * polling"); TR_NODE_OFF: every read
	                            * waits on nng's threads */
} tr_node_opts;

/* Values of the tri-state options (connect_all, reconnect, busy_poll): 0
 * is the default, which for all three is on. */
#define TR_NODE_ON 1
#define TR_NODE_OFF (-1)

/* A pluggable source of seed URLs (a static list, DNS, a service
 * registry). `resolve` is called from the node's control thread, never
 * from a scheduler or an nng callback: once at start, then every
 * `interval_ms` (0 = 5000 ms) for as long as the node runs. It calls
 * `add(sink, url)` for each URL it knows now (the node copies the URL;
 * URLs of 1..511 bytes are taken, others ignored) and returns TR_OK or an
 * error, which is logged (at most once per 10 s) and otherwise ignored.
 * It may block (a DNS lookup), but the node's connects it found wait for
 * it, so keep it short. Seed URLs are kept until the node stops, at most
 * 1024 of them together with the nodes learnt from peers; URLs of this
 * node itself are skipped. The seeds of tr_node_opts (or TROUPE_SEEDS)
 * are a built-in static source of this kind. */
typedef void tr_node_seed_add_fn(void *sink, const char *url);
typedef struct tr_node_seed_source {
	int (*resolve)(void *user, tr_node_seed_add_fn *add, void *sink);
	uint32_t interval_ms;
} tr_node_seed_source;

/* The size of the first version of tr_node_opts. */
#define TR_NODE_OPTS_V1_SIZE TR_STRUCT_END(tr_node_opts, client_idle_ms)

/* Fills `opts` with the defaults (all zero: no name, no cookie, the
 * defaults above) and sets its struct_size. */
static inline void tr_node_opts_init(tr_node_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = (uint32_t)sizeof(*opts);
}

/* Starts the node of runtime `rt`: listens, and attaches to the runtime so
 * that pids of other nodes route through it. Errors: TR_EINVAL (opts NULL
 * or not initialised (struct_size 0 or below TR_NODE_OPTS_V1_SIZE), missing
 * name or cookie, bad URL), TR_EEXIST (the runtime has a node already, or
 * a listen address is in use), TR_ENOTSUP (a scheme other than tcp://,
 * ipc:// and tls+tcp://, a transport nng was built without, or opts from a
 * newer troupe that sets an option this library does not have), TR_ENOMEM,
 * and TR_ECLOSED. */
TR_API int tr_node_start(
    tr_node **node, tr_runtime *rt, const tr_node_opts *opts);

/* Stops the node: connections close (peers see it go down). Call before
 * tr_runtime_stop, from a plain thread. NULL is ignored. */
TR_API void tr_node_stop(tr_node *node);

/* The node of a runtime, or NULL. */
TR_API tr_node *tr_node_of(tr_runtime *rt);

/* The URL the node listens on, with the real port for tcp://...:0. `i`
 * counts from 0; NULL past the end. */
TR_API const char *tr_node_listen_url(const tr_node *node, size_t i);

/* Connects to the node listening at `url` and waits up to `timeout_ms` for
 * the handshake to finish; the peer's name goes to `peer` (may be NULL,
 * else TR_NODE_NAME_MAX + 1 bytes). Errors: TR_ETIMEDOUT, TR_EINVAL (a
 * bad URL), TR_ENOTSUP (as for tr_node_start), and TR_ECLOSED when the
 * peer refused us (wrong cookie, incompatible version; the reason is
 * logged). Connecting to a connected node is a no-op whatever the URL (an
 * alias of its address included): the pair there is stays, so two nodes
 * that keep dialling each other converge on one pair. Crossed handshakes
 * are resolved by a fixed rule (the one started by the lower name wins),
 * and the connect that gave way succeeds once the pair is up. */
TR_API int tr_node_connect(
    tr_node *node, const char *url, int64_t timeout_ms, char *peer);

/* The pid of a registered actor on a connected node, for sending by pid
 * (tr_send) later. Blocking call from a plain thread. Errors: TR_ENOENT
 * (no such name there), TR_ENOPROC (no such node connected, or its
 * connection was lost before it answered: that ends the wait at once, as
 * nodedown ends a gen_server:call), TR_ETIMEDOUT.
 *
 * A node that stopped may still be seen up for a moment (until its
 * connection's close arrives, or 4 ticks of silence), and connecting to
 * it in that moment is a no-op: a lookup then fails with TR_ENOPROC, and
 * one after the NODEDOWN reaches the new node. */
TR_API int tr_node_whereis(tr_pid *pid, tr_node *node, const char *node_name,
    const char *name, int64_t timeout_ms);

/* Sends to the actor registered as `name` on node `node_name` (Erlang's
 * {Name, Node} ! Msg). Errors: as tr_send; TR_ENOPROC if no such node is
 * connected (a name unknown there drops the message, as in Erlang). */
TR_API int tr_send_remote_named(tr_ctx *ctx, const char *node_name,
    const char *name, uint32_t type, const void *data, size_t size);

/* Writes "name" of the node a pid belongs to into `buf` (the local node's
 * name for node 0). Errors: TR_ENOENT, TR_EINVAL. */
TR_API int tr_node_name_of(char *buf, size_t cap, tr_node *node, tr_pid pid);

/* Counters of a node, for operations: what was refused and why.
 * Versioned: set struct_size with tr_node_stats_init before each get. */
typedef struct tr_node_stats {
	uint32_t struct_size;          /* sizeof(tr_node_stats), by the _init */
	uint32_t peers_up;             /* connected and authenticated now */
	uint64_t frames_unauth;        /* dropped: from a pipe that has not
	                                * proved the cookie */
	uint64_t frames_malformed;     /* dropped: undecodable or invalid */
	uint64_t handshakes_refused;   /* wrong cookie or proof, bad version,
	                                * our own name, a stale incarnation */
	uint64_t handshakes_evicted;   /* pending handshakes closed to make
	                                * room (more than 64 at once) */
	uint64_t handshakes_timed_out; /* past their deadline */
	uint32_t handshakes_pending;   /* started by others, now */
	uint32_t peers_known;          /* entries in the table, up or not */
	uint64_t local_refused;        /* messages of a local-only type from the
	                                * wire (tr_msg_type_local) */
	/* Inbound connections (all listeners). */
	uint32_t conns_open;            /* open now */
	uint32_t conns_untrusted;       /* of which not proved yet */
	uint32_t conns_paused;          /* of which paused (flow control) */
	uint64_t conns_closed_deadline; /* no proof within handshake_ms */
	uint64_t conns_closed_cap;      /* the oldest untrusted one of a
	                                 * listener, to make room */
	uint64_t conns_refused;         /* broke the SP protocol, a frame
	                                 * over the limit */
	/* Flow control of what other nodes send here. */
	uint64_t recv_backlog; /* bytes of remote messages in mailboxes */
	uint64_t recv_parked;  /* bytes held back for busy actors */
	uint64_t busy_sent;    /* BUSY told to a sender (an actor over
	                        * recv_actor_max) */
	uint64_t busy_refused; /* local sends refused with TR_EAGAIN: the
	                        * remote target said BUSY */
	uint64_t recv_pauses;  /* connections paused (over recv_max, or a
	                        * sender that ignores BUSY) */
	/* The client endpoint (client_url), if any: answered calls, and
	 * refusals by cause (docs/client.md). */
	uint64_t client_answered;
	uint64_t client_failed; /* accepted, the call failed */
	uint64_t client_bad_signature;
	uint64_t client_too_old; /* an old client protocol, or major */
	uint64_t client_bad_request;
	uint64_t client_wrong_node;
	uint64_t client_replayed; /* outside the window, or a replay */
	uint64_t client_local_type;
	uint64_t client_busy; /* client_max_calls in progress, or
	                       * the replay cache full */
	/* Connections to the client endpoint: open now, closed at once
	 * because client_max_conns were open, closed after client_idle_ms
	 * without a request. */
	uint32_t client_conns;
	uint64_t client_conns_refused;
	uint64_t client_conns_idle_closed;
	/* Clusters (fields added after the first version). */
	uint32_t members_known;   /* nodes this node would dial when lost
	                           * or not yet connected, and seed URLs */
	uint64_t members_refused; /* gossiped nodes not taken: over the
	                           * per-message or total bound */
	uint64_t redials;         /* dials started by the node itself
	                           * (seeds, gossip, reconnects) */
} tr_node_stats;

/* The size of the first version of tr_node_stats. */
#define TR_NODE_STATS_V1_SIZE                                                  \
	TR_STRUCT_END(tr_node_stats, client_conns_idle_closed)

/* Zeroes `st` and sets its struct_size. */
static inline void tr_node_stats_init(tr_node_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills the fields of `st` that fit in its struct_size (never a byte past
 * it); struct_size itself is left as it is. Thread-safe. Errors: TR_EINVAL
 * (NULL, struct_size 0 or below TR_NODE_STATS_V1_SIZE). */
TR_API int tr_node_stats_get(tr_node_stats *st, tr_node *node);

/* ---- connected nodes --------------------------------------------------- */

#define TR_NODE_URL_MAX 511

/* One connected node (Erlang's nodes(), with what a user also asks for).
 * Versioned: fill the array's first entry with tr_node_info_init. */
typedef struct tr_node_info {
	uint32_t struct_size;            /* by the _init */
	char name[TR_NODE_NAME_MAX + 1]; /* its node name */
	uint64_t incarnation;            /* this run of it */
	char url[TR_NODE_URL_MAX + 1];   /* the first URL it listens on
	                                  * (from its Hello; cut to fit) */
	uint64_t up_ms;                  /* how long the pair has been up */
	/* Version 2: traffic since the pair came up. Messages and bytes of
	 * the batches this node queued to it and received from it (a batch's
	 * bytes as framed; handshake and heartbeat frames are not counted). */
	uint64_t msgs_out, bytes_out, msgs_in, bytes_in;
	uint64_t queue_bytes;  /* queued to it or in flight, now */
	uint64_t last_rx_ms;   /* since the last frame from it */
	uint64_t refused_in;   /* its messages refused here (local-only
	                        * types from the wire) */
	uint32_t busy_targets; /* its actors that told this node BUSY */
} tr_node_info;

/* The size of the first version of tr_node_info. */
#define TR_NODE_INFO_V1_SIZE TR_STRUCT_END(tr_node_info, up_ms)
/* The size of the second (traffic). */
#define TR_NODE_INFO_V2_SIZE TR_STRUCT_END(tr_node_info, busy_targets)

static inline void tr_node_info_init(tr_node_info *info)
{
	memset(info, 0, sizeof(*info));
	info->struct_size = (uint32_t)sizeof(*info);
}

/* Fills out[0..cap-1] with the nodes connected now (not this one), in no
 * particular order, and sets *count to how many there are (which may be
 * more than cap: call again with a larger array). The stride of `out` is
 * out[0].struct_size (abi.md, "Arrays"), and each entry written is
 * stamped with it; `out` may be NULL when cap is 0. Thread-safe, any
 * thread. Errors: TR_EINVAL (node or count NULL; cap > 0 and out NULL or
 * out[0] not initialised). */
TR_API int tr_node_list(
    tr_node_info *out, size_t cap, size_t *count, tr_node *node);

/* Drops the connection to the connected node `name` at once, as Erlang's
 * erlang:disconnect_node/1: both nodes see it go down (NODEDOWN with
 * reason "disconnected by the operator"; links and monitors across it
 * fire noconnection), and traffic queued to it is lost. Nothing keeps it
 * away: a send to one of its pids, or a member or seed this node dials
 * itself, connects again. Logged at warning. Errors: TR_EINVAL (NULL),
 * TR_ENOENT (no node of that name is up). Thread-safe. */
TR_API int tr_node_disconnect(tr_node *node, const char *name);

/* ---- remote spawn ------------------------------------------------------- */

/* Makes `b` spawnable by other nodes under `name`: the same as
 * tr_behaviour_register(rt, name, b) on the node's runtime, whose registry
 * serves remote spawn (tr_spawn_remote) and starts of supervisor children
 * by name (TR_SUP_REQ_START_NAMED, sup.h) alike. The remote spawn argument
 * reaches init as a `tr_node_blob *` the actor owns (free it with free()).
 * Errors: TR_EEXIST, TR_EINVAL, TR_ENOMEM. */
TR_API int tr_node_register_behaviour(
    tr_node *node, const char *name, const tr_behaviour *b);

/* An argument that came from another node. */
typedef tr_blob tr_node_blob;

/* Asks node `node_name` to spawn its behaviour `behaviour` with a copy of
 * `arg` (may be NULL when size is 0), linked to the caller if `link`. The
 * answer arrives as a TR_MSG_SPAWN_REPLY message whose `ref` is *ref and
 * whose payload is a tr_spawn_reply. Errors: TR_ENOPROC (node not
 * connected), TR_EINVAL, TR_ENOMEM. */
TR_API int tr_spawn_remote(tr_ctx *ctx, uint64_t *ref, const char *node_name,
    const char *behaviour, const void *arg, size_t size, bool link);

#define TR_MSG_SPAWN_REPLY 0xFFFF0010u

typedef struct tr_spawn_reply {
	int32_t error; /* TR_OK, or TR_ENOENT for an unknown behaviour name,
	                * TR_EINIT, TR_ENOMEM, ... */
	tr_pid pid;    /* the new actor when error is TR_OK */
} tr_spawn_reply;

/* ---- node monitoring ---------------------------------------------------- */

/* Type tags 0xFFFD0000..0xFFFDFFFF are reserved for the node's own
 * services, whose servers talk to each other with ordinary named sends
 * (cluster-wide names, troupe/global.h: 0xFFFD0100..0xFFFD01FF); an
 * application's messages should not use them. */

#define TR_MSG_NODEUP 0xFFFF0011u
#define TR_MSG_NODEDOWN 0xFFFF0012u

#define TR_NODE_REASON_MAX 127

/* The payload of TR_MSG_NODEUP / TR_MSG_NODEDOWN. Its layout only grows
 * at the end, and the message's size says how much of it a sender wrote:
 * `reason` is there when size >= TR_NODE_EVENT_V2_SIZE (it is, from this
 * library on). */
typedef struct tr_node_event {
	char node[TR_NODE_NAME_MAX + 1];
	char reason[TR_NODE_REASON_MAX + 1]; /* why, for a human: "connected",
	                                      * "already up", "no heartbeat
	                                      * for 4 ticks", "connection
	                                      * closed", "it restarted",
	                                      * "not connected", ... */
} tr_node_event;

#define TR_NODE_EVENT_V1_SIZE TR_STRUCT_END(tr_node_event, node)
#define TR_NODE_EVENT_V2_SIZE TR_STRUCT_END(tr_node_event, reason)

/* Subscribes the running actor to TR_MSG_NODEUP / TR_MSG_NODEDOWN messages
 * (payload tr_node_event) for `node_name`, or for every node when it is
 * NULL (Erlang's monitor_node / net_kernel:monitor_nodes), with `on`; with
 * `on` false, removes one such subscription (none left: nothing happens).
 * Subscriptions count, as OTP's monitor_node(Node, true) does: each one
 * gets its own messages (two subscriptions, two NODEDOWNs), and it takes
 * as many calls with `on` false to end them. A node not connected now
 * yields NODEDOWN at once when named. Unlike OTP's monitor_node, a
 * subscription stays after a NODEDOWN (it also hears the NODEUP of a
 * reconnect) until it is turned off or the actor exits. A subscription
 * to every node (NULL) also gets, at once, a NODEUP (reason "already up")
 * for each node connected when it is made, so that a subscriber sees
 * every node that is up without a race between nodes() and the
 * subscription (net_kernel:monitor_nodes reports only later changes).
 * Per down/up cycle of a node, a subscription gets one NODEDOWN and one
 * NODEUP, with the reason in the event. Errors: TR_EINVAL, TR_ENOMEM,
 * TR_ENOTSUP (no node). */
TR_API int tr_monitor_node(tr_ctx *ctx, const char *node_name, bool on);

/* The same subscriptions for a plain thread: the messages go to `port`
 * (tr_port_recv), exactly as tr_monitor_node sends them to an actor (also
 * the NODEUPs of the nodes already up for `node_name` NULL, and NODEDOWN
 * at once for a named node that is not connected). A subscription ends
 * with `on` false, or by itself once the port is closed. Thread-safe.
 * Errors: TR_EINVAL (node or port NULL, a bad name), TR_ENOMEM. */
TR_API int tr_node_monitor_port(
    tr_node *node, tr_port *port, const char *node_name, bool on);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_NODE_H */
