/*
 * troupe-echo-load: a load generator for a TCP echo server, the client side
 * of the echo workload (samples/bench/echo_compare.sh). It uses nothing of
 * troupe, so that troupe's echo server and its Erlang/OTP twin
 * (samples/bench/peers/echo_server.erl) meet the same client.
 *
 *   troupe-echo-load [-c CONNS] [-a ACTIVE] [-n REQUESTS] [-s SIZE]
 *                    [-t THREADS] [-d SECONDS] HOST:PORT
 *
 * It opens CONNS connections (50); ACTIVE of them (min(CONNS, 50)) each run
 * a closed loop: send SIZE bytes (64), wait until all SIZE have come back,
 * record the round trip, send again. The others stay open and idle for the
 * whole run, and must still be open at its end. The run stops after
 * REQUESTS round trips in all (200000), or after SECONDS (-d; with -d alone
 * there is no count), and prints the project's bench line and the latency:
 *
 *   echo <N> ops in <seconds> s = <round trips/s> ops/s
 *   echo-latency p50 <us> us p99 <us> us p99.9 <us> us (<C> connections,
 *   <A> active)
 *
 * For example, 10,000 connections of which 50 are busy, against a server
 * on port 7000 of this host:
 *
 *   troupe-echo-load -c 10000 -a 50 127.0.0.1:7000
 *
 * The clock runs from the first round trip's start to the last one's end;
 * making the connections is not timed. THREADS epoll threads (1) share the
 * active connections. Every message has its own pattern (of its connection and
 * its round trip), and every byte that comes back is checked against it. Any
 * failure (a connection that cannot be made, is closed, or echoes a wrong byte,
 * or a round trip unanswered for 10 s) ends the program with status 1 and a
 * message on stderr, and nothing on stdout.
 *
 * The connections are made 100 at a time, each echoing one message before
 * the next batch, so that the server's listen backlog is never overrun
 * (echo_setup.c); a connect refused or reset is tried again. The soft limit
 * of open files is raised to the hard one when CONNS needs it. The
 * latencies go to a histogram (echo_hist.h), so a long -d run costs no
 * memory.
 */
#define _POSIX_C_SOURCE 200809L

#include "echo_conn.h"
#include "echo_hist.h"
#include "echo_setup.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define STALL_NS (10 * NS_PER_S)
#define MAX_EVENTS 256

struct worker {
	pthread_t tid;
	struct conn **conns;
	size_t n;
	uint64_t ops;
	uint64_t end_ns; /* when its last round trip ended */
	struct echo_hist hist;
};

static const char *prog = "troupe-echo-load";
static uint64_t deadline_ns; /* 0: none; set before the workers start */
static pthread_barrier_t start_line;
/* Round trips that may still be started. A plain counter that publishes
 * nothing, hence relaxed. */
static atomic_int_fast64_t budget;

/* Run: starts c's next round trip, if one is left. Returns whether it
 * did; false with `echo_failed` set on an error. */
static bool run_begin(int ep, struct conn *c, uint8_t *buf)
{
	int err;

	c->state = S_READY;
	if (deadline_ns != 0 && echo_now_ns() >= deadline_ns)
		return false;
	if (atomic_fetch_sub_explicit(&budget, 1, memory_order_relaxed) <= 0)
		return false;
	c->state = S_ECHO;
	conn_new_message(c, c->seq + 1);
	c->t0 = echo_now_ns();
	if ((err = conn_write(c, buf)) != 0) {
		echo_fail(
		    "connection %" PRIu32 ": send: %s", c->id, strerror(err));
		return false;
	}
	if (c->want_out != (c->sent < echo_size))
		conn_watch(ep, EPOLL_CTL_MOD, c, c->sent < echo_size);
	return true;
}

/* Run: an event on c, whose round trip is in flight. Returns whether one
 * still is (false with `echo_failed` set on an error). */
static bool run_event(
    struct worker *w, int ep, struct conn *c, uint32_t events, uint8_t *buf)
{
	int err;
	size_t at;

