/*
 * The client endpoint's fixture: a runtime with the actors requests go to
 * (echo, hole, quit, local), the endpoint started on it, the log lines it
 * wrote by cause, and req0 sockets to talk to it.
 */
#ifndef TT_CLIENT_FX_H
#define TT_CLIENT_FX_H

#include "client_req.h"

/* ---- the endpoint -------------------------------------------------------- */

static atomic_uint echo_handled;

/* Replies to a request with "echo: " and its payload. */
static inline int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	char buf[256];
	size_t n = m->size < sizeof(buf) - 6 ? m->size : sizeof(buf) - 6;

	(void)state;
	atomic_fetch_add(&echo_handled, 1);
	if (m->ref == 0)
		return 0;
	memcpy(buf, "echo: ", 6);
	memcpy(buf + 6, m->data, n);
	TT_ACHECK(tr_reply(ctx, m, m->type, buf, 6 + n) == TR_OK);
	return 0;
}

static const tr_behaviour echo_b = {.name = "echo", .handle = echo_handle};

/* Takes requests and never answers: a slow actor, as seen by a caller. */
static inline int hole_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour hole_b = {.name = "hole", .handle = hole_handle};

/* Exits on its first message, without replying. */
static inline int quit_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	(void)m;
	tr_exit(ctx, 42);
	return 0;
}

static const tr_behaviour quit_b = {.name = "quit", .handle = quit_handle};

/* Replies with a local-only type (as an actor of this process may). */
static inline int local_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	static const char ptr[sizeof(void *)];

	(void)state;
	if (m->ref != 0)
		TT_ACHECK(tr_reply(ctx, m, TR_MSG_LOCAL_BASE + 1, ptr,
		              sizeof(ptr)) == TR_OK);
	return 0;
}

static const tr_behaviour local_b = {.name = "local", .handle = local_handle};

/* Log lines of the endpoint, counted by the cause they name. */
static atomic_uint log_lines[TR__CC_COUNT];
static atomic_uint log_conn_refused, log_conn_idle;

static inline void count_log(void *user, const char *line)
{
	char want[64];

	(void)user;
	if (strstr(line, "refused a connection") != NULL)
		atomic_fetch_add(&log_conn_refused, 1);
	if (strstr(line, "closed a connection idle") != NULL)
		atomic_fetch_add(&log_conn_idle, 1);
	for (int k = 1; k < TR__CC_COUNT; k++) {
		snprintf(want, sizeof(want), "refused a request (%s)",
		    tr__client_cause_name((tr__client_cause)k));
		if (strstr(line, want) != NULL)
			atomic_fetch_add(&log_lines[k], 1);
	}
}

struct fx {
	tr_runtime *rt;
	tr__client *client;
	char dir[256];
	char url[320];
};

static inline void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[600];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static inline int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	/* ipc:// paths are limited to about 100 bytes: keep it short. */
	snprintf(fx->dir, sizeof(fx->dir), "%s/trc.XXXXXX",
	    tmp != NULL && *tmp != '\0' && strlen(tmp) < 60 ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return -1;
	}
	snprintf(fx->url, sizeof(fx->url), "ipc://%s/client.ipc", fx->dir);
	*state = fx;
	return 0;
}

static inline int fx_teardown(void **state)
{
	struct fx *fx = *state;

	tr__client_stop(fx->client);
	if (fx->rt != NULL)
		tr_runtime_stop(fx->rt);
	rm_dir(fx->dir);
	free(fx);
	return 0;
}

