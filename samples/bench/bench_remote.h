/*
 * What troupe-bench's workloads with node processes of their own share
 * (bench.c's remote workloads, bench_global.c).
 */
#ifndef TROUPE_BENCH_REMOTE_H
#define TROUPE_BENCH_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

/* Reads a started node process's "READY <url>" line from `fd` into `url`
 * (`cap` bytes), waiting at most 10 s. Returns false if it never comes. */
bool bench_read_ready(int fd, char *url, size_t cap);

#endif
