/*
 * troupe-bench -o: the local workloads with a node whose observer is on
 * and idle (troupe/observer.h), to show that an endpoint no one asks
 * costs the workloads nothing.
 */
#ifndef BENCH_OBSERVE_H
#define BENCH_OBSERVE_H

#include <troupe/node.h>

/* Starts a node on loopback with its observer, and says on stderr where
 * it listens; exits the program if it cannot. */
tr_node *bench_observe_start(tr_runtime *rt);

#endif
