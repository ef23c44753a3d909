/*
 * The portable pid encoding of troupe/pid.h, without a node: writing and
 * parsing the bytes only. node_pid.c translates between the parsed form
 * and a node's pids; the fuzz target of the parser calls this directly.
 * Reentrant, no allocation.
 */
#ifndef TR_PID_CODEC_H
#define TR_PID_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "troupe/pid.h"

/* A parsed encoding. `name` points into the parsed buffer and is not
 * NUL-terminated; `name_len` is 1..TR_NODE_NAME_MAX. */
struct tr__pidc {
	const char *name;
	size_t name_len;
	uint64_t inc;
	uint32_t slot, gen;
};

/* Writes the encoding of `v` into `buf` (room for `cap` bytes) and its
 * length into `*len`. TR_EINVAL when `v` has a name of a bad length, an
 * incarnation or a generation of 0; TR_EMSGSIZE (with *len the size
 * needed) when cap is too small. */
int tr__pidc_write(
    const struct tr__pidc *v, void *buf, size_t cap, size_t *len);

/* Parses exactly `len` bytes at `buf`. TR_EINVAL on anything that is not
 * one whole, valid version-1 encoding (troupe/pid.h). */
int tr__pidc_parse(struct tr__pidc *v, const void *buf, size_t len);

#endif
