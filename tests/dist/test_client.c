/*
 * The client endpoint: verification refusal by refusal, the replay cache
 * against a model, the endpoint from C (concurrent slow calls included),
 * and the shell recipe of docs/client.md run as written with protoc,
 * openssl and nngcat.
 */
#include "common.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "client.h"
#include "codec.h"
#include "crypto.h"

#define COOKIE "s3cret cookie"
#define WINDOW 30000u
#define NOW 1700000000000u /* a fixed "now" for the pure tests */
#define MAJOR ((uint32_t)TROUPE__WIRE__CLIENT_VERSION__CLIENT_MAJOR)
#define WHY_MAJOR "protocol major version not supported"

static uint64_t rng = 0x853c49e6748fea9bu;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- building requests --------------------------------------------------- */

struct req {
	uint32_t major;
	uint64_t ts;
	uint8_t nonce[32];
	size_t nlen;
	const char *to;
	const char *payload;
	uint32_t timeout_ms;
};

/* A valid request at `ts` with a fresh random nonce. */
static struct req req_at(uint64_t ts)
{
	struct req r = {.major = MAJOR,
	    .ts = ts,
	    .nlen = 16,
	    .to = "echo",
	    .payload = "hello"};

	for (size_t i = 0; i < sizeof(r.nonce); i++)
		r.nonce[i] = (uint8_t)next();
	return r;
}

/* Encodes and signs `r` with `cookie`; the caller frees the frame. */
static uint8_t *frame_of(size_t *len, const struct req *r, const char *cookie)
{
	Troupe__Wire__ClientRequest q = TROUPE__WIRE__CLIENT_REQUEST__INIT;
	uint8_t *body, *frame;
	size_t blen;

	q.major = r->major;
	q.timestamp_ms = r->ts;
	q.nonce.data = (uint8_t *)r->nonce;
	q.nonce.len = r->nlen;
	q.to_name = (char *)r->to;
	q.type = 1;
	q.payload.data = (uint8_t *)r->payload;
	q.payload.len = strlen(r->payload);
	q.timeout_ms = r->timeout_ms;
	assert_rc(tr__client_request_encode(&body, &blen, &q), TR_OK);
	assert_rc(tr__client_sign(&frame, len, cookie, body, blen), TR_OK);
	free(body);
	return frame;
}

/* Verifies `r`, signed with `cookie`, against the node's COOKIE at `now`;
 * returns the result. */
static int check(
    tr__nonce_cache *c, const struct req *r, const char *cookie, uint64_t now)
{
	Troupe__Wire__ClientRequest *out = (void *)1;
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);
	int rv = tr__client_verify(f, len, COOKIE, now, WINDOW, c, &out);

	free(f);
	if (rv == TR_OK) {
		assert_non_null(out);
		assert_int_equal(out->timestamp_ms, r->ts);
		assert_string_equal(out->to_name, r->to);
		tr__client_request_free(out);
	} else {
		assert_null(out);
	}
	return rv;
}

/* ---- verification -------------------------------------------------------- */

