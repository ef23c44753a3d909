/*
 * A consumer of the installed distribution library: two nodes in one
 * process connect over ipc:// (in a fresh temp dir) with a shared cookie,
 * and an actor on one is called from the other through its registered
 * name, by its global name (troupe/global.h) and as the one member of a
 * process group (troupe/pg.h). Exits 0 on success.
 *
 * run.sh builds it linked with the shared runtime and node layer together
 * (CMake and pkg-config), where the runtimes started here are those of
 * libtroupe.so and the nodes attach to them from libtroupe-node.so, and
 * linked statically.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pg.h>
#include <troupe/troupe.h>

static int echo(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)state;
	return tr_reply(ctx, m, m->type, m->data, m->size) == TR_OK ? 0 : 1;
}

static const tr_behaviour echo_b = {"echo", NULL, echo, NULL};

static tr_node *start(tr_runtime **rt, const char *name, const char *url)
{
	const char *listen[] = {url, NULL};
	tr_node_opts o;
	tr_node *n = NULL;
	tr_node_opts_init(&o);
	o.name = name;
	o.listen = listen;
	o.cookie = "install-test";
	if (tr_runtime_start(rt, NULL) != TR_OK ||
	    tr_node_start(&n, *rt, &o) != TR_OK)
		return NULL;
	return n;
}

int main(void)
{
	char dir[] = "/tmp/troupe-node-consumer.XXXXXX";
	if (mkdtemp(dir) == NULL)
		return 1;
	char ua[128], ub[128];
	snprintf(ua, sizeof(ua), "ipc://%s/a", dir);
	snprintf(ub, sizeof(ub), "ipc://%s/b", dir);
	tr_runtime *ra = NULL, *rb = NULL;
	tr_node *na = start(&ra, "a", ua), *nb = start(&rb, "b", ub);
	int ok = na != NULL && nb != NULL;
	tr_pid e, re;
	tr_msg *r = NULL;
	ok = ok && tr_spawn(&e, rb, &echo_b, NULL, NULL) == TR_OK &&
	     tr_register(rb, "echo", e) == TR_OK &&
	     tr_node_connect(na, ub, 10000, NULL) == TR_OK &&
	     tr_node_whereis(&re, na, "b", "echo", 10000) == TR_OK &&
	     tr_call(&r, ra, re, 1, "hi", 2, 10000) == TR_OK && r->size == 2 &&
	     memcmp(r->data, "hi", 2) == 0;
	tr_msg_free(r);
	r = NULL;
	/* The same actor by its global name and as a group's member, once
	 * node a has heard of them (a moment after they are made). */
	tr_pid g = TR_PID_NONE, m = TR_PID_NONE;
	size_t k = 0;
	ok = ok && tr_global_register(nb, "echo.g", e, NULL, 10000) == TR_OK &&
	     tr_pg_join(nb, NULL, "echoes", &e, 1) == TR_OK;
	for (int i = 0; ok && i < 1000 && (tr_pid_is_none(g) || k == 0); i++) {
		(void)tr_global_whereis(&g, na, "echo.g");
		(void)tr_pg_members(&m, 1, &k, na, NULL, "echoes");
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	ok = ok && tr_pid_eq(g, re) && k == 1 && tr_pid_eq(m, re) &&
	     tr_call(&r, ra, g, 1, "hi", 2, 10000) == TR_OK;
	tr_msg_free(r);
	tr_node_stop(na);
	tr_node_stop(nb);
	tr_runtime_stop(ra);
	tr_runtime_stop(rb);
	char path[160];
	snprintf(path, sizeof(path), "%s/a", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/b", dir);
	unlink(path);
	rmdir(dir);
	puts(ok ? "node consumer: ok" : "node consumer: FAILED");
	return ok ? 0 : 1;
}
