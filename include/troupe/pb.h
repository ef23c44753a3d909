/*
 * protobuf-c messages as payloads: send a ProtobufCMessage to any pid,
 * local or on another node, and unpack one from a received tr_msg under
 * a byte budget. Part of the node library (libtroupe-node); the one
 * public header of troupe that names protobuf-c types, so only programs
 * that include it need protobuf-c's headers (troupe.h and node.h stay
 * free of them). Such a program links libprotobuf-c itself, as its own
 * generated code needs it anyway.
 *
 * Pids inside protobuf messages: import "troupe/pid.proto" (installed
 * under share/troupe/proto) and declare a field of type troupe.Pid; its
 * generated type is Troupe__Pid, declared in troupe/pid.pb-c.h (included
 * below) and defined in libtroupe-node. Fill such a field with
 * tr_pb_pid_set and read it with tr_pb_pid_get, which translate through
 * the node exactly as tr_pid_encode and tr_pid_decode do (troupe/pid.h):
 * a raw tr_pid means nothing to another node.
 *
 * Type tags. The receiver of a payload needs its type to unpack it; the
 * tr_msg's type tag says which. tr_pb_type derives a stable tag from the
 * message's full name (the descriptor's `name`, e.g. "shop.Order"): the
 * same on every node and in every build, from TR_PB_TYPE_BASE up to
 * TR_MSG_LOCAL_BASE (exclusive), so it never is a local-only or a system
 * tag. Two different names may hash to the same tag (with 100 message
 * types, about one chance in 10^6); an application that hands out its own
 * tags below TR_PB_TYPE_BASE never meets a derived one, and may pass its
 * own tag to tr_send_pb instead of TR_PB_TYPE_AUTO, e.g. where two of
 * its message types collide.
 *
 * Malformed payloads. The bytes of a message from another node are
 * whatever that node sent: tr_pb_unpack refuses bytes that do not parse as
 * the given type with an error, and bounds what the unpacked message may
 * take, so a bad or hostile payload costs the receiver an error, never a
 * crash or unbounded memory.
 *
 * Every function here is thread-safe.
 */
#ifndef TROUPE_PB_H
#define TROUPE_PB_H

#include <protobuf-c/protobuf-c.h>

#include "troupe/pid.h"
#include "troupe/pid.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Derived type tags are in [TR_PB_TYPE_BASE, TR_MSG_LOCAL_BASE). */
#define TR_PB_TYPE_BASE 0x80000000u

/* As a type for tr_send_pb and tr_post_pb: use tr_pb_type of the
 * message's descriptor. (A system tag, so never a tag of a message.) */
#define TR_PB_TYPE_AUTO 0xFFFFFFFFu

/* The type tag derived from the full name of `desc` (FNV-1a, 32 bits, of
 * the name, folded into the range above); the same for the same name on
 * every node and build. 0 when desc is NULL or not a message descriptor
 * (0 is below the range, so it is no derived tag). */
TR_API uint32_t tr_pb_type(const ProtobufCMessageDescriptor *desc);

/* Packs `msg` once, straight into a new message of tag `type`
 * (TR_PB_TYPE_AUTO: tr_pb_type(msg->descriptor)), for tr_send_msg or
 * tr_post_msg; on TR_OK the caller owns *out (tr_msg_free). Errors: TR_EINVAL
 * (NULL, not a message, a type of the runtime's), TR_EMSGSIZE (the packed size
 * is above the runtime's max_msg_size), TR_ENOMEM. */
TR_API int tr_pb_msg(
    tr_msg **out, tr_runtime *rt, uint32_t type, const ProtobufCMessage *msg);

/* Sends `msg`, packed once into the message that is sent (no second
 * copy), with tag `type` (TR_PB_TYPE_AUTO as for tr_pb_msg) from the
 * running actor to `to`. `msg` stays the caller's: it is only read.
 * Errors: those of tr_pb_msg and of tr_send_msg. */
TR_API int tr_send_pb(
    tr_ctx *ctx, tr_pid to, uint32_t type, const ProtobufCMessage *msg);

/* tr_send_pb from a plain thread (as tr_post_msg). */
TR_API int tr_post_pb(
    tr_runtime *rt, tr_pid to, uint32_t type, const ProtobufCMessage *msg);

/* Unpacks the payload of `m` as a message of type `desc` into *out, whose
 * memory, all of it, is charged against `budget` bytes: every allocation
 * counts its size plus 16 bytes, and one past the budget makes the unpack
 * fail. A message decodes into more memory than its packed size (an empty
 * submessage in a repeated field, two bytes packed, takes its struct and
 * more), so choose the budget by what the receiver accepts to spend, e.g.
 * 16 times the largest packed size it expects. On TR_OK the caller owns
 * *out: free it with tr_pb_free, never with protobuf-c's free_unpacked
 * (another allocator). Which type to unpack is the receiver's choice:
 * compare m->type with tr_pb_type(desc) (or the tag agreed on) first.
 * Errors (*out is NULL): TR_EINVAL (NULL arguments, budget 0, a desc that
 * is not a message descriptor, or bytes that are not a valid message of
 * that type: a malformed payload), TR_EMSGSIZE (the budget ran out: too
 * small for this payload, or hit before the bytes proved malformed), TR_ENOMEM
 * (the system is out of memory). */
TR_API int tr_pb_unpack(ProtobufCMessage **out, const tr_msg *m,
    const ProtobufCMessageDescriptor *desc, size_t budget);

/* Frees a message from tr_pb_unpack. NULL is ignored. */
TR_API void tr_pb_free(ProtobufCMessage *msg);

/* Fills `out` (initialised here with troupe__pid__init) with the portable
 * form of `pid` as this node names it: out->node then points to `name`,
 * a buffer of TR_NODE_NAME_MAX + 1 bytes of the caller's that must live as
 * long as `out` is used (packed). Errors: as tr_pid_encode. */
TR_API int tr_pb_pid_set(
    Troupe__Pid *out, char *name, tr_node *node, tr_pid pid);

/* The pid of this node that `in` means, as tr_pid_decode gives it
 * (errors included: TR_ENOPROC for a stale pid, TR_EINVAL for NULL, an
 * empty or overlong name, incarnation or gen 0). *pid is TR_PID_NONE on
 * any error. */
TR_API int tr_pb_pid_get(tr_pid *pid, tr_node *node, const Troupe__Pid *in);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_PB_H */
