/*
 * Supervisors, inside: the state of one supervisor and what its files share.
 *
 * A supervisor (include/troupe/sup.h) is an ordinary actor built on the
 * public API alone, but for the two core functions core.h names. Its files,
 * one concern each:
 *
 *   sup.c      the behaviour (init, handle, terminate), the reaper of a
 *              failed start, tr_sup_start and its variants;
 *   spec.c     checking flags and specs; making children from specs;
 *   pidmap.c   the map from a running child's pid to its child;
 *   child.c    the child list, starting a child, reports;
 *   restart.c  what happens when a child exits on its own: restart types,
 *              strategies, the intensity window, retries, auto_shutdown;
 *   stop.c     stopping children (by shutdown spec, under a monitor) and
 *              the supervisor's own shutdown;
 *   admin.c    the supervisor's side of the admin requests;
 *   named.c    the portable start-by-name request, both sides;
 *   live.c     the table of the live supervisors (tr_sup_list);
 *   info.c     what a supervisor keeps for operators (its recent
 *              restarts) and the INFO request, both sides;
 *   calls.c    the callers' side of the admin requests: the blocking calls,
 *              the request builders and the reply decoder.
 *
 * Everything here runs on the thread running the supervisor, except
 * calls.c and the start functions of sup.c, which run on the caller's.
 */
#ifndef TR_SUP_INT_H
#define TR_SUP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core.h"
#include "troupe/sup.h"

/* Messages the supervisor sends itself (always checked to come from self).
 * Their payload is one 64-bit token naming what they are about. */
#define MSG_RETRY (TR_SUP_MSG_BASE + 0x20) /* try a failed restart again */
#define MSG_KILL (TR_SUP_MSG_BASE + 0x21)  /* a shutdown timeout expired */
#define MSG_REAP (TR_SUP_MSG_BASE + 0x22)  /* reaper: begin stopping */

enum child_state {
	C_STOPPED = 0, /* not running; the spec is kept */
	C_RUNNING,     /* pid valid, in the pid map */
	C_STOPPING,    /* pid valid, in the map; asked to exit, not yet gone */
	C_PENDING,     /* exited while an operation was under way; its exit
	                * is handled when the operation is done */
	C_RESTARTING,  /* a restart failed; a MSG_RETRY is on its way */
};

typedef struct child child;
struct child {
	child *prev, *next; /* start order */
	tr_pid pid;
	const tr_behaviour *start;
	tr_child_start_fn *start_fn; /* started by a start function, or NULL */
	void *arg;          /* started by address or start function: the
	                     * borrowed argument */
	tr_blob *blob;      /* started by name: the spec's copy of the
	                     * argument, or NULL for an empty one */
	const char *name;   /* registered under this while it runs, or NULL;
	                     * points into this allocation, after id */
	uint64_t kill_tok;  /* token of the armed shutdown timer's MSG_KILL */
	uint64_t retry_tok; /* token of the MSG_RETRY on its way */
	uint64_t mref;      /* C_STOPPING: the monitor on it, or 0 */
	tr_timer timer;     /* the shutdown timer, or 0 */
	int32_t shutdown_ms;
	int32_t pending_reason;
	int32_t last_reason; /* of its last exit, for the reports */
	tr_pid last_pid;     /* its pid before the last exit (info.c) */
	uint64_t rec_seq;    /* the recent restart waiting for its new pid
	                      * (info.c), or 0 */
	uint32_t restarts;   /* restarted by the supervisor (info.c) */
	uint8_t restart;
	uint8_t type;
	uint8_t state;
	bool significant;
	bool by_name;       /* started by name: init gets a blob it owns */
	bool pending_retry; /* C_PENDING for a MSG_RETRY, not an exit */
	char id[];
};

/* The operation that is waiting for children to exit, if any. */
enum op {
	OP_NONE = 0,
	OP_GROUP,     /* one_for_all / rest_for_one: stopping the group */
	OP_TERMINATE, /* terminate_child: stopping one child */
	OP_SHUTDOWN,  /* the supervisor stops all children, then exits */
};

/* A START_NAMED request once decoded and checked: what a child spec by
 * name needs, with its own copy of the argument. */
