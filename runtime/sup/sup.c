/*
 * Supervisors (include/troupe/sup.h): OTP's supervisor as an ordinary actor.
 *
 * This file is the behaviour: init (the supervisor's own start, with its
 * children), handle (a dispatch to restart.c, stop.c and admin.c) and
 * terminate, the reaper that stops the children of a start that failed,
 * and the start functions. sup_int.h lists the other files.
 *
 * Everything that must wait for a child to die (a group restart,
 * terminate_child, the supervisor's own shutdown) is a small state machine
 * driven by messages, because an actor cannot block; OTP's supervisor
 * blocks in a selective receive instead. While such an operation is under
 * way, exits of other children and admin requests that change the tree are
 * put aside and handled, in arrival order, once it is done: the same order
 * OTP's blocked supervisor would see them in.
 */
#include <stdlib.h>
#include <string.h>

#include "sup_int.h"

static _Thread_local start_hint *cur_hint;

static _Thread_local const char *cur_starting;

const char *tr__sup_starting_set(const char *id)
{
	const char *prev = cur_starting;
	cur_starting = id;
	return prev;
}

const char *tr_sup_starting_id(void)
{
	return cur_starting;
}

start_hint *tr__sup_hint_set(start_hint *h)
{
	start_hint *prev = cur_hint;
	cur_hint = h;
	return prev;
}

static void sup_free(sup *s)
{
	while (s->head != NULL) {
		child *c = s->head;
		s->head = c->next;
		tr__sup_child_free(c);
	}
	tr__sup_child_free(s->tmpl);
	free(s->map.slots);
	free(s->ring);
	free(s->recent);
	tr__sup_free_deferred(s);
	free(s);
}

/* ---- a failed start ----------------------------------------------------- */

static int sup_handle(tr_ctx *ctx, void *state, const tr_msg *m);
static void sup_terminate(tr_ctx *ctx, void *state, int reason);
static int reaper_init(tr_ctx *ctx, void *arg, void **state);

static const tr_behaviour reaper_b = {
    .name = "supervisor",
    .init = reaper_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

/* A child failed while the supervisor itself was starting: the children
 * already up must be stopped again, newest first, each by its shutdown spec
 * (OTP's supervisor does so before its start returns the error). init
 * cannot wait for exits, so it unlinks the children, lest the failing
 * supervisor's exit signal reach them out of order, and hands them (and
 * its whole state) to a reaper actor that links to them and stops them.
 * If not even that actor can be spawned, each child gets its exit signal
 * at once and the link to the dying supervisor is the backstop. */
static void init_unwind(tr_ctx *ctx, sup *s)
{
	bool any = false;
	for (child *c = s->head; c != NULL; c = c->next)
		any |= c->state == C_RUNNING;
	if (any) {
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_RUNNING)
				(void)tr_unlink(ctx, c->pid);
		if (tr_spawn(NULL, s->rt, &reaper_b, s, NULL) == TR_OK)
			return;
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_RUNNING)
				(void)tr_link(ctx, c->pid);
	}
	for (child *c = s->tail; c != NULL; c = c->prev) {
		if (c->state != C_RUNNING)
			continue;
		(void)tr_kill(s->rt, c->pid,
		    c->shutdown_ms == TR_SHUTDOWN_BRUTAL_KILL
		        ? TR_REASON_KILL
		        : TR_REASON_SHUTDOWN);
	}
	sup_free(s);
}

static int reaper_init(tr_ctx *ctx, void *arg, void **state)
{
	sup *s = arg;
	s->self = tr_self(ctx);
	s->parent = TR_PID_NONE;
	s->reaper = true;
	(void)tr_trap_exit(ctx, true);
	/* A child that died since it was unlinked is simply gone; linking to
	 * it brings a noproc EXIT, which the reaper ignores. */
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->state == C_RUNNING && tr_link(ctx, c->pid) != TR_OK) {
			tr__sup_child_gone(s, c);
			c->state = C_STOPPED;
		}
	}
	/* The stopping starts in handle: finishing it calls tr_exit, which
	 * from init would skip terminate and leak the state. */
	if (tr_send(ctx, s->self, MSG_REAP, NULL, 0) != TR_OK) {
		for (child *c = s->tail; c != NULL; c = c->prev)
			if (c->state == C_RUNNING)
				(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		sup_free(s);
		return TR_SUP_REASON_NOSTART;
	}
	*state = s;
	return TR_OK;
}

