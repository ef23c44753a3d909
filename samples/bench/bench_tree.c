/*
 * troupe-bench's spawn-heavy workloads (bench_tree.h): skynet, Savina's
 * fork-join create, and spawns from a thread that is not a scheduler.
 * The Erlang twin of the first two is peers/tree_bench.erl.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_tree.h"
#include "bench_util.h"
#include "sample_clock.h"

#define MSG_SUM 0x54520001u  /* a child's sum, uint64_t */
#define MSG_WORK 0x54520002u /* fjcreate: the one message */
#define MSG_DONE 0x54520003u /* the root's result, uint64_t */

/* ---- skynet -------------------------------------------------------------- */

struct sky {
	tr_pid parent; /* TR_PID_NONE: the root, which reports to `report` */
	tr_pid report;
	uint64_t num, size; /* first leaf index, leaves below */
	uint64_t sum;
	uint32_t left; /* children still to answer */
};

static const tr_behaviour sky_b;

static int sky_answer(tr_ctx *ctx, struct sky *s, uint64_t v)
{
	int rc = tr_pid_is_none(s->parent)
	             ? tr_send(ctx, s->report, MSG_DONE, &v, sizeof(v))
	             : tr_send(ctx, s->parent, MSG_SUM, &v, sizeof(v));
	if (rc != TR_OK)
		bench_die("skynet answer", rc);
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

/* The state is the spawn argument, malloc'd by the parent. */
static int sky_init(tr_ctx *ctx, void *arg, void **state)
{
	struct sky *s = arg;
	*state = s;
	if (s->size == 1)
		return sky_answer(ctx, s, s->num);
	uint64_t step = s->size / 10;
	tr_runtime *rt = tr_runtime_of(ctx);
	for (uint64_t i = 0; i < 10; i++) {
		struct sky *c = malloc(sizeof(*c));
		if (c == NULL)
			bench_die("skynet", TR_ENOMEM);
		*c = (struct sky){.parent = tr_self(ctx),
		    .num = s->num + i * step,
		    .size = step};
		int rc = tr_spawn(NULL, rt, &sky_b, c, NULL);
		if (rc != TR_OK)
			bench_die("skynet spawn", rc);
	}
	s->left = 10;
	return 0;
}

static int sky_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct sky *s = state;
	uint64_t v;
	if (m->type != MSG_SUM || m->size != sizeof(v))
		return 0;
	memcpy(&v, m->data, sizeof(v));
	s->sum += v;
	if (--s->left == 0)
		return sky_answer(ctx, s, s->sum);
	return 0;
}

static void sky_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)ctx;
	(void)reason;
	free(state);
}

static const tr_behaviour sky_b = {
    .name = "skynet",
    .init = sky_init,
    .handle = sky_handle,
    .terminate = sky_terminate,
};

uint64_t bench_skynet(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	uint64_t leaves = a[0], actors = 0;
	for (uint64_t n = leaves; n >= 1; n /= 10) {
		actors += n;
		if (n % 10 != 0 && n != 1) {
			fprintf(stderr, "troupe-bench: skynet: LEAVES must be "
			                "a power of ten\n");
			exit(2);
		}
	}
	struct sky *root = malloc(sizeof(*root));
	if (root == NULL)
		bench_die("skynet", TR_ENOMEM);
	*root = (struct sky){.parent = TR_PID_NONE,
	    .report = tr_port_pid(port),
	    .num = 0,
	    .size = leaves};
	double t0 = now_s();
	int rc = tr_spawn(NULL, rt, &sky_b, root, NULL);
	if (rc != TR_OK)
		bench_die("skynet spawn", rc);
	uint64_t sum = bench_wait(port);
	*secs = now_s() - t0;
	uint64_t want = leaves * (leaves - 1) / 2;
	if (sum != want) {
		fprintf(stderr,
		    "troupe-bench: skynet: sum %" PRIu64 ", want %" PRIu64 "\n",
		    sum, want);
		exit(1);
	}
	return actors;
}

/* ---- fjcreate ------------------------------------------------------------ */

struct fj_root {
	tr_pid report;
	uint64_t n, left;
};

/* A child: one message, a little arithmetic (Savina's), the answer, the
 * end. */
static int fj_child_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	if (m->type != MSG_WORK)
		return 0;
	volatile double x = 37.2;
	double r = x * 2.0 + 1.0;
	uint64_t v = r > 0.0;
	(void)tr_send(ctx, m->sender, MSG_SUM, &v, sizeof(v));
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static const tr_behaviour fj_child_b = {
    .name = "fj.child",
    .handle = fj_child_handle,
};

static int fj_root_init(tr_ctx *ctx, void *arg, void **state)
{
	struct fj_root *s = arg;
	*state = s;
	tr_runtime *rt = tr_runtime_of(ctx);
	for (uint64_t i = 0; i < s->n; i++) {
		tr_pid c;
		int rc = tr_spawn(&c, rt, &fj_child_b, NULL, NULL);
		if (rc == TR_OK)
			rc = tr_send(ctx, c, MSG_WORK, NULL, 0);
		if (rc != TR_OK)
			bench_die("fjcreate", rc);
	}
	return 0;
}

static int fj_root_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	struct fj_root *s = state;
	if (m->type == MSG_SUM && --s->left == 0) {
		uint64_t v = s->n;
		if (tr_send(ctx, s->report, MSG_DONE, &v, sizeof(v)) != TR_OK)
			bench_die("fjcreate report", TR_ENOPROC);
		tr_exit(ctx, TR_REASON_NORMAL);
	}
	return 0;
}

static const tr_behaviour fj_root_b = {
    .name = "fj.root",
    .init = fj_root_init,
    .handle = fj_root_handle,
};

uint64_t bench_fjcreate(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct fj_root root;
	root = (struct fj_root){
	    .report = tr_port_pid(port), .n = a[0], .left = a[0]};
	double t0 = now_s();
	int rc = tr_spawn(NULL, rt, &fj_root_b, &root, NULL);
	if (rc != TR_OK)
		bench_die("fjcreate spawn", rc);
	if (bench_wait(port) != a[0])
		bench_die("fjcreate", TR_EINVAL);
	*secs = now_s() - t0;
	return a[0];
}

/* ---- spawn-thread -------------------------------------------------------- */

struct st_shared {
	_Atomic uint64_t left;
	tr_pid report;
};

/* Each actor counts itself down in its init and ends; the last reports. */
static int st_init(tr_ctx *ctx, void *arg, void **state)
{
	struct st_shared *sh = arg;
	*state = NULL;
	if (atomic_fetch_sub_explicit(&sh->left, 1, memory_order_acq_rel) == 1) {
		uint64_t v = 0;
		(void)tr_send(ctx, sh->report, MSG_DONE, &v, sizeof(v));
	}
	tr_exit(ctx, TR_REASON_NORMAL);
	return 0;
}

static int st_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour st_b = {
    .name = "spawn.thread",
    .init = st_init,
    .handle = st_handle,
};

uint64_t bench_spawn_thread(
    tr_runtime *rt, tr_port *port, const uint64_t *a, double *secs)
{
	static struct st_shared sh;
	atomic_init(&sh.left, a[0]);
	sh.report = tr_port_pid(port);
	double t0 = now_s();
	for (uint64_t i = 0; i < a[0]; i++) {
		int rc = tr_spawn(NULL, rt, &st_b, &sh, NULL);
		if (rc != TR_OK)
			bench_die("spawn-thread", rc);
	}
	(void)bench_wait(port);
	*secs = now_s() - t0;
	return a[0];
}
