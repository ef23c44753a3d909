/*
 * troupe-parser: a service whose parser crashes on bad input, and which
 * still answers every good request, because the parser runs in process
 * children (samples/parser/README.md walks through it).
 *
 *   troupe-parser [-v]
 *
 *   main thread (the demo's client) --request--> front (an actor)
 *                                                  |  tr_request, 1000 ms
 *                 sup (one_for_one) ---starts---> parser-0, parser-1,
 *                                                 parser-2: each the root
 *                                                 actor of an OS process
 *
 * The program is both the service and, re-executed by the supervisor, the
 * parsers: main registers the behaviour "parser" and calls
 * tr_proc_child_main first, which in a process child runs that behaviour
 * as its root actor and never returns.
 *
 * The front keeps the parsers that are up (each says so from its init,
 * and the front monitors it), hands each request to one of them and
 * answers the client. When a parser dies (SIGSEGV, SIGABRT) or does not
 * answer in time (it is then killed), the request it was working on is
 * blamed and the others it had are sent to another parser; a request that
 * brought down two parsers is answered as rejected. The supervisor starts
 * a new parser each time.
 *
 * The client sends a mix of good and bad requests, prints one line per
 * request and a summary, and exits 0 only if every good request got its
 * right answer and every bad one was rejected. -v also prints the log:
 * supervisor reports and the parsers' output.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe/node.h>
#include <troupe/pid.h>
#include <troupe/proc.h>
#include <troupe/sup.h>
#include <troupe/troupe.h>

#include "parse.h"

#define NPARSERS 3
#define POOL_MAX 8     /* parsers the front knows at once */
#define INFLIGHT_MAX 4 /* requests one parser has at once */
#define TRIES 2        /* parsers a request may bring down */
#define CALL_MS 1000   /* a parser's time for one request */
#define JOBS_MAX 128   /* requests the front holds at once */
#define TEXT_MAX 512   /* longest request or answer */
#define DEADLINE_MS 90000

/* Messages of the sample's own. */
enum {
	T_REQUEST = 1, /* client -> front: struct wire + the request */
	T_ANSWER,      /* front -> client: struct wire + the answer */
	T_UP,          /* parser -> front, from its init: empty */
	T_PARSE,       /* front -> parser, a request: the bytes */
	T_PARSED,      /* parser -> front, its reply: the answer */
};

/* What starts the payloads between the client and the front. */
struct wire {
	uint32_t id;
	uint32_t ok; /* T_ANSWER: 1 the parser's answer, 0 rejected */
};

/* ---- the parser: the root actor of each process child ------------------- */

/* Its init argument is the front's pid, encoded (troupe/pid.h) by the
 * parent: it is decoded here on this process's node. */
static int parser_init(tr_ctx *ctx, void *arg, void **state)
{
	tr_blob *b = arg;
	tr_pid front;
	int rc = tr_pid_decode(
	    &front, tr_node_of(tr_runtime_of(ctx)), b->data, b->size);
	free(b);
	*state = NULL;
	if (rc != TR_OK)
		return 1;
	/* The front monitors the sender of this message: this actor. */
	return tr_send(ctx, front, T_UP, NULL, 0) == TR_OK ? 0 : 1;
}

static int parser_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != T_PARSE || m->ref == 0)
		return 0;
	char out[TEXT_MAX];
	parse_request((const char *)m->data, m->size, out, sizeof(out));
	(void)tr_reply(ctx, m, T_PARSED, out, strlen(out));
	return 0;
}

static const tr_behaviour parser_b = {
    .name = "parser",
    .init = parser_init,
    .handle = parser_handle,
};

/* ---- the front: hands requests to parsers, retries, answers ------------- */

struct parser {
	bool up;
	tr_pid pid;
	uint64_t mon; /* its monitor */
	uint32_t inflight;
	bool alone; /* it has a suspect, and nothing else */
};

struct job {
	bool used;
	struct wire w;
	tr_pid client;
	uint32_t tries; /* parsers it brought down on its own */
	bool suspect;   /* at a parser that died with several */
	int at;         /* its parser's index, or -1 while it waits */
	uint64_t ref;   /* its tr_request, while at a parser */
	size_t len;
	char text[TEXT_MAX];
};

