/*
 * Administration, the callers' side: the request builders, the reply
 * decoder, and the blocking admin calls made of them.
 *
 * A request is a tr_sup_request whose every string is held in the request
 * itself, so that the supervisor never reads the caller's memory after the
 * send but for what a spec borrows by contract (its behaviour, an argument
 * given by address, a blob argument; sup.h). That is what lets a caller
 * give up: a blocking call that times out, or an actor that sent its
 * request and moved on, may reuse its buffers at once.
 *
 * The blocking calls are tr_call()s, bounded by their timeout like
 * gen_server:call; an actor gets TR_EINVAL from them (it would stall its
 * scheduler) and sends the same requests with tr_sup_request_send.
 */
#include <string.h>

#include "abi.h"
#include "sup_int.h"

/* ---- building requests -------------------------------------------------- */

/* Copies an optional name into a request's field. */
static int put_name(char *field, const char *name)
{
	memset(field, 0, TR_NAME_MAX + 1);
	if (name == NULL)
		return TR_OK;
	if (!tr__sup_valid_id(name))
		return TR_EINVAL;
	memcpy(field, name, strlen(name));
	return TR_OK;
}

static int req_init(tr_sup_request *q, uint32_t type)
{
	if (q == NULL)
		return TR_EINVAL;
	memset(q, 0, sizeof(*q));
	q->type = type;
	return TR_OK;
}

static int req_id(tr_sup_request *q, uint32_t type, const char *id)
{
	if (req_init(q, type) != TR_OK)
		return TR_EINVAL;
	if (id == NULL || put_name(q->id, id) != TR_OK) {
		q->type = 0;
		return TR_EINVAL;
	}
	return TR_OK;
}

int tr_sup_req_start_child(
    tr_sup_request *q, const tr_child_spec *spec, void *arg)
{
	if (req_init(q, TR_SUP_REQ_START_CHILD) != TR_OK)
		return TR_EINVAL;
	q->arg = arg;
	if (spec == NULL)
		return TR_OK;
	if (spec->struct_size < TR_CHILD_SPEC_V1_SIZE || spec->id == NULL ||
	    put_name(q->id, spec->id) != TR_OK ||
	    put_name(q->start_name, spec->start_name) != TR_OK ||
	    put_name(q->name, spec->name) != TR_OK) {
		memset(q, 0, sizeof(*q));
		return TR_EINVAL;
	}
	/* The request holds the spec in the library's own layout. */
	if (tr__sup_spec_in(&q->spec, spec) != TR_OK) {
		memset(q, 0, sizeof(*q));
		return TR_EINVAL;
	}
	q->has_spec = true;
	q->spec.id = NULL;
	q->spec.start_name = NULL;
	q->spec.name = NULL;
	return TR_OK;
}

int tr_sup_req_terminate_child(tr_sup_request *q, const char *id)
{
	return req_id(q, TR_SUP_REQ_TERMINATE_CHILD, id);
}

int tr_sup_req_terminate_pid(tr_sup_request *q, tr_pid child)
{
	if (req_init(q, TR_SUP_REQ_TERMINATE_PID) != TR_OK)
		return TR_EINVAL;
	q->pid = child;
	return TR_OK;
}

int tr_sup_req_restart_child(tr_sup_request *q, const char *id)
{
	return req_id(q, TR_SUP_REQ_RESTART_CHILD, id);
}

int tr_sup_req_delete_child(tr_sup_request *q, const char *id)
{
	return req_id(q, TR_SUP_REQ_DELETE_CHILD, id);
}

int tr_sup_req_which_children(tr_sup_request *q, size_t cap)
{
	if (req_init(q, TR_SUP_REQ_WHICH_CHILDREN) != TR_OK)
		return TR_EINVAL;
	q->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	return TR_OK;
}

int tr_sup_req_count_children(tr_sup_request *q)
{
	return req_init(q, TR_SUP_REQ_COUNT_CHILDREN);
}

