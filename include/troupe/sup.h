/*
 * troupe supervisors: OTP's supervisor, point by point, for C.
 *
 * A supervisor is an ordinary actor (behaviour tr_sup_behaviour) that traps
 * exits, starts its children in order, watches them through links, and
 * restarts them by its strategy when they exit:
 *
 *   one_for_one          only the child that exited is restarted;
 *   one_for_all          all children are stopped (in reverse start order)
 *                        and all restarted (in start order);
 *   rest_for_one         the child and those started after it are stopped
 *                        (reverse order) and restarted (in order);
 *   simple_one_for_one   one_for_one over dynamic children that all share
 *                        one spec and are added with tr_sup_start_child;
 *                        they are stopped in parallel.
 *
 * Restart types: permanent (always restarted), transient (restarted unless
 * it exits with normal or shutdown), temporary (never restarted, and its
 * spec is dropped when it exits, also when stopped as a bystander).
 *
 * Intensity: more than `intensity` restarts within `period_ms` (a sliding
 * window) makes the supervisor stop all its children and exit with
 * TR_REASON_SHUTDOWN; its own supervisor then reacts (escalation).
 *
 * Shutdown of a child: TR_SHUTDOWN_BRUTAL_KILL (killed at once), a timeout
 * in ms (an exit signal `shutdown`, then `kill` if it has not exited in
 * time), or TR_SHUTDOWN_INFINITY (waits; meant for child supervisors).
 *
 * Significant children and auto_shutdown: with TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT
 * the supervisor shuts itself down (reason shutdown) when any significant
 * child exits on its own and is not restarted; with
 * TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT, when all of them have. A significant
 * child must be transient or temporary.
 *
 * Child starts are synchronous (TR_SPAWN_SYNC_INIT): a child whose init
 * fails makes the start fail with its reason, and its spec is not kept.
 * Events (a child exited, was restarted, the intensity was reached) are
 * reported as one-line "SUPERVISOR REPORT" lines through the runtime's log
 * handler (tr_runtime_set_log), like OTP's supervisor reports.
 */
#ifndef TROUPE_SUP_H
#define TROUPE_SUP_H

#include "troupe/troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tr_sup_strategy {
	TR_SUP_ONE_FOR_ONE = 0,
	TR_SUP_ONE_FOR_ALL,
	TR_SUP_REST_FOR_ONE,
	TR_SUP_SIMPLE_ONE_FOR_ONE,
} tr_sup_strategy;

typedef enum tr_restart {
	TR_RESTART_PERMANENT = 0,
	TR_RESTART_TRANSIENT,
	TR_RESTART_TEMPORARY,
} tr_restart;

typedef enum tr_child_type {
	TR_CHILD_WORKER = 0,
	TR_CHILD_SUPERVISOR,
} tr_child_type;

typedef enum tr_auto_shutdown {
	TR_AUTO_SHUTDOWN_NEVER = 0,
	TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT,
	TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT,
} tr_auto_shutdown;

#define TR_SHUTDOWN_BRUTAL_KILL 0
#define TR_SHUTDOWN_INFINITY (-1)

typedef struct tr_sup_flags {
	tr_sup_strategy strategy;
	uint32_t intensity; /* MaxR: restarts allowed within the period */
	uint32_t period_ms; /* MaxT, > 0 */
	tr_auto_shutdown auto_shutdown;
} tr_sup_flags;

/* one_for_one, intensity 1, period 5000 ms, auto_shutdown never: OTP's
 * defaults. */
TR_API void tr_sup_flags_init(tr_sup_flags *flags);

typedef struct tr_child_spec {
	const char *id;            /* unique within the supervisor; copied;
	                            * 1..TR_NAME_MAX bytes */
	const tr_behaviour *start; /* what the child runs; must outlive it */
	void *arg;                 /* passed to init at every (re)start; it is
	                            * borrowed, not owned: init must not free
	                            * it, and it must outlive the supervisor */
	tr_restart restart;
	int32_t shutdown_ms; /* TR_SHUTDOWN_BRUTAL_KILL, a timeout > 0 in
	                      * ms, or TR_SHUTDOWN_INFINITY */
	tr_child_type type;
	bool significant;
} tr_child_spec;

/* Fills a spec with OTP's defaults for a worker: permanent, shutdown 5000
 * ms, not significant. */