struct front {
	struct parser p[POOL_MAX];
	struct job jobs[JOBS_MAX];
	uint64_t seq;
	uint32_t rr; /* where the search for a parser starts */
};

static int front_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	(void)arg;
	struct front *f = calloc(1, sizeof(*f));
	*state = f;
	return f != NULL ? 0 : 1;
}

static void front_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static void answer(tr_ctx *ctx, struct job *j, bool ok, const char *text)
{
	unsigned char buf[sizeof(struct wire) + TEXT_MAX];
	size_t n = strlen(text);
	if (n > TEXT_MAX)
		n = TEXT_MAX;
	j->w.ok = ok;
	memcpy(buf, &j->w, sizeof(j->w));
	memcpy(buf + sizeof(j->w), text, n);
	(void)tr_send(ctx, j->client, T_ANSWER, buf, sizeof(j->w) + n);
	j->used = false;
}

/* For a request, the parser that is up with the fewest requests, below
 * INFLIGHT_MAX; for a suspect, one with none (it then takes no other
 * until it has answered). -1: none now. */
static int pick(struct front *f, bool suspect)
{
	int best = -1;
	for (uint32_t k = 0; k < POOL_MAX; k++) {
		int i = (int)((f->rr + k) % POOL_MAX);
		const struct parser *p = &f->p[i];
		if (!p->up || p->alone ||
		    p->inflight >= (suspect ? 1u : INFLIGHT_MAX))
			continue;
		if (best < 0 || p->inflight < f->p[best].inflight)
			best = i;
	}
	f->rr++;
	return best;
}

/* Parser `i` is dead or stuck, of `why` (NULL: of nothing it was sent).
 * Its process took with it the replies it had not sent yet (replies go
 * out in batches, at the end of a turn), so which of its requests did it
 * is known only when it had one: that one is blamed, and rejected at its
 * TRIES-th such failure. When it had several, each becomes a suspect and
 * goes alone to a parser of its own, which tells. Requests that are not
 * blamed wait for another parser, their tries untouched. */
static void retire(tr_ctx *ctx, struct front *f, int i, const char *why)
{
	struct job *at[INFLIGHT_MAX];
	size_t n = 0;
	for (size_t k = 0; k < JOBS_MAX; k++) {
		struct job *j = &f->jobs[k];
		if (!j->used || j->at != i)
			continue;
		(void)tr_call_cancel(ctx, j->ref);
		j->at = -1;
		if (n < INFLIGHT_MAX)
			at[n++] = j;
	}
	f->p[i].up = false;
	f->p[i].inflight = 0;
	f->p[i].alone = false;
	if (why == NULL)
		return;
	if (n > 1) {
		for (size_t k = 0; k < n; k++)
			at[k]->suspect = true;
	} else if (n == 1 && ++at[0]->tries >= TRIES) {
		char text[TEXT_MAX];
		snprintf(text, sizeof(text), "error: input %s", why);
		answer(ctx, at[0], false, text);
	} else if (n == 1) {
		at[0]->suspect = true;
	}
}

/* Sends waiting requests to parsers while both are there: suspects
 * first, each alone, then the others. */
static void dispatch(tr_ctx *ctx, struct front *f)
{
	for (int pass = 0; pass < 2; pass++) {
		bool suspects = pass == 0;
		for (size_t k = 0; k < JOBS_MAX; k++) {
			struct job *j = &f->jobs[k];
			if (!j->used || j->at >= 0 || j->suspect != suspects)
				continue;
			int i = pick(f, suspects);
			if (i < 0)
				break;
			int rc = tr_request(ctx, &j->ref, f->p[i].pid, T_PARSE,
			    j->text, j->len, CALL_MS);
			if (rc != TR_OK) {
				/* Gone already: its DOWN is on its way.
				 * Forget it now, blaming nobody, and try
				 * again on another. */
				(void)tr_demonitor(ctx, f->p[i].mon);
				retire(ctx, f, i, NULL);
				k--;
				continue;
			}
			j->at = i;
			f->p[i].inflight++;
			f->p[i].alone = suspects;
		}
	}
}

