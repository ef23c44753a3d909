/*
 * A network of handshake machines (transport/hs.c) with no sockets: the
 * test of the handshake and its fuzzer drive several machines through it.
 *
 * Each simulated node has a machine, a name and one URL ("sim://NAME").
 * A connection is one-way, from a handshake of one node to a pipe of
 * another; frames on it arrive in order, when the driver delivers them
 * (sim_step picks the connection, so a test or the fuzzer chooses the
 * interleaving). The actions of the machines are carried out as the node
 * would: DIAL opens a connection, SEND queues a frame, CLOSE closes (the
 * far end learns it once the frames sent before have arrived), UP binds
 * the connections to a pair, DONE finishes a connect. Frames that arrive
 * on a committed pair's pipe are the pair's (counted, not handed to the
 * machine), as the node routes them.
 *
 * Header-only; include once per program.
 */
#ifndef TT_HS_SIM_H
#define TT_HS_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"

#define SIM_NODES 4
#define SIM_CONNS 256
#define SIM_FRAMES 64 /* per connection */

struct sim_frame {
	uint8_t *buf;
	size_t len;
};

struct sim_conn {
	bool used;
	int from, to;  /* node indices */
	uint32_t hs;   /* the sender's handshake id; 0 once a pair's */
	uint32_t pipe; /* its id at the receiver */
	bool closed;   /* by the sender: the far end learns it when empty */
	bool dropped;  /* by the receiver: nothing more arrives */
	bool pair;     /* bound to a committed pair at the sender */
	uint32_t head, n;
	struct sim_frame q[SIM_FRAMES];
};

struct sim_pair {
	bool up;
	char name[TR_NODE_NAME_MAX + 1];
	uint64_t inc;
	uint32_t hs;
	int out;       /* connection index we send on */
	uint32_t pipe; /* connection we receive on (its pipe id here) */
	uint32_t ups;  /* commits for this peer */
	uint32_t replaced;
};

struct sim_node {
	tr__hs *hs;
	char name[32];
	char url[48];
	uint64_t inc;
	struct sim_pair pairs[SIM_NODES];
	uint32_t next_pipe;
	/* Connects: id -> result. */
	uint32_t conn_id[16];
	int conn_rc[16];
	bool conn_done[16];
	char conn_name[16][TR_NODE_NAME_MAX + 1];
	uint32_t nconnects;
	uint64_t refused[TR__HS_R_NCAUSES];
	uint32_t pair_frames; /* frames that reached a committed pair */
};

struct sim {
	struct sim_node nodes[SIM_NODES];
	int n;
	struct sim_conn conns[SIM_CONNS];
	int64_t now;
	uint64_t rng;
};

static int sim_random(void *arg, void *buf, size_t n)
{
	struct sim *s = arg;
	uint8_t *b = buf;
	for (size_t i = 0; i < n; i++) {
		s->rng =
		    s->rng * 6364136223846793005ull + 1442695040888963407ull;
		b[i] = (uint8_t)(s->rng >> 56);
	}
	return TR_OK;
}

static int sim_node_of_url(struct sim *s, const char *url)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->nodes[i].url, url) == 0)
			return i;
	return -1;
}

static int sim_conn_of(struct sim *s, int from, uint32_t hs)
{
	for (int i = 0; i < SIM_CONNS; i++)
		if (s->conns[i].used && s->conns[i].from == from &&
		    s->conns[i].hs == hs && hs != 0)
			return i;
	return -1;
}

static int sim_conn_by_pipe(struct sim *s, int to, uint32_t pipe)
{
	for (int i = 0; i < SIM_CONNS; i++)
		if (s->conns[i].used && s->conns[i].to == to &&
		    s->conns[i].pipe == pipe && pipe != 0)
			return i;
	return -1;
}

static void sim_push(struct sim_conn *c, uint8_t *buf, size_t len)
{
	if (c->closed || c->dropped || c->n == SIM_FRAMES) {
		free(buf);
		return;
	}
	c->q[(c->head + c->n) % SIM_FRAMES] = (struct sim_frame){buf, len};
	c->n++;
}

