/*
 * Internal structures of the local runtime, shared by its modules.
 *
 * Fields are grouped by the thread that writes them, and a group written by
 * other threads starts its own cache line (DESIGN.md, performance design).
 */
#ifndef TR_RT_H
#define TR_RT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dist/dist.h"
#include "platform/platform.h"
#include "troupe/info.h"
#include "troupe/troupe.h"

typedef struct tr__actor tr__actor;
typedef struct tr__sched tr__sched;
typedef struct tr__ext tr__ext;
typedef struct tr__timers tr__timers;
typedef struct tr__bpool tr__bpool;
typedef struct tr__registry tr__registry;
typedef struct tr__behaviours tr__behaviours;

/* ---- messages ----------------------------------------------------------- */

/* tr_msg._flags: the low byte is the pool class, the rest delivery flags.
 * Bits 8 to 12 (TR__MF_REPLY .. TR__MF_VIALINK) and the signal kinds
 * (TR__SIG_*) cross to the distribution layer and are defined in
 * dist/dist.h; those below are the runtime's own. */
#define TR__MF_CLASS 0xffu
#define TR__MF_REMOTE                                                          \
	(1u << 13) /* counted in its target's remote backlog                   \
	            * (tr__dist_inject_bounded_locked) */
#define TR__MF_TIMER                                                           \
	(1u << 14) /* a timer's message: its header's rsv holds the timer,     \
	            * which must still be live when it is handled (timer.c) */
#define TR__MF_INSPECT                                                         \
	(1u << 15) /* a request of type TR_MSG_ACTOR_INSPECT, which the        \
	            * runtime answers for its target (inspect.c); set where    \
	            * requests are made (tr__req_mark) */
#define TR__MF_SYSTEM                                                          \
	(TR__MF_REPLY | TR__MF_RTIMEO | TR__MF_SIGNAL | TR__MF_DOWN |          \
	    TR__MF_TIMER | TR__MF_INSPECT)

/* Marks the request `m` (its reference and sender set, about to be sent)
 * for the runtime when it asks for an actor's report: done where requests
 * are made (tr_request, tr_call, the calls' tries, tr_actor_inspect), so
 * that the per-message path tests no type, only the flags it tests
 * anyway. */
static inline void tr__req_mark(tr_msg *m)
{
	if (TR_UNLIKELY(m->type == TR_MSG_ACTOR_INSPECT))
		m->_flags |= TR__MF_INSPECT;
}

/* A call's next try (call.c): a timer message to the caller itself, with
 * TR__MF_RTIMEO and the call's reference. */
#define TR__MSG_CALL_RETRY 0xFFFF0020u

/* The runtime's header of a message, right before its public part (the
 * tr_msg a pointer names): the mailbox link word and a reserved word (a
 * timer's id, for TR__MF_TIMER). Its size keeps the public part, and so
 * the payload, 16-byte aligned in a 64-byte aligned block. */
typedef struct tr__mhdr {
	void *next;
	uint64_t rsv;
} tr__mhdr;
_Static_assert(sizeof(tr__mhdr) % 16 == 0,
    "the payload stays 16-byte aligned");

static inline tr__mhdr *tr__mh(const tr_msg *m)
{
	return (tr__mhdr *)(void *)((char *)(uintptr_t)m - sizeof(tr__mhdr));
}

/* The message whose block (header included) starts at `block`. */
static inline tr_msg *tr__msg_at(void *block)
{
	return (tr_msg *)(void *)((char *)block + sizeof(tr__mhdr));
}

/* The next message of a list the holder keeps itself (not a mailbox:
 * those use tr__link's atomics). */
static inline tr_msg *tr__msg_next(const tr_msg *m)
{
	return tr__mh(m)->next;
}

static inline void tr__msg_set_next(tr_msg *m, tr_msg *next)
{
	tr__mh(m)->next = next;
}

/* Bytes of a message's block before its payload. */
#define TR__MSG_HDR (sizeof(tr__mhdr) + offsetof(tr_msg, data))

/* ---- actors ------------------------------------------------------------- */

enum {
	TR__A_NEW = 0, /* spawned, init not yet run */
	TR__A_RUNNING, /* initialised */
	TR__A_EXITING, /* tr_exit called; dies at the end of the callback */
	TR__A_DEAD,
	TR__A_REPLAY, /* running; tr_replay asked for the deferred messages to
	               * be handled again once the callback returns */
};

enum { TR__K_ACTOR = 0, TR__K_PORT = 1 };

