/*
 * Supervisor children started by behaviour name: the portable
 * TR_SUP_REQ_START_NAMED request (as another node or a client would send
 * it, here from a plain thread with tr_call and from an actor with
 * tr_request), its byte layout and the checks on it, child specs by name
 * given locally, simple_one_for_one templates made by name, and the
 * argument blob every start gets a fresh copy of.
 */
#include "sup_common.h"

#include "rt.h"
/* The supervisors' own declaration of the core function they use: with
 * rt.h's in the same unit, the compiler checks that the two agree. */
#include "sup/core.h"

#define LONG_PERIOD 3600000u

/* ------------------------------------------------------------------------ */
/* A behaviour started by name                                               */
/* ------------------------------------------------------------------------ */

/* What a named worker's blob holds (any other size counts as key 0). */
struct nw_arg {
	uint32_t key;        /* which counters below */
	int32_t fail_reason; /* > 0: init fails with it */
	char text[24];       /* "pristine"; a run may scribble on its copy */
};

struct nw_stats {
	_Atomic int starts, running, terms, dirty_starts, empty_starts;
};

#define NW_KEYS 16
static struct nw_stats nws[NW_KEYS];

enum {
	NW_STOP = TT_W_STOP,  /* payload: int reason (> 0: crash); so that
	                       * tt_wcrash works on named workers too */
	NW_SCRIBBLE = 0x7400, /* overwrite the actor's own copy of its
	                       * argument */
	NW_GET,               /* request: reply with the blob's bytes */
};

static void nw_reset(void)
{
	memset(nws, 0, sizeof(nws));
}

static int nw_init(tr_ctx *ctx, void *arg, void **state)
{
	tr_blob *b = arg;
	struct nw_arg a;

	(void)ctx;
	memset(&a, 0, sizeof(a));
	if (b->size == sizeof(a))
		memcpy(&a, b->data, sizeof(a));
	struct nw_stats *st = &nws[a.key % NW_KEYS];
	atomic_fetch_add(&st->starts, 1);
	if (b->size == 0)
		atomic_fetch_add(&st->empty_starts, 1);
	if (strncmp(a.text, "dirty", sizeof(a.text)) == 0)
		atomic_fetch_add(&st->dirty_starts, 1);
	if (a.fail_reason > 0) {
		free(b); /* init owns its blob, also when it fails */
		return a.fail_reason;
	}
	atomic_fetch_add(&st->running, 1);
	*state = b;
	return TR_OK;
}

static struct nw_stats *nw_stats_of(const tr_blob *b)
{
	struct nw_arg a;

	memset(&a, 0, sizeof(a));
	if (b->size == sizeof(a))
		memcpy(&a, b->data, sizeof(a));
	return &nws[a.key % NW_KEYS];
}

static int nw_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_blob *b = state;
	int reason;

	switch (m->type) {
	case NW_STOP:
		TT_ACHECK(m->size == sizeof(reason));
		memcpy(&reason, m->data, sizeof(reason));
		if (reason > 0)
			return reason;
		tr_exit(ctx, reason);
		return 0;
	case NW_SCRIBBLE:
		if (b->size == sizeof(struct nw_arg))
			memcpy(b->data + offsetof(struct nw_arg, text), "dirty",
			    6);
		return 0;
	case NW_GET:
		if (m->ref != 0)
			TT_ACHECK(tr_reply(ctx, m, NW_GET, b->data, b->size) ==
			          TR_OK);
		return 0;
	default:
		return 0;
	}
}

static void nw_terminate(tr_ctx *ctx, void *state, int reason)
{
	tr_blob *b = state;
	struct nw_stats *st = nw_stats_of(b);

	(void)ctx;
	(void)reason;
	free(b);
	atomic_fetch_add(&st->terms, 1);
	atomic_fetch_sub(&st->running, 1);
}

static const tr_behaviour nw = {
    .name = "nw",
    .init = nw_init,
    .handle = nw_handle,
    .terminate = nw_terminate,
};

/* Another registered behaviour, to name the wrong one. */
static const tr_behaviour nw2 = {
    .name = "nw2",
    .init = nw_init,
    .handle = nw_handle,
    .terminate = nw_terminate,
};

static struct nw_arg nw_arg(uint32_t key, int32_t fail_reason)
{
	struct nw_arg a;

	memset(&a, 0, sizeof(a));
	a.key = key;
	a.fail_reason = fail_reason;
	strcpy(a.text, "pristine");
	return a;
}

static tr_runtime *start_named(struct tt_fixture *fx)
{
	tr_runtime *rt = tt_pstart(fx, 2);

	assert_rc(tr_behaviour_register(rt, "nw", &nw), TR_OK);
	assert_rc(tr_behaviour_register(rt, "nw2", &nw2), TR_OK);
	nw_reset();
	return rt;
}

/* The blob a running named child holds, through NW_GET. */
static struct nw_arg nw_get(tr_runtime *rt, tr_pid child)
{
	struct nw_arg a;
	tr_msg *r = NULL;

	memset(&a, 0, sizeof(a));
	assert_rc(tr_call(&r, rt, child, NW_GET, NULL, 0, TT_WAIT_MS), TR_OK);
	assert_int_equal(r->size, sizeof(a));
	memcpy(&a, r->data, sizeof(a));
	tr_msg_free(r);
	return a;
}

