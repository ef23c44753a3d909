/*
 * protobuf-c messages as payloads (troupe/pb.h): packing into a message,
 * derived type tags, unpacking under a budget, pids in Troupe__Pid.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "pid_codec.h"
#include "troupe/pb.h"

/* ---- type tags ----------------------------------------------------------- */

uint32_t tr_pb_type(const ProtobufCMessageDescriptor *d)
{
	if (d == NULL || d->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC ||
	    d->name == NULL)
		return 0;
	/* FNV-1a: simple, stable, and the same on every host (bytes, not
	 * words). Its low bits are mixed well enough for a modulo. */
	uint32_t h = 2166136261u;
	for (const unsigned char *c = (const unsigned char *)d->name; *c; c++)
		h = (h ^ *c) * 16777619u;
	return TR_PB_TYPE_BASE + h % (TR_MSG_LOCAL_BASE - TR_PB_TYPE_BASE);
}

/* ---- packing ------------------------------------------------------------- */

static bool is_msg(const ProtobufCMessage *msg)
{
	return msg != NULL && msg->descriptor != NULL &&
	       msg->descriptor->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC;
}

int tr_pb_msg(
    tr_msg **out, tr_runtime *rt, uint32_t type, const ProtobufCMessage *msg)
{
	if (out == NULL)
		return TR_EINVAL;
	*out = NULL;
	if (rt == NULL || !is_msg(msg))
		return TR_EINVAL;
	if (type == TR_PB_TYPE_AUTO)
		type = tr_pb_type(msg->descriptor);
	if (type >= TR_MSG_SYSTEM)
		return TR_EINVAL;
	size_t size = protobuf_c_message_get_packed_size(msg);
	if (size > UINT32_MAX)
		return TR_EMSGSIZE;
	tr_msg *m;
	int rc = tr_msg_alloc(&m, rt, type, size);
	if (rc != TR_OK)
		return rc;
	/* Packed in place: the message's own payload is the one buffer the
	 * bytes are ever written to before they are sent. */
	if (protobuf_c_message_pack(msg, m->data) != size) {
		tr_msg_free(m);
		return TR_EINVAL;
	}
	*out = m;
	return TR_OK;
}

int tr_send_pb(
    tr_ctx *ctx, tr_pid to, uint32_t type, const ProtobufCMessage *msg)
{
	if (ctx == NULL)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr_pb_msg(&m, tr_runtime_of(ctx), type, msg);
	if (rc == TR_OK && (rc = tr_send_msg(ctx, to, m)) != TR_OK)
		tr_msg_free(m);
	return rc;
}

int tr_post_pb(
    tr_runtime *rt, tr_pid to, uint32_t type, const ProtobufCMessage *msg)
{
	tr_msg *m;
	int rc = tr_pb_msg(&m, rt, type, msg);
	if (rc == TR_OK && (rc = tr_post_msg(rt, to, m)) != TR_OK)
		tr_msg_free(m);
	return rc;
}

/* ---- unpacking under a budget -------------------------------------------- */

/* Each block carries a header of this size (enough to keep what follows
 * aligned for any type), charged to the budget with the block. */
#define HDR sizeof(max_align_t)

struct budget {
	size_t left;
	bool over; /* an allocation was refused for the budget */
	bool oom;  /* malloc failed */
};

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;
	if (size > b->left || b->left - size < HDR) {
		b->over = true;
		return NULL;
	}
	unsigned char *p = malloc(size + HDR);
	if (p == NULL) {
		b->oom = true;
		return NULL;
	}
	b->left -= size + HDR;
	return p + HDR;
}

/* Frees need no budget: the same free serves a failed unpack (with the
 * budget's allocator) and tr_pb_free (with the one below). */
static void block_free(void *data, void *ptr)
{
	(void)data;
	if (ptr != NULL)
		free((unsigned char *)ptr - HDR);
}

static void *no_alloc(void *data, size_t size)
{
	(void)data;
	(void)size;
	return NULL;
}

static ProtobufCAllocator free_allocator = {no_alloc, block_free, NULL};

int tr_pb_unpack(ProtobufCMessage **out, const tr_msg *m,
    const ProtobufCMessageDescriptor *desc, size_t budget)
{
	if (out == NULL)
		return TR_EINVAL;
	*out = NULL;
	if (m == NULL || budget == 0 || desc == NULL ||
	    desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return TR_EINVAL;
	struct budget b = {budget, false, false};
	ProtobufCAllocator a = {budget_alloc, block_free, &b};
	/* The length is the message's, from the runtime (or the node's
	 * frame), never from the bytes: protobuf-c reads no further. */
	ProtobufCMessage *r =
	    protobuf_c_message_unpack(desc, &a, m->size, m->data);
	if (r == NULL)
		return b.oom ? TR_ENOMEM : b.over ? TR_EMSGSIZE : TR_EINVAL;
	*out = r;
	return TR_OK;
}

void tr_pb_free(ProtobufCMessage *msg)
{
	if (msg != NULL)
		protobuf_c_message_free_unpacked(msg, &free_allocator);
}

/* ---- pids ---------------------------------------------------------------- */

int tr_pb_pid_set(Troupe__Pid *out, char *name, tr_node *node, tr_pid pid)
{
	if (out == NULL || name == NULL)
		return TR_EINVAL;
	troupe__pid__init(out);
	/* Through the portable encoding, so the two forms cannot drift. */
	uint8_t buf[TR_PID_ENCODED_MAX];
	size_t len;
	int rc = tr_pid_encode(buf, sizeof(buf), &len, node, pid);
	struct tr__pidc v;
	if (rc != TR_OK || (rc = tr__pidc_parse(&v, buf, len)) != TR_OK)
		return rc;
	memcpy(name, v.name, v.name_len);
	name[v.name_len] = '\0';
	out->node = name;
	out->incarnation = v.inc;
	out->slot = v.slot;
	out->gen = v.gen;
	return TR_OK;
}

int tr_pb_pid_get(tr_pid *pid, tr_node *node, const Troupe__Pid *in)
{
	if (pid != NULL)
		*pid = TR_PID_NONE;
	if (pid == NULL || in == NULL ||
	    in->base.descriptor != &troupe__pid__descriptor || in->node == NULL)
		return TR_EINVAL;
	struct tr__pidc v = {in->node, strnlen(in->node, TR_NODE_NAME_MAX + 1),
	    in->incarnation, in->slot, in->gen};
	uint8_t buf[TR_PID_ENCODED_MAX];
	size_t len;
	if (tr__pidc_write(&v, buf, sizeof(buf), &len) != TR_OK)
		return TR_EINVAL;
	return tr_pid_decode(pid, node, buf, len);
}
