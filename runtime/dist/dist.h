/*
 * The one interface between the local runtime and a distribution layer
 * (transport/), in the way nng keeps its transports behind an ops table.
 *
 * The runtime knows nothing of nodes: a pid whose `node` is not 0 is
 * handed to the attached layer's `send`, and messages that arrive from
 * other nodes come back in through tr__dist_inject, from the layer's own
 * threads. The layer's threads never run actor code.
 *
 * This header is complete: a layer needs nothing else of the runtime's
 * internals (rt.h), only this file, its header-only companion abi.h (how
 * to read the versioned option structs a caller hands in) and the public
 * troupe/troupe.h. The two sit alone in their folder so that a layer's
 * include path can name the folder and see nothing else of runtime/;
 * transport/ builds that way (docs/abi.md, "Libraries and linking").
 *
 * Every function here is exported from libtroupe.so (TR__DIST_API), so that
 * a layer built as a shared library of its own (libtroupe-node.so) drives
 * the runtime of libtroupe.so rather than a private copy of it. They keep
 * the internal tr__ prefix: they are not for applications, and they change
 * with the runtime's version. A layer checks at start that it was built
 * against the interface the running library has (tr__dist_version).
 *
 * Messages a layer handles are ordinary tr_msg (troupe/troupe.h). Besides
 * the public fields it reads and writes the delivery flags of `_flags`
 * listed below (TR__MF_*), never its low byte, which is the pool class the
 * message was allocated from. The runtime's header before a tr_msg (its
 * link and reserved words) is reached only through the functions below,
 * so that its layout stays the runtime's business.
 */
#ifndef TR_DIST_H
#define TR_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe/troupe.h"

/* Exported from the shared runtime whatever the visibility preset, and
 * never part of the public API. */
#if defined(__GNUC__)
#define TR__DIST_API __attribute__((visibility("default")))
#else
#define TR__DIST_API
#endif

/* The version of this interface: bumped whenever a declaration, a flag
 * bit, a signal kind or a payload layout below changes meaning. */
#define TR__DIST_VERSION 3u

/* ---- messages and signals ----------------------------------------------- */

/* Delivery flags of tr_msg._flags that cross the interface. The low byte
 * (the pool class) and the bits above TR__MF_VIALINK belong to the runtime
 * (rt.h); a layer leaves them alone. */
#define TR__MF_REPLY (1u << 8)    /* a reply: delivered only if awaited */
#define TR__MF_RTIMEO (1u << 9)   /* a request's timeout */
#define TR__MF_SIGNAL (1u << 10)  /* a signal (type: TR__SIG_*) */
#define TR__MF_DOWN (1u << 11)    /* a DOWN: delivered only if monitored */
#define TR__MF_VIALINK (1u << 12) /* an exit signal sent because of a link */

/* Signal kinds, carried in the type of a TR__MF_SIGNAL message. `sender`
 * is the pid the signal comes from. */
enum {
	TR__SIG_LINK = 0xFFFF0100u,
	TR__SIG_UNLINK,
	TR__SIG_EXIT,      /* payload: tr_exit_info */
	TR__SIG_MONITOR,   /* ref: the monitor */
	TR__SIG_DEMONITOR, /* ref: the monitor */
};

/* What a message counts in a remote backlog (tr__dist_inject_bounded_locked,
 * tr__dist_backlog): its payload plus the runtime's header and tr_msg's.
 * Any thread. */
TR__DIST_API uint32_t tr__dist_rin_size(const tr_msg *m);

/* The link word of a message the layer owns, for a list it keeps itself
 * (messages parked by flow control): it lives in the runtime's header of
 * the message, outside the public tr_msg (troupe/troupe.h), and is the
 * runtime's again once the message is handed to tr__dist_inject*. Only
 * the thread that holds the list (or its lock). */
TR__DIST_API tr_msg *tr__dist_msg_next(const tr_msg *m);
TR__DIST_API void tr__dist_msg_set_next(tr_msg *m, tr_msg *next);

