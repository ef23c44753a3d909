/*
 * Helpers for the tests of links, monitors, exit signals and supervisors.
 *
 * Include it instead of common.h. It adds:
 * - a probe: an actor the test thread drives by messages, the way OTP's
 *   test suites spawn helper processes. The test thread asks it to run a
 *   function in its own context (tt_run: tr_link, tr_monitor, ... need a
 *   tr_ctx), and the probe forwards every EXIT and DOWN message it gets,
 *   and its own end, to the test's port;
 * - a selective receive on the port (tt_expect), since the replies of
 *   tt_run and the probes' notices arrive interleaved;
 * - an event log written with atomics by actors (init, terminate) and read
 *   by the test thread, to check orders;
 * - a capture of the runtime's log lines (crash and supervisor reports);
 * - a worker behaviour for supervisor children, driven by tr_post.
 *
 * Pointers travel in messages between the test thread and the probes: the
 * test thread blocks until the probe has answered, and the message carries
 * the happens-before edge both ways.
 */
#ifndef TROUPE_TESTS_PROBE_H
#define TROUPE_TESTS_PROBE_H

#include "common.h"

#include <pthread.h>

/* ------------------------------------------------------------------------ */
/* Selective receive on the test's port                                      */
/* ------------------------------------------------------------------------ */

#define TT_STASH_MAX 8192

/* Messages received but not yet asked for, in arrival order. */
static tr_msg *tt_stash[TT_STASH_MAX];
static size_t tt_nstash;

static TT_UNUSED void tt_stash_clear(void)
{
	for (size_t i = 0; i < tt_nstash; i++)
		tr_msg_free(tt_stash[i]);
	tt_nstash = 0;
}

static inline bool tt_match(const tr_msg *m, uint32_t type, tr_pid from)
{
	return m->type == type &&
	       (tr_pid_is_none(from) || tr_pid_eq(m->sender, from));
}

static inline void tt_stash_push(tr_msg *m)
{
	if (tt_nstash == TT_STASH_MAX) {
		tr_msg_free(m);
		fail_msg("the port's stash is full");
	}
	tt_stash[tt_nstash++] = m;
}

/* A further condition on a message; NULL accepts any. */
typedef bool (*tt_pred_fn)(const tr_msg *m, const void *arg);

/* The first message of `type` from `from` (TR_PID_NONE: anyone) that
 * satisfies `pred`, stashed or arriving within `ms`; NULL if none came.
 * Other messages are stashed. The caller frees the result. */
static TT_UNUSED tr_msg *tt_try_expect_if(tr_port *port, uint32_t type,
    tr_pid from, tt_pred_fn pred, const void *arg, int64_t ms)
{
	int64_t deadline = tt_now_ms() + ms;

	for (size_t i = 0; i < tt_nstash; i++) {
		tr_msg *m = tt_stash[i];

		if (tt_match(m, type, from) && (pred == NULL || pred(m, arg))) {
			memmove(&tt_stash[i], &tt_stash[i + 1],
			    (tt_nstash - i - 1) * sizeof(tt_stash[0]));
			tt_nstash--;
			return m;
		}
	}
	for (;;) {
		int64_t left = deadline - tt_now_ms();
		tr_msg *m = NULL;

		if (tr_port_recv(&m, port, left > 0 ? left : 0) != TR_OK)
			return NULL;
		if (tt_match(m, type, from) && (pred == NULL || pred(m, arg)))
			return m;
		tt_stash_push(m);
	}
}

static TT_UNUSED tr_msg *tt_try_expect(
    tr_port *port, uint32_t type, tr_pid from, int64_t ms)
{
	return tt_try_expect_if(port, type, from, NULL, NULL, ms);
}

/* As tt_try_expect, but fails the test if nothing comes in TT_WAIT_MS. */
static TT_UNUSED tr_msg *tt_expect(tr_port *port, uint32_t type, tr_pid from)
{
	tr_msg *m = tt_try_expect(port, type, from, TT_WAIT_MS);

	if (m == NULL)
		fail_msg("no message of type %#x from <%u.%u.%u> came", type,
		    from.node, from.slot, from.gen);
	return m;
}

