/* troupe-bench's spawn-heavy workloads (bench_tree.c). */
#ifndef TROUPE_BENCH_TREE_H
#define TROUPE_BENCH_TREE_H

#include <stdint.h>

#include <troupe/troupe.h>

/* skynet LEAVES: a 10-ary tree of actors down to LEAVES leaves (a power of
 * ten), each leaf answering its index to its parent, each inner actor the
 * sum of its ten children; ops are the actors spawned (1,111,111 for a
 * million leaves). fjcreate N: Savina's fork-join create, N actors
 * spawned by one, each sent one message that it answers after a little
 * arithmetic and then ends; ops are N. The workload table's runners: on
 * TR_OK the count and the time; they exit the program if the result is
 * wrong. */
uint64_t bench_skynet(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);
uint64_t bench_fjcreate(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* spawn-thread N: N actors spawned by the main thread (not an actor),
 * each ending in its init; the time until the last has run. */
uint64_t bench_spawn_thread(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

#endif
