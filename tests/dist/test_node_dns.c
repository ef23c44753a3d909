/*
 * DNS discovery (troupe/dns.h) through the system resolver, without a DNS
 * server of the test's own (test_node_dns_netns.sh has one): "localhost"
 * comes from /etc/hosts through the same getaddrinfo.
 *
 * - tr_node_dns_parse: the TROUPE_DNS forms, and what it refuses.
 * - tr_node_dns_alloc / tr_node_dns_lookup refuse bad options with
 *   TR_EINVAL, an option of a newer troupe with TR_ENOTSUP.
 * - A lookup of localhost gives tcp://127.0.0.1:PORT (and [::1] with
 *   IPv6); a name that does not exist is TR_ENOENT, and a source made
 *   for it keeps nothing and counts the failures.
 * - A node given a DNS source (and, in a second run, TROUPE_DNS) finds a
 *   test node process listening on 127.0.0.1.
 */
#include "common.h"

#include <sys/wait.h>
#include <unistd.h>

#include <troupe/dns.h>
#include <troupe/node.h>

#include "node_child.h"

#define TICK_MS 100
#define WAIT_MS 15000
#define MAX_CHILDREN 2

#include "node_env.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct got {
	char v[8][TR_NODE_URL_MAX + 1];
	int n;
};

static void got_add(void *sink, const char *url)
{
	struct got *g = sink;
	if (g->n < 8)
		snprintf(g->v[g->n++], sizeof(g->v[0]), "%s", url);
}

static bool got_has(const struct got *g, const char *url)
{
	for (int i = 0; i < g->n; i++)
		if (strcmp(g->v[i], url) == 0)
			return true;
	return false;
}

static void test_parse(void **state)
{
	(void)state;
	tr_node_dns_opts o;
	char buf[TR_NODE_DNS_NAME_MAX + 1];
	tr_node_dns_opts_init(&o);
	assert_rc(tr_node_dns_parse(&o, buf, sizeof(buf),
	              "troupe.default.svc.cluster.local:4100"),
	    TR_OK);
	assert_string_equal(o.name, "troupe.default.svc.cluster.local");
	assert_int_equal(o.kind, TR_NODE_DNS_A);
	assert_int_equal(o.port, 4100);
	assert_string_equal(o.scheme, "tcp");

	assert_rc(tr_node_dns_parse(
	              &o, buf, sizeof(buf), "srv:_troupe._tcp.troupe.svc"),
	    TR_OK);
	assert_string_equal(o.name, "_troupe._tcp.troupe.svc");
	assert_int_equal(o.kind, TR_NODE_DNS_SRV);
	assert_int_equal(o.port, 0);

	assert_rc(
	    tr_node_dns_parse(&o, buf, sizeof(buf), "tls+tcp://a.b:9"), TR_OK);
	assert_string_equal(o.scheme, "tls+tcp");
	assert_string_equal(o.name, "a.b");
	assert_rc(
	    tr_node_dns_parse(&o, buf, sizeof(buf), "srv:tcp://x"), TR_OK);
	assert_string_equal(o.scheme, "tcp");

	const char *bad[] = {"", "name", "name:", ":4100", "name:0",
	    "name:65536", "name:-1", "name:12x", "udp://name:1",
	    "srv:", "a:b:1", "srv:ipc://x", "a/b:1"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_rc(
		    tr_node_dns_parse(&o, buf, sizeof(buf), bad[i]), TR_EINVAL);
	char longname[300];
	memset(longname, 'a', 254);
	snprintf(longname + 254, sizeof(longname) - 254, ":1");
	assert_rc(tr_node_dns_parse(&o, buf, sizeof(buf), longname), TR_EINVAL);
	assert_rc(tr_node_dns_parse(&o, buf, 3, "abcd:1"), TR_EINVAL);
	assert_rc(tr_node_dns_parse(NULL, buf, sizeof(buf), "a:1"), TR_EINVAL);
	assert_rc(tr_node_dns_parse(&o, buf, sizeof(buf), NULL), TR_EINVAL);
}

static void test_bad_opts(void **state)
{
	(void)state;
	tr_node_dns *d = NULL;
	struct got g = {.n = 0};
	tr_node_dns_opts o;
	tr_node_dns_opts_init(&o);
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL); /* no name */
	o.name = "localhost";
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL); /* no port */
	o.port = 70000;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.port = 4100;
	o.kind = TR_NODE_DNS_SRV; /* a port with SRV */
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.kind = 7;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.kind = TR_NODE_DNS_A;
	o.scheme = "ipc";
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.scheme = NULL;
	o.family = 5;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.family = 0;
	o.interval_ms = 10;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.interval_ms = 0;
	o.max_urls = 5000;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	o.max_urls = 0;
	assert_rc(tr_node_dns_lookup(&o, NULL, &g), TR_EINVAL);
	assert_rc(tr_node_dns_alloc(NULL, &o), TR_EINVAL);
	assert_rc(tr_node_dns_alloc(&d, NULL), TR_EINVAL);
	assert_null(d);
	o.struct_size = 0;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_EINVAL);
	/* From a newer troupe, with an option set past our struct. */
	struct {
		tr_node_dns_opts o;
		uint64_t newer;
	} big;
	memset(&big, 0, sizeof(big));
	tr_node_dns_opts_init(&big.o);
	big.o.struct_size = sizeof(big);
	big.o.name = "localhost";
	big.o.port = 1;
	big.newer = 1;
	assert_rc(tr_node_dns_alloc(&d, &big.o), TR_ENOTSUP);
	big.newer = 0;
	assert_rc(tr_node_dns_alloc(&d, &big.o), TR_OK);
	tr_node_dns_free(d);
	tr_node_dns_free(NULL);

	tr_node_dns_stats st;
	memset(&st, 0, sizeof(st));
	assert_rc(tr_node_dns_stats_get(&st, NULL), TR_EINVAL);
}

