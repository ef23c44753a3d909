/*
 * troupe-bench -o (bench_observe.h).
 */
#include "bench_observe.h"

#include <stdio.h>
#include <stdlib.h>

#include <troupe/observer.h>

tr_node *bench_observe_start(tr_runtime *rt)
{
	const char *listen[] = {"tcp://127.0.0.1:0", NULL};
	tr_node_opts o;
	tr_node_opts_init(&o);
	o.name = "bench-observed";
	o.cookie = "troupe-bench-observer";
	o.listen = listen;
	o.observer_url = "http://127.0.0.1:0";
	tr_node *node = NULL;
	char url[96];
	int rc = tr_node_start(&node, rt, &o);
	if (rc == TR_OK)
		rc = tr_node_observer_url(url, sizeof(url), node);
	if (rc != TR_OK) {
		fprintf(stderr, "troupe-bench: observer: %s\n", tr_strerror(rc));
		exit(1);
	}
	fprintf(stderr, "troupe-bench: observer idle at %s\n", url);
	return node;
}
