/*
 * A cluster of 30 node processes (cluster_node_main.c) on this machine
 * with one of them flapping: frozen with SIGSTOP past the failure-
 * detection bound, then let go with SIGCONT, again and again for a
 * minute, while the test registers global names and looks them up on the
 * other nodes. Every registration and lookup returns within its timeout,
 * no node but the flapping one is ever declared down by the others, and
 * afterwards every node, the flapping one included, agrees on the names
 * and on the members of a process group.
 *
 * TROUPE_FLAP_NODES (30), TROUPE_FLAP_SECONDS (60) and TROUPE_FLAP_TICK
 * (200 ms) change the size, the length and the tick: the sanitizer passes
 * run a smaller, slower-ticking cluster, since a process under
 * ThreadSanitizer runs several times slower and thirty of them on two
 * cores would miss heartbeats for want of CPU, not of the network.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>

#include "line_child.h"

#define COOKIE "flap-cookie"
#define NODES_MAX 64
#define REG_TIMEOUT_MS 3000
#define ANSWER_MS 15000 /* what a command of a node that runs may take */

static struct lchild kids[NODES_MAX];
static int nkids;

static int env_int(const char *name, int def, int lo, int hi)
{
	const char *v = getenv(name);
	int x = v != NULL ? atoi(v) : def;
	return x < lo ? lo : x > hi ? hi : x;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static uint32_t rnd(void)
{
	static uint32_t x = 0x2545f491u;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

static void ask(int i, char *ans, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool ok = lchild_cmdv(&kids[i], ans, cap, ANSWER_MS, fmt, ap);
	va_end(ap);
	if (!ok)
		fail_msg("node n%02d did not answer '%s' in time", i, fmt);
}

/* How many nodes node i sees connected. */
static int nodes_of(int i)
{
	char ans[128];
	ask(i, ans, sizeof(ans), "nodes");
	int n = -1;
	assert_int_equal(sscanf(ans, "N %d", &n), 1);
	return n;
}

/* Waits until every node sees all the others; false after `ms`. */
static bool wait_mesh(int ms)
{
	int64_t dl = now_ms() + ms;
	for (;;) {
		int full = 0;
		for (int i = 0; i < nkids; i++)
			full += nodes_of(i) == nkids - 1;
		if (full == nkids)
			return true;
		if (now_ms() > dl)
			return false;
		usleep(100000);
	}
}

/* Waits until every node prints the same answer to `what` (names, or the
 * members of a group); false after `ms`, with the answers printed. */
static bool wait_agree(const char *what, int ms)
{
	char first[256], ans[256];
	int64_t dl = now_ms() + ms;
	for (;;) {
		bool same = true;
		ask(0, first, sizeof(first), "%s", what);
		for (int i = 1; i < nkids && same; i++) {
			ask(i, ans, sizeof(ans), "%s", what);
			same = strcmp(ans, first) == 0;
		}
		if (same)
			return true;
		if (now_ms() > dl) {
			for (int i = 0; i < nkids; i++) {
				ask(i, ans, sizeof(ans), "%s", what);
				fprintf(stderr, "n%02d %s: %s\n", i, what, ans);
			}
			return false;
		}
		usleep(200000);
	}
}

static int setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < nkids; i++)
		lchild_end(&kids[i], true);
	nkids = 0;
	return 0;
}

