/*
 * Rate-limited log lines (ratelog.h).
 */
#include "ratelog.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tr__ratelog_init(tr__ratelog *r)
{
	atomic_init(&r->next_ms, 0);
	atomic_init(&r->suppressed, 0);
}

bool tr__ratelogf(
    tr__ratelog *r, tr_runtime *rt, uint32_t interval_ms, const char *fmt, ...)
{
	int64_t now = mono_ms();
	int64_t next = atomic_load_explicit(&r->next_ms, memory_order_relaxed);
	uint32_t iv = interval_ms != 0 ? interval_ms : TR__RATELOG_MS;
	/* One thread wins the slot; the others count themselves out. The
	 * counters are statistics: relaxed is enough. */
	if (now < next ||
	    !atomic_compare_exchange_strong_explicit(&r->next_ms, &next,
	        now + iv, memory_order_relaxed, memory_order_relaxed)) {
		atomic_fetch_add_explicit(
		    &r->suppressed, 1, memory_order_relaxed);
		return false;
	}
	uint64_t more =
	    atomic_exchange_explicit(&r->suppressed, 0, memory_order_relaxed);
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (k < 0)
		return false;
	if (more != 0 && (size_t)k < sizeof(line))
		snprintf(line + k, sizeof(line) - (size_t)k,
		    " (%llu more since)", (unsigned long long)more);
	tr_log(rt, line);
	return true;
}