static void test_verify_ok(void **state)
{
	tr__nonce_cache *c;
	struct req r = req_at(NOW);
	Troupe__Wire__ClientRequest *out;
	uint8_t *f;
	size_t len;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 64), TR_OK);
	f = frame_of(&len, &r, COOKIE);
	assert_rc(
	    tr__client_verify(f, len, COOKIE, NOW, WINDOW, c, &out), TR_OK);
	assert_non_null(out);
	assert_int_equal(out->major, MAJOR);
	assert_int_equal(out->nonce.len, 16);
	assert_memory_equal(out->nonce.data, r.nonce, 16);
	assert_string_equal(out->to_name, "echo");
	assert_int_equal(out->payload.len, 5);
	assert_memory_equal(out->payload.data, "hello", 5);
	tr__client_request_free(out);
	assert_int_equal(tr__nonce_cache_count(c), 1);

	/* The very same frame again: a replay. */
	assert_rc(tr__client_verify(f, len, COOKIE, NOW + 1, WINDOW, c, &out),
	    TR_EEXIST);
	assert_null(out);
	free(f);

	/* Longer nonces are fine, and the edges of the window are in. */
	r = req_at(NOW - WINDOW);
	r.nlen = 32;
	assert_rc(check(c, &r, COOKIE, NOW), TR_OK);
	r = req_at(NOW + WINDOW);
	assert_rc(check(c, &r, COOKIE, NOW), TR_OK);

	/* NULL arguments. */
	f = frame_of(&len, &r, COOKIE);
	assert_rc(tr__client_verify(NULL, 10, COOKIE, NOW, WINDOW, c, &out),
	    TR_EINVAL);
	assert_rc(
	    tr__client_verify(f, len, NULL, NOW, WINDOW, c, &out), TR_EINVAL);
	assert_rc(tr__client_verify(f, len, COOKIE, NOW, WINDOW, NULL, &out),
	    TR_EINVAL);
	assert_rc(
	    tr__client_verify(f, len, COOKIE, NOW, WINDOW, c, NULL), TR_EINVAL);
	free(f);
	tr__nonce_cache_free(c);
}

static void test_verify_refusals(void **state)
{
	tr__nonce_cache *c;
	Troupe__Wire__ClientRequest *out;
	struct req r;
	uint8_t *f, junk[64];
	size_t len;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 64), TR_OK);

	/* Too short to hold a signature (also: empty). */
	memset(junk, 0, sizeof(junk));
	for (size_t n = 0; n < TR__CLIENT_SIG_LEN; n++)
		assert_rc(
		    tr__client_verify(junk, n, COOKIE, NOW, WINDOW, c, &out),
		    TR_EINVAL);

	/* Bad signature: the wrong cookie, a flipped bit anywhere in the
	 * signature or the body, a body cut short. */
	r = req_at(NOW);
	assert_rc(check(c, &r, "another cookie", NOW), TR_EINVAL);
	f = frame_of(&len, &r, COOKIE);
	for (size_t i = 0; i < len; i++) {
		f[i] ^= 0x04;
		assert_rc(
		    tr__client_verify(f, len, COOKIE, NOW, WINDOW, c, &out),
		    TR_EINVAL);
		f[i] ^= 0x04;
	}
	assert_rc(tr__client_verify(f, len - 1, COOKIE, NOW, WINDOW, c, &out),
	    TR_EINVAL);
	/* The signature with its body left out. */
	assert_rc(tr__client_verify(
	              f, TR__CLIENT_SIG_LEN, COOKIE, NOW, WINDOW, c, &out),
	    TR_EINVAL);
	free(f);

	/* A well-signed body that does not decode. */
	memset(junk, 0xff, sizeof(junk));
	assert_rc(tr__client_sign(&f, &len, COOKIE, junk, sizeof(junk)), TR_OK);
	assert_rc(
	    tr__client_verify(f, len, COOKIE, NOW, WINDOW, c, &out), TR_EINVAL);
	free(f);

	/* Wrong major, correctly signed: 0 (unset), the next one, the
	 * largest; with the reason a reply gives. */
	r = req_at(NOW);
	r.major = 0;
	assert_rc(check(c, &r, COOKIE, NOW), TR_ENOTSUP);
	r.major = MAJOR + 1;
	assert_rc(check(c, &r, COOKIE, NOW), TR_ENOTSUP);
	r.major = UINT32_MAX;
	assert_rc(check(c, &r, COOKIE, NOW), TR_ENOTSUP);
	assert_string_equal(tr__client_refusal(TR_ENOTSUP), WHY_MAJOR);

	/* Outside the window, either way, and absurd timestamps. */
	r = req_at(NOW - WINDOW - 1);
	assert_rc(check(c, &r, COOKIE, NOW), TR_ETIMEDOUT);
	r = req_at(NOW + WINDOW + 1);
	assert_rc(check(c, &r, COOKIE, NOW), TR_ETIMEDOUT);
	r = req_at(0);
	assert_rc(check(c, &r, COOKIE, NOW), TR_ETIMEDOUT);
	r = req_at(UINT64_MAX);
	assert_rc(check(c, &r, COOKIE, NOW), TR_ETIMEDOUT);

	/* Nonces that are too short. */
	r = req_at(NOW);
	r.nlen = 15;
	assert_rc(check(c, &r, COOKIE, NOW), TR_EINVAL);
	r.nlen = 0;
	assert_rc(check(c, &r, COOKIE, NOW), TR_EINVAL);

	/* None of the refused requests was remembered. */
	assert_int_equal(tr__nonce_cache_count(c), 0);

	/* A replay with another timestamp is a new request (new body, new
	 * signature) but the same nonce: refused too. */
	r = req_at(NOW);
	assert_rc(check(c, &r, COOKIE, NOW), TR_OK);
	r.ts = NOW + 5;
	assert_rc(check(c, &r, COOKIE, NOW + 10), TR_EEXIST);
	/* Once the window has passed, the timestamp check refuses it, and
	 * the cache may forget it. */
	r.ts = NOW;
	assert_rc(check(c, &r, COOKIE, NOW + WINDOW + 1), TR_ETIMEDOUT);

	assert_string_equal(tr__client_refusal(TR_EEXIST),
	    "replayed request (nonce seen already)");
	assert_string_equal(tr__client_refusal(TR_OK), "");
	tr__nonce_cache_free(c);
}

