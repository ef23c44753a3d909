/*
 * The two functions of the core that supervisors use beyond troupe.h: the
 * lookup in the runtime's registry of behaviours by name, which a child
 * started by name (from this process or from another node) runs, and the
 * registered name of a pid, which a supervisor's INFO gives for itself.
 * They are declared in the core's rt.h, which supervisors do not include;
 * the tests include both headers, so that the compiler checks the two
 * agree.
 */
#ifndef TR_SUP_CORE_H
#define TR_SUP_CORE_H

#include "troupe/troupe.h"

/* The behaviour registered under `name` (tr_behaviour_register), or NULL
 * for an unknown, NULL, empty or too long name. The result stays valid while
 * the runtime lives. Thread-safe; takes a mutex. */
const tr_behaviour *tr__behaviour_find(tr_runtime *rt, const char *name);

/* Copies the name the live local actor `pid` is registered under into
 * `name` (TR_NAME_MAX + 1 bytes); false, with "" in it, if it has none.
 * Thread-safe; takes the registry's mutex. */
bool tr__registry_name_pid(tr_runtime *rt, tr_pid pid, char *name);

#endif /* TR_SUP_CORE_H */
