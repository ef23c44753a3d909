/*
 * Error codes: every code from TR_OK down to TR_E_LAST has a text of its
 * own, so that a code added without one (or without moving TR_E_LAST)
 * fails here. And what a refusal's code is (tr_refusal_code), and what a
 * name is (tr_name_valid).
 */
#include "common.h"

static void test_every_code_has_text(void **state)
{
	int n = 1 - TR_E_LAST; /* TR_OK .. TR_E_LAST */
	const char **texts = calloc((size_t)n, sizeof(*texts));

	(void)state;
	assert_non_null(texts);
	assert_true(TR_E_LAST < TR_OK);
	for (int i = 0; i < n; i++) {
		int code = -i;
		const char *t = tr_strerror(code);

		assert_non_null(t);
		if (t[0] == '\0' || strcmp(t, "unknown error") == 0)
			fail_msg("code %d has no text", code);
		for (int j = 0; j < i; j++)
			if (strcmp(t, texts[j]) == 0)
				fail_msg(
				    "codes %d and %d share the text \"%s\"",
				    code, -j, t);
		texts[i] = t;
	}
	free(texts);
}

/* The codes the supervisor calls give, which once had no text. */
static void test_supervisor_codes(void **state)
{
	(void)state;
	assert_string_equal(tr_strerror(TR_EINIT), "actor init failed");
	assert_string_equal(tr_strerror(TR_EALREADY), "already started");
	assert_string_equal(tr_strerror(TR_ERUNNING), "child is running");
}

static void test_outside_the_codes(void **state)
{
	(void)state;
	assert_string_equal(tr_strerror(TR_E_LAST - 1), "unknown error");
	assert_string_equal(tr_strerror(1), "unknown error");
	assert_string_equal(tr_strerror(INT32_MIN), "unknown error");
	assert_string_equal(tr_strerror(INT32_MAX), "unknown error");
}

/* tr_refusal_code reads a refusal's code, and nothing else. */
static void test_refusal_code(void **state)
{
	(void)state;
	int32_t err = TR_EAGAIN;
	tr_msg *m = aligned_alloc(16, sizeof(tr_msg) + 16);
	assert_non_null(m);
	memset(m, 0, sizeof(*m));
	m->type = TR_MSG_REFUSED;
	m->size = sizeof(err);
	memcpy(m->data, &err, sizeof(err));
	assert_int_equal(tr_refusal_code(m), TR_EAGAIN);
	err = 7; /* not an error code: no answer is a success */
	memcpy(m->data, &err, sizeof(err));
	assert_int_equal(tr_refusal_code(m), 0);
	m->size = 2;
	assert_int_equal(tr_refusal_code(m), 0);
	m->size = sizeof(err);
	m->type = TR_MSG_TIMEOUT;
	assert_int_equal(tr_refusal_code(m), 0);
	assert_int_equal(tr_refusal_code(NULL), 0);
	free(m);
}

/* tr_name_valid: 1..TR_NAME_MAX bytes. */
static void test_name_valid(void **state)
{
	(void)state;
	char n[TR_NAME_MAX + 2];
	memset(n, 'a', sizeof(n));
	n[TR_NAME_MAX] = '\0';
	assert_true(tr_name_valid(n));
	n[TR_NAME_MAX] = 'a';
	n[TR_NAME_MAX + 1] = '\0';
	assert_false(tr_name_valid(n));
	assert_true(tr_name_valid("x"));
	assert_false(tr_name_valid(""));
	assert_false(tr_name_valid(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_text),
	    cmocka_unit_test(test_supervisor_codes),
	    cmocka_unit_test(test_outside_the_codes),
	    cmocka_unit_test(test_refusal_code),
	    cmocka_unit_test(test_name_valid),
	};

	setvbuf(stdout, NULL, _IONBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
