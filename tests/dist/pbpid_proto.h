/*
 * What the test of pids and protobuf payloads (test_node_pbpid.c) and its
 * node program (pbpid_main.c) say to each other.
 *
 * The node program registers an actor "relay" that does this with
 *   TT_RELAY  payload: portable pid encodings p1 .. pn (troupe/pid.h), one
 *             after the other. It decodes them all on its node; if one
 *             fails it answers the sender TT_RELAY_FAIL (int32_t rc).
 *             With n = 1 it sends TT_ARRIVED (its node's name) to p1;
 *             else it encodes p2 .. pn again, as its node names them, and
 *             sends them on to p1 as TT_RELAY.
 *   a tt.Job  (tag tr_pb_type of its descriptor): unpacked with a budget
 *             of TT_JOB_BUDGET bytes; on an error the sender gets
 *             TT_PB_FAIL (int32_t rc); else reply_to gets a tt.Job with
 *             text "re: " + text, reply_to the relay itself and `others`
 *             the pids of `others` as its node reads them (tr_pb_pid_get,
 *             then tr_pb_pid_set again): tr_send_pb, TR_PB_TYPE_AUTO.
 */
#ifndef TT_PBPID_PROTO_H
#define TT_PBPID_PROTO_H

#define TT_RELAY 500u
#define TT_RELAY_FAIL 501u
#define TT_ARRIVED 502u
#define TT_PB_FAIL 503u

#define TT_JOB_BUDGET 2048u
#define TT_RELAY_MAX 8 /* pids in one TT_RELAY */

#endif
