/*
 * troupe — an actor runtime for C.
 *
 * This is the whole public API of the local runtime. It depends on nothing
 * but the C11 standard library; no nng or protobuf-c type ever appears here.
 *
 * Concepts
 * --------
 * A runtime owns N scheduler threads (default: one per online core), a timer
 * thread and a small pool of threads for blocking work. An actor is a
 * behaviour (a struct of callbacks) plus private state; it runs on whichever
 * scheduler picked it up, one message at a time, never concurrently with
 * itself. Actors share nothing and talk only by messages.
 *
 * A pid names an actor. It is a small value (node, slot, generation), never a
 * pointer: a send to a pid whose actor has exited, or whose slot has since
 * been reused by another actor, is dropped safely and reported as
 * TR_ENOPROC; it never touches freed memory.
 *
 * Threads
 * -------
 * Functions that take a `tr_ctx *` may be called only from inside a callback
 * of the actor that the context belongs to (init, handle, terminate), on the
 * scheduler thread that is running it; the context is valid only for the
 * duration of that callback. Functions that take a `tr_runtime *` may be
 * called from any thread, including actor callbacks, unless their comment
 * says otherwise.
 *
 * Ordering
 * --------
 * Messages from one sender to one receiver arrive in the order they were
 * sent (the sender being an actor, or a single plain thread using
 * tr_post()). There is no other ordering guarantee, as in Erlang.
 *
 * Errors
 * ------
 * Fallible calls return an int: TR_OK (0) or a negative TR_E* code.
 * Output parameters come first.
 */
#ifndef TROUPE_TROUPE_H
#define TROUPE_TROUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared library are hidden unless marked TR_API. */
#if defined(TR_BUILDING_LIB) && defined(__GNUC__)
#define TR_API __attribute__((visibility("default")))
#else
#define TR_API
#endif

#define TR_VERSION_MAJOR 0
#define TR_VERSION_MINOR 1
#define TR_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

enum {
	TR_OK = 0,
	TR_EINVAL = -1,    /* a null or invalid argument */
	TR_ENOMEM = -2,    /* out of memory, or the actor table is full */
	TR_ENOPROC = -3,   /* the target actor is not alive */
	TR_ETIMEDOUT = -4, /* the deadline passed first */
	TR_ECLOSED = -5,   /* the runtime is stopping or stopped */
	TR_EMSGSIZE = -6,  /* the message is larger than the runtime's limit */
	TR_EEXIST = -7,    /* the name is taken, or the pid has one */
	TR_ENOENT = -8,    /* no such name, timer or request */
	TR_ENOTSUP = -9,   /* not supported in this build or context */
	TR_EAGAIN = -10,   /* a resource is temporarily exhausted; try again */
	TR_EINIT = -11,    /* the actor's init failed (see init_reason) */
	TR_EALREADY = -12, /* already started (a running child has this id) */
	TR_ERUNNING = -13, /* not allowed while the child is running */
	TR_ERESTARTING = -14, /* not allowed while the supervisor is trying
	                       * to restart the child */
	/* The lowest code: every code from TR_OK down to TR_E_LAST has its
	 * own text in tr_strerror. A new code goes below the last one and
	 * moves TR_E_LAST with it. */
	TR_E_LAST = TR_ERESTARTING,
};

/* Returns a static, human-readable description of an error code. Never NULL;
 * every code from TR_OK to TR_E_LAST has its own; other values give
 * "unknown error". Thread-safe. */
TR_API const char *tr_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Pids                                                                      */
/* ------------------------------------------------------------------------ */

/* An actor's name. A plain value: copy it, store it, send it in messages.
 * `node` is 0 for actors of this process's runtime. `slot` and `gen` locate
 * the actor in its node's actor table; `gen` changes every time a slot is
 * reused, so an old pid never reaches a new actor. The all-zero pid is
 * TR_PID_NONE and never names an actor. */
typedef struct tr_pid {
	uint32_t node;
	uint32_t slot;
	uint32_t gen;
} tr_pid;

