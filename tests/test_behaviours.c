/*
 * Behaviours by name, blobs and refusals: tr_behaviour_register and the
 * runtime's lookup (which a node's remote spawn and the supervisor share),
 * tr_blob copies, and the TR_MSG_REFUSED reply a node gives in place of a
 * target's own (built here through the internal helpers a node uses), as
 * tr_call and tr_request see it.
 */
#include "common.h"

#include <pthread.h>

#include <troupe/sup.h>

#include "rt.h"

static int nop_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour b_one = {.name = "one", .handle = nop_handle};
static const tr_behaviour b_two = {.name = "two", .handle = nop_handle};
static const tr_behaviour b_nohandle = {.name = "nohandle"};

/* ------------------------------------------------------------------------ */
/* The registry                                                              */
/* ------------------------------------------------------------------------ */

static void test_register(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 1);
	char name[TR_NAME_MAX + 2];

	/* Arguments. */
	assert_rc(tr_behaviour_register(NULL, "one", &b_one), TR_EINVAL);
	assert_rc(tr_behaviour_register(rt, NULL, &b_one), TR_EINVAL);
	assert_rc(tr_behaviour_register(rt, "", &b_one), TR_EINVAL);
	assert_rc(tr_behaviour_register(rt, "one", NULL), TR_EINVAL);
	assert_rc(tr_behaviour_register(rt, "nh", &b_nohandle), TR_EINVAL);
	assert_rc(
	    tr_behaviour_register(rt, "sup", &tr_sup_behaviour), TR_EINVAL);
	memset(name, 'n', TR_NAME_MAX + 1);
	name[TR_NAME_MAX + 1] = '\0';
	assert_rc(tr_behaviour_register(rt, name, &b_one), TR_EINVAL);
	assert_null(tr__behaviour_find(rt, name));

	/* The longest name, and the lookup. */
	name[TR_NAME_MAX] = '\0';
	assert_rc(tr_behaviour_register(rt, name, &b_one), TR_OK);
	assert_ptr_equal(tr__behaviour_find(rt, name), &b_one);
	assert_rc(tr_behaviour_register(rt, "one", &b_one), TR_OK);
	assert_rc(tr_behaviour_register(rt, "two", &b_two), TR_OK);
	assert_ptr_equal(tr__behaviour_find(rt, "one"), &b_one);
	assert_ptr_equal(tr__behaviour_find(rt, "two"), &b_two);

	/* A name is taken once, whatever it names. */
	assert_rc(tr_behaviour_register(rt, "one", &b_two), TR_EEXIST);
	assert_rc(tr_behaviour_register(rt, "two", &b_two), TR_EEXIST);
	assert_ptr_equal(tr__behaviour_find(rt, "one"), &b_one);

	/* Unknown, empty, NULL and too long names find nothing. */
	assert_null(tr__behaviour_find(rt, "three"));
	assert_null(tr__behaviour_find(rt, "on"));
	assert_null(tr__behaviour_find(rt, ""));
	assert_null(tr__behaviour_find(rt, NULL));
	assert_null(tr__behaviour_find(NULL, "one"));

	/* Each runtime has its own registry. */
	tr_runtime *rt2 = NULL;
	assert_rc(tr_runtime_start(&rt2, NULL), TR_OK);
	assert_null(tr__behaviour_find(rt2, "one"));
	assert_rc(tr_behaviour_register(rt2, "one", &b_two), TR_OK);
	assert_ptr_equal(tr__behaviour_find(rt2, "one"), &b_two);
	assert_ptr_equal(tr__behaviour_find(rt, "one"), &b_one);
	tr_runtime_stop(rt2);

	tt_stop(fx);
}

#define REG_THREADS 4
#define REG_EACH 100

struct reg_arg {
	tr_runtime *rt;
	int idx;
	int shared_ok; /* out: 1 if this thread got the shared name */
	int errors;    /* out */
};

