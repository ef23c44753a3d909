/*
 * Links, monitors and exit signals, with Erlang/OTP's semantics.
 *
 * Signals travel through the target's mailbox as system messages, so a
 * signal and the messages of the same sender keep their order, as Erlang
 * promises per pair. The exception is tr_kill(pid, TR_REASON_KILL): it also
 * raises the target's kill_pending word, which the target checks at the
 * start of each turn, so a kill takes effect within one batch even behind
 * a flooded mailbox.
 *
 * Each side keeps its own view: an actor's links, the monitors on it (its
 * watchers) and the monitors it holds (what it is watching) live in its
 * extension and are touched only by the thread running it. That is what
 * makes "no EXIT after tr_unlink returns" and "no DOWN after tr_demonitor
 * returns" cheap: the signal or DOWN still arrives, but is dropped on
 * arrival because the local view no longer has the link or the monitor.
 *
 * Lists are arrays scanned linearly: an actor has a handful of links and
 * monitors; a supervisor with thousands of children pays O(children) per
 * child exit, which stays far below the cost of the restart itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt.h"

/* ---- the extension's lists ------------------------------------------------
 */

tr__ext *tr__ext_of(tr__actor *a)
{
	if (a->ext == NULL)
		a->ext = calloc(1, sizeof(tr__ext));
	return a->ext;
}

static bool grow(void **v, uint32_t n, uint32_t *cap, size_t elem)
{
	if (n < *cap)
		return true;
	uint32_t c = *cap ? *cap * 2 : 4;
	void *p = realloc(*v, c * elem);
	if (p == NULL)
		return false;
	*v = p;
	*cap = c;
	return true;
}

static bool links_has(const tr__ext *x, tr_pid p)
{
	for (uint32_t i = 0; x != NULL && i < x->nlinks; i++)
		if (tr_pid_eq(x->links[i], p))
			return true;
	return false;
}

static int links_add(tr__actor *a, tr_pid p)
{
	tr__ext *x = tr__ext_of(a);
	if (x == NULL)
		return TR_ENOMEM;
	if (links_has(x, p))
		return TR_OK;
	if (!grow((void **)&x->links, x->nlinks, &x->cap_links,
	        sizeof(*x->links)))
		return TR_ENOMEM;
	x->links[x->nlinks++] = p;
	return TR_OK;
}

static bool links_remove(tr__actor *a, tr_pid p)
{
	tr__ext *x = a->ext;
	for (uint32_t i = 0; x != NULL && i < x->nlinks; i++) {
		if (tr_pid_eq(x->links[i], p)) {
			x->links[i] = x->links[--x->nlinks];
			return true;
		}
	}
	return false;
}

static int mon_add(
    struct tr__mon **v, uint32_t *n, uint32_t *cap, uint64_t ref, tr_pid p)
{
	if (!grow((void **)v, *n, cap, sizeof(**v)))
		return TR_ENOMEM;
	(*v)[*n].ref = ref;
	(*v)[*n].pid = p;
	(*n)++;
	return TR_OK;
}

static bool mon_remove(
    struct tr__mon *v, uint32_t *n, uint64_t ref, tr_pid *pid)
{
	for (uint32_t i = 0; i < *n; i++) {
		if (v[i].ref == ref) {
			if (pid != NULL)
				*pid = v[i].pid;
			v[i] = v[--*n];
			return true;
		}
	}
	return false;
}

/* ---- sending signals
 * --------------------------------------------------------- */

static int deliver(tr_runtime *rt, tr__sched *s, tr_pid to, tr_msg *m)
{
	int rc =
	    s != NULL ? tr__deliver(rt, s, to, m) : tr__deliver_any(rt, to, m);
	if (rc != TR_OK)
		tr__msg_free(m);
	return rc;
}

int tr__sig_send(tr_runtime *rt, tr__sched *s, tr_pid from, tr_pid to,
    uint32_t kind, uint32_t flags, uint64_t ref, const tr_exit_info *info)
{
	tr_msg *m;
	int rc =
	    tr__msg_new_sys(&m, kind, info, info != NULL ? sizeof(*info) : 0);
	if (rc != TR_OK)
		return rc;
	m->sender = from;
	m->ref = ref;
	m->_flags |= TR__MF_SIGNAL | flags;
	return deliver(rt, s, to, m);
}