	if ((events & EPOLLOUT) && c->sent < echo_size) {
		if ((err = conn_write(c, buf)) != 0) {
			echo_fail("connection %" PRIu32 ": send: %s", c->id,
			    strerror(err));
			return false;
		}
		if (c->sent == echo_size)
			conn_watch(ep, EPOLL_CTL_MOD, c, false);
	}
	switch (conn_read(c, buf, &at)) {
	case IO_MORE:
		return true;
	case IO_DONE:
		w->end_ns = echo_now_ns();
		echo_hist_add(&w->hist, w->end_ns - c->t0);
		w->ops++;
		return run_begin(ep, c, buf);
	case IO_CLOSED:
		echo_fail("connection %" PRIu32
		          ": closed by the server in round trip %" PRIu32,
		    c->id, c->seq);
		return false;
	case IO_ERROR:
		echo_fail(
		    "connection %" PRIu32 ": recv: %s", c->id, strerror(errno));
		return false;
	case IO_WRONG:
		break;
	}
	echo_fail("connection %" PRIu32
	          ": wrong byte at offset %zu of round trip %" PRIu32,
	    c->id, at, c->seq);
	return false;
}

/* Run: fails if a round trip of w has waited STALL_NS for its echo. */
static void run_stalls(struct worker *w, uint64_t now)
{
	for (size_t i = 0; i < w->n; i++) {
		struct conn *c = w->conns[i];
		if (c->state == S_ECHO && now - c->t0 > STALL_NS) {
			echo_fail(
			    "connection %" PRIu32 ": round trip %" PRIu32
			    " unanswered for %llu s (%zu of %zu bytes back)",
			    c->id, c->seq, STALL_NS / NS_PER_S, c->got,
			    echo_size);
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[MAX_EVENTS];
	uint8_t *buf = malloc(ECHO_CHUNK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	size_t busy = 0;

	if (buf == NULL || ep < 0)
		echo_fail("worker: %s", strerror(errno));
	pthread_barrier_wait(&start_line);
	for (size_t i = 0; i < w->n && ep >= 0 && buf != NULL; i++) {
		conn_watch(ep, EPOLL_CTL_ADD, w->conns[i], false);
		busy += run_begin(ep, w->conns[i], buf);
	}
	uint64_t scan = echo_now_ns();
	while (busy > 0 &&
	       !atomic_load_explicit(&echo_failed, memory_order_relaxed)) {
		int k = epoll_wait(ep, evs, MAX_EVENTS, 100);
		if (k < 0 && errno != EINTR) {
			echo_fail("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < k; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->state != S_ECHO) {
				echo_fail("connection %" PRIu32 ": bytes or a "
				          "close with no round trip in flight",
				    c->id);
				break;
			}
			if (!run_event(w, ep, c, evs[i].events, buf)) {
				c->state = S_READY;
				busy--;
			}
		}
		uint64_t now = echo_now_ns();
		if (now - scan >= NS_PER_S) {
			scan = now;
			run_stalls(w, now);
		}
	}
	if (ep >= 0)
		close(ep);
	free(buf);
	return NULL;
}

/* Checks that every connection is still open and has nothing unread. */
static void check_open(struct conn *cs, size_t n, size_t active)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t b;
		ssize_t r = recv(cs[i].fd, &b, 1, MSG_DONTWAIT);
		const char *kind = i < active ? "active" : "idle";
		if (r > 0)
			echo_die(
			    "%s connection %zu: bytes nobody sent", kind, i);
		if (r == 0)
			echo_die(
			    "%s connection %zu: closed by the server during "
			    "the run",
			    kind, i);
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			echo_die(
			    "%s connection %zu: %s", kind, i, strerror(errno));
	}
}

/* Prints the bench line and the latency line. */
static void report(const struct echo_hist *h, uint64_t ops, uint64_t ns,
    uint64_t conns, uint64_t active)
{
	double s = (double)ns / 1e9;

	printf("echo %" PRIu64 " ops in %.4f s = %.0f ops/s\n", ops, s,
	    s > 0 ? (double)ops / s : 0.0);
	printf("echo-latency p50 %.1f us p99 %.1f us p99.9 %.1f us (%" PRIu64
	       " connections, %" PRIu64 " active)\n",
	    echo_hist_quantile(h, 500) / 1e3, echo_hist_quantile(h, 990) / 1e3,
	    echo_hist_quantile(h, 999) / 1e3, conns, active);
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: %s [-c CONNS] [-a ACTIVE] [-n REQUESTS] [-s SIZE] "
	    "[-t THREADS] [-d SECONDS] HOST:PORT\n",
	    prog);
	exit(2);
}

static uint64_t parse_count(const char *s, char opt, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);

	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v == 0 ||
	    v > max) {
		fprintf(stderr,
		    "%s: -%c wants a number from 1 to %" PRIu64 "\n", prog, opt,
		    max);
		usage();
	}
	return v;
}

