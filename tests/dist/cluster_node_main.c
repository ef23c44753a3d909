/*
 * A cluster test node (test_node_flap.c): a node process with global
 * names, process groups and a record of the nodes it saw go down, driven
 * one line at a time on its stdin, answering each line with one line on
 * its stdout.
 *
 *   troupe-test-cluster-node NAME LISTEN-URL COOKIE [--tick MS]
 *                            [--seed URL]...
 *
 * prints "READY <listen url>", then reads commands:
 *
 *   nodes             -> N <nodes connected>
 *   reg NAME MS       registers NAME for a new idle actor, waiting up to
 *                     MS ms             -> R <rc> <ms it took>
 *   whereis NAME      -> W <rc>
 *   names             -> NAMES <count> <hash of the sorted name=pid list>
 *   join G            a new idle actor joins group G of the default scope
 *                                       -> J <rc>
 *   members G         -> M <count> <hash of the sorted member pids>
 *   downs             -> D <NODEDOWNs seen> <node>=<count>...
 *   quit              stops the node and exits -> BYE
 *
 * Pids in the hashes are in their portable encoding (troupe/pid.h), so two
 * nodes that agree print the same hash. It dies with its parent
 * (PR_SET_PDEATHSIG).
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <troupe/global.h>
#include <troupe/node.h>
#include <troupe/pg.h>
#include <troupe/pid.h>
#include <troupe/troupe.h>

#include "node_proc.h"

#define DOWNS_MAX 64

static tr_node *node;

/* ---- what went down ------------------------------------------------------ */

static pthread_mutex_t downs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[TR_NODE_NAME_MAX + 1];
	unsigned n;
} downs[DOWNS_MAX];
static unsigned ndowns_total;

static int nodemon_init(tr_ctx *ctx, void *arg, void **state)
{
	(void)arg;
	*state = NULL;
	return tr_monitor_node(ctx, NULL, true) == TR_OK ? 0 : 1;
}

static int nodemon_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	if (m->type != TR_MSG_NODEDOWN || m->size < TR_NODE_EVENT_V1_SIZE)
		return 0;
	const tr_node_event *ev = (const tr_node_event *)m->data;
	pthread_mutex_lock(&downs_mu);
	ndowns_total++;
	for (int i = 0; i < DOWNS_MAX; i++) {
		if (downs[i].name[0] == '\0')
			snprintf(downs[i].name, sizeof(downs[i].name), "%s",
			    ev->node);
		if (strcmp(downs[i].name, ev->node) == 0) {
			downs[i].n++;
			break;
		}
	}
	pthread_mutex_unlock(&downs_mu);
	return 0;
}

static const tr_behaviour nodemon_b = {
    "nodemon", nodemon_init, nodemon_handle, NULL};

/* ---- hashes that agree across nodes --------------------------------------
 */

static int idle_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	(void)ctx;
	(void)state;
	(void)m;
	return 0;
}

static const tr_behaviour idle_b = {"idle", NULL, idle_handle, NULL};

struct item {
	char key[TR_GLOBAL_NAME_MAX + 1 + 2 * TR_PID_ENCODED_MAX + 2];
};

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->key,
	    ((const struct item *)b)->key);
}

/* "prefix=" and the hex of pid's portable encoding, into it->key. */
static void item_set(struct item *it, const char *prefix, tr_pid pid)
{
	unsigned char enc[TR_PID_ENCODED_MAX];
	size_t len = 0;
	int n = snprintf(it->key, sizeof(it->key), "%s=", prefix);
	if (tr_pid_encode(enc, sizeof(enc), &len, node, pid) != TR_OK)
		len = 0;
	for (size_t i = 0; i < len && (size_t)n + 3 < sizeof(it->key); i++)
		n += snprintf(it->key + n, sizeof(it->key) - (size_t)n, "%02x",
		    enc[i]);
}

static uint64_t items_hash(struct item *v, size_t n)
{
	qsort(v, n, sizeof(*v), item_cmp);
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		const char *p = v[i].key;
		do /* each key with its NUL, so that keys do not run together */
			h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
		while (*p++ != '\0');
	}
	return h;
}

/* The names, all of them however many (tr_global_names tells how many
 * there are: ask again with room for them). */
