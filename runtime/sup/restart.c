/*
 * Restarts: what the supervisor does when a child exits on its own.
 *
 * A child's exit arrives as a TR_MSG_EXIT message (the supervisor traps
 * exits and is linked to every child). Its restart type decides whether it
 * is restarted (OTP's do_restart), the strategy what else is restarted with
 * it, and the intensity window whether the supervisor gives up instead. A
 * group restart (one_for_all, rest_for_one) first stops the group, which
 * takes messages (stop.c); it is driven by the exits of the children it
 * stops and continues in tr__sup_group_step.
 *
 * A restart whose start fails is tried again through a message to self
 * (OTP's try_again_restart), so that the supervisor keeps answering
 * between attempts; meanwhile the child is `restarting`. A start that the
 * child's init ignores (TR_INIT_IGNORE) leaves a static child stopped with
 * its spec, and removes a dynamic one, as OTP does.
 */
#include <stdlib.h>
#include <time.h>

#include "sup_int.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Records a restart now and tells whether it is still within the intensity:
 * OTP's add_restart. Restarts older than the period leave the window; more
 * than `intensity` left in it means the supervisor must give up. */
static bool add_restart(sup *s)
{
	uint64_t now = now_ns();
	uint64_t period = (uint64_t)s->flags.period_ms * 1000000u;
	while (s->ring_n > 0 && now - s->ring[s->ring_head] >= period) {
		s->ring_head = (s->ring_head + 1) % s->ring_cap;
		s->ring_n--;
	}
	if (s->ring_n == s->ring_cap) {
		uint64_t want = (uint64_t)s->flags.intensity + 1;
		uint64_t ncap = (uint64_t)s->ring_cap * 2;
		if (ncap > want)
			ncap = want;
		uint64_t *nr = ncap > s->ring_cap && ncap <= UINT32_MAX
		                   ? malloc(ncap * sizeof(*nr))
		                   : NULL;
		if (nr != NULL) {
			for (uint32_t k = 0; k < s->ring_n; k++) {
				uint32_t at = (s->ring_head + k) % s->ring_cap;
				nr[k] = s->ring[at];
			}
			free(s->ring);
			s->ring = nr;
			s->ring_cap = (uint32_t)ncap;
			s->ring_head = 0;
		} else {
			/* Full at intensity + 1 (the limit is passed anyway),
			 * or out of memory: forget the oldest restart, which
			 * can only undercount. */
			s->ring_head = (s->ring_head + 1) % s->ring_cap;
			s->ring_n--;
		}
	}
	s->ring[(s->ring_head + s->ring_n) % s->ring_cap] = now;
	s->ring_n++;
	return s->ring_n <= s->flags.intensity;
}

/* Leaves a child whose restart failed to be tried again through a message
 * to self. Returns false if not even that message could be sent (no
 * memory); the caller then gives up as for the intensity. */
static bool schedule_retry(tr_ctx *ctx, sup *s, child *c)
{
	c->state = C_RESTARTING;
	c->retry_tok = sup_new_tok(s);
	if (tr_send(ctx, s->self, MSG_RETRY, &c->retry_tok,
	        sizeof(c->retry_tok)) == TR_OK)
		return true;
	tr__sup_report(ctx, s, c, TR_PID_NONE, "reached_max_restart_intensity", c->last_reason);
	return false;
}

/* One start of a restart. True if the restart may go on with the next
 * child (started, or ignored); false if it failed and was left to a retry
 * (or the supervisor is giving up). */
static bool restart_one(tr_ctx *ctx, sup *s, child *c)
{
	int reason;
	tr_pid holder;
	int rc = tr__sup_child_start(ctx, s, c, &reason, &holder);
	if (rc == TR_OK) {
		tr__sup_note_restarted(s, c);
		/* The reason it was restarted for: the one it exited with
		 * (a bystander of a group restart: the one it was stopped
		 * with). */
		tr__sup_report(ctx, s, c, c->pid, "restarted", c->last_reason);
		return true;
	}
	if (rc == SUP_IGNORED) {
		c->state = C_STOPPED;
		c->retry_tok = 0;
		if (sup_is_simple(s))
			tr__sup_child_remove(s, c);
		return true;
	}
	if (!schedule_retry(ctx, s, c))
		tr__sup_begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
	return false;
}

/* The start half of a group restart: every child of the group in start
 * order, temporary ones having been dropped while stopping. A start that
 * fails leaves the rest stopped and is retried through a message; the
 * retry restarts the group from that child. */
static void group_start(tr_ctx *ctx, sup *s, child *from)
{
	for (child *c = from, *next; c != NULL; c = next) {
		next = c->next;
		if (child_running(c))
			continue;
		if (!restart_one(ctx, s, c))
			return;
	}
}

void tr__sup_group_step(tr_ctx *ctx, sup *s)
{
	if (!tr__sup_walk_stop(ctx, s, s->group_at, true))
		return;
	s->op = OP_NONE;
	group_start(ctx, s, s->group_at != NULL ? s->group_at : s->head);
}