/* Fails if a message of `type` from `from` (TR_PID_NONE: anyone) is
 * stashed or waiting on the port now. Call it once the runtime is
 * quiescent: then nothing is still on its way. */
static TT_UNUSED void tt_assert_none(tr_port *port, uint32_t type, tr_pid from)
{
	tr_msg *m = tt_try_expect(port, type, from, 0);

	if (m != NULL) {
		tr_pid s = m->sender;

		tr_msg_free(m);
		fail_msg("unexpected message of type %#x from <%u.%u.%u>", type,
		    s.node, s.slot, s.gen);
	}
}

/* ------------------------------------------------------------------------ */
/* Probes                                                                    */
/* ------------------------------------------------------------------------ */

enum {
	TT_P_RUN = 0x7000, /* port -> probe: struct tt_run_req */
	TT_P_RC,           /* probe -> port: int, what the function returned */
	TT_P_EXIT,         /* probe -> port: struct tt_note */
	TT_P_DOWN,         /* probe -> port: struct tt_note */
	TT_P_OTHER,        /* probe -> port: struct tt_other, another message */
	TT_P_TERM,         /* probe -> port: int, the probe's exit reason */
	TT_P_STOP,         /* port -> probe: struct tt_stop_req */
	TT_P_PING,         /* port -> probe; the probe answers TT_P_PONG */
	TT_P_PONG,
};

typedef int (*tt_run_fn)(tr_ctx *ctx, void *arg);

/* Run when a probe gets an EXIT or DOWN message, in its context, before it
 * forwards the message; what it returns travels in the note. */
typedef int (*tt_hook_fn)(tr_ctx *ctx, void *arg, const tr_exit_info *info);

struct tt_run_req {
	tt_run_fn fn;
	void *arg;
};

struct tt_stop_req {
	int reason;
	bool by_return; /* return the reason from handle, else tr_exit_text */
	char text[160];
};

struct tt_note {
	tr_exit_info info;
	int hook_rc;
};

/* A message a probe got that is none of its own, forwarded. */
struct tt_other {
	uint32_t type;
	uint32_t size; /* of the original payload */
	uint64_t ref;
	tr_pid sender;
	_Alignas(16) unsigned char data[2048]; /* its start */
};

struct tt_probe {
	tr_pid report; /* where notices go (the test's port) */
	tt_hook_fn hook;
	void *hook_arg;
	_Atomic unsigned *exits; /* optional counters, bumped per message */
	_Atomic unsigned *downs;
	bool quiet; /* count only: forward no EXIT or DOWN notices */
};

static int tt_probe_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int tt_probe_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct tt_probe *p = state;
	struct tt_note note;
	int rc;

	switch (m->type) {
	case TT_P_RUN: {
		struct tt_run_req req;

		TT_ACHECK(m->size == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		rc = req.fn(ctx, req.arg);
		TT_ACHECK(
		    tr_send(ctx, m->sender, TT_P_RC, &rc, sizeof(rc)) == TR_OK);
		return 0;
	}
	case TT_P_STOP: {
		struct tt_stop_req req;

		TT_ACHECK(m->size == sizeof(req));
		memcpy(&req, m->data, sizeof(req));
		if (req.by_return)
			return req.reason;
		tr_exit_text(ctx, req.reason, req.text[0] ? req.text : NULL);
		return 0;
	}
	case TT_P_PING:
		TT_ACHECK(tr_send(ctx, m->sender, TT_P_PONG, NULL, 0) == TR_OK);
		return 0;
	case TR_MSG_EXIT:
	case TR_MSG_DOWN:
		TT_ACHECK(m->size == sizeof(tr_exit_info));
		memset(&note, 0, sizeof(note));
		memcpy(&note.info, m->data, sizeof(note.info));
		TT_ACHECK(m->type == TR_MSG_DOWN || note.info.ref == 0);
		TT_ACHECK(
		    memchr(note.info.text, '\0', TR_REASON_TEXT_MAX) != NULL);
		if (p->hook != NULL)
			note.hook_rc = p->hook(ctx, p->hook_arg, &note.info);
		if (m->type == TR_MSG_EXIT && p->exits != NULL)
			atomic_fetch_add(p->exits, 1);
		if (m->type == TR_MSG_DOWN && p->downs != NULL)
			atomic_fetch_add(p->downs, 1);
		if (!p->quiet)
			TT_ACHECK(
			    tr_send(ctx, p->report,
			        m->type == TR_MSG_EXIT ? TT_P_EXIT : TT_P_DOWN,
			        &note, sizeof(note)) == TR_OK);
		return 0;
	default: {
		struct tt_other *o = calloc(1, sizeof(*o));

		TT_ACHECK(o != NULL);
		if (o == NULL)
			return 0;
		o->type = m->type;
		o->size = m->size;
		o->ref = m->ref;
		o->sender = m->sender;
		memcpy(o->data, m->data,
		    m->size < sizeof(o->data) ? m->size : sizeof(o->data));
		(void)tr_send(ctx, p->report, TT_P_OTHER, o, sizeof(*o));
		free(o);
		return 0;
	}
	}
}

