/*
 * Supervisors (include/troupe/sup.h): OTP's supervisor as an ordinary actor.
 *
 * The supervisor traps exits and starts each child with tr_spawn_link and
 * TR_SPAWN_SYNC_INIT, so a child's init has run (or failed) by the time the
 * spawn returns. A child's exit arrives as a TR_MSG_EXIT message. Everything
 * that must wait for a child to die (a group restart, terminate_child, the
 * supervisor's own shutdown) is a small state machine driven by those
 * messages, because an actor cannot block; OTP's supervisor blocks in a
 * selective receive instead. While such an operation is under way, exits of
 * other children and admin requests that change the tree are put aside and
 * handled, in arrival order, once it is done: the same order OTP's blocked
 * supervisor would see them in.
 *
 * The public API is all the supervisor uses of the core, but for the
 * registry of behaviours by name and its blobs (rt.h): a child started by
 * name, from this process or from another node, runs a behaviour looked up
 * there.
 *
 * A child started by name owns a fresh copy of its argument blob at every
 * start; the supervisor keeps its own copy with the spec. Requests that
 * arrive in the portable layout (TR_SUP_REQ_START_NAMED) come from parties
 * the supervisor cannot trust, so their payload is decoded field by field,
 * every length checked against the payload's size, before anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"
#include "troupe/sup.h"

/* Messages the supervisor sends itself (always checked to come from self).
 * Their payload is one 64-bit token naming what they are about. */
#define MSG_RETRY (TR_SUP_MSG_BASE + 0x20) /* try a failed restart again */
#define MSG_KILL (TR_SUP_MSG_BASE + 0x21)  /* a shutdown timeout expired */
#define MSG_REAP (TR_SUP_MSG_BASE + 0x22)  /* reaper: begin stopping */

enum child_state {
	C_STOPPED = 0, /* not running; the spec is kept */
	C_RUNNING,     /* pid valid, in the pid map */
	C_STOPPING,    /* pid valid, in the map; asked to exit, not yet gone */
	C_PENDING,     /* exited while an operation was under way; its exit
	                * is handled when the operation is done */
	C_RESTARTING,  /* a restart failed; a MSG_RETRY is on its way */
};

typedef struct child child;
struct child {
	child *prev, *next; /* start order */
	tr_pid pid;
	const tr_behaviour *start;
	void *arg;          /* started by address: the borrowed argument */
	tr_blob *blob;      /* started by name: the spec's copy of the
	                     * argument, or NULL for an empty one */
	uint64_t kill_tok;  /* token of the armed shutdown timer's MSG_KILL */
	uint64_t retry_tok; /* token of the MSG_RETRY on its way */
	tr_timer timer;     /* the shutdown timer, or 0 */
	int32_t shutdown_ms;
	int32_t pending_reason;
	uint8_t restart;
	uint8_t type;
	uint8_t state;
	bool significant;
	bool named;         /* started by name: init gets a blob it owns */
	bool pending_retry; /* C_PENDING for a MSG_RETRY, not an exit */
	char id[];
};

/* The operation that is waiting for children to exit, if any. */
enum op {
	OP_NONE = 0,
	OP_GROUP,     /* one_for_all / rest_for_one: stopping the group */
	OP_TERMINATE, /* terminate_child: stopping one child */
	OP_SHUTDOWN,  /* the supervisor stops all children, then exits */
};

/* A START_NAMED request once decoded and checked: what a child spec by
 * name needs, with its own copy of the argument. */
typedef struct named_req {
	char id[TR_NAME_MAX + 1];
	const tr_behaviour *b; /* found in the registry */
	tr_child_spec spec;    /* restart, shutdown_ms, type, significant */
	tr_blob *blob;         /* owned */
} named_req;

/* An admin request put aside while an operation was under way. */
typedef struct deferred deferred;
struct deferred {
	deferred *next;
	tr_pid sender;
	uint64_t ref;
	uint32_t type;
	tr_sup_request req; /* the local requests */
	named_req *nq;      /* TR_SUP_REQ_START_NAMED, owned */
};

/* Open-addressing map from a running child's pid to its child, so that an
 * exit among many simple_one_for_one children is found in O(1). Linear
 * probing with backward-shift deletion: no tombstones, and a restart (one
 * removal, one insertion) never allocates. */
typedef struct pidmap {
	struct pm_slot {
		tr_pid pid; /* gen 0: empty */
		child *c;
	} * slots;
	uint32_t cap; /* a power of two, or 0 */
	uint32_t n;
} pidmap;

typedef struct sup {
	tr_runtime *rt;
	tr_pid self;
	tr_pid parent; /* the actor that started it linked, or none */
	tr_sup_flags flags;

	child *head, *tail;
	uint32_t nchildren;
	pidmap map;

	/* simple_one_for_one: the template every dynamic child is made of. */
	child *tmpl;

	/* Restart times within the period, oldest first: a ring that grows
	 * up to intensity + 1 entries (never beyond what the restarts of one
	 * period need, so a large intensity costs nothing until used). */
	uint64_t *ring;
	uint32_t ring_cap, ring_head, ring_n;

	enum op op;
	child *cursor;     /* OP_GROUP / OP_SHUTDOWN: next child to stop,
	                    * walking towards the head */
	child *group_at;   /* OP_GROUP: the first child of the group, or NULL
	                    * for all (one_for_all) */
	child *term_child; /* the child a terminate request waits for */
	tr_pid term_sender;
	uint64_t term_ref;
	uint32_t nstopping; /* children in C_STOPPING */
	uint32_t npending;  /* children in C_PENDING */
	uint64_t par_tok;   /* OP_SHUTDOWN of simple_one_for_one: the token
	                     * of the one shared shutdown timer */
	tr_timer par_timer;
	bool shutting_down;
	bool exited; /* tr_exit was called */
	bool reaper; /* stopping the children of a supervisor whose init
	              * failed (see init_unwind) */
	int exit_reason;

	deferred *dq_head, *dq_tail;
	uint64_t next_tok;
} sup;

/* How a supervisor's init learns who started it (its parent, whose exit it
 * must follow) and how it hands a spawn error back to tr_sup_start: the
 * starter sets this before a synchronous spawn, which runs init on this very
 * thread, and init takes it if the argument matches. */
typedef struct start_hint {
	const void *arg;
	tr_pid parent;
	int err;
} start_hint;

static _Thread_local start_hint *cur_hint;

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool normal_exit(int reason)
{
	return reason == TR_REASON_NORMAL || reason == TR_REASON_SHUTDOWN;
}

static bool is_simple(const sup *s)
{
	return s->flags.strategy == TR_SUP_SIMPLE_ONE_FOR_ONE;
}

static void report(
    sup *s, const child *c, tr_pid pid, const char *event, int reason)
{
	char line[256];
	const char *id = c != NULL && c->id[0] != '\0' ? c->id : "-";
	snprintf(line, sizeof(line),
	    "SUPERVISOR REPORT sup=<%u.%u.%u> child=%s pid=<%u.%u.%u> "
	    "event=%s reason=%d (%s)",
	    s->self.node, s->self.slot, s->self.gen, id, pid.node, pid.slot,
	    pid.gen, event, reason, tr_reason_name(reason));
	tr_log(s->rt, line);
}

/* ---- the pid map -------------------------------------------------------- */

static uint32_t pid_hash(tr_pid p)
{
	uint64_t h = (uint64_t)p.slot << 32 | p.gen;
	h ^= (uint64_t)p.node << 17;
	h *= 0x9e3779b97f4a7c15u;
	return (uint32_t)(h >> 32);
}

static child *pm_get(const pidmap *m, tr_pid p)
{
	if (m->cap == 0 || tr_pid_is_none(p))
		return NULL;
	uint32_t mask = m->cap - 1;
	for (uint32_t i = pid_hash(p) & mask;; i = (i + 1) & mask) {
		if (tr_pid_is_none(m->slots[i].pid))
			return NULL;
		if (tr_pid_eq(m->slots[i].pid, p))
			return m->slots[i].c;
	}
}

static void pm_put_nogrow(pidmap *m, tr_pid p, child *c)
{
	uint32_t mask = m->cap - 1;
	uint32_t i = pid_hash(p) & mask;
	while (!tr_pid_is_none(m->slots[i].pid))
		i = (i + 1) & mask;
	m->slots[i].pid = p;
	m->slots[i].c = c;
	m->n++;
}

/* Makes room for one more entry, so that the insertion after a successful
 * spawn cannot fail. The load factor stays at or below one half. */
static int pm_reserve(pidmap *m)
{
	if ((m->n + 1) * 2 <= m->cap)
		return TR_OK;
	uint32_t ncap = m->cap != 0 ? m->cap * 2 : 8;
	if (ncap < m->cap)
		return TR_ENOMEM;
	struct pm_slot *ns = calloc(ncap, sizeof(*ns));
	if (ns == NULL)
		return TR_ENOMEM;
	pidmap old = *m;
	m->slots = ns;
	m->cap = ncap;
	m->n = 0;
	for (uint32_t i = 0; i < old.cap; i++)
		if (!tr_pid_is_none(old.slots[i].pid))
			pm_put_nogrow(m, old.slots[i].pid, old.slots[i].c);
	free(old.slots);
	return TR_OK;
}

