/*
 * Requests and calls between actors: tr_request / tr_reply, whose answer
 * is a message, and tr_call_then / tr_call_named_then, whose answer runs a
 * continuation in the caller (gen_server:call made from a gen_server, which
 * must not block).
 *
 * Both rest on the caller's pending references, kept in its extension and
 * touched only by the thread running it. A reply carries the reference of
 * the request it answers; a timeout carries the caller's reference of the
 * request or call. Whichever of the two comes first removes the entry, so
 * the other finds nothing and is dropped before handle: exactly one is
 * seen, as with gen_server:call and its alias-based late-reply protection.
 *
 * A call adds to that entry a continuation, a monitor on the callee (its
 * DOWN ends the call at once, as in gen_server:call) and, for a call by
 * name, what it takes to try again: the name, the node that holds it and
 * a copy of the request. A call by name goes through these states:
 *
 *   resolving  another node was asked which pid holds the name
 *              (the distribution layer's `whereis` op); its answer is a
 *              reply to a reference of its own, kept in the entry;
 *   waiting    the request went to the pid found, which is monitored;
 *   backoff    nobody held the name, or the pid found was dead before the
 *              request reached it: a timer to the caller itself
 *              (TR__MSG_CALL_RETRY) starts the next try.
 *
 * Every message that drives a call is a system message (a reply, a timer
 * message with TR__MF_RTIMEO, a DOWN), so the local message path pays
 * nothing for calls: the flag test it makes anyway sends these here.
 *
 * Outstanding requests are usually few, so the entries are an array
 * searched linearly.
 */
#include <stdlib.h>
#include <string.h>

#include "dist/dist.h"
#include "rt.h"

enum { C_WAITING, C_RESOLVING, C_BACKOFF };

/* The longest pause between two tries of a call by name. */
#define BACKOFF_MAX_MS 100u

struct tr__call {
	tr_call_fn fn;
	void *arg;
	uint64_t mref; /* the monitor on the callee while waiting, or 0 */
	int state;     /* C_* */
	/* Calls by name only: what to resolve, and the request to send again
	 * (the first try of a call by pid sends its request as given). */
	char *name; /* NULL: a call by pid */
	char *node; /* another node's name, or NULL for this node */
	tr_timer retry;
	uint32_t backoff_ms;
	uint32_t type;
	size_t size;
	unsigned char *data;
};

/* Per-scheduler counters are written only by their scheduler. */
static inline void bump(_Atomic uint64_t *c)
{
	atomic_store_explicit(c,
	    atomic_load_explicit(c, memory_order_relaxed) + 1,
	    memory_order_relaxed);
}

static void count_dropped(tr_runtime *rt, tr__sched *s)
{
	if (s != NULL)
		bump(&s->n_dropped);
	else
		atomic_fetch_add_explicit(
		    &rt->x_dropped, 1, memory_order_relaxed);
}

static int deliver(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *m)
{
	return s != NULL ? tr__deliver(rt, s, to, m)
	                 : tr__deliver_any(rt, to, m);
}

/* ---- the pending entries --------------------------------------------------
 */

static int pending_add(tr__actor *a, uint64_t ref, uint64_t uref,
    tr_timer timer, struct tr__call *call)
{
	tr__ext *x = tr__ext_of(a);
	if (x == NULL)
		return TR_ENOMEM;
	if (x->npending == x->cap_pending) {
		uint32_t cap = x->cap_pending ? x->cap_pending * 2 : 4;
		void *p = realloc(x->pending, cap * sizeof(*x->pending));
		if (p == NULL)
			return TR_ENOMEM;
		x->pending = p;
		x->cap_pending = cap;
	}
	struct tr__pending *p = &x->pending[x->npending++];
	p->ref = ref;
	p->uref = uref;
	p->timer = timer;
	p->call = call;
	if (call != NULL)
		x->ncalls++;
	return TR_OK;
}

/* The index of the entry awaiting an answer with `ref` (or, by_uref, of
 * the entry whose caller's reference is `ref`), or -1. */
static int pending_find(const tr__ext *x, uint64_t ref, bool by_uref)
{
	for (uint32_t i = 0; x != NULL && i < x->npending; i++)
		if ((by_uref ? x->pending[i].uref : x->pending[i].ref) == ref)
			return (int)i;
	return -1;
}

