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
 * fails makes the start fail with its reason, and its spec is not kept. A
 * child whose init returns TR_INIT_IGNORE (troupe.h, OTP's `ignore`) is not
 * started, and the start succeeds without a pid: a static child keeps its
 * spec (stopped, as after terminate_child) unless it is temporary; a
 * dynamic child leaves nothing, also when a restart of it is ignored.
 *
 * While a child is being stopped (terminate, a group restart, the
 * supervisor's shutdown) the supervisor monitors it, as OTP does: a child
 * that unlinked itself from its supervisor is still seen to end.
 *
 * Events (a child exited, was restarted, the intensity was reached) are
 * reported as one-line "SUPERVISOR REPORT" lines through the runtime's log
 * handler (tr_runtime_set_log), like OTP's supervisor reports; a report
 * about a child carries the reason that child really exited with.
 *
 * A child's behaviour is given by address (a tr_behaviour pointer) or by
 * the name it was registered under (tr_behaviour_register). Other nodes and
 * clients can only do the latter: their requests (TR_SUP_REQ_START_NAMED,
 * below) have a portable byte layout, while the admin requests of this
 * process carry pointers and never leave it.
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
	TR_CHILD_PROCESS, /* runs in an OS process of its own, started by a
	                   * start_fn (troupe/proc.h: tr_proc_child_spec);
	                   * counted as a worker by tr_sup_count_children */
} tr_child_type;

typedef enum tr_auto_shutdown {
	TR_AUTO_SHUTDOWN_NEVER = 0,
	TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT,
	TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT,
} tr_auto_shutdown;

#define TR_SHUTDOWN_BRUTAL_KILL 0
#define TR_SHUTDOWN_INFINITY (-1)

/* A supervisor's flags. Versioned (troupe.h, "Versioned structs"): fill
 * with tr_sup_flags_init. */
typedef struct tr_sup_flags {
	uint32_t struct_size; /* sizeof(tr_sup_flags), by the _init */
	tr_sup_strategy strategy;
	uint32_t intensity; /* MaxR: restarts allowed within the period */
	uint32_t period_ms; /* MaxT, > 0 */
	tr_auto_shutdown auto_shutdown;
} tr_sup_flags;

/* The size of the first version of tr_sup_flags. */
#define TR_SUP_FLAGS_V1_SIZE TR_STRUCT_END(tr_sup_flags, auto_shutdown)

/* one_for_one, intensity 1, period 5000 ms, auto_shutdown never: OTP's
 * defaults; sets struct_size. A field that a later troupe adds and this
 * caller does not know takes that troupe's default. */
static inline void tr_sup_flags_init(tr_sup_flags *flags)
{
	memset(flags, 0, sizeof(*flags));
	flags->struct_size = (uint32_t)sizeof(*flags);
	flags->strategy = TR_SUP_ONE_FOR_ONE;
	flags->intensity = 1;
	flags->period_ms = 5000;
	flags->auto_shutdown = TR_AUTO_SHUTDOWN_NEVER;
}

/* A start function (OTP's {M, F, A} start of a child spec): starts a child
 * linked to the calling actor (the supervisor, in its init or handle) and
 * returns TR_OK with its pid in *pid, which may live on another node; TR_OK
 * with TR_PID_NONE for a child that ignored its start (OTP's ignore);
 * TR_EINIT with the child's reason in *init_reason; any other error fails
 * the start as a spawn failure (TR_SUP_REASON_NOSTART). It runs on the
 * supervisor's scheduler thread and may block it for as long as the start
 * takes, as OTP's supervisor waits for start_link. `arg` is the spec's,
 * borrowed (for simple_one_for_one: the tr_sup_start_child argument). */
typedef int tr_child_start_fn(
    tr_ctx *ctx, void *arg, tr_pid *pid, int *init_reason);

/* In a start function called by a supervisor: the id of the child it
 * starts ("" for a simple_one_for_one child); NULL anywhere else. */
TR_API const char *tr_sup_starting_id(void);

/* A child spec names what the child runs in one of three ways:
 *
 * - by address: `start` is the behaviour and `arg` the init argument, the
 *   same pointer at every (re)start, borrowed (init must not free it, and
 *   it must outlive the supervisor);
 * - by name: `start` is NULL and `start_name` names a behaviour registered
 *   with tr_behaviour_register on the supervisor's runtime (looked up when
 *   the spec is added). `arg` is then NULL or a `const tr_blob *` that the
 *   supervisor copies and keeps with the spec; at every (re)start the
 *   child's init gets a fresh malloc'd copy (an empty blob for NULL), which
 *   the actor owns, as with a remote spawn (troupe.h, tr_blob). This is the
 *   form a start from another node or a client takes (see
 *   TR_SUP_REQ_START_NAMED below), and the form a simple_one_for_one
 *   template must take for such starts;
 * - by start function: `start` and `start_name` are NULL and `start_fn`
 *   starts the child with `arg` (borrowed, as by address); `name` must be
 *   NULL. Process children (troupe/proc.h) are made this way. As a
 *   simple_one_for_one template, each tr_sup_start_child gives its own
 *   argument, or NULL for the template's.
 *
 * Versioned (troupe.h, "Versioned structs"): fill with tr_child_spec_init.
 * In an array of specs every entry has the same struct_size, which is also
 * the array's stride (TR_EINVAL otherwise). */
typedef struct tr_child_spec {
	uint32_t struct_size;      /* sizeof(tr_child_spec), by the _init */
	const char *id;            /* unique within the supervisor; copied;
	                            * 1..TR_NAME_MAX bytes */
	const tr_behaviour *start; /* what the child runs; must outlive it;
	                            * NULL when start_name is set */
	void *arg;                 /* start: passed to init at every
	                            * (re)start, borrowed (see above);
	                            * start_name: NULL or a const tr_blob *,
	                            * copied */
	tr_restart restart;
	int32_t shutdown_ms; /* TR_SHUTDOWN_BRUTAL_KILL, a timeout > 0 in
	                      * ms, or TR_SHUTDOWN_INFINITY */
	tr_child_type type;
	bool significant;
	const char *start_name; /* instead of start: a registered behaviour's
	                         * name, 1..TR_NAME_MAX bytes; else NULL */
	const char *name;       /* NULL, or the name (1..TR_NAME_MAX bytes,
	                         * copied) the child is registered under
	                         * while it runs, OTP's {local, Name}: a
	                         * start finds it held by another actor and
	                         * fails with TR_EALREADY and that actor's
	                         * pid, without running init; else the
	                         * supervisor registers the child once its
	                         * init has returned (its init must not take
	                         * another name) */
	/* ---- added after the first version ---- */
	tr_child_start_fn *start_fn; /* instead of start and start_name:
	                              * the start function, or NULL */
} tr_child_spec;

/* The size of the first version of tr_child_spec. */
#define TR_CHILD_SPEC_V1_SIZE TR_STRUCT_END(tr_child_spec, name)

/* Fills a spec with OTP's defaults for a worker: permanent, shutdown 5000
 * ms, not significant, started by address (start_name NULL), no registered
 * name; sets struct_size. */
static inline void tr_child_spec_init(
    tr_child_spec *spec, const char *id, const tr_behaviour *start, void *arg)
{
	memset(spec, 0, sizeof(*spec));
	spec->struct_size = (uint32_t)sizeof(*spec);
	spec->id = id;
	spec->start = start;
	spec->arg = arg;
	spec->restart = TR_RESTART_PERMANENT;
	spec->shutdown_ms = 5000;
	spec->type = TR_CHILD_WORKER;
	spec->significant = false;
}

/* The argument of tr_sup_behaviour: what a supervisor is made of. It is
 * copied by the supervisor's init (specs included, ids copied), so it may
 * live on the caller's stack. Its layout is frozen but for `flags`, its
 * last member, which is versioned (fill it with tr_sup_flags_init): the
 * supervisor reads flags.struct_size bytes of it and nothing beyond, so new
 * options of a supervisor go into tr_sup_flags. */
typedef struct tr_sup_args tr_sup_args;
struct tr_sup_args {
	const tr_child_spec *specs;
	size_t nspecs;
	/* Optional, OTP's Mod:init/1: called by the supervisor's init at
	 * every start (restarts by a parent included), on the thread that
	 * starts it, before anything else, with init_arg and a copy of these
	 * arguments (init NULL in it) that it may change; what the copy then
	 * points to must stay valid until init returns. It must not block.
	 * It returns TR_OK to go on with the copy, TR_INIT_IGNORE for OTP's
	 * `ignore` (no supervisor: tr_sup_start_args gives TR_OK and no pid,
	 * a parent supervisor treats it as a child that ignored its start),
	 * or a reason > 0 that the start fails with (TR_EINIT); any other
	 * value fails it as bad arguments. */
	int (*init)(void *init_arg, tr_sup_args *args);
	void *init_arg;
	tr_sup_flags flags; /* last: it grows with new versions */
};

/* The supervisor behaviour, to nest a supervisor in a tree: a child spec
 * with start = &tr_sup_behaviour, arg = a tr_sup_args that outlives the
 * tree (its init_arg too), type = TR_CHILD_SUPERVISOR and shutdown
 * TR_SHUTDOWN_INFINITY. */
TR_API extern const tr_behaviour tr_sup_behaviour;

/* Exit reasons of a supervisor whose init fails for a cause of its own
 * rather than a child's init reason (seen as *init_reason, or by the parent
 * of a nested supervisor). User reasons are positive; these two are
 * reserved for supervisors. */
#define TR_SUP_REASON_BADARGS 0x73757001 /* the tr_sup_args are invalid */
#define TR_SUP_REASON_NOSTART                                                  \
	0x73757002 /* no memory, or a child could not                          \
	            * be spawned (not its init) */
#define TR_SUP_REASON_ALREADY_STARTED                                          \
	0x73757003 /* a child's registered name is held                        \
	            * by another actor */

/* Starts a supervisor and, before returning, all its children in order.
 * The supervisor is not linked to the caller, whether the caller is a plain
 * thread or an actor; stop it with tr_kill(rt, sup, TR_REASON_SHUTDOWN). An
 * actor that wants it linked (OTP's start_link) calls tr_sup_start_link.
 * On failure *sup is TR_PID_NONE.
 * Errors: TR_EINVAL (flags or a spec is invalid: not initialised (a
 * struct_size of 0 or below its first version's, specs of different
 * struct_size), unknown strategy,
 * auto_shutdown, restart or child type, period 0, a shutdown below
 * TR_SHUTDOWN_INFINITY, an empty, too long or duplicate id, not exactly one
 * of start, start_name and start_fn, a name with start_fn, type
 * TR_CHILD_PROCESS without start_fn, a NULL start->handle, an empty or too long
 * start_name or name, a significant permanent child, simple_one_for_one
 * with other than exactly one spec), TR_ENOENT (a start_name that is not
 * registered), TR_EINIT (a child failed to start; the children already
 * started are stopped again, and *init_reason, if not NULL, holds the
 * reason), TR_EALREADY (a child's name is held by another actor; likewise
 * stopped again), TR_ECLOSED, TR_ENOMEM. */
TR_API int tr_sup_start(tr_pid *sup, tr_runtime *rt, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason);

/* tr_sup_start from an actor, linked to it (OTP's start_link): when the
 * running actor exits, the supervisor shuts its children down and exits
 * with the same reason; when the supervisor exits, the actor gets the exit
 * signal. Errors as tr_sup_start. */
TR_API int tr_sup_start_link(tr_ctx *ctx, tr_pid *sup,
    const tr_sup_flags *flags, const tr_child_spec *specs, size_t nspecs,
    int *init_reason);

/* tr_sup_start and tr_sup_start_link with the whole tr_sup_args, for a
 * supervisor with an init callback (args->init). `args` is read only
 * during the call. When init returns TR_INIT_IGNORE they return TR_OK
 * with *sup = TR_PID_NONE, as OTP's start_link returns `ignore`; a
 * reason > 0 from init gives TR_EINIT with it. Errors as tr_sup_start
 * (arguments an init callback gives are checked once it has: TR_EINVAL
 * then as well). */
TR_API int tr_sup_start_args(
    tr_pid *sup, tr_runtime *rt, const tr_sup_args *args, int *init_reason);
TR_API int tr_sup_start_link_args(
    tr_ctx *ctx, tr_pid *sup, const tr_sup_args *args, int *init_reason);

/* Child administration: calls to the supervisor from plain threads, each
 * bounded by `timeout_ms` (negative: wait for ever, as OTP's calls do).
 * They are tr_call()s: an actor gets TR_EINVAL, and sends the same
 * requests without blocking with the builders below (tr_sup_req_*,
 * tr_sup_request_send). Each returns TR_ENOPROC if `sup` is not alive or
 * exits before it answers, TR_ECLOSED if it is shutting down, and
 * TR_ETIMEDOUT if no answer came in time: the request may still be carried
 * out after that (OTP's gen_server:call has the same caveat), and a late
 * answer is dropped. Strings given to a call are copied into the request;
 * a blob argument (the `arg` of a spec by name, or of a simple_one_for_one
 * template made by name) is read by the supervisor when it handles the
 * request, possibly after a timeout: keep it until the call has an answer,
 * or start such a child with tr_sup_start_named_child, whose request
 * carries its argument. */

/* Adds a child and starts it. For simple_one_for_one, `spec` must be NULL
 * and `arg` is the new child's spawn argument: borrowed as above, or, when
 * the template was made by name, NULL or a `const tr_blob *` that is
 * copied when the supervisor handles the request (see above); for the
 * other strategies `arg` is ignored. The new pid goes to *child (may be NULL);
 * TR_OK with TR_PID_NONE means the child's init ignored the start (OTP's
 * {ok, undefined}: the spec is kept, stopped, unless the child is temporary
 * or dynamic). Errors: TR_EALREADY (a running child has this id, or the
 * spec's name is held by another actor; *child is set to that pid),
 * TR_EEXIST (a stopped or restarting child has this id), TR_EINVAL (bad
 * spec), TR_ENOENT (its start_name is not registered), TR_EINIT (the
 * child's init failed: no spec is kept; *init_reason holds the reason if
 * not NULL). */
TR_API int tr_sup_start_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const tr_child_spec *spec, void *arg, int64_t timeout_ms, int *init_reason);

