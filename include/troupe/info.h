/*
 * Looking inside a running runtime: the table of its actors, and the
 * details of one actor.
 *
 * Two calls, with two costs (docs/runtime.md, "Looking inside a running
 * runtime"):
 *
 * - tr_actors_list walks the actor table from the calling thread, without
 *   a lock and without stopping any scheduler: a page of actors in slot
 *   order, or the top N by mailbox length or by messages handled. What it
 *   reads of each actor is kept up to date by the actors themselves for
 *   almost nothing: a mailbox counts its pushes on the cache line every
 *   sender writes anyway, and the thread running an actor counts what it
 *   takes on the line only it writes.
 * - tr_actor_inspect (and, from an actor, a tr_request of
 *   TR_MSG_ACTOR_INSPECT) asks the actor's own thread for what only that
 *   thread may read: links, monitors, trap_exit, the head of the mailbox.
 *   The runtime answers for the actor in its dispatch loop before the
 *   behaviour sees the request, so any actor answers, whatever its
 *   behaviour; but the request waits its turn in the mailbox like any
 *   message (a flooded actor answers once it has worked through what was
 *   queued before, and an actor in a long callback once the callback
 *   returns; the caller's timeout bounds the wait). Erlang's
 *   process_info of message-queue-bound items has the same property.
 *
 * Both are snapshots: an actor that spawns or dies during a listing may or
 * may not be in it, and counts move while they are read.
 *
 * Killing an actor from outside is tr_kill (troupe.h).
 *
 * Every function here is thread-safe unless its comment says otherwise.
 */
#ifndef TROUPE_INFO_H
#define TROUPE_INFO_H

#include "troupe/troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Pids as text                                                              */
/* ------------------------------------------------------------------------ */

/* Room for any pid as text, NUL included: three 10-digit numbers, two
 * dots. */
#define TR_PID_TEXT_MAX 33

/* Writes `pid` as "node.slot.gen" (decimal, as crash reports print it
 * between angle brackets: 0.7.1 is slot 7, generation 1, of this
 * runtime; a peer's pid has its node's index in this node's table) into
 * buf[0..cap), NUL-terminated and truncated to fit as snprintf does.
 * Returns the length of the full text (without the NUL), so a result >=
 * cap means it was cut; TR_PID_TEXT_MAX bytes always suffice. Pure. */
TR_API int tr_pid_format(char *buf, size_t cap, tr_pid pid);

/* Reads "node.slot.gen" (three decimal numbers below 2^32, no sign, no
 * space, nothing after) into *pid. Errors: TR_EINVAL (NULL, any other
 * text, generation 0), with *pid set to TR_PID_NONE. Pure: it does not
 * check that the actor is alive. */
TR_API int tr_pid_parse(tr_pid *pid, const char *text);

/* ------------------------------------------------------------------------ */
/* Actor states and kinds                                                    */
/* ------------------------------------------------------------------------ */

enum {
	TR_ACTOR_WAITING = 0,  /* idle: empty mailbox, on no run queue */
	TR_ACTOR_RUNNABLE = 1, /* messages queued or queued to run (an
	                        * actor whose init has not run yet, too) */
	TR_ACTOR_RUNNING = 2,  /* a scheduler is in its callback now */
	TR_ACTOR_EXITING = 3,  /* its exit is under way (terminate runs),
	                        * or a kill is pending */
};

/* "waiting", "runnable", "running", "exiting"; "unknown" otherwise.
 * Static strings. */
TR_API const char *tr_actor_state_name(uint32_t state);

enum {
	TR_ACTOR_KIND_ACTOR = 0, /* an actor with a behaviour */
	TR_ACTOR_KIND_PORT = 1,  /* a plain thread's mailbox (tr_port_open;
	                          * tr_call opens one for each call) */
};

/* "actor", "port"; "unknown" otherwise. Static strings. */
TR_API const char *tr_actor_kind_name(uint32_t kind);

/* ------------------------------------------------------------------------ */
/* The actor table                                                           */
/* ------------------------------------------------------------------------ */

/* One actor of a listing. Versioned (troupe.h "Versioned structs"): set
 * struct_size with tr_actor_info_init; in an array, the first entry's
 * struct_size is the stride. */
