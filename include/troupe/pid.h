/*
 * Pids in payloads: a portable encoding of a tr_pid that means the same
 * actor on every node.
 *
 * A tr_pid's `node` field is an index into one node's table of peers, so
 * its raw bytes mean nothing to another process. tr_pid_encode writes a
 * pid as its node's name and incarnation plus the actor's slot and
 * generation (Erlang's external pid format carries the same four things);
 * tr_pid_decode translates such bytes back into a tr_pid of the decoding
 * node, which tr_send, tr_link, tr_monitor and the rest then take as any
 * other pid. A pid can thus go from node A to B inside a payload, from B
 * on to C, and still reach its actor on A from C.
 *
 * The encoding, version 1 (all integers little-endian):
 *
 *   offset 0       1 byte   version, 1
 *   offset 1       1 byte   L, the length of the node's name, 1..255
 *   offset 2       L bytes  the node's name (no NUL, no terminator)
 *   offset 2+L     8 bytes  the node's incarnation (never 0)
 *   offset 10+L    4 bytes  slot
 *   offset 14+L    4 bytes  generation (never 0)
 *
 * so an encoding is TR_PID_ENCODED_SIZE(L) = 18 + L bytes, at most
 * TR_PID_ENCODED_MAX, and its first two bytes say how long it is
 * (tr_pid_encoded_size), which lets several follow one another in a
 * payload. A new layout gets a new version byte; a decoder refuses a
 * version it does not know. The same four fields make the Pid message
 * of troupe/pid.proto (troupe/pb.h), for payloads that are protobuf.
 *
 * Staleness. A pid is stale once its actor has exited or its node has
 * restarted (a new incarnation). A send to a stale pid is dropped, as in
 * Erlang; tr_pid_decode reports what it can tell at once with
 * TR_ENOPROC: a pid of this node of an actor that is not alive, or of an
 * earlier incarnation of this node, or of a node of which this node has
 * been connected to a later incarnation. A later incarnation that a
 * payload only names proves nothing (any peer can name one) and makes no
 * pid stale.
 *
 * Nodes that are not connected. A pid of a node this node is not
 * connected to decodes into a pid that names that node (name and
 * incarnation), as one received from a peer does: it can be passed on
 * (and encoded again) and it means its actor once the node is connected,
 * but a send to it before then fails with TR_ENOPROC and a link or
 * monitor fires noconnection. Decoding never connects: connect first
 * (tr_node_connect) where a payload may name a node not yet met.
 *
 * Every function here is thread-safe, from actors and from plain threads.
 */
#ifndef TROUPE_PID_H
#define TROUPE_PID_H

#include "troupe/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version byte that tr_pid_encode writes. */
#define TR_PID_ENCODING_V1 1u

/* The size of an encoding whose node name is `name_len` bytes long. */
#define TR_PID_ENCODED_SIZE(name_len) ((size_t)(name_len) + 18u)

/* The largest encoding (a name of TR_NODE_NAME_MAX bytes): a buffer of
 * this size holds any pid. */
#define TR_PID_ENCODED_MAX TR_PID_ENCODED_SIZE(TR_NODE_NAME_MAX)

/* Writes the portable encoding of `pid` (a pid of this node, node 0, or of
 * a peer of it) into `buf`, which has room for `cap` bytes, and its length
 * into `*len`. Errors: TR_EINVAL (a NULL argument, TR_PID_NONE),
 * TR_EMSGSIZE (cap too small: *len is set to the size needed, nothing is
 * written), TR_ENOPROC (a pid whose node entry is gone from this node's
 * table, or of an earlier incarnation of this node: it can no longer be
 * named). It does not check that the actor is alive. */
TR_API int tr_pid_encode(
    void *buf, size_t cap, size_t *len, tr_node *node, tr_pid pid);

/* Reads the encoding of exactly `len` bytes at `buf` into a pid of this
 * node in `*pid`: node 0 when the name and incarnation are this node's,
 * else the entry of that node in this node's table (made if there is
 * none; see "Nodes that are not connected" above). Errors: TR_EINVAL
 * (NULL arguments, a length other than the encoding's, an unknown
 * version, a name of length 0 or with a NUL byte, incarnation or
 * generation 0), TR_ENOPROC (stale, see above), TR_ENOMEM (the table has
 * no room for another node). On any error *pid is TR_PID_NONE. */
TR_API int tr_pid_decode(
    tr_pid *pid, tr_node *node, const void *buf, size_t len);

/* The size of the encoding that starts at `buf` (TR_PID_ENCODED_SIZE of
 * its name length), or 0 when `len` bytes cannot hold one (fewer than two
 * bytes, fewer than the encoding's size, an unknown version). It checks
 * nothing else: tr_pid_decode does. Pure, needs no node. */
TR_API size_t tr_pid_encoded_size(const void *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_PID_H */
