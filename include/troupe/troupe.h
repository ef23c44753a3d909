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
 *
 * Versioned structs
 * -----------------
 * A struct that the caller allocates and the library reads or fills
 * (options, statistics, specs) starts with `uint32_t struct_size`, which
 * its inline _init sets to the size the caller was compiled with. Call the
 * _init before anything else: the library reads only the fields that fit
 * in struct_size (those past it take their defaults) and fills only what
 * fits; a struct_size of 0 or below the struct's first version
 * (TR_*_V1_SIZE) is refused with TR_EINVAL. A new troupe adds fields only
 * at the end of such a struct, so a program keeps working with a newer
 * library of the same SOVERSION without being rebuilt. docs/abi.md has the
 * rules, and which structs are frozen instead.
 */
#ifndef TROUPE_TROUPE_H
#define TROUPE_TROUPE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "troupe/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Symbols of the shared library are hidden unless marked TR_API. */
#if defined(TR_BUILDING_LIB) && defined(__GNUC__)
#define TR_API __attribute__((visibility("default")))
#else
#define TR_API
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                  */
/* ------------------------------------------------------------------------ */

/* TR_VERSION_MAJOR, _MINOR, _PATCH, TR_VERSION and TR_VERSION_STRING
 * (troupe/version.h) are the version this program was compiled against.
 * These two give the version of the library it runs with, which may be
 * newer (docs/abi.md, "Versions"): tr_version() is TR_VERSION_NUMBER(major,
 * minor, patch), tr_version_string() "MAJOR.MINOR.PATCH" (static). Both
 * are thread-safe and may be called before any runtime exists. */
TR_API unsigned tr_version(void);
TR_API const char *tr_version_string(void);

/* The size of `type` up to the end of `field`. */
#define TR_STRUCT_END(type, field)                                             \
	(offsetof(type, field) + sizeof(((type *)0)->field))

/* An initializer for a versioned struct whose defaults are all zero, such
 * as an output struct, with struct_size set:
 *   tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);
 * (the same as its _init; tr_sup_flags and tr_child_spec have defaults
 * that are not zero and need theirs). */
#define TR_STRUCT_INIT(type)                                                   \
	{                                                                      \
		.struct_size = sizeof(type)                                    \
	}

/* Whether the versioned struct at `p` (of type `type`) is large enough to
 * hold `field`: for reading a struct that another version of troupe made,
 * such as a tr_log_event in a handler (the library reads the caller's
 * structs the same way). */
#define TR_STRUCT_HAS(p, type, field)                                          \
	((size_t)(p)->struct_size >= TR_STRUCT_END(type, field))

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
	/* Sockets (troupe/sock.h). */
	TR_EPERM = -15,        /* the caller does not own the socket */
	TR_ECONNREFUSED = -16, /* nothing listens at the address */
	TR_ECONNRESET = -17,   /* the peer reset the connection */
	TR_EPEERAUTH = -18,    /* the peer's TLS certificate was refused */
	TR_EPROTO = -19,       /* the peer broke off a frame, or TLS failed */
	/* The lowest code: every code from TR_OK down to TR_E_LAST has its
	 * own text in tr_strerror. A new code goes below the last one and
	 * moves TR_E_LAST with it. */
	TR_E_LAST = TR_EPROTO,
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
	/* The ends of an actor whose OS process ended under it (a process
	 * child, troupe/proc.h): */
	TR_REASON_MEMORY_LIMIT = -6, /* the process passed its memory limit
	                              * and was killed for it */
	TR_REASON_CPU_LIMIT = -7,    /* the process used up its CPU time */
};

/* The process exited with status 1..255 (exit(3) gives
 * TR_REASON_EXIT_STATUS(3); status 0 is TR_REASON_NORMAL), or was killed
 * by signal 1..127 that no one in troupe sent it (SIGSEGV, SIGABRT, the
 * kernel's OOM killer's SIGKILL). Names: "exit_status", "signal". */
#define TR_REASON_EXIT_STATUS(status) (-(0x10000 + (int)(status)))
#define TR_REASON_SIGNAL(signo) (-(0x20000 + (int)(signo)))

/* The status of a TR_REASON_EXIT_STATUS reason, else 0. */
static inline int tr_reason_exit_status(int reason)
{
	return reason <= TR_REASON_EXIT_STATUS(1) &&
	               reason >= TR_REASON_EXIT_STATUS(255)
	           ? -reason - 0x10000
	           : 0;
}

