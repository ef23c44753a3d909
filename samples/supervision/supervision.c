/*
 * troupe-supervision: a small service under a two-level supervision tree,
 * and what the tree does when parts of it fail.
 *
 *   top                  one_for_one, at most 3 restarts in 10 s
 *   |-- dispatcher       a worker, registered as "dispatcher"
 *   `-- pool_sup         one_for_all, at most 3 restarts in 5 s
 *       |-- worker.0     workers, registered as "worker.<i>"
 *       |-- worker.1
 *       `-- worker.2
 *
 * The service counts the steps of a Collatz sequence (n -> n / 2 or
 * 3n + 1, until 1). A client (here the main thread, through a port) sends
 * a request to whatever actor is registered as "dispatcher"; the dispatcher
 * forwards it, round robin, to the worker registered as "worker.<i>", and
 * that worker answers the client directly. Names, not pids, tie the pieces
 * together, so an actor restarted with a new pid is found again without
 * anybody being told.
 *
 * Then the program breaks things, one at a time, and checks after each that
 * the service answers again:
 *
 *   1. a poison request (n = 0) crashes a worker: pool_sup restarts all
 *      three workers (one_for_all);
 *   2. the dispatcher is killed with tr_kill: top restarts it alone
 *      (one_for_one) and the pool is not touched;
 *   3. a durable poison request: the service keeps durable requests in a
 *      journal until they are answered, and worker.0, whenever it starts,
 *      replays what a dead worker left there. The poison is replayed,
 *      crashes worker.0, the pool restarts, it is replayed again: a crash
 *      loop. pool_sup gives up once it has restarted more than its
 *      intensity allows and exits; top restarts the whole pool; worker.0
 *      then sets the request aside as a dead letter and tells its client.
 *
 * The runtime's crash and supervisor reports are reformatted by a log
 * handler into one line per event. The exit status is 0 only if every
 * check passes.
 */
#include "sample_clock.h"

#include <troupe/sup.h>
#include <troupe/troupe.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NWORKERS 3

/* Long enough for any restart on a loaded machine; a restart takes tens of
 * microseconds. */
#define WAIT_MS 2000

/* How many times a durable request is tried before it is set aside. */
#define MAX_ATTEMPTS 3

/* The reason a worker crashes with on a poison request: any positive
 * value is a user reason, reported as "error". */
#define REASON_POISON 22

enum {
	MSG_REQUEST = 1, /* client -> dispatcher: struct request */
	MSG_JOB,         /* dispatcher -> worker: struct job */
	MSG_ANSWER,      /* worker or dispatcher -> client: struct answer */
	MSG_REPLAY,      /* worker -> itself: replay the journal's request */
	MSG_WATCH_DOWN,  /* watcher -> main: the watched actor is gone */
};

struct request {
	uint32_t id;
	bool durable; /* keep it in the journal until it is answered */
	uint64_t n;
};

struct job {
	struct request req;
	tr_pid client; /* who gets the answer */
};

enum status {
	ST_OK = 0,
	ST_UNAVAILABLE, /* no worker (or journal) could take it right now */
	ST_DEAD_LETTER, /* it failed MAX_ATTEMPTS times and was set aside */
};

struct answer {
	uint32_t id;
	int32_t status;
	uint64_t n;
	uint64_t steps;
	int32_t worker; /* which worker answered, or -1 */
};

static uint64_t collatz_steps(uint64_t n)
{
	uint64_t steps = 0;

	for (; n != 1; steps++)
		n = n % 2 == 0 ? n / 2 : 3 * n + 1;
	return steps;
}

/* ------------------------------------------------------------------------ */
/* Output: the main thread and the log handler share stdout                  */
/* ------------------------------------------------------------------------ */

/* Reports arrive on scheduler threads while the main thread prints its own
 * lines; one lock keeps every line whole and the two streams in order. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static double t_start; /* when the current step began */
static int failures;

static void flush_reaction_locked(void);

static void say(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&out_lock);
	flush_reaction_locked();
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	pthread_mutex_unlock(&out_lock);
}

static void check(bool ok, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (!ok)
		failures++;
	say("  %s %s", ok ? "ok:" : "FAILED:", buf);
}