static struct job *job_of_ref(struct front *f, uint64_t ref)
{
	for (size_t k = 0; k < JOBS_MAX; k++)
		if (f->jobs[k].used && f->jobs[k].at >= 0 &&
		    f->jobs[k].ref == ref)
			return &f->jobs[k];
	return NULL;
}

static int front_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct front *f = state;
	char why[TEXT_MAX];
	switch (m->type) {
	case T_REQUEST: {
		struct job *j = NULL;
		for (size_t k = 0; k < JOBS_MAX && j == NULL; k++)
			if (!f->jobs[k].used)
				j = &f->jobs[k];
		if (m->size < sizeof(struct wire))
			return 0;
		struct wire w;
		memcpy(&w, m->data, sizeof(w));
		struct job busy = {.w = w, .client = tr_sender(m)};
		if (j == NULL) {
			answer(ctx, &busy, false, "error: busy, try again");
			return 0;
		}
		memset(j, 0, sizeof(*j));
		j->used = true;
		j->w = w;
		j->client = tr_sender(m);
		j->at = -1;
		j->len = m->size - sizeof(w);
		if (j->len > TEXT_MAX)
			j->len = TEXT_MAX;
		memcpy(j->text, m->data + sizeof(w), j->len);
		dispatch(ctx, f);
		return 0;
	}
	case T_UP:
		for (int i = 0; i < POOL_MAX; i++) {
			if (f->p[i].up)
				continue;
			f->p[i] =
			    (struct parser){.up = true, .pid = tr_sender(m)};
			/* A parser that is already dead gives its DOWN at
			 * once. */
			if (tr_monitor(ctx, &f->p[i].mon, f->p[i].pid) != TR_OK)
				f->p[i].up = false;
			break;
		}
		dispatch(ctx, f);
		return 0;
	case T_PARSED: {
		struct job *j = job_of_ref(f, m->ref);
		if (j == NULL)
			return 0;
		f->p[j->at].inflight--;
		f->p[j->at].alone = false;
		char text[TEXT_MAX + 1];
		size_t n = m->size < TEXT_MAX ? m->size : TEXT_MAX;
		memcpy(text, m->data, n);
		text[n] = '\0';
		answer(ctx, j, true, text);
		dispatch(ctx, f);
		return 0;
	}
	case TR_MSG_TIMEOUT: {
		struct job *j = job_of_ref(f, m->ref);
		if (j == NULL)
			return 0;
		/* Stuck: it never returns to its scheduler, so only a kill
		 * ends it (SIGKILL of its process); its supervisor starts
		 * another. Its DOWN is not wanted: it is retired now. */
		int i = j->at;
		(void)tr_demonitor(ctx, f->p[i].mon);
		(void)tr_kill(tr_runtime_of(ctx), f->p[i].pid, TR_REASON_KILL);
		snprintf(why, sizeof(why),
		    "hung the parser (no answer in %d ms, killed)", CALL_MS);
		retire(ctx, f, i, why);
		dispatch(ctx, f);
		return 0;
	}
	case TR_MSG_DOWN: {
		tr_exit_info d;
		if (m->size < sizeof(d))
			return 0;
		memcpy(&d, m->data, sizeof(d));
		for (int i = 0; i < POOL_MAX; i++) {
			if (!f->p[i].up || f->p[i].mon != d.ref)
				continue;
			snprintf(why, sizeof(why),
			    "crashed the parser (reason %s: %s)",
			    tr_reason_name(d.reason),
			    d.text[0] != '\0' ? d.text : "-");
			retire(ctx, f, i, why);
			dispatch(ctx, f);
			break;
		}
		return 0;
	}
	default: {
		/* A refusal in place of a reply: the request never reached
		 * its parser, and no timeout follows. It waits again. */
		struct job *j = job_of_ref(f, m->ref);
		if (j != NULL) {
			f->p[j->at].inflight--;
			f->p[j->at].alone = false;
			j->at = -1;
			dispatch(ctx, f);
		}
		return 0;
	}
	}
}

