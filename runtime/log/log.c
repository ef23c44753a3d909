/*
 * The log: events with levels, metadata and fields (troupe.h, "Logging"),
 * one handler per runtime, the default handler (text lines on stderr), the
 * text and JSON renderings, and the runtime's crash reports.
 *
 * Nothing here is on a message path: an event is built on the stack of the
 * thread that logs, filtered by level before anything is formatted, and
 * handed to the handler on that thread. The default handler writes each
 * line with one stdio call, which locks the stream, so lines of several
 * threads do not interleave.
 */
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"

#include "rt.h"

/* Lines up to this long are formatted on the stack; longer ones in a
 * buffer of their own size. */
#define LINE_STACK 1024

/* A handler as set: immutable once published, so that a thread that logs
 * reads the function and its argument as one. Replaced ones are kept
 * (a thread may still be calling them) until the runtime stops. */
struct tr__log_sink {
	tr_log_handler_fn ev;
	tr_log_fn line;
	void *user;
	struct tr__log_sink *prev;
};

int tr__log_init(tr_runtime *rt)
{
	atomic_init(&rt->log_level, TR_LOG_INFO);
	atomic_init(&rt->log_sink, NULL);
	atomic_init(&rt->node_name, NULL);
	return TR_OK;
}

void tr__log_fini(tr_runtime *rt)
{
	/* Single-threaded: the runtime is stopping. */
	struct tr__log_sink *k =
	    atomic_load_explicit(&rt->log_sink, memory_order_acquire);
	while (k != NULL) {
		struct tr__log_sink *prev = k->prev;
		free(k);
		k = prev;
	}
	atomic_store_explicit(&rt->log_sink, NULL, memory_order_relaxed);
	struct tr__node_name *nn = rt->node_names;
	while (nn != NULL) {
		struct tr__node_name *prev = nn->prev;
		free(nn);
		nn = prev;
	}
	rt->node_names = NULL;
	atomic_store_explicit(&rt->node_name, NULL, memory_order_relaxed);
}

static void sink_set(
    tr_runtime *rt, tr_log_handler_fn ev, tr_log_fn line, void *user)
{
	struct tr__log_sink *k = calloc(1, sizeof(*k));
	if (k == NULL)
		return; /* the handler there is stays */
	k->ev = ev;
	k->line = line;
	k->user = user;
	/* Setters are rare and may race only with each other's lists:
	 * exchange, then link. Release: pairs with the acquire load in
	 * deliver, publishing the sink's fields. */
	k->prev =
	    atomic_exchange_explicit(&rt->log_sink, k, memory_order_acq_rel);
}

const char *tr__node_name(tr_runtime *rt)
{
	/* Acquire: pairs with the release store in tr__dist_attach. */
	const struct tr__node_name *nn =
	    atomic_load_explicit(&rt->node_name, memory_order_acquire);
	return nn != NULL ? nn->name : NULL;
}

static const char *const level_names[] = {"emergency", "alert", "critical",
    "error", "warning", "notice", "info", "debug"};

const char *tr_log_level_name(int level)
{
	if (level < TR_LOG_EMERGENCY || level > TR_LOG_DEBUG)
		return "unknown";
	return level_names[level];
}

/* ---- handlers -------------------------------------------------------------
 */

void tr_runtime_set_logger(tr_runtime *rt, tr_log_handler_fn fn, void *user)
{
	if (rt != NULL)
		sink_set(rt, fn, NULL, fn != NULL ? user : NULL);
}

void tr_runtime_set_log(tr_runtime *rt, tr_log_fn fn, void *user)
{
	if (rt != NULL)
		sink_set(rt, NULL, fn, fn != NULL ? user : NULL);
}

void tr_runtime_set_log_level(tr_runtime *rt, int level)
{
	if (rt == NULL)
		return;
	if (level < TR_LOG_EMERGENCY)
		level = TR_LOG_EMERGENCY;
	if (level > TR_LOG_DEBUG)
		level = TR_LOG_DEBUG;
	atomic_store_explicit(&rt->log_level, level, memory_order_relaxed);
}

