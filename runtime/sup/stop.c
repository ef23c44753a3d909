/*
 * Stopping children, and the supervisor's own shutdown.
 *
 * A child is stopped by its shutdown spec: TR_SHUTDOWN_BRUTAL_KILL kills it;
 * a timeout sends it `shutdown` and arms a timer that kills it when it
 * fires; TR_SHUTDOWN_INFINITY sends `shutdown` and waits. While it is being
 * stopped the supervisor also monitors it, as OTP's shutdown/2 does: a
 * child that unlinked itself from its supervisor sends no EXIT, and would
 * otherwise be waited for forever. Whichever of its EXIT and its DOWN
 * comes first is its end, with its reason, and the other is cancelled
 * (tr_demonitor, tr_unlink) so that it never arrives.
 *
 * The one race is a child found dead by the monitor: its DOWN then says
 * noproc, and its EXIT, with the real reason, may still be on its way (the
 * child is past its pid's end but has not yet sent its signals). A link to
 * it tells the two cases apart: linking to a dead actor one is linked to
 * already succeeds and sends nothing, so the EXIT is awaited; one that
 * unlinked itself (whose unlink signal came before the DOWN) refuses the
 * link with TR_ENOPROC, and the noproc is its end.
 *
 * Group restarts, terminate_child and the supervisor's shutdown stop
 * children one at a time, newest first (walk_stop); simple_one_for_one
 * stops its children in parallel under one timer. Each is driven by the
 * ends of the children it stops.
 */
#include "sup_int.h"

