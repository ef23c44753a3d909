/*
 * The observer inside the node library (include/troupe/observer.h): the
 * HTTP endpoint (observer.c) and what it renders (observer_render.c).
 */
#ifndef TR_OBSERVER_INT_H
#define TR_OBSERVER_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "troupe/observer.h"

struct tr_node;
typedef struct tr__observer tr__observer;

/* Starts the endpoint of node `n` on `url` with the token of `cookie`.
 * Errors: TR_EINVAL (not an http:// URL on a loopback host), TR_EEXIST
 * (the address is in use), TR_ENOMEM. */
int tr__observer_start(tr__observer **op, struct tr_node *n, const char *url,
    const char *cookie);
/* Stops it: once this returns no handler runs. NULL is ignored. */
void tr__observer_stop(tr__observer *o);
/* The URL it listens on, with its port. */
const char *tr__observer_url(const tr__observer *o);
/* Requests refused for want of the token. */
uint64_t tr__observer_refused(const tr__observer *o);

/* observer_render.c: the bodies of /metrics and /api/node for node `n`,
 * whose endpoint started at `start_ms` (tr__node_now_ms) and refused
 * `refused` requests; malloc'ed, NUL-terminated, the caller's. NULL when
 * memory ran out. */
char *tr__observer_metrics(struct tr_node *n, int64_t start_ms, uint64_t refused);
char *tr__observer_node_json(struct tr_node *n, int64_t start_ms, uint64_t refused);
char *tr__observer_health_json(struct tr_node *n);

#endif /* TR_OBSERVER_INT_H */