static const tr_behaviour front_b = {
    .name = "front",
    .init = front_init,
    .handle = front_handle,
    .terminate = front_terminate,
};

/* ---- the demo's requests ------------------------------------------------ */

enum { GOOD, SEGV, ABORT, HANG };

struct sample {
	int kind;
	const char *in;
	const char *want; /* GOOD: the right answer */
};

static const struct sample fixed[] = {
    {GOOD, "user=ann;role=admin", "2 fields: user=ann role=admin"},
    {SEGV, "this_key_is_far_too_long_for_the_buffer=1", NULL},
    {GOOD, "greeting=hello%20world", "1 field: greeting=hello world"},
    {ABORT, "path=%zz", NULL},
    {GOOD, "a=1;b=2;c=3", "3 fields: a=1 b=2 c=3"},
    {HANG, "name=\tbob", NULL},
    {GOOD, "name= bob", "1 field: name=bob"},
    {GOOD, "no equals sign", "invalid: field 1 has no '='"},
    {SEGV, "a=1;another_key_that_overruns_its_slot=2", NULL},
    {GOOD, "x=%41%42%43", "1 field: x=ABC"},
    {ABORT, "q=50%", NULL},
    {GOOD, "=empty", "invalid: field 1 has no key"},
};

#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))
#define NGEN 18 /* generated good requests, mixed in */
#define NREQ (NFIXED + NGEN)

struct req {
	int kind;
	char in[TEXT_MAX];
	char want[TEXT_MAX];
	bool answered;
	bool ok;
	char got[TEXT_MAX + 1];
};

/* The fixed samples, with a generated good request after each of the
 * first ones, so that good requests queue up behind bad ones. */
static void make_requests(struct req *r)
{
	size_t n = 0, g = 0;
	for (size_t i = 0; i < NFIXED; i++) {
		r[n].kind = fixed[i].kind;
		snprintf(r[n].in, sizeof(r[n].in), "%s", fixed[i].in);
		snprintf(r[n].want, sizeof(r[n].want), "%s",
		    fixed[i].want != NULL ? fixed[i].want : "");
		n++;
		for (int k = 0; k < (i < NGEN % NFIXED ? 2 : 1) && g < NGEN;
		     k++, g++, n++) {
			r[n].kind = GOOD;
			snprintf(r[n].in, sizeof(r[n].in),
			    "id=%zu;item=part%%2d%zu;qty=%zu", g, g, g * 7);
			snprintf(r[n].want, sizeof(r[n].want),
			    "3 fields: id=%zu item=part-%zu qty=%zu", g, g,
			    g * 7);
		}
	}
}

/* ---- logging ------------------------------------------------------------- */

static bool verbose;

/* Quiet unless -v: the supervisor's reports and the parsers' output are
 * what the demo is about, but they would drown its lines. */
static void log_handler(void *user, const tr_log_event *ev)
{
	(void)user;
	bool expected = ev->domain != NULL &&
	                (strcmp(ev->domain, "supervisor_report") == 0 ||
	                    strcmp(ev->domain, "proc_output") == 0 ||
	                    strcmp(ev->domain, "crash_report") == 0);
	if (expected && !verbose)
		return;
	char line[1024];
	tr_log_format_text(line, sizeof(line), ev);
	fprintf(stderr, "  log: %s\n", line);
}

/* ---- the service's setup ------------------------------------------------- */

/* Under a sanitizer the parsers' runtime would catch SIGSEGV itself and
 * LeakSanitizer would change their exit statuses: they run with both off
 * (tr_proc_sanitizer_env), so that the reasons shown stay those of the
 * crashes. */
static const char *child_env[2];

