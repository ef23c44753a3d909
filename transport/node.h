/*
 * Internals of the node (transport/node.c) shared with its tests: the
 * conventions of the wire that are not spelled out in proto/troupe.proto.
 * The public API is include/troupe/node.h; docs/distribution.md explains
 * the design.
 */
#ifndef TR_NODE_INT_H
#define TR_NODE_INT_H

#include <stdint.h>

/* Envelope.flags bits. One bit per control kind is enough: each meaning
 * is tied to the kind of envelope that carries it. */
#define TR__ENV_REPLY 1u   /* CONTROL_NONE: a reply (TR__MF_REPLY) */
#define TR__ENV_VIALINK 1u /* CONTROL_EXIT: sent because of a link */
#define TR__ENV_LINK 1u    /* CONTROL_SPAWN_REQUEST/REPLY: spawn_link */

/* Node-to-node lookups of registered names (tr_node_whereis) ride on
 * CONTROL_NAMED_SEND with this reserved type: the receiving node answers
 * itself, with a CONTROL_NONE envelope of type TR__NODE_T_WHEREIS_REPLY
 * whose `from` is the pid found and whose `error` is 0 or TR_ENOENT. No
 * actor ever sees the request; the answer reaches the asking port (a
 * plain thread's tr_node_whereis) or actor (a call by name, through the
 * runtime's whereis op), as a reply. */
#define TR__NODE_T_WHEREIS 0xFFFF00F0u
#define TR__NODE_T_WHEREIS_REPLY 0xFFFF00F1u /* = TR__DIST_WHEREIS_REPLY */

/* The protocol minor this build speaks within its major (Hello.minor;
 * proto/troupe.proto lists what each minor adds). */
#define TR__NODE_MINOR 1u
/* The first minor that understands CONTROL_MEMBERS. */
#define TR__NODE_MINOR_MEMBERS 1u

/* Batching: a batch is cut when it holds this many bytes or messages (an
 * envelope counts one, and each entry of its `more` one more), and in any
 * case at the end of a scheduler turn that sent to its peer. */
#define TR__NODE_BATCH_BYTES (64u * 1024u)
#define TR__NODE_BATCH_ENVS 1024u

/* A peer silent for this many ticks is declared down. */
#define TR__NODE_DOWN_TICKS 4

/* Largest frame accepted from a pipe that has not finished the handshake
 * (a Hello with its 16 URLs at most is far smaller). */
#define TR__NODE_HS_MAX_FRAME (64u * 1024u)

#endif