static int down_send(
    tr_runtime *rt, tr__sched *s, tr_pid to, const tr_exit_info *info)
{
	tr_msg *m;
	int rc = tr__msg_new_sys(&m, TR_MSG_DOWN, info, sizeof(*info));
	if (rc != TR_OK)
		return rc;
	m->sender = info->pid;
	m->ref = info->ref;
	m->_flags |= TR__MF_DOWN;
	return deliver(rt, s, to, m);
}

static void info_fill(
    tr_exit_info *info, tr_pid pid, int reason, uint64_t ref, const char *text)
{
	memset(info, 0, sizeof(*info));
	info->pid = pid;
	info->reason = reason;
	info->ref = ref;
	if (text != NULL)
		snprintf(info->text, sizeof(info->text), "%s", text);
}

/* ---- receiving
 * ---------------------------------------------------------------- */

static void set_exit(tr__actor *a, int reason, const char *text, uint32_t flags)
{
	a->status = (a->status & ~0xffu) | TR__A_EXITING | flags;
	a->reason = reason;
	tr__ext *x = tr__ext_of(a);
	if (x != NULL) {
		memset(x->exit_text, 0, sizeof(x->exit_text));
		if (text != NULL)
			snprintf(
			    x->exit_text, sizeof(x->exit_text), "%s", text);
	}
}

bool tr__sig_dispatch(tr__sched *s, tr__actor *a, tr_msg *m)
{
	(void)s;
	if ((m->_flags & TR__MF_DOWN) != 0) {
		/* Only a monitor still held gets its DOWN. */
		tr__ext *x = a->ext;
		return x != NULL &&
		       mon_remove(x->watching, &x->nwatching, m->ref, NULL);
	}
	tr_pid from = m->sender;
	switch (m->type) {
	case TR__SIG_LINK:
		if (!tr_pid_eq(from, a->pid) && links_add(a, from) != TR_OK) {
			/* No memory for the link: fail it the way a link to
			 * a dead actor fails, so the peer is not left with a
			 * one-sided link. */
			tr_exit_info info;
			info_fill(&info, a->pid, TR_REASON_NOPROC, 0, "");
			(void)tr__sig_send(s->rt, s, a->pid, from, TR__SIG_EXIT,
			    TR__MF_VIALINK, 0, &info);
		}
		return false;
	case TR__SIG_UNLINK:
		(void)links_remove(a, from);
		return false;
	case TR__SIG_MONITOR: {
		tr__ext *x = tr__ext_of(a);
		if (x == NULL || mon_add(&x->watchers, &x->nwatchers,
		                     &x->cap_watchers, m->ref, from) != TR_OK) {
			tr_exit_info info;
			info_fill(&info, a->pid, TR_REASON_NOPROC, m->ref, "");
			(void)down_send(s->rt, s, from, &info);
		}
		return false;
	}
	case TR__SIG_DEMONITOR:
		if (a->ext != NULL)
			(void)mon_remove(
			    a->ext->watchers, &a->ext->nwatchers, m->ref, NULL);
		return false;
	case TR__SIG_EXIT: {
		tr_exit_info info;
		if (m->size != sizeof(info))
			return false;
		memcpy(&info, m->data, sizeof(info));
		bool vialink = (m->_flags & TR__MF_VIALINK) != 0;
		/* A link signal for a link we no longer have is stale: it
		 * was sent before our tr_unlink took effect. */
		if (vialink && !links_remove(a, from))
			return false;
		if (info.reason == TR_REASON_KILL && !vialink) {
			set_exit(a, TR_REASON_KILLED, "", TR__A_NOREPORT);
			return false;
		}
		if ((a->status & TR__A_TRAP) != 0) {
			m->type = TR_MSG_EXIT;
			m->_flags &= ~(TR__MF_SIGNAL | TR__MF_VIALINK);
			return true;
		}
		if (info.reason != TR_REASON_NORMAL)
			set_exit(a, info.reason, info.text, TR__A_NOREPORT);
		else if (!vialink && tr_pid_eq(from, a->pid))
			/* exit(self(), normal): the one normal exit signal
			 * that ends a process that does not trap exits. */
			set_exit(a, TR_REASON_NORMAL, info.text, 0);
		return false;
	}
	default:
		return false;
	}
}

