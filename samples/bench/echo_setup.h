/*
 * troupe-echo-load's setup: making the connections (echo_setup.c).
 */
#ifndef TROUPE_ECHO_SETUP_H
#define TROUPE_ECHO_SETUP_H

#include "echo_conn.h"

/* Connects cs[0..n) (their ids set, their fds -1) to echo_addr, with
 * TCP_NODELAY, and has each echo one message (round trip 0): on return
 * all are S_READY, non-blocking and in no epoll set. A connection that
 * cannot be made, or echoes wrong, ends the program (echo_die). Main
 * thread. */
void echo_setup(struct conn *cs, size_t n);

#endif
