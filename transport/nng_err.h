/*
 * nng's error numbers as troupe's error codes, for the transport's files.
 */
#ifndef TR_NNG_ERR_H
#define TR_NNG_ERR_H

#include <nng/nng.h>

#include "troupe/troupe.h"

/* Maps an nng result to TR_OK or a TR_E* code; anything without a closer
 * meaning (a closed socket, a refused connection, ...) is TR_ECLOSED. */
static inline int tr__nng_err(int rv)
{
	switch (rv) {
	case 0:
		return TR_OK;
	case NNG_ENOMEM:
		return TR_ENOMEM;
	case NNG_EINVAL:
	case NNG_EADDRINVAL:
		return TR_EINVAL;
	case NNG_ENOTSUP:
		return TR_ENOTSUP;
	case NNG_ETIMEDOUT:
		return TR_ETIMEDOUT;
	case NNG_EADDRINUSE:
		return TR_EEXIST;
	default:
		return TR_ECLOSED;
	}
}

#endif
