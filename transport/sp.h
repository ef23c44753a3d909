/*
 * nng's pipeline protocol (push0 and pull0), spoken by the node directly
 * over nng's stream transports (tcp://, ipc://, tls+tcp://).
 *
 * On the wire this is exactly what an nng push0 dialer and a pull0
 * listener exchange: after the connection (and its TLS handshake), each
 * side sends the 8-byte SP header {0, 'S', 'P', 0, proto >> 8, proto &
 * 0xff, 0, 0} (push0 is 0x50, pull0 0x51) and checks the other's; then
 * every message is its length as 8 bytes, big-endian, and its bytes (on
 * ipc:// a message-type byte of 1 comes first). So a node's listener
 * accepts any nng push0 socket, and a node dials any pull0 listener.
 *
 * Why not nng's sockets: nng 1.5's socket layer hands every received
 * message across three of its threads (the poller reads the header, a
 * task thread reads the body, another completes pull0's receive) and every
 * completed send to one more; on a 2-core machine each hand-off is a
 * wake-up on the path of a round trip. Here the poller's read completes on
 * one task thread, which parses every whole frame in what it read, and a
 * send is written on the calling thread when the connection is idle. See
 * docs/distribution.md.
 *
 * Threads: the callbacks run on nng's task threads and must not block
 * for long; the sender's `sent` and the node's `frame`, `gone` and
 * `refused` are called without any lock of this file held, except that
 * `frame` calls of one tr__sp_in are serialised (one frame at a time, in
 * order per connection, as pull0 delivered them).
 */
#ifndef TR_SP_H
#define TR_SP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

/* ---- outbound: one push0 connection ------------------------------------ */

typedef struct tr__sp_out tr__sp_out;

/* Reports a frame queued with notify set: rv is 0 once all of it is
 * written to the connection, else why it never will be (the frame is
 * freed either way). Called on an nng thread, or on the calling thread
 * of tr__sp_out_send(_now) when the connection is already gone. */
typedef void (*tr__sp_sent_fn)(void *owner, int rv);

/* Reports that a connection that was up has failed (the peer closed it,
 * broke the protocol, or an I/O error). Called once, on an nng thread. */
typedef void (*tr__sp_closed_fn)(void *arg, tr__sp_out *o);

/* Starts dialing `url` in the background, with `tls` (borrowed, must
 * outlive the connection; NULL for tcp:// and ipc://). A failed dial or
 * SP handshake is retried after 20 ms, doubling up to `redial_max_ms`,
 * until the connection is up once; after that a failure is final
 * (`closed`). Errors: TR_EINVAL (a malformed URL), TR_ENOTSUP (a scheme
 * with no stream transport, such as inproc://), TR_ENOMEM, or another
 * mapped nng error. */
int tr__sp_out_open(tr__sp_out **op, const char *url, nng_tls_config *tls,
    uint32_t redial_max_ms, tr__sp_closed_fn closed, void *arg);

/* Sets who `sent` reports to. Call before the first send with notify. */
void tr__sp_out_adopt(tr__sp_out *o, tr__sp_sent_fn sent, void *owner);

/* Queues frame `m` (taken) behind the others; it goes once the connection
 * is up. With notify, `sent` reports it. Never call with a lock that
 * `sent` takes. */
void tr__sp_out_send(tr__sp_out *o, nng_msg *m, bool notify);

/* Sends `m` (taken) on the calling thread if the connection is up, is not
 * TLS, and nothing else is queued or being written: returns true once all
 * of it is written (no report follows). Otherwise, or if the socket cannot
 * take all of it at once, the frame continues as with tr__sp_out_send(o,
 * m, true) and false is returned. It never waits for room: when the
 * socket takes none of it at once, the write is handed to nng's threads
 * at once (so a scheduler that flushes after a turn never blocks on a
 * peer's full socket). */
bool tr__sp_out_send_now(tr__sp_out *o, nng_msg *m);

/* Whether the connection is up (its SP handshake done, not failed). */
bool tr__sp_out_up(tr__sp_out *o);

/* Closes the connection (never blocks): queued frames fail with
 * NNG_ECLOSED (reported if notify), and no `closed` follows. */
void tr__sp_out_close(tr__sp_out *o);

/* Closes (if not yet) and frees; waits for every callback of `o` to
 * return, so never call it from one. NULL is ignored. */
void tr__sp_out_free(tr__sp_out *o);

/* ---- inbound: the node's pull0 listeners -------------------------------- */