/* The signal of a TR_REASON_SIGNAL reason, else 0. */
static inline int tr_reason_signal(int reason)
{
	return reason <= TR_REASON_SIGNAL(1) && reason >= TR_REASON_SIGNAL(127)
	           ? -reason - 0x20000
	           : 0;
}

/* Returns a static name for a reason: "normal", "shutdown", "kill",
 * "killed", "noproc", "noconnection", "memory_limit", "cpu_limit",
 * "exit_status", "signal", or "error" for user reasons. */
TR_API const char *tr_reason_name(int reason);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */
/* ------------------------------------------------------------------------ */

/* A message is a type tag plus `size` bytes of payload. Payload bytes start
 * 16-byte aligned, so a receiver may read a struct straight out of `data`.
 *
 * Messages are made by the runtime only (tr_port_recv, handle's argument),
 * never by the user, so the runtime keeps what it needs to queue one (its
 * mailbox link and reserved words) in a header of its own before this
 * struct, out of the ABI: that header may change between releases, the
 * offsets of the fields below may not. `_flags` is the runtime's too (it
 * fills what would be padding); leave it alone. A message handed to a
 * behaviour's handle callback is borrowed: it stays valid until the
 * callback returns and must not be freed or modified. */
typedef struct tr_msg {
	uint64_t ref;    /* request/reply/timer/blocking-job reference, or 0 */
	tr_pid sender;   /* the sending actor, or TR_PID_NONE */
	uint32_t type;   /* the type tag given by the sender */
	uint32_t size;   /* payload size in bytes */
	uint32_t _flags; /* runtime: size class and delivery flags */
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

/* The error code a TR_MSG_REFUSED message carries (a negative TR_E* code,
 * the payload's int32_t), or 0 when `m` is NULL, of another type, or
 * carries none that could be one (a refusal is never a success). For
 * actors that use tr_request and get a refusal as the reply. Any thread. */
TR_API int tr_refusal_code(const tr_msg *m);

/* Payload of a tr_run_blocking() result message (its type is chosen by the
 * caller of tr_run_blocking, its `ref` is the job's reference). */
typedef struct tr_blocking_result {
	void *result; /* what the blocking function returned */
} tr_blocking_result;

/* ------------------------------------------------------------------------ */
/* Runtime                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct tr_runtime tr_runtime;

/* The context of a running actor, handed to each callback (see Actors). */
typedef struct tr_ctx tr_ctx;

/* Options of a runtime. Versioned: fill with tr_runtime_opts_init. */
typedef struct tr_runtime_opts {
	uint32_t struct_size;      /* sizeof(tr_runtime_opts), by the _init */
	unsigned schedulers;       /* scheduler threads, at most
	                            * TR_MAX_SCHEDULERS; 0 = one per CPU the
	                            * process may use: its affinity mask and
	                            * its cgroup CPU quota (tr_cpus_available),
	                            * up to TR_MAX_SCHEDULERS */
	bool pin;                  /* pin scheduler i to the (i % n)-th of the
	                            * n CPUs in the affinity mask of the thread
	                            * that starts the runtime */
	unsigned blocking_threads; /* threads for tr_run_blocking at most,
	                            * started as jobs need them; 0 = 4 */
	uint32_t max_actors;       /* capacity of the actor table; 0 = 16 Mi.
	                            * Address space is reserved up front, memory
	                            * is touched only as actors are spawned. */
	size_t max_msg_size;       /* largest payload accepted; 0 = 64 MiB */
	uint32_t batch;            /* messages one actor handles per turn
	                            * before others get the core; 0 = 100 */
	uint32_t spin_us;          /* how long an idle scheduler looks for work
	                            * before it parks; 0 = 100 us */
} tr_runtime_opts;

/* The size of the first version of tr_runtime_opts. */
#define TR_RUNTIME_OPTS_V1_SIZE TR_STRUCT_END(tr_runtime_opts, spin_us)

/* The most schedulers this version of the library runs; not part of any
 * struct's layout, so a later version may raise it. */
#define TR_MAX_SCHEDULERS 64

/* Fills `opts` with the defaults (all zero) and sets its struct_size. */
static inline void tr_runtime_opts_init(tr_runtime_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = (uint32_t)sizeof(*opts);
}

/* Starts a runtime and its threads. `opts` may be NULL for the defaults.
 * Errors: TR_EINVAL (rtp NULL, opts not initialised (struct_size 0 or
 * below TR_RUNTIME_OPTS_V1_SIZE), too many schedulers, batch of 0 after
 * defaults), TR_ENOTSUP (opts from a newer troupe sets an option this
 * library does not have), TR_ENOMEM (memory or threads could not be had;
 * nothing is left behind). Several runtimes may live in one process. */
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

/* The number of CPUs this process may use, which is how many schedulers a
 * runtime started with schedulers = 0 runs (before the TR_MAX_SCHEDULERS
 * cap): the CPUs of the calling thread's affinity mask (taskset, a
 * cpuset cgroup), fewer if a cgroup CPU quota allows less (cgroup v2
 * cpu.max, v1 cpu.cfs_quota_us over cpu.cfs_period_us, of the process's
 * cgroup and its parents; a container's --cpus, a Kubernetes CPU limit),
 * the quota rounded up (1.5 CPUs: 2). Always at least 1; a limit that
 * cannot be read counts as none. For programs that size other things by
 * it or show it (a --schedulers flag's default); it reads /proc and the
 * cgroup files at each call, so it sees a changed mask or quota, and is
 * not for a hot path. No environment variable changes it: a program that
 * wants another count passes it in tr_runtime_opts.schedulers. Any
 * thread. */
TR_API unsigned tr_cpus_available(void);

/* Counters, read without stopping the runtime (each figure is exact when the
 * runtime is quiescent, a recent value otherwise). Versioned: set
 * struct_size with tr_runtime_stats_init before each get. */
typedef struct tr_runtime_stats {
	uint32_t struct_size;    /* sizeof(tr_runtime_stats), by the _init */
	uint64_t actors_alive;   /* spawned and not yet exited */
	uint64_t actors_spawned; /* since start */
	uint64_t msgs_sent;      /* accepted by a live mailbox */
	uint64_t msgs_dropped;   /* refused: dead pid, or arrived after exit */
	uint64_t steals;         /* actors taken from another scheduler */
	uint64_t parks;          /* times a scheduler went to sleep */
	uint64_t crashes; /* actors that exited with a non-normal reason */
	uint64_t turns;   /* actor turns run, all schedulers together */
	/* Version 2: what waits, now. */
	uint64_t global_queue;     /* runnable actors in the global queue */
	uint64_t timers_armed;     /* timers waiting to fire */
	uint64_t blocking_jobs;    /* tr_run_blocking jobs queued or running */
	uint32_t blocking_threads; /* threads of the blocking pool, now */
	uint32_t blocking_max;     /* the pool's bound (blocking_threads) */
} tr_runtime_stats;

/* The size of the first version of tr_runtime_stats. */
#define TR_RUNTIME_STATS_V1_SIZE TR_STRUCT_END(tr_runtime_stats, turns)
/* The size of the second. */
#define TR_RUNTIME_STATS_V2_SIZE TR_STRUCT_END(tr_runtime_stats, blocking_max)

/* Zeroes `st` and sets its struct_size. */
static inline void tr_runtime_stats_init(tr_runtime_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills the fields of `st` that fit in its struct_size (never a byte past
 * it); struct_size itself is left as it is. Thread-safe. Errors: TR_EINVAL
 * (NULL, struct_size 0 or below TR_RUNTIME_STATS_V1_SIZE). */
TR_API int tr_runtime_stats_get(tr_runtime_stats *st, tr_runtime *rt);

/* Counters of one scheduler thread, for spotting an imbalance. Versioned:
 * set struct_size with tr_sched_stats_init. */
typedef struct tr_sched_stats {
	uint32_t struct_size;  /* sizeof(tr_sched_stats), by the _init */
	uint64_t turns;        /* actor turns run */
	uint64_t steals;       /* actors taken from another scheduler */
	uint64_t parks;        /* times it went to sleep */
	uint64_t msgs_sent;    /* accepted by a live mailbox, sent from it */
	uint64_t msgs_dropped; /* sends from it that were refused */
	uint64_t spawned;      /* actors spawned from it */
	uint64_t exited;       /* actors that exited on it */
	uint64_t crashes;      /* of which with a non-normal reason */
	/* Version 2. */
	uint64_t parked_ns; /* time spent asleep since start (the sleep in
	                     * progress included): its load over an interval
	                     * is 1 - d(parked_ns) / d(time) */
	uint32_t run_queue; /* actors in its run queue, now */
} tr_sched_stats;

/* The size of the first version of tr_sched_stats. */
#define TR_SCHED_STATS_V1_SIZE TR_STRUCT_END(tr_sched_stats, crashes)
/* The size of the second. */
#define TR_SCHED_STATS_V2_SIZE TR_STRUCT_END(tr_sched_stats, run_queue)

/* Zeroes `st` and sets its struct_size. */
static inline void tr_sched_stats_init(tr_sched_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Fills the fields of `st` that fit in its struct_size with the counters
 * of scheduler `i` (0 .. tr_runtime_schedulers(rt) - 1). Work done by
 * plain threads (tr_post, timers, blocking results, the node's threads)
 * counts in tr_runtime_stats only. Thread-safe. Errors: TR_EINVAL (NULL,
 * struct_size 0 or below TR_SCHED_STATS_V1_SIZE, `i` out of range). */
TR_API int tr_runtime_sched_stats_get(
    tr_sched_stats *st, tr_runtime *rt, unsigned i);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

/* The runtime's log follows OTP's logger: each entry is an event with a
 * level, a text, metadata (the actor it is about, its registered name and
 * behaviour, the node) and, for reports, structured fields, so that one
 * handler can print readable lines and another write JSON. The runtime's
 * own reports are events too: an actor that crashes produces a
 * "crash_report" (level error), the supervisors "supervisor_report"s.
 *
 * One handler per runtime receives every event at or above the runtime's
 * level (more severe). The default writes tr_log_format_text's line to
 * stderr. Handlers run on the thread that logs (a scheduler, the node's
 * threads, a plain thread), possibly on several at once, so they must be
 * thread-safe; they must not block for long, and must not log themselves.
 * The handler and the level may be changed at any time (a thread that was
 * calling the old handler may finish that call after the change). */

/* Levels, most severe first (syslog's and OTP's). */
enum {
	TR_LOG_EMERGENCY = 0,
	TR_LOG_ALERT = 1,
	TR_LOG_CRITICAL = 2,
	TR_LOG_ERROR = 3,
	TR_LOG_WARNING = 4,
	TR_LOG_NOTICE = 5,
	TR_LOG_INFO = 6,
	TR_LOG_DEBUG = 7,
};

/* "emergency", "alert", "critical", "error", "warning", "notice", "info",
 * "debug"; "unknown" for other values. */
TR_API const char *tr_log_level_name(int level);

/* A structured field of an event: a key and a typed value (made with
 * tr_log_str, tr_log_int, ... below). */
enum {
	TR_LOG_F_STR = 0, /* v.s: a NUL-terminated string (NULL: "") */
	TR_LOG_F_INT,     /* v.i */
	TR_LOG_F_UINT,    /* v.u */
	TR_LOG_F_BOOL,    /* v.b */
	TR_LOG_F_PID,     /* v.pid, rendered "<node.slot.gen>" */
	TR_LOG_F_DOUBLE,  /* v.d */
};

typedef struct tr_log_field {
	const char *key; /* ASCII, no quotes or spaces (a JSON key as is) */
	uint32_t kind;   /* TR_LOG_F_* */
	union {
		const char *s;
		int64_t i;
		uint64_t u;
		bool b;
		tr_pid pid;
		double d;
	} v;
} tr_log_field;

static inline tr_log_field tr_log_str(const char *key, const char *s)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_STR;
	f.v.s = s;
	return f;
}

static inline tr_log_field tr_log_int(const char *key, int64_t i)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_INT;
	f.v.i = i;
	return f;
}

static inline tr_log_field tr_log_uint(const char *key, uint64_t u)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_UINT;
	f.v.u = u;
	return f;
}

static inline tr_log_field tr_log_bool(const char *key, bool b)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_BOOL;
	f.v.b = b;
	return f;
}