#define TR_PID_NONE ((tr_pid){0, 0, 0})

static inline bool tr_pid_eq(tr_pid a, tr_pid b)
{
	return a.node == b.node && a.slot == b.slot && a.gen == b.gen;
}

static inline bool tr_pid_is_none(tr_pid p)
{
	return p.gen == 0;
}

/* ------------------------------------------------------------------------ */
/* Exit reasons                                                              */
/* ------------------------------------------------------------------------ */

/* An exit reason is an int. The reserved values follow Erlang/OTP; any
 * positive value is a user reason (a crash). */
enum {
	TR_REASON_NORMAL = 0,    /* the actor finished its work */
	TR_REASON_SHUTDOWN = -1, /* stopped by the runtime or a supervisor */
	TR_REASON_KILL = -2,     /* an untrappable kill request */
	TR_REASON_KILLED = -3,   /* the actor died of a kill request */
	TR_REASON_NOPROC = -4,   /* the actor did not exist */
	TR_REASON_NOCONNECTION = -5, /* the actor's node became unreachable */
};

/* Returns a static name for a reason: "normal", "shutdown", "kill",
 * "killed", "noproc", "noconnection", or "error" for user reasons. */
TR_API const char *tr_reason_name(int reason);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* A message is a type tag plus `size` bytes of payload. Payload bytes start
 * 16-byte aligned, so a receiver may read a struct straight out of `data`.
 *
 * Fields whose name starts with '_' belong to the runtime. A message handed
 * to a behaviour's handle callback is borrowed: it stays valid until the
 * callback returns and must not be freed or modified. */
typedef struct tr_msg {
	void *_next;     /* runtime: mailbox link */
	uint64_t ref;    /* request/reply/timer/blocking-job reference, or 0 */
	tr_pid sender;   /* the sending actor, or TR_PID_NONE */
	uint32_t type;   /* the type tag given by the sender */
	uint32_t size;   /* payload size in bytes */
	uint32_t _flags; /* runtime: size class and delivery flags */
	uint64_t _rsv;   /* runtime: reserved */
	_Alignas(16) unsigned char data[];
} tr_msg;

/* Type tags at or above TR_MSG_SYSTEM are reserved for the runtime; sends
 * with such a type are refused with TR_EINVAL. */
#define TR_MSG_SYSTEM 0xFFFF0000u
/* Type tags from TR_MSG_LOCAL_BASE up (TR_MSG_SYSTEM's range included) have
 * a meaning only inside one process: their payloads may hold pointers,
 * function pointers or raw pids (the supervisor's requests are among them,
 * see sup.h). Such a message never crosses a node: a send of one to a pid
 * of another node fails with TR_EINVAL, and a node or a client endpoint
 * that receives one from the wire refuses it (counted in the node's
 * statistics, logged, and answered with an error when the sender waits
 * for a reply). The tags from TR_MSG_LOCAL_BASE to TR_MSG_SYSTEM - 1 that
 * troupe does not use are free for an application's own local-only
 * messages. */
#define TR_MSG_LOCAL_BASE 0xFFFE0000u

/* Whether messages of type `type` stay inside their process. */
static inline bool tr_msg_type_local(uint32_t type)
{
	return type >= TR_MSG_LOCAL_BASE;
}
/* Delivered to an actor whose tr_request() got no reply in time; `ref` is the
 * request's reference, the payload is empty. */
#define TR_MSG_TIMEOUT 0xFFFF0001u

/* A refusal: the reply that a node or a client endpoint sends in place of
 * the target's own when it refused the request before delivering it (a
 * local-only type from the wire, for example). Its `ref` is the request's,
 * its sender the pid the request was sent to, and its payload one int32_t
 * (host order): the negative TR_E* code the request was refused with.
 * tr_call turns it into that return value; an actor that used tr_request
 * receives it as its reply message. Users cannot send it (it is a system
 * type). */
#define TR_MSG_REFUSED 0xFFFF0004u

