/*
 * The node's start and its life (kv_node.c), and systemd's readiness
 * protocol (kv_notify.c).
 */
#ifndef KV_MAIN_H
#define KV_MAIN_H

#include "troupe/troupe.h"

/* Starts the node and its tree, serves until SIGTERM or SIGINT, stops in
 * order. Returns the exit status. */
int kv_run(tr_runtime *rt, const char *cookie, const char *listen,
    const char *resp, const char *observer, const char *client,
    unsigned tick_ms);

/* Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to systemd's
 * $NOTIFY_SOCKET, if set (sd_notify(3)'s datagram protocol). */
void kv_notify(const char *state);

#endif
