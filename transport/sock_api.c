/*
 * The public socket calls that take a handle (troupe/sock.h): each looks
 * the handle up, checks the caller's right to it, and hands over to
 * sock_conn.c or sock_open.c with the slot locked.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "sock_int.h"

/* The slot of `h` for an actor of its runtime, locked, or NULL with *rc
 * set: TR_ENOENT (no such socket), TR_EINVAL (ctx NULL, another runtime's
 * socket), TR_EPERM (must_own and the caller is not the owner). */
static tr__sock_slot *lookup(tr_ctx *ctx, tr_sock h, bool must_own, int *rc)
{
	if (ctx == NULL) {
		*rc = TR_EINVAL;
		return NULL;
	}
	tr__sock_slot *s = tr__sk_lock(h);
	if (s == NULL) {
		*rc = TR_ENOENT;
		return NULL;
	}
	if (s->rt != tr_runtime_of(ctx)) {
		pthread_mutex_unlock(&s->mtx);
		*rc = TR_ENOENT; /* not a socket of this runtime */
		return NULL;
	}
	if (must_own && !tr_pid_eq(s->owner, tr_self(ctx))) {
		pthread_mutex_unlock(&s->mtx);
		*rc = TR_EPERM;
		return NULL;
	}
	*rc = TR_OK;
	return s;
}

tr_sock tr_sock_of(const tr_msg *m)
{
	if (m == NULL || m->size < sizeof(tr_sock))
		return TR_SOCK_NONE;
	switch (m->type) {
	case TR_MSG_SOCK_ACCEPTED:
		if (m->size < sizeof(tr_sock_accepted))
			return TR_SOCK_NONE;
		return ((const tr_sock_accepted *)m->data)->sock;
	case TR_MSG_SOCK_CONNECTED:
	case TR_MSG_SOCK_DATA:
	case TR_MSG_SOCK_CLOSED:
	case TR_MSG_SOCK_DRAINED: {
		tr_sock s;
		memcpy(&s, m->data, sizeof(s));
		return s;
	}
	default:
		return TR_SOCK_NONE;
	}
}

int tr_sock_recv(tr_ctx *ctx, tr_sock h, int mode, size_t n)
{
	int rc;
	tr__sock_slot *s = lookup(ctx, h, true, &rc);
	if (s == NULL)
		return rc;
	if (s->kind != TR__SK_CONN) {
		pthread_mutex_unlock(&s->mtx);
		return TR_EINVAL;
	}
	return tr__sk_conn_recv(s, mode, n);
}

int tr_sock_send(tr_ctx *ctx, tr_sock h, const void *data, size_t len)
{
	if (data == NULL && len > 0)
		return TR_EINVAL;
	int rc;
	tr__sock_slot *s = lookup(ctx, h, false, &rc);
	if (s == NULL)
		return rc;
	if (s->kind != TR__SK_CONN) {
		pthread_mutex_unlock(&s->mtx);
		return TR_EINVAL;
	}
	return tr__sk_conn_send(s, data, len);
}

int64_t tr_sock_queued(tr_ctx *ctx, tr_sock h)
{
	int rc;
	tr__sock_slot *s = lookup(ctx, h, false, &rc);
	if (s == NULL)
		return rc;
	int64_t q = s->kind == TR__SK_CONN
	                ? (int64_t)((s->wa_len - s->woff) + s->wb_len)
	                : TR_EINVAL;
	pthread_mutex_unlock(&s->mtx);
	return q;
}

int tr_sock_give(tr_ctx *ctx, tr_sock h, tr_pid to)
{
	if (ctx == NULL || to.node != 0 || tr_pid_is_none(to))
		return TR_EINVAL;
	int rc;
	tr__sock_slot *s = lookup(ctx, h, true, &rc);
	if (s == NULL)
		return rc;
	if (s->state != TR__SK_OPEN && s->state != TR__SK_CONNECTING &&
	    s->state != TR__SK_FAILED) {
		pthread_mutex_unlock(&s->mtx);
		return TR_ENOENT;
	}
	if (!tr_is_alive(s->rt, to)) {
		pthread_mutex_unlock(&s->mtx);
		return TR_ENOPROC;
	}
	if (!tr_pid_eq(to, s->owner)) {
		s->owner = to;
		tr__sk_mgr_rewatch(s);
	}
	pthread_mutex_unlock(&s->mtx);
	return TR_OK;
}

