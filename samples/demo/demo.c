/*
 * troupe-demo: what an actor runtime is for, in a few seconds.
 *
 *   1. A parallel word count: reader, mappers and reducers are actors that
 *      share nothing and talk by messages, and the work spreads over every
 *      core without a lock in the program.
 *   2. A ring of a million actors: actors cost bytes, not threads, and a
 *      message from one to the next costs nanoseconds.
 *   3. A blocking call handed to the blocking pool while the schedulers go
 *      on running actors, and a periodic timer.
 *
 * Every part checks its own results; the exit status is 0 only when all
 * checks pass.
 */
#include "sample_clock.h"
#include "wordcount.h"

#include <troupe/troupe.h>

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CORPUS_BYTES (48u << 20)
#define CORPUS_SEED 20240229u

#define RING_ACTORS 1000000u
#define RING_LAPS 3u

#define TICK_MS 100
#define IO_MS 1000

/* Far beyond what any part needs; reaching it means a lost message. */
#define WAIT_MS 60000

enum {
	MSG_START = 1,
	MSG_TOKEN,
	MSG_LAPS_DONE,
	MSG_RING_DOWN,
	MSG_PING,
	MSG_PONG,
	MSG_STOP,
	MSG_ROUNDS,
	MSG_TICK,
	MSG_IO_DONE,
	MSG_PART3_DONE,
};

static int failures;

/* Prints a failed check; the demo goes on, so that one broken part does
 * not hide the others. */
static bool check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return true;
	failures++;
	fputs("   CHECK FAILED: ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return false;
}

/* 1234567 -> "1,234,567", in one of a few rotating buffers so that several
 * can appear in one printf. */
static const char *grouped(uint64_t n)
{
	static char bufs[4][32];
	static unsigned next;
	char tmp[32], *out = bufs[next++ % 4];
	int len = snprintf(tmp, sizeof tmp, "%" PRIu64, n), o = 0;

	for (int i = 0; i < len; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = tmp[i];
	}
	out[o] = '\0';
	return out;
}

/* Waits for a message of `type` at the port; false (and a failed check)
 * if something else or nothing comes. The caller frees *msgp. */
