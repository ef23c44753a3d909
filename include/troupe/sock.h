/*
 * troupe's sockets: TCP, TLS and ipc connections owned by actors, whose
 * bytes arrive as messages, as gen_tcp's do (docs/sockets.md).
 *
 * A socket is named by a tr_sock, a plain value like a pid: copy it, keep
 * it, put it in messages to actors of the same runtime. It is made by an
 * actor (tr_sock_listen, tr_sock_connect) or handed to one (an accepted
 * connection), and that actor is its owner, as gen_tcp's controlling
 * process: it alone reads, closes, and gets the socket's messages. It
 * gives the socket to another actor of its runtime with tr_sock_give. A
 * socket is closed when its owner exits for any reason (a normal exit, a
 * crash, a kill, the runtime stopping): what it had queued for writing is
 * written first, as by tr_sock_close, then the connection is closed and
 * the peer sees its end (FIN).
 *
 * No scheduler thread ever waits on a socket. The I/O runs on nng's own
 * threads (its stream transports: tcp://, tls+tcp://, ipc://), and its
 * outcomes come to the owner as the messages below. The calls here never
 * block; they take the calling actor's context and may be made only from
 * one of its callbacks.
 *
 * Reading is pulled, as with {active, once}: tr_sock_recv asks for the
 * next piece of data (whatever arrived, exactly N bytes, a line, or a
 * length-prefixed frame), and exactly one message answers it: the data
 * (TR_MSG_SOCK_DATA), or the end of the socket (TR_MSG_SOCK_CLOSED, with
 * the reason). Nothing is read from the connection that nobody asked for,
 * so an actor that does not keep up pushes back on its peer through TCP's
 * own flow control, never through memory; and a peer that closes or
 * fails is noticed at the next read.
 *
 * Writing never blocks either: tr_sock_send copies the bytes into the
 * socket's queue and returns; the queue holds at most `send_queue` bytes
 * (tr_sock_opts), past which it returns TR_EAGAIN and, once the queue has
 * drained to half of that, a TR_MSG_SOCK_DRAINED message tells the owner
 * it may go on. That is gen_tcp's busy port (high and low watermarks)
 * without the blocked sender.
 *
 * Sockets need no node: they are part of libtroupe-node because they ride
 * on nng, but work in any runtime, with or without tr_node_start.
 *
 * Bounds. Every socket's memory is bounded by its options: its read
 * buffer by max_packet (and by what a read asked for), its write queue by
 * send_queue. An accepted connection waits in the kernel's backlog until
 * an actor asks for it (tr_sock_accept), and a listener holds at most
 * max_conns of its connections open at once (the others wait in the
 * backlog). An idle connection with a read pending holds its small read
 * buffer (1 KiB) and nng's state, and costs no CPU (docs/sockets.md has
 * the measured cost of 10,000).
 */
#ifndef TROUPE_SOCK_H
#define TROUPE_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe/troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A socket: a listener or a connection. 0 never names one. A handle
 * whose socket is gone is refused with TR_ENOENT, never taken for another
 * socket: like a pid, it holds a slot and that slot's generation. */
typedef uint64_t tr_sock;

#define TR_SOCK_NONE ((tr_sock)0)

/* ---- options ------------------------------------------------------------ */

#define TR_SOCK_SEND_QUEUE_DEFAULT (256u * 1024u)
#define TR_SOCK_MAX_PACKET_DEFAULT (1u << 20)
#define TR_SOCK_MAX_CONNS_DEFAULT 16384u
#define TR_SOCK_LINGER_MS_DEFAULT 5000u

/* Options of a listener (and of every connection it accepts) or of a
 * connection dialed out. Versioned (troupe.h): tr_sock_opts_init first.
 * The strings are copied by the call that takes the options. */