static void tt_probe_terminate(tr_ctx *ctx, void *state, int reason)
{
	struct tt_probe *p = state;

	/* Fails quietly once the port is closed (runtime stop). */
	(void)tr_send(ctx, p->report, TT_P_TERM, &reason, sizeof(reason));
	free(p);
}

static const tr_behaviour tt_probe_bhv TT_UNUSED = {
    .name = "tt_probe",
    .init = tt_probe_init,
    .handle = tt_probe_handle,
    .terminate = tt_probe_terminate,
};

/* Spawns a probe reporting to `port`; `tmpl` (may be NULL) gives its hook
 * and counters; `trap` starts it trapping exits. */
static TT_UNUSED tr_pid tt_probe_spawn_cfg(
    tr_runtime *rt, tr_port *port, bool trap, const struct tt_probe *tmpl)
{
	struct tt_probe *p = calloc(1, sizeof(*p));
	tr_spawn_opts so = {.struct_size = sizeof(tr_spawn_opts),
	    .flags = trap ? TR_SPAWN_TRAP_EXIT : 0};
	tr_pid pid = TR_PID_NONE;

	assert_non_null(p);
	if (tmpl != NULL)
		*p = *tmpl;
	p->report = tr_port_pid(port);
	assert_rc(tr_spawn(&pid, rt, &tt_probe_bhv, p, &so), TR_OK);
	return pid;
}

static TT_UNUSED tr_pid tt_probe_spawn(tr_runtime *rt, tr_port *port, bool trap)
{
	return tt_probe_spawn_cfg(rt, port, trap, NULL);
}

/* Runs fn(ctx, arg) inside `probe` and returns what it returned. */
static TT_UNUSED int tt_run(
    tr_port *port, tr_pid probe, tt_run_fn fn, void *arg)
{
	struct tt_run_req req = {fn, arg};
	tr_msg *m;
	int rc;

	assert_rc(
	    tr_port_send(port, probe, TT_P_RUN, &req, sizeof(req)), TR_OK);
	m = tt_expect(port, TT_P_RC, probe);
	assert_int_equal(m->size, sizeof(rc));
	memcpy(&rc, m->data, sizeof(rc));
	tr_msg_free(m);
	return rc;
}

/* Makes `probe` exit with `reason` and `text` (NULL: none) after the
 * current message, or, with by_return, return `reason` from handle. */
static TT_UNUSED void tt_stop_probe(
    tr_port *port, tr_pid probe, int reason, const char *text, bool by_return)
{
	struct tt_stop_req req;

	memset(&req, 0, sizeof(req));
	req.reason = reason;
	req.by_return = by_return;
	if (text != NULL)
		snprintf(req.text, sizeof(req.text), "%s", text);
	assert_rc(
	    tr_port_send(port, probe, TT_P_STOP, &req, sizeof(req)), TR_OK);
}