static void test_flapping_node(void **state)
{
	(void)state;
	int n = env_int("TROUPE_FLAP_NODES", 30, 3, NODES_MAX);
	int secs = env_int("TROUPE_FLAP_SECONDS", 60, 5, 600);
	int tick = env_int("TROUPE_FLAP_TICK", 200, 50, 2000);
	char tick_s[16], name[16];
	snprintf(tick_s, sizeof(tick_s), "%d", tick);
	int flap = n - 1;

	/* n00 first; the others know only it. */
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "n%02d", i);
		const char *argv[] = {TT_CLUSTER_NODE, name, "tcp://127.0.0.1:0",
		    COOKIE, "--tick", tick_s, i > 0 ? "--seed" : NULL,
		    kids[0].c.url, NULL};
		nkids = i + 1;
		assert_int_equal(lchild_spawn(&kids[i], argv, name, 15000), 0);
	}
	int64_t t0 = now_ms();
	assert_true(wait_mesh(60000));
	fprintf(stderr, "%d nodes meshed in %lld ms\n", n,
	    (long long)(now_ms() - t0));

	char ans[256];
	for (int i = 0; i < n; i++) {
		int rc = -1, ms = 0;
		ask(i, ans, sizeof(ans), "reg svc.%02d %d", i, REG_TIMEOUT_MS);
		assert_int_equal(sscanf(ans, "R %d %d", &rc, &ms), 2);
		assert_int_equal(rc, 0);
		ask(i, ans, sizeof(ans), "join workers");
		assert_string_equal(ans, "J 0");
	}
	assert_true(wait_agree("names", 20000));
	assert_true(wait_agree("members workers", 20000));

	/* Flap: frozen for 6 ticks (past the bound of 4), free for 6. */
	int frozen_ms = 6 * tick, free_ms = 6 * tick;
	int64_t end = now_ms() + (int64_t)secs * 1000;
	unsigned regs = 0, lookups = 0, cycles = 0, worst = 0;
	/* How long after each freeze node n00 no longer had the frozen
	 * node's name, and its worker in the group: the loss as names and
	 * groups see it, printed beside the failure-detection bound. */
	int64_t gone_max = 0, gone_sum = 0;
	unsigned gone_n = 0;
	while (now_ms() < end) {
		for (int phase = 0; phase < 2; phase++) {
			kill(kids[flap].c.pid, phase == 0 ? SIGSTOP : SIGCONT);
			int64_t t_stop = now_ms(), gone = -1;
			int64_t until =
			    now_ms() + (phase == 0 ? frozen_ms : free_ms);
			while (now_ms() < until) {
				if (phase == 0 && gone < 0) {
					int m = -1;
					ask(0, ans, sizeof(ans), "whereis svc.%02d",
					    flap);
					bool named = strcmp(ans, "W 0") == 0;
					ask(0, ans, sizeof(ans), "members workers");
					(void)sscanf(ans, "M %d", &m);
					if (!named && m == n - 1) {
						gone = now_ms() - t_stop;
						gone_max = gone > gone_max ? gone
						                           : gone_max;
						gone_sum += gone;
						gone_n++;
					}
				}
				int i = (int)(rnd() % (uint32_t)(n - 1));
				int j = (int)(rnd() % (uint32_t)(n - 1));
				int rc = -1, ms = 0;
				ask(i, ans, sizeof(ans), "reg tmp.%u %d", regs,
				    REG_TIMEOUT_MS);
				assert_int_equal(
				    sscanf(ans, "R %d %d", &rc, &ms), 2);
				if (rc != 0 || ms > REG_TIMEOUT_MS + 500)
					fail_msg("reg tmp.%u on n%02d: rc %d "
					         "after %d ms",
					    regs, i, rc, ms);
				worst = (unsigned)ms > worst ? (unsigned)ms
				                             : worst;
				regs++;
				ask(i, ans, sizeof(ans), "whereis svc.%02d", j);
				assert_string_equal(ans, "W 0");
				lookups++;
			}
		}
		cycles++;
	}
	kill(kids[flap].c.pid, SIGCONT);
	fprintf(stderr,
	    "%u flap cycles: %u registrations (slowest %u ms), %u lookups\n",
	    cycles, regs, worst, lookups);
	if (gone_n > 0)
		fprintf(stderr,
		    "the frozen node's name and member gone from n00 after "
		    "%lld ms on average, %lld at most (%u of %u freezes; "
		    "the bound: 4 ticks of silence, seen at the next tick, "
		    "%d to %d ms)\n",
		    (long long)(gone_sum / gone_n), (long long)gone_max,
		    gone_n, cycles, 4 * tick, 5 * tick);

	/* Afterwards: one mesh, one table of names, one group. */
	assert_true(wait_mesh(30000));
	assert_true(wait_agree("names", 30000));
	assert_true(wait_agree("members workers", 30000));
	ask(0, ans, sizeof(ans), "members workers");
	int members = 0;
	assert_int_equal(sscanf(ans, "M %d", &members), 1);
	assert_int_equal(members, n);

	/* Nobody but the flapping node was ever declared down by the others,
	 * and it was, so the freezes did pass the bound. */
	char flapname[16];
	snprintf(flapname, sizeof(flapname), "n%02d", flap);
	unsigned flap_downs = 0;
	for (int i = 0; i < flap; i++) {
		ask(i, ans, sizeof(ans), "downs");
		char *save = NULL;
		(void)strtok_r(ans, " ", &save); /* "D" */
		(void)strtok_r(NULL, " ", &save);  /* the total */
		for (char *t = strtok_r(NULL, " ", &save); t != NULL;
		     t = strtok_r(NULL, " ", &save)) {
			size_t l = strlen(flapname);
			if (strncmp(t, flapname, l) != 0 || t[l] != '=')
				fail_msg("n%02d saw %s go down", i, t);
			flap_downs += (unsigned)atoi(t + l + 1);
		}
	}
	assert_true(flap_downs >= (unsigned)flap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
	        test_flapping_node, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