/* A message for the layer to inject: any type (system types included), no
 * size limit, `sender` none, `ref` 0 and no flags; data[0..size) is copied
 * (data may be NULL when size is 0). On TR_OK the caller owns *mp until it
 * hands it to tr__dist_inject* or frees it with tr__dist_msg_free.
 * Errors: TR_EMSGSIZE (size above UINT32_MAX), TR_ENOMEM. Any thread,
 * inside an inject section too. */
TR__DIST_API int tr__dist_msg_new(
    tr_msg **mp, uint32_t type, const void *data, size_t size);

/* Frees a message the caller owns: one of tr__dist_msg_new, or one the
 * runtime passed to the `send` op and the layer took (TR_OK). Any thread,
 * inside an inject section too. */
TR__DIST_API void tr__dist_msg_free(tr_msg *m);

/* A reference unique within `rt` (never 0), as the runtime gives requests
 * and monitors. Any thread; one relaxed atomic add. */
TR__DIST_API uint64_t tr__dist_new_ref(tr_runtime *rt);

/* The behaviour registered under `name` with tr_behaviour_register, or
 * NULL for an unknown, NULL, empty or too long name: what a remote spawn
 * request names. The result stays valid while the runtime lives (names are
 * never unregistered). Any thread; takes a mutex, so not for a per-message
 * path. */
TR__DIST_API const tr_behaviour *tr__dist_behaviour_find(
    tr_runtime *rt, const char *name);

/* ---- the runtime, as the layer sees it ---------------------------------- */

/* TR__DIST_VERSION as the running runtime was built with it. A layer
 * refuses to attach (TR_ENOTSUP) when it differs from its own. Any
 * thread. */
TR__DIST_API unsigned tr__dist_version(void);

/* True when the calling thread is one of the scheduler threads of `rt`
 * (so that it is inside a turn whenever it runs the layer's code): a send
 * from there may leave its batch to the `flush` at the turn's end; from any
 * other thread (tr_post, tr_call, a port, a timer) the layer must send
 * itself, since no turn ends there. Any thread; reads a thread-local
 * pointer, takes no lock and makes no atomic access. */
TR__DIST_API bool tr__dist_in_turn(const tr_runtime *rt);

/* For the layer's own API called by an actor (`ctx` of the running
 * callback) that queued output without going through the `send` op: asks
 * the scheduler to call the layer's `flush` at the end of this turn, as
 * it does after a `send`. Returns false, marking nothing, when `ctx` runs
 * on no scheduler (the callbacks of a runtime being torn down run on the
 * stopping thread): the layer then flushes itself. Only the thread running
 * the callback of `ctx`; a plain store, no lock, no atomic. */
TR__DIST_API bool tr__dist_turn_dirty(tr_ctx *ctx);

/* The largest payload the runtime accepts (tr_runtime_opts.max_msg_size as
 * resolved at start, so never 0): the layer refuses larger sends as a
 * local send would be refused, and drops larger payloads from the wire.
 * Fixed for the life of the runtime. Any thread. The runtime of a callback
 * is tr_runtime_of(ctx) (troupe/troupe.h). */
TR__DIST_API size_t tr__dist_max_msg(const tr_runtime *rt);

/* How long an idle scheduler of `rt` looks for work before it parks
 * (tr_runtime_opts.spin_us as resolved at start, so never 0), in
 * microseconds: the window a layer gives a hot connection for the `poll`
 * op. Any thread. */
TR__DIST_API uint32_t tr__dist_spin_us(const tr_runtime *rt);

/* Whether some scheduler of `rt` is not parked (running, or looking for
 * work), so that a `poll` will come soon: a layer hands a connection to
 * its pollers only then. A hint (one acquire load): a scheduler may park
 * just after. Any thread. */
TR__DIST_API bool tr__dist_sched_awake(tr_runtime *rt);

/* ---- attaching a layer, and what comes in ------------------------------- */

