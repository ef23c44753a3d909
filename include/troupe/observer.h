/*
 * troupe's observer: a node's HTTP endpoint for operators, off unless
 * tr_node_opts.observer_url is set (docs/observer.md).
 *
 * The endpoint is nng's HTTP server, on a URL "http://HOST:PORT" whose
 * host is a loopback address (127.0.0.0/8, ::1 or "localhost"); port 0
 * picks one, which tr_node_observer_url tells. Any other host is refused
 * at tr_node_start with TR_EINVAL: nothing of the node is served off the
 * host until the endpoint has mutual TLS. A port in use is TR_EEXIST.
 *
 * Every request proves the observer token: "Authorization: Bearer TOKEN",
 * or "?token=TOKEN" in the URL (for a browser's first page). The token is
 * derived from the node's cookie (tr_observer_token), so every node of a
 * cluster has the same one and whoever holds the cookie can compute it;
 * the cookie itself never travels. A request without it, or with a wrong
 * one, gets 401 and is counted (troupe_observer_refused_total).
 *
 * Resources: every route is a GET, so no request body is read; each
 * answer is made from counters the node and the runtime keep anyway, in
 * one pass, on one of nng's threads (never a scheduler), holding the
 * node's table lock at most for the copy of its peer list. So the
 * endpoint costs nothing while no one asks, and one request costs
 * microseconds. nng's server does not bound its connections: one more
 * reason the endpoint is loopback only.
 *
 * Routes (all GET):
 *   /metrics    the Prometheus text exposition format (version 0.0.4):
 *               counters (_total) and gauges of the runtime, each
 *               scheduler, the node and its process children, each with
 *               the label node="NAME" (docs/observer.md lists them);
 *   /api/node   JSON: the node (name, uptime), the runtime, each
 *               scheduler, the node's counters, its connected peers and
 *               its process children;
 *   /api/health JSON {"node": NAME, "ok": true}: for liveness probes
 *               (it needs the token too).
 * Anything else is 404; a method other than GET is 405.
 */
#ifndef TROUPE_OBSERVER_H
#define TROUPE_OBSERVER_H

#include <stddef.h>

#include "troupe/node.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of an observer token (hex digits) and of a buffer that holds one
 * with its NUL. */
#define TR_OBSERVER_TOKEN_LEN 64
#define TR_OBSERVER_TOKEN_SIZE (TR_OBSERVER_TOKEN_LEN + 1)

/* Writes the observer token of nodes whose cookie is `cookie` (64 hex
 * digits of HKDF-SHA256 of the cookie for the purpose "troupe observer
 * token v1", and a NUL) to `out`. Thread-safe. Errors: TR_EINVAL (NULL,
 * an empty cookie, cap below TR_OBSERVER_TOKEN_SIZE), TR_ENOMEM. */
TR_API int tr_observer_token(char *out, size_t cap, const char *cookie);

/* Writes the URL the node's observer listens on, with the port it got
 * ("http://127.0.0.1:41234"), to buf. Errors: TR_EINVAL (NULL), TR_ENOENT
 * (the node has no observer), TR_ENOMEM (cap too small: nothing
 * written). */
TR_API int tr_node_observer_url(char *buf, size_t cap, tr_node *node);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_OBSERVER_H */
