/*
 * troupe-ctl: the observer's JSON as readable tables.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s != NULL ? s : "-";
}

static json_int_t num(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
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

void ctl_show_stats(json_t *j)
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
		printf("  %-4zu %12" JSON_INTEGER_FORMAT
		       " %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
		       " %12" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
		       "\n",
		    i, json_integer_value(json_object_get(s, "turns")),
		    json_integer_value(json_object_get(s, "steals")),
		    json_integer_value(json_object_get(s, "parks")),
		    json_integer_value(json_object_get(s, "msgs_sent")),
		    json_integer_value(json_object_get(s, "crashes")));
	}
	print_group(j, "dist", "distribution");
	print_group(j, "proc", "process children");
	print_group(j, "sock", "sockets");
	print_group(j, "observer", "observer");
}

void ctl_show_nodes(json_t *j)
{
	json_t *node = json_object_get(j, "node");
	printf("%-32s %-20s %12s  %s\n", "NODE", "INCARNATION", "UP", "URL");
	printf("%-32s %-20s %12s  %s\n",
	    json_string_value(json_object_get(node, "name")), "(this one)", "",
	    "");
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

/* A supervisor and, below it, its children; a child that is a listed
 * supervisor is drawn with its own children. */
static void tree_sup(json_t *all, json_t *s, int depth)
{
	printf("%*s%s <%s>  %s, %" JSON_INTEGER_FORMAT
	       " restarts in %" JSON_INTEGER_FORMAT
	       " ms; restarts %" JSON_INTEGER_FORMAT "\n",
	    2 * depth, "",
	    json_is_string(json_object_get(s, "name")) ? str(s, "name")
	                                               : "(supervisor)",
	    str(s, "pid"), str(s, "strategy"), num(s, "intensity"),
	    num(s, "period_ms"), num(s, "restarts"));
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(s, "recent"), i, r)
	{
		if (i == 3)
			break;
		printf("%*s  ! %s restarted: %s\n", 2 * depth, "", str(r, "id"),
		    str(r, "reason"));
	}
	json_t *c;
	json_array_foreach(json_object_get(s, "children"), i, c)
	{
		const char *pid = str(c, "pid");
		json_t *sub = NULL;
		if (strcmp(str(c, "type"), "supervisor") == 0) {
			size_t k;
			json_t *x;
			json_array_foreach(
			    json_object_get(all, "supervisors"), k, x)
			{
				if (strcmp(str(x, "pid"), pid) == 0)
					sub = x;
			}
		}
		if (sub != NULL) {
			printf("%*s- %s:\n", 2 * depth + 2, "", str(c, "id"));
			tree_sup(all, sub, depth + 2);
			continue;
		}
		printf("%*s- %-16s %-12s %-10s %-9s %s%s restarts "
		       "%" JSON_INTEGER_FORMAT "\n",
		    2 * depth + 2, "", str(c, "id"),
		    json_is_string(json_object_get(c, "pid")) ? pid
		                                              : "(stopped)",
		    str(c, "type"), str(c, "restart"),
		    json_is_true(json_object_get(c, "restarting"))
		        ? "restarting "
		        : "",
		    "", num(c, "restarts"));
	}
}

void ctl_show_tree(json_t *j)
{
	json_t *sups = json_object_get(j, "supervisors");
	printf("node %s: %zu supervisors\n", str(j, "node"),
	    json_array_size(sups));
	size_t i;
	json_t *s;
	json_array_foreach(sups, i, s)
	{
		/* Roots: no parent among the listed supervisors. */
		const char *parent = str(s, "parent");
		bool root = true;
		size_t k;
		json_t *x;
		json_array_foreach(sups, k, x)
		{
			if (strcmp(str(x, "pid"), parent) == 0)
				root = false;
		}
		if (root)
			tree_sup(j, s, 0);
	}
}

void ctl_show_top(json_t *j, const char *sort)
{
	printf("node %s: %" JSON_INTEGER_FORMAT " actors, top by %s\n",
	    str(j, "node"), num(j, "total"), sort);
	printf("%-14s %-20s %-20s %-9s %10s %12s\n", "PID", "NAME", "BEHAVIOUR",
	    "STATE", "MAILBOX", "HANDLED");
	size_t i;
	json_t *a;
	json_array_foreach(json_object_get(j, "actors"), i, a)
	{
		printf("%-14s %-20.20s %-20.20s %-9s %10" JSON_INTEGER_FORMAT
		       " %12" JSON_INTEGER_FORMAT "\n",
		    str(a, "pid"), str(a, "name"), str(a, "behaviour"),
		    str(a, "state"), num(a, "mailbox"), num(a, "handled"));
	}
}