static inline tr_log_field tr_log_pid(const char *key, tr_pid pid)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_PID;
	f.v.pid = pid;
	return f;
}

static inline tr_log_field tr_log_double(const char *key, double d)
{
	tr_log_field f;
	f.key = key;
	f.kind = TR_LOG_F_DOUBLE;
	f.v.d = d;
	return f;
}

/* A log event. Everything it points to is borrowed: valid during the
 * handler call only (copy what must be kept). Versioned: an event to emit
 * is filled with tr_log_event_init; a handler gets one whose struct_size
 * is the library's (read a field added after the first version only when
 * TR_STRUCT_HAS says it is there). */
typedef struct tr_log_event {
	uint32_t struct_size;  /* sizeof(tr_log_event), by the _init */
	int level;             /* TR_LOG_* */
	const char *domain;    /* what kind of event: "log" for tr_logf and
	                        * tr_log lines, "crash_report",
	                        * "supervisor_report", or an application's
	                        * own; NULL when emitting means "log" */
	const char *text;      /* the event as one line of text, complete in
	                        * itself (a line handler gets exactly this);
	                        * never NULL in a handler */
	uint64_t time_us;      /* wall clock, microseconds since the epoch;
	                        * 0 when emitting means "now" */
	tr_pid pid;            /* the actor the event is about, or none */
	const char *name;      /* its registered name, or NULL */
	const char *behaviour; /* its behaviour's name, or NULL */
	const char *node;      /* this node's name, or NULL (no node) */
	const tr_log_field *fields; /* the report's fields, or NULL */
	size_t nfields;
} tr_log_event;

