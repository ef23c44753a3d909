/*
 * A latency histogram for troupe-echo-load: fixed size (58 KiB) however
 * long the run, so that -d runs need no memory per round trip, and exact
 * to under 1%.
 *
 * The buckets are log-linear: values below 256 have one bucket each; each
 * power of two above, [2^e, 2^(e+1)), is cut into 128 equal buckets, whose
 * width is 1/128 of the smallest value in them. A quantile is the middle of
 * its bucket.
 *
 * One histogram is written by one thread; echo_hist_merge adds one into
 * another once both are done with.
 */
#ifndef TROUPE_ECHO_HIST_H
#define TROUPE_ECHO_HIST_H

#include <stdint.h>

#define ECHO_HIST_SUB_BITS 7
#define ECHO_HIST_SUB (1u << ECHO_HIST_SUB_BITS)
/* Two linear stretches below 2^(SUB_BITS + 1), then one per power of two
 * up to 2^63. */
#define ECHO_HIST_BUCKETS ((64 - ECHO_HIST_SUB_BITS + 1) * ECHO_HIST_SUB)

struct echo_hist {
	uint64_t count;
	uint64_t bucket[ECHO_HIST_BUCKETS];
};

/* The bucket of value v: v itself below 2 SUB; above, the top
 * SUB_BITS + 1 bits of v (m, in [SUB, 2 SUB)) after the shift that keeps
 * them, at shift * SUB + m. */
static inline unsigned echo_hist_index(uint64_t v)
{
	if (v < 2 * ECHO_HIST_SUB)
		return (unsigned)v;
	unsigned shift =
	    63u - (unsigned)__builtin_clzll(v) - ECHO_HIST_SUB_BITS;
	return shift * ECHO_HIST_SUB + (unsigned)(v >> shift);
}

/* The middle of bucket i's values. */
static inline double echo_hist_value(unsigned i)
{
	if (i < 2 * ECHO_HIST_SUB)
		return (double)i;
	unsigned shift = i / ECHO_HIST_SUB - 1;
	uint64_t low = (uint64_t)(i - shift * ECHO_HIST_SUB) << shift;
	return (double)low + (double)((uint64_t)1 << shift) / 2;
}

/* Counts one value. */
static inline void echo_hist_add(struct echo_hist *h, uint64_t v)
{
	h->bucket[echo_hist_index(v)]++;
	h->count++;
}

/* Adds the counts of `from` into `into`. */
static inline void echo_hist_merge(
    struct echo_hist *into, const struct echo_hist *from)
{
	for (unsigned i = 0; i < ECHO_HIST_BUCKETS; i++)
		into->bucket[i] += from->bucket[i];
	into->count += from->count;
}

/* The value at `per_mille` / 1000 (500 is the median), by nearest rank:
 * the smallest value with at least that share of the counts at or below
 * it. 0 for an empty histogram. */
static inline double echo_hist_quantile(
    const struct echo_hist *h, unsigned per_mille)
{
	uint64_t rank = (h->count * per_mille + 999) / 1000, seen = 0;

	if (h->count == 0)
		return 0;
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < ECHO_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			return echo_hist_value(i);
	}
	return echo_hist_value(ECHO_HIST_BUCKETS - 1);
}

#endif