/* Stops a child by its shutdown spec; the spec is kept (unless temporary).
 * Stopping a child that is not running succeeds; one that is restarting
 * stops trying. Errors: TR_ENOENT, TR_ENOTSUP (simple_one_for_one: use
 * tr_sup_terminate_pid). */
TR_API int tr_sup_terminate_child(
    tr_runtime *rt, tr_pid sup, const char *id, int64_t timeout_ms);

/* Stops a dynamic child of a simple_one_for_one supervisor by pid.
 * Errors: TR_ENOENT (not a child of this supervisor, or a supervisor of
 * another strategy, whose children are named by id: OTP's not_found). */
TR_API int tr_sup_terminate_pid(
    tr_runtime *rt, tr_pid sup, tr_pid child, int64_t timeout_ms);

/* Starts a stopped child again from its spec; TR_OK with *child =
 * TR_PID_NONE if its init ignored the start. Errors: TR_ENOENT,
 * TR_ERUNNING (it runs; *child is its pid), TR_ERESTARTING (the supervisor
 * is trying to restart it), TR_EINIT, TR_EALREADY (its name is held by
 * another actor, whose pid goes to *child), TR_ENOTSUP
 * (simple_one_for_one). Like OTP's, it refuses a running child: an
 * operator's restart of one is tr_sup_terminate_child, then this, which
 * answers TR_ERUNNING with the new pid if a group restart (one_for_all,
 * rest_for_one) started the child again in between, as OTP's does. */