void tr__sig_exit(tr_runtime *rt, tr__sched *s, tr__actor *a, int reason)
{
	tr__ext *x = a->ext;
	if (x == NULL)
		return;
	tr_exit_info info;
	info_fill(&info, a->pid, reason, 0, x->exit_text);
	for (uint32_t i = 0; i < x->nlinks; i++)
		(void)tr__sig_send(rt, s, a->pid, x->links[i], TR__SIG_EXIT,
		    TR__MF_VIALINK, 0, &info);
	for (uint32_t i = 0; i < x->nwatchers; i++) {
		info.ref = x->watchers[i].ref;
		(void)down_send(rt, s, x->watchers[i].pid, &info);
	}
	/* Tell those we watch to forget us, so their lists do not grow
	 * with the dead. */
	for (uint32_t i = 0; i < x->nwatching; i++)
		(void)tr__sig_send(rt, s, a->pid, x->watching[i].pid,
		    TR__SIG_DEMONITOR, 0, x->watching[i].ref, NULL);
	free(x->links);
	free(x->watchers);
	free(x->watching);
	x->links = NULL;
	x->watchers = x->watching = NULL;
	x->nlinks = x->nwatchers = x->nwatching = 0;
	x->cap_links = x->cap_watchers = x->cap_watching = 0;
}

void tr__sig_drain(
    tr_runtime *rt, tr__sched *s, tr__actor *a, int reason, const char *text)
{
	tr_msg *m;
	while ((m = tr__mb_pop(a)) != NULL) {
		if ((m->_flags & TR__MF_REMOTE) != 0)
			tr__rin_taken(rt, a, tr__rin_size(m));
		if ((m->_flags & TR__MF_TIMER) != 0)
			(void)tr__timer_take(rt, m); /* frees a fired entry */
		if ((m->_flags & TR__MF_INSPECT) != 0) {
			/* An inspection nobody will answer now: say so at
			 * once rather than leave the caller to its timeout. */
			tr_msg *r;
			if (tr__msg_refused(&r, a->pid, m->ref, TR_ENOPROC) ==
			    TR_OK)
				(void)deliver(rt, s, m->sender, r);
			continue;
		}
		if ((m->_flags & TR__MF_SIGNAL) == 0)
			continue;
		tr_exit_info info;
		if (m->type == TR__SIG_LINK) {
			info_fill(&info, a->pid, reason, 0, text);
			(void)tr__sig_send(rt, s, a->pid, m->sender,
			    TR__SIG_EXIT, TR__MF_VIALINK, 0, &info);
		} else if (m->type == TR__SIG_MONITOR) {
			info_fill(&info, a->pid, reason, m->ref, text);
			(void)down_send(rt, s, m->sender, &info);
		}
	}
}

/* ---- the public calls
 * ---------------------------------------------------------- */

static inline tr__sched *sched_of(tr_ctx *ctx)
{
	return ctx->s;
}

void tr_exit_text(tr_ctx *ctx, int reason, const char *text)
{
	if (ctx == NULL)
		return;
	set_exit(ctx->a, reason, text, 0);
}

int tr_link(tr_ctx *ctx, tr_pid pid)
{
	if (ctx == NULL || tr_pid_is_none(pid))
		return TR_EINVAL;
	tr__actor *a = ctx->a;
	if (tr_pid_eq(pid, a->pid))
		return TR_OK;
	if (links_has(a->ext, pid))
		return TR_OK;
	int rc = links_add(a, pid);
	if (rc != TR_OK)
		return rc;
	rc = tr__sig_send(
	    ctx->rt, sched_of(ctx), a->pid, pid, TR__SIG_LINK, 0, 0, NULL);
	if (rc == TR_ENOPROC) {
		(void)links_remove(a, pid);
		/* As in Erlang: the caller gets an exit signal noproc from
		 * the pid it tried to link to. */
		tr_exit_info info;
		info_fill(&info, pid, TR_REASON_NOPROC, 0, "");
		(void)tr__sig_send(ctx->rt, sched_of(ctx), pid, a->pid,
		    TR__SIG_EXIT, 0, 0, &info);
	} else if (rc != TR_OK) {
		(void)links_remove(a, pid);
	}
	return rc;
}