/* ---- the behaviour ------------------------------------------------------ */

/* Starts the static children in order. TR_OK, or the reason init fails
 * with (the children already up handed to the reaper). A child whose init
 * ignores its start stays stopped with its spec, or is forgotten if it is
 * temporary, as OTP's start_children does. */
static int start_children(tr_ctx *ctx, sup *s, start_hint *h)
{
	for (child *c = s->head, *next; c != NULL; c = next) {
		next = c->next;
		int reason;
		tr_pid holder;
		int rc = tr__sup_child_start(ctx, s, c, &reason, &holder);
		if (rc == TR_OK)
			continue;
		if (rc == SUP_IGNORED) {
			if (c->restart == TR_RESTART_TEMPORARY)
				tr__sup_child_remove(s, c);
			continue;
		}
		init_unwind(ctx, s);
		if (rc == TR_EINIT && reason > 0)
			return reason;
		if (h != NULL && rc != TR_EINIT)
			h->err = rc;
		return rc == TR_EALREADY ? TR_SUP_REASON_ALREADY_STARTED
		                         : TR_SUP_REASON_NOSTART;
	}
	return TR_OK;
}

/* The supervisor's own init callback, OTP's Mod:init/1: it may change a
 * copy of the arguments, ignore the start, or fail it. */
static int call_init(const tr_sup_args **a, tr_sup_args *copy)
{
	tr_sup_args given = **a; /* read in full by sup_init already */
	*copy = given;
	copy->init = NULL;
	int rc = given.init(given.init_arg, copy);
	if (rc == TR_OK) {
		/* The callback may have put flags of its own (its own
		 * struct_size) into the copy: read them as a caller's. */
		tr_sup_args changed = *copy;
		if (tr__sup_args_in(copy, &changed) != TR_OK)
			return TR_EINVAL; /* bad arguments from init */
		*a = copy;
	}
	return rc;
}

static int sup_init(tr_ctx *ctx, void *arg, void **state)
{
	start_hint *h = cur_hint;
	if (h != NULL && h->arg == arg)
		cur_hint = NULL; /* taken: a grandchild must not see it */
	else
		h = NULL;
	/* The caller's arguments, their flags as far as they reach. */
	tr_sup_args given;
	const tr_sup_args *a =
	    tr__sup_args_in(&given, arg) == TR_OK ? &given : NULL;
	tr_sup_args copy;
	if (a != NULL && a->init != NULL) {
		int rc = call_init(&a, &copy);
		if (rc == TR_INIT_IGNORE || rc > 0)
			return rc;
		if (rc != TR_OK)
			a = NULL; /* not an answer init may give */
	}
	if (!tr__sup_valid_args(a)) {
		if (h != NULL)
			h->err = TR_EINVAL;
		return TR_SUP_REASON_BADARGS;
	}
	int err = TR_ENOMEM;
	sup *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->rt = tr_runtime_of(ctx);
	s->self = tr_self(ctx);
	s->parent = h != NULL ? h->parent : TR_PID_NONE;
	s->flags = a->flags;
	s->ring_cap = s->flags.intensity < 16 ? s->flags.intensity + 1 : 16;
	s->ring = malloc(s->ring_cap * sizeof(*s->ring));
	if (s->ring == NULL)
		goto fail;
	/* The specs were checked (tr__sup_valid_args), so each reads. */
	tr_child_spec sp;
	if (sup_is_simple(s)) {
		(void)tr__sup_spec_at(&sp, a->specs, 0);
		err = tr__sup_child_from_spec(s->rt, &sp, sp.id, &s->tmpl);
		if (err != TR_OK)
			goto fail;
	} else {
		for (size_t i = 0; i < a->nspecs; i++) {
			child *c;
			(void)tr__sup_spec_at(&sp, a->specs, i);
			err = tr__sup_child_from_spec(s->rt, &sp, sp.id, &c);
			if (err != TR_OK)
				goto fail;
			tr__sup_list_append(s, c);
		}
	}
	(void)tr_trap_exit(ctx, true);
	int rc = start_children(ctx, s, h);
	if (rc != TR_OK)
		return rc;
	/* Listed for operators (live.c) once it runs; without memory for
	 * that it does not start, rather than run unseen. */
	if (tr__sup_live_add(s) != TR_OK) {
		init_unwind(ctx, s);
		if (h != NULL)
			h->err = TR_ENOMEM;
		return TR_SUP_REASON_NOSTART;
	}
	*state = s;
	return TR_OK;

fail:
	/* No memory, or a start_name that is not registered (bad
	 * arguments, which only the registry could tell). */
	if (s != NULL)
		sup_free(s);
	if (h != NULL)
		h->err = err;
	return err == TR_ENOENT ? TR_SUP_REASON_BADARGS : TR_SUP_REASON_NOSTART;
}

