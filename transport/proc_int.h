/*
 * Process children, inside the node library: the records of the processes
 * a node launched (proc.c starts them, proc_watch.c watches them until they
 * are reaped) and the hooks the node calls (node_tick.c's teardown,
 * node_out.c's send, node_rx.c's receive, tr_node_stop).
 *
 * A record lives from its launch until its process is reaped, its output
 * has reached EOF (or its drain time is over), the links and monitors held
 * for it have been answered, and its start is no longer waited for. All of
 * it is under the table's lock, which is never held while calling into the
 * node or the runtime.
 */
#ifndef TR_PROC_INT_H
#define TR_PROC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "node_int.h"
#include "proc_lines.h"
#include "troupe/proc.h"

/* The wire protocol between a parent and its process child, on top of
 * ordinary messages: the child's READY, from a port of the child to the
 * parent's start port. Payload: i32 err, i32 init_reason, then the root
 * pid's encoding (tr_pid_encode). Local-range types: they never come from
 * any peer but as answers to a start in progress. */
#define TR__PROC_READY 0xFFFD0301u
/* From the watcher to a start port: the process ended before it was up.
 * Payload: i32 reason. */
#define TR__PROC_DIED 0xFFFD0302u
/* From the start to the child's port, once the READY is in and the root
 * linked: the root's init may return. Without it, no crash right after
 * init could be told from a failed start (the READY would be lost with
 * the process). No payload. */
#define TR__PROC_GO 0xFFFD0303u

/* A warm process (proc_warm.c), once its node is up: to its start port,
 * from a port of the child, it waits for TAKE before its root's init.
 * No payload. */
#define TR__PROC_WARM 0xFFFD0304u
/* From the start that took a warm process to the child's port: go on
 * (its root's init, READY, GO as any start). No payload. */
#define TR__PROC_TAKE 0xFFFD0305u
/* The control data's flags (proc.c). */
#define TR__PROC_CTL_WARM 1u

/* Where the child is in its life. */
enum tr__proc_state {
	TR__PROC_STARTING = 0, /* launched; its start waits for READY */
	TR__PROC_UP,           /* its start returned its root pid */
	TR__PROC_ENDED,        /* its end is known (reason set) */
};

struct tr__proc {
	struct tr__proc *next;
	char node[TR_NODE_NAME_MAX + 1]; /* the child node's name */
	char id[TR_NAME_MAX + 1];        /* the supervisor's child id, or "" */
	char listen[640];                /* the child node's listen URL */
	pid_t ospid;                     /* 0 until launched */
	int pidfd;                       /* -1: reaped by polling waitpid */
	int out_fd;                      /* -1 once at EOF */
	int err_fd;
	int ctl_fd; /* write end of the child's fd 3; -1 once closed */
	enum tr__proc_state state;
	bool reaped;
	bool starting;   /* its start function, or the warm list, holds it */
	const void *warm_key; /* a warm process of this spec, not taken */
	tr_port *warm_port;   /* then: its start port */
	bool root_ended; /* an EXIT or DOWN from its root came: its end
	                  * reached whoever watched it */
	bool torn;       /* its node's teardown has run */
	int32_t cause;   /* what troupe did to it, if anything: 0, or the
	                  * reason a signal troupe sent stands for */
	int32_t reason;  /* state ENDED: its end */
	char text[TR_REASON_TEXT_MAX];
	tr_pid root;   /* TR__PROC_UP: the root pid (on the child's node) */
	tr_pid waiter; /* the start port, while starting */
	uint64_t memory_limit;
	int64_t rss_at; /* memory_limit: the next look at its RSS (ms) */
	uint32_t cpu_limit_s;
	uint32_t term_ms;
	int64_t term_at;   /* SIGTERM due at this time (ms), or 0 */
	int64_t drain_by;  /* reaped: output read until then at most */
	int64_t silent_by; /* handed over and not reaped: killed as silent
	                    * at this time (ms), or 0 */
	/* Links and monitors of the child's node that its teardown handed
	 * over, answered once the reason is known. */
	bool held;
	struct tr__xlink *links;
	struct tr__xmon *mons;
	uint32_t nlinks, nmons;
	struct tr__lines out, err;
};