static void test_verify_full_cache(void **state)
{
	tr__nonce_cache *c;
	struct req r;

	(void)state;
	assert_rc(tr__nonce_cache_alloc(&c, 8), TR_OK);
	for (int i = 0; i < 8; i++) {
		r = req_at(NOW);
		assert_rc(check(c, &r, COOKIE, NOW), TR_OK);
	}
	/* Full of live nonces: refused, not grown. */
	r = req_at(NOW);
	assert_rc(check(c, &r, COOKIE, NOW), TR_EAGAIN);
	assert_int_equal(tr__nonce_cache_count(c), 8);
	/* The refused nonce was not recorded: it works once there is room. */
	r.ts = NOW + WINDOW + 1;
	assert_rc(check(c, &r, COOKIE, NOW + WINDOW + 1), TR_OK);
	assert_int_equal(tr__nonce_cache_count(c), 1);
	tr__nonce_cache_free(c);
}

/* The cache against a plain list, over random inserts as time passes:
 * same answers, and never more than `cap` entries. */
static void test_nonce_cache_model(void **state)
{
	enum { CAP = 64, KEYS = 200 };
	tr__nonce_cache *c;
	uint64_t model[KEYS]; /* expiry per key; 0: absent */
	uint64_t now = 1;

	(void)state;
	memset(model, 0, sizeof(model));
	assert_rc(tr__nonce_cache_alloc(&c, CAP), TR_OK);
	for (int op = 0; op < 200000; op++) {
		uint32_t key = (uint32_t)(next() % KEYS);
		uint64_t expiry = now + 1 + next() % 100;
		size_t live = 0;
		int want, got;

		for (size_t k = 0; k < KEYS; k++)
			if (model[k] > now && k != key)
				live++;
		if (model[key] > now)
			want = TR_EEXIST;
		else if (live >= CAP)
			want = TR_EAGAIN;
		else
			want = TR_OK;
		got = tr__nonce_cache_insert(c, &key, sizeof(key), expiry, now);
		if (got != want)
			fail_msg("op %d: key %u at %" PRIu64 ": got %d, want "
			         "%d",
			    op, key, now, got, want);
		if (want == TR_OK)
			model[key] = expiry;
		assert_true(tr__nonce_cache_count(c) <= CAP);
		if (next() % 3 == 0)
			now += next() % 4;
	}
	/* A dead expiry is accepted and not stored. */
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now, now), TR_OK);
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now + 10, now), TR_OK);
	assert_rc(tr__nonce_cache_insert(c, "x", 1, now + 10, now), TR_EEXIST);
	tr__nonce_cache_free(c);
	tr__nonce_cache_free(NULL);
	assert_rc(tr__nonce_cache_alloc(NULL, 1), TR_EINVAL);
}

