/*
 * Pids in payloads (troupe/pid.h): a node's pids to and from the portable
 * encoding of pid_codec.c. The translation is the one the receive path
 * makes for pids in envelopes (tr__pid_in, node_peer.c), with one
 * difference: a payload may carry a pid of any age from anywhere, so a
 * pid that is known to be stale is refused here at once rather than
 * turned into an entry that can never be reached.
 */
#include "node_int.h"
#include "pid_codec.h"

#include <string.h>

int tr_pid_encode(void *buf, size_t cap, size_t *len, tr_node *n, tr_pid pid)
{
	if (n == NULL || buf == NULL || len == NULL || tr_pid_is_none(pid))
		return TR_EINVAL;
	if (pid.node == TR__NODE_STALE)
		return TR_ENOPROC;
	char name[TR_NODE_NAME_MAX + 1];
	struct tr__pidc v = {name, 0, 0, pid.slot, pid.gen};
	if (pid.node == 0) {
		v.name_len = strlen(n->name);
		memcpy(name, n->name, v.name_len);
		v.inc = n->inc;
	} else {
		/* An entry's name and incarnation never change while it is
		 * linked; the section keeps it from being freed while they
		 * are copied. */
		unsigned k = tr__node_ebr_enter(&n->ebr);
		struct tr__peer *p = tr__peer_at(n, pid.node);
		if (p != NULL) {
			v.name_len = strlen(p->name);
			memcpy(name, p->name, v.name_len);
			v.inc = p->inc;
		}
		tr__node_ebr_exit(&n->ebr, k);
		if (p == NULL)
			return TR_ENOPROC;
	}
	return tr__pidc_write(&v, buf, cap, len);
}

/* Node lock held: whether this node has seen an incarnation of `name`
 * later than `inc` (a restart of that node, so `inc` is gone): an entry
 * that connected, whether it is up, waiting or down since. An entry made
 * from a pid in a payload (TR__PS_KNOWN) is hearsay and does not count:
 * any peer may name any node at any incarnation, and taking its word
 * would make every pid of the node that is connected now stale here (a
 * peer could so make this node drop another's global names and pg
 * members). Every change of an entry's state is made with the node lock
 * held, so reading it here needs no peer lock. */
static bool superseded_locked(struct tr_node *n, const char *name, uint64_t inc)
{
	for (struct tr__peer *p = n->peers; p != NULL; p = p->next)
		if (p->inc > inc && p->state != TR__PS_KNOWN &&
		    strcmp(p->name, name) == 0)
			return true;
	return false;
}

int tr_pid_decode(tr_pid *pid, tr_node *n, const void *buf, size_t len)
{
	if (pid != NULL)
		*pid = TR_PID_NONE;
	struct tr__pidc v;
	if (n == NULL || pid == NULL || tr__pidc_parse(&v, buf, len) != TR_OK)
		return TR_EINVAL;
	char name[TR_NODE_NAME_MAX + 1];
	memcpy(name, v.name, v.name_len);
	name[v.name_len] = '\0';
	tr_pid r = {0, v.slot, v.gen};
	if (strcmp(name, n->name) == 0) {
		/* Ours: any other incarnation is an earlier run of this
		 * node (a later one cannot exist while we run). */
		if (v.inc != n->inc || !tr_is_alive(n->rt, r))
			return TR_ENOPROC;
		*pid = r;
		return TR_OK;
	}
	int rc = TR_OK;
	pthread_mutex_lock(&n->lock);
	if (superseded_locked(n, name, v.inc)) {
		rc = TR_ENOPROC;
	} else {
		r.node = tr__peer_known(n, name, v.inc);
		if (r.node == 0)
			rc = TR_ENOMEM;
	}
	pthread_mutex_unlock(&n->lock);
	if (rc == TR_OK)
		*pid = r;
	return rc;
}
