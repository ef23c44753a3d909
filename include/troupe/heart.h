/*
 * troupe heart: OTP's heart for a whole node. A small watcher process,
 * forked at tr_heart_start, that the program beats from an actor on its
 * schedulers. When the beats stop for timeout_ms (every scheduler stuck in
 * C code, a deadlock, the timer thread gone) it SIGKILLs the program and
 * starts it again; when the program dies without tr_heart_stop (a crash, a
 * SIGKILL, exit without stopping the heart) it starts it again too. The
 * new program is the same executable with the same arguments and
 * environment, plus TROUPE_HEART_RESTARTS counting the restarts
 * (tr_heart_restarts): it runs in the watcher's process, which the
 * program's parent does not know, so under a service manager (systemd,
 * Kubernetes) use the manager's own restart and watchdog instead (see
 * deploy/).
 *
 * One heart per process. The watcher keeps the program's stdin, stdout and
 * stderr for the program it starts, and closes every other descriptor.
 */
#ifndef TROUPE_HEART_H
#define TROUPE_HEART_H

#include "troupe/troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Versioned: fill with tr_heart_opts_init. */
typedef struct tr_heart_opts {
	uint32_t struct_size; /* sizeof(tr_heart_opts), by the _init */
	uint32_t timeout_ms;  /* no beat for this long: killed and started
	                       * again; 0: 60000 (OTP's HEART_BEAT_TIMEOUT) */
	uint32_t beat_ms;     /* how often the program beats; 0: a quarter
	                       * of the timeout */
} tr_heart_opts;

#define TR_HEART_OPTS_V1_SIZE TR_STRUCT_END(tr_heart_opts, beat_ms)

static inline void tr_heart_opts_init(tr_heart_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->struct_size = (uint32_t)sizeof(*o);
}

/* Starts the watcher and the beating actor on `rt`. Call it from a plain
 * thread once the program is up. Errors: TR_EINVAL (NULL, a beat not
 * shorter than the timeout), TR_EEXIST (a heart runs already),
 * TR_ENOMEM, and those of tr_spawn. */
TR_API int tr_heart_start(tr_runtime *rt, const tr_heart_opts *opts);

/* Tells the watcher the program is ending on purpose, and stops it: call
 * it before a clean exit (or tr_runtime_stop), else the exit reads as a
 * death and the program is started again. Idempotent. */
TR_API void tr_heart_stop(void);

/* How many times a heart started this program again (0 for its first
 * start). */
TR_API unsigned tr_heart_restarts(void);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_HEART_H */