/* An actor: 128 bytes, two cache lines. */
struct tr__actor {
	/* Line 0: the mailbox head, swapped by every sender; the rest of the
	 * line is immutable after spawn, so senders reading it share the
	 * line they write anyway. */
	TR_CACHE_ALIGNED _Atomic uintptr_t mb_head; /* low bit: empty+idle */
	tr_pid pid;
	uint32_t kind;
	const tr_behaviour *b;
	tr_port *port;             /* kind == TR__K_PORT: the thread to wake */
	_Atomic uint32_t has_name; /* see registry.c */
	/* 1: tr_kill(KILL) seen (signal.c); 2: the actor's exit is under
	 * way (actor_exit: terminate runs, the pid is still live), set once
	 * it will never run another turn. Read by the listing (info.c). */
	_Atomic uint32_t kill_pending;
	/* Flow control of remote traffic (dist.h): bytes of TR__MF_REMOTE
	 * messages in the mailbox, added by the injecting thread before the
	 * push, taken by the thread running the actor once it has taken them
	 * out; and, when not 0, the backlog at which the distribution layer
	 * wants to hear that the actor drained. On this line because only
	 * threads that write mb_head anyway (injectors) and the owner touch
	 * them, and only for remote messages. */
	_Atomic uint32_t rin;
	_Atomic uint32_t rin_low;
	/* The mailbox's count of pushes, in two parts, so that no push pays
	 * a second locked instruction beside its exchange of mb_head when it
	 * wakes the actor (pingpong, rings, any request to an idle actor):
	 * mb_in counts the pushes that found the mailbox not idle, added by
	 * their senders after the exchange and before the link store
	 * (tr__mb_push, chain_push); mb_wakes counts, ahead of time, the
	 * push that will find it idle, by the owner each time it marks the
	 * mailbox idle (tr__mb_mark_idle, a plain store on the line its CAS
	 * just took). Pushes = mb_in + mb_wakes - (1 while idle); with
	 * `handled` below they give the mailbox's length to any thread
	 * (tr__mb_length). Both wrap. */
	_Atomic uint32_t mb_in;
	_Atomic uint32_t mb_wakes;

	/* Line 1: written only by the thread running the actor. */
	/* The mailbox stub: only its link word exists, but it is used
	 * through a tr_msg pointer, so it keeps tr_msg's alignment. */
	TR_CACHE_ALIGNED void *stub_next;
	tr_msg *mb_tail;
	void *state;      /* init argument until init has run */
	tr__actor *qnext; /* global run queue or retire list link */
	tr__ext *ext;     /* rarely used parts, allocated on demand */
	uint64_t retire_epoch;
	uint32_t status;
	int32_t reason;
	/* Messages taken from the mailbox (system messages included), by
	 * the thread running the actor: one release store per message, on
	 * its own line. Read by other threads with acquire, after which
	 * mb_in and mb_wakes count at least every message taken (a push's
	 * count happens before its link store, which the pop acquired; a
	 * wake's before the owner's later pops): the length never reads
	 * below zero (tr__mb_length). */
	_Atomic uint64_t handled;
};

_Static_assert(sizeof(struct tr__actor) == 128, "actor is two cache lines");
_Static_assert(offsetof(struct tr__actor, mb_wakes) + sizeof(uint32_t) <= 64,
    "the mailbox counters stay on the senders' line");
_Static_assert(offsetof(struct tr__actor, stub_next) == 64 &&
                   offsetof(struct tr__actor, handled) >= 64,
    "the owner's counter stays on line 1");

/* Parts of an actor most actors never use. */
struct tr__ext {
	struct tr__pending {
		uint64_t ref;  /* what the awaited answer carries */
		uint64_t uref; /* the caller's reference (timeouts carry it) */
		tr_timer timer;
		struct tr__call *call; /* NULL: a tr_request */
	} * pending; /* outstanding requests and calls (call.c) */
	uint32_t npending, cap_pending;
	uint32_t ncalls; /* of which calls with a continuation */
	bool in_cont;    /* a call's continuation is running */
	bool resaved;    /* the replayed message was deferred again */
	/* Deferred messages (tr_defer), oldest first, chained through
	 * their headers' link, and the one being handled again (tr_replay). */
	tr_msg *saved_head, *saved_tail;
	uint32_t nsaved;
	tr_msg *replaying;
	tr_pid *links; /* linked actors, each once */
	uint32_t nlinks, cap_links;
	struct tr__mon {
		uint64_t ref;
		tr_pid pid;
	} * watchers,  /* monitors on this actor: who to tell */
	    *watching; /* monitors this actor holds: on whom */
	uint32_t nwatchers, cap_watchers, nwatching, cap_watching;
	char exit_text[TR_REASON_TEXT_MAX];
};