/* Encodes a request for `spec` into a malloc'd buffer. */
static unsigned char *encode(const tr_sup_named_spec *spec, size_t *len)
{
	size_t n = tr_sup_named_size(spec);
	unsigned char *buf;

	assert_true(n >= TR_SUP_NAMED_HDR_SIZE);
	buf = malloc(n);
	assert_non_null(buf);
	assert_rc(tr_sup_named_encode(buf, n, len, spec), TR_OK);
	assert_int_equal(*len, n);
	return buf;
}

/* Sends raw START_NAMED bytes with tr_call and decodes the answer; returns
 * the supervisor's err. */
static int raw_call(tr_runtime *rt, tr_pid sup, const void *p, size_t n,
    tr_sup_named_reply *out)
{
	tr_msg *m = NULL;
	tr_sup_named_reply r;

	assert_rc(tr_call(&m, rt, sup, TR_SUP_REQ_START_NAMED, n ? p : NULL, n,
	              TT_WAIT_MS),
	    TR_OK);
	assert_int_equal(m->type, TR_SUP_NAMED_REPLY);
	assert_int_equal(m->size, TR_SUP_NAMED_REPLY_SIZE);
	assert_true(tr_pid_eq(m->sender, sup));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	tr_msg_free(m);
	if (out != NULL)
		*out = r;
	return r.err;
}

/* ------------------------------------------------------------------------ */
/* The layout                                                                */
/* ------------------------------------------------------------------------ */

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void test_encode_layout(void **state)
{
	tr_sup_named_spec sp;
	unsigned char buf[256];
	size_t len = 0;

	(void)state;
	assert_int_equal(TR_SUP_NAMED_HDR_SIZE, 154);
	tr_sup_named_spec_init(&sp, "conn", "pool.worker", "abc", 3);
	assert_int_equal(sp.restart, TR_RESTART_PERMANENT);
	assert_int_equal(sp.shutdown_ms, 5000);
	assert_int_equal(sp.type, TR_CHILD_WORKER);
	assert_false(sp.significant);
	sp.restart = TR_RESTART_TRANSIENT;
	sp.shutdown_ms = TR_SHUTDOWN_INFINITY;
	sp.type = TR_CHILD_SUPERVISOR;
	sp.significant = true;
	assert_int_equal(tr_sup_named_size(&sp), 157);
	memset(buf, 0xAA, sizeof(buf));
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, &sp), TR_OK);
	assert_int_equal(len, 157);
	assert_int_equal(le32(buf + 0), 1);
	assert_int_equal(le32(buf + 4), 1);
	assert_int_equal(le32(buf + 8), 0xFFFFFFFFu);
	assert_int_equal(le32(buf + 12), 1);
	assert_int_equal(le32(buf + 16), 1);
	assert_int_equal(le32(buf + 20), 3);
	assert_memory_equal(buf + 24, "conn", 5);
	for (int i = 24 + 4; i < 89; i++)
		assert_int_equal(buf[i], 0);
	assert_memory_equal(buf + 89, "pool.worker", 12);
	for (int i = 89 + 11; i < 154; i++)
		assert_int_equal(buf[i], 0);
	assert_memory_equal(buf + 154, "abc", 3);
	assert_int_equal(buf[157], 0xAA); /* nothing past the payload */

	/* A shutdown of 250 ms, and an empty id for simple_one_for_one. */
	tr_sup_named_spec_init(&sp, NULL, "w", NULL, 0);
	sp.shutdown_ms = 250;
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, &sp), TR_OK);
	assert_int_equal(len, 154);
	assert_int_equal(le32(buf + 8), 250);
	assert_int_equal(le32(buf + 16), 0);
	for (int i = 24; i < 89; i++)
		assert_int_equal(buf[i], 0);

	/* Too small a buffer: the size is told all the same. */
	len = 0;
	tr_sup_named_spec_init(&sp, "a", "w", "xyz", 3);
	assert_rc(tr_sup_named_encode(buf, 156, &len, &sp), TR_EMSGSIZE);
	assert_int_equal(len, 157);
	assert_rc(tr_sup_named_encode(NULL, 0, &len, &sp), TR_EMSGSIZE);
}

static void test_encode_refuses(void **state)
{
	tr_sup_named_spec sp, ok;
	unsigned char buf[256];
	char longname[TR_NAME_MAX + 2];
	size_t len;

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[TR_NAME_MAX + 1] = '\0';
	tr_sup_named_spec_init(&ok, "a", "w", NULL, 0);
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, &ok), TR_OK);
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), NULL, &ok), TR_EINVAL);
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, NULL), TR_EINVAL);
	assert_int_equal(tr_sup_named_size(NULL), 0);

#define REFUSED(field, value)                                                  \
	do {                                                                   \
		sp = ok;                                                       \
		sp.field = value;                                              \
		assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, &sp),    \
		    TR_EINVAL);                                                \
	} while (0)
	REFUSED(behaviour, NULL);
	REFUSED(behaviour, "");
	REFUSED(behaviour, longname);
	REFUSED(id, longname);
	REFUSED(restart, (tr_restart)3);
	REFUSED(shutdown_ms, -2);
	REFUSED(type, (tr_child_type)2);
	REFUSED(significant, true); /* permanent */
	REFUSED(arg_size, 1);       /* arg NULL */
	REFUSED(arg_size, SIZE_MAX);
