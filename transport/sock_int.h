/*
 * Internals of troupe's sockets (troupe/sock.h), shared by their files:
 *
 *   sock_table.c   the process-wide table of socket slots and handles;
 *   sock_mgr.c     the socket manager, one actor per runtime, which
 *                  watches owners and closes what they leave behind;
 *   sock_read.c    framing of reads (raw, exact, line, frame) on a buffer;
 *   sock_conn.c    a connection's reads, writes and close;
 *   sock_io.c      a tcp:// connection's reads through the runtime's
 *                  I/O set, instead of nng's threads;
 *   sock_open.c    listening, accepting, dialing and their options;
 *   sock_api.c     the public calls that look a handle up.
 *
 * A slot is type-stable: once allocated it is never freed, only emptied
 * and reused with the next generation, so a callback or a lookup that
 * holds a pointer to one never touches freed memory, and a stale handle
 * finds a generation that is not its own (TR_ENOENT). Its mutex guards
 * everything in it but `idx`.
 *
 * Every nng operation on a slot is started with its mutex held, after
 * checking that its stream is not closed, and every close happens with
 * that mutex held too (nng 1.5 leaves an operation started on a closed
 * stream pending for ever; see sp_int.h). nng completes an aio that has a
 * callback on one of its task threads, never on the thread that started
 * it, so starting under the mutex never deadlocks.
 *
 * Lifetime of a connection: CONNECTING (dialing) -> OPEN -> CLOSING (its
 * owner closed it or exited: the queue drains, for at most linger_ms) ->
 * DEAD (stream closed). With half_close, the peer's end leaves it OPEN
 * with `eof` set: no more reads, writes as before. A failure moves OPEN to FAILED (stream closed,
 * the reason kept for the owner's next read), then to DEAD once told.
 * A DEAD slot with no operation pending is released by whoever finds it
 * so (sk_release_check): its stream freed, its buffers freed, its
 * generation bumped, its index back on the free list. Its aios stay
 * with the slot for the next socket, until the runtime stops (the
 * manager stops them, which nng does not undo, and frees them).
 */
#ifndef TR_SOCK_INT_H
#define TR_SOCK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "troupe/sock.h"

enum { TR__SK_NONE, TR__SK_LISTENER, TR__SK_CONN };

enum {
	TR__SK_FREE,
	TR__SK_CONNECTING,
	TR__SK_OPEN,
	TR__SK_CLOSING,
	TR__SK_FAILED,
	TR__SK_DEAD,
};

/* The read buffer's first size, and its least after it shrinks. */
#define TR__SK_RBUF_MIN 1024u
/* Accept requests a listener keeps waiting, at most. */
#define TR__SK_ACCEPT_WAITERS 1024u

typedef struct tr__sock_mgr tr__sock_mgr;

/* A read's framing (sock_read.c): what a pending tr_sock_recv asked for. */
typedef struct tr__sk_want {
	int mode;       /* TR_SOCK_RAW, _EXACT, _LINE, _FRAME */
	size_t n;       /* RAW: at most (0: any); EXACT: exactly */
	size_t scanned; /* LINE: bytes already searched for '\n' */
} tr__sk_want;

