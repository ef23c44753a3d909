/*
 * troupe process children: a child of a supervision tree that runs in an OS
 * process of its own, so that a crash of C code (a segfault, an abort, a
 * runaway allocation) is one more exit signal, not the end of every actor
 * of the node. docs/supervision.md, "Process children", says when to use
 * one and what it costs.
 *
 * The child process is a troupe node. Its program is either this program
 * again (path NULL), which sees that it was started as a child in its
 * call of tr_proc_child_main and runs there, as its root actor, the
 * behaviour the spec names (registered with tr_behaviour_register in the
 * child, as a remote spawn needs); or any executable (path) that calls
 * tr_proc_child_main the same way. It connects back to its parent over
 * the parent node's first ipc:// listener (else its first tcp:// one, on
 * loopback), proves the cookie, and its root actor is the child's pid in
 * the tree: send, call, link, monitor and exit signals work on it as on
 * any remote pid. It connects to its parent only (no transitive connect,
 * no reconnect), listening only for its parent's dial back (beside the
 * parent's ipc socket, or on an ephemeral loopback port); the parent
 * never passes it on to its other peers.
 *
 * Its end is an exit signal from its root pid:
 *   - the root actor's own exit reason, when the root actor ends while the
 *     process runs (the process then exits);
 *   - TR_REASON_EXIT_STATUS(n) when the process exits with status n != 0
 *     before its root actor ended (status 0: TR_REASON_NORMAL);
 *   - TR_REASON_SIGNAL(s) when a signal troupe did not send killed it
 *     (SIGSEGV, SIGABRT, the OOM killer's SIGKILL);
 *   - TR_REASON_MEMORY_LIMIT or TR_REASON_CPU_LIMIT past a limit below;
 *   - TR_REASON_KILLED when it was killed on request (an exit signal
 *     `kill` to its root pid, a brutal_kill, a shutdown timeout),
 *     TR_REASON_SHUTDOWN when it ended of the SIGTERM of a shutdown;
 *   - TR_REASON_NOCONNECTION when it went silent (its connection lost,
 *     heartbeats missed) while still running: it is then killed.
 * Links and monitors on the root pid get this reason, not the connection
 * loss, since the parent waits for the process's status before it answers
 * them.
 *
 * A spec may keep processes started ahead (tr_proc_spec.warm, below), so
 * that a restart takes one instead of waiting for a process to come up.
 *
 * Stopping follows the child spec: an exit signal `shutdown` to the root
 * pid goes to the child node as a message, and if the process still runs
 * term_ms later it gets SIGTERM; an exit signal `kill` (the supervisor's
 * brutal_kill or its shutdown timeout) SIGKILLs it at once. Every process
 * child is its own process group, killed whole when it ends, so that
 * grandchildren die with it; it is always reaped. When the parent node
 * stops, its process children are killed and reaped; when the parent
 * process dies, even by SIGKILL, its children die too (PR_SET_PDEATHSIG,
 * and a pipe whose end they watch).
 *
 * The child's stdout and stderr go to the parent's log handler, one event
 * per line (domain "proc_output", the child's id and stream as fields),
 * never cut mid-line; lines longer than TR_PROC_LINE_MAX are split. They
 * come from the node's watcher thread, holding its table: a log handler
 * must not start process children (tr_proc_stats_get is fine).
 */
#ifndef TROUPE_PROC_H
#define TROUPE_PROC_H

#include "troupe/node.h"
#include "troupe/sup.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest root argument a spec may carry, and the longest line of
 * output logged as one. */
#define TR_PROC_ARG_MAX 32768u
#define TR_PROC_LINE_MAX 4096u

/* What a process child runs and within which limits. Versioned (troupe.h,
 * "Versioned structs"): fill with tr_proc_spec_init. Everything it points
 * to is borrowed, read at every start: it must outlive the supervisor
 * that holds it, like the argument of a child started by address. */
typedef struct tr_proc_spec {
	uint32_t struct_size;      /* sizeof(tr_proc_spec), by the _init */
	const char *behaviour;     /* the root actor's behaviour, by its name
	                            * in the child program (1..TR_NAME_MAX
	                            * bytes) */
	const char *path;          /* the program; NULL: this program again */
	const char *const *argv;   /* NULL-terminated; NULL: the program's
	                            * path alone */
	const char *const *env;    /* NULL, or NULL-terminated "NAME=value"
	                            * entries added to (and overriding) this
	                            * process's environment */
	const char *cwd;           /* working directory; NULL: this one's */
	const void *arg;           /* the root's init argument: a tr_blob
	                            * copy of these bytes in the child */
	size_t arg_size;           /* at most TR_PROC_ARG_MAX */
	uint64_t memory_limit;     /* bytes of resident memory of the child
	                            * process; 0: none (see "Limits" in
	                            * docs/supervision.md) */
	uint32_t cpu_limit_s;      /* seconds of CPU time (RLIMIT_CPU);
	                            * 0: none */
	uint32_t nofile_limit;     /* open files (RLIMIT_NOFILE); 0: this
	                            * process's */
	uint32_t start_timeout_ms; /* the child must be up and its root's
	                            * init done this soon; 0: 10000 */
	uint32_t term_ms;          /* after a shutdown exit signal, SIGTERM
	                            * if still running this much later;
	                            * 0: 1000 */
	/* Version 2. */
	uint32_t warm;             /* processes of this spec kept started
	                            * ahead, 0..TR_PROC_WARM_MAX (below) */
} tr_proc_spec;

