/* What troupe-bench's workload files share: the end of a failed run, and
 * the wait for a workload's result on the main thread's port. */
#ifndef TROUPE_BENCH_UTIL_H
#define TROUPE_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <troupe/troupe.h>

/* The longest a workload may take. */
#define BENCH_WAIT_MS (10 * 60 * 1000)

/* Says what failed and why, and ends the program. */
static inline void bench_die(const char *what, int err)
{
	fprintf(stderr, "troupe-bench: %s: %s\n", what, tr_strerror(err));
	exit(1);
}

/* Waits for the message that ends a workload; returns its uint64_t
 * payload (0 if it has none). */
static inline uint64_t bench_wait(tr_port *port)
{
	tr_msg *m;
	int rc = tr_port_recv(&m, port, BENCH_WAIT_MS);
	if (rc != TR_OK)
		bench_die("waiting for the result", rc);
	uint64_t v = 0;
	if (m->size == sizeof(v))
		memcpy(&v, m->data, sizeof(v));
	tr_msg_free(m);
	return v;
}

#endif