/* Payload of a tr_run_blocking() result message (its type is chosen by the
 * caller of tr_run_blocking, its `ref` is the job's reference). */
typedef struct tr_blocking_result {
	void *result; /* what the blocking function returned */
} tr_blocking_result;

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct tr_runtime tr_runtime;

typedef struct tr_runtime_opts {
	unsigned schedulers; /* scheduler threads; 0 = one per online core.
	                      * At most TR_MAX_SCHEDULERS. */
	bool pin;            /* pin scheduler i to online core i % ncores */
	unsigned blocking_threads; /* threads for tr_run_blocking; 0 = 4 */
	uint32_t max_actors;       /* capacity of the actor table; 0 = 16 Mi.
	                            * Address space is reserved up front, memory
	                            * is touched only as actors are spawned. */
	size_t max_msg_size;       /* largest payload accepted; 0 = 64 MiB */
	uint32_t batch;            /* messages one actor handles per turn
	                            * before others get the core; 0 = 100 */
	uint32_t spin_us;          /* how long an idle scheduler looks for work
	                            * before it parks; 0 = 100 us */
} tr_runtime_opts;

#define TR_MAX_SCHEDULERS 64

/* Fills `opts` with the defaults (all zero). */
TR_API void tr_runtime_opts_init(tr_runtime_opts *opts);

/* Starts a runtime and its threads. `opts` may be NULL for the defaults.
 * Errors: TR_EINVAL (rtp NULL, too many schedulers, batch of 0 after
 * defaults), TR_ENOMEM (memory or threads could not be had; nothing is
 * left behind). Several runtimes may live in one process. */
TR_API int tr_runtime_start(tr_runtime **rtp, const tr_runtime_opts *opts);

/* Waits until the runtime is quiescent: no actor runnable or running, no
 * message in flight, no armed timer and no blocking job. Returns TR_OK, or
 * TR_ETIMEDOUT after `timeout_ms` (negative: wait for ever). Call it from a
 * plain thread, never from an actor (it would wait for itself). */
TR_API int tr_runtime_wait_quiescent(tr_runtime *rt, int64_t timeout_ms);

/* Stops the runtime and frees it: no new spawn is accepted (TR_ECLOSED),
 * timers are cancelled, queued blocking jobs finish, the schedulers stop,
 * then every live actor is terminated with TR_REASON_SHUTDOWN (an actor that
 * never ran gets init then terminate, so its init argument is not lost) and
 * every undelivered message is freed. Blocks until all of that is done. Must
 * not be called from an actor or from a blocking job. `rt` is invalid after.
 * NULL is ignored. */
TR_API void tr_runtime_stop(tr_runtime *rt);

/* Number of scheduler threads of `rt`. */
TR_API unsigned tr_runtime_schedulers(const tr_runtime *rt);

/* Counters, read without stopping the runtime (each figure is exact when the
 * runtime is quiescent, a recent value otherwise). */
typedef struct tr_runtime_stats {
	uint64_t actors_alive;   /* spawned and not yet exited */
	uint64_t actors_spawned; /* since start */
	uint64_t msgs_sent;      /* accepted by a live mailbox */
	uint64_t msgs_dropped;   /* refused: dead pid, or arrived after exit */
	uint64_t steals;         /* actors taken from another scheduler */
	uint64_t parks;          /* times a scheduler went to sleep */
	uint64_t crashes; /* actors that exited with a non-normal reason */
	uint64_t turns[TR_MAX_SCHEDULERS]; /* actor turns run per scheduler */
} tr_runtime_stats;

/* Fills `st`. Thread-safe. Errors: TR_EINVAL. */
TR_API int tr_runtime_stats_get(tr_runtime_stats *st, tr_runtime *rt);

/* Crash reports. The handler is called on the thread where the actor died,
 * after its terminate callback, with a one-line report. The default writes
 * it to stderr. NULL restores the default. Set it before actors run. */
typedef void (*tr_log_fn)(void *user, const char *line);
TR_API void tr_runtime_set_log(tr_runtime *rt, tr_log_fn fn, void *user);

