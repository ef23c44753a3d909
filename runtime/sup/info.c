/*
 * What a supervisor keeps for operators, and the INFO request that shows
 * it, both sides.
 *
 * OTP's supervisor keeps restart times only as long as its intensity needs
 * them (restart.c keeps the same window) and says what happened only in
 * its reports. An operator looking at a running tree wants the recent
 * history too, so each supervisor keeps, in its own state and written by
 * its own thread only: the number of restarts since it started, each
 * child's restart count, and the last TR_SUP_RECENT_MAX restarts (when,
 * which child, its exit reason and text, its old and new pid). The ring
 * is allocated at the first restart, so a supervisor that never restarts
 * anything pays nothing for it; a restart pays a clock read and one copy.
 *
 * INFO reads no child's memory and changes nothing, so it is answered at
 * once, also while the supervisor is stopping children or shutting down
 * (admin.c). Its reply is flat, in this library's layout (the request is
 * local only): a header, the status, the recalled restarts newest first,
 * then the children in start order.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi.h"
#include "sup_int.h"

struct restart_rec {
	uint64_t seq; /* the restart's number, from 1 */
	uint64_t at_ms;
	tr_pid old_pid, new_pid;
	int32_t reason;
	char id[TR_NAME_MAX + 1];
	char text[TR_REASON_TEXT_MAX];
};

/* The payload of TR_SUP_INFO_REPLY. */
typedef struct info_hdr {
	int32_t err; /* TR_OK: what follows is there */
	uint32_t nrecent;
	uint32_t nlisted;
	uint32_t reserved;
	tr_sup_status status;
} info_hdr;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- keeping ------------------------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;
	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

void tr__sup_note_restart(sup *s, child *c)
{
	s->nrestarts++;
	c->rec_seq = 0;
	if (s->recent == NULL) {
		s->recent = calloc(TR_SUP_RECENT_MAX, sizeof(*s->recent));
		if (s->recent == NULL)
			return; /* counted, not recalled */
	}
	struct restart_rec *r =
	    &s->recent[(s->nrestarts - 1) % TR_SUP_RECENT_MAX];
	r->seq = s->nrestarts;
	r->at_ms = now_ms();
	r->old_pid = c->last_pid;
	r->new_pid = TR_PID_NONE;
	r->reason = c->last_reason;
	copy_str(r->id, sizeof(r->id), c->id);
	copy_str(r->text, sizeof(r->text), s->exit_text);
	c->rec_seq = s->nrestarts;
}

void tr__sup_note_restarted(sup *s, child *c)
{
	c->restarts++;
	uint64_t seq = c->rec_seq;
	c->rec_seq = 0;
	if (seq == 0 || s->recent == NULL ||
	    s->nrestarts - seq >= TR_SUP_RECENT_MAX)
		return; /* a bystander of a group restart, or long forgotten */
	struct restart_rec *r = &s->recent[(seq - 1) % TR_SUP_RECENT_MAX];
	if (r->seq == seq)
		r->new_pid = c->pid;
}

/* ---- answering ---------------------------------------------------------- */

static void fill_status(sup *s, tr_sup_status *st)
{
	st->struct_size = sizeof(*st);
	st->pid = s->self;
	st->parent = s->parent;
	(void)tr__registry_name_pid(s->rt, s->self, st->name);
	st->strategy = s->flags.strategy;
	st->intensity = s->flags.intensity;
	st->period_ms = s->flags.period_ms;
	st->auto_shutdown = s->flags.auto_shutdown;
	st->restarts = s->nrestarts;
	st->nchildren = s->nchildren;
	for (child *c = s->head; c != NULL; c = c->next) {
		if (child_running(c))
			st->active++;
		if (c->type == TR_CHILD_SUPERVISOR)
			st->supervisors++;
		else
			st->workers++;
	}
	st->busy = s->op != OP_NONE && s->op != OP_SHUTDOWN;
	st->shutting_down = s->shutting_down;
}

static void fill_child(const child *c, tr_child_status *o)
{
	o->struct_size = sizeof(*o);
	copy_str(o->id, sizeof(o->id), c->id);
	copy_str(o->name, sizeof(o->name), c->name);
	o->pid = child_running(c) ? c->pid : TR_PID_NONE;
	o->type = (tr_child_type)c->type;
	o->restart = (tr_restart)c->restart;
	o->shutdown_ms = c->shutdown_ms;
	o->restarts = c->restarts;
	o->restarting = child_restarting(c);
	o->significant = c->significant;
}

void tr__sup_req_info(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t cap)
{
	/* The restarts recalled, newest first: those whose entry is
	 * there (a ring that could not be allocated at once lacks the
	 * oldest). */
	uint64_t nr = s->nrestarts;
	uint32_t nrecent = 0;
	while (s->recent != NULL && nrecent < TR_SUP_RECENT_MAX &&
	       nrecent < nr &&
	       s->recent[(nr - 1 - nrecent) % TR_SUP_RECENT_MAX].seq ==
	           nr - nrecent)
		nrecent++;
	uint32_t nlisted = s->nchildren < cap ? s->nchildren : cap;
	size_t size = sizeof(info_hdr) +
	              (size_t)nrecent * sizeof(tr_sup_restart_entry) +
	              (size_t)nlisted * sizeof(tr_child_status);
	info_hdr *h = calloc(1, size);
	if (h == NULL) {
		tr__sup_reply_err(ctx, from, ref, TR_ENOMEM, 0, TR_PID_NONE);
		return;
	}
	h->nrecent = nrecent;
	h->nlisted = nlisted;
	fill_status(s, &h->status);
	h->status.nrecent = nrecent;
	h->status.nlisted = nlisted;
	tr_sup_restart_entry *e = (tr_sup_restart_entry *)(h + 1);
	for (uint32_t i = 0; i < nrecent; i++) {
		const struct restart_rec *r =
		    &s->recent[(nr - 1 - i) % TR_SUP_RECENT_MAX];
		e[i].struct_size = sizeof(e[i]);
		e[i].reason = r->reason;
		e[i].at_ms = r->at_ms;
		e[i].old_pid = r->old_pid;
		e[i].new_pid = r->new_pid;
		memcpy(e[i].id, r->id, sizeof(e[i].id));
		memcpy(e[i].text, r->text, sizeof(e[i].text));
	}
	tr_child_status *cs = (tr_child_status *)(e + nrecent);
	uint32_t i = 0;
	for (child *c = s->head; c != NULL && i < nlisted; c = c->next)
		fill_child(c, &cs[i++]);
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = from;
	hdr.ref = ref;
	if (tr_reply(ctx, &hdr, TR_SUP_INFO_REPLY, h, size) == TR_EMSGSIZE)
		tr__sup_reply_err(ctx, from, ref, TR_EMSGSIZE, 0, TR_PID_NONE);
	free(h);
}