typedef struct named_req {
	char id[TR_NAME_MAX + 1];
	const tr_behaviour *b; /* found in the registry */
	tr_child_spec spec;    /* restart, shutdown_ms, type, significant */
	tr_blob *blob;         /* owned */
} named_req;

/* An admin request put aside while an operation was under way. */
typedef struct deferred deferred;
struct deferred {
	deferred *next;
	tr_pid sender;
	uint64_t ref;
	uint32_t type;
	tr_sup_request req; /* the local requests */
	named_req *nq;      /* TR_SUP_REQ_START_NAMED, owned */
};

/* Open-addressing map from a running child's pid to its child (pidmap.c). */
typedef struct pidmap {
	struct pm_slot {
		tr_pid pid; /* gen 0: empty */
		child *c;
	} * slots;
	uint32_t cap; /* a power of two, or 0 */
	uint32_t n;
} pidmap;

typedef struct sup {
	tr_runtime *rt;
	tr_pid self;
	/* While an exit is handled: its text (exit_info.text, e.g. "killed
	 * by signal 11 (SIGSEGV)" for a process child), for the reports it
	 * causes; else NULL. */
	const char *exit_text;
	tr_pid parent; /* the actor that started it linked, or none */
	tr_sup_flags flags;

	child *head, *tail;
	uint32_t nchildren;
	pidmap map;

	/* simple_one_for_one: the template every dynamic child is made of. */
	child *tmpl;

	/* Restart times within the period, oldest first: a ring that grows
	 * up to intensity + 1 entries (never beyond what the restarts of one
	 * period need, so a large intensity costs nothing until used). */
	uint64_t *ring;
	uint32_t ring_cap, ring_head, ring_n;

	enum op op;
	child *cursor;     /* OP_GROUP / OP_SHUTDOWN: next child to stop,
	                    * walking towards the head */
	child *group_at;   /* OP_GROUP: the first child of the group, or NULL
	                    * for all (one_for_all) */
	child *term_child; /* the child a terminate request waits for */
	tr_pid term_sender;
	uint64_t term_ref;
	uint32_t nstopping; /* children in C_STOPPING */
	uint32_t npending;  /* children in C_PENDING */
	uint64_t par_tok;   /* OP_SHUTDOWN of simple_one_for_one: the token
	                     * of the one shared shutdown timer */
	tr_timer par_timer;
	bool shutting_down;
	bool exited; /* tr_exit was called */
	bool reaper; /* stopping the children of a supervisor whose init
	              * failed (see sup.c) */
	int exit_reason;

	deferred *dq_head, *dq_tail;
	uint64_t next_tok;

	/* For operators (info.c): restarts since the start, and the last
	 * TR_SUP_RECENT_MAX of them, restart k (from 1) at recent[(k - 1) %
	 * TR_SUP_RECENT_MAX]; allocated at the first restart. */
	uint64_t nrestarts;
	struct restart_rec *recent;
	/* Its entry in the table of live supervisors (live.c), read and
	 * written under that table's lock only. */
	uint32_t live_idx;
	bool live;
} sup;

/* What child_start did, besides TR_OK and the TR_E* codes. */
#define SUP_IGNORED 1 /* the child's init returned TR_INIT_IGNORE */

static inline bool sup_is_simple(const sup *s)
{
	return s->flags.strategy == TR_SUP_SIMPLE_ONE_FOR_ONE;
}

static inline bool child_running(const child *c)
{
	return c->state == C_RUNNING || c->state == C_STOPPING;
}

/* Between restart attempts: OTP's `restarting`. */
static inline bool child_restarting(const child *c)
{
	return c->state == C_RESTARTING ||
	       (c->state == C_PENDING && c->pending_retry);
}

static inline bool normal_exit(int reason)
{
	return reason == TR_REASON_NORMAL || reason == TR_REASON_SHUTDOWN;
}

/* Whether a child that was being stopped ended badly enough to report
 * (shutdown_error): killed and shutdown are what stopping asks for, and
 * normal is fine from a child that would not be restarted for it anyway. */
static inline bool tr__sup_stop_error(const child *c, int reason)
{
	return reason != TR_REASON_SHUTDOWN && reason != TR_REASON_KILLED &&
	       !(reason == TR_REASON_NORMAL &&
	           c->restart != TR_RESTART_PERMANENT);
}