/*
 * Trust and bounds. A connection is untrusted from its accept until the
 * node calls tr__sp_in_trust for it (once its peer has proved the
 * cookie). What an untrusted connection can make the node spend is
 * bounded, whoever is behind it:
 *
 * - time: one that is not trusted within handshake_ms of its accept is
 *   closed (`gone` follows), and counted;
 * - number: each listener keeps at most max_untrusted_conns of them open;
 *   accepting one more closes the oldest untrusted connection of that
 *   listener (`gone` follows), counted. The oldest rather than the new
 *   one: refusing newcomers would let whoever holds the slots shut every
 *   honest peer out for as long as they keep reconnecting, while
 *   evicting the oldest gives every newcomer a slot for at least as long
 *   as it takes max_untrusted_conns further connections to arrive, which
 *   an honest handshake (a few round trips) outlives unless the flood is
 *   very fast; and the oldest is the one closest to its deadline anyway;
 * - memory: its frames are bounded by max_untrusted bytes (checked on
 *   the length, before any of the frame is buffered) and its buffer by
 *   about as much (sp_parse.h);
 * - descriptors: a closed connection's socket is released within a few
 *   milliseconds, without waiting for tr__sp_in_reap;
 * - log lines: these closes report no `refused`, only `gone` and the
 *   counters of tr__sp_in_stats_get.
 *
 * So N listeners cost at most N * max_untrusted_conns untrusted
 * connections at any time, each for at most handshake_ms.
 */

typedef struct tr__sp_in tr__sp_in;

typedef struct tr__sp_in_ops {
	/* One whole frame from connection `id` (ids start at 1 and are
	 * never reused by one tr__sp_in); `buf` is valid for the call. */
	void (*frame)(void *arg, uint32_t id, const uint8_t *buf, size_t len);
	/* Connection `id` is gone (closed by either side or failed). */
	void (*gone)(void *arg, uint32_t id);
	/* Connection `id` broke the protocol (`why`); it is closed, and
	 * `gone` follows. */
	void (*refused)(void *arg, uint32_t id, const char *why);
	void *arg;
} tr__sp_in_ops;

#define TR__SP_MAX_FRAME_DEFAULT ((64u << 20) + (64u << 10))
#define TR__SP_MAX_UNTRUSTED_DEFAULT (64u << 10)
#define TR__SP_HANDSHAKE_MS_DEFAULT 5000u
#define TR__SP_MAX_UNTRUSTED_CONNS_DEFAULT 64u

typedef struct tr__sp_in_opts {
	size_t max_frame;             /* largest frame of a trusted connection;
	                               * 0 = TR__SP_MAX_FRAME_DEFAULT (64 MiB +
	                               * 64 KiB) */
	size_t max_untrusted;         /* largest frame before trust; 0 =
	                               * TR__SP_MAX_UNTRUSTED_DEFAULT (64 KiB);
	                               * cut to max_frame if larger */
	uint32_t handshake_ms;        /* from accept to trust, else closed; 0 =
	                               * TR__SP_HANDSHAKE_MS_DEFAULT (5000) */
	uint32_t max_untrusted_conns; /* open untrusted connections per
	                               * listener; 0 =
	                               * TR__SP_MAX_UNTRUSTED_CONNS_DEFAULT
	                               * (64) */
} tr__sp_in_opts;

/* Sets every option to its default. */
void tr__sp_in_opts_init(tr__sp_in_opts *opts);

/* A set of listeners with no listener yet, with `opts` (copied; NULL for
 * the defaults). A frame longer than max_untrusted bytes on a connection
 * not yet trusted (tr__sp_in_trust), or longer than max_frame on one that
 * is, is refused on its length alone, before any of it is buffered, and
 * closes its connection. Errors: TR_ENOMEM. */
int tr__sp_in_alloc_opts(
    tr__sp_in **inp, const tr__sp_in_ops *ops, const tr__sp_in_opts *opts);

/* tr__sp_in_alloc_opts with these two limits and the default deadline and
 * cap. */
int tr__sp_in_alloc(tr__sp_in **inp, const tr__sp_in_ops *ops, size_t max_frame,
    size_t max_untrusted);

/* Milliseconds since bytes last arrived on connection `id` (a frame may be
 * under way: a peer sending a large frame is not silent), or -1 if it is
 * gone. */
int64_t tr__sp_in_quiet_ms(tr__sp_in *in, uint32_t id);

/* Lets connection `id` send frames of up to max_frame bytes, and takes it
 * out of the handshake deadline and the cap on untrusted connections. */
void tr__sp_in_trust(tr__sp_in *in, uint32_t id);

/* Receive-side flow control. After tr__sp_in_pause(in, id) returns, no
 * `frame` call for `id` begins, and once the read already under way (at
 * most what the connection's buffer has room for: 256 KiB, or the rest of a
 * larger frame being read) completes, nothing more is read from
 * its socket, so the sender's writes stall once the socket buffers are
 * full (TCP pushes back). Frames read but not delivered are kept, and
 * delivered in order after tr__sp_in_resume. Either call may be made from
 * any thread, also from inside `frame` (for this or another connection),
 * and neither blocks; both ignore an unknown id, pausing a paused
 * connection or resuming one that is not paused. Called from another
 * thread than the one running `frame`, pause cannot stop a call for `id`
 * that has already begun there.
 *
 * A paused connection stays open: pausing never makes `gone` fire, and an
 * untrusted one is still closed at its deadline or for the cap. While
 * paused, its peer closing it is only noticed once resumed (or dropped),
 * and no frame comes from it, heartbeats included: a failure detector
 * that counts silent ticks must not count a peer it paused. */
