/*
 * Flags and child specs: their defaults, their checks, and the children
 * made from them.
 *
 * Every check a start call or a request makes is here, so that a spec given
 * to tr_sup_start, to tr_sup_start_child, in a request from an actor or in
 * the portable layout is held to the same rules (sup.h, docs/supervision.md
 * "Validation").
 */
#include <stdlib.h>
#include <string.h>

#include "abi.h"
#include "sup_int.h"

/* ---- the caller's versioned structs ------------------------------------- */

int tr__sup_flags_in(tr_sup_flags *dst, const tr_sup_flags *src)
{
	tr_sup_flags_init(dst);
	if (src == NULL)
		return TR_EINVAL;
	return tr__struct_in(dst, sizeof(*dst), src, TR_SUP_FLAGS_V1_SIZE);
}

int tr__sup_args_in(tr_sup_args *dst, const tr_sup_args *src)
{
	if (src == NULL)
		return TR_EINVAL;
	/* The frozen part as it is; the flags as far as they reach. */
	memcpy(dst, src, offsetof(tr_sup_args, flags));
	return tr__sup_flags_in(&dst->flags, &src->flags);
}

int tr__sup_spec_in(tr_child_spec *dst, const tr_child_spec *src)
{
	tr_child_spec_init(dst, NULL, NULL, NULL);
	if (src == NULL)
		return TR_EINVAL;
	return tr__struct_in(dst, sizeof(*dst), src, TR_CHILD_SPEC_V1_SIZE);
}

int tr__sup_spec_at(tr_child_spec *dst, const tr_child_spec *specs, size_t i)
{
	/* The caller's array has the caller's stride: its first entry's
	 * struct_size, which every entry must repeat. */
	uint32_t stride = specs[0].struct_size;
	const tr_child_spec *c =
	    (const tr_child_spec *)((const char *)specs + i * (size_t)stride);
	if (stride < TR_CHILD_SPEC_V1_SIZE || c->struct_size != stride)
		return TR_EINVAL;
	return tr__sup_spec_in(dst, c);
}

/* ---- checks ------------------------------------------------------------- */

bool tr__sup_valid_flags(const tr_sup_flags *f)
{
	return f != NULL &&
	       (unsigned)f->strategy <= TR_SUP_SIMPLE_ONE_FOR_ONE &&
	       f->period_ms > 0 &&
	       (unsigned)f->auto_shutdown <= TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT;
}

bool tr__sup_valid_id(const char *id)
{
	return tr_name_valid(id);
}

bool tr__sup_valid_opt_name(const char *name)
{
	return name == NULL || tr__sup_valid_id(name);
}

bool tr__sup_valid_policy(const tr_child_spec *c)
{
	return (unsigned)c->restart <= TR_RESTART_TEMPORARY &&
	       c->shutdown_ms >= TR_SHUTDOWN_INFINITY &&
	       (unsigned)c->type <= TR_CHILD_PROCESS &&
	       !(c->significant && c->restart == TR_RESTART_PERMANENT);
}

/* Everything but the id's presence (a simple_one_for_one request has none)
 * and uniqueness, and whether a start_name is registered (that needs the
 * runtime, see tr__sup_child_from_spec). Exactly one of start, start_name
 * and start_fn. */
bool tr__sup_valid_spec_body(const tr_child_spec *c)
{
	bool start_ok;
	if (c->start_fn != NULL)
		start_ok = c->start == NULL && c->start_name == NULL &&
		           c->name == NULL;
	else
		start_ok = c->type != TR_CHILD_PROCESS &&
		           (c->start != NULL ? c->start_name == NULL &&
		                                   c->start->handle != NULL
		                             : tr__sup_valid_id(c->start_name));
	return start_ok && tr__sup_valid_opt_name(c->name) &&
	       tr__sup_valid_policy(c);
}