TR_API int tr_sup_restart_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const char *id, int64_t timeout_ms, int *init_reason);

/* Deletes the spec of a stopped child. Errors: TR_ENOENT, TR_ERUNNING,
 * TR_ERESTARTING, TR_ENOTSUP (simple_one_for_one). */
TR_API int tr_sup_delete_child(
    tr_runtime *rt, tr_pid sup, const char *id, int64_t timeout_ms);

/* A child, as tr_sup_which_children lists it. Versioned (troupe.h,
 * "Versioned structs"): set struct_size with tr_child_info_init. */
typedef struct tr_child_info {
	uint32_t struct_size;     /* sizeof(tr_child_info), by the _init */
	char id[TR_NAME_MAX + 1]; /* "" for simple_one_for_one children */
	tr_pid pid;               /* TR_PID_NONE when not running */
	tr_child_type type;
	bool restarting; /* not running, and the supervisor is trying to
	                  * restart it (OTP's `restarting`) */
} tr_child_info;

/* The size of the first version of tr_child_info. */
#define TR_CHILD_INFO_V1_SIZE TR_STRUCT_END(tr_child_info, restarting)

/* Zeroes `info` and sets its struct_size. */
static inline void tr_child_info_init(tr_child_info *info)
{
	memset(info, 0, sizeof(*info));
	info->struct_size = (uint32_t)sizeof(*info);
}