static void cmd_names(void)
{
	size_t n = 0, cap = 0;
	tr_global_info *info = NULL;
	do {
		cap = n + 64;
		free(info);
		info = calloc(cap, sizeof(*info));
		if (info == NULL)
			break;
		tr_global_info_init(&info[0]);
		(void)tr_global_names(info, cap, &n, node);
	} while (n > cap);
	struct item *items = info != NULL ? calloc(n + 1, sizeof(*items)) : NULL;
	if (items == NULL) {
		free(info);
		printf("ERR\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		item_set(&items[i], info[i].name, info[i].pid);
	printf("NAMES %zu %016llx\n", n,
	    (unsigned long long)items_hash(items, n));
	free(items);
	free(info);
}

static void cmd_members(const char *group)
{
	size_t n = 0, cap = 0;
	tr_pid *pids = NULL;
	do {
		cap = n + 64;
		free(pids);
		pids = calloc(cap, sizeof(*pids));
		if (pids == NULL)
			break;
		(void)tr_pg_members(pids, cap, &n, node, NULL, group);
	} while (n > cap);
	struct item *items = pids != NULL ? calloc(n + 1, sizeof(*items)) : NULL;
	if (items == NULL) {
		free(pids);
		printf("ERR\n");
		return;
	}
	for (size_t i = 0; i < n; i++)
		item_set(&items[i], "", pids[i]);
	printf("M %zu %016llx\n", n, (unsigned long long)items_hash(items, n));
	free(items);
	free(pids);
}

static void cmd_downs(void)
{
	pthread_mutex_lock(&downs_mu);
	printf("D %u", ndowns_total);
	for (int i = 0; i < DOWNS_MAX && downs[i].name[0] != '\0'; i++)
		printf(" %s=%u", downs[i].name, downs[i].n);
	printf("\n");
	pthread_mutex_unlock(&downs_mu);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	static struct tt_proc p;
	if (tt_proc_init(&p, argc, argv, "cluster node", 0) != 0)
		return 2;
	for (int i = 4; i < argc; i++)
		if (!tt_proc_opt(&p, argc, argv, &i))
			return 2;
	/* One scheduler: thirty of these share two cores. */
	if (tt_proc_start(&p, 1) != 0)
		return 1;
	tr_runtime *rt = p.rt;
	node = p.node;
	tr_pid mon;
	if (tr_spawn(&mon, rt, &nodemon_b, NULL, NULL) != TR_OK ||
	    tt_proc_ready(&p) != 0)
		return 1;

	char line[1024];
	while (fgets(line, sizeof(line), stdin) != NULL) {
		char cmd[32], arg[TR_GLOBAL_NAME_MAX + 1];
		long ms = 0;
		tr_pid pid;
		if (sscanf(line, "%31s", cmd) != 1)
			continue;
		if (strcmp(cmd, "nodes") == 0) {
			size_t n = 0;
			(void)tr_node_list(NULL, 0, &n, node);
			printf("N %zu\n", n);
		} else if (strcmp(cmd, "reg") == 0 &&
		           sscanf(line, "%*s %255s %ld", arg, &ms) == 2) {
			int64_t t0 = now_ms();
			int rc = tr_spawn(&pid, rt, &idle_b, NULL, NULL);
			if (rc == TR_OK)
				rc = tr_global_register(node, arg, pid, NULL, ms);
			printf("R %d %lld\n", rc, (long long)(now_ms() - t0));
		} else if (strcmp(cmd, "whereis") == 0 &&
		           sscanf(line, "%*s %255s", arg) == 1) {
			printf("W %d\n", tr_global_whereis(&pid, node, arg));
		} else if (strcmp(cmd, "names") == 0) {
			cmd_names();
		} else if (strcmp(cmd, "join") == 0 &&
		           sscanf(line, "%*s %255s", arg) == 1) {
			int rc = tr_spawn(&pid, rt, &idle_b, NULL, NULL);
			if (rc == TR_OK)
				rc = tr_pg_join(node, NULL, arg, &pid, 1);
			printf("J %d\n", rc);
		} else if (strcmp(cmd, "members") == 0 &&
		           sscanf(line, "%*s %255s", arg) == 1) {
			cmd_members(arg);
		} else if (strcmp(cmd, "downs") == 0) {
			cmd_downs();
		} else if (strcmp(cmd, "quit") == 0) {
			break;
		} else {
			printf("ERR\n");
		}
		fflush(stdout);
	}
	tt_proc_stop(&p);
	printf("BYE\n");
	fflush(stdout);
	return 0;
}