/* The size of the first version of tr_log_event. */
#define TR_LOG_EVENT_V1_SIZE TR_STRUCT_END(tr_log_event, nfields)

/* Zeroes `ev` (domain "log", time now, no metadata), sets its struct_size
 * and its level. */
static inline void tr_log_event_init(tr_log_event *ev, int level)
{
	memset(ev, 0, sizeof(*ev));
	ev->struct_size = (uint32_t)sizeof(*ev);
	ev->level = level;
}

/* An event handler. */
typedef void (*tr_log_handler_fn)(void *user, const tr_log_event *ev);

/* Installs `fn` as the runtime's handler (NULL: the default, text lines
 * on stderr). Replaces a line handler set with tr_runtime_set_log. */
TR_API void tr_runtime_set_logger(
    tr_runtime *rt, tr_log_handler_fn fn, void *user);

/* A line handler: gets each event's `text` only. */
typedef void (*tr_log_fn)(void *user, const char *line);

/* Installs a line handler (NULL: the default handler), for users of the
 * line-based log: every event reaches `fn` as its text, which for the
 * runtime's crash reports is the line "CRASH REPORT pid=<n.s.g> name=...
 * behaviour=... reason=N (name: text) in=...". Replaces an event handler
 * set with tr_runtime_set_logger. */