/* Lists the children, in start order, into out[0..cap); *n gets the total
 * number (which may exceed cap). out[0].struct_size (tr_child_info_init)
 * is the stride of `out`: each entry filled gets that struct_size and the
 * fields that fit in it, and nothing past out + cap * stride is written.
 * Errors: TR_EINVAL (out NULL with cap > 0, out[0].struct_size 0 or below
 * TR_CHILD_INFO_V1_SIZE), and those of the admin calls above. */
TR_API int tr_sup_which_children(tr_child_info *out, size_t cap, size_t *n,
    tr_runtime *rt, tr_pid sup, int64_t timeout_ms);

/* What tr_sup_count_children counts. Versioned (troupe.h, "Versioned
 * structs"): set struct_size with tr_child_counts_init. */
typedef struct tr_child_counts {
	uint32_t struct_size; /* sizeof(tr_child_counts), by the _init */
	uint32_t specs;       /* all children, running or not */
	uint32_t active;      /* running */
	uint32_t supervisors; /* of type supervisor */
	uint32_t workers;     /* of type worker */
} tr_child_counts;

/* The size of the first version of tr_child_counts. */
#define TR_CHILD_COUNTS_V1_SIZE TR_STRUCT_END(tr_child_counts, workers)

/* Zeroes `counts` and sets its struct_size. */
static inline void tr_child_counts_init(tr_child_counts *counts)
{
	memset(counts, 0, sizeof(*counts));
	counts->struct_size = (uint32_t)sizeof(*counts);
}

/* Counts the children into the fields of *counts that fit in its
 * struct_size. Errors: TR_EINVAL (NULL, struct_size 0 or below
 * TR_CHILD_COUNTS_V1_SIZE), and those of the admin calls above. */
TR_API int tr_sup_count_children(
    tr_child_counts *counts, tr_runtime *rt, tr_pid sup, int64_t timeout_ms);

/* ------------------------------------------------------------------------ */
/* The request protocol behind the admin calls                               */
/* ------------------------------------------------------------------------ */

/* The calls above are tr_call()s to the supervisor of requests that an
 * actor sends itself, without blocking: build one with a tr_sup_req_*
 * builder, send it with tr_sup_request_send (tr_request underneath, with
 * its timeout), and decode the message that answers it with
 * tr_sup_reply_decode in handle. Type tags from TR_SUP_MSG_BASE to
 * TR_SUP_MSG_BASE + 0xff are the supervisor's local protocol, and the two
 * tags of the portable range below its portable one; its other messages
 * are ignored. A supervisor answers requests in the order they arrive; one
 * that arrives while the supervisor is stopping children (a group restart,
 * a terminate) is answered when that is done, except which/count/info,
 * which are answered at once, and a malformed request, which is refused at
 * once. A supervisor that stops answers the requests it holds with
 * TR_ECLOSED (all but info, which it answers until it has exited); one
 * that is killed answers nothing, so give requests a timeout (or monitor
 * the supervisor).
 *
 * These requests carry a tr_child_spec (function pointers, a void *) and
 * the replies raw pids, so the tags lie in the local-only range (troupe.h,
 * TR_MSG_LOCAL_BASE): they never cross a node, and a node or a client
 * endpoint refuses them from the wire. Other nodes and clients start
 * children by behaviour name with TR_SUP_REQ_START_NAMED. */
#define TR_SUP_MSG_BASE 0xFFFE5300u
#define TR_SUP_REQ_START_CHILD (TR_SUP_MSG_BASE + 1)
#define TR_SUP_REQ_TERMINATE_CHILD (TR_SUP_MSG_BASE + 2)
#define TR_SUP_REQ_TERMINATE_PID (TR_SUP_MSG_BASE + 3)
#define TR_SUP_REQ_RESTART_CHILD (TR_SUP_MSG_BASE + 4)
#define TR_SUP_REQ_DELETE_CHILD (TR_SUP_MSG_BASE + 5)
#define TR_SUP_REQ_WHICH_CHILDREN (TR_SUP_MSG_BASE + 6)
#define TR_SUP_REQ_COUNT_CHILDREN (TR_SUP_MSG_BASE + 7)
#define TR_SUP_REQ_INFO (TR_SUP_MSG_BASE + 8) /* see "Looking at a running
                                              * supervisor" below */