/* ---- the endpoint -------------------------------------------------------- */

static atomic_uint echo_handled;

/* Replies to a request with "echo: " and its payload. */
static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
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
static int hole_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour hole_b = {.name = "hole", .handle = hole_handle};

struct fx {
	tr_runtime *rt;
	tr__client *client;
	char dir[256];
	char url[320];
};

static void rm_dir(const char *dir)
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

static int fx_setup(void **state)
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

static int fx_teardown(void **state)
{
	struct fx *fx = *state;

	tr__client_stop(fx->client);
	if (fx->rt != NULL)
		tr_runtime_stop(fx->rt);
	rm_dir(fx->dir);
	free(fx);
	return 0;
}

/* Starts a runtime with an echo actor and a silent one, and the endpoint. */
static void fx_start(struct fx *fx)
{
	tr_runtime_opts o;
	tr_pid pid;

	tt_restore_signals();
	atomic_store(&echo_handled, 0);
	tr_runtime_opts_init(&o);
	o.schedulers = 2;
	assert_rc(tr_runtime_start(&fx->rt, &o), TR_OK);
	assert_rc(tr_spawn(&pid, fx->rt, &echo_b, NULL, NULL), TR_OK);
	assert_rc(tr_register(fx->rt, "echo", pid), TR_OK);
	assert_rc(tr_spawn(&pid, fx->rt, &hole_b, NULL, NULL), TR_OK);
	assert_rc(tr_register(fx->rt, "hole", pid), TR_OK);
	assert_rc(tr__client_start(
	              &fx->client, fx->rt, fx->url, COOKIE, 0, 64 * 1024),
	    TR_OK);
	assert_string_equal(tr__client_url(fx->client), fx->url);
}

static void fx_stop(struct fx *fx)
{
	tr__client_stop(fx->client);
	fx->client = NULL;
	tr_runtime_stop(fx->rt);
	fx->rt = NULL;
}

static nng_socket req_open(const char *url)
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

/* Sends `len` bytes and returns the decoded reply (caller frees). */
static Troupe__Wire__ClientReply *roundtrip(
    nng_socket s, const void *frame, size_t len)
{
	Troupe__Wire__ClientReply *rep;
	void *buf = NULL;
	size_t n = 0;

	assert_int_equal(nng_send(s, (void *)frame, len, 0), 0);
	assert_int_equal(nng_recv(s, &buf, &n, NNG_FLAG_ALLOC), 0);
	rep = tr__client_reply_decode(buf, n, tr__decode_budget(n));
	nng_free(buf, n);
	assert_non_null(rep);
	return rep;
}

static Troupe__Wire__ClientReply *call_req(
    nng_socket s, const struct req *r, const char *cookie)
{
	size_t len;
	uint8_t *f = frame_of(&len, r, cookie);
	Troupe__Wire__ClientReply *rep = roundtrip(s, f, len);

	free(f);
	return rep;
}