int tr_unlink(tr_ctx *ctx, tr_pid pid)
{
	if (ctx == NULL || tr_pid_is_none(pid))
		return TR_EINVAL;
	tr__actor *a = ctx->a;
	if (links_remove(a, pid))
		(void)tr__sig_send(ctx->rt, sched_of(ctx), a->pid, pid,
		    TR__SIG_UNLINK, 0, 0, NULL);
	return TR_OK;
}

/* Records a monitor held by `a` on `pid` under a fresh reference and asks
 * the target to watch; a target already gone answers DOWN noproc at once
 * (and a pid of a node that is not connected, noconnection: the
 * distribution layer answers for it). */
int tr__monitor(
    tr_runtime *rt, tr__sched *s, tr__actor *a, tr_pid pid, uint64_t *ref)
{
	tr__ext *x = tr__ext_of(a);
	if (x == NULL)
		return TR_ENOMEM;
	uint64_t r = tr__new_ref(rt);
	int rc = mon_add(&x->watching, &x->nwatching, &x->cap_watching, r, pid);
	if (rc != TR_OK)
		return rc;
	rc = tr__sig_send(rt, s, a->pid, pid, TR__SIG_MONITOR, 0, r, NULL);
	if (rc == TR_ENOPROC) {
		tr_exit_info info;
		info_fill(&info, pid, TR_REASON_NOPROC, r, "");
		rc = down_send(rt, s, a->pid, &info);
	}
	if (rc != TR_OK) {
		(void)mon_remove(x->watching, &x->nwatching, r, NULL);
		return rc;
	}
	if (ref != NULL)
		*ref = r;
	return TR_OK;
}

int tr_monitor(tr_ctx *ctx, uint64_t *ref, tr_pid pid)
{
	if (ctx == NULL || tr_pid_is_none(pid))
		return TR_EINVAL;
	return tr__monitor(ctx->rt, sched_of(ctx), ctx->a, pid, ref);
}

static int demonitor(tr_runtime *rt, tr__sched *s, tr__actor *a, uint64_t ref)
{
	tr__ext *x = a->ext;
	tr_pid target;
	if (x == NULL || !mon_remove(x->watching, &x->nwatching, ref, &target))
		return TR_ENOENT;
	(void)tr__sig_send(
	    rt, s, a->pid, target, TR__SIG_DEMONITOR, 0, ref, NULL);
	return TR_OK;
}

void tr__demonitor(tr_runtime *rt, tr__sched *s, tr__actor *a, uint64_t ref)
{
	(void)demonitor(rt, s, a, ref);
}

int tr_demonitor(tr_ctx *ctx, uint64_t ref)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return demonitor(ctx->rt, sched_of(ctx), ctx->a, ref);
}

bool tr_trap_exit(tr_ctx *ctx, bool on)
{
	if (ctx == NULL)
		return false;
	tr__actor *a = ctx->a;
	bool was = (a->status & TR__A_TRAP) != 0;
	if (on)
		a->status |= TR__A_TRAP;
	else
		a->status &= ~TR__A_TRAP;
	return was;
}