typedef struct tr_actor_info {
	uint32_t struct_size; /* sizeof(tr_actor_info), by the _init */
	tr_pid pid;
	uint32_t kind;    /* TR_ACTOR_KIND_* */
	uint32_t state;   /* TR_ACTOR_* */
	uint32_t mailbox; /* messages in its mailbox now (deferred ones,
	                   * tr_defer, are not in it) */
	uint64_t handled; /* messages taken from its mailbox since it was
	                   * spawned, system messages (signals, replies,
	                   * timeouts) included */
	char name[TR_NAME_MAX + 1];      /* its registered name, or "" */
	char behaviour[TR_NAME_MAX + 1]; /* its behaviour's name (cut to
	                                  * TR_NAME_MAX bytes), or "" */
} tr_actor_info;

#define TR_ACTOR_INFO_V1_SIZE TR_STRUCT_END(tr_actor_info, behaviour)

/* Zeroes `info` and sets its struct_size. */
static inline void tr_actor_info_init(tr_actor_info *info)
{
	memset(info, 0, sizeof(*info));
	info->struct_size = (uint32_t)sizeof(*info);
}

/* What a listing returns, and in which order. */
enum {
	TR_ACTORS_BY_SLOT = 0,     /* a page in slot order, from a cursor */
	TR_ACTORS_TOP_MAILBOX = 1, /* the N longest mailboxes, longest first */
	TR_ACTORS_TOP_HANDLED = 2, /* the N that handled most, most first */
};

/* The most entries a top-N listing returns (its heap is allocated). */
#define TR_ACTORS_TOP_MAX 4096

/* A listing's question. Versioned: set struct_size with
 * tr_actors_query_init (the defaults: the first page by slot). */
typedef struct tr_actors_query {
	uint32_t struct_size; /* sizeof(tr_actors_query), by the _init */
	uint32_t sort;        /* TR_ACTORS_* */
	uint32_t cursor;      /* TR_ACTORS_BY_SLOT: 0 for the first page,
	                       * else the *next of the page before */
} tr_actors_query;

#define TR_ACTORS_QUERY_V1_SIZE TR_STRUCT_END(tr_actors_query, cursor)

/* Fills `q` with the defaults (all zero) and sets its struct_size. */
static inline void tr_actors_query_init(tr_actors_query *q)
{
	memset(q, 0, sizeof(*q));
	q->struct_size = (uint32_t)sizeof(*q);
}

/* Lists actors (ports included) of `rt` into out[0..cap), stamping each
 * entry with out[0].struct_size, which is the array's stride (docs/abi.md),
 * and sets *n to the number written. `q` NULL is the defaults.
 *
 * - TR_ACTORS_BY_SLOT: the live actors from slot q->cursor on, in slot
 *   order, up to cap of them. *next (when not NULL) gets the cursor of the
 *   page after (the slot of the first live actor past this page), or 0
 *   when there is none. Pages thus cover every actor exactly once while
 *   nothing spawns or dies; an actor spawned during the paging may land
 *   in a page already read (slots are reused), one that dies is skipped.
 * - TR_ACTORS_TOP_MAILBOX, TR_ACTORS_TOP_HANDLED: the cap (at most
 *   TR_ACTORS_TOP_MAX) actors with the longest mailboxes, or the most
 *   messages handled, in that order (ties in slot order), from one walk
 *   of the whole table with a bounded heap. *next gets 0.
 *
 * *total (when not NULL) gets the number of live actors the walk met in
 * the whole table; asking for it makes a page by slot walk the whole
 * table too (one load per slot past the page), so leave it NULL to keep a
 * page's cost to the page.
 *
 * Cost and interference: the walk reads the table and each live actor's
 * two cache lines, without a lock and without stopping or signalling any
 * scheduler; it holds off the reclamation of exited actors only for the
 * slots of one chunk at a time. Registered names are read under the
 * registry's lock, for named actors of the result only. Actors that
 * spawn or die meanwhile may or may not be listed, and each entry is a
 * snapshot of moving counts. The time per listing at a million actors is
 * in docs/runtime.md.
 *
 * Errors: TR_EINVAL (rt, n NULL; out NULL with cap > 0; out[0].struct_size
 * 0 or below TR_ACTOR_INFO_V1_SIZE; q's struct_size 0 or below its V1
 * size; an unknown sort; a top-N cap above TR_ACTORS_TOP_MAX), TR_ENOTSUP
 * (q set a field this library does not know), TR_ENOMEM (the top-N heap).
 * From any thread, actors' callbacks included (a listing of a large table
 * takes milliseconds of the caller's core, which a callback should not
 * spend often). */