/* Writes one report line through the runtime's log handler (crash and
 * supervisor reports use it; so may applications). Thread-safe as far as
 * the handler is. */
TR_API void tr_log(tr_runtime *rt, const char *line);

/* ------------------------------------------------------------------------ */
/* Actors                                                                    */
/* ------------------------------------------------------------------------ */

/* The context of a running actor, handed to each callback. Valid only during
 * that callback, on that thread. */
typedef struct tr_ctx tr_ctx;

/* A behaviour: what an actor does. All callbacks run on a scheduler thread,
 * one at a time per actor; they must not block (use tr_run_blocking).
 *
 * init: optional. Runs as the actor's first turn, before any message. It
 *   receives the spawn argument and stores the actor's state in `*state`
 *   (initially the argument itself). Return TR_OK, a reason (> 0) to
 *   crash at once, or TR_INIT_IGNORE (below); terminate is then not
 *   called, so init frees what it allocated.
 * handle: required. Called once per message. Return 0 to go on; a positive
 *   value crashes the actor with that reason (as tr_crash).
 * terminate: optional. Called exactly once when an initialised actor exits,
 *   for any reason (normal, crash, shutdown); it owns and frees `state`.
 *   Messages it sends are delivered as usual while the runtime runs. */
typedef struct tr_behaviour {
	const char *name; /* shown in crash reports; may be NULL */
	int (*init)(tr_ctx *ctx, void *arg, void **state);
	int (*handle)(tr_ctx *ctx, void *state, const tr_msg *msg);
	void (*terminate)(tr_ctx *ctx, void *state, int reason);
} tr_behaviour;

/* A reserved return value of init, OTP's `ignore`: the actor is not
 * wanted. It ends at once, as after a failed init (no terminate), but with
 * reason normal and without a crash report; a synchronous spawn
 * (TR_SPAWN_SYNC_INIT) returns TR_EINIT with *init_reason set to
 * TR_INIT_IGNORE, so that the spawner can tell "not wanted" from a
 * failure. Supervisors treat such a child as OTP's do (sup.h). It is no
 * exit reason: no actor exits with it. */
#define TR_INIT_IGNORE (-100)

/* Spawn flags. */
#define TR_SPAWN_SYNC_INIT                                                     \
	(1u << 1)                    /* run init now, on the calling thread,   \
	                              * before tr_spawn returns (like OTP's    \
	                              * start_link); if it fails the actor     \
	                              * is gone and TR_EINIT is returned */
#define TR_SPAWN_TRAP_EXIT (1u << 2) /* start with trap_exit on */

typedef struct tr_spawn_opts {
	uint32_t flags;   /* TR_SPAWN_* ; other bits are refused */
	int *init_reason; /* optional: with TR_SPAWN_SYNC_INIT, where to store
	                   * the reason init failed with */
} tr_spawn_opts;

/* Spawns an actor running `b` with spawn argument `arg` and stores its pid
 * in `*pid` (which may be NULL). The actor runs init on its first turn,
 * soon after, on the calling scheduler when called from an actor (or at
 * once on the calling thread with TR_SPAWN_SYNC_INIT: then TR_EINIT means
 * init failed, the actor never existed for anyone else, and its reason is
 * in *opts->init_reason). `b` must
 * stay valid for the actor's lifetime (a static const struct is usual).
 * `opts` may be NULL. Ownership of `arg` passes to the actor on TR_OK (init
 * always runs, even if the runtime stops first); on error the caller keeps
 * it. Errors: TR_EINVAL (rt or b NULL, b->handle NULL, opts->flags not 0),
 * TR_ECLOSED (the runtime is stopping), TR_ENOMEM (no memory, or
 * max_actors actors alive). Thread-safe. */
TR_API int tr_spawn(tr_pid *pid, tr_runtime *rt, const tr_behaviour *b,
    void *arg, const tr_spawn_opts *opts);

/* The running actor's own pid. */
TR_API tr_pid tr_self(const tr_ctx *ctx);