/* The size of the first version of tr_proc_spec. */
#define TR_PROC_SPEC_V1_SIZE TR_STRUCT_END(tr_proc_spec, term_ms)

/* Warm processes. A start of a spec whose `warm` is n > 0 leaves n
 * processes of it started ahead (launched, their node up and connected,
 * the cookie proved), each waiting before its root's init; the next start
 * of the same spec (by address: the same tr_proc_spec) takes one of them
 * and only runs the root's init, linked as any start: a restart then
 * costs a round trip and the init, not a process's launch (see "Warm
 * processes" in docs/supervision.md for the numbers). The spec and its
 * argument are read when a warm process is made, not when it is taken.
 * A warm process that dies while it waits is dropped and replaced at the
 * next start; warm processes count toward TR_PROC_MAX, run no code of
 * the user's but their program's main up to tr_proc_child_main, and end
 * when the node stops or with tr_proc_cool. */
#define TR_PROC_WARM_MAX 8u

/* Zeroes `spec` (this program, no limits, the default timeouts), sets its
 * struct_size and its behaviour. */
static inline void tr_proc_spec_init(tr_proc_spec *spec, const char *behaviour)
{
	memset(spec, 0, sizeof(*spec));
	spec->struct_size = (uint32_t)sizeof(*spec);
	spec->behaviour = behaviour;
}

/* Starts a process child linked to the running actor (a supervisor's
 * start function: tr_child_start_fn, with `proc` a const tr_proc_spec *).
 * Blocks the calling scheduler thread until the child's root actor has run
 * its init, or the start failed. On TR_OK *pid is the root pid (on the
 * child's node). Errors: TR_EINVAL (not called from an actor, a bad spec),
 * TR_ENOTSUP (this runtime has no node, or the node has no ipc:// or
 * tcp:// listener), TR_ENOENT (the program does not exist), TR_EAGAIN (the
 * node runs TR_PROC_MAX process children already: counted), TR_ETIMEDOUT
 * (not up in start_timeout_ms: the process is killed), TR_EINIT (the root's
 * init failed, with its reason in *init_reason; or the process ended
 * before, with the reason of its end), TR_ENOMEM. */
#define TR_PROC_MAX 1024u
TR_API int tr_proc_start_link(
    tr_ctx *ctx, void *proc, tr_pid *pid, int *init_reason);

/* Ends the warm processes of `proc` (every one, for proc NULL) that wait
 * on `node`: for a spec whose child is gone for good. Returns how many
 * were ended. */
TR_API unsigned tr_proc_cool(tr_node *node, const tr_proc_spec *proc);

/* Fills a child spec for a supervisor: id, start_fn tr_proc_start_link
 * with `proc` (borrowed, see tr_proc_spec), type TR_CHILD_PROCESS, and
 * tr_child_spec_init's defaults otherwise (permanent, shutdown 5000 ms). */
static inline void tr_proc_child_spec(
    tr_child_spec *spec, const char *id, const tr_proc_spec *proc)
{
	tr_child_spec_init(spec, id, NULL, (void *)proc);
	spec->start_fn = tr_proc_start_link;
	spec->type = TR_CHILD_PROCESS;
}

/* The child side: call it in main once the behaviours a parent may name
 * are registered on `rt` (tr_behaviour_register), before starting a node.
 * In a process that was not started as a process child it returns
 * TR_ENOENT at once and does nothing. In a process child it starts the
 * node, runs the root actor, and never returns: the process exits when
 * its root actor ends (status 0) or when its parent is gone (status 70). */
TR_API int tr_proc_child_main(tr_runtime *rt);

/* The environment entry that keeps the exit reasons of a child built, as
 * this library was, with AddressSanitizer or ThreadSanitizer those of its
 * crashes: its sanitizer runtime would otherwise catch SIGSEGV itself
 * (exit status 1), and LeakSanitizer would change the status of a process
 * that exits without stopping its runtime (to 23). It is this process's
 * ASAN_OPTIONS (or TSAN_OPTIONS) with detect_leaks=0:handle_segv=0 added
 * (and for ThreadSanitizer atexit_sleep_ms=0, without which its exit
 * sleeps a second),
 * "ASAN_OPTIONS=...", for tr_proc_spec.env; NULL in a build without those
 * sanitizers. Made at the first call, static. Thread-safe. */
TR_API const char *tr_proc_sanitizer_env(void);

/* What a node's process children did. Versioned: fill with
 * tr_proc_stats_init. */
typedef struct tr_proc_stats {
	uint32_t struct_size;
	uint64_t started; /* processes launched */
	uint64_t running; /* not reaped yet */
	uint64_t exited;  /* reaped */
	uint64_t killed;  /* SIGKILLed by this node (kill requests,
	                   * limits, silence, timeouts, node stop) */
	uint64_t refused; /* starts refused at TR_PROC_MAX */
	uint64_t lines;   /* lines of output logged */
	/* Version 2. */
	uint64_t warm;    /* warm processes waiting now */
	uint64_t taken;   /* starts that took a warm process */
} tr_proc_stats;

#define TR_PROC_STATS_V1_SIZE TR_STRUCT_END(tr_proc_stats, lines)

static inline void tr_proc_stats_init(tr_proc_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->struct_size = (uint32_t)sizeof(*st);
}

/* Copies the counters of `node`'s process children. Errors: TR_EINVAL. */
TR_API int tr_proc_stats_get(tr_proc_stats *st, tr_node *node);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_PROC_H */