/* A port: a mailbox owned by a plain thread (port.c). */
struct tr_port {
	tr_runtime *rt;
	tr__actor *a;
	TR_CACHE_ALIGNED _Atomic uint32_t wake; /* set by the sender that
	                                         * found the mailbox idle */
};

/* The context handed to callbacks: one per scheduler (and one per stopping
 * runtime), pointing at the actor being run. */
struct tr_ctx {
	tr__sched *s; /* NULL while the runtime is being torn down */
	tr_runtime *rt;
	tr__actor *a;
};

/* ---- scheduler ---------------------------------------------------------- */

#define TR__RQ_SIZE 256u
#define TR__SLOT_CACHE 512u

struct tr__sched {
	/* Written by the owner only. */
	tr_runtime *rt;
	unsigned idx;
	tr_ctx ctx;
	tr__actor *runnext; /* the actor the last send woke; see sched.c */
	uint32_t streak;    /* consecutive runs taken from runnext */
	uint32_t since_qs;  /* turns since the last quiescent state */
	uint64_t tick;      /* turns run, for the global-queue check */
	tr__actor *retire_head, *retire_tail;
	uint32_t nslots;
	uint32_t slots[TR__SLOT_CACHE];
	uint32_t seen_seq[TR_MAX_SCHEDULERS]; /* runnext-stuck detection */
	uint64_t rng;
	bool dist_dirty; /* sent to another node during this turn */
	bool gq_chunks_first; /* which part of the global queue to try first */
	pthread_t thread;

	/* Counters: written by the owner (plain load+store), read by stats. */
	TR_CACHE_ALIGNED _Atomic uint64_t n_turns, n_steals, n_parks, n_sent,
	    n_dropped, n_spawned, n_died, n_crashes;
	/* Time asleep: the sleeps that ended, and when the one in progress
	 * began (0: awake). Written by the owner around a park. */
	_Atomic uint64_t parked_ns, park_since;

	/* Epoch-based reclamation record: written by the owner, read by
	 * whoever advances the epoch. */
	TR_CACHE_ALIGNED _Atomic uint64_t epoch;
	_Atomic uint32_t online;
	_Atomic uint32_t turn_seq;     /* read by thieves, see steal() */
	/* The actor of this scheduler's current turn (while turn_seq is
	 * odd) or of its last one: one store by the owner at each turn's
	 * start, beside turn_seq (a line each turn writes anyway), read
	 * (compared, never dereferenced) by the listing (info.c) to tell
	 * "running". */
	_Atomic(tr__actor *) running;
	_Atomic uint32_t want_runnext; /* set by an idle thief, see steal() */

	/* Run queue: the owner pushes at rq_tail; the owner and thieves take
	 * from rq_head with a CAS. */
	TR_CACHE_ALIGNED _Atomic uint32_t rq_head;
	TR_CACHE_ALIGNED _Atomic uint32_t rq_tail;
	_Atomic(tr__actor *) rq_buf[TR__RQ_SIZE];

	/* Parking: 0 while asleep, set to 1 by the waker. */
	TR_CACHE_ALIGNED _Atomic uint32_t wake_word;
	/* When this scheduler next looks at the I/O set between turns. */
	uint64_t io_next_ns;
};

/* ---- epoch-based reclamation for threads that are not schedulers -------- */

#define TR__EXT_RECS 64u

typedef struct tr__ext_rec {
	TR_CACHE_ALIGNED _Atomic uint64_t epoch;
	_Atomic uint32_t active;
} tr__ext_rec;

/* ---- the runtime -------------------------------------------------------- */

struct tr_runtime {
	/* Immutable after start. */
	tr_runtime_opts opts;
	unsigned nsched;
	tr__sched **sched;
	_Atomic uintptr_t *pids; /* the actor table (see actor.c) */
	uint32_t pid_cap;
	uint32_t slot_cache_max; /* per scheduler, <= TR__SLOT_CACHE */
	/* The log (log.c): the handler, replaced as a whole by
	 * tr_runtime_set_log(ger) and read by every thread that logs. */
	_Atomic(struct tr__log_sink *) log_sink;
	_Atomic int log_level;
	/* The name of the node the runtime belongs to while a distribution
	 * layer is attached, or NULL (log metadata, calls by name): an
	 * immutable copy made at attach, kept, with those of earlier
	 * attaches, in node_names until the runtime stops (a thread that
	 * logs may still read one after a detach). */
	_Atomic(struct tr__node_name *) node_name;
	struct tr__node_name *node_names; /* attach/detach only */

