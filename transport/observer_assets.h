/*
 * The observer's web page inside the node library: the files of
 * transport/observer_ui/, compiled in at build time
 * (cmake/troupe_embed_ui.cmake writes the table into the build tree), so
 * that the page needs no file beside the library and matches the
 * library's version. Read-only data: thread-safe.
 */
#ifndef TR_OBSERVER_ASSETS_H
#define TR_OBSERVER_ASSETS_H

#include <stddef.h>

#include "troupe/troupe.h"

typedef struct tr__obs_asset {
	const char *path;           /* "/ui/app.js" */
	const char *type;           /* its Content-Type */
	const unsigned char *bytes; /* its contents (with a NUL after) */
	size_t len;                 /* bytes, the NUL not counted */
} tr__obs_asset;

/* The generated table, in path order. */
extern const tr__obs_asset tr__observer_assets[];
extern const size_t tr__observer_nassets;

/* The file served at request path `path` (its query not included): "/"
 * and "/ui/" are /ui/index.html, "/ui/NAME" the file NAME. NULL for any
 * other path. */
const tr__obs_asset *tr__observer_asset(const char *path);

/* The routes GET / and GET /ui/ (observer_routes.c's table, open: served
 * without the token, as the files hold nothing of the node and a
 * browser fetches the script and the style sheet without the page's
 * query). 404 for a file that is not there. */
struct tr__obs_req;
void tr__obs_route_ui(tr_ctx *ctx, struct tr__obs_req *rq);

#endif /* TR_OBSERVER_ASSETS_H */