typedef struct tr__dist_ops {
	/* A message or signal (TR__MF_* above) for `to`, whose node is
	 * not 0. On TR_OK the layer owns `m`; on error the caller frees it.
	 * Called from any thread, schedulers included: it must not block for
	 * long (queue, and apply backpressure by failing with TR_EAGAIN
	 * rather than by sleeping). */
	int (*send)(void *arg, tr_pid to, tr_msg *m);
	/* Called by a scheduler after a turn in which it called `send`, so
	 * that batched output goes out at the end of the turn. */
	void (*flush)(void *arg);
	/* Flow control (may be NULL): the backlog of remote messages of local
	 * actor `pid` fell to the level tr__dist_inject_bounded_locked set.
	 * Called once per such level, from the thread running the actor (a
	 * scheduler, in a turn, or a port's thread): queue the work and
	 * return at once. */
	void (*drained)(void *arg, tr_pid pid);
	/* The node's name (may be NULL): read once, when the layer attaches,
	 * for log metadata and to tell calls by name that are local. */
	const char *(*name)(void *arg);
	/* Name lookup on another node, for calls by name (may be NULL):
	 * asks node `node_name` which pid is registered there as `name`,
	 * and answers the local pid `from` later with a reply-flagged
	 * (TR__MF_REPLY) message of type TR__DIST_WHEREIS_REPLY whose `ref`
	 * is `ref`, whose sender is the pid found and whose payload is an
	 * int32_t: TR_OK, or TR_ENOENT when the name is not registered
	 * there. Returns TR_OK when the question went out, TR_ENOPROC when
	 * no such node is connected (nothing will come). Called by the
	 * thread running the actor `from`, as `send`. */
	int (*whereis)(void *arg, tr_pid from, const char *node_name,
	    const char *name, uint64_t ref);
	/* Polled input (may be NULL): reads what the layer's hot
	 * connections have waiting, on the calling scheduler, and injects
	 * it there, so that a message arriving while a scheduler spins
	 * reaches its actor with no thread woken. Called by a scheduler
	 * outside any turn: with TR__DIST_POLL_IDLE while it looks for work
	 * (it keeps looking while the result has TR__DIST_POLL_HOT), with
	 * TR__DIST_POLL_BUSY between turns every few dozen turns, and with
	 * TR__DIST_POLL_PARK before it parks (the layer hands its hot
	 * connections back to its own threads, since no more polls may
	 * come). The scheduler calls `flush` after a poll that got
	 * something. `sched` is the calling scheduler's index. Must never
	 * wait for the network. */
	unsigned (*poll)(void *arg, unsigned mode, unsigned sched);
} tr__dist_ops;

/* The modes and results of the `poll` op. */
enum { TR__DIST_POLL_IDLE, TR__DIST_POLL_BUSY, TR__DIST_POLL_PARK };
#define TR__DIST_POLL_GOT 1u /* something was read and injected */
#define TR__DIST_POLL_HOT 2u /* what was polled is still hot: poll again */

/* The answer to the `whereis` op (a system type: no user sends it). */
#define TR__DIST_WHEREIS_REPLY 0xFFFF00F1u

/* Attaches a layer; one per runtime. Errors: TR_EINVAL, TR_EEXIST. */
TR__DIST_API int tr__dist_attach(
    tr_runtime *rt, const tr__dist_ops *ops, void *arg);

/* Detaches it; sends to remote pids fail with TR_ENOPROC afterwards, and
 * once it returns no call of the layer's ops is running or will start, so
 * the layer may free its `arg`. Call from a thread that is not one of the
 * runtime's schedulers; it waits for every scheduler's current turn. */
TR__DIST_API void tr__dist_detach(tr_runtime *rt);

/* The `arg` given to tr__dist_attach, or NULL: how the layer's public
 * functions that take only a ctx or a runtime find their node. */
TR__DIST_API void *tr__dist_arg(tr_runtime *rt);

/* Delivers a message from another node to the local pid `to`. On TR_OK the
 * runtime owns `m`. Thread-safe. */
TR__DIST_API int tr__dist_inject(tr_runtime *rt, tr_pid to, tr_msg *m);

