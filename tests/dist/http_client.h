/*
 * A plain HTTP/1.1 client for tests (the observer's endpoint, and
 * chromedriver's, webdriver.h): one request per connection over a TCP
 * socket to loopback, bounded in time. A plain socket rather than nng's
 * client: the test's own side then has no thread of nng's that
 * ThreadSanitizer cannot follow.
 */
#ifndef TROUPE_TESTS_HTTP_CLIENT_H
#define TROUPE_TESTS_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Milliseconds of the monotonic clock. */
static inline long long wd_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An HTTP/1.1 answer, read by wd_http. */
struct wd_res {
	int status;
	char head[4096]; /* the status line and headers */
	char *body;      /* malloc'ed, NUL-terminated */
	size_t len;
};

/* The value of header `name` in `head` (case-insensitive), copied into
 * out[cap]; "" when it is not there. */
static inline const char *wd_header(
    const struct wd_res *r, const char *name, char *out, size_t cap)
{
	out[0] = '\0';
	size_t nl = strlen(name);
	for (const char *p = strstr(r->head, "\r\n"); p != NULL;
	     p = strstr(p + 2, "\r\n")) {
		const char *h = p + 2;
		if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
			h += nl + 1;
			while (*h == ' ')
				h++;
			size_t l = strcspn(h, "\r\n");
			snprintf(out, cap, "%.*s", (int)l, h);
			break;
		}
	}
	return out;
}

/* One HTTP/1.1 request over a plain TCP socket to 127.0.0.1:`port`
 * (Connection: close), `auth` an Authorization value or NULL, `body`
 * JSON or NULL; the whole exchange bounded by `timeout_ms`. A plain
 * socket rather than nng's client: the test's own side then has no
 * thread of nng's that ThreadSanitizer cannot follow. 0, or -1 with
 * `err` set. */
static inline int wd_http(int port, const char *method, const char *path,
    const char *auth, const char *body, int timeout_ms, struct wd_res *r,
    char *err, size_t errcap)
{
	memset(r, 0, sizeof(*r));
	long long end = wd_now_ms() + timeout_ms;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errcap, "socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		snprintf(err, errcap, "%s %s: connect: %s", method, path,
		    strerror(errno));
		close(fd);
		return -1;
	}
	size_t blen = body != NULL ? strlen(body) : 0;
	size_t cap = 1024 + strlen(path) + blen;
	char *req = malloc(cap);
	if (req == NULL) {
		close(fd);
		snprintf(err, errcap, "out of memory");
		return -1;
	}
	int k = snprintf(req, cap,
	    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
	    "%s%s%s%s%zu\r\n\r\n",
	    method, path, port, auth != NULL ? "Authorization: " : "",
	    auth != NULL ? auth : "", auth != NULL ? "\r\n" : "",
	    body != NULL ? "Content-Type: application/json; charset=utf-8\r\n"
	                   "Content-Length: "
	                 : "Content-Length: ",
	    blen);
	size_t total = (size_t)k;
	if (blen > 0) {
		memcpy(req + total, body, blen);
		total += blen;
	}
	size_t off = 0;
	bool ok = true;
	while (ok && off < total) {
		ssize_t n = send(fd, req + off, total - off, MSG_NOSIGNAL);
		if (n <= 0)
			ok = false;
		else
			off += (size_t)n;
	}
	free(req);
	size_t got = 0, rcap = 1 << 16;
	char *all = ok ? malloc(rcap) : NULL;
	long want = -1; /* the body's length, when the headers said it */
	size_t hl = 0;
	while (all != NULL) {
		int left = (int)(end - wd_now_ms());
		struct pollfd pf = {fd, POLLIN, 0};
		if (left <= 0 || poll(&pf, 1, left) <= 0) {
			snprintf(err, errcap, "%s %s: no answer in %d ms",
			    method, path, timeout_ms);
			free(all);
			all = NULL;
			break;
		}
		if (got + 1 >= rcap) {
			char *m = realloc(all, rcap * 2);
			if (m == NULL) {
				free(all);
				all = NULL;
				break;
			}
			all = m;
			rcap *= 2;
		}
		ssize_t n = recv(fd, all + got, rcap - got - 1, 0);
		if (n <= 0)
			break; /* closed: the answer is whole */
		got += (size_t)n;
		all[got] = '\0';
		if (hl == 0) {
			char *sep = strstr(all, "\r\n\r\n");
			if (sep != NULL) {
				hl = (size_t)(sep - all) + 4;
				const char *cl =
				    strcasestr(all, "\r\nContent-Length:");
				if (cl != NULL && cl < sep)
					want = atol(cl + 17);
			}
		}
		if (hl > 0 && want >= 0 && got >= hl + (size_t)want)
			break;
	}
	close(fd);
	if (all == NULL) {
		if (err[0] == '\0')
			snprintf(err, errcap, "%s %s: failed", method, path);
		return -1;
	}
	all[got] = '\0';
	if (hl == 0 || sscanf(all, "HTTP/1.%*d %d", &r->status) != 1) {
		snprintf(
		    err, errcap, "%s %s: not an HTTP answer", method, path);
		free(all);
		return -1;
	}
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(hl - 4), all);
	r->len = got - hl;
	r->body = malloc(r->len + 1);
	if (r->body != NULL) {
		memcpy(r->body, all + hl, r->len);
		r->body[r->len] = '\0';
	}
	free(all);
	return r->body != NULL ? 0 : -1;
}

#endif /* TROUPE_TESTS_HTTP_CLIENT_H */