#undef REFUSED
	longname[TR_NAME_MAX] = '\0';
	sp = ok;
	sp.id = longname;
	sp.behaviour = longname;
	assert_rc(tr_sup_named_encode(buf, sizeof(buf), &len, &sp), TR_OK);
}

static void test_reply_decode(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	(void)tt_pstart(fx, 1);
	tr_sup_named_reply r;
	unsigned char p[TR_SUP_NAMED_REPLY_SIZE];
	tr_msg *m;

	/* A well-formed reply; the pid comes from the sender's node. */
	memset(p, 0, sizeof(p));
	put_le32(p, 1);
	put_le32(p + 12, 77);
	put_le32(p + 16, 5);
	assert_rc(tr__msg_new_sys(&m, TR_SUP_NAMED_REPLY, p, sizeof(p)), TR_OK);
	m->sender = (tr_pid){3, 9, 2};
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	assert_rc(r.err, TR_OK);
	assert_true(tr_pid_eq(r.child, ((tr_pid){3, 77, 5})));
	assert_true(tr_pid_eq(tr_sup_named_child_pid(m, 77, 5), r.child));
	assert_true(tr_pid_is_none(tr_sup_named_child_pid(m, 77, 0)));

	/* Malformed: version, inconsistent child, positive err, size. */
	put_le32(p, 2);
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	put_le32(p, 1);
	put_le32(p + 16, 0); /* TR_OK without a child: its init ignored */
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	assert_rc(r.err, TR_OK);
	assert_true(tr_pid_is_none(r.child));
	put_le32(p + 4, (uint32_t)TR_EALREADY); /* already started, no pid */
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	put_le32(p + 4, (uint32_t)TR_ENOENT);
	put_le32(p + 16, 4); /* an error with a child */
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	put_le32(p + 4, 3);
	put_le32(p + 16, 0);
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	put_le32(p + 4, (uint32_t)TR_EINIT);
	put_le32(p + 8, 42);
	memcpy(m->data, p, sizeof(p));
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	assert_rc(r.err, TR_EINIT);
	assert_int_equal(r.init_reason, 42);
	assert_true(tr_pid_is_none(r.child));
	m->size = TR_SUP_NAMED_REPLY_SIZE - 1;
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	m->type = TR_SUP_REPLY;
	m->size = TR_SUP_NAMED_REPLY_SIZE;
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_EINVAL);
	tr__msg_free(m);

	/* A refusal and a timeout decode as answers. */
	assert_rc(tr__msg_refused(&m, TR_PID_NONE, 1, TR_ENOTSUP), TR_OK);
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	assert_rc(r.err, TR_ENOTSUP);
	tr__msg_free(m);
	assert_rc(tr__msg_new_sys(&m, TR_MSG_TIMEOUT, NULL, 0), TR_OK);
	assert_rc(tr_sup_named_reply_decode(&r, m), TR_OK);
	assert_rc(r.err, TR_ETIMEDOUT);
	tr__msg_free(m);
	assert_rc(tr_sup_named_reply_decode(NULL, NULL), TR_EINVAL);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Starting by name                                                          */
/* ------------------------------------------------------------------------ */

static void test_start_named(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, NULL, 0);
	struct nw_arg a1 = nw_arg(1, 0);
	tr_sup_named_spec sp;
	tr_pid pa = TR_PID_NONE, pid;
	tr_child_info info[4] = {TR_STRUCT_INIT(tr_child_info)};
	int reason = -1;
	size_t n;

	tr_sup_named_spec_init(&sp, "a", "nw", &a1, sizeof(a1));
	assert_rc(
	    tr_sup_start_named_child(&pa, rt, sup, &sp, -1, &reason), TR_OK);
	assert_int_equal(reason, 0);
	assert_true(tr_is_alive(rt, pa));
	assert_int_equal(pa.node, 0);
	assert_true(tr_pid_eq(tt_child(rt, sup, "a"), pa));
	assert_int_equal(atomic_load(&nws[1].starts), 1);
	assert_int_equal(atomic_load(&nws[1].running), 1);
	struct nw_arg got = nw_get(rt, pa);
	assert_string_equal(got.text, "pristine");

	/* OTP's start_child answers: already started with its pid, then
	 * already present once stopped. */
	pid = TR_PID_NONE;
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, NULL),
	    TR_EALREADY);
	assert_true(tr_pid_eq(pid, pa));
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_int_equal(atomic_load(&nws[1].running), 0);
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, NULL),
	    TR_EEXIST);
	assert_rc(
	    tr_sup_restart_child(&pid, rt, sup, "a", TT_WAIT_MS, NULL), TR_OK);
	assert_false(tr_pid_eq(pid, pa));
	assert_int_equal(atomic_load(&nws[1].starts), 2);
	assert_rc(tr_sup_terminate_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_rc(tr_sup_delete_child(rt, sup, "a", TT_WAIT_MS), TR_OK);
	assert_false(tt_has_child(rt, sup, "a"));

	/* An unknown name: nothing started, nothing kept. */
	tr_sup_named_spec_init(&sp, "b", "no-such", &a1, sizeof(a1));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, NULL),
	    TR_ENOENT);
	assert_rc(
	    tr_sup_which_children(info, 4, &n, rt, sup, TT_WAIT_MS), TR_OK);
	assert_int_equal(n, 0);

	/* A failing init: its reason, and no spec kept. */
	struct nw_arg bad = nw_arg(2, 61);
	tr_sup_named_spec_init(&sp, "c", "nw", &bad, sizeof(bad));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, &reason),
	    TR_EINIT);
	assert_int_equal(reason, 61);
	assert_int_equal(atomic_load(&nws[2].starts), 1);
	assert_false(tt_has_child(rt, sup, "c"));

	/* An empty argument is an empty blob; a temporary supervisor-type
	 * child with its own shutdown. */
	tr_sup_named_spec_init(&sp, "d", "nw", NULL, 0);
	sp.restart = TR_RESTART_TEMPORARY;
	sp.type = TR_CHILD_SUPERVISOR;
	sp.shutdown_ms = TR_SHUTDOWN_BRUTAL_KILL;
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_int_equal(atomic_load(&nws[0].empty_starts), 1);
	tr_child_counts cnt = tt_counts(rt, sup);
	assert_int_equal(cnt.supervisors, 1);
	tt_wcrash(rt, pid, 5);
	assert_true(TT_WAIT_FOR(!tt_has_child(rt, sup, "d"), TT_WAIT_MS));

	/* Bad arguments, and from an actor the blocking call is refused. */
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, NULL, -1, NULL), TR_EINVAL);
	sp.behaviour = "";
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_EINVAL);
	tr_sup_named_spec_init(&sp, "e", "nw", NULL, 0);
	assert_rc(tr_sup_start_named_child(&pid, NULL, sup, &sp, -1, NULL),
	    TR_EINVAL);

	/* A supervisor that is gone. */
	tt_sup_stop(rt, port, w, sup);
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_ENOPROC);
	assert_int_equal(atomic_load(&nws[1].running), 0);
	tt_pstop(fx);
}