	/* Shared, rarely written. */
	TR_CACHE_ALIGNED _Atomic uint32_t stopping; /* no new spawns */
	_Atomic uint32_t halted;                    /* schedulers gone */
	_Atomic uint64_t epoch;
	_Atomic uint64_t next_ref;

	/* Idle schedulers: a bit each, set while parked. */
	TR_CACHE_ALIGNED _Atomic uint64_t parked;
	_Atomic uint32_t nspinning;

	/* Global run queue (sched/gq.c): actors made runnable outside the
	 * schedulers, one by one on an intrusive list, and the overflow of
	 * full local queues, in chunks of pointers. Its lock is taken once
	 * per chunk moved, never by a thread that is not a scheduler (those
	 * push onto the inbox, gq_in), never on an actor-to-actor send. */
	TR_CACHE_ALIGNED _Atomic(tr__actor *) gq_in;
	TR_CACHE_ALIGNED pthread_mutex_t gq_lock;
	tr__actor *gq_head, *gq_tail;
	struct tr__gq_chunk *gc_head, *gc_tail, *gc_free;
	uint32_t ngc_free;
	_Atomic uint64_t gq_len;

	/* Free actor slots beyond the schedulers' caches (cold: one lock per
	 * batch of slots). */
	TR_CACHE_ALIGNED pthread_mutex_t slot_lock;
	uint32_t *slot_free;
	uint32_t nslot_free, cap_slot_free;
	uint32_t slot_hwm;

	/* Objects retired by threads that are not schedulers (closed ports),
	 * freed by schedulers after a grace period; cold. */
	TR_CACHE_ALIGNED pthread_mutex_t xretire_lock;
	tr__actor *xretire_head, *xretire_tail;
	_Atomic uint32_t xretire_n;

	/* Counters of threads that are not schedulers. */
	TR_CACHE_ALIGNED _Atomic uint64_t x_sent, x_dropped, x_spawned, x_died,
	    x_crashes;
	_Atomic uint64_t ports_alive;

	tr__ext_rec ext_recs[TR__EXT_RECS];

	/* The I/O set (sched/io.c): -1 until made. `io_ready` and
	 * `io_kick` are written before `io_ep` is published (release), and
	 * never again. `io_sleeper` is the index plus one of the scheduler
	 * asleep in the set's epoll_wait, or 0. */
	TR_CACHE_ALIGNED _Atomic int io_ep;
	_Atomic uint32_t io_sleeper;
	int io_kick;
	bool io_failed; /* making the set failed: not tried again */
	tr__io_ready_fn io_ready;
	pthread_mutex_t io_lock;

	/* The distribution layer, if any (dist.h). */
	_Atomic(const struct tr__dist_ops *) dist_ops;
	void *dist_arg;
	/* Bytes of remote messages in mailboxes, all actors together. */
	TR_CACHE_ALIGNED _Atomic uint64_t rin_total;

	tr__timers *timers;
	tr__bpool *bpool;
	tr__registry *registry;
	tr__behaviours *behaviours;
};

/* The scheduler the calling thread runs, if it is one of rt's. */
extern __thread tr__sched *tr__current;

/* Lets the distribution layer flush what the turn running on `s` sent to
 * other nodes, now (clears s->dist_dirty): at the turn's end, and before
 * a port received on a scheduler thread blocks (port.c), since a reply it
 * waits for may need what was sent. Only the thread of `s`. */
void tr__sched_dist_flush(tr__sched *s);

/* ---- internal functions (actor.c) ---------------------------------------- */

int tr__msg_new(
    tr_msg **mp, tr_runtime *rt, uint32_t type, const void *data, size_t size);
void tr__msg_free(tr_msg *m);
/* Looks up a local pid; only inside an EBR section (scheduler or ext). */
tr__actor *tr__lookup(tr_runtime *rt, tr_pid pid);
/* Delivers `m` (owned by the callee on TR_OK) to `to`. `s` is the calling
 * scheduler or NULL for any other thread (which must be in an ext
 * section). */