bool tr__sup_valid_args(const tr_sup_args *a)
{
	if (a == NULL || !tr__sup_valid_flags(&a->flags) ||
	    (a->specs == NULL && a->nspecs != 0))
		return false;
	if (a->flags.strategy == TR_SUP_SIMPLE_ONE_FOR_ONE && a->nspecs != 1)
		return false;
	for (size_t i = 0; i < a->nspecs; i++) {
		tr_child_spec c;
		if (tr__sup_spec_at(&c, a->specs, i) != TR_OK ||
		    !tr__sup_valid_id(c.id) || !tr__sup_valid_spec_body(&c))
			return false;
		/* Quadratic, but static child lists are short and this runs
		 * once per supervisor start. */
		for (size_t j = 0; j < i; j++) {
			tr_child_spec o;
			if (tr__sup_spec_at(&o, a->specs, j) != TR_OK ||
			    strcmp(o.id, c.id) == 0)
				return false;
		}
	}
	return true;
}

/* ---- children from specs ------------------------------------------------ */

tr_blob *tr__sup_blob_new(const void *data, size_t size)
{
	if (size > SIZE_MAX - sizeof(tr_blob) || (data == NULL && size != 0))
		return NULL;
	tr_blob *b = malloc(sizeof(*b) + size);
	if (b == NULL)
		return NULL;
	b->size = size;
	if (size != 0)
		memcpy(b->data, data, size);
	return b;
}

/* A child with the policy of `spec` that runs `b` with the borrowed `arg`,
 * registered under `name` (may be NULL) while it runs; the id and the name
 * are copied into the child's own allocation. tr__sup_child_set_blob makes
 * it one started by name. */
child *tr__sup_child_new(const tr_child_spec *spec, const tr_behaviour *b,
    const char *id, const char *name, void *arg)
{
	size_t idlen = strlen(id);
	size_t namelen = name != NULL ? strlen(name) + 1 : 0;
	child *c = calloc(1, sizeof(*c) + idlen + 1 + namelen);
	if (c == NULL)
		return NULL;
	memcpy(c->id, id, idlen + 1);
	if (name != NULL) {
		memcpy(c->id + idlen + 1, name, namelen);
		c->name = c->id + idlen + 1;
	}
	c->start = b;
	c->start_fn = spec->start_fn;
	c->arg = arg;
	c->restart = (uint8_t)spec->restart;
	c->shutdown_ms = spec->shutdown_ms;
	c->type = (uint8_t)spec->type;
	c->significant = spec->significant;
	c->state = C_STOPPED;
	return c;
}

void tr__sup_child_free(child *c)
{
	if (c == NULL)
		return;
	free(c->blob);
	free(c);
}

/* Makes `c` a child started by name, which keeps its own copy of the
 * argument `src` (NULL: an empty one). Errors: TR_ENOMEM. */
int tr__sup_child_set_blob(child *c, const tr_blob *src)
{
	c->by_name = true;
	c->arg = NULL;
	c->blob = NULL;
	if (src == NULL)
		return TR_OK;
	c->blob = tr__sup_blob_new(src->data, src->size);
	return c->blob != NULL ? TR_OK : TR_ENOMEM;
}

/* The child of a checked spec, by address or by name. Errors: TR_ENOENT
 * (start_name is not registered), TR_ENOMEM. */
int tr__sup_child_from_spec(
    tr_runtime *rt, const tr_child_spec *sp, const char *id, child **out)
{
	*out = NULL;
	const tr_behaviour *b = sp->start;
	if (b == NULL && sp->start_fn == NULL &&
	    (b = tr__behaviour_find(rt, sp->start_name)) == NULL)
		return TR_ENOENT;
	child *c = tr__sup_child_new(sp, b, id, sp->name, sp->arg);
	if (c == NULL)
		return TR_ENOMEM;
	if (sp->start == NULL && sp->start_fn == NULL &&
	    tr__sup_child_set_blob(c, sp->arg) != TR_OK) {
		tr__sup_child_free(c);
		return TR_ENOMEM;
	}
	*out = c;
	return TR_OK;
}

/* The policy of the simple_one_for_one template, for its dynamic
 * children. */
tr_child_spec tr__sup_tmpl_spec(const sup *s)
{
	return (tr_child_spec){
	    .struct_size = sizeof(tr_child_spec),
	    .restart = (tr_restart)s->tmpl->restart,
	    .shutdown_ms = s->tmpl->shutdown_ms,
	    .type = (tr_child_type)s->tmpl->type,
	    .significant = s->tmpl->significant,
	    .start_fn = s->tmpl->start_fn,
	};
}