typedef struct tr__sock_slot {
	pthread_mutex_t mtx;
	uint32_t idx; /* immutable */
	uint32_t gen; /* this socket's generation (its handle's) */
	int kind;
	int state;
	tr_runtime *rt;
	tr__sock_mgr *mgr;
	tr_pid owner;
	uint64_t mon;     /* the manager's monitor of the owner, or 0 */
	bool mon_pending; /* a watch request is on its way to the manager */
	struct tr__sock_slot *mprev, *mnext; /* the manager's list */

	/* Options (immutable while open). */
	uint32_t send_queue, max_packet, linger_ms;
	bool half_close;
	/* Writes may be tried at once on the calling thread (sock_conn.c):
	 * tcp and ipc. Not TLS: nng 1.5 cannot always take back a TLS write
	 * that waits (its cancel aborts the lower write, which may not be
	 * started), so it would wait for ever. */
	bool quick;

	nng_aio *rx, *tx, *ctl; /* ctl: dial, accept, linger and pauses */
	bool rx_busy, tx_busy, ctl_busy;
	bool aios_stopped; /* the manager stopped them: reallocate */
	bool shutting;     /* tr__sk_shutdown runs: nobody else releases */
	nng_stream *st;
	nng_stream_dialer *dialer;
	nng_tls_config *tls; /* held (a reference) by this slot */

	/* Reading. */
	bool rwant; /* a tr_sock_recv is pending */
	tr__sk_want want;
	uint8_t *rbuf;
	size_t rcap, roff, rlen; /* data is rbuf[roff .. roff + rlen) */
	int fail;                /* FAILED: the reason to report */
	bool eof;                /* half_close: the peer's end was read */
	bool rfull;              /* the last read filled its room */
	bool rhot;               /* ... and no quick read found nothing
	                          * since (sock_conn.c) */
	/* The runtime's I/O set (sock_conn.c, "Reads"): a tcp:// socket's
	 * descriptor, found at its first read that waits (fd_tried), and
	 * whether it is in the set (io_added) and armed there for the
	 * pending read (io_armed). */
	int fd;
	bool fd_tried, io_added, io_armed;

	/* Writing: `wa` is being written (from woff), `wb` fills meanwhile. */
	uint8_t *wa, *wb;
	size_t wa_len, wa_cap, woff, wb_len, wb_cap;
	bool drained_want; /* a send got TR_EAGAIN: tell the owner */

	/* A connection a listener accepted: its listener's handle. */
	tr_sock parent;

	/* Listeners. */
	nng_stream_listener *lsn;
	char *url; /* the URL listened on, port resolved */
	tr_pid *waiters;
	uint32_t wn, whead; /* accept requests: ring of TR__SK_ACCEPT_WAITERS */
	uint32_t open_conns, max_conns;
	bool at_max;            /* accepting is paused at max_conns */
	tr_sock_opts conn_opts; /* for the connections it accepts (no
	                         * strings: those live in `tls`) */
} tr__sock_slot;

/* ---- sock_table.c ------------------------------------------------------- */

/* A fresh slot, locked, state TR__SK_FREE and kind NONE, with its handle's
 * generation set; its aios are those of the slot's last socket, or NULL.
 * NULL when out of memory. */
tr__sock_slot *tr__sk_alloc(void);

/* The handle of a slot (its mutex held). */
tr_sock tr__sk_handle(const tr__sock_slot *s);

/* The slot of handle `h`, locked, if it names a live socket (not FREE):
 * else NULL. */
tr__sock_slot *tr__sk_lock(tr_sock h);

/* Empties slot `s` (locked; state DEAD or never opened, nothing of nng
 * pending): frees its stream, dialer, listener, TLS config and buffers,
 * bumps its generation and puts it back on the free list. Unlocks it. */
void tr__sk_release(tr__sock_slot *s);

/* nng_stream_dialer_free (see tests/tsan.supp). */
void tr__sk_dialer_free(nng_stream_dialer *d);

/* ---- sock_mgr.c --------------------------------------------------------- */

/* The socket manager of the runtime of `ctx`, spawned on first use.
 * Errors: TR_ENOMEM, TR_ECLOSED (the runtime is stopping). */
int tr__sk_mgr_get(tr__sock_mgr **mp, tr_ctx *ctx);

/* Adds `s` (locked, rt and mgr set) to its manager's sockets and asks the
 * manager to watch its owner. Never blocks. TR_ECLOSED (and s->mgr set to
 * NULL) when the manager is shutting down: the caller gives up `s`. */
int tr__sk_mgr_adopt(tr__sock_slot *s);

/* Asks the manager to watch the new owner of `s` (locked). */
void tr__sk_mgr_rewatch(tr__sock_slot *s);

/* Takes `s` (locked) off its manager's list before its release. */
void tr__sk_mgr_drop(tr__sock_slot *s);

/* The manager's counters (relaxed atomics, any thread). */
typedef struct tr__sk_counters {
	_Atomic uint64_t accepted, connected, connect_failed, closed_by_peer,
	    failed, owner_exits, bytes_in, bytes_out, send_eagain, accept_waits,
	    accept_dropped;
	_Atomic uint64_t conns;
	_Atomic uint32_t listeners;
} tr__sk_counters;

tr__sk_counters *tr__sk_mgr_counters(tr__sock_mgr *m);

#define TR__SK_COUNT(s, field, n)                                              \
	do {                                                                   \
		if ((s)->mgr != NULL)                                          \
			atomic_fetch_add_explicit(                             \
			    &tr__sk_mgr_counters((s)->mgr)->field, (n),        \
			    memory_order_relaxed);                             \
	} while (0)