static bool req_type_ok(uint32_t type)
{
	return type >= TR_SUP_REQ_START_CHILD && type <= TR_SUP_REQ_INFO;
}

int tr_sup_request_send(tr_ctx *ctx, uint64_t *ref, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms)
{
	if (ctx == NULL || q == NULL || !req_type_ok(q->type))
		return TR_EINVAL;
	return tr_request(ctx, ref, sup, q->type, q, sizeof(*q), timeout_ms);
}

/* ---- decoding replies --------------------------------------------------- */

int tr__sup_reply_kind(int32_t *err, const tr_msg *reply, uint32_t type)
{
	*err = 0;
	if (reply->type == type)
		return 1;
	if (reply->type == TR_MSG_TIMEOUT) {
		*err = TR_ETIMEDOUT;
		return 0;
	}
	*err = tr_refusal_code(reply);
	return *err != 0 ? 0 : -1;
}

int tr_sup_reply_decode(tr_sup_result *out, const tr_msg *reply)
{
	if (out == NULL || reply == NULL)
		return TR_EINVAL;
	memset(out, 0, sizeof(*out));
	int32_t err;
	int kind = tr__sup_reply_kind(&err, reply, TR_SUP_REPLY);
	if (kind <= 0) {
		out->err = err;
		return kind == 0 ? TR_OK : TR_EINVAL;
	}
	if (reply->size < sizeof(tr_sup_reply))
		return TR_EINVAL;
	/* The payload starts 16-byte aligned (troupe.h), so the reply and
	 * its entries are read in place. */
	const tr_sup_reply *r = (const tr_sup_reply *)reply->data;
	size_t room = (reply->size - sizeof(*r)) / sizeof(tr_child_info);
	if (r->err > 0 || r->n > room || r->n > r->total)
		return TR_EINVAL;
	out->err = r->err;
	out->init_reason = r->err == TR_EINIT ? r->init_reason : 0;
	out->pid = r->pid;
	out->counts = r->counts;
	out->total = r->total;
	out->n = r->n;
	out->children = r->n > 0 ? r->children : NULL;
	return TR_OK;
}

/* ---- the blocking calls ------------------------------------------------- */

/* Sends a built request and waits up to timeout_ms for its answer. On TR_OK
 * *res holds the decoded answer (whose own err may be an error) and the
 * caller owns *m, into which res->children points. */
static int call(tr_msg **m, tr_sup_result *res, tr_runtime *rt, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms)
{
	memset(res, 0, sizeof(*res));
	if (rt == NULL)
		return TR_EINVAL;
	int rc = tr_call(m, rt, sup, q->type, q, sizeof(*q), timeout_ms);
	if (rc != TR_OK)
		return rc;
	if ((*m)->type != TR_SUP_REPLY ||
	    tr_sup_reply_decode(res, *m) != TR_OK) {
		tr_msg_free(*m);
		return TR_EINVAL;
	}
	return TR_OK;
}

/* A call whose answer is all in the result's fixed part. */
static int call_simple(tr_sup_result *res, tr_runtime *rt, tr_pid sup,
    const tr_sup_request *q, int64_t timeout_ms)
{
	tr_msg *m;
	int rc = call(&m, res, rt, sup, q, timeout_ms);
	if (rc != TR_OK)
		return rc;
	res->children = NULL;
	tr_msg_free(m);
	return res->err;
}

/* The answers that carry a child: its pid, or the init reason. */
static int child_answer(
    int rc, const tr_sup_result *res, tr_pid *child, int *init_reason)
{
	if (rc == TR_EINIT && init_reason != NULL)
		*init_reason = res->init_reason;
	if (child != NULL &&
	    (rc == TR_OK || rc == TR_EALREADY || rc == TR_ERUNNING))
		*child = res->pid;
	return rc;
}