/* A start larger than the call's stack buffer. */
static void test_start_named_large_arg(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, NULL, 0);
	size_t big = 100000;
	unsigned char *arg = malloc(big);
	tr_sup_named_spec sp;
	tr_pid pid;

	assert_non_null(arg);
	for (size_t i = 0; i < big; i++)
		arg[i] = (unsigned char)(i * 7);
	tr_sup_named_spec_init(&sp, "big", "nw", arg, big);
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, TT_WAIT_MS, NULL),
	    TR_OK);
	tr_msg *r = NULL;
	assert_rc(tr_call(&r, rt, pid, NW_GET, NULL, 0, TT_WAIT_MS), TR_OK);
	assert_int_equal(r->size, big);
	assert_memory_equal(r->data, arg, big);
	tr_msg_free(r);
	free(arg);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* Every restart gives init a fresh copy of the spec's argument: what a
 * previous run did to its own copy is not seen. */
static void test_restart_fresh_blob(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ALL, 20, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, NULL, 0);
	struct nw_arg a = nw_arg(4, 0), b = nw_arg(5, 0);
	tr_sup_named_spec sp;
	tr_pid pa, pb;

	tr_sup_named_spec_init(&sp, "a", "nw", &a, sizeof(a));
	assert_rc(tr_sup_start_named_child(&pa, rt, sup, &sp, -1, NULL), TR_OK);
	tr_sup_named_spec_init(&sp, "b", "nw", &b, sizeof(b));
	assert_rc(tr_sup_start_named_child(&pb, rt, sup, &sp, -1, NULL), TR_OK);
	for (int i = 0; i < 5; i++) {
		/* Both scribble on their copies; a crashes, and one_for_all
		 * restarts both. */
		assert_rc(tr_post(rt, pa, NW_SCRIBBLE, NULL, 0), TR_OK);
		assert_rc(tr_post(rt, pb, NW_SCRIBBLE, NULL, 0), TR_OK);
		assert_string_equal(nw_get(rt, pa).text, "dirty");
		assert_string_equal(nw_get(rt, pb).text, "dirty");
		int reason = 9;
		assert_rc(
		    tr_post(rt, pa, NW_STOP, &reason, sizeof(reason)), TR_OK);
		pa = tt_wait_restart(rt, sup, "a", pa);
		pb = tt_wait_restart(rt, sup, "b", pb);
		assert_string_equal(nw_get(rt, pa).text, "pristine");
		assert_string_equal(nw_get(rt, pb).text, "pristine");
	}
	assert_int_equal(atomic_load(&nws[4].starts), 6);
	assert_int_equal(atomic_load(&nws[5].starts), 6);
	assert_int_equal(atomic_load(&nws[4].dirty_starts), 0);
	assert_int_equal(atomic_load(&nws[5].dirty_starts), 0);
	tt_sup_stop(rt, port, w, sup);
	assert_int_equal(atomic_load(&nws[4].running), 0);
	assert_int_equal(atomic_load(&nws[5].terms), 6);
	tt_pstop(fx);
}

/* Specs by name given locally: static children of tr_sup_start and
 * tr_sup_start_child. */