static inline uint64_t sup_new_tok(sup *s)
{
	return ++s->next_tok;
}

/* ---- spec.c ------------------------------------------------------------- */

/* The caller's versioned structs (troupe.h, "Versioned structs") read into
 * the library's own: fields past the caller's struct_size take their
 * defaults. TR_OK, TR_EINVAL (NULL, struct_size 0 or too small, an array
 * whose entries differ in struct_size) or TR_ENOTSUP (a field this
 * library does not know is set). tr__sup_spec_at reads entry i of an
 * array of specs, whose stride is specs[0].struct_size. */
int tr__sup_flags_in(tr_sup_flags *dst, const tr_sup_flags *src);
int tr__sup_args_in(tr_sup_args *dst, const tr_sup_args *src);
int tr__sup_spec_in(tr_child_spec *dst, const tr_child_spec *src);
int tr__sup_spec_at(tr_child_spec *dst, const tr_child_spec *specs, size_t i);

bool tr__sup_valid_flags(const tr_sup_flags *f);
/* An id or a name: 1..TR_NAME_MAX bytes. */
bool tr__sup_valid_id(const char *id);
/* NULL, or a valid name. */
bool tr__sup_valid_opt_name(const char *name);
/* The restart type, shutdown, child type and significance. */
bool tr__sup_valid_policy(const tr_child_spec *c);
/* All but the id: start or start_name, the registered name, the policy. */
bool tr__sup_valid_spec_body(const tr_child_spec *c);
bool tr__sup_valid_args(const tr_sup_args *a);

child *tr__sup_child_new(const tr_child_spec *spec, const tr_behaviour *b,
    const char *id, const char *name, void *arg);
void tr__sup_child_free(child *c);
int tr__sup_child_set_blob(child *c, const tr_blob *src);
int tr__sup_child_from_spec(
    tr_runtime *rt, const tr_child_spec *sp, const char *id, child **out);
tr_child_spec tr__sup_tmpl_spec(const sup *s);
/* A malloc'd blob holding a copy of data[0..size); NULL without memory. */
tr_blob *tr__sup_blob_new(const void *data, size_t size);

/* ---- pidmap.c ----------------------------------------------------------- */

child *tr__pm_get(const pidmap *m, tr_pid p);
/* Makes room for one more entry, so that tr__pm_put cannot fail. */
int tr__pm_reserve(pidmap *m);
void tr__pm_put(pidmap *m, tr_pid p, child *c);
void tr__pm_del(pidmap *m, tr_pid p);

/* ---- child.c ------------------------------------------------------------ */

/* Emits a supervisor report (domain "supervisor_report", from the
 * supervisor's ctx): `event` is OTP's error context, `c` the child it is
 * about (NULL: the supervisor itself), `pid` the child's pid or another
 * pid the event names, `reason` the exit or init reason. */
void tr__sup_report(tr_ctx *ctx, sup *s, const child *c, tr_pid pid,
    const char *event, int reason);
void tr__sup_list_append(sup *s, child *c);
/* Unlinks a child that is not running and frees it. */
void tr__sup_child_remove(sup *s, child *c);
child *tr__sup_find_id(sup *s, const char *id);
/* Starts a child that is not running. TR_OK: running. SUP_IGNORED: its
 * init ignored the start; nothing changed. TR_EINIT: *reason holds the
 * init reason. TR_EALREADY: its registered name is held by *holder. Other
 * codes: the spawn's. Failures are reported (start_failed). */
int tr__sup_child_start(
    tr_ctx *ctx, sup *s, child *c, int *reason, tr_pid *holder);
/* Takes a child's pid out of service once it is known to be gone. */
void tr__sup_child_gone(sup *s, child *c);

/* ---- restart.c ---------------------------------------------------------- */

void tr__sup_on_exit(tr_ctx *ctx, sup *s, const tr_exit_info *x);
void tr__sup_on_retry(tr_ctx *ctx, sup *s, uint64_t tok);
/* A child that exited on its own: OTP's do_restart. */
void tr__sup_child_exited(tr_ctx *ctx, sup *s, child *c, int reason);
/* Counts a restart and restarts a child that is not running. */
void tr__sup_restart(tr_ctx *ctx, sup *s, child *c);
/* Goes on with a group restart once a child of the group has stopped. */
void tr__sup_group_step(tr_ctx *ctx, sup *s);