static void parse_target(const char *arg)
{
	const char *colon = strrchr(arg, ':');
	char host[256];
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int err;

	if (colon == NULL || colon == arg || colon[1] == '\0' ||
	    (size_t)(colon - arg) >= sizeof(host))
		usage();
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	char *h = host;
	size_t hl = strlen(h);
	if (h[0] == '[' && h[hl - 1] == ']') { /* [::1]:7000 */
		h[hl - 1] = '\0';
		h++;
	}
	if ((err = getaddrinfo(h, colon + 1, &hints, &res)) != 0)
		echo_die("%s: %s", arg, gai_strerror(err));
	memcpy(&echo_addr, res->ai_addr, res->ai_addrlen);
	echo_addr_len = res->ai_addrlen;
	freeaddrinfo(res);
}

/* Raises the soft limit of open files to the hard one if `need` needs it. */
static void raise_nofile(uint64_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		echo_die("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
		echo_die("%" PRIu64 " open files needed, above the hard "
		         "limit of %llu (ulimit -Hn)",
		    need, (unsigned long long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		echo_die("setrlimit: %s", strerror(errno));
}

int main(int argc, char **argv)
{
	uint64_t conns = 50, active = 0, requests = 0, threads = 1;
	double secs = 0;
	int opt;

	while ((opt = getopt(argc, argv, "c:a:n:s:t:d:h")) != -1) {
		char *end;
		switch (opt) {
		case 'c':
			conns = parse_count(optarg, 'c', 1000000);
			break;
		case 'a':
			active = parse_count(optarg, 'a', 1000000);
			break;
		case 'n':
			requests = parse_count(optarg, 'n', INT64_MAX);
			break;
		case 's':
			echo_size = parse_count(optarg, 's', 1u << 30);
			break;
		case 't':
			threads = parse_count(optarg, 't', 1024);
			break;
		case 'd':
			secs = strtod(optarg, &end);
			if (end == optarg || *end != '\0' || !(secs > 0) ||
			    secs > 1e6)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (active == 0)
		active = conns < 50 ? conns : 50;
	if (active > conns)
		echo_die(
		    "-a %" PRIu64 " is more than -c %" PRIu64, active, conns);
	if (requests == 0)
		requests = secs > 0 ? INT64_MAX : 200000;
	if (threads > active)
		threads = active;
	parse_target(argv[optind]);
	raise_nofile(conns + threads + 32);

	struct conn *cs = calloc(conns, sizeof(*cs));
	struct worker *ws = calloc(threads, sizeof(*ws));
	struct conn **mine = calloc(active, sizeof(*mine));
	if (cs == NULL || ws == NULL || mine == NULL)
		echo_die("out of memory");
	for (size_t i = 0; i < conns; i++) {
		cs[i].id = (uint32_t)i;
		cs[i].fd = -1;
	}
	echo_setup(cs, conns);

	/* Worker t gets active connections t, t + threads, ... */
	for (size_t t = 0, k = 0; t < threads; t++) {
		ws[t].conns = mine + k;
		for (size_t i = t; i < active; i += threads) {
			mine[k++] = &cs[i];
			ws[t].n++;
		}
	}
	atomic_store_explicit(
	    &budget, (int_fast64_t)requests, memory_order_relaxed);
	if (pthread_barrier_init(&start_line, NULL, (unsigned)threads + 1))
		echo_die("pthread_barrier_init failed");
	for (size_t t = 0; t < threads; t++)
		if (pthread_create(&ws[t].tid, NULL, worker_main, &ws[t]) != 0)
			echo_die("pthread_create failed");
	uint64_t start = echo_now_ns();
	if (secs > 0)
		deadline_ns = start + (uint64_t)(secs * 1e9);
	/* The barrier orders deadline_ns before the workers' reads. */
	pthread_barrier_wait(&start_line);
	uint64_t end = start, ops = 0;
	for (size_t t = 0; t < threads; t++) {
		pthread_join(ws[t].tid, NULL);
		if (ws[t].end_ns > end)
			end = ws[t].end_ns;
		ops += ws[t].ops;
		if (t > 0)
			echo_hist_merge(&ws[0].hist, &ws[t].hist);
	}
	int status = 1;
	if (!atomic_load_explicit(&echo_failed, memory_order_relaxed)) {
		check_open(cs, conns, active);
		report(&ws[0].hist, ops, end - start, conns, active);
		status = fflush(stdout) == 0 ? 0 : 1;
	}
	for (size_t i = 0; i < conns; i++)
		close(cs[i].fd);
	pthread_barrier_destroy(&start_line);
	free(mine);
	free(ws);
	free(cs);
	return status;
}