typedef struct tr_sock_opts {
	uint32_t struct_size;
	/* Bytes queued for writing, at most, before tr_sock_send answers
	 * TR_EAGAIN; 0 = TR_SOCK_SEND_QUEUE_DEFAULT (256 KiB). */
	uint32_t send_queue;
	/* The largest line, frame or exact read a tr_sock_recv may ask for,
	 * and so the largest read buffer; 0 = TR_SOCK_MAX_PACKET_DEFAULT
	 * (1 MiB). A line or frame longer than this closes the socket with
	 * TR_EMSGSIZE (gen_tcp's packet_size). */
	uint32_t max_packet;
	/* Listeners: connections of this listener open at once, at most;
	 * more wait in the kernel's backlog until one closes. 0 =
	 * TR_SOCK_MAX_CONNS_DEFAULT (16384). */
	uint32_t max_conns;
	/* How long a close (or the owner's exit) may take to write what is
	 * queued before the connection is cut; 0 =
	 * TR_SOCK_LINGER_MS_DEFAULT (5 s). */
	uint32_t linger_ms;
	/* TCP: TCP_NODELAY (on by default, as in nng; false turns Nagle's
	 * algorithm on) and SO_KEEPALIVE (off by default). */
	bool nodelay;
	bool keepalive;
	/* tls+tcp://: PEM files. A listener needs cert_file and key_file;
	 * with ca_file it also requires of every client a certificate
	 * signed by it. A dialer verifies the server's certificate against
	 * ca_file (and its name against server_name, else the URL's host)
	 * when ca_file is set, and presents cert_file/key_file if set.
	 * Without ca_file a dialer does not verify the server: that is for
	 * tests only and must be asked for with tls_insecure. */
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *tls_ca_file;
	const char *tls_server_name;
	bool tls_insecure;
	/* What the peer's end (its FIN) does. false (the default, gen_tcp's
	 * {exit_on_close, true}): the connection is closed, and the read
	 * that found the end answers TR_MSG_SOCK_CLOSED (TR_ECLOSED); what
	 * was queued for writing and not yet written is dropped. true
	 * ({exit_on_close, false}): only the reading side is over. The read
	 * answers TR_MSG_SOCK_CLOSED (TR_ECLOSED) as before, but the handle
	 * stays: tr_sock_send still queues (a client that sent its last
	 * request and shut its write side gets every reply), later reads are
	 * refused with TR_ECLOSED, and the owner closes the socket with
	 * tr_sock_close (or by exiting) when it is done. */
	bool half_close;
} tr_sock_opts;

#define TR_SOCK_OPTS_V1_SIZE TR_STRUCT_END(tr_sock_opts, half_close)

static inline void tr_sock_opts_init(tr_sock_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = (uint32_t)sizeof(*opts);
	opts->nodelay = true;
}

/* ---- messages ----------------------------------------------------------- */

/* Every message below comes from the runtime (its sender is
 * TR_PID_NONE), has a local-only type, and starts with the socket it is
 * about, so that an actor owning many sockets can tell them apart. */

/* A connection a tr_sock_accept asked for: `sock` is new and owned by
 * the actor that called tr_sock_accept. */
#define TR_MSG_SOCK_ACCEPTED 0xFFFE5400u
typedef struct tr_sock_accepted {
	tr_sock listener;
	tr_sock sock;
} tr_sock_accepted;

/* The answer to tr_sock_connect: status TR_OK (the socket is open, its
 * TLS handshake done) or why it failed (TR_ECONNREFUSED, TR_ETIMEDOUT,
 * TR_EPEERAUTH, ...; the handle is then gone). */
#define TR_MSG_SOCK_CONNECTED 0xFFFE5401u
typedef struct tr_sock_status {
	tr_sock sock;
	int32_t status;
	uint32_t _reserved;
} tr_sock_status;

/* The answer to tr_sock_recv: `len` bytes follow this header (the
 * message's size is sizeof(tr_sock_data) + len). A line keeps its '\n';
 * a frame comes without its length prefix. */
#define TR_MSG_SOCK_DATA 0xFFFE5402u
typedef struct tr_sock_data {
	tr_sock sock;
	uint32_t len;
	uint32_t _reserved;
	unsigned char bytes[];
} tr_sock_data;

/* The other answer to tr_sock_recv: the socket is gone (a tr_sock_status;
 * the handle is refused from now on, except after the peer's end with
 * the half_close option, where it stays open for writing until closed).
 * status is TR_ECLOSED when the peer closed the connection, or why it
 * failed: TR_ECONNRESET (reset by the
 * peer), TR_EMSGSIZE (a line or frame over max_packet), TR_EPROTO (the
 * peer closed in the middle of a line, frame or exact read, or a TLS
 * failure), TR_ETIMEDOUT, TR_ENOMEM. */
#define TR_MSG_SOCK_CLOSED 0xFFFE5403u