/* ---- stop.c ------------------------------------------------------------- */

/* Asks a running child to exit by its shutdown spec and monitors it; its
 * EXIT or DOWN says when it is gone. With own_timer false the caller arms
 * one timer for many children. */
void tr__sup_child_stop(tr_ctx *ctx, sup *s, child *c, bool own_timer);
/* A child asked to exit is gone: finish whatever was waiting for it. */
void tr__sup_child_stopped(
    tr_ctx *ctx, sup *s, child *c, int reason, bool via_down);
void tr__sup_on_down(tr_ctx *ctx, sup *s, const tr_exit_info *x);
void tr__sup_on_kill_timer(sup *s, uint64_t tok);
/* Stops the running children from the cursor towards stop_at; true once
 * the walk is over. */
bool tr__sup_walk_stop(tr_ctx *ctx, sup *s, child *stop_at, bool drop_temp);
void tr__sup_begin_shutdown(tr_ctx *ctx, sup *s, int reason);

/* ---- admin.c ------------------------------------------------------------ */

/* A request: `q` for the local ones, `nq` (taken over) for START_NAMED. */
void tr__sup_on_request(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref,
    uint32_t type, const tr_sup_request *q, named_req *nq);
/* Handles what was put aside while an operation ran. */
void tr__sup_drain(tr_ctx *ctx, sup *s);
void tr__sup_flush_deferred(tr_ctx *ctx, sup *s, int err);
void tr__sup_reply_err(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid);
/* Frees what is still queued, answering nobody (the supervisor's end). */
void tr__sup_free_deferred(sup *s);

/* ---- calls.c ------------------------------------------------------------ */

/* What kind of answer a reply decoder holds: 1 a reply of type `type`, to
 * decode on; 0 the end of a call without one (a refusal or a timeout), its
 * code in *err; -1 nothing a supervisor call ends with (another type, a
 * refusal without a code). */
int tr__sup_reply_kind(int32_t *err, const tr_msg *reply, uint32_t type);

/* ---- live.c ------------------------------------------------------------- */

/* Lists a supervisor whose init succeeded: TR_OK, or TR_ENOMEM. */
int tr__sup_live_add(sup *s);
/* Unlists it (nothing if it was not listed). */
void tr__sup_live_del(sup *s);

/* ---- info.c ------------------------------------------------------------- */

/* A restart of child `c` counted against the intensity: remembered, with
 * c's last exit (reason, pid, and the exit text if its EXIT is being
 * handled), and waiting for c's new pid. */
void tr__sup_note_restart(sup *s, child *c);
/* Child `c` was started again by a restart: counted, and its new pid
 * given to the restart that waited for it. */
void tr__sup_note_restarted(sup *s, child *c);
/* Answers an INFO request with room for `cap` children. */
void tr__sup_req_info(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref,
    uint32_t cap);

/* ---- named.c ------------------------------------------------------------ */

/* Decodes and checks a START_NAMED payload. Errors: TR_EINVAL, TR_ENOENT,
 * TR_ENOMEM. */
int tr__sup_named_decode(
    tr_runtime *rt, const unsigned char *p, size_t n, named_req **out);
void tr__sup_named_free(named_req *nq);
void tr__sup_named_reply(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid);

/* ---- sup.c -------------------------------------------------------------- */

/* How a supervisor's init learns who started it (its parent, whose exit it
 * must follow) and how it hands a spawn error back to its starter: the
 * starter sets a hint before a synchronous spawn, which runs init on this
 * very thread, and init takes it if the argument matches. */
typedef struct start_hint {
	const void *arg;
	tr_pid parent;
	int err;
} start_hint;

/* Sets the id tr_sup_starting_id returns on this thread; returns the one
 * it replaces. */
const char *tr__sup_starting_set(const char *id);

/* Sets the calling thread's hint; returns the one it replaces. */
start_hint *tr__sup_hint_set(start_hint *h);

#endif /* TR_SUP_INT_H */
