/*
 * The socket under an nng tcp:// stream (stream_fd.c).
 */
#ifndef TR_STREAM_FD_H
#define TR_STREAM_FD_H

#include <stdbool.h>

#include <nng/nng.h>

/* The descriptor of the connected TCP socket under `st`, or -1. nng 1.5's
 * streams give neither their descriptor nor a query of readiness, so it
 * is found by its pair of addresses (unique for a connected TCP socket in
 * one process) among the process's open descriptors: first near the one
 * found last (a run of accepted or dialed connections gets neighbouring
 * numbers), then, if `scan`, among all of them. Also answers for a TLS
 * stream, whose addresses are those of its TCP socket: the caller knows
 * what it may do with the descriptor (read it only under a plain tcp://
 * stream). The descriptor stays the stream's: valid until the stream is
 * freed; never closed, or read while nng has a read pending on it. */
int tr__stream_fd(nng_stream *st, bool scan);

#endif