/* ---- asking ------------------------------------------------------------- */

int tr_sup_req_info(tr_sup_request *q, size_t cap)
{
	if (q == NULL)
		return TR_EINVAL;
	memset(q, 0, sizeof(*q));
	q->type = TR_SUP_REQ_INFO;
	q->cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	return TR_OK;
}

/* Checks a caller's output array: NULL only with cap 0, its first entry's
 * struct_size at least the first version's. */
static bool out_ok(const void *out, size_t cap, size_t min_size)
{
	if (cap == 0)
		return true;
	return tr__struct_out_ok(out, min_size) == TR_OK;
}

/* Copies n library entries of `size` bytes into the caller's array, whose
 * stride is its first entry's struct_size. */
static void copy_out(
    void *out, size_t cap, const void *src, size_t n, size_t size)
{
	if (cap == 0)
		return;
	uint32_t stride;
	memcpy(&stride, out, sizeof(stride));
	size_t k = n < cap ? n : cap;
	for (size_t i = 0; i < k; i++) {
		unsigned char *o = (unsigned char *)out + i * stride;
		memcpy(o, &stride, sizeof(stride));
		tr__struct_out(o, (const unsigned char *)src + i * size, size);
	}
}

int tr_sup_info_decode(tr_sup_status *status, tr_sup_restart_entry *recent,
    size_t recent_cap, tr_child_status *children, size_t children_cap,
    const tr_msg *reply)
{
	if (tr__struct_out_ok(status, TR_SUP_STATUS_V1_SIZE) != TR_OK ||
	    !out_ok(recent, recent_cap, TR_SUP_RESTART_ENTRY_V1_SIZE) ||
	    !out_ok(children, children_cap, TR_CHILD_STATUS_V1_SIZE) ||
	    reply == NULL)
		return TR_EINVAL;
	uint32_t ss = status->struct_size;
	memset(status, 0, ss);
	status->struct_size = ss;
	if (reply->type == TR_SUP_REPLY) {
		/* An error answer: no memory, too large, shutting down. */
		tr_sup_result r;
		if (tr_sup_reply_decode(&r, reply) != TR_OK || r.err == TR_OK)
			return TR_EINVAL;
		return r.err;
	}
	int32_t err;
	int kind = tr__sup_reply_kind(&err, reply, TR_SUP_INFO_REPLY);
	if (kind <= 0)
		return kind == 0 ? err : TR_EINVAL;
	if (reply->size < sizeof(info_hdr))
		return TR_EINVAL;
	/* The payload starts 16-byte aligned (troupe.h): read in place. */
	const info_hdr *h = (const info_hdr *)reply->data;
	size_t want = sizeof(*h) +
	              (size_t)h->nrecent * sizeof(tr_sup_restart_entry) +
	              (size_t)h->nlisted * sizeof(tr_child_status);
	if (h->err != TR_OK || h->nrecent > TR_SUP_RECENT_MAX ||
	    h->nlisted > h->status.nchildren || reply->size != want)
		return TR_EINVAL;
	tr__struct_out(status, &h->status, sizeof(h->status));
	const tr_sup_restart_entry *e = (const tr_sup_restart_entry *)(h + 1);
	copy_out(recent, recent_cap, e, h->nrecent, sizeof(*e));
	copy_out(children, children_cap, e + h->nrecent, h->nlisted,
	    sizeof(tr_child_status));
	return TR_OK;
}

int tr_sup_info(tr_sup_status *status, tr_sup_restart_entry *recent,
    size_t recent_cap, tr_child_status *children, size_t children_cap,
    tr_runtime *rt, tr_pid sup, int64_t timeout_ms)
{
	if (tr__struct_out_ok(status, TR_SUP_STATUS_V1_SIZE) != TR_OK ||
	    !out_ok(recent, recent_cap, TR_SUP_RESTART_ENTRY_V1_SIZE) ||
	    !out_ok(children, children_cap, TR_CHILD_STATUS_V1_SIZE) ||
	    rt == NULL)
		return TR_EINVAL;
	tr_sup_request q;
	(void)tr_sup_req_info(&q, children_cap);
	tr_msg *m = NULL;
	int rc = tr_call(&m, rt, sup, q.type, &q, sizeof(q), timeout_ms);
	if (rc != TR_OK) {
		uint32_t ss = status->struct_size;
		memset(status, 0, ss);
		status->struct_size = ss;
		return rc;
	}
	rc = tr_sup_info_decode(
	    status, recent, recent_cap, children, children_cap, m);
	tr_msg_free(m);
	return rc;
}