void tr__sup_child_stop(tr_ctx *ctx, sup *s, child *c, bool own_timer)
{
	c->state = C_STOPPING;
	s->nstopping++;
	/* Without memory for a monitor the link is all there is, as before
	 * monitors were used. */
	c->mref = 0;
	(void)tr_monitor(ctx, &c->mref, c->pid);
	if (c->shutdown_ms == TR_SHUTDOWN_BRUTAL_KILL) {
		(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		return;
	}
	/* TR_ENOPROC means the child is already dead and its end is on its
	 * way: waiting for it is all there is to do. */
	(void)tr_kill(s->rt, c->pid, TR_REASON_SHUTDOWN);
	if (c->shutdown_ms > 0 && own_timer) {
		c->kill_tok = sup_new_tok(s);
		if (tr_send_after(ctx, &c->timer, s->self, c->shutdown_ms, 0,
		        MSG_KILL, &c->kill_tok, sizeof(c->kill_tok)) != TR_OK) {
			/* Without a timer the child could outlive its
			 * deadline for ever; brutal kill is the safe side. */
			c->timer = 0;
			(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		}
	}
}

static void shutdown_step(tr_ctx *ctx, sup *s);

void tr__sup_child_stopped(
    tr_ctx *ctx, sup *s, child *c, int reason, bool via_down)
{
	if (c->timer != 0) {
		(void)tr_timer_cancel(s->rt, c->timer);
		c->timer = 0;
	}
	if (via_down)
		(void)tr_unlink(ctx, c->pid);
	else if (c->mref != 0)
		(void)tr_demonitor(ctx, c->mref);
	c->mref = 0;
	s->nstopping--;
	tr_pid pid = c->pid;
	tr__sup_child_gone(s, c);
	c->state = C_STOPPED;
	c->last_reason = reason;
	if (tr__sup_stop_error(c, reason))
		tr__sup_report(ctx, s, c, pid, "shutdown_error", reason);

	if (c == s->term_child) {
		s->term_child = NULL;
		tr__sup_reply_err(
		    ctx, s->term_sender, s->term_ref, TR_OK, 0, TR_PID_NONE);
		if (s->op == OP_TERMINATE) {
			s->op = OP_NONE;
			if (c->restart == TR_RESTART_TEMPORARY ||
			    sup_is_simple(s))
				tr__sup_child_remove(s, c);
		}
	}
	if (s->op == OP_GROUP)
		tr__sup_group_step(ctx, s);
	else if (s->op == OP_SHUTDOWN)
		shutdown_step(ctx, s);
}

void tr__sup_on_down(tr_ctx *ctx, sup *s, const tr_exit_info *x)
{
	child *c = tr__pm_get(&s->map, x->pid);
	if (c == NULL || c->state != C_STOPPING || c->mref == 0 ||
	    c->mref != x->ref)
		return; /* a monitor this supervisor no longer cares about */
	c->mref = 0;    /* it fired */
	if (x->reason == TR_REASON_NOPROC && tr_link(ctx, c->pid) == TR_OK)
		return; /* still linked: its EXIT is on its way (see above) */
	tr__sup_child_stopped(ctx, s, c, x->reason, true);
}

void tr__sup_on_kill_timer(sup *s, uint64_t tok)
{
	if (tok == s->par_tok) {
		s->par_tok = 0;
		s->par_timer = 0;
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_STOPPING)
				(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		return;
	}
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->kill_tok == tok && c->state == C_STOPPING) {
			c->timer = 0;
			(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
			return;
		}
	}
}

/* A child found stopped when its turn to be stopped comes: it is stopped,
 * and an exit of its own that was not acted upon is reported as OTP's
 * shutdown of it would report it. */
static void settle(tr_ctx *ctx, sup *s, child *c)
{
	if (c->state == C_PENDING) {
		s->npending--;
		if (!c->pending_retry &&
		    tr__sup_stop_error(c, c->pending_reason))
			tr__sup_report(ctx, s, c, TR_PID_NONE, "shutdown_error",
			    c->pending_reason);
		c->pending_retry = false;
	}
	c->state = C_STOPPED;
	c->retry_tok = 0;
}

bool tr__sup_walk_stop(tr_ctx *ctx, sup *s, child *stop_at, bool drop_temp)
{
	while (s->cursor != NULL) {
		child *c = s->cursor;
		switch (c->state) {
		case C_RUNNING:
			tr__sup_child_stop(ctx, s, c, true);
			return false;
		case C_STOPPING:
			return false;
		case C_PENDING:
		case C_RESTARTING:
			settle(ctx, s, c);
			break;
		default:
			break;
		}
		s->cursor = c == stop_at ? NULL : c->prev;
		if (drop_temp && c->restart == TR_RESTART_TEMPORARY)
			tr__sup_child_remove(s, c);
	}
	return true;
}

static void finish_shutdown(tr_ctx *ctx, sup *s)
{
	if (!s->exited) {
		s->exited = true;
		tr_exit(ctx, s->exit_reason);
	}
}

static void shutdown_step(tr_ctx *ctx, sup *s)
{
	if (sup_is_simple(s)) {
		if (s->nstopping == 0)
			finish_shutdown(ctx, s);
		return;
	}
	if (tr__sup_walk_stop(ctx, s, NULL, false) && s->nstopping == 0)
		finish_shutdown(ctx, s);
}

/* Stops the dynamic children of a simple_one_for_one supervisor all at
 * once, under one shutdown timer. */
static void stop_parallel(tr_ctx *ctx, sup *s)
{
	int32_t ms = s->tmpl->shutdown_ms;
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->state == C_RUNNING)
			tr__sup_child_stop(ctx, s, c, false);
		else if (c->state == C_PENDING || c->state == C_RESTARTING)
			settle(ctx, s, c);
	}
	if (ms <= 0 || s->nstopping == 0)
		return;
	s->par_tok = sup_new_tok(s);
	if (tr_send_after(ctx, &s->par_timer, s->self, ms, 0, MSG_KILL,
	        &s->par_tok, sizeof(s->par_tok)) != TR_OK) {
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_STOPPING)
				(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
	}
}

void tr__sup_begin_shutdown(tr_ctx *ctx, sup *s, int reason)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	s->exit_reason = reason;
	if (!s->reaper)
		tr__sup_report(ctx, s, NULL, TR_PID_NONE, "shutdown", reason);
	tr__sup_flush_deferred(ctx, s, TR_ECLOSED);
	s->op = OP_SHUTDOWN;
	if (sup_is_simple(s))
		stop_parallel(ctx, s);
	else
		s->cursor = s->tail;
	shutdown_step(ctx, s);
}