/* Takes entry i out (the array's order does not matter). */
static struct tr__pending pending_take(tr__ext *x, int i)
{
	struct tr__pending p = x->pending[i];
	x->pending[i] = x->pending[--x->npending];
	if (p.call != NULL)
		x->ncalls--;
	return p;
}

static void call_free(struct tr__call *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->node);
	free(c->data);
	free(c);
}

/* Cancels what an entry holds on others: its timers and its monitor. */
static void entry_release(
    tr_runtime *rt, tr__sched *s, tr__actor *a, const struct tr__pending *p)
{
	if (p->timer != 0)
		(void)tr_timer_cancel(rt, p->timer);
	struct tr__call *c = p->call;
	if (c == NULL)
		return;
	if (c->retry != 0)
		(void)tr_timer_cancel(rt, c->retry);
	if (c->mref != 0)
		tr__demonitor(rt, s, a, c->mref);
	c->retry = 0;
	c->mref = 0;
}

void tr__calls_free(tr_runtime *rt, tr__actor *a)
{
	tr__ext *x = a->ext;
	if (x == NULL)
		return;
	/* The monitors go with the actor's own (tr__sig_exit); the timers
	 * are cancelled here. */
	for (uint32_t i = 0; i < x->npending; i++) {
		struct tr__pending *p = &x->pending[i];
		if (p->timer != 0)
			(void)tr_timer_cancel(rt, p->timer);
		if (p->call != NULL && p->call->retry != 0)
			(void)tr_timer_cancel(rt, p->call->retry);
		call_free(p->call);
	}
	free(x->pending);
	x->pending = NULL;
	x->npending = x->cap_pending = x->ncalls = 0;
}

/* ---- requests -------------------------------------------------------------
 */