/* After a tr_sock_send answered TR_EAGAIN: the queue has drained to half
 * of send_queue, so sends are taken again (a tr_sock_status, status
 * TR_OK). One per TR_EAGAIN episode, to the owner. */
#define TR_MSG_SOCK_DRAINED 0xFFFE5404u

/* The message's socket, or TR_SOCK_NONE when `m` is not one of the
 * messages above. */
TR_API tr_sock tr_sock_of(const tr_msg *m);

/* ---- listening and dialing ---------------------------------------------- */

/* Listens on `url` (tcp://HOST:PORT, tls+tcp://HOST:PORT, ipc:///PATH;
 * port 0 lets the system choose, which tr_sock_url tells), owned by the
 * calling actor. Connections wait in the backlog until tr_sock_accept
 * asks for them. `opts` may be NULL for the defaults; they also apply to
 * the accepted connections. Errors: TR_EINVAL (NULL, a malformed URL,
 * opts not initialised, tls+tcp:// without cert_file and key_file, or a
 * file that cannot be read as PEM), TR_ENOTSUP (a scheme with no stream
 * transport, or TLS in an nng without it), TR_EEXIST (the address is in
 * use), TR_ENOMEM. */
TR_API int tr_sock_listen(
    tr_ctx *ctx, tr_sock *l, const char *url, const tr_sock_opts *opts);

/* Asks listener `l` for its next connection, for the calling actor: it
 * comes as one TR_MSG_SOCK_ACCEPTED, and the caller owns it. Any actor of
 * the listener's runtime may ask, not only its owner: several actors
 * that each ask again after each connection are an acceptor pool (as
 * ranch's), served in the order they asked. A listener keeps at most 1024
 * requests waiting. Nothing answers a request if the listener is closed
 * first. Errors: TR_EINVAL (ctx NULL, or `l` is a connection),
 * TR_ENOENT (no such listener, or it is closed), TR_EAGAIN (1024
 * requests are waiting). */
TR_API int tr_sock_accept(tr_ctx *ctx, tr_sock l);

/* Dials `url`, owned by the calling actor: returns the new handle in *s at
 * once, and one TR_MSG_SOCK_CONNECTED later says whether it connected
 * within `timeout_ms` (negative: no limit but the system's). Until then
 * tr_sock_send queues and tr_sock_recv waits. Errors: as tr_sock_listen,
 * without TR_EEXIST. */
TR_API int tr_sock_connect(tr_ctx *ctx, tr_sock *s, const char *url,
    const tr_sock_opts *opts, int64_t timeout_ms);

/* ---- reading and writing ------------------------------------------------ */

enum {
	/* Whatever has arrived, at least 1 byte and at most `n` (0: up to
	 * the read buffer, which grows with the traffic up to max_packet). */
	TR_SOCK_RAW = 0,
	/* Exactly `n` bytes (1 .. max_packet). */
	TR_SOCK_EXACT = 1,
	/* One line, up to and with its '\n' (gen_tcp's {packet, line});
	 * `n` is ignored. */
	TR_SOCK_LINE = 2,
	/* One frame: a 4-byte big-endian length, then that many bytes
	 * (gen_tcp's {packet, 4}); `n` is ignored. */
	TR_SOCK_FRAME = 3,
};

/* Asks for the next data of connection `s` in `mode`: exactly one
 * TR_MSG_SOCK_DATA or TR_MSG_SOCK_CLOSED answers it, to the owner. Data
 * already read but not yet handed over (the rest of a read that brought
 * more than one line, say) answers at once. Errors: TR_EINVAL (ctx NULL,
 * an unknown mode, an EXACT n of 0 or over max_packet, `s` a listener),
 * TR_ENOENT (no such socket: closed, or gone after its
 * TR_MSG_SOCK_CLOSED), TR_EPERM (the caller does not own it), TR_EALREADY
 * (a read is pending already), TR_ECLOSED (half_close: the peer's end
 * was read already). */
TR_API int tr_sock_recv(tr_ctx *ctx, tr_sock s, int mode, size_t n);

/* Queues a copy of `len` bytes at `data` for writing to connection `s`,
 * behind what is queued already; they go in the background, in order.
 * Any actor of the socket's runtime may send, as with gen_tcp (its sends
 * are not interleaved with another's within one call); only the owner is
 * told when the queue drains. Errors: TR_EINVAL (ctx NULL, data NULL
 * with len > 0, `s` a listener), TR_ENOENT (no such socket), TR_EAGAIN
 * (the queue holds send_queue bytes or this would pass it: nothing is
 * queued, and TR_MSG_SOCK_DRAINED follows), TR_ECLOSED (the connection
 * has failed: the owner's next tr_sock_recv says why). A send larger than
 * send_queue is taken when the queue is empty. */
