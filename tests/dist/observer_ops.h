/*
 * What the observer's operation tests share (test_observer_sup.c,
 * test_observer_ops.c): two nodes, alpha with the test tree and beta with
 * its observer on too (observer_pair.h, observer_tree.h), alpha's
 * observer log lines kept, and a plain HTTP client. Include it after
 * common.h.
 */
#ifndef TROUPE_TESTS_OBSERVER_OPS_H
#define TROUPE_TESTS_OBSERVER_OPS_H

#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "http_client.h"
#include "observer_pair.h"
#include "observer_tree.h"
#include "troupe/node.h"
#include "troupe/observer.h"

#define COOKIE "observer-ops-secret"
#define WAIT_MS 30000

struct env {
	struct obs_pair p;
	tr_pid root;
};

/* Set to let test_actors' stuck actor go. */
static _Atomic int go __attribute__((unused));

/* The log lines of alpha that come from the observer. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_text[16384];

static inline void keep_log(void *user, const char *line)
{
	(void)user;
	if (strstr(line, "observer:") == NULL)
		return;
	pthread_mutex_lock(&log_lock);
	size_t l = strlen(log_text);
	snprintf(log_text + l, sizeof(log_text) - l, "%s\n", line);
	pthread_mutex_unlock(&log_lock);
}

static inline bool logged(const char *what)
{
	pthread_mutex_lock(&log_lock);
	bool yes = strstr(log_text, what) != NULL;
	pthread_mutex_unlock(&log_lock);
	return yes;
}

static inline int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	alarm(120);
	log_text[0] = '\0';
	obs_pair_start(&e->p, "obsops", COOKIE, "alpha", "beta", true);
	tr_runtime_set_log(e->p.rt, keep_log, NULL);
	obs_tree_start(e->p.rt, &e->root);
	*state = e;
	return 0;
}

static inline int teardown(void **state)
{
	struct env *e = *state;
	atomic_store(&go, 1); /* no actor left stuck (test_actors) */
	(void)tr_kill(e->p.rt, e->root, TR_REASON_SHUTDOWN);
	obs_pair_stop(&e->p);
	free(e);
	alarm(0);
	return 0;
}

/* One request; the status into *status, the body parsed (NULL if it is
 * not JSON). */
static inline json_t *call(struct env *e, const char *method, const char *path,
    bool token, int *status)
{
	char auth[128], err[256] = "";
	snprintf(auth, sizeof(auth), "Bearer %s", e->p.token);
	struct wd_res r;
	if (wd_http(e->p.port, method, path, token ? auth : NULL, NULL, WAIT_MS,
	        &r, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	*status = r.status;
	json_t *j = json_loads(r.body, 0, NULL);
	free(r.body);
	return j;
}

static inline json_t *get_ok(struct env *e, const char *path)
{
	int st;
	json_t *j = call(e, "GET", path, true, &st);
	assert_int_equal(st, 200);
	assert_non_null(j);
	return j;
}

static inline void pid_text(char *buf, size_t cap, tr_pid p)
{
	snprintf(buf, cap, "%u.%u.%u", p.node, p.slot, p.gen);
}

#endif /* TROUPE_TESTS_OBSERVER_OPS_H */
