/*
 * Parallel word count with actors. See wordcount.h for the shape of it.
 *
 * The corpus is generated once and never written again, so the reader hands
 * mappers a pointer and a length instead of copying megabytes into
 * messages; everything else (counts, words) travels as message bytes, and
 * each actor owns its tables alone.
 */
#include "wordcount.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Message tags of the word count. */
enum {
	WC_WANT = 100, /* mapper -> reader: the next chunk, please */
	WC_CHUNK,      /* reader -> mapper: struct wc_chunk */
	WC_EOF,        /* reader -> mapper, mapper -> reducer: no more */
	WC_COUNTS,     /* mapper -> reducer: packed entries */
	WC_TABLE,      /* reducer -> port: packed entries, its whole share */
};

/* Packed entry of WC_COUNTS and WC_TABLE: an unaligned uint64_t count, one
 * length byte, then the word's letters. */
#define ENTRY_HEAD 9

/* Words longer than this are cut into pieces, so that a length fits the
 * entry's byte; the generated corpus has none. */
#define WORD_MAX 255

/* Chunks small enough to deal evenly to the mappers, large enough that the
 * cost of a message per chunk stays in the noise. */
#define CHUNK_BYTES (512 * 1024)

/* A mapper sums the counts of all its chunks (a combiner, in map-reduce
 * terms) and sends them on only at the end, or when its table holds this
 * many words: sending every chunk's counts would multiply the reducers'
 * work by the number of chunks, and the table's memory stays bounded
 * whatever the text. */
#define FLUSH_WORDS (1u << 16)

#define NVOCAB 20000
#define ZIPF_BITS 20

/* How long the main thread waits for the reducers before it calls the run
 * a failure. */
#define WAIT_MS 60000

struct wc_chunk {
	const char *text;
	size_t len;
};

/* What every actor of one count reads; written by the main thread before it
 * spawns them, and freed only once the runtime is quiescent again. */
struct wc_job {
	const char *text;
	size_t len;
	unsigned nmappers;
	unsigned nreducers;
	tr_pid reader;
	tr_pid *reducers;
	tr_pid report; /* the main thread's port */
};

/* ------------------------------------------------------------------------ */
/* Word table: open addressing, linear probing.                              */
/* ------------------------------------------------------------------------ */

struct wslot {
	uint64_t hash;
	const char *word; /* NULL: the slot is empty */
	uint64_t count;
	uint32_t len;
};

struct wtab {
	struct wslot *slots;
	size_t mask;
	size_t used;
};

/* A reducer keeps its own copy of every word it has seen, here. */
struct arena {
	struct ablock *blocks;
	char *next;
	size_t left;
};

struct ablock {
	struct ablock *prev;
	char bytes[];
};

#define ABLOCK_BYTES (64 * 1024)

static inline uint64_t word_hash(const char *w, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)w[i]) * 0x100000001b3u;
	return h;
}

static inline bool is_letter(unsigned char ch)
{
	return (unsigned)(ch - 'a') < 26u;
}

static int wtab_init(struct wtab *t, size_t cap)
{
	t->slots = calloc(cap, sizeof *t->slots);
	t->mask = cap - 1;
	t->used = 0;
	return t->slots == NULL ? -1 : 0;
}

static void wtab_fini(struct wtab *t)
{
	free(t->slots);
	t->slots = NULL;
}

static void wtab_clear(struct wtab *t)
{
	memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
	t->used = 0;
}

static struct wslot *wtab_find(
    const struct wtab *t, uint64_t h, const char *w, size_t len)
{
	for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct wslot *s = &t->slots[i];

		if (s->word == NULL || (s->hash == h && s->len == len &&
		                           memcmp(s->word, w, len) == 0))
			return s;
	}
}