static void *reg_thread(void *p)
{
	struct reg_arg *a = p;
	char name[32];

	for (int i = 0; i < REG_EACH; i++) {
		snprintf(name, sizeof(name), "t%d-%d", a->idx, i);
		if (tr_behaviour_register(a->rt, name, &b_one) != TR_OK)
			a->errors++;
		if (tr__behaviour_find(a->rt, name) != &b_one)
			a->errors++;
		if (i == REG_EACH / 2) {
			int rc = tr_behaviour_register(a->rt, "shared", &b_two);
			if (rc == TR_OK)
				a->shared_ok = 1;
			else if (rc != TR_EEXIST)
				a->errors++;
		}
	}
	return NULL;
}

/* Registrations and lookups from several threads at once: each name lands
 * once, and a name raced for is won by exactly one thread. */
static void test_register_threads(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	pthread_t th[REG_THREADS];
	struct reg_arg args[REG_THREADS];
	int winners = 0;
	char name[32];

	for (int i = 0; i < REG_THREADS; i++) {
		args[i] = (struct reg_arg){.rt = rt, .idx = i};
		assert_int_equal(
		    pthread_create(&th[i], NULL, reg_thread, &args[i]), 0);
	}
	for (int i = 0; i < REG_THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(args[i].errors, 0);
		winners += args[i].shared_ok;
	}
	assert_int_equal(winners, 1);
	assert_ptr_equal(tr__behaviour_find(rt, "shared"), &b_two);
	for (int t = 0; t < REG_THREADS; t++)
		for (int i = 0; i < REG_EACH; i++) {
			snprintf(name, sizeof(name), "t%d-%d", t, i);
			assert_ptr_equal(tr__behaviour_find(rt, name), &b_one);
		}
	tt_stop(fx);
}

/* ------------------------------------------------------------------------ */
/* Blobs                                                                     */
/* ------------------------------------------------------------------------ */

static void test_blob(void **state)
{
	tr_blob *b;

	(void)state;
	b = tr__blob_new(NULL, 0);
	assert_non_null(b);
	assert_int_equal(b->size, 0);
	free(b);

	b = tr__blob_new("hello", 5);
	assert_non_null(b);
	assert_int_equal(b->size, 5);
	assert_memory_equal(b->data, "hello", 5);
	free(b);

	assert_null(tr__blob_new(NULL, 3));
	assert_null(tr__blob_new("x", SIZE_MAX));
	assert_null(tr__blob_new("x", SIZE_MAX - sizeof(tr_blob) + 1));
}

/* ------------------------------------------------------------------------ */
/* Refusals                                                                  */
/* ------------------------------------------------------------------------ */

enum {
	T_REFUSE = 0x7300, /* refuser: refuse with the int32 code given */
	T_BADREFUSAL,      /* refuser: answer a refusal with payload int32 */
	T_SHORTREFUSAL,    /* refuser: answer a refusal with no payload */
	T_GO,              /* requester: struct go */
	T_SEEN,            /* requester -> port: struct seen */
};

/* Refuses every request the way a node refuses one it did not deliver. */
static int refuser_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	tr_runtime *rt = tr_runtime_of(ctx);
	int32_t v = 0;
	tr_msg *r;

	(void)state;
	if (m->ref == 0)
		return 0;
	if (m->size == sizeof(v))
		memcpy(&v, m->data, sizeof(v));
	switch (m->type) {
	case T_REFUSE:
		TT_ACHECK(tr__reply_refused(
		              rt, tr_self(ctx), m->sender, m->ref, v) == TR_OK);
		break;
	case T_BADREFUSAL:
	case T_SHORTREFUSAL:
		/* What a misbehaving relay might produce: tr_call must
		 * not take it for a success. */
		TT_ACHECK(
		    tr__msg_new_sys(&r, TR_MSG_REFUSED, &v,
		        m->type == T_BADREFUSAL ? sizeof(v) : 0) == TR_OK);
		r->sender = tr_self(ctx);
		r->ref = m->ref;
		r->_flags |= TR__MF_REPLY;
		TT_ACHECK(tr__deliver_any(rt, m->sender, r) == TR_OK);
		break;
	default:
		break;
	}
	return 0;
}