TR_API int tr_actors_list(tr_actor_info *out, size_t cap, size_t *n,
    size_t *total, uint32_t *next, tr_runtime *rt, const tr_actors_query *q);

/* The same as one entry of a listing, for the actor `pid` of this runtime.
 * Errors: TR_EINVAL (NULL, struct_size, a pid of another node),
 * TR_ENOPROC (not alive). */
TR_API int tr_actor_info_get(tr_actor_info *info, tr_runtime *rt, tr_pid pid);

/* ------------------------------------------------------------------------ */
/* One actor in detail                                                       */
/* ------------------------------------------------------------------------ */

/* The request: send it with tr_request, tr_call_then, tr_call_named_then
 * or tr_call (or use tr_actor_inspect below), with a tr_inspect_opts as
 * the payload (or an empty payload for the defaults). The runtime of the
 * target answers it for the target, on the target's thread, before its
 * behaviour sees it (any actor answers, a supervisor too, and a port
 * while its thread is in tr_port_recv); the reply is a
 * TR_MSG_ACTOR_REPORT message that tr_actor_report_decode reads. The
 * request waits its turn in the mailbox (see the top of this file).
 *
 * An actor that dies with the request in its mailbox answers a refusal
 * TR_ENOPROC (tr_call returns it; tr_request's handle gets the
 * TR_MSG_REFUSED message), and a malformed payload is refused with
 * TR_EINVAL. tr_call monitors its target, so its own monitor is among
 * the report's monitored_by; tr_actor_inspect leaves none. The tags are
 * local-only (troupe.h, TR_MSG_LOCAL_BASE): a request for another node's
 * actor fails with TR_EINVAL; ask that node's observer. Only the calls
 * above mark the message as the runtime's (the per-message path tests no
 * type): sent by tr_send, or passed on by tr_forward, a message of this
 * type is an ordinary message for the behaviour. */
#define TR_MSG_ACTOR_INSPECT 0xFFFE4901u
#define TR_MSG_ACTOR_REPORT 0xFFFE4902u

/* Also describe the payload bytes of the messages at the head of the
 * mailbox (by default only their types and sizes are given: payloads are
 * the application's data, which an operator sees only when asked). */
#define TR_INSPECT_PAYLOAD 0x1u

/* Limits of a report. */
#define TR_INSPECT_HEAD_MAX 64      /* messages of the mailbox head */
#define TR_INSPECT_PAYLOAD_MAX 4096 /* bytes of each payload */
#define TR_INSPECT_LIST_MAX 65536   /* entries of each list */

/* What to report. Versioned: set struct_size with tr_inspect_opts_init. */
typedef struct tr_inspect_opts {
	uint32_t struct_size; /* sizeof(tr_inspect_opts), by the _init */
	uint32_t flags;       /* TR_INSPECT_* */
	uint32_t head_max;    /* messages of the mailbox head described;
	                       * 0 = 16, at most TR_INSPECT_HEAD_MAX */
	uint32_t payload_max; /* with TR_INSPECT_PAYLOAD: bytes of each
	                       * payload; 0 = 64, at most
	                       * TR_INSPECT_PAYLOAD_MAX */
	uint32_t list_max;    /* links, monitors and monitored_by entries,
	                       * each; 0 = 1024, at most TR_INSPECT_LIST_MAX
	                       * (the totals are always given) */
} tr_inspect_opts;

#define TR_INSPECT_OPTS_V1_SIZE TR_STRUCT_END(tr_inspect_opts, list_max)

/* Fills `opts` with the defaults (all zero) and sets its struct_size. */
static inline void tr_inspect_opts_init(tr_inspect_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->struct_size = (uint32_t)sizeof(*opts);
}

/* A monitor of a report: its reference and the other end (the actor
 * watched, or the watcher). Frozen layout (an element of an array in a
 * report, docs/abi.md). */
typedef struct tr_actor_monitor {
	uint64_t ref;
	tr_pid pid;
	uint32_t reserved; /* 0 */
} tr_actor_monitor;

