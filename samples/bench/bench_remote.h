/*
 * What troupe-bench's workloads with node processes of their own share
 * (bench.c's remote workloads, bench_latency.c's remote-call-latency,
 * bench_global.c), and the server node process that the remote workloads
 * start (bench_remote.c): this process runs its own binary as
 * `troupe-bench --serve SCHEDULERS COOKIE`, which listens on a free port
 * of 127.0.0.1 and writes the URL back on a pipe.
 */
#ifndef TROUPE_BENCH_REMOTE_H
#define TROUPE_BENCH_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <troupe/node.h>
#include <troupe/troupe.h>

#define BENCH_SERVER_NAME "troupe-bench-server" /* the server node */
#define BENCH_CLIENT_NAME "troupe-bench"        /* this one */
#define BENCH_SERVER_START_MS 10000 /* for it to start and to connect */
#define BENCH_SERVER_STOP_MS 5000   /* for it to stop before it is killed */

/* Starts a node process of this program's own binary, run with `argv`
 * (NULL-ended; argv[0] is only the name it is told): /proc/self/exe on
 * Linux, else, or if that fails, `fallback` looked up on PATH when it is
 * not NULL. Its stdin and stdout are pipes to this process; no other
 * descriptor of this process stays open in it. Sets `*pid` to the process
 * and `*life` to the write end of its stdin (closing it asks the node to
 * stop), both owned by the caller, as soon as it runs, before waiting, so
 * that an at-exit kill sees it already. Then reads the node's "READY <url>"
 * line into `url` (`cap` bytes), waiting at most BENCH_SERVER_START_MS.
 * Returns false if the line never comes; the process is left to the
 * caller to kill. Ends the program if the pipes or the fork fail. Other
 * threads may run meanwhile: between fork and exec the child only calls
 * async-signal-safe functions. */
bool bench_spawn_node(char *const argv[], const char *fallback, pid_t *pid,
    int *life, char *url, size_t cap);

/* What the server process is run with: `argv0`, this program (where
 * /proc/self/exe is missing; borrowed for the life of the program), and
 * `schedulers`, what -s asked for (0: the default). Call before
 * bench_remote_start. */
void bench_remote_init(char *argv0, unsigned schedulers);

/* Starts the server process and a node on `rt` (BENCH_CLIENT_NAME), and
 * connects them; returns the node, which stays this module's. Ends the
 * program if any of it fails; the server process is killed at exit
 * whatever happens. Once per run. */
tr_node *bench_remote_start(tr_runtime *rt);

/* The server process, or 0 when none runs. */
pid_t bench_remote_pid(void);

/* Stops this node, then the server: closing its stdin asks it to stop;
 * if it has not within BENCH_SERVER_STOP_MS, it is killed. A no-op when
 * bench_remote_start never ran. */
void bench_remote_stop(void);

/* A node's log sink (tr_runtime_set_log) that drops the lines every run
 * writes (the peer coming up, and going down when the benchmark ends) and
 * writes anything else to stderr. */
void bench_remote_log(void *user, const char *line);

#endif
