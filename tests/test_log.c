/*
 * The log: events with levels, printf-style texts, metadata (pid, name,
 * behaviour) and fields; crash and supervisor reports as structured
 * events; the text and JSON renderings; the default handler on stderr; and
 * line handlers (tr_runtime_set_log), which keep getting the lines they
 * always got.
 */
#include "common.h"

#include <pthread.h>
#include <unistd.h>

#include <troupe/sup.h>

enum {
	MSG_LOG = 1, /* log with tr_ctx_logf and tr_log_emit_ctx */
	MSG_CRASH,   /* crash with reason 42 and a text */
};

/* ---- capture of events --------------------------------------------------- */

#define CAP_MAX 32

struct cap_ev {
	int level;
	char domain[32], text[512], name[TR_NAME_MAX + 1], behaviour[64];
	char node[64];
	bool has_name, has_behaviour, has_node;
	tr_pid pid;
	uint64_t time_us;
	char json[2048];
	size_t nfields;
};

static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cap_ev caps[CAP_MAX];
static unsigned ncaps;

static void cap_fn(void *user, const tr_log_event *ev)
{
	(void)user;
	pthread_mutex_lock(&cap_mu);
	if (ncaps < CAP_MAX) {
		struct cap_ev *c = &caps[ncaps++];
		memset(c, 0, sizeof(*c));
		c->level = ev->level;
		snprintf(c->domain, sizeof(c->domain), "%s", ev->domain);
		snprintf(c->text, sizeof(c->text), "%s", ev->text);
		c->has_name = ev->name != NULL;
		if (ev->name != NULL)
			snprintf(c->name, sizeof(c->name), "%s", ev->name);
		c->has_behaviour = ev->behaviour != NULL;
		if (ev->behaviour != NULL)
			snprintf(c->behaviour, sizeof(c->behaviour), "%s",
			    ev->behaviour);
		c->has_node = ev->node != NULL;
		c->pid = ev->pid;
		c->time_us = ev->time_us;
		c->nfields = ev->nfields;
		(void)tr_log_format_json(c->json, sizeof(c->json), ev);
	}
	pthread_mutex_unlock(&cap_mu);
}

static unsigned cap_count(void)
{
	pthread_mutex_lock(&cap_mu);
	unsigned n = ncaps;
	pthread_mutex_unlock(&cap_mu);
	return n;
}

static struct cap_ev cap_get(unsigned i)
{
	pthread_mutex_lock(&cap_mu);
	struct cap_ev c = caps[i];
	pthread_mutex_unlock(&cap_mu);
	return c;
}

static void cap_reset(void)
{
	pthread_mutex_lock(&cap_mu);
	ncaps = 0;
	pthread_mutex_unlock(&cap_mu);
}

/* ---- an actor that logs ----------------------------------------------------
 */

static int logger_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	switch (m->type) {
	case MSG_LOG: {
		tr_ctx_logf(ctx, TR_LOG_WARNING, "hello %s %d", "world", 7);
		tr_ctx_logf(ctx, TR_LOG_DEBUG, "not shown");
		tr_log_field f[2] = {
		    tr_log_str("child", "worker.1"), tr_log_int("restarts", 3)};
		tr_log_event ev = {.level = TR_LOG_ERROR,
		    .domain = "supervisor_report",
		    .text = "SUPERVISOR REPORT child=worker.1",
		    .fields = f,
		    .nfields = 2};
		tr_log_emit_ctx(ctx, &ev);
		return 0;
	}
	case MSG_CRASH:
		tr_exit_text(ctx, 42, "boom");
		return 0;
	}
	return 0;
}

static const tr_behaviour logger_bhv = {
    .name = "logger_bhv",
    .handle = logger_handle,
};

/* ---- tests -----------------------------------------------------------------
 */

