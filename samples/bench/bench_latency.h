/* troupe-bench's tail latency workload (bench_latency.c). */
#ifndef TROUPE_BENCH_LATENCY_H
#define TROUPE_BENCH_LATENCY_H

#include <stdint.h>

#include <troupe/troupe.h>

/* call-latency N: N sequential request/replies (tr_request, tr_reply)
 * between two actors while two rings of actors pass tokens without end on
 * every scheduler; prints, besides the workload's line, "call-latency
 * latency_us p50 A p99 B p999 C" of the round trips. */
uint64_t bench_call_latency(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

#endif