/* A round trip to `probe`: it is alive and has handled what the port sent
 * it before. */
static TT_UNUSED void tt_ping(tr_port *port, tr_pid probe)
{
	assert_rc(tr_port_send(port, probe, TT_P_PING, NULL, 0), TR_OK);
	tr_msg_free(tt_expect(port, TT_P_PONG, probe));
}

static bool tt_note_about(const tr_msg *m, const void *arg)
{
	tr_exit_info info;

	if (m->size < sizeof(info))
		return false;
	memcpy(&info, m->data, sizeof(info));
	return tr_pid_eq(info.pid, *(const tr_pid *)arg);
}

/* The first EXIT or DOWN notice from `probe` about `pid`, checked against
 * `reason`. */
static TT_UNUSED struct tt_note tt_expect_note(
    tr_port *port, uint32_t type, tr_pid probe, tr_pid pid, int reason)
{
	struct tt_note n;
	tr_msg *m = tt_try_expect_if(
	    port, type, probe, tt_note_about, &pid, TT_WAIT_MS);

	if (m == NULL)
		fail_msg("no %s notice about <%u.%u.%u> came",
		    type == TT_P_EXIT ? "EXIT" : "DOWN", pid.node, pid.slot,
		    pid.gen);
	assert_int_equal(m->size, sizeof(n));
	memcpy(&n, m->data, sizeof(n));
	tr_msg_free(m);
	if (n.info.reason != reason)
		fail_msg("reason %d (%s), expected %d (%s)", n.info.reason,
		    tr_reason_name(n.info.reason), reason,
		    tr_reason_name(reason));
	return n;
}

static TT_UNUSED struct tt_note tt_expect_exit(
    tr_port *port, tr_pid probe, tr_pid from, int reason)
{
	return tt_expect_note(port, TT_P_EXIT, probe, from, reason);
}

static TT_UNUSED struct tt_note tt_expect_down(
    tr_port *port, tr_pid probe, tr_pid target, int reason)
{
	return tt_expect_note(port, TT_P_DOWN, probe, target, reason);
}

/* Waits for `probe` to end and checks the reason it ended with. */
static TT_UNUSED void tt_expect_term(tr_port *port, tr_pid probe, int reason)
{
	tr_msg *m = tt_expect(port, TT_P_TERM, probe);
	int got;

	assert_int_equal(m->size, sizeof(got));
	memcpy(&got, m->data, sizeof(got));
	tr_msg_free(m);
	if (got != reason)
		fail_msg("probe ended with %d (%s), expected %d (%s)", got,
		    tr_reason_name(got), reason, tr_reason_name(reason));
}

/* Functions for tt_run. */

struct tt_pid_arg {
	tr_pid pid;
	uint64_t ref; /* out: a monitor's reference */
	tr_pid out;   /* out: a spawned pid */
	const tr_behaviour *b;
	void *barg;
	int reason;
};

static TT_UNUSED int tt_fn_link(tr_ctx *ctx, void *arg)
{
	return tr_link(ctx, ((struct tt_pid_arg *)arg)->pid);
}

static TT_UNUSED int tt_fn_unlink(tr_ctx *ctx, void *arg)
{
	return tr_unlink(ctx, ((struct tt_pid_arg *)arg)->pid);
}

static TT_UNUSED int tt_fn_monitor(tr_ctx *ctx, void *arg)
{
	struct tt_pid_arg *a = arg;

	return tr_monitor(ctx, &a->ref, a->pid);
}

static TT_UNUSED int tt_fn_demonitor(tr_ctx *ctx, void *arg)
{
	return tr_demonitor(ctx, ((struct tt_pid_arg *)arg)->ref);
}

static TT_UNUSED int tt_fn_kill(tr_ctx *ctx, void *arg)
{
	struct tt_pid_arg *a = arg;

	return tr_kill(tr_runtime_of(ctx), a->pid, a->reason);
}

static TT_UNUSED int tt_fn_trap_on(tr_ctx *ctx, void *arg)
{
	(void)arg;
	return tr_trap_exit(ctx, true);
}