void tr__sp_in_pause(tr__sp_in *in, uint32_t id);
void tr__sp_in_resume(tr__sp_in *in, uint32_t id);

/* Counters of a tr__sp_in, since its alloc, over all its listeners. */
typedef struct tr__sp_in_stats {
	uint64_t accepted;        /* connections accepted */
	uint64_t closed_deadline; /* closed: not trusted within handshake_ms */
	uint64_t closed_cap;      /* closed: the oldest untrusted one of its
	                           * listener when one more came */
	uint64_t refused;         /* closed: broke the protocol (not an SP
	                           * push0 header, an ipc message type other
	                           * than 1, a frame over the limit), or its
	                           * frame could not be buffered */
	uint64_t promoted;        /* reads handed to the pollers */
	uint64_t polled;          /* polls that read bytes */
	uint64_t stranded;        /* taken back from the pollers for want of
	                           * one (tr__sp_in_poll) */
	uint32_t open;            /* connections open now */
	uint32_t untrusted;       /* of which not trusted yet */
	uint32_t paused;          /* of which paused */
} tr__sp_in_stats;

/* Fills `st`. Thread-safe, never blocks for long. */
void tr__sp_in_stats_get(tr__sp_in *in, tr__sp_in_stats *st);

/*
 * Polled reads. A trusted tcp:// connection (not TLS, not ipc://: its
 * socket is read directly, without waiting, which neither offers) whose
 * reads come close together (two within 50 windows) is hot: instead of
 * waiting on nng's poller, its reads are left to the callers of
 * tr__sp_in_poll, which read what is waiting on their own thread and call
 * `frame` there. It goes back to nng's threads after a window with
 * nothing read (50 between turns), when no poller has looked at it for
 * 5 ms (tr__sp_in_stats.stranded), and whenever it is
 * closed, fails, is paused or breaks the protocol; `gone` and `refused` are
 * always called from nng's threads.
 */

/* Sets the window in microseconds; 0 (the default) turns polling off:
 * nothing becomes hot, and what is hot goes back at its next poll. A
 * connection is handed to the pollers only while `awake` (NULL: always)
 * says that one of them is awake to poll it; it is called on nng's
 * threads with a mutex of `in` held, so it must be quick and take no lock
 * (a load of the pollers' state). Any thread. */
void tr__sp_in_poll_window(tr__sp_in *in, uint32_t window_us,
    bool (*awake)(void *arg), void *arg);

enum {
	TR__SP_POLL_IDLE, /* poll the hot connection looked at longest ago */
	TR__SP_POLL_BUSY, /* the same, unless it was looked at within 20 µs */
	TR__SP_POLL_PARK, /* hand every hot connection back: no more polls */
};
#define TR__SP_POLL_GOT 1u /* frames' bytes were read */
#define TR__SP_POLL_HOT 2u /* the connection polled stays hot */

/* Polls one hot connection, as `mode` says, for poller `who` (not 0: a
 * number of the caller's own, such as its scheduler's index plus one),
 * and returns TR__SP_POLL_* flags: 0 when nothing was polled. An idle
 * poller keeps to the connections it polled while it keeps polling them,
 * so that one poller spins on a connection, not all; PARK hands back only
 * those of `who` and those no one keeps to. Never waits for the network;
 * `frame` is called on the calling thread for what it read. Any thread,
 * several at once; never from a callback of `in`. Cheap when nothing is
 * hot (one relaxed load). */
unsigned tr__sp_in_poll(tr__sp_in *in, int mode, unsigned who);

/* Listens on `url` with `tls` (borrowed; NULL unless tls+tcp://) and
 * stores in *bound a malloc'd copy of the URL with the port the system
 * chose when the URL asked for port 0. Connections wait in the system's
 * backlog until tr__sp_in_start. Errors: TR_EINVAL (a malformed URL),
 * TR_ENOTSUP (a scheme with no stream transport, such as inproc://),
 * TR_EEXIST (the address is in use), else nng's, mapped. */
int tr__sp_in_listen(
    tr__sp_in *in, const char *url, nng_tls_config *tls, char **bound);

/* Starts accepting on every listener. Call once, after the last listen. */
void tr__sp_in_start(tr__sp_in *in);

/* Which listener (0 for the first tr__sp_in_listen, and so on) accepted
 * connection `id`; -1 if it is gone. */
int tr__sp_in_listener_of(tr__sp_in *in, uint32_t id);

/* Closes connection `id` (never blocks; `gone` follows). */
void tr__sp_in_drop(tr__sp_in *in, uint32_t id);

/* Frees what closed connections left. Not from a callback. (Closed
 * connections are also freed in the background within milliseconds; this
 * frees at once what is left.) */
void tr__sp_in_reap(tr__sp_in *in);

/* Stops listening and closes every connection (never blocks): no
 * `frame` is delivered after it returns, except one already running. */
void tr__sp_in_close(tr__sp_in *in);

/* Closes (if not yet) and frees; waits for every callback to return, so
 * never call it from one. NULL is ignored. */
void tr__sp_in_free(tr__sp_in *in);

#endif
