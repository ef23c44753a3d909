/*
 * troupe-ctl: asking a node's observer over nng's HTTP client.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "ctl.h"

#define TIMEOUT_MS 5000

int ctl_request(const struct ctl *c, const char *method, const char *path,
    int *status, char **body)
{
	char full[1024];
	snprintf(full, sizeof(full), "%s%s%s%s", c->base, path,
	    c->node == NULL             ? ""
	    : strchr(path, '?') != NULL ? "&node="
	                                : "?node=",
	    c->node == NULL ? "" : c->node);
	nng_url *url = NULL;
	nng_http_client *cli = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	char auth[128];
	snprintf(auth, sizeof(auth), "Bearer %s", c->token);
	int rv = nng_url_parse(&url, full);
	if (rv == 0)
		rv = nng_http_client_alloc(&cli, url);
	if (rv == 0)
		rv = nng_http_req_alloc(&req, url);
	if (rv == 0)
		rv = nng_http_req_set_method(req, method);
	if (rv == 0)
		rv = nng_http_req_set_header(req, "Authorization", auth);
	if (rv == 0)
		rv = nng_http_res_alloc(&res);
	if (rv == 0)
		rv = nng_aio_alloc(&aio, NULL, NULL);
	if (rv == 0) {
		nng_aio_set_timeout(aio, TIMEOUT_MS);
		nng_http_client_transact(cli, req, res, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
	}
	if (rv != 0) {
		fprintf(stderr, "troupe-ctl: %s: %s\n", full, nng_strerror(rv));
	} else {
		*status = nng_http_res_get_status(res);
		void *data;
		size_t len;
		nng_http_res_get_data(res, &data, &len);
		*body = malloc(len + 1);
		if (*body == NULL) {
			rv = -1;
		} else {
			memcpy(*body, data, len);
			(*body)[len] = '\0';
		}
	}
	if (aio != NULL)
		nng_aio_free(aio);
	if (res != NULL)
		nng_http_res_free(res);
	if (req != NULL)
		nng_http_req_free(req);
	if (cli != NULL)
		nng_http_client_free(cli);
	if (url != NULL)
		nng_url_free(url);
	return rv == 0 ? 0 : -1;
}

char *ctl_get(const struct ctl *c, const char *path)
{
	int status = 0;
	char *body = NULL;
	if (ctl_request(c, "GET", path, &status, &body) != 0)
		return NULL;
	if (status == 200)
		return body;
	ctl_complain(c, path, status, body);
	free(body);
	return NULL;
}

void ctl_complain(
    const struct ctl *c, const char *path, int status, const char *body)
{
	json_t *j = json_loads(body, 0, NULL);
	const char *why = json_string_value(json_object_get(j, "error"));
	fprintf(stderr, "troupe-ctl: %s%s: HTTP %d%s%s\n", c->base, path,
	    status, status == 401 ? " (the token or cookie is wrong)" : "",
	    why != NULL ? ": " : "");
	if (why != NULL)
		fprintf(stderr, "  %s\n", why);
	json_decref(j);
}

json_t *ctl_parse(const char *body)
{
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	if (j == NULL)
		fprintf(stderr,
		    "troupe-ctl: the node's answer is not JSON: %s\n", je.text);
	return j;
}