static TT_UNUSED int tt_fn_trap_off(tr_ctx *ctx, void *arg)
{
	(void)arg;
	return tr_trap_exit(ctx, false);
}

static TT_UNUSED int tt_fn_self(tr_ctx *ctx, void *arg)
{
	((struct tt_pid_arg *)arg)->out = tr_self(ctx);
	return TR_OK;
}

/* tr_link / tr_monitor / tr_unlink run by `probe` on `pid`. */
static TT_UNUSED int tt_link(tr_port *port, tr_pid probe, tr_pid pid)
{
	struct tt_pid_arg a = {.pid = pid};

	return tt_run(port, probe, tt_fn_link, &a);
}

static TT_UNUSED int tt_unlink(tr_port *port, tr_pid probe, tr_pid pid)
{
	struct tt_pid_arg a = {.pid = pid};

	return tt_run(port, probe, tt_fn_unlink, &a);
}

static TT_UNUSED uint64_t tt_monitor(tr_port *port, tr_pid probe, tr_pid pid)
{
	struct tt_pid_arg a = {.pid = pid};

	assert_rc(tt_run(port, probe, tt_fn_monitor, &a), TR_OK);
	assert_true(a.ref != 0);
	return a.ref;
}

static TT_UNUSED int tt_demonitor(tr_port *port, tr_pid probe, uint64_t ref)
{
	struct tt_pid_arg a = {.ref = ref};

	return tt_run(port, probe, tt_fn_demonitor, &a);
}

/* A pid that named an actor which has exited. */
static TT_UNUSED tr_pid tt_dead_pid(tr_runtime *rt, tr_port *port)
{
	tr_pid p = tt_probe_spawn(rt, port, false);

	tt_stop_probe(port, p, TR_REASON_NORMAL, NULL, false);
	tt_expect_term(port, p, TR_REASON_NORMAL);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, p), TT_WAIT_MS));
	return p;
}

/* ------------------------------------------------------------------------ */
/* Event log                                                                 */
/* ------------------------------------------------------------------------ */

#define TT_EVLOG_MAX 8192

/* Events appended by actors on any thread: a kind ('I' init, 'T'
 * terminate, ...), a one-letter id and a reason. */
struct tt_evlog {
	_Atomic uint32_t n;
	_Atomic uint32_t ev[TT_EVLOG_MAX];
};

static TT_UNUSED void tt_ev(struct tt_evlog *l, char kind, char id, int reason)
{
	uint32_t i;

	if (l == NULL)
		return;
	i = atomic_fetch_add(&l->n, 1);
	if (i < TT_EVLOG_MAX)
		atomic_store(&l->ev[i], (uint32_t)(unsigned char)kind << 24 |
		                            (uint32_t)(unsigned char)id << 16 |
		                            (uint16_t)(int16_t)reason);
}

static inline char tt_reason_letter(int reason)
{
	switch (reason) {
	case TR_REASON_NORMAL:
		return 'n';
	case TR_REASON_SHUTDOWN:
		return 's';
	case TR_REASON_KILLED:
		return 'k';
	case TR_REASON_NOPROC:
		return 'p';
	default:
		return reason > 0 ? 'e' : '?';
	}
}

/* Renders events [from, n) as "Ia Ib Tb:e ..." (terminate events carry
 * their reason's letter) into buf; returns buf. */
static TT_UNUSED char *tt_ev_render(
    struct tt_evlog *l, uint32_t from, char *buf, size_t cap)
{
	uint32_t n = atomic_load(&l->n);
	size_t len = 0;

	buf[0] = '\0';
	if (n > TT_EVLOG_MAX)
		n = TT_EVLOG_MAX;
	for (uint32_t i = from; i < n && len + 8 < cap; i++) {
		uint32_t e = atomic_load(&l->ev[i]);
		char kind = (char)(e >> 24), id = (char)(e >> 16 & 0xff);
		int reason = (int16_t)(e & 0xffff);

		const char *sep = len ? " " : "";

		if (kind == 'T')
			len +=
			    (size_t)snprintf(buf + len, cap - len, "%s%c%c:%c",
			        sep, kind, id, tt_reason_letter(reason));
		else
			len += (size_t)snprintf(
			    buf + len, cap - len, "%s%c%c", sep, kind, id);
	}
	return buf;
}

