/*
 * The portable start-by-name request (TR_SUP_REQ_START_NAMED), both sides:
 * the callers' encoder and decoder and the blocking call, and the
 * supervisor's decoding of a request and its reply.
 *
 * Such requests come from parties the supervisor cannot trust (other nodes,
 * clients), so their payload is decoded field by field, every length
 * checked against the payload's size, before anything else. The layout is
 * described in sup.h and docs/supervision.md.
 */
#include <stdlib.h>
#include <string.h>

#include "sup_int.h"

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int32_t get_i32(const unsigned char *p)
{
	uint32_t u = get_u32(p);
	int32_t v;
	memcpy(&v, &u, sizeof(v));
	return v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_i32(unsigned char *p, int32_t v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof(u));
	put_u32(p, u);
}

/* Offsets of the START_NAMED payload (sup.h). */
enum {
	NQ_VERSION = 0,
	NQ_RESTART = 4,
	NQ_SHUTDOWN = 8,
	NQ_TYPE = 12,
	NQ_FLAGS = 16,
	NQ_ARGSIZE = 20,
	NQ_ID = 24,
	NQ_BEHAVIOUR = NQ_ID + TR_SUP_NAMED_STR_SIZE,
	NQ_ARG = NQ_BEHAVIOUR + TR_SUP_NAMED_STR_SIZE,
};

#define NQ_SIGNIFICANT 1u

_Static_assert(NQ_ARG == TR_SUP_NAMED_HDR_SIZE, "START_NAMED layout");
_Static_assert(TR_SUP_NAMED_HDR_SIZE == 154, "the layout sup.h documents");

/* A fixed-size string field: its length before the first NUL, or -1 if it
 * has no NUL or anything but NULs after it. */
static int field_str(const unsigned char *f, char *out)
{
	const unsigned char *nul = memchr(f, '\0', TR_SUP_NAMED_STR_SIZE);
	if (nul == NULL)
		return -1;
	size_t len = (size_t)(nul - f);
	for (size_t i = len; i < TR_SUP_NAMED_STR_SIZE; i++)
		if (f[i] != 0)
			return -1;
	memcpy(out, f, len + 1);
	return (int)len;
}

void tr__sup_named_free(named_req *nq)
{
	if (nq == NULL)
		return;
	free(nq->blob);
	free(nq);
}

/* Decodes and checks a START_NAMED payload of `n` bytes. Only bytes below
 * `n` are read, and the argument's length is trusted only once it matches
 * the payload's size. Errors: TR_EINVAL (malformed), TR_ENOENT (the
 * behaviour is not registered), TR_ENOMEM. */
int tr__sup_named_decode(
    tr_runtime *rt, const unsigned char *p, size_t n, named_req **out)
{
	*out = NULL;
	if (n < TR_SUP_NAMED_HDR_SIZE ||
	    get_u32(p + NQ_VERSION) != TR_SUP_NAMED_VERSION)
		return TR_EINVAL;
	uint32_t restart = get_u32(p + NQ_RESTART);
	int32_t shutdown = get_i32(p + NQ_SHUTDOWN);
	uint32_t type = get_u32(p + NQ_TYPE);
	uint32_t flags = get_u32(p + NQ_FLAGS);
	uint32_t asz = get_u32(p + NQ_ARGSIZE);
	if (restart > TR_RESTART_TEMPORARY || type > TR_CHILD_SUPERVISOR ||
	    (flags & ~NQ_SIGNIFICANT) != 0 || asz != n - TR_SUP_NAMED_HDR_SIZE)
		return TR_EINVAL;
	tr_child_spec spec = {
	    .struct_size = sizeof(tr_child_spec),
	    .restart = (tr_restart)restart,
	    .shutdown_ms = shutdown,
	    .type = (tr_child_type)type,
	    .significant = (flags & NQ_SIGNIFICANT) != 0,
	};
	if (!tr__sup_valid_policy(&spec))
		return TR_EINVAL;
	char id[TR_SUP_NAMED_STR_SIZE], name[TR_SUP_NAMED_STR_SIZE];
	if (field_str(p + NQ_ID, id) < 0 ||
	    field_str(p + NQ_BEHAVIOUR, name) < 1)
		return TR_EINVAL;
	/* A field of TR_SUP_NAMED_STR_SIZE bytes holds at most TR_NAME_MAX
	 * before its NUL, so both lengths are in range. */
	const tr_behaviour *b = tr__behaviour_find(rt, name);
	if (b == NULL)
		return TR_ENOENT;
	named_req *nq = calloc(1, sizeof(*nq));
	if (nq == NULL)
		return TR_ENOMEM;
	nq->blob = tr__sup_blob_new(p + NQ_ARG, asz);
	if (nq->blob == NULL) {
		free(nq);
		return TR_ENOMEM;
	}
	memcpy(nq->id, id, sizeof(id));
	nq->b = b;
	nq->spec = spec;
	*out = nq;
	return TR_OK;
}

/* The portable reply; the child's pid travels as slot and gen, since its
 * node index means something only here. */
void tr__sup_named_reply(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid)
{
	unsigned char r[TR_SUP_NAMED_REPLY_SIZE];
	put_u32(r + 0, TR_SUP_NAMED_VERSION);
	put_i32(r + 4, err);
	put_i32(r + 8, reason);
	put_u32(r + 12, pid.slot);
	put_u32(r + 16, pid.gen);
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = to;
	hdr.ref = ref;
	(void)tr_reply(ctx, &hdr, TR_SUP_NAMED_REPLY, r, sizeof(r));
}

/* ---- the callers' side -------------------------------------------------- */

