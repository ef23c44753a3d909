/*
 * Message types shared by the node tests and their test node program
 * (node_main.c).
 */
#ifndef TT_NODE_PROTO_H
#define TT_NODE_PROTO_H

#include <stdint.h>

#define TT_ECHO 100u  /* echo: sent back to the sender; payload any */
#define TT_CRASH 101u /* echo: crash with the int32 reason in the payload */

/* The "slow" actor (node_main.c): takes a while over each TT_SLOW (a
 * uint64_t seq, expected to count up from 0), and answers a request of
 * TT_SLOW_COUNT with a struct tt_slow_count. */
#define TT_SLOW 102u
#define TT_SLOW_COUNT 103u

struct tt_slow_count {
	uint64_t got; /* TT_SLOW messages taken */
	uint64_t bad; /* of which out of order */
};

/* The "probe" actor (node_main.c --probe), for tests of pids passed on
 * between three nodes. It remembers the sender of TT_PROBE_SUB as its
 * reporter and the sender of TT_PROBE_INTRO as its peer, and tells the
 * reporter what it did and saw in TT_PROBE_REPORT messages. */

/* The sender becomes the reporter. */
#define TT_PROBE_SUB 110u
/* The sender becomes the peer; the payload, a uint64_t seq, is sent on to
 * it in TT_PROBE_HELLO (report TT_R_INTRO, with the send's result). */
#define TT_PROBE_INTRO 111u
/* Reported as TT_R_HELLO, with its sender. */
#define TT_PROBE_HELLO 112u
/* Link to and monitor the peer, then ping it (report TT_R_WATCH). */
#define TT_PROBE_WATCH 113u
#define TT_PROBE_PING 114u /* answered with TT_PROBE_PONG */
#define TT_PROBE_PONG 115u /* reported as TT_R_PONG */
#define TT_PROBE_REPORT 116u
/* Spawn an echo actor and register it under the name in the payload (not
 * NUL-terminated, at most TT_PROBE_NAME_MAX bytes); report TT_R_REG with
 * tr_register's result (or tr_spawn's) and the new actor's pid (killed
 * again if the name was refused). The probe already has its name, so the
 * name goes to a fresh actor. */
#define TT_PROBE_REG 117u
/* Unregister the name in the payload (as above); report TT_R_UNREG with
 * tr_unregister's result. */
#define TT_PROBE_UNREG 118u
#define TT_PROBE_NAME_MAX 63

/* The "nodes" actor (node_main.c) answers a request of TT_NODES with the
 * names of the nodes its node is connected to (tr_node_list), each ended
 * by '\n', in no particular order. */
#define TT_NODES 120u
/* The "nodemon" actor (node_main.c) watches every node from its start
 * (tr_monitor_node(NULL)) and answers a request of TT_NODE_EVENTS, whose
 * payload is a node name (not NUL-terminated), with a struct
 * tt_node_events for that node. */
#define TT_NODE_EVENTS 121u

struct tt_node_events {
	uint32_t ups, downs;
};

enum {
	TT_R_SUB = 1,
	TT_R_INTRO, /* rc: tr_send to the peer; pid: the peer */
	TT_R_HELLO, /* pid: the sender; seq: the payload */
	TT_R_WATCH, /* rc: tr_link; rc2: tr_monitor; pid: the peer */
	TT_R_PONG,  /* pid: the sender */
	TT_R_EXIT,  /* reason; pid: tr_exit_info.pid */
	TT_R_DOWN,  /* reason; pid: tr_exit_info.pid; seq: 1 if the ref is
	             * the one TT_PROBE_WATCH got */
	TT_R_REG,   /* rc: tr_spawn, then tr_register; pid: the new actor */
	TT_R_UNREG, /* rc: tr_unregister; pid: the probe */
};

/* A pid named by its node's name and its slot and generation there: what
 * a probe can tell another node about a pid (raw tr_pid bytes mean
 * nothing on another node). */
struct tt_probe_report {
	uint32_t what; /* TT_R_* */
	int32_t rc;
	int32_t rc2;
	int32_t reason;
	uint64_t seq;
	int32_t name_rc; /* tr_node_name_of for the pid below */
	uint32_t slot;
	uint32_t gen;
	char node[64];
};

#endif