TR_API int tr_sock_send(tr_ctx *ctx, tr_sock s, const void *data, size_t len);

/* Bytes queued for writing on `s` and not yet written, or a negative
 * TR_E* code (TR_EINVAL, TR_ENOENT). */
TR_API int64_t tr_sock_queued(tr_ctx *ctx, tr_sock s);

/* ---- ownership and closing ---------------------------------------------- */

/* Makes `to` (a live actor of the same runtime) the owner of `s`, as
 * gen_tcp:controlling_process: from now on it gets the socket's messages
 * and is the one to read and close, and the socket closes when it
 * exits. A read pending at the time answers the new owner. Errors:
 * TR_EINVAL (ctx NULL, `to` of another node), TR_ENOENT, TR_EPERM (the
 * caller is not the owner), TR_ENOPROC (`to` is not alive). */
TR_API int tr_sock_give(tr_ctx *ctx, tr_sock s, tr_pid to);

/* The owner of `s`, or TR_PID_NONE when there is no such socket. */
TR_API tr_pid tr_sock_owner(tr_ctx *ctx, tr_sock s);

/* Closes `s`: a connection writes what is queued (for at most its
 * linger_ms), then closes, and the peer sees its end; no message about
 * `s` follows, and its pending read is dropped. A listener stops
 * listening (the connections it accepted stay open) and its waiting
 * accept requests are dropped. Errors: TR_EINVAL (ctx NULL), TR_ENOENT
 * (no such socket: already closed, or gone after TR_MSG_SOCK_CLOSED),
 * TR_EPERM (the caller is not the owner). */
TR_API int tr_sock_close(tr_ctx *ctx, tr_sock s);

/* ---- addresses and statistics ------------------------------------------- */

/* Writes the address of the other end of connection `s` as text into
 * `buf` (`cap` bytes, NUL-terminated): "ADDR:PORT" for TCP ("[ADDR]:PORT"
 * for IPv6), the path for ipc. Returns the text's length, or TR_EINVAL
 * (NULL, a listener), TR_ENOENT, TR_EMSGSIZE (cap too small: the text is
 * cut). */
TR_API int tr_sock_peer(tr_ctx *ctx, tr_sock s, char *buf, size_t cap);

/* Writes the URL a listener listens on into `buf`, with the port the
 * system chose when the URL asked for 0. Returns the length or an error as
 * tr_sock_peer. */
TR_API int tr_sock_url(tr_ctx *ctx, tr_sock l, char *buf, size_t cap);

/* The sockets of a runtime, since it started. Versioned. */
typedef struct tr_sock_stats {
	uint32_t struct_size;
	uint32_t listeners;      /* open now */
	uint64_t conns;          /* open now (connecting, open or closing) */
	uint64_t accepted;       /* connections accepted */
	uint64_t connected;      /* dialed out and connected */
	uint64_t connect_failed; /* dials that failed or timed out */
	uint64_t closed_by_peer; /* reads that found the peer gone */
	uint64_t failed;         /* connections that failed (reset, too
	                          * long a line or frame, I/O errors) */
	uint64_t owner_exits;    /* closed because their owner exited */
	uint64_t bytes_in;       /* bytes read */
	uint64_t bytes_out;      /* bytes written */
	uint64_t send_eagain;    /* sends refused with TR_EAGAIN */
	uint64_t accept_waits;   /* times a listener stopped accepting at
	                          * max_conns */
	uint64_t accept_dropped; /* connections accepted for an actor that
	                          * had exited meanwhile, closed */
} tr_sock_stats;

#define TR_SOCK_STATS_V1_SIZE TR_STRUCT_END(tr_sock_stats, accept_dropped)

static inline void tr_sock_stats_init(tr_sock_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills `st` with the sockets of runtime `rt`. Errors: TR_EINVAL (NULL, a
 * struct_size below TR_SOCK_STATS_V1_SIZE). Any thread. */
TR_API int tr_sock_stats_get(tr_runtime *rt, tr_sock_stats *st);

#ifdef __cplusplus
}
#endif

#endif