struct tr__procs {
	struct tr_node *n;
	char *cookie; /* the node's, for its children; wiped at the end */
	pthread_mutex_t lock;
	struct tr__proc *head;
	uint32_t count;
	uint64_t seq; /* names of child nodes */
	pthread_t thread;
	bool thread_started;
	bool stopping;
	int wake[2];   /* the watcher's self-pipe */
	tr_port *port; /* the watcher's, to tell start ports of deaths */
	_Atomic uint64_t started, exited, killed, refused, lines;
	_Atomic uint64_t warm, taken;
};

/* proc.c: makes the record of a launch of `s` (warm_key non-NULL: a warm
 * process of that spec) and launches it; on TR_OK *rp is in the table,
 * starting, and *portp its start port, the caller's. */
int tr__proc_begin(struct tr__procs *t, const tr_proc_spec *s,
    const void *warm_key, struct tr__proc **rp, tr_port **portp);

/* proc_warm.c. Takes a warm process of spec `key` for a start: on true,
 * *rp is starting for the caller, with start port *portp (the caller's).
 * Warm processes found dead on the way are dropped. */
bool tr__proc_warm_take(struct tr__procs *t, const void *key,
    struct tr__proc **rp, tr_port **portp);
/* Launches warm processes of `s` (by address `key`) up to s->warm. */
void tr__proc_warm_fill(
    struct tr__procs *t, const tr_proc_spec *s, const void *key);
/* Table lock held: lets go of up to `cap` warm processes of `key` (any,
 * for NULL), killed (the watcher reaps and frees them), and moves their
 * start ports to `ports`, returning how many: the caller closes them once
 * it has let go of the lock. */
size_t tr__proc_warm_drop_locked(
    struct tr__procs *t, const void *key, tr_port **ports, size_t cap);

/* Makes the node's table (no thread yet). Errors: TR_ENOMEM. */
int tr__procs_init(struct tr_node *n, const char *cookie);
/* Kills every process child, reaps it, stops the watcher and frees the
 * records. The table stays, empty, for the hooks that nng's callbacks and
 * the node's threads may still call while the node stops. */
void tr__procs_stop(struct tr_node *n);
/* Frees the table; once no callback of the node can run (node_free). */
void tr__procs_fini(struct tr_node *n);
/* Starts the watcher thread if it is not running. Table lock held. */
int tr__procs_thread_locked(struct tr__procs *t);
/* Wakes the watcher (any thread, any lock). */
void tr__procs_wake(struct tr__procs *t);
/* Table lock held: the record of child node `name`, or NULL. */
struct tr__proc *tr__proc_by_node_locked(struct tr__procs *t, const char *name);
/* Table lock held: unlinks and frees a record. */
void tr__proc_free_locked(struct tr__procs *t, struct tr__proc *r);
/* Table lock held: kills r's whole process group with `sig`, recording
 * `cause` as what that stands for (0: leave the cause). */
void tr__proc_signal_locked(
    struct tr__procs *t, struct tr__proc *r, int sig, int32_t cause);

/* Hooks of the node. Each returns at once when the node has no process
 * children. */
/* Whether `name` is a node of a process child of this node (any lock of
 * the node may be held). */
bool tr__proc_is_child(struct tr_node *n, const char *name);
/* Teardown of peer `name`: takes over the links and monitors (the arrays,
 * which it frees) when `name` is a process child; true if it did. */
bool tr__proc_hold(struct tr_node *n, const char *name, struct tr__xlink *links,
    uint32_t nl, struct tr__xmon *mons, uint32_t nm);
/* An exit signal with `reason` is being sent to `to` on node `name`. */
void tr__proc_exit_sent(
    struct tr_node *n, const char *name, tr_pid to, int reason);
/* An exit signal or DOWN came from `from` on node `name`. */
void tr__proc_exit_seen(struct tr_node *n, const char *name, tr_pid from);

/* node_tick.c: sends the exit signals and DOWNs a lost node owes, with
 * `reason`, and frees the arrays. */
void tr__teardown_signal(struct tr_node *n, struct tr__xlink *links,
    uint32_t nl, struct tr__xmon *mons, uint32_t nm, int reason,
    const char *text);

#endif /* TR_PROC_INT_H */