static int wtab_grow(struct wtab *t)
{
	struct wtab n;

	if (wtab_init(&n, 2 * (t->mask + 1)) != 0)
		return -1;
	for (size_t i = 0; i <= t->mask; i++) {
		struct wslot *s = &t->slots[i];

		if (s->word != NULL)
			*wtab_find(&n, s->hash, s->word, s->len) = *s;
	}
	n.used = t->used;
	wtab_fini(t);
	*t = n;
	return 0;
}

static const char *arena_dup(struct arena *a, const char *w, size_t len)
{
	char *p;

	if (a->left < len) {
		size_t sz = len > ABLOCK_BYTES ? len : ABLOCK_BYTES;
		struct ablock *b = malloc(sizeof *b + sz);

		if (b == NULL)
			return NULL;
		b->prev = a->blocks;
		a->blocks = b;
		a->next = b->bytes;
		a->left = sz;
	}
	p = a->next;
	memcpy(p, w, len);
	a->next += len;
	a->left -= len;
	return p;
}

static void arena_fini(struct arena *a)
{
	while (a->blocks != NULL) {
		struct ablock *b = a->blocks;

		a->blocks = b->prev;
		free(b);
	}
}

/* Adds `n` to the count of a word. A new word's key points at `w`, or at a
 * copy in `a` when `a` is not NULL (the caller's bytes do not outlive the
 * call). Returns 0, or -1 when out of memory. */
static int wtab_add(struct wtab *t, struct arena *a, uint64_t h, const char *w,
    size_t len, uint64_t n)
{
	struct wslot *s = wtab_find(t, h, w, len);

	if (s->word == NULL) {
		/* Keep the load under 3/4 so that probes stay short. */
		if (4 * (t->used + 1) > 3 * (t->mask + 1)) {
			if (wtab_grow(t) != 0)
				return -1;
			s = wtab_find(t, h, w, len);
		}
		if (a != NULL && (w = arena_dup(a, w, len)) == NULL)
			return -1;
		s->hash = h;
		s->word = w;
		s->len = (uint32_t)len;
		t->used++;
	}
	s->count += n;
	return 0;
}

/* Counts every word of text[0, len) into `t`, whose keys then point into
 * the text. Returns the number of words, or -1 when out of memory. */
static int64_t count_words(struct wtab *t, const char *text, size_t len)
{
	const unsigned char *p = (const unsigned char *)text;
	const unsigned char *end = p + len;
	int64_t words = 0;

	for (;;) {
		const unsigned char *w;
		uint64_t h = 0xcbf29ce484222325u;

		while (p < end && !is_letter(*p))
			p++;
		if (p == end)
			return words;
		w = p;
		while (p < end && is_letter(*p) && p - w < WORD_MAX) {
			h = (h ^ *p) * 0x100000001b3u;
			p++;
		}
		if (wtab_add(t, NULL, h, (const char *)w, (size_t)(p - w), 1))
			return -1;
		words++;
	}
}

/* Which reducer owns a word. The table uses the hash's low bits, so the
 * shard takes the high ones. */
static inline unsigned shard_of(uint64_t h, unsigned nreducers)
{
	return (unsigned)((h >> 32) % nreducers);
}

static size_t put_entry(unsigned char *out, const struct wslot *s)
{
	memcpy(out, &s->count, sizeof s->count);
	out[8] = (unsigned char)s->len;
	memcpy(out + ENTRY_HEAD, s->word, s->len);
	return ENTRY_HEAD + s->len;
}

/* ------------------------------------------------------------------------ */
/* Corpus                                                                    */
/* ------------------------------------------------------------------------ */

/* The hundred most frequent English words, most first; the rest of the
 * vocabulary is made-up words of three syllables. */