/* The runtime the running actor belongs to. */
TR_API tr_runtime *tr_runtime_of(const tr_ctx *ctx);

/* The sender of a message (TR_PID_NONE for tr_post, timers sent with no
 * owner, and blocking results). */
static inline tr_pid tr_sender(const tr_msg *m)
{
	return m->sender;
}

/* Ends the running actor with `reason` once the current callback returns:
 * TR_REASON_NORMAL for a normal exit, anything else is logged as a crash.
 * Calling it again replaces the reason. From init it ends the actor without
 * calling terminate. */
TR_API void tr_exit(tr_ctx *ctx, int reason);

/* Same as tr_exit, for a crash (a reason that is not normal). A reason of
 * TR_REASON_NORMAL is turned into 1 (a generic user error). */
TR_API void tr_crash(tr_ctx *ctx, int reason);

/* tr_exit with a text that explains the reason (copied, truncated to
 * TR_REASON_TEXT_MAX - 1 bytes; NULL for none). The text travels with the
 * exit signals and DOWN messages and appears in the crash report. */
TR_API void tr_exit_text(tr_ctx *ctx, int reason, const char *text);

/* ------------------------------------------------------------------------ */
/* Behaviours by name                                                        */
/* ------------------------------------------------------------------------ */

/* Parties outside the process (other nodes, clients) never send function
 * pointers: they name a behaviour that was registered for them, and the
 * runtime starts it. One registry per runtime serves remote spawns and
 * remote supervisor child starts (sup.h) alike.
 *
 * A behaviour started by name gets, as its init argument, a `tr_blob *`:
 * a fresh malloc'd copy of the bytes the requester sent, which the actor
 * owns from the moment init is called, also when init fails (free it with
 * free(); a behaviour without init finds it as its state). `data` starts 8
 * bytes into the allocation; it is not 16-byte aligned. */
typedef struct tr_blob {
	size_t size;
	unsigned char data[];
} tr_blob;

/* Registers `b` under `name` (1..TR_NAME_MAX bytes, copied) so that it can
 * be started by name. `b` is borrowed and must outlive the runtime; a name
 * stays registered until the runtime stops. tr_sup_behaviour cannot be
 * registered (its argument holds pointers). Errors: TR_EINVAL (NULL, empty
 * or too long name, NULL b or b->handle, tr_sup_behaviour), TR_EEXIST (the
 * name is taken), TR_ENOMEM. Thread-safe. */
TR_API int tr_behaviour_register(
    tr_runtime *rt, const char *name, const tr_behaviour *b);

/* ------------------------------------------------------------------------ */
/* Links, monitors and exit signals (Erlang/OTP semantics)                   */
/* ------------------------------------------------------------------------ */

#define TR_REASON_TEXT_MAX 96

/* Payload of TR_MSG_EXIT and TR_MSG_DOWN messages. */
typedef struct tr_exit_info {
	tr_pid pid; /* EXIT: the sender of the signal; DOWN: the actor
	             * that was monitored */
	int32_t reason;
	uint64_t ref; /* DOWN: the monitor's reference; EXIT: 0 */
	char text[TR_REASON_TEXT_MAX]; /* the reason's text, or "" */
} tr_exit_info;

/* An exit signal that reached an actor trapping exits, as a message. */
#define TR_MSG_EXIT 0xFFFF0002u
/* A monitored actor exited (or did not exist: reason TR_REASON_NOPROC). */
#define TR_MSG_DOWN 0xFFFF0003u

/* Links the running actor and `pid`, both ways; linking twice is one link.
 * When either exits, the other gets an exit signal with the reason: a
 * `normal` signal is ignored unless trapping; any other kills the receiver
 * with the same reason, or arrives as a TR_MSG_EXIT message if it traps
 * exits. If `pid` is not alive, TR_ENOPROC is returned and the running
 * actor gets an exit signal with reason noproc (so it dies unless it traps
 * exits), as in Erlang. Linking to self does nothing. */
TR_API int tr_link(tr_ctx *ctx, tr_pid pid);

