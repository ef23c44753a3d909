/*
 * The public API of troupe/global.h: registrations are requests to the
 * local name server (global_server.c); lookups read the table under its
 * read lock, with no message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "global_int.h"

static struct tr__global *global_of(tr_node *n)
{
	return n != NULL ? n->global : NULL;
}

static int req_make(struct tr__greq *rq, struct tr__global *g, const char *name,
    tr_pid pid, const tr_global_opts *uopts, int64_t timeout_ms)
{
	tr_global_opts o;
	tr_global_opts_init(&o);
	if (uopts != NULL) {
		int rc =
		    tr__struct_in(&o, sizeof(o), uopts, TR_GLOBAL_OPTS_V1_SIZE);
		if (rc != TR_OK)
			return rc;
	}
	if (!tr__gname_ok(name) || tr_pid_is_none(pid) || timeout_ms < 0 ||
	    o.method < TR_GLOBAL_KILL || o.method > TR_GLOBAL_UNREGISTER)
		return TR_EINVAL;
	if (pid.node == 0 && !tr_is_alive(g->n->rt, pid))
		return TR_ENOPROC;
	memset(rq, 0, sizeof(*rq));
	rq->pid = pid;
	rq->method = o.method;
	rq->timeout_ms = timeout_ms;
	memcpy(rq->name, name, strlen(name) + 1);
	return TR_OK;
}

static int64_t wait_ms(int64_t timeout_ms)
{
	return timeout_ms > INT64_MAX - TR__GLOBAL_SLACK_MS
	           ? -1
	           : timeout_ms + TR__GLOBAL_SLACK_MS;
}

int tr_global_register(tr_node *n, const char *name, tr_pid pid,
    const tr_global_opts *opts, int64_t timeout_ms)
{
	struct tr__global *g = global_of(n);
	if (n == NULL || name == NULL)
		return TR_EINVAL;
	if (g == NULL)
		return TR_ECLOSED;
	struct tr__greq rq;
	int rc = req_make(&rq, g, name, pid, opts, timeout_ms);
	if (rc != TR_OK)
		return rc;
	tr_msg *reply = NULL;
	rc = tr_call(&reply, n->rt, g->server, TR__GLOBAL_L_REG, &rq,
	    sizeof(rq), wait_ms(timeout_ms));
	tr_msg_free(reply);
	return rc == TR_ENOPROC && !tr_is_alive(n->rt, g->server) ? TR_ECLOSED
	                                                          : rc;
}

int tr_global_register_then(tr_ctx *ctx, uint64_t *ref, const char *name,
    tr_pid pid, const tr_global_opts *opts, int64_t timeout_ms, tr_call_fn fn,
    void *arg)
{
	if (ctx == NULL || fn == NULL || name == NULL)
		return TR_EINVAL;
	tr_node *n = tr_node_of(tr_runtime_of(ctx));
	struct tr__global *g = global_of(n);
	if (g == NULL)
		return TR_ENOTSUP;
	struct tr__greq rq;
	int rc = req_make(&rq, g, name, pid, opts, timeout_ms);
	if (rc != TR_OK)
		return rc;
	return tr_call_then(ctx, ref, g->server, TR__GLOBAL_L_REG, &rq,
	    sizeof(rq), wait_ms(timeout_ms), fn, arg);
}

int tr_global_unregister(tr_node *n, const char *name)
{
	struct tr__global *g = global_of(n);
	if (n == NULL || !tr__gname_ok(name))
		return TR_EINVAL;
	if (g == NULL)
		return TR_ECLOSED;
	tr_pid pid;
	if (tr_global_whereis(&pid, n, name) != TR_OK)
		return TR_ENOENT;
	struct tr__greq rq;
	memset(&rq, 0, sizeof(rq));
	memcpy(rq.name, name, strlen(name) + 1);
	int rc = tr_post(n->rt, g->server, TR__GLOBAL_L_UNREG, &rq, sizeof(rq));
	return rc == TR_ENOPROC ? TR_ECLOSED : rc;
}

int tr_global_whereis(tr_pid *pid, tr_node *n, const char *name)
{
	struct tr__global *g = global_of(n);
	if (pid == NULL || n == NULL || !tr__gname_ok(name))
		return TR_EINVAL;
	*pid = TR_PID_NONE;
	if (g == NULL)
		return TR_ENOENT;
	pthread_rwlock_rdlock(&g->tab.lock);
	struct tr__gentry *e = tr__gtab_find(&g->tab, name);
	if (e != NULL)
		*pid = e->pid;
	pthread_rwlock_unlock(&g->tab.lock);
	return e != NULL ? TR_OK : TR_ENOENT;
}

int tr_global_send(
    tr_ctx *ctx, const char *name, uint32_t type, const void *data, size_t size)
{
	if (ctx == NULL)
		return TR_EINVAL;
	tr_pid pid;
	int rc = tr_global_whereis(&pid, tr_node_of(tr_runtime_of(ctx)), name);
	return rc == TR_OK ? tr_send(ctx, pid, type, data, size) : rc;
}

int tr_global_post(
    tr_node *n, const char *name, uint32_t type, const void *data, size_t size)
{
	tr_pid pid;
	int rc = tr_global_whereis(&pid, n, name);
	return rc == TR_OK ? tr_post(n->rt, pid, type, data, size) : rc;
}

int tr_global_names(tr_global_info *out, size_t cap, size_t *count, tr_node *n)
{
	if (n == NULL || count == NULL ||
	    (cap > 0 &&
	        tr__struct_out_ok(out, TR_GLOBAL_INFO_V1_SIZE) != TR_OK))
		return TR_EINVAL;
	struct tr__global *g = global_of(n);
	*count = 0;
	if (g == NULL)
		return TR_OK;
	uint32_t stride = cap > 0 ? out[0].struct_size : 0;
	size_t k = 0;
	pthread_rwlock_rdlock(&g->tab.lock);
	for (uint32_t i = 0; i < g->tab.nb; i++)
		for (struct tr__gentry *e = g->tab.byname[i]; e != NULL;
		     e = e->next) {
			if (k < cap) {
				tr_global_info in;
				tr_global_info_init(&in);
				snprintf(
				    in.name, sizeof(in.name), "%s", e->name);
				in.pid = e->pid;
				in.registered_ms = e->at_ms;
				tr_global_info *dst =
				    (tr_global_info *)((unsigned char *)out +
				                       k * stride);
				memcpy(dst, &stride, sizeof(stride));
				tr__struct_out(dst, &in, sizeof(in));
			}
			k++;
		}
	pthread_rwlock_unlock(&g->tab.lock);
	*count = k;
	return TR_OK;
}

int tr_global_stats_get(tr_global_stats *out, tr_node *n)
{
	if (n == NULL ||
	    tr__struct_out_ok(out, TR_GLOBAL_STATS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_global_stats st;
	tr_global_stats_init(&st);
	struct tr__global *g = global_of(n);
	if (g != NULL) {
		st.names =
		    atomic_load_explicit(&g->tab.n, memory_order_relaxed);
		st.malformed =
		    atomic_load_explicit(&g->n_malformed, memory_order_relaxed);
		st.names_refused =
		    atomic_load_explicit(&g->n_refused, memory_order_relaxed);
		st.conflicts =
		    atomic_load_explicit(&g->n_conflicts, memory_order_relaxed);
		st.claims_retried =
		    atomic_load_explicit(&g->n_retried, memory_order_relaxed);
		st.grants_expired =
		    atomic_load_explicit(&g->n_expired, memory_order_relaxed);
	}
	tr__struct_out(out, &st, sizeof(st));
	return TR_OK;
}