static const char *const common_words[] = {
    "the",
    "be",
    "to",
    "of",
    "and",
    "a",
    "in",
    "that",
    "have",
    "i",
    "it",
    "for",
    "not",
    "on",
    "with",
    "he",
    "as",
    "you",
    "do",
    "at",
    "this",
    "but",
    "his",
    "by",
    "from",
    "they",
    "we",
    "say",
    "her",
    "she",
    "or",
    "an",
    "will",
    "my",
    "one",
    "all",
    "would",
    "there",
    "their",
    "what",
    "so",
    "up",
    "out",
    "if",
    "about",
    "who",
    "get",
    "which",
    "go",
    "me",
    "when",
    "make",
    "can",
    "like",
    "time",
    "no",
    "just",
    "him",
    "know",
    "take",
    "people",
    "into",
    "year",
    "your",
    "good",
    "some",
    "could",
    "them",
    "see",
    "other",
    "than",
    "then",
    "now",
    "look",
    "only",
    "come",
    "its",
    "over",
    "think",
    "also",
    "back",
    "after",
    "use",
    "two",
    "how",
    "our",
    "work",
    "first",
    "well",
    "way",
    "even",
    "new",
    "want",
    "because",
    "any",
    "these",
    "give",
    "day",
    "most",
    "us",
};

#define NCOMMON (sizeof common_words / sizeof common_words[0])

static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* Fills `vocab` with NVOCAB words whose letters live in `store`. */
static void make_vocab(const char **vocab, uint8_t *vlen, char *store)
{
	static const char cons[] = "bdfgklmnprstvz";
	static const char vow[] = "aeiou";
	const unsigned nc = sizeof cons - 1, nv = sizeof vow - 1;

	for (unsigned i = 0; i < NVOCAB; i++) {
		char *w = store + 8 * (size_t)i;

		if (i < NCOMMON) {
			strcpy(w, common_words[i]);
		} else {
			unsigned k = i - (unsigned)NCOMMON;

			for (int j = 0; j < 3; j++) {
				unsigned syl = k % (nc * nv);

				k /= nc * nv;
				w[2 * j] = cons[syl / nv];
				w[2 * j + 1] = vow[syl % nv];
			}
			w[6] = '\0';
		}
		vocab[i] = w;
		vlen[i] = (uint8_t)strlen(w);
	}
}

int wc_corpus_make(struct wc_corpus *c, size_t bytes, uint64_t seed)
{
	const size_t zn = (size_t)1 << ZIPF_BITS;
	uint16_t *zipf = malloc(zn * sizeof *zipf);
	char *store = malloc(8 * (size_t)NVOCAB);
	double total = 0, cum = 0;
	size_t pos = 0, z = 0;

	memset(c, 0, sizeof *c);
	c->text = malloc(bytes + 16);
	c->vocab = malloc(NVOCAB * sizeof *c->vocab);
	c->vlen = malloc(NVOCAB);
	c->truth = calloc(NVOCAB, sizeof *c->truth);
	c->nvocab = NVOCAB;
	if (zipf == NULL || store == NULL || c->text == NULL ||
	    c->vocab == NULL || c->vlen == NULL || c->truth == NULL) {
		free(zipf);
		free(store);
		/* wc_corpus_fini would free the words through vocab[0]. */
		free(c->vocab);
		c->vocab = NULL;
		wc_corpus_fini(c);
		return -1;
	}
	make_vocab(c->vocab, c->vlen, store);

	/* Zipf's law, s = 1: word k is drawn with weight 1 / (k + 1). A table
	 * of 2^20 entries turns one random number into a word in O(1); even
	 * the rarest word gets a few entries. */
	for (unsigned k = 0; k < NVOCAB; k++)
		total += 1.0 / (k + 1);
	for (unsigned k = 0; k < NVOCAB; k++) {
		size_t end;

		cum += 1.0 / (k + 1);
		end = k + 1 == NVOCAB ? zn : (size_t)(cum / total * zn + 0.5);
		while (z < end)
			zipf[z++] = (uint16_t)k;
	}

	while (pos + 16 <= bytes) {
		unsigned k = zipf[splitmix64(&seed) >> (64 - ZIPF_BITS)];

		memcpy(c->text + pos, c->vocab[k], c->vlen[k]);
		pos += c->vlen[k];
		c->text[pos++] = ++c->words % 12 == 0 ? '\n' : ' ';
		c->truth[k]++;
	}
	c->len = pos;
	for (unsigned k = 0; k < NVOCAB; k++)
		c->distinct += c->truth[k] != 0;
	free(zipf);
	return 0;
}