static void begin_step(const char *title)
{
	say("== %s", title);
	pthread_mutex_lock(&out_lock);
	t_start = now_s();
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------------------ */
/* The journal of durable requests                                           */
/* ------------------------------------------------------------------------ */

/* It stands for storage outside the actors (a file, a database), which is
 * why it survives their crashes and why a lock guards it. It holds one
 * request, owned by the worker working on it; a request whose owner is no
 * longer alive was never answered, so worker.0 takes it over when it next
 * starts: at-least-once delivery, as with a message broker. */
static struct {
	pthread_mutex_t lock;
	bool full;
	struct job job;
	tr_pid owner;
	int attempts;
	int dead_letters; /* requests set aside so far */
} journal = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------------------ */
/* Workers                                                                   */
/* ------------------------------------------------------------------------ */

struct worker_cfg {
	int index;
	const char *name;
};

/* Child spec arguments are borrowed by the supervisor for every restart,
 * so they live as long as the program. */
static const struct worker_cfg worker_cfgs[NWORKERS] = {
    {0, "worker.0"},
    {1, "worker.1"},
    {2, "worker.2"},
};

static void answer(tr_ctx *ctx, const struct job *j, enum status st,
    uint64_t steps, int worker)
{
	struct answer a = {
	    .id = j->req.id,
	    .status = st,
	    .n = j->req.n,
	    .steps = steps,
	    .worker = worker,
	};

	/* The client may have given up and gone; that is its business. */
	(void)tr_send(ctx, j->client, MSG_ANSWER, &a, sizeof a);
}

/* Replays the request a dead worker left in the journal, or sets it aside
 * once it has failed often enough. */
static void journal_take_over(tr_ctx *ctx, const struct worker_cfg *w)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	struct job dead;
	bool replay = false, drop = false;

	pthread_mutex_lock(&journal.lock);
	if (journal.full && !tr_is_alive(rt, journal.owner)) {
		if (journal.attempts >= MAX_ATTEMPTS) {
			dead = journal.job;
			journal.full = false;
			journal.dead_letters++;
			drop = true;
		} else {
			journal.owner = tr_self(ctx);
			journal.attempts++;
			replay = true;
		}
	}
	pthread_mutex_unlock(&journal.lock);

	if (drop) {
		char line[128];

		snprintf(line, sizeof line,
		    "DEAD LETTER worker=%s n=%" PRIu64 " attempts=%d", w->name,
		    dead.req.n, MAX_ATTEMPTS);
		tr_log(rt, line);
		answer(ctx, &dead, ST_DEAD_LETTER, 0, w->index);
	}
	/* Not in init itself: init runs inside the supervisor's restart, and
	 * a crash there would be a failed start, not a crash loop. */
	if (replay)
		(void)tr_send(ctx, tr_self(ctx), MSG_REPLAY, NULL, 0);
}

static int worker_init(tr_ctx *ctx, void *arg, void **state)
{
	const struct worker_cfg *w = arg;

	*state = (void *)w;
	/* A failed registration fails the start, and the supervisor reports
	 * it: better than a worker nobody can find. */
	if (tr_register(tr_runtime_of(ctx), w->name, tr_self(ctx)) != TR_OK)
		return 1;
	/* Only the first worker replays the journal. A replay that crashes
	 * may do so while the supervisor is still starting the others; if
	 * they could take the request over too, one restart of the pool
	 * could burn several attempts, and the story would change from run
	 * to run. */
	if (w->index == 0)
		journal_take_over(ctx, w);
	return TR_OK;
}

/* A durable request was answered: it leaves the journal. A worker that
 * dies before this leaves it there for the next one. */
static void journal_done(void)
{
	pthread_mutex_lock(&journal.lock);
	journal.full = false;
	pthread_mutex_unlock(&journal.lock);
}

/* Works on one request; false if it was poison and the worker must die. */
static bool work(tr_ctx *ctx, const struct worker_cfg *w, const struct job *j)
{
	if (j->req.n == 0) {
		/* Let it crash: the supervisor brings back a clean worker. */
		tr_exit_text(ctx, REASON_POISON,
		    "poison request: collatz(0) never ends");
		return false;
	}
	answer(ctx, j, ST_OK, collatz_steps(j->req.n), w->index);
	return true;
}

