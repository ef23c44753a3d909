/*
 * A partition actor's queue of batches waiting for their answers
 * (kv_part.h), and the monitors of the remote primaries they went to.
 */
#include <stdlib.h>
#include <string.h>

#include "kv_part.h"
#include "resp_ops.h"

kv_req *kv_q_at(kv_part *s, uint32_t i)
{
	return &s->q[(s->qhead + i) & (s->qcap - 1)];
}

bool kv_q_push(kv_part *s, const kv_req *r)
{
	if (s->qn == s->qcap) {
		uint32_t nc = s->qcap != 0 ? s->qcap * 2 : 64;
		kv_req *nq = malloc((size_t)nc * sizeof(*nq));
		if (nq == NULL)
			return false;
		for (uint32_t i = 0; i < s->qn; i++)
			nq[i] = *kv_q_at(s, i);
		free(s->q);
		s->q = nq;
		s->qcap = nc;
		s->qhead = 0;
	}
	s->q[(s->qhead + s->qn) & (s->qcap - 1)] = *r;
	s->qn++;
	return true;
}

bool kv_q_fill_error(kv_part *s, kv_req *r, const char *text)
{
	size_t tl = strlen(text);
	uint32_t one = (uint32_t)tl + 3;
	size_t len = sizeof(rs_replies_hdr) + (size_t)r->nops * (4 + one);
	char *b = malloc(len);
	if (b == NULL)
		return false;
	rs_replies_hdr h = {.n = r->nops, .shard = s->p};
	memcpy(b, &h, sizeof(h));
	char *lens = b + sizeof(h), *p = lens + 4 * (size_t)r->nops;
	for (uint32_t i = 0; i < r->nops; i++) {
		memcpy(lens + 4 * (size_t)i, &one, 4);
		*p++ = '-';
		memcpy(p, text, tl);
		p += tl;
		*p++ = '\r';
		*p++ = '\n';
	}
	free(r->bytes);
	r->bytes = b;
	r->len = len;
	r->filled = true;
	r->seq = 0; /* an error is ready at once */
	atomic_fetch_add_explicit(&kv_stats.errors, r->nops,
	    memory_order_relaxed);
	return true;
}

static bool ready(const kv_part *s, const kv_req *r)
{
	if (!r->filled)
		return false;
	return !tr_pid_is_none(r->target) || r->seq <= s->released;
}

/* The answer to another node's partition actor: its id, then the
 * replies. */
static void send_fwd_reply(tr_ctx *ctx, const kv_req *r)
{
	tr_msg *m;
	kv_seq id = {.seq = r->id};
	if (tr_msg_alloc(&m, tr_runtime_of(ctx), KV_MSG_FWD_REPLY,
	        sizeof(id) + r->len) != TR_OK)
		return; /* its sender times it out */
	memcpy(m->data, &id, sizeof(id));
	memcpy((char *)m->data + sizeof(id), r->bytes, r->len);
	if (tr_send_msg(ctx, r->reply_to, m) != TR_OK)
		tr_msg_free(m);
}

void kv_q_flush(tr_ctx *ctx, kv_part *s)
{
	while (s->qn > 0) {
		kv_req *r = kv_q_at(s, 0);
		if (!ready(s, r))
			break;
		/* The answer says which partition it is of. */
		memcpy(r->bytes + offsetof(rs_replies_hdr, shard), &s->p,
		    sizeof(s->p));
		/* A connection that has gone needs no answer. */
		if (r->reply_type == KV_MSG_FWD_REPLY)
			send_fwd_reply(ctx, r);
		else
			(void)tr_send(ctx, r->reply_to, r->reply_type, r->bytes,
			    r->len);
		free(r->bytes);
		free(r->ops);
		s->qhead = (s->qhead + 1) & (s->qcap - 1);
		s->qn--;
	}
	if (s->qn == 0 && s->qcap > 1024) {
		free(s->q);
		s->q = NULL;
		s->qcap = s->qhead = 0;
	}
}

void kv_q_fail_local(kv_part *s, const char *text)
{
	for (uint32_t i = 0; i < s->qn; i++) {
		kv_req *r = kv_q_at(s, i);
		if (tr_pid_is_none(r->target) && r->filled &&
		    r->seq > s->released)
			(void)kv_q_fill_error(s, r, text);
	}
}

void kv_q_fini(kv_part *s)
{
	for (uint32_t i = 0; i < s->qn; i++) {
		free(kv_q_at(s, i)->bytes);
		free(kv_q_at(s, i)->ops);
	}
	free(s->q);
	s->q = NULL;
	s->qn = s->qcap = s->qhead = 0;
}

bool kv_watch_add(tr_ctx *ctx, kv_part *s, tr_pid pid)
{
	for (uint32_t i = 0; i < s->nwatch; i++)
		if (tr_pid_eq(s->watch[i].pid, pid))
			return true;
	if (s->nwatch == KV_WATCH_MAX) {
		/* Forget the ones no entry waits on. */
		uint32_t k = 0;
		for (uint32_t i = 0; i < s->nwatch; i++) {
			bool used = false;
			for (uint32_t j = 0; j < s->qn && !used; j++)
				used = tr_pid_eq(
				    kv_q_at(s, j)->target, s->watch[i].pid);
			if (used)
				s->watch[k++] = s->watch[i];
			else
				(void)tr_demonitor(ctx, s->watch[i].ref);
		}
		s->nwatch = k;
		if (k == KV_WATCH_MAX)
			return false;
	}
	kv_watch *w = &s->watch[s->nwatch];
	if (tr_monitor(ctx, &w->ref, pid) != TR_OK)
		return false;
	w->pid = pid;
	s->nwatch++;
	return true;
}