static int sim_open(struct sim *s, int from, const char *url, uint32_t hs)
{
	int to = sim_node_of_url(s, url);
	for (int i = 0; i < SIM_CONNS; i++) {
		struct sim_conn *c = &s->conns[i];
		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->from = from;
		c->to = to;
		c->hs = hs;
		if (to >= 0)
			c->pipe = ++s->nodes[to].next_pipe;
		/* Else nobody listens there: it redials, as sp_out.c does, and
		 * nothing arrives until it is closed. */
		return i;
	}
	return -1;
}

static void sim_run(struct sim *s, int k, tr__hs_acts *a);

static void sim_act(struct sim *s, int k, tr__hs_act *a, tr__hs_acts *more)
{
	struct sim_node *nd = &s->nodes[k];
	if (getenv("SIM_TRACE") != NULL) {
		static const char *kinds[] = {"?", "DIAL", "SEND", "TRUST",
		    "UP", "CLOSE", "DONE", "REFUSED"};
		fprintf(stderr, "%s: %s hs=%u pipe=%u rc=%d name=%s why=%s\n",
		    nd->name, kinds[a->kind], a->hs, a->pipe, a->rc, a->name,
		    a->why ? a->why : "");
	}
	int ci;
	switch (a->kind) {
	case TR__HS_DIAL:
		ci = sim_open(s, k, a->url, a->hs);
		if (ci >= 0)
			sim_push(&s->conns[ci], a->frame, a->len);
		else
			free(a->frame);
		a->frame = NULL;
		break;
	case TR__HS_SEND:
		ci = sim_conn_of(s, k, a->hs);
		if (ci >= 0)
			sim_push(&s->conns[ci], a->frame, a->len);
		else
			free(a->frame);
		a->frame = NULL;
		break;
	case TR__HS_TRUST:
		break;
	case TR__HS_UP: {
		ci = sim_conn_of(s, k, a->hs);
		int peer = -1;
		for (int i = 0; i < s->n; i++)
			if (strcmp(s->nodes[i].name, a->name) == 0)
				peer = i;
		if (peer < 0 || ci < 0) {
			free(a->frame);
			a->frame = NULL;
			break;
		}
		struct sim_pair *p = &nd->pairs[peer];
		if (a->replaces != 0)
			p->replaced++;
		if (p->up && p->out >= 0) {
			/* The old pair's connections go. */
			s->conns[p->out].closed = true;
			int in = sim_conn_by_pipe(s, k, p->pipe);
			if (in >= 0)
				s->conns[in].dropped = true;
		}
		p->up = true;
		p->ups++;
		snprintf(p->name, sizeof(p->name), "%s", a->name);
		p->inc = a->inc;
		p->hs = a->hs;
		p->out = ci;
		p->pipe = a->pipe;
		s->conns[ci].pair = true;
		s->conns[ci].hs = 0;
		if (a->frame != NULL)
			sim_push(&s->conns[ci], a->frame, a->len);
		a->frame = NULL;
		break;
	}
	case TR__HS_CLOSE:
		ci = sim_conn_of(s, k, a->hs);
		if (ci >= 0) {
			s->conns[ci].closed = true;
			s->conns[ci].hs = 0;
		}
		if (a->pipe != 0) {
			int in = sim_conn_by_pipe(s, k, a->pipe);
			bool ours = false;
			for (int i = 0; i < s->n; i++)
				ours |= nd->pairs[i].up &&
				        nd->pairs[i].pipe == a->pipe;
			if (in >= 0 && !ours)
				s->conns[in].dropped = true;
		}
		break;
	case TR__HS_DONE:
		for (uint32_t i = 0; i < nd->nconnects; i++) {
			if (nd->conn_id[i] == a->hs && !nd->conn_done[i]) {
				nd->conn_done[i] = true;
				nd->conn_rc[i] = a->rc;
				snprintf(nd->conn_name[i],
				    sizeof(nd->conn_name[i]), "%s", a->name);
			}
		}
		break;
	case TR__HS_REFUSED:
		if (a->rc > 0 && a->rc < TR__HS_R_NCAUSES)
			nd->refused[a->rc]++;
		break;
	}
	(void)more;
}