static void test_endpoint(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);

	/* A call. */
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->type, 1);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* Its replay, a wrong cookie, a stale request, junk: each refused
	 * with a reason, and none reaches the actor. */
	f = frame_of(&len, &r, COOKIE);
	rep = roundtrip(s, f, len);
	assert_rc(rep->error, TR_EEXIST);
	assert_non_null(strstr(rep->message, "replay"));
	tr__client_reply_free(rep);
	free(f);

	r = req_at(wall_ms());
	rep = call_req(s, &r, "not the cookie");
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "bad signature"));
	tr__client_reply_free(rep);

	r = req_at(wall_ms() - 2 * WINDOW);
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_ETIMEDOUT);
	assert_non_null(strstr(rep->message, "window"));
	tr__client_reply_free(rep);

	rep = roundtrip(s, "short", 5);
	assert_rc(rep->error, TR_EINVAL);
	assert_non_null(strstr(rep->message, "shorter"));
	tr__client_reply_free(rep);

	r = req_at(wall_ms());
	r.major = 7;
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_ENOTSUP);
	tr__client_reply_free(rep);

	/* Accepted, but no such actor. */
	r = req_at(wall_ms());
	r.to = "nobody";
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_ENOENT);
	assert_non_null(strstr(rep->message, "nobody"));
	tr__client_reply_free(rep);

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* A frame over max_frame is dropped by nng, unanswered; the endpoint
	 * still serves the next one. */
	{
		size_t big = 64 * 1024 + 1;
		uint8_t *b = calloc(1, big);
		void *buf = NULL;
		size_t n;

		assert_non_null(b);
		assert_int_equal(
		    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 300), 0);
		assert_int_equal(nng_send(s, b, big, 0), 0);
		assert_int_equal(
		    nng_recv(s, &buf, &n, NNG_FLAG_ALLOC), NNG_ETIMEDOUT);
		free(b);
		assert_int_equal(
		    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, TT_WAIT_MS), 0);
	}
	/* nng drops the connection that carried the oversized frame; the
	 * req socket dials again by itself. */
	r = req_at(wall_ms());
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	tr__client_reply_free(rep);

	nng_close(s);
	fx_stop(fx);
}

/* Correctly signed requests of another protocol major (0, the next one,
 * the largest) are refused over the endpoint with TR_ENOTSUP and the
 * reason, no type and no payload, and none reaches the actor; nor is
 * their nonce remembered: the same nonce with the right major is then
 * served (which also shows the actor was there to reach). */
static void test_endpoint_wrong_major(void **state)
{
	static const uint32_t majors[] = {0, MAJOR + 1, UINT32_MAX};
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	nng_socket s;

	fx_start(fx);
	s = req_open(fx->url);
	r = req_at(wall_ms());
	for (size_t i = 0; i < sizeof(majors) / sizeof(majors[0]); i++) {
		r.major = majors[i];
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_ENOTSUP);
		assert_non_null(rep->message);
		assert_string_equal(rep->message, WHY_MAJOR);
		assert_int_equal(rep->type, 0);
		assert_int_equal(rep->payload.len, 0);
		tr__client_reply_free(rep);
	}
	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 0);

	r.major = MAJOR;
	rep = call_req(s, &r, COOKIE);
	assert_rc(rep->error, TR_OK);
	assert_int_equal(rep->payload.len, strlen("echo: hello"));
	assert_memory_equal(rep->payload.data, "echo: hello", 11);
	tr__client_reply_free(rep);
	assert_int_equal(atomic_load(&echo_handled), 1);

	nng_close(s);
	fx_stop(fx);
}

/* A call to a silent actor holds one worker until its timeout; calls
 * through the other workers go on meanwhile. */