tr_pid tr_sock_owner(tr_ctx *ctx, tr_sock h)
{
	int rc;
	tr__sock_slot *s = lookup(ctx, h, false, &rc);
	if (s == NULL)
		return TR_PID_NONE;
	tr_pid o = s->owner;
	pthread_mutex_unlock(&s->mtx);
	return o;
}

int tr_sock_close(tr_ctx *ctx, tr_sock h)
{
	int rc;
	tr__sock_slot *s = lookup(ctx, h, true, &rc);
	if (s == NULL)
		return rc;
	if (s->state == TR__SK_CLOSING || s->state == TR__SK_DEAD) {
		pthread_mutex_unlock(&s->mtx);
		return TR_ENOENT;
	}
	if (s->kind == TR__SK_LISTENER)
		tr__sk_listener_close(s, false);
	else
		tr__sk_conn_close(s, false);
	return TR_OK;
}

/* Copies `text` into buf: its length, or TR_EMSGSIZE when cut. */
static int put_text(char *buf, size_t cap, const char *text)
{
	size_t n = strlen(text);
	if (cap == 0)
		return TR_EMSGSIZE;
	size_t k = n < cap - 1 ? n : cap - 1;
	memcpy(buf, text, k);
	buf[k] = '\0';
	return k == n ? (int)n : TR_EMSGSIZE;
}

static void addr_text(const nng_sockaddr *sa, char *out, size_t cap)
{
	char a[INET6_ADDRSTRLEN];
	switch (sa->s_family) {
	case NNG_AF_INET:
		if (inet_ntop(AF_INET, &sa->s_in.sa_addr, a, sizeof(a)) == NULL)
			a[0] = '\0';
		snprintf(
		    out, cap, "%s:%u", a, (unsigned)ntohs(sa->s_in.sa_port));
		break;
	case NNG_AF_INET6:
		if (inet_ntop(AF_INET6, sa->s_in6.sa_addr, a, sizeof(a)) ==
		    NULL)
			a[0] = '\0';
		snprintf(
		    out, cap, "[%s]:%u", a, (unsigned)ntohs(sa->s_in6.sa_port));
		break;
	case NNG_AF_IPC:
		snprintf(out, cap, "%s", sa->s_ipc.sa_path);
		break;
	default:
		snprintf(out, cap, "unknown");
		break;
	}
}

int tr_sock_peer(tr_ctx *ctx, tr_sock h, char *buf, size_t cap)
{
	if (buf == NULL)
		return TR_EINVAL;
	int rc;
	tr__sock_slot *s = lookup(ctx, h, false, &rc);
	if (s == NULL)
		return rc;
	nng_sockaddr sa;
	int rv =
	    s->kind == TR__SK_CONN && s->st != NULL && s->state == TR__SK_OPEN
	        ? nng_stream_get_addr(s->st, NNG_OPT_REMADDR, &sa)
	        : NNG_EINVAL;
	bool conn = s->kind == TR__SK_CONN;
	pthread_mutex_unlock(&s->mtx);
	if (rv != 0)
		return conn ? TR_ENOENT : TR_EINVAL;
	char text[sizeof(sa.s_ipc.sa_path) + 16];
	addr_text(&sa, text, sizeof(text));
	return put_text(buf, cap, text);
}

int tr_sock_url(tr_ctx *ctx, tr_sock h, char *buf, size_t cap)
{
	if (buf == NULL)
		return TR_EINVAL;
	int rc;
	tr__sock_slot *s = lookup(ctx, h, false, &rc);
	if (s == NULL)
		return rc;
	if (s->kind != TR__SK_LISTENER || s->url == NULL) {
		pthread_mutex_unlock(&s->mtx);
		return TR_EINVAL;
	}
	rc = put_text(buf, cap, s->url);
	pthread_mutex_unlock(&s->mtx);
	return rc;
}
