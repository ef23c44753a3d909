/*
 * Children: the list in start order, starting one, and the supervisor
 * reports.
 *
 * A child starts with tr_spawn_link and TR_SPAWN_SYNC_INIT, so its init has
 * run (or failed, or ignored the start) by the time the spawn returns. A
 * child of type supervisor learns from the start hint (sup.c) that this
 * supervisor is its parent.
 *
 * A child whose spec gives a registered name (OTP's {local, Name} in its
 * start function) is looked up first: a name held by another actor fails
 * the start with TR_EALREADY and that actor's pid, as OTP's start_link
 * answers {error, {already_started, Pid}}, and the child's init never runs.
 * Otherwise the child is registered once its init has returned, before the
 * start is answered; OTP registers before init (see docs/supervision.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup_int.h"

static const char *restart_name(uint8_t r)
{
	switch (r) {
	case TR_RESTART_PERMANENT:
		return "permanent";
	case TR_RESTART_TRANSIENT:
		return "transient";
	case TR_RESTART_TEMPORARY:
		return "temporary";
	default:
		return "unknown";
	}
}

/* Events of trouble are errors, as OTP's supervisor reports; a restart
 * that worked and the supervisor's own orderly stop are notices. */
static int report_level(const char *event)
{
	return strcmp(event, "restarted") == 0 || strcmp(event, "shutdown") == 0
	           ? TR_LOG_NOTICE
	           : TR_LOG_ERROR;
}

void tr__sup_report(tr_ctx *ctx, sup *s, const child *c, tr_pid pid,
    const char *event, int reason)
{
	int level = report_level(event);
	if (!tr_log_enabled(s->rt, level))
		return;
	char line[384];
	const char *id = c != NULL && c->id[0] != '\0' ? c->id : "-";
	/* The line is the one line handlers have always received. The
	 * reasons of a process's end, which it never carried, name what
	 * happened in its text (the signal, the status), as crash reports
	 * give a text; every event has it as a field. */
	const char *text = s->exit_text;
	bool proc_end = tr_reason_exit_status(reason) != 0 ||
	                tr_reason_signal(reason) != 0 ||
	                reason == TR_REASON_MEMORY_LIMIT ||
	                reason == TR_REASON_CPU_LIMIT;
	const char *shown = proc_end && text != NULL ? text : NULL;
	snprintf(line, sizeof(line),
	    "SUPERVISOR REPORT sup=<%u.%u.%u> child=%s pid=<%u.%u.%u> "
	    "event=%s reason=%d (%s%s%s)",
	    s->self.node, s->self.slot, s->self.gen, id, pid.node, pid.slot,
	    pid.gen, event, reason, tr_reason_name(reason),
	    shown != NULL ? ": " : "", shown != NULL ? shown : "");
	tr_log_field f[10];
	size_t n = 0;
	f[n++] = tr_log_str("context", event);
	f[n++] = tr_log_int("reason", reason);
	f[n++] = tr_log_str("reason_name", tr_reason_name(reason));
	if (text != NULL)
		f[n++] = tr_log_str("reason_text", text);
	f[n++] = tr_log_str("child", c != NULL ? c->id : "");
	f[n++] = tr_log_pid("child_pid", pid);
	if (c != NULL) {
		f[n++] = tr_log_str("restart_type", restart_name(c->restart));
		f[n++] = tr_log_str("child_type",
		    c->type == TR_CHILD_SUPERVISOR ? "supervisor"
		    : c->type == TR_CHILD_PROCESS  ? "process"
		                                   : "worker");
		f[n++] = tr_log_int("shutdown_ms", c->shutdown_ms);
		f[n++] = tr_log_str("start",
		    c->start != NULL && c->start->name ? c->start->name : "");
	}
	tr_log_event ev = {
	    .struct_size = sizeof(tr_log_event),
	    .level = level,
	    .domain = "supervisor_report",
	    .text = line,
	    .fields = f,
	    .nfields = n,
	};
	/* From the supervisor's own turn: the event is about it, and carries
	 * its pid, registered name and behaviour. */
	tr_log_emit_ctx(ctx, &ev);
}

/* ---- the list ----------------------------------------------------------- */

void tr__sup_list_append(sup *s, child *c)
{
	c->next = NULL;
	c->prev = s->tail;
	if (s->tail != NULL)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->nchildren++;
}