static TT_UNUSED uint32_t tt_ev_count(struct tt_evlog *l)
{
	return atomic_load(&l->n);
}

/* ------------------------------------------------------------------------ */
/* Capturing the runtime's log                                               */
/* ------------------------------------------------------------------------ */

#define TT_LOGCAP_LINES 512

struct tt_logcap {
	pthread_mutex_t mu;
	unsigned n; /* lines seen; the first TT_LOGCAP_LINES are kept */
	char lines[TT_LOGCAP_LINES][256];
};

static TT_UNUSED void tt_logcap_fn(void *user, const char *line)
{
	struct tt_logcap *c = user;

	pthread_mutex_lock(&c->mu);
	if (c->n < TT_LOGCAP_LINES)
		snprintf(c->lines[c->n], sizeof(c->lines[0]), "%s", line);
	c->n++;
	pthread_mutex_unlock(&c->mu);
}

static TT_UNUSED struct tt_logcap *tt_logcap_new(tr_runtime *rt)
{
	struct tt_logcap *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	pthread_mutex_init(&c->mu, NULL);
	tr_runtime_set_log(rt, tt_logcap_fn, c);
	return c;
}

/* Call after the runtime is stopped. */
static TT_UNUSED void tt_logcap_free(struct tt_logcap *c)
{
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Whether a kept line contains every one of the NULL-terminated list of
 * substrings. */
static TT_UNUSED bool tt_logcap_has(struct tt_logcap *c, ...)
{
	bool found = false;

	pthread_mutex_lock(&c->mu);
	for (unsigned i = 0; i < c->n && i < TT_LOGCAP_LINES && !found; i++) {
		va_list ap;
		const char *s;

		found = true;
		va_start(ap, c);
		while ((s = va_arg(ap, const char *)) != NULL)
			if (strstr(c->lines[i], s) == NULL)
				found = false;
		va_end(ap);
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

static TT_UNUSED void tt_logcap_dump(struct tt_logcap *c)
{
	pthread_mutex_lock(&c->mu);
	for (unsigned i = 0; i < c->n && i < TT_LOGCAP_LINES; i++)
		fprintf(stderr, "  log: %s\n", c->lines[i]);
	pthread_mutex_unlock(&c->mu);
}

/* ------------------------------------------------------------------------ */
/* Fixture                                                                   */
/* ------------------------------------------------------------------------ */

/* The log capture of the test's runtime: crash reports are expected here,
 * and would only clutter the output. */
static struct tt_logcap *tt_cap;

static TT_UNUSED int tt_psetup(void **state)
{
	tt_nstash = 0;
	tt_cap = NULL;
	return tt_setup(state);
}

/* Stashed messages come from the runtime's pools: free them first. */
static TT_UNUSED int tt_pteardown(void **state)
{
	int rc;

	tt_stash_clear();
	rc = tt_teardown(state);
	if (tt_cap != NULL)
		tt_logcap_free(tt_cap);
	tt_cap = NULL;
	return rc;
}

#define TT_PTEST(fn)                                                           \
	cmocka_unit_test_setup_teardown(fn, tt_psetup, tt_pteardown)

/* Starts the test's runtime with its log captured in tt_cap. */
static TT_UNUSED tr_runtime *tt_pstart(
    struct tt_fixture *fx, unsigned schedulers)
{
	tr_runtime *rt = tt_start(fx, schedulers);

	tt_cap = tt_logcap_new(rt);
	return rt;
}

static TT_UNUSED void tt_pstop(struct tt_fixture *fx)
{
	tt_stash_clear();
	tt_stop(fx);
	if (tt_cap != NULL)
		tt_logcap_free(tt_cap);
	tt_cap = NULL;
	tt_assert_actors_ok();
}

#endif /* TROUPE_TESTS_PROBE_H */
