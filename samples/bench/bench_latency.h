/* troupe-bench's tail latency workloads (bench_latency.c). */
#ifndef TROUPE_BENCH_LATENCY_H
#define TROUPE_BENCH_LATENCY_H

#include <stdint.h>

#include <troupe/troupe.h>

/* call-latency N: N sequential request/replies (tr_request, tr_reply)
 * between two actors while a ring of actors passes tokens without end for
 * every scheduler; prints, besides the workload's line, "call-latency
 * latency_us p50 A p99 B p999 C" of the round trips. */
uint64_t bench_call_latency(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* The name the server node registers its call server under. */
#define BENCH_LATENCY_SERVER "latency"

/* remote-call-latency N: as call-latency, to a server on the server node
 * process (bench_remote.h), with the rings running on both nodes; prints
 * "remote-call-latency latency_us p50 A p99 B p999 C". Starts the server
 * node (bench_remote_start); the caller stops it. */
uint64_t bench_remote_call_latency(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* On the server node process: spawns the call server that
 * remote-call-latency calls and registers it as BENCH_LATENCY_SERVER on
 * `rt`. Ends the program if it cannot. */
void bench_latency_serve(tr_runtime *rt);

#endif