/* ---- sock_read.c -------------------------------------------------------- */

/* What tr__sk_frame found in the buffered bytes. */
enum {
	TR__SK_NEED = 0, /* not enough yet: read more (into *need bytes) */
	TR__SK_READY,    /* *off .. *off + *len is the answer; *used bytes
	                  * are consumed */
	TR__SK_TOOBIG,   /* the line or frame is over max_packet */
};

/* Looks for the answer to `w` in buf[0 .. len). On TR__SK_NEED, *need is
 * the buffered size that the answer needs at least (len + 1 when that is
 * not known yet, as for a line), never more than max_packet plus a frame's
 * 4-byte prefix. Pure: no I/O, no allocation. */
int tr__sk_frame(tr__sk_want *w, const uint8_t *buf, size_t len,
    size_t max_packet, size_t *off, size_t *plen, size_t *used, size_t *need);

/* ---- sock_conn.c -------------------------------------------------------- */

/* Allocates the aios of slot `s` (locked) if it has none. Errors:
 * TR_ENOMEM. */
int tr__sk_aios(tr__sock_slot *s);

/* Starts connection `s` (locked, its stream set, state OPEN). */
void tr__sk_conn_start(tr__sock_slot *s);

/* tr_sock_recv, tr_sock_send and tr_sock_close of connection `s`, locked;
 * each unlocks it (or releases it). */
int tr__sk_conn_recv(tr__sock_slot *s, int mode, size_t n);
int tr__sk_conn_send(tr__sock_slot *s, const void *data, size_t len);
void tr__sk_conn_close(tr__sock_slot *s, bool owner_exit);

/* Releases `s` (locked) if it is DEAD with nothing pending, else unlocks
 * it. */
void tr__sk_release_check(tr__sock_slot *s);

/* Fails connection `s` (locked, OPEN or CONNECTING) with `reason`: its
 * stream closes, and the owner learns why at its pending or next read. */
void tr__sk_fail(tr__sock_slot *s, int reason);

/* The I/O set's events (dist.h, tr__io_set): `token` is a socket's
 * handle. */
void tr__sk_io_ready(tr_runtime *rt, uint64_t token, uint32_t events);

/* ---- sock_io.c ---------------------------------------------------------- */

/* Whether connection `s` (locked, OPEN) reads through the runtime's I/O
 * set: a tcp:// stream whose descriptor was found, in a runtime that has
 * the set. Looked up at the first call. */
bool tr__sk_io_usable(tr__sock_slot *s);

/* Arms `s` (locked, usable) in the set for its pending read. False: the
 * set refused it, and `s` reads through nng from now on. */
bool tr__sk_io_arm(tr__sock_slot *s);

/* Takes `s` (locked) out of the set, before its stream closes. */
void tr__sk_io_drop(tr__sock_slot *s);

/* Reads at most `room` bytes at `at` from the socket of `s` (locked,
 * usable) without waiting. False: nothing is there. True: *n bytes came
 * (*rv 0), or the stream ended (*rv the nng code for rx_took). */
bool tr__sk_io_read(tr__sock_slot *s, void *at, size_t room, int *rv,
    size_t *n);

/* The aio callbacks of every slot (ctl's dispatches on the slot's kind
 * and state to sock_open.c). */
void tr__sk_rx_cb(void *arg);
void tr__sk_tx_cb(void *arg);
void tr__sk_ctl_cb(void *arg);

/* The dial or accept side of ctl_cb (sock_open.c). */
void tr__sk_open_ctl(tr__sock_slot *s, int rv);

/* Posts a tr_sock_status message of `type` to `to`. */
void tr__sk_post_status(
    tr_runtime *rt, tr_pid to, uint32_t type, tr_sock sock, int status);

/* ---- sock_open.c -------------------------------------------------------- */

/* Closes listener `s` (locked); unlocks or releases it. */
void tr__sk_listener_close(tr__sock_slot *s, bool owner_exit);

/* A connection of listener `parent` is gone: it may accept again. */
void tr__sk_listener_conn_gone(tr_sock parent);

/* Stops every aio of `s` (not locked; the runtime is stopping) and
 * releases it. */
void tr__sk_shutdown(tr__sock_slot *s);

/* Maps an nng error of a socket to its TR_E* reason. */
int tr__sk_err(int rv);

#endif