/* The token of a message the supervisor sent itself. */
static bool self_tok(const sup *s, const tr_msg *m, uint64_t *tok)
{
	if (!tr_pid_eq(m->sender, s->self) || m->size != sizeof(*tok))
		return false;
	memcpy(tok, m->data, sizeof(*tok));
	return true;
}

static int sup_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	sup *s = state;
	if (s->exited)
		return 0;
	uint64_t tok;
	switch (m->type) {
	case TR_MSG_EXIT:
		if (m->size >= sizeof(tr_exit_info))
			tr__sup_on_exit(ctx, s, (const tr_exit_info *)m->data);
		break;
	case TR_MSG_DOWN:
		if (m->size >= sizeof(tr_exit_info))
			tr__sup_on_down(ctx, s, (const tr_exit_info *)m->data);
		break;
	case MSG_REAP:
		if (tr_pid_eq(m->sender, s->self) && s->reaper)
			tr__sup_begin_shutdown(ctx, s, TR_REASON_NORMAL);
		break;
	case MSG_RETRY:
		if (self_tok(s, m, &tok))
			tr__sup_on_retry(ctx, s, tok);
		break;
	case MSG_KILL:
		if (self_tok(s, m, &tok))
			tr__sup_on_kill_timer(s, tok);
		break;
	case TR_SUP_REQ_START_NAMED:
		if (m->ref != 0) {
			named_req *nq;
			int rc =
			    tr__sup_named_decode(s->rt, m->data, m->size, &nq);
			if (rc != TR_OK)
				tr__sup_named_reply(
				    ctx, m->sender, m->ref, rc, 0, TR_PID_NONE);
			else
				tr__sup_on_request(ctx, s, m->sender, m->ref,
				    m->type, NULL, nq);
		}
		break;
	default:
		if (m->type >= TR_SUP_REQ_START_CHILD &&
		    m->type <= TR_SUP_REQ_INFO && m->ref != 0) {
			if (m->size != sizeof(tr_sup_request)) {
				tr__sup_reply_err(ctx, m->sender, m->ref,
				    TR_EINVAL, 0, TR_PID_NONE);
				break;
			}
			tr_sup_request q;
			memcpy(&q, m->data, sizeof(q));
			tr__sup_on_request(
			    ctx, s, m->sender, m->ref, m->type, &q, NULL);
		}
		/* Anything else is not for a supervisor; OTP's logs it and
		 * goes on, and so does this one, quietly. */
		break;
	}
	tr__sup_drain(ctx, s);
	return 0;
}

