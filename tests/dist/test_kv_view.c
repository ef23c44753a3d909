/*
 * troupe-kv's placement (samples/kv/kv_view.c): every node ranks alike,
 * whatever the order of its view; a node that leaves moves only the
 * partitions it ranked first in; the partitions spread over the nodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "kv.h"

kv_cfg kv_config;
kv_counters kv_stats;

static void view_of(kv_view *v, const char *const *names, uint32_t n)
{
	memset(v, 0, sizeof(*v));
	v->n = n;
	for (uint32_t i = 0; i < n; i++)
		snprintf(v->names[i], sizeof(v->names[i]), "%s", names[i]);
}

static const char *first(const kv_view *v, uint32_t p)
{
	uint32_t order[KV_MAX_NODES];
	kv_rank(v, p, order);
	return v->names[order[0]];
}

static void test_alike(void **state)
{
	(void)state;
	static const char *const a[] = {"n1", "n2", "n3", "n4", "n5"};
	static const char *const b[] = {"n4", "n2", "n5", "n1", "n3"};
	kv_view va, vb;
	view_of(&va, a, 5);
	view_of(&vb, b, 5);
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		uint32_t oa[KV_MAX_NODES], ob[KV_MAX_NODES];
		kv_rank(&va, p, oa);
		kv_rank(&vb, p, ob);
		for (uint32_t i = 0; i < 5; i++)
			assert_string_equal(va.names[oa[i]], vb.names[ob[i]]);
	}
}

static void test_leave(void **state)
{
	(void)state;
	static const char *const all[] = {"n1", "n2", "n3"};
	static const char *const rest[] = {"n1", "n2"};
	kv_view v3, v2;
	view_of(&v3, all, 3);
	view_of(&v2, rest, 2);
	uint32_t per[3] = {0};
	for (uint32_t p = 0; p < KV_PARTS; p++) {
		const char *f = first(&v3, p);
		per[f[1] - '1']++;
		if (strcmp(f, "n3") != 0)
			assert_string_equal(first(&v2, p), f);
	}
	/* 16 partitions over 3 nodes: none left out. */
	for (int i = 0; i < 3; i++)
		assert_true(per[i] > 0);
	assert_true(kv_view_has(&v3, "n3"));
	assert_false(kv_view_has(&v2, "n3"));
}

int main(void)
{
	kv_config.route.key[0] = 0x1234;
	kv_config.route.key[1] = 0x5678;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alike),
	    cmocka_unit_test(test_leave),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