static const tr_behaviour refuser = {
    .name = "refuser",
    .handle = refuser_handle,
};

static void test_call_refused(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_pid p = tt_spawn(rt, &refuser, NULL);
	tr_msg *r = NULL;
	int32_t code;

	/* The refusal's code is tr_call's result, and no reply is left. */
	code = TR_ENOTSUP;
	assert_rc(tr_call(&r, rt, p, T_REFUSE, &code, sizeof(code), TT_WAIT_MS),
	    TR_ENOTSUP);
	assert_null(r);
	code = TR_EINVAL;
	assert_rc(tr_call(&r, rt, p, T_REFUSE, &code, sizeof(code), TT_WAIT_MS),
	    TR_EINVAL);
	assert_null(r);

	/* A refusal without a valid code is still no success. */
	code = 5;
	assert_rc(
	    tr_call(&r, rt, p, T_BADREFUSAL, &code, sizeof(code), TT_WAIT_MS),
	    TR_EINVAL);
	assert_null(r);
	code = 0;
	assert_rc(
	    tr_call(&r, rt, p, T_BADREFUSAL, &code, sizeof(code), TT_WAIT_MS),
	    TR_EINVAL);
	assert_rc(
	    tr_call(&r, rt, p, T_SHORTREFUSAL, &code, sizeof(code), TT_WAIT_MS),
	    TR_EINVAL);
	assert_null(r);

	/* An ordinary call still gets its reply. */
	tr_pid echo = tt_spawn(rt, &tt_echo, NULL);
	tt_call_echo(rt, echo, 42, TT_WAIT_MS);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

struct go {
	tr_pid to;
	uint32_t type;
	int32_t code;
	int64_t timeout_ms;
};

struct seen {
	uint32_t type;
	uint32_t size;
	int32_t code; /* the payload's int32, if any */
	bool ref_matches;
	bool from_target;
};

struct requester {
	tr_pid report;
	tr_pid target;
	uint64_t ref;
};

static int requester_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)ctx;
	*state = arg;
	return TR_OK;
}

/* Sends the request it is told to, and reports whatever answers it. */
static int requester_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct requester *rq = state;
	struct seen s;

	if (m->type == T_GO) {
		struct go g;

		TT_ACHECK(m->size == sizeof(g));
		memcpy(&g, m->data, sizeof(g));
		rq->target = g.to;
		TT_ACHECK(tr_request(ctx, &rq->ref, g.to, g.type, &g.code,
		              sizeof(g.code), g.timeout_ms) == TR_OK);
		return 0;
	}
	memset(&s, 0, sizeof(s));
	s.type = m->type;
	s.size = m->size;
	if (m->size == sizeof(s.code))
		memcpy(&s.code, m->data, sizeof(s.code));
	s.ref_matches = m->ref == rq->ref;
	s.from_target = tr_pid_eq(m->sender, rq->target);
	TT_ACHECK(tr_send(ctx, rq->report, T_SEEN, &s, sizeof(s)) == TR_OK);
	return 0;
}

static const tr_behaviour requester = {
    .name = "requester",
    .init = requester_init,
    .handle = requester_handle,
};

/* An actor's tr_request gets the refusal as its reply message, and the
 * request's timeout never fires after it. */
static void test_request_refused(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct requester rq = {.report = tr_port_pid(port)};
	tr_pid p = tt_spawn(rt, &refuser, NULL);
	tr_pid a = tt_spawn(rt, &requester, &rq);
	struct go g = {
	    .to = p, .type = T_REFUSE, .code = TR_ENOTSUP, .timeout_ms = 200};
	struct seen s;

	assert_rc(tr_post(rt, a, T_GO, &g, sizeof(g)), TR_OK);
	tt_recv_data(port, T_SEEN, &s, sizeof(s));
	assert_int_equal(s.type, TR_MSG_REFUSED);
	assert_int_equal(s.size, sizeof(int32_t));
	assert_int_equal(s.code, TR_ENOTSUP);
	assert_true(s.ref_matches);
	assert_true(s.from_target);

	/* Past the timeout: the refusal was the one answer. */
	tt_sleep_ms(400);
	tt_quiesce(rt);
	tt_assert_port_empty(port);
	tt_stop(fx);
	tt_assert_actors_ok();
}