static void test_levels(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);

	cap_reset();
	tr_runtime_set_logger(rt, cap_fn, NULL);
	assert_true(tr_log_enabled(rt, TR_LOG_INFO));
	assert_false(tr_log_enabled(rt, TR_LOG_DEBUG));
	assert_false(tr_log_enabled(NULL, TR_LOG_ERROR));
	tr_logf(rt, TR_LOG_INFO, "x=%d y=%s", 5, "z");
	tr_logf(rt, TR_LOG_DEBUG, "dropped");
	assert_int_equal(cap_count(), 1);
	struct cap_ev c = cap_get(0);
	assert_int_equal(c.level, TR_LOG_INFO);
	assert_string_equal(c.domain, "log");
	assert_string_equal(c.text, "x=5 y=z");
	assert_true(tr_pid_is_none(c.pid));
	assert_false(c.has_node); /* no node */
	assert_true(c.time_us > 1600000000ull * 1000000u);

	tr_runtime_set_log_level(rt, TR_LOG_DEBUG);
	tr_logf(rt, TR_LOG_DEBUG, "now %s", "shown");
	tr_runtime_set_log_level(rt, TR_LOG_ERROR);
	tr_logf(rt, TR_LOG_WARNING, "dropped");
	tr_log(rt, "a line: warning level, dropped too");
	tr_logf(rt, TR_LOG_CRITICAL, "kept");
	assert_int_equal(cap_count(), 3);
	assert_string_equal(cap_get(1).text, "now shown");
	assert_string_equal(cap_get(2).text, "kept");

	/* A text longer than the stack buffer. */
	tr_runtime_set_log_level(rt, TR_LOG_INFO);
	char long_arg[3000];
	memset(long_arg, 'a', sizeof(long_arg) - 1);
	long_arg[sizeof(long_arg) - 1] = '\0';
	tr_logf(rt, TR_LOG_INFO, "<%s>", long_arg);
	assert_int_equal(cap_count(), 4);
	assert_int_equal(strlen(cap_get(3).text), sizeof(c.text) - 1);

	assert_string_equal(tr_log_level_name(TR_LOG_EMERGENCY), "emergency");
	assert_string_equal(tr_log_level_name(TR_LOG_NOTICE), "notice");
	assert_string_equal(tr_log_level_name(TR_LOG_DEBUG), "debug");
	assert_string_equal(tr_log_level_name(42), "unknown");
	tt_stop(fx);
}

/* From an actor: its pid, registered name and behaviour name ride along;
 * a report made with tr_log_emit_ctx keeps its fields. */