void tr__sup_child_remove(sup *s, child *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	s->nchildren--;
	if (s->cursor == c)
		s->cursor = c->prev;
	if (s->term_child == c)
		s->term_child = NULL;
	tr__sup_child_free(c);
}

child *tr__sup_find_id(sup *s, const char *id)
{
	for (child *c = s->head; c != NULL; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

/* ---- starting ----------------------------------------------------------- */

/* Registers a child that has just passed its init under its spec's name.
 * Another actor may have taken the name since it was looked up; then the
 * child is undone (unlinked first, so that its end is no exit of ours) and
 * the start fails like a name found taken. */
static int claim_name(
    tr_ctx *ctx, sup *s, tr_pid pid, const char *name, tr_pid *holder)
{
	int rc = tr_register(s->rt, name, pid);
	/* TR_ENOPROC: it is gone already, and its EXIT is on its way; the
	 * start succeeded and the exit is handled as any other. */
	if (rc == TR_OK || rc == TR_ENOPROC)
		return TR_OK;
	tr_pid who;
	if (tr_whereis(&who, s->rt, name) == TR_OK && tr_pid_eq(who, pid))
		return TR_OK; /* its init registered the name itself */
	(void)tr_unlink(ctx, pid);
	(void)tr_kill(s->rt, pid, TR_REASON_KILL);
	if (rc == TR_EEXIST && tr_whereis(holder, s->rt, name) == TR_OK)
		return TR_EALREADY;
	/* The child took another name (TR_EEXIST), or no memory. */
	return rc;
}

int tr__sup_child_start(
    tr_ctx *ctx, sup *s, child *c, int *reason, tr_pid *holder)
{
	*reason = 0;
	*holder = TR_PID_NONE;
	tr_blob *fresh = NULL;
	tr_pid pid;
	int r = 0;
	int rc;
	if (c->name != NULL && tr_whereis(holder, s->rt, c->name) == TR_OK) {
		rc = TR_EALREADY;
		goto failed;
	}
	rc = tr__pm_reserve(&s->map);
	if (rc != TR_OK)
		goto failed;
	void *arg = c->arg;
	if (c->by_name) {
		/* Each start owns its copy: the previous run may have
		 * changed or freed its own. */
		fresh = c->blob != NULL
		            ? tr__sup_blob_new(c->blob->data, c->blob->size)
		            : tr__sup_blob_new(NULL, 0);
		if (fresh == NULL) {
			rc = TR_ENOMEM;
			goto failed;
		}
		arg = fresh;
	}
	if (c->start_fn != NULL) {
		pid = TR_PID_NONE;
		const char *prev_id = tr__sup_starting_set(c->id);
		rc = c->start_fn(ctx, arg, &pid, &r);
		(void)tr__sup_starting_set(prev_id);
		if (rc == TR_OK && tr_pid_is_none(pid))
			return SUP_IGNORED;
		if (rc == TR_EINIT && r == TR_INIT_IGNORE)
			r = TR_SUP_REASON_NOSTART;
	} else {
		start_hint h = {.arg = arg, .parent = s->self, .err = TR_OK};
		start_hint *prev = tr__sup_hint_set(&h);
		rc = tr_spawn_link(ctx, &pid, c->start, arg,
		    &(tr_spawn_opts){.struct_size = sizeof(tr_spawn_opts),
		        .flags = TR_SPAWN_SYNC_INIT,
		        .init_reason = &r});
		tr__sup_hint_set(prev);
	}
	if (rc != TR_OK) {
		/* A failed init owned the blob; any other failure never
		 * handed it over. */
		if (rc != TR_EINIT)
			free(fresh);
		if (rc == TR_EINIT && r == TR_INIT_IGNORE)
			return SUP_IGNORED;
		*reason = r;
		goto failed;
	}
	if (c->name != NULL) {
		rc = claim_name(ctx, s, pid, c->name, holder);
		if (rc != TR_OK)
			goto failed;
	}
	c->pid = pid;
	c->state = C_RUNNING;
	tr__pm_put(&s->map, pid, c);
	return TR_OK;

failed:
	tr__sup_report(ctx, s, c, *holder, "start_failed",
	    rc == TR_EINIT      ? *reason
	    : rc == TR_EALREADY ? TR_SUP_REASON_ALREADY_STARTED
	                        : TR_SUP_REASON_NOSTART);
	return rc;
}

void tr__sup_child_gone(sup *s, child *c)
{
	tr__pm_del(&s->map, c->pid);
	c->last_pid = c->pid;
	c->pid = TR_PID_NONE;
}
