/*
 * Fuzz target: pids in payloads. The portable pid encoding's parser
 * (transport/pid_codec.c, the part of tr_pid_decode that reads bytes)
 * against a reference written from troupe/pid.h's table alone, with a
 * re-encoding that must give the same bytes back; and tr_pb_unpack of a
 * troupe.Pid (transport/pb.c) under a budget against protobuf-c's own
 * unpack without one: the budget may only turn an accepted message into
 * TR_EMSGSIZE (also where the budget runs out before the bytes turn out
 * malformed), never accept what protobuf-c refuses, never change a
 * field.
 *
 * Input: byte 0 = the budget (16 << (b & 15) bytes, so 16 B .. 512 KiB),
 * the rest is parsed as a pid encoding and unpacked as a troupe.Pid.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pid_codec.h"
#include "troupe/pb.h"

#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

/* The reference: whether `b` is one whole, valid version-1 encoding. */
NO_COVERAGE static bool reference(
    const uint8_t *b, size_t n, uint64_t *inc, uint32_t *slot, uint32_t *gen)
{
	if (n < 2 || b[0] != 1 || b[1] == 0 || n != 18u + b[1])
		return false;
	for (size_t i = 0; i < b[1]; i++)
		if (b[2 + i] == 0)
			return false;
	const uint8_t *t = b + 2 + b[1];
	*inc = 0;
	for (int i = 7; i >= 0; i--)
		*inc = *inc << 8 | t[i];
	*slot = (uint32_t)t[8] | (uint32_t)t[9] << 8 | (uint32_t)t[10] << 16 |
	        (uint32_t)t[11] << 24;
	*gen = (uint32_t)t[12] | (uint32_t)t[13] << 8 | (uint32_t)t[14] << 16 |
	       (uint32_t)t[15] << 24;
	return *inc != 0 && *gen != 0;
}

static void check_encoding(const uint8_t *b, size_t n)
{
	uint64_t inc;
	uint32_t slot, gen;
	bool ok = reference(b, n, &inc, &slot, &gen);
	struct tr__pidc v;
	int rc = tr__pidc_parse(&v, b, n);
	if (ok != (rc == TR_OK))
		abort();
	if (!ok)
		return;
	if (v.inc != inc || v.slot != slot || v.gen != gen ||
	    v.name_len != b[1] || v.name != (const char *)b + 2)
		abort();
	if (tr_pid_encoded_size(b, n) != n)
		abort();
	uint8_t out[TR_PID_ENCODED_MAX];
	size_t len;
	if (tr__pidc_write(&v, out, sizeof(out), &len) != TR_OK || len != n ||
	    memcmp(out, b, n) != 0)
		abort();
}

static void check_unpack(const uint8_t *b, size_t n, size_t budget)
{
	/* tr_pb_unpack reads a message's size and data only, so a bare
	 * tr_msg without the runtime's header serves here. */
	tr_msg *m = calloc(1, sizeof(*m) + n + 1);
	if (m == NULL)
		return;
	m->size = (uint32_t)n;
	memcpy(m->data, b, n);
	ProtobufCMessage *pm;
	int rc = tr_pb_unpack(&pm, m, &troupe__pid__descriptor, budget);
	Troupe__Pid *ref = troupe__pid__unpack(NULL, n, b);
	if (rc == TR_OK) {
		const Troupe__Pid *p = (const Troupe__Pid *)pm;
		if (ref == NULL || strcmp(p->node, ref->node) != 0 ||
		    p->incarnation != ref->incarnation ||
		    p->slot != ref->slot || p->gen != ref->gen)
			abort();
		tr_pb_free(pm);
	} else if (pm != NULL || (rc == TR_EINVAL && ref != NULL) ||
	           (rc != TR_EINVAL && rc != TR_EMSGSIZE && rc != TR_ENOMEM)) {
		abort();
	}
	if (ref != NULL)
		troupe__pid__free_unpacked(ref, NULL);
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t budget = (size_t)16 << (data[0] & 15);
	check_encoding(data + 1, size - 1);
	check_unpack(data + 1, size - 1, budget);
	return 0;
}