void tr__sup_restart(tr_ctx *ctx, sup *s, child *c)
{
	if (!add_restart(s)) {
		tr__sup_report(ctx, s, c, TR_PID_NONE,
		    "reached_max_restart_intensity", c->last_reason);
		tr__sup_begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
		return;
	}
	tr__sup_note_restart(s, c);
	switch (s->flags.strategy) {
	case TR_SUP_ONE_FOR_ALL:
	case TR_SUP_REST_FOR_ONE:
		c->state = C_STOPPED;
		s->op = OP_GROUP;
		s->group_at =
		    s->flags.strategy == TR_SUP_REST_FOR_ONE ? c : NULL;
		s->cursor = s->tail;
		tr__sup_group_step(ctx, s);
		return;
	default:
		(void)restart_one(ctx, s, c);
		return;
	}
}

/* auto_shutdown: a significant child exited on its own and will not be
 * restarted. */
static void auto_shutdown(tr_ctx *ctx, sup *s)
{
	switch (s->flags.auto_shutdown) {
	case TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT:
		break;
	case TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT:
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->significant &&
			    (child_running(c) || c->state == C_RESTARTING))
				return;
		break;
	default:
		return;
	}
	tr__sup_begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
}

void tr__sup_child_exited(tr_ctx *ctx, sup *s, child *c, int reason)
{
	c->state = C_STOPPED;
	c->last_reason = reason;
	bool abnormal = !normal_exit(reason);
	switch (c->restart) {
	case TR_RESTART_PERMANENT:
		tr__sup_report(ctx, s, c, TR_PID_NONE, "child_terminated", reason);
		tr__sup_restart(ctx, s, c);
		return;
	case TR_RESTART_TRANSIENT:
		if (abnormal) {
			tr__sup_report(ctx, s, c, TR_PID_NONE, "child_terminated", reason);
			tr__sup_restart(ctx, s, c);
			return;
		}
		break;
	default:
		if (abnormal)
			tr__sup_report(ctx, s, c, TR_PID_NONE, "child_terminated", reason);
		break;
	}
	/* Not restarted: a temporary child's spec goes, and so does a dynamic
	 * child's; a static transient child keeps its spec. */
	bool significant = c->significant;
	if (c->restart == TR_RESTART_TEMPORARY || sup_is_simple(s))
		tr__sup_child_remove(s, c);
	if (significant)
		auto_shutdown(ctx, s);
}

static void on_exit_of(tr_ctx *ctx, sup *s, const tr_exit_info *x);

void tr__sup_on_exit(tr_ctx *ctx, sup *s, const tr_exit_info *x)
{
	s->exit_text = x->text[0] != '\0' ? x->text : NULL;
	on_exit_of(ctx, s, x);
	s->exit_text = NULL;
}

static void on_exit_of(tr_ctx *ctx, sup *s, const tr_exit_info *x)
{
	child *c = tr__pm_get(&s->map, x->pid);
	if (c == NULL) {
		/* The parent's exit, or a shutdown request from anyone (how
		 * an unlinked supervisor is stopped), ends the supervisor.
		 * Exits from other linked actors are not its business; a
		 * noproc one is the answer to a link to a child found gone
		 * while it was being stopped (stop.c), and not even worth a
		 * report. */
		if (s->reaper)
			return;
		if (tr_pid_eq(x->pid, s->parent) ||
		    x->reason == TR_REASON_SHUTDOWN)
			tr__sup_begin_shutdown(ctx, s, x->reason);
		else if (x->reason != TR_REASON_NOPROC)
			tr__sup_report(ctx, s, NULL, x->pid, "ignored_exit", x->reason);
		return;
	}
	if (c->state == C_STOPPING) {
		tr__sup_child_stopped(ctx, s, c, x->reason, false);
		return;
	}
	tr__sup_child_gone(s, c);
	c->last_reason = x->reason;
	if (s->shutting_down) {
		/* Gone on its own before its turn to be stopped came: what
		 * OTP's shutdown of it would find, and report. */
		c->state = C_STOPPED;
		if (tr__sup_stop_error(c, x->reason))
			tr__sup_report(ctx, s, c, x->pid, "shutdown_error", x->reason);
		return;
	}
	if (s->op != OP_NONE) {
		c->state = C_PENDING;
		c->pending_reason = x->reason;
		c->pending_retry = false;
		s->npending++;
		return;
	}
	tr__sup_child_exited(ctx, s, c, x->reason);
}

void tr__sup_on_retry(tr_ctx *ctx, sup *s, uint64_t tok)
{
	if (s->shutting_down)
		return;
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->retry_tok != tok || c->state != C_RESTARTING)
			continue;
		c->retry_tok = 0;
		if (s->op != OP_NONE) {
			c->state = C_PENDING;
			c->pending_retry = true;
			s->npending++;
		} else {
			tr__sup_restart(ctx, s, c);
		}
		return;
	}
}