static void sup_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)reason;
	sup *s = state;
	if (s == NULL)
		return;
	tr__sup_live_del(s);
	/* Callers still waiting get an answer rather than their timeout.
	 * Children still alive (the supervisor was killed, or the runtime is
	 * stopping) get the exit signal of their link. */
	tr__sup_flush_deferred(ctx, s, TR_ECLOSED);
	if (s->term_child != NULL)
		tr__sup_reply_err(ctx, s->term_sender, s->term_ref, TR_ECLOSED,
		    0, TR_PID_NONE);
	for (child *c = s->head; c != NULL; c = c->next)
		if (c->timer != 0)
			(void)tr_timer_cancel(s->rt, c->timer);
	if (s->par_timer != 0)
		(void)tr_timer_cancel(s->rt, s->par_timer);
	sup_free(s);
}

const tr_behaviour tr_sup_behaviour = {
    .name = "supervisor",
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

/* ---- the start functions ------------------------------------------------ */

/* The common part of the tr_sup_start* calls: ctx is the actor to link to,
 * or NULL. */
static int sup_start(tr_ctx *ctx, tr_pid *sup_pid, tr_runtime *rt,
    const tr_sup_args *a, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	if (sup_pid != NULL)
		*sup_pid = TR_PID_NONE;
	/* Arguments an init callback will give are checked once it has. */
	tr_sup_args given;
	if (tr__sup_args_in(&given, a) != TR_OK ||
	    (given.init == NULL && !tr__sup_valid_args(&given)))
		return TR_EINVAL;
	start_hint h = {
	    .arg = a,
	    .parent = ctx != NULL ? tr_self(ctx) : TR_PID_NONE,
	    .err = TR_OK,
	};
	start_hint *prev = tr__sup_hint_set(&h);
	int r = 0;
	tr_spawn_opts o;
	tr_spawn_opts_init(&o);
	o.flags = TR_SPAWN_SYNC_INIT;
	o.init_reason = &r;
	tr_pid pid = TR_PID_NONE;
	int rc =
	    ctx != NULL
	        ? tr_spawn_link(ctx, &pid, &tr_sup_behaviour, (void *)a, &o)
	        : tr_spawn(&pid, rt, &tr_sup_behaviour, (void *)a, &o);
	tr__sup_hint_set(prev);
	if (rc == TR_EINIT) {
		if (h.err != TR_OK)
			return h.err;
		/* OTP's start_link answers `ignore`: no supervisor, no
		 * error. */
		if (r == TR_INIT_IGNORE)
			return TR_OK;
		if (init_reason != NULL)
			*init_reason = r;
	}
	if (rc == TR_OK && sup_pid != NULL)
		*sup_pid = pid;
	return rc;
}

int tr_sup_start(tr_pid *sup, tr_runtime *rt, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_args a = {.specs = specs, .nspecs = nspecs};
	if (rt == NULL || tr__sup_flags_in(&a.flags, flags) != TR_OK)
		return TR_EINVAL;
	return sup_start(NULL, sup, rt, &a, init_reason);
}

int tr_sup_start_link(tr_ctx *ctx, tr_pid *sup, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_args a = {.specs = specs, .nspecs = nspecs};
	if (ctx == NULL || tr__sup_flags_in(&a.flags, flags) != TR_OK)
		return TR_EINVAL;
	return sup_start(ctx, sup, tr_runtime_of(ctx), &a, init_reason);
}

int tr_sup_start_args(
    tr_pid *sup, tr_runtime *rt, const tr_sup_args *args, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	if (rt == NULL)
		return TR_EINVAL;
	return sup_start(NULL, sup, rt, args, init_reason);
}

int tr_sup_start_link_args(
    tr_ctx *ctx, tr_pid *sup, const tr_sup_args *args, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	if (ctx == NULL)
		return TR_EINVAL;
	return sup_start(ctx, sup, tr_runtime_of(ctx), args, init_reason);
}
