/*
 * Finding the socket under an nng tcp:// stream (stream_fd.h).
 */
#include <dirent.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stream_fd.h"

/* Descriptors looked at on each side of the last one found. */
#define NEAR 64

/* The descriptor found last (relaxed: only a hint). */
static _Atomic int last_fd = -1;

static bool addr_is(const struct sockaddr_storage *a, const nng_sockaddr *n)
{
	if (a->ss_family == AF_INET && n->s_family == NNG_AF_INET) {
		const struct sockaddr_in *i = (const struct sockaddr_in *)a;
		return i->sin_port == n->s_in.sa_port &&
		       i->sin_addr.s_addr == n->s_in.sa_addr;
	}
	if (a->ss_family == AF_INET6 && n->s_family == NNG_AF_INET6) {
		const struct sockaddr_in6 *i = (const struct sockaddr_in6 *)a;
		return i->sin6_port == n->s_in6.sa_port &&
		       memcmp(&i->sin6_addr, n->s_in6.sa_addr, 16) == 0;
	}
	return false;
}

/* Whether descriptor `f` is the socket from `la` to `ra`: the peer's
 * address first, which tells apart the connections of one listener. */
static bool fd_is(int f, const nng_sockaddr *la, const nng_sockaddr *ra)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	if (getpeername(f, (struct sockaddr *)&a, &al) != 0 || !addr_is(&a, ra))
		return false;
	al = sizeof(a);
	return getsockname(f, (struct sockaddr *)&a, &al) == 0 &&
	       addr_is(&a, la);
}

static int near_last(const nng_sockaddr *la, const nng_sockaddr *ra)
{
	int h = atomic_load_explicit(&last_fd, memory_order_relaxed);
	if (h < 0)
		return -1;
	for (int d = 1; d <= NEAR; d++) {
		if (fd_is(h + d, la, ra))
			return h + d;
		if (h - d + 1 >= 0 && fd_is(h - d + 1, la, ra))
			return h - d + 1;
	}
	return -1;
}

static int scan_all(const nng_sockaddr *la, const nng_sockaddr *ra)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return -1;
	int found = -1;
	struct dirent *e;
	while (found < 0 && (e = readdir(d)) != NULL) {
		char *end;
		long f = strtol(e->d_name, &end, 10);
		if (end == e->d_name || *end != '\0' || f == dirfd(d) ||
		    f > INT32_MAX)
			continue;
		if (fd_is((int)f, la, ra))
			found = (int)f;
	}
	closedir(d);
	return found;
}

int tr__stream_fd(nng_stream *st, bool scan)
{
	nng_sockaddr la, ra;
	if (nng_stream_get_addr(st, NNG_OPT_LOCADDR, &la) != 0 ||
	    nng_stream_get_addr(st, NNG_OPT_REMADDR, &ra) != 0 ||
	    (la.s_family != NNG_AF_INET && la.s_family != NNG_AF_INET6))
		return -1;
	int f = near_last(&la, &ra);
	if (f < 0 && scan)
		f = scan_all(&la, &ra);
	if (f >= 0)
		atomic_store_explicit(&last_fd, f, memory_order_relaxed);
	return f;
}