int tr_sup_start_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const tr_child_spec *spec, void *arg, int64_t timeout_ms, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_request q;
	if (tr_sup_req_start_child(&q, spec, arg) != TR_OK)
		return TR_EINVAL;
	tr_sup_result res;
	int rc = call_simple(&res, rt, sup, &q, timeout_ms);
	return child_answer(rc, &res, child, init_reason);
}

/* An id that cannot name a child is not found, as OTP answers for any
 * term; only a NULL one is a caller's error. */
static int id_call(tr_runtime *rt, tr_pid sup, const char *id, uint32_t type,
    int64_t timeout_ms, tr_sup_result *res)
{
	tr_sup_request q;
	if (req_id(&q, type, id) != TR_OK)
		return id == NULL ? TR_EINVAL : TR_ENOENT;
	return call_simple(res, rt, sup, &q, timeout_ms);
}

int tr_sup_terminate_child(
    tr_runtime *rt, tr_pid sup, const char *id, int64_t timeout_ms)
{
	tr_sup_result res;
	return id_call(
	    rt, sup, id, TR_SUP_REQ_TERMINATE_CHILD, timeout_ms, &res);
}

int tr_sup_terminate_pid(
    tr_runtime *rt, tr_pid sup, tr_pid child, int64_t timeout_ms)
{
	tr_sup_request q;
	(void)tr_sup_req_terminate_pid(&q, child);
	tr_sup_result res;
	return call_simple(&res, rt, sup, &q, timeout_ms);
}

int tr_sup_restart_child(tr_pid *child, tr_runtime *rt, tr_pid sup,
    const char *id, int64_t timeout_ms, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_result res;
	int rc =
	    id_call(rt, sup, id, TR_SUP_REQ_RESTART_CHILD, timeout_ms, &res);
	return child_answer(rc, &res, child, init_reason);
}

int tr_sup_delete_child(
    tr_runtime *rt, tr_pid sup, const char *id, int64_t timeout_ms)
{
	tr_sup_result res;
	return id_call(rt, sup, id, TR_SUP_REQ_DELETE_CHILD, timeout_ms, &res);
}

int tr_sup_which_children(tr_child_info *out, size_t cap, size_t *n,
    tr_runtime *rt, tr_pid sup, int64_t timeout_ms)
{
	if (out == NULL && cap != 0)
		return TR_EINVAL;
	/* The caller's entries have the caller's size: out[0] says which. */
	size_t stride = cap != 0 ? out[0].struct_size : 0;
	if (cap != 0 && tr__struct_out_ok(out, TR_CHILD_INFO_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_sup_request q;
	(void)tr_sup_req_which_children(&q, cap);
	tr_msg *m;
	tr_sup_result res;
	int rc = call(&m, &res, rt, sup, &q, timeout_ms);
	if (rc != TR_OK)
		return rc;
	rc = res.err;
	if (rc == TR_OK) {
		size_t k = res.n < cap ? res.n : cap;
		for (size_t i = 0; i < k; i++) {
			tr_child_info *o =
			    (tr_child_info *)((char *)out + i * stride);
			o->struct_size = (uint32_t)stride;
			tr__struct_out(
			    o, &res.children[i], sizeof(tr_child_info));
		}
		if (n != NULL)
			*n = res.total;
	}
	tr_msg_free(m);
	return rc;
}

int tr_sup_count_children(
    tr_child_counts *counts, tr_runtime *rt, tr_pid sup, int64_t timeout_ms)
{
	if (tr__struct_out_ok(counts, TR_CHILD_COUNTS_V1_SIZE) != TR_OK)
		return TR_EINVAL;
	tr_sup_request q;
	(void)tr_sup_req_count_children(&q);
	tr_sup_result res;
	int rc = call_simple(&res, rt, sup, &q, timeout_ms);
	if (rc == TR_OK)
		tr__struct_out(counts, &res.counts, sizeof(res.counts));
	return rc;
}
