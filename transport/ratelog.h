/*
 * Rate-limited log lines, for refusals that a hostile or broken party can
 * cause at any rate: each cause logs at most one line per interval, and
 * the next line says how many were left out in between. The counters that
 * operators read (tr_node_stats_get) count every refusal; the log only
 * tells that it happens and why.
 */
#ifndef TR_RATELOG_H
#define TR_RATELOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "troupe/troupe.h"

/* One cause. Zero-initialised (or tr__ratelog_init) it logs its first line
 * at once. Thread-safe: any thread may call tr__ratelogf on it. */
typedef struct tr__ratelog {
	_Atomic int64_t next_ms;     /* monotonic ms before which it is quiet */
	_Atomic uint64_t suppressed; /* lines left out since the last one */
} tr__ratelog;

#define TR__RATELOG_MS 10000u /* default interval: one line per 10 s */

void tr__ratelog_init(tr__ratelog *r);

/* Logs the formatted line through tr_log(rt, ...) unless this cause
 * logged one less than `interval_ms` ago (0: TR__RATELOG_MS); a line
 * after a quiet spell ends with " (N more since)". Lines are cut at 511
 * bytes. Returns whether it logged. */
bool tr__ratelogf(tr__ratelog *r, tr_runtime *rt, uint32_t interval_ms,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
