/*
 * A tcp:// connection's reads through the runtime's I/O set (dist.h,
 * "readiness"), instead of through nng's poller and task threads.
 *
 * At its first read that would wait, a connection whose stream is plain
 * TCP (s->quick, not ipc: tr__stream_fd finds no descriptor for ipc)
 * looks up its socket's descriptor and the runtime's set. From then on
 * its reads never go to nng: a read that would wait arms the descriptor
 * in the set (EPOLLONESHOT, the socket's handle as the token), and the
 * scheduler that takes the event calls tr__sk_io_ready (sock_conn.c),
 * which reads with recv(MSG_DONTWAIT) and posts the answer from that
 * scheduler, so the owner runs next on it. nng never has a read pending
 * on such a stream, so its own poller never waits for the socket's input
 * (it still does for output that the socket did not take at once).
 *
 * The descriptor stays nng's, open until the stream is freed (in
 * tr__sk_release, after every close); it leaves the set when the stream
 * is closed (tr__sk_io_drop, before nng_stream_close). An event that was
 * taken before that comes to a slot that is no longer armed, or that has
 * moved to its next generation: tr__sk_io_ready ignores it.
 */
#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "dist.h"
#include "sock_int.h"
#include "stream_fd.h"

bool tr__sk_io_usable(tr__sock_slot *s)
{
	if (!s->fd_tried) {
		s->fd_tried = true;
		s->fd = -1;
		if (s->quick && s->st != NULL &&
		    tr__io_set(s->rt, tr__sk_io_ready) >= 0)
			s->fd = tr__stream_fd(s->st, true);
	}
	return s->fd >= 0;
}

bool tr__sk_io_arm(tr__sock_slot *s)
{
	int ep = tr__io_set(s->rt, tr__sk_io_ready);
	struct epoll_event ev = {
	    .events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
	    .data.u64 = tr__sk_handle(s),
	};
	int rc = -1;
	if (ep >= 0) {
		rc = epoll_ctl(ep, s->io_added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		    s->fd, &ev);
		if (rc != 0 && !s->io_added && errno == EEXIST)
			rc = epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
	}
	if (rc != 0) {
		/* Not in the set: this socket keeps to nng's reads. */
		tr__sk_io_drop(s);
		s->fd = -1;
		return false;
	}
	s->io_added = s->io_armed = true;
	return true;
}

void tr__sk_io_drop(tr__sock_slot *s)
{
	if (s->io_added) {
		int ep = tr__io_set(s->rt, tr__sk_io_ready);
		if (ep >= 0)
			(void)epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
	}
	s->io_added = s->io_armed = false;
}

/* nng's code for a failed recv, for rx_took (sock_conn.c). */
static int recv_err(int e)
{
	switch (e) {
	case ECONNRESET:
		return NNG_ECONNRESET;
	case ETIMEDOUT:
		return NNG_ETIMEDOUT;
	case ENOMEM:
	case ENOBUFS:
		return NNG_ENOMEM;
	default:
		return NNG_ECONNSHUT;
	}
}

bool tr__sk_io_read(tr__sock_slot *s, void *at, size_t room, int *rv,
    size_t *n)
{
	for (;;) {
		ssize_t k = recv(s->fd, at, room, MSG_DONTWAIT);
		if (k > 0) {
			*rv = 0;
			*n = (size_t)k;
			return true;
		}
		*n = 0;
		if (k == 0) {
			*rv = NNG_ECONNSHUT; /* the peer's end */
			return true;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return false;
		*rv = recv_err(errno);
		return true;
	}
}
