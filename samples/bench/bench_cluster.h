/*
 * troupe-bench's cluster workloads (bench_cluster.c), built with the
 * transport.
 */
#ifndef TROUPE_BENCH_CLUSTER_H
#define TROUPE_BENCH_CLUSTER_H

#include <troupe/troupe.h>

#include <stdint.h>

/* cluster-form N: formation of N node processes from one seed, and the
 * loss of one seen by the survivors. Prints its own lines. */
uint64_t run_cluster_form(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* The node processes it starts: troupe-bench --cluster-node NAME SEED N. */
int bench_cluster_node_main(int argc, char **argv);

#endif