/* Flags of a tr_mailbox_entry. */
#define TR_MAILBOX_SYSTEM                                                      \
	0x1u /* a message of the runtime's (a signal,                          \
	      * a reply, a timer's, a DOWN) */

/* A message at the head of the mailbox. Frozen layout. */
typedef struct tr_mailbox_entry {
	uint32_t type;   /* its type tag (a signal's kind for a signal) */
	uint32_t size;   /* its payload's size */
	tr_pid sender;   /* TR_PID_NONE when it has none */
	uint32_t flags;  /* TR_MAILBOX_* */
	uint32_t nbytes; /* payload bytes in the report (0 unless
	                  * TR_INSPECT_PAYLOAD; at most payload_max) */
	uint32_t offset; /* where they are: tr_mailbox_entry_bytes */
	uint32_t reserved;
} tr_mailbox_entry;

/* A report, decoded: scalars, and arrays that point into the reply
 * message (valid while it lives). Versioned: set struct_size with
 * tr_actor_report_init. */
typedef struct tr_actor_report {
	uint32_t struct_size; /* sizeof(tr_actor_report), by the _init */
	tr_pid pid;
	uint32_t kind;  /* TR_ACTOR_KIND_* */
	uint32_t state; /* TR_ACTOR_RUNNING, or TR_ACTOR_EXITING */
	bool trap_exit;
	uint32_t mailbox;  /* messages after the request in the mailbox */
	uint64_t handled;  /* as in tr_actor_info (the request included) */
	uint32_t deferred; /* messages it set aside (tr_defer) */
	uint32_t requests; /* its requests and calls awaiting an answer */
	char name[TR_NAME_MAX + 1];
	char behaviour[TR_NAME_MAX + 1];
	/* The lists, each cut to the request's list_max; *_total is the
	 * full count. */
	uint32_t nlinks, links_total;
	uint32_t nmonitors, monitors_total;         /* monitors it holds */
	uint32_t nmonitored_by, monitored_by_total; /* monitors on it */
	uint32_t nhead; /* messages described, oldest first */
	const tr_pid *links;
	const tr_actor_monitor *monitors;
	const tr_actor_monitor *monitored_by;
	const tr_mailbox_entry *head;
	const unsigned char *base; /* the reply's payload */
} tr_actor_report;

#define TR_ACTOR_REPORT_V1_SIZE TR_STRUCT_END(tr_actor_report, base)

/* Zeroes `r` and sets its struct_size. */
static inline void tr_actor_report_init(tr_actor_report *r)
{
	memset(r, 0, sizeof(*r));
	r->struct_size = (uint32_t)sizeof(*r);
}

/* The payload bytes of `e`, an entry of r->head (e->nbytes of them). */
static inline const unsigned char *tr_mailbox_entry_bytes(
    const tr_actor_report *r, const tr_mailbox_entry *e)
{
	return r->base + e->offset;
}

/* Reads the reply `reply` (a TR_MSG_ACTOR_REPORT message) into `r`,
 * whose arrays then point into `reply`: keep the message while `r` is
 * used. Errors: TR_EINVAL (NULL, r's struct_size, a message of another
 * type or malformed). A TR_MSG_REFUSED reply carries the request's error
 * instead (tr_refusal_code). Any thread. */
TR_API int tr_actor_report_decode(tr_actor_report *r, const tr_msg *reply);

/* Asks the actor `pid` of `rt` for its report and waits for it, from a
 * plain thread: tr_call's twin, except that it leaves no monitor of its
 * own in the report (an actor that dies before answering answers
 * TR_ENOPROC all the same, see TR_MSG_ACTOR_INSPECT). `opts` NULL is the
 * defaults; timeout_ms < 0 waits for ever. On TR_OK, *reply is the reply
 * message, which the caller owns (tr_msg_free) and which `r` points into.
 * Errors: TR_EINVAL (NULL arguments, struct sizes, opts beyond their
 * limits, a pid of another node, called from an actor's callback: use
 * tr_request there), TR_ENOTSUP (opts set a field this library does not
 * know), TR_ENOPROC (not alive, or died before answering), TR_ETIMEDOUT,
 * TR_ENOMEM, TR_ECLOSED (the runtime is stopping). */
TR_API int tr_actor_inspect(tr_msg **reply, tr_actor_report *r, tr_runtime *rt,
    tr_pid pid, const tr_inspect_opts *opts, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_INFO_H */
