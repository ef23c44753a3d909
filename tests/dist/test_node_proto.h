/*
 * Message types shared by the node tests and their test node program
 * (node_main.c).
 */
#ifndef TT_NODE_PROTO_H
#define TT_NODE_PROTO_H

#define TT_ECHO 100u  /* echo: sent back to the sender; payload any */
#define TT_CRASH 101u /* echo: crash with the int32 reason in the payload */

#endif
