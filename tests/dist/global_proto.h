/*
 * What test_node_global.c and its test node program (global_node.c) say
 * to each other: requests to the child's "gtest" actor, which spawns
 * "holder" actors and registers, looks up, sends to and unregisters
 * global names for them (troupe/global.h).
 */
#ifndef TT_GLOBAL_PROTO_H
#define TT_GLOBAL_PROTO_H

#include <stdint.h>

#include <troupe/global.h>
#include <troupe/pid.h>

/* Sent (not called): the answer comes later as GT_REG_DONE to the sender.
 * Spawns a holder and registers it as `name` (unless spawn_only). */
#define GT_REG 200u
struct gt_reg {
	uint64_t token;
	int32_t method;
	int32_t spawn_only;
	char name[TR_GLOBAL_NAME_MAX + 1];
};
#define GT_REG_DONE 201u
struct gt_reg_done {
	uint64_t token;
	int32_t rc;
	uint32_t len;
	uint8_t pid[TR_PID_ENCODED_MAX]; /* the holder */
};

/* Sent: registers prefix0 .. prefix<count-1>, one after the other, each
 * for a new holder; then GT_RACE_DONE to the sender. */
#define GT_RACE 202u
struct gt_race {
	uint64_t token;
	uint32_t count;
	char prefix[64];
};
#define GT_RACE_DONE 203u
struct gt_race_done {
	uint64_t token;
	uint32_t won;
};

/* Calls (tr_call), payload a name (no NUL) unless said: */
#define GT_WHEREIS 204u /* reply: struct gt_where */
struct gt_where {
	int32_t rc;
	uint32_t len;
	uint8_t pid[TR_PID_ENCODED_MAX];
};
#define GT_UNREG 205u  /* reply: int32 rc */
#define GT_KILL 206u   /* the holder of that name exits (reason 7) */
#define GT_STATUS 207u /* reply: struct gt_status */
struct gt_status {
	int32_t alive;
	int32_t reason;    /* its DOWN's, when not alive */
	int32_t conflicts; /* TR_MSG_GLOBAL_CONFLICT messages it got */
};
#define GT_STATS 208u /* no payload; reply: tr_global_stats */
/* Payload a node name: sends junk to that node's name server; reply
 * int32 rc. */
#define GT_JUNK 209u
/* Payload struct gt_send: tr_global_send of GT_PING to `name`; reply
 * int32 rc. */
#define GT_SEND 210u
struct gt_send {
	char name[TR_GLOBAL_NAME_MAX + 1];
	uint32_t len;
	uint8_t pid[TR_PID_ENCODED_MAX];
};
#define GT_NAMES 211u /* reply: uint32 count of tr_global_names */
#define GT_NODES 212u /* reply: uint32 count of tr_node_list */

/* To a holder: payload an encoded pid, answered with GT_PONG (payload
 * the holder's name) to that pid. */
#define GT_PING 220u
#define GT_PONG 221u

#define GT_KILL_REASON 7

/* The name servers' SYNC and CLAIM types (transport/global_int.h). */
#define GT_T_SYNC 0xFFFD0101u
#define GT_T_CLAIM 0xFFFD0102u

#endif
