/*
 * troupe-ctl: a node's observer (troupe/observer.h) from the command line.
 *
 *   troupe-ctl [-u URL] [-c COOKIE | -t TOKEN] [-n NODE] [--json] COMMAND
 *
 *   ping                 the node answers: its name and the round trip
 *   ready                whether the node's application says it is ready
 *                        (tr_node_set_ready), and if not why: exit status
 *                        0 ready, 1 not ready, 2 not asked
 *   stats                the node's counters (runtime, schedulers,
 *                        distribution, process children), as a table
 *   nodes                the node and the nodes connected to it
 *   metrics              the Prometheus text, as the node serves it
 *   tree                 the supervision trees, with recent restarts
 *   top [-s mailbox|handled] [-l N] [-i SECONDS] [--once]
 *                        the actors with the longest mailboxes (or the
 *                        most messages handled), refreshed every SECONDS
 *                        (2) as top does, until interrupted; once when
 *                        --once, --json or stdout is not a terminal
 *   kill PID             kill an actor (reason kill)
 *   restart SUP ID       restart a supervisor's child (a running one is
 *                        terminated first)
 *   terminate SUP ID     terminate a supervisor's child
 *   disconnect NODE      drop the connection to a connected node
 *
 * URL is the observer's (default: $TROUPE_OBSERVER_URL, else
 * http://127.0.0.1:9464); -n NODE shows another node of the cluster
 * through it. The token is TOKEN, or the one of COOKIE
 * (tr_observer_token), or $TROUPE_OBSERVER_TOKEN, or the one of
 * $TROUPE_COOKIE. --json prints the node's JSON as it came. Exit status:
 * 0, 1 when the node could not be asked or refused (with why on stderr),
 * 2 for a bad command line. `ready` differs, for probes and scripts that
 * must tell "not ready" from "not asked": 0 ready, 1 not ready (the
 * node said so), 2 anything else (not asked, refused, a bad command
 * line).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <troupe/observer.h>

#include "ctl.h"

#define DEFAULT_URL "http://127.0.0.1:9464"

static const char usage_text[] =
    "usage: troupe-ctl [-u URL] [-c COOKIE | -t TOKEN] [-n NODE] [--json] "
    "COMMAND\n"
    "  ping | ready | stats | nodes | metrics | tree\n"
    "  top [-s mailbox|handled] [-l N] [-i SECONDS] [--once]\n"
    "  kill PID | restart SUP ID | terminate SUP ID | disconnect NODE\n";

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

/* Prints `body` as it came, with a final newline. */
static void raw(const char *body)
{
	fputs(body, stdout);
	if (body[0] != '\0' && body[strlen(body) - 1] != '\n')
		putchar('\n');
}

/* An operator action: POST `path`; prints what the node said. */
static int action(const struct ctl *c, const char *path, bool as_json)
{
	int status = 0;
	char *body = NULL;
	if (ctl_request(c, "POST", path, &status, &body) != 0)
		return 1;
	json_t *j = json_loads(body, 0, NULL);
	if (as_json)
		raw(body);
	else if (status == 200)
		printf("done%s%s\n",
		    json_is_string(json_object_get(j, "pid")) ? ": " : "",
		    json_is_string(json_object_get(j, "pid"))
		        ? json_string_value(json_object_get(j, "pid"))
		        : "");
	else
		fprintf(stderr, "troupe-ctl: HTTP %d: %s\n", status,
		    json_string_value(json_object_get(j, "error")) != NULL
		        ? json_string_value(json_object_get(j, "error"))
		        : body);
	json_decref(j);
	free(body);
	return status == 200 ? 0 : 1;
}

/* One GET shown by `show` (or raw with --json). */
static int show(const struct ctl *c, const char *path, bool as_json,
    void (*fn)(json_t *, const char *), const char *arg)
{
	char *body = ctl_get(c, path);
	if (body == NULL)
		return 1;
	int rc = 0;
	if (as_json) {
		raw(body);
	} else {
		json_t *j = ctl_parse(body);
		if (j == NULL)
			rc = 1;
		else
			fn(j, arg);
		json_decref(j);
	}
	free(body);
	return rc;
}

/* GET /api/ready: 0 when the node is ready, 1 when it says it is not
 * (200 with "ready": true, or 503 with "ready": false), 2 for any other
 * answer or none. */
static int ready(const struct ctl *c, bool as_json)
{
	static const char path[] = "/api/ready";
	int status = 0;
	char *body = NULL;
	if (ctl_request(c, "GET", path, &status, &body) != 0)
		return 2;
	json_t *j = json_loads(body, 0, NULL);
	json_t *r = json_object_get(j, "ready");
	const char *node = json_string_value(json_object_get(j, "node"));
	const char *why = json_string_value(json_object_get(j, "why"));
	int rc = node == NULL                        ? 2
	         : status == 200 && json_is_true(r)  ? 0
	         : status == 503 && json_is_false(r) ? 1
	                                             : 2;
	if (rc == 2)
		ctl_complain(c, path, status, body);
	else if (as_json)
		raw(body);
	else if (rc == 0)
		printf("%s is ready\n", node);
	else
		printf("%s is not ready%s%s\n", node,
		    why != NULL && why[0] != '\0' ? ": " : "",
		    why != NULL ? why : "");
	json_decref(j);
	free(body);
	return rc;
}

