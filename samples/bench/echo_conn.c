/*
 * troupe-echo-load's connections and their messages (echo_conn.h).
 */
#define _POSIX_C_SOURCE 200809L

#include "echo_conn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

size_t echo_size = 64;
struct sockaddr_storage echo_addr;
socklen_t echo_addr_len;
atomic_bool echo_failed;

uint64_t echo_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void say(const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	fprintf(stderr, "troupe-echo-load: %s\n", line);
}

_Noreturn void echo_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	exit(1);
}

void echo_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(fmt, ap);
	va_end(ap);
	atomic_store_explicit(&echo_failed, true, memory_order_relaxed);
}

/* A message's pattern is 32-bit words counting up from a seed that mixes
 * the connection and the round trip. */
static uint32_t mix32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static uint8_t pattern_byte(uint32_t seed, size_t i)
{
	uint32_t word = seed + (uint32_t)(i / 4) * 0x9e3779b9u;

	return (uint8_t)(word >> (8 * (i % 4)));
}

void conn_new_message(struct conn *c, uint32_t seq)
{
	c->seq = seq;
	c->seed = mix32(c->id * 0x9e3779b1u ^ mix32(seq + 1));
	c->sent = 0;
	c->got = 0;
}

int conn_write(struct conn *c, uint8_t *buf)
{
	while (c->sent < echo_size) {
		size_t n = echo_size - c->sent < ECHO_CHUNK
		               ? echo_size - c->sent
		               : ECHO_CHUNK;
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern_byte(c->seed, c->sent + i);
		ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0
			                                               : errno;
		c->sent += (size_t)w;
	}
	return 0;
}

enum io conn_read(struct conn *c, uint8_t *buf, size_t *at)
{
	for (;;) {
		size_t n = echo_size - c->got < ECHO_CHUNK ? echo_size - c->got
		                                           : ECHO_CHUNK;
		ssize_t r = recv(c->fd, buf, n, 0);
		if (r == 0)
			return IO_CLOSED;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK
			           ? IO_MORE
			           : IO_ERROR;
		for (size_t i = 0; i < (size_t)r; i++)
			if (buf[i] != pattern_byte(c->seed, c->got + i) ||
			    c->got + i >= c->sent) {
				*at = c->got + i;
				return IO_WRONG;
			}
		c->got += (size_t)r;
		if (c->got == echo_size)
			return IO_DONE;
	}
}

void conn_watch(int ep, int op, struct conn *c, bool out)
{
	struct epoll_event ev = {
	    .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};

	if (epoll_ctl(ep, op, c->fd, &ev) != 0)
		echo_die("epoll_ctl: %s", strerror(errno));
	c->want_out = out;
}