void tr_sup_named_spec_init(tr_sup_named_spec *spec, const char *id,
    const char *behaviour, const void *arg, size_t arg_size)
{
	if (spec == NULL)
		return;
	memset(spec, 0, sizeof(*spec));
	spec->id = id;
	spec->behaviour = behaviour;
	spec->restart = TR_RESTART_PERMANENT;
	spec->shutdown_ms = 5000;
	spec->type = TR_CHILD_WORKER;
	spec->significant = false;
	spec->arg = arg;
	spec->arg_size = arg_size;
}

size_t tr_sup_named_size(const tr_sup_named_spec *spec)
{
	if (spec == NULL ||
	    spec->arg_size > UINT32_MAX - (size_t)TR_SUP_NAMED_HDR_SIZE)
		return 0;
	return TR_SUP_NAMED_HDR_SIZE + spec->arg_size;
}

int tr_sup_named_encode(
    void *buf, size_t cap, size_t *len, const tr_sup_named_spec *spec)
{
	if (len == NULL || spec == NULL)
		return TR_EINVAL;
	size_t size = tr_sup_named_size(spec);
	tr_child_spec policy = {
	    .struct_size = sizeof(tr_child_spec),
	    .restart = spec->restart,
	    .shutdown_ms = spec->shutdown_ms,
	    .type = spec->type,
	    .significant = spec->significant,
	};
	size_t idlen =
	    spec->id != NULL ? strnlen(spec->id, TR_NAME_MAX + 1) : 0;
	/* A process child needs a start function, which no request can
	 * carry. */
	if (size == 0 || !tr__sup_valid_policy(&policy) ||
	    spec->type == TR_CHILD_PROCESS || idlen > TR_NAME_MAX ||
	    !tr__sup_valid_id(spec->behaviour) ||
	    (spec->arg == NULL && spec->arg_size != 0))
		return TR_EINVAL;
	*len = size;
	if (buf == NULL || cap < size)
		return TR_EMSGSIZE;
	unsigned char *p = buf;
	memset(p, 0, TR_SUP_NAMED_HDR_SIZE);
	put_u32(p + NQ_VERSION, TR_SUP_NAMED_VERSION);
	put_u32(p + NQ_RESTART, (uint32_t)spec->restart);
	put_i32(p + NQ_SHUTDOWN, spec->shutdown_ms);
	put_u32(p + NQ_TYPE, (uint32_t)spec->type);
	put_u32(p + NQ_FLAGS, spec->significant ? NQ_SIGNIFICANT : 0);
	put_u32(p + NQ_ARGSIZE, (uint32_t)spec->arg_size);
	if (idlen != 0)
		memcpy(p + NQ_ID, spec->id, idlen);
	memcpy(p + NQ_BEHAVIOUR, spec->behaviour, strlen(spec->behaviour));
	if (spec->arg_size != 0)
		memcpy(p + NQ_ARG, spec->arg, spec->arg_size);
	return TR_OK;
}

int tr_sup_named_reply_decode(tr_sup_named_reply *out, const tr_msg *reply)
{
	if (out == NULL || reply == NULL)
		return TR_EINVAL;
	memset(out, 0, sizeof(*out));
	int32_t err;
	int kind = tr__sup_reply_kind(&err, reply, TR_SUP_NAMED_REPLY);
	if (kind <= 0) {
		out->err = err;
		return kind == 0 ? TR_OK : TR_EINVAL;
	}
	const unsigned char *p = reply->data;
	if (reply->size != TR_SUP_NAMED_REPLY_SIZE ||
	    get_u32(p) != TR_SUP_NAMED_VERSION)
		return TR_EINVAL;
	err = get_i32(p + 4);
	int32_t reason = get_i32(p + 8);
	uint32_t slot = get_u32(p + 12), gen = get_u32(p + 16);
	/* An answer that is no error code, or that names a child when it
	 * should not (or none when it should), is not one a supervisor
	 * gives. TR_OK names none when the child's init ignored the start
	 * (OTP's {ok, undefined}). */
	if (err > 0 || (err == TR_EALREADY && gen == 0) ||
	    (err != TR_OK && err != TR_EALREADY && gen != 0))
		return TR_EINVAL;
	out->err = err;
	out->init_reason = err == TR_EINIT ? reason : 0;
	out->child = tr_sup_named_child_pid(reply, slot, gen);
	return TR_OK;
}

int tr_sup_start_named_child(tr_pid *child_pid, tr_runtime *rt, tr_pid sup,
    const tr_sup_named_spec *spec, int64_t timeout_ms, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	if (rt == NULL || spec == NULL)
		return TR_EINVAL;
	/* Most requests carry a small argument: encode on the stack. */
	unsigned char small[512];
	size_t len = 0;
	int rc = tr_sup_named_encode(small, sizeof(small), &len, spec);
	unsigned char *buf = small;
	if (rc == TR_EMSGSIZE) {
		buf = malloc(len);
		if (buf == NULL)
			return TR_ENOMEM;
		rc = tr_sup_named_encode(buf, len, &len, spec);
	}
	tr_msg *m = NULL;
	if (rc == TR_OK)
		rc = tr_call(
		    &m, rt, sup, TR_SUP_REQ_START_NAMED, buf, len, timeout_ms);
	if (buf != small)
		free(buf);
	if (rc != TR_OK)
		return rc;
	tr_sup_named_reply r;
	rc = tr_sup_named_reply_decode(&r, m);
	tr_msg_free(m);
	if (rc != TR_OK)
		return rc;
	if (r.err == TR_EINIT && init_reason != NULL)
		*init_reason = r.init_reason;
	if (child_pid != NULL && (r.err == TR_OK || r.err == TR_EALREADY))
		*child_pid = r.child;
	return r.err;
}