/* Removes the link with `pid`, if any. After it returns, no exit signal
 * from that link reaches the running actor, even one already in flight.
 * Errors: TR_EINVAL. */
TR_API int tr_unlink(tr_ctx *ctx, tr_pid pid);

/* Monitors `pid`: when it exits, the running actor gets a TR_MSG_DOWN
 * message carrying `*ref` and the reason. Monitors stack: each call is a
 * new one with its own reference. A target that is not alive yields DOWN
 * with reason noproc at once (the call still returns TR_OK). Errors:
 * TR_EINVAL, TR_ENOMEM. */
TR_API int tr_monitor(tr_ctx *ctx, uint64_t *ref, tr_pid pid);

/* Removes a monitor. After it returns no DOWN for `ref` is delivered.
 * Errors: TR_ENOENT (no such monitor: already fired or removed). */
TR_API int tr_demonitor(tr_ctx *ctx, uint64_t ref);

/* Turns trapping of exit signals on or off; returns the previous setting. */
TR_API bool tr_trap_exit(tr_ctx *ctx, bool on);

/* Sends `pid` an exit signal with `reason` (Erlang's exit/2), from the
 * running actor when called from one, else from no one. TR_REASON_KILL
 * cannot be trapped: the target dies with TR_REASON_KILLED. TR_REASON_NORMAL
 * is ignored by a target that does not trap exits. Errors: TR_EINVAL,
 * TR_ENOPROC. Thread-safe. */
TR_API int tr_kill(tr_runtime *rt, tr_pid pid, int reason);

/* tr_spawn, linked to the running actor before the child runs at all. */
TR_API int tr_spawn_link(tr_ctx *ctx, tr_pid *pid, const tr_behaviour *b,
    void *arg, const tr_spawn_opts *opts);

/* tr_spawn, monitored by the running actor before the child runs at all;
 * the monitor's reference goes to `*ref`. */
TR_API int tr_spawn_monitor(tr_ctx *ctx, tr_pid *pid, uint64_t *ref,
    const tr_behaviour *b, void *arg, const tr_spawn_opts *opts);

/* Whether the actor named by `pid` is alive right now (the answer can be
 * stale by the time it is used). Thread-safe. */
TR_API bool tr_is_alive(tr_runtime *rt, tr_pid pid);

/* ------------------------------------------------------------------------ */
/* Sending                                                                   */
/* ------------------------------------------------------------------------ */

/* Sends a copy of `size` bytes at `data` (NULL when size is 0) with tag
 * `type` from the running actor to `to`. The bytes are copied before it
 * returns. Errors: TR_EINVAL (ctx NULL, data NULL with size > 0, a reserved
 * type), TR_EMSGSIZE (size above max_msg_size), TR_ENOMEM, TR_ENOPROC (the
 * target is not alive; the message is dropped). TR_OK means the message is
 * in the target's mailbox; it may still be lost if the target exits before
 * handling it. */
TR_API int tr_send(
    tr_ctx *ctx, tr_pid to, uint32_t type, const void *data, size_t size);

/* The same as tr_send, from a thread that is not running an actor (main,
 * a thread of the user's): the message has no sender. Messages posted by one
 * thread to one actor arrive in order. Thread-safe. */
TR_API int tr_post(
    tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t size);

/* Allocates a message with room for `size` payload bytes and tag `type`,
 * for zero-copy sending: fill `(*msgp)->data`, then hand it to tr_send_msg
 * or tr_post_msg, or give it back with tr_msg_free. Errors: TR_EINVAL,
 * TR_EMSGSIZE, TR_ENOMEM. Thread-safe. */
TR_API int tr_msg_alloc(
    tr_msg **msgp, tr_runtime *rt, uint32_t type, size_t size);

/* Frees a message the caller owns (from tr_msg_alloc, or a reply from
 * tr_call / tr_port_recv). NULL is ignored. Thread-safe. */
TR_API void tr_msg_free(tr_msg *msg);