static void test_endpoint_slow_call(void **state)
{
	struct fx *fx = *state;
	Troupe__Wire__ClientReply *rep;
	struct req r;
	uint8_t *f;
	size_t len;
	nng_socket slow[TR__CLIENT_WORKERS - 1], s;
	int64_t t0;
	void *buf;
	size_t n;

	fx_start(fx);
	for (size_t i = 0; i < TR__CLIENT_WORKERS - 1; i++) {
		slow[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 1500;
		f = frame_of(&len, &r, COOKIE);
		assert_int_equal(nng_send(slow[i], f, len, 0), 0);
		free(f);
	}
	s = req_open(fx->url);
	t0 = tt_now_ms();
	for (int i = 0; i < 5; i++) {
		r = req_at(wall_ms());
		rep = call_req(s, &r, COOKIE);
		assert_rc(rep->error, TR_OK);
		tr__client_reply_free(rep);
	}
	/* Generous (sanitizer builds), but well below the slow calls' 1.5 s
	 * that a single worker would have made these wait for. */
	assert_true(tt_now_ms() - t0 < 1400);

	for (size_t i = 0; i < TR__CLIENT_WORKERS - 1; i++) {
		buf = NULL;
		assert_int_equal(
		    nng_recv(slow[i], &buf, &n, NNG_FLAG_ALLOC), 0);
		rep = tr__client_reply_decode(buf, n, tr__decode_budget(n));
		nng_free(buf, n);
		assert_non_null(rep);
		assert_rc(rep->error, TR_ETIMEDOUT);
		assert_non_null(strstr(rep->message, "hole"));
		tr__client_reply_free(rep);
		nng_close(slow[i]);
	}
	nng_close(s);
	fx_stop(fx);
}

/* Stopping while calls are in progress and requests are queued. */
static void test_endpoint_stop_busy(void **state)
{
	struct fx *fx = *state;
	nng_socket s[TR__CLIENT_WORKERS + 2];
	struct req r;
	uint8_t *f;
	size_t len;
	int64_t t0;

	fx_start(fx);
	for (size_t i = 0; i < TR__CLIENT_WORKERS + 2; i++) {
		s[i] = req_open(fx->url);
		r = req_at(wall_ms());
		r.to = "hole";
		r.timeout_ms = 300;
		f = frame_of(&len, &r, COOKIE);
		assert_int_equal(nng_send(s[i], f, len, 0), 0);
		free(f);
	}
	tt_sleep_ms(50);
	t0 = tt_now_ms();
	tr__client_stop(fx->client);
	fx->client = NULL;
	assert_true(tt_now_ms() - t0 < 10000);
	for (size_t i = 0; i < TR__CLIENT_WORKERS + 2; i++)
		nng_close(s[i]);
	fx_stop(fx);
}

static void test_start_errors(void **state)
{
	struct fx *fx = *state;
	tr__client *c = (void *)1, *c2;

	fx_start(fx);
	assert_rc(tr__client_start(&c, NULL, fx->url, COOKIE, 0, 0), TR_EINVAL);
	assert_null(c);
	assert_rc(tr__client_start(&c, fx->rt, NULL, COOKIE, 0, 0), TR_EINVAL);
	assert_rc(tr__client_start(&c, fx->rt, fx->url, NULL, 0, 0), TR_EINVAL);
	assert_rc(tr__client_start(&c, fx->rt, fx->url, "", 0, 0), TR_EINVAL);
	assert_rc(
	    tr__client_start(NULL, fx->rt, fx->url, COOKIE, 0, 0), TR_EINVAL);
	assert_rc(
	    tr__client_start(&c, fx->rt, "nonsense", COOKIE, 0, 0), TR_EINVAL);
	assert_rc(
	    tr__client_start(&c, fx->rt, "nope://x", COOKIE, 0, 0), TR_ENOTSUP);
	assert_rc(
	    tr__client_start(&c, fx->rt, fx->url, COOKIE, 0, 0), TR_EEXIST);
	assert_null(c);
	/* tcp port 0: the real port is reported. */
	assert_rc(
	    tr__client_start(&c2, fx->rt, "tcp://127.0.0.1:0", COOKIE, 0, 0),
	    TR_OK);
	assert_null(strstr(tr__client_url(c2), ":0"));
	assert_non_null(strstr(tr__client_url(c2), "tcp://127.0.0.1:"));
	tr__client_stop(c2);
	tr__client_stop(NULL);
	fx_stop(fx);
}

/* ---- the shell recipe of docs/client.md ---------------------------------- */

static bool have(const char *tool)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static bool have_tools(void)
{
	return have("protoc") && have("openssl") && have("nngcat") &&
	       have("timeout");
}

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "rb");
	char *s;
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
	s[n] = '\0';
	fclose(fp);
	return s;
}

