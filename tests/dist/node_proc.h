/*
 * What every test node program does (node_main.c, pbpid_main.c,
 * pg_node_main.c, global_node.c, cluster_node_main.c): take NAME URL
 * COOKIE and the options they share, die with the parent, start a
 * runtime with a log that is quiet unless TT_NODE_VERBOSE is set, start
 * the node, connect where told, print "READY <listen url>", and stop.
 *
 *   PROG NAME LISTEN-URL COOKIE [--tick MS] [--seed URL]... [--connect URL]
 *        [program options]
 *
 * The tick is 100 ms unless --tick says otherwise; up to TT_PROC_SEEDS
 * seeds.
 */
#ifndef TT_NODE_PROC_H
#define TT_NODE_PROC_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include <troupe/node.h>
#include <troupe/troupe.h>

#define TT_PROC_SEEDS 8

struct tt_proc {
	tr_node_opts o;
	const char *listen[2];
	const char *seeds[TT_PROC_SEEDS + 1];
	int nseeds;
	const char *connect; /* --connect: dialled before READY */
	sigset_t sigs;       /* blocked; tt_proc_wait waits for them */
	const char *tag;     /* the prefix of its log lines on stderr */
	tr_runtime *rt;
	tr_node *node;
};

static inline void tt_proc_log(void *user, const char *line)
{
	const struct tt_proc *p = user;
	if (getenv("TT_NODE_VERBOSE") != NULL)
		fprintf(stderr, "[%s] %s\n", p->tag, line);
}

/* Checks the three arguments, makes the kernel kill this process when its
 * parent dies, blocks SIGTERM, SIGINT and `extra_sig` (0: none) for
 * tt_proc_wait, and fills p->o with the name, URL and cookie. Returns 0,
 * or 2 after a usage line. */
static inline int tt_proc_init(
    struct tt_proc *p, int argc, char **argv, const char *tag, int extra_sig)
{
	memset(p, 0, sizeof(*p));
	p->tag = tag;
	if (argc < 4) {
		fprintf(stderr, "usage: %s NAME URL COOKIE [options]\n",
		    argv[0]);
		return 2;
	}
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	sigemptyset(&p->sigs);
	sigaddset(&p->sigs, SIGTERM);
	sigaddset(&p->sigs, SIGINT);
	if (extra_sig != 0)
		sigaddset(&p->sigs, extra_sig);
	pthread_sigmask(SIG_BLOCK, &p->sigs, NULL);
	tr_node_opts_init(&p->o);
	p->listen[0] = argv[2];
	p->o.name = argv[1];
	p->o.listen = p->listen;
	p->o.cookie = argv[3];
	p->o.tick_ms = 100;
	return 0;
}

/* Takes the shared option at argv[*i] (--tick, --seed, --connect) and
 * moves *i past its value; false, *i unchanged, for any other. */
static inline bool tt_proc_opt(struct tt_proc *p, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (*i + 1 >= argc)
		return false;
	if (strcmp(a, "--tick") == 0) {
		p->o.tick_ms = (uint32_t)atoi(argv[++*i]);
	} else if (strcmp(a, "--seed") == 0 && p->nseeds < TT_PROC_SEEDS) {
		p->seeds[p->nseeds++] = argv[++*i];
		p->o.seeds = p->seeds;
	} else if (strcmp(a, "--connect") == 0) {
		p->connect = argv[++*i];
	} else {
		return false;
	}
	return true;
}

/* Starts the runtime with `schedulers` threads, and the node with p->o.
 * Returns 0 or 1 (after a line on stderr). */
static inline int tt_proc_start(struct tt_proc *p, uint32_t schedulers)
{
	tr_runtime_opts ro;
	tr_runtime_opts_init(&ro);
	ro.schedulers = schedulers;
	int rc = tr_runtime_start(&p->rt, &ro);
	if (rc == TR_OK) {
		tr_runtime_set_log(p->rt, tt_proc_log, p);
		rc = tr_node_start(&p->node, p->rt, &p->o);
	}
	if (rc != TR_OK) {
		fprintf(stderr, "%s: start: %s\n", p->tag, tr_strerror(rc));
		return 1;
	}
	return 0;
}

/* Dials --connect if given (10 s), then prints READY. Returns 0 or 1. */
static inline int tt_proc_ready(struct tt_proc *p)
{
	int rc = p->connect != NULL
	             ? tr_node_connect(p->node, p->connect, 10000, NULL)
	             : TR_OK;
	if (rc != TR_OK) {
		fprintf(stderr, "%s: connect %s: %s\n", p->tag, p->connect,
		    tr_strerror(rc));
		return 1;
	}
	printf("READY %s\n", tr_node_listen_url(p->node, 0));
	fflush(stdout);
	return 0;
}

/* Waits for one of the blocked signals; returns it. */
static inline int tt_proc_wait(struct tt_proc *p)
{
	int sig = 0;
	(void)sigwait(&p->sigs, &sig);
	return sig;
}

static inline void tt_proc_stop(struct tt_proc *p)
{
	tr_node_stop(p->node);
	tr_runtime_stop(p->rt);
}

#endif
