/*
 * What the files of the connection layer (sp.h) share: sp_out.c, the
 * outbound side, and sp_listen.c, sp_in.c and sp_poll.c, the inbound side
 * (sp_in_int.h).
 *
 * Locks: each tr__sp_out has one mutex for its state and queue; a
 * tr__sp_in has one for its connections, counters and sweep, never held
 * around a callback, and one (`deliver`) held around each `frame` call.
 *
 * Every read, write and dial is started with the object's mutex held,
 * after checking that its stream is not closed, and every close happens
 * with that mutex held too: nng 1.5 leaves an operation started on a
 * closed stream pending for ever (its completion would never come), and
 * so would whatever waits for it. Starting them under the mutex is safe:
 * nng completes an aio that has a callback on one of its task threads,
 * never on the thread that started it. The one exception, the direct
 * write of tr__sp_out_send_now, has no callback and a timeout, and is
 * not made under the mutex.
 */
#ifndef TR_SP_INT_H
#define TR_SP_INT_H

#include <stdbool.h>
#include <string.h>

#include "sp_parse.h"

#define SP_HDR TR__SP_HDR
#define PROTO_PUSH0 TR__SP_PUSH0
#define PROTO_PULL0 TR__SP_PULL0

/* Whether `url` is an ipc:// one, whose frames carry a message-type byte
 * (sp_parse.h). */
static inline bool tr__sp_url_ipc(const char *url)
{
	return strncmp(url, "ipc://", 6) == 0;
}

#endif