static void test_actor_metadata(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);

	cap_reset();
	tr_runtime_set_logger(rt, cap_fn, NULL);
	tr_pid a = tt_spawn(rt, &logger_bhv, NULL);
	assert_rc(tr_register(rt, "chatty", a), TR_OK);
	assert_rc(tr_post(rt, a, MSG_LOG, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(cap_count(), 2);
	struct cap_ev c = cap_get(0);
	assert_int_equal(c.level, TR_LOG_WARNING);
	assert_string_equal(c.text, "hello world 7");
	assert_true(tr_pid_eq(c.pid, a));
	assert_string_equal(c.name, "chatty");
	assert_string_equal(c.behaviour, "logger_bhv");

	c = cap_get(1);
	assert_string_equal(c.domain, "supervisor_report");
	assert_int_equal(c.nfields, 2);
	assert_true(tr_pid_eq(c.pid, a));
	assert_non_null(strstr(
	    c.json, "\"fields\":{\"child\":\"worker.1\",\"restarts\":3}"));
	assert_non_null(strstr(c.json, "\"name\":\"chatty\""));
	tt_stop(fx);
}

/* A crash report is an event: level error, domain crash_report, the
 * actor's metadata, the reason in fields, and as text the line that line
 * handlers have always received. */
static void test_crash_report_event(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	char want[256], json_type[64];

	cap_reset();
	tr_runtime_set_logger(rt, cap_fn, NULL);
	tr_pid a = tt_spawn(rt, &logger_bhv, NULL);
	assert_rc(tr_register(rt, "doomed", a), TR_OK);
	assert_rc(tr_post(rt, a, MSG_CRASH, NULL, 0), TR_OK);
	tt_quiesce(rt);
	assert_int_equal(cap_count(), 1);
	struct cap_ev c = cap_get(0);
	assert_int_equal(c.level, TR_LOG_ERROR);
	assert_string_equal(c.domain, "crash_report");
	assert_true(tr_pid_eq(c.pid, a));
	assert_string_equal(c.name, "doomed");
	assert_string_equal(c.behaviour, "logger_bhv");
	snprintf(want, sizeof(want),
	    "CRASH REPORT pid=<0.%u.%u> name=doomed behaviour=logger_bhv "
	    "reason=42 (error: boom) in=message type %u",
	    a.slot, a.gen, (unsigned)MSG_CRASH);
	assert_string_equal(c.text, want);
	assert_non_null(strstr(c.json, "\"reason\":42"));
	assert_non_null(strstr(c.json, "\"reason_name\":\"error\""));
	assert_non_null(strstr(c.json, "\"reason_text\":\"boom\""));
	assert_non_null(strstr(c.json, "\"in\":\"message\""));
	snprintf(json_type, sizeof(json_type), "\"message_type\":%u",
	    (unsigned)MSG_CRASH);
	assert_non_null(strstr(c.json, json_type));
	tt_stop(fx);
}

/* The index of the first captured event of `domain` whose text has
 * `needle`, or -1. */
static int cap_find(const char *domain, const char *needle)
{
	for (unsigned i = 0; i < cap_count(); i++) {
		struct cap_ev c = cap_get(i);
		if (strcmp(c.domain, domain) == 0 && strstr(c.text, needle))
			return (int)i;
	}
	return -1;
}

/* Supervisor reports are structured events from the supervisor (its pid,
 * registered name and behaviour), with OTP's report in fields: the error
 * context, the child's real exit reason, and the offender's spec. */
static void test_supervisor_report_event(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);

	cap_reset();
	tr_runtime_set_logger(rt, cap_fn, NULL);
	tr_sup_flags f;
	tr_sup_flags_init(&f);
	f.intensity = 5;
	tr_child_spec spec;
	tr_child_spec_init(&spec, "db", &logger_bhv, NULL);
	tr_pid sup;
	int reason = 0;
	assert_rc(tr_sup_start(&sup, rt, &f, &spec, 1, &reason), TR_OK);
	assert_rc(tr_register(rt, "top", sup), TR_OK);
	tr_child_info info[1];
	size_t n = 0;
	assert_rc(tr_sup_which_children(info, 1, &n, rt, sup, 10000), TR_OK);
	assert_int_equal(n, 1);
	assert_rc(tr_post(rt, info[0].pid, MSG_CRASH, NULL, 0), TR_OK);
	assert_true(
	    TT_WAIT_FOR(cap_find("supervisor_report", "event=restarted") >= 0,
	        10000));

	int i = cap_find("supervisor_report", "event=child_terminated");
	assert_true(i >= 0);
	struct cap_ev c = cap_get((unsigned)i);
	assert_int_equal(c.level, TR_LOG_ERROR);
	assert_true(tr_pid_eq(c.pid, sup));
	assert_string_equal(c.name, "top");
	assert_string_equal(c.behaviour, "supervisor");
	assert_non_null(strstr(c.json, "\"context\":\"child_terminated\""));
	assert_non_null(strstr(c.json, "\"reason\":42"));
	assert_non_null(strstr(c.json, "\"reason_name\":\"error\""));
	assert_non_null(strstr(c.json, "\"child\":\"db\""));
	assert_non_null(strstr(c.json, "\"restart_type\":\"permanent\""));
	assert_non_null(strstr(c.json, "\"child_type\":\"worker\""));
	assert_non_null(strstr(c.json, "\"shutdown_ms\":5000"));
	assert_non_null(strstr(c.json, "\"start\":\"logger_bhv\""));
	/* The line handlers' text is the line it always was. */
	assert_non_null(strstr(c.text, "SUPERVISOR REPORT sup=<0."));
	assert_non_null(strstr(c.text, " child=db "));
	assert_non_null(strstr(c.text, " reason=42 (error)"));

	/* The restart that worked is a notice, with the same reason. */
	c = cap_get((unsigned)cap_find("supervisor_report", "event=restarted"));
	assert_int_equal(c.level, TR_LOG_NOTICE);
	assert_non_null(strstr(c.json, "\"context\":\"restarted\""));
	assert_non_null(strstr(c.json, "\"reason\":42"));
	tt_stop(fx);
}

static pthread_mutex_t lines_mu = PTHREAD_MUTEX_INITIALIZER;
static char lines[8][512];
static unsigned nlines;

static void line_fn(void *user, const char *line)
{
	TT_ACHECK(user == (void *)&lines);
	pthread_mutex_lock(&lines_mu);
	if (nlines < 8)
		snprintf(lines[nlines], sizeof(lines[0]), "%s", line);
	nlines++;
	pthread_mutex_unlock(&lines_mu);
}

/* Line handlers: every event reaches them as its text. */
static void test_line_handler(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	char want[256];

	nlines = 0;
	tr_runtime_set_log(rt, line_fn, (void *)&lines);
	tr_log(rt, "a plain line");
	tr_logf(rt, TR_LOG_NOTICE, "formatted %03d", 9);
	tr_pid a = tt_spawn(rt, &logger_bhv, NULL);
	assert_rc(tr_post(rt, a, MSG_CRASH, NULL, 0), TR_OK);
	tt_quiesce(rt);
	pthread_mutex_lock(&lines_mu);
	assert_int_equal(nlines, 3);
	assert_string_equal(lines[0], "a plain line");
	assert_string_equal(lines[1], "formatted 009");
	snprintf(want, sizeof(want),
	    "CRASH REPORT pid=<0.%u.%u> name=- behaviour=logger_bhv "
	    "reason=42 (error: boom) in=message type %u",
	    a.slot, a.gen, (unsigned)MSG_CRASH);
	assert_string_equal(lines[2], want);
	pthread_mutex_unlock(&lines_mu);

	/* An event handler replaces it, and the other way round. */
	cap_reset();
	tr_runtime_set_logger(rt, cap_fn, NULL);
	tr_log(rt, "to the event handler");
	assert_int_equal(cap_count(), 1);
	assert_int_equal(cap_get(0).level, TR_LOG_WARNING);
	tr_runtime_set_log(rt, line_fn, (void *)&lines);
	tr_log(rt, "to the line handler");
	assert_int_equal(cap_count(), 1);
	assert_int_equal(nlines, 4);
	tt_stop(fx);
}