int tr_kill(tr_runtime *rt, tr_pid pid, int reason)
{
	if (rt == NULL || tr_pid_is_none(pid))
		return TR_EINVAL;
	tr__sched *s = tr__current;
	if (s != NULL && s->rt != rt)
		s = NULL;
	tr_pid from =
	    s != NULL && s->ctx.a != NULL ? s->ctx.a->pid : TR_PID_NONE;
	if (pid.node != 0) {
		/* Another node's actor: the exit signal travels like any other
		 * (the receiving node applies a KILL untrappably). */
		tr_exit_info info;
		info_fill(&info, from, reason, 0, "");
		return tr__sig_send(
		    rt, s, from, pid, TR__SIG_EXIT, 0, 0, &info);
	}
	unsigned rec = 0;
	if (s == NULL)
		tr__ext_enter(rt, &rec);
	tr__actor *a = tr__lookup(rt, pid);
	int rc = TR_ENOPROC;
	if (a != NULL && a->kind == TR__K_ACTOR) {
		tr_exit_info info;
		info_fill(&info, from, reason, 0, "");
		rc = tr__sig_send(rt, s, from, pid, TR__SIG_EXIT, 0, 0, &info);
		/* The flag only after the signal is in: raised first, it could
		 * end the target before the send, which would then report a
		 * live target as gone. `a` stays valid in this epoch section
		 * even if it has exited meanwhile. */
		if (rc == TR_OK && reason == TR_REASON_KILL)
			atomic_store_explicit(
			    &a->kill_pending, 1, memory_order_relaxed);
	}
	if (s == NULL)
		tr__ext_exit(rt, rec);
	return rc;
}

int tr_spawn_link(tr_ctx *ctx, tr_pid *pid, const tr_behaviour *b, void *arg,
    const tr_spawn_opts *opts)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return tr__spawn(pid, ctx->rt, b, arg, opts, ctx->a, true, NULL);
}

int tr_spawn_monitor(tr_ctx *ctx, tr_pid *pid, uint64_t *ref,
    const tr_behaviour *b, void *arg, const tr_spawn_opts *opts)
{
	if (ctx == NULL)
		return TR_EINVAL;
	uint64_t r = 0;
	int rc = tr__spawn(pid, ctx->rt, b, arg, opts, ctx->a, false, &r);
	if (rc == TR_OK && ref != NULL)
		*ref = r;
	return rc;
}

/* Called by tr__spawn before the child is visible: the parent's side of a
 * spawn_link or spawn_monitor, and the child's. */
int tr__sig_spawn_bind(tr_runtime *rt, tr__actor *parent, tr__actor *child,
    bool link, uint64_t *mref)
{
	if (link) {
		if (links_add(child, parent->pid) != TR_OK ||
		    links_add(parent, child->pid) != TR_OK)
			return TR_ENOMEM;
	}
	if (mref != NULL) {
		tr__ext *pc = tr__ext_of(child), *pp = tr__ext_of(parent);
		if (pc == NULL || pp == NULL)
			return TR_ENOMEM;
		*mref = tr__new_ref(rt);
		if (mon_add(&pc->watchers, &pc->nwatchers, &pc->cap_watchers,
		        *mref, parent->pid) != TR_OK ||
		    mon_add(&pp->watching, &pp->nwatching, &pp->cap_watching,
		        *mref, child->pid) != TR_OK)
			return TR_ENOMEM;
	}
	return TR_OK;
}

/* Undoes the parent's side when a synchronous init failed: the child never
 * existed for the parent. */
void tr__sig_spawn_unbind(
    tr__actor *parent, tr__actor *child, bool link, uint64_t mref)
{
	if (link) {
		(void)links_remove(parent, child->pid);
		(void)links_remove(child, parent->pid);
	}
	if (mref != 0) {
		if (parent->ext != NULL)
			(void)mon_remove(parent->ext->watching,
			    &parent->ext->nwatching, mref, NULL);
		if (child->ext != NULL)
			(void)mon_remove(child->ext->watchers,
			    &child->ext->nwatchers, mref, NULL);
	}
}

/* Used by tr_call: a port monitors the actor it calls. */
int tr__port_monitor(tr_runtime *rt, tr_pid port, tr_pid target, uint64_t *ref)
{
	*ref = tr__new_ref(rt);
	return tr__sig_send(
	    rt, NULL, port, target, TR__SIG_MONITOR, 0, *ref, NULL);
}

void tr__port_demonitor(
    tr_runtime *rt, tr_pid port, tr_pid target, uint64_t ref)
{
	(void)tr__sig_send(
	    rt, NULL, port, target, TR__SIG_DEMONITOR, 0, ref, NULL);
}
