/*
 * Looks up the observer's web page files (observer_assets.h) in the
 * table the build made from transport/observer_ui/.
 */
#include <string.h>

#include "observer_assets.h"

const tr__obs_asset *tr__observer_asset(const char *path)
{
	if (path == NULL)
		return NULL;
	if (strcmp(path, "/") == 0 || strcmp(path, "/ui") == 0 ||
	    strcmp(path, "/ui/") == 0)
		path = "/ui/index.html";
	for (size_t i = 0; i < tr__observer_nassets; i++)
		if (strcmp(tr__observer_assets[i].path, path) == 0)
			return &tr__observer_assets[i];
	return NULL;
}