static void test_local_specs_by_name(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	struct nw_arg a = nw_arg(6, 0);
	tr_blob *blob = tr__blob_new(&a, sizeof(a));
	static struct tt_wcfg wc = {.id = 'w'};
	tr_child_spec specs[2];
	tr_pid sup, pid, pa;
	int reason = 0;

	assert_non_null(blob);
	tr_child_spec_init(&specs[0], "named", NULL, blob);
	specs[0].start_name = "nw";
	specs[1] = tt_wspec("plain", &wc);
	sup = tt_sup_start(rt, &f, specs, 2);
	/* The supervisor copied the blob: the caller's may go now. */
	free(blob);
	pa = tt_child(rt, sup, "named");
	assert_string_equal(nw_get(rt, pa).text, "pristine");
	assert_int_equal(atomic_load(&nws[6].starts), 1);
	assert_rc(tr_post(rt, pa, NW_SCRIBBLE, NULL, 0), TR_OK);
	tt_wcrash(rt, pa, 3);
	pa = tt_wait_restart(rt, sup, "named", pa);
	assert_string_equal(nw_get(rt, pa).text, "pristine");

	/* tr_sup_start_child with a spec by name; NULL arg: an empty blob. */
	tr_child_spec sp;
	tr_child_spec_init(&sp, "named2", NULL, NULL);
	sp.start_name = "nw";
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sp, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_int_equal(atomic_load(&nws[0].empty_starts), 1);
	sp.id = "named3";
	sp.start_name = "unregistered";
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sp, NULL, TT_WAIT_MS, NULL),
	    TR_ENOENT);
	sp.start = &nw; /* both */
	sp.start_name = "nw";
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sp, NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	sp.start = NULL;
	sp.start_name = "";
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, &sp, NULL, TT_WAIT_MS, NULL),
	    TR_EINVAL);
	tt_sup_stop(rt, port, w, sup);

	/* tr_sup_start checks names too: unknown, empty, neither. */
	tr_child_spec_init(&specs[0], "x", NULL, NULL);
	specs[0].start_name = "unregistered";
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 1, &reason), TR_ENOENT);
	specs[0].start_name = "";
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 1, &reason), TR_EINVAL);
	specs[0].start_name = NULL;
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 1, &reason), TR_EINVAL);

	/* A nested supervisor with an unknown name fails its init with
	 * bad arguments. */
	static tr_child_spec inner[1];
	static tr_sup_args inner_args;
	tr_child_spec_init(&inner[0], "x", NULL, NULL);
	inner[0].start_name = "unregistered";
	inner_args.flags = f;
	inner_args.specs = inner;
	inner_args.nspecs = 1;
	specs[0] = tt_supspec("inner", &inner_args);
	assert_rc(tr_sup_start(&sup, rt, &f, specs, 1, &reason), TR_EINIT);
	assert_int_equal(reason, TR_SUP_REASON_BADARGS);

	tt_quiesce(rt);
	assert_int_equal(atomic_load(&nws[6].running), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* simple_one_for_one                                                        */
/* ------------------------------------------------------------------------ */

static void test_simple_by_name(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_SIMPLE_ONE_FOR_ONE, 10, LONG_PERIOD);
	tr_child_spec tmpl;
	struct nw_arg a7 = nw_arg(7, 0), a8 = nw_arg(8, 0);
	tr_sup_named_spec sp;
	tr_pid sup, p7, p8, pid;

	tr_child_spec_init(&tmpl, "tmpl", NULL, NULL);
	tmpl.start_name = "nw";
	tmpl.restart = TR_RESTART_PERMANENT;
	sup = tt_sup_start(rt, &f, &tmpl, 1);
	assert_int_equal(tt_counts(rt, sup).specs, 0);

	/* Dynamic children, each with its own argument. */
	tr_sup_named_spec_init(&sp, NULL, "nw", &a7, sizeof(a7));
	sp.restart = TR_RESTART_TEMPORARY; /* checked, but the template's */
	assert_rc(tr_sup_start_named_child(&p7, rt, sup, &sp, -1, NULL), TR_OK);
	tr_sup_named_spec_init(&sp, "", "nw", &a8, sizeof(a8));
	assert_rc(tr_sup_start_named_child(&p8, rt, sup, &sp, -1, NULL), TR_OK);
	assert_int_equal(nw_get(rt, p7).key, 7);
	assert_int_equal(nw_get(rt, p8).key, 8);
	assert_int_equal(tt_counts(rt, sup).active, 2);

	/* Permanent, as the template says: restarted with a fresh copy. */
	assert_rc(tr_post(rt, p7, NW_SCRIBBLE, NULL, 0), TR_OK);
	tt_wcrash(rt, p7, 4);
	assert_true(TT_WAIT_FOR(atomic_load(&nws[7].starts) == 2, TT_WAIT_MS));
	assert_true(TT_WAIT_FOR(tt_counts(rt, sup).active == 2, TT_WAIT_MS));
	assert_int_equal(atomic_load(&nws[7].dirty_starts), 0);

	/* An id, another behaviour, an unknown one. */
	tr_sup_named_spec_init(&sp, "x", "nw", &a7, sizeof(a7));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_EINVAL);
	tr_sup_named_spec_init(&sp, NULL, "nw2", &a7, sizeof(a7));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_EINVAL);
	tr_sup_named_spec_init(&sp, NULL, "zzz", &a7, sizeof(a7));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_ENOENT);
	assert_int_equal(tt_counts(rt, sup).specs, 2);

	/* Locally, a template by name takes a blob, copied. */
	struct nw_arg a9 = nw_arg(9, 0);
	tr_blob *blob = tr__blob_new(&a9, sizeof(a9));
	assert_non_null(blob);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, NULL, blob, TT_WAIT_MS, NULL),
	    TR_OK);
	free(blob);
	assert_int_equal(nw_get(rt, pid).key, 9);
	assert_rc(
	    tr_sup_start_child(&pid, rt, sup, NULL, NULL, TT_WAIT_MS, NULL),
	    TR_OK);
	assert_int_equal(atomic_load(&nws[0].empty_starts), 1);
	assert_rc(tr_sup_terminate_pid(rt, sup, pid, TT_WAIT_MS), TR_OK);

	/* A failing init of a dynamic child keeps nothing. */
	struct nw_arg bad = nw_arg(10, 33);
	int reason = 0;
	tr_sup_named_spec_init(&sp, NULL, "nw", &bad, sizeof(bad));
	assert_rc(tr_sup_start_named_child(&pid, rt, sup, &sp, -1, &reason),
	    TR_EINIT);
	assert_int_equal(reason, 33);
	assert_int_equal(tt_counts(rt, sup).specs, 3);
	tt_sup_stop(rt, port, w, sup);
	for (int k = 0; k < NW_KEYS; k++)
		assert_int_equal(atomic_load(&nws[k].running), 0);

	/* A template by address cannot take a start by name. */
	static struct tt_wcfg wc = {.id = 'w'};
	tr_child_spec t2 = tt_wspec("t", &wc);
	sup = tt_sup_start(rt, &f, &t2, 1);
	tr_sup_named_spec_init(&sp, NULL, "nw", &a7, sizeof(a7));
	assert_rc(
	    tr_sup_start_named_child(&pid, rt, sup, &sp, -1, NULL), TR_ENOTSUP);
	assert_int_equal(tt_counts(rt, sup).specs, 0);
	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* Malformed requests                                                        */
/* ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static bool allowed(int err)
{
	return err == TR_OK || err == TR_EINVAL || err == TR_ENOENT ||
	       err == TR_EALREADY || err == TR_EEXIST || err == TR_EINIT;
}

static void test_malformed(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 1000, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, NULL, 0);
	struct nw_arg a = nw_arg(3, 0);
	tr_sup_named_spec sp;
	unsigned char *good, *p;
	size_t len, n;

	tr_sup_named_spec_init(&sp, "m", "nw", &a, sizeof(a));
	good = encode(&sp, &len);
	p = malloc(len + 512);
	assert_non_null(p);

	/* Every truncation, and one byte too many. */
	for (n = 0; n < len; n++)
		assert_rc(raw_call(rt, sup, good, n, NULL), TR_EINVAL);
	memcpy(p, good, len);
	p[len] = 0;
	assert_rc(raw_call(rt, sup, p, len + 1, NULL), TR_EINVAL);

	/* Each field out of range, one at a time. */
	static const struct {
		size_t off;
		uint32_t v;
	} bad[] = {
	    {0, 0},
	    {0, 2},
	    {0, 0xFFFFFFFFu},
	    {4, 3},
	    {4, 0x80000000u},
	    {8, (uint32_t)-2},
	    {8, 0x80000000u},
	    {12, 2},
	    {12, 0xFFFFFFFFu},
	    {16, 2},
	    {16, 0x80000000u},
	    {16, 1}, /* significant, but permanent */
	    {20, sizeof(struct nw_arg) + 1},
	    {20, sizeof(struct nw_arg) - 1},
	    {20, 0},
	    {20, 0xFFFFFFFFu},
	    {20, 0xFFFFFFFFu - 153},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(p, good, len);
		put_le32(p + bad[i].off, bad[i].v);
		assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	}

	/* Strings without their NUL, with junk after it, empty. */
	memcpy(p, good, len);
	memset(p + 24, 'i', 65);
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	memcpy(p, good, len);
	p[24 + 64] = 'j';
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	memcpy(p, good, len);
	memset(p + 24, 0, 65); /* an empty id: not for one_for_one */
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	memcpy(p, good, len);
	memset(p + 89, 'b', 65);
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	memcpy(p, good, len);
	p[89 + 10] = 'j';
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	memcpy(p, good, len);
	memset(p + 89, 0, 65);
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_EINVAL);
	/* A well-formed request for an unknown behaviour. */
	memcpy(p, good, len);
	p[89] = 'x';
	assert_rc(raw_call(rt, sup, p, len, NULL), TR_ENOENT);
	assert_int_equal(tt_counts(rt, sup).specs, 0);

	/* Random bytes of random sizes. */
	for (int i = 0; i < 2000; i++) {
		n = rnd() % (len + 200);
		for (size_t k = 0; k < n; k++)
			p[k] = (unsigned char)rnd();
		if (i % 4 == 0 && n >= 4)
			put_le32(p, 1); /* get past the version */
		assert_rc(raw_call(rt, sup, p, n, NULL), TR_EINVAL);
	}
	assert_int_equal(tt_counts(rt, sup).specs, 0);

	/* Random changes to a good request: whatever the answer, the
	 * supervisor stays up and every child it keeps is sound. The good
	 * one first, so that changes that leave its id are refused as
	 * already started. */
	assert_rc(raw_call(rt, sup, good, len, NULL), TR_OK);
	for (int i = 0; i < 2000; i++) {
		tr_sup_named_reply r;
		memcpy(p, good, len);
		int k = 1 + (int)(rnd() % 3);
		while (k-- > 0)
			p[rnd() % len] = (unsigned char)rnd();
		int err = raw_call(rt, sup, p, len, &r);
		if (!allowed(err))
			fail_msg("a changed request gave %d (%s)", err,
			    tr_strerror(err));
		if (err == TR_OK || err == TR_EALREADY)
			assert_true(tr_is_alive(rt, r.child));
	}

	/* Through all of that, the supervisor still starts what it should. */
	tr_pid pid;
	assert_rc(tr_sup_terminate_child(rt, sup, "m", TT_WAIT_MS), TR_OK);
	assert_rc(tr_sup_delete_child(rt, sup, "m", TT_WAIT_MS), TR_OK);
	tr_sup_named_reply r;
	assert_rc(raw_call(rt, sup, good, len, &r), TR_OK);
	pid = tt_child(rt, sup, "m");
	assert_true(tr_pid_eq(pid, r.child));
	assert_int_equal(nw_get(rt, pid).key, 3);

	free(good);
	free(p);
	tt_sup_stop(rt, port, w, sup);
	for (int k = 0; k < NW_KEYS; k++)
		assert_int_equal(atomic_load(&nws[k].running), 0);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* From an actor, with tr_request                                            */