/* A refusal nobody waits for is dropped like any late reply. */
static void test_refusal_unawaited(void **state)
{
	struct tt_fixture *fx = tt_begin(state);
	tr_runtime *rt = tt_start(fx, 2);
	tr_port *port = tt_port(fx);
	struct requester rq = {.report = tr_port_pid(port)};
	tr_pid a = tt_spawn(rt, &requester, &rq);
	tr_runtime_stats st0 = TR_STRUCT_INIT(tr_runtime_stats),
	                 st1 = TR_STRUCT_INIT(tr_runtime_stats);

	tt_quiesce(rt);
	st0 = tt_stats(rt);
	assert_rc(
	    tr__reply_refused(rt, TR_PID_NONE, a, 12345, TR_EINVAL), TR_OK);
	tt_quiesce(rt);
	st1 = tt_stats(rt);
	assert_int_equal(st1.msgs_dropped, st0.msgs_dropped + 1);
	tt_assert_port_empty(port);

	/* The helpers' own errors. */
	tr_msg *m = NULL;
	assert_rc(tr__msg_refused(NULL, a, 1, TR_EINVAL), TR_EINVAL);
	assert_rc(tr__msg_refused(&m, a, 0, TR_EINVAL), TR_EINVAL);
	assert_rc(tr__msg_refused(&m, a, 1, TR_OK), TR_EINVAL);
	assert_rc(tr__msg_refused(&m, a, 1, 3), TR_EINVAL);
	assert_null(m);
	assert_rc(tr__msg_refused(&m, a, 9, TR_ENOENT), TR_OK);
	assert_non_null(m);
	assert_int_equal(m->type, TR_MSG_REFUSED);
	assert_int_equal(m->ref, 9);
	assert_true(tr_pid_eq(m->sender, a));
	assert_true((m->_flags & TR__MF_REPLY) != 0);
	assert_int_equal(m->size, sizeof(int32_t));
	tr__msg_free(m);
	assert_rc(tr__reply_refused(NULL, a, a, 1, TR_EINVAL), TR_EINVAL);
	assert_rc(
	    tr__reply_refused(rt, a, (tr_pid){1, a.slot, a.gen}, 1, TR_EINVAL),
	    TR_EINVAL);
	assert_rc(
	    tr__reply_refused(rt, a, TR_PID_NONE, 1, TR_EINVAL), TR_EINVAL);
	assert_rc(tr__reply_refused(rt, a, a, 0, TR_EINVAL), TR_EINVAL);
	assert_rc(tr__reply_refused(rt, a, a, 1, TR_OK), TR_EINVAL);
	assert_rc(tr_kill(rt, a, TR_REASON_KILL), TR_OK);
	assert_true(TT_WAIT_FOR(!tr_is_alive(rt, a), TT_WAIT_MS));
	assert_rc(tr__reply_refused(rt, a, a, 1, TR_EINVAL), TR_ENOPROC);

	/* Users cannot send one. */
	int32_t code = TR_EINVAL;
	tr_pid echo = tt_spawn(rt, &tt_echo, NULL);
	assert_rc(
	    tr_post(rt, echo, TR_MSG_REFUSED, &code, sizeof(code)), TR_EINVAL);

	tt_quiesce(rt);
	tt_stop(fx);
	tt_assert_actors_ok();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    TT_TEST(test_register),
	    TT_TEST(test_register_threads),
	    cmocka_unit_test(test_blob),
	    TT_TEST(test_call_refused),
	    TT_TEST(test_request_refused),
	    TT_TEST(test_refusal_unawaited),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	tt_save_signals();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