int tr__deliver(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *m);
/* tr__deliver from any thread, entering an ext section as needed. */
int tr__deliver_any(tr_runtime *rt, tr_pid to, tr_msg *m);
uint64_t tr__new_ref(tr_runtime *rt);
void tr__actor_reclaim(tr_runtime *rt, tr__sched *s, tr__actor *a);
void tr__actor_teardown(tr_runtime *rt, tr__actor *a);
tr__actor *tr__actor_new(tr_runtime *rt, tr__sched *s, uint32_t kind);
/* Marks a pid dead in the table (its slot's next generation). */
void tr__actor_unpublish(tr_runtime *rt, tr__actor *a);
void tr__run_actor(tr__sched *s, tr__actor *a);
uint32_t tr__slot_alloc(tr_runtime *rt, tr__sched *s);
void tr__slot_release(tr_runtime *rt, tr__sched *s, uint32_t slot);
/* Gives all of a scheduler's cached slots back (before it parks). */
void tr__slot_flush(tr_runtime *rt, tr__sched *s);

/* ---- internal functions (sched.c) ---------------------------------------- */

int tr__sched_start_all(tr_runtime *rt);
void tr__sched_join_all(tr_runtime *rt);
/* Makes `a` runnable: on s's queues when s is a scheduler, else on the
 * global queue, waking a parked scheduler if needed. */
void tr__schedule(tr_runtime *rt, tr__sched *s, tr__actor *a, bool hot);
void tr__ext_enter(tr_runtime *rt, unsigned *idx);
void tr__ext_exit(tr_runtime *rt, unsigned idx);
void tr__retire(tr_runtime *rt, tr__sched *s, tr__actor *a);
bool tr__all_parked(tr_runtime *rt);
unsigned tr__ext_active(tr_runtime *rt);
/* Takes `bytes` off the remote backlog of `a` (TR__MF_REMOTE messages it
 * has taken from its mailbox, each counted as tr__rin_size), and tells the distribution layer when the
 * backlog fell to the level it waits for. The thread running `a`. */
void tr__rin_taken(tr_runtime *rt, tr__actor *a, uint32_t bytes);
/* What a TR__MF_REMOTE message counts in a backlog (a layer asks
 * tr__dist_rin_size, dist/dist.h). */
static inline uint32_t tr__rin_size(const tr_msg *m)
{
	return m->size + (uint32_t)TR__MSG_HDR;
}
/* ---- internal functions (sched/io.c) ------------------------------------- */

struct epoll_event;

/* Sets up and tears down rt's I/O fields (the set itself is made on first
 * use, tr__io_set in dist.h). */
void tr__io_init(tr_runtime *rt);
void tr__io_fini(tr_runtime *rt);
/* Up to `max` events of the set, waiting at most `timeout_ms` (-1: until
 * one comes); the kick (tr__io_kick) is consumed and not returned. The
 * number of events, 0 if none or if rt has no set. */
int tr__io_wait(tr_runtime *rt, struct epoll_event *evs, int max,
    int timeout_ms);
/* Hands events of tr__io_wait to the set's user: a scheduler, online,
 * outside any turn. How many there were. */
unsigned tr__io_dispatch(
    tr_runtime *rt, const struct epoll_event *evs, int n);
/* Wakes the scheduler asleep in the set's epoll_wait. Any thread. */
void tr__io_kick(tr_runtime *rt);

/* Waits until every thread that was inside a scheduler turn or an ext
 * section when it was called has left it. Not from a scheduler. */
void tr__epoch_barrier(tr_runtime *rt);

/* ---- signals (signal.c) ----------------------------------------------------
 */

/* Status flags of an actor, above its state byte. */
#define TR__A_NOTERM 0x100u   /* init failed: terminate is not owed */
#define TR__A_TRAP 0x200u     /* trapping exits */
#define TR__A_NOREPORT 0x400u /* killed by a signal: no crash report */
#define TR__A_IGNORED 0x800u  /* init returned TR_INIT_IGNORE */

tr__ext *tr__ext_of(tr__actor *a);
/* Handles a system message; true if it is to be passed to handle. */
bool tr__sig_dispatch(tr__sched *s, tr__actor *a, tr_msg *m);
/* Sends the exit signals, DOWNs and demonitors of an exiting actor. */
void tr__sig_exit(tr_runtime *rt, tr__sched *s, tr__actor *a, int reason);
/* Empties the mailbox of an actor that has exited, answering link and
 * monitor requests in it with `reason` (noproc once it is gone). */
void tr__sig_drain(
    tr_runtime *rt, tr__sched *s, tr__actor *a, int reason, const char *text);
int tr__sig_spawn_bind(tr_runtime *rt, tr__actor *parent, tr__actor *child,
    bool link, uint64_t *mref);
void tr__sig_spawn_unbind(
    tr__actor *parent, tr__actor *child, bool link, uint64_t mref);
int tr__port_monitor(tr_runtime *rt, tr_pid port, tr_pid target, uint64_t *ref);
void tr__port_demonitor(
    tr_runtime *rt, tr_pid port, tr_pid target, uint64_t ref);
