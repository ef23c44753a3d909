/*
 * Two nodes in this process for the observer's tests, each on a runtime
 * of its own, over ipc in a temporary directory: the first with its
 * observer on loopback (port 0), the second connected to it, with its
 * observer on too when asked (for ?node=). Include it after common.h.
 */
#ifndef TROUPE_TESTS_OBSERVER_PAIR_H
#define TROUPE_TESTS_OBSERVER_PAIR_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "troupe/node.h"
#include "troupe/observer.h"

struct obs_pair {
	tr_runtime *rt, *prt; /* the first node's runtime, the second's */
	tr_node *node, *peer;
	char dir[64];
	char url[128]; /* the first node's observer, with its port */
	int port;
	char token[TR_OBSERVER_TOKEN_SIZE];
};

/* Starts nodes `name` and `peer_name` with `cookie`; `tag` names the
 * temporary directory. */
static inline void obs_pair_start(struct obs_pair *p, const char *tag,
    const char *cookie, const char *name, const char *peer_name,
    bool peer_observer)
{
	snprintf(p->dir, sizeof(p->dir), "/tmp/troupe-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(p->dir));
	char u1[128], u2[128];
	snprintf(u1, sizeof(u1), "ipc://%s/%s", p->dir, name);
	snprintf(u2, sizeof(u2), "ipc://%s/%s", p->dir, peer_name);
	const char *l1[] = {u1, NULL}, *l2[] = {u2, NULL};
	assert_rc(tr_runtime_start(&p->rt, NULL), TR_OK);
	assert_rc(tr_runtime_start(&p->prt, NULL), TR_OK);
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = name;
	o.cookie = cookie;
	o.listen = l1;
	o.observer_url = "http://127.0.0.1:0";
	assert_rc(tr_node_start(&p->node, p->rt, &o), TR_OK);
	tr_node_opts_init(&o);
	o.name = peer_name;
	o.cookie = cookie;
	o.listen = l2;
	o.observer_url = peer_observer ? "http://127.0.0.1:0" : NULL;
	assert_rc(tr_node_start(&p->peer, p->prt, &o), TR_OK);
	assert_rc(tr_node_connect(p->peer, u1, 10000, NULL), TR_OK);
	assert_rc(tr_node_observer_url(p->url, sizeof(p->url), p->node), TR_OK);
	assert_true(strncmp(p->url, "http://127.0.0.1:", 17) == 0);
	p->port = atoi(strrchr(p->url, ':') + 1);
	assert_true(p->port > 0);
	assert_rc(tr_observer_token(p->token, sizeof(p->token), cookie), TR_OK);
}

/* Stops what obs_pair_start started (what it got to), and removes the
 * directory. */
static inline void obs_pair_stop(struct obs_pair *p)
{
	if (p->peer != NULL)
		tr_node_stop(p->peer);
	if (p->node != NULL)
		tr_node_stop(p->node);
	if (p->prt != NULL)
		tr_runtime_stop(p->prt);
	if (p->rt != NULL)
		tr_runtime_stop(p->rt);
	if (p->dir[0] != '\0') {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
		assert_int_equal(system(cmd), 0);
	}
}

#endif /* TROUPE_TESTS_OBSERVER_PAIR_H */
