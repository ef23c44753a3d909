/* troupe-bench's cluster-wide name workloads (bench_global.c). */
#ifndef TROUPE_BENCH_GLOBAL_H
#define TROUPE_BENCH_GLOBAL_H

#include <stdint.h>

#include <troupe/troupe.h>

/* global-register N, global-lookup N: the workload table's runners. */
uint64_t bench_global_register(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);
uint64_t bench_global_lookup(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* troupe-bench --global-serve NAME COOKIE [SEED-URL]: one of the two other
 * nodes of the cluster; returns the process's exit status. */
int bench_global_serve(int argc, char **argv);

#endif