static void pm_del(pidmap *m, tr_pid p)
{
	if (m->cap == 0 || tr_pid_is_none(p))
		return;
	uint32_t mask = m->cap - 1;
	uint32_t i = pid_hash(p) & mask;
	for (;; i = (i + 1) & mask) {
		if (tr_pid_is_none(m->slots[i].pid))
			return;
		if (tr_pid_eq(m->slots[i].pid, p))
			break;
	}
	/* Backward shift: pull later entries of the probe run into the hole
	 * unless their home position lies cyclically after the hole. */
	uint32_t j = i;
	for (;;) {
		m->slots[i].pid = TR_PID_NONE;
		m->slots[i].c = NULL;
		for (;;) {
			j = (j + 1) & mask;
			if (tr_pid_is_none(m->slots[j].pid)) {
				m->n--;
				return;
			}
			uint32_t home = pid_hash(m->slots[j].pid) & mask;
			if (i <= j ? (i < home && home <= j)
			           : (i < home || home <= j))
				continue;
			break;
		}
		m->slots[i] = m->slots[j];
		i = j;
	}
}

/* ---- the intensity window ----------------------------------------------- */

/* Records a restart now and tells whether it is still within the intensity:
 * OTP's add_restart. Restarts older than the period leave the window; more
 * than `intensity` left in it means the supervisor must give up. */
static bool add_restart(sup *s)
{
	uint64_t now = now_ns();
	uint64_t period = (uint64_t)s->flags.period_ms * 1000000u;
	while (s->ring_n > 0 && now - s->ring[s->ring_head] >= period) {
		s->ring_head = (s->ring_head + 1) % s->ring_cap;
		s->ring_n--;
	}
	if (s->ring_n == s->ring_cap) {
		uint64_t want = (uint64_t)s->flags.intensity + 1;
		uint64_t ncap = (uint64_t)s->ring_cap * 2;
		if (ncap > want)
			ncap = want;
		uint64_t *nr = ncap > s->ring_cap && ncap <= UINT32_MAX
		                   ? malloc(ncap * sizeof(*nr))
		                   : NULL;
		if (nr != NULL) {
			for (uint32_t k = 0; k < s->ring_n; k++) {
				uint32_t at = (s->ring_head + k) % s->ring_cap;
				nr[k] = s->ring[at];
			}
			free(s->ring);
			s->ring = nr;
			s->ring_cap = (uint32_t)ncap;
			s->ring_head = 0;
		} else {
			/* Full at intensity + 1 (the limit is passed anyway),
			 * or out of memory: forget the oldest restart, which
			 * can only undercount. */
			s->ring_head = (s->ring_head + 1) % s->ring_cap;
			s->ring_n--;
		}
	}
	s->ring[(s->ring_head + s->ring_n) % s->ring_cap] = now;
	s->ring_n++;
	return s->ring_n <= s->flags.intensity;
}

/* ---- validation --------------------------------------------------------- */

static bool valid_flags(const tr_sup_flags *f)
{
	return f != NULL &&
	       (unsigned)f->strategy <= TR_SUP_SIMPLE_ONE_FOR_ONE &&
	       f->period_ms > 0 &&
	       (unsigned)f->auto_shutdown <= TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT;
}

/* An id or a behaviour's name: 1..TR_NAME_MAX bytes. */
static bool valid_id(const char *id)
{
	if (id == NULL)
		return false;
	size_t n = strnlen(id, TR_NAME_MAX + 1);
	return n >= 1 && n <= TR_NAME_MAX;
}

/* The restart type, shutdown, child type and significance: the part of a
 * spec that a named request carries too. */
static bool valid_policy(const tr_child_spec *c)
{
	return (unsigned)c->restart <= TR_RESTART_TEMPORARY &&
	       c->shutdown_ms >= TR_SHUTDOWN_INFINITY &&
	       (unsigned)c->type <= TR_CHILD_SUPERVISOR &&
	       !(c->significant && c->restart == TR_RESTART_PERMANENT);
}

/* Checks everything but the id's presence (a simple_one_for_one request has
 * none) and uniqueness, and whether a start_name is registered (that needs
 * the runtime, see child_from_spec). Exactly one of start and start_name. */
static bool valid_spec_body(const tr_child_spec *c)
{
	bool start_ok = c->start != NULL
	                    ? c->start_name == NULL && c->start->handle != NULL
	                    : valid_id(c->start_name);
	return start_ok && valid_policy(c);
}

static bool valid_args(const tr_sup_args *a)
{
	if (a == NULL || !valid_flags(&a->flags) ||
	    (a->specs == NULL && a->nspecs != 0))
		return false;
	if (a->flags.strategy == TR_SUP_SIMPLE_ONE_FOR_ONE && a->nspecs != 1)
		return false;
	for (size_t i = 0; i < a->nspecs; i++) {
		const tr_child_spec *c = &a->specs[i];
		if (!valid_id(c->id) || !valid_spec_body(c))
			return false;
		/* Quadratic, but static child lists are short and this runs
		 * once per supervisor start. */
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->specs[j].id, c->id) == 0)
				return false;
	}
	return true;
}

/* ---- children ----------------------------------------------------------- */

/* A child with the policy of `spec` that runs `b` with the borrowed `arg`;
 * child_set_blob makes it one started by name. */
static child *child_new(
    const tr_child_spec *spec, const tr_behaviour *b, const char *id, void *arg)
{
	size_t len = strlen(id);
	child *c = calloc(1, sizeof(*c) + len + 1);
	if (c == NULL)
		return NULL;
	memcpy(c->id, id, len + 1);
	c->start = b;
	c->arg = arg;
	c->restart = (uint8_t)spec->restart;
	c->shutdown_ms = spec->shutdown_ms;
	c->type = (uint8_t)spec->type;
	c->significant = spec->significant;
	c->state = C_STOPPED;
	return c;
}

static void child_free(child *c)
{
	if (c == NULL)
		return;
	free(c->blob);
	free(c);
}

/* Makes `c` a child started by name, which keeps its own copy of the
 * argument `src` (NULL: an empty one). Errors: TR_ENOMEM. */
static int child_set_blob(child *c, const tr_blob *src)
{
	c->named = true;
	c->arg = NULL;
	c->blob = NULL;
	if (src == NULL)
		return TR_OK;
	c->blob = tr__blob_new(src->data, src->size);
	return c->blob != NULL ? TR_OK : TR_ENOMEM;
}

/* The child of a checked spec, by address or by name. Errors: TR_ENOENT
 * (start_name is not registered), TR_ENOMEM. */
static int child_from_spec(
    tr_runtime *rt, const tr_child_spec *sp, const char *id, child **out)
{
	*out = NULL;
	const tr_behaviour *b = sp->start;
	if (b == NULL && (b = tr__behaviour_find(rt, sp->start_name)) == NULL)
		return TR_ENOENT;
	child *c = child_new(sp, b, id, sp->arg);
	if (c == NULL)
		return TR_ENOMEM;
	if (sp->start == NULL && child_set_blob(c, sp->arg) != TR_OK) {
		child_free(c);
		return TR_ENOMEM;
	}
	*out = c;
	return TR_OK;
}

/* The policy of the simple_one_for_one template, for its dynamic
 * children. */
static tr_child_spec tmpl_spec(const sup *s)
{
	return (tr_child_spec){
	    .restart = (tr_restart)s->tmpl->restart,
	    .shutdown_ms = s->tmpl->shutdown_ms,
	    .type = (tr_child_type)s->tmpl->type,
	    .significant = s->tmpl->significant,
	};
}

static void list_append(sup *s, child *c)
{
	c->next = NULL;
	c->prev = s->tail;
	if (s->tail != NULL)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	s->nchildren++;
}

/* Unlinks a child that is not running and frees it. */
static void child_remove(sup *s, child *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	s->nchildren--;
	if (s->cursor == c)
		s->cursor = c->prev;
	if (s->term_child == c)
		s->term_child = NULL;
	child_free(c);
}