static void show_stats(json_t *j, const char *a)
{
	(void)a;
	ctl_show_stats(j);
}

static void show_nodes(json_t *j, const char *a)
{
	(void)a;
	ctl_show_nodes(j);
}

static void show_tree(json_t *j, const char *a)
{
	(void)a;
	ctl_show_tree(j);
}

static int top(const struct ctl *c, int argc, char **argv, bool as_json)
{
	const char *sort = "mailbox";
	long limit = 20;
	double every = 2;
	bool once = as_json || !isatty(STDOUT_FILENO);
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--once") == 0)
			once = true;
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			sort = argv[++i];
		else if (strcmp(argv[i], "-l") == 0 && i + 1 < argc)
			limit = strtol(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-i") == 0 && i + 1 < argc)
			every = strtod(argv[++i], NULL);
		else
			return usage();
	}
	if ((strcmp(sort, "mailbox") != 0 && strcmp(sort, "handled") != 0) ||
	    limit < 1 || limit > 1000 || !(every >= 0.1))
		return usage();
	char path[128];
	snprintf(
	    path, sizeof(path), "/api/actors?sort=%s&limit=%ld", sort, limit);
	for (;;) {
		if (!once)
			fputs("\033[H\033[2J", stdout); /* home, clear */
		int rc = show(c, path, as_json, ctl_show_top, sort);
		if (rc != 0 || once)
			return rc;
		fflush(stdout);
		struct timespec ts = {(time_t)every,
		    (long)((every - (double)(time_t)every) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

int main(int argc, char **argv)
{
	struct ctl c = {NULL, NULL, NULL};
	const char *url = getenv("TROUPE_OBSERVER_URL");
	const char *cookie = NULL, *token = NULL;
	bool as_json = false;
	static const struct option longs[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int o;
	/* "+": options stop at the command (top has its own). */
	while ((o = getopt_long(argc, argv, "+u:c:t:n:h", longs, NULL)) != -1) {
		switch (o) {
		case 'u':
			url = optarg;
			break;
		case 'c':
			cookie = optarg;
			break;
		case 't':
			token = optarg;
			break;
		case 'n':
			c.node = optarg;
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
	if (optind >= argc)
		return usage();
	const char *cmd = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	if (url == NULL)
		url = DEFAULT_URL;
	size_t ul = strlen(url);
	char base[256];
	snprintf(base, sizeof(base), "%.*s",
	    (int)(ul > 0 && url[ul - 1] == '/' ? ul - 1 : ul), url);
	c.base = base;
	if (token == NULL && cookie == NULL)
		token = getenv("TROUPE_OBSERVER_TOKEN");
	if (token == NULL && cookie == NULL)
		cookie = getenv("TROUPE_COOKIE");
	char derived[TR_OBSERVER_TOKEN_SIZE];
	if (token == NULL) {
		if (cookie == NULL || tr_observer_token(derived,
		                          sizeof(derived), cookie) != TR_OK) {
			fprintf(stderr, "troupe-ctl: give the cookie (-c or "
			                "TROUPE_COOKIE) or the token (-t)\n");
			return 2;
		}
		token = derived;
	}
	c.token = token;

	char path[512];
	if (strcmp(cmd, "top") == 0)
		return top(&c, nargs, args, as_json);
	if (strcmp(cmd, "kill") == 0 && nargs == 1) {
		snprintf(path, sizeof(path), "/api/actor/%s/kill", args[0]);
		return action(&c, path, as_json);
	}
	if ((strcmp(cmd, "restart") == 0 || strcmp(cmd, "terminate") == 0) &&
	    nargs == 2) {
		snprintf(path, sizeof(path), "/api/supervisor/%s/child/%s/%s",
		    args[0], args[1], cmd);
		return action(&c, path, as_json);
	}
	if (strcmp(cmd, "disconnect") == 0 && nargs == 1) {
		snprintf(
		    path, sizeof(path), "/api/peer/%s/disconnect", args[0]);
		return action(&c, path, as_json);
	}
	if (strcmp(cmd, "ready") == 0)
		return nargs == 0 ? ready(&c, as_json) : usage();
	if (nargs != 0)
		return usage();
	if (strcmp(cmd, "stats") == 0)
		return show(&c, "/api/node", as_json, show_stats, NULL);
	if (strcmp(cmd, "nodes") == 0)
		return show(&c, "/api/node", as_json, show_nodes, NULL);
	if (strcmp(cmd, "tree") == 0)
		return show(&c, "/api/supervisors", as_json, show_tree, NULL);
	if (strcmp(cmd, "metrics") == 0) {
		char *body = ctl_get(&c, "/metrics");
		if (body == NULL)
			return 1;
		raw(body);
		free(body);
		return 0;
	}
	if (strcmp(cmd, "ping") == 0) {
		double t0 = now_ms();
		char *body = ctl_get(&c, "/api/health");
		if (body == NULL)
			return 1;
		double rtt = now_ms() - t0;
		json_t *j = as_json ? NULL : ctl_parse(body);
		if (as_json)
			raw(body);
		else if (j != NULL)
			printf("pong from %s in %.2f ms\n",
			    json_string_value(json_object_get(j, "node")), rtt);
		json_decref(j);
		free(body);
		return as_json || j != NULL ? 0 : 1;
	}
	return usage();
}
