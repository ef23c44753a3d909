/*
 * The one function of the core that supervisors use beyond troupe.h: the
 * lookup in the runtime's registry of behaviours by name, which a child
 * started by name (from this process or from another node) runs. It is
 * declared in the core's rt.h, which supervisors do not include; the tests
 * include both headers, so that the compiler checks the two agree.
 */
#ifndef TR_SUP_CORE_H
#define TR_SUP_CORE_H

#include "troupe/troupe.h"

/* The behaviour registered under `name` (tr_behaviour_register), or NULL
 * for an unknown, NULL, empty or too long name. The result stays valid while
 * the runtime lives. Thread-safe; takes a mutex. */
const tr_behaviour *tr__behaviour_find(tr_runtime *rt, const char *name);

#endif /* TR_SUP_CORE_H */
