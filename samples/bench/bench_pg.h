/*
 * troupe-bench's process-group workloads (bench_pg.c), built with the
 * transport.
 */
#ifndef TROUPE_BENCH_PG_H
#define TROUPE_BENCH_PG_H

#include <troupe/troupe.h>

#include <stdint.h>

/* pg-join N: N join + leave pairs of a local pid, each sent on to a
 * connected peer; prints its own two lines. */
uint64_t run_pg_join(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* pg-dispatch N: N round-robin sends to a group of 8 members on 2 nodes. */
uint64_t run_pg_dispatch(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* pg-dispatch-local N: the same, to the 4 members on this node only. */
uint64_t run_pg_dispatch_local(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* The peer node process: troupe-bench --pg-node SCHEDULERS COOKIE. */
int bench_pg_node_main(int argc, char **argv);

#endif
