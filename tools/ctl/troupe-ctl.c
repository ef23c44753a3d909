/*
 * troupe-ctl: a node's observer (troupe/observer.h) from the command line.
 *
 *   troupe-ctl [-u URL] [-c COOKIE | -t TOKEN] [--json] COMMAND
 *
 *   ping     the node answers: its name and the round trip
 *   stats    the node's counters (runtime, schedulers, distribution,
 *            process children), as a table
 *   nodes    the node and the nodes connected to it
 *   metrics  the Prometheus text, as the node serves it
 *
 * URL is the observer's (default: $TROUPE_OBSERVER_URL, else
 * http://127.0.0.1:9464). The token is TOKEN, or the one of COOKIE
 * (tr_observer_token), or $TROUPE_OBSERVER_TOKEN, or the one of
 * $TROUPE_COOKIE. --json prints the node's JSON as it came (stats, nodes,
 * ping). Exit status: 0, 1 when the node could not be asked (with why on
 * stderr), 2 for a bad command line.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include <troupe/observer.h>

#define DEFAULT_URL "http://127.0.0.1:9464"
#define TIMEOUT_MS 5000

static const char usage_text[] =
    "usage: troupe-ctl [-u URL] [-c COOKIE | -t TOKEN] [--json] "
    "ping | stats | nodes | metrics\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return 2;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* GET `path` of the observer at `base`; on 0, *body is the answer's body
 * (malloc'ed, NUL-terminated). */