static void test_lookup_localhost(void **state)
{
	(void)state;
	tr_node_dns_opts o;
	tr_node_dns_opts_init(&o);
	o.name = "localhost";
	o.port = 4100;
	o.family = 4;
	struct got g = {.n = 0};
	assert_rc(tr_node_dns_lookup(&o, got_add, &g), TR_OK);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.v[0], "tcp://127.0.0.1:4100");

	o.scheme = "tls+tcp";
	o.family = 0;
	g.n = 0;
	assert_rc(tr_node_dns_lookup(&o, got_add, &g), TR_OK);
	assert_true(got_has(&g, "tls+tcp://127.0.0.1:4100"));
	for (int i = 0; i < g.n; i++) /* IPv6 in brackets, if any */
		assert_true(strcmp(g.v[i], "tls+tcp://127.0.0.1:4100") == 0 ||
		            strcmp(g.v[i], "tls+tcp://[::1]:4100") == 0);

	/* max_urls 1 of two addresses: one taken, one refused. */
	o.max_urls = 1;
	g.n = 0;
	assert_rc(tr_node_dns_lookup(&o, got_add, &g), TR_OK);
	assert_int_equal(g.n, 1);

	o.name = "no-such-name.invalid";
	o.max_urls = 0;
	g.n = 0;
	assert_rc(tr_node_dns_lookup(&o, got_add, &g), TR_ENOENT);
	assert_int_equal(g.n, 0);
	o.kind = TR_NODE_DNS_SRV;
	o.port = 0;
	assert_rc(tr_node_dns_lookup(&o, got_add, &g), TR_ENOENT);

	/* A source for it: nothing, failures counted, resolve says so. */
	tr_node_dns *d;
	o.interval_ms = 100;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_OK);
	const tr_node_seed_source *src = tr_node_dns_source();
	assert_non_null(src);
	assert_true(src->interval_ms > 0);
	assert_rc(src->resolve(d, got_add, &g), TR_ENOENT);
	assert_int_equal(g.n, 0);
	int64_t end = now_ms() + WAIT_MS;
	tr_node_dns_stats st;
	tr_node_dns_stats_init(&st);
	do {
		usleep(50 * 1000);
		assert_rc(tr_node_dns_stats_get(&st, d), TR_OK);
	} while (st.lookups < 3 && now_ms() < end);
	assert_true(st.lookups >= 3);
	assert_int_equal(st.failures, st.lookups);
	assert_int_equal(st.urls, 0);
	tr_node_dns_free(d);
}