/* ------------------------------------------------------------------------ */

enum {
	RQ_GO = 0x7500, /* port -> requester: struct rq_go */
	RQ_DONE,        /* requester -> port: struct rq_done */
};

struct rq_go {
	tr_pid to;
	int64_t timeout_ms;
	uint32_t len;
	unsigned char payload[512];
};

struct rq_done {
	int decode_rc;
	uint32_t type;
	tr_sup_named_reply r;
};

struct rq_state {
	tr_pid report;
	uint64_t ref;
};

static int rq_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

static int rq_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct rq_state *st = state;

	if (m->type == RQ_GO) {
		struct rq_go g;

		TT_ACHECK(m->size == sizeof(g));
		memcpy(&g, m->data, sizeof(g));
		TT_ACHECK(
		    tr_request(ctx, &st->ref, g.to, TR_SUP_REQ_START_NAMED,
		        g.payload, g.len, g.timeout_ms) == TR_OK);
		return 0;
	}
	if (m->ref == st->ref) {
		struct rq_done d;

		memset(&d, 0, sizeof(d));
		d.type = m->type;
		d.decode_rc = tr_sup_named_reply_decode(&d.r, m);
		TT_ACHECK(
		    tr_send(ctx, st->report, RQ_DONE, &d, sizeof(d)) == TR_OK);
	}
	return 0;
}

static const tr_behaviour rq_bhv = {
    .name = "rq",
    .init = rq_init,
    .handle = rq_handle,
};

static void rq_send(tr_runtime *rt, tr_pid rq, tr_pid to,
    const tr_sup_named_spec *sp, int64_t timeout_ms)
{
	struct rq_go g;
	size_t len = 0;

	memset(&g, 0, sizeof(g));
	g.to = to;
	g.timeout_ms = timeout_ms;
	assert_rc(
	    tr_sup_named_encode(g.payload, sizeof(g.payload), &len, sp), TR_OK);
	g.len = (uint32_t)len;
	assert_rc(tr_post(rt, rq, RQ_GO, &g, sizeof(g)), TR_OK);
}

static struct rq_done rq_wait(tr_port *port, tr_pid rq)
{
	struct rq_done d;
	tr_msg *m = tt_expect(port, RQ_DONE, rq);

	assert_int_equal(m->size, sizeof(d));
	memcpy(&d, m->data, sizeof(d));
	tr_msg_free(m);
	return d;
}