/* A fresh cookie: nobody else needs to know it. */
static int make_cookie(char *buf, size_t cap)
{
	unsigned char raw[16];
	FILE *f = fopen("/dev/urandom", "rb");
	if (f == NULL || fread(raw, 1, sizeof(raw), f) != sizeof(raw)) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < cap; i++)
		snprintf(buf + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d != NULL) {
		struct dirent *e;
		char path[512];
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 ||
			    strcmp(e->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			(void)unlink(path);
		}
		closedir(d);
	}
	(void)rmdir(dir);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *kind_name(int kind)
{
	static const char *const names[] = {"good", "segv", "abort", "hang"};
	return names[kind];
}

/* The input as printed: control characters shown, long ones cut. */
static void shorten(char *out, size_t cap, const char *in)
{
	size_t n = 0;
	for (const char *p = in; *p != '\0' && n + 3 < cap; p++) {
		if (p - in >= 28) {
			snprintf(out + n, cap - n, "...");
			return;
		}
		if (*p == '\t') {
			out[n++] = '\\';
			out[n++] = 't';
		} else {
			out[n++] = *p;
		}
	}
	out[n] = '\0';
}

/* Sends every request, waits for every answer, prints them; returns the
 * number of requests not answered as they should be. */
static int run_demo(tr_port *port, tr_pid front, struct req *r)
{
	for (size_t i = 0; i < NREQ; i++) {
		unsigned char buf[sizeof(struct wire) + TEXT_MAX];
		struct wire w = {.id = (uint32_t)i};
		size_t n = strlen(r[i].in);
		memcpy(buf, &w, sizeof(w));
		memcpy(buf + sizeof(w), r[i].in, n);
		if (tr_port_send(port, front, T_REQUEST, buf, sizeof(w) + n) !=
		    TR_OK)
			return (int)NREQ;
	}
	size_t got = 0;
	int64_t end = now_ms() + DEADLINE_MS;
	while (got < NREQ && now_ms() < end) {
		tr_msg *m = NULL;
		if (tr_port_recv(&m, port, end - now_ms()) != TR_OK)
			break;
		struct wire w;
		if (m->type == T_ANSWER && m->size >= sizeof(w)) {
			memcpy(&w, m->data, sizeof(w));
			if (w.id < NREQ && !r[w.id].answered) {
				struct req *q = &r[w.id];
				size_t n = m->size - sizeof(w);
				if (n > TEXT_MAX)
					n = TEXT_MAX;
				memcpy(q->got, m->data + sizeof(w), n);
				q->got[n] = '\0';
				q->ok = w.ok != 0;
				q->answered = true;
				got++;
			}
		}
		tr_msg_free(m);
	}
	int bad = 0;
	for (size_t i = 0; i < NREQ; i++) {
		char in[40];
		shorten(in, sizeof(in), r[i].in);
		bool right = r[i].kind == GOOD
		                 ? r[i].answered && r[i].ok &&
		                       strcmp(r[i].got, r[i].want) == 0
		                 : r[i].answered && !r[i].ok;
		bad += !right;
		printf("%2zu %-5s %-32s -> %s%s\n", i, kind_name(r[i].kind), in,
		    r[i].answered ? r[i].got : "(no answer)",
		    right ? "" : "   <-- WRONG");
	}
	return bad;
}