void wc_corpus_fini(struct wc_corpus *c)
{
	free(c->text);
	/* The words all live in one block, starting with the first. */
	if (c->vocab != NULL)
		free((void *)c->vocab[0]);
	free(c->vocab);
	free(c->vlen);
	free(c->truth);
	memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------ */
/* Serial baseline                                                           */
/* ------------------------------------------------------------------------ */

int wc_count_serial(struct wc_result *r, const struct wc_corpus *c)
{
	struct wtab t;
	int64_t words;

	memset(r, 0, sizeof *r);
	if (wtab_init(&t, 1 << 15) != 0)
		return -1;
	words = count_words(&t, c->text, c->len);
	r->words = words < 0 ? 0 : (uint64_t)words;
	r->distinct = t.used;
	wtab_fini(&t);
	return words < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Reader                                                                    */
/* ------------------------------------------------------------------------ */

/* Mappers pull chunks: each asks for its next one when it has counted the
 * last. Work then goes to whichever scheduler has time for it, wherever the
 * mappers happen to run, and no mapper sits on a queue of chunks while
 * another has none. */
struct reader {
	const struct wc_job *job;
	size_t off;    /* where the next chunk starts */
	unsigned eofs; /* mappers told there is no more */
};

static int reader_init(tr_ctx *ctx, void *arg, void **state)
{
	struct reader *rd = calloc(1, sizeof *rd);

	(void)ctx;
	if (rd == NULL)
		return 1;
	rd->job = arg;
	*state = rd;
	return TR_OK;
}

static int reader_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct reader *rd = state;
	const struct wc_job *job = rd->job;
	struct wc_chunk ch = {job->text + rd->off, CHUNK_BYTES};

	/* WC_WANT: a mapper wants a chunk. */
	if (rd->off == job->len) {
		if (tr_send(ctx, tr_sender(msg), WC_EOF, NULL, 0) != TR_OK)
			return 1;
		if (++rd->eofs == job->nmappers)
			tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	/* End the chunk after a word, never inside one. */
	if (rd->off + ch.len >= job->len)
		ch.len = job->len - rd->off;
	while (rd->off + ch.len < job->len &&
	       is_letter((unsigned char)job->text[rd->off + ch.len]))
		ch.len++;
	rd->off += ch.len;
	if (tr_send(ctx, tr_sender(msg), WC_CHUNK, &ch, sizeof ch) != TR_OK)
		return 1;
	return 0;
}

static void reader_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour reader = {
    .name = "wc_reader",
    .init = reader_init,
    .handle = reader_handle,
    .terminate = reader_terminate,
};

/* ------------------------------------------------------------------------ */
/* Mapper                                                                    */
/* ------------------------------------------------------------------------ */

struct mapper {
	const struct wc_job *job;
	struct wtab tab;
	size_t *fill; /* per reducer: bytes of its next message */
	tr_msg **out; /* per reducer: its next message */
};

static void mapper_free(struct mapper *m)
{
	wtab_fini(&m->tab);
	free(m->fill);
	free(m->out);
	free(m);
}

static int mapper_init(tr_ctx *ctx, void *arg, void **state)
{
	const struct wc_job *job = arg;
	struct mapper *m = calloc(1, sizeof *m);

	(void)ctx;
	if (m == NULL)
		return 1;
	m->job = job;
	m->fill = calloc(job->nreducers, sizeof *m->fill);
	m->out = calloc(job->nreducers, sizeof *m->out);
	if (m->fill == NULL || m->out == NULL ||
	    wtab_init(&m->tab, 1 << 14) != 0 ||
	    tr_send(ctx, job->reader, WC_WANT, NULL, 0) != TR_OK) {
		mapper_free(m);
		return 1;
	}
	*state = m;
	return TR_OK;
}

/* Sends each reducer the counts of its words, one message each, built in
 * place with tr_msg_alloc so the entries are written once. */
static int mapper_flush(tr_ctx *ctx, struct mapper *m)
{
	const struct wc_job *job = m->job;
	tr_runtime *rt = tr_runtime_of(ctx);
	int err = TR_OK;

	memset(m->fill, 0, job->nreducers * sizeof *m->fill);
	for (size_t i = 0; i <= m->tab.mask; i++) {
		const struct wslot *s = &m->tab.slots[i];

		if (s->word != NULL)
			m->fill[shard_of(s->hash, job->nreducers)] +=
			    ENTRY_HEAD + s->len;
	}
	for (unsigned r = 0; r < job->nreducers; r++) {
		m->out[r] = NULL;
		if (m->fill[r] > 0 && err == TR_OK)
			err =
			    tr_msg_alloc(&m->out[r], rt, WC_COUNTS, m->fill[r]);
		m->fill[r] = 0;
	}
	if (err != TR_OK)
		goto out;
	for (size_t i = 0; i <= m->tab.mask; i++) {
		const struct wslot *s = &m->tab.slots[i];
		unsigned r;

		if (s->word == NULL)
			continue;
		r = shard_of(s->hash, job->nreducers);
		m->fill[r] += put_entry(m->out[r]->data + m->fill[r], s);
	}
	for (unsigned r = 0; r < job->nreducers && err == TR_OK; r++) {
		if (m->out[r] == NULL)
			continue;
		err = tr_send_msg(ctx, job->reducers[r], m->out[r]);
		if (err == TR_OK)
			m->out[r] = NULL;
	}
out:
	/* Whatever was not sent is still ours. */
	for (unsigned r = 0; r < job->nreducers; r++)
		tr_msg_free(m->out[r]);
	wtab_clear(&m->tab);
	return err;
}

static int mapper_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct mapper *m = state;

	if (msg->type == WC_CHUNK) {
		const struct wc_chunk *ch = (const void *)msg->data;

		if (count_words(&m->tab, ch->text, ch->len) < 0)
			return 1;
		if (m->tab.used >= FLUSH_WORDS && mapper_flush(ctx, m) != TR_OK)
			return 1;
		if (tr_send(ctx, m->job->reader, WC_WANT, NULL, 0) != TR_OK)
			return 1;
		return 0;
	}
	/* WC_EOF: per-pair order puts it behind every count this mapper
	 * sent, so a reducer that has one EOF per mapper has everything. */
	if (m->tab.used > 0 && mapper_flush(ctx, m) != TR_OK)
		return 1;
	for (unsigned r = 0; r < m->job->nreducers; r++)
		if (tr_send(ctx, m->job->reducers[r], WC_EOF, NULL, 0) != TR_OK)
			return 1;
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static void mapper_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	mapper_free(state);
}

static const tr_behaviour mapper = {
    .name = "wc_mapper",
    .init = mapper_init,
    .handle = mapper_handle,
    .terminate = mapper_terminate,
};

/* ------------------------------------------------------------------------ */
/* Reducer                                                                   */
/* ------------------------------------------------------------------------ */

struct reducer {
	const struct wc_job *job;
	struct wtab tab;
	struct arena words;
	unsigned eofs; /* mappers that are done */
};

static int reducer_init(tr_ctx *ctx, void *arg, void **state)
{
	struct reducer *r = calloc(1, sizeof *r);

	(void)ctx;
	if (r == NULL)
		return 1;
	if (wtab_init(&r->tab, 1 << 12) != 0) {
		free(r);
		return 1;
	}
	r->job = arg;
	*state = r;
	return TR_OK;
}

static int reducer_add(struct reducer *r, const tr_msg *msg)
{
	const unsigned char *p = msg->data, *end = p + msg->size;

	while (p < end) {
		uint64_t n;
		size_t len;

		memcpy(&n, p, sizeof n);
		len = p[8];
		p += ENTRY_HEAD;
		if (wtab_add(&r->tab, &r->words,
		        word_hash((const char *)p, len), (const char *)p, len,
		        n) != 0)
			return -1;
		p += len;
	}
	return 0;
}

static int reducer_report(tr_ctx *ctx, struct reducer *r)
{
	tr_msg *msg;
	size_t size = 0, off = 0;
	int err;

	for (size_t i = 0; i <= r->tab.mask; i++)
		if (r->tab.slots[i].word != NULL)
			size += ENTRY_HEAD + r->tab.slots[i].len;
	err = tr_msg_alloc(&msg, tr_runtime_of(ctx), WC_TABLE, size);
	if (err != TR_OK)
		return err;
	for (size_t i = 0; i <= r->tab.mask; i++)
		if (r->tab.slots[i].word != NULL)
			off += put_entry(msg->data + off, &r->tab.slots[i]);
	err = tr_send_msg(ctx, r->job->report, msg);
	if (err != TR_OK)
		tr_msg_free(msg);
	return err;
}

static int reducer_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct reducer *r = state;

	if (msg->type == WC_COUNTS)
		return reducer_add(r, msg) == 0 ? 0 : 1;
	if (++r->eofs < r->job->nmappers)
		return 0;
	if (reducer_report(ctx, r) != TR_OK)
		return 1;
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static void reducer_terminate(tr_ctx *ctx, void *state, int reason)
{
	struct reducer *r = state;

	(void)ctx;
	(void)reason;
	wtab_fini(&r->tab);
	arena_fini(&r->words);
	free(r);
}

static const tr_behaviour reducer = {
    .name = "wc_reducer",
    .init = reducer_init,
    .handle = reducer_handle,
    .terminate = reducer_terminate,
};

/* ------------------------------------------------------------------------ */
/* The count, from the main thread                                           */
/* ------------------------------------------------------------------------ */

/* Checks the reducers' tables against the generator: every word known,
 * reported once, with its true count. Fills r->words, r->distinct, r->top. */
static int check_tables(struct wc_result *r, const struct wc_corpus *c,
    tr_msg **tables, unsigned ntables)
{
	struct wtab vocab;
	uint64_t *got = calloc(c->nvocab, sizeof *got);
	int rc = -1;

	if (got == NULL || wtab_init(&vocab, 1 << 16) != 0) {
		free(got);
		snprintf(r->error, sizeof r->error, "out of memory");
		return -1;
	}
	/* The vocabulary map's count is the word's index. */
	for (uint32_t k = 0; k < c->nvocab; k++) {
		const char *w = c->vocab[k];
		uint64_t h = word_hash(w, c->vlen[k]);

		if (wtab_find(&vocab, h, w, c->vlen[k])->word != NULL) {
			snprintf(r->error, sizeof r->error,
			    "the vocabulary has \"%s\" twice", w);
			goto out;
		}
		if (wtab_add(&vocab, NULL, h, w, c->vlen[k], k) != 0)
			goto out;
	}
	for (unsigned t = 0; t < ntables; t++) {
		const unsigned char *p = tables[t]->data;
		const unsigned char *end = p + tables[t]->size;

		while (p < end) {
			const struct wslot *s;
			uint64_t n;
			size_t len;

			memcpy(&n, p, sizeof n);
			len = p[8];
			p += ENTRY_HEAD;
			s = wtab_find(&vocab, word_hash((const char *)p, len),
			    (const char *)p, len);
			if (s->word == NULL || got[s->count] != 0) {
				snprintf(r->error, sizeof r->error,
				    "word \"%.*s\" %s", (int)len, p,
				    s->word == NULL ? "is not in the vocabulary"
				                    : "was reported twice");
				goto out;
			}
			got[s->count] = n;
			r->words += n;
			r->distinct++;
			p += len;
		}
	}
	for (uint32_t k = 0; k < c->nvocab; k++) {
		if (got[k] != c->truth[k]) {
			snprintf(r->error, sizeof r->error,
			    "\"%s\" counted %llu times, generated %llu times",
			    c->vocab[k], (unsigned long long)got[k],
			    (unsigned long long)c->truth[k]);
			goto out;
		}
		/* Insert into the top list: most frequent first, ties in
		 * vocabulary order. */
		for (int i = 0; i < WC_TOP; i++) {
			if (r->top[i].word == NULL ||
			    got[k] > r->top[i].count) {
				memmove(&r->top[i + 1], &r->top[i],
				    (WC_TOP - 1 - i) * sizeof r->top[0]);
				r->top[i].word = c->vocab[k];
				r->top[i].count = got[k];
				break;
			}
		}
	}
	if (r->words != c->words || r->distinct != c->distinct) {
		snprintf(r->error, sizeof r->error,
		    "counted %llu words (%llu distinct), generated %llu (%llu)",
		    (unsigned long long)r->words,
		    (unsigned long long)r->distinct,
		    (unsigned long long)c->words,
		    (unsigned long long)c->distinct);
		goto out;
	}
	rc = 0;
out:
	wtab_fini(&vocab);
	free(got);
	return rc;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int wc_count_actors(struct wc_result *r, tr_runtime *rt, tr_port *port,
    const struct wc_corpus *c, unsigned mappers, unsigned reducers,
    double *secs)
{
	struct wc_job *job = calloc(1, sizeof *job);
	tr_msg **tables = calloc(reducers, sizeof *tables);
	unsigned got = 0;
	double t0;
	int err = TR_OK, rc = -1;

	memset(r, 0, sizeof *r);
	*secs = 0;
	if (job == NULL || tables == NULL ||
	    (job->reducers = calloc(reducers, sizeof *job->reducers)) == NULL) {
		snprintf(r->error, sizeof r->error, "out of memory");
		goto out;
	}
	job->text = c->text;
	job->len = c->len;
	job->nmappers = mappers;
	job->nreducers = reducers;
	job->report = tr_port_pid(port);

	t0 = now_s();
	/* Spawned back to front, so that every actor knows the pids it
	 * sends to before it runs. */
	for (unsigned i = 0; i < reducers && err == TR_OK; i++)
		err = tr_spawn(&job->reducers[i], rt, &reducer, job, NULL);
	if (err == TR_OK)
		err = tr_spawn(&job->reader, rt, &reader, job, NULL);
	for (unsigned i = 0; i < mappers && err == TR_OK; i++)
		err = tr_spawn(NULL, rt, &mapper, job, NULL);
	if (err != TR_OK) {
		snprintf(
		    r->error, sizeof r->error, "spawn: %s", tr_strerror(err));
		goto out;
	}
	for (got = 0; got < reducers; got++) {
		err = tr_port_recv(&tables[got], port, WAIT_MS);
		if (err != TR_OK) {
			snprintf(r->error, sizeof r->error,
			    "%u of %u reducers reported: %s", got, reducers,
			    tr_strerror(err));
			goto out;
		}
		if (tables[got]->type != WC_TABLE) {
			snprintf(r->error, sizeof r->error,
			    "unexpected message %u at the port",
			    (unsigned)tables[got]->type);
			got++;
			goto out;
		}
	}
	*secs = now_s() - t0;
	rc = check_tables(r, c, tables, reducers);
out:
	for (unsigned i = 0; i < got; i++)
		tr_msg_free(tables[i]);
	free(tables);
	/* The actors read the job until their last turn ends. If they never
	 * settle, it is leaked rather than freed under their feet. */
	if (tr_runtime_wait_quiescent(rt, WAIT_MS) != TR_OK) {
		if (rc == 0)
			snprintf(r->error, sizeof r->error,
			    "the actors never finished");
		return -1;
	}
	if (job != NULL) {
		free(job->reducers);
		free(job);
	}
	return rc;
}