static int worker_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	const struct worker_cfg *w = state;
	struct job j;
	bool taken;

	switch (msg->type) {
	case MSG_JOB:
		memcpy(&j, msg->data, sizeof j);
		if (!j.req.durable) {
			work(ctx, w, &j);
			return 0;
		}
		pthread_mutex_lock(&journal.lock);
		taken = !journal.full;
		if (taken) {
			journal.full = true;
			journal.job = j;
			journal.owner = tr_self(ctx);
			journal.attempts = 1;
		}
		pthread_mutex_unlock(&journal.lock);
		if (!taken)
			answer(ctx, &j, ST_UNAVAILABLE, 0, w->index);
		else if (work(ctx, w, &j))
			journal_done();
		return 0;
	case MSG_REPLAY:
		pthread_mutex_lock(&journal.lock);
		j = journal.job;
		pthread_mutex_unlock(&journal.lock);
		if (work(ctx, w, &j))
			journal_done();
		return 0;
	default:
		return 0;
	}
}

static void worker_terminate(tr_ctx *ctx, void *state, int reason)
{
	/* The state is the spec's argument, borrowed: nothing to free. */
	(void)ctx;
	(void)state;
	(void)reason;
}

static const tr_behaviour worker = {
    .name = "worker",
    .init = worker_init,
    .handle = worker_handle,
    .terminate = worker_terminate,
};

/* ------------------------------------------------------------------------ */
/* The dispatcher                                                            */
/* ------------------------------------------------------------------------ */

struct dispatcher {
	unsigned next; /* the worker the next request goes to */
};

static int dispatcher_init(tr_ctx *ctx, void *arg, void **state)
{
	struct dispatcher *d = calloc(1, sizeof *d);

	(void)arg;
	if (d == NULL)
		return 1;
	if (tr_register(tr_runtime_of(ctx), "dispatcher", tr_self(ctx)) !=
	    TR_OK) {
		free(d);
		return 1;
	}
	*state = d;
	return TR_OK;
}

static int dispatcher_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	struct dispatcher *d = state;
	struct job j;
	unsigned i;

	if (msg->type != MSG_REQUEST || msg->size != sizeof j.req)
		return 0;
	memcpy(&j.req, msg->data, sizeof j.req);
	j.client = tr_sender(msg);
	i = d->next++ % NWORKERS;
	/* While the pool restarts, a worker's name may be free for a moment:
	 * the client hears so at once rather than waiting for a timeout. */
	if (tr_send_named(ctx, worker_cfgs[i].name, MSG_JOB, &j, sizeof j) !=
	    TR_OK)
		answer(ctx, &j, ST_UNAVAILABLE, 0, -1);
	return 0;
}

static void dispatcher_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour dispatcher = {
    .name = "dispatcher",
    .init = dispatcher_init,
    .handle = dispatcher_handle,
    .terminate = dispatcher_terminate,
};

/* ------------------------------------------------------------------------ */
/* A watcher: a port cannot monitor, so an actor does it for main            */
/* ------------------------------------------------------------------------ */

struct watch {
	tr_pid target;
	tr_pid report_to;
};

static int watcher_init(tr_ctx *ctx, void *arg, void **state)
{
	const struct watch *w = arg;

	(void)state; /* the state is the argument */
	return tr_monitor(ctx, NULL, w->target) == TR_OK ? TR_OK : 1;
}