TR_API void tr_runtime_set_log(tr_runtime *rt, tr_log_fn fn, void *user);

/* Events less severe than `level` are dropped before anything is
 * formatted. The default is TR_LOG_INFO. Thread-safe. */
TR_API void tr_runtime_set_log_level(tr_runtime *rt, int level);

/* Whether an event of `level` would reach the handler now. Thread-safe. */
TR_API bool tr_log_enabled(const tr_runtime *rt, int level);

/* Emits an event (domain "log") whose text is formatted like printf, with
 * no actor metadata (the node's is filled in). Thread-safe as far as the
 * handler is. */
TR_API void tr_logf(tr_runtime *rt, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* tr_logf with a va_list, for wrappers. */
TR_API void tr_vlogf(tr_runtime *rt, int level, const char *fmt, va_list ap);

/* tr_logf from an actor: the event carries the running actor's pid,
 * registered name and behaviour name. */
TR_API void tr_ctx_logf(tr_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Emits a structured event as given (made with tr_log_event_init): NULL
 * domain means "log", NULL text "", time 0 now, node NULL this node's
 * name. The level filter applies. This is how reports are made (a
 * supervisor's, an application's). An event whose struct_size is 0 or
 * below TR_LOG_EVENT_V1_SIZE, or that sets a field this library does not
 * know, is dropped (there is no error to return). Thread-safe as far as
 * the handler is. Nothing is kept. */
TR_API void tr_log_emit(tr_runtime *rt, const tr_log_event *ev);

/* tr_log_emit from an actor: where `ev` leaves them unset (pid none, name
 * or behaviour NULL) the running actor's pid, registered name and
 * behaviour name are filled in. A supervisor emits its reports with it. */
TR_API void tr_log_emit_ctx(tr_ctx *ctx, const tr_log_event *ev);

/* Writes one line through the log, as before events existed (an event of
 * domain "log" and level warning: the lines written so are reports of
 * something amiss, such as a node's refusals), so existing callers and
 * line handlers see the same lines. Thread-safe as far as the handler
 * is. */
TR_API void tr_log(tr_runtime *rt, const char *line);

/* Renders `ev` into `buf` (`cap` bytes, NUL-terminated when cap > 0) as
 * the default handler prints it, one line without a newline:
 *   2025-01-31T12:00:00.123456Z info <0.5.1> worker.1: the text
 *   2025-01-31T12:00:00.123456Z error [crash_report] CRASH REPORT ...
 * time (UTC), level, then for a "log" event its actor's pid and name when
 * it has them (its text does not name them), for a report its domain in
 * brackets (its text names what it is about), then the text. Returns the
 * length the whole line has, as snprintf does (truncated when >= cap).
 * NULL, or an event whose struct_size is bad (see tr_log_emit), renders
 * as the empty string. */
TR_API int tr_log_format_text(char *buf, size_t cap, const tr_log_event *ev);

/* Renders `ev` as one JSON object without a newline: "time" (RFC 3339,
 * UTC, microseconds), "level", "domain", "text", then "pid", "name",
 * "behaviour" and "node" when set, and "fields" (an object of the report's
 * fields) when there are any. Strings are escaped as JSON requires.
 * Returns the length as tr_log_format_text. */
TR_API int tr_log_format_json(char *buf, size_t cap, const tr_log_event *ev);

/* ------------------------------------------------------------------------ */
/* Actors                                                                    */
/* ------------------------------------------------------------------------ */

/* A tr_ctx (declared above) is valid only during the callback it was
 * handed to, on that thread. */

/* A behaviour: what an actor does. All callbacks run on a scheduler thread,
 * one at a time per actor; they must not block (use tr_run_blocking).
 *
 * init: optional. Runs as the actor's first turn, before any message. It
 *   receives the spawn argument and stores the actor's state in `*state`
 *   (initially the argument itself). Return TR_OK, a reason (> 0) to
 *   crash at once, or TR_INIT_IGNORE (below): with a reason or
 *   TR_INIT_IGNORE terminate is not called, so init frees what it
 *   allocated (OTP's {stop, Reason} and ignore). An init that returns
 *   TR_OK has initialised the actor, even if it called tr_exit: the actor
 *   then ends without handling a message, and terminate runs with the
 *   state init stored (OTP would skip terminate; in C it frees the
 *   state).
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

/* Options of a spawn. Versioned: fill with tr_spawn_opts_init. */
typedef struct tr_spawn_opts {
	uint32_t struct_size; /* sizeof(tr_spawn_opts), by the _init */
	uint32_t flags;       /* TR_SPAWN_* ; other bits are refused */
	int *init_reason; /* optional: with TR_SPAWN_SYNC_INIT, where to store
	                   * the reason init failed with */
} tr_spawn_opts;

/* The size of the first version of tr_spawn_opts. */
#define TR_SPAWN_OPTS_V1_SIZE TR_STRUCT_END(tr_spawn_opts, init_reason)

/* Fills `opts` with the defaults (no flags) and sets its struct_size. */
static inline void tr_spawn_opts_init(tr_spawn_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = (uint32_t)sizeof(*opts);
}

/* Spawns an actor running `b` with spawn argument `arg` and stores its pid
 * in `*pid` (which may be NULL). The actor runs init on its first turn,
 * soon after, on the calling scheduler when called from an actor (or at
 * once on the calling thread with TR_SPAWN_SYNC_INIT: then TR_EINIT means
 * init failed, the actor never existed for anyone else, and its reason is
 * in *opts->init_reason). `b` must
 * stay valid for the actor's lifetime (a static const struct is usual).
 * `opts` may be NULL. Ownership of `arg` passes to the actor on TR_OK (init
 * always runs, even if the runtime stops first); on error the caller keeps
 * it. Errors: TR_EINVAL (rt or b NULL, b->handle NULL, opts not
 * initialised (struct_size 0 or below TR_SPAWN_OPTS_V1_SIZE), unknown bits
 * in opts->flags), TR_ENOTSUP (opts from a newer troupe sets an option this
 * library does not have), TR_ECLOSED (the runtime is stopping), TR_ENOMEM
 * (no memory, or max_actors actors alive). Thread-safe. */
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
 * Calling it again replaces the reason. From an init that then returns
 * TR_OK it ends the actor before any message, and terminate still runs
 * with the state init stored (see tr_behaviour). */
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
 * exits), as in Erlang. A pid of another node that is not connected
 * cannot be reached: the link is made (TR_OK) and fires at once, with an
 * exit signal noconnection, as it would have had the connection been lost
 * after it was made. Linking to self does nothing. */
TR_API int tr_link(tr_ctx *ctx, tr_pid pid);

/* Removes the link with `pid`, if any. After it returns, no exit signal
 * from that link reaches the running actor, even one already in flight.
 * Errors: TR_EINVAL. */
TR_API int tr_unlink(tr_ctx *ctx, tr_pid pid);

/* Monitors `pid`: when it exits, the running actor gets a TR_MSG_DOWN
 * message carrying `*ref` and the reason. Monitors stack: each call is a
 * new one with its own reference. A target that is not alive yields DOWN
 * with reason noproc at once (the call still returns TR_OK), and one on a
 * node that is not connected DOWN noconnection (noproc for a stale pid of
 * an earlier incarnation of a node that is connected again), as in
 * Erlang. Errors: TR_EINVAL, TR_ENOMEM. */
TR_API int tr_monitor(tr_ctx *ctx, uint64_t *ref, tr_pid pid);

/* Removes a monitor. After it returns no DOWN for `ref` is delivered.
 * Errors: TR_ENOENT (no such monitor: already fired or removed). */
TR_API int tr_demonitor(tr_ctx *ctx, uint64_t ref);

/* Turns trapping of exit signals on or off; returns the previous setting. */
TR_API bool tr_trap_exit(tr_ctx *ctx, bool on);

/* Sends `pid` an exit signal with `reason` (Erlang's exit/2), from the
 * running actor when called from one, else from no one. TR_REASON_KILL
 * cannot be trapped: the target dies with TR_REASON_KILLED. TR_REASON_NORMAL
 * is ignored by a target that does not trap exits, except when the target
 * is the caller itself (exit(self(), normal)): it then ends with reason
 * normal once its callback returns (after the messages ahead of the
 * signal in its mailbox), and one that traps exits gets the TR_MSG_EXIT
 * message instead, as in Erlang. Other reasons kill a non-trapping
 * target with that reason. Errors: TR_EINVAL, TR_ENOPROC. Thread-safe. */
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

/* Calls between actors (gen_server:call from a gen_server). An actor must
 * not block, so the answer comes back as a continuation: `fn` runs later
 * in the caller, on its thread, in place of handle (the message that ends
 * the call is not handed to handle), with the caller's state and exactly
 * one outcome in `status`:
 *
 *   TR_OK         `reply` is the callee's reply (tr_reply), borrowed for
 *                 the length of the call;
 *   TR_ETIMEDOUT  no answer within the timeout; `reply` is NULL. A reply
 *                 that comes later is dropped;
 *   TR_ENOPROC    the callee was not alive, or exited (or its node was
 *                 lost) before it replied: `reply` is the TR_MSG_DOWN
 *                 message whose tr_exit_info gives the reason
 *                 (noconnection for a lost node), or NULL when there was
 *                 no DOWN (a call by name that found nobody to call);
 *   a TR_E* code  the callee's node refused the request before delivering
 *                 it; `reply` is the TR_MSG_REFUSED message. (Or a call
 *                 by name could not try again: TR_ENOMEM, or TR_ECLOSED
 *                 while the runtime stops; `reply` is NULL.)
 *
 * The callee is monitored for the length of the call, as gen_server:call
 * does, so a callee that dies answers at once; the monitor is removed
 * before `fn` runs (no DOWN of it reaches handle). `fn` returns as handle
 * does: 0 to go on, a reason (> 0) to crash. It may start calls itself.
 * If the caller exits first, its pending calls are forgotten and `fn` is
 * not called. Requests and replies are ordinary messages for the callee:
 * it answers with tr_reply, whatever kind of caller asked. */
typedef int (*tr_call_fn)(
    tr_ctx *ctx, void *state, int status, const tr_msg *reply, void *arg);

/* Calls `to` (a local or remote pid) from the running actor with a copy of
 * `data` and tag `type`; `fn(ctx, state, status, reply, arg)` runs once
 * with the outcome, after at most `timeout_ms` (negative: no deadline).
 * The call's reference goes to `*ref` (may be NULL), for tr_call_cancel.
 * Errors (then `fn` is never called): TR_EINVAL (ctx or fn NULL, `to`
 * none, data NULL with size > 0, a reserved type), TR_EMSGSIZE,
 * TR_ENOMEM, TR_ENOPROC (`to` is not alive, or its node is not
 * connected), TR_EAGAIN (a remote target that said BUSY, or a full queue
 * to its node), TR_ECLOSED (the runtime is stopping and cannot arm the
 * timeout). */
TR_API int tr_call_then(tr_ctx *ctx, uint64_t *ref, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms, tr_call_fn fn,
    void *arg);

/* tr_call_then by registered name: `name` on node `node_name`, or on this
 * node when `node_name` is NULL or this node's own name (Erlang's
 * gen_server:call(Name, ...) and gen_server:call({Name, Node}, ...)). The
 * name is resolved when the call starts, on the node that holds it (one
 * round trip for another node's name), and the pid found is called and
 * monitored. The call resolves again and retries, until the deadline,
 * when nobody holds the name (a server that its supervisor is restarting
 * has no name for a moment) and when the pid found turns out to be dead
 * before the request reached it (DOWN noproc: the request was never
 * seen, so sending it again cannot run it twice); tries are spaced 1 ms,
 * then twice as long each time, up to 100 ms apart. A callee that dies
 * after it got the request, or with the request still in its mailbox,
 * ends the call with TR_ENOPROC: it is not retried. When the deadline
 * passes with the request sent and unanswered the status is
 * TR_ETIMEDOUT; when it passes before anyone was found to send it to
 * (between tries, or with a lookup on another node unanswered),
 * TR_ENOPROC with a NULL reply.
 * Without a deadline (timeout_ms < 0) a name that never comes is waited
 * for, so give calls by name a timeout. Errors: as tr_call_then, plus
 * TR_EINVAL for a NULL, empty or too long name, TR_ENOPROC when
 * `node_name` names a node that is not connected (nothing is retried
 * then, as OTP's {nodedown, Node}; a node lost during a lookup ends the
 * call with TR_ENOPROC and a NULL reply), TR_ENOTSUP for another node's
 * name when this runtime is not a node. */
TR_API int tr_call_named_then(tr_ctx *ctx, uint64_t *ref, const char *node_name,
    const char *name, uint32_t type, const void *data, size_t size,
    int64_t timeout_ms, tr_call_fn fn, void *arg);

/* Forgets the running actor's call or request `ref` (from tr_call_then,
 * tr_call_named_then or tr_request): its continuation is not called, its
 * timeout is cancelled, the callee is no longer monitored, and a reply
 * that still comes is dropped. Errors: TR_EINVAL, TR_ENOENT (no such call
 * pending: it ended, or was never made by this actor). */
TR_API int tr_call_cancel(tr_ctx *ctx, uint64_t ref);

/* ------------------------------------------------------------------------ */
/* Deferred messages (a save queue)                                          */
/* ------------------------------------------------------------------------ */

/* Sets the message being handled aside without copying it, as gen_statem
 * postpones an event: handle returns, the next message comes, and the
 * deferred one waits in the actor's save queue until tr_replay. Call it
 * from handle with the `msg` it was given (from a call's continuation it
 * is refused); the message then stays valid, owned by the runtime, until
 * it is handled again. Deferred messages are kept in the order they
 * arrived, without a bound, and freed if the actor exits. Errors:
 * TR_EINVAL (NULL, or `msg` is not the message being handled). */
TR_API int tr_defer(tr_ctx *ctx, const tr_msg *msg);

/* Once the current callback returns, hands every deferred message to
 * handle again, oldest first, before any message still in the mailbox
 * (gen_statem retries postponed events after a state change). A replayed
 * message may be deferred again (it keeps its place among the deferred
 * ones). tr_replay during a replay starts again from the oldest deferred
 * message once the one being handled returns. Returns the number of
 * messages that will be replayed (0: nothing deferred, nothing done). */
TR_API uint32_t tr_replay(tr_ctx *ctx);

/* The number of messages in the running actor's save queue. */
TR_API uint32_t tr_deferred(const tr_ctx *ctx);

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

/* Cancels a timer. TR_OK: it will not fire again, and no message of it
 * reaches its target after this returns: a message it sent to a local
 * actor or port that is not handled yet is dropped from the mailbox when
 * its turn comes. So an actor that arms a timer as a deadline (Erlang's
 * receive ... after) and cancels it when the awaited message comes never
 * sees the timer's message afterwards, whatever the race. (A message to a
 * pid of another node is out of reach once sent.) TR_ENOENT: its message
 * was already handled (or is being handled: a one-shot timer cancelled by
 * the handler of its own message), it was cancelled already, or the
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

/* Whether `name` is one the runtime takes as a name (registered actors,
 * behaviours, supervisor child ids): 1..TR_NAME_MAX bytes; NULL and ""
 * are not. */
static inline bool tr_name_valid(const char *name)
{
	if (name == NULL || name[0] == '\0')
		return false;
	for (size_t i = 1; i <= TR_NAME_MAX; i++)
		if (name[i] == '\0')
			return true;
	return false; /* strnlen is POSIX, not C11: counted here */
}

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
