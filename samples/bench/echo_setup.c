/*
 * troupe-echo-load's setup: the connections are made BATCH at a time, and a
 * batch is done only when each of its connections has echoed one message.
 * Then the server has accepted them all, so its listen backlog never holds
 * more than BATCH of ours, however slowly it accepts, and every idle
 * connection of the run is known to work. A connection refused or reset
 * before its echo (a backlog that overflowed anyway, a server that reset
 * what it could not queue) is tried again after a pause that doubles,
 * CONNECT_TRIES times in all.
 *
 * BATCH is below 128, a common listen backlog. A server whose backlog is
 * smaller still works, but slowly: the SYNs it drops are sent again by the
 * kernel after 1 s, 3 s, 7 s...
 */
#define _POSIX_C_SOURCE 200809L

#include "echo_setup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BATCH 100
#define BATCH_NS (30 * NS_PER_S) /* one batch, at most */
#define CONNECT_TRIES 5
#define BACKOFF_MS 20 /* before the second try; doubled for each next */

/* Whether a connect or first echo that failed with err may be tried
 * again: what a server whose backlog overflowed answers. */
static bool retryable(int err)
{
	return err == ECONNREFUSED || err == ECONNRESET || err == ETIMEDOUT ||
	       err == EPIPE;
}

/* Setup: c's connect failed with err (0: closed before its echo). */
static void setup_retry(struct conn *c, int err)
{
	const char *why = err ? strerror(err) : "closed before its echo";

	if (err && !retryable(err))
		echo_die("connection %" PRIu32 ": %s", c->id, why);
	close(c->fd); /* which takes it out of the epoll set */
	c->fd = -1;
	if (++c->tries >= CONNECT_TRIES)
		echo_die("connection %" PRIu32 ": %s (%d tries)", c->id, why,
		    CONNECT_TRIES);
	c->state = S_WAIT;
	c->t0 = echo_now_ns() + (BACKOFF_MS * 1000000ull << (c->tries - 1));
}

/* Setup: the connection is made; send its first message. */
static void setup_echo(int ep, struct conn *c, uint8_t *buf)
{
	int err;

	c->state = S_ECHO;
	conn_new_message(c, 0);
	if ((err = conn_write(c, buf)) != 0)
		setup_retry(c, err);
	else
		conn_watch(ep, EPOLL_CTL_MOD, c, c->sent < echo_size);
}

static void setup_connect(int ep, struct conn *c, uint8_t *buf)
{
	int one = 1;

	c->fd = socket(echo_addr.ss_family, SOCK_STREAM, 0);
	if (c->fd < 0)
		echo_die("socket: %s", strerror(errno));
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) != 0 ||
	    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		echo_die("socket options: %s", strerror(errno));
	c->state = S_CONNECTING;
	conn_watch(ep, EPOLL_CTL_ADD, c, true);
	if (connect(c->fd, (struct sockaddr *)&echo_addr, echo_addr_len) == 0)
		setup_echo(ep, c, buf);
	else if (errno != EINPROGRESS)
		setup_retry(c, errno);
}

/* Setup: what an event on c means. Returns whether c is now ready. */
static bool setup_event(int ep, struct conn *c, uint32_t events, uint8_t *buf)
{
	int err = 0;
	socklen_t len = sizeof(err);
	size_t at;

	if (c->state == S_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0)
			setup_retry(c, err);
		else
			setup_echo(ep, c, buf);
		return false;
	}
	if ((events & EPOLLOUT) && c->sent < echo_size) {
		if ((err = conn_write(c, buf)) != 0) {
			setup_retry(c, err);
			return false;
		}
		if (c->sent == echo_size)
			conn_watch(ep, EPOLL_CTL_MOD, c, false);
	}
	switch (conn_read(c, buf, &at)) {
	case IO_MORE:
		return false;
	case IO_DONE:
		if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) != 0)
			echo_die("epoll_ctl: %s", strerror(errno));
		c->state = S_READY;
		return true;
	case IO_CLOSED:
		setup_retry(c, 0);
		return false;
	case IO_ERROR:
		setup_retry(c, errno);
		return false;
	case IO_WRONG:
		break;
	}
	echo_die("connection %" PRIu32 ": wrong byte at offset %zu of its "
	         "first echo",
	    c->id, at);
}

/* Makes n connections and has each echo one message. */
static void setup_batch(int ep, struct conn *cs, size_t n, uint8_t *buf)
{
	struct epoll_event evs[BATCH];
	uint64_t limit = echo_now_ns() + BATCH_NS;
	size_t ready = 0;

	for (size_t i = 0; i < n; i++) {
		cs[i].state = S_WAIT;
		cs[i].t0 = 0;
	}
	while (ready < n) {
		uint64_t now = echo_now_ns(), next = now + 100000000ull;
		for (size_t i = 0; i < n; i++) {
			if (cs[i].state != S_WAIT)
				continue;
			if (cs[i].t0 <= now)
				setup_connect(ep, &cs[i], buf);
			else if (cs[i].t0 < next)
				next = cs[i].t0;
		}
		if (now > limit)
			echo_die("connections %" PRIu32 " to %" PRIu32
			         ": not all made and echoed after %llu s",
			    cs[0].id, cs[n - 1].id, BATCH_NS / NS_PER_S);
		int k = epoll_wait(
		    ep, evs, BATCH, (int)((next - now) / 1000000) + 1);
		if (k < 0 && errno != EINTR)
			echo_die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < k; i++)
			ready += setup_event(
			    ep, evs[i].data.ptr, evs[i].events, buf);
	}
}

void echo_setup(struct conn *cs, size_t n)
{
	uint8_t *buf = malloc(ECHO_CHUNK);
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (buf == NULL || ep < 0)
		echo_die("setup: %s", strerror(errno));
	for (size_t i = 0; i < n; i += BATCH)
		setup_batch(ep, cs + i, n - i < BATCH ? n - i : BATCH, buf);
	close(ep);
	free(buf);
}
