/*
 * troupe-echo-load's connections and their messages: what the setup
 * (echo_setup.c) and the run (echo_load.c) share.
 *
 * Every message has its own pattern, of its connection and its round trip,
 * and every byte that comes back is checked against it, so that a byte
 * echoed on the wrong connection, or left over from an earlier round trip,
 * is caught. The pattern is made as it is sent, so a connection holds no
 * buffer of its own.
 */
#ifndef TROUPE_ECHO_CONN_H
#define TROUPE_ECHO_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NS_PER_S 1000000000ull
/* Bytes one send or recv moves, at most: the size of the buffers given to
 * conn_write and conn_read. */
#define ECHO_CHUNK 65536

enum conn_state {
	S_WAIT,       /* setup: to be connected at t0 */
	S_CONNECTING, /* setup: connect in progress */
	S_ECHO,       /* a message is out, its echo not all back */
	S_READY,      /* open, nothing in flight */
};

/* A connection. During the setup it is touched by the main thread only;
 * during the run an active one by its worker thread only. */
struct conn {
	int fd;
	uint32_t id;
	uint32_t seq;   /* the round trip: 0 is the setup's */
	uint32_t seed;  /* of the message in flight (its pattern) */
	uint32_t tries; /* connects that failed */
	bool want_out;  /* EPOLLOUT asked for: part of the message unsent */
	enum conn_state state;
	size_t sent, got;
	uint64_t t0; /* the round trip's start, or when to connect again */
};

/* The run's parameters, set by main before any connection is made and
 * read-only after. */
extern size_t echo_size; /* bytes a message */
extern struct sockaddr_storage echo_addr;
extern socklen_t echo_addr_len;

/* Set by a worker that failed (it has printed why), so that the others
 * stop too. Relaxed: main reads the workers' results only after
 * pthread_join, which orders everything they did. */
extern atomic_bool echo_failed;

/* The monotonic clock, in nanoseconds. */
uint64_t echo_now_ns(void);

/* Prints "troupe-echo-load: <message>" on stderr and exits with status 1.
 * For the main thread: a worker calls echo_fail, so that main reports the
 * failure after every worker has stopped. */
_Noreturn void echo_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Prints as echo_die does and sets echo_failed. Any thread. */
void echo_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Starts message `seq` of c: its pattern, nothing sent or received. */
void conn_new_message(struct conn *c, uint32_t seq);

/* Sends what the kernel takes of the rest of c's message, made in buf
 * (ECHO_CHUNK bytes). Returns 0 (all of it sent, or c->sent < echo_size
 * when the socket is full) or an errno. */
int conn_write(struct conn *c, uint8_t *buf);

enum io { IO_MORE, IO_DONE, IO_CLOSED, IO_ERROR, IO_WRONG };

/* Reads into buf (ECHO_CHUNK bytes) what has come back of c's message and
 * checks it: IO_MORE (not all back yet), IO_DONE (all back), IO_CLOSED
 * (the server closed), IO_ERROR (the error in errno), IO_WRONG (a byte
 * that is not the pattern's or that was not sent yet; its offset in *at). */
enum io conn_read(struct conn *c, uint8_t *buf, size_t *at);

/* Adds c to (op EPOLL_CTL_ADD) or changes it in (EPOLL_CTL_MOD) epoll set
 * ep: readable always, writable if `out`. Dies if epoll_ctl fails. */
void conn_watch(int ep, int op, struct conn *c, bool out);

#endif