static void sim_run(struct sim *s, int k, tr__hs_acts *a)
{
	tr__hs_acts more;
	while (a->n != 0) {
		more.n = 0;
		for (uint32_t i = 0; i < a->n; i++)
			sim_act(s, k, &a->v[i], &more);
		tr__hs_acts_clear(a);
		*a = more;
	}
}

static void sim_init(
    struct sim *s, int n, uint64_t seed, const char *const *names)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->rng = seed * 2654435761u + 1;
	s->now = 1000;
	for (int i = 0; i < n; i++) {
		struct sim_node *nd = &s->nodes[i];
		snprintf(nd->name, sizeof(nd->name), "%s", names[i]);
		snprintf(nd->url, sizeof(nd->url), "sim://%s", names[i]);
		nd->inc = 100 + (uint64_t)i;
		for (int j = 0; j < SIM_NODES; j++)
			nd->pairs[j].out = -1;
		const char *urls[1] = {nd->url};
		tr__hs_cfg c;
		memset(&c, 0, sizeof(c));
		c.name = nd->name;
		c.inc = nd->inc;
		c.urls = urls;
		c.nurls = 1;
		memset(c.key, 7, sizeof(c.key));
		c.random = sim_random;
		c.arg = s;
		(void)tr__hs_alloc(&nd->hs, &c);
	}
}

/* Node k restarts: a new machine with a new incarnation and no state. */
static void sim_restart(struct sim *s, int k, const uint8_t *key)
{
	struct sim_node *nd = &s->nodes[k];
	tr__hs_free(nd->hs);
	nd->inc += 1000;
	memset(nd->pairs, 0, sizeof(nd->pairs));
	for (int j = 0; j < SIM_NODES; j++)
		nd->pairs[j].out = -1;
	nd->nconnects = 0;
	for (int i = 0; i < SIM_CONNS; i++) {
		struct sim_conn *c = &s->conns[i];
		if (c->used && c->from == k)
			c->closed = true;
		if (c->used && c->to == k)
			c->dropped = true;
	}
	const char *urls[1] = {nd->url};
	tr__hs_cfg c;
	memset(&c, 0, sizeof(c));
	c.name = nd->name;
	c.inc = nd->inc;
	c.urls = urls;
	c.nurls = 1;
	if (key != NULL)
		memcpy(c.key, key, sizeof(c.key));
	else
		memset(c.key, 7, sizeof(c.key));
	c.random = sim_random;
	c.arg = s;
	(void)tr__hs_alloc(&nd->hs, &c);
}

static void sim_fini(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		tr__hs_free(s->nodes[i].hs);
	for (int i = 0; i < SIM_CONNS; i++)
		for (uint32_t j = 0; j < s->conns[i].n; j++)
			free(s->conns[i]
			         .q[(s->conns[i].head + j) % SIM_FRAMES]
			         .buf);
}

/* Node k connects to node j's URL; returns the slot of the connect. */
static int sim_connect(struct sim *s, int k, int j)
{
	struct sim_node *nd = &s->nodes[k];
	if (nd->nconnects == 16)
		return -1;
	tr__hs_acts a = {0};
	uint32_t id;
	if (tr__hs_connect(nd->hs, &a, s->now, s->nodes[j].url, &id) != TR_OK)
		return -1;
	(void)sim_open(s, k, s->nodes[j].url, id);
	int slot = (int)nd->nconnects++;
	nd->conn_id[slot] = id;
	nd->conn_done[slot] = false;
	sim_run(s, k, &a);
	return slot;
}