/* Appends the ```sh block that follows "<!-- recipe: NAME -->" in the
 * document to `out`, as it stands. */
static void append_block(FILE *out, const char *doc, const char *name)
{
	char marker[64];
	const char *p, *start, *end;

	snprintf(marker, sizeof(marker), "<!-- recipe: %s -->\n```sh\n", name);
	p = strstr(doc, marker);
	if (p == NULL)
		fail_msg("docs/client.md has no recipe block \"%s\"", name);
	start = p + strlen(marker);
	end = strstr(start, "```\n");
	assert_non_null(end);
	fwrite(start, 1, (size_t)(end - start), out);
}

/* Writes a script made of the named blocks, runs it in the fixture's
 * directory with URL, COOKIE and PROTO_DIR set (bounded by `timeout`),
 * and returns what it printed. */
static char *run_recipe(
    struct fx *fx, const char *cookie, const char *const *blocks)
{
	char path[600], cmd[2048], *doc = slurp(TT_CLIENT_DOC);
	char *outp = NULL;
	size_t outn = 0;
	FILE *fp, *out;
	char chunk[512];
	size_t n;

	snprintf(path, sizeof(path), "%s/recipe.sh", fx->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("set -eu\n", fp);
	for (size_t i = 0; blocks[i] != NULL; i++)
		append_block(fp, doc, blocks[i]);
	fclose(fp);
	free(doc);

	snprintf(cmd, sizeof(cmd),
	    "cd '%s' && URL='%s' COOKIE='%s' PROTO_DIR='%s' "
	    "timeout 60 bash ./recipe.sh 2>&1",
	    fx->dir, fx->url, cookie, TT_PROTO_DIR);
	fp = popen(cmd, "r");
	assert_non_null(fp);
	out = open_memstream(&outp, &outn);
	assert_non_null(out);
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		fwrite(chunk, 1, n, out);
	fclose(out);
	if (pclose(fp) != 0)
		fail_msg("the recipe failed:\n%s", outp);
	return outp;
}

static const char *const full[] = {
    "settings", "request", "encode", "sign", "send", "decode", NULL};
static const char *const resend[] = {"settings", "send", "decode", NULL};

static void assert_contains(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("expected \"%s\" in:\n%s", want, text);
}

static void test_recipe(void **state)
{
	struct fx *fx = *state;
	char *out;

	if (!have_tools()) {
		skip();
	}
	fx_start(fx);

	out = run_recipe(fx, COOKIE, full);
	assert_contains(out, "type: 1\n");
	assert_contains(out, "payload: \"echo: hello\"\n");
	assert_null(strstr(out, "error:"));
	free(out);
	assert_int_equal(atomic_load(&echo_handled), 1);

	/* The same frame.bin sent again: a replay. */
	out = run_recipe(fx, COOKIE, resend);
	assert_contains(out, "error: -7\n");
	assert_contains(out, "replayed request");
	free(out);

	/* The whole recipe with a cookie the node does not have. */
	out = run_recipe(fx, "wrong cookie", full);
	assert_contains(out, "error: -1\n");
	assert_contains(out, "bad signature");
	free(out);

	assert_rc(tr_runtime_wait_quiescent(fx->rt, TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&echo_handled), 1);
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify_ok),
	    cmocka_unit_test(test_verify_refusals),
	    cmocka_unit_test(test_verify_full_cache),
	    cmocka_unit_test(test_nonce_cache_model),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_wrong_major, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_slow_call, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_endpoint_stop_busy, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(
	        test_start_errors, fx_setup, fx_teardown),
	    cmocka_unit_test_setup_teardown(test_recipe, fx_setup, fx_teardown),
	};

	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