bool tr_log_enabled(const tr_runtime *rt, int level)
{
	return rt != NULL &&
	       level <= atomic_load_explicit(&((tr_runtime *)rt)->log_level,
	                    memory_order_relaxed);
}

static void default_handler(const tr_log_event *ev)
{
	char buf[LINE_STACK];
	int n = tr_log_format_text(buf, sizeof(buf), ev);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(buf)) {
		fprintf(stderr, "%s\n", buf);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (big == NULL) {
		fprintf(stderr, "%s\n", buf); /* truncated beats nothing */
		return;
	}
	(void)tr_log_format_text(big, (size_t)n + 1, ev);
	fprintf(stderr, "%s\n", big);
	free(big);
}

static void deliver(tr_runtime *rt, const tr_log_event *ev)
{
	/* Acquire: pairs with the exchange in sink_set. */
	const struct tr__log_sink *k =
	    atomic_load_explicit(&rt->log_sink, memory_order_acquire);
	if (k != NULL && k->ev != NULL)
		k->ev(k->user, ev);
	else if (k != NULL && k->line != NULL)
		k->line(k->user, ev->text);
	else
		default_handler(ev);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Reads the caller's event into `e`, a struct of the library's size:
 * fields past its struct_size keep the defaults of tr_log_event_init. */
static bool event_in(tr_log_event *e, const tr_log_event *ev)
{
	tr_log_event_init(e, TR_LOG_INFO);
	return ev != NULL &&
	       tr__struct_in(e, sizeof(*e), ev, TR_LOG_EVENT_V1_SIZE) == TR_OK;
}

void tr_log_emit(tr_runtime *rt, const tr_log_event *ev)
{
	tr_log_event e;
	if (rt == NULL || !event_in(&e, ev) || !tr_log_enabled(rt, e.level))
		return;
	if (e.domain == NULL)
		e.domain = "log";
	if (e.text == NULL)
		e.text = "";
	if (e.time_us == 0)
		e.time_us = now_us();
	if (e.node == NULL)
		e.node = tr__node_name(rt);
	if (e.fields == NULL)
		e.nfields = 0;
	deliver(rt, &e);
}

void tr_log_emit_ctx(tr_ctx *ctx, const tr_log_event *ev)
{
	tr_log_event e;
	if (ctx == NULL || !event_in(&e, ev) ||
	    !tr_log_enabled(ctx->rt, e.level))
		return;
	tr__actor *a = ctx->a;
	char name[TR_NAME_MAX + 1];
	if (tr_pid_is_none(e.pid))
		e.pid = a->pid;
	if (e.name == NULL && tr_pid_eq(e.pid, a->pid) &&
	    tr__registry_name_of(ctx->rt, a, name))
		e.name = name;
	if (e.behaviour == NULL && tr_pid_eq(e.pid, a->pid) && a->b != NULL)
		e.behaviour = a->b->name;
	tr_log_emit(ctx->rt, &e);
}

/* Formats into `stack` (LINE_STACK bytes) or a malloc'd buffer returned
 * in *heap; the text, or NULL when out of memory. */
static const char *vformat(
    char *stack, char **heap, const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(stack, LINE_STACK, fmt != NULL ? fmt : "", aq);
	va_end(aq);
	*heap = NULL;
	if (n < 0)
		return NULL;
	if (n < LINE_STACK)
		return stack;
	*heap = malloc((size_t)n + 1);
	if (*heap == NULL)
		return stack; /* truncated beats nothing */
	vsnprintf(*heap, (size_t)n + 1, fmt, ap);
	return *heap;
}

void tr_vlogf(tr_runtime *rt, int level, const char *fmt, va_list ap)
{
	if (!tr_log_enabled(rt, level))
		return;
	char stack[LINE_STACK];
	char *heap;
	const char *text = vformat(stack, &heap, fmt, ap);
	if (text == NULL)
		return;
	tr_log_event e;
	tr_log_event_init(&e, level);
	e.domain = "log";
	e.text = text;
	tr_log_emit(rt, &e);
	free(heap);
}

void tr_logf(tr_runtime *rt, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	tr_vlogf(rt, level, fmt, ap);
	va_end(ap);
}

void tr_ctx_logf(tr_ctx *ctx, int level, const char *fmt, ...)
{
	if (ctx == NULL || !tr_log_enabled(ctx->rt, level))
		return;
	char stack[LINE_STACK];
	char *heap;
	va_list ap;
	va_start(ap, fmt);
	const char *text = vformat(stack, &heap, fmt, ap);
	va_end(ap);
	if (text == NULL)
		return;
	tr_log_event e;
	tr_log_event_init(&e, level);
	e.domain = "log";
	e.text = text;
	tr_log_emit_ctx(ctx, &e);
	free(heap);
}

void tr_log(tr_runtime *rt, const char *line)
{
	if (line == NULL)
		return;
	tr_log_event e;
	tr_log_event_init(&e, TR_LOG_WARNING);
	e.domain = "log";
	e.text = line;
	tr_log_emit(rt, &e);
}

/* ---- renderings -------------------------------------------------------------
 *
 * Both write through a bounded writer that keeps counting past the end,
 * so that they return the length the whole rendering has, as snprintf.
 */

typedef struct out {
	char *buf;
	size_t cap, len;
} out;

static void put(out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;
		memcpy(o->buf + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void puts_(out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putf(out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void putf(out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(o, tmp,
		    (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int finish(out *o)
{
	if (o->cap > 0)
		o->buf[o->len < o->cap ? o->len : o->cap - 1] = '\0';
	return o->len > INT_MAX ? INT_MAX : (int)o->len;
}

static void put_time(out *o, uint64_t us)
{
	time_t sec = (time_t)(us / 1000000u);
	struct tm tm;
	gmtime_r(&sec, &tm);
	putf(o, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (unsigned)(us % 1000000u));
}

static void put_pid(out *o, tr_pid p)
{
	putf(o, "<%" PRIu32 ".%" PRIu32 ".%" PRIu32 ">", p.node, p.slot, p.gen);
}

static bool is_log(const tr_log_event *ev)
{
	return ev->domain == NULL || strcmp(ev->domain, "log") == 0;
}

int tr_log_format_text(char *buf, size_t cap, const tr_log_event *evp)
{
	out o = {buf, cap, 0};
	tr_log_event e;
	if (!event_in(&e, evp))
		return finish(&o);
	const tr_log_event *ev = &e;
	put_time(&o, ev->time_us);
	puts_(&o, " ");
	puts_(&o, tr_log_level_name(ev->level));
	if (!is_log(ev)) {
		puts_(&o, " [");
		puts_(&o, ev->domain);
		puts_(&o, "]");
	} else if (!tr_pid_is_none(ev->pid) || ev->name != NULL) {
		/* A log line does not name its actor; a report does. */
		if (!tr_pid_is_none(ev->pid)) {
			puts_(&o, " ");
			put_pid(&o, ev->pid);
		}
		if (ev->name != NULL) {
			puts_(&o, " ");
			puts_(&o, ev->name);
		}
		puts_(&o, ":");
	}
	puts_(&o, " ");
	puts_(&o, ev->text != NULL ? ev->text : "");
	return finish(&o);
}

static void put_json_str(out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	puts_(o, "\"");
	for (const unsigned char *p = (const unsigned char *)(s ? s : "");
	     *p != '\0'; p++) {
		char esc[7];
		switch (*p) {
		case '"':
			puts_(o, "\\\"");
			break;
		case '\\':
			puts_(o, "\\\\");
			break;
		case '\n':
			puts_(o, "\\n");
			break;
		case '\r':
			puts_(o, "\\r");
			break;
		case '\t':
			puts_(o, "\\t");
			break;
		default:
			if (*p < 0x20) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				put(o, esc, 6);
			} else {
				put(o, (const char *)p, 1);
			}
		}
	}
	puts_(o, "\"");
}

static void put_json_key(out *o, const char *key)
{
	puts_(o, ",");
	put_json_str(o, key);
	puts_(o, ":");
}

static void put_field(out *o, const tr_log_field *f)
{
	switch (f->kind) {
	case TR_LOG_F_INT:
		putf(o, "%" PRId64, f->v.i);
		break;
	case TR_LOG_F_UINT:
		putf(o, "%" PRIu64, f->v.u);
		break;
	case TR_LOG_F_BOOL:
		puts_(o, f->v.b ? "true" : "false");
		break;
	case TR_LOG_F_PID:
		puts_(o, "\"");
		put_pid(o, f->v.pid);
		puts_(o, "\"");
		break;
	case TR_LOG_F_DOUBLE:
		if (isfinite(f->v.d))
			putf(o, "%.17g", f->v.d);
		else
			puts_(o, "null"); /* JSON has no NaN or infinity */
		break;
	case TR_LOG_F_STR:
	default:
		put_json_str(o, f->kind == TR_LOG_F_STR ? f->v.s : "");
		break;
	}
}

int tr_log_format_json(char *buf, size_t cap, const tr_log_event *evp)
{
	out o = {buf, cap, 0};
	tr_log_event e;
	if (!event_in(&e, evp))
		return finish(&o);
	const tr_log_event *ev = &e;
	puts_(&o, "{\"time\":\"");
	put_time(&o, ev->time_us);
	puts_(&o, "\"");
	put_json_key(&o, "level");
	put_json_str(&o, tr_log_level_name(ev->level));
	put_json_key(&o, "domain");
	put_json_str(&o, ev->domain != NULL ? ev->domain : "log");
	put_json_key(&o, "text");
	put_json_str(&o, ev->text);
	if (!tr_pid_is_none(ev->pid)) {
		put_json_key(&o, "pid");
		puts_(&o, "\"");
		put_pid(&o, ev->pid);
		puts_(&o, "\"");
	}
	if (ev->name != NULL) {
		put_json_key(&o, "name");
		put_json_str(&o, ev->name);
	}
	if (ev->behaviour != NULL) {
		put_json_key(&o, "behaviour");
		put_json_str(&o, ev->behaviour);
	}
	if (ev->node != NULL) {
		put_json_key(&o, "node");
		put_json_str(&o, ev->node);
	}
	if (ev->fields != NULL && ev->nfields != 0) {
		put_json_key(&o, "fields");
		puts_(&o, "{");
		for (size_t i = 0; i < ev->nfields; i++) {
			if (i != 0)
				puts_(&o, ",");
			put_json_str(&o, ev->fields[i].key);
			puts_(&o, ":");
			put_field(&o, &ev->fields[i]);
		}
		puts_(&o, "}");
	}
	puts_(&o, "}");
	return finish(&o);
}

/* ---- crash reports ----------------------------------------------------------
 */

void tr__log_crash(tr_runtime *rt, tr__actor *a, int reason, const char *name,
    const char *text, const char *where, uint32_t type)
{
	if (!tr_log_enabled(rt, TR_LOG_ERROR))
		return;
	char line[384];
	const char *bname = a->b != NULL && a->b->name ? a->b->name : NULL;
	char tbuf[32];
	if (where != NULL)
		snprintf(tbuf, sizeof(tbuf), "%s", where);
	else
		snprintf(tbuf, sizeof(tbuf), "message type %" PRIu32, type);
	/* The line is the one line handlers have always received. */
	snprintf(line, sizeof(line),
	    "CRASH REPORT pid=<%" PRIu32 ".%" PRIu32 ".%" PRIu32
	    "> name=%s behaviour=%s reason=%d (%s%s%s) in=%s",
	    a->pid.node, a->pid.slot, a->pid.gen, name[0] ? name : "-",
	    bname != NULL ? bname : "?", reason, tr_reason_name(reason),
	    text[0] ? ": " : "", text, tbuf);
	tr_log_field f[5];
	size_t n = 0;
	f[n++] = tr_log_int("reason", reason);
	f[n++] = tr_log_str("reason_name", tr_reason_name(reason));
	f[n++] = tr_log_str("reason_text", text);
	f[n++] = tr_log_str("in", where != NULL ? where : "message");
	if (where == NULL)
		f[n++] = tr_log_uint("message_type", type);
	tr_log_event ev = {
	    .struct_size = sizeof(tr_log_event),
	    .level = TR_LOG_ERROR,
	    .domain = "crash_report",
	    .text = line,
	    .pid = a->pid,
	    .name = name[0] ? name : NULL,
	    .behaviour = bname,
	    .fields = f,
	    .nfields = n,
	};
	tr_log_emit(rt, &ev);
}