static int wait_peers(struct env *e, size_t want)
{
	int64_t end = now_ms() + WAIT_MS;
	size_t k = 0;
	while (now_ms() < end) {
		assert_rc(tr_node_list(NULL, 0, &k, e->node), TR_OK);
		if (k == want)
			return 0;
		usleep(20 * 1000);
	}
	return -1;
}

/* The port of child k's tcp://127.0.0.1:PORT. */
static unsigned kid_port(struct env *e, int k)
{
	const char *c = strrchr(e->kids[k].url, ':');
	return c != NULL ? (unsigned)atoi(c + 1) : 0;
}

static void start_tnode(struct env *e, tr_node_dns *d)
{
	const char *listen[2] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "tnode";
	o.listen = listen;
	o.cookie = "secret";
	o.tick_ms = TICK_MS;
	if (d != NULL) {
		o.seed_source = tr_node_dns_source();
		o.seed_user = d;
	}
	assert_rc(tr_node_start(&e->node, e->rt, &o), TR_OK);
}

static void test_node_finds_by_dns(void **state)
{
	struct env *e = *state;
	int k = child_start(e, "n1", "secret", NULL, false);
	assert_true(k >= 0);
	tr_node_dns_opts o;
	tr_node_dns_opts_init(&o);
	o.name = "localhost";
	o.port = kid_port(e, k);
	o.family = 4;
	o.log_rt = e->rt;
	tr_node_dns *d;
	assert_rc(tr_node_dns_alloc(&d, &o), TR_OK);
	tr_node_dns_stats st;
	tr_node_dns_stats_init(&st);
	assert_rc(tr_node_dns_stats_get(&st, d), TR_OK);
	assert_int_equal(st.lookups, 1); /* the first, before alloc returned */
	assert_int_equal(st.urls, 1);
	start_tnode(e, d);
	assert_int_equal(wait_peers(e, 1), 0);
	tr_node_info v[2];
	tr_node_info_init(&v[0]);
	size_t n = 0;
	assert_rc(tr_node_list(v, 2, &n, e->node), TR_OK);
	assert_string_equal(v[0].name, "n1");
	tr_node_stop(e->node); /* before the source it reads */
	e->node = NULL;
	tr_node_dns_free(d);
}

static void test_node_finds_by_env(void **state)
{
	struct env *e = *state;
	int k = child_start(e, "n1", "secret", NULL, false);
	assert_true(k >= 0);
	char spec[64];
	snprintf(spec, sizeof(spec), "localhost:%u", kid_port(e, k));
	assert_int_equal(setenv("TROUPE_DNS", spec, 1), 0);
	start_tnode(e, NULL);
	assert_int_equal(wait_peers(e, 1), 0);
	tr_node_stop(e->node);
	e->node = NULL;

	/* A TROUPE_DNS that is not one: the start fails, and says why. */
	assert_int_equal(setenv("TROUPE_DNS", "localhost", 1), 0);
	const char *listen[2] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts no;
	tr_node_opts_init(&no);
	no.name = "tnode";
	no.listen = listen;
	no.cookie = "secret";
	assert_rc(tr_node_start(&e->node, e->rt, &no), TR_EINVAL);
	e->node = NULL;
	unsetenv("TROUPE_DNS");
	assert_true(log_has(e, "TROUPE_DNS"));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	unsetenv("TROUPE_DNS");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_bad_opts),
	    cmocka_unit_test(test_lookup_localhost),
	    cmocka_unit_test_setup_teardown(
	        test_node_finds_by_dns, setup_tcp, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_node_finds_by_env, setup_tcp, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
