/*
 * The observer's web page (observer_assets.h): looks its files up in the
 * table the build made from transport/observer_ui/, and serves them as
 * the routes GET / and GET /ui/FILE.
 */
#include <stdlib.h>
#include <string.h>

#include "observer_assets.h"
#include "observer_int.h"

const tr__obs_asset *tr__observer_asset(const char *path)
{
	if (path == NULL)
		return NULL;
	if (strcmp(path, "/") == 0 || strcmp(path, "/ui/") == 0)
		path = "/ui/index.html";
	for (size_t i = 0; i < tr__observer_nassets; i++)
		if (strcmp(tr__observer_assets[i].path, path) == 0)
			return &tr__observer_assets[i];
	return NULL;
}

void tr__obs_route_ui(tr_ctx *ctx, tr__obs_req *rq)
{
	const tr__obs_asset *a = tr__observer_asset(rq->path);
	if (a == NULL) {
		tr__obs_error(ctx, rq, 404, "no such file");
		return;
	}
	/* The answer takes a malloc'ed text: a copy (the files are text,
	 * a few kB, and the page is loaded once). */
	char *body = malloc(a->len + 1);
	if (body != NULL) {
		memcpy(body, a->bytes, a->len);
		body[a->len] = '\0';
	}
	tr__obs_answer(ctx, rq, 200, a->type, body);
}
