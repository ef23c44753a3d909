/*
 * troupe's observer: a node's HTTP endpoint for operators, off unless
 * tr_node_opts.observer_url is set (docs/observer.md).
 *
 * The endpoint is nng's HTTP server, on a URL "http://HOST:PORT" whose
 * host is a loopback address (127.0.0.0/8, ::1 or "localhost"), or
 * "https://HOST:PORT" on any host with mutual TLS: the server presents the
 * node's own certificate (tr_node_opts tls_cert_file, tls_key_file) and
 * requires of every client a certificate signed by the node's CA
 * (tls_ca_file); https:// without those files, or http:// off loopback,
 * is refused at tr_node_start with TR_EINVAL. Port 0 picks one, which
 * tr_node_observer_url tells. A port in use is TR_EEXIST.
 *
 * Every request for the node's data proves the observer token (the web
 * page's own files, "/" and "/ui/...", hold none and need none; TLS does
 * not replace the token, it comes on top): "Authorization: Bearer TOKEN",
 * or "?token=TOKEN" in the URL (for a browser's first page). The token is
 * derived from the node's cookie (tr_observer_token), so every node of a
 * cluster has the same one and whoever holds the cookie can compute it;
 * the cookie itself never travels. A request without it, or with a wrong
 * one, gets 401 and is counted (troupe_observer_refused_total).
 *
 * Requests run on one of nng's threads, never on a scheduler. Those that
 * need an actor's answer (a supervisor's children, an actor's links) or
 * another node's (?node=NAME on any route) go to the node's observer
 * agent, an actor registered as "troupe.observer", which asks without
 * blocking and with a timeout (3 s); it holds at most 64 requests, past
 * which the answer is 503. No request body is read. Every action is
 * logged by the node.
 *
 * Routes (docs/observer.md gives each answer's fields):
 *   GET  /metrics         the Prometheus text exposition format (0.0.4):
 *                         counters (_total) and gauges of the runtime,
 *                         each scheduler, the node, each peer and the
 *                         process children, labelled node="NAME";
 *   GET  /api/node        JSON: the node, the runtime, each scheduler,
 *                         the node's counters, its peers one by one, its
 *                         process children;
 *   GET  /api/health      JSON {"node": NAME, "ok": true} while the node
 *                         runs: for liveness probes;
 *   GET  /api/ready       the application's readiness (tr_node_set_ready):
 *                         200 {"node": NAME, "ready": true}, or 503
 *                         {"node": NAME, "ready": false, "why": TEXT}:
 *                         for readiness probes;
 *   GET  /api/supervisors JSON: every supervisor, its children and its
 *                         recent restarts;
 *   GET  /api/actors      JSON: a page of the actor table by pid
 *                         (?after=CURSOR), or the top N by mailbox
 *                         length or messages handled (?sort=, ?limit=);
 *   GET  /api/actor/PID   JSON: one actor's links, monitors and mailbox
 *                         head (payload bytes only with ?payload=1);
 *   GET  /api/global      JSON: the cluster-wide names this node knows;
 *   GET  /api/pg          JSON: the process groups of each scope;
 *   POST /api/actor/PID/kill, /api/supervisor/PID/child/ID/restart,
 *        /api/supervisor/PID/child/ID/terminate, /api/peer/NAME/disconnect
 *                         the operator's actions;
 *   GET  /, /ui/FILE      the web page.
 * Anything else is 404; another method on a route's path is 405.
 */
#ifndef TROUPE_OBSERVER_H
#define TROUPE_OBSERVER_H

#include <stdbool.h>
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
 * ("http://127.0.0.1:41234", or https://), to buf. Errors: TR_EINVAL (NULL), TR_ENOENT
 * (the node has no observer), TR_ENOMEM (cap too small: nothing
 * written). */
TR_API int tr_node_observer_url(char *buf, size_t cap, tr_node *node);

/* Bytes of a readiness's `why` that are kept (tr_node_set_ready). */
#define TR_NODE_READY_WHY_MAX 127

/* Sets the application's readiness, as the observer reports it
 * (GET /api/ready, the gauge troupe_node_ready): whether the program
 * that runs `node` serves, and when it does not, `why` (text for an
 * operator, "waiting for a majority"; NULL is none). The node's own
 * liveness (/api/health) is not affected.
 *
 * A node is ready from tr_node_start on until its application says
 * otherwise, so a program that never calls this is ready once it is up;
 * one that must first do something (join a cluster, load its data)
 * calls it with false right after tr_node_start, and with true once it
 * serves. `why` is copied (the caller keeps its string): up to
 * TR_NODE_READY_WHY_MAX bytes, cut at a character's boundary, with each
 * byte that is not part of valid UTF-8 replaced by '?'; it is dropped
 * when `ready` is true. Without an observer the readiness is kept all
 * the same, and no one reads it.
 *
 * Thread-safe, from any thread, a scheduler's included: it never waits
 * for I/O or for an actor (it takes a lock that is only ever held to
 * copy those bytes). The last call wins. Errors: TR_EINVAL (node NULL). */
TR_API int tr_node_set_ready(tr_node *node, bool ready, const char *why);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_OBSERVER_H */
