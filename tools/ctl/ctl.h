/*
 * troupe-ctl's parts: asking the observer (ctl_http.c) and showing its
 * answers as tables (ctl_show.c); troupe-ctl.c reads the command line.
 */
#ifndef TROUPE_CTL_H
#define TROUPE_CTL_H

#include <stdbool.h>

#include <jansson.h>

/* Where to ask: the observer's base URL (no trailing '/'), the token,
 * and the node to show (?node=, NULL: the endpoint's own). */
struct ctl {
	const char *base;
	const char *token;
	const char *node;
};

/* `method` `path` (with its query, if any) of the observer; ?node= is
 * added when c->node is set. On 0, *status is the HTTP status and *body
 * the answer's body (malloc'ed, NUL-terminated, the caller's), whatever
 * the status. -1 when the node could not be asked (why on stderr). */
int ctl_request(const struct ctl *c, const char *method, const char *path,
    int *status, char **body);

/* ctl_request that wants 200: the body, or NULL (why on stderr: the
 * status, and the answer's "error" if it has one). */
char *ctl_get(const struct ctl *c, const char *path);

/* Says on stderr that `path` was answered with `status` and `body`
 * (the answer's "error", if it has one), as ctl_get does. */
void ctl_complain(
    const struct ctl *c, const char *path, int status, const char *body);

/* The body as JSON, or NULL (why on stderr). */
json_t *ctl_parse(const char *body);

/* ctl_show.c: the commands' tables, from the observer's JSON. */
void ctl_show_stats(json_t *node);
void ctl_show_nodes(json_t *node);
void ctl_show_tree(json_t *supervisors);
void ctl_show_top(json_t *actors, const char *sort);

#endif /* TROUPE_CTL_H */