#define TR_SUP_REPLY (TR_SUP_MSG_BASE + 0x10)
/* The answer to INFO, in this library's layout (tr_sup_info_decode reads
 * it); an INFO that fails is answered with a TR_SUP_REPLY. */
#define TR_SUP_INFO_REPLY (TR_SUP_MSG_BASE + 0x11)

/* A request, as the builders fill it. Every string it names lives in it,
 * so it may be sent and forgotten; only what a spec borrows by contract (a
 * behaviour, an argument by address, a blob argument) is read from the
 * sender's memory when the supervisor handles it. */
typedef struct tr_sup_request {
	uint32_t type; /* the TR_SUP_REQ_* tag it is sent with */
	/* TERMINATE_CHILD, RESTART_CHILD, DELETE_CHILD: the child's id;
	 * START_CHILD with a spec: the spec's id. */
	char id[TR_NAME_MAX + 1];
	/* START_CHILD with a spec: its start_name and name ("": NULL). */
	char start_name[TR_NAME_MAX + 1];
	char name[TR_NAME_MAX + 1];
	/* START_CHILD: whether `spec` holds a spec (it must not for
	 * simple_one_for_one, and must for the other strategies); its id,
	 * start_name and name are not read (the fields above are). */
	bool has_spec;
	tr_child_spec spec;
	void *arg;    /* START_CHILD, simple_one_for_one: the spawn argument */
	tr_pid pid;   /* TERMINATE_PID: the child */
	uint32_t cap; /* WHICH_CHILDREN, INFO: how many children the reply
	               * may hold */
} tr_sup_request;

/* The builders: each fills *q for one request (zeroing it first) and
 * returns TR_OK, or TR_EINVAL (q NULL; an id NULL, empty or longer than
 * TR_NAME_MAX; a spec not initialised, or whose start_name or name has a
 * bad length). The request holds a copy of the spec in this library's
 * layout. A spec is checked in full by the supervisor. Thread-safe. */
TR_API int tr_sup_req_start_child(
    tr_sup_request *q, const tr_child_spec *spec, void *arg);
TR_API int tr_sup_req_terminate_child(tr_sup_request *q, const char *id);
TR_API int tr_sup_req_terminate_pid(tr_sup_request *q, tr_pid child);
TR_API int tr_sup_req_restart_child(tr_sup_request *q, const char *id);
TR_API int tr_sup_req_delete_child(tr_sup_request *q, const char *id);
TR_API int tr_sup_req_which_children(tr_sup_request *q, size_t cap);
TR_API int tr_sup_req_count_children(tr_sup_request *q);
/* INFO, with room for `cap` children in its reply (see below). */
TR_API int tr_sup_req_info(tr_sup_request *q, size_t cap);

/* Sends a built request from the running actor: tr_request(ctx, ref, sup,
 * q->type, q, sizeof *q, timeout_ms). Exactly one answer reaches the
 * actor's handle, with `ref`: the supervisor's TR_SUP_REPLY, a refusal, or
 * the timeout; tr_sup_reply_decode reads any of them. Errors: TR_EINVAL
 * (NULL, a request no builder made), those of tr_request (TR_ENOPROC: the
 * supervisor is not alive, and nothing will arrive). */
TR_API int tr_sup_request_send(tr_ctx *ctx, uint64_t *ref, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms);

/* The reply to any request (the payload of TR_SUP_REPLY). */
typedef struct tr_sup_reply {
	int32_t err;            /* TR_OK or a TR_E* code, as the calls above */
	int32_t init_reason;    /* err == TR_EINIT: the child's init reason */
	tr_pid pid;             /* START_CHILD, RESTART_CHILD: the child (also
	                         * with TR_EALREADY and TR_ERUNNING) */
	tr_child_counts counts; /* COUNT_CHILDREN */
	uint32_t total;         /* WHICH_CHILDREN: number of children */
	uint32_t n;             /* WHICH_CHILDREN: entries that follow,
	                         * min(total, cap) */
	tr_child_info children[]; /* WHICH_CHILDREN, in start order */
} tr_sup_reply;

/* A decoded answer to a request. */
typedef struct tr_sup_result {
	int32_t err;            /* TR_OK or a TR_E* code, as the calls above
	                         * return; TR_ETIMEDOUT for the request's
	                         * timeout, a refusal's code for a refusal */
	int32_t init_reason;    /* err == TR_EINIT: the child's init reason */
	tr_pid pid;             /* as tr_sup_reply.pid */
	tr_child_counts counts; /* COUNT_CHILDREN */
	uint32_t total;         /* WHICH_CHILDREN: number of children */
	uint32_t n;             /* WHICH_CHILDREN: entries in `children` */
	const tr_child_info *children; /* WHICH_CHILDREN: n entries inside
	                                * the message decoded, valid while it
	                                * is (in handle: until it returns) */
} tr_sup_result;

/* Decodes the message that answered a request (TR_SUP_REPLY), or its
 * TR_MSG_TIMEOUT (err = TR_ETIMEDOUT) or TR_MSG_REFUSED (err = the
 * refusal's code). Errors: TR_EINVAL (NULL, another type, a malformed
 * payload); TR_OK means *out holds the answer, whose own err may be an
 * error. Thread-safe. */