static bool expect(
    tr_msg **msgp, tr_port *port, uint32_t type, const char *what)
{
	int err = tr_port_recv(msgp, port, WAIT_MS);

	if (!check(err == TR_OK, "%s: %s", what, tr_strerror(err)))
		return false;
	if (!check((*msgp)->type == type, "%s: got message type %" PRIu32, what,
	        (*msgp)->type)) {
		tr_msg_free(*msgp);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* 1. Word count                                                             */
/* ------------------------------------------------------------------------ */

static void part_wordcount(tr_runtime *rt, tr_port *port)
{
	unsigned nsched = tr_runtime_schedulers(rt);
	/* More mappers than schedulers, so that the chunks spread evenly
	 * even when one scheduler is busy with something else. */
	unsigned mappers = 4 * nsched, reducers = 2 * nsched;
	struct wc_corpus c;
	struct wc_result one, par;
	double t0, tgen, tone, tpar = 0;
	int rc;

	t0 = now_s();
	if (!check(wc_corpus_make(&c, CORPUS_BYTES, CORPUS_SEED) == 0,
	        "out of memory for the corpus"))
		return;
	tgen = now_s() - t0;
	printf("1. Word count: %.0f MB of text, %s words, %s distinct "
	       "(made in %.2f s)\n",
	    c.len / 1e6, grouped(c.words), grouped(c.distinct), tgen);

	t0 = now_s();
	rc = wc_count_serial(&one, &c);
	tone = now_s() - t0;
	check(rc == 0 && one.words == c.words && one.distinct == c.distinct,
	    "the one-thread count disagrees with the generator");

	rc = wc_count_actors(&par, rt, port, &c, mappers, reducers, &tpar);
	printf("   one thread: %.2f s; %u mappers + %u reducers on %u "
	       "scheduler%s: %.2f s (%.1fx)\n",
	    tone, mappers, reducers, nsched, nsched > 1 ? "s" : "", tpar,
	    tpar > 0 ? tone / tpar : 0.0);
	if (check(rc == 0, "%s", par.error)) {
		printf("   %4s  %-8s %11s %7s\n", "rank", "word", "count",
		    "share");
		for (int i = 0; i < WC_TOP; i++)
			printf("   %4d  %-8s %11s %6.2f%%\n", i + 1,
			    par.top[i].word, grouped(par.top[i].count),
			    100.0 * (double)par.top[i].count /
			        (double)par.words);
		printf("   every count of all %s words matches the "
		       "generator's\n",
		    grouped(par.distinct));
	}
	wc_corpus_fini(&c);
}

/* ------------------------------------------------------------------------ */
/* 2. A ring of a million actors                                             */
/* ------------------------------------------------------------------------ */

/* The head closes the ring and keeps score; the other actors only pass the
 * token on. Every pass decrements it; a token of 0 goes round once more and
 * stops every actor it passes. */
struct ring_head {
	tr_pid first;
	tr_pid report;
	uint64_t arrivals; /* tokens that came back round */
};

struct ring_start {
	tr_pid first;
	uint64_t hops;
};

static int ring_node_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	const tr_pid *next = state;
	uint64_t h = *(const uint64_t *)msg->data;
	uint64_t fwd = h == 0 ? 0 : h - 1;

	if (tr_send(ctx, *next, MSG_TOKEN, &fwd, sizeof fwd) != TR_OK)
		return 1;
	if (h == 0)
		tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static int ring_head_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct ring_head *head = state;
	uint64_t h;

	if (msg->type == MSG_START) {
		const struct ring_start *st = (const void *)msg->data;

		head->first = st->first;
		h = st->hops;
	} else {
		h = *(const uint64_t *)msg->data;
		head->arrivals++;
		if (h == 0) {
			tr_send(ctx, head->report, MSG_RING_DOWN,
			    &head->arrivals, sizeof head->arrivals);
			tr_exit(ctx, TR_REASON_NORMAL);
			return 0;
		}
		if (h == 1)
			tr_send(ctx, head->report, MSG_LAPS_DONE, NULL, 0);
		h--;
	}
	if (tr_send(ctx, head->first, MSG_TOKEN, &h, sizeof h) != TR_OK)
		return 1;
	return 0;
}

static const tr_behaviour ring_node = {
    .name = "ring_node",
    .handle = ring_node_handle,
};

static const tr_behaviour ring_head = {
    .name = "ring_head",
    .handle = ring_head_handle,
};

static void part_ring(tr_runtime *rt, tr_port *port)
{
	static struct ring_head head;
	tr_pid *next = calloc(RING_ACTORS, sizeof *next);
	tr_runtime_stats st0 = TR_STRUCT_INIT(tr_runtime_stats),
	                 st1 = TR_STRUCT_INIT(tr_runtime_stats);
	struct ring_start start;
	long long rss0, rss1;
	double t0, tspawn, tlaps, tdown;
	tr_pid hp, prev;
	tr_msg *m;
	int err = TR_OK;

	printf("2. A ring of %s actors\n", grouped(RING_ACTORS));
	if (!check(next != NULL, "out of memory for the ring"))
		return;
	/* The ring's own table (12 bytes an actor) is touched now, so that
	 * the memory figure below is the runtime's alone. */
	memset(next, 0, RING_ACTORS * sizeof *next);
	tr_runtime_stats_get(&st0, rt);
	rss0 = rss_bytes();

	t0 = now_s();
	head.report = tr_port_pid(port);
	err = tr_spawn(&hp, rt, &ring_head, &head, NULL);
	prev = hp;
	for (uint32_t i = 1; i < RING_ACTORS && err == TR_OK; i++) {
		next[i] = prev;
		err = tr_spawn(&prev, rt, &ring_node, &next[i], NULL);
	}
	if (!check(err == TR_OK, "spawn: %s", tr_strerror(err)) ||
	    !check(tr_runtime_wait_quiescent(rt, WAIT_MS) == TR_OK,
	        "the new actors never settled")) {
		/* Some actors may hold pointers into `next`: leak it. */
		return;
	}
	tspawn = now_s() - t0;
	rss1 = rss_bytes();
	printf("   spawned in %.2f s (%.1f M/s), %.0f bytes per actor "
	       "resident\n",
	    tspawn, RING_ACTORS / tspawn / 1e6,
	    (double)(rss1 - rss0) / RING_ACTORS);

	t0 = now_s();
	start.first = prev;
	start.hops = (uint64_t)RING_LAPS * RING_ACTORS;
	err = tr_post(rt, hp, MSG_START, &start, sizeof start);
	if (!check(err == TR_OK, "start: %s", tr_strerror(err)) ||
	    !expect(&m, port, MSG_LAPS_DONE, "ring laps"))
		return;
	tr_msg_free(m);
	tlaps = now_s() - t0;
	printf("   token passed %u times round: %s messages in %.2f s "
	       "(%.0f ns a hop)\n",
	    RING_LAPS, grouped(start.hops), tlaps, tlaps / start.hops * 1e9);

	if (!expect(&m, port, MSG_RING_DOWN, "ring teardown"))
		return;
	head.arrivals = *(const uint64_t *)m->data;
	tr_msg_free(m);
	tdown = now_s() - t0 - tlaps;
	err = tr_runtime_wait_quiescent(rt, WAIT_MS);
	tr_runtime_stats_get(&st1, rt);
	printf("   a last lap stopped every actor in %.2f s; %s left alive\n",
	    tdown, grouped(st1.actors_alive - st0.actors_alive));
	check(err == TR_OK, "the ring never settled");
	check(head.arrivals == RING_LAPS + 1,
	    "the token came back %" PRIu64 " times, not %u", head.arrivals,
	    RING_LAPS + 1);
	check(st1.actors_alive == st0.actors_alive,
	    "%" PRIu64 " ring actors still alive",
	    st1.actors_alive - st0.actors_alive);
	if (err == TR_OK)
		free(next);
}

/* ------------------------------------------------------------------------ */
/* 3. Blocking work and timers                                               */
/* ------------------------------------------------------------------------ */

/* A pair of actors that play ping-pong until told to stop, to show the
 * schedulers busy while the blocking call waits. */
struct busy {
	tr_pid pong;
	tr_pid boss;
	uint64_t rounds;
};

/* The coordinator starts the blocking call, the timer and the busy pair,
 * and reports to the main thread when the call has returned. */
struct coord {
	tr_pid report;
	tr_pid pinger;
	tr_timer tick;
	uint64_t job;
	uint64_t ticks;
	double t0;
	double io_s;
	bool io_ok;
};

struct part3_report {
	uint64_t ticks;
	uint64_t rounds;
	double io_s;
	bool io_ok;
};

static const char io_result[] = "1 s of slow I/O";

/* Stands for a blocking read, a DNS lookup or a database call: it would
 * stall a scheduler for its whole duration, so it runs on the pool. */
static void *slow_read(void *arg)
{
	struct timespec ts = {IO_MS / 1000, (IO_MS % 1000) * 1000000L};

	(void)arg;
	while (nanosleep(&ts, &ts) != 0)
		;
	return (void *)io_result;
}

static int busy_ponger_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	(void)state;
	if (msg->type == MSG_STOP) {
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	/* The last ping may come after the pinger has stopped; a send to a
	 * dead actor is dropped, as in Erlang, and is no error here. */
	tr_send(ctx, tr_sender(msg), MSG_PONG, NULL, 0);
	return 0;
}

static int busy_pinger_init(tr_ctx *ctx, void *arg, void **state)
{
	struct busy *b = arg;

	(void)state;
	return tr_send(ctx, b->pong, MSG_PING, NULL, 0) == TR_OK ? TR_OK : 1;
}

static int busy_pinger_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct busy *b = state;

	if (msg->type == MSG_STOP) {
		tr_send(ctx, b->pong, MSG_STOP, NULL, 0);
		tr_send(ctx, b->boss, MSG_ROUNDS, &b->rounds, sizeof b->rounds);
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	b->rounds++;
	if (tr_send(ctx, b->pong, MSG_PING, NULL, 0) != TR_OK)
		return 1;
	return 0;
}

static const tr_behaviour busy_ponger = {
    .name = "busy_ponger",
    .handle = busy_ponger_handle,
};

static const tr_behaviour busy_pinger = {
    .name = "busy_pinger",
    .init = busy_pinger_init,
    .handle = busy_pinger_handle,
};

static int coord_init(tr_ctx *ctx, void *arg, void **state)
{
	static struct busy busy;
	struct coord *co = arg;
	tr_runtime *rt = tr_runtime_of(ctx);

	(void)state;
	busy.boss = tr_self(ctx);
	if (tr_spawn(&busy.pong, rt, &busy_ponger, NULL, NULL) != TR_OK ||
	    tr_spawn(&co->pinger, rt, &busy_pinger, &busy, NULL) != TR_OK)
		return 1;
	if (tr_send_after(ctx, &co->tick, tr_self(ctx), TICK_MS, TICK_MS,
	        MSG_TICK, NULL, 0) != TR_OK)
		return 1;
	co->t0 = now_s();
	if (tr_run_blocking(ctx, &co->job, MSG_IO_DONE, slow_read, NULL) !=
	    TR_OK)
		return 1;
	return TR_OK;
}

static int coord_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct coord *co = state;

	switch (msg->type) {
	case MSG_TICK:
		/* A tick sent just before the cancel may still come. */
		if (co->io_s == 0)
			co->ticks++;
		return 0;
	case MSG_IO_DONE: {
		const tr_blocking_result *res = (const void *)msg->data;

		co->io_s = now_s() - co->t0;
		co->io_ok = msg->ref == co->job && res->result == io_result;
		tr_timer_cancel(tr_runtime_of(ctx), co->tick);
		if (tr_send(ctx, co->pinger, MSG_STOP, NULL, 0) != TR_OK)
			return 1;
		return 0;
	}
	case MSG_ROUNDS: {
		struct part3_report rep = {
		    .ticks = co->ticks,
		    .rounds = *(const uint64_t *)msg->data,
		    .io_s = co->io_s,
		    .io_ok = co->io_ok,
		};

		tr_send(ctx, co->report, MSG_PART3_DONE, &rep, sizeof rep);
		tr_exit(ctx, TR_REASON_NORMAL);
		return 0;
	}
	default:
		return 1;
	}
}

