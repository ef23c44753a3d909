/*
 * Wall-clock and resident-memory readings shared by the samples.
 */
#ifndef TROUPE_SAMPLE_CLOCK_H
#define TROUPE_SAMPLE_CLOCK_H

#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* Seconds on the monotonic clock. */
static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident memory in bytes, from /proc/self/statm (as the CAF peer
 * benchmark measures it); 0 if it cannot be read. */
static inline long long rss_bytes(void)
{
	long long pages = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f != NULL) {
		if (fscanf(f, "%lld %lld", &pages, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * sysconf(_SC_PAGESIZE);
}

#endif
