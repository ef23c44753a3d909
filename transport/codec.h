/*
 * Encoding and decoding of wire messages (proto/troupe.proto) with
 * protobuf-c, under a memory budget.
 *
 * Framing: protobuf has no end marker, and protobuf-c may parse a
 * truncated buffer as a shorter valid message (a Batch cut between two
 * envelopes decodes as a Batch with fewer envelopes). So the length of a
 * frame must come from the carrier, i.e. from the nng message that holds
 * exactly one encoded frame; never take a length from the payload itself,
 * and never concatenate frames in one buffer.
 *
 * Budget: every decoded message is allocated through a ProtobufCAllocator
 * that charges each allocation (its size plus a small header) against
 * `budget` bytes; once the budget would be exceeded the allocation fails,
 * and the decode returns NULL having freed everything. A peer can thus make
 * a decode cost at most about `budget` bytes of memory (twice that at
 * worst, see codec.c), whatever counts and lengths it declares (a length
 * prefix longer than the buffer fails on its own). The allocations come
 * from a per-decode arena of a few large blocks, freed at once, but are
 * charged as if each were a separate block with a header, so a frame
 * decodes into more memory than its encoded size. Measured: a bare
 * Envelope (4 bytes on the wire) costs 184 bytes decoded, one with a
 * target pid (20 bytes) about 300, one with both pids, a type and a short
 * payload (50 bytes) about 450. So choose the budget by who sent the
 * frame: tr__decode_budget() covers honest traffic (it is an upper bound,
 * never reserved); a pipe that has not proved the cookie yet may only send
 * a Hello or a Proof, so decode its frames with a small fixed budget (a
 * few KiB) whatever their size.
 *
 * Decoded messages own their memory (nothing points into `buf`), with one
 * exception: the payloads in Envelope.more of a Batch frame may point into
 * `buf` (the hand-written decoder below does that, to spare a copy of
 * every message of a run), so keep the frame's bytes until the decoded
 * Frame is freed. Free decoded messages with the matching *_free function
 * of this file, never with protobuf-c's own free_unpacked (another
 * allocator). Every function here
 * is reentrant; a decoded message may be read by any thread.
 */
#ifndef TR_CODEC_H
#define TR_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "troupe.pb-c.h"

#define TR__DECODE_FACTOR 16          /* decoded bytes per encoded byte */
#define TR__DECODE_SLACK (64u * 1024) /* plus this, for small frames */

/* A budget for decoding `len` bytes of honest traffic: TR__DECODE_FACTOR *
 * len + TR__DECODE_SLACK, saturating. It covers every frame whose
 * envelopes each carry a pid (the worst ratio measured is 15x), plus a few
 * hundred bare ones (heartbeats) per frame; a sender that packs thousands
 * of bare envelopes into one frame is refused. */
size_t tr__decode_budget(size_t len);

/* ---- generic ------------------------------------------------------------- */

/* Decodes `len` bytes at `buf` (NULL is allowed when len is 0) as a
 * message of descriptor `d`, charging at most `budget` bytes. Returns the
 * message, or NULL when the bytes are malformed or the budget is too
 * small (also for a budget of 0). The caller owns the result: free it with
 * tr__pb_free. No validation beyond protobuf's own is done. */
ProtobufCMessage *tr__pb_decode(const ProtobufCMessageDescriptor *d,
    const uint8_t *buf, size_t len, size_t budget);

/* Frees a message from any decode function of this file. NULL is
 * ignored. */
void tr__pb_free(ProtobufCMessage *m);

/* Encodes `m` (a valid message, e.g. built from its INIT macro) into a new
 * malloc'd buffer stored in `*buf` (never NULL on success, even for an
 * empty encoding) and its size in `*len`; the caller frees it with free().
 * Errors: TR_EINVAL (a NULL argument), TR_ENOMEM. */
int tr__pb_encode(uint8_t **buf, size_t *len, const ProtobufCMessage *m);

/* ---- node frames --------------------------------------------------------- */

/* Decodes one Frame, as tr__pb_decode, and also refuses (NULL) a Frame
 * with no body set and a Batch holding an Envelope whose `control` is not
 * a value of the Control enum known to this build, or that has entries in
 * `more` with a control other than NONE or NAMED_SEND. Free the result
 * with tr__frame_free. */
Troupe__Wire__Frame *tr__frame_decode(
    const uint8_t *buf, size_t len, size_t budget);

/* Frees a decoded Frame. NULL is ignored. */
void tr__frame_free(Troupe__Wire__Frame *f);

/* Encodes a Frame; see tr__pb_encode. */
int tr__frame_encode(uint8_t **buf, size_t *len, const Troupe__Wire__Frame *f);

/* The packed size and encoding of one Envelope, byte for byte what
 * protobuf_c_message_get_packed_size and protobuf_c_message_pack give,
 * without their walk over the descriptors (the encode of every remote
 * send). For an envelope without unknown fields (one the node built);
 * otherwise they defer to protobuf-c. tr__envelope_pack writes
 * tr__envelope_size(e) bytes at `out` and returns that count. */
size_t tr__envelope_size(const Troupe__Wire__Envelope *e);
size_t tr__envelope_pack(const Troupe__Wire__Envelope *e, uint8_t *out);

/* A protobuf varint: its length in bytes (1..10), and its encoding at
 * `p` (room for 10 bytes), returning the bytes written. */
size_t tr__varint_size(uint64_t v);
size_t tr__varint_put(uint8_t *p, uint64_t v);

/* ---- client endpoint messages -------------------------------------------- */

/* Decodes a ClientRequest, as tr__pb_decode. Free with
 * tr__client_request_free. */
Troupe__Wire__ClientRequest *tr__client_request_decode(
    const uint8_t *buf, size_t len, size_t budget);

/* Frees a decoded ClientRequest. NULL is ignored. */
void tr__client_request_free(Troupe__Wire__ClientRequest *r);

/* Encodes a ClientRequest; see tr__pb_encode. */
int tr__client_request_encode(
    uint8_t **buf, size_t *len, const Troupe__Wire__ClientRequest *r);

/* Decodes a ClientReply, as tr__pb_decode. Free with
 * tr__client_reply_free. */
Troupe__Wire__ClientReply *tr__client_reply_decode(
    const uint8_t *buf, size_t len, size_t budget);

/* Frees a decoded ClientReply. NULL is ignored. */
void tr__client_reply_free(Troupe__Wire__ClientReply *r);

/* Encodes a ClientReply; see tr__pb_encode. */
int tr__client_reply_encode(
    uint8_t **buf, size_t *len, const Troupe__Wire__ClientReply *r);

#endif