/* Sends a message made with tr_msg_alloc without copying it. On TR_OK the
 * runtime owns `msg`; on any error the caller still does. Errors as
 * tr_send. */
TR_API int tr_send_msg(tr_ctx *ctx, tr_pid to, tr_msg *msg);

/* Forwards a copy of `msg` (typically the message being handled) to `to`,
 * keeping its sender, type, payload and reference: the final receiver sees
 * the original sender, can reply to it with tr_reply (a forwarded request
 * stays a request), and can pass that pid on again. This is how a pid
 * travels to a third node: in the sender field, never in payload bytes.
 * Errors: TR_EINVAL (NULL, a runtime-internal message), others as tr_send. */
TR_API int tr_forward(tr_ctx *ctx, tr_pid to, const tr_msg *msg);

/* tr_send_msg from a plain thread. Ownership as tr_send_msg. */
TR_API int tr_post_msg(tr_runtime *rt, tr_pid to, tr_msg *msg);

/* ------------------------------------------------------------------------ */
/* Request / reply                                                           */
/* ------------------------------------------------------------------------ */

/* Sends a request (a copy of `data`, tag `type`) from the running actor to
 * `to` and stores a fresh reference in `*ref` (may be NULL). Later exactly
 * one of these reaches the requester's handle: the reply (a message whose
 * `ref` equals the reference), or, after `timeout_ms` (negative: never), a
 * TR_MSG_TIMEOUT message with that `ref`. A reply that comes after the
 * timeout is dropped. The reply may be a TR_MSG_REFUSED message instead of
 * the target's own: the target's node or client endpoint refused the
 * request before it was delivered, and the payload's int32_t says why. If
 * `to` is not alive, TR_ENOPROC is returned and nothing will arrive.
 * Errors: as tr_send. */
TR_API int tr_request(tr_ctx *ctx, uint64_t *ref, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms);

/* Replies to `req` (a message being handled whose `ref` is not 0) with a
 * copy of `data` and tag `type`. Errors: TR_EINVAL (req has no ref), others
 * as tr_send; TR_ENOPROC if the requester is gone. */
TR_API int tr_reply(tr_ctx *ctx, const tr_msg *req, uint32_t type,
    const void *data, size_t size);

/* Calls an actor from a plain thread: sends a request and blocks until the
 * reply comes or `timeout_ms` passes (negative: wait for ever). The target
 * is monitored meanwhile, like gen_server:call. On TR_OK the caller owns
 * `*reply` and frees it with tr_msg_free. If the answer is a refusal
 * (TR_MSG_REFUSED: the target's node refused the request before delivering
 * it), no reply is stored and tr_call returns the refusal's error code
 * instead (TR_EINVAL if the refusal carries no valid code). Errors:
 * TR_EINVAL (also when called from an actor, which must use tr_request),
 * TR_ENOPROC (the target is not alive, or exits before it replies),
 * TR_ETIMEDOUT, TR_ECLOSED, TR_EMSGSIZE, TR_ENOMEM, or a refusal's code.
 * Thread-safe. */
TR_API int tr_call(tr_msg **reply, tr_runtime *rt, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms);

/* ------------------------------------------------------------------------ */
/* Ports: a mailbox for a plain thread                                       */
/* ------------------------------------------------------------------------ */

/* A port gives a plain thread (main, a test, a bridge to other code) a pid
 * and a mailbox, like CAF's scoped_actor: actors send to it as to any actor.
 * One thread at a time may receive from a port. */
typedef struct tr_port tr_port;

/* Opens a port. Errors: TR_EINVAL, TR_ECLOSED, TR_ENOMEM. Thread-safe. */
TR_API int tr_port_open(tr_port **portp, tr_runtime *rt);

/* The port's pid. */
TR_API tr_pid tr_port_pid(const tr_port *port);

/* Waits up to `timeout_ms` (negative: for ever; 0: poll) for the next
 * message. On TR_OK the caller owns `*msgp` (free with tr_msg_free).
 * Errors: TR_EINVAL, TR_ETIMEDOUT. */
