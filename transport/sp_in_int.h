/*
 * The inbound side of the connection layer (sp.h's tr__sp_in), shared by
 * its files:
 *
 *   sp_listen.c  the set: its listeners, the sweep, alloc to free;
 *   sp_in.c      one connection: its accept, its read side, its close and
 *                free, and the calls on one connection (trust, pause,
 *                resume, drop, ...);
 *   sp_poll.c    polled reads: hot connections read by the callers of
 *                tr__sp_in_poll.
 *
 * Locks, and why every operation is started under a mutex: sp_int.h.
 */
#ifndef TR_SP_IN_INT_H
#define TR_SP_IN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>

#include "sp.h"
#include "sp_int.h"
#include "sp_parse.h"
#include "stream_fd.h"

#define REAP_MS 10 /* closed connections are freed this soon */
#define FD_UNKNOWN (-2)  /* an inbound connection's socket, not looked for */
/* Two reads less than HOT_GAP windows apart make a connection hot
 * (tr__sp_rx_note, tr__sp_hot_ok_locked); between turns, a polled one goes
 * back after as many windows with nothing read (poll_one). */
#define HOT_GAP 50u

/*
 * Each connection has a read side, which owns its parser: at any time
 * either one read (or a kick, below) is pending for it, or one of their
 * callbacks runs it, or it is parked. It parks only when the connection
 * is paused, leaving nothing pending; whoever changes that (a resume, or
 * a close, whose loss must still be reported) wakes it with a kick: an
 * aio finished at once, whose callback runs the read side on one of
 * nng's threads, never on the caller's. So `frame` and `gone` are always
 * called by the read side, and `gone` is its last report.
 *
 * A connection is freed once it is dead (its loss reported) and neither
 * side has anything pending (rx_busy and tx_busy clear): then stopping
 * its aios waits for nothing but nng's own bookkeeping, so the sweep (an
 * aio of the tr__sp_in, which also closes untrusted connections at their
 * deadline) frees it from nng's thread within REAP_MS, releasing its
 * socket. tr__sp_in_reap frees the rest, waiting.
 */

struct lsn {
	tr__sp_in *in;
	int idx;
	bool sleeping; /* aio is waiting out a pause after a failure */
	nng_stream_listener *l;
	nng_aio *aio;
	bool ipc;
	bool tls; /* tls+tcp://: its connections are never polled */
	/* Its untrusted open connections, oldest first (in->mtx). */
	struct inconn *uhead, *utail;
	uint32_t nuntrusted;
};

struct inconn {
	struct inconn *next;          /* on in->conns, then on in->dead */
	struct inconn *uprev, *unext; /* on its listener's untrusted list */
	tr__sp_in *in;
	struct lsn *ls;
	uint32_t id;
	nng_stream *st;
	nng_time deadline; /* trusted by then, or closed */
	/* Written under in->mtx; the read side also reads them without it,
	 * on its fast path (relaxed: whatever it must not miss, it checks
	 * again under the mutex before parking or reading). */
	_Atomic bool trusted;
	_Atomic bool closed; /* its stream is closed */
	_Atomic bool paused;
	/* nng_clock() of the last bytes read (relaxed: a liveness hint for
	 * the node's failure detector). */
	_Atomic uint64_t last_rx;
	/* Under in->mtx. */
	bool ulisted; /* on the untrusted list */
	bool dead;    /* moved to in->dead; `gone` reported or under way */
	bool parked;  /* the read side is parked (see above) */
	bool rx_busy; /* a read or a kick is pending, or its callback runs */
	bool tx_busy; /* the SP header's write is pending or its callback */
	/* Polled reads (see sp_poll.c), under in->mtx. */
	bool polled;  /* the read side is handed to pollers (on in->hot) */
	bool polling; /* a poller is reading it now, without the mutex */
	struct inconn *hprev, *hnext; /* on in->hot */
	uint64_t poll_ns;             /* the last poll of it */
	unsigned owner;               /* the idle poller it keeps to, or 0 */
	/* Written by the poller holding it (`polling`) or, when it is
	 * handed back, under in->mtx (sp_poll.c). */
	bool ack_late;  /* its socket is in delayed-ACK mode (TCP_QUICKACK 0) */
	bool ack_owed;  /* bytes read since the last ACK it was told to send */
	/* The read side's own (whoever runs it): when it last read bytes,
	 * and whether the last two reads came close enough together for it
	 * to be handed to the pollers (tr__sp_in_poll). */
	uint64_t rx_ns;
	bool hot;
	int fd; /* its socket (tr__stream_fd), -1 for none, or FD_UNKNOWN */
	nng_aio *rx, *tx, *kick;
	uint8_t hdr[SP_HDR];
	size_t hdr_sent;
	tr__sp_parse parse; /* the read side's */
};