static const tr_behaviour coordinator = {
    .name = "coordinator",
    .init = coord_init,
    .handle = coord_handle,
};

static void part_blocking(tr_runtime *rt, tr_port *port)
{
	static struct coord co;
	struct part3_report rep;
	uint64_t due;
	tr_msg *m;
	int err;

	printf("3. Blocking work and timers\n");
	co.report = tr_port_pid(port);
	err = tr_spawn(NULL, rt, &coordinator, &co, NULL);
	if (!check(err == TR_OK, "spawn: %s", tr_strerror(err)) ||
	    !expect(&m, port, MSG_PART3_DONE, "blocking call"))
		return;
	memcpy(&rep, m->data, sizeof rep);
	tr_msg_free(m);
	printf("   a %d ms blocking call ran on the blocking pool, back after "
	       "%.0f ms;\n",
	    IO_MS, rep.io_s * 1e3);
	printf("   meanwhile two actors traded %s messages on the "
	       "schedulers\n",
	    grouped(2 * rep.rounds));
	printf("   and a %d ms timer ticked %s times\n", TICK_MS,
	    grouped(rep.ticks));
	check(rep.io_ok, "the blocking call's result went astray");
	check(rep.rounds > 1000, "the schedulers stalled during the call");
	/* The timer thread and the coordinator's turns add some jitter;
	 * allow two ticks of it. */
	due = (uint64_t)(rep.io_s * 1e3) / TICK_MS;
	check(rep.ticks + 2 >= due && rep.ticks <= due,
	    "%" PRIu64 " ticks in %.0f ms", rep.ticks, rep.io_s * 1e3);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	tr_runtime_opts opts;
	tr_runtime_stats st = TR_STRUCT_INIT(tr_runtime_stats);
	tr_runtime *rt;
	tr_port *port;
	double t0 = now_s();
	int c, err;

	tr_runtime_opts_init(&opts);
	while ((c = getopt(argc, argv, "s:")) != -1) {
		long n = c == 's' ? strtol(optarg, NULL, 10) : 0;

		if (n < 1 || n > TR_MAX_SCHEDULERS) {
			fprintf(stderr, "usage: troupe-demo [-s SCHEDULERS]\n");
			return 2;
		}
		opts.schedulers = (unsigned)n;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: troupe-demo [-s SCHEDULERS]\n");
		return 2;
	}
	err = tr_runtime_start(&rt, &opts);
	if (err == TR_OK && (err = tr_port_open(&port, rt)) != TR_OK)
		tr_runtime_stop(rt);
	if (err != TR_OK) {
		fprintf(stderr, "troupe-demo: %s\n", tr_strerror(err));
		return 1;
	}
	printf("troupe %d.%d.%d demo: %u scheduler threads, %u of %ld cores "
	       "usable\n\n",
	    TR_VERSION_MAJOR, TR_VERSION_MINOR, TR_VERSION_PATCH,
	    tr_runtime_schedulers(rt), tr_cpus_available(),
	    sysconf(_SC_NPROCESSORS_ONLN));

	part_wordcount(rt, port);
	putchar('\n');
	part_ring(rt, port);
	putchar('\n');
	part_blocking(rt, port);
	putchar('\n');

	tr_runtime_stats_get(&st, rt);
	check(st.crashes == 0, "%" PRIu64 " actors crashed", st.crashes);
	tr_port_close(port);
	tr_runtime_stop(rt);
	if (failures > 0) {
		printf(
		    "%d check%s FAILED\n", failures, failures > 1 ? "s" : "");
		return 1;
	}
	printf("all checks passed in %.1f s\n", now_s() - t0);
	return 0;
}