TR_API int tr_sup_reply_decode(tr_sup_result *out, const tr_msg *reply);

/* ------------------------------------------------------------------------ */
/* Looking at a running supervisor                                           */
/* ------------------------------------------------------------------------ */

/* What an operator (an observer, a shell) needs to draw a running tree and
 * tell what it has been doing, without stopping it: the list of the live
 * supervisors of a runtime, and each one's INFO, which the supervisor
 * answers at once, even while it stops children (docs/supervision.md,
 * "Looking at a running tree"). Both are local to the process: INFO's
 * tags lie in the local-only range, and another node's supervisors are
 * seen through that node's own observer. */

/* Lists the live supervisors of `rt` (those whose init has succeeded and
 * that have not exited; a supervisor's own reaper of a failed start is not
 * one) into out[0..cap), in no particular order; *n (may be NULL) gets how
 * many there are, which may exceed cap. A supervisor that is starting or
 * stopping as this runs may or may not be listed, and one listed may be
 * gone when the caller asks it anything (TR_ENOPROC then). Errors:
 * TR_EINVAL (rt NULL, out NULL with cap > 0). Thread-safe, from any
 * thread, actors included: it takes a mutex shared by the supervisors of
 * the process for as long as the copy takes, never blocks otherwise. */
TR_API int tr_sup_list(tr_runtime *rt, tr_pid *out, size_t cap, size_t *n);

/* How many restarts an INFO answer recalls: the supervisor keeps the last
 * TR_SUP_RECENT_MAX (a ring in its own state, written by its thread only). */
#define TR_SUP_RECENT_MAX 8

/* The supervisor itself, as INFO describes it. Versioned (troupe.h,
 * "Versioned structs"): set struct_size with tr_sup_status_init. */
typedef struct tr_sup_status {
	uint32_t struct_size; /* sizeof(tr_sup_status), by the _init */
	tr_pid pid;           /* the supervisor */
	tr_pid parent;        /* the actor whose exit it follows: the parent
	                       * supervisor of a nested one, the actor of
	                       * tr_sup_start_link; TR_PID_NONE for
	                       * tr_sup_start */
	char name[TR_NAME_MAX + 1]; /* its registered name, or "" */
	tr_sup_strategy strategy;
	uint32_t intensity;
	uint32_t period_ms;
	tr_auto_shutdown auto_shutdown;
	uint64_t restarts; /* restarts since it started, counted as the
	                    * intensity counts them: one per exit that makes
	                    * it restart (a group restart is one, a retry of
	                    * a failed start another) */
	uint32_t nrecent;  /* restarts recalled: min(restarts,
	                    * TR_SUP_RECENT_MAX) */
	uint32_t nchildren; /* children, running or not (for
	                     * simple_one_for_one: the dynamic ones) */
	uint32_t nlisted;   /* children in the answer: min(nchildren, the
	                     * request's cap), in start order */
	uint32_t active;    /* children running */
	uint32_t supervisors; /* children of type supervisor */
	uint32_t workers;     /* the others (process children included) */
	bool busy;          /* stopping children (a group restart, a
	                     * terminate): requests that change the tree
	                     * wait for it */
	bool shutting_down; /* stopping all children to exit */
} tr_sup_status;

/* The size of the first version of tr_sup_status. */
#define TR_SUP_STATUS_V1_SIZE TR_STRUCT_END(tr_sup_status, shutting_down)