static int watcher_handle(tr_ctx *ctx, void *state, const tr_msg *msg)
{
	const struct watch *w = state;

	if (msg->type == TR_MSG_DOWN) {
		(void)tr_send(
		    ctx, w->report_to, MSG_WATCH_DOWN, msg->data, msg->size);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static const tr_behaviour watcher = {
    .name = "watcher",
    .init = watcher_init,
    .handle = watcher_handle,
};

/* ------------------------------------------------------------------------ */
/* The tree                                                                  */
/* ------------------------------------------------------------------------ */

struct sup_info {
	const char *label;
	const char *strategy;
	uint32_t intensity;
	uint32_t period_ms;
};

static const struct sup_info top_info = {"top", "one_for_one", 3, 10000};
static const struct sup_info pool_info = {"pool_sup", "one_for_all", 3, 5000};

static tr_child_spec pool_specs[NWORKERS];
static tr_sup_args pool_args;
static tr_child_spec top_specs[2];

/* The specs are built once and live as long as the program, because the
 * top supervisor starts pool_sup again from the same tr_sup_args after
 * every failure of the pool. */
static void build_specs(void)
{
	for (int i = 0; i < NWORKERS; i++) {
		tr_child_spec_init(&pool_specs[i], worker_cfgs[i].name, &worker,
		    (void *)&worker_cfgs[i]);
		pool_specs[i].shutdown_ms = 500;
	}
	tr_sup_flags_init(&pool_args.flags);
	pool_args.flags.strategy = TR_SUP_ONE_FOR_ALL;
	pool_args.flags.intensity = pool_info.intensity;
	pool_args.flags.period_ms = pool_info.period_ms;
	pool_args.specs = pool_specs;
	pool_args.nspecs = NWORKERS;

	tr_child_spec_init(&top_specs[0], "dispatcher", &dispatcher, NULL);
	top_specs[0].shutdown_ms = 500;
	tr_child_spec_init(
	    &top_specs[1], "pool_sup", &tr_sup_behaviour, &pool_args);
	top_specs[1].type = TR_CHILD_SUPERVISOR;
	top_specs[1].shutdown_ms = TR_SHUTDOWN_INFINITY;
}

/* A snapshot of the tree, taken with tr_sup_which_children. */
struct tree {
	tr_pid top;
	tr_pid dispatcher;
	tr_pid pool;
	tr_pid workers[NWORKERS];
};

static bool children_of(
    tr_runtime *rt, tr_pid sup, tr_child_info *out, size_t want)
{
	size_t n;

	return tr_sup_which_children(out, want, &n, rt, sup, -1) == TR_OK &&
	       n == want;
}

static bool snapshot(struct tree *t, tr_runtime *rt, tr_pid top)
{
	tr_child_info top_c[2] = {TR_STRUCT_INIT(tr_child_info)},
	              pool_c[NWORKERS] = {TR_STRUCT_INIT(tr_child_info)};

	memset(t, 0, sizeof *t);
	t->top = top;
	if (!children_of(rt, top, top_c, 2))
		return false;
	t->dispatcher = top_c[0].pid;
	t->pool = top_c[1].pid;
	if (tr_pid_is_none(t->pool) ||
	    !children_of(rt, t->pool, pool_c, NWORKERS))
		return false;
	for (int i = 0; i < NWORKERS; i++)
		t->workers[i] = pool_c[i].pid;
	return true;
}

/* Whether every actor of the tree is running. */
static bool tree_up(const struct tree *t)
{
	if (tr_pid_is_none(t->dispatcher) || tr_pid_is_none(t->pool))
		return false;
	for (int i = 0; i < NWORKERS; i++)
		if (tr_pid_is_none(t->workers[i]))
			return false;
	return true;
}

#define PID_FMT "<%" PRIu32 ".%" PRIu32 ".%" PRIu32 ">"
#define PID_ARGS(p) (p).node, (p).slot, (p).gen

static void print_tree(const char *title, const struct tree *t)
{
	say("%s: top " PID_FMT " (%s, at most %u restarts in %u s)", title,
	    PID_ARGS(t->top), top_info.strategy, top_info.intensity,
	    top_info.period_ms / 1000);
	say("  dispatcher " PID_FMT "  worker, registered as \"dispatcher\"",
	    PID_ARGS(t->dispatcher));
	say("  pool_sup   " PID_FMT "  supervisor (%s, at most %u restarts"
	    " in %u s)",
	    PID_ARGS(t->pool), pool_info.strategy, pool_info.intensity,
	    pool_info.period_ms / 1000);
	say("    worker.0 " PID_FMT "  worker.1 " PID_FMT "  worker.2 " PID_FMT,
	    PID_ARGS(t->workers[0]), PID_ARGS(t->workers[1]),
	    PID_ARGS(t->workers[2]));
}

/* ------------------------------------------------------------------------ */
/* The log handler: the runtime's reports, told for a newcomer               */
/* ------------------------------------------------------------------------ */

/* The runtime writes lines like
 *
 *   CRASH REPORT pid=<0.7.2> name=worker.1 behaviour=worker reason=22
 *       (error: poison request: ...) in=message type 2
 *   SUPERVISOR REPORT sup=<0.5.1> child=worker.1 pid=<0.0.0>
 *       event=child_terminated reason=22 (error)
 *
 * A supervisor's reaction to one exit is several reports (the exit, then
 * one "restarted" per child it restarts, or "reached_max_restart_intensity"
 * and "shutdown"); they are gathered into one line. Reports of other actors
 * that come in meanwhile, from other scheduler threads, wait until that
 * line is printed, which is when the next exit is reported or the main
 * thread has something to say. All of it runs under out_lock. */

/* Which supervisor a pid in a report is. pool_sup's pid changes when top
 * restarts it; the "restarted" report of top carries the new one. */
static struct known_sup {
	const struct sup_info *info;
	tr_pid pid;
	double restarts[8]; /* when it decided its recent restarts (s) */
	unsigned nrestarts;
} known[2] = {{.info = &top_info}, {.info = &pool_info}};

static struct {
	char line[256];            /* the line being gathered, or "" */
	const struct known_sup *k; /* whose reaction it is */
	unsigned restarts;         /* children restarted so far */
	unsigned count;            /* restarts within its period, this one
	                            * included */
	bool gave_up;              /* it reached its intensity */
	char held[8][160];         /* other lines, waiting for it */
	unsigned nheld;
} reaction;

static void flush_reaction_locked(void)
{
	if (reaction.line[0] != '\0')
		printf("%s\n", reaction.line);
	for (unsigned i = 0; i < reaction.nheld; i++)
		printf("%s\n", reaction.held[i]);
	memset(&reaction, 0, sizeof reaction);
}

static void appendf(const char *fmt, ...)
{
	size_t len = strlen(reaction.line);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reaction.line + len, sizeof reaction.line - len, fmt, ap);
	va_end(ap);
}

/* Prints a line of its own, or holds it while a reaction is gathered. */
static void emit(double us, const char *fmt, ...)
{
	char buf[160];
	int n = snprintf(buf, sizeof buf, "  %7.0f us  ", us);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
	va_end(ap);
	if (reaction.line[0] == '\0')
		printf("%s\n", buf);
	else if (reaction.nheld < 8)
		memcpy(reaction.held[reaction.nheld++], buf, sizeof buf);
}

static bool parse_pid(const char *s, tr_pid *p)
{
	return sscanf(s, "<%" SCNu32 ".%" SCNu32 ".%" SCNu32 ">", &p->node,
	           &p->slot, &p->gen) == 3;
}

/* The value of `key` (which ends in '=') in a report, up to a space. */
static void field(const char *line, const char *key, char *out, size_t cap)
{
	const char *p = strstr(line, key);
	size_t n = 0;

	if (p == NULL)
		return; /* out keeps its default */
	p += strlen(key);
	while (p[n] != '\0' && p[n] != ' ' && n + 1 < cap) {
		out[n] = p[n];
		n++;
	}
	out[n] = '\0';
}

static void describe_reason(char *out, size_t cap, int reason)
{
	if (reason > 0)
		snprintf(out, cap, "error %d", reason);
	else
		snprintf(out, cap, "%s", tr_reason_name(reason));
}

static struct known_sup *which_sup(tr_pid pid)
{
	for (int i = 0; i < 2; i++)
		if (tr_pid_eq(known[i].pid, pid))
			return &known[i];
	return NULL;
}

/* How many of a supervisor's restarts fall within its period, counting
 * one more now: its sliding window, as seen from outside. */
static unsigned count_restart(struct known_sup *k)
{
	double now = now_s(), from = now - k->info->period_ms / 1e3;
	unsigned n = 0;

	if (k->nrestarts == 8) {
		memmove(k->restarts, k->restarts + 1, 7 * sizeof(double));
		k->nrestarts = 7;
	}
	k->restarts[k->nrestarts++] = now;
	for (unsigned i = 0; i < k->nrestarts; i++)
		n += k->restarts[i] >= from;
	return n;
}

static void tell_crash(const char *line, double us)
{
	char pid[48] = "?", name[TR_NAME_MAX + 1] = "-", reason[16] = "0";
	const char *why = strstr(line, " (");
	const char *end = strstr(line, ") in=");
	char tail[32] = "";
	int len = 0;

	field(line, "pid=", pid, sizeof pid);
	field(line, "name=", name, sizeof name);
	if (strcmp(name, "-") == 0)
		field(line, "behaviour=", name, sizeof name);
	field(line, "reason=", reason, sizeof reason);
	/* Between the parentheses: the reason's name, and its text if any. */
	if (why != NULL && end != NULL && end > why)
		len = (int)(end - why - 2);
	if (atoi(reason) > 0)
		snprintf(tail, sizeof tail, " [reason %s]", reason);
	emit(us, "%s %s crashed: %.*s%s", name, pid, len,
	    why != NULL ? why + 2 : "", tail);
}

static void tell_sup(const char *line, double us)
{
	char sup_s[48] = "?", child[TR_NAME_MAX + 1] = "-", pid_s[48] = "";
	char event[48] = "?", reason_s[16] = "0", why[32];
	struct known_sup *k;
	const char *label;
	tr_pid sup = TR_PID_NONE, pid = TR_PID_NONE;

	field(line, "sup=", sup_s, sizeof sup_s);
	field(line, "child=", child, sizeof child);
	field(line, "pid=", pid_s, sizeof pid_s);
	field(line, "event=", event, sizeof event);
	field(line, "reason=", reason_s, sizeof reason_s);
	parse_pid(sup_s, &sup);
	parse_pid(pid_s, &pid);
	describe_reason(why, sizeof why, atoi(reason_s));
	k = which_sup(sup);
	label = k != NULL ? k->info->label : sup_s;
	bool mine = k != NULL && reaction.k == k;

	if (strcmp(event, "restarted") == 0) {
		/* Learn the new pid of a restarted supervisor, so that its
		 * own reports are told under its name. */
		if (k == &known[0] && strcmp(child, "pool_sup") == 0) {
			known[1].pid = pid;
			known[1].nrestarts = 0;
		}
		if (mine) {
			appendf("%s %s",
			    reaction.restarts++ ? "," : "; restarted", child);
			return;
		}
		emit(us, "%s restarted %s", label, child);
	} else if (strcmp(event, "child_terminated") == 0) {
		unsigned n = k != NULL ? count_restart(k) : 0;

		flush_reaction_locked();
		snprintf(reaction.line, sizeof reaction.line,
		    "  %7.0f us  %s (%s) saw %s exit (%s)", us, label,
		    k != NULL ? k->info->strategy : "?", child, why);
		reaction.k = k;
		reaction.count = n;
	} else if (mine &&
	           strcmp(event, "reached_max_restart_intensity") == 0) {
		unsigned n = reaction.count;

		/* The exit just told is one restart too many. */
		flush_reaction_locked();
		snprintf(reaction.line, sizeof reaction.line,
		    "  %7.0f us  %s gives up: %u restarts in %u s is more "
		    "than %u",
		    us, label, n, k->info->period_ms / 1000,
		    k->info->intensity);
		reaction.k = k;
		reaction.gave_up = true;
	} else if (mine && reaction.gave_up && strcmp(event, "shutdown") == 0) {
		appendf("; it stops its children and exits (%s)", why);
	} else if (strcmp(event, "shutdown") == 0) {
		emit(us,
		    "%s shuts down (%s): stops its children, last "
		    "started first, then exits",
		    label, why);
	} else {
		emit(us, "%s: %s child=%s reason=%s", label, event, child, why);
	}
}

static void log_handler(void *user, const char *line)
{
	double us;

	(void)user;
	pthread_mutex_lock(&out_lock);
	us = (now_s() - t_start) * 1e6;
	if (strncmp(line, "CRASH REPORT ", 13) == 0) {
		tell_crash(line, us);
	} else if (strncmp(line, "SUPERVISOR REPORT ", 18) == 0) {
		tell_sup(line, us);
	} else if (strncmp(line, "DEAD LETTER ", 12) == 0) {
		char w[TR_NAME_MAX + 1] = "?", n[24] = "?";

		field(line, "worker=", w, sizeof w);
		field(line, "n=", n, sizeof n);
		emit(us,
		    "%s sets collatz(%s) aside as a dead letter: it failed "
		    "%d times",
		    w, n, MAX_ATTEMPTS);
	} else {
		emit(us, "%s", line);
	}
	pthread_mutex_unlock(&out_lock);
}

/* ------------------------------------------------------------------------ */
/* The client                                                                */
/* ------------------------------------------------------------------------ */

static uint32_t next_id = 1;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static uint32_t send_request(
    tr_runtime *rt, tr_port *port, uint64_t n, bool durable)
{
	struct request r = {.id = next_id++, .durable = durable, .n = n};
	tr_pid d;

	/* Looked up at every request: the name outlives any one pid. */
	if (tr_whereis(&d, rt, "dispatcher") != TR_OK ||
	    tr_port_send(port, d, MSG_REQUEST, &r, sizeof r) != TR_OK)
		return 0;
	return r.id;
}

/* Waits for the answer to request `id`, dropping answers to older ones. */
static bool wait_answer(tr_port *port, uint32_t id, struct answer *a)
{
	double deadline = now_s() + WAIT_MS / 1e3;
	tr_msg *m;

	while (now_s() < deadline) {
		int64_t left = (int64_t)((deadline - now_s()) * 1e3) + 1;

		if (tr_port_recv(&m, port, left) != TR_OK)
			return false;
		if (m->type == MSG_ANSWER && m->size == sizeof *a) {
			memcpy(a, m->data, sizeof *a);
			if (a->id == id) {
				tr_msg_free(m);
				return true;
			}
		}
		tr_msg_free(m);
	}
	return false;
}

/* Asks for collatz(n) until the service answers or WAIT_MS passes: while
 * a part of the tree restarts, "unavailable" is a normal answer, and a
 * client retries, as it would after a timeout. */
static bool ask(tr_runtime *rt, tr_port *port, uint64_t n, struct answer *a)
{
	double deadline = now_s() + WAIT_MS / 1e3;

	while (now_s() < deadline) {
		uint32_t id = send_request(rt, port, n, false);

		if (id != 0 && wait_answer(port, id, a) && a->status == ST_OK)
			return a->steps == collatz_steps(n);
		sleep_ms(1);
	}
	return false;
}

/* Polls the tree until `pred` holds of a snapshot, or WAIT_MS passes. */
static bool wait_tree(tr_runtime *rt, tr_pid top, struct tree *t,
    bool (*pred)(const struct tree *now, const struct tree *before),
    const struct tree *before)
{
	double deadline = now_s() + WAIT_MS / 1e3;

	do {
		if (snapshot(t, rt, top) && tree_up(t) && pred(t, before))
			return true;
		sleep_ms(1);
	} while (now_s() < deadline);
	return false;
}

static bool all_workers_new(const struct tree *now, const struct tree *b)
{
	for (int i = 0; i < NWORKERS; i++)
		if (tr_pid_eq(now->workers[i], b->workers[i]))
			return false;
	return true;
}

static bool dispatcher_new(const struct tree *now, const struct tree *b)
{
	return !tr_pid_eq(now->dispatcher, b->dispatcher);
}

static bool pool_new(const struct tree *now, const struct tree *b)
{
	return !tr_pid_eq(now->pool, b->pool);
}

static bool same_workers(const struct tree *a, const struct tree *b)
{
	for (int i = 0; i < NWORKERS; i++)
		if (!tr_pid_eq(a->workers[i], b->workers[i]))
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */

static const uint64_t warmup[] = {27, 97, 871, 6171, 77031, 837799};

static void serve_a_few(tr_runtime *rt, tr_port *port)
{
	char line[256];
	size_t len = 0;
	bool ok = true;
	struct answer a;

	for (size_t i = 0; i < sizeof warmup / sizeof warmup[0]; i++) {
		bool got = ask(rt, port, warmup[i], &a);

		ok = ok && got;
		len += (size_t)snprintf(line + len, sizeof line - len,
		    " %" PRIu64 "->%" PRIu64 "(w%d)", warmup[i],
		    got ? a.steps : 0, got ? a.worker : -1);
	}
	check(ok, "answers:%s", line);
}

static void answers_again(tr_runtime *rt, tr_port *port)
{
	struct answer a;
	bool ok = ask(rt, port, 27, &a);

	check(ok,
	    "the service answers again: collatz(27) = %" PRIu64
	    " steps, from worker.%d",
	    ok ? a.steps : 0, ok ? a.worker : -1);
}

int main(void)
{
	struct tree before, t;
	tr_runtime_opts opts;
	tr_runtime *rt;
	tr_port *port;
	struct answer a;
	struct watch w;
	tr_msg *m;
	tr_pid top;
	int err, reason = 0;
	uint32_t id;
	bool ok;

	tr_runtime_opts_init(&opts);
	if ((err = tr_runtime_start(&rt, &opts)) != TR_OK ||
	    (err = tr_port_open(&port, rt)) != TR_OK) {
		fprintf(stderr, "troupe-supervision: %s\n", tr_strerror(err));
		return 1;
	}
	tr_runtime_set_log(rt, log_handler, NULL);
	t_start = now_s();
	build_specs();

	say("troupe-supervision: a service under a two-level supervision "
	    "tree");
	{
		tr_sup_flags f;

		tr_sup_flags_init(&f);
		f.strategy = TR_SUP_ONE_FOR_ONE;
		f.intensity = top_info.intensity;
		f.period_ms = top_info.period_ms;
		err = tr_sup_start(&top, rt, &f, top_specs, 2, &reason);
	}
	if (err != TR_OK) {
		fprintf(stderr, "troupe-supervision: start: %s (reason %d)\n",
		    tr_strerror(err), reason);
		return 1;
	}
	known[0].pid = top;
	if (!snapshot(&t, rt, top) || !tree_up(&t)) {
		fprintf(stderr, "troupe-supervision: the tree is not up\n");
		return 1;
	}
	known[1].pid = t.pool;
	print_tree("tree", &t);
	serve_a_few(rt, port);

	/* 1. A poison request crashes whichever worker gets it. The request
	 * dies with it (its client would time out); one_for_all restarts
	 * the worker's siblings too, so all three come back fresh. */
	before = t;
	begin_step("1. a poison request (collatz(0)) crashes a worker");
	send_request(rt, port, 0, false);
	check(wait_tree(rt, top, &t, all_workers_new, &before),
	    "pool_sup restarted all %d workers: each has a new pid", NWORKERS);
	answers_again(rt, port);

	/* 2. The dispatcher is killed from outside, as an operator or an
	 * out-of-memory killer might. */
	before = t;
	begin_step("2. the dispatcher is killed (tr_kill, reason kill)");
	tr_kill(rt, before.dispatcher, TR_REASON_KILL);
	ok = wait_tree(rt, top, &t, dispatcher_new, &before) &&
	     same_workers(&t, &before);
	check(ok,
	    "\"dispatcher\" names a new pid " PID_FMT "; the workers are "
	    "untouched (one_for_one)",
	    PID_ARGS(t.dispatcher));
	answers_again(rt, port);

	/* 3. The crash loop. */
	before = t;
	begin_step("3. a durable poison request: a crash loop");
	id = send_request(rt, port, 0, true);
	/* The tree first: the dead letter is answered while top is still
	 * restarting pool_sup, and printing then would cut top's report in
	 * two. */
	ok = wait_tree(rt, top, &t, pool_new, &before) &&
	     tr_pid_eq(t.dispatcher, before.dispatcher);
	check(ok,
	    "top restarted pool_sup as " PID_FMT "; the dispatcher is "
	    "untouched",
	    PID_ARGS(t.pool));
	check(
	    id != 0 && wait_answer(port, id, &a) && a.status == ST_DEAD_LETTER,
	    "the client is told its request became a dead letter");
	answers_again(rt, port);
	print_tree("tree now", &t);

	/* Stop: a shutdown exit signal stops an unlinked supervisor, which
	 * first stops its children, last started first. */
	begin_step("stop: tr_kill(top, shutdown)");
	w.target = top;
	w.report_to = tr_port_pid(port);
	err = tr_spawn(NULL, rt, &watcher, &w,
	    &(tr_spawn_opts){.struct_size = sizeof(tr_spawn_opts),
	        .flags = TR_SPAWN_SYNC_INIT});
	if (err == TR_OK)
		err = tr_kill(rt, top, TR_REASON_SHUTDOWN);
	reason = 1;
	while (
	    err == TR_OK && (err = tr_port_recv(&m, port, WAIT_MS)) == TR_OK) {
		if (m->type == MSG_WATCH_DOWN) {
			const tr_exit_info *x = (const void *)m->data;

			reason = x->reason;
			tr_msg_free(m);
			break;
		}
		tr_msg_free(m); /* a late answer */
	}
	{
		bool gone =
		    !tr_is_alive(rt, t.dispatcher) && !tr_is_alive(rt, t.pool);

		for (int i = 0; i < NWORKERS; i++)
			gone = gone && !tr_is_alive(rt, t.workers[i]);
		check(err == TR_OK && reason == TR_REASON_SHUTDOWN && gone,
		    "top exited (%s) and none of its %d actors is alive",
		    tr_reason_name(reason), 2 + NWORKERS);
	}

	/* Every actor is gone, so nothing else touches the journal. */
	check(journal.dead_letters == 1 && !journal.full,
	    "the journal is empty, with %d dead letter", journal.dead_letters);

	tr_port_close(port);
	tr_runtime_stop(rt);
	if (failures == 0)
		say("all checks passed");
	else
		say("%d check(s) FAILED", failures);
	return failures == 0 ? 0 : 1;
}
