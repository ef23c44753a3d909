/*
 * troupe-bench's process-child workloads (bench_proc.c), built with the
 * transport: troupe-bench is also the child program it re-executes.
 */
#ifndef TROUPE_BENCH_PROC_H
#define TROUPE_BENCH_PROC_H

#include <troupe/troupe.h>

#include <stdint.h>

/* proc-restart N: N restarts of a process child that exits with status 1
 * right after its root actor started, under a one_for_one supervisor. */
uint64_t run_proc_restart(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* proc-restart-gap N, proc-restart-warm N: N restarts of a process child
 * that crashes a while after it started (one kept warm for -warm), each
 * timed from the crash to the restart's report; print their lines and
 * the p50 and p99. */
uint64_t run_proc_restart_gap(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);
uint64_t run_proc_restart_warm(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* proc-call N: N sequential calls to the root actor of a process child,
 * then N to a local actor; prints a proc-call and a local-call line. */
uint64_t run_proc_call(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs);

/* In a process child started by these workloads: runs it and never
 * returns. Elsewhere returns at once. */
void bench_proc_child(void);

#endif