TR_API void tr_child_spec_init(
    tr_child_spec *spec, const char *id, const tr_behaviour *start, void *arg);

/* The argument of tr_sup_behaviour: what a supervisor is made of. It is
 * copied by the supervisor's init (specs included, ids copied), so it may
 * live on the caller's stack. */
typedef struct tr_sup_args {
	tr_sup_flags flags;
	const tr_child_spec *specs;
	size_t nspecs;
} tr_sup_args;

/* The supervisor behaviour, to nest a supervisor in a tree: a child spec
 * with start = &tr_sup_behaviour, arg = a tr_sup_args that outlives the
 * tree, type = TR_CHILD_SUPERVISOR and shutdown TR_SHUTDOWN_INFINITY. */
TR_API extern const tr_behaviour tr_sup_behaviour;

/* Exit reasons of a supervisor whose init fails for a cause of its own
 * rather than a child's init reason (seen as *init_reason, or by the parent
 * of a nested supervisor). User reasons are positive; these two are
 * reserved for supervisors. */
#define TR_SUP_REASON_BADARGS 0x73757001 /* the tr_sup_args are invalid */
#define TR_SUP_REASON_NOSTART                                                  \
	0x73757002 /* no memory, or a child could not                          \
	            * be spawned (not its init) */

/* Starts a supervisor and, before returning, all its children in order.
 * The supervisor is not linked to the caller, whether the caller is a plain
 * thread or an actor; stop it with tr_kill(rt, sup, TR_REASON_SHUTDOWN). An
 * actor that wants it linked (OTP's start_link) calls tr_sup_start_link.
 * Errors: TR_EINVAL (flags or a spec is invalid: unknown strategy,
 * auto_shutdown, restart or child type, period 0, a shutdown below
 * TR_SHUTDOWN_INFINITY, an empty, too long or duplicate id, NULL start or
 * start->handle, a significant permanent child, simple_one_for_one with
 * other than exactly one spec), TR_EINIT (a child failed to start; the
 * children already started are stopped again, and *init_reason, if not
 * NULL, holds the reason), TR_ECLOSED, TR_ENOMEM. */
TR_API int tr_sup_start(tr_pid *sup, tr_runtime *rt, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason);

/* tr_sup_start from an actor, linked to it (OTP's start_link): when the
 * running actor exits, the supervisor shuts its children down and exits
 * with the same reason; when the supervisor exits, the actor gets the exit
 * signal. Errors as tr_sup_start. */
TR_API int tr_sup_start_link(tr_ctx *ctx, tr_pid *sup,
    const tr_sup_flags *flags, const tr_child_spec *specs, size_t nspecs,
    int *init_reason);

/* Child administration: blocking calls to the supervisor, for plain
 * threads (an actor gets TR_EINVAL; it can send the same requests with
 * tr_request, see docs/supervision.md). Each returns TR_ENOPROC if `sup` is
 * not alive and TR_ECLOSED if it is shutting down. */

/* Adds a child and starts it. For simple_one_for_one, `spec` must be NULL
 * and `arg` is the new child's spawn argument (borrowed as above); for the
 * other strategies `arg` is ignored. The new pid goes to *child (may be
 * NULL). Errors: TR_EALREADY (a running child has this id; *child is set
 * to it), TR_EEXIST (a stopped child has this id), TR_EINVAL (bad spec),
 * TR_EINIT (the child's init failed: no spec is kept; *init_reason holds
 * the reason if not NULL). */
TR_API int tr_sup_start_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const tr_child_spec *spec, void *arg, int *init_reason);

/* Stops a child by its shutdown spec; the spec is kept (unless temporary).
 * Stopping a child that is not running succeeds. Errors: TR_ENOENT,
 * TR_ENOTSUP (simple_one_for_one: use tr_sup_terminate_pid). */
TR_API int tr_sup_terminate_child(tr_runtime *rt, tr_pid sup, const char *id);

/* Stops a dynamic child of a simple_one_for_one supervisor (or any child)
 * by pid. Errors: TR_ENOENT (not a child of this supervisor). */
TR_API int tr_sup_terminate_pid(tr_runtime *rt, tr_pid sup, tr_pid child);

/* Starts a stopped child again from its spec. Errors: TR_ENOENT,
 * TR_ERUNNING, TR_EINIT, TR_ENOTSUP (simple_one_for_one). */