static int never_answers(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour silent = {.name = "silent", .handle = never_answers};

static void test_from_actor(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	tr_pid sup = tt_sup_start(rt, &f, NULL, 0);
	struct rq_state st = {.report = tr_port_pid(port)};
	tr_pid rq = tt_spawn(rt, &rq_bhv, &st);
	struct nw_arg a = nw_arg(11, 0), bad = nw_arg(12, 71);
	tr_sup_named_spec sp;
	struct rq_done d;

	tr_sup_named_spec_init(&sp, "a", "nw", &a, sizeof(a));
	rq_send(rt, rq, sup, &sp, TT_WAIT_MS);
	d = rq_wait(port, rq);
	assert_rc(d.decode_rc, TR_OK);
	assert_int_equal(d.type, TR_SUP_NAMED_REPLY);
	assert_rc(d.r.err, TR_OK);
	assert_true(tr_pid_eq(d.r.child, tt_child(rt, sup, "a")));
	assert_int_equal(nw_get(rt, d.r.child).key, 11);

	rq_send(rt, rq, sup, &sp, TT_WAIT_MS);
	d = rq_wait(port, rq);
	assert_rc(d.r.err, TR_EALREADY);
	assert_true(tr_pid_eq(d.r.child, tt_child(rt, sup, "a")));

	tr_sup_named_spec_init(&sp, "b", "nope", &a, sizeof(a));
	rq_send(rt, rq, sup, &sp, TT_WAIT_MS);
	d = rq_wait(port, rq);
	assert_rc(d.r.err, TR_ENOENT);

	tr_sup_named_spec_init(&sp, "c", "nw", &bad, sizeof(bad));
	rq_send(rt, rq, sup, &sp, TT_WAIT_MS);
	d = rq_wait(port, rq);
	assert_rc(d.r.err, TR_EINIT);
	assert_int_equal(d.r.init_reason, 71);
	assert_true(tr_pid_is_none(d.r.child));

	/* An actor that never answers: the timeout decodes too. */
	tr_pid quiet = tt_spawn(rt, &silent, NULL);
	tr_sup_named_spec_init(&sp, "d", "nw", &a, sizeof(a));
	rq_send(rt, rq, quiet, &sp, 50);
	d = rq_wait(port, rq);
	assert_int_equal(d.type, TR_MSG_TIMEOUT);
	assert_rc(d.decode_rc, TR_OK);
	assert_rc(d.r.err, TR_ETIMEDOUT);

	tt_sup_stop(rt, port, w, sup);
	tt_pstop(fx);
}

/* ------------------------------------------------------------------------ */
/* While the supervisor is busy, and while it stops                          */
/* ------------------------------------------------------------------------ */

struct term_arg {
	tr_runtime *rt;
	tr_pid sup;
	int rc;
};

static void *term_thread(void *p)
{
	struct term_arg *t = p;

	t->rc = tr_sup_terminate_child(t->rt, t->sup, "s", TT_WAIT_MS);
	return NULL;
}

static void test_deferred_and_closed(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = start_named(fx);
	tr_port *port = tt_port(fx);
	tr_pid w = tt_probe_spawn(rt, port, false);
	static struct tt_wcfg s = {.id = 's', .trap = true};
	tr_child_spec specs[] = {tt_wspec("s", &s)};
	tr_sup_flags f = tt_flags(TR_SUP_ONE_FOR_ONE, 5, LONG_PERIOD);
	struct rq_state st = {.report = tr_port_pid(port)};
	tr_pid rq = tt_spawn(rt, &rq_bhv, &st);
	struct nw_arg a = nw_arg(13, 0);
	tr_sup_named_spec sp;
	struct term_arg ta;
	pthread_t th;
	struct rq_done d;
	tr_pid sup, ps;

	atomic_store(&s.exits_seen, 0);
	specs[0].shutdown_ms = 10 * TT_WAIT_MS;
	sup = tt_sup_start(rt, &f, specs, 1);
	ps = tt_child(rt, sup, "s");

	/* A terminate that waits on a child that ignores its shutdown: a
	 * start by name meanwhile is answered once that is over. */
	ta = (struct term_arg){.rt = rt, .sup = sup};
	assert_int_equal(pthread_create(&th, NULL, term_thread, &ta), 0);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 1, TT_WAIT_MS));
	tr_sup_named_spec_init(&sp, "n", "nw", &a, sizeof(a));
	rq_send(rt, rq, sup, &sp, -1);
	assert_null(tt_try_expect(port, RQ_DONE, rq, 100));
	assert_int_equal(atomic_load(&nws[13].starts), 0);
	assert_rc(tr_kill(rt, ps, TR_REASON_KILL), TR_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_rc(ta.rc, TR_OK);
	d = rq_wait(port, rq);
	assert_rc(d.r.err, TR_OK);
	assert_true(tr_pid_eq(d.r.child, tt_child(rt, sup, "n")));

	/* A start that waits behind a terminate when the supervisor is
	 * told to stop is answered TR_ECLOSED, in the portable layout. */
	assert_rc(
	    tr_sup_restart_child(&ps, rt, sup, "s", TT_WAIT_MS, NULL), TR_OK);
	ta = (struct term_arg){.rt = rt, .sup = sup};
	assert_int_equal(pthread_create(&th, NULL, term_thread, &ta), 0);
	assert_true(TT_WAIT_FOR(atomic_load(&s.exits_seen) == 2, TT_WAIT_MS));
	tr_sup_named_spec_init(&sp, "n2", "nw", &a, sizeof(a));
	rq_send(rt, rq, sup, &sp, -1);
	assert_null(tt_try_expect(port, RQ_DONE, rq, 100));
	uint64_t mref = tt_monitor(port, w, sup);
	assert_rc(tr_kill(rt, sup, TR_REASON_SHUTDOWN), TR_OK);
	d = rq_wait(port, rq);
	assert_int_equal(d.type, TR_SUP_NAMED_REPLY);
	assert_rc(d.r.err, TR_ECLOSED);

	/* And one that arrives while it stops. */
	rq_send(rt, rq, sup, &sp, -1);
	d = rq_wait(port, rq);
	assert_rc(d.r.err, TR_ECLOSED);

	assert_rc(tr_kill(rt, ps, TR_REASON_KILL), TR_OK);
	assert_int_equal(pthread_join(th, NULL), 0);
	struct tt_note note;
	do {
		note = tt_expect_down(port, w, sup, TR_REASON_SHUTDOWN);
	} while (note.info.ref != mref);
	assert_int_equal(atomic_load(&nws[13].starts), 1);
	assert_int_equal(atomic_load(&nws[13].running), 0);
	tt_pstop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_encode_layout),
	    cmocka_unit_test(test_encode_refuses),
	    TT_PTEST(test_reply_decode),
	    TT_PTEST(test_start_named),
	    TT_PTEST(test_start_named_large_arg),
	    TT_PTEST(test_restart_fresh_blob),
	    TT_PTEST(test_local_specs_by_name),
	    TT_PTEST(test_simple_by_name),
	    TT_PTEST(test_malformed),
	    TT_PTEST(test_from_actor),
	    TT_PTEST(test_deferred_and_closed),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