/* Zeroes `st` and sets its struct_size. */
static inline void tr_sup_status_init(tr_sup_status *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* One restart the supervisor made. Versioned: set struct_size with
 * tr_sup_restart_entry_init. */
typedef struct tr_sup_restart_entry {
	uint32_t struct_size; /* sizeof(tr_sup_restart_entry), by the _init */
	int32_t reason;  /* what the child exited with (tr_reason_name) */
	uint64_t at_ms;  /* when: ms since the epoch (CLOCK_REALTIME) */
	tr_pid old_pid;  /* the child that exited */
	tr_pid new_pid;  /* the child started in its place, or TR_PID_NONE:
	                  * its start failed (the retry is a newer entry),
	                  * its init ignored the start, or a group restart is
	                  * still stopping the others */
	char id[TR_NAME_MAX + 1]; /* the child's id, "" for a dynamic one */
	char text[TR_REASON_TEXT_MAX]; /* the exit's text (a process
	                                * child's signal, a tr_exit_text),
	                                * or "" */
} tr_sup_restart_entry;

/* The size of the first version of tr_sup_restart_entry. */
#define TR_SUP_RESTART_ENTRY_V1_SIZE TR_STRUCT_END(tr_sup_restart_entry, text)

static inline void tr_sup_restart_entry_init(tr_sup_restart_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->struct_size = (uint32_t)sizeof(*e);
}

/* A child, as INFO describes it. Versioned: set struct_size with
 * tr_child_status_init. */
typedef struct tr_child_status {
	uint32_t struct_size;       /* sizeof(tr_child_status), by the _init */
	char id[TR_NAME_MAX + 1];   /* "" for simple_one_for_one children */
	char name[TR_NAME_MAX + 1]; /* the spec's registered name, or "" */
	tr_pid pid;                 /* TR_PID_NONE when not running */
	tr_child_type type;
	tr_restart restart;
	int32_t shutdown_ms;
	uint32_t restarts; /* times the supervisor started it again after an
	                    * exit (its own, or as part of a group restart);
	                    * tr_sup_restart_child does not count */
	bool restarting;   /* as tr_child_info.restarting */
	bool significant;
} tr_child_status;

/* The size of the first version of tr_child_status. */
#define TR_CHILD_STATUS_V1_SIZE TR_STRUCT_END(tr_child_status, significant)

static inline void tr_child_status_init(tr_child_status *c)
{
	memset(c, 0, sizeof(*c));
	c->struct_size = (uint32_t)sizeof(*c);
}

/* Decodes the answer to an INFO request (TR_SUP_INFO_REPLY; an error
 * answer, TR_SUP_REPLY; a refusal; the request's timeout) into the
 * caller's structs: *status, the recalled restarts newest first into
 * recent[0..recent_cap), the children in start order into
 * children[0..children_cap). As with tr_sup_which_children, the
 * struct_size of recent[0] and children[0] is each array's stride, every
 * entry filled gets it, and nothing past the array is written; an array
 * may be NULL with a cap of 0. status->nrecent and status->nlisted say how
 * many entries the answer had (the caller's arrays get the first
 * min(that, cap)). Returns the answer: TR_OK, or its error (TR_ETIMEDOUT,
 * a refusal's code, TR_ECLOSED, TR_ENOMEM, TR_EMSGSIZE for a reply too
 * large: ask for fewer children); TR_EINVAL for bad arguments (NULL, a
 * struct_size 0 or below its first version) or a malformed message, as
 * the supervisor never answers a built INFO request with TR_EINVAL. On an
 * error *status is zeroed but for its struct_size. Thread-safe. */
TR_API int tr_sup_info_decode(tr_sup_status *status,
    tr_sup_restart_entry *recent, size_t recent_cap,
    tr_child_status *children, size_t children_cap, const tr_msg *reply);

/* INFO from a plain thread: tr_call of tr_sup_req_info(children_cap),
 * decoded as by tr_sup_info_decode. Errors: TR_EINVAL (as the decode; an
 * actor caller: it sends the request with tr_sup_request_send instead),
 * and those of the admin calls above (TR_ENOPROC: `sup` is not alive or
 * exits before it answers; TR_ETIMEDOUT). */
TR_API int tr_sup_info(tr_sup_status *status, tr_sup_restart_entry *recent,
    size_t recent_cap, tr_child_status *children, size_t children_cap,
    tr_runtime *rt, tr_pid sup, int64_t timeout_ms);

/* ------------------------------------------------------------------------ */
/* Starting children from other nodes and from clients                       */
/* ------------------------------------------------------------------------ */

/* A portable request: it names a behaviour registered with
 * tr_behaviour_register on the supervisor's runtime, and its payload has a
 * fixed byte layout that does not depend on the host, so it may come from
 * another node (tr_call or tr_request on a remote supervisor pid), from a
 * client endpoint, or from any local caller. Type tags from
 * TR_SUP_PORTABLE_BASE to TR_SUP_PORTABLE_BASE + 0xff are the supervisor's
 * portable ones; an application should not use them for its own messages
 * to a supervisor.
 *
 * TR_SUP_REQ_START_NAMED payload (integers little-endian, strings NUL-
 * padded: the bytes after the first NUL of a field must be 0), exactly
 * TR_SUP_NAMED_HDR_SIZE + arg_size bytes:
 *
 *   offset size field
 *        0    4 version       u32, TR_SUP_NAMED_VERSION (1)
 *        4    4 restart       u32, 0 permanent, 1 transient, 2 temporary
 *        8    4 shutdown_ms   i32, -1 infinity, 0 brutal kill, > 0 ms
 *       12    4 child type    u32, 0 worker, 1 supervisor
 *       16    4 flags         u32, bit 0 significant, others 0
 *       20    4 arg_size      u32, the argument's length
 *       24   65 id            1..64 bytes and NUL padding; for
 *                             simple_one_for_one, empty (all 0)
 *       89   65 behaviour     1..64 bytes and NUL padding
 *      154    n argument      arg_size bytes, opaque
 *
 * The supervisor checks every field (TR_EINVAL for a size other than
 * 154 + arg_size, an unknown version, a value out of range, a field without
 * its NUL or with junk after it, a significant permanent child; TR_ENOENT
 * for an unknown behaviour), builds the child spec itself (start_name
 * style: start = the registered behaviour, each start gets a fresh tr_blob
 * copy of the argument) and answers with OTP's start_child results, like
 * tr_sup_start_child: TR_OK (with no child if its init ignored the start),
 * TR_EALREADY (with the running child), TR_EEXIST, TR_EINIT (with the init
 * reason; no spec is kept), TR_ENOMEM, TR_ECLOSED. For simple_one_for_one it
 * starts a dynamic child of the template with the argument, if the template was
 * made by name (its start_name): the id must be empty and the behaviour the
 * template's (else TR_EINVAL); restart, shutdown, type and significant are
 * checked but the template's apply. A template made by address gives
 * TR_ENOTSUP: its argument is a pointer, which a remote caller cannot give.
 *
 * TR_SUP_NAMED_REPLY payload, exactly TR_SUP_NAMED_REPLY_SIZE bytes, all
 * little-endian:
 *
 *   offset size field
 *        0    4 version       u32, TR_SUP_NAMED_VERSION (1)
 *        4    4 err           i32, TR_OK or a TR_E* code
 *        8    4 init_reason   i32, with TR_EINIT: the child's init reason
 *       12    4 slot          u32, with TR_OK and TR_EALREADY: the child
 *       16    4 gen           u32, (else 0; 0 also with TR_OK when the
 *                             child's init ignored the start)
 *
 * The child always lives on the supervisor's node, so its pid is
 * {reply->sender.node, slot, gen}: tr_sup_named_child_pid builds it, and
 * tr_sup_named_reply_decode does the whole decoding. */
#define TR_SUP_PORTABLE_BASE 0x53555100u
#define TR_SUP_REQ_START_NAMED (TR_SUP_PORTABLE_BASE + 1)
#define TR_SUP_NAMED_REPLY (TR_SUP_PORTABLE_BASE + 0x10)

#define TR_SUP_NAMED_VERSION 1u
#define TR_SUP_NAMED_STR_SIZE (TR_NAME_MAX + 1) /* id and behaviour */
#define TR_SUP_NAMED_HDR_SIZE (24 + 2 * TR_SUP_NAMED_STR_SIZE) /* 154 */
#define TR_SUP_NAMED_REPLY_SIZE 20

/* A child to start by behaviour name. */
typedef struct tr_sup_named_spec {
	const char *id;        /* 1..TR_NAME_MAX bytes; NULL or "" for a
	                        * simple_one_for_one supervisor */
	const char *behaviour; /* registered on the supervisor's runtime,
	                        * 1..TR_NAME_MAX bytes */
	tr_restart restart;
	int32_t shutdown_ms; /* as in tr_child_spec */
	tr_child_type type;
	bool significant;
	const void *arg; /* the argument's bytes, copied; NULL if arg_size
	                  * is 0 */
	size_t arg_size;
} tr_sup_named_spec;

/* Fills a named spec with OTP's defaults for a worker (as
 * tr_child_spec_init): permanent, shutdown 5000 ms, not significant. */
TR_API void tr_sup_named_spec_init(tr_sup_named_spec *spec, const char *id,
    const char *behaviour, const void *arg, size_t arg_size);

/* The size of spec's START_NAMED payload (TR_SUP_NAMED_HDR_SIZE +
 * arg_size), or 0 if it cannot have one (NULL, or an argument too long for
 * the layout's u32). */
TR_API size_t tr_sup_named_size(const tr_sup_named_spec *spec);

/* Encodes spec's START_NAMED payload into buf[0..cap) and stores its size
 * in *len (also when cap is too small), for tr_request or tr_call with
 * type TR_SUP_REQ_START_NAMED. Checks what can be checked without the
 * supervisor (everything but the behaviour's registration and the
 * strategy). Errors: TR_EINVAL (NULL, a field out of range, an id or
 * behaviour name of a bad length, arg NULL with arg_size > 0, a
 * significant permanent child), TR_EMSGSIZE (cap smaller than *len).
 * Thread-safe. */
TR_API int tr_sup_named_encode(
    void *buf, size_t cap, size_t *len, const tr_sup_named_spec *spec);

/* The pid of a child named by slot and gen in a TR_SUP_NAMED_REPLY: it
 * lives on the node of the supervisor that sent `reply`. TR_PID_NONE for a
 * gen of 0. */
static inline tr_pid tr_sup_named_child_pid(
    const tr_msg *reply, uint32_t slot, uint32_t gen)
{
	if (gen == 0)
		return TR_PID_NONE;
	return (tr_pid){reply->sender.node, slot, gen};
}

/* A decoded answer to a START_NAMED request. */
typedef struct tr_sup_named_reply {
	int32_t err;         /* TR_OK or a TR_E* code, as described above */
	int32_t init_reason; /* err == TR_EINIT: the child's init reason */
	tr_pid child;        /* TR_OK, TR_EALREADY: the child; else none
	                      * (none also with TR_OK: init ignored it) */
} tr_sup_named_reply;

/* Decodes the message an actor got back for its START_NAMED tr_request
 * (or the reply of a tr_call): a TR_SUP_NAMED_REPLY, and also a
 * TR_MSG_REFUSED (err = the refusal's code) or the request's
 * TR_MSG_TIMEOUT (err = TR_ETIMEDOUT), so that every answer to the request
 * decodes. Errors: TR_EINVAL (NULL, another type, a malformed payload);
 * TR_OK means *out holds the answer, whose own err may be an error. */
TR_API int tr_sup_named_reply_decode(
    tr_sup_named_reply *out, const tr_msg *reply);

/* Starts a child by name on supervisor `sup`, which may live on any node:
 * encodes the request, tr_call()s it, decodes the answer. The child's pid
 * goes to *child (may be NULL) with TR_OK and TR_EALREADY, the init reason
 * to *init_reason (may be NULL) with TR_EINIT. `timeout_ms` bounds the
 * wait (negative: for ever; a remote supervisor's node going down ends it
 * with TR_ENOPROC anyway). For plain threads only (an actor gets TR_EINVAL
 * and uses tr_sup_named_encode with tr_request). Errors: those of the
 * request above, of tr_sup_named_encode, and of tr_call (TR_ENOPROC,
 * TR_ETIMEDOUT, TR_ECLOSED, a refusal's code); TR_EINVAL also for a
 * malformed reply. */
TR_API int tr_sup_start_named_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const tr_sup_named_spec *spec, int64_t timeout_ms, int *init_reason);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_SUP_H */
