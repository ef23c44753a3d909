/*
 * Parallel word count with actors: the first part of troupe-demo.
 *
 * A reader actor cuts an in-memory corpus into chunks and hands one to
 * each mapper actor that asks for work; each mapper counts the words of its
 * chunks and sends the counts, sharded by word hash, to reducer actors;
 * each reducer sums its share and, once every mapper is done, sends its
 * table to the main thread's port.
 */
#ifndef TROUPE_DEMO_WORDCOUNT_H
#define TROUPE_DEMO_WORDCOUNT_H

#include <troupe/troupe.h>

#include <stddef.h>
#include <stdint.h>

/* A generated corpus and what the generator knows about it, so that the
 * counts can be checked word by word. */
struct wc_corpus {
	char *text;         /* words separated by spaces and newlines */
	size_t len;         /* bytes of text */
	uint32_t nvocab;    /* words in the vocabulary */
	const char **vocab; /* the vocabulary, most frequent first */
	uint8_t *vlen;      /* length of each vocabulary word */
	uint64_t *truth;    /* occurrences of each vocabulary word */
	uint64_t words;     /* words in the text */
	uint64_t distinct;  /* vocabulary words that occur at least once */
};

/* Generates about `bytes` of text drawn from a fixed vocabulary with a
 * Zipf distribution, the same text for the same seed. Returns 0, or -1 when
 * out of memory. */
int wc_corpus_make(struct wc_corpus *c, size_t bytes, uint64_t seed);
void wc_corpus_fini(struct wc_corpus *c);

struct wc_top {
	const char *word;
	uint64_t count;
};

#define WC_TOP 10

struct wc_result {
	uint64_t words;            /* words counted */
	uint64_t distinct;         /* distinct words counted */
	struct wc_top top[WC_TOP]; /* the most frequent, most first */
	char error[160];           /* why the check failed; "" if it passed */
};

/* Counts the words on this thread alone, with the same tokenizer and table
 * as the mappers, to show what the actors gain. Fills words and distinct.
 * Returns 0, or -1 when out of memory. */
int wc_count_serial(struct wc_result *r, const struct wc_corpus *c);

/* Counts the words with one reader, `mappers` mapper and `reducers` reducer
 * actors on `rt`, receiving the reducers' tables on `port`, then checks
 * every count against the generator's. Stores in `*secs` the time from the
 * first spawn to the last table. Returns 0 when all counts match, -1
 * otherwise (r->error says why). Call it from a plain thread with the
 * runtime otherwise idle: it waits for quiescence before returning. */
int wc_count_actors(struct wc_result *r, tr_runtime *rt, tr_port *port,
    const struct wc_corpus *c, unsigned mappers, unsigned reducers,
    double *secs);

#endif /* TROUPE_DEMO_WORDCOUNT_H */