static child *find_id(sup *s, const char *id)
{
	for (child *c = s->head; c != NULL; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

static bool running(const child *c)
{
	return c->state == C_RUNNING || c->state == C_STOPPING;
}

/* Spawns a child, linked, with its init run before this returns. A child
 * of type supervisor learns from the start hint that this supervisor is its
 * parent. On failure the child stays as it was and TR_EINIT comes with the
 * init reason in *reason; other errors are the spawn's own. */
static int child_start(tr_ctx *ctx, sup *s, child *c, int *reason)
{
	*reason = 0;
	int rc = pm_reserve(&s->map);
	if (rc != TR_OK)
		return rc;
	void *arg = c->arg;
	tr_blob *fresh = NULL;
	if (c->named) {
		/* Each start owns its copy: the previous run may have
		 * changed or freed its own. */
		fresh = c->blob != NULL
		            ? tr__blob_new(c->blob->data, c->blob->size)
		            : tr__blob_new(NULL, 0);
		if (fresh == NULL)
			return TR_ENOMEM;
		arg = fresh;
	}
	start_hint h = {.arg = arg, .parent = s->self, .err = TR_OK};
	start_hint *prev = cur_hint;
	cur_hint = &h;
	tr_pid pid;
	int r = 0;
	rc = tr_spawn_link(ctx, &pid, c->start, arg,
	    &(tr_spawn_opts){.flags = TR_SPAWN_SYNC_INIT, .init_reason = &r});
	cur_hint = prev;
	if (rc != TR_OK) {
		/* A failed init owned the blob; any other failure never
		 * handed it over. */
		if (rc != TR_EINIT)
			free(fresh);
		*reason = r;
		return rc;
	}
	c->pid = pid;
	c->state = C_RUNNING;
	pm_put_nogrow(&s->map, pid, c);
	return TR_OK;
}

/* Takes a child's pid out of service once it is known to be gone. */
static void child_gone(sup *s, child *c)
{
	pm_del(&s->map, c->pid);
	c->pid = TR_PID_NONE;
}

static uint64_t new_tok(sup *s)
{
	return ++s->next_tok;
}

/* Asks a running child to exit by its shutdown spec; its EXIT message says
 * when it is gone. With own_timer false the caller arms one timer for many
 * children (simple_one_for_one stops its children in parallel). */
static void child_stop(tr_ctx *ctx, sup *s, child *c, bool own_timer)
{
	c->state = C_STOPPING;
	s->nstopping++;
	if (c->shutdown_ms == TR_SHUTDOWN_BRUTAL_KILL) {
		(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		return;
	}
	/* TR_ENOPROC means the child is already dead and its EXIT is on its
	 * way: waiting for it is all there is to do. */
	(void)tr_kill(s->rt, c->pid, TR_REASON_SHUTDOWN);
	if (c->shutdown_ms > 0 && own_timer) {
		c->kill_tok = new_tok(s);
		if (tr_send_after(ctx, &c->timer, s->self, c->shutdown_ms, 0,
		        MSG_KILL, &c->kill_tok, sizeof(c->kill_tok)) != TR_OK) {
			/* Without a timer the child could outlive its
			 * deadline for ever; brutal kill is the safe side. */
			c->timer = 0;
			(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		}
	}
}

/* Leaves a child whose restart failed to be tried again through a message
 * to self, so that the supervisor stays responsive between attempts (OTP's
 * try_again_restart). Returns false if not even that message could be sent
 * (no memory); the caller then gives up as for the intensity. */
static bool schedule_retry(tr_ctx *ctx, sup *s, child *c)
{
	c->state = C_RESTARTING;
	c->retry_tok = new_tok(s);
	if (tr_send(ctx, s->self, MSG_RETRY, &c->retry_tok,
	        sizeof(c->retry_tok)) == TR_OK)
		return true;
	report(s, c, TR_PID_NONE, "reached_max_restart_intensity",
	    TR_REASON_SHUTDOWN);
	return false;
}

/* ---- replies ------------------------------------------------------------ */

static void reply_to(
    tr_ctx *ctx, tr_pid to, uint64_t ref, const tr_sup_reply *r, size_t size)
{
	/* tr_reply needs only the request's sender and ref, so a request
	 * answered later is replied to through a header that carries them. */
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = to;
	hdr.ref = ref;
	(void)tr_reply(ctx, &hdr, TR_SUP_REPLY, r, size);
}

static void reply_err(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid)
{
	tr_sup_reply r;
	memset(&r, 0, sizeof(r));
	r.err = err;
	r.init_reason = reason;
	r.pid = pid;
	reply_to(ctx, to, ref, &r, sizeof(r));
}

/* ---- the portable layout ------------------------------------------------ */

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int32_t get_i32(const unsigned char *p)
{
	uint32_t u = get_u32(p);
	int32_t v;
	memcpy(&v, &u, sizeof(v));
	return v;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static void put_i32(unsigned char *p, int32_t v)
{
	uint32_t u;
	memcpy(&u, &v, sizeof(u));
	put_u32(p, u);
}

/* Offsets of the START_NAMED payload (sup.h). */
enum {
	NQ_VERSION = 0,
	NQ_RESTART = 4,
	NQ_SHUTDOWN = 8,
	NQ_TYPE = 12,
	NQ_FLAGS = 16,
	NQ_ARGSIZE = 20,
	NQ_ID = 24,
	NQ_BEHAVIOUR = NQ_ID + TR_SUP_NAMED_STR_SIZE,
	NQ_ARG = NQ_BEHAVIOUR + TR_SUP_NAMED_STR_SIZE,
};

#define NQ_SIGNIFICANT 1u

_Static_assert(NQ_ARG == TR_SUP_NAMED_HDR_SIZE, "START_NAMED layout");
_Static_assert(TR_SUP_NAMED_HDR_SIZE == 154, "the layout sup.h documents");

/* A fixed-size string field: its length before the first NUL, or -1 if it
 * has no NUL or anything but NULs after it. */
static int field_str(const unsigned char *f, char *out)
{
	const unsigned char *nul = memchr(f, '\0', TR_SUP_NAMED_STR_SIZE);
	if (nul == NULL)
		return -1;
	size_t len = (size_t)(nul - f);
	for (size_t i = len; i < TR_SUP_NAMED_STR_SIZE; i++)
		if (f[i] != 0)
			return -1;
	memcpy(out, f, len + 1);
	return (int)len;
}

static void named_free(named_req *nq)
{
	if (nq == NULL)
		return;
	free(nq->blob);
	free(nq);
}

/* Decodes and checks a START_NAMED payload of `n` bytes. Only bytes below
 * `n` are read, and the argument's length is trusted only once it matches
 * the payload's size. Errors: TR_EINVAL (malformed), TR_ENOENT (the
 * behaviour is not registered), TR_ENOMEM. */
static int named_decode(
    tr_runtime *rt, const unsigned char *p, size_t n, named_req **out)
{
	*out = NULL;
	if (n < TR_SUP_NAMED_HDR_SIZE ||
	    get_u32(p + NQ_VERSION) != TR_SUP_NAMED_VERSION)
		return TR_EINVAL;
	uint32_t restart = get_u32(p + NQ_RESTART);
	int32_t shutdown = get_i32(p + NQ_SHUTDOWN);
	uint32_t type = get_u32(p + NQ_TYPE);
	uint32_t flags = get_u32(p + NQ_FLAGS);
	uint32_t asz = get_u32(p + NQ_ARGSIZE);
	if (restart > TR_RESTART_TEMPORARY || type > TR_CHILD_SUPERVISOR ||
	    (flags & ~NQ_SIGNIFICANT) != 0 || asz != n - TR_SUP_NAMED_HDR_SIZE)
		return TR_EINVAL;
	tr_child_spec spec = {
	    .restart = (tr_restart)restart,
	    .shutdown_ms = shutdown,
	    .type = (tr_child_type)type,
	    .significant = (flags & NQ_SIGNIFICANT) != 0,
	};
	if (!valid_policy(&spec))
		return TR_EINVAL;
	char id[TR_SUP_NAMED_STR_SIZE], name[TR_SUP_NAMED_STR_SIZE];
	if (field_str(p + NQ_ID, id) < 0 ||
	    field_str(p + NQ_BEHAVIOUR, name) < 1)
		return TR_EINVAL;
	/* A field of TR_SUP_NAMED_STR_SIZE bytes holds at most TR_NAME_MAX
	 * before its NUL, so both lengths are in range. */
	const tr_behaviour *b = tr__behaviour_find(rt, name);
	if (b == NULL)
		return TR_ENOENT;
	named_req *nq = calloc(1, sizeof(*nq));
	if (nq == NULL)
		return TR_ENOMEM;
	nq->blob = tr__blob_new(p + NQ_ARG, asz);
	if (nq->blob == NULL) {
		free(nq);
		return TR_ENOMEM;
	}
	memcpy(nq->id, id, sizeof(id));
	nq->b = b;
	nq->spec = spec;
	*out = nq;
	return TR_OK;
}

/* The portable reply; the child's pid travels as slot and gen, since its
 * node index means something only here. */
static void named_reply(
    tr_ctx *ctx, tr_pid to, uint64_t ref, int err, int reason, tr_pid pid)
{
	unsigned char r[TR_SUP_NAMED_REPLY_SIZE];
	put_u32(r + 0, TR_SUP_NAMED_VERSION);
	put_i32(r + 4, err);
	put_i32(r + 8, reason);
	put_u32(r + 12, pid.slot);
	put_u32(r + 16, pid.gen);
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = to;
	hdr.ref = ref;
	(void)tr_reply(ctx, &hdr, TR_SUP_NAMED_REPLY, r, sizeof(r));
}

/* The reply to a request of `type`, in the layout that request speaks. */
static void answer(tr_ctx *ctx, tr_pid to, uint64_t ref, uint32_t type, int err,
    int reason, tr_pid pid)
{
	if (type == TR_SUP_REQ_START_NAMED)
		named_reply(ctx, to, ref, err, reason, pid);
	else
		reply_err(ctx, to, ref, err, reason, pid);
}

static void flush_deferred(tr_ctx *ctx, sup *s, int err)
{
	while (s->dq_head != NULL) {
		deferred *d = s->dq_head;
		s->dq_head = d->next;
		answer(ctx, d->sender, d->ref, d->type, err, 0, TR_PID_NONE);
		named_free(d->nq);
		free(d);
	}
	s->dq_tail = NULL;
}

/* ---- shutdown of the supervisor ----------------------------------------- */

static void finish_shutdown(tr_ctx *ctx, sup *s)
{
	if (!s->exited) {
		s->exited = true;
		tr_exit(ctx, s->exit_reason);
	}
}

/* Walks from the cursor towards `stop_at` (NULL: the head), stopping each
 * running child and waiting for it before the next: OTP stops children one
 * at a time in reverse start order. Returns true when the walk is over. */
static bool walk_stop(tr_ctx *ctx, sup *s, child *stop_at, bool drop_temp)
{
	while (s->cursor != NULL) {
		child *c = s->cursor;
		switch (c->state) {
		case C_RUNNING:
			child_stop(ctx, s, c, true);
			return false;
		case C_STOPPING:
			return false;
		case C_PENDING:
			/* It died on its own meanwhile: it is stopped, as
			 * OTP's shutdown finds when the EXIT is already
			 * there. Its exit is not acted upon. */
			s->npending--;
			c->state = C_STOPPED;
			break;
		case C_RESTARTING:
			c->state = C_STOPPED;
			break;
		default:
			break;
		}
		s->cursor = c == stop_at ? NULL : c->prev;
		if (drop_temp && c->restart == TR_RESTART_TEMPORARY)
			child_remove(s, c);
	}
	return true;
}

static void shutdown_step(tr_ctx *ctx, sup *s)
{
	if (is_simple(s)) {
		if (s->nstopping == 0)
			finish_shutdown(ctx, s);
		return;
	}
	if (walk_stop(ctx, s, NULL, false) && s->nstopping == 0)
		finish_shutdown(ctx, s);
}

/* Stops all children (in reverse start order; simple_one_for_one children
 * in parallel) and then exits with `reason`: what OTP's supervisor does in
 * terminate/2. */
static void begin_shutdown(tr_ctx *ctx, sup *s, int reason)
{
	if (s->shutting_down)
		return;
	s->shutting_down = true;
	s->exit_reason = reason;
	if (!s->reaper)
		report(s, NULL, TR_PID_NONE, "shutdown", reason);
	flush_deferred(ctx, s, TR_ECLOSED);
	s->op = OP_SHUTDOWN;
	if (is_simple(s)) {
		int32_t ms = s->tmpl->shutdown_ms;
		for (child *c = s->head; c != NULL; c = c->next) {
			if (c->state == C_RUNNING)
				child_stop(ctx, s, c, false);
			else if (c->state == C_PENDING) {
				s->npending--;
				c->state = C_STOPPED;
			} else if (c->state == C_RESTARTING)
				c->state = C_STOPPED;
		}
		if (ms > 0 && s->nstopping > 0) {
			s->par_tok = new_tok(s);
			if (tr_send_after(ctx, &s->par_timer, s->self, ms, 0,
			        MSG_KILL, &s->par_tok,
			        sizeof(s->par_tok)) != TR_OK) {
				for (child *c = s->head; c != NULL; c = c->next)
					if (c->state == C_STOPPING)
						(void)tr_kill(s->rt, c->pid,
						    TR_REASON_KILL);
			}
		}
	} else {
		s->cursor = s->tail;
	}
	shutdown_step(ctx, s);
}

/* ---- restarts ----------------------------------------------------------- */

static void restart(tr_ctx *ctx, sup *s, child *c);

/* The start half of a group restart: every child of the group in start
 * order, temporary ones having been dropped while stopping. A start that
 * fails leaves the rest stopped and is retried through a message, like
 * OTP's try_again_restart; the retry restarts the group from that child. */
static void group_start(tr_ctx *ctx, sup *s, child *from)
{
	for (child *c = from; c != NULL; c = c->next) {
		if (running(c))
			continue;
		int reason;
		int rc = child_start(ctx, s, c, &reason);
		if (rc == TR_OK) {
			report(s, c, c->pid, "restarted", 0);
			continue;
		}
		report(s, c, TR_PID_NONE, "start_failed",
		    rc == TR_EINIT ? reason : TR_SUP_REASON_NOSTART);
		if (!schedule_retry(ctx, s, c))
			begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
		return;
	}
}

static void group_step(tr_ctx *ctx, sup *s)
{
	if (!walk_stop(ctx, s, s->group_at, true))
		return;
	s->op = OP_NONE;
	group_start(ctx, s, s->group_at != NULL ? s->group_at : s->head);
}

/* Restarts a child that is not running, by the strategy, after counting
 * the restart against the intensity. */
static void restart(tr_ctx *ctx, sup *s, child *c)
{
	if (!add_restart(s)) {
		report(s, c, TR_PID_NONE, "reached_max_restart_intensity",
		    TR_REASON_SHUTDOWN);
		begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
		return;
	}
	switch (s->flags.strategy) {
	case TR_SUP_ONE_FOR_ALL:
	case TR_SUP_REST_FOR_ONE:
		c->state = C_STOPPED;
		s->op = OP_GROUP;
		s->group_at =
		    s->flags.strategy == TR_SUP_REST_FOR_ONE ? c : NULL;
		s->cursor = s->tail;
		group_step(ctx, s);
		return;
	default: {
		int reason;
		int rc = child_start(ctx, s, c, &reason);
		if (rc == TR_OK) {
			report(s, c, c->pid, "restarted", 0);
			return;
		}
		report(s, c, TR_PID_NONE, "start_failed",
		    rc == TR_EINIT ? reason : TR_SUP_REASON_NOSTART);
		if (!schedule_retry(ctx, s, c))
			begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
		return;
	}
	}
}

/* auto_shutdown: a significant child exited on its own and will not be
 * restarted. */
static void auto_shutdown(tr_ctx *ctx, sup *s)
{
	switch (s->flags.auto_shutdown) {
	case TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT:
		break;
	case TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT:
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->significant &&
			    (running(c) || c->state == C_RESTARTING))
				return;
		break;
	default:
		return;
	}
	begin_shutdown(ctx, s, TR_REASON_SHUTDOWN);
}

/* A child exited on its own (its pid is already out of service): OTP's
 * do_restart. */
static void child_exited(tr_ctx *ctx, sup *s, child *c, int reason)
{
	c->state = C_STOPPED;
	bool abnormal = !normal_exit(reason);
	switch (c->restart) {
	case TR_RESTART_PERMANENT:
		report(s, c, TR_PID_NONE, "child_terminated", reason);
		restart(ctx, s, c);
		return;
	case TR_RESTART_TRANSIENT:
		if (abnormal) {
			report(s, c, TR_PID_NONE, "child_terminated", reason);
			restart(ctx, s, c);
			return;
		}
		break;
	default:
		if (abnormal)
			report(s, c, TR_PID_NONE, "child_terminated", reason);
		break;
	}
	/* Not restarted: a temporary child's spec goes, and so does a dynamic
	 * child's; a static transient child keeps its spec. */
	bool significant = c->significant;
	if (c->restart == TR_RESTART_TEMPORARY || is_simple(s))
		child_remove(s, c);
	if (significant)
		auto_shutdown(ctx, s);
}

/* ---- messages ----------------------------------------------------------- */

/* A child asked to exit is gone: finish whatever was waiting for it. */
static void child_stopped(tr_ctx *ctx, sup *s, child *c, int reason)
{
	if (c->timer != 0) {
		(void)tr_timer_cancel(s->rt, c->timer);
		c->timer = 0;
	}
	s->nstopping--;
	tr_pid pid = c->pid;
	child_gone(s, c);
	c->state = C_STOPPED;
	if (reason != TR_REASON_SHUTDOWN && reason != TR_REASON_KILLED)
		report(s, c, pid, "shutdown_error", reason);

	if (c == s->term_child) {
		s->term_child = NULL;
		reply_err(
		    ctx, s->term_sender, s->term_ref, TR_OK, 0, TR_PID_NONE);
		if (s->op == OP_TERMINATE) {
			s->op = OP_NONE;
			if (c->restart == TR_RESTART_TEMPORARY || is_simple(s))
				child_remove(s, c);
		}
	}
	if (s->op == OP_GROUP)
		group_step(ctx, s);
	else if (s->op == OP_SHUTDOWN)
		shutdown_step(ctx, s);
}

static void on_exit_msg(tr_ctx *ctx, sup *s, const tr_exit_info *x)
{
	child *c = pm_get(&s->map, x->pid);
	if (c == NULL) {
		/* The parent's exit, or a shutdown request from anyone (how
		 * an unlinked supervisor is stopped), ends the supervisor.
		 * Exits from other linked actors are not its business. */
		if (s->reaper)
			return; /* the noproc of a link to a child gone early */
		if (tr_pid_eq(x->pid, s->parent) ||
		    x->reason == TR_REASON_SHUTDOWN)
			begin_shutdown(ctx, s, x->reason);
		else
			report(s, NULL, x->pid, "ignored_exit", x->reason);
		return;
	}
	if (c->state == C_STOPPING) {
		child_stopped(ctx, s, c, x->reason);
		return;
	}
	child_gone(s, c);
	if (s->shutting_down) {
		c->state = C_STOPPED;
		return;
	}
	if (s->op != OP_NONE) {
		c->state = C_PENDING;
		c->pending_reason = x->reason;
		c->pending_retry = false;
		s->npending++;
		return;
	}
	child_exited(ctx, s, c, x->reason);
}

static void on_retry(tr_ctx *ctx, sup *s, uint64_t tok)
{
	if (s->shutting_down)
		return;
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->retry_tok != tok || c->state != C_RESTARTING)
			continue;
		c->retry_tok = 0;
		if (s->op != OP_NONE) {
			c->state = C_PENDING;
			c->pending_retry = true;
			s->npending++;
		} else {
			restart(ctx, s, c);
		}
		return;
	}
}

static void on_kill_timer(sup *s, uint64_t tok)
{
	if (tok == s->par_tok) {
		s->par_tok = 0;
		s->par_timer = 0;
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_STOPPING)
				(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		return;
	}
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->kill_tok == tok && c->state == C_STOPPING) {
			c->timer = 0;
			(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
			return;
		}
	}
}

/* ---- admin requests ----------------------------------------------------- */

static bool mutating(uint32_t type)
{
	return type != TR_SUP_REQ_WHICH_CHILDREN &&
	       type != TR_SUP_REQ_COUNT_CHILDREN;
}

/* Starts a new child and keeps it, or frees it and keeps nothing (OTP keeps
 * no spec for a child that failed to start). */
static void start_new(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t type, child *c)
{
	int reason;
	int rc = child_start(ctx, s, c, &reason);
	if (rc != TR_OK) {
		report(s, c, TR_PID_NONE, "start_failed",
		    rc == TR_EINIT ? reason : TR_SUP_REASON_NOSTART);
		child_free(c);
		answer(ctx, from, ref, type, rc, rc == TR_EINIT ? reason : 0,
		    TR_PID_NONE);
		return;
	}
	list_append(s, c);
	answer(ctx, from, ref, type, TR_OK, 0, c->pid);
}

/* A child with this id exists: already started, or already present. */
static void answer_taken(
    tr_ctx *ctx, tr_pid from, uint64_t ref, uint32_t type, const child *old)
{
	if (running(old))
		answer(ctx, from, ref, type, TR_EALREADY, 0, old->pid);
	else
		answer(ctx, from, ref, type, TR_EEXIST, 0, TR_PID_NONE);
}

static void req_start_child(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, const tr_sup_request *q)
{
	const uint32_t type = TR_SUP_REQ_START_CHILD;
	child *c;
	if (is_simple(s)) {
		if (q->has_spec) {
			reply_err(ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
			return;
		}
		tr_child_spec t = tmpl_spec(s);
		c = child_new(&t, s->tmpl->start, "", q->arg);
		/* A template made by name takes a blob, copied now: the
		 * caller's is borrowed only until it has the reply. */
		if (c != NULL && s->tmpl->named &&
		    child_set_blob(c, q->arg) != TR_OK) {
			child_free(c);
			c = NULL;
		}
	} else {
		char id[TR_NAME_MAX + 1];
		memcpy(id, q->id, sizeof(id));
		id[TR_NAME_MAX] = '\0';
		if (!q->has_spec || !valid_id(id) ||
		    !valid_spec_body(&q->spec)) {
			reply_err(ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
			return;
		}
		child *old = find_id(s, id);
		if (old != NULL) {
			answer_taken(ctx, from, ref, type, old);
			return;
		}
		int rc = child_from_spec(s->rt, &q->spec, id, &c);
		if (rc != TR_OK) {
			reply_err(ctx, from, ref, rc, 0, TR_PID_NONE);
			return;
		}
	}
	if (c == NULL) {
		reply_err(ctx, from, ref, TR_ENOMEM, 0, TR_PID_NONE);
		return;
	}
	start_new(ctx, s, from, ref, type, c);
}

/* A START_NAMED request, decoded and checked but for what depends on this
 * supervisor; takes `nq` over. */
static void req_start_named(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, named_req *nq)
{
	const uint32_t type = TR_SUP_REQ_START_NAMED;
	child *c = NULL;
	int err = TR_OK;
	if (is_simple(s)) {
		/* Dynamic children take the template's policy; a request
		 * can only add one if the template takes a blob. */
		if (!s->tmpl->named) {
			err = TR_ENOTSUP;
		} else if (nq->id[0] != '\0' || nq->b != s->tmpl->start) {
			err = TR_EINVAL;
		} else {
			tr_child_spec t = tmpl_spec(s);
			c = child_new(&t, s->tmpl->start, "", NULL);
		}
	} else if (nq->id[0] == '\0') {
		err = TR_EINVAL;
	} else {
		child *old = find_id(s, nq->id);
		if (old != NULL) {
			answer_taken(ctx, from, ref, type, old);
			named_free(nq);
			return;
		}
		c = child_new(&nq->spec, nq->b, nq->id, NULL);
	}
	if (err == TR_OK && c == NULL)
		err = TR_ENOMEM;
	if (err != TR_OK) {
		answer(ctx, from, ref, type, err, 0, TR_PID_NONE);
		named_free(nq);
		return;
	}
	/* The request's copy of the argument becomes the spec's. */
	c->named = true;
	c->blob = nq->blob;
	nq->blob = NULL;
	named_free(nq);
	start_new(ctx, s, from, ref, type, c);
}

static void req_terminate(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, child *c)
{
	if (running(c)) {
		s->op = OP_TERMINATE;
		s->term_child = c;
		s->term_sender = from;
		s->term_ref = ref;
		if (c->state == C_RUNNING)
			child_stop(ctx, s, c, true);
		return;
	}
	/* Not running (stopped, or between restart attempts): it is stopped
	 * now, and a pending retry will find it so and do nothing. */
	c->state = C_STOPPED;
	c->retry_tok = 0;
	if (c->restart == TR_RESTART_TEMPORARY || is_simple(s))
		child_remove(s, c);
	reply_err(ctx, from, ref, TR_OK, 0, TR_PID_NONE);
}

static void req_which(
    tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref, uint32_t cap)
{
	uint32_t n = s->nchildren < cap ? s->nchildren : cap;
	size_t size = sizeof(tr_sup_reply) + (size_t)n * sizeof(tr_child_info);
	tr_sup_reply *r = calloc(1, size);
	if (r == NULL) {
		reply_err(ctx, from, ref, TR_ENOMEM, 0, TR_PID_NONE);
		return;
	}
	r->total = s->nchildren;
	r->n = n;
	uint32_t i = 0;
	for (child *c = s->head; c != NULL && i < n; c = c->next, i++) {
		memcpy(r->children[i].id, c->id, strlen(c->id) + 1);
		r->children[i].pid = running(c) ? c->pid : TR_PID_NONE;
		r->children[i].type = (tr_child_type)c->type;
	}
	tr_msg hdr;
	memset(&hdr, 0, sizeof(hdr));
	hdr.sender = from;
	hdr.ref = ref;
	if (tr_reply(ctx, &hdr, TR_SUP_REPLY, r, size) == TR_EMSGSIZE)
		reply_err(ctx, from, ref, TR_EMSGSIZE, 0, TR_PID_NONE);
	free(r);
}

static void req_count(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref)
{
	tr_sup_reply r;
	memset(&r, 0, sizeof(r));
	for (child *c = s->head; c != NULL; c = c->next) {
		r.counts.specs++;
		if (running(c))
			r.counts.active++;
		if (c->type == TR_CHILD_SUPERVISOR)
			r.counts.supervisors++;
		else
			r.counts.workers++;
	}
	reply_to(ctx, from, ref, &r, sizeof(r));
}

/* A request: `q` for the local ones, `nq` (taken over) for START_NAMED. */
static void on_request(tr_ctx *ctx, sup *s, tr_pid from, uint64_t ref,
    uint32_t type, const tr_sup_request *q, named_req *nq)
{
	if (s->shutting_down) {
		answer(ctx, from, ref, type, TR_ECLOSED, 0, TR_PID_NONE);
		named_free(nq);
		return;
	}
	if (s->op != OP_NONE && mutating(type)) {
		deferred *d = calloc(1, sizeof(*d));
		if (d == NULL) {
			answer(ctx, from, ref, type, TR_ENOMEM, 0, TR_PID_NONE);
			named_free(nq);
			return;
		}
		d->next = NULL;
		d->sender = from;
		d->ref = ref;
		d->type = type;
		if (q != NULL)
			d->req = *q;
		d->nq = nq;
		if (s->dq_tail != NULL)
			s->dq_tail->next = d;
		else
			s->dq_head = d;
		s->dq_tail = d;
		return;
	}
	if (type == TR_SUP_REQ_START_NAMED) {
		req_start_named(ctx, s, from, ref, nq);
		return;
	}
	char id[TR_NAME_MAX + 1];
	memcpy(id, q->id, sizeof(id));
	id[TR_NAME_MAX] = '\0';
	child *c;
	switch (type) {
	case TR_SUP_REQ_START_CHILD:
		req_start_child(ctx, s, from, ref, q);
		return;
	case TR_SUP_REQ_TERMINATE_CHILD:
		if (is_simple(s)) {
			reply_err(ctx, from, ref, TR_ENOTSUP, 0, TR_PID_NONE);
			return;
		}
		c = find_id(s, id);
		if (c == NULL) {
			reply_err(ctx, from, ref, TR_ENOENT, 0, TR_PID_NONE);
			return;
		}
		req_terminate(ctx, s, from, ref, c);
		return;
	case TR_SUP_REQ_TERMINATE_PID:
		c = pm_get(&s->map, q->pid);
		if (c == NULL) {
			reply_err(ctx, from, ref, TR_ENOENT, 0, TR_PID_NONE);
			return;
		}
		req_terminate(ctx, s, from, ref, c);
		return;
	case TR_SUP_REQ_RESTART_CHILD:
	case TR_SUP_REQ_DELETE_CHILD:
		if (is_simple(s)) {
			reply_err(ctx, from, ref, TR_ENOTSUP, 0, TR_PID_NONE);
			return;
		}
		c = find_id(s, id);
		if (c == NULL) {
			reply_err(ctx, from, ref, TR_ENOENT, 0, TR_PID_NONE);
			return;
		}
		if (c->state != C_STOPPED) {
			reply_err(ctx, from, ref, TR_ERUNNING, 0, c->pid);
			return;
		}
		if (type == TR_SUP_REQ_DELETE_CHILD) {
			child_remove(s, c);
			reply_err(ctx, from, ref, TR_OK, 0, TR_PID_NONE);
			return;
		}
		int reason;
		int rc = child_start(ctx, s, c, &reason);
		if (rc != TR_OK)
			report(s, c, TR_PID_NONE, "start_failed",
			    rc == TR_EINIT ? reason : TR_SUP_REASON_NOSTART);
		reply_err(
		    ctx, from, ref, rc, rc == TR_EINIT ? reason : 0, c->pid);
		return;
	case TR_SUP_REQ_WHICH_CHILDREN:
		req_which(ctx, s, from, ref, q->cap);
		return;
	case TR_SUP_REQ_COUNT_CHILDREN:
		req_count(ctx, s, from, ref);
		return;
	default:
		reply_err(ctx, from, ref, TR_EINVAL, 0, TR_PID_NONE);
		return;
	}
}

/* Handles what was put aside while an operation ran: exits first (they may
 * start another operation, which puts the rest aside again), then requests
 * in arrival order. */
static void drain(tr_ctx *ctx, sup *s)
{
	while (s->op == OP_NONE && !s->shutting_down) {
		if (s->npending > 0) {
			child *c = s->head;
			while (c != NULL && c->state != C_PENDING)
				c = c->next;
			if (c == NULL) {
				s->npending = 0;
				continue;
			}
			s->npending--;
			if (c->pending_retry) {
				c->pending_retry = false;
				c->state = C_RESTARTING;
				restart(ctx, s, c);
			} else {
				child_exited(ctx, s, c, c->pending_reason);
			}
			continue;
		}
		deferred *d = s->dq_head;
		if (d == NULL)
			return;
		s->dq_head = d->next;
		if (s->dq_head == NULL)
			s->dq_tail = NULL;
		on_request(ctx, s, d->sender, d->ref, d->type, &d->req, d->nq);
		free(d);
	}
}

/* ---- the behaviour ------------------------------------------------------ */

static void sup_free(sup *s)
{
	while (s->head != NULL) {
		child *c = s->head;
		s->head = c->next;
		child_free(c);
	}
	child_free(s->tmpl);
	free(s->map.slots);
	free(s->ring);
	while (s->dq_head != NULL) {
		deferred *d = s->dq_head;
		s->dq_head = d->next;
		named_free(d->nq);
		free(d);
	}
	free(s);
}

static const tr_behaviour *reaper_b(void);

/* A child failed while the supervisor itself was starting: the children
 * already up must be stopped again, newest first, each by its shutdown spec
 * (OTP's supervisor does so before its start returns the error). init
 * cannot wait for exits, so it unlinks the children, lest the failing
 * supervisor's exit signal reach them out of order, and hands them (and
 * its whole state) to a reaper actor that links to them and stops them.
 * If not even that actor can be spawned, each child gets its exit signal
 * at once and the link to the dying supervisor is the backstop. */
static void init_unwind(tr_ctx *ctx, sup *s)
{
	bool any = false;
	for (child *c = s->head; c != NULL; c = c->next)
		any |= c->state == C_RUNNING;
	if (any) {
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_RUNNING)
				(void)tr_unlink(ctx, c->pid);
		if (tr_spawn(NULL, s->rt, reaper_b(), s, NULL) == TR_OK)
			return;
		for (child *c = s->head; c != NULL; c = c->next)
			if (c->state == C_RUNNING)
				(void)tr_link(ctx, c->pid);
	}
	for (child *c = s->tail; c != NULL; c = c->prev) {
		if (c->state != C_RUNNING)
			continue;
		(void)tr_kill(s->rt, c->pid,
		    c->shutdown_ms == TR_SHUTDOWN_BRUTAL_KILL
		        ? TR_REASON_KILL
		        : TR_REASON_SHUTDOWN);
	}
	sup_free(s);
}

static int reaper_init(tr_ctx *ctx, void *arg, void **state)
{
	sup *s = arg;
	s->self = tr_self(ctx);
	s->parent = TR_PID_NONE;
	s->reaper = true;
	(void)tr_trap_exit(ctx, true);
	/* A child that died since it was unlinked is simply gone; linking to
	 * it brings a noproc EXIT, which the reaper ignores. */
	for (child *c = s->head; c != NULL; c = c->next) {
		if (c->state == C_RUNNING && tr_link(ctx, c->pid) != TR_OK) {
			child_gone(s, c);
			c->state = C_STOPPED;
		}
	}
	/* The stopping starts in handle: finishing it calls tr_exit, which
	 * from init would skip terminate and leak the state. */
	if (tr_send(ctx, s->self, MSG_REAP, NULL, 0) != TR_OK) {
		for (child *c = s->tail; c != NULL; c = c->prev)
			if (c->state == C_RUNNING)
				(void)tr_kill(s->rt, c->pid, TR_REASON_KILL);
		sup_free(s);
		return TR_SUP_REASON_NOSTART;
	}
	*state = s;
	return TR_OK;
}

static int sup_init(tr_ctx *ctx, void *arg, void **state)
{
	const tr_sup_args *a = arg;
	start_hint *h = cur_hint;
	if (h != NULL && h->arg == arg)
		cur_hint = NULL; /* taken: a grandchild must not see it */
	else
		h = NULL;
	if (!valid_args(a)) {
		if (h != NULL)
			h->err = TR_EINVAL;
		return TR_SUP_REASON_BADARGS;
	}
	int err = TR_ENOMEM;
	sup *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto fail;
	s->rt = tr_runtime_of(ctx);
	s->self = tr_self(ctx);
	s->parent = h != NULL ? h->parent : TR_PID_NONE;
	s->flags = a->flags;
	s->ring_cap = s->flags.intensity < 16 ? s->flags.intensity + 1 : 16;
	s->ring = malloc(s->ring_cap * sizeof(*s->ring));
	if (s->ring == NULL)
		goto fail;
	if (is_simple(s)) {
		err = child_from_spec(
		    s->rt, &a->specs[0], a->specs[0].id, &s->tmpl);
		if (err != TR_OK)
			goto fail;
	} else {
		for (size_t i = 0; i < a->nspecs; i++) {
			child *c;
			err = child_from_spec(
			    s->rt, &a->specs[i], a->specs[i].id, &c);
			if (err != TR_OK)
				goto fail;
			list_append(s, c);
		}
	}
	(void)tr_trap_exit(ctx, true);
	for (child *c = s->head; c != NULL; c = c->next) {
		int reason;
		int rc = child_start(ctx, s, c, &reason);
		if (rc == TR_OK)
			continue;
		report(s, c, TR_PID_NONE, "start_failed",
		    rc == TR_EINIT ? reason : TR_SUP_REASON_NOSTART);
		init_unwind(ctx, s);
		if (rc == TR_EINIT && reason > 0)
			return reason;
		if (h != NULL && rc != TR_EINIT)
			h->err = rc;
		return TR_SUP_REASON_NOSTART;
	}
	*state = s;
	return TR_OK;

fail:
	/* No memory, or a start_name that is not registered (bad
	 * arguments, which only the registry could tell). */
	if (s != NULL)
		sup_free(s);
	if (h != NULL)
		h->err = err;
	return err == TR_ENOENT ? TR_SUP_REASON_BADARGS : TR_SUP_REASON_NOSTART;
}

static int sup_handle(tr_ctx *ctx, void *state, const tr_msg *m)
{
	sup *s = state;
	if (s->exited)
		return 0;
	bool from_self = tr_pid_eq(m->sender, s->self);
	switch (m->type) {
	case TR_MSG_EXIT:
		if (m->size >= sizeof(tr_exit_info))
			on_exit_msg(ctx, s, (const tr_exit_info *)m->data);
		break;
	case MSG_REAP:
		if (from_self && s->reaper)
			begin_shutdown(ctx, s, TR_REASON_NORMAL);
		break;
	case MSG_RETRY:
	case MSG_KILL:
		if (from_self && m->size == sizeof(uint64_t)) {
			uint64_t tok;
			memcpy(&tok, m->data, sizeof(tok));
			if (m->type == MSG_RETRY)
				on_retry(ctx, s, tok);
			else
				on_kill_timer(s, tok);
		}
		break;
	case TR_SUP_REQ_START_NAMED:
		if (m->ref != 0) {
			named_req *nq;
			int rc = named_decode(s->rt, m->data, m->size, &nq);
			if (rc != TR_OK)
				named_reply(
				    ctx, m->sender, m->ref, rc, 0, TR_PID_NONE);
			else
				on_request(ctx, s, m->sender, m->ref, m->type,
				    NULL, nq);
		}
		break;
	default:
		if (m->type >= TR_SUP_REQ_START_CHILD &&
		    m->type <= TR_SUP_REQ_COUNT_CHILDREN && m->ref != 0) {
			if (m->size < sizeof(tr_sup_request)) {
				reply_err(ctx, m->sender, m->ref, TR_EINVAL, 0,
				    TR_PID_NONE);
				break;
			}
			tr_sup_request q;
			memcpy(&q, m->data, sizeof(q));
			on_request(
			    ctx, s, m->sender, m->ref, m->type, &q, NULL);
		}
		/* Anything else is not for a supervisor; OTP's logs it and
		 * goes on, and so does this one, quietly. */
		break;
	}
	drain(ctx, s);
	return 0;
}

static void sup_terminate(tr_ctx *ctx, void *state, int reason)
{
	(void)reason;
	sup *s = state;
	if (s == NULL)
		return;
	/* Callers still waiting get an answer rather than their timeout.
	 * Children still alive (the supervisor was killed, or the runtime is
	 * stopping) get the exit signal of their link. */
	flush_deferred(ctx, s, TR_ECLOSED);
	if (s->term_child != NULL)
		reply_err(ctx, s->term_sender, s->term_ref, TR_ECLOSED, 0,
		    TR_PID_NONE);
	for (child *c = s->head; c != NULL; c = c->next)
		if (c->timer != 0)
			(void)tr_timer_cancel(s->rt, c->timer);
	if (s->par_timer != 0)
		(void)tr_timer_cancel(s->rt, s->par_timer);
	sup_free(s);
}

const tr_behaviour tr_sup_behaviour = {
    .name = "supervisor",
    .init = sup_init,
    .handle = sup_handle,
    .terminate = sup_terminate,
};

static const tr_behaviour *reaper_b(void)
{
	static const tr_behaviour b = {
	    .name = "supervisor",
	    .init = reaper_init,
	    .handle = sup_handle,
	    .terminate = sup_terminate,
	};
	return &b;
}

/* ---- the public functions ----------------------------------------------- */

void tr_sup_flags_init(tr_sup_flags *flags)
{
	if (flags == NULL)
		return;
	memset(flags, 0, sizeof(*flags));
	flags->strategy = TR_SUP_ONE_FOR_ONE;
	flags->intensity = 1;
	flags->period_ms = 5000;
	flags->auto_shutdown = TR_AUTO_SHUTDOWN_NEVER;
}

void tr_child_spec_init(
    tr_child_spec *spec, const char *id, const tr_behaviour *start, void *arg)
{
	if (spec == NULL)
		return;
	memset(spec, 0, sizeof(*spec));
	spec->id = id;
	spec->start = start;
	spec->arg = arg;
	spec->restart = TR_RESTART_PERMANENT;
	spec->shutdown_ms = 5000;
	spec->type = TR_CHILD_WORKER;
	spec->significant = false;
}

/* The common part of tr_sup_start and tr_sup_start_link. */
static int sup_start(tr_ctx *ctx, tr_pid *sup_pid, tr_runtime *rt,
    const tr_sup_flags *flags, const tr_child_spec *specs, size_t nspecs,
    int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_args a = {.specs = specs, .nspecs = nspecs};
	if (flags == NULL)
		return TR_EINVAL;
	a.flags = *flags;
	if (!valid_args(&a))
		return TR_EINVAL;
	start_hint h = {
	    .arg = &a,
	    .parent = ctx != NULL ? tr_self(ctx) : TR_PID_NONE,
	    .err = TR_OK,
	};
	start_hint *prev = cur_hint;
	cur_hint = &h;
	int r = 0;
	tr_spawn_opts o = {.flags = TR_SPAWN_SYNC_INIT, .init_reason = &r};
	int rc = ctx != NULL
	             ? tr_spawn_link(ctx, sup_pid, &tr_sup_behaviour, &a, &o)
	             : tr_spawn(sup_pid, rt, &tr_sup_behaviour, &a, &o);
	cur_hint = prev;
	if (rc == TR_EINIT) {
		if (h.err != TR_OK)
			return h.err;
		if (init_reason != NULL)
			*init_reason = r;
	}
	return rc;
}

int tr_sup_start(tr_pid *sup, tr_runtime *rt, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason)
{
	if (rt == NULL)
		return TR_EINVAL;
	return sup_start(NULL, sup, rt, flags, specs, nspecs, init_reason);
}

int tr_sup_start_link(tr_ctx *ctx, tr_pid *sup, const tr_sup_flags *flags,
    const tr_child_spec *specs, size_t nspecs, int *init_reason)
{
	if (ctx == NULL)
		return TR_EINVAL;
	return sup_start(
	    ctx, sup, tr_runtime_of(ctx), flags, specs, nspecs, init_reason);
}

/* Sends a request and waits for the reply, with no timeout: an admin call
 * waits as long as the supervisor is busy, like OTP's (infinity). On TR_OK
 * the caller owns *reply. */
static int call(tr_msg **reply, tr_runtime *rt, tr_pid sup, uint32_t type,
    const tr_sup_request *q)
{
	if (rt == NULL)
		return TR_EINVAL;
	tr_msg *m;
	int rc = tr_call(&m, rt, sup, type, q, sizeof(*q), -1);
	if (rc != TR_OK)
		return rc;
	if (m->type != TR_SUP_REPLY || m->size < sizeof(tr_sup_reply)) {
		tr_msg_free(m);
		return TR_EINVAL;
	}
	*reply = m;
	return TR_OK;
}

/* The reply of a simple call, copied out, the message freed. */
static int call_simple(tr_sup_reply *r, tr_runtime *rt, tr_pid sup,
    uint32_t type, const tr_sup_request *q)
{
	tr_msg *m;
	int rc = call(&m, rt, sup, type, q);
	if (rc != TR_OK)
		return rc;
	memcpy(r, m->data, sizeof(*r));
	tr_msg_free(m);
	return r->err;
}

static int req_with_id(tr_sup_request *q, const char *id)
{
	memset(q, 0, sizeof(*q));
	if (!valid_id(id))
		return TR_EINVAL;
	memcpy(q->id, id, strlen(id) + 1);
	return TR_OK;
}

int tr_sup_start_child(tr_pid *child_pid, tr_runtime *rt, tr_pid sup,
    const tr_child_spec *spec, void *arg, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_request q;
	memset(&q, 0, sizeof(q));
	if (spec != NULL) {
		if (req_with_id(&q, spec->id) != TR_OK)
			return TR_EINVAL;
		q.has_spec = true;
		q.spec = *spec;
		q.spec.id = NULL;
	}
	q.arg = arg;
	tr_sup_reply r;
	int rc = call_simple(&r, rt, sup, TR_SUP_REQ_START_CHILD, &q);
	if (rc == TR_EINIT && init_reason != NULL)
		*init_reason = r.init_reason;
	if (child_pid != NULL && (rc == TR_OK || rc == TR_EALREADY))
		*child_pid = r.pid;
	return rc;
}

int tr_sup_terminate_child(tr_runtime *rt, tr_pid sup, const char *id)
{
	tr_sup_request q;
	if (req_with_id(&q, id) != TR_OK)
		return id == NULL ? TR_EINVAL : TR_ENOENT;
	tr_sup_reply r;
	return call_simple(&r, rt, sup, TR_SUP_REQ_TERMINATE_CHILD, &q);
}

int tr_sup_terminate_pid(tr_runtime *rt, tr_pid sup, tr_pid child_pid)
{
	tr_sup_request q;
	memset(&q, 0, sizeof(q));
	q.pid = child_pid;
	tr_sup_reply r;
	return call_simple(&r, rt, sup, TR_SUP_REQ_TERMINATE_PID, &q);
}

int tr_sup_restart_child(tr_pid *child_pid, tr_runtime *rt, tr_pid sup,
    const char *id, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	tr_sup_request q;
	if (req_with_id(&q, id) != TR_OK)
		return id == NULL ? TR_EINVAL : TR_ENOENT;
	tr_sup_reply r;
	int rc = call_simple(&r, rt, sup, TR_SUP_REQ_RESTART_CHILD, &q);
	if (rc == TR_EINIT && init_reason != NULL)
		*init_reason = r.init_reason;
	if (child_pid != NULL && rc == TR_OK)
		*child_pid = r.pid;
	return rc;
}

int tr_sup_delete_child(tr_runtime *rt, tr_pid sup, const char *id)
{
	tr_sup_request q;
	if (req_with_id(&q, id) != TR_OK)
		return id == NULL ? TR_EINVAL : TR_ENOENT;
	tr_sup_reply r;
	return call_simple(&r, rt, sup, TR_SUP_REQ_DELETE_CHILD, &q);
}

int tr_sup_which_children(
    tr_child_info *out, size_t cap, size_t *n, tr_runtime *rt, tr_pid sup)
{
	if (out == NULL && cap != 0)
		return TR_EINVAL;
	tr_sup_request q;
	memset(&q, 0, sizeof(q));
	q.cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	tr_msg *m;
	int rc = call(&m, rt, sup, TR_SUP_REQ_WHICH_CHILDREN, &q);
	if (rc != TR_OK)
		return rc;
	const tr_sup_reply *r = (const tr_sup_reply *)m->data;
	rc = r->err;
	if (rc == TR_OK) {
		size_t k = r->n;
		size_t room = (m->size - sizeof(*r)) / sizeof(tr_child_info);
		if (k > room)
			k = room;
		if (k > cap)
			k = cap;
		if (k > 0)
			memcpy(out, r->children, k * sizeof(tr_child_info));
		if (n != NULL)
			*n = r->total;
	}
	tr_msg_free(m);
	return rc;
}

int tr_sup_count_children(tr_child_counts *counts, tr_runtime *rt, tr_pid sup)
{
	if (counts == NULL)
		return TR_EINVAL;
	tr_sup_request q;
	memset(&q, 0, sizeof(q));
	tr_sup_reply r;
	int rc = call_simple(&r, rt, sup, TR_SUP_REQ_COUNT_CHILDREN, &q);
	if (rc == TR_OK)
		*counts = r.counts;
	return rc;
}

/* ---- starts by name, for any node --------------------------------------- */

void tr_sup_named_spec_init(tr_sup_named_spec *spec, const char *id,
    const char *behaviour, const void *arg, size_t arg_size)
{
	if (spec == NULL)
		return;
	memset(spec, 0, sizeof(*spec));
	spec->id = id;
	spec->behaviour = behaviour;
	spec->restart = TR_RESTART_PERMANENT;
	spec->shutdown_ms = 5000;
	spec->type = TR_CHILD_WORKER;
	spec->significant = false;
	spec->arg = arg;
	spec->arg_size = arg_size;
}

size_t tr_sup_named_size(const tr_sup_named_spec *spec)
{
	if (spec == NULL ||
	    spec->arg_size > UINT32_MAX - (size_t)TR_SUP_NAMED_HDR_SIZE)
		return 0;
	return TR_SUP_NAMED_HDR_SIZE + spec->arg_size;
}

int tr_sup_named_encode(
    void *buf, size_t cap, size_t *len, const tr_sup_named_spec *spec)
{
	if (len == NULL || spec == NULL)
		return TR_EINVAL;
	size_t size = tr_sup_named_size(spec);
	tr_child_spec policy = {
	    .restart = spec->restart,
	    .shutdown_ms = spec->shutdown_ms,
	    .type = spec->type,
	    .significant = spec->significant,
	};
	size_t idlen =
	    spec->id != NULL ? strnlen(spec->id, TR_NAME_MAX + 1) : 0;
	if (size == 0 || !valid_policy(&policy) || idlen > TR_NAME_MAX ||
	    !valid_id(spec->behaviour) ||
	    (spec->arg == NULL && spec->arg_size != 0))
		return TR_EINVAL;
	*len = size;
	if (buf == NULL || cap < size)
		return TR_EMSGSIZE;
	unsigned char *p = buf;
	memset(p, 0, TR_SUP_NAMED_HDR_SIZE);
	put_u32(p + NQ_VERSION, TR_SUP_NAMED_VERSION);
	put_u32(p + NQ_RESTART, (uint32_t)spec->restart);
	put_i32(p + NQ_SHUTDOWN, spec->shutdown_ms);
	put_u32(p + NQ_TYPE, (uint32_t)spec->type);
	put_u32(p + NQ_FLAGS, spec->significant ? NQ_SIGNIFICANT : 0);
	put_u32(p + NQ_ARGSIZE, (uint32_t)spec->arg_size);
	if (idlen != 0)
		memcpy(p + NQ_ID, spec->id, idlen);
	memcpy(p + NQ_BEHAVIOUR, spec->behaviour, strlen(spec->behaviour));
	if (spec->arg_size != 0)
		memcpy(p + NQ_ARG, spec->arg, spec->arg_size);
	return TR_OK;
}

int tr_sup_named_reply_decode(tr_sup_named_reply *out, const tr_msg *reply)
{
	if (out == NULL || reply == NULL)
		return TR_EINVAL;
	memset(out, 0, sizeof(*out));
	int32_t err;
	switch (reply->type) {
	case TR_MSG_REFUSED:
		if (reply->size != sizeof(err))
			return TR_EINVAL;
		memcpy(&err, reply->data, sizeof(err));
		if (err >= 0)
			return TR_EINVAL;
		out->err = err;
		return TR_OK;
	case TR_MSG_TIMEOUT:
		out->err = TR_ETIMEDOUT;
		return TR_OK;
	case TR_SUP_NAMED_REPLY:
		break;
	default:
		return TR_EINVAL;
	}
	const unsigned char *p = reply->data;
	if (reply->size != TR_SUP_NAMED_REPLY_SIZE ||
	    get_u32(p) != TR_SUP_NAMED_VERSION)
		return TR_EINVAL;
	err = get_i32(p + 4);
	int32_t reason = get_i32(p + 8);
	uint32_t slot = get_u32(p + 12), gen = get_u32(p + 16);
	bool has_child = err == TR_OK || err == TR_EALREADY;
	/* An answer that is no error code, or that names a child when it
	 * should not (or none when it should), is not one a supervisor
	 * gives. */
	if (err > 0 || has_child != (gen != 0))
		return TR_EINVAL;
	out->err = err;
	out->init_reason = err == TR_EINIT ? reason : 0;
	out->child = tr_sup_named_child_pid(reply, slot, gen);
	return TR_OK;
}

int tr_sup_start_named_child(tr_pid *child_pid, tr_runtime *rt, tr_pid sup,
    const tr_sup_named_spec *spec, int64_t timeout_ms, int *init_reason)
{
	if (init_reason != NULL)
		*init_reason = 0;
	if (rt == NULL || spec == NULL)
		return TR_EINVAL;
	/* Most requests carry a small argument: encode on the stack. */
	unsigned char small[512];
	size_t len = 0;
	int rc = tr_sup_named_encode(small, sizeof(small), &len, spec);
	unsigned char *buf = small;
	if (rc == TR_EMSGSIZE) {
		buf = malloc(len);
		if (buf == NULL)
			return TR_ENOMEM;
		rc = tr_sup_named_encode(buf, len, &len, spec);
	}
	tr_msg *m = NULL;
	if (rc == TR_OK)
		rc = tr_call(
		    &m, rt, sup, TR_SUP_REQ_START_NAMED, buf, len, timeout_ms);
	if (buf != small)
		free(buf);
	if (rc != TR_OK)
		return rc;
	tr_sup_named_reply r;
	rc = tr_sup_named_reply_decode(&r, m);
	tr_msg_free(m);
	if (rc != TR_OK)
		return rc;
	if (r.err == TR_EINIT && init_reason != NULL)
		*init_reason = r.init_reason;
	if (child_pid != NULL && (r.err == TR_OK || r.err == TR_EALREADY))
		*child_pid = r.child;
	return r.err;
}
