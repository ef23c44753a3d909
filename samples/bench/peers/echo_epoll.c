/*
 * The ceiling of the echo workload (samples/bench/echo_compare.sh): a TCP
 * echo server in plain C, one thread, one epoll set, nothing between the
 * socket and the echo. No runtime can do better on the same machine; the
 * figures of troupe and of Erlang/OTP are read against it.
 *
 *   echo_epoll PORT
 *
 * Listens on 127.0.0.1:PORT and echoes what each connection sends, as it
 * comes (level-triggered, non-blocking, a 64 KiB buffer shared by all
 * connections: what a write cannot take at once is kept for that
 * connection until it can). Runs until killed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* What a connection could not write yet (most have nothing). */
struct pending {
	char *buf;
	size_t len;
};

static struct pending *pend;
static int npend;

static void drop(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	if (fd < npend) {
		free(pend[fd].buf);
		pend[fd] = (struct pending){0};
	}
}

/* Writes what is pending on `fd`; false when the connection failed. */
static int flush(int ep, int fd)
{
	struct pending *p = &pend[fd];
	while (p->len > 0) {
		ssize_t k = send(fd, p->buf, p->len, MSG_NOSIGNAL);
		if (k < 0)
			return errno == EAGAIN;
		memmove(p->buf, p->buf + k, p->len - (size_t)k);
		p->len -= (size_t)k;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	return 1;
}

static int echo(int ep, int fd, char *buf, size_t cap)
{
	if (pend[fd].len > 0)
		return 1; /* wait for EPOLLOUT first: keep the order */
	ssize_t n = recv(fd, buf, cap, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN))
		return 0;
	if (n < 0)
		return 1;
	ssize_t k = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
	if (k < 0 && errno != EAGAIN)
		return 0;
	if (k < 0)
		k = 0;
	if (k < n) {
		struct pending *p = &pend[fd];
		p->buf = realloc(p->buf, (size_t)(n - k));
		if (p->buf == NULL)
			return 0;
		memcpy(p->buf, buf + k, (size_t)(n - k));
		p->len = (size_t)(n - k);
		struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
	}
	return 1;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: echo_epoll PORT\n");
		return 2;
	}
	int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET,
	    .sin_port = htons((uint16_t)atoi(argv[1]))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(l, 4096) != 0) {
		perror("echo_epoll: listen");
		return 1;
	}
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
	epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
	static char buf[64 * 1024];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == l) {
				int c;
				while ((c = accept4(l, NULL, NULL,
				            SOCK_NONBLOCK)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY,
					    &one, sizeof(one));
					if (c >= npend) {
						int nn = c * 2 + 64;
						pend = realloc(pend,
						    (size_t)nn * sizeof(*pend));
						if (pend == NULL)
							return 1;
						memset(pend + npend, 0,
						    (size_t)(nn - npend) *
						        sizeof(*pend));
						npend = nn;
					}
					struct epoll_event ce = {
					    .events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				}
				continue;
			}
			int ok = 1;
			if (evs[i].events & EPOLLOUT)
				ok = flush(ep, fd);
			if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP)))
				ok = echo(ep, fd, buf, sizeof(buf));
			if (!ok || (evs[i].events & EPOLLERR))
				drop(ep, fd);
		}
	}
}