TR_API int tr_port_recv(tr_msg **msgp, tr_port *port, int64_t timeout_ms);

/* Sends from the port (the message's sender is the port's pid). Errors as
 * tr_send. */
TR_API int tr_port_send(
    tr_port *port, tr_pid to, uint32_t type, const void *data, size_t size);

/* Closes the port: its pid dies and undelivered messages are freed. Must be
 * called before tr_runtime_stop. NULL is ignored. */
TR_API void tr_port_close(tr_port *port);

/* ------------------------------------------------------------------------ */
/* Timers                                                                    */
/* ------------------------------------------------------------------------ */

/* A timer reference; 0 is never a valid one. */
typedef uint64_t tr_timer;

/* After `delay_ms`, sends a copy of `data` with tag `type` to `to`, as if
 * sent by the running actor. With `interval_ms` > 0 it then repeats every
 * interval_ms until cancelled or the target dies. Timers due at the same
 * time fire in the order they were armed. Stores the reference in `*timer`
 * (may be NULL). The message is built when the timer fires; the bytes are
 * copied now. Errors: as tr_send, plus TR_EINVAL for a negative delay. */
TR_API int tr_send_after(tr_ctx *ctx, tr_timer *timer, tr_pid to,
    int64_t delay_ms, int64_t interval_ms, uint32_t type, const void *data,
    size_t size);

/* tr_send_after from a plain thread (the messages have no sender). */
TR_API int tr_post_after(tr_runtime *rt, tr_timer *timer, tr_pid to,
    int64_t delay_ms, int64_t interval_ms, uint32_t type, const void *data,
    size_t size);

/* Cancels a timer. TR_OK: it will not fire again, and no message of it is
 * sent after this returns (a message already sent may still be in the
 * mailbox). TR_ENOENT: it already fired (one-shot) or was cancelled, or the
 * reference is unknown. Thread-safe. */
TR_API int tr_timer_cancel(tr_runtime *rt, tr_timer timer);

/* ------------------------------------------------------------------------ */
/* Blocking work                                                             */
/* ------------------------------------------------------------------------ */

typedef void *(*tr_blocking_fn)(void *arg);

/* Runs `fn(arg)` on the runtime's blocking pool, never on a scheduler, and
 * sends the running actor a message of tag `type` whose payload is a
 * tr_blocking_result holding fn's return value and whose `ref` is the job's
 * reference (stored in `*ref`, may be NULL). If the actor has exited by
 * then, the result is dropped (the caller should make `fn` own nothing the
 * actor must free, or accept the loss). Jobs queued when the runtime stops
 * still run. Errors: TR_EINVAL (ctx or fn NULL, reserved type),
 * TR_ECLOSED, TR_ENOMEM. */
TR_API int tr_run_blocking(
    tr_ctx *ctx, uint64_t *ref, uint32_t type, tr_blocking_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Names                                                                     */
/* ------------------------------------------------------------------------ */

#define TR_NAME_MAX 64 /* longest name, in bytes, without the final NUL */

/* Registers `name` for the live actor `pid`. The name is released when the
 * actor exits, before any exit signal goes out. Errors: TR_EINVAL (NULL,
 * empty or too long name, remote pid), TR_EEXIST (name taken, or the actor
 * has a name already), TR_ENOPROC. Thread-safe. */
TR_API int tr_register(tr_runtime *rt, const char *name, tr_pid pid);

/* Removes a name. Errors: TR_EINVAL, TR_ENOENT. Thread-safe. */
TR_API int tr_unregister(tr_runtime *rt, const char *name);

/* Looks a name up. Errors: TR_EINVAL, TR_ENOENT. Thread-safe. */
TR_API int tr_whereis(tr_pid *pid, tr_runtime *rt, const char *name);

/* Sends a copy of `data` to the actor registered as `name`. Errors: as
 * tr_send, plus TR_ENOENT for an unknown name. */
TR_API int tr_send_named(tr_ctx *ctx, const char *name, uint32_t type,
    const void *data, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_TROUPE_H */