/* Batch injection, for a layer thread that delivers many messages at once
 * (a frame of envelopes): tr__dist_inject enters and leaves the runtime's
 * epoch section for every message, which costs an atomic exchange and a
 * full fence each time. Instead:
 *
 *	unsigned rec;
 *	tr__dist_enter(rt, &rec);
 *	... tr__dist_inject_locked(rt, to, m) for each message ...
 *	tr__dist_exit(rt, rec);
 *
 * Contract: from a thread that is not one of this runtime's schedulers,
 * or from a scheduler inside the `poll` op (where the section costs
 * nothing: the scheduler's own epoch keeps what it looks up alive, and
 * what it delivers goes to its own run queue); sections do not nest on one thread (enter once, exit once
 * with the `rec` it gave); keep a section short (it holds back the reuse
 * of exited actors' memory, so not across blocking calls or a wait for
 * the network) and make no runtime call inside it that blocks or enters
 * a section itself (tr__dist_msg_new, tr__dist_msg_free and tr_whereis
 * are fine). tr__dist_inject_locked has the result and ownership rules of
 * tr__dist_inject. */
TR__DIST_API void tr__dist_enter(tr_runtime *rt, unsigned *rec);
TR__DIST_API int tr__dist_inject_locked(tr_runtime *rt, tr_pid to, tr_msg *m);
TR__DIST_API void tr__dist_exit(tr_runtime *rt, unsigned rec);

/* Inside a section too: delivers msgs[0..n-1], in that order, to `to`,
 * as n calls of tr__dist_inject_locked would, but with one lookup and
 * one push onto the mailbox for all of them. On TR_OK the runtime owns
 * every message; on error (TR_EINVAL, TR_ENOPROC) none, and the caller
 * frees them all. n may be 0. */
TR__DIST_API int tr__dist_inject_many_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n);

/* Flow control for remote traffic: tr__dist_inject_many_locked that first
 * looks at the target's backlog (bytes of messages delivered through this
 * call and not yet taken from its mailbox by the actor, each counted as
 * its size plus its header). Below `limit` it delivers them all and adds
 * them to the backlog (which can thus pass `limit` by one call's worth).
 * At or above, it delivers nothing and returns TR_EAGAIN, the caller
 * still owns the messages, and the layer's `drained` op will be called
 * once with `to` when the backlog has fallen to `limit / 2`. Errors and
 * ownership otherwise as tr__dist_inject_many_locked. */
TR__DIST_API int tr__dist_inject_bounded_locked(
    tr_runtime *rt, tr_pid to, tr_msg **msgs, size_t n, uint32_t limit);

/* Bytes of remote messages (those of tr__dist_inject_bounded_locked) in
 * the mailboxes of all actors. Any thread. */
TR__DIST_API uint64_t tr__dist_backlog(tr_runtime *rt);

/* ---- readiness: descriptors the schedulers wait on ---------------------- */

/* What a scheduler calls for an event of the I/O set: the descriptor
 * registered with `token` is ready for `events` (EPOLLIN, ...). */
typedef void (*tr__io_ready_fn)(
    tr_runtime *rt, uint64_t token, uint32_t events);

/* The runtime's I/O set (runtime/sched/io.c): an epoll set whose events
 * the schedulers take themselves, so that what a descriptor brings is
 * read on a scheduler and reaches its actor there, with no other thread
 * woken. A scheduler looks at the set when it finds no work (before it
 * spins again), between turns (at most every 20 us), and, when it parks
 * while no other scheduler does so, in its sleep: one parked scheduler
 * at a time sleeps in the set's epoll_wait rather than on its futex, and
 * a wake-up reaches it through an eventfd of the set. A turn that runs
 * long on the only scheduler awake delays the set's events until it
 * ends, as it delays everything else on that scheduler.
 *
 * For each event, the scheduler calls `ready` outside any turn and
 * inside its own epoch section, as the `poll` op above: it may look up,
 * allocate and post (what it posts goes to the calling scheduler's run
 * queue), must not block, and must not wait for the network.
 *
 * Returns the set's epoll descriptor, made at the first call, or -1 if it
 * cannot be made (then the caller keeps to its other means of waiting).
 * The caller registers its descriptors with epoll_ctl itself, each with
 * `data.u64` a token other than 0 (0 is the set's own eventfd) and with
 * EPOLLONESHOT, so that one scheduler takes an event, and re-arms with
 * EPOLL_CTL_MOD. A stale token (of a descriptor since closed) may still
 * come once: `ready` checks what it names. `ready` is the one of the first
 * call. The set is closed when the runtime stops, after its actors'
 * terminate callbacks; any thread. */
TR__DIST_API int tr__io_set(tr_runtime *rt, tr__io_ready_fn ready);

#endif