TR_API int tr_sup_restart_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const char *id, int *init_reason);

/* Deletes the spec of a stopped child. Errors: TR_ENOENT, TR_ERUNNING,
 * TR_ENOTSUP (simple_one_for_one). */
TR_API int tr_sup_delete_child(tr_runtime *rt, tr_pid sup, const char *id);

typedef struct tr_child_info {
	char id[TR_NAME_MAX + 1]; /* "" for simple_one_for_one children */
	tr_pid pid;               /* TR_PID_NONE when not running */
	tr_child_type type;
} tr_child_info;

/* Lists the children, in start order, into out[0..cap); *n gets the total
 * number (which may exceed cap). */
TR_API int tr_sup_which_children(
    tr_child_info *out, size_t cap, size_t *n, tr_runtime *rt, tr_pid sup);

typedef struct tr_child_counts {
	uint32_t specs;       /* all children, running or not */
	uint32_t active;      /* running */
	uint32_t supervisors; /* of type supervisor */
	uint32_t workers;     /* of type worker */
} tr_child_counts;

TR_API int tr_sup_count_children(
    tr_child_counts *counts, tr_runtime *rt, tr_pid sup);

/* ------------------------------------------------------------------------ */
/* The request protocol behind the admin calls                               */
/* ------------------------------------------------------------------------ */

/* The calls above are tr_call()s to the supervisor. An actor sends the same
 * requests with tr_request(ctx, &ref, sup, TR_SUP_REQ_*, &req, sizeof req,
 * timeout) and gets back a TR_SUP_REPLY message (ref = the request's)
 * whose payload is a tr_sup_reply. Type tags from TR_SUP_MSG_BASE to
 * TR_SUP_MSG_BASE + 0xff are the supervisor's; its other messages are
 * ignored. A supervisor answers requests in the order they arrive; one that
 * arrives while the supervisor is stopping children (a group restart, a
 * terminate) is answered when that is done, except which/count, which are
 * answered at once. */
#define TR_SUP_MSG_BASE 0x53555000u
#define TR_SUP_REQ_START_CHILD (TR_SUP_MSG_BASE + 1)
#define TR_SUP_REQ_TERMINATE_CHILD (TR_SUP_MSG_BASE + 2)
#define TR_SUP_REQ_TERMINATE_PID (TR_SUP_MSG_BASE + 3)
#define TR_SUP_REQ_RESTART_CHILD (TR_SUP_MSG_BASE + 4)
#define TR_SUP_REQ_DELETE_CHILD (TR_SUP_MSG_BASE + 5)
#define TR_SUP_REQ_WHICH_CHILDREN (TR_SUP_MSG_BASE + 6)
#define TR_SUP_REQ_COUNT_CHILDREN (TR_SUP_MSG_BASE + 7)
#define TR_SUP_REPLY (TR_SUP_MSG_BASE + 0x10)

/* A request: zero it, then fill the fields its type reads. */
typedef struct tr_sup_request {
	/* TERMINATE_CHILD, RESTART_CHILD, DELETE_CHILD: the child's id;
	 * START_CHILD with a spec: the spec's id (spec.id is not read). */
	char id[TR_NAME_MAX + 1];
	/* START_CHILD: whether `spec` holds a spec (it must not for
	 * simple_one_for_one, and must for the other strategies). */
	bool has_spec;
	tr_child_spec spec;
	void *arg;    /* START_CHILD, simple_one_for_one: the spawn argument */
	tr_pid pid;   /* TERMINATE_PID: the child */
	uint32_t cap; /* WHICH_CHILDREN: how many entries the reply may hold */
} tr_sup_request;

/* The reply to any request. */
typedef struct tr_sup_reply {
	int32_t err;            /* TR_OK or a TR_E* code, as the calls above */
	int32_t init_reason;    /* err == TR_EINIT: the child's init reason */
	tr_pid pid;             /* START_CHILD, RESTART_CHILD: the child (also
	                         * with TR_EALREADY) */
	tr_child_counts counts; /* COUNT_CHILDREN */
	uint32_t total;         /* WHICH_CHILDREN: number of children */
	uint32_t n;             /* WHICH_CHILDREN: entries that follow,
	                         * min(total, cap) */
	tr_child_info children[]; /* WHICH_CHILDREN, in start order */
} tr_sup_reply;

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_SUP_H */