/* Delivers the next frame of connection ci, or tells its receiver that
 * it closed. Returns false if there was nothing to do. */
static bool sim_deliver(struct sim *s, int ci)
{
	struct sim_conn *c = &s->conns[ci];
	if (!c->used)
		return false;
	tr__hs_acts a = {0};
	if (c->n == 0 || c->dropped || c->to < 0) {
		/* Empty (or refused at the far end): the close is told. */
		if (!(c->closed || c->dropped))
			return false;
		for (uint32_t j = 0; j < c->n; j++)
			free(c->q[(c->head + j) % SIM_FRAMES].buf);
		c->n = 0;
		c->used = false;
		/* A pair whose connection this was is lost, as the node
		 * declares a peer down when its connection closes. */
		for (int i = 0; i < s->n; i++) {
			struct sim_pair *p = &s->nodes[c->from].pairs[i];
			if (p->up && p->out == ci) {
				p->up = false;
				tr__hs_pair_lost(s->nodes[c->from].hs, p->hs);
			}
			if (c->to < 0)
				continue;
			p = &s->nodes[c->to].pairs[i];
			if (p->up && p->pipe == c->pipe) {
				p->up = false;
				tr__hs_pair_lost(s->nodes[c->to].hs, p->hs);
			}
		}
		if (c->to >= 0 && !c->dropped)
			tr__hs_pipe_lost(s->nodes[c->to].hs, &a, c->pipe);
		if (c->to >= 0)
			sim_run(s, c->to, &a);
		if (c->hs != 0) {
			tr__hs_out_lost(s->nodes[c->from].hs, &a, c->hs);
			sim_run(s, c->from, &a);
		}
		return true;
	}
	struct sim_frame f = c->q[c->head];
	c->head = (c->head + 1) % SIM_FRAMES;
	c->n--;
	struct sim_node *to = &s->nodes[c->to];
	bool paired = false;
	for (int i = 0; i < s->n; i++)
		paired |= to->pairs[i].up && to->pairs[i].pipe == c->pipe;
	if (paired)
		to->pair_frames++;
	else
		(void)tr__hs_frame(
		    to->hs, &a, s->now, c->pipe, 0, f.buf, f.len);
	free(f.buf);
	sim_run(s, c->to, &a);
	return true;
}

/* One step: a connection chosen by `pick` among those with something to
 * do. Returns false when nothing is left. */
static bool sim_step(struct sim *s, uint32_t pick)
{
	int live[SIM_CONNS];
	int k = 0;
	for (int i = 0; i < SIM_CONNS; i++) {
		struct sim_conn *c = &s->conns[i];
		if (c->used &&
		    (c->to >= 0 ? c->n != 0 || c->closed || c->dropped
		                : c->closed))
			live[k++] = i;
	}
	if (k == 0)
		return false;
	return sim_deliver(s, live[pick % (uint32_t)k]);
}

static void sim_tick(struct sim *s, int64_t ms)
{
	s->now += ms;
	for (int i = 0; i < s->n; i++) {
		tr__hs_acts a = {0};
		bool more;
		do {
			more = tr__hs_tick(s->nodes[i].hs, &a, s->now);
			sim_run(s, i, &a);
		} while (more);
	}
}

/* Whether nodes a and b hold the same pair: a's out is b's in, and b's
 * out is a's in. */
static bool sim_paired(struct sim *s, int a, int b)
{
	struct sim_pair *pa = &s->nodes[a].pairs[b];
	struct sim_pair *pb = &s->nodes[b].pairs[a];
	if (!pa->up || !pb->up || pa->out < 0 || pb->out < 0)
		return false;
	struct sim_conn *ab = &s->conns[pa->out];
	struct sim_conn *ba = &s->conns[pb->out];
	return ab->used && ba->used && ab->to == b && ba->to == a &&
	       ab->pipe == pb->pipe && ba->pipe == pa->pipe &&
	       pa->inc == s->nodes[b].inc && pb->inc == s->nodes[a].inc;
}

#endif