/* Spawns; parent (may be NULL) is the calling actor for link/monitor. */
int tr__spawn(tr_pid *pid, tr_runtime *rt, const tr_behaviour *b, void *arg,
    const tr_spawn_opts *opts, tr__actor *parent, bool link, uint64_t *mref);
/* A message for the runtime's own use: no size limit, any type. */
int tr__msg_new_sys(tr_msg **mp, uint32_t type, const void *data, size_t size);
/* Sends a signal from `from` (ref and payload optional). */
int tr__sig_send(tr_runtime *rt, tr__sched *s, tr_pid from, tr_pid to,
    uint32_t kind, uint32_t flags, uint64_t ref, const tr_exit_info *info);
/* tr_monitor and tr_demonitor for the actor `a`, run by the thread that
 * runs it (`s` may be NULL off the schedulers). */
int tr__monitor(
    tr_runtime *rt, tr__sched *s, tr__actor *a, tr_pid pid, uint64_t *ref);
void tr__demonitor(tr_runtime *rt, tr__sched *s, tr__actor *a, uint64_t ref);

/* ---- calls and requests (call.c) ----------------------------------------- */

/* A reply (TR__MF_REPLY) or a timer of a request or call (TR__MF_RTIMEO)
 * reached `a`: true if it goes on to handle (a tr_request's answer); false
 * if it was dropped (nobody waits for it) or taken by a call. */
bool tr__call_dispatch(tr__sched *s, tr__actor *a, tr_msg *m);
/* A DOWN that passed tr__sig_dispatch: true if it ended (or retried) one
 * of a's calls, which then took it; false if it goes on to handle. */
bool tr__call_down(tr__sched *s, tr__actor *a, tr_msg *m);
/* An exiting actor forgets its requests and calls (no continuation runs)
 * and cancels their timers. */
void tr__calls_free(tr_runtime *rt, tr__actor *a);

/* ---- timers, blocking pool, registry ------------------------------------- */

int tr__timers_init(tr_runtime *rt);
void tr__timers_fini(tr_runtime *rt); /* stops the thread */
void tr__timers_free(tr_runtime *rt);
uint64_t tr__timers_armed(tr_runtime *rt);
int tr__timer_arm(tr_runtime *rt, tr_timer *id, tr_pid to, tr_pid from,
    int64_t delay_ms, int64_t interval_ms, uint32_t type, uint32_t flags,
    uint64_t ref, const void *data, size_t size);
/* A message with TR__MF_TIMER was taken from a mailbox: true if its timer
 * is still live (it goes to handle), false if the timer was cancelled
 * since it was sent (it is dropped). Either way the message no longer
 * holds the timer. Any thread. */
bool tr__timer_take(tr_runtime *rt, const tr_msg *m);

int tr__bpool_init(tr_runtime *rt);
void tr__bpool_fini(tr_runtime *rt); /* runs queued jobs, stops */
void tr__bpool_free(tr_runtime *rt);
uint64_t tr__bpool_busy(tr_runtime *rt);
/* The pool's threads now, and its bound. */
void tr__bpool_threads(tr_runtime *rt, uint32_t *now, uint32_t *max);

int tr__registry_init(tr_runtime *rt);
void tr__registry_fini(tr_runtime *rt);
/* Drops the name of an exiting actor, copying it into `name` (of
 * TR_NAME_MAX + 1 bytes) for the crash report. */
void tr__registry_release(tr_runtime *rt, tr__actor *a, char *name);
/* Copies the registered name of the live actor `a` into `name` (of
 * TR_NAME_MAX + 1 bytes); false, with "" in `name`, if it has none. */
bool tr__registry_name_of(tr_runtime *rt, tr__actor *a, char *name);
/* The same by pid, for the supervisors (sup/core.h): false, with "", for
 * an actor without a name or not alive. */
bool tr__registry_name_pid(tr_runtime *rt, tr_pid pid, char *name);

/* ---- looking inside (info.c, inspect.c) ------------------------------------
 */

/* Answers the inspection request `m` (TR_MSG_ACTOR_INSPECT, just taken
 * from the mailbox of `a`) with a report, or a refusal for a malformed
 * one; drops it if it has no reference. Only the thread running `a` (`s`
 * NULL off the schedulers: a port's thread). */
void tr__inspect_answer(
    tr_runtime *rt, tr__sched *s, tr__actor *a, const tr_msg *m);
/* The state of the live actor `a` as another thread sees it, given the
 * actors the schedulers ran a moment ago (running[0..nrun)). Inside an
 * EBR section or on a scheduler. */