int tr_request(tr_ctx *ctx, uint64_t *ref, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms)
{
	if (ctx == NULL || (data == NULL && size != 0) || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_runtime *rt = ctx->rt;
	tr_msg *m;
	int rc = tr__msg_new(&m, rt, type, data, size);
	if (rc != TR_OK)
		return rc;
	uint64_t r = tr__new_ref(rt);
	m->sender = ctx->a->pid;
	m->ref = r;
	tr__req_mark(m);
	tr_timer timer = 0;
	if (timeout_ms >= 0) {
		rc = tr__timer_arm(rt, &timer, ctx->a->pid, TR_PID_NONE,
		    timeout_ms, 0, TR_MSG_TIMEOUT, TR__MF_RTIMEO, r, NULL, 0);
		if (rc != TR_OK) {
			tr__msg_free(m);
			return rc;
		}
	}
	rc = pending_add(ctx->a, r, r, timer, NULL);
	if (rc == TR_OK) {
		rc = deliver(rt, ctx->s, to, m);
		if (rc != TR_OK) {
			int i = pending_find(ctx->a->ext, r, false);
			if (i >= 0)
				(void)pending_take(ctx->a->ext, i);
		}
	}
	if (rc != TR_OK) {
		tr__msg_free(m);
		if (timer != 0)
			(void)tr_timer_cancel(rt, timer);
		return rc;
	}
	if (ref != NULL)
		*ref = r;
	return TR_OK;
}

int tr_reply(tr_ctx *ctx, const tr_msg *req, uint32_t type, const void *data,
    size_t size)
{
	if (ctx == NULL || req == NULL || req->ref == 0 ||
	    (data == NULL && size != 0) || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr__msg_new(&m, ctx->rt, type, data, size);
	if (rc != TR_OK)
		return rc;
	m->sender = ctx->a->pid;
	m->ref = req->ref;
	m->_flags |= TR__MF_REPLY;
	rc = deliver(ctx->rt, ctx->s, req->sender, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

/* ---- refusals --------------------------------------------------------------
 */

int tr_refusal_code(const tr_msg *m)
{
	int32_t err;
	if (m == NULL || m->type != TR_MSG_REFUSED || m->size != sizeof(err))
		return 0;
	memcpy(&err, m->data, sizeof(err));
	return err < 0 ? err : 0;
}

/* A refusal's code as the outcome of a call: never a success. */
static int refused_rc(const tr_msg *m)
{
	int err = tr_refusal_code(m);
	return err != 0 ? err : TR_EINVAL;
}

/* ---- calls: one try ---------------------------------------------------------
 */

/* Monitors `pid`, then sends it the request (`m`, taken on TR_OK, or a
 * fresh copy of the call's when NULL) under reference `r`: the monitor
 * goes first, so that a DOWN noproc means the request was never seen. */
static int attempt(tr_runtime *rt, tr__sched *s, tr__actor *a, int i,
    tr_pid pid, tr_msg *m, uint64_t r)
{
	struct tr__call *c = a->ext->pending[i].call;
	bool own = m == NULL;
	int rc;
	if (own) {
		rc = tr__msg_new(&m, rt, c->type, c->data, c->size);
		if (rc != TR_OK)
			return rc;
	}
	uint64_t mref = 0;
	rc = tr__monitor(rt, s, a, pid, &mref);
	if (rc == TR_OK) {
		m->sender = a->pid;
		m->ref = r;
		tr__req_mark(m);
		rc = deliver(rt, s, pid, m);
		if (rc != TR_OK)
			/* Its DOWN, if one is on its way, is dropped now. */
			tr__demonitor(rt, s, a, mref);
	}
	if (rc != TR_OK) {
		if (own)
			tr__msg_free(m);
		return rc;
	}
	/* Pending entries do not move while the actor sends. */
	a->ext->pending[i].ref = r;
	c->mref = mref;
	c->state = C_WAITING;
	return TR_OK;
}

/* Waits before the next try of a call by name. */
static int backoff(tr_runtime *rt, tr__actor *a, int i)
{
	struct tr__pending *p = &a->ext->pending[i];
	struct tr__call *c = p->call;
	uint32_t d = c->backoff_ms != 0 ? c->backoff_ms : 1;
	c->backoff_ms = d * 2 < BACKOFF_MAX_MS ? d * 2 : BACKOFF_MAX_MS;
	c->state = C_BACKOFF;
	return tr__timer_arm(rt, &c->retry, a->pid, TR_PID_NONE, d, 0,
	    TR__MSG_CALL_RETRY, TR__MF_RTIMEO, p->uref, NULL, 0);
}

/* One try of a call by name: resolve, then call the pid found, or wait and
 * try again. TR_OK: the call goes on; anything else ends it. */
static int try_named(tr_runtime *rt, tr__sched *s, tr__actor *a, int i)
{
	struct tr__call *c = a->ext->pending[i].call;
	if (c->node != NULL) {
		uint64_t rr = tr__new_ref(rt);
		/* The layer's ops run inside a turn or an ext section, which
		 * is what lets it detach (dist.h). */
		unsigned rec = 0;
		if (s == NULL)
			tr__ext_enter(rt, &rec);
		/* Acquire: pairs with the release store in tr__dist_attach. */
		const tr__dist_ops *ops =
		    atomic_load_explicit(&rt->dist_ops, memory_order_acquire);
		int rc = TR_ENOPROC; /* the node layer is gone */
		if (ops != NULL && ops->whereis != NULL)
			rc = ops->whereis(
			    rt->dist_arg, a->pid, c->node, c->name, rr);
		if (s == NULL)
			tr__ext_exit(rt, rec);
		if (rc != TR_OK)
			return rc;
		if (s != NULL)
			s->dist_dirty = true; /* flushed at the turn's end */
		a->ext->pending[i].ref = rr;
		c->state = C_RESOLVING;
		return TR_OK;
	}
	tr_pid pid;
	if (tr_whereis(&pid, rt, c->name) == TR_OK) {
		int rc = attempt(rt, s, a, i, pid, NULL, tr__new_ref(rt));
		if (rc != TR_ENOPROC)
			return rc;
		/* The name still points at an actor that is exiting: it is
		 * released before the actor's signals go out, soon. */
	}
	return backoff(rt, a, i);
}

/* Ends call i with `status`: releases what it holds, then runs its
 * continuation in the caller, in place of handle. */
static void finish(
    tr__sched *s, tr__actor *a, int i, int status, const tr_msg *m)
{
	tr__ext *x = a->ext;
	struct tr__pending p = pending_take(x, i);
	entry_release(s->rt, s, a, &p);
	struct tr__call *c = p.call;
	/* The extension lives as long as the actor; the continuation may
	 * start calls (the array may move, the entry is out of it). */
	x->in_cont = true;
	int rc = c->fn(&s->ctx, a->state, status, m, c->arg);
	x->in_cont = false;
	call_free(c);
	if (TR_UNLIKELY(rc != 0)) {
		a->status = (a->status & ~0xffu) | TR__A_EXITING;
		a->reason = rc;
	}
}

/* A call's reply, lookup answer, retry timer or deadline. */
static void call_event(tr__sched *s, tr__actor *a, int i, tr_msg *m, bool reply)
{
	tr_runtime *rt = s->rt;
	struct tr__pending *p = &a->ext->pending[i];
	struct tr__call *c = p->call;
	int rc;
	if (reply && c->state == C_RESOLVING) {
		int32_t err = TR_EINVAL;
		if (m->type == TR__DIST_WHEREIS_REPLY && m->size == sizeof(err))
			memcpy(&err, m->data, sizeof(err));
		if (err == TR_OK && !tr_pid_is_none(m->sender)) {
			rc = attempt(
			    rt, s, a, i, m->sender, NULL, tr__new_ref(rt));
			if (rc == TR_ENOPROC)
				rc = backoff(rt, a, i);
		} else if (err == TR_ENOENT) {
			rc = backoff(rt, a, i);
		} else {
			rc = TR_ENOPROC;
		}
		if (rc != TR_OK)
			finish(s, a, i, rc, NULL);
		return;
	}
	if (reply) {
		finish(s, a, i,
		    m->type == TR_MSG_REFUSED ? refused_rc(m) : TR_OK, m);
		return;
	}
	if (m->type == TR__MSG_CALL_RETRY) {
		if (c->state != C_BACKOFF)
			return; /* a try is under way already */
		c->retry = 0;   /* it fired */
		rc = try_named(rt, s, a, i);
		if (rc != TR_OK)
			finish(s, a, i, rc, NULL);
		return;
	}
	/* The deadline: with a request out, it went unanswered; otherwise
	 * nobody was found to take it. */
	p->timer = 0; /* it fired */
	finish(
	    s, a, i, c->state == C_WAITING ? TR_ETIMEDOUT : TR_ENOPROC, NULL);
}

bool tr__call_dispatch(tr__sched *s, tr__actor *a, tr_msg *m)
{
	tr__ext *x = a->ext;
	bool reply = (m->_flags & TR__MF_REPLY) != 0;
	/* Replies carry the reference of the try they answer; timer
	 * messages the caller's reference. */
	int i = pending_find(x, m->ref, !reply);
	if (i < 0) {
		/* A reply after its timeout, or a timeout after its reply:
		 * nobody waits for it any more. */
		count_dropped(s->rt, s);
		return false;
	}
	if (x->pending[i].call == NULL) {
		struct tr__pending p = pending_take(x, i);
		if (reply && p.timer != 0)
			(void)tr_timer_cancel(s->rt, p.timer);
		return true;
	}
	call_event(s, a, i, m, reply);
	return false;
}

bool tr__call_down(tr__sched *s, tr__actor *a, tr_msg *m)
{
	tr__ext *x = a->ext;
	if (x == NULL || x->ncalls == 0)
		return false;
	int i = -1;
	for (uint32_t k = 0; k < x->npending; k++) {
		struct tr__call *c = x->pending[k].call;
		if (c != NULL && c->mref == m->ref && c->mref != 0) {
			i = (int)k;
			break;
		}
	}
	if (i < 0)
		return false;
	struct tr__call *c = x->pending[i].call;
	c->mref = 0; /* tr__sig_dispatch took the monitor off */
	tr_exit_info info;
	memset(&info, 0, sizeof(info));
	if (m->size == sizeof(info))
		memcpy(&info, m->data, sizeof(info));
	if (c->name != NULL && c->state == C_WAITING &&
	    info.reason == TR_REASON_NOPROC) {
		/* The callee was gone before the monitor reached it, so
		 * before the request did, which followed it: nobody saw the
		 * request, and sending it again cannot run it twice. */
		int rc = try_named(s->rt, s, a, i);
		if (rc != TR_OK)
			finish(s, a, i, rc, NULL);
		return true;
	}
	finish(s, a, i, TR_ENOPROC, m);
	return true;
}

/* ---- calls: the public calls
 * -------------------------------------------------
 */

/* A new call entry (its continuation set) with the deadline armed; the
 * caller fills it in and makes the first try. */
static int call_begin(
    tr_ctx *ctx, struct tr__call *c, int64_t timeout_ms, uint64_t *r, int *idx)
{
	tr_runtime *rt = ctx->rt;
	*r = tr__new_ref(rt);
	tr_timer timer = 0;
	if (timeout_ms >= 0) {
		int rc = tr__timer_arm(rt, &timer, ctx->a->pid, TR_PID_NONE,
		    timeout_ms, 0, TR_MSG_TIMEOUT, TR__MF_RTIMEO, *r, NULL, 0);
		if (rc != TR_OK)
			return rc;
	}
	int rc = pending_add(ctx->a, *r, *r, timer, c);
	if (rc != TR_OK) {
		if (timer != 0)
			(void)tr_timer_cancel(rt, timer);
		return rc;
	}
	*idx = (int)ctx->a->ext->npending - 1;
	return TR_OK;
}

/* Undoes call_begin after a first try that failed; `c` is freed. */
static void call_abort(tr_ctx *ctx, int i)
{
	struct tr__pending p = pending_take(ctx->a->ext, i);
	entry_release(ctx->rt, ctx->s, ctx->a, &p);
	call_free(p.call);
}

int tr_call_then(tr_ctx *ctx, uint64_t *ref, tr_pid to, uint32_t type,
    const void *data, size_t size, int64_t timeout_ms, tr_call_fn fn, void *arg)
{
	if (ctx == NULL || fn == NULL || (data == NULL && size != 0) ||
	    type >= TR_MSG_SYSTEM || tr_pid_is_none(to))
		return TR_EINVAL;
	tr_runtime *rt = ctx->rt;
	tr_msg *m;
	int rc = tr__msg_new(&m, rt, type, data, size);
	if (rc != TR_OK)
		return rc;
	struct tr__call *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		tr__msg_free(m);
		return TR_ENOMEM;
	}
	c->fn = fn;
	c->arg = arg;
	uint64_t r;
	int i;
	rc = call_begin(ctx, c, timeout_ms, &r, &i);
	if (rc != TR_OK) {
		tr__msg_free(m);
		call_free(c);
		return rc;
	}
	rc = attempt(rt, ctx->s, ctx->a, i, to, m, r);
	if (rc != TR_OK) {
		tr__msg_free(m);
		call_abort(ctx, i);
		return rc;
	}
	if (ref != NULL)
		*ref = r;
	return TR_OK;
}

int tr_call_named_then(tr_ctx *ctx, uint64_t *ref, const char *node_name,
    const char *name, uint32_t type, const void *data, size_t size,
    int64_t timeout_ms, tr_call_fn fn, void *arg)
{
	if (ctx == NULL || fn == NULL || !tr_name_valid(name) ||
	    (data == NULL && size != 0) || type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	tr_runtime *rt = ctx->rt;
	if (size > rt->opts.max_msg_size || size > UINT32_MAX)
		return TR_EMSGSIZE;
	const char *self = tr__node_name(rt);
	if (node_name != NULL && self != NULL && strcmp(node_name, self) == 0)
		node_name = NULL; /* our own name: a local call */
	if (node_name != NULL) {
		if (node_name[0] == '\0')
			return TR_EINVAL;
		/* Acquire: pairs with the release store in tr__dist_attach. */
		const tr__dist_ops *ops =
		    atomic_load_explicit(&rt->dist_ops, memory_order_acquire);
		if (ops == NULL || ops->whereis == NULL)
			return TR_ENOTSUP;
		if (tr_msg_type_local(type))
			return TR_EINVAL; /* it could never cross */
	}
	struct tr__call *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return TR_ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->type = type;
	c->size = size;
	c->name = strdup(name);
	c->node = node_name != NULL ? strdup(node_name) : NULL;
	c->data = size != 0 ? malloc(size) : NULL;
	if (c->name == NULL || (node_name != NULL && c->node == NULL) ||
	    (size != 0 && c->data == NULL)) {
		call_free(c);
		return TR_ENOMEM;
	}
	if (size != 0)
		memcpy(c->data, data, size);
	uint64_t r;
	int i;
	int rc = call_begin(ctx, c, timeout_ms, &r, &i);
	if (rc != TR_OK) {
		call_free(c);
		return rc;
	}
	rc = try_named(rt, ctx->s, ctx->a, i);
	if (rc != TR_OK) {
		call_abort(ctx, i);
		return rc;
	}
	if (ref != NULL)
		*ref = r;
	return TR_OK;
}

int tr_call_cancel(tr_ctx *ctx, uint64_t ref)
{
	if (ctx == NULL || ref == 0)
		return TR_EINVAL;
	int i = pending_find(ctx->a->ext, ref, true);
	if (i < 0)
		return TR_ENOENT;
	struct tr__pending p = pending_take(ctx->a->ext, i);
	entry_release(ctx->rt, ctx->s, ctx->a, &p);
	call_free(p.call);
	return TR_OK;
}