int main(int argc, char **argv)
{
	tr_runtime *rt = NULL;
	if (tr_runtime_start(&rt, NULL) != TR_OK ||
	    tr_behaviour_register(rt, "parser", &parser_b) != TR_OK)
		return 2;
	/* In a process child this runs the parser and never returns. */
	int rc = tr_proc_child_main(rt);
	if (rc != TR_ENOENT) {
		fprintf(stderr, "process child: %s\n", tr_strerror(rc));
		return 2;
	}
	/* Output into a closed pipe (`| head`) then fails instead of ending
	 * the program before it has stopped its parsers and removed its
	 * directory. */
	signal(SIGPIPE, SIG_IGN);
	verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	tr_runtime_set_logger(rt, log_handler, NULL);
	tr_runtime_set_log_level(rt, verbose ? TR_LOG_INFO : TR_LOG_ERROR);

	/* The node the parsers connect back to, on a socket of its own. */
	char dir[] = "/tmp/troupe-parser-XXXXXX";
	char cookie[40], url[sizeof(dir) + 16];
	if (mkdtemp(dir) == NULL || make_cookie(cookie, sizeof(cookie)) != 0) {
		tr_runtime_stop(rt);
		return 2;
	}
	snprintf(url, sizeof(url), "ipc://%s/node", dir);
	const char *listen[] = {url, NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = "parser-svc";
	no.cookie = cookie;
	no.listen = listen;
	tr_node *node = NULL;
	tr_port *port = NULL;
	tr_pid front = TR_PID_NONE, sup = TR_PID_NONE;
	static struct req reqs[NREQ];
	int status = 2;
	if (tr_node_start(&node, rt, &no) != TR_OK ||
	    tr_port_open(&port, rt) != TR_OK ||
	    tr_spawn(&front, rt, &front_b, NULL, NULL) != TR_OK)
		goto out;

	/* Every parser gets the front's pid as its init argument. */
	unsigned char fpid[TR_PID_ENCODED_MAX];
	size_t flen = 0;
	if (tr_pid_encode(fpid, sizeof(fpid), &flen, node, front) != TR_OK)
		goto out;
	child_env[0] = tr_proc_sanitizer_env();
	tr_proc_spec ps;
	tr_proc_spec_init(&ps, "parser");
	ps.arg = fpid;
	ps.arg_size = flen;
	ps.env = child_env;
	ps.memory_limit = 64u << 20;
	ps.cpu_limit_s = 30; /* a backstop for a loop nobody kills */
	static const char *const ids[NPARSERS] = {
	    "parser-0", "parser-1", "parser-2"};
	tr_child_spec specs[NPARSERS];
	for (int i = 0; i < NPARSERS; i++) {
		tr_proc_child_spec(&specs[i], ids[i], &ps);
		specs[i].shutdown_ms = 500;
	}
	tr_sup_flags fl;
	tr_sup_flags_init(&fl);
	fl.strategy = TR_SUP_ONE_FOR_ONE;
	fl.intensity = 50;
	fl.period_ms = 10000;
	int ir = 0;
	rc = tr_sup_start(&sup, rt, &fl, specs, NPARSERS, &ir);
	if (rc != TR_OK) {
		fprintf(
		    stderr, "parsers: %s (reason %d)\n", tr_strerror(rc), ir);
		goto out;
	}
	printf("%d parsers up, each in its own process; %zu requests:\n",
	    NPARSERS, NREQ);

	make_requests(reqs);
	int64_t t0 = now_ms();
	int wrong = run_demo(port, front, reqs);
	int64_t took = now_ms() - t0;
	unsigned good = 0, good_ok = 0, badn = 0, bad_ok = 0;
	for (size_t i = 0; i < NREQ; i++) {
		bool g = reqs[i].kind == GOOD;
		good += g;
		badn += !g;
		good_ok += g && reqs[i].answered && reqs[i].ok &&
		           strcmp(reqs[i].got, reqs[i].want) == 0;
		bad_ok += !g && reqs[i].answered && !reqs[i].ok;
	}
	tr_proc_stats st;
	tr_proc_stats_init(&st);
	(void)tr_proc_stats_get(&st, node);
	printf("summary: good answered %u/%u, bad rejected %u/%u, "
	       "parser restarts %llu, %lld ms\n",
	    good_ok, good, bad_ok, badn,
	    (unsigned long long)(st.started - NPARSERS), (long long)took);
	status = wrong == 0 ? 0 : 1;

out:
	/* The supervisor stops its parsers (shutdown, then SIGKILL after
	 * 500 ms) and they are reaped before it is gone. */
	if (!tr_pid_is_none(sup)) {
		(void)tr_kill(rt, sup, TR_REASON_SHUTDOWN);
		for (int i = 0; i < 1000 && tr_is_alive(rt, sup); i++)
			usleep(10000);
	}
	if (!tr_pid_is_none(front))
		(void)tr_kill(rt, front, TR_REASON_SHUTDOWN);
	tr_port_close(port);
	tr_node_stop(node);
	tr_runtime_stop(rt);
	remove_dir(dir);
	return status;
}