/* The renderings, on an event made by hand. */
static void test_formats(void **state)
{
	(void)state;
	char buf[1024];
	tr_log_field f[6] = {
	    tr_log_str("s", "a\"b\\c\nd\te\x01"),
	    tr_log_int("i", -12),
	    tr_log_uint("u", 18446744073709551615ull),
	    tr_log_bool("b", true),
	    tr_log_pid("p", (tr_pid){0, 7, 2}),
	    tr_log_double("d", 0.5),
	};
	tr_log_event ev = {
	    .level = TR_LOG_ERROR,
	    .domain = "supervisor_report",
	    .text = "said \"hi\"",
	    .time_us = 1700000000123456ull,
	    .pid = {0, 5, 1},
	    .name = "sup",
	    .behaviour = "tr_sup",
	    .node = "alpha",
	    .fields = f,
	    .nfields = 6,
	};
	int n = tr_log_format_json(buf, sizeof(buf), &ev);
	const char *want =
	    "{\"time\":\"2023-11-14T22:13:20.123456Z\",\"level\":\"error\","
	    "\"domain\":\"supervisor_report\",\"text\":\"said \\\"hi\\\"\","
	    "\"pid\":\"<0.5.1>\",\"name\":\"sup\",\"behaviour\":\"tr_sup\","
	    "\"node\":\"alpha\",\"fields\":{\"s\":\"a\\\"b\\\\c\\nd\\te"
	    "\\u0001\",\"i\":-12,\"u\":18446744073709551615,\"b\":true,"
	    "\"p\":\"<0.7.2>\",\"d\":0.5}}";
	assert_string_equal(buf, want);
	assert_int_equal(n, (int)strlen(want));

	n = tr_log_format_text(buf, sizeof(buf), &ev);
	assert_string_equal(buf,
	    "2023-11-14T22:13:20.123456Z error [supervisor_report] said "
	    "\"hi\"");
	assert_int_equal(n, (int)strlen(buf));
	ev.domain = NULL;
	ev.text = "plain";
	(void)tr_log_format_text(buf, sizeof(buf), &ev);
	assert_string_equal(
	    buf, "2023-11-14T22:13:20.123456Z error <0.5.1> sup: plain");
	ev.pid = TR_PID_NONE;
	ev.name = NULL;
	(void)tr_log_format_text(buf, sizeof(buf), &ev);
	assert_string_equal(buf, "2023-11-14T22:13:20.123456Z error plain");

	/* Truncated: the length is the whole line's, the buffer ends in a
	 * NUL. */
	char small[8];
	n = tr_log_format_text(small, sizeof(small), &ev);
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(small, "2023-11");
	assert_int_equal(tr_log_format_json(NULL, 0, &ev) > 0, 1);
}

/* The default handler writes the text line to stderr. */
static void test_default_handler(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	char path[] = "/tmp/troupe-log-XXXXXX";
	int fd = mkstemp(path);
	char buf[4096];

	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	tr_logf(rt, TR_LOG_WARNING, "to stderr %d", 7);
	tr_pid a = tt_spawn(rt, &logger_bhv, NULL);
	assert_rc(tr_post(rt, a, MSG_CRASH, NULL, 0), TR_OK);
	tt_quiesce(rt);
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	ssize_t k = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(k > 0);
	buf[k] = '\0';
	assert_non_null(strstr(buf, "Z warning to stderr 7\n"));
	assert_non_null(
	    strstr(buf, "Z error [crash_report] CRASH REPORT pid="));
	tt_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_levels),
	    TT_TEST(test_actor_metadata),
	    TT_TEST(test_crash_report_event),
	    TT_TEST(test_supervisor_report_event),
	    TT_TEST(test_line_handler),
	    cmocka_unit_test(test_formats),
	    TT_TEST(test_default_handler),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