uint32_t tr__actor_state(
    tr__actor *a, tr__actor *const *running, unsigned nrun);
/* The behaviour name of `a` into `out` (TR_NAME_MAX + 1 bytes). */
void tr__actor_behaviour_name(const tr__actor *a, char *out);

/* ---- the log (log.c) ------------------------------------------------------
 */

struct tr__node_name {
	struct tr__node_name *prev;
	char name[];
};

int tr__log_init(tr_runtime *rt);
void tr__log_fini(tr_runtime *rt); /* frees the handlers ever set */
/* The node name for log metadata and calls by name, or NULL. */
const char *tr__node_name(tr_runtime *rt);
/* The crash report of an actor that is exiting (actor.c). */
void tr__log_crash(tr_runtime *rt, tr__actor *a, int reason, const char *name,
    const char *text, const char *where, uint32_t type);

/* ---- deferred messages (actor.c) ------------------------------------------
 */

/* Frees the deferred messages of an exiting actor. */
void tr__saved_free(tr__actor *a);

/* ---- behaviours by name, blobs, refusals (behaviours.c) ------------------ */

int tr__behaviours_init(tr_runtime *rt);
void tr__behaviours_fini(tr_runtime *rt);

/* The behaviour registered under `name` (tr_behaviour_register), or NULL
 * for an unknown, NULL, empty or too long name. The result stays valid
 * while the runtime lives (names are never unregistered), so it may be
 * spawned after this returns. Thread-safe; takes a mutex, so not for a
 * per-message path. The node's remote spawn and the supervisor's named
 * starts both look behaviours up here. */
const tr_behaviour *tr__behaviour_find(tr_runtime *rt, const char *name);

/* A malloc'd tr_blob holding a copy of data[0..size) (data may be NULL when
 * size is 0), to hand to the init of a behaviour started by name; NULL when
 * out of memory. Freed with free(), by the actor once init has it. */
tr_blob *tr__blob_new(const void *data, size_t size);

/* Builds the refusal reply (TR_MSG_REFUSED) to the request `ref` that was
 * sent to `from`: a reply-flagged system message whose payload is the
 * int32_t `err`. The caller owns *mp and delivers it (tr__dist_inject, or
 * tr__dist_inject_locked inside a tr__dist_enter section) to the
 * requester. Errors: TR_EINVAL (mp NULL, ref 0, err not a negative code),
 * TR_ENOMEM. */
int tr__msg_refused(tr_msg **mp, tr_pid from, uint64_t ref, int err);

/* Builds the refusal above and delivers it to the local pid `to` (the
 * requester), which then sees it as the answer to its request: tr_call
 * returns `err`, tr_request's handle gets the TR_MSG_REFUSED message. A
 * refusal nobody waits for (no such request, or it timed out) is dropped,
 * as any late reply. From any thread, but not inside a tr__dist_enter
 * section (sections do not nest; use tr__msg_refused there). Errors:
 * TR_EINVAL (rt NULL, `to` not local or none, and as tr__msg_refused),
 * TR_ENOMEM, TR_ENOPROC (the requester is gone; the refusal is freed). */
int tr__reply_refused(
    tr_runtime *rt, tr_pid from, tr_pid to, uint64_t ref, int err);

/* ---- mailbox (Vyukov/Pony intrusive MPSC queue) ---------------------------
 */

/* The link word of a message (or of an actor's stub), in the runtime's
 * header. It is a plain pointer, accessed with the GCC/Clang __atomic
 * builtins rather than through an _Atomic type. */
static inline void **tr__link(tr_msg *m)
{
	return &tr__mh(m)->next;
}

static inline tr_msg *tr__stub(tr__actor *a)
{
	/* Only the link word of the stub is ever touched: the message it
	 * stands for is the one whose header's link is stub_next. */
	return (tr_msg *)(void *)((char *)&a->stub_next -
	                          offsetof(tr__mhdr, next) + sizeof(tr__mhdr));
}

/* Starts a mailbox holding only its stub. `idle` marks it empty+idle, so
 * the first push reports it (ports); otherwise the actor counts as
 * scheduled (a fresh actor is queued to run its init). */
static inline void tr__mb_init(tr__actor *a, bool idle)
{
	a->stub_next = NULL;
	a->mb_tail = tr__stub(a);
	atomic_init(&a->mb_head, (uintptr_t)tr__stub(a) | (idle ? 1u : 0u));
	atomic_init(&a->mb_in, 0);
	atomic_init(&a->mb_wakes, idle ? 1u : 0u);
	atomic_init(&a->handled, 0);
}

