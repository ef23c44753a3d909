/*
 * A node that runs for months: one node sees another restart over and
 * over (a new incarnation each time, as a crash-looping service would),
 * and its memory, descriptors and table stay flat: entries of the peer's
 * earlier lives are freed and their indices used again, with a new
 * generation, so their old pids stay stale.
 *
 * Both nodes live in this process (two runtimes) and talk over ipc://, so
 * that a cycle costs a handshake and a teardown, nothing else.
 * TROUPE_CHURN sets the number of restarts (100,000 by default; CI's
 * passes use fewer, deploy/test.sh).
 */
#include "common.h"

#include <dirent.h>
#include <unistd.h>

#include <troupe/node.h>

#include "node_child.h"

static int fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int k = 0;
	while (d != NULL && readdir(d) != NULL)
		k++;
	if (d != NULL)
		closedir(d);
	return k;
}

static void quiet(void *user, const char *line)
{
	(void)user;
	(void)line;
}

static int echo_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->ref != 0)
		(void)tr_reply(ctx, m, m->type, m->data, m->size);
	return 0;
}

static const tr_behaviour echo_b = {"echo", NULL, echo_handle, NULL};

static void test_restarts(void **state)
{
	(void)state;
	const char *env = getenv("TROUPE_CHURN");
	long cycles = env != NULL ? atol(env) : 100000;
	char dir[] = "/tmp/troupe-churn-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char turl[300], curl[300];
	snprintf(turl, sizeof(turl), "ipc://%s/t.sock", dir);
	snprintf(curl, sizeof(curl), "ipc://%s/c.sock", dir);

	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = 1;
	tr_runtime *rt, *rc;
	assert_rc(tr_runtime_start(&rt, &ro), TR_OK);
	assert_rc(tr_runtime_start(&rc, &ro), TR_OK);
	tr_runtime_set_log(rt, quiet, NULL);
	tr_runtime_set_log(rc, quiet, NULL);
	tr_pid echo;
	assert_rc(tr_spawn(&echo, rc, &echo_b, NULL, NULL), TR_OK);
	assert_rc(tr_register(rc, "echo", echo), TR_OK);
	const char *tl[2] = {turl, NULL}, *cl[2] = {curl, NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "steady";
	o.listen = tl;
	o.cookie = "secret";
	o.tick_ms = 50; /* reclamation runs every tick */
	tr_node *t;
	assert_rc(tr_node_start(&t, rt, &o), TR_OK);

	/* Memory is measured from the point where the table holds its cap
	 * of departed entries (4096) on: before, it fills by design. */
	long warm_at = cycles / 10 > 4196 ? cycles / 10 : 4196;
	long rss_warm = 0;
	int fds_warm = 0;
	tr_pid first = TR_PID_NONE;
	int64_t t0 = tt_now_ms();
	for (long i = 0; i < cycles; i++) {
		tr_node_opts_init(&o);
		o.name = "churner";
		o.listen = cl;
		o.cookie = "secret";
		o.incarnation = 1000 + (uint64_t)i;
		tr_node *c;
		assert_rc(tr_node_start(&c, rc, &o), TR_OK);
		bool check = i % 997 == 0 || i == cycles - 1;
		if (check) {
			/* Connecting to a node that is up is a no-op, and
			 * the previous life may not be seen down yet: a
			 * lookup would go to it, and fail. Wait for it. */
			tr_node_stats ws = TR_STRUCT_INIT(tr_node_stats);
			int64_t wl = tt_now_ms() + 10000;
			for (;;) {
				assert_rc(tr_node_stats_get(&ws, t), TR_OK);
				if (ws.peers_up == 0 || tt_now_ms() >= wl)
					break;
				tt_sleep_ms(1);
			}
			assert_int_equal(ws.peers_up, 0);
		}
		/* The previous life's listener at the same path may still
		 * be closing: a connect that reached it fails with
		 * TR_ECLOSED, and the next one reaches the new node. */
		int rc = TR_ECLOSED;
		for (int k = 0; k < 20 && rc == TR_ECLOSED; k++)
			rc = tr_node_connect(t, curl, 10000, NULL);
		assert_rc(rc, TR_OK);
		if (check) {
			/* A call across, now and then: the pair works. */
			tr_pid pid;
			assert_rc(
			    tr_node_whereis(&pid, t, "churner", "echo", 10000),
			    TR_OK);
			tr_msg *r;
			assert_rc(
			    tr_call(&r, rt, pid, 5, "x", 1, 10000), TR_OK);
			tr_msg_free(r);
			if (tr_pid_is_none(first))
				first = pid;
			else
				/* A pid of an earlier life never reaches the
				 * new one. */
				assert_rc(
				    tr_call(&r, rt, first, 5, "x", 1, 1000),
				    TR_ENOPROC);
		}
		tr_node_stop(c);
		if (i == 0)
			fds_warm = fds();
		if (i == warm_at) {
			tt_sleep_ms(200);
			rss_warm = tt_proc_kb(0, "VmRSS");
		}
	}
	int64_t ms = tt_now_ms() - t0;
	/* Let the last teardowns and reclamations run. */
	tr_node_stats st = TR_STRUCT_INIT(tr_node_stats);
	int64_t until = tt_now_ms() + 10000;
	do {
		tt_sleep_ms(50);
		assert_rc(tr_node_stats_get(&st, t), TR_OK);
	} while (st.peers_up != 0 && tt_now_ms() < until);
	tt_sleep_ms(300);
	long rss_end = tt_proc_kb(0, "VmRSS");
	int fds_end = fds();
	assert_rc(tr_node_stats_get(&st, t), TR_OK);
	print_message("%ld restarts in %lld ms (%.0f/s); RSS %ld -> %ld kB "
	              "after %ld restarts; fds %d -> %d; %u entries\n",
	    cycles, (long long)ms, cycles * 1000.0 / (double)(ms ? ms : 1),
	    rss_warm, rss_end, warm_at, fds_warm, fds_end, st.peers_known);
	assert_int_equal(st.peers_up, 0);
	/* Entries of the departed are capped (TR__PEER_IDLE_MAX, 4096). */
	assert_true(st.peers_known <= 4096 + 2);
	/* What there is to redial stays one member per name: each restart
	 * takes over the entry of the one before (docs/distribution.md,
	 * "Reconnecting"). */
	assert_true(st.members_known <= 2);
	assert_true(fds_end <= fds_warm + 2);
	/* Flat: at most a few MiB beyond the state after a tenth of the
	 * run (the idle entries fill up to their cap meanwhile). */
	if (cycles > warm_at + 1000)
		assert_true(rss_end - rss_warm < 16 * 1024);
	tr_node_stop(t);
	tr_runtime_stop(rc);
	tr_runtime_stop(rt);
	rm_tree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_restarts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