/* Starts a runtime with the test actors (no endpoint). */
static inline void fx_runtime(struct fx *fx)
{
	static const struct {
		const char *name;
		const tr_behaviour *b;
	} actors[] = {{"echo", &echo_b}, {"hole", &hole_b}, {"quit", &quit_b},
	    {"local", &local_b}};
	tr_runtime_opts o;
	tr_pid pid;

	tt_restore_signals();
	atomic_store(&echo_handled, 0);
	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	assert_rc(tr_runtime_start(&fx->rt, &o), TR_OK);
	for (int k = 0; k < TR__CC_COUNT; k++)
		atomic_store(&log_lines[k], 0);
	atomic_store(&log_conn_refused, 0);
	atomic_store(&log_conn_idle, 0);
	tr_runtime_set_log(fx->rt, count_log, NULL);
	for (size_t i = 0; i < sizeof(actors) / sizeof(actors[0]); i++) {
		assert_rc(
		    tr_spawn(&pid, fx->rt, actors[i].b, NULL, NULL), TR_OK);
		assert_rc(tr_register(fx->rt, actors[i].name, pid), TR_OK);
	}
}

static inline tr__client_opts opts_for(const char *url)
{
	tr__client_opts o = {
	    .url = url, .node = NODE, .cookie = COOKIE, .max_request = 65536};

	return o;
}

/* The runtime and an endpoint with `o`. */
static inline void fx_start_with(struct fx *fx, const tr__client_opts *o)
{
	fx_runtime(fx);
	assert_rc(tr__client_start(&fx->client, fx->rt, o), TR_OK);
	if (strstr(o->url, ":0") == NULL)
		assert_string_equal(tr__client_url(fx->client), o->url);
}

static inline void fx_start(struct fx *fx)
{
	tr__client_opts o = opts_for(fx->url);

	fx_start_with(fx, &o);
}

static inline void fx_stop(struct fx *fx)
{
	tr__client_stop(fx->client);
	fx->client = NULL;
	tr_runtime_stop(fx->rt);
	fx->rt = NULL;
}

static inline tr__client_stats stats(struct fx *fx)
{
	tr__client_stats st;

	assert_rc(tr__client_stats_get(&st, fx->client), TR_OK);
	return st;
}

static inline nng_socket req_open(const char *url)
{
	nng_socket s;

	assert_int_equal(nng_req0_open(&s), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(
	    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, TT_WAIT_MS), 0);
	assert_int_equal(nng_dial(s, url, NULL, 0), 0);
	return s;
}

static inline Troupe__Wire__ClientReply *recv_reply(nng_socket s)
{
	Troupe__Wire__ClientReply *rep;
	void *buf = NULL;
	size_t n = 0;

	assert_int_equal(nng_recv(s, &buf, &n, NNG_FLAG_ALLOC), 0);
	rep = tr__client_reply_decode(buf, n, tr__decode_budget(n));
	nng_free(buf, n);
	assert_non_null(rep);
	return rep;
}

/* Sends `len` bytes and returns the decoded reply (caller frees). */
static inline Troupe__Wire__ClientReply *roundtrip(
    nng_socket s, const void *frame, size_t len)
{
	assert_int_equal(nng_send(s, (void *)frame, len, 0), 0);
	return recv_reply(s);
}

static inline Troupe__Wire__ClientReply *call_req(
    nng_socket s, const struct req *r, const char *cookie)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);
	Troupe__Wire__ClientReply *rep = roundtrip(s, f, len);

	free(f);
	return rep;
}

/* Sends `r` (signed with COOKIE's client key) without waiting. */
static inline void send_req(nng_socket s, const struct req *r)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, COOKIE);

	assert_int_equal(nng_send(s, f, len, 0), 0);
	free(f);
}

static inline void expect_refusal(nng_socket s, const struct req *r,
    const char *cookie, int err, const char *text)
{
	Troupe__Wire__ClientReply *rep = call_req(s, r, cookie);

	assert_rc(rep->error, err);
	assert_non_null(rep->message);
	if (strstr(rep->message, text) == NULL)
		fail_msg("expected \"%s\" in \"%s\"", text, rep->message);
	assert_int_equal(rep->type, 0);
	assert_int_equal(rep->payload.len, 0);
	tr__client_reply_free(rep);
}


#endif