/* The mailbox length of `a` and its handled count, as one snapshot: exact
 * while nothing moves, never below zero. Any thread (inside an EBR
 * section, or the owner). */
static inline uint32_t tr__mb_length(tr__actor *a, uint64_t *handled)
{
	/* Acquire first: pairs with the owner's release store in
	 * tr__mb_taken, so the counters read after it count every message
	 * taken (tr__actor.handled). */
	uint64_t h = atomic_load_explicit(&a->handled, memory_order_acquire);
	uintptr_t head =
	    atomic_load_explicit(&a->mb_head, memory_order_relaxed);
	uint32_t in = atomic_load_explicit(&a->mb_in, memory_order_relaxed);
	uint32_t wakes =
	    atomic_load_explicit(&a->mb_wakes, memory_order_relaxed);
	*handled = h;
	/* Idle means empty; the wake counted ahead is still to come. */
	return (head & 1u) != 0 ? 0 : in + wakes - (uint32_t)h;
}

/* Counts one message taken from the mailbox of `a`. Only the thread
 * running the actor, right after the pop that took it. */
static inline void tr__mb_taken(tr__actor *a)
{
	/* Release: pairs with the acquire load of a reader (info.c), which
	 * then sees mb_in count the message (see tr__actor.handled). A plain
	 * store on the owner's line, no locked instruction. */
	atomic_store_explicit(&a->handled,
	    atomic_load_explicit(&a->handled, memory_order_relaxed) + 1,
	    memory_order_release);
}

/* Pushes m; returns true if the mailbox was empty and idle, in which case
 * the caller must schedule the actor. Any thread. */
static inline bool tr__mb_push(tr__actor *a, tr_msg *m)
{
	__atomic_store_n(tr__link(m), NULL, __ATOMIC_RELAXED);
	/* acq_rel: release publishes m's link; acquire pairs with the release
	 * CAS in tr__mb_mark_idle, so a sender that wakes the actor sees
	 * everything its last turn wrote. */
	uintptr_t prev = atomic_exchange_explicit(
	    &a->mb_head, (uintptr_t)m, memory_order_acq_rel);
	tr_msg *p = (tr_msg *)(prev & ~(uintptr_t)1);
	bool idle = (prev & 1u) != 0;
	/* The push that wakes the actor was counted by its owner (mb_wakes);
	 * any other counts itself, before the link store below, so that the
	 * pop that takes m, and the `handled` it stores, happen after it. */
	if (TR_UNLIKELY(!idle))
		atomic_fetch_add_explicit(&a->mb_in, 1, memory_order_relaxed);
	/* Release: pairs with the acquire load in tr__mb_pop, publishing m's
	 * contents to the consumer. */
	__atomic_store_n(tr__link(p), m, __ATOMIC_RELEASE);
	return idle;
}

/* Takes the next message, or NULL. The returned message becomes the new
 * stub and stays owned by the mailbox until the next pop, which frees it.
 * Only the thread running the actor. */
static inline tr_msg *tr__mb_pop(tr__actor *a)
{
	tr_msg *tail = a->mb_tail;
	tr_msg *next = __atomic_load_n(tr__link(tail), __ATOMIC_ACQUIRE);
	if (next == NULL)
		return NULL;
	a->mb_tail = next;
	if (tail != tr__stub(a))
		tr__msg_free(tail);
	return next;
}

/* After tr__mb_pop returned NULL: marks the mailbox empty+idle unless a
 * push raced in. True: no message, the actor must not be touched by this
 * thread again until it is rescheduled. Only the thread running the actor. */
static inline bool tr__mb_mark_idle(tr__actor *a)
{
	uintptr_t t = (uintptr_t)a->mb_tail;
	/* The push that will find the mailbox idle does not count itself:
	 * count it now (tr__actor.mb_in), with plain stores on the line the
	 * CAS takes anyway, and before the CAS, which hands the actor to
	 * that push's sender (who may run it on another scheduler at once). */
	uint32_t w = atomic_load_explicit(&a->mb_wakes, memory_order_relaxed);
	atomic_store_explicit(&a->mb_wakes, w + 1, memory_order_relaxed);
	/* Release: pairs with the acquire exchange in tr__mb_push. */
	if (atomic_compare_exchange_strong_explicit(&a->mb_head, &t, t | 1u,
	        memory_order_release, memory_order_relaxed))
		return true;
	atomic_store_explicit(&a->mb_wakes, w, memory_order_relaxed);
	return false;
}

#endif