/* tr__sp_in.sweep_state. */
enum { SW_IDLE, SW_ARMED, SW_RUNNING };

struct tr__sp_in {
	pthread_mutex_t mtx;     /* everything below but ops and opts */
	pthread_mutex_t deliver; /* one frame at a time */
	tr__sp_in_ops ops;
	tr__sp_in_opts opts;
	struct lsn **lsns;
	size_t nlsns;
	struct inconn *conns, *dead;
	uint32_t next_id;
	bool closing;
	bool muted; /* under deliver: no more frames */
	/* The sweep: closes untrusted connections at their deadline and
	 * frees dead ones. Armed (sleeping until sweep_at) only while there
	 * is something for it to do. */
	nng_aio *sweep;
	int sweep_state;
	nng_time sweep_at;
	/* Polled reads: connections whose read side pollers own, oldest poll
	 * first (mtx; nhot is also read without it, relaxed, as a hint), the
	 * window (0: never polled) and the watch that takes back those no
	 * poller looks at. */
	struct inconn *hot, *hot_tail;
	_Atomic uint32_t nhot;
	_Atomic uint64_t window_ns; /* relaxed: read by the read sides */
	bool (*awake)(void *arg); /* whether a poller is awake */
	void *awake_arg;
	nng_aio *hwatch;
	bool hwatch_armed;
	tr__sp_in_stats st;
};

/* What stopped tr__sp_rx_deliver. */
enum { D_NEED, D_CLOSED, D_PAUSED, D_REFUSED };

/* CLOCK_MONOTONIC in nanoseconds: the read sides' and the pollers' clock. */
static inline uint64_t tr__sp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The poll window in nanoseconds (0: polling off). */
static inline uint64_t tr__sp_window_of(tr__sp_in *in)
{
	return atomic_load_explicit(&in->window_ns, memory_order_relaxed);
}

/* ---- sp_in.c: one connection -------------------------------------------- */

/* Wakes a parked read side (in->mtx held). */
void tr__sp_kick_locked(struct inconn *c);
/* Closes the connection's stream (in->mtx held); the read side reports
 * the loss. */
void tr__sp_close_locked(struct inconn *c);
/* Frees a dead connection with nothing pending. */
void tr__sp_conn_free(struct inconn *c);
/* Hands over every whole frame buffered (the read side's owner); returns
 * D_*. */
int tr__sp_rx_deliver(struct inconn *c);
/* Notes a read of bytes at `t` (tr__sp_now_ns) by the read side's owner. */
void tr__sp_rx_note(struct inconn *c, uint64_t t);
/* A listener's accept callback; its argument is the struct lsn. */
void tr__sp_accept_cb(void *arg);

/* ---- sp_listen.c: the set ----------------------------------------------- */

/* Asks the sweep to run by `when` (in->mtx held). */
void tr__sp_sweep_want_locked(tr__sp_in *in, nng_time when);

/* ---- sp_poll.c: polled reads -------------------------------------------- */

/* Takes a polled read side back from the pollers (in->mtx held, no poller
 * reading it). */
void tr__sp_demote_locked(struct inconn *c);
/* Whether the read side should go to the pollers (in->mtx held). */
bool tr__sp_hot_ok_locked(struct inconn *c);
/* Puts a connection at the end of in->hot (in->mtx held). */
void tr__sp_hot_append_locked(struct inconn *c);
/* Arms the watch, unless it is armed or `in` closing (in->mtx held). */
void tr__sp_hwatch_want_locked(tr__sp_in *in);
/* The watch's callback; its argument is the tr__sp_in. */
void tr__sp_hwatch_cb(void *arg);

#endif