static int get(const char *base, const char *token, const char *path,
    char **body)
{
	char full[512];
	snprintf(full, sizeof(full), "%s%s", base, path);
	nng_url *url = NULL;
	nng_http_client *cli = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_aio *aio = NULL;
	char auth[128];
	snprintf(auth, sizeof(auth), "Bearer %s", token);
	int rv = nng_url_parse(&url, full);
	if (rv == 0)
		rv = nng_http_client_alloc(&cli, url);
	if (rv == 0)
		rv = nng_http_req_alloc(&req, url);
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
	int status = 0;
	if (rv != 0) {
		fprintf(stderr, "troupe-ctl: %s: %s\n", full, nng_strerror(rv));
	} else if ((status = nng_http_res_get_status(res)) != 200) {
		fprintf(stderr, "troupe-ctl: %s: HTTP %d %s%s\n", full, status,
		    nng_http_res_get_reason(res),
		    status == 401 ? " (the token or cookie is wrong)" : "");
		rv = -1;
	} else {
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
	return rv;
}

static json_t *parse(const char *body)
{
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	if (j == NULL)
		fprintf(stderr, "troupe-ctl: the node's answer is not JSON: %s\n",
		    je.text);
	return j;
}

/* One object of counters as "  key  value" lines. */
static void print_group(json_t *root, const char *name, const char *title)
{
	json_t *g = json_object_get(root, name);
	if (!json_is_object(g))
		return;
	printf("%s\n", title);
	const char *k;
	json_t *v;
	json_object_foreach(g, k, v)
	{
		if (json_is_integer(v))
			printf("  %-22s %" JSON_INTEGER_FORMAT "\n", k,
			    json_integer_value(v));
		else if (json_is_real(v))
			printf("  %-22s %.3f\n", k, json_real_value(v));
		else if (json_is_string(v))
			printf("  %-22s %s\n", k, json_string_value(v));
	}
}

static void print_stats(json_t *j)
{
	print_group(j, "node", "node");
	print_group(j, "runtime", "runtime");
	json_t *sc = json_object_get(j, "schedulers");
	printf("schedulers\n  %-4s %12s %10s %10s %12s %10s\n", "#", "turns",
	    "steals", "parks", "msgs_sent", "crashes");
	size_t i;
	json_t *s;
	json_array_foreach(sc, i, s)
	{
		printf("  %-4zu %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
		       " %10" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT
		       " %10" JSON_INTEGER_FORMAT "\n",
		    i, json_integer_value(json_object_get(s, "turns")),
		    json_integer_value(json_object_get(s, "steals")),
		    json_integer_value(json_object_get(s, "parks")),
		    json_integer_value(json_object_get(s, "msgs_sent")),
		    json_integer_value(json_object_get(s, "crashes")));
	}
	print_group(j, "dist", "distribution");
	print_group(j, "proc", "process children");
	print_group(j, "observer", "observer");
}

static void print_nodes(json_t *j)
{
	json_t *node = json_object_get(j, "node");
	printf("%-32s %-20s %12s  %s\n", "NODE", "INCARNATION", "UP", "URL");
	printf("%-32s %-20s %12s  %s\n",
	    json_string_value(json_object_get(node, "name")), "(this one)",
	    "", "");
	size_t i;
	json_t *p;
	json_array_foreach(
	    json_object_get(json_object_get(j, "dist"), "peers"), i, p)
	{
		char up[32];
		snprintf(up, sizeof(up), "%.1f s",
		    (double)json_integer_value(json_object_get(p, "up_ms")) /
		        1000.0);
		printf("%-32s %-20" JSON_INTEGER_FORMAT " %12s  %s\n",
		    json_string_value(json_object_get(p, "name")),
		    json_integer_value(json_object_get(p, "incarnation")), up,
		    json_string_value(json_object_get(p, "url")));
	}
}

int main(int argc, char **argv)
{
	const char *url = getenv("TROUPE_OBSERVER_URL");
	const char *cookie = NULL, *token = NULL;
	bool as_json = false;
	static const struct option longs[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "u:c:t:h", longs, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'c':
			cookie = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'j':
			as_json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage();
		}
	}
	if (optind != argc - 1)
		return usage();
	const char *cmd = argv[optind];
	if (url == NULL)
		url = DEFAULT_URL;
	size_t ul = strlen(url);
	char base[256];
	snprintf(base, sizeof(base), "%.*s", (int)(ul > 0 && url[ul - 1] == '/' ? ul - 1 : ul), url);
	const char *path = strcmp(cmd, "ping") == 0      ? "/api/health"
	                   : strcmp(cmd, "metrics") == 0 ? "/metrics"
	                   : strcmp(cmd, "stats") == 0 ||
	                           strcmp(cmd, "nodes") == 0
	                       ? "/api/node"
	                       : NULL;
	if (path == NULL)
		return usage();
	if (token == NULL && cookie == NULL)
		token = getenv("TROUPE_OBSERVER_TOKEN");
	if (token == NULL && cookie == NULL)
		cookie = getenv("TROUPE_COOKIE");
	char derived[TR_OBSERVER_TOKEN_SIZE];
	if (token == NULL) {
		if (cookie == NULL ||
		    tr_observer_token(derived, sizeof(derived), cookie) != TR_OK) {
			fprintf(stderr, "troupe-ctl: give the cookie (-c or "
			                "TROUPE_COOKIE) or the token (-t)\n");
			return 2;
		}
		token = derived;
	}

	char *body = NULL;
	double t0 = now_ms();
	if (get(base, token, path, &body) != 0)
		return 1;
	double rtt = now_ms() - t0;
	int rc = 0;
	if (as_json || strcmp(cmd, "metrics") == 0) {
		fputs(body, stdout);
		if (body[0] != '\0' && body[strlen(body) - 1] != '\n')
			putchar('\n');
	} else {
		json_t *j = parse(body);
		if (j == NULL) {
			rc = 1;
		} else if (strcmp(cmd, "ping") == 0) {
			printf("pong from %s in %.2f ms\n",
			    json_string_value(json_object_get(j, "node")), rtt);
		} else if (strcmp(cmd, "stats") == 0) {
			print_stats(j);
		} else {
			print_nodes(j);
		}
		json_decref(j);
	}
	free(body);
	return rc;
}
